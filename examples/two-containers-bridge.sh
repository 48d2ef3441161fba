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
die() { echo "two-containers-bridge.sh: $*" >&2; exit 125; }
# What it needs, checked first: a missing ping would otherwise only show
# as a peer that never answers.
[ -d "$rootfs" ] || die "$rootfs: not a directory"
for p in net-setup unshare-run mount-layers cap-drop; do
    command -v "$p" >/dev/null 2>&1 || die "the kago program $p is not on PATH, nor in $here/../bin"
done
for t in sh ping sleep hostname; do
    found=''
    for d in bin usr/bin sbin usr/sbin; do
        # a busybox root's links are absolute: test the link, not its target
        if [ -e "$rootfs/$d/$t" ] || [ -L "$rootfs/$d/$t" ]; then found=1; fi
    done
    [ -n "$found" ] || die "$rootfs has no $t (looked in /bin, /usr/bin, /sbin, /usr/sbin); the containers need sh, ping, sleep and hostname"
done
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
                   i=$((i + 1))
                   if [ $i -ge 50 ]; then
                       echo "$(hostname) ($2): no answer from $1 within 10 s; the last try:"
                       ping -c 1 -W 1 "$1"; exit 1
                   fi
                   sleep 0.2; done
               echo "$(hostname) ($2) pings $1:"; ping -c 2 "$1"; sleep 2' sh "$3" "$2" \
        >"$out/$1" 2>&1
}
container box-a "$a" "$b" & pa=$!
container box-b "$b" "$a" & pb=$!
pids="$pa $pb"
status=0 sa=0 sb=0
wait "$pa" || sa=$?
wait "$pb" || sb=$?
pids=''
cat "$out/box-a" "$out/box-b"
if [ "$sa" != 0 ]; then echo "two-containers-bridge.sh: box-a failed (exit $sa)" >&2; status=1; fi
if [ "$sb" != 0 ]; then echo "two-containers-bridge.sh: box-b failed (exit $sb)" >&2; status=1; fi
exit $status
