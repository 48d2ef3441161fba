#!/bin/bash
# bench/pack-steps.sh FILE [RUNS]: where a warm run of the packed FILE spends
# its time. Runs it RUNS times (default 50) as nobody with KAGO_TIMES=1 (the
# runner's step timestamps, lib/core/times.hpp) and prints, for each step,
# the time since the step before it: the minimum (what the machine can do)
# and the median (what it did, with the other load of the machine).
# Run as root; FILE must be readable by nobody, and its cache is kept in a
# directory of its own under /dev/shm (the first run fills it).
set -u
file=${1:?usage: bench/pack-steps.sh FILE [RUNS]}
runs=${2:-50}
cache=$(mktemp -d /dev/shm/kago-bench-steps.XXXXXX)
trap 'rm -rf "$cache"' EXIT
chown 65534 "$cache"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$cache" "$@"; }
nobody "$file" --kago-cache "$cache/c" /bin/true >/dev/null 2>&1
for ((i = 1; i <= runs; i++)); do
    nobody env KAGO_TIMES=1 "$file" --kago-cache "$cache/c" /bin/true 2>&1 >/dev/null |
        awk -v run="$i" '$1 == "kago-times:" { t = $3; $1 = $2 = $3 = ""; sub(/^ +/, ""); print run "\t" t "\t" $0 }'
done | python3 -c '
import collections, statistics, sys
runs = collections.defaultdict(dict)
for line in sys.stdin:
    run, t, step = line.rstrip("\n").split("\t")
    runs[run][step] = int(t)
# Each step in the order of its median time, and its distance from the one before.
steps = sorted({s for r in runs.values() for s in r}, key=lambda s: statistics.median(r[s] for r in runs.values() if s in r))
print("| step | min µs | median µs |")
print("|---|---|---|")
prev = None
for s in steps:
    if prev is not None:
        d = [r[s] - r[prev] for r in runs.values() if s in r and prev in r]
        print("| %s → %s | %d | %d |" % (prev, s, min(d), statistics.median(d)))
    prev = s
tot = [r[prev] for r in runs.values() if prev in r]
print("| total (%d runs) | %d | %d |" % (len(tot), min(tot), statistics.median(tot)))
'
