// unshare-run: create namespaces and run the rest of the chain inside them.
//
// This file holds the options and the order of the steps; the mechanisms
// are in lib/ns. The steps, each traced with -v and shown by --dry-run:
//
//   1. check the options; open what --join and --join-pid name; the next
//      kago program, as a sealed copy when we join a PID namespace
//   2. the state directory (KAGO_STATE_DIR), when we are first in the chain
//   3. in this process: make the time namespace (as root)
//   4. clone() a child into the new namespaces
//   5. from outside: its uid/gid maps, the state files, --info-fd
//   6. the child: joins, hostname, propagation, lo up, /proc; then it execs
//      the command, or forks it and stays as its PID 1
//   7. wait (with --tty: proxy the caller's terminal to the container's),
//      remove the state directory, leave with the container's status
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "core/child.hpp"
#include "core/cli.hpp"
#include "core/console.hpp"
#include "core/env.hpp"
#include "core/fds.hpp"
#include "core/json.hpp"
#include "core/proc.hpp"
#include "core/state.hpp"
#include "core/sys.hpp"
#include "ns/child.hpp"
#include "ns/idmap.hpp"
#include "ns/info.hpp"
#include "ns/join.hpp"
#include "ns/types.hpp"

using namespace kago;

namespace {

struct Options {
    ns::Request ns;
    bool die_with_parent = false;
    bool keep_env = false;
    bool tty = false;
    int info_fd = -1;
    std::vector<int> keep_fds;
    std::string name;
};

void add_options(cli::Options& opts, Options& o) {
    auto& r = o.ns;
    opts.flag("-U,--user", r.user, "New user namespace (see the --map options)");
    opts.flag("-p,--pid", r.pid, "New PID namespace: the command runs under a small init as PID 1");
    opts.flag("-m,--mount", r.mount, "New mount namespace, with private propagation");
    opts.flag("-u,--uts", r.uts, "New UTS namespace (hostname)");
    opts.flag("-i,--ipc", r.ipc, "New IPC namespace");
    opts.flag("-n,--net", r.net, "New network namespace, with lo up");
    opts.flag("-C,--cgroup", r.cgroup, "New cgroup namespace");
    opts.flag("-T,--time", r.time, "New time namespace (see --monotonic, --boottime)");
    opts.flag("-a,--all", r.all,
              "All of the above but --user; without root also --user --map-root");
    opts.flag("-r,--map-root", r.map_root, "Map the caller to uid and gid 0 (implies --user)");
    opts.option("--map-user", r.map_user, "MAP",
                "Uid map INSIDE:OUTSIDE:COUNT[,...] (implies --user)");
    opts.option("--map-group", r.map_group, "MAP",
                "Gid map INSIDE:OUTSIDE:COUNT[,...] (implies --user)");
    opts.flag(
        "--map-auto", r.map_auto,
        "Map the caller to 0 and its /etc/subuid and /etc/subgid ranges from 1 (newuidmap); in "
        "a user namespace (net-setup --user-mode --map-auto), every id it maps");
    opts.option("--hostname", r.hostname, "NAME", "Set the hostname (implies --uts)");
    opts.option("--monotonic", r.monotonic, "SECONDS", "CLOCK_MONOTONIC offset (implies --time)");
    opts.option("--boottime", r.boottime, "SECONDS", "CLOCK_BOOTTIME offset (implies --time)");
    opts.option("--propagation", r.propagation, "MODE",
                "Mount propagation of / in the new mount namespace: private (default), slave, "
                "shared or unchanged");
    opts.flag("--mount-proc", r.mount_proc, "Mount a new /proc (implies --mount --pid)");
    opts.option("--join", r.join, "TYPE=PATH",
                "Join the namespace file PATH, e.g. net=/run/netns/web (repeatable)");
    opts.option("--join-pid", r.join_pid, "PID",
                "Join every namespace of process PID, then its root and working directory");
    opts.flag("--as-pid-1", r.as_pid_1,
              "With --pid, run the command itself as PID 1, without init");
    opts.flag("--die-with-parent", o.die_with_parent, "Kill the container when our parent dies");
    opts.descriptor("--info-fd", o.info_fd,
                    "Write JSON (pid, name, namespace inodes) to descriptor N");
    opts.option("--name", o.name, "NAME", "Container name (default: KAGO_NAME, or a random id)")
        .env(env::kName);
    opts.descriptors(
        "--keep-fd", o.keep_fds,
        "Leave descriptor N open for a command that is not a kago program (repeatable); "
        "all others above 2 are closed");
    opts.flag("--keep-env", o.keep_env, "Keep the KAGO_ variables for the command");
    opts.flag(
        "-t,--tty", o.tty,
        "Give the command a terminal of its own, from the container's /dev/ptmx, and proxy the "
        "caller's terminal to it (raw, with its window size); the container holds no "
        "descriptor to the caller's terminal");
}

// Everything after option parsing. Returns how the container ended; the
// owners (state directory, child) clean up as this function returns.
Result<ns::Outcome> run(Options& o, cli::Common& common) {
    // 1. Check the options; open what we join before anything changes.
    bool root = ::geteuid() == 0;
    // Started by a supervisor of the chain (it asked for PR_SET_PDEATHSIG):
    // we die with it as --die-with-parent says, killing the container first.
    if (!common.dry_run && proc::inherited_pdeathsig() != 0) o.die_with_parent = true;
    std::vector<ns::JoinSpec> specs;
    for (const auto& j : o.ns.join) specs.push_back(TRY(ns::parse_join(j)));
    pid_t join_pid = o.ns.join_pid.empty() ? 0 : TRY(ns::parse_pid(o.ns.join_pid));
    ns::Joins joins = TRY(ns::open_joins(specs, join_pid));
    TRY(ns::resolve(o.ns, root, joins.types()));
    const unsigned long create = o.ns.create;
    ns::MapPlan maps;
    if (create & CLONE_NEWUSER) {
        ns::Caller caller;
        caller.uid = ::getuid();
        caller.gid = ::getgid();
        caller.privileged = root;
        caller.path = env::get("PATH");
        if (o.ns.map_auto) {  // in a user namespace already, --map-auto maps what it maps
            auto u = sys::read_file("/proc/self/uid_map"), g = sys::read_file("/proc/self/gid_map");
            if (u && g) {
                caller.self_uid_map = *u;
                caller.self_gid_map = *g;
            }
        }
        maps = TRY(
            ns::plan_maps({o.ns.map_root, o.ns.map_auto, o.ns.map_user, o.ns.map_group}, caller));
    }
    if (o.info_fd >= 0 && ::fcntl(o.info_fd, F_SETFD, FD_CLOEXEC) != 0)
        return sys_error(cat("--info-fd ", o.info_fd));
    if (!o.name.empty()) TRY(state::validate_name(o.name));
    PreparedExec cmd = TRY(prepare_exec(common.command));
    // Where an attacker can be: a PID namespace we join holds the container's
    // processes, which could rewrite a host file that a kago program runs from
    // (CVE-2019-5736): it runs from a sealed copy, and the rest of its chain
    // too. A PID namespace we create holds only the chain until the payload
    // runs, and the init, which is undumpable and runs no exec.
    if (joins.types() & CLONE_NEWPID) TRY(seal_program(cmd));
    // The payload gets 0, 1, 2 and what --keep-fd names; kago programs pass
    // descriptors along the chain.
    if (!cmd.kago) TRY(fds::keep_only(o.keep_fds));
    bool strip_env = !o.keep_env && !cmd.kago;          // the payload sees no KAGO_ variable
    bool time_here = (create & CLONE_NEWTIME) && root;  // else the child makes it
    std::string offsets = ns::offsets_text(o.ns.monotonic_offset, o.ns.boottime_offset);

    // --tty: the console socket. A kago command gets it in KAGO_CONSOLE_FD
    // and the program that execs the payload makes the terminal; otherwise
    // the child makes it, just before its exec.
    console::Proxy tty;
    if (o.tty) tty = TRY(console::Proxy::create(common.contract));

    // The child's steps, prepared here: after clone() it may not allocate.
    proc::SignalBlock signals;  // no signal is lost between clone() and supervise()
    ns::ChildPlan child;
    if (o.tty) {  // the chain too keeps nothing of the caller's terminal
        child.new_session();
        auto stdio = tty.stdio();
        for (int fd = 0; fd < 3; ++fd)
            if (stdio.from[fd] >= 0) child.dup_fd(stdio.from[fd], fd);
    }
    if (o.tty && cmd.kago) child.keep_fd(tty.child_end());
    if (o.tty && !cmd.kago) child.set_console(tty.child_end());
    if (o.info_fd >= 0) child.close_fd(o.info_fd);
    if (o.die_with_parent) child.die_with_parent();
    // The child waits for us only where it must: for its maps (and, with
    // -v, so that the trace reads in order), and when the command can see
    // the state directory, whose files must exist by then.
    bool wait_for_maps = (create & CLONE_NEWUSER) || common.verbose;
    bool wait_for_state = !strip_env;
    if (wait_for_maps) child.wait_for_parent();
    for (const auto& j : joins.ns) child.join(j);  // user first
    child.enter_root(joins);
    if ((create & CLONE_NEWTIME) && !time_here) {
        child.unshare(CLONE_NEWTIME);
        if (!offsets.empty()) child.write_file("/proc/self/timens_offsets", offsets);
    }
    if (o.info_fd >= 0) child.report_namespaces();
    if (!o.ns.hostname.empty()) child.set_hostname(o.ns.hostname);
    if ((create & CLONE_NEWNS) && o.ns.propagation_mode != ns::Propagation::unchanged)
        child.mount("", "/", "", ns::propagation_flags(o.ns.propagation_mode), "",
                    cat("change propagation of / to ",
                        o.ns.propagation.empty() ? "private" : o.ns.propagation));
    if (create & CLONE_NEWNET) child.loopback_up();
    if (o.ns.mount_proc) {
        if (o.ns.propagation_mode != ns::Propagation::private_)  // keep the new /proc from the host
            child.mount("", "/proc", "", MS_REC | MS_PRIVATE, "", "make /proc private");
        child.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "",
                    "mount proc on /proc");
    }
    if (wait_for_state) child.wait_for_parent();
    child.set_command(cmd, common.contract, signals.old_mask(), o.ns.init, o.die_with_parent);

    // 2. The state directory (not in a dry run: it makes no calls). It is
    //    taken now when an earlier program made it, when a name given by the
    //    user may clash, or when the command sees it; otherwise it is made
    //    while the child starts (/run may be on a disk).
    env::Contract& contract = common.contract;
    bool state_now = !contract.state_dir.empty() || !o.name.empty() || !strip_env;
    std::string name = o.name.empty() ? TRY(state::container_name(contract)) : o.name;
    state::StateDir state;
    if (!common.dry_run && state_now) state = TRY(state::StateDir::acquire(name, contract));
    if (strip_env && !common.dry_run) contract.strip_kago();
    contract.apply();  // the child's environment

    // 3. In this process: die with the parent (SIGTERM, so that we kill the
    //    child and clean up), make the time namespace.
    pid_t parent = ::getppid();
    if (o.die_with_parent) TRY(proc::die_with_parent(SIGTERM, parent));
    if (time_here) {
        TRY(sys::unshare(CLONE_NEWTIME));
        if (!offsets.empty()) TRY(sys::write_file("/proc/self/timens_offsets", offsets));
    }

    // 4. The child, in the new namespaces.
    ns::Child c = TRY(ns::spawn(create & ~CLONE_NEWTIME, child));
    // We wait beside the container from here on (see proc::undumpable).
    // The child has its own memory already, whose /proc files the maps
    // below are written to.
    if (!common.dry_run) TRY(proc::undumpable());
    tty.forked();

    // 5. From outside: the maps, the state files, --info-fd.
    Status outside = [&]() -> Status {
        TRY(ns::write_maps(maps, c.pid()));
        if (common.dry_run) {
            ns::show_dry_run(child);
            cli::exec_command(cmd, contract, strip_env);
        }
        if (wait_for_maps) TRY(c.release());
        if (!state_now) state = TRY(state::StateDir::acquire(name, contract));
        TRY(ns::write_state(state, c.pid()));
        if (o.info_fd >= 0) {
            auto inodes = TRY(c.namespaces());
            TRY(json::write_and_close(o.info_fd,
                                      ns::info_json(c.pid(), name, state.path(), inodes)));
        }
        if (wait_for_state) TRY(c.release());
        return {};
    }();
    if (!outside) {
        ns::Outcome failed =
            c.stop(child);  // the child may have failed first: its error explains more
        if (failed.error) return failed;
        return std::move(outside).error();
    }

    // 6. runs in the child. 7. Wait, forwarding signals.
    // A second SIGINT/SIGTERM/SIGHUP: the init escalates by itself; a
    // command that is not a supervisor of the chain is killed.
    int terminating = 0;
    auto on_signal = [&](int sig) {
        if (o.die_with_parent && ::getppid() != parent) (void)::kill(c.pid(), SIGKILL);
        if ((sig == SIGINT || sig == SIGTERM || sig == SIGHUP) && ++terminating > 1 && !child.init() &&
            !runs_supervisor(c.pid(), cmd))
            (void)::kill(c.pid(), SIGKILL);
    };
    int wstatus = TRY(o.tty ? tty.supervise(c.pid(), on_signal) : proc::supervise(c.pid(), on_signal));
    return c.finish(child, wstatus);
}

}  // namespace

int main(int argc, char** argv) {
    cli::Options opts("unshare-run", "Run a command in new Linux namespaces.");
    cli::Common common;
    Options o;
    add_options(opts, o);
    if (auto code = opts.parse(argc, argv, common)) return *code;

    auto end = run(o, common);
    if (!end) return cli::fail(end.error());
    if (end->error) return cli::fail(Error(*end->error).with_status(end->code));
    child::exit_like(end->wstatus);
}
