#!/bin/bash
# The test driver behind `make check`: the GoogleTest unit tests, then each
# libFuzzer target for a few seconds (tests/fuzz/), then the bats suite
# against the real kernel, then the torture test (tests/torture.sh), then
# the cgroup bats files again in a cgroup v2 VM (tests/vm/), then one
# summary line:
#   N passed, N failed[, N skipped]
# It exits non-zero when anything failed.
#
#   KAGO_BIN, KAGO_BUILD   set by the Makefile
#   KAGO_UNIT=0            skip the unit tests
#   KAGO_FUZZ=0|1          the fuzz phase (default: on when no FILE is
#                          named); KAGO_FUZZ_SECS, seconds per target (3)
#   KAGO_TORTURE=0|1       the torture phase, tests/torture.sh root and
#                          rootless (default: on when no FILE is named);
#                          KAGO_TORTURE_RUNS, kill runs each (20: about
#                          1.5 min root and 1 min rootless on a loaded
#                          2-core machine)
#   KAGO_VM=0|1            the cgroup v2 VM phase (default: on when no
#                          FILE is named); KAGO_VM_BATS lists its files
#   tests/run.sh [FILE.bats...]   run only these bats files
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
: "${KAGO_BIN:=$top/bin}" "${KAGO_BUILD:=$top/build}"
export KAGO_BIN KAGO_BUILD KAGO_TOP="$top"
export PATH="$KAGO_BIN:$PATH"
passed=0 failed=0 skipped=0

# count LABEL TAP RC: add up a TAP file's results, print "LABEL: N passed,
# N failed, N skipped", and count a non-zero RC without a failed test as
# one failure.
count() {
    local p s f
    p=$(grep -E '^ok ' "$2" | grep -vc ' # skip')
    s=$(grep -E '^ok ' "$2" | grep -c ' # skip')
    f=$(grep -cE '^not ok ' "$2")
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$1 exited with status $3 without a failed test"; f=1
    fi
    echo "$1: $p passed, $f failed, $s skipped"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

# The ten slowest tests of a TAP file (bats --timing), for keeping the
# suite's time in view.
slowest() {
    echo "slowest tests:"
    sed -nE 's/^(not )?ok [0-9]+ (.*) in ([0-9]+)ms$/\3 \2/p' "$1" | sort -rn | head -10 |
        awk '{ printf "  %6.1f s  ", $1 / 1000; $1 = ""; print substr($0, 2) }'
}

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

# Each libFuzzer target (built by `make fuzz-build` into $KAGO_BUILD/fuzz/)
# runs for KAGO_FUZZ_SECS from its seed corpus, and counts as one test; the
# corpus it grows is thrown away. `make fuzz` runs them for longer.
fuzz_default=0
[ $# -eq 0 ] && fuzz_default=1
if [ "${KAGO_FUZZ:-$fuzz_default}" = 1 ]; then
    secs=${KAGO_FUZZ_SECS:-3}
    echo "== fuzz ($secs s each)"
    p=0 f=0
    for src in "$here"/fuzz/*.cpp; do
        t=$(basename "$src" .cpp)
        bin="$KAGO_BUILD/fuzz/$t"
        log="$KAGO_BUILD/fuzz/$t.check.log"
        if [ ! -x "$bin" ]; then
            echo "FAILED: fuzz $t: $bin is not built (make fuzz-build)"; f=$((f + 1)); continue
        fi
        work=$(mktemp -d)
        "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$KAGO_BUILD/fuzz/crash-$t-" \
            "$work" "$here/fuzz/corpus/$t" >"$log" 2>&1
        rc=$?
        rm -rf "$work"
        runs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log")
        if [ "$rc" -eq 0 ]; then
            echo "ok: fuzz $t (${runs:-?} runs)"; p=$((p + 1))
        else
            echo "FAILED: fuzz $t (status $rc, log $log):"
            grep -E '^(==[0-9]+==ERROR|SUMMARY)|runtime error|check failed|^artifact_prefix|Test unit written' "$log"
            f=$((f + 1))
        fi
    done
    echo "fuzz: $p passed, $f failed"
    passed=$((passed + p)); failed=$((failed + f))
fi

# A SANITIZE build: LeakSanitizer needs /proc, which a program that exits
# after pivot_root (or in a root without /proc) no longer sees; it then
# fails the program. The unit tests above keep leak checking.
if ! file -L "$KAGO_BIN/cap-drop" | grep -q 'statically linked'; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
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
bats --tap --timing "${files[@]}" 2>&1 | tee "$tap"
count bats "$tap" "${PIPESTATUS[0]}"
slowest "$tap"

# The chain tests a second time with KAGO_EXEC=1: every step a real exec
# instead of the in-process hand-off (DESIGN.md). KAGO_BOTH_WAYS names the
# files (basenames); only those among the files run above are run again.
again=()
for f in "${files[@]}"; do
    for b in ${KAGO_BOTH_WAYS:-chains.bats escape.bats unshare-run.bats mount-layers.bats cap-drop.bats image-layers.bats}; do
        [ "$(basename "$f")" = "$b" ] && again+=("$f")
    done
done
if [ ${#again[@]} -gt 0 ] && [ "${KAGO_EXEC:-0}" != 1 ]; then
    echo "== bats again with KAGO_EXEC=1: ${again[*]##*/}"
    tap="$KAGO_BUILD/bats-exec.tap"
    KAGO_EXEC=1 bats --tap --timing "${again[@]}" 2>&1 | tee "$tap"
    count "bats (KAGO_EXEC=1)" "$tap" "${PIPESTATUS[0]}"
fi

# The torture test (issue 17): the whole chain killed with SIGKILL at random
# KAGO_TORTURE_RUNS times, each followed by a normal run; root, then
# rootless. Each counts as one test, and fails when a normal run failed, a
# killed chain left processes running, or anything is left on the host.
# 20 runs each by default, so that the whole of make check stays well under
# 15 minutes; `make torture RUNS=1000` is the long run.
torture_default=0
[ $# -eq 0 ] && torture_default=1
if [ "${KAGO_TORTURE:-$torture_default}" = 1 ]; then
    runs=${KAGO_TORTURE_RUNS:-20}
    echo "== torture ($runs runs each)"
    for mode in root rootless; do
        args=(--runs "$runs")
        [ "$mode" = rootless ] && args+=(--rootless)
        "$here/torture.sh" "${args[@]}" 2>&1
        case $? in
            0) passed=$((passed + 1)) ;;
            77) skipped=$((skipped + 1)) ;;
            *) echo "FAILED: torture $mode (tests/torture.sh ${args[*]})"; failed=$((failed + 1)) ;;
        esac
    done
fi

# The cgroup suite again, as root in a VM booted in pure cgroup v2 mode
# (tests/vm/README.md): tests/vm/smoke.bats, then KAGO_VM_BATS. The phase
# runs when no bats files were named, or when KAGO_VM=1; KAGO_VM=0 skips it.
vm_default=0
[ $# -eq 0 ] && vm_default=1
if [ "${KAGO_VM:-$vm_default}" = 1 ]; then
    echo "== bats in a cgroup v2 VM"
    vm_start=$(date +%s)
    vm_files=("$here/vm/smoke.bats")
    for f in ${KAGO_VM_BATS:-tests/bats/cg-limit.bats tests/bats/oci.bats}; do
        case "$f" in /*) ;; *) f="$top/$f" ;; esac
        if [ -e "$f" ]; then
            vm_files+=("$f")
        else
            echo "SKIPPED: bats in a cgroup v2 VM: $f does not exist"; skipped=$((skipped + 1))
        fi
    done
    tap="$KAGO_BUILD/vm-bats.tap"
    "$here/vm/run-bats.sh" "${vm_files[@]}" | tee "$tap"
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 77 ]; then
        echo "SKIPPED: bats in a cgroup v2 VM: $(sed -n 's/^ok 1 .* # skip //p' "$tap")"
        rc=0
    fi
    count "vm ($(($(date +%s) - vm_start)) s)" "$tap" "$rc"
fi

summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
