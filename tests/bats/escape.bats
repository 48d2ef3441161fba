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

# pk_signed FILE [COMMAND...]: pack $EROOT into FILE, signed with a key made
# once per file run ($PK_KEY.key, $PK_KEY.pub); COMMAND defaults to /bin/sh.
pk_signed() {
    local f=$1
    shift
    export PK_KEY="$BATS_FILE_TMPDIR/pk"
    [ -e "$PK_KEY.pub" ] || "$KAGO_BIN/pack-selfexec" --keygen "$PK_KEY"
    "$KAGO_BIN/pack-selfexec" -o "$f" --sign "$PK_KEY.key" --rootfs "$EROOT" -- "${@:-/bin/sh}"
}

# The stub's size, which is where a packed file's first frame starts.
pk_stub_size() {
    local stub="$KAGO_BUILD/pack/kago-stub"
    [ -f "$stub" ] || skip "the runner is not built ($stub is missing)"
    stat -c %s "$stub"
}

# Let 65534 reach $BATS_FILE_TMPDIR: bats makes its run directory 0700.
pk_nobody_can_enter() { chmod o+x "$BATS_RUN_TMPDIR"; }

# pk_patch FILE OFFSET STRING: overwrite FILE's bytes at OFFSET.
pk_patch() { printf '%s' "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# The attacks of item 8 change the program that runs and keep every frame,
# the manifest and the trailer: the signature must cover the stub, and only
# a check from outside the file counts.
@test "packed file: a stub with one byte changed fails pack-selfexec --verify (root and 65534)" {
    local f="$BATS_FILE_TMPDIR/flip.run"
    pk_signed "$f"
    run "$KAGO_BIN/pack-selfexec" --verify "$f" --pubkey "$PK_KEY.pub"
    assert_success
    # One byte of the runner's help text: the stub still runs.
    local off
    off=$(grep -boa 'Runner options' "$f" | head -1 | cut -d: -f1)
    [ -n "$off" ]
    [ "$off" -lt "$(pk_stub_size)" ]
    pk_patch "$f" "$off" X
    run "$f" --kago-help
    assert_output --partial "Xunner options"
    run "$KAGO_BIN/pack-selfexec" --verify "$f" --pubkey "$PK_KEY.pub"
    assert_failure 1
    assert_output --partial "stub"
    pk_nobody_can_enter
    run as_nobody "$KAGO_BIN/pack-selfexec" --verify "$f" --pubkey "$(cat "$PK_KEY.pub")"
    assert_failure 1
    assert_output --partial "stub"
    # Without a trusted key, too.
    run "$KAGO_BIN/pack-selfexec" --verify "$f"
    assert_failure 1
}

@test "packed file: a stub with its default capabilities patched fails pack-selfexec --verify" {
    local f="$BATS_FILE_TMPDIR/caps.run"
    pk_signed "$f"
    local off
    off=$(grep -boa 'setpcap,net_bind_service,net_raw' "$f" | head -1 | cut -d: -f1)
    [ -n "$off" ] || fail "the runner's default capability list is not in the file"
    # The file has run once: its root is in the cache, and a warm run
    # checks no more than the trailer and the frame table.
    run "$f" --kago-cache "$BATS_FILE_TMPDIR/caps-cache" -c true
    assert_success
    # net_bind_service -> sys_admin,syslog: same length.
    pk_patch "$f" $((off + 8)) 'sys_admin,syslog'
    # The patched runner does give the command CAP_SYS_ADMIN (bit 21): a
    # tampered runner runs whatever it likes, whatever it checks ...
    run "$f" --kago-cache "$BATS_FILE_TMPDIR/caps-cache" -c 'grep CapEff /proc/self/status'
    assert_success
    local eff=${output##*:}
    (( (0x${eff//[[:space:]]/} >> 21) & 1 )) || fail "the patch did not take: $output"
    # ... and the check from outside refuses the file.
    run "$KAGO_BIN/pack-selfexec" --verify "$f" --pubkey "$PK_KEY.pub"
    assert_failure 1
    assert_output --partial "stub"
}

@test "packed file: a stub replaced by a shell script answers its own --kago-verify, and fails pack-selfexec --verify" {
    local f="$BATS_FILE_TMPDIR/script.run" size
    pk_signed "$f"
    size=$(pk_stub_size)
    local script="#!/bin/sh
echo \"\$(id -u): OK (signed)\"
exit 0
"
    { printf '%s' "$script"; head -c $((size - ${#script})) /dev/zero | tr '\0' '#'; } >"$BATS_FILE_TMPDIR/stub.sh"
    [ "$(stat -c %s "$BATS_FILE_TMPDIR/stub.sh")" -eq "$size" ]
    dd if="$BATS_FILE_TMPDIR/stub.sh" of="$f" conv=notrunc status=none
    # The file vouches for itself: that proves nothing.
    run "$f" --kago-verify "$PK_KEY.pub"
    assert_success
    assert_output --partial "OK (signed)"
    run "$KAGO_BIN/pack-selfexec" --verify "$f" --pubkey "$PK_KEY.pub"
    assert_failure 1
    assert_output --partial "stub"
}

# --- what the payload sees: mountinfo, cmdline, environment --------------------
