#!/usr/bin/env bats
# Whole chains: each program's part in a container built from several kago
# programs. Each block below belongs to one program.
load helpers

setup_file() { kago_setup_file; }
teardown_file() { kago_teardown_file; }

# --- dry run and trace (the contract every program shares) ---

@test "chains: a dry run needs no privilege and makes no calls" {
    [ -x "$KAGO_BIN/unshare-run" ] || skip "unshare-run is not built"
    run as_nobody "$KAGO_BIN/unshare-run" --dry-run --pid --mount --uts --hostname box -- /bin/true
    assert_success
    assert_output --partial "(dry run)"
    assert_output --partial "unshare-run:"
}

# --- cap-drop ---

# A kago container: unshare-run + mount-layers on the busybox rootfs, with
# cap-drop last.
cap_drop_chain() {
    unshare-run --pid --mount --uts --ipc --net -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --dev --pivot -- \
        cap-drop "$@"
}

need_cap_drop_chain() {
    for p in unshare-run mount-layers cap-drop; do
        [ -x "$KAGO_BIN/$p" ] || skip "$p is not built"
    done
}

@test "chains: cap-drop --drop all --seccomp default --user nobody shows everything dropped" {
    need_cap_drop_chain
    run cap_drop_chain --drop all --seccomp default --user nobody -- sh -c 'cat /proc/self/status; env'
    assert_success
    for f in CapInh CapPrm CapEff CapBnd CapAmb; do
        assert_line --regexp "^$f:\s+0000000000000000$"
    done
    assert_line --regexp '^Uid:\s+65534\s+65534\s+65534\s+65534$'
    assert_line --regexp '^NoNewPrivs:\s+1$'
    assert_line --regexp '^Seccomp:\s+2$'
    assert_line "HOME=/nonexistent"
    refute_output --partial "KAGO_"
}

@test "chains: cap-drop --show, run as the payload, agrees" {
    need_cap_drop_chain
    run cap_drop_chain --drop all --seccomp default --user nobody -- cap-drop --show
    assert_success
    for s in bounding permitted effective inheritable ambient; do
        assert_line --regexp "^  $s +none$"
    done
    assert_line --regexp '^no_new_privs +1 \(on\)$'
    assert_line --regexp '^seccomp +filter \(1 filter\)$'
    assert_line --regexp '^uid +65534 65534 65534 65534'
    assert_line --regexp '^  pid +[0-9]+ +own$'
    assert_line --regexp '^  mnt +[0-9]+ +(own|unknown)$'
}

@test "chains: cap-drop --show PID from the host agrees with the container's payload" {
    need_cap_drop_chain
    command -v jq >/dev/null || skip "jq is not installed (make deps)"
    cap_drop_chain --drop all --keep net_bind_service --seccomp default --user nobody -- sleep 3171 &
    local chain=$! pid="" i
    for i in $(seq 50); do
        pid=$(pgrep -x -f 'sleep 3171' | head -1) && [ -n "$pid" ] && break
        sleep 0.1
    done
    [ -n "$pid" ] || { kill $chain; fail "the payload did not start"; }
    run cap-drop --show --json "$pid"
    kill "$pid"
    wait $chain || true
    assert_success
    echo "$output" | jq -e '.capabilities.ambient == ["net_bind_service"] and .capabilities.bounding == ["net_bind_service"]
        and .capabilities.effective == ["net_bind_service"] and .no_new_privs == true
        and .seccomp.mode == "filter" and (.uid | startswith("65534 "))
        and .namespaces.pid.host == "own" and .namespaces.uts.host == "own"'
}

@test "chains: cap-drop --seccomp default blocks unshare -U and keyctl inside the container" {
    need_cap_drop_chain
    run cap_drop_chain --drop all --seccomp default --user nobody -- unshare -U true
    assert_failure
    assert_output --partial "Operation not permitted"
    [ -x "$(test_prog caps_try)" ] || skip "tests/progs/caps_try is not built"
    run unshare-run --pid --mount --uts --ipc --net -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --dev --file "$(test_prog caps_try):/bin/caps_try" --pivot -- \
        cap-drop --drop all --seccomp default --user nobody -- /bin/caps_try keyctl
    assert_output "keyctl: EPERM (Operation not permitted)"
}

@test "chains: cap-drop --dry-run at the end of a chain prints the whole plan" {
    need_cap_drop_chain
    # A state dir of the test's own: the plan must leave nothing behind.
    mkdir -p "$BATS_TEST_TMPDIR/state"
    KAGO_STATE_DIR="$BATS_TEST_TMPDIR/state" KAGO_NAME=cdplan run unshare-run --dry-run --pid --mount -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --pivot -- \
        cap-drop --drop all --seccomp default --user nobody -- sh
    assert_success
    assert_output --partial "cap-drop: prctl(PR_SET_NO_NEW_PRIVS, 1) (dry run)"
    assert_output --partial 'cap-drop: execve("sh", ["sh"], envp) (dry run)'
}
