#include "pack/runtime.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/close_range.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "caps/policy.hpp"
#include "cgroup/limits.hpp"
#include "cgroup/session.hpp"
#include "core/state.hpp"
#include "core/exec.hpp"
#include "core/proc.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"
#include "mount/ops.hpp"
#include "mount/root.hpp"
#include "net/usermode.hpp"
#include "ns/child.hpp"
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

std::string read_sysctl(const char* path) {
    auto r = sys::read_file(path);
    if (!r) return {};
    std::string s = *r;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// The report pipe: 'E' + message + '\n' + hint for a setup error (125), or
// 'X' + code + message for a failed exec.
void send(int fd, char kind, const Error& e, int code) {
    std::string m = cat(std::string(1, kind), code, "\n", e.message(), "\n", e.hint);
    ssize_t w = ::write(fd, m.data(), m.size());
    (void)w;
}

Status loopback_up() {
    long r = trace::call([] { return std::string("ioctl(SIOCSIFFLAGS, {ifr_name=\"lo\", ifr_flags=IFF_UP})"); },
                         [] { return ns::raw_loopback_up(); });
    if (r != 0) return sys_error("bring up lo");
    return {};
}

// --net none: the network namespace is made by a helper of the runner,
// started as the runner releases the init; the kernel's work for a new
// namespace (about 1 ms) then overlaps the init's mounts, on another CPU.
bool netns_later(const Config& c) { return c.net == "none"; }
// Except in a trace, which keeps the calls in order: the init makes it.
bool netns_by_helper(const Config& c) { return netns_later(c) && !trace::verbose(); }

// The runner and the init talk over one socket pair (SOCK_SEQPACKET): the
// runner says go once the id maps are written, then its network helper
// sends the namespace (or what failed).
struct Message {
    char kind;     // kGo, kNetns (a descriptor attached) or kNetnsFailed
    int step = 0;  // kNetnsFailed: the step that failed, and its errno
    int err = 0;
};
constexpr char kGo = 'g', kNetns = 'n', kNetnsFailed = 'e';
enum NetnsStep : int { kJoinUser, kUnshare, kOpen, kLoopback };

// Send `m`, with `fd` attached when it is not -1. System calls only: the
// network helper calls it.
bool send_message(int sock, const Message& m, int fd) {
    return sys::send_with_fd(sock, &m, sizeof m, fd) == static_cast<long>(sizeof m);
}

// The network helper: a child of the runner that shares its memory
// (clone(CLONE_VM): no page tables to copy), on a stack of its own. It joins
// the container's user namespace (its owner, the runner's user, has every
// capability there), makes the network namespace with lo up, sends it to
// the init, and exits; the runner's supervise() reaps it. It has its own
// copy of the descriptors: the runner closes its end of the socket pair
// once it has started the helper, so that the init reads end of file, not
// nothing forever, if the helper dies before it sends. It runs alongside
// the runner, so it makes system calls only: no allocation, nothing of ours
// but its own fields. errno is the one variable both sides write (one
// thread's storage): each reads it right after its own call fails, and
// only two failures at the same moment could mix them up.
class NetnsHelper {
  public:
    NetnsHelper() = default;
    NetnsHelper(const NetnsHelper&) = delete;
    NetnsHelper& operator=(const NetnsHelper&) = delete;
    // Waits for the helper's exit: it runs on stack_ (reaped already by
    // supervise(): ECHILD).
    ~NetnsHelper() {
        if (pid_ > 0) (void)::waitpid(pid_, nullptr, __WALL);
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
        stack_.reset(new char[kStack]);
        pid_ = ::clone(body, stack_.get() + kStack, CLONE_VM | SIGCHLD, this);
        if (pid_ < 0) return sys_error("clone(CLONE_VM) for the network namespace");
        return {};
    }

  private:
    static constexpr size_t kStack = 64 * 1024;  // not zeroed: it touches a few pages

    static int body(void* arg) {
        auto* h = static_cast<NetnsHelper*>(arg);
        Message m{kNetnsFailed, kJoinUser, 0};
        bool ok = h->userns_ < 0 || ::setns(h->userns_, CLONE_NEWUSER) == 0;
        if (ok) {
            m.step = kUnshare;
            ok = ::unshare(CLONE_NEWNET) == 0;
        }
        int fd = -1;
        if (ok) {
            m.step = kOpen;
            fd = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
            ok = fd >= 0;
        }
        if (ok) {
            m.step = kLoopback;
            ok = ns::raw_loopback_up() == 0;
        }
        if (ok) m.kind = kNetns;
        else m.err = errno ? errno : EIO;
        send_message(h->sock_, m, ok ? fd : -1);
        if (fd >= 0) ::close(fd);
        return 0;
    }

    pid_t pid_ = -1;
    int userns_ = -1, sock_ = -1;
    std::unique_ptr<char[]> stack_;
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
        while (netns_ < 0 && failed_.kind != kNetnsFailed)
            if (!receive()) return Error{EIO, "create the network namespace: the runner's helper ended before sending it", ""};
        if (failed_.kind == kNetnsFailed) {
            static const char* const steps[] = {"create the network namespace: join the container's user namespace",
                                                "create the network namespace: unshare(CLONE_NEWNET)",
                                                "open the new network namespace", "bring up lo"};
            int step = failed_.step >= kJoinUser && failed_.step <= kLoopback ? failed_.step : kUnshare;
            int err = failed_.err ? failed_.err : EIO;
            return Error{err, steps[step],
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
        Message m{};
        int fd = -1;
        if (sys::receive_with_fd(sock_, &m, sizeof m, 0, &fd) != static_cast<long>(sizeof m)) {
            if (fd >= 0) ::close(fd);
            return false;
        }
        if (m.kind == kGo) go_ = true;
        else if (m.kind == kNetns && fd >= 0 && netns_ < 0) netns_ = fd, fd = -1;
        else if (m.kind == kNetnsFailed) failed_ = m;
        if (fd >= 0) ::close(fd);
        return true;
    }
    int sock_;
    bool go_ = false;
    int netns_ = -1;
    Message failed_{};  // kind kNetnsFailed once the helper failed
};

// What the init does while the runner still writes its id maps. The new
// user namespace gave it every capability in it at once (with
// --kago-trace, enough for the network namespace). Mounts and files wait
// for the maps (an unmapped owner can create neither).
Status setup_early(const Config& c) {
    TRY(proc::die_with_parent(SIGKILL, ::getppid()));
    if (netns_later(c) && !netns_by_helper(c)) {
        TRY(sys::unshare(CLONE_NEWNET));
        TRY(loopback_up());
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
    if (c.net != "host" && !netns_later(c)) TRY(loopback_up());
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
// (clone(CLONE_VM|CLONE_VFORK), as posix_spawn() does), so it obeys the
// rules for code after clone (DESIGN.md): everything it needs is built
// here, before the clone (argv, the environment, the privilege calls, the
// trace lines), and it makes system calls only. A failure is left in
// `failed` for the init, which is stopped until the child execs or exits,
// to report.
struct CommandStart {
    std::vector<std::string> env;
    std::vector<char*> argv, envp;
    caps::Prepared privileges;
    std::string close_line, exec_line;  // trace lines, when tracing
    const proc::SignalBlock* block = nullptr;
    // Written by the child.
    enum Step : int { kNone, kFds, kPrivileges, kExec } failed = kNone;
    long failed_call = -1;  // kPrivileges: caps::run()'s index
    int err = 0;
};

void set_var(std::vector<std::string>& env, std::string_view name, std::string_view value) {
    std::erase_if(env, [&](const std::string& e) { return e.size() > name.size() && e.starts_with(name) && e[name.size()] == '='; });
    env.push_back(cat(name, "=", value));
}

Status prepare_command(CommandStart& cs, const RunSpec& s, const caps::Policy& policy, const proc::SignalBlock& block) {
    cs.env = container_env(s.config, policy.user ? policy.user->home : "/root");
    // HOME, USER and LOGNAME for --user, as cap-drop sets them.
    if (policy.user && policy.user_env) {
        set_var(cs.env, "HOME", policy.user->home);
        set_var(cs.env, "USER", policy.user->name);
        set_var(cs.env, "LOGNAME", policy.user->name);
    }
    for (auto& e : cs.env) cs.envp.push_back(e.data());
    cs.envp.push_back(nullptr);
    for (auto& a : s.command) cs.argv.push_back(const_cast<char*>(a.c_str()));
    cs.argv.push_back(nullptr);
    cs.privileges = TRY(caps::prepare(policy));
    if (trace::verbose()) {
        cs.close_line = "close_range(3, ~0U, CLOSE_RANGE_CLOEXEC)";
        cs.exec_line = cat("execve(", trace::quote(s.command[0]), ", ", describe_argv(s.command), ", envp)");
    }
    cs.block = &block;
    return {};
}

long cloexec_above_2(void*) { return ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC); }

int command_main(void* arg) {
    auto& cs = *static_cast<CommandStart*>(arg);
    cs.block->restore_in_child();
    // Nothing of ours reaches the command but 0, 1 and 2.
    if (trace::call_prepared(cs.close_line, cloexec_above_2, nullptr) != 0) {
        cs.err = errno;
        cs.failed = CommandStart::kFds;
        _exit(125);
    }
    if (long f = caps::run(cs.privileges); f >= 0) {
        cs.err = errno;
        cs.failed_call = f;
        cs.failed = CommandStart::kPrivileges;
        _exit(125);
    }
    if (trace::verbose()) trace::emit(cs.exec_line);
    // execvp() searches the command's PATH: this environ is ours too, which
    // we no longer read (the init puts its own back).
    environ = cs.envp.data();
    ::execvp(cs.argv[0], cs.argv.data());
    cs.err = errno;
    cs.failed = CommandStart::kExec;
    _exit(exit_code_for_exec_error(cs.err));
}

// What the command's process left in cs: 'E' and the error for a failed
// step (125), 'X' and the exec's (126/127).
void report_command_failure(int report, const CommandStart& cs, const RunSpec& s) {
    errno = cs.err;
    switch (cs.failed) {
    case CommandStart::kNone: return;
    case CommandStart::kFds: send(report, 'E', sys_error("close the runner's descriptors: close_range"), 125); return;
    case CommandStart::kPrivileges: send(report, 'E', caps::error(cs.privileges, cs.failed_call, cs.err), 125); return;
    case CommandStart::kExec: send(report, 'X', sys_error(s.command[0]), exit_code_for_exec_error(cs.err)); return;
    }
}

// `cpus`, when not null, is the affinity to give back before the command
// starts (the runner moved us off its CPU).
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

[[noreturn]] void container_main(const RunSpec& s, bool own_userns, int sock, int report, int status,
                                 const proc::SignalBlock& block, const cpu_set_t* cpus) {
    if (auto st = close_runner_fds({sock, report, status}); !st) {
        send(report, 'E', st.error(), 125);
        _exit(125);
    }
    Status early = setup_early(s.config);
    RunnerChannel runner(sock);
    // No go: the runner failed to set us up and is gone or giving up.
    if (!runner.wait_go()) _exit(125);
    if (!early) {
        send(report, 'E', early.error(), 125);
        _exit(125);
    }
    caps::Policy policy;
    if (auto st = setup_inside(s, own_userns, runner, policy); !st) {
        send(report, 'E', st.error(), 125);
        _exit(125);
    }
    ::close(sock);
    CommandStart cs;
    if (auto st = prepare_command(cs, s, policy, block); !st) {
        send(report, 'E', st.error(), 125);
        _exit(125);
    }
    // This init runs the packed file, a host file: make it undumpable so that
    // the container cannot reach it through /proc/1/exe, /proc/1/cwd or
    // /proc/1/fd. Undumpable, its /proc files belong to the runner's user
    // namespace's root (mm->user_ns is the runner's: we were cloned, not
    // exec'd), and a container root has no capability there. Not earlier:
    // the runner writes our id maps, and rootless it may not write those of
    // an undumpable process; and no process of the container exists before
    // the command, below. The command's exec resets this for the command.
    if (trace::call([] { return std::string("prctl(PR_SET_DUMPABLE, 0)"); },
                    [] { return ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }) != 0) {
        send(report, 'E', sys_error("prctl(PR_SET_DUMPABLE, 0)"), 125);
        _exit(125);
    }
    // The command's process shares our memory until it execs or exits, and
    // we are stopped until then: no page tables to copy and no copy-on-write
    // faults for what it writes. It runs on a stack of its own.
    if (cpus) (void)::sched_setaffinity(0, sizeof *cpus, cpus);
    constexpr size_t kStack = 256 * 1024;  // not zeroed: it touches a few pages
    pid_t child;
    {
        std::unique_ptr<char[]> stack(new char[kStack]);
        char** our_environ = environ;
        child = ::clone(command_main, stack.get() + kStack, CLONE_VM | CLONE_VFORK | SIGCHLD, &cs);
        environ = our_environ;
    }
    if (child < 0) {
        send(report, 'E', sys_error("start the command: clone(CLONE_VM|CLONE_VFORK)"), 125);
        _exit(125);
    }
    report_command_failure(report, cs, s);
    ::close(report);
    auto ws = proc::supervise(child);
    if (!ws) _exit(125);
    // Tell the runner at once, as bwrap's init does: it can leave while we
    // exit, which unmounts the container's root and ends its namespaces.
    // Our copies of the standard streams go first, so that a reader of the
    // command's output sees end of file now too.
    if (!trace::verbose()) {
        for (int fd = 0; fd < 3; fd++) ::close(fd);
    }
    (void)!::write(status, &*ws, sizeof *ws);
    proc::exit_like(*ws);
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
        std::string name = TRY(state::container_name());
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
    return {};
}

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
            req = {};
            req.map_root = true;
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
    proc::SignalBlock block;
    int go[2], report[2], status[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, go) != 0) return sys_error("socketpair");
    UniqueFd go_r(go[0]), go_w(go[1]);
    if (::pipe2(report, O_CLOEXEC) != 0 || ::pipe2(status, O_CLOEXEC) != 0) return sys_error("pipe2");
    UniqueFd rep_r(report[0]), rep_w(report[1]), st_r(status[0]), st_w(status[1]);
    // The init starts on our CPU and would wait there while we write its id
    // maps: it is moved to another, and gives the command back our affinity.
    cpu_set_t cpus;
    bool spread = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 1;
    long pid = trace::call([&] { return cat("clone(", trace::clone_flags(flags), "|SIGCHLD)"); },
                           [&] { return ::syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0); });
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
        go_w.reset();
        rep_r.reset();
        st_r.reset();
        container_main(s, !root, go_r.get(), rep_w.get(), st_w.get(), block, spread ? &cpus : nullptr);
    }
    if (spread) proc::move_off_our_cpu(static_cast<pid_t>(pid), cpus);
    go_r.reset();
    rep_w.reset();
    st_w.reset();
    auto kill_child = [&] {
        ::kill(static_cast<pid_t>(pid), SIGKILL);
        int ws;
        ::waitpid(static_cast<pid_t>(pid), &ws, 0);
    };
    if (!root) {
        if (auto st = ns::write_maps(plan, static_cast<pid_t>(pid)); !st) {
            kill_child();
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
        if (!st) {
            kill_child();
            return std::move(st).error();
        }
    }
    limiter.enter(static_cast<pid_t>(pid));
    if (!send_message(go_w.get(), Message{kGo}, -1)) {
        kill_child();
        return sys_error("release the container");
    }
    // Last: it then has our CPU, and the init the other.
    std::optional<NetnsHelper> helper;  // waits for the helper's exit when it goes
    if (netns_by_helper(c)) {
        if (auto st = helper.emplace().start(static_cast<pid_t>(pid), !root, go_w.get()); !st) {
            kill_child();
            return std::move(st).error();
        }
    }
    go_w.reset();  // the helper has its own copy
    // The command's status comes from the init as soon as the command ends;
    // the init's own exit (the root's unmount, the namespaces' end) then
    // overlaps ours. Only a cgroup to remove makes us wait for it.
    int ws = TRY(proc::supervise(static_cast<pid_t>(pid), st_r.get()));
    if (limiter.active()) (void)proc::supervise(static_cast<pid_t>(pid));
    limiter.finish(ws);
    std::string msg;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(rep_r.get(), buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
    if (!msg.empty()) {
        char kind = msg[0];
        size_t nl = msg.find('\n');
        int code = atoi(msg.substr(1, nl).c_str());
        std::string rest = nl == std::string::npos ? "" : msg.substr(nl + 1);
        size_t nl2 = rest.find('\n');
        Error e;
        e.what = rest.substr(0, nl2);
        e.hint = nl2 == std::string::npos ? "" : rest.substr(nl2 + 1);
        if (kind == 'E' && !root && e.hint.empty()) {
            std::string why = userns_blocker();
            if (!why.empty()) e.hint = cat("user namespaces are restricted: ", why, "; or run --kago-extract DIR");
        }
        if (kind == 'X') return RunOutcome{ws, std::move(e)};
        (void)code;
        return e;
    }
    return RunOutcome{ws, std::nullopt};
}

}  // namespace kago::pack
