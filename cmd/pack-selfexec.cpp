// pack-selfexec: pack a root filesystem (a directory, a tar stream on stdin,
// or a host program with its libraries) and a command into one executable
// file that starts the container when it runs. The runner is the static
// stub in lib/pack/stub, embedded in this program.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <optional>

#include "cgroup/limits.hpp"
#include "core/cli.hpp"
#include "core/env.hpp"
#include "core/parse.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"
#include "image/store.hpp"
#include "pack/image.hpp"
#include "pack/reader.hpp"
#include "pack/runtime.hpp"
#include "pack/tree.hpp"
#include "pack/writer.hpp"

extern "C" const uint8_t kago_pack_stub_start[];
extern "C" const uint8_t kago_pack_stub_end[];

namespace cli = kago::cli;
namespace pack = kago::pack;
using kago::cat;

namespace {

struct Opts {
    std::string rootfs, image, store, output, from_host, sign, keygen, verify, pubkey;
    std::vector<std::string> add_host;
    pack::Config config;
    bool tmp_upper = false, best = false;
    std::string mtime, frame_size = "32M";
};

std::vector<uint8_t> read_key(const std::string& path, size_t want, const char* what) {
    auto text = cli::value_or_die(kago::sys::read_file(path.c_str()));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    auto k = kago::pack::unhex(text);
    if (!k || k->size() != want) cli::usage_error(cat(what, " ", path, ": expected ", want * 2, " hexadecimal digits"));
    return *k;
}

// --verify's exit statuses (the man page's EXIT STATUS).
constexpr int kVerifyBad = 1;       // a check failed: damaged, tampered with, or not a packed file
constexpr int kVerifyUnsigned = 2;  // intact, but not signed

// pack-selfexec --verify FILE [--pubkey KEY]: check every byte of FILE from
// the outside. The file's own --kago-verify runs the file's own code, which
// a tampered file controls.
int verify(const std::string& file, const std::string& pubkey_arg) {
    // 64 hexadecimal digits, or a file holding them.
    std::vector<uint8_t> pubkey;
    if (pubkey_arg.size() == 2 * crypto_sign_PUBLICKEYBYTES)
        if (auto digits = kago::pack::unhex(pubkey_arg)) pubkey = *digits;
    if (!pubkey_arg.empty() && pubkey.empty()) pubkey = read_key(pubkey_arg, crypto_sign_PUBLICKEYBYTES, "--pubkey");
    kago::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) cli::die(kago::sys_error(cat("open ", file)));
    // A failed check is an error without errno; an I/O error has one.
    auto fail = [&](const kago::Error& e) {
        kago::Error shown = e;
        shown.what = cat(file, ": ", e.what);
        cli::die(shown, e.err == 0 ? kVerifyBad : 125);
    };
    auto p = pack::Packed::open(std::move(fd));
    if (!p) fail(p.error());
    auto v = pack::verify(*p, pubkey, 0);
    if (!v) fail(v.error());
    std::string root = pack::hex(v->root_hash);
    if (!v->is_signed) {
        cli::note(cat(file, ": intact (root hash ", root, "), but not signed"));
        return kVerifyUnsigned;
    }
    std::string key = pack::hex(v->signer);
    if (!v->trusted_key)
        cli::warn(cat(file, ": checked against the key the file carries, which anyone can replace: give "
                      "--pubkey to check who signed it"));
    printf("%s: OK, signed by %s (root hash %s)\n", file.c_str(), key.c_str(), root.c_str());
    return 0;
}

int keygen(const std::string& prefix) {
    if (sodium_init() < 0) cli::die(kago::usage_error("libsodium: init failed"));
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    std::string skhex = pack::hex(std::span<const uint8_t>(sk, sizeof sk)) + "\n";
    std::string pkhex = pack::hex(std::span<const uint8_t>(pk, sizeof pk)) + "\n";
    cli::check_or_die(kago::sys::write_file((prefix + ".key").c_str(), skhex, O_CREAT | O_EXCL));
    ::chmod((prefix + ".key").c_str(), 0600);
    cli::check_or_die(kago::sys::write_file((prefix + ".pub").c_str(), pkhex, O_CREAT | O_EXCL));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    cli::Options opts(
        "pack-selfexec",
        "Pack a root filesystem and a command into one self-executing file that runs "
        "them in a container.\nThe file needs nothing on the target host, and runs "
        "rootless.",
        "-o FILE (--rootfs DIR|- | --image IMAGE | --from-host PROGRAM) [--] [COMMAND [ARG...]]");
    cli::Common common;
    Opts o;
    pack::Config& c = o.config;
    opts.option("-o,--output", o.output, "FILE", "Write the packed file to FILE");
    opts.option("--rootfs", o.rootfs, "DIR|-",
                "Pack the directory DIR, or a tar stream on stdin with '-'");
    opts.option("--image", o.image, "IMAGE",
                "Pack a container image: a name in the image store, or an archive or layout to "
                "import (oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE, a path); its config "
                "gives the command, Env, WorkingDir and User unless the options do");
    opts.option("--store", o.store, "DIR",
                "With --image: the image store (default: image-layers' store)")
        .env(kago::env::kImageStore);
    opts.option("--from-host", o.from_host, "PROGRAM",
                "Pack a host PROGRAM with its interpreter and shared libraries (and "
                "/usr/lib/NAME if it exists)");
    opts.option("--add-host", o.add_host, "PATH",
                "With --from-host: also pack this host file or directory (repeatable)");
    opts.option("--env", c.env, "K=V", "Set K=V in the container (repeatable)");
    opts.option("--workdir", c.workdir, "DIR", "Working directory in the container (default /)");
    opts.option("--hostname", c.hostname, "NAME", "Host name in the container (default kago)");
    opts.option("--user", c.user, "USER[:GROUP]",
                "Run the command as USER[:GROUP] of the container");
    opts.option(
        "--keep-caps", c.keep_caps, "CAPS",
        "Capabilities the command keeps (comma-separated, or 'none'; default: Docker's set)");
    opts.choice("--seccomp", c.seccomp, "default|unconfined",
                "Seccomp filter: default or unconfined");
    opts.option("--memory", c.memory, "SIZE",
                "Memory limit (cgroups; a warning where they are not usable)");
    opts.option("--pids", c.pids, "N",
                "Process limit (cgroups; a warning where they are not usable)");
    opts.option("--cpus", c.cpus, "N",
                "CPU limit, e.g. 1.5 (cgroups; a warning where they are not usable)");
    opts.choice("--net", c.net, "none|host|user-mode",
                "Network: none (loopback only), host, or user-mode (pasta on the target host)");
    opts.flag(
        "--bind-allowed", c.bind_allowed,
        "Let the runner bind host paths given at run time (see RUNNER OPTIONS in the man page)");
    opts.flag("--read-only", c.read_only, "Run on the read-only cached root, with no tmpfs upper");
    opts.flag("--sys", c.sys,
              "Mount a read-only /sys in the container, and a read-only /sys/fs/cgroup in a cgroup "
              "namespace of its own (rootless: not with --net host)");
    opts.flag(
        "--no-cgroupfs", [&c] { c.cgroupfs = false; }, "With --sys: leave /sys/fs/cgroup empty");
    opts.flag("--tmp-upper", o.tmp_upper,
              "Writes go to a tmpfs over the cached root (the default)");
    opts.flag("--best", o.best,
              "Compress for size: zstd level 19 with long mode (default: level 3 with long mode)");
    opts.option("--mtime", o.mtime, "EPOCH",
                "Clamp modification times to EPOCH seconds (default: $SOURCE_DATE_EPOCH)");
    opts.option("--frame-size", o.frame_size, "SIZE",
                "Bytes of contents per zstd frame, 64K to 64M (default 32M; 64M with --best)");
    opts.option("--sign", o.sign, "KEYFILE",
                "Sign the file with the Ed25519 secret key in KEYFILE (see --keygen)");
    opts.option("--keygen", o.keygen, "PREFIX",
                "Write a new Ed25519 key pair to PREFIX.key and PREFIX.pub, and exit");
    opts.option("--verify", o.verify, "FILE",
                "Check every byte of the packed FILE and its signature, and exit (0 verified, "
                "1 bad, 2 unsigned)");
    opts.option("--pubkey", o.pubkey, "KEY",
                "With --verify: the signer's Ed25519 public key (64 hexadecimal digits, or a file "
                "holding them)");
    if (auto code = opts.parse(argc, argv, common)) return *code;

    if (!o.keygen.empty()) return keygen(o.keygen);
    if (!o.pubkey.empty() && o.verify.empty()) cli::usage_error("--pubkey needs --verify");
    if (!o.verify.empty()) return verify(o.verify, o.pubkey);
    if (o.output.empty()) cli::usage_error("-o FILE is required");
    if (!o.rootfs.empty() + !o.image.empty() + !o.from_host.empty() != 1)
        cli::usage_error("give one of --rootfs DIR|-, --image IMAGE and --from-host PROGRAM");
    if (!o.store.empty() && o.image.empty() && opts.given("--store"))
        cli::usage_error("--store needs --image");
    if (!o.add_host.empty() && o.from_host.empty()) cli::usage_error("--add-host needs --from-host");
    if (!c.cgroupfs && !c.sys) cli::usage_error("--no-cgroupfs needs --sys (/sys/fs/cgroup comes with it)");
    if (c.read_only && o.tmp_upper)
        cli::usage_error("--read-only and --tmp-upper contradict each other");
    for (auto& e : c.env)
        if (e.find('=') == std::string::npos || e[0] == '=') cli::usage_error(cat("--env ", e, ": expected K=V"));
    if (c.workdir.empty() || c.workdir[0] != '/') cli::usage_error(cat("--workdir ", c.workdir, ": not absolute"));
    if (!c.memory.empty()) cli::value_or_die(kago::cgroup::parse_size(c.memory, "--memory"));
    if (!c.pids.empty()) cli::value_or_die(kago::cgroup::parse_count(c.pids, "--pids"));
    if (!c.cpus.empty()) cli::value_or_die(kago::cgroup::parse_cpus(c.cpus, "--cpus"));
    std::optional<int64_t> clamp;
    std::string mt = o.mtime.empty() ? std::string(kago::env::get("SOURCE_DATE_EPOCH")) : o.mtime;
    if (!mt.empty()) clamp = cli::value_or_die(kago::parse::i64(mt, o.mtime.empty() ? "SOURCE_DATE_EPOCH" : "--mtime"));
    // --best takes the largest frames (64M) unless told otherwise: fewer
    // frame boundaries for level 19 to lose matches at.
    if (o.best && opts.given("--frame-size") == 0) o.frame_size = "64M";
    uint64_t frame = cli::value_or_die(kago::parse::size(o.frame_size, "--frame-size"));
    if (frame < pack::kMinFrameSize || frame > pack::kMaxFrameSize)
        cli::usage_error(cat("--frame-size ", o.frame_size, ": expected 64K to 64M"));
    c.command = common.command;
    // The runner loads this filter as it is: it links no libseccomp.
    if (c.seccomp == "default") c.seccomp_bpf = cli::value_or_die(pack::default_filter(c));

    pack::WriteOptions wo;
    wo.level = o.best ? 19 : 3;
    wo.long_mode = true;
    wo.frame_size = static_cast<uint32_t>(frame);
    wo.stub = std::span<const uint8_t>(kago_pack_stub_start, kago_pack_stub_end);
    if (!o.sign.empty()) wo.secret_key = read_key(o.sign, crypto_sign_SECRETKEYBYTES, "--sign");

    std::string source = !o.from_host.empty() ? cat("host program ", o.from_host)
                         : !o.image.empty()   ? cat("image ", o.image)
                         : o.rootfs == "-"    ? "a tar stream on stdin"
                                              : o.rootfs;
    if (common.dry_run) {
        kago::trace::emit(cat("read ", source, " (dry run)"));
        kago::trace::emit(cat("compress with zstd level ", wo.level, " and long mode in frames of ",
                              kago::parse::human_size(frame), ", one thread per CPU (dry run)"));
        kago::trace::emit(cat("write ", o.output, ": stub ", kago::parse::human_size(wo.stub.size()),
                              ", frames, manifest, frame table, trailer (dry run)"));
        std::vector<std::string> cmd =
            c.command.empty() ? std::vector<std::string>{"/bin/sh"} : c.command;
        kago::trace::emit(cat("command: ", c.command.empty() && !o.image.empty()
                                               ? "the image's Entrypoint and Cmd"
                                               : kago::describe_argv(cmd)));
        return 0;
    }

    pack::Tree tree;
    pack::ScanOptions so;
    so.map_builder_to_root = ::geteuid() != 0;
    if (!o.from_host.empty()) {
        cli::check_or_die(pack::add_host_command(tree, o.from_host, o.add_host, c.command));
        c.from_host = true;
    } else if (!o.image.empty()) {
        // Static, so that exit() (cli::die) still removes a temporary
        // store: the layers are read until the file is written.
        static std::optional<pack::PackImage> image;
        image.emplace(cli::value_or_die(pack::PackImage::open(
            o.image, o.store.empty() ? kago::image::default_store() : o.store)));
        cli::check_or_die(pack::add_layers(tree, image->layer_dirs, so));
        cli::check_or_die(pack::apply_image_config(
            c, image->config,
            {!c.command.empty(), opts.given("--workdir") > 0, opts.given("--user") > 0}));
    } else if (o.rootfs == "-") {
        if (isatty(0)) cli::usage_error("--rootfs -: stdin is a terminal, not a tar stream");
        cli::check_or_die(pack::read_tar(tree, 0, so));
    } else {
        cli::check_or_die(pack::scan_directory(tree, o.rootfs, so));
    }
    auto built = cli::value_or_die(tree.build(clamp));
    built.manifest.config = c;
    wo.spill_fd = tree.spill_fd();

    // One bar on a terminal; its last state stays on the screen.
    std::optional<cli::ProgressBoard> bar;
    if (isatty(2) && !common.verbose) {
        bar.emplace(cli::terminal_columns(2));
        bar->add(0, "");
        wo.progress = [&](uint64_t done, uint64_t total) { bar->update(0, done, total); };
    }
    auto written = pack::write_packed_file(o.output, built, wo);
    if (bar) bar->keep(0);
    if (!written) cli::die(written.error());
    if (common.verbose)
        kago::trace::emit(cat(o.output, ": ", built.manifest.entries.size(), " entries, ",
                              kago::parse::human_size(built.total_bytes), " in ", written->trailer.frame_count,
                              " frames, ", kago::parse::human_size(written->file_size), ", key ",
                              pack::hex(written->trailer.root_hash)));
    return 0;
}
