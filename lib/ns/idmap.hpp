// User namespace id maps: parsing and checking INSIDE:OUTSIDE:COUNT lists,
// /etc/subuid and /etc/subgid, and writing the maps of a child from
// outside, directly or through newuidmap/newgidmap (package uidmap).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace kago::ns {

struct IdRange {
    uint32_t inside = 0, outside = 0, count = 0;
    bool operator==(const IdRange&) const = default;
};
using IdMap = std::vector<IdRange>;

// "0:1000:1,1:100000:65536" (one option value). `option` names it in errors.
Result<IdMap> parse_map(std::string_view spec, std::string_view option);
// Several option values, each a list, joined and checked.
Result<IdMap> parse_maps(const std::vector<std::string>& specs, std::string_view option);
// Counts above 0, no range past 2^32, at most 340 lines, and no two ranges
// overlapping inside or outside (the kernel refuses those).
Status check_map(const IdMap& map, std::string_view option);
// The text of /proc/PID/uid_map: "0 1000 1\n".
std::string map_text(const IdMap& map);
// "0:1000:1,1:100000:65536"
std::string map_spec(const IdMap& map);

// A range of /etc/subuid or /etc/subgid.
struct SubRange {
    uint32_t start = 0, count = 0;
    bool operator==(const SubRange&) const = default;
};
// The ranges of a user, found by name or by number, in the text of
// /etc/subuid ("name:start:count" lines; '#' comments).
std::vector<SubRange> parse_subid(std::string_view text, std::string_view user, uint32_t id);
// The map of --map-auto: the caller's id as 0, its ranges from 1 on.
Result<IdMap> auto_map(uint32_t id, const std::vector<SubRange>& ranges, std::string_view file);
// Whether the text of /proc/self/uid_map is the initial namespace's.
bool initial_map(std::string_view self_map);
// The map of --map-auto in a user namespace that is not the initial one
// (one that net-setup --user-mode --map-auto made): the caller's id as 0,
// then every other id this namespace maps (from /proc/self/uid_map), from 1
// on. An error when it maps the caller's id only.
Result<IdMap> nested_auto_map(uint32_t id, std::string_view self_map, std::string_view what);
// The user name of a uid, from the text of /etc/passwd ("" when absent).
std::string user_name(std::string_view passwd, uint32_t uid);

// What to write for a new user namespace, planned before the child exists.
struct MapRequest {
    bool map_root = false;  // the caller as 0
    bool map_auto = false;  // the caller as 0, then its subordinate ranges
    std::vector<std::string> map_user, map_group;
};
struct Caller {
    uint32_t uid = 0, gid = 0;
    bool privileged = false;  // root outside: may write any map itself
    std::string subuid = "/etc/subuid", subgid = "/etc/subgid", passwd = "/etc/passwd";
    std::string path;  // $PATH, to find newuidmap and newgidmap
    // The text of /proc/self/uid_map and gid_map ("" : the initial namespace).
    std::string self_uid_map, self_gid_map;
};
struct MapPlan {
    IdMap uid, gid;
    std::string uid_helper, gid_helper;  // newuidmap/newgidmap path; empty: write the file
    bool deny_setgroups = false;         // write "deny" to setgroups before gid_map
};
Result<MapPlan> plan_maps(const MapRequest& req, const Caller& caller);

// Find a program in a PATH string; the Error hints at the package.
Result<std::string> find_helper(std::string_view program, std::string_view path);
// The arguments of newuidmap/newgidmap for `pid`.
std::vector<std::string> helper_argv(std::string_view program, pid_t pid, const IdMap& map);

// Write the maps of process `pid` (traced; in dry run only shown).
Status write_maps(const MapPlan& plan, pid_t pid);

// Whether a process may write `plan` into its own new user namespace,
// right after unshare(CLONE_NEWUSER): one line for the uid and one for the
// gid, each mapping the caller's own id, with no helper (the kernel's
// rule for an unprivileged writer inside the namespace).
bool own_maps_only(const MapPlan& plan, uint32_t uid, uint32_t gid);
// Write them to /proc/self (traced).
Status write_own_maps(const MapPlan& plan);

}  // namespace kago::ns
