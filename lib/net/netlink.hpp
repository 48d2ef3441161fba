// A netlink socket (libmnl) that turns on NETLINK_EXT_ACK, sends each request
// with NLM_F_REQUEST|NLM_F_ACK, matches the answer by sequence number, and
// puts the kernel's extended-ack message into errors. Every request is one
// trace line: "RTM_NEWLINK(ifname="kgweb", kind="veth", ...) = 0".
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/trace.hpp"

struct mnl_socket;

namespace kago::net {

// One netlink message under construction, with its trace description.
struct Message {
    Message();
    std::vector<char> buf;
    nlmsghdr* nlh;
    std::string desc;  // "RTM_NEWLINK(ifname=\"kgweb\", ...)"
};

// The text of NLMSGERR_ATTR_MSG in an NLMSG_ERROR message, or "".
std::string extack_message(const nlmsghdr* nlh);

class Netlink {
  public:
    Netlink() = default;
    Netlink(Netlink&& o) noexcept;
    Netlink& operator=(Netlink&& o) noexcept;
    Netlink(const Netlink&) = delete;
    Netlink& operator=(const Netlink&) = delete;
    ~Netlink();

    // bus: NETLINK_ROUTE or NETLINK_NETFILTER. The socket belongs to the
    // network namespace of the calling thread. `where` ("host",
    // "container") is added to trace lines.
    static Result<Netlink> open(int bus, std::string where);

    // Send one request and wait for its ack. `what` names the object for the
    // error ("create veth kgweb"). Traced; skipped in dry-run mode.
    Status request(Message& m, std::string_view what);
    // Send a dump (or a GET) request and call `each` for every answer.
    // Not traced: it changes nothing. Also skipped in dry-run mode, which
    // the result says (Made::no: nothing was asked, nothing was answered).
    Result<trace::Made> dump(Message& m, const std::function<void(const nlmsghdr*)>& each,
                             std::string_view what);
    // nfnetlink: send a batch (BEGIN ... END) of messages each carrying
    // NLM_F_ACK, and collect the acks. `descs` are the trace lines of the
    // messages. Traced as one line per message. Made::no in a dry run: the
    // batch was printed, not sent.
    Result<trace::Made> batch(const void* data, size_t len, const std::vector<std::string>& descs,
                              std::string_view what);

    uint32_t next_seq() { return ++seq_; }
    // n consecutive sequence numbers for a batch; returns the first.
    uint32_t take_seqs(uint32_t n) {
        uint32_t first = seq_ + 1;
        seq_ += n;
        return first;
    }
    int last_errno() const { return last_errno_; }
    bool valid() const { return nl_ != nullptr; }
    int fd() const;  // -1 when not open

  private:
    Status wait_acks(uint32_t first_seq, uint32_t last_seq, uint32_t want, const std::function<void(const nlmsghdr*)>* each,
                     std::string_view what);
    mnl_socket* nl_ = nullptr;
    uint32_t seq_ = 0;
    uint32_t portid_ = 0;
    int last_errno_ = 0;
    std::string where_;
    // The receive buffer, made once and never cleared: a zeroed 32 KiB
    // vector for each request was a memset of half a megabyte per container.
    std::unique_ptr<char[]> rx_;
};

}  // namespace kago::net
