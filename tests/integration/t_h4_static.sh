# SPDX-License-Identifier: MIT
# Static files over HTTP/3, caching and partial content (curl through
# pycurl): accept-ranges and vary; 206 with the exact bytes for a-b, a-,
# -n; 416 with content-range "bytes */size"; several ranges ignored (200);
# If-Range (matching etag: 206; stale etag or date: 200); 304 from
# If-None-Match and If-Modified-Since (also with a Range); pre-compressed
# .br/.gz siblings by Accept-Encoding; 103 Early Hints with the configured
# Link headers before the 200.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1 "early_hints = /index.html </style.css>; rel=preload; as=style,
    </app.js>; rel=preload; as=script
  | /hinted.bin </1k.bin>; rel=preload"
D="$T/htdocs"
head -c 10000 /dev/urandom > "$D/10k.bin"
head -c 1024 /dev/urandom > "$D/1k.bin"
cp "$D/1k.bin" "$D/hinted.bin"
printf 'body { color: red }\n%.0s' $(seq 200) > "$D/style.css"
printf 'plain' > "$D/app.js"
printf 'BROTLI' > "$D/style.css.br"
printf 'GZIPPED' > "$D/style.css.gz"
mkdir "$D/app.js.gz"                        # a directory: not served
ln -s /etc/passwd "$D/app.js.br"            # leaves the root: not served
mkdir -p "$T/out"
h3_start || finish

field() { echo "$1" | tail -n1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1; }
hdr() { echo "$1" | sed -n "s/^line: $2: //Ip" | tail -n1 | tr -d '\r'; }
# get NAME [ARGS...] URLPATH - h3get req into $T/out/NAME; output in $OUT
get() { local name=$1; shift; OUT=$(h3get req "$@" "$T/out/$name" 2>&1); log "$name: $(echo "$OUT" | tail -n1)"; }
# want_range NAME OFF LEN - $T/out/NAME equals LEN bytes of 10k.bin at OFF
want_range() { cmp -s "$T/out/$1" <(tail -c +$(($2 + 1)) "$D/10k.bin" | head -c "$3"); }

get full "$(h3_url 10k.bin)"
etag=$(hdr "$OUT" etag); lm=$(hdr "$OUT" last-modified)
[ "$(field "$OUT" status)" = 200 ] && [ "$(hdr "$OUT" accept-ranges)" = bytes ] &&
    [ "$(hdr "$OUT" vary)" = accept-encoding ] && [ -n "$etag" ] &&
    ok "200 with accept-ranges: bytes, vary: accept-encoding, etag $etag" || fail "full: $OUT"

for spec in "0-99 0 100" "100- 100 9900" "-300 9700 300" "9990-20000 9990 10" "5000-5000 5000 1"; do
    set -- $spec
    get "r$1" -H "Range: bytes=$1" "$(h3_url 10k.bin)"
    end=$(($2 + $3 - 1))
    if [ "$(field "$OUT" status)" = 206 ] && [ "$(hdr "$OUT" content-range)" = "bytes $2-$end/10000" ] &&
        [ "$(hdr "$OUT" content-length)" = "$3" ] && want_range "r$1" "$2" "$3"; then
        ok "bytes=$1: 206, content-range bytes $2-$end/10000, the exact $3 bytes"
    else
        fail "bytes=$1: $OUT"
    fi
done
for spec in "10000-" "20000-30000" "-0"; do
    get "u$spec" -H "Range: bytes=$spec" "$(h3_url 10k.bin)"
    [ "$(field "$OUT" status)" = 416 ] && [ "$(hdr "$OUT" content-range)" = "bytes */10000" ] &&
        ok "bytes=$spec: 416, content-range: bytes */10000" || fail "bytes=$spec: $OUT"
done
get multi -H "Range: bytes=0-1,5-9" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 200 ] && cmp -s "$T/out/multi" "$D/10k.bin" &&
    ok "several ranges: ignored, 200 with the whole file" || fail "multi-range: $OUT"

get ifr -H "Range: bytes=0-9" -H "If-Range: $etag" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 206 ] && want_range ifr 0 10 && ok "If-Range with the current etag: 206" ||
    fail "If-Range etag: $OUT"
get ifr2 -H "Range: bytes=0-9" -H 'If-Range: "stale"' "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 200 ] && cmp -s "$T/out/ifr2" "$D/10k.bin" &&
    ok "If-Range with a stale etag: 200, the whole file" || fail "If-Range stale: $OUT"
get ifr3 -H "Range: bytes=0-9" -H "If-Range: $lm" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 206 ] && ok "If-Range with the last-modified date: 206" || fail "If-Range date: $OUT"
get ifr4 -H "Range: bytes=0-9" -H "If-Range: Sun, 06 Nov 1994 08:49:37 GMT" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 200 ] && ok "If-Range with another date: 200" || fail "If-Range old date: $OUT"

get inm -H "If-None-Match: $etag" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 304 ] && [ "$(field "$OUT" size)" = 0 ] && [ "$(hdr "$OUT" etag)" = "$etag" ] &&
    ok "If-None-Match: 304 with the etag, no body" || fail "304: $OUT"
get inmr -H "If-None-Match: $etag" -H "Range: bytes=0-9" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 304 ] && ok "If-None-Match with a Range: 304 (conditionals first)" || fail "304+range: $OUT"
get ims -H "If-Modified-Since: $lm" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 304 ] && ok "If-Modified-Since: 304" || fail "IMS: $OUT"
get inm2 -H 'If-None-Match: "other"' "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 200 ] && ok "If-None-Match with another etag: 200" || fail "INM other: $OUT"

# Pre-compressed siblings
get br -H "Accept-Encoding: gzip, br" "$(h3_url style.css)"
[ "$(hdr "$OUT" content-encoding)" = br ] && [ "$(cat "$T/out/br")" = BROTLI ] &&
    [ "$(hdr "$OUT" content-type)" = "text/css; charset=utf-8" ] &&
    ok "Accept-Encoding: gzip, br: style.css.br with content-encoding: br, type text/css" || fail "br: $OUT"
get gz -H "Accept-Encoding: gzip" "$(h3_url style.css)"
[ "$(hdr "$OUT" content-encoding)" = gzip ] && [ "$(cat "$T/out/gz")" = GZIPPED ] &&
    ok "Accept-Encoding: gzip: style.css.gz" || fail "gz: $OUT"
get brq0 -H "Accept-Encoding: br;q=0, gzip" "$(h3_url style.css)"
[ "$(hdr "$OUT" content-encoding)" = gzip ] && ok "br;q=0 is refused: gzip" || fail "q=0: $OUT"
get ident -H "Accept-Encoding: identity" "$(h3_url style.css)"
[ -z "$(hdr "$OUT" content-encoding)" ] && cmp -s "$T/out/ident" "$D/style.css" &&
    ok "Accept-Encoding: identity: the plain file" || fail "identity: $OUT"
get jsgz -H "Accept-Encoding: gzip, br" "$(h3_url app.js)"
[ -z "$(hdr "$OUT" content-encoding)" ] && [ "$(cat "$T/out/jsgz")" = plain ] &&
    ok "a directory .gz and a symlink .br leaving the root are not served" || fail "bad siblings: $OUT"

# 103 Early Hints before the 200
check_hints() {
    python3 - "$1" <<'PY'
import sys
lines = [l[6:] for l in sys.argv[1].splitlines() if l.startswith("line: ")]
status = [i for i, l in enumerate(lines) if l.startswith("HTTP/")]
if len(status) < 2 or not lines[status[0]].startswith("HTTP/3 103") or not lines[status[-1]].startswith("HTTP/3 200"):
    print("statuses: %s" % [lines[i] for i in status]); sys.exit(1)
links = [l for l in lines[status[0]:status[1]] if l.lower().startswith("link:")]
print(" | ".join(links))
PY
}
get hints "$(h3_url index.html)"
links=$(check_hints "$OUT") && case $links in
*"</style.css>; rel=preload; as=style, </app.js>; rel=preload; as=script"*) true ;; *) false ;; esac &&
    ok "103 Early Hints before the 200: $links" || fail "early hints: $links / $OUT"
get hints2 "$(h3_url "")"
links=$(check_hints "$OUT") && ok "/ gets the hints of /index.html" || fail "hints for /: $links"
get hints3 "$(h3_url hinted.bin)"
links=$(check_hints "$OUT") && [ "$links" = "link: </1k.bin>; rel=preload" ] &&
    ok "a second configured path: $links" || fail "hints for hinted.bin: $links"
get nohints "$(h3_url 1k.bin)"
[ "$(echo "$OUT" | grep -c '^line: HTTP/')" = 1 ] && ok "no 103 for a path without hints" || fail "unexpected 103: $OUT"
finish
