// image-layers: resolve an image in the store, hand its layers and config
// down the chain in KAGO_IMAGE_ variables, then exec the rest. It forks
// nothing and leaves nothing to undo. Its management modes fill the store.
//
//   image-layers debian-app:1 -- unshare-run --pid --mount --
//       mount-layers --tmp-upper --proc --dev --pivot -- cap-drop   (one command line)
#include <unistd.h>

#include <cstdio>

#include "core/cli.hpp"
#include "core/env.hpp"
#include "core/exec.hpp"
#include "core/parse.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"
#include "image/digest.hpp"
#include "image/import.hpp"
#include "image/store.hpp"
#include "mount/root.hpp"

using namespace kago;
namespace img = kago::image;

namespace {

void out(const std::string& text) {
    fwrite(text.data(), 1, text.size(), stdout);
    fflush(stdout);
}

// Root outside a user namespace keeps owners, devices, setuid bits and
// file capabilities; anyone else owns every file (see image-layers(1)).
bool rootless() { return ::geteuid() != 0 || mount::in_user_namespace(); }

// Root of a user namespace that maps more than one id (--map-auto: the
// caller and its subordinate ranges) gives files the image's owners and
// keeps setuid bits, as podman does; only device nodes cannot be made.
bool mapped_range() {
    if (::geteuid() != 0 || !mount::in_user_namespace()) return false;
    auto m = sys::read_file("/proc/self/uid_map");
    if (!m) return false;
    uint64_t ids = 0;
    size_t i = 0;
    while (i < m->size()) {
        size_t e = m->find('\n', i);
        if (e == std::string::npos) e = m->size();
        unsigned long a = 0, b = 0, n = 0;
        if (sscanf(m->substr(i, e - i).c_str(), "%lu %lu %lu", &a, &b, &n) == 3) ids += n;
        i = e + 1;
    }
    return ids > 1;
}

img::UnpackOptions unpack_options() {
    img::UnpackOptions u;
    u.owners = u.devices = u.setid = u.trusted_opaque = !rootless();
    if (mapped_range()) u.owners = u.setid = true;
    return u;
}

img::WriteOptions write_options() {
    img::WriteOptions w;
    if (rootless() && !mapped_range()) w.root_uid = ::getuid(), w.root_gid = ::getgid();
    return w;
}

// --map-auto: the same command again, in a user namespace that maps the
// caller's subordinate ranges (unshare-run --user --map-auto).
[[noreturn]] void again_mapped(int argc, char** argv, const std::string& store) {
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) cli::die(sys_error("readlink /proc/self/exe"));
    self[n] = 0;
    std::vector<std::string> words = {"unshare-run", "--user", "--map-auto", "--", self, "--store", store};
    for (int i = 1; i < argc; ++i) words.emplace_back(argv[i]);
    PreparedExec next = cli::value_or_die(prepare_exec(words));
    cli::exec_command(next, false);
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

std::string human(int64_t n) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1000 && u < 4) v /= 1000, ++u;
    char buf[32];
    snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

int list(const img::Store& s) {
    auto all = cli::value_or_die(img::entries(s));
    std::string text = "NAME                                     ID            SIZE       CREATED\n";
    for (const auto& d : all) {
        auto it = d.annotations.find(img::kRefName);
        std::string name = it == d.annotations.end() ? "<none>" : it->second;
        auto im = img::resolve(s, it == d.annotations.end() ? d.digest : name);
        std::string id = im ? std::string(img::hex_of(im->config_digest).substr(0, 12)) : "?";
        std::string size = im ? human(im->size) : "?";
        std::string created = im ? im->config.created : "";
        char line[512];
        snprintf(line, sizeof line, "%-40s %-13s %-10s %s\n", name.c_str(), id.c_str(), size.c_str(), created.c_str());
        text += line;
    }
    out(text);
    return 0;
}

// KAGO_IMAGE_JOBS: 1 to kMaxJobs layers at once; unset, the default.
unsigned jobs() {
    std::string_view v = env::get(env::kImageJobs);
    if (v.empty()) return 0;
    auto n = parse::u64(v, env::kImageJobs);
    if (!n || *n < 1 || *n > img::kMaxJobs)
        cli::usage_error(
            cat(env::kImageJobs, " '", v, "': not a number from 1 to ", img::kMaxJobs));
    return static_cast<unsigned>(*n);
}

void set(const char* name, const std::string& value) {
    if (trace::verbose() || trace::dry_run())
        trace::emit(cat("setenv(", trace::quote(name), ", ", trace::quote(value), ")"));
    if (value.empty()) ::unsetenv(name);
    else ::setenv(name, value.c_str(), 1);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Run the rest of a kago chain on an image: its layers, WorkingDir, User, Env, Entrypoint and Cmd\n"
                 "go down the chain in KAGO_IMAGE_ variables. Management modes fill the image store.",
                 "image-layers"};
    cli::Common common;
    cli::setup(app, common,
               "IMAGE [--] [COMMAND [ARG...]]\n"
               "       image-layers --import SRC [NAME] | --list | --inspect IMAGE | --tag IMAGE NAME\n"
               "       image-layers --remove IMAGE | --commit DIR IMAGE NAME");
    std::string store_path, import_src, inspect, tag_image, remove_image, commit_dir, platform;
    bool do_list = false, keep_env = false, map_auto = false;
    app.add_option("--store", store_path,
                   "The image store (default: /var/lib/kago/images for root, else "
                   "${XDG_DATA_HOME:-~/.local/share}/kago/images)")
        ->type_name("DIR")
        ->envname(env::kImageStore);
    app.add_option("--import", import_src,
                   "Import SRC as NAME: oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF], a root "
                   "filesystem DIR, an archive or rootfs tar FILE, or - (standard input)")
        ->type_name("SRC");
    app.add_option("--platform", platform, "With --import: the platform to pick from a multi-arch index (default: the host's)")
        ->type_name("OS/ARCH[/VARIANT]");
    app.add_flag("--list", do_list, "List the images: name, id, size and created");
    app.add_option("--inspect", inspect, "Print IMAGE's config as JSON")->type_name("IMAGE");
    app.add_option("--tag", tag_image, "Give IMAGE another NAME (the word after the options)")->type_name("IMAGE");
    app.add_option("--remove", remove_image, "Remove IMAGE's name; blobs and layers nothing uses any more go too")
        ->type_name("IMAGE");
    app.add_option("--commit", commit_dir,
                   "Make DIR (a container's upper directory) a new layer on IMAGE, named NAME (the words after "
                   "the options); overlay whiteouts become .wh. entries")
        ->type_name("DIR");
    app.add_flag("--map-auto", map_auto,
                 "Not root: import, commit and remove in a user namespace that maps your subordinate ids "
                 "(unshare-run --user --map-auto), so that files keep the image's owners");
    app.add_flag("--keep-env", keep_env, "Keep the KAGO_ variables for the command (when it is not a kago program)");
    if (auto code = cli::parse(app, common, argc, argv)) return *code;

    int modes = !import_src.empty() + do_list + !inspect.empty() + !tag_image.empty() + !remove_image.empty() +
                !commit_dir.empty();
    if (modes > 1) cli::usage_error("--import, --list, --inspect, --tag, --remove and --commit exclude each other");
    if (!platform.empty() && import_src.empty()) cli::usage_error("--platform needs --import");
    if (store_path.empty()) store_path = img::default_store();
    auto& args = common.command;
    auto words = [&](size_t lo, size_t hi, const char* what) {
        if (args.size() < lo || args.size() > hi) cli::usage_error(what);
    };
    bool writes = !import_src.empty() || !tag_image.empty() || !remove_image.empty() || !commit_dir.empty();

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
        set(env::kImage, im.name);
        set(env::kImageLayers, layers);
        set(env::kImageWorkdir, im.config.working_dir);
        set(env::kImageUser, im.config.user);
        set(env::kImageEnv, im.config.env.empty() ? "" : img::string_array(im.config.env));
        set(env::kImageCmd, cmd.empty() ? "" : img::string_array(cmd));
        PreparedExec next = cli::value_or_die(prepare_exec(args));
        cli::exec_command(next, !next.kago && !keep_env);
    }

    if (do_list) words(0, 0, "--list takes no other words");
    if (!inspect.empty()) words(0, 0, "--inspect takes one IMAGE");
    if (!import_src.empty()) words(0, 1, "--import takes SRC and at most one NAME");
    if (!tag_image.empty()) words(1, 1, "--tag takes IMAGE and one NAME");
    if (!remove_image.empty()) words(0, 0, "--remove takes one IMAGE");
    if (!commit_dir.empty()) words(2, 2, "--commit takes DIR, IMAGE and NAME");
    if (map_auto && writes && !trace::dry_run() && !mount::in_user_namespace() && ::geteuid() != 0)
        again_mapped(argc, argv, store_path);
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
        o.unpack = unpack_options();
        o.write = write_options();
        o.jobs = jobs();
        r = cli::value_or_die(img::import(s, o));
    } else {
        r = cli::value_or_die(img::commit(s, commit_dir, args[0], args[1], unpack_options(), write_options()));
    }
    warn_stats(r.totals);
    out(cat(r.name, " ", img::hex_of(r.config_digest).substr(0, 12), " (", r.layers, r.layers == 1 ? " layer" : " layers",
            r.layers_shared ? cat(", ", r.layers_shared, " shared") : "", ")\n"));
    return 0;
}
