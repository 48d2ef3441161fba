#include "cgroup/spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/console.hpp"
#include "core/handoff.hpp"
#include "core/ready.hpp"
#include "core/trace.hpp"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

namespace kago::cgroup {
namespace {

// struct clone_args of linux/sched.h (CLONE_ARGS_SIZE_VER2).
struct CloneArgs {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

const char* rlimit_constant(int resource) {
    switch (resource) {
    case RLIMIT_AS: return "RLIMIT_AS";
    case RLIMIT_CORE: return "RLIMIT_CORE";
    case RLIMIT_CPU: return "RLIMIT_CPU";
    case RLIMIT_DATA: return "RLIMIT_DATA";
    case RLIMIT_FSIZE: return "RLIMIT_FSIZE";
    case RLIMIT_LOCKS: return "RLIMIT_LOCKS";
    case RLIMIT_MEMLOCK: return "RLIMIT_MEMLOCK";
    case RLIMIT_MSGQUEUE: return "RLIMIT_MSGQUEUE";
    case RLIMIT_NICE: return "RLIMIT_NICE";
    case RLIMIT_NOFILE: return "RLIMIT_NOFILE";
    case RLIMIT_NPROC: return "RLIMIT_NPROC";
    case RLIMIT_RSS: return "RLIMIT_RSS";
    case RLIMIT_RTPRIO: return "RLIMIT_RTPRIO";
    case RLIMIT_RTTIME: return "RLIMIT_RTTIME";
    case RLIMIT_SIGPENDING: return "RLIMIT_SIGPENDING";
    case RLIMIT_STACK: return "RLIMIT_STACK";
    default: return "?";
    }
}

std::string lim(uint64_t v) { return v == kMax ? "RLIM_INFINITY" : std::to_string(v); }

// A failed step of console::attach() is reported as kConsoleStep - step.
constexpr int kConsoleStep = -100;

// What the child reports through the error pipe.
struct ChildError {
    int step;
    int err;
};

// Everything the child needs, prepared by the parent.
struct ChildPlan {
    const SpawnRequest* req;
    pid_t parent;
    int error_fd;
    bool write_procs;  // v1, or clone3 unavailable
    std::vector<std::string> trace_lines;  // one per step
    std::vector<char*> argv;
    int ready_fd = -1;  // the chain's readiness gate, before a non-kago command
    int console_fd = -1;  // unshare-run --tty's socket, before a non-kago command
    // steps: 0 = PR_SET_PDEATHSIG, 1..n = procs, then rlimits, then exec
};

[[noreturn]] void child_fail(const ChildPlan& p, int step, int err, int code) {
    ChildError ce{step, err};
    ssize_t w = ::write(p.error_fd, &ce, sizeof ce);
    (void)w;
    _exit(code);
}

long write_zero(void* arg) {
    int fd = *static_cast<int*>(arg);
    return ::write(fd, "0", 1) == 1 ? 0 : -1;
}

long do_prlimit(void* arg) {
    const Rlimit* r = static_cast<const Rlimit*>(arg);
    struct rlimit64 rl;
    rl.rlim_cur = r->soft == kMax ? RLIM64_INFINITY : r->soft;
    rl.rlim_max = r->hard == kMax ? RLIM64_INFINITY : r->hard;
    return ::syscall(SYS_prlimit64, 0, r->resource, &rl, nullptr);
}

long do_pdeathsig(void*) { return ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); }

[[noreturn]] void run_child(const ChildPlan& p) {
    const SpawnRequest& req = *p.req;
    if (req.signals) req.signals->restore_in_child();
    size_t step = 0;
    if (trace::call_prepared(p.trace_lines[step], do_pdeathsig, nullptr) != 0) child_fail(p, 0, errno, 125);
    if (::getppid() != p.parent) _exit(125);  // the supervisor is already gone
    ++step;
    for (size_t i = 0; i < req.join->procs.size(); ++i, ++step) {
        if (!p.write_procs) continue;
        int fd = req.join->procs[i].get();
        if (trace::call_prepared(p.trace_lines[step], write_zero, &fd) != 0)
            child_fail(p, static_cast<int>(step), errno, 125);
    }
    for (size_t i = 0; i < req.rlimits.size(); ++i, ++step) {
        if (trace::call_prepared(p.trace_lines[step], do_prlimit, const_cast<Rlimit*>(&req.rlimits[i])) != 0)
            child_fail(p, static_cast<int>(step), errno, 125);
    }
    const PreparedExec& e = *req.exec;
    if (p.ready_fd >= 0 && !ready::wait(p.ready_fd)) _exit(125);
    if (p.console_fd >= 0) {
        console::Failure f = console::attach(p.console_fd);
        if (f.step >= 0) child_fail(p, kConsoleStep - f.step, f.err, 125);
    }
    handoff::maybe_enter(e, p.argv.data(), environ);  // returns when this must be an exec
    if (trace::verbose()) trace::emit(p.trace_lines[step]);
    if (e.program.valid())
        ::syscall(SYS_execveat, e.program.get(), "", p.argv.data(), environ, AT_EMPTY_PATH);
    else
        ::execvp(p.argv[0], p.argv.data());
    int err = errno;
    child_fail(p, static_cast<int>(step), err, exit_code_for_exec_error(err));
}

std::vector<std::string> step_lines(const SpawnRequest& req, std::vector<std::string>* what) {
    std::vector<std::string> lines;
    lines.push_back("prctl(PR_SET_PDEATHSIG, SIGKILL)");
    if (what) what->push_back("prctl(PR_SET_PDEATHSIG, SIGKILL)");
    for (const auto& path : req.join->procs_paths) {
        lines.push_back(cat("write(", trace::quote(path), ", \"0\")"));
        if (what) what->push_back(cat("write '0' to ", path));
    }
    for (const auto& r : req.rlimits) {
        lines.push_back(describe_rlimit(r));
        if (what) what->push_back(cat("--rlimit ", r.name, ": prlimit"));
    }
    const PreparedExec& e = *req.exec;
    const std::string& shown = e.program.valid() ? e.program_path : e.argv[0];
    lines.push_back(cat("execve(", trace::quote(shown), ", ", describe_argv(e.argv), ", envp)"));
    if (what) what->push_back(e.argv[0]);
    return lines;
}

std::string clone_line(const SpawnRequest& req, bool into_cgroup) {
    if (into_cgroup)
        return cat("clone3({flags=CLONE_INTO_CGROUP, exit_signal=SIGCHLD, cgroup=",
                   req.join->dir.valid() ? std::to_string(req.join->dir.get()) : std::string("FD"), " /* ",
                   req.join->dir_path, " */}, 88)");
    return "fork()";
}

}  // namespace

std::string describe_rlimit(const Rlimit& r) {
    return cat("prlimit(0, ", rlimit_constant(r.resource), ", {rlim_cur=", lim(r.soft), ", rlim_max=", lim(r.hard),
               "}, NULL)");
}

void print_plan(const SpawnRequest& req) {
    bool into = req.join->dir.valid() || !req.join->dir_path.empty();
    trace::emit(clone_line(req, into) + " (dry run)");
    auto lines = step_lines(req, nullptr);
    lines.pop_back();  // the exec is shown by cli::exec_command
    size_t i = 0;
    for (const auto& l : lines) {
        bool is_procs = i >= 1 && i <= req.join->procs_paths.size();
        ++i;
        if (is_procs && into) continue;
        trace::emit(cat("  child: ", l, " (dry run)"));
    }
}

Result<pid_t> spawn(const SpawnRequest& req, SpawnFailure* failure) {
    int pfd[2];
    if (::pipe2(pfd, O_CLOEXEC) != 0) return sys_error("pipe2");
    UniqueFd rd(pfd[0]), wr(pfd[1]);

    ChildPlan plan;
    plan.req = &req;
    plan.parent = ::getpid();
    plan.error_fd = wr.get();
    std::vector<std::string> what;
    plan.trace_lines = step_lines(req, &what);
    for (const auto& a : req.exec->argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
    plan.argv.push_back(nullptr);
    if (!req.exec->kago) plan.ready_fd = ready::take();
    if (!req.exec->kago) plan.console_fd = TRY(console::take());

    // cg-limit waits beside the command from here on (see
    // proc::undumpable); the child's exec makes the command dumpable again.
    TRY(proc::undumpable());
    bool into = req.join->dir.valid();
    pid_t pid = -1;
    if (into) {
        CloneArgs args;
        memset(&args, 0, sizeof args);
        args.flags = CLONE_INTO_CGROUP;
        args.exit_signal = SIGCHLD;
        args.cgroup = static_cast<uint64_t>(req.join->dir.get());
        std::string line = clone_line(req, true);
        long r = ::syscall(SYS_clone3, &args, sizeof args);
        if (r == 0) {
            plan.write_procs = false;
            run_child(plan);
        }
        int e = errno;
        if (trace::verbose()) trace::emit(line + trace::result_suffix(r, e));
        errno = e;
        if (r > 0) pid = static_cast<pid_t>(r);
        else if (e != ENOSYS && e != E2BIG) return sys_error(cat("clone3(CLONE_INTO_CGROUP) into ", req.join->dir_path));
    }
    if (pid < 0) {
        // v1, or a kernel without clone3: the child joins by itself.
        std::string line = clone_line(req, false);
        pid_t r = ::fork();
        if (r == 0) {
            plan.write_procs = true;
            run_child(plan);
        }
        int e = errno;
        if (trace::verbose()) trace::emit(line + trace::result_suffix(r, e));
        errno = e;
        if (r < 0) return sys_error("fork");
        pid = r;
    }
    wr.reset();
    ChildError ce;
    ssize_t n;
    do {
        n = ::read(rd.get(), &ce, sizeof ce);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof ce)) {
        int ws = 0;
        while (::waitpid(pid, &ws, __WALL) < 0 && errno == EINTR) {
        }
        errno = ce.err;
        Error e = sys_error(ce.step >= 0 && static_cast<size_t>(ce.step) < what.size() ? what[ce.step]
                            : ce.step <= kConsoleStep                               ? console::step_what(kConsoleStep - ce.step)
                                                                                    : "child");
        if (ce.step <= kConsoleStep)
            if (const char* h = console::step_hint(kConsoleStep - ce.step)) e.hint = h;
        if (failure) {
            failure->error = e;
            failure->code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 125;
        }
        return e;
    }
    return pid;
}

}  // namespace kago::cgroup
