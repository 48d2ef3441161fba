#!/bin/sh
# cg-limit-chain.sh ROOTFS: the first link of a container chain. cg-limit
# puts everything that follows in one cgroup (256 MiB, 64 processes, one CPU,
# 1024 open files), and stays outside as the supervisor: when the container
# ends it kills what is left, reports what the limits did, and removes the
# cgroup. Inside, the container reads its own limits back.
set -eu
rootfs=${1:?usage: cg-limit-chain.sh ROOTFS}
target=$(mktemp -d "${TMPDIR:-/tmp}/cg-limit-chain.XXXXXX")
trap 'rmdir "$target" 2>/dev/null || true' EXIT

cg-limit --memory 256M --pids 64 --cpus 1 --rlimit nofile=1024 -- \
    unshare-run --pid --mount --uts --ipc --hostname limited -- \
    mount-layers --layer "$rootfs" --tmp-upper --proc --dev --target "$target" --pivot -- \
    cap-drop --drop all -- \
    /bin/sh -c 'echo "hostname: $(hostname)"; echo "open files: $(ulimit -n)"
                echo "cgroup: $(cat /proc/self/cgroup | tail -1)"'
