#include "net/addr.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include "core/parse.hpp"

namespace kago::net {

uint32_t Cidr::v4() const {
    return (uint32_t(bytes[0]) << 24) | (uint32_t(bytes[1]) << 16) | (uint32_t(bytes[2]) << 8) | bytes[3];
}

std::string Cidr::addr_str() const {
    char buf[INET6_ADDRSTRLEN];
    if (!inet_ntop(family, bytes.data(), buf, sizeof buf)) return "?";
    return buf;
}

std::string Cidr::str() const { return cat(addr_str(), "/", prefix); }

Cidr Cidr::network() const {
    Cidr n = *this;
    for (size_t i = 0; i < size(); ++i) {
        int bits = prefix - int(i) * 8;
        if (bits >= 8) continue;
        n.bytes[i] = bits <= 0 ? 0 : uint8_t(n.bytes[i] & (0xff << (8 - bits)));
    }
    return n;
}

bool Cidr::contains(const Cidr& a) const {
    if (a.family != family) return false;
    Cidr x = a;
    x.prefix = prefix;
    return x.network().bytes == network().bytes;
}

Result<Cidr> parse_addr(std::string_view s, std::string_view what) {
    Cidr c;
    std::string str(s);
    if (inet_pton(AF_INET, str.c_str(), c.bytes.data()) == 1) {
        c.family = AF_INET;
        c.prefix = 32;
    } else if (inet_pton(AF_INET6, str.c_str(), c.bytes.data()) == 1) {
        c.family = AF_INET6;
        c.prefix = 128;
    } else {
        return usage_error(cat(what, " '", s, "': not an IPv4 or IPv6 address"));
    }
    return c;
}

Result<Cidr> parse_cidr(std::string_view s, std::string_view what) {
    auto slash = s.find('/');
    auto shown = [&] { return cat(what, " '", s, "'"); };
    if (s.empty()) return usage_error(cat(shown(), ": empty address"));
    auto a = parse_addr(s.substr(0, slash), what);
    if (!a) return usage_error(cat(shown(), ": not an address in CIDR form (like 10.88.0.2/16)"));
    Cidr c = *a;
    if (slash != std::string_view::npos) {
        auto p = parse::u64(s.substr(slash + 1), what);
        if (!p || *p > uint64_t(c.max_prefix()))
            return usage_error(cat(shown(), ": prefix length must be 0 to ", c.max_prefix()));
        c.prefix = int(*p);
        c.had_prefix = true;
    }
    return c;
}

Cidr cidr_v4(uint32_t addr, int prefix) {
    Cidr c;
    c.family = AF_INET;
    c.bytes[0] = uint8_t(addr >> 24);
    c.bytes[1] = uint8_t(addr >> 16);
    c.bytes[2] = uint8_t(addr >> 8);
    c.bytes[3] = uint8_t(addr);
    c.prefix = prefix;
    return c;
}

uint32_t host_count(const Cidr& net) {
    if (net.family != AF_INET || net.prefix > 30) return 0;
    return uint32_t((uint64_t(1) << (32 - net.prefix)) - 2);
}

std::optional<Cidr> nth_host(const Cidr& net, uint32_t n) {
    if (n == 0 || n > host_count(net)) return std::nullopt;
    return cidr_v4(net.network().v4() + n, net.prefix);
}

std::string Publish::str() const {
    std::string s;
    if (host_ip) s = host_ip->family == AF_INET6 ? cat("[", host_ip->addr_str(), "]:") : cat(host_ip->addr_str(), ":");
    return cat(s, host_port, ":", port, "/", proto_name());
}

Result<Publish> parse_publish(std::string_view s) {
    Publish p;
    auto bad = [&](std::string_view why) {
        return usage_error(cat("--publish '", s, "': ", why,
                               " (expected [HOSTIP:]HOSTPORT:PORT[/tcp|udp])"));
    };
    std::string_view rest = s;
    auto slash = rest.rfind('/');
    if (slash != std::string_view::npos) {
        auto proto = rest.substr(slash + 1);
        if (proto == "tcp") p.proto = IPPROTO_TCP;
        else if (proto == "udp") p.proto = IPPROTO_UDP;
        else return bad(cat("unknown protocol '", proto, "'"));
        rest = rest.substr(0, slash);
    }
    // An IPv6 host address is written in brackets: [::1]:8080:80.
    if (!rest.empty() && rest[0] == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
            return bad("unbalanced '[' in the host address");
        auto a = parse_addr(rest.substr(1, close - 1), "--publish host address");
        if (!a || a->family != AF_INET6) return bad("bad IPv6 host address");
        p.host_ip = *a;
        rest = rest.substr(close + 2);
    }
    auto parts = parse::split(rest, ':');
    if (parts.size() == 3 && !p.host_ip) {
        auto a = parse_addr(parts[0], "--publish host address");
        if (!a || a->family != AF_INET) return bad(cat("bad host address '", parts[0], "'"));
        p.host_ip = *a;
        parts.erase(parts.begin());
    }
    if (parts.size() != 2) return bad("wrong number of fields");
    auto port = [&](const std::string& f, uint16_t& out) -> Status {
        auto v = parse::u64(f, "port");
        if (!v || *v == 0 || *v > 65535) return bad(cat("port '", f, "' is not 1 to 65535"));
        out = uint16_t(*v);
        return {};
    };
    TRY(port(parts[0], p.host_port));
    TRY(port(parts[1], p.port));
    return p;
}

Status validate_ifname(std::string_view name, std::string_view what) {
    if (name.empty()) return usage_error(cat(what, ": empty interface name"));
    if (name.size() >= IFNAMSIZ)
        return usage_error(cat(what, " '", name, "': interface name longer than ", IFNAMSIZ - 1,
                               " bytes (IFNAMSIZ)"));
    if (name == "." || name == "..") return usage_error(cat(what, " '", name, "': not a valid interface name"));
    // The kernel's dev_valid_name(): no '/', ':' or byte its isspace()
    // takes, which is also \v, \f, \r and 0xa0 (lib/ctype.c).
    for (char c : name)
        if (c == '/' || c == ':' || c == ' ' || (c >= '\t' && c <= '\r') || c == '\xa0' || c == '\0')
            return usage_error(cat(what, " '", name, "': interface names cannot contain '/', ':' or blanks"));
    return {};
}

std::string veth_host_name(std::string_view container) {
    std::string n = cat("kg", container);
    if (validate_ifname(n, "veth")) return n;
    uint32_t h = 2166136261u;  // FNV-1a
    for (unsigned char c : container) h = (h ^ c) * 16777619u;
    static const char hex[] = "0123456789abcdef";
    std::string out = "kg";
    for (int i = 7; i >= 0; --i) out += hex[(h >> (i * 4)) & 15];
    return out;
}

}  // namespace kago::net
