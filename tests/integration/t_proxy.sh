# SPDX-License-Identifier: MIT
# The reverse proxy (issue 24): one table of requests through quicd to two
# Python backends of the test helpers (TCP, and a Unix socket that only
# the upstream daemon can reach: the worker is chrooted) and to Debian's
# nginx (TCP and a Unix socket, kept alive; its ETag, Last-Modified and
# 304 passed through), over HTTP/3
# (pycurl), HTTP/2 and HTTP/1.1 (Debian's curl over TLS). Each answer is
# compared with the backend's own, asked directly: status, the bytes
# (sha256), HEAD's length, the request as the backend saw it (prefix
# stripped, Host, X-Forwarded-For/-Proto/-Host, Forwarded, Via, no
# client-sent X-Forwarded-For, cookies joined), trailers, the access log's upstream
# fields, uploads with a length
# and without one (chunked towards the backend), a chunked answer, 404
# passed through, and a route to "local" still served by quicd.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/proxylib.sh"
need_pycurl
need_curl
h3_setup 1
new_port PA
new_port PN
chmod o+x "$T" # the daemons' user reaches the Unix sockets in it
backend a --port "$PA" --record "$T/a.rec"
backend b --unix "$T/b.sock" --record "$T/b.rec"
# Debian's nginx as a backend: HTTP/1.1 keep-alive on TCP and on a Unix socket
nginx_start "$T/nginx" '$request_uri $connection $connection_requests' "
	server {
		listen 127.0.0.1:$PN;
		listen unix:$T/nginx.sock;
		root $T/nginx/www;
	}"
head -c 300000 /dev/urandom > "$T/nginx/www/n.bin"
chmod -R o+rX "$T/nginx/www"
nginx_up() { [ -S "$T/nginx.sock" ] && curl -s -o /dev/null "http://127.0.0.1:$PN/n.bin"; }
wait_until 10 nginx_up || die "nginx did not start: $(cat "$T/nginx/nginx.out" "$T/nginx/logs/error.log")"

cat > "$T/proxy" <<TBL
group app
server app 127.0.0.1:$PA
group sock
server sock unix:$T/b.sock
route */app/ app strip
route */sock/ sock strip
route */whole/ app
route */app/local/ local
group ng
server ng 127.0.0.1:$PN
group ngs
server ngs unix:$T/nginx.sock
route */ng/ ng strip
route */ngs/ ngs strip
TBL
echo "proxy_table = $T/proxy" >> "$CONF"
echo "access_log = $T/access.log" >> "$CONF"
mkdir -p "$T/htdocs/app/local"
echo "served by quicd" > "$T/htdocs/app/local/file.txt"
h3_start || finish

CURL=(curl -sS --max-time 30 --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1")
# ask PROTO OUT ARGS... URLPATH - one request; the head goes to OUT.h, the body to OUT
ask() {
    local proto=$1 out=$2
    shift 2
    local path=${!#} args=("${@:1:$(($# - 1))}")
    case $proto in
    h3) h3get req "${args[@]}" "$(h3_url "${path#/}")" "$out" > "$out.h" 2>&1 ;;
    h2) "${CURL[@]}" --http2 -D "$out.h" -o "$out" "${args[@]}" "https://localhost:$PORT$path" ;;
    h1) "${CURL[@]}" --http1.1 -D "$out.h" -o "$out" "${args[@]}" "https://localhost:$PORT$path" ;;
    esac
}
# status OUT - the final status of that answer
status() { grep -aoE '^(HTTP/[0-9.]+ [0-9]{3}|status=[0-9]+)' "$1.h" | tail -n 1 | grep -oE '[0-9]{3}$'; }
# field OUT NAME - a response field's value
field() { grep -aiE "^(line: )?$2:" "$1.h" | tail -n 1 | sed -E 's/^(line: )?[^:]*: *//' | tr -d '\r'; }
# direct OUT PATH [curl args] - the backend's own answer
direct() { local out=$1 path=$2; shift 2; curl -sS --max-time 30 -o "$out" -D "$out.h" "$@" "http://127.0.0.1:$PA$path"; }
sha() { sha256sum < "$1" | cut -d' ' -f1; }
# last_rec FILE - the last request the backend recorded, as "method target" and JSON
last_rec() { tail -n 1 "$1"; }
rec_field() {
    /usr/bin/python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
if sys.argv[2] == "target":
    print(r["target"])
elif sys.argv[2] == "chunked":
    print(r["chunked"])
elif sys.argv[2] == "body_len":
    print(r["body_len"])
else:
    print("\n".join(v for n, v in r["headers"] if n.lower() == sys.argv[2]))
' "$1" "$2"
}

head -c 1048576 /dev/urandom > "$T/up.bin"
UP_SHA=$(sha "$T/up.bin")
direct "$T/d.bytes" /bytes/1000000
direct "$T/d.chunked" /chunked/300000

for p in h3 h2 h1; do
    o="$T/$p"
    via=$(case $p in h3) echo HTTP/3 ;; h2) echo HTTP/2 ;; h1) echo HTTP/1.1 ;; esac)
    # a small GET: the name of the backend, the prefix stripped
    ask $p "$o.name" /app/name
    [ "$(status "$o.name")" = 200 ] && [ "$(cat "$o.name")" = a ] &&
        [ "$(rec_field "$T/a.rec" target)" = /name ] &&
        ok "$p: GET /app/name -> backend a saw /name" ||
        fail "$p: GET /app/name: $(status "$o.name") '$(head -c 100 "$o.name")' target $(rec_field "$T/a.rec" target)"
    # the request as the backend saw it
    ask $p "$o.hdr" -H "X-Forwarded-For: 6.6.6.6" -H "Cookie: a=1" -H "X-Custom: yes" /app/headers
    host=$(rec_field "$T/a.rec" host)
    xff=$(rec_field "$T/a.rec" x-forwarded-for)
    xfp=$(rec_field "$T/a.rec" x-forwarded-proto)
    xfh=$(rec_field "$T/a.rec" x-forwarded-host)
    fwd=$(rec_field "$T/a.rec" forwarded)
    v=$(rec_field "$T/a.rec" via)
    cu=$(rec_field "$T/a.rec" x-custom)
    ck=$(rec_field "$T/a.rec" cookie)
    if [ "$host" = "localhost:$PORT" ] && [ "$xff" = 127.0.0.1 ] && [ "$xfp" = https ] &&
        [ "$xfh" = "localhost:$PORT" ] && [ "$v" = "$via quicd" ] && [ "$cu" = yes ] &&
        [ "$ck" = "a=1" ] && echo "$fwd" | grep -q '^for=127.0.0.1;host="localhost:'"$PORT"'";proto=https$'; then
        ok "$p: forwarded fields set (Host, X-Forwarded-*, Forwarded, Via $via quicd), the client's X-Forwarded-For dropped"
    else
        fail "$p: fields at the backend: host=$host xff=$xff xfp=$xfp xfh=$xfh fwd=$fwd via=$v custom=$cu cookie=$ck"
    fi
    # a download: the same bytes as the backend's
    ask $p "$o.bytes" /app/bytes/1000000
    [ "$(status "$o.bytes")" = 200 ] && [ "$(sha "$o.bytes")" = "$(sha "$T/d.bytes")" ] &&
        [ "$(field "$o.bytes" content-length)" = 1000000 ] &&
        ok "$p: 1 MB download identical, content-length passed" ||
        fail "$p: download: $(status "$o.bytes") size $(stat -c %s "$o.bytes") length $(field "$o.bytes" content-length)"
    # a chunked answer
    ask $p "$o.chunked" /app/chunked/300000
    [ "$(status "$o.chunked")" = 200 ] && [ "$(sha "$o.chunked")" = "$(sha "$T/d.chunked")" ] &&
        ok "$p: chunked answer identical" ||
        fail "$p: chunked: $(status "$o.chunked") size $(stat -c %s "$o.chunked")"
    # HEAD: the length, no body
    if [ $p = h3 ]; then ask $p "$o.head" -X HEAD /app/bytes/5000; else ask $p "$o.head" --head /app/bytes/5000; fi
    [ "$(status "$o.head")" = 200 ] && [ "$(field "$o.head" content-length)" = 5000 ] &&
        { [ ! -s "$o.head" ] || cmp -s "$o.head" "$o.head.h"; } && ok "$p: HEAD: content-length 5000, no body" ||
        fail "$p: HEAD: $(status "$o.head") length $(field "$o.head" content-length) size $(stat -c %s "$o.head" 2>/dev/null)"
    # an upload with a length
    if [ $p = h3 ]; then
        ask $p "$o.up" -X POST --data-file "$T/up.bin" /app/sha256
    else
        ask $p "$o.up" --data-binary "@$T/up.bin" /app/sha256
    fi
    [ "$(status "$o.up")" = 200 ] && [ "$(cat "$o.up")" = "1048576 $UP_SHA" ] &&
        [ "$(rec_field "$T/a.rec" chunked)" = False ] &&
        ok "$p: 1 MiB upload with a length arrives whole" ||
        fail "$p: upload: $(status "$o.up") '$(head -c 100 "$o.up")' chunked=$(rec_field "$T/a.rec" chunked)"
    # an upload without a length: chunked towards the backend
    if [ $p = h3 ]; then
        ask $p "$o.upc" -X POST --stream-file "$T/up.bin" /app/sha256
    elif [ $p = h2 ]; then
        ask $p "$o.upc" -X POST -T - /app/sha256 < "$T/up.bin"
    else
        ask $p "$o.upc" -X POST -H "Transfer-Encoding: chunked" -T - /app/sha256 < "$T/up.bin"
    fi
    [ "$(status "$o.upc")" = 200 ] && [ "$(cat "$o.upc")" = "1048576 $UP_SHA" ] &&
        [ "$(rec_field "$T/a.rec" chunked)" = True ] &&
        ok "$p: upload without a length goes out chunked and arrives whole" ||
        fail "$p: upload without length: $(status "$o.upc") '$(head -c 100 "$o.upc")' chunked=$(rec_field "$T/a.rec" chunked)"
    # an answer's trailers (a chunked body from the backend)
    ask $p "$o.trl" /app/trailers
    [ "$(status "$o.trl")" = 200 ] && [ "$(cat "$o.trl")" = body ] && [ "$(field "$o.trl" x-trailer)" = yes ] &&
        ok "$p: the answer's trailers are kept" ||
        fail "$p: trailers: $(status "$o.trl") '$(cat "$o.trl")' x-trailer='$(field "$o.trl" x-trailer)'"
    # a status passed through
    ask $p "$o.404" /app/status/404
    [ "$(status "$o.404")" = 404 ] && ok "$p: 404 passed through" || fail "$p: /status/404 gave $(status "$o.404")"
    # a route without strip
    ask $p "$o.whole" /whole/name
    [ "$(rec_field "$T/a.rec" target)" = /whole/name ] && ok "$p: a route without strip keeps the path" ||
        fail "$p: /whole/name reached the backend as $(rec_field "$T/a.rec" target)"
    # the Unix-socket backend
    ask $p "$o.sock" /sock/name
    [ "$(status "$o.sock")" = 200 ] && [ "$(cat "$o.sock")" = b ] &&
        ok "$p: a Unix-socket backend through the upstream daemon" ||
        fail "$p: /sock/name: $(status "$o.sock") '$(head -c 100 "$o.sock")'"
    # Debian's nginx behind, over TCP and a Unix socket
    for r in ng ngs; do
        ask $p "$o.$r" "/$r/n.bin"
        [ "$(status "$o.$r")" = 200 ] && cmp -s "$o.$r" "$T/nginx/www/n.bin" &&
            [ -n "$(field "$o.$r" etag)" ] && [ -n "$(field "$o.$r" last-modified)" ] &&
            ok "$p: nginx ($r) behind: 300 kB identical, its ETag and Last-Modified passed" ||
            fail "$p: nginx ($r): $(status "$o.$r") size $(stat -c %s "$o.$r") etag '$(field "$o.$r" etag)'"
    done
    ask $p "$o.ng304" -H "If-None-Match: $(field "$o.ng" etag)" /ng/n.bin
    [ "$(status "$o.ng304")" = 304 ] && ok "$p: nginx's 304 passed through" ||
        fail "$p: conditional GET through nginx gave $(status "$o.ng304")"
    # a more specific local route
    ask $p "$o.local" /app/local/file.txt
    [ "$(status "$o.local")" = 200 ] && [ "$(cat "$o.local")" = "served by quicd" ] &&
        ok "$p: a local route inside a proxied prefix is served by quicd" ||
        fail "$p: /app/local/file.txt: $(status "$o.local") '$(head -c 100 "$o.local")'"
done

# the access log names the upstream, its status and time
wait_until 5 grep -q '"GET /app/status/404 HTTP/1.1" 404 .* upstream=127.0.0.1:'"$PA"' ustatus=404 utime=' "$T/access.log" &&
    grep -q '"GET /sock/name HTTP/3" 200 .* upstream=unix:'"$T"'/b.sock ustatus=200 utime=[0-9.]*\( cancelled\)\?$' "$T/access.log" &&
    ok "the access log names the upstream server, its status and time" ||
    fail "access log: $(grep -E 'status/404|sock/name' "$T/access.log" | head -n 3)"
# quicctl upstreams: the worker's connections and requests per server (sent every second)
upcounts() {
    quicctl upstreams --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin)["servers"]:
    if s["server"] == sys.argv[1]:
        w = s["workers"][0] if s["workers"] else {}
        print("%d %d %d" % (s["requests"], s["idle"], w.get("requests", -1)))' "127.0.0.1:$PA"
}
counted() { set -- $(upcounts); [ "${1:-0}" -ge 27 ] && [ "${2:-0}" -ge 1 ] && [ "${3:-0}" = "$1" ]; }
wait_until 5 counted && ok "quicctl upstreams: requests and idle connections per server and worker ($(upcounts))" ||
    fail "quicctl upstreams counts: $(upcounts)"
# one connection per worker was kept alive and reused: far fewer than the requests
conns=$(/usr/bin/python3 -c '
import json, sys
print(len({json.loads(l)["conn"] for l in open(sys.argv[1])}))' "$T/a.rec")
reqs=$(wc -l < "$T/a.rec")
[ "$conns" -le 3 ] && ok "keep-alive: $reqs requests to backend a on $conns connections" ||
    fail "keep-alive: $reqs requests on $conns connections"
nconns=$(awk '{ print $2 }' "$T/nginx/logs/access.log" | sort -u | wc -l)
nreqs=$(wc -l < "$T/nginx/logs/access.log")
[ "$nreqs" -ge 9 ] && [ "$nconns" -le 4 ] &&
    ok "keep-alive to nginx: $nreqs requests on $nconns connections (TCP and Unix socket)" ||
    fail "keep-alive to nginx: $nreqs requests on $nconns connections"
finish
