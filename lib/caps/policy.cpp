#include "caps/policy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "core/parse.hpp"
#include "core/trace.hpp"

namespace kago::caps {

namespace {

// A list of names; "all" stands for `all` (what is held or kept).
Result<CapSet> caps_of(std::string_view list, CapSet all) {
    CapSet s = TRY(parse_caps(list));
    return s == all_caps() ? all : s;
}

}  // namespace

Result<CapChoice> select_caps(const Options& o, CapSet base) {
    CapSet dropped, named;
    bool drop_all = false, keep_all = false;
    for (const auto& d : o.drop) {
        CapSet s = TRY(parse_caps(d));
        drop_all |= s == all_caps();
        dropped = dropped | s;
    }
    // `named`: the capabilities --keep names; "all" names none of them.
    for (const auto& k : o.keep) {
        CapSet s = TRY(parse_caps(k));
        if (s == all_caps()) keep_all = true;
        else named = named | s;
    }
    CapChoice c;
    if (keep_all) {
        c.keep = base - dropped;  // --keep all [--drop LIST]
        named = named & c.keep;
    } else if (drop_all || (o.drop.empty() && !o.keep.empty())) {
        c.keep = named;  // --drop all [--keep LIST], --keep LIST
    } else {
        c.keep = ((default_caps() & base) - dropped) | named;  // nothing, --drop LIST [--keep LIST]
    }
    c.bounding_optional = keep_all || (o.drop.empty() && o.keep.empty());
    c.ambient = o.ambient ? TRY(caps_of(*o.ambient, c.keep)) : named;
    c.inheritable = o.inheritable ? TRY(caps_of(*o.inheritable, c.keep)) : c.ambient;
    if (CapSet extra = c.ambient - c.keep; !extra.empty())
        return usage_error(cat("--ambient ", format_caps(extra), ": not kept"))
            .with_hint("the ambient set can only hold kept capabilities: add them to --keep");
    if (CapSet extra = c.inheritable - c.keep; !extra.empty())
        return usage_error(cat("--inheritable ", format_caps(extra), ": not kept"))
            .with_hint("the inheritable set can only hold kept capabilities: add them to --keep");
    if (CapSet extra = c.ambient - c.inheritable; !extra.empty())
        return usage_error(cat("--ambient ", format_caps(extra), ": not in the inheritable set"))
            .with_hint("the kernel raises an ambient capability only if it is also inheritable");
    return c;
}

Result<Policy> build_policy_without_seccomp(const Options& o, CapSet base) {
    Policy p;
    CapChoice c = TRY(select_caps(o, base));
    p.keep = c.keep;
    p.inheritable = c.inheritable;
    p.ambient = c.ambient;
    p.bounding_optional = c.bounding_optional;
    if (!o.securebits.empty()) p.securebits = TRY(parse_securebits(o.securebits));
    p.no_new_privs = !o.allow_new_privs;
    if (!o.user.empty()) {
        p.user = TRY(resolve_user(o.user, o.files));
        p.user_env = true;
    }
    if (o.groups) {
        if (!p.user) {
            Identity self;
            self.uid = getuid();
            self.gid = getgid();
            p.user = self;
        }
        p.user->groups = TRY(resolve_groups(*o.groups, o.files));
    }
    // What the payload may hold decides the default profile's rules: a
    // non-root payload has only its ambient set, but a file with file
    // capabilities can still give it any of `keep`.
    p.payload_caps = p.keep;
    return p;
}

Result<Policy> build_policy(const Options& o, CapSet base) {
    Policy p = TRY(build_policy_without_seccomp(o, base));
    std::optional<Profile> profile;
    if (o.seccomp == "default") profile = default_profile(p.payload_caps);
    else if (o.seccomp != "none" && !o.seccomp.empty()) profile = TRY(load_profile_file(o.seccomp, p.payload_caps));
    if (profile) {
        if (o.seccomp_log) make_log_only(*profile);
        p.seccomp = TRY(compile(*profile));
        p.profile = std::move(profile);
    }
    return p;
}

namespace {
// The set --drop removes from: this process's permitted set (all of them in
// a dry run, which reads nothing).
Result<CapSet> drop_base() {
    if (trace::dry_run()) return all_caps();
    return TRY(current(false, false)).permitted;
}
}  // namespace

Result<Policy> build_policy(const Options& o) { return build_policy(o, TRY(drop_base())); }
Result<Policy> build_policy_without_seccomp(const Options& o) {
    return build_policy_without_seccomp(o, TRY(drop_base()));
}

Status apply(const Policy& p) {
    bool dry = trace::dry_run();
    if (p.user) {
        // Capabilities to keep must survive the change of uid.
        TRY(set_keepcaps(true));
        TRY(switch_user(*p.user));
        TRY(set_keepcaps(false));
    }
    ProcessCaps cur;
    if (!dry) cur = TRY(current(true, false));  // the ambient set is cleared, not read
    else cur.permitted = cur.effective = cur.bounding = all_caps();
    // setuid to a non-root user empties the effective set: take back what
    // is still permitted, to be able to drop the rest.
    if (!(cur.effective == cur.permitted)) {
        TRY(set_proc(cur.permitted, cur.permitted, cur.inheritable));
        cur.effective = cur.permitted;
    }
    if (p.securebits) TRY(set_securebits(*p.securebits));
    // Without no_new_privs the filter must be loaded while CAP_SYS_ADMIN is
    // still effective; the rest (capset, prctl, execve) must pass it.
    if (p.seccomp && !p.no_new_privs) TRY(load(*p.seccomp));
    CapSet missing = p.keep - cur.permitted;
    if (!missing.empty())
        return usage_error(cat("keep ", format_caps(missing), ": not in this process's permitted set"))
            .with_hint("a capability that is gone cannot be kept");
    // Without CAP_SETPCAP the bounding set cannot shrink: a default that
    // nobody asked for then leaves it (no_new_privs makes it moot).
    bool bounding = !(p.bounding_optional && !cur.effective.has(8 /* setpcap */));
    if (bounding)
        for (int c : (all_caps() - p.keep).list())
            if (cur.bounding.has(c)) TRY(drop_bounding(c));
    TRY(set_proc(p.keep, p.keep, p.inheritable));
    TRY(clear_ambient());
    for (int c : p.ambient.list()) TRY(raise_ambient(c));
    if (p.no_new_privs) TRY(set_no_new_privs());
    if (p.seccomp && p.no_new_privs) TRY(load(*p.seccomp));
    return {};
}

void set_user_env(const Policy& p) {
    if (!p.user || !p.user_env) return;
    ::setenv("HOME", p.user->home.c_str(), 1);
    ::setenv("USER", p.user->name.c_str(), 1);
    ::setenv("LOGNAME", p.user->name.c_str(), 1);
}

}  // namespace kago::caps
