#include "image/auth.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/child.hpp"
#include "core/fd.hpp"
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
        auto it_token = entry.find("identitytoken");
        if (it_token != entry.end()) {
            if (!it_token->is_string())
                return usage_error(cat(what, ": auths.", key, ".identitytoken is not a string"));
            if (!it_token->get<std::string>().empty()) {
                Credentials c;
                c.identity_token = it_token->get<std::string>();
                out[normalize_key(key)] = std::move(c);
                continue;
            }
        }
        auto a = entry.find("auth");
        if (a == entry.end() || !a->is_string() || a->get<std::string>().empty())
            continue;  // a credential helper's
        std::string pair =
            TRY(unbase64(a->get<std::string>(), cat(what, ": auths.", key, ".auth")));
        auto colon = pair.find(':');
        if (colon == std::string::npos)
            return usage_error(cat(what, ": auths.", key, ".auth: not base64 of USER:PASSWORD"));
        out[normalize_key(key)] = Credentials{pair.substr(0, colon), pair.substr(colon + 1), ""};
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

Result<CredentialHelpers> parse_credential_helpers(const std::string& text,
                                                   const std::string& what) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return usage_error(cat(what, ": not a JSON object"));
    CredentialHelpers h;
    if (auto it = j.find("credHelpers"); it != j.end()) {
        if (!it->is_object()) return usage_error(cat(what, ": \"credHelpers\" is not an object"));
        for (const auto& [key, name] : it->items()) {
            if (!name.is_string())
                return usage_error(cat(what, ": credHelpers.", key, " is not a string"));
            h.per_registry[normalize_key(key)] = name.get<std::string>();
        }
    }
    if (auto it = j.find("credsStore"); it != j.end()) {
        if (!it->is_string()) return usage_error(cat(what, ": \"credsStore\" is not a string"));
        h.store = it->get<std::string>();
    }
    if (h.store.find('/') != std::string::npos)
        return usage_error(cat(what, ": credsStore '", h.store, "' is not a helper's name"));
    for (const auto& [key, name] : h.per_registry)
        if (name.empty() || name.find('/') != std::string::npos)
            return usage_error(
                cat(what, ": credHelpers.", key, " '", name, "' is not a helper's name"));
    return h;
}

Result<Credentials> parse_helper_answer(const std::string& text, const std::string& what) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return usage_error(cat(what, ": the answer is not a JSON object"));
    auto str = [&](const char* k) -> std::string {
        auto it = j.find(k);
        return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    Credentials c{str("Username"), str("Secret"), ""};
    if (c.password.empty()) return usage_error(cat(what, ": the answer has no Secret"));
    if (c.user == "<token>") {  // docker's mark of an identity token
        c.identity_token = std::move(c.password);
        c.user.clear();
        c.password.clear();
    }
    return c;
}

Result<std::optional<std::string>> run_credential_helper(const std::string& name,
                                                         const std::string& server) {
    std::string prog = cat("docker-credential-", name);
    std::string what = cat(prog, " get");
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) < 0) return sys_error(cat(what, ": pipe"));
    UniqueFd in_r(in[0]), in_w(in[1]);
    if (::pipe2(out, O_CLOEXEC) < 0) return sys_error(cat(what, ": pipe"));
    UniqueFd out_r(out[0]), out_w(out[1]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
    posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, out_w.get(), 2);
    std::string get = "get";
    char* argv[] = {prog.data(), get.data(), nullptr};
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, prog.c_str(), &fa, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        errno = rc;
        Error e = sys_error(what);
        if (rc == ENOENT)
            e.hint = cat("a credential file names the helper '", name, "', and no ", prog,
                         " is in PATH");
        return e;
    }
    child::Process helper(pid);  // killed and reaped if we leave early
    in_r.reset();
    out_w.reset();
    // The server is a line or so: the pipe takes it whole.
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    (void)!::write(in_w.get(), server.data(), server.size());
    in_w.reset();
    std::string text;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(out_r.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || text.size() > (1u << 20)) break;
        text.append(buf, static_cast<size_t>(n));
    }
    // A SIGPIPE the write raised (the helper did not read) is not ours to keep.
    struct timespec zero {};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    auto waited = helper.wait();
    int status = waited ? *waited : 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return std::optional<std::string>(text);
    while (!text.empty() && isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    if (text.find("credentials not found") != std::string::npos)
        return std::optional<std::string>();
    return usage_error(cat(what, " (", server, "): ",
                           WIFEXITED(status) ? cat("exit status ", WEXITSTATUS(status))
                                             : cat("killed by signal ", WTERMSIG(status)),
                           text.empty() ? "" : cat(": ", text.substr(0, 200))));
}

Result<std::optional<Credentials>> find_credentials(const Reference& ref,
                                                    const std::vector<std::string>& files,
                                                    std::string* from,
                                                    const HelperRunner& run_helper) {
    std::string full = cat(ref.registry, "/", ref.repository);
    // What docker passes its helpers: the host, or Docker Hub's old URL.
    std::string server = ref.registry == "docker.io" ? "https://index.docker.io/v1/" : ref.registry;
    auto ask = [&](const std::string& path,
                   const std::string& name) -> Result<std::optional<Credentials>> {
        std::string what = cat(path, ": docker-credential-", name);
        auto answer = TRY(run_helper(name, server));
        if (!answer) return std::optional<Credentials>();
        Credentials c = TRY(parse_helper_answer(*answer, what));
        if (from) *from = cat(path, ", docker-credential-", name);
        return std::optional<Credentials>(c);
    };
    for (const auto& path : files) {
        auto text = sys::read_file(path.c_str());
        if (!text) {
            if (text.error().err == ENOENT || text.error().err == ENOTDIR) continue;
            return std::move(text).error();
        }
        auto auths = TRY(parse_auth_file(*text, path));
        auto helpers = TRY(parse_credential_helpers(*text, path));
        if (auto h = helpers.per_registry.find(ref.registry); h != helpers.per_registry.end()) {
            auto c = TRY(ask(path, h->second));
            if (c) return c;
            continue;
        }
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
        if (!helpers.store.empty()) {
            auto c = TRY(ask(path, helpers.store));
            if (c) return c;
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
