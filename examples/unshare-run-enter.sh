#!/bin/sh
# unshare-run-enter.sh: start a small "container" with unshare-run alone
# (new PID, mount, UTS, IPC and network namespaces, its own /proc), then
# enter it from outside with --join-pid, the way `docker exec` does, and
# show that both sides see the same namespaces. Run as root, or as any user
# with ROOTLESS=1 (adds --user --map-root).
#   examples/unshare-run-enter.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command -v unshare-run >/dev/null 2>&1 || PATH="$here/../bin:$PATH"
user=""
[ "${ROOTLESS:-0}" = 1 ] && user="--user --map-root"

info=$(mktemp)
supervisor=""
trap '[ -z "$supervisor" ] || kill -TERM "$supervisor" 2>/dev/null; rm -f "$info"' EXIT

# 1. The container: PID 1 is unshare-run's init, `sleep` is PID 2. Its pid
#    and namespace inodes arrive as JSON on descriptor 3.
# shellcheck disable=SC2086
unshare-run $user --mount-proc --uts --ipc --net --hostname box --info-fd 3 -- sleep 60 3>"$info" &
supervisor=$!
while [ ! -s "$info" ]; do sleep 0.05; done
echo "started:  $(cat "$info")"
pid=$(sed 's/^{"pid":\([0-9]*\),.*/\1/' "$info")

# 2. Enter it: every namespace of the container's first process, user first,
#    then its root and working directory.
unshare-run --join-pid "$pid" -- sh -c '
    echo "inside:   hostname $(hostname), my pid $$"
    echo "          net $(readlink /proc/self/ns/net)"
    ps -o pid,comm ax'
echo "outside:  net $(readlink /proc/$pid/ns/net) (the same)"

# 3. Stop it: the supervisor forwards SIGTERM through the init to sleep, then
#    removes the state directory.
kill -TERM "$supervisor"
wait "$supervisor" || true
supervisor=""
