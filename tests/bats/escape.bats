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
    # bats makes its run directories 0700: let 65534 pass through them to
    # $EROOT and $PRIV for the rootless chains.
    local d=$BATS_FILE_TMPDIR
    while [ "$d" != / ]; do d=$(dirname "$d"); chmod o+x "$d"; done
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

# EROOT is root's, and --map-root does not map root: mount-layers warns
# about it (two lines on stderr), which these tests are not about. Run
# CMD... without those two lines; the rest of stderr follows stdout.
without_ownership_warning() {
    local err rc=0
    err=$(mktemp "$BATS_FILE_TMPDIR/err.XXXXXX")
    "$@" 2>"$err" || rc=$?
    grep -v -e '^mount-layers: warning: --layer .* belongs to an id this user namespace does not map' \
        -e '^mount-layers: hint: use a tree owned by your own ids' "$err" >&2 || true
    rm -f "$err"
    return $rc
}

export -f without_ownership_warning

# rootless_chain CMD...: the same chain, as user 65534 with a user
# namespace that maps it to root.
rootless_chain() {
    local bin=${BIN:-$KAGO_BIN}
    without_ownership_warning as_nobody "$bin/unshare-run" --map-root --pid --mount --uts --ipc --net -- \
        "$bin/mount-layers" --layer "$EROOT" --tmp-upper --proc --dev --sys --pivot -- \
        "$bin/cap-drop" --seccomp default -- "$@"
}

# --- capabilities (items 1 and 2) -------------------------------------------

# The test programs (tests/progs/escape_try.c, pty_run.c), escape_try in
# the container's root.
need_escape_try() {
    local p
    for p in escape_try pty_run; do
        [ -x "$(test_prog $p)" ] || skip "tests/progs/$p is not built (make bats builds it)"
    done
    cp "$(test_prog escape_try)" "$EROOT/bin/escape_try"
}

# The rootless tests run as 65534, which must reach $EROOT and the other
# files under $BATS_FILE_TMPDIR: bats makes its run directory 0700.
reach_as_nobody() { chmod o+x "$BATS_RUN_TMPDIR"; }

# caps_chain [--rootless] [--ml MOUNT-LAYERS-OPTION]... CAP-DROP-OPTION...
# -- CMD...: the default chain with other cap-drop options (give --seccomp
# too), as root or, with --rootless, as 65534 mapped to root.
caps_chain() {
    local bin=${BIN:-$KAGO_BIN} run=() map=() ml=()
    if [ "$1" = --rootless ]; then run=(without_ownership_warning as_nobody) map=(--map-root); shift; fi
    while [ "$1" = --ml ]; do ml+=("$2"); shift 2; done
    "${run[@]}" "$bin/unshare-run" "${map[@]}" --pid --mount --uts --ipc --net -- \
        "$bin/mount-layers" --layer "$EROOT" --tmp-upper --proc --dev --sys "${ml[@]}" --pivot -- \
        "$bin/cap-drop" "$@"
}

# A root file system may carry a /proc/self/status of its own: without
# --proc it is what /proc/self/status opens inside. cap-drop reads the
# bounding set from that file only when it is procfs's; a forged one that
# claims an empty set must not make it skip the drops.
@test "escape: a forged /proc/self/status in the root (no --proc) does not keep the bounding set" {
    [ -x "$(test_prog caps_try)" ] || skip "tests/progs/caps_try is not built (make bats builds it)"
    local fake=$BATS_TEST_TMPDIR/fake
    mkdir -p "$fake/proc/self" "$fake/bin"
    printf 'Name:\tcap-drop\nThreads:\t1\nSigCgt:\t0000000000000000\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\n' \
        >"$fake/proc/self/status"
    cp "$(test_prog caps_try)" "$fake/bin/caps_try"
    run "$KAGO_BIN/unshare-run" --pid --mount --uts --ipc --net -- \
        "$KAGO_BIN/mount-layers" --layer "$EROOT" --layer "$fake" --tmp-upper --dev --pivot -- \
        "$KAGO_BIN/cap-drop" --drop all -- /bin/caps_try bounding
    [ "$status" -eq 0 ]
    echo "$output"
    [ "$output" = "bounding=0x0" ]
}

# The attack of item 1.1: /sys and /proc/sys read-write again, then a
# write under /proc/sys (net.ipv4.ip_forward: the container's own network
# namespace, so the test harms nothing if the attack works).
remount_attack='mount -o remount,rw /sys 2>&1; mount -o remount,bind,rw /proc/sys 2>&1
echo 1 >/proc/sys/net/ipv4/ip_forward && echo WROTE-PROC-SYS
grep -E " /sys | /proc/sys " /proc/mounts'

@test "escape: the default chain cannot remount /sys or /proc/sys read-write, nor write /proc/sys" {
    require_static
    run default_chain sh -c "$remount_attack"
    refute_output --partial WROTE-PROC-SYS
    assert_line --regexp '^[^ ]+ /sys sysfs ro,'
    assert_line --regexp '^[^ ]+ /proc/sys proc ro,'
    refute_line --regexp ' /(proc/)?sys [a-z]+ rw,'
}

@test "escape: rootless, the default chain cannot remount /sys or /proc/sys read-write, nor write /proc/sys" {
    require_static
    require_userns
    reach_as_nobody
    run rootless_chain sh -c "$remount_attack"
    refute_output --partial WROTE-PROC-SYS
    assert_line --regexp '^[^ ]+ /sys sysfs ro,'
    assert_line --regexp '^[^ ]+ /proc/sys proc ro,'
    refute_line --regexp ' /(proc/)?sys [a-z]+ rw,'
}

# The attack of item 1.2: mount the pids hierarchy and move into its root,
# out of the cgroup that cg-limit --pids made.
# (On /home, an empty directory of the image: rootless, a new directory in
# the overlay's /tmp would fail first, for an unrelated reason.)
cgroup_attack='mount -t cgroup -o pids kago-escape /home 2>&1 &&
echo $$ >/home/cgroup.procs && echo MOVED-OUT; grep -E "^[0-9]+:pids:" /proc/self/cgroup'

@test "escape: the default chain cannot mount cgroupfs and leave its --pids cgroup" {
    require_static
    require_progs cg-limit
    [ -d /sys/fs/cgroup/pids ] || skip "no cgroup v1 pids hierarchy here (the attack mounts one)"
    KAGO_NAME=escpids run cg-limit --pids 64 -- \
        bash -c "$(declare -f default_chain); default_chain sh -c '$cgroup_attack'"
    refute_output --partial MOVED-OUT
    assert_line --regexp '^[0-9]+:pids:/.*escpids'
}

@test "escape: rootless, the default chain cannot mount cgroupfs" {
    require_static
    require_userns
    reach_as_nobody
    run rootless_chain sh -c "$cgroup_attack"
    refute_output --partial MOVED-OUT
    assert_output --partial "mount: permission denied"
}

# The "shocker" escape (item 1.3): a handle to the root directory of the
# host filesystem that holds a bind, opened through the bind, and a host
# file read under it. The handle is found on the host here; the attacker
# would guess it (an ext4 root is inode 2).
shocker_setup() {
    SHARED="$BATS_FILE_TMPDIR/shared" HOSTONLY="$BATS_FILE_TMPDIR/hostonly"
    mkdir -p "$SHARED" "$HOSTONLY"
    chmod 0755 "$SHARED" "$HOSTONLY"
    printf '%s\n' "$SECRET" >"$HOSTONLY/secret"
    chmod 0644 "$HOSTONLY/secret"
    local mnt
    mnt=$(stat -c %m "$HOSTONLY/secret")
    HANDLE=$("$(test_prog escape_try)" handle "$mnt") || skip "no file handles on $mnt: $HANDLE"
    REL=${HOSTONLY#"${mnt%/}"/}/secret
}

@test "escape: the default chain cannot open_by_handle_at a host inode through a bind (shocker)" {
    require_static
    need_escape_try
    shocker_setup
    run caps_chain --ml --bind --ml "$SHARED:/shared" --seccomp default -- \
        /bin/escape_try shocker /shared "$HANDLE" "$REL"
    refute_output --partial "$SECRET"
    assert_output --regexp '^shocker: (EPERM|EACCES|ESTALE|EOPNOTSUPP)'
}

@test "escape: rootless, the default chain cannot open_by_handle_at a host inode through a bind (shocker)" {
    require_static
    require_userns
    reach_as_nobody
    need_escape_try
    shocker_setup
    run caps_chain --rootless --ml --bind --ml "$SHARED:/shared" --seccomp default -- \
        /bin/escape_try shocker /shared "$HANDLE" "$REL"
    refute_output --partial "$SECRET"
    assert_output --regexp '^shocker: (EPERM|EACCES|ESTALE|EOPNOTSUPP)'
}

@test "escape: the default chain cannot ptrace PID 1" {
    require_static
    need_escape_try
    run default_chain /bin/escape_try ptrace-init
    assert_failure 1
    assert_output "ptrace-init: EPERM (Operation not permitted)"
}

@test "escape: rootless, the default chain cannot ptrace PID 1" {
    require_static
    require_userns
    reach_as_nobody
    need_escape_try
    run rootless_chain /bin/escape_try ptrace-init
    assert_failure 1
    assert_output "ptrace-init: EPERM (Operation not permitted)"
}

@test "escape: the default chain cannot read the host's kernel log (dmesg)" {
    require_static
    need_escape_try
    run default_chain /bin/escape_try klogctl
    assert_failure 1
    assert_output "klogctl: EPERM (Operation not permitted)"
    run default_chain dmesg
    assert_failure
    assert_output --partial "Operation not permitted"
}

@test "escape: rootless, the default chain cannot read the host's kernel log (dmesg)" {
    require_static
    require_userns
    reach_as_nobody
    need_escape_try
    run rootless_chain /bin/escape_try klogctl
    assert_failure 1
    assert_output "klogctl: EPERM (Operation not permitted)"
}

# Item 2: a switch to a non-root user keeps nothing unless --keep names it.
status_caps='id -u; grep -E "^Cap(Eff|Prm|Amb|Inh):" /proc/self/status'

@test "escape: --drop net_raw --user 65534:65534 leaves the user no capability" {
    require_static
    run caps_chain --drop net_raw --user 65534:65534 --seccomp default -- sh -c "$status_caps"
    assert_success
    assert_line --index 0 65534
    for f in CapEff CapPrm CapAmb CapInh; do
        assert_line --regexp "^$f:\s+0000000000000000$"
    done
}

@test "escape: rootless, --drop net_raw --user 65534:65534 leaves the user no capability" {
    require_static
    require_userns
    reach_as_nobody
    # --map-root maps one uid, 0: a second one, to switch to, needs a
    # subordinate range (newuidmap through unshare-run --map-auto).
    grep -qE '^(nobody|65534):' /etc/subuid 2>/dev/null ||
        skip "65534 has no /etc/subuid range here, so its container has no user to switch to"
    run as_nobody "$KAGO_BIN/unshare-run" --map-auto --pid --mount --uts --ipc --net -- \
        "$KAGO_BIN/mount-layers" --layer "$EROOT" --tmp-upper --proc --dev --sys --pivot -- \
        "$KAGO_BIN/cap-drop" --drop net_raw --user 65534:65534 --seccomp default -- sh -c "$status_caps"
    assert_success
    assert_line --index 0 65534
    for f in CapEff CapPrm CapAmb CapInh; do
        assert_line --regexp "^$f:\s+0000000000000000$"
    done
}

# pack_caps NAME PACK-OPTION... -- CMD...: a packed file of $EROOT, in
# $BATS_FILE_TMPDIR/NAME.run, its cache beside it.
pack_caps() {
    local name=$1
    shift
    "$KAGO_BIN/pack-selfexec" -o "$BATS_FILE_TMPDIR/$name.run" --rootfs "$EROOT" "$@" >/dev/null
}
run_packed() { "$BATS_FILE_TMPDIR/$1.run" --kago-cache "$BATS_FILE_TMPDIR/$1.cache"; }

@test "escape: a packed file's non-root --user holds no capability" {
    require_progs pack-selfexec
    pack_caps capsuser --user 65534:65534 -- /bin/sh -c "$status_caps"
    run run_packed capsuser
    assert_success
    assert_line --index 0 65534
    for f in CapEff CapPrm CapAmb CapInh; do
        assert_line --regexp "^$f:\s+0000000000000000$"
    done
    # --keep-caps names what it holds.
    pack_caps capsuserkeep --user 65534:65534 --keep-caps net_bind_service -- /bin/sh -c "$status_caps"
    run run_packed capsuserkeep
    assert_success
    assert_line --regexp "^CapAmb:\s+0000000000000400$"
    assert_line --regexp "^CapEff:\s+0000000000000400$"
}

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

# The attacker of item 4: tests/progs/exe_grab, in the container's root.
ns_need_grab() {
    require_static
    [ -x "$(test_prog exe_grab)" ] || skip "tests/progs/exe_grab is not built"
    cp "$(test_prog exe_grab)" "$EROOT/exe_grab"
}

# ns_wait_for FILE PATTERN: up to 10 s for a line of FILE to match PATTERN.
ns_wait_for() {
    local i
    for i in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "timed out waiting for '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

# ns_host_pid_of CMDLINE: the host pid of the process with this exact command line.
ns_host_pid_of() {
    local i p
    for i in $(seq 200); do
        p=$(pgrep -x -f "$1" | head -1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.05
    done
    return 1
}

# ns_overwrite_attack AS BIN: a container runs exe_grab as its root process;
# BIN/unshare-run (run by AS: "root" or "nobody") joins it with --join-pid
# and runs BIN's cap-drop there, held by the chain's readiness gate until
# exe_grab holds its /proc/PID/exe. Prints exe_grab's report.
ns_overwrite_attack() {
    local as=$1 bin=$2 mark="KAGO-OVERWRITTEN-$RANDOM"
    local out="$BATS_TEST_TMPDIR/grab.out" gate="$BATS_TEST_TMPDIR/gate"
    mkfifo "$gate"
    if [ "$as" = root ]; then
        default_chain /exe_grab cap-drop "$mark" >"$out" 2>&1 &
    else
        rootless_chain /exe_grab cap-drop "$mark" >"$out" 2>&1 &
    fi
    local victim=$!
    local apid
    apid=$(ns_host_pid_of "/exe_grab cap-drop $mark")
    exec 7<>"$gate"
    if [ "$as" = root ]; then
        KAGO_READY_FD=7 "$bin/unshare-run" --join-pid "$apid" -- cap-drop --drop all -- true &
    else
        as_nobody env KAGO_READY_FD=7 "$bin/unshare-run" --join-pid "$apid" -- cap-drop --drop all -- true &
    fi
    local joiner=$!
    ns_wait_for "$out" '^grabbed\|^no process'
    echo go >&7   # the joined cap-drop execs true and leaves
    wait "$joiner" || true
    exec 7>&-
    wait "$victim" || true
    cat "$out"
}

@test "item 4: a joined kago program's host file cannot be rewritten through /proc/PID/exe (root)" {
    ns_need_grab
    local mine="$BATS_FILE_TMPDIR/priv-root"   # a copy of our own: the attack may succeed
    rm -rf "$mine"
    cp -a "$PRIV" "$mine"
    local before
    before=$(sha256sum <"$mine/cap-drop")
    run ns_overwrite_attack root "$mine"
    echo "$output"
    assert_line --regexp '^grabbed [0-9]+: '
    refute_line wrote
    assert_equal "$(sha256sum <"$mine/cap-drop")" "$before"
}

@test "item 4: a joined kago program's host file cannot be rewritten through /proc/PID/exe (rootless, binaries owned by the user)" {
    require_userns
    ns_need_grab
    ns_nobody_can_reach
    local mine="$BATS_FILE_TMPDIR/priv-nobody"
    rm -rf "$mine"
    cp -a "$PRIV" "$mine"
    chown -R 65534:65534 "$mine"
    local before
    before=$(sha256sum <"$mine/cap-drop")
    run ns_overwrite_attack nobody "$mine"
    echo "$output"
    assert_line --regexp '^grabbed [0-9]+: '
    refute_line wrote
    assert_equal "$(sha256sum <"$mine/cap-drop")" "$before"
}

# ns_supervisor_attack AS BIN: cap-drop --new-session, run as a process
# group leader (setsid), forks, and its parent waits beside the payload with
# the payload's own capabilities. util-linux unshare makes the namespaces
# and execs, so that nothing else stays in between. The payload leaves
# exe_grab in the background to grab that parent's /proc/PID/exe (matched
# by its full host path, so that no other cap-drop on the host is taken)
# and to write into it once the parent is gone. Root runs without a PID
# namespace, so that exe_grab outlives the chain; rootless needs one for its
# /proc, and there the grab alone is the finding.
ns_supervisor_attack() {
    local as=$1 bin=$2 mark="KAGO-OVERWRITTEN-$RANDOM"
    # Rootless, the PID namespace ends with the chain: the payload waits
    # for exe_grab's word.
    local target=() wait=:
    [ "$as" = root ] || target=(--target "$(as_nobody mktemp -d /tmp/kago-escape.XXXXXX)") wait=wait
    local chain=(setsid -w "$bin/mount-layers" --layer "$EROOT" --tmp-upper "${target[@]}" --proc --dev --pivot -- \
        "$bin/cap-drop" --new-session --seccomp default -- \
        /bin/sh -c "/exe_grab $bin/cap-drop $mark 1500 & sleep 1; $wait")
    if [ "$as" = root ]; then
        unshare --mount -- "${chain[@]}" 2>&1
    else
        as_nobody unshare --user --map-root-user --mount --pid --fork -- "${chain[@]}" 2>&1
    fi
    # exe_grab may outlive the chain: wait for its last word.
    local i
    for i in $(seq 100); do pgrep -f "exe_grab $bin/cap-drop $mark" >/dev/null || break; sleep 0.1; done
    [ -z "${target[1]:-}" ] || rmdir "${target[1]}"
}

@test "item 4: cap-drop --new-session's waiting parent cannot be rewritten through /proc/PID/exe (root)" {
    ns_need_grab
    local mine="$BATS_FILE_TMPDIR/priv-session-root"
    rm -rf "$mine"
    cp -a "$PRIV" "$mine"
    local before
    before=$(sha256sum <"$mine/cap-drop")
    run ns_supervisor_attack root "$mine"
    echo "$output"
    assert_line "no process named $mine/cap-drop could be grabbed"
    refute_line wrote
    assert_equal "$(sha256sum <"$mine/cap-drop")" "$before"
}

@test "item 4: cap-drop --new-session's waiting parent cannot be rewritten through /proc/PID/exe (rootless)" {
    require_userns
    ns_need_grab
    ns_nobody_can_reach
    local mine="$BATS_FILE_TMPDIR/priv-session-nobody"
    rm -rf "$mine"
    cp -a "$PRIV" "$mine"
    chown -R 65534:65534 "$mine"
    local before
    before=$(sha256sum <"$mine/cap-drop")
    run ns_supervisor_attack nobody "$mine"
    echo "$output"
    assert_line "no process named $mine/cap-drop could be grabbed"
    refute_line wrote
    assert_equal "$(sha256sum <"$mine/cap-drop")" "$before"
}

# User 65534 must reach $BATS_FILE_TMPDIR (its rootfs copy, the binaries):
# bats makes the directories above it 0700.
ns_nobody_can_reach() {
    local d=$BATS_FILE_TMPDIR
    while [ "$d" != / ] && [ "$d" != /tmp ]; do
        chmod o+x "$d"
        d=$(dirname "$d")
    done
}

# A directory on the host holding the secret, for the cwd tests.
ns_host_cwd() {
    HOSTCWD="$BATS_FILE_TMPDIR/hostcwd"
    mkdir -p "$HOSTCWD"
    printf '%s\n' "$SECRET" >"$HOSTCWD/secret"
    chmod 0755 "$HOSTCWD"
    chmod 0644 "$HOSTCWD/secret"
}

# What the payload, root with every capability (no cap-drop), learns of the
# host through its PID 1.
ns_PROBE_INIT='
cat /proc/1/cwd/secret /proc/1/cwd/../hostcwd/secret /proc/1/cwd/../../../../..'"$BATS_FILE_TMPDIR"'/hostcwd/secret 2>/dev/null
echo "cwd $(stat -L -c %d:%i /proc/1/cwd) root $(stat -c %d:%i /)"
for f in /proc/1/fd/*; do echo "fd $(readlink "$f")"; done
grep -c ESCAPE_MARK /proc/1/environ
'

@test "item 5: the init's cwd, descriptors and environment lead to no host state (root, every capability)" {
    ns_host_cwd
    cd "$HOSTCWD"
    run env ESCAPE_MARK="$SECRET" "$KAGO_BIN/unshare-run" --pid --mount --uts --ipc --net -- \
        "$KAGO_BIN/mount-layers" --layer "$EROOT" --tmp-upper --proc --dev --sys --pivot -- \
        /bin/sh -c "$ns_PROBE_INIT"
    echo "$output"
    refute_output --partial "$SECRET"
    # /proc/1/cwd is the container's root
    assert_line --regexp '^cwd ([0-9:]+) root \1$'
    # no descriptor of the init names a file (only its report pipe is left)
    refute_line --regexp '^fd /'
    # the caller's environment is gone from /proc/1/environ
    assert_line 0
}

@test "item 5: the init's cwd, descriptors and environment lead to no host state (rootless)" {
    require_userns
    ns_nobody_can_reach
    ns_host_cwd
    cd "$HOSTCWD"
    run setpriv --reuid=65534 --regid=65534 --clear-groups -- \
        env -i PATH="$PATH" HOME=/tmp ESCAPE_MARK="$SECRET" \
        "$KAGO_BIN/unshare-run" --map-root --pid --mount --uts --ipc --net -- \
        "$KAGO_BIN/mount-layers" --layer "$EROOT" --tmp-upper --proc --dev --sys --pivot -- \
        /bin/sh -c "$ns_PROBE_INIT"
    echo "$output"
    refute_output --partial "$SECRET"
    # The probe ran. The rootless init is not even readable; where it is,
    # its cwd is the container's root and the caller's environment is gone.
    assert_line --regexp '^cwd [0-9:]* root [0-9]+:[0-9]+$'
    [[ $output =~ (^|$'\n')"cwd "([0-9:]+)" root "([0-9:]+)($'\n'|$) && ${BASH_REMATCH[2]} == "${BASH_REMATCH[3]}" ]] ||
        assert_output --partial "/proc/1/cwd': Permission denied"
    refute_line --regexp '^fd /'
    [[ $output == *$'\n0'* || $output == 0* ]] || assert_output --partial "/proc/1/environ: Permission denied"
}

# /proc/1/cmdline (from "what the payload sees"): the init's command line
# named the host paths of the programs and of the layers.
@test "the init's /proc/1/cmdline shows no host path (root and rootless)" {
    run default_chain /bin/sh -c 'tr "\0" " " </proc/1/cmdline; echo'
    echo "$output"
    assert_success
    # the init's command line was read: it is the chain's, shortened
    assert_output --regexp '[a-z]'
    refute_output --partial "$EROOT"
    refute_output --partial "$KAGO_BIN"
    require_userns
    ns_nobody_can_reach
    run rootless_chain /bin/sh -c 'tr "\0" " " </proc/1/cmdline; echo'
    echo "$output"
    assert_success
    assert_output --regexp '[a-z]'
    refute_output --partial "$EROOT"
    refute_output --partial "$KAGO_BIN"
}

# ns_start_container: the default chain, started from $HOSTCWD, running
# sleep; sets CPID (the init's host pid) and BG.
ns_start_container() {
    local info="$BATS_TEST_TMPDIR/info.json"
    (cd "$HOSTCWD" && exec "$KAGO_BIN/unshare-run" --info-fd 3 --pid --mount --uts --ipc --net -- \
        "$KAGO_BIN/mount-layers" --layer "$EROOT" --tmp-upper --proc --dev --sys --pivot -- \
        sleep 30 3>"$info") &
    BG=$!
    local i
    for i in $(seq 100); do [ -s "$info" ] && break; sleep 0.05; done
    CPID=$(jq -r .pid "$info")
    # and wait until the chain reached sleep
    for i in $(seq 100); do pgrep -x -P "$CPID" sleep >/dev/null && break; sleep 0.05; done
}

ns_stop_container() {
    kill "$BG" 2>/dev/null || true
    wait "$BG" 2>/dev/null || true
}

@test "item 6: --join-pid of the init starts in the container, not in the host directory it was started from" {
    ns_host_cwd
    ns_start_container
    run "$KAGO_BIN/unshare-run" --join-pid "$CPID" -- sh -c 'pwd; cat secret; cd ../../../..; cat "$0"/hostcwd/secret' "$BATS_FILE_TMPDIR"
    ns_stop_container
    echo "$output"
    refute_output --partial "$SECRET"
    assert_line --index 0 /
}

@test "item 6: --join-pid of a process whose cwd is outside the container's root starts at /" {
    ns_host_cwd
    ns_start_container
    # A process in the container's namespaces and root, but with a host cwd:
    # what a runtime that leaks a directory descriptor leaves behind.
    command -v python3 >/dev/null || { ns_stop_container; skip "python3 is not installed"; }
    python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pid, cwd = sys.argv[1], os.open(sys.argv[2], os.O_RDONLY)
root = os.open("/proc/%s/root" % pid, os.O_RDONLY)
for t in ("pid", "mnt"):
    if libc.setns(os.open("/proc/%s/ns/%s" % (pid, t), os.O_RDONLY), 0) != 0:
        sys.exit("setns %s: %s" % (t, os.strerror(ctypes.get_errno())))
os.fchdir(root); os.chroot("."); os.fchdir(cwd)
if os.fork() == 0:
    os.execv("/bin/sleep", ["sleep", "30"])
os.wait()' "$CPID" "$HOSTCWD" &
    local ns_bg=$!
    local hpid i
    for i in $(seq 100); do
        hpid=$(pgrep -x -P "$ns_bg" sleep) && break
        sleep 0.05
    done
    if [ "$(readlink "/proc/$hpid/cwd")" != "$HOSTCWD" ]; then
        kill "$ns_bg"; ns_stop_container
        skip "could not make a process with a host cwd here"
    fi
    run "$KAGO_BIN/unshare-run" --join-pid "$hpid" -- sh -c 'pwd; cat secret; cd ../../../..; cat "$0"/hostcwd/secret' "$BATS_FILE_TMPDIR"
    kill "$ns_bg" 2>/dev/null || true
    wait "$ns_bg" 2>/dev/null || true
    ns_stop_container
    echo "$output"
    refute_output --partial "$SECRET"
    assert_line --index 0 /
}

@test "item 6: inherited descriptors above 2 do not reach a joined command, but --keep-fd's do" {
    ns_host_cwd
    ns_start_container
    local sleeper
    sleeper=$(pgrep -x -P "$CPID" sleep)
    run "$KAGO_BIN/unshare-run" --join-pid "$sleeper" -- sh -c 'cat <&7' 7<"$HOSTCWD/secret"
    local without=$output
    run "$KAGO_BIN/unshare-run" --join-pid "$sleeper" --keep-fd 7 -- sh -c 'cat <&7' 7<"$HOSTCWD/secret"
    local with=$output
    ns_stop_container
    echo "without --keep-fd: $without"
    echo "with --keep-fd 7: $with"
    [[ "$without" != *"$SECRET"* ]]
    [[ "$with" == *"$SECRET"* ]]
}

# --- the terminal (item 7) ------------------------------------------------------

# in_pty SCRIPT: run the bash SCRIPT (which may call the chain functions)
# on a new terminal, as an interactive shell runs a command; pty_run then
# says what was left in the terminal's input, which the shell would run.
in_pty() {
    "$(test_prog pty_run)" bash -c "$(declare -f as_nobody default_chain rootless_chain caps_chain); $1"
}

# TIOCSTI as the kernel allows it to anyone on their own terminal
# (dev.tty.legacy_tiocsti=1; with 0 it needs CAP_SYS_ADMIN and fails with
# EIO, which would hide the filter's EPERM). Put back by tiocsti_restore.
tiocsti_legacy() {
    local f=/proc/sys/dev/tty/legacy_tiocsti
    TIOCSTI_WAS=
    [ -e "$f" ] || return 0  # a kernel before 6.2: always the legacy behaviour
    TIOCSTI_WAS=$(cat "$f")
    echo 1 >"$f" 2>/dev/null || skip "cannot set dev.tty.legacy_tiocsti=1 here"
}
tiocsti_restore() { [ -z "$TIOCSTI_WAS" ] || echo "$TIOCSTI_WAS" >/proc/sys/dev/tty/legacy_tiocsti; }

inject='/bin/escape_try tiocsti "echo PWNED"'

@test "escape: TIOCSTI from the default chain does not reach the caller's terminal" {
    require_static
    need_escape_try
    tiocsti_legacy
    # The control: without a filter the kernel lets the payload inject.
    run in_pty "caps_chain --seccomp none -- $inject"
    local control=$output
    run in_pty "default_chain $inject"
    tiocsti_restore
    [[ $control == *"injected: echo PWNED"* ]] || fail "the control did not inject: $control"
    assert_line --partial "tiocsti: EPERM (Operation not permitted)"
    assert_line "pty_run: injected: nothing"
}

@test "escape: rootless, TIOCSTI from the default chain does not reach the caller's terminal" {
    require_static
    require_userns
    reach_as_nobody
    need_escape_try
    tiocsti_legacy
    run in_pty "caps_chain --rootless --seccomp none -- $inject"
    local control=$output
    run in_pty "rootless_chain $inject"
    tiocsti_restore
    [[ $control == *"injected: echo PWNED"* ]] || fail "the control did not inject: $control"
    assert_line --partial "tiocsti: EPERM (Operation not permitted)"
    assert_line "pty_run: injected: nothing"
}

@test "escape: the default profile blocks TIOCSTI also with --keep all" {
    require_static
    need_escape_try
    tiocsti_legacy
    run in_pty "caps_chain --keep all --seccomp default -- $inject"
    tiocsti_restore
    assert_line --partial "tiocsti: EPERM (Operation not permitted)"
    assert_line "pty_run: injected: nothing"
}

@test "escape: cap-drop --new-session leaves the payload no terminal to push input into" {
    require_static
    need_escape_try
    tiocsti_legacy
    run in_pty "caps_chain --seccomp none --new-session -- sh -c 'cut -d\" \" -f7 /proc/self/stat; $inject'"
    tiocsti_restore
    assert_line --index 0 0
    assert_line --partial "tiocsti: EPERM (Operation not permitted)"
    assert_line "pty_run: injected: nothing"
}

@test "escape: TIOCSTI from a packed file does not reach the caller's terminal" {
    require_progs pack-selfexec
    need_escape_try
    pack_caps tiocsti -- /bin/escape_try tiocsti "echo PWNED"
    tiocsti_legacy
    run in_pty "$(declare -f run_packed); run_packed tiocsti"
    tiocsti_restore
    assert_line --partial "tiocsti: EPERM (Operation not permitted)"
    assert_line "pty_run: injected: nothing"
}

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
    # Docker's set, as the runner holds it: the capability numbers 0 1 3 4 5
    # 6 7 8 10 13 ..., one 32-bit integer each (lib/caps default_caps()).
    off=$(LC_ALL=C grep -obUaP '\x00\x00\x00\x00\x01\x00\x00\x00\x03\x00\x00\x00\x04\x00\x00\x00\x05\x00\x00\x00\x06\x00\x00\x00\x07\x00\x00\x00\x08\x00\x00\x00' "$f" | head -1 | cut -d: -f1)
    [ -n "$off" ] || fail "the runner's default capability list is not in the file"
    # (grep reads lines: the 10 that follows is a newline byte, checked here.)
    [ "$(od -An -tu4 -j $((off + 32)) -N 8 "$f" | tr -s ' ')" = " 10 13" ] || fail "no 10 13 after the list's start"
    # The file has run once: its root is in the cache, and a warm run
    # checks no more than the trailer and the frame table.
    run "$f" --kago-cache "$BATS_FILE_TMPDIR/caps-cache" -c true
    assert_success
    # net_bind_service (10, the ninth number) -> sys_admin (21).
    printf '\x15' | dd of="$f" bs=1 seek=$((off + 32)) conv=notrunc status=none
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
    [ -d "$x/dev" ] || fail "nothing was extracted to $x"
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
        # the script ran in each of the four places
        assert_line --partial " [/dev]"
        assert_line --partial " [/dev/shm]"
        assert_line --partial " [/]"
        assert_line --partial " [/tmp]"
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
        echo PROBE-DONE'
    for who in root nobody; do
        [ "$who" = root ] || require_userns
        local g=$f
        [ "$who" = root ] || g="$BATS_FILE_TMPDIR/init-nobody.run"
        before=$(sha256sum <"$g")
        run "pk_as_$who" "$g" sh -c "$script"
        assert_success
        assert_line PROBE-DONE
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
    assert_output --regexp ' [0-9]+ -> '  # its descriptors were listed
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

# The environment: the caller's variables (tokens, a PATH of host-only
# directories, HOME) stayed with the payload inside the container.
@test "the caller's environment does not reach the payload (root and rootless)" {
    export KAGO_ESCAPE_TOKEN=tok-$SECRET API_KEY=key-$SECRET HOME=/home/caller PATH="/opt/host-only/bin:$PATH"
    run default_chain /bin/sh -c 'env; echo "PWD=$(pwd)"'
    assert_success
    refute_output --partial "$SECRET"
    refute_output --partial /opt/host-only
    assert_line 'HOME=/root'
    assert_line 'container=kago'
    assert_line 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    refute_line --regexp '^KAGO_'
    run rootless_chain /bin/sh -c 'env'
    assert_success
    refute_output --partial "$SECRET"
    assert_line 'container=kago'
}
