// Internal to lib/cgroup: what the v2 and v1 backends share.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "cgroup/cgroup.hpp"

namespace kago::cgroup::detail {

bool exists(const std::string& path);
// The pids in a cgroup.procs file.
std::vector<pid_t> read_pids(const std::string& procs_path);
// Reap every child of ours that has exited (we are a subreaper).
void reap_children();
// rmdir, retried while the kernel still reports EBUSY (the last tasks are
// leaving); traced once. ENOENT is success.
Status remove_dir(const std::string& path);
// Remove `path` when it is an empty default parent; errors are ignored.
void remove_if_empty(const std::string& path);
// Wait (up to ~10 s) until every cgroup.procs in `procs_paths` is empty
// (and, on v2, `events` says "populated 0", which counts child cgroups),
// sending SIGKILL to any pid still listed and reaping our children.
Status wait_empty(const std::vector<std::string>& procs_paths, const std::string& events = "");
// Prefix the option to an error: "--memory: write '...' to ...".
Error for_option(std::string_view option, Error e);
// Untraced read of a cgroup file; "" when it cannot be read.
std::string read_or_empty(const std::string& path);

std::unique_ptr<Cgroup> make_v2(const Hierarchy& h, std::string parent_rel, bool default_parent,
                                std::string leaf);
std::unique_ptr<Cgroup> make_v1(const std::vector<Hierarchy>& hs, std::vector<std::string> missing,
                                std::string parent_rel, bool default_parent, std::string leaf);

}  // namespace kago::cgroup::detail
