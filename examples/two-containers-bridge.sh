#!/bin/sh
# two-containers-bridge.sh ROOTFS: two containers on one bridge ping each
# other. Each gets a veth with one end (eth0) inside it and the other on
# the bridge, and a fixed address in the bridge's subnet; the bridge
# switches frames between them as a hardware switch would.
#
# BRIDGE (default kago0) and SUBNET (default 10.88.0.0/16) choose the
# network; the two addresses are the subnet's .200 and .201.
#   examples/two-containers-bridge.sh build/rootfs-busybox
set -eu
rootfs=${1:?usage: two-containers-bridge.sh ROOTFS}
bridge=${BRIDGE:-kago0} subnet=${SUBNET:-10.88.0.0/16}
here=$(cd "$(dirname "$0")" && pwd)
command -v unshare-run >/dev/null 2>&1 || PATH="$here/../bin:$PATH"
net=${subnet%/*} net=${net%.*} prefix=${subnet#*/}
a=$net.200 b=$net.201
out=$(mktemp -d "${TMPDIR:-/tmp}/kago-two.XXXXXX")
pids=''
cleanup() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# container NAME ADDRESS PEER: wait until PEER answers (up to 10 s), ping
# it twice, and stay up 2 s more so that the peer can finish too.
container() {
    net-setup --veth --bridge "$bridge" --subnet "$subnet" --address "$2/$prefix" -- \
        unshare-run --pid --mount --uts --ipc --hostname "$1" -- \
        mount-layers --layer "$rootfs" --tmp-upper --proc --dev --pivot -- \
        cap-drop --drop all --keep net_raw --seccomp default -- \
        sh -c 'i=0; until ping -c 1 -W 1 "$1" >/dev/null 2>&1; do
                   i=$((i + 1)); [ $i -lt 50 ] || exit 1; sleep 0.2; done
               echo "$(hostname) ($2) pings $1:"; ping -c 2 "$1"; sleep 2' sh "$3" "$2" \
        >"$out/$1" 2>&1
}
container box-a "$a" "$b" & pids="$pids $!"
container box-b "$b" "$a" & pids="$pids $!"
status=0
for p in $pids; do wait "$p" || status=1; done
pids=''
cat "$out/box-a" "$out/box-b"
exit $status
