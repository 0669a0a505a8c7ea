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
. "$(dirname "$0")/genlib.sh"
need_pycurl
need_gtlsclient
need_openssl
CONFS=("drain_timeout = 60s" "events_interval = 300ms" "early_data = yes")
h3_setup 2 "${CONFS[@]}"
# quicd runs from a copy that the test can replace, as `make install` would
mkdir -p "$T/sbin"
cp "$QUICD" "$T/sbin/quicd"
QUICD="$T/sbin/quicd"
rm "$T/libexec/worker"
cp "$QD_BUILDDIR/daemons/worker/worker" "$T/libexec/worker"
gen_files
head -c 65536 /dev/urandom > "$T/htdocs/64k.bin"
h3_start || finish
OLD_MASTER=$MASTER_PID

# session tickets from before the upgrade
S="$T/session.pem" P="$T/tp.pem" TS="$T/tcp-session.pem"
mkdir -p "$T/dl"
gtls 30 --download="$T/dl" --session-file="$S" --tp-file="$P" --wait-for-ticket 127.0.0.1 "$PORT" \
    "$(h3_url 64k.bin)" > "$T/ticket.log"
[ -s "$S" ] && ok "QUIC session ticket stored" || fail "no QUIC ticket: $(tail -n 3 "$T/ticket.log")"
GET='GET /64k.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
tls() { printf %b "$GET" | timeout 30 openssl s_client -connect "127.0.0.1:$PORT" \
    -servername localhost -CAfile "$T/cert.pem" -alpn http/1.1 -ign_eof "$@" 2>&1; }
tls -sess_out "$TS" | grep -q '^New, TLSv1.3' && [ -s "$TS" ] && ok "TLS/TCP session stored" ||
    fail "no TLS/TCP session"

gen_load_start
# pids [ROLE...] - "role:pid" of every process (of those roles)
pids() { quicctl status --json | python3 -c '
import json, sys
roles = sys.argv[1:]
print(" ".join("%s:%d" % (p["role"], p["pid"]) for p in json.load(sys.stdin)["processes"]
               if not roles or p["role"] in roles))' "$@"; }
# pids_of ROLE... - the words of $BEFORE of those roles
pids_of() { local w r out=""; for w in $BEFORE; do
    for r in "$@"; do [ "${w%%:*}" = "$r" ] && out="$out${out:+ }$w"; done; done; echo "$out"; }
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
# the slots its listener opened joined the reuseport groups after ours: the
# old master keeps them (a new listener of its own takes them back), so
# that no socket opened later lands at another index in a group
[ "$(pids worker app stats)" = "$(pids_of worker app stats)" ] &&
    wait_until 5 grep -q "keeping the sockets the new master's listener opened" "$T/quicd.log" &&
    ok "the same master, workers, app and stats; the listener took the new slots back" ||
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
took=$(grep "listener\[.*took back" "$T/quicd.log" | tail -n 1 | grep -o "took back [0-9]*" | grep -o "[0-9]*")
have=$(grep "listener\[.*listening on" "$T/quicd.log" | tail -n 1 |
    sed -n 's/.*: \([0-9]*\) UDP and \([0-9]*\) TCP sockets.*/\1 \2/p')
[ -n "$took" ] && [ "$took" = "$(( ${have% *} + ${have#* } ))" ] &&
    ok "the new listener took back every socket, the failed attempt's slots too, and opened none ($took)" ||
    fail "the new listener took back $took sockets and has $have (UDP TCP)"
st="$(gen_status) $(quicctl status --json | python3 -c '
import json, sys; print(json.load(sys.stdin)["processes"][0]["pid"])')"
echo "$st" | grep -q "^1:draining 2:serving $NEW_MASTER\$" &&
    ok "the new master serves generation 2 beside the old one's, draining: $st" || fail "status: $st"

# the first 20 downloads (6 MB at 300 kB/s, 20 s) are the old master's: the
# load goes on until it has drained them and exited, then stops
gone() { ! kill -0 "$OLD_MASTER" 2>/dev/null; }
if wait_until 60 gone; then
    ok "the old master (pid $OLD_MASTER) exited once drained"
    wait "$OLD_MASTER" 2>/dev/null
else
    fail "the old master is still there"
    kill -KILL "$OLD_MASTER" 2>/dev/null
fi
gen_load_check "the upgrade" 300

gen_no_kill
onlynew() { [ "$(gen_status)" = "2:serving" ]; }
wait_until 5 onlynew && ok "the new master forgot the old generation once its master exited" ||
    fail "status: $(quicctl status)"
[ -S "$T/run/control.sock" ] && ok "the control socket is still there" || fail "control socket gone"

# resumption and 0-RTT with the tickets from before the upgrade
gtls 30 --download="$T/dl" --session-file="$S" --tp-file="$P" 127.0.0.1 "$PORT" \
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
[ "$rows" = "$(gen_field started_new)" ] &&
    ok "the database has every request of both masters: $rows (want $(gen_field started_new))" ||
    fail "database: $rows requests for /small.txt, want $(gen_field started_new)"
finish
