# SPDX-License-Identifier: MIT
# Shared helpers for the integration tests (sourced by t_*.sh).
#
# Each test runs the whole suite from the build tree in a mktemp -d tree,
# on 127.0.0.1/::1 with a free port, bounds every wait, and kills only the
# processes it started. Exit codes follow automake: 0 pass, 1 fail,
# 77 skip (a client is missing; under CI=true that is 99 instead), 99 error.

set -u

QD_BUILDDIR=${QD_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
QD_SRCDIR=${QD_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
QUICD="$QD_BUILDDIR/daemons/master/quicd"
QUICCTL_BIN="$QD_BUILDDIR/daemons/quicctl/quicctl"

T=""
MASTER_PID=""
PASSED=0
FAILED=0
FAILURES=""

# log MESSAGE - a line on stdout (goes to the test's .log)
log() { printf '%s %s\n' "$(date +%H:%M:%S.%3N)" "$*"; }

ok() { PASSED=$((PASSED + 1)); log "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); log "FAIL: $*"; FAILURES+="FAIL: $*"$'\n'; }

# die MESSAGE - a hard error in the test itself
die() { log "ERROR: $*"; exit 99; }

# skip REASON - a prerequisite is missing: skip, but fail hard under CI
skip() {
    if [ "${CI:-}" = true ]; then
        log "ERROR (CI=true, so not skipping): $*"
        exit 99
    fi
    log "SKIP: $*"
    exit 77
}

# finish - print the summary and exit 0 or 1
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit $?
}

# cleanup - stop what we started, keep logs on failure
cleanup() {
    local rc=$?
    if [ -n "$MASTER_PID" ] && kill -0 "$MASTER_PID" 2>/dev/null; then
        kill -TERM "$MASTER_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$MASTER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$MASTER_PID" 2>/dev/null
    fi
    if [ -n "$T" ] && [ -d "$T" ]; then
        if [ "$rc" -ne 0 ] && [ -f "$T/quicd.log" ]; then
            echo "---- quicd.log ----"; tail -n 80 "$T/quicd.log"
        fi
        # again after the log, so that a tail of this output shows why
        [ -n "$FAILURES" ] && printf -- '---- failed checks ----\n%s' "$FAILURES"
        # QD_KEEP_LOGS=DIR keeps every daemon log (sanitizer runs read them)
        if [ -n "${QD_KEEP_LOGS:-}" ] && [ -f "$T/quicd.log" ]; then
            mkdir -p "$QD_KEEP_LOGS" && cp "$T/quicd.log" "$QD_KEEP_LOGS/$(basename "$0" .sh).$$.log"
        fi
        rm -rf "$T"
    fi
    exit "$rc"
}

# ports.sh: pick_port VAR, a port free for UDP and TCP on every address,
# outside the ephemeral range and reserved for this test
. "$QD_SRCDIR/tests/integration/ports.sh"

# new_port VAR - pick_port, or a hard error
new_port() { pick_port "$1" || die "$PORTS_ERR"; }

# make_cert DIR [rsa] - a self-signed certificate for localhost, 127.0.0.1
# and ::1 in DIR/cert.pem and DIR/key.pem (ECDSA P-256, or RSA 2048)
make_cert() {
    local dir=$1 alg=${2:-ec}
    local key=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
    [ "$alg" = rsa ] && key=(-newkey rsa:2048)
    openssl req -x509 "${key[@]}" -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" \
        -days 2 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" >/dev/null 2>&1 &&
        chmod 644 "$dir/key.pem" "$dir/cert.pem"
}

# setup [WORKERS] - temp tree, daemon dir, config; sets T, PORT, CONF
setup() {
    local workers=${1:-2}
    [ -x "$QUICD" ] || die "$QUICD not built"
    T=$(mktemp -d /tmp/quicd-test.XXXXXX) || die "mktemp"
    chmod 755 "$T"   # when run as root the daemons drop to nobody and must reach $T
    trap cleanup EXIT
    trap 'exit 1' INT TERM
    mkdir -p "$T/libexec" "$T/htdocs" "$T/db"
    for d in listener worker app stats upstream; do
        ln -s "$QD_BUILDDIR/daemons/$d/$d" "$T/libexec/$d"
    done
    echo '<!doctype html><title>t</title>' > "$T/htdocs/index.html"
    make_cert "$T" || die "cannot make a test certificate with openssl"
    new_port PORT
    CONF="$T/quicd.conf"
    write_conf "$workers"
}

# write_conf WORKERS [EXTRA LINES...] - (re)write the configuration; an
# extra "key = value" line replaces the test default for that key
write_conf() {
    local workers=$1; shift
    local extra="$*"
    {
        echo "# written by $(basename "$0")"
        while read -r key value; do
            case " $extra" in *" $key ="*|*" $key="*) continue ;; esac
            [ "${extra#"$key "}" != "$extra" ] && continue
            [ "${extra#"$key="}" != "$extra" ] && continue
            echo "$key = $value"
        done <<EOF2
listen 127.0.0.1:$PORT, [::1]:$PORT
workers $workers
runtime_directory $T/run
daemon_directory $T/libexec
stats_database $T/db/stats.db
document_root $T/htdocs
drain_timeout 3s
tls_certificate $T/cert.pem
tls_key $T/key.pem
EOF2
        for line in "$@"; do echo "$line"; done
    } > "$CONF"
}

quicctl() { "$QUICCTL_BIN" -c "$CONF" "$@"; }

# start_suite [WRAPPER...] - quicd -f in the background (run by WRAPPER,
# say unshare or setpriv, if given); wait until every daemon runs. If quicd
# or its listener could not bind the port (a program outside the suite took
# it after pick_port), the configuration moves to a new port and the suite
# starts again, up to 3 times.
start_suite() {
    local tries=0 from
    while :; do
        from=$(suite_log_lines)
        ports_exec "$@" "$QUICD" -f -c "$CONF" >> "$T/quicd.log" 2>&1 &
        MASTER_PID=$!
        wait_until 10 suite_up_or_gone
        all_running && return 0
        if [ "$tries" -lt 3 ] && suite_port_taken "$from"; then
            tries=$((tries + 1))
            log "port $PORT is taken: $(suite_port_taken_line "$from"); starting again on another port"
            suite_stop_master
            suite_move_port
            continue
        fi
        fail "suite did not come up within $(scaled 10) s"
        quicctl status
        return 1
    done
}

# suite_log_lines - how many lines quicd.log has now
suite_log_lines() { if [ -f "$T/quicd.log" ]; then wc -l < "$T/quicd.log"; else echo 0; fi; }

# suite_up_or_gone - every daemon runs, or the master has exited
suite_up_or_gone() { all_running || ! kill -0 "$MASTER_PID" 2>/dev/null; }

# suite_port_taken_line FROM - the first line after line FROM of quicd.log
# that says a listen address was in use (quicd's check, the listener's bind)
suite_port_taken_line() {
    tail -n +"$(($1 + 1))" "$T/quicd.log" 2>/dev/null |
        grep -m1 -iE "address already in use|cannot bind.*in use"
}
suite_port_taken() { [ -n "$(suite_port_taken_line "$1")" ]; }

# suite_stop_master - end the master we started (TERM, then KILL after 5 s)
suite_stop_master() {
    kill -TERM "$MASTER_PID" 2>/dev/null
    wait_until 5 sh -c "! kill -0 $MASTER_PID 2>/dev/null" || kill -KILL "$MASTER_PID" 2>/dev/null
    wait "$MASTER_PID" 2>/dev/null
}

# suite_move_port - a new PORT, and every ":OLD" of the configuration
# becomes ":NEW"
suite_move_port() {
    local old=$PORT
    new_port PORT
    ports_release "$old"
    sed -i -E "s/:${old}([^0-9]|\$)/:${PORT}\1/g" "$CONF"
}

# wait_until SECONDS COMMAND... - poll every 50 ms until COMMAND succeeds;
# 0 if it did in time. SECONDS is what the condition takes on a quiet
# machine; the wait allows QD_WAIT_SCALE (default 3) times as much, for a
# machine whose cores are busy with other work. A poll ends as soon as its
# condition holds, so the room costs a passing check nothing; a check that
# expects the condition NOT to come true uses wait_quiet instead.
QD_WAIT_SCALE=${QD_WAIT_SCALE:-3}
wait_until() {
    local limit=$1; shift
    wait_quiet "$(scaled "$limit")" "$@"
}

# scaled SECONDS - SECONDS times QD_WAIT_SCALE: the room a bound gets
scaled() { awk -v s="$1" -v k="$QD_WAIT_SCALE" 'BEGIN { print s * k }'; }

# wait_quiet SECONDS COMMAND... - poll every 50 ms for exactly SECONDS (not
# scaled): for checks that something does not happen within SECONDS
wait_quiet() {
    local limit=$1; shift
    local end=$(( $(date +%s%N) + $(awk -v s="$limit" 'BEGIN { printf "%.0f", s * 1e9 }') ))
    while [ "$(date +%s%N)" -lt "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

# all_running - every process in status is "running"
all_running() {
    local s
    s=$(quicctl status --json 2>/dev/null) || return 1
    echo "$s" | grep -q '"state"' || return 1
    ! echo "$s" | grep '"state"' | grep -vq '"state": "running"'
}
wait_all_running() { wait_until "$1" all_running; }

# proc_field ROLE INSTANCE FIELD - one field of one process from status --json
proc_field() {
    quicctl status --json | python3 -c '
import json, sys
role, inst, field = sys.argv[1], sys.argv[2], sys.argv[3]
for p in json.load(sys.stdin)["processes"]:
    if p["role"] == role and (inst == "-" or str(p["instance"]) == inst):
        v = p.get(field)
        print("" if v is None else v)
        break
' "$1" "$2" "$3"
}

# count_role ROLE - how many processes of ROLE status lists
count_role() {
    quicctl status --json | python3 -c '
import json, sys
print(sum(1 for p in json.load(sys.stdin)["processes"] if p["role"] == sys.argv[1]))' "$1"
}

# descendants PID - every live descendant of PID
descendants() {
    local kids
    kids=$(ps -o pid= --ppid "$1" 2>/dev/null)
    for k in $kids; do echo "$k"; descendants "$k"; done
}

# running PID - PID exists and is not a zombie: an orphan of a killed
# master is reparented to PID 1, which may reap it only seconds later
running() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $st in Z*) return 1 ;; esac
    return 0
}

# sql QUERY - run a query on the stats database (read-only)
sql() {
    python3 - "$T/db/stats.db" "$1" <<'PY'
import sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=5)
for row in con.execute(sys.argv[2]):
    print("|".join("" if v is None else str(v) for v in row))
PY
}
