// `cap-drop --show [PID]`: a process's isolation state, read from /proc,
// as one readable table or as JSON.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "caps/caps.hpp"
#include "core/result.hpp"

namespace kago::caps {

struct NsInfo {
    std::string type;    // "pid"
    uint64_t inode = 0;  // 0: unreadable
    enum class Host { Same, Own, Unknown } host = Host::Unknown;
};

struct ProcessState {
    std::string pid;   // as given ("self" resolved to a number when possible)
    std::string comm;  // Name:
    std::string uid, gid, groups;  // "real effective saved fs", "1 2 3"
    CapSet inheritable, permitted, effective, bounding, ambient;
    int no_new_privs = -1;     // -1: unknown
    int seccomp = -1;          // 0 disabled, 1 strict, 2 filter
    int seccomp_filters = -1;  // Seccomp_filters: (Linux 5.9+)
    std::vector<std::array<uint64_t, 3>> uid_map, gid_map;
    std::vector<NsInfo> namespaces;
    bool host_visible = false;  // /proc/1 is PID 1 of the host
    std::string cgroup, root, cwd;
};

// Fill the fields found in /proc/PID/status text.
void parse_status(std::string_view text, ProcessState& s);
// "0 100000 65536\n..." -> triples. Malformed lines are skipped.
std::vector<std::array<uint64_t, 3>> parse_id_map(std::string_view text);
// The cgroup path from /proc/PID/cgroup text (the v2 line "0::PATH", else
// the first line's path).
std::string parse_cgroup(std::string_view text);

// Read everything about pid ("self" or a number) under proc_root.
Result<ProcessState> inspect(std::string_view pid, const std::string& proc_root = "/proc");

std::string format_table(const ProcessState& s);
std::string format_json(const ProcessState& s);

}  // namespace kago::caps
