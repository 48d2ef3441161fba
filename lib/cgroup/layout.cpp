#include "cgroup/layout.hpp"

#include <algorithm>

#include "core/parse.hpp"
#include "core/sys.hpp"

namespace kago::cgroup {
namespace {

std::vector<std::string> words(std::string_view line) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ') ++j;
        if (j > i) out.emplace_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            auto oct = s.substr(i + 1, 3);
            if (oct.size() == 3 && oct.find_first_not_of("01234567") == std::string_view::npos) {
                out += static_cast<char>((oct[0] - '0') * 64 + (oct[1] - '0') * 8 + (oct[2] - '0'));
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

// A path is preferred when it is under /sys/fs/cgroup.
bool preferred(const std::string& p) { return p.rfind("/sys/fs/cgroup", 0) == 0; }

}  // namespace

bool contains(const std::vector<std::string>& v, std::string_view s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

std::vector<Mount> parse_cgroup_mountinfo(std::string_view text) {
    std::vector<Mount> out;
    for (const auto& line : parse::split(text, '\n')) {
        auto w = words(line);
        auto dash = std::find(w.begin(), w.end(), "-");
        if (dash == w.end() || w.size() < 5 || w.end() - dash < 4) continue;
        const std::string& fstype = *(dash + 1);
        if (fstype != "cgroup" && fstype != "cgroup2") continue;
        Mount m;
        m.root = unescape(w[3]);
        m.point = unescape(w[4]);
        m.v2 = fstype == "cgroup2";
        if (!m.v2) {
            static constexpr std::string_view not_controllers[] = {
                "rw", "ro", "none", "clone_children", "noprefix", "xattr",
                "cpuset_v2_mode", "favordynmods", "nsdelegate"};
            for (const auto& opt : parse::split(*(dash + 3), ',')) {
                bool named = opt.rfind("name=", 0) == 0;
                if (opt.empty() || (!named && opt.find('=') != std::string::npos) ||
                    std::find(std::begin(not_controllers), std::end(not_controllers), opt) !=
                        std::end(not_controllers))
                    continue;
                m.controllers.push_back(opt);
            }
        }
        out.push_back(std::move(m));
    }
    return out;
}

std::vector<Mount> parse_mountinfo(std::string_view text) {
    auto out = parse_cgroup_mountinfo(text);
    std::erase_if(out, [](Mount& m) {
        std::erase_if(m.controllers, [](const std::string& c) { return c.rfind("name=", 0) == 0; });
        return !m.v2 && m.controllers.empty();  // name=systemd and friends
    });
    return out;
}

std::vector<ProcCgroupLine> split_proc_cgroup(std::string_view text) {
    std::vector<ProcCgroupLine> out;
    for (const auto& line : parse::split(text, '\n')) {
        auto c1 = line.find(':');
        if (c1 == std::string::npos) continue;
        auto c2 = line.find(':', c1 + 1);
        if (c2 == std::string::npos) continue;
        out.push_back({line.substr(0, c1), line.substr(c1 + 1, c2 - c1 - 1), line.substr(c2 + 1)});
    }
    return out;
}

ProcCgroup parse_proc_cgroup(std::string_view text) {
    ProcCgroup pc;
    for (auto& line : split_proc_cgroup(text)) {
        if (line.id == "0" && line.controllers.empty()) {
            pc.v2 = std::move(line.path);
            continue;
        }
        ProcCgroup::V1 v;
        for (const auto& c : parse::split(line.controllers, ','))
            if (!c.empty() && c.find('=') == std::string::npos) v.controllers.push_back(c);
        if (v.controllers.empty()) continue;
        v.path = std::move(line.path);
        pc.v1.push_back(std::move(v));
    }
    return pc;
}

std::vector<std::string> parse_controller_list(std::string_view text) {
    std::vector<std::string> out;
    for (auto& w : words(text)) {
        while (!w.empty() && (w.back() == '\n' || w.back() == '\r')) w.pop_back();
        if (!w.empty()) out.push_back(w);
    }
    // words() splits on spaces only; a trailing newline may join two lines.
    std::vector<std::string> flat;
    for (const auto& w : out)
        for (const auto& p : parse::split(w, '\n'))
            if (!p.empty()) flat.push_back(p);
    return flat;
}

const std::vector<std::string>& report_controllers() {
    static const std::vector<std::string> v = {"memory", "pids", "cpu"};
    return v;
}

std::string parent_path(std::string_view p) {
    while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
    auto s = p.rfind('/');
    if (s == std::string_view::npos || s == 0) return "/";
    return std::string(p.substr(0, s));
}

std::string join_path(std::string_view a, std::string_view b) {
    while (!b.empty() && b.front() == '/') b.remove_prefix(1);
    std::string out(a);
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    if (b.empty()) return out.empty() ? "/" : out;
    if (out.empty() || out.back() != '/') out += '/';
    out += b;
    return out;
}

std::string normalize_parent(std::string_view value, const std::vector<Hierarchy>& hs) {
    std::string v(value);
    for (const auto& h : hs) {
        if (v == h.mount) return "/";
        if (v.size() > h.mount.size() && v.compare(0, h.mount.size(), h.mount) == 0 &&
            v[h.mount.size()] == '/')
            return join_path("/", v.substr(h.mount.size()));
    }
    std::string p = join_path("/", v);
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

Result<Layout> choose(const std::vector<Mount>& mounts, const ProcCgroup& self,
                      const std::vector<std::string>& v2_root_controllers,
                      const std::vector<std::string>& needed) {
    const Mount* v2 = nullptr;
    std::vector<const Mount*> v1;
    for (const auto& m : mounts) {
        if (m.v2) {
            if (!v2 || (preferred(m.point) && !preferred(v2->point))) v2 = &m;
        } else {
            v1.push_back(&m);
        }
    }
    auto v1_has = [&](std::string_view ctrl) {
        std::string n = v1_controller(ctrl);
        for (auto* m : v1)
            if (contains(m->controllers, n)) return true;
        return false;
    };
    bool use_v2 = false;
    if (v2) {
        if (v1.empty()) {
            use_v2 = true;
        } else {
            use_v2 = true;
            for (const auto& c : needed)
                if (!contains(v2_root_controllers, c)) use_v2 = false;
            for (const auto& c : report_controllers())
                if (!contains(v2_root_controllers, c) && v1_has(c)) use_v2 = false;
        }
    }
    if (!v2 && v1.empty()) {
        errno = ENOENT;
        return sys_error("no cgroup file system is mounted (see /proc/self/mountinfo)");
    }

    Layout layout;
    if (use_v2) {
        layout.version = Version::v2;
        Hierarchy h;
        h.mount = v2->point;
        h.controllers = v2_root_controllers;
        h.own = self.v2.value_or("/");
        if (v2->root != "/" && h.own.rfind(v2->root, 0) == 0) h.own = join_path("/", h.own.substr(v2->root.size()));
        for (const auto& c : needed)
            if (!contains(h.controllers, c)) layout.missing.push_back(c);
        layout.hierarchies.push_back(std::move(h));
        return layout;
    }

    layout.version = Version::v1;
    // The memory hierarchy first: its path is the one shown in KAGO_CGROUP.
    std::vector<std::string> want = {"memory", "pids", "cpuacct", "freezer"};
    for (const auto& c : needed) {
        std::string n = v1_controller(c);
        if (!contains(want, n)) want.push_back(n);
    }
    auto to_h = [&](const Mount* m) {
        Hierarchy h;
        h.mount = m->point;
        h.controllers = m->controllers;
        h.own.assign(1, '/');
        for (const auto& e : self.v1) {
            bool match = false;
            for (const auto& ec : e.controllers) match |= contains(m->controllers, ec);
            if (match) h.own = e.path;
        }
        if (m->root != "/" && h.own.rfind(m->root, 0) == 0) h.own = join_path("/", h.own.substr(m->root.size()));
        return h;
    };
    for (const auto& c : want) {
        const Mount* found = nullptr;
        for (auto* m : v1)
            if (contains(m->controllers, c) && (!found || (preferred(m->point) && !preferred(found->point))))
                found = m;
        if (!found) {
            bool is_needed = false;
            for (const auto& n : needed) is_needed |= v1_controller(n) == c;
            if (is_needed) layout.missing.push_back(c);
            continue;
        }
        bool dup = false;
        for (const auto& h : layout.hierarchies) dup |= h.mount == found->point;
        if (!dup) layout.hierarchies.push_back(to_h(found));
    }
    for (auto* m : v1) {
        bool dup = false;
        for (const auto& h : layout.all) dup |= h.mount == m->point;
        if (dup) continue;
        if (contains(m->controllers, "memory"))
            layout.all.insert(layout.all.begin(), to_h(m));
        else
            layout.all.push_back(to_h(m));
    }
    return layout;
}

Result<Layout> detect(const std::vector<std::string>& needed) {
    auto mi = sys::read_file("/proc/self/mountinfo");
    if (!mi) return std::move(mi).error();
    auto pc = sys::read_file("/proc/self/cgroup");
    if (!pc) return std::move(pc).error();
    auto mounts = parse_mountinfo(*mi);
    std::vector<std::string> v2_ctrls;
    const Mount* v2 = nullptr;
    for (const auto& m : mounts)
        if (m.v2 && (!v2 || (preferred(m.point) && !preferred(v2->point)))) v2 = &m;
    if (v2) {
        auto c = sys::read_file(join_path(v2->point, "cgroup.controllers").c_str());
        if (c) v2_ctrls = parse_controller_list(*c);
    }
    return choose(mounts, parse_proc_cgroup(*pc), v2_ctrls, needed);
}

}  // namespace kago::cgroup
