# SPDX-License-Identifier: MIT
# The built-in routes over HTTP/3 (curl through pycurl): /api/time, /api/echo
# (any bytes, JSON-escaped; 413 past max_request_body), 405s, /events (SSE
# framing; the stream is gone from quicctl status soon after the client
# leaves: within 2 s on a quiet machine), /stream (ndjson); request
# validation (400, 414, 431, and a malformed header reset by nghttp3 while
# a parallel request on the same connection completes); the access log,
# reopened on reload.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1
h3_conf 1 "events_interval = 200ms" "max_request_body = 64KB" "access_log = $T/access.log"
mkdir -p "$T/out"
h3_start || finish

# field OUTPUT NAME - status=... version=... from h3get req's last line
field() { echo "$1" | tail -n1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1; }
# hdr OUTPUT NAME - the value of response header NAME (lowercase) in h3get req output
hdr() { echo "$1" | sed -n "s/^line: $2: //Ip" | tail -n1 | tr -d '\r'; }
# json FILE EXPR - evaluate a python expression over the JSON object j in FILE
json() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>&1; }

# GET /api/time
out=$(h3get req "$(h3_url api/time)" "$T/out/time" 2>&1)
log "$out"
if [ "$(field "$out" status)" = 200 ] && [ "$(field "$out" version)" = 3 ] &&
    [ "$(hdr "$out" content-type)" = application/json ] &&
    [ "$(json "$T/out/time" 'j["protocol"]')" = HTTP/3 ] &&
    [ -n "$(json "$T/out/time" 'j["version"]')" ] &&
    json "$T/out/time" 'j["time"]' | grep -Eq '^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\.[0-9]+)?Z$'; then
    ok "GET /api/time: $(cat "$T/out/time")"
else
    fail "GET /api/time: $out $(cat "$T/out/time")"
fi
out=$(h3get req -X POST --data x "$(h3_url api/time)" "$T/out/time405" 2>&1)
[ "$(field "$out" status)" = 405 ] && [ "$(hdr "$out" allow)" = "GET, HEAD" ] &&
    ok "POST /api/time: 405, allow: GET, HEAD" || fail "POST /api/time: $out"

# POST /api/echo with every byte value and some UTF-8
python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) + "héllo €\"\\".encode())' > "$T/body.bin"
out=$(h3get req -X POST --data-file "$T/body.bin" "$(h3_url api/echo)" "$T/out/echo" 2>&1)
log "$(echo "$out" | tail -n1)"
check=$(python3 - "$T/body.bin" "$T/out/echo" <<'PY'
import json, sys
sent = open(sys.argv[1], "rb").read()
j = json.load(open(sys.argv[2], "rb"))
# not-UTF-8 bytes come back as U+00XX: decode what we sent the same way
out, i = [], 0
while i < len(sent):
    for n in (4, 3, 2, 1):
        try:
            ch = sent[i:i + n].decode("utf-8")
            if len(ch) == 1:
                out.append(ch); i += n; break
        except UnicodeDecodeError:
            pass
    else:
        out.append(chr(sent[i])); i += 1
want = "".join(out)
print("ok" if j["body"] == want and j["length"] == len(sent) and j["time"] else
      "mismatch: length %s vs %d" % (j["length"], len(sent)))
PY
)
[ "$(field "$out" status)" = 200 ] && [ "$check" = ok ] &&
    ok "POST /api/echo: $(stat -c %s "$T/body.bin") bytes echoed as valid, exact JSON" ||
    fail "POST /api/echo: $out / $check"
# The keys of the reference sample's echo: echo (the body again, escaped
# the same), length (bytes, a number) and timestamp (epoch milliseconds)
printf 'quicd says "hi"\n\tand\\more \303\251' > "$T/body2.bin"
t_before=$(date +%s%3N)
out=$(h3get req -X POST --data-file "$T/body2.bin" "$(h3_url api/echo)" "$T/out/echo2" 2>&1)
t_after=$(date +%s%3N)
check=$(python3 - "$T/body2.bin" "$T/out/echo2" "$t_before" "$t_after" <<'PY'
import json, re, sys
sent = open(sys.argv[1], "rb").read()
raw = open(sys.argv[2], "rb").read()
j = json.loads(raw)
t0, t1 = int(sys.argv[3]), int(sys.argv[4])
errors = []
if j.get("echo") != sent.decode("utf-8"):
    errors.append("echo %r" % j.get("echo"))
m = re.match(rb'\{"body": "(.*)", "echo": "(.*)", "length": ', raw, re.S)
if not m or m.group(1) != m.group(2):
    errors.append("echo is not escaped as body is")
if type(j.get("length")) is not int or j["length"] != len(sent):
    errors.append("length %r, want %d" % (j.get("length"), len(sent)))
ts = j.get("timestamp")
if type(ts) is not int or not t0 - 1000 <= ts <= t1 + 1000:
    errors.append("timestamp %r not within [%d, %d] ms" % (ts, t0, t1))
if not {"body", "time"} <= set(j):
    errors.append("keys %s" % sorted(j))
print("; ".join(errors) or "ok")
PY
)
[ "$(field "$out" status)" = 200 ] && [ "$check" = ok ] &&
    ok "POST /api/echo: echo, length ($(stat -c %s "$T/body2.bin")) and timestamp (epoch ms) as the reference sample has them: $(cat "$T/out/echo2")" ||
    fail "POST /api/echo keys: $out / $check / $(cat "$T/out/echo2")"
out=$(h3get req "$(h3_url api/echo)" "$T/out/echo405" 2>&1)
[ "$(field "$out" status)" = 405 ] && [ "$(hdr "$out" allow)" = POST ] &&
    ok "GET /api/echo: 405, allow: POST" || fail "GET /api/echo: $out"
head -c 70000 /dev/zero > "$T/big.bin"
out=$(h3get req -X POST --data-file "$T/big.bin" "$(h3_url api/echo)" "$T/out/413" 2>&1)
[ "$(field "$out" status)" = 413 ] && ok "POST /api/echo with 70000 bytes (max 64KB): 413" ||
    fail "413: $out"

# GET /events: four events, well framed, then the client leaves (the
# client keeps exactly the first four, whatever the chunking)
out=$(h3get --timeout 30 stream "$(h3_url events)" sse 4 "$T/out/events" 2>&1)
log "$out"
frames=$(python3 - "$T/out/events" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
blocks = [b for b in text.split("\n\n") if b]
events = []
for b in blocks:
    f = dict(l.split(": ", 1) for l in b.split("\n"))
    if "event" in f:
        assert f["event"] == "tick" and int(f["id"]) >= 1
        json.loads(f["data"])
        events.append(int(f["id"]))
print(len(events) if events == list(range(1, len(events) + 1)) else "bad ids %s" % events)
PY
)
case $out in *"type=text/event-stream"*) ok "/events is text/event-stream" ;; *) fail "/events: $out" ;; esac
[ "${frames:-0}" = 4 ] && ok "/events: $frames events with event:, id:, data: (JSON) lines" ||
    fail "/events framing: $frames"
# (one worker: its line of status --json; cheaper than proc_field under load)
streams_zero() { quicctl status --json | grep '"role": "worker"' | grep -q '"streams": 0[,}]'; }
t0=$(date +%s%N)
if wait_until 2 streams_zero; then
    ok "after the client left, quicctl status shows the worker's streams at 0 after $(( ($(date +%s%N) - t0) / 1000000 )) ms (2 s on a quiet machine)"
else
    fail "streams after /events: worker $(proc_field worker 0 streams)"
fi

# GET /stream: ndjson lines
out=$(h3get --timeout 30 stream "$(h3_url stream)" nl 2 "$T/out/stream" 2>&1)
log "$out"
lines=$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if "time" in json.loads(l)))' "$T/out/stream" 2>&1)
case $out in *"type=application/x-ndjson"*) [ "$lines" = 2 ] ;; *) false ;; esac &&
    ok "/stream: $lines JSON lines (application/x-ndjson)" || fail "/stream: $out $lines"

# Validation: bad escape 400, long path 414, huge head 431
out=$(h3get req "$(h3_url 'a%zz')" "$T/out/400" 2>&1)
[ "$(field "$out" status)" = 400 ] && grep -q "400 Bad Request" "$T/out/400" &&
    ok "bad %-escape: 400 with a clear body" || fail "400: $out"
long=$(head -c 5000 /dev/zero | tr '\0' a)
out=$(h3get req "$(h3_url "$long")" "$T/out/414" 2>&1)
[ "$(field "$out" status)" = 414 ] && grep -q "414 URI Too Long" "$T/out/414" &&
    ok "5000-byte path: 414" || fail "414: $(echo "$out" | tail -n1)"
big=$(head -c 40000 /dev/zero | tr '\0' b)
out=$(h3get req -H "x-big: $big" "$(h3_url index.html)" "$T/out/431" 2>&1)
[ "$(field "$out" status)" = 431 ] && grep -q "431" "$T/out/431" &&
    ok "40 KB header field: 431 (from the worker)" || fail "431: $(echo "$out" | tail -n1)"
out=$(h3get req -X DELETE "$(h3_url index.html)" "$T/out/405" 2>&1)
[ "$(field "$out" status)" = 405 ] && [ "$(hdr "$out" allow)" = "GET, HEAD" ] &&
    ok "DELETE on a file: 405" || fail "DELETE: $out"

# A malformed request next to a good one on the same connection: an invalid
# content-length (RFC 9114 4.1.2) makes nghttp3 reset the stream with
# H3_MESSAGE_ERROR before the head reaches the app. (curl lowercases
# names; a name with a space, "bad header", is dropped by nghttp3, as
# nghttp2 does, and the request is served: checked below.)
before=$(grep -c . "$T/access.log")
out=$(h3get pair "$(h3_url index.html)" "$(h3_url "api/echo?malformed")" "content-length: abc" 2>&1)
rc=$?
log "$out"
[ $rc = 0 ] && ok "content-length: abc: that stream is reset, the parallel GET gets 200 on the same connection" ||
    fail "malformed request: $out"
# the two GETs are logged; then a second more for a line of the malformed one
wait_until 2 sh -c "[ \$(grep -c . '$T/access.log') -ge $((before + 2)) ]" ||
    log "the access log does not have the pair's two GETs: $(tail -n 3 "$T/access.log")"
wait_quiet 1 grep -q "malformed" "$T/access.log" && fail "the malformed POST reached the app" ||
    ok "the malformed request never reached the app (not in the access log)"
out=$(h3get req -H "Bad Header: x" "$(h3_url index.html)" "$T/out/badname" 2>&1)
[ "$(field "$out" status)" = 200 ] && ok "a field named 'bad header' is dropped by nghttp3; the request is served" ||
    fail "bad header name: $out"

# Access log: one line per request; reload reopens it (rotation)
n=$(grep -c . "$T/access.log" 2>/dev/null)
log "access log: $n lines; last: $(tail -n1 "$T/access.log")"
grep -Eq '^20[0-9-]+T[0-9:.]+Z 127\.0\.0\.1:[0-9]+ "GET /api/time HTTP/3" 200 [0-9]+ [0-9.]+ [0-9a-f]+ [0-9]+$' "$T/access.log" &&
    ok "access log line for GET /api/time in the documented format" || fail "access log: $(head -n3 "$T/access.log")"
wait_until 2 grep -Eq '"GET /events HTTP/3" 200 [0-9]+ [0-9.]+ [0-9a-f]+ [0-9]+ cancelled$' "$T/access.log" &&
    ok "the /events request is logged as cancelled" || fail "no cancelled /events line"
mv "$T/access.log" "$T/access.log.1"
quicctl reload >/dev/null 2>&1 || fail "reload failed"
h3get req "$(h3_url api/time)" "$T/out/time2" >/dev/null 2>&1
wait_until 2 grep -q '"GET /api/time HTTP/3"' "$T/access.log" &&
    ok "after mv + quicctl reload the app writes to the new access_log" || fail "no new access log after reload"

# A graceful stop ends an open /events response instead of waiting for the
# drain deadline: the client sees the stream end cleanly.
bg h3get --timeout 60 stream "$(h3_url events)" sse 1000 "$T/out/events2" > "$T/events2.log" 2>&1
sse_pid=$BG_PID
streams_open() { quicctl status --json | grep '"role": "worker"' | grep -q '"streams": [1-9]'; }
# the client is reading events (its stream open at the worker) before the stop
wait_until 5 streams_open || fail "the second /events did not open: $(cat "$T/events2.log")"
quicctl stop >/dev/null 2>&1 || fail "quicctl stop"
for _ in $(seq 100); do kill -0 "$sse_pid" 2>/dev/null || break; sleep 0.1; done
if grep -q "quicd/app.*drain deadline reached" "$T/quicd.log"; then
    fail "the app waited for the drain deadline with /events open"
else
    ok "quicctl stop ends open /events responses (no drain deadline in the app)"
fi
finish
