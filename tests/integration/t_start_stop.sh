# SPDX-License-Identifier: MIT
# Start the suite, status lists every process, a second instance is
# refused, stop leaves no process and no socket; quicd -v puts every
# daemon at debug level; a master that dies leaves no orphans.
. "$(dirname "$0")/lib.sh"
setup 2

start_suite && ok "suite up" || finish
status=$(quicctl status) && ok "quicctl status exits 0" || fail "status failed"
log "$status"
for role in master listener app stats; do
    [ "$(count_role $role)" -eq 1 ] && ok "status lists one $role" || fail "no $role in status"
done
[ "$(count_role worker)" -eq 2 ] && ok "status lists 2 workers" || fail "workers: $(count_role worker)"
[ "$(proc_field worker 1 connections)" = 0 ] && ok "workers report a connection count" || fail "connections missing"
[ "$(proc_field master - pid)" = "$MASTER_PID" ] && ok "master pid in status" || fail "master pid"
echo "$status" | head -1 | grep -q "ROLE.*INSTANCE.*PID.*STATE.*UPTIME.*RESTARTS.*CONNECTIONS" && ok "status table header" || fail "header"

json=$(quicctl status --json)
echo "$json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for p in d["processes"]:
    for k in ("role", "pid", "state", "uptime_s", "restarts"):
        assert k in p, (k, p)
    assert p["role"] != "worker" or "connections" in p
' && ok "status --json has the contract fields" || fail "json shape: $json"

# Children run as separate programs with the contract's names.
for role in listener worker app stats; do
    pid=$(proc_field $role $([ $role = worker ] && echo 0 || echo -) pid)
    tr '\0' ' ' < /proc/$pid/cmdline | grep -q "libexec/$role " && ok "$role is its own program" || fail "$role cmdline"
done

out=$("$QUICD" -f -c "$CONF" 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "already running (pid $MASTER_PID)" && ok "second instance refused" || fail "second instance: rc=$rc $out"
# Another instance with its own runtime directory must not share the port.
sed "s#^runtime_directory = .*#runtime_directory = $T/run2#" "$CONF" > "$T/other.conf"
# (not start_suite: the port IS taken here)
out=$(timeout 60 "$QUICD" -f -c "$T/other.conf" 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "127.0.0.1:$PORT: address already in use" &&
    ok "an instance with another runtime directory refuses the busy port" ||
    fail "second instance on the same port: rc=$rc $out"
[ -S "$T/run/control.sock" ] && ok "control socket exists" || fail "no control socket"
[ "$(stat -c %a "$T/run/control.sock")" = 600 ] && ok "control socket is 0600" || fail "mode $(stat -c %a "$T/run/control.sock")"
[ "$(cat "$T/run/quicd.pid")" = "$MASTER_PID" ] && ok "pid file" || fail "pid file"

pids="$MASTER_PID $(descendants $MASTER_PID)"
out=$(quicctl stop) && ok "quicctl stop exits 0" || fail "stop: $out"
echo "$out" | grep -q "quicd stopped" && ok "stop says stopped" || fail "stop output: $out"
wait "$MASTER_PID"; rc=$?
[ "$rc" -eq 0 ] && ok "master exit status 0" || fail "master exit $rc"
left=""
for p in $pids; do running "$p" && left="$left $p"; done
[ -z "$left" ] && ok "no process left behind" || fail "left:$left"
[ ! -e "$T/run/control.sock" ] && ok "control socket removed" || fail "socket left"
[ ! -e "$T/run/quicd.pid" ] && ok "pid file removed" || fail "pid file left"
out=$(quicctl status 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "not running" && ok "status when stopped: not running, exit 1" || fail "status after stop: $rc $out"
MASTER_PID=""

# SIGTERM also stops gracefully.
start_suite && ok "suite up again" || finish
kill -TERM "$MASTER_PID"
wait_until 10 sh -c "! kill -0 $MASTER_PID" && ok "SIGTERM stops the master" || fail "master still up after SIGTERM"
MASTER_PID=""

# quicd -v: every daemon logs at debug level whatever log_level says, also
# after a reload (the app logs "debug: access log ..." on each configuration).
# (start_suite runs WRAPPER QUICD -f -c CONF: this wrapper adds -v)
printf '#!/bin/sh\nq=$1; shift\nexec "$q" -v "$@"\n' > "$T/with-v"
chmod +x "$T/with-v"
from=$(suite_log_lines)
start_suite "$T/with-v" && ok "suite up with -v" || finish
# app_debug N - this run's app logged N debug lines of its access log
app_debug() { [ "$(tail -n +$((from + 1)) "$T/quicd.log" | grep -c 'quicd/app\[[0-9]*\]: debug: access log')" -ge "$1" ]; }
wait_until 5 app_debug 1 && ok "with -v the app logs at debug level" || fail "no debug line from the app"
quicctl reload > /dev/null || fail "reload with -v"
wait_until 5 app_debug 2 && ok "and still after a reload" || fail "no debug line from the app after the reload"
kill -TERM "$MASTER_PID"
wait_until 10 sh -c "! kill -0 $MASTER_PID" || fail "master still up after SIGTERM"
MASTER_PID=""

# No orphans: kill -9 the master, every child follows (in about 2 s on a
# quiet machine: each stops as for SIGTERM).
start_suite && ok "suite up a third time" || finish
kids=$(descendants "$MASTER_PID")
kill -KILL "$MASTER_PID"; wait "$MASTER_PID" 2>/dev/null
MASTER_PID=""
gone() { for p in $kids; do running "$p" && return 1; done; return 0; }
left() { for p in $kids; do running "$p" && ps -o pid=,stat=,comm= -p "$p"; done; }
wait_until 2 gone && ok "children exit when the master dies" || fail "orphans: $(left | tr '\n' ' ')"
finish
