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

# --- the in-process hand-off (DESIGN.md, "One binary, and the in-process hand-off") ---

@test "chains: the trace marks each kago step (in process); KAGO_EXEC=1 makes every step an exec" {
    require_static
    require_progs unshare-run mount-layers cap-drop
    [ "$(stat -c %i "$KAGO_BIN/cap-drop")" = "$(stat -c %i "$KAGO_BIN/mount-layers")" ] ||
        skip "the programs are not one multi-call binary here"
    chain=(unshare-run --pid --mount -- mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --pivot --
        cap-drop --drop all -- /bin/true)
    run env -u KAGO_EXEC KAGO_TRACE=1 "${chain[@]}"
    assert_success
    assert_output --partial "unshare-run: fork() = "
    assert_output --partial "unshare-run: execve(\"$KAGO_BIN/mount-layers\", [\"mount-layers\", \"--layer\", "
    assert_output --partial "mount-layers: execve(\"$KAGO_BIN/cap-drop\", [\"cap-drop\", \"--drop\", \"all\", \"--\", \"/bin/true\"], envp) (in process)"
    assert_output --partial 'cap-drop: execve("/bin/true", ["/bin/true"], envp)'
    refute_output --partial 'execve("/bin/true", ["/bin/true"], envp) (in process)'
    [ "$(grep -c ') (in process)$' <<<"$output")" = 2 ]
    # Without /proc in the new root the hand-off cannot check the program: exec.
    run env -u KAGO_EXEC KAGO_TRACE=1 unshare-run --pid --mount -- mount-layers --layer "$KAGO_ROOTFS" \
        --tmp-upper --pivot -- cap-drop --drop all -- /bin/true
    assert_success
    assert_line "mount-layers: execve(\"$KAGO_BIN/cap-drop\", [\"cap-drop\", \"--drop\", \"all\", \"--\", \"/bin/true\"], envp)"
    run env KAGO_EXEC=1 KAGO_TRACE=1 "${chain[@]}"
    assert_success
    refute_output --partial "(in process)"
    assert_output --partial "unshare-run: vfork() = "
    assert_output --partial "mount-layers: execve(\"$KAGO_BIN/cap-drop\", [\"cap-drop\", \"--drop\", \"all\", \"--\", \"/bin/true\"], envp)"
}

# The state of a supervisor step that stays alive (the inner unshare-run of
# `unshare-run --pid -- unshare-run --uts -- sleep`, entered in process by
# the init's command process, or exec'd): its descriptors (pipe and socket
# inodes left out), exe, name, command line (its NUL padding left out),
# credentials, seccomp and signal dispositions.
step_state() {
    local tok pid parent i f
    tok=4242.$RANDOM
    "$@" -- sleep "$tok" &
    local bg=$!
    for i in $(seq 100); do
        pid=$(pgrep -f "^sleep $tok\$") && break
        sleep 0.05
    done
    [ -n "$pid" ] || { kill "$bg"; wait "$bg"; echo "no sleep $tok"; return 0; }
    parent=$(awk '{print $4}' "/proc/$pid/stat")
    echo "comm $(cat "/proc/$parent/comm")"
    echo "exe $(readlink "/proc/$parent/exe")"
    echo "cmdline $(tr '\0' ' ' <"/proc/$parent/cmdline" | sed 's/ *$//; s/sleep [0-9.]*$/sleep N/')"
    for f in "/proc/$parent"/fd/*; do
        echo "fd ${f##*/} $(readlink "$f" | sed 's/\[[0-9]*\]//')"
    done | sort
    grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|SigIgn|SigCgt|SigBlk):' "/proc/$parent/status"
    kill "$pid"
    wait "$bg" || true
}

@test "chains: a step entered in process holds the descriptors, exe, name, credentials and signals an exec'd one holds" {
    require_static
    require_progs unshare-run
    in=$(step_state env -u KAGO_EXEC unshare-run --pid --mount -- unshare-run --uts)
    ex=$(step_state env KAGO_EXEC=1 unshare-run --pid --mount -- unshare-run --uts)
    echo "in process:"
    echo "$in"
    grep -q '^fd ' <<<"$in" || fail "no descriptor listed"
    grep -q '^comm unshare-run$' <<<"$in" || fail "not named unshare-run"
    [ "$in" = "$ex" ] || fail "exec'd:
$ex"
    require_userns
    in=$(step_state as_nobody env -u KAGO_EXEC unshare-run --user --map-root --pid --mount -- unshare-run --uts)
    ex=$(step_state as_nobody env KAGO_EXEC=1 unshare-run --user --map-root --pid --mount -- unshare-run --uts)
    echo "rootless, in process:"
    echo "$in"
    grep -q '^fd ' <<<"$in" || fail "rootless: no descriptor listed"
    [ "$in" = "$ex" ] || fail "rootless, exec'd:
$ex"
}

# What cap-drop --show reports of the process it runs in, but its pid and
# namespaces: the same whether it was entered in process or exec'd.
show_state() {
    "$@" 2>/dev/null | grep -E '^(process|uid|gid|groups|  (bounding|permitted|effective|inheritable|ambient)|no_new_privs|seccomp)' |
        sed 's/^process *[0-9]* /process /'
}

@test "chains: a step entered in process has the credentials an exec gives (root, and uid 65534 in a user namespace)" {
    require_static
    require_progs unshare-run cap-drop
    # Root whose permitted set lost what the bounding set keeps: an exec
    # would give it back, so that step is exec'd; the rest in process.
    for args in "--drop all" "--drop net_raw,sys_admin" "--keep chown,net_raw" "--drop all --user 65534"; do
        # shellcheck disable=SC2086
        in=$(show_state env -u KAGO_EXEC unshare-run --pid --mount -- cap-drop $args --keep-env -- cap-drop --show)
        # shellcheck disable=SC2086
        ex=$(show_state env KAGO_EXEC=1 unshare-run --pid --mount -- cap-drop $args --keep-env -- cap-drop --show)
        [ -n "$in" ] || fail "cap-drop $args: no output"
        [ "$in" = "$ex" ] || fail "cap-drop $args: in process:
$in
exec'd:
$ex"
    done
    require_userns
    # Every capability of the new user namespace, as uid 65534: an exec drops
    # them all, and so does entering in process.
    in=$(show_state as_nobody env -u KAGO_EXEC unshare-run --user --pid -- cap-drop --show)
    ex=$(show_state as_nobody env KAGO_EXEC=1 unshare-run --user --pid -- cap-drop --show)
    [ "$in" = "$ex" ] || fail "rootless: in process:
$in
exec'd:
$ex"
    grep -q '^  permitted *none' <<<"$in" || fail "rootless: capabilities kept: $in"
    grep -q '^process (cap-drop)' <<<"$in" || fail "rootless: not named cap-drop: $in"
}

# --- cap-drop ---

# A kago container: unshare-run + mount-layers on the busybox rootfs, with
# cap-drop last.
cap_drop_chain() {
    unshare-run --pid --mount --uts --ipc --net -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --dev --pivot -- \
        cap-drop "$@"
}

need_cap_drop_chain() {
    for p in unshare-run mount-layers cap-drop; do
        [ -x "$KAGO_BIN/$p" ] || skip "$p is not built"
    done
}

@test "chains: cap-drop --drop all --seccomp default --user nobody shows everything dropped" {
    require_static
    need_cap_drop_chain
    run cap_drop_chain --drop all --seccomp default --user nobody -- sh -c 'cat /proc/self/status; env'
    assert_success
    for f in CapInh CapPrm CapEff CapBnd CapAmb; do
        assert_line --regexp "^$f:\s+0000000000000000$"
    done
    assert_line --regexp '^Uid:\s+65534\s+65534\s+65534\s+65534$'
    assert_line --regexp '^NoNewPrivs:\s+1$'
    assert_line --regexp '^Seccomp:\s+2$'
    assert_line "HOME=/nonexistent"
    refute_output --partial "KAGO_"
}

@test "chains: cap-drop --show, run as the payload, agrees" {
    require_static
    need_cap_drop_chain
    run cap_drop_chain --drop all --seccomp default --user nobody -- cap-drop --show
    assert_success
    for s in bounding permitted effective inheritable ambient; do
        assert_line --regexp "^  $s +none$"
    done
    assert_line --regexp '^no_new_privs +1 \(on\)$'
    assert_line --regexp '^seccomp +filter \(1 filter\)$'
    assert_line --regexp '^uid +65534 65534 65534 65534'
    assert_line --regexp '^  pid +[0-9]+ +own$'
    assert_line --regexp '^  mnt +[0-9]+ +(own|unknown)$'
}

@test "chains: cap-drop --show PID from the host agrees with the container's payload" {
    require_static
    need_cap_drop_chain
    command -v jq >/dev/null || skip "jq is not installed (make deps)"
    cap_drop_chain --drop all --keep net_bind_service --seccomp default --user nobody -- sleep 3171 &
    local chain=$! pid="" i
    for i in $(seq 50); do
        pid=$(pgrep -x -f 'sleep 3171' | head -1) && [ -n "$pid" ] && break
        sleep 0.1
    done
    [ -n "$pid" ] || { kill $chain; fail "the payload did not start"; }
    run cap-drop --show --json "$pid"
    kill "$pid"
    wait $chain || true
    assert_success
    echo "$output" | jq -e '.capabilities.ambient == ["net_bind_service"] and .capabilities.bounding == ["net_bind_service"]
        and .capabilities.effective == ["net_bind_service"] and .no_new_privs == true
        and .seccomp.mode == "filter" and (.uid | startswith("65534 "))
        and .namespaces.pid.host == "own" and .namespaces.uts.host == "own"'
}

@test "chains: cap-drop --seccomp default blocks unshare -U and keyctl inside the container" {
    require_static
    need_cap_drop_chain
    run cap_drop_chain --drop all --seccomp default --user nobody -- unshare -U true
    assert_failure
    assert_output --partial "Operation not permitted"
    [ -x "$(test_prog caps_try)" ] || skip "tests/progs/caps_try is not built"
    run unshare-run --pid --mount --uts --ipc --net -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --dev --file "$(test_prog caps_try):/bin/caps_try" --pivot -- \
        cap-drop --drop all --seccomp default --user nobody -- /bin/caps_try keyctl
    assert_output "keyctl: EPERM (Operation not permitted)"
}

@test "chains: cap-drop --dry-run at the end of a chain prints the whole plan" {
    need_cap_drop_chain
    # A state dir of the test's own: the plan must leave nothing behind.
    mkdir -p "$BATS_TEST_TMPDIR/state"
    KAGO_STATE_DIR="$BATS_TEST_TMPDIR/state" KAGO_NAME=cdplan run unshare-run --dry-run --pid --mount -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --pivot -- \
        cap-drop --drop all --seccomp default --user nobody -- sh
    assert_success
    assert_output --partial "cap-drop: prctl(PR_SET_NO_NEW_PRIVS, 1) (dry run)"
    assert_output --partial 'cap-drop: execve("sh", ["sh"], envp) (dry run)'
}

# --- cg-limit ---

@test "chains: cg-limit --dry-run starts the plan of the whole chain" {
    [ -x "$KAGO_BIN/cap-drop" ] || skip "cap-drop is not built"
    KAGO_NAME=cgtchain1 run as_nobody env KAGO_NAME=cgtchain1 cg-limit --dry-run --memory 64M --pids 16 -- \
        cap-drop --drop all -- sh
    assert_success
    assert_output --partial 'pids.max", "16") (dry run)'
    assert_output --partial '(dry run continues)'
    assert_output --partial 'cap-drop: execve("sh", ["sh"], envp) (dry run)'
}

@test "chains: cg-limit runs the next kago program in the cgroup with the rlimits" {
    [ -x "$KAGO_BIN/cap-drop" ] || skip "cap-drop is not built"
    KAGO_NAME=cgtchain2 run cg-limit --pids 16 --rlimit nofile=64 -- \
        cap-drop --drop all -- sh -c 'ulimit -n; grep CapEff /proc/self/status; grep -c /kago/cgtchain2 /proc/self/cgroup; env | grep -c ^KAGO_ || true'
    assert_success
    assert_line --index 0 64
    assert_line --regexp '^CapEff:\s+0000000000000000$'
    assert_line --index 2 --regexp '^[1-9]'
    assert_line --index 3 0
}

@test "chains: cg-limit --memory 32M around a container: the payload is OOM-killed and reported" {
    require_static
    for p in unshare-run mount-layers cap-drop; do
        [ -x "$KAGO_BIN/$p" ] || skip "$p is not built"
    done
    [ -x "$(test_prog cgroup_alloc)" ] || skip "tests/progs/cgroup_alloc is not built"
    KAGO_NAME=cgtchain3 run cg-limit --memory 32M --pids 64 -- \
        unshare-run --pid --mount --uts --ipc -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --dev \
            --file "$(test_prog cgroup_alloc):/bin/cgroup_alloc" --pivot -- \
        cap-drop --drop all -- /bin/cgroup_alloc 100
    assert_equal "$status" 137
    refute_output --partial 'allocated 100 MiB'
    assert_output --partial 'cg-limit: cgtchain3: '
    assert_output --partial 'killed by the memory limit (32 MiB)'
    run find /sys/fs/cgroup -name 'cgtchain3.*'
    assert_output ""
}

# --- mount-layers ---

# A scratch directory 65534 can use (not /tmp/kago-*: those are state dirs).
ml_chain_tmp() {
    ML_T=$(mktemp -d /tmp/mlc.XXXXXX)
    chmod 755 "$ML_T"
}

@test "chains: unshare-run -> mount-layers: a busybox root with its own /proc, /dev and nothing of the host" {
    require_progs unshare-run mount-layers
    run unshare-run --pid --mount --uts --ipc --net --hostname mlbox -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --dev --pivot -- \
        /bin/sh -c 'hostname; ps -o pid= | wc -l; awk "{print \$5}" /proc/self/mountinfo | sort -u | tr "\n" " "'
    assert_success
    assert_line --index 0 "mlbox"
    assert_line --index 2 "/ /dev /dev/full /dev/mqueue /dev/null /dev/pts /dev/random /dev/shm /dev/tty /dev/urandom /dev/zero /proc /proc/acpi /proc/bus /proc/fs /proc/interrupts /proc/irq /proc/keys /proc/sys /proc/timer_list "
}

@test "chains: after pivot_root, the payload has only 0, 1, 2 and no way back to the host" {
    require_progs unshare-run mount-layers
    ml_chain_tmp
    echo TOPSECRET-HOST >"$ML_T/secret"
    exec 8<"$ML_T/secret"
    run unshare-run --pid --mount -- \
        mount-layers --layer "$KAGO_ROOTFS" --proc --dev --pivot -- \
        /bin/sh -c 'ls /proc/self/fd | tr "\n" " "; echo; cat /proc/self/fd/8 2>/dev/null; cmp /proc/self/exe /bin/busybox && echo own-exe'
    exec 8<&-
    rm -rf "$ML_T"
    assert_success
    assert_line --index 0 "0 1 2 3 "  # 3: the directory ls reads
    assert_line "own-exe"
    refute_output --partial TOPSECRET
}

@test "chains: a kago program missing from the new root still runs after pivot_root" {
    require_static
    require_progs unshare-run mount-layers cap-drop
    [ ! -e "$KAGO_ROOTFS/bin/cap-drop" ]
    run unshare-run --pid --mount -- \
        mount-layers --layer "$KAGO_ROOTFS" --proc --pivot -- \
        cap-drop --drop all -- /bin/sh -c 'grep ^CapEff /proc/self/status; env | grep -c ^KAGO_ || true'
    assert_success
    assert_line "CapEff:	0000000000000000"
    assert_line "0"
}

@test "chains: KAGO_TRACE=1 shows the root being built, call by call" {
    require_progs unshare-run mount-layers
    run env KAGO_TRACE=1 unshare-run --pid --mount -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --pivot -- /bin/true
    assert_success
    assert_output --partial 'mount-layers: fsopen("overlay", FSOPEN_CLOEXEC) = '
    assert_output --partial 'mount-layers: pivot_root(".", ".") = 0'
    assert_output --partial 'mount-layers: execve("/bin/true"'
}

@test "chains: Debian bash and apt-get as root, changes kept in --upper, gone with --tmp-upper" {
    require_progs unshare-run mount-layers
    require_debian_rootfs
    ml_chain_tmp
    run unshare-run --pid --mount --uts --ipc -- \
        mount-layers --layer "$DEBIAN_ROOTFS" --upper "$ML_T/up" --proc --dev --pivot -- \
        /bin/bash -c 'apt-get --version; cat /etc/os-release; id -u; echo kept >/etc/kago-mark'
    local kept=$(cat "$ML_T/up/etc/kago-mark" 2>/dev/null)
    assert_success
    assert_output --partial "apt 2.6"
    assert_output --partial 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"'
    assert_line "0"
    [ "$kept" = kept ] || { rm -rf "$ML_T"; fail "the change was not kept in --upper"; }
    run unshare-run --pid --mount -- \
        mount-layers --layer "$DEBIAN_ROOTFS" --upper "$ML_T/up" --pivot -- /bin/cat /etc/kago-mark
    assert_output "kept"
    run unshare-run --pid --mount -- \
        mount-layers --layer "$DEBIAN_ROOTFS" --tmp-upper --pivot -- /bin/bash -c 'echo x >/etc/kago-gone; cat /etc/kago-gone'
    assert_output "x"
    rm -rf "$ML_T"
    [ ! -e "$DEBIAN_ROOTFS/etc/kago-gone" ] && [ ! -e "$DEBIAN_ROOTFS/etc/kago-mark" ]
}

@test "chains: Debian bash and apt-get as uid 65534 (cap-drop --user)" {
    require_static
    require_progs unshare-run mount-layers cap-drop
    require_debian_rootfs
    run unshare-run --pid --mount --uts --ipc -- \
        mount-layers --layer "$DEBIAN_ROOTFS" --tmp-upper --proc --dev --pivot -- \
        cap-drop --user 65534:65534 -- /bin/bash -c 'apt-get --version; cat /etc/os-release; id -u; touch /etc/nope'
    assert_failure 1
    assert_output --partial "apt 2.6"
    assert_output --partial "VERSION_CODENAME=bookworm"
    assert_line "65534"
    assert_output --partial "Permission denied"
}

@test "chains: rootless, uid 65534 runs Debian's bash through unshare-run --user --map-root" {
    require_progs unshare-run mount-layers
    require_userns
    require_debian_rootfs
    ml_chain_tmp
    chown 65534:65534 "$ML_T"
    run as_nobody "$KAGO_BIN/unshare-run" --user --map-root --pid --mount -- \
        mount-layers --layer "$DEBIAN_ROOTFS" --upper "$ML_T/up" --proc --dev --tmpfs /tmp \
            --target "$ML_T/root" --pivot -- \
        /bin/bash -c 'apt-get --version | head -1; grep ^ID= /etc/os-release; id -u; echo mine >/root-mark'
    local kept=$(cat "$ML_T/up/root-mark" 2>/dev/null)
    rm -rf "$ML_T"
    assert_success
    assert_output --partial "apt 2.6"
    assert_line "ID=debian"
    assert_line "0"
    [ "$kept" = mine ]
}

@test "chains: net-setup --veth -> unshare-run -> mount-layers --hosts --resolv binds net-setup's files" {
    require_progs net-setup unshare-run mount-layers
    run env KAGO_NAME=mlc$$ net-setup --veth -- unshare-run --pid --mount -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --hosts --resolv --pivot -- /bin/sh -c 'cat /etc/hosts /etc/resolv.conf'
    assert_success
    assert_output --partial "mlc$$"
    assert_output --partial "nameserver"
    [ ! -e "$KAGO_ROOTFS/etc/hosts" ] && [ ! -e "$KAGO_ROOTFS/etc/resolv.conf" ]
}

# --- unshare-run ---

@test "chains: unshare-run -> mount-layers, rootless as uid 65534: uid 0, PID 2, own hostname" {
    require_progs unshare-run mount-layers
    require_userns
    run as_nobody unshare-run --user --map-root --pid --mount --uts --ipc --net --hostname urchain -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --dev --pivot -- \
        /bin/sh -c 'id -u; echo $$; hostname; ps -o pid= | wc -l'
    assert_success
    # The busybox tree is root's, which --map-root does not map: warned (on stderr).
    assert_line --index 0 --partial "mount-layers: warning: --layer $KAGO_ROOTFS: its root"
    assert_line --index 1 --partial "mount-layers: hint: "
    assert_line --index 2 0
    assert_line --index 3 2
    assert_line --index 4 urchain
}

@test "chains: unshare-run passes the command's status and 127 through the chain" {
    require_progs unshare-run mount-layers
    run unshare-run --pid --mount -- mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --pivot -- /bin/sh -c 'exit 7'
    assert_equal "$status" 7
    run sh -c 'unshare-run --pid --mount -- mount-layers --layer "$1" --tmp-upper --proc --pivot -- /no/such/payload; echo "status $?"' sh "$KAGO_ROOTFS"
    assert_line "status 127"
}

@test "chains: unshare-run's state directory lives as long as the chain" {
    require_progs unshare-run mount-layers
    unshare-run --name urchain-state --pid --mount -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --pivot -- /bin/sleep 2 &
    local bg=$! i
    for i in $(seq 50); do [ -e /run/kago/urchain-state/ns/pid ] && break; sleep 0.05; done
    local pid
    pid=$(cat /run/kago/urchain-state/pid)
    run stat -Lc %i /run/kago/urchain-state/ns/pid /proc/$pid/ns/pid
    assert_success
    assert_equal "${lines[0]}" "${lines[1]}"
    wait "$bg"
    [ ! -e /run/kago/urchain-state ]
}

@test "chains: unshare-run --dry-run plans the whole chain without privilege" {
    require_progs unshare-run mount-layers cap-drop
    run as_nobody unshare-run --dry-run --pid --mount --hostname urdry -- \
        mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --pivot -- \
        cap-drop --drop all -- /bin/sh
    assert_success
    assert_line 'unshare-run: sethostname("urdry", 5) (dry run)'
    assert_output --partial 'mount-layers: '
    assert_output --partial 'cap-drop: '
    assert_output --partial '"/bin/sh"'
}

# --- pack-selfexec ---

@test "chains: a packed file's tree, run through the kago chain, gives what the packed file gives" {
    require_static
    for p in pack-selfexec unshare-run mount-layers cap-drop; do
        [ -x "$KAGO_BIN/$p" ] || skip "$p is not built"
    done
    local d
    d=$(mktemp -d /tmp/kago-pack-chain.XXXXXX)
    pack-selfexec -o "$d/app.run" --rootfs "$KAGO_ROOTFS" --hostname box -- \
        /bin/sh -c 'hostname; grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status; ls /proc/1/ns >/dev/null && echo ns'
    "$d/app.run" --kago-extract "$d/tree"
    run "$d/app.run" --kago-cache "$d/cache"
    local packed=$output
    run unshare-run --pid --mount --uts --ipc --net --hostname box -- \
        mount-layers --layer "$d/tree" --tmp-upper --proc --dev --pivot -- \
        cap-drop --seccomp default -- \
        /bin/sh -c 'hostname; grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status; ls /proc/1/ns >/dev/null && echo ns'
    rm -rf "$d"
    assert_success
    assert_output "$packed"
}

@test "chains: cg-limit around a packed file applies the limits it records" {
    for p in pack-selfexec cg-limit; do
        [ -x "$KAGO_BIN/$p" ] || skip "$p is not built"
    done
    local d
    d=$(mktemp -d /tmp/kago-pack-chain.XXXXXX)
    pack-selfexec -o "$d/app.run" --pids 16 --rootfs "$KAGO_ROOTFS" -- /bin/sh -c 'echo ran'
    KAGO_NAME=pkchain1 run cg-limit --pids 16 -- "$d/app.run" --kago-cache "$d/cache"
    rm -rf "$d"
    assert_success
    assert_output --partial "ran"
}

# --- net-setup ---
# Each test runs in network and mount namespaces of its own (the "host" of
# net-setup), so bridges, rules and published ports never touch the real host.

ns_chain_need() {
    [ "$(id -u)" = 0 ] || skip "needs root to create the test's own namespaces"
    require_progs net-setup unshare-run mount-layers
}

@test "chains: cg-limit around net-setup --veth on a bridge of its own: the bridge and lease go too" {
    ns_chain_need
    run ns_chain_tns 'cg-limit --pids 64 -- net-setup --veth --bridge kgtc3 --subnet 10.250.63.0/24 --nat -- \
            unshare-run --pid --mount -- true
        echo "status=$?"
        gone kgtc3 || echo LEFT-BRIDGE
        no_lease kgtc3 || echo LEFT-LEASE
        nft list table inet kago >/dev/null 2>&1 && echo LEFT-TABLE || true'
    assert_success
    assert_line "status=0"
    refute_output --partial LEFT-
}

@test "chains: net-setup --veth -> cg-limit -> sh: cg-limit waits at the readiness gate; the payload finds the network ready" {
    ns_chain_need
    require_progs cg-limit
    run ns_chain_tns 'net-setup --veth --bridge kgtc4 --subnet 10.250.64.0/24 -- \
            cg-limit --pids 64 -- sh -c "ip -br addr show eth0; ip route show default; env | grep -c KAGO_READY_FD || true"
        echo "status=$?"
        gone kgtc4 || echo LEFT-BRIDGE'
    assert_success
    assert_output --regexp 'eth0@[^ ]+ +UP +10\.250\.64\.2/24'
    assert_line --partial "default via 10.250.64.1 dev eth0"
    assert_line 0
    assert_line "status=0"
    refute_output --partial LEFT-
}

ns_chain_tns() {
    unshare --net --mount --propagation private -- \
        bash -euc "trap 'kill \$(jobs -p) 2>/dev/null || true' EXIT; ip link set lo up; $KAGO_GONE; $1"
}

@test "chains: net-setup --veth --publish -> unshare-run -> mount-layers: httpd answers on the host's 127.0.0.1:8080" {
    ns_chain_need
    run ns_chain_tns 'net-setup --veth --bridge kgtc1 --subnet 10.250.61.0/24 --nat --publish 8080:80 -- \
            unshare-run --pid --mount --uts --ipc --hostname web -- \
            mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --dev --pivot -- \
            /usr/sbin/httpd -f -p 80 -h /var/www &
        for i in $(seq 50); do timeout 5 busybox wget -qO- http://127.0.0.1:8080/ 2>/dev/null && break; sleep 0.2; done
        kill %1; wait %1 || true
        nft list table inet kago >/dev/null 2>&1 && echo LEFT-TABLE || true
        gone kgtc1 || echo LEFT-BRIDGE'
    assert_success
    assert_line "<h1>hello from kago</h1>"
    refute_output --partial LEFT-
}

@test "chains: rootless net-setup --user-mode -> unshare-run --user --map-root -> mount-layers: httpd on 8080 (uid 65534)" {
    ns_chain_need
    require_userns
    command -v pasta >/dev/null || command -v slirp4netns >/dev/null || skip "neither pasta nor slirp4netns is installed"
    local tun
    tun=$(mktemp -u /tmp/kgt-tun.XXXXXX)
    run ns_chain_tns "
        ip link add kgtu0 type veth peer name kgtu1
        ip addr add 10.250.62.1/24 dev kgtu0; ip link set kgtu0 up; ip link set kgtu1 up
        ip route add default via 10.250.62.2
        mknod $tun c 10 200; chmod 666 $tun; mount --bind $tun /dev/net/tun; rm -f $tun"'
        setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$PATH" HOME=/tmp \
            net-setup --user-mode --publish 8080:80 -- \
            unshare-run --user --map-root --pid --mount --uts -- \
            mount-layers --layer "$KAGO_ROOTFS" --tmp-upper --proc --dev --pivot -- \
            /usr/sbin/httpd -f -p 80 -h /var/www &
        for i in $(seq 50); do timeout 5 busybox wget -qO- http://127.0.0.1:8080/ 2>/dev/null && break; sleep 0.2; done
        kill %1; wait %1 || true'
    assert_success
    assert_line "<h1>hello from kago</h1>"
}

@test "chains: KAGO_TRACE=1 shows net-setup's netlink requests before unshare-run's calls" {
    ns_chain_need
    run ns_chain_tns 'KAGO_TRACE=1 net-setup --veth --bridge kgtc3 --subnet 10.250.63.0/24 -- unshare-run --uts -- true'
    assert_success
    assert_output --regexp 'net-setup: RTM_NEWLINK\(ifname="kg[^"]*", kind="veth"'
    assert_output --partial "net-setup: RTM_NEWROUTE(0.0.0.0/0 via 10.250.63.1"
    assert_output --regexp "unshare-run: (unshare|clone)\\("
}
