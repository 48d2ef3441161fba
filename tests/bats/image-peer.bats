#!/usr/bin/env bats
# image-layers against a peer: the test image (tests/lib/make-oci-image.py:
# three layers with a deleted file, a deleted directory, an opaque
# directory, a hard link, a symlink, a setuid file, a file capability and a
# file owned by 1000:1000) run by `podman run` and by the kago chain shows
# the same files, with the same owners, modes, types, sizes, link counts
# and link targets. Podman runs with storage of the test's own (vfs, in a
# temporary directory), no network and no cgroup, so that it leaves nothing
# on the host.
load helpers

MKIMG="$KAGO_TOP/tests/lib/make-oci-image.py"

# Every path under the root but /proc, /sys and /dev (mounted by each
# runtime in its own way) and what podman adds to a container's root
# (/etc/hosts, /etc/hostname, /etc/resolv.conf, /etc/mtab,
# /run/.containerenv): one line each, with
# owner, mode and type, and for all but directories the size, the link
# count and the link target.
LIST='find / -xdev -mindepth 1 \( -path /proc -o -path /sys -o -path /dev \) -prune -o -print | sort |
    while read -r f; do
        case $f in /etc/hosts|/etc/hostname|/etc/resolv.conf|/etc/mtab|/run/.containerenv) continue ;; esac
        if [ -d "$f" ] && [ ! -L "$f" ]; then stat -c "%n %u:%g %a dir" "$f"
        else stat -c "%u:%g %a %F %s %h %N" "$f"; fi
    done'

setup() {
    require_progs image-layers unshare-run mount-layers cap-drop
    command -v python3 >/dev/null || skip "python3 is not installed (make deps)"
    command -v podman >/dev/null || skip "podman is not installed (make deps)"
    # podman names an image pulled from oci:PATH after PATH, which must be
    # lower case then.
    D=/tmp/kago-peer-$$
    mkdir -p "$D"
    # The one thing podman writes outside its --root: its blob-info cache
    # in /var/lib/containers/cache; removed after the test when the test
    # made it.
    [ -e /var/lib/containers ] || touch "$D/made-var-lib-containers"
    python3 "$MKIMG" "$KAGO_ROOTFS" "$D/oci" >&2
}

teardown() {
    [ -n "${D:-}" ] || return 0
    # conmon's clean-up of a --rm container runs after podman run returns.
    local i
    for i in $(seq 100); do pgrep -f "$D/podman" >/dev/null || break; sleep 0.1; done
    [ -e "$D/made-var-lib-containers" ] && rm -rf /var/lib/containers
    # vfs storage holds plain directories: nothing is mounted there.
    rm -rf "$D"
}

# podman ARGS...: podman with storage in $D, in a private mount namespace
# where /sys/fs/cgroup/unified is hidden (crun refuses a hybrid cgroup
# layout even with --cgroups disabled). podman run is given limits below
# this machine's hard limits, which it cannot raise.
podman_here() {
    unshare --mount --propagation private sh -c '
        umount /sys/fs/cgroup/unified 2>/dev/null
        exec podman --root "$0/podman/root" --runroot "$0/podman/run" --tmpdir "$0/podman/tmp" --storage-driver vfs \
            --cgroup-manager cgroupfs --events-backend none "$@"' "$D" "$@"
}

@test "the test image run by podman and by the kago chain: the same files, owners, modes, whiteouts and links" {
    local id
    id=$(podman_here pull -q oci:"$D/oci":test:1)
    run podman_here run --rm --network none --cgroups disabled --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
        --user 0 --entrypoint /bin/sh "$id" -c "$LIST"
    if [ "$status" -ne 0 ] && [[ $output == *"OCI runtime"* || $output == *"not permitted"* ]]; then
        skip "podman run does not run here: ${output##*$'\n'}"
    fi
    assert_success
    local peer=$output

    image-layers --store "$D/store" --import oci:"$D/oci":test:1 t >&2
    run image-layers --store "$D/store" t -- unshare-run --pid --mount -- \
        mount-layers --tmp-upper --proc --pivot -- cap-drop --user 0 -- /bin/sh -c "$LIST"
    assert_success
    # The image's own paths are there: what was deleted is gone, the opaque
    # directory hides the lower layer's file.
    assert_line --regexp "^0:0 644 regular file [0-9]+ 1 /data/keep$"
    assert_line --regexp "^0:0 644 regular file [0-9]+ 2 /data/hard$"
    assert_line --regexp "'/data/sym' -> 'orig'$"
    assert_line --regexp "^/opq 0:0 755 dir$"
    refute_output --partial /data/gone
    refute_output --partial /olddir
    refute_output --partial /opq/lower
    assert_line --regexp "^0:0 4755 regular file [0-9]+ 1 /data/suid$"
    assert_line --regexp "^1000:1000 "
    diff -u <(echo "$peer") <(echo "$output")
}
