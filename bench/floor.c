/* bench/floor.c: the least work a kago chain does, as a small static C
 * program, for bench/start.sh. No option parsing beyond the two forms, no
 * state directory, no signal forwarding, no error messages: a measuring
 * stick, not a tool.
 *
 *   floor COMMAND [ARG...]
 *     unshare-run's default: clone() into new pid, mount, uts, ipc and net
 *     namespaces, make / private, bring lo up, and run the command under a
 *     PID 1 that vfork()s it and waits.
 *   floor --root DIR COMMAND [ARG...]
 *     the same, then the kernel work of
 *       mount-layers --layer DIR --tmp-upper --proc --dev --pivot
 *       cap-drop --drop all
 *     in the command's process: an overlay of DIR under a tmpfs upper
 *     directory, /proc with the same masks, a tmpfs /dev with the same
 *     device nodes bound from the host, devpts, /dev/shm and the symbolic
 *     links, pivot_root into it, then every capability dropped (bounding
 *     set, capset) and no_new_privs.
 *   floor --rootless DIR COMMAND [ARG...]
 *     what a packed file's warm run does (bench/pack.sh), as any user: a
 *     user namespace with one id mapped (the caller as 0, maps written by
 *     the caller itself, as unshare -Ur), then clone() into new pid,
 *     mount, uts, ipc and net namespaces; PID 1 brings lo up and builds
 *     the root above (masks as a user namespace allows them: a tmpfs on a
 *     directory, /dev/null bound on a file; devpts without gid=5; and
 *     /dev/mqueue), sets the host name, and vfork()s the command's
 *     process, which drops the capabilities outside Docker's set, sets
 *     no_new_privs, loads a seccomp filter of FLOOR_SECCOMP (default 87,
 *     the length of the default profile compiled for a packed file)
 *     instructions that allows everything after walking them all, and
 *     execs.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(x)                  \
    do {                          \
        if ((x) != 0) _exit(125); \
    } while (0)

static int rootless;

/* PID 1: wait for the command c and end with its status. */
static void init_wait(pid_t c) {
    int st;
    if (c < 0 || waitpid(c, &st, 0) < 0) _exit(125);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* The caller: the init's exit status. */
static int parent_wait(long pid) {
    int st;
    if (waitpid((pid_t)pid, &st, 0) < 0) return 125;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 125;
}

/* In the new namespaces: / private, lo up. */
static void private_root_lo_up(void) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) _exit(125);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strcpy(r.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &r) != 0) _exit(125);
    r.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &r) != 0) _exit(125);
    close(s);
}

static void build_root(const char* lower) {
    char top[64], upper[96], work[96], root[96], opts[512], p[160];
    /* A tmpfs over /tmp of the new mount namespace: nothing is left on
     * the host (mount-layers makes and removes a directory in /run/kago). */
    snprintf(top, sizeof top, "/tmp");
    CHECK(mount("tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
    snprintf(upper, sizeof upper, "%s/upper", top);
    snprintf(work, sizeof work, "%s/work", top);
    snprintf(root, sizeof root, "%s/root", top);
    CHECK(mkdir(upper, 0755));
    CHECK(mkdir(work, 0700));
    CHECK(mkdir(root, 0755));
    snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
    CHECK(mount("overlay", root, "overlay", MS_NODEV, opts));
    CHECK(chdir(root));
    /* /proc, and the masks mount-layers puts on it */
    CHECK(mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
    static const char* hide[] = {"acpi",        "asound",        "interrupts", "kcore",
                                 "keys",        "latency_stats", "timer_list", "timer_stats",
                                 "sched_debug", "scsi"};
    for (unsigned i = 0; i < sizeof hide / sizeof hide[0]; ++i) {
        struct stat st;
        snprintf(p, sizeof p, "proc/%s", hide[i]);
        if (rootless && stat(p, &st) == 0 && !S_ISDIR(st.st_mode))
            mount("/dev/null", p, NULL, MS_BIND, NULL);
        else
            mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0");
    }
    static const char* ro[] = {"bus", "fs", "irq", "sys", "sysrq-trigger"};
    for (unsigned i = 0; i < sizeof ro / sizeof ro[0]; ++i) {
        snprintf(p, sizeof p, "proc/%s", ro[i]);
        if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) == 0)
            mount(NULL, p, NULL,
                  MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID |
                      (rootless ? MS_NODEV | MS_NOEXEC : 0),
                  NULL);
    }
    /* /dev */
    CHECK(mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_STRICTATIME,
                "mode=0755,size=65536"));
    static const char* nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    for (unsigned i = 0; i < sizeof nodes / sizeof nodes[0]; ++i) {
        char host[32];
        snprintf(p, sizeof p, "dev/%s", nodes[i]);
        snprintf(host, sizeof host, "/dev/%s", nodes[i]);
        CHECK(mknod(p, S_IFREG | 0666, 0));
        CHECK(mount(host, p, NULL, MS_BIND, NULL));
    }
    CHECK(mkdir("dev/pts", 0755));
    CHECK(mkdir("dev/shm", 01777));
    CHECK(mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                rootless ? "newinstance,ptmxmode=0666,mode=0620"
                         : "newinstance,ptmxmode=0666,mode=0620,gid=5"));
    CHECK(mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=01777,size=67108864"));
    CHECK(symlink("pts/ptmx", "dev/ptmx"));
    CHECK(symlink("/proc/self/fd", "dev/fd"));
    CHECK(symlink("/proc/self/fd/0", "dev/stdin"));
    CHECK(symlink("/proc/self/fd/1", "dev/stdout"));
    CHECK(symlink("/proc/self/fd/2", "dev/stderr"));
    CHECK(symlink("/proc/kcore", "dev/core"));
    if (rootless) {
        CHECK(mkdir("dev/mqueue", 0755));
        CHECK(mount("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
    }
    /* pivot */
    CHECK((int)syscall(SYS_pivot_root, ".", "."));
    CHECK(umount2(".", MNT_DETACH));
    CHECK(chdir("/"));
}

static void drop_all(void) {
    for (int cap = 0; cap <= 63; ++cap)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) break;
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    CHECK((int)syscall(SYS_capset, &h, d));
    CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
}

/* Docker's capabilities are kept (the packed runner's default): the
 * bounding set loses the others. */
static void drop_to_default(void) {
    static const int keep[] = {CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
                               CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
                               CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
                               CAP_KILL,    CAP_AUDIT_WRITE};
    unsigned long long set = 0;
    for (unsigned i = 0; i < sizeof keep / sizeof keep[0]; ++i) set |= 1ULL << keep[i];
    for (int cap = 0; cap <= 63; ++cap)
        if (!(set >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) break;
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    d[0].effective = d[0].permitted = d[0].inheritable = (unsigned)set;
    d[1].effective = d[1].permitted = d[1].inheritable = (unsigned)(set >> 32);
    CHECK((int)syscall(SYS_capset, &h, d));
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
}

/* A filter of n instructions (built before the vfork): n - 1 jumps that
 * never jump, then allow, so that every system call walks them all. */
static struct sock_filter* filter;
static unsigned short filter_len;
static void make_filter(unsigned n) {
    if (n < 2) n = 2;
    filter = calloc(n, sizeof *filter);
    filter[0] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0);
    for (unsigned i = 1; i < n - 1; ++i)
        filter[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffff0000u + i, 0, 0);
    filter[n - 1] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    filter_len = (unsigned short)n;
}

static void write_file(const char* path, const char* text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) _exit(125);
    close(fd);
}

static int rootless_main(const char* dir, char** argv) {
    char map[64];
    unsigned uid = getuid(), gid = getgid();
    const char* len = getenv("FLOOR_SECCOMP");
    make_filter(len ? (unsigned)atoi(len) : 87);
    if (unshare(CLONE_NEWUSER) != 0) return 125;
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "0 %u 1", gid);
    write_file("/proc/self/gid_map", map);
    long pid =
        syscall(SYS_clone,
                CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET | SIGCHLD,
                0, 0, 0, 0);
    if (pid < 0) return 125;
    if (pid == 0) {
        private_root_lo_up();
        build_root(dir);
        CHECK(sethostname("kago", 4));
        pid_t c = vfork();
        if (c == 0) {
            struct sock_fprog prog = {filter_len, filter};
            drop_to_default();
            if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) _exit(125);
            execv(argv[0], argv);
            _exit(127);
        }
        init_wait(c);
    }
    return parent_wait(pid);
}

/* Globals: nothing that vfork() could clobber. */
static const char* lower;
static char** cmd;

int main(int argc, char** argv) {
    if (argc > 3 && strcmp(argv[1], "--rootless") == 0) {
        rootless = 1;
        return rootless_main(argv[2], argv + 3);
    }
    const int shift = argc > 2 && strcmp(argv[1], "--root") == 0 ? 2 : 0;
    lower = shift ? argv[2] : NULL;
    cmd = argv + 1 + shift;
    if (argc < 2 + shift) return 125;
    long pid = syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET | SIGCHLD,
                       0, 0, 0, 0);
    if (pid < 0) return 125;
    if (pid == 0) {
        private_root_lo_up();
        /* fork() when the command's process has work of its own to do
         * first (a vfork()ed child may only exec). */
        pid_t c = lower ? fork() : vfork();
        if (c == 0) {
            if (lower) {
                build_root(lower);
                drop_all();
            }
            execv(cmd[0], cmd);
            _exit(127);
        }
        init_wait(c);
    }
    return parent_wait(pid);
}
