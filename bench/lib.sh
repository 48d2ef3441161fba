# bench/lib.sh: what the start-up benchmarks share. Source it after `set -e`.

# bench_private "$0" "$@": re-run the script in a private mount namespace,
# where /run is a tmpfs (as on the hosts containers run on; here it may be
# the root file system, where each state file costs a journal write), the
# same for every row.
bench_private() {
    if [ -z "${KAGO_BENCH_INNER:-}" ]; then
        exec unshare --mount --propagation private env KAGO_BENCH_INNER=1 "$@"
    fi
    if ! findmnt -n -o FSTYPE --target /run | grep -qx tmpfs; then
        mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
    fi
}

# bench_hide_unified: crun 1.8 refuses this machine's hybrid cgroup layout
# unless /sys/fs/cgroup/unified is hidden (in the private namespace only).
bench_hide_unified() {
    if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
        umount /sys/fs/cgroup/unified || echo "bench: could not hide /sys/fs/cgroup/unified; crun may refuse" >&2
    fi
}

# bench_need TOOL...: stop with a message when a tool is missing.
bench_need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || { echo "bench: $t is not installed (make deps)" >&2; exit 1; }
    done
}

# bench_tmp NAME: a temporary directory in $tmp, removed on exit.
bench_tmp() {
    tmp=$(mktemp -d "/tmp/kago-$1.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
}

# bench_paired ROUNDS RUNS WITH WITHOUT [PREPARE]: how much longer the
# command WITH takes than WITHOUT, as the median of ROUNDS short hyperfine
# rounds that run both (the order reversed every other round; PREPARE
# before each run), in ms, with the range of the rounds: two medians taken
# minutes apart drift by more than such a difference on this kind of
# machine. Needs $tmp.
bench_paired() {
    local rounds=$1 runs=$2 with=$3 without=$4 prepare=${5:-} r first second diffs=()
    for ((r = 1; r <= rounds; r++)); do
        if [ $((r % 2)) = 1 ]; then first=with second=without; else first=without second=with; fi
        local c1=$with c2=$without
        [ $first = without ] && c1=$without c2=$with
        hyperfine -N --style none --warmup 3 --runs "$runs" ${prepare:+--prepare "$prepare"} --export-json "$tmp/paired-$r.json" \
            -n "$first" "$c1" -n "$second" "$c2" >/dev/null 2>&1 || return 1
        diffs+=("$(jq -r '[.results[] | {(.command): .median}] | add | (.with - .without) * 1000' "$tmp/paired-$r.json")")
    done
    printf '%s\n' "${diffs[@]}" | sort -g | awk '{ d[NR] = $1 } END {
        printf "%+.2f ms (median of %d rounds, from %+.2f to %+.2f)\n", d[int((NR + 1) / 2)], NR, d[1], d[NR] }'
}

# bench_ratio ROUNDS WITH WITHOUT [PREPARE]: how many times as long the
# command WITH takes as WITHOUT, as the median of ROUNDS rounds that run
# each once, one right after the other (the order reversed every other
# round; PREPARE before each run), with the range of the rounds. For
# commands of a few hundred ms whose medians, taken in separate hyperfine
# batches, drift apart with what the machine does meanwhile (writeback,
# page-cache reclaim).
bench_ratio() {
    local rounds=$1 with=$2 without=$3 prepare=${4:-} r c t0 t1 tw tn ratios=()
    for ((r = 1; r <= rounds; r++)); do
        for c in a b; do
            [ $((r % 2)) = 0 ] && { [ $c = a ] && c=b || c=a; }
            [ -n "$prepare" ] && bash -c "$prepare" >/dev/null 2>&1
            t0=$(date +%s%N)
            if [ $c = a ]; then bash -c "$with" >/dev/null 2>&1 || return 1; else bash -c "$without" >/dev/null 2>&1 || return 1; fi
            t1=$(date +%s%N)
            [ $c = a ] && tw=$((t1 - t0)) || tn=$((t1 - t0))
        done
        ratios+=("$(echo "$tw / $tn" | bc -l)")
    done
    printf '%s\n' "${ratios[@]}" | sort -g | awk '{ d[NR] = $1 } END {
        printf "%.2fx (median of %d alternating rounds, from %.2f to %.2f)\n", d[int((NR + 1) / 2)], NR, d[1], d[NR] }'
}
