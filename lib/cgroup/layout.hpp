// Where the cgroup hierarchies are mounted, where the caller sits in them,
// and which version cg-limit uses. The parsers are pure (unit-tested with
// fixtures); detect() reads /proc/self/mountinfo, /proc/self/cgroup and the
// v2 root's cgroup.controllers.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup/limits.hpp"
#include "core/result.hpp"

namespace kago::cgroup {

struct Mount {
    std::string point;  // "/sys/fs/cgroup/memory"
    std::string root;   // the mount's root inside the hierarchy, usually "/"
    bool v2 = false;
    std::vector<std::string> controllers;  // v1: from the super options
};
// Every cgroupfs in mountinfo, in order. A v1 mount's controllers are its
// super options that name one, and a named hierarchy's "name=NAME"
// ("name=systemd") as it is.
std::vector<Mount> parse_cgroup_mountinfo(std::string_view text);
// Those that cg-limit may use: v2, and v1 with a controller (named
// hierarchies are left out, and "name=" from the controllers).
std::vector<Mount> parse_mountinfo(std::string_view text);

// The lines of /proc/self/cgroup as they are: "ID:CONTROLLERS:PATH", where
// ID is "0" and CONTROLLERS empty for v2, and CONTROLLERS may name a named
// hierarchy ("name=systemd"). Lines without two colons are left out.
struct ProcCgroupLine {
    std::string id;
    std::string controllers;
    std::string path;
};
std::vector<ProcCgroupLine> split_proc_cgroup(std::string_view text);

// /proc/self/cgroup: "0::/path" and "N:ctrl,ctrl:/path" (named hierarchies
// left out).
struct ProcCgroup {
    std::optional<std::string> v2;
    struct V1 {
        std::vector<std::string> controllers;
        std::string path;
    };
    std::vector<V1> v1;
};
ProcCgroup parse_proc_cgroup(std::string_view text);

// The controllers listed in a cgroup.controllers / subtree_control file.
std::vector<std::string> parse_controller_list(std::string_view text);

// One hierarchy cg-limit uses: its mount, its controllers and the caller's
// cgroup in it (a path relative to the hierarchy root, "/" or "/a/b").
struct Hierarchy {
    std::string mount;
    std::vector<std::string> controllers;
    std::string own;
};

struct Layout {
    Version version = Version::v2;
    // v2: exactly one. v1: one per needed hierarchy, the memory one first.
    std::vector<Hierarchy> hierarchies;
    // v1: every mounted hierarchy, memory first, for reaping the leftovers
    // of runs that used other controllers.
    std::vector<Hierarchy> all;
    // Controllers that a limit needs but that no hierarchy offers.
    std::vector<std::string> missing;
};

// The controllers cg-limit joins for its report even when no limit needs
// them (v2 names).
const std::vector<std::string>& report_controllers();

// The choice, from parsed inputs. v2_root_controllers is the v2 root's
// cgroup.controllers (empty when there is no v2 mount). v2 is used when it
// is the only version mounted, or when it offers every needed controller
// and the report controllers that v1 would offer; otherwise v1.
Result<Layout> choose(const std::vector<Mount>& mounts, const ProcCgroup& self,
                      const std::vector<std::string>& v2_root_controllers,
                      const std::vector<std::string>& needed);

// The same, reading this machine's files.
Result<Layout> detect(const std::vector<std::string>& needed);

// "/a/b" -> "/a"; "/a" -> "/".
std::string parent_path(std::string_view p);
// Join "/a" and "b" -> "/a/b"; "/" and "b" -> "/b".
std::string join_path(std::string_view a, std::string_view b);
// A --parent value as a path inside the hierarchy: "/sys/fs/cgroup/x" and
// "x" both give "/x" when the hierarchy is mounted on /sys/fs/cgroup.
std::string normalize_parent(std::string_view value, const std::vector<Hierarchy>& hs);

bool contains(const std::vector<std::string>& v, std::string_view s);

}  // namespace kago::cgroup
