#!/bin/bash
# bench/image.sh [ROOTFS]: importing an image, against the tools people use
# instead, in one run (hyperfine, medians):
#   image-layers --import          the store: blobs kept, layers unpacked
#   podman load                    (its own --root in a temporary directory)
#   skopeo copy + umoci unpack     to an OCI layout, then a bundle
#   tar -x of each layer           the floor: unpacking alone, nothing kept
# for two forms of the same two-layer image: a docker-archive (uncompressed,
# as podman save writes it) and an OCI layout with gzip layers (as skopeo
# copy writes it). Then what a chain started from the store costs over the
# same chain given --layer directories, and the peak RSS of an import.
# Then pulling the gzip form from a registry on loopback (Debian's
# docker-registry, started by tests/bats/registry.bash):
#   image-layers --pull, podman pull, skopeo copy + umoci unpack, and
#   curl, tar -xz of each layer blob (the naive floor);
# and packing the image (pack-selfexec --image, from the store) against
# packing the same tree unpacked (pack-selfexec --rootfs).
#
# ROOTFS defaults to the Debian minbase root the tests build
# (/var/cache/kago-tests/debian-bookworm): layer 1; layer 2 deletes a file,
# hides a directory (opaque) and adds one. Run as root. RUNS=5 by default.
# ROUNDS=11: the alternating rounds of the import and pack ratios.
# ONLY=import, chain, pull or pack runs that part alone (the image is made
# anyway). BEFORE=PATH (another build's image-layers) adds a pull row for
# it, to compare a change before and after in the same noise; PERF=1 adds
# each pull's task-clock (perf stat, RUNS runs).
# Prints Markdown tables; leaves nothing behind (podman's storage is private).
# Where it runs: on ext4 without a journal (this VM's root), every inode
# allocation skips the inodes freed in the last 60 s (6 min while their
# inode table block is dirty), one buffer lookup each (recently_deleted() in
# fs/ext4/ialloc.c). Each run's --prepare frees ~7,000, so a run right after
# another pays for them, and more the faster the runs come: most of an
# import's time was that scan (1.35 s here against 0.45 s on a journaled
# ext4, for the gzip import). No host that keeps container images has that
# file system, so when the work directory would be on one, the benchmark
# makes a journaled ext4 in a sparse 8 GB loop file for the run and works
# there (it says so); BENCH_FS=here keeps the work in /var/tmp as it is.
set -euo pipefail
rootfs=${1:-/var/cache/kago-tests/debian-bookworm}
RUNS=${RUNS:-5}
ONLY=${ONLY:-}
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
top=$(cd "$(dirname "$0")/.." && pwd)
PATH=${KAGO_BIN:-$top/bin}:$PATH
for tool in hyperfine jq skopeo umoci podman tar python3 openssl; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not installed (make deps)" >&2; exit 1; }
done
[ -d "$rootfs/etc" ] || { echo "bench: $rootfs is not a root filesystem (make check builds the Debian one)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run it as root" >&2; exit 1; }

# Lower case: podman names an image pulled from oci:DIR after DIR.
work=/var/tmp/kago-bench-image.$$
mkdir -m 700 "$work"
loop_img="" registry_up=""
cleanup() {
    [ -n "$registry_up" ] && registry_stop_all
    podman --root "$work/podman" --runroot "$work/podrun" --storage-driver overlay rmi -a -f >/dev/null 2>&1 || true
    if [ -n "$loop_img" ]; then
        umount "$work" 2>/dev/null || umount -l "$work"
        rm -f "$loop_img"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
# ext4 without a journal: /proc/fs/jbd2 lists no journal for its device.
no_journal_ext4() {
    local src
    [ "$(findmnt -n -o FSTYPE --target "$1")" = ext4 ] || return 1
    src=$(findmnt -n -o SOURCE --target "$1")
    ! compgen -G "/proc/fs/jbd2/${src##*/}-*" >/dev/null
}
if [ "${BENCH_FS:-}" != here ] && no_journal_ext4 "$work"; then
    loop_img=$work.img
    truncate -s 8G "$loop_img"
    # Inode tables and journal made now: else ext4lazyinit writes them in
    # the background for minutes, during the runs.
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$loop_img"
    mount -o loop "$loop_img" "$work"
    chmod 700 "$work"
    echo "bench: /var/tmp is ext4 without a journal; working on a journaled ext4 in $loop_img (BENCH_FS=here: not)"
    echo
fi

# The image: the rootfs, then a layer made by --commit from an upper
# directory (a whiteout, an opaque directory, a new file).
src=$work/src
image-layers --store "$src" --import "$rootfs" base >/dev/null
up=$work/upper
mkdir -p "$up/etc" "$up/usr/share/doc"
mknod "$up/etc/motd" c 0 0
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")' "$up/usr/share/doc"
echo hello >"$up/usr/share/doc/README"
image-layers --store "$src" --commit "$up" base bench:1 >/dev/null
skopeo copy -q "oci:$src:bench:1" "docker-archive:$work/image.tar:bench:1"
skopeo copy -q --dest-compress-format gzip "oci:$src:bench:1" "oci:$work/gz:bench:1"
# What the set-up wrote goes to disk now, not during the first runs.
sync

ms() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median * 1000' "$1"; }
table() {  # JSON FLOOR-NAME KAGO-NAME NAMES...
    local j=$1 floor=$2 kago=$3
    shift 3
    local f k
    f=$(ms "$j" "$floor")
    k=$(ms "$j" "$kago")
    echo "| tool | median | kago / tool |"
    echo "|---|---|---|"
    for n in "$@"; do
        local t
        t=$(ms "$j" "$n")
        printf '| %s | %.0f ms | %.2f |\n' "$n" "$t" "$(echo "$k / $t" | bc -l)"
    done
    printf '\n%s: %.2f× the floor (%s)\n\n' "$kago" "$(echo "$k / $f" | bc -l)" "$floor"
}

pod="podman --root $work/podman --runroot $work/podrun --storage-driver overlay"
# Each run starts with nothing of the last one's in the page cache waiting
# to be written, and with its input read: this VM's kdamond pages out
# what was not read for a minute or so, and the first command of a batch
# would read its input from the disk.
clean="rm -rf $work/s $work/o $work/u $work/x; $pod rmi -a -f >/dev/null 2>&1 || true; sync; cat $work/image.tar $work/dl/*.tar $work/gz/blobs/sha256/* >/dev/null"

# The docker-archive's layers, for the floor: their names in manifest.json.
mkdir "$work/dl"
tar -C "$work/dl" -xf "$work/image.tar"
dlayers=$(jq -r '.[0].Layers[]' "$work/dl/manifest.json")
untar_docker="mkdir $work/x"
for l in $dlayers; do untar_docker+=" && tar -C $work/x -xf $work/dl/$l"; done
# The floor of an import that checks each layer's digest: tar -x of each
# layer with openssl's SHA-256 of it beside, on the other core.
check_docker="mkdir $work/x"
for l in $dlayers; do check_docker+=" && { tar -C $work/x -xf $work/dl/$l & openssl dgst -sha256 $work/dl/$l >/dev/null; wait; }"; done
glayers=$(jq -r '.manifests[0].digest' "$work/gz/index.json" | sed 's/sha256://')
glayers=$(jq -r '.layers[].digest' "$work/gz/blobs/sha256/$glayers" | sed 's/sha256://')
untar_gz="mkdir $work/x"
for l in $glayers; do untar_gz+=" && tar -C $work/x -xzf $work/gz/blobs/sha256/$l"; done

# Each command of an import batch starts with a run that is not counted
# (--warmup 1): without it, the import, the first command after the
# set-up, measured 1.46x tar -x in two runs of three, against 1.11x to
# 1.18x in the others and in alternating rounds.
if want import; then
echo "## import: docker-archive ($(du -m "$work/image.tar" | cut -f1) MB, uncompressed), $RUNS runs"
echo
hyperfine --style none --warmup 1 --runs "$RUNS" --prepare "$clean" --export-json "$work/d.json" \
    -n "image-layers --import" "image-layers --store $work/s --import docker-archive:$work/image.tar x" \
    -n "podman load" "$pod load -q -i $work/image.tar" \
    -n "skopeo copy + umoci unpack" "skopeo copy -q docker-archive:$work/image.tar oci:$work/o:x && umoci unpack --image $work/o:x $work/u" \
    -n "tar -x of the layers" "$untar_docker" \
    -n "tar -x and sha256 of the layers" "$check_docker" >/dev/null
table "$work/d.json" "tar -x of the layers" "image-layers --import" \
    "podman load" "skopeo copy + umoci unpack" "tar -x of the layers" "tar -x and sha256 of the layers"
printf 'image-layers --import: %.2f× the floor of a checked import (tar -x and sha256 of the layers)\n\n' \
    "$(echo "$(ms "$work/d.json" "image-layers --import") / $(ms "$work/d.json" "tar -x and sha256 of the layers")" | bc -l)"
# The ratio again, each import right beside a tar -x (bench/lib.sh): the
# medians above come from batches run seconds apart.
tmp=$work
. "$top/bench/lib.sh"
echo "image-layers --import / tar -x of the layers, alternating: $(bench_ratio "${ROUNDS:-11}" \
    "image-layers --store $work/s --import docker-archive:$work/image.tar x" "$untar_docker" "$clean") (target: at most 1.2)"
echo

echo "## import: OCI layout, gzip layers ($(du -sm "$work/gz" | cut -f1) MB), $RUNS runs"
echo
hyperfine --style none --warmup 1 --runs "$RUNS" --prepare "$clean" --export-json "$work/g.json" \
    -n "image-layers --import" "image-layers --store $work/s --import oci:$work/gz:bench:1 x" \
    -n "podman pull oci:" "$pod pull -q oci:$work/gz:bench:1" \
    -n "skopeo copy + umoci unpack" "skopeo copy -q oci:$work/gz:bench:1 oci:$work/o:x && umoci unpack --image $work/o:x $work/u" \
    -n "tar -xz of the layers" "$untar_gz" >/dev/null
table "$work/g.json" "tar -xz of the layers" "image-layers --import" \
    "podman pull oci:" "skopeo copy + umoci unpack" "tar -xz of the layers"

# Peak RSS of an import (the larger form).
rm -rf "$work/s"
rss=$( { /usr/bin/time -f %M image-layers --store "$work/s" --import "docker-archive:$work/image.tar" x >/dev/null; } 2>&1 | tail -1)
echo "peak RSS of image-layers --import (docker-archive): $((rss / 1024)) MiB"
echo
fi

# A chain from the store, against the same chain given the layer directories.
# (The dry run's trace shows the layer directories it hands down.)
if want chain; then
rm -rf "$work/s"
image-layers --store "$work/s" --import "docker-archive:$work/image.tar" x >/dev/null
dirs=$(image-layers --store "$work/s" --dry-run x -- true 2>&1 | sed -n 's/.*setenv("KAGO_IMAGE_LAYERS", "\(.*\)")/\1/p' | tr ':' ' ')
[ -n "$dirs" ] || { echo "bench: no layer directories from image-layers --dry-run" >&2; exit 1; }
layer_args=""
for d in $dirs; do layer_args+=" --layer $d"; done
chain="unshare-run --pid --mount --uts --ipc --net -- mount-layers --tmp-upper --proc --dev --pivot -- /bin/true"
hyperfine -N --style none --warmup 10 --runs 200 --export-json "$work/c.json" \
    -n "from the store" "image-layers --store $work/s x -- $chain" \
    -n "given --layer" "${chain/mount-layers/mount-layers$layer_args}" >/dev/null
s=$(ms "$work/c.json" "from the store")
l=$(ms "$work/c.json" "given --layer")
printf '## chain start\n\n| chain | median |\n|---|---|\n| from the store | %.2f ms |\n| given --layer | %.2f ms |\n\n' "$s" "$l"
# The difference, from paired rounds (bench/lib.sh): the two medians
# above, 200 runs apart, drift by more than it here.
tmp=$work
. "$top/bench/lib.sh"
echo "the store costs $(bench_paired 21 20 "image-layers --store $work/s x -- $chain" "${chain/mount-layers/mount-layers$layer_args}") (target: at most 1 ms)"
fi

# --- pulling from a registry on loopback ----------------------------------------
if want pull && [ ! -x /usr/bin/docker-registry ]; then
    echo "bench: docker-registry is not installed (make deps): no pull rows" >&2
elif want pull; then
BATS_FILE_TMPDIR=$work
. "$top/tests/bats/registry.bash"
registry_start "$work/registry"
registry_up=1
skopeo copy -q --dest-tls-verify=false "oci:$work/gz:bench:1" "docker://$REGISTRY/bench:1"
untar_pull="mkdir $work/x"
for l in $glayers; do untar_pull+=" && curl -sf http://$REGISTRY/v2/bench/blobs/sha256:$l | tar -C $work/x -xz"; done
echo "## pull: the gzip image from a registry on loopback, $RUNS runs"
echo
before=()
[ -n "${BEFORE:-}" ] && before=(-n "before: image-layers --pull" "$BEFORE --store $work/s --quiet --pull $REGISTRY/bench:1 x")
hyperfine --style none --runs "$RUNS" --prepare "$clean" --export-json "$work/p.json" \
    "${before[@]}" \
    -n "image-layers --pull" "image-layers --store $work/s --quiet --pull $REGISTRY/bench:1 x" \
    -n "podman pull" "$pod pull -q --tls-verify=false $REGISTRY/bench:1" \
    -n "skopeo copy + umoci unpack" "skopeo copy -q --src-tls-verify=false docker://$REGISTRY/bench:1 oci:$work/o:x && umoci unpack --image $work/o:x $work/u" \
    -n "curl, tar -xz of each layer" "$untar_pull" >/dev/null
table "$work/p.json" "curl, tar -xz of each layer" "image-layers --pull" \
    ${BEFORE:+"before: image-layers --pull"} \
    "podman pull" "skopeo copy + umoci unpack" "curl, tar -xz of each layer"
if [ -n "${PERF:-}" ]; then
    echo "| tool | task-clock (CPU ms, mean of $RUNS) |"
    echo "|---|---|"
    perf_row() {  # NAME COMMAND
        local tc=0 r
        for ((r = 0; r < RUNS; r++)); do
            bash -c "$clean"
            tc=$(echo "$tc + $(perf stat -x, -e task-clock -- bash -c "$2" 2>&1 >/dev/null | awk -F, '/task-clock/ {print $1}')" | bc -l)
        done
        printf '| %s | %.0f |\n' "$1" "$(echo "$tc / $RUNS" | bc -l)"
    }
    [ -n "${BEFORE:-}" ] && perf_row "before: image-layers --pull" "$BEFORE --store $work/s --quiet --pull $REGISTRY/bench:1 x"
    perf_row "image-layers --pull" "image-layers --store $work/s --quiet --pull $REGISTRY/bench:1 x"
    perf_row "podman pull" "$pod pull -q --tls-verify=false $REGISTRY/bench:1"
    perf_row "skopeo copy + umoci unpack" "skopeo copy -q --src-tls-verify=false docker://$REGISTRY/bench:1 oci:$work/o:x && umoci unpack --image $work/o:x $work/u"
    perf_row "curl, tar -xz of each layer" "$untar_pull"
    echo
fi
fi

# --- packing the image into one file ----------------------------------------------
if want pack; then
rm -rf "$work/s" "$work/o" "$work/u"
image-layers --store "$work/s" --import "oci:$work/gz:bench:1" x >/dev/null
skopeo copy -q "oci:$work/gz:bench:1" "oci:$work/o:x"
umoci unpack --image "$work/o:x" "$work/u" >/dev/null
echo "## pack-selfexec: the image, against the same tree unpacked, $RUNS runs"
echo
hyperfine --style none --runs "$RUNS" --prepare "rm -f $work/p.run" --export-json "$work/k.json" \
    -n "pack-selfexec --image" "pack-selfexec --image x --store $work/s -o $work/p.run -- /bin/true" \
    -n "pack-selfexec --rootfs" "pack-selfexec --rootfs $work/u/rootfs -o $work/p.run -- /bin/true" >/dev/null
i=$(ms "$work/k.json" "pack-selfexec --image")
r=$(ms "$work/k.json" "pack-selfexec --rootfs")
printf '| pack | median |\n|---|---|\n| --image | %.0f ms |\n| --rootfs | %.0f ms |\n\n--image: %.2f× --rootfs (target: at most 1.2×)\n' \
    "$i" "$r" "$(echo "$i / $r" | bc -l)"
tmp=$work
. "$top/bench/lib.sh"
echo "--image / --rootfs, alternating: $(bench_ratio "${ROUNDS:-11}" \
    "pack-selfexec --image x --store $work/s -o $work/p.run -- /bin/true" \
    "pack-selfexec --rootfs $work/u/rootfs -o $work/p.run -- /bin/true" "rm -f $work/p.run")"
fi
