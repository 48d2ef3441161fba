#include "core/sys.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/trace.hpp"

namespace kago::sys {
namespace {
std::string qn(const char* s) { return s ? trace::quote(s) : "NULL"; }

const char* nstype_name(int t) {
    switch (t) {
    case CLONE_NEWUSER: return "CLONE_NEWUSER";
    case CLONE_NEWPID: return "CLONE_NEWPID";
    case CLONE_NEWNS: return "CLONE_NEWNS";
    case CLONE_NEWUTS: return "CLONE_NEWUTS";
    case CLONE_NEWIPC: return "CLONE_NEWIPC";
    case CLONE_NEWNET: return "CLONE_NEWNET";
    case CLONE_NEWCGROUP: return "CLONE_NEWCGROUP";
    case 0x80: return "CLONE_NEWTIME";
    default: return "0";
    }
}
}  // namespace

Status mount(const char* source, const char* target, const char* fstype, unsigned long flags,
             const char* data) {
    long r = trace::call(
        [&] {
            return cat("mount(", qn(source), ", ", qn(target), ", ", qn(fstype), ", ",
                       trace::mount_flags(flags), ", ", qn(data), ")");
        },
        [&] { return ::mount(source, target, fstype, flags, data); });
    if (r == 0) return {};
    if (flags & MS_BIND) return sys_error(cat("bind mount ", source ? source : "?", " on ", target));
    if (flags & MS_MOVE) return sys_error(cat("move mount ", source ? source : "?", " to ", target));
    if (flags & MS_REMOUNT) return sys_error(cat("remount ", target));
    if (flags & (MS_PRIVATE | MS_SLAVE | MS_SHARED | MS_UNBINDABLE))
        return sys_error(cat("change propagation of ", target));
    return sys_error(cat("mount ", fstype ? fstype : "?", " on ", target));
}

Status umount2(const char* target, int flags) {
    long r = trace::call(
        [&] {
            return cat("umount2(", qn(target), ", ", trace::umount_flags(static_cast<unsigned>(flags)),
                       ")");
        },
        [&] { return ::umount2(target, flags); });
    if (r == 0) return {};
    return sys_error(cat("unmount ", target));
}

Status pivot_root(const char* new_root, const char* put_old) {
    long r = trace::call([&] { return cat("pivot_root(", qn(new_root), ", ", qn(put_old), ")"); },
                         [&] { return ::syscall(SYS_pivot_root, new_root, put_old); });
    if (r == 0) return {};
    return sys_error(cat("pivot_root to ", new_root));
}

Status unshare(unsigned long flags) {
    long r = trace::call([&] { return cat("unshare(", trace::clone_flags(flags), ")"); },
                         [&] { return ::unshare(static_cast<int>(flags)); });
    if (r == 0) return {};
    return sys_error(cat("unshare(", trace::clone_flags(flags), ")"));
}

Status setns(int fd, int nstype, std::string_view what) {
    long r = trace::call(
        [&] { return cat("setns(", fd, " /* ", what, " */, ", nstype_name(nstype), ")"); },
        [&] { return ::setns(fd, nstype); });
    if (r == 0) return {};
    return sys_error(cat("join namespace ", what));
}

Status sethostname(std::string_view name) {
    long r = trace::call(
        [&] { return cat("sethostname(", trace::quote(name), ", ", name.size(), ")"); },
        [&] { return ::sethostname(name.data(), name.size()); });
    if (r == 0) return {};
    return sys_error(cat("set hostname '", name, "'"));
}

Status setdomainname(std::string_view name) {
    long r = trace::call(
        [&] { return cat("setdomainname(", trace::quote(name), ", ", name.size(), ")"); },
        [&] { return ::setdomainname(name.data(), name.size()); });
    if (r == 0) return {};
    return sys_error(cat("set domain name '", name, "'"));
}

Status chdir(const char* path) {
    long r = trace::call([&] { return cat("chdir(", qn(path), ")"); },
                         [&] { return ::chdir(path); });
    if (r == 0) return {};
    return sys_error(cat("change directory to ", path));
}

Status fchdir(int fd, std::string_view what) {
    long r = trace::call([&] { return cat("fchdir(", fd, " /* ", what, " */)"); },
                         [&] { return ::fchdir(fd); });
    if (r == 0) return {};
    return sys_error(cat("change directory to ", what));
}

Status chroot(const char* path) {
    long r = trace::call([&] { return cat("chroot(", qn(path), ")"); },
                         [&] { return ::chroot(path); });
    if (r == 0) return {};
    return sys_error(cat("chroot to ", path));
}

Result<trace::Made> mkdir(const char* path, mode_t mode, bool exist_ok) {
    long r = trace::call([&] { return cat("mkdir(", qn(path), ", 0", std::to_string(mode / 64) +
                                                                        std::to_string(mode / 8 % 8) +
                                                                        std::to_string(mode % 8),
                                          ")"); },
                         [&] { return ::mkdir(path, mode); });
    if (r == 0) return trace::made();
    if (exist_ok && errno == EEXIST) return trace::Made::no;
    return sys_error(cat("create directory ", path));
}

Result<trace::Made> mkdir_p(std::string_view path, mode_t mode) {
    std::string p(path);
    trace::Made made = trace::Made::no;
    for (size_t i = 1; i <= p.size(); ++i) {
        if (i == p.size() || p[i] == '/') {
            std::string part = p.substr(0, i);
            struct stat st;
            if (::stat(part.c_str(), &st) == 0) {
                if (!S_ISDIR(st.st_mode)) {
                    errno = ENOTDIR;
                    return sys_error(cat("create directory ", part));
                }
                continue;
            }
            made = TRY(mkdir(part.c_str(), mode, true));
        }
    }
    return made;
}

Status rmdir(const char* path) {
    long r = trace::call([&] { return cat("rmdir(", qn(path), ")"); },
                         [&] { return ::rmdir(path); });
    if (r == 0) return {};
    return sys_error(cat("remove directory ", path));
}

Status symlink(const char* target, const char* linkpath) {
    long r = trace::call([&] { return cat("symlink(", qn(target), ", ", qn(linkpath), ")"); },
                         [&] { return ::symlink(target, linkpath); });
    if (r == 0) return {};
    return sys_error(cat("create symlink ", linkpath));
}

long send_with_fd(int sock, const void* data, size_t size, int fd) {
    struct iovec iov = {const_cast<void*>(data), size};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
}

long receive_with_fd(int sock, void* data, size_t size, int flags, int* fd) {
    *fd = -1;
    struct iovec iov = {data, size};
    // Room for a few, so that extra descriptors are closed here rather than
    // cut off by the kernel.
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
    while (n < 0 && errno == EINTR);
    if (n < 0) return n;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            if (*fd < 0) *fd = got;
            else ::close(got);
        }
    }
    return n;
}

int write_all(int fd, const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
        ssize_t w = ::write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        c += w;
        n -= static_cast<size_t>(w);
    }
    return 0;
}

Status write_all(int fd, const void* p, size_t n, std::string_view what) {
    if (write_all(fd, p, n) == 0) return {};
    return sys_error(cat("write ", what));
}

int open_beneath(int dirfd, const char* path, int flags, mode_t mode, bool follow_symlinks) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0;
    how.resolve =
        RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (follow_symlinks ? 0 : RESOLVE_NO_SYMLINKS);
    return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

long write_whole(const char* path, std::string_view content, int extra_flags, bool* open_failed) {
    int fd = ::open(path, O_WRONLY | O_CLOEXEC | extra_flags, 0644);
    if (fd < 0) {
        if (open_failed) *open_failed = true;
        return -1;
    }
    ssize_t w = ::write(fd, content.data(), content.size());
    int e = errno;
    ::close(fd);
    errno = e;
    if (w >= 0 && static_cast<size_t>(w) != content.size()) {
        errno = EIO;
        return -1;
    }
    return w;
}

Status write_file(const char* path, std::string_view content, int extra_flags) {
    bool open_failed = false;
    long r = trace::call(
        [&] { return cat("write(", qn(path), ", ", trace::quote(content), ")"); },
        [&] { return write_whole(path, content, extra_flags, &open_failed); },
        static_cast<long>(content.size()));
    if (r >= 0) return {};
    if (open_failed) return sys_error(cat("open ", path));
    std::string shown(content);
    while (!shown.empty() && shown.back() == '\n') shown.pop_back();
    return sys_error(cat("write '", shown, "' to ", path));
}

Result<std::string> read_file(const char* path) {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sys_error(cat("open ", path));
    UniqueFd owner(fd);
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error(cat("read ", path));
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

Result<UniqueFd> open(const char* path, int flags, mode_t mode) {
    int fd = ::open(path, flags | O_CLOEXEC, mode);
    if (fd < 0) return sys_error(cat("open ", path));
    return UniqueFd(fd);
}

Status kill(pid_t pid, int sig) {
    long r = trace::call([&] { return cat("kill(", pid, ", SIG", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", ")"); },
                         [&] { return ::kill(pid, sig); });
    if (r == 0) return {};
    return sys_error(cat("send SIG", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?", " to process ", pid));
}

}  // namespace kago::sys
