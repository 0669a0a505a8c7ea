# SPDX-License-Identifier: MIT
# Handshake flood: tests/tools/qd_flood sends real QUIC v1 Initials (a
# wolfSSL ClientHello under each packet's own Initial keys, a new random
# DCID every packet) from 128 source ports at FLOOD_PPS for 10 s,
# while the one worker serves a long download and a stream of requests
# on an established connection. retry = auto must switch address
# validation on (quicctl status says so), the download must keep at
# least half its rate, no request may fail, the worker's memory must stay
# bounded, Retry must switch off again within seconds of the end, and a
# new connection then needs no Retry.
#
# The download is read by a slow reader at RATE bytes/s that never makes
# up for a stall (h3get.py download --limit), so its rate is the client's
# choice whenever the server keeps up, whatever else loads the machine;
# the rate is compared as the median of 0.5 s intervals before and
# during the flood, so one slow interval (another process taking the
# CPU) moves neither. The flood has a fixed rate, 6 times retry_limit and
# 150 times retry_threshold, rather than "as fast as the generator can":
# the same flood on a quiet and on a busy machine, and one that does not
# take a whole CPU from the worker and the download's reader, whose share
# of a busy machine's CPU would otherwise decide the rate.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
need_gtlsclient
FLOOD="$QD_BUILDDIR/tests/tools/qd_flood"
[ -x "$FLOOD" ] || die "$FLOOD not built (make check builds it)"
RATE=2000000        # bytes/s the download's reader takes
FLOOD_S=10          # seconds of flood
FLOOD_PPS=30000     # Initials per second of the flood
LIMIT=5000          # retry_limit (the default): Retry packets per second
THRESHOLD=200       # retry_threshold (the default)
h3_setup 1 "retry = auto" "retry_threshold = $THRESHOLD" "retry_limit = $LIMIT"
D="$T/htdocs"
# 5 s before, the flood, and enough after it (a download that ends early
# leaves the window during the flood short)
head -c $((RATE * (5 + FLOOD_S + 8))) /dev/urandom > "$D/big.bin"
h3_start || finish
WPID=$(proc_field worker 0 pid)
[ -n "$WPID" ] || die "no worker pid"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$WPID/status" 2>/dev/null; }
wfield() { proc_field worker 0 "$1"; }

bg h3get --timeout 180 download --limit "$RATE" "$(h3_url big.bin)" "$T/big.out" "$T/progress" \
    > "$T/download.log" 2>&1
DL_PID=$BG_PID
# Requests on an established connection, one every 0.1 s; and, for the
# report only, new connections one after the other (during the flood a new
# client's Initial competes with the flood for the Retry budget)
# (long enough to cover the flood when the download is slow to start)
bg h3get loop "$(h3_url index.html)" $((FLOOD_S + 15)) 0.1 > "$T/loop.log" 2>&1
LOOP_PID=$BG_PID
bg h3get --connect-timeout 15 loop --fresh -v "$(h3_url index.html)" $((FLOOD_S + 6)) 0.5 \
    > "$T/fresh.log" 2>&1
# 5 s of download before the flood, the rate to compare with (its start
# may take a while on a loaded machine: from its first progress line)
dl_for() { awk -v now="$(date +%s.%N)" -v s="$1" 'NR == 1 { t0 = $1 } END { exit !(NR && now - t0 >= s && $2 > 0) }' "$T/progress" 2>/dev/null; }
wait_until 10 dl_for 5 || fail "the download did not run for 5 s: $(cat "$T/download.log")"
RSS0=$(rss_kb)
log "worker rss before the flood: ${RSS0} kB; status: $(quicctl status | grep '^worker')"
[ "$(wfield retry)" = False ] && ok "no Retry before the flood" || fail "retry before the flood: $(wfield retry)"

FLOOD_START=$(date +%s.%N)
"$FLOOD" -p "$PORT" -d "$FLOOD_S" -r "$FLOOD_PPS" -s 128 -H -i 2000 > "$T/flood.out" 2> "$T/flood.progress" &
FLOOD_PID=$!
retry_seen=0 samples=0 rss_max=$RSS0 hs_max=0 new_max=0
while kill -0 "$FLOOD_PID" 2>/dev/null; do
    sleep 0.5
    s=$(quicctl status --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for p in json.load(sys.stdin)["processes"]:
    if p["role"] == "worker":
        print(int(p.get("retry", False)), p.get("half_open", -1), p.get("new_conns_s", -1),
              p.get("retries_sent", -1), p.get("initials_dropped", -1))' 2>/dev/null)
    r=$(rss_kb)
    log "flood: retry half_open new_conns_s retries_sent initials_dropped = $s; rss ${r} kB"
    set -- $s
    [ $# = 5 ] || continue
    samples=$((samples + 1))
    [ "$1" = 1 ] && retry_seen=$((retry_seen + 1))
    [ "$2" -gt "$hs_max" ] && hs_max=$2
    [ "$3" -gt "$new_max" ] && new_max=$3
    [ -n "$r" ] && [ "$r" -gt "$rss_max" ] && rss_max=$r
done
wait "$FLOOD_PID"
FLOOD_END=$(date +%s.%N)
cat "$T/flood.out"
read -r sent elapsed retries <<EOF
$(sed -nE 's/^sent=([0-9]+) elapsed=([0-9.]+) rate=[0-9]+ retry=([0-9]+) .*/\1 \2 \3/p' "$T/flood.out")
EOF
[ -n "${sent:-}" ] || die "qd_flood printed no summary: $(cat "$T/flood.out" "$T/flood.progress")"

# The generator flooded, and the worker answered it with Retry, within its budget.
[ "$sent" -ge 20000 ] && ok "qd_flood sent $sent Initials in ${elapsed}s" ||
    fail "qd_flood sent only $sent Initials"
[ "$retries" -ge 1000 ] && ok "qd_flood got $retries Retry packets back" ||
    fail "only $retries Retry packets came back"
max_retries=$(/usr/bin/python3 -c "import sys; print(int($LIMIT * $elapsed + $LIMIT))")
[ "$retries" -le "$max_retries" ] && ok "Retry packets within retry_limit ($retries <= $max_retries)" ||
    fail "$retries Retry packets in ${elapsed}s exceed retry_limit $LIMIT/s"
[ "$retry_seen" -ge 1 ] && [ "$retry_seen" -ge $((samples / 2)) ] &&
    ok "quicctl status showed retry on in $retry_seen of $samples samples during the flood" ||
    fail "quicctl status showed retry on in $retry_seen of $samples samples"
[ "$new_max" -ge "$THRESHOLD" ] && ok "status new_conns_s reached $new_max" ||
    fail "status new_conns_s at most $new_max during the flood"
drops=$(wfield initials_dropped)
if [ "$(/usr/bin/python3 -c "print(int($sent / $elapsed > 2 * $LIMIT))")" = 1 ]; then
    [ "${drops:-0}" -gt 0 ] && ok "Initials beyond the Retry budget were dropped ($drops)" ||
        fail "no Initial dropped although the flood was above twice retry_limit"
fi
# Memory: half-open connections are bounded by retry_threshold (Retry is
# demanded from that many on), each about 80 kB (measured: 200 of them
# took 15.3 MB); twice that per connection is the bound, and a leak of 40
# bytes per Initial would cross it.
rss_bound=$((RSS0 + THRESHOLD * 160))
log "worker rss: before ${RSS0} kB, at most ${rss_max} kB during the flood (bound ${rss_bound} kB); half-open at most $hs_max"
if grep -q libasan "/proc/$WPID/maps" 2>/dev/null; then
    # AddressSanitizer keeps freed memory in its quarantine (256 MiB by
    # default): the worker's RSS says nothing about the program's memory
    log "worker built with AddressSanitizer: its RSS is not the program's; the memory bound is not checked"
elif [ "$rss_max" -le "$rss_bound" ]; then
    ok "worker memory stayed bounded (${rss_max} kB <= ${rss_bound} kB)"
else
    fail "worker rss ${rss_max} kB over ${rss_bound} kB"
fi

# Recovery: Retry off within a few seconds, then a new connection needs none.
retry_off() { [ "$(wfield retry)" = False ]; }
if wait_until 6 retry_off; then
    ok "Retry off $(/usr/bin/python3 -c "import time; print('%.1f' % (time.time() - $FLOOD_END))") s after the flood"
else
    fail "Retry still on $(/usr/bin/python3 -c "import time; print('%.1f' % (time.time() - $FLOOD_END))") s after the flood: $(quicctl status | grep '^worker')"
fi
L="$T/after.log"
mkdir -p "$T/after.dl"
gtls 30 --download="$T/after.dl" 127.0.0.1 "$PORT" "$(h3_url index.html)" > "$L"
if [ "$(gtls_status_count "$L" 200)" = 1 ] && ! grep -q "pkt rx .*type=Retry" "$L"; then
    ok "a new connection after the flood: 200 without Retry"
else
    fail "after the flood: $(gtls_status_count "$L" 200) answers, Retry: $(grep -c 'pkt rx .*type=Retry' "$L")"
fi

# The established connection's requests and the download.
wait "$LOOP_PID"
tail -n 3 "$T/loop.log" | while IFS= read -r l; do log "  $l"; done
grep -q "^loop: [1-9][0-9]* ok, 0 failed, 1 connections" "$T/loop.log" &&
    ok "requests on an established connection: $(tail -n 1 "$T/loop.log" | cut -d' ' -f2-3) none failed" ||
    fail "requests on an established connection: $(tail -n 1 "$T/loop.log")"
wait "$DL_PID"
cat "$T/download.log"
grep -q "^download: status=200 version=3" "$T/download.log" && cmp -s "$D/big.bin" "$T/big.out" &&
    ok "the download completed, byte for byte" || fail "download: $(cat "$T/download.log")"
rates=$(/usr/bin/python3 - "$T/progress" "$FLOOD_START" "$FLOOD_END" <<'PY'
import sys
pts = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
fs, fe = float(sys.argv[2]), float(sys.argv[3])

def at(t):  # bytes received by time t (linear between samples)
    prev = pts[0]
    for p in pts:
        if p[0] >= t:
            if p[0] == prev[0]:
                return p[1]
            return prev[1] + (p[1] - prev[1]) * (t - prev[0]) / (p[0] - prev[0])
        prev = p
    return pts[-1][1]

def rates(a, b, step=0.5):
    out, t = [], a
    while t + step <= b and t + step <= pts[-1][0]:
        out.append((at(t + step) - at(t)) / step)
        t += step
    return out

def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else 0.0

before = rates(max(pts[0][0] + 1.0, fs - 4.0), fs)  # after the first second
during = rates(fs, fe)
mb, md = median(before), median(during)
print("%.0f %.0f %.3f %d %d %.0f" % (mb, md, md / mb if mb else 0, len(before), len(during),
                                     min(during) if during else 0))
PY
)
read -r med_before med_during ratio n_before n_during min_during <<EOF
$rates
EOF
log "download rate, median of 0.5 s intervals: before $med_before B/s ($n_before intervals), during the flood $med_during B/s ($n_during intervals, slowest $min_during), ratio $ratio"
[ "$n_before" -ge 5 ] && [ "$n_during" -ge 10 ] || fail "too few intervals to compare ($n_before, $n_during)"
[ "$(/usr/bin/python3 -c "print(int($ratio >= 0.5))")" = 1 ] &&
    ok "the download kept $ratio of its rate during the flood (at least 0.5)" ||
    fail "the download's rate fell to $ratio of its rate before the flood"

# For the report: new connections during the flood compete for the Retry budget.
bg_kill
fresh_during=$(/usr/bin/python3 - "$T/fresh.log" "$FLOOD_START" "$FLOOD_END" <<'PY'
import sys
fs, fe = float(sys.argv[2]), float(sys.argv[3])
ok = failed = 0
for l in open(sys.argv[1]):
    f = l.split()
    if len(f) > 4 and f[3] == "after" and fs <= float(f[1]) - float(f[4].rstrip(":s")) <= fe:
        ok += f[2] == "ok"
        failed += f[2] == "failed"
print("%d ok, %d failed" % (ok, failed))
PY
)
log "new connections started during the flood (not asserted): $fresh_during"
grep "retry = auto" "$T/quicd.log" | while IFS= read -r l; do log "  $l"; done
finish
