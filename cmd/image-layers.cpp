// image-layers: resolve an image in the store, hand its layers and config
// down the chain in KAGO_IMAGE_ variables, then exec the rest. It forks
// nothing and leaves nothing to undo. Its management modes fill the store.
//
//   image-layers debian-app:1 -- unshare-run --pid --mount --
//       mount-layers --tmp-upper --proc --dev --pivot -- cap-drop   (one command line)
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "core/cli.hpp"
#include "core/env.hpp"
#include "core/exec.hpp"
#include "core/parse.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"
#include "image/digest.hpp"
#include "image/import.hpp"
#include "image/pull.hpp"
#include "image/store.hpp"
#include "mount/root.hpp"

using namespace kago;
namespace img = kago::image;

namespace {

void out(const std::string& text) {
    fwrite(text.data(), 1, text.size(), stdout);
    fflush(stdout);
}

// --map-auto: the same command again, in a user namespace that maps the
// caller's subordinate ranges (unshare-run --user --map-auto).
// The store goes along when it was not given on the command line: inside,
// the default would be root's.
[[noreturn]] void again_mapped(int argc, char** argv, const std::string& store, bool given,
                               env::Contract& contract) {
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) cli::die(sys_error("readlink /proc/self/exe"));
    self[n] = 0;
    std::vector<std::string> words = {"unshare-run", "--user", "--map-auto", "--", self};
    if (!given) words.insert(words.end(), {"--store", store});
    for (int i = 1; i < argc; ++i) words.emplace_back(argv[i]);
    PreparedExec next = cli::value_or_die(prepare_exec(words));
    cli::exec_command(next, contract, false);
}

void warn_stats(const img::UnpackStats& st) {
    if (st.devices_skipped)
        cli::warn(cat("skipped ", st.devices_skipped, " device node(s): only root outside a user namespace makes them"));
    if (st.setid_stripped)
        cli::warn(cat("removed the setuid/setgid bits of ", st.setid_stripped, " file(s): kept only for root"));
    if (st.xattrs_dropped)
        cli::warn(cat("dropped ", st.xattrs_dropped,
                      " xattr(s): overlay's own, trusted.* and security.* other than file capabilities are never "
                      "taken, and file capabilities need root"));
}

int list(const img::Store& s) {
    out(cli::value_or_die(img::list_table(s)));
    return 0;
}

void set(env::Contract& contract, const char* name, const std::string& value) {
    if (trace::verbose() || trace::dry_run())
        trace::emit(cat("setenv(", trace::quote(name), ", ", trace::quote(value), ")"));
    if (value.empty())
        contract.unset(name);
    else
        contract.set(name, value);
}

// --pull: a line per layer on stderr; on a terminal, a bar per layer in
// flight above them (several at once: KAGO_IMAGE_JOBS).
class PullReport {
  public:
    explicit PullReport(bool quiet)
        : quiet_(quiet),
          tty_(::isatty(2) == 1),
          board_(std::make_shared<cli::ProgressBoard>(cli::terminal_columns(2))) {}
    void operator()(const img::PullEvent& e) {
        if (quiet_) return;
        std::string head =
            cat("layer ", e.index, "/", e.count, " ", img::hex_of(e.digest).substr(0, 12));
        std::string line;
        if (e.kind == img::PullEvent::start && tty_) board_->add(e.index, head);
        if (e.kind == img::PullEvent::bytes && tty_)
            board_->update(e.index, e.done, e.size > 0 ? e.size : 0);
        if (e.kind == img::PullEvent::fetched) line = cat(head, ": fetched ", img::si_size(e.done));
        if (e.kind == img::PullEvent::present) line = cat(head, ": already in the store");
        if (e.kind == img::PullEvent::unpacked) line = cat(head, ": unpacked from the stored blob");
        if (line.empty()) return;
        if (tty_)
            board_->done(e.index, cat(trace::program(), ": ", line));
        else
            cli::note(line);
    }

  private:
    bool quiet_, tty_;
    std::shared_ptr<cli::ProgressBoard> board_;  // PullOptions::progress is copied
};

img::PullOptions pull_options(const std::string& ref, const std::string& name,
                              const std::string& platform, bool insecure, bool quiet) {
    img::PullOptions o;
    o.ref = ref;
    o.name = name;
    if (!platform.empty()) o.platform = cli::value_or_die(img::parse_platform(platform));
    o.unpack = img::caller_unpack_options();
    o.registry.insecure = insecure;
    o.jobs = cli::value_or_die(img::parse_jobs(env::get(env::kImageJobs)));
    o.progress = PullReport(quiet);
    return o;
}

// The chain form: pull REF unless the store has it; its name.
std::string pull_if_missing(const std::string& store_path, const img::PullOptions& o) {
    std::string name = cli::value_or_die(img::pull_name(o));
    if (auto s = img::Store::open(store_path, false); s && img::resolve(*s, name)) return name;
    if (trace::dry_run()) {
        trace::emit(cat("would pull ", o.ref, " into the store ", store_path, " (dry run)"));
        ::exit(0);
    }
    auto s = cli::value_or_die(img::Store::open(store_path, true));
    if (img::resolve(s, name)) return name;  // another pull made it meanwhile
    auto r = cli::value_or_die(img::pull(s, o));
    warn_stats(r.totals);
    return name;
}

}  // namespace

int main(int argc, char** argv) {
    cli::Options opts(
        "image-layers",
        "Run the rest of a kago chain on an image: its layers, WorkingDir, User, Env, "
        "Entrypoint and Cmd\ngo down the chain in KAGO_IMAGE_ variables. Management "
        "modes fill the image store.",
        "IMAGE [--] [COMMAND [ARG...]]\n"
        "       image-layers --pull REF [NAME] | --pull REF -- [COMMAND [ARG...]]\n"
        "       image-layers --import SRC [NAME] | --list | --inspect IMAGE | --tag "
        "IMAGE NAME\n"
        "       image-layers --remove IMAGE | --commit DIR IMAGE NAME");
    cli::Common common;
    std::string store_path, import_src, inspect, tag_image, remove_image, commit_dir, platform,
        pull_ref;
    bool do_list = false, keep_env = false, map_auto = false, insecure = false, quiet = false;
    opts.option("--store", store_path, "DIR",
                "The image store (default: /var/lib/kago/images for root, else "
                "${XDG_DATA_HOME:-~/.local/share}/kago/images)")
        .env(env::kImageStore);
    opts.option(
        "--import", import_src, "SRC",
        "Import SRC as NAME: oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF], "
        "a root filesystem DIR, an archive or rootfs tar FILE, or - (standard input)");
    opts.option("--pull", pull_ref, "REF",
                "Pull REF ([REGISTRY[:PORT]/]REPO[:TAG|@sha256:DIGEST]; Docker Hub by default) "
                "from its registry as NAME (default: REF); with -- COMMAND, pull only when the "
                "store lacks it, then run COMMAND on it");
    opts.flag("--insecure", insecure,
              "With --pull: allow plain http, and https with a certificate not verified");
    opts.flag("--quiet", quiet, "With --pull: no progress on stderr");
    opts.option("--platform", platform, "OS/ARCH[/VARIANT]",
                "With --import or --pull: the platform to pick from a multi-arch index (default: "
                "the host's)");
    opts.flag("--list", do_list, "List the images: name, id, size and created");
    opts.option("--inspect", inspect, "IMAGE", "Print IMAGE's config as JSON");
    opts.option("--tag", tag_image, "IMAGE",
                "Give IMAGE another NAME (the word after the options)");
    opts.option("--remove", remove_image, "IMAGE",
                "Remove IMAGE's name; blobs and layers nothing uses any more go too");
    opts.option(
        "--commit", commit_dir, "DIR",
        "Make DIR (a container's upper directory) a new layer on IMAGE, named NAME (the words "
        "after the options); overlay whiteouts become .wh. entries");
    opts.flag(
        "--map-auto", map_auto,
        "Not root: import, commit and remove in a user namespace that maps your subordinate ids "
        "(unshare-run --user --map-auto), so that files keep the image's owners");
    opts.flag("--keep-env", keep_env,
              "Keep the KAGO_ variables for the command (when it is not a kago program)");
    if (auto code = opts.parse(argc, argv, common)) return *code;

    // --pull REF -- COMMAND: the chain, on REF pulled when missing.
    bool pull_chain = false;
    for (int i = 1; i < argc && !pull_ref.empty(); ++i)
        if (std::string_view(argv[i]) == "--") pull_chain = true;
    int modes = !import_src.empty() + !pull_ref.empty() + do_list + !inspect.empty() +
                !tag_image.empty() + !remove_image.empty() + !commit_dir.empty();
    if (modes > 1)
        cli::usage_error(
            "--import, --pull, --list, --inspect, --tag, --remove and --commit exclude each other");
    if (!platform.empty() && import_src.empty() && pull_ref.empty())
        cli::usage_error("--platform needs --import or --pull");
    if ((insecure || quiet) && pull_ref.empty())
        cli::usage_error("--insecure and --quiet need --pull");
    if (store_path.empty()) store_path = img::default_store();
    auto& args = common.command;
    if (pull_chain) {
        args.insert(args.begin(), pull_if_missing(store_path, pull_options(pull_ref, "", platform,
                                                                           insecure, quiet)));
        pull_ref.clear();
        modes = 0;
    }
    auto words = [&](size_t lo, size_t hi, const char* what) {
        if (args.size() < lo || args.size() > hi) cli::usage_error(what);
    };
    bool writes = !import_src.empty() || !pull_ref.empty() || !tag_image.empty() ||
                  !remove_image.empty() || !commit_dir.empty();

    if (modes == 0) {  // the chain
        if (args.empty()) cli::usage_error("IMAGE is missing");
        std::string image = args[0];
        args.erase(args.begin());
        if (!args.empty() && args[0] == "--") args.erase(args.begin());
        auto s = cli::value_or_die(img::Store::open(store_path, false));
        img::Image im = cli::value_or_die(img::resolve(s, image));
        std::string layers;
        for (const auto& d : im.layer_dirs) layers += (layers.empty() ? "" : ":") + d;
        std::vector<std::string> cmd = im.config.entrypoint;
        cmd.insert(cmd.end(), im.config.cmd.begin(), im.config.cmd.end());
        env::Contract& contract = common.contract;
        set(contract, env::kImage, im.name);
        set(contract, env::kImageLayers, layers);
        set(contract, env::kImageWorkdir, im.config.working_dir);
        set(contract, env::kImageUser, im.config.user);
        set(contract, env::kImageEnv,
            im.config.env.empty() ? "" : img::string_array(im.config.env));
        set(contract, env::kImageCmd, cmd.empty() ? "" : img::string_array(cmd));
        PreparedExec next = cli::value_or_die(prepare_exec(args));
        cli::exec_command(next, contract, !next.kago && !keep_env);
    }

    if (do_list) words(0, 0, "--list takes no other words");
    if (!inspect.empty()) words(0, 0, "--inspect takes one IMAGE");
    if (!import_src.empty()) words(0, 1, "--import takes SRC and at most one NAME");
    if (!pull_ref.empty())
        words(0, 1, "--pull takes REF and at most one NAME (-- COMMAND runs a command on it)");
    if (!tag_image.empty()) words(1, 1, "--tag takes IMAGE and one NAME");
    if (!remove_image.empty()) words(0, 0, "--remove takes one IMAGE");
    if (!commit_dir.empty()) words(2, 2, "--commit takes DIR, IMAGE and NAME");
    if (map_auto && writes && !trace::dry_run() && !mount::in_user_namespace() && ::geteuid() != 0)
        again_mapped(argc, argv, store_path, opts.given("--store") > 0, common.contract);
    if (trace::dry_run() && writes) {
        trace::emit(cat("would change the store ", store_path, " (dry run): nothing done"));
        return 0;
    }
    auto s = cli::value_or_die(img::Store::open(store_path, writes));
    if (do_list) return list(s);
    if (!inspect.empty()) {
        img::Image im = cli::value_or_die(img::resolve(s, inspect));
        out(img::pretty(im.config.json) + "\n");
        return 0;
    }
    if (!tag_image.empty()) {
        cli::check_or_die(img::tag(s, tag_image, args[0]));
        return 0;
    }
    if (!remove_image.empty()) {
        auto gone = cli::value_or_die(img::remove(s, remove_image));
        for (const auto& n : gone) out(cat("removed ", n, "\n"));
        return 0;
    }
    img::ImportResult r;
    if (!import_src.empty()) {
        img::ImportOptions o;
        o.src = import_src;
        o.name = args.empty() ? "" : args[0];
        if (!platform.empty()) o.platform = cli::value_or_die(img::parse_platform(platform));
        o.unpack = img::caller_unpack_options();
        o.write = img::caller_write_options();
        o.jobs = cli::value_or_die(img::parse_jobs(env::get(env::kImageJobs)));
        r = cli::value_or_die(img::import(s, o));
    } else if (!pull_ref.empty()) {
        r = cli::value_or_die(img::pull(
            s, pull_options(pull_ref, args.empty() ? "" : args[0], platform, insecure, quiet)));
    } else {
        r = cli::value_or_die(img::commit(s, commit_dir, args[0], args[1],
                                          img::caller_unpack_options(),
                                          img::caller_write_options()));
    }
    warn_stats(r.totals);
    out(cat(r.name, " ", img::hex_of(r.config_digest).substr(0, 12), " (", r.layers, r.layers == 1 ? " layer" : " layers",
            r.layers_shared ? cat(", ", r.layers_shared, " shared") : "", ")\n"));
    return 0;
}
