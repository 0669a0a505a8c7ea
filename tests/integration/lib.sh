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

# free_port - a UDP port that is free on 127.0.0.1 and ::1 right now
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -Hlun "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"; return 0
        fi
    done
    die "no free UDP port"
}

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
    for d in listener worker app stats; do
        ln -s "$QD_BUILDDIR/daemons/$d/$d" "$T/libexec/$d"
    done
    echo '<!doctype html><title>t</title>' > "$T/htdocs/index.html"
    make_cert "$T" || die "cannot make a test certificate with openssl"
    PORT=$(free_port)
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

# start_suite - quicd -f in the background; wait until every daemon runs
start_suite() {
    "$QUICD" -f -c "$CONF" >> "$T/quicd.log" 2>&1 &
    MASTER_PID=$!
    wait_all_running 10 || { fail "suite did not come up within 10s"; quicctl status; return 1; }
    return 0
}

# wait_until SECONDS COMMAND... - poll every 50 ms; 0 if COMMAND succeeded in time
wait_until() {
    local limit=$1; shift
    local end=$(( $(date +%s%N) + limit * 1000000000 ))
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
