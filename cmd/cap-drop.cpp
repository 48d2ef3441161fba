// cap-drop: drop capabilities, set no_new_privs, load a seccomp filter,
// switch user and groups, then exec the payload. The last step of a chain.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "caps/policy.hpp"
#include "caps/session.hpp"
#include "caps/show.hpp"
#include "core/child.hpp"
#include "core/cli.hpp"
#include "core/env.hpp"
#include "core/exec.hpp"
#include "core/fds.hpp"
#include "core/proc.hpp"

namespace caps = kago::caps;
namespace cli = kago::cli;

namespace {

void print(const std::string& text) {
    fwrite(text.data(), 1, text.size(), stdout);
    fflush(stdout);
}

// --show [PID]: the PID is the first word after the options.
kago::Result<int> show(const std::vector<std::string>& args, bool as_json) {
    if (args.size() > 1) cli::usage_error("--show takes at most one PID");
    std::string pid = args.empty() ? "self" : args[0];
    if (pid != "self" && pid.find_first_not_of("0123456789") != std::string::npos)
        cli::usage_error(kago::cat("--show: '", pid, "' is not a PID"));
    auto state = TRY(caps::inspect(pid));
    print(as_json ? caps::format_json(state) + "\n" : caps::format_table(state));
    return 0;
}

struct Flags {
    std::vector<int> keep_fds;
    bool keep_env = false, print_profile = false, show_state = false, as_json = false, new_session = false;
};

kago::Result<int> run(const caps::Options& o, const Flags& f, cli::Common& common) {
    if (f.show_state) return show(common.command, f.as_json);
    if (f.as_json) cli::usage_error("--json needs --show");

    // Everything the user gave is checked before anything changes.
    caps::Policy policy = TRY(caps::build_policy(o));
    if (f.print_profile) {
        print(policy.profile ? caps::describe(*policy.profile)
                             : kago::cat("# seccomp profile: none (", o.seccomp, ")\n"));
        return 0;
    }
    auto next = TRY(kago::prepare_exec(common.command));
    if (!next.program.valid() && next.argv[0] == "cap-drop") {
        // After pivot_root our own directory is out of reach, but we are
        // still here: `cap-drop ... -- cap-drop --show` shows the result.
        next.program.reset(::open("/proc/self/exe", O_PATH | O_CLOEXEC));
        if (next.program.valid()) next.program_path = "/proc/self/exe";
    }
    TRY(kago::fds::keep_only(f.keep_fds));
    TRY(caps::apply(policy));
    if (f.new_session) {
        // Only a process group leader forks: this parent waits and leaves like its child.
        if (auto ws = TRY(caps::new_session())) kago::child::exit_like(*ws);
    }
    if (!f.keep_env) caps::set_user_env(policy, common.contract);
    cli::exec_command(next, common.contract, !f.keep_env);
}

}  // namespace

int main(int argc, char** argv) {
    cli::Options opts(
        "cap-drop",
        "Drop capabilities, set no_new_privs, load a seccomp filter and switch user, then "
        "run COMMAND.\nThe last program of a kago chain.",
        "[--] [COMMAND [ARG...]]\n       cap-drop --show [--json] [PID]");
    cli::Common common;
    caps::Options o;
    Flags f;
    opts.option(
        "--drop", o.drop, "CAPS",
        "Drop these capabilities (comma-separated names, or 'all') from Docker's default set, "
        "which is kept without --drop and --keep");
    opts.option(
        "--keep", o.keep, "CAPS",
        "Keep only these capabilities ('all': every one held; with --drop LIST: add them to the "
        "default set); the ones named are also ambient, so that a non-root --user holds them");
    opts.option("--ambient", o.ambient, "CAPS",
                "Exactly these capabilities in the ambient set (default: the ones --keep names)");
    opts.option("--inheritable", o.inheritable, "CAPS",
                "Exactly these capabilities in the inheritable set (default: the ambient set)");
    opts.option("--securebits", o.securebits, "BITS",
                "Set securebits: noroot, no-setuid-fixup, keep-caps, no-cap-ambient-raise, and "
                "NAME-locked");
    opts.flag("--allow-new-privs", o.allow_new_privs,
              "Do not set no_new_privs (it is set by default)");
    opts.option("--user", o.user, "USER[:GROUP]",
                "Switch to USER[:GROUP] (names from the container's /etc/passwd and /etc/group, or "
                "numbers)");
    opts.option(
        "--groups", o.groups, "LIST",
        "Supplementary groups (comma-separated); without it they are cleared when switching "
        "user");
    opts.option("--seccomp", o.seccomp, "default|FILE|none",
                "Seccomp filter: 'default' (built in), an OCI/Docker JSON profile FILE, or 'none' "
                "(default)");
    opts.flag("--seccomp-log", o.seccomp_log,
              "Learning mode: log the calls the profile would block instead of blocking them");
    opts.flag("--print-profile", f.print_profile, "Print the effective seccomp rules and exit");
    opts.flag("--keep-env", f.keep_env,
              "Keep the KAGO_ variables, and do not set HOME, USER and LOGNAME");
    opts.flag("--new-session", f.new_session,
              "Start a new session (setsid): the command has no controlling terminal to push input "
              "into");
    opts.descriptors("--keep-fd", f.keep_fds,
                     "Leave descriptor N open for the command (repeatable); all others above 2 are "
                     "closed");
    opts.flag("--show", f.show_state,
              "Print the isolation state of PID (default: this process) and exit");
    opts.flag("--json", f.as_json, "With --show: print JSON");
    if (auto code = opts.parse(argc, argv, common)) return *code;

    // An image's User (image-layers) when no --user is given.
    if (o.user.empty() && !common.contract.image_user.empty()) o.user = common.contract.image_user;
    auto code = run(o, f, common);
    return code ? *code : cli::fail(code.error());
}
