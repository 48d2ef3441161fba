/* cgroup_alloc MIB: allocate MIB mebibytes, touching every page, then
 * print "allocated MIB MiB" and exit 0. Used by tests/bats/cg-limit.bats
 * to trip a memory limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 100;
    for (long i = 0; i < mib; i++) {
        char *p = malloc(1 << 20);
        if (!p) {
            fprintf(stderr, "cgroup_alloc: malloc failed after %ld MiB\n", i);
            return 1;
        }
        memset(p, 0x5a, 1 << 20);
    }
    printf("allocated %ld MiB\n", mib);
    return 0;
}
