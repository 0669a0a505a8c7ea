# SPDX-License-Identifier: MIT
# Prometheus scrapes quicd (issue 25, acceptance): Debian's Prometheus,
# started here on loopback with a configuration of its own (scrape every
# second), reads /metrics on metrics_listen; the test drives HTTP/3,
# HTTP/2 and HTTP/1.1 requests, a 0-RTT resumption, a migration, a
# stateless reset, an undecryptable packet and, after a reload to
# retry = yes, a connection validated by Retry; then checks through
# Prometheus' query API that each counter moved by the right amount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
need_gtlsclient
need_curl
command -v prometheus > /dev/null || skip "prometheus not found (contrib/install-deps installs it)"
h3_setup 1 "stats_interval = 1s" "retry = no" "early_data = yes"
new_port MPORT
new_port PPORT
h3_conf 1 "stats_interval = 1s" "retry = no" "early_data = yes" "metrics_listen = 127.0.0.1:$MPORT"
head -c 1024 /dev/urandom > "$T/htdocs/1k.bin"
head -c 300000 /dev/urandom > "$T/htdocs/300k.bin"
h3_start || finish

mkdir -p "$T/prom"
cat > "$T/prom.yml" <<EOC
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: quicd
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
EOC
bg prometheus --config.file="$T/prom.yml" --storage.tsdb.path="$T/prom" \
    --web.listen-address="127.0.0.1:$PPORT" --log.level=warn
PROM=$BG_PID
API="http://127.0.0.1:$PPORT/api/v1"
# q EXPR - the value of an instant query (the first series), or empty
q() {
    curl -s --max-time 5 --get --data-urlencode "query=$1" "$API/query" |
        /usr/bin/python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2> /dev/null
}
scraped() { [ "$(q 'up{job="quicd"}')" = 1 ]; }
wait_until 30 scraped && ok "Prometheus scrapes quicd's /metrics (up = 1)" ||
    fail "Prometheus does not scrape: $(curl -s "$API/targets" | head -c 600)"

# the totals Prometheus has now, for every series the test checks
SERIES=(
    'quicd_http_requests_total{protocol="h3",class="2xx"}'
    'quicd_http_requests_total{protocol="h2",class="2xx"}'
    'quicd_http_requests_total{protocol="http/1.1",class="2xx"}'
    'quicd_quic_early_data_total{result="accepted"}'
    'quicd_quic_migrations_total'
    'quicd_quic_path_validations_total{result="ok"}'
    'quicd_quic_stateless_resets_sent_total'
    'quicd_quic_packets_dropped_total{reason="undecryptable"}'
    'quicd_quic_retry_sent_total'
    'quicd_quic_tokens_validated_total{result="valid"}'
    'quicd_handshakes_total{transport="tcp",result="ok"}'
    'quicd_reloads_total{result="ok"}'
)
declare -A BASE
settle() { sleep 2.5; } # a report (1 s) and a scrape (1 s) later
settle
for s in "${SERIES[@]}"; do BASE[$s]=$(q "$s"); done

N=0
# run NAME GTLSCLIENT-ARGS... - one gtlsclient connection; L is its log
run() {
    local name=$1; shift
    N=$((N + 1))
    L="$T/$N-$name.log"
    mkdir -p "$T/$N.dl"
    gtls 30 --download="$T/$N.dl" "$@" > "$L"
    RC=$?
}
U() { h3_url "$1"; }
H3=0 # HTTP/3 requests made below

# HTTP/3, HTTP/2, HTTP/1.1
for i in 1 2 3; do h3get fetch "$(U 1k.bin)" - > /dev/null || fail "h3 GET"; done
H3=$((H3 + 3))
CURL=(curl -sk --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1")
"${CURL[@]}" --http2 -o /dev/null -o /dev/null "$(U 1k.bin)" "$(U 1k.bin)" || fail "curl --http2"
"${CURL[@]}" --http1.1 -o /dev/null "$(U 1k.bin)" || fail "curl --http1.1"

# 0-RTT: a ticket, then a request in early data
S="$T/session.pem" P="$T/tp.pem"
run ticket --session-file="$S" --tp-file="$P" --wait-for-ticket 127.0.0.1 "$PORT" "$(U 1k.bin)"
run 0rtt --session-file="$S" --tp-file="$P" 127.0.0.1 "$PORT" "$(U 1k.bin)"
H3=$((H3 + 2))
if [ $RC -eq 0 ] && ! grep -q "Early data was rejected" "$L"; then
    ok "gtlsclient: request in 0-RTT"
else
    fail "0-RTT: exit $RC"
fi

# a migration: a new local port 100 ms in, the request after it; a file
# long enough that quicd's own validation of the new path completes before
# the client, done, closes (with 1 KiB it may close first: no migration)
run migrate --change-local-addr=100ms --delay-stream=300ms 127.0.0.1 "$PORT" "$(U 300k.bin)"
H3=$((H3 + 1))
[ $RC -eq 0 ] && grep -q "Path validation against .* succeeded" "$L" || fail "migration run: exit $RC: $(grep -i "path validation" "$L" | head -3)"

# an undecryptable packet: a short header with the live connection's CID
# and bytes that are no packet protection of it; then, once that
# connection is gone, a stateless reset for the same CID
N=$((N + 1)); L="$T/$N-live.log"; mkdir -p "$T/$N.dl"
timeout 30 "$H3_GTLSCLIENT" "${GTLS_OPTS[@]}" --delay-stream=2s --download="$T/$N.dl" \
    127.0.0.1 "$PORT" "$(U 1k.bin)" > /dev/null 2> "$L" &
LIVE=$!
H3=$((H3 + 1))
cid_known() { [ -n "$(gtls_server_cid "$L")" ]; }
wait_until 5 cid_known || fail "no server CID in the live client's log"
CID=$(gtls_server_cid "$L")
send_short() { # send_short CID - a short-header datagram with that DCID, 60 random bytes after
    /usr/bin/python3 - "$PORT" "$1" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(bytes([0x40 | (os.urandom(1)[0] & 0x3f)]) + bytes.fromhex(sys.argv[2]) + os.urandom(60),
         ("127.0.0.1", int(sys.argv[1])))
PY
}
send_short "$CID"
wait "$LIVE"
RC=$?
[ $RC -eq 0 ] && ok "the live connection survived the undecryptable packet" || fail "live client: exit $RC"
gone() { [ "$(q 'quicd_connections_open{transport="quic"}')" = 0 ]; }
wait_until 10 gone || log "connections still open: $(q 'quicd_connections_open{transport="quic"}')"
sleep 1 # past the closing period
send_short "$CID"

# Retry: a reload to retry = yes, then one connection
h3_conf 1 "stats_interval = 1s" "retry = yes" "early_data = yes" "metrics_listen = 127.0.0.1:$MPORT"
quicctl reload > "$T/reload.out" 2>&1 || fail "reload: $(cat "$T/reload.out")"
h3get fetch "$(U 1k.bin)" - > /dev/null || fail "h3 GET with Retry"
H3=$((H3 + 1))

# N - the growth of a series since BASE, as Prometheus has it
grown() { /usr/bin/python3 -c 'import sys; a, b = sys.argv[1:]; print(int(float(b or 0) - float(a or 0)))' "${BASE[$1]}" "$(q "$1")"; }
want() { # want SERIES N WHAT - wait (10 s) until it grew by N, then check exactly N
    local s=$1 n=$2 what=$3
    there() { [ "$(grown "$s")" -ge "$n" ]; }
    wait_until 10 there
    local g
    g=$(grown "$s")
    [ "$g" = "$n" ] && ok "$what: +$n in Prometheus" || fail "$what: +$g in Prometheus, want +$n"
}
want 'quicd_http_requests_total{protocol="h3",class="2xx"}' "$H3" "HTTP/3 requests"
want 'quicd_http_requests_total{protocol="h2",class="2xx"}' 2 "HTTP/2 requests"
want 'quicd_http_requests_total{protocol="http/1.1",class="2xx"}' 1 "HTTP/1.1 requests"
want 'quicd_handshakes_total{transport="tcp",result="ok"}' 2 "TLS/TCP handshakes"
want 'quicd_quic_early_data_total{result="accepted"}' 1 "0-RTT accepted"
want 'quicd_quic_migrations_total' 1 "migrations"
want 'quicd_quic_path_validations_total{result="ok"}' 1 "path validations"
want 'quicd_quic_packets_dropped_total{reason="undecryptable"}' 1 "undecryptable packets"
want 'quicd_quic_stateless_resets_sent_total' 1 "stateless resets"
want 'quicd_quic_retry_sent_total' 1 "Retry packets"
want 'quicd_quic_tokens_validated_total{result="valid"}' 1 "Retry tokens validated"
want 'quicd_reloads_total{result="ok"}' 1 "reloads"
# the endpoint counts its own scrapes (stats's counters, committed each second)
sc=$(q 'quicd_metrics_scrapes_total{result="ok"}')
/usr/bin/python3 -c 'import sys; sys.exit(not float(sys.argv[1] or 0) >= 5)' "$sc" &&
    ok "quicd_metrics_scrapes_total{result=\"ok\"}: $sc" || fail "scrapes counted: '$sc'"
# a histogram through PromQL: the p99 of HTTP/3 request durations over the run
p99=$(q 'histogram_quantile(0.99, sum by (le) (quicd_http_request_duration_seconds_bucket{protocol="h3"}))')
/usr/bin/python3 -c 'import sys; v = float(sys.argv[1]); sys.exit(not (0 < v <= 10))' "${p99:-0}" &&
    ok "histogram_quantile of HTTP/3 durations: ${p99}s" || fail "histogram_quantile: '$p99'"
bg_kill
finish
