#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "core/state.hpp"
#include "core/trace.hpp"
#include "mount/resolve.hpp"
#include "mount/root.hpp"
#include "mount/spec.hpp"

using namespace kago;
using namespace kago::mount;

namespace {

Step step(StepKind k, const char* v) {
    auto r = parse_step(k, v);
    EXPECT_TRUE(r.ok()) << v << ": " << (r.ok() ? "" : r.error().message());
    return r.ok() ? r.value() : Step{};
}

std::string error_of(StepKind k, const char* v) {
    auto r = parse_step(k, v);
    EXPECT_FALSE(r.ok()) << v;
    return r.ok() ? "" : r.error().message();
}

// A scratch directory used as a root (no mount needed to test resolution).
class ScratchRoot : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/kago-mount-test.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        ASSERT_EQ(mkdir((dir_ + "/etc").c_str(), 0755), 0);
        ASSERT_EQ(symlink("../../../../../tmp", (dir_ + "/evil").c_str()), 0);
        ASSERT_EQ(symlink("/etc", (dir_ + "/abs").c_str()), 0);
        ASSERT_EQ(symlink("etc/../..", (dir_ + "/climb").c_str()), 0);
        ASSERT_EQ(symlink("loop", (dir_ + "/loop").c_str()), 0);
        root_.path = dir_;
        root_.fd = ops::Fd{UniqueFd(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)), dir_};
        ASSERT_TRUE(root_.fd.fd.valid());
    }
    void TearDown() override { (void)state::remove_tree(dir_); }
    bool exists(const std::string& rel) {
        struct stat st;
        return ::lstat((dir_ + rel).c_str(), &st) == 0;
    }
    std::string dir_;
    Root root_;
};

}  // namespace

TEST(MountSpec, BindForms) {
    auto s = step(StepKind::bind, "/src:/dst:ro");
    EXPECT_EQ(s.src, "/src");
    EXPECT_EQ(s.dst, "/dst");
    EXPECT_TRUE(s.read_only);
    s = step(StepKind::bind, "/data");
    EXPECT_EQ(s.dst, "/data");
    EXPECT_FALSE(s.read_only);
    s = step(StepKind::bind, "rel/src:opt//x/./y/");
    EXPECT_EQ(s.src, "rel/src");
    EXPECT_EQ(s.dst, "/opt/x/y");
    EXPECT_NE(error_of(StepKind::bind, "/a:/b:rx").find("SRC:DST:ro"), std::string::npos);
    EXPECT_NE(error_of(StepKind::bind, ":/b").find("--bind"), std::string::npos);
}

TEST(MountSpec, BindsAreNodevUnlessTheySayDev) {
    auto s = step(StepKind::bind, "/src:/dst");
    EXPECT_FALSE(s.dev);
    s = step(StepKind::bind, "/src:/dst:dev");
    EXPECT_TRUE(s.dev);
    EXPECT_FALSE(s.read_only);
    s = step(StepKind::bind, "/src:/dst:ro,dev");
    EXPECT_TRUE(s.dev);
    EXPECT_TRUE(s.read_only);
    s = step(StepKind::bind, "/src:/dst:rw");
    EXPECT_FALSE(s.dev);
    EXPECT_FALSE(s.read_only);
    EXPECT_NE(error_of(StepKind::bind, "/a:/b:ro,suid").find(":dev"), std::string::npos);
}

TEST(MountSpec, DstEscapingThroughDotDotIsRefused) {
    EXPECT_NE(error_of(StepKind::bind, "/a:/../etc").find("escapes the root"), std::string::npos);
    EXPECT_NE(error_of(StepKind::tmpfs, "x/../../y").find("escapes the root"), std::string::npos);
    EXPECT_EQ(step(StepKind::bind, "/a:/x/../etc").dst, "/etc");
    EXPECT_NE(error_of(StepKind::bind, "/a:/").find("root itself"), std::string::npos);
}

TEST(MountSpec, TmpfsSizeAndMode) {
    auto s = step(StepKind::tmpfs, "/run:64M:1777");
    EXPECT_EQ(s.dst, "/run");
    EXPECT_EQ(s.size, 64u << 20);
    EXPECT_EQ(s.mode, 01777u);
    s = step(StepKind::tmpfs, "/tmp::0700");
    EXPECT_EQ(s.size, 0u);
    EXPECT_EQ(s.mode, 0700u);
    error_of(StepKind::tmpfs, "/tmp:lots");
    error_of(StepKind::tmpfs, "/tmp:1M:999");
}

TEST(MountSpec, SymlinkSplitsAtTheLastColon) {
    auto s = step(StepKind::symlink, "usr/lib:/lib");
    EXPECT_EQ(s.src, "usr/lib");
    EXPECT_EQ(s.dst, "/lib");
    s = step(StepKind::symlink, "a:b:/c");
    EXPECT_EQ(s.src, "a:b");
    EXPECT_EQ(s.dst, "/c");
    error_of(StepKind::symlink, "nolink");
    error_of(StepKind::symlink, "target:");
}

TEST(MountSpec, MkdirFileChdir) {
    EXPECT_EQ(step(StepKind::mkdir, "/a/b:0700").mode, 0700u);
    EXPECT_EQ(step(StepKind::mkdir, "/a/b").mode, 0u);
    auto f = step(StepKind::file, "/etc/motd:/etc/motd");
    EXPECT_EQ(f.src, "/etc/motd");
    error_of(StepKind::file, "/etc/motd");
    EXPECT_EQ(step(StepKind::chdir, "/srv/").dst, "/srv");
    EXPECT_EQ(step(StepKind::chdir, "/").dst, "/");
}

TEST(MountSpec, ParseMode) {
    EXPECT_EQ(parse_mode("755", "m").value(), 0755u);
    EXPECT_EQ(parse_mode("01777", "m").value(), 01777u);
    EXPECT_FALSE(parse_mode("", "m").ok());
    EXPECT_FALSE(parse_mode("8", "m").ok());
    EXPECT_FALSE(parse_mode("17777", "m").ok());
}

TEST(MountSpec, NormalizeInRoot) {
    EXPECT_EQ(normalize_in_root("a/b/../c", "x").value(), "/a/c");
    EXPECT_EQ(normalize_in_root("/", "x").value(), "/");
    EXPECT_EQ(normalize_in_root("/a/..", "x").value(), "/");
    EXPECT_FALSE(normalize_in_root("..", "x").ok());
    EXPECT_FALSE(normalize_in_root("", "x").ok());
}

TEST(MountSpec, Validate) {
    RootSpec s;
    s.target = "/t";
    EXPECT_NE(validate(s).error().message().find("no --layer"), std::string::npos);
    s.layers.assign(kMaxLayers, "/l");
    EXPECT_TRUE(validate(s).ok());
    s.layers.push_back("/l");
    EXPECT_NE(validate(s).error().message().find("too many layers: 501"), std::string::npos);
    s.layers = {"/l"};
    s.upper.kind = UpperKind::dir;
    EXPECT_FALSE(validate(s).ok());
}

TEST(MountSpec, WorkdirBesideUpper) {
    EXPECT_EQ(workdir_for("/x/up"), "/x/up.work");
    EXPECT_EQ(workdir_for("/x/up/"), "/x/up.work");
}

TEST(MountContext, UidMap) {
    EXPECT_TRUE(uid_map_is_initial("         0          0 4294967295\n"));
    EXPECT_FALSE(uid_map_is_initial("         0       1000          1\n"));
    EXPECT_FALSE(uid_map_is_initial("0 0 4294967295\n1 1 1\n"));
}

TEST(MountContext, NSpidDepth) {
    EXPECT_EQ(nspid_depth("Name:\tsh\nNSpid:\t4242\t1\nNSsid:\t1\n"), 2u);
    EXPECT_EQ(nspid_depth("Name:\tsh\nNSpid:\t4242\n"), 1u);
    EXPECT_EQ(nspid_depth("NSpid:\t7\t3\t1"), 3u);
    EXPECT_EQ(nspid_depth("Name:\tsh\n"), 0u);
}

TEST(MountUndo, RunsInReverseUnlessDismissed) {
    std::string log;
    {
        Undo u;
        u.add(trace::Made::yes, [&] { log += "a"; });
        u.add(trace::Made::no, [&] { log += "x"; });  // not made: nothing to undo
        u.add(trace::Made::yes, [&] { log += "b"; });
    }
    EXPECT_EQ(log, "ba");
    {
        Undo u;
        u.add(trace::Made::yes, [&] { log += "c"; });
        u.dismiss();
    }
    EXPECT_EQ(log, "ba");
}

TEST_F(ScratchRoot, SymlinkClimbingOutOfTheRootIsRefused) {
    auto r = check_no_escape(root_, "/evil/x", "--bind /src");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("through the symlink /evil -> ../../../../../tmp"),
              std::string::npos)
        << r.error().message();
    EXPECT_FALSE(check_no_escape(root_, "/climb/x", "w").ok());
    EXPECT_FALSE(open_in_root(root_, "/evil/x", Create::dir, 0, "w").ok());
    EXPECT_FALSE(exists("/evil/x"));
}

TEST_F(ScratchRoot, AbsoluteSymlinkResolvesInsideTheRoot) {
    EXPECT_TRUE(check_no_escape(root_, "/abs/hosts", "w").ok());
    auto fd = open_in_root(root_, "/abs/new/dir", Create::dir, 0700, "w");
    ASSERT_TRUE(fd.ok()) << fd.error().message();
    EXPECT_TRUE(exists("/etc/new/dir"));
    auto f = open_in_root(root_, "/abs/file", Create::file, 0, "w");
    ASSERT_TRUE(f.ok());
    struct stat st;
    ASSERT_EQ(::lstat((dir_ + "/etc/file").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(ScratchRoot, MissingComponentsAndLoops) {
    EXPECT_TRUE(check_no_escape(root_, "/no/such/path", "w").ok());
    auto r = check_no_escape(root_, "/loop/x", "w");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().err, ELOOP);
    auto missing = open_in_root(root_, "/nothing", Create::none, 0, "--chdir");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().err, ENOENT);
    EXPECT_NE(missing.error().message().find("--chdir"), std::string::npos);
}

// open_in_root takes one openat2 when the path has no symlink and no "..";
// the answers must be those of the full walk.
TEST_F(ScratchRoot, PlainPathsSymlinksAndDotDotGiveTheSameObjects) {
    auto same = [&](const ops::Fd& fd, const std::string& rel) {
        struct stat a, b;
        EXPECT_EQ(::fstat(fd.fd.get(), &a), 0);
        EXPECT_EQ(::stat((dir_ + rel).c_str(), &b), 0);
        return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
    };
    auto plain = open_in_root(root_, "/etc", Create::none, 0, "w");
    ASSERT_TRUE(plain.ok()) << plain.error().message();
    EXPECT_TRUE(same(*plain, "/etc"));
    auto via_link = open_in_root(root_, "/abs", Create::none, 0, "w");  // -> /etc, inside the root
    ASSERT_TRUE(via_link.ok()) << via_link.error().message();
    EXPECT_TRUE(same(*via_link, "/etc"));
    auto dotdot = open_in_root(root_, "/etc/../etc", Create::none, 0, "w");
    ASSERT_TRUE(dotdot.ok()) << dotdot.error().message();
    EXPECT_TRUE(same(*dotdot, "/etc"));
    EXPECT_FALSE(open_in_root(root_, "/etc/../..", Create::none, 0, "w").ok());
    // Missing behind a symlink: still ENOENT, and nothing created.
    auto missing = open_in_root(root_, "/abs/none", Create::none, 0, "w");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().err, ENOENT);
    EXPECT_FALSE(exists("/etc/none"));
}

TEST_F(ScratchRoot, ParentIsCreated) {
    auto p = open_parent_in_root(root_, "/a/b/c", "w");
    ASSERT_TRUE(p.ok()) << p.error().message();
    EXPECT_EQ(p->name, "c");
    EXPECT_TRUE(exists("/a/b"));
    EXPECT_FALSE(exists("/a/b/c"));
}

TEST_F(ScratchRoot, DryRunPlanNeedsNoPrivilege) {
    RootSpec s;
    s.layers = {dir_ + "/etc", dir_};
    s.upper.kind = UpperKind::tmpfs;
    s.target = dir_ + "/target";
    s.proc = s.dev = s.sys = s.pivot = true;
    s.steps.push_back(step(StepKind::tmpfs, "/run"));
    trace::set_dry_run(true);
    Undo undo;
    auto r = apply(s, Context{}, undo);
    trace::set_dry_run(false);
    EXPECT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(undo.size(), 0u);
    EXPECT_FALSE(exists("/target"));
}

TEST(MountSeam, DryRunStandInsAreNotMade) {
    ops::Fd held{UniqueFd(), "x"};
    EXPECT_TRUE(held.made());
    EXPECT_FALSE(held.usable());
    auto dry = ops::not_made("y");
    EXPECT_FALSE(dry.made());
    EXPECT_TRUE(dry.usable());
    auto d = ops::is_dir(dry);
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE(d.value());
    trace::set_dry_run(true);
    auto p = ops::open_path("/nonexistent/kago");
    ASSERT_TRUE(p.ok());
    auto moved =
        ops::move_mount_path(p.value(), "/nonexistent/kago");  // a stand-in attaches nothing
    Undo undo;
    undo.add(moved ? *moved : trace::Made::yes, [] {});
    trace::set_dry_run(false);
    EXPECT_FALSE(p.value().made());
    ASSERT_TRUE(moved.ok());
    EXPECT_EQ(*moved, trace::Made::no);
    EXPECT_EQ(undo.size(), 0u);
}

TEST_F(ScratchRoot, MissingLayerFailsBeforeAnyMount) {
    RootSpec s;
    s.layers = {dir_ + "/nope"};
    s.target = dir_ + "/target";
    Undo undo;
    auto r = assemble_root(s, Context{}, undo);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().err, ENOENT);
    EXPECT_NE(r.error().message().find("--layer " + dir_ + "/nope"), std::string::npos);
    EXPECT_EQ(undo.size(), 0u);
}

TEST(MountSpec, TmpfsOptions) {
    auto s = step(StepKind::tmpfs, "/run:size=64m,mode=755");
    EXPECT_EQ(s.size, 64u << 20);
    EXPECT_EQ(s.mode, 0755u);
    EXPECT_FALSE(s.noexec);
    EXPECT_FALSE(s.dev);
    EXPECT_FALSE(s.read_only);
    s = step(StepKind::tmpfs, "/x:noexec,nosuid,nodev,ro");
    EXPECT_TRUE(s.noexec);
    EXPECT_TRUE(s.read_only);
    EXPECT_FALSE(s.dev);
    // dev only when it is said.
    EXPECT_TRUE(step(StepKind::tmpfs, "/x:dev").dev);
    EXPECT_TRUE(step(StepKind::tmpfs, "/x:noexec").noexec);
    // A bare size is still the old DST:SIZE form.
    EXPECT_EQ(step(StepKind::tmpfs, "/x:1M").size, 1u << 20);
    EXPECT_NE(error_of(StepKind::tmpfs, "/x:suid").find("always nosuid"), std::string::npos);
    error_of(StepKind::tmpfs, "/x:size=lots");
    error_of(StepKind::tmpfs, "/x:mode=999");
    EXPECT_NE(error_of(StepKind::tmpfs, "/x:noexec,exec=1").find("unknown tmpfs option 'exec=1'"), std::string::npos);
}

TEST(MountSpec, DefaultMaskedAndReadOnlyPaths) {
    const auto& m = default_masked_paths();
    for (const char* p : {"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
                          "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                          "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"})
        EXPECT_NE(std::find(m.begin(), m.end(), p), m.end()) << p;
    const auto& r = default_read_only_paths();
    for (const char* p : {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"})
        EXPECT_NE(std::find(r.begin(), r.end(), p), r.end()) << p;
}

TEST(MountSpec, MqueueAndCgroupfsNeedDevAndSys) {
    RootSpec spec;
    spec.layers = {"/l"};
    spec.target = "/t";
    spec.mqueue = Want::yes;
    EXPECT_FALSE(validate(spec).ok());
    spec.dev = true;
    EXPECT_TRUE(validate(spec).ok());
    spec.cgroupfs = Want::yes;
    EXPECT_FALSE(validate(spec).ok());
    spec.sys = true;
    EXPECT_TRUE(validate(spec).ok());
}

TEST(MountCgroup, V1HybridMountinfo) {
    const char* mi =
        "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
        "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd\n"
        "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
        "41 30 0:38 / /elsewhere/cgroup rw,relatime - cgroup cgroup rw,pids\n";
    auto v = parse_cgroup_mounts(mi);
    ASSERT_EQ(v.size(), 4u);
    EXPECT_EQ(v[0].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
    EXPECT_EQ(v[0].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
    EXPECT_EQ(v[2].controllers, (std::vector<std::string>{"name=systemd"}));
    EXPECT_TRUE(v[3].v2);
    const char* pc = "12:cpuacct,cpu:/a/b\n4:memory:/a/b\n1:name=systemd:/s\n0::/u\n";
    EXPECT_EQ(cgroup_path_for(pc, v[0]).value_or("-"), "/a/b");
    EXPECT_EQ(cgroup_path_for(pc, v[1]).value_or("-"), "/a/b");
    EXPECT_EQ(cgroup_path_for(pc, v[2]).value_or("-"), "/s");
    EXPECT_EQ(cgroup_path_for(pc, v[3]).value_or("-"), "/u");
    // A mount whose root is our cgroup's parent, and one that does not hold it.
    CgroupMount m = v[1];
    m.root = "/a";
    EXPECT_EQ(cgroup_path_for(pc, m).value_or("-"), "/b");
    m.root = "/z";
    EXPECT_FALSE(cgroup_path_for(pc, m).has_value());
}

TEST(MountCgroup, V2HidesWhatWasBelow) {
    const char* mi =
        "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "31 30 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "50 22 0:40 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n";
    auto v = parse_cgroup_mounts(mi);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].mount_point, "/sys/fs/cgroup");
    EXPECT_TRUE(v[0].v2);
    EXPECT_TRUE(parse_cgroup_mounts("").empty());
}

TEST(MountContext, TheTestsNamespacesAreNotTheirOwn) {
    // The unit tests run in the namespaces of whoever started them: the
    // same IPC and cgroup namespaces as their parent.
    if (::access("/proc/self/ns/ipc", F_OK) != 0) GTEST_SKIP() << "no /proc/self/ns";
    EXPECT_FALSE(own_namespace("ipc"));
    EXPECT_FALSE(own_namespace("cgroup"));
}

// The cheap check for a root-made layer: the layer's root and a few key
// entries, owned by the overflow ids. Our own ids stand in for them here.
TEST(MountSpec, UnmappedEntryNamesTheFirstKeyEntryOwnedByTheOverflowIds) {
    char tmpl[] = "/tmp/kago-unmapped-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    std::string d = tmpl;
    uint32_t me = ::getuid(), my_gid = ::getgid();
    EXPECT_EQ(mount::unmapped_entry(d, me + 1, my_gid + 1), "");
    EXPECT_EQ(mount::unmapped_entry(d, me, my_gid + 1), kago::cat("its root (uid ", me, " gid ", my_gid, ")"));
    EXPECT_EQ(mount::unmapped_entry(d + "/missing", me, my_gid), "");
    ::rmdir(d.c_str());
}

// image-layers' layers and working directory are defaults: --layer replaces
// both, --chdir the directory; empty parts of the list are skipped.
TEST(MountSpec, ImageDefaultsOnlyFillWhatIsNotGiven) {
    using namespace kago::mount;
    RootSpec none;
    ASSERT_TRUE(apply_image_defaults(none, "/s/layers/a:/s/layers/b::", "/srv").ok());
    EXPECT_EQ(none.layers, (std::vector<std::string>{"/s/layers/a", "/s/layers/b"}));
    ASSERT_EQ(none.steps.size(), 1u);
    EXPECT_EQ(none.steps[0].kind, StepKind::chdir);
    EXPECT_EQ(none.steps[0].dst, "/srv");

    RootSpec own_layer;
    own_layer.layers = {"/mine"};
    ASSERT_TRUE(apply_image_defaults(own_layer, "/s/layers/a", "/srv").ok());
    EXPECT_EQ(own_layer.layers, std::vector<std::string>{"/mine"});
    EXPECT_TRUE(own_layer.steps.empty());

    RootSpec own_dir;
    own_dir.steps.push_back(parse_step(StepKind::chdir, "/tmp").value());
    ASSERT_TRUE(apply_image_defaults(own_dir, "/s/layers/a", "/srv").ok());
    EXPECT_EQ(own_dir.layers.size(), 1u);
    ASSERT_EQ(own_dir.steps.size(), 1u);
    EXPECT_EQ(own_dir.steps[0].dst, "/tmp");

    RootSpec no_image;
    ASSERT_TRUE(apply_image_defaults(no_image, "", "/srv").ok());
    EXPECT_TRUE(no_image.layers.empty() && no_image.steps.empty());
}
