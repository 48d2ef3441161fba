# Shared by every bats file: load with `load helpers`.
#
# Each file calls kago_setup_file / kago_teardown_file from its
# setup_file / teardown_file, which fail the file when it left mounts,
# interfaces, cgroups, nftables tables, netns or state directories behind.

bats_load_library bats-support 2>/dev/null || load /usr/lib/bats/bats-support/load.bash
bats_load_library bats-assert 2>/dev/null || load /usr/lib/bats/bats-assert/load.bash

: "${KAGO_TOP:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
: "${KAGO_BIN:=$KAGO_TOP/bin}"
: "${KAGO_BUILD:=$KAGO_TOP/build}"
: "${KAGO_ROOTFS:=$KAGO_BUILD/rootfs-busybox}"
export PATH="$KAGO_BIN:$PATH"
export KAGO_TOP KAGO_BIN KAGO_BUILD KAGO_ROOTFS

# Programs that run inside a container's root (after pivot_root or chroot)
# are static. A SANITIZE build links them dynamically (ASan has no static
# runtime), so they need the host's libraries there: kago_dynamic tells,
# require_static skips a test that cannot provide them.
kago_dynamic() { ! file -L "$KAGO_BIN/cap-drop" | grep -q 'statically linked'; }
require_static() {
    if kago_dynamic; then
        skip "runs a kago program inside a container root, where a dynamic (SANITIZE) build finds no libraries"
    fi
}

# A shell function for test scripts: "gone IF" waits up to 2 s for a network
# interface to disappear. net-setup leaves the deletion of a veth to a
# detached process, because the kernel takes 15-40 ms of RCU grace periods
# to delete one; the supervisor does not wait for it. "no_lease BRIDGE"
# waits the same for a lease file. "net_leftovers NAME BRIDGE" prints a
# LEFT-... line for each thing a net-setup --veth container NAME on BRIDGE
# may leave behind (its veth, the bridge, the netns bind mount, its state
# directory, the bridge's lease file).
KAGO_GONE='gone() { local i; for i in $(seq 40); do ip link show "$1" >/dev/null 2>&1 || return 0; sleep 0.05; done; return 1; }
no_lease() { local i; for i in $(seq 40); do ls /run/kago/leases 2>/dev/null | grep -q "^$1@" || return 0; sleep 0.05; done; return 1; }
net_leftovers() {
    gone "kg$1" || echo LEFT-VETH
    gone "$2" || echo LEFT-BRIDGE
    [ -e "/run/netns/kago-$1" ] && echo LEFT-BIND
    [ -e "/run/kago/$1" ] && echo LEFT-STATE
    no_lease "$2" || echo LEFT-LEASE
    return 0
}'
export KAGO_GONE
unset KAGO_NAME KAGO_STATE_DIR KAGO_CGROUP KAGO_NETNS KAGO_TRACE KAGO_DRY_RUN KAGO_PIDNS KAGO_USERNS

kago_setup_file() {
    "$KAGO_TOP/tests/lib/leftovers.sh" >"$BATS_FILE_TMPDIR/leftovers.before"
}

kago_teardown_file() {
    local extra i
    # Up to 2 s: a veth that net-setup's detached process is still deleting.
    for i in 1 2 3 4 5; do
        "$KAGO_TOP/tests/lib/leftovers.sh" >"$BATS_FILE_TMPDIR/leftovers.after"
        extra=$(comm -13 "$BATS_FILE_TMPDIR/leftovers.before" "$BATS_FILE_TMPDIR/leftovers.after")
        [ -z "$extra" ] && break
        sleep 0.5
    done
    if [ -n "$extra" ]; then
        echo "left behind by $(basename "$BATS_TEST_FILENAME"):" >&2
        echo "$extra" >&2
        return 1
    fi
}

# Run a command as the unprivileged user 65534 (nobody), with a clean
# environment of our own.
# KAGO_EXEC passes (tests/run.sh runs the chain tests both ways).
as_nobody() {
    setpriv --reuid=65534 --regid=65534 --clear-groups -- \
        env -i PATH="$PATH" HOME=/tmp TMPDIR="${NOBODY_TMP:-/tmp}" ${KAGO_EXEC:+KAGO_EXEC=$KAGO_EXEC} "$@"
}

# Skip unless unprivileged user namespaces work here.
require_userns() {
    if ! as_nobody unshare --user --map-root-user true 2>/dev/null; then
        skip "unprivileged user namespaces are not available on this machine"
    fi
}

# The Debian minbase rootfs (built once, cached under /var/cache).
debian_rootfs() {
    local dir=/var/cache/kago-tests/debian-bookworm
    if [ ! -e "$dir/.done" ]; then
        "$KAGO_TOP/tests/make-debian-rootfs.sh" "$dir" >&2 || return 1
    fi
    echo "$dir"
}

require_debian_rootfs() {
    DEBIAN_ROOTFS=$(debian_rootfs) || skip "debootstrap could not build a Debian rootfs here"
}

# A test helper program built from tests/progs/NAME.c.
test_prog() { echo "$KAGO_BUILD/tests/progs/$1"; }

# Skip, naming the program, when a kago program a test needs is not built.
require_progs() {
    local p
    for p; do
        [ -x "$KAGO_BIN/$p" ] || skip "$p is not built ($KAGO_BIN/$p is missing)"
    done
}

# as_user_in_netns UID GID HOME SHELL SCRIPT: run SCRIPT with SHELL (sh or
# bash, with -e) as UID:GID, with HOME and a clean environment, in a network
# namespace and mount namespace of its own: lo up, a veth pair (kgun0, kgun1)
# with 10.250.80.1/24 and a default route through it, so that pasta and
# slirp4netns find a host interface, and /dev/net/tun usable by the user.
# Nothing reaches beyond the namespace.
as_user_in_netns() {
    unshare --net --mount --propagation private -- bash -euc '
        ip link set lo up
        ip link add kgun0 type veth peer name kgun1
        ip addr add 10.250.80.1/24 dev kgun0; ip link set kgun0 up; ip link set kgun1 up
        ip route add default via 10.250.80.2
        t=$(mktemp -u /tmp/kgun-tun.XXXXXX); mknod $t c 10 200; chmod 666 $t; mount --bind $t /dev/net/tun; rm -f $t
        cd "$3"
        exec setpriv --reuid="$1" --regid="$2" --clear-groups -- \
            env -i PATH="$KAGO_BIN:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$3" "$4" -ec "$5"' x "$@"
}
