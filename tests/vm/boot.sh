#!/bin/bash
# boot.sh [--why FILE] [--] COMMAND [ARG...]
# Runs COMMAND as root in a throwaway qemu VM booted on Debian 12's kernel
# in pure cgroup v2 mode, and exits with COMMAND's status. The guest sees
# the host's / read-only, with the work tree read-write; COMMAND's stdout and
# stderr come back on ours, while it runs. See README.md in this directory.
#
# Exit status: COMMAND's, or
#   77   the VM cannot run here (no qemu, no kernel): the caller skips
#   124  the guest timed out (KAGO_VM_TIMEOUT) and was killed
#   125  the guest gave no exit status (boot failure, crash)
# With --why FILE, those three also write one line saying why to FILE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
why=/dev/null
if [ "${1:-}" = --why ]; then why=$2; shift 2; fi
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "usage: boot.sh [--why FILE] [--] COMMAND [ARG...]" >&2; exit 2; }

cache=${KAGO_VM_CACHE:-/var/cache/kago-tests/vm}
timeout=${KAGO_VM_TIMEOUT:-900}
qemu=${KAGO_VM_QEMU:-qemu-system-x86_64}

give_up() { # STATUS REASON
    echo "boot.sh: $2" >&2
    echo "$2" >"$why"
    exit "$1"
}

command -v "$qemu" >/dev/null || give_up 77 "$qemu not found (make deps installs qemu-system-x86)"
[ -x /bin/busybox ] || give_up 77 "/bin/busybox not found (make deps installs busybox-static)"
kdir=$("$here/kernel.sh" "$cache") || give_up 77 "no guest kernel: see the messages of kernel.sh above"
if [ -e "$kdir/vmlinux" ]; then kernel=$kdir/vmlinux; else kernel=$(echo "$kdir"/root/boot/vmlinuz-*); fi
release=$(cat "$kdir/release")

mkdir -p "$cache/runs"
find "$cache/runs" -mindepth 1 -maxdepth 1 -mtime +1 -exec rm -rf {} + 2>/dev/null || true
run=$(mktemp -d "$cache/runs/run.XXXXXX")
qpid=
cleanup() {
    [ -n "$qpid" ] && kill "$qpid" 2>/dev/null
    [ "${KAGO_VM_KEEP:-0}" = 1 ] || [ -n "${keep:-}" ] || rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$here/make-initramfs.sh" "$kdir" "$run/initramfs.cpio"
# A small sparse disk of our own, for io.max (per run: qemu locks it).
truncate -s "${KAGO_VM_DISK_SIZE:-64M}" "$run/disk.raw"

# The read-write shares: the run directory, the work tree, the build and
# bin directories in use, and KAGO_VM_RW (space-separated). A path inside
# another one is already shared.
rw=()
add_rw() {
    local p q
    p=$(realpath -m "$1")
    case "$p" in *,* | *' '*) give_up 125 "cannot share $p: commas and spaces are not supported" ;; esac
    [ -d "$p" ] || return 0
    for q in "${rw[@]}"; do
        case "$p/" in "$q"/*) return 0 ;; esac
    done
    rw+=("$p")
}
add_rw "$run"
add_rw "$top"
[ -n "${KAGO_BUILD:-}" ] && add_rw "$KAGO_BUILD/.."
[ -n "${KAGO_BIN:-}" ] && add_rw "$KAGO_BIN/.."
for p in ${KAGO_VM_RW:-}; do add_rw "$p"; done
# The guest starts in our directory: share it too when the guest would
# otherwise hide it under a file system of its own.
case "$PWD/" in /tmp/* | /run/* | /dev/*) add_rw "$PWD" ;; esac

# The job: the caller's KAGO_* and BATS_* environment, the directory, the
# command. Not PATH: the guest has the standard one with KAGO_BIN first
# (each missing directory on it costs lookups over 9p).
{
    for v in $(compgen -e); do
        case "$v" in KAGO_VM_*) ;; KAGO_* | BATS_*) declare -p "$v" ;; esac
    done
    cwd=$PWD
    declare -p cwd
    cmd=("$@")
    declare -p cmd
} >"$run/job"
# Files the guest copies to RAM and binds over themselves before the
# command (guest.sh): under emulation, each open over 9p is a slow round trip
# to qemu, and bats opens these in every test. Executables bring their
# shared libraries. Each one costs a bind mount at boot: keep it short.
# KAGO_VM_PIN= pins nothing.
pin_default="/etc/ld.so.cache /usr/bin/bats /usr/lib/bats-core
    /usr/libexec/bats-core /usr/lib/bats /usr/bin/bash /usr/bin/cat
    /usr/bin/date /usr/bin/mkdir /usr/bin/mktemp /usr/bin/readlink /usr/bin/rm
    /usr/bin/sort"
for p in ${KAGO_VM_PIN-$pin_default}; do
    [ -e "$p" ] || continue
    p=$(realpath "$p")
    echo "$p"
    if [ -f "$p" ] && [ -x "$p" ]; then
        ldd "$p" 2>/dev/null | grep -o '/[^ ]*' | xargs -r realpath || true
    fi
done | sort -u >"$run/pin"
: >"$run/stdout"
# The guest kernel's module requests go here (see guest.sh).
printf '#!/bin/sh\nexec /sbin/modprobe -d %s "$@"\n' "$kdir/root" >"$run/modprobe"
chmod +x "$run/modprobe"
: >"$run/stderr"

shares=()
i=0
for p in "${rw[@]}"; do
    shares+=(-virtfs "local,path=$p,mount_tag=rw$i,security_model=passthrough,multidevs=remap")
    i=$((i + 1))
done
rwlist=$(IFS=,; echo "${rw[*]}")
append="cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 console=ttyS0 panic=-1 rdinit=/init"
append+=" ${KAGO_VM_APPEND-quiet mitigations=off}"
append+=" KAGO_VM_RW=$rwlist"
[ -n "${KAGO_VM_RW_CACHE:-}" ] && append+=" KAGO_VM_RW_CACHE=$KAGO_VM_RW_CACHE"
[ -n "${KAGO_VM_MSIZE:-}" ] && append+=" KAGO_VM_MSIZE=$KAGO_VM_MSIZE"
append+=" KAGO_VM_STAGE2=$here/guest.sh KAGO_VM_OUT=$run"

start=$(date +%s%N)
timeout -k 10 "$timeout" "$qemu" \
    -nodefaults -no-user-config -display none -no-reboot \
    -machine "${KAGO_VM_MACHINE:-q35}" -accel "${KAGO_VM_ACCEL:-tcg,thread=multi}" -cpu max \
    -smp "${KAGO_VM_CPUS:-2}" -m "${KAGO_VM_MEM:-1G}" \
    -kernel "$kernel" -initrd "$run/initramfs.cpio" -append "$append" \
    -serial "file:$run/console.log" \
    -virtfs local,path=/,mount_tag=root,security_model=passthrough,readonly=on,multidevs=remap \
    "${shares[@]}" \
    -drive "file=$run/disk.raw,format=raw,if=none,id=disk0,cache=unsafe" \
    -device virtio-blk-pci,drive=disk0 \
    >"$run/qemu.log" 2>&1 &
qpid=$!
tail -n +1 -s 0.2 --pid=$qpid -F "$run/stdout" 2>/dev/null &
tail -n +1 -s 0.2 --pid=$qpid -F "$run/stderr" >&2 2>/dev/null &
set +e
wait $qpid
qrc=$?
qpid=
wait
set -e
ms=$((($(date +%s%N) - start) / 1000000))
printf 'boot.sh: the VM ran for %d.%d s\n' $((ms / 1000)) $((ms % 1000 / 100)) >&2

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    keep=1
    tail -5 "$run/console.log" >&2
    give_up 124 "the guest timed out after $timeout s (KAGO_VM_TIMEOUT); kept $run"
fi
if [ ! -e "$run/rc" ]; then
    keep=1
    tail -20 "$run/qemu.log" "$run/console.log" "$run/guest.log" >&2 2>/dev/null || true
    give_up 125 "the guest gave no exit status (qemu status $qrc); kept $run"
fi
exit "$(cat "$run/rc")"
