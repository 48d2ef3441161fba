# A registry on loopback for the pull tests: Debian's docker-registry
# (the CNCF distribution registry, v2 API), with a temporary config on
# 127.0.0.1 and a free port, its storage in a directory of the test's.
#
#   registry_start DIR [HTPASSWD]   start one; sets REGISTRY (127.0.0.1:PORT)
#                                   and REGISTRY_DIR; with HTPASSWD (bcrypt,
#                                   htpasswd -B), it asks for basic auth
#   registry_stop_all               stop every registry this file started
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
            if [ -n "$htpasswd" ]; then
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
