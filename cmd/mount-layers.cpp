// mount-layers: build the container's root filesystem and pivot into it.
//
//   unshare-run --pid --mount -- mount-layers --layer ./rootfs --tmp-upper
//       --proc --dev --pivot -- /bin/sh  (one command line)
//
// The steps: read the options into a kago::mount::RootSpec, find the state
// directory, open the next kago program while the host is still visible,
// apply the spec (undone on failure), then exec the command.
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/cli.hpp"
#include "core/env.hpp"
#include "core/parse.hpp"
#include "core/state.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"
#include "mount/root.hpp"

using namespace kago;
using mount::StepKind;

namespace {

struct Args {
    mount::RootSpec spec;
    std::string tmp_upper, upper;
    bool keep_env = false, hosts = false, resolv = false;
    env::Plan envp;
};

bool exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

Error bad_usage(std::string message) {
    return usage_error(std::move(message)).as_usage();
}

// The options that are checked together. Returns whether the target is
// the default one (STATE_DIR/root), which is checked once the state
// directory is known.
Result<bool> check_options(Args& a) {
    mount::RootSpec& spec = a.spec;
    if (auto c = env::check_plan(a.envp); !c) return bad_usage(c.error().message());
    if (!a.upper.empty() && !a.tmp_upper.empty())
        return bad_usage("--upper and --tmp-upper exclude each other");
    if (!a.upper.empty()) spec.upper = {mount::UpperKind::dir, a.upper, 0};
    if (!a.tmp_upper.empty()) {
        spec.upper.kind = mount::UpperKind::tmpfs;
        if (a.tmp_upper != "true") {
            auto size = parse::size(a.tmp_upper, "--tmp-upper");
            if (!size) return bad_usage(size.error().message());
            spec.upper.size = *size;
        }
    }
    bool default_target = spec.target.empty();
    if (default_target) spec.target = "-";
    if (auto v = mount::validate(spec); !v) return bad_usage(v.error().message());
    return default_target;
}

// A root-made layer in a user namespace that does not map root: its files
// cannot be changed, which matters only when there is an upper.
void warn_unmapped_layers(const mount::RootSpec& spec, const mount::Context& ctx) {
    if (trace::dry_run() || spec.upper.kind == mount::UpperKind::none || !ctx.in_userns) return;
    auto id = [](const char* f) {
        auto t = sys::read_file(f);
        auto n = t ? parse::u64(std::string_view(*t).substr(0, t->find('\n')), f)
                   : Result<uint64_t>(Error{});
        return n ? uint32_t(*n) : uint32_t(65534);
    };
    uint32_t ouid = id("/proc/sys/kernel/overflowuid"), ogid = id("/proc/sys/kernel/overflowgid");
    for (const auto& l : spec.layers) {
        std::string e = mount::unmapped_entry(l, ouid, ogid);
        if (e.empty()) continue;
        cli::warn(cat("--layer ", l, ": ", e,
                      " belongs to an id this user namespace does not map; ",
                      "changing its files fails (EOVERFLOW on copy-up)"));
        cli::note(
            "hint: use a tree owned by your own ids: tar it and unpack it with "
            "examples/user-rootfs.sh (unshare-run --user --map-auto -- tar -x)");
    }
}

// The state directory: the default target, and the files net-setup wrote.
// One we create for the default target is ours (owned) until the pivot.
Result<state::StateDir> find_state_dir(mount::RootSpec& spec, env::Contract& contract,
                                       bool default_target) {
    state::StateDir sd;
    bool no_state = contract.state_dir.empty();
    if (default_target && no_state && trace::dry_run()) {
        // A dry run creates nothing, not even the state directory.
        spec.target = state::runtime_root() + "/" + TRY(state::container_name(contract)) + "/root";
        return sd;
    }
    if (default_target || !no_state) {
        auto name = state::container_name(contract);
        auto acquired = name ? state::StateDir::acquire(*name, contract)
                             : Result<state::StateDir>(name.error());
        if (acquired)
            sd = std::move(acquired).value();
        else if (default_target)
            return Error(acquired.error()).with_hint("give the root a place with --target DIR");
    }
    if (default_target) spec.target = sd.path() + "/root";
    return sd;
}

// --hosts and --resolv: the files net-setup wrote in the state directory.
void bind_state_files(const Args& a, mount::RootSpec& spec, const state::StateDir& sd) {
    auto state_file = [&](const char* f) {
        std::string p = sd.path().empty() ? "" : sd.path() + "/" + f;
        return !p.empty() && exists(p) ? p : std::string();
    };
    if (a.hosts) {
        spec.hosts = state_file("hosts");
        spec.hostname = state_file("hostname");
        if (spec.hosts.empty() && spec.hostname.empty())
            cli::warn(
                "--hosts: the state directory has no hosts or hostname file (net-setup writes "
                "them)");
    }
    if (a.resolv) {
        spec.resolv = state_file("resolv.conf");
        if (spec.resolv.empty())
            cli::warn("--resolv: the state directory has no resolv.conf (net-setup writes it)");
    }
}

// Apply the spec, undone on failure. A state directory we created for the
// default target is removed once the old root is gone: nothing on the host
// refers to it any more.
Status build_root(const mount::RootSpec& spec, const mount::Context& ctx, state::StateDir& sd) {
    UniqueFd state_parent;
    std::string state_name;
    if (sd.owned() && spec.pivot) {  // never in a dry run, which makes no directory
        auto slash = sd.path().rfind('/');
        state_name = sd.path().substr(slash + 1);
        state_parent.reset(
            ::open(sd.path().substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    }
    {
        mount::Undo undo;
        TRY(mount::apply(spec, ctx, undo));  // a failure: undo, then the state directory goes
        undo.dismiss();
    }
    if (state_parent) {
        ::unlinkat(state_parent.get(), (state_name + "/root").c_str(), AT_REMOVEDIR);
        ::unlinkat(state_parent.get(), (state_name + "/owner").c_str(), 0);
        ::unlinkat(state_parent.get(), state_name.c_str(), AT_REMOVEDIR);
    }
    sd.release();
    return {};
}

// Everything after option parsing, in order. Returns only when the exec
// did not happen (the error, or 0 for a dry run's last step).
Result<int> run(Args& a, cli::Common& common) {
    mount::RootSpec& spec = a.spec;
    env::Contract& contract = common.contract;
    // 1. The options, with an image's defaults.
    // An image (image-layers): its layers and WorkingDir, unless given.
    TRY(mount::apply_image_defaults(spec, contract.image_layers, contract.image_workdir));
    bool default_target = TRY(check_options(a));
    // 2. Where we are: never in the host's mount namespace.
    mount::Context ctx = mount::detect_context(spec);
    if (ctx.host_mntns && !trace::dry_run())
        return Error{0, "refusing to mount in the host's mount namespace",
                     "run it in a new one: unshare-run --mount -- mount-layers ..."};
    if (spec.proc && !ctx.in_pidns)
        cli::warn(
            "--proc without a PID namespace shows the host's processes (use unshare-run --pid)");
    warn_unmapped_layers(spec, ctx);
    // 3. The state directory and its files.
    state::StateDir sd = TRY(find_state_dir(spec, contract, default_target));
    bind_state_files(a, spec, sd);
    // 4. Open the next kago program now: after pivot_root the new root lacks it.
    PreparedExec next = TRY(prepare_exec(common.command));
    bool last = !next.kago;
    if (!sd.owned())
        TRY(sd.write("rootfs", spec.target));  // (nothing without a directory, or in a dry run)
    // 5. The root.
    TRY(build_root(spec, ctx, sd));
    // 6. The command. The last program of the chain: no inherited descriptor
    //    reaches the payload. Entering the container's root: the caller's
    //    environment stays behind.
    if (last)
        trace::call_quiet([] { return ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC); });
    if (spec.pivot) env::replace(env::container_environ(contract.render(env::current()), a.envp));
    return cli::exec_next(next, contract, last && !a.keep_env);
}

}  // namespace

int main(int argc, char** argv) {
    cli::Options opts("mount-layers",
                      "Build a container's root filesystem from layers, then pivot into it.\n"
                      "Run it in a new mount namespace (see unshare-run(1)).");
    cli::Common common;
    Args a;
    mount::RootSpec& spec = a.spec;

    opts.option("--layer", spec.layers, "DIR",
                "A read-only layer (repeatable; the first one is the bottom)");
    opts.option("--upper", a.upper, "DIR",
                "Keep changes in DIR (its workdir DIR.work is created beside it)");
    opts.flag("--tmp-upper", a.tmp_upper, "[=SIZE]",
              "Keep changes in a tmpfs, gone at exit (=SIZE limits it)");
    opts.option("--target", spec.target, "DIR",
                "Assemble the root in DIR (default: STATE_DIR/root)");
    opts.flag("--read-only", spec.read_only, "Make the final root read-only, even with an upper");
    auto step = [&](StepKind kind, const char* name, const char* type, const char* help) {
        opts.each(
            name, type,
            [&spec, kind](const std::string& v) -> Status {
                spec.steps.push_back(TRY(mount::parse_step(kind, v)));
                return {};
            },
            help);
    };
    step(StepKind::bind, "--bind", "SRC:DST[:ro][,dev]",
         "Bind the host path SRC on DST in the root (nodev unless ,dev: its device nodes stay "
         "closed)");
    step(StepKind::tmpfs, "--tmpfs", "DST[:OPT,...]",
         "Mount a new tmpfs on DST; OPT: size=SIZE mode=MODE ro noexec dev (nosuid always, nodev "
         "unless dev; DST:SIZE:MODE also works)");
    step(StepKind::symlink, "--symlink", "TARGET:LINK", "Create the symlink LINK -> TARGET in the root");
    step(StepKind::mkdir, "--mkdir", "DST[:MODE]", "Create the directory DST in the root");
    step(StepKind::file, "--file", "SRC:DST", "Copy the host file SRC to DST in the root");
    step(StepKind::chdir, "--chdir", "DIR", "Run the command in DIR inside the root (default /)");
    opts.flag("--proc", spec.proc,
              "Mount a new /proc, its paths of the lists below masked or read-only; needs a PID "
              "namespace");
    opts.flag(
        "--dev", spec.dev,
        "Mount a minimal /dev (nodev tmpfs, 64 KiB): the host's null zero full random urandom "
        "tty bound in, devpts, a 64 MiB tmpfs on /dev/shm, mqueue on /dev/mqueue");
    opts.flag("--sys", spec.sys,
              "Mount a read-only /sys, its paths of the lists below masked, and a read-only "
              "/sys/fs/cgroup");
    auto want = [&](const char* name, mount::Want& into, mount::Want v, const char* help) {
        opts.flag(
            name, [&into, v] { into = v; }, help);
    };
    want("--mqueue", spec.mqueue, mount::Want::yes,
         "With --dev: mqueue on /dev/mqueue, or fail (default: when the IPC namespace is the "
         "container's own)");
    want("--no-mqueue", spec.mqueue, mount::Want::no, "With --dev: no /dev/mqueue");
    want("--cgroupfs", spec.cgroupfs, mount::Want::yes,
         "With --sys: /sys/fs/cgroup read-only, or fail (default: on when the host has a "
         "cgroupfs); new in a cgroup namespace of the container's own, else its own cgroup bound "
         "in");
    want("--no-cgroupfs", spec.cgroupfs, mount::Want::no, "With --sys: leave /sys/fs/cgroup empty");
    auto path_list = [&](const char* name, std::vector<std::string>& into, const char* help) {
        opts.each(
            name, "PATH",
            [&into, name](const std::string& v) -> Status {
                into.push_back(TRY(mount::normalize_in_root(v, name)));
                return {};
            },
            help);
    };
    path_list("--mask", spec.masked,
              "Hide PATH in the root (an empty read-only tmpfs, or /dev/null over a file; "
              "repeatable)");
    path_list("--read-only-path", spec.read_only_paths,
              "Make PATH in the root read-only (repeatable)");
    opts.flag("--hosts", a.hosts,
              "Bind the state dir's hosts and hostname over /etc/hosts, /etc/hostname");
    opts.flag("--resolv", a.resolv, "Bind the state dir's resolv.conf over /etc/resolv.conf");
    opts.flag("--pivot", spec.pivot, "pivot_root into the new root and detach the old one");
    opts.flag("--keep-env", a.keep_env, "Keep the KAGO_ variables for the command");
    env::Plan& envp = a.envp;
    opts.option("--env", envp.set, "NAME=VALUE",
                "With --pivot: set this variable for the command (repeatable)");
    opts.option("--pass-env", envp.pass, "NAME",
                "With --pivot: pass the caller's variable NAME to the command (repeatable)");
    opts.flag("--host-env", envp.host,
              "With --pivot: keep the caller's whole environment (default: PATH, HOME, TERM, "
              "container=kago only)");
    {
        std::string lists = "Paths masked (with --proc, --sys):";
        for (const auto& p : mount::default_masked_paths()) lists += " " + p;
        lists += "\nPaths read-only (with --proc):";
        for (const auto& p : mount::default_read_only_paths()) lists += " " + p;
        lists += "\nA path this kernel lacks is skipped.";
        opts.footer(std::move(lists));
    }
    if (auto code = opts.parse(argc, argv, common)) return *code;

    auto r = run(a, common);
    return r ? *r : cli::fail(r.error());
}
