#!/usr/bin/env bats
# pack-selfexec: the packer, and the packed files it makes, run against the
# real kernel: as root, and rootless as nobody.
load helpers

setup_file() {
    kago_setup_file
    # A directory nobody (65534) can use: its HOME, its cache, its files.
    PK_NB=$(mktemp -d /tmp/kago-pack-nb.XXXXXX)
    chmod 0755 "$PK_NB"
    chown 65534:65534 "$PK_NB"
    export PK_NB
    PK_DIR=$(mktemp -d /tmp/kago-pack-t.XXXXXX)
    chmod 0755 "$PK_DIR"
    export PK_DIR
    # One busybox file, shared by most tests.
    pack-selfexec -o "$PK_DIR/bb.run" --rootfs "$KAGO_ROOTFS" -- /bin/sh -c 'echo hello; exit 0'
    cp "$PK_DIR/bb.run" "$PK_NB/bb.run"
    chown 65534:65534 "$PK_NB/bb.run"
}

teardown_file() {
    rm -rf "$PK_NB" "$PK_DIR"
    kago_teardown_file
}

# Run a packed file as nobody, with a clean environment and a cache of its own.
nobody_run() {
    setpriv --reuid=65534 --regid=65534 --clear-groups -- \
        env -i PATH=/usr/bin:/bin HOME="$PK_NB" XDG_CACHE_HOME="$PK_NB/cache" "$@"
}

bb() { "$PK_DIR/bb.run" --kago-cache "$PK_DIR/cache" "$@"; }

# Write the hostile corpus (tests/pack/hostile.cpp) into DIR, owned by nobody.
hostile_corpus() {
    local gen="$KAGO_BUILD/tests/pack-hostile"
    [ -x "$gen" ] || skip "the corpus generator is not built (make PROGRAMS=pack-selfexec)"
    "$gen" "$1"
    chown -R 65534:65534 "$1"
}

@test "pack-selfexec --help and --version exit 0" {
    run pack-selfexec --help
    assert_success
    assert_output --partial "--rootfs"
    assert_output --partial "--from-host"
    run pack-selfexec --version
    assert_success
    assert_output --partial "(kago)"
}

@test "pack-selfexec: usage errors exit 125 with 'Try'" {
    run pack-selfexec --rootfs "$KAGO_ROOTFS" -- /bin/true
    assert_failure 125
    assert_output --partial "-o FILE is required"
    assert_output --partial "Try 'pack-selfexec --help'"
    run pack-selfexec -o "$PK_DIR/x.run" --rootfs "$KAGO_ROOTFS" --from-host /bin/true
    assert_failure 125
    run pack-selfexec -o "$PK_DIR/x.run" --rootfs "$KAGO_ROOTFS" --net bridge
    assert_failure 125
    run pack-selfexec -o "$PK_DIR/x.run" --rootfs "$KAGO_ROOTFS" --bogus
    assert_failure 125
    run pack-selfexec -o "$PK_DIR/x.run" --rootfs "$KAGO_ROOTFS" --read-only --tmp-upper
    assert_failure 125
    run pack-selfexec -o "$PK_DIR/x.run" --rootfs "$KAGO_ROOTFS" --frame-size 1K
    assert_failure 125
    [ ! -e "$PK_DIR/x.run" ]
}

@test "pack-selfexec: a missing rootfs exits 125 and names it" {
    run pack-selfexec -o "$PK_DIR/x.run" --rootfs /nonexistent-kago -- /bin/true
    assert_failure 125
    assert_output --partial "/nonexistent-kago"
    [ ! -e "$PK_DIR/x.run" ]
}

@test "pack-selfexec --dry-run prints the plan and writes nothing" {
    run as_nobody "$KAGO_BIN/pack-selfexec" --dry-run -o "$PK_DIR/dry.run" --rootfs "$KAGO_ROOTFS" -- /bin/true
    assert_success
    assert_output --partial "(dry run)"
    assert_output --partial "zstd level 3"
    [ ! -e "$PK_DIR/dry.run" ]
}

@test "pack-selfexec -v traces the writes" {
    run pack-selfexec -v -o "$PK_DIR/v.run" --rootfs "$KAGO_ROOTFS" -- /bin/true
    assert_success
    assert_output --partial "rename("
    assert_output --partial "entries"
}

@test "the stub is static and at most 1.5 MiB" {
    local stub="$KAGO_BUILD/pack/kago-stub"
    [ -e "$stub" ] || skip "the stub is not in KAGO_BUILD"
    run file "$stub"
    assert_output --regexp "statically linked|static-pie linked"
    [ "$(stat -c %s "$stub")" -le 1572864 ]
    run "$PK_DIR/bb.run" --kago-info
    assert_line --regexp '^stub: +1\.[0-9] MiB$'
}

@test "a packed file runs its command as root (exit status 0)" {
    run bb
    assert_success
    assert_output "hello"
}

@test "a packed file passes the command's exit status through" {
    pack-selfexec -o "$PK_DIR/st.run" --rootfs "$KAGO_ROOTFS" -- /bin/sh -c 'exit "$0"'
    run "$PK_DIR/st.run" --kago-cache "$PK_DIR/cache" 7
    assert_failure 7
}

@test "a packed file exits 127 when the command is not found" {
    pack-selfexec -o "$PK_DIR/nf.run" --rootfs "$KAGO_ROOTFS" -- /no/such/command
    run "$PK_DIR/nf.run" --kago-cache "$PK_DIR/cache"
    assert_failure 127
    assert_output --partial "/no/such/command"
}

@test "a packed file exits 126 when the command cannot be executed" {
    pack-selfexec -o "$PK_DIR/ne.run" --rootfs "$KAGO_ROOTFS" -- /etc/passwd
    run "$PK_DIR/ne.run" --kago-cache "$PK_DIR/cache"
    assert_failure 126
}

@test "a packed file exits 126 for a script without #!: no retry through /bin/sh, as the chain" {
    local t="$PK_DIR/noexec-tree"
    cp -a "$KAGO_ROOTFS" "$t"
    printf 'echo ran by a shell\n' >"$t/bin/no-interpreter" && chmod 755 "$t/bin/no-interpreter"
    pack-selfexec -o "$PK_DIR/noexec.run" --rootfs "$t" -- /bin/no-interpreter
    run "$PK_DIR/noexec.run" --kago-cache "$PK_DIR/cache"
    assert_failure 126
    assert_output --partial "/bin/no-interpreter: Exec format error"
    refute_output --partial "ran by a shell"
}

@test "a packed file exits 128+N when the command is killed by signal N" {
    pack-selfexec -o "$PK_DIR/sig.run" --rootfs "$KAGO_ROOTFS" -- /bin/sh -c 'kill -TERM $$'
    run "$PK_DIR/sig.run" --kago-cache "$PK_DIR/cache"
    assert_failure 143
}

@test "the runner returns the command's status at once; what the command left running dies with the container" {
    pack-selfexec -o "$PK_DIR/bg.run" --rootfs "$KAGO_ROOTFS" -- /bin/sh -c 'sleep 987 & echo started; exit 3'
    # A reader of the output sees end of file: the background sleep's copy
    # goes when the init, which reported first, ends the PID namespace.
    run timeout 20 sh -c '"$0" --kago-cache "$1"; echo "status $?"' "$PK_DIR/bg.run" "$PK_DIR/cache"
    assert_success
    assert_line started
    assert_line "status 3"
    local i
    for i in $(seq 50); do pgrep -x -f "sleep 987" >/dev/null || break; sleep 0.1; done
    run pgrep -x -f "sleep 987"
    assert_failure
}

# start_runner WHO NAME: run $PK_DIR/NAME.run as root, or its copy
# $PK_NB/NAME.run as nobody (own cache, bare environment), in the
# background with its output in $PK_NB/NAME.out, and wait until the command
# printed "ready". exec, and setpriv and env exec too, so RUNNER_PID is the
# runner's own pid.
start_runner() {
    local who=$1 name=$2 i
    local out=$PK_NB/$name.out
    rm -f "$out"
    if [ "$who" = root ]; then
        (exec "$PK_DIR/$name.run" --kago-cache "$PK_DIR/cache") >"$out" 2>&1 3>&- &
    else
        (exec setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH=/usr/bin:/bin \
            HOME="$PK_NB" XDG_CACHE_HOME="$PK_NB/cache" "$PK_NB/$name.run") >"$out" 2>&1 3>&- &
    fi
    RUNNER_PID=$!
    for i in $(seq 300); do grep -q ready "$out" 2>/dev/null && break; sleep 0.1; done
}

@test "a signal sent to the runner reaches the command, as root and rootless" {
    pack-selfexec -o "$PK_DIR/trap.run" --rootfs "$KAGO_ROOTFS" -- /bin/sh -c \
        'trap "echo got TERM; exit 42" TERM; echo ready; while :; do sleep 1 & wait $!; done'
    cp "$PK_DIR/trap.run" "$PK_NB/trap.run"
    chown 65534:65534 "$PK_NB/trap.run"
    local who pid st i out=$PK_NB/trap.out
    for who in root nobody; do
        [ "$who" = root ] || as_nobody unshare --user --map-root-user true 2>/dev/null || continue
        start_runner "$who" trap
        pid=$RUNNER_PID
        kill -TERM "$pid"
        for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; echo "$who: the runner outlived SIGTERM" >&2; false; }
        st=0
        wait "$pid" || st=$?
        echo "$who: status $st" >&2
        cat "$out" >&2
        [ "$st" = 42 ]
        grep -qx "got TERM" "$out"
    done
}

@test "kill -9 of the runner: the container ends with it, as root and rootless (the init may share its memory)" {
    pack-selfexec -o "$PK_DIR/k9.run" --rootfs "$KAGO_ROOTFS" -- /bin/sh -c 'echo ready; exec sleep 986'
    cp "$PK_DIR/k9.run" "$PK_NB/k9.run"
    chown 65534:65534 "$PK_NB/k9.run"
    local who pid i out=$PK_NB/k9.out
    for who in root nobody; do
        [ "$who" = root ] || as_nobody unshare --user --map-root-user true 2>/dev/null || continue
        start_runner "$who" k9
        pid=$RUNNER_PID
        pgrep -x -f "sleep 986" >/dev/null || fail "$who: the command did not start: $(cat "$out")"
        kill -9 "$pid"
        wait "$pid" || true
        for i in $(seq 50); do pgrep -x -f "sleep 986" >/dev/null || break; sleep 0.1; done
        run pgrep -x -f "sleep 986"
        assert_failure
    done
}

@test "a packed file's runner errors exit 125" {
    run "$PK_DIR/bb.run" --kago-bogus
    assert_failure 125
    assert_output --partial "unrecognized runner option '--kago-bogus'"
}

@test "arguments are appended to the command; --kago-shell runs /bin/sh" {
    pack-selfexec -o "$PK_DIR/echo.run" --rootfs "$KAGO_ROOTFS" -- /bin/echo packed
    run "$PK_DIR/echo.run" --kago-cache "$PK_DIR/cache" one two
    assert_success
    assert_output "packed one two"
    run "$PK_DIR/echo.run" --kago-cache "$PK_DIR/cache" --kago-shell -c 'echo from the shell'
    assert_success
    assert_output "from the shell"
}

@test "the container: new namespaces, /proc, a minimal /dev, clean environment" {
    pack-selfexec -o "$PK_DIR/ns.run" --rootfs "$KAGO_ROOTFS" -- /bin/sh -c \
        'echo pid=$$; hostname; ls /dev; env; cat /proc/net/dev | grep -c :; grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status'
    FOO_FROM_HOST=1 KAGO_TRACE= run "$PK_DIR/ns.run" --kago-cache "$PK_DIR/cache"
    assert_success
    assert_line 'pid=2'  # PID 1 is the runner's init (the network helper is the runner's child)
    assert_line "kago"
    assert_line "null"
    assert_line "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert_line "1"   # only lo in a new network namespace
    assert_line --regexp '^Seccomp:\s+2$'
    refute_output --partial "FOO_FROM_HOST"
    refute_output --partial "KAGO_"
    [ -z "$(ls /dev | grep -x sda-kago 2>/dev/null)" ]
}

@test "the command keeps the CPU affinity the runner had, rootless too (an init moved off the runner's CPU gives it back)" {
    [ "$(nproc)" -gt 1 ] || skip "one CPU allowed: the runner moves nothing"
    local outside first
    outside=$(grep Cpus_allowed_list /proc/self/status)
    first=$(awk '/^Cpus_allowed_list/ { split($2, a, /[-,]/); print a[1] }' /proc/self/status)
    run bb --kago-shell -c 'grep Cpus_allowed_list /proc/self/status'
    assert_success
    assert_output "$outside"
    run nobody_run "$PK_NB/bb.run" --kago-shell -c 'grep Cpus_allowed_list /proc/self/status'
    assert_success
    assert_output "$outside"
    run taskset -c "$first" "$PK_DIR/bb.run" --kago-cache "$PK_DIR/cache" --kago-shell -c 'grep Cpus_allowed_list /proc/self/status'
    assert_success
    assert_output --regexp "Cpus_allowed_list:\s+$first\$"
}

@test "root in a user namespace (unshare -Ur) extracts as rootless does, and runs" {
    # A device node and a file of an id the namespace does not map: root
    # there can make neither.
    local t="$PK_DIR/userns-tree" c="$PK_DIR/cache-userns"
    cp -a "$KAGO_ROOTFS" "$t"
    mknod "$t/dev/kago-null" c 1 3
    touch "$t/owned-by-1234" && chown 1234:1234 "$t/owned-by-1234"
    pack-selfexec -o "$PK_DIR/userns.run" --rootfs "$t" -- /bin/sh -c 'echo hello'
    run unshare --user --map-root-user -- "$PK_DIR/userns.run" --kago-cache "$c"
    assert_success
    assert_line "hello"
    assert_output --partial "warning: skipped 1 device node (rootless"
    [ -z "$(find "$c" -type c)" ]
}

@test "a network namespace that cannot be made: 125 naming the step, with a hint" {
    run unshare --user --map-root-user -- sh -c \
        'echo 0 >/proc/sys/user/max_net_namespaces && exec "$1" --kago-cache "$2"' sh "$PK_DIR/bb.run" "$PK_DIR/cache-userns"
    assert_failure 125
    assert_output --partial "create the network namespace: unshare(CLONE_NEWNET): No space left on device"
    assert_output --partial "hint: a user namespace's user.max_net_namespaces is reached"
    refute_line "hello"
}

@test "--env, --workdir, --hostname and --user are baked in" {
    pack-selfexec -o "$PK_DIR/set.run" --rootfs "$KAGO_ROOTFS" --env GREETING=hi --workdir /etc \
        --hostname packed --user 65534:65534 -- /bin/sh -c 'echo $GREETING; pwd; hostname; id -u; id -g'
    run "$PK_DIR/set.run" --kago-cache "$PK_DIR/cache"
    assert_success
    assert_output "$(printf 'hi\n/etc\npacked\n65534\n65534')"
    run "$PK_DIR/set.run" --kago-info
    assert_line --regexp '^env: +GREETING=hi$'
    assert_line --regexp '^user: +65534:65534$'
}

@test "--keep-caps none leaves no capabilities; the default keeps some" {
    pack-selfexec -o "$PK_DIR/caps.run" --rootfs "$KAGO_ROOTFS" --keep-caps none -- grep CapEff /proc/self/status
    run "$PK_DIR/caps.run" --kago-cache "$PK_DIR/cache"
    assert_success
    assert_output --regexp 'CapEff:\s+0000000000000000'
    pack-selfexec -o "$PK_DIR/caps2.run" --rootfs "$KAGO_ROOTFS" -- grep CapEff /proc/self/status
    run "$PK_DIR/caps2.run" --kago-cache "$PK_DIR/cache"
    assert_success
    assert_output --regexp 'CapEff:\s+[0-9a-f]{16}'
    refute_output --regexp 'CapEff:\s+0000000000000000'
}

@test "--seccomp unconfined loads no filter" {
    pack-selfexec -o "$PK_DIR/sc.run" --rootfs "$KAGO_ROOTFS" --seccomp unconfined -- grep Seccomp: /proc/self/status
    run "$PK_DIR/sc.run" --kago-cache "$PK_DIR/cache"
    assert_success
    assert_output --regexp 'Seccomp:\s+0'
    run pack-selfexec -o "$PK_DIR/sc2.run" --rootfs "$KAGO_ROOTFS" --seccomp loose
    assert_failure 125
}

@test "--net host keeps the host's interfaces; none has only lo" {
    pack-selfexec -o "$PK_DIR/net.run" --rootfs "$KAGO_ROOTFS" --net host -- /bin/sh -c 'grep -c : /proc/net/dev'
    run "$PK_DIR/net.run" --kago-cache "$PK_DIR/cache"
    assert_success
    [ "$output" -eq "$(grep -c : /proc/net/dev)" ]
}

@test "--net user-mode needs pasta and says so" {
    pack-selfexec -o "$PK_DIR/um.run" --rootfs "$KAGO_ROOTFS" --net user-mode -- /bin/true
    run env PATH=/nonexistent "$PK_DIR/um.run" --kago-cache "$PK_DIR/cache"
    assert_failure 125
    assert_output --partial "pasta"
}

@test "the default tmpfs upper keeps the cached root unchanged; --read-only refuses writes" {
    pack-selfexec -o "$PK_DIR/rw.run" --rootfs "$KAGO_ROOTFS" -- /bin/sh -c 'echo x > /etc/kago-written && cat /etc/kago-written'
    run "$PK_DIR/rw.run" --kago-cache "$PK_DIR/cache"
    assert_success
    assert_output "x"
    [ -z "$(find "$PK_DIR/cache" -name kago-written)" ]
    pack-selfexec -o "$PK_DIR/ro.run" --rootfs "$KAGO_ROOTFS" --read-only -- /bin/sh -c 'echo x > /etc/kago-written'
    run "$PK_DIR/ro.run" --kago-cache "$PK_DIR/cache"
    assert_failure
    assert_output --partial "Read-only"
}

@test "--kago-bind works only when packed with --bind-allowed" {
    mkdir -p "$PK_DIR/shared"
    echo shared-data >"$PK_DIR/shared/f"
    run bb --kago-bind "$PK_DIR/shared:/mnt"
    assert_failure 125
    assert_output --partial "--bind-allowed"
    pack-selfexec -o "$PK_DIR/bind.run" --rootfs "$KAGO_ROOTFS" --bind-allowed -- cat /mnt/f
    run "$PK_DIR/bind.run" --kago-cache "$PK_DIR/cache" --kago-bind "$PK_DIR/shared:/mnt"
    assert_success
    assert_output "shared-data"
}

@test "--kago-info prints the settings and runs nothing" {
    run "$PK_DIR/bb.run" --kago-info
    assert_success
    assert_line --regexp '^root hash: +[0-9a-f]{64}$'
    assert_line --regexp '^command: +/bin/sh -c'
    assert_line --regexp '^net: +none$'
    refute_line "hello"
}

@test "--kago-extract DIR extracts without running" {
    run "$PK_DIR/bb.run" --kago-extract "$PK_DIR/tree"
    assert_success
    [ -x "$PK_DIR/tree/bin/busybox" ]
    diff -r "$KAGO_ROOTFS/etc" "$PK_DIR/tree/etc"
}

@test "--kago-verify checks every frame; a damaged file fails with 125" {
    run "$PK_DIR/bb.run" --kago-verify
    assert_success
    assert_output --partial ": OK"
    cp "$PK_DIR/bb.run" "$PK_DIR/bad.run"
    local off=$(( $(stat -c %s "$PK_DIR/bb.run") - 300000 ))
    printf '\x55' | dd of="$PK_DIR/bad.run" bs=1 seek=$off conv=notrunc 2>/dev/null
    run "$PK_DIR/bad.run" --kago-verify
    assert_failure 125
}

@test "--sign and --kago-verify PUBKEY (Ed25519)" {
    pack-selfexec --keygen "$PK_DIR/key"
    [ "$(stat -c %a "$PK_DIR/key.key")" = 600 ]
    pack-selfexec -o "$PK_DIR/signed.run" --sign "$PK_DIR/key.key" --rootfs "$KAGO_ROOTFS" -- /bin/true
    run "$PK_DIR/signed.run" --kago-verify "$PK_DIR/key.pub"
    assert_success
    assert_output --partial "(signed)"
    pack-selfexec --keygen "$PK_DIR/other"
    run "$PK_DIR/signed.run" --kago-verify "$PK_DIR/other.pub"
    assert_failure 125
    assert_output --partial "signature"
    run "$PK_DIR/bb.run" --kago-verify "$PK_DIR/key.pub"
    assert_failure 125
}

@test "pack-selfexec --verify: one line per exit status" {
    pack-selfexec --keygen "$PK_DIR/vkey"
    pack-selfexec --keygen "$PK_DIR/vother"
    pack-selfexec -o "$PK_DIR/v.run" --sign "$PK_DIR/vkey.key" --rootfs "$KAGO_ROOTFS" -- /bin/true
    run pack-selfexec --verify "$PK_DIR/v.run" --pubkey "$PK_DIR/vkey.pub"; assert_success; assert_output --partial "v.run: OK, signed by $(cat "$PK_DIR/vkey.pub")"
    run pack-selfexec --verify "$PK_DIR/v.run" --pubkey "$(cat "$PK_DIR/vkey.pub")"; assert_success
    run pack-selfexec --verify "$PK_DIR/v.run"; assert_success; assert_output --partial "warning: "
    run pack-selfexec --verify "$PK_DIR/v.run" --pubkey "$PK_DIR/vother.pub"; assert_failure 1; assert_output --partial "signature"
    run pack-selfexec --verify "$PK_DIR/bb.run"; assert_failure 2; assert_output --partial "not signed"
    run pack-selfexec --verify "$PK_DIR/bb.run" --pubkey "$PK_DIR/vkey.pub"; assert_failure 2
    cp "$PK_DIR/v.run" "$PK_DIR/vbad.run"
    printf '\x55' | dd of="$PK_DIR/vbad.run" bs=1 seek=$(( $(stat -c %s "$PK_DIR/v.run") - 300000 )) conv=notrunc 2>/dev/null
    run pack-selfexec --verify "$PK_DIR/vbad.run" --pubkey "$PK_DIR/vkey.pub"; assert_failure 1
    run pack-selfexec --verify /etc/passwd; assert_failure 1; assert_output --partial "packed file"
    run pack-selfexec --verify "$PK_DIR/missing.run"; assert_failure 125
    run pack-selfexec --pubkey "$PK_DIR/vkey.pub"; assert_failure 125; assert_output --partial "--pubkey needs --verify"
    run "$PK_DIR/bb.run" --kago-keep-devices-setuid; assert_failure 125
}

@test "--kago-cache DIR holds a complete, private entry; --kago-clean removes it" {
    local c="$PK_DIR/cache-clean"
    run "$PK_DIR/bb.run" --kago-cache "$c"
    assert_success
    local key
    key=$("$PK_DIR/bb.run" --kago-info | sed -n 's/^root hash: *//p')
    [ -e "$c/$key/complete" ]
    [ "$(stat -c %a "$c")" = 700 ]
    [ "$(stat -c %a "$c/$key")" = 700 ]
    run "$PK_DIR/bb.run" --kago-cache "$c" --kago-clean
    assert_success
    [ ! -e "$c/$key" ]
}

@test "--kago-trace shows the kernel calls of the runner" {
    run bb --kago-trace
    assert_success
    assert_output --partial "bb.run: clone(CLONE_NEWPID|CLONE_NEWNS"
    assert_output --partial "pivot_root("
    assert_output --partial "execve("
}

@test "the runner opens /proc/self/exe once and never its own path" {
    command -v strace >/dev/null || skip "strace is not installed"
    run bb --kago-cache "$PK_DIR/cache-strace"   # cold: the whole payload is read
    run strace -f -e trace=open,openat,openat2 -o "$PK_DIR/strace.out" "$PK_DIR/bb.run" --kago-cache "$PK_DIR/cache-strace2"
    assert_success
    [ "$(grep -c '/proc/self/exe' "$PK_DIR/strace.out")" -eq 1 ]
    ! grep -q 'bb.run' "$PK_DIR/strace.out"
}

@test "a second run uses the cache: no extraction, no hashing" {
    local c="$PK_DIR/cache-warm"
    "$PK_DIR/bb.run" --kago-cache "$c" >/dev/null
    local before
    before=$(stat -c %Y "$c"/*/complete)
    run bb --kago-cache "$c" --kago-trace
    assert_success
    # the trace is on: the runner's calls are there, the cache's are not
    assert_output --partial "bb.run: clone(CLONE_NEWPID|CLONE_NEWNS"
    assert_output --partial "pivot_root("
    refute_output --partial "renameat2("
    refute_output --partial "flock("
    [ "$(stat -c %Y "$c"/*/complete)" = "$before" ]
}

@test "a tar stream on stdin (--rootfs -) packs the same tree" {
    tar -C "$KAGO_ROOTFS" -cf - . | pack-selfexec -o "$PK_DIR/tar.run" --rootfs - -- /bin/sh -c 'echo from tar'
    run "$PK_DIR/tar.run" --kago-cache "$PK_DIR/cache"
    assert_success
    assert_output "from tar"
    run pack-selfexec -o "$PK_DIR/junk.run" --rootfs - <<<"not a tar stream, not at all, not even close to 512 bytes"
    assert_failure 125
    assert_output --partial "tar input"
}

@test "pax and GNU tar streams with long names, hard links and symlinks" {
    local src="$PK_DIR/tarsrc"
    mkdir -p "$src/$(printf 'd%.0s' {1..120})"
    echo long >"$src/$(printf 'd%.0s' {1..120})/$(printf 'f%.0s' {1..150})"
    echo data >"$src/orig"
    ln "$src/orig" "$src/hard"
    ln -s orig "$src/sym"
    for fmt in pax gnu; do
        tar --format=$fmt -C "$src" -cf - . | pack-selfexec -o "$PK_DIR/$fmt.run" --rootfs - -- /bin/true
        rm -rf "$PK_DIR/x-$fmt"
        "$PK_DIR/$fmt.run" --kago-extract "$PK_DIR/x-$fmt"
        diff -r "$src" "$PK_DIR/x-$fmt"
        [ "$(stat -c %i "$PK_DIR/x-$fmt/orig")" = "$(stat -c %i "$PK_DIR/x-$fmt/hard")" ]
        [ "$(readlink "$PK_DIR/x-$fmt/sym")" = orig ]
    done
}

@test "a tar stream with '..' is refused (exit 125)" {
    python3 - "$PK_DIR/evil.tar" <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    i = tarfile.TarInfo("../../etc/kago-evil"); d = b"x"; i.size = 1
    t.addfile(i, io.BytesIO(d))
EOF
    run pack-selfexec -o "$PK_DIR/evil.run" --rootfs - <"$PK_DIR/evil.tar"
    assert_failure 125
    assert_output --partial "path traversal"
    [ ! -e "$PK_DIR/evil.run" ]
}

@test "the output is reproducible with --mtime and SOURCE_DATE_EPOCH" {
    pack-selfexec -o "$PK_DIR/r1.run" --mtime 1700000000 --rootfs "$KAGO_ROOTFS" -- /bin/true
    touch "$PK_DIR/tarsrc-later" 2>/dev/null || true
    SOURCE_DATE_EPOCH=1700000000 pack-selfexec -o "$PK_DIR/r2.run" --rootfs "$KAGO_ROOTFS" -- /bin/true
    cmp "$PK_DIR/r1.run" "$PK_DIR/r2.run"
}

@test "--best is smaller; --frame-size makes several frames" {
    pack-selfexec -o "$PK_DIR/best.run" --best --rootfs "$KAGO_ROOTFS" -- /bin/true
    pack-selfexec -o "$PK_DIR/fast.run" --rootfs "$KAGO_ROOTFS" -- /bin/true
    [ "$(stat -c %s "$PK_DIR/best.run")" -lt "$(stat -c %s "$PK_DIR/fast.run")" ]
    pack-selfexec -o "$PK_DIR/frames.run" --frame-size 64K --rootfs "$KAGO_ROOTFS" -- /bin/true
    run "$PK_DIR/frames.run" --kago-info
    assert_line --regexp '^contents: .* in ([2-9]|[1-9][0-9]+) frames of 64 KiB'
    run "$PK_DIR/frames.run" --kago-verify
    assert_success
}

@test "--memory, --pids and --cpus are validated and recorded" {
    pack-selfexec -o "$PK_DIR/lim.run" --memory 256M --pids 64 --cpus 1.5 --rootfs "$KAGO_ROOTFS" -- /bin/true
    run "$PK_DIR/lim.run" --kago-info
    assert_line --regexp '^memory: +256M$'
    assert_line --regexp '^pids: +64$'
    run pack-selfexec -o "$PK_DIR/lim2.run" --memory lots --rootfs "$KAGO_ROOTFS" -- /bin/true
    assert_failure 125
}

@test "--memory, --pids and --cpus are applied in a cgroup of the runner's, which goes at exit" {
    [ "$(id -u)" = 0 ] || skip "needs root: the runner makes the cgroup"
    pack-selfexec -o "$PK_DIR/cg.run" --memory 64M --pids 16 --cpus 0.5 --rootfs "$KAGO_ROOTFS" -- \
        /bin/sh -c 'grep -E "pids|memory|cpu" /proc/self/cgroup | grep -c "/kago/"; for i in $(seq 30); do sleep 3 & done; wait'
    run "$PK_DIR/cg.run" --kago-cache "$PK_DIR/cache"
    assert_equal "$status" 2  # sh's status once it cannot fork
    assert_line --regexp '^[1-9]$'  # in the kago cgroup of each controller
    assert_output --partial "can't fork"
    assert_output --partial "fork attempt"
    assert_output --partial "refused by the pids limit (16)"
    local left; left=$(find /sys/fs/cgroup -path '*/kago/*' -name '*.[0-9]*' 2>/dev/null); echo "left: $left"; [ -z "$left" ]
}

@test "rootless: --memory/--pids without a usable cgroup: a warning, and the command still runs" {
    require_userns
    if [ -w /sys/fs/cgroup/cgroup.procs ] || grep -q 'cgroup2 /sys/fs/cgroup ' /proc/mounts; then
        skip "this host may delegate cgroup v2 to nobody: the limits would apply"
    fi
    pack-selfexec -o "$PK_NB/lim.run" --pids 16 --rootfs "$KAGO_ROOTFS" -- /bin/echo ran
    chown 65534:65534 "$PK_NB/lim.run"
    run nobody_run "$PK_NB/lim.run"
    assert_success
    assert_line ran
    assert_output --partial "warning: --memory, --pids and --cpus are not applied:"
}

@test "--sys mounts a read-only /sys with /sys/firmware hidden; without it there is no sysfs" {
    local probe='grep " /sys" /proc/mounts | cut -d" " -f1-4; ls /sys/firmware | wc -l; touch /sys/x 2>/dev/null || echo refused'
    pack-selfexec -o "$PK_DIR/sys.run" --sys --rootfs "$KAGO_ROOTFS" -- /bin/sh -c "$probe"
    pack-selfexec -o "$PK_DIR/nosys.run" --rootfs "$KAGO_ROOTFS" -- /bin/sh -c "$probe"
    run "$PK_DIR/sys.run" --kago-cache "$PK_DIR/cache"
    assert_success
    assert_line --regexp '^[^ ]+ /sys sysfs ro,'
    assert_line --regexp '^[^ ]+ /sys/firmware tmpfs ro,'
    assert_line 0
    assert_line refused
    run "$PK_DIR/sys.run" --kago-info
    assert_line --regexp '^sys: +read-only /sys'
    run "$PK_DIR/nosys.run" --kago-cache "$PK_DIR/cache"
    assert_success
    assert_line 0  # the probe ran: no /sys/firmware
    refute_output --partial ' sysfs '
    if as_nobody unshare --user --map-root-user true 2>/dev/null; then
        cp "$PK_DIR/sys.run" "$PK_NB/sys.run"
        chown 65534 "$PK_NB/sys.run"
        run nobody_run "$PK_NB/sys.run"
        assert_success
        assert_line --regexp '^[^ ]+ /sys sysfs ro,'
    fi
}

@test "--sys brings a read-only /sys/fs/cgroup in a cgroup namespace of its own; --no-cgroupfs leaves it empty" {
    local probe='grep -c " /sys/fs/cgroup[/ ]" /proc/self/mountinfo; grep " /sys/fs/cgroup[/ ]" /proc/self/mountinfo | cut -d" " -f5,6 | grep -vc " ro,"; grep -vc ":/$" /proc/self/cgroup; touch /sys/fs/cgroup/x 2>/dev/null || echo refused'
    pack-selfexec -o "$PK_DIR/cgfs.run" --sys --rootfs "$KAGO_ROOTFS" -- /bin/sh -c "$probe"
    pack-selfexec -o "$PK_DIR/nocgfs.run" --sys --no-cgroupfs --rootfs "$KAGO_ROOTFS" -- /bin/sh -c "$probe"
    run "$PK_DIR/cgfs.run" --kago-cache "$PK_DIR/cache"
    assert_success
    assert_line --index 0 --regexp '^[1-9][0-9]*$'  # the cgroupfs (one per hierarchy on v1)
    assert_line --index 1 0   # all of them read-only
    assert_line --index 2 0   # every cgroup of ours is the namespace's root
    assert_line refused
    run "$PK_DIR/cgfs.run" --kago-info
    assert_line --regexp '^sys: +read-only /sys and /sys/fs/cgroup'
    run "$PK_DIR/nocgfs.run" --kago-cache "$PK_DIR/cache"
    assert_line --index 0 0   # nothing mounted there
    run "$PK_DIR/nocgfs.run" --kago-info
    assert_line --regexp '^sys: +read-only /sys \(--sys --no-cgroupfs\)'
    run pack-selfexec -o "$PK_DIR/bad.run" --no-cgroupfs --rootfs "$KAGO_ROOTFS" -- /bin/true
    assert_failure 125
    assert_output --partial "--no-cgroupfs needs --sys"
    if as_nobody unshare --user --map-root-user true 2>/dev/null; then
        cp "$PK_DIR/cgfs.run" "$PK_NB/cgfs.run"
        chown 65534 "$PK_NB/cgfs.run"
        run nobody_run "$PK_NB/cgfs.run"
        assert_success
        assert_line --index 0 --regexp '^[1-9][0-9]*$'
        assert_line --index 1 0
        assert_line refused
    fi
}

@test "the command gets --user's HOME, USER and LOGNAME, the standard PATH, and no descriptor of the runner" {
    pack-selfexec -o "$PK_DIR/who.run" --rootfs "$KAGO_ROOTFS" --user 1000:1000 -- \
        /bin/sh -c 'echo "$HOME $USER $LOGNAME"; echo "PATH=$PATH"; ls /proc/self/fd | sort -n | tr "\n" " "; echo'
    run "$PK_DIR/who.run" --kago-cache "$PK_DIR/cache" 7</dev/null
    assert_success
    assert_line "/home/user user user"
    assert_line "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert_line "0 1 2 3 "  # 3: ls's own directory
}

@test "rootless: nobody runs a packed file, root inside, cache 0700 under XDG_CACHE_HOME" {
    require_userns
    run nobody_run "$PK_NB/bb.run"
    assert_success
    assert_output "hello"
    [ "$(stat -c '%a %u' "$PK_NB/cache/kago")" = "700 65534" ]
    run nobody_run "$PK_NB/bb.run" --kago-shell -c 'id -u; cat /proc/self/uid_map'
    assert_success
    assert_line "0"
    assert_line --regexp '^ +0 +65534 +1$'
}

@test "rootless: an unusable cache directory falls back to XDG_RUNTIME_DIR" {
    require_userns
    mkdir -p "$PK_NB/run" "$PK_NB/ro"
    chown 65534:65534 "$PK_NB/run"
    run setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH=/usr/bin:/bin HOME="$PK_NB" \
        XDG_CACHE_HOME="$PK_NB/ro" XDG_RUNTIME_DIR="$PK_NB/run" "$PK_NB/bb.run"
    assert_success
    [ -d "$PK_NB/run/kago" ]
}

@test "the hostile corpus is refused with 125, and nothing is written outside the cache" {
    require_userns
    local corpus="$PK_NB/corpus"
    hostile_corpus "$corpus"
    run nobody_run "$corpus/good.run" --kago-cache "$corpus/cache-good" --kago-extract "$corpus/good-tree"
    assert_success
    local n=0 f
    for f in "$corpus"/reject-*.run; do
        local c="$corpus/cache-$(basename "$f" .run)"
        run nobody_run "$f" --kago-cache "$c"
        [ "$status" -eq 125 ] || fail "$(basename "$f"): exit $status: $output"
        [[ "$output" == *"packed file"* || "$output" == *"frame"* ]] || fail "$(basename "$f"): $output"
        # Only the lock file: no published entry, no temporary directory left.
        [ -z "$(find "$c" -mindepth 1 ! -name '*.lock' 2>/dev/null)" ] || fail "$(basename "$f") left $(find "$c")"
        n=$((n + 1))
    done
    [ "$n" -ge 20 ]
    # Nothing escaped anywhere we can see.
    [ -z "$(find /tmp /etc "$PK_NB" -maxdepth 2 -name 'escape*' 2>/dev/null)" ]
}

@test "hostile corpus: device nodes are skipped rootless with one warning, setuid is stripped" {
    require_userns
    local corpus="$PK_NB/corpus2"
    hostile_corpus "$corpus"
    run nobody_run "$corpus/warn-devices-setuid.run" --kago-extract "$corpus/tree"
    assert_success
    [ "$(grep -c 'device nodes' <<<"$output")" -eq 1 ]
    assert_output --partial "skipped 2 device nodes"
    [ ! -e "$corpus/tree/dev/null2" ]
    [ "$(stat -c %a "$corpus/tree/suid")" = 755 ]
}

@test "--from-host /usr/bin/python3 makes a file that runs python3 -c 'print(1)'" {
    [ -x /usr/bin/python3 ] || skip "python3 is not installed"
    pack-selfexec -o "$PK_DIR/py.run" --from-host /usr/bin/python3 -- python3 -c 'print(1)'
    cp "$PK_DIR/py.run" "$PK_NB/py.run"
    chown 65534:65534 "$PK_NB/py.run"
    require_userns
    run nobody_run "$PK_NB/py.run"
    assert_success
    assert_output "1"
}

@test "--from-host refuses a script" {
    printf '#!/bin/sh\necho hi\n' >"$PK_DIR/script.sh"
    chmod +x "$PK_DIR/script.sh"
    run pack-selfexec -o "$PK_DIR/s.run" --from-host "$PK_DIR/script.sh"
    assert_failure 125
    assert_output --partial "not an ELF file"
}

@test "a packed Debian rootfs runs bash as nobody from a path with no kago" {
    require_userns
    require_debian_rootfs
    pack-selfexec -o "$PK_DIR/debian.run" --rootfs "$DEBIAN_ROOTFS" -- bash -c 'cat /etc/os-release'
    mkdir -p "$PK_NB/elsewhere"
    mv "$PK_DIR/debian.run" "$PK_NB/elsewhere/"
    chown -R 65534:65534 "$PK_NB/elsewhere"
    run setpriv --reuid=65534 --regid=65534 --clear-groups -- \
        env -i PATH=/usr/bin:/bin HOME="$PK_NB" XDG_CACHE_HOME="$PK_NB/cache" "$PK_NB/elsewhere/debian.run"
    assert_success
    assert_output --partial 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"'
    assert_output --partial "skipped"   # the rootfs's device nodes, rootless
    rm -f "$PK_NB/elsewhere/debian.run"
}

@test "the runner builds /dev with its own modes, whatever the caller's umask; the command gets the umask back" {
    local m
    for m in 022 077; do
        (umask "$m" && pack-selfexec -o "$PK_DIR/umask$m.run" --rootfs "$KAGO_ROOTFS" --user 65534 --keep-caps none -- \
            /bin/sh -c 'echo x >/dev/null && echo null-ok; echo x >/dev/shm/f && echo shm-ok; stat -c %a /dev/shm; umask')
        run sh -c "umask $m && exec \"$PK_DIR/umask$m.run\" --kago-cache \"$PK_DIR/cache-umask$m\""
        assert_success
        assert_line null-ok
        assert_line shm-ok
        assert_line 1777
        assert_line "0$m"
    done
}

@test "rootless: a caller's PATH without sbin does not reach the command, which gets the standard PATH" {
    require_userns
    pack-selfexec -o "$PK_NB/path.run" --rootfs "$KAGO_ROOTFS" -- /bin/sh -c 'echo "PATH=$PATH"'
    chown 65534:65534 "$PK_NB/path.run"
    run nobody_run "$PK_NB/path.run"  # PATH=/usr/bin:/bin, as a user's login has it
    assert_success
    assert_line "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

@test "kill -9 of pack-selfexec while it writes the file: nothing is left beside it, and an older file of that name is intact" {
    local d="$PK_DIR/kill"
    mkdir -p "$d/root" "$d/out"
    cp -a "$KAGO_ROOTFS/." "$d/root/"
    # Incompressible data, so that the writing takes a while.
    for i in $(seq 16); do head -c 4M /dev/urandom >"$d/root/blob$i"; done
    echo old >"$d/out/app.run"
    TMPDIR="$d" pack-selfexec -o "$d/out/app.run" --rootfs "$d/root" -- /bin/true &
    p=$!
    # Until the packer has a file of $d/out open: it is writing.
    for i in $(seq 400); do
        ls -l "/proc/$p/fd" 2>/dev/null | grep -q -- "-> $d/out/" && break
        sleep 0.025
    done
    ls -l "/proc/$p/fd" 2>/dev/null | grep -q -- "-> $d/out/" || fail "the packer wrote nothing in $d/out"
    kill -9 "$p"
    wait "$p" || true
    run ls -A "$d/out"
    assert_output app.run
    [ "$(cat "$d/out/app.run")" = old ]
    rm -rf "$d"
}
