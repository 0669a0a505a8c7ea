# SPDX-License-Identifier: MIT
# One table of requests, each run over HTTP/3 (curl through pycurl), HTTP/2
# and HTTP/1.1 over TLS/TCP (Debian's curl CLI) and, for the rows marked
# +nghttp, HTTP/2 with nghttp2's client too: every route, status and header
# the HTTP/3 tests check (t_h3_files, t_h3_traversal, t_h4_static,
# t_h4_api, t_h5_fast_path). For each row every protocol must give the
# same status, the same response fields (all but date, alt-svc and the
# connection's own), the same 103 Early Hints, and byte-identical bodies
# (JSON bodies without their clock and protocol keys; the first events of
# /events and /stream).  Then what only TCP has: Alt-Svc h3=":PORT";
# ma=86400 on every HTTP/2 and HTTP/1.1 response and none over HTTP/3,
# another alt_svc_max_age after a reload and none with 0; the access log
# names the three versions; TLS 1.2; ALPN h2, http/1.1 and none (HTTP/1.1);
# keep-alive (several URLs, one connection); a session ticket from one
# worker resumes on the other.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
need_curl
need_nghttp
need_openssl
h3_setup 2
HINTS="early_hints = /index.html </style.css>; rel=preload; as=style,
    </app.js>; rel=preload; as=script
  | /hinted.bin </1k.bin>; rel=preload"
conf() { h3_conf 2 "$HINTS" "events_interval = 200ms" "max_request_body = 64KB" \
    "access_log = $T/access.log" "$@"; }
conf

D="$T/htdocs"
: > "$D/empty.bin"
head -c 1024 /dev/urandom > "$D/1k.bin"
cp "$D/1k.bin" "$D/hinted.bin"
head -c 10000 /dev/urandom > "$D/10k.bin"
printf 'body { color: red }\n%.0s' $(seq 200) > "$D/style.css"
printf 'plain' > "$D/app.js"
printf 'BROTLI' > "$D/style.css.br"
printf 'GZIPPED' > "$D/style.css.gz"
mkdir "$D/app.js.gz"                        # a directory: not served
ln -s /etc/passwd "$D/app.js.br"            # leaves the root: not served
echo "inside the root" > "$D/inside.txt"
mkdir -p "$D/a/b"
echo "deep" > "$D/a/b/deep.txt"
ln -s /etc "$D/etc-link"
ln -s /etc/passwd "$D/passwd-link"
ln -s inside.txt "$D/inside-link.txt"
ln -s ../../inside.txt "$D/a/b/up-link.txt"
echo "root:x:0:0:outside the document root" > "$T/outside.txt"
mkdir -p "$T/exp" "$T/rows"
printf x > "$T/x.txt"
python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) + "héllo €\"\\".encode())' > "$T/body.bin"
head -c 70000 /dev/zero > "$T/big.bin"
# exp OFF LEN - the expected body of a range of 10k.bin, $T/exp/OFF+LEN
exp() { tail -c +$(($1 + 1)) "$D/10k.bin" | head -c "$2" > "$T/exp/$1+$2"; echo "$T/exp/$1+$2"; }

# compare.py DIR STATUSES ALTSVC CHECK... - the comparison of one row:
# DIR/P.hdr (status lines and fields as received), DIR/P.body and
# DIR/P.info ("version rc") for each protocol P run; prints "ok TEXT" or
# one "FAIL TEXT" per problem
cat > "$T/compare.py" <<'PY'
import json, os, re, sys

d, want, alt = sys.argv[1], sys.argv[2].split("|"), sys.argv[3]
checks = sys.argv[4:]
NOT_COMPARED = {"date", "alt-svc", "connection", "keep-alive", "transfer-encoding"}
VERSION = {"h3": "3", "h2": "2", "h1": "1.1", "ng": "2"}
problems = []


def blocks(path):
    """[(status, [(name, value)...])...] of every response but 100 Continue"""
    out = []
    for raw in open(path, encoding="latin-1"):
        line = raw.rstrip("\r\n")
        m = re.match(r"HTTP/[0-9.]+ (\d{3})", line)
        if m:
            out.append((int(m.group(1)), []))
        elif out and ":" in line and not line.startswith((" ", "\t")):
            k, v = line.split(":", 1)
            out[-1][1].append((k.strip().lower(), v.strip()))
    return [b for b in out if b[0] != 100]


def records(body, mode):
    """the body as compared: bytes, or JSON without the clock, or the first events"""
    if mode == "exact":
        return body
    if mode == "json":
        j = json.loads(body)
        for k in ("time", "timestamp", "protocol"):
            j.pop(k, None)
        return json.dumps(j, sort_keys=True)
    kind, n = mode.split(":")
    n = int(n)
    out = []
    if kind == "sse":
        # complete events only: the client may have stopped in the next one
        for blk in body.decode("utf-8", "replace").split("\n\n")[:-1]:
            f = dict(l.split(": ", 1) for l in blk.split("\n") if ": " in l)
            if "event" in f:
                data = json.loads(f["data"])
                out.append((f["event"], f["id"], sorted(data), data.get("n")))
            elif "retry" in f:
                out.append(("retry", f["retry"]))
        out = out[:n + 1]   # the retry line and n events
        if sum(1 for r in out if r[0] != "retry") < n:
            raise ValueError("%d events, want %d" % (len(out), n))
    else:
        for line in body.split(b"\n")[:-1][:n]:
            j = json.loads(line)
            out.append((sorted(j), j.get("n")))
        if len(out) < n:
            raise ValueError("%d lines, want %d" % (len(out), n))
    return repr(out)


mode = "exact"
for c in checks:
    if c.startswith("body="):
        mode = c[5:]
    if c.partition("=")[0] not in ("body", "file", "hdr", "has", "nohdr", "hints"):
        problems.append("unknown check %s" % c)
skip = set(NOT_COMPARED)
if mode != "exact":
    skip.add("content-length")   # a body with a clock in it, or one cut short
res = {}
for p in ("h3", "h2", "h1", "ng"):
    if not os.path.exists("%s/%s.info" % (d, p)):
        continue
    version, rc = open("%s/%s.info" % (d, p)).read().split()[:2]
    bl = blocks("%s/%s.hdr" % (d, p))
    body = open("%s/%s.body" % (d, p), "rb").read() if os.path.exists("%s/%s.body" % (d, p)) else b""
    if version != VERSION[p]:
        problems.append("%s: HTTP version %s, want %s (rc %s)" % (p, version, VERSION[p], rc))
        continue
    if not bl:
        problems.append("%s: no response (rc %s)" % (p, rc))
        continue
    # (a stream's reader is stopped once it has its events or lines)
    if rc not in ("0", "stopped" if mode != "exact" else "0"):
        problems.append("%s: client exit %s" % (p, rc))
    if b"root:x:0:0" in body:
        problems.append("%s: the body holds the file outside the root" % p)
    try:
        rec = records(body, mode)
    except (ValueError, KeyError, UnicodeDecodeError) as e:
        problems.append("%s: body (%s): %r" % (p, e, body[:120]))
        rec = None
    final = bl[-1]
    fields = dict(final[1])
    # Alt-Svc: on every TCP response as configured, never over QUIC
    got_alt = [v for k, v in final[1] if k == "alt-svc"]
    if p == "h3" and got_alt:
        problems.append("h3: alt-svc %s" % got_alt)
    if p != "h3" and got_alt != ([alt] if alt else []):
        problems.append("%s: alt-svc %s, want %s" % (p, got_alt, [alt] if alt else "none"))
    if mode != "exact" and "content-length" in fields and mode == "json" and \
            int(fields["content-length"]) != len(body):
        problems.append("%s: content-length %s, body %d bytes" % (p, fields["content-length"], len(body)))
    canon = [(s, sorted((k, v) for k, v in f if k not in skip)) for s, f in bl]
    res[p] = (canon, rec, body, fields)

if res:
    first = next(iter(res))
    canon0, rec0, body0, fields0 = res[first]
    status = canon0[-1][0]
    if str(status) not in want:
        problems.append("status %s, want %s" % (status, " or ".join(want)))
    for p, (canon, rec, body, fields) in res.items():
        if p == first:
            continue
        if canon != canon0:
            problems.append("%s differs from %s: %s vs %s" % (p, first, canon, canon0))
        if rec != rec0:
            problems.append("%s body differs from %s's: %d vs %d bytes (%r vs %r)" % (
                p, first, len(body), len(body0), body[:60], body0[:60]))
    for c in checks:
        k, _, v = c.partition("=")
        for p, (canon, rec, body, fields) in res.items():
            if k == "hdr":
                name, _, value = v.partition(": ")
                if fields.get(name) != value:
                    problems.append("%s: %s: %s, want %s" % (p, name, fields.get(name), value))
            elif k == "has" and not fields.get(v):
                problems.append("%s: no %s" % (p, v))
            elif k == "nohdr" and v in fields:
                problems.append("%s: %s: %s, want none" % (p, v, fields[v]))
            elif k == "file" and body != open(v, "rb").read():
                problems.append("%s: %d bytes, not those of %s" % (p, len(body), os.path.basename(v)))
    hints = [c[6:] for c in checks if c.startswith("hints=")]
    if hints:
        links = [v for k, v in canon0[0][1] if k == "link"] if len(canon0) > 1 else []
        if canon0[0][0] != 103 or len(canon0) != 2 or links != hints:
            problems.append("want one 103 with link %s before the %s: %s" % (hints, status, canon0[:-1]))
    elif len(canon0) != 1:
        problems.append("interim responses: %s" % canon0[:-1])
for p in problems:
    print("FAIL %s" % p)
if not problems:
    print("ok %s over %s: %d fields%s and %d body bytes alike (%s)" % (
        status, " ".join(res), len(canon0[-1][1]), " and a 103" if len(canon0) > 1 else "",
        len(body0), mode))
PY

ALT="h3=\":$PORT\"; ma=86400"   # the Alt-Svc TCP responses carry
STREAM_SECS=5                   # how long /events and /stream take for their units (quiet machine)
CURL=(curl -sS --path-as-is --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1")
ROWS=0 NG_ROWS=0

# row NAME STATUSES METHOD PATH [OPTION...] - one request over HTTP/3,
# HTTP/2 and HTTP/1.1 (and nghttp with +nghttp), compared; STATUSES is
# one status or several separated by |.  OPTIONs:
#   -H 'Name: value'    a request field          -d FILE    the request body
#   +nghttp             HTTP/2 with nghttp too   until=sse:N|nl:N  read so far
#   body=exact|json|sse:N|nl:N  how bodies compare (json: without time,
#                       timestamp, protocol; sse/nl: the first N records)
#   file=FILE           every body is FILE's bytes
#   hdr='name: value'   the final response has that field; has=name: any
#                       value; nohdr=name: none
#   hints=LINK          one 103 Early Hints with that link comes first (a
#                       row without hints= must have no interim response)
row() {
    local name=$1 want=$2 method=$3 path=$4; shift 4
    local hdrs=() data="" ng=0 checks=() until="" url="https://localhost:$PORT$path"
    local d="$T/rows/${name//[^A-Za-z0-9.-]/_}"
    while [ $# -gt 0 ]; do
        case $1 in
        -H) hdrs+=("$2"); shift 2 ;;
        -d) data=$2; shift 2 ;;
        +nghttp) ng=1; shift ;;
        until=*) until=${1#until=}; shift ;;
        *) checks+=("$1"); shift ;;
        esac
    done
    mkdir -p "$d"
    local a=() h
    # HTTP/3: h3get req ("line: " for each received line, then status=...)
    [ "$method" != GET ] && a+=(-X "$method")
    [ -n "$data" ] && a+=(--data-file "$data")
    [ -n "$until" ] && a+=(--until "$until")
    for h in "${hdrs[@]}"; do a+=(-H "$h"); done
    h3get --timeout 30 req "${a[@]}" "$url" "$d/h3.body" > "$d/h3.out" 2>&1
    local rc=$?
    echo "$(sed -n 's/^status=.* version=\([^ ]*\).*/\1/p' "$d/h3.out" | tail -n1) $rc" > "$d/h3.info"
    sed -n 's/^line: //p' "$d/h3.out" > "$d/h3.hdr"
    # HTTP/2 and HTTP/1.1: curl
    a=()
    case $method in
    GET) ;;
    HEAD) a+=(-I) ;;
    POST) [ -z "$data" ] && a+=(-X POST) ;;
    *) a+=(-X "$method") ;;
    esac
    [ -n "$data" ] && a+=(--data-binary "@$data")
    if [ -n "$until" ]; then a+=(-N --max-time 120); else a+=(--max-time 30); fi
    for h in "${hdrs[@]}"; do a+=(-H "$h"); done
    for v in h2:--http2 h1:--http1.1; do
        local p=${v%%:*} out="$d/${v%%:*}.body"
        [ "$method" = HEAD ] && out="$d/$p.head"   # -I writes the head there; no body is read
        if [ -n "$until" ]; then
            # a stream: read until the body holds the units h3get read, then
            # stop curl (it prints no -w then: the version is the status line's)
            "${CURL[@]}" "${v#*:}" "${a[@]}" -D "$d/$p.hdr" -o "$out" "$url" > /dev/null 2> "$d/$p.err" &
            local cpid=$! got=stopped
            wait_until "$STREAM_SECS" units_in "$until" "$out" || got=none
            kill "$cpid" 2>/dev/null
            wait "$cpid"
            rc=$?
            [ $got = stopped ] || got=$rc
            echo "$(sed -n 's/^HTTP\/\([0-9.]*\) .*/\1/p' "$d/$p.hdr" | tail -n1 | tr -d '\r') $got" > "$d/$p.info"
        else
            "${CURL[@]}" "${v#*:}" "${a[@]}" -D "$d/$p.hdr" -o "$out" \
                -w '%{http_version} ' "$url" > "$d/$p.info" 2> "$d/$p.err"
            echo "$?" >> "$d/$p.info"
        fi
        [ "$method" = HEAD ] && : > "$d/$p.body"
    done
    # HTTP/2 with nghttp: the fields from -nv, the body from a second run
    # (it sends accept-encoding: gzip, deflate unless told otherwise)
    if [ $ng = 1 ]; then
        a=(-t 30s)
        case " ${hdrs[*]}" in *" Accept-Encoding:"*) ;; *) a+=(-H 'accept-encoding: identity') ;; esac
        [ -n "$data" ] && a+=(-d "$data")
        [ -n "$data" ] || [ "$method" = GET ] || a+=(-H ":method: $method")
        for h in "${hdrs[@]}"; do a+=(-H "$h"); done
        SSL_CERT_FILE="$T/cert.pem" timeout 40 nghttp -nv "${a[@]}" "$url" > "$d/ng.v" 2>&1
        rc=$?
        SSL_CERT_FILE="$T/cert.pem" timeout 40 nghttp "${a[@]}" "$url" > "$d/ng.body" 2> "$d/ng.err"
        sed -nE 's/^\[ *[0-9.]+\] recv \(stream_id=[0-9]+\) //p' "$d/ng.v" | sed 's/^:status: /HTTP\/2 /' > "$d/ng.hdr"
        if grep -q '^The negotiated protocol: h2' "$d/ng.v" && ! grep -q WARNING "$d/ng.v"; then
            echo "2 $rc" > "$d/ng.info"
        else
            echo "none $rc" > "$d/ng.info"
            log "$name: nghttp: $(grep -m2 'WARNING\|negotiated\|rror' "$d/ng.v" | tr '\n' ' ')"
        fi
        NG_ROWS=$((NG_ROWS + 1))
    fi
    ROWS=$((ROWS + 1))
    local kind text verdict
    verdict=$(python3 "$T/compare.py" "$d" "$want" "$ALT" "${checks[@]}" 2>&1)
    [ -n "$verdict" ] || verdict="FAIL compare.py said nothing"
    while read -r kind text; do
        if [ "$kind" = ok ]; then ok "$name ($method ${path:0:60}): $text"; else fail "$name ($method ${path:0:60}):${kind#FAIL} $text"; fi
    done <<< "$verdict"
}
# units_in KIND:N FILE - FILE holds N server-sent events or lines, counted
# as h3get counts them (h3get.Units), whatever the chunking
units_in() {
    "$H3_PYTHON" - "$1" "$2" "$QD_SRCDIR/tests/integration" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from h3get import Units
kind, n = sys.argv[1].split(":")
u = Units(kind, int(n))
try:
    with open(sys.argv[2], "rb") as f:
        u.feed(f.read())
except OSError:
    pass
sys.exit(0 if u.done() else 1)
PY
}
# field_of ROW NAME - a field of that row's final HTTP/3 response
field_of() { sed -n "s/^$2: //Ip" "$T/rows/${1//[^A-Za-z0-9.-]/_}/h3.hdr" | tail -n1 | tr -d '\r'; }

h3_start || finish

# ---------------------------------------------------------------- the table
EH='</style.css>; rel=preload; as=style, </app.js>; rel=preload; as=script'
row index 200 GET / +nghttp file="$D/index.html" hints="$EH" \
    hdr='content-type: text/html; charset=utf-8' hdr='cache-control: max-age=60'
row index.html 200 GET /index.html file="$D/index.html" hints="$EH"
row hinted 200 GET /hinted.bin file="$D/hinted.bin" hints='</1k.bin>; rel=preload'
row empty 200 GET /empty.bin file="$D/empty.bin" hdr='content-length: 0'
row 1k 200 GET /1k.bin +nghttp file="$D/1k.bin" hdr='content-type: application/octet-stream'
row full 200 GET /10k.bin file="$D/10k.bin" hdr='accept-ranges: bytes' hdr='vary: accept-encoding' \
    hdr='cache-control: max-age=60' hdr='content-length: 10000' has=etag has=last-modified
etag=$(field_of full etag) lm=$(field_of full last-modified)
row head 200 HEAD /10k.bin +nghttp file=/dev/null hdr='content-length: 10000' hdr="etag: $etag"
row missing 404 GET /no-such-file.bin +nghttp
row 'a-b' 206 GET /10k.bin -H 'Range: bytes=0-99' +nghttp file="$(exp 0 100)" \
    hdr='content-range: bytes 0-99/10000' hdr='content-length: 100'
row 'a-' 206 GET /10k.bin -H 'Range: bytes=100-' file="$(exp 100 9900)" hdr='content-range: bytes 100-9999/10000'
row '-n' 206 GET /10k.bin -H 'Range: bytes=-300' file="$(exp 9700 300)" hdr='content-range: bytes 9700-9999/10000'
row 'a-past' 206 GET /10k.bin -H 'Range: bytes=9990-20000' file="$(exp 9990 10)" hdr='content-range: bytes 9990-9999/10000'
row 'a-a' 206 GET /10k.bin -H 'Range: bytes=5000-5000' file="$(exp 5000 1)" hdr='content-range: bytes 5000-5000/10000'
for spec in 10000- 20000-30000 -0; do
    row "unsatisfiable $spec" 416 GET /10k.bin -H "Range: bytes=$spec" hdr='content-range: bytes */10000'
done
row 'several ranges' 200 GET /10k.bin -H 'Range: bytes=0-1,5-9' file="$D/10k.bin"
row 'If-Range etag' 206 GET /10k.bin -H 'Range: bytes=0-9' -H "If-Range: $etag" file="$(exp 0 10)"
row 'If-Range stale' 200 GET /10k.bin -H 'Range: bytes=0-9' -H 'If-Range: "stale"' file="$D/10k.bin"
row 'If-Range date' 206 GET /10k.bin -H 'Range: bytes=0-9' -H "If-Range: $lm" file="$(exp 0 10)"
row 'If-Range old date' 200 GET /10k.bin -H 'Range: bytes=0-9' -H 'If-Range: Sun, 06 Nov 1994 08:49:37 GMT' file="$D/10k.bin"
row 'If-None-Match' 304 GET /10k.bin -H "If-None-Match: $etag" +nghttp file=/dev/null hdr="etag: $etag"
row 'If-None-Match + Range' 304 GET /10k.bin -H "If-None-Match: $etag" -H 'Range: bytes=0-9' file=/dev/null
row 'If-Modified-Since' 304 GET /10k.bin -H "If-Modified-Since: $lm" file=/dev/null
row 'If-None-Match other' 200 GET /10k.bin -H 'If-None-Match: "other"' -H "If-Modified-Since: $lm" file="$D/10k.bin"
row 'br' 200 GET /style.css -H 'Accept-Encoding: gzip, br' file="$D/style.css.br" hdr='content-encoding: br' \
    hdr='content-type: text/css; charset=utf-8' hdr='vary: accept-encoding'
row 'gzip' 200 GET /style.css -H 'Accept-Encoding: gzip' file="$D/style.css.gz" hdr='content-encoding: gzip'
row 'br;q=0' 200 GET /style.css -H 'Accept-Encoding: br;q=0, gzip' hdr='content-encoding: gzip'
row 'identity' 200 GET /style.css -H 'Accept-Encoding: identity' file="$D/style.css" nohdr=content-encoding
row 'no Accept-Encoding' 200 GET /style.css +nghttp file="$D/style.css" nohdr=content-encoding hdr='vary: accept-encoding'
row 'bad siblings' 200 GET /app.js -H 'Accept-Encoding: gzip, br' file="$D/app.js" nohdr=content-encoding
row 'api/time' 200 GET /api/time +nghttp body=json hdr='content-type: application/json' hdr='cache-control: no-store'
row 'POST api/time' 405 POST /api/time -d "$T/x.txt" hdr='allow: GET, HEAD'
row 'api/echo' 200 POST /api/echo -d "$T/body.bin" +nghttp body=json hdr='content-type: application/json'
row 'GET api/echo' 405 GET /api/echo hdr='allow: POST'
row 'api/echo 70000' 413 POST /api/echo -d "$T/big.bin"
row 'DELETE file' 405 DELETE /index.html +nghttp hdr='allow: GET, HEAD'
row 'POST file' 405 POST /1k.bin -d "$T/x.txt" hdr='allow: GET, HEAD'
row events 200 GET /events until=sse:4 body=sse:3 hdr='content-type: text/event-stream'
row stream 200 GET /stream until=nl:2 body=nl:2 hdr='content-type: application/x-ndjson'
row 'bad escape' 400 GET '/a%zz'
row 'long path' 414 GET "/$(head -c 5000 /dev/zero | tr '\0' a)"
row 'big field' 431 GET /index.html -H "x-big: $(head -c 40000 /dev/zero | tr '\0' b)"
# traversal: never the password file or anything outside the root
i=0
for p in /../etc/passwd /../../../../../../etc/passwd /%2e%2e/etc/passwd /%2E%2E/%2E%2E/etc/passwd \
    /%2E%2E%2Fetc%2Fpasswd /..%2f..%2fetc%2fpasswd /..%2F..%2F..%2F..%2Fetc%2Fpasswd \
    /.%2e/.%2e/etc/passwd /a/../../etc/passwd /a/b/../../../../etc/passwd /a/%2e%2e/%2e%2e/etc/passwd \
    //etc/passwd /./../etc/passwd /../outside.txt /%2e%2e/outside.txt /a/..%2f..%2foutside.txt \
    /etc-link/passwd /etc-link/ /passwd-link; do
    row "traversal $((i += 1))" '404|403' GET "$p"
done
for p in '/..\..\etc\passwd' /%5c..%5c..%5cetc%5cpasswd /%00/../etc/passwd /inside.txt%00/../../etc/passwd; do
    row "traversal $((i += 1))" '404|403|400' GET "$p"
done
for p in /inside-link.txt /a/b/up-link.txt /a/b/../../inside.txt; do
    row "inside $((i += 1))" '200|404|403|400' GET "$p"
done
row 'dot segment' 200 GET /a/./b/deep.txt file="$D/a/b/deep.txt"
log "the table: $ROWS rows over HTTP/3, HTTP/2 and HTTP/1.1, $NG_ROWS of them with nghttp too;" \
    "every HTTP/2 and HTTP/1.1 answer was checked for alt-svc: $ALT, every HTTP/3 one for none"

# ---------------------------------------------------------------- TCP only
# The access log names the version of each request.
for v in HTTP/3 HTTP/2 HTTP/1.1; do
    n=$(grep -Ec "^20[0-9-]+T[0-9:.]+Z 127\.0\.0\.1:[0-9]+ \"[A-Z]+ /[^ ]* ${v//./\\.}\" [0-9]{3} [0-9]+ [0-9.]+ [0-9a-f]+ [0-9]+( cancelled)?$" "$T/access.log")
    [ "$n" -gt 0 ] && ok "the access log has $n lines naming $v in the documented format" ||
        fail "no access log line names $v: $(tail -n 3 "$T/access.log")"
done

# Keep-alive: several URLs on one curl command, one connection; over
# HTTP/1.1 a HEAD, a chunked POST and a GET follow each other on it.
for v in --http2 --http1.1; do
    out=$("${CURL[@]}" $v -w '%{http_version} %{num_connects} %{http_code}\n' -o /dev/null -o /dev/null \
        -o "$T/ka.bin" "$(h3_url index.html)" "$(h3_url 1k.bin)" "$(h3_url 10k.bin)" 2>&1)
    conns=$(echo "$out" | awk '{ n += $2 } END { print n }')
    [ "$(echo "$out" | awk '$3 == 200' | wc -l)" = 3 ] && [ "$conns" = 1 ] && cmp -s "$T/ka.bin" "$D/10k.bin" &&
        ok "curl $v: 3 URLs, 3 answers on $conns connection" || fail "keep-alive $v: $(echo "$out" | tr '\n' ' ')"
done
out=$("${CURL[@]}" --http1.1 -I -o /dev/null -w '%{num_connects} %{http_code}\n' "$(h3_url 10k.bin)" \
    --next "${CURL[@]:1}" --http1.1 -H 'Transfer-Encoding: chunked' --data-binary @"$T/x.txt" \
    -o "$T/ka.json" -w '%{num_connects} %{http_code}\n' "$(h3_url api/echo)" \
    --next "${CURL[@]:1}" --http1.1 -o "$T/ka2.bin" -w '%{num_connects} %{http_code}\n' "$(h3_url 10k.bin)" 2>&1)
[ "$(echo "$out" | tr '\n' ' ')" = "1 200 0 200 0 200 " ] && cmp -s "$T/ka2.bin" "$D/10k.bin" &&
    grep -q '"length": 1' "$T/ka.json" &&
    ok "HTTP/1.1 keep-alive: HEAD, a chunked POST (length 1 echoed) and a GET with the exact bytes on one connection" ||
    fail "HEAD, chunked POST, GET: $(echo "$out" | tr '\n' ' ') $(cat "$T/ka.json")"

# Expect: 100-continue over HTTP/1.1: 100 then the answer for a body the
# app takes; for one over max_request_body the 413 at once, no body sent.
out=$("${CURL[@]}" --http1.1 -H 'Expect: 100-continue' --data-binary @"$T/body.bin" -D "$T/cont.hdr" \
    -o "$T/cont.json" -w '%{http_code} %{size_upload}' "$(h3_url api/echo)" 2>&1)
[ "$out" = "200 $(stat -c %s "$T/body.bin")" ] && [ "$(grep -c '^HTTP/1.1 ' "$T/cont.hdr")" = 2 ] &&
    grep -q '^HTTP/1.1 100 Continue' "$T/cont.hdr" &&
    ok "Expect: 100-continue: 100, then the body sent and 200" ||
    fail "Expect: 100-continue: $out $(grep '^HTTP/' "$T/cont.hdr" | tr -d '\r' | tr '\n' ' ')"
out=$("${CURL[@]}" --http1.1 -H 'Expect: 100-continue' --data-binary @"$T/big.bin" -D "$T/cont.hdr" \
    -o /dev/null -w '%{http_code} %{size_upload}' "$(h3_url api/echo)" 2>&1)
[ "$out" = "413 0" ] && [ "$(grep -c '^HTTP/1.1 ' "$T/cont.hdr")" = 1 ] &&
    ok "Expect: 100-continue with 70000 bytes: 413 and no 100, nothing uploaded" ||
    fail "Expect: 100-continue, 70000 bytes: $out $(grep '^HTTP/' "$T/cont.hdr" | tr -d '\r' | tr '\n' ' ')"

# TLS 1.2 as well as 1.3, and ALPN.
for v in h2:--http2 h1:--http1.1; do
    for tls in 1.2 1.3; do
        out=$("${CURL[@]}" "${v#*:}" --tls-max "$tls" -v -o "$T/tls.bin" -w 'version=%{http_version} status=%{http_code}\n' \
            "$(h3_url 1k.bin)" 2>&1)
        want=${v#*--http}   # 2 or 1.1
        echo "$out" | grep -q "SSL connection using TLSv$tls " && echo "$out" | grep -q "version=$want status=200" &&
            cmp -s "$T/tls.bin" "$D/1k.bin" && ok "TLS $tls with ${v#*:}: HTTP/$want 200, the exact bytes" ||
            fail "TLS $tls ${v#*:}: $(echo "$out" | grep -E 'SSL connection|ALPN|version=|curl:' | tr '\n' ' ')"
    done
done
# s_client ALPN - the TLS session info of a handshake offering ALPN (or none)
s_client() {
    local a=()
    [ -n "$1" ] && a=(-alpn "$1")
    shift
    timeout 30 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$T/cert.pem" \
        -verify_return_error "${a[@]}" "$@" 2>&1
}
GET='GET /1k.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
out=$(s_client h2 < /dev/null)
echo "$out" | grep -q '^ALPN protocol: h2$' && ok "ALPN h2 offered: h2" || fail "ALPN h2: $(echo "$out" | grep -i 'alpn\|error')"
out=$(printf %b "$GET" | s_client h2,http/1.1 -ign_eof)
echo "$out" | grep -q '^ALPN protocol: h2$' && ok "ALPN h2,http/1.1 offered: h2" || fail "ALPN h2,http/1.1: $(echo "$out" | grep -i 'alpn\|error')"
out=$(printf %b "$GET" | s_client http/1.1 -ign_eof)
echo "$out" | grep -q '^ALPN protocol: http/1.1$' && echo "$out" | grep -aq '^HTTP/1.1 200 OK' &&
    ok "ALPN http/1.1 offered: http/1.1, HTTP/1.1 200" || fail "ALPN http/1.1: $(echo "$out" | grep -ai 'alpn\|error\|HTTP/')"
out=$(printf %b "$GET" | s_client "" -ign_eof)
echo "$out" | grep -q '^No ALPN negotiated$' && echo "$out" | grep -aq '^HTTP/1.1 200 OK' &&
    ok "no ALPN offered: HTTP/1.1 200" || fail "no ALPN: $(echo "$out" | grep -ai 'alpn\|error\|HTTP/')"
out=$("${CURL[@]}" --no-alpn -o /dev/null -w 'version=%{http_version} status=%{http_code}' "$(h3_url 1k.bin)" 2>&1)
[ "$out" = "version=1.1 status=200" ] && ok "curl --no-alpn: HTTP/1.1 200" || fail "curl --no-alpn: $out"

# A session ticket from one worker resumes on the other: the first
# connection saves its session, 16 more resume it; SO_REUSEPORT spreads
# them over both workers (all on the first one's worker: 1 in 65536).
max_id() { sql "SELECT coalesce(max(id), 0) FROM connections"; }
rows_since() { [ "$(sql "SELECT count(*) FROM connections WHERE id > $1 AND alpn = 'http/1.1'")" -ge "$2" ]; }
id0=$(max_id)
out=$(printf %b "$GET" | s_client http/1.1 -ign_eof -sess_out "$T/session.pem")
echo "$out" | grep -q '^New, TLSv1.3' && [ -s "$T/session.pem" ] || fail "first connection: $(echo "$out" | grep -a 'New\|Reused\|rror')"
wait_until 10 rows_since "$id0" 1 || fail "no record of the first connection"
issuer=$(sql "SELECT worker FROM connections WHERE id > $id0 AND alpn = 'http/1.1' ORDER BY id LIMIT 1")
id1=$(max_id) reused=0
for _ in $(seq 16); do
    printf %b "$GET" | s_client http/1.1 -ign_eof -sess_in "$T/session.pem" | grep -q '^Reused, TLSv1.3' &&
        reused=$((reused + 1))
done
wait_until 10 rows_since "$id1" 16 || fail "16 connections not recorded"
by_worker=$(sql "SELECT worker, count(*) FROM connections WHERE id > $id1 AND alpn = 'http/1.1' AND resumed = 1 GROUP BY worker" | tr '\n' ' ')
others=$(sql "SELECT count(*) FROM connections WHERE id > $id1 AND alpn = 'http/1.1' AND resumed = 1 AND worker != $issuer")
[ "$reused" = 16 ] && [ "${others:-0}" -gt 0 ] &&
    ok "a ticket from worker $issuer resumed 16 of 16 times; resumed connections by worker|count: $by_worker" ||
    fail "resumption: $reused of 16 reused; the ticket's worker $issuer; resumed by worker|count: $by_worker"

# alt_svc_max_age is reloadable: another max age, then none.
conf "alt_svc_max_age = 3600s"
quicctl reload > /dev/null || fail "reload"
wait_all_running 10
ALT="h3=\":$PORT\"; ma=3600"
row 'alt_svc_max_age = 3600s' 200 GET /1k.bin +nghttp file="$D/1k.bin"
row 'alt_svc_max_age = 3600s, 404' 404 GET /no-such-file.bin
conf "alt_svc_max_age = 0"
quicctl reload > /dev/null || fail "reload"
wait_all_running 10
ALT=""
row 'alt_svc_max_age = 0' 200 GET /1k.bin +nghttp file="$D/1k.bin"
row 'alt_svc_max_age = 0, 206' 206 GET /10k.bin -H 'Range: bytes=0-99' file="$T/exp/0+100"
row 'alt_svc_max_age = 0, 405' 405 DELETE /index.html hdr='allow: GET, HEAD'
finish
