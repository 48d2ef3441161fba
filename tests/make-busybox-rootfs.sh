#!/bin/sh
# make-busybox-rootfs.sh DIR: a minimal root filesystem from Debian's
# busybox-static: /bin/busybox with its applet links, /etc/passwd and
# /etc/group, and the empty directories a container mounts over.
set -eu
dir=$1
[ -e "$dir/.done" ] && exit 0
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-busybox-rootfs: $bb missing: install busybox-static (make deps)" >&2; exit 1; }
tmp="$dir.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/sbin" "$tmp/usr/bin" "$tmp/usr/sbin" "$tmp/etc" "$tmp/proc" \
    "$tmp/sys" "$tmp/dev" "$tmp/tmp" "$tmp/root" "$tmp/home" "$tmp/var/www" "$tmp/run"
chmod 1777 "$tmp/tmp"
cp "$bb" "$tmp/bin/busybox"
for applet in $("$bb" --list-full); do
    [ "$applet" = bin/busybox ] && continue
    ln -sf /bin/busybox "$tmp/$applet"
done
cat >"$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
P
cat >"$tmp/etc/group" <<'G'
root:x:0:
users:x:100:user
nogroup:x:65534:
user:x:1000:
G
echo "busybox" >"$tmp/etc/hostname"
echo "kago busybox rootfs" >"$tmp/etc/motd"
echo '<h1>hello from kago</h1>' >"$tmp/var/www/index.html"
touch "$tmp/.done"
rm -rf "$dir"
mv "$tmp" "$dir"
