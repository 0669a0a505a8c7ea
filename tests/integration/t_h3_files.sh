# SPDX-License-Identifier: MIT
# Static files over HTTP/3 (curl's HTTP/3 through pycurl, HTTP/3 only):
# 0 B, 1 KiB, 1 MiB and 100 MiB arrive byte-identical; / is index.html;
# 50 concurrent streams on one connection all succeed; HEAD; 404; 405.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 2

D="$T/htdocs"
: > "$D/empty.bin"
head -c 1024 /dev/urandom > "$D/1k.bin"
head -c 1048576 /dev/urandom > "$D/1m.bin"
head -c 104857600 /dev/urandom > "$D/100m.bin"
mkdir -p "$T/out"

h3_start || finish

# status URL_LINE FIELD - a field (status, version, size, length, type) of
# one line of h3get fetch's output
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1; }

# The four files and / on one connection, each compared byte for byte.
t0=$(date +%s%N)
out=$(h3get --timeout 120 fetch \
    "$(h3_url empty.bin)" "$T/out/empty.bin" \
    "$(h3_url 1k.bin)" "$T/out/1k.bin" \
    "$(h3_url 1m.bin)" "$T/out/1m.bin" \
    "$(h3_url 100m.bin)" "$T/out/100m.bin" \
    "$(h3_url "")" "$T/out/index.html" 2>&1)
rc=$?
log "fetch ($(( ($(date +%s%N) - t0) / 1000000 )) ms, rc $rc):"
echo "$out" | while IFS= read -r l; do log "  $l"; done
for f in empty.bin 1k.bin 1m.bin 100m.bin; do
    line=$(echo "$out" | grep -F "/$f status=")
    st=$(field "$line" status); ver=$(field "$line" version)
    if [ "$st" = 200 ] && [ "$ver" = 3 ] && cmp -s "$D/$f" "$T/out/$f"; then
        ok "$f ($(stat -c %s "$D/$f") bytes) byte-identical over HTTP/3"
    else
        fail "$f: status=${st:-none} version=${ver:-none} $(cmp "$D/$f" "$T/out/$f" 2>&1 | head -n1)"
    fi
done
line=$(echo "$out" | grep -F "localhost:$PORT/ status=")
if [ "$(field "$line" status)" = 200 ] && cmp -s "$D/index.html" "$T/out/index.html"; then
    ok "/ is index.html"
else
    fail "/: ${line:-no answer}"
fi
case $(field "$line" type) in
text/html*) ok "index.html is text/html" ;;
*) fail "index.html content-type: $(field "$line" type)" ;;
esac
[ "$(field "$(echo "$out" | grep -F "/1k.bin status=")" type)" = application/octet-stream ] &&
    ok ".bin is application/octet-stream" || fail ".bin content-type: $(echo "$out" | grep -F "/1k.bin status=")"

# 50 concurrent requests as streams of one connection.
out=$(h3get --timeout 60 multi 50 "$(h3_url 1k.bin)" --expect "$D/1k.bin" 2>&1)
rc=$?
log "$out"
[ $rc -eq 0 ] && ok "50 concurrent streams on one connection" || fail "50 streams: $out"

# HEAD: the headers of a GET, no body.
out=$(h3get fetch --head "$(h3_url 1m.bin)" "$T/out/head" 2>&1)
log "$out"
if [ "$(field "$out" status)" = 200 ] && [ "$(field "$out" size)" = 0 ] &&
    [ "$(field "$out" length)" = 1048576 ]; then
    ok "HEAD: 200, content-length 1048576, no body"
else
    fail "HEAD: $out"
fi

# 404 with a small body; 405 for POST.
out=$(h3get fetch "$(h3_url no-such-file.bin)" "$T/out/404" 2>&1)
log "$out"
[ "$(field "$out" status)" = 404 ] && ok "missing file: 404" || fail "missing file: $out"
[ "$(field "$out" size)" -lt 4096 ] 2>/dev/null && ok "404 body is small" || fail "404 body size: $(field "$out" size)"
out=$(h3get fetch -X POST --data "x=1" "$(h3_url 1k.bin)" "$T/out/405" 2>&1)
log "$out"
[ "$(field "$out" status)" = 405 ] && ok "POST to a file: 405" || fail "POST: $out"

# Still serving afterwards.
out=$(h3get fetch "$(h3_url 1k.bin)" "$T/out/again" 2>&1)
[ "$(field "$out" status)" = 200 ] && cmp -s "$D/1k.bin" "$T/out/again" && ok "still serving" || fail "after the checks: $out"
finish
