// The container's name and its state directory (DESIGN.md, "The
// environment contract").
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/env.hpp"
#include "core/result.hpp"
#include "core/trace.hpp"

namespace kago::state {

// Checks a container name: 1 to 32 characters from [A-Za-z0-9_.-], not
// starting with '.' or '-'. It names cgroups, interfaces and directories.
Status validate_name(std::string_view name);

// KAGO_NAME, or a new random 8-hex-digit id, which is set in `contract`
// for the rest of the chain.
Result<std::string> container_name(env::Contract& contract);

// /run/kago as root, $XDG_RUNTIME_DIR/kago otherwise (or /tmp/kago-UID,
// mode 0700, when XDG_RUNTIME_DIR is unset).
std::string runtime_root();

// A state directory. The first program of a chain creates it and owns it:
// the owner removes it (recursively) on destruction unless release()d, so
// that a failed step undoes it on its way out (the program's run() returns
// the error; main prints it). Nothing else removes it: an exec, or the
// in-process hand-off that ends the program as an exec would, keeps it on
// disk. A forked child never removes its parent's directory. Later
// programs find it in KAGO_STATE_DIR and do not own it.
//
// It is made whole or not at all: ROOT/.NAME.PID with its file `owner`
// ("PID START" of the creator, see proc::Owner), renamed to ROOT/NAME
// without replacing anything. A directory of that name whose owner is gone
// is a leftover of a killed chain: acquire() removes it first (collect()),
// unless a process of that container still runs. A chain whose first
// program was just killed is still ending (PR_SET_PDEATHSIG reaches the
// programs below, which clean up): acquire() waits for its processes, up
// to proc::kEndingMs, before it refuses.
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
    // KAGO_STATE_DIR's, or a new one; a new one and its name are set in
    // `contract` (KAGO_STATE_DIR, KAGO_NAME) for the rest of the chain.
    static Result<StateDir> acquire(std::string_view name, env::Contract& contract);

    const std::string& path() const { return path_; }
    bool owned() const { return owned_; }
    // Whether the directory is there to write in: Made::no in a dry run,
    // which names the directory without making it (nor writing in one).
    trace::Made made() const { return made_; }
    // Write FILE in the directory (one value, with a newline), atomically;
    // nothing when it was not made.
    Status write(std::string_view file, std::string_view value) const;
    // A supervisor below the first program that holds host objects of its
    // own (net-setup: its ports, its owner record) registers here as
    // supervisors/PROGRAM.PID ("PID START"): while it runs, the container is
    // not gone, even when the directory's owner is.
    // A helper it runs (pasta) enlists the same way, with its pid.
    Status enlist(std::string_view program, pid_t pid = 0) const;
    // Remove the directory now (if owned).
    Status remove();
    // Keep it: ownership ends without removal.
    void release() { owned_ = false; }

  private:
    std::string path_;
    trace::Made made_ = trace::Made::no;
    bool owned_ = false;
    pid_t owner_ = 0;  // the process that created it; only it removes it
};

// What collect() and gc() find in a state directory.
struct Leftover {
    std::string name;   // the container's name (the directory's)
    pid_t owner = 0;    // the pid in its `owner` file (0: none)
    pid_t running = 0;  // a process of the container that still runs
    bool owner_alive = false;
    bool removed = false;
};

// The state directory of container `name` in runtime_root(), if any: its
// owner, whether it still runs, and whether one of the container's
// processes does (a supervisor enlisted in it, or a process in the cgroup
// or network namespace that its files `cgroup` and `netns` name). Removed
// when its owner is dead and nothing of its container runs. A directory
// without an `owner` file is never removed (owner 0, not alive: the caller
// says so).
Result<Leftover> collect(std::string_view name);

// collect() for every state directory in runtime_root(), and removal of the
// temporary directories (.NAME.PID) of creators that are gone. Returns what
// was looked at; `removed` tells what went.
Result<std::vector<Leftover>> gc();

// Remove the state directory `path` only when its `owner` file names
// `owner`: a record of a dead process may name a directory that a new
// container of the same name has made since.
Status remove_if_owned_by(const std::string& path, pid_t pid, uint64_t start);

// rm -r without following symlinks or crossing mount points.
Status remove_tree(const std::string& path);

}  // namespace kago::state
