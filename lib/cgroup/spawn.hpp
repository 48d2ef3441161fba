// Starting the command inside the cgroup. On v2 the child is created in it
// by clone3(CLONE_INTO_CGROUP), so it never runs outside; on v1 (or a
// kernel without clone3) the child writes "0" into each cgroup.procs
// before anything else. The child then sets its rlimits, asks for SIGKILL
// when the supervisor dies, and execs. It calls only async-signal-safe
// functions: every trace line and error text is prepared beforehand.
#pragma once

#include <sys/types.h>

#include <vector>

#include "cgroup/cgroup.hpp"
#include "cgroup/limits.hpp"
#include "core/env.hpp"
#include "core/exec.hpp"
#include "core/proc.hpp"
#include "core/result.hpp"

namespace kago::cgroup {

struct SpawnRequest {
    const PreparedExec* exec = nullptr;
    const JoinTarget* join = nullptr;
    std::vector<Rlimit> rlimits;
    const proc::SignalBlock* signals = nullptr;
    // The contract: spawn() takes the payload's readiness gate and console
    // out of it, then applies it (the command's environment).
    env::Contract* contract = nullptr;
};

struct SpawnFailure {
    Error error;
    int code = 125;  // 126/127 when the exec failed
};

// The child's pid. When the child fails before its exec it has already
// exited; the failure names the step and carries the exit code to use.
Result<pid_t> spawn(const SpawnRequest& req, SpawnFailure* failure);

// --dry-run: print the calls spawn() would make (clone3, the writes, the
// prlimits), without making them.
void print_plan(const SpawnRequest& req);

// "prlimit(0, RLIMIT_NOFILE, {rlim_cur=64, rlim_max=64}, NULL)"
std::string describe_rlimit(const Rlimit& r);

}  // namespace kago::cgroup
