// Traced wrappers for the new mount API (fsopen, fsconfig, fsmount,
// move_mount, open_tree, mount_setattr) and the *at() calls that work
// inside the root. Each prints its trace line through trace::call() and
// returns an Error naming the object. `what` arguments describe a
// descriptor in trace lines ("3 /* /run/kago/box/root/dev */").
//
// In dry-run mode the calls are printed, not made; the descriptors they
// would return are stand-ins, Fds that say they were not made (made() is
// false), and later calls accept them. Callers need no dry-run branch: they
// ask the Fd.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "core/trace.hpp"

namespace kago::mount::ops {

// A descriptor and what it refers to, for trace lines and messages.
// A dry run's stand-in (not_made()) holds no descriptor and has dry set.
struct Fd {
    UniqueFd fd;
    std::string what;
    bool dry = false;
    int get() const { return fd.get(); }
    // False for a dry run's stand-in: nothing was opened or created.
    bool made() const { return !dry; }
    // A descriptor, or a dry run's stand-in for one: something to pass on.
    bool usable() const { return dry || fd.get() >= 0; }
};

// The stand-in a dry run gets for a descriptor it did not open.
inline Fd not_made(std::string what) {
    return Fd{UniqueFd(), std::move(what), true};
}

// open(path, O_PATH|O_DIRECTORY|O_CLOEXEC), untraced (it changes nothing);
// in a dry run the path was not made: a stand-in.
Result<Fd> open_path(const std::string& path);

// Is the descriptor a directory (fstat)? A dry run's stand-in counts as one.
Result<bool> is_dir(const Fd& at);

std::string describe_fd(int fd, std::string_view what);

// A filesystem context. configure() collects the kernel's log messages
// (read from the context) into the Error's hint when a call fails.
Result<Fd> fsopen(const char* fstype, std::string_view what);
Status fsconfig_string(const Fd& fs, const char* key, std::string_view value);
Status fsconfig_flag(const Fd& fs, const char* key);
// fsconfig(FSCONFIG_SET_FD): a layer given by a descriptor (overlay, Linux
// 6.13), so that no path is stored in the mount's options.
Status fsconfig_fd(const Fd& fs, const char* key, const Fd& value);
Status fsconfig_create(const Fd& fs);
// attr: MOUNT_ATTR_* flags for the new mount.
Result<Fd> fsmount(const Fd& fs, unsigned attr);

// Attach a detached mount: onto `to` (a descriptor) or onto a path.
Status move_mount_fd(const Fd& from, const Fd& to);
// Made::no for a stand-in (a dry run's): nothing was attached.
Result<trace::Made> move_mount_path(const Fd& from, const std::string& to);
// Onto the entry name of the directory dir (not following a last symlink
// out of it: name is a plain entry made by the caller).
Status move_mount_at(const Fd& from, const Fd& dir, const std::string& name, std::string_view shown);

// A detached copy of the mount tree at path (OPEN_TREE_CLONE|AT_RECURSIVE).
Result<Fd> clone_tree(const std::string& path, bool recursive = true);
// Same, of the mount a descriptor points to.
Result<Fd> clone_tree_fd(const Fd& at, bool recursive);

// mount_setattr(fd, "", AT_EMPTY_PATH[|AT_RECURSIVE], {set, clr}).
Status mount_setattr(const Fd& at, unsigned set, unsigned clr, bool recursive);

// openat2(dir, path, flags|O_CLOEXEC, {resolve}): untraced, it changes nothing.
Result<UniqueFd> openat2(int dirfd, const std::string& path, int flags, unsigned long long resolve,
                         std::string_view what);

// openat(dir, name, O_PATH|O_DIRECTORY|O_CLOEXEC), traced: a directory to
// hand to the kernel by descriptor. `what` names it in later trace lines.
Result<Fd> open_dir(const Fd& dir, const std::string& name, std::string what);

// Traced creation inside a directory descriptor.
Status mkdirat(const Fd& dir, const std::string& name, mode_t mode, std::string_view shown);
// mknodat: a device node, or (S_IFREG) an empty file in one call.
Status mknodat(const Fd& dir, const std::string& name, mode_t mode, dev_t dev, std::string_view shown);
Status symlinkat(const std::string& target, const Fd& dir, const std::string& name,
                 std::string_view shown);
// Create an empty file (a mount point for a file bind).
Status touchat(const Fd& dir, const std::string& name, mode_t mode, std::string_view shown);
// Copy the host file src to name in dir (with src's mode bits).
Status copy_file_into(const std::string& src, const Fd& dir, const std::string& name,
                      std::string_view shown);

}  // namespace kago::mount::ops
