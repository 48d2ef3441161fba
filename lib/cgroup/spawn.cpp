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
#include "core/ready.hpp"
#include "core/trace.hpp"

namespace kago::cgroup {
namespace {

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

// Everything the child needs, prepared by the parent.
struct ChildPlan {
    const SpawnRequest* req;
    pid_t parent;
    int error_fd;
    bool write_procs;  // v1, or clone3 unavailable
    std::vector<std::string> trace_lines;  // one per step
    child::Exec exec;
    int ready_fd = -1;  // the chain's readiness gate, before a non-kago command
    int console_fd = -1;  // unshare-run --tty's socket, before a non-kago command
    // steps: 0 = PR_SET_PDEATHSIG, 1..n = procs, then rlimits, then exec
};

[[noreturn]] void child_fail(const ChildPlan& p, int step, int err) {
    child::fail(p.error_fd, child::Kind::step_failed, step, err);
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

// After clone (core/child.hpp): only the prepared plan.
[[noreturn]] void run_child(const ChildPlan& p) {
    const SpawnRequest& req = *p.req;
    if (req.signals) req.signals->restore_in_child();
    size_t step = 0;
    if (trace::call_prepared(p.trace_lines[step], do_pdeathsig, nullptr) != 0) child_fail(p, 0, errno);
    if (::getppid() != p.parent) child::leave(125);  // the supervisor is already gone
    ++step;
    for (size_t i = 0; i < req.join->procs.size(); ++i, ++step) {
        if (!p.write_procs) continue;
        int fd = req.join->procs[i].get();
        if (trace::call_prepared(p.trace_lines[step], write_zero, &fd) != 0)
            child_fail(p, static_cast<int>(step), errno);
    }
    for (size_t i = 0; i < req.rlimits.size(); ++i, ++step) {
        if (trace::call_prepared(p.trace_lines[step], do_prlimit, const_cast<Rlimit*>(&req.rlimits[i])) != 0)
            child_fail(p, static_cast<int>(step), errno);
    }
    if (p.ready_fd >= 0 && !ready::wait(p.ready_fd)) child::leave(125);
    if (p.console_fd >= 0) {
        console::Failure f = console::attach(p.console_fd);
        if (f.step >= 0) child::fail(p.error_fd, child::Kind::console_failed, f.step, f.err);
    }
    child::OnFailure on;
    on.report = p.error_fd;
    on.trace = p.trace_lines[step].c_str();
    on.may_enter = true;  // a process of its own (start, start_in_cgroup)
    child::exec_or_exit(p.exec, on);
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
    child::Channel report = TRY(child::Channel::pipe("report"));

    ChildPlan plan;
    plan.req = &req;
    plan.parent = ::getpid();
    plan.error_fd = report.child.get();
    std::vector<std::string> what;
    plan.trace_lines = step_lines(req, &what);
    plan.exec = exec_args(*req.exec);
    if (!req.exec->kago) plan.ready_fd = ready::take(*req.contract);
    if (!req.exec->kago) plan.console_fd = TRY(console::take(*req.contract));
    req.contract->apply();  // the command's environment

    // cg-limit waits beside the command from here on (see
    // proc::undumpable); the child's exec makes the command dumpable again.
    TRY(proc::undumpable());
    bool into = req.join->dir.valid();
    pid_t pid = -1;
    if (into) {
        std::string line = clone_line(req, true);
        long r = child::start_in_cgroup(req.join->dir.get());
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
        long r = child::start(0);
        if (r == 0) {
            plan.write_procs = true;
            run_child(plan);
        }
        int e = errno;
        if (trace::verbose()) trace::emit(line + trace::result_suffix(r, e));
        errno = e;
        if (r < 0) return sys_error("fork");
        pid = static_cast<pid_t>(r);
    }
    report.child.reset();
    child::Message m;
    if (child::receive(report.parent.get(), &m) == 1) {
        auto waited = child::Process(pid).wait();  // it leaves after its report
        int ws = waited ? *waited : 0;
        errno = m.err;
        size_t step = m.kind == child::Kind::exec_failed ? what.size() - 1 : static_cast<size_t>(m.step);
        Error e = sys_error(m.kind == child::Kind::console_failed ? console::step_what(m.step)
                            : step < what.size()                ? what[step]
                                                                : std::string("child"));
        if (m.kind == child::Kind::console_failed)
            if (const char* h = console::step_hint(m.step)) e.hint = h;
        if (failure) {
            failure->error = e;
            failure->code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 125;
        }
        return e;
    }
    return pid;
}

}  // namespace kago::cgroup
