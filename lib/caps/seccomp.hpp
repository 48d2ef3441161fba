// Seccomp profiles: the built-in default, the OCI/Docker JSON format,
// compiling one to BPF through libseccomp, and loading a compiled filter
// with seccomp(2) alone (so that pack-selfexec's runner, which loads a
// filter compiled when the file was packed, links no libseccomp).
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "caps/caps.hpp"
#include "core/result.hpp"

namespace kago::caps {

struct Action {
    enum class Kind { Allow, Errno, KillThread, KillProcess, Trap, Log, Trace };
    Kind kind = Kind::Allow;
    uint32_t value = 0;  // the errno for Errno, the message for Trace
    bool operator==(const Action&) const = default;
};

struct ArgCmp {
    enum class Op { Ne, Lt, Le, Eq, Ge, Gt, MaskedEq };
    unsigned index = 0;  // 0..5
    Op op = Op::Eq;
    uint64_t value = 0;
    uint64_t value_two = 0;  // MaskedEq: (arg & value) == value_two
};

struct Rule {
    std::string syscall;
    Action action;
    std::vector<ArgCmp> args;  // all must match (AND)
    std::string why;           // shown by --print-profile
};

struct Profile {
    std::string source;  // "default", a file name
    Action default_action;
    Action bad_arch{Action::Kind::Errno, 38 /* ENOSYS */};  // for architectures not listed
    std::vector<std::string> arches;  // extra architectures the rules also apply to ("x86", "x32")
    std::vector<Rule> rules;
};

// The built-in profile, in the spirit of Docker's default: everything is
// allowed except a list of calls that return EPERM (see cap-drop(1)). Calls
// that a kept capability legitimately needs (mount with sys_admin, ptrace
// with sys_ptrace...) stay allowed when that capability is kept. i386 and
// x32 system calls fail with ENOSYS.
Profile default_profile(CapSet kept);

// An OCI/Docker profile: defaultAction, defaultErrnoRet, architectures,
// archMap, syscalls[].names (or .name), .action, .errnoRet, .args[].index/
// value/valueTwo/op, .includes/.excludes (caps, arches, minKernel). Errors
// name the place ("FILE:LINE:COLUMN: ...") and unknown syscalls by name.
// `kept` decides includes/excludes by capability.
Result<Profile> parse_profile(std::string_view json, std::string_view source, CapSet kept);
Result<Profile> load_profile_file(const std::string& path, CapSet kept);

// Learning mode: every action but Allow becomes Log.
void make_log_only(Profile& p);

// One rule per line, readable, for --print-profile.
std::string describe(const Profile& p);
std::string describe(const Action& a);

// A filter ready for the kernel.
struct CompiledFilter {
    std::string source;                // the profile: "default", a file name
    std::string what;                  // for the trace: profile "default", default action ..., N rules
    std::vector<sock_filter> program;  // BPF_MAXINSNS at the most
};

// How libseccomp lays a program out: a list tests the rules one after the
// other, a tree searches the system call number. When a filter is loaded,
// the kernel runs it once for every call number of every architecture, to
// cache the calls it always allows, so loading costs about 1.5 us per
// instruction walked: the default profile loads in about 36 us as a tree
// and 98 us as a list on this machine kind. A tree takes libseccomp longer
// to build (3 ms more for a 300-rule profile), so a program built ahead of
// time (the build's table, pack-selfexec at pack time) is a tree, and one
// built at every start (cap-drop --seccomp FILE) a list.
enum class Layout { list, tree };

// The filter for the kernel. A profile that the build compiled ahead of
// time (precompiled_profiles(), from the build's table, as trees) is looked
// up by its exact content; any other is built with compile_with_libseccomp()
// in the layout given. Both give the same program for the same layout: the
// table is libseccomp's own output.
Result<CompiledFilter> compile(const Profile& p, Layout miss = Layout::list);
// Build the filter with libseccomp and export its BPF program. Bad rules
// (unknown syscalls, bad arguments) are usage errors. About 0.3 ms for the
// default profile, most of a cap-drop's own work.
Result<CompiledFilter> compile_with_libseccomp(const Profile& p, Layout layout);
// Everything that decides a profile's program, as one exact text (the
// table's key): the actions, architectures, and each rule's system call,
// action and argument comparisons, but not the explanations.
std::string profile_key(const Profile& p);
// The profiles the build compiles ahead of time: the default profile for
// Docker's default set (cap-drop with no capability option), for every
// capability (--keep all) and for none (--drop all).
std::vector<Profile> precompiled_profiles();
// The trace's summary of a filter: profile "default", default action ...,
// N rules.
std::string filter_summary(const Profile& p);
// Load it (seccomp(2), traced). It does not set no_new_privs: without it,
// loading needs CAP_SYS_ADMIN.
Status load(const CompiledFilter& f);
// The built-in profile for a payload that keeps `kept`, compiled and loaded.
// Set no_new_privs first, or hold CAP_SYS_ADMIN.
Status load_default_profile(CapSet kept, bool log_only = false);

}  // namespace kago::caps
