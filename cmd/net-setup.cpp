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
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <optional>

#include "core/cli.hpp"
#include "core/env.hpp"
#include "core/fd.hpp"
#include "core/parse.hpp"
#include "core/proc.hpp"
#include "core/ready.hpp"
#include "core/state.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"
#include "net/host.hpp"
#include "net/netns.hpp"
#include "net/nft.hpp"
#include "net/usermode.hpp"
#include "ns/idmap.hpp"

using namespace kago;
using namespace kago::net;

namespace {

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

Plan check(const Options& o) {
    int modes = o.raw + o.veth + !o.join.empty() + o.user_mode + o.gc;
    if (modes > 1) cli::usage_error("--raw, --veth, --join, --user-mode and --gc exclude each other");
    if (!o.move.empty() && (o.user_mode || !o.join.empty() || o.gc))
        cli::usage_error("--move works with --raw or --veth");
    if (!o.ifname.empty() && o.move.empty()) cli::usage_error("--ifname renames the interface given to --move");
    if (o.nat && !o.veth) cli::usage_error("--nat needs --veth");
    if (o.map_auto && !o.user_mode) cli::usage_error("--map-auto needs --user-mode");
    if (!o.publish.empty() && !o.veth && !o.user_mode) cli::usage_error("--publish needs --veth or --user-mode");
    if ((!o.address.empty() || !o.address6.empty()) && !o.veth) cli::usage_error("--address and --address6 need --veth");
    Plan p;
    if (!o.move.empty()) cli::check_or_die(validate_ifname(o.move, "--move"));
    if (!o.ifname.empty()) cli::check_or_die(validate_ifname(o.ifname, "--ifname"));
    cli::check_or_die(validate_ifname(o.bridge, "--bridge"));
    p.bridge = o.bridge;
    p.subnet = cli::value_or_die(parse_cidr(o.subnet, "--subnet"));
    if (p.subnet.family != AF_INET || p.subnet.prefix > 30 || p.subnet.prefix < 8)
        cli::die(usage_error(cat("--subnet '", o.subnet, "': must be an IPv4 network with a prefix of /8 to /30")));
    p.subnet = p.subnet.network();
    p.gateway = gateway_of(p.subnet);
    if (!o.address.empty())
        p.address = cli::value_or_die(check_address(cli::value_or_die(parse_cidr(o.address, "--address")), p.subnet));
    if (!o.address6.empty()) {
        Cidr a6 = cli::value_or_die(parse_cidr(o.address6, "--address6"));
        if (a6.family != AF_INET6) cli::die(usage_error(cat("--address6 '", o.address6, "': not an IPv6 address")));
        if (!a6.had_prefix) a6.prefix = 64;
        Cidr net6 = a6;
        net6.prefix = a6.prefix;
        p.gateway6 = gateway_of(net6.network());
        p.gateway6->prefix = a6.prefix;
        p.address6 = cli::value_or_die(check_address(a6, net6.network()));
    }
    for (const auto& s : o.publish) {
        Publish pub = cli::value_or_die(parse_publish(s));
        bool v6 = pub.host_ip && pub.host_ip->family == AF_INET6;
        if (v6 && o.veth && !p.address6)
            cli::die(usage_error(cat("--publish '", s, "': an IPv6 host address needs --address6 (the container has none)")));
        if (v6 && o.veth && pub.host_ip->addr_str() == "::1")
            cli::die(usage_error(cat("--publish '", s, "': the kernel does not forward from ::1 (IPv6 has no route_localnet);",
                                     " publish without HOSTIP (every local address) or on the host's own IPv6 address")));
        p.publish.push_back(pub);
    }
    if (o.mtu && (o.mtu < 68 || o.mtu > 65535)) cli::die(usage_error(cat("--mtu ", o.mtu, ": must be 68 to 65535")));
    return p;
}

// Exec the command from a forked child: async-signal-safe calls only. The
// command line and the environment are copied first: a child that runs
// alongside us (EarlyChild) must not read what setenv() changes.
struct ChildExec {
    std::vector<char*> argv;
    std::vector<char*> envp;
    int program_fd = -1;
    std::string failure;  // "net-setup: CMD: "
};

[[noreturn]] void child_exec(const ChildExec& c) {
    if (c.program_fd >= 0) ::syscall(SYS_execveat, c.program_fd, "", c.argv.data(), c.envp.data(), AT_EMPTY_PATH);
    else ::execvpe(c.argv[0], c.argv.data(), c.envp.data());
    int e = errno;
    const char* why = strerrordesc_np(e);
    (void)!::write(2, c.failure.data(), c.failure.size());
    (void)!::write(2, why, strlen(why));
    (void)!::write(2, "\n", 1);
    _exit(exit_code_for_exec_error(e));
}

ChildExec prepare_child(const PreparedExec& p) {
    ChildExec c;
    for (const auto& a : p.argv) c.argv.push_back(const_cast<char*>(a.c_str()));
    c.argv.push_back(nullptr);
    for (char** e = environ; *e; ++e) c.envp.push_back(*e);  // glibc never frees these strings
    c.envp.push_back(nullptr);
    c.program_fd = p.program.valid() ? p.program.get() : -1;
    c.failure = cat(trace::program(), ": ", p.argv[0], ": ");
    return c;
}

// clone()'s entry for a child whose body is a std::function that execs or
// exits (it never returns).
int run_body(void* body) {
    (*static_cast<std::function<void()>*>(body))();
    _exit(125);
}

// The command's process, started first: it makes its namespace itself (the
// kernel's 0.7 ms for a network namespace then run on another CPU while we
// take the lease and write the state files), tells us, and execs the
// command when told.
//
// It shares our memory (clone(CLONE_VM), as the vfork() of posix_spawn),
// not our descriptors (so the gate and the command's file must be open
// before start()), and runs on a stack of its own, alongside us: it reads
// only what is set before start() or before go() publishes it, and makes
// only async-signal-safe calls. errno is the one variable both sides write
// (one thread's storage): each reads it right after its own call fails, and
// only two failures at the same moment could mix them up. Its signals stay
// blocked until it execs.
//
// The two sides tell each other through futex words (proc::post), not
// pipes: a trace showed us waiting on the child's CPU, where a pipe's
// wake-up had put us, the child behind us, and the other CPU idle.
class EarlyChild {
  public:
    // `make` runs in the child, after PR_SET_PDEATHSIG: 0 or an errno.
    void start(std::function<int()> make) {
        make_ = std::move(make);
        spread_ = ::sched_getaffinity(0, sizeof cpus_, &cpus_) == 0 && CPU_COUNT(&cpus_) > 1;
        body_ = [this, parent = ::getpid()] {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            int err = ::getppid() == parent ? make_() : ESRCH;
            made_err_ = err;
            proc::post(made_, 1);
            if (err) _exit(125);
            if (proc::wait_while(go_, kWait, nullptr) != kGo) _exit(125);
            if (spread_) ::sched_setaffinity(0, sizeof cpus_, &cpus_);  // the command's own, as inherited
            gate_.keep_in_child();
            ::sigprocmask(SIG_SETMASK, &mask_, nullptr);
            child_exec(*exec_);
        };
        stack_.reset(new char[kStack]);  // not zeroed: the child touches a few pages
        {
            proc::SignalBlock block;
            mask_ = block.old_mask();
            pid_ = ::clone(run_body, stack_.get() + kStack, CLONE_VM | SIGCHLD, &body_);
        }
        if (pid_ < 0) cli::die(sys_error("clone(CLONE_VM) to start the command"));
        // Traced here: its namespace was made only once we waited for it.
        if (spread_) proc::move_off_our_cpu(pid_, cpus_);
    }
    // Wait until the child has run `make`: its result, or ECHILD when it
    // died first.
    int made() {
        struct timespec tick = {0, 20 * 1000 * 1000};
        while (proc::wait_while(made_, 0, &tick) == 0) {
            siginfo_t si = {};
            if (::waitid(P_PID, pid_t(pid_), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid_) return ECHILD;
        }
        return made_err_;
    }
    // Let it exec `ce` (which must live until it has), keeping the gate's
    // read end open across the exec.
    void go(const ChildExec& ce, ready::Gate::Ends gate) {
        if (pid_ < 0 || __atomic_load_n(&go_, __ATOMIC_ACQUIRE) != kWait) return;
        exec_ = &ce;
        gate_ = gate;
        // We wait beside the command from now on (see proc::undumpable).
        // The memory is shared until the child's exec, which makes the
        // command dumpable again.
        cli::check_or_die(proc::undumpable());
        proc::post(go_, kGo);
    }
    pid_t pid() const { return pid_; }

  private:
    static constexpr size_t kStack = 64 * 1024;
    static constexpr int kWait = 0, kGo = 1;
    pid_t pid_ = -1;
    int made_ = 0, made_err_ = 0, go_ = kWait;
    bool spread_ = false;
    cpu_set_t cpus_;
    sigset_t mask_;
    const ChildExec* exec_ = nullptr;  // set by go()
    ready::Gate::Ends gate_;
    std::unique_ptr<char[]> stack_;
    std::function<int()> make_;
    std::function<void()> body_;
};

void write_state_files(const state::StateDir& sd, const std::string& netns, const std::optional<Cidr>& ip,
                       const std::string& name) {
    if (sd.path().empty() || trace::dry_run()) return;
    cli::check_or_die(sd.write("netns", netns));
    if (ip) cli::check_or_die(sd.write("ip", ip->addr_str()));
    std::string resolv;
    auto host = sys::read_file("/etc/resolv.conf");
    // The host's loopback resolvers (127.0.0.53...) are not reachable from the container.
    for (const auto& line : parse::split(host ? *host : "", '\n'))
        if (!line.empty() && line.rfind("nameserver 127.", 0) != 0 && line != "nameserver ::1") resolv += line + "\n";
    if (resolv.find("nameserver") == std::string::npos) resolv += "# net-setup: the host has no resolver reachable from the container\n";
    resolv.pop_back();
    cli::check_or_die(sd.write("resolv.conf", resolv));
    std::string hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback";
    if (ip) hosts += cat("\n", ip->addr_str(), "\t", name);
    cli::check_or_die(sd.write("hosts", hosts));
}

uint64_t host_netns_inode() { return cli::value_or_die(ns_inode("/proc/self/ns/net")); }

// lo up, and an interface moved in (renamed), in the namespace of `inside`.
void setup_inside(Rtnl& host, Rtnl& inside, int netns_fd, const Options& o) {
    LinkChange lo;
    lo.name = "lo";
    lo.index = 1;  // lo is always index 1 in a new namespace
    lo.up = true;
    cli::check_or_die(inside.set_link(lo, "bring up lo"));
    if (o.move.empty()) return;
    auto li = cli::value_or_die(host.get_link(o.move));
    if (!li && !trace::dry_run())
        cli::die(usage_error(cat("--move '", o.move, "': no such interface on the host")));
    LinkChange mv;
    mv.name = o.move;
    mv.index = li ? li->index : 0;
    mv.netns_fd = netns_fd;
    cli::check_or_die(host.set_link(mv, cat("move interface ", o.move, " into the new network namespace")));
    std::string final_name = o.ifname.empty() ? o.move : o.ifname;
    LinkChange up;
    up.name = o.move;
    // Renaming selects the link by index: IFLA_IFNAME is then the new name.
    up.index = cli::value_or_die(inside.index_of(o.move, "--move"));
    if (final_name != o.move) up.new_name = final_name;
    up.up = true;
    cli::check_or_die(inside.set_link(up, cat("rename and bring up ", o.move, " in the container")));
}

// --raw, --move and --join: nothing to undo on the host, so exec.
[[noreturn]] void run_exec_mode(const Options& o, const PreparedExec& p) {
    std::string netns;
    if (!o.join.empty()) {
        netns = netns_path(o.join);
        auto fd = sys::open(netns.c_str(), O_RDONLY);
        if (!fd) cli::die(Error{fd.error().err, cat("--join '", o.join, "': ", netns), ""});
        cli::check_or_die(sys::setns(fd->get(), CLONE_NEWNET, netns));
    } else {
        auto host = cli::value_or_die(Rtnl::open("host"));
        auto st = sys::unshare(CLONE_NEWNET);
        if (!st && st.error().err == EPERM && ::geteuid() != 0)
            cli::die(std::move(st).error().with_hint("without root, use --user-mode"));
        cli::check_or_die(st);
        auto inside = cli::value_or_die(Rtnl::open("container"));
        auto fd = cli::value_or_die(sys::open("/proc/self/ns/net", O_RDONLY));
        setup_inside(host, inside, fd.get(), o);
        netns = cat("/proc/", ::getpid(), "/ns/net");
    }
    ::setenv(env::kNetns, netns.c_str(), 1);
    auto existing = env::get(env::kStateDir);
    if (!existing.empty() && !trace::dry_run()) {
        state::StateDir sd = cli::value_or_die(state::StateDir::acquire(""));
        cli::check_or_die(sd.write("netns", netns));
    }
    cli::exec_command(p, false);
}

[[noreturn]] void run_gc(bool verbose) {
    lease::Lock lock = cli::value_or_die(lease::Lock::acquire());
    auto removed = cli::value_or_die(gc(host_netns_inode(), ::geteuid() == 0, true));
    if (verbose || trace::verbose())
        for (const auto& n : removed) cli::note(cat("removed leftovers of ", n));
    // The state directories of dead chains, whichever program made them.
    for (const auto& l : cli::value_or_die(state::gc())) {
        if (l.removed && (verbose || trace::verbose())) cli::note(cat("removed the state directory of ", l.name));
        if (!l.owner_alive && l.running)
            cli::warn(cat("container '", l.name, "': its supervisor (pid ", l.owner, ") is gone but process ", l.running,
                          " still runs; nothing of it was removed"));
    }
    lock.unlock();  // exit() skips the destructor that would tidy the lease dir
    exit(0);
}

// What a supervising net-setup does with the signals it forwards. When the
// supervisor above it died (follow_parent()), the container is killed, so
// that the rules, the lease and the namespace are removed once it is gone.
// A second SIGINT/SIGTERM/SIGHUP is forwarded to a supervisor below, which
// escalates by itself; any other command is killed.
std::function<void(int)> supervision(pid_t child, const PreparedExec& p, pid_t parent) {
    return [child, &p, parent, terminating = 0](int sig) mutable {
        if (proc::parent_gone(parent)) (void)::kill(child, SIGKILL);
        if ((sig == SIGINT || sig == SIGTERM || sig == SIGHUP) && ++terminating > 1 && !runs_supervisor(child, p))
            (void)::kill(child, SIGKILL);
    };
}

// --veth: the supervised root mode.
[[noreturn]] void run_veth(const Options& o, Plan& plan, const PreparedExec& p) {
    pid_t parent = proc::follow_parent();
    plan.name = cli::value_or_die(state::container_name());
    plan.veth = veth_host_name(plan.name);
    bool rules = o.nat || !plan.publish.empty();
    bool dry = trace::dry_run();

    // The command's process starts first and makes the network namespace
    // (EarlyChild) while we take the lease and write the state files. When
    // the command is a kago program, it execs as soon as those and its
    // namespace exist, and the chain waits at the gate (core/ready.hpp)
    // before it execs the payload, while we make the bridge, the rules, the
    // veth, addresses and routes. Otherwise, and in a trace (which keeps the
    // order of the calls), it execs once everything is done. A failure
    // before that kills it (PR_SET_PDEATHSIG when we exit at once). The gate
    // exists before the child: it has our descriptors of that moment.
    bool early = p.kago && !trace::verbose() && !dry;
    ready::Gate gate;
    if (early) gate = cli::value_or_die(ready::Gate::create());
    EarlyChild cmd;
    if (!dry) cmd.start([] { return ::unshare(CLONE_NEWNET) == 0 ? 0 : errno; });
    pid_t child = dry ? -1 : cmd.pid();
    std::string bind_path = cat(kNetnsDir, "/kago-", plan.name);
    bool bind = ::geteuid() == 0;
    // Without the bind mount, the namespace is named by the command's process.
    std::string netns = bind ? bind_path : cat("/proc/", child, "/ns/net");
    ::setenv(env::kNetns, netns.c_str(), 1);

    uint64_t host_ns = dry ? 0 : host_netns_inode();
    lease::Owner me = lease::self();
    // One nftables socket for the whole run, closed by finish_later_and_exit():
    // closing one waits for the kernel to free what recent changes replaced.
    std::optional<nft::Nft> nft;
    if (rules) nft = cli::value_or_die(nft::Nft::open("host"));
    nft::Nft* nftp = nft ? &*nft : nullptr;
    state::StateDir sd = cli::value_or_die(state::StateDir::acquire(plan.name));
    cli::check_or_die(sd.enlist("net-setup"));  // a same-name start waits for us to end
    // Hold the published host ports, so that nobody else takes them.
    std::vector<UniqueFd> held;
    for (const auto& pub : plan.publish) held.push_back(cli::value_or_die(reserve_port(pub)));
    // The command's environment is complete: copy it for the child.
    ChildExec ce = prepare_child(p);
    ready::Gate::Ends ends = gate.ends();
    gate.forked();

    lease::Lock lock;
    if (!dry) lock = cli::value_or_die(lease::Lock::acquire());

    // Leftovers of killed supervisors are removed while the child makes the
    // namespace, or at once when one holds the address asked for.
    bool collected = false;
    auto collect = [&] {
        if (!dry && !collected) (void)gc(host_ns, rules, false, nftp);
        collected = true;
    };
    bool recorded = false, veth_made = false;
    lease::Record rec;
    auto fail = [&](const Error& e) {
        cli::report(e);
        if (child > 0) {  // it waits to exec, or at the gate
            gate.fail();
            ::kill(child, SIGKILL);
            ::waitpid(child, nullptr, 0);  // SIGCHLD may not be blocked yet: no supervise()
        }
        if (recorded) {
            rec.kv.erase("statedir");  // the StateDir owner removes it
            if (!veth_made) rec.kv.erase("veth");  // a link of that name is not ours
            (void)teardown(rec, host_ns, nullptr, nftp);
        }
        lock.unlock();  // exit() skips destructors: tidy the lease dir and state dir here
        state::remove_owned_dirs();
        exit(125);
    };
    auto must = [&](Status st) {
        if (!st) fail(st.error());
    };
    auto must_value = [&](auto r) {
        if (!r) fail(r.error());
        return std::move(*r);
    };

    // A dead same-name container's record is torn down before ours
    // replaces it; a live one (or one whose processes still run) refuses.
    if (!dry) must(must_value(take_over(plan.name, host_ns, nftp, &lock)));
    auto host = must_value(Rtnl::open("host"));
    std::string key = lease_key(plan.bridge, host_ns);
    lease::LeaseFile leases = dry ? lease::LeaseFile{} : must_value(lease::load(key));
    leases.netns = host_ns;
    Cidr addr;
    if (plan.address) {
        Cidr bare = *plan.address;
        bare.prefix = 32;
        if (leases.in_use(bare) && !dry) {
            collect();
            leases = must_value(lease::load(key));
            leases.netns = host_ns;
        }
        if (leases.in_use(bare))
            fail(usage_error(cat("--address '", plan.address->addr_str(), "': already leased to another container on ",
                                 plan.bridge)));
        addr = *plan.address;
    } else {
        auto a = leases.allocate(plan.subnet, plan.gateway);
        if (!a) fail(usage_error(cat("--subnet ", plan.subnet.str(), ": no free address left on ", plan.bridge)));
        addr = *a;
    }
    // The record below names the veth; a link of that name that is not ours
    // must never be in it (teardown and --gc delete by name).
    if (!dry && !must_value(free_veth_name(host, plan.veth, plan.name)))
        fail(usage_error(cat("container name '", plan.name, "': a link named ", plan.veth,
                             " already exists on the host; choose another KAGO_NAME")));

    // The record names everything before it exists: a SIGKILL from here on
    // leaves nothing that --gc cannot find.
    rec.name = plan.name;
    rec.kv = {{"pid", std::to_string(me.pid)}, {"start", std::to_string(me.start)},
              {"netns_host", std::to_string(host_ns)}, {"veth", plan.veth}, {"leases", key},
              {"nft", rules ? "1" : "0"}, {"address", addr.addr_str()}};
    if (bind) rec.kv["netns"] = bind_path;
    if (sd.owned()) rec.kv["statedir"] = sd.path();
    if (!dry) {
        must(lease::write_record(rec));
        recorded = true;
        Cidr bare = addr;
        bare.prefix = 32;
        leases.entries.push_back(lease::LeaseFile::Entry{bare, plan.name, me});
        must(lease::save(key, leases));
    }

    write_state_files(sd, netns, addr, plan.name);

    // The namespace the child made. A kago chain may exec now: the state
    // files exist, and it waits at the gate.
    proc::SignalBlock block;  // forwarded to the command from now on
    UniqueFd ns_fd;
    if (dry) {
        must(sys::unshare(CLONE_NEWNET));  // traced, not made
        ns_fd = must_value(sys::open("/proc/self/ns/net", O_RDONLY));
    } else {
        if (int err = cmd.made()) {
            errno = err;
            fail(sys_error("unshare(CLONE_NEWNET) in the command's process"));
        }
        if (trace::verbose()) trace::emit(cat("unshare(CLONE_NEWNET) in the command's process ", child, " = 0"));
        ns_fd = must_value(sys::open(cat("/proc/", child, "/ns/net").c_str(), O_RDONLY));
        // Not before: /proc/PID/ns/net is the chain's own once it unshares.
        if (early) cmd.go(ce, ends);
    }

    // What needs no namespace is done while the chain execs: leftovers, the
    // bridge, the rules (they name the address, not the veth). Then a
    // netlink socket in the namespace, and the veth.
    collect();
    bool created = false;
    must(ensure_bridge(host, plan.bridge, plan.gateway, plan.gateway6, leases.created_bridge, created));
    if (created && !dry) {  // gc() may have changed the file since it was read
        auto now = must_value(lease::load(key));
        now.created_bridge = true;
        must(lease::save(key, now));
    }
    int bridge_index = 0;
    if (!dry) bridge_index = must_value(host.index_of(plan.bridge, "--bridge"));

    if (rules) {
        must(write_sysctl("net/ipv4/ip_forward", "1"));
        if (!plan.publish.empty()) must(write_sysctl(cat("net/ipv4/conf/", plan.bridge, "/route_localnet"), "1"));
        nft::RuleSpec spec;
        spec.tag = nft::Tag{plan.name, me.pid, me.start};
        spec.bridge = plan.bridge;
        spec.subnet = plan.subnet;
        spec.addr4 = addr;
        spec.addr6 = plan.address6;
        spec.masquerade = o.nat;
        spec.publish = plan.publish;
        must(nft->add(spec));
    }
    auto host_fd = must_value(sys::open("/proc/self/ns/net", O_RDONLY));
    must(sys::setns(ns_fd.get(), CLONE_NEWNET, "the container's network namespace"));
    auto inside_r = Rtnl::open("container");
    must(sys::setns(host_fd.get(), CLONE_NEWNET, "the host network namespace"));
    if (!inside_r) fail(inside_r.error());
    Rtnl inside = std::move(*inside_r);

    if (bind) must(bind_netns(ns_fd.get(), bind_path));

    // The host end comes up as it is made.
    must(host.create_veth(plan.veth, "eth0", ns_fd.get(), o.mtu, bridge_index, kVethGroup));
    veth_made = true;
    int veth_index = dry ? 0 : must_value(host.index_of(plan.veth, "veth"));

    setup_inside(host, inside, ns_fd.get(), o);
    int eth0 = must_value(inside.index_of("eth0", "container interface"));
    must(inside.add_address(eth0, "eth0", addr));
    if (plan.address6) must(inside.add_address(eth0, "eth0", *plan.address6));
    LinkChange eth_up;
    eth_up.name = "eth0";
    eth_up.index = eth0;
    eth_up.up = true;
    must(inside.set_link(eth_up, "bring up eth0 in the container"));
    Cidr gw = plan.gateway;
    gw.prefix = 32;
    must(inside.add_default_route(eth0, "eth0", gw));
    if (plan.gateway6) must(inside.add_default_route(eth0, "eth0", *plan.gateway6));

    lock.unlock();

    if (dry) cli::exec_command(p, false);
    if (gate.valid()) gate.open();
    else cmd.go(ce, ends);

    inside = Rtnl();
    auto ws = proc::supervise(child, supervision(child, p, parent));

    if (auto l = lease::Lock::acquire()) lock = std::move(*l);  // best effort: cleanup goes on
    rec.kv.erase("statedir");
    // The kernel's slow part (the veth, the nftables socket) is left to a
    // detached process, except in a trace, which shows every call.
    Later later;
    auto st = teardown(rec, host_ns, trace::verbose() ? nullptr : &later, nftp);
    if (!st) cli::report(st.error());

    if (!trace::verbose()) {
        if (nft) later.sockets.push_back(nft->take_netlink());
        // The namespace lives on until its veth is deleted with the others:
        // when a namespace dies, the kernel deletes its veth on its own, alone.
        later.veths.push_back(Later::Veth{veth_index, std::move(ns_fd)});
    }
    ns_fd.reset();
    lock.unlock();
    held.clear();
    (void)sd.remove();
    if (!ws) {
        cli::report(ws.error());
        state::remove_owned_dirs();
    }
    finish_later_and_exit(std::move(later), ws ? *ws : 125 << 8);
}

// --user-mode: a new user and network namespace in a child, and pasta or
// slirp4netns attached to it from the host side.
[[noreturn]] void run_user_mode(const Options& o, Plan& plan, const PreparedExec& p) {
    pid_t parent = proc::follow_parent();
    plan.name = cli::value_or_die(state::container_name());
    state::StateDir sd = cli::value_or_die(state::StateDir::acquire(plan.name));
    cli::check_or_die(sd.enlist("net-setup"));  // a same-name start waits for us to end
    auto helper = cli::value_or_die(usermode::find_helper(o.helper));
    // Fail early, and by name, on a port that is taken.
    for (const auto& pub : plan.publish) (void)cli::value_or_die(reserve_port(pub));
    if (trace::dry_run()) {
        trace::emit("unshare(CLONE_NEWUSER|CLONE_NEWNET) (dry run, in the child)");
        if (o.map_auto) {
            ns::Caller caller;
            caller.uid = ::geteuid();
            caller.gid = ::getegid();
            caller.path = env::get("PATH");
            cli::check_or_die(ns::write_maps(cli::value_or_die(ns::plan_maps({false, true, {}, {}}, caller)), 0));
        }
        auto argv = usermode::pasta_argv(helper, 0, plan.publish, o.mtu, sd.path() + "/pasta.pid");
        if (helper.name == "pasta") trace::emit(cat("execve(", trace::quote(helper.path), ", ", describe_argv(argv), ") (dry run)"));
        else trace::emit(cat("execve(", trace::quote(helper.path), ", ...) (dry run)"));
        cli::exec_command(p, false);
    }
    // A daemonized pasta stays our descendant, so that we can stop it.
    (void)::prctl(PR_SET_CHILD_SUBREAPER, 1);
    std::string uid_map = cat("0 ", ::geteuid(), " 1"), gid_map = cat("0 ", ::getegid(), " 1");
    // --map-auto: the caller's subordinate ranges too, written from here by
    // newuidmap and newgidmap, so that the network namespace belongs to a
    // user namespace with the full map (as podman's) and unshare-run --user
    // --map-auto can follow; pasta joins that namespace.
    ns::MapPlan full;
    if (o.map_auto) {
        ns::Caller caller;
        caller.uid = ::geteuid();
        caller.gid = ::getegid();
        caller.path = env::get("PATH");
        full = cli::value_or_die(ns::plan_maps({false, true, {}, {}}, caller));
    }
    bool own_maps = !o.map_auto;
    EarlyChild cmd;
    cmd.start([&uid_map, &gid_map, own_maps] {
        auto put = [](const char* path, const char* s) {
            int fd = ::open(path, O_WRONLY | O_CLOEXEC);
            if (fd < 0) return -1;
            ssize_t n = ::write(fd, s, strlen(s));
            ::close(fd);
            return n < 0 ? -1 : 0;
        };
        if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return errno;
        if (own_maps && (put("/proc/self/setgroups", "deny") != 0 || put("/proc/self/uid_map", uid_map.c_str()) != 0 ||
                         put("/proc/self/gid_map", gid_map.c_str()) != 0))
            return errno;
        // Ports below 1024 for the container's own root (a nested user namespace).
        (void)put("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
        return 0;
    });
    pid_t child = cmd.pid();
    std::string netns = cat("/proc/", child, "/ns/net");
    ::setenv(env::kNetns, netns.c_str(), 1);
    ChildExec ce = prepare_child(p);
    proc::SignalBlock block;  // forwarded to the command from now on
    if (int err = cmd.made()) {
        errno = err;
        cli::die(sys_error("unshare(CLONE_NEWUSER|CLONE_NEWNET) and write the id maps in the child")
                     .with_hint(err == EPERM || err == ENOSPC ? "unprivileged user namespaces may be disabled here" : ""));
    }
    if (o.map_auto) {
        auto st = ns::write_maps(full, child);
        if (!st) {
            ::kill(child, SIGKILL);
            ::waitpid(child, nullptr, 0);
            cli::report(st.error());
            (void)sd.remove();
            exit(125);
        }
    }
    // The helper enlists at once: it holds the ports until it has ended.
    auto running = usermode::start(helper, child, plan.publish, o.mtu, sd.path(),
                                   [&](pid_t pid) { (void)sd.enlist(helper.name, pid); });
    if (!running) {
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
        cli::report(running.error());
        (void)sd.remove();
        exit(125);
    }
    write_state_files(sd, netns, std::nullopt, plan.name);
    if (helper.name == "slirp4netns") (void)sd.write("ip", "10.0.2.100");
    cmd.go(ce, ready::Gate::Ends{});
    auto ws = proc::supervise(child, supervision(child, p, parent));
    usermode::stop(*running);
    (void)sd.remove();
    if (!ws) cli::die(ws.error());
    proc::exit_like(*ws);
}

}  // namespace

int main(int argc, char** argv) {

    CLI::App app{"Give the command a network namespace: empty, with a veth on a bridge, NAT and published\n"
                 "ports (root), or connected by pasta/slirp4netns (rootless).",
                 "net-setup"};
    cli::Common common;
    Options o;
    cli::setup(app, common, "[--] [COMMAND [ARG...]]");
    app.add_flag("--raw", o.raw, "A new network namespace with only lo up (the default mode)");
    app.add_option("--move", o.move, "Move host interface IF into the namespace")->type_name("IF");
    app.add_option("--ifname", o.ifname, "Rename the moved interface to NAME inside")->type_name("NAME");
    app.add_flag("--veth", o.veth, "A veth pair: host end kgNAME on the bridge, eth0 inside; supervised");
    app.add_option("--bridge", o.bridge, "Bridge for --veth, created when missing (default kago0)")->type_name("NAME");
    app.add_option("--subnet", o.subnet, "IPv4 subnet of the bridge; its first address is the gateway (default 10.88.0.0/16)")
        ->type_name("CIDR");
    app.add_option("--address", o.address, "Container address in the subnet (default: the next free lease)")->type_name("CIDR");
    app.add_option("--address6", o.address6, "Container IPv6 address; the first address of its network goes on the bridge")
        ->type_name("CIDR");
    app.add_option("--mtu", o.mtu, "MTU of the veth pair (or of the user-mode interface)")->type_name("N");
    app.add_flag("--nat", o.nat, "Masquerade the container's outbound traffic (table inet kago; sets ip_forward)");
    app.add_option("--publish", o.publish, "Forward [HOSTIP:]HOSTPORT to the container's PORT; repeatable")
        ->type_name("[HOSTIP:]HOSTPORT:PORT[/tcp|udp]");
    app.add_option("--join", o.join, "Enter an existing network namespace (/run/netns/NAME or a path)")->type_name("NAME|PATH");
    app.add_flag("--user-mode", o.user_mode, "Rootless: new user+net namespaces connected by pasta or slirp4netns");
    app.add_flag("--map-auto", o.map_auto,
                 "With --user-mode: map your /etc/subuid and /etc/subgid ranges too (newuidmap), so that "
                 "unshare-run --user --map-auto can follow");
    app.add_option("--user-mode-helper", o.helper, "pasta, slirp4netns or auto (default: pasta, else slirp4netns)")
        ->type_name("NAME");
    app.add_flag("--gc", o.gc, "Remove what killed chains left (rules, leases, veths, unused bridges, netns bind mounts, state directories) unless a process of theirs still runs; exit");
    if (auto code = cli::parse(app, common, argc, argv)) return *code;

    if (o.helper != "auto" && o.helper != "pasta" && o.helper != "slirp4netns")
        cli::usage_error(cat("--user-mode-helper '", o.helper, "': expected pasta, slirp4netns or auto"));

    Plan plan = check(o);
    if (o.gc) run_gc(common.verbose);
    ready::before_payload();  // a net-setup below another one starts after it
    auto p = cli::value_or_die(prepare_exec(common.command));
    if (o.veth) run_veth(o, plan, p);
    if (o.user_mode) run_user_mode(o, plan, p);
    run_exec_mode(o, p);
}
