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

Result<CapSet> select_caps(const std::vector<std::string>& drop, const std::vector<std::string>& keep,
                           CapSet base) {
    CapSet dropped, kept;
    for (const auto& d : drop) dropped = dropped | TRY(parse_caps(d));
    for (const auto& k : keep) kept = kept | TRY(parse_caps(k));
    // --keep alone means: drop everything else.
    if (drop.empty()) return kept;
    return (base - dropped) | kept;
}

Result<Policy> build_policy_without_seccomp(const Options& o, CapSet base) {
    Policy p;
    if (!o.drop.empty() || !o.keep.empty()) {
        p.change_caps = true;
        p.keep = TRY(select_caps(o.drop, o.keep, base));
    }
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
    // Capabilities the payload will hold decide the default profile's rules.
    p.payload_caps = p.change_caps ? p.keep : base;
    if (p.user && p.user->uid != 0 && !p.change_caps) p.payload_caps = CapSet{};
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
        if (p.change_caps) TRY(set_keepcaps(true));
        TRY(switch_user(*p.user));
        if (p.change_caps) TRY(set_keepcaps(false));
    }
    ProcessCaps cur;
    if (!dry) cur = TRY(current(true, false));  // the ambient set is cleared, not read
    else cur.permitted = cur.effective = cur.bounding = all_caps();
    // setuid to a non-root user empties the effective set: take back what
    // is still permitted, to be able to drop the rest.
    if ((p.change_caps || p.securebits) && !(cur.effective == cur.permitted)) {
        TRY(set_proc(cur.permitted, cur.permitted, cur.inheritable));
        cur.effective = cur.permitted;
    }
    if (p.securebits) TRY(set_securebits(*p.securebits));
    // Without no_new_privs the filter must be loaded while CAP_SYS_ADMIN is
    // still effective; the rest (capset, prctl, execve) must pass it.
    if (p.seccomp && !p.no_new_privs) TRY(load(*p.seccomp));
    if (p.change_caps) {
        CapSet missing = p.keep - cur.permitted;
        if (!missing.empty())
            return usage_error(cat("keep ", format_caps(missing), ": not in this process's permitted set"))
                .with_hint("a capability that is gone cannot be kept");
        for (int c : (all_caps() - p.keep).list())
            if (cur.bounding.has(c)) TRY(drop_bounding(c));
        TRY(set_proc(p.keep, p.keep, p.keep));
        TRY(clear_ambient());
        for (int c : p.keep.list()) TRY(raise_ambient(c));
    }
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

namespace {

// true: the kernel did it (close_range); false: done one by one here.
Result<bool> cloexec_range(unsigned first, unsigned last) {
    long r = trace::call(
        [&] {
            return cat("close_range(", first, ", ", last == ~0u ? std::string("~0U") : cat(last),
                       ", CLOSE_RANGE_CLOEXEC)");
        },
        [&] { return ::syscall(SYS_close_range, first, last, CLOSE_RANGE_CLOEXEC); });
    if (r == 0) return true;
    if (errno == ENOSYS || errno == EINVAL) {
        // An old kernel: mark them one by one.
        for (unsigned fd = first; fd <= last && fd < 65536; ++fd) {
            int flags = fcntl(static_cast<int>(fd), F_GETFD);
            if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
        }
        return false;
    }
    return sys_error(cat("close_range(", first, ", ", last, ", CLOSE_RANGE_CLOEXEC)"));
}

}  // namespace

Status close_fds(const std::vector<int>& keep_in) {
    std::vector<int> keep;
    for (int fd : keep_in)
        if (fd > 2) keep.push_back(fd);
    std::sort(keep.begin(), keep.end());
    keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
    for (int fd : keep) {
        if (fcntl(fd, F_GETFD) < 0) return sys_error(cat("descriptor ", fd, " (--keep-fd)"));
    }
    unsigned start = 3;
    bool by_kernel = true;
    for (int fd : keep) {
        if (static_cast<unsigned>(fd) > start)
            by_kernel &= TRY(cloexec_range(start, static_cast<unsigned>(fd) - 1));
        start = static_cast<unsigned>(fd) + 1;
    }
    by_kernel &= TRY(cloexec_range(start, ~0u));
    for (int fd : keep) {
        long r = trace::call([&] { return cat("fcntl(", fd, ", F_SETFD, 0)"); },
                             [&] { return fcntl(fd, F_SETFD, 0); });
        if (r < 0) return sys_error(cat("descriptor ", fd, ": clear close-on-exec"));
    }
    // close_range() covers every number in its range; only the fallback,
    // which stops at 65536, needs checking.
    if (trace::dry_run() || by_kernel) return {};
    auto leaked = [&](int fd) {
        if (fd <= 2 || std::binary_search(keep.begin(), keep.end(), fd)) return false;
        int flags = fcntl(fd, F_GETFD);
        return flags >= 0 && !(flags & FD_CLOEXEC);
    };
    if (DIR* d = opendir("/proc/self/fd")) {
        int self = dirfd(d);
        std::vector<int> bad;
        while (struct dirent* e = readdir(d)) {
            auto n = parse::u64(e->d_name, "fd");
            if (!n) continue;
            int fd = static_cast<int>(*n);
            if (fd != self && leaked(fd)) bad.push_back(fd);
        }
        closedir(d);
        if (!bad.empty()) return usage_error(cat("descriptor ", bad[0], " would leak into the payload"));
        return {};
    }
    for (int fd = 3; fd < 1024; ++fd)
        if (leaked(fd)) return usage_error(cat("descriptor ", fd, " would leak into the payload"));
    return {};
}

}  // namespace kago::caps
