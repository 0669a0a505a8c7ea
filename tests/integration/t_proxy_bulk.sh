# SPDX-License-Identifier: MIT
# Large bodies and streams through the proxy (issue 24, part 4): a 100 MiB
# download and a 100 MiB upload over HTTP/3 and HTTP/2, byte-identical
# (sha256 against the backend's own pattern, and the backend's hash of
# what it received), while the worker's memory stays bounded (its peak
# RSS grows by less than 32 MB: the proxy holds at most 256 KiB of a body
# either way, never the body); a slow client of a 100 MiB download holds
# the upstream back rather than the worker's memory; server-sent events
# arrive one by one, as the backend writes them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/proxylib.sh"
need_pycurl
need_curl
h3_setup 1
new_port PA
backend a --port "$PA"
cat > "$T/proxy" <<TBL
group app
server app 127.0.0.1:$PA
route */app/ app strip
TBL
h3_conf 1 "proxy_table = $T/proxy"
h3_start || finish
WPID=$(proc_field worker 0 pid)
[ -n "$WPID" ] || die "no worker pid"
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$WPID/status" 2>/dev/null; }
RSS0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$WPID/status")
N=$((100 * 1024 * 1024))
# the backend's pattern: byte i is (i * 7 + i // 251) & 0xff
WANT=$(/usr/bin/python3 -c '
import hashlib, sys
n = int(sys.argv[1]); P = bytes((i * 7 + i // 251) & 0xff for i in range(64256))
h = hashlib.sha256()
for off in range(0, n, len(P)):
    h.update(P[:min(len(P), n - off)])
print(h.hexdigest())' "$N")
CURL=(curl -sS --max-time 120 --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1")

h3get --timeout 120 req "$(h3_url app/bytes/$N)" "$T/h3.down" > "$T/h3.down.out" 2>&1
[ "$(sha256sum < "$T/h3.down" | cut -d' ' -f1)" = "$WANT" ] &&
    ok "h3: 100 MiB download identical" || fail "h3: download: $(tail -n 1 "$T/h3.down.out") size $(stat -c %s "$T/h3.down")"
rm -f "$T/h3.down"
"${CURL[@]}" --http2 -o "$T/h2.down" "https://localhost:$PORT/app/bytes/$N"
[ "$(sha256sum < "$T/h2.down" | cut -d' ' -f1)" = "$WANT" ] &&
    ok "h2: 100 MiB download identical" || fail "h2: download size $(stat -c %s "$T/h2.down")"
rm -f "$T/h2.down"

head -c "$N" /dev/urandom > "$T/up.bin"
UP="$N $(sha256sum < "$T/up.bin" | cut -d' ' -f1)"
"${CURL[@]}" --http2 --data-binary "@$T/up.bin" -o "$T/h2.up" "https://localhost:$PORT/app/sha256"
[ "$(cat "$T/h2.up")" = "$UP" ] && ok "h2: 100 MiB upload arrives whole" || fail "h2: upload: $(head -c 200 "$T/h2.up")"
h3get --timeout 120 req -X POST --stream-file "$T/up.bin" "$(h3_url app/sha256)" "$T/h3.up" > "$T/h3.up.out" 2>&1
[ "$(cat "$T/h3.up")" = "$UP" ] && ok "h3: 100 MiB upload (no length: chunked) arrives whole" ||
    fail "h3: upload: $(tail -n 1 "$T/h3.up.out") '$(head -c 200 "$T/h3.up")'"
rm -f "$T/up.bin"

# a slow reader: 2 MB/s for 3 s of a 100 MiB answer; the worker holds the upstream back
h3get --timeout 30 download --limit 2000000 "$(h3_url app/bytes/$N)" "$T/slow.down" "$T/slow.progress" \
    > "$T/slow.out" 2>&1 &
DPID=$!
sleep 3
kill "$DPID" 2>/dev/null
wait "$DPID" 2>/dev/null
HWM=$(hwm_kb)
grow=$((HWM - RSS0))
if grep -q libasan "/proc/$WPID/maps" 2>/dev/null; then
    ok "worker memory not bounded under ASan (its quarantine): peak ${HWM} kB"
else
    [ "$grow" -lt 32768 ] && ok "worker memory bounded: peak RSS ${HWM} kB, ${grow} kB over its start" ||
        fail "worker memory grew by ${grow} kB (peak ${HWM} kB, start ${RSS0} kB)"
fi

# server-sent events arrive as they are written: 2 of 10 events, 1 s apart,
# long before the last is written (9 s); buffered, they would come at the
# end (the bound leaves seconds for a loaded machine's handshake)
t0=$(date +%s%N)
h3get req --until sse:2 "$(h3_url app/sse/10/1000)" "$T/sse" > "$T/sse.out" 2>&1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q "stopped=2" "$T/sse.out" && [ "$ms" -lt 6000 ] && grep -q "data: event 2" "$T/sse" &&
    ok "h3: server-sent events arrive one by one (2 events in $ms ms)" ||
    fail "h3: SSE: $(tail -n 1 "$T/sse.out") in $ms ms"
t0=$(date +%s%N)
timeout 20 "${CURL[@]}" --http1.1 -N "https://localhost:$PORT/app/sse/10/1000" 2>/dev/null |
    head -n 3 > "$T/sse1"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q "data: event 2" "$T/sse1" && [ "$ms" -lt 6000 ] &&
    ok "h1: server-sent events arrive one by one (2 events in $ms ms)" ||
    fail "h1: SSE: $(cat "$T/sse1") in $ms ms"
finish
