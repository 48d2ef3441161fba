// libFuzzer target: cg-limit's option values (lib/cgroup/limits): --memory
// and the other sizes, --cpus, --cpu-weight, --pids, --cpuset-cpus,
// --io-*-bps/iops DEVICE:RATE, --rlimit NAME=SOFT[:HARD]; and plan(), the
// cgroup files a set of limits turns into, on v1 and on v2.
#include <string>

#include "cgroup/limits.hpp"
#include "fuzz.hpp"

using namespace kago;
using namespace kago::cgroup;

namespace {

// "OPTION VALUE" lines, parsed as cg-limit parses its options, then planned.
void plan_lines(std::string_view text) {
    Limits l;
    for (auto line : fuzz::pieces(text, '\n')) {
        auto sp = line.find(' ');
        if (sp == std::string_view::npos) continue;
        auto opt = line.substr(0, sp), v = line.substr(sp + 1);
        if (opt == "memory") { if (auto r = parse_size(v, opt)) l.memory = *r; }
        else if (opt == "memory-high") { if (auto r = parse_size(v, opt)) l.memory_high = *r; }
        else if (opt == "memory-swap") { if (auto r = parse_size(v, opt)) l.memory_swap = *r; }
        else if (opt == "cpus") { if (auto r = parse_cpus(v, opt)) l.cpu_quota_us = *r; }
        else if (opt == "cpu-weight") { if (auto r = parse_range(v, 1, 10000, opt)) l.cpu_weight = *r; }
        else if (opt == "pids") { if (auto r = parse_count(v, opt)) l.pids = *r; }
        else if (opt == "io-weight") { if (auto r = parse_range(v, 1, 10000, opt)) l.io_weight = *r; }
        else if (opt == "cpuset-cpus") { if (auto r = parse_cpu_list(v, opt)) l.cpuset_cpus = *r; }
        else if (opt == "cpuset-mems") { if (auto r = parse_cpu_list(v, opt)) l.cpuset_mems = *r; }
        else if (opt == "io-read-bps") { if (auto r = parse_io_limit(v, IoKind::read_bps)) l.io.push_back(*r); }
        else if (opt == "io-write-iops") { if (auto r = parse_io_limit(v, IoKind::write_iops)) l.io.push_back(*r); }
    }
    for (auto c : l.controllers()) FUZZ_CHECK(!l.options_for(c).empty());
    for (auto version : {Version::v1, Version::v2})
        for (bool if_available : {false, true}) {
            std::vector<std::string> warnings;
            if (auto s = plan(l, version, if_available, &warnings))
                for (const auto& setting : *s) FUZZ_CHECK(!setting.files.empty());
        }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = fuzz::choose(data, size, "scwnldiRp");
    auto text = in.text;
    switch (in.kind) {
    case 0: (void)parse_size(text, "--memory"); break;
    case 1:
        if (auto q = parse_cpus(text, "--cpus")) FUZZ_CHECK(*q >= 1000);
        break;
    case 2:
        if (auto w = parse_range(text, 1, 10000, "--cpu-weight")) {
            FUZZ_CHECK(*w >= 1 && *w <= 10000);
            uint64_t shares = weight_to_shares(*w);
            FUZZ_CHECK(shares >= 2 && shares <= 262144);
            uint64_t back = shares_to_weight(shares);
            FUZZ_CHECK(back >= 1 && back <= 10000);
        }
        break;
    case 3:
        if (auto n = parse_count(text, "--pids")) FUZZ_CHECK(*n > 0);
        break;
    case 4:
        if (auto l = parse_cpu_list(text, "--cpuset-cpus")) FUZZ_CHECK(*l == text);
        break;
    case 5:
        // Device numbers only: a path is stat(2)ed.
        if (!text.empty() && text[0] != '/')
            if (auto d = parse_device(text, "--io-read-bps")) {
                auto again = parse_device(d->number(), "again");
                FUZZ_CHECK(again && again->major == d->major && again->minor == d->minor);
            }
        break;
    case 6:
        if (text.empty() || text[0] != '/')
            for (auto k : {IoKind::read_bps, IoKind::write_bps, IoKind::read_iops, IoKind::write_iops})
                if (auto l = parse_io_limit(text, k)) FUZZ_CHECK(l->rate > 0);
        break;
    case 7:
        if (auto r = parse_rlimit(text)) FUZZ_CHECK(r->soft <= r->hard);
        break;
    case 8: plan_lines(text); break;
    }
    return 0;
}
