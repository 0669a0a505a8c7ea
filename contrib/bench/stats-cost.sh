#!/bin/bash
# SPDX-License-Identifier: MIT
# stats-cost.sh - what recording every connection and request costs the
# worker: request rate with `stats = yes` and `stats = no` in the same run.
#
# usage: contrib/bench/stats-cost.sh [-b BUILDDIR] [-r ROUNDS] [-c CLIENTS]
#                                   [-n REQUESTS] [-k CONNECTIONS]
#
# One worker on 127.0.0.1 serves a 32-byte file. The load is ngtcp2's own
# client (gtlsclient, -q): CLIENTS processes in parallel, each making
# CONNECTIONS connections one after another with REQUESTS requests as
# concurrent streams on each (so handshakes count too, as in real traffic).
# A round runs the same load against stats = yes and then stats = no, each
# on a freshly started suite; rounds alternate the order to cancel drift.
# It prints requests/s and the worker's CPU time per request (from
# /proc/PID/schedstat, in nanoseconds) per run, the median of each mode, and the ratios.
#
# The worker pins itself to the first CPU; with two or more CPUs the
# clients, the master and the other daemons (app, stats, listener) are
# pinned to the others (taskset), so that nothing else runs on the
# worker's CPU. The worker's request rate is then bounded by its CPU time
# per request, and "the worker's capacity" is 1 / (CPU per request): the
# request rate it would reach if it were the bottleneck. The goal (issue
# 5) is that recording costs the worker less than 5% of that rate.
#
# What it measures, honestly: the whole suite's throughput with client and
# server sharing this machine's CPUs (the clients take CPU the worker could
# use, so absolute numbers are low and the ratio is what matters). With
# stats = yes the stats daemon also runs SQLite writes on the same CPUs, so
# the cost shown is an upper bound of the worker's own cost.
set -u
BUILD=${QD_BUILDDIR:-$(pwd)}
ROUNDS=7 CLIENTS=4 REQS=500 CONNS=10
while getopts b:r:c:n:k: o; do
    case $o in
    b) BUILD=$OPTARG ;; r) ROUNDS=$OPTARG ;; c) CLIENTS=$OPTARG ;;
    n) REQS=$OPTARG ;; k) CONNS=$OPTARG ;;
    *) sed -n '3,6p' "$0"; exit 2 ;;
    esac
done
GTLS=${GTLSCLIENT:-/usr/bin/gtlsclient}
PIN=""
if [ "$(nproc)" -ge 2 ] && command -v taskset > /dev/null; then
    PIN="taskset -c 1-$(($(nproc) - 1))"
fi
[ -x "$BUILD/daemons/master/quicd" ] || { echo "no quicd in $BUILD (use -b BUILDDIR)"; exit 2; }
[ -x "$GTLS" ] || { echo "gtlsclient is needed ($GTLS)"; exit 2; }
command -v openssl >/dev/null || { echo "openssl is needed"; exit 2; }

T=$(mktemp -d /tmp/quicd-bench.XXXXXX)
chmod 755 "$T" # as root the daemons run as nobody and must reach it
MASTER=""
cleanup() {
    [ -n "$MASTER" ] && kill -TERM "$MASTER" 2>/dev/null && wait "$MASTER" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
mkdir -p "$T/libexec" "$T/htdocs" "$T/db" "$T/run"
for d in listener worker app stats upstream; do ln -s "$BUILD/daemons/$d/$d" "$T/libexec/$d"; done
printf '%032d' 0 > "$T/htdocs/x.txt"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -keyout "$T/key.pem" -out "$T/cert.pem" -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost >/dev/null 2>&1 || { echo "openssl failed"; exit 1; }
# a port free for UDP and TCP, outside the ephemeral range, reserved
# against the tests and benches running beside this one
. "$(cd "$(dirname "$0")/../.." && pwd)/tests/integration/ports.sh"
pick_port PORT || { echo "stats-cost: $PORTS_ERR"; exit 1; }
URI="https://localhost:$PORT/x.txt"

# start MODE - a fresh suite with stats = MODE; waits until it answers
start() {
    rm -f "$T"/db/stats.db*
    cat > "$T/quicd.conf" <<CONF
listen = 127.0.0.1:$PORT
workers = 1
runtime_directory = $T/run
daemon_directory = $T/libexec
stats_database = $T/db/stats.db
document_root = $T/htdocs
tls_certificate = $T/cert.pem
tls_key = $T/key.pem
log_level = warn
retry = no
max_concurrent_streams = $REQS
stats = $1
CONF
    "$BUILD/daemons/master/quicd" -f -c "$T/quicd.conf" >> "$T/quicd.log" 2>&1 &
    MASTER=$!
    for _ in $(seq 100); do
        if timeout 5 "$GTLS" -q --exit-on-all-streams-close --sni=localhost 127.0.0.1 "$PORT" \
            "https://localhost:$PORT/probe" >/dev/null 2>&1; then
            pin_others
            return 0
        fi
        sleep 0.1
    done
    echo "quicd did not come up"; cat "$T/quicd.log"; exit 1
}
stop() {
    kill -TERM "$MASTER"; wait "$MASTER" 2>/dev/null; MASTER=""
}
# client - CONNS connections with REQS streams each; exit 1 on any failure
client() {
    for _ in $(seq "$CONNS"); do
        $PIN timeout 60 "$GTLS" -q --exit-on-all-streams-close --sni=localhost -n "$REQS" \
            127.0.0.1 "$PORT" "$URI" >/dev/null 2>&1 || return 1
    done
}
# pin_others - the master and every daemon but the worker onto the clients' CPUs
pin_others() {
    local p
    [ -n "$PIN" ] || return 0
    ${PIN/taskset -c/taskset -pc} "$MASTER" > /dev/null
    for p in $(pgrep -P "$MASTER"); do
        tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q '/worker ' && continue
        ${PIN/taskset -c/taskset -pc} "$p" > /dev/null
    done
}
# worker_cpu - CPU seconds (user + system) the worker used so far
worker_cpu() {
    local p
    for p in $(pgrep -P "$MASTER"); do
        if tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q '/worker '; then
            # schedstat: nanoseconds on a CPU (finer than stat's clock ticks)
            if [ -r "/proc/$p/schedstat" ]; then
                awk '{ printf "%.6f\n", $1 / 1e9 }' "/proc/$p/schedstat"
            else
                awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($14 + $15) / hz }' "/proc/$p/stat"
            fi
            return
        fi
    done
    echo 0
}
# run MODE - prints the request rate and the worker's CPU microseconds per request
run() {
    start "$1"
    local t0 t1 c0 c1 fails=0 pids=""
    c0=$(worker_cpu)
    t0=$(date +%s.%N)
    for _ in $(seq "$CLIENTS"); do client & pids="$pids $!"; done
    for p in $pids; do wait "$p" || fails=$((fails + 1)); done
    t1=$(date +%s.%N)
    c1=$(worker_cpu)
    local total=$((CLIENTS * CONNS * REQS))
    local rec=""
    if [ "$1" = yes ]; then
        sleep 1.5 # the last batch
        rec=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM requests WHERE path = ?", ("/x.txt",)).fetchone()[0])' "$T/db/stats.db")
    fi
    stop
    [ "$fails" = 0 ] || { echo "  $fails client(s) failed: the rate below is not valid" >&2; }
    python3 -c 'import sys; n = int(sys.argv[1]); print("%.0f %.1f" % (n / (float(sys.argv[3]) - float(sys.argv[2])), 1e6 * (float(sys.argv[5]) - float(sys.argv[4])) / n))' "$total" "$t0" "$t1" "$c0" "$c1"
    [ -z "$rec" ] || echo "  stats = yes: $rec of $total load requests recorded" >&2
}

echo "load: $CLIENTS clients x $CONNS connections x $REQS streams = $((CLIENTS * CONNS * REQS)) requests per run; $(nproc) CPUs; clients ${PIN:-not pinned}; $ROUNDS rounds"
echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg) before the first run"
YES="" NO="" YCPU="" NCPU=""
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="yes no"; else order="no yes"; fi
    for m in $order; do
        read -r rate cpu < <(run "$m")
        echo "round $r stats = $m: $rate requests/s, worker CPU $cpu us/request"
        if [ "$m" = yes ]; then YES="$YES $rate" YCPU="$YCPU $cpu"; else NO="$NO $rate" NCPU="$NCPU $cpu"; fi
    done
done
python3 - "$YES" "$NO" "$YCPU" "$NCPU" <<'PY'
import statistics, sys
f = lambda s: [float(x) for x in s.split()]
my, mn = statistics.median(f(sys.argv[1])), statistics.median(f(sys.argv[2]))
cy, cn = statistics.median(f(sys.argv[3])), statistics.median(f(sys.argv[4]))
rng = lambda s: "%.1f-%.1f" % (min(f(s)), max(f(s)))
print("median requests/s: stats = yes %.0f, stats = no %.0f" % (my, mn))
print("range of worker CPU per request (us): stats = yes %s, stats = no %s" % (rng(sys.argv[3]), rng(sys.argv[4])))
print("ratio yes/no: %.3f (recording costs %.1f%% of the request rate)" % (my / mn, 100 * (1 - my / mn)))
print("median worker CPU per request: stats = yes %.1f us, stats = no %.1f us (%+.1f%%)" % (cy, cn, 100 * (cy / cn - 1)))
cost = 100 * (1 - cn / cy)
print("worker capacity (1 / CPU per request): stats = yes %.0f, stats = no %.0f requests/s; "
      "recording costs the worker %.1f%% of its request rate" % (1e6 / cy, 1e6 / cn, cost))
print("goal (< 5%%): %s" % ("met" if cost < 5 else "NOT met"))
PY
