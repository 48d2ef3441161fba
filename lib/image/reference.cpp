#include "image/reference.hpp"

#include <arpa/inet.h>

#include <cctype>

#include "image/digest.hpp"

namespace kago::image {

namespace {

constexpr const char kHub[] = "docker.io";

bool lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// A path component: lowercase letters and digits, separated by one '.',
// one or two '_', or any number of '-' (the distribution spec's grammar).
bool good_component(const std::string& c) {
    if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
    for (size_t i = 0; i < c.size(); ++i) {
        char ch = c[i];
        if (lower_alnum(ch) || ch == '-') continue;
        if (ch == '.' || ch == '_') {
            size_t run = 1;
            while (i + run < c.size() && (c[i + run] == '.' || c[i + run] == '_')) ++run;
            std::string sep = c.substr(i, run);
            if (sep != "." && sep != "_" && sep != "__") return false;
            i += run - 1;
            continue;
        }
        return false;
    }
    return true;
}

bool good_tag(const std::string& t) {
    if (t.empty() || t.size() > 128) return false;
    if (!(isalnum(static_cast<unsigned char>(t[0])) || t[0] == '_')) return false;
    for (unsigned char c : t)
        if (!(isalnum(c) || c == '_' || c == '.' || c == '-')) return false;
    return true;
}

// HOST[:PORT], HOST a name, an IPv4 address or a bracketed IPv6 one.
bool good_registry(const std::string& r) {
    std::string host = r, port;
    if (r.starts_with("[")) {
        auto close = r.find(']');
        if (close == std::string::npos || close == 1) return false;
        for (unsigned char c : r.substr(1, close - 1))
            if (!(isxdigit(c) || c == ':' || c == '.')) return false;
        host = "";
        if (close + 1 < r.size()) {
            if (r[close + 1] != ':') return false;
            port = r.substr(close + 2);
            if (port.empty()) return false;
        }
    } else if (auto colon = r.find(':'); colon != std::string::npos) {
        host = r.substr(0, colon);
        port = r.substr(colon + 1);
        if (host.empty() || port.empty()) return false;
    }
    for (unsigned char c : host)
        if (!(isalnum(c) || c == '.' || c == '-')) return false;
    for (unsigned char c : port)
        if (!isdigit(c)) return false;
    return port.size() <= 5;
}

}  // namespace

Result<Reference> parse_reference(const std::string& text) {
    auto bad = [&](const std::string& why) {
        return usage_error(cat("image reference '", text, "': ", why));
    };
    if (text.empty()) return bad("empty");
    Reference r;
    std::string rest = text;
    if (auto at = rest.find('@'); at != std::string::npos) {
        r.digest = rest.substr(at + 1);
        rest = rest.substr(0, at);
        if (!check_digest(r.digest, "digest"))
            return bad("the digest is not sha256: and 64 lowercase hex digits");
    }
    auto slash = rest.find('/');
    if (slash != std::string::npos) {
        std::string first = rest.substr(0, slash);
        if (first.find('.') != std::string::npos || first.find(':') != std::string::npos ||
            first == "localhost") {
            if (!good_registry(first)) return bad(cat("bad registry '", first, "'"));
            r.registry = first;
            rest = rest.substr(slash + 1);
        }
    }
    if (auto colon = rest.rfind(':'); colon != std::string::npos) {
        r.tag = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
        if (!good_tag(r.tag)) return bad(cat("bad tag '", r.tag, "'"));
    }
    if (r.registry.empty() || r.registry == "index.docker.io" ||
        r.registry == "registry-1.docker.io")
        r.registry = kHub;
    if (rest.empty()) return bad("no repository");
    size_t start = 0;
    for (;;) {
        size_t end = rest.find('/', start);
        std::string c =
            rest.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!good_component(c))
            return bad(cat("bad repository component '", c,
                           "' (lowercase letters, digits, '.', '_', '-')"));
        if (end == std::string::npos) break;
        start = end + 1;
    }
    if (rest.size() > 255) return bad("the repository name is longer than 255 characters");
    if (r.registry == kHub && rest.find('/') == std::string::npos) rest = "library/" + rest;
    r.repository = rest;
    if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
    return r;
}

std::string Reference::api_host() const {
    return registry == kHub ? "registry-1.docker.io" : registry;
}

std::string Reference::host() const {
    if (!registry.empty() && registry[0] == '[') return registry.substr(1, registry.find(']') - 1);
    return registry.substr(0, registry.find(':'));
}

std::string Reference::str() const {
    std::string s = cat(registry, "/", repository);
    if (!tag.empty()) s += ":" + tag;
    if (!digest.empty()) s += "@" + digest;
    return s;
}

bool is_loopback(const Reference& r) {
    std::string h = r.host();
    if (h == "localhost") return true;
    struct in_addr a4;
    if (::inet_pton(AF_INET, h.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (::inet_pton(AF_INET6, h.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

}  // namespace kago::image
