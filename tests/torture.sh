#!/bin/bash
# The torture test behind `make torture` (issue 17): the whole chain is
# started RUNS times, each time killed with SIGKILL somewhere, and each time
# followed by a normal run of the same name, which must succeed. Afterwards
# nothing of the test may remain on the host: mounts, links, netns files,
# nftables rules, cgroups, state directories, leases, processes.
#
#   tests/torture.sh [--rootless] [--runs N] [--max-time S] [--kill WHO]
#                    [--delay MS] [--seed N] [--keep]
#
#   --rootless   as the unprivileged user 65534 (or as yourself when not
#                root): the chain without cg-limit, with net-setup
#                --user-mode. As root it runs in a private network and
#                mount namespace with a /dev/net/tun of its own, so that
#                pasta can start; published ports are on its loopback.
#   --runs N     kill runs (default TORTURE_RUNS, else 50)
#   --max-time S start no run after S seconds: the summary then says how
#                many runs were made (also on SIGUSR1: the run under way
#                ends, then the summary)
#   --kill WHO   always kill WHO instead of a random choice: group (the
#                whole process group), cg-limit, net-setup, unshare-run,
#                init (unshare-run's PID 1), payload (anything inside the
#                container: mount-layers, cap-drop, sh, sleep), any
#   --delay MS   always wait MS milliseconds before the kill (default: a
#                random delay of 0-300 ms)
#   --seed N     the seed of bash's RANDOM (printed, to repeat the choices)
#   --keep       leave what the runs left behind, for inspection, instead
#                of removing it after the report
#
# The root chain is
#   cg-limit --memory 64M --pids 64 --
#   net-setup --veth --bridge kgtort0 --subnet 10.247.0.0/24 --nat
#             --publish 127.0.0.1:471NN:80 --
#   unshare-run --pid --mount --uts --ipc --hostname tortN --
#   mount-layers --layer ROOTFS --tmp-upper --proc --dev --pivot --
#   cap-drop --seccomp default -- sh -c 'sleep 1; ...'
# with KAGO_NAME torture1..torture4 (TORTURE_NAMES names, at random), each
# chain in a session of its own. The kill goes to the whole process group,
# or to one process of the session chosen at random among those alive at
# that moment. Names, the bridge, the subnet and the ports are the test's
# own: no other test uses kgtort0, 10.247.0.0/16 or ports 47100-47299.
#
# Findings, each with the kill case that caused it:
#   - a normal run that fails (its status and its stderr);
#   - orphans: processes of a killed chain still running 0.5 s after the
#     chain's first process ended;
#   - a killed chain that does not end within its payload's time + 10 s;
#   - leftovers: each object still present at the end, with the run after
#     which it was first seen (and objects that a later run collected,
#     which the contract allows, are counted as collected).
# A log of every run goes to $KAGO_BUILD/torture[-rootless].log, with the
# time of each part of the run: start to kill (the random delay), kill to
# the end of the chain's first process, to no process of it left, the
# normal run, the inventory.
#
# Exit status: 0 nothing found, 1 something found (the summary names it),
# 77 skipped (the reason is printed), 2 bad usage.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
: "${KAGO_BIN:=$top/bin}" "${KAGO_BUILD:=$top/build}"
: "${KAGO_ROOTFS:=$KAGO_BUILD/rootfs-busybox}"
export PATH="$KAGO_BIN:$PATH"
unset KAGO_NAME KAGO_STATE_DIR KAGO_CGROUP KAGO_NETNS KAGO_TRACE KAGO_DRY_RUN KAGO_PIDNS KAGO_USERNS \
    KAGO_READY_FD

rootless=0 runs=${TORTURE_RUNS:-50} kill_who=random delay_fixed="" seed=${TORTURE_SEED:-} keep=0 max_time=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rootless) rootless=1 ;;
        --runs) runs=$2; shift ;;
        --max-time) max_time=$2; shift ;;
        --kill) kill_who=$2; shift ;;
        --delay) delay_fixed=$2; shift ;;
        --seed) seed=$2; shift ;;
        --keep) keep=1 ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "torture: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
case "$kill_who" in
    random|group|cg-limit|net-setup|unshare-run|init|payload|any) ;;
    *) echo "torture: --kill: one of group, cg-limit, net-setup, unshare-run, init, payload, any" >&2; exit 2 ;;
esac
[[ "$runs" =~ ^[0-9]+$ ]] || { echo "torture: --runs: not a number: $runs" >&2; exit 2; }
[[ "$max_time" =~ ^[0-9]+$ ]] || { echo "torture: --max-time: not a number: $max_time" >&2; exit 2; }
[ -z "$seed" ] && seed=$(( $(( ${EPOCHREALTIME/./} * 1000 )) % 1000000 ))
RANDOM=$seed

mode=root
[ "$rootless" = 1 ] && mode=rootless
skip() { echo "SKIPPED: torture ($mode): $*"; exit 77; }

payload_secs=${TORTURE_PAYLOAD_SECS:-2}
nnames=${TORTURE_NAMES:-4}
marker=kago-torture-payload
bridge=kgtort0
if [ "$rootless" = 1 ]; then prefix=torturerl; else prefix=torture; fi

# --- rootless as root: a private network and mount namespace -------------
# Host's /dev/net/tun is root's only, and pasta needs it and a default
# route to copy. Both are given in a namespace of the test's own, whose
# addresses reach nothing; the script runs again inside it.
if [ "$rootless" = 1 ] && [ "$(id -u)" = 0 ] && [ -z "${TORTURE_IN_NS:-}" ]; then
    if ! setpriv --reuid=65534 --regid=65534 --clear-groups -- unshare --user --map-root-user true 2>/dev/null; then
        skip "unprivileged user namespaces are not available on this machine"
    fi
    command -v pasta >/dev/null || command -v slirp4netns >/dev/null ||
        skip "neither pasta nor slirp4netns is installed (make deps)"
    args=(--rootless --runs "$runs" --max-time "$max_time" --kill "$kill_who" --seed "$seed")
    [ -n "$delay_fixed" ] && args+=(--delay "$delay_fixed")
    [ "$keep" = 1 ] && args+=(--keep)
    exec unshare --net --mount --propagation private -- env TORTURE_IN_NS=1 bash -c '
        set -e
        ip link set lo up
        ip link add kgtortu0 type veth peer name kgtortu1
        ip addr add 10.247.1.1/24 dev kgtortu0
        ip link set kgtortu0 up; ip link set kgtortu1 up
        ip route add default via 10.247.1.2
        tun=$(mktemp -u /tmp/kgtort-tun.XXXXXX)
        mknod "$tun" c 10 200; chmod 666 "$tun"
        mount --bind "$tun" /dev/net/tun; rm -f "$tun"
        set +e
        exec "$0" "$@"' "$0" "${args[@]}"
fi

# --- preconditions ---------------------------------------------------------
for p in net-setup unshare-run mount-layers cap-drop; do
    [ -x "$KAGO_BIN/$p" ] || skip "$p is not built ($KAGO_BIN/$p is missing)"
done
if ! file -L "$KAGO_BIN/cap-drop" | grep -q 'statically linked'; then
    skip "a dynamic (SANITIZE) build cannot run kago programs inside the container's root"
fi
if [ ! -e "$KAGO_ROOTFS/bin/busybox" ]; then
    "$here/make-busybox-rootfs.sh" "$KAGO_ROOTFS" >/dev/null || skip "could not build the busybox rootfs"
fi
if [ "$rootless" = 0 ]; then
    [ "$(id -u)" = 0 ] || skip "needs root (make torture ROOTLESS=1 runs the rootless chain)"
    [ -x "$KAGO_BIN/cg-limit" ] || skip "cg-limit is not built"
    command -v nft >/dev/null || skip "nft (package nftables) is needed to list the rules left behind"
    state_root=/run/kago
    as_user=()
else
    if [ "$(id -u)" = 0 ]; then
        as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$PATH" HOME=/tmp)
        uid=65534
    else
        as_user=(env -i PATH="$PATH" HOME="${HOME:-/tmp}" ${XDG_RUNTIME_DIR:+XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR})
        uid=$(id -u)
    fi
    if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ "$(id -u)" != 0 ]; then
        state_root=$XDG_RUNTIME_DIR/kago
    else
        state_root=/tmp/kago-$uid
    fi
    why=$("${as_user[@]}" KAGO_NAME=${prefix}0 net-setup --user-mode -- true 2>&1) ||
        skip "net-setup --user-mode cannot start here: $(echo "$why" | head -1)"
fi

# One torture run at a time on this machine: they share names.
lock=/run/lock/kago-torture-$mode.lock
[ -w /run/lock ] || lock=/tmp/kago-torture-$mode-$(id -u).lock
exec 9>"$lock"
flock -n 9 || { echo "torture: waiting for another torture run ($mode) to end"; flock 9; }

if [ "$rootless" = 1 ]; then log=$KAGO_BUILD/torture-rootless.log; else log=$KAGO_BUILD/torture.log; fi
: >"$log"
note() { echo "$*" >>"$log"; }
# The harness forks as little as it can while it waits: under load every
# process it starts costs milliseconds: times come from bash's own clock
# ($EPOCHREALTIME, in nanoseconds below), and nap S is a sleep that is a
# read with a timeout on a pipe that never gets data.
exec {nap_fd}<> <(:)
nap() { read -r -t "$1" -u "$nap_fd" _ || :; }
ms_since() { echo $(( ($(( ${EPOCHREALTIME/./} * 1000 )) - $1) / 1000000 )); }

# --- the inventory -----------------------------------------------------------
# Every object of the test, one per line, sorted. Processes are those of the
# sessions the test started ($sids), those whose environment names one of the
# test's containers, and the payload (by its marker).
sids=" "
name_re="${prefix}[0-9]"
inventory() {
    {
        awk -v re="/(kago-)?$name_re" '$5 ~ re {print "mount " $5}' /proc/self/mountinfo
        local l
        if [ "$rootless" = 0 ]; then
            # (links are root's only: a rootless run beside a root one
            # would see the root run's bridge)
            for l in /sys/class/net/kg"$prefix"[0-9]* /sys/class/net/"$bridge"; do
                [ -e "$l" ] && echo "link ${l##*/}"
            done
            find /sys/fs/cgroup -mindepth 2 -maxdepth 8 -type d -path "*/kago/${prefix}[0-9]*" 2>/dev/null |
                sed 's/^/cgroup /'
            nft -a list table inet kago 2>/dev/null | awk -v re="comment \"kago $name_re " '
                $1 == "chain" {chain = $2}
                $0 ~ re {sub(/^[ \t]+/, ""); print "nft " chain ": " $0}'
            # (globs, not ls | grep: no process to start)
            for l in /run/netns/kago-"$prefix"[0-9]*; do [ -e "$l" ] && echo "netns ${l##*/}"; done
            for l in /run/kago/leases/"$prefix"[0-9]* /run/kago/leases/"$bridge"@*; do
                [ -e "$l" ] && echo "lease $l"
            done
        fi
        for l in "$state_root/$prefix"[0-9]*; do [ -e "$l" ] && echo "state $l"; done
        processes
    } | sort -u
}
processes() {
    local extra
    extra=$( { grep -lsaE "KAGO_NAME=$name_re" /proc/[0-9]*/environ
               grep -lsaE "kago-torture-payloa[d]|/$name_re/" /proc/[0-9]*/cmdline; } 2>/dev/null |
             cut -d/ -f3 | sort -u | tr '\n' ' ')
    ps -e -o pid=,sid=,stat=,comm= | awk -v sids="$sids" -v extra=" $extra " -v self=$$ '
        $1 != self && $3 !~ /^Z/ && (index(sids, " " $2 " ") || index(extra, " " $1 " ")) {
            print "process " $1 " " $4 " (" $3 ")" }'
}

# Removes what the runs left behind, so that other tests start clean.
remove_leftovers() {
    local pids sid i
    for i in 1 2 3; do
        pids=$(processes | awk '{print $2}')
        [ -z "$pids" ] && break
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null
        sleep 0.2
    done
    if [ "$rootless" = 0 ]; then
        net-setup --gc >/dev/null 2>&1
        local m l c h
        for m in $(awk -v re="/(kago-)?$name_re" '$5 ~ re {print $5}' /proc/self/mountinfo | sort -r); do
            umount -l "$m" 2>/dev/null
        done
        for l in /sys/class/net/kg"$prefix"[0-9]* /sys/class/net/"$bridge"; do
            [ -e "$l" ] && ip link del "${l##*/}" 2>/dev/null
        done
        nft -a list table inet kago 2>/dev/null | awk -v re="comment \"kago $name_re " '
            $1 == "chain" {chain = $2} $0 ~ re {print chain, $NF}' |
            while read -r c h; do nft delete rule inet kago "$c" handle "$h" 2>/dev/null; done
        for c in $(find /sys/fs/cgroup -mindepth 2 -maxdepth 8 -type d -path "*/kago/${prefix}[0-9]*" 2>/dev/null |
                   sort -r); do
            rmdir "$c" 2>/dev/null
        done
        rm -f /run/netns/kago-"$prefix"[0-9]* /run/kago/leases/"$prefix"[0-9]* /run/kago/leases/"$bridge"@*
    fi
    for d in "$state_root/$prefix"[0-9]*; do
        [ -e "$d" ] || continue
        umount -R -l "$d"/* 2>/dev/null
        rm -rf "$d"
    done
}

# --- one chain -----------------------------------------------------------
# start_chain NAME INDEX PAYLOAD: starts the chain in a session of its own;
# $chain is its first process.
start_chain() {
    local name=$1 idx=$2 payload=$3 port
    if [ "$rootless" = 0 ]; then
        port=$((47100 + idx))
        KAGO_NAME=$name setsid cg-limit --memory 64M --pids 64 -- \
            net-setup --veth --bridge "$bridge" --subnet 10.247.0.0/24 --nat --publish "127.0.0.1:$port:80" -- \
            unshare-run --pid --mount --uts --ipc --hostname "tort$idx" -- \
            mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --dev --pivot -- \
            cap-drop --seccomp default -- sh -c "$payload" \
            >"$tmp/out" 2>"$tmp/err" </dev/null &
    else
        port=$((47200 + idx))
        "${as_user[@]}" KAGO_NAME="$name" setsid net-setup --user-mode --publish "127.0.0.1:$port:80" -- \
            unshare-run --user --map-root --pid --mount --uts --ipc --hostname "tort$idx" -- \
            mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --dev --pivot -- \
            cap-drop --seccomp default -- sh -c "$payload" \
            >"$tmp/out" 2>"$tmp/err" </dev/null &
    fi
    chain=$!
    # setpriv and env exec: the chain's first process keeps this pid, and
    # setsid (not a group leader here) makes it the session's leader. Until
    # it has, the session is not there to be listed or killed: wait for it.
    local s i
    for i in $(seq 500); do
        read -r s 2>/dev/null <"/proc/$chain/stat" || break
        s=${s##*) }
        s=${s#* * * }   # state, ppid, pgrp
        [ "${s%% *}" = "$chain" ] && break
        nap 0.001
    done
    sids="$sids$chain "
}

# is_running PID: the process runs (it is not gone, not a zombie).
is_running() {
    local s
    read -r s 2>/dev/null <"/proc/$1/stat" || return 1
    s=${s##*) }
    [ "${s%% *}" != Z ]
}

# wait_chain SECONDS: waits for $chain to end; $status is its exit status,
# or "hung" (then the whole session is killed). bash wakes up as the chain
# ends; a sleep of its own is the deadline.
wait_chain() {
    local dog who
    sleep "$1" &
    dog=$!
    while :; do
        who=
        # (braces: bash's "Killed" notice for the job goes nowhere)
        { wait -n -p who "$chain" "$dog"; } 2>/dev/null
        status=$?
        [ -n "$who" ] && break   # else a trapped signal (SIGUSR1) woke us
    done
    if [ "$who" = "$dog" ]; then
        kill -9 -- "-$chain" 2>/dev/null
        { wait "$chain"; } 2>/dev/null
        status=hung
    else
        # SIGKILL: a dog not yet exec'd is still this shell, and would run
        # its EXIT trap on a SIGTERM.
        kill -9 "$dog" 2>/dev/null
        { wait "$dog"; } 2>/dev/null
    fi
}

# present LINE: whether an object of the inventory is still there, checked
# without starting a process; only processes and links (a dying network
# namespace's veth) go away by themselves, status 2 for the other kinds.
present() {
    local rest=${1#* }
    case "${1%% *}" in
        process) is_running "${rest%% *}" ;;
        link) [ -e "/sys/class/net/$rest" ] ;;
        *) return 2 ;;
    esac
}

# The processes of session $1, as "PID:ROLE" words. The role is the
# program's name; inside the container's PID namespace the init is "init"
# and everything else is payload (mount-layers, cap-drop, sh, sleep).
session_procs() {
    local p files=()
    for p in $(ps -s "$1" -o pid= 2>/dev/null); do files+=("/proc/$p/status"); done
    [ ${#files[@]} -eq 0 ] && return
    awk '
        FNR == 1 { pid = FILENAME; gsub(/[^0-9]/, "", pid) }
        $1 == "Name:" { comm = $2 }
        $1 == "State:" { st = $2 }
        $1 == "NSpid:" && st != "Z" {
            if (NF == 3 && $3 == 1) print pid ":init"
            else if (NF == 3) print pid ":payload(" comm ")"
            else print pid ":" comm
        }' "${files[@]}" 2>/dev/null
}

# --- the runs --------------------------------------------------------------
tmp=$(mktemp -d /tmp/kago-torture.XXXXXX)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

echo "torture ($mode): $runs runs, seed $seed, kill ${kill_who}, delay ${delay_fixed:-0-300} ms; log $log"
note "torture ($mode): $runs runs, seed $seed, kill $kill_who, delay ${delay_fixed:-0-300} ms, $(date -u)"

before=$(inventory)
if [ -n "$before" ]; then
    echo "torture: removing what an earlier torture run left:"
    echo "$before" | sed 's/^/  /'
    remove_leftovers
    sleep 1
    before=$(inventory)
    if [ -n "$before" ]; then
        echo "torture: could not remove (is another torture run active?):"
        echo "$before" | sed 's/^/  /'
        exit 1
    fi
fi

declare -A first_seen      # object -> the run after which it was first seen
declare -a case_of         # run -> its kill case
failures=() orphans=() hangs=() collected=0
declare -A kills
prev=""
start_time=$(date +%s)
done_runs=0 stop=0
trap 'stop=1' USR1
long_payload="sleep $payload_secs; : $marker"
# The normal run checks that its network is there.
if [ "$rootless" = 0 ]; then
    short_payload="ip -4 addr show dev eth0 | grep -q 'inet 10\.247\.0\.' && echo $marker-ok"
else
    short_payload="ip route | grep -q '^default' && echo $marker-ok"
fi

for run in $(seq 1 "$runs"); do
    if [ "$stop" = 1 ] || { [ "$max_time" -gt 0 ] && [ $(( $(date +%s) - start_time )) -ge "$max_time" ]; }; then
        note "stopped before run $run (--max-time $max_time or SIGUSR1)"
        break
    fi
    done_runs=$run
    idx=$(( RANDOM % nnames + 1 ))
    name=$prefix$idx
    if [ -n "$delay_fixed" ]; then delay=$delay_fixed; else delay=$(( RANDOM % 301 )); fi
    r=$RANDOM
    t_run=$(( ${EPOCHREALTIME/./} * 1000 ))
    start_chain "$name" "$idx" "$long_payload"
    printf -v d '%d.%03d' $((delay / 1000)) $((delay % 1000))
    nap "$d"

    # The kill.
    procs=$(session_procs "$chain")
    alive=$(echo "$procs" | sed 's/^[0-9]*://' | tr '\n' ' ')
    who=$kill_who
    n=$(echo "$procs" | grep -c .)
    [ "$who" = any ] && [ "$n" -eq 0 ] && who=group
    if [ "$who" = random ]; then
        if [ "$n" -eq 0 ] || [ $(( r % (n + 1) )) -eq "$n" ]; then who=group; else who=any; fi
    fi
    if [ "$who" = group ]; then
        target=group
        [ "$n" -eq 0 ] && target="group (nothing alive)"
        kill -9 -- "-$chain" 2>/dev/null
    else
        case "$who" in
            any) pick=$(echo "$procs" | grep . | sed -n "$(( r % n + 1 ))p") ;;
            payload) pick=$(echo "$procs" | grep ':payload' | head -1) ;;
            *) pick=$(echo "$procs" | grep ":$who\$" | head -1) ;;
        esac
        if [ -n "$pick" ]; then
            target="${pick#*:} (pid ${pick%%:*})"
            kill -9 "${pick%%:*}" 2>/dev/null || target="nothing (${pick#*:}, pid ${pick%%:*}, had ended)"
        else
            target="nothing ($who not running yet or any more)"
        fi
    fi
    case_of[$run]="$name: kill -9 $target after $delay ms [alive: ${alive% }]"
    t_kill=$(( ${EPOCHREALTIME/./} * 1000 ))
    k=${target%% (*}; kills[$k]=$(( ${kills[$k]:-0} + 1 ))

    # The killed chain's first process ends; the rest must follow at once.
    wait_chain $(( payload_secs + 10 ))
    kstatus=$status
    t_end=$(( ${EPOCHREALTIME/./} * 1000 ))
    if [ "$kstatus" = hung ]; then
        hangs+=("run $run (${case_of[$run]}): the chain did not end within $((payload_secs + 10)) s")
    else
        left=""
        deadline=$(( $(( ${EPOCHREALTIME/./} * 1000 )) + 500000000 ))
        while :; do
            left=$(session_procs "$chain" | sed 's/^[0-9]*://' | tr '\n' ' ')
            [ -z "$left" ] || [ "$(( ${EPOCHREALTIME/./} * 1000 ))" -gt "$deadline" ] && break
            nap 0.01
        done
        if [ -n "$left" ]; then
            orphans+=("run $run (${case_of[$run]}): still running 0.5 s after the chain's first process ended: ${left% }")
            # They end with their payload; wait, so that what they leave
            # is theirs and not the harness's.
            for _ in $(seq $(( (payload_secs + 10) * 10 ))); do
                [ -z "$(ps -s "$chain" -o pid= 2>/dev/null)" ] && break
                sleep 0.1
            done
            if [ -n "$(ps -s "$chain" -o pid= 2>/dev/null)" ]; then
                kill -9 -- "-$chain" 2>/dev/null
                hangs+=("run $run (${case_of[$run]}): orphans still running after $((payload_secs + 10)) s; killed by the harness")
            fi
        fi
    fi
    kerr=$(grep -v "^$" "$tmp/err" | head -3 | tr '\n' '|')

    # The normal run of the same name.
    t0=$(( ${EPOCHREALTIME/./} * 1000 ))
    start_chain "$name" "$idx" "$short_payload"
    wait_chain 30
    nstatus=$status
    ms=$(( ($(( ${EPOCHREALTIME/./} * 1000 )) - t0) / 1000000 ))
    if [ "$nstatus" != 0 ] || ! grep -q "$marker-ok" "$tmp/out"; then
        failures+=("run $run (${case_of[$run]}): the next run of $name: exit $nstatus: $(grep -v '^$' "$tmp/err" | head -3 | tr '\n' '|' | sed 's/|$//')")
    fi
    note "run $run: ${case_of[$run]}; killed chain exit $kstatus${kerr:+ ($kerr)} after $(( (t0 - t_run) / 1000000 )) ms; next run exit $nstatus in $ms ms${left:+; orphans: $left}"

    # What is new since the last run is this run's. Up to 2 s for the
    # detached processes that delete veths. Only a process of the test, or
    # the kernel for a link of a dying namespace, removes an object by
    # itself: the inventory is taken again when one of those has gone
    # (polled without new processes), and not at all when none is new. (This
    # only says which run left an object; the verdict is the final inventory.)
    t_inv=$(( ${EPOCHREALTIME/./} * 1000 ))
    deadline=$(( t_inv + 2000000000 ))
    while :; do
        now=$(inventory)
        new=$(comm -13 <(echo "$prev") <(echo "$now") | grep .)
        waitable=$(grep -E '^(process|link) ' <<<"$new")
        [ -z "$waitable" ] && break
        went=0
        while [ "$(( ${EPOCHREALTIME/./} * 1000 ))" -le "$deadline" ]; do
            while read -r obj; do present "$obj" || { went=1; break; }; done <<<"$waitable"
            [ "$went" = 1 ] && break
            nap 0.01
        done
        [ "$went" = 1 ] || break
    done
    while read -r obj; do
        [ -z "$obj" ] && continue
        [ -z "${first_seen[$obj]:-}" ] && first_seen[$obj]=$run && note "  new: $obj"
    done <<<"$new"
    gone=$(comm -23 <(echo "$prev") <(echo "$now") | grep -c .)
    collected=$((collected + gone))
    prev=$now
    # Sessions that have ended leave the list (their number may come back).
    live=" $(ps -e -o sid= | sort -u | tr -s ' \n' ' ') "
    keep=" "
    for sid in $sids; do case "$live" in *" $sid "*) keep="$keep$sid " ;; esac; done
    sids=$keep
    note "  run $run took $(ms_since "$t_run") ms: start to kill $(( (t_kill - t_run) / 1000000 )), kill to the chain's end $(( (t_end - t_kill) / 1000000 )), to no process left $(( (t0 - t_end) / 1000000 )), next run $ms, inventory $(ms_since "$t_inv")"
done 2>>"$log"   # bash's notices of killed jobs

# The end: up to 3 s more for the last detached processes.
deadline=$(( $(( ${EPOCHREALTIME/./} * 1000 )) + 3000000000 ))
while :; do
    final=$(inventory)
    [ -z "$final" ] || [ "$(( ${EPOCHREALTIME/./} * 1000 ))" -gt "$deadline" ] && break
    sleep 0.1
done
elapsed=$(( $(date +%s) - start_time ))

# --- the summary -------------------------------------------------------------
[ "$done_runs" != "$runs" ] && echo "torture ($mode): stopped after $done_runs of $runs runs (--max-time $max_time or SIGUSR1)"
echo "torture ($mode): $done_runs runs in $elapsed s; kills: $(for k in "${!kills[@]}"; do printf '%s %s, ' "$k" "${kills[$k]}"; done | sed 's/, $//')"
bad=0
report() {
    local title=$1; shift
    [ $# -eq 0 ] && return
    echo "$title: $#"
    printf '  %s\n' "$@"
    bad=1
}
report "FAILED normal runs" "${failures[@]}"
report "FAILED orphans" "${orphans[@]}"
report "FAILED hung chains" "${hangs[@]}"
if [ -n "$final" ]; then
    # Grouped by the run after which each object was first seen.
    declare -A by_run
    while read -r obj; do
        r=${first_seen[$obj]:-0}
        by_run[$r]+="      $obj"$'\n'
    done <<<"$final"
    echo "FAILED left behind: $(echo "$final" | grep -c .)"
    for r in $(printf '%s\n' "${!by_run[@]}" | sort -n); do
        if [ "$r" = 0 ]; then echo "  appeared at the end:"
        else echo "  first seen after run $r (${case_of[$r]}):"; fi
        printf '%s' "${by_run[$r]}"
    done
    bad=1
fi
[ "$collected" -gt 0 ] && echo "objects left by a run and collected by a later one: $collected"
{ echo "final inventory:"; echo "$final"; } >>"$log"

if [ -n "$final" ]; then
    if [ "$keep" = 1 ]; then
        echo "torture: --keep: left as found"
    else
        remove_leftovers
        rest=$(inventory)
        [ -n "$rest" ] && { echo "torture: the harness could not remove:"; echo "$rest" | sed 's/^/  /'; }
    fi
fi

if [ "$bad" = 0 ]; then
    echo "torture ($mode): ok: $done_runs runs, nothing left"
    exit 0
fi
kinds=$(echo "$final" | awk 'NF {print $1}' | sort | uniq -c | awk '{printf "%s %s, ", $2, $1}' | sed 's/, $//')
echo "torture ($mode): FAILED: ${#failures[@]} normal runs failed, ${#orphans[@]} orphaned, ${#hangs[@]} hung${kinds:+, left: $kinds}"
exit 1
