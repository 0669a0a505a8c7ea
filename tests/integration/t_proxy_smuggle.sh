# SPDX-License-Identifier: MIT
# Request smuggling through the proxy (issue 24, part 6): malformed and
# ambiguous requests over HTTP/1.1 (raw bytes over TLS: tcpclient.py),
# HTTP/2 (raw frames: tcpclient.py) and HTTP/3 (tests/tools/h3raw), every
# one routed to a backend that records what reaches it
# (httpbackend.py --record). Each is refused by quicd (400/431/414, a
# reset stream, or the connection's end), nothing of them reaches the
# backend - neither the request nor one hidden behind it - and the good
# forms of the same requests do, in the framing quicd chose.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/proxylib.sh"
need_pycurl
TCPCLIENT="$QD_SRCDIR/tests/integration/tcpclient.py"
H3RAW="$QD_BUILDDIR/tests/tools/h3raw"
[ -x "$H3RAW" ] || die "$H3RAW is not built (make check builds it)"
h3_setup 1
new_port PA
backend a --port "$PA" --record "$T/a.rec"
cat > "$T/proxy" <<TBL
group app
server app 127.0.0.1:$PA
route */ app
TBL
h3_conf 1 "proxy_table = $T/proxy"
h3_start || finish

tc() { "$H3_PYTHON" "$TCPCLIENT" --port "$PORT" --cacert "$T/cert.pem" "$@"; }

# h1_bad NAME STATUS DATA - refused with STATUS and the connection closed
h1_bad() {
    local name=$1 want=$2 data=$3 out
    out=$(tc --timeout 30 h1 --responses 1 --wait 10 "$data" 2>&1)
    echo "$out" | grep -qx "status=$want" && echo "$out" | grep -q "^closed=yes" &&
        ok "HTTP/1.1 $name: $want and the connection closed" ||
        fail "HTTP/1.1 $name: want $want, got: $(echo "$out" | grep -E '^(status|closed|error)' | tr '\n' ' ')"
}
H='Host: localhost\r\n'
S='GET /m-smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n'
h1_bad cl-te 400 "POST /m-cl-te HTTP/1.1\\r\\n${H}Content-Length: 6\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n$S"
h1_bad te-cl 400 "POST /m-te-cl HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\nContent-Length: 50\\r\\n\\r\\n0\\r\\n\\r\\n$S"
h1_bad two-cl 400 "POST /m-two-cl HTTP/1.1\\r\\n${H}Content-Length: 0\\r\\nContent-Length: 44\\r\\n\\r\\n$S"
h1_bad cl-list 400 "POST /m-cl-list HTTP/1.1\\r\\n${H}Content-Length: 0, 44\\r\\n\\r\\n$S"
h1_bad cl-plus 400 "POST /m-cl-plus HTTP/1.1\\r\\n${H}Content-Length: +44\\r\\n\\r\\n$S"
h1_bad te-space-colon 400 "POST /m-te-space HTTP/1.1\\r\\n${H}Transfer-Encoding : chunked\\r\\n\\r\\n0\\r\\n\\r\\n$S"
h1_bad te-xchunked 400 "POST /m-te-x HTTP/1.1\\r\\n${H}Transfer-Encoding: xchunked\\r\\n\\r\\n0\\r\\n\\r\\n$S"
h1_bad te-two-lines 400 "POST /m-te-two HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\nTransfer-Encoding: identity\\r\\n\\r\\n0\\r\\n\\r\\n$S"
h1_bad te-http10 400 "POST /m-te-10 HTTP/1.0\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n$S"
h1_bad folding 400 "GET /m-folding HTTP/1.1\\r\\n${H}X-A: a\\r\\n Transfer-Encoding: chunked\\r\\n\\r\\n"
h1_bad two-hosts 400 "GET /m-two-hosts HTTP/1.1\\r\\n${H}Host: evil\\r\\n\\r\\n"
h1_bad no-host 400 "GET /m-no-host HTTP/1.1\\r\\n\\r\\n"
h1_bad value-cr 400 "GET /m-value-cr HTTP/1.1\\r\\n${H}X-A: a\\rTransfer-Encoding: chunked\\r\\n\\r\\n"
h1_bad value-nul 400 "GET /m-value-nul HTTP/1.1\\r\\n${H}X-A: a\\x00b\\r\\n\\r\\n"
h1_bad name-space 400 "GET /m-name-space HTTP/1.1\\r\\n${H}X Y: z\\r\\n\\r\\n"
# a bad chunk after the head went on: the connection ends, nothing behind it is read
for b in "3x\\r\\nabc" "fffffffffffffffffff\\r\\nabc" "-3\\r\\nabc"; do
    out=$(tc --timeout 30 h1 --wait 3 "POST /b-chunk HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\n$b\\r\\n0\\r\\n\\r\\n$S" 2>&1)
    echo "$out" | grep -q "^closed=yes" &&
        ok "HTTP/1.1 bad chunk \"$b\": the connection ends" ||
        fail "HTTP/1.1 bad chunk \"$b\": $(echo "$out" | grep -E '^(status|closed|responses)' | tr '\n' ' ')"
done

# HTTP/2 and HTTP/3: invalid values and connection-specific fields
ask() { fields_request "$@"; }
refused() {
    local what=$1 proto=$2 out
    shift 2
    out=$(ask "$proto" "$@")
    echo "$out" | grep -qE '^status=400( |$)|^rst=0x|^reset stream=' &&
        ok "$proto $what: refused" ||
        fail "$proto $what: not refused: $(echo "$out" | grep -E '^(status|rst|reset|goaway|close)' | tr '\n' ' ')"
}
refused "CR in a value" h2 --path /m-cr 'x-a:a\r\nTransfer-Encoding: chunked'
refused "LF in a value" h2 --path /m-lf 'x-a:a\nb'
refused "NUL in a value" h2 --path /m-nul 'x-a:a\x00b'
for p in h2 h3; do
    refused "transfer-encoding" $p --path /m-te 'transfer-encoding:chunked'
    refused "connection" $p --path /m-conn 'connection:close'
    refused "upgrade" $p --path /m-upgrade 'upgrade:websocket'
    refused "Host differs from :authority" $p --path /m-host-other 'host:other'
    refused "content-length without the body" $p --path /m-cl 'content-length:5'
    refused "space in :path" $p --path '/m-sp HTTP/1.1'
done

# the good forms reach the backend
out=$(tc --timeout 30 h1 --responses 1 --wait 1 "POST /ok-chunked HTTP/1.1\\r\\n${H}Transfer-Encoding: chunked\\r\\n\\r\\n3\\r\\nabc\\r\\n0\\r\\n\\r\\n" 2>&1)
echo "$out" | grep -qx "status=200" && ok "HTTP/1.1 a chunked POST (control): 200" ||
    fail "HTTP/1.1 chunked control: $(echo "$out" | grep -E '^(status|closed)' | tr '\n' ' ')"
out=$(ask h2 --path /ok-h2 'x-a:b')
echo "$out" | grep -qE '^status=200( |$)' && ok "h2 control: 200" || fail "h2 control: $out"
out=$(ask h3 --path /ok-h3 'x-a:b')
echo "$out" | grep -qE '^status=200( |$)' && ok "h3 control: 200" || fail "h3 control: $out"

# a coding besides chunked stays on the body, under quicd's own chunked
tc --timeout 30 h1 --responses 1 --wait 1 "POST /ok-gzip HTTP/1.1\\r\\n${H}Transfer-Encoding: gzip, chunked\\r\\n\\r\\n3\\r\\nabc\\r\\n0\\r\\n\\r\\n" > /dev/null 2>&1
te=$(/usr/bin/python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["target"] == "/ok-gzip":
        print([v for n, v in r["headers"] if n.lower() == "transfer-encoding"])' "$T/a.rec")
[ "$te" = "['gzip, chunked']" ] && ok "Transfer-Encoding: gzip, chunked reaches the backend as gzip, chunked" ||
    fail "gzip, chunked reached the backend as: $te"

sleep 0.5
n=$(grep -c '"/m-' "$T/a.rec")
[ "$n" -eq 0 ] && ok "nothing refused (or hidden behind it) reached the backend" ||
    fail "$n refused requests reached the backend: $(grep '"/m-' "$T/a.rec" | head -n 3)"
grep -q '"/ok-chunked"' "$T/a.rec" && grep -q '"/ok-h2"' "$T/a.rec" && grep -q '"/ok-h3"' "$T/a.rec" &&
    ok "the good requests reached it" || fail "the good requests are missing: $(cat "$T/a.rec")"
finish
