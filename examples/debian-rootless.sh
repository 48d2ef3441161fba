#!/bin/sh
# debian-rootless.sh [ROOTFS [COMMAND [ARG...]]]: a Debian container run by
# an ordinary user, with no privilege at all.
#
# ROOTFS is a Debian root file system owned by you, for example one made (as
# root, once) by
#   debootstrap --variant=minbase bookworm /var/cache/kago-tests/debian-bookworm
# (tests/make-debian-rootfs.sh does that) and unpacked as yourself:
#   sudo tar -C /var/cache/kago-tests/debian-bookworm -c . | examples/user-rootfs.sh ~/debian
# The default is ~/debian. A tree that root owns can be read but not changed:
# your user namespace does not map the host's root (mount-layers warns).
#
#   unshare-run --user --map-auto   your uid becomes root inside a user
#                                   namespace and your /etc/subuid range the
#                                   other users (apt's _apt, useradd's users);
#                                   --map-root (your uid only) without a range;
#                                   the other namespaces follow
#   mount-layers                    the Debian tree under a tmpfs upper, so
#                                   apt and dpkg can write; /proc, /dev, pivot
#   cap-drop                        Docker's capability set (of the user
#                                   namespace), no_new_privs, seccomp
#
# The default command writes as apt, dpkg and useradd do, so that it shows
# whether writing works: it adds a user, a file of that user, and a dpkg
# diversion (all in the tmpfs upper: nothing reaches ROOTFS).
#
#   examples/debian-rootless.sh
#   examples/debian-rootless.sh ~/bookworm bash -c 'apt-get --version'
set -eu
rootfs=${1:-$HOME/debian}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- /bin/bash -ec '. /etc/os-release; echo "$PRETTY_NAME, uid $(id -u) inside"
    useradd --create-home demo; echo "useradd: $(id demo)"
    setpriv --reuid=demo --regid=demo --init-groups touch /home/demo/file; ls -ln /home/demo
    dpkg-divert --local --no-rename --add /etc/kago-demo
    apt-get --version | head -1'
[ -x "$rootfs/bin/sh" ] || { echo "debian-rootless.sh: $rootfs: not a root file system (see the comment at the top)" >&2; exit 125; }
here=$(cd "$(dirname "$0")" && pwd)
command -v unshare-run >/dev/null 2>&1 || PATH="$here/../bin:$PATH"

# --map-auto needs a range in /etc/subuid and /etc/subgid, and newuidmap.
map=--map-root
if command -v newuidmap >/dev/null 2>&1 &&
    grep -qE "^($(id -un)|$(id -u)):" /etc/subuid 2>/dev/null && grep -qE "^($(id -un)|$(id -g)):" /etc/subgid 2>/dev/null; then
    map=--map-auto
else
    echo "debian-rootless.sh: no /etc/subuid range (or no newuidmap): --map-root, so only your uid exists inside and useradd, dpkg and apt fail to change owners" >&2
fi

exec unshare-run --user $map --pid --mount --uts --ipc --net --hostname debian -- \
    mount-layers --layer "$rootfs" --tmp-upper --proc --dev --pivot -- \
    cap-drop --seccomp default -- \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM="${TERM:-dumb}" "$@"
