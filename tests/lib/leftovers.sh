#!/bin/bash
# Prints the host state that kago may create, one item per line, sorted:
# mounts, network interfaces, cgroups, nftables tables, named network
# namespaces and state directories. Two runs are compared to find what a
# test left behind.
{
    awk '{print "mount " $5}' /proc/self/mountinfo
    for l in /sys/class/net/*; do echo "link ${l##*/}"; done
    find /sys/fs/cgroup -mindepth 1 -maxdepth 6 -type d -name 'kago*' 2>/dev/null | sed 's/^/cgroup /'
    find /sys/fs/cgroup -mindepth 2 -maxdepth 6 -type d -path '*/kago/*' 2>/dev/null | sed 's/^/cgroup /'
    nft list tables 2>/dev/null | sed 's/^/nft /'
    ls -A /run/netns 2>/dev/null | sed 's/^/netns /'
    ls -A /run/kago 2>/dev/null | sed 's/^/state /'
    for d in /tmp/kago-[0-9]* /run/user/*/kago; do
        [ -d "$d" ] && ls -A "$d" | sed "s|^|state $d/|"
    done
} | sort -u
