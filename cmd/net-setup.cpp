// net-setup: give the rest of the chain a network namespace.
//
//   --raw            a new namespace with only lo up (then exec)
//   --move IF        move a host interface in (then exec, or with --veth)
//   --join NAME      enter an existing namespace (then exec)
//   --veth           a veth pair on a bridge, an address lease, NAT and
//                    published ports; stays on as a supervisor that removes
//                    them when the command exits
//   --user-mode      rootless: pasta or slirp4netns attached to a new user
//                    and network namespace; stays on as a supervisor
//   --gc             remove what killed supervisors left behind
//
// The steps live in lib/net/setup.hpp; this file holds the options and
// their order.
#include <stdlib.h>
#include <unistd.h>

#include "core/cli.hpp"
#include "core/env.hpp"
#include "core/proc.hpp"
#include "core/ready.hpp"
#include "core/state.hpp"
#include "core/trace.hpp"
#include "net/host.hpp"
#include "net/lease.hpp"
#include "net/netns.hpp"
#include "net/setup.hpp"

using namespace kago;
using namespace kago::net;

namespace {

// --gc: what dead chains left, whichever program made it.
Result<int> collect_garbage(bool verbose) {
    lease::Lock lock = TRY(lease::Lock::acquire());
    auto removed = TRY(gc(TRY(ns_inode("/proc/self/ns/net")), ::geteuid() == 0, true));
    if (verbose || trace::verbose())
        for (const auto& n : removed) cli::note(cat("removed leftovers of ", n));
    for (const auto& l : TRY(state::gc())) {
        if (l.removed && (verbose || trace::verbose())) cli::note(cat("removed the state directory of ", l.name));
        if (!l.owner_alive && l.running)
            cli::warn(cat("container '", l.name, "': its supervisor (pid ", l.owner, ") is gone but process ", l.running,
                          " still runs; nothing of it was removed"));
    }
    return 0;
}

// --raw, --move and --join: nothing to undo on the host, so exec.
Result<int> enter_and_exec(const Options& o, const PreparedExec& p, env::Contract& contract) {
    std::string netns = TRY(enter(o));
    contract.set(env::kNetns, netns);
    if (!contract.state_dir.empty()) {
        state::StateDir sd = TRY(state::StateDir::acquire("", contract));
        TRY(sd.write("netns", netns));  // nothing in a dry run (not made)
    }
    return cli::exec_next(p, contract, false);
}

// --veth and --user-mode: supervise, then leave like the command. What
// they made is undone by the time they return.
Result<int> supervise_mode(const Options& o, Plan& plan, const PreparedExec& p,
                           env::Contract& contract) {
    End end =
        o.veth ? TRY(run_veth(o, plan, p, contract)) : TRY(run_user_mode(o, plan, p, contract));
    if (end.exec_here)
        return cli::exec_next(p, contract, false);  // a dry run goes on down the chain
    for (const auto& e : end.errors) cli::report(e);
    finish_later_and_exit(std::move(end.later), end.wstatus);
}

Result<int> run(const Options& o, cli::Common& common) {
    Plan plan = TRY(check(o));
    if (o.gc) return collect_garbage(common.verbose);
    // A net-setup below another one starts after it.
    if (!ready::before_payload(common.contract)) return reported_elsewhere();
    PreparedExec p = TRY(prepare_exec(common.command));
    if (o.veth || o.user_mode) return supervise_mode(o, plan, p, common.contract);
    return enter_and_exec(o, p, common.contract);
}

}  // namespace

int main(int argc, char** argv) {
    cli::Options opts(
        "net-setup",
        "Give the command a network namespace: empty, with a veth on a bridge, NAT and "
        "published\nports (root), or connected by pasta/slirp4netns (rootless).");
    cli::Common common;
    Options o;
    opts.flag("--raw", o.raw, "A new network namespace with only lo up (the default mode)");
    opts.option("--move", o.move, "IF", "Move host interface IF into the namespace");
    opts.option("--ifname", o.ifname, "NAME", "Rename the moved interface to NAME inside");
    opts.flag("--veth", o.veth,
              "A veth pair: host end kgNAME on the bridge, eth0 inside; supervised");
    opts.option("--bridge", o.bridge, "NAME",
                "Bridge for --veth, created when missing (default kago0)");
    opts.option(
        "--subnet", o.subnet, "CIDR",
        "IPv4 subnet of the bridge; its first address is the gateway (default 10.88.0.0/16)");
    opts.option("--address", o.address, "CIDR",
                "Container address in the subnet (default: the next free lease)");
    opts.option("--address6", o.address6, "CIDR",
                "Container IPv6 address; the first address of its network goes on the bridge");
    opts.option("--mtu", o.mtu, "N", "MTU of the veth pair (or of the user-mode interface)");
    opts.flag("--nat", o.nat,
              "Masquerade the container's outbound traffic (table inet kago; sets ip_forward)");
    opts.option("--publish", o.publish, "[HOSTIP:]HOSTPORT:PORT[/tcp|udp]",
                "Forward [HOSTIP:]HOSTPORT to the container's PORT; repeatable");
    opts.option("--join", o.join, "NAME|PATH",
                "Enter an existing network namespace (/run/netns/NAME or a path)");
    opts.flag("--user-mode", o.user_mode,
              "Rootless: new user+net namespaces connected by pasta or slirp4netns");
    opts.flag("--map-auto", o.map_auto,
              "With --user-mode: map your /etc/subuid and /etc/subgid ranges too (newuidmap), so "
              "that unshare-run --user --map-auto can follow");
    opts.option("--user-mode-helper", o.helper, "NAME",
                "pasta, slirp4netns or auto (default: pasta, else slirp4netns)");
    opts.flag("--gc", o.gc,
              "Remove what killed chains left (rules, leases, veths, unused bridges, netns bind "
              "mounts, state directories) unless a process of theirs still runs; exit");
    if (auto code = opts.parse(argc, argv, common)) return *code;
    if (std::string why = conflicts(o); !why.empty()) cli::usage_error(why);

    auto code = run(o, common);
    return code ? *code : cli::fail(code.error());
}
