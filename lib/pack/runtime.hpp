// Running the container of a packed file: namespaces (lib/ns for the id
// maps), the root (lib/mount), privileges (lib/caps), and a small init.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "caps/policy.hpp"
#include "core/result.hpp"
#include "mount/spec.hpp"
#include "pack/format.hpp"

namespace kago::pack {

struct RunSpec {
    Config config;
    std::string rootfs;  // the extracted tree (read-only lower layer)
    std::string mnt;     // an empty directory to assemble the root on
    std::vector<std::string> command;  // the full argv
    std::vector<std::pair<std::string, std::string>> binds;  // --kago-bind SRC:DST
};

struct RunOutcome {
    int wstatus = 0;                 // leave like this: child::exit_like()
    std::optional<Error> exec_error; // the command could not be executed (126/127)
};

// The container's root, for mount::apply(): the cached tree under a tmpfs
// upper (none with --read-only), nosuid and nodev; /proc, /dev and
// /dev/mqueue; /sys and a read-only /sys/fs/cgroup when packed with --sys
// (the cgroupfs unless --no-cgroupfs); the --kago-bind binds; the workdir;
// then pivot_root into it.
mount::RootSpec root_spec(const RunSpec& s);

// Fork the container, wait for it, and return how it ended. Errors are
// setup failures (exit 125), with a hint naming the setting that blocks
// user namespaces when that is the cause.
Result<RunOutcome> run_container(const RunSpec& spec);

// Why unprivileged user namespaces are refused here: the sysctl that says
// so ("kernel.unprivileged_userns_clone = 0"), or "".
std::string userns_blocker();

// The container's environment: a clean one, with PATH, TERM, HOME and the
// configured variables.
std::vector<std::string> container_env(const Config& c, const std::string& home);

// The privileges of the container, as cap-drop options: cap-drop's default
// set (caps::default_caps(), none of it ambient) or only the configured
// capabilities (ambient), the configured user, and no seccomp (the runner
// loads the filter compiled into the config).
caps::Options cap_options(const Config& c);

// The default seccomp profile for c's capabilities, compiled to BPF with
// libseccomp, for Config::seccomp_bpf (lib/pack/filter.cpp: the packer
// links it, the runner does not).
Result<std::string> default_filter(const Config& c);

// Parse "SRC:DST" for --kago-bind.
Result<std::pair<std::string, std::string>> parse_bind(const std::string& s);

}  // namespace kago::pack
