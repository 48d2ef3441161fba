// compile(): the build's table of programs compiled ahead of time, then
// libseccomp.
//
// Building the default profile with libseccomp takes about 0.3 ms on every
// start of cap-drop, for a program that is the same each time. The build
// runs tools/seccomp-table.cpp, which feeds precompiled_profiles() to
// compile_with_libseccomp() and writes each program with its profile_key()
// into seccomp_table.inc; this file looks a profile up there by that exact
// key. The table is libseccomp's own output for the same profile, from the
// libseccomp this program links, so a hit and a miss load the same filter
// (the unit tests compare them). Builds without the table (the fuzz
// targets) simply always miss.
#include <errno.h>
#include <linux/filter.h>

#include <cstddef>
#include <string_view>

#include "caps/seccomp.hpp"
#include "core/trace.hpp"

namespace kago::caps {
namespace {

struct Precompiled {
    std::string_view key;
    const sock_filter* program;
    size_t size;
};

#if __has_include("caps/seccomp_table.inc")
#include "caps/seccomp_table.inc"  // constexpr Precompiled kPrecompiled[]
#else
constexpr Precompiled kPrecompiled[] = {{"", nullptr, 0}};
#endif

}  // namespace

Result<CompiledFilter> compile(const Profile& p, Layout miss) {
    std::string key = profile_key(p);
    for (const auto& e : kPrecompiled) {
        if (e.program == nullptr || e.key != key) continue;
        CompiledFilter out;
        out.source = p.source;
        out.what = cat(filter_summary(p), ", compiled at build time");
        out.program.assign(e.program, e.program + e.size);
        return out;
    }
    return compile_with_libseccomp(p, miss);
}

Status load_default_profile(CapSet kept, bool log_only) {
    Profile p = default_profile(kept);
    if (log_only) make_log_only(p);
    return load(TRY(compile(p)));
}

}  // namespace kago::caps
