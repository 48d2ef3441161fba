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
