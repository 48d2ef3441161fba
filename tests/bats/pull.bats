#!/usr/bin/env bats
# image-layers --pull: from a real registry on loopback (Debian's
# docker-registry, started by tests/bats/registry.bash with a temporary
# config on 127.0.0.1 and a free port, stopped in teardown_file). The test
# image is tests/lib/make-oci-image.py's, pushed with skopeo.
bats_require_minimum_version 1.5.0
load helpers
load registry

MKIMG="$KAGO_TOP/tests/lib/make-oci-image.py"

setup_file() {
    kago_setup_file
    [ -x "$DOCKER_REGISTRY" ] && command -v skopeo >/dev/null && command -v python3 >/dev/null || return 0
    local d
    d=$(mktemp -d /tmp/kago-pull-bats.XXXXXX)
    chmod 755 "$d"
    echo "$d" >"$BATS_FILE_TMPDIR/dir"
    python3 "$MKIMG" "$KAGO_ROOTFS" "$d/oci" >&2
    registry_start "$d/registry"
    echo "$REGISTRY" >"$BATS_FILE_TMPDIR/registry"
    registry_push "$d/oci:test:1" kago/test:1
}

teardown_file() {
    registry_stop_all
    [ -s "$BATS_FILE_TMPDIR/dir" ] && rm -rf "$(cat "$BATS_FILE_TMPDIR/dir")"
    kago_teardown_file
}

setup() {
    require_progs image-layers unshare-run mount-layers cap-drop
    require_registry
    command -v python3 >/dev/null || skip "python3 is not installed (make deps)"
    D=$(cat "$BATS_FILE_TMPDIR/dir")
    REGISTRY=$(cat "$BATS_FILE_TMPDIR/registry")
    S=$BATS_TEST_TMPDIR/store
    # No credentials of the caller's own.
    export HOME=$BATS_TEST_TMPDIR XDG_RUNTIME_DIR=$BATS_TEST_TMPDIR/run
    unset REGISTRY_AUTH_FILE DOCKER_CONFIG
    mkdir -p "$XDG_RUNTIME_DIR"
}

img() { image-layers --store "$S" "$@"; }
chain_words=(unshare-run --pid --mount -- mount-layers --tmp-upper --proc --pivot -- cap-drop)
store_clean() {
    [ -z "$(ls -A "$S/tmp" 2>/dev/null)" ] || fail "tmp/ is not empty: $(ls -A "$S/tmp")"
    local n
    n=$(ls "$S/layers" 2>/dev/null | wc -l)
    [ "$n" = "$1" ] || fail "layers/ holds $n directories, not $1"
}
# A one-layer image no other test shares, pushed as REPO: its blobs can be
# broken in the registry's storage without touching the others.
push_unique() {
    local repo=$1 creds=${2:-} root=$BATS_TEST_TMPDIR/uniq st=$BATS_TEST_TMPDIR/uniq-store
    mkdir -p "$root/etc"
    echo "$BATS_TEST_NAME $RANDOM $$" >"$root/etc/unique"
    image-layers --store "$st" --import "$root" uniq:1 >&2
    registry_push "$st:uniq:1" "$repo" "$creds"
    # skopeo compresses the layer on the way: the registry's digest.
    UNIQ_LAYER=$(skopeo inspect --raw --tls-verify=false ${creds:+--creds "$creds"} "docker://$REGISTRY/$repo" |
        jq -r '.layers[0].digest')
}

@test "--pull: anonymous, one line per layer on stderr, the summary on stdout; then a chain runs it" {
    require_static
    run --separate-stderr img --pull "$REGISTRY/kago/test:1"
    assert_success
    assert_output --regexp "^$REGISTRY/kago/test:1 [0-9a-f]{12} \(3 layers\)\$"
    [ "$(grep -c ': fetched ' <<<"$stderr")" = 3 ] || fail "stderr: $stderr"
    [[ "$stderr" == *"layer 1/3 "* ]] || fail "stderr: $stderr"
    store_clean 3
    run img --list
    assert_output --partial "$REGISTRY/kago/test:1"
    run img "$REGISTRY/kago/test:1" -- "${chain_words[@]}"
    assert_success
    assert_output "hello from /app as 1000"
    # The store stays an OCI layout that skopeo reads.
    run skopeo inspect "oci:$S:$REGISTRY/kago/test:1"
    assert_success
}

@test "--pull REF -- COMMAND pulls when the image is missing, and only then" {
    require_static
    run --separate-stderr img --pull "$REGISTRY/kago/test:1" -- "${chain_words[@]}"
    assert_success
    assert_output "hello from /app as 1000"
    [ "$(grep -c ': fetched ' <<<"$stderr")" = 3 ] || fail "stderr: $stderr"
    # Present: not even the manifest is asked for (-v traces every GET).
    run --separate-stderr env -u KAGO_EXEC image-layers --store "$S" -v --pull "$REGISTRY/kago/test:1" -- "${chain_words[@]}"
    assert_success
    assert_output "hello from /app as 1000"
    [[ "$stderr" != *"GET "* ]] || fail "a request was made: $stderr"
    # Nothing loaded: the chain is entered in process. After a pull (libcurl
    # and ISA-L loaded with dlopen), it is always a real exec.
    grep -q '^image-layers: execve(.*unshare-run.*(in process)$' <<<"$stderr" || fail "not entered in process: $stderr"
    img --remove "$REGISTRY/kago/test:1" >/dev/null
    run --separate-stderr env -u KAGO_EXEC image-layers --store "$S" -v --pull "$REGISTRY/kago/test:1" -- "${chain_words[@]}"
    assert_success
    assert_output "hello from /app as 1000"
    grep -q '^image-layers: execve(.*unshare-run' <<<"$stderr" || fail "no exec traced: $stderr"
    ! grep -q '^image-layers: execve(.*(in process)$' <<<"$stderr" || fail "entered in process after a pull: $stderr"
    # --pull REF then the image's default command.
    run img --pull "$REGISTRY/kago/test:1" --
    assert_success
}

@test "--pull of an image already in the store fetches no layer" {
    run img --pull "$REGISTRY/kago/test:1"
    assert_success
    run --separate-stderr img -v --pull "$REGISTRY/kago/test:1" again
    assert_success
    assert_output --regexp "^again:latest [0-9a-f]{12} \(3 layers, 3 shared\)\$"
    [ "$(grep -c 'already in the store' <<<"$stderr")" = 3 ] || fail "stderr: $stderr"
    [[ "$stderr" == *"/manifests/1"* ]] || fail "no manifest request: $stderr"
    [[ "$stderr" != *"/blobs/"* ]] || fail "a blob was fetched: $stderr"
    store_clean 3
}

@test "--pull by digest; a digest the registry does not have is a 404, exit 125" {
    local digest
    digest=$(skopeo inspect --tls-verify=false "docker://$REGISTRY/kago/test:1" | jq -r .Digest)
    [[ "$digest" == sha256:* ]] || fail "no digest: $digest"
    run img --quiet --pull "$REGISTRY/kago/test@$digest"
    assert_success
    assert_output --regexp "^$REGISTRY/kago/test@$digest [0-9a-f]{12} \(3 layers\)\$"
    run img --list
    assert_output --partial "$REGISTRY/kago/test@$digest"
    run img --pull "$REGISTRY/kago/test@sha256:$(printf '%064d' 0)"
    assert_equal "$status" 125
    assert_output --partial "HTTP 404"
}

@test "a zstd layer is pulled and run like the others" {
    require_static
    python3 "$MKIMG" "$KAGO_ROOTFS" "$BATS_TEST_TMPDIR/oci-zstd" --zstd >&2
    registry_push "$BATS_TEST_TMPDIR/oci-zstd:test:1" kago/zstd:1
    run skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/kago/zstd:1"
    assert_output --partial "tar+zstd"
    run img --quiet --pull "$REGISTRY/kago/zstd:1" -- "${chain_words[@]}"
    assert_success
    assert_output "hello from /app as 1000"
}

@test "a multi-arch index is resolved to the host's platform, --platform picks another" {
    local host
    case $(uname -m) in x86_64) host=amd64 ;; aarch64) host=arm64 ;; *) skip "no test image for $(uname -m)" ;; esac
    python3 "$MKIMG" "$KAGO_ROOTFS" "$BATS_TEST_TMPDIR/oci-multi" --index "s390x,$host" >&2
    skopeo copy -q --all --dest-tls-verify=false "oci:$BATS_TEST_TMPDIR/oci-multi:test:1" \
        "docker://$REGISTRY/kago/multi:1" >&2
    run skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/kago/multi:1"
    assert_output --partial "image.index"
    run img --pull "$REGISTRY/kago/multi:1"
    assert_success
    run img --inspect "$REGISTRY/kago/multi:1"
    assert_output --partial "\"architecture\": \"$host\""
    run img --pull "$REGISTRY/kago/multi:1" --platform linux/s390x s390x
    assert_success
    run img --inspect s390x
    assert_output --partial '"architecture": "s390x"'
    run img --pull "$REGISTRY/kago/multi:1" --platform linux/riscv64 riscv
    assert_equal "$status" 125
    assert_output --partial "no image for linux/riscv64 (the index has linux/s390x linux/$host)"
}

@test "examples/marten pull REF, then minc -r runs it" {
    require_static
    run env KAGO_IMAGE_STORE="$S" "$KAGO_TOP/examples/marten" pull "$REGISTRY/kago/test:1" mt
    assert_success
    assert_output --partial "mt:latest"
    run env KAGO_IMAGE_STORE="$S" "$KAGO_TOP/examples/marten" images
    assert_output --partial "mt:latest"
    run env KAGO_IMAGE_STORE="$S" "$KAGO_TOP/examples/minc" -r mt echo hello </dev/null
    assert_success
    assert_output hello
    run env KAGO_IMAGE_STORE="$S" "$KAGO_TOP/examples/marten" pull
    assert_equal "$status" 125
}

@test "two pulls of one image at once leave one consistent store" {
    require_static
    img --quiet --pull "$REGISTRY/kago/test:1" >"$BATS_TEST_TMPDIR/a" 2>&1 &
    local a=$!
    img --quiet --pull "$REGISTRY/kago/test:1" >"$BATS_TEST_TMPDIR/b" 2>&1 &
    local b=$!
    wait "$a" || fail "first pull: $(cat "$BATS_TEST_TMPDIR/a")"
    wait "$b" || fail "second pull: $(cat "$BATS_TEST_TMPDIR/b")"
    store_clean 3
    run img "$REGISTRY/kago/test:1" -- "${chain_words[@]}"
    assert_output "hello from /app as 1000"
}

@test "kill -9 during a pull publishes nothing partial; the next pull completes it" {
    require_static
    local i pid
    for i in 1 2 3 4 5; do
        rm -rf "$S"
        img --quiet --pull "$REGISTRY/kago/test:1" >/dev/null 2>&1 &
        pid=$!
        sleep "0.0$((i * 2))"
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        # Whatever was published is whole: a listed image runs.
        if [ -e "$S/index.json" ] && img --list | grep -q kago/test; then
            run img "$REGISTRY/kago/test:1" -- "${chain_words[@]}"
            assert_output "hello from /app as 1000"
        fi
        run img --quiet --pull "$REGISTRY/kago/test:1"
        assert_success
        store_clean 3
    done
}

@test "--quiet: nothing on stderr" {
    run --separate-stderr img --quiet --pull "$REGISTRY/kago/test:1"
    assert_success
    assert_equal "$stderr" ""
}

@test "a layer whose bytes do not match its digest is refused, naming the digest; nothing is published" {
    push_unique kago/corrupt:1
    local data="$D/registry/storage/docker/registry/v2/blobs/sha256/${UNIQ_LAYER:7:2}/${UNIQ_LAYER:7}/data"
    [ -f "$data" ] || fail "no blob $data"
    # The same size, one byte changed.
    printf 'X' | dd of="$data" bs=1 seek=$(($(stat -c %s "$data") - 20)) conv=notrunc status=none
    run img --pull "$REGISTRY/kago/corrupt:1"
    assert_equal "$status" 125
    assert_output --partial "layer $UNIQ_LAYER: digest mismatch: the descriptor says $UNIQ_LAYER, the content hashes to sha256:"
    store_clean 0
    [ ! -e "$S/blobs/sha256/${UNIQ_LAYER:7}" ] || fail "the bad blob was stored"
    run img --list
    refute_output --partial corrupt
}

@test "a blob longer than its descriptor says is cut off and refused" {
    push_unique kago/long:1
    local data="$D/registry/storage/docker/registry/v2/blobs/sha256/${UNIQ_LAYER:7:2}/${UNIQ_LAYER:7}/data"
    printf 'trailing bytes' >>"$data"
    run img --pull "$REGISTRY/kago/long:1"
    assert_equal "$status" 125
    assert_output --partial "more bytes than the descriptor's"
    store_clean 0
}

@test "basic auth: refused without credentials, pulled with auth.json, then with docker's config.json" {
    command -v htpasswd >/dev/null || skip "htpasswd is not installed (make deps: apache2-utils)"
    local r=$BATS_TEST_TMPDIR/reg-auth
    mkdir -p "$r"
    htpasswd -Bbn kago s3cret >"$r/htpasswd"
    registry_start "$r" "$r/htpasswd"
    run curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/"
    assert_output 401
    push_unique kago/private:1 kago:s3cret
    run img --pull "$REGISTRY/kago/private:1"
    assert_equal "$status" 125
    assert_output --partial "the registry asks for a user and password, and none is given for $REGISTRY"
    assert_output --partial "hint: podman login $REGISTRY"
    store_clean 0
    # Wrong credentials.
    mkdir -p "$XDG_RUNTIME_DIR/containers"
    printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REGISTRY" "$(printf kago:wrong | base64)" \
        >"$XDG_RUNTIME_DIR/containers/auth.json"
    run img --pull "$REGISTRY/kago/private:1"
    assert_equal "$status" 125
    assert_output --partial "HTTP 401"
    # podman's and skopeo's file.
    printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REGISTRY" "$(printf kago:s3cret | base64)" \
        >"$XDG_RUNTIME_DIR/containers/auth.json"
    run img --quiet --pull "$REGISTRY/kago/private:1"
    assert_success
    assert_output --partial "$REGISTRY/kago/private:1"
    # docker's, as docker login writes it (a URL as the key).
    rm "$XDG_RUNTIME_DIR/containers/auth.json"
    mkdir -p "$HOME/.docker"
    printf '{"auths": {"http://%s/v1/": {"auth": "%s"}}}\n' "$REGISTRY" "$(printf kago:s3cret | base64)" \
        >"$HOME/.docker/config.json"
    run img --quiet --pull "$REGISTRY/kago/private:1" docker-config
    assert_success
    assert_output --partial "docker-config:latest"
}

@test "a rootless pull as nobody, into nobody's store" {
    require_static
    [ "$(id -u)" = 0 ] || skip "needs root to become uid 65534"
    local home st
    home=$(mktemp -d /tmp/kago-pull-home.XXXXXX)
    chown 65534:65534 "$home"
    st=$home/store
    run as_nobody env KAGO_IMAGE_STORE="$st" image-layers --quiet --pull "$REGISTRY/kago/test:1"
    assert_success
    assert_output --partial "$REGISTRY/kago/test:1"
    run as_nobody env KAGO_IMAGE_STORE="$st" image-layers --list
    assert_output --partial "$REGISTRY/kago/test:1"
    [ "$(stat -c %u "$st/layers/$(ls "$st/layers" | head -1)")" = 65534 ] || fail "not nobody's"
    rm -rf "$home"
}

@test "bad words: a bad REF, --insecure or --quiet without --pull, --pull with two names, --pull with --import" {
    run img --pull 'Bad:REF'
    assert_equal "$status" 125
    assert_output --partial "image reference 'Bad:REF'"
    run img --insecure --list
    assert_equal "$status" 125
    assert_output --partial "--insecure and --quiet need --pull"
    run img --pull "$REGISTRY/kago/test:1" a b
    assert_equal "$status" 125
    assert_output --partial "--pull takes REF and at most one NAME"
    run img --pull "$REGISTRY/kago/test:1" --import x
    assert_equal "$status" 125
    run img --pull "$REGISTRY/kago/nothere:1"
    assert_equal "$status" 125
    assert_output --partial "HTTP 404 (MANIFEST_UNKNOWN"
    [ ! -e "$S/index.json" ] || [ "$(jq '.manifests | length' "$S/index.json")" = 0 ]
}

@test "--dry-run --pull changes nothing" {
    run img --dry-run --pull "$REGISTRY/kago/test:1"
    assert_success
    [ ! -e "$S" ] || fail "the store was made"
}

@test "bearer token auth: the token server refuses anonymous, a pull with auth.json gets a token" {
    command -v openssl >/dev/null || skip "openssl is not installed"
    local r=$BATS_TEST_TMPDIR/reg-token
    token_server_start "$BATS_TEST_TMPDIR/token" kago:t0ken
    registry_start "$r"
    unset REGISTRY_AUTH_YAML
    run curl -s -D - -o /dev/null "http://$REGISTRY/v2/"
    assert_output --partial 'Bearer realm="http://127.0.0.1:'
    # skopeo pushes through the same tokens (pull,push).
    push_unique kago/tok:1 kago:t0ken
    grep -q 'user=kago .*scope=.*repository:kago/tok:.*push' "$TOKEN_LOG" || fail "no push token: $(cat "$TOKEN_LOG")"
    : >"$TOKEN_LOG"
    run img --pull "$REGISTRY/kago/tok:1"
    assert_equal "$status" 125
    assert_output --partial "token for $REGISTRY/kago/tok: GET http://127.0.0.1:"
    assert_output --partial "HTTP 401"
    grep -q '^token user=- service=kago-registry scope=repository:kago/tok:pull$' "$TOKEN_LOG" ||
        fail "token log: $(cat "$TOKEN_LOG")"
    store_clean 0
    mkdir -p "$XDG_RUNTIME_DIR/containers"
    printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REGISTRY" "$(printf kago:t0ken | base64)" \
        >"$XDG_RUNTIME_DIR/containers/auth.json"
    : >"$TOKEN_LOG"
    run --separate-stderr img --pull "$REGISTRY/kago/tok:1"
    assert_success
    assert_output --partial "$REGISTRY/kago/tok:1"
    [ "$(grep -c ': fetched ' <<<"$stderr")" = 1 ] || fail "stderr: $stderr"
    # One token, asked for with the user's credentials.
    [ "$(grep -c '^token user=kago service=kago-registry scope=repository:kago/tok:pull$' "$TOKEN_LOG")" = 1 ] ||
        fail "token log: $(cat "$TOKEN_LOG")"
    store_clean 1
}

@test "identity tokens: auth.json's identitytoken and a helper's <token> are traded at the token server (OAuth2 refresh_token POST)" {
    command -v openssl >/dev/null || skip "openssl is not installed"
    local r=$BATS_TEST_TMPDIR/reg-idt bin=$BATS_TEST_TMPDIR/helpers
    mkdir -p "$bin" "$XDG_RUNTIME_DIR/containers" "$HOME/.docker"
    token_server_start "$BATS_TEST_TMPDIR/token" kago:t0ken r3fresh
    registry_start "$r"
    unset REGISTRY_AUTH_YAML
    push_unique kago/idt:1 kago:t0ken
    local want="token POST grant=refresh_token client=kago valid=yes service=kago-registry scope=repository:kago/idt:pull authorization=no"
    # auth.json: the token, never a password, goes to the token server alone.
    printf '{"auths": {"%s": {"auth": "%s", "identitytoken": "r3fresh"}}}\n' "$REGISTRY" \
        "$(printf '<token>:' | base64)" >"$XDG_RUNTIME_DIR/containers/auth.json"
    : >"$TOKEN_LOG"
    run --separate-stderr img -v --pull "$REGISTRY/kago/idt:1"
    assert_success
    [[ "$stderr" == *"identity token (from $XDG_RUNTIME_DIR/containers/auth.json)"* ]] || fail "stderr: $stderr"
    [[ "$stderr" == *"POST http://127.0.0.1:"*"/token"* ]] || fail "stderr: $stderr"
    [[ "$stderr" != *r3fresh* ]] || fail "the trace shows the token: $stderr"
    assert_equal "$(cat "$TOKEN_LOG")" "$want"
    store_clean 1
    # A token the server does not know: 125, naming the server and the file.
    printf '{"auths": {"%s": {"identitytoken": "stale"}}}\n' "$REGISTRY" >"$XDG_RUNTIME_DIR/containers/auth.json"
    run img --pull "$REGISTRY/kago/idt:1"
    assert_equal "$status" 125
    assert_output --partial "token for $REGISTRY/kago/idt: POST http://127.0.0.1:"
    assert_output --partial "HTTP 401"
    assert_output --partial "the token server refused the identity token from $XDG_RUNTIME_DIR/containers/auth.json"
    store_clean 1
    # A credential helper's answer with Username "<token>".
    rm "$XDG_RUNTIME_DIR/containers/auth.json"
    printf '#!/bin/sh\ncat >/dev/null\necho '"'"'{"Username": "<token>", "Secret": "r3fresh"}'"'"'\n' >"$bin/docker-credential-tok"
    chmod +x "$bin/docker-credential-tok"
    printf '{"credHelpers": {"%s": "tok"}}\n' "$REGISTRY" >"$HOME/.docker/config.json"
    : >"$TOKEN_LOG"
    PATH=$bin:$PATH run img --quiet --pull "$REGISTRY/kago/idt:1"
    assert_success
    assert_equal "$(cat "$TOKEN_LOG")" "$want"
    store_clean 1
}

@test "attack: a token realm that redirects the identity token's POST elsewhere gets nothing sent on" {
    command -v openssl >/dev/null || skip "openssl is not installed"
    local r=$BATS_TEST_TMPDIR/reg-redir d=$BATS_TEST_TMPDIR/redir tport rport
    mkdir -p "$d" "$XDG_RUNTIME_DIR/containers"
    token_server_start "$BATS_TEST_TMPDIR/token" kago:t0ken r3fresh
    tport=$(cat "$BATS_TEST_TMPDIR/token/port")
    # The realm: a server that answers a POST with a 307 to the real token
    # server (another origin), which would grant the token it gets; a GET
    # (skopeo's push, with a password) it passes through.
    python3 - "$d/port" "$d/log" "http://127.0.0.1:$tport/token" 3>&- <<'PY' &
import http.server, os, sys, urllib.error, urllib.parse, urllib.request
portfile, log, to = sys.argv[1:4]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        open(log, "a").write("POST\n")
        self.send_response(307); self.send_header("Location", to)
        self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):
        q = urllib.parse.urlparse(self.path).query
        req = urllib.request.Request(to + "?" + q, headers={k: v for k, v in self.headers.items() if k.lower() == "authorization"})
        try:
            r = urllib.request.urlopen(req); code, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, body = e.code, e.read()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(portfile + ".tmp", "w").write(str(s.server_address[1])); os.rename(portfile + ".tmp", portfile)
s.serve_forever()
PY
    wait_portfile "$d/port" $! || fail "the redirecting realm did not start"
    rport=$(cat "$d/port")
    REGISTRY_AUTH_YAML=${REGISTRY_AUTH_YAML/127.0.0.1:$tport/127.0.0.1:$rport}
    registry_start "$r"
    unset REGISTRY_AUTH_YAML
    push_unique kago/redir:1 kago:t0ken
    printf '{"auths": {"%s": {"identitytoken": "r3fresh"}}}\n' "$REGISTRY" >"$XDG_RUNTIME_DIR/containers/auth.json"
    : >"$TOKEN_LOG"
    : >"$d/log"
    run img --pull "$REGISTRY/kago/redir:1"
    assert_equal "$status" 125
    assert_output --partial "POST http://127.0.0.1:$rport/token: HTTP 307"
    assert_equal "$(cat "$d/log")" "POST"
    # The token never reached the other origin.
    [ ! -s "$TOKEN_LOG" ] || fail "the token went on: $(cat "$TOKEN_LOG")"
    store_clean 0
}

@test "an identity token for a registry that asks for basic auth: 125, saying so" {
    command -v htpasswd >/dev/null || skip "htpasswd is not installed (make deps: apache2-utils)"
    local r=$BATS_TEST_TMPDIR/reg-basic
    mkdir -p "$r" "$XDG_RUNTIME_DIR/containers"
    htpasswd -Bbn kago s3cret >"$r/htpasswd"
    registry_start "$r" "$r/htpasswd"
    printf '{"auths": {"%s": {"identitytoken": "r3fresh"}}}\n' "$REGISTRY" >"$XDG_RUNTIME_DIR/containers/auth.json"
    run img --pull "$REGISTRY/kago/none:1"
    assert_equal "$status" 125
    assert_output --partial "holds an identity token for $REGISTRY, which only a token server takes"
    store_clean 0
}

@test "a blob transfer cut mid-way is resumed with a Range request" {
    proxy_start "$BATS_TEST_TMPDIR/proxy" "$REGISTRY" --cut
    run --separate-stderr img -v --pull "$PROXY/kago/test:1"
    assert_success
    assert_output --regexp "^$PROXY/kago/test:1 [0-9a-f]{12} \(3 layers\)\$"
    grep -q '^cut /v2/kago/test/blobs/sha256:' "$PROXY_LOG" || fail "nothing was cut: $(cat "$PROXY_LOG")"
    local cut from
    cut=$(sed -n 's/^cut \([^ ]*\) after \([0-9]*\) of .*/\1 \2/p' "$PROXY_LOG")
    from=$(grep "^GET ${cut% *} range=bytes=" "$PROXY_LOG") || fail "no Range request: $(cat "$PROXY_LOG")"
    [[ "$from" == *"range=bytes=${cut#* }-" ]] || fail "the range does not start at ${cut#* }: $from"
    [[ "$stderr" == *"resuming at byte ${cut#* }"* ]] || fail "stderr: $stderr"
    store_clean 3
    run img "$PROXY/kago/test:1" -- "${chain_words[@]}"
    assert_output "hello from /app as 1000"
    # A server that ignores Range answers the whole blob again: what was
    # received is skipped. A new store, so that the blobs are fetched again.
    S=$BATS_TEST_TMPDIR/store2
    proxy_start "$BATS_TEST_TMPDIR/proxy-norange" "$REGISTRY" --cut-norange
    run --separate-stderr img -v --pull "$PROXY/kago/test:1" norange
    assert_success
    grep -q "^GET .* range=bytes=" "$PROXY_LOG" || fail "no Range request: $(cat "$PROXY_LOG")"
    [[ "$stderr" == *"resuming at byte"* ]] || fail "stderr: $stderr"
    store_clean 3
    run img norange -- "${chain_words[@]}"
    assert_output "hello from /app as 1000"
}

@test "a registry that dies mid-blob: a clear error naming the blob, nothing published; a later pull completes" {
    local port
    proxy_start "$BATS_TEST_TMPDIR/proxy" "$REGISTRY" --die
    port=${PROXY#*:}
    run img --pull "$PROXY/kago/test:1"
    assert_equal "$status" 125
    assert_output --regexp "$PROXY/kago/test: blob sha256:[0-9a-f]{64}: the transfer broke after [0-9]+ of [0-9]+ bytes, 4 attempts"
    kill -0 "$PROXY_PID" 2>/dev/null && fail "the proxy did not die"
    store_clean 0
    [ -z "$(ls "$S/blobs/sha256" 2>/dev/null)" ] || fail "blobs were stored: $(ls "$S/blobs/sha256")"
    run img --list
    refute_output --partial kago/test
    # The registry back at the same address.
    proxy_start "$BATS_TEST_TMPDIR/proxy2" "$REGISTRY" --cut "$port"
    run img --quiet --pull "$PROXY/kago/test:1"
    assert_success
    store_clean 3
}

# What a store holds, to compare two: the blobs by name, and every layer
# directory's tree (names, types, modes, owners, sizes, links, devices).
store_listing() {
    (cd "$1" && ls blobs/sha256 && cd layers && find . -printf '%p %y %m %U %G %s %l %Hr\n' | LC_ALL=C sort)
}

@test "KAGO_IMAGE_JOBS: the layers fetched three at once give the same store as one at a time" {
    require_static
    KAGO_IMAGE_JOBS=1 run --separate-stderr img --pull "$REGISTRY/kago/test:1"
    assert_success
    local one=$S
    S=$BATS_TEST_TMPDIR/store3
    # (That they are at once: the next test.)
    KAGO_IMAGE_JOBS=3 run --separate-stderr img --pull "$REGISTRY/kago/test:1"
    assert_success
    store_clean 3
    assert_equal "$(store_listing "$S")" "$(store_listing "$one")"
    run img "$REGISTRY/kago/test:1" -- "${chain_words[@]}"
    assert_output "hello from /app as 1000"
    KAGO_IMAGE_JOBS=9 run img --pull "$REGISTRY/kago/test:1"
    assert_equal "$status" 125
    assert_output --partial "KAGO_IMAGE_JOBS '9': not a number from 1 to 8"
}

@test "a registry that dies with two layers in flight: one error naming a blob, nothing published; a later pull completes" {
    local port
    proxy_start "$BATS_TEST_TMPDIR/proxy" "$REGISTRY" --die-two
    port=${PROXY#*:}
    KAGO_IMAGE_JOBS=3 run img --pull "$PROXY/kago/test:1"
    assert_equal "$status" 125
    [ "$(grep -c '^two at once ' "$PROXY_LOG")" = 2 ] || fail "not two at once: $(cat "$PROXY_LOG")"
    assert_output --regexp "$PROXY/kago/test: blob sha256:[0-9a-f]{64}: the transfer broke after [0-9]+ of [0-9]+ bytes, 4 attempts"
    # The first failure is the error; the layer it stopped is not reported.
    refute_output --partial "stopped"
    [ "$(grep -c 'image-layers: ' <<<"$output")" -le 2 ] || fail "more than one error: $output"
    kill -0 "$PROXY_PID" 2>/dev/null && fail "the proxy did not die"
    store_clean 0
    [ -z "$(ls "$S/blobs/sha256" 2>/dev/null)" ] || fail "blobs were stored: $(ls "$S/blobs/sha256")"
    proxy_start "$BATS_TEST_TMPDIR/proxy2" "$REGISTRY" --cut "$port"
    KAGO_IMAGE_JOBS=3 run img --quiet --pull "$PROXY/kago/test:1"
    assert_success
    store_clean 3
}

@test "progress with several layers in flight: a line per layer; on a terminal, bars redrawn in place above nothing left" {
    KAGO_IMAGE_JOBS=3 run --separate-stderr img --pull "$REGISTRY/kago/test:1"
    assert_success
    local i
    for i in 1 2 3; do
        [ "$(grep -cE "^image-layers: layer $i/3 [0-9a-f]{12}: fetched [0-9.]+ [kMG]?B$" <<<"$stderr")" = 1 ] ||
            fail "layer $i: $stderr"
    done
    [ "$(wc -l <<<"$stderr")" = 3 ] || fail "stderr: $stderr"
    [[ "$stderr" != *$'\033'* ]] || fail "escapes without a terminal: $stderr"
    # On a terminal (script(1) gives one): the same lines, and the rows of
    # the layers in flight drawn below them, then cleared.
    command -v script >/dev/null || skip "script(1) is not installed"
    S=$BATS_TEST_TMPDIR/store-tty
    run script -qec "KAGO_IMAGE_JOBS=3 $KAGO_BIN/image-layers --store $S --pull $REGISTRY/kago/test:1 >/dev/null" /dev/null
    assert_success
    for i in 1 2 3; do
        [[ "$output" == *"image-layers: layer $i/3 "*": fetched "* ]] || fail "layer $i: $output"
    done
    [[ "$output" == *$'\033[J'* ]] || fail "the rows are never cleared: $output"
    [[ "$output" == *"/s"* ]] || fail "no bar: $output"
    # What stays on the screen: the three lines (the last write clears the rows).
    [[ "${output##*fetched}" != *"/s"* ]] || fail "a row is left: $output"
}

@test "credential helpers: credHelpers, then credsStore, in docker's config.json run docker-credential-NAME get" {
    command -v htpasswd >/dev/null || skip "htpasswd is not installed (make deps: apache2-utils)"
    local r=$BATS_TEST_TMPDIR/reg-auth bin=$BATS_TEST_TMPDIR/helpers
    mkdir -p "$r" "$bin" "$HOME/.docker"
    htpasswd -Bbn kago s3cret >"$r/htpasswd"
    registry_start "$r" "$r/htpasswd"
    push_unique kago/helped:1 kago:s3cret
    # A fake helper: logs its words and stdin, answers for this registry only.
    cat >"$bin/docker-credential-fake" <<HELPER
#!/bin/sh
server=\$(cat)
echo "\$* \$server" >>"$BATS_TEST_TMPDIR/helper.log"
if [ "\$server" = "$REGISTRY" ]; then
    echo '{"ServerURL": "$REGISTRY", "Username": "kago", "Secret": "s3cret"}'
else
    echo "credentials not found in native keychain"
    exit 1
fi
HELPER
    chmod +x "$bin/docker-credential-fake"
    printf '{"credHelpers": {"%s": "fake"}}\n' "$REGISTRY" >"$HOME/.docker/config.json"
    PATH=$bin:$PATH run img -v --pull "$REGISTRY/kago/helped:1"
    assert_success
    assert_output --partial "basic auth as kago (from $HOME/.docker/config.json, docker-credential-fake)"
    assert_equal "$(cat "$BATS_TEST_TMPDIR/helper.log")" "get $REGISTRY"
    # credsStore: the helper for every registry without an entry.
    printf '{"credsStore": "fake", "auths": {"%s": {}}}\n' "$REGISTRY" >"$HOME/.docker/config.json"
    PATH=$bin:$PATH run img --quiet --pull "$REGISTRY/kago/helped:1" from-store
    assert_success
    assert_output --partial "from-store:latest"
    # A helper that is not installed, and one that fails: errors naming it.
    printf '{"credHelpers": {"%s": "missing"}}\n' "$REGISTRY" >"$HOME/.docker/config.json"
    run img --pull "$REGISTRY/kago/helped:1" x
    assert_equal "$status" 125
    assert_output --partial "docker-credential-missing get"
    assert_output --partial "no docker-credential-missing is in PATH"
    printf '#!/bin/sh\necho "the keyring is locked" >&2\nexit 3\n' >"$bin/docker-credential-locked"
    chmod +x "$bin/docker-credential-locked"
    printf '{"credHelpers": {"%s": "locked"}}\n' "$REGISTRY" >"$HOME/.docker/config.json"
    PATH=$bin:$PATH run img --pull "$REGISTRY/kago/helped:1" x
    assert_equal "$status" 125
    assert_output --partial "docker-credential-locked get ($REGISTRY): exit status 3: the keyring is locked"
    # A helper without credentials for it: none, as without a file.
    printf '#!/bin/sh\necho "credentials not found in native keychain"\nexit 1\n' >"$bin/docker-credential-empty"
    chmod +x "$bin/docker-credential-empty"
    printf '{"credsStore": "empty"}\n' >"$HOME/.docker/config.json"
    PATH=$bin:$PATH run img --pull "$REGISTRY/kago/helped:1" x
    assert_equal "$status" 125
    assert_output --partial "the registry asks for a user and password, and none is given"
}
