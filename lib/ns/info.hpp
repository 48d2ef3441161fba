// What unshare-run reports about a container: the inode numbers of its
// namespaces, for --info-fd and the state directory (files pid and ns/*).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/state.hpp"
#include "ns/types.hpp"

namespace kago::ns {

struct NsInode {
    Type type;
    uint64_t inode;
};
// The namespaces of a process, from /proc/PID/ns (types the kernel lacks
// are left out).
Result<std::vector<NsInode>> ns_inodes(pid_t pid);

// {"pid":1234,"name":"web","state_dir":"/run/kago/web","namespaces":{"user":4026531837,...}}
std::string info_json(pid_t pid, std::string_view name, std::string_view state_dir,
                      const std::vector<NsInode>& ns);

// The state files: "pid", and "ns", a symbolic link to /proc/PID/ns, so
// that ns/net and the rest name the container's namespaces while it runs
// (readlink shows "net:[INODE]"; nsenter --net=DIR/ns/net joins it).
Status write_state(const state::StateDir& dir, pid_t pid);

}  // namespace kago::ns
