#!/bin/bash
# Stage 2 in the guest: PID 1 after switch_root, on the host's / (read-only
# over 9p) with the work tree read-write. KAGO_VM_OUT is the run directory
# boot.sh made; its file `job` gives the environment, the directory and the
# command. The command's stdout, stderr and exit status go to
# KAGO_VM_OUT/{stdout,stderr,rc}, then the guest powers off.
#
# Every exec costs a lot under emulation: builtins where they will do.
# As PID 1, bash also reaps the orphans the tests leave.
out=$KAGO_VM_OUT
exec </dev/null >"$out/guest.log" 2>&1

echo kago-vm >/proc/sys/kernel/hostname
# The host has no modules for this kernel in /lib/modules: the kernel's own
# requests (a veth link, an nftables table) go to boot.sh's modprobe
# wrapper, which looks in the unpacked package.
[ -x "$out/modprobe" ] && echo "$out/modprobe" >/proc/sys/kernel/modprobe

# As systemd does on a pure v2 system: every controller is enabled in the
# root's subtree_control, so that a child cgroup can use them.
read -ra controllers </sys/fs/cgroup/cgroup.controllers
for c in "${controllers[@]}"; do
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "kago-vm: cannot enable the $c controller"
done

# The attached disk, for io.max (boot.sh attaches one virtio disk).
disk=
[ -b /dev/vda ] && disk=/dev/vda

(
    for v in $(compgen -e); do unset "$v"; done
    # No LANG: a UTF-8 locale costs each process some thirty opens over 9p.
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root TERM=dumb KAGO_IN_VM=1 KAGO_VM_DISK="$disk"
    source "$out/job" || exit 125
    [ -n "${KAGO_BIN:-}" ] && PATH=$KAGO_BIN:$PATH
    cd "$cwd" && exec "${cmd[@]}"
) >"$out/stdout" 2>"$out/stderr"
echo $? >"$out/rc"
# Debian's busybox-static from the host (it syncs first); failing that, the
# kernel powers off by itself when PID 1 exits (panic=-1, and qemu runs
# with -no-reboot).
/bin/busybox poweroff -f
exit 0
