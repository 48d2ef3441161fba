// Rootless networking: pasta (passt), or slirp4netns where pasta is
// missing. The helper runs on the host side and attaches to the user and
// network namespaces of a target process.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "core/child.hpp"
#include "core/result.hpp"
#include "net/addr.hpp"

namespace kago::net::usermode {

// "pasta", "slirp4netns", or "auto" (pasta, else slirp4netns).
// Returns the helper's name and its path, searched in PATH.
struct Helper {
    std::string name;
    std::string path;
};
Result<Helper> find_helper(std::string_view wanted);

// pasta's port spec for -t/-u: "8080:80", "127.0.0.1/8080:80".
std::string pasta_port(const Publish& p);

// The command line of the helper attached to `target`'s namespaces.
std::vector<std::string> pasta_argv(const Helper& h, pid_t target, const std::vector<Publish>& publish,
                                    uint32_t mtu, const std::string& pidfile);
std::vector<std::string> slirp_argv(const Helper& h, pid_t target, uint32_t mtu, int ready_fd, int exit_fd,
                                    const std::string& api_socket);
// A command line for sh(1) that runs the helper by hand, on a namespace of
// its own (pasta makes one; slirp4netns attaches to one that unshare(1)
// makes), with the options we give it: to copy and paste after a failure.
std::string by_hand(const Helper& h, const std::vector<Publish>& publish, uint32_t mtu);
// Why a rootless helper cannot open /dev/net/tun, from its stat (nullptr:
// it does not exist): "" when it can. In the helper's user namespace, root
// and the device's group are not mapped, so only the bits for others count.
std::string tun_problem(const struct stat* st);
// "crw-rw-rw-"
std::string mode_string(mode_t mode);
// The slirp4netns API request that adds one port forward.
std::string slirp_hostfwd_request(const Publish& p);

// Run the helper and wait until it has configured the namespace.
//  pasta: stays a child of ours (--foreground), ready when it has written
//  its pid file; returns its pid.
//  slirp4netns: stays a child of ours; ready when it writes to ready_fd;
//  the port forwards are then added through its API socket. It exits when
//  exit_fd (kept open by us) closes.
// Both die with us (PR_SET_PDEATHSIG, SIGKILL), even when we are killed.
// The helper is owned (child::Process): killed and reaped when a step of
// start() fails, or when its owner goes without stop() or release().
struct Running {
    child::Process proc;  // empty in a dry run
    int exit_fd = -1;     // slirp4netns: the write end we close to stop it
    pid_t pid() const { return proc.pid(); }
};
// `spawned` is told the helper's pid as soon as it exists, before it is
// ready (it may hold the ports already).
Result<Running> start(const Helper& h, pid_t target, const std::vector<Publish>& publish, uint32_t mtu,
                      const std::string& work_dir, const std::function<void(pid_t)>& spawned = {});
// Stop it (SIGTERM, when it has not ended; for slirp4netns also closes
// exit_fd) and reap it, waiting up to 1 s; after that it is left to
// PR_SET_PDEATHSIG.
void stop(Running& r);

}  // namespace kago::net::usermode
