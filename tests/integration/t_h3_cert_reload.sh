# SPDX-License-Identifier: MIT
# A renewed certificate is picked up by `quicctl reload`, in place (same
# paths, new contents), although the workers are chrooted: the master
# passes them the files open. New connections get the new certificate, an
# event stream (/events) opened before the reload goes on across it, the
# workers are not replaced; a renewal whose key does not match makes the reload fail with
# a message naming tls_key, and the server keeps the working certificate.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1 "events_interval = 250ms"
h3_start || finish
WPID=$(proc_field worker 0 pid)

# fetch_with CA URL - one GET trusting only CA; prints status=... or the error
fetch_with() {
    "$H3_PYTHON" "$H3GET_PY" --cacert "$1" --resolve "localhost:$PORT:127.0.0.1" fetch "$2" - 2>&1
}
cp "$T/cert.pem" "$T/old.pem"
fetch_with "$T/old.pem" "$(h3_url "")" | grep -q "status=200" && ok "served with the first certificate" ||
    fail "first certificate: $(fetch_with "$T/old.pem" "$(h3_url "")")"

# A connection that spans the reload: 60 server-sent events, 250 ms apart
# (15 s, ample for the reload on a busy machine). The reload waits until
# the worker reports the stream open (status, every second), so that it
# does span it however slowly the client starts.
bg h3get --timeout 90 stream "$(h3_url events)" sse 60 "$T/events.out" > "$T/events.log" 2>&1
EV=$BG_PID
# (one worker: its line of status --json)
stream_open() { quicctl status --json | grep '"role": "worker"' | grep -q '"streams": [1-9]'; }
wait_until 5 stream_open || fail "the event stream did not open: $(cat "$T/events.log")"

# Renewal in place: new key and certificate written over the old files.
h3_cert
cp "$T/cert.pem" "$T/new.pem"
out=$(quicctl reload 2>&1) && ok "reload: $out" || fail "reload failed: $out"
kill -0 "$EV" 2>/dev/null && ev_open=yes || ev_open=no
fetch_with "$T/new.pem" "$(h3_url "")" | grep -q "status=200" &&
    ok "a new connection gets the renewed certificate" ||
    fail "renewed certificate: $(fetch_with "$T/new.pem" "$(h3_url "")" | tail -n 2)"
old=$(fetch_with "$T/old.pem" "$(h3_url "")")
echo "$old" | grep -q "status=200" && fail "the old certificate is still served" ||
    ok "the old certificate is no longer served ($(echo "$old" | tail -n 1 | cut -c 1-100))"
[ "$(proc_field worker 0 pid)" = "$WPID" ] && ok "the worker was not replaced (pid $WPID)" ||
    fail "the worker was replaced"
[ "$ev_open" = yes ] && ok "the event stream was still open after the reload" ||
    fail "the event stream ended before the reload was done: $(cat "$T/events.log")"
wait_until 30 sh -c "! kill -0 $EV 2>/dev/null"
grep -q "^stream: 60 events .*status=200 version=3" "$T/events.log" &&
    ok "it got all its events: $(cut -c 1-60 "$T/events.log")" ||
    fail "event stream: $(cat "$T/events.log")"

# A broken renewal: a key that does not belong to the certificate.
cp "$T/key.pem" "$T/good-key.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/key.pem" 2>/dev/null ||
    die "openssl genpkey"
out=$(quicctl reload 2>&1) && fail "a reload with a mismatched key succeeded: $out" ||
    { echo "$out" | grep -q "tls_key" && ok "the reload fails: $(echo "$out" | tr '\n' ' ' | cut -c 1-160)" ||
        fail "reload failed without naming tls_key: $out"; }
fetch_with "$T/new.pem" "$(h3_url "")" | grep -q "status=200" &&
    ok "the server keeps serving the working certificate" ||
    fail "no longer serving: $(fetch_with "$T/new.pem" "$(h3_url "")" | tail -n 1); $(grep -i "tls\|reload" "$T/quicd.log" | tail -n 5)"
cp "$T/good-key.pem" "$T/key.pem"
out=$(quicctl reload 2>&1) && ok "a reload with the right key succeeds again" || fail "reload: $out"
finish
