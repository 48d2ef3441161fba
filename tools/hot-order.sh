#!/bin/sh
# tools/hot-order.sh [ROOTFS]: write mk/kago.order, the functions of the
# multi-call binary that a chain runs, for lld's --symbol-ordering-file
# (the Makefile). Linked together they take a few 64 KiB fault-around
# windows instead of most of the binary's text: every page a process
# touches costs a fault or a page-table fill, paid again at each start
# and in each forked child (DESIGN.md, "One binary, and the in-process hand-off").
#
# The functions are sampled by perf (valgrind lacks the new mount API's
# system calls) over many runs of bench/start.sh's chain, with and
# without --seccomp default, and of the same chain started from an image
# (image-layers' chain form); the init's and the engine's objects are
# added whole. Functions that no sample hits land in the cold text: a
# missing name costs a page fault, never a failure. Run as root after
# `make`; it keeps the names already in mk/kago.order. Commit the result.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/bin
rootfs=${1:-$top/build/rootfs-busybox}
runs=${RUNS:-400}
out=$(mktemp -d /tmp/kago-hot.XXXXXX)
trap 'rm -rf "$out"' EXIT
chain="$bin/unshare-run --pid --mount --uts --ipc --net -- $bin/mount-layers --layer $rootfs --tmp-upper --proc --dev --pivot -- $bin/cap-drop --drop all"
# A chain started from an image too (image-layers' chain form), from a
# store made here of the same root.
"$bin/image-layers" --store "$out/store" --import "$rootfs" hot >/dev/null
ichain="$bin/image-layers --store $out/store hot -- $bin/unshare-run --pid --mount --uts --ipc --net -- $bin/mount-layers --tmp-upper --proc --dev --pivot -- $bin/cap-drop --drop all"
cat >"$out/loop.sh" <<LOOP
i=0
while [ \$i -lt $runs ]; do
    $chain -- /bin/true; $chain --seccomp default -- /bin/true; $ichain -- /bin/true; i=\$((i + 1))
done
LOOP
# A tmpfs on /run/kago in a mount namespace of its own, as in bench/lib.sh.
unshare --mount --propagation private sh -c "mount -t tmpfs -o mode=0700 tmpfs /run/kago &&
    perf record -q -e cpu-clock -F 25000 -o $out/perf.data -- sh $out/loop.sh" >/dev/null 2>&1
{
    perf script -i "$out/perf.data" -F ip,sym,dso --no-demangle 2>/dev/null |
        awk '$NF ~ /\/(unshare-run|mount-layers|cap-drop|cg-limit|image-layers|kago)\)?$/ {print $2}' | sed 's/+0x[0-9a-f]*$//'
    for o in core/child ns/child core/proc core/handoff; do
        nm --defined-only "$top/build/lib/$o.o" | awk '$2 ~ /^[tTwW]$/ {print $3}'
    done
    [ -f "$top/mk/kago.order" ] && cat "$top/mk/kago.order"
} | grep -v -e '^$' -e '^\[unknown\]' | LC_ALL=C sort -u >"$out/order"
mv "$out/order" "$top/mk/kago.order"
echo "tools/hot-order.sh: $(wc -l <"$top/mk/kago.order") functions in mk/kago.order"
