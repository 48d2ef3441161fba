// The KAGO_ environment contract. This header is the only place that names
// the variables; kago-environ(7) documents them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace kago::env {

inline constexpr const char kName[] = "KAGO_NAME";          // container name
inline constexpr const char kStateDir[] = "KAGO_STATE_DIR"; // /run/kago/NAME
inline constexpr const char kCgroup[] = "KAGO_CGROUP";      // the container's cgroup
inline constexpr const char kNetns[] = "KAGO_NETNS";        // path of the network namespace
inline constexpr const char kTrace[] = "KAGO_TRACE";        // "1": trace the whole chain
inline constexpr const char kDryRun[] = "KAGO_DRY_RUN";     // "1": the chain is a dry run
inline constexpr const char kReadyFd[] = "KAGO_READY_FD";   // the chain's readiness gate (core/ready.hpp)
inline constexpr const char kConsoleFd[] = "KAGO_CONSOLE_FD"; // unshare-run --tty's socket (core/console.hpp)
inline constexpr const char kExec[] = "KAGO_EXEC";  // "1": every step a real exec (core/handoff)
// Set by image-layers from the image it resolved (lib/image):
inline constexpr const char kImage[] = "KAGO_IMAGE";                // the image's name
inline constexpr const char kImageStore[] = "KAGO_IMAGE_STORE";   // set by the user: image-layers' store (as --store)
inline constexpr const char kImageJobs[] = "KAGO_IMAGE_JOBS";     // user: layers unpacked at once
inline constexpr const char kImageLayers[] = "KAGO_IMAGE_LAYERS";   // layer directories, ':'-separated, bottom first
inline constexpr const char kImageWorkdir[] = "KAGO_IMAGE_WORKDIR"; // WorkingDir: mount-layers' default --chdir
inline constexpr const char kImageUser[] = "KAGO_IMAGE_USER";       // User: cap-drop's default --user
inline constexpr const char kImageEnv[] = "KAGO_IMAGE_ENV";         // Env, a JSON array of "NAME=VALUE"
inline constexpr const char kImageCmd[] = "KAGO_IMAGE_CMD";         // Entrypoint + Cmd, a JSON array: the default command

// The contract as one program sees it: the KAGO_ values it read at its
// start (Contract::from_environ(), once, in main through cli::Options::parse)
// and the settings it makes for the rest of the chain (set(), unset(),
// strip_kago()), in order. Nothing in lib/ changes the process environment
// behind the caller's back: the settings are applied where the chain
// execs or starts a child that execs (apply(): cli::exec_command, and the
// supervisors before they start their command), and render() is that
// environment as a list.
struct Contract {
    // As read at the start ("" for unset).
    std::string name, state_dir, cgroup, netns;
    bool trace = false, dry_run = false, exec = false;
    std::string ready_fd, console_fd;
    std::string image, image_store, image_layers, image_workdir, image_user, image_env, image_cmd;

    // One setting: a value, unset (nullopt), or every KAGO_ variable removed.
    struct Change {
        std::string name;
        std::optional<std::string> value;
        bool all_kago = false;
    };
    std::vector<Change> changes;

    // From an environment ("NAME=VALUE" each; nullptr ends it).
    static Contract from_environ(char* const* envp);
    static Contract from_environ();  // this process's

    void set(const char* name, std::string value);
    void unset(const char* name);
    void strip_kago();  // the last program: no KAGO_ variable reaches the payload

    // The variable's value for the rest of the chain: the last setting of
    // it, else what was read ("" for unset). Only KAGO_ names.
    std::string get(std::string_view name) const;

    // `base` ("NAME=VALUE" each) with the settings applied, in order.
    std::vector<std::string> render(const std::vector<std::string>& base) const;
    // The same, made this process's environment (the one place that calls
    // setenv for the contract).
    void apply() const;
};

// getenv, with "" for unset.
std::string_view get(const char* name);
bool is_true(const char* name);  // set to "1"

// Remove every KAGO_ variable from the environment.
void strip_kago();

// The environment a container starts with, where the chain enters the
// container's root (mount-layers --pivot). Unless `host` is set it holds
// only PATH (the usual system directories), HOME=/root, container=kago,
// the caller's TERM and KAGO_ variables (the chain still needs them), and
// the caller's variables named in `pass`; then `set` (NAME=VALUE each) is
// applied over it. With `host`, the caller's whole environment, then `set`.
struct Plan {
    std::vector<std::string> set;   // NAME=VALUE
    std::vector<std::string> pass;  // NAME
    bool host = false;
};
inline constexpr const char kContainerPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Errors name the bad --env or --pass-env word.
Status check_plan(const Plan& p);
// The new environment, from the caller's ("NAME=VALUE" each), in order.
std::vector<std::string> container_environ(const std::vector<std::string>& caller, const Plan& p);
// This process's environment as a list, and replacing it with one.
std::vector<std::string> current();
void replace(const std::vector<std::string>& vars);

// A JSON array of strings (KAGO_IMAGE_ENV, KAGO_IMAGE_CMD) as a list;
// std::nullopt when `text` is not one.
std::optional<std::vector<std::string>> string_list(std::string_view text);

// The names of the kago programs.
bool is_kago_program(std::string_view name);

}  // namespace kago::env
