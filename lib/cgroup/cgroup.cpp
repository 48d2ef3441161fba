#include "cgroup/cgroup.hpp"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup/backend.hpp"
#include "core/parse.hpp"
#include "core/proc.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::cgroup {
namespace detail {

bool exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

std::string read_or_empty(const std::string& path) {
    auto r = sys::read_file(path.c_str());
    return r ? *r : std::string();
}

std::vector<pid_t> read_pids(const std::string& procs_path) {
    std::vector<pid_t> out;
    for (const auto& line : parse::split(read_or_empty(procs_path), '\n')) {
        auto v = parse::u64(line, "pid");
        if (v && *v > 0) out.push_back(static_cast<pid_t>(*v));
    }
    return out;
}

void reap_children() {
    for (;;) {
        int ws;
        pid_t r = ::waitpid(-1, &ws, WNOHANG | __WALL);
        if (r <= 0) return;
    }
}

namespace {
void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    ::nanosleep(&ts, nullptr);
}
}  // namespace

Status remove_dir(const std::string& path) {
    // Child cgroups the container made go first, deepest first.
    if (DIR* d = ::opendir(path.c_str())) {
        std::vector<std::string> subs;
        while (struct dirent* e = ::readdir(d))
            if (e->d_type == DT_DIR && e->d_name[0] != '.') subs.push_back(join_path(path, e->d_name));
        ::closedir(d);
        for (const auto& sub : subs) TRY(remove_dir(sub));
    }
    long r = trace::call([&] { return cat("rmdir(", trace::quote(path), ")"); },
                         [&]() -> long {
                             for (int i = 0; i < 200; ++i) {
                                 if (::rmdir(path.c_str()) == 0) return 0;
                                 if (errno == ENOENT) return 0;
                                 if (errno != EBUSY) return -1;
                                 reap_children();
                                 nap_ms(10);
                             }
                             return -1;
                         });
    if (r == 0) return {};
    return sys_error(cat("remove cgroup ", path));
}

void remove_if_empty(const std::string& path) {
    if (!exists(path)) return;
    (void)trace::call([&] { return cat("rmdir(", trace::quote(path), ")"); },
                      [&] { return ::rmdir(path.c_str()); });
}

Status wait_empty(const std::vector<std::string>& procs_paths, const std::string& events) {
    for (int i = 0; i < 1000; ++i) {
        bool empty = events.empty() || keyed_value(read_or_empty(events), "populated").value_or(0) == 0;
        for (const auto& p : procs_paths) {
            for (pid_t pid : read_pids(p)) {
                empty = false;
                ::kill(pid, SIGKILL);
            }
        }
        reap_children();
        if (empty) return {};
        nap_ms(10);
    }
    errno = EBUSY;
    return sys_error(cat("processes still in ", procs_paths.empty() ? "" : procs_paths[0], " after SIGKILL"));
}

Error for_option(std::string_view option, Error e) {
    if (!option.empty()) e.what = cat(option, ": ", e.what);
    return e;
}

}  // namespace detail

std::string Cgroup::relative() const {
    const std::string& p = path();
    const std::string& m = mount();
    if (p.size() > m.size() && p.compare(0, m.size(), m) == 0) return p.substr(m.size());
    return p;
}

std::string default_parent(const Hierarchy& h, Version v) {
    if (h.own == "/" || h.own.empty()) return "/kago";
    if (v == Version::v1) return join_path(h.own, "kago");
    std::string up = parent_path(h.own);
    if (::access(join_path(h.mount, up).c_str(), W_OK) == 0) return join_path(up, "kago");
    return join_path(h.own, "kago");
}

Result<std::unique_ptr<Cgroup>> make(const Layout& layout, std::string_view parent, std::string leaf) {
    if (layout.hierarchies.empty()) {
        errno = ENOENT;
        return sys_error("no cgroup hierarchy offers the controllers needed");
    }
    bool dflt = parent.empty();
    std::string rel = dflt ? "" : normalize_parent(parent, layout.hierarchies);
    if (layout.version == Version::v2) {
        const auto& h = layout.hierarchies[0];
        if (dflt) rel = default_parent(h, Version::v2);
        return detail::make_v2(h, rel, dflt, std::move(leaf));
    }
    return detail::make_v1(layout.hierarchies, layout.missing, rel, dflt, std::move(leaf));
}

namespace {
// The leaf names the pid of the cg-limit that made it. A zombie is dead
// (proc::running): it will never remove its cgroup.
// Whether the supervisor of a leaf (parse_leaf()) still runs: the pid and
// its start time (proc::alive). A NAME.PID leaf has no start time: a
// running cg-limit with that pid is taken for its owner.
bool supervisor_alive(const proc::Owner& o) {
    if (o.start != 0) return proc::alive(o);
    auto st = proc::read_stat(o.pid);
    return st && st->comm == "cg-limit" && proc::running(*st);
}

// A leaf of a supervisor that is gone (not ours).
bool dead_leaf(const char* name) {
    auto l = parse_leaf(name);
    return l && l->owner.pid != ::getpid() && !supervisor_alive(l->owner);
}
}  // namespace

namespace {
// A v1 freezer leaf that a killed cg-limit left FROZEN (a SIGKILL between
// its freeze and its thaw in kill()): its processes, SIGKILLed or with
// PR_SET_PDEATHSIG pending, cannot end while frozen, and the cgroup can
// never be removed. Thaw it; returns its cgroup.procs when it was frozen.
std::string thaw_if_frozen(const std::string& dir) {
    std::string state = join_path(dir, "freezer.state");
    std::string now = detail::read_or_empty(state);
    while (!now.empty() && (now.back() == '\n' || now.back() == ' ')) now.pop_back();
    if (now.empty() || now == "THAWED") return "";
    (void)sys::write_file(state.c_str(), "THAWED");
    return join_path(dir, "cgroup.procs");
}
}  // namespace

std::vector<std::string> reap_leftovers(const Layout& layout, std::string_view parent) {
    std::vector<std::string> removed;
    bool first = true;
    const auto& hs = layout.all.empty() ? layout.hierarchies : layout.all;
    // First the frozen leaves of dead owners: thawed, their processes end
    // (they are not killed here: nothing is removed while a process of the
    // container runs), for up to 1 s, before the rmdirs below.
    std::vector<std::string> thawed;
    for (const auto& h : hs) {
        std::string rel = parent.empty() ? default_parent(h, layout.version)
                                         : normalize_parent(parent, layout.hierarchies);
        std::string pdir = join_path(h.mount, rel);
        DIR* d = ::opendir(pdir.c_str());
        if (!d) continue;
        while (struct dirent* e = ::readdir(d)) {
            if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
            if (!dead_leaf(e->d_name)) continue;
            std::string procs = thaw_if_frozen(join_path(pdir, e->d_name));
            if (!procs.empty()) thawed.push_back(procs);
        }
        ::closedir(d);
    }
    for (int i = 0; i < 100 && !thawed.empty(); ++i) {
        std::erase_if(thawed, [](const std::string& p) { return detail::read_pids(p).empty(); });
        if (!thawed.empty()) detail::nap_ms(10);
    }
    for (const auto& h : hs) {
        std::string rel = parent.empty() ? default_parent(h, layout.version)
                                         : normalize_parent(parent, layout.hierarchies);
        std::string pdir = join_path(h.mount, rel);
        DIR* d = ::opendir(pdir.c_str());
        if (!d) {
            first = false;
            continue;
        }
        std::vector<std::string> names;
        while (struct dirent* e = ::readdir(d)) {
            if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
            if (dead_leaf(e->d_name)) names.emplace_back(e->d_name);
        }
        ::closedir(d);
        bool any = false;
        for (const auto& n : names) {
            std::string dir = join_path(pdir, n);
            long r = trace::call([&] { return cat("rmdir(", trace::quote(dir), ")"); },
                                 [&] { return ::rmdir(dir.c_str()); });
            any |= r == 0;
            if (r == 0 && first) removed.push_back(join_path(rel, n));
        }
        // The default parent goes with its last leaf, as at a normal exit.
        if (any && parent.empty()) detail::remove_if_empty(pdir);
        first = false;
    }
    return removed;
}

Status set_up(Cgroup& cg, const Limits& limits, const std::vector<Setting>& settings, bool if_available,
              std::vector<std::string>& warnings) {
    std::vector<std::string> skipped;
    TRY(cg.create(limits, if_available, warnings, skipped));
    for (const auto& s : settings) {
        bool skip = false;
        for (const auto& c : skipped) skip |= s.controller == c || s.controller == v1_controller(c);
        if (skip) continue;
        if (auto r = cg.apply(s); !r) {
            if (!if_available || r.error().err != ENOENT) return r;
            warnings.push_back(cat(r.error().message(), "; running without ", s.option));
        }
    }
    return {};
}

}  // namespace kago::cgroup
