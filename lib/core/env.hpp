// The KAGO_ environment contract. This header is the only place that names
// the variables; kago-environ(7) documents them.
#pragma once

#include <string>
#include <string_view>

namespace kago::env {

inline constexpr const char kName[] = "KAGO_NAME";          // container name
inline constexpr const char kStateDir[] = "KAGO_STATE_DIR"; // /run/kago/NAME
inline constexpr const char kCgroup[] = "KAGO_CGROUP";      // the container's cgroup
inline constexpr const char kNetns[] = "KAGO_NETNS";        // path of the network namespace
inline constexpr const char kTrace[] = "KAGO_TRACE";        // "1": trace the whole chain
inline constexpr const char kDryRun[] = "KAGO_DRY_RUN";     // "1": the chain is a dry run
inline constexpr const char kReadyFd[] = "KAGO_READY_FD";   // the chain's readiness gate (core/ready.hpp)

// getenv, with "" for unset.
std::string_view get(const char* name);
bool is_true(const char* name);  // set to "1"

// Remove every KAGO_ variable from the environment.
void strip_kago();

// The names of the kago programs.
bool is_kago_program(std::string_view name);

}  // namespace kago::env
