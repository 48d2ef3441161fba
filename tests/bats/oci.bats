#!/usr/bin/env bats
# The OCI runtime spec's default configuration (what `crun spec` writes),
# expressed as a kago chain and checked item by item from inside the
# container: mount sources, order and options, masked and read-only paths,
# rlimits, capabilities per set, hostname, cwd and user. As root, and as
# an unprivileged user (everything the kernel allows without privilege).
load helpers

setup_file() { kago_setup_file; }
teardown_file() { kago_teardown_file; }

# The spec's mounts, in its order.
OCI_MOUNTS="/proc /dev /dev/pts /dev/shm /dev/mqueue /sys /sys/fs/cgroup"

need_chain() {
    require_static
    for p in cg-limit unshare-run mount-layers cap-drop; do
        [ -x "$KAGO_BIN/$p" ] || skip "$p is not built"
    done
}

# The default config as a chain: rlimit nofile 1024; pid, network, ipc,
# uts and mount namespaces; hostname; a read-only root; the seven mounts;
# AUDIT_WRITE, KILL and NET_BIND_SERVICE; no_new_privs; uid and gid 0;
# cwd /. Rootless adds a user namespace that maps the caller to 0.
oci_chain() {
    local mode=$1
    shift
    local b=$KAGO_BIN
    local chain=("$b/cg-limit" --rlimit nofile=1024 --
        "$b/unshare-run" --pid --net --ipc --uts --mount --hostname oci-kago --
        "$b/mount-layers" --layer "$KAGO_ROOTFS" --read-only --proc --dev --sys --pivot --chdir / --
        "$b/cap-drop" --keep audit_write,kill,net_bind_service --user 0:0 -- "$@")
    if [ "$mode" = rootless ]; then
        require_userns
        chain=("${chain[@]:0:4}" "$b/unshare-run" --map-root "${chain[@]:5}")
        as_nobody "${chain[@]}"
    else
        "${chain[@]}"
    fi
}

# "MOUNTPOINT FSTYPE SOURCE MOUNT-OPTIONS SUPER-OPTIONS" per mount.
MOUNTS_SCRIPT='awk "{for (i = 7; i <= NF; i++) if (\$i == \"-\") { print \$5, \$(i+1), \$(i+2), \$6, \$(i+3); break } }" /proc/self/mountinfo'

mount_line() { printf '%s\n' "$output" | awk -v m="$1" '$1 == m' | tail -1; }

check_sources() {
    run oci_chain "$1" sh -c "$MOUNTS_SCRIPT"
    assert_success
    assert_line --regexp '^/proc proc proc '
    assert_line --regexp '^/dev tmpfs tmpfs '
    assert_line --regexp '^/dev/pts devpts devpts '
    assert_line --regexp '^/dev/shm tmpfs shm '
    assert_line --regexp '^/dev/mqueue mqueue mqueue '
    assert_line --regexp '^/sys sysfs sysfs '
    # v2: cgroup2, source "cgroup"; v1: a tmpfs with one cgroup mount per
    # hierarchy (source "cgroup"), read-only, as runc makes it. The spec's
    # default has no cgroup namespace: then the container's own cgroup of
    # the host's mount is bound in, and a bind keeps the source the host's
    # mount has (cgroup2 on a v2 host here); with one, the mount is new
    # (mount-layers.bats checks its source).
    assert_line --regexp '^/sys/fs/cgroup (cgroup2 cgroup2?|tmpfs tmpfs) '
    if printf '%s\n' "$output" | grep -q '^/sys/fs/cgroup tmpfs '; then
        assert_line --regexp '^/sys/fs/cgroup/[^ ]+ cgroup2? cgroup ro,'
        refute_line --regexp '^/sys/fs/cgroup/[^ ]+ [^ ]+ [^ ]+ rw,'
    fi
    # No mount the chain made says "none".
    refute_output --regexp '^[^ ]+ [^ ]+ none '
}

check_order() {
    run oci_chain "$1" sh -c "$MOUNTS_SCRIPT"
    assert_success
    local seen
    seen=$(printf '%s\n' "$output" | awk '{print $1}' | grep -xE '/proc|/dev|/dev/pts|/dev/shm|/dev/mqueue|/sys|/sys/fs/cgroup' | tr '\n' ' ')
    [ "$seen" = "$OCI_MOUNTS " ] || { echo "order: $seen"; false; }
}

check_options() {
    run oci_chain "$1" sh -c "$MOUNTS_SCRIPT"
    assert_success
    # mount options (field 4) and the filesystem's own (field 5)
    assert_line --regexp '^/proc proc proc rw,nosuid,nodev,noexec,relatime '
    # /dev: the spec's nosuid, strictatime, mode=755, size=65536k; kago adds
    # nodev and noexec (host nodes are bound in, a node made there never opens).
    assert_line --regexp '^/dev tmpfs tmpfs rw,nosuid,nodev,noexec [^ ]*size=64k,[^ ]*mode=755'
    assert_line --regexp '^/dev/pts devpts devpts rw,nosuid,noexec,relatime [^ ]*mode=620,ptmxmode=666'
    assert_line --regexp '^/dev/shm tmpfs shm rw,nosuid,nodev,noexec,relatime [^ ]*size=65536k'
    assert_line --regexp '^/dev/mqueue mqueue mqueue rw,nosuid,nodev,noexec,relatime '
    assert_line --regexp '^/sys sysfs sysfs ro,nosuid,nodev,noexec,relatime '
    assert_line --regexp '^/sys/fs/cgroup [^ ]+ [^ ]+ ro,nosuid,nodev,noexec,relatime '
    # The root is read-only ("root": {"readonly": true}).
    assert_line --regexp '^/ [^ ]+ [^ ]+ ro,'
    if [ "$1" = root ]; then
        assert_line --regexp '^/dev/pts devpts devpts [^ ]+ [^ ]*gid=5,'
    fi
    # /dev/shm's mode is 1777, and it works.
    run oci_chain "$1" sh -c 'stat -c %a /dev/shm /dev/mqueue; echo x >/dev/shm/f && cat /dev/shm/f'
    assert_success
    assert_line --index 0 1777
    assert_line --index 1 1777
    assert_line --index 2 x
}

check_masked() {
    run oci_chain "$1" sh -c '
        for p in /proc/acpi /proc/asound /proc/interrupts /proc/kcore /proc/keys /proc/latency_stats \
                 /proc/timer_list /proc/timer_stats /proc/sched_debug /proc/scsi /sys/firmware \
                 /sys/devices/virtual/powercap; do
            [ -e $p ] || { echo "$p absent"; continue; }
            if [ -d $p ]; then echo "$p dir [$(ls -A $p)]"; else echo "$p file [$(head -c 64 $p)]"; fi
        done
        for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger; do
            awk -v p=$p "\$5 == p {print p, substr(\$6, 1, 3)}" /proc/self/mountinfo
        done
        echo 1 >/proc/sys/kernel/ns_last_pid 2>/dev/null && echo "proc/sys writable"
        cat /proc/interrupts | wc -c'
    assert_success
    assert_line --regexp '^/proc/acpi (absent|dir \[\])$'
    assert_line --regexp '^/proc/keys file \[\]$'
    assert_line --regexp '^/proc/interrupts file \[\]$'
    assert_line --regexp '^/proc/timer_list (absent|file \[\])$'
    assert_line --regexp '^/sys/firmware (absent|dir \[\])$'
    refute_output --regexp '(dir|file) \[.+\]$'
    for p in /proc/bus /proc/fs /proc/irq /proc/sys; do
        [ -e "/$p" ] || continue
        assert_line "$p ro,"
    done
    refute_output --partial "proc/sys writable"
}

check_process() {
    run oci_chain "$1" sh -c 'ulimit -Sn; ulimit -Hn; hostname; pwd; id -u; id -g; grep -E "^(Cap|NoNewPrivs)" /proc/self/status'
    assert_success
    assert_line --index 0 1024
    assert_line --index 1 1024
    assert_line --index 2 oci-kago
    assert_line --index 3 /
    assert_line --index 4 0
    assert_line --index 5 0
    # CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10)
    for s in CapPrm CapEff CapBnd CapAmb; do
        assert_line --regexp "^$s:\s+0000000020000420$"
    done
    # The spec lists no inheritable capability, but the kernel keeps an
    # ambient one only when it is inheritable too: kago's chain has both.
    assert_line --regexp '^CapInh:\s+0000000020000420$'
    assert_line --regexp '^NoNewPrivs:\s+1$'
}

@test "oci: the spec's default mounts are those crun spec writes, in the order the chain checks" {
    command -v crun >/dev/null || skip "crun is not installed"
    local d=$BATS_TEST_TMPDIR/spec
    mkdir -p "$d"
    (cd "$d" && crun spec)
    run sh -c "grep '\"destination\"' '$d/config.json' | cut -d'\"' -f4 | tr '\n' ' '"
    assert_output "$OCI_MOUNTS "
    run grep -c '"nofile\|RLIMIT_NOFILE' "$d/config.json"
    assert_output 1
}

@test "oci (root): each mount names its source, as runc and crun do" { need_chain; check_sources root; }
@test "oci (rootless): each mount names its source, as runc and crun do" { need_chain; check_sources rootless; }
@test "oci (root): the mounts come in the spec's order" { need_chain; check_order root; }
@test "oci (rootless): the mounts come in the spec's order" { need_chain; check_order rootless; }
@test "oci (root): the mounts have the spec's options" { need_chain; check_options root; }
@test "oci (rootless): the mounts have the spec's options" { need_chain; check_options rootless; }
@test "oci (root): the masked and read-only paths" { need_chain; check_masked root; }
@test "oci (rootless): the masked and read-only paths" { need_chain; check_masked rootless; }
@test "oci (root): rlimits, hostname, cwd, user, capabilities per set" { need_chain; check_process root; }
@test "oci (rootless): rlimits, hostname, cwd, user, capabilities per set" { need_chain; check_process rootless; }
