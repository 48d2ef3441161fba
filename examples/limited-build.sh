#!/bin/sh
# limited-build.sh [ROOT]: compile a program in a container under memory
# and process limits, and print what the limits saw as JSON.
#
# ROOT (default /, the host's own root, as MINCS does) is the bottom layer:
# it must hold a C compiler and make. The source is written to a fresh
# directory and bound at /src; the build's writes elsewhere go to a tmpfs.
#
#   cg-limit --memory 256M --pids 64 --status-fd 3   limits, then one JSON
#                                                    line on descriptor 3
#   unshare-run, mount-layers, cap-drop              the container
#
#   examples/limited-build.sh
#   {"name":"...","exit":0,"oom_kills":0,"memory_peak":...,"pids_refused":0,...}
set -eu
root=${1:-/}
here=$(cd "$(dirname "$0")" && pwd)
command -v unshare-run >/dev/null 2>&1 || PATH="$here/../bin:$PATH"
src=$(mktemp -d "${TMPDIR:-/tmp}/kago-build.XXXXXX")
trap 'rm -rf "$src"' EXIT

for i in 1 2 3 4; do
    printf 'int f%d(int x) { return x * %d; }\n' "$i" "$i" >"$src/f$i.c"
done
cat >"$src/main.c" <<'C'
#include <stdio.h>
int f1(int), f2(int), f3(int), f4(int);
int main(void) { printf("built in a container: %d\n", f1(1) + f2(2) + f3(3) + f4(4)); return 0; }
C
cat >"$src/Makefile" <<'M'
hello: main.o f1.o f2.o f3.o f4.o
	$(CC) -o $@ $^
M

status=0
cg-limit --memory 256M --pids 64 --status-fd 3 -- \
    unshare-run --pid --mount --uts --ipc --net --hostname build -- \
    mount-layers --layer "$root" --tmp-upper --proc --dev --bind "$src:/src" --chdir /src --pivot -- \
    cap-drop --drop all --seccomp default -- \
    sh -c 'make -s -j4 && ./hello' 3>"$src/status.json" || status=$?
echo "status: $(cat "$src/status.json")"
exit "$status"
