// The descriptors a payload inherits: 0, 1, 2 and the ones an option names.
#pragma once

#include <vector>

#include "core/result.hpp"

namespace kago::fds {

// Mark every descriptor above 2 close-on-exec, except those in `keep`, which
// are checked to be open and lose close-on-exec. With close_range(2)
// (CLOSE_RANGE_CLOEXEC); each call is traced. On a kernel without it, one by
// one, then checked through /proc/self/fd (or fcntl when /proc is absent).
Status keep_only(const std::vector<int>& keep);

}  // namespace kago::fds
