# SPDX-License-Identifier: MIT
# One spoofed ICMP "fragmentation needed" must not cut a client off
# HTTP/3 (issue 23, the quic-go CVE-2024-53259 class). In a network
# namespace of its own: while a 16 MB download is read at 2 MB/s by a
# client on 127.0.0.2 (another address than the server's, as a real
# client has: the kernel keys a path MTU by the destination), a raw
# socket tells the server that its datagrams to the client need a next-hop
# MTU of 68 (icmpspoof.py); the kernel takes that as a 552-byte path MTU
# to 127.0.0.2 for 10 minutes (checked in its route cache, so the attack
# did happen). The download must still complete byte-identical, a new
# HTTP/3 connection must still be made (its handshake datagrams are
# >= 1,200 bytes), and the worker must have had no refused send. With the
# sockets on IP_PMTUDISC_DO, as before, every datagram above 552 bytes
# failed with EMSGSIZE: the download stalled and the new handshake timed
# out. Then the counter: with the loopback's own MTU lowered to 1,300,
# ngtcp2's path MTU probes (up to 1,452 bytes of payload) are refused by
# the kernel, which the worker counts (udp_emsgsize in quicctl status)
# and logs, while downloads go on at the smaller size.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/faultlib.sh"
fault_netns "$@"
need_pycurl
fault_setup 1
head -c 16000000 /dev/urandom > "$T/htdocs/16m.bin"
head -c 1048576 /dev/urandom > "$T/htdocs/1m.bin"
h3_start || finish

spoof() { "$H3_PYTHON" "$QD_SRCDIR/tests/integration/icmpspoof.py" "$@"; }
# client_port - the local port of the client's (connected) UDP socket to us
client_port() { ss -Hun state established "( dport = :$PORT )" | awk '{ n = split($3, a, ":"); print a[n]; exit }'; }
# learnt_mtu - the path MTU the kernel keeps for the client, 127.0.0.2 ("" if none)
learnt_mtu() { ip route get 127.0.0.2 | sed -n 's/.* mtu lock \([0-9]*\).*/\1/p'; }
wstat() { proc_field worker 0 "$1"; }

[ -z "$(learnt_mtu)" ] || die "the namespace has a path MTU for 127.0.0.2 already: $(ip route get 127.0.0.2)"

fault_client --local 127.0.0.2 --timeout 120 --connect-timeout 15 get --max-speed 2097152 --mark 2097152 "$T/mark" \
    "$(h3_url 16m.bin)" "$T/htdocs/16m.bin" > "$T/client.out" 2>&1 &
CLIENT=$!
BG_PIDS="$BG_PIDS $CLIENT"
if wait_until 30 test -e "$T/mark"; then
    cport=$(client_port)
    [ -n "$cport" ] || fail "no client socket: $(ss -Huan)"
    out=$(spoof 127.0.0.1 "$PORT" 127.0.0.2 "${cport:-1}" 68 2>&1)
    log "2 MB arrived; $out"
    wait_until 2 test -n "$(learnt_mtu)" 2>/dev/null
    mtu=$(learnt_mtu)
    [ "$mtu" = 552 ] && ok "the kernel took the spoofed ICMP: path MTU $mtu to 127.0.0.2 ($(ip route get 127.0.0.2 | tr -s ' \n' ' '))" ||
        fail "the kernel learnt no path MTU from the ICMP: $(ip route get 127.0.0.2 | tr '\n' ' ')"
else
    fail "the download never reached 2 MB: $(cat "$T/client.out")"
fi
wait "$CLIENT"
rc=$?
out=$(cat "$T/client.out")
fault_log "$out"
[ $rc -eq 0 ] && ok "16 MB byte-identical across the spoofed ICMP: $(fault_summary "$out")" ||
    fail "the download after the spoofed ICMP: $(fault_summary "$out") (rc $rc)"

out=$(h3get --local 127.0.0.2 --connect-timeout 10 --timeout 20 fetch "$(h3_url 1m.bin)" "$T/after.bin" 2>&1)
echo "$out" | grep -q "status=200 version=3" && cmp -s "$T/htdocs/1m.bin" "$T/after.bin" &&
    ok "a new HTTP/3 connection from the same address after it: $(echo "$out" | cut -c 1-120)" ||
    fail "no new HTTP/3 connection after the spoofed ICMP: $out"
[ "$(wstat udp_send_errors)" = 0 ] && ok "no refused send (udp_send_errors 0)" ||
    fail "the worker had refused sends: udp_send_errors=$(wstat udp_send_errors) udp_emsgsize=$(wstat udp_emsgsize)"

# The counter: a loopback MTU below ngtcp2's probes
ip link set lo mtu 1300 || die "ip link set lo mtu 1300"
out=$(h3get --timeout 60 fetch "$(h3_url 16m.bin)" "$T/small-mtu.bin" 2>&1)
echo "$out" | grep -q "status=200 version=3" && cmp -s "$T/htdocs/16m.bin" "$T/small-mtu.bin" &&
    ok "16 MB over a 1,300-byte MTU: $(echo "$out" | cut -c 1-120)" || fail "download at MTU 1300: $out"
# send_counts - "UDP_SEND_ERRORS UDP_EMSGSIZE" of worker 0, from one status
send_counts() {
    quicctl status --json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["processes"]:
    if p["role"] == "worker":
        print(p["udp_send_errors"], p["udp_emsgsize"])
        break'
}
emsg() { read -r e m <<< "$(send_counts)"; [ "${m:-0}" -gt 0 ]; }
wait_until 3 emsg &&
    ok "quicctl status counts the refused sends: udp_send_errors=$e udp_emsgsize=$m" ||
    fail "no EMSGSIZE counted: $(send_counts)"
[ "${e:-0}" -ge "${m:-1}" ] && ok "udp_send_errors counts them too ($e >= $m)" ||
    fail "udp_send_errors $e < udp_emsgsize $m"
grep -q "quicd/worker\[0\].*sendmsg of [0-9]* bytes on .*: Message too long" "$T/quicd.log" &&
    ok "and the worker says so: $(grep -m1 "sendmsg of" "$T/quicd.log" | cut -d' ' -f2-)" ||
    fail "no log line for the refused sends"
finish
