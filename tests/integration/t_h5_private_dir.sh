# SPDX-License-Identifier: MIT
# The stats database below a directory the daemons' user cannot enter (a
# checkout under /root, mode 0700): started as root, stats chroots into the
# database's own directory before dropping privileges, so it still opens
# the database and records requests.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
[ "$(id -u)" = 0 ] || { log "SKIP: needs root (the daemons drop to nobody only then)"; exit 77; }
h3_setup 1
mkdir -m 0700 "$T/private"
h3_conf 1 "stats_database = $T/private/db/stats.db" "stats_interval = 1s"
h3_start || finish
h3get fetch "$(h3_url "private-check")" - > "$T/fetch.log" 2>&1
grep -q "status=404" "$T/fetch.log" && ok "served" || fail "fetch: $(cat "$T/fetch.log")"
recorded() {
    [ "$(sqlite3 "file:$T/private/db/stats.db?mode=ro" \
        "SELECT count(*) FROM requests WHERE path = '/private-check'" 2>/dev/null)" = 1 ]
}
wait_until 10 recorded && ok "the request is recorded in a database below a 0700 directory" ||
    fail "not recorded: $(grep -i 'stats' "$T/quicd.log" | tail -n 3)"
[ "$(proc_field stats - restarts)" = 0 ] && ok "stats never restarted" || fail "$(quicctl status)"
finish
