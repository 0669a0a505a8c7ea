# SPDX-License-Identifier: MIT
# A WebSocket through the proxy (issue 24, parts 4 and 8): an HTTP/1.1
# client's Upgrade reaches a WebSocket echo server (Debian's
# python3-websockets), its 101 comes back, and from there the connection
# is a tunnel both ways (text and 200 KB binary messages echoed unchanged);
# a reload that changes the proxy table while the tunnel is open leaves
# it working; a request without "Connection: upgrade" is not upgraded.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
/usr/bin/python3 -c 'import websockets' 2>/dev/null || skip "python3-websockets is needed (contrib/install-deps)"
WSECHO="$QD_SRCDIR/tests/integration/wsecho.py"
WSCLIENT="$QD_SRCDIR/tests/integration/wsclient.py"
h3_setup 1
new_port PW
bg ports_exec /usr/bin/python3 "$WSECHO" --port "$PW" > "$T/ws.out" 2>&1
listening() { grep -q listening "$T/ws.out"; }
wait_until 10 listening || die "echo server did not start: $(cat "$T/ws.out")"
cat > "$T/proxy" <<TBL
group ws
server ws 127.0.0.1:$PW
route */ws/ ws strip
TBL
h3_conf 1 "proxy_table = $T/proxy"
h3_start || finish

bg /usr/bin/python3 "$WSCLIENT" --url "wss://localhost:$PORT/ws/echo" --cacert "$T/cert.pem" \
    --wait-file "$T/go" > "$T/client.out" 2>&1
CPID=$BG_PID
phase1() { grep -q "phase1 ok" "$T/client.out"; }
wait_until 10 phase1 && ok "WebSocket through the proxy: upgraded, messages echoed both ways" ||
    fail "WebSocket: $(cat "$T/client.out")"
cat >> "$T/proxy" <<TBL
group other
server other 127.0.0.1:$PW
route */other/ other
TBL
out=$(quicctl reload 2>&1) && ok "reload with the tunnel open: $out" || fail "reload: $out"
sleep 0.5
touch "$T/go"
wait "$CPID"
rc=$?
grep -q "phase2 ok" "$T/client.out" && [ $rc -eq 0 ] &&
    ok "the WebSocket survives the reload: echoes after it, clean close" ||
    fail "after the reload: rc $rc: $(cat "$T/client.out")"

# Upgrade without "Connection: upgrade" is an ordinary request (the echo server refuses it)
out=$(curl -sS --max-time 10 --http1.1 --cacert "$T/cert.pem" --resolve "localhost:$PORT:127.0.0.1" \
    -H "Upgrade: websocket" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" -H "Sec-WebSocket-Version: 13" \
    -o /dev/null -w '%{http_code}' "https://localhost:$PORT/ws/echo" 2>&1)
[ "$out" != 101 ] && ok "Upgrade without Connection: upgrade is not a tunnel ($out)" ||
    fail "a request without Connection: upgrade was upgraded"
finish
