#!/bin/bash
# man-examples.sh: run the commands a man page shows, so that its examples
# never go stale. Used by tests/bats/kago7.bats on man/kago.7.
#
#   man-examples.sh sections PAGE          the titles of the sections that hold commands
#   man-examples.sh commands PAGE [TITLE]  the commands, one per line (unescaped)
#   man-examples.sh run PAGE TITLE         run a section's commands, check each one
#   man-examples.sh show PAGE TITLE        run them and print what each printed,
#                                          to paste into the page
#
# What is a command. In the roff source, inside an .EX/.EE block:
#   - a line starting with "# " is a command run as root, "$ " one run as
#     the unprivileged user 65534 (nobody);
#   - a line ending in "\e" (a shown backslash) continues on the next line;
#   - the other lines are the output the page shows; they are not compared
#     literally (PIDs, times and addresses change), but
#   - comment lines after a command say what must hold:
#       .\" expect: ERE     one line of the output (stdout and stderr) matches ERE
#       .\" status: N       the exit status is N (default 0)
#     They apply to the last command before them.
# The commands of one section (.SH or .SS) run in order in one bash, so
# that a variable or a cd carries over, in a scratch directory where
# ./rootfs is a copy of a busybox root file system ($KAGO_ROOTFS). Each section is
# self-contained.
# MAN_EXAMPLES_SUBST="FROM=TO" replaces FROM by TO in each command before it
# runs: the page names a registry at localhost:5000, a test runs one on a
# free port.
set -u

usage() { echo "usage: man-examples.sh sections|commands|run|show PAGE [TITLE]" >&2; exit 2; }
[ $# -ge 2 ] || usage
mode=$1 page=$2 want=${3:-}
[ -r "$page" ] || { echo "man-examples.sh: $page: cannot read" >&2; exit 2; }

# parse PAGE: records "TITLE<TAB>KIND<TAB>TEXT", KIND one of
# cmd-root, cmd-user, expect, status, output
parse() {
    awk '
    function unescape(s) {
        gsub(/\\f[BIRP]/, "", s); gsub(/\\&/, "", s)
        gsub(/\\\(aq/, "\047", s); gsub(/\\\(dq/, "\"", s); gsub(/\\\(ga/, "`", s)
        gsub(/\\\(ti/, "~", s); gsub(/\\\(ha/, "^", s); gsub(/\\-/, "-", s)
        gsub(/\\\\/, "\001", s); gsub(/\\e/, "\\", s); gsub(/\001/, "\\", s)
        return s
    }
    /^\.S[HS] / { t = $0; sub(/^\.S[HS] +/, "", t); gsub(/"/, "", t); title = t; next }
    /^\.EX/ { inex = 1; cont = 0; next }
    /^\.EE/ { inex = 0; next }
    /^\.\\" expect: / { s = $0; sub(/^\.\\" expect: /, "", s); print title "\texpect\t" s; next }
    /^\.\\" status: / { s = $0; sub(/^\.\\" status: /, "", s); print title "\tstatus\t" s; next }
    !inex { next }
    /^\./ { next }
    {
        line = $0
        if (cont) { kind = ckind; text = line; sub(/^[ \t]+/, "", text) }
        else if (line ~ /^# /) { kind = "cmd-root"; text = substr(line, 3) }
        else if (line ~ /^\$ /) { kind = "cmd-user"; text = substr(line, 3) }
        else { print title "\toutput\t" unescape(line); next }
        if (text ~ /\\e$/) { cont = 1; ckind = kind; sub(/[ \t]*\\e$/, "", text); kind = kind "-cont" }
        else cont = 0
        print title "\t" kind "\t" unescape(text)
    }' "$page"
}

# join continuation lines: "cmd-root-cont" parts are followed by the rest
records() {
    parse | awk -F'\t' -v OFS='\t' '
    $2 ~ /-cont$/ { k = $2; sub(/-cont$/, "", k); if (acc == "") { kind = k; t = $1 } acc = acc $3 " "; next }
    acc != "" && $2 ~ /^cmd-/ { print t, kind, acc $3; acc = ""; next }
    { print }'
}

case $mode in
sections)
    records | awk -F'\t' '$2 ~ /^cmd-/ && !seen[$1]++ { print $1 }'
    ;;
commands)
    records | awk -F'\t' -v w="$want" '$2 ~ /^cmd-/ && (w == "" || $1 == w) { print $3 }'
    ;;
run | show)
    [ -n "$want" ] || usage
    : "${KAGO_ROOTFS:?KAGO_ROOTFS: the busybox rootfs}"
    work=$(mktemp -d /tmp/kago7-XXXXXX)
    chmod 755 "$work"
    cp -a "$KAGO_ROOTFS" "$work/rootfs"
    # the unprivileged user's home, temporary and cache directories
    mkdir -m 700 "$work/.home" && chown 65534:65534 "$work/.home"
    trap 'rm -rf "$work"' EXIT
    n=0 failed=0
    cmds=() kinds=() expects=() statuses=() shown=()
    while IFS=$'\t' read -r title kind text; do
        [ "$title" = "$want" ] || continue
        case $kind in
        cmd-root | cmd-user)
            cmds[n]=$text kinds[n]=$kind expects[n]='' statuses[n]=0 shown[n]=''
            n=$((n + 1)) ;;
        expect) [ $n -gt 0 ] && expects[n - 1]+="$text"$'\n' ;;
        status) [ $n -gt 0 ] && statuses[n - 1]=$text ;;
        output) [ $n -gt 0 ] && shown[n - 1]+="$text"$'\n' ;;
        esac
    done < <(records)
    [ $n -gt 0 ] || { echo "man-examples.sh: no commands in section '$want' of $page" >&2; exit 2; }
    cd "$work" || exit 2
    if [ -n "${MAN_EXAMPLES_SUBST:-}" ]; then
        for ((i = 0; i < n; i++)); do
            cmds[i]=${cmds[i]//"${MAN_EXAMPLES_SUBST%%=*}"/"${MAN_EXAMPLES_SUBST#*=}"}
        done
    fi
    for ((i = 0; i < n; i++)); do
        out="$work/.out.$i"
        if [ "${kinds[i]}" = cmd-root ]; then
            { eval "${cmds[i]}"; } >"$out" 2>&1 </dev/null
            st=$?
        else
            setpriv --reuid=65534 --regid=65534 --clear-groups -- \
                env -i PATH="$PATH" HOME="$work/.home" TMPDIR="$work/.home" \
                sh -c "${cmds[i]}" >"$out" 2>&1 </dev/null
            st=$?
        fi
        prompt='#'; [ "${kinds[i]}" = cmd-user ] && prompt='$'
        if [ "$mode" = show ]; then
            echo "$prompt ${cmds[i]}"
            cat "$out"
            echo "   [status $st]"
            continue
        fi
        bad=''
        [ "$st" = "${statuses[i]}" ] || bad="exit status $st, expected ${statuses[i]}"
        while IFS= read -r re; do
            [ -n "$re" ] || continue
            grep -qE -- "$re" "$out" || bad="${bad:+$bad; }no line matches /$re/"
        done <<<"${expects[i]}"
        if [ -n "$bad" ]; then
            failed=$((failed + 1))
            echo "kago(7), section '$want': FAILED: $prompt ${cmds[i]}"
            echo "  $bad"
            echo "  the page shows:"; printf '%s' "${shown[i]}" | sed 's/^/    | /'
            echo "  it printed:"; sed 's/^/    | /' "$out"
        else
            echo "ok: $prompt ${cmds[i]}"
        fi
    done
    [ $failed -eq 0 ]
    ;;
*) usage ;;
esac
