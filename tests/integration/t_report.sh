# SPDX-License-Identifier: MIT
# quicctl report for a person (issue 25): on a database with known
# per-interval rows (metric_intervals, written here for a window in 2020)
# the text equals tests/golden/report.txt (TZ=UTC): the window and its
# length, rates, requests by protocol and class with shares, latency
# percentiles from the histograms with their sample counts, closes by side
# and code, QUIC health, processes, --by worker, and warnings that say
# what to do; --json has the same percentiles (p50 5 ms, p90 25 ms, p99
# 250 ms of a fixed set of 100 durations) and --by minute its lines.
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
finish
