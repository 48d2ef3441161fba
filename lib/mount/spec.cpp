#include "mount/spec.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "core/parse.hpp"

namespace kago::mount {

const char* step_option(StepKind kind) {
    switch (kind) {
    case StepKind::bind: return "--bind";
    case StepKind::tmpfs: return "--tmpfs";
    case StepKind::symlink: return "--symlink";
    case StepKind::mkdir: return "--mkdir";
    case StepKind::file: return "--file";
    case StepKind::chdir: return "--chdir";
    }
    return "?";
}

Result<mode_t> parse_mode(std::string_view s, std::string_view what) {
    if (s.empty() || s.size() > 5 || s.find_first_not_of("01234567") != std::string_view::npos)
        return usage_error(cat(what, ": '", s, "' is not an octal mode such as 0755"));
    mode_t m = 0;
    for (char c : s) m = m * 8 + static_cast<mode_t>(c - '0');
    if (m > 07777) return usage_error(cat(what, ": mode '", s, "' is out of range"));
    return m;
}

Result<std::string> normalize_in_root(std::string_view path, std::string_view what) {
    if (path.empty()) return usage_error(cat(what, ": empty path"));
    std::vector<std::string> parts;
    for (auto& c : parse::split(path, '/')) {
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (parts.empty())
                return usage_error(cat(what, ": '", path, "' escapes the root through '..'"));
            parts.pop_back();
            continue;
        }
        parts.push_back(c);
    }
    std::string out;
    for (auto& p : parts) out += "/" + p;
    return out.empty() ? std::string("/") : out;
}

std::string workdir_for(std::string_view upper) {
    std::string u(upper);
    while (u.size() > 1 && u.back() == '/') u.pop_back();
    return u + ".work";
}

namespace {
Result<std::string> dst_of(StepKind kind, std::string_view s) {
    return normalize_in_root(s, cat(step_option(kind), " ", s));
}

// "suid" too, so that it is refused by name.
constexpr std::string_view kTmpfsWords[] = {"ro", "rw", "noexec", "exec", "nosuid", "suid", "nodev", "dev"};

// "noexec", "size=64m,mode=755": options, not the old SIZE field ("64m").
bool is_tmpfs_options(std::string_view s) {
    if (s.find_first_of(",=") != std::string_view::npos) return true;
    for (auto w : kTmpfsWords)
        if (s == w) return true;
    return false;
}

Status parse_tmpfs_options(std::string_view s, std::string_view opt, Step& st) {
    for (const auto& o : parse::split(s, ',')) {
        std::string_view v = o;
        if (v == "ro") st.read_only = true;
        else if (v == "rw") st.read_only = false;
        else if (v == "noexec") st.noexec = true;
        else if (v == "exec") st.noexec = false;
        else if (v == "nosuid") {}  // always
        else if (v == "nodev") st.dev = false;
        else if (v == "dev") st.dev = true;
        else if (v.substr(0, 5) == "size=") st.size = TRY(parse::size(v.substr(5), opt));
        else if (v.substr(0, 5) == "mode=") st.mode = TRY(parse_mode(v.substr(5), opt));
        else if (v == "suid")
            return usage_error(cat(opt, ": a --tmpfs is always nosuid"));
        else
            return usage_error(cat(opt, ": unknown tmpfs option '", v,
                                   "' (known: ro rw noexec exec nosuid nodev dev size=SIZE mode=MODE)"));
    }
    return {};
}
}  // namespace

const std::vector<std::string>& default_masked_paths() {
    static const std::vector<std::string> v = {
        "/proc/acpi",         "/proc/asound",         "/proc/interrupts",
        "/proc/kcore",        "/proc/keys",           "/proc/latency_stats",
        "/proc/timer_list",   "/proc/timer_stats",    "/proc/sched_debug",
        "/proc/scsi",         "/sys/firmware",        "/sys/devices/virtual/powercap"};
    return v;
}

const std::vector<std::string>& default_read_only_paths() {
    static const std::vector<std::string> v = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                               "/proc/sysrq-trigger"};
    return v;
}

Result<Step> parse_step(StepKind kind, std::string_view value) {
    Step st;
    st.kind = kind;
    std::string opt = cat(step_option(kind), " '", value, "'");
    if (value.empty()) return usage_error(cat(step_option(kind), ": empty value"));
    auto f = parse::split(value, ':');
    switch (kind) {
    case StepKind::bind:
        if (f.size() > 3 || f[0].empty())
            return usage_error(cat(opt, ": expected SRC:DST or SRC:DST:ro (or :dev, :ro,dev)"));
        st.src = f[0];
        st.dst = TRY(dst_of(kind, f.size() >= 2 && !f[1].empty() ? f[1] : f[0]));
        if (f.size() == 3) {
            for (const auto& o : parse::split(f[2], ',')) {
                if (o == "ro") st.read_only = true;
                else if (o == "rw") st.read_only = false;
                else if (o == "dev") st.dev = true;
                else return usage_error(cat(opt, ": expected SRC:DST or SRC:DST:ro (or :dev, :ro,dev)"));
            }
        }
        break;
    case StepKind::tmpfs:
        if (f.size() > 3 || f[0].empty())
            return usage_error(cat(opt, ": expected DST[:SIZE[:MODE]] or DST:OPT[,OPT...]"));
        st.dst = TRY(dst_of(kind, f[0]));
        if (f.size() == 2 && is_tmpfs_options(f[1])) {
            TRY(parse_tmpfs_options(f[1], opt, st));
            break;
        }
        if (f.size() >= 2 && !f[1].empty()) st.size = TRY(parse::size(f[1], opt));
        if (f.size() == 3) st.mode = TRY(parse_mode(f[2], opt));
        break;
    case StepKind::symlink: {
        auto colon = value.rfind(':');
        if (colon == std::string_view::npos || colon == 0 || colon + 1 == value.size())
            return usage_error(cat(opt, ": expected TARGET:LINK"));
        st.src = std::string(value.substr(0, colon));
        st.dst = TRY(dst_of(kind, value.substr(colon + 1)));
        break;
    }
    case StepKind::mkdir:
        if (f.size() > 2 || f[0].empty()) return usage_error(cat(opt, ": expected DST[:MODE]"));
        st.dst = TRY(dst_of(kind, f[0]));
        if (f.size() == 2) st.mode = TRY(parse_mode(f[1], opt));
        break;
    case StepKind::file:
        if (f.size() != 2 || f[0].empty() || f[1].empty())
            return usage_error(cat(opt, ": expected SRC:DST"));
        st.src = f[0];
        st.dst = TRY(dst_of(kind, f[1]));
        break;
    case StepKind::chdir:
        st.dst = TRY(dst_of(kind, value));
        break;
    }
    if (st.dst == "/" && kind != StepKind::chdir && kind != StepKind::mkdir)
        return usage_error(cat(opt, ": DST must not be the root itself"));
    return st;
}

Status validate(const RootSpec& spec) {
    if (spec.layers.empty())
        return usage_error("no --layer given: the root needs at least one layer");
    if (spec.layers.size() > kMaxLayers)
        return usage_error(cat("too many layers: ", spec.layers.size(), " given, overlayfs stacks at most ",
                               kMaxLayers));
    for (const auto& l : spec.layers)
        if (l.empty()) return usage_error("--layer: empty path");
    if (spec.upper.kind == UpperKind::dir && spec.upper.dir.empty())
        return usage_error("--upper: empty path");
    if (spec.target.empty()) return usage_error("--target: empty path");
    for (const auto& st : spec.steps)
        if (st.kind == StepKind::bind && st.src.empty())
            return usage_error("--bind: empty source");
    if (spec.mqueue == Want::yes && !spec.dev)
        return usage_error("--mqueue needs --dev (it is mounted on /dev/mqueue)");
    if (spec.cgroupfs == Want::yes && !spec.sys)
        return usage_error("--cgroupfs needs --sys (it is mounted on /sys/fs/cgroup)");
    return {};
}

std::string unmapped_entry(const std::string& layer, uint32_t ouid, uint32_t ogid) {
    for (const char* e : {".", "etc", "etc/passwd", "usr", "var/lib/dpkg"}) {
        struct stat st;
        if (::lstat(cat(layer, "/", e).c_str(), &st) != 0) continue;
        if (st.st_uid == ouid || st.st_gid == ogid)
            return cat(std::string_view(e) == "." ? "its root" : e, " (uid ", st.st_uid, " gid ", st.st_gid, ")");
    }
    return "";
}

Status apply_image_defaults(RootSpec& spec, std::string_view layers, std::string_view workdir) {
    if (!spec.layers.empty() || layers.empty()) return {};
    for (size_t i = 0; i <= layers.size();) {
        size_t j = std::min(layers.find(':', i), layers.size());
        if (j > i) spec.layers.emplace_back(layers.substr(i, j - i));
        i = j + 1;
    }
    bool has_chdir = false;
    for (const auto& st : spec.steps) has_chdir |= st.kind == StepKind::chdir;
    if (!has_chdir && !workdir.empty())
        spec.steps.push_back(TRY(parse_step(StepKind::chdir, workdir)));
    return {};
}

}  // namespace kago::mount
