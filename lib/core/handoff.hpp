// The multi-call binary, and the in-process hand-off between its programs.
//
// Every static kago program is one binary (build/kago); the installed names
// are hard links to it, and main() runs the program that argv[0] names, as
// busybox and toybox do. When the COMMAND of a program is another program of
// that same binary, an exec would load the very code that already runs here:
// maybe_enter() enters the next program in this process instead, doing what
// execve(2) would have done (DESIGN.md, "The in-process hand-off", lists the
// rules; where this process cannot reproduce an exec exactly, it execs).
//
//   exec site:  handoff::maybe_enter(p, argv, environ);  // returns: exec
//               ::syscall(SYS_execveat, p.program.get(), ...);
#pragma once

#include <cstddef>
#include <string_view>

#include "core/exec.hpp"

namespace kago::handoff {

using Main = int (*)(int argc, char** argv);
struct Program {
    std::string_view name;  // "cap-drop"
    Main main;
};

// main() of a multi-call binary: runs the program named by argv[0] (its last
// path component), else by the file it was exec'd from (/proc/self/exe, a
// sealed copy included), else `kago PROGRAM ARG...`. Unknown: 127.
int multicall(const Program* programs, size_t n, int argc, char** argv);

// Why `p` cannot be entered in this process, or nullptr when it can: it is a
// program of this binary, from the directory we run from, KAGO_EXEC is
// unset, and exec would change nothing that entering here cannot (no
// capability regained, no set-user-ID bit, one thread, ...). Allocates.
const char* refusal(const PreparedExec& p);

// dlopen(3) of a shared library (image-layers: libcurl for --pull, ISA-L
// for gzip layers). Its mappings, threads and exit handlers are not ours to
// drop by hand, so a process that loaded one always execs the next program.
void* open_library(const char* soname);
// For the unit tests, whose one process loads libraries in other tests.
void forget_loaded_libraries();

// Enter `p` here when refusal(p) is nullptr, and never return; otherwise
// return at once (the caller execs). argv and envp are what the exec would
// pass. The trace shows `execve(...) (in process)`. Call it only where an
// exec may follow: not in a vfork()ed or CLONE_VM child.
void maybe_enter(const PreparedExec& p, char* const argv[], char* const envp[]);

// What exec does to the process that maybe_enter() does by hand, exposed
// for the unit tests: close every close-on-exec descriptor.
void close_cloexec_fds();
// Every caught signal back to SIG_DFL (ignored ones stay ignored, the mask
// and pending signals stay), and no alternate signal stack.
void reset_caught_signals();

}  // namespace kago::handoff
