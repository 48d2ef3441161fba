#include "core/child.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <new>
#include <utility>

#include "core/handoff.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::child {

// --- messages --------------------------------------------------------------------

namespace {
void copy_cut(char* to, size_t cap, const char* s, size_t n) {
    if (n > cap - 1) n = cap - 1;
    memcpy(to, s, n);
    to[n] = '\0';
}
}  // namespace

void Message::set_text(const char* s, size_t n) { copy_cut(text, sizeof text, s, n); }
void Message::set_hint(const char* s, size_t n) { copy_cut(hint, sizeof hint, s, n); }

long send(int to, const Message& m, int fd) {
    if (fd >= 0) {
        long n = sys::send_with_fd(to, &m, sizeof m, fd);
        return n == static_cast<long>(sizeof m) ? 0 : -1;
    }
    for (;;) {
        // write(2) serves a pipe and a socket alike; a socket peer that is
        // gone gives EPIPE, and the parent that is gone no longer cares.
        struct stat st;
        ssize_t n;
        if (::fstat(to, &st) == 0 && S_ISSOCK(st.st_mode))
            n = ::send(to, &m, sizeof m, MSG_NOSIGNAL);
        else
            n = ::write(to, &m, sizeof m);
        if (n < 0 && errno == EINTR) continue;
        if (n == static_cast<ssize_t>(sizeof m)) return 0;
        if (n >= 0) errno = EIO;
        return -1;
    }
}

long send(int to, Kind kind, int32_t step, int32_t err, int32_t status) {
    Message m;
    m.kind = kind;
    m.step = step;
    m.err = err;
    m.status = status;
    return send(to, m);
}

long send_error(int to, const Error& e, int32_t code) {
    Message m;
    m.kind = Kind::error;
    m.err = e.err;
    m.status = code;
    m.set_text(e.what.data(), e.what.size());
    m.set_hint(e.hint.data(), e.hint.size());
    return send(to, m);
}

long receive(int from, Message* m, int* fd, bool nonblocking) {
    int got = -1;
    ssize_t n;
    struct stat st;
    bool sock = ::fstat(from, &st) == 0 && S_ISSOCK(st.st_mode);
    for (;;) {
        if (sock)
            n = sys::receive_with_fd(from, m, sizeof *m, nonblocking ? MSG_DONTWAIT : 0, &got);
        else
            n = ::read(from, m, sizeof *m);
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    if (fd) *fd = got;
    else if (got >= 0) ::close(got);
    if (n < 0) return -1;
    if (n == 0) return 0;
    if (n != static_cast<ssize_t>(sizeof *m)) {
        errno = EPROTO;
        return -1;
    }
    m->text[sizeof m->text - 1] = '\0';
    m->hint[sizeof m->hint - 1] = '\0';
    return 1;
}

Error error_of(const Message& m) { return Error{m.err, m.text, m.hint}; }

Result<Channel> Channel::pipe(const char* what) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return sys_error(cat("pipe2 (", what, ")"));
    Channel c;
    c.parent.reset(p[0]);
    c.child.reset(p[1]);
    return c;
}

Result<Channel> Channel::socket(const char* what) {
    int s[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s) != 0)
        return sys_error(cat("socketpair (", what, ")"));
    Channel c;
    c.parent.reset(s[0]);
    c.child.reset(s[1]);
    return c;
}

// --- the end of a child -----------------------------------------------------------

void leave(int code) {
    ::_exit(code);
}

void fail(int report, const Message& m, int code) {
    if (report >= 0) (void)send(report, m);
    leave(code);
}

void fail(int report, Kind kind, int32_t step, int32_t err, int code) {
    if (report >= 0) (void)send(report, kind, step, err, code);
    leave(code);
}

void fail(int report, const Error& e, int code) {
    if (report >= 0) (void)send_error(report, e, code);
    leave(code);
}

void exit_like(int ws) {
    if (WIFSIGNALED(ws)) {
        int sig = WTERMSIG(ws);
        if (sig != SIGKILL && sig != SIGSTOP) {
            struct rlimit no_core = {0, 0};
            ::setrlimit(RLIMIT_CORE, &no_core);
            ::signal(sig, SIG_DFL);
            sigset_t s;
            sigemptyset(&s);
            sigaddset(&s, sig);
            ::sigprocmask(SIG_UNBLOCK, &s, nullptr);
            ::kill(::getpid(), sig);
        }
        leave(128 + sig);
    }
    leave(WIFEXITED(ws) ? WEXITSTATUS(ws) : 125);
}

// --- exec ------------------------------------------------------------------------

int exit_code_for_exec_error(int err) {
    return (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG || err == ELOOP) ? 127 : 126;
}

Exec::Exec(const std::vector<std::string>& args, int fd) : program_fd(fd) {
    argv.reserve(args.size() + 1);
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
}

namespace {

// The value of NAME in envp, without getenv() (which reads environ).
const char* env_value(char* const* envp, const char* name, size_t len) {
    for (; envp && *envp; ++envp)
        if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=') return *envp + len + 1;
    return nullptr;
}

// execvp's search, in a stack buffer.
int exec_search(char* const argv[], char* const envp[]) {
    const char* file = argv[0];
    if (strchr(file, '/')) {
        ::execve(file, argv, envp);
        return errno;
    }
    const char* path = env_value(envp, "PATH", 4);
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    size_t flen = strlen(file);
    bool denied = false;
    char buf[4096];
    for (const char* p = path;; ++p) {
        const char* end = strchrnul(p, ':');
        size_t dlen = static_cast<size_t>(end - p);
        if (dlen + flen + 2 <= sizeof buf) {
            if (dlen == 0) {
                memcpy(buf, file, flen + 1);
            } else {
                memcpy(buf, p, dlen);
                buf[dlen] = '/';
                memcpy(buf + dlen + 1, file, flen + 1);
            }
            ::execve(buf, argv, envp);
            switch (errno) {
                case EACCES: denied = true; break;
                case ENOENT:
                case ENOTDIR:
                case ESTALE:
                case ENODEV:
                case ETIMEDOUT: break;
                default: return errno;
            }
        }
        if (*end == '\0') break;
        p = end;
    }
    return denied ? EACCES : ENOENT;
}

}  // namespace

int exec(const Exec& e) {
    if (e.argv.empty() || !e.argv[0]) return EINVAL;
    char* const* envp = e.envp ? e.envp : environ;
    if (e.program_fd >= 0) {
        ::syscall(SYS_execveat, e.program_fd, "", e.argv.data(), envp, AT_EMPTY_PATH);
        return errno;
    }
    return exec_search(e.argv.data(), envp);
}

void enter_in_process(const Exec& e) {
    if (e.kago) handoff::maybe_enter(*e.kago, e.argv.data(), e.envp ? e.envp : environ);
}

void exec_or_exit(const Exec& e, const OnFailure& f) {
    if (f.may_enter) enter_in_process(e);  // returns when this must be an exec
    if (f.trace && trace::verbose()) trace::emit(f.trace);
    int err = exec(e);
    int code = exit_code_for_exec_error(err);
    if (f.trace && trace::verbose()) trace::emit_result(f.trace, -1, err);
    if (f.failed) *f.failed = err;
    if (f.report >= 0) (void)send(f.report, Kind::exec_failed, -1, err, code);
    if (f.message) {
        const char* why = strerrordesc_np(err);
        (void)!::write(2, f.message, strlen(f.message));
        (void)!::write(2, why, strlen(why));
        (void)!::write(2, "\n", 1);
    }
    leave(code);
}

// --- signals ---------------------------------------------------------------------

sigset_t forwarded_signals(bool with_chld) {
    sigset_t s;
    sigemptyset(&s);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) sigaddset(&s, sig);
    if (with_chld) sigaddset(&s, SIGCHLD);
    return s;
}

SignalBlock::SignalBlock() {
    sigset_t s = forwarded_signals(true);
    sigprocmask(SIG_BLOCK, &s, &old_);
}

SignalBlock::~SignalBlock() { sigprocmask(SIG_SETMASK, &old_, nullptr); }

void SignalBlock::restore_in_child() const { sigprocmask(SIG_SETMASK, &old_, nullptr); }

long block_for_init() {
    sigset_t s = forwarded_signals(true);
    return ::sigprocmask(SIG_BLOCK, &s, nullptr);
}

// --- the init --------------------------------------------------------------------

void init(pid_t cmd, int report) {
    const sigset_t set = forwarded_signals(true);
    int terminating = 0;
    for (;;) {
        for (;;) {
            int ws = 0;
            pid_t r = ::waitpid(-1, &ws, WNOHANG | __WALL);
            if (r == cmd) {
                if (report >= 0) (void)send(report, Kind::status, -1, 0, ws);
                leave(WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
            }
            if (r > 0) continue;
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) leave(125);  // ECHILD: cannot happen while cmd lives
            break;
        }
        siginfo_t info;
        int sig = ::sigwaitinfo(&set, &info);
        if (sig <= 0 || sig == SIGCHLD) continue;
        if ((sig == SIGINT || sig == SIGTERM || sig == SIGHUP) && ++terminating > 1) {
            ::kill(::getpid() == 1 ? -1 : cmd, SIGKILL);
            continue;
        }
        // The terminal's signals already reached the command when it shares
        // our process group; do not deliver them twice.
        if (info.si_code == SI_KERNEL && ::getpgid(cmd) == ::getpgrp()) continue;
        ::kill(cmd, sig);
    }
}

// --- starting --------------------------------------------------------------------

long start(unsigned long flags) {
    if (flags & CLONE_VM) {
        errno = EINVAL;
        return -1;
    }
    return ::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
}

long start_in_cgroup(int cgroup_fd) {
    // struct clone_args of linux/sched.h (CLONE_ARGS_SIZE_VER2).
    struct {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
            set_tid_size, cgroup;
    } args;
    memset(&args, 0, sizeof args);
    args.flags = 0x200000000ULL;  // CLONE_INTO_CGROUP
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
    return ::syscall(SYS_clone3, &args, sizeof args);
}

namespace {
// What a shared child runs, at the top of its own stack (16-byte aligned
// below it): the entry leaves with the status fn returns.
struct Entry {
    int (*fn)(void*);
    void* arg;
};
constexpr size_t kEntrySpace = 64;
static_assert(sizeof(Entry) <= kEntrySpace);

int entry(void* p) {  // after clone
    const auto* e = static_cast<const Entry*>(p);
    leave(e->fn(e->arg));
}
}  // namespace

pid_t start_shared(int (*fn)(void*), void* arg, Stack& stack, unsigned long flags) {
    char* below = stack.top() - kEntrySpace;
    auto* e = new (below) Entry{fn, arg};
    return ::clone(entry, below, static_cast<int>(CLONE_VM | flags | SIGCHLD), e);
}

// --- owning a child ----------------------------------------------------------------

Process::Process(pid_t pid) : pid_(pid) {
    if (pid > 0) fd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

Process::Process(Process&& o) noexcept : pid_(std::exchange(o.pid_, -1)), fd_(std::move(o.fd_)) {}

Process& Process::operator=(Process&& o) noexcept {
    if (this != &o) {
        kill();
        pid_ = std::exchange(o.pid_, -1);
        fd_ = std::move(o.fd_);
    }
    return *this;
}

Result<int> Process::wait(bool hang) {
    if (pid_ <= 0) {
        errno = ECHILD;
        return sys_error("wait for a process that is not ours");
    }
    int ws = 0;
    for (;;) {
        long r;
        if (fd_) {
            siginfo_t si;
            memset(&si, 0, sizeof si);
            r = ::waitid(P_PIDFD, static_cast<id_t>(fd_.get()), &si,
                         WEXITED | __WALL | (hang ? 0 : WNOHANG));
            if (r == 0 && si.si_pid == 0) r = -2;  // WNOHANG: still running
            if (r == 0) {
                if (si.si_code == CLD_EXITED)
                    ws = (si.si_status & 0xff) << 8;
                else
                    ws = (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0);
            }
        } else {
            r = ::waitpid(pid_, &ws, __WALL | (hang ? 0 : WNOHANG));
            if (r == 0)
                r = -2;
            else if (r > 0)
                r = 0;
        }
        if (r == -2) {
            errno = EAGAIN;
            return sys_error(cat("process ", pid_, " is still running"));
        }
        if (r < 0 && errno == EINTR) continue;
        int e = errno;
        pid_t pid = release();
        if (r < 0) {
            errno = e;
            return sys_error(cat("wait for process ", pid));
        }
        return ws;
    }
}

long Process::signal(int sig) const {
    if (pid_ <= 0) {
        errno = ESRCH;
        return -1;
    }
    if (fd_) return ::syscall(SYS_pidfd_send_signal, fd_.get(), sig, nullptr, 0);
    return ::kill(pid_, sig);
}

int Process::kill() {
    if (pid_ <= 0) return -1;
    (void)signal(SIGKILL);  // it may be gone already
    auto ws = wait();
    return ws ? *ws : -1;
}

pid_t Process::release() {
    fd_.reset();
    return std::exchange(pid_, -1);
}

// --- lo --------------------------------------------------------------------------

long loopback_up() {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    long r = ::ioctl(s, SIOCGIFFLAGS, &ifr);
    if (r == 0) {
        ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
        r = ::ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    ::close(s);
    errno = e;
    return r;
}

Status loopback_up_traced() {
    if (trace::call([] { return std::string(kLoopbackUpText); }, [] { return loopback_up(); }) != 0)
        return sys_error(kLoopbackUpWhat);
    return {};
}

}  // namespace kago::child
