# SPDX-License-Identifier: MIT
# The fast path (DESIGN.md): once the app has answered a GET with a whole
# file, the worker answers that path itself. Shown with the app stopped
# (SIGSTOP), so only the worker can answer: 200 with the exact bytes, 206
# for a range, 304 by If-None-Match and by If-Modified-Since, HEAD, and
# the 103 Early Hints the app sent; a query, another Accept-Encoding and
# an unsatisfiable range still wait for the app. Every answer is in the
# access log, written by the worker. A file replaced on disk is served
# until file_cache_valid ends or a reload empties the cache;
# file_cache_max = 0 turns the fast path off.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1
h3_conf 1 "access_log = $T/access.log" "file_cache_valid = 60s" \
    "early_hints = /hinted.bin </1k.bin>; rel=preload"
D="$T/htdocs"
head -c 10000 /dev/urandom > "$D/10k.bin"
head -c 1024 /dev/urandom > "$D/1k.bin"
cp "$D/1k.bin" "$D/hinted.bin"
printf 'body { color: red }\n' > "$D/style.css"
printf 'BROTLI' > "$D/style.css.br"
echo one > "$D/swap.txt"
mkdir -p "$T/out"
h3_start || finish

field() { echo "$1" | tail -n1 | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1; }
hdr() { echo "$1" | sed -n "s/^line: $2: //Ip" | tail -n1 | tr -d '\r'; }
get() { local name=$1; shift; OUT=$(h3get req "$@" "$T/out/$name" 2>&1); log "$name: $(echo "$OUT" | tail -n1)"; }
APP_STOPPED=
app_stop() { APP=$(proc_field app - pid); kill -STOP "$APP" && APP_STOPPED=$APP; }
app_cont() { [ -n "$APP_STOPPED" ] && kill -CONT "$APP_STOPPED"; APP_STOPPED=; }
trap 'app_cont; h3_cleanup' EXIT

# The app answers first and grants the file.
get first "$(h3_url 10k.bin)"
etag=$(hdr "$OUT" etag); lm=$(hdr "$OUT" last-modified)
[ "$(field "$OUT" status)" = 200 ] && [ -n "$etag" ] && [ -n "$lm" ] &&
    ok "the app answers the first GET (etag $etag)" || fail "first: $OUT"
get hinted0 "$(h3_url hinted.bin)"
get css0 "$(h3_url style.css)"
# The app writes its lines when it is done with a request, a moment after
# the client has the answer: wait for its three before counting.
log_has() { [ "$(wc -l < "$T/access.log")" -ge "$1" ]; }
wait_until 5 log_has 3 || fail "the app did not log its 3 answers: $(cat "$T/access.log")"
lines_before=$(wc -l < "$T/access.log")

app_stop || die "cannot stop the app"
log "app (pid $APP) stopped"
get full "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 200 ] && cmp -s "$T/out/full" "$D/10k.bin" &&
    [ "$(hdr "$OUT" etag)" = "$etag" ] && [ "$(hdr "$OUT" content-length)" = 10000 ] &&
    [ "$(hdr "$OUT" accept-ranges)" = bytes ] && [ -n "$(hdr "$OUT" content-type)" ] &&
    ok "with the app stopped the worker answers 200, the exact bytes and the same headers" ||
    fail "full: $OUT"
get range -H "Range: bytes=100-199" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 206 ] && [ "$(hdr "$OUT" content-range)" = "bytes 100-199/10000" ] &&
    cmp -s "$T/out/range" <(tail -c +101 "$D/10k.bin" | head -c 100) &&
    ok "206 for bytes=100-199 with the exact bytes" || fail "range: $OUT"
get inm -H "If-None-Match: $etag" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 304 ] && [ "$(hdr "$OUT" etag)" = "$etag" ] &&
    [ -z "$(hdr "$OUT" content-type)" ] && ok "304 by If-None-Match, validators only" ||
    fail "if-none-match: $OUT"
get ims -H "If-Modified-Since: $lm" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 304 ] && ok "304 by If-Modified-Since" || fail "if-modified-since: $OUT"
get stale -H 'If-None-Match: "other"' -H "If-Modified-Since: $lm" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 200 ] && ok "a non-matching If-None-Match decides alone: 200" ||
    fail "stale etag: $OUT"
OUT=$(h3get fetch --head "$(h3_url 10k.bin)" - 2>&1)
[ "$(field "$OUT" status)" = 200 ] && [ "$(field "$OUT" length)" = 10000 ] &&
    [ "$(field "$OUT" size)" = 0 ] && ok "HEAD: 200, content-length 10000, no body" ||
    fail "head: $OUT"
get hinted "$(h3_url hinted.bin)"
echo "$OUT" | grep -q '^line: HTTP/3 103' && echo "$OUT" | grep -qi '^line: link: </1k.bin>; rel=preload' &&
    [ "$(field "$OUT" status)" = 200 ] && cmp -s "$T/out/hinted" "$D/hinted.bin" &&
    ok "the 103 Early Hints the app sent come before the worker's 200" || fail "hinted: $OUT"
wait_until 5 log_has $((lines_before + 7))   # written as each stream closes
fast_lines=$(( $(wc -l < "$T/access.log") - lines_before ))
[ "$fast_lines" -eq 7 ] && ok "7 answers of the worker in the access log" ||
    fail "the access log has $fast_lines new lines, want 7"
grep -q '"GET /10k.bin HTTP/3" 206 100 ' "$T/access.log" && grep -q '"GET /10k.bin HTTP/3" 304 0 ' "$T/access.log" &&
    ok "access log lines carry status and body bytes" || fail "access log: $(tail -n 7 "$T/access.log")"

# What the grant does not cover waits for the app.
for spec in "query:10k.bin?x=1:" "encoding:style.css:Accept-Encoding: br" "unsatisfiable:10k.bin:Range: bytes=20000-"; do
    IFS=: read -r name path header <<< "$spec"
    if [ -n "$header" ]; then
        OUT=$(h3get --timeout 2 req -H "$header" "$(h3_url "$path")" - 2>&1)
    else
        OUT=$(h3get --timeout 2 req "$(h3_url "$path")" - 2>&1)
    fi
    [ "$(field "$OUT" status)" != 200 ] && [ "$(field "$OUT" status)" != 206 ] &&
        [ "$(field "$OUT" status)" != 416 ] &&
        ok "$name: no answer while the app is stopped" || fail "$name answered without the app: $OUT"
done
app_cont
get unsat -H "Range: bytes=20000-" "$(h3_url 10k.bin)"
[ "$(field "$OUT" status)" = 416 ] && ok "the app answers the 416 once it runs again" ||
    fail "416: $OUT"

# A replaced file: the old grant holds until a reload empties the cache.
get swap1 "$(h3_url swap.txt)"
echo two > "$D/swap.txt.new" && mv "$D/swap.txt.new" "$D/swap.txt"
get swap2 "$(h3_url swap.txt)"
[ "$(cat "$T/out/swap2")" = one ] && ok "within file_cache_valid the worker serves the granted file" ||
    fail "swap2: $(cat "$T/out/swap2")"
h3_conf 1 "access_log = $T/access.log" "file_cache_valid = 1s" \
    "early_hints = /hinted.bin </1k.bin>; rel=preload"
quicctl reload >/dev/null || fail "reload"
wait_all_running 10
get swap3 "$(h3_url swap.txt)"
[ "$(cat "$T/out/swap3")" = two ] && ok "a reload empties the cache: the new file" ||
    fail "swap3: $(cat "$T/out/swap3")"
echo three > "$D/swap.txt.new" && mv "$D/swap.txt.new" "$D/swap.txt"
sleep 1.3   # file_cache_valid (1 s) runs out: the time itself is the test
get swap4 "$(h3_url swap.txt)"
[ "$(cat "$T/out/swap4")" = three ] && ok "after file_cache_valid (1s) the app decides again" ||
    fail "swap4: $(cat "$T/out/swap4")"

# file_cache_max = 0: nothing is answered without the app.
h3_conf 1 "file_cache_max = 0"
quicctl reload >/dev/null || fail "reload"
wait_all_running 10
get off1 "$(h3_url 1k.bin)"
app_stop || die "cannot stop the app"
OUT=$(h3get --timeout 2 req "$(h3_url 1k.bin)" - 2>&1)
[ "$(field "$OUT" status)" != 200 ] && ok "file_cache_max = 0: the worker keeps nothing" ||
    fail "answered without the app: $OUT"
app_cont
grep -q 'ERROR\|AddressSanitizer' "$T/quicd.log" && fail "errors in the log: $(grep 'ERROR\|AddressSanitizer' "$T/quicd.log" | head -3)"
finish
