#!/usr/bin/env bats
# image-layers: the store (an OCI image layout), imports from every kind of
# source, the chain (layers, WorkingDir, User, Env, Entrypoint+Cmd), the
# management modes, bad input, concurrency, kill -9, and rootless use.
# The test image is made here from the busybox rootfs by
# tests/lib/make-oci-image.py (three layers; see its header for what each
# holds).
load helpers

MKIMG="$KAGO_TOP/tests/lib/make-oci-image.py"
# A user with subordinate ranges of its own (rootless.bats uses another).
IMG_USER=kagoimg
IMG_START=3200000000
IMG_COUNT=65536

setup_file() {
    kago_setup_file
    command -v python3 >/dev/null || return 0
    # World-readable: the rootless tests read the layout as uid 65534.
    local d
    d=$(mktemp -d /tmp/kago-img-bats.XXXXXX)
    chmod 755 "$d"
    echo "$d" >"$BATS_FILE_TMPDIR/dir"
    python3 "$MKIMG" "$KAGO_ROOTFS" "$d/oci" >&2
    chmod -R a+rX "$d"
}

teardown_file() {
    [ -s "$BATS_FILE_TMPDIR/dir" ] && rm -rf "$(cat "$BATS_FILE_TMPDIR/dir")"
    if [ -s "$BATS_FILE_TMPDIR/user" ]; then
        userdel "$IMG_USER" 2>/dev/null || true
        sed -i "/^$IMG_USER:/d" /etc/subuid /etc/subgid
    fi
    kago_teardown_file
}

setup() {
    require_progs image-layers unshare-run mount-layers cap-drop
    command -v python3 >/dev/null || skip "python3 is not installed (make deps)"
    D=$(cat "$BATS_FILE_TMPDIR/dir")
    OCI=$D/oci
    S=$BATS_TEST_TMPDIR/store
}

img() { image-layers --store "$S" "$@"; }
# IMAGE [cap-drop words...]: the usual chain on the image.
chain() {
    local image=$1
    shift
    image-layers --store "$S" "$image" -- unshare-run --pid --mount -- \
        mount-layers --tmp-upper --proc --pivot -- cap-drop "$@"
}
# The store publishes nothing partial: no work in progress, and only the
# layers index.json needs (the count given).
store_clean() {
    [ -z "$(ls -A "$S/tmp" 2>/dev/null)" ] || fail "tmp/ is not empty: $(ls -A "$S/tmp")"
    local n
    n=$(ls "$S/layers" 2>/dev/null | wc -l)
    [ "$n" = "$1" ] || fail "layers/ holds $n directories, not $1"
}
mkimg() { python3 "$MKIMG" "$KAGO_ROOTFS" "$@"; }

# --- options and exit statuses ------------------------------------------------

@test "image-layers --help lists the modes and options, exits 0" {
    run image-layers --help
    assert_success
    for o in --store --import --platform --list --inspect --tag --remove --commit --keep-env --dry-run --verbose; do
        assert_output --partial -- "$o"
    done
}

@test "image-layers --version exits 0" {
    run image-layers --version
    assert_success
    assert_output --partial "image-layers (kago)"
}

@test "usage errors exit 125: unknown option, no IMAGE, two modes, --platform alone, stray words" {
    run image-layers --bogus x
    assert_equal "$status" 125
    assert_output --partial "Try 'image-layers --help'"
    run img
    assert_equal "$status" 125
    assert_output --partial "IMAGE is missing"
    run img --list --inspect x
    assert_equal "$status" 125
    assert_output --partial "exclude each other"
    run img --platform linux/amd64 --list
    assert_equal "$status" 125
    assert_output --partial "--platform needs --import"
    run img --tag x
    assert_equal "$status" 125
    run img --import "$OCI" a b
    assert_equal "$status" 125
    run img --import "$OCI" --platform amd64
    assert_equal "$status" 125
    assert_output --partial "OS/ARCH"
}

@test "an image not in the store: 125 naming it; a store path with ':' is refused" {
    run img --import "oci:$OCI"
    assert_success
    run img nope:1 -- true
    assert_equal "$status" 125
    assert_output --partial "image nope:1: not in the store $S"
    run image-layers --store /tmp/a:b --list
    assert_equal "$status" 125
    assert_output --partial "holds no ':'"
}

@test "the command's exit statuses pass through: 127 not found, 126 not executable" {
    img --import "oci:$OCI"
    run -127 img test:1 -- /nonexistent/cmd
    assert_equal "$status" 127
    run -126 img test:1 -- /etc
    assert_equal "$status" 126
    run img test:1 -- sh -c 'exit 7'
    assert_equal "$status" 7
}

# --- import and the store -------------------------------------------------------

@test "--import oci:DIR: the store is an OCI layout, layers keyed by chain ID; --list shows it" {
    run img --import "oci:$OCI"
    assert_success
    assert_output --regexp '^test:1 [0-9a-f]{12} \(3 layers\)$'
    [ -f "$S/oci-layout" ] && [ -f "$S/index.json" ] && [ -d "$S/blobs/sha256" ]
    grep -q '"org.opencontainers.image.ref.name":"test:1"' "$S/index.json"
    store_clean 3
    run img --list
    assert_success
    assert_line --index 0 --regexp '^NAME +ID +SIZE +CREATED$'
    assert_line --index 1 --regexp '^test:1 +[0-9a-f]{12} +[0-9.]+ MB +2023-11-14T22:13:20Z$'
    # A second import shares every layer.
    run img --import "oci:$OCI:test:1" again
    assert_success
    assert_output --partial "again:latest"
    assert_output --partial "3 shared"
    store_clean 3
}

@test "the chain runs Entrypoint+Cmd as User in WorkingDir with the image's Env" {
    require_static
    img --import "oci:$OCI"
    run chain test:1
    assert_success
    assert_output "hello from /app as 1000"
}

@test "the user's settings win: --env, --chdir, --user, and a COMMAND" {
    require_static
    img --import "oci:$OCI"
    run image-layers --store "$S" test:1 -- unshare-run --pid --mount -- \
        mount-layers --tmp-upper --proc --pivot --env GREETING=bye --chdir /data -- cap-drop --user 0
    assert_success
    assert_output "bye from /data as 0"
    run chain test:1 -- /bin/echo own command
    assert_success
    assert_output "own command"
}

@test "the chain form enters unshare-run in process; KAGO_EXEC=1 makes it an exec; both run the image alike" {
    require_static
    img --import "oci:$OCI"
    run env -u KAGO_EXEC KAGO_TRACE=1 image-layers --store "$S" test:1 -- unshare-run --pid --mount -- \
        mount-layers --tmp-upper --proc --pivot -- cap-drop
    assert_success
    assert_line --partial "image-layers: execve(\"$KAGO_BIN/unshare-run\""
    assert_line --regexp '^image-layers: execve\(.*unshare-run.*\(in process\)$'
    assert_line "hello from /app as 1000"
    run env KAGO_EXEC=1 KAGO_TRACE=1 image-layers --store "$S" test:1 -- unshare-run --pid --mount -- \
        mount-layers --tmp-upper --proc --pivot -- cap-drop
    assert_success
    refute_output --partial "(in process)"
    assert_line "hello from /app as 1000"
}

@test "attack: entered in process, the chain from the store keeps no descriptor or directory of the store (supervisor, init, payload)" {
    require_static
    img --import "oci:$OCI"
    local tok=$RANDOM$RANDOM pid p i
    env -u KAGO_EXEC image-layers --store "$S" test:1 -- unshare-run --pid --mount -- \
        mount-layers --tmp-upper --proc --pivot -- cap-drop -- /bin/sleep "$tok" &
    local bg=$!
    for i in $(seq 100); do pid=$(pgrep -x -f "/bin/sleep $tok") && break; sleep 0.05; done
    [ -n "$pid" ] || { kill "$bg"; wait "$bg"; fail "the payload did not start"; }
    local init sup
    init=$(awk '{print $4}' "/proc/$pid/stat")
    sup=$(awk '{print $4}' "/proc/$init/stat")
    [ "$sup" = "$bg" ] || fail "the supervisor is $sup, not the image-layers process $bg"
    local found=""
    for p in "$sup" "$init" "$pid"; do
        for f in /proc/$p/fd/* /proc/$p/cwd /proc/$p/root; do
            case "$(readlink "$f")" in "$S"*) found+=" $p:${f#/proc/$p/}" ;; esac
        done
    done
    kill "$pid"
    wait "$bg" || true
    [ -z "$found" ] || fail "held into the store $S:$found"
}

@test "the payload sees the image's Env and no KAGO_ variable" {
    require_static
    img --import "oci:$OCI"
    run chain test:1 -- /usr/bin/env
    assert_success
    assert_line GREETING=hello
    assert_line PATH=/usr/sbin:/usr/bin:/sbin:/bin
    refute_output --partial KAGO_
}

@test "whiteouts, an opaque dir, links, setuid and file capabilities as the image says" {
    require_static
    img --import "oci:$OCI"
    run chain test:1 --user 0 -- /bin/sh -c '
        ls -A /data /opq; [ ! -e /olddir ] && echo olddir-absent
        stat -c "%n %a %u:%g %h" /data/orig /data/hard /data/suid /app/hello
        stat -c "%n %F %t:%T" /dev/kago-null
        readlink /data/sym; cat /data/sym'
    assert_success
    assert_output --partial "$(printf '/data:\ncap\nhard\nkeep\norig\nsuid\nsym\n\n/opq:\nupper')"
    refute_output --partial gone
    refute_output --partial lower
    assert_line olddir-absent
    assert_line "/data/orig 644 0:0 2"
    assert_line "/data/hard 644 0:0 2"
    assert_line "/data/suid 4755 0:0 1"
    assert_line "/app/hello 644 1000:1000 1"
    assert_line "/dev/kago-null character special file 1:3"
    assert_line orig
    # The capability is on the layer's file: security.capability, cap_net_raw (bit 13).
    local dirs
    dirs=$(img --keep-env test:1 -- sh -c 'echo $KAGO_IMAGE_LAYERS')
    # Layer 2 (the middle one) holds it.
    run python3 -c 'import os,struct,sys; v=os.getxattr(sys.argv[1]+"/data/cap","security.capability"); print(hex(struct.unpack("<II",v[:8])[1]))' "$(echo "$dirs" | cut -d: -f2)"
    assert_success
    assert_output 0x2000
}

@test "KAGO_IMAGE_ variables: set for the chain, shown by --dry-run, layers bottom first" {
    img --import "oci:$OCI"
    run img --keep-env test:1 -- sh -c 'echo "$KAGO_IMAGE|$KAGO_IMAGE_WORKDIR|$KAGO_IMAGE_USER|$KAGO_IMAGE_CMD"; echo "$KAGO_IMAGE_LAYERS" | tr : "\n" | wc -l'
    assert_success
    assert_line 'test:1|/app|1000|["/bin/sh","-c","echo $GREETING from $(pwd) as $(id -u)"]'
    assert_line 3
    run img --dry-run test:1 -- unshare-run --pid --mount -- mount-layers --tmp-upper --pivot -- cap-drop
    assert_success
    assert_output --partial 'image-layers: setenv("KAGO_IMAGE_LAYERS", "'"$S"'/layers/'
    assert_output --partial 'mount-layers: fsopen("overlay"'
    assert_output --partial 'execve("/bin/sh", ["/bin/sh", "-c", "echo $GREETING from $(pwd) as $(id -u)"], envp) (dry run)'
}

@test "--import of an OCI archive, a rootfs directory, and tars on stdin (plain and gzip)" {
    require_static
    tar -C "$OCI" -cf "$BATS_TEST_TMPDIR/oci.tar" .
    run img --import "$BATS_TEST_TMPDIR/oci.tar"
    assert_success
    assert_output --partial "test:1"
    run img --import "$KAGO_ROOTFS" bb
    assert_success
    assert_output --regexp '^bb:latest [0-9a-f]{12} \(1 layer\)$'
    run sh -c "tar -C '$KAGO_ROOTFS' -cf - . | image-layers --store '$S' --import - bbtar:1"
    assert_success
    run sh -c "tar -C '$KAGO_ROOTFS' -czf - . | image-layers --store '$S' --import - bbgz:1"
    assert_success
    run sh -c "image-layers --store '$S' --import - <'$BATS_TEST_TMPDIR/oci.tar'"
    assert_success
    assert_output --partial "test:1"
    for i in bb bbtar:1 bbgz:1; do
        run chain "$i" -- /bin/sh -c 'ls /bin/busybox && id -u'
        assert_success
        assert_line 0
    done
    run img --import "$KAGO_ROOTFS"
    assert_equal "$status" 125
    assert_output --partial "give one"
}

@test "a zstd layer is unpacked and run like the others" {
    require_static
    command -v zstd >/dev/null || skip "zstd is not installed (make deps)"
    mkimg "$BATS_TEST_TMPDIR/z" --zstd --ref z:1
    grep -q 'tar+zstd' "$BATS_TEST_TMPDIR"/z/blobs/sha256/*
    run img --import "oci:$BATS_TEST_TMPDIR/z"
    assert_success
    run chain z:1
    assert_success
    assert_output "hello from /app as 1000"
}

@test "--import docker-archive (skopeo copy to docker-archive), and skopeo and umoci read the store" {
    command -v skopeo >/dev/null || skip "skopeo is not installed (make deps)"
    require_static
    skopeo copy -q "oci:$OCI:test:1" "docker-archive:$BATS_TEST_TMPDIR/d.tar:dock:2"
    run img --import "$BATS_TEST_TMPDIR/d.tar"
    assert_success
    assert_output --partial "dock:2"
    run img --import "docker-archive:$BATS_TEST_TMPDIR/d.tar" named
    assert_success
    run chain named:latest
    assert_success
    assert_output "hello from /app as 1000"
    run skopeo inspect --config "oci:$S:named:latest"
    assert_success
    assert_output --partial '"WorkingDir": "/app"'
    command -v umoci >/dev/null || skip "umoci is not installed (make deps)"
    run umoci unpack --image "$S:named:latest" "$BATS_TEST_TMPDIR/u"
    assert_success
    [ -u "$BATS_TEST_TMPDIR/u/rootfs/data/suid" ]
    [ ! -e "$BATS_TEST_TMPDIR/u/rootfs/data/gone" ]
}

@test "docker-archive streams: from standard input, a repeated layer, and bad layers refused with nothing published" {
    command -v skopeo >/dev/null || skip "skopeo is not installed (make deps)"
    require_static
    skopeo copy -q "oci:$OCI:test:1" "docker-archive:$BATS_TEST_TMPDIR/d.tar:dock:2"
    # Read as it streams: standard input needs no seekable file.
    run sh -c "cat '$BATS_TEST_TMPDIR/d.tar' | image-layers --store '$S' --import - piped"
    assert_success
    run chain piped:latest
    assert_success
    assert_output "hello from /app as 1000"
    store_clean 3
    # An archive to tamper with: its files, then tarred again.
    local x=$BATS_TEST_TMPDIR/x
    mkdir "$x"
    tar -C "$x" -xf "$BATS_TEST_TMPDIR/d.tar"
    local layer
    layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Layers"][2])' "$x/manifest.json")
    # Bytes after the tar's end: the stream no longer hashes to the
    # config's diff_id.
    printf 'trailing' >>"$x/$layer"
    tar -C "$x" -cf "$BATS_TEST_TMPDIR/bad.tar" .
    run img --import "docker-archive:$BATS_TEST_TMPDIR/bad.tar" bad
    assert_failure 125
    assert_output --partial "diff_id"
    run img --inspect bad
    assert_failure
    store_clean 3
    # A layer manifest.json names that the archive does not hold.
    rm "$x/$layer"
    tar -C "$x" -cf "$BATS_TEST_TMPDIR/missing.tar" .
    run img --import "docker-archive:$BATS_TEST_TMPDIR/missing.tar" missing
    assert_failure 125
    assert_output --partial "is missing"
    store_clean 3
    # A link that leaves the archive's names is refused, whatever it points at.
    ln -s /etc/passwd "$x/$layer"
    tar -C "$x" -cf "$BATS_TEST_TMPDIR/link.tar" .
    run img --import "docker-archive:$BATS_TEST_TMPDIR/link.tar" link
    assert_failure 125
    assert_output --partial "a link out of the archive"
    store_clean 3
}

@test "against a peer: umoci unpack and the kago chain list the same files, owners and modes" {
    command -v umoci >/dev/null || skip "umoci is not installed (make deps)"
    require_static
    img --import "oci:$OCI"
    umoci unpack --image "$S:test:1" "$BATS_TEST_TMPDIR/u" >/dev/null
    (cd "$BATS_TEST_TMPDIR/u/rootfs" && find data opq app etc bin -xdev | sort | xargs stat -c "%n %a %u %g") \
        >"$BATS_TEST_TMPDIR/peer"
    chain test:1 --user 0 -- /bin/sh -c 'cd / && find data opq app etc bin -xdev | sort | xargs stat -c "%n %a %u %g"' \
        >"$BATS_TEST_TMPDIR/kago"
    run diff "$BATS_TEST_TMPDIR/peer" "$BATS_TEST_TMPDIR/kago"
    assert_success
}

@test "a multi-arch index picks the host's platform; --platform another; none fits: 125" {
    mkimg "$BATS_TEST_TMPDIR/multi" --index arm64,amd64,riscv64 --ref multi:1
    run img --import "oci:$BATS_TEST_TMPDIR/multi"
    if [ "$(uname -m)" = x86_64 ]; then
        assert_success
        run img --inspect multi:1
        assert_output --partial '"architecture": "amd64"'
    fi
    run img --import "oci:$BATS_TEST_TMPDIR/multi" --platform linux/arm64 armimg
    assert_success
    run img --inspect armimg
    assert_output --partial '"architecture": "arm64"'
    mkimg "$BATS_TEST_TMPDIR/none" --index s390x,riscv64
    run img --import "oci:$BATS_TEST_TMPDIR/none"
    assert_equal "$status" 125
    assert_output --partial "no image for linux/"
    assert_output --partial "(the index has linux/s390x linux/riscv64)"
}

@test "bad input: each a clear message, 125, and nothing published" {
    local bad msg
    declare -A says=(
        [corrupt-blob]="digest mismatch: the descriptor says sha256:"
        [digest-mismatch]="digest mismatch: the content hashes to sha256:"
        [diff-id]="its diff_id is sha256:"
        [truncated]="Truncated tar archive"
        [traversal]="'..' would climb out of the layer"
        [symlink-escape]="entry 'esc/pwned': its directory esc goes through a symlink"
        [media-type]="unknown media type application/vnd.example.layer.v1.squashfs"
        [missing-blob]="is missing"
        [gzip-cut]=": gzip: the stream is cut short"
        [gzip-crc]=": gzip: CRC-32 mismatch: the data is corrupt"
    )
    for bad in "${!says[@]}"; do
        rm -rf "$S" "$BATS_TEST_TMPDIR/bad"
        mkimg "$BATS_TEST_TMPDIR/bad" --bad "$bad"
        run img --import "oci:$BATS_TEST_TMPDIR/bad"
        [ "$status" = 125 ] || fail "$bad: status $status: $output"
        [[ $output == *"${says[$bad]}"* ]] || fail "$bad: no '${says[$bad]}' in: $output"
        if [ -d "$S" ]; then
            store_clean 0
            [ -z "$(ls "$S/blobs/sha256")" ] || fail "$bad: blobs left: $(ls "$S/blobs/sha256")"
            grep -q '"manifests":\[\]' "$S/index.json" || fail "$bad: index.json: $(cat "$S/index.json")"
        fi
    done
    [ ! -e /tmp/pwned ] && [ ! -e "$BATS_TEST_TMPDIR/escaped" ]
    # A manifest for another platform.
    mkimg "$BATS_TEST_TMPDIR/arm" --arch arm64
    if [ "$(uname -m)" = x86_64 ]; then
        run img --import "oci:$BATS_TEST_TMPDIR/arm"
        assert_equal "$status" 125
        assert_output --partial "the image is for linux/arm64, not linux/amd64"
        assert_output --partial "hint: this host runs linux/amd64; --platform linux/arm64 imports it anyway"
    fi
    # Not an archive at all.
    echo junk >"$BATS_TEST_TMPDIR/junk"
    run img --import "$BATS_TEST_TMPDIR/junk" j
    assert_equal "$status" 125
    assert_output --partial "junk"
}

@test "--inspect prints the config; --tag adds a name; --remove collects what nothing uses" {
    img --import "oci:$OCI"
    img --import "$KAGO_ROOTFS" bb
    run img --inspect test
    assert_equal "$status" 125
    run img --inspect test:1
    assert_success
    assert_output --partial '"WorkingDir": "/app"'
    assert_output --partial '"Entrypoint": ['
    run img --tag test:1 other:2
    assert_success
    run img --list
    assert_output --partial other:2
    id=$(img --list | awk '$1 == "other:2" { print $2 }')
    run img --inspect "$id"
    assert_success
    store_clean 4
    run img --remove test:1
    assert_success
    assert_output "removed test:1"
    store_clean 4   # other:2 still uses them
    run img --remove other:2
    assert_success
    store_clean 1
    run img --remove bb
    assert_success
    store_clean 0
    [ -z "$(ls "$S/blobs/sha256")" ]
    run img --remove bb
    assert_equal "$status" 125
}

@test "--commit of an upper holding a socket: exit 125 naming it, nothing left in tmp/ (it crashed: the archive was freed after its sink)" {
    run img --import "oci:$OCI:test:1" base
    assert_success
    local up=$BATS_TEST_TMPDIR/up
    mkdir "$up"
    echo x >"$up/file"
    python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$up/sock"
    run img --commit "$up" base next:1
    assert_failure 125
    assert_output --partial "sock"
    assert_output --partial "cannot store a socket"
    run img --inspect next:1
    assert_failure
    store_clean 3
}

@test "--commit: an upper directory becomes a layer, whiteouts back to .wh. entries" {
    require_static
    img --import "oci:$OCI"
    mkdir "$BATS_TEST_TMPDIR/up"
    image-layers --store "$S" test:1 -- unshare-run --pid --mount -- \
        mount-layers --upper "$BATS_TEST_TMPDIR/up" --pivot -- cap-drop --user 0 -- /bin/sh -c \
        'rm /data/keep && rm -r /opq && mkdir /opq && echo new >/opq/n && echo x >/app/new'
    run img --commit "$BATS_TEST_TMPDIR/up" test:1 test:2
    assert_success
    assert_output --regexp '^test:2 [0-9a-f]{12} \(1 layer\)$'
    run chain test:2 --user 0 -- /bin/sh -c 'ls -A /data /opq /app'
    assert_success
    refute_output --partial keep
    refute_output --partial upper
    assert_output --partial "$(printf '/opq:\nn')"
    assert_output --partial new
    store_clean 4
    run img --commit "$BATS_TEST_TMPDIR/nothing" test:1 t3
    assert_equal "$status" 125
    run img --commit "$BATS_TEST_TMPDIR/up" nope t3
    assert_equal "$status" 125
    assert_output --partial "not in the store"
}

# --- attacks on the store ---------------------------------------------------------

# Every file of the layer directories: path, inode, link count, content hash.
layer_files() { (cd "$S/layers" && find . -type f -exec stat -c '%n %i %h' {} + -exec sha256sum {} + | sort); }

@test "--commit: hard links in the upper to a host file or to another layer's file are copied, never aliased" {
    require_static
    img --import "oci:$OCI"
    local up=$BATS_TEST_TMPDIR/up host=$BATS_TEST_TMPDIR/host lower new before
    mkdir "$up" "$up/app"
    echo secret >"$host"
    lower=$(ls -d "$S"/layers/*/app/hello)
    # What a container's upper can hold: links to a file of the host and
    # to a file of a lower layer (same file system), and two names of one.
    ln "$host" "$up/host-link"
    ln "$host" "$up/twin"
    ln "$lower" "$up/app/hello"
    before=$(layer_files)
    ls "$S/layers" >"$BATS_TEST_TMPDIR/layers.before"
    run img --commit "$up" test:1 test:2
    assert_success
    store_clean 4
    new=$S/layers/$(ls "$S/layers" | grep -vxFf "$BATS_TEST_TMPDIR/layers.before")
    [ -f "$new/host-link" ] && [ -f "$new/app/hello" ]
    # The committed layer holds copies: its own inodes, linked to each other only.
    [ "$(stat -c %i "$new/host-link")" != "$(stat -c %i "$host")" ] || fail "the layer aliases the host file"
    [ "$(stat -c %i "$new/app/hello")" != "$(stat -c %i "$lower")" ] || fail "the layer aliases a file of another layer"
    [ "$(stat -c %i "$new/twin")" = "$(stat -c %i "$new/host-link")" ]
    [ "$(stat -c %h "$new/host-link")" = 2 ]
    [ "$(stat -c %h "$host")" = 3 ]
    [ "$(cat "$new/host-link")" = secret ]
    run chain test:2 --user 0 -- /bin/sh -c 'cat /host-link /twin'
    assert_success
    assert_output "$(printf 'secret\nsecret')"
    # Removing the new image leaves the host file and the layers below as they were.
    run img --remove test:2
    assert_success
    store_clean 3
    [ "$(cat "$host")" = secret ] && [ "$(stat -c %h "$host")" = 3 ]
    [ "$(layer_files)" = "$before" ] || fail "the remaining layers changed"
    # Removing the base while the commit uses it leaves the commit whole.
    run img --commit "$up" test:1 test:2
    assert_success
    before=$(layer_files)
    run img --remove test:1
    assert_success
    store_clean 4
    [ "$(layer_files)" = "$before" ] || fail "layers test:2 uses changed"
    run chain test:2
    assert_success
    assert_output "hello from /app as 1000"
}

@test "--import: a layer's hard link to a host file or out of its layer is refused" {
    require_static
    img --import "oci:$OCI"
    echo secret >"$BATS_TEST_TMPDIR/host"
    local lower t
    lower=$(ls -d "$S"/layers/*/app/hello)
    # A root filesystem on stdin, and an OCI archive (unpacked into tmp/ first).
    for t in "$BATS_TEST_TMPDIR/host" "../$(basename "$(dirname "$(dirname "$lower")")")/app/hello" \
        "oci:$BATS_TEST_TMPDIR/host" "oci:../../../layers/$(basename "$(dirname "$(dirname "$lower")")")/app/hello"; do
        python3 -c '
import io, sys, tarfile
target = sys.argv[1]
with tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data):
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
    if target.startswith("oci:"):
        target = target[4:]
        add("oci-layout", b"{\"imageLayoutVersion\":\"1.0.0\"}")
    add("a", b"a")
    l = tarfile.TarInfo("alias"); l.type = tarfile.LNKTYPE; l.linkname = target; t.addfile(l)
' "$t" "$BATS_TEST_TMPDIR/bad.tar"
        run sh -c "image-layers --store '$S' --import - bad <'$BATS_TEST_TMPDIR/bad.tar'"
        [ "$status" = 125 ] || fail "$t: status $status: $output"
        assert_output --regexp "an absolute path|would climb out of the layer"
        store_clean 3
    done
    [ "$(stat -c %h "$BATS_TEST_TMPDIR/host")" = 1 ] && [ "$(stat -c %h "$lower")" = 1 ]
}

@test "a gzip stream cut short in its first block is refused with 125, not a crash" {
    # Found by tests/fuzz/image-layer: libarchive fails it without a message.
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' \
        1f8b0800000000000203edd1b90dc3300c4051d599c21b589175cc238f9063ff082a5da4b38120ef3524d8b0f87d0da70000f0a33ef888ae6300280016 \
        >"$BATS_TEST_TMPDIR/cut.gz"
    run sh -c "image-layers --store '$S' --import - cut <'$BATS_TEST_TMPDIR/cut.gz'"
    assert_equal "$status" 125
    assert_output "image-layers: standard input: not a tar archive: unreadable archive"
    store_clean 0
}

@test "a store others can change is refused, naming the path and why (as ssh refuses a key)" {
    require_static
    [ "$(id -u)" = 0 ] || skip "needs root to chown the store"
    img --import "oci:$OCI"
    local p mode says
    while read -r p mode says; do
        [ "$p" = / ] && p=
        chmod "$mode" "$S$p"
        run img --list
        chmod go-w "$S$p"
        [ "$status" = 125 ] || fail "$p $mode: status $status: $output"
        assert_output --partial "store $S$p: writable by $says"
        assert_output --partial "hint: a store must be writable by its owner only: chmod go-w $S$p"
    done <<'END'
/ g+w group (mode 0720)
/ o+w others (mode 0702)
/blobs 0777 group and others (mode 0777)
/blobs/sha256 g+w group
/layers o+w others
/tmp g+w group
/index.json g+w group
END
    # The chain refuses it too, before it runs anything.
    chmod o+w "$S/blobs"
    run image-layers --store "$S" test:1 -- echo ran
    assert_equal "$status" 125
    refute_output --partial ran
    chmod o-w "$S/blobs"
    chown 65534 "$S/blobs"
    run img --list
    assert_equal "$status" 125
    assert_output --partial "store $S/blobs: owned by uid 65534, not by uid 0 who runs image-layers"
    chown 0 "$S/blobs"
    chown 65534 "$S"
    run chain test:1
    assert_equal "$status" 125
    assert_output --partial "store $S: owned by uid 65534, not by uid 0"
    chown 0 "$S"
    run chain test:1
    assert_success
    assert_output "hello from /app as 1000"
}

@test "an unprivileged user's store that others can change is refused (KAGO_IMAGE_STORE)" {
    require_static
    [ "$(id -u)" = 0 ] || skip "needs root to become uid 65534"
    local home st
    home=$(mktemp -d /tmp/kago-img-home.XXXXXX)
    chown 65534:65534 "$home"
    st=$home/store
    run as_nobody env KAGO_IMAGE_STORE="$st" image-layers --import "oci:$OCI"
    assert_success
    run as_nobody env KAGO_IMAGE_STORE="$st" image-layers --list
    assert_success
    assert_output --partial test:1
    chmod o+w "$st"
    run as_nobody env KAGO_IMAGE_STORE="$st" image-layers --list
    assert_equal "$status" 125
    assert_output --partial "store $st: writable by others (mode 0702)"
    chmod o-w "$st"
    chmod g+w "$st/blobs"
    run as_nobody env KAGO_IMAGE_STORE="$st" image-layers --import "oci:$OCI" again
    assert_equal "$status" 125
    assert_output --partial "store $st/blobs: writable by group (mode 0720)"
    chmod g-w "$st/blobs"
    # A directory of the store that another user (here root) owns.
    chown 0:0 "$st/layers"
    run as_nobody env KAGO_IMAGE_STORE="$st" image-layers --list
    assert_equal "$status" 125
    assert_output --partial "store $st/layers: owned by uid 0, not by uid 65534 who runs image-layers"
    chown 65534:65534 "$st/layers"
    run as_nobody env KAGO_IMAGE_STORE="$st" image-layers --list
    assert_success
    rm -rf "$home"
}

@test "--dry-run changes no store" {
    run img --dry-run --import "oci:$OCI"
    assert_success
    assert_output --partial "(dry run)"
    [ ! -e "$S" ]
}

# --- faults and load ------------------------------------------------------------

# What a store holds, to compare two: its index, its blobs, and every
# layer's files with type, mode, owner, size, link target, content and
# overlay xattrs.
store_listing() {
    (
        cd "$1" || exit 1
        cat index.json
        echo
        ls blobs/sha256
        cd layers || exit 1
        find . -printf '%p %y %m %U:%G %n %s %l\n' | sort
        find . -type f -exec sha256sum {} + | sort
        python3 -c 'import os
for d, ds, fs in os.walk("."):
    for n in [d] + [os.path.join(d, f) for f in ds + fs]:
        for x in sorted(os.listxattr(n, follow_symlinks=False)):
            print(n, x, os.getxattr(n, x, follow_symlinks=False))' | sort
    )
}

@test "layers unpacked in parallel make the store one layer at a time makes (KAGO_IMAGE_JOBS)" {
    command -v skopeo >/dev/null || skip "skopeo is not installed (make deps)"
    require_static
    skopeo copy -q "oci:$OCI:test:1" "docker-archive:$BATS_TEST_TMPDIR/d.tar:dock:2"
    local jobs form
    for form in "oci:$OCI" "docker-archive:$BATS_TEST_TMPDIR/d.tar"; do
        for jobs in 1 3 ""; do
            rm -rf "$S"
            KAGO_IMAGE_JOBS=$jobs run img --import "$form" par
            assert_success
            assert_output --regexp '^par:latest [0-9a-f]{12} \(3 layers\)$'
            store_clean 3
            store_listing "$S" >"$BATS_TEST_TMPDIR/listing.$jobs"
        done
        [ -s "$BATS_TEST_TMPDIR/listing.1" ]
        grep -q ' c 0 ' "$BATS_TEST_TMPDIR/listing.1" || fail "no whiteout in the listing"
        diff "$BATS_TEST_TMPDIR/listing.1" "$BATS_TEST_TMPDIR/listing.3" || fail "$form: 3 jobs differ from 1"
        diff "$BATS_TEST_TMPDIR/listing.1" "$BATS_TEST_TMPDIR/listing." || fail "$form: the default differs from 1 job"
        run chain par
        assert_success
        assert_output "hello from /app as 1000"
    done
    # A bad layer among good ones: the same error as one at a time, and
    # nothing published.
    mkimg "$BATS_TEST_TMPDIR/bad" --bad corrupt-blob
    for jobs in 1 3; do
        rm -rf "$S"
        KAGO_IMAGE_JOBS=$jobs run img --import "oci:$BATS_TEST_TMPDIR/bad"
        assert_failure 125
        echo "$output" >"$BATS_TEST_TMPDIR/err.$jobs"
        store_clean 0
        [ -z "$(ls "$S/blobs/sha256")" ] || fail "blobs left: $(ls "$S/blobs/sha256")"
    done
    diff "$BATS_TEST_TMPDIR/err.1" "$BATS_TEST_TMPDIR/err.3"
    # Not a number from 1 to 8: a usage error.
    for jobs in 0 9 x -1; do
        KAGO_IMAGE_JOBS=$jobs run img --import "oci:$OCI" par
        assert_failure 125
        assert_output --partial "KAGO_IMAGE_JOBS '$jobs': not a number from 1 to 8"
    done
}

@test "a big gzip layer unpacked by one thread and by workers makes the same tree (KAGO_IMAGE_JOBS)" {
    command -v skopeo >/dev/null || skip "skopeo is not installed (make deps)"
    require_debian_rootfs
    # The Debian minbase root as one gzip layer (~6,800 entries), as skopeo
    # writes it; plus a layer with a whiteout and an opaque directory.
    img --import "$DEBIAN_ROOTFS" deb
    local up=$BATS_TEST_TMPDIR/upper
    mkdir -p "$up/etc" "$up/usr/share/doc"
    mknod "$up/etc/motd" c 0 0
    python3 -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")' "$up/usr/share/doc"
    echo hello >"$up/usr/share/doc/README"
    img --commit "$up" deb deb:2
    skopeo copy -q --dest-compress-format gzip "oci:$S:deb:2" "oci:$BATS_TEST_TMPDIR/gz:deb:2"
    local jobs
    for jobs in 1 "" 4; do
        rm -rf "$S"
        KAGO_IMAGE_JOBS=$jobs run img --import "oci:$BATS_TEST_TMPDIR/gz:deb:2" par
        assert_success
        store_clean 2
        store_listing "$S" >"$BATS_TEST_TMPDIR/listing.$jobs"
    done
    grep -q ' c 0 ' "$BATS_TEST_TMPDIR/listing.1" || fail "no whiteout in the listing"
    [ "$(grep -c '^\./' "$BATS_TEST_TMPDIR/listing.1")" -gt 5000 ] || fail "fewer entries than the Debian root has"
    diff "$BATS_TEST_TMPDIR/listing.1" "$BATS_TEST_TMPDIR/listing." || fail "the default differs from 1 job"
    diff "$BATS_TEST_TMPDIR/listing.1" "$BATS_TEST_TMPDIR/listing.4" || fail "4 jobs differ from 1"
}

@test "two imports of one image at once leave one consistent store" {
    require_static
    img --import "oci:$OCI" a &
    img --import "oci:$OCI" b &
    img --import "oci:$OCI" c
    wait
    run img --list
    assert_output --partial a:latest
    assert_output --partial b:latest
    assert_output --partial c:latest
    store_clean 3
    run chain b
    assert_success
    assert_output "hello from /app as 1000"
}

@test "kill -9 during an import leaves nothing a later run uses; a re-import is clean" {
    require_static
    local i pid src
    # A docker-archive's layers are copied by the kernel on a thread of
    # their own, an OCI layout's blobs too: killed mid-copy as well.
    skopeo copy -q "oci:$OCI:test:1" "docker-archive:$BATS_TEST_TMPDIR/d.tar:test:1"
    for i in 1 2 3 4 5 6 7 8 9; do
        src="oci:$OCI"
        [ $((i % 3)) = 0 ] && src="docker-archive:$BATS_TEST_TMPDIR/d.tar"
        rm -rf "$S"
        img --import "$src" test:1 &
        pid=$!
        sleep "0.0$((RANDOM % 9 + 1))"
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        # Whatever was published is whole: every layer a chain ID of the image.
        if [ -d "$S/layers" ]; then
            for l in "$S"/layers/*; do
                [ -e "$l" ] || continue
                grep -rq . "$l" 2>/dev/null || [ -n "$(ls -A "$l")" ] || fail "empty layer $l"
            done
        fi
        if [ -f "$S/index.json" ] && grep -q test:1 "$S/index.json"; then
            run chain test:1
            assert_output "hello from /app as 1000"
        fi
        run img --import "$src" test:1
        assert_success
        store_clean 3
        run chain test:1
        assert_success
        assert_output "hello from /app as 1000"
    done
}

# --- rootless -------------------------------------------------------------------

@test "rootless without subuids: the caller owns the files; whiteouts and opaque dirs work in a user namespace" {
    require_static
    require_userns
    local home
    home=$(mktemp -d /tmp/kago-img-home.XXXXXX)
    chown 65534:65534 "$home"
    run as_nobody env HOME="$home" image-layers --import "oci:$OCI"
    assert_success
    assert_output --partial "removed the setuid/setgid bits of 1 file(s)"
    assert_output --partial "dropped 1 xattr(s)"
    assert_output --partial "skipped 1 device node(s)"
    [ -d "$home/.local/share/kago/images/layers" ]
    [ "$(stat -c %u "$home/.local/share/kago/images/layers")" = 65534 ]
    run as_nobody env HOME="$home" image-layers test:1 -- unshare-run --map-root --pid --mount -- \
        mount-layers --tmp-upper --proc --target "$home/root" --pivot -- cap-drop --user 0 -- /bin/sh -c '
        ls -A /data /opq; [ ! -e /olddir ] && echo olddir-absent; stat -c "%n %a %u" /data/suid /app/hello'
    assert_success
    assert_output --partial "$(printf '/data:\ncap\nhard\nkeep\norig\nsuid\nsym\n\n/opq:\nupper')"
    assert_line olddir-absent
    assert_line "/data/suid 755 0"
    assert_line "/app/hello 644 0"
    # XDG_DATA_HOME moves the store.
    run as_nobody env HOME="$home" XDG_DATA_HOME="$home/xdg" image-layers --import "$KAGO_ROOTFS" bb
    assert_success
    [ -d "$home/xdg/kago/images/layers" ]
    rm -rf "$home"
}

@test "rootless with subuids: --map-auto unpacks in a user namespace; the image's owners and setuid bits stay" {
    require_static
    [ "$(id -u)" = 0 ] || skip "needs root to create the test user"
    command -v useradd >/dev/null && command -v newuidmap >/dev/null || skip "useradd or newuidmap (uidmap) is missing"
    userdel "$IMG_USER" 2>/dev/null || true
    sed -i "/^$IMG_USER:/d" /etc/subuid /etc/subgid
    if awk -F: -v s=$IMG_START -v c=$IMG_COUNT '$2 < s + c && $2 + $3 > s { bad = 1 } END { exit !bad }' /etc/subuid /etc/subgid; then
        skip "the range $IMG_START+$IMG_COUNT is taken in /etc/subuid"
    fi
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$IMG_USER"
    echo "$IMG_USER" >"$BATS_FILE_TMPDIR/user"
    echo "$IMG_USER:$IMG_START:$IMG_COUNT" >>/etc/subuid
    echo "$IMG_USER:$IMG_START:$IMG_COUNT" >>/etc/subgid
    local home u g
    home=$(mktemp -d "$D/home.XXXXXX")
    chown "$IMG_USER:" "$home"
    u=$(id -u "$IMG_USER") g=$(id -g "$IMG_USER")
    as_img() { setpriv --reuid="$u" --regid="$g" --clear-groups -- env -i PATH="$PATH" HOME="$home" "$@"; }
    run as_img image-layers --map-auto --import "oci:$OCI"
    assert_success
    refute_output --partial "setuid"
    # On the host: the file of uid 1000 belongs to the range's id 1000.
    local hello
    hello=$(ls -d "$home"/.local/share/kago/images/layers/*/app/hello)
    [ "$(stat -c %u "$hello")" = $((IMG_START + 999)) ]
    run as_img image-layers test:1 -- unshare-run --user --map-auto --pid --mount -- \
        mount-layers --tmp-upper --proc --target "$home/root" --pivot -- cap-drop --user 0 -- /bin/sh -c '
        stat -c "%n %a %u:%g" /app/hello /data/suid /data/orig; ls -A /opq; [ ! -e /data/gone ] && echo gone-absent'
    assert_success
    assert_line "/app/hello 644 1000:1000"
    assert_line "/data/suid 4755 0:0"
    assert_line "/data/orig 644 0:0"
    assert_line upper
    assert_line gone-absent
    run as_img image-layers test:1 -- unshare-run --user --map-auto --pid --mount -- \
        mount-layers --tmp-upper --proc --target "$home/root" --pivot -- cap-drop
    assert_success
    assert_output "hello from /app as 1000"
    # What the range owns is removed in the namespace too.
    run as_img image-layers --map-auto --remove test:1
    assert_success
    [ -z "$(ls -A "$home/.local/share/kago/images/layers")" ]
    # --store goes into the namespace once (it was given twice there).
    run as_img image-layers --map-auto --store "$home/store2" --import "oci:$OCI"
    assert_success
    run as_img image-layers --map-auto --store "$home/store2" --remove test:1
    assert_success
    [ -z "$(ls -A "$home/store2/layers")" ]
    rm -rf "$home"
    userdel "$IMG_USER"
    sed -i "/^$IMG_USER:/d" /etc/subuid /etc/subgid
    rm -f "$BATS_FILE_TMPDIR/user"
}
