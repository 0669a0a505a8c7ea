# SPDX-License-Identifier: MIT
# TLS/TCP connections in the records, the access log and quicctl: while an
# HTTP/2 and an HTTP/1.1 connection are open (each reading /events),
# `quicctl status` counts them as the workers' TCP connections and
# `quicctl conns` lists them with protocols h2 and http/1.1; afterwards the
# stats database has their connection rows (protocol, ALPN, no QUIC
# version, the kernel's RTT and congestion controller) and one request row
# per request with its protocol, `quicctl report --json` counts requests
# by protocol, and the access log names HTTP/3, HTTP/2 and HTTP/1.1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
need_curl
h3_setup 1
h3_conf 1 "events_interval = 200ms" "access_log = $T/access.log"
h3_start || finish

CURL=(curl -sk --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1")
# Two held TCP connections: /events over h2 and over HTTP/1.1 (held until
# bg_kill below, however long the checks take on a loaded machine).
bg "${CURL[@]}" --http2 -N --max-time 120 -o "$T/ev2.out" "$(h3_url events)"
bg "${CURL[@]}" --http1.1 -N --max-time 120 -o "$T/ev1.out" "$(h3_url events)"
held() {
    quicctl status --json | /usr/bin/python3 -c '
import json, sys
w = [p for p in json.load(sys.stdin)["processes"] if p["role"] == "worker"]
sys.exit(0 if sum(p["tcp_connections"] for p in w) == 2 else 1)' 2>/dev/null
}
wait_until 5 held && ok "status --json: the workers count 2 TCP connections" ||
    fail "status --json: $(quicctl status --json)"
# conns_listed - conns --json lists both, each with its /events stream (a
# connection is counted from its accept, its stream comes after TLS)
conns_listed() {
    quicctl conns --json > "$T/conns.json" 2>&1
    /usr/bin/python3 - "$T/conns.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["connections"]
assert sorted(x["protocol"] for x in c) == ["h2", "http/1.1"], c
for x in c:
    assert x["peer"].startswith("127.0.0.1:") and x["streams"] == 1 and x["handshake"] == 1, x
PY
}
wait_until 5 conns_listed && ok "conns --json lists the h2 and the http/1.1 connection" ||
    fail "conns --json: $(cat "$T/conns.json")"

# Requests over each protocol: 3 over h2 (one connection), 2 over HTTP/1.1
# (keep-alive), 1 over HTTP/3.
"${CURL[@]}" --http2 -o /dev/null -o /dev/null -o /dev/null "$(h3_url "")" "$(h3_url api/time)" \
    "$(h3_url missing)" || fail "curl --http2"
"${CURL[@]}" --http1.1 -o /dev/null -o /dev/null "$(h3_url "")" "$(h3_url api/time)" ||
    fail "curl --http1.1"
h3get req "$(h3_url api/time)" "$T/h3.out" >/dev/null 2>&1 || fail "h3get"
bg_kill

rows() {
    [ "$(sql "SELECT count(*) FROM requests WHERE protocol = 'h2'")" -ge 4 ] &&
        [ "$(sql "SELECT count(*) FROM requests WHERE protocol = 'http/1.1'")" -ge 3 ] &&
        [ "$(sql "SELECT count(*) FROM requests WHERE protocol = 'h3'")" -ge 1 ] &&
        [ "$(sql "SELECT count(*) FROM connections WHERE protocol IN ('h2', 'http/1.1')")" -ge 4 ]
}
wait_until 15 rows && ok "request and connection rows for h2, http/1.1 and h3" ||
    fail "rows: $(sql "SELECT protocol, count(*) FROM requests GROUP BY protocol") / $(sql "SELECT protocol, count(*) FROM connections GROUP BY protocol")"
bad=$(sql "SELECT count(*) FROM connections WHERE protocol IN ('h2', 'http/1.1') AND NOT (alpn = protocol AND quic_version = 0 AND handshake_us > 0 AND cc != '' AND cipher LIKE 'TLS13%' AND bytes_in > 0 AND bytes_out > 0)")
[ "$bad" = 0 ] && ok "TCP connection rows: ALPN = protocol, no QUIC version, handshake, cipher, kernel cc, bytes" ||
    fail "TCP connection rows: $(sql "SELECT protocol, alpn, quic_version, handshake_us, cc, cipher, bytes_in, bytes_out FROM connections WHERE protocol != 'h3'")"
[ "$(sql "SELECT group_concat(path || ':' || status, ' ') FROM (SELECT path, status FROM requests WHERE protocol = 'h2' AND path != '/events' ORDER BY path)")" = "/:200 /api/time:200 /missing:404" ] &&
    ok "h2 request rows: paths and statuses" || fail "h2 rows: $(sql "SELECT path, status, protocol FROM requests")"
quicctl report --json > "$T/report.json" 2>&1
/usr/bin/python3 - "$T/report.json" <<'PY' && ok "report --json counts requests by protocol" ||
import json, sys
p = {x["protocol"]: x for x in json.load(open(sys.argv[1]))["protocols"]}
assert p["h2"]["requests"] >= 4 and p["http/1.1"]["requests"] >= 3 and p["h3"]["requests"] >= 1, p
assert p["h2"]["errors_4xx"] >= 1 and p["h2"]["connections"] >= 2, p
PY
    fail "report --json: $(cat "$T/report.json")"
# (the app writes the access log, apart from the stats database)
for v in HTTP/3 HTTP/2 HTTP/1.1; do
    wait_until 5 grep -q "\"GET /api/time $v\" 200 " "$T/access.log" && ok "access log: GET /api/time $v" ||
        fail "access log has no $v line: $(cat "$T/access.log")"
done
finish
