#!/bin/bash
# kernel.sh CACHE: makes sure CACHE holds a Debian 12 kernel ready to boot
# under qemu, and prints its directory. That directory holds:
#   vmlinux    the uncompressed ELF kernel (qemu boots it with PVH, about
#              twice as fast as the bzImage); vmlinuz when it cannot be had
#   root/      the unpacked package, with modules.dep made by depmod
#   release    the kernel release, e.g. 6.1.0-56-amd64
#
# The package is the newest linux-image-6.1.0-N-amd64 that apt knows
# (KAGO_VM_KERNEL=PACKAGE picks another). It is fetched with
# `apt-get download` and unpacked with `dpkg-deb -x`: nothing is installed
# on the host. When apt cannot give it, the last kernel prepared is used.
#
# Exit status: 0, or 77 when no kernel can be had (the caller skips).
set -euo pipefail
cache=$1
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9

log() { echo "kernel.sh: $*" >&2; }

# Fallback: the last kernel prepared, if any.
fallback() {
    if [ -e "$cache/current/.done" ]; then
        log "$1; using the cached $(cat "$cache/current/release")"
        readlink -f "$cache/current"
        exit 0
    fi
    log "$1"
    exit 77
}

pkg=${KAGO_VM_KERNEL:-}
if [ -z "$pkg" ]; then
    pkg=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
        grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -V | tail -1) || true
    [ -n "$pkg" ] || fallback "apt knows no linux-image-6.1.0-N-amd64 package (apt-get update?)"
fi
dir="$cache/$pkg"
if [ -e "$dir/.done" ]; then
    ln -sfn "$pkg" "$cache/current"
    echo "$dir"
    exit 0
fi

tmp="$dir.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/dl"
# apt-get download drops privileges to _apt, which must be able to write here.
chown _apt "$tmp/dl" 2>/dev/null || true
log "downloading $pkg"
if ! (cd "$tmp/dl" && apt-get download -q "$pkg" >&2); then
    rm -rf "$tmp"
    fallback "apt-get download $pkg failed"
fi
deb=$(echo "$tmp"/dl/*.deb)
dpkg-deb -x "$deb" "$tmp/root"
rm -rf "$tmp/dl"

release=$(ls "$tmp/root/lib/modules")
echo "$release" >"$tmp/release"
depmod -b "$tmp/root" "$release"

# The bzImage carries the kernel as one xz stream: find its magic bytes
# (FD 37 7A 58 5A 00) and decompress from there. --single-stream ignores
# what follows the stream.
vmlinuz="$tmp/root/boot/vmlinuz-$release"
# (Process substitutions, not pipes: xz stops reading early, and pipefail
# would count the writer's SIGPIPE as a failure.)
off=$(LC_ALL=C grep -m1 -obUaP '\xFD7zXZ\x00' "$vmlinuz" | cut -d: -f1) || true
if [ -n "$off" ] &&
    xz -dcq --single-stream <(tail -c +$((off + 1)) "$vmlinuz") >"$tmp/vmlinux" 2>/dev/null &&
    [ "$(head -c 4 "$tmp/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
    :
else
    log "no xz-compressed ELF kernel in $vmlinuz; booting the bzImage (slower)"
    rm -f "$tmp/vmlinux"
fi
touch "$tmp/.done"
rm -rf "$dir"
mv "$tmp" "$dir"
ln -sfn "$pkg" "$cache/current"
# Older kernels are not needed any more.
for old in "$cache"/linux-image-*; do
    [ "$old" = "$dir" ] || rm -rf "$old"
done
echo "$dir"
