#include "core/proc.hpp"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "core/child.hpp"
#include "core/fd.hpp"
#include "core/parse.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::proc {

const sigset_t& forwarded_signals() {
    static const sigset_t set = child::forwarded_signals(false);
    return set;
}

namespace {

// Forward one signal to `child`, unless the terminal already sent it to the
// whole foreground process group, child included.
void forward(pid_t child, int sig, int code, const std::function<void(int)>& on_signal) {
    if (on_signal) on_signal(sig);
    if (code == SI_KERNEL && ::getpgid(child) == ::getpgrp()) return;
    (void)::kill(child, sig);
}

// 1 with *ws set when `child` was reaped, 0 when it still runs.
Result<int> reap(pid_t child, int* ws) {
    for (;;) {
        pid_t r = ::waitpid(-1, ws, WNOHANG | __WALL);
        if (r == child) return 1;
        if (r > 0) continue;  // some other child of ours
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == ECHILD) return sys_error(cat("wait for process ", child));
        return 0;
    }
}

}  // namespace

Result<int> supervise(pid_t child, const std::function<void(int)>& on_signal) {
    sigset_t wait_set = forwarded_signals();
    sigaddset(&wait_set, SIGCHLD);
    for (;;) {
        // Reap first: SIGCHLD may have come before we started waiting.
        int ws = 0;
        if (TRY(reap(child, &ws))) return ws;
        siginfo_t info;
        int sig = ::sigwaitinfo(&wait_set, &info);
        if (sig < 0) {
            if (errno == EINTR) continue;
            return sys_error("sigwaitinfo");
        }
        if (sig != SIGCHLD) forward(child, sig, info.si_code, on_signal);
    }
}

Result<int> supervise(pid_t child, int status_fd, const std::function<void(int)>& on_signal) {
    sigset_t wait_set = forwarded_signals();
    sigaddset(&wait_set, SIGCHLD);
    UniqueFd sfd(::signalfd(-1, &wait_set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sfd) return sys_error("signalfd");
    for (;;) {
        int ws = 0;
        if (TRY(reap(child, &ws))) return ws;
        struct pollfd p[2] = {{sfd.get(), POLLIN, 0}, {status_fd, POLLIN, 0}};
        if (::poll(p, status_fd >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR) continue;
            return sys_error("poll");
        }
        if (p[1].revents) {
            child::Message m;
            if (child::receive(status_fd, &m) == 1 && m.kind == child::Kind::status)
                return m.status;
            status_fd = -1;  // end of file: the child's own exit tells
        }
        struct signalfd_siginfo si;
        while (::read(sfd.get(), &si, sizeof si) == sizeof si)
            if (static_cast<int>(si.ssi_signo) != SIGCHLD)
                forward(child, static_cast<int>(si.ssi_signo), si.ssi_code, on_signal);
    }
}

long read_status(const char* path, char* buf, size_t size) {
    if (size == 0) {
        errno = EINVAL;
        return -1;
    }
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct statfs fs;
    if (::fstatfs(fd, &fs) != 0 || fs.f_type != PROC_SUPER_MAGIC) {
        ::close(fd);
        errno = EXDEV;
        return -1;
    }
    size_t len = 0;
    ssize_t n = 0;
    while (len < size - 1) {
        n = ::read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += static_cast<size_t>(n);
    }
    int e = errno;
    ::close(fd);
    buf[len] = '\0';
    if (n < 0) {
        errno = e;
        return -1;
    }
    return static_cast<long>(len);
}

namespace {
std::string_view blank_trimmed(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r'))
        v.remove_suffix(1);
    return v;
}
}  // namespace

StatusFields parse_status(std::string_view text) {
    StatusFields f;
    struct Key {
        std::string_view name;
        std::string_view StatusFields::*field;
    };
    static constexpr Key kKeys[] = {
        {"Name", &StatusFields::name},       {"Uid", &StatusFields::uid},
        {"Gid", &StatusFields::gid},         {"Groups", &StatusFields::groups},
        {"CapInh", &StatusFields::cap_inh},  {"CapPrm", &StatusFields::cap_prm},
        {"CapEff", &StatusFields::cap_eff},  {"CapBnd", &StatusFields::cap_bnd},
        {"CapAmb", &StatusFields::cap_amb},  {"SigCgt", &StatusFields::sig_cgt},
        {"Threads", &StatusFields::threads}, {"NoNewPrivs", &StatusFields::no_new_privs},
        {"Seccomp", &StatusFields::seccomp}, {"Seccomp_filters", &StatusFields::seccomp_filters},
    };
    while (!text.empty()) {
        size_t eol = text.find('\n');
        std::string_view line = text.substr(0, eol);
        text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view key = line.substr(0, colon);
        for (const Key& k : kKeys)
            if (k.name == key) f.*k.field = blank_trimmed(line.substr(colon + 1));
    }
    return f;
}

bool status_hex(std::string_view v, uint64_t& out) {
    if (v.empty() || v.size() > 16) return false;
    uint64_t x = 0;
    for (char c : v) {
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return false;
        x = x << 4 | static_cast<uint64_t>(d);
    }
    out = x;
    return true;
}

bool self_status(SelfStatus& out) {
    char buf[4096];
    long n = read_status("/proc/self/status", buf, sizeof buf);
    if (n < 0) return false;
    StatusFields f = parse_status(std::string_view(buf, static_cast<size_t>(n)));
    if (f.threads.empty() || !status_hex(f.cap_bnd, out.bounding) ||
        !status_hex(f.cap_amb, out.ambient) || !status_hex(f.sig_cgt, out.caught))
        return false;
    out.threads = 0;
    for (char c : f.threads) {
        if (c < '0' || c > '9') break;
        out.threads = out.threads * 10 + (c - '0');
    }
    return true;
}

int exit_code(int ws) {
    if (WIFEXITED(ws)) return WEXITSTATUS(ws);
    if (WIFSIGNALED(ws)) return 128 + WTERMSIG(ws);
    return 125;
}

void move_off_our_cpu(pid_t child, const cpu_set_t& allowed) {
    int here = ::sched_getcpu();
    if (here < 0 || CPU_COUNT(&allowed) < 2) return;
    cpu_set_t others = allowed;
    CPU_CLR(here, &others);
    if (CPU_COUNT(&others) > 0) (void)::sched_setaffinity(child, sizeof others, &others);
}

void post(int& word, int value) {
    __atomic_store_n(&word, value, __ATOMIC_RELEASE);
    ::syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

int wait_while(int& word, int value, const struct timespec* timeout) {
    int now = __atomic_load_n(&word, __ATOMIC_ACQUIRE);
    while (now == value) {
        long r = ::syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, value, timeout, nullptr, 0);
        now = __atomic_load_n(&word, __ATOMIC_ACQUIRE);
        if (r != 0 && errno == ETIMEDOUT) break;
    }
    return now;
}

Status undumpable() {
    long r = trace::call([] { return std::string("prctl(PR_SET_DUMPABLE, 0)"); },
                         [] { return ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); });
    if (r != 0) return sys_error("prctl(PR_SET_DUMPABLE, 0)");
    return {};
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

int inherited_pdeathsig() {
    int sig = 0;
    if (::prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) != 0) return 0;
    return sig;
}

pid_t follow_parent() {
    if (trace::dry_run() || inherited_pdeathsig() == 0) return 0;
    pid_t parent = ::getppid();
    if (!die_with_parent(SIGTERM, parent)) child::leave(125);  // it is gone: so are we
    return parent;
}

bool parent_gone(pid_t parent) { return parent > 0 && ::getppid() != parent; }

Result<StatFields> parse_stat(std::string_view text) {
    auto bad = [&](const char* why) { return usage_error(cat("/proc/PID/stat: ", why)); };
    auto open = text.find(" (");
    auto close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open + 2)
        return bad("no command name in parentheses");
    StatFields st;
    auto pid = TRY(parse::u64(text.substr(0, open), "pid"));
    if (pid == 0 || pid > 0x7fffffff) return bad("pid out of range");
    st.pid = static_cast<pid_t>(pid);
    st.comm = std::string(text.substr(open + 2, close - open - 2));
    if (close + 2 >= text.size() || text[close + 1] != ' ') return bad("no state after the command name");
    std::string_view rest = text.substr(close + 2);
    while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.remove_suffix(1);
    auto fields = parse::split(rest, ' ');
    // fields[0] is field 3 (state), fields[1] field 4 (ppid), fields[19]
    // field 22 (starttime).
    if (fields.size() < 20 || fields[0].size() != 1) return bad("too few fields");
    st.state = fields[0][0];
    auto ppid = TRY(parse::u64(fields[1], "ppid"));
    if (ppid > 0x7fffffff) return bad("ppid out of range");
    st.ppid = static_cast<pid_t>(ppid);
    st.start = TRY(parse::u64(fields[19], "start time"));
    // fields[45] is field 48 (arg_start) ... fields[48] field 51 (env_end).
    if (fields.size() >= 49) {
        uintptr_t* area[] = {&st.arg_start, &st.arg_end, &st.env_start, &st.env_end};
        for (size_t i = 0; i < 4; ++i) {
            auto v = parse::u64(fields[45 + i], "string area");
            if (!v) return bad("a string area is not a number");
            *area[i] = static_cast<uintptr_t>(*v);
        }
    }
    return st;
}

Result<StatFields> read_stat(pid_t pid) {
    std::string path = cat("/proc/", pid, "/stat");
    auto text = TRY(sys::read_file(path.c_str()));
    auto st = parse_stat(text);
    if (!st) return usage_error(cat(path, ": unexpected format"));
    return st;
}

namespace {
// What /proc/self/stat said, for the process `pid`; the string areas stay
// valid in its forks (the same memory layout), the start time does not.
struct OwnStat {
    pid_t pid = 0;
    uint64_t start = 0;
    bool areas_read = false;
    StringAreas areas;
};
OwnStat g_own;

void read_own_stat() {
    pid_t pid = ::getpid();
    g_own.pid = pid;
    g_own.start = 0;
    // /proc/self, not /proc/PID: in a new PID namespace under the host's
    // /proc, getpid() names another process there.
    auto text = sys::read_file("/proc/self/stat");
    if (!text) return;
    auto st = parse_stat(*text);
    if (!st) return;
    g_own.start = st->start;
    if (!g_own.areas_read) {
        g_own.areas_read = true;
        g_own.areas = StringAreas{
            reinterpret_cast<char*>(st->arg_start), reinterpret_cast<char*>(st->arg_end),
            reinterpret_cast<char*>(st->env_start), reinterpret_cast<char*>(st->env_end)};
    }
}
}  // namespace

Owner self() {
    if (g_own.pid != ::getpid()) read_own_stat();
    return Owner{g_own.pid, g_own.start};
}

StringAreas own_string_areas() {
    if (!g_own.areas_read) read_own_stat();
    return g_own.areas;
}

bool running(const StatFields& st) { return st.state != 'Z' && st.state != 'X' && st.state != 'x'; }

bool alive(const Owner& o) {
    if (o.pid <= 0) return false;
    auto st = read_stat(o.pid);
    return st && running(*st) && st->start == o.start;
}

int64_t monotonic_ms() {
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool wait_ended(pid_t pid, int64_t deadline_ms) {
    if (pid <= 0) return true;
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) return errno == ESRCH;  // gone already; anything else: not known
    UniqueFd owner(fd);
    // Readable once the process has exited, whoever reaps it.
    for (;;) {
        int64_t left = deadline_ms - monotonic_ms();
        if (left <= 0) return false;
        struct pollfd p = {fd, POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(left));
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return false;
    }
}

pid_t one_in_netns(const std::string& nspath) {
    struct stat want, own;
    if (::stat(nspath.c_str(), &want) != 0) return 0;
    if (::stat("/proc/self/ns/net", &own) == 0 && own.st_ino == want.st_ino && own.st_dev == want.st_dev) return 0;
    DIR* d = ::opendir("/proc");
    if (!d) return 0;
    pid_t found = 0;
    while (struct dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        struct stat st;
        if (::stat(cat("/proc/", e->d_name, "/ns/net").c_str(), &st) != 0) continue;
        if (st.st_ino == want.st_ino && st.st_dev == want.st_dev) {
            found = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
            break;
        }
    }
    ::closedir(d);
    return found;
}

pid_t one_in_cgroup(const std::string& rel) {
    if (rel.empty() || rel[0] != '/' || rel.find("/..") != std::string::npos) return 0;
    std::vector<std::string> dirs = {cat("/sys/fs/cgroup", rel)};
    if (DIR* d = ::opendir("/sys/fs/cgroup")) {  // v1: one hierarchy per directory
        while (struct dirent* e = ::readdir(d))
            if (e->d_name[0] != '.' && e->d_type == DT_DIR) dirs.push_back(cat("/sys/fs/cgroup/", e->d_name, rel));
        ::closedir(d);
    }
    for (const auto& dir : dirs) {
        auto procs = sys::read_file(cat(dir, "/cgroup.procs").c_str());
        if (!procs || procs->empty()) continue;
        auto pid = parse::u64(procs->substr(0, procs->find('\n')), "pid");
        if (pid && *pid > 0) return static_cast<pid_t>(*pid);
    }
    return 0;
}

}  // namespace kago::proc
