/* tty_drive: run a command on a new pseudo-terminal, as a user at a
 * terminal would, and act on what it prints.
 *
 *   tty_drive [-s ROWSxCOLS] [-i MARKER=TEXT]... [-z MARKER=ROWSxCOLS]...
 *             COMMAND [ARG...]
 *
 * COMMAND leads a new session whose controlling terminal is the new
 * terminal, on descriptors 0, 1 and 2; the terminal keeps its default
 * (cooked) mode and starts with the size given by -s (default 24x80).
 * Its output is copied to our standard output. Once MARKER has appeared in
 * the output, TEXT is typed (-i; \n, \r, \\ and \xHH are understood) or the
 * terminal is resized (-z), each action once, in the order given. Ends when
 * every descriptor of the terminal is closed; exits with COMMAND's status
 * (128+N for a signal).
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

struct action {
    char kind; /* 'i' or 'z' */
    char *marker;
    char text[256];
    size_t len;
    struct winsize ws;
    int done;
};

static void die(const char *what) {
    fprintf(stderr, "tty_drive: %s: %s\n", what, strerror(errno));
    exit(125);
}

static int size_of(const char *s, struct winsize *ws) {
    unsigned r, c;
    if (sscanf(s, "%ux%u", &r, &c) != 2) return -1;
    memset(ws, 0, sizeof *ws);
    ws->ws_row = (unsigned short)r;
    ws->ws_col = (unsigned short)c;
    return 0;
}

static size_t unescape(const char *s, char *out, size_t max) {
    size_t n = 0;
    while (*s && n < max) {
        if (*s == '\\' && s[1]) {
            ++s;
            if (*s == 'n') out[n++] = '\n';
            else if (*s == 'r') out[n++] = '\r';
            else if (*s == 'x' && s[1] && s[2]) {
                char hex[3] = {s[1], s[2], 0};
                out[n++] = (char)strtol(hex, NULL, 16);
                s += 2;
            } else out[n++] = *s;
            ++s;
        } else {
            out[n++] = *s++;
        }
    }
    return n;
}

int main(int argc, char **argv) {
    struct action acts[16];
    int nacts = 0;
    struct winsize ws = {24, 80, 0, 0};
    int opt;
    while ((opt = getopt(argc, argv, "+s:i:z:")) != -1) {
        if (opt == 's') {
            if (size_of(optarg, &ws)) goto usage;
        } else if ((opt == 'i' || opt == 'z') && nacts < 16) {
            struct action *a = &acts[nacts++];
            memset(a, 0, sizeof *a);
            a->kind = (char)opt;
            char *eq = strchr(optarg, '=');
            if (!eq) goto usage;
            *eq = 0;
            a->marker = optarg;
            if (opt == 'i') a->len = unescape(eq + 1, a->text, sizeof a->text);
            else if (size_of(eq + 1, &a->ws)) goto usage;
        } else {
            goto usage;
        }
    }
    if (optind >= argc) goto usage;

    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) die("posix_openpt");
    if (grantpt(master) < 0 || unlockpt(master) < 0) die("unlockpt");
    if (ioctl(master, TIOCSWINSZ, &ws) < 0) die("TIOCSWINSZ");
    char *name = ptsname(master);
    if (!name) die("ptsname");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (setsid() < 0) die("setsid");
        int tty = open(name, O_RDWR);
        if (tty < 0) die(name);
        if (ioctl(tty, TIOCSCTTY, 0) < 0) die("TIOCSCTTY");
        dup2(tty, 0);
        dup2(tty, 1);
        dup2(tty, 2);
        if (tty > 2) close(tty);
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "tty_drive: %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    /* The output seen so far, for the markers (the last 64 KiB). */
    static char seen[65536];
    size_t nseen = 0;
    char buf[4096];
    for (;;) {
        ssize_t n = read(master, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* EIO: the terminal's last holder closed it */
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(1, buf + off, (size_t)(n - off));
            if (w <= 0) break;
            off += w;
        }
        if (nseen + (size_t)n >= sizeof seen - 1) {
            size_t keep = sizeof seen / 2;
            memmove(seen, seen + nseen - keep, keep);
            nseen = keep;
        }
        memcpy(seen + nseen, buf, (size_t)n);
        nseen += (size_t)n;
        seen[nseen] = 0;
        for (int i = 0; i < nacts; ++i) {
            struct action *a = &acts[i];
            if (a->done) continue;
            if (!memmem(seen, nseen, a->marker, strlen(a->marker))) break; /* in order */
            a->done = 1;
            if (a->kind == 'i') {
                if (write(master, a->text, a->len) != (ssize_t)a->len) die("write to the terminal");
            } else if (ioctl(master, TIOCSWINSZ, &a->ws) < 0) {
                die("TIOCSWINSZ");
            }
            /* A marker counts once: forget the output up to here. */
            nseen = 0;
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid");
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
usage:
    fprintf(stderr, "usage: tty_drive [-s ROWSxCOLS] [-i MARKER=TEXT]... [-z MARKER=ROWSxCOLS]... COMMAND [ARG...]\n");
    return 125;
}
