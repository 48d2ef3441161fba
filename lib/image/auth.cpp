#include "image/auth.hpp"

#include <openssl/evp.h>
#include <stdlib.h>

#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/sys.hpp"

namespace kago::image {

using nlohmann::json;

namespace {

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    return s;
}

bool token_char(char c) {
    return isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

Result<std::string> unbase64(const std::string& in, const std::string& what) {
    std::string s;
    for (char c : in)
        if (!isspace(static_cast<unsigned char>(c))) s += c;
    if (s.size() % 4 != 0) return usage_error(cat(what, ": not base64"));
    std::string out(s.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(s.data()),
                            static_cast<int>(s.size()));
    if (n < 0) return usage_error(cat(what, ": not base64"));
    size_t pad = 0;
    for (size_t i = s.size(); i > 0 && s[i - 1] == '='; --i) ++pad;
    out.resize(static_cast<size_t>(n) - pad);
    return out;
}

// "https://index.docker.io/v1/" -> "docker.io"; "quay.io/org" stays.
std::string normalize_key(std::string k) {
    bool url = false;
    for (const char* p : {"https://", "http://"})
        if (k.starts_with(p)) k = k.substr(strlen(p)), url = true;
    // A URL's path is an API version (docker login writes /v1/), not a namespace.
    if (url) k = k.substr(0, k.find('/'));
    while (!k.empty() && k.back() == '/') k.pop_back();
    std::string host = k.substr(0, k.find('/'));
    if (host == "index.docker.io" || host == "registry-1.docker.io")
        k = "docker.io" + k.substr(host.size());
    return k;
}

}  // namespace

Result<std::vector<Challenge>> parse_challenges(const std::string& v) {
    std::vector<Challenge> out;
    size_t i = 0, n = v.size();
    auto skip_ws = [&] {
        while (i < n && (v[i] == ' ' || v[i] == '\t')) ++i;
    };
    auto bad = [&](const std::string& why) {
        return usage_error(cat("WWW-Authenticate '", v, "': ", why));
    };
    for (;;) {
        skip_ws();
        while (i < n && (v[i] == ',' || v[i] == ' ' || v[i] == '\t')) ++i;
        if (i >= n) break;
        size_t s = i;
        while (i < n && token_char(v[i])) ++i;
        if (i == s) return bad("no authentication scheme");
        Challenge c;
        c.scheme = lower(v.substr(s, i - s));
        // Parameters until the next "scheme" (a token not followed by '=').
        for (;;) {
            skip_ws();
            size_t save = i;
            while (i < n && v[i] == ',') ++i, skip_ws();
            size_t ks = i;
            while (i < n && token_char(v[i])) ++i;
            if (i == ks) break;
            std::string key = lower(v.substr(ks, i - ks));
            skip_ws();
            if (i >= n || v[i] != '=') {  // the next challenge's scheme
                i = save;
                break;
            }
            ++i;
            skip_ws();
            std::string val;
            if (i < n && v[i] == '"') {
                ++i;
                bool closed = false;
                while (i < n) {
                    char ch = v[i++];
                    if (ch == '\\' && i < n) {
                        val += v[i++];
                    } else if (ch == '"') {
                        closed = true;
                        break;
                    } else {
                        val += ch;
                    }
                }
                if (!closed) return bad(cat("the value of ", key, " has no closing quote"));
            } else {
                size_t vs = i;
                while (i < n && token_char(v[i])) ++i;
                val = v.substr(vs, i - vs);
            }
            c.params[key] = val;
        }
        out.push_back(std::move(c));
    }
    if (out.empty()) return bad("no challenge");
    return out;
}

Result<std::map<std::string, Credentials>> parse_auth_file(const std::string& text,
                                                           const std::string& what) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return usage_error(cat(what, ": not a JSON object"));
    std::map<std::string, Credentials> out;
    auto it = j.find("auths");
    if (it == j.end()) return out;
    if (!it->is_object()) return usage_error(cat(what, ": \"auths\" is not an object"));
    for (const auto& [key, entry] : it->items()) {
        if (!entry.is_object()) return usage_error(cat(what, ": auths.", key, " is not an object"));
        auto a = entry.find("auth");
        if (a == entry.end() || !a->is_string() || a->get<std::string>().empty())
            continue;  // a credential helper's
        std::string pair =
            TRY(unbase64(a->get<std::string>(), cat(what, ": auths.", key, ".auth")));
        auto colon = pair.find(':');
        if (colon == std::string::npos)
            return usage_error(cat(what, ": auths.", key, ".auth: not base64 of USER:PASSWORD"));
        out[normalize_key(key)] = Credentials{pair.substr(0, colon), pair.substr(colon + 1)};
    }
    return out;
}

std::vector<std::string> auth_files() {
    std::vector<std::string> f;
    if (const char* a = getenv("REGISTRY_AUTH_FILE"); a && *a) f.push_back(a);
    if (const char* x = getenv("XDG_RUNTIME_DIR"); x && *x)
        f.push_back(cat(x, "/containers/auth.json"));
    if (const char* d = getenv("DOCKER_CONFIG"); d && *d)
        f.push_back(cat(d, "/config.json"));
    else if (const char* h = getenv("HOME"); h && *h)
        f.push_back(cat(h, "/.docker/config.json"));
    return f;
}

Result<std::optional<Credentials>> find_credentials(const Reference& ref,
                                                    const std::vector<std::string>& files,
                                                    std::string* from) {
    std::string full = cat(ref.registry, "/", ref.repository);
    for (const auto& path : files) {
        auto text = sys::read_file(path.c_str());
        if (!text) {
            if (text.error().err == ENOENT || text.error().err == ENOTDIR) continue;
            return std::move(text).error();
        }
        auto auths = TRY(parse_auth_file(*text, path));
        const Credentials* best = nullptr;
        size_t best_len = 0;
        for (const auto& [key, c] : auths) {
            bool fits = full == key || (full.starts_with(key) && full[key.size()] == '/');
            if (fits && key.size() >= best_len) best = &c, best_len = key.size();
        }
        if (best) {
            if (from) *from = path;
            return std::optional<Credentials>(*best);
        }
    }
    return std::optional<Credentials>();
}

std::string base64(const std::string& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(bytes.data()),
                            static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

}  // namespace kago::image
