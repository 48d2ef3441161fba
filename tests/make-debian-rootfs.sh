#!/bin/sh
# make-debian-rootfs.sh DIR: a Debian 12 minbase rootfs from debootstrap,
# built once and cached (the tests keep it under /var/cache/kago-tests).
# make-debian-rootfs.sh --print-mirror: print the mirror it would use.
#
# The mirror is the one apt is configured with for bookworm: the first
# enabled "deb" source of that suite in /etc/apt/sources.list, then
# /etc/apt/sources.list.d/*.list, then the deb822 files
# /etc/apt/sources.list.d/*.sources (KAGO_APT_DIR replaces /etc/apt).
# KAGO_DEBIAN_MIRROR names one explicitly. There is no built-in mirror:
# with none configured it fails and says so.
set -eu
suite=bookworm
apt=${KAGO_APT_DIR:-/etc/apt}

# One-line format: deb [options] URI SUITE COMPONENT...
from_list() {
    awk -v suite="$suite" '
        $1 != "deb" { next }
        { i = 2
          if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
          if ($(i + 1) == suite) { print $i; exit } }' "$@"
}
# deb822: stanzas separated by blank lines, with Types, URIs, Suites and
# Enabled fields.
from_sources() {
    awk -v suite="$suite" '
        function flush() {
            if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && enabled != "no" && uri != "") {
                print uri; found = 1; exit
            }
            types = ""; suites = ""; uri = ""; enabled = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        tolower($1) == "types:" { $1 = ""; types = $0; sub(/^ +/, "", types) }
        tolower($1) == "suites:" { $1 = ""; suites = $0; sub(/^ +/, "", suites) }
        tolower($1) == "uris:" { uri = $2 }
        tolower($1) == "enabled:" { enabled = tolower($2) }
        END { if (!found) flush() }' "$@"
}
mirror() {
    if [ -n "${KAGO_DEBIAN_MIRROR:-}" ]; then echo "$KAGO_DEBIAN_MIRROR"; return; fi
    m=''
    [ -r "$apt/sources.list" ] && m=$(from_list "$apt/sources.list")
    for f in "$apt"/sources.list.d/*.list; do
        [ -z "$m" ] && [ -r "$f" ] && m=$(from_list "$f")
    done
    for f in "$apt"/sources.list.d/*.sources; do
        [ -z "$m" ] && [ -r "$f" ] && m=$(from_sources "$f")
    done
    if [ -z "$m" ]; then
        echo "make-debian-rootfs: no Debian mirror for $suite in $apt/sources.list or $apt/sources.list.d/ (*.list, *.sources); configure apt, or set KAGO_DEBIAN_MIRROR" >&2
        return 1
    fi
    echo "$m"
}

if [ "${1:-}" = --print-mirror ]; then mirror; exit; fi
dir=${1:?usage: make-debian-rootfs.sh DIR | --print-mirror}
[ -e "$dir/.done" ] && exit 0
mirror=$(mirror) || exit 1
command -v debootstrap >/dev/null || { echo "make-debian-rootfs: debootstrap missing (make deps)" >&2; exit 1; }
mkdir -p "$(dirname "$dir")"
lock="$dir.lock"
exec 9>"$lock"
flock 9
[ -e "$dir/.done" ] && exit 0
rm -rf "$dir.tmp"
debootstrap --variant=minbase "$suite" "$dir.tmp" "$mirror" >"$dir.log" 2>&1 || {
    echo "make-debian-rootfs: debootstrap failed; see $dir.log" >&2; exit 1; }
touch "$dir.tmp/.done"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
