#!/bin/sh
# net-setup-rootless-web.sh ROOTFS [HOSTPORT]: without root, busybox httpd in
# a container, its port 8080 published on the host's HOSTPORT (default 8080)
# by pasta (or slirp4netns), fetched from the host with wget, then stopped.
#
# The order of the chain is what makes this work:
#   net-setup --user-mode    makes the user and network namespaces, and
#                            attaches pasta to them from the host side
#   unshare-run --user --map-root (no --net!)
#                            nests its own user namespace and keeps the
#                            network namespace that pasta serves
#   mount-layers             the busybox root
#
#   examples/net-setup-rootless-web.sh build/rootfs-busybox 8080
set -eu
rootfs=${1:?usage: net-setup-rootless-web.sh ROOTFS [HOSTPORT]}
port=${2:-8080}
here=$(cd "$(dirname "$0")" && pwd)
command -v net-setup >/dev/null 2>&1 || PATH="$here/../bin:$PATH"

net-setup --user-mode --publish "$port:8080" -- \
    unshare-run --user --map-root --pid --mount --uts --hostname web -- \
    mount-layers --layer "$rootfs" --tmp-upper --proc --dev --pivot -- \
    /usr/sbin/httpd -f -p 8080 -h /var/www &
container=$!
trap 'kill -TERM "$container" 2>/dev/null || true; wait "$container" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

i=0
until page=$(wget -q -O - "http://127.0.0.1:$port/" 2>/dev/null); do
    i=$((i + 1))
    if [ $i -ge 50 ] || ! kill -0 "$container" 2>/dev/null; then
        echo "net-setup-rootless-web.sh: no answer on 127.0.0.1:$port" >&2
        exit 1
    fi
    sleep 0.2
done
echo "wget http://127.0.0.1:$port/ from the host (uid $(id -u)):"
echo "$page"
