// Applying a RootSpec: assemble the root (overlay or bind), mount /proc,
// /dev and /sys, apply the steps in order, then pivot_root into it.
//
//   kago::mount::Context ctx = kago::mount::detect_context(spec);
//   kago::mount::Undo undo;                // undoes mounts if a step fails
//   TRY(kago::mount::apply(spec, ctx, undo));
//   undo.dismiss();                        // success: keep everything
//
// Every function returns a Result and makes its calls through traced
// wrappers, so -v shows them and --dry-run prints them without making them.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/trace.hpp"
#include "mount/resolve.hpp"
#include "mount/spec.hpp"

namespace kago::mount {

// Where we run, detected once from /proc.
struct Context {
    bool in_userns = false;      // a user namespace other than the initial one
    bool in_pidns = false;       // a PID namespace below the one /proc shows as PID 1's
    // Every ancestor we can see shares our mount namespace: nobody made a new
    // one for us, so mounts would change the caller's (refused).
    bool host_mntns = false;
    // IPC and cgroup namespaces of the container's own (own_namespace()):
    // /dev/mqueue and a new cgroupfs need them.
    bool own_ipcns = false;
    bool own_cgroupns = false;
};
// What `spec` needs to know, no more: in_pidns with --proc, own_ipcns
// with /dev/mqueue, own_cgroupns with /sys/fs/cgroup; the rest are false.
Context detect_context(const RootSpec& spec);
// The in_userns part alone: /proc/self/uid_map is not the initial one.
bool in_user_namespace();

// Pure helpers behind detect_context (unit-tested).
bool uid_map_is_initial(std::string_view uid_map);   // "0 0 4294967295"
size_t nspid_depth(std::string_view proc_status);    // fields on the NSpid: line
// The namespace of this type ("ipc", "cgroup") is the container's own:
// owned by our user namespace when that is not the initial one, or other
// than the one of the PID 1 /proc shows (the host's, before a new /proc).
// False when it cannot be told.
bool own_namespace(const char* type);

// A cgroupfs on /sys/fs/cgroup (v2) or on /sys/fs/cgroup/NAME (v1, and
// v2's "unified" in a hybrid), from /proc/self/mountinfo.
struct CgroupMount {
    std::string root;         // the mount's root in the hierarchy
    std::string mount_point;
    bool v2 = false;
    std::vector<std::string> controllers;  // v1: "cpu", "name=systemd"
};
std::vector<CgroupMount> parse_cgroup_mounts(std::string_view mountinfo);
// Our cgroup's path below m's root, from /proc/self/cgroup; nothing when
// it is not below it.
std::optional<std::string> cgroup_path_for(std::string_view proc_cgroup, const CgroupMount& m);

// Undo-on-failure guard: actions run in reverse order on destruction,
// unless dismiss()ed once setup succeeded. In a dry run nothing was made,
// so add() keeps nothing: callers add the undo of each step in both modes.
class Undo {
  public:
    Undo() = default;
    Undo(const Undo&) = delete;
    Undo& operator=(const Undo&) = delete;
    ~Undo() { run(); }
    // Undo what `made`: nothing is kept for what was not (a dry run, or an
    // object that was there already).
    void add(trace::Made made, std::function<void()> f);
    void dismiss() { actions_.clear(); }
    void run();
    size_t size() const { return actions_.size(); }

  private:
    std::vector<std::function<void()>> actions_;
};

// The steps, each usable alone (pack-selfexec's runtime picks what it needs).
Status make_private();  // mount --make-rprivate /
Result<Root> assemble_root(const RootSpec& spec, const Context& ctx, Undo& undo);
Status mount_proc(const Root& root, bool mask);
// shm: a --tmpfs /dev/shm step made in place of the default /dev/shm.
Status mount_dev(const Root& root, const Context& ctx, const Step* shm = nullptr);
Status mount_mqueue(const Root& root);
Status mount_sys(const Root& root, const Context& ctx, bool mask);
// asked: --cgroupfs given (a host without a cgroupfs is an error then).
Status mount_cgroupfs(const Root& root, const Context& ctx, bool asked);
// --mask and --read-only-path.
Status mask_paths(const Root& root, const RootSpec& spec);
Status bind_etc_files(const Root& root, const RootSpec& spec);
Status apply_step(const Root& root, const Step& step);
Status make_read_only(const Root& root);
// chdir into the root, pivot_root(".", "."), detach the old root, chdir("/").
Status pivot(const Root& root);

// All of the above in order: make_private, assemble_root, proc, dev, sys,
// the /etc files, the steps, read-only, pivot, and the last --chdir.
Status apply(const RootSpec& spec, const Context& ctx, Undo& undo);

}  // namespace kago::mount
