# SPDX-License-Identifier: MIT
# quicctl conns: the master asks every worker for its live connections.
# Three held pycurl connections must be listed (ids, peers, bytes,
# protocol h3), in the table and as JSON; with none held the list is
# empty. quicctl status counts them as the workers' QUIC connections, and
# their TLS/TCP connections (tcp_connections, TCP) apart: none here.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 2
h3_start || finish

# (held for at most 120 s: the checks end it with bg_kill)
bg sh -c "exec \"$H3_PYTHON\" \"$H3GET_PY\" --cacert \"$T/cert.pem\" --resolve localhost:$PORT:127.0.0.1 hold 3 \"$(h3_url "")\" 120 > \"$T/hold.log\" 2>&1"
holding() { grep -q "^holding 3 connections" "$T/hold.log"; }
wait_until 10 holding || { fail "hold: $(cat "$T/hold.log")"; finish; }

quicctl conns --json > "$T/conns.json" 2> "$T/conns.err" || fail "conns --json: $(cat "$T/conns.err")"
python3 - "$T/conns.json" <<'PY' && ok "conns --json lists the 3 held connections" || fail "conns --json: $(cat "$T/conns.json")"
import json, sys
c = json.load(open(sys.argv[1]))["connections"]
assert len(c) == 3, c
for x in c:
    assert x["peer"].startswith("127.0.0.1:"), x
    assert len(x["id"]) >= 16 and x["handshake"] == 1 and x["bytes_out"] > 0, x
    assert x["worker"] in (0, 1), x
    assert x["protocol"] == "h3", x
assert len({x["id"] for x in c}) == 3, c
PY
quicctl conns > "$T/conns.txt" 2>&1
n=$(grep -c "127.0.0.1:" "$T/conns.txt")
[ "$n" = 3 ] && ok "conns table: 3 rows" || fail "conns table: $(cat "$T/conns.txt")"
[ "$(awk 'NR == 1 { print $3 } /127\.0\.0\.1:/ { print $3 }' "$T/conns.txt" | sort | uniq -c | tr -s ' ')" = "$(printf ' 1 PROTO\n 3 h3')" ] &&
    ok "conns table: PROTO h3 on each row" || fail "conns table protocol: $(cat "$T/conns.txt")"

# quicctl status: the 3 are QUIC connections (workers report every second); no TCP ones
quic_conns() {
    quicctl status --json | python3 -c '
import json, sys
w = [p for p in json.load(sys.stdin)["processes"] if p["role"] == "worker"]
assert len(w) == 2 and all(p["tcp_connections"] == 0 for p in w), w
sys.exit(0 if sum(p["connections"] for p in w) == 3 else 1)' 2>> "$T/status.err"
}
wait_until 3 quic_conns && ok "status --json: 3 connections, tcp_connections 0 on both workers" ||
    fail "status --json: $(quicctl status --json) $(tail -n 3 "$T/status.err" 2>/dev/null)"
quicctl status | awk '$1 == "ROLE" && $8 == "TCP" { h = 1 } $1 == "worker" && $8 == "0" { w++ } END { exit !(h && w == 2) }' &&
    ok "status table: a TCP column, 0 for each worker" || fail "status table: $(quicctl status)"
bg_kill
gone() { [ "$(quicctl conns --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["connections"]))')" = 0 ]; }
wait_until 10 gone && ok "no live connections after the client left" || fail "still listed: $(quicctl conns)"
finish
