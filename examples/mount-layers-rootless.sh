#!/bin/sh
# mount-layers-rootless.sh ROOTFS: the same container for an unprivileged
# user. unshare-run maps the caller to root in a new user namespace; the
# overlay is mounted there (Linux 5.11+), /dev gets the host's devices bound
# instead of made, and the upper is a tmpfs, gone at exit. A --tmpfs over
# /tmp gives the container a place to write even when the image's files
# belong to a user the namespace does not map.
set -eu
rootfs=${1:?usage: mount-layers-rootless.sh ROOTFS}
target=$(mktemp -d "${TMPDIR:-/tmp}/mount-layers-rootless.XXXXXX")
trap 'rmdir "$target" 2>/dev/null || true' EXIT

unshare-run --user --map-root --pid --mount --uts --ipc -- \
    mount-layers --layer "$rootfs" --tmp-upper --proc --dev --tmpfs /tmp:64M:1777 \
        --target "$target" --pivot -- \
    /bin/sh -c 'echo "uid in the container: $(id -u)"; echo "/dev: $(ls /dev | tr "\n" " ")"
                echo "mounts:"; awk "{ for (i = 7; \$i != \"-\"; i++); print \"  \" \$5, \$(i + 1) }" /proc/self/mountinfo'
