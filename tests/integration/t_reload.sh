# SPDX-License-Identifier: MIT
# Reload keeps the suite up: a live key is pushed to the running daemons
# (same pids); an invalid file changes nothing and says file:line; a change
# of workers replaces the daemons and ends with the new count running.
. "$(dirname "$0")/lib.sh"
setup 2

start_suite && ok "suite up" || finish
pids_before=$(quicctl status --json | python3 -c '
import json, sys; print(" ".join(str(p["pid"]) for p in json.load(sys.stdin)["processes"]))')

write_conf 2 "log_level = debug" "idle_timeout = 45s"
out=$(quicctl reload) && ok "quicctl reload exits 0" || fail "reload: $out"
echo "$out" | grep -q "^reloaded" && ok "reload says reloaded" || fail "reload output: $out"
pids_after=$(quicctl status --json | python3 -c '
import json, sys; print(" ".join(str(p["pid"]) for p in json.load(sys.stdin)["processes"]))')
[ "$pids_before" = "$pids_after" ] && ok "live reload keeps every process" || fail "pids changed: $pids_before -> $pids_after"
[ "$(proc_field master - restarts)" = 1 ] && ok "master counts the reload" || fail "reload count"

# An invalid file: refused with file:line, the suite keeps running unchanged.
cp "$CONF" "$T/good.conf"
echo "max_connections = lots" >> "$CONF"
line=$(wc -l < "$CONF")
out=$(quicctl reload 2>&1); rc=$?
[ "$rc" -eq 1 ] && ok "reload of a bad file exits 1" || fail "rc=$rc"
echo "$out" | grep -qF "$CONF:$line: max_connections: invalid value" && ok "reload error names file:line" || fail "output: $out"
echo "$out" | grep -q "keeping the current configuration" && ok "reload error says it keeps the old configuration" || fail "output: $out"
all_running && ok "suite still running after a bad reload" || fail "$(quicctl status)"
pids_now=$(quicctl status --json | python3 -c '
import json, sys; print(" ".join(str(p["pid"]) for p in json.load(sys.stdin)["processes"]))')
[ "$pids_now" = "$pids_before" ] && ok "bad reload touched no process" || fail "pids changed"

# SIGHUP with the bad file: still running, and the log says why.
kill -HUP "$MASTER_PID"
wait_until 3 grep -q "reload failed; keeping the current configuration" "$T/quicd.log" && ok "SIGHUP with a bad file is logged" || fail "no log line"
all_running && ok "suite still running after SIGHUP" || fail "$(quicctl status)"

# workers 2 -> 3: the daemons are replaced and three workers end up running.
cp "$T/good.conf" "$CONF"
write_conf 3 "log_level = debug"
out=$(quicctl reload) && ok "reload to 3 workers" || fail "reload: $out"
echo "$out" | grep -q "workers changed" && ok "reload says which keys forced a replacement" || fail "output: $out"
three() { [ "$(count_role worker)" -eq 3 ] && all_running; }
wait_until 10 three && ok "3 workers running after reload" || fail "$(quicctl status)"
[ "$(proc_field master - pid)" = "$MASTER_PID" ] && ok "master itself kept running" || fail "master changed"

# And back to 1 via SIGHUP.
write_conf 1
kill -HUP "$MASTER_PID"
one() { [ "$(count_role worker)" -eq 1 ] && all_running; }
wait_until 10 one && ok "1 worker after SIGHUP" || fail "$(quicctl status)"
# (stats records them as they arrive; the last reload restarted it)
reloads() { [ "$(sql "select count(*) from process_events where event='reload'")" -ge 3 ]; }
wait_until 5 reloads && ok "reloads recorded in stats" || fail "reload events: $(sql "select event, time_ms from process_events")"
finish
