# SPDX-License-Identifier: MIT
# UDP receive-queue drops (issue 25, part 1: the most common HTTP/3
# deployment problem): with a small udp_buffer, quicctl status shows the
# buffers the kernel granted (udp_rcvbuf, udp_sndbuf: twice udp_buffer)
# and no drops; while the worker is stopped (SIGSTOP) a burst of datagrams
# overflows its socket's queue, and once it runs again udp_rxq_drops
# counts them (the socket's drop counter, SO_MEMINFO: what SO_RXQ_OVFL
# reports), no more than were sent, and HTTP/3 still works; the worker's
# long status line reaches quicctl whole.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1 "udp_buffer = 65536"
h3_start || finish

WPID=$(proc_field worker 0 pid)
[ -n "$WPID" ] || die "no worker pid"
# the first status report of the worker (every second) carries them
reported() { [ "$(proc_field worker 0 udp_rcvbuf)" != 0 ]; }
wait_until 5 reported
rcv=$(proc_field worker 0 udp_rcvbuf) snd=$(proc_field worker 0 udp_sndbuf)
drops0=$(proc_field worker 0 udp_rxq_drops)
[ "$rcv" = 131072 ] && [ "$snd" = 131072 ] && [ "$drops0" = 0 ] &&
    ok "quicctl status: udp_rcvbuf $rcv, udp_sndbuf $snd (twice udp_buffer), no drops" ||
    fail "buffers and drops before: rcvbuf=$rcv sndbuf=$snd drops=$drops0"

N=4000
kill -STOP "$WPID"
/usr/bin/python3 - "$PORT" "$N" <<'PY'
import os, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):  # short-header packets for no connection: read, then dropped by the worker
    s.sendto(b"\x40" + os.urandom(1199), ("127.0.0.1", port))
PY
kill -CONT "$WPID"
dropped() { d=$(proc_field worker 0 udp_rxq_drops); [ -n "$d" ] && [ "$d" -gt 0 ]; }
wait_until 5 dropped
d=$(proc_field worker 0 udp_rxq_drops)
# 131072 bytes of queue hold about 50 of these (each costs ~2.3 KB of buffer)
[ -n "$d" ] && [ "$d" -gt $((N / 2)) ] && [ "$d" -le "$N" ] &&
    ok "a burst of $N datagrams into a stopped worker: udp_rxq_drops $d" ||
    fail "udp_rxq_drops after the burst: '$d' of $N sent"
h3get fetch "$(h3_url "")" - > "$T/after.out" 2>&1 && ok "HTTP/3 still answers" ||
    fail "after the burst: $(cat "$T/after.out")"
# every field of the worker's status line reaches quicctl (the line is long)
[ -n "$(proc_field worker 0 generation)" ] && [ -n "$(proc_field worker 0 proxy_retries)" ] &&
    ok "quicctl status --json has every field of the worker's line" ||
    fail "fields missing from the worker's JSON: $(quicctl status --json | grep -o '"role": "worker".*' | head -c 600)"
finish
