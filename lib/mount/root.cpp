#include "mount/root.hpp"

#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "cgroup/layout.hpp"
#include "core/parse.hpp"
#include "core/sys.hpp"
#include "core/times.hpp"
#include "core/trace.hpp"

namespace kago::mount {
namespace {

constexpr long kOverlayMagic = 0x794c7630;

std::string fs_name(long magic) {
    switch (magic) {
    case 0x794c7630: return "overlayfs";
    case 0x01021994: return "tmpfs";
    case 0xEF53: return "ext4";
    case 0x9123683E: return "btrfs";
    case 0x58465342: return "xfs";
    case 0x6969: return "nfs";
    case 0x65735546: return "fuse";
    case 0x4d44: return "vfat";
    case static_cast<long>(0x858458f6): return "ramfs";
    default: {
        char b[32];
        snprintf(b, sizeof b, "type %#lx", static_cast<unsigned long>(magic));
        return b;
    }
    }
}

Error prefixed(Error e, std::string_view what) {
    e.what = cat(what, ": ", e.what);
    return e;
}

// Run f; on failure prefix the Error's what with the option it came from.
#define TRY_AS(what, expr)                                                   \
    ({                                                                       \
        auto _kago_r = (expr);                                               \
        if (!_kago_r) return prefixed(std::move(_kago_r).error(), (what));   \
        std::move(_kago_r).value();                                          \
    })

class UmaskZero {
  public:
    UmaskZero() : old_(::umask(0)) {}
    ~UmaskZero() { ::umask(old_); }

  private:
    mode_t old_;
};

Status check_dir(const std::string& path, std::string_view what) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return sys_error(cat(what, " ", path));
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return sys_error(cat(what, " ", path));
    }
    if (::access(path.c_str(), R_OK | X_OK) != 0) return sys_error(cat(what, " ", path));
    return {};
}

// A new filesystem of fstype, attached on `at`. source is what mountinfo
// shows as the mount's source ("proc", "tmpfs", "shm"), as runc and crun
// set it.
using Options = std::vector<std::pair<std::string, std::string>>;

Status mount_new(const char* fstype, const char* source, const ops::Fd& at, unsigned attr, const Options& options) {
    auto fs = TRY(ops::fsopen(fstype, at.what));
    TRY(ops::fsconfig_string(fs, "source", source));
    for (const auto& [k, v] : options) TRY(ops::fsconfig_string(fs, k.c_str(), v));
    TRY(ops::fsconfig_create(fs));
    auto m = TRY(ops::fsmount(fs, attr));
    return ops::move_mount_fd(m, at);
}

// Bind the host path src on `at` (with its children when recursive), with
// the MOUNT_ATTR_* flags attr added.
Status bind_on(const std::string& src, const ops::Fd& at, unsigned attr, bool recursive) {
    auto t = TRY(ops::clone_tree(src, recursive));
    if (attr) TRY(ops::mount_setattr(t, attr, 0, recursive));
    return ops::move_mount_fd(t, at);
}

// A path in the root, or nothing when this kernel does not have it.
Result<std::optional<ops::Fd>> open_if_present(const Root& root, const char* path, std::string_view what) {
    auto at = open_in_root(root, path, Create::none, 0, what);
    if (!at && at.error().err == ENOENT) return std::optional<ops::Fd>();
    return std::optional<ops::Fd>(TRY(std::move(at)));
}

constexpr unsigned kMaskAttr = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

// Hide path: an empty read-only tmpfs over a directory, /dev/null over
// anything else. A path that does not exist is skipped.
Status mask_one(const Root& root, const std::string& path, std::string_view what) {
    auto found = TRY(open_if_present(root, path.c_str(), what));
    if (!found) return {};
    auto& at = *found;
    if (TRY_AS(what, ops::is_dir(at)))
        TRY_AS(what, mount_new("tmpfs", "tmpfs", at, kMaskAttr, {{"size", "0"}}));
    else
        TRY_AS(what, bind_on("/dev/null", at, 0, false));
    return {};
}

// Make path (and the mounts below it) read-only. Missing: skipped.
Status read_only_one(const Root& root, const std::string& path, std::string_view what) {
    auto found = TRY(open_if_present(root, path.c_str(), what));
    if (!found) return {};
    auto& at = *found;
    auto t = TRY_AS(what, ops::clone_tree_fd(at, true));
    TRY_AS(what, ops::mount_setattr(t, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, true));
    TRY_AS(what, ops::move_mount_fd(t, at));
    return {};
}

bool under(std::string_view path, std::string_view dir) {
    return path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/';
}

// The default lists' entries under dir (/proc or /sys).
Status mask_defaults(const Root& root, std::string_view dir, std::string_view what) {
    for (const auto& p : default_masked_paths())
        if (under(p, dir)) TRY(mask_one(root, p, what));
    for (const auto& p : default_read_only_paths())
        if (under(p, dir)) TRY(read_only_one(root, p, what));
    return {};
}

// The overlay's upper and work directories: by descriptor (on a detached
// mount, so that mountinfo shows no host path), with their paths for
// kernels that take layers only by path. An empty upper_path: no upper.
struct UpperDirs {
    ops::Fd upper, work;
    std::string upper_path, work_path;
    ops::Fd tmpfs;   // --tmp-upper: the detached tmpfs that holds both
    ops::Fd parent;  // --upper DIR: the detached clone that holds both, open until overlay has them
};

// Give overlay its layers. By descriptor first (FSCONFIG_SET_FD, Linux
// 6.13): each layer is a detached clone of its mount (open_tree), so that
// the mount's options read "lowerdir+=/" and name no host directory. A
// kernel that refuses gets the paths.
// The clones stay open in `held` until the overlay is created: closing a
// detached mount unmounts it, and overlay would refuse it.
Status overlay_layers(const RootSpec& spec, const ops::Fd& fs, bool& by_fd, std::vector<ops::Fd>& held) {
    by_fd = true;
    for (auto it = spec.layers.rbegin(); it != spec.layers.rend(); ++it) {
        const auto& layer = held.emplace_back(TRY_AS("--layer", ops::clone_tree(*it, false)));
        auto r = ops::fsconfig_fd(fs, "lowerdir+", layer);
        if (!r && it == spec.layers.rbegin() && r.error().err == EINVAL) {
            by_fd = false;
            break;
        }
        if (!r) return prefixed(std::move(r).error(), "--layer");
    }
    if (by_fd) return {};
    // lowerdir+ (Linux 6.8) takes one layer per call, the topmost first, so
    // that any number of layers fits; older kernels get one lowerdir string.
    bool appended = true;
    for (auto it = spec.layers.rbegin(); it != spec.layers.rend(); ++it) {
        auto r = ops::fsconfig_string(fs, "lowerdir+", *it);
        if (!r) {
            if (it == spec.layers.rbegin() && r.error().err == EINVAL) {
                appended = false;
                break;
            }
            return prefixed(std::move(r).error(), "--layer");
        }
    }
    if (appended) return {};
    std::string lower;
    for (auto it = spec.layers.rbegin(); it != spec.layers.rend(); ++it) {
        if (!lower.empty()) lower += ':';
        for (char c : *it) {
            if (c == ':' || c == ',' || c == '\\') lower += '\\';
            lower += c;
        }
    }
    auto r = ops::fsconfig_string(fs, "lowerdir", lower);
    if (!r)
        return prefixed(std::move(r).error(), "--layer").with_hint(
            "this kernel takes all layers in one mount option page; use fewer or shorter layer paths");
    return {};
}

Result<trace::Made> mount_overlay(const RootSpec& spec, const Context& ctx, UpperDirs& dirs,
                                  Undo& undo) {
    auto fs = TRY(ops::fsopen("overlay", spec.target));
    TRY(ops::fsconfig_string(fs, "source", "overlay"));
    bool by_fd = false;
    std::vector<ops::Fd> layers;
    TRY(overlay_layers(spec, fs, by_fd, layers));
    if (!by_fd && dirs.tmpfs.get() >= 0) {
        // Paths only: the tmp-upper must be attached to have one.
        trace::Made made = TRY_AS("--tmp-upper", ops::move_mount_path(dirs.tmpfs, spec.target));
        undo.add(made, [t = spec.target] { (void)sys::umount2(t.c_str(), MNT_DETACH); });
    }
    if (!dirs.upper_path.empty()) {
        for (auto [key, fd, path] : {std::tuple{"upperdir", &dirs.upper, &dirs.upper_path},
                                     std::tuple{"workdir", &dirs.work, &dirs.work_path}}) {
            auto r = by_fd && fd->usable() ? ops::fsconfig_fd(fs, key, *fd)
                                           : ops::fsconfig_string(fs, key, *path);
            if (!r) {
                Error e = prefixed(std::move(r).error(), "--upper");
                e.hint = cat(e.hint.empty() ? "overlay refuses this upper directory" : e.hint,
                             "; use --tmp-upper, or an --upper on a filesystem overlay accepts");
                return e;
            }
        }
    }
    // In a user namespace overlay reads its own xattrs (opaque directories,
    // from image-layers too) as user.overlay.*, with or without an upper.
    if (ctx.in_userns) TRY_AS(dirs.upper_path.empty() ? "--layer" : "--upper", ops::fsconfig_flag(fs, "userxattr"));
    auto created = ops::fsconfig_create(fs);
    if (!created) {
        Error e = std::move(created).error();
        std::string kernel = e.hint;
        if (spec.upper.kind == UpperKind::dir) {
            struct statfs sf {};
            std::string type = ::statfs(spec.upper.dir.c_str(), &sf) == 0 ? fs_name(sf.f_type) : "?";
            e = prefixed(std::move(e), "--upper");
            e.hint = cat("overlay refuses an upper directory on ", type,
                         " (it needs xattrs, d_type and a workdir on the same mount); use --tmp-upper");
        } else if (ctx.in_userns) {
            e = prefixed(std::move(e), "--layer");
            e.hint = "in a user namespace, overlay needs Linux 5.11 and layers on a filesystem that allows it";
        } else {
            e = prefixed(std::move(e), "--layer");
        }
        if (e.err == ELOOP)
            e.hint = "overlay refuses overlapping layers: a layer given twice, or one inside another";
        if (!kernel.empty()) e.hint += cat(" (", kernel, ")");
        return e;
    }
    // The detached mounts overlay took its layers from are attached under
    // the overlay, on the target: closed detached, each would cost an RCU
    // grace period (~0.3 ms); attached, they go with the old root, in the
    // one unmount that detaches it. Their options named no path already.
    if (by_fd) {
        for (ops::Fd* held : {&dirs.tmpfs, &dirs.parent})
            if (held->get() >= 0) layers.push_back(std::move(*held));
        for (auto& l : layers) {
            if (!l.made()) continue;  // a dry run's stand-in: nothing to attach
            trace::Made made = TRY_AS("--layer", ops::move_mount_path(l, spec.target));
            undo.add(made, [t = spec.target] { (void)sys::umount2(t.c_str(), MNT_DETACH); });
        }
    }
    // nodev: a device node in a layer, or one made in the upper, does not open.
    auto m = TRY_AS("--layer", ops::fsmount(fs, MOUNT_ATTR_NODEV | (spec.nosuid ? MOUNT_ATTR_NOSUID : 0)));
    return ops::move_mount_path(m, spec.target);
}

// --tmp-upper: a tmpfs that is never attached; overlay gets its upper and
// work directories by descriptor.
Status tmp_upper(const RootSpec& spec, UpperDirs& dirs) {
    auto fs = TRY_AS("--tmp-upper", ops::fsopen("tmpfs", "--tmp-upper"));
    TRY_AS("--tmp-upper", ops::fsconfig_string(fs, "mode", "0755"));
    if (spec.upper.size) TRY_AS("--tmp-upper", ops::fsconfig_string(fs, "size", std::to_string(spec.upper.size)));
    TRY_AS("--tmp-upper", ops::fsconfig_create(fs));
    dirs.tmpfs = TRY_AS("--tmp-upper", ops::fsmount(fs, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
    dirs.tmpfs.what = "the --tmp-upper tmpfs";
    TRY_AS("--tmp-upper", ops::mkdirat(dirs.tmpfs, "upper", 0755, "the --tmp-upper tmpfs' upper"));
    TRY_AS("--tmp-upper", ops::mkdirat(dirs.tmpfs, "work", 0700, "the --tmp-upper tmpfs' work"));
    dirs.upper = TRY_AS("--tmp-upper", ops::open_dir(dirs.tmpfs, "upper", "upper"));
    dirs.work = TRY_AS("--tmp-upper", ops::open_dir(dirs.tmpfs, "work", "work"));
    dirs.upper_path = spec.target + "/upper";
    dirs.work_path = spec.target + "/work";
    return {};
}

// --upper DIR: DIR and DIR.work by descriptor, through a detached clone of
// the mount of their parent. When DIR or its workdir is a mount point of
// its own, the clone does not show it: then the paths are used.
Status dir_upper_fds(UpperDirs& dirs) {
    auto slash = dirs.upper_path.rfind('/');
    // A relative DIR without a slash ("changes") lies in the current directory.
    std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : dirs.upper_path.substr(0, slash);
    std::string base = slash == std::string::npos ? dirs.upper_path : dirs.upper_path.substr(slash + 1);
    dirs.parent = TRY_AS("--upper", ops::clone_tree(parent, false));
    // Named by the user's path, for the messages.
    dirs.upper = TRY_AS("--upper", ops::open_dir(dirs.parent, base, dirs.upper_path));
    dirs.work = TRY_AS("--upper", ops::open_dir(dirs.parent, base + ".work", dirs.work_path));
    if (!dirs.upper.made()) return {};  // a dry run: nothing opened to compare
    struct stat a, b;
    for (auto [fd, path] : {std::pair{&dirs.upper, &dirs.upper_path}, std::pair{&dirs.work, &dirs.work_path}}) {
        if (::fstat(fd->get(), &a) != 0 || ::stat(path->c_str(), &b) != 0 || a.st_dev != b.st_dev ||
            a.st_ino != b.st_ino) {
            dirs.upper = {};
            dirs.work = {};
            return {};
        }
    }
    return {};
}

}  // namespace

bool uid_map_is_initial(std::string_view uid_map) {
    std::vector<std::string> f;
    for (auto& w : parse::split(uid_map, ' '))
        for (auto& x : parse::split(w, '\n'))
            if (!x.empty()) f.push_back(x);
    return f.size() == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295";
}

size_t nspid_depth(std::string_view status) {
    auto pos = status.find("\nNSpid:");
    if (pos == std::string_view::npos) {
        if (status.substr(0, 6) != "NSpid:") return 0;
        pos = 0;
    } else {
        pos += 1;
    }
    auto end = status.find('\n', pos);
    std::string_view line = status.substr(pos + 6, end == std::string_view::npos ? end : end - pos - 6);
    size_t n = 0;
    bool in = false;
    for (char c : line) {
        bool ws = c == ' ' || c == '\t';
        if (!ws && !in) ++n;
        in = !ws;
    }
    return n;
}

namespace {
// The parent of `pid` as /proc numbers it, 0 when unknown. Reading
// /proc/self/stat rather than getppid(): in a new PID namespace whose /proc
// is still the host's, the parent's host number is what /proc shows.
pid_t parent_of(const char* pid) {
    auto st = sys::read_file(cat("/proc/", pid, "/stat").c_str());
    if (!st) return 0;
    auto paren = st->rfind(')');
    if (paren == std::string::npos || paren + 4 >= st->size()) return 0;
    return static_cast<pid_t>(strtol(st->c_str() + paren + 4, nullptr, 10));
}

// The ancestors /proc shows, nearest first, each read once however many
// namespace types are compared along them (a walk reads a /proc/PID/stat
// per step, and the root of a chain is often ten steps from PID 1).
class Ancestors {
  public:
    // The i-th ancestor, or 0 past the last.
    pid_t at(size_t i) {
        while (pids_.size() <= i && !done_) {
            pid_t next = pids_.empty()       ? parent_of("self")
                         : pids_.back() == 1 ? 0
                                             : parent_of(std::to_string(pids_.back()).c_str());
            if (next <= 0 || pids_.size() >= 64)
                done_ = true;
            else
                pids_.push_back(next);
        }
        return i < pids_.size() ? pids_[i] : 0;
    }

  private:
    std::vector<pid_t> pids_;
    bool done_ = false;
};

bool same_ns(const struct stat& a, const struct stat& b) {
    return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

bool own_namespace(const char* type, bool in_userns, Ancestors& up) {
    std::string self_path = cat("/proc/self/ns/", type);
    struct stat self;
    if (::stat(self_path.c_str(), &self) != 0) return false;
    // Made in our user namespace (not the initial one): the chain made it.
    if (in_userns) {
        UniqueFd ns(::open(self_path.c_str(), O_RDONLY | O_CLOEXEC));
        UniqueFd owner(ns ? ::ioctl(ns.get(), NS_GET_USERNS) : -1);
        struct stat o, u;
        if (owner && ::fstat(owner.get(), &o) == 0 && ::stat("/proc/self/ns/user", &u) == 0 &&
            same_ns(o, u))
            return true;
    }
    // Another one than an ancestor's (as /proc numbers them: the parent of
    // a PID namespace's first process is seen too, while /proc is still
    // the host's): someone between it and us made ours.
    for (size_t i = 0; pid_t pid = up.at(i); ++i) {
        struct stat a;
        if (::stat(cat("/proc/", pid, "/ns/", type).c_str(), &a) == 0 && !same_ns(a, self))
            return true;
    }
    return false;
}
}  // namespace

bool in_user_namespace() {
    auto m = sys::read_file("/proc/self/uid_map");
    return m && !uid_map_is_initial(*m);
}

bool own_namespace(const char* type) {
    Ancestors up;
    return own_namespace(type, in_user_namespace(), up);
}

Context detect_context(const RootSpec& spec) {
    // Only what this spec's mounts depend on: each answer costs /proc reads
    // at every start.
    Context c;
    Ancestors up;
    c.in_userns = in_user_namespace();
    if (spec.dev && spec.mqueue != Want::no) c.own_ipcns = own_namespace("ipc", c.in_userns, up);
    if (spec.sys && spec.cgroupfs != Want::no)
        c.own_cgroupns = own_namespace("cgroup", c.in_userns, up);
    if (spec.proc) {
        auto self = sys::read_file("/proc/self/status");
        auto init = sys::read_file("/proc/1/status");
        if (self) c.in_pidns = nspid_depth(*self) > (init ? nspid_depth(*init) : 1);
    }
    // Not made by anyone for us: neither owned by our user namespace nor
    // other than an ancestor's (the walk reads on until an ancestor it
    // cannot see, such as one outside our user namespace).
    c.host_mntns = !own_namespace("mnt", c.in_userns, up);
    return c;
}

void Undo::add(trace::Made made, std::function<void()> f) {
    if (made == trace::Made::no) return;
    actions_.push_back(std::move(f));
}

void Undo::run() {
    while (!actions_.empty()) {
        auto f = std::move(actions_.back());
        actions_.pop_back();
        f();
    }
}

Status make_private() { return sys::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr); }

Result<Root> assemble_root(const RootSpec& spec, const Context& ctx, Undo& undo) {
    for (const auto& l : spec.layers) TRY(check_dir(l, "--layer"));
    UpperDirs dirs;
    std::string& upper = dirs.upper_path;
    std::string& work = dirs.work_path;
    if (spec.upper.kind == UpperKind::dir) {
        upper = spec.upper.dir;
        while (upper.size() > 1 && upper.back() == '/') upper.pop_back();
        work = workdir_for(upper);
        struct stat st;
        if (::stat(upper.c_str(), &st) != 0) {
            if (errno != ENOENT) return sys_error(cat("--upper ", upper));
            trace::Made made = TRY_AS("--upper", sys::mkdir(upper.c_str(), 0755, false));
            undo.add(made, [upper] { ::rmdir(upper.c_str()); });
        } else if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return sys_error(cat("--upper ", upper));
        }
        struct statfs sf {};
        if (::statfs(upper.c_str(), &sf) == 0 && sf.f_type == kOverlayMagic) {
            errno = EINVAL;
            return sys_error(cat("--upper ", upper, ": the directory is on overlayfs"))
                .with_hint("overlay cannot use an overlayfs directory as its upper layer; use --tmp-upper "
                           "or an --upper on another filesystem");
        }
        struct stat ws;
        if (::stat(work.c_str(), &ws) != 0) {
            trace::Made made = TRY_AS("--upper", sys::mkdir(work.c_str(), 0700, false));
            undo.add(made, [work] { ::rmdir(work.c_str()); });
        }
        struct stat us;
        if (::stat(upper.c_str(), &us) == 0 && ::stat(work.c_str(), &ws) == 0 &&
            us.st_dev != ws.st_dev) {
            errno = EXDEV;
            return sys_error(cat("--upper ", upper, ": its workdir ", work, " is on another filesystem"))
                .with_hint("the upper directory is a mount point; use a directory inside it");
        }
    }
    struct stat ts;
    if (::stat(spec.target.c_str(), &ts) != 0) {
        trace::Made made = TRY_AS("--target", sys::mkdir_p(spec.target, 0755));
        undo.add(made, [t = spec.target] { ::rmdir(t.c_str()); });
    } else if (!S_ISDIR(ts.st_mode)) {
        errno = ENOTDIR;
        return sys_error(cat("--target ", spec.target));
    }
    if (spec.upper.kind == UpperKind::tmpfs) TRY(tmp_upper(spec, dirs));
    if (spec.upper.kind == UpperKind::dir) TRY(dir_upper_fds(dirs));
    trace::Made attached;
    if (spec.layers.size() == 1 && upper.empty()) {
        auto t = TRY_AS("--layer", ops::clone_tree(spec.layers[0], true));
        TRY_AS("--layer", ops::mount_setattr(t, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | (spec.nosuid ? MOUNT_ATTR_NOSUID : 0),
                                             0, true));
        attached = TRY_AS("--layer", ops::move_mount_path(t, spec.target));
    } else {
        attached = TRY(mount_overlay(spec, ctx, dirs, undo));
    }
    undo.add(attached, [t = spec.target] { (void)sys::umount2(t.c_str(), MNT_DETACH); });
    Root root;
    root.path = spec.target;
    root.fd = TRY(ops::open_path(spec.target));
    return root;
}

Status mount_proc(const Root& root, bool mask) {
    auto at = TRY(open_in_root(root, "/proc", Create::dir, 0555, "--proc"));
    auto r = mount_new("proc", "proc", at, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, {});
    if (!r)
        return prefixed(std::move(r).error(), "--proc")
            .with_hint("a new procfs needs a PID namespace owned by this user namespace (unshare-run --pid) "
                       "and a /proc that is not partly hidden");
    if (mask) TRY(mask_defaults(root, "/proc", "--proc"));
    return {};
}

namespace {

std::string octal(mode_t m) {
    char b[16];
    snprintf(b, sizeof b, "0%o", static_cast<unsigned>(m));
    return b;
}

// A tmpfs as a --tmpfs step asks for it: nosuid always, nodev unless dev,
// mode 0755 unless given.
Status mount_tmpfs_step(const ops::Fd& at, const char* source, const Step& st) {
    unsigned attr = MOUNT_ATTR_NOSUID | (st.dev ? 0 : MOUNT_ATTR_NODEV) | (st.noexec ? MOUNT_ATTR_NOEXEC : 0) |
                    (st.read_only ? MOUNT_ATTR_RDONLY : 0);
    Options o = {{"mode", octal(st.mode ? st.mode : 0755)}};
    if (st.size) o.emplace_back("size", std::to_string(st.size));
    return mount_new("tmpfs", source, at, attr, o);
}

}  // namespace

Status mount_dev(const Root& root, const Context& ctx, const Step* shm) {
    auto at = TRY(open_in_root(root, "/dev", Create::dir, 0755, "--dev"));
    // A nodev tmpfs: a node made in it with mknod does not open. The allowed
    // devices are the host's own nodes, bound in (a bind keeps the host
    // devtmpfs' flags), as bubblewrap does. The spec's size and mode;
    // nodev and noexec beyond its options.
    TRY_AS("--dev", mount_new("tmpfs", "tmpfs", at,
                              MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_STRICTATIME,
                              {{"mode", "0755"}, {"size", "65536"}}));
    auto dev = TRY(open_in_root(root, "/dev", Create::none, 0, "--dev"));
    // For each node: an empty file (mknodat S_IFREG) in the new tmpfs, and
    // a clone of the host's node attached on it through /dev's descriptor.
    static const char* const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    for (const char* n : nodes) {
        std::string path = cat("/dev/", n);
        TRY_AS("--dev", ops::mknodat(dev, n, S_IFREG | 0666, 0, root.shown(path)));
        auto node = ops::clone_tree(path, false);
        if (!node) return prefixed(std::move(node).error(), "--dev").with_hint("the host's /dev lacks this device");
        TRY_AS("--dev", ops::move_mount_at(*node, dev, n, root.shown(path)));
    }
    TRY_AS("--dev", ops::mkdirat(dev, "pts", 0755, root.shown("/dev/pts")));
    TRY_AS("--dev", ops::mkdirat(dev, "shm", 01777, root.shown("/dev/shm")));
    auto pts = TRY(open_in_root(root, "/dev/pts", Create::none, 0, "--dev"));
    {
        auto fs = TRY_AS("--dev", ops::fsopen("devpts", pts.what));
        TRY_AS("--dev", ops::fsconfig_string(fs, "source", "devpts"));
        TRY_AS("--dev", ops::fsconfig_flag(fs, "newinstance"));
        TRY_AS("--dev", ops::fsconfig_string(fs, "ptmxmode", "0666"));
        TRY_AS("--dev", ops::fsconfig_string(fs, "mode", "0620"));
        if (!ctx.in_userns) TRY_AS("--dev", ops::fsconfig_string(fs, "gid", "5"));
        TRY_AS("--dev", ops::fsconfig_create(fs));
        auto m = TRY_AS("--dev", ops::fsmount(fs, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC));
        TRY_AS("--dev", ops::move_mount_fd(m, pts));
    }
    // /dev/shm: the spec's tmpfs (64 MiB, 1777, nosuid noexec nodev), or
    // the user's --tmpfs /dev/shm in its place.
    {
        auto at_shm = TRY(open_in_root(root, "/dev/shm", Create::none, 0, "--dev"));
        if (shm) {
            TRY_AS("--tmpfs /dev/shm", mount_tmpfs_step(at_shm, "shm", *shm));
        } else {
            TRY_AS("--dev", mount_new("tmpfs", "shm", at_shm, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                                      {{"mode", "01777"}, {"size", "67108864"}}));
        }
    }
    static const std::pair<const char*, const char*> links[] = {
        {"pts/ptmx", "ptmx"},         {"/proc/self/fd", "fd"},        {"/proc/self/fd/0", "stdin"},
        {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"}};
    for (const auto& [target, name] : links)
        TRY_AS("--dev", ops::symlinkat(target, dev, name, root.shown(cat("/dev/", name))));
    return {};
}

Status mount_mqueue(const Root& root) {
    auto at = TRY(open_in_root(root, "/dev/mqueue", Create::dir, 0755, "--mqueue"));
    auto r = mount_new("mqueue", "mqueue", at, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, {});
    if (!r)
        return prefixed(std::move(r).error(), "--mqueue")
            .with_hint("mqueue needs an IPC namespace of the container's own (unshare-run --ipc); or --no-mqueue");
    return {};
}

Status mount_sys(const Root& root, const Context& ctx, bool mask) {
    auto at = TRY(open_in_root(root, "/sys", Create::dir, 0555, "--sys"));
    auto r = mount_new("sysfs", "sysfs", at,
                       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, {});
    if (!r) {
        Error e = prefixed(std::move(r).error(), "--sys");
        if (ctx.in_userns)
            e.hint = "in a user namespace sysfs needs a network namespace of its own (unshare-run --net); "
                     "or use --bind /sys:/sys:ro";
        return e;
    }
    if (mask) TRY(mask_defaults(root, "/sys", "--sys"));
    return {};
}

std::vector<CgroupMount> parse_cgroup_mounts(std::string_view mountinfo) {
    std::vector<CgroupMount> out;
    for (auto& c : cgroup::parse_cgroup_mountinfo(mountinfo)) {
        const std::string& mp = c.point;
        bool top = mp == "/sys/fs/cgroup";
        bool child = mp.size() > 15 && mp.substr(0, 15) == "/sys/fs/cgroup/" &&
                     mp.find('/', 15) == std::string::npos;
        if (!top && !child) continue;
        // A cgroupfs on /sys/fs/cgroup itself (v2) hides what was below.
        if (top) out.clear();
        else if (!out.empty() && out.front().mount_point == "/sys/fs/cgroup") continue;
        // Mounted over again: the last one is the one seen.
        std::erase_if(out, [&](const CgroupMount& o) { return o.mount_point == mp; });
        out.push_back({std::move(c.root), std::move(c.point), c.v2, std::move(c.controllers)});
    }
    return out;
}

std::optional<std::string> cgroup_path_for(std::string_view proc_cgroup, const CgroupMount& m) {
    for (const auto& [id, ctrls, path] : cgroup::split_proc_cgroup(proc_cgroup)) {
        bool match;
        if (m.v2) {
            match = id == "0" && ctrls.empty();
        } else {
            auto have = parse::split(ctrls, ',');
            auto want = m.controllers;
            std::sort(have.begin(), have.end());
            std::sort(want.begin(), want.end());
            match = !ctrls.empty() && have == want;
        }
        if (!match) continue;
        if (m.root == "/") return path;
        if (path == m.root) return std::string("/");
        if (path.size() > m.root.size() && path.substr(0, m.root.size()) == m.root && path[m.root.size()] == '/')
            return path.substr(m.root.size());
        return std::nullopt;  // our cgroup is not below this mount's root
    }
    return std::nullopt;
}

namespace {

constexpr unsigned kCgroupAttr = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

// One hierarchy on `at`: a new cgroupfs in our cgroup namespace, or else
// our own cgroup of the host's mount, bound read-only.
Status cgroup_one(const CgroupMount& m, const std::string& proc_cgroup, const Context& ctx, const ops::Fd& at) {
    if (ctx.own_cgroupns) {
        auto fs = TRY(ops::fsopen(m.v2 ? "cgroup2" : "cgroup", at.what));
        TRY(ops::fsconfig_string(fs, "source", "cgroup"));
        for (const auto& c : m.controllers) {
            if (c.substr(0, 5) == "name=") TRY(ops::fsconfig_string(fs, "name", c.substr(5)));
            else TRY(ops::fsconfig_flag(fs, c.c_str()));
        }
        TRY(ops::fsconfig_create(fs));
        auto mnt = TRY(ops::fsmount(fs, kCgroupAttr));
        return ops::move_mount_fd(mnt, at);
    }
    auto rel = cgroup_path_for(proc_cgroup, m);
    if (!rel) {
        errno = ENOENT;
        return sys_error(cat("our cgroup in ", m.mount_point, " (see /proc/self/cgroup)"));
    }
    std::string src = *rel == "/" ? m.mount_point : m.mount_point + *rel;
    return bind_on(src, at, kCgroupAttr, false);
}

}  // namespace

Status mount_cgroupfs(const Root& root, const Context& ctx, bool asked) {
    const char* what = "--cgroupfs";
    auto mi = TRY(sys::read_file("/proc/self/mountinfo"));
    auto pc = TRY(sys::read_file("/proc/self/cgroup"));
    auto mounts = parse_cgroup_mounts(mi);
    if (mounts.empty()) {
        if (!asked) return {};
        errno = ENOENT;
        return sys_error(cat(what, ": no cgroup filesystem on the host's /sys/fs/cgroup"));
    }
    auto at = TRY(open_in_root(root, "/sys/fs/cgroup", Create::none, 0, what));
    auto hint = [&](Error e) {
        e = prefixed(std::move(e), what);
        if (e.hint.empty())
            e.hint = ctx.own_cgroupns ? "or leave /sys/fs/cgroup empty with --no-cgroupfs"
                                      : "a cgroup namespace of the container's own (unshare-run --cgroup) gives it a "
                                        "new cgroupfs; or --no-cgroupfs";
        return e;
    };
    if (mounts.size() == 1 && mounts[0].mount_point == "/sys/fs/cgroup") {
        auto r = cgroup_one(mounts[0], pc, ctx, at);
        if (!r) return hint(std::move(r).error());
        return {};
    }
    // v1 (or hybrid): a tmpfs with a directory per hierarchy, read-only
    // once they are mounted, as runc makes it.
    auto fs = TRY_AS(what, ops::fsopen("tmpfs", at.what));
    TRY_AS(what, ops::fsconfig_string(fs, "source", "tmpfs"));
    TRY_AS(what, ops::fsconfig_string(fs, "mode", "0755"));
    TRY_AS(what, ops::fsconfig_string(fs, "size", "65536"));
    TRY_AS(what, ops::fsconfig_create(fs));
    auto tm = TRY_AS(what, ops::fsmount(fs, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
    TRY_AS(what, ops::move_mount_fd(tm, at));
    auto dir = TRY(open_in_root(root, "/sys/fs/cgroup", Create::none, 0, what));
    for (const auto& m : mounts) {
        std::string name = m.mount_point.substr(15);
        std::string shown = root.shown(m.mount_point);
        TRY_AS(what, ops::mkdirat(dir, name, 0555, shown));
        auto sub = TRY(open_in_root(root, m.mount_point, Create::none, 0, what));
        auto r = cgroup_one(m, pc, ctx, sub);
        if (!r) return hint(std::move(r).error());
        // cpu,cpuacct: cpu -> cpu,cpuacct and cpuacct -> cpu,cpuacct.
        if (name.find(',') != std::string::npos)
            for (const auto& part : parse::split(name, ','))
                TRY_AS(what, ops::symlinkat(name, dir, part, root.shown("/sys/fs/cgroup/" + part)));
    }
    TRY_AS(what, ops::mount_setattr(tm, MOUNT_ATTR_RDONLY, 0, false));
    return {};
}

Status mask_paths(const Root& root, const RootSpec& spec) {
    for (const auto& p : spec.masked) TRY(mask_one(root, p, cat("--mask ", p)));
    for (const auto& p : spec.read_only_paths) TRY(read_only_one(root, p, cat("--read-only-path ", p)));
    return {};
}

Status bind_etc_files(const Root& root, const RootSpec& spec) {
    const std::pair<const std::string*, const char*> files[] = {
        {&spec.hosts, "/etc/hosts"}, {&spec.hostname, "/etc/hostname"}, {&spec.resolv, "/etc/resolv.conf"}};
    for (const auto& [src, dst] : files) {
        if (src->empty()) continue;
        const char* opt = std::string_view(dst) == "/etc/resolv.conf" ? "--resolv" : "--hosts";
        auto at = TRY(open_in_root(root, dst, Create::file, 0644, opt));
        TRY_AS(opt, bind_on(*src, at, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV, false));
    }
    return {};
}

Status apply_step(const Root& root, const Step& st) {
    std::string what = cat(step_option(st.kind), " ", st.dst);
    switch (st.kind) {
    case StepKind::bind: {
        struct stat s;
        if (::stat(st.src.c_str(), &s) != 0) return sys_error(cat("--bind source ", st.src));
        auto at = TRY(open_in_root(root, st.dst, S_ISDIR(s.st_mode) ? Create::dir : Create::file, 0,
                                   cat("--bind ", st.src)));
        unsigned attr = (st.read_only ? MOUNT_ATTR_RDONLY : 0) | (st.dev ? 0 : MOUNT_ATTR_NODEV);
        auto r = bind_on(st.src, at, attr, true);
        if (!r) return prefixed(std::move(r).error(), "--bind");
        return {};
    }
    case StepKind::tmpfs: {
        auto at = TRY(open_in_root(root, st.dst, Create::dir, 0755, what));
        auto r = mount_tmpfs_step(at, "tmpfs", st);
        if (!r) return prefixed(std::move(r).error(), "--tmpfs");
        return {};
    }
    case StepKind::symlink: {
        auto p = TRY(open_parent_in_root(root, st.dst, what));
        auto r = ops::symlinkat(st.src, p.dir, p.name, root.shown(st.dst));
        if (!r && r.error().err == EEXIST) {
            char buf[PATH_MAX];
            ssize_t n = ::readlinkat(p.dir.get(), p.name.c_str(), buf, sizeof buf);
            if (n >= 0 && std::string_view(buf, static_cast<size_t>(n)) == st.src) return {};
        }
        if (!r) return prefixed(std::move(r).error(), "--symlink");
        return {};
    }
    case StepKind::mkdir: {
        auto at = TRY(open_in_root(root, st.dst, Create::dir, st.mode ? st.mode : 0755, what));
        (void)at;
        return {};
    }
    case StepKind::file: {
        auto p = TRY(open_parent_in_root(root, st.dst, what));
        auto r = ops::copy_file_into(st.src, p.dir, p.name, root.shown(st.dst));
        if (!r) {
            Error e = prefixed(std::move(r).error(), "--file");
            if (e.err == EROFS) e.hint = "the root is read-only: add --tmp-upper or --upper DIR";
            return e;
        }
        return {};
    }
    case StepKind::chdir:
        return {};  // done by apply() after the pivot
    }
    return {};
}

Status make_read_only(const Root& root) {
    auto r = ops::mount_setattr(root.fd, MOUNT_ATTR_RDONLY, 0, false);
    if (!r) return prefixed(std::move(r).error(), "--read-only");
    return {};
}

Status pivot(const Root& root) {
    TRY_AS("--pivot", sys::chdir(root.path.c_str()));
    auto r = sys::pivot_root(".", ".");
    if (!r) return prefixed(std::move(r).error(), "--pivot");
    times::mark("mount: pivot_root");
    TRY_AS("--pivot", sys::umount2(".", MNT_DETACH));
    TRY_AS("--pivot", sys::chdir("/"));
    return {};
}

Status apply(const RootSpec& spec, const Context& ctx, Undo& undo) {
    TRY(validate(spec));
    UmaskZero umask_zero;
    TRY(make_private());
    auto root = TRY(assemble_root(spec, ctx, undo));
    times::mark("mount: root assembled");
    // The spec's order: /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys,
    // /sys/fs/cgroup; a --tmpfs /dev/shm takes the default's place.
    const Step* shm = nullptr;
    if (spec.dev)
        for (const auto& st : spec.steps)
            if (st.kind == StepKind::tmpfs && st.dst == "/dev/shm") shm = &st;
    if (spec.proc) TRY(mount_proc(root, spec.mask));
    times::mark("mount: /proc");
    if (spec.dev) TRY(mount_dev(root, ctx, shm));
    times::mark("mount: /dev");
    if (spec.dev && spec.mqueue == Want::yes && !ctx.own_ipcns) {
        errno = EPERM;
        return sys_error("--mqueue: the IPC namespace is not the container's own")
            .with_hint("its message queues would be the host's: add unshare-run --ipc");
    }
    if (spec.dev && (spec.mqueue == Want::yes || (spec.mqueue == Want::by_default && ctx.own_ipcns)))
        TRY(mount_mqueue(root));
    if (spec.sys) TRY(mount_sys(root, ctx, spec.mask));
    if (spec.sys && spec.cgroupfs != Want::no) TRY(mount_cgroupfs(root, ctx, spec.cgroupfs == Want::yes));
    TRY(bind_etc_files(root, spec));
    const Step* chdir = nullptr;
    for (const auto& st : spec.steps) {
        if (&st == shm) continue;
        TRY(apply_step(root, st));
        if (st.kind == StepKind::chdir) chdir = &st;
    }
    TRY(mask_paths(root, spec));
    times::mark("mount: mqueue, steps, masks");
    if (spec.read_only) TRY(make_read_only(root));
    if (spec.pivot) {
        TRY(pivot(root));
        times::mark("mount: pivot");
        if (chdir) TRY_AS("--chdir", sys::chdir(chdir->dst.c_str()));
    } else if (chdir) {
        auto at = TRY(open_in_root(root, chdir->dst, Create::none, 0, "--chdir"));
        TRY_AS("--chdir", sys::fchdir(at.get(), at.what));
    }
    return {};
}

}  // namespace kago::mount
