#!/bin/bash
# bench/pack.sh [ROOTFS]: pack-selfexec against the tools people use
# instead, on the same root, in one run: mksquashfs -comp zstd (+ mount and
# squashfuse), makeself with zstd, tar | zstd -3/-19 --long.
#
# ROOTFS defaults to the Debian minbase root the tests build
# (/var/cache/kago-tests/debian-bookworm). Run as root (mksquashfs reads
# every file; the squashfs mount needs root); the rootless runs use nobody.
# Set BENCH_SLOW=1 to include tar | zstd -19 --long (about a minute), and
# BENCH_BEST=0 to leave out pack-selfexec --best. KAGO_FLOOR (make
# build/bench/floor) adds the floor's warm row: bench/floor.c --rootless,
# the same kernel work in one small static process.
# Prints one table in Markdown.
set -u
rootfs=${1:-/var/cache/kago-tests/debian-bookworm}
PATH=${KAGO_BIN:-$(cd "$(dirname "$0")/.." && pwd)/bin}:$PATH
work=$(mktemp -d /tmp/kago-bench-pack.XXXXXX)
shm=$(mktemp -d /dev/shm/kago-bench-pack.XXXXXX)
chmod 755 "$work" "$shm"
chown 65534 "$shm"  # the rootless runs keep their cache there
mnt=""
cleanup() {
    [ -n "$mnt" ] && { umount "$mnt" 2>/dev/null || fusermount -u "$mnt" 2>/dev/null; }
    rm -rf "$work" "$shm"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.3f'; }
mb() { echo "$(stat -c %s "$1") / 1000000" | bc -l | xargs printf '%.1f MB'; }
# Median of N runs of a command, in milliseconds.
median_ms() {
    local n=$1; shift
    local i t0 t1 ts=()
    for ((i = 0; i < n; i++)); do
        t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
        ts+=("$(echo "($t1 - $t0) * 1000" | bc -l)")
    done
    printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END{printf "%.1f ms", a[int((NR+1)/2)]}'
}
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3"; }
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$shm" "$@"; }

entries=$(find "$rootfs" | wc -l)
size=$(du -sb "$rootfs" | awk '{printf "%.0f MB", $1/1000000}')
echo "# pack-selfexec bench: $(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1 /proc/loadavg)"
echo "rootfs: $rootfs ($size, $entries entries)"
echo
echo "| tool | build | size / time |"
echo "|---|---|---|"

t0=$(now); pack-selfexec -o "$work/default.run" --rootfs "$rootfs" -- /bin/true; t1=$(now)
row "pack-selfexec (zstd 3 --long)" "$(secs "$t0" "$t1") s" "$(mb "$work/default.run")"
if [ "${BENCH_BEST:-1}" = 1 ]; then
    t0=$(now); pack-selfexec -o "$work/best.run" --best --rootfs "$rootfs" -- /bin/true; t1=$(now)
    row "pack-selfexec --best (zstd 19 --long)" "$(secs "$t0" "$t1") s" "$(mb "$work/best.run")"
fi
chown 65534 "$work/default.run"
cp "$work/default.run" "$shm/default.run"; chown 65534 "$shm/default.run"

# Cold first run, rootless, cache on tmpfs: extraction + verification + start.
t0=$(now); nobody "$shm/default.run" --kago-cache "$shm/cache" /bin/true; t1=$(now)
row "pack-selfexec cold run (rootless, cache on tmpfs)" "" "$(secs "$t0" "$t1") s"
row "pack-selfexec --kago-verify (all frames)" "" "$(median_ms 3 "$work/default.run" --kago-verify)"
key=$("$work/default.run" --kago-info | sed -n 's/^root hash: *//p')
tree="$shm/cache/$key/root"
# Warm runs: hyperfine itself runs as nobody, so that no setpriv or env is
# timed. The kago chain builds the same container as the packed file: user,
# pid, mount, uts, ipc and net namespaces, an overlay with a tmpfs upper on
# the cached tree, /proc, /dev, and the default seccomp profile.
warm=(-n "pack-selfexec warm run" "$shm/default.run --kago-cache $shm/cache /bin/true"
      -n "unshare -Ur chroot DIR /bin/true" "unshare -Ur chroot $tree /bin/true")
if [ -n "${KAGO_FLOOR:-}" ] && [ -x "$KAGO_FLOOR" ]; then
    # nobody runs it: a copy where nobody may read it.
    cp "$KAGO_FLOOR" "$shm/floor"; chmod 755 "$shm/floor"
    warm+=(-n "floor --rootless (bench/floor.c)" "$shm/floor --rootless $tree /bin/true")
fi
if command -v unshare-run >/dev/null && command -v mount-layers >/dev/null && command -v cap-drop >/dev/null; then
    warm+=(-n "kago chain on the same tree" "$(command -v unshare-run) --user --map-root --pid --mount --uts --ipc --net -- $(command -v mount-layers) --layer $tree --tmp-upper --proc --dev --pivot -- $(command -v cap-drop) --seccomp default -- /bin/true")
fi
# This VM's speed drifts by 20-30% within minutes, and hyperfine runs its
# commands one after the other: WARM_REPEAT (3) hyperfine runs, the order of
# the commands reversed every other time; each run's medians, and the
# median of them.
n_warm=$(( ${#warm[@]} / 3 ))
rev=()
for ((i = n_warm - 1; i >= 0; i--)); do rev+=("${warm[@]:$((i * 3)):3}"); done
ok=0
for ((r = 1; r <= ${WARM_REPEAT:-3}; r++)); do
    if (( r % 2 )); then order=("${warm[@]}"); else order=("${rev[@]}"); fi
    nobody hyperfine -N --style none --warmup 20 --runs "${WARM_RUNS:-200}" --export-json "$shm/warm$r.json" "${order[@]}" >/dev/null 2>&1 && ok=$((ok + 1))
done
if [ "$ok" -gt 0 ]; then
    for name in "pack-selfexec warm run" "kago chain on the same tree" "unshare -Ur chroot DIR /bin/true" "floor --rootless (bench/floor.c)"; do
        vals=$(for f in "$shm"/warm*.json; do jq -r --arg n "$name" '.results[] | select(.command == $n) | .median * 1000' "$f"; done)
        [ -n "$vals" ] || continue
        med=$(echo "$vals" | sort -n | awk '{a[NR]=$1} END{printf "%.2f", a[int((NR+1)/2)]}')
        runs=$(echo "$vals" | xargs printf '%.2f, ' | sed 's/, $//')
        row "$name (rootless, median of $ok hyperfine medians: $runs)" "" "$med ms"
        eval "med_$(echo "$name" | tr -c 'a-z' '_')=$med"
    done
    p=${med_pack_selfexec_warm_run_:-}; c=${med_kago_chain_on_the_same_tree_:-}
    [ -n "$p" ] && [ -n "$c" ] && row "pack-selfexec warm run / kago chain: $(echo "$p / $c" | bc -l | xargs printf '%.2f')x" "" ""
    f=${med_floor___rootless__bench_floor_c__:-}
    [ -n "$p" ] && [ -n "$f" ] && row "pack-selfexec warm run / floor --rootless: $(echo "$p / $f" | bc -l | xargs printf '%.2f')x" "" ""
else
    row "warm runs" "" "hyperfine as nobody failed"
fi

if command -v mksquashfs >/dev/null; then
    t0=$(now); mksquashfs "$rootfs" "$work/root.sqfs" -comp zstd -Xcompression-level 15 -quiet -no-progress >/dev/null 2>&1; t1=$(now)
    row "mksquashfs -comp zstd (level 15)" "$(secs "$t0" "$t1") s" "$(mb "$work/root.sqfs")"
    mnt="$work/mnt"; mkdir -p "$mnt"
    t0=$(now); mount -t squashfs -o loop,ro "$work/root.sqfs" "$mnt"; chroot "$mnt" /bin/true; t1=$(now)
    row "squashfs mount + first exec (root)" "" "$(secs "$t0" "$t1") s"
    umount "$mnt"
    if command -v squashfuse >/dev/null; then
        t0=$(now); squashfuse "$work/root.sqfs" "$mnt" && chroot "$mnt" /bin/true; t1=$(now)
        row "squashfuse mount + first exec" "" "$(secs "$t0" "$t1") s"
        fusermount -u "$mnt" 2>/dev/null || umount "$mnt"
    fi
    mnt=""
    t0=$(now); unsquashfs -q -n -d "$shm/unsq" "$work/root.sqfs" >/dev/null 2>&1; t1=$(now)
    row "unsquashfs to tmpfs" "" "$(secs "$t0" "$t1") s"
    rm -rf "$shm/unsq"
fi

t0=$(now); tar -C "$rootfs" -cf - . | zstd -q -3 --long -T0 -o "$work/root.tar.zst"; t1=$(now)
row "tar \\| zstd -3 --long" "$(secs "$t0" "$t1") s" "$(mb "$work/root.tar.zst")"
mkdir -p "$shm/untar"
t0=$(now); zstd -q -d --long=31 -c "$work/root.tar.zst" | tar -C "$shm/untar" -xf - 2>/dev/null; t1=$(now)
row "zstd -d \\| tar -x to tmpfs" "" "$(secs "$t0" "$t1") s"
rm -rf "$shm/untar"
if [ "${BENCH_SLOW:-0}" = 1 ]; then
    t0=$(now); tar -C "$rootfs" -cf - . | zstd -q -19 --long -T0 -o "$work/root19.tar.zst"; t1=$(now)
    row "tar \\| zstd -19 --long" "$(secs "$t0" "$t1") s" "$(mb "$work/root19.tar.zst")"
fi

if command -v makeself >/dev/null; then
    t0=$(now); makeself --zstd --quiet "$rootfs" "$work/root.makeself" root true >/dev/null 2>&1; t1=$(now)
    if [ -e "$work/root.makeself" ]; then
        row "makeself --zstd" "$(secs "$t0" "$t1") s" "$(mb "$work/root.makeself")"
        t0=$(now); "$work/root.makeself" --quiet --noexec --target "$shm/ms" >/dev/null 2>&1; t1=$(now)
        row "makeself extract (every run) to tmpfs" "" "$(secs "$t0" "$t1") s"
        rm -rf "$shm/ms"
    fi
fi
