#!/usr/bin/env bats
# unshare-run against the real kernel: one test per option and per exit
# status, the rootless runs as uid 65534, and the bad input that must fail
# with 125 and leave nothing behind (kago_teardown_file checks).
load helpers
bats_require_minimum_version 1.5.0

setup_file() {
    kago_setup_file
    export UR="$KAGO_BIN/unshare-run"
    # Files the rootless tests (uid 65534) write; their state directories go
    # to /tmp/kago-65534, which the leftover check watches.
    URTMP=$(mktemp -d /tmp/urtest.XXXXXX)
    chmod 0777 "$URTMP"
    export URTMP
}

teardown_file() {
    # The --map-auto test adds one line for uid 65534; take it out again.
    sed -i '/^65534:2000000000:65536$/d' /etc/subuid /etc/subgid 2>/dev/null || true
    rm -rf "$URTMP"
    kago_teardown_file
}

teardown() {
    # A background container a test started (its pid in $BG). SIGTERM, so
    # that the supervisor removes its state directory.
    if [ -n "${BG:-}" ]; then
        kill -TERM "$BG" 2>/dev/null || true
        wait "$BG" 2>/dev/null || true
    fi
}

ns_of() { readlink "/proc/${2:-self}/ns/$1"; }

# Start `unshare-run OPTIONS -- sleep` in the background; sets BG (the
# supervisor) and CPID (the container's first process, from --info-fd).
start_bg() {
    local info="$BATS_TEST_TMPDIR/info.json"
    rm -f "$info"
    "$UR" --info-fd 3 "$@" 3>"$info" &
    BG=$!
    local i
    for i in $(seq 100); do
        [ -s "$info" ] && break
        sleep 0.05
    done
    CPID=$(jq -r .pid "$info")
    [ -n "$CPID" ] && [ "$CPID" != null ]
}

# --- the grammar and the exit statuses ----------------------------------------

@test "--help lists every option and exits 0" {
    run "$UR" --help
    assert_success
    for o in --user --pid --mount --uts --ipc --net --cgroup --time --all --map-root --map-user \
        --map-group --map-auto --hostname --monotonic --boottime --propagation --mount-proc \
        --join --join-pid --as-pid-1 --die-with-parent --info-fd --dry-run --verbose; do
        assert_output --partial -- "$o"
    done
}

@test "--version prints the version" {
    run "$UR" --version
    assert_success
    assert_output --regexp '^unshare-run \(kago\) [0-9]'
}

@test "exit status: the command's own" {
    run "$UR" --pid -- sh -c 'exit 3'
    assert_equal "$status" 3
    run "$UR" --net -- sh -c 'exit 4'  # no init: the child execs
    assert_equal "$status" 4
}

@test "exit status 125: an unknown option" {
    run "$UR" --bogus -- true
    assert_equal "$status" 125
    assert_output --partial "Try 'unshare-run --help' for more information."
}

@test "exit status 126: the command cannot be executed" {
    run "$UR" --pid -- /etc/passwd
    assert_equal "$status" 126
    assert_output --partial "unshare-run: /etc/passwd: Permission denied"
    run "$UR" --uts -- /etc/passwd
    assert_equal "$status" 126
}

@test "exit status 127: the command is not found" {
    run -127 "$UR" --pid -- kago-no-such-command
    assert_equal "$status" 127
    assert_output "unshare-run: kago-no-such-command: No such file or directory"
    run -127 "$UR" --uts -- /nonexistent/cmd
    assert_equal "$status" 127
}

@test "exit status 128+N: the command's fatal signal is raised again" {
    # Python sees a death by signal as a negative return code.
    run /usr/bin/python3 -c '
import subprocess, sys
print(subprocess.run([sys.argv[1], "--pid", "--", "sh", "-c", "kill -TERM $$"]).returncode)
print(subprocess.run([sys.argv[1], "--uts", "--", "sh", "-c", "kill -USR1 $$"]).returncode)
print(subprocess.run([sys.argv[1], "--pid", "--as-pid-1", "--", "sh", "-c", "kill -TERM $$; exit 9"]).returncode)
print(subprocess.run([sys.argv[1], "--pid", "--", "sh", "-c", "kill -KILL $$"]).returncode)' "$UR"
    assert_success
    assert_line --index 0 -- -15
    assert_line --index 1 -- -10
    assert_line --index 2 -- 9    # PID 1 ignores a signal it has no handler for
    assert_line --index 3 -- 137  # SIGKILL is not raised on ourselves: 128+9
    run "$UR" --pid -- sh -c 'kill -KILL $$'
    assert_equal "$status" 137
}

@test "no command runs \$SHELL" {
    run bash -c 'echo "echo from-the-shell \$\$" | SHELL=/bin/sh "$UR" --pid'
    assert_success
    assert_output "from-the-shell 2"
}

@test "the payload sees no KAGO_ variable, unless --keep-env" {
    run env KAGO_NAME=urenv1 "$UR" --uts -- env
    assert_success
    assert_line --regexp '^PATH='
    refute_output --partial KAGO_
    run env KAGO_NAME=urenv2 "$UR" --uts --keep-env -- env
    assert_success
    assert_line KAGO_NAME=urenv2
    assert_line --regexp '^KAGO_STATE_DIR=/run/kago/urenv2$'
}

# --- the namespaces -------------------------------------------------------------

@test "--pid: the command runs under an init, as PID 2" {
    run "$UR" --pid -- sh -c 'echo $$'
    assert_success
    assert_output 2
}

@test "--as-pid-1: the command itself is PID 1" {
    run "$UR" --pid --as-pid-1 -- sh -c 'echo $$'
    assert_success
    assert_output 1
}

@test "--pid: the init reaps orphaned zombies" {
    run "$UR" --mount-proc -- sh -c '(sleep 0.2 &); sleep 1; ps -o stat= -o comm= ax'
    assert_success
    refute_output --regexp '^ *Z'
    refute_output --partial sleep  # the orphan was reaped, not left a zombie
    assert_equal "${#lines[@]}" 3  # the init, sh, ps
    assert_line --regexp ' ps$'
}

@test "--mount-proc: a new /proc shows only the container" {
    run "$UR" --mount-proc -- ps -o pid= ax
    assert_success
    assert_equal "$(echo "$output" | tr -d ' ' | tr '\n' ' ')" "1 2 "  # the init, ps
}

@test "--mount: a mount made inside is not seen outside" {
    run "$UR" --mount -- sh -c 'mount -t tmpfs urtest-mnt /mnt && grep -c urtest-mnt /proc/self/mountinfo'
    assert_success
    assert_output 1
    run grep urtest-mnt /proc/self/mountinfo
    assert_failure
}

@test "--mount: propagation is private by default" {
    run "$UR" --mount -- awk '$5 == "/" { print }' /proc/self/mountinfo
    assert_success
    assert_output --regexp '^[0-9]+ [0-9]+ [0-9]+:[0-9]+ [^ ]+ / '  # the root's line
    refute_output --partial shared:
}

@test "--propagation shared, slave and unchanged" {
    run "$UR" --mount --propagation shared -- awk '$5 == "/" { print }' /proc/self/mountinfo
    assert_success
    assert_output --partial shared:
    run "$UR" -v --mount --propagation slave -- true
    assert_success
    assert_output --partial 'mount(NULL, "/", NULL, MS_REC|MS_SLAVE, NULL) = 0'
    run "$UR" -v --mount --propagation unchanged -- true
    assert_success
    assert_output --partial 'clone(CLONE_NEWNS'  # the trace is on
    refute_output --partial 'mount('
}

@test "--propagation: a bad mode, or no mount namespace, is 125" {
    run "$UR" --mount --propagation sideways -- true
    assert_equal "$status" 125
    assert_output --partial "expected private, slave, shared or unchanged"
    run "$UR" --propagation slave -- true
    assert_equal "$status" 125
    assert_output --partial "needs a new mount namespace"
}

@test "--uts and --hostname" {
    local host
    host=$(hostname)
    run "$UR" --hostname urtest-box -- hostname
    assert_success
    assert_output urtest-box
    assert_equal "$(hostname)" "$host"
    run "$UR" --uts -- sh -c 'readlink /proc/self/ns/uts'
    assert_success
    [ "$output" != "$(ns_of uts)" ]
}

@test "--ipc: a new IPC namespace" {
    run "$UR" --ipc -- readlink /proc/self/ns/ipc
    assert_success
    [ "$output" != "$(ns_of ipc)" ]
}

@test "--net: a new network namespace with only lo, and lo is up" {
    run "$UR" --net -- ip -o link
    assert_success
    assert_equal "${#lines[@]}" 1
    assert_output --regexp '^1: lo: <LOOPBACK,UP,LOWER_UP>'
    run "$UR" --net -- ip -o addr show dev lo
    assert_success
    assert_output --partial "inet 127.0.0.1/8"
}

@test "--cgroup: a new cgroup namespace" {
    run "$UR" --cgroup -- sh -c 'readlink /proc/self/ns/cgroup; cat /proc/self/cgroup'
    assert_success
    [ "${lines[0]}" != "$(ns_of cgroup)" ]
    assert_line '0::/'
}

@test "--time with --monotonic and --boottime" {
    run "$UR" --monotonic 86400 --boottime 172800 -- /usr/bin/python3 -c '
import time
print(int(time.clock_gettime(time.CLOCK_MONOTONIC) // 86400), int(time.clock_gettime(time.CLOCK_BOOTTIME) // 86400))'
    assert_success
    assert_output --regexp '^[1-9][0-9]* [2-9][0-9]*$'
    run "$UR" --time -- readlink /proc/self/ns/time
    assert_success
    [ "$output" != "$(ns_of time)" ]
    run "$UR" --monotonic soon -- true
    assert_equal "$status" 125
}

@test "--all: every namespace but the user namespace (root)" {
    run "$UR" --all -- sh -c 'for n in pid mnt uts ipc net cgroup time user; do readlink /proc/self/ns/$n; done'
    assert_success
    local i=0 n
    for n in pid mnt uts ipc net cgroup time; do
        [ "${lines[$i]}" != "$(ns_of $n)" ]
        i=$((i + 1))
    done
    assert_equal "${lines[7]}" "$(ns_of user)"
}

# --- user namespaces and maps --------------------------------------------------

@test "--user --map-root as root: uid 0 maps to 0 and setgroups stays allowed" {
    run "$UR" --user --map-root -- sh -c 'id -u; cat /proc/self/uid_map /proc/self/setgroups; readlink /proc/self/ns/user'
    assert_success
    assert_line --index 0 0
    assert_line --regexp '^ +0 +0 +1$'
    assert_line allow
    [ "${lines[3]}" != "$(ns_of user)" ]
}

@test "--map-user and --map-group: explicit lists" {
    run "$UR" --map-user 0:100000:1000,1000:200000:10 --map-group 0:100000:65536 -- \
        sh -c 'cat /proc/self/uid_map /proc/self/gid_map'
    assert_success
    assert_line --regexp '^ +0 +100000 +1000$'
    assert_line --regexp '^ +1000 +200000 +10$'
    assert_line --regexp '^ +0 +100000 +65536$'
}

@test "--map-user: a malformed map is 125" {
    run "$UR" --map-user 0:1000 -- true
    assert_equal "$status" 125
    assert_output --partial "is not INSIDE:OUTSIDE:COUNT"
    run "$UR" --map-group 0:x:1 -- true
    assert_equal "$status" 125
}

@test "--map-user: overlapping ranges are 125" {
    run "$UR" --map-user 0:100000:10,5:200000:10 -- true
    assert_equal "$status" 125
    assert_output --partial "overlap inside"
    run "$UR" --map-user 0:100000:10,20:100005:1 -- true
    assert_equal "$status" 125
    assert_output --partial "overlap outside"
}

@test "--map-root and --map-auto exclude each other" {
    run "$UR" --map-root --map-auto -- true
    assert_equal "$status" 125
}

@test "--map-auto: a missing newuidmap is a clear 125" {
    run env PATH="$KAGO_BIN" "$UR" --map-auto -- /bin/true
    assert_equal "$status" 125
    assert_output --partial "unshare-run: newuidmap: No such file or directory"
    assert_output --partial "uidmap"
}

@test "--map-auto without a range in /etc/subuid is 125" {
    require_userns
    run as_nobody "$UR" --map-auto -- /bin/true
    assert_equal "$status" 125
    assert_output --partial "/etc/subuid"
}

@test "--map-auto (rootless): the ranges of /etc/subuid through newuidmap" {
    require_userns
    command -v newuidmap >/dev/null || skip "newuidmap is not installed (package uidmap)"
    echo '65534:2000000000:65536' >>/etc/subuid
    echo '65534:2000000000:65536' >>/etc/subgid
    run as_nobody "$UR" --map-auto --pid -- sh -c 'cat /proc/self/uid_map; id -u'
    sed -i '/^65534:2000000000:65536$/d' /etc/subuid /etc/subgid
    assert_success
    assert_line --regexp '^ +0 +65534 +1$'
    assert_line --regexp '^ +1 +2000000000 +65536$'
    assert_line 0
}

# --- rootless ------------------------------------------------------------------

@test "rootless: --user --map-root --pid --mount --uts --ipc --net runs as uid 0" {
    require_userns
    run as_nobody "$UR" --user --map-root --pid --mount --uts --ipc --net -- sh -c 'id -u; id -g; cat /proc/self/setgroups; echo $$'
    assert_success
    assert_line --index 0 0
    assert_line --index 1 0
    assert_line --index 2 deny  # required for an unprivileged gid_map
    assert_line --index 3 2
}

@test "rootless: --all adds --user --map-root" {
    require_userns
    run as_nobody "$UR" --all --hostname urtest-rootless -- sh -c 'id -u; hostname'
    assert_success
    assert_output "0
urtest-rootless"
}

@test "rootless: --mount-proc and the time offsets" {
    require_userns
    run as_nobody "$UR" --user --map-root --mount-proc --boottime 100000 -- sh -c 'echo /proc/[0-9]*; cut -d. -f1 /proc/uptime'
    assert_success
    # The shell expands the glob itself: the init and sh, and no process racing them.
    assert_line --index 0 "/proc/1 /proc/2"
    [ "${lines[1]}" -ge 100000 ]
}

@test "rootless: without --user, a clear 125 and a hint" {
    run as_nobody "$UR" --net -- true
    assert_equal "$status" 125
    assert_output --partial "Operation not permitted"
    assert_output --partial "hint: "
    assert_output --partial "--user --map-root"
}

@test "rootless: the state directory is under TMPDIR and removed" {
    require_userns
    run as_nobody "$UR" --user --map-root --keep-env -- sh -c 'echo $KAGO_STATE_DIR; cat $KAGO_STATE_DIR/pid'
    assert_success
    assert_line --index 0 --regexp "^/tmp/kago-65534/[0-9a-f]{8}$"
    [ ! -e "${lines[0]}" ]
}

# --- joining -------------------------------------------------------------------

@test "--join TYPE=PATH joins a namespace file" {
    start_bg --net --uts --hostname urtest-join -- sleep 30
    local net
    net=$(ns_of net "$CPID")
    run "$UR" --join "net=/proc/$CPID/ns/net" --join "uts=/proc/$CPID/ns/uts" -- sh -c 'readlink /proc/self/ns/net; hostname'
    assert_success
    assert_line --index 0 "$net"
    assert_line --index 1 urtest-join
}

@test "--join: an unknown namespace type is 125" {
    run "$UR" --join bogus=/proc/self/ns/net -- true
    assert_equal "$status" 125
    assert_output --partial "unknown namespace type 'bogus'"
    run "$UR" --join /proc/self/ns/net -- true
    assert_equal "$status" 125
    assert_output --partial "expected TYPE=PATH"
}

@test "--join: a missing file, or the wrong type, is 125" {
    run "$UR" --join net=/nonexistent/ns -- true
    assert_equal "$status" 125
    assert_output --partial "/nonexistent/ns: No such file or directory"
    run "$UR" --join net=/proc/self/ns/uts -- true
    assert_equal "$status" 125
    assert_output --partial "join net namespace /proc/self/ns/uts: Invalid argument"
}

@test "--join and a new namespace of the same type exclude each other" {
    run "$UR" --net --join net=/proc/self/ns/net -- true
    assert_equal "$status" 125
    assert_output --partial "exclude each other"
}

@test "--join-pid enters every namespace of a process, its root and its cwd" {
    mkdir -p "$BATS_TEST_TMPDIR/cwd"
    (cd "$BATS_TEST_TMPDIR/cwd" && exec "$UR" --info-fd 3 --pid --mount --uts --ipc --net --hostname urtest-pid -- sleep 30 3>"$BATS_TEST_TMPDIR/info.json") &
    BG=$!
    local i
    for i in $(seq 100); do [ -s "$BATS_TEST_TMPDIR/info.json" ] && break; sleep 0.05; done
    CPID=$(jq -r .pid "$BATS_TEST_TMPDIR/info.json")
    "$UR" --join-pid "$CPID" -- mount -t tmpfs urtest-joinpid /mnt
    run "$UR" --join-pid "$CPID" -- sh -c 'hostname; echo $$; pwd; grep -c urtest-joinpid /proc/self/mountinfo; readlink /proc/self/ns/net'
    assert_success
    assert_line --index 0 urtest-pid
    [ "${lines[1]}" -gt 2 ]   # 1 is the init, 2 is sleep
    assert_line --index 2 /   # the init keeps no host directory
    assert_line --index 3 1
    assert_line --index 4 "$(ns_of net "$CPID")"
    # sleep's cwd (where the container was started) is inside its root here
    run "$UR" --join-pid "$(pgrep -x -P "$CPID" sleep)" -- pwd
    assert_success
    assert_output "$BATS_TEST_TMPDIR/cwd"
}

@test "--join-pid: rootless, into a rootless container (user namespace first)" {
    require_userns
    local info="$URTMP/info.json"
    rm -f "$info"
    # Not through as_nobody (a function, so $! would be a subshell): the
    # same setpriv + env, exec'd down to unshare-run itself.
    setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$PATH" HOME=/tmp TMPDIR=/tmp \
        sh -c "exec \"\$0\" --info-fd 3 --user --map-root --pid --uts --hostname urtest-rl -- sleep 30 3>$info" "$UR" &
    BG=$!
    local i
    for i in $(seq 100); do [ -s "$info" ] && break; sleep 0.05; done
    # The init is undumpable: join the command, a process in the container.
    CPID=$(pgrep -P "$(jq -r .pid "$info")" sleep)
    run as_nobody "$UR" --join-pid "$CPID" -- sh -c 'id -u; hostname'
    assert_success
    assert_output "0
urtest-rl"
}

@test "--join-pid: a process that does not exist is 125" {
    run "$UR" --join-pid 4194303 -- true
    assert_equal "$status" 125
    assert_output --partial "No such process"
    run "$UR" --join-pid 0 -- true
    assert_equal "$status" 125
}

@test "--join-pid: a namespace we may not join is 125" {
    run as_nobody "$UR" --join-pid 1 -- true
    assert_equal "$status" 125
    assert_output --partial "Permission denied"
    run as_nobody "$UR" --join net=/proc/1/ns/net -- true
    assert_equal "$status" 125
}

# --- the supervisor --------------------------------------------------------------

@test "signals: the seven forwarded signals reach the command through the init" {
    local sig
    for sig in TERM HUP USR1 USR2 QUIT WINCH INT; do
        # A background job of a script starts with SIGINT and SIGQUIT
        # ignored; python puts the default back before it execs.
        /usr/bin/python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL); signal.signal(signal.SIGQUIT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$UR" --pid -- sh -c "trap 'echo got-$sig; exit 42' $sig; echo ready; while :; do sleep 0.05; done" >"$BATS_TEST_TMPDIR/out" &
        BG=$!
        local i
        for i in $(seq 100); do grep -q ready "$BATS_TEST_TMPDIR/out" && break; sleep 0.05; done
        kill -$sig "$BG"
        local st=0
        wait "$BG" || st=$?
        BG=
        assert_equal "$sig:$st" "$sig:42"
        run cat "$BATS_TEST_TMPDIR/out"
        assert_line "got-$sig"
    done
}

@test "signals: Ctrl-C on a terminal reaches the command once" {
    command -v script >/dev/null || skip "script(1) is not installed"
    run bash -c '(sleep 1; printf "\003"; sleep 2) | script -qfec "$UR --pid -- sh -c '\''trap \"echo INT-caught; exit 7\" INT; echo ready; sleep 5 & wait'\''" /dev/null'
    assert_output --partial ready
    assert_output --partial INT-caught
    assert_equal "$(echo "$output" | grep -c INT-caught)" 1
}

@test "--die-with-parent: the container dies with our parent" {
    bash -c '"$UR" --die-with-parent --pid -- sleep 987654 & sleep 0.5; kill -KILL $$' || true
    sleep 0.5
    run pgrep -f 'sleep 987654'
    assert_failure
}

@test "--info-fd: JSON with pid, name and namespace inodes" {
    run bash -c '"$UR" --name urtest-info --pid --net --info-fd 3 -- true 3>&1 >/dev/null'
    assert_success
    run jq -r '.name, .state_dir, (.pid > 0), (.namespaces.net != null), .namespaces.user' <<<"$output"
    assert_success
    assert_line --index 0 urtest-info
    assert_line --index 1 /run/kago/urtest-info
    assert_line --index 2 true
    assert_line --index 3 true
    assert_line --index 4 "$(stat -Lc %i /proc/self/ns/user)"
}

@test "--info-fd: a closed descriptor is 125" {
    run "$UR" --info-fd 9 -- true
    assert_equal "$status" 125
    assert_output --partial -- "--info-fd: 9 is not an open descriptor"
}

@test "the state directory holds pid and ns/*, and is removed at exit" {
    run "$UR" --name urtest-state --keep-env --pid --net -- sh -c '
        cat $KAGO_STATE_DIR/pid; stat -Lc %i $KAGO_STATE_DIR/ns/net /proc/self/ns/net; readlink $KAGO_STATE_DIR/ns'
    assert_success
    [ "${lines[0]}" -gt 1 ]
    assert_equal "${lines[1]}" "${lines[2]}"
    assert_equal "${lines[3]}" "/proc/${lines[0]}/ns"
    [ ! -e /run/kago/urtest-state ]
}

@test "an inherited KAGO_STATE_DIR gets pid and ns, and is left to its owner" {
    local dir=/run/kago/urtest-inherited
    mkdir -p "$dir"
    run env KAGO_STATE_DIR="$dir" "$UR" --pid -- true
    run ls "$dir"
    rm -rf "$dir"
    assert_output "ns
pid"
}

@test "the state directory is removed after a failure too" {
    run -127 "$UR" --name urtest-fail --pid -- kago-no-such-command
    assert_equal "$status" 127
    [ ! -e /run/kago/urtest-fail ]
    run "$UR" --name urtest-fail2 --pid --join net=/proc/self/ns/uts -- true
    assert_equal "$status" 125
    [ ! -e /run/kago/urtest-fail2 ]
}

@test "--name: a bad name is 125" {
    run "$UR" --name ../x --pid -- true
    assert_equal "$status" 125
}

# --- trace and dry run ---------------------------------------------------------

@test "-v traces each kernel call with its result" {
    run "$UR" -v --pid --net --hostname urtest-v -- true
    assert_success
    assert_line --regexp '^unshare-run: clone\(CLONE_NEWPID\|CLONE_NEWUTS\|CLONE_NEWNET\|SIGCHLD\) = [0-9]+$'
    assert_line 'unshare-run: sethostname("urtest-v", 8) = 0'
    assert_line --partial 'unshare-run: ioctl(SIOCSIFFLAGS'
    assert_line 'unshare-run: execve("true", ["true"], envp) = 0'
}

@test "KAGO_TRACE=1 traces too" {
    run env KAGO_TRACE=1 "$UR" --uts -- true
    assert_success
    assert_output --partial 'clone(CLONE_NEWUTS|SIGCHLD) = '
}

@test "--dry-run needs no privilege, prints the plan and creates nothing" {
    run as_nobody "$UR" --dry-run --user --map-root --pid --mount-proc --hostname urtest-dry --monotonic 5 -- /bin/true
    assert_success
    assert_line 'unshare-run: clone(CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS|SIGCHLD) = CHILD (dry run)'
    assert_line 'unshare-run: write("/proc/CHILD/uid_map", "0 65534 1\n") (dry run)'
    assert_line 'unshare-run: write("/proc/CHILD/setgroups", "deny") (dry run)'
    assert_line 'unshare-run: unshare(CLONE_NEWTIME) (dry run)'
    assert_line 'unshare-run: sethostname("urtest-dry", 10) (dry run)'
    assert_line 'unshare-run: mount("proc", "/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC, NULL) (dry run)'
    assert_line 'unshare-run: execve("/bin/true", ["/bin/true"], envp) (dry run)'
}

@test "--dry-run continues down a kago chain" {
    run as_nobody "$UR" --dry-run --pid -- unshare-run --net --hostname urtest-next -- /bin/true
    assert_success
    assert_output --partial '(dry run continues)'
    assert_line 'unshare-run: sethostname("urtest-next", 11) (dry run)'
    assert_line 'unshare-run: execve("/bin/true", ["/bin/true"], envp) (dry run)'
}

@test "--as-pid-1 without --pid is 125" {
    run "$UR" --as-pid-1 -- true
    assert_equal "$status" 125
    assert_output --partial "--as-pid-1 needs"
}

@test "the init is undumpable: a rootless container cannot reach the host through /proc/1" {
    # The container's root holds every capability in its user namespace; a
    # dumpable init of the same host uid would let it open /proc/1/exe (the
    # host's unshare-run) and /proc/1/root (the host's /).
    require_userns
    run as_nobody "$KAGO_BIN/unshare-run" --user --map-root --pid --mount-proc -- \
        sh -c 'cat /proc/1/exe >/dev/null 2>&1 && echo READ-EXE; ls /proc/1/root/ >/dev/null 2>&1 && echo SAW-ROOT; readlink /proc/1/fd/1 >/dev/null 2>&1 && echo SAW-FDS; echo done'
    assert_success
    assert_output "done"
}
