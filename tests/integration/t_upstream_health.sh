# SPDX-License-Identifier: MIT
# The upstream daemon (proxy_table): started with the suite when the table
# is set, it checks each server of a group with check= (GET over TCP or a
# Unix socket, Python backends started here) and quicctl upstreams shows
# the state: a backend killed goes down within fall checks ("connect:
# Connection refused"), one answering 503 goes down ("status 503"), both
# come back up after rise good checks, a group without checks stays up, a
# name that does not resolve is down ("not resolved"). The change is
# logged. A killed upstream daemon is restarted by the master; a reload
# keeps the state of the servers that stay, drops a removed group's, and
# one that clears proxy_table stops the daemon. The daemon's metrics
# (quicctl metrics) count its checks and connects by result and its
# servers by state.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1 "stats_interval = 1s"
BACKEND="$QD_SRCDIR/tests/integration/httpbackend.py"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 is needed"
new_port PA
new_port PB

backend() { bg ports_exec /usr/bin/python3 "$BACKEND" "$@"; }
backend --port "$PA" --name a > "$T/a.out" 2>&1; APID=$BG_PID
backend --port "$PB" --dual --name b --fail-file "$T/b.fail" > "$T/b.out" 2>&1
# the daemons' user must reach the socket: a directory it may search, a socket it may write
chmod o+x "$T"
(umask 0; backend --unix "$T/c.sock" --name c > "$T/c.out" 2>&1; echo "$BG_PID" > "$T/c.pid")
BG_PIDS="$BG_PIDS $(cat "$T/c.pid")"
listening() { grep -q listening "$T/a.out" && grep -q listening "$T/b.out" && grep -q listening "$T/c.out"; }
wait_until 10 listening || die "backends did not start: $(cat "$T"/[abc].out)"

cat > "$T/proxy" <<TBL
group app check=/healthz check_interval=200ms check_timeout=500ms rise=2 fall=2
server app 127.0.0.1:$PA
server app localhost:$PB weight=3
server app unix:$T/c.sock backup
group plain
server plain 127.0.0.1:1
group nowhere check=/healthz check_interval=200ms fall=1
server nowhere no-such-host.invalid:80
route */ app
TBL
echo "proxy_table = $T/proxy" >> "$CONF"
h3_start || finish

[ "$(count_role upstream)" = 1 ] && ok "quicctl status lists the upstream daemon" ||
    fail "no upstream process: $(quicctl status)"
# state SERVER - its state in quicctl upstreams --json
state() {
    quicctl upstreams --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin)["servers"]:
    if s["server"] == sys.argv[1]:
        print("%s %d %s" % (s["state"], s["checks"], s["last"]))
' "$1"
}
# since SERVER - since_ms of its state
since() {
    quicctl upstreams --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
print([s["since_ms"] for s in json.load(sys.stdin)["servers"] if s["server"] == sys.argv[1]][0])
' "$1"
}
up_checked() { local s; s=$(state "$1"); [ "${s%% *}" = up ] && [ "$(echo "$s" | cut -d' ' -f2)" -ge 2 ]; }
is_state() { [ "$(state "$1" | cut -d' ' -f1)" = "$2" ]; }
A="127.0.0.1:$PA" B="localhost:$PB" C="unix:$T/c.sock"
wait_until 10 up_checked "$A" && wait_until 10 up_checked "$B" && wait_until 10 up_checked "$C" &&
    ok "three servers (TCP, by name, Unix socket) up after their checks" ||
    fail "not all up: $(quicctl upstreams 2>&1)"
out=$(quicctl upstreams)
echo "$out" > "$T/table.out"
echo "$out" | head -n 1 | grep -q "^GROUP  *SERVER  *STATE" && ok "quicctl upstreams prints a table" ||
    fail "table: $out"
echo "$out" | grep -q "^plain  *127.0.0.1:1  *up .*(no checks)" && ok "a group without checks stays up" ||
    fail "plain: $out"
echo "$out" | grep -q "unix:$T/c.sock .*status 200 \[backup\]" && ok "the backup server is marked" ||
    fail "backup: $out"
json=$(quicctl upstreams --json)
echo "$json" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)["servers"]
s = [x for x in d if x["server"].startswith("localhost:")][0]
assert s["group"] == "app" and s["weight"] == 3 and s["backup"] is False and s["check"] == "/healthz"
assert s["address"].startswith("127.0.0.1:") or s["address"].startswith("[::1]:"), s
p = [x for x in d if x["group"] == "plain"][0]
assert p["check"] is None and p["last"] is None and p["checks"] == 0
' && ok "quicctl upstreams --json: fields, the name resolved" || fail "json: $json"

unresolved() { is_state "no-such-host.invalid:80" down && state "no-such-host.invalid:80" | grep -q "not resolved"; }
wait_until 10 unresolved && ok "a name that does not resolve: down, \"$(state no-such-host.invalid:80 | cut -d' ' -f3-)\"" ||
    fail "unresolved: $(state no-such-host.invalid:80)"

# ---- the daemon's metrics: a request through the proxy is a connect that worked
# metric SERIES - its value in quicctl metrics now (empty when absent)
metric() { quicctl metrics 2>/dev/null | awk -v s="$1" '$1 == s { print $2; exit }'; }
# metric_at_least SERIES N - it reached N (the daemon reports every stats_interval)
metric_at_least() { local v; v=$(metric "$1"); [ -n "$v" ] && [ "${v%.*}" -ge "$2" ]; }
FAILED_CHECKS='quicd_upstream_health_checks_total{result="failed"}'
h3get fetch "$(h3_url "")" - > /dev/null || fail "a request through the proxy"
wait_until 5 metric_at_least 'quicd_upstream_connects_total{result="ok"}' 1 &&
    wait_until 5 metric_at_least 'quicd_upstream_health_checks_total{result="ok"}' 6 &&
    ok "metrics: connects ok $(metric 'quicd_upstream_connects_total{result="ok"}'), checks ok $(metric 'quicd_upstream_health_checks_total{result="ok"}')" ||
    fail "metrics: $(quicctl metrics | grep '^quicd_upstream')"
servers_are() { [ "$(metric 'quicd_upstream_servers{state="up"}')" = "$1" ] &&
    [ "$(metric 'quicd_upstream_servers{state="down"}')" = "$2" ]; }
wait_until 5 servers_are 4 1 && ok "metrics: servers 4 up, 1 down (the name that does not resolve)" ||
    fail "servers: $(quicctl metrics | grep '^quicd_upstream_servers')"
failed0=$(metric "$FAILED_CHECKS") changes0=$(metric quicd_upstream_state_changes_total)

# ---- a backend killed: down within fall checks; B and C stay up
kill "$APID"
t0=$(date +%s%N)
wait_until 5 is_state "$A" down && ok "the killed backend is down after $(( ($(date +%s%N) - t0) / 1000000 )) ms" ||
    fail "A not down: $(quicctl upstreams)"
state "$A" | grep -q "connect: Connection refused" && ok "cause: connection refused" || fail "A: $(state "$A")"
is_state "$B" up && is_state "$C" up && ok "the others stay up" || fail "$(quicctl upstreams)"
wait_until 5 grep -q "upstream app server $A is down: connect: Connection refused (2 failed checks in a row)" \
    "$T/quicd.log" && ok "the change is logged with its cause" || fail "no log line"
wait_until 5 metric_at_least "$FAILED_CHECKS" $((failed0 + 2)) && wait_until 5 servers_are 3 2 &&
    metric_at_least quicd_upstream_state_changes_total $((changes0 + 1)) &&
    ok "metrics: failed checks $failed0 -> $(metric "$FAILED_CHECKS"), servers 3 up and 2 down, a state change" ||
    fail "metrics after the kill: $(quicctl metrics | grep '^quicd_upstream')"

# ---- a backend answering 503: down; healthy again: up
touch "$T/b.fail"
wait_until 5 is_state "$B" down && state "$B" | grep -q "status 503" && ok "a backend answering 503 is down" ||
    fail "B: $(state "$B")"
rm -f "$T/b.fail"
wait_until 5 is_state "$B" up && ok "and up again after rise good checks" || fail "B: $(state "$B")"
backend --port "$PA" --name a > "$T/a2.out" 2>&1
wait_until 10 is_state "$A" up && ok "the restarted backend is up again" || fail "A: $(state "$A")"

# ---- the daemon killed: the master restarts it
UPID=$(proc_field upstream - pid)
kill -9 "$UPID"
restarted() { [ "$(proc_field upstream - restarts)" = 1 ] && [ "$(proc_field upstream - pid)" != "$UPID" ] &&
    quicctl upstreams > /dev/null 2>&1; }
wait_until 10 restarted && ok "a killed upstream daemon is restarted and reports again" ||
    fail "$(quicctl status)"

# ---- reloads: the servers that stay keep their state and counters
has_checks() { [ "$(state "$B" | cut -d' ' -f2)" -ge 3 ]; }
wait_until 5 has_checks || fail "B made no checks after the restart: $(state "$B")"
checks_b=$(state "$B" | cut -d' ' -f2) since_b=$(since "$B")
sed -i '/^group plain/d; /^server plain/d' "$T/proxy"
quicctl reload > "$T/reload1.out" 2>&1 || fail "reload: $(cat "$T/reload1.out")"
gone() { ! quicctl upstreams | grep -q "^plain "; }
wait_until 5 gone && ok "a reload that drops a group drops its servers" || fail "$(quicctl upstreams)"
[ "$(state "$B" | cut -d' ' -f2)" -ge "$checks_b" ] && is_state "$B" up && [ "$(since "$B")" = "$since_b" ] &&
    ok "a server that stays keeps its state and counters ($checks_b checks before, $(state "$B" | cut -d' ' -f2) after)" ||
    fail "B after the reload: $(state "$B"), $checks_b checks before"
sed -i '/^proxy_table/d' "$CONF"
quicctl reload > "$T/reload2.out" 2>&1 || fail "reload: $(cat "$T/reload2.out")"
no_daemon() { [ "$(count_role upstream)" = 0 ]; }
wait_until 10 no_daemon && ok "a reload that clears proxy_table stops the upstream daemon" ||
    fail "$(quicctl status)"
out=$(quicctl upstreams 2>&1); rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "no proxy_table" && ok "quicctl upstreams then says why, exit 1" ||
    fail "rc=$rc $out"
finish
