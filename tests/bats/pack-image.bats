#!/usr/bin/env bats
# pack-selfexec --image: a container image (tests/lib/make-oci-image.py: three
# layers with whiteouts, an opaque directory, links, a setuid file and a
# config with Entrypoint, Cmd, Env, WorkingDir and User) packed into one
# file, from an OCI layout, a docker-archive and a name in the store.
load helpers

MKIMG="$KAGO_TOP/tests/lib/make-oci-image.py"
# What the test image holds once its layers are applied, and who runs.
SHOW='ls /data /opq; ls -d /olddir 2>&1; echo "user $(id -u) in $(pwd): $GREETING"'

setup() {
    require_progs pack-selfexec
    command -v python3 >/dev/null || skip "python3 is not installed (make deps)"
    D=$(mktemp -d /tmp/kago-pack-image.XXXXXX)
    chmod 755 "$D"
    python3 "$MKIMG" "$KAGO_ROOTFS" "$D/oci" >&2
    chmod -R a+rX "$D"
    # A temporary store is made under TMPDIR: the tests check it goes.
    mkdir "$D/tmp"
    export TMPDIR=$D/tmp
}

teardown() {
    [ -n "${D:-}" ] && rm -rf "$D"
}

# The whiteouts applied: /data/gone and /olddir deleted, /opq opaque.
assert_layers_applied() {
    assert_line keep
    assert_line hard
    assert_line sym
    assert_line upper
    refute_line gone
    refute_line lower
    assert_output --partial "/olddir: No such file or directory"
}

@test "--image oci:DIR:REF: the config's command, Env, WorkingDir and User; the layers applied; no temporary store left" {
    pack-selfexec --image "oci:$D/oci:test:1" -o "$D/app.run"
    run "$D/app.run" --kago-cache "$D/cache"
    assert_success
    assert_output "hello from /app as 1000"
    [ -z "$(ls -A "$D/tmp")" ] || fail "left in TMPDIR: $(ls -A "$D/tmp")"

    pack-selfexec --image "oci:$D/oci:test:1" -o "$D/show.run" -- /bin/sh -c "$SHOW"
    run "$D/show.run" --kago-cache "$D/cache"
    assert_success
    assert_layers_applied
    assert_line "user 1000 in /app: hello"
}

@test "--image: --env, --workdir and --user win over the config, and a COMMAND over Entrypoint and Cmd" {
    pack-selfexec --image "oci:$D/oci:test:1" -o "$D/o.run" --env GREETING=bye --workdir /data --user 0 -- \
        /bin/sh -c 'echo "$GREETING $(pwd) $(id -u) $PATH"'
    run "$D/o.run" --kago-cache "$D/cache"
    assert_success
    # PATH is the image's own (its Env), not the runner's default.
    assert_output "bye /data 0 /usr/sbin:/usr/bin:/sbin:/bin"
}

@test "--image keeps owners, the setuid bit and the hard link as root" {
    pack-selfexec --image "oci:$D/oci:test:1" -o "$D/own.run" --user 0 -- /bin/sh -c \
        'stat -c "%n %u:%g %a %h" /data/suid /app/hello /data/orig; [ /data/orig -ef /data/hard ] && echo same-inode'
    run "$D/own.run" --kago-cache "$D/cache"
    assert_success
    assert_line "/data/suid 0:0 4755 1"
    assert_line "/app/hello 1000:1000 644 1"
    assert_line "/data/orig 0:0 644 2"
    assert_line same-inode
}

@test "--image docker-archive:FILE (skopeo) and a name in the store (image-layers) pack the same tree" {
    command -v skopeo >/dev/null || skip "skopeo is not installed (make deps)"
    require_progs image-layers
    skopeo copy -q "oci:$D/oci:test:1" "docker-archive:$D/img.tar:test:1" >&2
    pack-selfexec --image "docker-archive:$D/img.tar" -o "$D/d.run" -- /bin/sh -c "$SHOW"
    image-layers --store "$D/store" --import "oci:$D/oci:test:1" t >&2
    pack-selfexec --image t --store "$D/store" -o "$D/s.run" -- /bin/sh -c "$SHOW"
    run "$D/d.run" --kago-cache "$D/cache"
    assert_success
    assert_layers_applied
    local from_archive=$output
    run env KAGO_IMAGE_STORE="$D/store" pack-selfexec --image t -o "$D/e.run" -- /bin/sh -c "$SHOW"
    assert_success
    run "$D/s.run" --kago-cache "$D/cache"
    assert_success
    [ "$output" = "$from_archive" ] || fail "store: $output; archive: $from_archive"
    [ -z "$(ls -A "$D/tmp")" ] || fail "left in TMPDIR: $(ls -A "$D/tmp")"
}

@test "rootless: nobody packs an image and runs it: the whiteouts applied, the config's command, user and working directory" {
    require_userns
    chown -R 65534:65534 "$D"
    run setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$KAGO_BIN:/usr/bin:/bin" HOME="$D" \
        TMPDIR="$D/tmp" sh -ec "
        pack-selfexec --image oci:$D/oci:test:1 -o $D/nb.run
        pack-selfexec --image oci:$D/oci:test:1 -o $D/nbshow.run -- /bin/sh -c '$SHOW'
        $D/nb.run --kago-cache $D/nbcache
        $D/nbshow.run --kago-cache $D/nbcache"
    assert_success
    # Without subordinate ids the one id mapped is nobody's, as the
    # image's User (1000).
    assert_line "hello from /app as 1000"
    assert_layers_applied
    assert_line "user 1000 in /app: hello"
    [ -z "$(ls -A "$D/tmp")" ] || fail "left in TMPDIR: $(ls -A "$D/tmp")"
}

@test "--image usage errors exit 125: with --rootfs, --store without --image; a missing store or image is named" {
    run pack-selfexec --image "oci:$D/oci:test:1" --rootfs "$KAGO_ROOTFS" -o "$D/x.run"
    assert_failure 125
    assert_output --partial "give one of"
    run pack-selfexec --store "$D/store" --rootfs "$KAGO_ROOTFS" -o "$D/x.run"
    assert_failure 125
    assert_output --partial "--store needs --image"
    run pack-selfexec --image no-such-image --store "$D/store" -o "$D/x.run"
    assert_failure 125
    assert_output --partial "store $D/store: No such file or directory"
    run pack-selfexec --image "oci:$D/oci:nosuchref" -o "$D/x.run"
    assert_failure 125
    assert_output --partial "nosuchref"
    [ ! -e "$D/x.run" ]
    [ -z "$(ls -A "$D/tmp")" ] || fail "left in TMPDIR: $(ls -A "$D/tmp")"
}

@test "--image --dry-run names the image and changes nothing" {
    run pack-selfexec --dry-run --image "oci:$D/oci:test:1" -o "$D/x.run"
    assert_success
    assert_output --partial "image oci:$D/oci:test:1"
    assert_output --partial "the image's Entrypoint and Cmd"
    [ ! -e "$D/x.run" ]
}

# Start pack-selfexec --image - reading the FIFO $D/in, with fd 8 holding its
# writing end: it waits there with its temporary store made. Sets $packer.
start_blocked_packer() {
    [ -p "$D/in" ] || mkfifo "$D/in"
    pack-selfexec --image - -o "$D/$1" <"$D/in" 8>&- &
    packer=$!
    exec 8>"$D/in"
    local i
    for i in $(seq 200); do compgen -G "$D/tmp/kago-pack-image.*/store" >/dev/null && return 0; sleep 0.05; done
    fail "no temporary store appeared in $D/tmp"
}

# TMPDIR holds nothing, within 5 s.
tmpdir_empties() {
    local i
    for i in $(seq 100); do [ -z "$(ls -A "$D/tmp")" ] && return 0; sleep 0.05; done
    fail "left in TMPDIR: $(ls -A "$D/tmp")"
}

@test "kill -9 of pack-selfexec --image while it imports: its temporary store goes at once, and no output is left" {
    start_blocked_packer k.run
    watcher=$(pgrep -x kago-scratch -P "$packer" || true)
    kill -9 "$packer"
    wait "$packer" || true
    exec 8>&-
    tmpdir_empties
    run ls -A "$D"
    refute_output --partial k.run
    # The watcher did it, and is gone.
    [ -n "$watcher" ] || fail "no watcher process"
    for i in $(seq 100); do kill -0 "$watcher" 2>/dev/null || break; sleep 0.05; done
    ! kill -0 "$watcher" 2>/dev/null || fail "the watcher $watcher is left"
}

@test "kill -9 of pack-selfexec --image and of its watcher: the next --image run removes the store, and not a live packer's" {
    start_blocked_packer k1.run
    local first=$packer
    local watcher
    watcher=$(pgrep -x kago-scratch -P "$first") || fail "no watcher process"
    kill -9 "$watcher" "$first"
    wait "$first" || true
    exec 8>&-
    sleep 0.2
    [ -n "$(ls -A "$D/tmp")" ]  # nobody removed it yet
    left=$(ls -A "$D/tmp")
    # A packer that lives: its store is not taken.
    start_blocked_packer k2.run
    local second=$packer
    run pack-selfexec --image - -o "$D/k3.run" </dev/null
    assert_failure 125
    [ ! -e "$D/tmp/$left" ] || fail "the killed packer's store $left is left"
    [ "$(ls -A "$D/tmp" | wc -l)" = 1 ] || fail "in TMPDIR: $(ls -A "$D/tmp")"
    compgen -G "$D/tmp/kago-pack-image.*/store" >/dev/null || fail "the live packer's store was removed"
    kill -9 "$second"
    wait "$second" || true
    exec 8>&-
    tmpdir_empties
}
