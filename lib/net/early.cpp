#include "net/early.hpp"

#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/proc.hpp"
#include "core/trace.hpp"

namespace kago::net {

// After clone, in our memory (rule 3 of core/child.hpp).
int EarlyChild::main(void* arg) {
    auto* self = static_cast<EarlyChild*>(arg);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int err = ::getppid() == self->parent_ ? self->make_(self->arg_) : ESRCH;
    self->made_err_ = err;
    proc::post(self->made_, 1);
    if (err) return 125;
    if (proc::wait_while(self->go_, kWait, nullptr) != kGo) return 125;
    if (self->spread_) ::sched_setaffinity(0, sizeof self->cpus_, &self->cpus_);  // the command's own
    self->gate_.keep_in_child();
    ::sigprocmask(SIG_SETMASK, &self->mask_, nullptr);
    // No report channel: the supervisor sees the exit status; the message
    // is ours to write.
    child::OnFailure on;
    on.message = self->failure_.c_str();
    child::exec_or_exit(self->exec_, on);
}

Status EarlyChild::start(Make make, const void* arg) {
    make_ = make;
    arg_ = arg;
    parent_ = ::getpid();
    spread_ = ::sched_getaffinity(0, sizeof cpus_, &cpus_) == 0 && CPU_COUNT(&cpus_) > 1;
    {
        child::SignalBlock block;
        mask_ = block.old_mask();
        proc_ = child::Process(child::start_shared(main, this, stack_));
    }
    if (!proc_) return sys_error("clone(CLONE_VM) to start the command");
    // Traced by the caller: its namespace was made only once we waited.
    if (spread_) proc::move_off_our_cpu(proc_.pid(), cpus_);
    return {};
}

int EarlyChild::made() {
    struct timespec tick = {0, 20 * 1000 * 1000};
    while (proc::wait_while(made_, 0, &tick) == 0) {
        siginfo_t si = {};
        if (::waitid(P_PID, static_cast<id_t>(proc_.pid()), &si, WEXITED | WNOHANG | WNOWAIT) ==
                0 &&
            si.si_pid == proc_.pid())
            return ECHILD;
    }
    return made_err_;
}

void EarlyChild::prepare(const PreparedExec& p, const env::Contract& contract) {
    exec_ = exec_args(p);
    env_ = contract.render(env::current());
    envp_.clear();
    for (auto& v : env_) envp_.push_back(v.data());
    envp_.push_back(nullptr);
    exec_.envp = envp_.data();
    failure_ = cat(trace::program(), ": ", p.argv[0], ": ");
}

Status EarlyChild::go(ready::Gate::Ends gate) {
    if (!proc_ || __atomic_load_n(&go_, __ATOMIC_ACQUIRE) != kWait) return {};
    gate_ = gate;
    // We wait beside the command from now on (see proc::undumpable). The
    // memory is shared until the child's exec, which makes the command
    // dumpable again.
    TRY(proc::undumpable());
    proc::post(go_, kGo);
    return {};
}

}  // namespace kago::net
