// Unit tests for lib/core/handoff: the multi-call dispatch, and the
// in-process hand-off doing what execve(2) does. Each runs in a forked child
// that plays a multi-call binary whose programs are the functions below,
// and whose file is this test binary (/proc/self/exe).
#include "core/handoff.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/exec.hpp"
#include "core/state.hpp"
#include "core/trace.hpp"

using namespace kago;

namespace {

int g_cloexec = -1, g_kept = -1;
void on_usr1(int) {}

// The program entered: each check that fails sets one bit of the status.
int next_main(int argc, char** argv) {
    int bad = 0;
    if (argc != 2 || strcmp(argv[0], "fake-next") != 0 || strcmp(argv[1], "a b") != 0) bad |= 1;
    if (::fcntl(g_cloexec, F_GETFD) != -1) bad |= 2;  // closed, as by exec
    if (::fcntl(g_kept, F_GETFD) == -1) bad |= 4;     // kept
    struct sigaction sa;
    ::sigaction(SIGUSR1, nullptr, &sa);
    if (sa.sa_handler != SIG_DFL) bad |= 8;  // caught: back to default
    ::sigaction(SIGUSR2, nullptr, &sa);
    if (sa.sa_handler != SIG_IGN) bad |= 16;  // ignored: stays ignored
    sigset_t mask;
    ::sigprocmask(SIG_SETMASK, nullptr, &mask);
    if (!sigismember(&mask, SIGHUP)) bad |= 32;  // the mask stays
    if (trace::verbose() || trace::dry_run()) bad |= 64;
    const char* v = ::getenv("HANDOFF_TEST");
    if (!v || strcmp(v, "yes") != 0 || ::getenv("HANDOFF_OLD"))
        bad |= 128;  // the environment as built
    if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1) bad |= 256;
    if (std::string(program_invocation_short_name) != "fake-next") bad |= 512;
    return bad ? (bad & 0x3f) | 0x40 | (bad >> 6 ? 0x80 : 0) : 0;
}

PreparedExec self_as(std::vector<std::string> argv) {
    PreparedExec p;
    p.argv = std::move(argv);
    p.kago = true;
    p.program.reset(::open("/proc/self/exe", O_PATH | O_CLOEXEC));
    p.program_path = "/proc/self/exe";
    return p;
}

int setup_main(int, char**) {
    g_cloexec = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    g_kept = ::open("/dev/null", O_RDONLY);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    ::sigaction(SIGUSR1, &sa, nullptr);
    ::signal(SIGUSR2, SIG_IGN);
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    ::sigprocmask(SIG_BLOCK, &hup, nullptr);
    ::setenv("HANDOFF_OLD", "1", 1);
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    trace::set_dry_run(true);
    PreparedExec p = self_as({"fake-next", "a b"});
    std::vector<char*> argv;
    for (auto& a : p.argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    static char env0[] = "HANDOFF_TEST=yes";
    char* envp[] = {env0, nullptr};
    const char* why = handoff::refusal(p);
    if (why) {
        (void)!::write(2, why, strlen(why));
        return 3;
    }
    handoff::maybe_enter(p, argv.data(), envp);
    return 2;  // not entered
}

int refusal_main(int, char** argv) {
    PreparedExec p = self_as({"fake-next"});
    const char* why = handoff::refusal(p);
    std::string want = argv[1];
    return (why ? std::string(why) : std::string("none")) == want ? 0 : 1;
}

const handoff::Program kPrograms[] = {
    {"fake-setup", setup_main}, {"fake-next", next_main}, {"fake-refusal", refusal_main}};

int run_child(std::vector<std::string> args, const char* exec_env = nullptr) {
    pid_t pid = ::fork();
    if (pid == 0) {
        handoff::forget_loaded_libraries();  // ISA-L, loaded by the decompress tests
        if (exec_env)
            ::setenv("KAGO_EXEC", exec_env, 1);
        else
            ::unsetenv("KAGO_EXEC");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        _exit(handoff::multicall(kPrograms, 3, static_cast<int>(args.size()), argv.data()));
    }
    int ws = 0;
    ::waitpid(pid, &ws, 0);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

}  // namespace

TEST(Handoff, EntersTheNextProgramAsExecWould) {
    EXPECT_EQ(run_child({"fake-setup"}), 0);
}

TEST(Handoff, DispatchesOnArgv0AndOnKagoProgram) {
    EXPECT_EQ(run_child({"/some/dir/fake-refusal", "none"}), 0);
    EXPECT_EQ(run_child({"kago", "fake-refusal", "none"}), 0);
    EXPECT_EQ(run_child({"no-such-program"}), 127);
}

TEST(Handoff, KagoExecForcesARealExec) {
    EXPECT_EQ(run_child({"fake-refusal", "KAGO_EXEC=1"}, "1"), 0);
    EXPECT_EQ(run_child({"fake-refusal", "none"}, "0"), 0);
}

TEST(Handoff, RefusedOutsideAMultiCallBinary) {
    handoff::forget_loaded_libraries();
    PreparedExec p = self_as({"fake-next"});
    ASSERT_NE(handoff::refusal(p), nullptr);
    EXPECT_STREQ(handoff::refusal(p), "not a multi-call binary");
}

namespace {
// Run in the fake binary: `fake-next` is another file (/bin/true), then a
// process that lost a capability from its permitted set but not from its
// bounding set (as root, an exec gives it back).
int other_main(int, char**) {
    PreparedExec p = self_as({"fake-next"});
    p.program.reset(::open("/bin/true", O_PATH | O_CLOEXEC));
    p.program_path = "/bin/true";
    const char* why = handoff::refusal(p);
    if (!why || std::string(why) != "another file") return 1;
    if (::geteuid() != 0) return 0;
    __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct d[2];
    if (::syscall(SYS_capget, &h, d) != 0) return 2;
    if (!(d[0].permitted & (1u << CAP_NET_RAW))) return 0;  // nothing to lose
    d[0].permitted &= ~(1u << CAP_NET_RAW);
    d[0].effective &= ~(1u << CAP_NET_RAW);
    d[0].inheritable &= ~(1u << CAP_NET_RAW);
    if (::syscall(SYS_capset, &h, d) != 0) return 3;
    PreparedExec q = self_as({"fake-next"});
    why = handoff::refusal(q);
    return why && std::string(why) == "the exec would regain capabilities" ? 0 : 4;
}
const handoff::Program kOther[] = {{"fake-other", other_main}, {"fake-next", next_main}};

// The fake binary `programs` run as PROGRAM in a child, KAGO_EXEC unset and
// no library loaded: its exit status.
int run_fake(const handoff::Program* programs, size_t n, const char* program) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::unsetenv("KAGO_EXEC");
        handoff::forget_loaded_libraries();
        std::string name = program;
        char* argv[] = {name.data(), nullptr};
        _exit(handoff::multicall(programs, n, 1, argv));
    }
    int ws = 0;
    ::waitpid(pid, &ws, 0);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}
}  // namespace

TEST(Handoff, RefusedForAnotherFileAndForRegainedCapabilities) {
    EXPECT_EQ(run_fake(kOther, 2, "fake-other"), 0);
}

namespace {
// After dlopen(3) (image-layers' libcurl or ISA-L), the next program is
// always exec'd: refused with the reason, KAGO_EXEC unset.
int loaded_main(int, char**) {
    PreparedExec p = self_as({"fake-next"});
    if (handoff::refusal(p) != nullptr) return 1;  // entered before
    (void)handoff::open_library("libz.so.1");
    const char* why = handoff::refusal(p);
    return why && std::string(why).find("shared library was loaded") != std::string::npos ? 0 : 2;
}
const handoff::Program kLoaded[] = {{"fake-loaded", loaded_main}, {"fake-next", next_main}};
}  // namespace

TEST(Handoff, ALoadedLibraryForcesARealExec) {
    EXPECT_EQ(run_fake(kLoaded, 2, "fake-loaded"), 0);
}

TEST(Handoff, CloseCloexecFdsClosesOnlyThose) {
    pid_t pid = ::fork();
    if (pid == 0) {
        int a = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        int b = ::open("/dev/null", O_RDONLY);
        int c = ::fcntl(b, F_DUPFD_CLOEXEC, 900);
        handoff::close_cloexec_fds();
        _exit((::fcntl(a, F_GETFD) == -1 ? 0 : 1) | (::fcntl(b, F_GETFD) != -1 ? 0 : 2) |
              (::fcntl(c, F_GETFD) == -1 ? 0 : 4) | (::fcntl(1, F_GETFD) != -1 ? 0 : 8));
    }
    int ws = 0;
    ::waitpid(pid, &ws, 0);
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 0);
}
