# SPDX-License-Identifier: MIT
# Metrics (issue 25): quicctl metrics prints the Prometheus text that
# /metrics serves (promtool check metrics is clean), and its counters
# move by exactly the traffic the test makes: requests by protocol and
# status class over HTTP/3, HTTP/2 and HTTP/1.1, their latency
# histograms, handshakes by transport, a Version Negotiation for an
# unknown version, drops of malformed datagrams. The counters never go
# down: not across a kill -9 of stats (which reads its totals back from
# the database), of a worker, nor across a reload; and the gauges (open
# connections, socket buffers) follow the processes alive. Per worker
# (worker label): each worker's series is its own count, and they add up
# to the total. The listener reports its own (socket sets, sockets).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
need_curl
h3_setup 2 "stats_interval = 1s"
h3_start || finish
CURL=(curl -sk --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1")

# scrape FILE - quicctl metrics into FILE
scrape() { quicctl metrics > "$1" 2> "$1.err"; }
# value FILE SERIES - a series' value in a scrape (empty when absent)
value() { awk -v s="$2" '$1 == s { print $2; exit }' "$1"; }
# grew FILE0 FILE1 SERIES N - the series grew by exactly N between the scrapes
grew() {
    local a b
    a=$(value "$1" "$3") b=$(value "$2" "$3")
    [ -n "$a" ] && [ -n "$b" ] && [ "$(awk -v a="$a" -v b="$b" 'BEGIN { print b - a }')" = "$4" ]
}
# settled FILE SERIES WANT - scrape into FILE until SERIES is at least WANT (10 s)
settled() {
    local f=$1 s=$2 want=$3
    at_least() { scrape "$f" && v=$(value "$f" "$s") && [ -n "$v" ] &&
        awk -v v="$v" -v w="$want" 'BEGIN { exit !(v >= w) }'; }
    wait_until 10 at_least
}

H3REQ='quicd_http_requests_total{protocol="h3",class="2xx"}'
# h3_start's request is counted before the baseline is taken (an interval later)
settled "$T/m0" "$H3REQ" 1 || fail "h3_start's request was not counted in 10 s"
sleep 1.5
scrape "$T/m0" && [ -s "$T/m0" ] && ok "quicctl metrics answers ($(wc -l < "$T/m0") lines)" ||
    fail "quicctl metrics: $(cat "$T/m0.err")"
if command -v promtool > /dev/null; then
    promtool check metrics < "$T/m0" > "$T/promtool.out" 2>&1 &&
        ok "promtool check metrics: clean" || fail "promtool check metrics: $(head -n 5 "$T/promtool.out")"
else
    log "promtool not found (contrib/install-deps installs prometheus): not checked here"
fi
for f in quicd_http_requests_total quicd_quic_packets_dropped_total \
    quicd_http_request_duration_seconds quicd_quic_connection_closes_total quicd_process_restarts_total; do
    grep -q "^# TYPE $f " "$T/m0" || fail "no family $f in the text"
done
# every series is there from the start, at zero
[ "$(value "$T/m0" 'quicd_http_requests_total{protocol="h2",class="5xx"}')" = 0 ] &&
    ok "series present before any traffic" || fail "h2 5xx series missing or not 0"

base=$(value "$T/m0" "$H3REQ")
# traffic: HTTP/3 5 x 200 and 2 x 404 (a connection each), HTTP/2 3 x 200 on one
# connection, HTTP/1.1 2 x 200 on one connection
for i in 1 2 3 4 5; do h3get fetch "$(h3_url "")" - > /dev/null || fail "h3 GET $i"; done
for i in 1 2; do h3get fetch "$(h3_url nope)" - > /dev/null || fail "h3 GET 404 $i"; done
"${CURL[@]}" --http2 -o /dev/null -o /dev/null -o /dev/null "$(h3_url "")" "$(h3_url "")" "$(h3_url "")" ||
    fail "curl --http2"
"${CURL[@]}" --http1.1 -o /dev/null -o /dev/null "$(h3_url "")" "$(h3_url "")" || fail "curl --http1.1"
# a Version Negotiation, and three datagrams too short to be QUIC (the
# minimum is 21 bytes) and ten long headers of no connection that are no
# Initial (type Handshake)
/usr/bin/python3 - "$PORT" <<'PY'
import os, socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst = ("127.0.0.1", port)
vn = bytes([0xc0]) + bytes.fromhex("1a2a3a4a") + bytes([8]) + os.urandom(8) + bytes([8]) + os.urandom(8)
s.sendto(vn + bytes(1200 - len(vn)), dst)
for i in range(3):
    s.sendto(bytes([0x40]) + os.urandom(10), dst)
hs = bytes([0xe0]) + bytes.fromhex("00000001") + bytes([8]) + os.urandom(8) + bytes([8]) + os.urandom(8)
for i in range(10):
    s.sendto(hs + os.urandom(200), dst)
PY
settled "$T/m1" "$H3REQ" $((base + 5)) &&
    settled "$T/m1" 'quicd_http_requests_total{protocol="http/1.1",class="2xx"}' 2 &&
    settled "$T/m1" 'quicd_quic_version_negotiation_sent_total' 1 || log "the counters did not all arrive in 10 s"
sleep 1.5 # one more interval: everything of the traffic has been reported
scrape "$T/m1"
check() { # check SERIES N WHAT
    grew "$T/m0" "$T/m1" "$1" "$2" && ok "$3: +$2" ||
        fail "$3: $1 went from $(value "$T/m0" "$1") to $(value "$T/m1" "$1"), want +$2"
}
check "$H3REQ" 5 "HTTP/3 2xx"
check 'quicd_http_requests_total{protocol="h3",class="4xx"}' 2 "HTTP/3 4xx"
check 'quicd_http_requests_total{protocol="h2",class="2xx"}' 3 "HTTP/2 2xx"
check 'quicd_http_requests_total{protocol="http/1.1",class="2xx"}' 2 "HTTP/1.1 2xx"
check 'quicd_http_request_duration_seconds_count{protocol="h3"}' 7 "HTTP/3 duration histogram"
check 'quicd_http_request_duration_seconds_bucket{protocol="h2",le="+Inf"}' 3 "HTTP/2 +Inf bucket"
check 'quicd_http_time_to_first_byte_seconds_count{protocol="http/1.1"}' 2 "HTTP/1.1 TTFB histogram"
check 'quicd_handshakes_total{transport="tcp",result="ok"}' 2 "TLS handshakes over TCP"
check 'quicd_connections_total{transport="tcp"}' 2 "TCP connections"
check 'quicd_quic_version_negotiation_sent_total' 1 "Version Negotiation"
check 'quicd_quic_packets_dropped_total{reason="malformed"}' 3 "short datagrams dropped as malformed"
check 'quicd_quic_packets_dropped_total{reason="not_initial"}' 10 "long headers of no connection"
# h3get connections: 7 handshakes at least (h3_start's retry adds before m0)
q=$(awk -v a="$(value "$T/m0" 'quicd_handshakes_total{transport="quic",result="ok"}')" \
    -v b="$(value "$T/m1" 'quicd_handshakes_total{transport="quic",result="ok"}')" 'BEGIN { print b - a }')
[ "$q" = 7 ] && ok "QUIC handshakes: +7" || fail "QUIC handshakes: +$q, want 7"
sum=$(awk '$1 ~ /^quicd_http_request_duration_seconds_sum\{protocol="h3"\}/ { print $2 }' "$T/m1")
awk -v s="$sum" 'BEGIN { exit !(s > 0 && s < 60) }' && ok "HTTP/3 duration sum ${sum}s" ||
    fail "HTTP/3 duration sum '$sum'"
rb=$(value "$T/m1" quicd_udp_receive_buffer_bytes)
[ -n "$rb" ] && [ "$rb" -gt 0 ] && ok "gauge: UDP receive buffer $rb bytes" || fail "UDP receive buffer gauge '$rb'"

# per worker: the worker label is a worker's place in its generation (at the
# start, its id); each worker's series is what that worker served (its
# request rows, request_history = all), they add up to the total, and only
# the configured workers have series
rows_of() { # rows_of WORKER - the request rows of a worker
    /usr/bin/python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM requests WHERE worker = ?", (int(sys.argv[2]),)).fetchone()[0])' \
        "$T/db/stats.db" "$1"
}
sumw=0
for w in 0 1; do
    own=$(rows_of "$w")
    got=$(value "$T/m1" "quicd_worker_requests_total{worker=\"$w\"}")
    d=$(awk -v a="$(value "$T/m0" "quicd_worker_requests_total{worker=\"$w\"}")" -v b="$got" 'BEGIN { print b - a }')
    [ -n "$own" ] && [ "$got" = "$own" ] && ok "worker $w: its series is what it served ($got, +$d)" ||
        fail "worker $w: quicd_worker_requests_total{worker=\"$w\"} is '$got', its request rows $own"
    sumw=$((sumw + d))
    cpu=$(value "$T/m1" "quicd_worker_cpu_seconds_total{worker=\"$w\"}")
    rss=$(value "$T/m1" "quicd_worker_resident_bytes{worker=\"$w\"}")
    awk -v c="$cpu" -v r="$rss" 'BEGIN { exit !(c > 0 && r > 1000000) }' &&
        ok "worker $w: CPU ${cpu}s, resident $rss bytes" || fail "worker $w: CPU '$cpu', resident '$rss'"
done
sumt=$(awk 'FNR == NR { if ($1 ~ /^quicd_http_requests_total\{/) a += $2; next }
            $1 ~ /^quicd_http_requests_total\{/ { b += $2 } END { print b - a }' "$T/m0" "$T/m1")
[ "$sumw" = "$sumt" ] && [ "$sumt" = 12 ] && ok "the workers' series add up to the total (+$sumt)" ||
    fail "the workers' series grew by $sumw, the total by $sumt, want 12"
grep -q 'worker="2"' "$T/m1" && fail "a series for worker 2 of 2" || ok "series for the 2 configured workers only"
# the listener's own: a socket set for each worker, its sockets (a UDP and a TCP
# one per worker and address: as many of each as its log says)
lsock=$(sed -n 's/.*listener.*listening on [0-9]* address.*: \([0-9]*\) UDP and \([0-9]*\) TCP sockets.*/\1 \2/p' "$T/quicd.log" | head -n 1)
[ "$(value "$T/m1" 'quicd_listener_socket_handoffs_total{result="ok"}')" = 2 ] && [ -n "$lsock" ] &&
    [ "$(value "$T/m1" 'quicd_listener_sockets_open{transport="quic"}') $(value "$T/m1" 'quicd_listener_sockets_open{transport="tcp"}')" = "$lsock" ] &&
    ok "listener: 2 socket sets handed over; UDP and TCP sockets open: $lsock" ||
    fail "listener: $(grep '^quicd_listener' "$T/m1" | tr '\n' ' ')"

# monotonic: every counter of m2 (after the kills and a reload) >= m1
monotonic() { # monotonic FILE_BEFORE FILE_AFTER - the counters that went down
    awk 'FNR == NR { if ($1 !~ /^#/) v[$1] = $2; next }
         /^# TYPE / { type[$3] = $4; next }
         { n = $1; sub(/\{.*/, "", n); b = n; sub(/_(bucket|sum|count)$/, "", b)
           t = type[n] != "" ? type[n] : type[b]
           if ((t == "counter" || t == "histogram") && ($1 in v) && $2 + 0 < v[$1] + 0)
               print $1, v[$1], "->", $2 }' "$1" "$2"
}
SPID=$(proc_field stats - pid)
kill -9 "$SPID"
new_stats() { p=$(proc_field stats - pid); [ -n "$p" ] && [ "$p" != "$SPID" ] && [ "$(proc_field stats - state)" = running ]; }
wait_until 10 new_stats || fail "stats did not come back after kill -9"
settled "$T/m2" "$H3REQ" $((base + 5))
down=$(monotonic "$T/m1" "$T/m2")
[ -z "$down" ] && ok "kill -9 of stats: no counter went down" || fail "after kill -9 of stats: $down"
WPID=$(proc_field worker 0 pid)
kill -9 "$WPID"
new_worker() { p=$(proc_field worker 0 pid); [ -n "$p" ] && [ "$p" != "$WPID" ] && all_running; }
wait_until 10 new_worker || fail "worker 0 did not come back"
h3get fetch "$(h3_url "")" - > /dev/null || fail "h3 GET after the worker's restart"
quicctl reload > "$T/reload.out" 2>&1 || fail "reload: $(cat "$T/reload.out")"
h3get fetch "$(h3_url "")" - > /dev/null || fail "h3 GET after the reload"
settled "$T/m3" 'quicd_process_restarts_total{role="worker"}' 1 || true
settled "$T/m3" 'quicd_reloads_total{result="ok"}' 1 || true
sleep 2.5
scrape "$T/m3"
down=$(monotonic "$T/m2" "$T/m3")
[ -z "$down" ] && ok "kill -9 of a worker and a reload: no counter went down" ||
    fail "after the worker's kill -9 and a reload: $down"
check2() { grew "$T/m2" "$T/m3" "$1" "$2" && ok "$3: +$2" ||
    fail "$3: $1 went from $(value "$T/m2" "$1") to $(value "$T/m3" "$1"), want +$2"; }
h3now=$(awk -v a="$(value "$T/m2" "$H3REQ")" -v b="$(value "$T/m3" "$H3REQ")" 'BEGIN { print b - a }')
[ "$h3now" -ge 2 ] && ok "HTTP/3 2xx after the kill and the reload: +$h3now" || fail "HTTP/3 2xx +$h3now, want 2 or more"
check2 'quicd_process_restarts_total{role="worker"}' 1 "restarts of a worker"
check2 'quicd_reloads_total{result="ok"}' 1 "reloads"
check2 'quicd_listener_socket_handoffs_total{result="ok"}' 1 "the listener's socket sets (the restarted worker's)"

# quicctl top: a line per worker and the sum, with the requests per second
# of a client that keeps asking (its status reports every second carry
# the totals)
bg h3get loop "$(h3_url "")" 6 0.02
LOOP=$BG_PID
sleep 1.5
quicctl top -n 3 -d 1 > "$T/top.txt" 2> "$T/top.err" || fail "quicctl top: $(cat "$T/top.err")"
bg_kill "$LOOP"
rows=$(grep -cE '^[01] +[0-9]+ ' "$T/top.txt")
rps=$(awk '$1 == "all" { r = $5 } END { print r + 0 }' "$T/top.txt")
[ "$rows" = 6 ] && awk -v r="$rps" 'BEGIN { exit !(r > 1) }' &&
    ok "quicctl top: 3 frames of 2 workers, the last $rps requests/s in all" ||
    fail "quicctl top: $rows worker lines, $rps requests/s: $(cat "$T/top.txt")"
finish
