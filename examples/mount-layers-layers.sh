#!/bin/sh
# mount-layers-layers.sh ROOTFS [STATE]: an image made of layers, the way a
# container engine stacks them. ROOTFS is the base (a busybox or Debian root
# filesystem); a second layer with an "application" is made on the fly, and
# the changes the container makes are kept in STATE/upper, so that the next
# run sees them. Run it twice to see the counter go up.
set -eu
rootfs=${1:?usage: mount-layers-layers.sh ROOTFS [STATE]}
state=${2:-${TMPDIR:-/tmp}/mount-layers-example}
[ "$(id -u)" = 0 ] || { echo "$0: run as root (or see mount-layers-rootless.sh)" >&2; exit 1; }

# The application layer: one script, above the base.
mkdir -p "$state/app/usr/local/bin"
cat >"$state/app/usr/local/bin/hello" <<'S'
#!/bin/sh
n=$(cat /var/lib/hello/count 2>/dev/null || echo 0)
n=$((n + 1))
mkdir -p /var/lib/hello && echo "$n" >/var/lib/hello/count
echo "hello from a layered root, run number $n, as $(id -un) in $(pwd)"
echo "layers, top first: $(grep -o 'lowerdir+=[^,]*' /proc/self/mountinfo | cut -d= -f2 | tr '\n' ' ')"
S
chmod 755 "$state/app/usr/local/bin/hello"

exec unshare-run --pid --mount --uts --ipc --hostname layered -- \
    mount-layers --layer "$rootfs" --layer "$state/app" --upper "$state/upper" \
        --proc --dev --tmpfs /tmp --mkdir /srv/data --chdir /srv/data --pivot -- \
    /bin/sh /usr/local/bin/hello
