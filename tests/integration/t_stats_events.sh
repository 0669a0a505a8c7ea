# SPDX-License-Identifier: MIT
# Process events survive a stats restart: kill -9 a worker and, a moment
# later (or at the same instant), kill -9 stats — while stats may have read
# the worker's exit and restart events and not yet written them. After
# stats is back, each round's exit (signal 9, the worker's pid) and restart
# are in process_events exactly once: none lost, none written twice (the
# master sends its recent events again to a new stats daemon, which writes
# each event once).
. "$(dirname "$0")/lib.sh"
setup 2

start_suite && ok "suite up" || finish
ROUNDS=4
for round in $(seq 1 $ROUNDS); do
    inst=$((round % 2))
    wpid=$(proc_field worker "$inst" pid)
    spid=$(proc_field stats - pid)
    case $round in
    1 | 3) kill -KILL "$wpid" "$spid" ;;          # at the same instant
    *) kill -KILL "$wpid"; sleep 0.02; kill -KILL "$spid" ;; # stats has likely read the exit
    esac
    back() {
        [ "$(proc_field worker "$inst" state)" = running ] && [ "$(proc_field worker "$inst" pid)" != "$wpid" ] &&
            [ "$(proc_field stats - state)" = running ] && [ "$(proc_field stats - pid)" != "$spid" ]
    }
    wait_until 5 back || { fail "round $round: not back: $(quicctl status)"; continue; }
    exits() { sql "select count(*) from process_events where event = 'exit' and role = 'worker' and pid = $wpid and signal = 9"; }
    one_exit() { [ "$(exits)" -ge 1 ]; }
    if wait_until 5 one_exit; then
        n=$(exits)
        [ "$n" = 1 ] && ok "round $round: worker[$inst] (pid $wpid) exit recorded once" ||
            fail "round $round: worker exit recorded $n times"
    else
        fail "round $round: worker[$inst] (pid $wpid) exit lost: $(sql "select event, role, instance, pid from process_events order by time_ms")"
    fi
    # (the stats exit may come in a later batch than the worker's)
    stats_exits() { sql "select count(*) from process_events where event = 'exit' and role = 'stats' and pid = $spid"; }
    stats_exit() { [ "$(stats_exits)" -ge 1 ]; }
    wait_until 5 stats_exit
    n=$(stats_exits)
    [ "$n" = 1 ] && ok "round $round: stats (pid $spid) exit recorded once" || fail "round $round: stats exit recorded $n times"
done
restarts() { [ "$(sql "select count(*) from process_events where event = 'restart' and role = 'worker'")" -ge $ROUNDS ]; }
wait_until 5 restarts && ok "every worker restart recorded" ||
    fail "restarts: $(sql "select event, role, instance, pid from process_events where event = 'restart'")"
dups=$(sql "select count(*) from (select time_ms, event, role, instance, pid from process_events group by 1, 2, 3, 4, 5 having count(*) > 1)")
[ "$dups" = 0 ] && ok "no event written twice" || fail "$dups events written twice"
[ "$(sql 'pragma integrity_check')" = ok ] && ok "database integrity ok" || fail "integrity"
finish
