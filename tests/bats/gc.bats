#!/usr/bin/env bats
# What a SIGKILL leaves, and who removes it (issue 17): a chain whose
# supervisor was killed, then a new chain with the same KAGO_NAME; the
# refusals when the owner lives or a process of its container still runs;
# the packed runner killed during its first extraction.
load helpers

setup_file() {
    kago_setup_file
    GC_DIR=$(mktemp -d /tmp/kago-gc-t.XXXXXX)
    export GC_DIR
}

teardown_file() {
    # Whatever a failed test left: its processes, then its host objects.
    pkill -9 -fx "sleep 609[0-9]" 2>/dev/null || true
    pkill -9 -f "^/usr/bin/pasta .*/gcu1/" 2>/dev/null || true
    sleep 0.2
    net-setup --gc >/dev/null 2>&1 || true
    rm -rf "$GC_DIR"
    kago_teardown_file
}

# The pid of the net-setup supervisor of container $1.
supervisor_of() {
    local i
    for i in $(seq 100); do
        [ -r "/run/kago/leases/$1.owner" ] && sed -n 's/^pid=//p' "/run/kago/leases/$1.owner" && return 0
        sleep 0.05
    done
    return 1
}

# Wait until the container's namespace is up (its state file).
wait_netns() {
    local i
    for i in $(seq 100); do [ -e "/run/netns/kago-$1" ] && [ -e "/run/kago/$1/ip" ] && return 0; sleep 0.05; done
    return 1
}

@test "kill -9 of net-setup, then a same-name chain: it starts, and the old rules, lease and bind mount are gone" {
    KAGO_NAME=gcn1 net-setup --veth --bridge brgc1 --subnet 10.203.1.0/24 --nat \
        --publish 127.0.0.1:18931:80 -- sleep 6090 &
    old=$(supervisor_of gcn1)
    wait_netns gcn1
    kill -9 "$old"
    sleep 0.2
    run env KAGO_NAME=gcn1 net-setup --veth --bridge brgc1 --subnet 10.203.1.0/24 -- \
        cat /run/kago/leases/gcn1.owner /run/kago/leases/brgc1@*
    assert_success
    # The dead supervisor holds no lease and no record, and no rule of it is left.
    refute_output --partial "$old"
    run nft list table inet kago
    refute_output --partial "pid=$old "
    run bash -c "$KAGO_GONE; net_leftovers gcn1 brgc1"
    assert_output ""
}

@test "kill -9 of net-setup inside an outer program that made the state directory: the same name starts again" {
    # unshare-run (the first program) owns the state directory and lives
    # on; net-setup below it is killed; then the whole chain ends.
    KAGO_NAME=gcn2 unshare-run --uts -- net-setup --veth --bridge brgc2 --subnet 10.203.2.0/24 --nat \
        --publish 127.0.0.1:18932:80 -- sleep 6090 &
    outer=$!
    old=$(supervisor_of gcn2)
    wait_netns gcn2
    kill -9 "$old"
    wait "$outer" || true
    [ -e /run/netns/kago-gcn2 ]  # what the killed net-setup left
    run env KAGO_NAME=gcn2 unshare-run --uts -- net-setup --veth --bridge brgc2 --subnet 10.203.2.0/24 --nat \
        --publish 127.0.0.1:18932:80 -- true
    assert_success
    run nft list table inet kago
    refute_output --partial "pid=$old "
    run bash -c "$KAGO_GONE; net_leftovers gcn2 brgc2"
    assert_output ""
}

@test "a same-name start while the owner lives: exit 125, naming the owner's pid, and nothing of it removed" {
    KAGO_NAME=gcn3 net-setup --veth --bridge brgc3 --subnet 10.203.3.0/24 -- sleep 6090 &
    owner=$(supervisor_of gcn3)
    wait_netns gcn3
    run env KAGO_NAME=gcn3 net-setup --veth --bridge brgc3 --subnet 10.203.3.0/24 -- true
    assert_failure 125
    assert_output --partial "pid $owner"
    [ -e /run/netns/kago-gcn3 ] && [ -e /run/kago/gcn3/ip ] && [ -e /run/kago/leases/gcn3.owner ]
    kill "$owner"
    wait || true
    run bash -c "$KAGO_GONE; net_leftovers gcn3 brgc3"
    assert_output ""
}

@test "a supervisor gone while a process still runs in its namespace: neither a start nor --gc removes anything" {
    # The shell dies with net-setup (PR_SET_PDEATHSIG); its background
    # sleep does not, and keeps the container's network namespace.
    KAGO_NAME=gcn4 net-setup --veth --bridge brgc4 --subnet 10.203.4.0/24 --nat -- \
        sh -c 'sleep 6094 & wait' &
    old=$(supervisor_of gcn4)
    wait_netns gcn4
    kill -9 "$old"
    sleep 0.3
    left=$(pgrep -fx "sleep 6094")
    [ -n "$left" ]
    # (after waiting a few seconds for it, in case its chain was ending)
    run env KAGO_NAME=gcn4 net-setup --veth --bridge brgc4 --subnet 10.203.4.0/24 -- true
    assert_failure 125
    assert_output --partial "still runs"
    assert_output --partial "$left"
    assert_output --partial "/run/kago/gcn4"
    run net-setup --gc
    assert_success
    [ -e /run/netns/kago-gcn4 ] && [ -e /run/kago/gcn4 ] && [ -e /run/kago/leases/gcn4.owner ]
    nft list table inet kago | grep -q "kago gcn4 pid=$old"
    kill -9 $left
    sleep 0.2
    run net-setup --gc
    assert_success
    run bash -c "$KAGO_GONE; net_leftovers gcn4 brgc4"
    assert_output ""
    ! nft list table inet kago 2>/dev/null | grep -q "kago gcn4 "
}

@test "kill -9 of cg-limit, then at once a same-name chain: it waits for the killed chain to end, and starts" {
    # The killed chain is still ending when the next one starts: net-setup
    # (SIGTERM from PR_SET_PDEATHSIG) kills its command and removes its
    # network; its detached process deletes the veth.
    local chain=(cg-limit --pids 64 -- net-setup --veth --bridge brgc5 --subnet 10.203.5.0/24 --nat
                 --publish 127.0.0.1:18935:80 -- unshare-run --pid --mount-proc --)
    KAGO_NAME=gcn5 "${chain[@]}" sh -c 'sleep 6095 & wait' &
    outer=$!
    wait_netns gcn5
    kill -9 "$outer"
    run env KAGO_NAME=gcn5 "${chain[@]}" cat /proc/self/cgroup
    assert_success
    assert_output --partial "/gcn5"
    wait "$outer" || true
    ! pgrep -fx "sleep 6095"
    run bash -c "$KAGO_GONE; net_leftovers gcn5 brgc5"
    assert_output ""
    [ -z "$(find /sys/fs/cgroup -maxdepth 6 -type d -path '*/kago/gcn5*')" ]
}

@test "kill -9 of unshare-run above net-setup, then at once a same-name chain: it waits for net-setup's cleanup (its ports) and starts" {
    local chain=(unshare-run --uts -- net-setup --veth --bridge brgc6 --subnet 10.203.6.0/24 --nat
                 --publish 127.0.0.1:18936:80 -- unshare-run --pid --mount-proc --)
    KAGO_NAME=gcn6 "${chain[@]}" sh -c 'sleep 6096 & wait' &
    outer=$!
    wait_netns gcn6
    kill -9 "$outer"
    run env KAGO_NAME=gcn6 "${chain[@]}" true
    assert_success
    wait "$outer" || true
    ! pgrep -fx "sleep 6096"
    run bash -c "$KAGO_GONE; net_leftovers gcn6 brgc6"
    assert_output ""
}

@test "net-setup's take-over waits for an ending container's last process, then removes its network" {
    # The old container keeps a process in its namespace for a moment
    # after its net-setup was killed. The new start is given a state
    # directory of its own (KAGO_STATE_DIR), so that only net-setup's
    # owner record meets the old one.
    KAGO_NAME=gcn7 net-setup --veth --bridge brgc7 --subnet 10.203.7.0/24 --nat -- \
        sh -c "(while [ ! -e $BATS_TEST_TMPDIR/killed ]; do sleep 0.05; done; sleep 0.5) & exec sleep 6097" &
    old=$(supervisor_of gcn7)
    wait_netns gcn7
    kill -9 "$old"
    touch "$BATS_TEST_TMPDIR/killed"
    mkdir "$BATS_TEST_TMPDIR/sd"
    run env KAGO_NAME=gcn7 KAGO_STATE_DIR="$BATS_TEST_TMPDIR/sd" \
        net-setup --veth --bridge brgc7 --subnet 10.203.7.0/24 --nat -- true
    assert_success
    wait || true
    run net-setup --gc
    run bash -c "$KAGO_GONE; net_leftovers gcn7 brgc7"
    assert_output ""
    ! nft list table inet kago 2>/dev/null | grep -q "kago gcn7 "
}

# net-setup --user-mode as user 65534 in a network and mount namespace of
# the test's own, with a default route and a 0666 tun node for pasta.
as_nobody_ns() { as_user_in_netns 65534 65534 /tmp bash "$1"; }

@test "rootless: kill -9 of net-setup --user-mode, then at once a same-name chain: pasta died with it, and the ports are free" {
    require_userns
    command -v pasta >/dev/null || skip "pasta is not installed (make deps)"
    run as_nobody_ns '
        chain() { KAGO_NAME=gcu1 exec net-setup --user-mode --publish 127.0.0.1:18941:80 -- \
                  unshare-run --user --map-root --pid --mount-proc -- "$@"; }
        for round in 1 2 3; do
            chain sh -c "sleep 6098 & wait" &
            S=$!
            for i in $(seq 200); do pgrep -fx "sleep 6098" >/dev/null && break; sleep 0.05; done
            pgrep -fx "sleep 6098" >/dev/null || { echo NOT-STARTED; exit 1; }
            kill -9 $S
            (chain true) || echo "REFUSED in round $round"
            wait $S || true
            for i in $(seq 40); do pgrep -f "^/usr/bin/pasta.*gcu1" >/dev/null || break; sleep 0.05; done
            pgrep -af "^/usr/bin/pasta.*gcu1" && echo LEFT-PASTA
            pgrep -fx "sleep 6098" && echo LEFT-SLEEP
        done
        ls /tmp/kago-65534/gcu1 2>/dev/null && echo LEFT-STATE
        echo done'
    refute_output --partial REFUSED
    refute_output --partial LEFT-
    assert_output --partial done
}

@test "the packed runner killed with SIGKILL during its first extraction: the next run leaves one complete entry and no temporary directory" {
    require_progs pack-selfexec
    mkdir -p "$GC_DIR/root"
    cp -a "$KAGO_ROOTFS/." "$GC_DIR/root/"
    # Incompressible data, so that the extraction takes a while.
    for i in $(seq 24); do head -c 4M /dev/urandom >"$GC_DIR/root/blob$i"; done
    pack-selfexec -o "$GC_DIR/big.run" --rootfs "$GC_DIR/root" -- /bin/sh -c 'cat /blob7 | wc -c'
    want=$(wc -c <"$GC_DIR/root/blob7")
    for round in 1 2 3 4; do
        rm -rf "$GC_DIR/cache"
        "$GC_DIR/big.run" --kago-cache "$GC_DIR/cache" >/dev/null &
        p=$!
        # A random point in the extraction (or before it).
        sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
        # On a quick machine the run may be done already: then this round
        # checks a finished cache, which must hold the same.
        kill -9 "$p" 2>/dev/null || true
        wait "$p" || true
        run "$GC_DIR/big.run" --kago-cache "$GC_DIR/cache"
        assert_success
        assert_output "$want"
        # One entry, complete; its lock file; nothing else.
        entries=$(find "$GC_DIR/cache" -mindepth 1 -maxdepth 1 -type d)
        [ "$(echo "$entries" | wc -l)" = 1 ]
        [ -e "$entries/complete" ]
        run find "$GC_DIR/cache" -mindepth 1 -maxdepth 1 -name '.*'
        assert_output ""
    done
}

# A state directory whose first program was killed: $1 is the container name.
killed_state_dir() {
    KAGO_NAME=$1 unshare-run --uts -- sleep 6091 &
    local p=$! i
    for i in $(seq 100); do [ -e "/run/kago/$1" ] && break; sleep 0.05; done
    [ -e "/run/kago/$1" ]
    kill -9 "$p"
    wait "$p" || true
    [ -e "/run/kago/$1" ]
}

@test "net-setup --gc removes the state directory of a killed chain" {
    killed_state_dir gcs1
    run net-setup --gc
    assert_success
    [ ! -e /run/kago/gcs1 ]
}

@test "cg-limit --gc removes the state directory of a killed chain; with a command it is a usage error" {
    killed_state_dir gcs2
    run cg-limit --gc
    assert_success
    [ ! -e /run/kago/gcs2 ]
    run cg-limit --gc true
    assert_failure 125
}

@test "a same-name start removes the state directory of a killed chain first" {
    killed_state_dir gcs3
    run env KAGO_NAME=gcs3 unshare-run --uts -- cat /run/kago/gcs3/pid
    assert_success
    [ ! -e /run/kago/gcs3 ]
}

@test "cg-limit --gc thaws a v1 freezer cgroup that a killed cg-limit left FROZEN; its processes end and it is removed" {
    [ -d /sys/fs/cgroup/freezer ] || skip "no cgroup v1 freezer hierarchy here"
    cg-limit --pids 64 -- sleep 6099 &
    local outer=$! p i
    for i in $(seq 100); do p=$(pgrep -fx "sleep 6099") && break; sleep 0.05; done
    [ -n "$p" ]
    local rel dir
    rel=$(awk -F: '$2 == "freezer" {print $3}' "/proc/$p/cgroup")
    dir=/sys/fs/cgroup/freezer$rel
    [[ "$rel" == */kago/* ]] || skip "cg-limit does not use the v1 freezer here ($rel)"
    # What a SIGKILL between cg-limit's freeze and its thaw leaves.
    echo FROZEN >"$dir/freezer.state"
    kill -9 "$outer"
    wait "$outer" || true
    sleep 0.3
    pgrep -fx "sleep 6099"  # frozen: its PR_SET_PDEATHSIG SIGKILL cannot end it
    run cg-limit --gc
    assert_success
    for i in $(seq 40); do pgrep -fx "sleep 6099" >/dev/null || break; sleep 0.05; done
    if pgrep -fx "sleep 6099" >/dev/null; then
        echo THAWED >"$dir/freezer.state"  # for the next tests
        fail "the frozen leftover's process still runs after cg-limit --gc"
    fi
    run cg-limit --gc
    [ ! -e "$dir" ]
}

@test "a leftover cgroup whose supervisor's pid now names a running cg-limit is removed: the start time tells them apart" {
    KAGO_NAME=gcl1 cg-limit --pids 64 -- sleep 6092 &
    local outer=$! p i
    for i in $(seq 100); do p=$(pgrep -fx "sleep 6092") && break; sleep 0.05; done
    [ -n "$p" ]
    # The running cg-limit's leaf in each hierarchy, and a leftover beside
    # it as a killed cg-limit with the same pid (and another start) named it.
    local live old dirs=()
    live=$(awk -F: '$3 ~ /\/kago\// {sub(".*/", "", $3); print $3; exit}' "/proc/$p/cgroup")
    case "$live" in
    gcl1.*.*) old=${live#gcl1.}; old="gcl1x.${old%%.*}.$((${old#*.} - 1))" ;;
    *) old="gcl1x.${live#gcl1.}" ;;
    esac
    while IFS=: read -r _ ctl rel; do
        [[ "$rel" == */kago/* ]] || continue
        ctl=${ctl#name=}
        if [ -z "$ctl" ]; then d=/sys/fs/cgroup$rel; else d=/sys/fs/cgroup/${ctl%%,*}$rel; fi
        [ -d "$d" ] || d=/sys/fs/cgroup/unified$rel
        mkdir "${d%/*}/$old" && dirs+=("${d%/*}/$old")
    done <"/proc/$p/cgroup"
    [ "${#dirs[@]}" -gt 0 ]
    run cg-limit --gc
    local left=()
    for d in "${dirs[@]}"; do [ -d "$d" ] && left+=("$d") && rmdir "$d"; done
    kill "$outer"
    wait "$outer" || true
    assert_success
    [ "${#left[@]}" = 0 ] || fail "kept as the running cg-limit's: ${left[*]}"
}
