#!/usr/bin/env bats
# Containment, tried as an attacker would. Each test performs one escape or
# host access from inside a kago container and checks that it fails; each
# was seen to succeed on the code before its fix.
#
# The stand-in host disk is a loop device holding a known secret. The
# overwrite attacks run private copies of the binaries ($PRIV), never the
# build's own.
#
# The default chain is
#   unshare-run --pid --mount --uts --ipc --net -- \
#     mount-layers --layer ROOTFS --tmp-upper --proc --dev --sys --pivot -- \
#     cap-drop --seccomp default -- CMD
# and, rootless, the same with unshare-run --map-root, as user 65534.
load helpers
bats_require_minimum_version 1.5.0

setup_file() {
    kago_setup_file
    export SECRET="kago-escape-secret-$$-$RANDOM"
    export DISK="$BATS_FILE_TMPDIR/disk.img"
    head -c 1048576 /dev/zero >"$DISK"
    printf '%s' "$SECRET" | dd of="$DISK" conv=notrunc status=none
    LOOP=$(losetup --find --show "$DISK") || LOOP=
    export LOOP
    if [ -n "$LOOP" ]; then
        LOOP_MAJOR=$((0x$(stat -c %t "$LOOP"))) LOOP_MINOR=$((0x$(stat -c %T "$LOOP")))
        export LOOP_MAJOR LOOP_MINOR
    fi
    # Private copies of the programs, for the attacks that overwrite them;
    # readable and writable by 65534 for the rootless ones.
    export PRIV="$BATS_FILE_TMPDIR/priv"
    mkdir -p "$PRIV"
    cp "$KAGO_BIN"/* "$PRIV/"
    chmod 0755 "$BATS_FILE_TMPDIR" "$PRIV"
    # A rootfs copy that 65534 may read, with the test programs in it.
    export EROOT="$BATS_FILE_TMPDIR/root"
    cp -a "$KAGO_ROOTFS" "$EROOT"
    chmod 0755 "$EROOT"
}

teardown_file() {
    [ -n "${LOOP:-}" ] && losetup -d "$LOOP"
    kago_teardown_file
}

need_loop() { [ -n "${LOOP:-}" ] || skip "no loop device could be set up here (losetup --find failed)"; }

# default_chain CMD...: run CMD (through /bin/sh -c in the container when
# it is one word) in the default chain, as root. BIN overrides the
# directory the programs come from.
default_chain() {
    local bin=${BIN:-$KAGO_BIN}
    "$bin/unshare-run" --pid --mount --uts --ipc --net -- \
        "$bin/mount-layers" --layer "$EROOT" --tmp-upper --proc --dev --sys --pivot -- \
        "$bin/cap-drop" --seccomp default -- "$@"
}

# rootless_chain CMD...: the same chain, as user 65534 with a user
# namespace that maps it to root.
rootless_chain() {
    local bin=${BIN:-$KAGO_BIN}
    as_nobody "$bin/unshare-run" --map-root --pid --mount --uts --ipc --net -- \
        "$bin/mount-layers" --layer "$EROOT" --tmp-upper --proc --dev --sys --pivot -- \
        "$bin/cap-drop" --seccomp default -- "$@"
}

# --- capabilities (items 1 and 2) -------------------------------------------

# --- devices (item 3) ---------------------------------------------------------

# The default chain, with a --tmpfs on /run as well, root or rootless
# (DEV_ROOTLESS=1); ROOT and UPPER override the layer and the upper option.
dev_chain() {
    local bin=${BIN:-$KAGO_BIN} pre=()
    [ "${DEV_ROOTLESS:-}" = 1 ] && pre=(as_nobody) && let_nobody_in "${ROOT:-$EROOT}"
    "${pre[@]}" "$bin/unshare-run" ${DEV_ROOTLESS:+--map-root} --pid --mount --uts --ipc --net -- \
        "$bin/mount-layers" --layer "${ROOT:-$EROOT}" ${UPPER---tmp-upper} --proc --dev --sys \
        --tmpfs /run --pivot -- \
        "$bin/cap-drop" --seccomp default -- "$@"
}

# bats makes its run directory 0700: let 65534 reach a root below it.
let_nobody_in() {
    local d=$1
    while d=$(dirname "$d") && [ "$d" != / ] && [ "$d" != /tmp ]; do chmod o+x "$d"; done
}

# In each directory of the container: mknod a node for the loop device
# (the host disk) and read it; LEAK:DIR when the secret came out.
mknod_attack() {
    local dirs=$1
    dev_chain sh -c "for d in $dirs; do
        mknod \$d/kx b $LOOP_MAJOR $LOOP_MINOR 2>/dev/null || echo NOMKNOD:\$d
        dd if=\$d/kx bs=512 count=1 2>/dev/null | grep -q '$SECRET' && echo LEAK:\$d
        rm -f \$d/kx
    done; echo done"
}

@test "devices: a block node made with mknod in /dev /tmp /dev/shm / and a --tmpfs /run does not open (root)" {
    need_loop
    run mknod_attack "/dev /tmp /dev/shm / /run"
    assert_success
    assert_line done
    refute_output --partial LEAK
    refute_output --partial "$SECRET"
}

@test "devices: a block node made with mknod does not open (rootless)" {
    need_loop
    require_userns
    DEV_ROOTLESS=1 run mknod_attack "/dev /tmp /dev/shm / /run"
    assert_success
    assert_line done
    refute_output --partial LEAK
    refute_output --partial "$SECRET"
}

# A layer that carries a block node for the host disk, readable by all.
devnode_root() {
    local r=$BATS_TEST_TMPDIR/droot
    cp -a "$EROOT" "$r"
    mknod "$r/kx" b "$LOOP_MAJOR" "$LOOP_MINOR"
    chmod 0666 "$r/kx"
    chmod 0755 "$BATS_TEST_TMPDIR"
    echo "$r"
}

@test "devices: a block node inside a layer does not open, with an upper or without (root and rootless)" {
    need_loop
    local r
    r=$(devnode_root)
    for rootless in 0 1; do
        [ $rootless = 1 ] && ! as_nobody unshare --user --map-root-user true 2>/dev/null && continue
        for upper in --tmp-upper --read-only; do
            DEV_ROOTLESS=$rootless ROOT=$r UPPER=$upper run dev_chain sh -c 'dd if=/kx bs=512 count=1 2>/dev/null | tr -d "\0"; echo; echo done'
            assert_line done
            refute_output --partial "$SECRET"
        done
    done
}

@test "devices: a --bind is nodev unless it says :dev" {
    need_loop
    local d=$BATS_TEST_TMPDIR/bound
    mkdir -p "$d" && mknod "$d/kx" b "$LOOP_MAJOR" "$LOOP_MINOR"
    local read='dd if=/mnt/kx bs=512 count=1 2>/dev/null | tr -d "\0"; echo; echo done'
    run "$KAGO_BIN/unshare-run" --pid --mount -- "$KAGO_BIN/mount-layers" --layer "$EROOT" --tmp-upper \
        --bind "$d:/mnt" --pivot -- sh -c "$read"
    assert_line done
    refute_output --partial "$SECRET"
    run "$KAGO_BIN/unshare-run" --pid --mount -- "$KAGO_BIN/mount-layers" --layer "$EROOT" --tmp-upper \
        --bind "$d:/mnt:ro,dev" --pivot -- sh -c "$read"
    assert_line done
    assert_output --partial "$SECRET"
}

@test "devices: the minimal /dev works: null zero full random urandom tty ptmx" {
    run default_chain sh -c 'echo x >/dev/null && head -c 4 /dev/zero | od -An -tx1 && head -c 4 /dev/urandom >/dev/null &&
        head -c 4 /dev/random >/dev/null && ! echo x 2>/dev/null >/dev/full && test -c /dev/tty && test -c /dev/pts/ptmx && echo devok'
    assert_success
    assert_line --partial "00 00 00 00"
    assert_line devok
}

@test "devices: every writable mount is nodev" {
    run default_chain sh -c 'cat /proc/self/mountinfo'
    assert_success
    # Writable mounts (field 6 starts with rw) other than the bound device
    # nodes and devpts must carry nodev.
    run awk '{ for (i = 7; $i != "-"; i++); t = $(i + 1) }
        $6 ~ /^rw/ && $6 !~ /nodev/ && t != "devpts" && t != "devtmpfs" { print "NOT NODEV:", $0 }' <<<"$output"
    assert_output ""
}

# --- host binaries, the init, joins (items 4, 5 and 6) ------------------------

# --- the terminal (item 7) ------------------------------------------------------

# --- packed files (items 8 and 9, and the attacks above against a packed file) --

# --- what the payload sees: mountinfo, cmdline, environment --------------------

# mountinfo: no host path of a layer, an upper or the state directory.
refute_host_paths() {
    refute_output --partial "$EROOT"
    refute_output --partial "bats-run"
    refute_output --partial "/kago"
}

@test "mountinfo: the default chain shows no layer path and no state directory (root)" {
    run default_chain cat /proc/self/mountinfo
    assert_success
    assert_output --partial " / / "
    refute_host_paths
}

@test "mountinfo: the default chain shows no layer path and no state directory (rootless)" {
    require_userns
    let_nobody_in "$EROOT"
    run rootless_chain cat /proc/self/mountinfo
    assert_success
    assert_output --partial " / / "
    refute_host_paths
}

@test "mountinfo: two layers and an --upper DIR show no host path either" {
    local app=$BATS_TEST_TMPDIR/app up=$BATS_TEST_TMPDIR/box/upper
    mkdir -p "$app" "$BATS_TEST_TMPDIR/box" && echo app >"$app/app.txt"
    run "$KAGO_BIN/unshare-run" --pid --mount -- "$KAGO_BIN/mount-layers" --layer "$EROOT" --layer "$app" \
        --upper "$up" --proc --dev --pivot -- sh -c 'cat /app.txt; echo x >/new.txt; cat /proc/self/mountinfo'
    assert_success
    assert_line app
    refute_host_paths
    [ -e "$up/new.txt" ]
}
