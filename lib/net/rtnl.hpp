// rtnetlink: links, veth pairs, bridges, addresses and routes. The msg_*
// builders are pure (unit tests parse them back with the parse_* functions);
// Rtnl sends them on a socket that belongs to one network namespace.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "net/addr.hpp"
#include "net/netlink.hpp"

namespace kago::net {

// A change to an existing link, selected by index (or by name when index is 0).
struct LinkChange {
    std::string name;
    int index = 0;
    std::optional<bool> up;
    int netns_fd = -1;         // move to this namespace
    std::string new_name;      // rename
    int master = -1;           // attach to this bridge index (0: detach)
    uint32_t mtu = 0;
    std::optional<uint32_t> group;  // move to this link group
};

// The host end is created up, in link group `group` (0: the default
// group); the peer stays down.
Message msg_new_veth(const std::string& host, const std::string& peer, int peer_netns_fd, uint32_t mtu,
                     int master, uint32_t group = 0);
Message msg_new_bridge(const std::string& name);
Message msg_del_link(const std::string& name);
// Delete every link of a group in one request: the kernel unregisters them
// together, with one set of RCU grace periods for all of them.
Message msg_del_group(uint32_t group);
Message msg_set_link(const LinkChange& c);
Message msg_get_link(const std::string& name);
Message msg_new_addr(int index, const std::string& ifname, const Cidr& a);
// A default route (0.0.0.0/0 or ::/0) via gateway, out of the link.
Message msg_new_default_route(int index, const std::string& ifname, const Cidr& gateway);
Message msg_dump_addrs(int family);

struct LinkInfo {
    int index = 0;
    std::string name;
    std::string kind;       // "veth", "bridge", "" for a plain device
    std::string peer_name;  // a new veth's peer, as requested
    int peer_netns_fd = -1;
    int master = 0;
    uint32_t mtu = 0;
    unsigned flags = 0;     // IFF_UP...
    uint32_t group = 0;
    unsigned change = 0;
    int netns_fd = -1;
};
LinkInfo parse_link(const nlmsghdr* nlh);

struct AddrInfo {
    int index = 0;
    Cidr addr;
    uint32_t flags = 0;
};
AddrInfo parse_addr(const nlmsghdr* nlh);

struct RouteInfo {
    int family = 0;
    int dst_len = -1;
    int oif = 0;
    std::optional<Cidr> gateway;
};
RouteInfo parse_route(const nlmsghdr* nlh);

class Rtnl {
  public:
    static Result<Rtnl> open(std::string where);

    // nullopt when there is no such link (or in dry-run mode).
    Result<std::optional<LinkInfo>> get_link(const std::string& name);
    // The index of an existing link; 0 in dry-run mode.
    Result<int> index_of(const std::string& name, std::string_view what);
    // Whether a link of that index exists.
    bool exists(int index);
    // Whether a link of that name may exist: false only when the kernel
    // says there is none (SIOCGIFINDEX, which takes no lock).
    bool may_exist(const std::string& name);
    Status create_veth(const std::string& host, const std::string& peer, int peer_netns_fd, uint32_t mtu,
                       int master, uint32_t group = 0);
    Status create_bridge(const std::string& name);
    Status delete_link(const std::string& name);
    // Fails with last_errno() ENODEV when the group has no link.
    Status delete_group(uint32_t group);
    Status set_link(const LinkChange& c, std::string_view what);
    Status add_address(int index, const std::string& ifname, const Cidr& a);
    Status add_default_route(int index, const std::string& ifname, const Cidr& gateway);
    Result<std::vector<AddrInfo>> addresses(int family);
    int last_errno() const { return nl_.last_errno(); }

  private:
    Netlink nl_;
};

}  // namespace kago::net
