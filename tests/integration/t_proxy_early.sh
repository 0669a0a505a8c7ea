# SPDX-License-Identifier: MIT
# What passes through the proxy besides the final answer (issue 24, part
# 4): a request that came in 0-RTT reaches the upstream with
# "Early-Data: 1" (RFC 8470; ngtcp2's gtlsclient resumes and sends its GET
# in 0-RTT), and a 425 Too Early from the upstream is not shown to the
# client: quicd sends the request again, without Early-Data, once the
# handshake is complete, and the client gets the second answer (the
# backend records both); a request after the handshake has no Early-Data.
# 103 Early Hints from the upstream reach HTTP/3 and HTTP/2 clients before
# the final answer; "Expect: 100-continue" from an HTTP/2 client reaches
# the upstream, whose 100 lets the client send its body. A client in a
# "trust" network keeps its X-Forwarded-* and Forwarded, extended.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/proxylib.sh"
need_gtlsclient
need_pycurl
need_curl
h3_setup 1 "early_data = yes"
new_port PA
backend a --port "$PA" --record "$T/a.rec"
cat > "$T/proxy" <<TBL
group app
server app 127.0.0.1:$PA
route */app/ app strip
trust 127.0.0.0/8 ::1
TBL
h3_conf 1 "proxy_table = $T/proxy"
h3_start || finish

# recs TARGET - "early-data" values of the backend's requests for TARGET, one per line ("-": none)
recs() {
    /usr/bin/python3 -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["target"] == sys.argv[2]:
        v = [v for n, v in r["headers"] if n.lower() == "early-data"]
        print(v[0] if v else "-")' "$T/a.rec" "$1"
}

S="$T/session.pem" P="$T/tp.pem"
L="$T/ticket.log"
gtls 30 --session-file="$S" --tp-file="$P" --wait-for-ticket --download="$T" 127.0.0.1 "$PORT" \
    "$(h3_url app/name)" > "$L"
[ -s "$S" ] && [ -s "$P" ] || die "no session ticket from quicd: $(tail -n 5 "$L")"
[ "$(recs /name)" = - ] && ok "a request after the handshake carries no Early-Data" ||
    fail "after the handshake: early-data $(recs /name)"

# a GET in 0-RTT: Early-Data: 1 at the backend
L="$T/early.log"
mkdir -p "$T/dl1"
gtls 30 --session-file="$S" --tp-file="$P" --download="$T/dl1" 127.0.0.1 "$PORT" "$(h3_url app/headers)" > "$L"
zr=$(grep -cE ' frm tx [0-9]+ 0RTT STREAM\([^)]*\) id=0x0 ' "$L")
if [ "$zr" -gt 0 ] && ! grep -q "Early data was rejected" "$L"; then
    [ "$(recs /headers)" = 1 ] && ok "a GET sent in 0-RTT reaches the upstream with Early-Data: 1" ||
        fail "0-RTT GET: early-data at the backend: '$(recs /headers)'"
else
    fail "the GET was not sent in 0-RTT or 0-RTT was rejected ($zr 0-RTT frames)"
fi

# a 425 from the upstream is replayed after the handshake
L="$T/425.log"
mkdir -p "$T/dl2"
gtls 30 --session-file="$S" --tp-file="$P" --download="$T/dl2" 127.0.0.1 "$PORT" "$(h3_url app/early)" > "$L"
got=$(recs /early | tr '\n' ' ')
if [ "$(gtls_status_count "$L" 200)" = 1 ] && [ "$(gtls_status_count "$L" 425)" = 0 ] &&
    [ "$(cat "$T/dl2/early" 2>/dev/null)" = late ] && [ "$got" = "1 - " ]; then
    ok "a 425 from the upstream is sent again after the handshake: the client gets 200 (backend saw: $got)"
else
    fail "425 replay: statuses 200=$(gtls_status_count "$L" 200) 425=$(gtls_status_count "$L" 425), body '$(cat "$T/dl2/early" 2>/dev/null)', backend saw: $got"
fi

# a client in a trust network (another proxy): its forwarded fields are kept and extended
h3get req -H "X-Forwarded-For: 192.0.2.1" -H "X-Forwarded-Proto: http" -H "Forwarded: for=192.0.2.1" \
    "$(h3_url app/trusted)" "$T/trusted" > /dev/null 2>&1
fields=$(/usr/bin/python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["target"] == "/trusted"][-1]
h = {n.lower(): v for n, v in r["headers"]}
print("%s|%s|%s" % (h.get("x-forwarded-for"), h.get("x-forwarded-proto"), h.get("forwarded")))' "$T/a.rec")
[ "$fields" = "192.0.2.1, 127.0.0.1|http|for=192.0.2.1, for=127.0.0.1;host=\"localhost:$PORT\";proto=https" ] &&
    ok "a trusted client's X-Forwarded-For, -Proto and Forwarded are kept and extended" ||
    fail "trusted forwarded fields at the backend: $fields"

# 103 Early Hints before the final answer
h3get req "$(h3_url app/hints)" "$T/hints" > "$T/hints.h3" 2>&1
grep -q "^line: HTTP/3 103" "$T/hints.h3" && grep -qi "^line: link: </style.css>; rel=preload" "$T/hints.h3" &&
    grep -q "status=200" "$T/hints.h3" && ok "h3: 103 Early Hints passed before the 200" ||
    fail "h3: hints: $(grep -E '^line: HTTP|status=' "$T/hints.h3" | tr '\n' ' ')"
curl -sS --max-time 20 --http2 --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1" -D "$T/hints.h2" \
    -o /dev/null "https://localhost:$PORT/app/hints"
grep -q "^HTTP/2 103" "$T/hints.h2" && grep -q "^HTTP/2 200" "$T/hints.h2" &&
    ok "h2: 103 Early Hints passed before the 200" || fail "h2: hints: $(grep '^HTTP' "$T/hints.h2" | tr '\r\n' '  ')"

# Expect: 100-continue from an HTTP/2 client: the upstream's 100, then the body
head -c 200000 /dev/urandom > "$T/up.bin"
curl -sS --max-time 20 --http2 --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1" -D "$T/cont.h2" \
    -H "Expect: 100-continue" --expect100-timeout 10 --data-binary "@$T/up.bin" -o "$T/cont" \
    "https://localhost:$PORT/app/continue"
grep -q "^HTTP/2 100" "$T/cont.h2" && [ "$(cat "$T/cont")" = 200000 ] &&
    ok "h2: Expect: 100-continue reaches the upstream, its 100 reaches the client, the body follows" ||
    fail "h2: 100-continue: $(grep '^HTTP' "$T/cont.h2" | tr '\r\n' '  ') body '$(cat "$T/cont")'"
finish
