# SPDX-License-Identifier: MIT
# GET /metrics from the stats daemon, on the socket the master binds
# (metrics_listen): a scrape in the Prometheus text format that promtool
# accepts; HEAD, keep-alive and pipelining; 404, 405, 400, 431; a slow
# client cut off at the 5 s deadline; at most 16 connections; metrics_allow
# refusing a peer; a bearer token (401, 401, 200); reloads that move the
# endpoint (also with a new generation of workers), fail on a taken port
# and keep the old one; kill -9 of stats;
# and the configuration errors quicd -t reports (file:line: key).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || skip "curl is not installed"
command -v promtool >/dev/null ||
    skip "promtool is not installed (Debian package prometheus; contrib/install-deps adds it)"

setup 1
new_port MPORT
new_port MPORT2
new_port MPORT3
TOKEN_FILE="$T/metrics.token"
M="127.0.0.1:$MPORT"

# scrape URL [CURL ARGS...] - GET URL; the body in $T/body, the head in
# $T/head; prints the status (000: no answer) and returns curl's status
scrape() {
    local url=$1; shift
    rm -f "$T/body" "$T/head"
    curl -sS --max-time 10 -o "$T/body" -D "$T/head" -w '%{http_code}' "$@" "$url" 2>"$T/curl.err"
}

# field NAME - the value of header NAME in $T/head
field() { tr -d '\r' < "$T/head" | sed -n "s/^$1: //Ip" | head -1; }

# raw.py: what curl cannot do (pipelining, half heads, idle connections)
cat > "$T/raw.py" <<'PY'
import socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

def conn():
    s = socket.create_connection((host, port), timeout=10)
    return s

def read_all(s, limit):
    s.settimeout(limit)
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (socket.timeout, ConnectionResetError):
        pass
    return data

def answers(data, methods):
    # "STATUS:BODY-LENGTH" of each answer in |data| to requests |methods|
    out = []
    for m in methods:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head = data[:end].decode("latin-1").split("\r\n")
        fields = dict(l.lower().split(": ", 1) for l in head[1:])
        n = int(fields.get("content-length", "0"))
        body = b"" if m == "HEAD" else data[end + 4:end + 4 + n]
        out.append("%s:%d" % (head[0].split(" ")[1], len(body)))
        data = data[end + 4 + len(body):]
    return " ".join(out) + (" +%d" % len(data) if data else "")

if mode == "pipelined":
    # three requests in one send on one connection: GET, HEAD (query), HTTP/1.0 GET
    s = conn()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
              b"HEAD /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /nothing HTTP/1.0\r\n\r\n")
    print(answers(read_all(s, 10), ["GET", "HEAD", "GET"]))
elif mode == "head":
    s = conn()
    s.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_all(s, 10)
    end = data.find(b"\r\n\r\n")
    fields = dict(l.lower().split(": ", 1) for l in data[:end].decode().split("\r\n")[1:])
    print(data.split(b" ")[1].decode(), fields.get("content-length"), len(data) - end - 4)
elif mode == "slow":
    # half a head, then wait: the server must close within its deadline
    s = conn()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    data = read_all(s, float(sys.argv[4]))
    print("%.2f %d" % (time.monotonic() - t0, len(data)))
elif mode == "limit":
    # N idle connections are kept; one more is closed at once
    n = int(sys.argv[4])
    held = [conn() for _ in range(n)]
    time.sleep(0.3)
    extra = conn()
    t0 = time.monotonic()
    data = read_all(extra, 3)
    closed_fast = time.monotonic() - t0 < 2.5 and data == b""
    alive = 0
    for s in held:
        s.settimeout(0.05)
        try:
            alive += s.recv(1) == b""  # 0 bytes: closed
        except socket.timeout:
            alive += 0
        except ConnectionResetError:
            pass
    print("extra_closed=%d held_closed=%d" % (closed_fast, alive))
elif mode == "raw":
    # send argv[4] (with \r\n escapes) and print the status line, or "closed"
    s = conn()
    s.sendall(sys.argv[4].encode().decode("unicode_escape").encode("latin-1"))
    data = read_all(s, 10)
    print(data.split(b"\r\n")[0].decode() if data else "closed")
PY
raw() { python3 "$T/raw.py" "$@"; }

# --- configuration errors, before anything runs ---------------------------------
write_conf 1 "metrics_listen = $M" "metrics_allow = 127.0.0.0/8, 10.0.0.300"
line=$(grep -n "^metrics_allow" "$CONF" | cut -d: -f1)
out=$("$QUICD" -t -c "$CONF" 2>&1); rc=$?
[ "$rc" -eq 1 ] && ok "quicd -t refuses a bad metrics_allow" || fail "quicd -t rc=$rc: $out"
echo "$out" | grep -qF "$CONF:$line: metrics_allow: invalid value \"127.0.0.0/8, 10.0.0.300\": '10.0.0.300': bad IPv4 address" &&
    ok "the error names file:line, the key and the entry" || fail "quicd -t said: $out"
write_conf 1 "metrics_listen = $M" "metrics_allow = 10.0.0.1/8"
out=$("$QUICD" -t -c "$CONF" 2>&1)
echo "$out" | grep -qF "metrics_allow: invalid value \"10.0.0.1/8\": '10.0.0.1/8': address bits set beyond the /8 prefix (the network is 10.0.0.0/8)" &&
    ok "host bits beyond the prefix are refused with the network meant" || fail "quicd -t said: $out"
: > "$TOKEN_FILE"
write_conf 1 "metrics_listen = $M" "metrics_token_file = $TOKEN_FILE"
line=$(grep -n "^metrics_token_file" "$CONF" | cut -d: -f1)
out=$("$QUICD" -t -c "$CONF" 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -qF "$CONF:$line: metrics_token_file: $TOKEN_FILE: empty" &&
    ok "quicd -t refuses an empty token file (file:line)" || fail "quicd -t rc=$rc: $out"
write_conf 1 "metrics_listen = $M" "metrics_token_file = $T/no-such-token"
out=$("$QUICD" -t -c "$CONF" 2>&1)
echo "$out" | grep -qF "metrics_token_file: $T/no-such-token: No such file or directory" &&
    ok "quicd -t refuses a missing token file" || fail "quicd -t said: $out"
write_conf 1 "metrics_listen = 127.0.0.1:$PORT"
out=$("$QUICD" -t -c "$CONF" 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "metrics_listen: 127.0.0.1:$PORT takes the port of listen 127.0.0.1:$PORT" &&
    ok "quicd -t refuses metrics_listen on a listen address's TCP port" || fail "quicd -t rc=$rc: $out"

# A port someone else listens on: quicd does not start, and says why.
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
open(sys.argv[2], "w").write("up")
time.sleep(120)' "$MPORT3" "$T/holder.up" &
HOLDER=$!
wait_until 5 test -s "$T/holder.up" || die "the port holder did not start"
write_conf 1 "metrics_listen = 127.0.0.1:$MPORT3"
out=$(timeout 20 "$QUICD" -f -c "$CONF" 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "metrics_listen 127.0.0.1:$MPORT3: cannot bind: Address already in use" &&
    ok "a taken metrics_listen port stops the start with a clear error" || fail "rc=$rc: $out"

# --- the endpoint ----------------------------------------------------------------
write_conf 1 "metrics_listen = $M"
start_suite && ok "suite up with metrics_listen = $M" || finish
code=$(scrape "http://$M/metrics")
[ "$code" = 200 ] && ok "GET /metrics: 200" || fail "GET /metrics: $code $(cat "$T/curl.err")"
[ "$(field content-type)" = "text/plain; version=0.0.4; charset=utf-8" ] &&
    ok "Content-Type is the Prometheus text format" || fail "Content-Type: $(field content-type)"
[ "$(field content-length)" = "$(stat -c %s "$T/body")" ] && ok "Content-Length matches the body" ||
    fail "Content-Length $(field content-length), body $(stat -c %s "$T/body")"
grep -qx "# TYPE quicd_http_requests_total counter" "$T/body" &&
    ok "the body has # TYPE quicd_http_requests_total counter" || fail "body: $(head -c 300 "$T/body")"
if out=$(promtool check metrics < "$T/body" 2>&1); then ok "promtool check metrics accepts the body"; else
    fail "promtool check metrics: $out"; fi
read -r code len rest < <(raw head 127.0.0.1 "$MPORT")
[ "$code" = 200 ] && [ "$len" = "$(stat -c %s "$T/body")" ] && [ "$rest" = 0 ] &&
    ok "HEAD /metrics: 200, the GET's Content-Length, no body" || fail "HEAD: $code, $len, $rest bytes after the head"
code=$(scrape "http://$M/metrics?name[]=quicd_http_requests_total")
[ "$code" = 200 ] && ok "a query string is ignored" || fail "GET /metrics?...: $code"
code=$(scrape "http://$M/metrics" -X POST -d x=1)
[ "$code" = 405 ] && [ "$(field allow)" = "GET, HEAD" ] && ok "POST: 405 with Allow: GET, HEAD" ||
    fail "POST: $code, Allow: $(field allow)"
code=$(scrape "http://$M/metrics/" )
[ "$code" = 404 ] && ok "/metrics/: 404" || fail "/metrics/: $code"
code=$(scrape "http://$M/")
[ "$code" = 404 ] && ok "/: 404" || fail "/: $code"
code=$(scrape "http://$M/metrics" -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)")
[ "$code" = 431 ] || [ "$code" = 000 ] && ok "a 9 KB head: $code (431 or closed)" || fail "9 KB head: $code"
[ "$code" = 431 ] && [ "$(field connection)" = close ] && ok "431 closes the connection" ||
    log "note: the 431 was not read ($code)"
out=$(raw raw 127.0.0.1 "$MPORT" 'GARBAGE\r\n\r\n')
[ "$out" = "HTTP/1.1 400 Bad Request" ] && ok "a malformed request: 400" || fail "malformed: $out"
out=$(raw raw 127.0.0.1 "$MPORT" 'GET /metrics HTTP/1.1\r\n\r\n')
[ "$out" = "HTTP/1.1 400 Bad Request" ] && ok "HTTP/1.1 without Host: 400" || fail "no Host: $out"
out=$(raw raw 127.0.0.1 "$MPORT" 'GET /metrics HTTP/1.1\r\nX-Empty:\r\nHost: x\r\nConnection: close\r\n\r\n')
[ "$out" = "HTTP/1.1 200 OK" ] && ok "a field with an empty value: 200" || fail "empty field value: $out"
out=$(raw raw 127.0.0.1 "$MPORT" 'GET /metrics HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n')
[ "$out" = "HTTP/1.1 400 Bad Request" ] && ok "two Host fields: 400" || fail "two Hosts: $out"
out=$(raw raw 127.0.0.1 "$MPORT" 'GET /metrics HTTP/1.0\r\n\r\n')
[ "$out" = "HTTP/1.1 200 OK" ] && ok "HTTP/1.0: 200" || fail "HTTP/1.0: $out"
out=$(raw raw 127.0.0.1 "$MPORT" 'GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n')
[ "$out" = "HTTP/1.1 400 Bad Request" ] && ok "HTTP/2.0 in a request line: 400" || fail "HTTP/2.0: $out"
out=$(raw pipelined 127.0.0.1 "$MPORT")
[[ $out =~ ^200:[0-9]{4,}\ 200:0\ 404:[0-9]+$ ]] &&
    ok "three pipelined requests on one connection, answered in turn: $out" || fail "pipelined: $out"
out=$(curl -sS --max-time 10 -o /dev/null -o /dev/null -w '%{num_connects} ' "http://$M/metrics" "http://$M/metrics")
[ "$out" = "1 0 " ] && ok "curl reuses the connection (keep-alive)" || fail "num_connects: $out"

# A client that sends half a head is cut off at the 5 s deadline.
read -r secs got < <(raw slow 127.0.0.1 "$MPORT" "$(scaled 4 | awk '{print $1 + 6}')")
awk -v s="$secs" -v k="$QD_WAIT_SCALE" 'BEGIN { exit !(s >= 4.5 && s <= 5 + 2 * k) }' && [ "$got" = 0 ] &&
    ok "half a head: closed after ${secs}s (deadline 5 s), no answer" || fail "half a head: ${secs}s, $got bytes"
grep -q "no complete request head within 5s; closed" "$T/quicd.log" && ok "the cut is logged" ||
    fail "no log line for the slow client"

# At most 16 connections: the 17th is closed at once, the 16 stay.
out=$(raw limit 127.0.0.1 "$MPORT" 16)
[ "$out" = "extra_closed=1 held_closed=0" ] && ok "16 connections held, the 17th closed at once" || fail "limit: $out"
grep -q "/metrics: refused 127.0.0.1:[0-9]*: 16 connections open already" "$T/quicd.log" &&
    ok "the refused 17th is logged" || fail "no log line for the 17th connection"
code=$(scrape "http://$M/metrics")
[ "$code" = 200 ] && ok "scrapes go on once they are closed" || fail "after the limit: $code"

# --- metrics_allow -----------------------------------------------------------------
write_conf 1 "metrics_listen = $M" "metrics_allow = 10.0.0.0/8"
out=$(quicctl reload) && ok "reload: metrics_allow = 10.0.0.0/8" || fail "reload: $out"
code=$(scrape "http://$M/metrics"); rc=$?
[ "$code" = 000 ] && { [ "$rc" = 52 ] || [ "$rc" = 56 ]; } && ok "127.0.0.1 is refused (curl exit $rc)" ||
    fail "scrape from outside metrics_allow: $code, curl exit $rc"
wait_until 2 grep -q "/metrics: refused 127.0.0.1:[0-9]*: not in metrics_allow" "$T/quicd.log" &&
    ok "the refusal is logged" || fail "no log line for the refused peer"

# --- a bearer token ------------------------------------------------------------------
echo "tok-$RANDOM-$RANDOM" > "$TOKEN_FILE"
TOKEN=$(cat "$TOKEN_FILE")
write_conf 1 "metrics_listen = $M" "metrics_token_file = $TOKEN_FILE"
out=$(quicctl reload) && ok "reload: metrics_token_file" || fail "reload: $out"
code=$(scrape "http://$M/metrics")
[ "$code" = 401 ] && field www-authenticate | grep -q "^Bearer" && ok "no token: 401, WWW-Authenticate: Bearer" ||
    fail "no token: $code, $(field www-authenticate)"
code=$(scrape "http://$M/metrics" -H "Authorization: Bearer wrong-$TOKEN")
[ "$code" = 401 ] && field www-authenticate | grep -q 'error="invalid_token"' && ok "a wrong token: 401" ||
    fail "wrong token: $code"
code=$(scrape "http://$M/metrics" -H "Authorization: Bearer ${TOKEN%?}")
[ "$code" = 401 ] && ok "a token one byte short: 401" || fail "short token: $code"
code=$(scrape "http://$M/metrics" -H "Authorization: Bearer $TOKEN")
[ "$code" = 200 ] && grep -q "^# TYPE quicd_http_requests_total counter" "$T/body" &&
    ok "the right token: 200 with the metrics" || fail "right token: $code"
code=$(scrape "http://$M/metrics" --oauth2-bearer "$TOKEN")
[ "$code" = 200 ] && ok "curl --oauth2-bearer: 200" || fail "--oauth2-bearer: $code"
# A new token takes effect at the next reload; the old one no longer works.
OLD=$TOKEN
echo "tok2-$RANDOM-$RANDOM" > "$TOKEN_FILE"
TOKEN=$(cat "$TOKEN_FILE")
out=$(quicctl reload) && ok "reload with a renewed token file" || fail "reload: $out"
code=$(scrape "http://$M/metrics" -H "Authorization: Bearer $OLD")
[ "$code" = 401 ] && ok "the old token: 401 after the reload" || fail "old token: $code"
code=$(scrape "http://$M/metrics" -H "Authorization: Bearer $TOKEN")
[ "$code" = 200 ] && ok "the new token: 200" || fail "new token: $code"
# An empty token file is a reload error: the running token stays.
: > "$TOKEN_FILE"
out=$(quicctl reload 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "metrics_token_file: $TOKEN_FILE: empty" &&
    ok "a reload with an empty token file fails and says why" || fail "reload rc=$rc: $out"
code=$(scrape "http://$M/metrics" -H "Authorization: Bearer $TOKEN")
[ "$code" = 200 ] && ok "the running token still works" || fail "after the failed reload: $code"
echo "$TOKEN" > "$TOKEN_FILE"
AUTH=(-H "Authorization: Bearer $TOKEN")

# --- reloads that move the endpoint --------------------------------------------------
M2="[::1]:$MPORT2"
write_conf 1 "metrics_listen = $M2" "metrics_token_file = $TOKEN_FILE"
out=$(quicctl reload) && ok "reload: metrics_listen = $M2" || fail "reload: $out"
code=$(scrape "http://$M2/metrics" "${AUTH[@]}")
[ "$code" = 200 ] && ok "the endpoint moved to $M2" || fail "GET on $M2: $code $(cat "$T/curl.err")"
code=$(scrape "http://$M/metrics" "${AUTH[@]}"); rc=$?
[ "$code" = 000 ] && [ "$rc" = 7 ] && ok "$M is closed (connection refused)" || fail "old $M: $code, curl exit $rc"
# 127.0.0.1 -> 0.0.0.0 on the same port: the new socket shares the port with the old one
write_conf 1 "metrics_listen = $M" "metrics_token_file = $TOKEN_FILE"
out=$(quicctl reload) && ok "reload: back to $M" || fail "reload: $out"
write_conf 1 "metrics_listen = 0.0.0.0:$MPORT" "metrics_token_file = $TOKEN_FILE"
out=$(quicctl reload) && ok "reload: $M -> 0.0.0.0:$MPORT (same port)" || fail "reload: $out"
code=$(scrape "http://$M/metrics" "${AUTH[@]}")
[ "$code" = 200 ] && ok "0.0.0.0:$MPORT answers on 127.0.0.1" || fail "GET after 0.0.0.0: $code"
# A port another program listens on: the reload fails and the endpoint stays.
write_conf 1 "metrics_listen = 127.0.0.1:$MPORT3" "metrics_token_file = $TOKEN_FILE"
out=$(quicctl reload 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "reload failed: metrics_listen 127.0.0.1:$MPORT3: cannot bind: Address already in use" &&
    ok "a reload onto a taken port fails with the reason" || fail "reload rc=$rc: $out"
echo "$out" | grep -q "/metrics stays on 0.0.0.0:$MPORT" && ok "... and says where /metrics stays" || fail "reload said: $out"
code=$(scrape "http://$M/metrics" "${AUTH[@]}")
[ "$code" = 200 ] && ok "the old endpoint still answers" || fail "after the failed reload: $code"
kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null
# A reload that starts a new generation of workers moves the endpoint too
# (stats keeps running and gets the configuration all the same).
spid=$(proc_field stats - pid)
write_conf 2 "metrics_listen = $M2" "metrics_token_file = $TOKEN_FILE"
out=$(quicctl reload) && echo "$out" | grep -q "generation" && ok "reload: workers 1 -> 2 and metrics_listen = $M2" ||
    fail "reload: $out"
code=$(scrape "http://$M2/metrics" "${AUTH[@]}")
[ "$code" = 200 ] && [ "$(proc_field stats - pid)" = "$spid" ] &&
    ok "the same stats daemon serves $M2 after the new generation" || fail "GET on $M2: $code"

# --- kill -9 of stats ------------------------------------------------------------------
write_conf 1 "metrics_listen = $M" "metrics_token_file = $TOKEN_FILE"
out=$(quicctl reload) && ok "reload: back to $M" || fail "reload: $out"
old=$(proc_field stats - pid)
kill -KILL "$old"
back() { code=$(scrape "http://$M/metrics" "${AUTH[@]}" --max-time 2); [ "$code" = 200 ]; }
wait_until 3 back && ok "after kill -9 of stats (pid $old) the endpoint answers again (pid $(proc_field stats - pid))" ||
    fail "no answer after kill -9 of stats: $code $(cat "$T/curl.err")"
[ "$(proc_field stats - pid)" != "$old" ] && ok "stats was restarted" || fail "stats pid unchanged"
wait_all_running 10 && ok "all running at the end (the old generations drained)" || fail "$(quicctl status)"
finish
