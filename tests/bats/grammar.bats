#!/usr/bin/env bats
# The grammar every program shares (DESIGN.md): an option takes one word,
# the command may follow it directly without "--", and a descriptor option
# never names 0, 1 or 2. The options are read from each program's --help,
# so a new one cannot be missed: a repeatable option that has no valid word
# in the table below fails the first test.
load helpers

setup_file() { kago_setup_file; }
teardown_file() { kago_teardown_file; }

PROGRAMS=(cap-drop cg-limit image-layers mount-layers net-setup pack-selfexec unshare-run)

# io.max takes a device's MAJ:MIN; 8:0 (sda) need not exist for a dry run.
# "PROGRAM OPTION" -> the words before it (the context the option needs),
# then a valid word for it. Every run is a --dry-run: it makes no call.
declare -gA CONTEXT=(
    ["net-setup --publish"]="--veth"
    ["mount-layers --bind"]="--layer /tmp"
    ["mount-layers --tmpfs"]="--layer /tmp"
    ["mount-layers --mask"]="--layer /tmp --proc"
    ["mount-layers --read-only-path"]="--layer /tmp --proc"
    ["mount-layers --symlink"]="--layer /tmp"
    ["mount-layers --mkdir"]="--layer /tmp"
    ["mount-layers --file"]="--layer /tmp"
    ["mount-layers --chdir"]="--layer /tmp"
    ["mount-layers --env"]="--layer /tmp"
    ["mount-layers --pass-env"]="--layer /tmp"
    ["pack-selfexec --add-host"]="-o $BATS_FILE_TMPDIR/g.run --from-host /bin/true"
    ["pack-selfexec --env"]="-o $BATS_FILE_TMPDIR/g.run --rootfs /tmp"
    ["pack-selfexec --keep-caps"]="-o $BATS_FILE_TMPDIR/g.run --rootfs /tmp"
)
declare -gA WORD=(
    ["cap-drop --drop"]="net_raw"
    ["cap-drop --keep"]="chown"
    ["cap-drop --keep-fd"]="3"
    ["cg-limit --io-read-bps"]="8:0:1M"
    ["cg-limit --io-write-bps"]="8:0:1M"
    ["cg-limit --io-read-iops"]="8:0:100"
    ["cg-limit --io-write-iops"]="8:0:100"
    ["cg-limit --rlimit"]="nofile=100"
    ["mount-layers --layer"]="/tmp"
    ["mount-layers --bind"]="/tmp:/mnt"
    ["mount-layers --tmpfs"]="/tmp"
    ["mount-layers --mask"]="/proc/kcore"
    ["mount-layers --read-only-path"]="/proc/sys"
    ["mount-layers --symlink"]="a:/b"
    ["mount-layers --mkdir"]="/d"
    ["mount-layers --file"]="/etc/hostname:/h"
    ["mount-layers --chdir"]="/"
    ["mount-layers --env"]="A=1"
    ["mount-layers --pass-env"]="TERM"
    ["net-setup --publish"]="18080:80"
    ["pack-selfexec --add-host"]="/etc/hostname"
    ["pack-selfexec --env"]="A=1"
    ["pack-selfexec --keep-caps"]="chown"
    ["unshare-run --map-user"]="0:0:1"
    ["unshare-run --map-group"]="0:0:1"
    ["unshare-run --join"]="net=/proc/self/ns/net"
    ["unshare-run --keep-fd"]="3"
)

# The long options whose --help line says "repeatable".
repeatables() {
    "$1" --help | awk '/repeatable/ { for (i = 1; i <= NF; i++) if ($i ~ /^--/) { print $i; break } }' |
        sed 's/^.*,//'
}

# The long options whose name ends in -fd.
descriptor_options() { "$1" --help | grep -oE -- '--[a-z-]+-fd\b' | sort -u; }

@test "each program lists its repeatable options, and each one has a word in this file" {
    local p o n=0 missing=()
    for p in "${PROGRAMS[@]}"; do
        for o in $(repeatables "$p"); do
            n=$((n + 1))
            [[ -n "${WORD[$p $o]:-}" ]] || missing+=("$p $o")
        done
    done
    # mount-layers --layer, cg-limit --rlimit, net-setup --publish, ...
    ((n >= 20)) || fail "only $n repeatable options found in --help"
    ((${#missing[@]} == 0)) || fail "no word in grammar.bats for: ${missing[*]}"
}

@test "every repeatable option of every program can be followed directly by the command" {
    local p o out bad=()
    for p in "${PROGRAMS[@]}"; do
        for o in $(repeatables "$p"); do
            # shellcheck disable=SC2086  # CONTEXT is several words
            local st=0
            out=$("$p" --dry-run ${CONTEXT[$p $o]:-} "$o" "${WORD[$p $o]}" echo grammar-ok 3</dev/null 2>&1) || st=$?
            if [[ $p == pack-selfexec ]]; then
                [[ $st == 0 && $out == *'command: ["echo", "grammar-ok"]'* ]] || bad+=("$p $o (exit $st): $out")
            else
                [[ $st == 0 && $out == *'execve("echo", ["echo", "grammar-ok"], envp) (dry run)'* ]] ||
                    bad+=("$p $o (exit $st): $out")
            fi
        done
    done
    ((${#bad[@]} == 0)) || fail "$(printf '%s\n---\n' "${bad[@]}")"
}

@test "mount-layers --layer DIR echo hi runs echo (the case of the issue)" {
    run mount-layers --dry-run --layer /tmp --layer /tmp echo hi
    assert_success
    assert_output --partial 'execve("echo", ["echo", "hi"], envp) (dry run)'
    refute_output --partial 'No such file'
}

@test "a repeatable option repeated still collects every word" {
    run cg-limit --dry-run --rlimit nofile=100 --rlimit core=0 echo hi
    assert_success
    assert_output --partial 'RLIMIT_NOFILE, {rlim_cur=100, rlim_max=100}'
    assert_output --partial 'RLIMIT_CORE, {rlim_cur=0, rlim_max=0}'
    assert_output --partial 'execve("echo", ["echo", "hi"], envp) (dry run)'
}

@test "help shows one word per option, never 'WORD ...'" {
    local p
    for p in "${PROGRAMS[@]}"; do
        run "$p" --help
        assert_success
        assert_output --partial -- "--dry-run"
        refute_output --regexp ' --[a-z-]+ [^ ]+ \.\.\.'
    done
}

@test "every descriptor option refuses 0, 1 and 2 with 125" {
    local p o fd n=0
    for p in "${PROGRAMS[@]}"; do
        for o in $(descriptor_options "$p"); do
            n=$((n + 1))
            for fd in 0 1 2; do
                run "$p" "$o" "$fd" true
                assert_equal "$status" 125
                assert_output --partial -- "$o: $fd is the command's "
                assert_output --partial "use a descriptor above 2"
            done
            run "$p" "$o" 57 true
            assert_equal "$status" 125
            assert_output --partial -- "$o: 57 is not an open descriptor"
            run "$p" "$o" x true
            assert_equal "$status" 125
            assert_output --partial -- "$o: 'x' is not a descriptor number"
        done
    done
    # unshare-run --info-fd and --keep-fd, cg-limit --status-fd, cap-drop --keep-fd
    ((n >= 4)) || fail "only $n descriptor options found in --help"
}

@test "unshare-run --info-fd 1 is refused: the command's stdout stays its own" {
    run unshare-run --info-fd 1 echo payload-out
    assert_equal "$status" 125
    assert_output --partial -- "--info-fd: 1 is the command's stdout"
    refute_output --partial payload-out
}

@test "a descriptor option above 2 still works" {
    run bash -c 'unshare-run --uts --info-fd 3 -- echo payload-out 3>"$BATS_TEST_TMPDIR/info"'
    assert_success
    assert_output payload-out
    run cat "$BATS_TEST_TMPDIR/info"
    assert_output --partial '"pid"'
}
