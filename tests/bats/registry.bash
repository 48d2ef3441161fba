# A registry on loopback for the pull tests: Debian's docker-registry
# (the CNCF distribution registry, v2 API), with a temporary config on
# 127.0.0.1 and a free port, its storage in a directory of the test's.
#
#   registry_start DIR [HTPASSWD]   start one; sets REGISTRY (127.0.0.1:PORT)
#                                   and REGISTRY_DIR; with HTPASSWD (bcrypt,
#                                   htpasswd -B), it asks for basic auth
#                                   (REGISTRY_AUTH_YAML, when set, is the
#                                   auth: section's body instead)
#   token_server_start DIR USER:PASS [REFRESH]
#                                   a token server (tests/lib/token-server.py)
#                                   and its key and certificate; it also takes
#                                   the identity token REFRESH (OAuth2 POST);
#                                   sets REGISTRY_AUTH_YAML for registry_start
#                                   and TOKEN_LOG
#   proxy_start DIR UPSTREAM --cut|--die [PORT]  tests/lib/registry-proxy.py
#                                   in front of UPSTREAM; sets PROXY, PROXY_LOG
#   registry_stop_all               stop every registry, token server and
#                                   proxy this file started
#   require_registry                skip unless docker-registry is installed
#
# Each registry's pid goes to $BATS_FILE_TMPDIR/registries, so that
# teardown_file stops them whatever failed.

DOCKER_REGISTRY=${DOCKER_REGISTRY:-/usr/bin/docker-registry}

require_registry() {
    [ -x "$DOCKER_REGISTRY" ] || skip "docker-registry is not installed (make deps: Debian's docker-registry)"
    command -v skopeo >/dev/null || skip "skopeo is not installed (make deps)"
    command -v curl >/dev/null || skip "curl is not installed"
}

# A port nobody listens on now (the registry binds it a moment later).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

registry_start() {
    local dir=$1 htpasswd=${2:-} port try pid code
    mkdir -p "$dir/storage"
    for try in 1 2 3 4 5; do
        port=$(free_port)
        {
            echo "version: 0.1"
            echo "log: {level: warn, accesslog: {disabled: true}}"
            echo "storage:"
            echo "  filesystem: {rootdirectory: $dir/storage}"
            echo "  delete: {enabled: true}"
            echo "http: {addr: 127.0.0.1:$port, secret: kago-bats}"
            if [ -n "${REGISTRY_AUTH_YAML:-}" ]; then
                echo "auth:"
                echo "$REGISTRY_AUTH_YAML"
            elif [ -n "$htpasswd" ]; then
                echo "auth:"
                echo "  htpasswd: {realm: kago, path: $htpasswd}"
            fi
        } >"$dir/config.yml"
        # fd 3 closed: bats waits for it, the registry must not hold it.
        "$DOCKER_REGISTRY" serve "$dir/config.yml" >"$dir/log" 2>&1 3>&- &
        pid=$!
        echo "$pid" >>"$BATS_FILE_TMPDIR/registries"
        for _ in $(seq 100); do
            code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" 2>/dev/null) || true
            if [ "$code" = 200 ] || [ "$code" = 401 ]; then
                REGISTRY=127.0.0.1:$port
                REGISTRY_DIR=$dir
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    echo "docker-registry did not start:" >&2
    cat "$dir/log" >&2
    return 1
}

# Wait for a helper's PORTFILE; the helper's pid goes to the list teardown stops.
wait_portfile() {
    local file=$1 pid=$2
    echo "$pid" >>"$BATS_FILE_TMPDIR/registries"
    for _ in $(seq 200); do
        [ -s "$file" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "$file: the helper did not start" >&2
    return 1
}

token_server_start() {
    local dir=$1 creds=$2 refresh=${3:-} port
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=kago-token \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null || return 1
    TOKEN_LOG=$dir/log
    rm -f "$dir/port"
    python3 "$KAGO_TOP/tests/lib/token-server.py" "$dir/port" "$TOKEN_LOG" "$dir/key.pem" \
        "$dir/cert.pem" kago-issuer "$creds" ${refresh:+"$refresh"} 2>"$dir/stderr" 3>&- &
    wait_portfile "$dir/port" $! || return 1
    port=$(cat "$dir/port")
    REGISTRY_AUTH_YAML="  token: {realm: 'http://127.0.0.1:$port/token', service: kago-registry, issuer: kago-issuer, rootcertbundle: $dir/cert.pem}"
}

proxy_start() {
    local dir=$1 upstream=$2 mode=$3 port=${4:-0}
    mkdir -p "$dir"
    PROXY_LOG=$dir/log
    rm -f "$dir/port"
    python3 "$KAGO_TOP/tests/lib/registry-proxy.py" "$upstream" "$dir/port" "$PROXY_LOG" "$mode" \
        "$port" 2>"$dir/stderr" 3>&- &
    PROXY_PID=$!
    wait_portfile "$dir/port" $PROXY_PID || return 1
    PROXY=127.0.0.1:$(cat "$dir/port")
}

registry_stop_all() {
    local f=$BATS_FILE_TMPDIR/registries pid
    [ -s "$f" ] || return 0
    while read -r pid; do
        kill "$pid" 2>/dev/null || true
    done <"$f"
    while read -r pid; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null || true
    done <"$f"
    rm -f "$f"
}

# OCI_LAYOUT:REF to REGISTRY/REPO:TAG, plain http, with optional USER:PASS.
registry_push() {
    local src=$1 dst=$2 creds=${3:-}
    skopeo copy -q --dest-tls-verify=false ${creds:+--dest-creds "$creds"} "oci:$src" "docker://$REGISTRY/$dst" >&2
}
