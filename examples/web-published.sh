#!/bin/sh
# web-published.sh ROOTFS [HOSTPORT]: busybox httpd in a container, its
# port 80 published on the host's 127.0.0.1:HOSTPORT (default 8080), fetched
# from the host with wget, then stopped.
#
#   net-setup --veth --publish    a veth on a bridge, and a DNAT rule in the
#                                 nftables table `kago` for the port
#   unshare-run, mount-layers     the container
#   cap-drop --user nobody --keep net_bind_service
#                                 httpd runs as nobody, yet may bind port 80
#
# BRIDGE and SUBNET (default kago0 and 10.88.0.0/16) choose the network.
#   examples/web-published.sh build/rootfs-busybox 8080
set -eu
rootfs=${1:?usage: web-published.sh ROOTFS [HOSTPORT]}
port=${2:-8080}
bridge=${BRIDGE:-kago0} subnet=${SUBNET:-10.88.0.0/16}
here=$(cd "$(dirname "$0")" && pwd)
command -v unshare-run >/dev/null 2>&1 || PATH="$here/../bin:$PATH"
log=$(mktemp "${TMPDIR:-/tmp}/kago-web.XXXXXX")

net-setup --veth --bridge "$bridge" --subnet "$subnet" --publish "127.0.0.1:$port:80" -- \
    unshare-run --pid --mount --uts --ipc --hostname web -- \
    mount-layers --layer "$rootfs" --tmp-upper --proc --dev --pivot -- \
    cap-drop --user nobody --keep net_bind_service --seccomp default -- \
    httpd -f -v -p 80 -h /var/www >"$log" 2>&1 &
container=$!
cleanup() {
    kill -TERM "$container" 2>/dev/null || true
    wait "$container" 2>/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait for the server (up to 10 s), then fetch the page from the host.
i=0
until page=$(wget -q -T 1 -O - "http://127.0.0.1:$port/" 2>/dev/null); do
    i=$((i + 1))
    if [ $i -ge 50 ] || ! kill -0 "$container" 2>/dev/null; then
        echo "web-published.sh: no answer on 127.0.0.1:$port" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.2
done
echo "wget http://127.0.0.1:$port/ from the host:"
echo "$page"
