#include "net/netlink.hpp"

#include <libmnl/libmnl.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/trace.hpp"

namespace kago::net {

Message::Message() : buf(MNL_SOCKET_BUFFER_SIZE, 0), nlh(mnl_nlmsg_put_header(buf.data())) {}

std::string extack_message(const nlmsghdr* nlh) {
    if (nlh->nlmsg_type != NLMSG_ERROR || !(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
    const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
    size_t off = sizeof(nlmsgerr);
    // Without NLM_F_CAPPED the whole request is echoed after the header.
    if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += err->msg.nlmsg_len - sizeof(nlmsghdr);
    if (mnl_nlmsg_get_payload_len(nlh) < off) return "";
    std::string msg;
    const auto* payload = static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + off;
    int len = int(mnl_nlmsg_get_payload_len(nlh) - off);
    for (auto* a = reinterpret_cast<const nlattr*>(payload); mnl_attr_ok(a, len);) {
        if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG) msg = mnl_attr_get_str(a);
        len -= int(MNL_ALIGN(a->nla_len));
        a = mnl_attr_next(a);
    }
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\0')) msg.pop_back();
    return msg;
}

Netlink::Netlink(Netlink&& o) noexcept
    : nl_(o.nl_), seq_(o.seq_), portid_(o.portid_), last_errno_(o.last_errno_), where_(std::move(o.where_)),
      rx_(std::move(o.rx_)) {
    o.nl_ = nullptr;
}
Netlink& Netlink::operator=(Netlink&& o) noexcept {
    if (this != &o) {
        if (nl_) mnl_socket_close(nl_);
        nl_ = o.nl_;
        o.nl_ = nullptr;
        seq_ = o.seq_;
        portid_ = o.portid_;
        last_errno_ = o.last_errno_;
        where_ = std::move(o.where_);
        rx_ = std::move(o.rx_);
    }
    return *this;
}
Netlink::~Netlink() {
    if (nl_) mnl_socket_close(nl_);
}
int Netlink::fd() const { return nl_ ? mnl_socket_get_fd(nl_) : -1; }

Result<Netlink> Netlink::open(int bus, std::string where) {
    Netlink n;
    n.where_ = std::move(where);
    const char* busname = bus == NETLINK_ROUTE ? "NETLINK_ROUTE" : "NETLINK_NETFILTER";
    n.nl_ = mnl_socket_open2(bus, SOCK_CLOEXEC);
    if (!n.nl_) return sys_error(cat("open netlink socket ", busname, " (", n.where_, ")"));
    int one = 1;
    // Both are best effort: old kernels lack them, and errors stay readable.
    mnl_socket_setsockopt(n.nl_, NETLINK_EXT_ACK, &one, sizeof one);
    mnl_socket_setsockopt(n.nl_, NETLINK_CAP_ACK, &one, sizeof one);
    if (mnl_socket_bind(n.nl_, 0, MNL_SOCKET_AUTOPID) < 0)
        return sys_error(cat("bind netlink socket ", busname, " (", n.where_, ")"));
    n.portid_ = mnl_socket_get_portid(n.nl_);
    n.seq_ = uint32_t(time(nullptr)) << 8;
    return n;
}

Status Netlink::wait_acks(uint32_t first_seq, uint32_t last_seq, uint32_t want,
                          const std::function<void(const nlmsghdr*)>* each, std::string_view what) {
    constexpr size_t kRx = 32768;
    if (!rx_) rx_.reset(new char[kRx]);
    char* buf = rx_.get();
    uint32_t acked = 0;
    int first_err = 0;
    std::string first_msg;
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl_, buf, kRx);
        if (n < 0) {
            if (errno == EINTR) continue;
            last_errno_ = errno;
            return sys_error(cat(what, ": receive netlink answer"));
        }
        int len = int(n);
        for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf); mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            if (nlh->nlmsg_pid != portid_ && nlh->nlmsg_pid != 0) continue;
            if (nlh->nlmsg_seq < first_seq || nlh->nlmsg_seq > last_seq) continue;  // a stale answer
            if (nlh->nlmsg_type == NLMSG_DONE) return {};
            if (nlh->nlmsg_type == NLMSG_ERROR) {
                const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
                if (e->error != 0 && first_err == 0) {
                    first_err = -e->error;
                    first_msg = extack_message(nlh);
                }
                if (++acked >= want || e->error != 0) {
                    if (first_err == 0) return {};
                    last_errno_ = first_err;
                    if (first_msg.empty()) {
                        errno = first_err;
                        return sys_error(std::string(what));
                    }
                    return usage_error(cat(what, ": ", first_msg, " (", strerror(first_err), ")"));
                }
                continue;
            }
            if (each) (*each)(nlh);
            if (!(nlh->nlmsg_flags & NLM_F_MULTI) && each && want == 1) return {};
        }
    }
}

Status Netlink::request(Message& m, std::string_view what) {
    m.nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    m.nlh->nlmsg_seq = next_seq();
    Status st;
    long r = trace::call([&] { return cat(m.desc, " /* ", where_, " */"); },
                         [&]() -> long {
                             if (mnl_socket_sendto(nl_, m.nlh, m.nlh->nlmsg_len) < 0) {
                                 last_errno_ = errno;
                                 st = sys_error(cat(what, ": send netlink request"));
                                 return -1;
                             }
                             st = wait_acks(m.nlh->nlmsg_seq, m.nlh->nlmsg_seq, 1, nullptr, what);
                             if (!st) {
                                 errno = last_errno_;
                                 return -1;
                             }
                             return 0;
                         });
    (void)r;
    return st;
}

Result<trace::Made> Netlink::dump(Message& m, const std::function<void(const nlmsghdr*)>& each,
                                  std::string_view what) {
    if (trace::dry_run()) return trace::Made::no;
    m.nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    m.nlh->nlmsg_seq = next_seq();
    if (mnl_socket_sendto(nl_, m.nlh, m.nlh->nlmsg_len) < 0) return sys_error(cat(what, ": send netlink request"));
    TRY(wait_acks(m.nlh->nlmsg_seq, m.nlh->nlmsg_seq, 1, &each, what));
    return trace::Made::yes;
}

Result<trace::Made> Netlink::batch(const void* data, size_t len,
                                   const std::vector<std::string>& descs, std::string_view what) {
    // The messages are numbered from the BEGIN message's sequence number.
    const auto* first = static_cast<const nlmsghdr*>(data);
    uint32_t first_seq = first->nlmsg_seq;
    uint32_t last_seq = first_seq;
    int rest = int(len);
    uint32_t acked_msgs = 0;
    for (auto* nlh = first; mnl_nlmsg_ok(nlh, rest); nlh = mnl_nlmsg_next(nlh, &rest)) {
        last_seq = nlh->nlmsg_seq;
        if (nlh->nlmsg_flags & NLM_F_ACK) ++acked_msgs;
    }
    if (trace::dry_run()) {
        for (const auto& d : descs) trace::emit(cat(d, " /* ", where_, " */ (dry run)"));
        return trace::Made::no;
    }
    Status st;
    if (mnl_socket_sendto(nl_, data, len) < 0) {
        last_errno_ = errno;
        st = sys_error(cat(what, ": send netlink batch"));
    } else {
        // Every message with NLM_F_ACK is answered; an error stops the batch
        // (the transaction is aborted as a whole).
        st = acked_msgs ? wait_acks(first_seq, last_seq, acked_msgs, nullptr, what) : Status();
    }
    if (trace::verbose()) {
        for (const auto& d : descs)
            trace::emit(cat(d, " /* ", where_, " */", trace::result_suffix(st ? 0 : -1, st ? 0 : last_errno_)));
    }
    if (!st) return std::move(st).error();
    return trace::Made::yes;
}

}  // namespace kago::net
