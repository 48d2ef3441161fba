// lib/net: everything that needs no privilege. Netlink messages are built
// and parsed back; nftables batches are parsed back with libnftnl.
#include <gtest/gtest.h>
#include <linux/veth.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/sys.hpp"
#include "net/addr.hpp"
#include "net/host.hpp"
#include "net/lease.hpp"
#include "net/netlink.hpp"
#include "net/nft.hpp"
#include "net/rtnl.hpp"
#include "net/setup.hpp"
#include "net/usermode.hpp"

using namespace kago;
using namespace kago::net;

TEST(NetCidr, ParsesV4AndV6) {
    auto c = parse_cidr("10.88.0.2/16", "--address");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->family, AF_INET);
    EXPECT_EQ(c->prefix, 16);
    EXPECT_TRUE(c->had_prefix);
    EXPECT_EQ(c->str(), "10.88.0.2/16");
    EXPECT_EQ(c->network().str(), "10.88.0.0/16");
    auto d = parse_cidr("fd00:1::2/64", "--address6");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->family, AF_INET6);
    EXPECT_EQ(d->network().addr_str(), "fd00:1::");
    auto bare = parse_cidr("192.168.1.7", "--address");
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->prefix, 32);
    EXPECT_FALSE(bare->had_prefix);
}

TEST(NetCidr, RejectsBadInputNamingTheOption) {
    for (const char* bad : {"", "10.88.0.0/33", "10.88.0/16", "10.88.0.0/", "10.88.0.0/x", "fd00::/129", "hello"}) {
        auto c = parse_cidr(bad, "--subnet");
        ASSERT_FALSE(c) << bad;
        EXPECT_NE(c.error().what.find("--subnet"), std::string::npos) << c.error().what;
    }
}

TEST(NetCidr, ContainsAndHosts) {
    auto net = *parse_cidr("10.250.1.0/24", "x");
    EXPECT_TRUE(net.contains(*parse_addr("10.250.1.77", "x")));
    EXPECT_FALSE(net.contains(*parse_addr("10.250.2.1", "x")));
    EXPECT_FALSE(net.contains(*parse_addr("fd00::1", "x")));
    EXPECT_EQ(host_count(net), 254u);
    EXPECT_EQ(nth_host(net, 1)->addr_str(), "10.250.1.1");
    EXPECT_EQ(nth_host(net, 254)->addr_str(), "10.250.1.254");
    EXPECT_FALSE(nth_host(net, 255));
    EXPECT_EQ(gateway_of(net).str(), "10.250.1.1/24");
    auto net6 = *parse_cidr("fd00:250::/64", "x");
    EXPECT_EQ(gateway_of(net6).addr_str(), "fd00:250::1");
}

TEST(NetCidr, CheckAddressAgainstSubnet) {
    auto subnet = *parse_cidr("10.250.1.0/24", "--subnet");
    auto ok = check_address(*parse_cidr("10.250.1.9", "--address"), subnet);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->str(), "10.250.1.9/24");
    auto outside = check_address(*parse_cidr("10.99.0.2/24", "--address"), subnet);
    ASSERT_FALSE(outside);
    EXPECT_NE(outside.error().what.find("outside the subnet"), std::string::npos);
    EXPECT_NE(outside.error().what.find("--address"), std::string::npos);
    EXPECT_FALSE(check_address(*parse_cidr("10.250.1.1", "--address"), subnet));    // the gateway
    EXPECT_FALSE(check_address(*parse_cidr("10.250.1.255", "--address"), subnet));  // broadcast
    EXPECT_FALSE(check_address(*parse_cidr("10.250.1.0", "--address"), subnet));    // network
    // A narrower prefix than the subnet's is kept.
    auto big = *parse_cidr("10.88.0.0/16", "--subnet");
    EXPECT_EQ(check_address(*parse_cidr("10.88.0.2/24", "--address"), big)->str(), "10.88.0.2/24");
}

TEST(NetPublish, Parses) {
    auto p = parse_publish("8080:80");
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->host_ip);
    EXPECT_EQ(p->host_port, 8080);
    EXPECT_EQ(p->port, 80);
    EXPECT_EQ(p->proto, IPPROTO_TCP);
    auto q = parse_publish("127.0.0.1:5353:53/udp");
    ASSERT_TRUE(q);
    EXPECT_EQ(q->host_ip->addr_str(), "127.0.0.1");
    EXPECT_EQ(q->proto, IPPROTO_UDP);
    EXPECT_EQ(q->str(), "127.0.0.1:5353:53/udp");
    auto r = parse_publish("[::1]:8443:443/tcp");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->host_ip->family, AF_INET6);
}

TEST(NetPublish, RejectsBadSpecs) {
    for (const char* bad : {"", "80", "0:80", "8080:70000", "8080:80/sctp", "a:b", "1.2.3:80:80", "1:2:3:4", "[::1:80:80"}) {
        auto p = parse_publish(bad);
        ASSERT_FALSE(p) << bad;
        EXPECT_NE(p.error().what.find("--publish"), std::string::npos);
    }
}

TEST(NetIfname, IfnamsizAndCharacters) {
    EXPECT_TRUE(validate_ifname("eth0", "--ifname"));
    EXPECT_TRUE(validate_ifname("abcdefghijklmno", "--ifname"));  // 15 bytes
    auto long_name = validate_ifname("abcdefghijklmnop", "--bridge");
    ASSERT_FALSE(long_name);
    EXPECT_NE(long_name.error().what.find("IFNAMSIZ"), std::string::npos);
    EXPECT_NE(long_name.error().what.find("--bridge"), std::string::npos);
    EXPECT_FALSE(validate_ifname("", "--ifname"));
    EXPECT_FALSE(validate_ifname("a/b", "--ifname"));
    EXPECT_FALSE(validate_ifname("a:b", "--ifname"));
    EXPECT_FALSE(validate_ifname("a b", "--ifname"));
    EXPECT_FALSE(validate_ifname("..", "--ifname"));
}

// Found by tests/fuzz/net-addr.cpp: the kernel's dev_valid_name() refuses
// every byte its isspace() takes, which includes \v, \f, \r and 0xa0.
TEST(NetIfname, EveryKernelSpaceIsRefused) {
    for (const char* name : {"a\vb", "a\fb", "a\rb", "\xff\r", "a\xa0"})
        EXPECT_FALSE(validate_ifname(name, "--ifname")) << name;
    EXPECT_TRUE(validate_ifname("a\xe9", "--ifname"));
    EXPECT_EQ(veth_host_name("a\rb").size(), 10u);
}

TEST(NetIfname, VethHostName) {
    EXPECT_EQ(veth_host_name("web"), "kgweb");
    EXPECT_EQ(veth_host_name("1a2b3c4d"), "kg1a2b3c4d");
    std::string h = veth_host_name("a-very-long-container-name");
    EXPECT_EQ(h.size(), 10u);
    EXPECT_EQ(h.substr(0, 2), "kg");
    EXPECT_EQ(h, veth_host_name("a-very-long-container-name"));
    EXPECT_NE(h, veth_host_name("a-very-long-container-name2"));
}

TEST(NetLease, AllocatesLowestFreeSkippingGateway) {
    auto subnet = *parse_cidr("10.250.3.0/29", "x");  // hosts .1 to .6
    auto gw = gateway_of(subnet);
    lease::LeaseFile f;
    auto a = f.allocate(subnet, gw);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->str(), "10.250.3.2/29");
    for (int i = 2; i <= 6; ++i)
        f.entries.push_back({*parse_addr(cat("10.250.3.", i), "x"), cat("c", i), {100 + i, 7}});
    EXPECT_FALSE(f.allocate(subnet, gw));  // full
    f.reap([](const lease::LeaseFile::Entry& e) { return e.name == "c4"; });
    EXPECT_EQ(f.allocate(subnet, gw)->addr_str(), "10.250.3.4");
    EXPECT_TRUE(f.in_use(*parse_addr("10.250.3.5", "x")));
}

TEST(NetLease, FileRoundTrip) {
    lease::LeaseFile f;
    f.created_bridge = true;
    f.netns = 4026531840;
    f.entries.push_back({*parse_addr("10.88.0.2", "x"), "web", {1234, 99887766}});
    f.entries.push_back({*parse_addr("10.88.0.3", "x"), "db", {1235, 99887767}});
    std::string text = f.format("kago0");
    auto g = lease::LeaseFile::parse(text);
    EXPECT_TRUE(g.created_bridge);
    EXPECT_EQ(g.netns, 4026531840u);
    ASSERT_EQ(g.entries.size(), 2u);
    EXPECT_EQ(g.entries[1].name, "db");
    EXPECT_EQ(g.entries[1].owner.pid, 1235);
    EXPECT_EQ(g.entries[1].owner.start, 99887767u);
    EXPECT_EQ(g.format("kago0"), text);
}

// Found by tests/fuzz/lease.cpp: a pid beyond pid_t was cast, so that
// 4294967297 named pid 1 and the lease looked owned by a live process.
TEST(NetLease, APidBeyondPidTIsRefused) {
    auto g = lease::LeaseFile::parse("10.88.0.2 web 4294967297 5\n10.88.0.3 db 77 5\n");
    ASSERT_EQ(g.entries.size(), 1u);
    EXPECT_EQ(g.entries[0].name, "db");
    auto r = lease::Record::parse("web", "pid=4294967297\nstart=5\n");
    EXPECT_EQ(r.owner().pid, 0);
}

TEST(NetLease, OwnerLiveness) {
    lease::Owner me = lease::self();
    EXPECT_GT(me.start, 0u);
    EXPECT_TRUE(lease::alive(me));
    EXPECT_FALSE(lease::alive({me.pid, me.start + 1}));  // same pid, another process
    EXPECT_FALSE(lease::alive({0, 0}));
}

TEST(NetLease, RecordRoundTrip) {
    lease::Record r;
    r.name = "web";
    r.kv = {{"pid", "12"}, {"start", "34"}, {"veth", "kgweb"}};
    auto s = lease::Record::parse("web", r.format());
    EXPECT_EQ(s.get("veth"), "kgweb");
    EXPECT_EQ(s.owner().pid, 12);
    EXPECT_EQ(s.owner().start, 34u);
    EXPECT_EQ(s.get("missing"), "");
}

namespace {
// Parse the attributes of the peer nest of a veth message.
const nlattr* find_attr(const nlmsghdr* nlh, size_t hdrlen, uint16_t type) {
    const nlattr* found = nullptr;
    int len = int(nlh->nlmsg_len) - int(MNL_NLMSG_HDRLEN + MNL_ALIGN(hdrlen));
    auto* a = reinterpret_cast<const nlattr*>(static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + MNL_ALIGN(hdrlen));
    for (; mnl_attr_ok(a, len); len -= int(MNL_ALIGN(a->nla_len)), a = mnl_attr_next(a))
        if (mnl_attr_get_type(a) == type) found = a;
    return found;
}
// The VETH_INFO_PEER attribute of a new veth message: an ifinfomsg of the
// peer's own, then its attributes.
const nlattr* veth_peer(const nlmsghdr* nlh) {
    auto nested = [](const nlattr* nest, uint16_t type) {
        const nlattr* found = nullptr;
        int left = int(mnl_attr_get_payload_len(nest));
        auto* a = static_cast<const nlattr*>(mnl_attr_get_payload(nest));
        for (; mnl_attr_ok(a, left); left -= int(MNL_ALIGN(a->nla_len)), a = mnl_attr_next(a))
            if (mnl_attr_get_type(a) == type) found = a;
        return found;
    };
    const nlattr* info = find_attr(nlh, sizeof(ifinfomsg), IFLA_LINKINFO);
    const nlattr* data = info ? nested(info, IFLA_INFO_DATA) : nullptr;
    return data ? nested(data, VETH_INFO_PEER) : nullptr;
}
}  // namespace

TEST(NetRtnl, VethMessageParsesBack) {
    Message m = msg_new_veth("kgweb", "eth0", 7, 1400, 3);
    EXPECT_EQ(m.nlh->nlmsg_type, RTM_NEWLINK);
    EXPECT_TRUE(m.nlh->nlmsg_flags & NLM_F_CREATE);
    EXPECT_TRUE(m.nlh->nlmsg_flags & NLM_F_EXCL);
    LinkInfo li = parse_link(m.nlh);
    EXPECT_EQ(li.name, "kgweb");
    EXPECT_EQ(li.kind, "veth");
    EXPECT_EQ(li.peer_name, "eth0");
    EXPECT_EQ(li.peer_netns_fd, 7);
    EXPECT_EQ(li.mtu, 1400u);
    EXPECT_EQ(li.master, 3);
    EXPECT_NE(m.desc.find("peer={ifname=\"eth0\", netns_fd=7}"), std::string::npos) << m.desc;
    // One queue each way, on both ends (see msg_new_veth).
    for (uint16_t t : {uint16_t(IFLA_NUM_TX_QUEUES), uint16_t(IFLA_NUM_RX_QUEUES)}) {
        const nlattr* a = find_attr(m.nlh, sizeof(ifinfomsg), t);
        ASSERT_NE(a, nullptr) << t;
        EXPECT_EQ(mnl_attr_get_u32(a), 1u);
    }
    const nlattr* peer = veth_peer(m.nlh);
    ASSERT_NE(peer, nullptr);
    // The peer's attributes follow its own ifinfomsg.
    auto* pa = reinterpret_cast<const nlattr*>(static_cast<const char*>(mnl_attr_get_payload(peer)) +
                                               MNL_ALIGN(sizeof(ifinfomsg)));
    int left = int(mnl_attr_get_payload_len(peer)) - int(MNL_ALIGN(sizeof(ifinfomsg)));
    int queues = 0;
    for (; mnl_attr_ok(pa, left); left -= int(MNL_ALIGN(pa->nla_len)), pa = mnl_attr_next(pa))
        if ((mnl_attr_get_type(pa) == IFLA_NUM_TX_QUEUES || mnl_attr_get_type(pa) == IFLA_NUM_RX_QUEUES) &&
            mnl_attr_get_u32(pa) == 1)
            ++queues;
    EXPECT_EQ(queues, 2);
    // The host end is up as it is made, in the default group unless asked.
    EXPECT_EQ(li.flags & IFF_UP, unsigned(IFF_UP));
    EXPECT_EQ(li.change, unsigned(IFF_UP));
    EXPECT_EQ(li.group, 0u);
    EXPECT_EQ(find_attr(m.nlh, sizeof(ifinfomsg), IFLA_GROUP), nullptr);
}

TEST(NetRtnl, VethInKagoGroupPeerStaysDown) {
    Message m = msg_new_veth("kgweb", "eth0", 7, 0, 0, kVethGroup);
    EXPECT_EQ(parse_link(m.nlh).group, kVethGroup);
    EXPECT_NE(m.desc.find("group=1801545583"), std::string::npos) << m.desc;
    // The peer's ifinfomsg asks for no flag: up before the pair is linked
    // would fail with ENOTCONN.
    const nlattr* peer = veth_peer(m.nlh);
    ASSERT_NE(peer, nullptr);
    ifinfomsg pifi;
    memcpy(&pifi, mnl_attr_get_payload(peer), sizeof pifi);
    EXPECT_EQ(pifi.ifi_flags, 0u);
    EXPECT_EQ(pifi.ifi_change, 0u);
    // The two groups are kago's alone, and differ.
    EXPECT_NE(kVethGroup, kDyingGroup);
    EXPECT_NE(kDyingGroup, 0u);
}

TEST(NetRtnl, GroupMessages) {
    Message del = msg_del_group(kDyingGroup);
    EXPECT_EQ(del.nlh->nlmsg_type, RTM_DELLINK);
    LinkInfo li = parse_link(del.nlh);
    // No index and no name: the kernel then deletes the whole group.
    EXPECT_EQ(li.index, 0);
    EXPECT_EQ(li.name, "");
    EXPECT_EQ(li.group, kDyingGroup);
    EXPECT_EQ(del.desc, "RTM_DELLINK(group=1801545582)");
    LinkChange c;
    c.index = 12;
    c.group = kDyingGroup;
    Message m = msg_set_link(c);
    LinkInfo ch = parse_link(m.nlh);
    EXPECT_EQ(ch.index, 12);
    EXPECT_EQ(ch.group, kDyingGroup);
    EXPECT_EQ(ch.change, 0u);  // nothing else changes
    EXPECT_EQ(ch.name, "");
}

TEST(NetRtnl, BridgeDeleteAndChangeMessages) {
    LinkInfo br = parse_link(msg_new_bridge("kgtest0").nlh);
    EXPECT_EQ(br.kind, "bridge");
    EXPECT_EQ(br.name, "kgtest0");
    Message del = msg_del_link("kgweb");
    EXPECT_EQ(del.nlh->nlmsg_type, RTM_DELLINK);
    EXPECT_EQ(parse_link(del.nlh).name, "kgweb");
    LinkChange c;
    c.name = "dummy0";
    c.index = 5;
    c.netns_fd = 9;
    c.new_name = "net0";
    c.up = true;
    LinkInfo ch = parse_link(msg_set_link(c).nlh);
    EXPECT_EQ(ch.index, 5);
    EXPECT_EQ(ch.netns_fd, 9);
    EXPECT_EQ(ch.name, "net0");
    EXPECT_EQ(ch.flags & IFF_UP, unsigned(IFF_UP));
    EXPECT_EQ(ch.change, unsigned(IFF_UP));
}

TEST(NetRtnl, AddressAndRouteMessages) {
    auto a = *parse_cidr("10.250.1.2/24", "x");
    Message m = msg_new_addr(4, "eth0", a);
    AddrInfo ai = parse_addr(m.nlh);
    EXPECT_EQ(ai.index, 4);
    EXPECT_EQ(ai.addr.str(), "10.250.1.2/24");
    const nlattr* bc = find_attr(m.nlh, sizeof(ifaddrmsg), IFA_BROADCAST);
    ASSERT_NE(bc, nullptr);
    EXPECT_EQ(memcmp(mnl_attr_get_payload(bc), parse_addr("10.250.1.255", "x")->bytes.data(), 4), 0);
    auto a6 = *parse_cidr("fd00::2/64", "x");
    AddrInfo ai6 = parse_addr(msg_new_addr(4, "eth0", a6).nlh);
    EXPECT_EQ(ai6.addr.str(), "fd00::2/64");
    EXPECT_TRUE(ai6.flags & IFA_F_NODAD);
    Message r = msg_new_default_route(4, "eth0", *parse_addr("10.250.1.1", "x"));
    RouteInfo ri = parse_route(r.nlh);
    EXPECT_EQ(ri.family, AF_INET);
    EXPECT_EQ(ri.dst_len, 0);
    EXPECT_EQ(ri.oif, 4);
    ASSERT_TRUE(ri.gateway);
    EXPECT_EQ(ri.gateway->addr_str(), "10.250.1.1");
}

TEST(NetNetlink, ExtackMessageIsRead) {
    // An NLMSG_ERROR as the kernel sends it with NETLINK_CAP_ACK and an
    // NLMSGERR_ATTR_MSG.
    std::vector<char> buf(512, 0);
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = NLMSG_ERROR;
    nlh->nlmsg_flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
    auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr)));
    err->error = -EEXIST;
    err->msg.nlmsg_len = 100;  // ignored: the request is not echoed
    mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, "Device name already exists");
    EXPECT_EQ(extack_message(nlh), "Device name already exists");
    nlh->nlmsg_flags = NLM_F_CAPPED;
    EXPECT_EQ(extack_message(nlh), "");
}

TEST(NetNft, TagRoundTrip) {
    nft::Tag t{"web", 1234, 5678};
    EXPECT_EQ(t.str(), "kago web pid=1234 start=5678");
    auto u = nft::parse_tag(t.str());
    ASSERT_TRUE(u);
    EXPECT_EQ(u->name, "web");
    EXPECT_EQ(u->pid, 1234);
    EXPECT_EQ(u->start, 5678u);
    EXPECT_FALSE(nft::parse_tag("something else"));
    EXPECT_FALSE(nft::parse_tag("kago web pid=0 start=1"));
}

// Container "web" on kago0, 10.88.0.2 in 10.88.0.0/16.
static nft::RuleSpec web_spec() {
    nft::RuleSpec s;
    s.tag = {"web", 42, 4242};
    s.bridge = "kago0";
    s.subnet = *parse_cidr("10.88.0.0/16", "x");
    s.addr4 = *parse_cidr("10.88.0.2/16", "x");
    return s;
}

TEST(NetNft, AddBatchCarriesTaggedRules) {
    nft::RuleSpec s = web_spec();
    s.masquerade = true;
    s.publish = {*parse_publish("8080:80"), *parse_publish("127.0.0.1:5353:53/udp")};
    nft::Batch b = nft::build_add(s, 1000);
    // table + 3 chains + masquerade + 2 publish x 2 chains + 2 masquerades for DNAT
    EXPECT_EQ(b.descs.size(), 1u + 3u + 1u + 4u + 2u);
    auto rules = nft::parse_rules(b.buf.data(), b.len);
    ASSERT_EQ(rules.size(), 7u);
    for (const auto& r : rules) EXPECT_EQ(r.comment, "kago web pid=42 start=4242");
    EXPECT_EQ(rules[0].chain, "postrouting");
    EXPECT_EQ(rules[0].expr_names.back(), "masq");
    EXPECT_EQ(rules[1].chain, "prerouting");
    EXPECT_EQ(rules[1].expr_names.back(), "nat");
    EXPECT_NE(std::find(rules[1].expr_names.begin(), rules[1].expr_names.end(), "fib"), rules[1].expr_names.end());
    EXPECT_EQ(rules[3].chain, "output");
    EXPECT_NE(b.descs[4].find("ip saddr 10.88.0.2 oifname != \"kago0\" masquerade"), std::string::npos) << b.descs[4];
    EXPECT_NE(b.descs[6].find("ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.88.0.2:53"), std::string::npos) << b.descs[6];
}

TEST(NetNft, PublishWithAddress6AddsIpv6Dnat) {
    nft::RuleSpec s = web_spec();
    s.addr6 = *parse_cidr("fd00:1::2/64", "x");
    s.publish = {*parse_publish("8080:80"), *parse_publish("[fd00:1::1]:8443:443")};
    nft::Batch b = nft::build_add(s, 1);
    std::string all;
    for (const auto& d : b.descs) all += d + "\n";
    // IPv4: only the publish without a host address (2 chains), loopback and hairpin masquerades.
    EXPECT_NE(all.find("fib daddr type local tcp dport 8080 dnat ip to 10.88.0.2:80"), std::string::npos) << all;
    EXPECT_EQ(all.find("dnat ip to 10.88.0.2:443"), std::string::npos) << all;
    // IPv6: both, in both chains, and the hairpin masquerade on the /64.
    EXPECT_NE(all.find("fib daddr type local tcp dport 8080 dnat ip6 to [fd00:1::2]:80"), std::string::npos) << all;
    EXPECT_NE(all.find("ip6 daddr fd00:1::1 tcp dport 8443 dnat ip6 to [fd00:1::2]:443"), std::string::npos) << all;
    EXPECT_NE(all.find("ip6 saddr fd00:1::/64 ct status dnat masquerade"), std::string::npos) << all;
    auto rules = nft::parse_rules(b.buf.data(), b.len);
    EXPECT_EQ(rules.size(), 2u + 2u + 4u + 1u);
}

TEST(NetNft, NoRulesWithoutNatOrPublish) {
    nft::RuleSpec s;
    s.tag = {"web", 42, 4242};
    s.addr4 = *parse_cidr("10.88.0.2/16", "x");
    nft::Batch b = nft::build_add(s, 1);
    EXPECT_TRUE(nft::parse_rules(b.buf.data(), b.len).empty());
}

TEST(NetNft, DeleteBatch) {
    nft::Batch b = nft::build_delete({{"postrouting", 7, "kago web pid=1 start=2"}}, true, 10);
    ASSERT_EQ(b.descs.size(), 2u);
    EXPECT_NE(b.descs[0].find("handle 7"), std::string::npos);
    EXPECT_EQ(b.descs[1], "NFT_MSG_DELTABLE(inet kago)");
}

TEST(NetUserMode, PastaAndSlirpArguments) {
    usermode::Helper h{"pasta", "/usr/bin/pasta"};
    auto a = usermode::pasta_argv(h, 4242, {*parse_publish("8080:80"), *parse_publish("127.0.0.1:9000:9000"),
                                            *parse_publish("5353:53/udp")},
                                  0, "/run/x/pasta.pid");
    std::string all;
    for (auto& s : a) all += s + " ";
    EXPECT_NE(all.find("-t 8080:80,127.0.0.1/9000:9000 -u 5353:53 -T none -U none"), std::string::npos) << all;
    EXPECT_EQ(a.back(), "4242");
    auto none = usermode::pasta_argv(h, 1, {}, 1500, "p");
    std::string n;
    for (auto& s : none) n += s + " ";
    EXPECT_NE(n.find("-t none -u none"), std::string::npos);
    EXPECT_NE(n.find("--mtu 1500"), std::string::npos);
    EXPECT_EQ(usermode::slirp_hostfwd_request(*parse_publish("8080:80")),
              R"({"execute": "add_hostfwd", "arguments": {"proto": "tcp", "host_addr": "0.0.0.0", "host_port": 8080, "guest_port": 80}})");
    usermode::Helper s{"slirp4netns", "/usr/bin/slirp4netns"};
    auto sa = usermode::slirp_argv(s, 99, 0, 4, 5, "/tmp/api.sock");
    EXPECT_EQ(sa.back(), "tap0");
    EXPECT_EQ(sa[sa.size() - 2], "/proc/99/ns/net");
}

// What to run by hand after a failure: a shell line that works on its own,
// not our argv with its pid file and a target that is gone.
TEST(NetUserMode, ByHandIsAShellLineWithoutTheDeadTarget) {
    usermode::Helper h{"pasta", "/usr/bin/pasta"};
    EXPECT_EQ(usermode::by_hand(h, {*parse_publish("127.0.0.1:8080:80")}, 1500),
              "/usr/bin/pasta --config-net -t 127.0.0.1/8080:80 -u none -T none -U none --mtu 1500 -- true");
    EXPECT_EQ(usermode::by_hand(h, {}, 0), "/usr/bin/pasta --config-net -t none -u none -T none -U none -- true");
    usermode::Helper s{"slirp4netns", "/opt/my tools/slirp4netns"};
    EXPECT_EQ(usermode::by_hand(s, {}, 0),
              "unshare --user --map-root-user --net sleep 30 & '/opt/my tools/slirp4netns' --configure --mtu=65520 "
              "--disable-host-loopback $! tap0; kill $!");
}

TEST(NetUserMode, TunProblemNamesTheModeUnlessOthersMayReadAndWrite) {
    struct stat st = {};
    st.st_mode = S_IFCHR | 0600;
    EXPECT_EQ(usermode::tun_problem(&st),
              "/dev/net/tun is crw------- (0600, uid 0 gid 0): in the helper's user namespace only the bits for "
              "others count, and they are not rw");
    st.st_mode = S_IFCHR | 0666;
    EXPECT_EQ(usermode::tun_problem(&st), "");
    st.st_mode = S_IFCHR | 0660;
    st.st_gid = 108;
    EXPECT_NE(usermode::tun_problem(&st).find("crw-rw---- (0660, uid 0 gid 108)"), std::string::npos);
    st.st_mode = S_IFREG | 0666;
    EXPECT_EQ(usermode::tun_problem(&st), "/dev/net/tun is not a character device (-rw-rw-rw-)");
    EXPECT_EQ(usermode::tun_problem(nullptr), "/dev/net/tun does not exist");
}

// With one descriptor left below RLIMIT_NOFILE the second pipe fails: the
// first must not stay open (it did: both ends leaked).
TEST(NetUserMode, SlirpStartClosesTheFirstPipeWhenTheSecondFails) {
    struct rlimit old;
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = ::dup(0);
    ASSERT_GE(lowest, 0);
    ::close(lowest);
    // Every descriptor above `lowest` must be free, or the limit proves nothing.
    for (int fd = lowest; fd < lowest + 2; ++fd) ASSERT_EQ(::fcntl(fd, F_GETFD), -1) << fd;
    struct rlimit tight = old;
    tight.rlim_cur = rlim_t(lowest + 2);  // room for one pipe
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);
    usermode::Helper s{"slirp4netns", "/bin/false"};
    auto r = usermode::start(s, ::getpid(), {}, 0, "/nonexistent");
    int e0 = ::fcntl(lowest, F_GETFD), e1 = ::fcntl(lowest + 1, F_GETFD);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err, EMFILE) << r.error().message();
    EXPECT_EQ(e0, -1) << "descriptor " << lowest << " leaked";
    EXPECT_EQ(e1, -1) << "descriptor " << lowest + 1 << " leaked";
}

// The name lookups a start makes without the RTNL lock: no privilege
// needed, lo is in every namespace.
TEST(NetRtnl, MayExistAndIndexOfByIoctl) {
    auto r = Rtnl::open("test");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(r->may_exist("lo"));
    EXPECT_FALSE(r->may_exist("kgnosuchlink0"));
    EXPECT_FALSE(r->may_exist("a-name-longer-than-ifnamsiz"));
    auto lo = r->index_of("lo", "loopback");
    ASSERT_TRUE(lo);
    EXPECT_GT(*lo, 0);
    EXPECT_TRUE(r->exists(*lo));
    auto none = r->index_of("kgnosuchlink0", "veth");
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message().find("veth 'kgnosuchlink0'"), std::string::npos) << none.error().message();
}

TEST(NetLease, ChangedWithinFollowsTheDirectorysMtime) {
    char tmpl[] = "/tmp/kago-unit-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    std::string d = tmpl;
    EXPECT_TRUE(lease::changed_within(1000, d));  // just made
    struct timespec old[2] = {{0, UTIME_OMIT}, {::time(nullptr) - 5, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, d.c_str(), old, 0), 0);
    EXPECT_FALSE(lease::changed_within(1000, d));
    EXPECT_TRUE(lease::changed_within(10000, d));
    int fd = ::open((d + "/x").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);  // a file appears: it changed
    ASSERT_GE(fd, 0);
    ::close(fd);
    EXPECT_TRUE(lease::changed_within(1000, d));
    ::unlink((d + "/x").c_str());
    ::rmdir(d.c_str());
    EXPECT_FALSE(lease::changed_within(1000, d));  // gone
}

TEST(NetLease, WriteInPlaceLeavesExactlyTheNewContent) {
    char tmpl[] = "/tmp/kago-unit-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    std::string f = std::string(tmpl) + "/b.leases";
    auto read = [&] {
        auto r = sys::read_file(f.c_str());
        return r ? *r : std::string("<missing>");
    };
    ASSERT_TRUE(lease::write_in_place(f, "# bridge b existing\n10.0.0.2 a 1 2\n10.0.0.3 b 3 4\n"));
    EXPECT_EQ(read(), "# bridge b existing\n10.0.0.2 a 1 2\n10.0.0.3 b 3 4\n");
    ASSERT_TRUE(lease::write_in_place(f, "# bridge b existing\n10.0.0.3 b 3 4\n"));  // shorter: no tail left
    EXPECT_EQ(read(), "# bridge b existing\n10.0.0.3 b 3 4\n");
    auto parsed = lease::LeaseFile::parse(read() + "\n\n\n");  // the padding a kill could leave
    ASSERT_EQ(parsed.entries.size(), 1u);
    EXPECT_EQ(parsed.entries[0].name, "b");
    ASSERT_TRUE(lease::write_in_place(f, "# bridge b created\n10.0.0.3 b 3 4\n10.0.0.4 c 5 6\n"));  // longer
    EXPECT_EQ(read(), "# bridge b created\n10.0.0.3 b 3 4\n10.0.0.4 c 5 6\n");
    ::unlink(f.c_str());
    ::rmdir(tmpl);
}

// net-setup's options and plan (lib/net/setup).
TEST(NetSetup, ConflictingModesAreNamed) {
    net::Options o;
    EXPECT_EQ(net::conflicts(o), "");
    o.raw = o.veth = true;
    EXPECT_NE(net::conflicts(o).find("exclude each other"), std::string::npos);
    o = {};
    o.nat = true;
    EXPECT_EQ(net::conflicts(o), "--nat needs --veth");
    o = {};
    o.ifname = "x";
    EXPECT_EQ(net::conflicts(o), "--ifname renames the interface given to --move");
    o = {};
    o.helper = "vde";
    EXPECT_NE(net::conflicts(o).find("--user-mode-helper 'vde'"), std::string::npos);
}

TEST(NetSetup, PlanFromTheDefaults) {
    net::Options o;
    auto p = net::check(o);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->bridge, "kago0");
    EXPECT_EQ(p->subnet.str(), "10.88.0.0/16");
    EXPECT_EQ(p->gateway.addr_str(), "10.88.0.1");
    EXPECT_FALSE(p->address);
}

TEST(NetSetup, PlanRejectsBadValuesByOption) {
    net::Options o;
    o.subnet = "10.0.0.0/31";
    auto p = net::check(o);
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().what.find("--subnet"), std::string::npos);
    o = {};
    o.mtu = 50;
    p = net::check(o);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().what, "--mtu 50: must be 68 to 65535");
    o = {};
    o.veth = true;
    o.publish = {"[::1]:8080:80"};
    p = net::check(o);
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().what.find("--publish"), std::string::npos);
}

TEST(NetSetup, PlanWithAnIpv6AddressHasAGateway) {
    net::Options o;
    o.veth = true;
    o.address6 = "fd25:1::5";
    auto p = net::check(o);
    ASSERT_TRUE(p) << p.error().message();
    ASSERT_TRUE(p->address6);
    ASSERT_TRUE(p->gateway6);
    EXPECT_EQ(p->gateway6->addr_str(), "fd25:1::1");
    EXPECT_EQ(p->gateway6->prefix, 64);
}
