# SPDX-License-Identifier: MIT
# Records dropped because the stats channel was full reach the database.
# With stats_buffer = 64KB, stats is stopped (SIGSTOP) while 2,000
# requests fill the channel (one socket buffer shared by every sender,
# charged for what stats has not read), then a worker is killed: the
# master's exit and restart events are dropped. After SIGCONT the master's
# count arrives as a losses row (role master, cause channel), the worker's
# in samples.drops, and quicctl report adds them up.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1 "stats_interval = 1s" "stats_buffer = 64KB"
h3_start || finish

stats_pid=$(proc_field stats - pid)
kill -STOP "$stats_pid" && log "stats (pid $stats_pid) stopped"
echo fill > "$T/htdocs/fill.txt"
for i in 1 2; do
    # Load only: how many connections curl used does not matter here.
    h3get --timeout 120 multi 1000 "$(h3_url fill.txt)" > "$T/fill-$i.log" 2>&1
    grep -q '^multi: 1000/1000 ok' "$T/fill-$i.log" || fail "$(cat "$T/fill-$i.log")"
done
log "2 x $(head -n1 "$T/fill-1.log")"
worker_pid=$(proc_field worker 0 pid)
kill -KILL "$worker_pid" && log "killed worker[0] (pid $worker_pid)"
back() { p=$(proc_field worker 0 pid); [ -n "$p" ] && [ "$p" != "$worker_pid" ] && all_running; }
wait_until 10 back && ok "worker[0] restarted" || fail "worker[0] not back"
# The new worker's records meet the full channel too: 200 requests fill
# several batches, each sent (and dropped, counted) as it fills, before
# the client has its last answer; not left to a timer, which a busy
# machine may run late. The count travels in its samples.
h3get --timeout 60 multi 200 "$(h3_url fill.txt)" > "$T/after-kill.log" 2>&1
log "after the kill: $(head -n1 "$T/after-kill.log")"
kill -CONT "$stats_pid" && log "stats continued"

master_lost() { [ "$(sql "SELECT total(records) FROM losses WHERE role = 'master' AND cause = 'channel'" 2>/dev/null | cut -d. -f1)" -ge 2 ]; }
wait_until 10 master_lost &&
    ok "the master's dropped records reached the database: $(sql "SELECT total(records) FROM losses WHERE role = 'master'" | cut -d. -f1) (exit, restart)" ||
    fail "losses: $(sql "SELECT * FROM losses")"
grep -q "stats channel was full: [0-9]* master records dropped" "$T/quicd.log" &&
    ok "$(grep -m1 "stats channel was full" "$T/quicd.log" | cut -c 26-)" || fail "no log line"
worker_lost() { [ "$(sql "SELECT total(drops) FROM samples" 2>/dev/null | cut -d. -f1)" -gt 0 ]; }
wait_until 10 worker_lost && ok "the worker's dropped records reached the database: $(sql "SELECT total(drops) FROM samples" | cut -d. -f1) (samples.drops)" ||
    fail "no drops in samples"
[ "$(sql "SELECT count(*) FROM process_events WHERE event = 'restart' AND role = 'worker'")" = 0 ] &&
    ok "the worker's restart event itself was one of the dropped records" ||
    fail "the restart event was not dropped: the channel was not full"
# The report and the tables read at one moment: a sample that arrives in
# between moves the tables; then read both again (at most 5 times).
tables() { sql "SELECT (SELECT total(drops) FROM samples) + (SELECT total(records) FROM losses)" | cut -d. -f1; }
for _ in 1 2 3 4 5; do
    want=$(tables)
    dropped=$(quicctl report --since 1h --json | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["process"]["dropped_records"]))')
    [ "$(tables)" = "$want" ] && break
done
[ "$dropped" = "$want" ] && ok "quicctl report: dropped_records $dropped" || fail "report says $dropped, the tables $want"
h3get fetch "$(h3_url "at-the-end")" - > /dev/null 2>&1
recorded() { [ "$(sql "SELECT count(*) FROM requests WHERE path = '/at-the-end'" 2>/dev/null)" = 1 ]; }
wait_until 10 recorded && ok "records flow again" || fail "no record at the end"
finish
