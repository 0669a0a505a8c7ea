#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A WebSocket client for the proxy tests (Debian's python3-websockets).

usage: wsclient.py --url wss://HOST:PORT/PATH --cacert FILE [--connect ADDR]
                   [--wait-file F] [--timeout S]

Connects over TLS (ALPN http/1.1) to ADDR (default 127.0.0.1) with SNI
and Host from the URL, then: sends "name" and expects "wsecho"; sends a
text message and 200 KB of random binary and expects both back
unchanged; prints "phase1 ok". With --wait-file it then waits (the
connection open and quiet) until F exists, and does the same again
("phase2 ok"). Closes cleanly; exit 0 when every echo came back, 1 (with
the reason) otherwise.
"""
import argparse
import asyncio
import os
import ssl
import sys
import urllib.parse

import websockets


async def exchange(ws, phase):
    await ws.send("name")
    got = await ws.recv()
    if got != "wsecho":
        raise RuntimeError("%s: name answered %r" % (phase, got))
    text = "hello through quicd %s" % phase
    blob = os.urandom(200 * 1024)
    await ws.send(text)
    await ws.send(blob)
    a = await ws.recv()
    b = await ws.recv()
    if a != text or b != blob:
        raise RuntimeError("%s: echoes differ (%d, %d bytes)" % (phase, len(a), len(b)))
    print("%s ok" % phase, flush=True)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--cacert", required=True)
    p.add_argument("--connect", default="127.0.0.1")
    p.add_argument("--wait-file")
    p.add_argument("--timeout", type=float, default=30)
    a = p.parse_args()
    u = urllib.parse.urlsplit(a.url)
    ctx = ssl.create_default_context(cafile=a.cacert)
    ctx.set_alpn_protocols(["http/1.1"])
    sock_host = a.connect
    async with websockets.connect(a.url, ssl=ctx, host=sock_host, port=u.port,
                                  server_hostname=u.hostname, max_size=2 ** 24,
                                  open_timeout=a.timeout) as ws:
        await asyncio.wait_for(exchange(ws, "phase1"), a.timeout)
        if a.wait_file:
            while not os.path.exists(a.wait_file):
                await asyncio.sleep(0.05)
            await asyncio.wait_for(exchange(ws, "phase2"), a.timeout)
    return 0


try:
    sys.exit(asyncio.run(main()))
except Exception as e:  # any failure is the test's answer
    print("wsclient: %s: %s" % (type(e).__name__, e), flush=True)
    sys.exit(1)
