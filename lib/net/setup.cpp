#include "net/setup.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include "core/child.hpp"
#include "core/env.hpp"
#include "core/parse.hpp"
#include "core/proc.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"
#include "net/netns.hpp"

namespace kago::net {

std::string conflicts(const Options& o) {
    int modes = o.raw + o.veth + !o.join.empty() + o.user_mode + o.gc;
    if (modes > 1) return "--raw, --veth, --join, --user-mode and --gc exclude each other";
    if (!o.move.empty() && (o.user_mode || !o.join.empty() || o.gc)) return "--move works with --raw or --veth";
    if (!o.ifname.empty() && o.move.empty()) return "--ifname renames the interface given to --move";
    if (o.nat && !o.veth) return "--nat needs --veth";
    if (o.map_auto && !o.user_mode) return "--map-auto needs --user-mode";
    if (!o.publish.empty() && !o.veth && !o.user_mode) return "--publish needs --veth or --user-mode";
    if ((!o.address.empty() || !o.address6.empty()) && !o.veth) return "--address and --address6 need --veth";
    if (o.helper != "auto" && o.helper != "pasta" && o.helper != "slirp4netns")
        return cat("--user-mode-helper '", o.helper, "': expected pasta, slirp4netns or auto");
    return "";
}

Result<Plan> check(const Options& o) {
    Plan p;
    if (!o.move.empty()) TRY(validate_ifname(o.move, "--move"));
    if (!o.ifname.empty()) TRY(validate_ifname(o.ifname, "--ifname"));
    TRY(validate_ifname(o.bridge, "--bridge"));
    p.bridge = o.bridge;
    p.subnet = TRY(parse_cidr(o.subnet, "--subnet"));
    if (p.subnet.family != AF_INET || p.subnet.prefix > 30 || p.subnet.prefix < 8)
        return usage_error(cat("--subnet '", o.subnet, "': must be an IPv4 network with a prefix of /8 to /30"));
    p.subnet = p.subnet.network();
    p.gateway = gateway_of(p.subnet);
    if (!o.address.empty()) p.address = TRY(check_address(TRY(parse_cidr(o.address, "--address")), p.subnet));
    if (!o.address6.empty()) {
        Cidr a6 = TRY(parse_cidr(o.address6, "--address6"));
        if (a6.family != AF_INET6) return usage_error(cat("--address6 '", o.address6, "': not an IPv6 address"));
        if (!a6.had_prefix) a6.prefix = 64;
        Cidr net6 = a6;
        net6.prefix = a6.prefix;
        p.gateway6 = gateway_of(net6.network());
        p.gateway6->prefix = a6.prefix;
        p.address6 = TRY(check_address(a6, net6.network()));
    }
    for (const auto& s : o.publish) {
        Publish pub = TRY(parse_publish(s));
        bool v6 = pub.host_ip && pub.host_ip->family == AF_INET6;
        if (v6 && o.veth && !p.address6)
            return usage_error(
                cat("--publish '", s, "': an IPv6 host address needs --address6 (the container has none)"));
        if (v6 && o.veth && pub.host_ip->addr_str() == "::1")
            return usage_error(cat("--publish '", s,
                                   "': the kernel does not forward from ::1 (IPv6 has no route_localnet);",
                                   " publish without HOSTIP (every local address) or on the host's own IPv6 address"));
        p.publish.push_back(pub);
    }
    if (o.mtu && (o.mtu < 68 || o.mtu > 65535)) return usage_error(cat("--mtu ", o.mtu, ": must be 68 to 65535"));
    return p;
}

Status write_state_files(const state::StateDir& sd, const std::string& netns, const std::optional<Cidr>& ip,
                         const std::string& name) {
    if (sd.path().empty()) return {};  // (StateDir::write writes nothing in a dry run)
    TRY(sd.write("netns", netns));
    if (ip) TRY(sd.write("ip", ip->addr_str()));
    std::string resolv;
    auto host = sys::read_file("/etc/resolv.conf");
    // The host's loopback resolvers (127.0.0.53...) are not reachable from the container.
    for (const auto& line : parse::split(host ? *host : "", '\n'))
        if (!line.empty() && line.rfind("nameserver 127.", 0) != 0 && line != "nameserver ::1") resolv += line + "\n";
    if (resolv.find("nameserver") == std::string::npos)
        resolv += "# net-setup: the host has no resolver reachable from the container\n";
    resolv.pop_back();
    TRY(sd.write("resolv.conf", resolv));
    std::string hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback";
    if (ip) hosts += cat("\n", ip->addr_str(), "\t", name);
    return sd.write("hosts", hosts);
}

Status move_interface(Rtnl& host, Rtnl& inside, int netns_fd, const Options& o) {
    if (o.move.empty()) return {};
    auto li = TRY(host.get_link(o.move));
    if (!li && !trace::dry_run()) return usage_error(cat("--move '", o.move, "': no such interface on the host"));
    LinkChange mv;
    mv.name = o.move;
    mv.index = li ? li->index : 0;
    mv.netns_fd = netns_fd;
    TRY(host.set_link(mv, cat("move interface ", o.move, " into the new network namespace")));
    std::string final_name = o.ifname.empty() ? o.move : o.ifname;
    LinkChange up;
    up.name = o.move;
    // Renaming selects the link by index: IFLA_IFNAME is then the new name.
    up.index = TRY(inside.index_of(o.move, "--move"));
    if (final_name != o.move) up.new_name = final_name;
    up.up = true;
    return inside.set_link(up, cat("rename and bring up ", o.move, " in the container"));
}

Result<std::string> enter(const Options& o) {
    if (!o.join.empty()) {
        std::string netns = netns_path(o.join);
        auto fd = sys::open(netns.c_str(), O_RDONLY);
        if (!fd) return Error{fd.error().err, cat("--join '", o.join, "': ", netns), ""};
        TRY(sys::setns(fd->get(), CLONE_NEWNET, netns));
        return netns;
    }
    Rtnl host = TRY(Rtnl::open("host"));
    auto st = sys::unshare(CLONE_NEWNET);
    if (!st && st.error().err == EPERM && ::geteuid() != 0)
        return std::move(st).error().with_hint("without root, use --user-mode");
    TRY(st);
    TRY(child::loopback_up_traced());
    if (!o.move.empty()) {
        Rtnl inside = TRY(Rtnl::open("container"));
        UniqueFd fd = TRY(sys::open("/proc/self/ns/net", O_RDONLY));
        TRY(move_interface(host, inside, fd.get(), o));
    }
    return cat("/proc/", ::getpid(), "/ns/net");
}

std::function<void(int)> supervision(pid_t child, const PreparedExec& p, pid_t parent) {
    return [child, &p, parent, terminating = 0](int sig) mutable {
        if (proc::parent_gone(parent)) (void)::kill(child, SIGKILL);
        if ((sig == SIGINT || sig == SIGTERM || sig == SIGHUP) && ++terminating > 1 && !runs_supervisor(child, p))
            (void)::kill(child, SIGKILL);
    };
}

}  // namespace kago::net
