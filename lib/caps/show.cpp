#include "caps/show.hpp"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "core/json.hpp"
#include "core/parse.hpp"
#include "core/proc.hpp"
#include "core/sys.hpp"

namespace kago::caps {
namespace {

constexpr const char* kNsTypes[] = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"};

// The inodes of the initial namespaces that the kernel fixes
// (include/linux/proc_ns.h); net and mnt have none.
uint64_t init_inode(std::string_view type) {
    if (type == "ipc") return 0xEFFFFFFFu;
    if (type == "uts") return 0xEFFFFFFEu;
    if (type == "user") return 0xEFFFFFFDu;
    if (type == "pid") return 0xEFFFFFFCu;
    if (type == "cgroup") return 0xEFFFFFFBu;
    if (type == "time") return 0xEFFFFFFAu;
    return 0;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

CapSet hex_caps(std::string_view s) {
    uint64_t v = 0;
    (void)proc::status_hex(s, v);  // 0 when absent or malformed
    return CapSet{v};
}

int small_int(std::string_view s) {
    auto n = parse::u64(trim(s), "value");
    return n && *n < 1000000 ? static_cast<int>(*n) : -1;
}

uint64_t ns_inode(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return 0;
    return st.st_ino;
}

std::string read_link(const std::string& path) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
    if (n < 0) return "";
    return std::string(buf, static_cast<size_t>(n));
}

const char* seccomp_mode(int m) {
    switch (m) {
    case 0: return "disabled";
    case 1: return "strict";
    case 2: return "filter";
    default: return "unknown";
    }
}

const char* host_word(NsInfo::Host h) {
    switch (h) {
    case NsInfo::Host::Same: return "host";
    case NsInfo::Host::Own: return "own";
    case NsInfo::Host::Unknown: return "unknown";
    }
    return "unknown";
}

// "all except sys_resource" reads better than 39 names.
std::string caps_text(CapSet set) {
    CapSet missing = all_caps() - set;
    if (!missing.empty() && missing.list().size() * 2 < set.list().size())
        return cat("all except ", format_caps(missing));
    return format_caps(set);
}

std::string pad(std::string s, size_t n) {
    if (s.size() < n) s.resize(n, ' ');
    return s;
}

std::string caps_array(CapSet set) {
    std::string out = "[";
    for (int c : set.list()) out += cat(out.size() > 1 ? "," : "", json::escape(cap_name(c)));
    return out + "]";
}

std::string map_array(const std::vector<std::array<uint64_t, 3>>& m) {
    std::string out = "[";
    for (const auto& e : m) out += cat(out.size() > 1 ? "," : "", "[", e[0], ",", e[1], ",", e[2], "]");
    return out + "]";
}

std::string map_text(const std::vector<std::array<uint64_t, 3>>& m) {
    if (m.empty()) return "unreadable";
    std::string out;
    for (const auto& e : m) {
        if (!out.empty()) out += "; ";
        out += cat(e[0], " -> ", e[1], " (", e[2], ")");
    }
    if (m.size() == 1 && m[0][0] == 0 && m[0][1] == 0 && m[0][2] == 4294967295u)
        out += "  (the identity map: no user namespace)";
    return out;
}

}  // namespace

void parse_status(std::string_view text, ProcessState& s) {
    proc::StatusFields f = proc::parse_status(text);
    // A value is text: set only when the line is there.
    auto text_of = [](std::string_view v, std::string& out) {
        if (v.data()) out = std::string(v);
    };
    text_of(f.name, s.comm);
    text_of(f.uid, s.uid);
    text_of(f.gid, s.gid);
    text_of(f.groups, s.groups);
    if (f.cap_inh.data()) s.inheritable = hex_caps(f.cap_inh);
    if (f.cap_prm.data()) s.permitted = hex_caps(f.cap_prm);
    if (f.cap_eff.data()) s.effective = hex_caps(f.cap_eff);
    if (f.cap_bnd.data()) s.bounding = hex_caps(f.cap_bnd);
    if (f.cap_amb.data()) s.ambient = hex_caps(f.cap_amb);
    if (f.no_new_privs.data()) s.no_new_privs = small_int(f.no_new_privs);
    if (f.seccomp.data()) s.seccomp = small_int(f.seccomp);
    if (f.seccomp_filters.data()) s.seccomp_filters = small_int(f.seccomp_filters);
    for (auto* field : {&s.uid, &s.gid, &s.groups}) {
        for (auto& c : *field)
            if (c == '\t') c = ' ';
    }
}

std::vector<std::array<uint64_t, 3>> parse_id_map(std::string_view text) {
    std::vector<std::array<uint64_t, 3>> out;
    for (const auto& line : parse::split(text, '\n')) {
        unsigned long long a, b, c;
        if (sscanf(line.c_str(), "%llu %llu %llu", &a, &b, &c) == 3) out.push_back({a, b, c});
    }
    return out;
}

std::string parse_cgroup(std::string_view text) {
    auto lines = parse::split(text, '\n');
    for (const auto& l : lines)
        if (l.starts_with("0::")) return l.substr(3);
    for (const auto& l : lines) {
        auto c = l.find(':', l.find(':') + 1);
        if (c != std::string::npos) return l.substr(c + 1);
    }
    return "";
}

Result<ProcessState> inspect(std::string_view pid, const std::string& proc_root) {
    ProcessState s;
    std::string dir = cat(proc_root, "/", pid);
    // procfs's own file only (proc::read_status): a /proc that is a plain
    // directory of the root could claim any state.
    std::string path = cat(dir, "/status");
    std::string status(16384, '\0');
    long n;
    while ((n = proc::read_status(path.c_str(), status.data(), status.size())) >= 0 &&
           static_cast<size_t>(n) == status.size() - 1 && status.size() < (size_t{1} << 24))
        status.resize(status.size() * 4);  // a long Groups line: read it whole
    if (n < 0) {
        Error e = sys_error(cat("open ", path));
        if (e.err == EXDEV) {
            e.what = cat(path, ": not a procfs file");
            return std::move(e).with_hint("is /proc mounted? (mount-layers --proc)");
        }
        if (e.err == ENOENT && pid == "self")
            return std::move(e).with_hint("is /proc mounted? (mount-layers --proc)");
        if (e.err == ENOENT) e.what = cat("process ", pid);
        return e;
    }
    status.resize(static_cast<size_t>(n));
    s.pid = std::string(pid);
    if (pid == "self") {
        std::string real = read_link(dir);
        if (!real.empty()) s.pid = real;
    }
    parse_status(status, s);
    if (auto m = sys::read_file(cat(dir, "/uid_map").c_str())) s.uid_map = parse_id_map(*m);
    if (auto m = sys::read_file(cat(dir, "/gid_map").c_str())) s.gid_map = parse_id_map(*m);
    if (auto c = sys::read_file(cat(dir, "/cgroup").c_str())) s.cgroup = parse_cgroup(*c);
    s.root = read_link(cat(dir, "/root"));
    s.cwd = read_link(cat(dir, "/cwd"));
    std::string one = cat(proc_root, "/1/ns/");
    s.host_visible = ns_inode(one + "pid") == init_inode("pid");
    for (const char* t : kNsTypes) {
        NsInfo n;
        n.type = t;
        n.inode = ns_inode(cat(dir, "/ns/", t));
        if (n.inode != 0) {
            uint64_t ref = s.host_visible ? ns_inode(one + t) : init_inode(t);
            if (ref != 0) n.host = n.inode == ref ? NsInfo::Host::Same : NsInfo::Host::Own;
        }
        s.namespaces.push_back(n);
    }
    return s;
}

std::string format_table(const ProcessState& s) {
    std::string o;
    auto row = [&](std::string_view k, std::string_view v) { o += cat(pad(std::string(k), 16), v, "\n"); };
    row("process", cat(s.pid, s.comm.empty() ? "" : cat(" (", s.comm, ")")));
    row("uid", s.uid.empty() ? "unknown" : s.uid + "  (real effective saved fs)");
    row("gid", s.gid.empty() ? "unknown" : s.gid);
    row("groups", s.groups.empty() ? "none" : s.groups);
    o += "capabilities\n";
    row("  bounding", caps_text(s.bounding));
    row("  permitted", caps_text(s.permitted));
    row("  effective", caps_text(s.effective));
    row("  inheritable", caps_text(s.inheritable));
    row("  ambient", caps_text(s.ambient));
    row("no_new_privs", s.no_new_privs < 0 ? "unknown" : s.no_new_privs ? "1 (on)" : "0 (off)");
    std::string sc = seccomp_mode(s.seccomp);
    if (s.seccomp == 2 && s.seccomp_filters >= 0)
        sc += cat(" (", s.seccomp_filters, s.seccomp_filters == 1 ? " filter)" : " filters)");
    row("seccomp", sc);
    row("uid_map", map_text(s.uid_map));
    row("gid_map", map_text(s.gid_map));
    o += cat("namespaces      inode        ",
             s.host_visible ? "compared with PID 1 of the host" : "PID 1 of the host is not visible: compared with the initial namespaces' fixed inodes", "\n");
    for (const auto& n : s.namespaces)
        row(cat("  ", n.type), n.inode ? cat(pad(cat(n.inode), 13), host_word(n.host)) : "unreadable");
    row("cgroup", s.cgroup.empty() ? "unknown" : s.cgroup);
    row("root", s.root.empty() ? "unreadable" : s.root);
    row("cwd", s.cwd.empty() ? "unreadable" : s.cwd);
    return o;
}

std::string format_json(const ProcessState& s) {
    json::Object caps;
    caps.add_raw("bounding", caps_array(s.bounding))
        .add_raw("permitted", caps_array(s.permitted))
        .add_raw("effective", caps_array(s.effective))
        .add_raw("inheritable", caps_array(s.inheritable))
        .add_raw("ambient", caps_array(s.ambient));
    json::Object seccomp;
    seccomp.add("mode", seccomp_mode(s.seccomp));
    if (s.seccomp_filters >= 0) seccomp.add("filters", s.seccomp_filters);
    else seccomp.add_null("filters");
    json::Object ns;
    for (const auto& n : s.namespaces) {
        json::Object one;
        if (n.inode) one.add("inode", static_cast<uint64_t>(n.inode));
        else one.add_null("inode");
        one.add("host", host_word(n.host));
        ns.add_raw(n.type, one.str());
    }
    json::Object o;
    auto pid = parse::u64(s.pid, "pid");
    if (pid) o.add("pid", static_cast<uint64_t>(*pid));
    else o.add("pid", s.pid);
    o.add("comm", s.comm).add("uid", s.uid).add("gid", s.gid).add("groups", s.groups);
    o.add_raw("capabilities", caps.str());
    if (s.no_new_privs >= 0) o.add("no_new_privs", s.no_new_privs == 1);
    else o.add_null("no_new_privs");
    o.add_raw("seccomp", seccomp.str());
    o.add_raw("uid_map", map_array(s.uid_map)).add_raw("gid_map", map_array(s.gid_map));
    o.add("host_pid1_visible", s.host_visible);
    o.add_raw("namespaces", ns.str());
    o.add("cgroup", s.cgroup).add("root", s.root).add("cwd", s.cwd);
    return o.str();
}

}  // namespace kago::caps
