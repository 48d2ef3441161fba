#include "caps/session.hpp"

#include <errno.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/child.hpp"
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
    child::SignalBlock block;
    // The child goes on as the chain (it may allocate: fork, not CLONE_VM,
    // and we have no other thread).
    pid_t pid = static_cast<pid_t>(
        trace::call([] { return std::string("fork()"); }, [] { return child::start(0); }));
    if (pid < 0) return sys_error("fork() to start a new session");
    if (pid == 0) {
        block.restore_in_child();
        if (trace::call([] { return std::string("setsid()"); }, [] { return ::setsid(); }) < 0)
            return sys_error("setsid() in the child");
        return std::optional<int>{};
    }
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    return std::optional<int>{TRY(proc::supervise(pid))};
}

}  // namespace kago::caps
