#!/bin/sh
# net-setup-nat.sh: two containers on a bridge of their own, one serving and
# one fetching, and the host fetching the same page through a published
# port; with -v, every netlink and nftables message is printed.
#
#   net-setup --veth --bridge B   a veth pair, eth0 inside on bridge B
#   --publish 127.0.0.1:P:80      a DNAT rule in table inet kago
#
# BRIDGE, SUBNET and PORT (default kgdemo0, 10.250.77.0/24, 18077) choose
# the network. Needs root. Nothing is left behind: the rules, leases, veths
# and the bridge go when the containers exit.
#   examples/net-setup-nat.sh
set -eu
bridge=${BRIDGE:-kgdemo0} subnet=${SUBNET:-10.250.77.0/24} port=${PORT:-18077}
here=$(cd "$(dirname "$0")" && pwd)
command -v net-setup >/dev/null 2>&1 || PATH="$here/../bin:$PATH"
www=$(mktemp -d "${TMPDIR:-/tmp}/kago-www.XXXXXX")
echo "hello from a kago container" >"$www/index.html"
net=${subnet%/*} net=${net%.*}

KAGO_NAME=kgdemo-srv net-setup --veth --bridge "$bridge" --subnet "$subnet" --address "$net.10" \
    --publish "127.0.0.1:$port:80" -- busybox httpd -f -p 80 -h "$www" &
server=$!
trap 'kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$www"' EXIT

sleep 0.5
echo "from another container on $bridge:"
KAGO_NAME=kgdemo-cli net-setup --veth --bridge "$bridge" --subnet "$subnet" -- \
    sh -c "cat \$KAGO_STATE_DIR/ip; busybox wget -q -O - http://$net.10/"
echo "from the host, through 127.0.0.1:$port:"
busybox wget -q -O - "http://127.0.0.1:$port/"
