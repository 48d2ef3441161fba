// net-setup's command process, started first (--veth and --user-mode): it
// makes its namespaces itself (the kernel's 0.7 ms for a network namespace
// then run on another CPU while the supervisor takes the lease and writes
// the state files), tells the supervisor, and execs the command when told.
//
// It shares the supervisor's memory (child::start_shared, as the vfork() of
// posix_spawn), not its descriptors (so the gate and the command's file
// must be open before start()), and runs on a stack of its own, alongside
// the supervisor: it obeys rule 3 of core/child.hpp. It reads only what is
// set before start() or before go() publishes it. Its signals stay blocked
// until it execs.
//
// The two sides tell each other through futex words (proc::post), not
// pipes: a trace showed the supervisor waiting on the child's CPU, where a
// pipe's wake-up had put it, the child behind it, and the other CPU idle.
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "core/child.hpp"
#include "core/env.hpp"
#include "core/exec.hpp"
#include "core/ready.hpp"
#include "core/result.hpp"

namespace kago::net {

class EarlyChild {
  public:
    // What the child does first, after clone, after PR_SET_PDEATHSIG: raw
    // system calls only. 0 or an errno.
    using Make = int (*)(const void* arg);

    EarlyChild() = default;
    // A child not yet reaped (forget()) is killed and reaped: it runs on
    // our stack_ and reads our words.
    ~EarlyChild() { kill(); }
    EarlyChild(const EarlyChild&) = delete;
    EarlyChild& operator=(const EarlyChild&) = delete;

    // Start the child; `arg` must live until made() returns.
    Status start(Make make, const void* arg);
    // Wait until the child has run `make`: its result, or ECHILD when it
    // died first.
    int made();
    // Copy the command and its environment (this process's as it is now,
    // with `contract`'s settings) for the child: a child that runs
    // alongside us must not read what setenv() changes. `p` must live until
    // the child has exec'd.
    void prepare(const PreparedExec& p, const env::Contract& contract);
    // Let it exec the prepared command, keeping the gate's read end open
    // across the exec. Makes us undumpable first (proc::undumpable).
    Status go(ready::Gate::Ends gate);
    pid_t pid() const { return proc_.pid(); }
    // It was reaped (supervise()): nothing of ours is in use any more.
    void forget() { (void)proc_.release(); }
    // Kill and reap it, if it is still ours.
    void kill() { (void)proc_.kill(); }

  private:
    static int main(void* self);
    static constexpr int kWait = 0, kGo = 1;
    child::Process proc_;
    pid_t parent_ = -1;
    int made_ = 0, made_err_ = 0, go_ = kWait;
    bool spread_ = false;
    cpu_set_t cpus_;
    sigset_t mask_;
    Make make_ = nullptr;
    const void* arg_ = nullptr;
    child::Exec exec_;
    std::vector<std::string> env_;
    std::vector<char*> envp_;
    std::string failure_;  // "net-setup: CMD: "
    ready::Gate::Ends gate_;
    child::Stack stack_;
};

}  // namespace kago::net
