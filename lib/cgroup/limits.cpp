#include "cgroup/limits.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>

#include "core/parse.hpp"

namespace kago::cgroup {
namespace {

struct RlimitName {
    const char* name;
    int resource;
    bool bytes;  // takes K/M/G/T
};
constexpr RlimitName kRlimits[] = {
    {"as", RLIMIT_AS, true},           {"core", RLIMIT_CORE, true},
    {"cpu", RLIMIT_CPU, false},        {"data", RLIMIT_DATA, true},
    {"fsize", RLIMIT_FSIZE, true},     {"locks", RLIMIT_LOCKS, false},
    {"memlock", RLIMIT_MEMLOCK, true}, {"msgqueue", RLIMIT_MSGQUEUE, true},
    {"nice", RLIMIT_NICE, false},      {"nofile", RLIMIT_NOFILE, false},
    {"nproc", RLIMIT_NPROC, false},    {"rss", RLIMIT_RSS, true},
    {"rtprio", RLIMIT_RTPRIO, false},  {"rttime", RLIMIT_RTTIME, false},
    {"sigpending", RLIMIT_SIGPENDING, false}, {"stack", RLIMIT_STACK, true},
};

std::string num(uint64_t v) { return std::to_string(v); }

// v1 files take -1 for "no limit".
std::string v1_num(uint64_t v) { return v == kMax ? "-1" : num(v); }
std::string v2_num(uint64_t v) { return v == kMax ? "max" : num(v); }

bool is_unlimited_word(std::string_view s) {
    return s == "max" || s == "unlimited" || s == "infinity";
}

}  // namespace

const char* version_name(Version v) { return v == Version::v2 ? "cgroup v2" : "cgroup v1"; }

std::string Device::number() const { return cat(major, ":", minor); }

const char* io_kind_option(IoKind k) {
    switch (k) {
    case IoKind::read_bps: return "--io-read-bps";
    case IoKind::write_bps: return "--io-write-bps";
    case IoKind::read_iops: return "--io-read-iops";
    case IoKind::write_iops: return "--io-write-iops";
    }
    return "?";
}

std::vector<std::string> Limits::controllers() const {
    std::vector<std::string> c;
    if (memory || memory_high || memory_swap) c.push_back("memory");
    if (cpu_quota_us || cpu_weight) c.push_back("cpu");
    if (pids) c.push_back("pids");
    if (!io.empty() || io_weight) c.push_back("io");
    if (cpuset_cpus || cpuset_mems) c.push_back("cpuset");
    return c;
}

std::string Limits::options_for(std::string_view c) const {
    std::vector<std::string> o;
    if (c == "memory") {
        if (memory) o.push_back("--memory");
        if (memory_high) o.push_back("--memory-high");
        if (memory_swap) o.push_back("--memory-swap");
    } else if (c == "cpu") {
        if (cpu_quota_us) o.push_back("--cpus");
        if (cpu_weight) o.push_back("--cpu-weight");
    } else if (c == "pids") {
        if (pids) o.push_back("--pids");
    } else if (c == "io" || c == "blkio") {
        for (const auto& l : io)
            if (std::find(o.begin(), o.end(), io_kind_option(l.kind)) == o.end()) o.push_back(io_kind_option(l.kind));
        if (io_weight) o.push_back("--io-weight");
    } else if (c == "cpuset") {
        if (cpuset_cpus) o.push_back("--cpuset-cpus");
        if (cpuset_mems) o.push_back("--cpuset-mems");
    }
    std::string s;
    for (const auto& x : o) s += cat(s.empty() ? "" : ", ", x);
    return s;
}

std::string v1_controller(std::string_view v2_name) {
    if (v2_name == "io") return "blkio";
    return std::string(v2_name);
}

Result<uint64_t> parse_size(std::string_view s, std::string_view option) {
    return parse::size(s, option);
}

Result<uint64_t> parse_cpus(std::string_view s, std::string_view option) {
    if (s == "max") return kMax;
    auto q = parse::fraction(s, kCpuPeriodUs, option);
    if (!q) return std::move(q).error();
    if (*q == 0) return usage_error(cat(option, ": '", s, "' CPUs: must be more than 0"));
    if (*q < 1000)
        return usage_error(cat(option, ": '", s, "' CPUs: the smallest quota is 0.01 CPU"));
    return *q;
}

Result<uint64_t> parse_range(std::string_view s, uint64_t lo, uint64_t hi, std::string_view option) {
    auto v = parse::u64(s, option);
    if (!v) return std::move(v).error();
    if (*v < lo || *v > hi)
        return usage_error(cat(option, ": '", s, "' is out of range; expected ", lo, " to ", hi));
    return *v;
}

Result<uint64_t> parse_count(std::string_view s, std::string_view option) {
    if (s == "max") return kMax;
    auto v = parse::u64(s, option);
    if (!v) return std::move(v).error();
    if (*v == 0) return usage_error(cat(option, ": '", s, "': must be at least 1, or 'max'"));
    return *v;
}

Result<std::string> parse_cpu_list(std::string_view s, std::string_view option) {
    auto bad = [&](std::string_view why) {
        return usage_error(cat(option, ": '", s, "' is not a CPU list (", why,
                               "); expected numbers and ranges like 0-3,6"));
    };
    if (s.empty()) return bad("empty");
    for (const auto& part : parse::split(s, ',')) {
        if (part.empty()) return bad("empty item");
        auto dash = part.find('-');
        std::string_view a = std::string_view(part).substr(0, dash);
        std::string_view b =
            dash == std::string::npos ? std::string_view() : std::string_view(part).substr(dash + 1);
        auto digits = [](std::string_view x) {
            return !x.empty() && x.size() < 7 && x.find_first_not_of("0123456789") == std::string_view::npos;
        };
        if (!digits(a)) return bad(cat("'", part, "'"));
        if (dash != std::string::npos) {
            if (!digits(b)) return bad(cat("'", part, "' has no end"));
            if (std::stoul(std::string(b)) < std::stoul(std::string(a)))
                return bad(cat("'", part, "' ends before it starts"));
        }
    }
    return std::string(s);
}

Result<Device> parse_device(std::string_view s, std::string_view option) {
    Device d;
    d.shown = std::string(s);
    auto colon = s.find(':');
    if (!s.empty() && s[0] != '/' && colon != std::string_view::npos) {
        auto ma = parse::u64(s.substr(0, colon), option);
        auto mi = parse::u64(s.substr(colon + 1), option);
        if (!ma || !mi || *ma > 0xfff || *mi > 0xfffff)
            return usage_error(cat(option, ": '", s, "' is not a device number MAJ:MIN"));
        d.major = static_cast<unsigned>(*ma);
        d.minor = static_cast<unsigned>(*mi);
        return d;
    }
    if (s.empty() || s[0] != '/')
        return usage_error(cat(option, ": '", s, "' is neither a device path nor MAJ:MIN"));
    struct stat st;
    std::string path(s);
    if (::stat(path.c_str(), &st) != 0) {
        Error e = sys_error(cat(option, ": ", path));
        return e;
    }
    if (!S_ISBLK(st.st_mode))
        return usage_error(cat(option, ": ", path, ": not a block device"));
    d.major = ::major(st.st_rdev);
    d.minor = ::minor(st.st_rdev);
    return d;
}

Result<IoLimit> parse_io_limit(std::string_view s, IoKind kind) {
    const char* option = io_kind_option(kind);
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size())
        return usage_error(cat(option, ": '", s, "': expected DEVICE:RATE, e.g. /dev/sda:10M"));
    IoLimit l;
    l.kind = kind;
    std::string_view rate = s.substr(colon + 1);
    auto dev = parse_device(s.substr(0, colon), option);
    if (!dev) return std::move(dev).error();
    l.device = std::move(dev).value();
    bool bytes = kind == IoKind::read_bps || kind == IoKind::write_bps;
    auto r = bytes ? parse::size(rate, option) : parse_count(rate, option);
    if (!r) return std::move(r).error();
    if (*r == 0) return usage_error(cat(option, ": '", s, "': the rate must be more than 0"));
    l.rate = *r;
    return l;
}

std::vector<std::string> rlimit_names() {
    std::vector<std::string> v;
    for (const auto& r : kRlimits) v.emplace_back(r.name);
    return v;
}

Result<Rlimit> parse_rlimit(std::string_view s) {
    const std::string_view option = "--rlimit";
    auto eq = s.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == s.size())
        return usage_error(cat(option, ": '", s, "': expected NAME=SOFT[:HARD], e.g. nofile=1024"));
    std::string name(s.substr(0, eq));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (name.rfind("rlimit_", 0) == 0) name.erase(0, 7);
    const RlimitName* found = nullptr;
    for (const auto& r : kRlimits)
        if (name == r.name) found = &r;
    if (!found) {
        std::string all;
        for (const auto& r : kRlimits) all += cat(all.empty() ? "" : ", ", r.name);
        return usage_error(cat(option, ": unknown resource '", s.substr(0, eq), "'; expected one of ", all));
    }
    Rlimit r;
    r.resource = found->resource;
    r.name = found->name;
    std::string_view values = s.substr(eq + 1);
    auto colon = values.find(':');
    auto one = [&](std::string_view v) -> Result<uint64_t> {
        if (is_unlimited_word(v)) return kMax;
        if (found->bytes) return parse::size(v, cat(option, " ", r.name));
        return parse::u64(v, cat(option, " ", r.name));
    };
    auto soft = one(values.substr(0, colon));
    if (!soft) return std::move(soft).error();
    r.soft = r.hard = *soft;
    if (colon != std::string_view::npos) {
        auto hard = one(values.substr(colon + 1));
        if (!hard) return std::move(hard).error();
        r.hard = *hard;
    }
    if (r.soft > r.hard)
        return usage_error(cat(option, ": '", s, "': the soft limit is above the hard limit"));
    return r;
}

uint64_t weight_to_shares(uint64_t weight) {
    uint64_t s = weight * 1024 / 100;
    return std::clamp<uint64_t>(s, 2, 262144);
}

uint64_t shares_to_weight(uint64_t shares) {
    uint64_t w = shares * 100 / 1024;
    return std::clamp<uint64_t>(w, 1, 10000);
}

Result<std::vector<Setting>> plan(const Limits& l, Version v, bool if_available,
                                  std::vector<std::string>* warnings) {
    std::vector<Setting> out;
    auto add = [&](std::string option, std::string controller, std::vector<std::string> files,
                   std::string value) {
        out.push_back(Setting{std::move(option), std::move(controller), std::move(files), std::move(value)});
    };
    auto no_equivalent = [&](std::string_view option, std::string_view why) -> Status {
        std::string msg = cat(option, ": cgroup v1 has no equivalent (", why, ")");
        if (!if_available) return usage_error(msg);
        if (warnings) warnings->push_back(cat(msg, "; running without this limit"));
        return {};
    };

    if (v == Version::v2) {
        if (l.memory) add("--memory", "memory", {"memory.max"}, v2_num(*l.memory));
        if (l.memory_high) add("--memory-high", "memory", {"memory.high"}, v2_num(*l.memory_high));
        if (l.memory_swap) add("--memory-swap", "memory", {"memory.swap.max"}, v2_num(*l.memory_swap));
        if (l.cpu_quota_us) add("--cpus", "cpu", {"cpu.max"}, cat(v2_num(*l.cpu_quota_us), " ", kCpuPeriodUs));
        if (l.cpu_weight) add("--cpu-weight", "cpu", {"cpu.weight"}, num(*l.cpu_weight));
        if (l.pids) add("--pids", "pids", {"pids.max"}, v2_num(*l.pids));
        // io.max: one line per device, "MAJ:MIN rbps=N wbps=N riops=N wiops=N".
        for (const auto& io : l.io) {
            const char* key = io.kind == IoKind::read_bps    ? "rbps"
                              : io.kind == IoKind::write_bps ? "wbps"
                              : io.kind == IoKind::read_iops ? "riops"
                                                             : "wiops";
            add(io_kind_option(io.kind), "io", {"io.max"},
                cat(io.device.number(), " ", key, "=", v2_num(io.rate)));
        }
        if (l.io_weight)
            add("--io-weight", "io", {"io.weight", "io.bfq.weight"}, cat("default ", *l.io_weight));
        if (l.cpuset_cpus) add("--cpuset-cpus", "cpuset", {"cpuset.cpus"}, *l.cpuset_cpus);
        if (l.cpuset_mems) add("--cpuset-mems", "cpuset", {"cpuset.mems"}, *l.cpuset_mems);
        return out;
    }

    // cgroup v1
    if (l.memory) add("--memory", "memory", {"memory.limit_in_bytes"}, v1_num(*l.memory));
    if (l.memory_high)
        TRY(no_equivalent("--memory-high",
                          "memory.soft_limit_in_bytes only guides reclaim; it does not throttle"));
    if (l.memory_swap) {
        // v1 limits memory+swap together: memsw = memory + swap.
        uint64_t mem = l.memory.value_or(kMax);
        uint64_t total = (mem == kMax || *l.memory_swap == kMax || mem > kMax - *l.memory_swap)
                             ? kMax
                             : mem + *l.memory_swap;
        if (!l.memory)
            return usage_error("--memory-swap: on cgroup v1 it needs --memory (v1 limits memory+swap together)");
        add("--memory-swap", "memory", {"memory.memsw.limit_in_bytes"}, v1_num(total));
    }
    if (l.cpu_quota_us) {
        add("--cpus", "cpu", {"cpu.cfs_period_us"}, num(kCpuPeriodUs));
        add("--cpus", "cpu", {"cpu.cfs_quota_us"}, v1_num(*l.cpu_quota_us));
    }
    if (l.cpu_weight) add("--cpu-weight", "cpu", {"cpu.shares"}, num(weight_to_shares(*l.cpu_weight)));
    if (l.pids) add("--pids", "pids", {"pids.max"}, v2_num(*l.pids));
    for (const auto& io : l.io) {
        const char* file = io.kind == IoKind::read_bps    ? "blkio.throttle.read_bps_device"
                           : io.kind == IoKind::write_bps ? "blkio.throttle.write_bps_device"
                           : io.kind == IoKind::read_iops ? "blkio.throttle.read_iops_device"
                                                          : "blkio.throttle.write_iops_device";
        // 0 removes a v1 throttle rule: that is what "max" means.
        add(io_kind_option(io.kind), "blkio", {file},
            cat(io.device.number(), " ", io.rate == kMax ? std::string("0") : num(io.rate)));
    }
    if (l.io_weight)
        add("--io-weight", "blkio", {"blkio.bfq.weight", "blkio.weight"},
            num(std::clamp<uint64_t>(*l.io_weight, 10, 1000)));
    if (l.cpuset_cpus) add("--cpuset-cpus", "cpuset", {"cpuset.cpus"}, *l.cpuset_cpus);
    if (l.cpuset_mems) add("--cpuset-mems", "cpuset", {"cpuset.mems"}, *l.cpuset_mems);
    return out;
}

}  // namespace kago::cgroup
