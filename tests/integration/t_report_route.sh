# SPDX-License-Identifier: MIT
# The aggregates by route (issue 25): two workers serve requests for two
# routes of the proxy table (a backend's and a local one) and for paths no
# route matches ("local"); quicctl report --by route (route_intervals)
# counts each route's requests and status classes exactly as the traffic
# made them, and its bytes, whatever request_history keeps (none here).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/proxylib.sh"
need_pycurl
h3_setup 2 "stats_interval = 1s" "request_history = none"
new_port PA
backend a --port "$PA"
cat > "$T/proxy" <<TBL
group app
server app 127.0.0.1:$PA
route */api/ app strip
route */static/ local
TBL
echo "proxy_table = $T/proxy" >> "$CONF"
mkdir -p "$T/htdocs/static"
head -c 5000 /dev/urandom > "$T/htdocs/static/a.bin"
h3_start || finish

# by_route FILE - the --by route lines of the last hour as "ROUTE requests 2xx 4xx 5xx bytes_out"
by_route() {
    quicctl report --since 1h --by route --json > "$1.json" 2> "$1.err" || return 1
    /usr/bin/python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["by_route"]:
    print(r["route"], r["requests"], r["status_2xx"], r["status_4xx"], r["status_5xx"], r["bytes_out"])
' "$1.json" > "$1"
}
# route_field FILE ROUTE N - field N of ROUTE's line (0 when the route has none)
route_field() { awk -v r="$2" -v n="$3" '$1 == r { v = $n } END { print v + 0 }' "$1"; }

# h3_start's requests are counted before the baseline (two intervals on)
sleep 2.5
by_route "$T/r0" || fail "report --by route: $(cat "$T/r0.err")"
local0=$(route_field "$T/r0" local 2)
[ "$local0" -ge 1 ] && [ "$(route_field "$T/r0" '*/api/' 2)" = 0 ] &&
    ok "before: h3_start's $local0 request(s) under local, none under the routes" ||
    fail "before: $(cat "$T/r0")"

for i in 1 2; do h3get fetch "$(h3_url api/x$i)" - > /dev/null || fail "GET /api/x$i"; done
h3get fetch "$(h3_url api/status/503)" - > /dev/null 2>&1
for i in 1 2; do h3get fetch "$(h3_url static/a.bin)" - > /dev/null || fail "GET /static/a.bin"; done
h3get fetch "$(h3_url static/missing)" - > /dev/null 2>&1
for i in 1 2 3 4; do h3get fetch "$(h3_url "")" - > /dev/null || fail "GET / $i"; done

counted() { by_route "$T/r1" && [ "$(route_field "$T/r1" local 2)" -ge $((local0 + 4)) ] &&
    [ "$(route_field "$T/r1" '*/api/' 2)" -ge 3 ] && [ "$(route_field "$T/r1" '*/static/' 2)" -ge 3 ]; }
wait_until 10 counted || log "not all counted in 10 s: $(cat "$T/r1")"
sleep 1.5 # one more interval: nothing more comes
by_route "$T/r1" || fail "report --by route: $(cat "$T/r1.err")"
line() { awk -v r="$1" '$1 == r { $1 = ""; print substr($0, 2) }' "$T/r1"; }
[ "$(line '*/api/' | cut -d' ' -f1-4)" = "3 2 0 1" ] &&
    ok "*/api/: 3 requests, 2 2xx and 1 5xx (a backend's route)" || fail "*/api/: $(line '*/api/')"
[ "$(line '*/static/' | cut -d' ' -f1-4)" = "3 2 1 0" ] && [ "$(line '*/static/' | cut -d' ' -f5)" -ge 10000 ] &&
    ok "*/static/: 3 requests, 2 2xx and 1 4xx, $(line '*/static/' | cut -d' ' -f5) bytes out (a local route)" ||
    fail "*/static/: $(line '*/static/')"
[ "$(route_field "$T/r1" local 2)" = $((local0 + 4)) ] && [ "$(route_field "$T/r1" local 3)" = $((local0 + 4)) ] &&
    ok "local: +4 requests no route matched" || fail "local: $(line local), $local0 before"
[ "$(wc -l < "$T/r1")" = 3 ] && ok "three routes, no others" || fail "routes: $(cat "$T/r1")"
rows=$(/usr/bin/python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM requests").fetchone()[0])' "$T/db/stats.db")
[ "$rows" = 0 ] && ok "request_history = none: no request rows, the counts all the same" ||
    fail "$rows request rows"
quicctl report --since 1h --by route > "$T/r1.txt" || fail "report --by route (text)"
grep -qE '^  \*/api/ +3 ' "$T/r1.txt" && ok "the text has the routes' table" || fail "text: $(cat "$T/r1.txt")"
finish
