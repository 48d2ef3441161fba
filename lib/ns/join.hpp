// Joining existing namespaces: --join TYPE=PATH and --join-pid PID (all the
// namespaces of a process, then its root and working directory, like
// nsenter(1)). Everything is opened before anything changes, so that a
// missing process or a refused namespace fails early.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "ns/types.hpp"

namespace kago::ns {

struct JoinSpec {
    Type type;
    std::string path;
};
// "net=/run/netns/web"
Result<JoinSpec> parse_join(std::string_view spec);
// A process id for --join-pid.
Result<pid_t> parse_pid(std::string_view s);

struct Join {
    Type type;
    std::string path;
    UniqueFd fd;
};
struct Joins {
    std::vector<Join> ns;  // in join order: user first
    UniqueFd root, cwd;    // --join-pid: the process's root and working directory
    std::string root_path, cwd_path;
    unsigned long types() const;  // CLONE_NEW* of the joined namespaces
};

// Open the namespaces of `specs` and, when pid > 0, those of the process
// that differ from ours, with its root and cwd. An explicit --join wins over
// the same type of --join-pid.
Result<Joins> open_joins(const std::vector<JoinSpec>& specs, pid_t pid);

}  // namespace kago::ns
