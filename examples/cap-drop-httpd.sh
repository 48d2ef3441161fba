#!/bin/sh
# cap-drop-httpd.sh ROOTFS: busybox httpd on port 80 as nobody, the kago way.
# Everything in the container runs as nobody holding exactly one
# capability, net_bind_service, which the ambient set carries across
# execve, with no_new_privs and the default seccomp filter. The container
# has its own network namespace; the script fetches the page over the
# container's loopback and stops the server.
set -eu
rootfs=${1:?usage: cap-drop-httpd.sh ROOTFS (a busybox root with /var/www)}
[ "$(id -u)" = 0 ] || { echo "cap-drop-httpd.sh: run as root" >&2; exit 1; }

unshare-run --pid --mount --uts --ipc --net -- \
    mount-layers --layer "$rootfs" --tmp-upper --proc --dev --pivot -- \
    cap-drop --drop all --keep net_bind_service --seccomp default --user nobody -- \
    /bin/sh -c '
        httpd -f -p 80 -h /var/www &
        sleep 0.5
        echo "httpd (pid $!):"
        grep -E "^(Uid|CapEff|CapAmb|NoNewPrivs|Seccomp):" /proc/$!/status | sed "s/^/  /"
        echo "GET http://127.0.0.1:80/ :"
        wget -q -O - http://127.0.0.1:80/
        kill $!
    '
