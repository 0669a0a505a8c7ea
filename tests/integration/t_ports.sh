# SPDX-License-Identifier: MIT
# The port helper (ports.sh) never hands out a port that something holds:
# with a range of six ports, a TCP listener, a bound TCP socket that does
# not listen, a UDP socket and a TCP socket on another loopback address
# hold four of them, and 100 picks in a row return only the two free
# ones; a port another shell reserved is never returned, and with all six
# taken pick_port fails with the reason. Its default range lies below the
# kernel's ephemeral range. And start_suite, when quicd finds its port
# taken after the pick, moves to another port and comes up.
. "$(dirname "$0")/lib.sh"
setup 1

# the default range: outside the ephemeral range
read -r elo ehi < /proc/sys/net/ipv4/ip_local_port_range
read -r lo hi <<< "$(QD_PORT_RANGE= ports_range)"
if [ "$hi" -lt "$elo" ] || [ "$lo" -gt "$ehi" ]; then
    ok "default range $lo-$hi lies outside the ephemeral range $elo-$ehi"
else
    fail "default range $lo-$hi overlaps the ephemeral range $elo-$ehi"
fi
[ "$PORT" -ge "$lo" ] && [ "$PORT" -le "$hi" ] && ok "setup's port $PORT is in it" ||
    fail "setup's port $PORT is outside $lo-$hi"

# Six ports in a row, all free now and reserved by us while we set up.
for _ in $(seq 50); do
    new_port B
    base=$B
    good=1
    for i in 1 2 3 4 5; do
        [ $((base + i)) -le "$hi" ] && ports_probe $((base + i)) || good=0
    done
    ports_release "$B"
    [ $good = 1 ] && break
    base=""
done
[ -n "$base" ] || die "no six free ports in a row"
RANGE="$base-$((base + 5))"
log "range $RANGE"

# hold base..base+3, each in another way
python3 - "$base" "$T/held" <<'PY' > "$T/holder.log" 2>&1 &
import socket, sys, time
b = int(sys.argv[1])
held = []
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", b)); s.listen(8); held.append(s)            # a TCP listener
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind(("::1", b + 1)); held.append(s)                           # bound, not listening
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", b + 2)); held.append(s)                     # UDP only
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.2", b + 3)); s.listen(8); held.append(s)        # TCP on another address
open(sys.argv[2], "w").write("held\n")
time.sleep(300)
PY
HOLDER=$!
trap 'kill $HOLDER 2>/dev/null; cleanup' EXIT
wait_until 5 test -s "$T/held" || die "the holder did not bind: $(cat "$T/holder.log")"

# pick_in_range - one pick in a subshell (its reservation ends with it)
pick_in_range() { (QD_PORT_RANGE=$RANGE; pick_port P && echo "$P" || echo "none: $PORTS_ERR"); }

got=$(for _ in $(seq 60); do pick_in_range; done | sort | uniq -c | tr -s ' ' | tr '\n' ',')
log "60 picks: $got"
bad=$(for _ in $(seq 40); do pick_in_range; done | grep -vx -e "$((base + 4))" -e "$((base + 5))" | sort -u | tr '\n' ' ')
[ -z "$bad" ] && case $got in *" $((base + 4)),"*" $((base + 5)),"*) true ;; *) false ;; esac &&
    ok "100 picks in $RANGE returned only the free ports $((base + 4)) and $((base + 5)), both of them" ||
    fail "picks returned a held port or not both free ones: $got $bad"

# a reservation of this shell keeps the port from every other pick
QD_PORT_RANGE=$RANGE
pick_port MINE || die "pick in $RANGE: $PORTS_ERR"
unset QD_PORT_RANGE
other=$((base + 4 + base + 5 - MINE))
bad=$(for _ in $(seq 30); do pick_in_range; done | grep -vx "$other" | sort -u | tr '\n' ' ')
[ -z "$bad" ] && ok "while this shell reserves $MINE, 30 other picks all return $other" ||
    fail "a reserved port or a held one was handed out: $bad"

# with every port taken, pick_port fails and says why
QD_PORT_RANGE=$RANGE
pick_port MINE2 || die "second pick in $RANGE: $PORTS_ERR"
unset QD_PORT_RANGE
out=$(pick_in_range)
case $out in
"none: no free port in $RANGE after 200 draws") ok "all six taken: pick_port fails ($out)" ;;
*) fail "all six taken, yet: $out" ;;
esac
ports_release "$MINE"; ports_release "$MINE2"
out=$(pick_in_range)
case $out in "$MINE" | "$MINE2") ok "a released port is handed out again ($out)" ;; *) fail "after release: $out" ;; esac

# start_suite: a program outside the suite takes the port after the pick
taken=$PORT
python3 - "$taken" "$T/taken" <<'PY' > "$T/taker.log" 2>&1 &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
open(sys.argv[2], "w").write("taken\n")
time.sleep(300)
PY
TAKER=$!
trap 'kill $HOLDER $TAKER 2>/dev/null; cleanup' EXIT
wait_until 5 test -s "$T/taken" || die "could not take port $taken: $(cat "$T/taker.log")"
if start_suite; then
    ok "the suite came up although its port was taken"
else
    fail "start_suite gave up: $(tail -n 5 "$T/quicd.log")"
fi
[ "$PORT" != "$taken" ] && grep -q "listen = 127.0.0.1:$PORT, \[::1\]:$PORT" "$CONF" &&
    ok "it moved from $taken to $PORT, in the configuration too" || fail "PORT $PORT, $(grep listen "$CONF")"
grep -q "127.0.0.1:$taken: address already in use over TCP" "$T/quicd.log" &&
    ok "quicd said why: $(grep -m1 "address already in use" "$T/quicd.log")" || fail "no reason in the log"
ss -Hltn "sport = :$PORT" | grep -q . && ss -Hlun "sport = :$PORT" | grep -q . &&
    ok "quicd listens on $PORT over TCP and UDP" || fail "not listening on $PORT: $(ss -Htuln)"
finish
