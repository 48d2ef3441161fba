/* escape_try: one escape attempt from inside a container, reported as
 * "NAME: ok ..." (exit 0) or "NAME: EPERM (Operation not permitted)"
 * (exit 1). Static, so it runs in any container root. tests/bats/escape.bats
 * uses it.
 *
 *   escape_try handle PATH
 *       (on the host) print the file handle of PATH as TYPE:HEX
 *   escape_try shocker DIR TYPE:HEX RELPATH
 *       open_by_handle_at() the handle through DIR (a bind of the host's
 *       filesystem), then print the first line of RELPATH under it: the
 *       "shocker" escape
 *   escape_try ptrace-init
 *       PTRACE_ATTACH to PID 1 (and detach again)
 *   escape_try klogctl
 *       read the kernel log (SYSLOG_ACTION_READ_ALL), as dmesg does
 *   escape_try tiocsti TEXT
 *       push TEXT and a newline into the input of the terminal on
 *       descriptor 0 (TIOCSTI), one character at a time
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static int failed(const char *name) {
    int e = errno;
    printf("%s: %s (%s)\n", name, strerrorname_np(e) ? strerrorname_np(e) : "?", strerror(e));
    return 1;
}

static int handle(const char *path) {
    struct file_handle *fh = malloc(sizeof *fh + MAX_HANDLE_SZ);
    int mount_id;
    fh->handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(AT_FDCWD, path, fh, &mount_id, 0) < 0) return failed("handle");
    printf("%d:", fh->handle_type);
    for (unsigned i = 0; i < fh->handle_bytes; i++) printf("%02x", fh->f_handle[i]);
    printf("\n");
    return 0;
}

static int shocker(const char *dir, const char *text, const char *rel) {
    struct file_handle *fh = malloc(sizeof *fh + MAX_HANDLE_SZ);
    char *colon = strchr(text, ':');
    if (!colon) return fprintf(stderr, "escape_try: shocker: bad handle %s\n", text), 2;
    fh->handle_type = atoi(text);
    fh->handle_bytes = 0;
    for (const char *p = colon + 1; p[0] && p[1] && fh->handle_bytes < MAX_HANDLE_SZ; p += 2) {
        unsigned b;
        sscanf(p, "%2x", &b);
        fh->f_handle[fh->handle_bytes++] = (unsigned char)b;
    }
    int mfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (mfd < 0) return failed("shocker: open the bind");
    int root = open_by_handle_at(mfd, fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return failed("shocker");
    int fd = openat(root, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return failed("shocker: openat under the handle");
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0) return failed("shocker: read");
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    printf("shocker: ok, read %s\n", buf);
    return 0;
}

static int ptrace_init(void) {
    if (ptrace(PTRACE_ATTACH, 1, 0, 0) < 0) return failed("ptrace-init");
    waitpid(1, NULL, __WALL);
    ptrace(PTRACE_DETACH, 1, 0, 0);
    printf("ptrace-init: ok\n");
    return 0;
}

static int read_klog(void) {
    char buf[4096];
    int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof buf);
    if (n < 0) return failed("klogctl");
    printf("klogctl: ok, %d bytes\n", n);
    return 0;
}

static int tiocsti(const char *text) {
    size_t len = strlen(text);
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? text[i] : '\n';
        if (ioctl(0, TIOCSTI, &c) < 0) return failed("tiocsti");
    }
    printf("tiocsti: ok\n");
    return 0;
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(m, "handle") && argc == 3) return handle(argv[2]);
    if (!strcmp(m, "shocker") && argc == 5) return shocker(argv[2], argv[3], argv[4]);
    if (!strcmp(m, "ptrace-init")) return ptrace_init();
    if (!strcmp(m, "klogctl")) return read_klog();
    if (!strcmp(m, "tiocsti") && argc == 3) return tiocsti(argv[2]);
    fprintf(stderr, "usage: escape_try handle PATH | shocker DIR TYPE:HEX RELPATH | ptrace-init | klogctl | tiocsti TEXT\n");
    return 2;
}
