#!/usr/bin/env bats
# Rootless as documented: the README's Rootless section run as written, as
# a user with subordinate id ranges. setup_file creates that user (kagort,
# a system account, with a range of its own in /etc/subuid and
# /etc/subgid) and teardown_file removes it, its lines and its files.
# Networking runs in a network and mount namespace of the test (tns): lo,
# a veth with a default route for pasta to find, and a 0666 tun node bound
# over /dev/net/tun there only.
load helpers

KRT_USER=kagort
KRT_START=3100000000
KRT_COUNT=65536

setup_file() {
    kago_setup_file
    [ "$(id -u)" = 0 ] || return 0
    command -v useradd >/dev/null && command -v newuidmap >/dev/null && command -v newgidmap >/dev/null || return 0
    # A leftover of a killed run is ours: remove it first.
    userdel "$KRT_USER" 2>/dev/null || true
    sed -i "/^$KRT_USER:/d" /etc/subuid /etc/subgid
    # The range must not overlap anyone's.
    if awk -F: -v s=$KRT_START -v c=$KRT_COUNT '$2 < s + c && $2 + $3 > s { bad = 1 } END { exit !bad }' /etc/subuid /etc/subgid; then
        return 0
    fi
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$KRT_USER"
    echo "$KRT_USER:$KRT_START:$KRT_COUNT" >>/etc/subuid
    echo "$KRT_USER:$KRT_START:$KRT_COUNT" >>/etc/subgid
    KRT_HOME=$(mktemp -d /tmp/kagort-home.XXXXXX)
    chown "$KRT_USER:$KRT_USER" "$KRT_HOME"
    echo "$KRT_HOME" >"$BATS_FILE_TMPDIR/home"
}

teardown_file() {
    if [ -s "$BATS_FILE_TMPDIR/home" ]; then rm -rf "$(cat "$BATS_FILE_TMPDIR/home")"; fi
    if [ "$(id -u)" = 0 ]; then
        userdel "$KRT_USER" 2>/dev/null || true
        sed -i "/^$KRT_USER:/d" /etc/subuid /etc/subgid
    fi
    kago_teardown_file
}

setup() {
    [ "$(id -u)" = 0 ] || skip "needs root to create the test user and namespaces"
    command -v newuidmap >/dev/null && command -v newgidmap >/dev/null ||
        skip "newuidmap/newgidmap (package uidmap) are not installed"
    id "$KRT_USER" >/dev/null 2>&1 || skip "the test user could not be made (useradd missing, or range $KRT_START+$KRT_COUNT taken)"
    KRT_HOME=$(cat "$BATS_FILE_TMPDIR/home")
    KRT_UID=$(id -u "$KRT_USER")
    KRT_GID=$(id -g "$KRT_USER")
    export KRT_HOME KRT_UID KRT_GID
}

# Run a script as the test user in its home, inside a network and mount
# namespace of the test's own (see the top).
as_krt() { as_user_in_netns "$KRT_UID" "$KRT_GID" "$KRT_HOME" sh "$1"; }

# The indented lines of the README's Rootless section, continuations joined:
# those that end in "# as root, once" (ROOT=1) or the others.
readme_rootless() {
    awk -v root="$1" '
        /^## / { on = ($0 == "## Rootless") ; next }
        on && /^    / { line = line substr($0, 5); if (line ~ /\\$/) { sub(/\\$/, "", line); next }
                        r = (line ~ /# as root, once$/); if (r == root) print line; line = "" }' "$KAGO_TOP/README.md"
}

@test "README Rootless: the commands run as written, as a user with a subordinate range (apt's users, useradd, pasta)" {
    require_static
    require_debian_rootfs
    command -v pasta >/dev/null || skip "pasta (Debian package passt) is not installed"
    local root user
    root=$(readme_rootless 1)
    user=$(readme_rootless 0)
    [ -n "$root" ] && [ -n "$user" ]
    # The README's own paths: the Debian tree the tests build, the examples.
    root=${root//\/var\/cache\/kago-tests\/debian-bookworm/$DEBIAN_ROOTFS}
    (cd "$KRT_HOME" && sh -ec "${root#sudo }")
    ln -s "$KAGO_TOP/examples" "$KRT_HOME/examples"
    run as_krt "$user"
    assert_success
    assert_output --regexp 'uid=1000\(demo\) gid=1000\(demo\)'
    assert_line --regexp '^[2-9]$'   # /proc/net/route: the header and pasta's routes
    refute_output --partial warning
    # --remove removed what the user's range owned
    [ ! -e "$KRT_HOME/rootfs" ]
}

@test "a root-made layer: mount-layers warns and names it; useradd then fails (uid with a range)" {
    require_static
    require_debian_rootfs
    run as_krt "unshare-run --user --map-auto --pid --mount -- \
        mount-layers --layer $DEBIAN_ROOTFS --tmp-upper --proc --dev --pivot -- \
        /usr/sbin/useradd demo"
    assert_failure
    assert_output --partial "mount-layers: warning: --layer $DEBIAN_ROOTFS: its root (uid 65534 gid 65534) belongs to an id this user namespace does not map"
    assert_output --partial "examples/user-rootfs.sh"
    assert_output --partial "cannot lock /etc/passwd"
}

@test "examples/debian-rootless.sh: its default command writes (useradd, a file of that user, dpkg-divert)" {
    require_static
    require_debian_rootfs
    tar -C "$DEBIAN_ROOTFS" -c . | as_krt "$KAGO_TOP/examples/user-rootfs.sh debian"
    run as_krt "$KAGO_TOP/examples/debian-rootless.sh"
    as_krt "$KAGO_TOP/examples/user-rootfs.sh --remove debian"
    assert_success
    assert_line --partial "uid 0 inside"
    assert_line "useradd: uid=1000(demo) gid=1000(demo) groups=1000(demo)"
    assert_output --regexp ' 1000 +1000 +0 .* file'
    assert_line "Adding 'local diversion of /etc/kago-demo to /etc/kago-demo.distrib'"
    [ ! -e "$KRT_HOME/debian" ]
}

@test "net-setup --user-mode without --map-auto, then unshare-run --user --map-auto: 125 and the right hint" {
    command -v pasta >/dev/null || skip "pasta (Debian package passt) is not installed"
    run as_krt "net-setup --user-mode -- unshare-run --user --map-auto -- true"
    assert_failure 125
    assert_output --partial "unshare-run: --map-auto: this user namespace maps only id 0 (/proc/self/uid_map)"
    assert_output --partial "net-setup --user-mode --map-auto"
    refute_output --partial "usermod --add-subuids"
}

@test "net-setup --user-mode --map-auto -> unshare-run --user --map-auto: the container maps the user's range" {
    command -v pasta >/dev/null || skip "pasta (Debian package passt) is not installed"
    run as_krt "net-setup --user-mode --map-auto -- unshare-run --user --map-auto -- cat /proc/self/uid_map /proc/self/gid_map"
    assert_success
    # The inner namespace, seen from itself: ids 0..65536, the same numbers outside (the outer one's).
    [ "$(grep -c '^ *0 *0 *1$' <<<"$output")" = 2 ]
    [ "$(grep -c '^ *1 *1 *65536$' <<<"$output")" = 2 ]
}

@test "net-setup --map-auto needs --user-mode; its dry run shows newuidmap" {
    run net-setup --map-auto -- true
    assert_failure 125
    assert_output --partial "--map-auto needs --user-mode"
    run as_krt "net-setup --dry-run --user-mode --map-auto -- true"
    assert_success
    assert_output --regexp "newuidmap.*\"CHILD\", \"0\", \"$KRT_UID\", \"1\", \"1\", \"$KRT_START\", \"$KRT_COUNT\""
}
