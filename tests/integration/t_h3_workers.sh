# SPDX-License-Identifier: MIT
# Two workers share the load: 16 connections held open show up in both
# workers' live connection counts (quicctl status --json) and the counts
# fall back when they close; every CID the server issues on a connection
# names the worker that owns it (byte 1); migrated connections (new local
# port, so another 4-tuple) keep reaching their worker and complete.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
need_gtlsclient
h3_setup 2

D="$T/htdocs"
head -c 1048576 /dev/urandom > "$D/1m.bin"
NCONN=16
HOLD=120    # at most; the client is told to close them after the checks

h3_start || finish

# connections INSTANCE - the live connection count a worker reports
connections() { proc_field worker "$1" connections; }
both_busy() {
    local a b
    a=$(connections 0); b=$(connections 1)
    [ "${a:-0}" -gt 0 ] && [ "${b:-0}" -gt 0 ] && [ $((a + b)) -ge $NCONN ]
}
both_idle() { [ "$(connections 0)" = 0 ] && [ "$(connections 1)" = 0 ]; }

bg "$H3_PYTHON" "$H3GET_PY" --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1" \
    hold "$NCONN" "$(h3_url "")" "$HOLD" > "$T/hold.log" 2>&1
HOLD_PID=$BG_PID
held() { grep -q "^holding" "$T/hold.log"; }
if wait_until 15 held; then
    log "$(head -n 3 "$T/hold.log")"
    grep -q "^holding $NCONN connections ($NCONN/$NCONN ok" "$T/hold.log" &&
        ok "$NCONN connections open" || fail "client: $(cat "$T/hold.log")"
    # workers report their counts every second
    if wait_until 4 both_busy; then
        ok "both workers have connections: worker 0 $(connections 0), worker 1 $(connections 1)"
    else
        fail "connections not spread over both workers: worker 0 $(connections 0), worker 1 $(connections 1)"
    fi
else
    fail "the client could not open $NCONN connections: $(tail -n 5 "$T/hold.log")"
fi
# The client closes its connections (on SIGTERM, at the latest after HOLD
# seconds); the counts follow (closing/draining takes a few PTOs).
kill -TERM "$HOLD_PID" 2>/dev/null
wait_until 5 sh -c "! kill -0 $HOLD_PID 2>/dev/null"
grep -q "^hold: closed" "$T/hold.log" && ok "client closed its connections" || fail "hold: $(tail -n 3 "$T/hold.log")"
wait_until 6 both_idle && ok "connection counts back to 0" ||
    fail "counts after close: worker 0 $(connections 0), worker 1 $(connections 1)"

# server_cids LOG - every CID the server gave the client: the SCID of its
# Handshake packet and the NEW_CONNECTION_ID frames
server_cids() {
    { gtls_server_cid "$1"
      sed -nE 's/.* frm rx .* NEW_CONNECTION_ID\([^)]*\) .*cid=0x([0-9a-f]+) .*/\1/p' "$1"; } | sort -u
}

# Migration: four connections each move to a new local port before their
# request, so their packets arrive from another 4-tuple (and with a new
# CID) and must still reach the worker that owns the connection.
for i in 1 2 3 4; do
    L="$T/migrate$i.log"; DL="$T/migrate$i.dl"; mkdir -p "$DL"
    gtls 30 --change-local-addr=100ms --delay-stream=300ms --download="$DL" \
        127.0.0.1 "$PORT" "$(h3_url 1m.bin)" > "$L"
    w=$(gtls_worker "$L")
    new=$(sed -n 's/^Local address is now //p' "$L" | tail -n1)
    if [ -n "$new" ] && grep -F "Path validation against path {local:$new," "$L" | grep -q succeeded &&
        [ "$(gtls_status_count "$L" 200)" = 1 ] && cmp -s "$D/1m.bin" "$DL/1m.bin"; then
        ok "migration $i (worker ${w:-?}) to $new: 1 MiB byte-identical"
    else
        fail "migration $i (worker ${w:-?}, new address '${new}'):"
        grep -vE '^I[0-9]|^\[' "$L" | tail -n 8 | sed 's/^/    /'
    fi
    cids=$(server_cids "$L")
    bad=""
    for c in $cids; do
        [ ${#c} = 36 ] && [ "$(cid_worker "$c")" = "$w" ] || bad="$bad $c"
    done
    if [ -n "$cids" ] && [ -z "$bad" ]; then
        ok "migration $i: all $(echo "$cids" | wc -l) server CIDs are 18 bytes and name worker $w"
    else
        fail "migration $i: server CIDs not 18 bytes naming worker ${w:-?}:${bad:- none seen}"
    fi
done
finish
