#include "ns/child.hpp"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <tuple>

#include "core/console.hpp"
#include "core/handoff.hpp"
#include "core/proc.hpp"
#include "core/ready.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::ns {

// --- the plan, built in the parent ------------------------------------------

namespace {
std::string qn(const std::string& s) {
    return s.empty() ? "NULL" : trace::quote(s);
}
const char* cn(const std::string& s) {
    return s.empty() ? nullptr : s.c_str();
}
}  // namespace

void ChildPlan::close_fd(int fd) {
    steps_.push_back({Step::Op::close_fd, "", "", "", "", "", "", 0, fd});
}

void ChildPlan::keep_fd(int fd) {
    steps_.push_back({Step::Op::keep_fd, "", "", "", "", "", "", 0, fd});
}

void ChildPlan::dup_fd(int from, int to) {
    steps_.push_back({Step::Op::dup_fd, cat("dup2(", from, ", ", to, ")"), cat("dup2(", from, ", ", to, ")"),
                      "", "", "", "", 0, from, to});
}

void ChildPlan::new_session() {
    steps_.push_back({Step::Op::new_session, "setsid()", "setsid()", "", "", "", "", 0, -1});
}

void ChildPlan::die_with_parent() {
    steps_.push_back({Step::Op::die_with_parent, "prctl(PR_SET_PDEATHSIG, SIGKILL)",
                      "prctl(PR_SET_PDEATHSIG)", "", "", "", "", 0, -1});
}

void ChildPlan::wait_for_parent() {
    steps_.push_back({Step::Op::wait_for_parent, "", "", "", "", "", "", 0, -1});
}

void ChildPlan::join(const Join& j) {
    steps_.push_back({Step::Op::setns,
                      cat("setns(", j.fd.get(), " /* ", j.path, " */, ",
                          trace::clone_flags(clone_flag(j.type)), ")"),
                      cat("join ", name(j.type), " namespace ", j.path), "", "", "", "",
                      clone_flag(j.type), j.fd.get()});
}

void ChildPlan::enter_root(const Joins& j) {
    if (!j.root.valid()) return;
    steps_.push_back({Step::Op::fchdir, cat("fchdir(", j.root.get(), " /* ", j.root_path, " */)"),
                      cat("change directory to ", j.root_path), "", "", "", "", 0, j.root.get()});
    steps_.push_back({Step::Op::chroot_here, "chroot(\".\")", cat("change root to ", j.root_path),
                      "", "", "", "", 0, -1});
    steps_.push_back(
        {Step::Op::chdir_in_root,
         cat("fchdir(", j.cwd.get(), " /* ", j.cwd_path, " */) + getcwd() + openat2(", j.root.get(),
             ", CWD, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) + fchdir(); \"/\" if outside"),
         cat("change directory to ", j.cwd_path, " inside ", j.root_path), "", "", "", "", 0,
         j.cwd.get(), j.root.get()});
}

void ChildPlan::unshare(unsigned long flags) {
    std::string f = trace::clone_flags(flags);
    steps_.push_back({Step::Op::unshare, cat("unshare(", f, ")"), cat("unshare(", f, ")"), "", "",
                      "", "", flags, -1});
}

void ChildPlan::write_file(std::string path, std::string content) {
    std::string text = cat("write(", trace::quote(path), ", ", trace::quote(content), ")");
    std::string what = cat("write ", path);
    steps_.push_back({Step::Op::write_file, std::move(text), std::move(what), std::move(path),
                      std::move(content), "", "", 0, -1});
}

void ChildPlan::set_hostname(std::string name) {
    steps_.push_back({Step::Op::sethostname,
                      cat("sethostname(", trace::quote(name), ", ", name.size(), ")"),
                      cat("set hostname '", name, "'"), name, "", "", "", 0, -1});
}

void ChildPlan::mount(std::string source, std::string target, std::string fstype,
                      unsigned long flags, std::string data, std::string what) {
    std::string text = cat("mount(", qn(source), ", ", qn(target), ", ", qn(fstype), ", ",
                           trace::mount_flags(flags), ", ", qn(data), ")");
    steps_.push_back({Step::Op::mount, std::move(text), std::move(what), std::move(source),
                      std::move(target), std::move(fstype), std::move(data), flags, -1});
}

void ChildPlan::loopback_up() {
    steps_.push_back({Step::Op::loopback_up, child::kLoopbackUpText, child::kLoopbackUpWhat, "", "",
                      "", "", 0, -1});
}

void ChildPlan::report_namespaces() {
    steps_.push_back(
        {Step::Op::report_namespaces, "", "read /proc/self/ns", "", "", "", "", 0, -1});
}

void ChildPlan::set_command(const PreparedExec& cmd, env::Contract& contract, const sigset_t& mask,
                            bool init, bool die_with_parent) {
    cmd_ = &cmd;
    mask_ = mask;
    init_ = init;
    cmd_pdeathsig_ = die_with_parent;
    ready_fd_ = cmd.kago ? -1 : ready::take(contract);
    if (init) {
        proc::StringAreas a = proc::own_string_areas();
        if (a.known()) args_ = {a.args, a.args_end}, envs_ = {a.envs, a.envs_end};
    }
    const std::string& shown = cmd.program.valid() ? cmd.program_path : cmd.argv[0];
    exec_text_ = cat("execve(", trace::quote(shown), ", ", describe_argv(cmd.argv), ", envp)");
}

void show_dry_run(const ChildPlan& plan) {
    for (const auto& s : plan.steps())
        if (!s.text.empty()) trace::emit(s.text + " (dry run)");
    if (plan.init()) trace::emit("vfork() (dry run)");
}

// --- the child: after clone (core/child.hpp) from here on ---------------------------

namespace {

using child::Kind;

long report_namespaces(int fd) {
    child::Message r;
    r.kind = Kind::namespaces;
    char path[32] = "/proc/self/ns/";
    for (Type t : kTypes) {
        const char* n = name(t);
        size_t len = strlen(n);
        memcpy(path + 14, n, len + 1);
        struct stat st;
        if (::stat(path, &st) == 0) r.ns[static_cast<int>(t)] = st.st_ino;
    }
    return child::send(fd, r);
}

// fchdir(cwd); its path as seen from our root (we are chrooted into the
// joined root by now), opened again inside the root so that no "..",
// symbolic link or /proc magic link can lead out of it; "/" when the
// directory is not below the root ("(unreachable)" from getcwd) or is gone.
long chdir_in_root(int cwd, int root) {
    char path[PATH_MAX];
    if (::fchdir(cwd) == 0) {
        long n = ::syscall(SYS_getcwd, path, sizeof path);
        if (n > 0 && path[0] == '/') {
            struct open_how how;
            memset(&how, 0, sizeof how);
            how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
            how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
            long fd = ::syscall(SYS_openat2, root, path, &how, sizeof how);
            if (fd >= 0) {
                long r = ::fchdir(static_cast<int>(fd));
                ::close(static_cast<int>(fd));
                if (r == 0) return 0;
            }
        }
    }
    return ::chdir("/");
}

struct StepCtx {
    const Step* step;
    int sync_fd;
    int report_fd;
};

long run_step(void* arg) {
    const auto* ctx = static_cast<const StepCtx*>(arg);
    const Step& s = *ctx->step;
    switch (s.op) {
        case Step::Op::close_fd: return ::close(s.fd);
        case Step::Op::keep_fd: return ::fcntl(s.fd, F_SETFD, 0);
        case Step::Op::dup_fd: return ::dup2(s.fd, s.fd2);
        case Step::Op::new_session: return ::setsid();
        case Step::Op::die_with_parent: return ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        case Step::Op::wait_for_parent: {
            char b;
            ssize_t n;
            do n = ::read(ctx->sync_fd, &b, 1);
            while (n < 0 && errno == EINTR);
            if (n != 1) child::leave(125);  // the parent failed or died; it reports
            return 0;
        }
        case Step::Op::setns: return ::setns(s.fd, static_cast<int>(s.flags));
        case Step::Op::fchdir: return ::fchdir(s.fd);
        case Step::Op::chroot_here: return ::chroot(".");
        case Step::Op::chdir_in_root: return chdir_in_root(s.fd, s.fd2);
        case Step::Op::unshare: return ::unshare(static_cast<int>(s.flags));
        case Step::Op::write_file: return sys::write_whole(s.a.c_str(), s.b) < 0 ? -1 : 0;
        case Step::Op::sethostname: return ::sethostname(s.a.data(), s.a.size());
        case Step::Op::mount: return ::mount(cn(s.a), cn(s.b), cn(s.c), s.flags, cn(s.d));
        case Step::Op::loopback_up: return child::loopback_up();
        case Step::Op::report_namespaces: return report_namespaces(ctx->report_fd);
    }
    errno = EINVAL;
    return -1;
}

// The exec, in the child or in the command's process (vfork()ed, or
// fork()ed for the hand-off). When `failed` is given (vfork: shared memory)
// the errno is left there and the parent traces the result; otherwise the
// line is traced here, before the call, like core's exec_prepared().
// `may_enter`: a process of its own, which may enter a kago program in
// process instead (core/handoff.hpp); never in a CLONE_VM child.
[[noreturn]] void exec_command(const ChildPlan& plan, const child::Exec& cmd, int report_fd,
                               volatile int* failed, bool may_enter) {
    ::sigprocmask(SIG_SETMASK, &plan.mask(), nullptr);
    if (plan.command_dies_with_parent()) ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (plan.ready_fd() >= 0 && !ready::wait(plan.ready_fd())) child::leave(125);
    if (plan.console_fd() >= 0) {
        console::Failure f = console::attach(plan.console_fd());
        if (f.step >= 0) child::fail(report_fd, Kind::console_failed, f.step, f.err);
    }
    child::OnFailure on;
    on.report = report_fd;
    on.trace = failed ? nullptr : plan.exec_text().c_str();
    on.failed = failed;
    on.may_enter = may_enter;
    child::exec_or_exit(cmd, on);
}

// The init outlives the set-up as a process of the container: from here on
// it keeps nothing of the host that a process of the container could reach
// through /proc/1 (with CAP_SYS_PTRACE over the host's user namespace,
// which undumpable does not stop). Every descriptor but the report pipe is
// closed (the next program's, the caller's, the join's); the cwd becomes
// "/", the root the init shares with the chain: pivot_root moves both to
// the new root, whether it ran before this or runs after; the command line
// and the environment are wiped in place, and the command line reads
// "unshare-run" (the kernel shows the first string of the argument area
// when its last byte is not NUL, as after setproctitle()).
void forget_host(const ChildPlan& plan, int report_w) {
    if (report_w > 0) ::syscall(SYS_close_range, 0u, static_cast<unsigned>(report_w) - 1, 0u);
    ::syscall(SYS_close_range, static_cast<unsigned>(report_w) + 1, ~0u, 0u);
    (void)::chdir("/");
    static char* empty[] = {nullptr};
    environ = empty;
    ChildPlan::Area env = plan.envs(), args = plan.args();
    if (env.begin) memset(env.begin, 0, static_cast<size_t>(env.end - env.begin));
    if (args.begin) {
        memset(args.begin, 0, static_cast<size_t>(args.end - args.begin));
        static const char kTitle[] = "unshare-run";
        if (static_cast<size_t>(args.end - args.begin) > sizeof kTitle) {
            memcpy(args.begin, kTitle, sizeof kTitle);
            args.end[-1] = ' ';
        }
    }
}

struct CommandStart {
    const ChildPlan* plan;
    const child::Exec* cmd;
    int report;
    volatile int* failed;
};

int command_main(void* arg) {
    const auto* c = static_cast<const CommandStart*>(arg);
    exec_command(*c->plan, *c->cmd, c->report, c->failed, false);
}

[[noreturn]] void child_main(const ChildPlan& plan, const child::Exec& cmd, child::Stack& stack, int sync_r, int sync_w,
                             int report_r, int report_w) {
    ::close(sync_w);
    ::close(report_r);
    const auto& steps = plan.steps();
    for (size_t i = 0; i < steps.size(); ++i) {
        StepCtx ctx{&steps[i], sync_r, report_w};
        long r = steps[i].text.empty() ? run_step(&ctx)
                                       : trace::call_prepared(steps[i].text, run_step, &ctx);
        if (r < 0) child::fail(report_w, Kind::step_failed, static_cast<int32_t>(i), errno);
    }
    // The container dies with unshare-run: PR_SET_PDEATHSIG, now that no
    // later step changes our credentials (which would clear it). The init
    // is PID 1 of its namespace, where getppid() says 0 before and after
    // the parent dies: the report pipe tells instead. Its only reader is the
    // parent, and a pipe without readers polls POLLERR. The parent's
    // descriptors close before its children are sent the signal, so one of
    // the two always comes.
    if (trace::call_prepared(
            "prctl(PR_SET_PDEATHSIG, SIGKILL)",
            [](void*) -> long { return ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); },
            nullptr) != 0)
        child::fail(report_w, Kind::step_failed, -1, errno);
    struct pollfd parent_end = {report_w, POLLOUT, 0};
    if (::poll(&parent_end, 1, 0) == 1 && (parent_end.revents & POLLERR)) child::leave(125);
    if (!plan.init()) exec_command(plan, cmd, report_w, nullptr, true);
    // The init waits for these with sigwaitinfo(): they must be blocked (the
    // parent blocked them already; a blocked signal is never discarded, not
    // even by a PID 1 without handlers). The command gets plan.mask().
    child::block_for_init();
    // The init is a host binary whose root is still the host's: make it
    // undumpable, so that the container cannot reach the host through
    // /proc/1/exe, /proc/1/fd or /proc/1/root (runc does the same). This
    // matters most for a rootless container, whose root holds every
    // capability in its user namespace. The command's exec resets it for the
    // command itself, so --join-pid of a rootless container takes the pid of
    // a process in it, not of its init.
    if (trace::call_prepared(
            "prctl(PR_SET_DUMPABLE, 0)",
            [](void*) -> long { return ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }, nullptr) != 0)
        child::fail(report_w, Kind::step_failed, -1, errno);
    // A kago program of this binary is entered in the command's process
    // (core/handoff.hpp): that needs a process of its own, fork()ed (a
    // CLONE_VM child must never run a whole program). An exec needs only a
    // process that shares our memory until its exec, and we are stopped
    // until then (CLONE_VM|CLONE_VFORK, traced as vfork()).
    bool in_process = cmd.kago && handoff::refusal(*cmd.kago) == nullptr;
    volatile int exec_errno = 0;
    pid_t pid;
    if (in_process) {
        pid = static_cast<pid_t>(child::start(0));
        if (pid == 0) exec_command(plan, cmd, report_w, nullptr, true);
    } else {
        CommandStart start{&plan, &cmd, report_w, &exec_errno};
        pid = child::start_shared(command_main, &start, stack, CLONE_VFORK);
    }
    int e = errno;
    if (trace::verbose()) {
        trace::emit_result(in_process ? "fork()" : "vfork()", pid, e);
        if (pid > 0 && !in_process)
            trace::emit_result(plan.exec_text(), exec_errno ? -1 : 0, exec_errno);
    }
    if (pid < 0) child::fail(report_w, Kind::step_failed, -1, e);
    forget_host(plan, report_w);
    child::init(pid, report_w);
}

}  // namespace

// --- the parent's side -------------------------------------------------------

Result<Child> spawn(unsigned long flags, const ChildPlan& plan) {
    std::string text = cat("clone(", trace::clone_flags(flags | SIGCHLD), ")");
    Child c;
    if (trace::dry_run()) {
        trace::emit(text + " = CHILD (dry run)");
        c.proc_ = child::Process(0);
        return c;
    }
    // The sync channel is a socket pair so that release() can use
    // MSG_NOSIGNAL: a child that already failed must not SIGPIPE us.
    child::Channel sync = TRY(child::Channel::socket("sync"));
    child::Channel report = TRY(child::Channel::pipe("report"));
    // Built before the clone: the child must not allocate.
    child::Exec cmd = exec_args(*plan.command());
    child::Stack stack;  // the init's command's, until its exec

    long pid = child::start(flags);
    if (pid == 0)
        child_main(plan, cmd, stack, sync.child.get(), sync.parent.get(), report.parent.get(), report.child.get());
    int e = errno;
    if (trace::verbose()) trace::emit(text + trace::result_suffix(pid, e));
    sync.child.reset();
    report.child.reset();
    if (pid < 0) {
        errno = e;
        Error err = sys_error(text);
        if (e == EPERM && ::geteuid() != 0 && !(flags & CLONE_NEWUSER))
            err.hint = "creating namespaces needs root; without it, add --user --map-root";
        else if (e == ENOSPC)
            err.hint = "a namespace limit in /proc/sys/user/ was reached";
        return err;
    }
    c.proc_ = child::Process(static_cast<pid_t>(pid));
    c.sync_ = std::move(sync.parent);
    c.report_ = std::move(report.parent);
    return c;
}

Status Child::release() {
    if (!sync_.valid()) return {};
    char b = 1;
    ssize_t n;
    do n = ::send(sync_.get(), &b, 1, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        return sys_error(cat("release the child ", pid()));  // it failed first: finish() says why
    return {};
}

Result<std::vector<NsInode>> Child::namespaces() {
    std::vector<NsInode> out;
    if (pid() <= 0) return out;  // dry run
    child::Message r;
    if (child::receive(report_.get(), &r) != 1 || r.kind != Kind::namespaces) {
        if (r.kind != Kind::none) early_.push_back(r);
        errno = ECHILD;
        return sys_error(cat("read the namespaces of process ", pid()));
    }
    for (Type t : kTypes)
        if (r.ns[static_cast<int>(t)]) out.push_back({t, r.ns[static_cast<int>(t)]});
    return out;
}

Outcome Child::finish(const ChildPlan& plan, int wstatus) {
    (void)proc_.release();  // reaped
    Outcome o;
    o.wstatus = wstatus;
    if (!report_.valid()) return o;
    ::fcntl(report_.get(), F_SETFL, O_NONBLOCK);
    std::vector<child::Message> reports = std::move(early_);
    for (child::Message r; child::receive(report_.get(), &r) == 1;) reports.push_back(r);
    for (const child::Message& r : reports) {
        if (r.kind == Kind::status) {
            o.wstatus = r.status;
        } else if (r.kind == Kind::exec_failed) {
            o.error = Error{r.err, plan.command()->argv[0], ""};
            o.code = r.status;  // decided by the child (core/child)
        } else if (r.kind == Kind::console_failed) {
            o.error = Error{r.err, console::step_what(r.step), ""};
            if (const char* h = console::step_hint(r.step)) o.error->hint = h;
            o.code = 125;
        } else if (r.kind == Kind::step_failed) {
            const auto& steps = plan.steps();
            std::string what = r.step >= 0 && static_cast<size_t>(r.step) < steps.size()
                                   ? steps[static_cast<size_t>(r.step)].what
                                   : std::string("fork the command");
            o.error = Error{r.err, what, ""};
            o.code = 125;
        }
    }
    report_.reset();
    return o;
}

Outcome Child::stop(const ChildPlan& plan) {
    sync_.reset();
    int ws = proc_.kill();  // it may be past its last wait already
    return finish(plan, ws < 0 ? 0 : ws);
}

void Child::abort() {
    sync_.reset();
    report_.reset();
    (void)proc_.kill();
}

}  // namespace kago::ns
