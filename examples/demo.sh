#!/bin/sh
# demo.sh ROOTFS: start a container in a busybox root filesystem and let it
# print its own isolation: its hostname, `ps` showing the command as PID 1's
# child in a fresh PID namespace, and its mounts. Run by `make demo`.
set -eu
rootfs=${1:?usage: demo.sh ROOTFS}
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (or see examples/*rootless*.sh)" >&2; exit 1; }

echo "== host: $(hostname), $(ps -e --no-headers | wc -l) processes, $(wc -l </proc/self/mountinfo) mounts"
echo "== container:"
exec unshare-run --pid --mount --uts --ipc --net --hostname kago-demo -- \
    mount-layers --layer "$rootfs" --tmp-upper --proc --dev --pivot -- \
    cap-drop --drop all --seccomp default -- \
    /bin/sh -c '
        echo "hostname: $(hostname)"
        echo "processes (ps):"; ps -o pid,user,comm
        echo "mounts (/proc/self/mountinfo):"
        awk "{ for (i = 7; i <= NF; i++) if (\$i == \"-\") { print \"  \" \$5 \" (\" \$(i+1) \")\"; break } }" /proc/self/mountinfo
        echo "network links:"; ls /sys/class/net 2>/dev/null || ip link 2>/dev/null | sed -n "s/^[0-9]*: \([^:]*\):.*/  \1/p"
        grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status
        touch /written-in-the-container && echo "wrote /written-in-the-container (a tmpfs upper: gone at exit)"'
