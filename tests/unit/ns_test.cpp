// lib/ns: id maps (parsing, checks, overlap), /etc/subuid, the map plan,
// join specs, namespace names and flags, time offsets, option resolution,
// the info JSON and the child plan's trace text. No privilege needed.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "core/trace.hpp"
#include "ns/child.hpp"
#include "ns/idmap.hpp"
#include "ns/info.hpp"
#include "ns/join.hpp"
#include "ns/types.hpp"

using namespace kago;
using namespace kago::ns;

namespace {
bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

std::string temp_file(const std::string& content) {
    char path[] = "/tmp/kago-ns-test-XXXXXX";
    int fd = ::mkstemp(path);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(fd);
    return path;
}
}  // namespace

// --- id maps ----------------------------------------------------------------

TEST(NsIdMap, ParsesOneAndManyRanges) {
    auto m = parse_map("0:1000:1", "--map-user");
    ASSERT_TRUE(m);
    EXPECT_EQ(*m, (IdMap{{0, 1000, 1}}));
    auto many = parse_map("0:1000:1,1:100000:65536", "--map-user");
    ASSERT_TRUE(many);
    EXPECT_EQ(*many, (IdMap{{0, 1000, 1}, {1, 100000, 65536}}));
    EXPECT_EQ(map_text(*many), "0 1000 1\n1 100000 65536\n");
    EXPECT_EQ(map_spec(*many), "0:1000:1,1:100000:65536");
}

TEST(NsIdMap, RejectsMalformedRanges) {
    for (const char* bad : {"", "0:1000", "0:1000:1:2", "a:1:1", "0:-1:1", "0:1000:1,", "0::1",
                            "4294967296:0:1", " 0:1:1"}) {
        auto m = parse_map(bad, "--map-user");
        EXPECT_FALSE(m) << bad;
        if (!m) {
            EXPECT_TRUE(contains(m.error().what, "--map-user")) << m.error().what;
            EXPECT_EQ(m.error().err, 0);
        }
    }
}

TEST(NsIdMap, ChecksCountsAndLimits) {
    EXPECT_FALSE(check_map({{0, 1000, 0}}, "--map-user"));
    EXPECT_FALSE(check_map({{4294967295u, 0, 2}}, "--map-user"));
    EXPECT_FALSE(check_map({{0, 4294967295u, 2}}, "--map-user"));
    EXPECT_TRUE(check_map({{4294967295u, 0, 1}}, "--map-user"));
    IdMap big;
    for (uint32_t i = 0; i < 341; ++i) big.push_back({i, i + 10000, 1});
    auto r = check_map(big, "--map-user");
    ASSERT_FALSE(r);
    EXPECT_TRUE(contains(r.error().what, "340"));
    big.pop_back();
    EXPECT_TRUE(check_map(big, "--map-user"));
}

TEST(NsIdMap, RejectsOverlapInside) {
    auto r = check_map({{0, 1000, 10}, {5, 2000, 10}}, "--map-user");
    ASSERT_FALSE(r);
    EXPECT_TRUE(contains(r.error().what, "overlap inside")) << r.error().what;
}

TEST(NsIdMap, RejectsOverlapOutside) {
    auto r = check_map({{0, 1000, 10}, {100, 1009, 1}}, "--map-group");
    ASSERT_FALSE(r);
    EXPECT_TRUE(contains(r.error().what, "overlap outside")) << r.error().what;
    EXPECT_TRUE(contains(r.error().what, "--map-group"));
}

TEST(NsIdMap, AdjacentRangesDoNotOverlap) {
    EXPECT_TRUE(check_map({{0, 1000, 10}, {10, 1010, 10}}, "--map-user"));
    EXPECT_TRUE(check_map({{10, 1010, 10}, {0, 1000, 10}}, "--map-user"));  // order does not matter
}

TEST(NsIdMap, SeveralOptionValuesAreJoinedThenChecked) {
    auto m = parse_maps({"0:1000:1", "1:100000:10"}, "--map-user");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->size(), 2u);
    EXPECT_FALSE(parse_maps({"0:1000:1", "0:2000:1"}, "--map-user"));
}

// --- /etc/subuid ------------------------------------------------------------

TEST(NsSubid, FindsRangesByNameOrNumber) {
    std::string text =
        "# comment\n"
        "alice:100000:65536\n"
        "bob:165536:65536\n"
        "1000:300000:10\n"
        "\n"
        "broken line\n"
        "alice:500000:5\n";
    EXPECT_EQ(parse_subid(text, "alice", 1001),
              (std::vector<SubRange>{{100000, 65536}, {500000, 5}}));
    EXPECT_EQ(parse_subid(text, "", 1000), (std::vector<SubRange>{{300000, 10}}));
    EXPECT_EQ(parse_subid(text, "carol", 1002), std::vector<SubRange>{});
}

TEST(NsSubid, SkipsInvalidRanges) {
    EXPECT_TRUE(parse_subid("alice:x:10\nalice:10:0\nalice:4294967290:100\n", "alice", 1).empty());
}

TEST(NsSubid, AutoMapPutsTheCallerAtZero) {
    auto m = auto_map(1000, {{100000, 65536}, {300000, 10}}, "/etc/subuid");
    ASSERT_TRUE(m);
    EXPECT_EQ(*m, (IdMap{{0, 1000, 1}, {1, 100000, 65536}, {65537, 300000, 10}}));
    auto none = auto_map(1000, {}, "/etc/subuid");
    ASSERT_FALSE(none);
    EXPECT_TRUE(contains(none.error().what, "/etc/subuid"));
    EXPECT_FALSE(none.error().hint.empty());
}

TEST(NsSubid, UserNameFromPasswd) {
    std::string passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/bin/false\n";
    EXPECT_EQ(user_name(passwd, 65534), "nobody");
    EXPECT_EQ(user_name(passwd, 0), "root");
    EXPECT_EQ(user_name(passwd, 42), "");
}

// --- the map plan -----------------------------------------------------------

TEST(NsMapPlan, MapRootWithoutPrivilegeDeniesSetgroups) {
    Caller c;
    c.uid = 65534;
    c.gid = 65534;
    c.privileged = false;
    c.path = "/nonexistent";
    MapRequest req;
    req.map_root = true;
    auto p = plan_maps(req, c);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->uid, (IdMap{{0, 65534, 1}}));
    EXPECT_EQ(p->gid, (IdMap{{0, 65534, 1}}));
    EXPECT_TRUE(p->uid_helper.empty());
    EXPECT_TRUE(p->deny_setgroups);
}

TEST(NsMapPlan, RootWritesAnyMapAndKeepsSetgroups) {
    Caller c;
    c.privileged = true;
    c.path = "/nonexistent";
    MapRequest req;
    req.map_user = {"0:100000:65536"};
    req.map_group = {"0:100000:65536"};
    auto p = plan_maps(req, c);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_TRUE(p->uid_helper.empty());
    EXPECT_TRUE(p->gid_helper.empty());
    EXPECT_FALSE(p->deny_setgroups);
}

TEST(NsMapPlan, RootlessRangesNeedTheHelpers) {
    std::string dir = "/tmp/kago-ns-test-helpers";
    ::mkdir(dir.c_str(), 0755);
    for (const char* h : {"newuidmap", "newgidmap"}) {
        std::string p = dir + "/" + h;
        std::ofstream(p) << "#!/bin/sh\n";
        ::chmod(p.c_str(), 0755);
    }
    Caller c;
    c.uid = 1000;
    c.gid = 1000;
    c.path = "/nonexistent:" + dir;
    MapRequest req;
    req.map_user = {"0:1000:1,1:100000:65536"};
    req.map_group = {"0:1000:1"};
    auto p = plan_maps(req, c);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->uid_helper, dir + "/newuidmap");
    EXPECT_TRUE(p->gid_helper.empty());  // one line, our own gid
    EXPECT_TRUE(p->deny_setgroups);
    for (const char* h : {"newuidmap", "newgidmap"}) ::unlink((dir + "/" + h).c_str());
    ::rmdir(dir.c_str());
}

TEST(NsMapPlan, MissingHelperIsAClearError) {
    Caller c;
    c.uid = 1000;
    c.gid = 1000;
    c.path = "/nonexistent";
    MapRequest req;
    req.map_user = {"0:100000:65536"};
    auto p = plan_maps(req, c);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().what, "newuidmap");
    EXPECT_EQ(p.error().err, ENOENT);
    EXPECT_TRUE(contains(p.error().hint, "uidmap"));
}

TEST(NsMapPlan, MapAutoReadsSubidFiles) {
    std::string subuid = temp_file("tester:200000:1000\n");
    std::string subgid = temp_file("4242:300000:500\n");
    std::string passwd = temp_file("tester:x:4242:4242::/:/bin/sh\n");
    Caller c;
    c.uid = 4242;
    c.gid = 4242;
    c.subuid = subuid;
    c.subgid = subgid;
    c.passwd = passwd;
    c.path = "/usr/bin:/bin";
    MapRequest req;
    req.map_auto = true;
    auto p = plan_maps(req, c);
    if (!p && p.error().what == "newuidmap") GTEST_SKIP() << "newuidmap is not installed";
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->uid, (IdMap{{0, 4242, 1}, {1, 200000, 1000}}));
    EXPECT_EQ(p->gid, (IdMap{{0, 4242, 1}, {1, 300000, 500}}));
    EXPECT_FALSE(p->uid_helper.empty());
    EXPECT_FALSE(p->gid_helper.empty());
    EXPECT_FALSE(p->deny_setgroups);
    ::unlink(subuid.c_str());
    ::unlink(subgid.c_str());
    ::unlink(passwd.c_str());
}

TEST(NsMapPlan, HelperArguments) {
    EXPECT_EQ(
        helper_argv("newuidmap", 42, {{0, 1000, 1}, {1, 100000, 65536}}),
        (std::vector<std::string>{"newuidmap", "42", "0", "1000", "1", "1", "100000", "65536"}));
}

// write_maps() runs newuidmap through the engine (child::start_shared and
// child::exec_or_exit): a stand-in helper gets its arguments, a missing one
// is ENOENT, a non-zero exit is reported with its status, and a file that
// is no program is ENOEXEC (no retry through /bin/sh, as execvp would).
TEST(NsWriteMaps, RunsTheHelperThroughTheEngine) {
    char dir[] = "/tmp/kago-ns-test-run-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    std::string d = dir, helper = d + "/newuidmap", out = d + "/args";
    std::ofstream(helper) << "#!/bin/sh\necho \"$*\" >" << out << "\n";
    ::chmod(helper.c_str(), 0755);
    MapPlan p;
    p.uid = {{0, 1000, 1}};
    p.uid_helper = helper;
    auto st = write_maps(p, 4242);
    ASSERT_TRUE(st) << st.error().message();
    std::ifstream in(out);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "4242 0 1000 1");

    std::ofstream(helper, std::ios::trunc) << "#!/bin/sh\nexit 3\n";
    st = write_maps(p, 4242);
    ASSERT_FALSE(st);
    EXPECT_TRUE(contains(st.error().what, "exited with status 3")) << st.error().what;

    std::ofstream(helper, std::ios::trunc) << "echo no interpreter line\n";
    st = write_maps(p, 4242);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().err, ENOEXEC) << st.error().message();

    p.uid_helper = d + "/missing";
    st = write_maps(p, 4242);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().err, ENOENT) << st.error().message();
    ::unlink(helper.c_str());
    ::unlink(out.c_str());
    ::rmdir(dir);
}

// --- namespace types, joins -------------------------------------------------

TEST(NsTypes, NamesAndFlags) {
    EXPECT_STREQ(name(Type::mnt), "mnt");
    EXPECT_EQ(clone_flag(Type::net), static_cast<unsigned long>(CLONE_NEWNET));
    EXPECT_EQ(clone_flag(Type::time), static_cast<unsigned long>(CLONE_NEWTIME));
    EXPECT_STREQ(option(Type::mnt), "--mount");
    EXPECT_EQ(*parse_type("mount"), Type::mnt);
    EXPECT_EQ(*parse_type("mnt"), Type::mnt);
    for (Type t : kTypes) EXPECT_EQ(*parse_type(name(t)), t);
    auto bad = parse_type("bogus");
    ASSERT_FALSE(bad);
    EXPECT_TRUE(contains(bad.error().what, "bogus"));
    EXPECT_TRUE(contains(bad.error().what, "user, cgroup"));
    EXPECT_EQ(types_of(CLONE_NEWUSER | CLONE_NEWNS), (std::vector<Type>{Type::user, Type::mnt}));
    EXPECT_EQ(kTypes[0], Type::user);  // joined first
}

TEST(NsTypes, TraceShowsTheFlags) {
    EXPECT_EQ(trace::clone_flags(CLONE_NEWPID | CLONE_NEWNET | SIGCHLD),
              "CLONE_NEWPID|CLONE_NEWNET|SIGCHLD");
    EXPECT_EQ(trace::clone_flags(CLONE_NEWTIME), "CLONE_NEWTIME");
}

TEST(NsJoin, ParsesTypeEqualsPath) {
    auto j = parse_join("net=/run/netns/web");
    ASSERT_TRUE(j);
    EXPECT_EQ(j->type, Type::net);
    EXPECT_EQ(j->path, "/run/netns/web");
    auto m = parse_join("mount=/proc/1/ns/mnt");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->type, Type::mnt);
    EXPECT_EQ(parse_join("net=a=b")->path, "a=b");
}

TEST(NsJoin, RejectsBadSpecs) {
    for (const char* bad : {"net", "=/x", "net=", "bogus=/x", ""}) {
        auto j = parse_join(bad);
        EXPECT_FALSE(j) << bad;
        if (!j) {
            EXPECT_TRUE(contains(j.error().what, "--join")) << j.error().what;
        }
    }
    EXPECT_TRUE(contains(parse_join("bogus=/x").error().what, "unknown namespace type 'bogus'"));
}

TEST(NsJoin, ParsesPids) {
    EXPECT_EQ(*parse_pid("1"), 1);
    EXPECT_FALSE(parse_pid("0"));
    EXPECT_FALSE(parse_pid("-3"));
    EXPECT_FALSE(parse_pid("12x"));
    EXPECT_FALSE(parse_pid("99999999"));
}

TEST(NsJoin, OurOwnProcessHasNothingToJoin) {
    auto j = open_joins({}, ::getpid());
    ASSERT_TRUE(j) << j.error().message();
    EXPECT_TRUE(j->ns.empty());  // every namespace is already ours
    EXPECT_TRUE(j->root.valid());
    EXPECT_TRUE(j->cwd.valid());
}

TEST(NsJoin, AMissingProcessFailsEarly) {
    auto j = open_joins({}, 4194304);
    ASSERT_FALSE(j);
    EXPECT_EQ(j.error().err, ESRCH);
    EXPECT_TRUE(contains(j.error().what, "4194304"));
}

TEST(NsJoin, ExplicitJoinsComeInJoinOrder) {
    auto j = open_joins({{Type::net, "/proc/self/ns/net"}, {Type::user, "/proc/self/ns/user"}}, 0);
    ASSERT_TRUE(j) << j.error().message();
    ASSERT_EQ(j->ns.size(), 2u);
    EXPECT_EQ(j->ns[0].type, Type::user);
    EXPECT_EQ(j->types(), static_cast<unsigned long>(CLONE_NEWUSER | CLONE_NEWNET));
    auto missing = open_joins({{Type::net, "/nonexistent/ns"}}, 0);
    ASSERT_FALSE(missing);
    EXPECT_TRUE(contains(missing.error().what, "/nonexistent/ns"));
}

// --- time offsets -----------------------------------------------------------

TEST(NsTime, ParsesOffsets) {
    EXPECT_EQ(*parse_offset("86400", "--monotonic"), (Offset{86400, 0}));
    EXPECT_EQ(*parse_offset("1.5", "--monotonic"), (Offset{1, 500000000}));
    EXPECT_EQ(*parse_offset("-1.5", "--monotonic"), (Offset{-2, 500000000}));
    EXPECT_EQ(*parse_offset("-3", "--boottime"), (Offset{-3, 0}));
    EXPECT_EQ(*parse_offset("+0.000000001", "--boottime"), (Offset{0, 1}));
    for (const char* bad : {"", "x", "1.", ".5", "1.0000000001", "1e3", "--1", "1 "})
        EXPECT_FALSE(parse_offset(bad, "--monotonic")) << bad;
}

TEST(NsTime, OffsetsFile) {
    EXPECT_EQ(offsets_text(Offset{10, 0}, std::nullopt), "monotonic 10 0\n");
    EXPECT_EQ(offsets_text(Offset{-2, 5}, Offset{3, 0}), "monotonic -2 5\nboottime 3 0\n");
    EXPECT_EQ(offsets_text(std::nullopt, std::nullopt), "");
}

// --- option resolution ------------------------------------------------------

TEST(NsResolve, Implications) {
    Request r;
    r.hostname = "box";
    r.map_root = true;
    r.mount_proc = true;
    r.monotonic = "5";
    ASSERT_TRUE(resolve(r, true, 0));
    EXPECT_EQ(r.create, static_cast<unsigned long>(CLONE_NEWUTS | CLONE_NEWUSER | CLONE_NEWNS |
                                                   CLONE_NEWPID | CLONE_NEWTIME));
    EXPECT_TRUE(r.init);
    EXPECT_EQ(r.monotonic_offset, (Offset{5, 0}));
}

TEST(NsResolve, AllWithAndWithoutRoot) {
    Request root;
    root.all = true;
    ASSERT_TRUE(resolve(root, true, 0));
    EXPECT_FALSE(root.create & CLONE_NEWUSER);
    EXPECT_TRUE(root.create & CLONE_NEWCGROUP);
    Request user;
    user.all = true;
    ASSERT_TRUE(resolve(user, false, 0));
    EXPECT_TRUE(user.create & CLONE_NEWUSER);
    EXPECT_TRUE(user.map_root);
}

TEST(NsResolve, Contradictions) {
    auto fails = [](Request r, bool privileged, unsigned long joins, const char* part) {
        auto s = resolve(r, privileged, joins);
        EXPECT_FALSE(s) << part;
        if (!s) {
            EXPECT_TRUE(contains(s.error().what, part)) << s.error().what;
        }
    };
    Request a;
    a.map_root = a.map_auto = true;
    fails(a, true, 0, "--map-root and --map-auto");
    Request b;
    b.as_pid_1 = true;
    fails(b, true, 0, "--as-pid-1 needs");
    Request c;
    c.net = true;
    fails(c, true, CLONE_NEWNET, "--net and joining a net namespace");
    Request d;
    d.pid = true;
    fails(d, true, CLONE_NEWUSER, "joining a user namespace");
    Request e;
    e.propagation = "slave";
    fails(e, true, 0, "--propagation needs");
    Request f;
    f.mount = true;
    f.propagation = "bogus";
    fails(f, true, 0, "private, slave, shared or unchanged");
    Request g;
    g.pid = g.as_pid_1 = g.time = g.user = true;
    fails(g, false, 0, "--as-pid-1 cannot be combined with --time");
    Request h;
    h.hostname = std::string(65, 'x');
    fails(h, true, 0, "64");
}

TEST(NsResolve, InitOnlyWhereNeeded) {
    Request pid1;
    pid1.pid = pid1.as_pid_1 = true;
    ASSERT_TRUE(resolve(pid1, true, 0));
    EXPECT_FALSE(pid1.init);
    Request plain;
    plain.net = true;
    ASSERT_TRUE(resolve(plain, true, 0));
    EXPECT_FALSE(plain.init);
    Request timens;
    timens.user = timens.time = true;
    ASSERT_TRUE(resolve(timens, false, 0));
    EXPECT_TRUE(timens.init);  // the child makes the time namespace; the command is its child
}

TEST(NsResolve, Propagation) {
    EXPECT_EQ(propagation_flags(*parse_propagation("private")),
              static_cast<unsigned long>(MS_REC | MS_PRIVATE));
    EXPECT_EQ(propagation_flags(*parse_propagation("slave")),
              static_cast<unsigned long>(MS_REC | MS_SLAVE));
    EXPECT_EQ(propagation_flags(*parse_propagation("shared")),
              static_cast<unsigned long>(MS_REC | MS_SHARED));
    EXPECT_EQ(propagation_flags(*parse_propagation("unchanged")), 0ul);
}

// --- info and state ---------------------------------------------------------

TEST(NsInfo, Json) {
    std::string j =
        info_json(42, "web", "/run/kago/web", {{Type::user, 4026531837}, {Type::net, 4026532281}});
    EXPECT_EQ(j,
              "{\"pid\":42,\"name\":\"web\",\"state_dir\":\"/run/kago/web\","
              "\"namespaces\":{\"user\":4026531837,\"net\":4026532281}}");
    EXPECT_TRUE(contains(info_json(1, "a\"b", "", {}), "\"name\":\"a\\\"b\",\"state_dir\":null"));
}

TEST(NsInfo, OurOwnNamespaces) {
    auto n = ns_inodes(::getpid());
    ASSERT_TRUE(n) << n.error().message();
    ASSERT_FALSE(n->empty());
    EXPECT_EQ((*n)[0].type, Type::user);
    struct stat st;
    ASSERT_EQ(::stat("/proc/self/ns/net", &st), 0);
    bool found = false;
    for (const auto& x : *n)
        if (x.type == Type::net) found = x.inode == st.st_ino;
    EXPECT_TRUE(found);
    EXPECT_FALSE(ns_inodes(4194304));
}

// --- the child's plan -------------------------------------------------------

TEST(NsChildPlan, TraceAndErrorText) {
    ChildPlan p;
    p.set_hostname("box");
    p.mount("", "/", "", MS_REC | MS_PRIVATE, "", "change propagation of / to private");
    p.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "", "mount proc on /proc");
    p.unshare(CLONE_NEWTIME);
    p.write_file("/proc/self/timens_offsets", "monotonic 1 0\n");
    p.loopback_up();
    p.wait_for_parent();
    p.close_fd(9);
    const auto& s = p.steps();
    ASSERT_EQ(s.size(), 8u);
    EXPECT_EQ(s[0].text, "sethostname(\"box\", 3)");
    EXPECT_EQ(s[0].what, "set hostname 'box'");
    EXPECT_EQ(s[1].text, "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE, NULL)");
    EXPECT_EQ(s[2].text,
              "mount(\"proc\", \"/proc\", \"proc\", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL)");
    EXPECT_EQ(s[3].text, "unshare(CLONE_NEWTIME)");
    EXPECT_EQ(s[4].text, "write(\"/proc/self/timens_offsets\", \"monotonic 1 0\\n\")");
    EXPECT_TRUE(contains(s[5].text, "SIOCSIFFLAGS"));
    EXPECT_TRUE(s[6].text.empty());  // not a kernel call of its own: not traced
    EXPECT_TRUE(s[7].text.empty());
}

TEST(NsChildPlan, ExecText) {
    auto cmd = prepare_exec({"/bin/echo", "a b"});
    ASSERT_TRUE(cmd);
    ChildPlan p;
    sigset_t mask;
    sigemptyset(&mask);
    env::Contract contract;
    p.set_command(*cmd, contract, mask, true, false);
    EXPECT_EQ(p.exec_text(), "execve(\"/bin/echo\", [\"/bin/echo\", \"a b\"], envp)");
    EXPECT_TRUE(p.init());
}

TEST(NsChild, ASpawnedChildRunsTheCommandAndReportsItsStatus) {
    // No namespaces (no privilege needed): the plumbing of spawn, release,
    // the report pipe and the exit status.
    auto cmd = prepare_exec({"/bin/sh", "-c", "exit 7"});
    ASSERT_TRUE(cmd);
    ChildPlan p;
    p.wait_for_parent();
    sigset_t mask;
    sigprocmask(SIG_SETMASK, nullptr, &mask);
    env::Contract contract;
    p.set_command(*cmd, contract, mask, true, false);
    auto c = spawn(0, p);
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_TRUE(c->release());
    int ws = 0;
    ASSERT_EQ(::waitpid(c->pid(), &ws, 0), c->pid());
    Outcome o = c->finish(p, ws);
    EXPECT_FALSE(o.error);
    ASSERT_TRUE(WIFEXITED(o.wstatus));
    EXPECT_EQ(WEXITSTATUS(o.wstatus), 7);
}

TEST(NsChild, AFailedExecIsReported) {
    auto cmd = prepare_exec({"/nonexistent/kago-test"});
    ASSERT_TRUE(cmd);
    ChildPlan p;
    sigset_t mask;
    sigprocmask(SIG_SETMASK, nullptr, &mask);
    env::Contract contract;
    p.set_command(*cmd, contract, mask, false, false);
    auto c = spawn(0, p);
    ASSERT_TRUE(c);
    int ws = 0;
    ASSERT_EQ(::waitpid(c->pid(), &ws, 0), c->pid());
    Outcome o = c->finish(p, ws);
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->err, ENOENT);
    EXPECT_EQ(o.code, 127);
}

TEST(NsChild, AFailedStepIsReportedWithItsObject) {
    auto cmd = prepare_exec({"/bin/true"});
    ASSERT_TRUE(cmd);
    ChildPlan p;
    p.write_file("/nonexistent/kago-file", "x");
    sigset_t mask;
    sigprocmask(SIG_SETMASK, nullptr, &mask);
    env::Contract contract;
    p.set_command(*cmd, contract, mask, false, false);
    auto c = spawn(0, p);
    ASSERT_TRUE(c);
    int ws = 0;
    ASSERT_EQ(::waitpid(c->pid(), &ws, 0), c->pid());
    Outcome o = c->finish(p, ws);
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->what, "write /nonexistent/kago-file");
    EXPECT_EQ(o.code, 125);
}

TEST(NsChild, StopBeforeReleaseLeavesNoChild) {
    auto cmd = prepare_exec({"/bin/true"});
    ASSERT_TRUE(cmd);
    ChildPlan p;
    p.wait_for_parent();
    sigset_t mask;
    sigprocmask(SIG_SETMASK, nullptr, &mask);
    env::Contract contract;
    p.set_command(*cmd, contract, mask, false, false);
    auto c = spawn(0, p);
    ASSERT_TRUE(c);
    pid_t pid = c->pid();
    Outcome o = c->stop(p);
    EXPECT_FALSE(o.error);
    EXPECT_EQ(::kill(pid, 0), -1);  // reaped
}

TEST(NsChild, TwoWaitsAndTheNamespacesRecord) {
    auto cmd = prepare_exec({"/bin/true"});
    ASSERT_TRUE(cmd);
    ChildPlan p;
    p.wait_for_parent();
    p.report_namespaces();
    p.wait_for_parent();
    sigset_t mask;
    sigprocmask(SIG_SETMASK, nullptr, &mask);
    env::Contract contract;
    p.set_command(*cmd, contract, mask, true, false);
    auto c = spawn(0, p);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->release());
    auto ns = c->namespaces();
    ASSERT_TRUE(ns) << ns.error().message();
    struct stat st;
    ASSERT_EQ(::stat("/proc/self/ns/net", &st), 0);
    bool found = false;
    for (const auto& n : *ns)
        if (n.type == Type::net) found = n.inode == st.st_ino;
    EXPECT_TRUE(found);  // no new namespace: ours
    ASSERT_TRUE(c->release());
    int ws = 0;
    ASSERT_EQ(::waitpid(c->pid(), &ws, 0), c->pid());
    Outcome o = c->finish(p, ws);
    EXPECT_FALSE(o.error);
    EXPECT_TRUE(WIFEXITED(o.wstatus) && WEXITSTATUS(o.wstatus) == 0);
}

TEST(NsChild, ANamespacesRecordNeverComesFromAFailedChild) {
    auto cmd = prepare_exec({"/bin/true"});
    ASSERT_TRUE(cmd);
    ChildPlan p;
    p.write_file("/nonexistent/kago-file", "x");
    p.report_namespaces();
    sigset_t mask;
    sigprocmask(SIG_SETMASK, nullptr, &mask);
    env::Contract contract;
    p.set_command(*cmd, contract, mask, false, false);
    auto c = spawn(0, p);
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->namespaces());
    Outcome o = c->stop(p);
    ASSERT_TRUE(o.error);  // kept for finish()
    EXPECT_EQ(o.error->what, "write /nonexistent/kago-file");
}

// --map-auto inside a user namespace that net-setup --user-mode --map-auto
// made: the ids that namespace maps, written directly as its root.
TEST(NsIdMap, NestedAutoMapTakesWhatTheOuterNamespaceMaps) {
    EXPECT_TRUE(ns::initial_map("         0          0 4294967295\n"));
    EXPECT_TRUE(ns::initial_map(""));
    EXPECT_FALSE(ns::initial_map("         0       1000          1\n"));
    auto m = ns::nested_auto_map(0, "         0       1000          1\n         1     100000      65536\n", "uid_map");
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(*m, (ns::IdMap{{0, 0, 1}, {1, 1, 65536}}));
    // The caller's id in the middle of a range: 0 first, the rest around it.
    auto mid = ns::nested_auto_map(5, "0 1000 10\n", "uid_map");
    ASSERT_TRUE(mid);
    EXPECT_EQ(*mid, (ns::IdMap{{0, 5, 1}, {1, 0, 5}, {6, 6, 4}}));
    auto one = ns::nested_auto_map(0, "         0       1000          1\n", "/proc/self/uid_map");
    ASSERT_FALSE(one);
    EXPECT_NE(one.error().what.find("maps only id 0"), std::string::npos);
    EXPECT_NE(one.error().hint.find("net-setup --user-mode --map-auto"), std::string::npos);
    EXPECT_FALSE(ns::nested_auto_map(0, "0 1000 x\n", "uid_map"));
}

TEST(NsIdMap, PlanMapsNestedWritesDirectlyAndNeedsRoot) {
    ns::Caller c;
    c.uid = 0;
    c.gid = 0;
    c.privileged = true;
    c.path = "/nonexistent";  // no newuidmap needed
    c.self_uid_map = "0 1000 1\n1 100000 65536\n";
    c.self_gid_map = "0 1000 1\n1 100000 65536\n";
    auto p = ns::plan_maps({false, true, {}, {}}, c);
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->uid, (ns::IdMap{{0, 0, 1}, {1, 1, 65536}}));
    EXPECT_TRUE(p->uid_helper.empty());
    EXPECT_TRUE(p->gid_helper.empty());
    EXPECT_FALSE(p->deny_setgroups);
    c.privileged = false;
    EXPECT_FALSE(ns::plan_maps({false, true, {}, {}}, c));
}
