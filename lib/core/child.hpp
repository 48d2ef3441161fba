// The engine: the one way kago starts a child process, hears from it, execs
// its command and, as PID 1, waits for it.
//
// Every place that clones or forks uses this file: unshare-run's child
// (ns/child), cg-limit's command (cgroup/spawn), net-setup's early command
// process (net/early), the rootless network helpers (net/usermode), the
// detached clean-up (net/host), cap-drop --new-session (caps/session), the
// packed runner's init, its command and its network helper (pack/runtime),
// and newuidmap and newgidmap (ns/idmap).
//
// ## The rules for code after clone()
//
// From the clone (or fork) until its exec or _exit, a child is not a normal
// process of ours: the parent's locks (malloc's, stdio's, a static's guard)
// may be held by a thread that the child does not have, and a child that
// shares our memory shares our heap, our environment and our errno. So:
//
//  1. Everything the child needs is prepared by the parent before the
//     clone: trace lines, error texts, argv (child::Exec), paths, file
//     contents. The child only reads it.
//  2. The child makes raw system calls and calls the async-signal-safe
//     functions of this file (exec, send, init, loopback_up), of
//     trace::emit / trace::call_prepared (one write(2) of prepared text),
//     of sys::write_whole / sys::send_with_fd, console::attach and
//     ready::wait. No std::string, no vector growth, no new, no printf, no
//     getenv after setenv, no exceptions, no function-local static whose
//     first use is in the child.
//  3. A child that shares our memory (CLONE_VM: start_shared) also writes
//     nothing the parent reads, except through words published with
//     proc::post() or a field the parent reads only after the child has
//     exec'd or exited (CLONE_VFORK). It never calls setenv, putenv or
//     clearenv (our environ), and reads errno only right after its own
//     call failed (errno lives in the thread's storage, which is ours).
//     It runs on a stack of its own (Stack). The exceptions are a
//     process started on the way out (net/host's finish_later_and_exit):
//     when the parent makes no further allocation until it exits, the heap
//     is the child's alone; and the packed runner's init (pack/runtime's
//     SharedInit), where the roles swap: the runner, which has nothing to
//     do for its init once it is cloned, makes only system calls that do
//     not fail in the normal course and allocates nothing until the init
//     has reported the command's status or exited, and the init runs as
//     the program (it allocates, and leaves the runner's objects alone).
//  4. Signals: the parent blocks the forwarded signals and SIGCHLD
//     (SignalBlock) before the clone, so that none is lost before it
//     supervises; the child restores the mask just before its exec (the
//     init keeps them blocked and waits for them).
//  5. A child reports to its parent only by Message (kind, step, errno,
//     text), one fixed-size write on a pipe or a unix socket, and ends
//     through this file only: fail() (the message, where there is a parent
//     to report to, then 125), exec_or_exit() (exit_code_for_exec_error()
//     for a failed exec: 127 not found, 126 found but not runnable), or a
//     body that returns its exit status to the entry that started it
//     (start_shared(), run()). leave() is the one _exit of lib/.
//
// The one exception: a child of its own memory (start(), start_in_cgroup())
// whose command is a kago program of this binary enters it in process
// (enter_in_process(), core/handoff.hpp) and runs it whole. That is safe
// because the programs of the multi-call binary start no threads, so no
// lock is held by a thread the child lacks; it is never done after
// start_shared().
//
// A child that goes on as the program itself (cap-drop --new-session's:
// a fork of a process with one thread, whose parent only waits) is a whole
// copy of it, and these rules do not apply to it.
//
// The code that runs after the clone is marked "after clone" in this file
// and in its users.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"

namespace kago {
struct PreparedExec;
}

namespace kago::child {

// --- one message from child to parent ----------------------------------------

enum class Kind : int32_t {
    none = 0,
    step_failed = 1,     // step `step` failed with `err`
    exec_failed = 2,     // the exec failed with `err` (`status`: the exit code used)
    status = 3,          // the command ended with wait status `status` (the init)
    namespaces = 4,      // `ns`: the child's namespace inodes
    console_failed = 5,  // console::attach() step `step` failed with `err`
    error = 6,           // a failure described by `text` (and `hint`)
    ok = 7,              // a step went well (a go-ahead, an acknowledgement)
};

// Fixed size, no pointers: written whole by one write(2) (it fits in
// PIPE_BUF, so a pipe never splits it) and read whole by one read(2).
struct Message {
    Kind kind = Kind::none;
    int32_t step = -1;    // the index of a prepared step; -1: none
    int32_t err = 0;      // errno
    int32_t status = 0;   // a wait status or an exit code
    uint64_t ns[8] = {};  // Kind::namespaces: an inode per ns::Type, 0 when absent
    char text[256] = {};  // NUL-terminated: what failed (Kind::error), or data
    char hint[160] = {};  // NUL-terminated

    // Copy s into text (hint), cut to fit. Async-signal-safe.
    void set_text(const char* s, size_t n);
    void set_hint(const char* s, size_t n);
};
static_assert(sizeof(Message) <= 512, "a Message must fit in PIPE_BUF");

// Send m on a pipe or a unix socket (MSG_NOSIGNAL: a parent that is gone
// does not kill us with SIGPIPE), with descriptor `fd` attached when it is
// not -1 (a socket only). Again on EINTR. 0, or -1 with errno.
// Async-signal-safe: usable after clone.
long send(int to, const Message& m, int fd = -1);
// The common case after clone: a message of `kind` about `step`.
long send(int to, Kind kind, int32_t step, int32_t err, int32_t status = 0);
// A failure described by text, for a child whose errors are Errors.
// Allocates nothing; text and hint are cut to fit.
long send_error(int to, const Error& e, int32_t code = 125);

// Read one message. 1: *m holds it (and *fd the descriptor that came with
// it, or -1, when fd is given); 0: end of file (the child is gone without a
// word); -1 with errno. A short message is EPROTO.
long receive(int from, Message* m, int* fd = nullptr, bool nonblocking = false);

// An Error from a received Kind::error message.
Error error_of(const Message& m);

// The two ends of a channel, both close-on-exec: `parent` is kept by the
// parent, `child` by the child (each closes the other's end).
struct Channel {
    UniqueFd parent, child;
    // pipe2(): the child writes, the parent reads.
    static Result<Channel> pipe(const char* what);
    // socketpair(AF_UNIX, SOCK_SEQPACKET): both ways, descriptors too.
    static Result<Channel> socket(const char* what);
};

// --- the end of a child ---------------------------------------------------------

// After clone: end this process now with `code`: _exit(2), without the
// destructors and atexit handlers that are the parent's. The one _exit of
// lib/: every child, and the process-level exits below, end here.
[[noreturn]] void leave(int code);
// After clone: send `m` on `report` when report >= 0 (a parent to report
// to; a parent that is gone does not stop us), then leave(code).
[[noreturn]] void fail(int report, const Message& m, int code = 125);
// The common case: a message of `kind` about `step` with errno `err` and
// `code` as its status.
[[noreturn]] void fail(int report, Kind kind, int32_t step, int32_t err, int code = 125);
// A failure described by an Error (send_error()).
[[noreturn]] void fail(int report, const Error& e, int code = 125);

// fork()-style start(flags) whose child runs `body` and leaves with the
// status it returns. Its pid in the parent, or -1 with errno.
template <class Body>
long run(unsigned long flags, Body&& body);

// End this process as the child whose wait status is `wstatus` ended: the
// same exit code, or the same signal (without a core dump) re-raised on
// ourselves, as util-linux unshare --fork does, with 128+N when it does
// not kill us.
[[noreturn]] void exit_like(int wstatus);

// --- exec ----------------------------------------------------------------------

// 127 when the command was not found, 126 when it was found but could not be
// executed. The one place that decides.
int exit_code_for_exec_error(int err);

// A command ready to exec without allocating: argv as the kernel wants it,
// pointing into strings that must outlive the exec.
struct Exec {
    int program_fd = -1;              // >= 0: execveat(fd, "", AT_EMPTY_PATH)
    std::vector<char*> argv;          // NULL-terminated
    char* const* envp = nullptr;      // nullptr: environ as it is at the exec
    // The command as prepare_exec() found it (set by exec_args()): when it
    // is a kago program of this binary, a process of its own may enter it
    // in process instead of exec'ing it (enter_in_process()).
    const PreparedExec* kago = nullptr;
    Exec() = default;
    Exec(const std::vector<std::string>& args, int program_fd);
    const char* name() const { return argv.empty() ? "" : argv[0]; }
};

// THE exec of kago: every exec of a command goes through here (the chain's
// cli::exec_command() through exec_prepared(), unshare-run's child, the
// init's command, cg-limit's and net-setup's command, the network
// helpers, the packed runner's command, newuidmap and newgidmap).
// execveat(program_fd) when there is a descriptor, else execve of argv[0]
// when it holds a slash, else the PATH search of execvp (ENOENT goes on,
// EACCES is remembered) in a stack buffer. No retry through /bin/sh on
// ENOEXEC, unlike execvp: that is 126. Returns only on failure, with the
// errno. Async-signal-safe: usable after clone.
int exec(const Exec& e);

// What a child does when its exec fails, besides leaving with
// exit_code_for_exec_error().
struct OnFailure {
    int report = -1;                  // send Kind::exec_failed here
    const char* trace = nullptr;      // with -v: traced before the exec, and its result after
    volatile int* failed = nullptr;   // the errno, for a CLONE_VFORK parent that traces it
    const char* message = nullptr;    // "PROGRAM: CMD: ", written to stderr with the reason
    // A process of its own (start(), start_in_cgroup(), fork; never
    // start_shared()): enter_in_process() first.
    bool may_enter = false;
};
// After clone: exec, or say so as `f` asks and _exit with
// exit_code_for_exec_error().
[[noreturn]] void exec_or_exit(const Exec& e, const OnFailure& f = {});

// The in-process hand-off (core/handoff.hpp; DESIGN.md, "The in-process
// hand-off"): when e.kago is a kago program of this binary and nothing
// stops it, enter it here as exec would have, and never return; otherwise
// return at once, and the caller execs. The one caller of
// handoff::maybe_enter(). It allocates: never after start_shared() (rule 3),
// and only in a process with one thread.
void enter_in_process(const Exec& e);

// --- signals -------------------------------------------------------------------

// The signals a supervisor forwards to its child: SIGINT, SIGTERM, SIGHUP,
// SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH; with_chld adds SIGCHLD. Built on
// the stack: async-signal-safe.
sigset_t forwarded_signals(bool with_chld);

// Blocks the forwarded signals and SIGCHLD in the calling process, so that
// none is lost between the clone and supervise(); the destructor unblocks
// them. The child calls restore_in_child() (async-signal-safe) before it
// execs.
class SignalBlock {
  public:
    SignalBlock();
    ~SignalBlock();
    SignalBlock(const SignalBlock&) = delete;
    SignalBlock& operator=(const SignalBlock&) = delete;
    void restore_in_child() const;
    const sigset_t& old_mask() const { return old_; }

  private:
    sigset_t old_;
};

// --- the init ------------------------------------------------------------------

// After clone: PID 1 of a new PID namespace (unshare-run's, the packed
// runner's), or the command's parent below a new time namespace. Reaps
// every child, forwards the forwarded signals to `cmd` (not those the
// terminal already sent to its process group), and when `cmd` ends sends
// Kind::status on `report` (when >= 0; the parent may read it with
// proc::supervise(pid, fd) and leave before the init's own exit) and exits
// with its code (128+N for a signal). A second SIGINT, SIGTERM or SIGHUP
// (the command may ignore the first) ends the container: as PID 1,
// kill(-1, SIGKILL) reaches every process of the namespace; otherwise only
// the command is killed. The signals must be blocked already
// (SignalBlock, or block_for_init()).
[[noreturn]] void init(pid_t cmd, int report);
// After clone: block what init() waits for. 0, or -1 with errno.
long block_for_init();

// --- starting the child --------------------------------------------------------

// fork(), as clone(flags|SIGCHLD) with no new stack: 0 in the child, its pid
// in the parent, -1 with errno. `flags` may hold CLONE_NEW* (never
// CLONE_VM: see start_shared).
long start(unsigned long flags);

// The same with clone3(CLONE_INTO_CGROUP): the child starts in the cgroup
// that the directory `cgroup_fd` is (v2), never outside it. ENOSYS or E2BIG
// on a kernel without it.
long start_in_cgroup(int cgroup_fd);

// A stack for a child that shares our memory. Not zeroed: the child
// touches only a few pages.
class Stack {
  public:
    explicit Stack(size_t size = 64 * 1024) : size_(size), mem_(new char[size]) {}
    ~Stack() {
        if (owned_) delete[] mem_;
    }
    Stack(const Stack&) = delete;
    Stack& operator=(const Stack&) = delete;
    char* top() const { return mem_ + size_; }
    // Never free it: for a child that outlives our use of it.
    void leak() { owned_ = false; }

  private:
    size_t size_;
    char* mem_;
    bool owned_ = true;
};

// clone(CLONE_VM|flags|SIGCHLD): a child that shares our memory (no page
// tables to copy; posix_spawn does the same), on `stack`. fn(arg) runs
// after clone under rule 3; it execs, fails, or returns its exit status,
// with which the entry leaves. With CLONE_VFORK in flags we are stopped
// until it has exec'd or left. Its pid, or -1 with errno.
pid_t start_shared(int (*fn)(void*), void* arg, Stack& stack, unsigned long flags = 0);

// --- owning a child ------------------------------------------------------------

// A child of ours, owned by a pidfd (UniqueFd-style, move-only): on scope
// exit it is killed with SIGKILL and reaped, unless it was waited for or
// released. The pidfd names the process, never a pid the kernel has given
// to another: a child that a supervisor (proc::supervise(), waitpid(-1))
// reaped already is neither signalled nor waited for again. Where pidfd_open
// fails (a kernel before 5.3, no descriptor left), the pid serves as before.
// Empty (pid 0: a dry run's "not made" child, or -1): does nothing.
class Process {
  public:
    Process() = default;
    // Own `pid`, a child of ours not yet reaped (pidfd_open()).
    explicit Process(pid_t pid);
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    Process(Process&& o) noexcept;
    Process& operator=(Process&& o) noexcept;
    ~Process() { kill(); }

    pid_t pid() const { return pid_; }
    int fd() const { return fd_.get(); }
    explicit operator bool() const { return pid_ > 0; }

    // Wait for its end (again on EINTR) and give up ownership: its wait
    // status. `hang` false: -1 with errno EAGAIN while it runs (it stays
    // ours). ECHILD when someone else reaped it.
    Result<int> wait(bool hang = true);
    // Send it `sig` (pidfd_send_signal()). 0, or -1 with errno (ESRCH: it
    // has ended).
    long signal(int sig) const;
    // Kill it with SIGKILL and reap it now (the destructor does this). Its
    // wait status, or -1 when it was not ours to reap any more.
    int kill();
    // Keep it running: give up ownership, and return its pid.
    pid_t release();

  private:
    pid_t pid_ = -1;
    UniqueFd fd_;
};

// --- the loopback interface ----------------------------------------------------

// Bring lo up in our network namespace: ioctl(SIOCGIFFLAGS) then
// ioctl(SIOCSIFFLAGS) with IFF_UP on an AF_INET socket. Async-signal-safe.
// 0, or -1 with errno.
long loopback_up();
// Its trace line, and the object of its error.
inline constexpr const char* kLoopbackUpText = "ioctl(SIOCSIFFLAGS, {ifr_name=\"lo\", ifr_flags=IFF_UP|...})";
inline constexpr const char* kLoopbackUpWhat = "bring up interface lo";
// The same, traced (and not made in a dry run), for a process that may
// allocate.
Status loopback_up_traced();

template <class Body>
long run(unsigned long flags, Body&& body) {
    long pid = start(flags);
    if (pid == 0) leave(body());
    return pid;
}

}  // namespace kago::child
