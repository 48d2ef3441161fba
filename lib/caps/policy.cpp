#include "caps/policy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "core/parse.hpp"
#include "core/sys.hpp"
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

namespace {

std::string cap_constant(int cap) {
    std::string n = cap_name(cap);
    for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return cat("CAP_", n);
}

std::string group_list(const Identity& id) {
    std::string glist;
    for (gid_t g : id.groups) glist += cat(glist.empty() ? "" : ", ", g);
    return cat("setgroups(", id.groups.size(), ", [", glist, "])");
}

std::string describe(const Policy& p, const PreparedCall& c) {
    using K = PreparedCall::Kind;
    switch (c.kind) {
    case K::keepcaps: return cat("prctl(PR_SET_KEEPCAPS, ", c.arg, ")");
    case K::setgroups: return group_list(*p.user);
    case K::setresgid: return cat("setresgid(", p.user->gid, ", ", p.user->gid, ", ", p.user->gid, ")");
    case K::setresuid: return cat("setresuid(", p.user->uid, ", ", p.user->uid, ", ", p.user->uid, ")");
    case K::capset:
        return cat("capset({effective=", format_caps(c.eff), ", permitted=", format_caps(c.perm),
                   ", inheritable=", format_caps(c.inh), "})");
    case K::securebits: return cat("prctl(PR_SET_SECUREBITS, ", format_securebits(*p.securebits), ")");
    case K::seccomp:
        return cat("seccomp(SECCOMP_SET_MODE_FILTER, 0, {", p.seccomp->what, "; ", p.seccomp->program.size(),
                   " instructions})");
    case K::drop_bounding: return cat("prctl(PR_CAPBSET_DROP, ", cap_constant(int(c.arg)), ")");
    case K::clear_ambient: return "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)";
    case K::raise_ambient: return cat("prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, ", cap_constant(int(c.arg)), ")");
    case K::no_new_privs: return "prctl(PR_SET_NO_NEW_PRIVS, 1)";
    }
    return "?";
}

// One call, system calls only.
struct CallArg {
    const Policy* p;
    const PreparedCall* c;
};

long make_call(void* arg) {
    const Policy& p = *static_cast<CallArg*>(arg)->p;
    const PreparedCall& c = *static_cast<CallArg*>(arg)->c;
    using K = PreparedCall::Kind;
    switch (c.kind) {
    case K::keepcaps: return ::prctl(PR_SET_KEEPCAPS, c.arg, 0, 0, 0);
    case K::setgroups:
        // The system calls, not glibc's wrappers: those change every thread
        // glibc knows of, and in a CLONE_VM child its thread list is the
        // parent's. This process is the only one to change.
        return ::syscall(SYS_setgroups, p.user->groups.size(), p.user->groups.data());
    case K::setresgid: return ::syscall(SYS_setresgid, p.user->gid, p.user->gid, p.user->gid);
    case K::setresuid: return ::syscall(SYS_setresuid, p.user->uid, p.user->uid, p.user->uid);
    case K::capset: {
        __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct d[2] = {};
        for (int i = 0; i < 2; ++i) {
            d[i].effective = static_cast<uint32_t>(c.eff.bits >> (32 * i));
            d[i].permitted = static_cast<uint32_t>(c.perm.bits >> (32 * i));
            d[i].inheritable = static_cast<uint32_t>(c.inh.bits >> (32 * i));
        }
        return ::syscall(SYS_capset, &h, d);
    }
    case K::securebits: return ::prctl(PR_SET_SECUREBITS, *p.securebits, 0, 0, 0);
    case K::seccomp: {
        sock_fprog prog{static_cast<unsigned short>(p.seccomp->program.size()),
                        const_cast<sock_filter*>(p.seccomp->program.data())};
        return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
    }
    case K::drop_bounding: return ::prctl(PR_CAPBSET_DROP, c.arg, 0, 0, 0);
    case K::clear_ambient: return ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    case K::raise_ambient: return ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c.arg, 0, 0);
    case K::no_new_privs: return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    }
    errno = EINVAL;
    return -1;
}

}  // namespace

Result<Prepared> prepare(const Policy& p) {
    using K = PreparedCall::Kind;
    bool dry = trace::dry_run();
    Prepared pr;
    pr.policy = &p;
    auto add = [&](PreparedCall c) { pr.calls.push_back(std::move(c)); };
    auto call = [](K kind, long arg = 0) {
        PreparedCall c;
        c.kind = kind;
        c.arg = arg;
        return c;
    };
    ProcessCaps cur;
    if (!dry) cur = TRY(current(true, false));  // the ambient set is cleared, not read
    else cur.permitted = cur.effective = cur.bounding = all_caps();
    CapSet effective = cur.effective;
    if (p.user) {
        // Capabilities to keep must survive the change of uid.
        add(call(K::keepcaps, 1));
        bool denied = false;
        if (p.user->groups.empty()) {
            auto deny = sys::read_file("/proc/self/setgroups");
            denied = deny && deny->starts_with("deny");
        }
        PreparedCall g = call(K::setgroups);
        g.eperm_is_fine = denied;
        add(g);
        add(call(K::setresgid));
        add(call(K::setresuid));
        add(call(K::keepcaps, 0));
        // setuid from root to another user empties the effective set: take
        // back what is still permitted, to be able to drop the rest.
        if (!dry && ::geteuid() == 0 && p.user->uid != 0) effective = CapSet{};
    }
    if (!(effective == cur.permitted)) {
        PreparedCall c = call(K::capset);
        c.eff = c.perm = cur.permitted;
        c.inh = cur.inheritable;
        add(c);
        effective = cur.permitted;
    }
    if (p.securebits) add(call(K::securebits));
    // Without no_new_privs the filter must be loaded while CAP_SYS_ADMIN is
    // still effective; the rest (capset, prctl, execve) must pass it.
    if (p.seccomp && !p.no_new_privs) add(call(K::seccomp));
    CapSet missing = p.keep - cur.permitted;
    if (!missing.empty())
        return usage_error(cat("keep ", format_caps(missing), ": not in this process's permitted set"))
            .with_hint("a capability that is gone cannot be kept");
    // Without CAP_SETPCAP the bounding set cannot shrink: a default that
    // nobody asked for then leaves it (no_new_privs makes it moot).
    bool bounding = !(p.bounding_optional && !effective.has(8 /* setpcap */));
    if (bounding)
        for (int c : (all_caps() - p.keep).list())
            if (cur.bounding.has(c)) add(call(K::drop_bounding, c));
    PreparedCall set = call(K::capset);
    set.eff = set.perm = p.keep;
    set.inh = p.inheritable;
    add(set);
    add(call(K::clear_ambient));
    for (int c : p.ambient.list()) add(call(K::raise_ambient, c));
    if (p.no_new_privs) add(call(K::no_new_privs));
    if (p.seccomp && p.no_new_privs) add(call(K::seccomp));
    if (trace::verbose() || dry)
        for (auto& c : pr.calls) c.line = describe(p, c);
    return pr;
}

namespace {
// A change of uid, gid or of the permitted set clears PR_SET_PDEATHSIG (the
// kernel's commit_creds()), and a command that a supervisor started with it
// must still die with that supervisor: it is set again once the
// credentials are final. A parent that died in between has left us to
// another one: getppid() differs then, and the signal is sent here. A PID 1
// whose parent is outside its namespace sees 0 either way; unshare-run
// --as-pid-1 gives it no other parent to check.
struct DeathSignal {
    int sig = 0;
    pid_t parent = 0;
};

long rearm_death_signal(void* arg) {
    const auto& d = *static_cast<const DeathSignal*>(arg);
    if (::prctl(PR_SET_PDEATHSIG, d.sig, 0, 0, 0) != 0) return -1;
    if (d.parent != 0 && ::getppid() != d.parent) ::kill(::getpid(), d.sig);
    return 0;
}
}  // namespace

long run(const Prepared& pr) {
    using K = PreparedCall::Kind;
    DeathSignal death;
    (void)::prctl(PR_GET_PDEATHSIG, &death.sig, 0, 0, 0);
    death.parent = ::getppid();
    bool rearmed = death.sig == 0;
    // Before a seccomp filter, which may deny prctl(). In a trace with a
    // fixed text: this may run in a child that must not allocate.
    auto rearm = [&] {
        rearmed = true;
        (void)trace::call_prepared("prctl(PR_SET_PDEATHSIG, the signal it had)", rearm_death_signal,
                                   &death);
    };
    for (size_t i = 0; i < pr.calls.size(); ++i) {
        if (!rearmed && pr.calls[i].kind == K::seccomp) rearm();
        CallArg a{pr.policy, &pr.calls[i]};
        if (trace::call_prepared(pr.calls[i].line, make_call, &a) == 0) continue;
        if (pr.calls[i].eperm_is_fine && errno == EPERM) continue;
        return static_cast<long>(i);
    }
    if (!rearmed) rearm();
    return -1;
}

Error error(const Prepared& pr, long failed, int err) {
    using K = PreparedCall::Kind;
    const Policy& p = *pr.policy;
    const PreparedCall& c = pr.calls.at(static_cast<size_t>(failed));
    errno = err;
    switch (c.kind) {
    case K::keepcaps: return sys_error(describe(p, c));
    case K::setgroups: {
        Error e = sys_error(describe(p, c));
        auto deny = sys::read_file("/proc/self/setgroups");
        if (deny && deny->starts_with("deny")) return std::move(e).with_hint("this user namespace denies setgroups");
        return e;
    }
    case K::setresgid:
    case K::setresuid: {
        Error e = sys_error(describe(p, c));
        if (err == EINVAL)
            return std::move(e).with_hint(c.kind == K::setresgid ? "the gid is not mapped in this user namespace"
                                                                 : "the uid is not mapped in this user namespace");
        return e;
    }
    case K::capset: {
        Error e = sys_error(cat("set capabilities (permitted ", format_caps(c.perm), ")"));
        if (err == EPERM) return std::move(e).with_hint("a kept capability is not in the permitted set of this process");
        return e;
    }
    case K::securebits: return sys_error(cat("set securebits ", format_securebits(*p.securebits)));
    case K::seccomp: {
        Error e = sys_error(cat("load the seccomp filter ", p.seccomp->source));
        if (err == EACCES || err == EPERM)
            return std::move(e).with_hint("without no_new_privs, loading a filter needs CAP_SYS_ADMIN");
        return e;
    }
    case K::drop_bounding: {
        Error e = sys_error(cat("drop ", cap_name(int(c.arg)), " from the bounding set"));
        if (err == EPERM) return std::move(e).with_hint("dropping capabilities needs CAP_SETPCAP (run as root)");
        return e;
    }
    case K::clear_ambient: return sys_error("clear the ambient capability set");
    case K::raise_ambient: return sys_error(cat("raise ", cap_name(int(c.arg)), " in the ambient set"));
    case K::no_new_privs: return sys_error("prctl(PR_SET_NO_NEW_PRIVS, 1)");
    }
    return sys_error("apply the privileges");
}

Status apply(const Policy& p) {
    Prepared pr = TRY(prepare(p));
    long failed = run(pr);
    if (failed >= 0) return error(pr, failed, errno);
    return {};
}

void set_user_env(const Policy& p, env::Contract& contract) {
    if (!p.user || !p.user_env) return;
    contract.set("HOME", p.user->home);
    contract.set("USER", p.user->name);
    contract.set("LOGNAME", p.user->name);
}

}  // namespace kago::caps
