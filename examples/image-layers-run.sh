#!/bin/sh
# image-layers-run.sh ROOTFS: a root filesystem made into a two-layer image,
# the second layer deleting a file of the first, then run by the chain from
# the store. Shows the store (an OCI layout), the whiteout that hides the
# lower file, and the container that no longer sees it.
set -eu
rootfs=${1:?usage: image-layers-run.sh ROOTFS}
[ "$(id -u)" = 0 ] || { echo "image-layers-run.sh: run as root" >&2; exit 1; }
work=$(mktemp -d /tmp/image-layers-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
store=$work/store

echo "== 1. the root filesystem becomes image base (one layer)"
image-layers --store "$store" --import "$rootfs" base

echo "== 2. a container deletes /etc/group; its upper directory becomes a second layer"
mkdir "$work/up"
image-layers --store "$store" base -- unshare-run --pid --mount -- \
    mount-layers --upper "$work/up" --pivot -- rm /etc/group
image-layers --store "$store" --commit "$work/up" base base:2
image-layers --store "$store" --list

echo "== 3. the store is an OCI image layout; the second layer holds a whiteout"
ls "$store" "$store/layers"
for l in "$store"/layers/*; do
    [ -e "$l/etc/group" ] && ls -l "$l/etc/group"
done

echo "== 4. base:2 runs without /etc/group; base still has it"
image-layers --store "$store" base:2 -- unshare-run --pid --mount -- \
    mount-layers --tmp-upper --proc --pivot -- cap-drop -- \
    /bin/sh -c 'ls /etc/group 2>&1 || true'
image-layers --store "$store" base -- unshare-run --pid --mount -- \
    mount-layers --tmp-upper --proc --pivot -- cap-drop -- ls /etc/group
