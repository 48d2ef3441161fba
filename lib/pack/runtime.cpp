#include "pack/runtime.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/mount.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "caps/policy.hpp"
#include "cgroup/limits.hpp"
#include "cgroup/session.hpp"
#include "core/child.hpp"
#include "core/exec.hpp"
#include "core/parse.hpp"
#include "core/proc.hpp"
#include "core/state.hpp"
#include "core/sys.hpp"
#include "core/times.hpp"
#include "core/trace.hpp"
#include "mount/ops.hpp"
#include "mount/root.hpp"
#include "net/usermode.hpp"
#include "ns/idmap.hpp"

namespace kago::pack {
namespace {

constexpr const char kPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

}  // namespace

caps::Options cap_options(const Config& c) {
    caps::Options o;
    // Without --keep-caps, cap-drop's own default: Docker's set
    // (caps::default_caps()), none of it ambient, so that a non-root
    // --user holds nothing. --keep-caps LIST: LIST only, also ambient.
    if (!c.keep_caps.empty()) {
        std::string keep;
        for (auto& k : c.keep_caps) keep += (keep.empty() ? "" : ",") + k;
        o.drop = {"all"};
        if (keep != "none") o.keep = {keep};
    }
    o.user = c.user;
    o.seccomp = "none";  // see default_filter()
    return o;
}

namespace {

// UID[:GID] in numbers (GID defaults to UID), or nothing.
std::optional<std::pair<uint32_t, uint32_t>> numeric_user(const std::string& spec) {
    auto colon = spec.find(':');
    auto uid = parse::u64(spec.substr(0, colon), "--user");
    auto gid = colon == std::string::npos ? uid : parse::u64(spec.substr(colon + 1), "--user");
    if (spec.empty() || !uid || !gid || *uid > UINT32_MAX - 1 || *gid > UINT32_MAX - 1)
        return std::nullopt;
    return std::pair{static_cast<uint32_t>(*uid), static_cast<uint32_t>(*gid)};
}

std::string read_sysctl(const char* path) {
    auto r = sys::read_file(path);
    if (!r) return {};
    std::string s = *r;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// The init's report to the runner (its report channel, a pipe): one
// child::Message, Kind::error for a failed step (125) or Kind::exec_failed
// for the command's exec (126/127, sent by the command's process itself).
// The command's wait status comes on a channel of its own (child::init()).
[[noreturn]] void fail(int report, const Error& e) {
    child::fail(report, e);
}

// --net none: the network namespace is made by a helper of the runner,
// started as the runner releases the init; the kernel's work for a new
// namespace (about 1 ms) then overlaps the init's mounts, on another CPU.
bool netns_later(const Config& c) { return c.net == "none"; }
// Except in a trace, which keeps the calls in order: the init makes it.
bool netns_by_helper(const Config& c) { return netns_later(c) && !trace::verbose(); }

// The runner and the init talk over one child::Channel::socket()
// (SOCK_SEQPACKET) in child::Messages: the runner says go (Kind::ok, step
// kGo) once the id maps are written, then its network helper sends the
// namespace (Kind::ok, step kNetns, the descriptor attached) or the step
// that failed (Kind::step_failed, one of kJoinUser..kLoopback, and errno).
enum Step : int32_t { kGo, kNetns, kJoinUser, kUnshare, kOpen, kLoopback };

// The network helper: a child of the runner that shares its memory
// (child::start_shared(): no page tables to copy), on a stack of its own. It joins
// the container's user namespace (its owner, the runner's user, has every
// capability there), makes the network namespace with lo up, sends it to
// the init, and exits; the runner's supervise() reaps it. It has its own
// copy of the descriptors: the runner closes its end of the socket pair
// once it has started the helper, so that the init reads end of file, not
// nothing forever, if the helper dies before it sends. It runs alongside
// the runner, after clone under rule 3 of core/child.hpp: system calls
// only, no allocation, nothing of ours but its own fields. errno is the one
// variable both sides write (one thread's storage): each reads it right
// after its own call fails, and only two failures at the same moment could
// mix them up.
class NetnsHelper {
  public:
    NetnsHelper() = default;
    NetnsHelper(const NetnsHelper&) = delete;
    NetnsHelper& operator=(const NetnsHelper&) = delete;
    // Waits for the helper's exit: it runs on stack_ (reaped already by
    // supervise(): ECHILD).
    ~NetnsHelper() {
        (void)proc_.wait();
        if (userns_ >= 0) ::close(userns_);
    }

    // `init`'s user namespace is joined when `join_userns`; `sock` is the
    // runner's end of the socket pair, which the helper gets a copy of.
    Status start(pid_t init, bool join_userns, int sock) {
        sock_ = sock;
        if (join_userns) {
            std::string path = cat("/proc/", init, "/ns/user");
            userns_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (userns_ < 0) return sys_error(cat("open ", path));
        }
        proc_ = child::Process(child::start_shared(body, this, stack_));
        if (!proc_) return sys_error("clone(CLONE_VM) for the network namespace");
        return {};
    }

  private:
    // After clone.
    static int body(void* arg) {
        auto* h = static_cast<NetnsHelper*>(arg);
        times::mark("helper: start");
        int32_t step = kJoinUser;
        bool ok = h->userns_ < 0 || ::setns(h->userns_, CLONE_NEWUSER) == 0;
        if (ok) {
            step = kUnshare;
            ok = ::unshare(CLONE_NEWNET) == 0;
        }
        int fd = -1;
        if (ok) {
            step = kOpen;
            fd = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
            ok = fd >= 0;
        }
        if (ok) {
            step = kLoopback;
            ok = child::loopback_up() == 0;
        }
        times::mark("helper: netns made, lo up");
        child::Message m;
        if (ok) {
            m.kind = child::Kind::ok;
            m.step = kNetns;
        } else {
            m.kind = child::Kind::step_failed;
            m.step = step;
            m.err = errno ? errno : EIO;
        }
        (void)child::send(h->sock_, m, ok ? fd : -1);
        if (fd >= 0) ::close(fd);
        return 0;
    }

    child::Process proc_;
    int userns_ = -1, sock_ = -1;
    child::Stack stack_;  // the helper's, until it exits
};

// The init's end of the socket pair: go, and the helper's network namespace.
class RunnerChannel {
  public:
    explicit RunnerChannel(int sock) : sock_(sock) {}
    ~RunnerChannel() {
        if (netns_ >= 0) ::close(netns_);
    }
    // False when the runner is gone or gave up before go.
    bool wait_go() {
        while (!go_)
            if (!receive()) return false;
        return true;
    }
    // Join the network namespace that the runner's helper made.
    Status join_netns() {
        while (netns_ < 0 && failed_.kind != child::Kind::step_failed)
            if (!receive()) return Error{EIO, "create the network namespace: the runner's helper ended before sending it", ""};
        if (failed_.kind == child::Kind::step_failed) {
            static const char* const steps[] = {
                "create the network namespace: join the container's user namespace",
                "create the network namespace: unshare(CLONE_NEWNET)",
                "open the new network namespace", child::kLoopbackUpWhat};
            int step = failed_.step >= kJoinUser && failed_.step <= kLoopback ? failed_.step : kUnshare;
            int err = failed_.err ? failed_.err : EIO;
            return Error{
                err, steps[step - kJoinUser],
                step == kUnshare && err == ENOSPC
                    ? "a user namespace's user.max_net_namespaces is reached (/proc/sys/user/)"
                    : ""};
        }
        long st = trace::call([] { return std::string("setns(NETNS, CLONE_NEWNET) /* made with lo up by the runner's helper */"); },
                              [&] { return ::setns(netns_, CLONE_NEWNET); });
        if (st != 0) return sys_error("join the new network namespace");
        ::close(netns_);
        netns_ = -1;
        return {};
    }

  private:
    bool receive() {
        child::Message m;
        int fd = -1;
        if (child::receive(sock_, &m, &fd) != 1) return false;  // closes fd
        if (m.kind == child::Kind::ok && m.step == kGo)
            go_ = true;
        else if (m.kind == child::Kind::ok && m.step == kNetns && fd >= 0 && netns_ < 0)
            netns_ = fd, fd = -1;
        else if (m.kind == child::Kind::step_failed)
            failed_ = m;
        if (fd >= 0) ::close(fd);
        return true;
    }
    int sock_;
    bool go_ = false;
    int netns_ = -1;
    child::Message failed_;  // Kind::step_failed once the helper failed
};

// What the init does while the runner still writes its id maps. The new
// user namespace gave it every capability in it at once (with
// --kago-trace, enough for the network namespace). Mounts and files wait
// for the maps (an unmapped owner can create neither).
Status setup_early(const Config& c) {
    TRY(proc::die_with_parent(SIGKILL, ::getppid()));
    if (netns_later(c) && !netns_by_helper(c)) {
        TRY(sys::unshare(CLONE_NEWNET));
        TRY(child::loopback_up_traced());
    }
    return {};
}

// With /sys/fs/cgroup: a cgroup namespace of the container's own, made
// once the runner has put us in the cgroup of the limits (before go), so
// that the new cgroupfs shows that one as its root.
bool own_cgroupns(const Config& c) { return c.sys && c.cgroupfs; }

Status setup_inside(const RunSpec& s, bool own_userns, RunnerChannel& runner, caps::Policy& policy) {
    const Config& c = s.config;
    if (own_cgroupns(c)) TRY(sys::unshare(CLONE_NEWCGROUP));
    // sysfs in a user namespace needs a network namespace of its own: the
    // helper's is joined first then. Otherwise after the mounts, which
    // the helper's work overlaps.
    bool join_first = c.sys && netns_by_helper(c);
    if (join_first) TRY(runner.join_netns());
    // Known from our own clone(): no /proc reads to find it out.
    mount::Context ctx;
    ctx.in_pidns = true;
    ctx.host_mntns = false;
    ctx.in_userns = own_userns || mount::in_user_namespace();
    ctx.own_ipcns = true;  // CLONE_NEWIPC
    ctx.own_cgroupns = own_cgroupns(c);
    mount::Undo undo;
    TRY(mount::apply(root_spec(s), ctx, undo));
    undo.dismiss();
    if (netns_by_helper(c) && !join_first) TRY(runner.join_netns());
    times::mark("init: netns joined");
    if (c.net != "host" && !netns_later(c)) TRY(child::loopback_up_traced());
    TRY(sys::sethostname(c.hostname.empty() ? "kago" : c.hostname));
    policy = TRY(caps::build_policy_without_seccomp(cap_options(c)));
    if (c.seccomp == "default" && c.seccomp_bpf.empty())
        return usage_error("the file holds no compiled seccomp filter (packed by an older pack-selfexec): pack it again");
    if (c.seccomp == "default") {
        // Compiled when the file was packed (see default_filter()): the
        // runner links no libseccomp and compiles nothing at each start.
        caps::CompiledFilter f;
        f.source = "default";
        f.what = "profile \"default\" compiled when packed";
        f.program.resize(c.seccomp_bpf.size() / sizeof(sock_filter));
        memcpy(f.program.data(), c.seccomp_bpf.data(), f.program.size() * sizeof(sock_filter));
        policy.seccomp = std::move(f);
    }
    return {};
}

// The command's process, from its start to its exec. It shares our memory
// (child::start_shared() with CLONE_VFORK, as posix_spawn() does), so it
// obeys the rules for code after clone (core/child.hpp): everything it
// needs is built here, before the clone (the child::Exec with its argv and
// environment, the privilege calls, the trace lines), and it makes system
// calls only. A failed exec it reports itself (child::exec_or_exit());
// a step before it is left in `failed` for the init, which is stopped until
// the child execs or exits, to report.
struct CommandStart {
    std::vector<std::string> env;
    std::vector<char*> envp;
    child::Exec exec;
    caps::Prepared privileges;
    std::string close_line, exec_line;  // trace lines, when tracing
    const proc::SignalBlock* block = nullptr;
    int report = -1;
    // Written by the child, read once it has exec'd or exited.
    enum Step : int { kNone, kFds, kPrivileges } failed = kNone;
    long failed_call = -1;  // kPrivileges: caps::run()'s index
    int err = 0;
};

void set_var(std::vector<std::string>& env, std::string_view name, std::string_view value) {
    std::erase_if(env, [&](const std::string& e) { return e.size() > name.size() && e.starts_with(name) && e[name.size()] == '='; });
    env.push_back(cat(name, "=", value));
}

Status prepare_command(CommandStart& cs, const RunSpec& s, const caps::Policy& policy,
                       const proc::SignalBlock& block, int report) {
    cs.env = container_env(s.config, policy.user ? policy.user->home : "/root");
    // HOME, USER and LOGNAME for --user, as cap-drop sets them.
    if (policy.user && policy.user_env) {
        set_var(cs.env, "HOME", policy.user->home);
        set_var(cs.env, "USER", policy.user->name);
        set_var(cs.env, "LOGNAME", policy.user->name);
    }
    for (auto& e : cs.env) cs.envp.push_back(e.data());
    cs.envp.push_back(nullptr);
    // The PATH search, when there is one, is the command's own PATH's
    // (child::exec() reads it from envp).
    cs.exec = child::Exec(s.command, -1);
    cs.exec.envp = cs.envp.data();
    cs.privileges = TRY(caps::prepare(policy));
    if (trace::verbose()) {
        cs.close_line = "close_range(3, ~0U, CLOSE_RANGE_CLOEXEC)";
        cs.exec_line = cat("execve(", trace::quote(s.command[0]), ", ", describe_argv(s.command), ", envp)");
    }
    cs.block = &block;
    cs.report = report;
    return {};
}

long cloexec_above_2(void*) { return ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC); }

// After clone (CLONE_VM|CLONE_VFORK).
int command_main(void* arg) {
    auto& cs = *static_cast<CommandStart*>(arg);
    cs.block->restore_in_child();
    // Nothing of ours reaches the command but 0, 1 and 2 (the report
    // channel closes when the exec succeeds).
    if (trace::call_prepared(cs.close_line, cloexec_above_2, nullptr) != 0) {
        cs.err = errno;
        cs.failed = CommandStart::kFds;
        return 125;
    }
    if (long f = caps::run(cs.privileges); f >= 0) {
        cs.err = errno;
        cs.failed_call = f;
        cs.failed = CommandStart::kPrivileges;
        return 125;
    }
    times::mark("command: exec");
    child::OnFailure on;
    on.report = cs.report;
    on.trace = cs.exec_line.c_str();  // traced with -v only
    child::exec_or_exit(cs.exec, on);
}

// A step that failed in the command's process before its exec.
void report_command_failure(int report, const CommandStart& cs) {
    errno = cs.err;
    switch (cs.failed) {
    case CommandStart::kNone: return;
    case CommandStart::kFds: fail(report, sys_error("close the runner's descriptors: close_range"));
    case CommandStart::kPrivileges:
        fail(report, caps::error(cs.privileges, cs.failed_call, cs.err));
    }
}

// The init never execs, so close-on-exec does not help it: it closes what
// it got from the runner (the packed file, the cache directory, whatever the
// caller passed on) but the standard streams and its own channels. It is
// undumpable later on, but a container that keeps CAP_SYS_PTRACE could
// still reach them through /proc/1/fd.
Status close_runner_fds(std::vector<int> keep) {
    std::sort(keep.begin(), keep.end());
    unsigned from = 3;
    auto close_range = [](unsigned lo, unsigned hi) -> Status {
        long r = trace::call([&] { return cat("close_range(", lo, ", ", hi == ~0u ? std::string("~0U") : cat(hi), ", 0)"); },
                             [&] { return ::close_range(lo, hi, 0); });
        if (r != 0) return sys_error("close the runner's descriptors: close_range");
        return {};
    };
    for (int fd : keep) {
        if (fd < static_cast<int>(from)) continue;
        if (static_cast<unsigned>(fd) > from) TRY(close_range(from, static_cast<unsigned>(fd) - 1));
        from = static_cast<unsigned>(fd) + 1;
    }
    return close_range(from, ~0u);
}

// The container's init, from the runner's child::start() on: PID 1 of the
// new PID namespace. It sets the container up, starts the command and
// runs the engine's init (child::init()), which sends the command's wait
// status on `status` as soon as it ends: the runner can leave while we
// exit, which unmounts the container's root and ends its namespaces.
// `cpus`, when not null, is the affinity to give back before the command
// starts (the runner moved us off its CPU).
[[noreturn]] void container_main(const RunSpec& s, bool own_userns, int sock, int report, int status,
                                 const proc::SignalBlock& block, const cpu_set_t* cpus) {
    times::mark("init: start");
    if (auto st = close_runner_fds({sock, report, status}); !st) fail(report, st.error());
    Status early = setup_early(s.config);
    RunnerChannel runner(sock);
    // No go: the runner failed to set us up and is gone or giving up.
    if (!runner.wait_go()) child::leave(125);
    times::mark("init: go");
    if (!early) fail(report, early.error());
    caps::Policy policy;
    if (auto st = setup_inside(s, own_userns, runner, policy); !st) fail(report, st.error());
    times::mark("init: set up");
    ::close(sock);
    CommandStart cs;
    if (auto st = prepare_command(cs, s, policy, block, report); !st) fail(report, st.error());
    // This init runs the packed file, a host file: make it undumpable so that
    // the container cannot reach it through /proc/1/exe, /proc/1/cwd or
    // /proc/1/fd. Undumpable, its /proc files belong to the runner's user
    // namespace's root (mm->user_ns is the runner's: we were cloned, not
    // exec'd), and a container root has no capability there. Not earlier:
    // the runner writes our id maps, and rootless it may not write those of
    // an undumpable process; and no process of the container exists before
    // the command, below. The command's exec resets this for the command.
    if (trace::call([] { return std::string("prctl(PR_SET_DUMPABLE, 0)"); },
                    [] { return ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }) != 0)
        fail(report, sys_error("prctl(PR_SET_DUMPABLE, 0)"));
    // The command's process shares our memory until it execs or exits, and
    // we are stopped until then: no page tables to copy and no copy-on-write
    // faults for what it writes. It runs on a stack of its own.
    if (cpus) (void)::sched_setaffinity(0, sizeof *cpus, cpus);
    pid_t cmd;
    {
        child::Stack stack(256 * 1024);
        cmd = child::start_shared(command_main, &cs, stack, CLONE_VFORK);
    }
    if (cmd < 0) fail(report, sys_error("start the command: clone(CLONE_VM|CLONE_VFORK)"));
    times::mark("init: command exec'd");
    report_command_failure(report, cs);
    ::close(report);
    // Our copies of the standard streams go now, so that a reader of the
    // command's output sees end of file as soon as the command is done.
    if (!trace::verbose()) {
        for (int fd = 0; fd < 3; fd++) ::close(fd);
    }
    child::init(cmd, status);
}

// The init of a runner that has nothing to do for it once it is cloned:
// it shares the runner's memory (child::start_shared(), no page tables to
// copy, no copy-on-write faults on either side, and the runner's exit
// leaves the memory to it). The roles of core/child.hpp's rule 3 are
// swapped: the init runs as the program (it allocates; close_runner_fds()
// closes the runner's ends of the channels in its own descriptor table),
// and the runner, until the init has reported the command's status or
// exited, makes only the system calls of wait_shared() and allocates
// nothing.
struct SharedInit {
    const RunSpec* spec;
    bool own_userns;
    int sock, report, status;
    const proc::SignalBlock* block;
    const cpu_set_t* cpus;
};

// After clone (CLONE_VM): the init.
int shared_init_main(void* arg) {
    const auto& a = *static_cast<const SharedInit*>(arg);
    container_main(*a.spec, a.own_userns, a.sock, a.report, a.status, *a.block, a.cpus);
}

// The runner's side of a shared init: proc::supervise(init, status_fd)
// with none of its allocations and no call that fails in the normal course
// (errno is one word for the runner, the init and the helper): the signal
// descriptor `sfd` (blocking, made before the clone) is read only when poll
// says it holds a signal. The command's wait status from the init's
// report, or the init's own wait status when it ended without one.
int wait_shared(pid_t init, int status_fd, int sfd) {
    for (;;) {
        int ws = 0;
        pid_t r = ::waitpid(-1, &ws, WNOHANG | __WALL);
        if (r == init) return ws;
        if (r > 0) continue;  // the network helper
        struct pollfd p[2] = {{sfd, POLLIN, 0}, {status_fd, POLLIN, 0}};
        if (::poll(p, status_fd >= 0 ? 2 : 1, -1) <= 0) continue;
        if (status_fd >= 0 && p[1].revents) {
            child::Message m;
            if (child::receive(status_fd, &m) == 1 && m.kind == child::Kind::status)
                return m.status;
            status_fd = -1;  // end of file: the init's exit tells
        }
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (::read(sfd, &si, sizeof si) != sizeof si) continue;
            int sig = static_cast<int>(si.ssi_signo);
            if (sig == SIGCHLD) continue;
            // Not what the terminal sent to the whole process group already.
            if (si.ssi_code == SI_KERNEL && ::getpgid(init) == ::getpgrp()) continue;
            (void)::kill(init, sig);
        }
    }
}

}  // namespace

std::string userns_blocker() {
    if (read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == "0")
        return "kernel.unprivileged_userns_clone = 0";
    if (read_sysctl("/proc/sys/user/max_user_namespaces") == "0") return "user.max_user_namespaces = 0";
    if (read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1")
        return "kernel.apparmor_restrict_unprivileged_userns = 1";
    return {};
}

std::vector<std::string> container_env(const Config& c, const std::string& home) {
    std::vector<std::string> env{cat("PATH=", kPath), cat("HOME=", home), "container=kago"};
    if (const char* t = ::getenv("TERM")) env.push_back(cat("TERM=", t));
    for (auto& kv : c.env) {
        std::string name = kv.substr(0, kv.find('='));
        std::erase_if(env, [&](const std::string& e) { return e.compare(0, name.size() + 1, name + "=") == 0; });
        env.push_back(kv);
    }
    return env;
}

mount::RootSpec root_spec(const RunSpec& s) {
    const Config& c = s.config;
    mount::RootSpec r;
    r.layers = {s.rootfs};
    r.upper.kind = c.read_only ? mount::UpperKind::none : mount::UpperKind::tmpfs;
    r.target = s.mnt;
    r.nosuid = true;
    r.proc = true;
    // nodev, as root too: Docker's set keeps CAP_MKNOD, and a node made on
    // a tmpfs without nodev opens any host device. The nodes are the
    // host's, bound in.
    r.dev = true;
    r.mqueue = mount::Want::yes;  // CLONE_NEWIPC: the IPC namespace is the container's own
    // /sys only when asked for (--sys): most commands do without, and it
    // costs two mounts per start; rootless it needs a network namespace
    // of our own.
    r.sys = c.sys;
    r.cgroupfs = c.sys && c.cgroupfs ? mount::Want::by_default : mount::Want::no;
    for (const auto& [src, dst] : s.binds) {
        mount::Step st;
        st.kind = mount::StepKind::bind;
        st.src = src;
        st.dst = dst;
        r.steps.push_back(std::move(st));
    }
    if (!c.workdir.empty() && c.workdir != "/") {
        mount::Step st;
        st.kind = mount::StepKind::chdir;
        st.dst = c.workdir;
        r.steps.push_back(std::move(st));
    }
    r.pivot = true;
    return r;
}

Result<std::pair<std::string, std::string>> parse_bind(const std::string& s) {
    auto colon = s.find(':');
    std::string src = s.substr(0, colon), dst = colon == std::string::npos ? src : s.substr(colon + 1);
    if (src.empty() || dst.empty() || src[0] != '/' || dst[0] != '/')
        return usage_error(cat("--kago-bind ", s, ": expected SRC:DST, both absolute"));
    return std::make_pair(src, dst);
}

namespace {

// --memory, --pids and --cpus: a cgroup for the container, made by the
// runner where this user may make one (root, or a delegated cgroup v2
// subtree), as cg-limit makes it (cgroup::Session). Elsewhere a warning
// says why, and the container runs without.
class Limiter {
  public:
    explicit Limiter(const Config& c) {
        if (c.memory.empty() && c.pids.empty() && c.cpus.empty()) return;
        if (auto st = start(c); !st) off(std::move(st).error());
    }
    bool active() const { return session_ && session_->active(); }
    // Put the container's first process in it, before it runs anything.
    void enter(pid_t pid) {
        if (!active()) return;
        if (auto st = session_->enter(pid); !st) off(std::move(st).error());
    }
    // Kill what is left in it, say what the limits did, remove it.
    void finish(int wstatus) {
        if (!active()) return;
        auto report = session_->finish(wstatus);
        if (report.kill_error) trace::emit(report.kill_error->message());
        for (const auto& line : report.effects) trace::emit(line);
        if (auto st = session_->remove(); !st) trace::emit(st.error().message());
    }

  private:
    static void warn(std::string_view what, std::string_view hint) {
        trace::emit(cat("warning: ", what));
        if (!hint.empty()) trace::emit(cat("hint: ", hint));
    }
    void off(Error e) {
        warn(cat("--memory, --pids and --cpus are not applied: ", e.message()), e.hint);
        // Removed, not killed: the init may be in it already, and runs on.
        if (session_) (void)session_->remove();
        session_.reset();
    }
    Status start(const Config& c) {
        cgroup::Limits limits;
        if (!c.memory.empty()) limits.memory = TRY(cgroup::parse_size(c.memory, "--memory"));
        if (!c.pids.empty()) limits.pids = TRY(cgroup::parse_count(c.pids, "--pids"));
        if (!c.cpus.empty()) limits.cpu_quota_us = TRY(cgroup::parse_cpus(c.cpus, "--cpus"));
        std::vector<std::string> warnings;
        session_ = TRY(cgroup::Session::plan(std::move(limits), "", true, warnings));
        (void)session_->reap_leftovers();
        env::Contract contract = env::Contract::from_environ();
        std::string name = TRY(state::container_name(contract));
        auto st = session_->create(name, warnings);
        for (const auto& w : warnings) warn(w, "");
        return st;
    }
    std::optional<cgroup::Session> session_;
};

}  // namespace

// --net user-mode: pasta attached to the init's namespaces, with no port
// forwarded either way. It runs on its own until they end.
Status start_pasta(const net::usermode::Helper& pasta, pid_t init, const std::string& mnt) {
    std::string dir = cat(mnt.substr(0, mnt.rfind('/')), "/.pasta-XXXXXX");
    if (!::mkdtemp(dir.data())) return sys_error(cat("create ", dir));
    auto r = net::usermode::start(pasta, init, {}, 0, dir);
    (void)::unlink(cat(dir, "/pasta.log").c_str());
    (void)::rmdir(dir.c_str());
    if (!r) {
        Error e = std::move(r).error();
        e.what = cat("--net user-mode: ", e.what);
        return e;
    }
    (void)r->proc.release();  // it runs on its own until the namespaces end
    return {};
}

namespace {

// What failed, if anything: a step of the init's (Kind::error), or the
// command's exec (Kind::exec_failed, from the command's process).
Result<RunOutcome> outcome(int ws, int report, const RunSpec& s, bool root) {
    child::Message m;
    while (child::receive(report, &m) == 1) {
        if (m.kind == child::Kind::exec_failed)
            return RunOutcome{ws, Error{m.err, s.command[0], ""}};
        if (m.kind != child::Kind::error) continue;
        Error e = child::error_of(m);
        if (!root && e.hint.empty()) {
            std::string why = userns_blocker();
            if (!why.empty())
                e.hint =
                    cat("user namespaces are restricted: ", why, "; or run --kago-extract DIR");
        }
        return e;
    }
    return RunOutcome{ws, std::nullopt};
}

}  // namespace

Result<RunOutcome> run_container(const RunSpec& s) {
    bool root = ::geteuid() == 0;
    const Config& c = s.config;
    unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
    if (!root) flags |= CLONE_NEWUSER;
    // --net none: made inside, while the root is built (see NetnsMaker).
    if (c.net != "host" && !netns_later(c)) flags |= CLONE_NEWNET;
    ns::MapPlan plan;
    if (!root) {
        ns::Caller caller;
        caller.uid = ::getuid();
        caller.gid = ::getgid();
        const char* path = ::getenv("PATH");
        caller.path = path ? path : "/usr/local/bin:/usr/bin:/bin";
        ns::MapRequest req;
        req.map_auto = true;  // the caller as 0 and its subordinate ids, through newuidmap
        auto p = ns::plan_maps(req, caller);
        if (!p) {
            // Without subordinate ids one id is mapped: the caller, as
            // root, or as the command's user when --user (an image's User)
            // is a uid other than 0; then every file is that user's.
            req = {};
            auto u = numeric_user(c.user);
            if (u && u->first != 0) {
                req.map_user = {cat(u->first, ":", caller.uid, ":1")};
                req.map_group = {cat(u->second, ":", caller.gid, ":1")};
            } else {
                req.map_root = true;
            }
            p = ns::plan_maps(req, caller);
            if (!p) return std::move(p).error();
        }
        plan = std::move(p).value();
    }
    std::optional<net::usermode::Helper> pasta;
    if (c.net == "user-mode") {
        auto r = net::usermode::find_helper("pasta");
        if (!r)
            return Error{r.error().err, "--net user-mode: pasta not found in PATH",
                         "--net user-mode needs pasta on this host (Debian and Ubuntu: apt install passt)"};
        pasta = std::move(r).value();
    }
    Limiter limiter(c);
    // Rootless with one id mapped and nothing to do from outside (no
    // newuidmap, no pasta, no cgroup): the runner makes the user namespace
    // itself and writes its own maps, as unshare -Ur does, so that the
    // init starts with them and needs no round trip to the runner. The
    // runner has no capability outside it, and the container cannot name
    // the runner (it is outside the container's PID namespace).
    bool userns_first = !root && !pasta && !limiter.active() &&
                        ns::own_maps_only(plan, ::getuid(), ::getgid()) &&
                        sys::unshare(CLONE_NEWUSER).ok();
    if (userns_first) {
        flags &= ~static_cast<unsigned long>(CLONE_NEWUSER);
        if (auto st = ns::write_own_maps(plan); !st) {
            Error e = std::move(st).error();
            std::string why = userns_blocker();
            if (!why.empty())
                e.hint =
                    cat("user namespaces are restricted: ", why, "; or run --kago-extract DIR");
            return e;
        }
    }
    // Nothing to do for the init once it is cloned (its maps written, or
    // none needed; no pasta, no cgroup; no trace lines to build): it shares
    // our memory (SharedInit).
    bool shared = !pasta && !limiter.active() && (root || userns_first) && !trace::verbose();
    proc::SignalBlock block;
    // go (and the helper's network namespace), the init's report, the
    // command's wait status: see container_main().
    child::Channel go = TRY(child::Channel::socket("the container's go"));
    // Its maps are written already: the init finds go waiting.
    if ((userns_first || shared) && child::send(go.parent.get(), child::Kind::ok, kGo, 0) != 0)
        return sys_error("release the container");
    std::optional<NetnsHelper> helper;  // waits for the helper's exit when it goes
    // A shared init's helper starts first (it joins no user namespace: ours
    // is the container's, or there is none), before the channels below
    // exist, so that its copy of our descriptors holds none of them.
    if (shared && netns_by_helper(c)) TRY(helper.emplace().start(0, false, go.parent.get()));
    child::Channel report = TRY(child::Channel::pipe("the container's report"));
    child::Channel status = TRY(child::Channel::pipe("the command's status"));
    UniqueFd sfd;
    std::optional<child::Stack> init_stack;
    if (shared) {
        sigset_t wait_set = proc::forwarded_signals();
        sigaddset(&wait_set, SIGCHLD);
        sfd = UniqueFd(::signalfd(-1, &wait_set, SFD_CLOEXEC));
        if (!sfd) return sys_error("signalfd");
        // Never freed: the init may still run on it after we have left.
        init_stack.emplace(1024 * 1024);
        init_stack->leak();
    }
    // The init starts on our CPU and would wait there while we write its id
    // maps: it is moved to another, and gives the command back our affinity.
    // A shared init is left where the scheduler puts it: we only wait, and
    // the other CPU is the network helper's (moved there, the init waited
    // for the helper's namespace: warm runs 25.2 against 28.9 ms, medians
    // of 300 interleaved runs on a loaded machine).
    cpu_set_t cpus;
    bool spread =
        !shared && ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 1;
    times::mark("runner: clone");
    SharedInit shared_args{&s,
                           !root,
                           go.child.get(),
                           report.child.get(),
                           status.child.get(),
                           &block,
                           spread ? &cpus : nullptr};
    long pid =
        shared ? child::start_shared(shared_init_main, &shared_args, *init_stack, flags)
               : trace::call([&] { return cat("clone(", trace::clone_flags(flags), "|SIGCHLD)"); },
                             [&] { return child::start(flags); });
    if (pid < 0) {
        Error e = sys_error(cat("clone(", trace::clone_flags(flags), ")"));
        if (!root) {
            std::string why = userns_blocker();
            e.hint = why.empty() ? "user namespaces are refused here; run --kago-extract DIR and use the tree directly"
                                 : cat("unprivileged user namespaces are disabled: ", why,
                                       "; enable them, or run --kago-extract DIR and use the tree directly");
        }
        return e;
    }
    if (pid == 0) {
        go.parent.reset();
        report.parent.reset();
        status.parent.reset();
        container_main(s, !root, go.child.get(), report.child.get(), status.child.get(), block,
                       spread ? &cpus : nullptr);
    }
    child::Process init(static_cast<pid_t>(pid));  // killed and reaped on a failure below
    times::mark("runner: cloned");
    if (spread) proc::move_off_our_cpu(static_cast<pid_t>(pid), cpus);
    go.child.reset();
    report.child.reset();
    status.child.reset();
    if (shared) {
        go.parent.reset();  // the helper has its own copy
        int ws = wait_shared(static_cast<pid_t>(pid), status.parent.get(), sfd.get());
        (void)init.release();  // reaped, or ending by itself after its report
        times::mark("runner: status received");
        return outcome(ws, report.parent.get(), s, root);
    }
    if (!root && !userns_first) {
        if (auto st = ns::write_maps(plan, static_cast<pid_t>(pid)); !st) {
            Error e = std::move(st).error();
            std::string why = userns_blocker();
            if (!why.empty()) e.hint = cat("user namespaces are restricted: ", why, "; or run --kago-extract DIR");
            return e;
        }
    }
    if (pasta) {
        // As net-setup --user-mode starts it (lib/net/usermode): its pid
        // file and log in a directory of this run's, beside the root's.
        auto st = start_pasta(*pasta, static_cast<pid_t>(pid), s.mnt);
        if (!st) return std::move(st).error();
    }
    times::mark("runner: id maps written");
    limiter.enter(static_cast<pid_t>(pid));
    if (!userns_first && child::send(go.parent.get(), child::Kind::ok, kGo, 0) != 0)
        return sys_error("release the container");
    // Last: it then has our CPU, and the init the other.
    if (netns_by_helper(c)) {
        // It joins the container's user namespace, unless it is ours.
        if (auto st = helper.emplace().start(static_cast<pid_t>(pid), !root && !userns_first,
                                             go.parent.get());
            !st)
            return std::move(st).error();
    }
    go.parent.reset();  // the helper has its own copy
    times::mark("runner: go sent, helper started");
    // The command's status comes from the init as soon as the command ends;
    // the init's own exit (the root's unmount, the namespaces' end) then
    // overlaps ours. Only a cgroup to remove makes us wait for it.
    auto ended = proc::supervise(init.pid(), status.parent.get());
    (void)init.release();  // supervised: it ends by itself from here on
    int ws = TRY(std::move(ended));
    times::mark("runner: status received");
    if (limiter.active()) (void)proc::supervise(static_cast<pid_t>(pid));
    limiter.finish(ws);
    return outcome(ws, report.parent.get(), s, root);
}

}  // namespace kago::pack
