// The container's name and its state directory (DESIGN.md, "The
// environment contract").
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "core/result.hpp"

namespace kago::state {

// Checks a container name: 1 to 32 characters from [A-Za-z0-9_.-], not
// starting with '.' or '-'. It names cgroups, interfaces and directories.
Status validate_name(std::string_view name);

// KAGO_NAME, or a new random 8-hex-digit id which is then exported.
Result<std::string> container_name();

// /run/kago as root, $XDG_RUNTIME_DIR/kago otherwise (or /tmp/kago-UID,
// mode 0700, when XDG_RUNTIME_DIR is unset).
std::string runtime_root();

// A state directory. The first program of a chain creates it and owns it:
// the owner removes it (recursively) on destruction unless release()d.
// Later programs find it in KAGO_STATE_DIR and do not own it.
class StateDir {
  public:
    StateDir() = default;
    StateDir(StateDir&& o) noexcept;
    StateDir& operator=(StateDir&& o) noexcept;
    StateDir(const StateDir&) = delete;
    StateDir& operator=(const StateDir&) = delete;
    ~StateDir();

    // Use KAGO_STATE_DIR if set; otherwise create runtime_root()/NAME and
    // export KAGO_STATE_DIR and KAGO_NAME.
    static Result<StateDir> acquire(std::string_view name);

    const std::string& path() const { return path_; }
    bool owned() const { return owned_; }
    // Write FILE in the directory (one value, with a newline), atomically.
    Status write(std::string_view file, std::string_view value) const;
    // Remove the directory now (if owned).
    Status remove();
    // Keep it: ownership ends without removal.
    void release() {
        owned_ = false;
        withdraw();
    }

  private:
    void enroll();
    void withdraw();
    std::string path_;
    bool owned_ = false;
    pid_t owner_ = 0;  // the process that created it; only it removes it
};

// Remove every state directory this process owns and has not released.
// cli::die() calls it: exit() skips the owners' destructors, and a failed
// setup must leave nothing behind. A forked child never removes its
// parent's directory.
void remove_owned_dirs();

// rm -r without following symlinks or crossing mount points.
Status remove_tree(const std::string& path);

}  // namespace kago::state
