#!/usr/bin/env bats
# cap-drop against the real kernel. Each test runs cap-drop inside a small
# container: a copy of the busybox rootfs (or the Debian one) entered with
# util-linux unshare (mount, pid, net, uts, ipc) + chroot, with /proc
# mounted and the kago tools bind-mounted on /mnt. chains.bats builds the
# same thing with unshare-run and mount-layers.
load helpers
bats_require_minimum_version 1.5.0

setup_file() {
    kago_setup_file
    export BOX="$BATS_FILE_TMPDIR/box" TOOLS="$BATS_FILE_TMPDIR/tools"
    rm -rf "$BOX" "$TOOLS"
    cp -a "$KAGO_ROOTFS" "$BOX"
    mkdir -p "$BOX/mnt" "$TOOLS"
    # A user that only the container knows, and one it has in a group.
    echo 'kagocd:x:4321:4322:kago cap-drop test:/home/kagocd:/bin/sh' >>"$BOX/etc/passwd"
    echo 'kagocdg:x:4322:' >>"$BOX/etc/group"
    cp "$KAGO_BIN/cap-drop" "$TOOLS/"
    if kago_dynamic; then
        export KAGO_HOST_LIBS=1
        mkdir -p "$BOX/lib64" "$BOX/usr/lib/x86_64-linux-gnu"
        [ -e "$BOX/lib" ] || ln -s usr/lib "$BOX/lib"  # ld.so's own link is /lib/x86_64-linux-gnu/...
    fi
    if [ -x "$(test_prog caps_try)" ]; then
        cp "$(test_prog caps_try)" "$TOOLS/"
        # A setuid-root copy, inside the container's root.
        cp "$(test_prog caps_try)" "$BOX/bin/caps_suid"
        chown 0:0 "$BOX/bin/caps_suid"
        chmod 4755 "$BOX/bin/caps_suid"
    fi
}

teardown_file() { kago_teardown_file; }

# in_root ROOT COMMAND...: run COMMAND chrooted in ROOT, in new mount, pid,
# net, uts and ipc namespaces, with /proc, a /dev with null, zero and
# urandom, and the tools on /mnt. The mounts die with the namespace.
in_root() {
    local root=$1
    shift
    unshare --mount --pid --net --uts --ipc --fork --propagation private -- sh -c '
        root=$1; shift
        mount -t proc proc "$root/proc" && mount --bind "$TOOLS" "$root/mnt" &&
        mount -t tmpfs -o mode=0755 cdtest-dev "$root/dev" || exit 99
        # A dynamic (SANITIZE) cap-drop needs the host libraries inside.
        if [ -n "${KAGO_HOST_LIBS:-}" ]; then
            for d in /lib64 /usr/lib/x86_64-linux-gnu; do
                mount --bind -o ro "$d" "$root$d" || exit 99
            done
        fi
        for d in null zero urandom; do
            touch "$root/dev/$d" && mount --bind "/dev/$d" "$root/dev/$d" || exit 99
        done
        exec chroot "$root" "$@"' sh "$root" "$@"
}
in_box() { in_root "$BOX" "$@"; }

need_try() { [ -x "$TOOLS/caps_try" ] || skip "tests/progs/caps_try is not built (make bats builds it)"; }

# The value of FIELD in the status that `cap-drop ARGS -- cat /proc/self/status` prints.
field() { echo "$output" | awk -v f="$1:" '$1 == f { $1 = ""; sub(/^ /, ""); print }'; }

# --- help, version, usage ---

@test "cap-drop --help lists the options and exits 0" {
    run cap-drop --help
    assert_success
    for o in --drop --keep --securebits --allow-new-privs --user --groups --seccomp --seccomp-log \
        --print-profile --keep-env --keep-fd --show --json --dry-run --verbose; do
        assert_output --partial -- "$o"
    done
}

@test "cap-drop --version exits 0" {
    run cap-drop --version
    assert_success
    assert_output --partial "cap-drop (kago)"
}

@test "cap-drop: an unknown option exits 125 with Try" {
    run cap-drop --bogus true
    assert_failure 125
    assert_output --partial "Try 'cap-drop --help' for more information."
}

# --- exit statuses ---

@test "cap-drop: the command's own exit status" {
    run in_box /mnt/cap-drop --drop all -- sh -c 'exit 7'
    assert_failure 7
}

@test "cap-drop: 127 when the command is not found" {
    run -127 in_box /mnt/cap-drop --drop all -- /no/such/command
    assert_failure 127
    assert_output --partial "cap-drop: /no/such/command: No such file or directory"
}

@test "cap-drop: 126 when the command cannot be executed" {
    run -126 in_box /mnt/cap-drop --drop all -- /etc/passwd
    assert_failure 126
    assert_output --partial "Permission denied"
}

@test "cap-drop: 128+N when the command is killed by signal N" {
    # Not as PID 1 of the namespace, which SIGKILL from inside cannot kill.
    run in_box sh -c '/mnt/cap-drop --drop all -- sh -c "kill -9 \$\$"; echo "status $?"'
    assert_line "status 137"
}

@test "cap-drop: 125 for an unknown capability, with the known names" {
    run cap-drop --drop all --keep net_bind_servce true
    assert_failure 125
    assert_line "cap-drop: unknown capability 'net_bind_servce'"
    assert_output --partial "known capabilities: chown dac_override"
    assert_output --partial "net_bind_service"
}

@test "cap-drop: 125 when the kernel refuses the drop (no CAP_SETPCAP)" {
    run as_nobody "$KAGO_BIN/cap-drop" --drop all true
    assert_failure 125
    assert_output --partial "cap-drop: drop chown from the bounding set: Operation not permitted"
}

@test "cap-drop: 125 when a kept capability is already gone" {
    run in_box /mnt/cap-drop --drop all --keep chown -- /mnt/cap-drop --keep net_raw true
    assert_failure 125
    assert_output --partial "keep net_raw: not in this process's permitted set"
}

# --- capabilities ---

# Docker's default set: chown dac_override fowner fsetid kill setgid setuid
# setpcap net_bind_service net_raw sys_chroot mknod audit_write setfcap.
DEFAULT_CAPS=00000000a80425fb

@test "cap-drop: without capability options the payload keeps Docker's default set, none of it ambient" {
    run in_box /mnt/cap-drop -- cat /proc/self/status
    assert_success
    for f in CapPrm CapEff CapBnd; do
        [ "$(field $f)" = $DEFAULT_CAPS ] || fail "$f is $(field $f)"
    done
    [ "$(field CapInh)" = 0000000000000000 ]
    [ "$(field CapAmb)" = 0000000000000000 ]
    [ "$(field NoNewPrivs)" = 1 ]
}

@test "cap-drop --keep all keeps every capability held, none ambient unless --ambient all" {
    run in_box /mnt/cap-drop --keep all -- cat /proc/self/status
    assert_success
    local prm
    prm=$(awk '$1 == "CapPrm:" {print $2}' /proc/self/status)
    for f in CapPrm CapEff CapBnd; do
        [ "$(field $f)" = "$prm" ] || fail "$f is $(field $f), want $prm"
    done
    [ "$(field CapAmb)" = 0000000000000000 ]
    run in_box /mnt/cap-drop --keep all --ambient all --user nobody -- cat /proc/self/status
    assert_success
    for f in CapPrm CapEff CapInh CapAmb; do
        [ "$(field $f)" = "$prm" ] || fail "$f is $(field $f), want $prm"
    done
}

@test "cap-drop: an unprivileged caller with the default set runs, its bounding set left alone" {
    run as_nobody "$KAGO_BIN/cap-drop" -- cat /proc/self/status
    assert_success
    for f in CapPrm CapEff CapInh CapAmb; do
        [ "$(field $f)" = 0000000000000000 ] || fail "$f is $(field $f)"
    done
}

@test "cap-drop --drop all empties all five sets" {
    run in_box /mnt/cap-drop --drop all -- cat /proc/self/status
    assert_success
    for f in CapInh CapPrm CapEff CapBnd CapAmb; do
        [ "$(field $f)" = 0000000000000000 ] || fail "$f is $(field $f)"
    done
    [ "$(field NoNewPrivs)" = 1 ]
    [ "$(field Seccomp)" = 0 ]
}

@test "cap-drop --drop NAMES removes those from the default set, in any case, with or without cap_" {
    run in_box /mnt/cap-drop --drop CAP_NET_RAW,Sys_Admin,mknod -- cat /proc/self/status
    assert_success
    local want
    want=$(printf '%016x' $((0x$DEFAULT_CAPS & ~((1 << 13) | (1 << 27)))))
    for f in CapPrm CapEff CapBnd; do
        [ "$(field $f)" = "$want" ] || fail "$f is $(field $f), want $want"
    done
    [ "$(field CapInh)" = 0000000000000000 ]
    [ "$(field CapAmb)" = 0000000000000000 ]
}

@test "cap-drop --drop NAMES --keep NAMES: the default set less the one, plus the other, which is ambient" {
    run in_box /mnt/cap-drop --drop net_raw --keep sys_ptrace -- cat /proc/self/status
    assert_success
    local want
    want=$(printf '%016x' $(((0x$DEFAULT_CAPS & ~(1 << 13)) | (1 << 19))))
    for f in CapPrm CapEff CapBnd; do
        [ "$(field $f)" = "$want" ] || fail "$f is $(field $f), want $want"
    done
    [ "$(field CapAmb)" = 0000000000080000 ]
}

@test "cap-drop --keep alone keeps only those, in all five sets" {
    run in_box /mnt/cap-drop --keep net_bind_service,chown -- cat /proc/self/status
    assert_success
    for f in CapPrm CapEff CapBnd CapInh CapAmb; do
        [ "$(field $f)" = 0000000000000401 ] || fail "$f is $(field $f)"
    done
}

@test "cap-drop: a non-root --user with --keep net_bind_service binds port 80" {
    need_try
    run in_box sh -c 'ip link set lo up && /mnt/cap-drop --drop all --keep net_bind_service --user nobody \
        --seccomp default -- sh -c "grep -E \"^Cap(Eff|Amb)\" /proc/self/status; /mnt/caps_try bind 80; /mnt/caps_try whoami"'
    assert_success
    assert_line --regexp '^CapEff:\s+0000000000000400$'
    assert_line --regexp '^CapAmb:\s+0000000000000400$'
    assert_line "bind: ok"
    assert_line --partial "uid=65534 euid=65534"
}

@test "cap-drop: a non-root --user without the capability cannot bind port 80" {
    need_try
    run in_box sh -c 'ip link set lo up && /mnt/cap-drop --drop all --user nobody -- /mnt/caps_try bind 80'
    assert_failure 1
    assert_output "bind: EACCES (Permission denied)"
}

@test "cap-drop: a non-root --user keeps nothing that --keep does not name" {
    run in_box /mnt/cap-drop --drop net_raw --user nobody -- cat /proc/self/status
    assert_success
    for f in CapPrm CapEff CapInh CapAmb; do
        [ "$(field $f)" = 0000000000000000 ] || fail "$f is $(field $f)"
    done
}

@test "cap-drop --ambient and --inheritable set those two sets apart" {
    run in_box /mnt/cap-drop --drop all --keep chown,net_bind_service,net_raw \
        --inheritable net_bind_service,net_raw --ambient net_bind_service --user nobody -- cat /proc/self/status
    assert_success
    [ "$(field CapBnd)" = 0000000000002401 ]
    [ "$(field CapInh)" = 0000000000002400 ]
    [ "$(field CapAmb)" = 0000000000000400 ]
    # A non-root user's permitted set after exec is its ambient set.
    [ "$(field CapPrm)" = 0000000000000400 ]
    [ "$(field CapEff)" = 0000000000000400 ]
    run in_box /mnt/cap-drop --inheritable none --ambient none --keep kill -- cat /proc/self/status
    assert_success
    [ "$(field CapInh)" = 0000000000000000 ]
    [ "$(field CapAmb)" = 0000000000000000 ]
}

@test "cap-drop: 125 for an ambient or inheritable capability that is not kept" {
    run cap-drop --ambient sys_admin true
    assert_failure 125
    assert_line "cap-drop: --ambient sys_admin: not kept"
    run cap-drop --keep chown --inheritable chown,kill true
    assert_failure 125
    assert_line "cap-drop: --inheritable kill: not kept"
    run cap-drop --keep chown,kill --inheritable chown --ambient kill true
    assert_failure 125
    assert_line "cap-drop: --ambient kill: not in the inheritable set"
}

@test "cap-drop --securebits sets the bits by name" {
    need_try
    run in_box /mnt/cap-drop --securebits noroot,noroot-locked,no-setuid-fixup --drop all -- /mnt/caps_try securebits
    assert_success
    assert_output "securebits=0x7"
}

@test "cap-drop: 125 for an unknown securebit" {
    run cap-drop --securebits noroot,sticky true
    assert_failure 125
    assert_output --partial "unknown securebit 'sticky'"
}

# --- no_new_privs ---

@test "cap-drop: under no_new_privs a setuid-root binary does not regain privilege" {
    need_try
    run in_box /mnt/cap-drop --drop all --user nobody -- /bin/caps_suid whoami
    assert_success
    assert_output --partial "uid=65534 euid=65534"
}

@test "cap-drop --allow-new-privs: the same setuid-root binary becomes root (the control)" {
    need_try
    run in_box /mnt/cap-drop --allow-new-privs --drop all --user nobody -- /bin/caps_suid whoami
    assert_success
    assert_output --partial "uid=65534 euid=0"
    run in_box /mnt/cap-drop --allow-new-privs -- cat /proc/self/status
    [ "$(field NoNewPrivs)" = 0 ]
}

@test "cap-drop: 125 when without no_new_privs nothing may load the filter" {
    # The inner cap-drop holds no capability, CAP_SYS_ADMIN included, and
    # no_new_privs is not set yet.
    run in_box /mnt/cap-drop --allow-new-privs --drop all -- /mnt/cap-drop --allow-new-privs --seccomp default -- true
    assert_failure 125
    assert_line "cap-drop: load the seccomp filter default: Permission denied"
    assert_line "cap-drop: hint: without no_new_privs, loading a filter needs CAP_SYS_ADMIN"
}

# --- the terminal ---

@test "cap-drop --new-session: the command leads a session of its own, with no terminal" {
    run in_box /mnt/cap-drop --new-session -- sh -c 'set -- $(cat /proc/$$/stat); echo "pid=$1 sid=$6 tty=$7"'
    assert_success
    assert_output --regexp '^pid=([0-9]+) sid=\1 tty=0$'
}

@test "cap-drop --new-session as a process group leader forks, and leaves with the command's status" {
    command -v setsid >/dev/null || skip "util-linux setsid(1) is not installed"
    # setsid(1) makes cap-drop a session (and process group) leader.
    run setsid -w "$KAGO_BIN/cap-drop" --new-session -- sh -c 'set -- $(cat /proc/$$/stat); echo "pid=$1 sid=$6"; exit 7'
    assert_failure 7
    assert_output --regexp '^pid=([0-9]+) sid=\1$'
}

# --- user and groups ---

@test "cap-drop --user NAME is resolved in the container's /etc/passwd" {
    run in_box /mnt/cap-drop --user kagocd -- sh -c 'id; echo "HOME=$HOME USER=$USER LOGNAME=$LOGNAME"'
    assert_success
    assert_line --partial "uid=4321"
    assert_line --partial "gid=4322"
    assert_line "HOME=/home/kagocd USER=kagocd LOGNAME=kagocd"
}

@test "cap-drop: 125 for a user the container's passwd lacks, even if the host has it" {
    grep -q '^daemon:' /etc/passwd || skip "the host has no daemon user"
    run in_box /mnt/cap-drop --user daemon true
    assert_failure 125
    assert_output --partial "cap-drop: user 'daemon': not found in /etc/passwd"
}

@test "cap-drop --user UID:GID takes numbers" {
    run in_box /mnt/cap-drop --user 1000:100 -- cat /proc/self/status
    assert_success
    [ "$(field Uid)" = "1000 1000 1000 1000" ]
    [ "$(field Gid)" = "100 100 100 100" ]
}

@test "cap-drop --groups sets supplementary groups; without it they are cleared" {
    run in_box /mnt/cap-drop --user nobody --groups users,kagocdg,44 -- cat /proc/self/status
    assert_success
    [ "$(field Groups | xargs)" = "44 100 4322" ] || fail "Groups: $(field Groups)"
    run in_box sh -c 'exec /mnt/cap-drop --user nobody -- cat /proc/self/status'
    assert_success
    [ -z "$(field Groups | xargs)" ] || fail "Groups: $(field Groups)"
}

@test "cap-drop: 125 for an unknown group" {
    run in_box /mnt/cap-drop --user nobody --groups nosuchgroup true
    assert_failure 125
    assert_output --partial "group 'nosuchgroup': not found in /etc/group"
}

# --- environment and descriptors ---

@test "cap-drop removes the KAGO_ variables; --keep-env keeps them and HOME" {
    run in_box env KAGO_NAME=cdtest KAGO_TRACE=0 HOME=/keep /mnt/cap-drop --user nobody -- env
    assert_success
    refute_output --partial "KAGO_"
    assert_line "HOME=/nonexistent"
    run in_box env KAGO_NAME=cdtest HOME=/keep /mnt/cap-drop --keep-env --user nobody -- env
    assert_success
    assert_line "KAGO_NAME=cdtest"
    assert_line "HOME=/keep"
}

@test "cap-drop closes descriptors above 2 unless --keep-fd names them" {
    run in_box sh -c 'exec 7</etc/passwd 8</etc/group; /mnt/cap-drop -- ls /proc/self/fd'
    assert_success
    assert_line 0
    assert_line 2
    refute_line 7
    refute_line 8
    run in_box sh -c 'exec 7</etc/passwd 8</etc/group; /mnt/cap-drop --keep-fd 8 -- ls /proc/self/fd'
    assert_success
    refute_line 7
    assert_line 8
}

@test "cap-drop: 125 for --keep-fd of a closed descriptor" {
    run cap-drop --keep-fd 57 true
    assert_failure 125
    assert_output --partial -- "--keep-fd: 57 is not an open descriptor"
}

# --- seccomp ---

@test "cap-drop --seccomp default: the payload's status shows a filter" {
    run in_box /mnt/cap-drop --drop all --seccomp default -- cat /proc/self/status
    assert_success
    [ "$(field Seccomp)" = 2 ]
    [ "$(field Seccomp_filters)" = 1 ]
}

@test "cap-drop --seccomp default: blocked calls fail with EPERM" {
    need_try
    for t in keyctl add_key unshare-user unshare-net clone-newuser socket-alg socket-vsock io_uring bpf \
        userfaultfd perf ptrace; do
        run in_box /mnt/cap-drop --drop all --seccomp default -- /mnt/caps_try $t
        assert_output "$t: EPERM (Operation not permitted)"
    done
}

@test "cap-drop --seccomp default: unshare -U fails with EPERM" {
    run in_box /mnt/cap-drop --drop all --seccomp default -- unshare -U true
    assert_failure
    assert_output --partial "Operation not permitted"
}

@test "cap-drop --seccomp default: clone3 gets ENOSYS, so that libc falls back to clone" {
    need_try
    run in_box /mnt/cap-drop --drop all --seccomp default -- /mnt/caps_try clone3
    assert_output "clone3: ENOSYS (Function not implemented)"
    run in_box /mnt/cap-drop --drop all --seccomp default -- /mnt/caps_try fork
    assert_success
}

@test "cap-drop --seccomp default: i386 system calls are blocked" {
    need_try
    run "$TOOLS/caps_try" i386-getpid
    [ "$output" = "i386-getpid: ok" ] || skip "this kernel runs no i386 system calls ($output)"
    run in_box /mnt/cap-drop --drop all --seccomp default -- /mnt/caps_try i386-getpid
    assert_output "i386-getpid: ENOSYS (Function not implemented)"
}

@test "cap-drop --seccomp none: the same calls work (the control)" {
    need_try
    for t in keyctl socket-inet fork ptrace; do
        run in_box /mnt/cap-drop --drop all --seccomp none -- /mnt/caps_try $t
        assert_output "$t: ok"
    done
    run in_box /mnt/cap-drop --drop all -- cat /proc/self/status
    [ "$(field Seccomp)" = 0 ]
}

@test "cap-drop --seccomp default with --keep sys_admin allows new namespaces" {
    need_try
    run in_box /mnt/cap-drop --keep sys_admin --seccomp default -- /mnt/caps_try unshare-net
    assert_output "unshare-net: ok"
}

@test "cap-drop --seccomp FILE reads an OCI profile" {
    cat >"$BATS_TEST_TMPDIR/p.json" <<'J'
{
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
    ]
}
J
    cp "$BATS_TEST_TMPDIR/p.json" "$BOX/tmp/cd-profile.json"
    run in_box /mnt/cap-drop --drop all --seccomp /tmp/cd-profile.json -- mkdir /tmp/cd-newdir
    assert_failure
    assert_output --partial "Permission denied"
    [ ! -e "$BOX/tmp/cd-newdir" ]
    rm -f "$BOX/tmp/cd-profile.json"
}

@test "cap-drop --seccomp FILE: architectures a profile names are mapped, others are killed" {
    need_try
    run "$TOOLS/caps_try" i386-getpid
    [ "$output" = "i386-getpid: ok" ] || skip "this kernel runs no i386 system calls ($output)"
    printf '%s\n' '{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],' \
        ' "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}' >"$BOX/tmp/cd-mapped.json"
    printf '%s\n' '{"defaultAction": "SCMP_ACT_ALLOW",' \
        ' "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}' >"$BOX/tmp/cd-native.json"
    run in_box /mnt/cap-drop --drop all --seccomp /tmp/cd-mapped.json -- /mnt/caps_try i386-getpid
    assert_output "i386-getpid: EPERM (Operation not permitted)"
    run in_box sh -c '/mnt/cap-drop --drop all --seccomp /tmp/cd-native.json -- /mnt/caps_try i386-getpid; echo "status $?"'
    assert_line "status 159"
    rm -f "$BOX/tmp/cd-mapped.json" "$BOX/tmp/cd-native.json"
}

@test "cap-drop: 125 for a malformed profile, with line and column" {
    printf '{"defaultAction": "SCMP_ACT_ALLOW",\n  "syscalls": [}\n' >"$BATS_TEST_TMPDIR/bad.json"
    run cap-drop --seccomp "$BATS_TEST_TMPDIR/bad.json" true
    assert_failure 125
    assert_output --partial "bad.json:2:16: unexpected '}', expected a value"
}

@test "cap-drop: 125 for an unknown syscall in a profile, named" {
    printf '{"defaultAction": "SCMP_ACT_ALLOW",\n "syscalls": [{"names": ["getpid", "kexec_lod"], "action": "SCMP_ACT_ERRNO"}]}\n' \
        >"$BATS_TEST_TMPDIR/unknown.json"
    run cap-drop --seccomp "$BATS_TEST_TMPDIR/unknown.json" true
    assert_failure 125
    assert_output --partial "unknown.json:2:36: unknown syscall 'kexec_lod'"
}

@test "cap-drop: 125 for a profile file that does not exist" {
    run cap-drop --seccomp /nonexistent/profile.json true
    assert_failure 125
    assert_output --partial "/nonexistent/profile.json: No such file or directory"
}

@test "cap-drop --seccomp-log logs instead of blocking" {
    need_try
    run in_box /mnt/cap-drop --drop all --seccomp default --seccomp-log -- /mnt/caps_try keyctl
    assert_output "keyctl: ok"
    run cap-drop --seccomp default --seccomp-log --print-profile
    assert_line --regexp '^keyctl +log'
}

@test "cap-drop --print-profile prints the rules and runs nothing" {
    run cap-drop --drop all --seccomp default --print-profile -- sh -c 'echo ran'
    assert_success
    refute_line ran
    assert_line "# seccomp profile: default"
    assert_line --regexp '^keyctl +errno EPERM'
    assert_line --regexp '^clone3 +errno ENOSYS'
    assert_line --regexp '^unshare if arg0 & 0x10000000 == 0x10000000 +errno EPERM'
    run cap-drop --keep sys_admin --seccomp default --print-profile
    assert_success
    assert_line --regexp '^keyctl +errno EPERM'
    refute_line --regexp '^mount '
    run cap-drop --print-profile
    assert_output "# seccomp profile: none (none)"
}

# --- trace and dry run ---

@test "cap-drop -v traces each kernel call" {
    run in_box /mnt/cap-drop -v --drop all --seccomp default --user nobody -- true
    assert_success
    assert_line "cap-drop: prctl(PR_SET_NO_NEW_PRIVS, 1) = 0"
    assert_line "cap-drop: prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN) = 0"
    assert_line "cap-drop: setresuid(65534, 65534, 65534) = 0"
    assert_line --partial "cap-drop: seccomp(SECCOMP_SET_MODE_FILTER, 0, {profile \"default\""
    assert_line --partial "cap-drop: close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) = 0"
}

@test "cap-drop --dry-run needs no privilege and runs nothing" {
    run as_nobody "$KAGO_BIN/cap-drop" --dry-run --drop all --keep net_bind_service --seccomp default -- sh -c 'echo ran'
    assert_success
    refute_line ran
    assert_line "cap-drop: prctl(PR_SET_NO_NEW_PRIVS, 1) (dry run)"
    assert_line "cap-drop: prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE) (dry run)"
    assert_line --partial 'execve("sh", ["sh", "-c", "echo ran"], envp) (dry run)'
    run bash -c "'$KAGO_BIN/cap-drop' --dry-run --drop all -- true 2>/dev/null"
    assert_output ""
}

# --- show ---

@test "cap-drop --show agrees with the payload's status" {
    run in_box /mnt/cap-drop --drop all --seccomp default --user nobody -- /mnt/cap-drop --show
    assert_success
    for s in bounding permitted effective inheritable ambient; do
        assert_line --regexp "^  $s +none$"
    done
    assert_line --regexp '^no_new_privs +1 \(on\)$'
    assert_line --regexp '^seccomp +filter \(1 filter\)$'
    assert_line --regexp '^uid +65534 65534 65534 65534'
    assert_line --regexp '^  pid +[0-9]+ +own$'
    assert_line --regexp '^  uts +[0-9]+ +own$'
    assert_line --regexp '^  user +[0-9]+ +host$'
    assert_line --regexp '^root +/$'
}

@test "cap-drop --show --json gives the same as JSON" {
    command -v jq >/dev/null || skip "jq is not installed (make deps)"
    run in_box /mnt/cap-drop --drop all --keep net_bind_service --seccomp default --user nobody -- /mnt/cap-drop --show --json
    assert_success
    echo "$output" | jq -e '.capabilities.ambient == ["net_bind_service"] and .capabilities.bounding == ["net_bind_service"]
        and .no_new_privs == true and .seccomp.mode == "filter" and .seccomp.filters == 1
        and (.uid | startswith("65534")) and .namespaces.pid.host == "own" and (.uid_map | length) >= 1'
}

@test "cap-drop --show PID shows another process" {
    run in_box sh -c '/mnt/cap-drop --drop all -- sleep 5 & sleep 0.3; /mnt/cap-drop --show --json $!; kill $!'
    assert_success
    echo "$output" | grep -q '"comm":"sleep"'
    echo "$output" | grep -q '"bounding":\[\]'
}

@test "cap-drop --show: 125 for a process that does not exist" {
    run cap-drop --show 999999999
    assert_failure 125
    assert_output --partial "process 999999999"
}

@test "cap-drop --json without --show is a usage error" {
    run cap-drop --json true
    assert_failure 125
    assert_output --partial "Try 'cap-drop --help'"
}

# --- payloads ---

@test "cap-drop: busybox works under everything dropped" {
    run in_box /mnt/cap-drop --drop all --seccomp default --user nobody -- sh -c \
        'ls / >/dev/null && echo hello | wc -c && cat /etc/hostname && ps >/dev/null && echo done'
    assert_success
    assert_line 6
    assert_line busybox
    assert_line done
}

@test "cap-drop: Debian's coreutils work under everything dropped" {
    require_debian_rootfs
    run in_root "$DEBIAN_ROOTFS" /mnt/cap-drop --drop all --seccomp default --user nobody -- /bin/bash -c \
        'ls /usr >/dev/null && printf "b\na\n" | sort | head -1 && stat -c %U /etc/passwd && id -un && env | grep ^HOME='
    assert_success
    assert_line a
    assert_line root
    assert_line nobody
    assert_line HOME=/nonexistent
}

# Found by tests/fuzz/user.cpp: an image's passwd entry with uid 4294967295,
# (uid_t)-1, which setresuid(2) reads as "leave it unchanged".
@test "cap-drop --user: 125 for a passwd or group entry with id 4294967295, which would leave the payload root" {
    grep -q '^kagoevil:' "$BOX/etc/passwd" ||
        echo 'kagoevil:x:4294967295:4322::/:/bin/sh' >>"$BOX/etc/passwd"
    grep -q '^kagoevilg:' "$BOX/etc/group" || echo 'kagoevilg:x:4294967295:' >>"$BOX/etc/group"
    run in_box /mnt/cap-drop --user kagoevil -- id -u
    assert_failure 125
    refute_line 0
    assert_output --partial "user 'kagoevil' has id 4294967295:4322"
    run in_box /mnt/cap-drop --user 4321:kagoevilg -- id -g
    assert_failure 125
    assert_output --partial "group 'kagoevilg' has id 4294967295"
}
