#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A small UDP relay that impairs QUIC traffic, for quicd's fault tests.

Clients send to --listen; for each client address the relay opens an
upstream socket of its own towards --server (a NAT mapping) and relays the
answers back from --listen.  Impairments, each in the directions --dir
names ("up" = client to server, "down" = server to client, or "both"):

  --delay-ms D      hold every datagram D ms (each direction, so the RTT
                    grows by 2 D); applies to both directions always
  --reorder P       hold back P % of the datagrams until --reorder-gap
                    (default 3) later ones of the same direction have gone
                    (or 50 ms have passed), so they arrive out of order
  --dup P           send P % of the datagrams twice
  --corrupt P       flip one byte (in the second half of the datagram, where
                    the protected payload is) of P % of the datagrams of
                    --corrupt-phase: "handshake" (long-header packets),
                    "transfer" (short-header packets) or "any"
  --rebind-every N  move a client to a new upstream socket (a new source
                    port towards the server: NAT rebinding) after every N
                    datagrams it sent; SIGUSR1 rebinds every client now.
                    Datagrams the server still sends to an old port are
                    dropped and counted ("stale").

It exits after --timeout seconds (default 120) or on SIGTERM/SIGINT.  The
counters go as JSON to --stats (written when the relay is ready, every
0.2 s while they change, and at exit; atomically, via rename): received
and sent per direction, delayed, reordered, duplicated, corrupted (and
per direction),
rebinds, stale, clients, and the seed (--seed, default random) that makes
a run repeatable.  Only the standard library is used.
"""

import argparse
import heapq
import json
import os
import random
import selectors
import signal
import socket
import sys
import time

UP, DOWN = "up", "down"


def addr_arg(s):
    host, _, port = s.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("want HOST:PORT, got %r" % s)
    return (host.strip("[]"), int(port))


def percent(s):
    v = float(s)
    if not 0 <= v <= 100:
        raise argparse.ArgumentTypeError("a percentage 0..100, got %r" % s)
    return v


class Flow:
    """One client address and its upstream socket (and retired ones)."""

    def __init__(self, client):
        self.client = client
        self.up = None
        self.sent = 0         # datagrams from the client since the last rebind
        self.retired = []     # (close_at, sock)


class Relay:
    def __init__(self, opt):
        self.opt = opt
        self.rng = random.Random(opt.seed)
        self.sel = selectors.DefaultSelector()
        fam = socket.AF_INET6 if ":" in opt.listen[0] else socket.AF_INET
        self.fam = fam
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.sock.bind(opt.listen)
        self.sock.setblocking(False)
        self.sel.register(self.sock, selectors.EVENT_READ, None)
        self.flows = {}       # client address -> Flow
        self.by_sock = {}     # upstream socket -> (Flow, is_current)
        self.timers = []      # heap of (when, seq, kind, payload)
        self.seq = 0
        self.held = {UP: [], DOWN: []}  # [remaining, deadline, dgram, flow]
        self.c = {"received_up": 0, "received_down": 0, "sent_up": 0, "sent_down": 0,
                  "delayed": 0, "reordered": 0, "duplicated": 0, "corrupted": 0,
                  "corrupted_up": 0, "corrupted_down": 0,
                  "rebinds": 0, "stale": 0, "clients": 0, "send_errors": 0,
                  "seed": opt.seed, "listen_port": self.sock.getsockname()[1]}
        self.dirty = True
        self.last_write = 0.0
        self.rebind_now = False
        self.stop = False

    # ---------------------------------------------------------- helpers

    def applies(self, direction):
        return self.opt.dir in ("both", direction)

    def chance(self, pct):
        return pct > 0 and self.rng.random() * 100 < pct

    def write_stats(self, force=False):
        now = time.monotonic()
        if not force and (not self.dirty or now - self.last_write < 0.2):
            return
        tmp = self.opt.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.c, f, sort_keys=True)
            f.write("\n")
        os.rename(tmp, self.opt.stats)
        self.dirty = False
        self.last_write = now

    def new_upstream(self, flow):
        s = socket.socket(self.fam, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.bind((self.opt.listen[0], 0))
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, None)
        if flow.up is not None:
            self.by_sock[flow.up] = (flow, False)
            flow.retired.append((time.monotonic() + 2.0, flow.up))
            self.c["rebinds"] += 1
        flow.up = s
        flow.sent = 0
        self.by_sock[s] = (flow, True)

    def close_retired(self, now):
        for flow in self.flows.values():
            keep = []
            for when, s in flow.retired:
                if when <= now:
                    self.sel.unregister(s)
                    del self.by_sock[s]
                    s.close()
                else:
                    keep.append((when, s))
            flow.retired = keep

    def corrupt(self, direction, data):
        first = data[0]
        is_long = bool(first & 0x80)
        phase = self.opt.corrupt_phase
        if phase == "handshake" and not is_long or phase == "transfer" and is_long:
            return data
        if not self.chance(self.opt.corrupt):
            return data
        b = bytearray(data)
        lo = len(b) // 2
        i = self.rng.randrange(lo, len(b))
        b[i] ^= self.rng.randrange(1, 256)
        self.c["corrupted"] += 1
        self.c["corrupted_" + direction] += 1
        return bytes(b)

    # ---------------------------------------------------------- the pipeline

    def transmit(self, direction, data, flow):
        """Last stage: the datagram leaves the relay."""
        try:
            if direction == UP:
                flow.up.sendto(data, self.opt.server)
            else:
                self.sock.sendto(data, flow.client)
            self.c["sent_" + direction] += 1
        except OSError:
            self.c["send_errors"] += 1
        self.dirty = True

    def delay_stage(self, direction, data, flow):
        if self.opt.delay_ms > 0:
            self.c["delayed"] += 1
            self.push(time.monotonic() + self.opt.delay_ms / 1000.0, "send",
                      (direction, data, flow))
        else:
            self.transmit(direction, data, flow)

    def push(self, when, kind, payload):
        self.seq += 1
        heapq.heappush(self.timers, (when, self.seq, kind, payload))

    def reorder_stage(self, direction, data, flow):
        held = self.held[direction]
        if self.applies(direction) and self.chance(self.opt.reorder):
            self.c["reordered"] += 1
            item = [self.opt.reorder_gap, time.monotonic() + 0.05, data, flow]
            held.append(item)
            self.push(item[1], "release", (direction, item))
            return
        self.delay_stage(direction, data, flow)
        # the ones this datagram overtook follow it
        for item in list(held):
            item[0] -= 1
            if item[0] <= 0:
                held.remove(item)
                self.delay_stage(direction, item[2], item[3])

    def ingress(self, direction, data, flow):
        self.c["received_" + direction] += 1
        self.dirty = True
        if not data:
            return
        if self.applies(direction) and self.opt.corrupt > 0:
            data = self.corrupt(direction, data)
        copies = 1
        if self.applies(direction) and self.chance(self.opt.dup):
            self.c["duplicated"] += 1
            copies = 2
        for _ in range(copies):
            self.reorder_stage(direction, data, flow)

    # ---------------------------------------------------------- events

    def on_client(self):
        for _ in range(64):
            try:
                data, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            flow = self.flows.get(addr)
            if flow is None:
                flow = self.flows[addr] = Flow(addr)
                self.new_upstream(flow)
                self.c["clients"] += 1
            elif self.opt.rebind_every > 0 and flow.sent >= self.opt.rebind_every:
                self.new_upstream(flow)
            flow.sent += 1
            self.ingress(UP, data, flow)

    def on_upstream(self, s):
        flow, current = self.by_sock[s]
        for _ in range(64):
            try:
                data, addr = s.recvfrom(65535)
            except BlockingIOError:
                return
            if not current:
                self.c["stale"] += 1
                self.dirty = True
                continue
            self.ingress(DOWN, data, flow)

    def run_timers(self, now):
        while self.timers and self.timers[0][0] <= now:
            _, _, kind, payload = heapq.heappop(self.timers)
            if kind == "send":
                self.transmit(*payload)
            else:  # "release": a held datagram nothing overtook in time
                direction, item = payload
                if item in self.held[direction]:
                    self.held[direction].remove(item)
                    self.delay_stage(direction, item[2], item[3])

    def run(self):
        end = time.monotonic() + self.opt.timeout
        self.write_stats(force=True)
        while not self.stop:
            now = time.monotonic()
            if now >= end:
                break
            if self.rebind_now:
                for flow in self.flows.values():
                    self.new_upstream(flow)
                self.rebind_now = False
                self.dirty = True
            wait = 0.05
            if self.timers:
                wait = max(0.0, min(wait, self.timers[0][0] - now))
            for key, _ in self.sel.select(wait):
                if key.fileobj is self.sock:
                    self.on_client()
                else:
                    self.on_upstream(key.fileobj)
            now = time.monotonic()
            self.run_timers(now)
            self.close_retired(now)
            self.write_stats()
        self.write_stats(force=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", type=addr_arg, required=True)
    p.add_argument("--server", type=addr_arg, required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--dir", choices=("up", "down", "both"), default="both")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--reorder", type=percent, default=0.0)
    p.add_argument("--reorder-gap", type=int, default=3)
    p.add_argument("--dup", type=percent, default=0.0)
    p.add_argument("--corrupt", type=percent, default=0.0)
    p.add_argument("--corrupt-phase", choices=("handshake", "transfer", "any"), default="any")
    p.add_argument("--rebind-every", type=int, default=0)
    p.add_argument("--seed", type=int, default=None)
    opt = p.parse_args()
    if not 0 < opt.timeout <= 900 or not 0 <= opt.delay_ms <= 5000 or opt.reorder_gap < 1:
        p.error("--timeout 0..900 s, --delay-ms 0..5000, --reorder-gap >= 1")
    if opt.seed is None:
        opt.seed = int.from_bytes(os.urandom(4), "big")
    relay = Relay(opt)

    def on_stop(*_):
        relay.stop = True

    def on_rebind(*_):
        relay.rebind_now = True
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, on_rebind)
    relay.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
