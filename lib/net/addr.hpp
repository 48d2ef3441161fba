// Addresses, CIDRs, published ports and interface names: the values
// net-setup's options take. Pure functions, no kernel calls.
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace kago::net {

// An IPv4 or IPv6 address with a prefix length.
struct Cidr {
    int family = AF_INET;               // AF_INET or AF_INET6
    std::array<uint8_t, 16> bytes{};    // network byte order; 4 used for IPv4
    int prefix = 32;
    bool had_prefix = false;            // "/N" was written

    size_t size() const { return family == AF_INET ? 4 : 16; }
    int max_prefix() const { return family == AF_INET ? 32 : 128; }
    uint32_t v4() const;                // host byte order
    std::string addr_str() const;       // "10.88.0.2"
    std::string str() const;            // "10.88.0.2/16"
    Cidr network() const;               // host bits cleared
    bool contains(const Cidr& a) const; // a's address is inside this network
    bool operator==(const Cidr& o) const {
        return family == o.family && bytes == o.bytes && prefix == o.prefix;
    }
};

// "10.88.0.0/16", "fd00::2/64"; without "/N", the prefix is the full length.
// `what` names the option in the error ("--subnet '10.88.0.0/33'").
Result<Cidr> parse_cidr(std::string_view s, std::string_view what);
// An address without a prefix.
Result<Cidr> parse_addr(std::string_view s, std::string_view what);
// A v4 Cidr from a host-order address.
Cidr cidr_v4(uint32_t addr, int prefix);
// The n-th address of the network (n = 1: the first host). IPv4 only.
std::optional<Cidr> nth_host(const Cidr& net, uint32_t n);
// Number of usable host addresses in an IPv4 network (without network and broadcast).
uint32_t host_count(const Cidr& net);

// --publish [HOSTIP:]HOSTPORT:PORT[/tcp|udp]
struct Publish {
    std::optional<Cidr> host_ip;  // no prefix
    uint16_t host_port = 0;
    uint16_t port = 0;
    int proto = IPPROTO_TCP;      // IPPROTO_TCP or IPPROTO_UDP
    std::string proto_name() const { return proto == IPPROTO_TCP ? "tcp" : "udp"; }
    std::string str() const;      // "127.0.0.1:8080:80/tcp"
};
Result<Publish> parse_publish(std::string_view s);

// An interface name: 1 to 15 bytes (IFNAMSIZ - 1), no '/', ':' or white
// space, not "." or "..". `what` names the option.
Status validate_ifname(std::string_view name, std::string_view what);

// The host end of a container's veth: "kg" + the container name when it
// fits in IFNAMSIZ and is a valid interface name, otherwise "kg" + 8 hex
// digits of a hash of the name.
std::string veth_host_name(std::string_view container);

}  // namespace kago::net
