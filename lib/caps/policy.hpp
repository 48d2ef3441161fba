// A privilege policy: what cap-drop (and pack-selfexec's runtime) does to
// the process just before it execs the payload.
//
//   kago::caps::Options o;
//   o.drop = {"all"}; o.keep = {"net_bind_service"};  // none: Docker's default set
//   o.user = "nobody"; o.seccomp = "default";
//   auto policy = TRY(kago::caps::build_policy(o));  // reads /etc/passwd, the profile
//   TRY(kago::fds::keep_only({}));
//   TRY(kago::caps::apply(policy));
//   kago::caps::set_user_env(policy, common.contract);  // applied at the exec
//   ... exec
//
// A Policy can also be filled in directly (keep, inheritable, ambient, user,
// seccomp = compile(default_profile(keep))) when there are no option
// strings to parse.
//
// The capability sets (see select_caps()):
//   nothing asked              Docker's default set (default_caps())
//   --drop LIST                the default set less LIST (Docker's --cap-drop)
//   --drop LIST --keep LIST2   the default set less LIST, plus LIST2 (--cap-add)
//   --keep LIST                LIST only
//   --drop all [--keep LIST]   LIST only (or nothing)
//   --keep all [--drop LIST]   everything this process holds, less LIST
// A capability a non-root payload holds must be in the ambient set, and
// only the ones --keep names are put there (or --ambient's; "all" names
// none): a switch to a non-root user otherwise leaves it none, as with
// Docker.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "caps/caps.hpp"
#include "caps/seccomp.hpp"
#include "caps/user.hpp"
#include "core/env.hpp"
#include "core/result.hpp"

namespace kago::caps {

// What the user asked for, as strings (the command-line options).
struct Options {
    std::vector<std::string> drop;   // capability lists, or "all"
    std::vector<std::string> keep;   // capability lists, or "all"
    std::optional<std::string> ambient;      // set: exactly this ambient set
    std::optional<std::string> inheritable;  // set: exactly this inheritable set
    std::string securebits;          // "": leave them alone
    bool allow_new_privs = false;
    std::string user;                // "": stay who we are
    std::optional<std::string> groups;  // set: these supplementary groups
    std::string seccomp = "none";    // "default", "none", or a profile file
    bool seccomp_log = false;
    UserFiles files;                 // the container's /etc/passwd and /etc/group
};

// The capability sets the options select.
struct CapChoice {
    CapSet keep;         // the bounding, permitted and effective sets
    CapSet inheritable;  // (default: the ambient set)
    CapSet ambient;      // what a non-root payload holds after execve
    // The set came from the default or from --keep all, not from names
    // the user gave: a process without CAP_SETPCAP (an unprivileged user)
    // then leaves its bounding set as it is instead of failing.
    bool bounding_optional = false;
};

struct Policy {
    // The bounding set loses everything not in `keep`; the permitted and
    // effective sets become `keep`; the inheritable and ambient sets are
    // set exactly.
    CapSet keep;
    CapSet inheritable;
    CapSet ambient;
    bool bounding_optional = false;
    std::optional<unsigned> securebits;
    bool no_new_privs = true;
    std::optional<Identity> user;  // switch to this (uid, gid, groups)
    bool user_env = false;         // set HOME, USER and LOGNAME for it
    CapSet payload_caps;  // what the payload may hold (`keep`): it decides the default profile's rules
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

// The capability sets o.drop, o.keep, o.ambient and o.inheritable select,
// from base (this process's permitted set). Errors: unknown names, an
// ambient or inheritable capability that is not kept, an ambient one that
// is not inheritable.
Result<CapChoice> select_caps(const Options& o, CapSet base);

// Apply it, in the kernel's order: user switch (keeping capabilities over
// setuid with PR_SET_KEEPCAPS), securebits, bounding set, capset, ambient,
// no_new_privs, seccomp. Every call is traced. prepare(), run() and
// error() below, in one process.
Status apply(const Policy& p);

// apply() in two halves, for a child that shares its parent's memory
// (clone(CLONE_VM)) and so obeys the rules for code after clone: prepare()
// reads this process's capabilities (the child's, which it inherits) and
// builds every call with its trace line; run(), in the child, makes them
// with system calls alone (no allocation, no libcap) and returns the index
// of the one that failed with errno set, or -1; error() turns that into
// the Error apply() returns. `p` must outlive the Prepared.
struct PreparedCall {
    enum Kind : unsigned char {
        keepcaps, setgroups, setresgid, setresuid, capset, securebits, seccomp, drop_bounding,
        clear_ambient, raise_ambient, no_new_privs
    } kind = keepcaps;
    long arg = 0;                // keepcaps: 0/1; drop_bounding, raise_ambient: the capability
    CapSet eff, perm, inh;       // capset
    bool eperm_is_fine = false;  // setgroups([]) where the user namespace denies it
    std::string line;            // the trace line (only when tracing or in a dry run)
};
struct Prepared {
    const Policy* policy = nullptr;
    std::vector<PreparedCall> calls;
};
Result<Prepared> prepare(const Policy& p);
long run(const Prepared& pr);
Error error(const Prepared& pr, long failed, int err);

// HOME, USER and LOGNAME for p.user (when user_env is set), set in
// `contract` for the command.
void set_user_env(const Policy& p, env::Contract& contract);

}  // namespace kago::caps
