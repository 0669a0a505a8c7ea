# SPDX-License-Identifier: MIT
# An unusable stats database (a directory where the file should be) gives
# one clear log line; stats keeps running, quicd keeps serving HTTP/3, and
# once the problem is fixed the records flow into the database again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1 "stats_interval = 1s"
mkdir -p "$T/db/stats.db"
h3_start || finish

# (stats' line reaches quicd.log through the master, perhaps after h3_start)
unavailable() { [ "$(grep -c "stats database .* unavailable" "$T/quicd.log")" -ge "$1" ]; }
wait_until 5 unavailable 1
n=$(grep -c "stats database .* unavailable" "$T/quicd.log")
[ "$n" = 1 ] && ok "one log line: $(grep -m1 "stats database .* unavailable" "$T/quicd.log" | cut -c 26-)" ||
    fail "$n 'unavailable' lines"
h3get fetch "$(h3_url "")" - "$(h3_url missing)" - > "$T/fetch.log" 2>&1 &&
    grep -q "status=404" "$T/fetch.log" && ok "quicd keeps serving" || fail "fetch: $(cat "$T/fetch.log")"
[ "$(proc_field stats - state)" = running ] && [ "$(proc_field stats - restarts)" = 0 ] &&
    ok "stats keeps running" || fail "$(quicctl status)"
# the records of those requests fail too, for 2 s: no second line
wait_quiet 2 unavailable 2 && fail "$(grep -c "stats database .* unavailable" "$T/quicd.log") 'unavailable' lines" ||
    ok "still one line after retries"

# Fix it: the next retry (every 10 s) opens the database.
rmdir "$T/db/stats.db"
opened() { grep -q "stats database .* open (" "$T/quicd.log"; }
wait_until 15 opened && ok "database opened after the fix" || fail "not reopened"
h3get fetch "$(h3_url missing-after)" - > "$T/fetch2.log" 2>&1
recorded() { [ "$(sql "SELECT count(*) FROM requests WHERE path = '/missing-after'" 2>/dev/null)" = 1 ]; }
wait_until 10 recorded && ok "records flow again" || fail "no record after the fix"
logged=$(grep -m1 "stats database .* open (" "$T/quicd.log" | sed -nE 's/.*open \(([0-9]+) records were dropped\).*/\1/p')
lost_row() { [ "$(sql "SELECT total(records) FROM losses WHERE role = 'stats' AND cause = 'database'" | cut -d. -f1)" -gt 0 ]; }
wait_until 5 lost_row
lost=$(sql "SELECT total(records) FROM losses WHERE role = 'stats' AND cause = 'database'" | cut -d. -f1)
[ "${lost:-0}" -gt 0 ] && [ "$lost" = "$logged" ] &&
    ok "the records dropped meanwhile are a row of losses: $lost" ||
    fail "losses ${lost:-?}, log ${logged:-?}"
finish
