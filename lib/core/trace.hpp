// Trace and dry run: the teaching mode.
//
// Every wrapper that makes a kernel call goes through trace::call(). With
// -v/--verbose (or KAGO_TRACE=1) it prints the call in syscall form with its
// result once the call returns; with --dry-run it prints the call marked
// "(dry run)" and does not make it. Nothing else prints trace lines, so the
// trace is exactly the list of operations performed.
#pragma once

#include <cerrno>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace kago::trace {

// The program name used in trace lines and messages ("unshare-run").
void set_program(std::string_view name);
const char* program();

void set_verbose(bool on);
void set_dry_run(bool on);
bool verbose();
bool dry_run();

// Write "PROGRAM: TEXT\n" to stderr in one write(2). Async-signal-safe as
// long as TEXT fits in 4 KiB (longer text is cut).
void emit(std::string_view text);

// " = 42", or " = -1 EINVAL (Invalid argument)".
std::string result_suffix(long ret, int err);

// Format helpers for describe() functions.
std::string quote(std::string_view s);  // a C string literal: "a\"b\n"
struct FlagName {
    unsigned long value;
    const char* name;
};
// "A|B|0x40", or "0" when v is 0.
std::string flags(unsigned long v, std::initializer_list<FlagName> names);
std::string clone_flags(unsigned long v);
std::string mount_flags(unsigned long v);
std::string umount_flags(unsigned long v);

// What a traced call that creates something reports besides errors:
// Made::yes, or Made::no when it made nothing (a dry run printed the call
// without making it, or the object was there already). The code that
// undoes a step keeps only what was made, so that it needs no dry-run
// branch of its own.
enum class Made : bool { no = false, yes = true };
// The Made of a traced call that returned success.
inline Made made() {
    return dry_run() ? Made::no : Made::yes;
}

// Make a traced call. describe() returns the call in syscall form, e.g.
// `mount("proc", "/proc", "proc", MS_NOSUID, NULL)`; fn() makes it and
// returns the raw result (-1 with errno on failure). In dry-run mode fn is
// not called and dry_value is returned. errno is preserved.
template <class Describe, class Fn>
long call(Describe&& describe, Fn&& fn, long dry_value = 0) {
    if (dry_run()) {
        emit(std::string(describe()) + " (dry run)");
        return dry_value;
    }
    long r = static_cast<long>(fn());
    int e = errno;
    if (verbose()) emit(std::string(describe()) + result_suffix(r, e));
    errno = e;
    return r;
}

// What a traced call that opens a descriptor passes as dry_value: in a dry
// run no descriptor was opened, and the wrapper returns its "not made"
// stand-in (mount::ops::Fd). Never a real descriptor: the kernel's stay
// below INT_MAX (fs.nr_open).
inline constexpr long kNotMadeFd = 0x7fffffff;

// A look-up that is not an operation of the plan (it prints nothing): made
// as trace::call() makes it, and, as there, not in a dry run, which gets
// dry_value.
template <class Fn>
long call_quiet(Fn&& fn, long dry_value = 0) {
    if (dry_run()) return dry_value;
    return static_cast<long>(fn());
}

// The same, for use after fork() in a child that must not allocate: the
// description is prepared by the parent.
long call_prepared(std::string_view description, long (*fn)(void*), void* arg,
                   long dry_value = 0);
// Emit "DESCRIPTION = R" (or " = -1 ENAME (text)" with errno e) without
// allocating, for a call made after clone.
void emit_result(std::string_view description, long r, int e);

}  // namespace kago::trace
