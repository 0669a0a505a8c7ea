# SPDX-License-Identifier: MIT
# Graceful stop: `quicctl stop` while a large download is in flight sends
# GOAWAY, lets the transfer finish within drain_timeout (byte-identical),
# then closes the connection and every process exits; a new connection
# attempted during the drain is not served.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
# drain_timeout is the bound the download must finish within: room for a
# busy machine (a quiet one takes a few seconds)
h3_setup 1 "drain_timeout = 60s"
D="$T/htdocs"
head -c 104857600 /dev/urandom > "$D/100m.bin"
h3_start || finish

bg h3get --timeout 120 fetch "$(h3_url 100m.bin)" "$T/dl.bin" > "$T/dl.log" 2>&1
DL_PID=$BG_PID
# wait until the body is flowing, then stop the server
wait_until 10 sh -c "[ \$(stat -c %s '$T/dl.bin' 2>/dev/null || echo 0) -gt 1000000 ]" ||
    fail "the download did not start"
out=$(quicctl stop 2>&1) && ok "quicctl stop during the download: $out" || fail "stop: $out"
wait "$DL_PID"
if grep -q "status=200 version=3" "$T/dl.log" && cmp -s "$D/100m.bin" "$T/dl.bin"; then
    ok "the download in flight completed byte-identical during the drain"
else
    fail "download during the drain: $(cat "$T/dl.log") ($(stat -c %s "$T/dl.bin" 2>/dev/null) bytes)"
fi
grep -qE "stopping: [1-9][0-9]* connections? to drain" "$T/quicd.log" && ok "the worker drained its connection" ||
    fail "the worker did not report a connection to drain"
wait_until 5 sh -c "! kill -0 $MASTER_PID 2>/dev/null" && ok "quicd exited" || fail "quicd still running"
left=$(pgrep -f "$T/libexec" | wc -l)
[ "$left" = 0 ] && ok "no daemon left" || fail "$left daemons left"
finish
