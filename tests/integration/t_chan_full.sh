# SPDX-License-Identifier: MIT
# A request body that the app channel cannot take is never passed on
# truncated: with the app stopped (SIGSTOP), a 40 MiB POST /api/echo fills
# the worker's queue towards the app (16 MiB); the worker then resets that
# stream (the client gets an error, not an answer to part of its body),
# tells the app to forget the request, and counts the refusal
# (send_failures in quicctl status). Once the app runs again it answers
# other requests, and the truncated request gets no answer at all.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1
h3_conf 1 "max_request_body = 100MB" "access_log = $T/access.log"
mkdir -p "$T/out"
head -c $((40 * 1024 * 1024)) /dev/zero | tr '\0' 'a' > "$T/big.bin"
h3_start || finish

field() { echo "$1" | tail -n1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1; }

before=$(proc_field worker 0 send_failures)
[ "$before" = 0 ] && ok "send_failures starts at 0" || fail "send_failures: '$before'"
APP=$(proc_field app - pid)
kill -STOP "$APP"
out=$(h3get --timeout 90 req -X POST --data-file "$T/big.bin" "$(h3_url api/echo)" "$T/out/big" 2>&1)
rc=$?
log "40 MiB POST with the app stopped: rc=$rc $(echo "$out" | tail -n1)"
status=$(field "$out" status)
[ "$status" != 200 ] && ok "the truncated request was not answered 200 (rc $rc, status ${status:-none})" ||
    fail "a request whose body could not reach the app was answered: $out"
refused() { [ "$(proc_field worker 0 send_failures)" -ge 1 ]; }
wait_until 3 refused && ok "worker counts $(proc_field worker 0 send_failures) refused message(s)" ||
    fail "send_failures: $(quicctl status --json)"
wait_until 5 grep -q "app channel refused a request body" "$T/quicd.log" && ok "the refusal is logged" ||
    fail "no log line for the refusal"
kill -CONT "$APP"

echo hello > "$T/small.txt"
out=$(h3get req -X POST --data-file "$T/small.txt" "$(h3_url api/echo)" "$T/out/small" 2>&1)
[ "$(field "$out" status)" = 200 ] && grep -q '"length": *6' "$T/out/small" &&
    ok "after SIGCONT the app answers: $(cat "$T/out/small")" || fail "echo after SIGCONT: $out $(cat "$T/out/small" 2>/dev/null)"
[ "$(proc_field app - pid)" = "$APP" ] && ok "the app was not restarted" || fail "the app was replaced"
# The app forgot the abandoned request: nothing owed (streams 0) and no 200 for it.
idle() { [ "$(proc_field app - streams)" = 0 ]; }
wait_until 5 idle && ok "the app holds no request" || fail "app streams: $(proc_field app - streams)"
# (the line format is right: the small echo's 200 is there, once the app
# has written it)
wait_until 5 grep -Eq '"POST /api/echo HTTP/3" 200 [0-9]{2,4} ' "$T/access.log" &&
    ! grep -E '"POST /api/echo HTTP/3" 200 [0-9]{8}' "$T/access.log" && ok "no 200 for a partial body in the access log" ||
    fail "access log: $(cat "$T/access.log")"
finish
