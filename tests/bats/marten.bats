#!/usr/bin/env bats
# examples/marten, MINCS's image manager on image-layers: each command, and
# MINCS's test.d/02_marten/01_run.sh adapted to import instead of pull (an
# image imported, run by minc -r NAME, a kept container committed, removed).
load helpers

MARTEN="$KAGO_TOP/examples/marten"
MINC="$KAGO_TOP/examples/minc"

setup_file() { kago_setup_file; }
teardown_file() { kago_teardown_file; }

setup() {
    require_progs image-layers unshare-run mount-layers cap-drop
    D=$(mktemp -d /tmp/kago-marten.XXXXXX)
    export KAGO_IMAGE_STORE=$D/store XDG_RUNTIME_DIR=$D/run TMPDIR=$D/tmp
    mkdir -p "$XDG_RUNTIME_DIR" "$TMPDIR"
}

teardown() { rm -rf "$D"; }

@test "marten: --help, no command, an unknown command" {
    run "$MARTEN" --help
    assert_success
    for c in li images lc list rm rmi import commit tag renamei; do assert_output --partial "$c"; done
    run "$MARTEN"
    assert_equal "$status" 125
    run "$MARTEN" bogus
    assert_equal "$status" 125
    assert_output --partial "unknown command 'bogus'"
    run "$MARTEN" rm nothing-here
    assert_equal "$status" 125
    assert_output --partial "no kept container"
}

@test "marten: MINCS's test.d/02_marten/01_run.sh, with import instead of pull" {
    require_static
    # The original: marten li | grep "alpine"; minc --debug -r alpine ls
    "$MARTEN" import "$KAGO_ROOTFS" alpine
    run sh -c "'$MARTEN' li | grep alpine"
    assert_success
    run "$MINC" --debug -r alpine ls </dev/null
    assert_success
    assert_line bin
}

@test "marten: import, li, minc -r, lc, commit, renamei, tag, rm, rmi" {
    require_static
    run "$MARTEN" import "$KAGO_ROOTFS" busybox
    assert_success
    run "$MARTEN" li
    assert_output --partial "busybox:latest"
    run "$MINC" -r busybox echo hello </dev/null
    assert_success
    assert_output hello
    run "$MINC" -r busybox -k -- sh -c 'echo changed >/marten-test' </dev/null
    assert_success
    run "$MARTEN" lc
    assert_line --index 1 --regexp '^minc[0-9]+-[A-Za-z0-9]+ +busybox +'
    id=$(echo "$output" | awk 'NR == 2 { print $1 }')
    run "$MARTEN" commit "$id" busybox:2
    assert_success
    run "$MINC" -r busybox:2 cat /marten-test </dev/null
    assert_output changed
    run "$MARTEN" renamei busybox:2 busybox:3
    assert_success
    run "$MARTEN" images
    assert_output --partial "busybox:3"
    refute_output --partial "busybox:2"
    run "$MARTEN" tag busybox:3 other
    assert_success
    run "$MARTEN" rm "$id"
    assert_success
    run "$MARTEN" list
    refute_output --partial "$id"
    for i in busybox:3 other busybox; do
        run "$MARTEN" rmi "$i"
        assert_success
    done
    [ -z "$(ls -A "$KAGO_IMAGE_STORE/layers")" ]
}
