/* pty_run: run a command on a new pseudo-terminal, as an interactive shell
 * would, then tell what the command left in the terminal's input.
 *
 *   pty_run COMMAND [ARG...]
 *
 * A child becomes the leader of a new session with the terminal as its
 * controlling terminal (the "shell"), and starts COMMAND in that session
 * with the terminal on descriptors 0, 1 and 2. The terminal is raw: no
 * echo, no line editing. COMMAND's output is copied to our standard
 * output. Once COMMAND has exited, the "shell" reads, without waiting,
 * whatever is in the terminal's input queue, which the shell would run
 * next, and prints
 *
 *   pty_run: injected: TEXT        (newlines shown as \n)
 *   pty_run: injected: nothing
 *
 * then exits with COMMAND's status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "pty_run: %s: %s\n", what, strerror(errno));
    _exit(125);
}

/* The session leader: owns the terminal, runs the command, reads what is
 * left in the input queue. `out` is the real standard output. */
static int shell(int tty, int out, char **argv) {
    if (setsid() < 0) die("setsid");
    if (ioctl(tty, TIOCSCTTY, 0) < 0) die("TIOCSCTTY");
    struct termios t;
    if (tcgetattr(tty, &t) < 0) die("tcgetattr");
    cfmakeraw(&t);
    if (tcsetattr(tty, TCSANOW, &t) < 0) die("tcsetattr");
    pid_t cmd = fork();
    if (cmd < 0) die("fork");
    if (cmd == 0) {
        dup2(tty, 0);
        dup2(tty, 1);
        dup2(tty, 2);
        if (tty > 2) close(tty);
        close(out);
        execvp(argv[0], argv);
        fprintf(stderr, "pty_run: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(cmd, &status, 0) < 0)
        if (errno != EINTR) die("waitpid");
    int flags = fcntl(tty, F_GETFL);
    fcntl(tty, F_SETFL, flags | O_NONBLOCK);
    char buf[512];
    ssize_t n = read(tty, buf, sizeof buf);
    dprintf(out, "pty_run: injected: ");
    if (n <= 0) dprintf(out, "nothing");
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || buf[i] == '\r') dprintf(out, "\\n");
        else dprintf(out, "%c", buf[i]);
    }
    dprintf(out, "\n");
    close(tty);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: pty_run COMMAND [ARG...]\n");
        return 125;
    }
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) die("posix_openpt");
    if (grantpt(master) < 0 || unlockpt(master) < 0) die("grantpt");
    char *slave_name = ptsname(master);
    if (!slave_name) die("ptsname");
    /* Opened here, so that it is open before the loop below reads. */
    int tty = open(slave_name, O_RDWR | O_NOCTTY);
    if (tty < 0) die(slave_name);
    fflush(stdout);
    pid_t leader = fork();
    if (leader < 0) die("fork");
    if (leader == 0) {
        close(master);
        _exit(shell(tty, dup(1), argv + 1));
    }
    close(tty);
    /* The command's output, until every descriptor of the terminal is
     * closed (then read() fails with EIO). */
    char buf[4096];
    for (;;) {
        ssize_t n = read(master, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(1, buf + off, (size_t)(n - off));
            if (w <= 0) break;
            off += w;
        }
    }
    int status;
    while (waitpid(leader, &status, 0) < 0)
        if (errno != EINTR) die("waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}
