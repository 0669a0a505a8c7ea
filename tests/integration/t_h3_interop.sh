# SPDX-License-Identifier: MIT
# Interop with ngtcp2's own client (gtlsclient 1.11, GnuTLS): GET, several
# requests on one connection, IPv6, connection migration, NAT rebinding,
# key update, resumption with 0-RTT (425 for a POST in 0-RTT), ChaCha20-Poly1305
# only, QUIC v2.
# Every run is bounded by timeout(1) and ends by itself
# (--exit-on-all-streams-close); bodies are saved with --download and
# compared with cmp.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_gtlsclient
need_pycurl
h3_setup 2 "early_data = yes"

D="$T/htdocs"
head -c 1024 /dev/urandom > "$D/1k.bin"
head -c 65536 /dev/urandom > "$D/64k.bin"
head -c 1048576 /dev/urandom > "$D/1m.bin"
mkdir -p "$D/sub"
echo "a page in a folder" > "$D/sub/page.txt"

h3_start || finish

N=0
# run NAME SECONDS GTLSCLIENT-ARGS... - one gtlsclient run against 127.0.0.1;
# sets L (its log) and DL (its download directory) and RC
run() {
    local name=$1 secs=$2; shift 2
    N=$((N + 1))
    L="$T/$N-$name.log"; DL="$T/$N-$name.dl"
    mkdir -p "$DL"
    gtls "$secs" --download="$DL" "$@" > "$L"
    RC=$?
    log "$name: gtlsclient exit $RC ($(wc -l < "$L") log lines)"
}
# same FILE... - each file of the docroot arrived byte-identical in $DL
same() {
    local f
    for f in "$@"; do cmp -s "$D/$f" "$DL/$(basename "$f")" || return 1; done
}
# show - the interesting part of the last log, for a failure
show() { grep -vE '^I[0-9]|^\[|^http: SETTINGS' "$L" | tail -n 15 | sed 's/^/    /'; }
U() { h3_url "$1"; }

# Plain GET.
run get 30 127.0.0.1 "$PORT" "$(U 1m.bin)"
if [ $RC -eq 0 ] && [ "$(gtls_status_count "$L" 200)" = 1 ] && same 1m.bin; then
    ok "GET 1 MiB: 200, byte-identical"
else
    fail "GET: exit $RC"; show
fi
grep -q "Negotiated ALPN is h3" "$L" && ok "ALPN h3" || fail "ALPN: $(grep Negotiated "$L")"

# Several requests on one connection (one handshake, four streams).
run several 30 127.0.0.1 "$PORT" "$(U 1k.bin)" "$(U 64k.bin)" "$(U sub/page.txt)" "$(U 1m.bin)"
hs=$(grep -c "QUIC handshake has completed" "$L")
if [ $RC -eq 0 ] && [ "$hs" = 1 ] && [ "$(gtls_status_count "$L" 200)" = 4 ] &&
    same 1k.bin 64k.bin sub/page.txt 1m.bin; then
    ok "4 requests on one connection, all byte-identical"
else
    fail "several requests: exit $RC, handshakes $hs, 200s $(gtls_status_count "$L" 200)"; show
fi

# IPv6 (the suite listens on [::1] too).
run ipv6 30 ::1 "$PORT" "$(U 64k.bin)"
[ $RC -eq 0 ] && [ "$(gtls_status_count "$L" 200)" = 1 ] && same 64k.bin &&
    ok "GET over ::1" || { fail "GET over ::1: exit $RC"; show; }

# Connection migration: the client moves to a new local port 100 ms after
# the handshake and the request waits for 300 ms, so the whole response
# comes over the new path (probed with PATH_CHALLENGE first).
run migration 30 --change-local-addr=100ms --delay-stream=300ms 127.0.0.1 "$PORT" "$(U 1m.bin)"
new=$(sed -n 's/^Local address is now //p' "$L" | tail -n1)
if [ $RC -eq 0 ] && [ -n "$new" ] && [ "$(gtls_status_count "$L" 200)" = 1 ] && same 1m.bin &&
    grep -F "Path validation against path {local:$new," "$L" | grep -q succeeded; then
    ok "migration to $new: path validated, 1 MiB byte-identical over the new path"
else
    fail "migration: exit $RC, new address '${new}'"; show
fi
[ -z "$new" ] || [ "$(grep -cF "Received packet: local=$new " "$L")" -gt 0 ] &&
    ok "migration: packets received on the new address" || fail "migration: nothing received on $new"

# NAT rebinding: the client's address changes without a path validation
# on its side; the server must notice, validate the new path and go on.
run nat-rebinding 30 --change-local-addr=100ms --nat-rebinding --delay-stream=300ms 127.0.0.1 "$PORT" "$(U 1m.bin)"
new=$(sed -n 's/^Local address is now //p' "$L" | tail -n1)
got=0; [ -z "$new" ] || got=$(grep -cF "Received packet: local=$new " "$L")
if [ $RC -eq 0 ] && [ -n "$new" ] && [ "$got" -gt 0 ] && [ "$(gtls_status_count "$L" 200)" = 1 ] && same 1m.bin; then
    ok "NAT rebinding to $new: $got packets on the new address, 1 MiB byte-identical"
else
    fail "NAT rebinding: exit $RC, new address '${new}', $got packets there"; show
fi

# Key update, 100 ms after the handshake (before the request).
run key-update 30 --key-update=100ms --delay-stream=300ms 127.0.0.1 "$PORT" "$(U 1m.bin)"
if [ $RC -eq 0 ] && grep -q "key update confirmed" "$L" && [ "$(gtls_status_count "$L" 200)" = 1 ] && same 1m.bin; then
    ok "key update confirmed, 1 MiB byte-identical"
else
    fail "key update: exit $RC, $(grep -c 'key update confirmed' "$L") confirmations"; show
fi

# Resumption and 0-RTT: the first connection stores the session ticket and
# the transport parameters; the second sends its request in 0-RTT.
S="$T/session.pem" P="$T/tp.pem"
run ticket 30 --session-file="$S" --tp-file="$P" --wait-for-ticket 127.0.0.1 "$PORT" "$(U 1k.bin)"
if [ $RC -eq 0 ] && [ -s "$S" ] && [ -s "$P" ] && same 1k.bin; then
    ok "session ticket and transport parameters stored"
else
    fail "no session ticket: exit $RC, session file $(stat -c %s "$S" 2>/dev/null || echo missing) bytes"; show
fi
run 0-rtt 30 --session-file="$S" --tp-file="$P" 127.0.0.1 "$PORT" "$(U 64k.bin)"
zr=$(grep -cE ' frm tx [0-9]+ 0RTT STREAM\([^)]*\) id=0x0 ' "$L")
if [ $RC -eq 0 ] && [ "$zr" -gt 0 ] && ! grep -q "Early data was rejected by server" "$L" &&
    [ "$(gtls_status_count "$L" 200)" = 1 ] && same 64k.bin; then
    ok "resumed with 0-RTT: request sent in 0-RTT and accepted, 64 KiB byte-identical"
else
    fail "0-RTT: exit $RC, request in 0-RTT: $zr, $(grep -c 'Early data was rejected' "$L") rejections"; show
fi
# An unsafe method in 0-RTT data could be replayed: 425 Too Early, not the app.
run 0-rtt-post 30 --session-file="$S" --tp-file="$P" -m POST 127.0.0.1 "$PORT" "$(U 64k.bin)"
zr=$(grep -cE ' frm tx [0-9]+ 0RTT STREAM\([^)]*\) id=0x0 ' "$L")
if [ "$zr" -gt 0 ] && [ "$(gtls_status_count "$L" 425)" = 1 ]; then
    ok "POST in 0-RTT: 425 Too Early"
else
    fail "POST in 0-RTT: request in 0-RTT: $zr, 425s: $(gtls_status_count "$L" 425)"; show
fi

# ChaCha20-Poly1305 as the only cipher (GnuTLS priority string).
run chacha20 30 --ciphers='NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305' \
    127.0.0.1 "$PORT" "$(U 1m.bin)"
if [ $RC -eq 0 ] && grep -q "Negotiated cipher suite is CHACHA20-POLY1305" "$L" &&
    [ "$(gtls_status_count "$L" 200)" = 1 ] && same 1m.bin; then
    ok "TLS_CHACHA20_POLY1305_SHA256 only: 1 MiB byte-identical"
else
    fail "ChaCha20: exit $RC, $(grep 'Negotiated cipher' "$L")"; show
fi

# QUIC version 2 (RFC 9369) from the first Initial.
run quic-v2 30 -v 0x6b3343cf 127.0.0.1 "$PORT" "$(U 1m.bin)"
if [ $RC -eq 0 ] && grep -q "the negotiated version is 0x6b3343cf" "$L" &&
    grep -qE ' pkt rx .*version=0x6b3343cf type=Handshake' "$L" &&
    [ "$(gtls_status_count "$L" 200)" = 1 ] && same 1m.bin; then
    ok "QUIC v2 negotiated, 1 MiB byte-identical"
else
    fail "QUIC v2: exit $RC, $(grep 'negotiated version' "$L" | head -n1)"; show
fi
finish
