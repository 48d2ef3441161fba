// The runner at the front of every packed file. It opens /proc/self/exe
// once and reads the payload only through that descriptor, extracts it into
// the cache on the first run (checking each frame's hash before decoding
// it), and starts the container. Options of its own start with --kago-;
// every other word goes to the command.
//
// Statically linked, without lib/core/cli: it must stay small (mk/pack-selfexec.mk
// checks the 1.5 MB limit) and need nothing on the target host.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "core/child.hpp"
#include "core/env.hpp"
#include "core/parse.hpp"
#include "core/proc.hpp"
#include "core/sys.hpp"
#include "core/times.hpp"
#include "core/trace.hpp"
#include "mount/root.hpp"
#include "pack/cache.hpp"
#include "pack/reader.hpp"
#include "pack/runtime.hpp"

using namespace kago;
using namespace kago::pack;

namespace {

void out(std::string_view s) {
    while (!s.empty()) {
        ssize_t w = ::write(1, s.data(), s.size());
        if (w <= 0) return;
        s.remove_prefix(static_cast<size_t>(w));
    }
}

void report(const Error& e) {
    trace::emit(e.message());
    if (!e.hint.empty()) trace::emit(cat("hint: ", e.hint));
}

[[noreturn]] void die(const Error& e, int code = 125) {
    report(e);
    child::leave(code);
}

[[noreturn]] void usage(std::string_view msg) {
    trace::emit(msg);
    trace::emit("runner options: --kago-info, --kago-extract DIR, --kago-keep-devices-setuid, --kago-shell, "
                "--kago-verify [PUBKEY], --kago-cache DIR, --kago-bind SRC:DST, --kago-trace, --kago-clean, "
                "--kago-help");
    child::leave(125);
}

template <class T>
T check(Result<T> r) {
    if (!r) die(r.error());
    return std::move(r).value();
}
void check(const Status& s) {
    if (!s) die(s.error());
}

struct Options {
    bool info = false, shell = false, verify = false, clean = false, help = false, keep_special = false;
    std::string extract, cache, pubkey;
    std::vector<std::string> binds;
    std::vector<std::string> args;
};

Options parse_args(int argc, char** argv) {
    Options o;
    int i = 1;
    auto value = [&](std::string_view arg, std::string_view name) -> std::string {
        if (arg.size() > name.size() && arg[name.size()] == '=') return std::string(arg.substr(name.size() + 1));
        if (i + 1 >= argc) usage(cat("option '", name, "' requires an argument"));
        return argv[++i];
    };
    for (; i < argc; ++i) {
        std::string_view a = argv[i];
        if (!a.starts_with("--kago-")) break;
        auto is = [&](std::string_view name) {
            return a == name || (a.starts_with(name) && a.size() > name.size() && a[name.size()] == '=');
        };
        if (a == "--kago-info") o.info = true;
        else if (a == "--kago-shell") o.shell = true;
        else if (a == "--kago-clean") o.clean = true;
        else if (a == "--kago-trace") trace::set_verbose(true);
        else if (a == "--kago-help") o.help = true;
        else if (a == "--kago-keep-devices-setuid") o.keep_special = true;
        else if (is("--kago-extract")) o.extract = value(a, "--kago-extract");
        else if (is("--kago-cache")) o.cache = value(a, "--kago-cache");
        else if (is("--kago-bind")) o.binds.push_back(value(a, "--kago-bind"));
        else if (a.starts_with("--kago-verify=")) {
            o.verify = true;
            o.pubkey = a.substr(14);
        } else if (a == "--kago-verify") {
            o.verify = true;
            if (i + 1 < argc && argv[i + 1][0] != '-') o.pubkey = argv[++i];
        } else {
            usage(cat("unrecognized runner option '", a, "'"));
        }
    }
    if (i < argc && std::string_view(argv[i]) == "--") ++i;
    for (; i < argc; ++i) o.args.emplace_back(argv[i]);
    return o;
}

std::string join(const std::vector<std::string>& v, const char* sep = " ") {
    std::string s;
    for (auto& x : v) s += (s.empty() ? "" : sep) + x;
    return s;
}

// A public key: 64 hex digits, or a file holding them.
std::vector<uint8_t> read_pubkey(const std::string& arg) {
    std::string text = arg;
    if (arg.size() != 64) {
        auto r = sys::read_file(arg.c_str());
        if (!r) die(r.error());
        text = *r;
        while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    }
    auto k = unhex(text);
    if (!k || k->size() != 32) die(usage_error(cat("public key ", arg, ": expected 64 hexadecimal digits")));
    return *k;
}

void print_info(Packed& p, const Options& o) {
    check(p.load_manifest());
    const Trailer& t = p.trailer();
    const Config& c = p.manifest().config;
    std::string s;
    auto line = [&](std::string_view k, std::string_view v) { s += cat(k, std::string(12 - k.size(), ' '), v, "\n"); };
    line("format:", cat("kago pack ", t.version));
    line("root hash:", p.key());
    line("command:", join(c.command));
    for (auto& e : c.env) line("env:", e);
    line("workdir:", c.workdir);
    line("hostname:", c.hostname.empty() ? "kago" : c.hostname);
    line("user:", c.user.empty() ? "0:0" : c.user);
    line("keep caps:", c.keep_caps.empty() ? "default" : join(c.keep_caps, ","));
    line("seccomp:", c.seccomp);
    line("net:", c.net);
    if (!c.memory.empty()) line("memory:", c.memory);
    if (!c.pids.empty()) line("pids:", c.pids);
    if (!c.cpus.empty()) line("cpus:", c.cpus);
    line("bind:", c.bind_allowed ? "allowed (--kago-bind)" : "not allowed");
    line("root:", c.read_only ? "read-only" : "read-only cache with a tmpfs upper");
    line("sys:", !c.sys ? "none" : c.cgroupfs ? "read-only /sys and /sys/fs/cgroup (--sys)" : "read-only /sys (--sys --no-cgroupfs)");
    line("entries:", cat(t.total_entries));
    line("contents:", cat(parse::human_size(t.total_bytes), " in ", t.frame_count, " frames of ",
                          parse::human_size(t.frame_size), " (", parse::human_size(p.compressed_bytes()),
                          " compressed)"));
    line("stub:", parse::human_size(t.payload_offset));
    if (t.flags & kFlagSigned) {
        auto v = p.verify_signature({});
        line("signature:", cat("Ed25519, key ", hex(t.public_key), v ? " (consistent)" : " (BAD)"));
    } else {
        line("signature:", "none");
    }
    auto base = open_cache_base(o.cache);
    if (base) {
        auto hit = cache_lookup(*base, p.key());
        line("cache:", cat(base->path, "/", p.key(), hit && *hit ? " (present)" : " (absent)"));
    }
    out(s);
}

// The whys: what the skipped devices and the stripped bits are owed to.
void warn_stats(const ExtractStats& st, std::string_view devices_why, std::string_view setid_why) {
    if (st.devices_skipped)
        trace::emit(cat("warning: skipped ", st.devices_skipped,
                        st.devices_skipped == 1 ? " device node (" : " device nodes (", devices_why, ")"));
    if (st.setid_stripped)
        trace::emit(cat("warning: removed the setuid/setgid bits of ", st.setid_stripped, " entries (", setid_why,
                        ")"));
    if (st.xattrs_dropped && trace::verbose())
        trace::emit(cat("dropped ", st.xattrs_dropped, " extended attributes (security.*, trusted.*, or refused)"));
}

}  // namespace

// The default terminate handler demangles names: 50 KB the stub does not need.
namespace __gnu_cxx {
void __verbose_terminate_handler() { abort(); }
}  // namespace __gnu_cxx

int main(int argc, char** argv) {
    if (env::is_true("KAGO_TIMES")) times::enable();
    times::mark("runner: main");
    const char* slash = argc > 0 ? strrchr(argv[0], '/') : nullptr;
    trace::set_program(argc > 0 ? (slash ? slash + 1 : argv[0]) : "kago-pack");
    if (env::is_true(env::kTrace)) trace::set_verbose(true);
    // The one open of our own file; everything is read through this fd.
    UniqueFd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    if (!self) die(sys_error("open /proc/self/exe").with_hint("the runner needs /proc mounted"));
    Options o = parse_args(argc, argv);
    if (o.help) {
        out("Runner options (everything else goes to the command):\n"
            "  --kago-info            print the settings, sizes, hash and signature; run nothing\n"
            "  --kago-extract DIR     extract the root into DIR (made mode 0700), without device nodes\n"
            "                         and setuid/setgid bits; run nothing\n"
            "  --kago-keep-devices-setuid\n"
            "                         with --kago-extract as root: make the device nodes and keep the\n"
            "                         setuid/setgid bits\n"
            "  --kago-shell           run /bin/sh instead of the command\n"
            "  --kago-verify [PUBKEY] check every hash (and the signature); run nothing. This is the\n"
            "                         file vouching for itself: use pack-selfexec --verify FILE\n"
            "  --kago-cache DIR       cache directory instead of ~/.cache/kago\n"
            "  --kago-bind SRC:DST    bind a host path (only if built with --bind-allowed)\n"
            "  --kago-trace           trace every kernel call\n"
            "  --kago-clean           remove this file's cache entry\n");
        return 0;
    }
    Packed p = check(Packed::open(std::move(self)));
    times::mark("runner: trailer read");
    unsigned threads = 0;
    if (o.info) {
        print_info(p, o);
        return 0;
    }
    if (o.verify) {
        std::vector<uint8_t> key;
        if (!o.pubkey.empty()) key = read_pubkey(o.pubkey);
        Verified v = check(verify(p, key, threads));
        if (!key.empty() && !v.is_signed) die(usage_error("packed file: not signed"));
        out(cat(p.key(), ": OK", v.is_signed ? " (signed)" : "", "\n"));
        return 0;
    }
    if (o.clean) {
        auto base = check(open_cache_base(o.cache));
        check(cache_clean(base, p.key()));
        return 0;
    }
    if (o.keep_special && o.extract.empty()) usage("--kago-keep-devices-setuid: only with --kago-extract DIR");
    ExtractOptions eo;
    // Root in a user namespace (a container, unshare -Ur) can neither make
    // device nodes nor give files to ids its namespace does not map.
    bool rootless = ::geteuid() != 0 || mount::in_user_namespace();
    eo.owners = !rootless;
    eo.threads = threads;
    if (!o.extract.empty()) {
        // A tree anyone may enter would hand them its device nodes and
        // setuid programs: both only when asked for, and DIR is 0700 (an
        // existing DIR keeps its mode), whatever the image's root says.
        eo.devices = eo.setid = !rootless && o.keep_special;
        eo.root_mode = false;
        check(p.load_manifest());
        if (::mkdir(o.extract.c_str(), 0700) != 0 && errno != EEXIST) die(sys_error(cat("create ", o.extract)));
        UniqueFd dir(::open(o.extract.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dir) die(sys_error(cat("open ", o.extract)));
        auto st = extract(p, dir.get(), eo);
        if (!st) die(st.error());
        if (rootless) warn_stats(*st, "rootless: none can be made", "rootless: their owners are not mapped");
        else warn_stats(*st, "made only with --kago-keep-devices-setuid", "kept only with --kago-keep-devices-setuid");
        return 0;
    }
    // The cache: private (0700 entries below a base not writable by
    // others) and mounted nosuid and nodev in the container.
    eo.devices = eo.setid = !rootless;
    auto base = check(open_cache_base(o.cache));
    CacheEntry entry = check(cache_get(base, p, eo));
    times::mark("runner: cache entry checked");
    if (!entry.hit)
        warn_stats(entry.stats, "rootless: the container gets a minimal /dev instead",
                   "rootless: their owners are not mapped");
    RunSpec spec;
    spec.config = entry.config;
    spec.rootfs = entry.root;
    spec.mnt = entry.dir + "/mnt";
    if (o.shell) spec.command = {"/bin/sh"};
    else spec.command = spec.config.command;
    if (spec.command.empty()) spec.command = {"/bin/sh"};
    spec.command.insert(spec.command.end(), o.args.begin(), o.args.end());
    if (!o.binds.empty() && !spec.config.bind_allowed)
        usage("--kago-bind: this file was packed without --bind-allowed");
    for (auto& b : o.binds) spec.binds.push_back(check(parse_bind(b)));
    auto outcome = check(run_container(spec));
    times::mark("runner: exit");
    if (outcome.exec_error) report(*outcome.exec_error);
    child::exit_like(outcome.wstatus);
}
