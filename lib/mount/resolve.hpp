// Paths inside the root, resolved the way the container will see them:
// openat2(RESOLVE_IN_ROOT) never follows a symlink or ".." out of the root.
// A symlink in the image that would lead out of the root (a relative one
// with too many "..") is refused with an Error, so that a DST never lands
// somewhere the user did not mean.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/result.hpp"
#include "mount/ops.hpp"

namespace kago::mount {

enum class Create { none, dir, file };

struct Root {
    ops::Fd fd;        // O_PATH descriptor of the assembled root
    std::string path;  // its host path, for messages
    std::string shown(const std::string& dst) const { return dst == "/" ? path : path + dst; }
};

// Refuse dst (normalized, absolute) when resolving it inside the root would
// follow a symlink out of it. Components that do not exist yet end the walk.
Status check_no_escape(const Root& root, const std::string& dst, std::string_view what);
// The same walk, returning dst with every symlink resolved inside the root
// (components that do not exist yet are kept as they are).
Result<std::string> resolve_in_root(const Root& root, const std::string& dst, std::string_view what);

// Open dst inside the root as O_PATH (following symlinks inside the root).
// When it is missing and create is dir or file, create it and any missing
// parent directories (mode 0755) first.
Result<ops::Fd> open_in_root(const Root& root, const std::string& dst, Create create,
                             mode_t mode, std::string_view what);

// The parent directory of dst (created when missing), and dst's last name.
struct Parent {
    ops::Fd dir;
    std::string name;
};
Result<Parent> open_parent_in_root(const Root& root, const std::string& dst, std::string_view what);

}  // namespace kago::mount
