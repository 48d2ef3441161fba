// Unit tests for lib/core/console: unshare-run --tty's two sides, on
// pseudo-terminals from the host's /dev/ptmx (no privilege needed).
#include "core/console.hpp"
#include "core/sys.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <string>

#include "core/env.hpp"
#include "core/fd.hpp"

using namespace kago;

namespace {

int status_of(pid_t pid) {
    int ws = 0;
    ::waitpid(pid, &ws, 0);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 100 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
}

// The supervisor's receiving end, as a test needs it: one descriptor.
int receive_fd(int sock) {
    char byte;
    int fd = -1;
    if (kago::sys::receive_with_fd(sock, &byte, 1, 0, &fd) != 1) {
        if (fd >= 0) ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

TEST(Console, TakeWithoutTheVariableIsNone) {
    env::Contract c;
    auto fd = console::take(c);
    ASSERT_TRUE(fd);
    EXPECT_EQ(*fd, -1);
}

TEST(Console, TakeRefusesWhatIsNotTheSocket) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    std::string pipe_fd = std::to_string(p[0]);
    for (const char* v : {"x", "1", "2", "99999", "1000", pipe_fd.c_str()}) {
        env::Contract c;
        c.console_fd = v;  // as read at the start
        auto fd = console::take(c);
        EXPECT_FALSE(fd) << v;  // a payload must not run on the caller's terminal instead
        if (!fd) {
            EXPECT_NE(fd.error().what.find("not the console socket"), std::string::npos);
        }
        EXPECT_EQ(c.get(env::kConsoleFd), "") << v;  // not passed on down the chain
    }
    ::close(p[0]);
    ::close(p[1]);
}

TEST(Console, TakeGivesTheSocketAndRemovesTheVariable) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    env::Contract c;
    c.set(env::kConsoleFd, std::to_string(sv[1]));
    auto fd = console::take(c);
    ASSERT_TRUE(fd) << fd.error().message();
    EXPECT_EQ(*fd, sv[1]);
    EXPECT_EQ(c.get(env::kConsoleFd), "");
    EXPECT_EQ(c.render({cat(env::kConsoleFd, "=", sv[1])}),
              std::vector<std::string>{});  // unset for the chain
    ::close(sv[0]);
    ::close(sv[1]);
}

TEST(Console, CheckMasterAcceptsOnlyATerminalMaster) {
    UniqueFd m(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    ASSERT_TRUE(m.valid());
    auto n = console::check_master(m.get());
    EXPECT_TRUE(n);
    int unlock = 0;
    ASSERT_EQ(::ioctl(m.get(), TIOCSPTLCK, &unlock), 0);
    UniqueFd peer(::ioctl(m.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
    ASSERT_TRUE(peer.valid());
    EXPECT_FALSE(console::check_master(peer.get()));  // the other end
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    EXPECT_FALSE(console::check_master(p[0]));
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    EXPECT_FALSE(console::check_master(null.get()));  // a character device, not a terminal
    ::close(p[0]);
    ::close(p[1]);
}

TEST(Console, StepsAreNamed) {
    for (int i = 0; i < 8; ++i)
        EXPECT_EQ(std::string(console::step_what(i)).rfind("--tty: ", 0), 0u) << i;
    EXPECT_NE(console::step_hint(0), nullptr);  // no /dev/ptmx: say what makes one
    EXPECT_EQ(console::step_hint(3), nullptr);
}

// The whole hand-over: a child attaches, the test plays the supervisor.
TEST(Console, AttachHandsTheMasterOverAndTakesTheTerminal) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(sv[0]);
        console::Failure f = console::attach(sv[1]);
        if (f.step >= 0) _exit(10 + f.step);
        // A session of its own, with the new terminal as its controlling
        // terminal, on 0, 1 and 2, of the size the supervisor set.
        if (::getsid(0) != ::getpid()) _exit(20);
        for (int fd = 0; fd < 3; ++fd)
            if (!::isatty(fd)) _exit(21);
        if (::tcgetpgrp(0) != ::getpgrp()) _exit(22);
        struct winsize ws;
        if (::ioctl(0, TIOCGWINSZ, &ws) != 0 || ws.ws_row != 10 || ws.ws_col != 20) _exit(23);
        if (::fcntl(sv[1], F_GETFD) != -1) _exit(24);  // attach() closed the socket
        if (::write(1, "hello\n", 6) != 6) _exit(25);
        _exit(0);
    }
    ::close(sv[1]);
    UniqueFd master(receive_fd(sv[0]));
    ASSERT_TRUE(master.valid());
    EXPECT_TRUE(console::check_master(master.get()));
    struct winsize ws = {10, 20, 0, 0};
    ASSERT_EQ(::ioctl(master.get(), TIOCSWINSZ, &ws), 0);
    ASSERT_EQ(::send(sv[0], "y", 1, MSG_NOSIGNAL), 1);
    char b;
    EXPECT_EQ(::recv(sv[0], &b, 1, 0), 0);  // end of file: the child closed its end
    std::string out;
    char buf[256];
    for (;;) {
        struct pollfd p = {master.get(), POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) break;
        ssize_t n = ::read(master.get(), buf, sizeof buf);
        if (n <= 0) break;  // EIO: the child is gone
        out.append(buf, static_cast<size_t>(n));
    }
    EXPECT_EQ(status_of(pid), 0);
    EXPECT_NE(out.find("hello"), std::string::npos) << out;
    ::close(sv[0]);
}

TEST(Console, AttachFailsWhenTheSupervisorIsGone) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ::close(sv[0]);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        console::Failure f = console::attach(sv[1]);
        // Sending the master fails (or waiting for the answer does): the
        // descriptors 0, 1 and 2 are still the ones it had.
        _exit(f.step == 3 || f.step == 4 ? (::isatty(0) && ::getsid(0) == ::getpid() ? 2 : 0) : 1);
    }
    ::close(sv[1]);
    EXPECT_EQ(status_of(pid), 0);
}

// RawMode on a terminal that is the child's standard input and
// controlling terminal: raw after enter(), as before after restore().
TEST(Console, RawModeEntersAndRestores) {
    UniqueFd m(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    ASSERT_TRUE(m.valid());
    int unlock = 0;
    ASSERT_EQ(::ioctl(m.get(), TIOCSPTLCK, &unlock), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::setsid() < 0) _exit(10);
        int t = ::ioctl(m.get(), TIOCGPTPEER, O_RDWR);
        if (t < 0 || ::ioctl(t, TIOCSCTTY, 0) != 0 || ::dup2(t, 0) != 0) _exit(11);
        struct termios before, during, after;
        ::tcgetattr(0, &before);
        {
            console::RawMode raw;
            if (!raw.enter() || !raw.active()) _exit(12);
            ::tcgetattr(0, &during);
            if (during.c_lflag & (ICANON | ECHO | ISIG)) _exit(13);
            if (during.c_oflag & OPOST) _exit(14);
        }  // the destructor restores
        ::tcgetattr(0, &after);
        if (after.c_lflag != before.c_lflag || after.c_iflag != before.c_iflag ||
            after.c_oflag != before.c_oflag ||
            memcmp(after.c_cc, before.c_cc, sizeof after.c_cc) != 0)
            _exit(15);
        _exit(0);
    }
    EXPECT_EQ(status_of(pid), 0);
}

TEST(Console, RawModeLeavesANonTerminalAlone) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int null = ::open("/dev/null", O_RDONLY);
        if (null < 0 || ::dup2(null, 0) != 0) _exit(10);
        console::RawMode raw;
        if (!raw.enter()) _exit(11);
        _exit(raw.active() || raw.saved() ? 12 : 0);
    }
    EXPECT_EQ(status_of(pid), 0);
}
