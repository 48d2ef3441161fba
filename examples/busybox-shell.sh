#!/bin/sh
# busybox-shell.sh ROOTFS [COMMAND [ARG...]]: a shell in a container made
# from a busybox root file system. The smallest useful kago chain:
#
#   unshare-run   new PID, mount, UTS, IPC and network namespaces, hostname
#   mount-layers  ROOTFS under a tmpfs upper (changes vanish at exit),
#                 /proc, a minimal /dev, pivot_root
#   cap-drop      six capabilities a shell uses (fewer than the default
#                 set), no_new_privs, seccomp
#
# Without COMMAND it starts an interactive /bin/sh. Run it as root; see
# debian-rootless.sh for the same without root.
#   examples/busybox-shell.sh build/rootfs-busybox
#   examples/busybox-shell.sh build/rootfs-busybox sh -c 'hostname; ps'
set -eu
rootfs=${1:?usage: busybox-shell.sh ROOTFS [COMMAND [ARG...]]}
shift
[ $# -gt 0 ] || set -- /bin/sh
here=$(cd "$(dirname "$0")" && pwd)
command -v unshare-run >/dev/null 2>&1 || PATH="$here/../bin:$PATH"

exec unshare-run --pid --mount --uts --ipc --net --hostname busybox -- \
    mount-layers --layer "$rootfs" --tmp-upper --proc --dev --pivot -- \
    cap-drop --keep chown,dac_override,fowner,kill,setuid,setgid --seccomp default -- \
    "$@"
