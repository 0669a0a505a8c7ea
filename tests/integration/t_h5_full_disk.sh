# SPDX-License-Identifier: MIT
# A full disk under the stats database: the test puts the database on a
# 2 MiB tmpfs (in a mount namespace of its own, so nothing outlives it),
# fills the tmpfs while quicd runs and makes 1,000 requests. The failed
# writes give one clear log line, stats keeps running, quicd keeps serving;
# once space is freed the writes succeed again, the records lost meanwhile
# are counted in the losses table (cause "database") and in quicctl
# report, and the database passes integrity_check.
if [ "$(id -u)" != 0 ] || ! command -v unshare > /dev/null; then
    . "$(dirname "$0")/lib.sh"
    skip "needs root and unshare(1) to mount a small tmpfs in a private mount namespace"
fi
if [ -z "${QD_FULL_DISK_NS:-}" ]; then
    QD_FULL_DISK_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1 "stats_interval = 1s"
mount -t tmpfs -o size=2m,mode=0755 quicd-test-full "$T/db" || die "cannot mount a tmpfs on $T/db"
# The mount goes first (lazily: stats may still hold the files), so that
# lib.sh's cleanup can remove $T.
trap 'rc=$?; umount -l "$T/db" 2>/dev/null; (exit $rc); h3_cleanup' EXIT
echo "full" > "$T/htdocs/full.txt"
h3_start || finish

recorded() { [ "$(sql "SELECT count(*) FROM requests WHERE path = '$1'" 2>/dev/null)" -ge "${2:-1}" ]; }
h3get fetch "$(h3_url before.txt)" - > /dev/null 2>&1
wait_until 10 recorded /before.txt && ok "records are written before the disk fills" ||
    fail "no record before the disk fills"

# Fill the file system (dd stops at ENOSPC).
dd if=/dev/zero of="$T/db/filler" bs=4k 2> /dev/null
log "filled: $(df -k "$T/db" | awk 'NR == 2 { print $3 " KiB used, " $4 " KiB free" }')"

h3get --timeout 120 multi 1000 "$(h3_url full.txt)" > "$T/multi.log" 2>&1
grep -q '^multi: 1000/1000' "$T/multi.log" && ok "quicd keeps serving: $(head -n1 "$T/multi.log")" ||
    fail "multi: $(cat "$T/multi.log")"
failing() { grep -q "stats database: cannot .*full" "$T/quicd.log"; }
wait_until 10 failing && ok "one clear line: $(grep -m1 "stats database: cannot" "$T/quicd.log" | cut -c 26-)" ||
    fail "no 'disk is full' log line"
# more failed commits (the samples of every second) for 2 s: no second line
more_lines() { [ "$(grep -c "stats database: cannot" "$T/quicd.log")" -gt 1 ]; }
wait_quiet 2 more_lines && fail "$(grep -c "stats database: cannot" "$T/quicd.log") 'cannot' lines" ||
    ok "still one line after more failed writes"
[ "$(proc_field stats - state)" = running ] && [ "$(proc_field stats - restarts)" = 0 ] &&
    ok "stats keeps running" || fail "$(quicctl status)"
during=$(sql "SELECT count(*) FROM requests WHERE path = '/full.txt'")
log "$during of the 1000 requests made while the disk was full were written"
[ "$during" -lt 1000 ] && ok "writes failed while the disk was full" || fail "nothing failed"

# Free the space: the next commit succeeds.
rm -f "$T/db/filler"
again() { grep -q "stats database: writes succeed again" "$T/quicd.log"; }
wait_until 10 again && ok "$(grep -m1 "stats database: writes succeed again" "$T/quicd.log" | cut -c 26-)" ||
    fail "writes did not resume"
h3get fetch "$(h3_url after.txt)" - > /dev/null 2>&1
wait_until 10 recorded /after.txt && ok "records flow again" || fail "no record after the space was freed"
lost_row() { [ "$(sql "SELECT total(records) FROM losses WHERE role = 'stats' AND cause = 'database'" | cut -d. -f1)" -gt 0 ]; }
wait_until 5 lost_row && lost=$(sql "SELECT total(records) FROM losses WHERE role = 'stats'" | cut -d. -f1) &&
    ok "the loss reached the database: $lost records (losses, cause database)" ||
    fail "no losses row: $(sql "SELECT * FROM losses")"
logged=$(grep -m1 "stats database: writes succeed again" "$T/quicd.log" | sed -nE 's/.*\(([0-9]+) records lost\).*/\1/p')
[ "${lost:-x}" = "${logged:-y}" ] && ok "the log line and the losses row agree ($lost)" ||
    fail "log says ${logged:-?}, losses says ${lost:-?}"
# Every request the clients made during the full disk is either a row or
# among the records lost (which also counts samples and the connection).
# Rows counted now: those stats had not tried to commit yet when the disk
# was full (a busy machine) were written after it was freed, and are not
# lost; /after.txt is recorded, so every earlier record has arrived.
rows=$(sql "SELECT count(*) FROM requests WHERE path = '/full.txt'")
[ $((rows + ${lost:-0})) -ge 1000 ] && ok "$rows written + $lost lost >= 1000 requests" ||
    fail "$rows written + ${lost:-0} lost < 1000: records unaccounted for"
dropped=$(quicctl report --since 1h --json | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["process"]["dropped_records"]))')
[ "${dropped:-0}" -ge "${lost:-1}" ] && ok "quicctl report counts them: dropped_records $dropped" ||
    fail "report dropped_records ${dropped:-?} < $lost"
[ "$(sql "PRAGMA integrity_check")" = ok ] && ok "integrity_check ok" || fail "integrity_check"
finish
