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
    run env KAGO_NAME=gcn4 net-setup --veth --bridge brgc4 --subnet 10.203.4.0/24 -- true
    assert_failure 125
    assert_output --partial "still runs"
    assert_output --partial "$left"
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
