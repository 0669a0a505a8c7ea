# SPDX-License-Identifier: MIT
# Connection and request records: a known set of gtlsclient connections
# (several requests with 404s, a migration, a resumption with 0-RTT) must
# land in the stats database exactly, with the right statuses and body
# bytes, and `quicctl report --json` must agree with the database.
# Connections are matched by the server's first CID, which gtlsclient logs
# and the worker records as conn_id.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_gtlsclient
need_pycurl
h3_setup 1 "early_data = yes" "stats_interval = 1s"

D="$T/htdocs"
head -c 1024 /dev/urandom > "$D/1k.bin"
head -c 65536 /dev/urandom > "$D/64k.bin"
head -c 300000 /dev/urandom > "$D/300k.bin"

h3_start || finish

N=0
CIDS=""
# run NAME GTLSCLIENT-ARGS... - one bounded gtlsclient run; sets L, RC, CID
run() {
    local name=$1; shift
    N=$((N + 1))
    L="$T/$N-$name.log"
    mkdir -p "$T/$N.dl"
    gtls 30 --download="$T/$N.dl" "$@" > "$L"
    RC=$?
    CID=$(gtls_server_cid "$L")
    CIDS="$CIDS $CID"
    log "$name: gtlsclient exit $RC, server CID ${CID:-?}"
}
U() { h3_url "$1"; }

run several 127.0.0.1 "$PORT" "$(U 1k.bin)" "$(U 64k.bin)" "$(U missing-1)" "$(U 300k.bin)" "$(U missing-2)"
C_SEVERAL=$CID
run migration --change-local-addr=100ms --delay-stream=300ms 127.0.0.1 "$PORT" "$(U 300k.bin)"
C_MIG=$CID
S="$T/session.pem" P="$T/tp.pem"
run ticket --session-file="$S" --tp-file="$P" --wait-for-ticket 127.0.0.1 "$PORT" "$(U 1k.bin)"
C_TICKET=$CID
run resumed --session-file="$S" --tp-file="$P" 127.0.0.1 "$PORT" "$(U 64k.bin)" "$(U missing-3)"
C_RES=$CID

for c in $C_SEVERAL $C_MIG $C_TICKET $C_RES; do [ -n "$c" ] || fail "a run has no server CID"; done

# Every connection record arrives once the connection is freed (after the
# draining period) and the stats batch is committed (at most 1 s later).
have_all() {
    local n
    n=$(sql "SELECT count(*) FROM connections WHERE conn_id IN ('$C_SEVERAL','$C_MIG','$C_TICKET','$C_RES')" 2>/dev/null)
    [ "$n" = 4 ]
}
wait_until 15 have_all && ok "4 connection records" || fail "connection records: $(sql "SELECT conn_id FROM connections")"

# conn_check CID WHAT EXPECTED SQL-EXPR - one value of one connection
conn_check() {
    local got
    got=$(sql "SELECT $3 FROM connections WHERE conn_id = '$1'")
    [ "$got" = "$4" ] && ok "$2: $3 = $got" || fail "$2: $3 = '$got', want '$4'"
}
# req_check CID WHAT EXPECTED - path:status:bytes_out of its requests, sorted
req_check() {
    local got
    got=$(sql "SELECT group_concat(x, ' ') FROM (SELECT path || ':' || status || ':' || bytes_out AS x FROM requests WHERE conn_id = '$1' ORDER BY path)")
    [ "$got" = "$3" ] && ok "$2 requests: $got" || fail "$2 requests: '$got', want '$3'"
}

req_check "$C_SEVERAL" several "/1k.bin:200:1024 /300k.bin:200:300000 /64k.bin:200:65536 /missing-1:404:$(sql "SELECT bytes_out FROM requests WHERE path='/missing-1'") /missing-2:404:$(sql "SELECT bytes_out FROM requests WHERE path='/missing-2'")"
conn_check "$C_SEVERAL" several streams 5
conn_check "$C_SEVERAL" several "alpn || ' ' || resumed || ' ' || migrations" "h3 0 0"
conn_check "$C_SEVERAL" several "close_by || ':' || close_reason" "client:none"
conn_check "$C_SEVERAL" several "bytes_out > 366560 AND bytes_in > 1000 AND pkts_in > 5 AND pkts_out > 250 AND handshake_us > 0 AND srtt_us > 0 AND cwnd > 0 AND cipher IS NOT NULL" 1
req_check "$C_MIG" migration "/300k.bin:200:300000"
conn_check "$C_MIG" migration migrations 1
conn_check "$C_MIG" migration "length(paths) - length(replace(paths, ' ', '')) + 1" 2
req_check "$C_TICKET" ticket "/1k.bin:200:1024"
conn_check "$C_TICKET" ticket resumed 0
req_check "$C_RES" resumed "/64k.bin:200:65536 /missing-3:404:$(sql "SELECT bytes_out FROM requests WHERE path='/missing-3'")"
conn_check "$C_RES" resumed "resumed || ' ' || early_data" "1 1"
# HTTP/3 traffic is 'h3' in the protocol column (schema version 5); none
# of it was proxied (the upstream columns of version 6 are NULL)
[ "$(sql "PRAGMA user_version")" = 9 ] && ok "schema version 9" || fail "schema version $(sql "PRAGMA user_version")"
[ "$(sql "SELECT count(*) FROM requests WHERE upstream IS NOT NULL OR upstream_status IS NOT NULL OR upstream_ms IS NOT NULL")" = 0 ] &&
    ok "no upstream on local requests" || fail "upstream on local requests: $(sql "SELECT path, upstream FROM requests WHERE upstream IS NOT NULL")"
for c in $C_SEVERAL $C_MIG $C_TICKET $C_RES; do conn_check "$c" "$c" protocol h3; done
nh3=$(sql "SELECT count(*) FROM requests WHERE protocol = 'h3'")
[ "$nh3" -ge 9 ] && [ "$(sql "SELECT count(*) FROM requests WHERE protocol != 'h3'")" = 0 ] &&
    ok "every request is h3 ($nh3)" || fail "request protocols: $(sql "SELECT protocol, count(*) FROM requests GROUP BY protocol")"
n404=$(sql "SELECT count(*) FROM requests WHERE status = 404")
[ "$n404" = 3 ] && ok "three 404s" || fail "$n404 404s, want 3"

# Exactly those: anything else is the readiness probe's GET /.
others=$(sql "SELECT count(*) FROM requests WHERE conn_id NOT IN ('$C_SEVERAL','$C_MIG','$C_TICKET','$C_RES') AND path != '/'")
[ "$others" = 0 ] && ok "no other requests recorded" || fail "$others unexpected requests"
nreq=$(sql "SELECT count(*) FROM requests")
nconn=$(sql "SELECT count(*) FROM connections")
log "database: $nconn connections, $nreq requests"

# A sample per second from the worker.
wait_until 5 sh -c "[ \"\$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(\"file:$T/db/stats.db?mode=ro\", uri=True).execute(\"SELECT count(*) FROM samples\").fetchone()[0])')\" -ge 2 ]" &&
    ok "samples recorded" || fail "no samples"

# The report agrees with the database.
quicctl report --since 1h --json > "$T/report.json" 2> "$T/report.err" || fail "report: $(cat "$T/report.err")"
python3 - "$T/report.json" "$nconn" "$nreq" <<'PY' && ok "report --json agrees: $nconn connections, $nreq requests, 3 404s, 1 migration, 1 resumed" || fail "report disagrees: $(cat "$T/report.json")"
import json, sys
r = json.load(open(sys.argv[1]))
c, q = r["connections"], r["requests"]
codes = {x["status"]: x["count"] for x in r["status_codes"]}
assert c["count"] == int(sys.argv[2]), c
assert q["count"] == int(sys.argv[3]), q
assert codes.get("404") == 3, codes
assert c["migrations"] == 1 and c["migrated_connections"] == 1, c
assert c["resumed"] == 1 and c["early_data"] == 1, c
assert c["handshakes"] == c["count"] and c["handshake_p50_ms"] > 0, c
assert sum(w["requests"] for w in r["workers"]) == q["count"], r["workers"]
assert any(p["path"] == "/300k.bin" and p["count"] == 2 and p["bytes_out"] == 600000 for p in r["top_paths"]), r["top_paths"]
# per protocol: everything is h3; h2 and http/1.1 are listed with zeros
p = {x["protocol"]: x for x in r["protocols"]}
assert [x["protocol"] for x in r["protocols"]] == ["h3", "h2", "http/1.1"], r["protocols"]
assert p["h3"]["connections"] == c["count"] and p["h3"]["requests"] == q["count"], p
assert p["h3"]["bytes_out"] == c["bytes_out"] and p["h3"]["errors_4xx"] == 3 and p["h3"]["errors_5xx"] == 0, p
assert all(p[k][n] == 0 for k in ("h2", "http/1.1") for n in ("connections", "requests", "bytes_out", "errors_4xx", "errors_5xx")), p
PY
quicctl report --since 1h --csv > "$T/report.csv"
grep -q '^requests,count,' "$T/report.csv" && grep -q "^protocols,h3,requests,$nreq\$" "$T/report.csv" &&
    grep -q '^protocols,http/1.1,connections,0$' "$T/report.csv" && ok "report --csv (with protocols)" ||
    fail "report --csv: $(cat "$T/report.csv")"
quicctl report --since 1h > "$T/report.txt"
grep -q '^Latency, ms' "$T/report.txt" && grep -q '^QUIC health' "$T/report.txt" &&
    grep -q "^Request rows (request_history = all): $nreq in the window" "$T/report.txt" &&
    ok "report text (summary, request rows)" || fail "report text: $(cat "$T/report.txt")"
quicctl report --since bogus 2>/dev/null && fail "report --since bogus succeeded" || ok "report --since bogus fails"
finish
