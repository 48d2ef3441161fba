#!/usr/bin/env bats
# examples/minc, the MINCS-compatible front end: the behaviours MINCS's own
# test cases check (test.d/00_basic, 01_rootfs, 03_network), run through the
# kago chain minc builds, plus the option mapping and exit statuses.
load helpers
bats_require_minimum_version 1.5.0

setup_file() { kago_setup_file; }
teardown_file() { kago_teardown_file; }

MINC="$KAGO_TOP/examples/minc"


setup() {
    KEEP_DIRS=()
}

teardown() {
    local d
    for d in "${KEEP_DIRS[@]}"; do rm -rf "$d"; done
    [ -z "${BIND_DIR:-}" ] || rm -rf "$BIND_DIR"
}

@test "minc: --help lists the MINCS options and exits 0" {
    run "$MINC" --help
    assert_success
    for o in --rootdir --keep --tempdir --direct --background --bind --net --port --cpu \
        --mem-limit --mem-swap --cpu-shares --cpu-quota --pid-max --name --user --nocaps \
        --pivot --nopriv --usedev --debug; do
        assert_output --partial -- "$o"
    done
}

@test "minc: dash and busybox sh print the same chain" {
    command -v dash >/dev/null || skip "dash is not installed (make deps)"
    local args=(-r "$KAGO_ROOTFS" --name 'web box' -p 8080:80 --mem-limit 64M --pid-max 32
        --user 1000:1234 --nocaps cap_net_raw -- sh -c "echo it's")
    run dash "$MINC" --print-chain "${args[@]}"
    assert_success
    local d=$output
    run busybox sh "$MINC" --print-chain "${args[@]}"
    assert_success
    assert_equal "$output" "$d"
}

@test "minc: each option maps onto its kago program" {
    run "$MINC" --print-chain -r "$KAGO_ROOTFS" --name box --net dens -p 8080:80 -p 5353:53:udp \
        --mem-limit 64M --mem-swap 96M --cpu-shares 512 --cpu-quota 50000 --pid-max 32 -c 0x5 \
        -b /etc:/hostetc --user 1000:1234 --nocaps cap_net_raw -- id
    assert_success
    assert_line "cg-limit --memory 64M --memory-swap 33554432 --cpu-weight 50 --cpus 0.5 --pids 32 --cpuset-cpus 0,2 -- \\"
    assert_line "net-setup --veth --nat --publish 8080:80 --publish 5353:53/udp -- \\"
    assert_line "unshare-run --pid --mount --uts --ipc --hostname box -- \\"
    assert_line "mount-layers --layer $KAGO_ROOTFS --tmp-upper --proc --dev --bind /etc:/hostetc --pivot -- \\"
    assert_line "cap-drop --keep all --drop cap_net_raw --user 1000:1234 -- \\"
    assert_line "id"
}

@test "minc: --net raw, raw,IF and dens; --nopriv maps root and uses user-mode networking" {
    run "$MINC" --print-chain --net raw true
    assert_line "net-setup --raw -- \\"
    run "$MINC" --print-chain --net raw,dummy0 true
    assert_line "net-setup --raw --move dummy0 -- \\"
    run "$MINC" --print-chain --nopriv "$KAGO_ROOTFS" --net dens true
    assert_line "net-setup --user-mode -- \\"
    assert_line "unshare-run --user --map-root --pid --mount --uts --ipc -- \\"
}

@test "minc: a bad --net mode is refused with 125" {
    run "$MINC" --net nonexist
    [ "$status" -eq 125 ]
    assert_output --partial "minc: --net: unknown mode 'nonexist'"
    run "$MINC" --net=rowdy true
    [ "$status" -eq 125 ]
    assert_output --partial "unknown mode 'rowdy'"
}

@test "minc: --qemu, --um and --cross answer not supported with 125" {
    for o in --qemu --um "--cross arm64" "--arch arm64"; do
        run "$MINC" $o true
        [ "$status" -eq 125 ] || fail "$o: status $status"
        assert_output --partial "not supported"
    done
}

@test "minc: an unknown option is a usage error, 125" {
    run "$MINC" --no-such-option true
    [ "$status" -eq 125 ]
    assert_output --partial "Try 'minc --help' for more information."
}

@test "minc: a missing option argument and a missing root are 125" {
    run "$MINC" --name
    [ "$status" -eq 125 ]
    assert_output --partial "option '--name' requires an argument"
    run "$MINC" -r /nonexistent/kago-minc true
    [ "$status" -eq 125 ]
    assert_output --partial "/nonexistent/kago-minc"
}

# --- MINCS's own test cases, run for real ---------------------------------

@test "minc (MINCS noopt): ps in the host's root shows PID 1" {
    require_progs unshare-run mount-layers
    run "$MINC" ps -o pid=,comm=
    assert_success
    assert_line --regexp '^ *1 [a-z]'
    assert_line --regexp '^ *[0-9]+ ps$'
}

@test "minc: ps in a busybox root shows PID 1" {
    require_progs unshare-run mount-layers
    run "$MINC" -r "$KAGO_ROOTFS" ps
    assert_success
    assert_line --regexp '^ *1 root '
    assert_line --regexp '^ *[0-9]+ root .* ps$'
}

@test "minc: on a terminal the container gets one of its own (unshare-run --tty); without, none is asked for" {
    require_progs unshare-run mount-layers
    require_static
    [ -x "$(test_prog tty_drive)" ] || skip "tests/progs/tty_drive is not built (make bats builds it)"
    run "$MINC" --print-chain -r "$KAGO_ROOTFS" true </dev/null
    assert_success
    refute_output --partial -- --tty
    run "$(test_prog tty_drive)" "$MINC" --print-chain -r "$KAGO_ROOTFS" true
    assert_line --regexp '^unshare-run .*--tty -- '
    # In the container, tty names a terminal of the container's own devpts.
    run "$(test_prog tty_drive)" "$MINC" -r "$KAGO_ROOTFS" sh -c 'tty; stat -L -c %d /proc/self/fd/0; stat -c %d /dev/pts/ptmx'
    assert_success
    assert_line --regexp '^/dev/pts/[0-9]+'
    [ "$(printf '%s\n' "$output" | tr -d '\r' | sed -n '2,3p' | sort -u | wc -l)" = 1 ] || fail "not the container's devpts: $output"
}

@test "minc: a symlink to minc finds the programs in ../bin beside its target" {
    require_progs unshare-run mount-layers
    ln -s "$MINC" "$BATS_TEST_TMPDIR/minc"
    # PATH without the kago programs: only the ../bin fallback finds them.
    run env -i PATH=/usr/bin:/bin "$BATS_TEST_TMPDIR/minc" -r "$KAGO_ROOTFS" echo minc-via-link
    assert_success
    assert_output minc-via-link
}

@test "minc: kago programs that cannot be found are a clear 125, not the shell's 127" {
    cp "$MINC" "$BATS_TEST_TMPDIR/minc"
    run env -i PATH=/usr/bin:/bin "$BATS_TEST_TMPDIR/minc" -r "$KAGO_ROOTFS" echo never-runs
    assert_equal "$status" 125
    assert_output --partial "minc: the kago program unshare-run is not on PATH, nor in $BATS_TEST_TMPDIR/../bin beside minc"
    refute_output --partial never-runs
    # --print-chain needs no program: it only shows the chain.
    run env -i PATH=/usr/bin:/bin "$BATS_TEST_TMPDIR/minc" -r "$KAGO_ROOTFS" --print-chain echo hi
    assert_success
    assert_line --partial "mount-layers --layer $KAGO_ROOTFS"
}

@test "minc (MINCS bind): a bound file is visible" {
    require_progs unshare-run mount-layers
    BIND_DIR=$(mktemp -d /tmp/minc-bindtest.XXXXXX)
    key=$RANDOM$RANDOM
    echo "$key" >"$BIND_DIR/hello"
    run "$MINC" --bind "$BIND_DIR:/bindtest" cat /bindtest/hello
    assert_success
    assert_output "$key"
}

@test "minc (MINCS keep): --keep storage survives a -t rerun" {
    require_progs unshare-run mount-layers
    run "$MINC" --keep -r "$KAGO_ROOTFS" sh -c 'echo made-inside >/inside'
    assert_success
    dir=$(echo "$output" | grep reuse | xargs -n 1 | tail -n 1)
    KEEP_DIRS+=("$dir")
    [ -d "$dir/storage" ] || fail "no $dir/storage in: $output"
    assert_equal "$(cat "$dir/storage/inside")" made-inside
    echo HELLO >"$dir/storage/hello"
    run "$MINC" -t "$dir" cat /hello /inside
    assert_success
    assert_output "HELLO
made-inside"
}

@test "minc (MINCS name): --name sets the hostname" {
    require_progs unshare-run mount-layers
    name=hoge-$RANDOM
    run "$MINC" -r "$KAGO_ROOTFS" --name "$name" hostname
    assert_success
    assert_output "$name"
}

@test "minc (MINCS pivot): --pivot works" {
    require_progs unshare-run mount-layers
    run "$MINC" --pivot -r "$KAGO_ROOTFS" echo HELLO
    assert_success
    assert_output HELLO
    run "$MINC" --pivot -r "$KAGO_ROOTFS" sh -c 'cut -d" " -f5 /proc/self/mountinfo | head -1'
    assert_output /
}

@test "minc (MINCS rawnet): --net raw has exactly one link, lo" {
    require_progs net-setup unshare-run mount-layers
    run "$MINC" -r "$KAGO_ROOTFS" --net raw ip link
    assert_success
    [ "$(grep -c '^[0-9]*:' <<<"$output")" -eq 1 ] || fail "links: $output"
    assert_line --regexp '^1: lo: <LOOPBACK,UP'
}

@test "minc (MINCS user): --user 1000 and --user 1000:1234 give those ids" {
    require_static
    require_progs unshare-run mount-layers cap-drop
    run "$MINC" -r "$KAGO_ROOTFS" --user 1000 id -u
    assert_success
    assert_output 1000
    run "$MINC" -r "$KAGO_ROOTFS" --user 1000:1234 id -g
    assert_success
    assert_output 1234
}

@test "minc (MINCS bind_rootfs): -r ROOTFS with --bind" {
    require_progs unshare-run mount-layers
    run "$MINC" -r "$KAGO_ROOTFS" --bind "$KAGO_TOP:/kagosrc" ls /kagosrc/examples/minc
    assert_success
    assert_output /kagosrc/examples/minc
}

@test "minc (MINCS rootfs): -r ROOTFS is the root" {
    require_progs unshare-run mount-layers
    run "$MINC" -r "$KAGO_ROOTFS" cat /etc/motd
    assert_success
    assert_output "kago busybox rootfs"
}

@test "minc (MINCS nopriv): --nopriv DIR as an unprivileged user" {
    require_progs unshare-run mount-layers
    require_userns
    run as_nobody "$MINC" --nopriv "$KAGO_ROOTFS" sh -c 'cat /etc/motd; id -u; ps'
    assert_success
    assert_line "kago busybox rootfs"
    assert_line 0
    # PID 1 is unshare-run's init (its command line wiped to its name), the
    # command runs under it
    assert_line --regexp '^ *1 root +unshare-run$'
    assert_line --regexp '^ *2 root .*sh -c'
}

@test "minc: the command's exit status, 127 for a missing command" {
    require_progs unshare-run mount-layers
    run "$MINC" -r "$KAGO_ROOTFS" sh -c 'exit 7'
    [ "$status" -eq 7 ]
    run -127 "$MINC" -r "$KAGO_ROOTFS" /no/such/command
}

@test "minc: --pid-max limits the number of processes" {
    require_progs cg-limit unshare-run mount-layers
    run "$MINC" -r "$KAGO_ROOTFS" --pid-max 8 sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; wait'
    assert_output --partial "fork"
}

@test "minc: --debug traces every kernel call of the chain" {
    require_progs unshare-run mount-layers
    run "$MINC" --debug -r "$KAGO_ROOTFS" true
    assert_success
    assert_output --regexp "unshare-run: (clone|unshare)\\(CLONE_NEWPID"
    assert_output --partial "mount-layers: pivot_root("
}

@test "minc: --nocaps drops those capabilities" {
    require_static
    require_progs unshare-run mount-layers cap-drop
    run "$MINC" -r "$KAGO_ROOTFS" --nocaps cap_sys_admin,net_raw sh -c 'grep CapEff /proc/self/status'
    assert_success
    eff=$(printf '%d' "0x${output##*[[:space:]]}")
    [ $((eff & (1 << 21))) -eq 0 ] || fail "CAP_SYS_ADMIN is still effective: $output"
    [ $((eff & (1 << 13))) -eq 0 ] || fail "CAP_NET_RAW is still effective: $output"
    [ $((eff & 1)) -ne 0 ] || fail "CAP_CHOWN was dropped too: $output"
}

@test "minc: -c MASK, --mem-limit, --mem-swap, --cpu-shares and --cpu-quota run under cg-limit" {
    require_progs cg-limit unshare-run mount-layers
    run "$MINC" -r "$KAGO_ROOTFS" -c 0x1 --mem-limit 64M --mem-swap 128M --cpu-shares 512 --cpu-quota 50000 \
        grep Cpus_allowed_list /proc/self/status
    assert_success
    assert_output --regexp 'Cpus_allowed_list:.0$'
}

@test "minc: --usedev binds the host's /dev; -D gives a read-only root" {
    require_progs unshare-run mount-layers
    run "$MINC" -r "$KAGO_ROOTFS" --usedev ls /dev/kmsg
    assert_success
    run "$MINC" -r "$KAGO_ROOTFS" ls /dev/kmsg
    assert_failure
    run "$MINC" -D -r "$KAGO_ROOTFS" touch /kago-minc-direct
    assert_failure
    assert_output --partial "Read-only file system"
}

@test "minc: -B runs in the background, output in TEMPDIR/log, and -k keeps it" {
    require_progs unshare-run mount-layers
    run "$MINC" -B -k -r "$KAGO_ROOTFS" sh -c 'echo from-the-background'
    assert_success
    dir=$(echo "$output" | sed -n 's|^Run container in background. See \(.*\)/log for output.$|\1|p')
    [ -n "$dir" ] || fail "no log directory in: $output"
    KEEP_DIRS+=("$dir")
    for _ in $(seq 50); do grep -q from-the-background "$dir/log" 2>/dev/null && break; sleep 0.1; done
    assert_equal "$(cat "$dir/log")" from-the-background
}

@test "minc (MINCS parse): --net dens gives eth0 an address on the bridge" {
    require_progs net-setup unshare-run mount-layers
    run timeout 120 "$MINC" -r "$KAGO_ROOTFS" --net dens ip -o -4 addr show eth0
    assert_success
    assert_output --regexp 'inet 10\.88\.[0-9]+\.[0-9]+/16'
}

@test "minc: runs a container under busybox sh, as MINCS does" {
    require_progs unshare-run mount-layers
    run busybox sh "$MINC" -r "$KAGO_ROOTFS" --name minc-bb hostname
    assert_success
    assert_output minc-bb
}

@test "minc: minc(1) lists every option of minc --help" {
    for o in $("$MINC" --help | grep -oE -- '--[a-zA-Z0-9][a-zA-Z0-9-]*' | sort -u); do
        grep -qF -- "${o//-/\\-}" "$KAGO_TOP/man/minc.1" || fail "man/minc.1 does not mention $o"
    done
}

@test "minc -r NAME: an image of image-layers' store, its User, WorkingDir and Cmd" {
    require_static
    require_progs image-layers unshare-run mount-layers cap-drop
    command -v python3 >/dev/null || skip "python3 is not installed (make deps)"
    local d
    d=$(mktemp -d /tmp/kago-minc-image.XXXXXX)
    KEEP_DIRS+=("$d")
    python3 "$KAGO_TOP/tests/lib/make-oci-image.py" "$KAGO_ROOTFS" "$d/oci" --ref app:1
    export KAGO_IMAGE_STORE=$d/store
    image-layers --import "oci:$d/oci"
    run "$MINC" --print-chain -r app:1
    assert_success
    assert_line --index 0 "image-layers app:1 -- \\"
    refute_output --partial -- "--layer"
    run "$MINC" -r app:1 </dev/null
    assert_success
    assert_output "hello from /app as 1000"
    run "$MINC" -r app:1 --user 0 -- cat /data/keep </dev/null
    assert_success
    assert_output keep
    run "$MINC" -r no-such-image:1 true
    assert_equal "$status" 125
    assert_output --partial "nor an image in image-layers' store"
}
