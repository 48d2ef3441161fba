#!/usr/bin/env bats
# mount-layers against the real kernel. Every run happens in a private mount
# namespace (and a PID namespace), so nothing reaches the host's mount table.
load helpers
bats_require_minimum_version 1.5.0

setup_file() { kago_setup_file; }
teardown_file() { kago_teardown_file; }

setup() {
    R=$KAGO_ROOTFS
    # Not under /tmp/kago-*: leftovers.sh reads those as state directories.
    T=$(mktemp -d /tmp/mlt.XXXXXX)
    chmod 755 "$T"
    export KAGO_STATE_DIR="$T/state"
    mkdir -p "$KAGO_STATE_DIR"
}

teardown() {
    rm -rf "$T"
}

# mount-layers in a new mount and PID namespace (util-linux unshare: this
# file tests mount-layers alone; chains.bats runs it under unshare-run).
ml() { unshare --mount --pid --fork --kill-child -- mount-layers "$@"; }
# The same, rootless: as uid 65534 mapped to root in a user namespace.
ml_rootless() {
    as_nobody env KAGO_STATE_DIR="$KAGO_STATE_DIR" \
        unshare --user --map-root-user --mount --pid --fork --kill-child -- mount-layers "$@"
}
rootless_dirs() { chown -R 65534:65534 "$T"; }

# --- options and exit statuses ------------------------------------------------

@test "mount-layers --help lists the options and exits 0" {
    run mount-layers --help
    assert_success
    for o in --layer --upper --tmp-upper --target --read-only --bind --tmpfs --symlink --mkdir \
        --file --chdir --proc --dev --sys --hosts --resolv --pivot --keep-env --dry-run --verbose; do
        assert_output --partial -- "$o"
    done
}

@test "mount-layers --version exits 0" {
    run mount-layers --version
    assert_success
    assert_output --partial "mount-layers (kago)"
}

@test "exit 125: an unknown option" {
    run mount-layers --no-such-option -- true
    assert_failure 125
    assert_output --partial "Try 'mount-layers --help' for more information."
}

@test "exit 125: no --layer" {
    run ml --pivot -- /bin/true
    assert_failure 125
    assert_output --partial "no --layer given"
}

@test "exit 125: --upper and --tmp-upper together" {
    run ml --layer "$R" --upper "$T/up" --tmp-upper -- /bin/true
    assert_failure 125
    assert_output --partial "exclude each other"
}

@test "exit 125: a bad --tmp-upper size, a bad --tmpfs mode" {
    run ml --layer "$R" --tmp-upper=lots -- /bin/true
    assert_failure 125
    assert_output --partial "'lots' is not a size"
    run ml --layer "$R" --tmpfs /t:1M:888 -- /bin/true
    assert_failure 125
    assert_output --partial "not an octal mode"
}

@test "exit 125: refuses to mount in the host's mount namespace" {
    run mount-layers --layer "$R" --target "$T/root" -- /bin/true
    assert_failure 125
    assert_output --partial "refusing to mount in the host's mount namespace"
    assert_output --partial "mount-layers: hint:"
}

@test "the command's exit status is returned" {
    run ml --layer "$R" --pivot -- /bin/sh -c 'exit 7'
    assert_failure 7
}

@test "exit 127: the command is not in the new root" {
    run -127 ml --layer "$R" --pivot -- /usr/bin/no-such-command
    assert_failure 127
    assert_output --partial "mount-layers: /usr/bin/no-such-command"
}

@test "exit 126: the command is not executable" {
    run ml --layer "$R" --pivot -- /etc/passwd
    assert_failure 126
}

@test "exit 128+N: the command is killed by a signal" {
    # Not PID 1 (which ignores signals it has no handler for): no --pid here.
    run unshare --mount -- mount-layers --layer "$R" --pivot -- /bin/sh -c 'kill -TERM $$'
    assert_failure 143
}

@test "dry run: as nobody, prints the plan and the command, mounts nothing" {
    run as_nobody env KAGO_STATE_DIR=/nonexistent "$KAGO_BIN/mount-layers" --dry-run --layer "$R" \
        --tmp-upper --proc --dev --sys --bind /etc:/host-etc:ro --pivot -- /bin/true
    assert_success
    assert_output --partial 'fsopen("overlay", FSOPEN_CLOEXEC) (dry run)'
    assert_output --partial 'pivot_root(".", ".") (dry run)'
    assert_output --partial 'execve("/bin/true", ["/bin/true"], envp) (dry run)'
    [ ! -e /nonexistent ]
}

@test "dry run: without a state directory, nothing is created" {
    run as_nobody env KAGO_NAME=mldry "$KAGO_BIN/mount-layers" --dry-run --layer "$R" --pivot -- /bin/true
    assert_success
    assert_output --partial 'move_mount(fd /* '"$R"' */, "", AT_FDCWD, "/tmp/kago-65534/mldry/root", MOVE_MOUNT_F_EMPTY_PATH) (dry run)'
    [ ! -e /tmp/kago-65534/mldry ]
}

@test "-v traces every kernel call in syscall form" {
    run ml -v --layer "$R" --tmp-upper --pivot -- /bin/true
    assert_success
    assert_output --partial 'mount-layers: fsconfig('
    assert_output --partial 'open_tree(AT_FDCWD, "'"$R"'", OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC) = '
    assert_output --regexp 'FSCONFIG_SET_FD, "lowerdir\+", NULL, [0-9]+ /\* '"$R"' \*/\) = 0'
    assert_output --partial 'mount-layers: pivot_root(".", ".") = 0'
    assert_output --partial 'mount-layers: umount2(".", MNT_DETACH) = 0'
}

# --- layers and upper ---------------------------------------------------------

@test "one layer without upper: a read-only bind of the image" {
    run ml --layer "$R" --pivot -- /bin/sh -c 'cat /etc/motd; touch /x'
    assert_failure
    assert_output --partial "kago busybox rootfs"
    assert_output --partial "Read-only file system"
}

@test "--layer: the last one is on top, the first one at the bottom" {
    mkdir -p "$T/l2/etc" "$T/l3/etc"
    echo two >"$T/l2/etc/motd"
    echo three >"$T/l3/etc/motd"
    echo only-two >"$T/l2/etc/two"
    run ml --layer "$R" --layer "$T/l2" --layer "$T/l3" --pivot -- /bin/sh -c 'cat /etc/motd /etc/two'
    assert_success
    assert_output $'three\nonly-two'
}

@test "--layer: 100 layers work (the new mount API has no page limit)" {
    local args=(--layer "$R") i
    for i in $(seq 1 99); do
        mkdir -p "$T/layers/a-rather-long-directory-name-for-layer-number-$i"
        echo "$i" >"$T/layers/a-rather-long-directory-name-for-layer-number-$i/n"
        args+=(--layer "$T/layers/a-rather-long-directory-name-for-layer-number-$i")
    done
    run ml "${args[@]}" --pivot -- /bin/cat /n
    assert_success
    assert_output "99"
}

@test "exit 125: too many layers" {
    local args=() i
    for i in $(seq 1 501); do args+=(--layer "$R"); done
    run ml "${args[@]}" -- /bin/true
    assert_failure 125
    assert_output --partial "too many layers: 501 given, overlayfs stacks at most 500"
}

@test "exit 125: a layer that does not exist, or is not a directory; nothing stays mounted" {
    run unshare --mount --pid --fork -- sh -c "mount-layers --layer '$R' --layer '$T/nope' --tmp-upper --target '$T/root' -- /bin/true; echo rc=\$?; grep -c '$T' /proc/self/mountinfo"
    assert_output --partial "mount-layers: --layer $T/nope: No such file or directory"
    assert_output --partial "rc=125"
    assert_line "0"
    touch "$T/file"
    run ml --layer "$T/file" --target "$T/root" -- /bin/true
    assert_failure 125
    assert_output --partial "--layer $T/file: Not a directory"
}

@test "--tmp-upper: changes are allowed and gone at exit" {
    run ml --layer "$R" --tmp-upper --pivot -- /bin/sh -c 'echo new >/etc/motd; cat /etc/motd'
    assert_success
    assert_output "new"
    run cat "$R/etc/motd"
    assert_output "kago busybox rootfs"
    run ml --layer "$R" --tmp-upper --pivot -- /bin/cat /etc/motd
    assert_output "kago busybox rootfs"
}

@test "--tmp-upper=SIZE limits the tmpfs" {
    run ml --layer "$R" --tmp-upper=1M --dev --pivot -- /bin/sh -c 'dd if=/dev/zero of=/big bs=1k count=2048 2>&1'
    assert_failure
    assert_output --partial "No space left on device"
}

@test "--upper DIR: changes are kept in DIR, the workdir is created beside it" {
    run ml --layer "$R" --upper "$T/up" --pivot -- /bin/sh -c 'echo kept >/etc/motd; rm /etc/hostname'
    assert_success
    [ "$(cat "$T/up/etc/motd")" = kept ]
    [ -c "$T/up/etc/hostname" ]  # a whiteout
    [ -d "$T/up.work" ]
    run ml --layer "$R" --upper "$T/up" --pivot -- /bin/sh -c 'cat /etc/motd; ls /etc/hostname'
    assert_output --partial "kept"
    assert_output --partial "No such file"
    [ "$(cat "$R/etc/motd")" = "kago busybox rootfs" ]
}

@test "exit 125: --upper on overlayfs, with a hint; nothing stays mounted" {
    mkdir -p "$T/lo" "$T/u" "$T/w" "$T/ovl"
    run unshare --mount --pid --fork -- sh -c "
        mount -t overlay overlay -o lowerdir='$T/lo',upperdir='$T/u',workdir='$T/w' '$T/ovl' || exit 99
        mount-layers --layer '$R' --upper '$T/ovl/up' --target '$T/root' -- /bin/true; echo rc=\$?
        grep -c ' $T/root ' /proc/self/mountinfo"
    assert_output --partial "mount-layers: --upper $T/ovl/up: the directory is on overlayfs"
    assert_output --partial "mount-layers: hint: overlay cannot use an overlayfs directory"
    assert_output --partial "rc=125"
    assert_line "0"
}

@test "exit 125: --upper that is a mount point cannot have its workdir beside it" {
    mkdir -p "$T/mp"
    run unshare --mount --pid --fork -- sh -c "
        mount -t tmpfs tmpfs '$T/mp' || exit 99
        mount-layers --layer '$R' --upper '$T/mp' --target '$T/root' -- /bin/true"
    assert_failure 125
    assert_output --partial "is on another filesystem"
    assert_output --partial "mount-layers: hint: the upper directory is a mount point"
}

@test "--read-only: the root is read-only even with an upper" {
    run ml --layer "$R" --tmp-upper --read-only --tmpfs /tmp --pivot -- /bin/sh -c 'touch /tmp/ok && echo tmp-ok; touch /x'
    assert_failure
    assert_output --partial "tmp-ok"
    assert_output --partial "Read-only file system"
}

@test "--target: without --pivot the command runs on the host side, and the state dir records it" {
    run ml --layer "$R" --tmp-upper --target "$T/root" -- /bin/sh -c "cat '$T/root/etc/motd'; grep -c ' $T/root ' /proc/self/mountinfo"
    assert_success
    assert_line "kago busybox rootfs"
    assert_line "3"  # the layer's clone and the tmpfs upper, and the overlay above them
    [ "$(cat "$KAGO_STATE_DIR/rootfs")" = "$T/root" ]
}

@test "the default target is under the state directory" {
    run ml --layer "$R" -- /bin/sh -c 'ls "$0/root/bin/busybox"' "$KAGO_STATE_DIR"
    assert_success
}

@test "without KAGO_STATE_DIR, the state directory made for --pivot is removed" {
    run env -u KAGO_STATE_DIR KAGO_NAME=mltest-$$ unshare --mount --pid --fork -- mount-layers -v --layer "$R" --pivot -- /bin/true
    assert_success
    assert_output --partial "AT_FDCWD, \"/run/kago/mltest-$$/root\", MOVE_MOUNT_F_EMPTY_PATH) = 0"
    [ ! -e "/run/kago/mltest-$$" ]
}

# --- steps in command-line order ---------------------------------------------

@test "--bind SRC:DST and SRC:DST:ro, DST created in the upper when missing" {
    mkdir -p "$T/data"
    echo host >"$T/data/f"
    run ml --layer "$R" --tmp-upper --bind "$T/data:/mnt/rw" --bind "$T/data:/mnt/ro:ro" --pivot -- \
        /bin/sh -c 'cat /mnt/rw/f; echo w >/mnt/rw/new && echo rw-ok; echo w >/mnt/ro/x'
    assert_failure
    assert_output --partial "host"
    assert_output --partial "rw-ok"
    assert_output --partial "Read-only file system"
    [ -f "$T/data/new" ]
}

@test "--bind a single file" {
    echo "single" >"$T/one"
    run ml --layer "$R" --tmp-upper --bind "$T/one:/etc/one" --pivot -- /bin/cat /etc/one
    assert_success
    assert_output "single"
}

@test "exit 125: a missing --bind source; nothing stays mounted" {
    run unshare --mount --pid --fork -- sh -c "mount-layers --layer '$R' --tmp-upper --proc --dev --bind '$T/missing:/m' --target '$T/root' -- /bin/true; echo rc=\$?; grep -c '$T/root' /proc/self/mountinfo"
    assert_output --partial "mount-layers: --bind source $T/missing: No such file or directory"
    assert_output --partial "rc=125"
    assert_line "0"
}

@test "exit 125: a DST escaping through '..'" {
    run ml --layer "$R" --tmp-upper --bind "/etc:/../../etc" -- /bin/true
    assert_failure 125
    assert_output --partial "escapes the root through '..'"
}

@test "exit 125: a DST escaping through a symlink in the image; the host is untouched" {
    mkdir -p "$T/img" "$T/hostdir"
    ln -s ../../../../../../../../..$T/hostdir "$T/img/evil"
    run unshare --mount --pid --fork -- sh -c "mount-layers --layer '$R' --layer '$T/img' --tmp-upper --tmpfs /evil/x --target '$T/root' -- /bin/true; echo rc=\$?; grep -c '$T' /proc/self/mountinfo"
    assert_output --partial "escapes the root through the symlink /evil -> ../../"
    assert_output --partial "rc=125"
    assert_line "0"
    [ -z "$(ls -A "$T/hostdir")" ]
}

@test "an absolute symlink in the image is resolved inside the root" {
    mkdir -p "$T/img"
    ln -s "$T/hostdir" "$T/img/abs"
    mkdir -p "$T/hostdir"
    run ml --layer "$R" --layer "$T/img" --tmp-upper --proc --tmpfs /abs --pivot -- /bin/sh -c "grep -c ' $T/hostdir ' /proc/self/mountinfo"
    assert_success
    assert_output "1"
    [ -z "$(ls -A "$T/hostdir")" ]
}

@test "--tmpfs DST:SIZE:MODE" {
    run ml --layer "$R" --tmp-upper --proc --tmpfs /scratch:2M:0700 --pivot -- /bin/sh -c 'stat -c %a /scratch; df -k /scratch | tail -1'
    assert_success
    assert_line "700"
    assert_output --regexp " +2048 +0 +2048 +0% /scratch"
}

@test "--mkdir, --symlink, --file and --chdir apply in command-line order" {
    echo "copied" >"$T/src-file"
    run ml --layer "$R" --tmp-upper --mkdir /a/b:0700 --symlink /a/b:/link --file "$T/src-file:/link/f" \
        --chdir /link --pivot -- /bin/sh -c 'pwd; cat f; stat -c %a /a/b; readlink /link'
    assert_success
    assert_output $'/a/b\ncopied\n700\n/a/b'  # pwd is physical: /link -> /a/b
}

@test "order matters: a --tmpfs after a --mkdir hides it" {
    run ml --layer "$R" --tmp-upper --tmpfs /t --mkdir /t/x --pivot -- /bin/ls /t
    assert_output "x"
    run ml --layer "$R" --tmp-upper --mkdir /t/x --tmpfs /t --pivot -- /bin/ls /t
    assert_output ""
}

@test "exit 125: --mkdir in a read-only root says why" {
    run ml --layer "$R" --mkdir /newdir -- /bin/true
    assert_failure 125
    assert_output --partial "Read-only file system"
    assert_output --partial "mount-layers: hint: the root is read-only"
}

@test "exit 125: --chdir to a missing directory" {
    run ml --layer "$R" --chdir /nowhere --pivot -- /bin/true
    assert_failure 125
    assert_output --partial "--chdir"
}

# --- /proc, /dev, /sys, /etc files -------------------------------------------

@test "--proc: a new procfs, with runc's masked and read-only paths" {
    run ml --layer "$R" --proc --pivot -- /bin/sh -c '
        echo /proc/[0-9]*
        wc -c </proc/keys
        echo 1 >/proc/sys/kernel/ns_last_pid 2>&1 || true
        ls /proc/acpi 2>/dev/null | wc -l'
    assert_success
    # The shell expands the glob itself: no other process can race it.
    assert_line --index 0 "/proc/1"
    assert_line --index 1 "0"
    assert_output --partial "Read-only file system"
}

@test "--proc without a PID namespace warns" {
    run unshare --mount -- mount-layers --layer "$R" --proc --pivot -- /bin/true
    assert_success
    assert_output --partial "mount-layers: warning: --proc without a PID namespace"
    run ml --layer "$R" --proc --pivot -- /bin/echo proc-ok
    assert_success
    assert_output proc-ok
}

@test "--dev: a minimal /dev with devpts and ptmx" {
    run ml --layer "$R" --proc --dev --pivot -- /bin/sh -c '
        ls /dev | tr "\n" " "; echo
        echo x >/dev/null && echo null-ok
        head -c 4 /dev/urandom | wc -c
        grep -c " /dev/pts .* devpts " /proc/self/mountinfo'
    assert_success
    assert_line --index 0 "core fd full null ptmx pts random shm stderr stdin stdout tty urandom zero "
    assert_line "null-ok"
    assert_line "4"
    assert_line "1"
}

@test "--sys: a read-only sysfs with /sys/firmware masked" {
    run ml --layer "$R" --dev --sys --pivot -- /bin/sh -c 'ls /sys/kernel >/dev/null && echo sys-ok; ls /sys/firmware | wc -l; touch /sys/x'
    assert_failure
    assert_line "sys-ok"
    assert_line "0"
    assert_output --partial "Read-only file system"
}

@test "--hosts and --resolv bind the state dir's files without changing the image" {
    printf '127.0.0.1 localhost\n10.88.0.2 box\n' >"$KAGO_STATE_DIR/hosts"
    echo box >"$KAGO_STATE_DIR/hostname"
    echo "nameserver 10.88.0.1" >"$KAGO_STATE_DIR/resolv.conf"
    run ml --layer "$R" --tmp-upper --hosts --resolv --pivot -- /bin/sh -c 'cat /etc/hosts /etc/hostname /etc/resolv.conf'
    assert_success
    assert_output $'127.0.0.1 localhost\n10.88.0.2 box\nbox\nnameserver 10.88.0.1'
    [ "$(cat "$R/etc/hostname")" = busybox ]
    [ ! -e "$R/etc/resolv.conf" ]
}

@test "--hosts and --resolv warn when the state dir has no such files" {
    run ml --layer "$R" --hosts --resolv --pivot -- /bin/cat /etc/hostname
    assert_success
    assert_output --partial "mount-layers: warning: --hosts:"
    assert_output --partial "mount-layers: warning: --resolv:"
    assert_output --partial "busybox"
}

# --- pivot_root and what the payload can reach -------------------------------

@test "--pivot: mountinfo shows only what was asked for" {
    run ml --layer "$R" --tmp-upper --proc --dev --pivot -- /bin/sh -c "awk '{print \$5}' /proc/self/mountinfo | sort -u | tr '\n' ' '"
    assert_success
    assert_output "/ /dev /dev/full /dev/null /dev/pts /dev/random /dev/shm /dev/tty /dev/urandom /dev/zero /proc /proc/acpi /proc/bus /proc/fs /proc/interrupts /proc/irq /proc/keys /proc/sys /proc/timer_list "
}

@test "--tmpfs options: size, mode, noexec, ro; nodev unless dev; suid refused" {
    run ml --layer "$R" --tmp-upper --proc --pivot --tmpfs /run:size=64m,mode=700,noexec --tmpfs /ro:ro --tmpfs /d:dev -- \
        /bin/sh -c "awk '\$5 ~ /^\/(run|ro|d)\$/ {print \$5, \$6, \$(NF-2), \$NF}' /proc/self/mountinfo; stat -c %a /run"
    assert_success
    assert_line --regexp '^/run rw,nosuid,nodev,noexec,relatime tmpfs rw,size=65536k,mode=700$'
    assert_line --regexp '^/ro ro,nosuid,nodev,relatime tmpfs '
    assert_line --regexp '^/d rw,nosuid,relatime tmpfs '
    assert_line 700
    run ml --layer "$R" --tmpfs /x:suid -- true
    assert_failure 125
    assert_output --partial "--tmpfs '/x:suid': a --tmpfs is always nosuid"
    run ml --layer "$R" --tmpfs /x:size=64m,bogus -- true
    assert_failure 125
    assert_output --partial "unknown tmpfs option 'bogus'"
}

@test "--dev: a --tmpfs /dev/shm takes the default's place, before /sys, with source shm" {
    run ml --layer "$R" --tmp-upper --proc --dev --sys --no-cgroupfs --pivot --tmpfs /dev/shm:size=1m,mode=1777 -- \
        /bin/sh -c "awk '{print \$5, \$(NF-1), \$NF}' /proc/self/mountinfo | grep -E '^/(dev/shm|sys) '"
    assert_success
    assert_equal "${lines[0]}" "/dev/shm shm rw,size=1024k"
    assert_equal "${lines[1]}" "/sys sysfs rw"
    assert_equal "${#lines[@]}" 2
}

@test "--mqueue: refused without an IPC namespace of the container's own; by default left out there" {
    run ml --layer "$R" --dev --mqueue --pivot -- true
    assert_failure 125
    assert_output --partial "mount-layers: --mqueue: the IPC namespace is not the container's own"
    assert_output --partial "hint: its message queues would be the host's: add unshare-run --ipc"
    run ml --layer "$R" --proc --dev --pivot -- /bin/sh -c 'grep -c " /dev/mqueue " /proc/self/mountinfo'
    assert_output 0
    run unshare --ipc --mount --pid --fork --kill-child -- mount-layers --layer "$R" --proc --dev --pivot -- \
        /bin/sh -c 'grep " /dev/mqueue " /proc/self/mountinfo'
    assert_success
    assert_output --regexp ' /dev/mqueue rw,nosuid,nodev,noexec,relatime( [^ ]+)* - mqueue mqueue '
    run unshare --ipc --mount --pid --fork --kill-child -- mount-layers --layer "$R" --proc --dev --no-mqueue --pivot -- \
        /bin/sh -c 'grep -c " /dev/mqueue " /proc/self/mountinfo'
    assert_output 0
    run ml --layer "$R" --mqueue -- true
    assert_failure 125
    assert_output --partial "--mqueue needs --dev"
}

@test "--sys: /sys/fs/cgroup read-only, only the container's own cgroup without a cgroup namespace; --no-cgroupfs" {
    grep -q ' /sys/fs/cgroup' /proc/self/mountinfo || skip "the host has no /sys/fs/cgroup"
    run ml --layer "$R" --proc --sys --pivot -- /bin/sh -c "awk '\$5 ~ /^\/sys\/fs\/cgroup/ {print \$4, \$5, substr(\$6, 1, 3)}' /proc/self/mountinfo; touch /sys/fs/cgroup/x 2>&1; true"
    assert_success
    assert_line --regexp '^/ /sys/fs/cgroup ro,'
    refute_line --regexp ' rw,$'
    assert_line --partial "Read-only file system"
    # Each hierarchy shows our own cgroup as its root: nothing above it.
    local own
    own=$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
    if [ -n "$own" ] && [ "$own" != / ]; then
        assert_line --regexp "^$own /sys/fs/cgroup/memory ro,"
    fi
    run unshare --cgroup --mount --pid --fork --kill-child -- mount-layers --layer "$R" --proc --sys --pivot -- \
        /bin/sh -c "awk '\$5 ~ /^\/sys\/fs\/cgroup/ {print \$4, \$5, \$(NF-1)}' /proc/self/mountinfo"
    assert_success
    refute_line --regexp '^/[^ ]+ /sys/fs/cgroup/'
    assert_line --regexp '^/ /sys/fs/cgroup[^ ]* (cgroup|tmpfs)$'
    run ml --layer "$R" --proc --sys --no-cgroupfs --pivot -- /bin/sh -c 'grep -c " /sys/fs/cgroup" /proc/self/mountinfo'
    assert_output 0
}

@test "--mask and --read-only-path add to the lists --help prints; a missing path is skipped" {
    run mount-layers --help
    assert_output --partial "Paths masked (with --proc, --sys): /proc/acpi /proc/asound /proc/interrupts /proc/kcore /proc/keys"
    assert_output --partial "/sys/firmware /sys/devices/virtual/powercap"
    assert_output --partial "Paths read-only (with --proc): /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger"
    run ml --layer "$R" --tmp-upper --pivot --mask /etc/passwd --mask /bin/../etc/group --mask /usr --mask /no/such \
        --read-only-path /tmp -- /bin/sh -c 'echo "[$(cat /etc/passwd /etc/group)]"; echo "[$(ls -A /usr)]"; echo x >/tmp/f 2>&1; echo x >/f && echo root-writable'
    assert_success
    assert_line --index 0 "[]"
    assert_line --index 1 "[]"
    assert_line --partial "Read-only file system"
    assert_line root-writable
    run ml --layer "$R" --mask relative/x -- true
    assert_success
}

@test "the payload sees only descriptors 0, 1 and 2" {
    exec 7</etc/passwd
    run ml --layer "$R" --proc --pivot -- /bin/ls /proc/self/fd
    exec 7<&-
    assert_success
    # 3 is the directory ls is reading.
    assert_output $'0\n1\n2\n3'
}

@test "no inherited descriptor or /proc/self/exe leads to the host" {
    echo TOPSECRET-CONTENT >"$T/host-secret"
    exec 7<"$T/host-secret"
    run ml --layer "$R" --proc --pivot -- /bin/sh -c '
        for f in /proc/self/fd/*; do readlink "$f"; done
        cat /proc/self/fd/7 2>&1
        cmp /proc/self/exe /bin/busybox && echo exe-is-the-images
        cat '"$T/host-secret"' 2>&1; true'
    exec 7<&-
    assert_success
    refute_output --partial "TOPSECRET"
    assert_output --partial "exe-is-the-images"
    assert_output --partial "can't open '/proc/self/fd/7'"
}

@test "a kago program named without a slash runs from the host after --pivot" {
    require_static
    [ ! -e "$R/bin/mount-layers" ]
    run ml --layer "$R" --pivot -- mount-layers --version
    assert_success
    assert_output --partial "mount-layers (kago)"
}

@test "a kago program given by its host path runs from the host after --pivot" {
    require_static
    [ ! -e "$R$KAGO_BIN/cap-drop" ]
    run ml --layer "$R" --pivot -- "$KAGO_BIN/cap-drop" --version
    assert_success
    assert_output --partial "cap-drop (kago)"
}

@test "KAGO_ variables are removed before the payload, unless --keep-env" {
    run env KAGO_NAME=mlenv unshare --mount --pid --fork -- mount-layers --layer "$R" --pivot -- /bin/sh -c 'env | grep -c ^KAGO_'
    assert_output "0"
    run env KAGO_NAME=mlenv unshare --mount --pid --fork -- mount-layers --keep-env --layer "$R" --pivot -- /bin/sh -c 'env | grep ^KAGO_NAME'
    assert_output "KAGO_NAME=mlenv"
}

# --- rootless -----------------------------------------------------------------

@test "rootless: overlay, /proc, /dev with device binds, pivot in a user namespace" {
    require_userns
    rootless_dirs
    run ml_rootless --layer "$R" --tmp-upper --proc --dev --target "$T/root" --pivot -- /bin/sh -c '
        id -u; echo x >/dev/null && echo null-ok; touch /new && echo write-ok
        grep -c " /dev/null .*devtmpfs" /proc/self/mountinfo'
    assert_success
    # The layer is root's, the namespace maps the caller only: warned, by name.
    assert_line "mount-layers: warning: --layer $R: its root (uid 65534 gid 65534) belongs to an id this user namespace does not map; changing its files fails (EOVERFLOW on copy-up)"
    assert_line --partial "mount-layers: hint: use a tree owned by your own ids"
    [ "$(grep -v '^mount-layers: ' <<<"$output")" = $'0\nnull-ok\nwrite-ok\n1' ]
}

@test "rootless: a layer owned by the caller, or no upper: no ownership warning" {
    require_userns
    rootless_dirs
    local own
    own=$(mktemp -d "$T/own.XXXXXX")
    cp -a "$R/." "$own/" && chown -R 65534:65534 "$own"
    run ml_rootless --layer "$own" --tmp-upper --target "$T/root" -- true
    assert_success
    refute_output --partial warning
    run ml_rootless --layer "$R" --target "$T/root" -- true
    assert_success
    refute_output --partial warning
}

@test "rootless: --upper keeps changes in a directory of the user's" {
    require_userns
    rootless_dirs
    # Files of the host's root are not the user's to change: use an image of the user's own.
    cp -a "$R" "$T/img"
    rootless_dirs
    run ml_rootless --layer "$T/img" --upper "$T/up" --target "$T/root" --pivot -- /bin/sh -c 'echo mine >/etc/motd'
    assert_success
    [ "$(cat "$T/up/etc/motd")" = mine ]
    [ "$(stat -c %u "$T/up/etc/motd")" = 65534 ]
}

@test "rootless: --sys without a network namespace is refused, naming the option and why" {
    require_userns
    rootless_dirs
    run ml_rootless --layer "$R" --sys --target "$T/root" --pivot -- /bin/true
    assert_failure 125
    assert_output --partial "mount-layers: --sys: "
    assert_output --partial "mount-layers: hint: in a user namespace sysfs needs a network namespace"
    run as_nobody unshare --user --map-root-user --mount --pid --net --fork -- mount-layers --layer "$R" --sys --target "$T/root" --pivot -- /bin/sh -c 'ls /sys/class/net'
    assert_success
    assert_output "lo"
}

# --- Debian --------------------------------------------------------------------

@test "Debian: bash, apt-get and os-release as root, with changes kept in --upper" {
    require_debian_rootfs
    run ml --layer "$DEBIAN_ROOTFS" --upper "$T/up" --proc --dev --pivot -- \
        /bin/bash -c 'apt-get --version | head -1; cat /etc/os-release; id -u; echo kept >/root/mark'
    assert_success
    assert_output --partial "apt "
    assert_output --partial 'VERSION_CODENAME=bookworm'
    assert_line "0"
    [ "$(cat "$T/up/root/mark")" = kept ]
    run ml --layer "$DEBIAN_ROOTFS" --tmp-upper --proc --dev --pivot -- /bin/bash -c 'echo gone >/root/tmp-mark; cat /root/tmp-mark'
    assert_output "gone"
    [ ! -e "$DEBIAN_ROOTFS/root/tmp-mark" ]
}

@test "Debian: as uid 65534 inside the container" {
    require_debian_rootfs
    run ml --layer "$DEBIAN_ROOTFS" --tmp-upper --proc --dev --pivot -- \
        /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups /bin/bash -c 'apt-get --version | head -1; id -u; touch /etc/x'
    assert_failure
    assert_output --partial "apt "
    assert_line "65534"
    assert_output --partial "Permission denied"
}

@test "Debian: rootless, run by uid 65534" {
    require_userns
    require_debian_rootfs
    rootless_dirs
    # Directories of the host's root cannot be copied up in a user namespace
    # (their owner is not mapped): /tmp gets a tmpfs of its own.
    run ml_rootless --layer "$DEBIAN_ROOTFS" --tmp-upper --proc --dev --tmpfs /tmp:16M:1777 --target "$T/root" --pivot -- \
        /bin/bash -c 'apt-get --version | head -1; grep ^ID= /etc/os-release; echo x >/tmp/x && echo write-ok'
    assert_success
    assert_output --partial "apt "
    assert_line "ID=debian"
    assert_line "write-ok"
}

@test "rootless: --proc without a PID namespace is refused, naming the option and why" {
    require_userns
    rootless_dirs
    run as_nobody unshare --user --map-root-user --mount -- mount-layers --layer "$R" --proc --target "$T/root" --pivot -- /bin/true
    assert_failure 125
    assert_output --partial "mount-layers: --proc: "
    assert_output --partial "Operation not permitted"
    assert_output --partial "mount-layers: hint: a new procfs needs a PID namespace"
}

@test "rootless: exit 125 for a layer the user cannot read" {
    require_userns
    rootless_dirs
    mkdir -m 700 "$T/private"
    chown root:root "$T/private"
    run ml_rootless --layer "$T/private" --target "$T/root" --pivot -- /bin/true
    assert_failure 125
    assert_output --partial "mount-layers: --layer $T/private: Permission denied"
}

@test "exit 125: the same layer twice, with a hint" {
    run ml --layer "$R" --layer "$R" --target "$T/root" -- /bin/true
    assert_failure 125
    assert_output --partial "mount-layers: --layer: create overlay for $T/root: Too many levels of symbolic links"
    assert_output --partial "mount-layers: hint: overlay refuses overlapping layers"
}

@test "exit 125: --upper on a filesystem overlay refuses (read-only), with the kernel's reason and a hint" {
    mkdir -p "$T/rod/up" "$T/rod/up.work"
    run unshare --mount --pid --fork -- sh -c "
        mount --bind '$T/rod' '$T/rod' && mount -o remount,bind,ro '$T/rod' || exit 99
        mount-layers --layer '$R' --upper '$T/rod/up' --target '$T/root' -- /bin/true; echo rc=\$?
        grep -c ' $T/root ' /proc/self/mountinfo"
    assert_output --partial "mount-layers: --upper: set upperdir=$T/rod/up on overlay"
    # The kernel names the upper by its place in the detached clone it came in.
    assert_output --regexp "mount-layers: hint: the kernel says: overlay: filesystem on [^ ]*up is read-only; use --tmp-upper"
    assert_output --partial "rc=125"
    assert_line "0"
}

@test "--pivot: the command gets the container's default environment; --env, --pass-env and --host-env" {
    export MLT_CALLER=from-caller MLT_OTHER=other
    run ml --layer "$R" --tmp-upper --pivot -- /bin/sh -c 'echo "${MLT_CALLER:-unset} $HOME $PATH $container"'
    assert_success
    assert_output "unset /root /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin kago"
    # Each option takes one word: the command follows directly.
    run ml --layer "$R" --tmp-upper --pivot --pass-env MLT_CALLER --env HOME=/srv --env X=a=b /bin/sh -c 'echo "$MLT_CALLER ${MLT_OTHER:-unset} $HOME $X"'
    assert_success
    assert_output "from-caller unset /srv a=b"
    run ml --layer "$R" --tmp-upper --pivot --host-env --env MLT_OTHER=set /bin/sh -c 'echo "$MLT_CALLER $MLT_OTHER ${container:-none}"'
    assert_success
    assert_output "from-caller set none"
    # Without --pivot the host root is still the root: the environment stays.
    run ml --layer "$R" --tmp-upper -- /bin/sh -c 'echo "$MLT_CALLER"'
    assert_success
    assert_output "from-caller"
}

@test "exit 125: --env without NAME=VALUE, --pass-env with an =" {
    run mount-layers --env NOVALUE -- true
    assert_failure 125
    assert_output --partial "--env NOVALUE: expected NAME=VALUE"
    run mount-layers --pass-env A=B -- true
    assert_failure 125
    assert_output --partial "--pass-env A=B: expected a variable's NAME"
}

@test "rootless: a caller's PATH without sbin; after --pivot the command finds the root's sbin programs by name" {
    require_userns
    rootless_dirs
    # as a user's login has it (the issue: useradd was not found)
    run setpriv --reuid=65534 --regid=65534 --clear-groups -- \
        env -i PATH="$KAGO_BIN:/usr/bin:/bin" HOME=/tmp KAGO_STATE_DIR="$KAGO_STATE_DIR" \
        unshare-run --map-root --pid --mount -- \
        mount-layers --layer "$R" --tmp-upper --pivot -- /bin/sh -c 'echo "PATH=$PATH"; which arp'
    assert_success
    assert_line "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert_line /sbin/arp
}
