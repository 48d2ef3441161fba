#!/usr/bin/env bats
# Issue 17: kill -9 anywhere in a chain leaves no container running, and a
# second SIGTERM ends the container without taking the chain's supervisors
# with it. Each payload is a sleep with a number of its own (124NN), so that
# the test finds exactly its processes. Names: rel*, bridges kgtrel*.
load helpers

setup_file() { kago_setup_file; }
teardown_file() { kago_teardown_file; }

setup() {
    [ "$(id -u)" = 0 ] || skip "needs root (cgroups, PID namespaces)"
    export KAGO_NAME=rel$BATS_TEST_NUMBER
    SUPERVISOR=
}

teardown() {
    [ -n "$SUPERVISOR" ] && kill -KILL "$SUPERVISOR" 2>/dev/null
    for p in $(pgrep -f "^sleep 124$BATS_TEST_NUMBER"); do kill -KILL "$p"; done
    # What a killed cg-limit leaves (its cgroup, the state directory) goes
    # with the next run.
    cg-limit -- true >/dev/null 2>&1 || true
    rm -rf "/run/kago/$KAGO_NAME"
}

# wait_for PATTERN: until a process whose command line starts with it runs.
wait_for() {
    local i
    for i in $(seq 100); do pgrep -f "^$1" >/dev/null && return 0; sleep 0.05; done
    return 1
}

# gone PATTERN: until no such process runs (2 s).
gone() {
    local i
    for i in $(seq 40); do pgrep -f "^$1" >/dev/null || return 0; sleep 0.05; done
    return 1
}

@test "kill -9 of cg-limit: the container below unshare-run's init ends too" {
    local s="sleep 124${BATS_TEST_NUMBER}1"
    cg-limit --pids 64 -- unshare-run --pid --mount-proc -- sh -c "$s & wait" &
    SUPERVISOR=$!
    wait_for "$s"
    kill -KILL "$SUPERVISOR"
    wait "$SUPERVISOR" 2>/dev/null || true
    SUPERVISOR=
    gone "$s" || fail "the container outlived the chain: $(pgrep -af "^$s")"
}

@test "kill -9 of unshare-run (the init's parent): the container ends" {
    local s="sleep 124${BATS_TEST_NUMBER}2"
    # no cg-limit above, whose cgroup would end the container anyway
    unshare-run --pid --mount-proc -- sh -c "$s & wait" &
    SUPERVISOR=$!
    wait_for "$s"
    # the parent of the init: the unshare-run whose child is also unshare-run
    local parent p pp
    for p in $(pgrep -x unshare-run); do
        pp=$(awk '{print $4}' /proc/$p/stat)
        [ "$(cat /proc/$pp/comm)" = unshare-run ] && parent=$pp
    done
    [ -n "$parent" ] || fail "no unshare-run with an init below it"
    kill -KILL "$parent"
    wait "$SUPERVISOR" 2>/dev/null || true
    SUPERVISOR=
    gone "$s" || fail "the container outlived unshare-run: $(pgrep -af "^$s")"
}

@test "kill -9 of unshare-run's init: the container ends, the status says SIGKILL" {
    local s="sleep 124${BATS_TEST_NUMBER}3"
    unshare-run --pid --mount-proc -- sh -c "$s & wait" &
    SUPERVISOR=$!
    wait_for "$s"
    local init
    for p in $(pgrep -x unshare-run); do
        [ "$(awk '{print $4}' /proc/$p/stat)" = "$SUPERVISOR" ] && init=$p
    done
    [ -n "$init" ] || fail "no init below unshare-run"
    kill -KILL "$init"
    local st=0
    wait "$SUPERVISOR" || st=$?
    SUPERVISOR=
    assert_equal "$st" 137
    gone "$s" || fail "the container outlived its init"
}

@test "kill -9 of unshare-run without a PID namespace: its command ends too" {
    local s="sleep 124${BATS_TEST_NUMBER}4"
    sh -c "unshare-run --uts -- $s; echo status \$? >$BATS_TEST_TMPDIR/st" &
    SUPERVISOR=$!
    wait_for "$s"
    local u
    u=$(pgrep -f "^$s")
    u=$(awk '{print $4}' "/proc/$u/stat")
    [ "$(cat /proc/$u/comm)" = unshare-run ] || fail "the command's parent is not unshare-run"
    kill -KILL "$u"
    wait "$SUPERVISOR" || true
    SUPERVISOR=
    assert_equal "$(cat "$BATS_TEST_TMPDIR/st")" "status 137"
    gone "$s" || fail "the command outlived unshare-run"
}

@test "a second SIGTERM to cg-limit ends a payload that ignores the first, not the supervisors: 137" {
    local s="sleep 124${BATS_TEST_NUMBER}5"
    cg-limit --pids 64 -- unshare-run --pid --mount-proc -- sh -c "trap '' TERM; $s & wait; $s" &
    SUPERVISOR=$!
    wait_for "$s"
    kill -TERM "$SUPERVISOR"
    sleep 0.2
    kill -TERM "$SUPERVISOR"
    local st=0
    wait "$SUPERVISOR" || st=$?
    SUPERVISOR=
    assert_equal "$st" 137
    gone "$s" || fail "the payload survived the second SIGTERM"
}

# net-setup in a network namespace of the test's own (its "host").
tns() {
    unshare --net --mount --propagation private -- \
        bash -euc "ip link set lo up; $KAGO_GONE; $1"
}

@test "kill -9 of cg-limit above net-setup --veth: the container ends and net-setup removes its network" {
    local s="sleep 124${BATS_TEST_NUMBER}6"
    run tns "
        cg-limit --pids 64 -- net-setup --veth --bridge kgtrel$BATS_TEST_NUMBER --subnet 10.251.$BATS_TEST_NUMBER.0/24 --nat -- \
            unshare-run --pid --mount-proc -- sh -c '$s & wait' &
        S=\$!
        for i in \$(seq 100); do pgrep -f '^$s' >/dev/null && break; sleep 0.05; done
        pgrep -f '^$s' >/dev/null || { echo NOT-STARTED; exit 1; }
        kill -KILL \$S
        for i in \$(seq 40); do pgrep -f '^$s' >/dev/null || break; sleep 0.05; done
        pgrep -f '^$s' >/dev/null && echo ORPHAN
        for i in \$(seq 40); do pgrep -x net-setup >/dev/null || break; sleep 0.05; done
        # The state directory and the cgroup are cg-limit's: its next start removes them.
        KAGO_NAME=${KAGO_NAME}b cg-limit -- true
        net_leftovers $KAGO_NAME kgtrel$BATS_TEST_NUMBER
        nft list table inet kago 2>/dev/null | grep -q 'kago $KAGO_NAME' && echo LEFT-RULES
        echo done"
    refute_output --partial ORPHAN
    refute_output --partial LEFT-
    assert_output --partial done
}

@test "kill -9 of net-setup: the container below it ends, the status says SIGKILL" {
    local s="sleep 124${BATS_TEST_NUMBER}7"
    run tns "
        cg-limit --pids 64 -- net-setup --veth --bridge kgtrel$BATS_TEST_NUMBER --subnet 10.251.$BATS_TEST_NUMBER.0/24 -- \
            unshare-run --pid --mount-proc -- sh -c '$s & wait' &
        S=\$!
        for i in \$(seq 100); do pgrep -f '^$s' >/dev/null && break; sleep 0.05; done
        N=\$(pgrep -x net-setup | head -1)
        kill -KILL \$N
        st=0; wait \$S || st=\$?
        echo status \$st
        for i in \$(seq 40); do pgrep -f '^$s' >/dev/null || break; sleep 0.05; done
        pgrep -f '^$s' >/dev/null && echo ORPHAN
        net-setup --gc
        echo done"
    assert_output --partial "status 137"
    refute_output --partial ORPHAN
    assert_output --partial done
}

@test "kill -9 of net-setup just after it made the bridge: the next start removes the bridge with the dead owner's lease" {
    local so="$KAGO_BUILD/tests/preload/kill_after_bridge.so" n=$BATS_TEST_NUMBER
    [ -e "$so" ] || skip "no $so (make bats builds it)"
    local libs
    libs=$(ldd "$(command -v net-setup)" 2>/dev/null) || skip "net-setup is linked statically: LD_PRELOAD cannot stop it"
    [[ "$libs" != *libasan* ]] || skip "a sanitizer's runtime must come first: LD_PRELOAD cannot stop net-setup"
    run tns "
        st=0; LD_PRELOAD=$so net-setup --veth --bridge kgtrel$n --subnet 10.251.$n.0/24 -- true || st=\$?
        echo status \$st
        ip link show kgtrel$n >/dev/null 2>&1 && echo BRIDGE-MADE
        # Any start reaps a dead owner's lease; this one on a bridge of its own.
        KAGO_NAME=${KAGO_NAME}b net-setup --veth --bridge kgtrel${n}b --subnet 10.251.1$n.0/24 -- true
        net_leftovers $KAGO_NAME kgtrel$n
        net_leftovers ${KAGO_NAME}b kgtrel${n}b
        echo done"
    assert_output --partial "status 137"
    assert_output --partial BRIDGE-MADE
    refute_output --partial LEFT-
    assert_output --partial done
}

# The process whose parent is unshare-run: the command, with no init above it.
# $1: unshare-run's options. cap-drop's change of user clears the
# PR_SET_PDEATHSIG that unshare-run gave it; cap-drop sets it again.
killed_parent_after_user_change() {
    local s="sleep 124${BATS_TEST_NUMBER}8"
    unshare-run $1 -- cap-drop --user 65534 -- $s &
    SUPERVISOR=$!
    wait_for "$s"
    local p pp
    p=$(pgrep -f "^$s")
    pp=$(awk '{print $4}' "/proc/$p/stat")
    [ "$(cat /proc/$pp/comm)" = unshare-run ] || fail "the command's parent is not unshare-run"
    [ "$(awk '/^Uid:/ {print $2}' /proc/$p/status)" = 65534 ] || fail "the command did not change user"
    kill -KILL "$pp"
    wait "$SUPERVISOR" 2>/dev/null || true
    SUPERVISOR=
    gone "$s" || fail "the command outlived unshare-run after its change of user: $(pgrep -af "^$s")"
}

@test "kill -9 of unshare-run --pid --as-pid-1: its PID 1 ends too, after cap-drop --user" {
    killed_parent_after_user_change "--pid --as-pid-1"
}

@test "kill -9 of unshare-run without a PID namespace: its command ends too, after cap-drop --user" {
    killed_parent_after_user_change "--uts"
}
