// The host side of a --veth container, as steps that can be undone: the
// bridge, the lease, the owner record, and the teardown that --gc and the
// supervisor share. Everything a step creates is named in the owner
// record first, so that a SIGKILL at any point leaves something --gc can
// find and remove.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "net/addr.hpp"
#include "net/lease.hpp"
#include "net/netlink.hpp"
#include "net/rtnl.hpp"

namespace kago::net {
namespace nft {
class Nft;
}

// The lease file key of a bridge in a network namespace: "kago0@4026531840".
std::string lease_key(const std::string& bridge, uint64_t netns);

// The gateway of a subnet: its first host address, with the subnet's prefix.
Cidr gateway_of(const Cidr& subnet);

// Check --address against --subnet: inside it, not the network, broadcast
// or gateway address. Returns it with the prefix to use on eth0.
Result<Cidr> check_address(const Cidr& address, const Cidr& subnet);

// Create the bridge unless it exists (then it must be a bridge), bring it
// up, and give it the gateway address(es). `created` tells whether we made it.
Status ensure_bridge(Rtnl& host, const std::string& bridge, const Cidr& gateway,
                     const std::optional<Cidr>& gateway6, bool known_ours, bool& created);

// Remove everything the record names: nftables rules tagged with its
// owner, the veth, its lease (and the bridge, when net-setup created it and it is now
// unused), the netns bind mount, the state directory (when the
// record owns it), then the record itself. Network objects are removed only
// when `host_netns` is the namespace they were made in. The first error is
// returned; the other steps still run.
//
// With `later`, the steps that wait on the kernel's RCU grace periods
// (deleting the veth, releasing the nftables socket after a deletion:
// 15-40 ms each) are put there instead, for finish_later(); everything a
// user can see (rules, lease, record, netns bind mount, state directory, a
// bridge net-setup made that nobody uses now) is still gone when this
// returns.
struct Later {
    std::vector<Netlink> sockets;  // released by the deferred process
    std::vector<std::string> links;
    bool empty() const { return sockets.empty() && links.empty(); }
};
// With `nft`, that socket is used for the rules instead of a new one:
// closing an nftables socket waits until the kernel has freed what any
// recent change replaced, so a supervisor keeps one for its whole life.
Status teardown(const lease::Record& r, uint64_t host_netns, Later* later = nullptr, nft::Nft* nft = nullptr);

// Do `later` in a detached process (its own session, no descriptor but its
// sockets), so that the supervisor returns the container's status without
// waiting for the kernel. Nothing is lost if it is killed (a cg-limit
// around the chain kills what is left in its cgroup): the veth dies with
// the container's network namespace, and the sockets close.
void finish_later(Later&& later);

// Tear down every container whose owner process is gone, and remove the
// rules in table kago whose owner is gone. With `bridges`, also remove the
// bridges net-setup created that no live container uses. Returns what was
// removed.
Result<std::vector<std::string>> gc(uint64_t host_netns, bool rules, bool bridges, nft::Nft* nft = nullptr);

}  // namespace kago::net
