#!/bin/sh
# debian-rootless.sh [ROOTFS [COMMAND [ARG...]]]: a Debian container run by
# an ordinary user, with no privilege at all.
#
# ROOTFS is a Debian root file system, for example one made (as root, once) by
#   debootstrap --variant=minbase bookworm /var/cache/kago-tests/debian-bookworm
# (tests/make-debian-rootfs.sh does that). The default is that directory.
#
#   unshare-run --user --map-root   your uid becomes root inside a user
#                                   namespace; the other namespaces follow
#   mount-layers                    the Debian tree under a tmpfs upper, so
#                                   apt and dpkg can write; /proc, /dev, pivot
#   cap-drop                        Docker's capability set (of the user
#                                   namespace), no_new_privs, seccomp
#
#   examples/debian-rootless.sh
#   examples/debian-rootless.sh /srv/bookworm bash -c 'apt-get --version'
set -eu
rootfs=${1:-/var/cache/kago-tests/debian-bookworm}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- /bin/bash -c '. /etc/os-release; echo "$PRETTY_NAME, uid $(id -u) inside"; apt-get --version | head -1'
[ -x "$rootfs/bin/sh" ] || { echo "debian-rootless.sh: $rootfs: not a root file system (see the comment at the top)" >&2; exit 125; }
here=$(cd "$(dirname "$0")" && pwd)
command -v unshare-run >/dev/null 2>&1 || PATH="$here/../bin:$PATH"

exec unshare-run --user --map-root --pid --mount --uts --ipc --net --hostname debian -- \
    mount-layers --layer "$rootfs" --tmp-upper --proc --dev --pivot -- \
    cap-drop --seccomp default -- \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM="${TERM:-dumb}" "$@"
