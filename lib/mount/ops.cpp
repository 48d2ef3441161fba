#include "mount/ops.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::mount::ops {
namespace {

std::string q(std::string_view s) { return trace::quote(s); }

std::string attr_flags(unsigned v) {
    return trace::flags(v, {{MOUNT_ATTR_RDONLY, "MOUNT_ATTR_RDONLY"},
                            {MOUNT_ATTR_NOSUID, "MOUNT_ATTR_NOSUID"},
                            {MOUNT_ATTR_NODEV, "MOUNT_ATTR_NODEV"},
                            {MOUNT_ATTR_NOEXEC, "MOUNT_ATTR_NOEXEC"},
                            {MOUNT_ATTR_NOATIME, "MOUNT_ATTR_NOATIME"},
                            {MOUNT_ATTR_STRICTATIME, "MOUNT_ATTR_STRICTATIME"}});
}

std::string mode_str(mode_t m) {
    char b[16];
    snprintf(b, sizeof b, "0%o", static_cast<unsigned>(m));
    return b;
}

// The messages the kernel left in a filesystem context ("e overlay: ...").
std::string context_log(int fsfd) {
    if (fsfd < 0) return {};
    std::string out;
    char buf[1024];
    for (int i = 0; i < 8; ++i) {
        ssize_t n = ::read(fsfd, buf, sizeof buf - 1);
        if (n <= 0) break;
        std::string_view line(buf, static_cast<size_t>(n));
        while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
        if (line.size() > 2 && line[1] == ' ') line.remove_prefix(2);
        if (!out.empty()) out += "; ";
        out += line;
    }
    return out;
}

Error fs_error(const Fd& fs, std::string what) {
    int e = errno;
    std::string log = context_log(fs.get());
    errno = e;
    Error err = sys_error(std::move(what));
    if (!log.empty()) err.hint = cat("the kernel says: ", log);
    return err;
}

// r: a traced call's descriptor, or trace::kNotMadeFd (a dry run opened
// nothing): the stand-in that later wrappers accept.
Result<Fd> wrap_fd(long r, std::string what) {
    if (r == trace::kNotMadeFd) return not_made(std::move(what));
    return Fd{UniqueFd(static_cast<int>(r)), std::move(what)};
}

}  // namespace

Result<Fd> open_path(const std::string& path) {
    long r = trace::call_quiet(
        [&] { return ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC); }, trace::kNotMadeFd);
    if (r < 0) return sys_error(cat("open ", path));
    return wrap_fd(r, path);
}

Result<bool> is_dir(const Fd& at) {
    if (!at.made()) return true;
    struct stat st {};
    if (::fstat(at.get(), &st) != 0) return sys_error(cat("stat ", at.what));
    return S_ISDIR(st.st_mode);
}

std::string describe_fd(int fd, std::string_view what) {
    if (fd < 0) return cat("fd /* ", what, " */");
    return cat(fd, " /* ", what, " */");
}

Result<Fd> fsopen(const char* fstype, std::string_view what) {
    long r = trace::call([&] { return cat("fsopen(", q(fstype), ", FSOPEN_CLOEXEC)"); },
                         [&] { return ::fsopen(fstype, FSOPEN_CLOEXEC); }, trace::kNotMadeFd);
    if (r < 0) return sys_error(cat("fsopen ", fstype, " for ", what));
    return wrap_fd(r, cat(fstype, " for ", what));
}

Status fsconfig_string(const Fd& fs, const char* key, std::string_view value) {
    std::string v(value);
    long r = trace::call(
        [&] {
            return cat("fsconfig(", describe_fd(fs.get(), fs.what), ", FSCONFIG_SET_STRING, ", q(key),
                       ", ", q(v), ", 0)");
        },
        [&] { return ::fsconfig(fs.get(), FSCONFIG_SET_STRING, key, v.c_str(), 0); });
    if (r == 0) return {};
    return fs_error(fs, cat("set ", key, "=", v, " on ", fs.what));
}

Status fsconfig_flag(const Fd& fs, const char* key) {
    long r = trace::call(
        [&] {
            return cat("fsconfig(", describe_fd(fs.get(), fs.what), ", FSCONFIG_SET_FLAG, ", q(key),
                       ", NULL, 0)");
        },
        [&] { return ::fsconfig(fs.get(), FSCONFIG_SET_FLAG, key, nullptr, 0); });
    if (r == 0) return {};
    return fs_error(fs, cat("set ", key, " on ", fs.what));
}

Status fsconfig_fd(const Fd& fs, const char* key, const Fd& value) {
    long r = trace::call(
        [&] {
            return cat("fsconfig(", describe_fd(fs.get(), fs.what), ", FSCONFIG_SET_FD, ", q(key), ", NULL, ",
                       describe_fd(value.get(), value.what), ")");
        },
        [&] { return ::fsconfig(fs.get(), FSCONFIG_SET_FD, key, nullptr, value.get()); });
    if (r == 0) return {};
    return fs_error(fs, cat("set ", key, "=", value.what, " on ", fs.what));
}

Status fsconfig_create(const Fd& fs) {
    long r = trace::call(
        [&] {
            return cat("fsconfig(", describe_fd(fs.get(), fs.what),
                       ", FSCONFIG_CMD_CREATE, NULL, NULL, 0)");
        },
        [&] { return ::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0); });
    if (r == 0) return {};
    return fs_error(fs, cat("create ", fs.what));
}

Result<Fd> fsmount(const Fd& fs, unsigned attr) {
    long r = trace::call(
        [&] {
            return cat("fsmount(", describe_fd(fs.get(), fs.what), ", FSMOUNT_CLOEXEC, ",
                       attr_flags(attr), ")");
        },
        [&] { return ::fsmount(fs.get(), FSMOUNT_CLOEXEC, attr); }, trace::kNotMadeFd);
    if (r < 0) return fs_error(fs, cat("mount ", fs.what));
    return wrap_fd(r, fs.what);
}

Status move_mount_fd(const Fd& from, const Fd& to) {
    long r = trace::call(
        [&] {
            return cat("move_mount(", describe_fd(from.get(), from.what), ", \"\", ",
                       describe_fd(to.get(), to.what),
                       ", \"\", MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH)");
        },
        [&] {
            return ::move_mount(from.get(), "", to.get(), "",
                                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
        });
    if (r == 0) return {};
    return sys_error(cat("attach ", from.what, " on ", to.what));
}

Result<trace::Made> move_mount_path(const Fd& from, const std::string& to) {
    long r = trace::call(
        [&] {
            return cat("move_mount(", describe_fd(from.get(), from.what), ", \"\", AT_FDCWD, ", q(to),
                       ", MOVE_MOUNT_F_EMPTY_PATH)");
        },
        [&] { return ::move_mount(from.get(), "", AT_FDCWD, to.c_str(), MOVE_MOUNT_F_EMPTY_PATH); });
    if (r == 0)
        return from.made() ? trace::Made::yes : trace::Made::no;  // a stand-in: nothing attached
    return sys_error(cat("attach ", from.what, " on ", to));
}

Status move_mount_at(const Fd& from, const Fd& dir, const std::string& name, std::string_view shown) {
    long r = trace::call(
        [&] {
            return cat("move_mount(", describe_fd(from.get(), from.what), ", \"\", ",
                       describe_fd(dir.get(), dir.what), ", ", q(name), ", MOVE_MOUNT_F_EMPTY_PATH)");
        },
        [&] { return ::move_mount(from.get(), "", dir.get(), name.c_str(), MOVE_MOUNT_F_EMPTY_PATH); });
    if (r == 0) return {};
    return sys_error(cat("attach ", from.what, " on ", shown));
}

Result<Fd> clone_tree(const std::string& path, bool recursive) {
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
    long r = trace::call(
        [&] {
            return cat("open_tree(AT_FDCWD, ", q(path), ", OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC",
                       recursive ? "|AT_RECURSIVE" : "", ")");
        },
        [&] { return ::open_tree(AT_FDCWD, path.c_str(), flags); }, trace::kNotMadeFd);
    if (r < 0) return sys_error(cat("bind source ", path));
    return wrap_fd(r, path);
}

Result<Fd> clone_tree_fd(const Fd& at, bool recursive) {
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    long r = trace::call(
        [&] {
            return cat("open_tree(", describe_fd(at.get(), at.what),
                       ", \"\", OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_EMPTY_PATH",
                       recursive ? "|AT_RECURSIVE" : "", ")");
        },
        [&] { return ::open_tree(at.get(), "", flags); }, trace::kNotMadeFd);
    if (r < 0) return sys_error(cat("clone the mount at ", at.what));
    return wrap_fd(r, at.what);
}

Status mount_setattr(const Fd& at, unsigned set, unsigned clr, bool recursive) {
    struct mount_attr a {};
    a.attr_set = set;
    a.attr_clr = clr;
    unsigned flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    long r = trace::call(
        [&] {
            return cat("mount_setattr(", describe_fd(at.get(), at.what), ", \"\", AT_EMPTY_PATH",
                       recursive ? "|AT_RECURSIVE" : "", ", {attr_set=", attr_flags(set),
                       ", attr_clr=", attr_flags(clr), "})");
        },
        [&] { return ::mount_setattr(at.get(), "", flags, &a, sizeof a); });
    if (r == 0) return {};
    return sys_error(cat("change mount attributes of ", at.what));
}

Result<UniqueFd> openat2(int dirfd, const std::string& path, int flags, unsigned long long resolve,
                         std::string_view what) {
    struct open_how how {};
    how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
    how.resolve = resolve;
    long r = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
    if (r < 0) return sys_error(cat("open ", what));
    return UniqueFd(static_cast<int>(r));
}

Result<Fd> open_dir(const Fd& dir, const std::string& name, std::string what) {
    long r = trace::call(
        [&] {
            return cat("openat(", describe_fd(dir.get(), dir.what), ", ", q(name),
                       ", O_PATH|O_DIRECTORY|O_CLOEXEC)");
        },
        [&] { return ::openat(dir.get(), name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC); },
        trace::kNotMadeFd);
    if (r < 0) return sys_error(cat("open ", what));
    return wrap_fd(r, std::move(what));
}

Status mkdirat(const Fd& dir, const std::string& name, mode_t mode, std::string_view shown) {
    long r = trace::call(
        [&] {
            return cat("mkdirat(", describe_fd(dir.get(), dir.what), ", ", q(name), ", ", mode_str(mode),
                       ")");
        },
        [&] { return ::mkdirat(dir.get(), name.c_str(), mode); });
    if (r == 0) return {};
    return sys_error(cat("create directory ", shown));
}

Status mknodat(const Fd& dir, const std::string& name, mode_t mode, dev_t dev, std::string_view shown) {
    long r = trace::call(
        [&] {
            bool node = S_ISCHR(mode) || S_ISBLK(mode);
            const char* type = S_ISCHR(mode) ? "S_IFCHR|" : S_ISBLK(mode) ? "S_IFBLK|" : "S_IFREG|";
            return cat("mknodat(", describe_fd(dir.get(), dir.what), ", ", q(name), ", ", type,
                       mode_str(mode & 07777), ", ",
                       node ? cat("makedev(", major(dev), ", ", minor(dev), ")") : std::string("0"), ")");
        },
        [&] { return ::mknodat(dir.get(), name.c_str(), mode, dev); });
    if (r == 0) return {};
    return sys_error(cat("create ", shown));
}

Status symlinkat(const std::string& target, const Fd& dir, const std::string& name,
                 std::string_view shown) {
    long r = trace::call(
        [&] {
            return cat("symlinkat(", q(target), ", ", describe_fd(dir.get(), dir.what), ", ", q(name),
                       ")");
        },
        [&] { return ::symlinkat(target.c_str(), dir.get(), name.c_str()); });
    if (r == 0) return {};
    return sys_error(cat("create symlink ", shown));
}

Status touchat(const Fd& dir, const std::string& name, mode_t mode, std::string_view shown) {
    long r = trace::call(
        [&] {
            return cat("openat(", describe_fd(dir.get(), dir.what), ", ", q(name),
                       ", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, ", mode_str(mode), ")");
        },
        [&]() -> long {
            int fd = ::openat(dir.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
            if (fd < 0) return -1;
            ::close(fd);
            return fd;
        });
    if (r >= 0) return {};
    return sys_error(cat("create ", shown));
}

Status copy_file_into(const std::string& src, const Fd& dir, const std::string& name,
                      std::string_view shown) {
    bool src_failed = false;
    long r = trace::call(
        [&] {
            return cat("copy(", q(src), ", ", describe_fd(dir.get(), dir.what), ", ", q(name), ")");
        },
        [&]() -> long {
            int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
            if (in < 0) {
                src_failed = true;
                return -1;
            }
            UniqueFd in_owner(in);
            struct stat st;
            if (::fstat(in, &st) != 0) return -1;
            if (!S_ISREG(st.st_mode)) {
                src_failed = true;
                errno = EINVAL;
                return -1;
            }
            int out = ::openat(dir.get(), name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                               st.st_mode & 07777);
            if (out < 0) return -1;
            UniqueFd out_owner(out);
            char buf[65536];
            long total = 0;
            for (;;) {
                ssize_t n = ::read(in, buf, sizeof buf);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    src_failed = true;
                    return -1;
                }
                if (n == 0) break;
                if (sys::write_all(out, buf, static_cast<size_t>(n)) != 0) return -1;
                total += n;
            }
            return total;
        });
    if (r >= 0) return {};
    if (src_failed) return sys_error(cat("--file source ", src, errno == EINVAL ? " (not a regular file)" : ""));
    return sys_error(cat("write ", shown));
}

}  // namespace kago::mount::ops
