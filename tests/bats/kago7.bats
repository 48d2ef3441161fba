#!/usr/bin/env bats
# kago(7) never goes stale: every command the walkthrough shows is run here,
# section by section, by tests/lib/man-examples.sh, which checks its exit
# status and the stable lines marked `.\" expect:` in man/kago.7.
load helpers
load registry

setup_file() { kago_setup_file; }
teardown_file() {
    registry_stop_all
    kago_teardown_file
}

PAGE="$KAGO_TOP/man/kago.7"
EXAMPLES="$KAGO_TOP/tests/lib/man-examples.sh"

# The sections this file runs, in the page's order. A new section in the
# page must be added here (the first test checks it).
SECTIONS=(
    "Step 1: a process tree of its own"
    "Step 2: a hostname of its own"
    "Step 3: a root file system of its own"
    "Step 4: fewer privileges"
    "Step 5: limits"
    "Step 6: a network of its own"
    "Step 7: without root"
    "Step 8: watching it work"
    "The full chain"
    "One file"
    "From an image"
    "From a registry"
    "One kernel"
)

# Run one section; fail, naming it, when a kago program it uses is not built.
run_section() {
    local p
    for p in cg-limit net-setup unshare-run mount-layers cap-drop pack-selfexec image-layers; do
        if "$EXAMPLES" commands "$PAGE" "$1" | grep -qw -- "$p"; then
            [ -x "$KAGO_BIN/$p" ] || fail "$p is not built ($KAGO_BIN/$p is missing)"
        fi
    done
    run "$EXAMPLES" run "$PAGE" "$1"
    echo "$output"
    assert_success
}

@test "kago(7): every section with commands is run by this file" {
    run "$EXAMPLES" sections "$PAGE"
    assert_success
    assert_equal "$output" "$(printf '%s\n' "${SECTIONS[@]}")"
}

@test "kago(7): the page has at least 25 checked commands" {
    [ "$("$EXAMPLES" commands "$PAGE" | wc -l)" -ge 25 ]
}

@test "kago(7): the extraction finds commands, continuations, expectations and statuses" {
    cat >"$BATS_TEST_TMPDIR/t.7" <<'PAGE'
.SH A
.SS "Sec one"
.EX
# echo \(aqa b\(aq \e
  c\-d
a b c-d
.EE
.\" expect: ^a b c-d$
.EX
# false
.EE
.\" status: 1
.SS Two
.EX
$ id \-u
65534
.EE
.\" expect: ^65534$
PAGE
    run "$EXAMPLES" sections "$BATS_TEST_TMPDIR/t.7"
    assert_output "Sec one
Two"
    run "$EXAMPLES" commands "$BATS_TEST_TMPDIR/t.7" "Sec one"
    assert_output "echo 'a b' c-d
false"
    run "$EXAMPLES" run "$BATS_TEST_TMPDIR/t.7" "Sec one"
    assert_success
    run "$EXAMPLES" run "$BATS_TEST_TMPDIR/t.7" Two
    assert_success
    # and it can fail: a wrong expectation is reported with both outputs
    sed -i 's/^65534$/65534/; s/expect: \^65534\$/expect: ^1234$/' "$BATS_TEST_TMPDIR/t.7"
    run "$EXAMPLES" run "$BATS_TEST_TMPDIR/t.7" Two
    assert_failure
    assert_output --partial "no line matches /^1234$/"
}

@test "kago(7) step 1: a process tree of its own" {
    run_section "Step 1: a process tree of its own"
}

@test "kago(7) step 2: a hostname of its own" {
    run_section "Step 2: a hostname of its own"
}

@test "kago(7) step 3: a root file system of its own" {
    run_section "Step 3: a root file system of its own"
}

@test "kago(7) step 4: fewer privileges" {
    run_section "Step 4: fewer privileges"
}

@test "kago(7) step 5: limits" {
    run_section "Step 5: limits"
}

@test "kago(7) step 6: a network of its own" {
    run_section "Step 6: a network of its own"
}

@test "kago(7) step 7: without root" {
    run_section "Step 7: without root"
}

@test "kago(7) step 8: watching it work" {
    run_section "Step 8: watching it work"
}

@test "kago(7) the full chain" {
    require_static
    run_section "The full chain"
}

@test "kago(7) one file" {
    run_section "One file"
}

@test "kago(7) from an image" {
    require_static
    run_section "From an image"
}

# The page's registry is localhost:5000; this one is on a free port of
# 127.0.0.1, holding the busybox tree as kago/busybox:1.
@test "kago(7) from a registry" {
    require_static
    require_registry
    registry_start "$BATS_TEST_TMPDIR/registry"
    image-layers --store "$BATS_TEST_TMPDIR/src" --import "$KAGO_ROOTFS" busybox:1 >&2
    registry_push "$BATS_TEST_TMPDIR/src:busybox:1" kago/busybox:1
    MAN_EXAMPLES_SUBST="localhost:5000=$REGISTRY" run_section "From a registry"
    registry_stop_all
}

@test "kago(7) one kernel" {
    run_section "One kernel"
}
