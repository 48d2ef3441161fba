#!/usr/bin/env bats
# unshare-run --tty: a terminal of the container's own, proxied by the
# supervisor. Each test runs the chain on a new terminal (tests/progs/
# tty_drive.c: a session with a cooked terminal, as a user's shell has),
# and checks from inside and from the caller's side: the terminal comes
# from the container's devpts, the caller's terminal never enters the
# container, window size and input pass, exit statuses and signal deaths
# pass through, and the caller's terminal mode is put back on every path.
load helpers
bats_require_minimum_version 1.5.0

setup_file() {
    kago_setup_file
    # Files the tests write from the caller's side, and that uid 65534
    # (the rootless tests) must reach and write.
    TTYTMP=$(mktemp -d /tmp/kago-tty.XXXXXX)
    chmod 0777 "$TTYTMP"
    export TTYTMP
    # A root that 65534 may read, with the test programs in it.
    export TROOT="$TTYTMP/root"
    cp -a "$KAGO_ROOTFS" "$TROOT"
    chmod 0755 "$TROOT"
    [ -x "$(test_prog escape_try)" ] && cp "$(test_prog escape_try)" "$TROOT/bin/escape_try"
    # The chain as a script for the terminal: BIN, ROOT and the
    # functions below are what a test script may use.
    export TTYLIB="$TTYTMP/lib.sh"
    cat >"$TTYLIB" <<EOF
B=$KAGO_BIN
R=$TROOT
T=$TTYTMP
$(declare -f as_nobody)
# chain [UNSHARE-RUN-OPTION]... -- CMD...: the container, with a devpts of its own.
chain() {
    local o=()
    while [ "\$1" != -- ]; do o+=("\$1"); shift; done
    shift
    "\$B/unshare-run" --tty "\${o[@]}" --pid --mount --uts --ipc -- \\
        "\$B/mount-layers" --layer "\$R" --tmp-upper --proc --dev --pivot -- \\
        "\$B/cap-drop" --seccomp default -- "\$@"
}
rootless_chain() {
    local o=()
    while [ "\$1" != -- ]; do o+=("\$1"); shift; done
    shift
    as_nobody "\$B/unshare-run" --tty --map-root "\${o[@]}" --pid --mount --uts --ipc -- \\
        "\$B/mount-layers" --layer "\$R" --tmp-upper --proc --dev --pivot -- \\
        "\$B/cap-drop" --seccomp default -- "\$@"
}
EOF
}

teardown_file() {
    rm -rf "$TTYTMP"
    kago_teardown_file
}

teardown() {
    # A background container a test started (its supervisor in $BG):
    # SIGTERM, so that it removes its state directory.
    if [ -n "${BG:-}" ]; then
        kill -TERM "$BG" 2>/dev/null || true
        wait "$BG" 2>/dev/null || true
    fi
}

setup() {
    [ -x "$(test_prog tty_drive)" ] || skip "tests/progs/tty_drive is not built (make bats builds it)"
    require_static
    # bats makes its run directories 0700: let 65534 through to $TTYTMP's
    # siblings (the rootless tests only need $TTYTMP, under /tmp).
    rm -f "$TTYTMP"/before "$TTYTMP"/after "$TTYTMP"/during "$TTYTMP"/ready
}

# on_tty [tty_drive OPTIONS] SCRIPT: run the bash SCRIPT (with $TTYLIB) on a
# new terminal of size 33x77.
on_tty() {
    local opts=()
    while [ $# -gt 1 ]; do opts+=("$1"); shift; done
    "$(test_prog tty_drive)" -s 33x77 "${opts[@]}" bash -c ". '$TTYLIB'; $1"
}

# The terminal's mode before and after, compared by the script itself.
save_mode='stty -g >"$T/before"'
check_mode='stty -g >"$T/after"; cmp -s "$T/before" "$T/after" && echo MODE-RESTORED || echo MODE-CHANGED'

# Inside: what the payload's terminal is. The device of the terminal on
# descriptor 0 must lie on the container's own devpts (/dev/pts inside),
# not the host's.
whose_tty='tty; echo "fs:$(stat -L -c %d /proc/self/fd/0) pts:$(stat -c %d /dev/pts/ptmx)"; ls /proc/self/fd'

@test "unshare-run --tty: tty in the container names a terminal of the container's own devpts" {
    run on_tty "chain -- sh -c '$whose_tty'; echo host-pts:\$(stat -c %d /dev/pts/ptmx)"
    assert_success
    assert_line --regexp '^/dev/pts/[0-9]+'
    refute_line --partial "not a tty"
    local fs pts host
    fs=$(printf '%s\n' "$output" | sed -n 's/^fs:\([0-9]*\) .*/\1/p' | tr -d '\r')
    pts=$(printf '%s\n' "$output" | sed -n 's/.* pts:\([0-9]*\).*/\1/p' | tr -d '\r')
    host=$(printf '%s\n' "$output" | sed -n 's/^host-pts:\([0-9]*\).*/\1/p' | tr -d '\r')
    [ -n "$fs" ] && [ "$fs" = "$pts" ] || fail "the terminal is not on the container's devpts: $output"
    [ "$fs" != "$host" ] || fail "the terminal is on the host's devpts: $output"
    # Only 0, 1 and 2 (and ls's own directory): no console socket, no
    # descriptor of the caller's.
    refute_line --regexp '^[4-9]'
}

@test "unshare-run: without --tty the container has no terminal of its own (the control)" {
    run on_tty "\"\$B/unshare-run\" --pid --mount -- \"\$B/mount-layers\" --layer \"\$R\" --tmp-upper --proc --dev --pivot -- sh -c 'tty; stat -L -c %d /proc/self/fd/0; stat -c %d /dev/pts/ptmx'"
    # Whatever tty says, the terminal is not on the container's devpts.
    local lines
    lines=$(printf '%s\n' "$output" | tr -d '\r' | sed -n '2,3p' | sort -u | wc -l)
    [ "$lines" = 2 ] || fail "the control shares the container's devpts: $output"
}

@test "unshare-run --tty: rootless, tty in the container names a terminal of its own devpts" {
    require_userns
    run on_tty "rootless_chain -- sh -c '$whose_tty'"
    assert_success
    assert_line --regexp '^/dev/pts/[0-9]+'
    local fs pts
    fs=$(printf '%s\n' "$output" | sed -n 's/^fs:\([0-9]*\) .*/\1/p' | tr -d '\r')
    pts=$(printf '%s\n' "$output" | sed -n 's/.* pts:\([0-9]*\).*/\1/p' | tr -d '\r')
    [ -n "$fs" ] && [ "$fs" = "$pts" ] || fail "the terminal is not on the container's devpts: $output"
    refute_line --regexp '^[4-9]'
}

@test "unshare-run --tty: the window size passes, and so does a change of it (SIGWINCH)" {
    run on_tty -z WAITING=40x100 "chain -- sh -c 'stty size; trap \"stty size; echo RESIZED; exit 0\" WINCH; echo WAITING; i=0; while [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done; echo TIMEOUT'"
    assert_success
    assert_line --index 0 --regexp '^33 77'
    assert_line --regexp '^40 100'
    assert_line --partial RESIZED
    refute_line --partial TIMEOUT
}

@test "unshare-run --tty: input typed at the caller's terminal reaches the payload" {
    run on_tty -i 'READY=hello kago\n' "chain -- sh -c 'echo READY; read line; echo \"got:\$line\"'"
    assert_success
    assert_line --regexp '^got:hello kago'
}

@test "unshare-run --tty: ^C goes to the container's terminal: its foreground job dies of SIGINT, the supervisor passes that on" {
    run on_tty -i 'READY=\x03' "$save_mode; chain -- sh -c 'echo READY; sleep 30; echo NOT-INTERRUPTED'; echo status=\$?; $check_mode"
    assert_output --partial 'status=130'  # after the echoed ^C
    refute_line --partial NOT-INTERRUPTED
    assert_line --partial MODE-RESTORED
}

@test "unshare-run --tty: the payload's exit status passes through, and the caller's terminal mode is back" {
    run on_tty "$save_mode; chain -- sh -c 'exit 7'; echo status=\$?; $check_mode"
    assert_line --regexp '^status=7'
    assert_line --partial MODE-RESTORED
}

@test "unshare-run --tty: a payload killed by a signal: 128+N, and the caller's terminal mode is back" {
    run on_tty "$save_mode; chain -- sh -c 'kill -KILL \$\$'; echo status=\$?; $check_mode"
    assert_line --regexp '^status=137'
    assert_line --partial MODE-RESTORED
}

@test "unshare-run --tty: rootless, exit status, signal death and the caller's terminal mode" {
    require_userns
    run on_tty "$save_mode; rootless_chain -- sh -c 'exit 9'; echo status=\$?; rootless_chain -- sh -c 'kill -TERM \$\$'; echo status=\$?; $check_mode"
    assert_line --regexp '^status=9'
    assert_line --regexp '^status=143'
    assert_line --partial MODE-RESTORED
}

# The supervisor in the background of the script (same process group, so
# still the terminal's foreground; its standard input given explicitly, as
# bash gives /dev/null to a background command otherwise): once the payload runs, the caller's
# terminal is raw; a signal to the supervisor ends the container and the
# mode comes back. Without mount-layers, so that the payload can tell the
# script that it runs through a file.
supervisor_gets() { # SIGNAL
    printf '%s' "$save_mode; \"\$B/unshare-run\" --tty --pid -- sh -c 'touch \"\$0/ready\"; exec sleep 60' \"\$T\" </dev/tty &
pid=\$!
i=0; while [ ! -e \"\$T/ready\" ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
sleep 0.2
stty -a >\"\$T/during\"
kill -$1 \$pid; wait \$pid; echo status=\$?
$check_mode
grep -q -- '-icanon' \"\$T/during\" && grep -q -- '-echo ' \"\$T/during\" && echo RAW-WHILE-PROXYING"
}

@test "unshare-run --tty: raw while proxying; SIGTERM to the supervisor ends the container and the mode is back" {
    run on_tty "$(supervisor_gets TERM)"
    assert_line --partial RAW-WHILE-PROXYING
    assert_line --regexp '^status=143'
    assert_line --partial MODE-RESTORED
}

@test "unshare-run --tty: SIGHUP to the supervisor hangs up the container's terminal too, and the mode is back" {
    run on_tty "$(supervisor_gets HUP)"
    assert_line --partial RAW-WHILE-PROXYING
    assert_line --regexp '^status=129'
    assert_line --partial MODE-RESTORED
}

@test "unshare-run --tty: SIGTSTP to the supervisor gives the terminal back while stopped; SIGCONT takes it again" {
    run on_tty "$save_mode; \"\$B/unshare-run\" --tty --pid -- sh -c 'touch \"\$0/ready\"; read x; echo \"got:\$x\"' \"\$T\" </dev/tty &
pid=\$!
i=0; while [ ! -e \"\$T/ready\" ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
sleep 0.2
kill -TSTP \$pid
i=0; while [ \"\$(cut -d' ' -f3 /proc/\$pid/stat)\" != T ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
cut -d' ' -f3 /proc/\$pid/stat | sed 's/^/state:/'
stty -g >\"\$T/after\"; cmp -s \"\$T/before\" \"\$T/after\" && echo MODE-BACK-WHILE-STOPPED
kill -CONT \$pid
sleep 0.3
stty -a | grep -q -- '-icanon' && echo RAW-AGAIN
kill -TERM \$pid; wait \$pid; echo status=\$?
$check_mode"
    assert_line --regexp '^state:T'
    assert_line --partial MODE-BACK-WHILE-STOPPED
    assert_line --partial RAW-AGAIN
    assert_line --regexp '^status=143'
    assert_line --partial MODE-RESTORED
}

@test "unshare-run --tty: a reader of the output that goes away hangs up the container's terminal; the mode is back" {
    run on_tty "$save_mode; chain -- sh -c 'echo first; i=0; while [ \$i -lt 600 ]; do echo more; sleep 0.05; i=\$((i+1)); done; echo NOT-HUNG-UP >&2' | head -n 1; echo status=\${PIPESTATUS[0]}; $check_mode"
    assert_line --regexp '^first'
    assert_line --regexp '^status=129'
    refute_output --partial NOT-HUNG-UP
    assert_line --partial MODE-RESTORED
}

@test "unshare-run --tty: the chain itself holds nothing of the caller's terminal while it sets up" {
    # mount-layers waits at the readiness gate (KAGO_READY_FD) just before
    # it makes the terminal and execs the payload: its descriptors and its
    # controlling terminal are looked at then, from outside.
    run on_tty "mkfifo \"\$T/gate\"; exec 7<>\"\$T/gate\"
KAGO_READY_FD=7 \"\$B/unshare-run\" --tty --pid --mount -- \"\$B/mount-layers\" --layer \"\$R\" --tmp-upper --proc --dev --pivot -- sh -c 'tty; exit 3' </dev/tty &
pid=\$!
m=; i=0
while [ -z \"\$m\" ] && [ \$i -lt 100 ]; do
    for p in /proc/[0-9]*; do tr '\\0' ' ' <\$p/cmdline 2>/dev/null | grep -q \"^\$B/mount-layers --layer \$R\" && m=\${p#/proc/}; done
    sleep 0.1; i=\$((i+1))
done
sleep 0.3
echo \"chain: fd0=\$(readlink /proc/\$m/fd/0) fd1=\$(readlink /proc/\$m/fd/1) fd2=\$(readlink /proc/\$m/fd/2) tty_nr=\$(cut -d' ' -f7 /proc/\$m/stat)\"
echo y >&7
wait \$pid; echo status=\$?; rm -f \"\$T/gate\""
    assert_line --regexp '^chain: fd0=/dev/null fd1=pipe:\[[0-9]+\] fd2=pipe:\[[0-9]+\] tty_nr=0'
    assert_line --regexp '^/dev/pts/[0-9]+'
    assert_line --regexp '^status=3'
}

@test "unshare-run --tty: with no terminal at all, a pipe's input reaches the payload and its end is the terminal's end of file" {
    run bash -c "printf 'hello\\nmore\\n' | '$KAGO_BIN/unshare-run' --tty --pid -- sh -c 'tty; read x; echo \"got:\$x\"; cat >/dev/null; echo after-eof; exit 4'"
    assert_failure 4
    assert_line --regexp '^/dev/pts/[0-9]+'
    assert_line --regexp '^got:hello'
    assert_line --regexp '^after-eof'
}

# TIOCSTI, with the seccomp filter off, on the payload's descriptor 2 and on
# /dev/tty (its controlling terminal). The supervisor's standard input is
# /dev/null, so that nothing reads the caller's terminal: pty_run then tells
# what the payload left in the caller's terminal's input.
tiocsti_payload='/bin/escape_try tiocsti "echo PWNED-FD2" <&2; /bin/escape_try tiocsti "echo PWNED-TTY" </dev/tty'
tiocsti_legacy() {
    local f=/proc/sys/dev/tty/legacy_tiocsti
    TIOCSTI_WAS=
    [ -e "$f" ] || return 0
    TIOCSTI_WAS=$(cat "$f")
    echo 1 >"$f" 2>/dev/null || skip "cannot set dev.tty.legacy_tiocsti=1 here"
}
tiocsti_restore() { [ -z "$TIOCSTI_WAS" ] || echo "$TIOCSTI_WAS" >/proc/sys/dev/tty/legacy_tiocsti; }
in_pty() { "$(test_prog pty_run)" bash -c ". '$TTYLIB'; $1"; }

tiocsti_case() { # ROOTLESS(0/1)
    local run=() map=()
    [ "$1" = 1 ] && run=(as_nobody) map=(--map-root)
    [ -x "$(test_prog pty_run)" ] && [ -x "$TROOT/bin/escape_try" ] || skip "tests/progs/pty_run and escape_try are not built"
    tiocsti_legacy
    local c="${run[*]} \"\$B/unshare-run\" ${map[*]} TTY --pid --mount -- \"\$B/mount-layers\" --layer \"\$R\" --tmp-upper --proc --dev --pivot -- \"\$B/cap-drop\" --seccomp none -- sh -c '$tiocsti_payload' </dev/null"
    # The control: without --tty the payload reaches the caller's terminal.
    run in_pty "${c/TTY/}"
    local control=$output
    run in_pty "${c/TTY/--tty}"
    tiocsti_restore
    [[ $control == *"injected: echo PWNED"* ]] || fail "the control did not inject: $control"
    # With --tty both land in the container's own terminal.
    [ "$(printf '%s\n' "$output" | grep -c 'tiocsti: ok')" = 2 ] || fail "TIOCSTI did not work inside: $output"
    assert_line "pty_run: injected: nothing"
}

@test "unshare-run --tty: TIOCSTI from inside, seccomp off, cannot reach the caller's terminal" {
    tiocsti_case 0
}

@test "unshare-run --tty: rootless, TIOCSTI from inside, seccomp off, cannot reach the caller's terminal" {
    require_userns
    tiocsti_case 1
}

@test "unshare-run --tty: a command that unshare-run execs itself gets the terminal too (and cap-drop --new-session before it)" {
    run on_tty "\"\$B/unshare-run\" --tty --pid -- sh -c 'tty; cut -d\" \" -f6,7 /proc/self/stat'"
    assert_success
    assert_line --regexp '^/dev/pts/[0-9]+'
    run on_tty "\"\$B/unshare-run\" --tty --as-pid-1 --pid -- \"\$B/cap-drop\" --new-session -- sh -c 'tty; exit 4'"
    assert_failure 4
    assert_line --regexp '^/dev/pts/[0-9]+'
}

@test "unshare-run --tty: cg-limit, when it starts the payload, makes the terminal in its child" {
    run on_tty "\"\$B/unshare-run\" --tty --pid -- \"\$B/cg-limit\" --pids 32 -- sh -c 'tty; exit 5'"
    assert_failure 5
    assert_line --regexp '^/dev/pts/[0-9]+'
}

@test "unshare-run --tty --join-pid: a command entering a running container gets a terminal of that container's devpts" {
    local info="$TTYTMP/info.json"
    "$KAGO_BIN/unshare-run" --pid --mount --info-fd 3 -- \
        "$KAGO_BIN/mount-layers" --layer "$TROOT" --tmp-upper --proc --dev --pivot -- sleep 60 \
        3>"$info" </dev/null >/dev/null 2>&1 &
    BG=$!
    local i=0
    while ! grep -q '"pid"' "$info" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
    local pid
    pid=$(sed 's/^{"pid":\([0-9]*\).*/\1/' "$info")
    run on_tty "\"\$B/unshare-run\" --tty --join-pid $pid -- sh -c 'tty; echo \"fs:\$(stat -L -c %d /proc/self/fd/0) pts:\$(stat -c %d /dev/pts/ptmx)\"; exit 6'"
    assert_failure 6
    assert_line --regexp '^/dev/pts/[0-9]+'
    local fs pts
    fs=$(printf '%s\n' "$output" | sed -n 's/^fs:\([0-9]*\) .*/\1/p' | tr -d '\r')
    pts=$(printf '%s\n' "$output" | sed -n 's/.* pts:\([0-9]*\).*/\1/p' | tr -d '\r')
    [ -n "$fs" ] && [ "$fs" = "$pts" ] || fail "the terminal is not on the container's devpts: $output"
}

@test "unshare-run --tty: a root without /dev/ptmx fails with 125, naming the step" {
    mkdir -p "$TTYTMP/nodev"
    cp -a "$KAGO_ROOTFS/." "$TTYTMP/nodev/"
    rm -rf "$TTYTMP/nodev/dev/ptmx" "$TTYTMP/nodev/dev/pts"
    run on_tty "\"\$B/unshare-run\" --tty --pid --mount -- \"\$B/mount-layers\" --layer \"\$T/nodev\" --tmp-upper --proc --pivot -- sh -c 'echo RAN'"
    assert_failure 125
    assert_output --partial "--tty: open /dev/ptmx: No such file or directory"
    assert_output --partial "hint: the root needs a /dev/ptmx"
    refute_output --partial RAN
}

@test "unshare-run --tty: a bad KAGO_CONSOLE_FD is refused with 125 before the payload runs" {
    KAGO_CONSOLE_FD=1 run "$KAGO_BIN/cap-drop" -- sh -c 'echo RAN'
    assert_failure 125
    assert_output --partial "KAGO_CONSOLE_FD=1: not the console socket"
    refute_output --partial RAN
}

@test "unshare-run --tty --dry-run: the console socket and the terminal's steps, without making them" {
    run "$KAGO_BIN/unshare-run" --dry-run --tty --pid --mount -- \
        "$KAGO_BIN/mount-layers" --layer "$TROOT" --tmp-upper --proc --dev --pivot -- sh
    assert_success
    assert_line --partial "unshare-run: socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC, 0, [OURS, KAGO_CONSOLE_FD]) (dry run)"
    assert_line --partial "supervisor: recvmsg(OURS, SCM_RIGHTS) = MASTER"
    assert_line 'mount-layers: open("/dev/ptmx", O_RDWR|O_NOCTTY|O_CLOEXEC) = MASTER (dry run)'
    assert_line 'mount-layers: ioctl(TERMINAL, TIOCSCTTY, 0) (dry run)'
    assert_line 'mount-layers: execve("sh", ["sh"], envp) (dry run)'
}

@test "unshare-run --tty -v: the trace shows each step, on both sides" {
    run on_tty "KAGO_TRACE=1 chain -- true 2>&1"
    assert_success
    assert_line --regexp '^unshare-run: socketpair\(AF_UNIX, SOCK_SEQPACKET\|SOCK_CLOEXEC, 0, \[[0-9]+, [0-9]+\]\) = 0'
    assert_line --regexp '^cap-drop: open\("/dev/ptmx", O_RDWR\|O_NOCTTY\|O_CLOEXEC\) = [0-9]+'
    assert_line --regexp '^cap-drop: sendmsg\([0-9]+, \{"M", SCM_RIGHTS \[[0-9]+\]\}, MSG_NOSIGNAL\) = 1'
    assert_line --regexp '^unshare-run: ioctl\([0-9]+, TIOCSWINSZ, \{ws_row=33, ws_col=77\}\) = 0'
    assert_line --regexp '^unshare-run: ioctl\(0, TCSETSW, \{raw: cfmakeraw\(\)\}\) = 0'
    assert_line --regexp '^unshare-run: ioctl\(0, TCSETSW, \{the mode it had\}\) = 0'
}
