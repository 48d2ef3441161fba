#!/usr/bin/env bats
# The example scripts of examples/ that compose whole containers: each one
# runs here, against the busybox rootfs ($KAGO_ROOTFS) or the cached Debian
# rootfs, and must print what its comment promises. Network examples use a
# bridge and subnet of their own, on loopback and in their own namespaces.
load helpers

setup_file() { kago_setup_file; }
teardown_file() { kago_teardown_file; }

EX="$KAGO_TOP/examples"


setup() {
    # a bridge name and a /24 of this test's own
    BRIDGE=kx7br$$$((RANDOM % 100))
    SUBNET=10.$((RANDOM % 100 + 120)).$((RANDOM % 250)).0/24
}

teardown() {
    # net-setup may keep the bridge for later containers; this one is ours
    ip link del "$BRIDGE" 2>/dev/null || true
}

@test "examples/busybox-shell.sh: a busybox container, the command is in its own PID namespace" {
    require_static
    require_progs unshare-run mount-layers cap-drop
    run "$EX/busybox-shell.sh" "$KAGO_ROOTFS" sh -c 'hostname; ps; cat /etc/motd'
    assert_success
    assert_line busybox
    assert_line --regexp '^ +1 root '
    assert_line "kago busybox rootfs"
}

@test "examples/image-layers-run.sh: a two-layer image whose whiteout hides a lower file" {
    require_static
    require_progs image-layers unshare-run mount-layers cap-drop
    run "$EX/image-layers-run.sh" "$KAGO_ROOTFS"
    assert_success
    assert_line --regexp '^base:2 +[0-9a-f]{12} '
    assert_line --regexp '^c--------- .*/etc/group$'
    assert_line --partial "/etc/group: No such file or directory"
    assert_line /etc/group
}

@test "examples/busybox-shell.sh: the command's status comes back" {
    require_static
    require_progs unshare-run mount-layers cap-drop
    run "$EX/busybox-shell.sh" "$KAGO_ROOTFS" sh -c 'exit 3'
    [ "$status" -eq 3 ]
}

@test "examples/debian-rootless.sh: Debian as the unprivileged user 65534" {
    require_static
    require_progs unshare-run mount-layers cap-drop
    require_userns
    require_debian_rootfs
    # 65534 has no /etc/subuid range and the tree is root's: it reads, and
    # says why it could not write (tests/bats/rootless.bats writes).
    run as_nobody "$EX/debian-rootless.sh" "$DEBIAN_ROOTFS" /bin/bash -c '. /etc/os-release; echo "$PRETTY_NAME, uid $(id -u) inside"; apt-get --version | head -1'
    assert_success
    assert_line --regexp '^Debian GNU/Linux 12 \(bookworm\), uid 0 inside$'
    assert_line --regexp '^apt [0-9]'
    assert_output --partial "debian-rootless.sh: no /etc/subuid range (or no newuidmap): --map-root"
    assert_output --partial "mount-layers: warning: --layer $DEBIAN_ROOTFS: its root"
    # The default command writes, and fails on such a tree
    run as_nobody "$EX/debian-rootless.sh" "$DEBIAN_ROOTFS"
    assert_failure
    assert_output --partial "useradd: cannot lock /etc/passwd"
}

@test "examples/web-published.sh: httpd's published port answers wget on the host's loopback" {
    require_static
    require_progs net-setup unshare-run mount-layers cap-drop
    port=$((20000 + RANDOM % 20000))
    BRIDGE=$BRIDGE SUBNET=$SUBNET run timeout 120 "$EX/web-published.sh" "$KAGO_ROOTFS" "$port"
    assert_success
    assert_line "wget http://127.0.0.1:$port/ from the host:"
    assert_line "<h1>hello from kago</h1>"
}

@test "examples/limited-build.sh: a build under memory and pids limits prints its status JSON" {
    require_progs cg-limit unshare-run mount-layers cap-drop
    command -v cc >/dev/null && command -v make >/dev/null || skip "no cc and make on the host (make deps)"
    run "$EX/limited-build.sh"
    assert_success
    assert_line "built in a container: 30"
    assert_line --regexp '^status: \{.*"exit":0,.*"oom_kills":0,'
}

@test "examples/two-containers-bridge.sh: two containers on one bridge ping each other" {
    require_static
    require_progs net-setup unshare-run mount-layers cap-drop
    BRIDGE=$BRIDGE SUBNET=$SUBNET run timeout 120 "$EX/two-containers-bridge.sh" "$KAGO_ROOTFS"
    assert_success
    net=${SUBNET%.0/24}
    assert_line "box-a ($net.200) pings $net.201:"
    assert_line "box-b ($net.201) pings $net.200:"
    [ "$(grep -c ' 0% packet loss' <<<"$output")" -eq 2 ] || fail "not two clean pings: $output"
}

@test "examples/two-containers-bridge.sh: a root without ping is a clear 125 at once" {
    cp -a "$KAGO_ROOTFS" "$BATS_TEST_TMPDIR/noping"
    rm -f "$BATS_TEST_TMPDIR"/noping/{bin,usr/bin,sbin,usr/sbin}/ping
    BRIDGE=$BRIDGE SUBNET=$SUBNET run timeout 120 "$EX/two-containers-bridge.sh" "$BATS_TEST_TMPDIR/noping"
    assert_equal "$status" 125
    assert_output --partial "two-containers-bridge.sh: $BATS_TEST_TMPDIR/noping has no ping"
    rm -rf "$BATS_TEST_TMPDIR/noping"
}

@test "examples/trace-a-container.sh: the chain's kernel calls, grouped by program" {
    require_static
    require_progs unshare-run mount-layers cap-drop
    run "$EX/trace-a-container.sh" "$KAGO_ROOTFS" "$BATS_TEST_TMPDIR/trace"
    assert_success
    assert_line --regexp '^  hostname traced, pid [0-9]+, CapEff:.0000000000000000$'
    assert_line --regexp '^  clone\(CLONE_NEWPID'
    assert_line --regexp '^  pivot_root\("\.", "\."\) = 0$'
    assert_line --regexp '^  prctl\(PR_SET_NO_NEW_PRIVS, 1\) = 0$'
    assert_line --regexp '^  mount-layers +[0-9]+: .*pivot_root'
    grep -q '^cap-drop: seccomp(' "$BATS_TEST_TMPDIR/trace"
}

@test "examples/selfexec-app.sh: a container packed into one file runs" {
    [ -x "$EX/selfexec-app.sh" ] || fail "examples/selfexec-app.sh is missing or not executable"
    require_progs pack-selfexec
    run "$EX/selfexec-app.sh" "$KAGO_ROOTFS"
    assert_success
    assert_line "hello from packed in /tmp as uid 0: one two three"
    assert_line "hello from packed in /tmp as uid 0: again"
}

@test "examples/selfexec-app.sh: as the unprivileged user 65534, rootless" {
    [ -x "$EX/selfexec-app.sh" ] || fail "examples/selfexec-app.sh is missing or not executable"
    require_progs pack-selfexec
    require_userns
    NOBODY_TMP=$(mktemp -d /tmp/kago7-nobody.XXXXXX)
    chown 65534:65534 "$NOBODY_TMP"
    run as_nobody "$EX/selfexec-app.sh" "$KAGO_ROOTFS"
    rm -rf "$NOBODY_TMP"
    assert_success
    assert_line "hello from packed in /tmp as uid 0: one two three"
}

@test "examples/minc: runs under dash, as MINCS does" {
    require_progs unshare-run mount-layers
    command -v dash >/dev/null || skip "dash is not installed (make deps)"
    run dash "$EX/minc" -r "$KAGO_ROOTFS" --name minc-dash hostname
    assert_success
    assert_output minc-dash
}
