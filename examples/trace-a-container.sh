#!/bin/sh
# trace-a-container.sh ROOTFS [TRACEFILE]: build a container with
# KAGO_TRACE=1 and keep the trace, for a class. Every kago program in the
# chain prints each kernel call it makes, with its result, in the order it
# makes them; the trace is the complete recipe of a container.
#
# It prints the container's own output, then the trace grouped by program,
# then a count of calls per program. With TRACEFILE, the raw trace is kept.
#
#   examples/trace-a-container.sh build/rootfs-busybox /tmp/container.trace
set -eu
rootfs=${1:?usage: trace-a-container.sh ROOTFS [TRACEFILE]}
here=$(cd "$(dirname "$0")" && pwd)
command -v unshare-run >/dev/null 2>&1 || PATH="$here/../bin:$PATH"
if [ -n "${2:-}" ]; then
    trace=$2
else
    trace=$(mktemp "${TMPDIR:-/tmp}/kago-trace.XXXXXX")
    trap 'rm -f "$trace"' EXIT
fi

echo "== the container says:"
KAGO_TRACE=1 unshare-run --pid --mount --uts --ipc --net --hostname traced -- \
    mount-layers --layer "$rootfs" --tmp-upper --proc --dev --pivot -- \
    cap-drop --drop all --seccomp default -- \
    sh -c 'echo "  hostname $(hostname), pid $$, $(grep CapEff /proc/self/status)"' \
    2>"$trace"

for prog in unshare-run mount-layers cap-drop; do
    echo "== $prog:"
    grep "^$prog: " "$trace" | sed "s/^$prog: /  /"
done
echo "== kernel calls per program:"
sed -n 's/^\([a-z-]*\): \([a-z_0-9]*\)(.*/\1 \2/p' "$trace" | awk '
    { n[$1]++; calls[$1] = calls[$1] (index(calls[$1], " " $2 " ") ? "" : " " $2 " ") }
    END { for (p in n) { gsub(/  +/, " ", calls[p]); printf "  %-13s %3d:%s\n", p, n[p], calls[p] } }' | sort
