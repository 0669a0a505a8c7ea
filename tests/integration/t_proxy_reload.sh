# SPDX-License-Identifier: MIT
# A reload that changes the proxy table under load (issue 24, part 8):
# h2load keeps GETs going over HTTP/3 while reloads add a server to the
# group, take the first one out, change a route and the group's policy;
# 0 requests fail, the new server takes requests after the reload and the
# removed one none (its connections drain, its process sees no new
# request), the kept server keeps its kept-alive connections (the backend
# sees no new connection from the reload), and the health state of a
# server that stays carries over (quicctl upstreams: since_ms unchanged).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/proxylib.sh"
need_pycurl
need_h2load
h3_setup 1
new_port PA
new_port PB
backend a --port "$PA" --record "$T/a.rec"
backend b --port "$PB" --record "$T/b.rec"
table() {
    cat > "$T/proxy.new" <<TBL
group app check=/healthz check_interval=200ms ${2:-}
$1
route */app/ app strip
route */other/ app strip
TBL
    mv "$T/proxy.new" "$T/proxy"
}
table "server app 127.0.0.1:$PA"
h3_conf 1 "proxy_table = $T/proxy"
h3_start || finish

since() {
    quicctl upstreams --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
print([s["since_ms"] for s in json.load(sys.stdin)["servers"] if s["server"] == sys.argv[1]][0])
' "$1"
}
conns_of() { /usr/bin/python3 -c '
import json, sys
print(len({json.loads(l)["conn"] for l in open(sys.argv[1]) if json.loads(l)["target"] != "/healthz"}))' "$1"; }
reqs_of() { grep -vc '"/healthz"' "$1"; }

h3get fetch "$(h3_url app/name)" "$T/first" > /dev/null 2>&1
SINCE_A=$(since "127.0.0.1:$PA")
h2load_h3 -D 6 -c 4 -m 4 "$(h3_url app/name)" > "$T/load.out" &
LPID=$!
sleep 1
A_CONNS=$(conns_of "$T/a.rec")
table "server app 127.0.0.1:$PA
server app 127.0.0.1:$PB"
out=$(quicctl reload 2>&1) && ok "reload adding server b: $out" || fail "reload: $out"
sleep 1.5
SINCE_A2=$(since "127.0.0.1:$PA")
B_MID=$(reqs_of "$T/b.rec")
A_CONNS_MID=$(conns_of "$T/a.rec")
table "server app 127.0.0.1:$PB" "policy=least_conn"
out=$(quicctl reload 2>&1) && ok "reload removing server a, least_conn: $out" || fail "reload: $out"
sleep 0.5
A_AFTER=$(reqs_of "$T/a.rec")
sleep 1.5
A_LATE=$(reqs_of "$T/a.rec")
wait "$LPID"
grep -E '^(requests|status codes)' "$T/load.out" | while IFS= read -r l; do log "  $l"; done
load_ok "$T/load.out" && ok "two reloads under load: $(done_of "$T/load.out") GETs, 0 failed" || fail "under the reloads: $(grep -E '^(requests|status)' "$T/load.out" | tr '\n' ' ')"
[ "$B_MID" -gt 0 ] && ok "the added server took $B_MID requests after the first reload" ||
    fail "the added server took no request"
[ "$A_LATE" = "$A_AFTER" ] && ok "the removed server gets no request after its reload ($A_AFTER in all)" ||
    fail "the removed server still got requests: $A_AFTER then $A_LATE"
[ "$A_CONNS_MID" = "$A_CONNS" ] && ok "the kept server's connections carried over the first reload ($A_CONNS)" ||
    fail "the kept server got new connections across the reload: $A_CONNS then $A_CONNS_MID"
[ "$(since "127.0.0.1:$PB")" != "" ] && ok "quicctl upstreams lists the new server" || fail "no state for b"
h3get fetch "$(h3_url other/name)" "$T/other" > /dev/null 2>&1
[ "$(cat "$T/other")" = b ] && ok "after the reloads the group is b alone" || fail "after: $(cat "$T/other")"
[ -n "$SINCE_A" ] && [ "$SINCE_A2" = "$SINCE_A" ] && ok "the kept server's health state carried over (since_ms $SINCE_A)" ||
    fail "the kept server's state changed across the reload: since_ms $SINCE_A then $SINCE_A2"
finish
