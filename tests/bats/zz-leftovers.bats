#!/usr/bin/env bats
# Runs last: the whole suite left nothing on the host.
load helpers

@test "the suite left no mounts, interfaces, cgroups, nftables tables, netns or state dirs" {
    [ -n "${KAGO_LEFTOVERS_BEFORE:-}" ] || skip "run through tests/run.sh, which takes the first snapshot"
    run bash -c "comm -13 '$KAGO_LEFTOVERS_BEFORE' <('$KAGO_TOP/tests/lib/leftovers.sh')"
    assert_success
    assert_output ""
}
