#include "core/proc.hpp"

#include <errno.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/trace.hpp"

namespace kago::proc {

const sigset_t& forwarded_signals() {
    static const sigset_t set = [] {
        sigset_t s;
        sigemptyset(&s);
        for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH})
            sigaddset(&s, sig);
        return s;
    }();
    return set;
}

SignalBlock::SignalBlock() {
    sigset_t s = forwarded_signals();
    sigaddset(&s, SIGCHLD);
    sigprocmask(SIG_BLOCK, &s, &old_);
}

SignalBlock::~SignalBlock() { sigprocmask(SIG_SETMASK, &old_, nullptr); }

void SignalBlock::restore_in_child() const { sigprocmask(SIG_SETMASK, &old_, nullptr); }

Result<int> supervise(pid_t child, const std::function<void(int)>& on_signal) {
    sigset_t wait_set = forwarded_signals();
    sigaddset(&wait_set, SIGCHLD);
    for (;;) {
        // Reap first: SIGCHLD may have come before we started waiting.
        for (;;) {
            int ws = 0;
            pid_t r = ::waitpid(-1, &ws, WNOHANG | __WALL);
            if (r == child) return ws;
            if (r > 0) continue;  // some other child of ours
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && errno == ECHILD) return sys_error(cat("wait for process ", child));
            break;
        }
        siginfo_t info;
        int sig = ::sigwaitinfo(&wait_set, &info);
        if (sig < 0) {
            if (errno == EINTR) continue;
            return sys_error("sigwaitinfo");
        }
        if (sig == SIGCHLD) continue;
        if (on_signal) on_signal(sig);
        // A signal the terminal sent to the foreground group already reached
        // the child when it is in our group; do not deliver it twice.
        if (info.si_code == SI_KERNEL && ::getpgid(child) == ::getpgrp()) continue;
        (void)::kill(child, sig);
    }
}

int exit_code(int ws) {
    if (WIFEXITED(ws)) return WEXITSTATUS(ws);
    if (WIFSIGNALED(ws)) return 128 + WTERMSIG(ws);
    return 125;
}

void exit_like(int ws) {
    if (WIFSIGNALED(ws)) {
        int sig = WTERMSIG(ws);
        if (sig != SIGKILL && sig != SIGSTOP) {
            struct rlimit no_core = {0, 0};
            setrlimit(RLIMIT_CORE, &no_core);
            signal(sig, SIG_DFL);
            sigset_t s;
            sigemptyset(&s);
            sigaddset(&s, sig);
            sigprocmask(SIG_UNBLOCK, &s, nullptr);
            ::kill(::getpid(), sig);
        }
        _exit(128 + sig);
    }
    _exit(exit_code(ws));
}

Status die_with_parent(int sig, pid_t expected_parent) {
    long r = trace::call([&] { return cat("prctl(PR_SET_PDEATHSIG, ", sig, ")"); },
                         [&] { return ::prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); });
    if (r != 0) return sys_error("prctl(PR_SET_PDEATHSIG)");
    if (::getppid() != expected_parent) {
        errno = ESRCH;
        return sys_error("the parent process exited before PR_SET_PDEATHSIG took effect");
    }
    return {};
}

}  // namespace kago::proc
