#!/bin/bash
# bench/start.sh ROOTFS: how long a container takes to start and stop, kago
# against the tools people use instead, in ONE hyperfine run. Prints each
# median, its ratio to bwrap's, and the peak RSS of each command.
#
#   make bench                      # builds, makes the busybox rootfs, runs this
#   RUNS=500 bench/start.sh ROOTFS  # more runs
#
# The target for unshare-run: a median at most 0.5x bwrap's, peak RSS under
# 2 MiB. Runs as root. crun 1.8 refuses this machine's hybrid cgroup layout
# unless /sys/fs/cgroup/unified is hidden, so the whole benchmark runs in a
# private mount namespace where it is unmounted (the same for every row).
set -euo pipefail

ROOTFS=${1:?usage: bench/start.sh ROOTFS}
ROOTFS=$(cd "$ROOTFS" && pwd)
RUNS=${RUNS:-300}
WARMUP=${WARMUP:-30}

. "$(dirname "$0")/lib.sh"
bench_private "$0" "$@"
bench_hide_unified
bench_need hyperfine jq
bench_tmp bench

# The rows: add NAME COMMAND. hyperfine runs them without a shell (-N), so a
# COMMAND is split on spaces and cannot use quotes, pipes or redirections.
# The first row named "bwrap" is the reference for the ratios.
names=() cmds=()
add() {
    if $2 >/dev/null 2>&1; then
        names+=("$1")
        cmds+=("$2")
    else
        echo "bench: skipped $1: '$2' does not run here" >&2
    fi
}

# --- unshare-run and the tools people use instead ----------------------------
add unshare-run "$(command -v unshare-run) --pid --mount --uts --ipc --net -- /bin/true"
add unshare "unshare --fork --pid --mount --uts --ipc --net /bin/true"
add bwrap "bwrap --unshare-all --bind / / /bin/true"
# The kernel's share: bench/floor.c does unshare-run's default work and no
# more (make bench builds it and sets KAGO_FLOOR).
[ -n "${KAGO_FLOOR:-}" ] && [ -x "$KAGO_FLOOR" ] && add "floor (bench/floor.c)" "$KAGO_FLOOR /bin/true"

# crun and runc with the same namespaces: a minimal OCI bundle on ROOTFS
# (they run the rootfs's /bin/true, with /proc, as runc needs it, and a
# tmpfs on /dev: without one they create device nodes in ROOTFS itself).
mkdir -p "$tmp/bundle"
cat >"$tmp/bundle/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/bin/true"],
              "env": ["PATH=/bin:/usr/bin"], "cwd": "/"},
  "root": {"path": "$ROOTFS", "readonly": true},
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
             {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
  "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"},
                           {"type": "ipc"}, {"type": "network"}]}
}
EOF
command -v crun >/dev/null && add crun "crun run -b $tmp/bundle kago-bench-crun-$$"
command -v runc >/dev/null && add runc "runc run -b $tmp/bundle kago-bench-runc-$$"

# --- rows of the other kago programs ------------------------------------------
# mount-layers and net-setup add their rows here, with add NAME COMMAND, e.g.
#   add "unshare-run+mount-layers" "unshare-run --pid --mount -- mount-layers --layer $ROOTFS ... -- /bin/true"
# (add below this line)

# mount-layers: the same container as bwrap builds from ROOTFS (new /proc and
# /dev, the root pivoted into), with an overlay and a tmpfs upper on top.
# Target: a median at most 0.6x the "bwrap+rootfs" row.
add "bwrap+rootfs" "bwrap --unshare-all --bind $ROOTFS / --proc /proc --dev /dev /bin/true"
add "unshare-run+mount-layers" "$(command -v unshare-run) --pid --mount --uts --ipc --net -- mount-layers --layer $ROOTFS --tmp-upper --proc --dev --pivot -- /bin/true"

# The full chain (issue 19): one container as bwrap+rootfs builds it, with
# every capability dropped; its programs hand off in process. The same with
# the built-in seccomp profile; and with KAGO_EXEC=1 (every step a real
# exec; env(1) adds its own exec to that row). The floor does the same
# kernel work in one process (bench/floor.c --root).
# Targets: chain at most 0.7x bwrap+rootfs, 0.35x crun, 1.35x the floor;
# --seccomp default adds at most 0.2 ms; peak RSS under 2 MiB.
chain="$(command -v unshare-run) --pid --mount --uts --ipc --net -- mount-layers --layer $ROOTFS --tmp-upper --proc --dev --pivot -- cap-drop --drop all"
add chain "$chain -- /bin/true"
add "chain --seccomp default" "${chain/--drop all/--drop all --seccomp default} -- /bin/true"
add "chain KAGO_EXEC=1 (env)" "env KAGO_EXEC=1 $chain -- /bin/true"
[ -n "${KAGO_FLOOR:-}" ] && [ -x "$KAGO_FLOOR" ] && add "floor --root" "$KAGO_FLOOR --root $ROOTFS /bin/true"

# net-setup: a veth on a bridge of its own, an address lease and a NAT rule,
# against the same chain with an empty network namespace from unshare-run.
# Target: at most 3 ms added to the median. A long-running container keeps
# the bridge and table kago (as on a host with containers running), so that
# a run does not create and delete them.
if [ "${BENCH_NET:-1}" = 1 ] && command -v net-setup >/dev/null; then
    net-setup --veth --nat --bridge kgbench0 --subnet 10.250.250.0/24 -- sleep 100000 >/dev/null 2>&1 &
    bench_keeper=$!
    trap 'kill $bench_keeper 2>/dev/null; wait $bench_keeper 2>/dev/null || true; rm -rf "$tmp"' EXIT
    sleep 0.5
    add "net-setup+unshare-run" "$(command -v net-setup) --veth --nat --bridge kgbench0 --subnet 10.250.250.0/24 -- $(command -v unshare-run) --pid --mount --uts --ipc -- /bin/true"
fi

# --- one hyperfine run ------------------------------------------------------------
args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$tmp/results.json" "${args[@]}" >&2

# Peak RSS: the largest of the command's processes (wait4's ru_maxrss), the
# median of 5 runs, from /usr/bin/time.
peak_rss() {
    local i
    for i in 1 2 3 4 5; do
        /usr/bin/time -f %M $1 2>&1 >/dev/null | tail -1
    done | sort -n | sed -n 3p
}

bwrap_median=$(jq -r '.results[] | select(.command == "bwrap") | .median' "$tmp/results.json")
# CPU ms: the mean user + system time of the command and its children, which
# a shared machine's load inflates less than the wall time.
printf '\n%-28s %12s %10s %12s %8s\n' command "median ms" "x bwrap" "peak RSS KiB" "CPU ms"
for i in "${!names[@]}"; do
    median=$(jq -r --arg n "${names[$i]}" '.results[] | select(.command == $n) | .median' "$tmp/results.json")
    ratio=-
    [ -n "$bwrap_median" ] && ratio=$(awk -v a="$median" -v b="$bwrap_median" 'BEGIN { printf "%.2f", a / b }')
    cpu=$(jq -r --arg n "${names[$i]}" '.results[] | select(.command == $n) | (.user + .system) * 1000' "$tmp/results.json")
    printf '%-28s %12.3f %10s %12s %8.2f\n' "${names[$i]}" "$(awk -v m="$median" 'BEGIN { print m * 1000 }')" \
        "$ratio" "$(peak_rss "${cmds[$i]}")" "$cpu"
done
echo
echo "target: unshare-run at most 0.50x bwrap, peak RSS under 2048 KiB"
ml=$(jq -r '.results[] | select(.command == "unshare-run+mount-layers") | .median' "$tmp/results.json")
bw=$(jq -r '.results[] | select(.command == "bwrap+rootfs") | .median' "$tmp/results.json")
if [ -n "$ml" ] && [ -n "$bw" ]; then
    awk -v a="$ml" -v b="$bw" 'BEGIN { printf "target: unshare-run+mount-layers at most 0.60x bwrap+rootfs: %.2fx\n", a / b }'
fi
median_of() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median' "$tmp/results.json"; }
ratio_line() {  # LABEL ROW REFERENCE TARGET
    local a b
    a=$(median_of "$2") b=$(median_of "$3")
    [ -n "$a" ] && [ -n "$b" ] &&
        awk -v a="$a" -v b="$b" -v l="$1" -v t="$4" 'BEGIN { printf "target: %s at most %sx: %.2fx (%s)\n", l, t, a / b, a / b <= t ? "met" : "MISSED" }'
    return 0
}
ratio_line "chain / bwrap+rootfs" chain "bwrap+rootfs" 0.70
ratio_line "chain / crun" chain crun 0.35
ratio_line "chain / floor --root" chain "floor --root" 1.35
# The floor's own ratios: a target below them asks for less kernel work
# than the container needs, not for a faster kago.
fl=$(median_of "floor --root")
for ref in "bwrap+rootfs" crun; do
    r=$(median_of "$ref")
    [ -n "$fl" ] && [ -n "$r" ] && awk -v a="$fl" -v b="$r" -v n="$ref" 'BEGIN { printf "the floor itself: floor --root / %s: %.2fx\n", n, a / b }'
done
ch=$(median_of chain) ex=$(median_of "chain KAGO_EXEC=1 (env)")
[ -n "$ex" ] && [ -n "$ch" ] && awk -v a="$ex" -v b="$ch" 'BEGIN { printf "in-process hand-off saves %.2f ms against KAGO_EXEC=1 (that row includes env(1)'"'"'s exec)\n", (a - b) * 1000 }'
# A cost added by one option (seccomp, net-setup) is the difference of two
# rows' medians, and two medians measured far apart in time drift with this
# kind of machine (each run leaves kernel work behind, a network namespace
# to clean up, that the later runs meet). So it comes from paired rounds
# instead: each round runs both rows in one hyperfine invocation (the order
# reversed every other round), and the median of the rounds' differences is
# reported with each round's.
paired() {  # PREPARE RUNS ROW ROW_WITHOUT [ROUNDS]: prints "+D ms (median of N rounds, ...)"
    bench_paired "${5:-3}" "$2" "$(pair_cmd with "$3" "$4")" "$(pair_cmd without "$3" "$4")" "$1"
}
pair_cmd() {  # with|without ROW ROW_WITHOUT
    local want=$2
    [ "$1" = without ] && want=$3
    echo "${cmds[$(printf '%s\n' "${names[@]}" | grep -nx -- "$want" | cut -d: -f1) - 1]}"
}
if printf '%s\n' "${names[@]}" | grep -qx 'chain --seccomp default'; then
    # Many short rounds: a filter's cost (about 0.1 ms) is small against
    # the drift of even a few hundred runs.
    d=$(paired '' 15 "chain --seccomp default" chain 41)
    awk -v d="${d%% *}" -v all="$d" 'BEGIN { printf "target: --seccomp default adds at most 0.2 ms: %s (%s)\n", all, d + 0 <= 0.2 ? "met" : "MISSED" }'
fi
if printf '%s\n' "${names[@]}" | grep -qx 'net-setup+unshare-run'; then
    # Back to back, each run meets the kernel work the previous one left
    # (the veth deletion and the nftables socket release, RCU grace periods
    # that hold nf_tables' commit mutex); 100 ms apart, it does not.
    echo "target: net-setup --veth --nat adds at most 3 ms to unshare-run --net: $(paired '' "$RUNS" net-setup+unshare-run unshare-run)"
    echo "net-setup --veth --nat, starts 100 ms apart: $(paired 'sleep 0.1' "$(( RUNS / 3 ))" net-setup+unshare-run unshare-run) added"
fi
