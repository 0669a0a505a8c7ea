# SPDX-License-Identifier: MIT
# The reverse proxy when upstreams fail (issue 24, parts 3-5), each with
# the number of errors clients see (h2load over HTTP/3, and single
# requests):
#   - a backend that closes every kept-alive connection idle for 5 ms
#     (the keep-alive race), 1,000 GETs: 0 errors;
#   - one of two backends killed under load: 0 failed GETs, it is marked
#     down by the health checks within the configured time, and up again
#     after it returns;
#   - the upstream daemon killed under load: 0 errors, and new upstream
#     connections work again with its successor;
#   - all servers down (by the checks): 503 at once, not after a timeout;
#   - a server that refuses connections: 502 after the retries;
#   - a slow upstream: 504 at read_timeout; garbage: 502;
#   - fail_5xx=yes: 5xx answers mark a server down (503 then), and it is
#     tried again after fail_timeout;
#   - a connect that never completes (a full accept queue): 504 at
#     connect_timeout; max_conns=1 with queue=1: the second request waits,
#     the third gets 503 at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/proxylib.sh"
need_pycurl
need_h2load
h3_setup 1
new_port PA
new_port PB
new_port PC
new_port PD
new_port PE
start_b() { backend b --port "$PB"; BPID=$BG_PID; }
backend a --port "$PA"
start_b
backend c --port "$PC" --idle-close 5 --record "$T/c.rec"

# a listener whose accept queue is full: connects to it time out
cat > "$T/blackhole.py" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(0)
c = socket.socket()
c.setblocking(False)
c.connect_ex(("127.0.0.1", port))  # fills the queue; never accepted
time.sleep(0.2)
print("ready", flush=True)
time.sleep(600)
PY
bg ports_exec /usr/bin/python3 "$T/blackhole.py" "$PE" > "$T/hole.out" 2>&1
hole_ready() { grep -q ready "$T/hole.out"; }
wait_until 5 hole_ready || die "blackhole listener: $(cat "$T/hole.out")"

cat > "$T/proxy" <<TBL
group two check=/healthz check_interval=200ms check_timeout=500ms rise=2 fall=2
server two 127.0.0.1:$PA
server two 127.0.0.1:$PB
group racy fall=100
server racy 127.0.0.1:$PC
group dead check=/healthz check_interval=200ms fall=1
server dead 127.0.0.1:$PD
group refused
server refused 127.0.0.1:$PD
group slow read_timeout=1s
server slow 127.0.0.1:$PA
group fivexx fail_5xx=yes fall=2 fail_timeout=4s
server fivexx 127.0.0.1:$PA
group hole connect_timeout=500ms
server hole 127.0.0.1:$PE
group q queue=1
server q 127.0.0.1:$PA max_conns=1
route */two/ two strip
route */racy/ racy strip
route */dead/ dead strip
route */refused/ refused strip
route */slow/ slow
route */fivexx/ fivexx strip
route */hole/ hole strip
route */q/ q strip
TBL
echo "proxy_table = $T/proxy" >> "$CONF"
h3_start || finish

# load N URL, load_for SECONDS URL - h2load over HTTP/3, 4 connections x 4 streams
load() { h2load_h3 -n "$1" -c 4 -m 4 "$2"; }
load_for() { h2load_h3 -D "$1" -c 4 -m 4 "$2"; }
state() { up_state "$@"; }

# --- the keep-alive race --------------------------------------------------
# (group racy has fall=100: a backend that closes a fresh connection 5 ms
# after accepting it closes some before a loaded worker wrote the request,
# and such a connection counts as the server's failure; what is tested
# here is that no request is lost, not the passive checks)
load 1000 "$(h3_url racy/name)" > "$T/racy.load"
conns=$(/usr/bin/python3 -c '
import json, sys
print(len({json.loads(l)["conn"] for l in open(sys.argv[1])}))' "$T/c.rec")
load_ok "$T/racy.load" 1000 &&
    ok "keep-alive race: 1000 GETs, 0 errors (the backend closed idle connections: $conns connections)" ||
    fail "keep-alive race: $(tr '\n' ' ' < "$T/racy.load")"
[ "$conns" -gt 4 ] || fail "the backend did not close idle connections ($conns connections): the race was not exercised"

# --- one of two servers killed under load ------------------------------------
load_for 3 "$(h3_url two/name)" > "$T/two.load" &
LPID=$!
sleep 1
kill -9 "$BPID"
t0=$(date +%s%N)
wait_until 5 eval '[ "$(state two 127.0.0.1:'"$PB"')" = down ]' &&
    ok "the killed server is down within $(( ($(date +%s%N) - t0) / 1000000 )) ms (checks every 200 ms, fall=2)" ||
    fail "the killed server is not down: $(quicctl upstreams 2>&1 | tr '\n' ' ')"
wait "$LPID"
load_ok "$T/two.load" && ok "one of two servers killed under load: $(done_of "$T/two.load") GETs, 0 failed" ||
    fail "server killed under load: $(tr '\n' ' ' < "$T/two.load")"
start_b
wait_until 10 eval '[ "$(state two 127.0.0.1:'"$PB"')" = up ]' &&
    ok "it is up again after it returns" || fail "the returned server stays $(state two "127.0.0.1:$PB")"
# both serve again
for i in 1 2 3 4 5 6 7 8; do h3get fetch "$(h3_url two/name)" "$T/n$i" > /dev/null 2>&1; done
[ "$(cat "$T"/n[1-8] | sort -u | tr -d '\n')" = ab ] && ok "round robin uses both again" ||
    fail "round robin after the return: $(cat "$T"/n[1-8] | tr '\n' ' ')"

# --- the upstream daemon killed under load -------------------------------------
# (through the racy backend, which keeps closing connections: new ones are
# needed while the daemon is gone, and wait for its successor)
UPID=$(proc_field upstream - pid)
load_for 3 "$(h3_url racy/name)" > "$T/up.load" &
LPID=$!
sleep 1
kill -9 "$UPID"
wait "$LPID"
load_ok "$T/up.load" && ok "upstream daemon killed under load: $(done_of "$T/up.load") GETs, 0 errors" ||
    fail "upstream daemon killed: $(tr '\n' ' ' < "$T/up.load")"
newpid() { local p; p=$(proc_field upstream - pid); [ -n "$p" ] && [ "$p" != "$UPID" ]; }
wait_until 10 newpid || fail "the upstream daemon was not restarted"
# a new connection through the new daemon (the old ones are closed by the backend's restart)
h3get fetch "$(h3_url racy/name)" "$T/after" > "$T/after.out" 2>&1
[ "$(cat "$T/after")" = c ] && ok "new upstream connections through the restarted daemon" ||
    fail "after the daemon's restart: $(cat "$T/after.out")"

# --- all servers down: 503 at once -------------------------------------------
wait_until 5 eval '[ "$(state dead 127.0.0.1:'"$PD"')" = down ]' || fail "the dead group's server is not down"
t0=$(date +%s%N)
h3get req "$(h3_url dead/x)" "$T/dead" > "$T/dead.out" 2>&1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# (at once: well before the group's connect_timeout of 5 s would pass)
grep -q "status=503" "$T/dead.out" && [ "$ms" -lt 2500 ] && ok "no server up: 503 in $ms ms" ||
    fail "no server up: $(tail -n 1 "$T/dead.out") in $ms ms"

# --- connection refused: 502 ---------------------------------------------------
h3get req "$(h3_url refused/x)" "$T/ref" > "$T/ref.out" 2>&1
grep -q "status=502" "$T/ref.out" && ok "connection refused: 502" || fail "refused: $(tail -n 1 "$T/ref.out")"

# --- slow: 504 at read_timeout; garbage: 502 ------------------------------------------
t0=$(date +%s%N)
h3get req "$(h3_url slow/5000)" "$T/slow" > "$T/slow.out" 2>&1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q "status=504" "$T/slow.out" && [ "$ms" -ge 900 ] && [ "$ms" -lt 4500 ] &&
    ok "slow upstream: 504 after $ms ms (read_timeout=1s)" ||
    fail "slow upstream: $(tail -n 1 "$T/slow.out") after $ms ms"
h3get req "$(h3_url two/garbage)" "$T/garbage" > "$T/garbage.out" 2>&1
grep -q "status=502" "$T/garbage.out" && ok "garbage answer: 502" || fail "garbage: $(tail -n 1 "$T/garbage.out")"

# --- fail_5xx: 5xx answers count as passive failures --------------------------------
for i in 1 2; do h3get req "$(h3_url fivexx/status/500)" "$T/5xx$i" > "$T/5xx$i.out" 2>&1; done
grep -q "status=500" "$T/5xx1.out" && ok "a 500 from the upstream is passed to the client" ||
    fail "5xx: $(tail -n 1 "$T/5xx1.out")"
wait_until 3 eval '[ "$(state fivexx 127.0.0.1:'"$PA"')" = down ]' &&
    ok "fail_5xx=yes fall=2: two 500s mark the server down" ||
    fail "after two 500s the server is $(state fivexx "127.0.0.1:$PA")"
h3get req "$(h3_url fivexx/name)" "$T/5xxdown" > "$T/5xxdown.out" 2>&1
grep -q "status=503" "$T/5xxdown.out" && ok "while it is down: 503" || fail "while down: $(tail -n 1 "$T/5xxdown.out")"
wait_until 10 eval '[ "$(state fivexx 127.0.0.1:'"$PA"')" = up ]' &&
    ok "it is tried again after fail_timeout" || fail "still $(state fivexx "127.0.0.1:$PA") after fail_timeout"

# --- connect_timeout: 504 -------------------------------------------------------------
t0=$(date +%s%N)
h3get req "$(h3_url hole/x)" "$T/hole" > "$T/hole.req" 2>&1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q "status=504" "$T/hole.req" && [ "$ms" -ge 450 ] && [ "$ms" -lt 4500 ] &&
    ok "a connect that does not complete: 504 after $ms ms (connect_timeout=500ms)" ||
    fail "connect timeout: $(tail -n 1 "$T/hole.req") after $ms ms"

# --- the group's queue: max_conns=1, queue=1 ---------------------------------------------
for i in 1 2 3; do
    ( h3get req "$(h3_url q/slow/4000)" "$T/q$i" > "$T/q$i.out" 2>&1; date +%s%N > "$T/q$i.end" ) &
    eval "QP$i=\$!"
    sleep 0.3
done
wait "$QP1" "$QP2" "$QP3"
n200=$(cat "$T"/q[123].out | grep -c "status=200")
n503=$(cat "$T"/q[123].out | grep -c "status=503")
end503=$(for i in 1 2 3; do grep -q "status=503" "$T/q$i.out" && cat "$T/q$i.end"; done | head -n 1)
end200=$(for i in 1 2 3; do grep -q "status=200" "$T/q$i.out" && cat "$T/q$i.end"; done | sort -n | head -n 1)
# (whichever came last: a loaded machine may reorder them; at once: before the first answer ends)
[ "$n200" = 2 ] && [ "$n503" = 1 ] && [ "${end503:-0}" -lt "${end200:-0}" ] &&
    ok "max_conns=1, queue=1: one request served, one waits its turn, the third gets 503 at once" ||
    fail "queue: $n200 x 200, $n503 x 503 (503 ended ${end503:-?}, first 200 ${end200:-?}): $(tail -qn 1 "$T"/q[123].out | tr '\n' ' ')"

# the worker's proxy counters (quicctl status --json)
pr=$(proc_field worker 0 proxied_requests) pe=$(proc_field worker 0 proxy_errors) rt=$(proc_field worker 0 proxy_retries)
[ "${pr:-0}" -gt 9000 ] && [ "${pe:-0}" -ge 5 ] && [ "${rt:-0}" -ge 1 ] &&
    ok "quicctl status counts them: proxied_requests=$pr proxy_errors=$pe proxy_retries=$rt" ||
    fail "proxy counters: proxied_requests=$pr proxy_errors=$pe proxy_retries=$rt"
finish
