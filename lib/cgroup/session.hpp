// One container's cgroup, from its limits to its removal: the sequence
// that cg-limit and pack-selfexec's runner share.
//
//   std::vector<std::string> warnings;
//   auto s = TRY(cgroup::Session::plan(limits, parent, if_available, warnings));  // changes nothing
//   s.reap_leftovers();                 // the cgroups of killed chains
//   TRY(s.create(name, warnings));      // NAME.PID, with the limits written
//   TRY(s.enter(pid));                  // or s.cgroup().join_target() and spawn()
//   ... wait ...
//   auto report = s.finish(wstatus);    // kill what is left; stats; what the limits did
//   TRY(s.remove());
//
// A Session owns its cgroup: one that goes before remove() kills what is
// left in it and removes it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup/cgroup.hpp"
#include "cgroup/layout.hpp"
#include "cgroup/limits.hpp"
#include "core/result.hpp"

namespace kago::cgroup {

class Session {
  public:
    // Which version and hierarchies (detect()), and the writes (plan()).
    // `parent` is a --parent value, "" for the default. With if_available
    // an option the version lacks is a warning, appended to `warnings`.
    static Result<Session> plan(Limits limits, std::string parent, bool if_available,
                                std::vector<std::string>& warnings);

    Session(Session&&) noexcept = default;
    Session& operator=(Session&&) noexcept;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    ~Session();

    const Layout& layout() const { return layout_; }
    const Limits& limits() const { return limits_; }

    // Remove the empty cgroups that killed chains left under the parent;
    // returns them as relative() would have shown them.
    std::vector<std::string> reap_leftovers() const;

    // Create the cgroup of container `name` supervised by this process
    // (leaf_name(name, proc::self()): NAME.PID.START) and write the limits. Warnings (a missing
    // controller or file with if_available) are appended to `warnings`. On
    // an error the cgroup is removed when the Session goes.
    Status create(std::string_view name, std::vector<std::string>& warnings);
    bool active() const { return cg_ != nullptr; }
    Cgroup& cgroup() { return *cg_; }
    const Cgroup& cgroup() const { return *cg_; }

    // Move `pid` into it, in every hierarchy (its cgroup.procs).
    Status enter(pid_t pid);

    // Once the command has ended: kill what is left (waiting until the
    // cgroup is empty), read the statistics, and say what the limits did.
    struct Report {
        Stats stats;
        std::vector<std::string> effects;  // describe_effects()
        std::optional<Error> kill_error;
    };
    Report finish(int wstatus);

    // Remove the cgroup (and the default parent when it is empty).
    Status remove();
    // Kill and remove, ignoring errors: a failed start.
    void discard();

  private:
    Session() = default;
    Limits limits_;
    std::string parent_;
    bool if_available_ = false;
    Layout layout_;
    std::vector<Setting> settings_;
    std::unique_ptr<Cgroup> cg_;
};

}  // namespace kago::cgroup
