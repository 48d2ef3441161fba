#!/bin/sh
# make-debian-rootfs.sh DIR: a Debian 12 minbase rootfs from debootstrap,
# built once and cached (the tests keep it under /var/cache/kago-tests).
set -eu
dir=$1
[ -e "$dir/.done" ] && exit 0
command -v debootstrap >/dev/null || { echo "make-debian-rootfs: debootstrap missing (make deps)" >&2; exit 1; }
mirror=${KAGO_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
: "${mirror:=http://deb.debian.org/debian}"
mkdir -p "$(dirname "$dir")"
lock="$dir.lock"
exec 9>"$lock"
flock 9
[ -e "$dir/.done" ] && exit 0
rm -rf "$dir.tmp"
debootstrap --variant=minbase bookworm "$dir.tmp" "$mirror" >"$dir.log" 2>&1 || {
    echo "make-debian-rootfs: debootstrap failed; see $dir.log" >&2; exit 1; }
touch "$dir.tmp/.done"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
