# SPDX-License-Identifier: MIT
# A daemon that keeps failing at start is restarted with growing delays,
# shown as throttled, the rest of the suite keeps running, and it comes
# back once its problem is fixed.
. "$(dirname "$0")/lib.sh"
setup 1

# A stats program that exits at once. (An unopenable database no longer
# makes stats exit: it logs once and retries, see t_h5_unwritable.sh.)
ln -sf /bin/false "$T/libexec/stats"
# Started by hand: start_suite waits for every daemon to run, which stats
# never does here (ports_exec: quicd must not hold the port reservations).
ports_exec "$QUICD" -f -c "$CONF" >> "$T/quicd.log" 2>&1 &
MASTER_PID=$!
throttled() { [ "$(proc_field stats - state)" = throttled ]; }
wait_until 15 throttled && ok "stats throttled after repeated failures" || fail "$(quicctl status)"
r=$(proc_field stats - restarts)
[ "$r" -ge 4 ] && ok "restart count grows ($r)" || fail "restarts=$r"
# (polled: between two delays stats is briefly starting again)
shows_delay() { quicctl status | grep -q "^stats .*throttled([0-9]*s)"; }
wait_until 5 shows_delay && ok "status shows the delay before the next start" || fail "$(quicctl status)"
wait_until 5 grep -q "throttling, next start in" "$T/quicd.log" && ok "throttling is logged" || fail "no log line"
grep -q "stats (pid [0-9]*) exited with status 1" "$T/quicd.log" && ok "the cause is logged" || fail "no cause in log"
for role in listener worker app; do
    [ "$(proc_field $role $([ $role = worker ] && echo 0 || echo -) state)" = running ] && ok "$role keeps running" || fail "$role not running"
done
# The delays grow: the log's restart delays must not all be equal.
delays=$(grep -o "next start in [0-9.]*s\|restarting in [0-9.]*s" "$T/quicd.log" | grep -o "[0-9.]*s$" | tr '\n' ' ')
log "delays: $delays"
[ "$(echo "$delays" | tr ' ' '\n' | sort -u | grep -c .)" -ge 3 ] && ok "back-off delays grow" || fail "delays: $delays"

# Fix it: stats comes back on its next scheduled start.
ln -sf "$QD_BUILDDIR/daemons/stats/stats" "$T/libexec/stats"
recovered() { [ "$(proc_field stats - state)" = running ]; }
wait_until 20 recovered && ok "stats recovers once the problem is fixed" || fail "$(quicctl status)"
finish
