#!/bin/sh
# user-rootfs.sh DIR [TAR]: unpack a root file system as an ordinary user,
# owned by your own ids, so that a rootless container can change it.
# user-rootfs.sh --remove DIR: remove such a tree again.
#
# A tree made by root (debootstrap) belongs to the host's uid 0, which a
# user namespace of yours does not map: overlayfs cannot copy its files up
# (EOVERFLOW), so apt, dpkg and useradd fail ("cannot lock /etc/passwd").
# Unpacked inside `unshare-run --user --map-auto`, the files belong to your
# uid (root inside) and to your /etc/subuid range (the other users inside).
# TAR (default: standard input) is a tar of the tree, for example made by
# root once:
#   sudo tar -C /var/cache/kago-tests/debian-bookworm -c . | examples/user-rootfs.sh ~/debian
#   examples/debian-rootless.sh ~/debian
# Device nodes are left out (mount-layers --dev provides /dev). Files of such
# a tree that belong to your subordinate ids cannot be removed by you
# directly: use --remove, which does it in the same kind of namespace.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command -v unshare-run >/dev/null 2>&1 || PATH="$here/../bin:$PATH"
if [ "${1:-}" = --remove ]; then
    [ $# -eq 2 ] || { echo "usage: user-rootfs.sh --remove DIR" >&2; exit 125; }
    exec unshare-run --user --map-auto -- rm -rf -- "$2"
fi
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: user-rootfs.sh DIR [TAR]" >&2; exit 125; }
dir=$1
src=${2:--}
mkdir -p -- "$dir"
exec unshare-run --user --map-auto -- \
    tar -C "$dir" -x -p --numeric-owner --exclude='./dev/*' -f "$src"
