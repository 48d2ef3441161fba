/* caps_try: make one system call that cap-drop's policy is about, and say
 * how it went: "NAME: ok" (exit 0) or "NAME: EPERM (Operation not
 * permitted)" (exit 1). Static, so it runs in any container root.
 *
 *   caps_try keyctl | add_key | unshare-user | unshare-net | clone-newuser |
 *            clone3 | fork | socket-alg | socket-vsock | socket-inet |
 *            io_uring | bpf | userfaultfd | perf | ptrace | i386-getpid |
 *            x32-getpid | bind PORT | whoami | setuid0 | securebits | bounding
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static int report(const char *name, long rc) {
    if (rc >= 0) {
        printf("%s: ok\n", name);
        return 0;
    }
    int e = errno;
    printf("%s: %s (%s)\n", name, strerrorname_np(e) ? strerrorname_np(e) : "?", strerror(e));
    return 1;
}

static long reap(long pid) {
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, __WALL);
    return pid;
}

/* A system call through the i386 entry point (int $0x80): getpid is 20. */
static long i386_getpid(void) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    if (ret < 0 && ret > -4096) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: caps_try NAME [ARG]\n");
        return 2;
    }
    const char *n = argv[1];
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(n, "keyctl")) return report(n, syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 1));
    if (!strcmp(n, "add_key")) return report(n, syscall(SYS_add_key, "user", "kago-test", "x", 1, -2 /* process */));
    if (!strcmp(n, "unshare-user")) return report(n, unshare(CLONE_NEWUSER));
    if (!strcmp(n, "unshare-net")) return report(n, unshare(CLONE_NEWNET));
    if (!strcmp(n, "clone-newuser")) return report(n, reap(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)));
    if (!strcmp(n, "clone3")) {
        struct clone_args a;
        memset(&a, 0, sizeof a);
        a.exit_signal = SIGCHLD;
        return report(n, reap(syscall(SYS_clone3, &a, sizeof a)));
    }
    if (!strcmp(n, "fork")) return report(n, reap(fork()));
    if (!strcmp(n, "socket-alg")) return report(n, socket(AF_ALG, SOCK_SEQPACKET, 0));
    if (!strcmp(n, "socket-vsock")) return report(n, socket(AF_VSOCK, SOCK_STREAM, 0));
    if (!strcmp(n, "socket-inet")) return report(n, socket(AF_INET, SOCK_STREAM, 0));
    if (!strcmp(n, "io_uring")) {
        char params[120];
        memset(params, 0, sizeof params);
        return report(n, syscall(SYS_io_uring_setup, 1, params));
    }
    if (!strcmp(n, "bpf")) {
        /* BPF_MAP_CREATE of an array map: EPERM under the filter. */
        uint32_t attr[16];
        memset(attr, 0, sizeof attr);
        attr[0] = 2; /* BPF_MAP_TYPE_ARRAY */
        attr[1] = 4;
        attr[2] = 4;
        attr[3] = 1;
        return report(n, syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr));
    }
    if (!strcmp(n, "userfaultfd")) return report(n, syscall(SYS_userfaultfd, 0));
    if (!strcmp(n, "perf")) {
        char attr[128];
        memset(attr, 0, sizeof attr);
        *(uint32_t *)(attr + 4) = sizeof attr; /* size; type 0 = hardware */
        return report(n, syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
    }
    if (!strcmp(n, "ptrace")) {
        pid_t child = fork();
        if (child == 0) {
            pause();
            _exit(0);
        }
        long rc = ptrace(PTRACE_ATTACH, child, 0, 0);
        int e = errno;
        kill(child, SIGKILL);
        waitpid(child, NULL, __WALL);
        errno = e;
        return report(n, rc);
    }
    if (!strcmp(n, "i386-getpid")) return report(n, i386_getpid());
    if (!strcmp(n, "x32-getpid")) return report(n, syscall(SYS_getpid | 0x40000000));
    if (!strcmp(n, "bind") && argc > 2) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return report("socket", -1);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)atoi(argv[2]));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return report(n, bind(fd, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(n, "whoami")) {
        printf("uid=%d euid=%d gid=%d egid=%d\n", (int)getuid(), (int)geteuid(), (int)getgid(), (int)getegid());
        return 0;
    }
    if (!strcmp(n, "setuid0")) return report(n, setuid(0));
    if (!strcmp(n, "securebits")) {
        int b = prctl(PR_GET_SECUREBITS);
        if (b < 0) return report(n, b);
        printf("securebits=0x%x\n", b);
        return 0;
    }
    if (!strcmp(n, "bounding")) { /* the bounding set, from the kernel (no /proc) */
        unsigned long long set = 0;
        for (int cap = 0; cap < 64; ++cap) {
            int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
            if (r < 0) break;
            if (r == 1) set |= 1ULL << cap;
        }
        printf("bounding=0x%llx\n", set);
        return 0;
    }
    fprintf(stderr, "caps_try: unknown test '%s'\n", n);
    return 2;
}
