# SPDX-License-Identifier: MIT
# kill -9 a worker in the middle of downloads: with two workers and
# several 100 MiB downloads in flight, each on its own connection
# (gtlsclient, whose log names the worker in byte 1 of the server's CID),
# kill worker 0. The downloads on worker 1 complete byte-identical, those
# on worker 0 fail (reset or timed out, never a wrong file), a new
# connection succeeds soon (2 s on a quiet machine; the bound is
# QD_WAIT_SCALE times that), worker 0 is restarted and serves again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_gtlsclient
need_pycurl
h3_setup 2

D="$T/htdocs"
SIZE=104857600
MARGIN=16777216   # what may still be in socket buffers when the worker dies
head -c $SIZE /dev/urandom > "$D/big.bin"
URL=$(h3_url big.bin)
MIN=6             # downloads at least, and at least 2 on each worker ...
MAX=12            # ... starting at most this many

h3_start || finish
w0=$(proc_field worker 0 pid); w1=$(proc_field worker 1 pid)
[ -n "$w0" ] && [ -n "$w1" ] || { fail "no worker pids in status"; finish; }

# The pycurl client for "a new connection soon after the kill" is started
# first and waits for a go file, so its start-up (slow on a busy machine)
# does not count. It tries for 2 s times QD_WAIT_SCALE.
NEW_SECS=$(scaled 2)   # 2 s on a quiet machine
bg h3get retry "$(h3_url "")" "$NEW_SECS" --start-file "$T/go" > "$T/retry.log" 2>&1
RETRY_PID=$BG_PID
wait_until 10 grep -q "^retry: waiting" "$T/retry.log" || fail "retry client did not start: $(cat "$T/retry.log")"

# client I - one download (idle timeout 30 s, the server's default: longer
# than it is stopped below; a download of the killed worker that gets no
# stateless reset ends by it), its log filtered to what we need
client() {
    local i=$1
    { gtls 300 --timeout=30s --download="$T/c$i" 127.0.0.1 "$PORT" "$URL"; echo "gtlsclient exit $?"; } |
        gtls_filter > "$T/c$i.log"
}
size_of() { stat -c %s "$T/c$1/big.bin" 2>/dev/null || echo 0; }
# receiving I - client I knows its worker, got a 200 and some of the body
receiving() {
    [ "$(gtls_workers "$T/c$1.log")" != - ] &&
        grep -q '\[:status: 200\]' "$T/c$1.log" && [ "$(size_of "$1")" -gt 0 ]
}

# Start the downloads one at a time and stop each (SIGSTOP, its process
# group) once it receives, so that starting the next is quick and the
# machine is not busy; record which worker each is on. The first one is
# stopped the longest: no more starts after 15 s (half its idle timeout)
# once each worker has one.
NCLI=0 ON0=0 ON1=0
CPIDS=() W=()
s0=$(date +%s)
while [ $NCLI -lt $MAX ] && { [ $NCLI -lt $MIN ] || [ $ON0 -lt 2 ] || [ $ON1 -lt 2 ]; } &&
    { [ $(($(date +%s) - s0)) -lt 15 ] || [ $ON0 -lt 1 ] || [ $ON1 -lt 1 ]; }; do
    NCLI=$((NCLI + 1)); i=$NCLI
    mkdir -p "$T/c$i"; : > "$T/c$i.log"
    bg client "$i"
    CPIDS[$i]=$BG_PID
    if ! wait_until 10 receiving "$i"; then
        fail "download $i did not start within 10 s: $(tail -n 3 "$T/c$i.log" | tr '\n' ' ')"
        break
    fi
    kill -STOP -- "-${CPIDS[$i]}"
    W[$i]=$(gtls_workers "$T/c$i.log")
    case ${W[$i]} in 0) ON0=$((ON0 + 1)) ;; 1) ON1=$((ON1 + 1)) ;; esac
done
log "$NCLI downloads in $(($(date +%s) - s0)) s: $ON0 on worker 0, $ON1 on worker 1 (${W[*]})"

# Let them all run, then kill worker 0 in the middle of it.
for i in $(seq $NCLI); do kill -CONT -- "-${CPIDS[$i]}"; done
sleep 0.3
mapfile -t AT_KILL < <(echo x; for i in $(seq $NCLI); do echo "$T/c$i/big.bin"; done | xargs stat -c %s)
kill -KILL "$w0"
touch "$T/go"
t0=$(date +%s%N)
log "killed worker 0 (pid $w0); bytes so far: ${AT_KILL[*]:1}"

wait_until 20 sh -c "! kill -0 $RETRY_PID 2>/dev/null"
out=$(cat "$T/retry.log")
log "$(echo "$out" | tail -n 1)"
if echo "$out" | grep -q "^retry: attempt [0-9]* ok after"; then
    ok "new connection succeeds within $NEW_SECS s of the kill: $(grep "^retry: attempt [0-9]* ok" <<< "$out")"
else
    fail "no new connection within $NEW_SECS s of the kill: $(echo "$out" | tail -n 3)"
fi

# Every client ends by itself (complete, a stateless reset from the new
# worker 0, or its idle timeout).
alldone() {
    local i
    for i in $(seq $NCLI); do kill -0 "${CPIDS[$i]}" 2>/dev/null && return 1; done
    return 0
}
wait_until 80 alldone && ok "every download ended ($(( ($(date +%s%N) - t0) / 1000000 )) ms after the kill)" ||
    fail "downloads still running $(( ($(date +%s%N) - t0) / 1000000000 )) s after the kill"

inflight0=0 inflight1=0
for i in $(seq "$NCLI"); do
    L="$T/c$i.log"; w=${W[$i]}; k=${AT_KILL[$i]}
    final=$(size_of "$i")
    how=$(grep -v transport_parameters "$L" | grep -m1 -iE 'stateless reset|ERR_[A-Z_]+|CONNECTION_CLOSE|closed with error' | sed -E 's/^I[0-9]+ 0x[0-9a-f]+ //' | cut -c1-100)
    desc="client $i (worker ${w:-?}, $k bytes at the kill, $final at the end)"
    if [ "$k" -ge $((SIZE - MARGIN)) ]; then
        log "$desc: nearly done before the kill, not counted"
        continue
    fi
    case $w in
    1)
        inflight1=$((inflight1 + 1))
        if cmp -s "$D/big.bin" "$T/c$i/big.bin"; then
            ok "$desc: complete and byte-identical"
        else
            fail "$desc: not byte-identical ($(tail -n 3 "$L" | tr '\n' ' '))"
        fi ;;
    0)
        inflight0=$((inflight0 + 1))
        if [ "$final" -lt $SIZE ]; then
            ok "$desc: failed as it must (${how:-no reason in the log})"
        else
            fail "$desc: a download from the killed worker completed?"
        fi ;;
    *)
        fail "$desc: no server CID naming worker 0 or 1 ($(gtls_server_cid "$L"))" ;;
    esac
done
[ $inflight0 -gt 0 ] && [ $inflight1 -gt 0 ] && ok "downloads in flight at the kill: $inflight0 on worker 0, $inflight1 on worker 1" ||
    fail "need downloads in flight on both workers at the kill: $inflight0 on worker 0, $inflight1 on worker 1"

# The master restarted worker 0 and left worker 1 alone.
back() { [ "$(proc_field worker 0 state)" = running ] && [ "$(proc_field worker 0 pid)" != "$w0" ]; }
wait_until 2 back && ok "worker 0 restarted (pid $w0 -> $(proc_field worker 0 pid))" || fail "worker 0: $(quicctl status)"
[ "$(proc_field worker 0 restarts)" = 1 ] && ok "worker 0 restarts = 1" || fail "worker 0 restarts = $(proc_field worker 0 restarts)"
[ "$(proc_field worker 1 pid)" = "$w1" ] && [ "$(proc_field worker 1 restarts)" = 0 ] &&
    ok "worker 1 untouched" || fail "worker 1: pid $w1 -> $(proc_field worker 1 pid), restarts $(proc_field worker 1 restarts)"

# The new worker 0 serves new connections (try until one lands on it:
# each does with probability 1/2).
served="" why="no connection landed on worker 0 in 24 attempts"
for j in $(seq 24); do
    L="$T/after$j.log"; mkdir -p "$T/after$j"
    gtls 30 --download="$T/after$j" 127.0.0.1 "$PORT" "$(h3_url "")" > "$L"
    if [ "$(gtls_worker "$L")" = 0 ]; then
        if cmp -s "$D/index.html" "$T/after$j/index.html"; then
            served=$j
        else
            why="attempt $j reached worker 0 but got no index.html: $(grep -m1 ':status' "$L")"
        fi
        break
    fi
done
[ -n "$served" ] && ok "restarted worker 0 serves a new connection (attempt $served)" || fail "$why"
finish
