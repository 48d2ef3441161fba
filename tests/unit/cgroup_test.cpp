// lib/cgroup: parsers, the option->file mapping on both versions, layout
// detection from mountinfo fixtures, the report. No privilege needed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cgroup/cgroup.hpp"
#include "cgroup/session.hpp"
#include "cgroup/layout.hpp"
#include "cgroup/limits.hpp"
#include "cgroup/spawn.hpp"

using namespace kago::cgroup;

TEST(CgroupParse, Sizes) {
    EXPECT_EQ(*parse_size("64M", "--memory"), 64ull << 20);
    EXPECT_EQ(*parse_size("1G", "--memory"), 1ull << 30);
    EXPECT_EQ(*parse_size("512k", "--memory"), 512ull << 10);
    EXPECT_EQ(*parse_size("2T", "--memory"), 2ull << 40);
    EXPECT_EQ(*parse_size("max", "--memory"), kMax);
    auto bad = parse_size("12Q", "--memory");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().what.find("--memory"), std::string::npos);
    EXPECT_NE(bad.error().what.find("12Q"), std::string::npos);
    EXPECT_FALSE(parse_size("", "--memory"));
    EXPECT_FALSE(parse_size("-1", "--memory"));
}

TEST(CgroupParse, Cpus) {
    EXPECT_EQ(*parse_cpus("1.5", "--cpus"), 150000u);
    EXPECT_EQ(*parse_cpus("0.2", "--cpus"), 20000u);
    EXPECT_EQ(*parse_cpus("2", "--cpus"), 200000u);
    EXPECT_EQ(*parse_cpus("max", "--cpus"), kMax);
    EXPECT_FALSE(parse_cpus("0", "--cpus"));
    EXPECT_FALSE(parse_cpus("0.001", "--cpus"));
    EXPECT_FALSE(parse_cpus("1,5", "--cpus"));
    EXPECT_FALSE(parse_cpus("-1", "--cpus"));
    EXPECT_NE(parse_cpus("x", "--cpus").error().what.find("--cpus"), std::string::npos);
}

TEST(CgroupParse, CountsAndRanges) {
    EXPECT_EQ(*parse_count("16", "--pids"), 16u);
    EXPECT_EQ(*parse_count("max", "--pids"), kMax);
    EXPECT_FALSE(parse_count("0", "--pids"));
    EXPECT_FALSE(parse_count("1k", "--pids"));
    EXPECT_EQ(*parse_range("100", 1, 10000, "--cpu-weight"), 100u);
    EXPECT_FALSE(parse_range("0", 1, 10000, "--cpu-weight"));
    EXPECT_FALSE(parse_range("10001", 1, 10000, "--cpu-weight"));
}

TEST(CgroupParse, CpuLists) {
    EXPECT_EQ(*parse_cpu_list("0", "--cpuset-cpus"), "0");
    EXPECT_EQ(*parse_cpu_list("0-3,6,8-9", "--cpuset-cpus"), "0-3,6,8-9");
    for (const char* bad : {"1-", "-1", "", "a", "1,,2", "3-1", "1-2-3", "0x1", "1 2"}) {
        auto r = parse_cpu_list(bad, "--cpuset-cpus");
        EXPECT_FALSE(r) << bad;
        if (!r) {
            EXPECT_NE(r.error().what.find("--cpuset-cpus"), std::string::npos);
        }
    }
}

TEST(CgroupParse, Devices) {
    auto d = parse_device("8:16", "--io-read-bps");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->number(), "8:16");
    auto null = parse_device("/dev/null", "--io-read-bps");
    ASSERT_FALSE(null);
    EXPECT_NE(null.error().what.find("not a block device"), std::string::npos);
    auto missing = parse_device("/dev/kago-no-such-disk", "--io-read-bps");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().err, ENOENT);
    EXPECT_NE(missing.error().what.find("--io-read-bps"), std::string::npos);
    EXPECT_FALSE(parse_device("sda", "--io-read-bps"));
    EXPECT_FALSE(parse_device("8:x", "--io-read-bps"));
}

TEST(CgroupParse, IoLimits) {
    auto l = parse_io_limit("8:0:10M", IoKind::read_bps);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->device.number(), "8:0");
    EXPECT_EQ(l->rate, 10ull << 20);
    auto iops = parse_io_limit("8:0:500", IoKind::write_iops);
    ASSERT_TRUE(iops);
    EXPECT_EQ(iops->rate, 500u);
    EXPECT_FALSE(parse_io_limit("8:0:10M", IoKind::write_iops));  // iops take counts
    EXPECT_FALSE(parse_io_limit("8:0", IoKind::read_bps));       // no rate: "0" is taken as the rate
    EXPECT_FALSE(parse_io_limit("8:0:", IoKind::read_bps));
    EXPECT_FALSE(parse_io_limit("10M", IoKind::read_bps));
    EXPECT_EQ(parse_io_limit("8:0:max", IoKind::read_bps)->rate, kMax);
}

TEST(CgroupParse, Rlimits) {
    auto r = parse_rlimit("nofile=64");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->resource, RLIMIT_NOFILE);
    EXPECT_EQ(r->soft, 64u);
    EXPECT_EQ(r->hard, 64u);
    auto c = parse_rlimit("core=0:unlimited");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->soft, 0u);
    EXPECT_EQ(c->hard, kMax);
    auto s = parse_rlimit("STACK=8M");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->resource, RLIMIT_STACK);
    EXPECT_EQ(s->soft, 8ull << 20);
    EXPECT_TRUE(parse_rlimit("RLIMIT_NPROC=100"));
    EXPECT_FALSE(parse_rlimit("nofile=64:32"));  // soft above hard
    EXPECT_FALSE(parse_rlimit("nofile=1k"));     // not a byte limit
    EXPECT_FALSE(parse_rlimit("bogus=1"));
    EXPECT_FALSE(parse_rlimit("nofile"));
    EXPECT_FALSE(parse_rlimit("=1"));
    EXPECT_EQ(describe_rlimit(*r), "prlimit(0, RLIMIT_NOFILE, {rlim_cur=64, rlim_max=64}, NULL)");
    EXPECT_EQ(describe_rlimit(*c), "prlimit(0, RLIMIT_CORE, {rlim_cur=0, rlim_max=RLIM_INFINITY}, NULL)");
}

TEST(CgroupParse, WeightShares) {
    EXPECT_EQ(weight_to_shares(100), 1024u);
    EXPECT_EQ(weight_to_shares(1), 10u);
    EXPECT_EQ(weight_to_shares(10000), 102400u);
    EXPECT_EQ(shares_to_weight(1024), 100u);
    EXPECT_EQ(shares_to_weight(2), 1u);
    EXPECT_EQ(shares_to_weight(262144), 10000u);
    for (uint64_t w : {1u, 50u, 100u, 200u, 5000u})
        EXPECT_NEAR(static_cast<double>(shares_to_weight(weight_to_shares(w))), static_cast<double>(w), 1.0);
}

namespace {
Limits full() {
    Limits l;
    l.memory = 64ull << 20;
    l.memory_swap = 32ull << 20;
    l.cpu_quota_us = 150000;
    l.cpu_weight = 200;
    l.pids = 32;
    l.io.push_back(*parse_io_limit("8:0:1M", IoKind::read_bps));
    l.io.push_back(*parse_io_limit("8:0:100", IoKind::write_iops));
    l.io_weight = 100;
    l.cpuset_cpus = "1";
    l.cpuset_mems = "0";
    return l;
}
std::string find(const std::vector<Setting>& v, std::string_view file) {
    for (const auto& s : v)
        if (s.files[0] == file) return s.value;
    return "<none>";
}
}  // namespace

TEST(CgroupPlan, V2Files) {
    auto p = plan(full(), Version::v2, false, nullptr);
    ASSERT_TRUE(p);
    EXPECT_EQ(find(*p, "memory.max"), "67108864");
    EXPECT_EQ(find(*p, "memory.swap.max"), "33554432");
    EXPECT_EQ(find(*p, "cpu.max"), "150000 100000");
    EXPECT_EQ(find(*p, "cpu.weight"), "200");
    EXPECT_EQ(find(*p, "pids.max"), "32");
    EXPECT_EQ(find(*p, "cpuset.cpus"), "1");
    EXPECT_EQ(find(*p, "cpuset.mems"), "0");
    EXPECT_EQ(find(*p, "io.weight"), "default 100");
    int io = 0;
    for (const auto& s : *p)
        if (s.files[0] == "io.max") {
            ++io;
            EXPECT_TRUE(s.value == "8:0 rbps=1048576" || s.value == "8:0 wiops=100") << s.value;
        }
    EXPECT_EQ(io, 2);
    Limits m;
    m.memory = kMax;
    m.memory_high = 1ull << 20;
    m.cpu_quota_us = kMax;
    m.pids = kMax;
    auto q = plan(m, Version::v2, false, nullptr);
    EXPECT_EQ(find(*q, "memory.max"), "max");
    EXPECT_EQ(find(*q, "memory.high"), "1048576");
    EXPECT_EQ(find(*q, "cpu.max"), "max 100000");
    EXPECT_EQ(find(*q, "pids.max"), "max");
}

TEST(CgroupPlan, V1Files) {
    auto p = plan(full(), Version::v1, false, nullptr);
    ASSERT_TRUE(p);
    EXPECT_EQ(find(*p, "memory.limit_in_bytes"), "67108864");
    EXPECT_EQ(find(*p, "memory.memsw.limit_in_bytes"), "100663296");  // memory + swap
    EXPECT_EQ(find(*p, "cpu.cfs_period_us"), "100000");
    EXPECT_EQ(find(*p, "cpu.cfs_quota_us"), "150000");
    EXPECT_EQ(find(*p, "cpu.shares"), "2048");
    EXPECT_EQ(find(*p, "pids.max"), "32");
    EXPECT_EQ(find(*p, "blkio.throttle.read_bps_device"), "8:0 1048576");
    EXPECT_EQ(find(*p, "blkio.throttle.write_iops_device"), "8:0 100");
    EXPECT_EQ(find(*p, "blkio.bfq.weight"), "100");
    EXPECT_EQ(find(*p, "cpuset.cpus"), "1");
    // The period is written before the quota; memory before memsw.
    size_t period = 0, quota = 0, mem = 0, memsw = 0;
    for (size_t i = 0; i < p->size(); ++i) {
        if ((*p)[i].files[0] == "cpu.cfs_period_us") period = i;
        if ((*p)[i].files[0] == "cpu.cfs_quota_us") quota = i;
        if ((*p)[i].files[0] == "memory.limit_in_bytes") mem = i;
        if ((*p)[i].files[0] == "memory.memsw.limit_in_bytes") memsw = i;
    }
    EXPECT_LT(period, quota);
    EXPECT_LT(mem, memsw);
    Limits m;
    m.memory = kMax;
    m.cpu_quota_us = kMax;
    EXPECT_EQ(find(*plan(m, Version::v1, false, nullptr), "memory.limit_in_bytes"), "-1");
    EXPECT_EQ(find(*plan(m, Version::v1, false, nullptr), "cpu.cfs_quota_us"), "-1");
}

TEST(CgroupPlan, V1HasNoEquivalent) {
    Limits l;
    l.memory_high = 1ull << 20;
    auto p = plan(l, Version::v1, false, nullptr);
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().what.find("--memory-high"), std::string::npos);
    EXPECT_NE(p.error().what.find("v1 has no equivalent"), std::string::npos);
    std::vector<std::string> warnings;
    auto w = plan(l, Version::v1, true, &warnings);
    ASSERT_TRUE(w);
    EXPECT_TRUE(w->empty());
    ASSERT_EQ(warnings.size(), 1u);
    Limits s;
    s.memory_swap = 1ull << 20;
    EXPECT_FALSE(plan(s, Version::v1, false, nullptr));  // needs --memory on v1
    EXPECT_TRUE(plan(s, Version::v2, false, nullptr));
}

TEST(CgroupPlan, Controllers) {
    auto c = full().controllers();
    EXPECT_EQ(c, (std::vector<std::string>{"memory", "cpu", "pids", "io", "cpuset"}));
    EXPECT_TRUE(Limits{}.controllers().empty());
    EXPECT_EQ(full().options_for("memory"), "--memory, --memory-swap");
    EXPECT_EQ(full().options_for("io"), "--io-read-bps, --io-write-iops, --io-weight");
    EXPECT_EQ(v1_controller("io"), "blkio");
    EXPECT_EQ(v1_controller("memory"), "memory");
}

// --- layout ----------------------------------------------------------------

namespace {
// This machine kind: v1 controllers, a cgroup2 with only hugetlb beside them.
const char* kHybrid =
    "30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n"
    "31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "34 30 0:30 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "35 30 0:31 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "36 30 0:32 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "37 30 0:33 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children\n"
    "38 30 0:34 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "39 30 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
const char* kHybridSelf =
    "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n";
const char* kPure =
    "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
}  // namespace

TEST(CgroupLayout, ParseMountinfo) {
    auto m = parse_mountinfo(kHybrid);
    ASSERT_EQ(m.size(), 8u);  // not the tmpfs, not name=systemd
    EXPECT_EQ(m[0].point, "/sys/fs/cgroup/cpu");
    EXPECT_EQ(m[0].controllers, std::vector<std::string>{"cpu"});
    EXPECT_EQ(m[6].controllers, std::vector<std::string>{"cpuset"});
    EXPECT_TRUE(m[7].v2);
    auto esc = parse_mountinfo("40 30 0:40 / /mnt/a\\040b rw - cgroup2 cgroup2 rw\n");
    ASSERT_EQ(esc.size(), 1u);
    EXPECT_EQ(esc[0].point, "/mnt/a b");
}

TEST(CgroupLayout, ParseCgroupMountinfoKeepsNamedHierarchies) {
    auto all = parse_cgroup_mountinfo(kHybrid);
    ASSERT_EQ(all.size(), 9u);  // not the tmpfs
    EXPECT_EQ(all[7].point, "/sys/fs/cgroup/systemd");
    EXPECT_EQ(all[7].controllers, std::vector<std::string>{"name=systemd"});
    // An old kernel's "none,name=..." and a release agent name no controller.
    auto old = parse_cgroup_mountinfo(
        "40 30 0:40 /x /mnt/s rw - cgroup cgroup rw,none,release_agent=/bin/a,name=s\n"
        "41 30 0:41 / /mnt/m rw - cgroup cgroup rw,memory,name=both\n");
    ASSERT_EQ(old.size(), 2u);
    EXPECT_EQ(old[0].root, "/x");
    EXPECT_EQ(old[0].controllers, std::vector<std::string>{"name=s"});
    EXPECT_TRUE(parse_mountinfo("40 30 0:40 / /mnt/s rw - cgroup cgroup rw,none,name=s\n").empty());
    auto both = parse_mountinfo("41 30 0:41 / /mnt/m rw - cgroup cgroup rw,memory,name=both\n");
    ASSERT_EQ(both.size(), 1u);
    EXPECT_EQ(both[0].controllers, std::vector<std::string>{"memory"});
}

TEST(CgroupLayout, ParseProcCgroup) {
    auto p = parse_proc_cgroup(kHybridSelf);
    ASSERT_TRUE(p.v2);
    EXPECT_EQ(*p.v2, "/");
    ASSERT_EQ(p.v1.size(), 4u);  // name=systemd is skipped
    EXPECT_EQ(p.v1[1].controllers, std::vector<std::string>{"memory"});
    EXPECT_EQ(p.v1[1].path, "/process_api/abc");
    EXPECT_EQ(parse_controller_list("cpuset cpu io memory pids\n"),
              (std::vector<std::string>{"cpuset", "cpu", "io", "memory", "pids"}));
    EXPECT_TRUE(parse_controller_list("\n").empty());
}

TEST(CgroupLayout, HybridWithControllersOnV1UsesV1) {
    auto l = choose(parse_mountinfo(kHybrid), parse_proc_cgroup(kHybridSelf), {"hugetlb"}, {"memory", "pids"});
    ASSERT_TRUE(l);
    EXPECT_EQ(l->version, Version::v1);
    ASSERT_GE(l->hierarchies.size(), 4u);
    EXPECT_EQ(l->hierarchies[0].mount, "/sys/fs/cgroup/memory");
    EXPECT_EQ(l->hierarchies[0].own, "/process_api/abc");
    EXPECT_TRUE(l->missing.empty());
    // Even with no limit, the report controllers live on v1 here.
    auto none = choose(parse_mountinfo(kHybrid), parse_proc_cgroup(kHybridSelf), {"hugetlb"}, {});
    EXPECT_EQ(none->version, Version::v1);
    // io is blkio on v1; cpuset joins its hierarchy.
    auto io = choose(parse_mountinfo(kHybrid), parse_proc_cgroup(kHybridSelf), {}, {"io", "cpuset"});
    bool blkio = false, cpuset = false;
    for (const auto& h : io->hierarchies) {
        blkio |= h.mount == "/sys/fs/cgroup/blkio";
        cpuset |= h.mount == "/sys/fs/cgroup/cpuset";
    }
    EXPECT_TRUE(blkio && cpuset);
}

TEST(CgroupLayout, PureV2) {
    auto l = choose(parse_mountinfo(kPure), parse_proc_cgroup("0::/user.slice/session-1.scope\n"),
                    {"cpuset", "cpu", "io", "memory", "pids"}, {"memory", "io"});
    ASSERT_TRUE(l);
    EXPECT_EQ(l->version, Version::v2);
    ASSERT_EQ(l->hierarchies.size(), 1u);
    EXPECT_EQ(l->hierarchies[0].mount, "/sys/fs/cgroup");
    EXPECT_EQ(l->hierarchies[0].own, "/user.slice/session-1.scope");
    EXPECT_TRUE(l->missing.empty());
    auto miss = choose(parse_mountinfo(kPure), parse_proc_cgroup("0::/\n"), {"memory"}, {"cpuset"});
    EXPECT_EQ(miss->version, Version::v2);
    EXPECT_EQ(miss->missing, std::vector<std::string>{"cpuset"});
}

TEST(CgroupLayout, V1MissingController) {
    std::string no_blkio =
        "31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
    auto l = choose(parse_mountinfo(no_blkio), parse_proc_cgroup("4:memory:/\n"), {}, {"io"});
    ASSERT_TRUE(l);
    EXPECT_EQ(l->version, Version::v1);
    EXPECT_EQ(l->missing, std::vector<std::string>{"blkio"});
    EXPECT_FALSE(choose({}, {}, {}, {}));
}

TEST(CgroupLayout, Paths) {
    EXPECT_EQ(parent_path("/a/b"), "/a");
    EXPECT_EQ(parent_path("/a"), "/");
    EXPECT_EQ(parent_path("/"), "/");
    EXPECT_EQ(join_path("/", "kago"), "/kago");
    EXPECT_EQ(join_path("/a/", "/b"), "/a/b");
    EXPECT_EQ(join_path("/sys/fs/cgroup", "/"), "/sys/fs/cgroup");
    std::vector<Hierarchy> hs = {{"/sys/fs/cgroup", {}, "/"}};
    EXPECT_EQ(normalize_parent("/sys/fs/cgroup/test", hs), "/test");
    EXPECT_EQ(normalize_parent("test/x", hs), "/test/x");
    EXPECT_EQ(normalize_parent("/test/", hs), "/test");
    EXPECT_EQ(normalize_parent("/sys/fs/cgroup", hs), "/");
    std::vector<Hierarchy> v1 = {{"/sys/fs/cgroup/memory", {}, "/"}, {"/sys/fs/cgroup/pids", {}, "/"}};
    EXPECT_EQ(normalize_parent("/sys/fs/cgroup/pids/p", v1), "/p");
}

TEST(CgroupLayout, DefaultParent) {
    EXPECT_EQ(default_parent({"/sys/fs/cgroup", {}, "/"}, Version::v2), "/kago");
    EXPECT_EQ(default_parent({"/sys/fs/cgroup/memory", {}, "/a/b"}, Version::v1), "/a/b/kago");
}

// --- results and report ----------------------------------------------------

TEST(CgroupReport, KeyedValues) {
    const char* events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
    EXPECT_EQ(keyed_value(events, "oom_kill"), 1u);
    EXPECT_EQ(keyed_value(events, "max"), 12u);
    EXPECT_EQ(keyed_value(events, "oom"), 1u);
    EXPECT_FALSE(keyed_value(events, "nope"));
    EXPECT_FALSE(keyed_value("", "max"));
}

TEST(CgroupReport, LeafNames) {
    EXPECT_EQ(leaf_name("box", {4242, 987654}), "box.4242.987654");
    EXPECT_EQ(leaf_name("box", {4242, 0}), "box.4242");  // no start time read
    auto l = parse_leaf("box.4242.987654");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->name, "box");
    EXPECT_EQ(l->owner.pid, 4242);
    EXPECT_EQ(l->owner.start, 987654u);
    l = parse_leaf("a.b.77.5");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->name, "a.b");
    EXPECT_EQ(l->owner.pid, 77);
    EXPECT_EQ(l->owner.start, 5u);
    // NAME.PID, as an older kago named them: no start time.
    l = parse_leaf("box.4242");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->name, "box");
    EXPECT_EQ(l->owner.pid, 4242);
    EXPECT_EQ(l->owner.start, 0u);
    l = parse_leaf("a.b.77");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->name, "a.b");
    EXPECT_EQ(l->owner.pid, 77);
    EXPECT_FALSE(parse_leaf("box"));
    EXPECT_FALSE(parse_leaf("box."));
    EXPECT_FALSE(parse_leaf("box.12x"));
    EXPECT_FALSE(parse_leaf(".12"));
    EXPECT_FALSE(parse_leaf("box.0"));
    EXPECT_FALSE(parse_leaf("box.1234567890"));  // no pid has ten digits
}

TEST(CgroupReport, Effects) {
    Limits l;
    l.memory = 64ull << 20;
    l.pids = 32;
    l.cpu_quota_us = 20000;
    Stats st;
    st.oom_kills = 1;
    st.pids_refused = 312;
    st.nr_throttled = 45;
    st.nr_periods = 60;
    st.throttled_usec = 1800000;
    int killed = SIGKILL;  // a wait status for "killed by SIGKILL"
    auto lines = describe_effects(l, st, killed);
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0], "the container was killed by the memory limit (64 MiB): 1 OOM kill");
    EXPECT_EQ(lines[1], "312 fork attempts refused by the pids limit (32)");
    EXPECT_EQ(lines[2], "throttled by the CPU limit (0.2 CPUs) in 45 of 60 periods, 1.80 s in all");
    st.oom_kills = 2;
    auto exited = describe_effects(l, st, 0);
    EXPECT_EQ(exited[0], "a process was killed by the memory limit (64 MiB): 2 OOM kills");
    EXPECT_TRUE(describe_effects(l, Stats{}, 0).empty());
}

TEST(CgroupReport, StatusJson) {
    Stats st;
    st.oom_kills = 1;
    st.memory_peak = 33554432;
    st.cpu_user_usec = 10;
    std::string j = status_json("box", "/kago/box.1", st, SIGKILL);
    EXPECT_NE(j.find("\"exit\":137"), std::string::npos) << j;
    EXPECT_NE(j.find("\"signal\":9"), std::string::npos) << j;
    EXPECT_NE(j.find("\"oom_kills\":1"), std::string::npos) << j;
    EXPECT_NE(j.find("\"memory_peak\":33554432"), std::string::npos) << j;
    EXPECT_NE(j.find("\"nr_throttled\":null"), std::string::npos) << j;
    std::string e = status_json("box", "/x", st, 3 << 8);  // exited with 3
    EXPECT_NE(e.find("\"exit\":3,\"signal\":null"), std::string::npos) << e;
    EXPECT_EQ(e.front(), '{');
    EXPECT_EQ(e.back(), '}');
}

// A Session plans without changing anything, and one that made no cgroup
// has nothing to enter, report or remove.
TEST(CgroupSession, PlansWithoutCreating) {
    std::vector<std::string> warnings;
    kago::cgroup::Limits limits;
    limits.pids = 16;
    auto s = kago::cgroup::Session::plan(limits, "", true, warnings);
    if (!s) GTEST_SKIP() << "no usable cgroup hierarchy here: " << s.error().message();
    EXPECT_FALSE(s->active());
    EXPECT_EQ(s->limits().pids, std::optional<uint64_t>(16));
    EXPECT_FALSE(s->layout().hierarchies.empty());
    EXPECT_TRUE(s->enter(::getpid()));
    auto report = s->finish(0);
    EXPECT_TRUE(report.effects.empty());
    EXPECT_FALSE(report.kill_error);
    EXPECT_TRUE(s->remove());
}
