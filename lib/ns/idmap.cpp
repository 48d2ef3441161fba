#include "ns/idmap.hpp"

#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "core/child.hpp"
#include "core/exec.hpp"
#include "core/parse.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::ns {

namespace {
constexpr uint64_t kIdLimit = uint64_t{1} << 32;
constexpr size_t kMaxLines = 340;

// "/proc/1234/uid_map", or "/proc/CHILD/uid_map" in a dry run, where no
// child exists.
std::string proc_file(pid_t pid, std::string_view file) {
    return pid > 0 ? cat("/proc/", pid, "/", file) : cat("/proc/CHILD/", file);
}
}  // namespace

Result<IdMap> parse_map(std::string_view spec, std::string_view option) {
    IdMap map;
    if (spec.empty()) return usage_error(cat(option, " '': expected INSIDE:OUTSIDE:COUNT[,...]"));
    for (const auto& item : parse::split(spec, ',')) {
        auto f = parse::split(item, ':');
        if (f.size() != 3)
            return usage_error(
                cat(option, " '", spec, "': '", item, "' is not INSIDE:OUTSIDE:COUNT"));
        uint64_t v[3];
        for (int i = 0; i < 3; ++i) {
            auto n = parse::u64(f[i], cat(option, " '", item, "'"));
            if (!n) return std::move(n).error();
            if (*n >= kIdLimit)
                return usage_error(cat(option, " '", item, "': ", f[i], " is not a 32-bit id"));
            v[i] = *n;
        }
        map.push_back({static_cast<uint32_t>(v[0]), static_cast<uint32_t>(v[1]),
                       static_cast<uint32_t>(v[2])});
    }
    return map;
}

Result<IdMap> parse_maps(const std::vector<std::string>& specs, std::string_view option) {
    IdMap all;
    for (const auto& s : specs) {
        IdMap m = TRY(parse_map(s, option));
        all.insert(all.end(), m.begin(), m.end());
    }
    TRY(check_map(all, option));
    return all;
}

Status check_map(const IdMap& map, std::string_view option) {
    if (map.size() > kMaxLines)
        return usage_error(
            cat(option, ": ", map.size(), " ranges; the kernel takes at most ", kMaxLines));
    for (const auto& r : map) {
        std::string shown = cat(r.inside, ":", r.outside, ":", r.count);
        if (r.count == 0)
            return usage_error(cat(option, " '", shown, "': COUNT must be at least 1"));
        if (r.inside + uint64_t{r.count} > kIdLimit || r.outside + uint64_t{r.count} > kIdLimit)
            return usage_error(cat(option, " '", shown, "': the range goes past 4294967295"));
    }
    // Sort copies by each side; neighbours must not overlap.
    for (int side = 0; side < 2; ++side) {
        IdMap s = map;
        auto key = [side](const IdRange& r) { return side == 0 ? r.inside : r.outside; };
        std::sort(s.begin(), s.end(),
                  [&](const IdRange& a, const IdRange& b) { return key(a) < key(b); });
        for (size_t i = 1; i < s.size(); ++i) {
            if (uint64_t{key(s[i - 1])} + s[i - 1].count > key(s[i]))
                return usage_error(cat(option, ": ranges ", s[i - 1].inside, ":", s[i - 1].outside,
                                       ":", s[i - 1].count, " and ", s[i].inside, ":", s[i].outside,
                                       ":", s[i].count, " overlap ",
                                       side == 0 ? "inside" : "outside"));
        }
    }
    return {};
}

std::string map_text(const IdMap& map) {
    std::string out;
    for (const auto& r : map) out += cat(r.inside, " ", r.outside, " ", r.count, "\n");
    return out;
}

std::string map_spec(const IdMap& map) {
    std::string out;
    for (const auto& r : map)
        out += cat(out.empty() ? "" : ",", r.inside, ":", r.outside, ":", r.count);
    return out;
}

std::vector<SubRange> parse_subid(std::string_view text, std::string_view user, uint32_t id) {
    std::vector<SubRange> out;
    std::string idstr = std::to_string(id);
    for (const auto& line : parse::split(text, '\n')) {
        if (line.empty() || line[0] == '#') continue;
        auto f = parse::split(line, ':');
        if (f.size() != 3) continue;
        if (!(f[0] == idstr || (!user.empty() && f[0] == user))) continue;
        auto start = parse::u64(f[1], "start");
        auto count = parse::u64(f[2], "count");
        if (!start || !count || *count == 0 || *start + *count > kIdLimit) continue;
        out.push_back({static_cast<uint32_t>(*start), static_cast<uint32_t>(*count)});
    }
    return out;
}

Result<IdMap> auto_map(uint32_t id, const std::vector<SubRange>& ranges, std::string_view file) {
    if (ranges.empty())
        return Error{ENOENT, cat("--map-auto: no range for uid/gid ", id, " in ", file),
                     cat("add one, for example: usermod --add-subuids 100000-165535 --add-subgids "
                         "100000-165535 USER")};
    IdMap map{{0, id, 1}};
    uint64_t next = 1;
    for (const auto& r : ranges) {
        uint32_t count = r.count;
        if (next + count > kIdLimit) count = static_cast<uint32_t>(kIdLimit - next);
        if (count == 0) break;
        map.push_back({static_cast<uint32_t>(next), r.start, count});
        next += count;
    }
    TRY(check_map(map, cat("--map-auto (", file, ")")));
    return map;
}

bool initial_map(std::string_view self_map) {
    std::vector<std::string> w;
    std::string cur;
    for (char c : std::string(self_map) + "\n") {
        if (c == ' ' || c == '\t' || c == '\n') {
            if (!cur.empty()) w.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    return w.empty() || (w.size() == 3 && w[0] == "0" && w[1] == "0" && w[2] == "4294967295");
}

Result<IdMap> nested_auto_map(uint32_t id, std::string_view self_map, std::string_view what) {
    std::vector<std::pair<uint64_t, uint64_t>> inside;  // [start, end)
    for (const auto& line : parse::split(self_map, '\n')) {
        std::vector<uint64_t> v;
        for (const auto& w : parse::split(line, ' ')) {
            if (w.empty()) continue;
            auto n = parse::u64(w, what);
            if (!n) return std::move(n).error();
            v.push_back(*n);
        }
        if (v.empty()) continue;
        if (v.size() != 3 || v[0] + v[2] > kIdLimit) return usage_error(cat(what, ": unexpected line '", line, "'"));
        inside.push_back({v[0], v[0] + v[2]});
    }
    std::sort(inside.begin(), inside.end());
    IdMap map{{0, id, 1}};
    uint64_t next = 1;
    auto add = [&](uint64_t a, uint64_t b) {
        if (a >= b || map.size() >= kMaxLines) return;
        map.push_back({static_cast<uint32_t>(next), static_cast<uint32_t>(a), static_cast<uint32_t>(b - a)});
        next += b - a;
    };
    bool has_id = false;
    for (const auto& [a, b] : inside) {
        if (id >= a && id < b) {
            has_id = true;
            add(a, id);
            add(uint64_t{id} + 1, b);
        } else {
            add(a, b);
        }
    }
    if (!has_id) return usage_error(cat("--map-auto: ", what, " does not map id ", id));
    if (map.size() == 1)
        return Error{0, cat("--map-auto: this user namespace maps only id ", id, " (", what, ")"),
                     "the outer user namespace must map your /etc/subuid and /etc/subgid ranges: "
                     "net-setup --user-mode --map-auto, or unshare-run --user --map-auto as the outer one"};
    // Whatever no longer fits in 2^32 inside is left out.
    while (uint64_t{map.back().inside} + map.back().count > kIdLimit) {
        uint64_t room = kIdLimit - map.back().inside;
        if (room) map.back().count = static_cast<uint32_t>(room);
        else map.pop_back();
    }
    TRY(check_map(map, cat("--map-auto (", what, ")")));
    return map;
}

std::string user_name(std::string_view passwd, uint32_t uid) {
    std::string idstr = std::to_string(uid);
    for (const auto& line : parse::split(passwd, '\n')) {
        auto f = parse::split(line, ':');
        if (f.size() >= 3 && f[2] == idstr) return f[0];
    }
    return "";
}

Result<std::string> find_helper(std::string_view program, std::string_view path) {
    for (const auto& dir : parse::split(path, ':')) {
        if (dir.empty()) continue;
        std::string p = cat(dir, "/", program);
        if (::access(p.c_str(), X_OK) == 0) return p;
    }
    return Error{ENOENT, std::string(program),
                 "install the uidmap package (apt-get install uidmap)"};
}

std::vector<std::string> helper_argv(std::string_view program, pid_t pid, const IdMap& map) {
    std::vector<std::string> argv{std::string(program), pid > 0 ? std::to_string(pid) : "CHILD"};
    for (const auto& r : map) {
        argv.push_back(std::to_string(r.inside));
        argv.push_back(std::to_string(r.outside));
        argv.push_back(std::to_string(r.count));
    }
    return argv;
}

Result<MapPlan> plan_maps(const MapRequest& req, const Caller& c) {
    MapPlan p;
    bool need_helper = false;
    if (req.map_root) {
        p.uid = {{0, c.uid, 1}};
        p.gid = {{0, c.gid, 1}};
    } else if (req.map_auto && !initial_map(c.self_uid_map)) {
        // Nested: the ids are the outer namespace's, which we may map as
        // its root (CAP_SETUID there); newuidmap cannot run here (its
        // owner, the host's root, is not mapped).
        if (!c.privileged)
            return usage_error("--map-auto in a user namespace needs uid 0 there (the outer namespace's root)");
        p.uid = TRY(nested_auto_map(c.uid, c.self_uid_map, "/proc/self/uid_map"));
        p.gid = TRY(nested_auto_map(c.gid, c.self_gid_map, "/proc/self/gid_map"));
    } else if (req.map_auto) {
        p.uid_helper = TRY(find_helper("newuidmap", c.path));
        p.gid_helper = TRY(find_helper("newgidmap", c.path));
        auto passwd = sys::read_file(c.passwd.c_str());
        std::string name = passwd ? user_name(*passwd, c.uid) : std::string();
        auto subuid = sys::read_file(c.subuid.c_str());
        if (!subuid) return std::move(subuid).error();
        auto subgid = sys::read_file(c.subgid.c_str());
        if (!subgid) return std::move(subgid).error();
        p.uid = TRY(auto_map(c.uid, parse_subid(*subuid, name, c.uid), c.subuid));
        p.gid = TRY(auto_map(c.gid, parse_subid(*subgid, name, c.gid), c.subgid));
        need_helper = true;
    }
    if (!req.map_user.empty()) p.uid = TRY(parse_maps(req.map_user, "--map-user"));
    if (!req.map_group.empty()) p.gid = TRY(parse_maps(req.map_group, "--map-group"));
    // Without privilege the kernel accepts one line mapping the writer's own
    // id; anything else goes through the setuid helpers, which check
    // /etc/subuid and /etc/subgid.
    auto own_only = [](const IdMap& m, uint32_t id) {
        return m.size() == 1 && m[0].outside == id && m[0].count == 1;
    };
    bool uid_helper = !p.uid.empty() && (need_helper || (!c.privileged && !own_only(p.uid, c.uid)));
    bool gid_helper = !p.gid.empty() && (need_helper || (!c.privileged && !own_only(p.gid, c.gid)));
    if (uid_helper && p.uid_helper.empty()) p.uid_helper = TRY(find_helper("newuidmap", c.path));
    if (gid_helper && p.gid_helper.empty()) p.gid_helper = TRY(find_helper("newgidmap", c.path));
    if (!uid_helper) p.uid_helper.clear();
    if (!gid_helper) p.gid_helper.clear();
    // setgroups must be denied only where the kernel demands it: an
    // unprivileged writer of gid_map. newgidmap decides for itself.
    p.deny_setgroups = !p.gid.empty() && !gid_helper && !c.privileged;
    return p;
}

namespace {
struct HelperStart {
    const child::Exec* exec;
    int report;
};

// After clone (CLONE_VM|CLONE_VFORK): the prepared exec, or its failure
// sent as a child::Message.
int helper_main(void* arg) {
    const auto* h = static_cast<const HelperStart*>(arg);
    child::OnFailure on;
    on.report = h->report;
    child::exec_or_exit(*h->exec, on);
}

// Start `exec` as posix_spawn() would (child::start_shared() with
// CLONE_VFORK: no page tables to copy) and wait for it. Its exit code
// (128+N for a signal), or -1 with errno when it could not be started or
// executed.
long spawn_and_wait(const child::Exec& exec) {
    auto report = child::Channel::pipe("newuidmap's report");
    if (!report) {
        errno = report.error().err;
        return -1;
    }
    HelperStart h{&exec, report->child.get()};
    child::Process helper;
    {
        child::Stack stack;
        helper = child::Process(child::start_shared(helper_main, &h, stack, CLONE_VFORK));
    }
    if (!helper) return -1;
    report->child.reset();
    child::Message m;
    long got = child::receive(report->parent.get(), &m);  // end of file once it has exec'd
    auto waited = helper.wait();
    if (!waited) {
        errno = waited.error().err;
        return -1;
    }
    int status = *waited;
    if (got == 1 && m.kind == child::Kind::exec_failed) {
        errno = m.err;
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Status run_helper(const std::string& path, const std::vector<std::string>& argv) {
    // Built before the clone (core/child.hpp); argv[0] the full path.
    std::vector<std::string> args = argv;
    args[0] = path;
    child::Exec exec(args, -1);
    long r = trace::call(
        [&] { return cat("execve(", trace::quote(path), ", ", describe_argv(args), ", envp)"); },
        [&]() -> long { return spawn_and_wait(exec); });
    if (r == 0) return {};
    std::string shown;
    for (const auto& a : argv) shown += cat(shown.empty() ? "" : " ", a);
    if (r < 0) return sys_error(cat("run ", shown));
    return Error{
        0, cat(shown, ": exited with status ", r),
        cat("check the ranges of this user in /etc/sub", argv[0] == "newuidmap" ? "uid" : "gid")};
}
}  // namespace

bool own_maps_only(const MapPlan& p, uint32_t uid, uint32_t gid) {
    auto own = [](const IdMap& m, uint32_t id) {
        return m.size() == 1 && m[0].outside == id && m[0].count == 1;
    };
    return p.uid_helper.empty() && p.gid_helper.empty() && own(p.uid, uid) && own(p.gid, gid);
}

Status write_own_maps(const MapPlan& p) {
    TRY(sys::write_file("/proc/self/uid_map", map_text(p.uid)));
    TRY(sys::write_file("/proc/self/setgroups", "deny"));
    TRY(sys::write_file("/proc/self/gid_map", map_text(p.gid)));
    return {};
}

Status write_maps(const MapPlan& p, pid_t pid) {
    if (!p.uid.empty()) {
        if (!p.uid_helper.empty())
            TRY(run_helper(p.uid_helper, helper_argv("newuidmap", pid, p.uid)));
        else
            TRY(sys::write_file(proc_file(pid, "uid_map").c_str(), map_text(p.uid)));
    }
    if (!p.gid.empty()) {
        if (p.deny_setgroups) TRY(sys::write_file(proc_file(pid, "setgroups").c_str(), "deny"));
        if (!p.gid_helper.empty())
            TRY(run_helper(p.gid_helper, helper_argv("newgidmap", pid, p.gid)));
        else
            TRY(sys::write_file(proc_file(pid, "gid_map").c_str(), map_text(p.gid)));
    }
    return {};
}

}  // namespace kago::ns
