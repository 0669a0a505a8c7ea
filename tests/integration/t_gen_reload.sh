# SPDX-License-Identifier: MIT
# Reloads that replace the workers lose nothing under load. While 20 long
# downloads, a new connection every 50 ms and 3 /events streams run (over
# HTTP/3 mostly, some over HTTP/2 and HTTP/1.1), three reloads change
# workers (2 -> 3 -> 2 -> 3), a fourth adds a listen address and a fifth
# changes chroot, which the app uses too. Each starts a new generation of
# workers beside the running ones, which drain (the fifth with an app of
# its own beside the old app, which serves the older workers until they
# are gone):
# no request fails, no connection is reset, every download is
# byte-identical, event streams end cleanly and reconnect, quicctl status
# shows the generations, nothing is killed at the drain deadline, the
# stats database has a record of every request, the old generations' too,
# and the per-worker metrics count them under the places 0 to 2.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/genlib.sh"
need_pycurl
CONFS=("drain_timeout = 60s" "events_interval = 300ms")
h3_setup 2 "${CONFS[@]}"
gen_files
head -c 3000000 /dev/urandom > "$T/htdocs/extra.bin"
h3_start || finish

gen_load_start

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
    sleep 2   # the load runs on this generation for a while
}
reload_to workers 2 3
reload_to workers 3 2
st=$(gen_status)
echo "$st" | grep -q "draining" && ok "older generations drain beside the serving one: $st" ||
    fail "no draining generation while long downloads run: $st"
reload_to workers 4 3
reload_to listen 5 3 "listen = 127.0.0.1:$PORT, [::1]:$PORT, 127.0.0.2:$PORT"
out=$("$H3_PYTHON" "$H3GET_PY" --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.2" \
    --connect-timeout 15 --timeout 30 fetch "https://localhost:$PORT/small.txt" - 2>&1)
echo "$out" | grep -q "status=200" && ok "the added address 127.0.0.2 answers over HTTP/3" ||
    fail "127.0.0.2: $out"
# apps - how many app processes run
apps() { quicctl status --json | python3 -c '
import json, sys
print(sum(1 for p in json.load(sys.stdin)["processes"] if p["role"] == "app" and p["pid"]))'; }
# A download of 20 s at least on generation 5 (not one of the load's: the
# database check counts those) keeps one of the old app's workers busy
# across the chroot reload, however long the reloads took on a loaded
# machine (generation 1's downloads may be over by then).
bg "$H3_PYTHON" "$H3GET_PY" --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1" \
    --connect-timeout 15 --timeout 120 download --limit 150000 "$(h3_url extra.bin)" "$T/extra.out" \
    "$T/extra.progress" > "$T/extra.log" 2>&1
EXTRA=$BG_PID
wait_until 10 test -s "$T/extra.out" || fail "the download on generation 5 did not start: $(cat "$T/extra.log")"
reload_to chroot 6 3 "listen = 127.0.0.1:$PORT, [::1]:$PORT, 127.0.0.2:$PORT" "chroot = no"
n=$(apps)
[ "$n" = 2 ] && ok "generation 6 has an app of its own beside the one of the older generations" ||
    fail "$n apps after the chroot reload: $(quicctl status)"

# the first 20 downloads (6 MB at 300 kB/s, 20 s) are generation 1's: the
# load goes on until that generation has drained, then stops
wait_until 45 grep -q "generation 1 has drained" "$T/quicd.log" &&
    ok "generation 1 drained once its downloads were done" || fail "generation 1 did not drain: $(gen_status)"
gen_load_check "the reloads" 200
wait_until 40 sh -c "! kill -0 $EXTRA 2>/dev/null"
cmp -s "$T/htdocs/extra.bin" "$T/extra.out" && ok "the download across the chroot reload is byte-identical" ||
    fail "download across the chroot reload: $(cat "$T/extra.log")"
[ "${GEN_SUMMARY:+$(gen_field events_ended_clean)}" -ge 3 ] 2>/dev/null &&
    [ "$(gen_field events_received)" -ge 30 ] &&
    ok "event streams ended cleanly $(gen_field events_ended_clean) times as workers drained and reconnected ($(gen_field events_received) events)" ||
    fail "event streams: $GEN_SUMMARY"

# every old generation drains by itself, nothing is killed at the deadline
drained() { [ "$(gen_status)" = "6:serving" ]; }
wait_until 60 drained && ok "the old generations drained: $(gen_status)" || fail "generations: $(gen_status)"
gen_no_kill
oneapp() { [ "$(apps)" = 1 ]; }
wait_until 10 oneapp && grep -q "the app of generation 1 (pid [0-9]*) stops: its workers are gone" "$T/quicd.log" &&
    ok "the old app stopped once the workers it served were gone" || fail "$(apps) apps: $(quicctl status)"
grep -q "generation 1 has drained" "$T/quicd.log" && grep -q "generation 4 has drained" "$T/quicd.log" &&
    ok "the log says when each generation has drained" || fail "no 'has drained' lines"

# the per-worker metrics: the worker label is a worker's place in its
# generation (0 to workers - 1), so the workers of all six generations
# (ids up to 7) count under places 0 to 2, which add up to the total
quicctl metrics > "$T/metrics.txt" 2>&1 || fail "quicctl metrics: $(cat "$T/metrics.txt")"
places=$(grep -o '^quicd_worker_requests_total{worker="[0-9]*"}' "$T/metrics.txt" | grep -o '[0-9]*' | tr '\n' ' ')
sums=$(awk '$1 ~ /^quicd_worker_requests_total\{/ { w += $2 } $1 ~ /^quicd_http_requests_total\{/ { t += $2 }
            END { print w + 0, t + 0 }' "$T/metrics.txt")
[ "$places" = "0 1 2 " ] && [ "${sums% *}" = "${sums#* }" ] && [ "${sums% *}" -gt 0 ] &&
    ok "per-worker series for places 0 1 2 only, adding up to the total (${sums% *} requests)" ||
    fail "per-worker series: places '$places', per worker and total $sums"

# the stats database has every request, by the workers of every generation
out=$(quicctl stop 2>&1) || fail "quicctl stop: $out"
wait "$MASTER_PID" 2>/dev/null
MASTER_PID=""
rows_small=$(sql "select count(*) from requests where path = '/small.txt'")
rows_big=$(sql "select count(*) from requests where path = '/big.bin'")
workers=$(sql "select count(distinct worker) from requests where path = '/big.bin' or path = '/small.txt'")
want_small=$(( $(gen_field started_new) + 1 ))   # and the check of 127.0.0.2
[ "$rows_small" = "$want_small" ] && [ "$rows_big" = "$(gen_field started_download)" ] &&
    ok "the database has every request: $rows_small small (want $want_small), $rows_big downloads (want $(gen_field started_download))" ||
    fail "database: $rows_small small (want $want_small), $rows_big downloads (want $(gen_field started_download))"
[ "$workers" -ge 8 ] && ok "requests recorded by $workers worker ids of 6 generations" ||
    fail "requests recorded by only $workers worker ids"
finish
