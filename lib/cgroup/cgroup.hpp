// kago::cgroup: one interface, a v2 and a v1 backend.
//
//   auto layout = TRY(cgroup::detect(limits.controllers()));
//   auto cg = TRY(cgroup::make(layout, parent, "box.4242"));
//   TRY(cg->create(limits, if_available, warnings, skipped));
//   for (auto& s : settings) TRY(cg->apply(s));
//   auto join = TRY(cg->join_target());   // then cgroup::spawn(...)
//   ... wait ...
//   cg->kill(); auto st = cg->stats(); cg->remove();
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup/layout.hpp"
#include "cgroup/limits.hpp"
#include "core/fd.hpp"
#include "core/proc.hpp"
#include "core/result.hpp"

namespace kago::cgroup {

// What the limits did, read before the cgroup is removed. A value the
// kernel does not offer (a controller not joined) stays empty.
struct Stats {
    std::optional<uint64_t> oom_kills;
    std::optional<uint64_t> memory_peak;
    std::optional<uint64_t> pids_refused;  // fork attempts refused by pids.max
    std::optional<uint64_t> cpu_usage_usec;
    std::optional<uint64_t> cpu_user_usec;
    std::optional<uint64_t> cpu_system_usec;
    std::optional<uint64_t> nr_periods;
    std::optional<uint64_t> nr_throttled;
    std::optional<uint64_t> throttled_usec;
};

// How a child enters the cgroup. v2: `dir` for clone3(CLONE_INTO_CGROUP),
// with `procs` as the fallback. v1: `procs`, one cgroup.procs per
// hierarchy, written by the child before it execs.
struct JoinTarget {
    UniqueFd dir;
    std::string dir_path;
    std::vector<UniqueFd> procs;
    std::vector<std::string> procs_paths;
};

class Cgroup {
  public:
    virtual ~Cgroup() = default;
    virtual Version version() const = 0;
    // The cgroup's directory (v1: the one in the first hierarchy, memory).
    virtual const std::string& path() const = 0;
    // Its path relative to the hierarchy's root, as /proc/PID/cgroup shows
    // it: what KAGO_CGROUP holds.
    std::string relative() const;
    virtual const std::string& mount() const = 0;
    // Every directory, one per hierarchy.
    virtual std::vector<std::string> dirs() const = 0;

    // Create the cgroup: the default parent when needed, the controllers
    // enabled up the path (v2) or the cpuset copied down (v1). A needed
    // controller that is missing is an error, or with if_available a
    // warning, its name added to `skipped`.
    virtual Status create(const Limits& limits, bool if_available,
                          std::vector<std::string>& warnings, std::vector<std::string>& skipped) = 0;
    // Write one setting (the first of its files that exists).
    virtual Status apply(const Setting& s) = 0;
    virtual Result<JoinTarget> join_target() = 0;
    // Kill every process left (cgroup.kill, or freeze and SIGKILL) and wait
    // until the cgroup is empty, reaping our own children meanwhile.
    virtual Status kill() = 0;
    virtual Stats stats() const = 0;
    // Remove the directories, and the default parent when it is empty.
    virtual Status remove() = 0;
};

// Where the cgroup goes: `parent` is a --parent value ("" for the default:
// a `kago` cgroup beside the caller's own on v2, below it on v1), `leaf`
// the cgroup's own name, NAME.PID.
Result<std::unique_ptr<Cgroup>> make(const Layout& layout, std::string_view parent, std::string leaf);

// Create the cgroup and write the settings, in order: what cg-limit (and
// pack-selfexec's runner) do before the command starts. With if_available
// a missing controller, or a missing file, is a warning appended to
// `warnings` and its limits are not applied. On an error the caller
// removes the cgroup.
Status set_up(Cgroup& cg, const Limits& limits, const std::vector<Setting>& settings, bool if_available,
              std::vector<std::string>& warnings);

// The name of the cgroup of container `name` supervised by `owner`:
// NAME.PID.START. The start time tells the supervisor apart from a later
// process with its pid, as in every other record of an owner.
std::string leaf_name(std::string_view name, const proc::Owner& owner);
// A leaf's container name and supervisor. NAME.PID (an older kago's, or
// a start time that could not be read) has start 0. std::nullopt when the
// name has another shape.
struct Leaf {
    std::string name;
    proc::Owner owner;
};
std::optional<Leaf> parse_leaf(std::string_view leaf);

// The default parent inside a hierarchy: v2: "/kago" beside the caller's
// cgroup when its parent is writable, else below it (a delegated subtree);
// v1: below the caller's cgroup.
std::string default_parent(const Hierarchy& h, Version v);

// Remove the empty cgroups that a supervisor killed by SIGKILL left under
// the parent that `cg` uses. Returns the cgroups removed, as relative()
// would have shown them (v1: in the first hierarchy).
std::vector<std::string> reap_leftovers(const Layout& layout, std::string_view parent);

// Values of "key value" lines (memory.events, cpu.stat, ...).
std::optional<uint64_t> keyed_value(std::string_view text, std::string_view key);

// What the limits did, as sentences for stderr ("the container was killed
// by the memory limit (64 MiB): 1 OOM kill"). `wstatus` is the child's.
std::vector<std::string> describe_effects(const Limits& limits, const Stats& st, int wstatus);

// The --status-fd line.
std::string status_json(std::string_view name, std::string_view cgroup, const Stats& st, int wstatus);

// The hint printed when the cgroup cannot be created for lack of
// delegation.
std::string delegation_hint();

}  // namespace kago::cgroup
