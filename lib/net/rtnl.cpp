#include "net/rtnl.hpp"

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <string.h>

#include "core/trace.hpp"

namespace kago::net {
namespace {

ifinfomsg* put_ifinfo(nlmsghdr* nlh, int index = 0) {
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = index;
    return ifi;
}

std::string q(const std::string& s) { return trace::quote(s); }

void put_one_queue(nlmsghdr* nlh) {
    mnl_attr_put_u32(nlh, IFLA_NUM_TX_QUEUES, 1);
    mnl_attr_put_u32(nlh, IFLA_NUM_RX_QUEUES, 1);
}

}  // namespace

Message msg_new_veth(const std::string& host, const std::string& peer, int peer_netns_fd, uint32_t mtu,
                     int master, uint32_t group) {
    Message m;
    m.nlh->nlmsg_type = RTM_NEWLINK;
    m.nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    auto* ifi = put_ifinfo(m.nlh);
    // Up at once: no second request to bring it up (the peer's own
    // ifinfomsg below stays down).
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    mnl_attr_put_strz(m.nlh, IFLA_IFNAME, host.c_str());
    if (mtu) mnl_attr_put_u32(m.nlh, IFLA_MTU, mtu);
    if (master > 0) mnl_attr_put_u32(m.nlh, IFLA_MASTER, uint32_t(master));
    if (group) mnl_attr_put_u32(m.nlh, IFLA_GROUP, group);
    // One queue each way on both ends, asked for outright. Without these the
    // kernel allocates one per CPU and then cuts the active ones down to 1,
    // and each cut waits for an RCU grace period with the RTNL lock held
    // (0.3 to 1.5 ms per end here, and every other link change waits too).
    put_one_queue(m.nlh);
    nlattr* linkinfo = mnl_attr_nest_start(m.nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(m.nlh, IFLA_INFO_KIND, "veth");
    nlattr* data = mnl_attr_nest_start(m.nlh, IFLA_INFO_DATA);
    nlattr* peer_attr = mnl_attr_nest_start(m.nlh, VETH_INFO_PEER);
    // The peer's attributes follow an ifinfomsg of their own.
    auto* pifi = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload_tail(m.nlh));
    // Not up: the kernel configures the peer before the pair is linked,
    // and opening it then fails with ENOTCONN.
    memset(pifi, 0, sizeof *pifi);
    m.nlh->nlmsg_len += MNL_ALIGN(sizeof(ifinfomsg));
    mnl_attr_put_strz(m.nlh, IFLA_IFNAME, peer.c_str());
    if (mtu) mnl_attr_put_u32(m.nlh, IFLA_MTU, mtu);
    put_one_queue(m.nlh);
    if (peer_netns_fd >= 0) mnl_attr_put_u32(m.nlh, IFLA_NET_NS_FD, uint32_t(peer_netns_fd));
    mnl_attr_nest_end(m.nlh, peer_attr);
    mnl_attr_nest_end(m.nlh, data);
    mnl_attr_nest_end(m.nlh, linkinfo);
    m.desc = cat("RTM_NEWLINK(ifname=", q(host), ", kind=\"veth\", peer={ifname=", q(peer),
                 peer_netns_fd >= 0 ? cat(", netns_fd=", peer_netns_fd) : "", "}",
                 mtu ? cat(", mtu=", mtu) : "", master > 0 ? cat(", master=", master) : "",
                 group ? cat(", group=", group) : "", ", queues=1, flags=IFF_UP, NLM_F_CREATE|NLM_F_EXCL)");
    return m;
}

Message msg_new_bridge(const std::string& name) {
    Message m;
    m.nlh->nlmsg_type = RTM_NEWLINK;
    m.nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    put_ifinfo(m.nlh);
    mnl_attr_put_strz(m.nlh, IFLA_IFNAME, name.c_str());
    nlattr* linkinfo = mnl_attr_nest_start(m.nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(m.nlh, IFLA_INFO_KIND, "bridge");
    mnl_attr_nest_end(m.nlh, linkinfo);
    m.desc = cat("RTM_NEWLINK(ifname=", q(name), ", kind=\"bridge\", NLM_F_CREATE|NLM_F_EXCL)");
    return m;
}

Message msg_del_link(const std::string& name) {
    Message m;
    m.nlh->nlmsg_type = RTM_DELLINK;
    put_ifinfo(m.nlh);
    mnl_attr_put_strz(m.nlh, IFLA_IFNAME, name.c_str());
    m.desc = cat("RTM_DELLINK(ifname=", q(name), ")");
    return m;
}

Message msg_del_group(uint32_t group) {
    Message m;
    m.nlh->nlmsg_type = RTM_DELLINK;
    put_ifinfo(m.nlh);
    mnl_attr_put_u32(m.nlh, IFLA_GROUP, group);
    m.desc = cat("RTM_DELLINK(group=", group, ")");
    return m;
}

Message msg_set_link(const LinkChange& c) {
    Message m;
    m.nlh->nlmsg_type = RTM_NEWLINK;
    auto* ifi = put_ifinfo(m.nlh, c.index);
    std::string d = c.index ? cat("RTM_NEWLINK(index=", c.index, " /* ", c.name, " */") : cat("RTM_NEWLINK(ifname=", q(c.name));
    if (!c.index) mnl_attr_put_strz(m.nlh, IFLA_IFNAME, c.name.c_str());
    if (c.up) {
        ifi->ifi_change = IFF_UP;
        ifi->ifi_flags = *c.up ? IFF_UP : 0;
        d += *c.up ? ", flags=IFF_UP" : ", flags=0, change=IFF_UP";
    }
    if (c.netns_fd >= 0) {
        mnl_attr_put_u32(m.nlh, IFLA_NET_NS_FD, uint32_t(c.netns_fd));
        d += cat(", netns_fd=", c.netns_fd);
    }
    if (!c.new_name.empty()) {
        // Renaming needs the index to select the link, and IFLA_IFNAME as the new name.
        mnl_attr_put_strz(m.nlh, IFLA_IFNAME, c.new_name.c_str());
        d += cat(", ifname=", q(c.new_name));
    }
    if (c.master >= 0) {
        mnl_attr_put_u32(m.nlh, IFLA_MASTER, uint32_t(c.master));
        d += cat(", master=", c.master);
    }
    if (c.mtu) {
        mnl_attr_put_u32(m.nlh, IFLA_MTU, c.mtu);
        d += cat(", mtu=", c.mtu);
    }
    if (c.group) {
        mnl_attr_put_u32(m.nlh, IFLA_GROUP, *c.group);
        d += cat(", group=", *c.group);
    }
    m.desc = d + ")";
    return m;
}

Message msg_get_link(const std::string& name) {
    Message m;
    m.nlh->nlmsg_type = RTM_GETLINK;
    put_ifinfo(m.nlh);
    mnl_attr_put_strz(m.nlh, IFLA_IFNAME, name.c_str());
    mnl_attr_put_u32(m.nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    m.desc = cat("RTM_GETLINK(ifname=", q(name), ")");
    return m;
}

Message msg_new_addr(int index, const std::string& ifname, const Cidr& a) {
    Message m;
    m.nlh->nlmsg_type = RTM_NEWADDR;
    m.nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(m.nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = uint8_t(a.family);
    ifa->ifa_prefixlen = uint8_t(a.prefix);
    ifa->ifa_index = uint32_t(index);
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    mnl_attr_put(m.nlh, IFA_LOCAL, a.size(), a.bytes.data());
    mnl_attr_put(m.nlh, IFA_ADDRESS, a.size(), a.bytes.data());
    std::string extra;
    if (a.family == AF_INET) {
        if (a.prefix < 31) {
            Cidr b = a.network();
            uint32_t bc = b.v4() | (a.prefix == 0 ? 0xffffffffu : ((1u << (32 - a.prefix)) - 1));
            Cidr bcast = cidr_v4(bc, 32);
            mnl_attr_put(m.nlh, IFA_BROADCAST, 4, bcast.bytes.data());
            extra = cat(", broadcast=", bcast.addr_str());
        }
    } else {
        // No duplicate address detection: the address is usable at once.
        ifa->ifa_flags = IFA_F_NODAD;
        mnl_attr_put_u32(m.nlh, IFA_FLAGS, IFA_F_NODAD);
        extra = ", flags=IFA_F_NODAD";
    }
    m.desc = cat("RTM_NEWADDR(index=", index, " /* ", ifname, " */, ", a.str(), extra, ")");
    return m;
}

Message msg_new_default_route(int index, const std::string& ifname, const Cidr& gateway) {
    Message m;
    m.nlh->nlmsg_type = RTM_NEWROUTE;
    m.nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(m.nlh, sizeof(rtmsg)));
    rtm->rtm_family = uint8_t(gateway.family);
    rtm->rtm_dst_len = 0;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_STATIC;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
    mnl_attr_put(m.nlh, RTA_GATEWAY, gateway.size(), gateway.bytes.data());
    mnl_attr_put_u32(m.nlh, RTA_OIF, uint32_t(index));
    m.desc = cat("RTM_NEWROUTE(", gateway.family == AF_INET ? "0.0.0.0/0" : "::/0", " via ",
                 gateway.addr_str(), ", oif=", index, " /* ", ifname, " */)");
    return m;
}

Message msg_dump_addrs(int family) {
    Message m;
    m.nlh->nlmsg_type = RTM_GETADDR;
    m.nlh->nlmsg_flags = NLM_F_DUMP;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(m.nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = uint8_t(family);
    m.desc = "RTM_GETADDR(dump)";
    return m;
}

LinkInfo parse_link(const nlmsghdr* nlh) {
    LinkInfo li;
    const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
    li.index = ifi->ifi_index;
    li.flags = ifi->ifi_flags;
    li.change = ifi->ifi_change;
    struct Ctx {
        LinkInfo* li;
    } ctx{&li};
    mnl_attr_parse(nlh, sizeof(ifinfomsg), [](const nlattr* a, void* data) -> int {
        LinkInfo& li = *static_cast<Ctx*>(data)->li;
        switch (mnl_attr_get_type(a)) {
        case IFLA_IFNAME: li.name = mnl_attr_get_str(a); break;
        case IFLA_MTU: li.mtu = mnl_attr_get_u32(a); break;
        case IFLA_MASTER: li.master = int(mnl_attr_get_u32(a)); break;
        case IFLA_GROUP: li.group = mnl_attr_get_u32(a); break;
        case IFLA_NET_NS_FD: li.netns_fd = int(mnl_attr_get_u32(a)); break;
        case IFLA_LINKINFO:
            mnl_attr_parse_nested(a, [](const nlattr* b, void* data) -> int {
                LinkInfo& li = *static_cast<Ctx*>(data)->li;
                if (mnl_attr_get_type(b) == IFLA_INFO_KIND) li.kind = mnl_attr_get_str(b);
                if (mnl_attr_get_type(b) == IFLA_INFO_DATA && li.kind == "veth") {
                    mnl_attr_parse_nested(b, [](const nlattr* c, void* data) -> int {
                        if (mnl_attr_get_type(c) != VETH_INFO_PEER) return MNL_CB_OK;
                        const char* p = static_cast<const char*>(mnl_attr_get_payload(c)) + MNL_ALIGN(sizeof(ifinfomsg));
                        size_t len = mnl_attr_get_payload_len(c) - MNL_ALIGN(sizeof(ifinfomsg));
                        mnl_attr_parse_payload(p, len, [](const nlattr* d, void* data) -> int {
                            LinkInfo& li = *static_cast<Ctx*>(data)->li;
                            if (mnl_attr_get_type(d) == IFLA_IFNAME) li.peer_name = mnl_attr_get_str(d);
                            if (mnl_attr_get_type(d) == IFLA_NET_NS_FD) li.peer_netns_fd = int(mnl_attr_get_u32(d));
                            return MNL_CB_OK;
                        }, data);
                        return MNL_CB_OK;
                    }, data);
                }
                return MNL_CB_OK;
            }, data);
            break;
        default: break;
        }
        return MNL_CB_OK;
    }, &ctx);
    return li;
}

AddrInfo parse_addr(const nlmsghdr* nlh) {
    AddrInfo ai;
    const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
    ai.index = int(ifa->ifa_index);
    ai.addr.family = ifa->ifa_family;
    ai.addr.prefix = ifa->ifa_prefixlen;
    ai.flags = ifa->ifa_flags;
    mnl_attr_parse(nlh, sizeof(ifaddrmsg), [](const nlattr* a, void* data) -> int {
        auto& ai = *static_cast<AddrInfo*>(data);
        auto t = mnl_attr_get_type(a);
        if ((t == IFA_LOCAL || (t == IFA_ADDRESS && ai.addr.family == AF_INET6)) &&
            mnl_attr_get_payload_len(a) <= 16)
            memcpy(ai.addr.bytes.data(), mnl_attr_get_payload(a), mnl_attr_get_payload_len(a));
        if (t == IFA_FLAGS) ai.flags = mnl_attr_get_u32(a);
        return MNL_CB_OK;
    }, &ai);
    return ai;
}

RouteInfo parse_route(const nlmsghdr* nlh) {
    RouteInfo ri;
    const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
    ri.family = rtm->rtm_family;
    ri.dst_len = rtm->rtm_dst_len;
    mnl_attr_parse(nlh, sizeof(rtmsg), [](const nlattr* a, void* data) -> int {
        auto& ri = *static_cast<RouteInfo*>(data);
        if (mnl_attr_get_type(a) == RTA_OIF) ri.oif = int(mnl_attr_get_u32(a));
        if (mnl_attr_get_type(a) == RTA_GATEWAY && mnl_attr_get_payload_len(a) <= 16) {
            Cidr g;
            g.family = ri.family;
            g.prefix = ri.family == AF_INET ? 32 : 128;
            memcpy(g.bytes.data(), mnl_attr_get_payload(a), mnl_attr_get_payload_len(a));
            ri.gateway = g;
        }
        return MNL_CB_OK;
    }, &ri);
    return ri;
}

Result<Rtnl> Rtnl::open(std::string where) {
    Rtnl r;
    r.nl_ = TRY(Netlink::open(NETLINK_ROUTE, std::move(where)));
    return r;
}

Result<std::optional<LinkInfo>> Rtnl::get_link(const std::string& name) {
    Message m = msg_get_link(name);
    std::optional<LinkInfo> out;
    auto st = nl_.dump(m, [&](const nlmsghdr* nlh) {
        if (nlh->nlmsg_type == RTM_NEWLINK) out = parse_link(nlh);
    }, cat("look up interface ", name));
    if (!st) {
        if (nl_.last_errno() == ENODEV) return std::optional<LinkInfo>();
        return std::move(st).error();
    }
    return out;
}

namespace {
// SIOCGIFINDEX, not RTM_GETLINK: a link lookup takes the RTNL lock and
// makes the kernel first apply the link's pending carrier change, which for
// a veth just made waits for an RCU grace period with the lock held. The
// ioctl reads the name table, and any socket answers it for its namespace.
int ioctl_index(int fd, const std::string& name) {
    struct ifreq ifr = {};
    if (name.size() >= sizeof ifr.ifr_name) {
        errno = ENODEV;
        return -1;
    }
    memcpy(ifr.ifr_name, name.data(), name.size());
    if (::ioctl(fd, SIOCGIFINDEX, &ifr) != 0) return -1;
    return ifr.ifr_ifindex;
}
}  // namespace

Result<int> Rtnl::index_of(const std::string& name, std::string_view what) {
    // 0 in a dry run: the interface may be one the plan only names.
    long index = trace::call_quiet([&] { return ioctl_index(nl_.fd(), name); });
    if (index < 0) return sys_error(cat(what, " '", name, "'"));
    return static_cast<int>(index);
}

bool Rtnl::may_exist(const std::string& name) { return ioctl_index(nl_.fd(), name) >= 0 || errno != ENODEV; }

bool Rtnl::exists(int index) {
    struct ifreq ifr = {};
    ifr.ifr_ifindex = index;
    return ::ioctl(nl_.fd(), SIOCGIFNAME, &ifr) == 0;
}

Status Rtnl::create_veth(const std::string& host, const std::string& peer, int peer_netns_fd, uint32_t mtu,
                         int master, uint32_t group) {
    Message m = msg_new_veth(host, peer, peer_netns_fd, mtu, master, group);
    return nl_.request(m, cat("create veth pair ", host, " (host) and ", peer, " (container)"));
}

Status Rtnl::create_bridge(const std::string& name) {
    Message m = msg_new_bridge(name);
    return nl_.request(m, cat("create bridge ", name));
}

Status Rtnl::delete_link(const std::string& name) {
    Message m = msg_del_link(name);
    return nl_.request(m, cat("delete interface ", name));
}

Status Rtnl::delete_group(uint32_t group) {
    Message m = msg_del_group(group);
    return nl_.request(m, cat("delete the interfaces of link group ", group));
}

Status Rtnl::set_link(const LinkChange& c, std::string_view what) {
    Message m = msg_set_link(c);
    return nl_.request(m, what);
}

Status Rtnl::add_address(int index, const std::string& ifname, const Cidr& a) {
    Message m = msg_new_addr(index, ifname, a);
    return nl_.request(m, cat("add address ", a.str(), " to ", ifname));
}

Status Rtnl::add_default_route(int index, const std::string& ifname, const Cidr& gateway) {
    Message m = msg_new_default_route(index, ifname, gateway);
    return nl_.request(m, cat("add default route via ", gateway.addr_str(), " on ", ifname));
}

Result<std::vector<AddrInfo>> Rtnl::addresses(int family) {
    Message m = msg_dump_addrs(family);
    std::vector<AddrInfo> out;
    TRY(nl_.dump(m, [&](const nlmsghdr* nlh) {
        if (nlh->nlmsg_type == RTM_NEWADDR) out.push_back(parse_addr(nlh));
    }, "list addresses"));
    return out;
}

}  // namespace kago::net
