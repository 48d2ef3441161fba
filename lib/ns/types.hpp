// Namespace types, their names and clone flags, and the options of
// unshare-run resolved into what to create.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace kago::ns {

// In the order namespaces are joined: the user namespace first (the kernel
// needs it to grant the rest), the mount namespace late (the root and the
// working directory follow it).
enum class Type { user, cgroup, ipc, uts, net, pid, mnt, time };
inline constexpr Type kTypes[] = {Type::user, Type::cgroup, Type::ipc, Type::uts,
                                  Type::net,  Type::pid,    Type::mnt, Type::time};

// "user", "mnt", ...: the names in /proc/PID/ns.
const char* name(Type t);
// CLONE_NEWUSER, ...
unsigned long clone_flag(Type t);
// The option that creates it: "--user", "--mount", ...
const char* option(Type t);
// A name from /proc/PID/ns, or "mount".
Result<Type> parse_type(std::string_view s);
// "user, cgroup, ipc, uts, net, pid, mnt, time"
std::string type_list();
// The CLONE_NEW* flags of a set of types, and back.
std::vector<Type> types_of(unsigned long flags);

// A time namespace offset: seconds and nanoseconds, nanoseconds in [0, 1e9).
struct Offset {
    int64_t sec = 0;
    int64_t nsec = 0;
    bool operator==(const Offset&) const = default;
};
// "SECONDS" or "SECONDS.FRACTION", optionally negative: "-1.5" is {-2, 500000000}.
Result<Offset> parse_offset(std::string_view s, std::string_view option);
// The text for /proc/PID/timens_offsets: "monotonic 10 0\nboottime 0 0\n".
std::string offsets_text(const std::optional<Offset>& monotonic,
                         const std::optional<Offset>& boottime);

enum class Propagation { private_, slave, shared, unchanged };
Result<Propagation> parse_propagation(std::string_view s);
// MS_REC|MS_PRIVATE and so on; 0 for unchanged.
unsigned long propagation_flags(Propagation p);

// unshare-run's options, before and after resolve().
struct Request {
    bool user = false, pid = false, mount = false, uts = false, ipc = false, net = false,
         cgroup = false, time = false, all = false;
    bool map_root = false, map_auto = false;
    std::vector<std::string> map_user, map_group;
    std::string hostname;
    std::string monotonic, boottime;
    std::string propagation;  // empty: private
    std::vector<std::string> join;
    std::string join_pid;
    bool as_pid_1 = false, mount_proc = false;

    // Filled in by resolve():
    unsigned long create = 0;  // CLONE_NEW* of the namespaces to create
    std::optional<Offset> monotonic_offset, boottime_offset;
    Propagation propagation_mode = Propagation::private_;
    bool init = false;  // the command runs as a child of PID 1 / of a forwarder
};

// Apply the implications (--hostname: a UTS namespace; a map: a user
// namespace; --mount-proc: mount and PID; --all) and reject the
// combinations that cannot work. `privileged`: the caller is root outside,
// so that the time namespace can be made by the parent; `joins`: the types
// joined by --join and --join-pid.
Status resolve(Request& r, bool privileged, unsigned long joins);

}  // namespace kago::ns
