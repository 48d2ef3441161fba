// Network namespaces on the host side: bind-mounting them under /run/netns
// (as ip-netns(8) does), finding one by name, sysctls, and reserving the
// host ports that --publish uses.
#pragma once

#include <cstdint>
#include <string>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "net/addr.hpp"

namespace kago::net {

inline constexpr const char kNetnsDir[] = "/run/netns";

// --join NAME|PATH: a NAME (no '/') means /run/netns/NAME.
std::string netns_path(std::string_view name_or_path);
// The inode number of a namespace file.
Result<uint64_t> ns_inode(const char* path);
// Bind-mount the namespace open as `fd` on PATH (the file is created).
Status bind_netns(int fd, const std::string& path);
// Unmount (MNT_DETACH) and remove PATH; a missing PATH is fine.
Status unbind_netns(const std::string& path);
// Write VALUE to /proc/sys/KEY ("net/ipv4/ip_forward"). Traced.
Status write_sysctl(const std::string& key, std::string_view value);
Result<std::string> read_sysctl(const std::string& key);
// Reserve a host port for --publish: a socket bound to [HOSTIP:]HOSTPORT
// (not listening). EADDRINUSE becomes "port in use".
Result<UniqueFd> reserve_port(const Publish& p);

}  // namespace kago::net
