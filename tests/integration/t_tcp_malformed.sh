# SPDX-License-Identifier: MIT
# Malformed HTTPS over TCP (tcpclient.py sends the raw bytes over TLS):
# HTTP/1.1 with a bad request line, an oversized head (one field or many),
# an over-long target, and the request smuggling forms (Content-Length with
# Transfer-Encoding, two Content-Lengths, a Transfer-Encoding that does not
# end in chunked, obsolete line folding, a bad Content-Length) each get their
# error status (400, 431, 414) and a closed connection, and none reaches the
# app (the access log has no line for them; a good request's line shows the
# log works). HTTP/2: a bad preface gets GOAWAY PROTOCOL_ERROR, frames over
# 16384 bytes GOAWAY FRAME_SIZE_ERROR, floods of SETTINGS, PING and
# HEADERS+RST_STREAM (rapid reset) GOAWAY ENHANCE_YOUR_CALM, and the
# connection closes; the same frames below the flood limits do not; the
# stream beyond max_concurrent_streams is refused (REFUSED_STREAM). Then no
# daemon was restarted and h2, h1 and h3 requests work. Slow clients are cut
# off at tcp_header_timeout (2 s here, tcp_idle_timeout is 60 s): a request
# head sent a byte a second, TLS completed and then nothing (HTTP/1.1 and
# HTTP/2), a TCP connection without a ClientHello, a half ClientHello, an
# HTTP/2 HEADERS frame whose CONTINUATION never comes; a keep-alive
# connection between requests and a slow download are not. After a live
# reload to tcp_idle_timeout = 3s, a request body the client stops sending
# (HTTP/1.1 and HTTP/2) ends its connection after 3 s, and 5 s downloads
# do not.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
command -v curl >/dev/null 2>&1 && curl --version | grep -q HTTP2 ||
    skip "curl with HTTP/2 is needed"
TCPCLIENT="$QD_SRCDIR/tests/integration/tcpclient.py"
h3_setup 2
h3_conf 2 "access_log = $T/access.log" "tcp_header_timeout = 2s" "tcp_idle_timeout = 60s" \
    "max_concurrent_streams = 20"
D="$T/htdocs"
head -c 3000000 /dev/urandom > "$D/big.bin"
h3_start || finish

tc() { "$H3_PYTHON" "$TCPCLIENT" --port "$PORT" --cacert "$T/cert.pem" "$@"; }
# pids - role:instance:pid:restarts of every process
pids() {
    quicctl status --json | "$H3_PYTHON" -c '
import json, sys
print(" ".join("%s:%s:%s:%s" % (p["role"], p.get("instance", "-"), p["pid"], p.get("restarts"))
               for p in json.load(sys.stdin)["processes"]))'
}
PIDS_BEFORE=$(pids)
log "processes: $PIDS_BEFORE"

# ---- HTTP/1.1: each malformed request gets STATUS and the connection closes
# (the client waits for the response however long a loaded machine takes,
# then up to 10 s for the close, which comes with the response)
# h1_bad NAME STATUS DATA - DATA's path is /m-NAME (it must not reach the log)
h1_bad() {
    local name=$1 want=$2 data=$3 out
    out=$(tc --timeout 30 h1 --responses 1 --wait 10 "$data" 2>&1)
    echo "$out" > "$T/h1-$name.out"
    if echo "$out" | grep -qx "status=$want" && echo "$out" | grep -q "^closed=yes" &&
        echo "$out" | grep -qx "responses=1"; then
        ok "HTTP/1.1 $name: $want and the connection closed"
    else
        fail "HTTP/1.1 $name: want $want and a close, got: $(echo "$out" | grep -E '^(line|status|responses|closed|error)' | tr '\n' ' ')"
    fi
}
H='Host: localhost\r\n'
h1_bad badmethod 400 "G@T /m-badmethod HTTP/1.1\\r\\n$H\\r\\n"
h1_bad badversion 400 "GET /m-badversion HTTP/1.x\\r\\n$H\\r\\n"
h1_bad badline 400 "GET  /m-badline extra HTTP/1.1\\r\\n$H\\r\\n"
h1_bad bigfield 431 "GET /m-bigfield HTTP/1.1\\r\\n${H}X-Big: {{a*40000}}\\r\\n\\r\\n"
h1_bad manyfields 431 "GET /m-manyfields HTTP/1.1\\r\\n${H}{{X-Field: $(printf 'f%.0s' $(seq 100))\\r\\n*400}}\\r\\n"
h1_bad longtarget 414 "GET /m-longtarget{{a*40000}} HTTP/1.1\\r\\n$H\\r\\n"
h1_bad cl-te 400 "POST /m-cl-te HTTP/1.1\\r\\n${H}Content-Length: 5\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
h1_bad te-cl 400 "POST /m-te-cl HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\nContent-Length: 5\\r\\n\\r\\n0\\r\\n\\r\\n"
h1_bad two-cl 400 "POST /m-two-cl HTTP/1.1\\r\\n${H}Content-Length: 5\\r\\nContent-Length: 6\\r\\n\\r\\nabcdef"
h1_bad te-gzip 400 "POST /m-te-gzip HTTP/1.1\\r\\n${H}Transfer-Encoding: gzip\\r\\n\\r\\nabcdef"
h1_bad te-chunked-gzip 400 "POST /m-te-chunked-gzip HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked, gzip\\r\\n\\r\\nabcdef"
h1_bad folding 400 "GET /m-folding HTTP/1.1\\r\\n${H}X-Folded: a\\r\\n b\\r\\n\\r\\n"
h1_bad bad-cl 400 "POST /m-bad-cl HTTP/1.1\\r\\n${H}Content-Length: 1x\\r\\n\\r\\nabcdef"
# what http-parser lets through and RFC 9112 forbids (issue 24, part 6):
# nothing two parsers could read differently may reach the app or a backend
h1_bad no-host 400 "GET /m-no-host HTTP/1.1\\r\\n\\r\\n"
h1_bad two-hosts 400 "GET /m-two-hosts HTTP/1.1\\r\\n${H}Host: other\\r\\n\\r\\n"
h1_bad host-space 400 "GET /m-host-space HTTP/1.1\\r\\nHost: a b\\r\\n\\r\\n"
h1_bad host-path 400 "GET /m-host-path HTTP/1.1\\r\\nHost: a/b\\r\\n\\r\\n"
h1_bad host-userinfo 400 "GET /m-host-userinfo HTTP/1.1\\r\\nHost: user@localhost\\r\\n\\r\\n"
h1_bad host-badport 400 "GET /m-host-badport HTTP/1.1\\r\\nHost: localhost:44x\\r\\n\\r\\n"
h1_bad space-colon 400 "GET /m-space-colon HTTP/1.1\\r\\nHost : localhost\\r\\n\\r\\n"
h1_bad name-space 400 "GET /m-name-space HTTP/1.1\\r\\n${H}X Y: z\\r\\n\\r\\n"
h1_bad name-ctl 400 "GET /m-name-ctl HTTP/1.1\\r\\n${H}X\\x01Y: z\\r\\n\\r\\n"
h1_bad value-cr 400 "GET /m-value-cr HTTP/1.1\\r\\n${H}X-A: a\\rb\\r\\n\\r\\n"
h1_bad value-nul 400 "GET /m-value-nul HTTP/1.1\\r\\n${H}X-A: a\\x00b\\r\\n\\r\\n"
h1_bad te-http10 400 "POST /m-te-http10 HTTP/1.0\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
h1_bad te-chunked-twice 400 "POST /m-te-chunked-twice HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked, chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
h1_bad te-two-lines 400 "POST /m-te-two-lines HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
h1_bad te-identity 400 "POST /m-te-identity HTTP/1.1\\r\\n${H}Transfer-Encoding: identity\\r\\nContent-Length: 3\\r\\n\\r\\nabc"
h1_bad cl-list 400 "POST /m-cl-list HTTP/1.1\\r\\n${H}Content-Length: 5, 5\\r\\n\\r\\nabcde"
h1_bad cl-plus 400 "POST /m-cl-plus HTTP/1.1\\r\\n${H}Content-Length: +5\\r\\n\\r\\nabcde"
h1_bad fragment 400 "GET /m-fragment#x HTTP/1.1\\r\\n$H\\r\\n"
# a chunked body that goes wrong after the head reached the app: the
# connection ends there, and the request behind it is never read
for b in "3x\\r\\nabc" "fffffffffffffffffff\\r\\nabc" "-3\\r\\nabc"; do
    out=$(tc --timeout 30 h1 --wait 3 "POST /b-chunk HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\n$b\\r\\n0\\r\\n\\r\\nGET /m-behind-chunk HTTP/1.1\\r\\n$H\\r\\n" 2>&1)
    echo "$out" | grep -q "^closed=yes" && ! echo "$out" | grep -q "^status=404" &&
        ok "HTTP/1.1 bad chunk \"$b\": the connection ends, the request behind it is not read" ||
        fail "HTTP/1.1 bad chunk \"$b\": $(echo "$out" | grep -E '^(status|closed|responses)' | tr '\n' ' ')"
done

# The good forms of the same: answered by the app and kept alive (the log
# has them): the response, then 1 s in which the server does not close.
h1_good() {
    local name=$1 data=$2 out
    out=$(tc --timeout 30 h1 --responses 1 --wait 1 "$data" 2>&1)
    if echo "$out" | grep -qx "status=$3" && echo "$out" | grep -qx "closed=no"; then
        ok "HTTP/1.1 $name (control): $3, connection kept"
    else
        fail "HTTP/1.1 $name (control): want $3, kept; got $(echo "$out" | grep -E '^(line|status|closed|error)' | tr '\n' ' ')"
    fi
}
h1_good te-gzip-chunked "POST /ok-te-gzip-chunked HTTP/1.1\\r\\n${H}Transfer-Encoding: gzip, chunked\\r\\n\\r\\n3\\r\\nabc\\r\\n0\\r\\n\\r\\n" 405
h1_good fields-under-32k "GET /ok-fields HTTP/1.1\\r\\n${H}{{X-Field: $(printf 'f%.0s' $(seq 100))\\r\\n*200}}\\r\\n" 404
h1_good host-port "GET /ok-host-port HTTP/1.1\\r\\nHost: localhost:443\\r\\n\\r\\n" 404
h1_good host-v6 "GET /ok-host-v6 HTTP/1.1\\r\\nHost: [::1]:443\\r\\n\\r\\n" 404
h1_good te-case "POST /ok-te-case HTTP/1.1\\r\\n${H}Transfer-Encoding: Chunked\\r\\n\\r\\n0\\r\\n\\r\\n" 405
h1_good absolute-form "GET https://localhost/ok-absolute-form HTTP/1.1\\r\\n$H\\r\\n" 404
h1_good lf-only "GET /ok-lf-only HTTP/1.1\\nHost: localhost\\n\\n" 404
out=$(tc --timeout 30 h1 --responses 1 --wait 3 "GET /ok-http10 HTTP/1.0\\r\\n\\r\\n" 2>&1)
echo "$out" | grep -qx "status=404" && ok "HTTP/1.0 without Host (control): 404" ||
    fail "HTTP/1.0 without Host: $(echo "$out" | grep -E '^(status|closed)' | tr '\n' ' ')"
wait_until 5 grep -q '"GET /ok-fields ' "$T/access.log" &&
    grep -q '"GET /ok-host-v6 ' "$T/access.log" && grep -q '"GET /ok-absolute-form ' "$T/access.log" &&
    grep -q '"POST /ok-te-gzip-chunked ' "$T/access.log" &&
    ok "the access log has the good requests" ||
    fail "the access log lacks the good requests: $(cat "$T/access.log" 2>/dev/null)"
n=$(grep -c '/m-' "$T/access.log")
[ "$n" -eq 0 ] && ok "no malformed HTTP/1.1 request reached the app (access log)" ||
    fail "$n malformed requests in the access log: $(grep '/m-' "$T/access.log")"

# ---- HTTP/2
# h2_case MODE N WANT [OPTION...] - WANT: a GOAWAY code (0x1, 0x6, 0xb) and a
# close (waited for up to 10 s of quiet), or "none": OPTIONs (--sync,
# --until NAME=N) make the client wait until the server has read and
# answered the frames, then 3 s of quiet show no GOAWAY and no close
h2_case() {
    local mode=$1 n=$2 want=$3 out what wait=10
    shift 3
    [ "$want" = none ] && wait=3
    out=$(tc --timeout 30 h2 "$mode" ${n:+"$n"} --wait "$wait" "$@" 2>&1)
    what="HTTP/2 $mode${n:+ $n}"
    echo "$out" > "$T/h2-$mode$n.out"
    if ! echo "$out" | grep -qx "alpn=h2"; then
        fail "$what: no HTTP/2 connection: $(echo "$out" | tr '\n' ' ')"
    elif [ "$want" = none ]; then
        if echo "$out" | grep -q "^goaway=" || ! echo "$out" | grep -qx "closed=no"; then
            fail "$what: want no GOAWAY and no close: $(echo "$out" | grep -E '^(goaway|closed|error)' | tr '\n' ' ')"
        else
            ok "$what: no GOAWAY, the connection stays open"
        fi
    elif echo "$out" | grep -q "^goaway=$want " && echo "$out" | grep -q "^closed=yes" &&
        [ "$(echo "$out" | grep -c '^goaway=')" -eq 1 ]; then
        ok "$what: GOAWAY $want and the connection closed"
    else
        fail "$what: want GOAWAY $want and a close, got: $(echo "$out" | grep -E '^(goaway|frames|closed|error|send)' | tr '\n' ' ')"
    fi
}
h2_case badpreface "" 0x1
h2_case bigdata "" 0x6
h2_case bigheaders "" 0x6
h2_case settings 150 0xb
h2_case settings 50 none --sync
h2_case ping 150 0xb
h2_case ping 50 none --until PING=50
grep -q "^frames: .*PING=50" "$T/h2-ping50.out" && ok "50 PINGs got 50 acknowledgements" ||
    fail "PING acks: $(grep frames "$T/h2-ping50.out")"
h2_case rapidreset 300 0xb
h2_case rapidreset 50 none --sync
h2_case streams 21 none --sync --until RST_STREAM=1
grep -qx "rst=1 refused=1" "$T/h2-streams21.out" &&
    ok "HTTP/2: the 21st concurrent stream is refused (max_concurrent_streams = 20)" ||
    fail "21 streams: $(grep -E '^(rst|frames)' "$T/h2-streams21.out" | tr '\n' ' ')"
h2_case streams 20 none --sync
grep -qx "rst=0 refused=0" "$T/h2-streams20.out" && ok "HTTP/2: 20 concurrent streams are taken" ||
    fail "20 streams: $(grep -E '^(rst|frames)' "$T/h2-streams20.out" | tr '\n' ' ')"

# ---- slow clients: cut off at tcp_header_timeout (2 s), well before tcp_idle_timeout (60 s)
bg tc --timeout 30 slow "GET /m-slow HTTP/1.1\\r\\n${H}X-Pad: {{a*30}}\\r\\n\\r\\n" > "$T/slow.out" 2>&1
bg tc --timeout 30 idle > "$T/idle-h1.out" 2>&1
bg tc --timeout 30 --alpn h2 idle > "$T/idle-h2.out" 2>&1
bg tc --timeout 30 idle --tcp-only > "$T/idle-tcp.out" 2>&1
bg tc --timeout 30 idle --half > "$T/idle-half.out" 2>&1
bg tc --timeout 30 h2 slowheaders > "$T/slowheaders.out" 2>&1
# controls: a kept-alive connection between requests, a 3 s download
bg tc --timeout 30 h1get /index.html - --then /index.html - > "$T/keepalive.out" 2>&1
bg tc --timeout 30 h2 get /big.bin "$T/big.h2" --rate 1000000 > "$T/slowdl.out" 2>&1
alldone() { local p; for p in $BG_PIDS; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
wait_until 20 alldone || fail "slow clients still running after 20 s"
# cut WHAT FILE - FILE says closed=yes after 1.5 to 15 s: not before the
# 2 s of tcp_header_timeout (the client's clock starts no later than the
# server's), and, however late a loaded machine's sweep comes, long before
# the 60 s of tcp_idle_timeout
cut_off() {
    local t
    t=$(sed -n 's/^closed=yes after \([0-9.]*\) s.*/\1/p' "$2")
    if [ -n "$t" ] && awk -v t="$t" 'BEGIN { exit !(t >= 1.5 && t <= 15) }'; then
        ok "$1: closed after $t s (tcp_header_timeout 2 s)"
    else
        fail "$1: want a close after about 2 s: $(tr '\n' ' ' < "$2")"
    fi
}
cut_off "a request head sent a byte a second" "$T/slow.out"
cut_off "TLS with ALPN http/1.1, then nothing" "$T/idle-h1.out"
cut_off "TLS with ALPN h2, then no preface" "$T/idle-h2.out"
cut_off "a TCP connection without a ClientHello" "$T/idle-tcp.out"
cut_off "half a ClientHello" "$T/idle-half.out"
cut_off "HTTP/2 HEADERS without its CONTINUATION" "$T/slowheaders.out"
grep -qx "alpn=http/1.1" "$T/idle-h1.out" && grep -qx "alpn=h2" "$T/idle-h2.out" ||
    fail "ALPN of the idle clients: $(cat "$T/idle-h1.out" "$T/idle-h2.out" | tr '\n' ' ')"
[ "$(grep -c '^resp [12]: status=200 size=32 ' "$T/keepalive.out")" -eq 2 ] &&
    grep -qx "after: open" "$T/keepalive.out" &&
    ok "a keep-alive connection idle for 3 s between requests stays open" ||
    fail "keep-alive control: $(tr '\n' ' ' < "$T/keepalive.out")"
grep -q "^resp 1: status=200 size=3000000 " "$T/slowdl.out" && cmp -s "$D/big.bin" "$T/big.h2" &&
    ok "a 3 s HTTP/2 download is not cut off" || fail "slow download: $(tr '\n' ' ' < "$T/slowdl.out")"
n=$(grep -c '/m-' "$T/access.log")
[ "$n" -eq 0 ] && ok "no slow request reached the app" || fail "access log: $(grep '/m-' "$T/access.log")"

# ---- nothing was restarted, and every protocol still works
PIDS_AFTER=$(pids)
[ "$PIDS_AFTER" = "$PIDS_BEFORE" ] && ok "every daemon has its pid and no restart" ||
    fail "processes changed: $PIDS_BEFORE -> $PIDS_AFTER"
all_running && ok "every daemon running" || fail "$(quicctl status)"
CURL=(curl -sS --max-time 30 --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1")
for v in 2 1.1; do
    out=$("${CURL[@]}" "--http$v" -o "$T/idx.$v" -w '%{http_code} %{http_version}' "$(h3_url index.html)" 2>&1)
    [ "$out" = "200 $v" ] && cmp -s "$D/index.html" "$T/idx.$v" &&
        ok "a request over HTTP/$v works afterwards" || fail "HTTP/$v afterwards: $out"
done
out=$(h3get fetch "$(h3_url index.html)" "$T/idx.3" 2>&1)
echo "$out" | grep -q "status=200 version=3" && cmp -s "$D/index.html" "$T/idx.3" &&
    ok "a request over HTTP/3 works afterwards" || fail "HTTP/3 afterwards: $out"

# ---- a request body the client stops sending: closed after tcp_idle_timeout
# (3 s from a live reload); downloads longer than that are not
h3_conf 2 "access_log = $T/access.log" "tcp_header_timeout = 2s" "tcp_idle_timeout = 3s" \
    "max_concurrent_streams = 20"
out=$(quicctl reload 2>&1) && ok "reload to tcp_idle_timeout = 3s: $out" || fail "reload: $out"
bg tc --timeout 40 h1 --wait 30 "POST /api/echo HTTP/1.1\\r\\n${H}Content-Length: 100\\r\\n\\r\\n0123456789" > "$T/stall-h1.out" 2>&1
bg tc --timeout 40 h2 streams 3 --wait 30 > "$T/stall-h2.out" 2>&1
bg tc --timeout 40 h1get /big.bin "$T/big.h1b" --rate 600000 > "$T/dl-h1b.out" 2>&1
bg tc --timeout 40 h2 get /big.bin "$T/big.h2b" --rate 600000 > "$T/dl-h2b.out" 2>&1
wait_until 20 alldone || fail "clients still running after 20 s"
# idle_cut WHAT FILE - FILE says closed=yes after 2.5 to 20 s: not before
# tcp_idle_timeout (3 s), and, however late a loaded machine's sweep comes,
# well before the client's 30 s (without the timeout it stays open forever)
idle_cut() {
    local t
    t=$(sed -n 's/^closed=yes after \([0-9.]*\) s.*/\1/p' "$2")
    if [ -n "$t" ] && awk -v t="$t" 'BEGIN { exit !(t >= 2.5 && t <= 20) }'; then
        ok "$1: closed after $t s (tcp_idle_timeout 3 s)"
    else
        fail "$1: want a close after about 3 s: $(tr '\n' ' ' < "$2")"
    fi
}
idle_cut "an HTTP/1.1 request body stalled after 10 of 100 bytes" "$T/stall-h1.out"
idle_cut "HTTP/2 request streams whose bodies never come" "$T/stall-h2.out"
grep -q "^resp 1: status=200 size=3000000 " "$T/dl-h1b.out" && cmp -s "$D/big.bin" "$T/big.h1b" &&
    ok "a 5 s HTTP/1.1 download outlasts tcp_idle_timeout" || fail "HTTP/1.1 download: $(tr '\n' ' ' < "$T/dl-h1b.out")"
grep -q "^resp 1: status=200 size=3000000 " "$T/dl-h2b.out" && cmp -s "$D/big.bin" "$T/big.h2b" &&
    ok "a 5 s HTTP/2 download outlasts tcp_idle_timeout" || fail "HTTP/2 download: $(tr '\n' ' ' < "$T/dl-h2b.out")"
# (the master counts a reload among its restarts: compare the pids only)
only_pids() { echo "$1" | tr ' ' '\n' | cut -d: -f1-3; }
[ "$(only_pids "$(pids)")" = "$(only_pids "$PIDS_BEFORE")" ] && ok "every daemon still has its pid" ||
    fail "processes changed: $PIDS_BEFORE -> $(pids)"
finish
