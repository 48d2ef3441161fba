#include "core/state.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/env.hpp"
#include "core/fd.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

#include <vector>

namespace kago::state {

Status validate_name(std::string_view name) {
    if (name.empty() || name.size() > 32)
        return usage_error(cat("container name '", name, "': must be 1 to 32 characters"));
    if (name[0] == '.' || name[0] == '-')
        return usage_error(cat("container name '", name, "': must not start with '.' or '-'"));
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return usage_error(cat("container name '", name,
                                   "': only letters, digits, '_', '.' and '-' are allowed"));
    }
    return {};
}

Result<std::string> container_name() {
    auto v = env::get(env::kName);
    if (!v.empty()) {
        TRY(validate_name(v));
        return std::string(v);
    }
    unsigned char b[4];
    if (getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b))
        return sys_error("getrandom for a container name");
    static const char hex[] = "0123456789abcdef";
    std::string name;
    for (unsigned char c : b) {
        name += hex[c >> 4];
        name += hex[c & 15];
    }
    ::setenv(env::kName, name.c_str(), 1);
    return name;
}

std::string runtime_root() {
    if (::geteuid() == 0) return "/run/kago";
    auto xdg = env::get("XDG_RUNTIME_DIR");
    if (!xdg.empty()) return cat(xdg, "/kago");
    const char* tmp = ::getenv("TMPDIR");
    return cat(tmp && *tmp ? tmp : "/tmp", "/kago-", static_cast<unsigned>(::geteuid()));
}

namespace {
// The owned directories of this process, for remove_owned_dirs().
std::vector<StateDir*>& registry() {
    static std::vector<StateDir*> r;
    return r;
}
}  // namespace

void StateDir::enroll() {
    if (owned_) registry().push_back(this);
}
void StateDir::withdraw() { std::erase(registry(), this); }

void remove_owned_dirs() {
    std::vector<StateDir*> dirs = registry();
    for (StateDir* d : dirs) (void)d->remove();
}

StateDir::StateDir(StateDir&& o) noexcept
    : path_(std::move(o.path_)), owned_(o.owned_), owner_(o.owner_) {
    o.withdraw();
    o.owned_ = false;
    enroll();
}
StateDir& StateDir::operator=(StateDir&& o) noexcept {
    if (this != &o) {
        (void)remove();
        withdraw();
        path_ = std::move(o.path_);
        owned_ = o.owned_;
        owner_ = o.owner_;
        o.withdraw();
        o.owned_ = false;
        enroll();
    }
    return *this;
}
StateDir::~StateDir() {
    (void)remove();
    withdraw();
}

Result<StateDir> StateDir::acquire(std::string_view name) {
    StateDir d;
    auto existing = env::get(env::kStateDir);
    if (!existing.empty()) {
        d.path_ = std::string(existing);
        return d;
    }
    std::string root = runtime_root();
    if (trace::dry_run()) {  // a dry run creates nothing: the path only
        d.path_ = cat(root, "/", name);
        return d;
    }
    TRY(sys::mkdir_p(root, 0700));
    struct stat st;
    if (::lstat(root.c_str(), &st) != 0) return sys_error(cat("stat ", root));
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 022)) {
        errno = EPERM;
        return sys_error(cat("state directory root ", root,
                             ": not a directory owned by this user without write access for others"));
    }
    d.path_ = cat(root, "/", name);
    if (::mkdir(d.path_.c_str(), 0700) != 0) {
        if (errno == EEXIST)
            return sys_error(cat("state directory ", d.path_)).with_hint(
                cat("a container named '", name, "' is running or was killed; choose another KAGO_NAME"));
        return sys_error(cat("create state directory ", d.path_));
    }
    d.owned_ = true;
    d.owner_ = ::getpid();
    d.enroll();
    ::setenv(env::kStateDir, d.path_.c_str(), 1);
    ::setenv(env::kName, std::string(name).c_str(), 1);
    return d;
}

Status StateDir::write(std::string_view file, std::string_view value) const {
    if (path_.empty() || trace::dry_run()) return {};
    std::string target = cat(path_, "/", file);
    auto slash = target.rfind('/');
    if (slash != std::string::npos && slash > path_.size()) TRY(sys::mkdir_p(target.substr(0, slash), 0700));
    std::string tmp = target + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return sys_error(cat("create ", tmp));
    UniqueFd owner(fd);
    std::string line(value);
    line += '\n';
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        return sys_error(cat("write ", tmp));
    owner.reset();
    if (::rename(tmp.c_str(), target.c_str()) != 0) return sys_error(cat("rename ", tmp, " to ", target));
    return {};
}

Status StateDir::remove() {
    if (!owned_ || path_.empty()) return {};
    owned_ = false;
    withdraw();
    if (owner_ != ::getpid()) return {};  // a forked child: the parent removes it
    return remove_tree(path_);
}

namespace {
Status remove_at(int dirfd, const char* name, dev_t dev, const std::string& shown) {
    int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return sys_error(cat("open ", shown));
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        return sys_error(cat("stat ", shown));
    }
    if (st.st_dev != dev) {
        ::close(fd);
        errno = EBUSY;
        return sys_error(cat("remove ", shown, " (a mount point)"));
    }
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return sys_error(cat("open ", shown));
    }
    Status result;
    while (struct dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
        if (e->d_type == DT_DIR) {
            auto r = remove_at(::dirfd(d), e->d_name, dev, cat(shown, "/", e->d_name));
            if (!r && result) result = std::move(r);
        } else if (::unlinkat(::dirfd(d), e->d_name, 0) != 0 && result) {
            result = sys_error(cat("remove ", shown, "/", e->d_name));
        }
    }
    ::closedir(d);
    if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT && result)
        result = sys_error(cat("remove ", shown));
    return result;
}
}  // namespace

Status remove_tree(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? Status() : sys_error(cat("stat ", path));
    if (!S_ISDIR(st.st_mode)) {
        if (::unlink(path.c_str()) != 0) return sys_error(cat("remove ", path));
        return {};
    }
    return remove_at(AT_FDCWD, path.c_str(), st.st_dev, path);
}

}  // namespace kago::state
