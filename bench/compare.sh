#!/bin/bash
# bench/compare.sh ROOTFS [MINCS_DIR]: the same container, started by kago,
# by MINCS, by bubblewrap and by crun, in ONE hyperfine run; prints the
# medians as the Markdown table in README.md, with the date and the machine.
#
# The container: ROOTFS (a busybox rootfs) as a read-only root or an
# overlay under a tmpfs, new pid, mount, uts and ipc namespaces, a fresh
# /proc, running /bin/true. MINCS_DIR is a checkout of
# https://github.com/mhiramat/mincs (its row is skipped without it).
# Runs as root, in a private mount namespace where /sys/fs/cgroup/unified
# is hidden, because crun 1.8 refuses this machine's hybrid cgroup layout.
set -euo pipefail
ROOTFS=$(cd "${1:?usage: bench/compare.sh ROOTFS [MINCS_DIR]}" && pwd)
MINCS=${2:-}
RUNS=${RUNS:-100}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/lib.sh"
bench_private "$0" "$@"
bench_hide_unified
bench_need hyperfine jq
bench_tmp compare

names=() cmds=()
add() {
    if bash -c "$2" >/dev/null 2>&1; then names+=("$1"); cmds+=("$2")
    else echo "compare: skipped $1: it does not run here" >&2; fi
}
add "kago chain (unshare-run + mount-layers)" \
    "unshare-run --pid --mount --uts --ipc -- mount-layers --layer $ROOTFS --tmp-upper --proc --pivot -- /bin/true"
add "kago examples/minc -r" "$top/examples/minc -r $ROOTFS /bin/true"
[ -n "$MINCS" ] && add "MINCS minc -r" "$MINCS/minc -r $ROOTFS /bin/true"
add "bwrap" "bwrap --unshare-pid --unshare-uts --unshare-ipc --ro-bind $ROOTFS / --proc /proc --tmpfs /tmp /bin/true"
# /dev is a tmpfs: without it crun makes its device nodes in ROOTFS itself.
mkdir -p "$tmp/bundle"
cat >"$tmp/bundle/config.json" <<J
{ "ociVersion": "1.0.2",
  "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/bin/true"], "cwd": "/"},
  "root": {"path": "$ROOTFS", "readonly": true},
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
             {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
  "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]} }
J
command -v crun >/dev/null && add crun "crun run -b $tmp/bundle kago-compare-\$\$\$RANDOM"

args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine --style basic --warmup 5 --runs "$RUNS" --export-json "$tmp/r.json" "${args[@]}" >&2
bwrap=$(jq -r '.results[] | select(.command == "bwrap") | .median' "$tmp/r.json")
echo "$(date -u +%Y-%m-%d), $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r), $RUNS runs, medians:"
echo
echo "| start and stop a container running /bin/true | median | x bwrap |"
echo "|---|---:|---:|"
jq -r --argjson b "$bwrap" '.results[] | "| \(.command) | \(.median * 1000 * 10 | round / 10) ms | \(.median / $b * 100 | round / 100) |"' "$tmp/r.json"
