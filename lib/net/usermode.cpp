#include "net/usermode.hpp"

#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "core/child.hpp"
#include "core/exec.hpp"
#include "core/parse.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::net::usermode {
namespace {

// What a traced call returns in a dry run, where nothing was made (a
// result no real call of ours gives).
constexpr long kNotMade = 1;

std::string search_path(std::string_view name) {
    const char* path = ::getenv("PATH");
    for (const auto& d : parse::split(path && *path ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
        if (d.empty()) continue;
        std::string p = cat(d, "/", name);
        if (::access(p.c_str(), X_OK) == 0) return p;
    }
    return "";
}

// A close-on-exec descriptor above 2, so that placing one on 0, 1 or 2
// in the child never overwrites another (our 0-2 may be closed).
UniqueFd open_high(const char* path, int flags, mode_t mode = 0) {
    UniqueFd fd(::open(path, flags | O_CLOEXEC, mode));
    if (fd && fd.get() < 3) fd = UniqueFd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
    return fd;
}

// fork + exec argv with /dev/null on 0 and 1 and the log on 2; the child
// keeps `keep_fd` open too, and nothing else of ours (every descriptor we
// open is close-on-exec). It dies with us (PR_SET_PDEATHSIG, SIGKILL): a
// helper must not outlive a supervisor that was killed. Returns the pid.
Result<pid_t> spawn(const std::vector<std::string>& argv, int keep_fd, const std::string& log) {
    pid_t parent = ::getpid();
    child::Exec exec(argv, -1);
    // Opened here, close-on-exec: the child only places them. Its messages
    // would be noise on the container's terminal.
    UniqueFd devnull = open_high("/dev/null", O_RDWR);
    UniqueFd logfd = open_high(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    long pid = trace::call(
        [&] {
            return cat("fork() + execve(", trace::quote(argv[0]), ", ", describe_argv(argv), ")");
        },
        [&]() -> long {
            long p = child::start(0);
            if (p == 0) {  // after clone (core/child.hpp)
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, nullptr);
                if (keep_fd >= 0) ::fcntl(keep_fd, F_SETFD, 0);
                // dup2() clears close-on-exec on the copies only.
                if (devnull) {
                    ::dup2(devnull.get(), 0);
                    ::dup2(devnull.get(), 1);
                }
                if (logfd) ::dup2(logfd.get(), 2);
                if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent)
                    child::leave(127);
                child::exec_or_exit(exec);
            }
            return p;
        });  // a dry run's: 0, not made
    if (pid < 0) return sys_error(cat("start ", argv[0]));
    return pid_t(pid);
}

// The helper's last words, for the error message.
std::string last_line(const std::string& log) {
    auto text = sys::read_file(log.c_str());
    std::string last;
    for (const auto& l : parse::split(text ? *text : "", '\n'))
        if (!l.empty() && l.find("syslog") == std::string::npos) last = l;
    return last;
}

}  // namespace

Result<Helper> find_helper(std::string_view wanted) {
    for (std::string_view n : {"pasta", "slirp4netns"}) {
        if (wanted != "auto" && wanted != n) continue;
        std::string p = search_path(n);
        if (!p.empty()) return Helper{std::string(n), p};
    }
    errno = ENOENT;
    if (wanted == "auto")
        return sys_error("--user-mode: neither pasta nor slirp4netns found in PATH")
            .with_hint("install the Debian package passt (or slirp4netns)");
    return sys_error(cat("--user-mode-helper ", wanted, ": not found in PATH"));
}

std::string pasta_port(const Publish& p) {
    std::string s;
    if (p.host_ip) s = cat(p.host_ip->addr_str(), "/");
    return cat(s, p.host_port, ":", p.port);
}

std::vector<std::string> pasta_argv(const Helper& h, pid_t target, const std::vector<Publish>& publish,
                                    uint32_t mtu, const std::string& pidfile) {
    // In the foreground, as our child: it dies with us (see spawn()).
    std::vector<std::string> a = {h.path, "--config-net", "--quiet", "--pid", pidfile, "--foreground"};
    std::string tcp, udp;
    for (const auto& p : publish) {
        std::string& spec = p.proto == IPPROTO_TCP ? tcp : udp;
        if (!spec.empty()) spec += ",";
        spec += pasta_port(p);
    }
    // Only the ports asked for; nothing from the namespace to the host.
    a.insert(a.end(), {"-t", tcp.empty() ? "none" : tcp, "-u", udp.empty() ? "none" : udp, "-T", "none", "-U", "none"});
    if (mtu) a.insert(a.end(), {"--mtu", std::to_string(mtu)});
    a.push_back(std::to_string(target));
    return a;
}

std::vector<std::string> slirp_argv(const Helper& h, pid_t target, uint32_t mtu, int ready_fd, int exit_fd,
                                    const std::string& api_socket) {
    return {h.path,
            "--configure",
            cat("--mtu=", mtu ? mtu : 65520),
            "--disable-host-loopback",
            cat("--ready-fd=", ready_fd),
            cat("--exit-fd=", exit_fd),
            cat("--api-socket=", api_socket),
            cat("--userns-path=/proc/", target, "/ns/user"),
            "--netns-type=path",
            cat("/proc/", target, "/ns/net"),
            "tap0"};
}

std::string slirp_hostfwd_request(const Publish& p) {
    return cat(R"({"execute": "add_hostfwd", "arguments": {"proto": ")", p.proto_name(), R"(", "host_addr": ")",
               p.host_ip ? p.host_ip->addr_str() : "0.0.0.0", R"(", "host_port": )", p.host_port,
               R"(, "guest_port": )", p.port, "}}");
}

std::string by_hand(const Helper& h, const std::vector<Publish>& publish, uint32_t mtu) {
    if (h.name == "pasta") {
        // Our command line without --quiet, --pid and the target, which is gone.
        std::vector<std::string> a = pasta_argv(h, 0, publish, mtu, "");
        std::vector<std::string> line = {a[0], a[1]};
        line.insert(line.end(), a.begin() + 6, a.end() - 1);
        line.insert(line.end(), {"--", "true"});
        return shell_line(line);
    }
    return cat("unshare --user --map-root-user --net sleep 30 & ",
               shell_line({h.path, "--configure", cat("--mtu=", mtu ? mtu : 65520), "--disable-host-loopback"}),
               " $! tap0; kill $!");
}

std::string mode_string(mode_t m) {
    std::string s = S_ISCHR(m) ? "c" : S_ISBLK(m) ? "b" : S_ISDIR(m) ? "d" : S_ISLNK(m) ? "l" : S_ISREG(m) ? "-" : "?";
    const char* rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; ++i) s += (m & (0400 >> i)) ? rwx[i] : '-';
    return s;
}

std::string tun_problem(const struct stat* st) {
    if (!st) return "/dev/net/tun does not exist";
    if (!S_ISCHR(st->st_mode)) return cat("/dev/net/tun is not a character device (", mode_string(st->st_mode), ")");
    if ((st->st_mode & 0006) == 0006) return "";
    char oct[8];
    snprintf(oct, sizeof oct, "%04o", unsigned(st->st_mode & 07777));
    return cat("/dev/net/tun is ", mode_string(st->st_mode), " (", oct, ", uid ", st->st_uid, " gid ", st->st_gid,
               "): in the helper's user namespace only the bits for others count, and they are not rw");
}

namespace {

// The error of a helper that failed: the tun device named when it is the
// cause, and a command line to run the helper by hand.
Error helper_failed(const Helper& h, const std::vector<Publish>& publish, uint32_t mtu, std::string what,
                    const std::string& log) {
    std::string why = last_line(log);
    struct stat st;
    bool exists = ::stat("/dev/net/tun", &st) == 0;
    std::string tun = tun_problem(exists ? &st : nullptr);
    std::string by = "run it by hand to see why: " + by_hand(h, publish, mtu);
    errno = 0;
    bool tun_said = why.find("tun") != std::string::npos;
    if (!tun.empty() && (tun_said || why.empty()))
        return usage_error(cat(h.name, " cannot open /dev/net/tun: ", tun, why.empty() ? "" : cat(" (", h.name, ": ", why, ")")))
            .with_hint(exists ? cat("ask the administrator to make it readable and writable by all "
                                    "(chmod 0666 /dev/net/tun, the mode udev gives it); or ", by)
                              : cat("load the tun module (modprobe tun); or ", by));
    return usage_error(cat(what, why.empty() ? "" : ": ", why)).with_hint(by);
}

Status slirp_api(const std::string& sock, const std::string& request) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error("slirp4netns API socket");
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (sock.size() >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return sys_error(cat("slirp4netns API socket ", sock));
    }
    memcpy(sa.sun_path, sock.c_str(), sock.size() + 1);
    long r = trace::call(
        [&] {
            return cat("connect(", trace::quote(sock), ") + write(", trace::quote(request), ")");
        },
        [&]() -> long {
            if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return -1;
            if (::write(fd.get(), request.data(), request.size()) != ssize_t(request.size()))
                return -1;
            ::shutdown(fd.get(), SHUT_WR);
            return 0;
        },
        kNotMade);
    if (r == kNotMade) return {};  // a dry run: no reply to read
    if (r != 0) return sys_error(cat("slirp4netns API ", sock));
    std::string reply;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) reply.append(buf, size_t(n));
    if (reply.find("\"error\"") != std::string::npos)
        return usage_error(cat("slirp4netns: ", request, ": ", reply));
    return {};
}

}  // namespace

Result<Running> start(const Helper& h, pid_t target, const std::vector<Publish>& publish, uint32_t mtu,
                      const std::string& work_dir, const std::function<void(pid_t)>& spawned) {
    Running run;
    if (h.name == "pasta") {
        std::string pidfile = cat(work_dir, "/pasta.pid");
        auto argv = pasta_argv(h, target, publish, mtu, pidfile);
        std::string log = cat(work_dir, "/pasta.log");
        pid_t pid = TRY(spawn(argv, -1, log));
        if (pid == 0) return run;        // not made: a dry run
        run.proc = child::Process(pid);  // killed and reaped if it never gets ready
        if (spawned) spawned(pid);
        // Ready once it has written its pid file (in the foreground, it
        // stays and writes it when the namespace is configured); failed
        // when it exits first.
        UniqueFd watch(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
        if (watch) (void)::inotify_add_watch(watch.get(), work_dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO);
        bool exited = run.proc.fd() >= 0;  // its pidfd polls readable when it ends
        for (;;) {
            auto text = sys::read_file(pidfile.c_str());
            if (text && text->find('\n') != std::string::npos) {
                auto p = parse::u64(std::string_view(*text).substr(0, text->find('\n')), "pid");
                if (p && pid_t(*p) == pid) break;
            }
            auto ended = run.proc.wait(false);
            if (ended || ended.error().err != EAGAIN) {
                int ws = ended ? *ended : 0;
                return helper_failed(h, publish, mtu,
                                     !ended
                                         ? cat("pasta: waitpid: ", strerror(ended.error().err))
                                         : cat("pasta failed (",
                                               WIFEXITED(ws) ? cat("exit status ", WEXITSTATUS(ws))
                                                             : cat("signal ", WTERMSIG(ws)),
                                               ")"),
                                     log);
            }
            struct pollfd fds[2] = {{watch.get(), POLLIN, 0}, {run.proc.fd(), POLLIN, 0}};
            // Without inotify or pidfd, a short poll instead.
            int n = ::poll(fds, 2, watch && exited ? -1 : 10);
            if (n < 0 && errno != EINTR) return sys_error("poll for pasta to be ready");
            char buf[4096];
            while (watch && ::read(watch.get(), buf, sizeof buf) > 0) {
            }
        }
        ::unlink(pidfile.c_str());
        return run;
    }
    // slirp4netns
    int ready[2], ex[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return sys_error("pipe2() for slirp4netns's ready-fd");
    UniqueFd ready_r(ready[0]), ready_w(ready[1]);
    if (::pipe2(ex, O_CLOEXEC) != 0) return sys_error("pipe2() for slirp4netns's exit-fd");
    UniqueFd exit_r(ex[0]);
    run.exit_fd = ex[1];
    std::string api = cat(work_dir, "/slirp4netns.sock");
    auto argv = slirp_argv(h, target, mtu, ready[1], ex[0], api);
    // Both descriptors must survive the exec in the child.
    ::fcntl(ex[0], F_SETFD, 0);
    std::string log = cat(work_dir, "/slirp4netns.log");
    auto pid = spawn(argv, ready[1], log);
    ::fcntl(ex[0], F_SETFD, FD_CLOEXEC);
    if (!pid) {
        ::close(run.exit_fd);
        return std::move(pid).error();
    }
    if (*pid == 0) return run;  // not made: a dry run
    run.proc = child::Process(*pid);
    if (spawned) spawned(run.pid());
    ready_w.reset();
    exit_r.reset();
    char c;
    ssize_t n;
    while ((n = ::read(ready_r.get(), &c, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1) {
        stop(run);
        return helper_failed(h, publish, mtu, "slirp4netns exited before the network was ready", log);
    }
    for (const auto& p : publish) {
        auto st = slirp_api(api, slirp_hostfwd_request(p));
        if (!st) {
            stop(run);
            return std::move(st).error();
        }
    }
    return run;
}

void stop(Running& r) {
    if (r.exit_fd >= 0) {
        ::close(r.exit_fd);
        r.exit_fd = -1;
    }
    if (!r.proc) return;
    // Traced, by pid: the pidfd says it is still ours to signal (not reaped
    // by the supervisor's waitpid(-1)), and nothing reaps it before the kill.
    if (r.proc.signal(0) == 0) (void)sys::kill(r.pid(), SIGTERM);
    for (int i = 0; i < 200; ++i) {
        auto ended = r.proc.wait(false);
        if (ended || ended.error().err != EAGAIN) return;  // reaped, here or by the supervisor
        ::usleep(5000);
    }
    (void)r.proc.release();  // it ignores SIGTERM: PR_SET_PDEATHSIG ends it with us
}

}  // namespace kago::net::usermode
