#!/usr/bin/env bats
# The documentation tells the truth: every long option that a program's
# --help prints appears in its man page and in its bash, zsh and fish
# completions; every man page has the man-pages(7) sections and renders
# without warnings; every program has an example script.
load helpers

programs() {
    local p
    for p in "$KAGO_BIN"/*; do
        [ -x "$p" ] && [ -f "$p" ] && basename "$p"
    done
}

# The long options of the option lines of --help ("  -v,--verbose  ...",
# "  --pid  ..."), not the ones named in descriptions.
long_options() {
    "$KAGO_BIN/$1" --help | grep -E '^  +(-[A-Za-z0-9],)?--[a-z]' |
        grep -oE -- '^ +(-[A-Za-z0-9],)?--[a-z][a-z0-9-]*' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

@test "every program has a man page with the man-pages(7) sections" {
    for p in $(programs); do
        [ -f "$KAGO_TOP/man/$p.1" ] || fail "man/$p.1 is missing"
        for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" ENVIRONMENT EXAMPLES "SEE ALSO"; do
            grep -qE "^\.SH \"?$s\"?\$" "$KAGO_TOP/man/$p.1" || fail "man/$p.1 has no $s section"
        done
    done
}

@test "every man page renders without warnings" {
    command -v man >/dev/null || skip "man-db is not installed (make deps)"
    for f in "$KAGO_TOP"/man/*.[17]; do
        run bash -c "MANWIDTH=80 man --warnings -l '$f' 2>&1 >/dev/null"
        [ -z "$output" ] || fail "$f: $output"
    done
}

@test "every long option in --help is in the man page" {
    for p in $(programs); do
        for o in $(long_options "$p"); do
            grep -qF -- "${o//-/\\-}" "$KAGO_TOP/man/$p.1" || grep -qF -- "$o" "$KAGO_TOP/man/$p.1" ||
                fail "man/$p.1 does not mention $o"
        done
    done
}

@test "every long option in --help is in the bash, zsh and fish completions" {
    for p in $(programs); do
        local b="$KAGO_TOP/completions/bash/$p" z="$KAGO_TOP/completions/zsh/_$p" f="$KAGO_TOP/completions/fish/$p.fish"
        [ -f "$b" ] || fail "completions/bash/$p is missing"
        [ -f "$z" ] || fail "completions/zsh/_$p is missing"
        [ -f "$f" ] || fail "completions/fish/$p.fish is missing"
        for o in $(long_options "$p"); do
            grep -qF -- "$o" "$b" || fail "completions/bash/$p does not offer $o"
            grep -qF -- "$o" "$z" || fail "completions/zsh/_$p does not offer $o"
            grep -qF -- "-l ${o#--}" "$f" || fail "completions/fish/$p.fish does not offer $o"
        done
    done
}

@test "the bash completions load and complete the wrapped command" {
    [ -f /usr/share/bash-completion/bash_completion ] || skip "bash-completion is not installed (make deps)"
    for p in $(programs); do
        run bash -c "source /usr/share/bash-completion/bash_completion; source '$KAGO_TOP/completions/bash/$p'; complete -p $p"
        assert_success
    done
}

@test "every program has an example script" {
    for p in $(programs); do
        ls "$KAGO_TOP"/examples/ | grep -qE "$p|^$(echo "$p" | cut -d- -f1)-|$(echo "$p" | cut -d- -f2)" || fail "no example script for $p"
    done
}

@test "every program prints nothing on stdout while chaining" {
    for p in $(programs); do
        [ "$p" = pack-selfexec ] && continue
        run bash -c "'$KAGO_BIN/$p' --dry-run -- /bin/true 2>/dev/null"
        [ -z "$output" ] || fail "$p --dry-run wrote to stdout: $output"
    done
}

@test "every program answers --version and exits 0" {
    for p in $(programs); do
        run "$KAGO_BIN/$p" --version
        assert_success
        assert_output --partial "$p (kago)"
    done
}

@test "every program turns an unknown option into 125 with the usage hint" {
    for p in $(programs); do
        run "$KAGO_BIN/$p" --no-such-option-kago
        [ "$status" -eq 125 ] || fail "$p: status $status"
        assert_output --partial "Try '$p --help' for more information."
    done
}
