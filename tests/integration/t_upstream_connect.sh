# SPDX-License-Identifier: MIT
# The upstream daemon's side of the worker <-> upstream protocol
# (UP_CONNECT, UP_CONNECTED, UP_STATE, UP_REPORT, UP_COUNTS in
# libshared/qd_ipc.h).
#
# First without the suite: upconn.py starts the upstream binary as the
# master does (control channel on 3, stats on 4, CONFIG) and plays the
# workers over CHANNEL socketpairs: a connected socket arrives by
# SCM_RIGHTS (TCP and a Unix socket, 50 at once), ECONNREFUSED, ETIMEDOUT
# against a listener whose accept queue is full, ENOENT, EHOSTUNREACH,
# malformed messages dropped, passive failures (connects and UP_REPORT)
# marking a server down and back (after fail_timeout, or through its
# checks), UP_STATE sequence numbers, a restarted worker's channel, the
# bound on connects in flight, a reload, a restarted daemon's numbers;
# two workers' UP_COUNTS summed and per worker in the status text (and
# quicctl upstreams on it, served by upconn.py as the master), dropped
# with a closed or replaced channel or a server that leaves the table,
# malformed ones dropped whole.
#
# Then through quicd (the workers do not ask yet, and a worker of this
# release closes the channel it has no use for: "not for me"): the daemon
# gets a channel per worker, a reload opens no new ones, a killed worker's
# replacement is connected again, and quicctl upstreams shows the passive
# counters.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
h3_setup 2
BACKEND="$QD_SRCDIR/tests/integration/httpbackend.py"
UPCONN="$QD_SRCDIR/tests/integration/upconn.py"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 is needed"
new_port PA
new_port PFULL
new_port PCLOSED
new_port PWIDE

backend() { bg ports_exec /usr/bin/python3 "$BACKEND" "$@"; }
backend --port "$PA" --name a > "$T/a.out" 2>&1
# the daemons' user must reach the socket and read the table on a reload
chmod o+x "$T"
(umask 0; backend --unix "$T/u.sock" --name u > "$T/u.out" 2>&1; echo "$BG_PID" > "$T/u.pid")
BG_PIDS="$BG_PIDS $(cat "$T/u.pid")"
listening() { grep -q listening "$T/a.out" && grep -q listening "$T/u.out"; }
wait_until 10 listening || die "backends did not start: $(cat "$T"/[au].out)"

# ---- the daemon alone, driven by upconn.py (bounded by timeout(1); it ends the daemons it starts)
mkdir -p "$T/direct" && chmod 755 "$T/direct"
(ports_exec timeout -k 5 "$(scaled 40)" /usr/bin/python3 "$UPCONN" \
    --daemon "$QD_BUILDDIR/daemons/upstream/upstream" --dir "$T/direct" --unix "$T/u.sock" \
    --backend "$PA" --full "$PFULL" --closed "$PCLOSED" --wide "$PWIDE" \
    --quicctl "$QUICCTL_BIN") > "$T/upconn.out" 2>&1
rc=$?
while IFS= read -r line; do
    case $line in
    "ok: "*) ok "${line#ok: }" ;;
    "FAIL: "*) fail "${line#FAIL: }" ;;
    *) log "$line" ;;
    esac
done < "$T/upconn.out"
[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "upconn.py ended with status $rc: $(tail -n 5 "$T/upconn.out")"
[ "$rc" = 0 ] || { echo "---- the daemon's log ----"; cat "$T/direct/upstream.log"; }

# ---- through quicd
cat > "$T/proxy" <<TBL
group app fall=2 fail_timeout=1s
server app 127.0.0.1:$PA
server app unix:$T/u.sock
route */ app
TBL
chmod 644 "$T/proxy"
echo "proxy_table = $T/proxy" >> "$CONF"
start_suite || finish

# channels N - how many "channel to worker[N] open" lines the log has
channels() { grep -c "quicd/upstream\[[0-9]*\]: channel to worker\[$1\] open" "$T/quicd.log"; }
both() { [ "$(channels 0)" -ge 1 ] && [ "$(channels 1)" -ge 1 ]; }
wait_until 10 both && ok "the upstream daemon has a channel to each worker" ||
    fail "channels: $(grep 'quicd/upstream' "$T/quicd.log")"

json=$(quicctl upstreams --json)
echo "$json" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)["servers"]
assert len(d) == 2, d
for s in d:
    assert s["passive_failures"] == 0 and s["passive_run"] == 0 and s["connects"] == 0, s
    assert s["down_by"] is None and s["state"] == "up", s
    w = s["workers"]
    assert isinstance(w, list) and all(set(x) == {"instance", "active", "idle", "requests", "fails"}
                                       for x in w), s
    for k in ("active", "idle", "requests", "fails"):
        assert s[k] == sum(x[k] for x in w), (k, s)
' && ok "quicctl upstreams --json: passive_failures, passive_run, connects, down_by, workers" ||
    fail "json: $json"
out=$(quicctl upstreams)
echo "$out" | head -n 1 | grep -q "^GROUP  *SERVER  *STATE  *DOWN_BY  *FOR_S  *CHECKS  *FAILS  *PFAILS  *CONNECTS  *ACTIVE  *IDLE  *REQUESTS  *REQ_FAILS  *LAST CHECK" &&
    echo "$out" | grep -q "^app  *127.0.0.1:$PA  *up  *-  .*(no checks)" &&
    ok "quicctl upstreams: the passive columns" || fail "table: $out"

# ---- a reload that adds a server: the same daemon, no new channels
UPID=$(proc_field upstream - pid)
opened=$(grep -c "quicd/upstream\[[0-9]*\]: channel to worker" "$T/quicd.log")
cat >> "$T/proxy" <<TBL
server app 127.0.0.1:$PCLOSED
TBL
quicctl reload > "$T/reload.out" 2>&1 || fail "reload: $(cat "$T/reload.out")"
three() { [ "$(quicctl upstreams --json | grep -o '"server"' | wc -l)" = 3 ]; }
wait_until 10 three && ok "a reload adds the server" || fail "$(quicctl upstreams)"
[ "$(proc_field upstream - pid)" = "$UPID" ] &&
    [ "$(grep -c "quicd/upstream\[[0-9]*\]: channel to worker" "$T/quicd.log")" = "$opened" ] &&
    ok "the same daemon after the reload, no channel opened again" ||
    fail "after the reload: $(grep 'quicd/upstream' "$T/quicd.log")"

# ---- a killed worker: its replacement gets a channel again
WPID=$(proc_field worker 0 pid)
before=$(channels 0)
kill -9 "$WPID"
again() { [ "$(channels 0)" -gt "$before" ] || grep -q "worker\[0\] has a new channel" "$T/quicd.log"; }
wait_until 10 again && ok "a killed worker's replacement is connected to the upstream daemon again" ||
    fail "no new channel: $(grep 'quicd/upstream' "$T/quicd.log")"
wait_until 10 all_running || fail "not all running: $(quicctl status)"
[ "$(proc_field upstream - restarts)" = 0 ] && ok "the upstream daemon was not restarted" ||
    fail "$(quicctl status)"
finish
