// What a container's root filesystem is made of: a plan built from options
// (mount-layers' command line, or pack-selfexec's payload header), checked
// without touching the system, then applied by root.hpp.
//
//   kago::mount::RootSpec spec;
//   spec.layers = {"/img/base", "/img/app"};
//   spec.upper = Upper::tmpfs();
//   spec.steps.push_back(TRY(parse_step(StepKind::bind, "/data:/data:ro")));
//   TRY(validate(spec));
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace kago::mount {

// overlayfs stacks at most this many lower layers (OVL_MAX_STACK).
inline constexpr size_t kMaxLayers = 500;

enum class UpperKind { none, dir, tmpfs };

struct Upper {
    UpperKind kind = UpperKind::none;
    std::string dir;     // UpperKind::dir
    uint64_t size = 0;   // UpperKind::tmpfs, 0: the kernel's default (half of RAM)
};

// The steps applied inside the root, in command-line order (as bubblewrap
// does): a later step sees what an earlier one made.
enum class StepKind { bind, tmpfs, symlink, mkdir, file, chdir };

struct Step {
    StepKind kind = StepKind::mkdir;
    std::string src;      // bind: host path; symlink: link target; file: host file
    std::string dst;      // path inside the root (absolute, normalized)
    bool read_only = false;
    bool dev = false;     // bind, tmpfs: device nodes open ("dev"); nodev by default
    bool noexec = false;  // tmpfs: "noexec"
    uint64_t size = 0;    // tmpfs: 0 = default
    mode_t mode = 0;      // tmpfs and mkdir: 0 = default (0755)
};

// The paths --proc and --sys mask and make read-only: the union of runc's
// and Docker's default lists. A path this kernel lacks is skipped.
// Masked: a directory gets an empty read-only tmpfs, a file /dev/null.
const std::vector<std::string>& default_masked_paths();
const std::vector<std::string>& default_read_only_paths();

// When a default mount is made: never, always, or when the option it goes
// with is given (/dev/mqueue with --dev, /sys/fs/cgroup with --sys) and it
// can be made safely.
enum class Want { no, yes, by_default };

struct RootSpec {
    std::vector<std::string> layers;  // host directories, first = bottom
    Upper upper;
    std::string target;               // where the root is assembled
    bool read_only = false;           // make the final root read-only
    // The root itself nosuid (it is always nodev): no setuid program of the
    // layers gains privilege (pack-selfexec's cached root).
    bool nosuid = false;
    bool proc = false;                // new procfs on /proc, with runc's masks
    bool dev = false;                 // minimal /dev: a nodev tmpfs, the host's nodes bound in
    bool sys = false;                 // read-only sysfs on /sys
    bool mask = true;                 // mask /proc and /sys paths (with proc/sys)
    // mqueue on /dev/mqueue: needs an IPC namespace of the container's own.
    Want mqueue = Want::by_default;
    // cgroupfs on /sys/fs/cgroup, read-only: cgroup2 (v2) or one mount per
    // hierarchy on a tmpfs (v1); fresh in a cgroup namespace of the
    // container's own, else the container's own cgroup bound in.
    Want cgroupfs = Want::by_default;
    // --mask and --read-only-path: applied after the steps.
    std::vector<std::string> masked, read_only_paths;
    // Host files bound over /etc/FILE when non-empty (net-setup writes them
    // in the state directory).
    std::string hosts, hostname, resolv;
    std::vector<Step> steps;
    bool pivot = false;               // pivot_root into target and detach the old root
};

// Parse one --bind/--tmpfs/--symlink/--mkdir/--file/--chdir value:
//   bind     SRC:DST[:OPTS] (DST defaults to SRC when only SRC is given;
//                            OPTS: ro, rw, dev, comma-separated)
//   tmpfs    DST[:SIZE[:MODE]] or DST:OPT[,OPT...] with OPT one of
//            ro rw noexec exec nosuid nodev dev size=SIZE mode=MODE
//   symlink  TARGET:LINK    (split at the last ':')
//   mkdir    DST[:MODE]
//   file     SRC:DST        (copy the host file SRC into the root)
//   chdir    DIR
Result<Step> parse_step(StepKind kind, std::string_view value);
const char* step_option(StepKind kind);  // "--bind"

// An octal mode, 0 to 07777.
Result<mode_t> parse_mode(std::string_view s, std::string_view what);

// Normalize a path inside the root: absolute, no "." or empty components.
// ".." is resolved lexically and may not climb above "/". Symlinks are not
// looked at here (see resolve.hpp).
Result<std::string> normalize_in_root(std::string_view path, std::string_view what);

// Checks that need no system call: layers given, not too many, options that
// contradict each other. Checks that look at the file system are done when
// the spec is applied.
Status validate(const RootSpec& spec);

// A layer made by root, seen from a user namespace that does not map the
// host's root: the kernel shows its files as owned by the overflow ids
// (/proc/sys/kernel/overflowuid, 65534), and overlayfs cannot copy them up
// (EOVERFLOW), so nothing in them can be changed. Looks at the layer's root
// and a few entries every root file system has (etc, etc/passwd, usr,
// var/lib/dpkg), not at the whole tree. Returns the first such entry and
// its owner ("etc/passwd (uid 65534 gid 65534)"), or "".
std::string unmapped_entry(const std::string& layer, uint32_t overflow_uid, uint32_t overflow_gid);

// An image's defaults (image-layers' KAGO_IMAGE_LAYERS and
// KAGO_IMAGE_WORKDIR): its layers, bottom first and ':'-separated, when
// the spec has no layer, and a chdir step to its working directory when it
// has neither a layer nor a chdir step of its own.
Status apply_image_defaults(RootSpec& spec, std::string_view layers, std::string_view workdir);

// The directory overlay uses for its work files: beside the upper
// directory, on the same file system ("/x/up" -> "/x/up.work").
std::string workdir_for(std::string_view upper);

}  // namespace kago::mount
