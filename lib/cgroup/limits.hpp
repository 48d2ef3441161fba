// The limits cg-limit sets, how their values are parsed, and which cgroup
// file each one maps to on v2 and on v1. Everything here is pure: it reads
// no cgroup file, so the unit tests cover it without privilege.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace kago::cgroup {

enum class Version { v1, v2 };
const char* version_name(Version v);  // "cgroup v1", "cgroup v2"

inline constexpr uint64_t kMax = UINT64_MAX;      // "max": no limit
inline constexpr uint64_t kCpuPeriodUs = 100000;  // the CFS period we use

// A block device, "8:0".
struct Device {
    unsigned major = 0;
    unsigned minor = 0;
    std::string shown;  // what the user wrote, for messages
    std::string number() const;  // "MAJ:MIN"
};

enum class IoKind { read_bps, write_bps, read_iops, write_iops };
const char* io_kind_option(IoKind k);  // "--io-read-bps"

struct IoLimit {
    IoKind kind;
    Device device;
    uint64_t rate = kMax;
};

struct Rlimit {
    int resource = 0;
    std::string name;  // "nofile"
    uint64_t soft = kMax;
    uint64_t hard = kMax;
};

struct Limits {
    std::optional<uint64_t> memory;       // bytes or kMax
    std::optional<uint64_t> memory_high;  // bytes or kMax
    std::optional<uint64_t> memory_swap;  // swap bytes beyond memory, or kMax
    std::optional<uint64_t> cpu_quota_us; // per kCpuPeriodUs
    std::optional<uint64_t> cpu_weight;   // 1..10000 (cgroup v2 scale)
    std::optional<uint64_t> pids;         // or kMax
    std::vector<IoLimit> io;
    std::optional<uint64_t> io_weight;    // 1..10000
    std::optional<std::string> cpuset_cpus;
    std::optional<std::string> cpuset_mems;

    // The controllers the limits need, with v2 names (memory, cpu, pids,
    // io, cpuset).
    std::vector<std::string> controllers() const;
    // The options given that need `controller` (v2 name): "--memory, --memory-swap".
    std::string options_for(std::string_view controller) const;
};

// --- value parsers: each error names the option ------------------------
Result<uint64_t> parse_size(std::string_view s, std::string_view option);
// "1.5" CPUs -> quota in microseconds per kCpuPeriodUs; "max" -> kMax.
Result<uint64_t> parse_cpus(std::string_view s, std::string_view option);
// An integer in [lo, hi].
Result<uint64_t> parse_range(std::string_view s, uint64_t lo, uint64_t hi, std::string_view option);
// A pids count or "max".
Result<uint64_t> parse_count(std::string_view s, std::string_view option);
// A CPU or memory-node list: "0-3,5". Returns it normalized (unchanged).
Result<std::string> parse_cpu_list(std::string_view s, std::string_view option);
// "MAJ:MIN" or the path of a block device (stat(2) is used for a path).
Result<Device> parse_device(std::string_view s, std::string_view option);
// "DEV:RATE": the rate is the text after the last ':'; sizes for bps,
// counts for iops, or "max".
Result<IoLimit> parse_io_limit(std::string_view s, IoKind kind);
// "NAME=SOFT[:HARD]", NAME as in prlimit(1): nofile, nproc, core...
Result<Rlimit> parse_rlimit(std::string_view s);
// The rlimit names, for --help and the man page.
std::vector<std::string> rlimit_names();

// cpu.weight (1..10000, default 100) <-> cpu.shares (2..262144, default
// 1024), as systemd converts them.
uint64_t weight_to_shares(uint64_t weight);
uint64_t shares_to_weight(uint64_t shares);

// --- the mapping -------------------------------------------------------
// One file write. `controller` uses the version's own name (blkio on v1).
// `alternatives` are files tried in turn (the first that exists is written).
struct Setting {
    std::string option;      // "--memory"
    std::string controller;  // "memory"
    std::vector<std::string> files;
    std::string value;
};

// The writes that set `limits` on `version`, in the order they must be
// made. An option that the version has no equivalent for is an Error
// naming the option (or, with if_available, it is left out and its
// warning is appended to `warnings`).
Result<std::vector<Setting>> plan(const Limits& limits, Version version, bool if_available,
                                  std::vector<std::string>* warnings);

// The v1 controller name for a v2 one ("io" -> "blkio").
std::string v1_controller(std::string_view v2_name);

}  // namespace kago::cgroup
