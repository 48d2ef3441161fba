// The cgroup v1 backend: the same relative path in each needed hierarchy,
// the child writes its pid into each cgroup.procs, freeze and kill.
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "cgroup/backend.hpp"
#include "core/parse.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::cgroup::detail {
namespace {

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

class V1 final : public Cgroup {
  public:
    struct H {
        Hierarchy h;
        std::string parent_dir;
        std::string dir;
        bool created = false;
    };

    V1(const std::vector<Hierarchy>& hs, std::vector<std::string> missing, const std::string& parent_rel,
       bool dflt, const std::string& leaf)
        : missing_(std::move(missing)), default_parent_(dflt) {
        for (const auto& h : hs) {
            H x;
            x.h = h;
            x.parent_dir = join_path(h.mount, dflt ? default_parent(h, Version::v1) : parent_rel);
            x.dir = join_path(x.parent_dir, leaf);
            hs_.push_back(std::move(x));
        }
    }

    Version version() const override { return Version::v1; }
    const std::string& path() const override { return hs_[0].dir; }
    const std::string& mount() const override { return hs_[0].h.mount; }
    std::vector<std::string> dirs() const override {
        std::vector<std::string> d;
        for (const auto& x : hs_) d.push_back(x.dir);
        return d;
    }

    Status create(const Limits& limits, bool if_available, std::vector<std::string>& warnings,
                  std::vector<std::string>& skipped) override {
        for (const auto& c : missing_) {
            std::string v2name = c == "blkio" ? "io" : c;
            errno = ENOENT;
            Error e = for_option(limits.options_for(v2name),
                                 sys_error(cat("the ", c, " controller: no cgroup v1 hierarchy has it (see /proc/cgroups)")));
            if (!if_available) return e;
            warnings.push_back(cat(e.message(), "; running without ", limits.options_for(v2name)));
            skipped.push_back(v2name);
        }
        for (auto& x : hs_) {
            bool cpuset = contains(x.h.controllers, "cpuset");
            if (!exists(x.parent_dir)) {
                if (!default_parent_) {
                    errno = ENOENT;
                    return sys_error(cat("--parent: ", x.parent_dir));
                }
                TRY(mkdir(x.parent_dir));
                if (cpuset) TRY(copy_cpuset(parent_path(x.parent_dir), x.parent_dir));
            }
            x.created = TRY(mkdir(x.dir)) == trace::Made::yes;
            if (cpuset) TRY(copy_cpuset(x.parent_dir, x.dir));
        }
        return {};
    }

    Status apply(const Setting& s) override {
        const H* x = find(s.controller);
        if (!x) {
            errno = ENOENT;
            return for_option(s.option, sys_error(cat("the ", s.controller, " controller")));
        }
        std::string file;
        for (const auto& f : s.files) {
            std::string p = join_path(x->dir, f);
            if (!x->created || exists(p)) {  // not made (a dry run): the first name
                file = p;
                break;
            }
        }
        if (file.empty()) {
            errno = ENOENT;
            Error e = for_option(s.option, sys_error(join_path(x->dir, s.files[0])));
            if (s.files.size() > 1)
                e.hint = "the kernel offers no blkio weight here (it needs the BFQ scheduler with group support)";
            else if (s.files[0].find("memsw") != std::string::npos)
                e.hint = "swap accounting is off: boot with swapaccount=1";
            return e;
        }
        auto r = sys::write_file(file.c_str(), s.value);
        if (r) return {};
        Error e = for_option(s.option, std::move(r).error());
        if (s.controller == "cpuset" && (e.err == EINVAL || e.err == ERANGE)) {
            std::string avail = trim(read_or_empty(join_path(x->parent_dir, s.files[0])));
            if (!avail.empty()) e.hint = cat("the parent cgroup offers ", s.files[0], " ", avail);
        } else if (s.controller == "blkio" && (e.err == EINVAL || e.err == ENODEV)) {
            e.hint = "blkio throttling takes whole disks, not partitions (see lsblk)";
        }
        return e;
    }

    Result<JoinTarget> join_target() override {
        JoinTarget j;
        for (const auto& x : hs_) {
            std::string p = join_path(x.dir, "cgroup.procs");
            j.procs.push_back(TRY(sys::open(p.c_str(), O_WRONLY)));
            j.procs_paths.push_back(p);
        }
        return j;
    }

    Status kill() override {
        std::vector<std::string> procs;
        bool any = false;
        for (const auto& x : hs_) {
            if (!x.created) continue;
            procs.push_back(join_path(x.dir, "cgroup.procs"));
            any |= !read_pids(procs.back()).empty();
        }
        if (!any) return {};
        // Freeze first so that nothing forks while we kill.
        const H* fz = find("freezer");
        if (fz && fz->created) {
            std::string state = join_path(fz->dir, "freezer.state");
            if (sys::write_file(state.c_str(), "FROZEN")) {
                for (int i = 0; i < 100 && trim(read_or_empty(state)) != "FROZEN"; ++i) {
                    struct timespec ts = {0, 10000000L};
                    ::nanosleep(&ts, nullptr);
                }
                for (pid_t p : read_pids(join_path(fz->dir, "cgroup.procs"))) (void)sys::kill(p, SIGKILL);
                (void)sys::write_file(state.c_str(), "THAWED");
            }
        } else {
            for (const auto& p : procs)
                for (pid_t pid : read_pids(p)) (void)sys::kill(pid, SIGKILL);
        }
        return wait_empty(procs);
    }

    Stats stats() const override {
        Stats st;
        if (const H* m = find("memory")) {
            st.oom_kills = keyed_value(read_or_empty(join_path(m->dir, "memory.oom_control")), "oom_kill");
            auto peak = parse::u64(trim(read_or_empty(join_path(m->dir, "memory.max_usage_in_bytes"))), "peak");
            if (peak) st.memory_peak = *peak;
        }
        if (const H* p = find("pids"))
            st.pids_refused = keyed_value(read_or_empty(join_path(p->dir, "pids.events")), "max");
        if (const H* c = find("cpu")) {
            auto cpu = read_or_empty(join_path(c->dir, "cpu.stat"));
            st.nr_periods = keyed_value(cpu, "nr_periods");
            st.nr_throttled = keyed_value(cpu, "nr_throttled");
            if (auto ns = keyed_value(cpu, "throttled_time")) st.throttled_usec = *ns / 1000;
        }
        if (const H* a = find("cpuacct")) {
            auto ns = [&](const char* f) -> std::optional<uint64_t> {
                auto v = parse::u64(trim(read_or_empty(join_path(a->dir, f))), f);
                if (v) return *v / 1000;
                return std::nullopt;
            };
            st.cpu_usage_usec = ns("cpuacct.usage");
            st.cpu_user_usec = ns("cpuacct.usage_user");
            st.cpu_system_usec = ns("cpuacct.usage_sys");
            if (!st.cpu_user_usec) {
                auto s = read_or_empty(join_path(a->dir, "cpuacct.stat"));
                long hz = ::sysconf(_SC_CLK_TCK);
                if (hz <= 0) hz = 100;
                if (auto u = keyed_value(s, "user")) st.cpu_user_usec = *u * 1000000 / static_cast<uint64_t>(hz);
                if (auto y = keyed_value(s, "system")) st.cpu_system_usec = *y * 1000000 / static_cast<uint64_t>(hz);
            }
        }
        return st;
    }

    Status remove() override {
        Status result;
        for (auto& x : hs_) {
            if (x.created) {
                auto r = remove_dir(x.dir);
                if (r)
                    x.created = false;
                else if (result)
                    result = std::move(r);
            }
            if (default_parent_) remove_if_empty(x.parent_dir);
        }
        return result;
    }

  private:
    static Result<trace::Made> mkdir(const std::string& dir) {
        auto r = sys::mkdir(dir.c_str(), 0755, false);
        if (r) return r;
        Error e = std::move(r).error();
        if (e.err == EACCES || e.err == EPERM || e.err == EROFS)
            e.hint = "cgroup v1 has no safe delegation: run cg-limit as root, or on a cgroup v2 system";
        return e;
    }

    // A new v1 cpuset starts with no CPUs and no memory nodes: nothing can
    // join it until both are set. Copy the parent's.
    static Status copy_cpuset(const std::string& from, const std::string& to) {
        for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
            std::string dst = join_path(to, f);
            if (!trace::dry_run() && !trim(read_or_empty(dst)).empty()) continue;
            std::string v = trim(read_or_empty(join_path(from, f)));
            if (v.empty() && !trace::dry_run()) continue;
            TRY(sys::write_file(dst.c_str(), v.empty() ? "(parent's)" : v));
        }
        return {};
    }

    const H* find(std::string_view controller) const {
        for (const auto& x : hs_)
            if (contains(x.h.controllers, controller)) return &x;
        return nullptr;
    }

    std::vector<H> hs_;
    std::vector<std::string> missing_;
    bool default_parent_;
};

}  // namespace

std::unique_ptr<Cgroup> make_v1(const std::vector<Hierarchy>& hs, std::vector<std::string> missing,
                                std::string parent_rel, bool default_parent, std::string leaf) {
    return std::make_unique<V1>(hs, std::move(missing), parent_rel, default_parent, leaf);
}

}  // namespace kago::cgroup::detail
