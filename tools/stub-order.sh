#!/bin/sh
# tools/stub-order.sh FILE [RUNS]: add to mk/stub.order the functions of the
# packed runner (lib/pack/stub) that a warm run of the packed FILE takes,
# for lld's --symbol-ordering-file (mk/pack-selfexec.mk). Linked together
# they take a few 64 KiB fault-around windows of text instead of most of
# the stub's 1.2 MB; the runner pays each window it touches with a fault.
#
# FILE must have been packed by this tree's bin/pack-selfexec (its stub is
# build/pack/kago-stub, whose unstripped link, kago-stub.full, names the
# addresses) and be readable by nobody. The runs are rootless (nobody,
# cache in /dev/shm), sampled by perf: cpu-clock over RUNS runs (300),
# then every page fault of a few runs, whose text addresses name the
# functions too short to be sampled; the ifunc resolvers and static
# constructors that every start runs are added by name. Names already in
# mk/stub.order are kept; run it again after a relink until the faults
# stay put, and commit the result. Run as root after `make`.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
file=${1:?usage: tools/stub-order.sh FILE [RUNS]}
runs=${2:-300}
full=$top/build/pack/kago-stub.full
work=$(mktemp -d /dev/shm/kago-stub-order.XXXXXX)
trap 'rm -rf "$work"' EXIT
chown 65534 "$work"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" "$@"; }
nobody "$file" --kago-cache "$work/c" /bin/true >/dev/null 2>&1
cat >"$work/loop.sh" <<LOOP
i=0
while [ \$i -lt $runs ]; do "$file" --kago-cache "$work/c" /bin/true; i=\$((i + 1)); done
LOOP
nobody perf record -q -e cpu-clock:u -F 30000 -o "$work/cpu.data" -- sh "$work/loop.sh" >/dev/null 2>&1
for i in 1 2 3 4 5; do
    nobody perf record -q -e page-faults -c 1 -d -o "$work/pf$i.data" -- "$file" --kago-cache "$work/c" /bin/true >/dev/null 2>&1
done
name=$(basename "$file")
{
    perf script -f -i "$work/cpu.data" -F comm,ip,dso 2>/dev/null | awk -v n="$name" 'index($NF, n) {print $2}'
    # a fault on text: its address is the instruction's own
    for i in 1 2 3 4 5; do
        perf script -f -i "$work/pf$i.data" -F ip,addr,dso 2>/dev/null | awk -v n="$name" 'index($0, n) && $1 == $2 {print $1}'
    done
} >"$work/ips"
nm -S "$full" | awk '$3 ~ /^[tTwW]$/ {print $1, $2, $4}' | sort >"$work/syms"
python3 - "$work/syms" "$work/ips" >"$work/names" <<'PY'
import bisect, sys
syms = [(int(a, 16), int(s, 16), n) for a, s, n in (l.split() for l in open(sys.argv[1]))]
syms.sort()
starts = [s[0] for s in syms]
seen = set()
for l in open(sys.argv[2]):
    ip = int(l, 16)
    i = bisect.bisect_right(starts, ip) - 1
    if i >= 0 and ip < syms[i][0] + max(syms[i][1], 1):
        seen.add(syms[i][2])
for s in syms:
    if s[2].endswith("_ifunc") or s[2].startswith("_GLOBAL__sub_I_"):
        seen.add(s[2])
print("\n".join(sorted(seen)))
PY
# A static binary resolves every ifunc at each start (its resolver is the
# section the ifunc symbol names).
nm "$full" | awk '$2 == "i" {print $3}' >>"$work/names"
cat "$work/names" "$top/mk/stub.order" | grep -v '^$' | LC_ALL=C sort -u >"$work/order"
mv "$work/order" "$top/mk/stub.order"
