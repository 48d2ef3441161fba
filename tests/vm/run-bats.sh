#!/bin/bash
# run-bats.sh [BATS-OPTION...] FILE...
# Runs bats files as root in a VM booted in pure cgroup v2 mode (boot.sh),
# in one boot, with tests/bats/zz-leftovers.bats last. TAP comes out on
# stdout while the guest runs; boot messages go to stderr.
#
#   KAGO_BIN, KAGO_BUILD   the build in use (default: the tree's bin/, build/)
#   KAGO_VM_LEFTOVERS=0    do not add zz-leftovers.bats
#   KAGO_VM_*              see boot.sh and README.md
#
# Exit status: 0 when every test passed, 1 when one failed or the guest
# timed out or died (then a `not ok` line says so), 77 when the VM cannot
# run here (then the TAP is one skipped test that says why).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
: "${KAGO_BIN:=$top/bin}" "${KAGO_BUILD:=$top/build}"
export KAGO_BIN KAGO_BUILD KAGO_TOP="$top"
[ $# -gt 0 ] || { echo "usage: run-bats.sh [BATS-OPTION...] FILE..." >&2; exit 2; }

# Files with absolute paths, and their directories shared with the guest
# (boot.sh skips those already inside a share, like the work tree).
args=()
for a in "$@"; do
    if [ -e "$a" ]; then
        a=$(realpath "$a")
        KAGO_VM_RW="${KAGO_VM_RW:-} $(dirname "$a")"
    fi
    args+=("$a")
done
export KAGO_VM_RW
cd "$top" || exit 2
[ "${KAGO_VM_LEFTOVERS:-1}" = 1 ] && args+=("$top/tests/bats/zz-leftovers.bats")

# The fixture the bats files share (tests/run.sh builds it too).
"$top/tests/make-busybox-rootfs.sh" "$KAGO_BUILD/rootfs-busybox" >/dev/null ||
    echo "run-bats.sh: could not build the busybox rootfs" >&2
export KAGO_ROOTFS="$KAGO_BUILD/rootfs-busybox"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# In the guest: the leftovers snapshot zz-leftovers.bats compares with, then bats.
"$here/boot.sh" --why "$tmp/why" bash -c '
    "$KAGO_TOP/tests/lib/leftovers.sh" >/run/kago-vm-leftovers.before
    export KAGO_LEFTOVERS_BEFORE=/run/kago-vm-leftovers.before
    exec bats --tap "$@"' bats "${args[@]}" | tee "$tmp/tap"
rc=${PIPESTATUS[0]}

n=$(grep -cE '^(ok|not ok) ' "$tmp/tap")
case "$rc" in
0) exit 0 ;;
77)
    echo "1..1"
    echo "ok 1 bats in a cgroup v2 VM # skip $(cat "$tmp/why")"
    exit 77 ;;
124 | 125)
    echo "not ok $((n + 1)) bats in a cgroup v2 VM: $(cat "$tmp/why")"
    exit 1 ;;
*)
    grep -q '^not ok ' "$tmp/tap" ||
        echo "not ok $((n + 1)) bats in a cgroup v2 VM: bats exited with status $rc"
    exit 1 ;;
esac
