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

# Item 9: a root with a block node for the stand-in disk (mode 0666) and a
# setuid-root program, extracted by root with --kago-extract; then 65534
# tries the node and the program.
pk_special_root() {
    need_loop
    local r="$BATS_FILE_TMPDIR/special-root" prog
    prog=$(test_prog caps_try)
    [ -x "$prog" ] || skip "$prog is not built"
    rm -rf "$r"
    mkdir -p "$r/dev"
    mknod -m 0666 "$r/dev/disk" b "$LOOP_MAJOR" "$LOOP_MINOR"
    install -o 0 -g 0 -m 04755 "$prog" "$r/suid"
    "$KAGO_BIN/pack-selfexec" -o "$1" --rootfs "$r" -- /suid whoami
}

@test "packed file: --kago-extract as root restores no device node and no setuid bit; 65534 gets neither the disk nor uid 0" {
    local f="$BATS_FILE_TMPDIR/special.run" x="$BATS_FILE_TMPDIR/special-x"
    pk_special_root "$f"
    run "$f" --kago-extract "$x"
    assert_success
    assert_output --partial "skipped 1 device node"
    [ "$(stat -c %a "$x")" = 700 ] || fail "DIR is mode $(stat -c %a "$x")"
    [ ! -e "$x/dev/disk" ] || fail "the block node was restored: $(ls -l "$x/dev/disk")"
    [ "$(stat -c %a "$x/suid")" = 755 ]
    # Even were DIR opened to others, nothing in it leads anywhere.
    pk_nobody_can_enter
    chmod 0755 "$x"
    run as_nobody cat "$x/dev/disk"
    refute_output --partial "$SECRET"
    run as_nobody "$x/suid" whoami
    assert_success
    refute_output --partial "euid=0"
}

@test "packed file: --kago-extract DIR is 0700, so 65534 reaches nothing in it" {
    local f="$BATS_FILE_TMPDIR/special.run" x="$BATS_FILE_TMPDIR/special-y"
    pk_special_root "$f"
    run "$f" --kago-extract "$x" --kago-keep-devices-setuid
    assert_success
    refute_output --partial "skipped"
    [ "$(stat -c %a "$x")" = 700 ]
    # Asked for: the node and the bit are there, behind DIR's 0700.
    [ -b "$x/dev/disk" ]
    [ "$(stat -c %a "$x/suid")" = 4755 ]
    pk_nobody_can_enter
    run as_nobody cat "$x/dev/disk"
    assert_failure
    refute_output --partial "$SECRET"
    run as_nobody "$x/suid" whoami
    assert_failure
    refute_output --partial "euid=0"
}

# The attacks of the other sections, from inside a packed file.
#
# pk_file NAME: $BATS_FILE_TMPDIR/pk-NAME.run, a packed copy of $EROOT with
# the test programs in /progs, whose command runs its arguments; made once.
pk_file() {
    local f="$BATS_FILE_TMPDIR/pk-$1.run" r="$BATS_FILE_TMPDIR/pk-root" p
    if [ ! -e "$f" ]; then
        if [ ! -d "$r" ]; then
            cp -a "$EROOT" "$r"
            mkdir -p "$r/progs"
            for p in caps_try pack_tiocsti; do
                [ -x "$(test_prog $p)" ] || skip "$(test_prog $p) is not built"
                cp "$(test_prog $p)" "$r/progs/"
            done
        fi
        "$KAGO_BIN/pack-selfexec" -o "$f" --rootfs "$r" -- /bin/sh -c 'exec "$@"' sh >&2
    fi
    echo "$f"
}

# pk_as_root FILE ARG... and pk_as_nobody FILE ARG...: run a packed file,
# with a cache directory of the runner's own.
pk_as_root() {
    local f=$1
    shift
    "$f" --kago-cache "$BATS_FILE_TMPDIR/pk-cache-root" "$@"
}
pk_nobody_cache() {
    local c="$BATS_FILE_TMPDIR/pk-cache-nobody"
    pk_nobody_can_enter
    [ -d "$c" ] || install -d -o 65534 -g 65534 -m 0700 "$c"
    echo "$c"
}
pk_as_nobody() {
    local f=$1 c
    shift
    c=$(pk_nobody_cache)
    as_nobody "$f" --kago-cache "$c" "$@"
}

@test "packed file: the command has Docker's capabilities, without sys_admin and sys_ptrace (root and 65534)" {
    local f eff who
    f=$(pk_file caps)
    for who in root nobody; do
        [ "$who" = root ] || require_userns
        run "pk_as_$who" "$f" grep CapEff /proc/self/status
        assert_success
        eff=$((0x${output##*[[:space:]]}))
        (( !((eff >> 21) & 1) )) || fail "$who: CAP_SYS_ADMIN in $output"
        (( !((eff >> 19) & 1) )) || fail "$who: CAP_SYS_PTRACE in $output"
        [ "$eff" -eq $((0xa80425fb)) ] || fail "$who: not Docker's set: $output"
    done
}

@test "packed file: mknod of the disk's block node reads nothing, in /dev, /dev/shm, / and /tmp (root and 65534)" {
    need_loop
    local f who
    f=$(pk_file mknod)
    local script="for d in /dev /dev/shm / /tmp; do
        mknod \$d/disk b $LOOP_MAJOR $LOOP_MINOR && head -c ${#SECRET} \$d/disk; echo \" [\$d]\"
    done"
    for who in root nobody; do
        [ "$who" = root ] || require_userns
        run "pk_as_$who" "$f" sh -c "$script"
        refute_output --partial "$SECRET"
    done
}

@test "packed file: the runner's init has no exe, cwd or descriptor the container can use; it holds no host file (root and 65534)" {
    local f who before
    f=$(pk_file init)
    # The file belongs to the user who runs it, as in a rootless install.
    cp "$f" "$BATS_FILE_TMPDIR/init-nobody.run"
    chown 65534:65534 "$BATS_FILE_TMPDIR/init-nobody.run"
    local script='cat /proc/1/exe >/dev/null && echo EXE-READ
        echo x >>/proc/1/exe && echo EXE-WRITTEN
        ls /proc/1/cwd/ >/dev/null && echo CWD-LISTED
        for fd in /proc/1/fd/*; do readlink "$fd" && echo FD-READ; cat "$fd" </dev/null >/dev/null 2>&1 && echo FD-OPENED; done
        true'
    for who in root nobody; do
        [ "$who" = root ] || require_userns
        local g=$f
        [ "$who" = root ] || g="$BATS_FILE_TMPDIR/init-nobody.run"
        before=$(sha256sum <"$g")
        run "pk_as_$who" "$g" sh -c "$script"
        assert_success
        refute_output --partial "EXE-"
        refute_output --partial "CWD-"
        refute_output --partial "FD-"
        [ "$(sha256sum <"$g")" = "$before" ] || fail "$who: the packed file changed"
    done
    # From the host: the init (the runner's child) holds neither the packed
    # file nor the cache directory, and its cwd is the container's.
    local cache="$BATS_FILE_TMPDIR/pk-cache-root" runner init i
    "$f" --kago-cache "$cache" sleep 5 &
    runner=$!
    for i in $(seq 50); do
        init=$(pgrep -P "$runner" | head -1)
        [ -n "$init" ] && [ "$(readlink "/proc/$init/cwd")" = / ] && break
        sleep 0.1
    done
    [ -n "$init" ] || fail "no init under the runner $runner"
    run ls -l "/proc/$init/fd/"
    kill "$runner" 2>/dev/null
    wait "$runner" || true
    refute_output --partial "$f"
    refute_output --partial "$cache"
}

@test "packed file: TIOCSTI into the caller's terminal is refused (root and 65534)" {
    command -v script >/dev/null || skip "script(1) is not installed: no terminal to test with"
    local f c
    f=$(pk_file tty)
    c=$(pk_nobody_cache)
    # In a terminal of its own (script), the container pushes a line; the
    # caller's shell then reads what the terminal holds. script's input
    # stays open meanwhile: at its end, script would end the terminal's.
    cat >"$BATS_FILE_TMPDIR/tty.sh" <<'EOF'
"$@" /progs/pack_tiocsti pwned-line
read -r -t 1 line
echo "host read: [$line]"
EOF
    run bash -c "sleep 3 | script -qec 'bash $BATS_FILE_TMPDIR/tty.sh $f --kago-cache $BATS_FILE_TMPDIR/pk-cache-root' /dev/null"
    assert_output --partial "tiocsti: E"
    refute_output --partial "host read: [pwned-line]"
    require_userns
    run bash -c "sleep 3 | script -qec 'setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH=$PATH \
        bash $BATS_FILE_TMPDIR/tty.sh $f --kago-cache $c' /dev/null"
    assert_output --partial "tiocsti: E"
    refute_output --partial "host read: [pwned-line]"
}

# --- what the payload sees: mountinfo, cmdline, environment --------------------
