// Applying a RootSpec: assemble the root (overlay or bind), mount /proc,
// /dev and /sys, apply the steps in order, then pivot_root into it.
//
//   kago::mount::Context ctx = kago::mount::detect_context();
//   kago::mount::Undo undo;                // undoes mounts if a step fails
//   TRY(kago::mount::apply(spec, ctx, undo));
//   undo.dismiss();                        // success: keep everything
//
// Every function returns a Result and makes its calls through traced
// wrappers, so -v shows them and --dry-run prints them without making them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/result.hpp"
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
};
Context detect_context();
// The in_userns part alone: /proc/self/uid_map is not the initial one.
bool in_user_namespace();

// Pure helpers behind detect_context (unit-tested).
bool uid_map_is_initial(std::string_view uid_map);   // "0 0 4294967295"
size_t nspid_depth(std::string_view proc_status);    // fields on the NSpid: line
bool same_mntns_as_ancestors();

// Undo-on-failure guard: actions run in reverse order on destruction,
// unless dismiss()ed once setup succeeded.
class Undo {
  public:
    Undo() = default;
    Undo(const Undo&) = delete;
    Undo& operator=(const Undo&) = delete;
    ~Undo() { run(); }
    void add(std::function<void()> f) { actions_.push_back(std::move(f)); }
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
Status mount_dev(const Root& root, const Context& ctx);
Status mount_sys(const Root& root, const Context& ctx, bool mask);
Status bind_etc_files(const Root& root, const RootSpec& spec);
Status apply_step(const Root& root, const Step& step);
Status make_read_only(const Root& root);
// chdir into the root, pivot_root(".", "."), detach the old root, chdir("/").
Status pivot(const Root& root);

// All of the above in order: make_private, assemble_root, proc, dev, sys,
// the /etc files, the steps, read-only, pivot, and the last --chdir.
Status apply(const RootSpec& spec, const Context& ctx, Undo& undo);

}  // namespace kago::mount
