#!/bin/bash
# bench/pack-steps.sh FILE [RUNS]: where a warm run of the packed FILE spends
# its time. Runs it RUNS times (default 50) as nobody with KAGO_TIMES=1 (the
# runner's step timestamps, lib/core/times.hpp) and prints each step's time
# since the runner's main: the minimum (what the machine can do) and the
# median (what it did, with the other load of the machine).
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
# The runner, its init, its network helper and the command run side by
# side: each step is shown as its time since main in the runner (the
# minimum and the median over the runs), in the order of the medians.
steps = sorted({s for r in runs.values() for s in r}, key=lambda s: statistics.median(r[s] for r in runs.values() if s in r))
print("| step | since main, min µs | since main, median µs |")
print("|---|---|---|")
for s in steps:
    d = [r[s] for r in runs.values() if s in r]
    print("| %s | %d | %d |" % (s, min(d), statistics.median(d)))
print("| (%d runs) | | |" % len(runs))
'
