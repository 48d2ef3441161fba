#include "net/nft.hpp"

#include <algorithm>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>

#include "core/parse.hpp"
#include "core/trace.hpp"

namespace kago::net::nft {
namespace {

struct ChainDef {
    const char* name;
    unsigned hook;
    int prio;
};
// dstnat (-100) and srcnat (100), as nft(8) names them.
constexpr ChainDef kChains[] = {
    {"prerouting", NF_INET_PRE_ROUTING, -100},
    {"output", NF_INET_LOCAL_OUT, -100},
    {"postrouting", NF_INET_POST_ROUTING, 100},
};

// A rule and its nft(8)-syntax text, built together.
class RuleBuilder {
  public:
    RuleBuilder(const char* chain, const Tag& tag) : chain_(chain), r_(nftnl_rule_alloc()) {
        nftnl_rule_set_u32(r_, NFTNL_RULE_FAMILY, NFPROTO_INET);
        nftnl_rule_set_str(r_, NFTNL_RULE_TABLE, kTable);
        nftnl_rule_set_str(r_, NFTNL_RULE_CHAIN, chain);
        comment_ = tag.str();
        nftnl_udata_buf* ud = nftnl_udata_buf_alloc(256);
        nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, comment_.c_str());
        nftnl_rule_set_data(r_, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
        nftnl_udata_buf_free(ud);
    }
    ~RuleBuilder() { nftnl_rule_free(r_); }
    RuleBuilder(const RuleBuilder&) = delete;
    RuleBuilder& operator=(const RuleBuilder&) = delete;

    void meta(uint32_t key, uint32_t reg = NFT_REG_1) {
        auto* e = nftnl_expr_alloc("meta");
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, reg);
        nftnl_rule_add_expr(r_, e);
    }
    void payload(uint32_t base, uint32_t offset, uint32_t len) {
        auto* e = nftnl_expr_alloc("payload");
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
        nftnl_rule_add_expr(r_, e);
    }
    void cmp(uint32_t op, const void* data, uint32_t len) {
        auto* e = nftnl_expr_alloc("cmp");
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
        nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
        nftnl_rule_add_expr(r_, e);
    }
    void bitwise_and(const void* mask, uint32_t len) {
        auto* e = nftnl_expr_alloc("bitwise");
        std::vector<uint8_t> zero(len, 0);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
        nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
        nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero.data(), len);
        nftnl_rule_add_expr(r_, e);
    }

    // The matches, each with its text.
    void nfproto(uint8_t proto) {
        meta(NFT_META_NFPROTO);
        cmp(NFT_CMP_EQ, &proto, 1);
        text(proto == NFPROTO_IPV4 ? "meta nfproto ipv4" : "meta nfproto ipv6");
    }
    void addr(bool source, const Cidr& a) {
        bool v4 = a.family == AF_INET;
        payload(NFT_PAYLOAD_NETWORK_HEADER, v4 ? (source ? 12 : 16) : (source ? 8 : 24), uint32_t(a.size()));
        cmp(NFT_CMP_EQ, a.bytes.data(), uint32_t(a.size()));
        text(cat(v4 ? "ip " : "ip6 ", source ? "saddr " : "daddr ", a.addr_str()));
    }
    void saddr_in(const Cidr& net) {
        bool v4 = net.family == AF_INET;
        uint32_t len = v4 ? 4 : 16;
        payload(NFT_PAYLOAD_NETWORK_HEADER, v4 ? 12 : 8, len);
        std::array<uint8_t, 16> mask{};
        for (int bit = 0; bit < net.prefix; ++bit) mask[size_t(bit / 8)] |= uint8_t(0x80 >> (bit % 8));
        bitwise_and(mask.data(), len);
        Cidr n = net.network();
        cmp(NFT_CMP_EQ, n.bytes.data(), len);
        text(cat(v4 ? "ip saddr " : "ip6 saddr ", n.str()));
    }
    void oifname(bool equal, const std::string& name) {
        meta(NFT_META_OIFNAME);
        char buf[IFNAMSIZ] = {};
        memcpy(buf, name.data(), std::min(name.size(), sizeof buf - 1));
        cmp(equal ? NFT_CMP_EQ : NFT_CMP_NEQ, buf, IFNAMSIZ);
        text(cat("oifname ", equal ? "" : "!= ", trace::quote(name)));
    }
    void daddr_local() {
        auto* e = nftnl_expr_alloc("fib");
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
        nftnl_rule_add_expr(r_, e);
        uint32_t local = RTN_LOCAL;
        cmp(NFT_CMP_EQ, &local, 4);
        text("fib daddr type local");
    }
    void ct_dnat() {
        auto* e = nftnl_expr_alloc("ct");
        nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATUS);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
        nftnl_rule_add_expr(r_, e);
        uint32_t mask = IPS_DST_NAT, zero = 0;
        bitwise_and(&mask, 4);
        cmp(NFT_CMP_NEQ, &zero, 4);
        text("ct status dnat");
    }
    void l4_dport(int proto, uint16_t port) {
        meta(NFT_META_L4PROTO);
        uint8_t p = uint8_t(proto);
        cmp(NFT_CMP_EQ, &p, 1);
        payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
        uint16_t be = htons(port);
        cmp(NFT_CMP_EQ, &be, 2);
        text(cat(proto == IPPROTO_TCP ? "tcp" : "udp", " dport ", port));
    }
    void masquerade() {
        nftnl_rule_add_expr(r_, nftnl_expr_alloc("masq"));
        text("masquerade");
    }
    void dnat(const Cidr& to, uint16_t port) {
        bool v4 = to.family == AF_INET;
        auto* imm = nftnl_expr_alloc("immediate");
        nftnl_expr_set_u32(imm, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
        nftnl_expr_set(imm, NFTNL_EXPR_IMM_DATA, to.bytes.data(), v4 ? 4 : 16);
        nftnl_rule_add_expr(r_, imm);
        auto* imm2 = nftnl_expr_alloc("immediate");
        uint16_t be = htons(port);
        nftnl_expr_set_u32(imm2, NFTNL_EXPR_IMM_DREG, NFT_REG_2);
        nftnl_expr_set(imm2, NFTNL_EXPR_IMM_DATA, &be, 2);
        nftnl_rule_add_expr(r_, imm2);
        auto* e = nftnl_expr_alloc("nat");
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, v4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
        nftnl_rule_add_expr(r_, e);
        text(v4 ? cat("dnat ip to ", to.addr_str(), ":", port) : cat("dnat ip6 to [", to.addr_str(), "]:", port));
    }

    void put(mnl_nlmsg_batch* b, uint32_t& seq, std::vector<std::string>& descs) {
        auto* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(b)), NFT_MSG_NEWRULE,
                                          NFPROTO_INET, NLM_F_APPEND | NLM_F_CREATE | NLM_F_ACK, seq++);
        nftnl_rule_nlmsg_build_payload(nlh, r_);
        mnl_nlmsg_batch_next(b);
        descs.push_back(cat("NFT_MSG_NEWRULE(inet ", kTable, " ", chain_, ": ", text_, " comment ",
                            trace::quote(comment_), ")"));
    }

  private:
    void text(std::string_view t) {
        if (!text_.empty()) text_ += ' ';
        text_ += t;
    }
    const char* chain_;
    nftnl_rule* r_;
    std::string text_;
    std::string comment_;
};

struct BatchWriter {
    explicit BatchWriter(uint32_t seq) : buf(1 << 16), seq(seq) {
        b = mnl_nlmsg_batch_start(buf.data(), buf.size());
        nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(b)), this->seq++);
        mnl_nlmsg_batch_next(b);
    }
    Batch finish(std::vector<std::string> descs) {
        nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(b)), seq++);
        mnl_nlmsg_batch_next(b);
        Batch out;
        out.len = mnl_nlmsg_batch_size(b);
        mnl_nlmsg_batch_stop(b);
        buf.resize(out.len);
        out.buf = std::move(buf);
        out.descs = std::move(descs);
        return out;
    }
    std::vector<char> buf;
    mnl_nlmsg_batch* b;
    uint32_t seq;
};

}  // namespace

std::string Tag::str() const { return cat("kago ", name, " pid=", pid, " start=", start); }

std::optional<Tag> parse_tag(std::string_view comment) {
    auto f = parse::split(comment, ' ');
    if (f.size() != 4 || f[0] != "kago" || f[2].rfind("pid=", 0) != 0 || f[3].rfind("start=", 0) != 0)
        return std::nullopt;
    auto pid = parse::u64(f[2].substr(4), "pid");
    auto start = parse::u64(f[3].substr(6), "start");
    if (!pid || !start || *pid == 0 || *pid > 0x7fffffff) return std::nullopt;
    return Tag{f[1], pid_t(*pid), *start};
}

Batch build_add(const RuleSpec& s, uint32_t seq) {
    BatchWriter w(seq);
    std::vector<std::string> descs;
    {
        nftnl_table* t = nftnl_table_alloc();
        nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
        nftnl_table_set_str(t, NFTNL_TABLE_NAME, kTable);
        auto* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(w.b)), NFT_MSG_NEWTABLE,
                                          NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK, w.seq++);
        nftnl_table_nlmsg_build_payload(nlh, t);
        nftnl_table_free(t);
        mnl_nlmsg_batch_next(w.b);
        descs.push_back(cat("NFT_MSG_NEWTABLE(inet ", kTable, ", NLM_F_CREATE)"));
    }
    for (const auto& c : kChains) {
        nftnl_chain* ch = nftnl_chain_alloc();
        nftnl_chain_set_u32(ch, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
        nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, kTable);
        nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, c.name);
        nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, "nat");
        nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM, c.hook);
        nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO, c.prio);
        auto* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(w.b)), NFT_MSG_NEWCHAIN,
                                          NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK, w.seq++);
        nftnl_chain_nlmsg_build_payload(nlh, ch);
        nftnl_chain_free(ch);
        mnl_nlmsg_batch_next(w.b);
        descs.push_back(cat("NFT_MSG_NEWCHAIN(inet ", kTable, " ", c.name, ", type nat hook ", c.name,
                            " priority ", c.prio, ", NLM_F_CREATE)"));
    }
    if (s.masquerade && s.addr4) {
        RuleBuilder r("postrouting", s.tag);
        r.nfproto(NFPROTO_IPV4);
        r.addr(true, *s.addr4);
        r.oifname(false, s.bridge);
        r.masquerade();
        r.put(w.b, w.seq, descs);
    }
    if (s.masquerade && s.addr6) {
        RuleBuilder r("postrouting", s.tag);
        r.nfproto(NFPROTO_IPV6);
        r.addr(true, *s.addr6);
        r.oifname(false, s.bridge);
        r.masquerade();
        r.put(w.b, w.seq, descs);
    }
    // --publish: DNAT to the container from the host's own addresses, or
    // from HOSTIP, for each family the container has an address in (a
    // HOSTIP selects its family).
    for (const auto* to : {&s.addr4, &s.addr6}) {
        if (!*to || s.publish.empty()) continue;
        bool v4 = (*to)->family == AF_INET;
        uint8_t proto = v4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
        size_t rules = 0;
        for (const char* chain : {"prerouting", "output"}) {
            for (const auto& p : s.publish) {
                if (p.host_ip && p.host_ip->family != (*to)->family) continue;
                RuleBuilder r(chain, s.tag);
                r.nfproto(proto);
                if (p.host_ip) r.addr(false, *p.host_ip);
                else r.daddr_local();
                r.l4_dport(p.proto, p.host_port);
                r.dnat(**to, p.port);
                r.put(w.b, w.seq, descs);
                ++rules;
            }
        }
        if (!rules) continue;
        // Connections from the host's loopback (route_localnet lets them
        // leave through the bridge; IPv6 has no such thing, so ::1 is not
        // forwarded) and from the container's own subnet (hairpin) must
        // come back through the host: masquerade them.
        if (v4) {
            RuleBuilder r("postrouting", s.tag);
            r.nfproto(proto);
            r.addr(false, **to);
            r.saddr_in(cidr_v4(0x7f000000, 8));
            r.masquerade();
            r.put(w.b, w.seq, descs);
        }
        const Cidr& subnet = v4 ? s.subnet : (*to)->network();
        RuleBuilder r("postrouting", s.tag);
        r.nfproto(proto);
        r.addr(false, **to);
        r.saddr_in(subnet);
        r.ct_dnat();
        r.masquerade();
        r.put(w.b, w.seq, descs);
    }
    return w.finish(std::move(descs));
}

Batch build_delete(const std::vector<RuleRef>& rules, bool delete_table, uint32_t seq) {
    BatchWriter w(seq);
    std::vector<std::string> descs;
    for (const auto& rr : rules) {
        nftnl_rule* r = nftnl_rule_alloc();
        nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, kTable);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, rr.chain.c_str());
        nftnl_rule_set_u64(r, NFTNL_RULE_HANDLE, rr.handle);
        auto* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(w.b)), NFT_MSG_DELRULE,
                                          NFPROTO_INET, NLM_F_ACK, w.seq++);
        nftnl_rule_nlmsg_build_payload(nlh, r);
        nftnl_rule_free(r);
        mnl_nlmsg_batch_next(w.b);
        descs.push_back(cat("NFT_MSG_DELRULE(inet ", kTable, " ", rr.chain, " handle ", rr.handle, " /* ",
                            rr.comment, " */)"));
    }
    if (delete_table) {
        nftnl_table* t = nftnl_table_alloc();
        nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
        nftnl_table_set_str(t, NFTNL_TABLE_NAME, kTable);
        auto* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(w.b)), NFT_MSG_DELTABLE,
                                          NFPROTO_INET, NLM_F_ACK, w.seq++);
        nftnl_table_nlmsg_build_payload(nlh, t);
        nftnl_table_free(t);
        mnl_nlmsg_batch_next(w.b);
        descs.push_back(cat("NFT_MSG_DELTABLE(inet ", kTable, ")"));
    }
    return w.finish(std::move(descs));
}

namespace {
std::string rule_comment(nftnl_rule* r) {
    if (!nftnl_rule_is_set(r, NFTNL_RULE_USERDATA)) return "";
    uint32_t len = 0;
    const void* data = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
    std::string out;
    const auto* p = static_cast<const uint8_t*>(data);
    // TLVs: type (1 byte), length (1 byte), value.
    for (uint32_t i = 0; i + 2 <= len;) {
        uint8_t type = p[i], l = p[i + 1];
        if (i + 2 + l > len) break;
        if (type == NFTNL_UDATA_RULE_COMMENT) out.assign(reinterpret_cast<const char*>(p + i + 2), strnlen(reinterpret_cast<const char*>(p + i + 2), l));
        i += 2 + l;
    }
    return out;
}
}  // namespace

std::vector<ParsedRule> parse_rules(const void* data, size_t len) {
    std::vector<ParsedRule> out;
    int rest = int(len);
    for (auto* nlh = static_cast<const nlmsghdr*>(data); mnl_nlmsg_ok(nlh, rest); nlh = mnl_nlmsg_next(nlh, &rest)) {
        if ((nlh->nlmsg_type & 0xff) != NFT_MSG_NEWRULE) continue;
        if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES) continue;
        nftnl_rule* r = nftnl_rule_alloc();
        if (nftnl_rule_nlmsg_parse(nlh, r) == 0) {
            ParsedRule pr;
            pr.chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
            pr.comment = rule_comment(r);
            nftnl_expr_iter* it = nftnl_expr_iter_create(r);
            while (nftnl_expr* e = nftnl_expr_iter_next(it)) {
                ++pr.expressions;
                pr.expr_names.push_back(nftnl_expr_get_str(e, NFTNL_EXPR_NAME));
            }
            nftnl_expr_iter_destroy(it);
            out.push_back(std::move(pr));
        }
        nftnl_rule_free(r);
    }
    return out;
}

Result<Nft> Nft::open(std::string where) {
    Nft n;
    n.nl_ = TRY(Netlink::open(NETLINK_NETFILTER, std::move(where)));
    return n;
}

Status Nft::add(const RuleSpec& spec) {
    Batch b = build_add(spec, nl_.take_seqs(64));
    auto sent =
        TRY(nl_.batch(b.buf.data(), b.len, b.descs,
                      cat("add nftables rules for ", spec.tag.name, " to table inet ", kTable)));
    added_ = sent == trace::Made::yes;
    return {};
}

Result<std::vector<RuleRef>> Nft::list() {
    std::vector<RuleRef> out;
    table_exists_ = false;
    if (!added_) {
        // A rule dump filtered on a missing table is just empty: ask for the table first.
        Message t;
        nftnl_nlmsg_build_hdr(t.buf.data(), NFT_MSG_GETTABLE, NFPROTO_INET, 0, 0);
        nftnl_table* tt = nftnl_table_alloc();
        nftnl_table_set_str(tt, NFTNL_TABLE_NAME, kTable);
        nftnl_table_nlmsg_build_payload(t.nlh, tt);
        nftnl_table_free(tt);
        auto st = nl_.dump(t, [](const nlmsghdr*) {}, cat("look up table inet ", kTable));
        if (!st) {
            if (nl_.last_errno() == ENOENT) return out;
            return std::move(st).error();
        }
    }
    Message m;
    nftnl_nlmsg_build_hdr(m.buf.data(), NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, 0);
    nftnl_rule* r = nftnl_rule_alloc();
    nftnl_rule_set_str(r, NFTNL_RULE_TABLE, kTable);
    nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
    nftnl_rule_nlmsg_build_payload(m.nlh, r);
    nftnl_rule_free(r);
    auto st = nl_.dump(m, [&](const nlmsghdr* nlh) {
        nftnl_rule* rr = nftnl_rule_alloc();
        if (nftnl_rule_nlmsg_parse(nlh, rr) == 0 &&
            std::string_view(nftnl_rule_get_str(rr, NFTNL_RULE_TABLE)) == kTable) {
            out.push_back(RuleRef{nftnl_rule_get_str(rr, NFTNL_RULE_CHAIN), nftnl_rule_get_u64(rr, NFTNL_RULE_HANDLE),
                                  rule_comment(rr)});
        }
        nftnl_rule_free(rr);
    }, cat("list the rules of table inet ", kTable));
    if (!st) {
        if (nl_.last_errno() == ENOENT) return std::vector<RuleRef>();
        return std::move(st).error();
    }
    // Without the table the dump is empty; after add() ours are in it. A
    // dry run asked nothing: no table to remove.
    table_exists_ = st.value() == trace::Made::yes && (!added_ || !out.empty());
    return out;
}

Status Nft::remove(const std::function<bool(const Tag&)>& mine) {
    auto all = TRY(list());
    std::vector<RuleRef> del;
    size_t others = 0;
    for (auto& r : all) {
        auto tag = parse_tag(r.comment);
        if (tag && mine(*tag)) del.push_back(r);
        else ++others;
    }
    if (!table_exists_) return {};
    // The table exists only while it holds rules: once empty, it goes.
    if (del.empty() && others > 0) return {};
    // The kernel acks every message; more than about 250 acks at once
    // overflow the socket's receive buffer (ENOBUFS), as in a --gc after
    // many killed containers. Batches of kMaxDelete rules, the table with
    // the last.
    constexpr size_t kMaxDelete = 128;
    size_t at = 0;
    do {
        size_t n = std::min(kMaxDelete, del.size() - at);
        std::vector<RuleRef> part(del.begin() + long(at), del.begin() + long(at + n));
        at += n;
        bool last = at == del.size();
        Batch b = build_delete(part, last && others == 0, nl_.take_seqs(uint32_t(n + 8)));
        TRY(nl_.batch(b.buf.data(), b.len, b.descs, cat("delete nftables rules from table inet ", kTable)));
        if (last && others == 0) added_ = false;  // the table went with them
    } while (at < del.size());
    return {};
}

}  // namespace kago::net::nft
