#include "pack/scratch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "core/child.hpp"
#include "pack/cache.hpp"

namespace kago::pack {
namespace {

// Keep only `keep` (and 0, 1, 2 pointed at /dev/null) open.
void keep_only(std::vector<int> keep) {
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3; fd++)
        if (null >= 0 && std::find(keep.begin(), keep.end(), fd) == keep.end()) ::dup3(null, fd, 0);
    if (null > 2 && std::find(keep.begin(), keep.end(), null) == keep.end()) ::close(null);
    keep.push_back(2);
    std::sort(keep.begin(), keep.end());
    unsigned from = 3;
    for (int fd : keep) {
        if (fd < static_cast<int>(from)) continue;
        if (static_cast<unsigned>(fd) > from)
            ::syscall(SYS_close_range, from, static_cast<unsigned>(fd) - 1, 0u);
        from = static_cast<unsigned>(fd) + 1;
    }
    ::syscall(SYS_close_range, from, ~0u, 0u);
}

// The watcher, after fork(), until it returns its exit status: wait for the owner's end, then
// remove PARENT/NAME if it is still the directory the owner made.
int watch(int parent, int rd, const std::string& name, dev_t dev, ino_t ino) {
    keep_only({parent, rd});
    (void)::setsid();
    for (int sig : {SIGINT, SIGQUIT, SIGHUP, SIGTERM, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU})
        ::signal(sig, SIG_IGN);
    (void)::prctl(PR_SET_NAME, "kago-scratch", 0, 0, 0);
    char c;
    for (;;) {
        ssize_t r = ::read(rd, &c, 1);
        if (r == 0 || (r < 0 && errno != EINTR)) break;
    }
    int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_dev != dev || st.st_ino != ino) return 0;
    // Free as soon as the owner is gone: its lock went with its last descriptor.
    while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    (void)remove_tree_at(parent, name, name);
    return 0;
}

}  // namespace

Result<int> sweep_scratch(int parent, const std::string& parent_path, const std::string& prefix) {
    std::vector<std::string> names;
    int dup = ::fcntl(parent, F_DUPFD_CLOEXEC, 0);
    DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr;
    if (!d) {
        if (dup >= 0) ::close(dup);
        return sys_error(cat("read ", parent_path));
    }
    while (struct dirent* de = ::readdir(d))
        if (strncmp(de->d_name, prefix.c_str(), prefix.size()) == 0) names.emplace_back(de->d_name);
    ::closedir(d);
    int removed = 0;
    uid_t me = ::geteuid();
    time_t now = ::time(nullptr);
    for (auto& n : names) {
        UniqueFd fd(::openat(parent, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        struct stat st;
        if (!fd || ::fstat(fd.get(), &st) != 0 || st.st_uid != me) continue;
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;  // its owner lives
        struct stat own;
        bool owned = ::fstatat(fd.get(), kScratchOwnerFile, &own, AT_SYMLINK_NOFOLLOW) == 0;
        if (!owned && now - st.st_ctime < kScratchGrace) continue;  // being made
        if (remove_tree_at(parent, n, cat(parent_path, "/", n))) removed++;
    }
    return removed;
}

Result<ScratchDir> ScratchDir::make(const std::string& parent, const std::string& prefix,
                                    bool watch_it) {
    ScratchDir s;
    s.parent_ = UniqueFd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!s.parent_) return sys_error(cat("open ", parent));
    (void)sweep_scratch(s.parent_.get(), parent, prefix);
    std::string t = cat(parent, "/", prefix, "XXXXXX");
    if (!::mkdtemp(t.data())) return sys_error(cat("create a temporary directory ", t));
    s.path_ = t;
    s.name_ = t.substr(parent.size() + 1);
    s.lock_ = UniqueFd(::openat(s.parent_.get(), s.name_.c_str(),
                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!s.lock_) return sys_error(cat("open ", s.path_));
    if (::flock(s.lock_.get(), LOCK_EX) != 0) return sys_error(cat("lock ", s.path_));
    std::string pid = cat(::getpid(), "\n");
    int own =
        ::openat(s.lock_.get(), kScratchOwnerFile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (own < 0) return sys_error(cat("create ", s.path_, "/", kScratchOwnerFile));
    (void)!::write(own, pid.data(), pid.size());
    ::close(own);
    if (!watch_it) return s;
    struct stat st;
    if (::fstat(s.lock_.get(), &st) != 0) return sys_error(cat("stat ", s.path_));
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return sys_error("pipe for the temporary directory's watcher");
    UniqueFd rd(p[0]);
    s.pipe_ = UniqueFd(p[1]);
    pid_t pid_w = ::fork();
    if (pid_w < 0) return sys_error(cat("fork the watcher of ", s.path_));
    if (pid_w == 0) child::leave(watch(s.parent_.get(), rd.get(), s.name_, st.st_dev, st.st_ino));
    s.watcher_ = child::Process(pid_w);
    return s;
}

ScratchDir::ScratchDir(ScratchDir&& o) noexcept
    : parent_(std::move(o.parent_)),
      lock_(std::move(o.lock_)),
      pipe_(std::move(o.pipe_)),
      name_(std::move(o.name_)),
      path_(std::move(o.path_)),
      watcher_(std::move(o.watcher_)) {
    o.name_.clear();
}

ScratchDir::~ScratchDir() {
    if (!name_.empty() && parent_) (void)remove_tree_at(parent_.get(), name_, path_);
    lock_.reset();
    pipe_.reset();  // the watcher finds nothing to remove, and exits
    (void)watcher_.wait();
}

}  // namespace kago::pack
