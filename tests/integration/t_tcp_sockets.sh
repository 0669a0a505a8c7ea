# SPDX-License-Identifier: MIT
# The TCP listen sockets beside the UDP ones (tcp = yes): per listen address
# one per worker in one SO_REUSEPORT group, held by the listener, with the
# configured backlog; the kernel completes a TCP handshake on them (from the
# accept queue, whether or not a worker accepts: no HTTP is expected here);
# a worker killed with -9, and the listener killed with -9, leave the very
# same sockets (inodes) listening, held by the new listener; quicd refuses
# to start when the TCP port is taken; tcp = no opens no TCP socket at all.
. "$(dirname "$0")/lib.sh"
command -v ss >/dev/null 2>&1 || skip "ss (iproute2) is needed"
command -v python3 >/dev/null 2>&1 || skip "python3 is needed"
setup 2

ADDRS="127.0.0.1 [::1]"
BACKLOG=511
SOMAXCONN=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo $BACKLOG)
[ "$SOMAXCONN" -lt $BACKLOG ] && BACKLOG=$SOMAXCONN   # the kernel caps it

# listen_inodes PROTO ADDR - inodes of the sockets listening on ADDR:PORT
# (PROTO t: TCP in LISTEN, u: bound UDP), one a line, sorted
listen_inodes() {
    ss -Hl"$1"ne "sport = :$PORT" | awk -v a="$2:$PORT" '$4 == a' |
        grep -o 'ino:[0-9]*' | cut -d: -f2 | sort -n
}
all_tcp() { for a in $ADDRS; do listen_inodes t "$a"; done | sort -n; }

# holds PID INODE - process PID has socket INODE open
holds() { ls -l "/proc/$1/fd" 2>/dev/null | grep -q "socket:\[$2\]\$"; }

# tcp_connect ADDR - a TCP handshake with ADDR:PORT completes (within 15 s:
# the kernel completes it, but a loaded machine may be slow to run us)
tcp_connect() {
    python3 - "$1" "$PORT" <<'PY'
import socket, sys
host = sys.argv[1].strip("[]")
s = socket.create_connection((host, int(sys.argv[2])), timeout=15)
s.close()
PY
}

# check_set WHEN [N] - N (2) TCP listen sockets per address, all held by the listener
check_set() {
    local when=$1 want=${2:-2} lp a n ino missing=""
    lp=$(proc_field listener - pid)
    for a in $ADDRS; do
        n=$(listen_inodes t "$a" | grep -c .)
        [ "$n" -eq "$want" ] && ok "$when: $a:$PORT has $want TCP listen sockets" ||
            fail "$when: $a:$PORT has $n TCP listen sockets, want $want: $(ss -Hltne "sport = :$PORT")"
    done
    for ino in $(all_tcp); do holds "$lp" "$ino" || missing="$missing $ino"; done
    [ -z "$missing" ] && ok "$when: the listener (pid $lp) holds every TCP listen socket" ||
        fail "$when: the listener (pid $lp) does not hold$missing"
}

# worker_share WHEN - no worker holds a TCP listen socket of another set, nor
# two of one address (they hold none until the worker's TCP side lands)
worker_share() {
    local when=$1 w wp a n held=""
    for w in 0 1; do
        wp=$(proc_field worker $w pid)
        for a in $ADDRS; do
            n=0
            for ino in $(listen_inodes t "$a"); do holds "$wp" "$ino" && n=$((n + 1)); done
            [ "$n" -le 1 ] || fail "$when: worker $w holds $n TCP listen sockets of $a"
            held="$held w$w:$a=$n"
        done
    done
    log "$when: TCP listen sockets held by the workers:$held"
}

# ---- tcp = yes (the default)
start_suite || finish
check_set "start"
worker_share "start"
n=$(ss -Hltn "sport = :$PORT" | awk -v b=$BACKLOG '$3 != b' | grep -c .)
[ "$n" -eq 0 ] && ok "every TCP listen socket has backlog $BACKLOG" ||
    fail "backlog: $(ss -Hltn "sport = :$PORT")"
wait_until 5 grep -q "listener.*listening on 2 addresses: 4 UDP and 4 TCP sockets, 1 generation" "$T/quicd.log" &&
    ok "the listener logs its TCP sockets" || fail "no listener line with 4 TCP in the log"
BEFORE=$(all_tcp | tr '\n' ' ')
for a in $ADDRS; do
    n=$(listen_inodes u "$a" | grep -c .)
    [ "$n" -eq 2 ] && ok "$a:$PORT still has 2 UDP sockets" || fail "$a:$PORT has $n UDP sockets"
    tcp_connect "$a" && ok "a TCP connection to $a:$PORT completes its handshake" ||
        fail "no TCP connection to $a:$PORT"
done
log "accept queues: $(ss -Hltn "sport = :$PORT" | awk '{printf " %s=%s", $4, $2}')"

# ---- kill -9 a worker: its sockets stay, the same ones
w0=$(proc_field worker 0 pid)
kill -KILL "$w0"
back() { [ "$(proc_field worker 0 state)" = running ] && [ "$(proc_field worker 0 pid)" != "$w0" ]; }
wait_until 10 back && ok "worker 0 restarted (pid $w0 -> $(proc_field worker 0 pid))" ||
    fail "worker 0 not back: $(quicctl status)"
AFTER=$(all_tcp | tr '\n' ' ')
[ "$AFTER" = "$BEFORE" ] && ok "the same TCP listen sockets after kill -9 of a worker ($AFTER)" ||
    fail "TCP listen sockets changed: $BEFORE -> $AFTER"
check_set "after the worker restart"
worker_share "after the worker restart"
tcp_connect 127.0.0.1 && ok "TCP connects after the worker restart" || fail "no TCP connection after the worker restart"

# ---- kill -9 the listener: its successor takes the same sockets back
lp=$(proc_field listener - pid)
kill -KILL "$lp"
lback() { [ "$(proc_field listener - state)" = running ] && [ "$(proc_field listener - pid)" != "$lp" ]; }
wait_until 10 lback && ok "listener restarted (pid $lp -> $(proc_field listener - pid))" ||
    fail "listener not back: $(quicctl status)"
AFTER=$(all_tcp | tr '\n' ' ')
[ "$AFTER" = "$BEFORE" ] && ok "the same TCP listen sockets after kill -9 of the listener" ||
    fail "TCP listen sockets changed with the listener: $BEFORE -> $AFTER"
check_set "after the listener restart"
wait_until 5 grep -q "took back 8 sockets (4 TCP) of 2 addresses from the previous listener" "$T/quicd.log" &&
    ok "the new listener took back the escrowed sockets, TCP ones included" ||
    fail "no \"took back 8 sockets (4 TCP)\" in the log"

# ---- stop; a taken TCP port refuses the start
out=$(quicctl stop) || fail "quicctl stop: $out"
wait "$MASTER_PID"
MASTER_PID=""
python3 - "$PORT" "$T/busy.ready" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
open(sys.argv[2], "w").close()
time.sleep(120)
PY
BUSY_PID=$!
wait_until 5 test -f "$T/busy.ready" || fail "the port-taking helper did not start"
# (no start_suite: the port IS taken, and quicd must refuse it)
out=$(timeout 60 "$QUICD" -f -c "$CONF" 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "127.0.0.1:$PORT: address already in use over TCP" &&
    ok "quicd refuses a listen address whose TCP port is taken" ||
    fail "busy TCP port: rc=$rc $out"
kill "$BUSY_PID" 2>/dev/null
wait "$BUSY_PID" 2>/dev/null

# ---- tcp = no: UDP only
write_conf 2 "tcp = no"
start_suite || finish
for a in $ADDRS; do
    n=$(listen_inodes t "$a" | grep -c .)
    [ "$n" -eq 0 ] && ok "tcp = no: no TCP listen socket on $a:$PORT" ||
        fail "tcp = no: $n TCP listen sockets on $a:$PORT"
    n=$(listen_inodes u "$a" | grep -c .)
    [ "$n" -eq 2 ] && ok "tcp = no: $a:$PORT has 2 UDP sockets" || fail "tcp = no: $n UDP sockets on $a:$PORT"
done
wait_until 5 grep -q "listening on 2 addresses: 4 UDP and 0 TCP sockets" "$T/quicd.log" &&
    ok "the listener logs no TCP sockets" || fail "no listener line with 0 TCP in the log"

# ---- reload to tcp = yes: a new generation of workers (ids 2 and 3); the
# new listener opens a TCP socket for every slot of each address, in slot
# order (slot i is worker id i in the UDP and the TCP group alike), the
# slots of the drained generation included
lp=$(proc_field listener - pid)
write_conf 2
out=$(quicctl reload) || fail "quicctl reload: $out"
echo "$out" | grep -q "generation 2 (2 workers) serves new connections because tcp changed" &&
    ok "reload to tcp = yes starts generation 2" || fail "reload: $out"
four_each() { [ "$(listen_inodes t 127.0.0.1 | grep -c .)" -eq 4 ] && [ "$(listen_inodes t "[::1]" | grep -c .)" -eq 4 ]; }
wait_until 10 four_each && ok "reload to tcp = yes: 4 TCP listen sockets per address (slots 0-3)" ||
    fail "reload to tcp = yes: $(ss -Hltne "sport = :$PORT")"
lnew() { [ "$(proc_field listener - state)" = running ] && [ "$(proc_field listener - pid)" != "$lp" ]; }
wait_until 10 lnew && check_set "after the reload to tcp = yes" 4 || fail "the reload did not replace the listener"
# new_held - each new worker holds one TCP listen socket per address (sets held)
new_held() {
    local w wp a n ino
    held=""
    for w in 2 3; do
        wp=$(proc_field worker $w pid)
        for a in $ADDRS; do
            n=0
            for ino in $(listen_inodes t "$a"); do holds "$wp" "$ino" && n=$((n + 1)); done
            held="$held w$w:$a=$n"
        done
    done
    [ "$held" = " w2:127.0.0.1=1 w2:[::1]=1 w3:127.0.0.1=1 w3:[::1]=1" ]
}
wait_until 5 new_held; new_held &&
    ok "each new worker holds one TCP listen socket per address" || fail "held:$held"
tcp_connect 127.0.0.1 && tcp_connect "[::1]" && ok "TCP connects after the reload to tcp = yes" ||
    fail "no TCP connection after the reload to tcp = yes"
finish
