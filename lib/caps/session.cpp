#include "caps/session.hpp"

#include <errno.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/proc.hpp"
#include "core/trace.hpp"

namespace kago::caps {

Result<std::optional<int>> new_session() {
    if (trace::call([] { return std::string("setsid()"); }, [] { return ::setsid(); }) >= 0)
        return std::optional<int>{};
    if (errno != EPERM) return sys_error("setsid()");
    // We lead our process group (a shell with job control started us).
    // The parent stays beside the payload with its credentials: undumpable
    // from before the fork, so that the payload never sees it otherwise
    // (the child's exec makes the payload dumpable again).
    TRY(proc::undumpable());
    proc::SignalBlock block;
    pid_t child = static_cast<pid_t>(
        trace::call([] { return std::string("fork()"); }, [] { return ::fork(); }));
    if (child < 0) return sys_error("fork() to start a new session");
    if (child == 0) {
        block.restore_in_child();
        if (trace::call([] { return std::string("setsid()"); }, [] { return ::setsid(); }) < 0)
            return sys_error("setsid() in the child");
        return std::optional<int>{};
    }
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    return std::optional<int>{TRY(proc::supervise(child))};
}

}  // namespace kago::caps
