// cg-limit: create a cgroup, write the limits, start the rest of the chain
// inside it, wait, report what the limits did, and remove the cgroup.
// The first program of a chain; it stays on as the supervisor.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup/cgroup.hpp"
#include "cgroup/session.hpp"
#include "cgroup/spawn.hpp"
#include "core/child.hpp"
#include "core/cli.hpp"
#include "core/env.hpp"
#include "core/exec.hpp"
#include "core/json.hpp"
#include "core/proc.hpp"
#include "core/state.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace cg = kago::cgroup;
namespace cli = kago::cli;
using kago::cat;

namespace {

struct Args {
    std::string memory, memory_high, memory_swap, cpus, cpu_weight, pids, io_weight;
    std::vector<std::string> io_rbps, io_wbps, io_riops, io_wiops, rlimits;
    std::string cpuset_cpus, cpuset_mems, parent;
    int status_fd = -1;
    bool if_available = false, gc = false;
};

// A bad value is a usage error (with "Try --help"); a failed stat(2) of a
// device is reported as it is. Both exit 125.
template <class T>
kago::Result<T> checked(kago::Result<T> r) {
    if (!r && r.error().err == 0) return kago::Error(std::move(r).error()).as_usage();
    return r;
}

// Every value is checked before anything changes.
kago::Result<cg::Limits> limits_from(const Args& a, std::vector<cg::Rlimit>& rlimits) {
    cg::Limits l;
    auto opt = [](const std::string& s, auto parse) -> kago::Result<std::optional<uint64_t>> {
        if (s.empty()) return std::optional<uint64_t>();
        return std::optional<uint64_t>(TRY(checked(parse(s))));
    };
    l.memory = TRY(opt(a.memory, [](auto& s) { return cg::parse_size(s, "--memory"); }));
    l.memory_high =
        TRY(opt(a.memory_high, [](auto& s) { return cg::parse_size(s, "--memory-high"); }));
    l.memory_swap =
        TRY(opt(a.memory_swap, [](auto& s) { return cg::parse_size(s, "--memory-swap"); }));
    l.cpu_quota_us = TRY(opt(a.cpus, [](auto& s) { return cg::parse_cpus(s, "--cpus"); }));
    l.cpu_weight = TRY(
        opt(a.cpu_weight, [](auto& s) { return cg::parse_range(s, 1, 10000, "--cpu-weight"); }));
    l.pids = TRY(opt(a.pids, [](auto& s) { return cg::parse_count(s, "--pids"); }));
    l.io_weight =
        TRY(opt(a.io_weight, [](auto& s) { return cg::parse_range(s, 1, 10000, "--io-weight"); }));
    auto io = [&](const std::vector<std::string>& v, cg::IoKind k) -> kago::Status {
        for (const auto& s : v) l.io.push_back(TRY(checked(cg::parse_io_limit(s, k))));
        return {};
    };
    TRY(io(a.io_rbps, cg::IoKind::read_bps));
    TRY(io(a.io_wbps, cg::IoKind::write_bps));
    TRY(io(a.io_riops, cg::IoKind::read_iops));
    TRY(io(a.io_wiops, cg::IoKind::write_iops));
    if (!a.cpuset_cpus.empty())
        l.cpuset_cpus = TRY(checked(cg::parse_cpu_list(a.cpuset_cpus, "--cpuset-cpus")));
    if (!a.cpuset_mems.empty())
        l.cpuset_mems = TRY(checked(cg::parse_cpu_list(a.cpuset_mems, "--cpuset-mems")));
    for (const auto& r : a.rlimits) rlimits.push_back(TRY(checked(cg::parse_rlimit(r))));
    return l;
}

// Remove the state directories of the containers of reaped cgroups, when
// their owner is gone too (kago::state::collect checks it).
void reap_state_dirs(const std::vector<std::string>& reaped) {
    for (const auto& dir : reaped) {
        auto leaf = cg::parse_leaf(dir.substr(dir.rfind('/') + 1));
        if (!leaf || !kago::state::validate_name(leaf->name)) continue;
        (void)kago::state::collect(leaf->name);
    }
}

// --gc: the cgroups and state directories that killed chains left.
kago::Status collect_garbage(const cg::Layout& layout, const std::string& parent, bool verbose) {
    for (const auto& dir : cg::reap_leftovers(layout, parent))
        if (verbose) cli::note(cat("removed the leftover cgroup ", dir));
    for (const auto& l : TRY(kago::state::gc())) {
        if (l.removed && verbose) cli::note(cat("removed the state directory of ", l.name));
        if (!l.owner_alive && l.running)
            cli::warn(cat("container '", l.name, "': its supervisor (pid ", l.owner, ") is gone but process ", l.running,
                          " still runs; nothing of it was removed"));
    }
    return {};
}

// Only rlimits: they need no cgroup, and with nothing to report or to
// remove afterwards, no supervisor either. Set them and exec.
kago::Result<int> set_rlimits_and_exec(const std::vector<cg::Rlimit>& rlimits,
                                       const kago::PreparedExec& next,
                                       kago::env::Contract& contract) {
    for (const auto& r : rlimits) {
        struct rlimit64 rl;
        rl.rlim_cur = r.soft == cg::kMax ? RLIM64_INFINITY : r.soft;
        rl.rlim_max = r.hard == cg::kMax ? RLIM64_INFINITY : r.hard;
        long rc = kago::trace::call(
            [&] { return cg::describe_rlimit(r); },
            [&] { return ::syscall(SYS_prlimit64, 0, r.resource, &rl, nullptr); });
        if (rc != 0) return kago::sys_error(cat("--rlimit ", r.name, ": prlimit"));
    }
    return cli::exec_next(next, contract, !next.kago);
}

// The report once the command has ended: what the limits did, and the
// --status-fd line.
void report_end(cg::Session& session, const Args& a, const std::string& name,
                const std::string& rel, int ws) {
    auto report = session.finish(ws);
    if (report.kill_error) cli::report(*report.kill_error);
    for (const auto& line : report.effects) cli::note(cat(name, ": ", line));
    if (a.status_fd >= 0) {
        if (auto r = kago::json::write_and_close(a.status_fd,
                                                 cg::status_json(name, rel, report.stats, ws));
            !r)
            cli::report(r.error());
    }
}

// Everything after option parsing. Returns the command's wait status (0
// for --gc); the owners (the state directory, the cgroup session) undo
// what was made when a step fails.
kago::Result<int> run(const Args& a, cli::Common& common) {
    // 1. Check every value; the next program.
    std::vector<cg::Rlimit> rlimits;
    cg::Limits limits = TRY(limits_from(a, rlimits));
    if (a.status_fd >= 0)
        ::fcntl(a.status_fd, F_SETFD, FD_CLOEXEC);  // the command does not inherit it
    kago::env::Contract& contract = common.contract;
    std::string name = TRY(kago::state::container_name(contract));
    auto next = TRY(kago::prepare_exec(common.command));
    if (!rlimits.empty() && limits.controllers().empty() && a.status_fd < 0 && a.parent.empty())
        return set_rlimits_and_exec(rlimits, next, contract);
    if (a.gc) {
        if (!common.command.empty()) return kago::usage_error("--gc takes no command").as_usage();
        if (common.dry_run) return 0;
        TRY(collect_garbage(TRY(cg::detect(limits.controllers())), a.parent,
                            common.verbose || kago::trace::verbose()));
        return 0;
    }

    // 2. Which version, where, and the files to write; the state directory;
    //    the leftovers of killed chains, reaped once it is ours (acquire()
    //    waits for a killed same-name chain to end, and its cgroup empties).
    std::vector<std::string> warnings;
    kago::state::StateDir state;  // removed after the session's cgroup, on every way out
    auto session = TRY(checked(cg::Session::plan(limits, a.parent, a.if_available, warnings)));
    const bool dry = common.dry_run;
    if (!dry) state = TRY(kago::state::StateDir::acquire(name, contract));
    if (!dry) {
        for (const auto& dir : session.reap_leftovers()) {
            if (common.verbose) cli::note(cat("removed the leftover cgroup ", dir));
            reap_state_dirs({dir});
        }
    }

    // 3. The cgroup, with its limits; KAGO_CGROUP and the state file: the
    //    path as /proc/PID/cgroup shows it.
    auto set = session.create(name, warnings);
    for (const auto& w : warnings) cli::warn(w);
    TRY(set);
    cg::Cgroup& cgroup = session.cgroup();
    const std::string rel = cgroup.relative();
    contract.set(kago::env::kCgroup, rel);  // applied by spawn() (or the dry run's exec)
    TRY(state.write("cgroup", rel));

    // 4. Start the command in it (a dry run shows the calls and goes on
    //    down the chain).
    cg::JoinTarget join;
    if (dry) {
        if (session.layout().version == cg::Version::v2)
            join.dir_path = cgroup.path();
        else
            for (const auto& d : cgroup.dirs()) join.procs_paths.push_back(d + "/cgroup.procs");
    } else {
        join = TRY(cgroup.join_target());
    }
    kago::proc::SignalBlock signals;
    cg::SpawnRequest req{&next, &join, rlimits, &signals, &contract};
    if (dry) {
        cg::print_plan(req);
        return cli::exec_next(next, contract, false);
    }
    // The supervisor: orphans of the container become our children, so
    // that we reap them after the kill.
    (void)kago::trace::call([] { return std::string("prctl(PR_SET_CHILD_SUBREAPER, 1)"); },
                            [] { return ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); });
    cg::SpawnFailure failure;
    auto child = cg::spawn(req, &failure);
    if (!child) {
        // The command never ran: the status line still comes, with 125-127.
        if (a.status_fd >= 0)
            (void)kago::json::write_and_close(
                a.status_fd, cg::status_json(name, rel, cgroup.stats(), failure.code << 8));
        return std::move(failure.error).with_status(failure.code);
    }
    join = cg::JoinTarget{};  // close the cgroup descriptors

    // 5. Wait, forwarding signals. The first SIGINT/SIGTERM/SIGHUP goes to
    //    the command. A second one escalates against the container only: a
    //    supervisor of the chain (net-setup, unshare-run) gets it too and
    //    escalates below itself, then cleans up; any other command is
    //    killed, and what it left in the cgroup goes once it is reaped.
    //    Never the whole cgroup here: the supervisors in it would leak what
    //    they made.
    int terminating = 0;
    int ws = TRY(kago::proc::supervise(*child, [&](int sig) {
        if ((sig == SIGINT || sig == SIGTERM || sig == SIGHUP) && ++terminating > 1 &&
            !kago::runs_supervisor(*child, next))
            (void)::kill(*child, SIGKILL);
    }));

    // 6. What is left of the container goes, then the report, then removal.
    report_end(session, a, name, rel, ws);
    if (auto r = session.remove(); !r) cli::report(r.error());
    (void)state.remove();
    return ws;
}

}  // namespace

int main(int argc, char** argv) {
    cli::Options opts(
        "cg-limit",
        "Create a cgroup with these limits, run COMMAND in it, report what the limits "
        "did, and remove the cgroup.\nThe first program of a kago chain; works on "
        "cgroup v2 and v1.");
    cli::Common common;
    Args a;
    opts.option("--memory", a.memory, "SIZE",
                "Memory limit: memory.max (v1: memory.limit_in_bytes); K/M/G/T or max");
    opts.option("--memory-high", a.memory_high, "SIZE",
                "Throttle and reclaim above SIZE: memory.high (v2 only)");
    opts.option("--memory-swap", a.memory_swap, "SIZE",
                "Swap allowed beyond --memory: memory.swap.max (v1: memsw = memory + SIZE)");
    opts.option("--cpus", a.cpus, "FRACTION",
                "CPU bandwidth, e.g. 1.5 CPUs: cpu.max (v1: cfs_quota_us/cfs_period_us)");
    opts.option(
        "--cpu-weight", a.cpu_weight, "N",
        "Relative CPU weight 1-10000, default 100: cpu.weight (v1: cpu.shares = N*1024/100)");
    opts.option("--pids", a.pids, "N", "Maximum number of processes and threads: pids.max");
    opts.option(
        "--io-read-bps", a.io_rbps, "DEV:RATE",
        "Read bytes per second from DEV (path or MAJ:MIN): io.max rbps (v1: blkio.throttle)");
    opts.option("--io-write-bps", a.io_wbps, "DEV:RATE",
                "Write bytes per second to DEV: io.max wbps");
    opts.option("--io-read-iops", a.io_riops, "DEV:RATE",
                "Read operations per second from DEV: io.max riops");
    opts.option("--io-write-iops", a.io_wiops, "DEV:RATE",
                "Write operations per second to DEV: io.max wiops");
    opts.option("--io-weight", a.io_weight, "N",
                "Relative I/O weight 1-10000: io.weight or io.bfq.weight (v1: blkio.bfq.weight)");
    opts.option("--cpuset-cpus", a.cpuset_cpus, "LIST",
                "Run only on these CPUs, e.g. 0-3,6: cpuset.cpus");
    opts.option("--cpuset-mems", a.cpuset_mems, "LIST",
                "Allocate only on these memory nodes: cpuset.mems");
    opts.option(
        "--rlimit", a.rlimits, "NAME=SOFT[:HARD]",
        "Set a resource limit with prlimit, e.g. nofile=1024 or core=0:unlimited (repeatable)");
    opts.option("--parent", a.parent, "PATH",
                "Create the cgroup under PATH (default: a 'kago' cgroup beside the caller's own on "
                "v2, below it on v1)");
    opts.descriptor("--status-fd", a.status_fd,
                    "When the command exits, write one JSON line to descriptor N: exit, signal, "
                    "oom_kills, memory_peak, CPU time, throttling");
    opts.flag("--gc", a.gc,
              "Remove the empty cgroups and the state directories that killed chains left; exit");
    opts.flag("--if-available", a.if_available,
              "A missing controller is a warning instead of an error (the limits it would set are "
              "not applied)");
    if (auto code = opts.parse(argc, argv, common)) return *code;

    auto ws = run(a, common);
    if (!ws) return cli::fail(ws.error());
    kago::child::exit_like(*ws);
}
