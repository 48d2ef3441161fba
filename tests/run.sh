#!/bin/bash
# The test driver behind `make check`: the GoogleTest unit tests, then the
# bats suite against the real kernel, then one summary line:
#   N passed, N failed[, N skipped]
# It exits non-zero when anything failed.
#
#   KAGO_BIN, KAGO_BUILD   set by the Makefile
#   KAGO_UNIT=0            skip the unit tests
#   tests/run.sh [FILE.bats...]   run only these bats files
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
: "${KAGO_BIN:=$top/bin}" "${KAGO_BUILD:=$top/build}"
export KAGO_BIN KAGO_BUILD KAGO_TOP="$top"
export PATH="$KAGO_BIN:$PATH"
passed=0 failed=0 skipped=0

if [ "${KAGO_UNIT:-1}" = 1 ]; then
    echo "== unit tests"
    log="$KAGO_BUILD/unit-tests.log"
    "$KAGO_BUILD/unit-tests" --gtest_color=no >"$log" 2>&1
    rc=$?
    grep -E '^\[  (FAILED|SKIPPED) ' "$log" | grep ' ms)' || true
    p=$(grep -cE '^\[       OK \] .* \([0-9]+ ms\)' "$log")
    f=$(grep -cE '^\[  FAILED  \] .* \([0-9]+ ms\)' "$log")
    s=$(grep -cE '^\[  SKIPPED \] .* \([0-9]+ ms\)' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "unit-tests exited with status $rc:"; tail -20 "$log"; f=1
    fi
    echo "unit: $p passed, $f failed, $s skipped"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
fi

# Fixtures the bats files share, built once.
"$here/make-busybox-rootfs.sh" "$KAGO_BUILD/rootfs-busybox" >/dev/null || {
    echo "could not build the busybox rootfs"; failed=$((failed + 1)); }
export KAGO_ROOTFS="$KAGO_BUILD/rootfs-busybox"

if [ $# -gt 0 ]; then
    files=("$@")
else
    files=()
    for f in "$here"/bats/*.bats; do
        case "$f" in */zz-leftovers.bats) ;; *) files+=("$f") ;; esac
    done
    files+=("$here/bats/zz-leftovers.bats")
fi

echo "== bats"
"$here/lib/leftovers.sh" >"$KAGO_BUILD/leftovers.before"
export KAGO_LEFTOVERS_BEFORE="$KAGO_BUILD/leftovers.before"
tap="$KAGO_BUILD/bats.tap"
bats --tap "${files[@]}" 2>&1 | tee "$tap"
rc=${PIPESTATUS[0]}
p=$(grep -E '^ok ' "$tap" | grep -vc ' # skip')
s=$(grep -E '^ok ' "$tap" | grep -c ' # skip')
f=$(grep -cE '^not ok ' "$tap")
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "bats exited with status $rc without a failed test"; f=1
fi
echo "bats: $p passed, $f failed, $s skipped"
passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))

summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
