/* bench/floor.c: the least work unshare-run's default does, as a 30-line
 * static C program, for bench/start.sh: clone() into new pid, mount, uts,
 * ipc and net namespaces, make / private, bring lo up, and run the command
 * under a PID 1 that vfork()s it and waits. No option parsing, no state
 * directory, no signal forwarding, no error messages: a measuring stick,
 * not a tool.
 *   floor COMMAND [ARG...]
 */
#define _GNU_SOURCE
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 2) return 125;
    long pid = syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET | SIGCHLD,
                       0, 0, 0, 0);
    if (pid < 0) return 125;
    if (pid == 0) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) _exit(125);
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct ifreq r;
        memset(&r, 0, sizeof r);
        strcpy(r.ifr_name, "lo");
        if (s < 0 || ioctl(s, SIOCGIFFLAGS, &r) != 0) _exit(125);
        r.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &r) != 0) _exit(125);
        close(s);
        pid_t c = vfork();
        if (c == 0) {
            execv(argv[1], argv + 1);
            _exit(127);
        }
        int st;
        if (c < 0 || waitpid(c, &st, 0) < 0) _exit(125);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    int st;
    if (waitpid((pid_t)pid, &st, 0) < 0) return 125;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 125;
}
