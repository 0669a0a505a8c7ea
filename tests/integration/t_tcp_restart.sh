# SPDX-License-Identifier: MIT
# HTTPS over TCP across worker restarts, reloads and a graceful stop.
# One worker, stopped (SIGSTOP) and then killed with -9: the connections
# made meanwhile wait in the accept queue of the listener's socket and are
# answered by the new worker. Two workers, each killed with -9 in turn
# during a loop of 50 new connections (HTTP/1.1 and HTTP/2, curl): every
# one succeeds. The TCP listen sockets are the same (inodes) and the
# listener's after the restarts. A live reload (alt_svc_max_age, log_level)
# keeps an open HTTP/1.1 keep-alive connection and an open HTTP/2
# connection: a second request on each succeeds on the same connection and
# the HTTP/1.1 one shows the new Alt-Svc max age. A graceful stop
# (drain_timeout 20 s) during slow HTTP/2 and HTTP/1.1 downloads (curl
# --limit-rate and tcpclient.py): all complete byte-identical, the HTTP/2
# client gets GOAWAY (NO_ERROR) before its download ends, the HTTP/1.1
# connection is closed after its response, and a request whose head is
# completed during the drain is answered with "alt-svc: clear" and
# "connection: close".
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
command -v ss >/dev/null 2>&1 || skip "ss (iproute2) is needed"
command -v curl >/dev/null 2>&1 && curl --version | grep -q HTTP2 ||
    skip "curl with HTTP/2 is needed"
[ -x "$H3_PYTHON" ] || skip "$H3_PYTHON is needed"
TCPCLIENT="$QD_SRCDIR/tests/integration/tcpclient.py"
h3_setup 1
D="$T/htdocs"
RATE=1000000                       # bytes/s of each slow download
head -c $((RATE * 6)) /dev/urandom > "$D/big.bin"
start_suite || finish

H='Host: localhost\r\n'
tc() { "$H3_PYTHON" "$TCPCLIENT" --port "$PORT" --cacert "$T/cert.pem" "$@"; }
# (a queued client waits for the stopped worker's restart, which a loaded
# machine may take a while to make)
CURL=(curl -sS --connect-timeout 30 --max-time 60 --cacert "$T/cert.pem"
      --resolve "localhost:$PORT:127.0.0.1")
# get VERSION OUT - GET /index.html over a new connection: "200 VERSION" and the same bytes
get() {
    local out
    out=$("${CURL[@]}" "--http$1" -o "$2" -w '%{http_code} %{http_version}' "$(h3_url index.html)" 2>&1)
    [ "$out" = "200 $1" ] && cmp -s "$D/index.html" "$2" && return 0
    echo "$out"
    return 1
}
# listen_inodes - inodes of the TCP sockets listening on PORT, sorted, one line
listen_inodes() { ss -Hltne "sport = :$PORT" | grep -o 'ino:[0-9]*' | cut -d: -f2 | sort -n | tr '\n' ' '; }
# queued - connections waiting in the accept queue of 127.0.0.1:PORT
queued() { ss -Hltn "sport = :$PORT" | awk -v a="127.0.0.1:$PORT" '$4 == a { n += $2 } END { print n + 0 }'; }
# held_by_listener WHEN - the listener holds every TCP listen socket
held_by_listener() {
    local lp ino missing=""
    lp=$(proc_field listener - pid)
    for ino in $(listen_inodes); do
        readlink /proc/"$lp"/fd/* 2>/dev/null | grep -qx "socket:\[$ino\]" || missing="$missing $ino"
    done
    [ -z "$missing" ] && ok "$1: the listener (pid $lp) holds every TCP listen socket" ||
        fail "$1: the listener does not hold$missing"
}
restarted() { [ "$(proc_field worker "$1" state)" = running ] && [ "$(proc_field worker "$1" pid)" != "$2" ]; }

# ---- one worker: connections wait in the accept queue while it is down
get 2 "$T/pre.2" >/dev/null && get 1.1 "$T/pre.1" >/dev/null && ok "HTTP/2 and HTTP/1.1 answer" ||
    fail "no answer over TCP before the test"
INODES=$(listen_inodes)
[ "$(echo "$INODES" | wc -w)" -eq 2 ] && ok "2 TCP listen sockets (127.0.0.1, ::1): $INODES" ||
    fail "TCP listen sockets: $INODES"
held_by_listener "at start"
w0=$(proc_field worker 0 pid)
kill -STOP "$w0"
K=4
# qget I VERSION - a GET over a new connection, its result in $T/qI.res
qget() {
    "${CURL[@]}" "--http$2" -o "$T/q$1.out" -w '%{http_code} %{http_version}' \
        "$(h3_url index.html)" > "$T/q$1.res" 2>&1
}
for i in $(seq $K); do
    v=2; [ $((i % 2)) = 0 ] && v=1.1
    bg qget "$i" "$v"
done
all_queued() { [ "$(queued)" -ge $K ]; }
wait_until 5 all_queued &&
    ok "$K connections wait in the accept queue of the stopped worker's socket ($(queued))" ||
    fail "accept queue: $(queued), want $K: $(ss -Hltn "sport = :$PORT")"
# answered - some queued client has ended
answered() { local i; for i in $(seq $K); do [ -s "$T/q$i.res" ] && return 0; done; return 1; }
if wait_quiet 0.5 answered; then
    fail "clients ended while the worker was stopped: $(cat "$T"/q*.res 2>/dev/null | tr '\n' ' ')"
else
    ok "no client was answered while the worker was stopped"
fi
kill -KILL "$w0"
wait_until 10 restarted 0 "$w0" && ok "worker 0 restarted (pid $w0 -> $(proc_field worker 0 pid))" ||
    fail "worker 0 not back: $(quicctl status)"
alldone() { local p; for p in $BG_PIDS; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
wait_until 20 alldone || fail "queued clients still running 20 s after the restart"
for i in $(seq $K); do
    v=2; [ $((i % 2)) = 0 ] && v=1.1
    res=$(cat "$T/q$i.res" 2>/dev/null)
    [ "$res" = "200 $v" ] && cmp -s "$D/index.html" "$T/q$i.out" &&
        ok "queued connection $i (HTTP/$v) answered by the new worker" ||
        fail "queued connection $i (HTTP/$v): $res"
done
BG_PIDS=""
[ "$(queued)" -eq 0 ] && ok "the accept queue is empty again" || fail "accept queue: $(queued)"
[ "$(listen_inodes)" = "$INODES" ] && ok "the same TCP listen sockets after the restart" ||
    fail "TCP listen sockets changed: $INODES -> $(listen_inodes)"
held_by_listener "after the restart"
out=$(quicctl stop 2>&1) || fail "quicctl stop: $out"
wait "$MASTER_PID"
MASTER_PID=""

# ---- two workers: every new connection succeeds while each is killed in turn
h3_conf 2 "drain_timeout = 20s" "file_cache_valid = 60s"
start_suite || finish
INODES=$(listen_inodes)
[ "$(echo "$INODES" | wc -w)" -eq 4 ] && ok "4 TCP listen sockets with 2 workers" || fail "TCP listen sockets: $INODES"
w0=$(proc_field worker 0 pid); w1=$(proc_field worker 1 pid)
good=0 bad=""
for i in $(seq 50); do
    [ "$i" = 10 ] && kill -KILL "$w0"
    [ "$i" = 30 ] && { wait_until 10 restarted 0 "$w0" || fail "worker 0 not back"; kill -KILL "$w1"; }
    v=2; [ $((i % 2)) = 0 ] && v=1.1
    if res=$(get $v "$T/loop.out"); then good=$((good + 1)); else bad="$bad [$i HTTP/$v: $res]"; fi
done
[ $good -eq 50 ] && ok "50 of 50 new connections succeeded while workers 0 and 1 were killed" ||
    fail "$good of 50 new connections succeeded:$bad"
wait_until 10 restarted 1 "$w1" && ok "both workers restarted" || fail "worker 1 not back: $(quicctl status)"
[ "$(proc_field worker 0 restarts)" = 1 ] && [ "$(proc_field worker 1 restarts)" = 1 ] &&
    ok "one restart each" || fail "restarts: $(proc_field worker 0 restarts), $(proc_field worker 1 restarts)"
[ "$(listen_inodes)" = "$INODES" ] && ok "the same 4 TCP listen sockets after both restarts" ||
    fail "TCP listen sockets changed: $INODES -> $(listen_inodes)"
held_by_listener "after both restarts"

# ---- a live reload keeps open HTTP/1.1 and HTTP/2 connections
bg tc --timeout 30 h1get /index.html "$T/r1a" --then /index.html "$T/r1b" --pause-file "$T/go.reload" > "$T/r1.log" 2>&1
bg tc --timeout 30 h2 get /index.html "$T/r2a" --then /index.html "$T/r2b" --pause-file "$T/go.reload" > "$T/r2.log" 2>&1
wait_until 10 grep -q "^resp 1: status=200" "$T/r1.log" && wait_until 10 grep -q "^resp 1: status=200" "$T/r2.log" ||
    fail "first requests: $(cat "$T/r1.log" "$T/r2.log" | tr '\n' ' ')"
PIDS=$(quicctl status --json | "$H3_PYTHON" -c 'import json,sys; print(" ".join(str(p["pid"]) for p in json.load(sys.stdin)["processes"]))')
h3_conf 2 "drain_timeout = 20s" "file_cache_valid = 60s" "log_level = debug" "alt_svc_max_age = 600s"
out=$(quicctl reload 2>&1) && echo "$out" | grep -q "^reloaded" && ok "quicctl reload: $out" || fail "reload: $out"
PIDS2=$(quicctl status --json | "$H3_PYTHON" -c 'import json,sys; print(" ".join(str(p["pid"]) for p in json.load(sys.stdin)["processes"]))')
[ "$PIDS" = "$PIDS2" ] && ok "the reload kept every process" || fail "pids changed: $PIDS -> $PIDS2"
# (the reload is answered once every daemon has applied the configuration)
touch "$T/go.reload"
wait_until 15 alldone || fail "reload clients still running"
BG_PIDS=""
grep -q "^resp 2: status=200 size=32 " "$T/r1.log" && cmp -s "$D/index.html" "$T/r1b" &&
    ! grep -q "error" "$T/r1.log" &&
    ok "HTTP/1.1: a request after the reload succeeds on the same connection" ||
    fail "HTTP/1.1 across the reload: $(tr '\n' ' ' < "$T/r1.log")"
grep -q '^header 1: alt-svc: h3=":'"$PORT"'"; ma=86400$' "$T/r1.log" &&
    grep -q '^header 2: alt-svc: h3=":'"$PORT"'"; ma=600$' "$T/r1.log" &&
    ok "the kept HTTP/1.1 connection answers with the reloaded alt_svc_max_age" ||
    fail "alt-svc across the reload: $(grep alt-svc "$T/r1.log" | tr '\n' ' ')"
grep -q "^resp 2: status=200 size=32 " "$T/r2.log" && cmp -s "$D/index.html" "$T/r2b" &&
    ! grep -qE "^goaway|^error|^closed=yes" "$T/r2.log" &&
    ok "HTTP/2: a request after the reload succeeds on the same connection" ||
    fail "HTTP/2 across the reload: $(tr '\n' ' ' < "$T/r2.log")"

# ---- graceful stop during slow downloads
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
# (after its response each waits up to 15 s for the server's close)
bg tc --timeout 40 h2 get /big.bin "$T/dl.h2" --rate $RATE --wait 15 > "$T/dl.h2.log" 2>&1
bg tc --timeout 40 h1get /big.bin "$T/dl.h1" --rate $RATE --close-wait 15 > "$T/dl.h1.log" 2>&1
bg "${CURL[@]}" --http2 --limit-rate $RATE -o "$T/dl.c2" -w '%{http_code} %{http_version}\n' "$(h3_url big.bin)" > "$T/dl.c2.log" 2>&1
bg "${CURL[@]}" --http1.1 --limit-rate $RATE -o "$T/dl.c1" -w '%{http_code} %{http_version}\n' "$(h3_url big.bin)" > "$T/dl.c1.log" 2>&1
DLS="h2 h1 c2 c1"
# A request whose head is begun now and completed during the drain. The app
# stops at once when quicd stops, so it asks for a file the worker answers
# itself (the fast path): the same connection's first request, answered by
# the app, grants it.
# It waits for both responses, then up to 15 s for the close.
bg tc --timeout 40 h1 "GET /index.html HTTP/1.1\\r\\n${H}\\r\\nGET /index.html HTTP/1.1\\r\\n${H}" \
    --pause-file "$T/go.drain" --more "\\r\\n" --responses 2 --wait 15 > "$T/late.log" 2>&1
flowing() { local d; for d in $DLS; do [ "$(size_of "$T/dl.$d")" -gt 500000 ] || return 1; done; }
wait_until 10 flowing && wait_until 5 grep -q "sent the first part" "$T/late.log" ||
    fail "downloads not flowing: $(for d in $DLS; do printf '%s=%s ' "$d" "$(size_of "$T/dl.$d")"; done)"
sizes="" short=0
for d in $DLS; do
    n=$(size_of "$T/dl.$d"); sizes="$sizes $d=$n"
    [ "$n" -lt $((RATE * 6)) ] && short=$((short + 1))
done
quicctl stop > "$T/stop.log" 2>&1 &
STOP_PID=$!
wait_until 5 grep -qE "stopping: [0-9]+ connections? to drain .*, [1-9][0-9]* TCP\)" "$T/quicd.log" || fail "no worker logged its drain"
[ $short -eq 4 ] && ok "quicctl stop while all 4 downloads are in flight:$sizes" ||
    fail "not every download was in flight at the stop: $sizes"
touch "$T/go.drain"
wait_until 30 alldone || fail "downloads still running 30 s after the stop"
BG_PIDS=""
full=$(size_of "$D/big.bin")
for d in $DLS; do
    cmp -s "$D/big.bin" "$T/dl.$d" && ok "download $d completed byte-identical during the drain" ||
        fail "download $d: $(size_of "$T/dl.$d") of $full bytes: $(tr '\n' ' ' < "$T/dl.$d.log")"
done
grep -qx "200 2" "$T/dl.c2.log" && grep -qx "200 1.1" "$T/dl.c1.log" ||
    fail "curl downloads: $(cat "$T/dl.c2.log" "$T/dl.c1.log" | tr '\n' ' ')"
gat=$(sed -n 's/^goaway=0x0 last=\([0-9]*\) at \([0-9.]*\) s$/\1 \2/p' "$T/dl.h2.log" | head -n 1)
rat=$(sed -n "s/^resp 1: status=200 size=$full at \([0-9.]*\) s$/\1/p" "$T/dl.h2.log")
if [ -n "$gat" ] && [ -n "$rat" ] && awk -v l="${gat% *}" -v g="${gat#* }" -v r="$rat" 'BEGIN { exit !(l >= 1 && g < r) }'; then
    ok "the HTTP/2 client got GOAWAY (NO_ERROR, last stream ${gat% *}) at ${gat#* } s, before its download ended at $rat s"
else
    fail "HTTP/2 GOAWAY: $(tr '\n' ' ' < "$T/dl.h2.log")"
fi
grep -q "^closed=yes" "$T/dl.h2.log" && ok "the HTTP/2 connection was closed after its stream" ||
    fail "HTTP/2 connection after the drain: $(grep closed "$T/dl.h2.log")"
grep -qx "after: closed" "$T/dl.h1.log" && ok "the HTTP/1.1 connection was closed after its response" ||
    fail "HTTP/1.1 connection after the drain: $(tr '\n' ' ' < "$T/dl.h1.log")"
# the second response's head: the lines after its status line
late2=$(awk '/^line: / { n++ } n == 2' "$T/late.log")
[ "$(grep -cx "status=200" "$T/late.log")" -eq 2 ] && grep -qx "responses=2" "$T/late.log" &&
    echo "$late2" | grep -qx "header: alt-svc: clear" &&
    echo "$late2" | grep -qx "header: connection: close" && grep -q "^closed=yes" "$T/late.log" &&
    ok "a response made during the drain has alt-svc: clear and connection: close" ||
    fail "response during the drain: $(tr '\n' ' ' < "$T/late.log")"
grep -qx 'header: alt-svc: h3=":'"$PORT"'"; ma=600' "$T/late.log" &&
    ok "the response before the stop had the h3 Alt-Svc" || fail "first response: $(tr '\n' ' ' < "$T/late.log")"
grep -q "alt-svc: clear" "$T/dl.h1.log" && fail "a response begun before the stop says alt-svc: clear"
wait_until 25 sh -c "! kill -0 $STOP_PID 2>/dev/null" && wait "$STOP_PID" &&
    ok "quicctl stop: $(cat "$T/stop.log")" || fail "quicctl stop: $(cat "$T/stop.log")"
wait_until 5 sh -c "! kill -0 $MASTER_PID 2>/dev/null" && ok "quicd exited" || fail "quicd still running"
left=$(pgrep -f "$T/libexec" | wc -l)
[ "$left" = 0 ] && ok "no daemon left" || fail "$left daemons left"
finish
