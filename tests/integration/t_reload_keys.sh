# SPDX-License-Identifier: MIT
# Session tickets, and with them resumption and 0-RTT, survive reloads
# that replace the daemons because workers or listen changed: the new
# listener opens a new socket set but keeps the secrets its predecessor
# escrowed with the master (token, stateless-reset and ticket keys). After
# each reload a QUIC client (gtlsclient) resumes with the ticket it got
# before and sends its request in 0-RTT, accepted, and a TLS/TCP client
# (openssl s_client) resumes its session.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_gtlsclient
need_pycurl
need_openssl
h3_setup 1 "early_data = yes"
head -c 65536 /dev/urandom > "$T/htdocs/64k.bin"
h3_start || finish

S="$T/session.pem" P="$T/tp.pem" TS="$T/tcp-session.pem" N=0
GET='GET /64k.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
# quic NAME ARGS... - one gtlsclient run; L its log, RC its exit
quic() {
    local name=$1; shift
    N=$((N + 1)) L="$T/$N-$name.log"
    mkdir -p "$T/$N.dl"
    gtls 30 --download="$T/$N.dl" --session-file="$S" --tp-file="$P" "$@" 127.0.0.1 "$PORT" \
        "$(h3_url 64k.bin)" > "$L"
    RC=$?
}
tls() { printf %b "$GET" | timeout 30 openssl s_client -connect "127.0.0.1:$PORT" \
    -servername localhost -CAfile "$T/cert.pem" -alpn http/1.1 -ign_eof "$@" 2>&1; }
# resumes WHEN - 0-RTT accepted over QUIC, and a resumed TLS session over TCP
resumes() {
    quic "0rtt-$1"
    local zr
    zr=$(grep -cE ' frm tx [0-9]+ 0RTT STREAM\([^)]*\) id=0x0 ' "$L")
    if [ $RC -eq 0 ] && [ "$zr" -gt 0 ] && ! grep -q "Early data was rejected by server" "$L" &&
        [ "$(gtls_status_count "$L" 200)" = 1 ] && cmp -s "$T/htdocs/64k.bin" "$T/$N.dl/64k.bin"; then
        ok "$1: resumed with 0-RTT, the request in 0-RTT accepted, 64 KiB byte-identical"
    else
        fail "$1: 0-RTT: exit $RC, 0-RTT stream frames $zr, $(grep -c 'Early data was rejected' "$L") rejections"
    fi
    tls -sess_in "$TS" | grep -q '^Reused, TLSv1.3' && ok "$1: TLS/TCP session resumed" ||
        fail "$1: TLS/TCP session not resumed: $(tls -sess_in "$TS" | grep -a '^New\|^Reused\|rror' | head -n 3)"
}

quic ticket --wait-for-ticket
[ $RC -eq 0 ] && [ -s "$S" ] && [ -s "$P" ] && ok "QUIC session ticket stored" ||
    fail "no QUIC ticket: exit $RC"
tls -sess_out "$TS" | grep -q '^New, TLSv1.3' && [ -s "$TS" ] && ok "TLS/TCP session stored" ||
    fail "no TLS/TCP session"
resumes "before any reload"

# workers 1 -> 2: the daemons are replaced, new sockets, the same keys
h3_conf 2 "early_data = yes"
out=$(quicctl reload 2>&1) && echo "$out" | grep -q "workers changed" &&
    ok "reload to 2 workers replaces the daemons" || fail "reload: $out"
two() { [ "$(count_role worker)" -eq 2 ] && all_running; }
wait_until 10 two || fail "not 2 workers: $(quicctl status)"
h3_wait_ready 5 >/dev/null || fail "no HTTP/3 answer after the reload"
grep -q "kept the previous listener's token, reset and ticket keys" "$T/quicd.log" &&
    ok "the new listener kept the keys" || fail "no 'kept the keys' line in the log"
resumes "after workers 1 -> 2"

# listen gains an address: again a new socket set, the same keys
h3_conf 2 "early_data = yes" "listen = 127.0.0.1:$PORT, [::1]:$PORT, 127.0.0.2:$PORT"
out=$(quicctl reload 2>&1) && echo "$out" | grep -q "listen changed" &&
    ok "reload adding a listen address replaces the daemons" || fail "reload: $out"
wait_until 10 two || fail "not 2 workers: $(quicctl status)"
h3_wait_ready 5 >/dev/null || fail "no HTTP/3 answer after the reload"
resumes "after adding a listen address"
finish
