// net-setup's supervising modes: --veth and --user-mode.
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/child.hpp"
#include "core/env.hpp"
#include "core/proc.hpp"
#include "core/ready.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"
#include "net/early.hpp"
#include "net/netns.hpp"
#include "net/nft.hpp"
#include "net/setup.hpp"
#include "net/usermode.hpp"
#include "ns/idmap.hpp"

namespace kago::net {
namespace {

// After clone (rule 3 of core/child.hpp): the command's own network
// namespace, with lo up.
int make_netns(const void*) {
    if (::unshare(CLONE_NEWNET) != 0) return errno;
    return child::loopback_up() == 0 ? 0 : errno;
}

// eth0's addresses, eth0 up, the default routes.
Status configure_eth0(Rtnl& inside, const Cidr& addr, const Plan& plan) {
    int eth0 = TRY(inside.index_of("eth0", "container interface"));
    TRY(inside.add_address(eth0, "eth0", addr));
    if (plan.address6) TRY(inside.add_address(eth0, "eth0", *plan.address6));
    LinkChange up;
    up.name = "eth0";
    up.index = eth0;
    up.up = true;
    TRY(inside.set_link(up, "bring up eth0 in the container"));
    Cidr gw = plan.gateway;
    gw.prefix = 32;
    TRY(inside.add_default_route(eth0, "eth0", gw));
    if (plan.gateway6) TRY(inside.add_default_route(eth0, "eth0", *plan.gateway6));
    return {};
}

// One --veth run: what it made, so that a failure undoes it.
class Veth {
  public:
    Veth(const Options& o, Plan& plan, const PreparedExec& p, env::Contract& contract)
        : o_(o), plan_(plan), p_(p), contract_(contract) {}
    Result<End> run();
    // A step failed: stop the command's process and remove what the record names.
    void undo();

  private:
    Result<Cidr> lease_address(lease::LeaseFile& leases, const std::string& key);
    void collect() {
        if (!dry_ && !collected_) (void)gc(host_ns_, rules_, false, nftp_);
        collected_ = true;
    }

    const Options& o_;
    Plan& plan_;
    const PreparedExec& p_;
    env::Contract& contract_;
    bool dry_ = trace::dry_run(), rules_ = false, collected_ = false, recorded_ = false, veth_made_ = false;
    ready::Gate gate_;
    EarlyChild cmd_;
    pid_t child_ = -1;
    uint64_t host_ns_ = 0;
    std::optional<nft::Nft> nft_;
    nft::Nft* nftp_ = nullptr;
    lease::Lock lock_;
    lease::Record rec_;
};

void Veth::undo() {
    if (child_ > 0) {  // it waits to exec, or at the gate
        gate_.fail();
        cmd_.kill();  // SIGCHLD may not be blocked yet: no supervise()
    }
    if (recorded_) {
        rec_.kv.erase("statedir");                 // the StateDir owner removes it
        if (!veth_made_) rec_.kv.erase("veth");  // a link of that name is not ours
        (void)teardown(rec_, host_ns_, nullptr, nftp_);
    }
    lock_.unlock();
}

Result<Cidr> Veth::lease_address(lease::LeaseFile& leases, const std::string& key) {
    if (!plan_.address) {
        auto a = leases.allocate(plan_.subnet, plan_.gateway);
        if (!a) return usage_error(cat("--subnet ", plan_.subnet.str(), ": no free address left on ", plan_.bridge));
        return *a;
    }
    Cidr bare = *plan_.address;
    bare.prefix = 32;
    if (leases.in_use(bare) && !dry_) {
        collect();
        leases = TRY(lease::load(key));
        leases.netns = host_ns_;
    }
    if (leases.in_use(bare))
        return usage_error(cat("--address '", plan_.address->addr_str(), "': already leased to another container on ",
                               plan_.bridge));
    return *plan_.address;
}

Result<End> Veth::run() {
    pid_t parent = proc::follow_parent();
    plan_.name = TRY(state::container_name(contract_));
    plan_.veth = veth_host_name(plan_.name);
    rules_ = o_.nat || !plan_.publish.empty();

    // The command's process starts first and makes the network namespace
    // (EarlyChild) while we take the lease and write the state files. When
    // the command is a kago program, it execs as soon as those and its
    // namespace exist, and the chain waits at the gate (core/ready.hpp)
    // before it execs the payload, while we make the bridge, the rules, the
    // veth, addresses and routes. Otherwise, and in a trace (which keeps the
    // order of the calls), it execs once everything is done. A failure
    // before that kills it (PR_SET_PDEATHSIG when we exit at once). The gate
    // exists before the child: it has our descriptors of that moment.
    bool early = p_.kago && !trace::verbose() && !dry_;
    if (early) gate_ = TRY(ready::Gate::create(contract_));
    if (!dry_) {
        TRY(cmd_.start(make_netns, nullptr));
        child_ = cmd_.pid();
    }
    std::string bind_path = cat(kNetnsDir, "/kago-", plan_.name);
    bool bind = ::geteuid() == 0;
    // Without the bind mount, the namespace is named by the command's process.
    std::string netns = bind ? bind_path : cat("/proc/", child_, "/ns/net");
    contract_.set(env::kNetns, netns);

    host_ns_ = dry_ ? 0 : TRY(ns_inode("/proc/self/ns/net"));
    lease::Owner me = lease::self();
    // One nftables socket for the whole run, closed by finish_later_and_exit():
    // closing one waits for the kernel to free what recent changes replaced.
    if (rules_) nft_ = TRY(nft::Nft::open("host"));
    nftp_ = nft_ ? &*nft_ : nullptr;
    state::StateDir sd = TRY(state::StateDir::acquire(plan_.name, contract_));
    TRY(sd.enlist("net-setup"));  // a same-name start waits for us to end
    // Hold the published host ports, so that nobody else takes them.
    std::vector<UniqueFd> held;
    for (const auto& pub : plan_.publish) held.push_back(TRY(reserve_port(pub)));
    // The command's environment is complete: copy it for the child.
    cmd_.prepare(p_, contract_);
    ready::Gate::Ends ends = gate_.ends();
    gate_.forked();
    if (!dry_) lock_ = TRY(lease::Lock::acquire());

    // A dead same-name container's record is torn down before ours
    // replaces it; a live one (or one whose processes still run) refuses.
    if (!dry_) TRY(TRY(take_over(plan_.name, host_ns_, nftp_, &lock_)));
    Rtnl host = TRY(Rtnl::open("host"));
    std::string key = lease_key(plan_.bridge, host_ns_);
    lease::LeaseFile leases = dry_ ? lease::LeaseFile{} : TRY(lease::load(key));
    leases.netns = host_ns_;
    Cidr addr = TRY(lease_address(leases, key));
    // The record below names the veth; a link of that name that is not ours
    // must never be in it (teardown and --gc delete by name).
    if (!dry_ && !TRY(free_veth_name(host, plan_.veth, plan_.name)))
        return usage_error(cat("container name '", plan_.name, "': a link named ", plan_.veth,
                               " already exists on the host; choose another KAGO_NAME"));

    // The record names everything before it exists: a SIGKILL from here on
    // leaves nothing that --gc cannot find.
    rec_.name = plan_.name;
    rec_.kv = {{"pid", std::to_string(me.pid)}, {"start", std::to_string(me.start)},
               {"netns_host", std::to_string(host_ns_)}, {"veth", plan_.veth}, {"leases", key},
               {"nft", rules_ ? "1" : "0"}, {"address", addr.addr_str()}};
    if (bind) rec_.kv["netns"] = bind_path;
    if (sd.owned()) rec_.kv["statedir"] = sd.path();
    if (!dry_) {
        TRY(lease::write_record(rec_));
        recorded_ = true;
        Cidr bare = addr;
        bare.prefix = 32;
        leases.entries.push_back(lease::LeaseFile::Entry{bare, plan_.name, me});
        TRY(lease::save(key, leases));
    }
    TRY(write_state_files(sd, netns, addr, plan_.name));

    // The namespace the child made. A kago chain may exec now: the state
    // files exist, and it waits at the gate.
    child::SignalBlock block;  // forwarded to the command from now on
    UniqueFd ns_fd;
    if (dry_) {
        TRY(sys::unshare(CLONE_NEWNET));  // traced, not made
        TRY(child::loopback_up_traced());
        ns_fd = TRY(sys::open("/proc/self/ns/net", O_RDONLY));
    } else {
        if (int err = cmd_.made()) {
            errno = err;
            return sys_error("unshare(CLONE_NEWNET) and bring up lo in the command's process");
        }
        if (trace::verbose()) {
            trace::emit(cat("unshare(CLONE_NEWNET) in the command's process ", child_, " = 0"));
            trace::emit(cat(child::kLoopbackUpText, " in the command's process ", child_, " = 0"));
        }
        ns_fd = TRY(sys::open(cat("/proc/", child_, "/ns/net").c_str(), O_RDONLY));
        // Not before: /proc/PID/ns/net is the chain's own once it unshares.
        if (early) TRY(cmd_.go(ends));
    }

    // What needs no namespace is done while the chain execs: leftovers, the
    // bridge, the rules (they name the address, not the veth). Then a
    // netlink socket in the namespace, and the veth.
    collect();
    // The lease file says the bridge is ours before it exists (we hold the
    // lease lock): a SIGKILL right after its creation leaves a bridge that
    // whoever reaps our lease removes with it. Read again: gc() may have
    // changed the file since.
    bool created = false, known = leases.created_bridge;
    auto mark = [&](bool ours) -> Status {
        if (known) return {};  // marked already (a bridge deleted by hand is made again)
        auto now = TRY(lease::load(key));
        now.created_bridge = ours;
        return lease::save(key, now);
    };
    TRY(ensure_bridge(host, plan_.bridge, plan_.gateway, plan_.gateway6, leases.created_bridge,
                      created, mark));
    int bridge_index = TRY(host.index_of(plan_.bridge, "--bridge"));  // 0: not made (a dry run)
    if (rules_) {
        TRY(write_sysctl("net/ipv4/ip_forward", "1"));
        if (!plan_.publish.empty()) TRY(write_sysctl(cat("net/ipv4/conf/", plan_.bridge, "/route_localnet"), "1"));
        nft::RuleSpec spec;
        spec.tag = nft::Tag{plan_.name, me.pid, me.start};
        spec.bridge = plan_.bridge;
        spec.subnet = plan_.subnet;
        spec.addr4 = addr;
        spec.addr6 = plan_.address6;
        spec.masquerade = o_.nat;
        spec.publish = plan_.publish;
        TRY(nft_->add(spec));
    }
    UniqueFd host_fd = TRY(sys::open("/proc/self/ns/net", O_RDONLY));
    TRY(sys::setns(ns_fd.get(), CLONE_NEWNET, "the container's network namespace"));
    auto inside_r = Rtnl::open("container");
    TRY(sys::setns(host_fd.get(), CLONE_NEWNET, "the host network namespace"));
    if (!inside_r) return std::move(inside_r).error();
    Rtnl inside = std::move(*inside_r);
    if (bind) TRY(bind_netns(ns_fd.get(), bind_path));

    // The host end comes up as it is made.
    TRY(host.create_veth(plan_.veth, "eth0", ns_fd.get(), o_.mtu, bridge_index, kVethGroup));
    veth_made_ = true;
    int veth_index = TRY(host.index_of(plan_.veth, "veth"));  // 0: not made (a dry run)
    TRY(move_interface(host, inside, ns_fd.get(), o_));
    TRY(configure_eth0(inside, addr, plan_));
    lock_.unlock();

    End end;
    if (dry_) {
        end.exec_here = true;
        return end;
    }
    if (gate_.valid()) gate_.open();
    else TRY(cmd_.go(ends));

    inside = Rtnl();
    auto ws = proc::supervise(child_, supervision(child_, p_, parent));
    cmd_.forget();
    child_ = -1;

    if (auto l = lease::Lock::acquire()) lock_ = std::move(*l);  // best effort: cleanup goes on
    rec_.kv.erase("statedir");
    // The kernel's slow part (the veth, the nftables socket) is left to a
    // detached process, except in a trace, which shows every call.
    auto st = teardown(rec_, host_ns_, trace::verbose() ? nullptr : &end.later, nftp_);
    recorded_ = false;
    if (!st) end.errors.push_back(std::move(st).error());
    if (!trace::verbose()) {
        if (nft_) end.later.sockets.push_back(nft_->take_netlink());
        // The namespace lives on until its veth is deleted with the others:
        // when a namespace dies, the kernel deletes its veth on its own, alone.
        end.later.veths.push_back(Later::Veth{veth_index, std::move(ns_fd)});
    }
    ns_fd.reset();
    lock_.unlock();
    held.clear();
    (void)sd.remove();
    if (!ws) {
        end.errors.push_back(std::move(ws).error());
        end.wstatus = 125 << 8;
    } else {
        end.wstatus = *ws;
    }
    return end;
}

// After clone: the user and network namespaces, and our own id maps.
struct UserMake {
    const char* uid_map;
    const char* gid_map;
    bool own_maps;
};

int make_user_netns(const void* arg) {
    const auto& m = *static_cast<const UserMake*>(arg);
    auto put = [](const char* path, const char* s) {
        int fd = ::open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) return -1;
        ssize_t n = ::write(fd, s, strlen(s));
        ::close(fd);
        return n < 0 ? -1 : 0;
    };
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return errno;
    if (m.own_maps && (put("/proc/self/setgroups", "deny") != 0 || put("/proc/self/uid_map", m.uid_map) != 0 ||
                       put("/proc/self/gid_map", m.gid_map) != 0))
        return errno;
    // Ports below 1024 for the container's own root (a nested user namespace).
    (void)put("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
    return 0;
}

Result<ns::MapPlan> full_maps() {
    ns::Caller caller;
    caller.uid = ::geteuid();
    caller.gid = ::getegid();
    caller.path = env::get("PATH");
    return ns::plan_maps({false, true, {}, {}}, caller);
}

}  // namespace

Result<End> run_veth(const Options& o, Plan& plan, const PreparedExec& p, env::Contract& contract) {
    Veth v(o, plan, p, contract);
    auto end = v.run();
    if (!end) v.undo();
    return end;
}

Result<End> run_user_mode(const Options& o, Plan& plan, const PreparedExec& p,
                          env::Contract& contract) {
    pid_t parent = proc::follow_parent();
    plan.name = TRY(state::container_name(contract));
    state::StateDir sd = TRY(state::StateDir::acquire(plan.name, contract));
    TRY(sd.enlist("net-setup"));  // a same-name start waits for us to end
    auto helper = TRY(usermode::find_helper(o.helper));
    // Fail early, and by name, on a port that is taken.
    for (const auto& pub : plan.publish) (void)TRY(reserve_port(pub));
    if (trace::dry_run()) {
        trace::emit("unshare(CLONE_NEWUSER|CLONE_NEWNET) (dry run, in the child)");
        if (o.map_auto) TRY(ns::write_maps(TRY(full_maps()), 0));
        auto argv = usermode::pasta_argv(helper, 0, plan.publish, o.mtu, sd.path() + "/pasta.pid");
        if (helper.name == "pasta")
            trace::emit(cat("execve(", trace::quote(helper.path), ", ", describe_argv(argv), ") (dry run)"));
        else
            trace::emit(cat("execve(", trace::quote(helper.path), ", ...) (dry run)"));
        End end;
        end.exec_here = true;
        return end;
    }
    // A daemonized pasta stays our descendant, so that we can stop it.
    (void)::prctl(PR_SET_CHILD_SUBREAPER, 1);
    std::string uid_map = cat("0 ", ::geteuid(), " 1"), gid_map = cat("0 ", ::getegid(), " 1");
    // --map-auto: the caller's subordinate ranges too, written from here by
    // newuidmap and newgidmap, so that the network namespace belongs to a
    // user namespace with the full map (as podman's) and unshare-run --user
    // --map-auto can follow; pasta joins that namespace.
    ns::MapPlan full;
    if (o.map_auto) full = TRY(full_maps());
    UserMake make{uid_map.c_str(), gid_map.c_str(), !o.map_auto};
    EarlyChild cmd;
    TRY(cmd.start(make_user_netns, &make));
    pid_t child = cmd.pid();
    std::string netns = cat("/proc/", child, "/ns/net");
    contract.set(env::kNetns, netns);
    cmd.prepare(p, contract);
    child::SignalBlock block;  // forwarded to the command from now on
    if (int err = cmd.made()) {
        errno = err;
        return sys_error("unshare(CLONE_NEWUSER|CLONE_NEWNET) and write the id maps in the child")
            .with_hint(err == EPERM || err == ENOSPC ? "unprivileged user namespaces may be disabled here" : "");
    }
    if (o.map_auto) TRY(ns::write_maps(full, child));
    // The helper enlists at once: it holds the ports until it has ended.
    auto running = TRY(usermode::start(helper, child, plan.publish, o.mtu, sd.path(),
                                       [&](pid_t pid) { (void)sd.enlist(helper.name, pid); }));
    TRY(write_state_files(sd, netns, std::nullopt, plan.name));
    if (helper.name == "slirp4netns") (void)sd.write("ip", "10.0.2.100");
    TRY(cmd.go(ready::Gate::Ends{}));
    auto ws = proc::supervise(child, supervision(child, p, parent));
    cmd.forget();
    usermode::stop(running);
    (void)sd.remove();
    if (!ws) return std::move(ws).error();
    End end;
    end.wstatus = *ws;
    return end;
}

}  // namespace kago::net
