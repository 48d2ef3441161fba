// Unit tests for lib/pack/scratch: a temporary directory that its owner's
// death does not leave behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "pack/scratch.hpp"
#include "temp_dir.hpp"

using kago::pack::ScratchDir;
using kago::pack::sweep_scratch;
using kago::test::TempDir;

namespace {

bool exists(const std::string& p) {
    struct stat st;
    return ::lstat(p.c_str(), &st) == 0;
}

// Poll for up to 5 s.
bool gone_within(const std::string& p) {
    for (int i = 0; i < 500; i++) {
        if (!exists(p)) return true;
        ::usleep(10000);
    }
    return false;
}

TEST(ScratchDir, MadeLockedAndRemovedWithItsWatcher) {
    TempDir t;
    std::string path;
    pid_t watcher;
    {
        auto s = ScratchDir::make(t.path(), "x.");
        ASSERT_TRUE(s.ok()) << s.error().message();
        path = s->path();
        watcher = s->watcher();
        EXPECT_EQ(path.rfind(t.path() + "/x.", 0), 0u);
        EXPECT_TRUE(exists(path + "/" + kago::pack::kScratchOwnerFile));
        EXPECT_GT(watcher, 0);
        // Held: another open file description cannot take the lock.
        int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0);
        ::close(fd);
        std::ofstream(path + "/file") << "data";
    }
    EXPECT_FALSE(exists(path));
    // Reaped by the destructor: no longer our child.
    EXPECT_EQ(::waitpid(watcher, nullptr, WNOHANG), -1);
}

TEST(ScratchDir, TheWatcherRemovesItWhenTheOwnerDiesWithoutCleaningUp) {
    TempDir t;
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    pid_t owner = ::fork();
    ASSERT_GE(owner, 0);
    if (owner == 0) {
        auto s = ScratchDir::make(t.path(), "x.");
        if (!s.ok()) _exit(1);
        std::string path = s->path() + "\n";
        (void)!::write(p[1], path.data(), path.size());
        _exit(0);  // no destructor: as SIGKILL would leave it
    }
    ::close(p[1]);
    char buf[4096];
    ssize_t n = ::read(p[0], buf, sizeof buf);
    ::close(p[0]);
    int status;
    ASSERT_EQ(::waitpid(owner, &status, 0), owner);
    ASSERT_GT(n, 1);
    std::string path(buf, static_cast<size_t>(n) - 1);
    EXPECT_TRUE(gone_within(path)) << path;
}

TEST(ScratchDir, SweepRemovesOnlyUnlockedOwnedDirectories) {
    TempDir t;
    // A live one: its lock held.
    auto live = ScratchDir::make(t.path(), "x.", false);
    ASSERT_TRUE(live.ok());
    std::string dead = t.path() + "/x.dead", young = t.path() + "/x.young",
                other = t.path() + "/y.dead";
    for (auto& d : {dead, young, other}) ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
    for (auto& d : {dead, other}) std::ofstream(d + "/" + kago::pack::kScratchOwnerFile) << "1\n";
    std::ofstream(dead + "/data") << "x";
    int parent = ::open(t.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(parent, 0);
    auto r = sweep_scratch(parent, t.path(), "x.");
    ::close(parent);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 1);
    EXPECT_FALSE(exists(dead));
    EXPECT_TRUE(exists(young));  // no owner file yet, and new: being made
    EXPECT_TRUE(exists(other));  // another prefix
    EXPECT_TRUE(exists(live->path()));
}

}  // namespace
