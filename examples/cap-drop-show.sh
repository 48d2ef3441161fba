#!/bin/sh
# cap-drop-show.sh ROOTFS: what does each cap-drop option take away? The
# same container is started four times, each time with one more step, and
# the payload reports on itself with `cap-drop --show` (cap-drop chained
# into cap-drop: the second one runs from the host's kago installation,
# with exactly the payload's privileges).
set -eu
rootfs=${1:?usage: cap-drop-show.sh ROOTFS}
[ "$(id -u)" = 0 ] || { echo "cap-drop-show.sh: run as root" >&2; exit 1; }

box() {
    unshare-run --pid --mount --uts --ipc --net --hostname kago-show -- \
        mount-layers --layer "$rootfs" --tmp-upper --proc --dev --pivot -- \
        cap-drop "$@" -- cap-drop --show
}

echo "== 1. root in new namespaces, cap-drop's defaults: Docker's capability set and no_new_privs"
box
echo
echo "== 2. --drop all: the five capability sets are empty"
box --drop all
echo
echo "== 3. --drop all --seccomp default: and a seccomp filter"
box --drop all --seccomp default
echo
echo "== 4. ... --user nobody --keep net_bind_service: an ordinary user that may bind port 80"
box --drop all --seccomp default --user nobody --keep net_bind_service
echo
echo "== the filter of step 3, rule by rule"
cap-drop --drop all --seccomp default --print-profile
