# SPDX-License-Identifier: MIT
# Helpers for the generation tests (t_gen_*.sh, sourced after h3lib.sh):
# the steady load of loadgen.py and the checks of its report.

# gen_files - a 6 MB download (more than a TCP send buffer holds, so an
# HTTP/1.1 download is not over for the server at once) and a small file
gen_files() {
    head -c 6000000 /dev/urandom > "$T/htdocs/big.bin"
    printf 'small file %s\n' "$(head -c 600 /dev/urandom | base64 -w0)" > "$T/htdocs/small.txt"
}

# gen_load_start - 20 downloads at 300 kB/s (20 s each), a new connection
# every 50 ms and 3 /events streams, over h3, h3, h2 and h1 in turn; sets
# LOAD_PID once every download and event stream is receiving
gen_load_start() {
    _gen_load() {
        "$H3_PYTHON" "$QD_SRCDIR/tests/integration/loadgen.py" --port "$PORT" --cacert "$T/cert.pem" \
            --docroot "$T/htdocs" --file /big.bin --rate 300000 --downloads 20 --small /small.txt \
            --interval 0.05 --events 3 --protocols h3,h3,h2,h1 --stop-file "$T/stop" \
            --ready-file "$T/ready" --max-seconds 150 --report "$T/report.json" \
            --progress "$T/progress.json" > "$T/load.out" 2>&1
    }
    bg _gen_load
    LOAD_PID=$BG_PID
    wait_until 20 test -f "$T/ready" && ok "load established: 20 downloads and 3 event streams receiving" ||
        fail "the load did not start: $(cat "$T/load.out")"
}

# gen_progress DOWNLOADS NEW - the load has completed DOWNLOADS downloads and
# NEW new connections so far (its --progress file)
gen_progress() {
    python3 - "$T/progress.json" "$1" "$2" <<'PY'
import json, sys
try:
    c = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(1)
sys.exit(0 if c["downloads_ok"] >= int(sys.argv[2]) and c["new_ok"] >= int(sys.argv[3]) else 1)
PY
}

# gen_field NAME - a number from the load's summary line
gen_field() { echo "$GEN_SUMMARY" | grep -o "$1=[0-9]*" | cut -d= -f2; }

# gen_load_check ACROSS MIN_NEW - stop the load and check its report: no
# failed request, no reset, no bad byte, all 20 first downloads complete,
# at least MIN_NEW new connections answered; sets GEN_SUMMARY
gen_load_check() {
    local across=$1 min_new=$2
    # the load makes new connections at its own pace, which a loaded machine
    # slows: it goes on until it has as many as the check below wants (the
    # checks still say whether it got them, and none failed)
    wait_until 20 gen_progress 20 "$min_new" ||
        log "the load has not reached 20 downloads and $min_new new connections: $(cat "$T/progress.json" 2>/dev/null)"
    touch "$T/stop"
    wait_until 40 sh -c "! kill -0 $LOAD_PID 2>/dev/null" || fail "the load did not end"
    GEN_SUMMARY=$(grep "^loadgen: downloads_ok" "$T/load.out")
    log "$GEN_SUMMARY"
    grep "FAIL" "$T/load.out" | head -n 20 | while IFS= read -r l; do log "  $l"; done
    [ -n "$GEN_SUMMARY" ] && [ "$(gen_field downloads_failed)" = 0 ] && [ "$(gen_field new_failed)" = 0 ] &&
        [ "$(gen_field events_failed)" = 0 ] && [ "$(gen_field bad_prefix)" = 0 ] &&
        ok "no failed request, no reset, no bad byte: $GEN_SUMMARY" || fail "load: $GEN_SUMMARY"
    [ "${GEN_SUMMARY:+$(gen_field downloads_ok)}" -ge 20 ] 2>/dev/null &&
        ok "$(gen_field downloads_ok) downloads completed byte-identical across $across" ||
        fail "only $(gen_field downloads_ok) downloads completed"
    [ "${GEN_SUMMARY:+$(gen_field new_ok)}" -ge "$min_new" ] 2>/dev/null &&
        ok "$(gen_field new_ok) new connections answered" || fail "only $(gen_field new_ok) new connections"
}

# gen_status - the generations as "GEN:PHASE" words
gen_status() {
    quicctl status --json | python3 -c '
import json, sys
print(" ".join("%d:%s" % (g["generation"], g["phase"]) for g in json.load(sys.stdin)["generations"]))'
}

# gen_no_kill - no worker was killed at the drain deadline
gen_no_kill() {
    ! grep -q "did not stop within the drain deadline" "$T/quicd.log" &&
        ok "no worker was killed at the drain deadline" ||
        fail "$(grep "did not stop within the drain deadline" "$T/quicd.log" | head -n 3)"
}
