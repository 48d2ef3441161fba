// net-setup's steps, in the order cmd/net-setup.cpp runs them.
//
//   --raw, --move, --join   enter(): the namespace in this process, then exec
//   --veth                  run_veth(): the command's process makes the
//                           namespace (EarlyChild) while we take a lease and
//                           make the bridge, rules, veth, addresses, routes;
//                           then we supervise and tear down
//   --user-mode             run_user_mode(): the command's process makes a
//                           user and network namespace; pasta or slirp4netns
//                           attaches to it; we supervise
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/env.hpp"
#include "core/exec.hpp"
#include "core/result.hpp"
#include "core/state.hpp"
#include "net/addr.hpp"
#include "net/host.hpp"
#include "net/rtnl.hpp"

namespace kago::net {

struct Options {
    bool raw = false, veth = false, nat = false, user_mode = false, gc = false, map_auto = false;
    std::string move, ifname, join, bridge = "kago0", subnet = "10.88.0.0/16", address, address6;
    std::string helper = "auto";
    uint32_t mtu = 0;
    std::vector<std::string> publish;
};

// The values, checked: every usage error names its option.
struct Plan {
    std::string name, veth, bridge;
    Cidr subnet, gateway;
    std::optional<Cidr> address, address6, gateway6;
    std::vector<Publish> publish;
};

// Which options go together; a message for cli::usage_error(), or "".
std::string conflicts(const Options& o);
// The values of the options.
Result<Plan> check(const Options& o);

// The state files of a container with a network: netns, ip (when known),
// resolv.conf (the host's, without its loopback resolvers), hosts.
Status write_state_files(const state::StateDir& sd, const std::string& netns, const std::optional<Cidr>& ip,
                         const std::string& name);

// --move: the host interface moved into the namespace `netns_fd` (which
// `inside` talks to), renamed to --ifname, and up. Nothing without --move.
Status move_interface(Rtnl& host, Rtnl& inside, int netns_fd, const Options& o);

// --raw, --move and --join: this process enters the namespace (a new one
// with lo up, the interface moved in; or the one joined). Returns the path
// that names it, for KAGO_NETNS.
Result<std::string> enter(const Options& o);

// What a supervising net-setup does with the signals it forwards. When the
// supervisor above it died (follow_parent()), the container is killed, so
// that the rules, the lease and the namespace are removed once it is gone.
// A second SIGINT/SIGTERM/SIGHUP is forwarded to a supervisor below, which
// escalates by itself; any other command is killed.
std::function<void(int)> supervision(pid_t child, const PreparedExec& p, pid_t parent);

// How a supervising mode ended.
struct End {
    bool exec_here = false;  // a dry run: exec the command in this process
    int wstatus = 0;         // otherwise: leave like this (child::exit_like)
    Later later;             // after finish_later_and_exit()
    std::vector<Error> errors;  // clean-up that failed after the command ended: to report
};

// --veth (root): a veth pair on a bridge, a lease, NAT and published
// ports. Everything made is named in the owner record first, and removed
// again when a later step fails.
Result<End> run_veth(const Options& o, Plan& plan, const PreparedExec& p, env::Contract& contract);

// --user-mode: a new user and network namespace in the command's process,
// and pasta or slirp4netns attached to it from the host side.
Result<End> run_user_mode(const Options& o, Plan& plan, const PreparedExec& p,
                          env::Contract& contract);

}  // namespace kago::net
