# SPDX-License-Identifier: MIT
# A schema version 1 database (process_events only) is migrated to the
# current version (8) in place at start, one step at a time: its rows are
# kept and the new tables are written (with the protocol column of v5, the
# upstream columns of v6, NULL for a request quicd serves itself, and a
# request_seconds row for each second of requests rows, v8).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1
python3 - "$T/db/stats.db" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.executescript("""
CREATE TABLE process_events (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,
  event TEXT NOT NULL, role TEXT NOT NULL, instance INTEGER, pid INTEGER,
  generation INTEGER, restarts INTEGER, exit_status INTEGER, signal INTEGER);
CREATE INDEX process_events_time ON process_events(time_ms);
INSERT INTO process_events (time_ms, event, role, instance, pid) VALUES (strftime('%s','now') * 1000, 'start', 'master', 0, 4242);
PRAGMA user_version = 1;
""")
con.commit()
PY
# As root the daemons run as nobody: the file must be theirs, as one
# written by an older stats daemon would be.
[ "$(id -u)" != 0 ] || chown nobody:nogroup "$T/db/stats.db"
h3_start || finish
migrated() { [ "$(sql "PRAGMA user_version")" = 9 ]; }
wait_until 5 migrated && ok "schema migrated to version 9" || fail "user_version $(sql "PRAGMA user_version")"
[ "$(sql "SELECT count(*) FROM process_events WHERE pid = 4242")" = 1 ] && ok "version 1 rows kept" || fail "old row lost"
h3get fetch "$(h3_url nothing-here)" - > /dev/null 2>&1
recorded() { [ "$(sql "SELECT count(*) FROM requests WHERE path = '/nothing-here' AND status = 404 AND protocol = 'h3' AND upstream IS NULL AND upstream_status IS NULL AND upstream_ms IS NULL" 2>/dev/null)" = 1 ]; }
wait_until 10 recorded && ok "requests written to the migrated database" || fail "no request row"
grep -q "schema version 2" "$T/quicd.log" && grep -q "schema version 3" "$T/quicd.log" &&
    grep -q "schema version 4" "$T/quicd.log" && grep -q "schema version 5" "$T/quicd.log" &&
    grep -q "schema version 6" "$T/quicd.log" && grep -q "schema version 7" "$T/quicd.log" &&
    grep -q "schema version 9" "$T/quicd.log" &&
    ok "every migration step logged" || fail "no log line"
[ "$(sql "SELECT count(*) FROM losses")" = 0 ] && ok "losses table created" || fail "no losses table"
[ "$(sql "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests'")" = 0 ] &&
    ok "versions 4 and 8: requests has no index" || fail "requests indexes"
seconds_ok() { [ "$(sql "SELECT count(*) FROM requests r WHERE (SELECT count(*) FROM request_seconds s WHERE s.second = r.time_ms / 1000 AND r.id BETWEEN s.first_id AND s.last_id) != 1")" = 0 ]; }
seconds_ok && ok "version 9: each requests row in one request_seconds range" || fail "request_seconds"
[ "$(sql "PRAGMA integrity_check")" = ok ] && ok "integrity_check ok" || fail "integrity_check"
finish
