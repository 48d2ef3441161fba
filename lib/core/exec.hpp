// Running the next command of the chain.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/child.hpp"
#include "core/fd.hpp"
#include "core/result.hpp"

namespace kago {

// 127 when the command was not found, 126 when it was found but could not be
// executed (decided in core/child).
using child::exit_code_for_exec_error;

// The next command, ready to exec. When argv[0] names a kago program without
// a slash, the program is opened (O_PATH|O_CLOEXEC) from the directory of the
// running kago binary (by a path to one: that file, when it exists here), so
// that it can still be run after pivot_root although the new root lacks it.
// The descriptor closes on exec, so it never reaches the payload.
//
// A kago program that runs beside untrusted processes (in a PID namespace
// that it joined) must not run from the host file: after its exec it is
// dumpable, and a process of the container that may ptrace it opens
// /proc/PID/exe and rewrites the host file once the exec is over
// (CVE-2019-5736). seal_program() replaces the descriptor with a sealed
// memory copy (memfd) of the program. A chain that runs sealed stays
// sealed: prepare_exec() seals the next kago program when the running one
// runs from a sealed copy itself.
struct PreparedExec {
    std::vector<std::string> argv;
    UniqueFd program;          // valid for a kago program found beside us
    std::string program_path;  // its host path, for messages and the trace
    bool kago = false;         // argv[0] is a kago program, by name or by a path to one:
                               // it gets the KAGO_ variables and continues a dry run
    bool sealed = false;       // `program` is a sealed memory copy of program_path
};

Result<PreparedExec> prepare_exec(std::vector<std::string> argv);

// Whether process `pid` (our child, which exec'd `e`) still runs `e` and
// `e` is one of the chain's supervisors (cg-limit, net-setup, unshare-run,
// pack-selfexec): then a second SIGTERM is forwarded to it, so that it
// escalates against the container below it and still cleans up. Otherwise
// the child is the container's own process, which the supervisor may kill.
// The program's file is compared with /proc/PID/exe (device and inode);
// without a descriptor, the command name is.
bool runs_supervisor(pid_t pid, const PreparedExec& e);

// Replace p.program by a sealed memory copy of it (memfd, sealed against
// every write, resize and further sealing), holding the ELF up to the end of
// its last PT_LOAD segment: all that exec maps, without the debug
// information. Nothing to do when there is no program or it is sealed.
Status seal_program(PreparedExec& p);

// Whether the running program runs from a sealed memory copy.
bool running_sealed();

// The command as child::exec() takes it; `p` must outlive it.
child::Exec exec_args(const PreparedExec& p);

// The chain's exec: every kago program that hands over to the next command
// in its own process (cli::exec_command) comes here. Traced as execve(),
// made by child::exec(), the one exec of kago (which unshare-run's child,
// its init and the supervisors' children call directly). Returns only on
// failure; the Error names the command.
Error exec_prepared(const PreparedExec& p);

// The directory holding the running kago binary ("/usr/local/bin"); for a
// sealed copy, the directory of the file it was copied from.
Result<std::string> self_dir();

// "/bin/sh" or $SHELL.
std::vector<std::string> default_command();

// Describe argv for a trace line: ["a", "b"].
std::string describe_argv(const std::vector<std::string>& argv);
// One word for sh(1): as it is when it holds only safe characters, else in
// single quotes ('it'\''s').
std::string shell_word(std::string_view word);
// argv as a command line for sh(1), for a hint to copy and paste.
std::string shell_line(const std::vector<std::string>& argv);

}  // namespace kago
