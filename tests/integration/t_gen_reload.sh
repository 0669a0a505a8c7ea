# SPDX-License-Identifier: MIT
# Reloads that replace the workers lose nothing under load. While 20 long
# downloads, a new connection every 50 ms and 3 /events streams run (over
# HTTP/3 mostly, some over HTTP/2 and HTTP/1.1), three reloads change
# workers (2 -> 3 -> 2 -> 3) and a fourth adds a listen address. Each
# starts a new generation of workers beside the running ones, which drain:
# no request fails, no connection is reset, every download is
# byte-identical, event streams end cleanly and reconnect, quicctl status
# shows the generations, nothing is killed at the drain deadline, and the
# stats database has a record of every request, the old generations' too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
setup 2
h3_trap
h3_cert
CONFS=("drain_timeout = 60s" "events_interval = 300ms")
h3_conf 2 "${CONFS[@]}"
head -c 6000000 /dev/urandom > "$T/htdocs/big.bin" # beyond what a TCP send buffer holds (4 MB)
printf 'small file %s\n' "$(head -c 600 /dev/urandom | base64 -w0)" > "$T/htdocs/small.txt"
h3_start || finish

load() {
    "$H3_PYTHON" "$QD_SRCDIR/tests/integration/loadgen.py" --port "$PORT" --cacert "$T/cert.pem" \
        --docroot "$T/htdocs" --file /big.bin --rate 300000 --downloads 20 --small /small.txt \
        --interval 0.05 --events 3 --protocols h3,h3,h2,h1 --stop-file "$T/stop" \
        --ready-file "$T/ready" --max-seconds 150 --report "$T/report.json" > "$T/load.out" 2>&1
}
bg load
LOAD_PID=$BG_PID
wait_until 20 test -f "$T/ready" && ok "load established: 20 downloads and 3 event streams receiving" ||
    fail "the load did not start: $(cat "$T/load.out")"

# gen_status - the generations as "GEN:PHASE" words
gen_status() {
    quicctl status --json | python3 -c '
import json, sys
print(" ".join("%d:%s" % (g["generation"], g["phase"]) for g in json.load(sys.stdin)["generations"]))'
}

# reload_to WHAT GEN WORKERS [EXTRA] - rewrite the configuration and reload;
# the reload answers once generation GEN serves
reload_to() {
    local what=$1 gen=$2 workers=$3; shift 3
    h3_conf "$workers" "${CONFS[@]}" "$@"
    local t0 out
    t0=$(date +%s%N)
    out=$(quicctl reload 2>&1)
    if echo "$out" | grep -q "generation $gen ($workers workers) serves new connections because $what changed"; then
        ok "reload ($what, $workers workers): generation $gen serves after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    else
        fail "reload ($what): $out"
    fi
    local st
    st=$(gen_status)
    log "generations: $st"
    echo "$st" | grep -q "$gen:serving" && ok "status shows generation $gen serving ($st)" ||
        fail "status: $st"
    sleep 2
}
reload_to workers 2 3
reload_to workers 3 2
st=$(gen_status)
echo "$st" | grep -q "draining" && ok "older generations drain beside the serving one: $st" ||
    fail "no draining generation while long downloads run: $st"
reload_to workers 4 3
reload_to listen 5 3 "listen = 127.0.0.1:$PORT, [::1]:$PORT, 127.0.0.2:$PORT"
out=$("$H3_PYTHON" "$H3GET_PY" --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.2" \
    fetch "https://localhost:$PORT/small.txt" - 2>&1)
echo "$out" | grep -q "status=200" && ok "the added address 127.0.0.2 answers over HTTP/3" ||
    fail "127.0.0.2: $out"

# the first 20 downloads (6 MB at 300 kB/s, 20 s) are generation 1's: the
# load goes on until that generation has drained, then stops
wait_until 45 grep -q "generation 1 has drained" "$T/quicd.log" &&
    ok "generation 1 drained once its downloads were done" || fail "generation 1 did not drain: $(gen_status)"
touch "$T/stop"
wait_until 40 sh -c "! kill -0 $LOAD_PID 2>/dev/null" || fail "the load did not end"
summary=$(grep "^loadgen: downloads_ok" "$T/load.out")
log "$summary"
grep "FAIL" "$T/load.out" | head -n 20 | while IFS= read -r l; do log "  $l"; done
field() { echo "$summary" | grep -o "$1=[0-9]*" | cut -d= -f2; }
[ -n "$summary" ] && [ "$(field downloads_failed)" = 0 ] && [ "$(field new_failed)" = 0 ] &&
    [ "$(field events_failed)" = 0 ] && [ "$(field bad_prefix)" = 0 ] &&
    ok "no failed request, no reset, no bad byte: $summary" || fail "load: $summary"
[ "${summary:+$(field downloads_ok)}" -ge 20 ] 2>/dev/null &&
    ok "$(field downloads_ok) downloads completed byte-identical across the reloads" ||
    fail "only $(field downloads_ok) downloads completed"
[ "${summary:+$(field new_ok)}" -ge 200 ] 2>/dev/null &&
    ok "$(field new_ok) new connections answered" || fail "only $(field new_ok) new connections"
[ "${summary:+$(field events_ended_clean)}" -ge 3 ] 2>/dev/null &&
    [ "$(field events_received)" -ge 30 ] &&
    ok "event streams ended cleanly $(field events_ended_clean) times as workers drained and reconnected ($(field events_received) events)" ||
    fail "event streams: $summary"

# every old generation drains by itself, nothing is killed at the deadline
drained() { [ "$(gen_status)" = "5:serving" ]; }
wait_until 60 drained && ok "the old generations drained: $(gen_status)" || fail "generations: $(gen_status)"
! grep -q "did not stop within the drain deadline" "$T/quicd.log" &&
    ok "no worker was killed at the drain deadline" ||
    fail "$(grep "did not stop within the drain deadline" "$T/quicd.log" | head -n 3)"
grep -q "generation 1 has drained" "$T/quicd.log" && grep -q "generation 4 has drained" "$T/quicd.log" &&
    ok "the log says when each generation has drained" || fail "no 'has drained' lines"

# the stats database has every request, by the workers of every generation
out=$(quicctl stop 2>&1) || fail "quicctl stop: $out"
wait "$MASTER_PID" 2>/dev/null
MASTER_PID=""
rows_small=$(sql "select count(*) from requests where path = '/small.txt'")
rows_big=$(sql "select count(*) from requests where path = '/big.bin'")
workers=$(sql "select count(distinct worker) from requests where path = '/big.bin' or path = '/small.txt'")
want_small=$(( $(field started_new) + 1 ))   # and the check of 127.0.0.2
[ "$rows_small" = "$want_small" ] && [ "$rows_big" = "$(field started_download)" ] &&
    ok "the database has every request: $rows_small small (want $want_small), $rows_big downloads (want $(field started_download))" ||
    fail "database: $rows_small small (want $want_small), $rows_big downloads (want $(field started_download))"
[ "$workers" -ge 8 ] && ok "requests recorded by $workers worker ids of 5 generations" ||
    fail "requests recorded by only $workers worker ids"
finish
