#include "net/host.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <linux/if.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "core/proc.hpp"
#include "core/state.hpp"
#include "core/trace.hpp"
#include "net/netns.hpp"
#include "net/nft.hpp"

namespace kago::net {

std::string lease_key(const std::string& bridge, uint64_t netns) { return cat(bridge, "@", netns); }

Cidr gateway_of(const Cidr& subnet) {
    if (subnet.family == AF_INET) return *nth_host(subnet, 1);
    Cidr g = subnet.network();
    g.bytes[15] |= 1;
    return g;
}

Result<Cidr> check_address(const Cidr& a, const Cidr& subnet) {
    if (a.family != subnet.family)
        return usage_error(cat("--address '", a.str(), "': not an ", subnet.family == AF_INET ? "IPv4" : "IPv6", " address"));
    if (!subnet.contains(a))
        return usage_error(cat("--address '", a.addr_str(), "': outside the subnet ", subnet.network().str(),
                               " of the bridge (see --subnet)"));
    Cidr out = a;
    if (!a.had_prefix || a.prefix < subnet.prefix) out.prefix = subnet.prefix;
    Cidr bare = a;
    bare.prefix = a.max_prefix();
    Cidr gw = gateway_of(subnet);
    if (bare.bytes == gw.bytes)
        return usage_error(cat("--address '", a.addr_str(), "': is the gateway address of the bridge"));
    if (a.family == AF_INET) {
        Cidr net = out.network();
        uint32_t host = a.v4() - net.v4();
        uint32_t size = out.prefix >= 31 ? 0 : (1u << (32 - out.prefix));
        if (host == 0 || (size && host == size - 1))
            return usage_error(cat("--address '", a.addr_str(), "': is the network or broadcast address of ",
                                   net.str()));
        if (!out.contains(gw))
            return usage_error(cat("--address '", a.str(), "': the gateway ", gw.addr_str(), " is outside ", net.str()));
    }
    return out;
}

Status ensure_bridge(Rtnl& host, const std::string& bridge, const Cidr& gateway,
                     const std::optional<Cidr>& gateway6, bool known_ours, bool& created,
                     const std::function<Status(bool)>& mark) {
    created = false;
    auto li = TRY(host.get_link(bridge));
    if (li && li->kind != "bridge")
        return usage_error(cat("--bridge '", bridge, "': the interface exists and is not a bridge (kind '",
                               li->kind.empty() ? "device" : li->kind, "')"));
    if (!li && !trace::dry_run()) {
        TRY(mark(true));
        auto st = host.create_bridge(bridge);
        int err = host.last_errno();
        created = bool(st);
        if (!created) (void)mark(false);
        if (!st && err != EEXIST) return st;
    } else if (trace::dry_run()) {
        TRY(host.create_bridge(bridge));
        created = true;
    }
    int index = TRY(host.index_of(bridge, "bridge"));
    std::vector<Cidr> want = {gateway};
    if (gateway6) want.push_back(*gateway6);
    std::vector<AddrInfo> have;
    if (!created && !(known_ours && !gateway6)) {
        auto v4 = TRY(host.addresses(AF_UNSPEC));
        for (auto& a : v4)
            if (a.index == index) have.push_back(a);
    }
    for (const auto& w : want) {
        if (!created && known_ours && w.family == AF_INET) continue;
        bool present = false;
        for (const auto& h : have)
            if (h.addr.family == w.family && h.addr.bytes == w.bytes) present = true;
        if (present) continue;
        auto st = host.add_address(index, bridge, w);
        if (!st && host.last_errno() != EEXIST) return st;
    }
    if (created || !li || !(li->flags & IFF_UP)) {
        LinkChange up;
        up.name = bridge;
        up.index = index;
        up.up = true;
        TRY(host.set_link(up, cat("bring up bridge ", bridge)));
    }
    return {};
}

namespace {
// Delete the bridge of lease key "NAME@NETNS"; one that is already gone is fine.
Status delete_bridge(Rtnl& rtnl, const std::string& key) {
    auto st = rtnl.delete_link(key.substr(0, key.find('@')));
    if (!st && rtnl.last_errno() != ENODEV) return st;
    return {};
}
}  // namespace

Status teardown(const lease::Record& r, uint64_t host_netns, Later* later, nft::Nft* given) {
    Status first;
    auto keep = [&](Status st) {
        if (!st && first) first = std::move(st);
    };
    lease::Owner owner = r.owner();
    bool here = r.get("netns_host") == std::to_string(host_netns);
    if (here && r.get("nft") == "1") {
        auto mine = [&](const nft::Tag& t) { return t.name == r.name && t.pid == owner.pid; };
        if (given) {
            keep(given->remove(mine));
        } else {
            auto nft = nft::Nft::open("host");
            if (!nft) keep(std::move(nft).error());
            else keep(nft->remove(mine));
            // Closing it waits until the kernel has freed the deleted rules.
            if (nft && later) later->sockets.push_back(nft->take_netlink());
        }
    }
    std::optional<Rtnl> rtnl;
    if (here && !later) {
        auto o = Rtnl::open("host");
        if (o) rtnl = std::move(*o);
        else keep(std::move(o).error());
    }
    // With `later` the caller hands the veth over itself (Later::veths).
    std::string veth = r.get("veth");
    if (rtnl && !veth.empty()) {
        auto st = rtnl->delete_link(veth);
        if (!st && rtnl->last_errno() != ENODEV) keep(std::move(st));
    }
    std::string key = r.get("leases");
    if (!key.empty()) {
        auto f = lease::load(key);
        if (!f) {
            keep(std::move(f).error());
        } else {
            f->reap([&](const lease::LeaseFile::Entry& e) { return e.name == r.name; });
            // The bridge goes with its last lease, when net-setup made it (a
            // bridge in another namespace went with that namespace).
            // Not left to the deferred process: a cg-limit around the chain
            // kills it with the rest of its cgroup, and the bridge would stay.
            bool unused = f->entries.empty() && f->created_bridge;
            if (unused && here && !rtnl) {
                auto o = Rtnl::open("host");
                if (o) rtnl = std::move(*o);
                else keep(std::move(o).error());
            }
            if (unused && rtnl && here) keep(delete_bridge(*rtnl, key));
            if (unused) f->created_bridge = false;
            keep(lease::save(key, *f));
        }
    }
    std::string ns = r.get("netns");
    if (!ns.empty()) keep(unbind_netns(ns));
    // Only the directory this owner made: a same-name chain may own one now.
    std::string sd = r.get("statedir");
    if (!sd.empty()) keep(state::remove_if_owned_by(sd, owner.pid, owner.start));
    keep(lease::remove_record(r.name));
    return first;
}

namespace {
// The detached process's work, after clone; `later` is its own. Returns
// its exit status to the entry that started it.
int run_later(Later& later) {
    // No terminal, no descriptor but its sockets, no signal mask.
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<int> mine;
    for (const auto& s : later.sockets) mine.push_back(s.fd());
    for (const auto& v : later.veths) mine.push_back(v.netns.get());
    std::sort(mine.begin(), mine.end());
    unsigned from = 0;
    for (int fd : mine) {
        if (fd < 0) continue;
        if (static_cast<unsigned>(fd) > from) ::close_range(from, fd - 1, 0);
        from = fd + 1;
    }
    ::close_range(from, ~0U, 0);
    int null = ::open("/dev/null", O_RDWR);  // 0, 1 and 2 for anything that writes
    if (null >= 0) {
        for (int i = 0; i < 3; ++i)
            if (null != i) ::dup2(null, i);
    }
    auto rtnl = Rtnl::open("host");
    std::vector<int> moved;
    for (const auto& v : later.veths) {
        LinkChange c;
        c.index = v.index;
        c.group = kDyingGroup;
        // Gone already (with its namespace) when this fails.
        if (rtnl && rtnl->set_link(c, "hand the veth over for deletion")) moved.push_back(v.index);
    }
    if (!moved.empty()) {
        // One process at a time gathers and deletes: the lock is the host
        // network namespace's own file, so nothing is left on disk. A
        // process that gets it after another's deletion took its veths
        // along has nothing left to do.
        int lock = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        while (lock >= 0 && ::flock(lock, LOCK_EX) != 0 && errno == EINTR) {
        }
        if (std::any_of(moved.begin(), moved.end(), [&](int i) { return rtnl->exists(i); })) {
            struct timespec gather = {kGatherMs / 1000, (kGatherMs % 1000) * 1000000L};
            ::nanosleep(&gather, nullptr);
            // While containers start one after another, the deletion (which
            // holds the RTNL lock that every start needs) waits for a pause
            // in the lease directory's changes, up to kQuietMaxMs.
            struct timespec step = {0, kQuietMs * 1000000L};
            for (int waited = kGatherMs; waited < kQuietMaxMs && lease::changed_within(kQuietMs); waited += kQuietMs)
                ::nanosleep(&step, nullptr);
            (void)rtnl->delete_group(kDyingGroup);
        }
    }
    return 0;  // the sockets are released as it leaves, waiting for the kernel
}

int run_later_entry(void* later) {
    return run_later(*static_cast<Later*>(later));
}
}  // namespace

[[noreturn]] void finish_later_and_exit(Later&& later, int ws) {
    if (!later.empty()) {
        // The process shares our memory (CLONE_VM): no page tables to copy
        // (0.2 ms for net-setup here, on the way out of every run). From
        // the clone on, we only make the system calls of exit_like(), so
        // the heap is the child's alone; its stack and `later` are never
        // freed.
        // This is the one exception to rule 3 of core/child.hpp.
        auto* job = new Later(std::move(later));
        child::Stack stack(256 * 1024);
        stack.leak();
        if (child::start_shared(run_later_entry, job, stack) < 0)
            (void)child::run(0, [job] {
                return run_later(*job);
            });  // no clone(): a copy of our memory does as well
    }
    child::exit_like(ws);
}

pid_t still_running(const lease::Record& r) {
    std::string ns = r.get("netns");
    return ns.empty() ? 0 : proc::one_in_netns(ns);
}

Result<Status> take_over(const std::string& name, uint64_t host_netns, nft::Nft* nft, lease::Lock* lock) {
    int64_t deadline = proc::monotonic_ms() + proc::kEndingMs;
    for (;;) {
        pid_t ending = 0;  // a process of the old container that still runs
        Status refuse;
        for (const auto& r : TRY(lease::records())) {
            if (r.name != name) continue;
            lease::Owner o = r.owner();
            std::string record = cat(lease::dir(), "/", name, ".owner");
            if (lease::alive(o)) {
                ending = o.pid;
                errno = EEXIST;
                refuse = sys_error(cat("container '", name, "': already running (net-setup pid ", o.pid,
                                       " owns its network, ", record, ")"))
                             .with_hint("choose another KAGO_NAME, or stop that container first");
                break;
            }
            if (pid_t p = still_running(r)) {
                ending = p;
                errno = EBUSY;
                refuse = sys_error(cat("container '", name, "': its net-setup (pid ", o.pid, ") is gone but process ",
                                       p, " still runs in its network namespace (", record, ")"))
                             .with_hint(cat("nothing of it was removed; stop process ", p, ", then start again"));
                break;
            }
            TRY(teardown(r, host_netns, nullptr, nft));
        }
        if (!ending) return Status();
        // A chain killed a moment ago is still ending: its net-setup
        // removes what it made, under the lease lock, which is released
        // while we wait for it.
        if (!lock || proc::monotonic_ms() >= deadline) return refuse;
        lock->unlock();
        (void)proc::wait_ended(ending, deadline);
        *lock = TRY(lease::Lock::acquire());
    }
}

Result<bool> free_veth_name(Rtnl& host, const std::string& veth, const std::string& name) {
    // Nearly always free: then no netlink request waits for the RTNL lock,
    // which another container's veth deletion may hold for 20 ms.
    if (!host.may_exist(veth)) return true;
    auto li = TRY(host.get_link(veth));
    if (!li) return true;
    if (li->group != kVethGroup && li->group != kDyingGroup) return false;
    for (const auto& r : TRY(lease::records()))
        if (r.name == name && lease::alive(r.owner())) return false;
    auto st = host.delete_link(veth);
    if (!st && host.last_errno() != ENODEV) return std::move(st).error();
    return true;
}

Result<std::vector<std::string>> gc(uint64_t host_netns, bool rules, bool thorough, nft::Nft* given) {
    std::vector<std::string> removed;
    Status first;
    std::vector<std::string> kept;  // owner gone, a process still runs: nothing of it goes
    for (const auto& r : TRY(lease::records())) {
        if (lease::alive(r.owner())) continue;
        if (still_running(r)) {
            kept.push_back(r.name);
            continue;
        }
        auto st = teardown(r, host_netns, nullptr, given);
        if (!st && first) first = std::move(st);
        removed.push_back(r.name);
    }
    // Bridges that net-setup created and that no live container uses.
    for (const auto& key : thorough ? TRY(lease::lease_files()) : std::vector<std::string>{}) {
        auto f = lease::load(key);
        if (!f) continue;
        f->reap([&](const lease::LeaseFile::Entry& e) {
            return !lease::alive(e.owner) && std::find(kept.begin(), kept.end(), e.name) == kept.end();
        });
        if (f->entries.empty() && f->created_bridge) {
            if (f->netns == host_netns) {
                auto rtnl = Rtnl::open("host");
                if (rtnl) {
                    auto st = delete_bridge(*rtnl, key);
                    if (!st && first) first = std::move(st);
                    else removed.push_back(cat("bridge ", key.substr(0, key.find('@'))));
                }
            }
            // Removed here, or in a namespace of its own that went away with it.
            f->created_bridge = false;
        }
        auto st = lease::save(key, *f);
        if (!st && first) first = std::move(st);
    }
    if (thorough) {
        // Veths handed to a deferred process that was killed before it
        // deleted them. Not at every start: the request waits for the RTNL
        // lock, which another container's deletion may hold for 20 ms.
        auto rtnl = Rtnl::open("host");
        if (rtnl && rtnl->delete_group(kDyingGroup)) removed.push_back("veths being deleted");
    }
    if (rules && thorough) {
        std::optional<nft::Nft> own;
        if (!given) own = TRY(nft::Nft::open("host"));
        nft::Nft& nft = given ? *given : *own;
        TRY(nft.remove([&](const nft::Tag& t) {
            bool dead = !lease::alive(lease::Owner{t.pid, t.start}) &&
                        std::find(kept.begin(), kept.end(), t.name) == kept.end();
            if (dead) removed.push_back(cat("rules of ", t.name));
            return dead;
        }));
    }
    if (!first) return std::move(first).error();
    return removed;
}

}  // namespace kago::net
