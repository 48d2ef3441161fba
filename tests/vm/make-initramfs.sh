#!/bin/bash
# make-initramfs.sh KERNELDIR OUT.cpio: the guest's initramfs, an
# uncompressed newc cpio (it loads faster than a compressed one) holding
#   /init             tests/vm/init
#   /bin/busybox      Debian's busybox-static, with its applet links
#   /lib/modules/*.ko the modules needed before the root is mounted, and
#                     /modules, the order to insmod them in
#   /dev/console      for init's stdio
#
# The modules are KAGO_VM_MODULES (default below) with everything they
# depend on, ordered from modules.dep; .ko.xz and .ko.zst are decompressed
# here. For Debian's 6.1 kernel that gives: virtio_ring virtio
# virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache
# 9pnet 9pnet_virtio 9p virtio_blk overlay veth.
set -euo pipefail
kdir=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
release=$(cat "$kdir/release")
mods="$kdir/root/lib/modules/$release"
want=${KAGO_VM_MODULES:-virtio_pci 9pnet_virtio 9p virtio_blk overlay veth}
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-initramfs.sh: $bb missing: install busybox-static (make deps)" >&2; exit 1; }

stage=$(mktemp -d "$out.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$bb" "$stage/bin/busybox"
for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$stage/bin/$applet"
done
install -m 0755 "$here/init" "$stage/init"
mknod -m 0600 "$stage/dev/console" c 5 1

# Depth-first over modules.dep: each module after what it needs. A line
# lists every dependency, the first one to be loaded last.
awk -v want="$want" '
    function base(p) { sub(/.*\//, "", p); sub(/\.ko(\.[a-z]+)?$/, "", p); gsub(/-/, "_", p); return p }
    function visit(n,    d, k, i) {
        if (n in seen) return
        seen[n] = 1
        if (!(n in file)) { print "make-initramfs.sh: no module " n > "/dev/stderr"; bad = 1; return }
        k = split(deps[n], d, " ")
        for (i = k; i >= 1; i--) visit(base(d[i]))
        print file[n]
    }
    { f = $1; sub(/:$/, "", f); n = base(f); file[n] = f; $1 = ""; deps[n] = $0 }
    END { k = split(want, w, " "); for (i = 1; i <= k; i++) visit(w[i]); exit bad }
' "$mods/modules.dep" >"$stage/modules.paths"

while read -r path; do
    name=$(basename "$path")
    case "$name" in
    *.ko.xz) xz -dc "$mods/$path" >"$stage/lib/modules/${name%.xz}" ;;
    *.ko.zst) zstd -qdc "$mods/$path" >"$stage/lib/modules/${name%.zst}" ;;
    *.ko.gz) gzip -dc "$mods/$path" >"$stage/lib/modules/${name%.gz}" ;;
    *) cp "$mods/$path" "$stage/lib/modules/$name" ;;
    esac
    name=${name%.xz} name=${name%.zst} name=${name%.gz}
    echo "${name%.ko}"
done <"$stage/modules.paths" >"$stage/modules"
rm "$stage/modules.paths"

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$out.tmp"
mv "$out.tmp" "$out"
