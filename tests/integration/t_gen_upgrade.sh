# SPDX-License-Identifier: MIT
# quicctl upgrade re-executes the binaries without closing a socket and
# loses nothing under load: 20 long downloads, a new connection every 50 ms
# and 3 /events streams (HTTP/3 mostly, some HTTP/2 and HTTP/1.1) run while
#  - an upgrade to a binary that exits at once fails with a clear error and
#    changes nothing (same master, same workers);
#  - an upgrade whose new worker program cannot start fails after the new
#    master gives up, and the old master keeps serving;
#  - a real upgrade hands over: a new master pid, the old one drains and
#    exits, nothing killed at the deadline.
# No request fails, no connection is reset, every download is
# byte-identical. A QUIC client resumes with 0-RTT (accepted) and a TLS/TCP
# client resumes its session across the upgrade, with tickets from before.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
need_gtlsclient
need_openssl
setup 2
h3_trap
h3_cert
# quicd runs from a copy that the test can replace, as `make install` would
mkdir -p "$T/sbin"
cp "$QUICD" "$T/sbin/quicd"
QUICD="$T/sbin/quicd"
rm "$T/libexec/worker"
cp "$QD_BUILDDIR/daemons/worker/worker" "$T/libexec/worker"
CONFS=("drain_timeout = 60s" "events_interval = 300ms" "early_data = yes")
h3_conf 2 "${CONFS[@]}"
head -c 6000000 /dev/urandom > "$T/htdocs/big.bin" # beyond what a TCP send buffer holds (4 MB)
head -c 65536 /dev/urandom > "$T/htdocs/64k.bin"
printf 'small file %s\n' "$(head -c 600 /dev/urandom | base64 -w0)" > "$T/htdocs/small.txt"
h3_start || finish
OLD_MASTER=$MASTER_PID

# session tickets from before the upgrade
S="$T/session.pem" P="$T/tp.pem" TS="$T/tcp-session.pem"
mkdir -p "$T/dl"
gtls 15 --download="$T/dl" --session-file="$S" --tp-file="$P" --wait-for-ticket 127.0.0.1 "$PORT" \
    "$(h3_url 64k.bin)" > "$T/ticket.log"
[ -s "$S" ] && ok "QUIC session ticket stored" || fail "no QUIC ticket: $(tail -n 3 "$T/ticket.log")"
GET='GET /64k.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
tls() { printf %b "$GET" | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
    -servername localhost -CAfile "$T/cert.pem" -alpn http/1.1 -ign_eof "$@" 2>&1; }
tls -sess_out "$TS" | grep -q '^New, TLSv1.3' && [ -s "$TS" ] && ok "TLS/TCP session stored" ||
    fail "no TLS/TCP session"

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
pids() { quicctl status --json | python3 -c '
import json, sys; print(" ".join(str(p["pid"]) for p in json.load(sys.stdin)["processes"]))'; }
BEFORE=$(pids)

# 1. a binary that exits at once: a clear error, nothing changes
mv "$T/sbin/quicd" "$T/sbin/quicd.good"
printf '#!/bin/sh\necho "not a quicd" >&2\nexit 3\n' > "$T/sbin/quicd"
chmod +x "$T/sbin/quicd"
out=$(quicctl upgrade 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "upgrade failed: $T/sbin/quicd (pid [0-9]*) exited with status 3 before it took over; quicd (pid $OLD_MASTER) keeps serving" &&
    ok "an upgrade to a binary that exits at once fails and says why: $out" || fail "rc=$rc: $out"
[ "$(pids)" = "$BEFORE" ] && ok "nothing changed: the same master and daemons" ||
    fail "processes changed: $BEFORE -> $(pids)"
mv "$T/sbin/quicd.good" "$T/sbin/quicd"

# 2. the new master starts but its workers cannot: it gives up, the old one serves
mv "$T/libexec/worker" "$T/libexec/worker.good"
printf '#!/bin/sh\nexit 1\n' > "$T/libexec/worker"
chmod +x "$T/libexec/worker"
out=$(quicctl upgrade 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "upgrade failed: .*generation 2 is not serving after 15s: worker\[2\] is" &&
    echo "$out" | grep -q "quicd (pid $OLD_MASTER) keeps serving" &&
    ok "an upgrade whose workers cannot start fails, the old master serves: $out" || fail "rc=$rc: $out"
mv "$T/libexec/worker.good" "$T/libexec/worker"
[ "$(pids)" = "$BEFORE" ] && ok "still the same master and daemons" ||
    fail "processes changed: $BEFORE -> $(pids)"
[ "$(cat "$T/run/quicd.pid")" = "$OLD_MASTER" ] && ok "the pid file still names the old master" ||
    fail "pid file: $(cat "$T/run/quicd.pid")"

# 3. the real upgrade
out=$(quicctl upgrade 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "upgraded: quicd (pid [0-9]*, $T/sbin/quicd) serves new connections; the previous master (pid $OLD_MASTER) drains" &&
    ok "upgrade: $out" || fail "rc=$rc: $out"
NEW_MASTER=$(cat "$T/run/quicd.pid")
[ "$NEW_MASTER" != "$OLD_MASTER" ] && kill -0 "$NEW_MASTER" 2>/dev/null &&
    ok "the pid file names the new master ($NEW_MASTER)" || fail "pid file: $NEW_MASTER"
MASTER_PID=$NEW_MASTER # the test stops this one now
st=$(quicctl status --json | python3 -c '
import json, sys; d = json.load(sys.stdin)
print(" ".join("%d:%s" % (g["generation"], g["phase"]) for g in d["generations"]), d["processes"][0]["pid"])')
echo "$st" | grep -q "^1:draining 2:serving $NEW_MASTER\$" &&
    ok "the new master serves generation 2 beside the old one's, draining: $st" || fail "status: $st"

# the first 20 downloads (6 MB at 300 kB/s, 20 s) are the old master's: the
# load goes on until it has drained them and exited, then stops
gone() { ! kill -0 "$OLD_MASTER" 2>/dev/null; }
wait_until 60 gone && ok "the old master (pid $OLD_MASTER) exited once drained" ||
    fail "the old master is still there"
wait "$OLD_MASTER" 2>/dev/null
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
    ok "$(field downloads_ok) downloads completed byte-identical across the upgrade" ||
    fail "only $(field downloads_ok) downloads completed"
[ "${summary:+$(field new_ok)}" -ge 300 ] 2>/dev/null &&
    ok "$(field new_ok) new connections answered" || fail "only $(field new_ok) new connections"

! grep -q "did not stop within the drain deadline" "$T/quicd.log" &&
    ok "no worker was killed at the drain deadline" ||
    fail "$(grep "did not stop within the drain deadline" "$T/quicd.log" | head -n 3)"
onlynew() { [ "$(quicctl status --json | python3 -c '
import json, sys; print(" ".join(g["phase"] for g in json.load(sys.stdin)["generations"]))')" = serving ]; }
wait_until 5 onlynew && ok "the new master forgot the old generation once its master exited" ||
    fail "status: $(quicctl status)"
[ -S "$T/run/control.sock" ] && ok "the control socket is still there" || fail "control socket gone"

# resumption and 0-RTT with the tickets from before the upgrade
gtls 15 --download="$T/dl" --session-file="$S" --tp-file="$P" 127.0.0.1 "$PORT" \
    "$(h3_url 64k.bin)" > "$T/0rtt.log"; rc=$?
zr=$(grep -cE ' frm tx [0-9]+ 0RTT STREAM\([^)]*\) id=0x0 ' "$T/0rtt.log")
[ $rc -eq 0 ] && [ "$zr" -gt 0 ] && ! grep -q "Early data was rejected by server" "$T/0rtt.log" &&
    [ "$(gtls_status_count "$T/0rtt.log" 200)" = 1 ] && cmp -s "$T/htdocs/64k.bin" "$T/dl/64k.bin" &&
    ok "after the upgrade: resumed with 0-RTT, the request in 0-RTT accepted, 64 KiB byte-identical" ||
    fail "0-RTT after the upgrade: exit $rc, 0-RTT stream frames $zr, $(grep -c 'Early data was rejected' "$T/0rtt.log") rejections"
tls -sess_in "$TS" | grep -q '^Reused, TLSv1.3' && ok "after the upgrade: TLS/TCP session resumed" ||
    fail "TLS/TCP session not resumed after the upgrade"

# a stop of the new master removes the paths as usual
out=$(quicctl stop 2>&1) || fail "quicctl stop: $out"
stopped() { ! kill -0 "$NEW_MASTER" 2>/dev/null; }
wait_until 10 stopped && [ ! -e "$T/run/control.sock" ] && [ ! -e "$T/run/quicd.pid" ] &&
    ok "the new master stops and removes its control socket and pid file" || fail "after stop: $(ls "$T/run")"
MASTER_PID=""
rows=$(sql "select count(*) from requests where path = '/small.txt'")
[ "$rows" = "$(field started_new)" ] &&
    ok "the database has every request of both masters: $rows (want $(field started_new))" ||
    fail "database: $rows requests for /small.txt, want $(field started_new)"
finish
