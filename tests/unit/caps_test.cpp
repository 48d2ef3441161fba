// Unit tests for lib/caps: everything that needs no privilege.
#include "caps/caps.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "caps/json_value.hpp"
#include "caps/policy.hpp"
#include "caps/seccomp.hpp"
#include "caps/show.hpp"
#include "caps/user.hpp"
#include "core/fds.hpp"
#include "core/trace.hpp"
#include "temp_dir.hpp"

using namespace kago::caps;

namespace {

using kago::test::TempDir;

UserFiles fixture_files(const TempDir& d) {
    UserFiles f;
    f.passwd = d.write("passwd",
                       "root:x:0:0:root:/root:/bin/sh\n"
                       "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
                       "app:x:1000:1001:app user:/home/app:/bin/sh\n");
    f.group = d.write("group",
                      "root:x:0:\n"
                      "nogroup:x:65534:\n"
                      "app:x:1001:\n"
                      "web:x:33:app\n"
                      "video:x:44:\n");
    return f;
}

bool has_rule(const Profile& p, const std::string& name) {
    for (const auto& r : p.rules)
        if (r.syscall == name) return true;
    return false;
}

}  // namespace

// --- names -----------------------------------------------------------------

TEST(CapsNames, AcceptsAnyCaseWithOrWithoutPrefix) {
    for (const char* n : {"net_bind_service", "NET_BIND_SERVICE", "cap_net_bind_service", "CAP_Net_Bind_Service",
                          " net_bind_service "}) {
        auto c = cap_from_name(n);
        ASSERT_TRUE(c.ok()) << n;
        EXPECT_EQ(*c, 10) << n;
    }
    EXPECT_EQ(*cap_from_name("chown"), 0);
    EXPECT_EQ(*cap_from_name("sys_admin"), 21);
    EXPECT_EQ(*cap_from_name("checkpoint_restore"), 40);
}

TEST(CapsNames, UnknownNameListsTheKnownOnes) {
    auto c = cap_from_name("net_bind_servce");
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.error().what.find("unknown capability 'net_bind_servce'"), std::string::npos);
    EXPECT_NE(c.error().hint.find("net_bind_service"), std::string::npos);
    EXPECT_NE(c.error().hint.find("sys_admin"), std::string::npos);
    EXPECT_EQ(c.error().err, 0);
}

TEST(CapsNames, NameRoundTrip) {
    for (int i = 0; i <= 40; ++i) EXPECT_EQ(*cap_from_name(cap_name(i)), i);
    EXPECT_EQ(cap_name(10), "net_bind_service");
}

TEST(CapsSets, ParseListsAndAll) {
    auto s = parse_caps("net_bind_service,CAP_CHOWN, kill");
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->has(10));
    EXPECT_TRUE(s->has(0));
    EXPECT_TRUE(s->has(5));
    EXPECT_EQ(s->list().size(), 3u);
    auto all = parse_caps("ALL");
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(*all, all_caps());
    EXPECT_FALSE(parse_caps("chown,bogus").ok());
    EXPECT_TRUE(parse_caps("").ok());
}

TEST(CapsSets, Format) {
    EXPECT_EQ(format_caps(CapSet{}), "none");
    EXPECT_EQ(format_caps(all_caps()), "all");
    CapSet s;
    s.add(10);
    s.add(0);
    EXPECT_EQ(format_caps(s), "chown,net_bind_service");
}

namespace {

// The sets select_caps() gives for these options.
CapChoice choose(std::vector<std::string> drop, std::vector<std::string> keep, CapSet base = all_caps(),
                 std::optional<std::string> ambient = {}, std::optional<std::string> inheritable = {}) {
    Options o;
    o.drop = std::move(drop);
    o.keep = std::move(keep);
    o.ambient = std::move(ambient);
    o.inheritable = std::move(inheritable);
    auto c = select_caps(o, base);
    EXPECT_TRUE(c.ok()) << c.error().message();
    return c.ok() ? *c : CapChoice{};
}

CapSet caps(std::initializer_list<int> l) {
    CapSet s;
    for (int c : l) s.add(c);
    return s;
}

}  // namespace

TEST(CapsSets, DefaultIsDockers) {
    // Docker's CapEff for a root container.
    EXPECT_EQ(default_caps().bits, 0xa80425fbu);
    EXPECT_EQ(format_caps(default_caps()),
              "chown,dac_override,fowner,fsetid,kill,setgid,setuid,setpcap,net_bind_service,net_raw,sys_chroot,"
              "mknod,audit_write,setfcap");
    EXPECT_TRUE(parse_caps("none")->empty());
}

TEST(CapsSelect, NothingAskedIsTheDefaultSetNoneOfItAmbient) {
    CapChoice c = choose({}, {});
    EXPECT_EQ(c.keep, default_caps());
    EXPECT_TRUE(c.ambient.empty());
    EXPECT_TRUE(c.inheritable.empty());
    EXPECT_TRUE(c.bounding_optional);
    // Only what the process holds.
    CapSet base = caps({0, 21});
    EXPECT_EQ(choose({}, {}, base).keep, caps({0}));
    EXPECT_TRUE(choose({}, {}, CapSet{}).keep.empty());
}

TEST(CapsSelect, DropAloneTakesFromTheDefaultSet) {
    // Docker's --cap-drop: the default set less these, not everything else.
    CapChoice c = choose({"net_raw,mknod"}, {});
    EXPECT_EQ(c.keep, default_caps() - caps({13, 27}));
    EXPECT_FALSE(c.keep.has(21));  // sys_admin never came back
    EXPECT_TRUE(c.ambient.empty());
    EXPECT_FALSE(c.bounding_optional);
    // --drop LIST --keep LIST2: --cap-drop and --cap-add.
    CapChoice add = choose({"net_raw"}, {"sys_ptrace,net_raw"});
    EXPECT_EQ(add.keep, default_caps() | caps({19}));
    EXPECT_EQ(add.ambient, caps({13, 19}));
    EXPECT_EQ(add.inheritable, add.ambient);
}

TEST(CapsSelect, KeepAloneAndDropAll) {
    // --keep X alone: only X, and X is ambient.
    CapChoice k = choose({}, {"net_bind_service"});
    EXPECT_EQ(k.keep, caps({10}));
    EXPECT_EQ(k.ambient, caps({10}));
    EXPECT_EQ(k.inheritable, caps({10}));
    // --drop all --keep X: the same.
    CapChoice dk = choose({"all"}, {"net_bind_service"});
    EXPECT_EQ(dk.keep, caps({10}));
    EXPECT_EQ(dk.ambient, caps({10}));
    // --drop all: nothing.
    CapChoice d = choose({"ALL"}, {});
    EXPECT_TRUE(d.keep.empty());
    EXPECT_TRUE(d.ambient.empty());
    EXPECT_FALSE(d.bounding_optional);
    Options bad;
    bad.drop = {"all"};
    bad.keep = {"nonsense"};
    EXPECT_FALSE(select_caps(bad, all_caps()).ok());
}

TEST(CapsSelect, KeepAllIsWhatIsHeld) {
    CapSet base = all_caps() - caps({24});  // a host without sys_resource
    CapChoice a = choose({}, {"all"}, base);
    EXPECT_EQ(a.keep, base);
    EXPECT_TRUE(a.ambient.empty());  // "all" is not a name: a non-root --user gets nothing
    EXPECT_TRUE(a.inheritable.empty());
    EXPECT_TRUE(a.bounding_optional);
    CapChoice less = choose({"sys_admin"}, {"all"}, base);
    EXPECT_EQ(less.keep, base - caps({21}));
    // Names beside "all" are ambient; --ambient all is everything kept.
    EXPECT_EQ(choose({}, {"all", "kill"}, base).ambient, caps({5}));
    EXPECT_EQ(choose({}, {"all"}, base, "all").ambient, base);
}

TEST(CapsSelect, AmbientAndInheritableSetApart) {
    // An OCI config whose inheritable and ambient sets differ.
    CapChoice c = choose({"all"}, {"net_bind_service,net_raw,chown"}, all_caps(), "net_bind_service",
                         "net_bind_service,net_raw");
    EXPECT_EQ(c.keep, caps({0, 10, 13}));
    EXPECT_EQ(c.ambient, caps({10}));
    EXPECT_EQ(c.inheritable, caps({10, 13}));
    // --ambient alone: the inheritable set follows it.
    CapChoice a = choose({}, {}, all_caps(), "kill");
    EXPECT_EQ(a.keep, default_caps());
    EXPECT_EQ(a.ambient, caps({5}));
    EXPECT_EQ(a.inheritable, caps({5}));
    // --inheritable alone: nothing ambient unless --keep names it.
    CapChoice i = choose({}, {}, all_caps(), std::nullopt, "kill");
    EXPECT_TRUE(i.ambient.empty());
    EXPECT_EQ(i.inheritable, caps({5}));
    // none, and all (= everything kept).
    CapChoice n = choose({}, {"chown,kill"}, all_caps(), "none", "all");
    EXPECT_TRUE(n.ambient.empty());
    EXPECT_EQ(n.inheritable, caps({0, 5}));
}

TEST(CapsSelect, AmbientAndInheritableMustBeKept) {
    Options o;
    o.ambient = "sys_admin";  // not in the default set
    auto r = select_caps(o, all_caps());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().what, "--ambient sys_admin: not kept");
    o.ambient.reset();
    o.inheritable = "sys_module";
    r = select_caps(o, all_caps());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().what, "--inheritable sys_module: not kept");
    o.inheritable = "chown";
    o.ambient = "chown,kill";
    r = select_caps(o, all_caps());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().what, "--ambient kill: not in the inheritable set");
    o.ambient = "bogus";
    EXPECT_FALSE(select_caps(o, all_caps()).ok());
}

TEST(CapsSecurebits, Names) {
    auto b = parse_securebits("noroot,keep-caps-locked,NO_SETUID_FIXUP");
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(*b, (1u << 0) | (1u << 5) | (1u << 2));
    EXPECT_EQ(format_securebits(1u << 0), "SECBIT_NOROOT");
    EXPECT_EQ(*parse_securebits("no-cap-ambient-raise"), 1u << 6);
    auto bad = parse_securebits("noroot,sticky");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().what.find("'sticky'"), std::string::npos);
    EXPECT_NE(bad.error().hint.find("no-setuid-fixup"), std::string::npos);
}

// --- users -----------------------------------------------------------------

TEST(CapsUser, NamesAreResolvedInTheGivenFiles) {
    TempDir d;
    UserFiles f = fixture_files(d);
    auto id = resolve_user("app", f);
    ASSERT_TRUE(id.ok()) << id.error().message();
    EXPECT_EQ(id->uid, 1000u);
    EXPECT_EQ(id->gid, 1001u);
    EXPECT_EQ(id->home, "/home/app");
    EXPECT_EQ(id->name, "app");
    auto withgroup = resolve_user("app:web", f);
    ASSERT_TRUE(withgroup.ok());
    EXPECT_EQ(withgroup->gid, 33u);
    auto numbers = resolve_user("1000:44", f);
    EXPECT_EQ(numbers->uid, 1000u);
    EXPECT_EQ(numbers->gid, 44u);
    EXPECT_EQ(numbers->name, "app");
}

TEST(CapsUser, NumbersNeedNoEntry) {
    TempDir d;
    UserFiles f = fixture_files(d);
    auto id = resolve_user("4242", f);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(id->uid, 4242u);
    EXPECT_EQ(id->gid, 4242u);
    EXPECT_EQ(id->home, "/");
    EXPECT_EQ(id->name, "4242");
}

TEST(CapsUser, UnknownNamesAreUsageErrors) {
    TempDir d;
    UserFiles f = fixture_files(d);
    auto u = resolve_user("daemon", f);
    ASSERT_FALSE(u.ok());
    EXPECT_NE(u.error().what.find("user 'daemon': not found in " + f.passwd), std::string::npos);
    EXPECT_FALSE(resolve_user("app:nosuchgroup", f).ok());
    EXPECT_FALSE(resolve_user(":app", f).ok());
    EXPECT_FALSE(resolve_user("app:", f).ok());
    EXPECT_FALSE(resolve_user("99999999999", f).ok());
}

// Found by tests/fuzz/user.cpp: an entry with id 4294967295 ((uid_t)-1),
// which setresuid(2) and setresgid(2) read as "leave it unchanged", so that
// the payload stayed root. The container's files are refused, as numbers
// already were.
TEST(CapsUser, TheUnchangedIdIsRefusedInTheFiles) {
    TempDir d;
    UserFiles f;
    f.passwd = d.write("passwd",
                       "evil:x:4294967295:100::/:/bin/sh\n"
                       "evilgroup:x:1000:4294967295::/:/bin/sh\n"
                       "app:x:1000:1000::/:/bin/sh\n");
    f.group = d.write("group", "evil:x:4294967295:\nok:x:5:\n");
    auto u = resolve_user("evil", f);
    ASSERT_FALSE(u.ok());
    EXPECT_NE(u.error().what.find("4294967295"), std::string::npos) << u.error().what;
    EXPECT_FALSE(resolve_user("evilgroup", f).ok());
    EXPECT_FALSE(resolve_user("app:evil", f).ok());
    EXPECT_FALSE(resolve_groups("ok,evil", f).ok());
    EXPECT_TRUE(resolve_user("app:ok", f).ok());
}

TEST(CapsUser, MissingFilesMeanNoNames) {
    UserFiles f{"/nonexistent/passwd", "/nonexistent/group"};
    EXPECT_FALSE(resolve_user("root", f).ok());
    EXPECT_EQ(resolve_user("0:0", f)->uid, 0u);
}

TEST(CapsUser, Groups) {
    TempDir d;
    UserFiles f = fixture_files(d);
    auto g = resolve_groups("web,44,nogroup", f);
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(*g, (std::vector<gid_t>{33, 44, 65534}));
    EXPECT_FALSE(resolve_groups("web,audio", f).ok());
    EXPECT_TRUE(resolve_groups("", f)->empty());
}

// --- JSON ------------------------------------------------------------------

TEST(CapsJson, ParsesValues) {
    auto v = parse_json(R"({"a": [1, -2, 3.5e2, true, false, null], "b": "x\"y\u00e9\n", "c": {}})");
    ASSERT_TRUE(v.ok()) << v.error().what;
    const JsonValue* a = v->get("a");
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(a->items.size(), 6u);
    uint64_t n = 0;
    EXPECT_TRUE(a->items[0].as_u64(n));
    EXPECT_EQ(n, 1u);
    EXPECT_FALSE(a->items[1].as_u64(n));
    EXPECT_TRUE(a->items[3].boolean);
    EXPECT_TRUE(a->items[5].is(JsonValue::Type::Null));
    EXPECT_EQ(v->get("b")->text, "x\"y\xc3\xa9\n");
    EXPECT_TRUE(v->get("c")->is(JsonValue::Type::Object));
    EXPECT_EQ(v->get("missing"), nullptr);
}

TEST(CapsJson, RemembersPositions) {
    auto v = parse_json("{\n  \"x\": [\n    1,\n      \"two\"\n  ]\n}");
    ASSERT_TRUE(v.ok());
    const JsonValue& two = v->get("x")->items[1];
    EXPECT_EQ(two.line, 4);
    EXPECT_EQ(two.column, 7);
    EXPECT_EQ(where(two), "4:7: ");
}

TEST(CapsJson, ErrorsHaveLineAndColumn) {
    struct Case {
        const char* text;
        const char* error;
    } cases[] = {
        {"{\"a\": 1,\n  \"b\" 2}", "2:7: unexpected '2', expected ':'"},
        {"[1, 2", "1:6: unexpected end of input, expected ',' or ']'"},
        {"{\"a\": tru}", "1:7: unexpected 't', expected a value"},
        {"\"abc", "1:5: unterminated string"},
        {"{} x", "1:4: unexpected text after the JSON value"},
        {"[01]", "1:3: unexpected '1', expected ',' or ']'"},
        {"{\"a\":\n\n   -}", "3:5: unexpected '}', expected a digit"},
        {"", "1:1: unexpected end of input, expected a value"},
    };
    for (const auto& c : cases) {
        auto v = parse_json(c.text);
        ASSERT_FALSE(v.ok()) << c.text;
        EXPECT_EQ(v.error().what, c.error) << c.text;
    }
}

TEST(CapsJson, DeepNestingIsRefused) {
    std::string deep(200, '[');
    EXPECT_FALSE(parse_json(deep).ok());
}

// --- seccomp profiles ------------------------------------------------------

TEST(CapsSeccomp, DefaultProfileBlocksTheListAndBuilds) {
    Profile p = default_profile(CapSet{});
    for (const char* n : {"keyctl", "add_key", "request_key", "userfaultfd", "kexec_load", "kexec_file_load", "bpf",
                          "perf_event_open", "ptrace", "io_uring_setup", "io_uring_enter", "io_uring_register",
                          "mount", "umount2", "pivot_root", "swapon", "sethostname", "setns", "unshare", "clone",
                          "clone3", "socket"})
        EXPECT_TRUE(has_rule(p, n)) << n;
    EXPECT_EQ(p.default_action.kind, Action::Kind::Allow);
    for (const auto& r : p.rules) {
        if (r.syscall == "clone3") {
            EXPECT_EQ(r.action, (Action{Action::Kind::Errno, ENOSYS}));
        } else {
            EXPECT_EQ(r.action, (Action{Action::Kind::Errno, EPERM})) << r.syscall;
        }
    }
    auto compiled = compile(p);
    ASSERT_TRUE(compiled.ok()) << compiled.error().message();
    EXPECT_EQ(compiled->source, "default");
    EXPECT_GT(compiled->program.size(), 20u);
}

namespace {
bool same_program(const std::vector<sock_filter>& a, const std::vector<sock_filter>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].code != b[i].code || a[i].jt != b[i].jt || a[i].jf != b[i].jf || a[i].k != b[i].k) return false;
    return true;
}
}  // namespace

// The build's table holds libseccomp's own program for each precompiled
// profile: a hit loads exactly what a miss would.
TEST(CapsSeccomp, TheBuildsProgramsAreLibseccompsOwn) {
    auto profiles = precompiled_profiles();
    ASSERT_EQ(profiles.size(), 3u);
    for (const auto& p : profiles) {
        auto fast = compile(p);
        auto slow = compile_with_libseccomp(p, Layout::tree);
        ASSERT_TRUE(fast.ok() && slow.ok());
        EXPECT_NE(fast->what.find("compiled at build time"), std::string::npos) << fast->what;
        EXPECT_EQ(slow->what.find("compiled at build time"), std::string::npos);
        EXPECT_TRUE(same_program(fast->program, slow->program)) << profile_key(p);
    }
    // cap-drop with no capability option: Docker's set.
    EXPECT_EQ(profile_key(profiles[0]), profile_key(default_profile(default_caps())));
}

// Anything else is compiled on the spot, and a profile that differs in one
// argument is not taken for a precompiled one.
TEST(CapsSeccomp, OtherProfilesAreCompiledOnTheSpot) {
    CapSet ptrace = default_caps();
    ptrace.add(19);
    auto kept = compile(default_profile(ptrace));
    ASSERT_TRUE(kept.ok());
    EXPECT_EQ(kept->what.find("compiled at build time"), std::string::npos);

    Profile p = default_profile(default_caps());
    Profile q = p;
    for (auto& r : q.rules)
        if (r.syscall == "socket") r.args.at(0).value = AF_NETLINK;
    EXPECT_NE(profile_key(p), profile_key(q));
    auto other = compile(q);
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(other->what.find("compiled at build time"), std::string::npos);
    // The explanations are not part of what the kernel gets.
    Profile r = p;
    for (auto& rule : r.rules) rule.why = "changed";
    EXPECT_EQ(profile_key(p), profile_key(r));
    // Nor is learning mode taken for enforcing.
    Profile log = p;
    make_log_only(log);
    EXPECT_NE(profile_key(p), profile_key(log));
}

namespace {
// Classic BPF as the kernel runs a seccomp filter, for the instructions
// libseccomp emits (loads of seccomp_data, ALU on the accumulator, jumps,
// returns). Anything else fails the test.
uint32_t run_filter(const std::vector<sock_filter>& prog, const seccomp_data& d) {
    uint32_t a = 0, x = 0;
    auto word = [&](uint32_t off) {
        uint32_t w = 0;
        std::memcpy(&w, reinterpret_cast<const char*>(&d) + off, sizeof w);
        return w;
    };
    for (size_t pc = 0; pc < prog.size(); ++pc) {
        const sock_filter& i = prog[pc];
        uint32_t operand = BPF_SRC(i.code) == BPF_X ? x : i.k;
        switch (BPF_CLASS(i.code)) {
            case BPF_LD: a = word(i.k); break;
            case BPF_LDX: x = i.k; break;
            case BPF_ALU:
                if (BPF_OP(i.code) == BPF_AND)
                    a &= operand;
                else if (BPF_OP(i.code) == BPF_OR)
                    a |= operand;
                else
                    ADD_FAILURE() << "ALU op " << i.code;
                break;
            case BPF_MISC: x = a; break;
            case BPF_RET: return i.k;
            case BPF_JMP: {
                bool t = false;
                switch (BPF_OP(i.code)) {
                    case BPF_JA: pc += i.k; continue;
                    case BPF_JEQ: t = a == operand; break;
                    case BPF_JGT: t = a > operand; break;
                    case BPF_JGE: t = a >= operand; break;
                    case BPF_JSET: t = (a & operand) != 0; break;
                    default: ADD_FAILURE() << "jump op " << i.code;
                }
                pc += t ? i.jt : i.jf;
                break;
            }
            default: ADD_FAILURE() << "instruction " << i.code; return 0;
        }
    }
    ADD_FAILURE() << "the program ran off its end";
    return 0;
}
}  // namespace

// The build's table and pack-selfexec load the default profile as a tree,
// cap-drop --seccomp FILE as a list: the two decide every call alike. Every
// system call number of the three x86 ABIs, with the arguments the rules
// look at set to what they block and to something else.
TEST(CapsSeccomp, ATreeAndAListDecideEveryCallAlike) {
    CapSet none;
    for (const Profile& p :
         {default_profile(default_caps()), default_profile(none), default_profile(all_caps())}) {
        auto list = compile_with_libseccomp(p, Layout::list);
        auto tree = compile_with_libseccomp(p, Layout::tree);
        ASSERT_TRUE(list.ok() && tree.ok());
        EXPECT_FALSE(same_program(list->program, tree->program));
        const uint64_t args[] = {0,
                                 TIOCSTI,
                                 TIOCLINUX,
                                 AF_ALG,
                                 AF_VSOCK,
                                 CLONE_NEWUSER,
                                 CLONE_NEWNS | SIGCHLD,
                                 0xffffffff00005412ull};
        int blocked = 0;
        for (uint32_t arch : {0xc000003eu /* x86_64 */, 0x40000003u /* i386 */})
            for (uint32_t nr = 0; nr < 512; ++nr)
                for (uint32_t x32 : {0u, 0x40000000u})
                    for (uint64_t v : args) {
                        seccomp_data d{};
                        d.nr = static_cast<int>(nr | x32);
                        d.arch = arch;
                        for (auto& arg : d.args) arg = v;
                        uint32_t l = run_filter(list->program, d), t = run_filter(tree->program, d);
                        ASSERT_EQ(l, t)
                            << "call " << nr << " arch " << std::hex << arch << " arg " << v;
                        blocked += l != SECCOMP_RET_ALLOW;
                    }
        EXPECT_GT(blocked, 1000);
    }
}

TEST(CapsSeccomp, KeptCapabilitiesOpenTheirCalls) {
    CapSet admin;
    admin.add(21);
    Profile p = default_profile(admin);
    EXPECT_FALSE(has_rule(p, "mount"));
    EXPECT_FALSE(has_rule(p, "unshare"));
    EXPECT_FALSE(has_rule(p, "clone3"));
    EXPECT_TRUE(has_rule(p, "keyctl"));
    EXPECT_TRUE(has_rule(p, "ptrace"));
    CapSet ptrace;
    ptrace.add(19);
    EXPECT_FALSE(has_rule(default_profile(ptrace), "ptrace"));
    EXPECT_TRUE(has_rule(default_profile(ptrace), "mount"));
}

TEST(CapsSeccomp, DefaultProfileBlocksTerminalInjection) {
    for (CapSet kept : {CapSet{}, all_caps()}) {
        Profile p = default_profile(kept);
        std::vector<uint64_t> requests;
        for (const auto& r : p.rules) {
            if (r.syscall != "ioctl") continue;
            ASSERT_EQ(r.args.size(), 1u);
            EXPECT_EQ(r.args[0].index, 1u);
            // Only the low 32 bits: the kernel ignores the rest.
            EXPECT_EQ(r.args[0].op, ArgCmp::Op::MaskedEq);
            EXPECT_EQ(r.args[0].value, 0xffffffffu);
            EXPECT_EQ(r.action, (Action{Action::Kind::Errno, EPERM}));
            requests.push_back(r.args[0].value_two);
        }
        EXPECT_EQ(requests, (std::vector<uint64_t>{0x5412 /* TIOCSTI */, 0x541C /* TIOCLINUX */}));
    }
    EXPECT_NE(describe(default_profile(CapSet{})).find("ioctl if arg1 & 0xffffffff == 0x5412"), std::string::npos);
}

TEST(CapsSeccomp, LogMode) {
    Profile p = default_profile(CapSet{});
    make_log_only(p);
    for (const auto& r : p.rules) EXPECT_EQ(r.action.kind, Action::Kind::Log);
    EXPECT_EQ(p.default_action.kind, Action::Kind::Allow);
    EXPECT_TRUE(compile(p).ok());
}

TEST(CapsSeccomp, DescribeNamesRules) {
    std::string text = describe(default_profile(CapSet{}));
    EXPECT_NE(text.find("# seccomp profile: default"), std::string::npos);
    EXPECT_NE(text.find("default action: allow"), std::string::npos);
    EXPECT_NE(text.find("keyctl"), std::string::npos);
    EXPECT_NE(text.find("errno EPERM"), std::string::npos);
    EXPECT_NE(text.find("unshare if arg0 & 0x10000000 == 0x10000000"), std::string::npos);
    EXPECT_NE(text.find("clone3"), std::string::npos);
    EXPECT_NE(text.find("errno ENOSYS"), std::string::npos);
}

constexpr const char kDockerLike[] = R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
    ],
    "syscalls": [
        {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
        {"names": ["s390_pci_mmio_read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}}
    ]
})";

TEST(CapsSeccomp, ReadsDockerProfiles) {
    auto p = parse_profile(kDockerLike, "docker.json", CapSet{});
    ASSERT_TRUE(p.ok()) << p.error().what;
    EXPECT_EQ(p->default_action, (Action{Action::Kind::Errno, 1}));
    EXPECT_EQ(p->arches, (std::vector<std::string>{"x86", "x32"}));
    EXPECT_TRUE(has_rule(*p, "read"));
    EXPECT_TRUE(has_rule(*p, "personality"));
    EXPECT_FALSE(has_rule(*p, "mount"));  // needs sys_admin
    EXPECT_TRUE(has_rule(*p, "clone"));   // excluded only with sys_admin
    EXPECT_TRUE(has_rule(*p, "ptrace"));
    EXPECT_TRUE(has_rule(*p, "arch_prctl"));
    EXPECT_FALSE(has_rule(*p, "s390_pci_mmio_read"));
    for (const auto& r : p->rules)
        if (r.syscall == "clone3") {
            EXPECT_EQ(r.action, (Action{Action::Kind::Errno, 38}));
        }
    auto compiled = compile(*p);
    ASSERT_TRUE(compiled.ok()) << compiled.error().message();
    EXPECT_GT(compiled->program.size(), 10u);
    EXPECT_NE(compiled->what.find("docker.json"), std::string::npos) << compiled->what;

    CapSet admin;
    admin.add(21);
    auto q = parse_profile(kDockerLike, "docker.json", admin);
    ASSERT_TRUE(q.ok());
    EXPECT_TRUE(has_rule(*q, "mount"));
    EXPECT_FALSE(has_rule(*q, "clone"));
}

TEST(CapsSeccomp, ProfileErrorsNameThePlace) {
    struct Case {
        const char* text;
        const char* error;
    } cases[] = {
        {"{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [{\"names\": [\"getpid\", \"kexec_lod\"], "
         "\"action\": \"SCMP_ACT_ERRNO\"}]}",
         "p.json:2:36: unknown syscall 'kexec_lod'"},
        {"{\"syscalls\": []}", "p.json:1:1: the profile has no defaultAction"},
        {"{\"defaultAction\": \"SCMP_ACT_BOGUS\"}", "p.json:1:19: unsupported action 'SCMP_ACT_BOGUS'"},
        {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"]}]}",
         "p.json:1:50: a syscalls entry has no action"},
        {"{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n\"syscalls\": [{\"names\": [\"read\"], \"action\": "
         "\"SCMP_ACT_ERRNO\",\n\"args\": [{\"index\": 7, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}]}",
         "p.json:3:20: an argument index must be 0 to 5"},
        {"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_VAX\"]}",
         "p.json:1:55: unknown architecture 'SCMP_ARCH_VAX'"},
        {"{\"defaultAction\": \"SCMP_ACT_ALLOW\",,}", "p.json:1:36: unexpected ',', expected a string (an object key)"},
        {"[]", "p.json:1:1: a profile must be a JSON object"},
    };
    for (const auto& c : cases) {
        auto p = parse_profile(c.text, "p.json", CapSet{});
        ASSERT_FALSE(p.ok()) << c.text;
        EXPECT_EQ(p.error().what, c.error);
    }
}

TEST(CapsSeccomp, ProfileFileMissing) {
    auto p = load_profile_file("/nonexistent/profile.json", CapSet{});
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().err, ENOENT);
}

// Run fn in a child and return its exit code (fn's return value).
template <class Fn>
int in_child(Fn fn) {
    pid_t pid = fork();
    if (pid == 0) _exit(fn());
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(CapsSeccomp, DefaultProfileLoadsUnprivilegedAndBlocks) {
    int code = in_child([] {
        if (!set_no_new_privs().ok()) return 10;
        if (!load_default_profile(CapSet{}).ok()) return 11;
        errno = 0;
        if (syscall(SYS_keyctl, 0, -3, 0) != -1 || errno != EPERM) return 12;
        if (socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0) != -1 || errno != EPERM) return 13;
        if (syscall(SYS_clone3, nullptr, 0) != -1 || errno != ENOSYS) return 14;
        if (unshare(0x10000000 /* CLONE_NEWUSER */) != -1 || errno != EPERM) return 15;
        if (getpid() <= 0) return 16;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return 17;
        return 0;
    });
    EXPECT_EQ(code, 0);
}

TEST(CapsSeccomp, LogOnlyProfileBlocksNothing) {
    int code = in_child([] {
        if (!set_no_new_privs().ok()) return 10;
        if (!load_default_profile(CapSet{}, true).ok()) return 11;
        if (syscall(SYS_keyctl, 0, -3, 0) == -1 && errno == EPERM) return 12;
        return 0;
    });
    EXPECT_EQ(code, 0);
}

TEST(CapsPolicy, CloseFdsMarksAllButTheKeptOnes) {
    int code = in_child([] {
        int a = open("/dev/null", O_RDONLY);  // no O_CLOEXEC: would leak
        int b = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (a < 3 || b < 3) return 10;
        if (!kago::fds::keep_only({b}).ok()) return 11;
        if (!(fcntl(a, F_GETFD) & FD_CLOEXEC)) return 12;
        if (fcntl(b, F_GETFD) & FD_CLOEXEC) return 13;
        if (kago::fds::keep_only({99}).ok()) return 14;  // not open
        return 0;
    });
    EXPECT_EQ(code, 0);
}

// --- policy ----------------------------------------------------------------

TEST(CapsPolicy, BuildChecksEverythingFirst) {
    TempDir d;
    Options o;
    o.files = fixture_files(d);
    o.drop = {"all"};
    o.keep = {"net_bind_service"};
    o.user = "app";
    o.seccomp = "default";
    auto p = build_policy(o, all_caps());
    ASSERT_TRUE(p.ok()) << p.error().message();
    EXPECT_EQ(p->keep.list(), std::vector<int>{10});
    EXPECT_EQ(p->ambient.list(), std::vector<int>{10});
    EXPECT_TRUE(p->no_new_privs);
    ASSERT_TRUE(p->user);
    EXPECT_EQ(p->user->uid, 1000u);
    EXPECT_TRUE(p->user->groups.empty());
    ASSERT_TRUE(p->seccomp);
    ASSERT_TRUE(p->profile);
    EXPECT_TRUE(has_rule(*p->profile, "mount"));
    EXPECT_FALSE(p->seccomp->program.empty());

    o.user = "nosuchuser";
    EXPECT_FALSE(build_policy(o, all_caps()).ok());
    o.user = "app";
    o.keep = {"bogus"};
    EXPECT_FALSE(build_policy(o, all_caps()).ok());
    o.keep = {};
    o.seccomp = d.write("bad.json", "{\"defaultAction\": \"SCMP_ACT_ALLOW\"\n  \"syscalls\": []}");
    auto bad = build_policy(o, all_caps());
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().what.find("bad.json:2:3: unexpected '\"', expected ',' or '}'"), std::string::npos)
        << bad.error().what;
}

TEST(CapsPolicy, NothingAskedKeepsTheDefaultSet) {
    Options o;
    auto p = build_policy(o, all_caps());
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->keep, default_caps());
    EXPECT_TRUE(p->ambient.empty());
    EXPECT_TRUE(p->inheritable.empty());
    EXPECT_EQ(p->payload_caps, default_caps());
    EXPECT_FALSE(p->user);
    EXPECT_FALSE(p->seccomp);
    EXPECT_FALSE(p->securebits);
    EXPECT_TRUE(p->no_new_privs);
    o.allow_new_privs = true;
    o.seccomp = "none";
    EXPECT_FALSE(build_policy(o, all_caps())->no_new_privs);
}

TEST(CapsPolicy, ANonRootUserGetsOnlyWhatKeepNames) {
    TempDir d;
    Options o;
    o.files = fixture_files(d);
    o.drop = {"net_raw"};
    o.user = "65534:65534";
    auto p = build_policy(o, all_caps());
    ASSERT_TRUE(p.ok()) << p.error().message();
    EXPECT_TRUE(p->ambient.empty());  // was everything but net_raw
    EXPECT_TRUE(p->inheritable.empty());
    EXPECT_EQ(p->keep, default_caps() - caps({13}));
    o.keep = {"net_bind_service"};
    p = build_policy(o, all_caps());
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->ambient, caps({10}));
}

TEST(CapsPolicy, TheDefaultProfileKeepsItsRulesByDefault) {
    Options o;
    o.seccomp = "default";
    auto p = build_policy(o, all_caps());
    ASSERT_TRUE(p.ok());
    for (const char* n : {"mount", "unshare", "bpf", "ptrace", "syslog", "open_by_handle_at", "ioctl"})
        EXPECT_TRUE(has_rule(*p->profile, n)) << n;
    o.keep = {"all"};
    p = build_policy(o, all_caps());
    ASSERT_TRUE(p.ok());
    for (const char* n : {"mount", "unshare", "bpf", "ptrace", "syslog", "open_by_handle_at"})
        EXPECT_FALSE(has_rule(*p->profile, n)) << n;
    EXPECT_TRUE(has_rule(*p->profile, "ioctl"));  // the terminal, whatever the capabilities
}

TEST(CapsPolicy, LogModeApplies) {
    Options o;
    o.seccomp = "default";
    o.seccomp_log = true;
    auto p = build_policy(o, all_caps() - CapSet{uint64_t{1} << 21});
    ASSERT_TRUE(p.ok());
    for (const auto& r : p->profile->rules) EXPECT_EQ(r.action.kind, Action::Kind::Log);
}

// --- show ------------------------------------------------------------------

constexpr const char kStatus[] =
    "Name:\tsh\nUmask:\t0022\nState:\tR (running)\nUid:\t65534\t65534\t65534\t65534\n"
    "Gid:\t65534\t65534\t65534\t65534\nGroups:\t33 44 \nCapInh:\t0000000000000000\n"
    "CapPrm:\t0000000000000400\nCapEff:\t0000000000000400\nCapBnd:\t0000000000000400\n"
    "CapAmb:\t0000000000000400\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";

TEST(CapsShow, ParsesStatus) {
    ProcessState s;
    parse_status(kStatus, s);
    EXPECT_EQ(s.comm, "sh");
    EXPECT_EQ(s.uid, "65534 65534 65534 65534");
    EXPECT_EQ(s.groups, "33 44");
    EXPECT_EQ(s.effective.list(), std::vector<int>{10});
    EXPECT_EQ(s.ambient.list(), std::vector<int>{10});
    EXPECT_TRUE(s.inheritable.empty());
    EXPECT_EQ(s.no_new_privs, 1);
    EXPECT_EQ(s.seccomp, 2);
    EXPECT_EQ(s.seccomp_filters, 1);
}

TEST(CapsShow, MapsAndCgroups) {
    auto m = parse_id_map("         0     100000      65536\n  65536 0 1\nbogus\n");
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0], (std::array<uint64_t, 3>{0, 100000, 65536}));
    EXPECT_EQ(parse_cgroup("0::/kago/box\n"), "/kago/box");
    EXPECT_EQ(parse_cgroup("12:pids:/a\n11:memory:/b\n0::/c\n"), "/c");
    EXPECT_EQ(parse_cgroup("12:pids:/a\n"), "/a");
}

TEST(CapsShow, TableAndJsonOfThisProcess) {
    auto s = inspect("self");
    ASSERT_TRUE(s.ok()) << s.error().message();
    EXPECT_NE(s->pid, "self");
    EXPECT_EQ(s->namespaces.size(), 8u);
    std::string table = format_table(*s);
    for (const char* k : {"bounding", "permitted", "effective", "inheritable", "ambient", "no_new_privs", "seccomp",
                          "uid_map", "gid_map", "namespaces", "  pid", "  user", "cgroup", "root", "cwd"})
        EXPECT_NE(table.find(k), std::string::npos) << k;
    auto j = parse_json(format_json(*s));
    ASSERT_TRUE(j.ok()) << j.error().what;
    ASSERT_NE(j->get("capabilities"), nullptr);
    EXPECT_TRUE(j->get("capabilities")->get("ambient")->is(JsonValue::Type::Array));
    EXPECT_TRUE(j->get("seccomp")->get("mode")->is(JsonValue::Type::String));
    EXPECT_TRUE(j->get("namespaces")->get("net")->get("host")->is(JsonValue::Type::String));
    EXPECT_TRUE(j->get("uid_map")->is(JsonValue::Type::Array));
}

TEST(CapsShow, JsonIsWellFormedForAFixture) {
    ProcessState s;
    parse_status(kStatus, s);
    s.pid = "42";
    s.uid_map = {{0, 100000, 65536}};
    s.namespaces.push_back(NsInfo{"pid", 4026532000, NsInfo::Host::Own});
    s.cgroup = "/kago/\"odd\"";
    auto j = parse_json(format_json(s));
    ASSERT_TRUE(j.ok()) << j.error().what;
    uint64_t pid = 0;
    EXPECT_TRUE(j->get("pid")->as_u64(pid));
    EXPECT_EQ(pid, 42u);
    EXPECT_EQ(j->get("cgroup")->text, "/kago/\"odd\"");
    EXPECT_EQ(j->get("capabilities")->get("effective")->items[0].text, "net_bind_service");
    EXPECT_EQ(j->get("namespaces")->get("pid")->get("host")->text, "own");
    EXPECT_TRUE(j->get("no_new_privs")->boolean);
    std::string table = format_table(s);
    EXPECT_NE(table.find("filter (1 filter)"), std::string::npos);
    EXPECT_NE(table.find("0 -> 100000 (65536)"), std::string::npos);
}

// The attack: a /proc that is a plain directory of the root (no --proc),
// holding a status file that claims no capability and seccomp on.
TEST(CapsShow, RefusesAStatusFileThatIsNotProcfs) {
    TempDir d;
    ASSERT_EQ(::mkdir((d.path() + "/self").c_str(), 0755), 0);
    d.write("self/status", kStatus);
    auto s = inspect("self", d.path());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().err, EXDEV);
    EXPECT_NE(s.error().what.find("not a procfs file"), std::string::npos) << s.error().what;
}

TEST(CapsShow, MissingProcess) {
    auto s = inspect("999999999");
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().what.find("process 999999999"), std::string::npos);
}

// prepare() builds apply()'s calls beforehand (a dry run reads nothing and
// takes every capability as held); run() in a dry run makes none of them.
TEST(CapsPrepared, CallsInTheKernelsOrder) {
    kago::trace::set_dry_run(true);
    Policy p;
    p.keep.add(10);  // net_bind_service
    p.inheritable = p.ambient = p.keep;
    Identity id;
    id.uid = 1000;
    id.gid = 1000;
    id.groups = {1000};
    id.name = "u";
    p.user = id;
    auto pr = prepare(p);
    ASSERT_TRUE(pr);
    using K = PreparedCall::Kind;
    std::vector<K> kinds;
    for (const auto& c : pr->calls) kinds.push_back(c.kind);
    ASSERT_GE(kinds.size(), 10u);
    EXPECT_EQ(kinds[0], K::keepcaps);
    EXPECT_EQ(kinds[1], K::setgroups);
    EXPECT_EQ(kinds[2], K::setresgid);
    EXPECT_EQ(kinds[3], K::setresuid);
    EXPECT_EQ(kinds[4], K::keepcaps);
    EXPECT_EQ(kinds[5], K::drop_bounding);
    EXPECT_EQ(std::count(kinds.begin(), kinds.end(), K::drop_bounding), (all_caps() - p.keep).list().size());
    size_t n = kinds.size();
    EXPECT_EQ(kinds[n - 4], K::capset);
    EXPECT_EQ(kinds[n - 3], K::clear_ambient);
    EXPECT_EQ(kinds[n - 2], K::raise_ambient);
    EXPECT_EQ(kinds[n - 1], K::no_new_privs);
    EXPECT_EQ(pr->calls[2].line, "setresgid(1000, 1000, 1000)");
    EXPECT_EQ(pr->calls[n - 2].line, "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE)");
    EXPECT_EQ(run(*pr), -1);
    auto e = error(*pr, 3, EINVAL);
    EXPECT_EQ(e.what, "setresuid(1000, 1000, 1000)");
    EXPECT_EQ(e.err, EINVAL);
    EXPECT_EQ(e.hint, "the uid is not mapped in this user namespace");
    kago::trace::set_dry_run(false);
}

// current() reads the bounding and ambient sets from /proc/self/status: the
// same sets as one prctl() per capability.
TEST(Current, BoundingAndAmbientMatchPrctl) {
    auto pc = current(true, true);
    ASSERT_TRUE(pc.ok());
    for (int i = 0; i <= last_cap(); ++i) {
        EXPECT_EQ(pc->bounding.has(i), prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1) << i;
        EXPECT_EQ(pc->ambient.has(i), prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, i, 0, 0) == 1)
            << i;
    }
}
