// A privilege policy: what cap-drop (and pack-selfexec's runtime) does to
// the process just before it execs the payload.
//
//   kago::caps::Options o;
//   o.drop = {"all"}; o.keep = {"net_bind_service"};
//   o.user = "nobody"; o.seccomp = "default";
//   auto policy = TRY(kago::caps::build_policy(o));  // reads /etc/passwd, the profile
//   TRY(kago::caps::close_fds({}));
//   TRY(kago::caps::apply(policy));
//   kago::caps::set_user_env(policy);
//   ... exec
//
// A Policy can also be filled in directly (keep, user, seccomp =
// compile(default_profile(keep))) when there are no option strings to parse.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "caps/caps.hpp"
#include "caps/seccomp.hpp"
#include "caps/user.hpp"
#include "core/result.hpp"

namespace kago::caps {

// What the user asked for, as strings (the command-line options).
struct Options {
    std::vector<std::string> drop;   // capability lists, or "all"
    std::vector<std::string> keep;   // capability lists
    std::string securebits;          // "": leave them alone
    bool allow_new_privs = false;
    std::string user;                // "": stay who we are
    std::optional<std::string> groups;  // set: these supplementary groups
    std::string seccomp = "none";    // "default", "none", or a profile file
    bool seccomp_log = false;
    UserFiles files;                 // the container's /etc/passwd and /etc/group
};

struct Policy {
    // The capability sets. When change_caps is set, all five sets end up as
    // `keep`: the bounding set loses everything else, and the ambient set
    // carries `keep` across execve, also for a non-root user.
    bool change_caps = false;
    CapSet keep;
    std::optional<unsigned> securebits;
    bool no_new_privs = true;
    std::optional<Identity> user;  // switch to this (uid, gid, groups)
    bool user_env = false;         // set HOME, USER and LOGNAME for it
    CapSet payload_caps;  // what the payload holds: it decides the default profile's rules
    std::optional<Profile> profile;         // the seccomp profile, for --print-profile
    std::optional<CompiledFilter> seccomp;  // compiled from it
};

// Resolve names, parse and compile the profile, check everything: bad
// input is a usage error (exit 125) before anything changes. `base` is the
// set --drop removes from (normally the process's permitted set).
Result<Policy> build_policy(const Options& o, CapSet base);
// The same without the seccomp part (o.seccomp is ignored), for a caller
// that brings a compiled filter and does not link libseccomp.
Result<Policy> build_policy_without_seccomp(const Options& o, CapSet base);
Result<Policy> build_policy_without_seccomp(const Options& o);
// The same, with base = this process's permitted set (all in dry-run mode).
Result<Policy> build_policy(const Options& o);

// The capability set --drop/--keep select, from base.
Result<CapSet> select_caps(const std::vector<std::string>& drop, const std::vector<std::string>& keep,
                           CapSet base);

// Apply it, in the kernel's order: user switch (keeping capabilities over
// setuid with PR_SET_KEEPCAPS), securebits, bounding set, capset, ambient,
// no_new_privs, seccomp. Every call is traced.
Status apply(const Policy& p);

// HOME, USER and LOGNAME for p.user (when user_env is set).
void set_user_env(const Policy& p);

// Mark every descriptor above 2 close-on-exec except `keep`
// (close_range(CLOSE_RANGE_CLOEXEC)), clear close-on-exec on `keep`, then
// verify through /proc/self/fd (or fcntl when /proc is absent).
Status close_fds(const std::vector<int>& keep);

}  // namespace kago::caps
