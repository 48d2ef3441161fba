// Supervising a child: forwarding signals, waiting, and leaving with the
// child's status.
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/child.hpp"
#include "core/result.hpp"

namespace kago::proc {

// The signals a supervisor forwards to its child (child::forwarded_signals).
const sigset_t& forwarded_signals();

// The one signal block (core/child.hpp).
using SignalBlock = child::SignalBlock;

// Wait for `child` while forwarding signals to it. A signal that the
// terminal sent to the whole foreground process group is not sent twice.
// on_signal (optional) is told of every forwarded signal, e.g. to start a
// cleanup. Other children are reaped. Returns the child's wait status.
Result<int> supervise(pid_t child, const std::function<void(int)>& on_signal = {});

// The same, but also returns as soon as `status_fd` yields a wait status
// (a child::Message of Kind::status, as child::init() sends it), without
// waiting for `child` to exit: the way a supervisor learns that the command
// inside a container ended while the container's init is still tearing the
// container down. If `status_fd` reaches end of file (or brings anything
// else) first, this waits for `child` as above.
Result<int> supervise(pid_t child, int status_fd, const std::function<void(int)>& on_signal = {});

// --- /proc/PID/status: one reader, one parser -------------------------------

// Read a /proc/PID/status file (`path`) into buf, NUL-terminated, cut at
// size - 1 bytes. Only procfs's own file (fstatfs: PROC_SUPER_MAGIC): a
// root file system without /proc mounted could hold a file that claims any
// set. Its length, or -1 with errno (EXDEV: not procfs). Allocation-free.
long read_status(const char* path, char* buf, size_t size);

// The lines of /proc/PID/status that kago reads, as views into the text
// (the value after "Key:", without its leading and trailing blanks); empty
// when absent. Allocation-free: one parser for proc::self_status() and for
// cap-drop --show (caps::inspect()).
struct StatusFields {
    std::string_view name, uid, gid, groups;
    std::string_view cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
    std::string_view sig_cgt, threads;
    std::string_view no_new_privs, seccomp, seccomp_filters;
};
StatusFields parse_status(std::string_view text);

// A hexadecimal field (CapBnd, SigCgt). false when it is not one.
bool status_hex(std::string_view value, uint64_t& out);

// What /proc/self/status tells in one read, where system calls would take
// one prctl per capability (PR_CAPBSET_READ, PR_CAP_AMBIENT_IS_SET) and one
// sigaction per signal. Bit N-1 of `caught` is signal N.
struct SelfStatus {
    uint64_t bounding = 0, ambient = 0, caught = 0;
    int threads = -1;
};

// Read it (read_status(), parse_status()); false when /proc is not procfs
// or the file lacks a field. Allocation-free.
bool self_status(SelfStatus& out);

// 128+N for a signal, the exit code otherwise.
int exit_code(int wstatus);

// A supervisor that waits beside the command (cg-limit, net-setup,
// unshare-run's parent, cap-drop --new-session's parent) runs from a host
// file, and may sit in the container's PID namespace or see the payload
// with the same credentials. Made undumpable (PR_SET_DUMPABLE 0), no
// process of the container can open its /proc/PID/exe (to rewrite the host
// file, CVE-2019-5736), root, cwd, fd or environ without CAP_SYS_PTRACE.
// Call it before the command can run. A child forked afterwards inherits
// it until its exec; one that must have its /proc files written by an
// unprivileged parent (id maps) must be started before.
Status undumpable();

// Set PR_SET_PDEATHSIG; checks the parent did not already die.
Status die_with_parent(int sig, pid_t expected_parent);

// The signal a parent asked for with PR_SET_PDEATHSIG before it exec'd us
// (0: none). The kernel keeps it across an exec, but clears it when the
// exec or a set*id call changes the credentials.
int inherited_pdeathsig();

// A supervisor started by another one of the chain (which asked for
// PR_SET_PDEATHSIG, SIGKILL) dies with it, but cleanly: PR_SET_PDEATHSIG
// becomes SIGTERM, which it handles by killing its child, waiting for it and
// removing what it made. Returns the parent's pid (to compare with
// getppid() when SIGTERM comes), or 0 when no parent asked for it. A parent
// that died before the switch already killed us with the inherited signal.
pid_t follow_parent();
// Whether the parent that follow_parent() returned is gone.
bool parent_gone(pid_t parent);

// The fields of /proc/PID/stat that kago reads.
struct StatFields {
    pid_t pid = 0;
    std::string comm;  // field 2, without its parentheses
    char state = 0;    // field 3: R, S, D, Z (zombie), X (dead)...
    pid_t ppid = 0;    // field 4 (0 for a parent in an ancestor PID namespace)
    uint64_t start = 0;  // field 22: start time, in clock ticks after boot
    // Fields 48 to 51 (Linux 3.5 and later; 0 when the line has none): where
    // the argument and environment strings are.
    uintptr_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
};
// Parse one /proc/PID/stat line. The command name may hold spaces and
// parentheses: it ends at the last ')' of the line.
Result<StatFields> parse_stat(std::string_view text);
Result<StatFields> read_stat(pid_t pid);

// A supervisor that owns host objects, told apart from a later process
// with the same pid by its start time. Records of owners (lease files,
// owner records, nftables comments) keep both.
struct Owner {
    pid_t pid = 0;
    uint64_t start = 0;
};
// This process (start 0 when /proc cannot be read). /proc/self/stat is
// read once per process: a fork reads its own.
Owner self();

// Where this process's argument and environment strings are (what
// /proc/PID/cmdline and environ show), or nothing when /proc cannot tell.
// Read once from /proc/self/stat, with self(): the areas are those of the
// process's memory, which a fork copies and only an exec replaces, so a
// forked child and a program entered in process keep the answer.
struct StringAreas {
    char *args = nullptr, *args_end = nullptr, *envs = nullptr, *envs_end = nullptr;
    bool known() const { return args && args < args_end && envs && envs < envs_end; }
};
StringAreas own_string_areas();
// Whether the owner still runs. It is dead when its pid is gone, when it is
// a zombie (it has exited and waits to be reaped: whatever it would have
// removed, it never will), or when the pid now names a process with another
// start time. The one test of staleness for every kago program.
bool alive(const Owner& o);
// Whether the process of a parsed line runs: not a zombie, not dead.
bool running(const StatFields& st);

// A chain whose first program was killed is still ending for a moment:
// PR_SET_PDEATHSIG reaches the programs below it, which kill their
// children and remove what they made. A same-name start waits up to this
// long for the killed chain's processes to end before it refuses.
constexpr int kEndingMs = 3000;
// Milliseconds on CLOCK_MONOTONIC, for deadlines.
int64_t monotonic_ms();
// Wait until process `pid` has ended (gone, or a zombie), watching a pidfd,
// until `deadline_ms` (monotonic_ms()) at most. Returns whether it ended.
bool wait_ended(pid_t pid, int64_t deadline_ms);

// A child just started with clone() begins on our CPU and often waits
// there until we block, even when another CPU is idle: move it to the
// other CPUs of `allowed` (our affinity, read before the clone), so that
// its work overlaps ours. Best effort; nothing happens with one CPU. The
// child, if it execs, should set `allowed` back first: the affinity is
// inherited.
void move_off_our_cpu(pid_t child, const cpu_set_t& allowed);

// A word shared with a child started with clone(CLONE_VM): post() stores
// `value` and wakes the waiter; wait_while() returns the word's value once
// it is not `value`, or when `timeout` (relative, may be null) has passed.
// A futex, not a pipe: a pipe's wake-up is a synchronous one, which moves
// the woken process to the waker's CPU.
void post(int& word, int value);
int wait_while(int& word, int value, const struct timespec* timeout);

// A process that still runs in the network namespace that `nspath` names
// (a bind mount under /run/netns, or /proc/PID/ns/net), or 0: none, the
// path is gone, or it is the caller's own namespace (not a container's).
pid_t one_in_netns(const std::string& nspath);

// A process in the cgroup `rel` (as /proc/PID/cgroup shows it: v2, or any
// v1 hierarchy mounted under /sys/fs/cgroup), or 0.
pid_t one_in_cgroup(const std::string& rel);

}  // namespace kago::proc
