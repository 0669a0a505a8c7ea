# SPDX-License-Identifier: MIT
# quicctl report for a person (issue 25): on a database with known
# per-interval rows (metric_intervals, written here for a window in 2020)
# the text equals tests/golden/report.txt (TZ=UTC): the window and its
# length, rates, requests by protocol and class with shares, latency
# percentiles from the histograms with their sample counts, closes by side
# and code, QUIC health, processes, --by worker, and warnings that say
# what to do; --json has the same percentiles (p50 5 ms, p90 25 ms, p99
# 250 ms of a fixed set of 100 durations) and --by minute its lines. With
# rows of route_intervals, --by route's table equals
# tests/golden/report-route.txt, and --json and --csv have its numbers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1 "udp_buffer = 4MB"
h3_start || finish
quicctl metrics > "$T/layout.txt" || fail "quicctl metrics"
suite_stop_master
GOLDEN="$QD_SRCDIR/tests/golden/report.txt"
[ -f "$GOLDEN" ] || GOLDEN="$(dirname "$0")/../golden/report.txt"

# the rows: the slot of each series from the text's order (histograms:
# 14 buckets, then the sum; _count has no slot), each row's non-zero slots
# encoded as quicd does (skip count, value; LEB128)
/usr/bin/python3 - "$T/layout.txt" "$T/db/stats.db" <<'PY' || die "cannot write the rows"
import sqlite3, sys
slots = []
for line in open(sys.argv[1]):
    if line.startswith("#"):
        continue
    name = line.split(" ")[0]
    if name.split("{")[0].endswith("_count"):
        continue
    slots.append(name)
idx = {n: i for i, n in enumerate(slots)}
def leb(v):
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)
def blob(vals):
    out, last = bytearray(), -1
    for i in sorted(vals):
        out += leb(i - last - 1) + leb(vals[i])
        last = i
    return bytes(out)
def h(name, proto, le):
    return idx['%s_bucket{%s,le="%s"}' % (name, proto, le)]
T0 = 1577836800000  # 2020-01-01 00:00:00 UTC
rows = []
# worker 0, three intervals of 10 s: HTTP/3 and HTTP/2 traffic
for k in range(3):
    v = {}
    def add(series, n):
        v[idx[series]] = v.get(idx[series], 0) + n
    if k == 0:
        add('quicd_http_requests_total{protocol="h3",class="2xx"}', 90)
        add('quicd_http_requests_total{protocol="h3",class="4xx"}', 5)
        add('quicd_http_requests_total{protocol="h3",class="5xx"}', 3)
        add('quicd_http_requests_total{protocol="h3",class="none"}', 2)
        # 100 durations: 50 of 3 ms, 40 of 20 ms, 9 of 200 ms, 1 of 30 s
        for le, n in (("0.005", 50), ("0.025", 40), ("0.25", 9), ("+Inf", 1)):
            v[h("quicd_http_request_duration_seconds", 'protocol="h3"', le)] = n
        v[idx['quicd_http_request_duration_seconds_sum{protocol="h3"}']] = 50 * 3000 + 40 * 20000 + 9 * 200000 + 30000000
        for le, n in (("0.001", 60), ("0.0025", 30), ("0.01", 10)):
            v[h("quicd_http_time_to_first_byte_seconds", 'protocol="h3"', le)] = n
        add('quicd_connections_total{transport="quic"}', 20)
        add('quicd_handshakes_total{transport="quic",result="ok"}', 18)
        add('quicd_handshakes_total{transport="quic",result="timeout"}', 2)
        for le, n in (("0.005", 10), ("0.01", 8)):
            v[h("quicd_handshake_duration_seconds", 'transport="quic"', le)] = n
        add('quicd_quic_connection_closes_total{side="remote",code="h3_no_error"}', 15)
        add('quicd_quic_connection_closes_total{side="local",code="idle_timeout"}', 3)
        add('quicd_quic_connection_closes_total{side="local",code="handshake_timeout"}', 2)
        add('quicd_quic_early_data_total{result="accepted"}', 4)
        add('quicd_quic_early_data_total{result="rejected"}', 1)
        add('quicd_quic_migrations_total', 1)
        add('quicd_quic_path_validations_total{result="ok"}', 1)
        add('quicd_udp_datagrams_received_total', 1000)
        add('quicd_udp_datagrams_sent_total', 1500)
        add('quicd_http_response_body_bytes_total{protocol="h3"}', 2500000)
    elif k == 1:
        add('quicd_http_requests_total{protocol="h2",class="2xx"}', 20)
        for le, n in (("0.01", 20),):
            v[h("quicd_http_request_duration_seconds", 'protocol="h2"', le)] = n
        add('quicd_connections_total{transport="tcp"}', 2)
        add('quicd_handshakes_total{transport="tcp",result="ok"}', 2)
        add('quicd_quic_packets_dropped_total{reason="malformed"}', 3)
        add('quicd_quic_packets_dropped_total{reason="undecryptable"}', 1)
        add('quicd_quic_version_negotiation_sent_total', 1)
        add('quicd_quic_stateless_resets_sent_total', 2)
        add('quicd_udp_receive_queue_drops_total', 7)
        add('quicd_http_response_body_bytes_total{protocol="h2"}', 400000)
    else:
        add('quicd_quic_retry_sent_total', 5)
        add('quicd_quic_tokens_validated_total{result="valid"}', 5)
        v[idx['quicd_quic_retry_active']] = 1
        add('quicd_stats_records_sent_total', 120)
    v[idx['quicd_udp_receive_buffer_bytes']] = 212992
    rows.append((T0 + 10000 * (k + 1), 2, 0, 10000, blob(v)))
# worker 1: one interval of HTTP/1.1; the master: a restart of a worker
v = {idx['quicd_http_requests_total{protocol="http/1.1",class="2xx"}']: 10,
     idx['quicd_udp_receive_buffer_bytes']: 8388608}
v[h("quicd_http_request_duration_seconds", 'protocol="http/1.1"', "0.05")] = 10
rows.append((T0 + 20000, 2, 1, 10000, blob(v)))
rows.append((T0 + 30000, 0, 0, 10000, blob({idx['quicd_process_restarts_total{role="worker"}']: 1,
                                            idx['quicd_reloads_total{result="ok"}']: 1})))
# outside the window: not counted
rows.append((T0 + 3600000 + 10000, 2, 0, 10000, blob({idx['quicd_http_requests_total{protocol="h3",class="2xx"}']: 1000})))
db = sqlite3.connect(sys.argv[2])
db.executemany("INSERT INTO metric_intervals (time_ms, role, instance, interval_ms, slots) VALUES (?, ?, ?, ?, ?)", rows)
# the aggregates by route (route_intervals): classes 1xx..none, bytes, a histogram of
# 14 buckets (not cumulative) and the sum in microseconds, each a varint
LE = ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
def durations(obs):
    v = [0] * 15
    for le, n, us in obs:
        v[LE.index(le)] += n
        v[14] += n * us
    return b"".join(leb(x) for x in v)
def route(t, inst, name, cls, bin_, bout, obs):
    c = [cls.get(k, 0) for k in ("1xx", "2xx", "3xx", "4xx", "5xx", "none")]
    return (t, 2, inst, 10000, name, sum(c), *c, bin_, bout, durations(obs))
routes = [
    route(T0 + 10000, 0, "*/api", {"2xx": 40, "5xx": 2}, 1000, 200000, [("0.005", 30, 4000), ("0.05", 12, 40000)]),
    route(T0 + 20000, 1, "*/api", {"2xx": 10}, 0, 50000, [("0.01", 10, 8000)]),
    route(T0 + 20000, 0, "local", {"2xx": 50, "4xx": 5, "none": 1}, 0, 2500000, [("0.001", 56, 500)]),
    route(T0 + 30000, 0, "example.org/static", {"3xx": 4}, 0, 0, [("0.001", 4, 300)]),
    route(T0 + 3600000 + 10000, 0, "*/api", {"2xx": 1000}, 0, 0, [("0.001", 1000, 100)]),
]
db.executemany("INSERT INTO route_intervals (time_ms, role, instance, interval_ms, route, requests, "
               "status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, status_none, bytes_in, "
               "bytes_out, durations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", routes)
db.commit()
PY
W="--from 2020-01-01T00:00:00 --to 2020-01-01T01:00:00"
# shellcheck disable=SC2086
TZ=UTC quicctl report $W --by worker > "$T/report.txt" 2> "$T/report.err" || fail "report: $(cat "$T/report.err")"
if diff -u "$GOLDEN" "$T/report.txt" > "$T/report.diff"; then
    ok "report text equals tests/golden/report.txt"
else
    fail "report text differs from the golden file: $(cat "$T/report.diff")"
    cp "$T/report.txt" "${QD_REPORT_OUT:-/dev/null}" 2>/dev/null
fi
# shellcheck disable=SC2086
TZ=UTC quicctl report $W --by minute --json > "$T/report.json" || fail "report --json"
/usr/bin/python3 - "$T/report.json" <<'PY' && ok "report --json: the percentiles of the fixed set, the classes, by minute" || fail "report --json: $(cat "$T/report.json")"
import json, sys
r = json.load(open(sys.argv[1]))
lat = {x["series"]: x for x in r["latency"]}
d = lat["h3_duration"]
assert (round(d["p50_ms"], 3), round(d["p90_ms"], 3), round(d["p99_ms"], 3), d["samples"]) == (5.0, 25.0, 250.0, 100), d
assert lat["h2_duration"]["samples"] == 20 and lat["quic_handshake"]["samples"] == 18, lat
cls = {x["class"]: x for x in r["status_classes"]}
assert cls["2xx"]["requests"] == 120 and cls["5xx"]["requests"] == 3 and cls["none"]["requests"] == 2, cls
assert r["summary"]["requests"] == 130 and r["summary"]["reports"] == 5, r["summary"]
assert r["quic"]["dropped_undecryptable"] == 1 and r["quic"]["udp_receive_queue_drops"] == 7, r["quic"]
assert [x["minute"] for x in r["by_minute"]] == ["2020-01-01 00:00"], r["by_minute"]
assert r["by_minute"][0]["requests"] == 130, r["by_minute"]
PY
# --by route: the routes' table (tests/golden/report-route.txt), most requests first,
# and the same numbers in --json and --csv
GOLDEN_ROUTE="${GOLDEN%report.txt}report-route.txt"
# shellcheck disable=SC2086
TZ=UTC quicctl report $W --by route > "$T/route.txt" 2> "$T/route.err" || fail "report --by route: $(cat "$T/route.err")"
awk '/^By route/ { on = 1 } on && /^$/ { exit } on' "$T/route.txt" > "$T/route-table.txt"
if diff -u "$GOLDEN_ROUTE" "$T/route-table.txt" > "$T/route.diff"; then
    ok "report --by route: the table equals tests/golden/report-route.txt"
else
    fail "report --by route differs from the golden file: $(cat "$T/route.diff")"
fi
# shellcheck disable=SC2086
TZ=UTC quicctl report $W --by route --json > "$T/route.json" || fail "report --by route --json"
/usr/bin/python3 - "$T/route.json" <<'PY' && ok "report --by route --json: requests, classes, bytes, percentiles per route" || fail "report --by route --json: $(cat "$T/route.json")"
import json, sys
r = {x["route"]: x for x in json.load(open(sys.argv[1]))["by_route"]}
assert list(r) == ["local", "*/api", "example.org/static"], list(r)
a = r["*/api"]
assert (a["requests"], a["status_2xx"], a["status_5xx"], a["bytes_in"], a["bytes_out"]) == (52, 50, 2, 1000, 250000), a
assert (round(a["p50_ms"], 3), round(a["p99_ms"], 3)) == (4.667, 48.917), a
assert r["local"]["status_none"] == 1 and r["example.org/static"]["status_3xx"] == 4, r
PY
# shellcheck disable=SC2086
TZ=UTC quicctl report $W --by route --csv > "$T/route.csv" || fail "report --by route --csv"
grep -qx 'by_route,\*/api,requests,52' "$T/route.csv" && grep -qx 'by_route,local,status_4xx,5' "$T/route.csv" &&
    ok "report --by route --csv: by_route,ROUTE,COLUMN,VALUE lines" || fail "csv: $(grep by_route "$T/route.csv")"
finish
