// Reading results and describing them: no cgroup file is touched here.
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <cstdio>

#include "cgroup/cgroup.hpp"
#include "core/json.hpp"
#include "core/parse.hpp"

namespace kago::cgroup {

std::string leaf_name(std::string_view name, const proc::Owner& owner) {
    if (owner.start == 0) return cat(name, ".", owner.pid);
    return cat(name, ".", owner.pid, ".", owner.start);
}

namespace {
// The number after the last dot of `s` (at most `digits` digits); the dot's
// position in `dot`. std::nullopt when there is none, or nothing before it.
std::optional<uint64_t> last_number(std::string_view s, size_t digits, size_t& dot) {
    dot = s.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == s.size()) return std::nullopt;
    auto d = s.substr(dot + 1);
    if (d.size() > digits || d.find_first_not_of("0123456789") != std::string_view::npos)
        return std::nullopt;
    uint64_t v = 0;
    for (char c : d) v = v * 10 + static_cast<uint64_t>(c - '0');
    return v;
}
}  // namespace

std::optional<Leaf> parse_leaf(std::string_view leaf) {
    size_t dot = 0, dot2 = 0;
    auto last = last_number(leaf, 19, dot);
    if (!last) return std::nullopt;
    auto before = last_number(leaf.substr(0, dot), 9, dot2);
    Leaf l;
    if (before && *before > 0) {  // NAME.PID.START
        l.name = std::string(leaf.substr(0, dot2));
        l.owner = proc::Owner{static_cast<pid_t>(*before), *last};
    } else {  // NAME.PID
        if (*last == 0 || *last > 999999999) return std::nullopt;
        l.name = std::string(leaf.substr(0, dot));
        l.owner = proc::Owner{static_cast<pid_t>(*last), 0};
    }
    return l;
}

std::optional<uint64_t> keyed_value(std::string_view text, std::string_view key) {
    for (const auto& line : parse::split(text, '\n')) {
        if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 && line[key.size()] == ' ') {
            auto v = parse::u64(std::string_view(line).substr(key.size() + 1), key);
            if (v) return *v;
        }
    }
    return std::nullopt;
}

namespace {
std::string seconds(uint64_t usec) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(usec) / 1e6);
    return buf;
}
std::string plural(uint64_t n, std::string_view one, std::string_view many) {
    return cat(n, " ", n == 1 ? one : many);
}
std::string cpus(uint64_t quota) {
    char buf[32];
    snprintf(buf, sizeof buf, "%g", static_cast<double>(quota) / static_cast<double>(kCpuPeriodUs));
    return buf;
}
}  // namespace

std::vector<std::string> describe_effects(const Limits& l, const Stats& st, int ws) {
    std::vector<std::string> out;
    if (st.oom_kills && *st.oom_kills > 0) {
        std::string limit = l.memory && *l.memory != kMax ? cat(" (", parse::human_size(*l.memory), ")") : "";
        bool main_killed = WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
        out.push_back(cat(main_killed ? "the container was killed by the memory limit"
                                      : "a process was killed by the memory limit",
                          limit, ": ", plural(*st.oom_kills, "OOM kill", "OOM kills")));
    }
    if (st.pids_refused && *st.pids_refused > 0) {
        std::string limit = l.pids && *l.pids != kMax ? cat(" (", *l.pids, ")") : "";
        out.push_back(cat(plural(*st.pids_refused, "fork attempt", "fork attempts"),
                          " refused by the pids limit", limit));
    }
    if (st.nr_throttled && *st.nr_throttled > 0) {
        std::string limit = l.cpu_quota_us && *l.cpu_quota_us != kMax
                                ? cat(" (", cpus(*l.cpu_quota_us), " CPUs)")
                                : "";
        std::string s = cat("throttled by the CPU limit", limit, " in ", *st.nr_throttled);
        if (st.nr_periods) s += cat(" of ", *st.nr_periods);
        s += " periods";
        if (st.throttled_usec) s += cat(", ", seconds(*st.throttled_usec), " in all");
        out.push_back(s);
    }
    return out;
}

std::string status_json(std::string_view name, std::string_view cgroup, const Stats& st, int ws) {
    json::Object o;
    o.add("name", name).add("cgroup", cgroup);
    if (WIFEXITED(ws)) {
        o.add("exit", WEXITSTATUS(ws)).add_null("signal");
    } else if (WIFSIGNALED(ws)) {
        o.add("exit", 128 + WTERMSIG(ws)).add("signal", WTERMSIG(ws));
    } else {
        o.add_null("exit").add_null("signal");
    }
    auto opt = [&](std::string_view key, const std::optional<uint64_t>& v) {
        if (v)
            o.add(key, *v);
        else
            o.add_null(key);
    };
    opt("oom_kills", st.oom_kills);
    opt("memory_peak", st.memory_peak);
    opt("pids_refused", st.pids_refused);
    opt("cpu_usage_usec", st.cpu_usage_usec);
    opt("cpu_user_usec", st.cpu_user_usec);
    opt("cpu_system_usec", st.cpu_system_usec);
    opt("nr_periods", st.nr_periods);
    opt("nr_throttled", st.nr_throttled);
    opt("throttled_usec", st.throttled_usec);
    return o.str();
}

std::string delegation_hint() {
    return "without root, cgroups need a delegated subtree: run it as\n"
           "  systemd-run --user --scope -p Delegate=yes cg-limit ...\n"
           "or ask root to chown a cgroup to you and pass it with --parent";
}

}  // namespace kago::cgroup
