// The host side of a --veth container, as steps that can be undone: the
// bridge, the lease, the owner record, and the teardown that --gc and the
// supervisor share. Everything a step creates is named in the owner
// record first, so that a SIGKILL at any point leaves something --gc can
// find and remove.
#pragma once

#include <cstdint>
#include <functional>
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
// `mark(true)` runs just before the bridge is created, so that whoever reaps
// the last lease of a supervisor killed right after knows the bridge is
// net-setup's; `mark(false)` when the creation then fails or finds one.
Status ensure_bridge(Rtnl& host, const std::string& bridge, const Cidr& gateway,
                     const std::optional<Cidr>& gateway6, bool known_ours, bool& created,
                     const std::function<Status(bool)>& mark);

// Remove everything the record names: nftables rules tagged with its
// owner, the veth, its lease (and the bridge, when net-setup created it and it is now
// unused), the netns bind mount, the state directory (when the
// record owns it), then the record itself. Network objects are removed only
// when `host_netns` is the namespace they were made in. The first error is
// returned; the other steps still run.
//
// With `later`, the steps that wait on the kernel's RCU grace periods
// (deleting the veth, releasing the nftables socket after a deletion:
// 15-40 ms each) are left to finish_later_and_exit(); everything a user
// can see (rules, lease, record, netns bind mount, state directory, a
// bridge net-setup made that nobody uses now) is still gone when this
// returns. The veth is then not touched: the supervisor that made it
// hands it over by index, which only it knows (by the time it is deleted,
// a new container of the same name may own a link of that name).
struct Later {
    std::vector<Netlink> sockets;  // released by the deferred process
    struct Veth {
        int index = 0;    // the host end
        UniqueFd netns;   // the peer's namespace, kept open until then
    };
    std::vector<Veth> veths;
    bool empty() const { return sockets.empty() && veths.empty(); }
};
// With `nft`, that socket is used for the rules instead of a new one:
// closing an nftables socket waits until the kernel has freed what any
// recent change replaced, so a supervisor keeps one for its whole life.
Status teardown(const lease::Record& r, uint64_t host_netns, Later* later = nullptr, nft::Nft* nft = nullptr);

// Do `later` in a detached process (its own session, no descriptor but its
// sockets), then child::exit_like(ws): the supervisor returns the
// container's status without waiting for the kernel. The process shares
// the supervisor's memory (clone(CLONE_VM)) instead of copying its page
// tables, which is why this is also the supervisor's exit. Nothing is lost
// if it is killed (a cg-limit around the chain kills what is left in its
// cgroup): the veth dies with the container's network namespace, and the
// sockets close.
//
// Deleting a veth holds the RTNL lock through RCU grace periods (about
// 20 ms here), and every link change on the host waits meanwhile, the next
// container's included. Deleting many at once costs little more than one,
// so the process moves its veths to kDyingGroup and takes a lock (flock on
// the host's network namespace file); the holder waits kGatherMs for other
// containers that end about now to do the same, and while containers keep
// starting or ending (lease::changed_within(kQuietMs)) for a pause, at
// most until kQuietMaxMs, then deletes the whole group with one request,
// and the processes waiting behind it find their veths gone. The
// container's namespace is kept open until then: when a namespace dies, the
// kernel deletes its veth on its own, alone.
[[noreturn]] void finish_later_and_exit(Later&& later, int ws);
constexpr int kGatherMs = 50;
constexpr int kQuietMs = 20, kQuietMaxMs = 1000;

// The link groups of the host ends of kago's veth pairs (`ip link show
// group 1801545583`): kVethGroup ("kago" in ASCII) while the container
// runs, kDyingGroup once finish_later_and_exit() has them. No other link is
// ever put in them, so a link there without a live owner record is a
// leftover.
constexpr uint32_t kVethGroup = 0x6b61676f;
constexpr uint32_t kDyingGroup = 0x6b61676e;

// Make `veth`, the host end's name for container `name`, free to use: a
// link of that name in kago's groups whose owner is gone (a veth still
// being deleted, or one a killed supervisor left) is deleted now. Returns
// false when the name belongs to a link that is not kago's, or to a live
// container. Call it with the lease lock held.
Result<bool> free_veth_name(Rtnl& host, const std::string& veth, const std::string& name);

// A process that still runs in the network namespace that record `r`
// names (its bind mount), or 0. Nothing of a container is removed while
// one does, even when its supervisor is gone.
pid_t still_running(const lease::Record& r);

// Before a new container named `name` writes its record: a record of that
// name whose owner is gone is torn down now (its rules, veth, lease, bind
// mount, state directory), so that nothing of it is overwritten and lost.
// The inner Status refuses, naming the pid, when its owner lives or a
// process still runs in its namespace. Call it with the lease lock held.
// With `lock` (that lock), a chain killed a moment ago, still ending, is
// waited for, up to proc::kEndingMs, with the lock released meanwhile.
Result<Status> take_over(const std::string& name, uint64_t host_netns, nft::Nft* nft = nullptr,
                         lease::Lock* lock = nullptr);

// Tear down every container whose owner process is gone, its rules
// included (teardown() reads them from the record). With `thorough`
// (net-setup --gc), also remove the bridges net-setup created that no live
// container uses, the veths of kDyingGroup that a killed deferred process
// left, and, when `rules` (the caller may use nftables), any rule in table
// kago whose owner is gone even though its record is not: a teardown that
// failed half-way. A start does not look for those: listing the table costs every
// start a dump that grows with the number of containers. Returns what was
// removed.
Result<std::vector<std::string>> gc(uint64_t host_netns, bool rules, bool thorough, nft::Nft* nft = nullptr);

}  // namespace kago::net
