#!/usr/bin/env bats
# The test suite's own tools: tests/make-debian-rootfs.sh takes its Debian
# mirror from apt's configured sources, never from a built-in address.
load helpers

setup_file() { kago_setup_file; }
teardown_file() { kago_teardown_file; }

MK="$KAGO_TOP/tests/make-debian-rootfs.sh"

setup() {
    APT="$BATS_TEST_TMPDIR/apt"
    mkdir -p "$APT/sources.list.d"
    unset KAGO_DEBIAN_MIRROR
}

@test "make-debian-rootfs: the mirror of a one-line sources.list, options and all" {
    cat >"$APT/sources.list" <<'S'
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://list.example/debian bookworm main
S
    KAGO_APT_DIR=$APT run "$MK" --print-mirror
    assert_success
    assert_output http://list.example/debian
}

@test "make-debian-rootfs: the mirror of a deb822 .sources file, skipping disabled and other suites" {
    cat >"$APT/sources.list.d/debian.sources" <<'S'
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
# a comment
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src deb
URIs: http://sources.example/debian
Suites: bookworm bookworm-updates
Components: main
S
    KAGO_APT_DIR=$APT run "$MK" --print-mirror
    assert_success
    assert_output http://sources.example/debian
}

@test "make-debian-rootfs: a .list file in sources.list.d counts too" {
    echo "deb http://dotlist.example/debian bookworm main" >"$APT/sources.list.d/x.list"
    KAGO_APT_DIR=$APT run "$MK" --print-mirror
    assert_success
    assert_output http://dotlist.example/debian
}

@test "make-debian-rootfs: no configured mirror is a clear failure, never a built-in address" {
    echo "deb http://security.example/debian-security bookworm-security main" >"$APT/sources.list"
    KAGO_APT_DIR=$APT run "$MK" --print-mirror
    assert_failure
    assert_output --partial "make-debian-rootfs: no Debian mirror for bookworm in $APT/sources.list or $APT/sources.list.d/"
    refute_output --partial deb.debian.org
    KAGO_APT_DIR=$APT run "$MK" "$BATS_TEST_TMPDIR/rootfs"
    assert_failure
    assert_output --partial "no Debian mirror for bookworm"
    [ ! -e "$BATS_TEST_TMPDIR/rootfs" ]
}

@test "make-debian-rootfs: KAGO_DEBIAN_MIRROR names one explicitly" {
    KAGO_APT_DIR=$APT KAGO_DEBIAN_MIRROR=http://explicit.example/debian run "$MK" --print-mirror
    assert_success
    assert_output http://explicit.example/debian
}
