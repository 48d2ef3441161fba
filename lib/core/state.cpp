#include "core/state.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "core/env.hpp"
#include "core/fd.hpp"
#include "core/parse.hpp"
#include "core/proc.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

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

Result<std::string> container_name(env::Contract& contract) {
    std::string v = contract.get(env::kName);
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
    contract.set(env::kName, name);
    return name;
}

std::string runtime_root() {
    if (::geteuid() == 0) return "/run/kago";
    auto xdg = env::get("XDG_RUNTIME_DIR");
    if (!xdg.empty()) return cat(xdg, "/kago");
    const char* tmp = ::getenv("TMPDIR");
    return cat(tmp && *tmp ? tmp : "/tmp", "/kago-", static_cast<unsigned>(::geteuid()));
}

StateDir::StateDir(StateDir&& o) noexcept
    : path_(std::move(o.path_)),
      made_(o.made_),
      owned_(std::exchange(o.owned_, false)),
      owner_(o.owner_) {}
StateDir& StateDir::operator=(StateDir&& o) noexcept {
    if (this != &o) {
        (void)remove();
        path_ = std::move(o.path_);
        made_ = o.made_;
        owned_ = std::exchange(o.owned_, false);
        owner_ = o.owner_;
    }
    return *this;
}
StateDir::~StateDir() {
    (void)remove();
}

namespace {
// Write DIR/FILE (one value and a newline) atomically.
Status write_file_in(const std::string& dir, std::string_view file, std::string_view value) {
    std::string target = cat(dir, "/", file);
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

// One program at a time looks at leftovers and makes a state directory:
// flock(2) on the runtime root itself, so that nothing stays on disk.
Result<UniqueFd> lock_root(const std::string& root) {
    int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return sys_error(cat("open ", root));
    UniqueFd owner(fd);
    while (::flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) return sys_error(cat("flock ", root));
    return owner;
}

// "PID START" of an owner file; pid 0 when there is none.
proc::Owner read_owner_file(const std::string& file) {
    proc::Owner o;
    auto text = sys::read_file(file.c_str());
    if (!text) return o;
    auto w = parse::split(std::string_view(*text).substr(0, text->find('\n')), ' ');
    if (w.size() != 2) return o;
    auto pid = parse::u64(w[0], "pid");
    auto start = parse::u64(w[1], "start");
    if (!pid || !start || *pid == 0 || *pid > 0x7fffffff) return o;
    return proc::Owner{static_cast<pid_t>(*pid), *start};
}
proc::Owner read_owner(const std::string& dir) { return read_owner_file(cat(dir, "/owner")); }

// A supervisor of the chain, other than its owner, that registered in
// DIR/supervisors and still runs, or 0.
pid_t live_supervisor(const std::string& dir) {
    std::string sub = cat(dir, "/supervisors");
    DIR* d = ::opendir(sub.c_str());
    if (!d) return 0;
    pid_t found = 0;
    while (struct dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        proc::Owner o = read_owner_file(cat(sub, "/", e->d_name));
        if (o.pid && proc::alive(o)) {
            found = o.pid;
            break;
        }
    }
    ::closedir(d);
    return found;
}

std::string first_line(const std::string& path) {
    auto text = sys::read_file(path.c_str());
    if (!text) return "";
    return text->substr(0, text->find('\n'));
}

Result<Leftover> collect_locked(const std::string& root, std::string_view name) {
    Leftover l;
    l.name = std::string(name);
    std::string path = cat(root, "/", name);
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno != ENOENT) return sys_error(cat("stat ", path));
        l.removed = true;  // nothing there: the name is free
        return l;
    }
    proc::Owner o = read_owner(path);
    l.owner = o.pid;
    if (o.pid == 0) return l;
    l.owner_alive = proc::alive(o);
    if (l.owner_alive) return l;
    // The supervisor is gone; the container may not be, nor the other
    // supervisors of its chain, which are ending (they die with their
    // parents) and still hold host objects.
    l.running = live_supervisor(path);
    if (!l.running) l.running = proc::one_in_cgroup(first_line(path + "/cgroup"));
    if (!l.running) l.running = proc::one_in_netns(first_line(path + "/netns"));
    if (l.running) return l;
    TRY(remove_tree(path));
    l.removed = true;
    return l;
}

Error refusal(const std::string& path, const Leftover& l) {
    errno = EEXIST;
    if (l.owner_alive)
        return sys_error(cat("container '", l.name, "': already running (pid ", l.owner, " owns ", path, ")"))
            .with_hint("choose another KAGO_NAME, or stop that container first");
    if (l.running)
        return sys_error(cat("container '", l.name, "': its supervisor (pid ", l.owner, ") is gone but its process ",
                             l.running, " still runs, ", proc::kEndingMs / 1000, " s later (state directory ",
                             path, ")"))
            .with_hint(cat("nothing of it was removed; stop process ", l.running, ", then start again"));
    return sys_error(cat("state directory ", path))
        .with_hint(cat("it names no owner (made by an older kago?); remove it if no container named '", l.name,
                       "' runs"));
}
}  // namespace

Result<Leftover> collect(std::string_view name) {
    std::string root = runtime_root();
    auto lock = lock_root(root);
    if (!lock) {
        if (lock.error().err != ENOENT) return std::move(lock).error();
        Leftover l;
        l.name = std::string(name);
        l.removed = true;
        return l;
    }
    return collect_locked(root, name);
}

Result<std::vector<Leftover>> gc() {
    std::vector<Leftover> out;
    std::string root = runtime_root();
    auto lock = lock_root(root);
    if (!lock) {
        if (lock.error().err == ENOENT) return out;
        return std::move(lock).error();
    }
    std::vector<std::string> names, temps;
    {
        DIR* d = ::opendir(root.c_str());
        if (!d) return sys_error(cat("open ", root));
        while (struct dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n == "." || n == ".." || e->d_type != DT_DIR) continue;
            if (n[0] == '.') temps.push_back(n);
            else if (validate_name(n)) names.push_back(n);
        }
        ::closedir(d);
    }
    Status first;
    for (const auto& n : names) {
        auto l = collect_locked(root, n);
        if (!l) {
            if (first) first = std::move(l).error();
            continue;
        }
        if (l->owner) out.push_back(*l);  // a directory with no owner file is not a state directory of ours
    }
    // .NAME.PID: a creator killed before its rename.
    for (const auto& t : temps) {
        auto dot = t.rfind('.');
        if (dot == 0 || dot + 1 >= t.size() || !validate_name(t.substr(1, dot - 1))) continue;
        auto pid = parse::u64(t.substr(dot + 1), "pid");
        if (!pid || *pid == 0 || *pid > 0x7fffffff) continue;
        proc::Owner o = read_owner(cat(root, "/", t));
        if (o.pid == 0) o.pid = static_cast<pid_t>(*pid);
        if (o.pid != static_cast<pid_t>(*pid)) continue;
        if (o.start ? proc::alive(o) : ::kill(o.pid, 0) == 0 || errno == EPERM) continue;
        if (auto r = remove_tree(cat(root, "/", t)); !r && first) first = std::move(r);
    }
    if (!first) return std::move(first).error();
    return out;
}

Status remove_if_owned_by(const std::string& path, pid_t pid, uint64_t start) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return {};
    auto lock = lock_root(path.substr(0, slash));  // not removed under a same-name start
    if (!lock) return lock.error().err == ENOENT ? Status() : Status(std::move(lock).error());
    proc::Owner o = read_owner(path);
    if (o.pid != pid || o.start != start || pid == 0) return {};
    return remove_tree(path);
}

Result<StateDir> StateDir::acquire(std::string_view name, env::Contract& contract) {
    StateDir d;
    std::string existing = contract.get(env::kStateDir);
    if (!existing.empty()) {
        d.path_ = std::string(existing);
        d.made_ = trace::made();  // an earlier program's: not ours to write in a dry run
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
    // Made whole under another name, then renamed into place: a directory
    // of this name always has its owner file.
    proc::Owner me = proc::self();
    std::string tmp = cat(root, "/.", name, ".", me.pid);
    (void)remove_tree(tmp);  // of a dead process that had our pid
    if (::mkdir(tmp.c_str(), 0700) != 0) return sys_error(cat("create state directory ", tmp));
    auto undo = [&](Error e) {
        (void)remove_tree(tmp);
        return e;
    };
    if (auto w = write_file_in(tmp, "owner", cat(me.pid, " ", me.start)); !w) return undo(w.error());
    auto lock = lock_root(root);
    if (!lock) return undo(lock.error());
    // A chain whose supervisor was just killed is still ending (its
    // programs die with their parents and clean up): wait for its
    // processes, a bounded time, with the lock released meanwhile.
    int64_t deadline = proc::monotonic_ms() + proc::kEndingMs;
    for (int removed = 0;;) {
        if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, d.path_.c_str(), RENAME_NOREPLACE) == 0) break;
        if ((errno != EEXIST && errno != ENOTEMPTY) || removed > 0)
            return undo(sys_error(cat("rename ", tmp, " to ", d.path_)));
        auto left = collect_locked(root, name);
        if (!left) return undo(left.error());
        if (left->removed) {
            ++removed;
            continue;
        }
        if (left->owner_alive || !left->running || proc::monotonic_ms() >= deadline)
            return undo(refusal(d.path_, *left));
        lock->reset();
        (void)proc::wait_ended(left->running, deadline);
        lock = lock_root(root);
        if (!lock) return undo(lock.error());
    }
    d.made_ = trace::Made::yes;
    d.owned_ = true;
    d.owner_ = ::getpid();
    contract.set(env::kStateDir, d.path_);
    contract.set(env::kName, std::string(name));
    return d;
}

Status StateDir::write(std::string_view file, std::string_view value) const {
    if (path_.empty() || made_ == trace::Made::no) return {};
    std::string target = cat(path_, "/", file);
    auto slash = target.rfind('/');
    if (slash != std::string::npos && slash > path_.size()) TRY(sys::mkdir_p(target.substr(0, slash), 0700));
    return write_file_in(path_, file, value);
}

Status StateDir::enlist(std::string_view program, pid_t pid) const {
    proc::Owner who = proc::self();
    if (pid > 0 && pid != who.pid) {
        auto st = proc::read_stat(pid);
        if (!st) return std::move(st).error();
        who = proc::Owner{pid, st->start};
    }
    return write(cat("supervisors/", program, ".", who.pid), cat(who.pid, " ", who.start));
}

Status StateDir::remove() {
    if (!owned_ || path_.empty()) return {};
    owned_ = false;
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
