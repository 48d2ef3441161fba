// A terminal of the container's own: unshare-run --tty.
//
// The caller's terminal never enters the container. The supervisor (the
// host side of unshare-run) holds it and proxies between it and a new
// pseudo-terminal that the container allocates from its own devpts, the way
// runc's console socket works:
//
//   supervisor (host)                        the chain (inside)
//   Proxy::create(): socketpair ──────────▶  KAGO_CONSOLE_FD (kago programs pass it on)
//   relay the chain's stderr  ◀── pipe ────  setsid; /dev/null and the pipe for
//                                            the standard descriptors that are terminals
//                                            the program about to exec the payload:
//                                            open /dev/ptmx, unlock, TIOCGPTPEER
//   recvmsg: the master  ◀── SCM_RIGHTS ───  sendmsg(master); close(master)
//   window size, termios                     (waits)
//   one byte ───────────────────────────▶    setsid, TIOCSCTTY, dup2 over 0 1 2
//   end of file: raw mode  ◀── close ──────  close(socket); execve(payload)
//   proxy until the child exits, then restore the caller's terminal mode
//
// Nothing in the container keeps a descriptor to the caller's terminal, nor
// has it as its controlling terminal, so no TIOCSTI, TIOCLINUX or /dev/tty
// reaches it (CVE-2017-5226), whatever the seccomp filter allows.
#pragma once

#include <sys/types.h>
#include <termios.h>

#include <functional>
#include <utility>

#include "core/env.hpp"
#include "core/fd.hpp"
#include "core/result.hpp"

namespace kago::console {

// --- the chain's side ---------------------------------------------------------

// The console socket inherited through KAGO_CONSOLE_FD, taken out of the
// environment: the descriptor, or -1 when there is none. An error when the
// value is not a socket descriptor above 2: the payload must not run on
// the caller's terminal when a terminal of its own was asked for. For the
// program about to exec a non-kago command, before it cleans the
// environment.
Result<int> take(env::Contract& contract);

// What attach() reports on failure: the step (an index for step_what()) and
// errno. step < 0: no failure.
struct Failure {
    int step = -1;
    int err = 0;
};
// The object of a failed step, for the message ("open /dev/ptmx").
const char* step_what(int step);
// A hint for that failure, or nullptr.
const char* step_hint(int step);

// Give this process a terminal of its own: a new pseudo-terminal from
// /dev/ptmx (the devpts of the current root), whose master goes to the
// supervisor over `sock`; the terminal becomes the controlling terminal of
// a new session (setsid, unless this process leads one already) and
// replaces descriptors 0, 1 and 2. Closes `sock`. Async-signal-safe: usable
// after fork(), clone() or vfork(). Each call is traced with -v.
Failure attach(int sock);

// The steps attach() would make, marked "(dry run)".
void show_dry_run();

// take() and attach() for a program about to exec a non-kago command (in
// a dry run: show_dry_run() when the chain has a console). The caller
// exits 125 with the error when the terminal cannot be made.
Status before_payload(env::Contract& contract);

// --- the supervisor's side ----------------------------------------------------

// The caller's terminal in raw mode while the proxy runs; its mode is put
// back by restore() and the destructor, on every path out of the
// supervisor that runs destructors. The terminal is standard input when
// it is one.
class RawMode {
  public:
    RawMode() = default;
    RawMode(RawMode&& o) noexcept
        : saved_(o.saved_), saved_ok_(o.saved_ok_), active_(std::exchange(o.active_, false)) {}
    RawMode& operator=(RawMode&& o) noexcept {
        if (this != &o) {
            restore();
            saved_ = o.saved_;
            saved_ok_ = o.saved_ok_;
            active_ = std::exchange(o.active_, false);
        }
        return *this;
    }
    ~RawMode() { restore(); }
    // Save the mode (once) and make the terminal raw. Nothing to do when
    // standard input is no terminal.
    Status enter();
    // Put the saved mode back (traced); idempotent.
    void restore();
    bool active() const { return active_; }
    // The mode the terminal had before, when it was saved.
    const struct termios* saved() const { return saved_ok_ ? &saved_ : nullptr; }
    // Save the mode without changing it.
    void save();

  private:
    struct termios saved_ {};
    bool saved_ok_ = false;
    bool active_ = false;
};

class Proxy {
  public:
    // A SOCK_SEQPACKET socket pair (close-on-exec). In a dry run only the
    // call is shown. KAGO_CONSOLE_FD is set to the child's end in
    // `contract`, for the chain.
    static Result<Proxy> create(env::Contract& contract);
    Proxy() = default;
    Proxy(Proxy&&) = default;
    Proxy& operator=(Proxy&&) = default;

    // The descriptor the chain gets; the child clears its close-on-exec.
    int child_end() const { return child_.get(); }

    // The chain's own standard descriptors. Each of 0, 1 and 2 that is a
    // terminal (the caller's) is replaced in the child before the chain
    // runs: 0 by /dev/null, 1 and 2 by a pipe whose reader here relays what
    // the chain writes (its errors, its trace) to our standard error; and
    // the child starts a session of its own. So no process of the
    // container, the chain's own programs included, ever holds the
    // caller's terminal or has it as its controlling terminal: not even
    // beside the processes of a container it joins. from[i] is the
    // descriptor to dup2() onto i, or -1 to keep i.
    struct Stdio {
        int from[3] = {-1, -1, -1};
    };
    Stdio stdio() const;

    // In the parent, after the child started: drop the child's ends.
    void forked() {
        child_.reset();
        null_.reset();
        relay_w_.reset();
    }

    // Wait for `child` as proc::supervise() does (forwarding signals, on
    // which on_signal is told), and meanwhile proxy: receive the master,
    // pass the window size on (SIGWINCH), copy standard input to the master
    // and the master to standard output, with the caller's terminal raw. A
    // SIGHUP hangs up the container's terminal too; SIGTSTP gives the
    // caller's terminal back and stops; SIGCONT takes it again. Once the
    // child has ended, what the terminal still holds is copied out and the
    // caller's terminal mode restored. Returns the child's wait status.
    Result<int> supervise(pid_t child, const std::function<void(int)>& on_signal = {});

  private:
    UniqueFd ours_, child_, master_;
    UniqueFd null_, relay_r_, relay_w_;  // the chain's standard descriptors
    RawMode raw_;
};

// Validate a received descriptor: a pseudo-terminal master (TIOCGPTN
// answers). Returns the pty number.
Result<unsigned> check_master(int fd);

}  // namespace kago::console
