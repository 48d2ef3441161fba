// The cgroup v2 backend: one directory, controllers enabled in
// cgroup.subtree_control up the path, clone3(CLONE_INTO_CGROUP), cgroup.kill.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "cgroup/backend.hpp"
#include "core/parse.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

namespace kago::cgroup::detail {
namespace {

class V2 final : public Cgroup {
  public:
    V2(Hierarchy h, std::string parent_rel, bool dflt, std::string leaf)
        : h_(std::move(h)), parent_rel_(std::move(parent_rel)), default_parent_(dflt) {
        parent_dir_ = join_path(h_.mount, parent_rel_);
        dir_ = join_path(parent_dir_, leaf);
    }

    Version version() const override { return Version::v2; }
    const std::string& path() const override { return dir_; }
    const std::string& mount() const override { return h_.mount; }
    std::vector<std::string> dirs() const override { return {dir_}; }

    Status create(const Limits& limits, bool if_available, std::vector<std::string>& warnings,
                  std::vector<std::string>& skipped) override {
        for (int attempt = 0;; ++attempt) {
            auto r = create_once(limits, if_available, warnings, skipped);
            // A concurrent run removed the empty default parent between our
            // mkdir and the leaf's: do it again.
            if (!r && r.error().err == ENOENT && default_parent_ && attempt < 3) continue;
            return r;
        }
    }

    Status apply(const Setting& s) override {
        std::string file;
        for (const auto& f : s.files) {
            std::string p = join_path(dir_, f);
            if (!created_ || exists(p)) {  // not made (a dry run): the first name
                file = p;
                break;
            }
        }
        if (file.empty()) {
            errno = ENOENT;
            return for_option(s.option, sys_error(cat(join_path(dir_, s.files[0]))))
                .with_hint(s.files.size() > 1 ? "the kernel offers no I/O weight here (it needs the BFQ "
                                                "scheduler or io.cost)"
                                              : "the controller is not enabled in this cgroup");
        }
        auto r = sys::write_file(file.c_str(), s.value);
        if (r) return {};
        Error e = for_option(s.option, std::move(r).error());
        if (s.controller == "cpuset" && (e.err == EINVAL || e.err == ERANGE)) {
            std::string eff = read_or_empty(join_path(parent_dir_, s.files[0] + ".effective"));
            while (!eff.empty() && eff.back() == '\n') eff.pop_back();
            if (!eff.empty()) e.hint = cat("the parent cgroup offers ", s.files[0], " ", eff);
        } else if (s.controller == "io" && (e.err == EINVAL || e.err == ENODEV)) {
            e.hint = "io.max takes whole disks, not partitions (see lsblk)";
        }
        return e;
    }

    Result<JoinTarget> join_target() override {
        JoinTarget j;
        j.dir = TRY(sys::open(dir_.c_str(), O_RDONLY | O_DIRECTORY));
        j.dir_path = dir_;
        std::string procs = join_path(dir_, "cgroup.procs");
        j.procs.push_back(TRY(sys::open(procs.c_str(), O_WRONLY)));
        j.procs_paths.push_back(procs);
        return j;
    }

    Status kill() override {
        if (!created_) return {};
        std::string procs = join_path(dir_, "cgroup.procs");
        std::string events = join_path(dir_, "cgroup.events");
        if (keyed_value(read_or_empty(events), "populated").value_or(1) == 0) return {};
        std::string killf = join_path(dir_, "cgroup.kill");
        if (exists(killf)) {
            TRY(sys::write_file(killf.c_str(), "1"));
        } else {
            // Before 5.14: freeze, kill, thaw.
            std::string freeze = join_path(dir_, "cgroup.freeze");
            (void)sys::write_file(freeze.c_str(), "1");
            for (pid_t p : read_pids(procs)) (void)sys::kill(p, SIGKILL);
            (void)sys::write_file(freeze.c_str(), "0");
        }
        return wait_empty({procs}, events);
    }

    Stats stats() const override {
        Stats st;
        auto mem = read_or_empty(join_path(dir_, "memory.events"));
        st.oom_kills = keyed_value(mem, "oom_kill");
        auto peak = parse::u64(trim(read_or_empty(join_path(dir_, "memory.peak"))), "memory.peak");
        if (peak) st.memory_peak = *peak;
        st.pids_refused = keyed_value(read_or_empty(join_path(dir_, "pids.events")), "max");
        auto cpu = read_or_empty(join_path(dir_, "cpu.stat"));
        st.cpu_usage_usec = keyed_value(cpu, "usage_usec");
        st.cpu_user_usec = keyed_value(cpu, "user_usec");
        st.cpu_system_usec = keyed_value(cpu, "system_usec");
        st.nr_periods = keyed_value(cpu, "nr_periods");
        st.nr_throttled = keyed_value(cpu, "nr_throttled");
        st.throttled_usec = keyed_value(cpu, "throttled_usec");
        return st;
    }

    Status remove() override {
        Status r;
        if (created_) {
            r = remove_dir(dir_);
            if (r) created_ = false;
        }
        if (default_parent_) remove_if_empty(parent_dir_);
        return r;
    }

  private:
    static std::string trim(std::string s) {
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        return s;
    }

    Status create_once(const Limits& limits, bool if_available, std::vector<std::string>& warnings,
                       std::vector<std::string>& skipped) {
        if (!exists(parent_dir_)) {
            if (!default_parent_) {
                errno = ENOENT;
                return sys_error(cat("--parent: ", parent_dir_));
            }
            auto r = sys::mkdir(parent_dir_.c_str(), 0755, true);
            if (!r) {
                Error e = std::move(r).error();
                if (e.err == EACCES || e.err == EPERM || e.err == EROFS) e.hint = delegation_hint();
                return e;
            }
        }
        std::vector<std::string> needed = limits.controllers();
        std::vector<std::string> want = needed;
        for (const auto& c : report_controllers())
            if (!contains(want, c) && contains(h_.controllers, c)) want.push_back(c);

        // Drop controller c: an error when a limit needs it.
        auto give_up = [&](const std::string& c, Error e) -> Status {
            std::erase(want, c);
            if (!contains(needed, c)) return {};
            e = for_option(limits.options_for(c), std::move(e));
            if (!if_available) return e;
            warnings.push_back(cat(e.message(), "; running without ", limits.options_for(c)));
            skipped.push_back(c);
            return {};
        };

        // Enable the controllers in each cgroup from the root down to the parent.
        std::vector<std::string> chain;
        for (std::string p = parent_rel_;; p = parent_path(p)) {
            chain.insert(chain.begin(), p);
            if (p == "/") break;
        }
        std::vector<std::string> above_avail = h_.controllers;
        for (const auto& rel : chain) {
            std::string dir = join_path(h_.mount, rel);
            bool there = exists(dir);
            std::vector<std::string> avail =
                there ? parse_controller_list(read_or_empty(join_path(dir, "cgroup.controllers"))) : above_avail;
            std::vector<std::string> sub =
                there ? parse_controller_list(read_or_empty(join_path(dir, "cgroup.subtree_control")))
                      : std::vector<std::string>{};
            for (const auto& c : std::vector<std::string>(want)) {
                if (contains(sub, c)) continue;
                if (!contains(avail, c)) {
                    errno = ENOENT;
                    TRY(give_up(c, sys_error(cat("the ", c, " controller is not available in ", dir,
                                                 "/cgroup.controllers"))));
                    continue;
                }
                std::string f = join_path(dir, "cgroup.subtree_control");
                auto r = sys::write_file(f.c_str(), cat("+", c));
                if (!r) {
                    Error e = std::move(r).error();
                    if (e.err == EACCES || e.err == EPERM)
                        e.hint = delegation_hint();
                    else if (e.err == EBUSY)
                        e.hint = cat(dir, " has processes of its own, and cgroup v2 enables controllers for "
                                          "the children only of a cgroup without processes; use --parent");
                    TRY(give_up(c, std::move(e)));
                }
            }
            above_avail = avail;
        }
        auto r = sys::mkdir(dir_.c_str(), 0755, false);
        if (!r) {
            Error e = std::move(r).error();
            if (e.err == EACCES || e.err == EPERM || e.err == EROFS) e.hint = delegation_hint();
            return e;
        }
        created_ = r.value() == trace::Made::yes;
        return {};
    }

    Hierarchy h_;
    std::string parent_rel_;
    bool default_parent_;
    std::string parent_dir_;
    std::string dir_;
    bool created_ = false;
};

}  // namespace

std::unique_ptr<Cgroup> make_v2(const Hierarchy& h, std::string parent_rel, bool default_parent,
                                std::string leaf) {
    return std::make_unique<V2>(h, std::move(parent_rel), default_parent, std::move(leaf));
}

}  // namespace kago::cgroup::detail
