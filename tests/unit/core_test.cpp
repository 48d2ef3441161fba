// Unit tests for lib/core: everything that needs no privilege.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <optional>
#include <string>

#include "core/child.hpp"
#include "core/cli.hpp"
#include "core/env.hpp"
#include "core/exec.hpp"
#include "core/fd.hpp"
#include "core/json.hpp"
#include "core/parse.hpp"
#include "core/proc.hpp"
#include "core/ready.hpp"
#include "core/result.hpp"
#include "core/state.hpp"
#include "core/sys.hpp"
#include "core/trace.hpp"

using namespace kago;

namespace {

Result<int> half(int x) {
    if (x % 2) return usage_error(cat("half of ", x, ": odd"));
    return x / 2;
}
Result<int> quarter(int x) {
    int h = TRY(half(x));
    return TRY(half(h));
}
Status check_even(int x) {
    TRY(half(x));
    return {};
}

// Capture what a function writes to stderr.
template <class F>
std::string capture_stderr(F&& f) {
    char path[] = "/tmp/kago-core-test-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    int saved = dup(2);
    dup2(fd, 2);
    f();
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
}

struct TraceReset {
    ~TraceReset() {
        trace::set_verbose(false);
        trace::set_dry_run(false);
    }
};

}  // namespace

TEST(Result, ValueAndError) {
    auto ok = half(4);
    ASSERT_TRUE(ok);
    EXPECT_EQ(*ok, 2);
    auto bad = half(3);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().err, 0);
    EXPECT_EQ(bad.error().message(), "half of 3: odd");
}

TEST(Result, TryPropagatesValuesAndErrors) {
    EXPECT_EQ(*quarter(8), 2);
    auto bad = quarter(6);  // 6 -> 3 -> odd
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().what, "half of 3: odd");
    EXPECT_TRUE(check_even(2));
    EXPECT_FALSE(check_even(1));
}

TEST(Error, SysErrorCarriesErrnoAndNamesObject) {
    errno = ENOENT;
    Error e = sys_error("open /nonexistent");
    EXPECT_EQ(e.err, ENOENT);
    EXPECT_EQ(e.message(), "open /nonexistent: No such file or directory");
    Error h = sys_error("x").with_hint("try y");
    EXPECT_EQ(h.hint, "try y");
}

TEST(Cat, MixesStringsAndNumbers) {
    EXPECT_EQ(cat("a", 1, "b", -2, std::string("c"), 'd', 3u), "a1b-2cd3");
}

TEST(UniqueFd, ClosesOnDestructionAndMoves) {
    int raw;
    {
        UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        raw = fd.get();
        ASSERT_GE(raw, 0);
        UniqueFd moved(std::move(fd));
        EXPECT_FALSE(fd.valid());
        EXPECT_EQ(moved.get(), raw);
        EXPECT_NE(fcntl(raw, F_GETFD), -1);
    }
    EXPECT_EQ(fcntl(raw, F_GETFD), -1);
    EXPECT_EQ(errno, EBADF);
}

TEST(UniqueFd, ReleaseKeepsTheDescriptorOpen) {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    int raw = fd.release();
    EXPECT_FALSE(fd.valid());
    EXPECT_NE(fcntl(raw, F_GETFD), -1);
    ::close(raw);
}

TEST(Exec, ExitCodesFollowTheContract) {
    EXPECT_EQ(exit_code_for_exec_error(ENOENT), 127);
    EXPECT_EQ(exit_code_for_exec_error(EACCES), 126);
    EXPECT_EQ(exit_code_for_exec_error(ENOEXEC), 126);
}

TEST(Exec, DefaultCommandIsShellOrBinSh) {
    const char* old = getenv("SHELL");
    std::string saved = old ? old : "";
    setenv("SHELL", "/bin/zsh", 1);
    EXPECT_EQ(default_command(), std::vector<std::string>{"/bin/zsh"});
    unsetenv("SHELL");
    EXPECT_EQ(default_command(), std::vector<std::string>{"/bin/sh"});
    if (old) setenv("SHELL", saved.c_str(), 1);
}

TEST(Exec, FailedExecMapsToStatusInChild) {
    for (auto [cmd, want] : {std::pair{"/nonexistent/kago-test", 127}, std::pair{"/etc/passwd", 126}}) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            auto p = prepare_exec({cmd});
            Error e = exec_prepared(*p);
            _exit(exit_code_for_exec_error(e.err));
        }
        int ws;
        waitpid(pid, &ws, 0);
        EXPECT_TRUE(WIFEXITED(ws));
        EXPECT_EQ(WEXITSTATUS(ws), want) << cmd;
    }
}

TEST(Exec, PrepareExecOpensNoDescriptorForOrdinaryCommands) {
    auto p = prepare_exec({"true"});
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->program.valid());
    auto q = prepare_exec({});
    ASSERT_TRUE(q);
    EXPECT_FALSE(q->argv.empty());
}

TEST(Exec, PrepareExecTellsKagoProgramsByNameOrPath) {
    auto by_path = prepare_exec({"/opt/kago/bin/mount-layers", "--help"});
    ASSERT_TRUE(by_path);
    EXPECT_TRUE(by_path->kago);
    EXPECT_FALSE(by_path->program.valid());  // no such file here: left to execvp
    auto other = prepare_exec({"/usr/bin/mount-layers-not"});
    ASSERT_TRUE(other);
    EXPECT_FALSE(other->kago);
    auto plain = prepare_exec({"true"});
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->kago);
}

TEST(Exec, SealProgramMakesAReadOnlyCopyOfTheLoadedPart) {
    PreparedExec p;
    p.argv = {"unit-tests"};
    p.program.reset(::open("/proc/self/exe", O_PATH | O_CLOEXEC));
    char self[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    ASSERT_GT(n, 0);
    p.program_path.assign(self, static_cast<size_t>(n));
    ASSERT_TRUE(p.program.valid());
    auto r = seal_program(p);
    ASSERT_TRUE(r) << r.error().what;
    EXPECT_TRUE(p.sealed);
    int fd = p.program.get();
    int seals = ::fcntl(fd, F_GET_SEALS);
    EXPECT_EQ(seals & (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE),
              F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
    struct stat copy, file;
    ASSERT_EQ(::fstat(fd, &copy), 0);
    ASSERT_EQ(::stat(p.program_path.c_str(), &file), 0);
    EXPECT_GT(copy.st_size, 0);
    EXPECT_LE(copy.st_size, file.st_size);  // no debug information past the last PT_LOAD
    char magic[4] = {};
    ASSERT_EQ(::pread(fd, magic, 4, 0), 4);
    EXPECT_EQ(std::string(magic, 4), "\x7f" "ELF");
    // Nothing can write it, not even through /proc/self/fd.
    UniqueFd w(::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_WRONLY | O_CLOEXEC));
    if (w.valid()) {
        EXPECT_LT(::pwrite(w.get(), "x", 1, 0), 0);
        EXPECT_EQ(errno, EPERM);
    }
    // Sealing twice is a no-op.
    EXPECT_TRUE(seal_program(p));
    EXPECT_EQ(p.program.get(), fd);
    EXPECT_FALSE(running_sealed());
}

TEST(Exec, DescribeArgv) { EXPECT_EQ(describe_argv({"a", "b c"}), "[\"a\", \"b c\"]"); }

TEST(Exec, ShellLineQuotesWhatShWouldSplitOrExpand) {
    EXPECT_EQ(shell_word("/usr/bin/pasta"), "/usr/bin/pasta");
    EXPECT_EQ(shell_word("127.0.0.1/8080:80,9000"), "127.0.0.1/8080:80,9000");
    EXPECT_EQ(shell_word(""), "''");
    EXPECT_EQ(shell_word("a b"), "'a b'");
    EXPECT_EQ(shell_word("$HOME"), "'$HOME'");
    EXPECT_EQ(shell_word("it's"), "'it'\\''s'");
    EXPECT_EQ(shell_word(std::string_view("a\0b", 3)), std::string("'a\0b'", 5));
    EXPECT_EQ(shell_line({"echo", "a;b", "c"}), "echo 'a;b' c");
}

TEST(Env, StripKagoRemovesOnlyKagoVariables) {
    setenv("KAGO_NAME", "x", 1);
    setenv("KAGO_SOMETHING_NEW", "y", 1);
    setenv("KAGOX", "keep", 1);
    env::strip_kago();
    EXPECT_EQ(getenv("KAGO_NAME"), nullptr);
    EXPECT_EQ(getenv("KAGO_SOMETHING_NEW"), nullptr);
    EXPECT_STREQ(getenv("KAGOX"), "keep");
    unsetenv("KAGOX");
}

TEST(Env, ContractParsesTheKagoVariablesOnce) {
    const char* vars[] = {"PATH=/bin",
                          "KAGO_NAME=box",
                          "KAGO_STATE_DIR=/run/kago/box",
                          "KAGO_CGROUP=/kago/box",
                          "KAGO_NETNS=/run/netns/kago-box",
                          "KAGO_TRACE=1",
                          "KAGO_DRY_RUN=0",
                          "KAGO_EXEC=1",
                          "KAGO_READY_FD=7",
                          "KAGO_CONSOLE_FD=8",
                          "KAGO_IMAGE=alpine",
                          "KAGO_IMAGE_LAYERS=/s/a:/s/b",
                          "KAGO_IMAGE_WORKDIR=/w",
                          "KAGO_IMAGE_USER=nobody",
                          "KAGO_IMAGE_ENV=[\"A=1\"]",
                          "KAGO_IMAGE_CMD=[\"sh\"]",
                          "KAGO_IMAGE_STORE=/store",
                          "KAGO_UNKNOWN=x",
                          "KAGO_BROKEN",
                          nullptr};
    env::Contract c = env::Contract::from_environ(const_cast<char* const*>(vars));
    EXPECT_EQ(c.name, "box");
    EXPECT_EQ(c.state_dir, "/run/kago/box");
    EXPECT_EQ(c.cgroup, "/kago/box");
    EXPECT_EQ(c.netns, "/run/netns/kago-box");
    EXPECT_TRUE(c.trace);
    EXPECT_FALSE(c.dry_run) << "only 1 is true";
    EXPECT_TRUE(c.exec);
    EXPECT_EQ(c.ready_fd, "7");
    EXPECT_EQ(c.console_fd, "8");
    EXPECT_EQ(c.image, "alpine");
    EXPECT_EQ(c.image_layers, "/s/a:/s/b");
    EXPECT_EQ(c.image_workdir, "/w");
    EXPECT_EQ(c.image_user, "nobody");
    EXPECT_EQ(c.image_env, "[\"A=1\"]");
    EXPECT_EQ(c.image_cmd, "[\"sh\"]");
    EXPECT_EQ(c.image_store, "/store");
    EXPECT_TRUE(c.changes.empty());
    EXPECT_EQ(c.get(env::kName), "box");
    EXPECT_EQ(c.get(env::kTrace), "1");
    EXPECT_EQ(c.get("KAGO_UNKNOWN"), "");
    env::Contract none = env::Contract::from_environ(nullptr);
    EXPECT_EQ(none.name, "");
    EXPECT_FALSE(none.trace);
}

TEST(Env, ContractRendersItsSettingsInOrder) {
    env::Contract c;
    c.name = "old";
    c.set(env::kName, "box");
    c.set(env::kCgroup, "/kago/box");
    c.unset(env::kImage);
    EXPECT_EQ(c.get(env::kName), "box") << "the last setting wins over what was read";
    EXPECT_EQ(c.get(env::kImage), "");
    std::vector<std::string> base = {"PATH=/bin", "KAGO_NAME=old", "KAGO_IMAGE=alpine",
                                     "TERM=xterm"};
    EXPECT_EQ(c.render(base), (std::vector<std::string>{"PATH=/bin", "KAGO_NAME=box", "TERM=xterm",
                                                        "KAGO_CGROUP=/kago/box"}));
    // The last program: every KAGO_ variable goes, and what is set after
    // (a dry run's KAGO_DRY_RUN) comes back.
    c.strip_kago();
    EXPECT_EQ(c.get(env::kName), "");
    EXPECT_EQ(c.render(base), (std::vector<std::string>{"PATH=/bin", "TERM=xterm"}));
    c.set(env::kDryRun, "1");
    EXPECT_EQ(c.render(base),
              (std::vector<std::string>{"PATH=/bin", "TERM=xterm", "KAGO_DRY_RUN=1"}));
}

TEST(Env, ContractAppliesToThisProcess) {
    setenv("KAGO_IMAGE", "alpine", 1);
    unsetenv("KAGO_CGROUP");
    env::Contract c = env::Contract::from_environ();
    c.set(env::kCgroup, "/kago/box");
    c.unset(env::kImage);
    EXPECT_EQ(getenv("KAGO_CGROUP"), nullptr) << "nothing changes before apply()";
    c.apply();
    EXPECT_STREQ(getenv("KAGO_CGROUP"), "/kago/box");
    EXPECT_EQ(getenv("KAGO_IMAGE"), nullptr);
    EXPECT_EQ(env::Contract::from_environ().cgroup, "/kago/box");
    env::Contract last;
    last.strip_kago();
    last.apply();
    EXPECT_EQ(getenv("KAGO_CGROUP"), nullptr);
}

TEST(Env, KnowsTheKagoPrograms) {
    EXPECT_TRUE(env::is_kago_program("cap-drop"));
    EXPECT_TRUE(env::is_kago_program("unshare-run"));
    EXPECT_FALSE(env::is_kago_program("/bin/cap-drop"));
    EXPECT_FALSE(env::is_kago_program("sh"));
}

TEST(Parse, Numbers) {
    EXPECT_EQ(*parse::u64("42", "x"), 42u);
    EXPECT_FALSE(parse::u64("", "x"));
    EXPECT_FALSE(parse::u64("4x", "x"));
    EXPECT_FALSE(parse::u64("99999999999999999999999", "x"));
    EXPECT_EQ(*parse::i64("-5", "x"), -5);
    EXPECT_EQ(parse::u64("4x", "--pids").error().message(), "--pids: '4x' is not a number");
}

TEST(Parse, Sizes) {
    EXPECT_EQ(*parse::size("512", "s"), 512u);
    EXPECT_EQ(*parse::size("64K", "s"), 64u << 10);
    EXPECT_EQ(*parse::size("32M", "s"), 32u << 20);
    EXPECT_EQ(*parse::size("2G", "s"), 2ull << 30);
    EXPECT_EQ(*parse::size("1T", "s"), 1ull << 40);
    EXPECT_EQ(*parse::size("1MiB", "s"), 1u << 20);
    EXPECT_EQ(*parse::size("max", "s"), UINT64_MAX);
    EXPECT_FALSE(parse::size("12Q", "--memory"));
    EXPECT_FALSE(parse::size("M", "--memory"));
    EXPECT_FALSE(parse::size("", "--memory"));
    EXPECT_FALSE(parse::size("99999999999T", "--memory"));
    EXPECT_NE(parse::size("12Q", "--memory").error().message().find("--memory: '12Q'"), std::string::npos);
}

TEST(Parse, Fractions) {
    EXPECT_EQ(*parse::fraction("1.5", 100000, "c"), 150000u);
    EXPECT_EQ(*parse::fraction("0.2", 100000, "c"), 20000u);
    EXPECT_EQ(*parse::fraction("2", 100000, "c"), 200000u);
    EXPECT_EQ(*parse::fraction(".5", 1000, "c"), 500u);
    EXPECT_FALSE(parse::fraction("1.", 1000, "c"));
    EXPECT_FALSE(parse::fraction("a", 1000, "c"));
    EXPECT_FALSE(parse::fraction("", 1000, "c"));
}

TEST(Parse, SplitKeepsEmptyFields) {
    EXPECT_EQ(parse::split("a:b::c", ':'), (std::vector<std::string>{"a", "b", "", "c"}));
    EXPECT_EQ(parse::split("", ':'), (std::vector<std::string>{""}));
}

TEST(Parse, HumanSize) {
    EXPECT_EQ(parse::human_size(64ull << 20), "64 MiB");
    EXPECT_EQ(parse::human_size(1536ull << 20), "1.5 GiB");
    EXPECT_EQ(parse::human_size(100), "100 bytes");
}

TEST(Json, EscapesAndBuildsObjects) {
    EXPECT_EQ(json::escape("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
    json::Object o;
    o.add("pid", 42).add("name", "box").add("ok", true).add_null("ip").add_raw("ns", "{\"a\":1}");
    EXPECT_EQ(o.str(), "{\"pid\":42,\"name\":\"box\",\"ok\":true,\"ip\":null,\"ns\":{\"a\":1}}");
}

TEST(Json, WriteAndClose) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    ASSERT_TRUE(json::write_and_close(p[1], "{}"));
    char buf[8] = {};
    EXPECT_EQ(read(p[0], buf, sizeof buf), 3);
    EXPECT_STREQ(buf, "{}\n");
    EXPECT_EQ(fcntl(p[1], F_GETFD), -1);
    close(p[0]);
}

TEST(Trace, FormatsCallsInSyscallForm) {
    EXPECT_EQ(trace::quote("a\"b\n"), "\"a\\\"b\\n\"");
    EXPECT_EQ(trace::clone_flags(CLONE_NEWNS | CLONE_NEWUTS), "CLONE_NEWNS|CLONE_NEWUTS");
    EXPECT_EQ(trace::clone_flags(CLONE_NEWPID | SIGCHLD), "CLONE_NEWPID|SIGCHLD");
    EXPECT_EQ(trace::mount_flags(MS_BIND | MS_REC), "MS_BIND|MS_REC");
    EXPECT_EQ(trace::mount_flags(0), "0");
    EXPECT_EQ(trace::flags(0x5, {{1, "A"}}), "A|0x4");
    EXPECT_EQ(trace::result_suffix(3, 0), " = 3");
    EXPECT_EQ(trace::result_suffix(-1, EINVAL), " = -1 EINVAL (Invalid argument)");
}

TEST(Trace, VerbosePrintsTheCallWithItsResult) {
    TraceReset reset;
    trace::set_program("core-test");
    trace::set_verbose(true);
    std::string out = capture_stderr([] {
        auto r = sys::mkdir("/nonexistent-kago/x", 0755);
        EXPECT_FALSE(r);
        EXPECT_EQ(r.error().err, ENOENT);
        EXPECT_EQ(r.error().what, "create directory /nonexistent-kago/x");
    });
    EXPECT_EQ(out, "core-test: mkdir(\"/nonexistent-kago/x\", 0755) = -1 ENOENT (No such file or directory)\n");
}

TEST(Trace, DryRunPrintsWithoutCalling) {
    TraceReset reset;
    trace::set_program("core-test");
    trace::set_dry_run(true);
    char dir[] = "/tmp/kago-core-dry-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    std::string sub = std::string(dir) + "/made";
    std::string out = capture_stderr([&] { EXPECT_TRUE(sys::mkdir(sub.c_str(), 0700)); });
    struct stat st;
    EXPECT_NE(stat(sub.c_str(), &st), 0) << "dry run must not create it";
    EXPECT_EQ(out, "core-test: mkdir(\"" + sub + "\", 0700) (dry run)\n");
    rmdir(dir);
}

TEST(Trace, SilentWhenOff) {
    TraceReset reset;
    std::string out = capture_stderr([] { (void)sys::mkdir("/nonexistent-kago/y", 0755); });
    EXPECT_EQ(out, "");
}

TEST(Sys, WriteFileAndReadBack) {
    char path[] = "/tmp/kago-core-wf-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ASSERT_TRUE(sys::write_file(path, "hello\n", O_TRUNC));
    EXPECT_EQ(*sys::read_file(path), "hello\n");
    unlink(path);
    auto r = sys::read_file("/nonexistent-kago");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "open /nonexistent-kago: No such file or directory");
}

TEST(Sys, MkdirP) {
    char dir[] = "/tmp/kago-core-mk-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    std::string deep = std::string(dir) + "/a/b/c";
    ASSERT_TRUE(sys::mkdir_p(deep, 0700));
    struct stat st;
    EXPECT_EQ(stat(deep.c_str(), &st), 0);
    ASSERT_TRUE(state::remove_tree(dir));
    EXPECT_NE(stat(dir, &st), 0);
}

// A pipe takes at most its capacity per write(); a writer that wrote once
// would stop short. write_all writes it all, and names the object on error.
TEST(Sys, WriteAllWritesEverythingThroughShortWrites) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    ASSERT_GT(fcntl(p[1], F_SETPIPE_SZ, 4096), 0);
    std::string big(1 << 20, 'x');
    for (size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(p[0]);
        _exit(sys::write_all(p[1], big.data(), big.size()) == 0 ? 0 : 1);
    }
    close(p[1]);
    std::string got;
    char buf[65536];
    for (ssize_t n; (n = read(p[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
    close(p[0]);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(st, 0);
    EXPECT_EQ(got, big);

    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    auto r = sys::write_all(p[1], "x", 1, "the pipe");
    signal(SIGPIPE, SIG_DFL);
    close(p[1]);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err, EPIPE);
    EXPECT_EQ(r.error().message(), "write the pipe: Broken pipe");
    EXPECT_TRUE(sys::write_all(-1, "", 0, "nothing"));  // nothing to write: no call
}

// open_beneath: never out of the directory by "..", an absolute path or a
// symlink; a symlink that stays beneath is followed only when asked.
TEST(Sys, OpenBeneathStaysBeneath) {
    char dir[] = "/tmp/kago-core-ob-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    std::string d = dir;
    ASSERT_EQ(mkdir((d + "/in").c_str(), 0700), 0);
    ASSERT_EQ(mkdir((d + "/in/sub").c_str(), 0700), 0);
    ASSERT_TRUE(sys::write_file((d + "/outside").c_str(), "secret", O_CREAT));
    ASSERT_TRUE(sys::write_file((d + "/in/sub/f").c_str(), "ok", O_CREAT));
    ASSERT_EQ(symlink("../outside", (d + "/in/up").c_str()), 0);
    ASSERT_EQ(symlink("sub/f", (d + "/in/down").c_str()), 0);
    UniqueFd in(open((d + "/in").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(in);

    UniqueFd f(sys::open_beneath(in.get(), "sub/f", O_RDONLY));
    ASSERT_TRUE(f) << strerror(errno);
    EXPECT_NE(fcntl(f.get(), F_GETFD) & FD_CLOEXEC, 0);
    errno = 0;
    EXPECT_EQ(sys::open_beneath(in.get(), "../outside", O_RDONLY), -1);
    EXPECT_EQ(errno, EXDEV);
    EXPECT_EQ(sys::open_beneath(in.get(), (d + "/outside").c_str(), O_RDONLY), -1);
    EXPECT_EQ(errno, EXDEV);
    EXPECT_EQ(sys::open_beneath(in.get(), "sub/../../outside", O_RDONLY), -1);
    EXPECT_EQ(errno, EXDEV);
    EXPECT_EQ(sys::open_beneath(in.get(), "down", O_RDONLY), -1);
    EXPECT_EQ(errno, ELOOP);
    EXPECT_EQ(sys::open_beneath(in.get(), "up", O_RDONLY, 0, true), -1);
    EXPECT_EQ(errno, EXDEV);
    UniqueFd g(sys::open_beneath(in.get(), "down", O_RDONLY, 0, true));
    EXPECT_TRUE(g);
    EXPECT_EQ(sys::open_beneath(in.get(), "/proc/self/cwd", O_RDONLY), -1);
    // O_CREAT takes the mode (under the umask); O_NOFOLLOW|O_EXCL refuses to
    // write through a planted symlink.
    UniqueFd c(sys::open_beneath(in.get(), "sub/new", O_WRONLY | O_CREAT | O_EXCL, 0600));
    ASSERT_TRUE(c);
    struct stat st;
    ASSERT_EQ(fstat(c.get(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(sys::open_beneath(in.get(), "up", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600),
              -1);
    EXPECT_EQ(*sys::read_file((d + "/outside").c_str()), "secret");
    ASSERT_TRUE(state::remove_tree(dir));
}

TEST(State, ValidatesNames) {
    EXPECT_TRUE(state::validate_name("web-1"));
    EXPECT_TRUE(state::validate_name("a.b_c"));
    EXPECT_FALSE(state::validate_name(""));
    EXPECT_FALSE(state::validate_name("-x"));
    EXPECT_FALSE(state::validate_name("../etc"));
    EXPECT_FALSE(state::validate_name("a/b"));
    EXPECT_FALSE(state::validate_name(std::string(33, 'a')));
}

TEST(State, GeneratesAndRecordsAName) {
    unsetenv("KAGO_NAME");
    env::Contract c = env::Contract::from_environ();
    auto n = state::container_name(c);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->size(), 8u);
    EXPECT_EQ(c.get(env::kName), *n) << "set in the contract for the rest of the chain";
    EXPECT_EQ(getenv("KAGO_NAME"), nullptr) << "and not behind the caller's back";
    EXPECT_EQ(*state::container_name(c), *n) << "the same name the second time";
    env::Contract bad;
    bad.name = "bad/name";
    EXPECT_FALSE(state::container_name(bad));
}

TEST(State, OwnedDirectoryIsRemovedOnDestruction) {
    char root[] = "/tmp/kago-core-state-XXXXXX";
    ASSERT_NE(mkdtemp(root), nullptr);
    std::string path;
    {
        unsetenv("KAGO_STATE_DIR");
        // Point the runtime root at our temp dir through KAGO_STATE_DIR-less
        // acquire: use XDG_RUNTIME_DIR when not root, else test the
        // not-owned path below.
        setenv("KAGO_STATE_DIR", (std::string(root) + "/given").c_str(), 1);
        mkdir((std::string(root) + "/given").c_str(), 0700);
        env::Contract c = env::Contract::from_environ();
        auto d = state::StateDir::acquire("box", c);
        ASSERT_TRUE(d);
        EXPECT_FALSE(d->owned());
        EXPECT_TRUE(d->write("pid", "42"));
        EXPECT_TRUE(d->write("ns/net", "net:[1]"));
        EXPECT_EQ(*sys::read_file((std::string(root) + "/given/pid").c_str()), "42\n");
        path = d->path();
    }
    struct stat st;
    EXPECT_EQ(stat(path.c_str(), &st), 0) << "a directory we did not create is not removed";
    unsetenv("KAGO_STATE_DIR");
    ASSERT_TRUE(state::remove_tree(root));
}

// A supervisor below the first program enlists in the state directory, so
// that a same-name start waits for it (issue 17).
TEST(State, EnlistWritesPidAndStartTime) {
    char root[] = "/tmp/kago-core-enlist-XXXXXX";
    ASSERT_NE(mkdtemp(root), nullptr);
    setenv("KAGO_STATE_DIR", root, 1);
    {
        env::Contract c = env::Contract::from_environ();
        auto d = state::StateDir::acquire("box", c);
        ASSERT_TRUE(d);
        ASSERT_TRUE(d->enlist("net-setup"));
        proc::Owner me = proc::self();
        EXPECT_EQ(*sys::read_file((std::string(root) + "/supervisors/net-setup." + std::to_string(getpid())).c_str()),
                  std::to_string(me.pid) + " " + std::to_string(me.start) + "\n");
        EXPECT_FALSE(d->enlist("pasta", 0x7ffffff0)) << "no such process: nothing to enlist";
    }
    unsetenv("KAGO_STATE_DIR");
    ASSERT_TRUE(state::remove_tree(root));
}

TEST(State, RemoveTreeDoesNotFollowSymlinks) {
    char dir[] = "/tmp/kago-core-rt-XXXXXX";
    char outside[] = "/tmp/kago-core-out-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    ASSERT_NE(mkdtemp(outside), nullptr);
    std::string keep = std::string(outside) + "/keep";
    close(open(keep.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    ASSERT_EQ(symlink(outside, (std::string(dir) + "/link").c_str()), 0);
    ASSERT_TRUE(state::remove_tree(dir));
    struct stat st;
    EXPECT_EQ(stat(keep.c_str(), &st), 0);
    ASSERT_TRUE(state::remove_tree(outside));
}

TEST(Proc, ExitCodeOfWaitStatus) {
    EXPECT_EQ(proc::exit_code(3 << 8), 3);
    EXPECT_EQ(proc::exit_code(SIGKILL), 128 + SIGKILL);
}

TEST(Proc, SuperviseReturnsStatusAndForwardsSignals) {
    proc::SignalBlock block;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        block.restore_in_child();
        pause();
        _exit(0);
    }
    // Send ourselves SIGTERM: supervise() must forward it to the child.
    kill(getpid(), SIGTERM);
    int seen = 0;
    auto ws = proc::supervise(pid, [&](int sig) { seen = sig; });
    ASSERT_TRUE(ws);
    EXPECT_TRUE(WIFSIGNALED(*ws));
    EXPECT_EQ(WTERMSIG(*ws), SIGTERM);
    EXPECT_EQ(seen, SIGTERM);
}

TEST(Proc, SuperviseTakesAnEarlyStatusWithoutWaitingForTheExit) {
    proc::SignalBlock block;
    int st[2], hold[2];
    ASSERT_EQ(pipe2(st, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        block.restore_in_child();
        alarm(10);  // never outlive a broken test
        close(st[0]);
        close(hold[1]);
        (void)child::send(st[1], child::Kind::status, -1, 0, 5 << 8);  // as child::init() does
        char b;
        (void)!read(hold[0], &b, 1);  // until the test lets go
        _exit(0);
    }
    close(st[1]);
    close(hold[0]);
    auto ws = proc::supervise(pid, st[0]);
    ASSERT_TRUE(ws);
    EXPECT_EQ(*ws, 5 << 8);
    // The child is still there, blocked on `hold`: supervise() did not wait.
    int real = 0;
    EXPECT_EQ(waitpid(pid, &real, WNOHANG), 0);
    close(hold[1]);
    ASSERT_EQ(waitpid(pid, &real, 0), pid);
    EXPECT_EQ(real, 0);
    close(st[0]);
}

TEST(Proc, SuperviseFallsBackToTheExitWhenNoStatusComes) {
    proc::SignalBlock block;
    int st[2];
    ASSERT_EQ(pipe2(st, O_CLOEXEC), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        block.restore_in_child();
        close(st[0]);
        close(st[1]);  // end of file, no status
        alarm(10);
        pause();
        _exit(3);
    }
    close(st[1]);
    // The SIGTERM we send ourselves must be forwarded while the pipe is
    // watched, and the child's own status is what comes back.
    kill(getpid(), SIGTERM);
    int seen = 0;
    auto ws = proc::supervise(pid, st[0], [&](int sig) { seen = sig; });
    ASSERT_TRUE(ws);
    EXPECT_TRUE(WIFSIGNALED(*ws));
    EXPECT_EQ(WTERMSIG(*ws), SIGTERM);
    EXPECT_EQ(seen, SIGTERM);
    close(st[0]);
}

// The futex word that net-setup's command process and pack's helpers
// report through, with a child that shares our memory as they do.
TEST(Proc, PostWakesWaitWhileInAChildSharingOurMemory) {
    static int word = 0;
    word = 0;
    struct timespec short_wait = {0, 20 * 1000 * 1000};
    EXPECT_EQ(proc::wait_while(word, 0, &short_wait), 0);  // nobody posts: the timeout
    static char stack[64 * 1024];
    pid_t pid = ::clone(
        [](void*) -> int {
            ::usleep(50 * 1000);
            proc::post(word, 7);
            return 0;
        },
        stack + sizeof stack, CLONE_VM | SIGCHLD, nullptr);
    ASSERT_GT(pid, 0);
    struct timespec long_wait = {5, 0};  // a lost wake-up fails here, not hangs
    EXPECT_EQ(proc::wait_while(word, 0, &long_wait), 7);
    int ws = 0;
    ASSERT_EQ(::waitpid(pid, &ws, 0), pid);
    EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

TEST(Proc, WaitEndedReturnsWhenTheProcessExitsOrAtTheDeadline) {
    pid_t quick = fork();
    if (quick == 0) {
        usleep(100 * 1000);
        _exit(0);
    }
    ASSERT_GT(quick, 0);
    // A zombie counts as ended: nobody has reaped it yet.
    EXPECT_TRUE(proc::wait_ended(quick, proc::monotonic_ms() + 10000));
    ASSERT_EQ(waitpid(quick, nullptr, 0), quick);
    EXPECT_TRUE(proc::wait_ended(quick, proc::monotonic_ms() + 10000)) << "gone: at once";
    pid_t slow = fork();
    if (slow == 0) {
        pause();
        _exit(0);
    }
    ASSERT_GT(slow, 0);
    EXPECT_FALSE(proc::wait_ended(slow, proc::monotonic_ms() + 50));
    EXPECT_FALSE(proc::wait_ended(slow, proc::monotonic_ms() - 1)) << "a deadline that has passed";
    kill(slow, SIGKILL);
    ASSERT_EQ(waitpid(slow, nullptr, 0), slow);
}

TEST(Proc, ExitLikeReRaisesTheSignal) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child::exit_like(SIGUSR1);  // as if our child died of SIGUSR1
    int ws;
    waitpid(pid, &ws, 0);
    EXPECT_TRUE(WIFSIGNALED(ws));
    EXPECT_EQ(WTERMSIG(ws), SIGUSR1);
}

namespace {
// The options of a test program; run() parses args and returns the exit
// code, or -1 to go on. help/err receive stdout/stderr when given.
struct TestCli {
    bool pid = false, user = false;
    std::vector<std::string> layers, rlimits, envs;
    std::string single, tmp_upper, name, net = "none";
    std::optional<std::string> groups;
    uint32_t mtu = 0;
    int info_fd = -1;
    std::vector<int> keep_fds;
    int marks = 0;
    cli::Common c;
    cli::Options opts{"core-test", "test program"};

    TestCli() {
        opts.flag("-p,--pid", pid, "a flag");
        opts.flag("-U,--user", user, "another flag");
        opts.option("--layer", layers, "DIR", "A layer");
        opts.option("--rlimit", rlimits, "NAME=N", "A limit");
        opts.each(
            "--env", "NAME=VALUE",
            [this](const std::string& v) -> Status {
                if (v.find('=') == std::string::npos)
                    return usage_error(cat("--env ", v, ": expected NAME=VALUE"));
                envs.push_back(v);
                return {};
            },
            "A variable");
        opts.option("--single", single, "X", "One value");
        opts.option("-o,--output", single, "FILE", "The same value, with a short name");
        opts.option("--groups", groups, "LIST", "Maybe a value");
        opts.option("--mtu", mtu, "N", "A number");
        opts.choice("--net", net, "none|host|user-mode", "A choice");
        opts.flag("--tmp-upper", tmp_upper, "[=SIZE]", "A flag with an optional value");
        opts.flag(
            "--mark", [this] { ++marks; }, "Counted");
        opts.option("--name", name, "NAME", "From the environment too").env("KAGO_CORE_TEST_NAME");
        opts.descriptor("--info-fd", info_fd, "A descriptor");
        opts.descriptors("--keep-fd", keep_fds, "Descriptors");
        opts.footer("The footer.");
    }
    int run(std::vector<std::string> args, std::string* out = nullptr, std::string* err = nullptr) {
        args.insert(args.begin(), "core-test");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        std::optional<int> r;
        auto parse = [&] {
            if (out) testing::internal::CaptureStdout();
            r = opts.parse(static_cast<int>(args.size()), argv.data(), c);
            if (out) *out = testing::internal::GetCapturedStdout();
        };
        if (err)
            *err = capture_stderr(parse);
        else
            parse();
        return r ? *r : -1;
    }
};
}  // namespace

TEST(Cli, StopsAtTheFirstPositionalAndDropsDoubleDash) {
    TraceReset reset;
    TestCli t;
    EXPECT_EQ(t.run({"--pid", "--", "ls", "--pid", "-l"}), -1);
    EXPECT_TRUE(t.pid);
    EXPECT_EQ(t.c.command, (std::vector<std::string>{"ls", "--pid", "-l"}));
    TestCli t2;
    EXPECT_EQ(t2.run({"ls", "--pid"}), -1);
    EXPECT_FALSE(t2.pid);
    EXPECT_EQ(t2.c.command, (std::vector<std::string>{"ls", "--pid"}));
    TestCli t3;  // only the first "--" goes; "-" is a word
    EXPECT_EQ(t3.run({"--", "--", "x"}), -1);
    EXPECT_EQ(t3.c.command, (std::vector<std::string>{"--", "x"}));
    TestCli t4;
    EXPECT_EQ(t4.run({"-", "x"}), -1);
    EXPECT_EQ(t4.c.command, (std::vector<std::string>{"-", "x"}));
    TestCli t5;
    EXPECT_EQ(t5.run({}), -1);
    EXPECT_TRUE(t5.c.command.empty());
}

TEST(Cli, UnknownOptionIs125AndHelpIs0) {
    TraceReset reset;
    std::string err, out;
    EXPECT_EQ(TestCli().run({"--bogus", "ls"}, nullptr, &err), 125);
    EXPECT_EQ(
        err,
        "core-test: unrecognized option '--bogus'\nTry 'core-test --help' for more information.\n");
    EXPECT_EQ(TestCli().run({"--pid", "-x"}, nullptr, &err), 125);
    EXPECT_NE(err.find("unrecognized option '-x'"), std::string::npos) << err;
    EXPECT_EQ(TestCli().run({"-pUx"}, nullptr, &err), 125);
    EXPECT_NE(err.find("unrecognized option '-x' in '-pUx'"), std::string::npos) << err;
    // An unknown option after the command is the command's.
    EXPECT_EQ(TestCli().run({"ls", "--bogus"}), -1);
    for (const char* h : {"--help", "-h"}) {
        TestCli t;
        EXPECT_EQ(t.run({"--pid", h, "--bogus"}, &out), 0) << h;
        EXPECT_NE(out.find("Usage: core-test [OPTIONS] [--] [COMMAND [ARG...]]\n"),
                  std::string::npos)
            << out;
        EXPECT_NE(out.find("--dry-run"), std::string::npos);
    }
    for (const char* v : {"--version", "-V"}) {
        EXPECT_EQ(TestCli().run({v}, &out), 0);
        EXPECT_EQ(out, std::string("core-test (kago) ") + cli::kVersion + "\n");
    }
}

TEST(Cli, ARepeatableOptionTakesOneWordAndLeavesTheCommand) {
    TraceReset reset;
    TestCli t;
    EXPECT_EQ(t.run({"--layer", "/a", "--rlimit", "nofile=1", "--layer", "/b", "--env", "A=1",
                     "--rlimit", "core=0", "echo", "hi", "--layer", "x"}),
              -1);
    EXPECT_EQ(t.layers, (std::vector<std::string>{"/a", "/b"}));
    EXPECT_EQ(t.rlimits, (std::vector<std::string>{"nofile=1", "core=0"}));
    EXPECT_EQ(t.envs, (std::vector<std::string>{"A=1"}));
    EXPECT_EQ(t.c.command, (std::vector<std::string>{"echo", "hi", "--layer", "x"}));
    for (const char* opt : {"--layer", "--rlimit", "--env", "--single", "--groups"}) {
        TestCli t2;
        EXPECT_EQ(t2.run({opt, "v=1", "echo", "hi"}), -1) << opt;
        EXPECT_EQ(t2.c.command, (std::vector<std::string>{"echo", "hi"})) << opt;
        TestCli t3;
        EXPECT_EQ(t3.run({cat(opt, "=v=1"), "--", "echo"}), -1) << opt;
        EXPECT_EQ(t3.c.command, (std::vector<std::string>{"echo"})) << opt;
    }
    TestCli t4;  // the word is taken whatever it looks like
    EXPECT_EQ(t4.run({"--single", "-5", "--groups", "", "x"}), -1);
    EXPECT_EQ(t4.single, "-5");
    EXPECT_EQ(t4.groups, std::optional<std::string>(""));
    EXPECT_EQ(t4.c.command, (std::vector<std::string>{"x"}));
}

TEST(Cli, ShortOptionsBundleAndTakeTheirWord) {
    TraceReset reset;
    TestCli t;
    EXPECT_EQ(t.run({"-pU", "-o", "f1", "x"}), -1);
    EXPECT_TRUE(t.pid && t.user);
    EXPECT_EQ(t.single, "f1");
    TestCli t2;
    EXPECT_EQ(t2.run({"-Uof2", "-v", "x"}), -1);
    EXPECT_TRUE(t2.user && t2.c.verbose);
    EXPECT_EQ(t2.single, "f2");
    EXPECT_EQ(t2.opts.given("--output"), 1);
    EXPECT_EQ(t2.opts.given("--single"), 0);
    EXPECT_EQ(t2.opts.given("--layer"), 0);
}

TEST(Cli, FlagsTakeNoWordButAFlagWithAValueTakesItsEquals) {
    TraceReset reset;
    TestCli t;
    EXPECT_EQ(t.run({"--tmp-upper", "--mark", "--mark", "64M"}), -1);
    EXPECT_EQ(t.tmp_upper, "true");
    EXPECT_EQ(t.marks, 2);
    EXPECT_EQ(t.c.command, (std::vector<std::string>{"64M"}));
    TestCli t2;
    EXPECT_EQ(t2.run({"--tmp-upper=64M"}), -1);
    EXPECT_EQ(t2.tmp_upper, "64M");
    std::string err;
    EXPECT_EQ(TestCli().run({"--pid=1"}, nullptr, &err), 125);
    EXPECT_NE(err.find("option '--pid' takes no value"), std::string::npos) << err;
}

TEST(Cli, AnOptionWithoutItsWordOrWithABadOneIs125) {
    TraceReset reset;
    std::string err;
    EXPECT_EQ(TestCli().run({"--layer"}, nullptr, &err), 125);
    EXPECT_EQ(err,
              "core-test: option '--layer' needs a value (DIR)\nTry 'core-test --help' for more "
              "information.\n");
    EXPECT_EQ(TestCli().run({"-o"}, nullptr, &err), 125);
    EXPECT_NE(err.find("option '-o' needs a value (FILE)"), std::string::npos) << err;
    EXPECT_EQ(TestCli().run({"--env", "NOVALUE", "x"}, nullptr, &err), 125);
    EXPECT_NE(err.find("core-test: --env NOVALUE: expected NAME=VALUE\nTry"), std::string::npos)
        << err;
    EXPECT_EQ(TestCli().run({"--mtu", "x1"}, nullptr, &err), 125);
    EXPECT_NE(err.find("--mtu: 'x1' is not a number"), std::string::npos) << err;
    EXPECT_EQ(TestCli().run({"--mtu", "4294967296"}, nullptr, &err), 125);
    EXPECT_NE(err.find("--mtu: '4294967296' is too large"), std::string::npos) << err;
    EXPECT_EQ(TestCli().run({"--net", "bogus"}, nullptr, &err), 125);
    EXPECT_NE(err.find("--net bogus: expected none, host or user-mode\n"), std::string::npos)
        << err;
    TestCli t;
    EXPECT_EQ(t.run({"--mtu", "1500", "--net=user-mode"}), -1);
    EXPECT_EQ(t.mtu, 1500u);
    EXPECT_EQ(t.net, "user-mode");
    // A single value given twice: the same value is no harm, another one is.
    TestCli t2;
    EXPECT_EQ(t2.run({"--single", "a", "--single=a"}), -1);
    EXPECT_EQ(t2.single, "a");
    EXPECT_EQ(TestCli().run({"--single", "a", "--single", "b"}, nullptr, &err), 125);
    EXPECT_NE(err.find("--single is given twice"), std::string::npos) << err;
}

TEST(Cli, DescriptorsAreAbove2AndOpen) {
    TraceReset reset;
    std::string err;
    for (const char* opt : {"--info-fd", "--keep-fd"}) {
        for (int fd = 0; fd < 3; ++fd) {
            EXPECT_EQ(TestCli().run({opt, std::to_string(fd), "x"}, nullptr, &err), 125);
            EXPECT_NE(err.find(cat(opt, ": ", fd, " is the command's ")), std::string::npos) << err;
            EXPECT_NE(err.find("use a descriptor above 2"), std::string::npos) << err;
        }
        EXPECT_EQ(TestCli().run({opt, "x"}, nullptr, &err), 125);
        EXPECT_NE(err.find(cat(opt, ": 'x' is not a descriptor number")), std::string::npos) << err;
        EXPECT_EQ(TestCli().run({opt, "987"}, nullptr, &err), 125);
        EXPECT_NE(err.find(cat(opt, ": 987 is not an open descriptor")), std::string::npos) << err;
    }
    UniqueFd a(::open("/dev/null", O_RDONLY | O_CLOEXEC)),
        b(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    TestCli t;
    EXPECT_EQ(t.run({"--info-fd", std::to_string(a.get()), "--keep-fd", std::to_string(a.get()),
                     "--keep-fd=" + std::to_string(b.get())}),
              -1);
    EXPECT_EQ(t.info_fd, a.get());
    EXPECT_EQ(t.keep_fds, (std::vector<int>{a.get(), b.get()}));
}

TEST(Cli, TheCommandLineWinsOverTheEnvironment) {
    TraceReset reset;
    setenv("KAGO_CORE_TEST_NAME", "from-env", 1);
    TestCli t;
    EXPECT_EQ(t.run({}), -1);
    EXPECT_EQ(t.name, "from-env");
    EXPECT_EQ(t.opts.given("--name"), 0);
    TestCli t2;
    EXPECT_EQ(t2.run({"--name", "from-line"}), -1);
    EXPECT_EQ(t2.name, "from-line");
    setenv("KAGO_CORE_TEST_NAME", "", 1);
    TestCli t3;
    EXPECT_EQ(t3.run({}), -1);
    EXPECT_EQ(t3.name, "");
    unsetenv("KAGO_CORE_TEST_NAME");
}

TEST(Cli, HelpMarksRepeatableOptionsAndShowsOneWord) {
    TraceReset reset;
    std::string help;
    EXPECT_EQ(TestCli().run({"--help"}, &help), 0);
    EXPECT_EQ(help.substr(0, help.find("Options:\n")),
              "test program\nUsage: core-test [OPTIONS] [--] [COMMAND [ARG...]]\n\n");
    EXPECT_NE(help.find("\n  -h,--help                   Print this help message and exit\n"),
              std::string::npos)
        << help;
    EXPECT_NE(help.find("\n  -p,--pid                    a flag\n"), std::string::npos) << help;
    EXPECT_NE(help.find("\n  --layer DIR                 A layer (repeatable)\n"),
              std::string::npos)
        << help;
    EXPECT_NE(help.find("A limit (repeatable)"), std::string::npos) << help;
    EXPECT_NE(help.find("A variable (repeatable)"), std::string::npos) << help;
    EXPECT_NE(help.find("Descriptors (repeatable)"), std::string::npos) << help;
    EXPECT_NE(help.find("One value\n"), std::string::npos) << help;
    EXPECT_NE(help.find("--tmp-upper [=SIZE]"), std::string::npos) << help;
    EXPECT_NE(help.find("--net none|host|user-mode"), std::string::npos) << help;
    EXPECT_NE(
        help.find("--name NAME (Env:KAGO_CORE_TEST_NAME)\n" + std::string(30, ' ') + "From the"),
        std::string::npos)
        << help;
    EXPECT_EQ(help.find(" ..."), std::string::npos) << help;  // never "DIR ..."
    EXPECT_EQ(help.find("One value (repeatable)"), std::string::npos) << help;
    EXPECT_EQ(help.find("a flag (repeatable)"), std::string::npos) << help;
    EXPECT_EQ(help.substr(help.size() - 13), "\nThe footer.\n") << help;
}

TEST(Cli, TraceEnvironmentTurnsOnVerbose) {
    TraceReset reset;
    setenv("KAGO_TRACE", "1", 1);
    TestCli t;
    EXPECT_EQ(t.run({"true"}), -1);
    EXPECT_TRUE(t.c.verbose);
    EXPECT_TRUE(trace::verbose());
    unsetenv("KAGO_TRACE");
    TestCli t2;
    EXPECT_EQ(t2.run({"--dry-run", "true"}), -1);
    EXPECT_TRUE(t2.c.dry_run);
    EXPECT_TRUE(trace::dry_run());
}

// The state directory's owner undoes it on scope exit, as every owner
// does: no registry, no removal behind the program's back.
TEST(State, TheOwnerRemovesItsDirectoryOnScopeExitOnly) {
    char xdg[] = "/tmp/kago-core-xdg-XXXXXX";
    ASSERT_NE(mkdtemp(xdg), nullptr);
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    unsetenv("KAGO_STATE_DIR");
    std::string name = cat("coretest", getpid());
    struct stat st;
    std::string path;
    {
        env::Contract c = env::Contract::from_environ();
        auto d = state::StateDir::acquire(name, c);
        ASSERT_TRUE(d) << d.error().message();
        ASSERT_TRUE(d->owned());
        EXPECT_EQ(c.get(env::kStateDir), d->path());
        EXPECT_EQ(c.get(env::kName), name);
        EXPECT_EQ(getenv("KAGO_STATE_DIR"), nullptr);
        path = d->path();
        // A forked child (say, one whose exec failed) must not remove it,
        // even when its copy of the owner goes.
        pid_t pid = fork();
        if (pid == 0) {
            state::StateDir copy = std::move(*d);
            (void)copy.remove();
            _exit(0);
        }
        int ws;
        waitpid(pid, &ws, 0);
        EXPECT_EQ(stat(path.c_str(), &st), 0);
        // A move hands ownership on: the moved-from owner removes nothing.
        state::StateDir moved = std::move(*d);
        EXPECT_FALSE(d->owned());
        EXPECT_TRUE(moved.owned());
        state::StateDir again;
        again = std::move(moved);
        EXPECT_TRUE(again.owned());
        EXPECT_EQ(stat(path.c_str(), &st), 0);
    }
    EXPECT_NE(stat(path.c_str(), &st), 0) << "removed when its owner went out of scope";
    {
        env::Contract c = env::Contract::from_environ();
        auto d = state::StateDir::acquire(name, c);
        ASSERT_TRUE(d) << d.error().message();
        d->release();  // what a program does before its exec hands it on
    }
    EXPECT_EQ(stat(path.c_str(), &st), 0) << "a released directory stays";
    ASSERT_TRUE(state::remove_tree(path));
    unsetenv("XDG_RUNTIME_DIR");
    (void)state::remove_tree(xdg);
}

// --- ready: the chain's readiness gate -------------------------------------

namespace {

// Fork a child that takes the gate from the contract its parent passes it
// (as an exec would, from the environment the contract renders) and waits
// on it; its exit status is 0 when the gate opened, 1 when the set-up
// failed, 2 when it found no gate.
pid_t waiter(ready::Gate& g, const env::Contract& parent) {
    ready::Gate::Ends ends = g.ends();
    std::vector<std::string> vars = parent.render({});
    pid_t pid = ::fork();
    if (pid == 0) {
        ends.keep_in_child();
        std::vector<char*> envp;
        for (auto& v : vars) envp.push_back(v.data());
        envp.push_back(nullptr);
        env::Contract c = env::Contract::from_environ(envp.data());
        int fd = ready::take(c);
        if (fd < 0) _exit(2);
        if (!c.get(env::kReadyFd).empty()) _exit(3);  // take() removes the setting
        _exit(ready::wait(fd) ? 0 : 1);
    }
    g.forked();
    return pid;
}

int status_of(pid_t pid) {
    int ws = 0;
    ::waitpid(pid, &ws, 0);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

}  // namespace

TEST(Ready, OpenLetsTheWaiterGo) {
    env::Contract c;
    auto g = ready::Gate::create(c);
    ASSERT_TRUE(g) << g.error().message();
    ASSERT_NE(c.get(env::kReadyFd), "");
    EXPECT_EQ(::getenv(env::kReadyFd), nullptr);  // the contract, not the environment
    pid_t pid = waiter(*g, c);
    EXPECT_EQ(c.get(env::kReadyFd), "");  // forked() drops it in the parent
    g->open();
    EXPECT_EQ(status_of(pid), 0);
}

TEST(Ready, FailureIsEndOfFile) {
    env::Contract c;
    auto g = ready::Gate::create(c);
    ASSERT_TRUE(g);
    pid_t pid = waiter(*g, c);
    g->fail();
    EXPECT_EQ(status_of(pid), 1);
}

TEST(Ready, DestroyingAnUnopenedGateFailsIt) {
    pid_t pid;
    env::Contract c;
    {
        auto g = ready::Gate::create(c);
        ASSERT_TRUE(g);
        pid = waiter(*g, c);
    }
    EXPECT_EQ(status_of(pid), 1);
}

TEST(Ready, MovingAGateKeepsTheVariable) {
    env::Contract c;
    ready::Gate g;
    g = ready::Gate::create(c).value();
    EXPECT_NE(c.get(env::kReadyFd), "");
    pid_t pid = waiter(g, c);
    EXPECT_EQ(c.get(env::kReadyFd), "");  // the moved gate still drops it
    g.open();
    EXPECT_EQ(status_of(pid), 0);
}

TEST(Ready, TakeRejectsWhatIsNotADescriptor) {
    for (const char* v : {"x", "2", "99999", "1000"}) {  // 1000: not open
        env::Contract c;
        c.ready_fd = v;  // as read at the start
        EXPECT_EQ(ready::take(c), -1) << v;
        EXPECT_EQ(c.get(env::kReadyFd), "") << v;
    }
    env::Contract none;
    EXPECT_EQ(ready::take(none), -1);  // unset
}

TEST(Ready, CreateWaitsForAnInheritedGate) {
    // Another process opens the outer gate a little later, and says so on
    // `said` first: when create() returns, that must already be there.
    int p[2], said[2];
    ASSERT_EQ(::pipe(p), 0);
    ASSERT_EQ(::pipe2(said, O_NONBLOCK), 0);
    env::Contract outer;
    outer.ready_fd = std::to_string(p[0]);  // inherited
    pid_t opener = ::fork();
    if (opener == 0) {
        ::usleep(100 * 1000);
        (void)!::write(said[1], "o", 1);
        (void)!::write(p[1], "y", 1);
        _exit(0);
    }
    ::close(p[1]);
    auto g = ready::Gate::create(outer);
    ASSERT_TRUE(g);
    char c = 0;
    EXPECT_EQ(::read(said[0], &c, 1), 1);
    EXPECT_EQ(status_of(opener), 0);
    g->fail();
    ::close(said[0]);
    ::close(said[1]);
}

TEST(Ready, AFailedInheritedGateIsReportedElsewhere) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    ::close(p[1]);  // the outer supervisor failed: end of file
    env::Contract outer;
    outer.ready_fd = std::to_string(p[0]);
    auto g = ready::Gate::create(outer);
    ASSERT_FALSE(g);
    EXPECT_EQ(g.error().what, "") << "quiet: the outer supervisor says why";
    EXPECT_EQ(g.error().status, 125);
    EXPECT_EQ(outer.get(env::kReadyFd), "") << "taken";
}

TEST(CoreEnv, TheContainerStartsWithADefaultEnvironment) {
    std::vector<std::string> caller = {"PATH=/home/u/bin:/usr/bin", "HOME=/home/u", "TERM=xterm",
                                       "API_TOKEN=secret", "KAGO_NAME=box", "LANG=C.UTF-8"};
    auto out = env::container_environ(caller, {});
    std::vector<std::string> want = {std::string("PATH=") + env::kContainerPath, "HOME=/root", "container=kago",
                                     "TERM=xterm", "KAGO_NAME=box"};
    EXPECT_EQ(out, want);
}

TEST(CoreEnv, PassSetAndHost) {
    std::vector<std::string> caller = {"HOME=/home/u", "LANG=C.UTF-8", "EMPTY="};
    env::Plan p;
    p.pass = {"LANG", "MISSING", "EMPTY"};
    p.set = {"HOME=/srv", "A=b=c"};
    auto out = env::container_environ(caller, p);
    std::vector<std::string> want = {std::string("PATH=") + env::kContainerPath, "HOME=/srv", "container=kago",
                                     "LANG=C.UTF-8", "EMPTY=", "A=b=c"};
    EXPECT_EQ(out, want);
    p.host = true;
    p.pass.clear();
    out = env::container_environ(caller, p);
    want = {"HOME=/srv", "LANG=C.UTF-8", "EMPTY=", "A=b=c"};
    EXPECT_EQ(out, want);
}

TEST(CoreEnv, BadWordsAreUsageErrors) {
    env::Plan p;
    p.set = {"NOEQUALS"};
    EXPECT_FALSE(env::check_plan(p));
    p.set = {"=v"};
    EXPECT_FALSE(env::check_plan(p));
    p.set = {"A="};
    EXPECT_TRUE(env::check_plan(p));
    p.pass = {"A=B"};
    EXPECT_FALSE(env::check_plan(p));
}

// --- liveness: one test of staleness for every kago program -----------------

TEST(ProcStat, ParsesACommandNameWithSpacesAndParentheses) {
    // Field 22 (starttime) is 777; the name is "a) (b c)" as a program may
    // choose it with prctl(PR_SET_NAME).
    std::string line = "4242 (a) (b c)) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 777 "
                       "1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    auto st = proc::parse_stat(line);
    ASSERT_TRUE(st) << st.error().what;
    EXPECT_EQ(st->pid, 4242);
    EXPECT_EQ(st->comm, "a) (b c)");
    EXPECT_EQ(st->state, 'S');
    EXPECT_EQ(st->ppid, 17);
    EXPECT_EQ(st->start, 777u);
    EXPECT_TRUE(proc::running(*st));
    st = proc::parse_stat("9 ( ) Z 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0");
    ASSERT_TRUE(st);
    EXPECT_EQ(st->comm, " ");
    EXPECT_EQ(st->start, 5u);
    EXPECT_FALSE(proc::running(*st));  // a zombie
    st = proc::parse_stat("9 (x) X 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0");
    ASSERT_TRUE(st);
    EXPECT_FALSE(proc::running(*st));
}

// Fields 48 to 51: where the argument and environment strings are.
TEST(ProcStat, ReadsTheStringAreas) {
    std::string line =
        "7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 1000 100 1 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 "
        "0 0 0 0 "
        "1 2 3 140000 140100 140100 140300 0\n";
    auto st = proc::parse_stat(line);
    ASSERT_TRUE(st) << st.error().what;
    EXPECT_EQ(st->arg_start, 140000u);
    EXPECT_EQ(st->arg_end, 140100u);
    EXPECT_EQ(st->env_start, 140100u);
    EXPECT_EQ(st->env_end, 140300u);
    // A kernel before 3.5 has no such fields: nothing is made up.
    st = proc::parse_stat("9 (x) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0");
    ASSERT_TRUE(st);
    EXPECT_EQ(st->arg_start, 0u);
    EXPECT_EQ(st->env_end, 0u);
}

// The areas hold this process's argv[0]; a fork keeps them and reads its
// own start time.
TEST(ProcStat, OwnStringAreasAndStartTime) {
    proc::StringAreas a = proc::own_string_areas();
    ASSERT_TRUE(a.known());
    EXPECT_GE(program_invocation_name, a.args);
    EXPECT_LT(program_invocation_name, a.args_end);
    proc::Owner me = proc::self();
    EXPECT_EQ(me.pid, ::getpid());
    EXPECT_GT(me.start, 0u);
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        proc::StringAreas b = proc::own_string_areas();
        proc::Owner child = proc::self();
        auto st = proc::read_stat(::getpid());
        bool ok = b.args == a.args && b.args_end == a.args_end && child.pid == ::getpid() && st &&
                  child.start == st->start;
        char c = ok ? 'y' : 'n';
        (void)!::write(fds[1], &c, 1);
        _exit(0);
    }
    ::close(fds[1]);
    char c = 0;
    EXPECT_EQ(::read(fds[0], &c, 1), 1);
    ::close(fds[0]);
    ::waitpid(pid, nullptr, 0);
    EXPECT_EQ(c, 'y');
}

TEST(ProcStat, RejectsWhatIsNotAStatLine) {
    EXPECT_FALSE(proc::parse_stat(""));
    EXPECT_FALSE(proc::parse_stat("4242 sleep S 1"));                         // no parentheses
    EXPECT_FALSE(proc::parse_stat("4242 (sleep) S 1 2 3"));                   // too few fields
    EXPECT_FALSE(proc::parse_stat("0 (x) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5"));  // pid 0
    EXPECT_FALSE(proc::parse_stat("x (x) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5"));
    EXPECT_FALSE(proc::parse_stat("9 (x) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5y"));
    EXPECT_FALSE(proc::parse_stat("9 (x)S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5"));
}

TEST(ProcStat, ReadsTheRealFileOfAProcessWithAStrangeName) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::prctl(PR_SET_NAME, "x) (y z) q");
        ::pause();
        _exit(0);
    }
    for (int i = 0; i < 200; ++i) {
        auto st = proc::read_stat(pid);
        if (st && st->comm != "x) (y z) q") {
            ::usleep(5000);
            continue;
        }
        break;
    }
    auto st = proc::read_stat(pid);
    ASSERT_TRUE(st) << st.error().what;
    EXPECT_EQ(st->comm, "x) (y z) q");
    EXPECT_EQ(st->ppid, ::getpid());
    proc::Owner o{pid, st->start};
    EXPECT_TRUE(proc::alive(o));
    EXPECT_FALSE(proc::alive(proc::Owner{pid, st->start + 1}));  // the pid of another process
    ::kill(pid, SIGKILL);
    // A zombie until we reap it: already dead for anyone deciding what is stale.
    for (int i = 0; i < 400 && proc::alive(o); ++i) ::usleep(5000);
    EXPECT_FALSE(proc::alive(o));
    auto z = proc::read_stat(pid);
    ASSERT_TRUE(z);
    EXPECT_EQ(z->state, 'Z');
    ::waitpid(pid, nullptr, 0);
    EXPECT_FALSE(proc::alive(o));  // gone
}

TEST(ProcStat, SelfIsAliveAndNoPidIsNot) {
    proc::Owner me = proc::self();
    EXPECT_EQ(me.pid, ::getpid());
    EXPECT_NE(me.start, 0u);
    EXPECT_TRUE(proc::alive(me));
    EXPECT_FALSE(proc::alive(proc::Owner{0, 0}));
    EXPECT_FALSE(proc::alive(proc::Owner{-1, me.start}));
}

// proc::self_status against the system calls it replaces: one prctl per
// capability, one sigaction per signal, the task directory's entries.
TEST(SelfStatus, MatchesTheSystemCalls) {
    proc::SelfStatus st;
    ASSERT_TRUE(proc::self_status(st));
    for (int cap = 0; cap < 64; ++cap) {
        int in_bounding = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        if (in_bounding < 0) break;
        EXPECT_EQ((st.bounding >> cap) & 1, static_cast<uint64_t>(in_bounding))
            << "capability " << cap;
        int ambient = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0);
        EXPECT_EQ((st.ambient >> cap) & 1, static_cast<uint64_t>(ambient == 1))
            << "capability " << cap;
    }
    EXPECT_GE(st.threads, 1);
}

TEST(ProcStatus, OneParserForEveryField) {
    constexpr std::string_view kText =
        "Name:\tsh\nUmask:\t0022\nUid:\t0\t1\t2\t3\nGroups:\t\nCapInh:\t0000000000000000\n"
        "CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000400\nSigCgt:\t0000000000004002\n"
        "Threads:\t3\nNoNewPrivs:\t1\nSeccomp:\t2\n";
    proc::StatusFields f = proc::parse_status(kText);
    EXPECT_EQ(f.name, "sh");
    EXPECT_EQ(f.uid, "0\t1\t2\t3");
    EXPECT_NE(f.groups.data(), nullptr) << "present, and empty";
    EXPECT_TRUE(f.groups.empty());
    EXPECT_EQ(f.cap_bnd, "000001ffffffffff");
    EXPECT_EQ(f.threads, "3");
    EXPECT_EQ(f.seccomp, "2");
    EXPECT_EQ(f.seccomp_filters.data(), nullptr) << "absent";
    uint64_t v = 0;
    ASSERT_TRUE(proc::status_hex(f.sig_cgt, v));
    EXPECT_EQ(v, 0x4002u);
    EXPECT_FALSE(proc::status_hex("", v));
    EXPECT_FALSE(proc::status_hex("12z", v));
}

// The attack: a root file system without /proc mounted, whose /proc holds
// a status file that claims what it likes. Only procfs's own file is read.
TEST(ProcStatus, ReadsOnlyProcfsFiles) {
    char buf[4096];
    EXPECT_GT(proc::read_status("/proc/self/status", buf, sizeof buf), 0);
    EXPECT_NE(std::string_view(buf).find("CapBnd:"), std::string_view::npos);
    char tmpl[] = "/tmp/kago-unit-status.XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    const char fake[] =
        "Name:\tsh\nCapBnd:\t000001ffffffffff\nCapAmb:\t0\nSigCgt:\t0\nThreads:\t1\n";
    ASSERT_EQ(write(fd, fake, sizeof fake - 1), static_cast<ssize_t>(sizeof fake - 1));
    close(fd);
    EXPECT_EQ(proc::read_status(tmpl, buf, sizeof buf), -1);
    EXPECT_EQ(errno, EXDEV);
    unlink(tmpl);
}

TEST(SelfStatus, SeesACaughtSignal) {
    struct sigaction sa = {};
    struct sigaction old = {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGUSR2, &sa, &old), 0);
    proc::SelfStatus st;
    bool ok = proc::self_status(st);
    sigaction(SIGUSR2, &old, nullptr);
    ASSERT_TRUE(ok);
    EXPECT_TRUE(st.caught & (uint64_t{1} << (SIGUSR2 - 1)));
}
