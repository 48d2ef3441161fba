#include "core/fds.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "core/trace.hpp"

namespace kago::fds {

namespace {

Status cloexec_range(unsigned first, unsigned last) {
    long r = trace::call(
        [&] {
            return cat("close_range(", first, ", ", last == ~0u ? std::string("~0U") : cat(last),
                       ", CLOSE_RANGE_CLOEXEC)");
        },
        [&] { return ::syscall(SYS_close_range, first, last, CLOSE_RANGE_CLOEXEC); });
    if (r == 0) return {};
    if (errno != ENOSYS && errno != EINVAL)
        return sys_error(cat("close_range(", first, ", ", last, ", CLOSE_RANGE_CLOEXEC)"));
    // A kernel before 5.11: one by one, as far as the soft limit goes.
    long max = ::sysconf(_SC_OPEN_MAX);
    for (long fd = first; fd <= static_cast<long>(last) && fd < max; ++fd) {
        int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
    }
    return {};
}

}  // namespace

Status keep_only(const std::vector<int>& keep_in) {
    std::vector<int> keep;
    for (int fd : keep_in)
        if (fd > 2) keep.push_back(fd);
    std::sort(keep.begin(), keep.end());
    keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
    for (int fd : keep)
        if (::fcntl(fd, F_GETFD) < 0) return sys_error(cat("descriptor ", fd, " (--keep-fd)"));
    unsigned start = 3;
    for (int fd : keep) {
        if (static_cast<unsigned>(fd) > start)
            TRY(cloexec_range(start, static_cast<unsigned>(fd) - 1));
        start = static_cast<unsigned>(fd) + 1;
    }
    TRY(cloexec_range(start, ~0u));
    for (int fd : keep) {
        long r = trace::call([&] { return cat("fcntl(", fd, ", F_SETFD, 0)"); },
                             [&] { return ::fcntl(fd, F_SETFD, 0); });
        if (r < 0) return sys_error(cat("descriptor ", fd, ": clear close-on-exec"));
    }
    return {};
}

}  // namespace kago::fds
