# SPDX-License-Identifier: MIT
# kill -9 each kind of child in turn: it is back (in about 2 s at most on a
# quiet machine) and its restart count shows it; the others are untouched;
# the stats database records it.
. "$(dirname "$0")/lib.sh"
setup 2

start_suite && ok "suite up" || finish
for target in "listener -" "worker 0" "worker 1" "app -" "stats -"; do
    set -- $target
    role=$1 inst=$2
    old=$(proc_field "$role" "$inst" pid)
    others=$(quicctl status --json | python3 -c '
import json, sys
print(" ".join(str(p["pid"]) for p in json.load(sys.stdin)["processes"] if p["pid"] != int(sys.argv[1])))' "$old")
    t0=$(date +%s%N)
    kill -KILL "$old"
    back() {
        local pid state
        pid=$(proc_field "$role" "$inst" pid); state=$(proc_field "$role" "$inst" state)
        [ -n "$pid" ] && [ "$pid" != "$old" ] && [ "$state" = running ]
    }
    if wait_until 2 back; then
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        ok "$role[$inst] back in ${ms}ms (pid $old -> $(proc_field "$role" "$inst" pid))"
    else
        fail "$role[$inst] not back after $(( ($(date +%s%N) - t0) / 1000000 )) ms: $(quicctl status)"
    fi
    [ "$(proc_field "$role" "$inst" restarts)" = 1 ] && ok "$role[$inst] restarts = 1" || fail "$role[$inst] restarts = $(proc_field "$role" "$inst" restarts)"
    still=""
    for p in $others; do kill -0 "$p" 2>/dev/null || still="$still $p"; done
    [ -z "$still" ] && ok "other processes untouched" || fail "also gone:$still"
done
wait_all_running 3 && ok "all running at the end" || fail "$(quicctl status)"

# The master told stats about every exit and restart (stats itself was killed last,
# so the last events may still be arriving: wait for them).
has_events() { [ "$(sql "select count(*) from process_events where event='restart'")" -ge 5 ]; }
wait_until 5 has_events && ok "5 restarts recorded in the stats database" || fail "events: $(sql 'select event, role, instance from process_events')"
kills() { [ "$(sql "select count(*) from process_events where event='exit' and signal=9")" -ge 4 ]; }
wait_until 5 kills && ok "kills recorded with signal 9" || fail "exit events: $(sql "select * from process_events where event='exit'")"
[ "$(sql 'pragma integrity_check')" = ok ] && ok "database integrity ok" || fail "integrity"
finish
