// Unit tests for lib/core/child: the engine's message, exec, init and
// starts. Nothing here needs privilege.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "core/child.hpp"
#include "core/proc.hpp"

using namespace kago;

namespace {

int wait_for(pid_t pid) {
    int ws = 0;
    while (::waitpid(pid, &ws, __WALL) < 0 && errno == EINTR) {
    }
    return ws;
}

}  // namespace

TEST(ChildMessage, FitsInOneAtomicPipeWrite) {
    EXPECT_LE(sizeof(child::Message), static_cast<size_t>(PIPE_BUF));
}

TEST(ChildMessage, RoundTripOverAPipe) {
    auto ch = child::Channel::pipe("test");
    ASSERT_TRUE(ch);
    child::Message m;
    m.kind = child::Kind::step_failed;
    m.step = 3;
    m.err = EPERM;
    m.status = 125;
    m.set_text("mount proc", 10);
    ASSERT_EQ(child::send(ch->child.get(), m), 0);
    child::Message got;
    ASSERT_EQ(child::receive(ch->parent.get(), &got), 1);
    EXPECT_EQ(got.kind, child::Kind::step_failed);
    EXPECT_EQ(got.step, 3);
    EXPECT_EQ(got.err, EPERM);
    EXPECT_EQ(got.status, 125);
    EXPECT_STREQ(got.text, "mount proc");
    ch->child.reset();
    EXPECT_EQ(child::receive(ch->parent.get(), &got), 0);  // end of file: the child is gone
}

TEST(ChildMessage, ShortKindOnlyForm) {
    auto ch = child::Channel::pipe("test");
    ASSERT_TRUE(ch);
    ASSERT_EQ(child::send(ch->child.get(), child::Kind::exec_failed, -1, ENOENT, 127), 0);
    child::Message got;
    ASSERT_EQ(child::receive(ch->parent.get(), &got), 1);
    EXPECT_EQ(got.kind, child::Kind::exec_failed);
    EXPECT_EQ(got.step, -1);
    EXPECT_EQ(got.err, ENOENT);
    EXPECT_EQ(got.status, 127);
    EXPECT_STREQ(got.text, "");
}

TEST(ChildMessage, ErrorRoundTripCutsLongText) {
    auto ch = child::Channel::socket("test");
    ASSERT_TRUE(ch);
    Error e{EACCES, std::string(1000, 'x'), "a hint"};
    ASSERT_EQ(child::send_error(ch->child.get(), e, 126), 0);
    child::Message got;
    ASSERT_EQ(child::receive(ch->parent.get(), &got), 1);
    EXPECT_EQ(got.kind, child::Kind::error);
    EXPECT_EQ(got.status, 126);
    Error back = child::error_of(got);
    EXPECT_EQ(back.err, EACCES);
    EXPECT_EQ(back.what, std::string(sizeof got.text - 1, 'x'));
    EXPECT_EQ(back.hint, "a hint");
}

TEST(ChildMessage, CarriesADescriptorOverASocket) {
    auto ch = child::Channel::socket("test");
    ASSERT_TRUE(ch);
    UniqueFd file(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(file);
    child::Message m;
    m.kind = child::Kind::ok;
    ASSERT_EQ(child::send(ch->child.get(), m, file.get()), 0);
    child::Message got;
    int fd = -1;
    ASSERT_EQ(child::receive(ch->parent.get(), &got, &fd), 1);
    UniqueFd owned(fd);
    ASSERT_TRUE(owned);
    EXPECT_EQ(got.kind, child::Kind::ok);
    struct stat a, b;
    ASSERT_EQ(::fstat(file.get(), &a), 0);
    ASSERT_EQ(::fstat(owned.get(), &b), 0);
    EXPECT_EQ(a.st_ino, b.st_ino);
    EXPECT_EQ(::fcntl(owned.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

TEST(ChildMessage, AShortMessageIsAProtocolError) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    UniqueFd r(p[0]), w(p[1]);
    ASSERT_EQ(::write(w.get(), "abc", 3), 3);
    child::Message got;
    EXPECT_EQ(child::receive(r.get(), &got), -1);
    EXPECT_EQ(errno, EPROTO);
}

TEST(ChildExec, ExitCodes) {
    EXPECT_EQ(child::exit_code_for_exec_error(ENOENT), 127);
    EXPECT_EQ(child::exit_code_for_exec_error(ENOTDIR), 127);
    EXPECT_EQ(child::exit_code_for_exec_error(ELOOP), 127);
    EXPECT_EQ(child::exit_code_for_exec_error(EACCES), 126);
    EXPECT_EQ(child::exit_code_for_exec_error(ENOEXEC), 126);
}

namespace {
// Exec `args` (with `envp`, when given) in a child: its wait status and the
// message it sent.
int run_exec(const std::vector<std::string>& args, char* const* envp, child::Message* m) {
    auto ch = child::Channel::pipe("test");
    if (!ch) return -1;
    child::Exec e(args, -1);
    e.envp = envp;
    long pid = child::start(0);
    if (pid == 0) {
        ch->parent.reset();
        int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        child::exec_or_exit(e, child::OnFailure{.report = ch->child.get()});
    }
    ch->child.reset();
    int ws = wait_for(static_cast<pid_t>(pid));
    if (child::receive(ch->parent.get(), m) != 1) m->kind = child::Kind::none;
    return ws;
}
}  // namespace

TEST(ChildExec, SearchesPathAndRuns) {
    child::Message m;
    int ws = run_exec({"true"}, nullptr, &m);
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 0);
    EXPECT_EQ(m.kind, child::Kind::none);  // close-on-exec: nothing sent
}

TEST(ChildExec, NotFoundIs127AndReported) {
    child::Message m;
    int ws = run_exec({"kago-no-such-command-e-child"}, nullptr, &m);
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 127);
    EXPECT_EQ(m.kind, child::Kind::exec_failed);
    EXPECT_EQ(m.err, ENOENT);
    EXPECT_EQ(m.status, 127);
}

TEST(ChildExec, NotExecutableIs126) {
    char dir[] = "/tmp/kago-child-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    std::string file = std::string(dir) + "/script";
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd);
    fd.reset();
    child::Message m;
    int ws = run_exec({file}, nullptr, &m);
    ::unlink(file.c_str());
    ::rmdir(dir);
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 126);
    EXPECT_EQ(m.err, EACCES);
}

TEST(ChildExec, SearchesThePathOfTheGivenEnvironment) {
    char path[] = "PATH=/kago-nowhere";
    char* envp[] = {path, nullptr};
    child::Message m;
    int ws = run_exec({"true"}, envp, &m);
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 127);
}

namespace {
// A child that runs child::init() over a command started by `command`.
// Tells the parent (Kind::ok) once the command runs.
struct InitRun {
    pid_t init = -1;
    UniqueFd report;
};

InitRun start_init(void (*command)()) {
    InitRun r;
    auto ch = child::Channel::pipe("test");
    if (!ch) return r;
    long pid = child::start(0);
    if (pid == 0) {
        ch->parent.reset();
        child::block_for_init();
        long cmd = child::start(0);
        if (cmd == 0) {
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            command();
            _exit(0);
        }
        child::send(ch->child.get(), child::Kind::ok, -1, 0);
        child::init(static_cast<pid_t>(cmd), ch->child.get());
    }
    ch->child.reset();
    r.init = static_cast<pid_t>(pid);
    r.report = std::move(ch->parent);
    child::Message m;
    if (child::receive(r.report.get(), &m) != 1 || m.kind != child::Kind::ok) r.init = -1;
    return r;
}
}  // namespace

TEST(ChildInit, LeavesWithTheCommandsStatusAndReportsIt) {
    InitRun r = start_init([] { _exit(7); });
    ASSERT_GT(r.init, 0);
    int ws = wait_for(r.init);
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 7);
    child::Message m;
    ASSERT_EQ(child::receive(r.report.get(), &m), 1);
    EXPECT_EQ(m.kind, child::Kind::status);
    EXPECT_TRUE(WIFEXITED(m.status));
    EXPECT_EQ(WEXITSTATUS(m.status), 7);
}

TEST(ChildInit, ForwardsASignalAndExitsWith128PlusIt) {
    InitRun r = start_init([] {
        for (;;) ::pause();
    });
    ASSERT_GT(r.init, 0);
    ASSERT_EQ(::kill(r.init, SIGUSR1), 0);
    int ws = wait_for(r.init);
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 128 + SIGUSR1);
    child::Message m;
    ASSERT_EQ(child::receive(r.report.get(), &m), 1);
    EXPECT_TRUE(WIFSIGNALED(m.status));
    EXPECT_EQ(WTERMSIG(m.status), SIGUSR1);
}

// The command says when it ignores SIGTERM: a SIGTERM sent before would
// end it at the first one.
int g_ignoring[2] = {-1, -1};

TEST(ChildInit, ASecondSigtermKillsACommandThatIgnoresTheFirst) {
    ASSERT_EQ(::pipe2(g_ignoring, O_CLOEXEC), 0);
    InitRun r = start_init([] {
        ::signal(SIGTERM, SIG_IGN);
        (void)!::write(g_ignoring[1], "i", 1);
        for (;;) ::pause();
    });
    ASSERT_GT(r.init, 0);
    char c;
    ASSERT_EQ(::read(g_ignoring[0], &c, 1), 1);
    ::close(g_ignoring[0]);
    ::close(g_ignoring[1]);
    // Blocked signals of one number merge: send until the init has seen two.
    int ws = 0;
    for (;;) {
        ASSERT_EQ(::kill(r.init, SIGTERM), 0);
        struct timespec tick = {0, 5 * 1000 * 1000};
        ::nanosleep(&tick, nullptr);
        pid_t got = ::waitpid(r.init, &ws, WNOHANG | __WALL);
        if (got == r.init) break;
    }
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 128 + SIGKILL);
}

TEST(ChildStart, ASharedChildRunsOnItsOwnStack) {
    static int word = 0;
    child::Stack stack;
    pid_t pid = child::start_shared(
        [](void*) -> int {
            proc::post(word, 42);  // our memory: the parent sees it
            _exit(0);
        },
        nullptr, stack);
    ASSERT_GT(pid, 0);
    int ws = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(word, 42);
}

TEST(ChildStart, RefusesCloneVmWithoutAStack) {
    EXPECT_EQ(child::start(CLONE_VM), -1);
    EXPECT_EQ(errno, EINVAL);
}

TEST(ChildLoopback, BringsLoUpInANewNetworkNamespace) {
    auto ch = child::Channel::pipe("test");
    ASSERT_TRUE(ch);
    long pid = child::start(0);
    if (pid == 0) {
        if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
            child::send(ch->child.get(), child::Kind::step_failed, 0, errno);
            _exit(1);
        }
        if (child::loopback_up() != 0) {
            child::send(ch->child.get(), child::Kind::step_failed, 1, errno);
            _exit(1);
        }
        int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {};
        memcpy(ifr.ifr_name, "lo", 3);
        ::ioctl(s, SIOCGIFFLAGS, &ifr);
        child::send(ch->child.get(), child::Kind::ok, 0, 0, ifr.ifr_flags);
        _exit(0);
    }
    ch->child.reset();
    wait_for(static_cast<pid_t>(pid));
    child::Message m;
    ASSERT_EQ(child::receive(ch->parent.get(), &m), 1);
    if (m.kind == child::Kind::step_failed && m.step == 0)
        GTEST_SKIP() << "no user and network namespace here: " << strerror(m.err);
    ASSERT_EQ(m.kind, child::Kind::ok) << strerror(m.err);
    EXPECT_TRUE(m.status & IFF_UP);
}

// --- the end of a child ---------------------------------------------------------

TEST(ChildEnd, FailSendsTheMessageAndLeavesWithTheCode) {
    auto ch = child::Channel::pipe("test");
    ASSERT_TRUE(ch);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child::fail(ch->child.get(), child::Kind::step_failed, 3, EPERM);
    ch->child.reset();
    child::Message m;
    ASSERT_EQ(child::receive(ch->parent.get(), &m), 1);
    EXPECT_EQ(m.kind, child::Kind::step_failed);
    EXPECT_EQ(m.step, 3);
    EXPECT_EQ(m.err, EPERM);
    EXPECT_EQ(m.status, 125);
    int ws = wait_for(pid);
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 125);
}

TEST(ChildEnd, FailWithoutAParentOnlyLeaves) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child::fail(-1, Error{EIO, "x", ""}, 42);
    int ws = wait_for(pid);
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 42);
}

int returns_seven(void*) {
    return 7;
}

TEST(ChildEnd, ASharedChildLeavesWithWhatItsBodyReturns) {
    child::Stack stack;
    pid_t pid = child::start_shared(returns_seven, nullptr, stack);
    ASSERT_GT(pid, 0);
    int ws = wait_for(pid);
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 7);
}

TEST(ChildEnd, RunLeavesWithWhatItsBodyReturns) {
    long pid = child::run(0, [] { return 9; });
    ASSERT_GT(pid, 0);
    int ws = wait_for(static_cast<pid_t>(pid));
    ASSERT_TRUE(WIFEXITED(ws));
    EXPECT_EQ(WEXITSTATUS(ws), 9);
}

// --- owning a child -------------------------------------------------------------

namespace {
pid_t sleeper() {
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) pause();
    }
    return pid;
}

// Whether `pid` is a child of ours not yet reaped.
bool unreaped(pid_t pid) {
    siginfo_t si = {};
    return ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}
}  // namespace

TEST(ChildProcess, DroppedIsKilledAndReaped) {
    pid_t pid = sleeper();
    ASSERT_GT(pid, 0);
    {
        child::Process p(pid);
        EXPECT_EQ(p.pid(), pid);
        EXPECT_GE(p.fd(), 0);
    }
    EXPECT_FALSE(unreaped(pid));
}

TEST(ChildProcess, WaitReturnsTheStatusAndGivesItUp) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(3);
    child::Process p(pid);
    auto ws = p.wait();
    ASSERT_TRUE(ws) << ws.error().message();
    ASSERT_TRUE(WIFEXITED(*ws));
    EXPECT_EQ(WEXITSTATUS(*ws), 3);
    EXPECT_FALSE(p);
    EXPECT_FALSE(p.wait());
}

TEST(ChildProcess, WaitReportsASignal) {
    pid_t pid = sleeper();
    ASSERT_GT(pid, 0);
    child::Process p(pid);
    ASSERT_EQ(p.signal(SIGUSR1), 0);
    auto ws = p.wait();
    ASSERT_TRUE(ws);
    ASSERT_TRUE(WIFSIGNALED(*ws));
    EXPECT_EQ(WTERMSIG(*ws), SIGUSR1);
}

TEST(ChildProcess, WaitWithoutHangingKeepsARunningChild) {
    pid_t pid = sleeper();
    ASSERT_GT(pid, 0);
    child::Process p(pid);
    auto ws = p.wait(false);
    ASSERT_FALSE(ws);
    EXPECT_EQ(ws.error().err, EAGAIN);
    EXPECT_EQ(p.pid(), pid);
    int killed = p.kill();
    ASSERT_TRUE(WIFSIGNALED(killed));
    EXPECT_EQ(WTERMSIG(killed), SIGKILL);
    EXPECT_FALSE(unreaped(pid));
}

TEST(ChildProcess, ReleasedKeepsRunning) {
    pid_t pid = sleeper();
    ASSERT_GT(pid, 0);
    {
        child::Process p(pid);
        EXPECT_EQ(p.release(), pid);
        EXPECT_FALSE(p);
    }
    EXPECT_EQ(::kill(pid, 0), 0);
    siginfo_t si = {};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG), 0);
    EXPECT_EQ(si.si_pid, 0) << "still running";
    ::kill(pid, SIGKILL);
    wait_for(pid);
}

TEST(ChildProcess, MovedOwnsOnceAndAChildReapedElsewhereIsLeftAlone) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(0);
    child::Process a(pid);
    child::Process b(std::move(a));
    EXPECT_FALSE(a);
    EXPECT_EQ(b.pid(), pid);
    wait_for(pid);  // a supervisor's waitpid(-1) reaps it first
    EXPECT_EQ(b.kill(), -1) << "not ours to reap any more";
    child::Process empty(0);  // a dry run's child
    EXPECT_FALSE(empty);
    EXPECT_EQ(empty.kill(), -1);
}
