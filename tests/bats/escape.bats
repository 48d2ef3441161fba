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

# --- host binaries, the init, joins (items 4, 5 and 6) ------------------------

# --- the terminal (item 7) ------------------------------------------------------

# --- packed files (items 8 and 9, and the attacks above against a packed file) --

# --- what the payload sees: mountinfo, cmdline, environment --------------------
