#!/usr/bin/env bats
# cg-limit against the real kernel. The same file runs on the v1 hybrid
# host (make check) and in the pure cgroup v2 VM (tests/vm/run-bats.sh):
# the version is read at run time, and a test branches only where the
# expected files differ. Needs only bin/, helpers.bash, busybox and what
# `make deps` installs. Every name the tests make starts with cgt.
load helpers
bats_require_minimum_version 1.5.0

setup_file() {
    kago_setup_file
    # The version, once: every exec is expensive in the emulated VM.
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then export CG_V2=1; else export CG_V2=0; fi
    # cgread CTRL FILE: print FILE of the calling process's own cgroup
    # (v1: in the hierarchy of controller CTRL; v2: CTRL is ignored).
    cat >"$BATS_FILE_TMPDIR/cgread" <<'EOF'
#!/bin/sh
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    rel=$(sed -n 's/^0:://p' /proc/self/cgroup)
    exec cat "/sys/fs/cgroup$rel/$2"
fi
mnt=$(awk -v c="$1" '$3 == "cgroup" { n = split($4, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $2; exit } }' /proc/self/mounts)
rel=$(awk -F: -v c="$1" '{ n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) print $3 }' /proc/self/cgroup)
exec cat "$mnt$rel/$2"
EOF
    chmod +x "$BATS_FILE_TMPDIR/cgread"
}
teardown_file() { kago_teardown_file; }

setup() {
    CGREAD="$BATS_FILE_TMPDIR/cgread"
    export KAGO_NAME="cgt$BATS_TEST_NUMBER"
    LOOPDEV= PARENTS=() SUPERVISOR= SLEEPS=
}

teardown() {
    [ -n "$SUPERVISOR" ] && kill -9 "$SUPERVISOR" 2>/dev/null
    [ -n "$LOOPDEV" ] && losetup -d "$LOOPDEV" 2>/dev/null
    local p
    for p in "${PARENTS[@]}"; do
        find "$p" -depth -mindepth 1 -type d -exec rmdir {} + 2>/dev/null
        rmdir "$p" 2>/dev/null
    done
    [ -n "$SLEEPS" ] && pkill -KILL -f "sleep 1234[0-9]" 2>/dev/null
    [ -e "/run/kago/$KAGO_NAME" ] && rm -rf "/run/kago/$KAGO_NAME"
    return 0
}

is_v2() { [ "$CG_V2" = 1 ]; }

# The first JSON line written to FILE: the value of KEY.
json_get() { jq -r ".$2" <"$1"; }

# A block device the tests may read: the VM's own disk, or a loop device
# on a sparse file. Sets DEV (a path) or skips.
io_device() {
    if [ -b "${KAGO_VM_DISK:-}" ]; then
        DEV=$KAGO_VM_DISK
        return
    fi
    truncate -s 8M "$BATS_TEST_TMPDIR/cgt-disk.img"
    LOOPDEV=$(losetup -f --show "$BATS_TEST_TMPDIR/cgt-disk.img" 2>/dev/null) ||
        skip "no block device to throttle: no KAGO_VM_DISK and losetup failed"
    DEV=$LOOPDEV
}

majmin() { printf '%d:%d' "0x$(stat -c %t "$1")" "0x$(stat -c %T "$1")"; }


# The tests are few and each does several checks: under emulation every
# test costs a bats process and every exec costs a lot.

# --- the options the program shares -----------------------------------------

@test "cg-limit: --help, --version, --dry-run (no privilege, nothing made) and -v" {
    run cg-limit --help
    assert_success
    for o in --memory --memory-high --memory-swap --cpus --cpu-weight --pids --io-read-bps \
        --io-write-bps --io-read-iops --io-write-iops --io-weight --cpuset-cpus --cpuset-mems \
        --rlimit --parent --status-fd --if-available --verbose --dry-run --version; do
        assert_output --partial -- "$o"
    done
    run cg-limit --version
    assert_success
    assert_output --regexp '^cg-limit \(kago\) [0-9]'
    run as_nobody env KAGO_NAME="$KAGO_NAME" cg-limit --dry-run --memory 32M --pids 16 --rlimit nofile=64 -- echo cgt-ran
    assert_success
    refute_line cgt-ran
    assert_output --regexp 'mkdir\(".*/cgt[0-9]+\.[0-9]+\.[0-9]+", 0755\) \(dry run\)'
    assert_output --partial 'pids.max", "16") (dry run)'
    assert_output --partial 'prlimit(0, RLIMIT_NOFILE, {rlim_cur=64, rlim_max=64}, NULL) (dry run)'
    assert_output --partial 'execve("echo", ["echo", "cgt-ran"], envp) (dry run)'
    if is_v2; then
        assert_output --partial 'memory.max", "33554432") (dry run)'
        assert_output --partial 'clone3({flags=CLONE_INTO_CGROUP'
    else
        assert_output --partial 'memory.limit_in_bytes", "33554432") (dry run)'
        assert_output --partial 'cgroup.procs", "0") (dry run)'
    fi
    [ -z "$(find /sys/fs/cgroup -name "cgt$BATS_TEST_NUMBER.*")" ] || fail "the dry run made a cgroup"
    run cg-limit -v --pids 20 -- true
    assert_success
    assert_output --regexp 'write\(".*/pids.max", "20"\) = 2'
    if is_v2; then
        assert_output --regexp 'clone3\(\{flags=CLONE_INTO_CGROUP, .*\) = [0-9]+'
    else
        assert_output --regexp 'fork\(\) = [0-9]+'
        assert_output --regexp 'write\(".*/cgroup.procs", "0"\) = 0'
    fi
    assert_output --regexp 'rmdir\(".*/cgt[0-9]+\.[0-9]+\.[0-9]+"\) = 0'
}

# --- exit statuses: one test each ---------------------------------------------

@test "cg-limit: the command's own status (7, and 0 for \$SHELL when there is no command)" {
    run cg-limit --pids 32 -- sh -c 'exit 7'
    assert_equal "$status" 7
    run env SHELL=/bin/true cg-limit --pids 32
    assert_success
    assert_output ""
}

@test "cg-limit: 127 when the command is not found" {
    run -127 cg-limit --pids 32 --status-fd 3 -- cgt-no-such-command 3>"$BATS_TEST_TMPDIR/status"
    assert_output --partial 'cg-limit: cgt-no-such-command: No such file or directory'
    jq -e '.exit == 127 and .signal == null' "$BATS_TEST_TMPDIR/status"
}

@test "cg-limit: 126 when the command cannot be executed" {
    run cg-limit --pids 32 -- /etc/passwd
    assert_equal "$status" 126
    assert_output --partial 'cg-limit: /etc/passwd: Permission denied'
}

@test "cg-limit: 128+N when the command is killed by signal N" {
    run cg-limit --pids 32 -- sh -c 'kill -USR1 $$'
    assert_equal "$status" $((128 + 10))
}

@test "cg-limit: 125 for bad input naming the option (12Q, 1-, a missing device or parent), a value the kernel rejects, no permission" {
    run cg-limit --memory 12Q -- true
    assert_equal "$status" 125
    assert_output --partial "cg-limit: --memory: '12Q' is not a size"
    assert_output --partial "Try 'cg-limit --help' for more information."
    run cg-limit --cpuset-cpus 1- -- true
    assert_equal "$status" 125
    assert_output --partial "cg-limit: --cpuset-cpus: '1-' is not a CPU list"
    run cg-limit --io-read-bps /dev/cgt-no-such-disk:1M -- true
    assert_equal "$status" 125
    assert_output --partial 'cg-limit: --io-read-bps: /dev/cgt-no-such-disk: No such file or directory'
    run cg-limit --io-write-bps /dev/null:1M -- true
    assert_equal "$status" 125
    assert_output --partial 'cg-limit: --io-write-bps: /dev/null: not a block device'
    run cg-limit --parent /cgt-no-such-parent --pids 8 -- true
    assert_equal "$status" 125
    assert_output --regexp 'cg-limit: --parent: /sys/fs/cgroup/.*cgt-no-such-parent: No such file or directory'
    run cg-limit --cpus 0 -- true
    assert_equal "$status" 125
    assert_output --partial -- "--cpus: '0' CPUs: must be more than 0"
    run cg-limit --pids abc -- true
    assert_equal "$status" 125
    assert_output --partial -- "--pids: 'abc' is not a number"
    run cg-limit --rlimit cgtbogus=1 -- true
    assert_equal "$status" 125
    assert_output --partial -- "--rlimit: unknown resource 'cgtbogus'"
    run cg-limit --status-fd 9 -- true
    assert_equal "$status" 125
    assert_output --partial -- '--status-fd: 9 is not an open descriptor'
    run cg-limit --cgt-bogus -- true
    assert_equal "$status" 125
    assert_output --partial "unrecognized option '--cgt-bogus'"
    # The kernel rejects CPU 99: the message says what the parent offers.
    run cg-limit --cpuset-cpus 99 -- echo cgt-ran
    assert_equal "$status" 125
    refute_output --partial cgt-ran
    assert_output --regexp "cg-limit: --cpuset-cpus: write '99' to .*/cpuset.cpus: "
    assert_output --partial 'hint: the parent cgroup offers cpuset.cpus'
    [ -z "$(find /sys/fs/cgroup -name "cgt$BATS_TEST_NUMBER.*")" ] || fail "the failed run left its cgroup"
    # No permission: a hint, and nothing runs.
    run as_nobody cg-limit --memory 32M -- echo cgt-ran
    assert_equal "$status" 125
    refute_output --partial cgt-ran
    assert_output --partial 'Permission denied'
    if is_v2; then
        assert_output --partial 'systemd-run --user --scope -p Delegate=yes'
    else
        assert_output --partial 'cgroup v1 has no safe delegation'
    fi
}

# --- where the cgroup goes --------------------------------------------------------

@test "cg-limit: the command runs in the cgroup named in KAGO_CGROUP and the state dir; --parent PATH" {
    run cg-limit --pids 32 -- sh -c 'echo "$KAGO_CGROUP"; cat "$KAGO_STATE_DIR/cgroup" /proc/self/cgroup'
    assert_success
    cg=${lines[0]}
    assert_equal "${lines[1]}" "$cg"
    [[ $cg == /*/kago/cgt$BATS_TEST_NUMBER.* || $cg == /kago/cgt$BATS_TEST_NUMBER.* ]] ||
        fail "KAGO_CGROUP=$cg is not under kago/"
    # As /proc/self/cgroup shows it (v1: in the memory hierarchy).
    if is_v2; then assert_line "0::$cg"; else assert_line --regexp "^[0-9]+:memory:$cg$"; fi
    [ -z "$(find /sys/fs/cgroup -name "cgt$BATS_TEST_NUMBER.*")" ] || fail "$cg was not removed"
    [ ! -e "/run/kago/$KAGO_NAME" ] || fail "the state directory was not removed"
    # --parent
    local p=cgt-parent-$$ h
    if is_v2; then
        PARENTS=("/sys/fs/cgroup/$p")
    else
        for h in memory pids cpuacct freezer; do PARENTS+=("/sys/fs/cgroup/$h/$p"); done
    fi
    mkdir "${PARENTS[@]}"
    run cg-limit --parent "/$p" --pids 8 -- sh -c 'echo "$KAGO_CGROUP"; "$0" pids pids.max' "$CGREAD"
    assert_success
    assert_line --index 0 --regexp "^/$p/cgt$BATS_TEST_NUMBER\.[0-9]+\.[0-9]+$"
    assert_line --index 1 8
    run find "${PARENTS[@]}" -mindepth 1 -type d
    assert_output ""
}

# --- each limit acts ------------------------------------------------------------

@test "cg-limit: a 100 MiB allocation under --memory 32M is OOM-killed and reported" {
    run cg-limit --memory 32M --status-fd 3 -- "$(test_prog cgroup_alloc)" 100 3>"$BATS_TEST_TMPDIR/status"
    assert_equal "$status" 137
    refute_output --partial 'allocated 100 MiB'
    assert_output --partial "cg-limit: cgt$BATS_TEST_NUMBER: the container was killed by the memory limit (32 MiB): 1 OOM kill"
    jq -e '.oom_kills >= 1 and .signal == 9 and .exit == 137 and .memory_peak <= 33554432' "$BATS_TEST_TMPDIR/status"
}

@test "cg-limit: --memory, --memory-high and --memory-swap write their files (v1: no memory.high)" {
    if is_v2; then
        run cg-limit --memory 48M --memory-high 40M --memory-swap 16M -- sh -c \
            'for f in memory.max memory.high memory.swap.max; do "$0" memory $f; done; "$1" 8' "$CGREAD" "$(test_prog cgroup_alloc)"
        assert_success
        assert_equal "${lines[0]}" $((48 << 20))
        assert_equal "${lines[1]}" $((40 << 20))
        assert_equal "${lines[2]}" $((16 << 20))
        assert_equal "${lines[3]}" 'allocated 8 MiB'
        return
    fi
    run cg-limit --memory-high 40M -- echo cgt-ran
    assert_equal "$status" 125
    assert_output --partial 'cg-limit: --memory-high: cgroup v1 has no equivalent'
    refute_output --partial cgt-ran
    # --if-available: a warning, and the rest applies.
    run cg-limit --if-available --memory-high 40M --memory 48M -- sh -c '"$0" memory memory.limit_in_bytes; "$1" 8' \
        "$CGREAD" "$(test_prog cgroup_alloc)"
    assert_success
    assert_output --partial 'cg-limit: warning: --memory-high: cgroup v1 has no equivalent'
    assert_line $((48 << 20))
    assert_line 'allocated 8 MiB'
    [ -e /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes ] || return 0  # swap accounting off
    run cg-limit --memory 64M --memory-swap 32M -- "$CGREAD" memory memory.memsw.limit_in_bytes
    assert_success
    assert_output $((96 << 20))
}

@test "cg-limit: a fork loop under --pids 16 is contained and reported" {
    SLEEPS=1
    run cg-limit --pids 16 --status-fd 3 -- sh -c 'i=0; while [ $i -lt 40 ]; do sleep 12345 & i=$((i+1)); done' 3>"$BATS_TEST_TMPDIR/status"
    assert_output --regexp "cg-limit: cgt$BATS_TEST_NUMBER: [0-9]+ fork attempts? refused by the pids limit \(16\)"
    jq -e '.pids_refused >= 1' "$BATS_TEST_TMPDIR/status"
    # What the loop started is gone with the cgroup.
    run pgrep -f '^sleep 12345'
    assert_failure
}

@test "cg-limit: --cpus 0.2 throttles a busy loop (nr_throttled > 0)" {
    if is_v2; then f=cpu.max; want='20000 100000'; else f=cpu.cfs_quota_us; want=20000; fi
    run cg-limit --cpus 0.2 --status-fd 3 -- sh -c '"$0" cpu "$1"; timeout 1 sh -c "while :; do :; done"; true' "$CGREAD" "$f" 3>"$BATS_TEST_TMPDIR/status"
    assert_success
    assert_line --index 0 "$want"
    assert_output --regexp "cg-limit: cgt$BATS_TEST_NUMBER: throttled by the CPU limit \(0.2 CPUs\) in [0-9]+ of [0-9]+ periods"
    jq -e '.nr_throttled > 0 and .throttled_usec > 0 and .cpu_user_usec != null' "$BATS_TEST_TMPDIR/status"
}

@test "cg-limit: --cpu-weight (cpu.weight, or converted to cpu.shares) and --cpuset-cpus 1" {
    if is_v2; then f=cpu.weight; want=200; else f=cpu.shares; want=2048; fi
    [ "$(nproc --all)" -ge 2 ] || skip "needs 2 CPUs"
    run cg-limit --cpu-weight 200 --cpuset-cpus 1 --cpuset-mems 0 -- sh -c \
        '"$0" cpu "$1"; grep -E "^(Cpus|Mems)_allowed_list" /proc/self/status' "$CGREAD" "$f"
    assert_success
    assert_line --index 0 "$want"
    assert_line --regexp '^Cpus_allowed_list:[[:space:]]+1$'
    assert_line --regexp '^Mems_allowed_list:[[:space:]]+0$'
}

@test "cg-limit: --io-read-bps throttles reads; the other io limits (MAJ:MIN too) and --io-weight" {
    io_device
    local mm t0 t1
    mm=$(majmin "$DEV")
    if is_v2; then f=io.max; else f=blkio.throttle.read_bps_device; fi
    t0=${EPOCHREALTIME/./}
    run cg-limit --io-read-bps "$DEV:512K" -- sh -c '"$0" blkio "$1"; dd if="$2" of=/dev/null bs=64k count=16 iflag=direct 2>&1' "$CGREAD" "$f" "$DEV"
    t1=${EPOCHREALTIME/./}
    assert_success
    if is_v2; then
        assert_line --index 0 --regexp "^$mm rbps=524288 wbps=max riops=max wiops=max"
    else
        assert_line --index 0 "$mm 524288"
    fi
    assert_output --partial '1048576 bytes'
    # 1 MiB at 512 KiB/s: a lower bound only, never an upper one.
    [ $((t1 - t0)) -ge 1000000 ] || fail "1 MiB took $(((t1 - t0) / 1000)) ms under a 512 KiB/s limit"
    if is_v2; then
        run cg-limit --io-write-bps "$DEV:2M" --io-read-iops "$mm:100" --io-write-iops "$DEV:50" -- "$CGREAD" io io.max
        assert_success
        assert_output "$mm rbps=max wbps=2097152 riops=100 wiops=50"
    else
        run cg-limit --io-write-bps "$DEV:2M" --io-read-iops "$mm:100" --io-write-iops "$DEV:50" -- sh -c \
            'for f in write_bps_device read_iops_device write_iops_device; do "$0" blkio blkio.throttle.$f; done' "$CGREAD"
        assert_success
        assert_equal "${lines[0]}" "$mm 2097152"
        assert_equal "${lines[1]}" "$mm 100"
        assert_equal "${lines[2]}" "$mm 50"
    fi
    run cg-limit --io-weight 300 -- sh -c 'for f in io.weight io.bfq.weight blkio.bfq.weight blkio.weight; do "$0" blkio $f 2>/dev/null && exit; done' "$CGREAD"
    if [ "$status" = 125 ]; then
        assert_output --partial -- '--io-weight: '
        skip "no I/O weight file on this kernel: $output"
    fi
    assert_success
    if is_v2; then assert_output --regexp '^default 300'; else assert_output --regexp '(^| )300$'; fi
}

@test "cg-limit: --rlimit nofile=64 holds, SOFT:HARD sets both; --status-fd writes one JSON line, not inherited" {
    run cg-limit --rlimit nofile=64 --rlimit core=0:unlimited -- bash -c \
        'ulimit -Sn; ulimit -Hn; ulimit -Sc; ulimit -Hc; (exec 60</dev/null) && echo opened-60; (exec 70</dev/null) 2>/dev/null || echo refused-70'
    assert_success
    assert_equal "${lines[0]}" 64
    assert_equal "${lines[1]}" 64
    assert_equal "${lines[2]}" 0
    assert_equal "${lines[3]}" unlimited
    assert_line opened-60
    assert_line refused-70
    run cg-limit --pids 32 --status-fd 3 -- sh -c 'if [ -e /proc/$$/fd/3 ]; then echo fd3-leaked; fi; echo fd3-checked' 3>"$BATS_TEST_TMPDIR/status"
    assert_success
    assert_line fd3-checked
    refute_output --partial fd3-leaked
    run jq -c 'del(.cgroup, .memory_peak, .cpu_usage_usec, .cpu_user_usec, .cpu_system_usec, .nr_periods, .nr_throttled, .throttled_usec)' "$BATS_TEST_TMPDIR/status"
    assert_output "{\"name\":\"cgt$BATS_TEST_NUMBER\",\"exit\":0,\"signal\":null,\"oom_kills\":0,\"pids_refused\":0}"
    jq -e --slurp 'length == 1 and .[0].memory_peak > 0 and .[0].cpu_usage_usec != null' "$BATS_TEST_TMPDIR/status"
}

@test "cg-limit: only --rlimit: set in place, no cgroup, no fork, no state dir; rootless on any cgroup version" {
    # The same process runs the command: cg-limit exec'd it, no supervisor.
    run bash -c 'echo $$; exec cg-limit --rlimit nofile=1024 -- sh -c "echo \$\$; ulimit -n; cat /proc/self/cgroup; env | grep -c ^KAGO_CGROUP= || true"'
    assert_success
    assert_equal "${lines[0]}" "${lines[1]}"
    assert_equal "${lines[2]}" 1024
    assert_line 0
    refute_output --partial "/kago/"
    run cg-limit -v --rlimit nofile=1024 -- true
    assert_success
    assert_output --partial "cg-limit: prlimit(0, RLIMIT_NOFILE, {rlim_cur=1024, rlim_max=1024}, NULL) = 0"
    refute_output --partial "mkdir"
    refute_output --partial "clone"
    [ ! -e "/run/kago/$KAGO_NAME" ]
    # Rootless: no cgroup is needed, so cgroup v1 is no obstacle (it was exit 125).
    run as_nobody env KAGO_NAME="$KAGO_NAME" cg-limit --rlimit nofile=512:1024 -- sh -c 'ulimit -Sn; ulimit -Hn'
    assert_success
    assert_equal "${lines[0]}" 512
    assert_equal "${lines[1]}" 1024
    # A limit the user may not raise: 125, naming the option.
    run as_nobody cg-limit --rlimit nofile=99999999 -- true
    assert_failure 125
    assert_output --partial "cg-limit: --rlimit nofile: prlimit: Operation not permitted"
}

# --- supervisor and cleanup ------------------------------------------------------

@test "cg-limit: what the command leaves running is killed; SIGTERM reaches the command" {
    SLEEPS=1
    run cg-limit --pids 32 -- sh -c 'sleep 12346 & sleep 12347 & echo started'
    assert_success
    assert_output started
    run pgrep -f '^sleep 1234[67]'
    assert_failure
    cg-limit --pids 32 -- sleep 12348 &
    SUPERVISOR=$!
    for _ in {1..100}; do pgrep -f '^sleep 12348' >/dev/null && break; sleep 0.05; done
    kill -TERM "$SUPERVISOR"
    local st=0
    wait "$SUPERVISOR" || st=$?
    SUPERVISOR=
    assert_equal "$st" 143
    [ -z "$(find /sys/fs/cgroup -name "cgt$BATS_TEST_NUMBER.*")" ] || fail "the cgroup is still there"
}

@test "cg-limit: after SIGKILL of the supervisor the next run removes the leftover cgroup and state dir" {
    SLEEPS=1
    cg-limit --pids 32 -- sleep 12349 &
    SUPERVISOR=$!
    for _ in {1..100}; do pgrep -f '^sleep 12349' >/dev/null && break; sleep 0.05; done
    kill -KILL "$SUPERVISOR"
    wait "$SUPERVISOR" 2>/dev/null || true
    SUPERVISOR=
    # PR_SET_PDEATHSIG took the command with it; the cgroup stays behind.
    for _ in {1..100}; do pgrep -f '^sleep 12349' >/dev/null || break; sleep 0.05; done
    run pgrep -f '^sleep 12349'
    assert_failure
    [ -n "$(find /sys/fs/cgroup -name "cgt$BATS_TEST_NUMBER.*")" ] || fail "no leftover to reap: the test proves nothing"
    [ -d "/run/kago/$KAGO_NAME" ]
    KAGO_NAME=cgt${BATS_TEST_NUMBER}b run cg-limit -v --pids 32 -- true
    assert_success
    assert_output --regexp "removed the leftover cgroup .*/cgt$BATS_TEST_NUMBER\.[0-9]+\.[0-9]+"
    run find /sys/fs/cgroup -name "cgt$BATS_TEST_NUMBER*"
    assert_output ""
    [ ! -e "/run/kago/$KAGO_NAME" ] || fail "the leftover state directory is still there"
}

@test "cg-limit: rootless in a delegated v2 subtree; --if-available for what the delegation lacks" {
    is_v2 || skip "delegation needs cgroup v2"
    # Root makes /cgt-deleg-PID (memory and pids for its children) and
    # chowns its child d to the user, whose shell sits in d/sv, as systemd
    # would delegate a scope.
    local p=/sys/fs/cgroup/cgt-deleg-$$
    local d=$p/d
    PARENTS=("$p")
    mkdir "$p"
    echo "+memory +pids" >"$p/cgroup.subtree_control"
    mkdir "$d" "$d/sv"
    chown 65534:65534 "$d" "$d/cgroup.procs" "$d/cgroup.subtree_control" "$d/cgroup.threads" \
        "$d/sv" "$d/sv/cgroup.procs"
    user_run() {
        run sh -c 'echo $$ >"$0/sv/cgroup.procs" && exec setpriv --reuid=65534 --regid=65534 --clear-groups -- \
            env -i PATH="$PATH" KAGO_NAME=cgtdeleg cg-limit "$@"' "$d" "$@"
    }
    user_run --parent "$d" --memory 32M --pids 8 -- sh -c 'cat "/sys/fs/cgroup$KAGO_CGROUP/pids.max"'
    assert_success
    assert_output 8
    # Without --parent: a kago cgroup beside the user's own, in the subtree.
    user_run --memory 32M -- sh -c 'echo "$KAGO_CGROUP"'
    assert_success
    assert_output --regexp "^${d#/sys/fs/cgroup}/kago/cgtdeleg\.[0-9]+\.[0-9]+$"
    # cpuset is not delegated: an error naming the option, or with
    # --if-available a warning, and the other limits still apply.
    user_run --cpuset-cpus 0 --pids 4 -- echo cgt-ran
    assert_equal "$status" 125
    assert_output --partial 'cg-limit: --cpuset-cpus: '
    refute_output --partial cgt-ran
    user_run --if-available --cpuset-cpus 0 --pids 4 -- sh -c 'cat "/sys/fs/cgroup$KAGO_CGROUP/pids.max"'
    assert_success
    assert_output --partial 'cg-limit: warning: --cpuset-cpus: '
    assert_line 4
}
