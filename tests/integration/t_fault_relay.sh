# SPDX-License-Identifier: MIT
# Reordering, duplication, a long RTT and NAT rebinding (udprelay.py
# between curl and the server, both directions): 1 MiB files arrive
# byte-identical with 10 % of the datagrams held back behind the next 3;
# with 10 % of them sent twice; with 100 ms of delay each way (200 ms RTT:
# the handshake must take at least one RTT, proving the delay); and with
# the client moved to a new source port twice mid-transfer (the server
# must follow; its connection record counts the migrations). Each
# case checks the relay's counters, and no daemon restarts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/faultlib.sh"
fault_netns "$@"
need_pycurl
fault_setup 2 "stats_interval = 1s"
head -c 1048576 /dev/urandom > "$T/htdocs/1m.bin"
h3_start || finish

# case NAME WHAT COUNTER RELAY-ARGS... -- CLIENT-ARGS... - 1 MiB through a
# relay with RELAY-ARGS; the relay's COUNTER must be above 0
case_relay() {
    local name=$1 what=$2 counter=$3 t0 out rc n
    shift 3
    local rargs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do rargs+=("$1"); shift; done
    shift
    relay_start "$name" "${rargs[@]}"
    t0=$(date +%s%N)
    out=$(fault_client --timeout 60 --connect-timeout 15 get "$@" "$(relay_url 1m.bin)" "$T/htdocs/1m.bin" 2>&1)
    rc=$?
    OUT=$out
    fault_log "$out"
    relay_stop
    log "$name: $((($(date +%s%N) - t0) / 1000000)) ms"
    [ $rc -eq 0 ] && ok "$name: $what: $(fault_summary "$out")" || fail "$name: $what: $(fault_summary "$out")"
    n=$(relay_stat "$counter")
    [ "$n" -gt 0 ] && ok "$name: the relay counts $n $counter" ||
        fail "$name: the relay counts no $counter: $(relay_counters)"
}

case_relay reorder "1 MiB files with 10 % of the datagrams reordered" reordered \
    --reorder 10 --reorder-gap 3 -- --conns 2 --parallel 2
case_relay dup "1 MiB files with 10 % of the datagrams duplicated" duplicated \
    --dup 10 -- --conns 2 --parallel 2
case_relay rtt "1 MiB files at a 200 ms RTT" delayed \
    --delay-ms 100 -- --conns 2 --parallel 2
hs=$(echo "$OUT" | sed -n 's/.* handshake min=\([0-9.]*\)s.*/\1/p')
awk -v h="${hs:-0}" 'BEGIN { exit !(h >= 0.2) }' && ok "rtt: the fastest handshake took ${hs}s (at least one 200 ms RTT)" ||
    fail "rtt: the fastest handshake took ${hs:-?}s: the delay did not happen"

# Rebinding: curl reads 1 MiB at 256 KiB/s; once 256 KiB have arrived the
# relay moves the client to a new port, and again half a second later (the
# 3 s the rest takes leave room for a slow machine to do both mid-transfer).
relay_start rebind
t0=$(date +%s%N)
fault_client --timeout 60 --connect-timeout 15 get --max-speed 262144 --mark 262144 "$T/mark" \
    "$(relay_url 1m.bin)" "$T/htdocs/1m.bin" > "$T/rebind.out" 2>&1 &
CLIENT=$!
BG_PIDS="$BG_PIDS $CLIENT"
wait_until 30 test -e "$T/mark" && relay_rebind && sleep 0.5 && relay_rebind ||
    fail "rebind: the download never reached 256 KiB"
wait "$CLIENT"
rc=$?
out=$(cat "$T/rebind.out")
fault_log "$out"
relay_stop
log "rebind: $((($(date +%s%N) - t0) / 1000000)) ms"
[ $rc -eq 0 ] && ok "rebind: 1 MiB while the client's port changed twice: $(fault_summary "$out")" ||
    fail "rebind: $(fault_summary "$out")"
n=$(relay_stat rebinds)
[ "$n" -ge 2 ] && ok "rebind: the relay rebound the client $n times" || fail "rebind: $n rebinds: $(relay_counters)"
# the server's record of that connection: it validated the new paths
migrated() { [ "$(sql "SELECT max(migrations) FROM connections" 2>/dev/null)" -gt 0 ] 2>/dev/null; }
wait_until 10 migrated && ok "rebind: the server followed the client ($(sql "SELECT max(migrations) FROM connections") migrations recorded)" ||
    fail "rebind: no migration recorded: $(sql "SELECT conn_id, migrations, paths FROM connections")"
fault_healthy
finish
