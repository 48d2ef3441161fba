#include "ns/types.hpp"

#include <sys/mount.h>

#include "core/parse.hpp"

namespace kago::ns {

namespace {
struct Info {
    Type type;
    const char* name;
    unsigned long flag;
    const char* option;
};
constexpr Info kInfo[] = {
    {Type::user, "user", CLONE_NEWUSER, "--user"},
    {Type::cgroup, "cgroup", CLONE_NEWCGROUP, "--cgroup"},
    {Type::ipc, "ipc", CLONE_NEWIPC, "--ipc"},
    {Type::uts, "uts", CLONE_NEWUTS, "--uts"},
    {Type::net, "net", CLONE_NEWNET, "--net"},
    {Type::pid, "pid", CLONE_NEWPID, "--pid"},
    {Type::mnt, "mnt", CLONE_NEWNS, "--mount"},
    {Type::time, "time", CLONE_NEWTIME, "--time"},
};
const Info& info(Type t) {
    return kInfo[static_cast<int>(t)];
}
}  // namespace

const char* name(Type t) {
    return info(t).name;
}
unsigned long clone_flag(Type t) {
    return info(t).flag;
}
const char* option(Type t) {
    return info(t).option;
}

Result<Type> parse_type(std::string_view s) {
    if (s == "mount") return Type::mnt;
    for (const auto& i : kInfo)
        if (s == i.name) return i.type;
    return usage_error(cat("unknown namespace type '", s, "' (expected one of ", type_list(), ")"));
}

std::string type_list() {
    std::string out;
    for (const auto& i : kInfo) {
        if (!out.empty()) out += ", ";
        out += i.name;
    }
    return out;
}

std::vector<Type> types_of(unsigned long flags) {
    std::vector<Type> out;
    for (const auto& i : kInfo)
        if (flags & i.flag) out.push_back(i.type);
    return out;
}

Result<Offset> parse_offset(std::string_view s, std::string_view option) {
    auto bad = [&] {
        return usage_error(
            cat(option, " '", s, "': expected SECONDS or SECONDS.FRACTION, like 86400 or -1.5"));
    };
    std::string_view t = s;
    bool neg = false;
    if (!t.empty() && (t[0] == '-' || t[0] == '+')) {
        neg = t[0] == '-';
        t.remove_prefix(1);
    }
    auto dot = t.find('.');
    std::string_view whole = t.substr(0, dot);
    std::string_view frac = dot == std::string_view::npos ? std::string_view() : t.substr(dot + 1);
    if (whole.empty() || whole.size() > 12 || frac.size() > 9 ||
        (dot != std::string_view::npos && frac.empty()))
        return bad();
    int64_t sec = 0, nsec = 0;
    for (char c : whole) {
        if (c < '0' || c > '9') return bad();
        sec = sec * 10 + (c - '0');
    }
    int64_t scale = 100000000;
    for (char c : frac) {
        if (c < '0' || c > '9') return bad();
        nsec += (c - '0') * scale;
        scale /= 10;
    }
    if (neg) {
        sec = -sec;
        if (nsec > 0) {
            sec -= 1;
            nsec = 1000000000 - nsec;
        }
    }
    return Offset{sec, nsec};
}

std::string offsets_text(const std::optional<Offset>& monotonic,
                         const std::optional<Offset>& boottime) {
    std::string out;
    if (monotonic) out += cat("monotonic ", monotonic->sec, " ", monotonic->nsec, "\n");
    if (boottime) out += cat("boottime ", boottime->sec, " ", boottime->nsec, "\n");
    return out;
}

Result<Propagation> parse_propagation(std::string_view s) {
    if (s == "private") return Propagation::private_;
    if (s == "slave") return Propagation::slave;
    if (s == "shared") return Propagation::shared;
    if (s == "unchanged") return Propagation::unchanged;
    return usage_error(
        cat("--propagation '", s, "': expected private, slave, shared or unchanged"));
}

unsigned long propagation_flags(Propagation p) {
    switch (p) {
        case Propagation::private_: return MS_REC | MS_PRIVATE;
        case Propagation::slave: return MS_REC | MS_SLAVE;
        case Propagation::shared: return MS_REC | MS_SHARED;
        case Propagation::unchanged: return 0;
    }
    return 0;
}

Status resolve(Request& r, bool privileged, unsigned long joins) {
    if (r.all) r.pid = r.mount = r.uts = r.ipc = r.net = r.cgroup = r.time = true;
    if (r.all && !privileged && !(joins & CLONE_NEWUSER)) {
        r.user = true;
        if (!r.map_auto && r.map_user.empty() && r.map_group.empty()) r.map_root = true;
    }
    if (r.map_root && r.map_auto)
        return usage_error("--map-root and --map-auto exclude each other");
    if (r.map_root || r.map_auto || !r.map_user.empty() || !r.map_group.empty()) r.user = true;
    if (!r.hostname.empty()) r.uts = true;
    if (r.mount_proc) r.mount = r.pid = true;
    if (!r.monotonic.empty()) r.monotonic_offset = TRY(parse_offset(r.monotonic, "--monotonic"));
    if (!r.boottime.empty()) r.boottime_offset = TRY(parse_offset(r.boottime, "--boottime"));
    if (r.monotonic_offset || r.boottime_offset) r.time = true;
    if (!r.propagation.empty()) {
        r.propagation_mode = TRY(parse_propagation(r.propagation));
        if (!r.mount) return usage_error("--propagation needs a new mount namespace (--mount)");
    }
    if (r.hostname.size() > 64)
        return usage_error(cat("--hostname '", r.hostname, "': longer than 64 characters"));

    r.create = 0;
    const std::pair<bool, unsigned long> wanted[] = {
        {r.user, CLONE_NEWUSER},     {r.pid, CLONE_NEWPID},  {r.mount, CLONE_NEWNS},
        {r.uts, CLONE_NEWUTS},       {r.ipc, CLONE_NEWIPC},  {r.net, CLONE_NEWNET},
        {r.cgroup, CLONE_NEWCGROUP}, {r.time, CLONE_NEWTIME}};
    for (auto [on, flag] : wanted)
        if (on) r.create |= flag;

    for (Type t : types_of(r.create & joins))
        return usage_error(
            cat(option(t), " and joining a ", name(t), " namespace exclude each other"));
    if ((joins & CLONE_NEWUSER) && r.create)
        return usage_error("joining a user namespace cannot be combined with new namespaces");
    if (r.as_pid_1 && !r.pid) return usage_error("--as-pid-1 needs a new PID namespace (--pid)");
    // A new time namespace holds the children of the process that made it.
    // Without privilege outside, the child makes it after its user
    // namespace, so the command must be the child's child.
    bool time_in_child = r.time && !privileged;
    if (r.as_pid_1 && time_in_child)
        return usage_error(
            "--as-pid-1 cannot be combined with --time without root: the command "
            "would not be in the new time namespace");
    // A joined PID namespace holds only the children of the process that
    // joined it: the child joins, then forks the command.
    r.init = (r.pid && !r.as_pid_1) || time_in_child || (joins & CLONE_NEWPID);
    if (r.as_pid_1 && (joins & CLONE_NEWPID))
        return usage_error("--as-pid-1 cannot be combined with joining a PID namespace");
    return {};
}

}  // namespace kago::ns
