#include "core/console.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "core/env.hpp"
#include "core/parse.hpp"
#include "core/proc.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::console {

// --- the chain's side ---------------------------------------------------------

namespace {

enum Step : int { kOpenPtmx, kUnlock, kPeer, kSend, kWait, kSetsid, kCtty, kDup, kSteps };

const char* const kWhat[kSteps] = {
    "--tty: open /dev/ptmx",
    "--tty: unlock the new terminal (TIOCSPTLCK)",
    "--tty: open the new terminal (TIOCGPTPEER)",
    "--tty: send the terminal to the supervisor",
    "--tty: wait for the supervisor",
    "--tty: start a new session (setsid)",
    "--tty: make the new terminal the controlling terminal (TIOCSCTTY)",
    "--tty: put the new terminal on descriptors 0, 1 and 2",
};

// "CALL = R", or "CALL = -1 ENAME (text)", on stderr with -v. No allocation.
void traced(const char* call, long r, int e) {
    if (!trace::verbose()) return;
    char line[512];
    int n;
    if (r < 0) {
        const char* name = strerrorname_np(e);
        const char* desc = strerrordesc_np(e);
        n = snprintf(line, sizeof line, "%s = -1 %s (%s)", call, name ? name : "E?",
                     desc ? desc : "?");
    } else {
        n = snprintf(line, sizeof line, "%s = %ld", call, r);
    }
    if (n < 0) return;
    trace::emit(std::string_view(
        line, static_cast<size_t>(n) < sizeof line ? static_cast<size_t>(n) : sizeof line - 1));
}

long send_fd(int sock, int fd) {
    const char byte = 'M';
    return sys::send_with_fd(sock, &byte, 1, fd);
}

}  // namespace

const char* step_what(int step) {
    return step >= 0 && step < kSteps ? kWhat[step] : "--tty";
}

const char* step_hint(int step) {
    return step == kOpenPtmx
               ? "the root needs a /dev/ptmx, e.g. mount-layers --dev (a devpts of its own)"
               : nullptr;
}

Result<int> take(env::Contract& contract) {
    std::string value = contract.get(env::kConsoleFd);
    if (value.empty()) return -1;
    contract.unset(env::kConsoleFd);
    auto n = parse::u64(value, env::kConsoleFd);
    struct stat st;
    if (!n || *n < 3 || *n > 65535 || ::fstat(static_cast<int>(*n), &st) != 0 ||
        !S_ISSOCK(st.st_mode)) {
        errno = EBADF;
        return sys_error(cat(env::kConsoleFd, "=", value, ": not the console socket"));
    }
    return static_cast<int>(*n);
}

Failure attach(int sock) {
    Failure f;
    int m = -1, s = -1;
    auto fail = [&](int step) {
        f.step = step;
        f.err = errno;
        if (m >= 0) ::close(m);
        if (s > 2) ::close(s);
        ::close(sock);
        return f;
    };
    char call[160];

    m = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    traced("open(\"/dev/ptmx\", O_RDWR|O_NOCTTY|O_CLOEXEC)", m, errno);
    if (m < 0) return fail(kOpenPtmx);

    int unlock = 0;
    long r = ::ioctl(m, TIOCSPTLCK, &unlock);
    snprintf(call, sizeof call, "ioctl(%d, TIOCSPTLCK, [0])", m);
    traced(call, r, errno);
    if (r < 0) return fail(kUnlock);

    // The peer from the master itself, not by a path that the container's
    // /dev/pts could redirect.
    s = ::ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    snprintf(call, sizeof call, "ioctl(%d, TIOCGPTPEER, O_RDWR|O_NOCTTY|O_CLOEXEC)", m);
    traced(call, s, errno);
    if (s < 0) return fail(kPeer);

    r = send_fd(sock, m);
    snprintf(call, sizeof call, "sendmsg(%d, {\"M\", SCM_RIGHTS [%d]}, MSG_NOSIGNAL)", sock, m);
    traced(call, r, errno);
    if (r != 1) return fail(kSend);
    ::close(m);  // only the supervisor holds the master now
    m = -1;

    char ack = 0;
    ssize_t n;
    do n = ::recv(sock, &ack, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n == 0) errno = EPIPE;  // the supervisor is gone
    snprintf(call, sizeof call, "recv(%d, 1) /* the supervisor has set the size */", sock);
    traced(call, n == 1 ? 1 : -1, errno);
    if (n != 1) return fail(kWait);

    if (::getsid(0) != ::getpid()) {
        r = ::setsid();
        traced("setsid()", r, errno);
        if (r < 0) return fail(kSetsid);
    }
    r = ::ioctl(s, TIOCSCTTY, 0);
    snprintf(call, sizeof call, "ioctl(%d, TIOCSCTTY, 0)", s);
    traced(call, r, errno);
    if (r < 0) return fail(kCtty);

    for (int fd = 0; fd < 3; ++fd) {
        r = ::dup2(s, fd);
        snprintf(call, sizeof call, "dup2(%d, %d)", s, fd);
        traced(call, r, errno);
        if (r < 0) return fail(kDup);
    }
    if (s > 2) ::close(s);
    r = ::close(sock);  // end of file: the supervisor takes the caller's terminal
    snprintf(call, sizeof call, "close(%d)", sock);
    traced(call, r, errno);
    return f;
}

void show_dry_run() {
    for (const char* line : {
             "open(\"/dev/ptmx\", O_RDWR|O_NOCTTY|O_CLOEXEC) = MASTER",
             "ioctl(MASTER, TIOCSPTLCK, [0])",
             "ioctl(MASTER, TIOCGPTPEER, O_RDWR|O_NOCTTY|O_CLOEXEC) = TERMINAL",
             "sendmsg(KAGO_CONSOLE_FD, {\"M\", SCM_RIGHTS [MASTER]}, MSG_NOSIGNAL)",
             "recv(KAGO_CONSOLE_FD, 1) /* the supervisor has set the size */",
             "setsid()",
             "ioctl(TERMINAL, TIOCSCTTY, 0)",
             "dup2(TERMINAL, 0), dup2(TERMINAL, 1), dup2(TERMINAL, 2)",
             "close(KAGO_CONSOLE_FD)",
         })
        trace::emit(cat(line, " (dry run)"));
}

Status before_payload(env::Contract& contract) {
    if (trace::dry_run()) {
        if (!contract.get(env::kConsoleFd).empty()) {
            contract.unset(env::kConsoleFd);
            show_dry_run();
        }
        return {};
    }
    int sock = TRY(take(contract));
    if (sock < 0) return {};
    Failure f = attach(sock);
    if (f.step < 0) return {};
    errno = f.err;
    Error e = sys_error(step_what(f.step));
    if (const char* h = step_hint(f.step)) e.hint = h;
    return e;
}

Result<unsigned> check_master(int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return sys_error("--tty: the descriptor the chain sent");
    unsigned n = 0;
    if (!S_ISCHR(st.st_mode) || ::ioctl(fd, TIOCGPTN, &n) != 0) {
        errno = ENOTTY;
        return sys_error("--tty: the descriptor the chain sent is no terminal master");
    }
    return n;
}

// --- the supervisor's side ----------------------------------------------------

namespace {

// Set the terminal on standard input without being stopped by SIGTTOU
// (putting the mode back must work from the background too).
int set_mode(const struct termios& t) {
    sigset_t ttou, old;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    sigprocmask(SIG_BLOCK, &ttou, &old);
    int r;
    do r = ::tcsetattr(0, TCSADRAIN, &t);
    while (r < 0 && errno == EINTR);
    int e = errno;
    sigprocmask(SIG_SETMASK, &old, nullptr);
    errno = e;
    return r;
}

bool foreground() {
    pid_t fg = ::tcgetpgrp(0);
    return fg >= 0 && fg == ::getpgrp();
}

Status write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {fd, POLLOUT, 0};
            (void)::poll(&pf, 1, -1);
            continue;
        }
        if (w <= 0) return sys_error("--tty: write to standard output");
        p += w;
        n -= static_cast<size_t>(w);
    }
    return {};
}

// The window size of the caller's terminal (the first of 0, 1, 2 that is
// one) onto the master; nothing when the caller has none.
void pass_size(int master) {
    struct winsize ws;
    for (int fd = 0; fd < 3; ++fd) {
        if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) continue;
        trace::call(
            [&] {
                return cat("ioctl(", master, ", TIOCSWINSZ, {ws_row=", ws.ws_row,
                           ", ws_col=", ws.ws_col, "})");
            },
            [&] { return ::ioctl(master, TIOCSWINSZ, &ws); });
        return;
    }
}

// One message from the chain: the master, checked. Other descriptors that
// came along are closed.
Result<UniqueFd> receive_master(int sock, bool* eof) {
    char byte;
    int fd = -1;
    long n = sys::receive_with_fd(sock, &byte, 1, MSG_DONTWAIT, &fd);
    if (n < 0 && errno == EAGAIN) return UniqueFd();
    if (n < 0) return sys_error("--tty: recvmsg from the chain");
    *eof = n == 0;
    UniqueFd first(fd);
    if (trace::verbose() && n > 0)
        trace::emit(cat("recvmsg(", sock, ", SCM_RIGHTS) = ", n,
                        first.valid() ? cat(" [", first.get(), "]") : ""));
    return first;
}

}  // namespace

void RawMode::save() {
    if (saved_ok_ || !::isatty(0)) return;
    saved_ok_ = ::tcgetattr(0, &saved_) == 0;
}

Status RawMode::enter() {
    save();
    if (!saved_ok_ || active_ || !foreground()) return {};
    struct termios t = saved_;
    ::cfmakeraw(&t);
    long r = trace::call([] { return std::string("ioctl(0, TCSETSW, {raw: cfmakeraw()})"); },
                         [&] { return set_mode(t); });
    if (r < 0) return sys_error("--tty: make the terminal on standard input raw");
    active_ = true;
    return {};
}

void RawMode::restore() {
    if (!active_) return;
    active_ = false;
    trace::call([] { return std::string("ioctl(0, TCSETSW, {the mode it had})"); },
                [&] { return set_mode(saved_); });
}

Result<Proxy> Proxy::create(env::Contract& contract) {
    Proxy p;
    if (trace::dry_run()) {
        trace::emit(
            "socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC, 0, [OURS, KAGO_CONSOLE_FD]) (dry "
            "run)");
        trace::emit(
            "  supervisor: recvmsg(OURS, SCM_RIGHTS) = MASTER, ioctl(MASTER, TCSETS, {the caller's "
            "mode}), "
            "ioctl(MASTER, TIOCSWINSZ), send(OURS, \"y\"); at end of file ioctl(0, TCSETSW, "
            "{raw}), "
            "proxy, ioctl(0, TCSETSW, {the mode it had}) (dry run)");
        contract.set(env::kConsoleFd, "KAGO_CONSOLE_FD");
        return p;
    }
    int sv[2] = {-1, -1};
    long r = ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
    int e = errno;
    if (trace::verbose())
        trace::emit(cat("socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC, 0, [", sv[0], ", ", sv[1],
                        "])", trace::result_suffix(r, e)));
    errno = e;
    if (r != 0) return sys_error("--tty: socketpair (the console socket)");
    p.ours_.reset(sv[0]);
    p.child_.reset(sv[1]);
    contract.set(env::kConsoleFd, std::to_string(sv[1]));
    if (::isatty(0)) {
        p.null_.reset(static_cast<int>(
            trace::call([] { return std::string("open(\"/dev/null\", O_RDWR|O_CLOEXEC)"); },
                        [] { return ::open("/dev/null", O_RDWR | O_CLOEXEC); })));
        if (!p.null_) return sys_error("--tty: open /dev/null");
    }
    if (::isatty(1) || ::isatty(2)) {
        int r[2] = {-1, -1};
        long rc = ::pipe2(r, O_CLOEXEC);
        e = errno;
        if (trace::verbose())
            trace::emit(cat("pipe2([", r[0], ", ", r[1], "], O_CLOEXEC) /* the chain's stderr */",
                            trace::result_suffix(rc, e)));
        errno = e;
        if (rc != 0) return sys_error("--tty: pipe2 (the chain's standard error)");
        p.relay_r_.reset(r[0]);
        p.relay_w_.reset(r[1]);
        ::fcntl(r[0], F_SETFL, O_NONBLOCK);
    }
    return p;
}

Proxy::Stdio Proxy::stdio() const {
    Stdio s;
    if (null_) s.from[0] = null_.get();
    for (int fd : {1, 2})
        if (relay_w_ && ::isatty(fd)) s.from[fd] = relay_w_.get();
    return s;
}

namespace {
// 1 with *ws set when `child` was reaped, 0 when it still runs.
Result<int> reap(pid_t child, int* ws) {
    for (;;) {
        pid_t r = ::waitpid(-1, ws, WNOHANG | __WALL);
        if (r == child) return 1;
        if (r > 0) continue;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == ECHILD) return sys_error(cat("wait for process ", child));
        return 0;
    }
}

long now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
}  // namespace

Result<int> Proxy::supervise(pid_t child, const std::function<void(int)>& on_signal) {
    sigset_t set = proc::forwarded_signals();
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTSTP);
    sigaddset(&set, SIGCONT);
    sigset_t old;
    sigprocmask(SIG_BLOCK, &set, &old);
    struct Unblock {
        sigset_t old;
        ~Unblock() { sigprocmask(SIG_SETMASK, &old, nullptr); }
    } unblock{old};
    UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sfd) return sys_error("signalfd");
    // A reader of our standard output that goes away (| head) must not
    // kill us with the caller's terminal raw: EPIPE instead, below.
    struct sigaction ignore = {}, old_pipe;
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &old_pipe);
    struct PipeBack {
        struct sigaction old;
        ~PipeBack() { ::sigaction(SIGPIPE, &old, nullptr); }
    } pipe_back{old_pipe};
    raw_.save();

    bool handed = false;    // the chain closed the socket: the payload runs
    bool in_open = true;    // standard input not at end of file
    bool want_raw = false;  // raw while proxying (not while stopped)
    std::string pending;    // standard input not yet written to the master
    char buf[65536];
    // False when the terminal hung up (EIO: every descriptor of it is
    // closed), or our standard output did (EPIPE): then the container's
    // terminal hangs up too, as a closed terminal window does.
    // What the chain wrote to its standard error, to ours (non-blocking:
    // only what is there; end of file closes it).
    auto relay = [&] {
        while (relay_r_.valid()) {
            ssize_t n = ::read(relay_r_.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return;
            if (n <= 0) {
                relay_r_.reset();
                return;
            }
            (void)write_all(2, buf, static_cast<size_t>(n));
        }
    };
    auto copy_out = [&]() -> bool {
        ssize_t n = ::read(master_.get(), buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
        if (n <= 0) return false;
        return write_all(1, buf, static_cast<size_t>(n)).ok();
    };

    for (;;) {
        int ws = 0;
        if (TRY(reap(child, &ws))) {
            relay();  // the chain's last words, when it failed
            // What the payload wrote before it ended is still in the terminal:
            // copy it out until the terminal's last holder closed it (EIO), or
            // for as long as it keeps coming (a process that outlived the
            // child may hold it), at most a second.
            for (long end = now_ms() + 1000; master_.valid() && now_ms() < end;) {
                struct pollfd pf = {master_.get(), POLLIN, 0};
                if (::poll(&pf, 1, 100) <= 0) break;
                if (!copy_out()) break;
            }
            master_.reset();
            raw_.restore();
            return ws;
        }
        enum { kSig, kSock, kMaster, kIn, kRelay, kCount };
        struct pollfd p[kCount] = {};
        p[kSig] = {sfd.get(), POLLIN, 0};
        p[kSock] = {ours_.get(), POLLIN, 0};
        p[kMaster] = {master_.get(), static_cast<short>(POLLIN | (pending.empty() ? 0 : POLLOUT)),
                      0};
        bool read_in = handed && in_open && master_.valid() && pending.empty();
        p[kIn] = {read_in ? 0 : -1, POLLIN, 0};
        p[kRelay] = {relay_r_.get(), POLLIN, 0};
        if (::poll(p, kCount, -1) < 0) {
            if (errno == EINTR) continue;
            return sys_error("poll");
        }

        struct signalfd_siginfo si;
        while (::read(sfd.get(), &si, sizeof si) == sizeof si) {
            int sig = static_cast<int>(si.ssi_signo);
            if (sig == SIGCHLD) continue;
            if (sig == SIGTSTP) {  // job control: give the terminal back, stop
                raw_.restore();
                ::kill(::getpid(), SIGSTOP);
                continue;
            }
            if (sig == SIGCONT) {  // back: take the terminal again
                if (want_raw) TRY(raw_.enter());
                if (master_.valid()) pass_size(master_.get());
                continue;
            }
            if (on_signal) on_signal(sig);
            if (sig == SIGWINCH) {  // the kernel signals the container's terminal
                if (master_.valid()) pass_size(master_.get());
                continue;
            }
            if (!(si.ssi_code == SI_KERNEL && ::getpgid(child) == ::getpgrp()))
                (void)::kill(child, sig);
            if (sig == SIGHUP &&
                master_.valid()) {  // the caller's terminal hung up: so does the container's
                master_.reset();
                in_open = false;
                raw_.restore();
                want_raw = false;
            }
        }

        if (relay_r_.valid() && p[kRelay].revents) relay();
        if (ours_.valid() && p[kSock].revents) {
            bool eof = false;
            UniqueFd fd = TRY(receive_master(ours_.get(), &eof));
            if (fd.valid() && !master_.valid()) {
                TRY(check_master(fd.get()));
                ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
                master_ = std::move(fd);
                // The new terminal starts with the caller's mode and size.
                if (const struct termios* t = raw_.saved())
                    trace::call(
                        [&] {
                            return cat("ioctl(", master_.get(), ", TCSETS, {the caller's mode})");
                        },
                        [&] { return ::tcsetattr(master_.get(), TCSANOW, t); });
                pass_size(master_.get());
                char ack = 'y';
                if (trace::call(
                        [&] { return cat("send(", ours_.get(), ", \"y\", 1, MSG_NOSIGNAL)"); },
                        [&] { return ::send(ours_.get(), &ack, 1, MSG_NOSIGNAL); }) != 1)
                    return sys_error("--tty: answer the chain");
            }
            if (eof) {
                ours_.reset();
                relay();  // what the chain wrote before it handed over, before raw mode
                if (master_.valid()) {
                    handed = true;
                    want_raw = true;
                    TRY(raw_.enter());
                }
            }
        }

        if (master_.valid() && (p[kMaster].revents & (POLLIN | POLLHUP | POLLERR))) {
            if (!copy_out()) {
                master_.reset();
                in_open = false;
                raw_.restore();
                want_raw = false;
            }
        }
        if (master_.valid() && !pending.empty() && (p[kMaster].revents & POLLOUT)) {
            ssize_t w = ::write(master_.get(), pending.data(), pending.size());
            if (w > 0) pending.erase(0, static_cast<size_t>(w));
        }
        if (read_in && (p[kIn].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = ::read(0, buf, sizeof buf);
            if (n > 0) {
                pending.assign(buf, static_cast<size_t>(n));
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                in_open = false;
                // End of input, from a file or a pipe: the terminal's end of
                // file character, as a user would type it.
                struct termios t;
                if (master_.valid() && ::tcgetattr(master_.get(), &t) == 0 && (t.c_lflag & ICANON))
                    pending.assign(1, static_cast<char>(t.c_cc[VEOF]));
            }
        }
    }
}

}  // namespace kago::console
