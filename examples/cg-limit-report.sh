#!/bin/sh
# cg-limit-report.sh: three small runs, each tripping one limit, and what
# cg-limit reports about them. Needs root (or a delegated cgroup v2 subtree)
# and a 2-CPU machine for nothing more than the CPU run to be interesting.
#
# 1. memory: a shell that keeps growing a string under --memory 16M is
#    OOM-killed: "the container was killed by the memory limit (16 MiB)".
# 2. pids: a fork loop under --pids 8: "N fork attempts refused".
# 3. cpu: a busy loop for 1 s under --cpus 0.2: "throttled ... in N of M
#    periods", and the whole record as JSON from --status-fd.
set -u
export KAGO_NAME=${KAGO_NAME:-report}

echo "== memory: --memory 16M, a string that doubles until it is killed"
cg-limit --memory 16M --memory-swap 0 -- sh -c 's=x; while :; do s="$s$s"; done'
echo "   exit status $?"

echo "== pids: --pids 8, 20 background sleeps"
cg-limit --pids 8 -- sh -c 'i=0; while [ $i -lt 20 ]; do sleep 1 & i=$((i + 1)); done 2>/dev/null; wait'
echo "   exit status $?"

echo "== cpu: --cpus 0.2, a busy loop for one second; --status-fd 3 to a pipe"
cg-limit --cpus 0.2 --status-fd 3 -- sh -c 'timeout 1 sh -c "while :; do :; done"; true' 3>&1 >/dev/null
echo "   exit status $?"
