#!/bin/bash
# bench/versus.sh OLD_BIN NEW_BIN ROOTFS: what a change costs at start-up.
# Runs the same chains from two builds of kago (two bin/ directories, e.g.
# a worktree of an older commit and this one) in paired hyperfine rounds:
# each round runs OLD and NEW of one chain in one invocation, the order
# reversed every other round, so that the machine's drift hits both alike.
# Prints, per chain, the median of each round's difference NEW - OLD.
#
#   git worktree add --detach /tmp/old COMMIT && make -C /tmp/old all
#   bench/versus.sh /tmp/old/bin bin build/rootfs-busybox
#
#   RUNS=200 ROUNDS=5   per round, and how many rounds (defaults)
#
# Runs as root, in a private mount namespace with a tmpfs /run (as
# bench/start.sh does), so that state files cost the same for both.
set -euo pipefail

OLD=${1:?usage: bench/versus.sh OLD_BIN NEW_BIN ROOTFS}
NEW=${2:?usage: bench/versus.sh OLD_BIN NEW_BIN ROOTFS}
ROOTFS=${3:?usage: bench/versus.sh OLD_BIN NEW_BIN ROOTFS}
OLD=$(cd "$OLD" && pwd) NEW=$(cd "$NEW" && pwd) ROOTFS=$(cd "$ROOTFS" && pwd)
RUNS=${RUNS:-200}
ROUNDS=${ROUNDS:-5}

. "$(dirname "$0")/lib.sh"
bench_private "$0" "$@"
bench_need hyperfine jq
bench_tmp versus

# The chains, with B standing for the bin directory. hyperfine runs them
# without a shell (-N): words split on spaces, no quotes.
chains=(
    "B/unshare-run --pid --mount --uts --ipc --net -- /bin/true"
    "B/unshare-run --pid --mount --uts --ipc --net -- B/mount-layers --layer $ROOTFS --tmp-upper --proc --dev --pivot -- /bin/true"
    "B/unshare-run --pid --mount --uts --ipc --net -- B/mount-layers --layer $ROOTFS --tmp-upper --proc --dev --pivot -- B/cap-drop --drop all -- /bin/true"
    "B/unshare-run --pid --mount --uts --ipc --net -- B/mount-layers --layer $ROOTFS --tmp-upper --proc --dev --pivot -- B/cap-drop --seccomp default -- /bin/true"
)
names=("unshare-run" "+ mount-layers" "+ cap-drop --drop all" "+ cap-drop --seccomp default")

printf '%-30s %10s %10s %s\n' chain "old ms" "new - old" "(rounds)"
for i in "${!chains[@]}"; do
    old=${chains[$i]//B\//$OLD/} new=${chains[$i]//B\//$NEW/}
    for c in "$old" "$new"; do
        $c >/dev/null 2>&1 || { echo "bench: '$c' does not run here" >&2; exit 1; }
    done
    diffs=() olds=()
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then
            hyperfine -N --style none --warmup 10 --runs "$RUNS" --export-json "$tmp/r.json" \
                -n old "$old" -n new "$new" >/dev/null 2>&1
        else
            hyperfine -N --style none --warmup 10 --runs "$RUNS" --export-json "$tmp/r.json" \
                -n new "$new" -n old "$old" >/dev/null 2>&1
        fi
        diffs+=("$(jq -r '[.results[] | {(.command): .median}] | add | (.new - .old) * 1000' "$tmp/r.json")")
        olds+=("$(jq -r '.results[] | select(.command == "old") | .median * 1000' "$tmp/r.json")")
    done
    med() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    printf '%-30s %10.3f %+10.3f (%s)\n' "${names[$i]}" "$(med "${olds[@]}")" "$(med "${diffs[@]}")" \
        "$(printf '%+.2f ' "${diffs[@]}")"
done
