# SPDX-License-Identifier: MIT
# HTTP/3 helpers for the integration tests; source after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/h3lib.sh"
#   need_pycurl; h3_setup 2 ["key = value"...]; h3_start || finish
#
# Clients: gtlsclient (ngtcp2-client, GnuTLS), /usr/bin/python3 with
# Debian's pycurl (libcurl 8.14 with ngtcp2/nghttp3 from backports; the
# python3 in PATH may be another one without pycurl), chromium; over
# TLS/TCP Debian's curl CLI and nghttp (nghttp2-client).  A missing
# client skips the test (an error under CI=true, see skip in lib.sh).

H3_PYTHON=${H3_PYTHON:-/usr/bin/python3}
H3_GTLSCLIENT=${H3_GTLSCLIENT:-/usr/bin/gtlsclient}
H3_CHROMIUM=${H3_CHROMIUM:-}
H3GET_PY="$QD_SRCDIR/tests/integration/h3get.py"
BG_PIDS=""    # process groups of background clients we started (bg_kill)

# ---------------------------------------------------------------- clients

need_openssl() { command -v openssl >/dev/null 2>&1 || skip "openssl is needed to make the test certificate"; }

# need_pycurl - /usr/bin/python3 can import pycurl and its libcurl has HTTP/3
need_pycurl() {
    local out
    [ -x "$H3_PYTHON" ] || skip "$H3_PYTHON not found (python3-pycurl is needed)"
    [ -f "$H3GET_PY" ] || die "$H3GET_PY missing"
    out=$("$H3_PYTHON" "$H3GET_PY" check 2>&1) ||
        skip "$H3_PYTHON has no pycurl with HTTP/3: $out (contrib/install-deps installs python3-pycurl and libcurl3-gnutls from bookworm-backports)"
    log "client: $out"
}

# need_gtlsclient - ngtcp2's example client (ngtcp2-client from backports)
need_gtlsclient() {
    [ -x "$H3_GTLSCLIENT" ] || skip "$H3_GTLSCLIENT not found (ngtcp2-client from bookworm-backports)"
    "$H3_GTLSCLIENT" --help 2>&1 | grep -q -- '--change-local-addr' ||
        skip "$H3_GTLSCLIENT is not ngtcp2's client"
}

# need_chromium - a headless-capable Chromium; sets H3_CHROMIUM
need_chromium() {
    local c
    if [ -z "$H3_CHROMIUM" ]; then
        for c in chromium chromium-browser google-chrome; do
            H3_CHROMIUM=$(command -v "$c" 2>/dev/null) && break
        done
    fi
    [ -n "$H3_CHROMIUM" ] && [ -x "$H3_CHROMIUM" ] || skip "chromium not found (apt-get install chromium)"
}

# need_curl - Debian's curl CLI with HTTP/2 (HTTPS over TCP: --http2, --http1.1)
need_curl() {
    command -v curl >/dev/null 2>&1 || skip "curl not found (apt-get install curl)"
    curl --version | grep -qw HTTP2 || skip "this curl has no HTTP/2: $(curl --version | head -n1)"
}

# need_nghttp - nghttp2's HTTP/2 client (nghttp2-client)
need_nghttp() {
    command -v nghttp >/dev/null 2>&1 || skip "nghttp not found (apt-get install nghttp2-client)"
    nghttp --version 2>&1 | grep -q nghttp2 || skip "nghttp is not nghttp2's client"
}

# ---------------------------------------------------------------- TLS

# h3_cert [ec|rsa] - self-signed certificate for localhost, 127.0.0.1 and ::1
# in $T/cert.pem and $T/key.pem (ECDSA P-256 by default, or RSA 2048),
# replacing any that setup made. The key is 0600 and the runner's, as in
# production (the workers load it before they drop privileges).
h3_cert() {
    local kind=${1:-ec} alg
    need_openssl
    case $kind in
    ec) alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    rsa) alg=(-newkey rsa:2048) ;;
    *) die "h3_cert: unknown key type $kind" ;;
    esac
    (umask 077 && openssl req -x509 "${alg[@]}" -nodes -sha256 -days 2 \
        -keyout "$T/key.pem" -out "$T/cert.pem" -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
        -addext "extendedKeyUsage=serverAuth" >"$T/openssl.log" 2>&1) ||
        { cat "$T/openssl.log"; die "openssl could not make a certificate"; }
    chmod 600 "$T/key.pem"     # openssl keeps the mode of a file that existed
    chmod 644 "$T/cert.pem"
}

# h3_spki_hash - base64 SHA-256 of the certificate's public key (Chromium's
# --ignore-certificate-errors-spki-list)
h3_spki_hash() {
    openssl x509 -in "$T/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der |
        openssl dgst -sha256 -binary | base64
}

# ---------------------------------------------------------------- server

# h3_conf WORKERS [EXTRA LINES...] - the configuration with TLS: $T/cert.pem,
# $T/key.pem (added unless write_conf has them already) and the document
# root $T/htdocs that write_conf sets
h3_conf() {
    local workers=$1; shift
    write_conf "$workers" "$@"
    grep -q '^tls_certificate *=' "$CONF" || echo "tls_certificate = $T/cert.pem" >> "$CONF"
    grep -q '^tls_key *=' "$CONF" || echo "tls_key = $T/key.pem" >> "$CONF"
}

# h3_setup WORKERS [EXTRA LINES...] - the preamble of a test: the temp tree
# and a reserved port (setup), the EXIT trap that ends our background
# clients and then the suite (h3_trap), the certificate (h3_cert) and the
# configuration (h3_conf WORKERS EXTRA LINES...). Then the test adds its
# files and calls h3_start. EXTRA LINES are expanded before setup sets T:
# lines that name files in $T go to an h3_conf call after h3_setup.
h3_setup() { setup "$1"; h3_trap; h3_cert; h3_conf "$@"; }

# h3_url PATH - https://localhost:PORT/PATH (PATH without the leading /)
h3_url() { echo "https://localhost:$PORT/$1"; }

# h3get ARGS... - the pycurl client, trusting the test certificate and
# connecting to 127.0.0.1 for "localhost"
h3get() {
    "$H3_PYTHON" "$H3GET_PY" --cacert "$T/cert.pem" \
        --resolve "localhost:$PORT:127.0.0.1" "$@"
}

# h3_wait_ready [SECONDS] - until the server answers GET / over HTTP/3
# (SECONDS, default 5, scaled as wait_until's)
h3_wait_ready() {
    local secs out
    secs=$(scaled "${1:-5}")
    out=$(h3get --connect-timeout "$secs" retry "$(h3_url "")" "$secs" 2>&1)
    local rc=$?
    echo "$out" | tail -n 3 | while IFS= read -r l; do log "  $l"; done
    return $rc
}

# h3_start - start the suite and wait until it answers HTTP/3 (5 s)
h3_start() {
    start_suite || return 1
    if h3_wait_ready 5; then
        ok "server answers HTTP/3"
        return 0
    fi
    fail "server does not answer HTTP/3 on localhost:$PORT within $(scaled 5) s"
    return 1
}

# ---------------------------------------------------------------- gtlsclient

# gtls SECONDS ARGS... - gtlsclient bounded by timeout(1), which ends by
# itself when its streams are closed; its log (stderr) goes to stdout.
# Connects to 127.0.0.1 with SNI localhost; ARGS end with the URIs.
GTLS_OPTS=(--no-quic-dump --no-http-dump --exit-on-all-streams-close --sni=localhost --timeout=5s)
gtls() {
    local secs=$1; shift
    # --foreground: timeout stays in our process group (bg_kill reaches it);
    # the log (stderr) to our stdout, gtlsclient's stdout discarded
    # shellcheck disable=SC2069
    timeout --foreground -k 2 "$secs" "$H3_GTLSCLIENT" "${GTLS_OPTS[@]}" "$@" 2>&1 >/dev/null
}

# gtls_filter - keep the lines of a gtlsclient log a test looks at (the
# per-packet lines of a long download are hundreds of MB)
gtls_filter() {
    awk '
    /^I[0-9]/ {
        if (!hs && / pkt rx .*type=Handshake/) { print; fflush(); hs = 1 }
        else if (/NEW_CONNECTION_ID|RETIRE_CONNECTION_ID|CONNECTION_CLOSE|RESET_STREAM|stateless|key update confirmed|negotiated version|idle|[Cc]losing|[Dd]raining/) { print; fflush() }
        next
    }
    /^(Sent|Received) packet|^Set timer|^Timer has already/ { next }
    { print; fflush() }'
}

# gtls_server_cid LOG - the server's source CID (hex, no 0x) of the first
# Handshake packet the client received (the real one, after any Retry)
gtls_server_cid() {
    grep -m1 -E ' pkt rx .*type=Handshake' "$1" | sed -nE 's/.* scid=0x([0-9a-f]+).*/\1/p'
}

# cid_worker HEX - the worker instance that owns a quicd CID (byte index 1)
cid_worker() {
    local cid=$1
    [ ${#cid} -ge 4 ] || return 1
    echo $((16#${cid:2:2}))
}

# gtls_worker LOG - the worker that served the connection in LOG
gtls_worker() {
    local cid
    cid=$(gtls_server_cid "$1")
    [ -n "$cid" ] || return 1
    cid_worker "$cid"
}

# gtls_workers LOG... - the worker of each log, one a line ("-" if its
# server CID is not known yet); one process for all
gtls_workers() {
    awk 'function hexval(s,  hi, lo) {
             hi = index("0123456789abcdef", substr(s, 1, 1)) - 1
             lo = index("0123456789abcdef", substr(s, 2, 1)) - 1
             return hi * 16 + lo
         }
         !(FILENAME in w) && / pkt rx .*type=Handshake/ && match($0, / scid=0x[0-9a-f]+/) {
             cid = substr($0, RSTART + 8, RLENGTH - 8)
             if (length(cid) >= 4) w[FILENAME] = hexval(substr(cid, 3, 2))
         }
         END { for (i = 1; i < ARGC; i++) print ((ARGV[i] in w) ? w[ARGV[i]] : "-") }' "$@" 2>/dev/null
}

# gtls_status_count LOG CODE - how many responses with :status CODE
gtls_status_count() { grep -cE "^http: stream 0x[0-9a-f]+ \[:status: $2\]" "$1"; }

# ---------------------------------------------------------------- background

# bg CMD... - run CMD (a program or a shell function) in the background in
# its own process group (job control on for the fork), stdin /dev/null; its
# pid (= process group) is in BG_PID and added to BG_PIDS for bg_kill
bg() {
    set -m
    "$@" < /dev/null &
    BG_PID=$!
    set +m
    BG_PIDS="$BG_PIDS $BG_PID"
}

# bg_kill - end every background client we started (TERM, then KILL): the
# process groups, and any descendant that left its group
bg_kill() {
    local p kids=""
    for p in $BG_PIDS; do kids="$kids $(descendants "$p")"; done
    for p in $BG_PIDS; do kill -CONT -- "-$p" 2>/dev/null; kill -TERM -- "-$p" 2>/dev/null; done
    for p in $kids; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 20); do
        local alive=0
        for p in $BG_PIDS; do kill -0 -- "-$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in $BG_PIDS; do kill -KILL -- "-$p" 2>/dev/null; done
    for p in $kids; do kill -KILL "$p" 2>/dev/null; done
    BG_PIDS=""
}

# h3_trap - the EXIT trap: background clients first, then lib.sh's cleanup
h3_cleanup() {
    local rc=$?
    bg_kill
    (exit $rc)
    cleanup
}
h3_trap() { trap h3_cleanup EXIT; }

# h3_chrome ARGS... - headless Chromium forced onto HTTP/3 for localhost:PORT
# (trusting the test certificate by its SPKI hash), bounded by timeout(1);
# its own messages go to $T/chrome.log
h3_chrome() {
    timeout -k 5 90 "$H3_CHROMIUM" --headless=new --no-sandbox --disable-gpu \
        --no-first-run --no-default-browser-check --disable-extensions \
        --user-data-dir="$T/chrome" --enable-quic \
        --origin-to-force-quic-on="localhost:$PORT" \
        --host-resolver-rules="MAP localhost 127.0.0.1" \
        --ignore-certificate-errors-spki-list="$(h3_spki_hash)" \
        "$@" 2>>"$T/chrome.log"
}

# cpu_ns PID - the run time of process PID so far, in ns (/proc/PID/schedstat)
cpu_ns() { cut -d' ' -f1 "/proc/$1/schedstat"; }

# gap_stats FILE - the gaps between the responses tcpclient.py's h2 get
# printed in FILE ("resp N: status=200 ... at T s"; each request goes when
# the last response is in), in ms: "P99 MAX MEAN N", or "none"
gap_stats() {
    "$H3_PYTHON" -c '
import re, sys
t = [float(m.group(1)) for m in re.finditer(r"^resp \d+: status=200 .* at ([0-9.]+) s$", open(sys.argv[1]).read(), re.M)]
d = sorted((b - a) * 1000 for a, b in zip(t, t[1:]))
print("%.2f %.2f %.3f %d" % (d[min(len(d) - 1, int(len(d) * 0.99))], d[-1], sum(d) / len(d), len(d)) if d else "none")
' "$1"
}

# fields_request PROTO ARGS... - one request with the header fields of ARGS
# (NAME:VALUE, --path P, --authority A, --no-authority), raw: over HTTP/3
# with tests/tools/h3raw ("fields"), over HTTP/2 with tcpclient.py ("h2
# fields"); prints the client's lines (status=, rst=, reset stream=, ...)
fields_request() {
    local proto=$1 a=()
    shift
    if [ "$proto" = h3 ]; then
        "$QD_BUILDDIR/tests/tools/h3raw" --port "$PORT" --timeout 20 --wait 0.5 fields "$@" 2>&1
        return
    fi
    while [ $# -gt 0 ]; do
        case $1 in
        --path|--authority) a+=("$1" "$2"); shift 2 ;;
        --*) a+=("$1"); shift ;;
        *) a+=(--field "$1"); shift ;;
        esac
    done
    "$H3_PYTHON" "$QD_SRCDIR/tests/integration/tcpclient.py" --port "$PORT" --cacert "$T/cert.pem" \
        --timeout 20 h2 fields --wait 0.5 "${a[@]}" 2>&1
}
