# SPDX-License-Identifier: MIT
# Stats records of proxied requests (issue 24 part 7): through a proxy
# table to the Python backend of the test helpers and to a port that
# refuses connections, a 200, a 404 passed through, a slow 200 (the
# backend waits 300 ms), a 502 (connection refused) and an h2 request,
# plus one request quicd serves itself. The requests table must name the
# server of each proxied one (upstream), its answer's status (0: none
# came) and the upstream time (upstream_ms, no more than the request's
# duration and at least the backend's wait), and hold NULL in all three
# for the local one; `quicctl report --json` lists the two servers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/proxylib.sh"
need_pycurl
need_curl
h3_setup 1
new_port PA
new_port PD # reserved, nothing listens: connections are refused
backend a --port "$PA"

cat > "$T/proxy" <<TBL
group app
server app 127.0.0.1:$PA
group refused
server refused 127.0.0.1:$PD
route */app/ app strip
route */refused/ refused strip
TBL
echo "proxy_table = $T/proxy" >> "$CONF"
echo "local" > "$T/htdocs/local.txt"
h3_start || finish

# get NAME PATH WANT - one HTTP/3 request, its status checked
get() {
    h3get req "$(h3_url "$2")" "$T/$1" > "$T/$1.out" 2>&1
    grep -q "status=$3" "$T/$1.out" && ok "$1: $3" || fail "$1: $(tail -n 1 "$T/$1.out"), want $3"
}
get ok app/status/200 200
get missing app/status/404 404
get slow app/slow/300 200
get refused refused/x 502
get local local.txt 200
h2=$(curl -sS --max-time 30 --http2 --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1" \
    -o /dev/null -w '%{http_code}' "https://localhost:$PORT/app/status/201")
[ "$h2" = 201 ] && ok "h2: 201" || fail "h2: '$h2', want 201"

# The records arrive once each stream is freed and the batch committed.
rows() { [ "$(sql "SELECT count(*) FROM requests WHERE path IN ('/app/status/200', '/app/status/404', '/app/slow/300', '/refused/x', '/local.txt', '/app/status/201')")" = 6 ]; }
wait_until 15 rows && ok "6 request rows" || fail "request rows: $(sql "SELECT path FROM requests")"

# row PATH WANT - status, upstream, upstream_status of the request for PATH
row() {
    local got
    got=$(sql "SELECT status || ' ' || ifnull(upstream, 'NULL') || ' ' || ifnull(upstream_status, 'NULL') || ' ' || ifnull(upstream_ms, 'NULL') FROM requests WHERE path = '$1'")
    got=${got% *} # the time apart
    [ "$got" = "$2" ] && ok "$1: $got" || fail "$1: '$got', want '$2'"
}
row /app/status/200 "200 127.0.0.1:$PA 200"
row /app/status/404 "404 127.0.0.1:$PA 404"
row /app/slow/300 "200 127.0.0.1:$PA 200"
row /refused/x "502 127.0.0.1:$PD 0"
row /app/status/201 "201 127.0.0.1:$PA 201"
row /local.txt "200 NULL NULL"
local_ms=$(sql "SELECT ifnull(upstream_ms, 'NULL') || ' ' || protocol FROM requests WHERE path = '/local.txt'")
[ "$local_ms" = "NULL h3" ] && ok "local: upstream_ms NULL" || fail "local: upstream_ms, protocol '$local_ms'"
[ "$(sql "SELECT protocol FROM requests WHERE path = '/app/status/201'")" = h2 ] &&
    ok "h2 proxied row" || fail "h2 row protocol: $(sql "SELECT protocol FROM requests WHERE path = '/app/status/201'")"

# upstream_ms: a REAL, above 0, within the request's duration; the slow one waited 300 ms
bad=$(sql "SELECT path || ':' || ifnull(upstream_ms, 'NULL') || ':' || duration_us FROM requests WHERE upstream IS NOT NULL AND path != '/refused/x' AND NOT (typeof(upstream_ms) = 'real' AND upstream_ms > 0 AND upstream_ms * 1000 <= duration_us)")
[ -z "$bad" ] && ok "upstream_ms > 0 and within duration_us" || fail "upstream_ms: $bad"
# The refused connect: the proxy does not time a connect that failed
# (worker_proxy_connected leaves up_time_us 0), so the record leaves the
# time out and the row holds NULL, never 0 ms; once it is timed, it is
# checked as the others.
ref=$(sql "SELECT ifnull(upstream_ms, 'NULL') || ' ' || (upstream_ms IS NULL OR (upstream_ms > 0 AND upstream_ms * 1000 <= duration_us)) FROM requests WHERE path = '/refused/x'")
[ "${ref#* }" = 1 ] && ok "refused: upstream_ms ${ref% *}" || fail "refused: upstream_ms '$ref'"
slow=$(sql "SELECT upstream_ms >= 300 AND upstream_ms < 5000 FROM requests WHERE path = '/app/slow/300'")
[ "$slow" = 1 ] && ok "slow: upstream_ms $(sql "SELECT upstream_ms FROM requests WHERE path = '/app/slow/300'") >= 300" ||
    fail "slow: upstream_ms $(sql "SELECT upstream_ms FROM requests WHERE path = '/app/slow/300'")"

# quicctl report: proxied requests per upstream
quicctl report --since 1h --json > "$T/report.json" 2> "$T/report.err" || fail "report: $(cat "$T/report.err")"
/usr/bin/python3 - "$T/report.json" "127.0.0.1:$PA" "127.0.0.1:$PD" <<'PY' &&
import json, sys
r = json.load(open(sys.argv[1]))
u = {x["upstream"]: x for x in r["upstreams"]}
a, d = u[sys.argv[2]], u[sys.argv[3]]
assert len(u) == 2, u
assert (a["requests"], a["status_2xx"], a["status_4xx"], a["no_answer"]) == (4, 3, 1, 0), a
assert (d["requests"], d["status_5xx"], d["no_answer"]) == (1, 0, 1), d
assert 0 < a["p50_ms"] <= a["p99_ms"] and a["p99_ms"] >= 300, a
PY
    ok "report --json: upstreams" || fail "report upstreams: $(cat "$T/report.json")"
quicctl report --since 1h --csv | grep -q "^upstreams,127.0.0.1:$PA,requests,4\$" &&
    ok "report --csv: upstreams" || fail "report --csv: $(quicctl report --since 1h --csv | grep upstreams)"
finish
