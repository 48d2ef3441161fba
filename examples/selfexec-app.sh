#!/bin/sh
# selfexec-app.sh: make a single-file container and run it three ways.
#
#   examples/selfexec-app.sh [ROOTFS]
#
# ROOTFS defaults to the busybox root the tests build. The packed file is
# written to a temporary directory, copied somewhere with no kago installed,
# checked from outside with pack-selfexec --verify, and run: as the caller
# (rootless when not root), with extra arguments, and with --kago-info.
# Needs pack-selfexec on PATH.
set -eu
rootfs=${1:-${KAGO_ROOTFS:-build/rootfs-busybox}}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Pack: the root, the command, and the settings the container runs with,
#    signed with a key made for the occasion.
pack-selfexec --keygen "$work/me"
pack-selfexec -o "$work/hello.run" --sign "$work/me.key" --rootfs "$rootfs" \
    --hostname packed --env GREETING=hello --workdir /tmp -- \
    /bin/sh -c 'echo "$GREETING from $(hostname) in $(pwd) as uid $(id -u): $*"' sh

# 2. The file needs nothing else: move it away from kago, check it from
#    the outside (every byte, and the signer), and run it.
mkdir "$work/elsewhere"
mv "$work/hello.run" "$work/elsewhere/"
cache="$work/cache"
pack-selfexec --verify "$work/elsewhere/hello.run" --pubkey "$work/me.pub" >/dev/null
"$work/elsewhere/hello.run" --kago-cache "$cache" one two three

# 3. The second run finds the extracted root in the cache.
"$work/elsewhere/hello.run" --kago-cache "$cache" again

# 4. What is inside, and is it intact? (The file checking itself catches
#    corruption; only step 2's check from outside catches tampering.)
"$work/elsewhere/hello.run" --kago-info | sed -n '1,4p;/^contents/p'
"$work/elsewhere/hello.run" --kago-verify
