#!/usr/bin/env bats
# The VM harness itself: the guest that tests/vm/boot.sh starts is what the
# cgroup v2 suite needs. Run in the guest only (tests/vm/run-bats.sh); on a
# v1 or hybrid host these tests fail, as they should.
load ../bats/helpers

setup_file() { kago_setup_file; }
teardown_file() { kago_teardown_file; }

teardown() {
    [ -d /sys/fs/cgroup/kago-vm-smoke ] && rmdir /sys/fs/cgroup/kago-vm-smoke
    return 0
}

@test "vm: /sys/fs/cgroup is a cgroup2 file system" {
    run stat -fc %T /sys/fs/cgroup
    assert_success
    assert_output cgroup2fs
}

@test "vm: no cgroup v1 hierarchy is mounted" {
    run awk '$3 == "cgroup"' /proc/mounts
    assert_success
    assert_output ""
}

@test "vm: memory, cpu, io, pids and cpuset are available and enabled for children" {
    for f in cgroup.controllers cgroup.subtree_control; do
        for c in memory cpu io pids cpuset; do
            grep -qw "$c" "/sys/fs/cgroup/$f" || fail "$c missing from $f: $(cat /sys/fs/cgroup/$f)"
        done
    done
}

@test "vm: KAGO_VM_DISK is a block device that io.max accepts" {
    [ -b "${KAGO_VM_DISK:-}" ] || fail "KAGO_VM_DISK='${KAGO_VM_DISK:-}' is not a block device"
    majmin=$(stat -c '%t:%T' "$KAGO_VM_DISK")
    majmin=$((16#${majmin%:*})):$((16#${majmin#*:}))
    mkdir /sys/fs/cgroup/kago-vm-smoke
    echo "$majmin rbps=1048576 wiops=100" >/sys/fs/cgroup/kago-vm-smoke/io.max
    run cat /sys/fs/cgroup/kago-vm-smoke/io.max
    assert_output "$majmin rbps=1048576 wbps=max riops=max wiops=100"
}

@test "vm: an unprivileged user can create a user namespace (not a chroot)" {
    run as_nobody unshare --user --map-root-user id -u
    assert_success
    assert_output 0
}

@test "vm: the build directory is writable and the host's / is not" {
    f="$KAGO_BUILD/.kago-vm-smoke.$$"
    touch "$f"
    rm "$f"
    run touch /usr/.kago-vm-smoke
    assert_failure
}

@test "vm: the guest kernel loads its modules on demand (nf_tables)" {
    run nft add table inet kago_vm_smoke
    assert_success
    nft delete table inet kago_vm_smoke
}

@test "vm: a veth pair can be made (the veth module is loaded)" {
    run ip link add kago-vm-s0 type veth peer name kago-vm-s1
    assert_success
    ip link del kago-vm-s0
}
