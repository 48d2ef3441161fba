// Loading a compiled seccomp filter: seccomp(2) alone, no libseccomp, so
// that pack-selfexec's static runner stays small (its filter was compiled
// when the file was packed).
#include <errno.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps/seccomp.hpp"
#include "core/trace.hpp"

namespace kago::caps {

Status load(const CompiledFilter& f) {
    sock_fprog prog{static_cast<unsigned short>(f.program.size()), const_cast<sock_filter*>(f.program.data())};
    long rc = trace::call(
        [&] { return cat("seccomp(SECCOMP_SET_MODE_FILTER, 0, {", f.what, "; ", f.program.size(), " instructions})"); },
        [&] { return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog); });
    if (rc == 0) return {};
    Error e = sys_error(cat("load the seccomp filter ", f.source));
    if (e.err == EACCES || e.err == EPERM)
        return std::move(e).with_hint("without no_new_privs, loading a filter needs CAP_SYS_ADMIN");
    return e;
}

}  // namespace kago::caps
