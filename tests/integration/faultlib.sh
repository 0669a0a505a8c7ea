# SPDX-License-Identifier: MIT
# Fault-injection helpers for the integration tests; source after lib.sh
# and h3lib.sh, then call fault_netns first:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/h3lib.sh"
#   . "$(dirname "$0")/faultlib.sh"
#   fault_netns "$@"; need_pycurl; fault_setup 1 ["key = value"...]
#   h3_start || finish; fault_tables
#
# Each test runs in a network namespace of its own (fault_netns re-execs
# the script under `unshare --net`, so every rule and socket vanishes with
# the test), with real clients. Impairments use what this kernel has:
#
#  * nftables rules on the input hook of the namespace's loopback (the
#    sender sees no error): random loss (`numgen random`), burst loss
#    (`numgen inc`: LEN datagrams in a row out of every PERIOD) and a
#    blackhole, per direction. On loopback both directions cross the same
#    input hook, so the direction is the server's port: "up" (client to
#    server) is `udp dport $PORT`, "down" `udp sport $PORT`. Each rule
#    counts into a named counter that outlives the rule (fault_dropped).
#    UDP segmentation offload is off on the namespace's loopback, so a GSO
#    batch (quicd and curl both send them) is cut into its datagrams before
#    it crosses loopback and the rules see, and drop, single datagrams.
#  * tests/integration/udprelay.py between the client and the server for
#    delay, reordering, duplication, corruption and rebinding, with its
#    counters in a JSON file (relay_stat).
#
# Clients: tests/integration/faultclient.py (fault_client), which checks
# every byte of every answer.

FAULTCLIENT_PY="$QD_SRCDIR/tests/integration/faultclient.py"
UDPRELAY_PY="$QD_SRCDIR/tests/integration/udprelay.py"
FAULT_TABLE="inet qdfault"
RELAY_PORT=""
RELAY_PID=""
RELAY_STATS=""
# gtlsclient's handshake and idle timeout in fault_gtls_conns, seconds
FAULT_GTLS_TIMEOUT=${FAULT_GTLS_TIMEOUT:-30}
# attempts per connection in fault_gtls_conns when a handshake does not complete
FAULT_GTLS_ATTEMPTS=${FAULT_GTLS_ATTEMPTS:-3}

# fault_netns ARGS... - re-exec this test as root in a new network namespace
# with loopback up (skips without root, unshare(1) or nft(8)); inside it,
# returns
fault_netns() {
    if [ -z "${QD_FAULT_NETNS:-}" ]; then
        [ "$(id -u)" = 0 ] && command -v unshare > /dev/null ||
            skip "needs root and unshare(1) for a network namespace of its own"
        command -v nft > /dev/null || skip "nft(8) not found (apt-get install nftables)"
        command -v ethtool > /dev/null || skip "ethtool(8) not found (apt-get install ethtool)"
        [ -x "$H3_PYTHON" ] || skip "$H3_PYTHON not found"
        QD_FAULT_NETNS=1 exec unshare --net -- bash "$0" "$@"
        die "cannot exec unshare"
    fi
    ip link set lo up || die "cannot bring lo up in the test's network namespace"
    [ "$(ip -o link show | grep -c .)" -le 2 ] || die "not in a private network namespace: $(ip -o link show)"
    ethtool -K lo tx-udp-segmentation off || die "cannot turn UDP segmentation offload off on lo"
    log "in a network namespace of its own (lo up, no UDP segmentation offload)"
}

# fault_tables - the nftables table and input chain the rules go into
fault_tables() {
    nft add table $FAULT_TABLE || die "nft add table"
    nft add chain $FAULT_TABLE input '{ type filter hook input priority 0; policy accept; }' ||
        die "nft add chain"
}

# match DIR - the nft match for a direction of the server's traffic
fault_match() {
    case $1 in
    up) echo "udp dport $PORT" ;;
    down) echo "udp sport $PORT" ;;
    *) die "direction must be up or down, not $1" ;;
    esac
}

# fault_dirs DIR - up, down, or both of them for "both"
fault_dirs() { if [ "$1" = both ]; then echo up down; else echo "$1"; fi; }

# fault_rule NAME DIR EXPR... - "DIR-match EXPR counter NAME_DIR drop" for
# each direction of DIR (up, down, both), after a rule that counts every
# datagram of that direction into NAME_seen_DIR; NAME is a short identifier
fault_rule() {
    local name=$1 dirs=$2 d c; shift 2
    for d in $(fault_dirs "$dirs"); do
        for c in "${name}_$d" "${name}_seen_$d"; do
            nft list counter $FAULT_TABLE "$c" > /dev/null 2>&1 ||
                nft add counter $FAULT_TABLE "$c" || die "nft add counter $c"
        done
        # shellcheck disable=SC2046
        nft insert rule $FAULT_TABLE input $(fault_match "$d") counter name "\"${name}_seen_$d\"" \
            comment "\"$name\"" || die "nft insert rule $name $d"
        # shellcheck disable=SC2046
        nft add rule $FAULT_TABLE input $(fault_match "$d") "$@" counter name "\"${name}_$d\"" drop \
            comment "\"$name\"" || die "nft add rule $name $d $*"
    done
}

# fault_loss NAME DIR PERCENT - drop PERCENT % of the datagrams, at random
fault_loss() { fault_rule "$1" "$2" numgen random mod 100 lt "$3"; log "fault: $1: $3 % loss ($2)"; }

# fault_burst NAME DIR LEN PERIOD - drop LEN datagrams in a row out of every
# PERIOD of that direction: the last LEN of each PERIOD, so the first burst
# comes after PERIOD - LEN datagrams have passed
fault_burst() {
    fault_rule "$1" "$2" numgen inc mod "$4" ge $(($4 - $3))
    log "fault: $1: bursts of $3 in $4 ($2)"
}

# fault_block NAME DIR - drop everything (a blackhole, until fault_clear)
fault_block() { fault_rule "$1" "$2"; log "fault: $1: blackhole ($2)"; }

# fault_clear NAME - remove the rules of NAME (its counters stay)
fault_clear() {
    local h
    for h in $(nft -a list chain $FAULT_TABLE input |
        sed -n "s/.* comment \"$1\" # handle \([0-9]*\)$/\1/p"); do
        nft delete rule $FAULT_TABLE input handle "$h" || die "nft delete rule $h"
    done
    log "fault: $1: cleared"
}

# fault_blackhole NAME DIR SECONDS - a blackhole for SECONDS, then gone
fault_blackhole() {
    fault_block "$1" "$2"
    sleep "$3"
    fault_clear "$1"
}

# fault_counter COUNTER - the packets a named counter counted
fault_counter() {
    nft list counter $FAULT_TABLE "$1" 2> /dev/null | sed -n 's/.*packets \([0-9]*\) bytes.*/\1/p'
}

# fault_dropped NAME [DIR] - datagrams the rules of NAME dropped (DIR: up,
# down, or both: the sum); fault_seen NAME [DIR] - datagrams they saw
fault_dropped() {
    local d n sum=0
    for d in $(fault_dirs "${2:-both}"); do
        n=$(fault_counter "${1}_$d")
        sum=$((sum + ${n:-0}))
    done
    echo "$sum"
}
fault_seen() {
    local d n sum=0
    for d in $(fault_dirs "${2:-both}"); do
        n=$(fault_counter "${1}_seen_$d")
        sum=$((sum + ${n:-0}))
    done
    echo "$sum"
}

# fault_report NAME - "up: D of S dropped, down: D of S dropped" for the log
fault_report() {
    echo "up: $(fault_dropped "$1" up) of $(fault_seen "$1" up) dropped," \
        "down: $(fault_dropped "$1" down) of $(fault_seen "$1" down) dropped"
}

# fault_check_dropped NAME - ok if NAME's rules dropped datagrams both ways,
# else fail (the impairment did not happen, so the case proved nothing)
fault_check_dropped() {
    local up down
    up=$(fault_dropped "$1" up) down=$(fault_dropped "$1" down)
    if [ "$up" -gt 0 ] && [ "$down" -gt 0 ]; then
        ok "$1: the rules dropped datagrams both ways ($(fault_report "$1"))"
    else
        fail "$1: no loss was injected both ways ($(fault_report "$1"))"
    fi
}

# fault_gtls_conns NAME N PARALLEL URL EXPECT [PORT] - N gtlsclient connections
# to 127.0.0.1:PORT (default $PORT, the server; $RELAY_PORT for the relay),
# at most PARALLEL at a time, each downloading URL (a file named like
# EXPECT) into a directory of its own, with a handshake and idle timeout of
# FAULT_GTLS_TIMEOUT s (curl's ngtcp2 handshake timeout is fixed at 10 s).
# An attempt whose QUIC handshake did not complete in all that time (at
# 30 % loss each way about 1 in 100: Initials at 0, 1, 3, 7 and 15 s, and
# in most such cases not one datagram of the server's got through - in
# 500 connections here 6 for quicd, 2 for gtlsserver) is what a browser
# would try again or leave for TCP: it is tried again on a new connection
# (no request was sent). So is an attempt that stalled in loss recovery
# after its handshake (fault_gtls_stalled), as a browser would time out
# the request and send it again. Up to FAULT_GTLS_ATTEMPTS attempts in all,
# each repeat counted by its cause; any other result is final. Prints a
# line per failed connection and "gtls: OK/N ok, R repeated (H handshake,
# S stalled), time ..."; 0 if all N are byte-identical
fault_gtls_conns() {
    local name=$1 n=$2 par=$3 url=$4 expect=$5 port=${6:-$PORT} i running=0 okc=0 rc rep
    local file=${expect##*/}
    for i in $(seq "$n"); do
        mkdir -p "$T/$name.$i"
        fault_gtls_one "$T/$name.$i" "$port" "$url" "$expect" &
        running=$((running + 1))
        if [ "$running" -ge "$par" ]; then
            wait -n
            running=$((running - 1))
        fi
    done
    wait
    for i in $(seq "$n"); do
        rc=$(cat "$T/$name.$i/rc" 2> /dev/null)
        if [ "$rc" = 0 ] && cmp -s "$expect" "$T/$name.$i/$file"; then
            okc=$((okc + 1))
        else
            echo "gtls #$i: exit ${rc:-none} after $(cat "$T/$name.$i/attempts" 2> /dev/null)" \
                "attempts, $(cmp "$expect" "$T/$name.$i/$file" 2>&1 | head -n1)"
            grep -v '^ ' "$T/$name.$i/log" | tail -n 3
        fi
    done
    rep=$(cat "$T/$name".*/repeats 2> /dev/null | awk '{ r++; c[$1]++ }
        END { printf "%d repeated (%d handshake, %d stalled)", r, c["handshake"], c["stalled"] }')
    echo "gtls: $okc/$n ok, $rep, time $(cat "$T/$name".*/ms 2> /dev/null | sort -n |
        awk '{ a[NR] = $1 } END { if (NR) printf "min=%dms median=%dms max=%dms", a[1], a[int((NR + 1) / 2)], a[NR] }')"
    [ "$okc" = "$n" ]
}

# fault_gtls_stalled LOG RC - 0 if gtlsclient's LOG (exit status RC) shows
# an attempt that ended, by its idle timeout or by timeout(1), in loss
# recovery: ngtcp2 logged a probe timeout ("pto_count=") after its last
# RTT sample ("latest_rtt="), so nothing it sent since was acknowledged.
# At 30 % loss each way about 1 connection in 3,000 stalls so after its
# handshake (quicd 9 in 25,000 here, ngtcp2's gtlsserver 2 in 12,000, with
# the same spread of times after the handshake; the worker's ngtcp2 trace
# showed quicd acknowledge every datagram it got and answer at once). When
# the client's Finished is lost (its Handshake probes go 1, 2, 4 s apart),
# the server holds the client's first 1-RTT packets unread until a copy
# arrives (RFC 9001 5.7); its ACK states that delay, but a first RTT sample
# is taken whole (RFC 9002 5.3), so 1 client in 40 starts with a smoothed
# RTT of 1-3 s on loopback and a probe timeout of 3 times that, doubling
# with each probe: 3, 9, 21, 45 s. Its request, and the ACK of it (which
# ngtcp2 sends once, and again only for a new ack-eliciting packet: only
# the client's probes recover a lost one), get 3 or 4 tries in the 30 s
# idle timeout, each failing about 1 time in 3 (both probes lost 9 %, else
# the ACK 30 %), and about 1 such client in 100 stalls. A server that
# acknowledges the request and never answers does not look like this:
# nothing is outstanding, no probe fires (tried: 20 of 20 final at once).
fault_gtls_stalled() {
    case $2 in
    124 | 137) ;;
    *) grep -q 'ERR_IDLE_CLOSE' "$1" || return 1 ;;
    esac
    grep -o 'ldc pto_count=\|ldc latest_rtt=' "$1" | tail -n 1 | grep -q pto_count
}

# fault_gtls_one DIR PORT URL EXPECT - one connection of fault_gtls_conns:
# DIR gets the download, the last attempt's log, rc, attempts and ms (all
# attempts), and a line in repeats for each repeat: its cause, "handshake"
# (not completed) or "stalled" (fault_gtls_stalled)
fault_gtls_one() {
    local dir=$1 port=$2 url=$3 expect=$4 t0 a=0 rc why
    t0=$(date +%s%N)
    : > "$dir/repeats"
    while :; do
        a=$((a + 1))
        timeout -k 2 $((FAULT_GTLS_TIMEOUT + 15)) "$H3_GTLSCLIENT" --exit-on-all-streams-close \
            --sni=localhost --timeout="${FAULT_GTLS_TIMEOUT}s" \
            --handshake-timeout="${FAULT_GTLS_TIMEOUT}s" --download="$dir" \
            127.0.0.1 "$port" "$url" > "$dir/log" 2>&1
        rc=$?
        [ "$rc" = 0 ] && cmp -s "$expect" "$dir/${expect##*/}" && break
        if ! grep -q '^QUIC handshake has completed' "$dir/log"; then
            why=handshake
        elif fault_gtls_stalled "$dir/log" "$rc"; then
            why=stalled
        else
            break
        fi
        [ "$a" -lt "$FAULT_GTLS_ATTEMPTS" ] || break
        echo "$why" >> "$dir/repeats"
    done
    echo "$rc" > "$dir/rc"
    echo "$a" > "$dir/attempts"
    echo $((($(date +%s%N) - t0) / 1000000)) > "$dir/ms"
}

# ---------------------------------------------------------------- relay

# relay_start NAME ARGS... - udprelay.py from a free port to the server,
# with the impairment options ARGS (see udprelay.py); sets RELAY_PORT,
# RELAY_PID and RELAY_STATS ($T/NAME.json), waits until it is ready (5 s)
relay_start() {
    local name=$1; shift
    new_port RELAY_PORT
    RELAY_STATS="$T/$name.json"
    rm -f "$RELAY_STATS"
    bg "$H3_PYTHON" "$UDPRELAY_PY" --listen "127.0.0.1:$RELAY_PORT" --server "127.0.0.1:$PORT" \
        --stats "$RELAY_STATS" --timeout 300 "$@"
    RELAY_PID=$BG_PID
    wait_until 5 test -s "$RELAY_STATS" || die "udprelay did not start: $*"
    log "relay $name on port $RELAY_PORT: $* (seed $(relay_stat seed))"
}

# relay_stat KEY - one counter of the relay's JSON file
relay_stat() {
    "$H3_PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
        "$RELAY_STATS" "$1"
}

# relay_counters - the relay's counters on one line (for the log)
relay_counters() { tr -d '{}"\n' < "$RELAY_STATS"; }

# relay_stop - end the relay (it writes its final counters first)
relay_stop() {
    [ -n "$RELAY_PID" ] || return 0
    kill -TERM "$RELAY_PID" 2> /dev/null
    wait_until 5 sh -c "! kill -0 $RELAY_PID" || kill -KILL "$RELAY_PID" 2> /dev/null
    wait "$RELAY_PID" 2> /dev/null
    RELAY_PID=""
    log "relay counters: $(relay_counters)"
}

# relay_rebind - move every client of the relay to a new source port now
relay_rebind() { kill -USR1 "$RELAY_PID"; }

# ---------------------------------------------------------------- clients

# fault_client [--relay] ARGS... - faultclient.py trusting the test
# certificate, "localhost" pinned to 127.0.0.1 on the server's and the
# relay's port
fault_client() {
    "$H3_PYTHON" "$FAULTCLIENT_PY" --cacert "$T/cert.pem" \
        --resolve "localhost:$PORT:127.0.0.1" \
        ${RELAY_PORT:+--resolve "localhost:$RELAY_PORT:127.0.0.1"} "$@"
}

# relay_url PATH - https://localhost:RELAY_PORT/PATH
relay_url() { echo "https://localhost:$RELAY_PORT/$1"; }

# fault_summary OUTPUT - the summary line of faultclient's output
fault_summary() { echo "$1" | grep -E '^(get|ranges|gtls): [0-9]+/' | tail -n1; }

# fault_log OUTPUT - faultclient's output into the test log, transfer lines
# only when they report a problem
fault_log() {
    echo "$1" | grep -vE '^get #[0-9]+: status=200 [^ ]+ [^ ]+ [^ ]+$' |
        while IFS= read -r l; do log "  $l"; done
}

# fault_healthy - every daemon still runs and none was restarted
fault_healthy() {
    local s
    s=$(quicctl status --json 2> /dev/null) || { fail "quicctl status failed"; return 1; }
    if echo "$s" | "$H3_PYTHON" -c '
import json, sys
ps = json.load(sys.stdin)["processes"]
bad = [p for p in ps if p.get("state") != "running" or p.get("restarts", 0) != 0]
for p in bad:
    print("%s %s: %s, %s restarts" % (p["role"], p.get("instance", ""), p.get("state"), p.get("restarts")))
sys.exit(1 if bad else 0)'; then
        ok "every daemon still runs, none restarted"
    else
        fail "a daemon stopped or restarted"
        return 1
    fi
}

# fault_cleanup - the EXIT trap: the relay and clients, then the suite
fault_cleanup() {
    local rc=$?
    [ -n "$RELAY_PID" ] && kill -TERM "$RELAY_PID" 2> /dev/null
    (exit $rc)
    h3_cleanup
}
fault_trap() { trap fault_cleanup EXIT; }

# fault_setup WORKERS [EXTRA LINES...] - h3_setup with fault_cleanup as the
# EXIT trap (the relay too)
fault_setup() { h3_setup "$@"; fault_trap; }
