#include "core/fds.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "core/parse.hpp"
#include "core/trace.hpp"

namespace kago::fds {

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

Status keep_only(const std::vector<int>& keep_in) {
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
    if (by_kernel) return {};  // and in a dry run, where no call was made
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

}  // namespace kago::fds
