// A temporary directory that its owner's death does not leave behind, even
// by SIGKILL (pack-selfexec --image's temporary store).
//
// - The owner holds flock(LOCK_EX) on the directory while it lives.
// - A watcher, a process of its own (one fork, in a session of its own so
//   that a signal to the owner's process group spares it), waits on a pipe
//   that only the owner holds: at end of file (the owner is gone, however it
//   died), it takes the lock and removes the directory.
// - Should the watcher be killed too, the next make() in the same parent
//   removes every PREFIX* directory of the caller's whose lock is free.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/child.hpp"
#include "core/fd.hpp"
#include "core/result.hpp"

namespace kago::pack {

// The file a directory's owner makes once it holds the lock: a directory
// without it is in the instant between mkdtemp() and flock(), and is
// swept only once it is older than kScratchGrace seconds.
inline constexpr const char kScratchOwnerFile[] = ".kago-owner";
inline constexpr int kScratchGrace = 60;

class ScratchDir {
  public:
    // PARENT/PREFIXXXXXXX, mode 0700. Sweeps PARENT first (sweep_scratch),
    // then starts the watcher unless `watch` is false.
    static Result<ScratchDir> make(const std::string& parent, const std::string& prefix,
                                   bool watch = true);
    ScratchDir(ScratchDir&& o) noexcept;
    ScratchDir& operator=(ScratchDir&&) = delete;
    // Removes the directory, then ends the watcher and reaps it.
    ~ScratchDir();

    const std::string& path() const { return path_; }
    pid_t watcher() const { return watcher_.pid(); }

  private:
    ScratchDir() = default;
    UniqueFd parent_, lock_, pipe_;  // pipe_: the write end the watcher reads
    std::string name_, path_;
    child::Process watcher_;
};

// Remove the PREFIX* directories in PARENT that belong to this user and
// whose owner is gone (their lock is free). How many were removed.
Result<int> sweep_scratch(int parent, const std::string& parent_path, const std::string& prefix);

}  // namespace kago::pack
