# SPDX-License-Identifier: MIT
# Address validation: with retry = yes every new connection is sent a
# Retry first (gtlsclient sees the Retry packet and still completes, and
# gets a NEW_TOKEN for next time); retry = auto with a tiny threshold sends
# no Retry to clients that complete their handshakes, however many at once,
# and turns Retry on under Initials that never complete (qd_flood);
# retry = no sends none. The mode changes by reload (the key reloads in
# place) without restarting the workers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_gtlsclient
need_pycurl
FLOOD="$QD_BUILDDIR/tests/tools/qd_flood"
[ -x "$FLOOD" ] || die "$FLOOD not built (make check builds it)"
h3_setup 1 "retry = yes"
D="$T/htdocs"
head -c 65536 /dev/urandom > "$D/64k.bin"
h3_start || finish
WPID=$(proc_field worker 0 pid)

# get NAME - one gtlsclient GET of 64k.bin; sets L, RC, GOT (200 + same body)
get() {
    L="$T/$1.log"; local dl="$T/$1.dl"; mkdir -p "$dl"
    gtls 30 --download="$dl" 127.0.0.1 "$PORT" "$(h3_url 64k.bin)" > "$L"
    RC=$?
    GOT=no
    [ "$(gtls_status_count "$L" 200)" = 1 ] && cmp -s "$D/64k.bin" "$dl/64k.bin" && GOT=yes
}
retried() { grep -q "pkt rx .*type=Retry" "$L"; }

get yes1
if [ "$GOT" = yes ] && retried; then ok "retry = yes: Retry received, then 200 and the body"
else fail "retry = yes: got $GOT, Retry seen: $(retried && echo yes || echo no)"; fi
grep -q "NEW_TOKEN" "$L" && ok "a NEW_TOKEN was issued after the handshake" ||
    fail "no NEW_TOKEN frame in the client log"
# (the worker reports its state every second)
retry_on() { case $(proc_field worker 0 retry) in True | true) true ;; *) false ;; esac; }
wait_until 2 retry_on && ok "status reports retry on" || fail "status retry: '$(proc_field worker 0 retry)'"

# pycurl (ngtcp2 + GnuTLS in libcurl) copes with Retry as well
out=$(h3get fetch "$(h3_url 64k.bin)" "$T/curl.bin" 2>&1)
echo "$out" | grep -q "status=200 version=3" && cmp -s "$D/64k.bin" "$T/curl.bin" &&
    ok "curl through Retry: 200 over HTTP/3" || fail "curl through Retry: $out"

write_conf 1 "retry = no"
quicctl reload >/dev/null || fail "reload to retry = no"
get no1
if [ "$GOT" = yes ] && ! retried; then ok "retry = no: no Retry, 200"
else fail "retry = no: got $GOT, Retry seen: $(retried && echo yes || echo no)"; fi

write_conf 1 "retry = auto" "retry_threshold = 8"
quicctl reload >/dev/null || fail "reload to retry = auto"
sleep 2.2   # a quiet second: the rate window forgets the connections above
get auto1
retried && fail "retry = auto: Retry on the first connection of a quiet server" ||
    ok "retry = auto: a quiet server sends no Retry"
# Real clients complete their handshakes: 15 of them within a few
# seconds, 5 at a time, stay below 8 unfinished and get no Retry (the old
# rule, 8 new connections a second, sent them Retry).
n=0
for round in 1 2 3; do
    pids=""
    for i in 1 2 3 4 5; do
        mkdir -p "$T/burst$round.$i.dl"
        gtls 30 --download="$T/burst$round.$i.dl" 127.0.0.1 "$PORT" "$(h3_url 64k.bin)" \
            > "$T/burst$round.$i.log" &
        pids="$pids $!"
    done
    # shellcheck disable=SC2086
    wait $pids
    for i in 1 2 3 4 5; do
        L="$T/burst$round.$i.log"
        retried && n=$((n + 1))
        [ "$(gtls_status_count "$L" 200)" = 1 ] && cmp -s "$D/64k.bin" "$T/burst$round.$i.dl/64k.bin" ||
            fail "burst $round.$i: no 200 with the body"
    done
done
[ "$n" = 0 ] && ok "retry = auto: 15 clients that complete their handshakes, 5 at once, get no Retry" ||
    fail "retry = auto: $n of 15 completing clients were sent a Retry"
# Initials that never complete (qd_flood: real ClientHellos from 20 ports,
# no client behind them) cross the threshold of 8 unfinished handshakes:
# the later ones and a real client meanwhile get a Retry. The client goes
# once the worker reports Retry on (however slowly the flood started);
# the flood runs until then (at most 30 s) and prints its counts on TERM.
bg "$FLOOD" -p "$PORT" -H -s 20 -r 50 -d 30 > "$T/flood.out" 2>&1
FLOOD_PID=$BG_PID
wait_until 5 retry_on || log "status does not report Retry on under the flood: $(quicctl status)"
get during
if [ "$GOT" = yes ] && retried; then
    ok "retry = auto: under Initials that never complete a real client is sent a Retry and completes"
else
    fail "retry = auto during unfinished handshakes: got $GOT, Retry seen: $(retried && echo yes || echo no)"
fi
kill -TERM "$FLOOD_PID" 2>/dev/null
wait "$FLOOD_PID"
log "flood: $(cat "$T/flood.out")"
fr=$(sed -n 's/.* retry=\([0-9]*\).*/\1/p' "$T/flood.out")
[ "${fr:-0}" -ge 1 ] && ok "the unfinished Initials were answered with Retry ($fr)" ||
    fail "no Retry for the flood's Initials: $(cat "$T/flood.out")"
[ "$(proc_field worker 0 pid)" = "$WPID" ] && ok "the reloads kept the worker (pid $WPID)" ||
    fail "the worker was replaced by a reload"
finish
