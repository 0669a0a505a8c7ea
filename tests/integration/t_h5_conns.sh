# SPDX-License-Identifier: MIT
# quicctl conns: the master asks every worker for its live connections.
# Three held pycurl connections must be listed (ids, peers, bytes), in the
# table and as JSON; with none held the list is empty.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
setup 2
h3_trap
h3_cert
h3_conf 2
h3_start || finish

bg sh -c "exec \"$H3_PYTHON\" \"$H3GET_PY\" --cacert \"$T/cert.pem\" --resolve localhost:$PORT:127.0.0.1 hold 3 \"$(h3_url "")\" 20 > \"$T/hold.log\" 2>&1"
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
assert len({x["id"] for x in c}) == 3, c
PY
n=$(quicctl conns | grep -c "127.0.0.1:")
[ "$n" = 3 ] && ok "conns table: 3 rows" || fail "conns table: $(quicctl conns)"
bg_kill
gone() { [ "$(quicctl conns --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["connections"]))')" = 0 ]; }
wait_until 10 gone && ok "no live connections after the client left" || fail "still listed: $(quicctl conns)"
finish
