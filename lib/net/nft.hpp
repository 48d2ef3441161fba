// nftables through libnftnl: one table, inet "kago", with three NAT base
// chains. Every rule carries a comment tag naming its container and owner
// process, so that a container removes only its own rules, and --gc finds
// the rules whose owner is gone. Nothing outside table "kago" is touched.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "net/addr.hpp"
#include "net/netlink.hpp"

namespace kago::net::nft {

inline constexpr const char kTable[] = "kago";

// "kago NAME pid=PID start=TICKS": the owner is the supervisor process, and
// its start time tells it apart from a later process with the same pid.
struct Tag {
    std::string name;
    pid_t pid = 0;
    uint64_t start = 0;
    std::string str() const;
};
std::optional<Tag> parse_tag(std::string_view comment);

// What one container needs.
struct RuleSpec {
    Tag tag;
    std::string bridge;            // the container side of the host
    Cidr subnet;                   // IPv4 subnet of the bridge
    std::optional<Cidr> addr4;     // the container's addresses
    std::optional<Cidr> addr6;
    bool masquerade = false;       // --nat
    std::vector<Publish> publish;  // --publish, for each family with an address
};

// A built batch: the bytes to send and one trace line per message.
struct Batch {
    std::vector<char> buf;
    size_t len = 0;
    std::vector<std::string> descs;
};

// BEGIN, table, chains, the container's rules, END.
Batch build_add(const RuleSpec& spec, uint32_t seq);

struct RuleRef {
    std::string chain;
    uint64_t handle = 0;
    std::string comment;
};
// BEGIN, DELRULE for each rule, [DELTABLE], END.
Batch build_delete(const std::vector<RuleRef>& rules, bool delete_table, uint32_t seq);

// Parse the rules of a batch (or a dump) back: chain, comment, and the
// number of expressions, for tests.
struct ParsedRule {
    std::string chain;
    std::string comment;
    int expressions = 0;
    std::vector<std::string> expr_names;
};
std::vector<ParsedRule> parse_rules(const void* data, size_t len);

class Nft {
  public:
    static Result<Nft> open(std::string where);
    Status add(const RuleSpec& spec);
    // Every rule in table kago (empty when the table does not exist).
    Result<std::vector<RuleRef>> list();
    // Remove the rules for which `mine` is true. When no other rule is left,
    // the table goes too. Callers hold the lock (leases::NftLock) so that a
    // concurrent add does not lose its table.
    Status remove(const std::function<bool(const Tag&)>& mine);
    // The socket, for a caller that closes it later (see net::Later).
    Netlink take_netlink() { return std::move(nl_); }

  private:
    Netlink nl_;
    bool table_exists_ = false;
    // add() succeeded: the table exists (unless someone flushed it), so
    // list() asks for the rules at once instead of the table first.
    bool added_ = false;
};

}  // namespace kago::net::nft
