// The child that enters the namespaces, and the small init that runs as its
// PID 1.
//
// The parent prepares every step of the child as a ChildPlan: the trace
// text, the error text and the arguments. After clone() the child only runs
// the plan under the rules of core/child.hpp, and reports a failure as a
// child::Message (the step's index and errno); the parent turns it into the
// message. The same plan is printed by a dry run. The clone, the exec, the
// init and the message are the engine's (core/child).
//
//   parent                                child (clone with CLONE_NEW*)
//   spawn() ───────────────────────────▶  steps up to wait_for_parent()
//   write uid/gid maps, state, info
//   release() ──── sync pipe ──────────▶  remaining steps
//   supervise()                           exec COMMAND, or fork it and run
//   finish() ◀──── report pipe ────────   init(): reap, forward, exit like it
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/child.hpp"
#include "core/env.hpp"
#include "core/exec.hpp"
#include "core/fd.hpp"
#include "core/result.hpp"
#include "ns/info.hpp"
#include "ns/join.hpp"

namespace kago::ns {

struct Step {
    enum class Op {
        close_fd,
        keep_fd,
        dup_fd,
        new_session,
        die_with_parent,
        wait_for_parent,
        setns,
        fchdir,
        chroot_here,
        chdir_in_root,
        unshare,
        write_file,
        sethostname,
        mount,
        loopback_up,
        report_namespaces
    };
    Op op;
    std::string text;  // the trace line, in syscall form; empty: not traced
    std::string what;  // the object, for the error message
    std::string a, b, c, d;
    unsigned long flags = 0;
    int fd = -1;
    int fd2 = -1;  // chdir_in_root: the root; fd is the directory
};

class ChildPlan {
  public:
    // Close a descriptor the child must not keep (--info-fd). Not traced.
    void close_fd(int fd);
    // Keep a descriptor across the exec (clear close-on-exec): one the next
    // kago program is given, such as KAGO_CONSOLE_FD. Not traced.
    void keep_fd(int fd);
    // dup2(from, to): the chain's standard descriptors (unshare-run --tty).
    void dup_fd(int from, int to);
    // setsid(): a session of the child's own, with no controlling terminal.
    void new_session();
    // PR_SET_PDEATHSIG(SIGKILL).
    void die_with_parent();
    // Block until the parent calls release(); exit quietly if it died.
    void wait_for_parent();
    void join(const Join& j);
    // fchdir(root), chroot("."), then the joined process's cwd, resolved
    // inside that root (openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS of the
    // path getcwd() gives after fchdir(cwd)), or "/" when it lies outside:
    // the process may sit in a host directory (CVE-2024-21626). After
    // joining the mount namespace.
    void enter_root(const Joins& j);
    void unshare(unsigned long flags);
    void write_file(std::string path, std::string content);
    void set_hostname(std::string name);
    // NULL for an empty string, like the wrapper in core/sys.
    void mount(std::string source, std::string target, std::string fstype, unsigned long flags,
               std::string data, std::string what);
    // Bring the loopback interface up: ioctl(SIOCSIFFLAGS).
    void loopback_up();
    // Send the inode numbers of the child's namespaces to the parent
    // (Child::namespaces()), so that it need not keep the child waiting to
    // read /proc/PID/ns. Not traced: it only reads.
    void report_namespaces();

    // The command. init: fork it and stay as its parent, reaping every child
    // and forwarding signals (as PID 1 of a new PID namespace, or below a new
    // time namespace); otherwise exec it. `mask` is the signal mask to
    // restore before the exec. Once the command runs, the init keeps no host
    // state: it is undumpable, closes every descriptor but its report pipe,
    // moves to "/" (which pivot_root moves into the container) and wipes
    // its command line and environment, so that /proc/1/{cmdline,environ}
    // show neither. A payload's readiness gate is taken out of `contract`
    // (ready::take()), before the caller applies it.
    void set_command(const PreparedExec& cmd, env::Contract& contract, const sigset_t& mask,
                     bool init, bool die_with_parent);

    const std::vector<Step>& steps() const { return steps_; }
    bool init() const { return init_; }
    const PreparedExec* command() const { return cmd_; }
    const std::string& exec_text() const { return exec_text_; }
    const sigset_t& mask() const { return mask_; }
    // The init's argument and environment strings, to wipe (/proc/self/stat).
    struct Area {
        char* begin = nullptr;
        char* end = nullptr;
    };
    Area args() const { return args_; }
    Area envs() const { return envs_; }
    bool command_dies_with_parent() const { return cmd_pdeathsig_; }
    // The chain's readiness gate, waited for before a non-kago command
    // (core/ready.hpp); -1 when there is none.
    int ready_fd() const { return ready_fd_; }
    // unshare-run --tty, when the command is not a kago program: the
    // console socket; the command gets a terminal of its own
    // (console::attach()) just before its exec. -1: none.
    void set_console(int fd) { console_fd_ = fd; }
    int console_fd() const { return console_fd_; }

  private:
    std::vector<Step> steps_;
    const PreparedExec* cmd_ = nullptr;
    std::string exec_text_;
    sigset_t mask_{};
    bool init_ = false;
    bool cmd_pdeathsig_ = false;
    int ready_fd_ = -1;
    int console_fd_ = -1;
    Area args_, envs_;
};

// Print the plan the way the child would trace it, marked "(dry run)".
void show_dry_run(const ChildPlan& plan);

// How the container ended.
struct Outcome {
    int wstatus = 0;             // leave like this: child::exit_like()
    std::optional<Error> error;  // a failed step or exec, to report
    int code = 125;              // the exit status that goes with the error
};

class Child {
  public:
    Child() = default;
    Child(Child&& o) noexcept
        : proc_(std::move(o.proc_)),
          sync_(std::move(o.sync_)),
          report_(std::move(o.report_)),
          early_(std::move(o.early_)) {}
    Child& operator=(Child&& o) noexcept {
        abort();
        proc_ = std::move(o.proc_);
        sync_ = std::move(o.sync_);
        report_ = std::move(o.report_);
        early_ = std::move(o.early_);
        return *this;
    }
    ~Child() { abort(); }

    pid_t pid() const { return proc_.pid(); }
    // The inode numbers the child sent at report_namespaces(). Fails when it
    // failed before; finish() or stop() then tell why.
    Result<std::vector<NsInode>> namespaces();
    // Let the child go on past its next wait_for_parent().
    Status release();
    // After the child was reaped with `wstatus`: what happened inside.
    Outcome finish(const ChildPlan& plan, int wstatus);
    // Setup failed in the parent: kill the child, reap it and return what
    // it reported (it may have failed first).
    Outcome stop(const ChildPlan& plan);
    // Kill the child and reap it (the destructor does this).
    void abort();

  private:
    friend Result<Child> spawn(unsigned long flags, const ChildPlan& plan);
    child::Process proc_;        // pid 0 in a dry run
    UniqueFd sync_;              // write end
    UniqueFd report_;            // read end
    std::vector<child::Message> early_;  // reports read by namespaces() that finish() must see
};

// clone() a child with `flags` (CLONE_NEW*, never CLONE_NEWTIME) that runs
// `plan`. In a dry run nothing is created and the child's pid is 0.
Result<Child> spawn(unsigned long flags, const ChildPlan& plan);

}  // namespace kago::ns
