#!/usr/bin/env bats
# net-setup against the real kernel. Every test runs inside network and
# mount namespaces that it creates itself (tns): the "host" of net-setup is
# that namespace, so bridges, veths and the nftables table never touch the
# real host, and traffic goes only to loopback or to the test's own
# namespaces. Names: bridges kgt*, subnets 10.250.x.0/24.
load helpers

setup_file() { kago_setup_file; }
teardown_file() { kago_teardown_file; }

setup() {
    [ "$(id -u)" = 0 ] || skip "needs root to create the test's own namespaces"
    NAME=$(printf 'kt%x' $((RANDOM * 32768 + RANDOM)))
    # readable by uid 65534 too (the rootless tests)
    WWW=$(mktemp -d /tmp/kgt-www.XXXXXX)
    echo "hello from kago" >"$WWW/index.html"
    chmod 755 "$WWW" && chmod 644 "$WWW/index.html"
    export NAME WWW
}

teardown() {
    rm -rf "${WWW:-/nonexistent}"
    # Whatever a failed test left (records naming dead supervisors).
    net-setup --gc >/dev/null 2>&1 || true
}

# Run a bash script in a new network namespace (lo up) and a private mount
# namespace: the test's "host".
tns() {
    # Background servers die with the script, even when it fails.
    unshare --net --mount --propagation private -- \
        bash -euc "trap 'kill \$(jobs -p) 2>/dev/null || true' EXIT; ip link set lo up; $KAGO_GONE; $1"
}

BB=/bin/busybox
WGET="timeout 5 $BB wget -qO-"
export BB WGET

@test "--help lists every option and exits 0; --version" {
    run net-setup --help
    assert_success
    for o in --raw --move --ifname --veth --bridge --subnet --address --address6 --mtu --nat \
        --publish --join --user-mode --map-auto --user-mode-helper --gc --dry-run --verbose; do
        assert_output --partial -- "$o"
    done
    run net-setup --version
    assert_success
    assert_output --partial "net-setup (kago)"
}

@test "an unknown option is a usage error: 125" {
    run net-setup --bogus -- true
    assert_failure 125
    assert_output --partial "Try 'net-setup --help'"
}

@test "--raw: an empty namespace with lo up; the command's status is returned" {
    run tns 'net-setup --raw -- sh -c "ip -o link | cut -d: -f2 | tr -d \" \"; ip -br addr show lo; echo \$KAGO_NETNS; exit 7"'
    assert_failure 7
    assert_line "lo"
    assert_line --regexp '^lo +UNKNOWN +127\.0\.0\.1/8'
    assert_line --regexp '^/proc/[0-9]+/ns/net$'
    refute_line --partial "eth0"
}

@test "exit 127: the command is not found" {
    run net-setup --raw -- /nonexistent/kago-cmd
    assert_failure 127
    assert_output --partial "/nonexistent/kago-cmd"
}

@test "exit 126: the command cannot be executed" {
    run net-setup --raw -- "$BATS_TEST_TMPDIR"
    assert_failure 126
}

@test "exit 128+N: the command is killed by a signal (supervised --veth)" {
    run tns 'net-setup --veth --bridge kgtb1 --subnet 10.250.1.0/24 -- sh -c "kill -TERM \$\$" || echo "status=$?"'
    assert_output --partial "status=143"
}

@test "--dry-run needs no privilege and changes nothing" {
    run as_nobody net-setup --dry-run --veth --bridge kgtdry --subnet 10.250.2.0/24 --nat --publish 18080:80 -- true
    assert_success
    assert_output --partial 'RTM_NEWLINK(ifname="kgtdry", kind="bridge"'
    assert_output --partial "(dry run)"
    assert_output --partial "NFT_MSG_NEWRULE(inet kago prerouting"
    [ ! -e /sys/class/net/kgtdry ]
}

@test "--verbose traces netlink requests with their results" {
    run tns 'net-setup -v --veth --bridge kgtv --subnet 10.250.3.0/24 -- true'
    assert_success
    assert_output --regexp 'RTM_NEWLINK\(ifname="kg[^"]*", kind="veth", peer=\{ifname="eth0", netns_fd=[0-9]+\}.*\) /\* host \*/ = 0'
    assert_output --partial 'RTM_NEWROUTE(0.0.0.0/0 via 10.250.3.1'
    assert_output --partial 'RTM_DELLINK(ifname="kgtv") /* host */ = 0'
}

@test "--join PATH enters an existing namespace; a missing one is 125" {
    run tns 'unshare --net sleep 20 & p=$!; sleep 0.3
        want=$(readlink /proc/$p/ns/net)
        got=$(net-setup --join /proc/$p/ns/net -- readlink /proc/self/ns/net)
        kill $p; [ "$want" = "$got" ] && echo same'
    assert_success
    assert_line same
    run net-setup --join kgt-no-such-netns -- true
    assert_failure 125
    assert_output --partial "--join 'kgt-no-such-netns'"
}

@test "--move IF --ifname NAME: a host interface moves in, renamed and up" {
    run tns 'ip link add kgtmv0 type veth peer name kgtmv1
        net-setup --move kgtmv1 --ifname net0 -- ip -br link show net0
        ip link show kgtmv1 >/dev/null 2>&1 && echo "still on the host" || true'
    assert_success
    assert_output --regexp 'net0@'
    refute_output --partial "still on the host"
}

@test "bad input: a missing interface is 125 and names --move" {
    run tns 'net-setup --move kgtnothere -- true'
    assert_failure 125
    assert_output --partial "--move 'kgtnothere': no such interface"
}

@test "bad input: a name too long for IFNAMSIZ is 125 and names the option" {
    run net-setup --veth --bridge kgt-much-too-long-name -- true
    assert_failure 125
    assert_output --partial "--bridge 'kgt-much-too-long-name': interface name longer than 15 bytes (IFNAMSIZ)"
    run net-setup --move lo --ifname abcdefghijklmnop -- true
    assert_failure 125
    assert_output --partial "--ifname"
}

@test "bad input: a bad CIDR is 125 and names --subnet / --address" {
    run net-setup --veth --subnet 10.250.0.0/33 -- true
    assert_failure 125
    assert_output --partial "--subnet '10.250.0.0/33'"
    run net-setup --veth --address 10.250.1.300/24 -- true
    assert_failure 125
    assert_output --partial "--address '10.250.1.300/24'"
}

@test "bad input: an address outside the subnet is 125" {
    run net-setup --veth --subnet 10.250.4.0/24 --address 10.250.5.9/24 -- true
    assert_failure 125
    assert_output --partial "--address '10.250.5.9': outside the subnet 10.250.4.0/24"
}

@test "bad input: a published port in use is 125 and names --publish" {
    run tns '$BB nc -l -p 18081 >/dev/null 2>&1 & sleep 0.3
        net-setup --veth --bridge kgtpu --subnet 10.250.6.0/24 --publish 18081:80 -- true || echo "status=$?"
        kill %1 2>/dev/null || true'
    assert_output --partial "--publish '18081:80/tcp'"
    assert_output --partial "is in use"
    assert_output --partial "status=125"
    run net-setup --publish 1:2:3:4 --veth -- true
    assert_failure 125
    assert_output --partial "--publish '1:2:3:4'"
}

@test "bad input: conflicting modes are a usage error" {
    run net-setup --raw --veth -- true
    assert_failure 125
    assert_output --partial "exclude each other"
    run net-setup --nat -- true
    assert_failure 125
    assert_output --partial "--nat needs --veth"
}

@test "--veth: container <-> host over the veth; state files; cleanup" {
    # The container writes to a file of its own: its lines and the host
    # side's would otherwise interleave.
    run tns 'out=$(mktemp)
        KAGO_NAME=$NAME net-setup --veth --bridge kgtb7 --subnet 10.250.7.0/24 --mtu 1400 -- sh -c "
            ip -br addr show eth0; ip route show default; cat /sys/class/net/eth0/mtu
            cat \$KAGO_STATE_DIR/ip \$KAGO_STATE_DIR/netns; grep \$KAGO_NAME \$KAGO_STATE_DIR/hosts
            grep -q nameserver \$KAGO_STATE_DIR/resolv.conf || grep -q net-setup \$KAGO_STATE_DIR/resolv.conf && echo resolv-ok
            ip link show kg$NAME >/dev/null 2>&1 && echo SEES-HOST-END
            for i in 1 2 3 4 5 6 7 8 9 10; do $WGET http://10.250.7.1:18082/ 2>/dev/null && break; sleep 0.3; done
            sleep 0.5" >"$out" 2>&1 &
        # the host side while it runs: a server on the bridge address
        for i in $(seq 30); do ip -br addr show kgtb7 2>/dev/null | grep -q 10.250.7.1 && break; sleep 0.1; done
        $BB httpd -f -p 10.250.7.1:18082 -h "$WWW" &
        ip -br link show kg$NAME | grep -q "kg$NAME@" && echo host-end-present
        mountpoint -q /run/netns/kago-$NAME && echo bind-present
        wait %1
        cat "$out"; rm -f "$out"
        net_leftovers $NAME kgtb7'
    assert_success
    assert_output --regexp 'eth0@[^ ]+ +UP +10\.250\.7\.2/24'
    assert_line --partial "default via 10.250.7.1 dev eth0"
    assert_line 1400
    assert_line 10.250.7.2
    assert_line "/run/netns/kago-$NAME"
    assert_line --regexp "^10\.250\.7\.2.$NAME$"
    assert_line resolv-ok
    assert_line host-end-present
    assert_line bind-present
    assert_line "hello from kago"
    refute_output --partial SEES-HOST-END
    refute_output --partial LEFT-
}

@test "--veth -- a kago program: the chain starts during the set-up; the payload finds the network ready and no gate" {
    require_progs unshare-run
    run tns 'echo "base: $(ls /proc/self/fd | tr "\n" " ")"
        KAGO_NAME=$NAME net-setup --veth --nat --bridge kgtb8 --subnet 10.250.8.0/24 -- \
            unshare-run --pid --mount -- sh -c "
            ip -br addr show eth0; ip route show default
            nft list table inet kago >/dev/null 2>&1 || echo no-table-here
            env | grep -c KAGO_READY_FD; echo \"base: \$(ls /proc/self/fd | tr \"\n\" \" \")\""
        echo "host: $(nft list table inet kago 2>/dev/null | grep -c "kago $NAME")"
        gone kg$NAME || echo LEFT-VETH
        no_lease kgtb8 || echo LEFT-LEASE'
    assert_success
    assert_output --regexp 'eth0@[^ ]+ +UP +10\.250\.8\.2/24'
    assert_line --partial "default via 10.250.8.1 dev eth0"
    assert_line 0  # no KAGO_READY_FD for the payload
    # and no descriptor but those the test's shell has too (unshare-run,
    # the last program, closes even those above 2)
    [ "$(grep -c '^base: ' <<<"$output")" = 2 ]
    local shell payload fd
    shell=$(grep '^base: ' <<<"$output" | head -1) payload=$(grep '^base: ' <<<"$output" | tail -1)
    for fd in ${payload#base: }; do [[ " ${shell#base: }" == *" $fd "* ]] || fail "the payload has descriptor $fd: $payload"; done
    assert_line "host: 0"
    refute_output --partial LEFT-
}

@test "--veth: the command keeps the CPU affinity it inherited (a kago chain too), and KAGO_NETNS names its namespace" {
    require_progs unshare-run
    [ "$(nproc)" -gt 1 ] || skip "one CPU allowed: net-setup does not move the command's process"
    run tns 'echo "outside $(taskset -p $$ | sed "s/.*: //")"
        KAGO_NAME=$NAME net-setup --veth --bridge kgtb9 --subnet 10.250.9.0/24 -- sh -c "
            echo \"plain \$(taskset -p \$\$ | sed \"s/.*: //\")\"
            [ \$(stat -L -c %i \$KAGO_NETNS) = \$(stat -L -c %i /proc/self/ns/net) ] && echo plain-netns-ok"
        KAGO_NAME=$NAME net-setup --veth --bridge kgtb9 --subnet 10.250.9.0/24 -- unshare-run --pid -- sh -c "
            echo \"chain \$(taskset -p \$\$ | sed \"s/.*: //\")\""
        taskset -p 1 $$ >/dev/null
        KAGO_NAME=$NAME net-setup --veth --bridge kgtb9 --subnet 10.250.9.0/24 -- sh -c "
            echo \"pinned \$(taskset -p \$\$ | sed \"s/.*: //\")\""
        net_leftovers $NAME kgtb9'
    assert_success
    mask=$(sed -n 's/^outside //p' <<<"$output")
    [ -n "$mask" ]
    assert_line "plain $mask"
    assert_line "chain $mask"
    assert_line "pinned 1"
    assert_line plain-netns-ok
    refute_output --partial LEFT-
}

@test "rootless --user-mode: KAGO_NETNS names the command's network namespace (uid 65534)" {
    require_userns
    command -v pasta >/dev/null || skip "pasta (Debian package passt) is not installed"
    run tns "$rootless_prelude"'
        setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$PATH" HOME=/tmp net-setup --user-mode -- sh -c "
            [ \$(readlink \$KAGO_NETNS) = \$(readlink /proc/self/ns/net) ] && echo netns-ok
            [ \$(readlink /proc/self/ns/net) != $(readlink /proc/self/ns/net) ] && echo not-the-hosts"'
    assert_success
    assert_line netns-ok
    assert_line not-the-hosts
}

@test "--veth: a name whose host end already exists: 125 before anything starts; that link is left alone" {
    require_progs unshare-run
    run tns 'ip link add kg$NAME type veth peer name kp$NAME  # the host end cannot be created
        KAGO_NAME=$NAME net-setup --veth --bridge kgtb9 --subnet 10.250.9.0/24 -- \
            unshare-run --pid -- sh -c "echo PAYLOAD-RAN" && echo no-failure || echo "status $?"
        ip link del kg$NAME
        net_leftovers $NAME kgtb9'
    assert_success
    assert_line "status 125"
    assert_output --partial "kg$NAME"
    refute_output --partial PAYLOAD-RAN
    refute_output --partial LEFT-
}

@test "--veth: the host end is in link group kago while it runs and goes after; the same name runs again at once" {
    run tns 'for i in 1 2 3; do
            KAGO_NAME=$NAME net-setup --veth --bridge kgtb21 --subnet 10.250.21.0/24 -- true || echo "run $i: status $?"
        done
        KAGO_NAME=$NAME net-setup --veth --bridge kgtb21 --subnet 10.250.21.0/24 -- sleep 3 &
        # The link of that name may still be a finished run'"'"'s, being deleted
        # (under load that takes a while: the container lives 3 s, the
        # wait for its link up to 4 s).
        for i in $(seq 80); do ip -d link show kg$NAME 2>/dev/null | grep -q "group 1801545583" && break; sleep 0.05; done
        ip -d link show kg$NAME | grep -o "group [0-9]*"
        wait
        net_leftovers $NAME kgtb21
        ip link show group 1801545582 | grep . && echo LEFT-DYING || true'
    assert_success
    assert_line "group 1801545583"
    refute_output --partial status
    refute_output --partial LEFT-
}

@test "--veth: the container's network namespace is released within 2 s of the exit (held only until its veth is deleted)" {
    run tns 'ino=$(KAGO_NAME=$NAME net-setup --veth --bridge kgtb22 --subnet 10.250.22.0/24 -- readlink /proc/self/ns/net)
        echo "ns $ino"
        for i in $(seq 40); do
            held=$( (ls -l /proc/[0-9]*/fd 2>/dev/null || true) | grep -cF "$ino" || true)
            [ "$held" = 0 ] && break
            sleep 0.05
        done
        echo "held $held"
        net_leftovers $NAME kgtb22'
    assert_success
    assert_line --regexp '^ns net:\[[0-9]+\]$'
    assert_line "held 0"
    refute_output --partial LEFT-
}

@test "--gc deletes the veths left in link group 1801545582 (being deleted), and no other link" {
    run tns 'ip link add kgd$NAME group 1801545582 type veth peer name kpd$NAME
        ip link add kgo$NAME type veth peer name kpo$NAME
        net-setup --gc
        ip link show kgd$NAME >/dev/null 2>&1 && echo LEFT-DYING
        ip link show kgo$NAME >/dev/null 2>&1 && echo other-kept
        ip link del kgo$NAME'
    assert_success
    assert_line other-kept
    refute_output --partial LEFT-
}

@test "--veth: a set-up that fails after the chain started: the payload never runs, 125, nothing left" {
    require_progs unshare-run
    run tns 'ip link add kgtb10 type veth peer name kgtb10p  # --bridge names a link that is not a bridge
        KAGO_NAME=$NAME net-setup --veth --bridge kgtb10 --subnet 10.250.10.0/24 -- \
            unshare-run --pid -- sh -c "echo PAYLOAD-RAN" && echo no-failure || echo "status $?"
        ip link show kgtb10 >/dev/null && echo kept-kgtb10
        ip link del kgtb10
        net_leftovers $NAME kgtb10'
    assert_success
    assert_line "status 125"
    assert_output --partial "not a bridge"
    assert_line kept-kgtb10
    refute_output --partial PAYLOAD-RAN
    refute_output --partial LEFT-
}

@test "two containers on one bridge reach each other" {
    run tns 'KAGO_NAME=${NAME}a net-setup --veth --bridge kgtb8 --subnet 10.250.8.0/24 --address 10.250.8.10 -- \
            $BB httpd -f -p 80 -h "$WWW" &
        sleep 0.5
        KAGO_NAME=${NAME}b net-setup --veth --bridge kgtb8 --subnet 10.250.8.0/24 -- sh -c "
            for i in 1 2 3 4 5 6 7 8 9 10; do $WGET http://10.250.8.10/ && exit 0; sleep 0.2; done; exit 1"
        [ $? = 0 ] && echo "b=0"
        kill %1; wait %1 || true
        gone kgtb8 || echo LEFT-BRIDGE'
    assert_success
    assert_line "hello from kago"
    assert_line "b=0"
    refute_output --partial LEFT-
}

@test "two containers started at once get different addresses" {
    run tns 'for i in 1 2 3; do
            KAGO_NAME=${NAME}p$i net-setup --veth --bridge kgtb9 --subnet 10.250.9.0/24 -- sh -c "cat \$KAGO_STATE_DIR/ip; sleep 1" &
        done
        wait'
    assert_success
    [ "$(printf '%s\n' "${lines[@]}" | grep -c '^10\.250\.9\.')" = 3 ]
    [ "$(printf '%s\n' "${lines[@]}" | sort -u | grep -c '^10\.250\.9\.')" = 3 ]
}

@test "--publish: reached from the host's loopback and from another namespace; no rule left" {
    run tns 'KAGO_NAME=$NAME net-setup --veth --bridge kgtb10 --subnet 10.250.10.0/24 --publish 18083:80 -- \
            $BB httpd -f -p 80 -h "$WWW" &
        sleep 0.3
        for i in 1 2 3 4 5 6 7 8 9 10; do nft list table inet kago 2>/dev/null | grep -q dnat && break; sleep 0.2; done
        nft list table inet kago | grep -c "comment \"kago $NAME pid=" | sed "s/^/tagged=/"
        echo loopback:; $WGET http://127.0.0.1:18083/
        # another namespace, wired to this one by a veth
        unshare --net sleep 30 & o=$!; sleep 0.3
        ip link add kgto10 type veth peer name eth0 netns $o
        ip addr add 10.250.11.1/24 dev kgto10; ip link set kgto10 up
        nsenter -t $o -n sh -c "ip link set lo up; ip addr add 10.250.11.2/24 dev eth0; ip link set eth0 up; ip route add default via 10.250.11.1"
        echo other-ns:; nsenter -t $o -n $WGET http://10.250.11.1:18083/
        kill $o; kill %1; wait %1 || true
        nft list table inet kago >/dev/null 2>&1 && echo LEFT-TABLE || true'
    assert_success
    assert_line "tagged=4"
    assert_equal "$(printf '%s\n' "${lines[@]}" | grep -c 'hello from kago')" 2
    refute_output --partial LEFT-
}

@test "--nat: the container reaches the test's outside namespace, masqueraded; no rule left" {
    run tns 'unshare --net sleep 30 & o=$!; sleep 0.3
        ip link add kgto12 type veth peer name eth0 netns $o
        ip addr add 10.250.12.1/24 dev kgto12; ip link set kgto12 up
        nsenter -t $o -n sh -c "ip link set lo up; ip addr add 10.250.12.2/24 dev eth0; ip link set eth0 up"
        # the outside has no route back to the container subnet: only NAT makes replies come back
        nsenter -t $o -n $BB httpd -f -p 80 -h "$WWW" & sleep 0.3
        net-setup --veth --bridge kgtb13 --subnet 10.250.13.0/24 --nat -- $WGET http://10.250.12.2/ && echo "nat=0"
        net-setup --veth --bridge kgtb13 --subnet 10.250.13.0/24 -- $WGET http://10.250.12.2/ >/dev/null 2>&1 && echo "nonat=0" || true
        cat /proc/sys/net/ipv4/ip_forward
        kill %2 $o 2>/dev/null || true
        nft list table inet kago >/dev/null 2>&1 && echo LEFT-TABLE || true'
    assert_line "hello from kago"
    assert_line "nat=0"
    refute_line "nonat=0"
    assert_line 1
    refute_output --partial LEFT-
}

@test "--address6: IPv6 between container and host" {
    run tns 'KAGO_NAME=$NAME net-setup --veth --bridge kgtb14 --subnet 10.250.14.0/24 --address6 fd25:14::2/64 -- sh -c "
            ip -6 -br addr show eth0; ip -6 route show default; $BB ping6 -c 1 -W 2 fd25:14::1 >/dev/null && echo ping6-ok"'
    assert_success
    assert_output --partial "fd25:14::2/64"
    assert_output --partial "default via fd25:14::1"
    assert_line ping6-ok
}

@test "--publish with --address6: reached over IPv6 on the host's address; [::1] and IPv6 without --address6 refused" {
    run tns 'ip addr add fd25:99::1/128 dev lo nodad
        KAGO_NAME=$NAME net-setup --veth --bridge kgtb17 --subnet 10.250.17.0/24 --address6 fd25:17::2/64 \
            --publish 18087:80 --publish [fd25:99::1]:18088:80 -- $BB httpd -f -p [::]:80 -h "$WWW" &
        for i in $(seq 30); do nft list table inet kago 2>/dev/null | grep -q "dnat ip6" && break; sleep 0.2; done
        for i in 1 2 3 4 5 6 7 8 9 10; do out=$($WGET "http://[fd25:17::1]:18087/" 2>/dev/null) && echo "18087: $out" && break; sleep 0.3; done
        for i in 1 2 3 4 5 6 7 8 9 10; do out=$($WGET "http://[fd25:99::1]:18088/" 2>/dev/null) && echo "18088: $out" && break; sleep 0.3; done
        echo v4:; $WGET http://127.0.0.1:18087/
        kill %1; wait %1 || true
        nft list table inet kago >/dev/null 2>&1 && echo LEFT-TABLE || true'
    assert_success
    assert_line "18087: hello from kago"
    assert_line "18088: hello from kago"
    assert_line "hello from kago"
    refute_output --partial LEFT-
    run net-setup --veth --address6 fd25:18::2/64 --publish '[::1]:18089:80' -- true
    assert_failure 125
    assert_output --partial "does not forward from ::1"
    run net-setup --veth --publish '[fd25:18::1]:18089:80' -- true
    assert_failure 125
    assert_output --partial "needs --address6"
}

@test "SIGTERM to the supervisor: forwarded, then everything is removed" {
    run tns 'KAGO_NAME=$NAME net-setup --veth --bridge kgtb15 --subnet 10.250.15.0/24 --nat --publish 18085:80 -- sleep 30 &
        s=$!; sleep 0.5
        ip link show kg$NAME >/dev/null && echo up
        kill -TERM $s; wait $s || echo "status=$?"
        gone kg$NAME || echo LEFT-VETH
        nft list table inet kago >/dev/null 2>&1 && echo LEFT-TABLE || true
        [ -e /run/kago/leases/$NAME.owner ] && echo LEFT-RECORD || true'
    assert_success
    assert_line up
    assert_line "status=143"
    refute_output --partial LEFT-
}

@test "SIGKILL of the supervisor, then --gc: nothing is left" {
    run tns 'KAGO_NAME=$NAME net-setup --veth --bridge kgtb16 --subnet 10.250.16.0/24 --nat --publish 18086:80 -- sleep 30 &
        s=$!
        for i in $(seq 50); do nft list table inet kago 2>/dev/null | grep -q masquerade && break; sleep 0.1; done
        kill -KILL $s; wait $s || true; sleep 0.2
        ip link show kg$NAME >/dev/null 2>&1 && echo before-veth
        nft list table inet kago >/dev/null 2>&1 && echo before-table
        [ -e /run/kago/leases/$NAME.owner ] && echo before-record
        net-setup --gc
        gone kg$NAME || echo LEFT-VETH
        gone kgtb16 || echo LEFT-BRIDGE
        nft list table inet kago >/dev/null 2>&1 && echo LEFT-TABLE || true
        [ -e /run/kago/leases/$NAME.owner ] && echo LEFT-RECORD || true
        [ -e /run/netns/kago-$NAME ] && echo LEFT-BIND || true
        [ -e /run/kago/$NAME ] && echo LEFT-STATE || true
        no_lease kgtb16 || echo LEFT-LEASE'
    assert_success
    assert_line before-veth
    assert_line before-table
    assert_line before-record
    refute_output --partial LEFT-
}

@test "--gc removes 300 rules of dead owners (more acks than one socket buffer holds) and the table" {
    run tns '{ echo "table inet kago {"
          echo "  chain postrouting { type nat hook postrouting priority srcnat;"
          for i in $(seq 300); do
              echo "    ip saddr 10.250.30.$((i % 250 + 2)) masquerade comment \"kago dead$i pid=999999 start=1\""
          done
          echo "  }"
          echo "}"; } >"$WWW/rules.nft"
        nft -f "$WWW/rules.nft"
        echo "before: $(nft list table inet kago | grep -c masquerade)"
        net-setup --gc
        nft list table inet kago >/dev/null 2>&1 && echo LEFT-TABLE || true'
    assert_success
    assert_line "before: 300"
    refute_output --partial LEFT-
}

# The rootless tests: a tun device usable by uid 65534 in the test's own
# mount namespace, and an interface with a default route for pasta to copy.
rootless_prelude='
    ip link add kgtu0 type veth peer name kgtu1
    ip addr add 10.250.20.1/24 dev kgtu0; ip link set kgtu0 up; ip link set kgtu1 up
    ip route add default via 10.250.20.2
    mknod "$WWW.tun" c 10 200; chmod 666 "$WWW.tun"
    mount --bind "$WWW.tun" /dev/net/tun; rm -f "$WWW.tun"'
export rootless_prelude

@test "rootless --user-mode with pasta: a published port answers on the host's loopback (uid 65534)" {
    require_userns
    command -v pasta >/dev/null || skip "pasta (Debian package passt) is not installed"
    run tns "$rootless_prelude"'
        setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$PATH" HOME=/tmp net-setup --user-mode --publish 18090:8080 -- sh -c "id -u; exec $BB httpd -f -p 8080 -h $WWW" &
        for i in $(seq 30); do $WGET http://127.0.0.1:18090/ 2>/dev/null && break; sleep 0.2; done
        kill %1; wait %1 || true
        pgrep -x pasta >/dev/null && echo LEFT-PASTA || true'
    assert_success
    assert_line 0
    assert_line "hello from kago"
    refute_output --partial LEFT-
}

@test "rootless --user-mode with slirp4netns: a published port answers (uid 65534)" {
    require_userns
    command -v slirp4netns >/dev/null || skip "slirp4netns is not installed"
    run tns "$rootless_prelude"'
        setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$PATH" HOME=/tmp net-setup --user-mode --user-mode-helper slirp4netns --publish 18091:8080 -- sh -c "cat \$KAGO_STATE_DIR/ip; exec $BB httpd -f -p 8080 -h $WWW" &
        for i in $(seq 30); do $WGET http://127.0.0.1:18091/ 2>/dev/null && break; sleep 0.2; done
        kill %1; wait %1 || true
        pgrep -x slirp4netns >/dev/null && echo LEFT-SLIRP || true'
    assert_success
    assert_line 10.0.2.100
    assert_line "hello from kago"
    refute_output --partial LEFT-
}

# The helper gets /dev/null on 0 and 1 and its log on 2, and no other copy
# of them (they were opened without O_CLOEXEC and leaked as 7 and 8).
@test "rootless --user-mode: pasta and slirp4netns get no stray descriptor of ours (uid 65534)" {
    require_userns
    command -v pasta >/dev/null || skip "pasta (Debian package passt) is not installed"
    command -v slirp4netns >/dev/null || skip "slirp4netns is not installed"
    run tns "$rootless_prelude"'
        for h in pasta slirp4netns; do
            setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$PATH" HOME=/tmp \
                net-setup --user-mode --user-mode-helper $h -- sleep 30 &
            ns=$!
            p=
            # the helper is the child that is neither sleep nor a child of
            # net-setup before its exec (its descriptors still being set up);
            # pasta runs as passt.avx2
            for i in $(seq 50); do
                p=$(for q in $(pgrep -P $ns); do case $(cat /proc/$q/comm) in sleep|net-setup) ;; *) echo $q;; esac; done)
                [ -n "$p" ] && [ "$(echo $p | wc -w)" = 1 ] && [ -e /proc/$p/fd/2 ] && break; sleep 0.1
            done
            [ -n "$p" ] || echo "NO-$h"
            for fd in /proc/$p/fd/*; do
                t=$(readlink $fd) || continue
                # what this script holds itself was inherited, not opened by net-setup
                [ "$(readlink /proc/$$/fd/${fd##*/} 2>/dev/null)" = "$t" ] && [ "${fd##*/}" -gt 2 ] && continue
                case $t in /dev/null|*/$h.log) echo "$h ${fd##*/} $t";; esac
            done
            kill $ns; wait $ns || true
        done'
    assert_success
    refute_output --partial NO-
    # pasta, once in the background, puts /dev/null on 0-2 itself
    assert_line "pasta 0 /dev/null"
    assert_line "slirp4netns 0 /dev/null"
    assert_line "slirp4netns 1 /dev/null"
    assert_line --regexp '^slirp4netns 2 .*/slirp4netns\.log$'
    refute_output --regexp '(pasta|slirp4netns) ([3-9]|[1-9][0-9]+) '
    refute_output --partial "binary operator"
}

# /dev/net/tun is 0600 root on some hosts: the error names the device and
# its mode, and the hint is a command line that runs without us.
@test "rootless --user-mode: a tun device the helper cannot open is named with its mode; the hint runs by hand" {
    require_userns
    command -v pasta >/dev/null || skip "pasta (Debian package passt) is not installed"
    run tns "$rootless_prelude"'
        chmod 600 /dev/net/tun
        setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$PATH" HOME=/tmp \
            net-setup --user-mode --user-mode-helper pasta --publish 18092:80 -- true && echo no-failure || echo "status $?"'
    assert_success
    assert_line "status 125"
    assert_output --partial "net-setup: pasta cannot open /dev/net/tun: /dev/net/tun is crw------- (0600, uid 0 gid 0)"
    assert_output --partial "chmod 0666 /dev/net/tun"
    local line
    line=$(sed -n 's/.*run it by hand to see why: //p' <<<"$output")
    [ "$line" = "$(command -v pasta) --config-net -t 18092:80 -u none -T none -U none -- true" ] || { echo "hint: $line"; false; }
    # With a usable device, that line works as it is.
    run tns "$rootless_prelude"'
        setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$PATH" HOME=/tmp sh -c "'"$line"' && echo by-hand-ok" 2>/dev/null'
    assert_success
    assert_line by-hand-ok
}

@test "rootless --user-mode: a helper that cannot start is 125 with its reason" {
    require_userns
    run tns 'setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i PATH="$PATH" HOME=/tmp net-setup --user-mode -- true'
    assert_failure 125
    assert_output --regexp "pasta failed|slirp4netns exited|cannot open /dev/net/tun"
}
