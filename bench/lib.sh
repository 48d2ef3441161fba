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
