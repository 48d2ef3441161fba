// Independent work items on a few threads: the layers of a pull.
// (In lib/image, not lib/core: the packed runner, built without
// exceptions, takes all of lib/core.)
//
// Items 0..n-1 are taken in order by at most `jobs` threads (the caller's
// among them), each thread one item at a time. The first item that fails
// stops the others: no item is started after it, and those running see
// `stop` set and should give up soon (a transfer checks it as its bytes
// come). The error returned is that first failure's, the cause: an item
// that fails after `stop` was set (because it was set) is not reported.
// Fewer threads are started when none can be had (RLIMIT_NPROC).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>

#include "core/result.hpp"

namespace kago::image {

using JobItem = std::function<Status(size_t index, const std::atomic<bool>& stop)>;
Status run_jobs(size_t n, unsigned jobs, const JobItem& item);

}  // namespace kago::image
