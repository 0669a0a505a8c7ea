#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A WebSocket echo server for the proxy tests (Debian's python3-websockets).

usage: wsecho.py --port PORT

Listens on 127.0.0.1:PORT (plain HTTP/1.1, as a backend behind quicd);
every message a client sends comes back unchanged; a text message "name"
is answered with "wsecho". Prints "listening" once it accepts
connections and "connections=N" on stderr when it is ended (SIGTERM).
"""
import argparse
import asyncio
import signal
import sys

import websockets

COUNT = [0]


async def echo(ws, path=None):
    COUNT[0] += 1
    async for msg in ws:
        await ws.send("wsecho" if msg == "name" else msg)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with websockets.serve(echo, "127.0.0.1", a.port, max_size=2 ** 24):
        print("listening", flush=True)
        await stop
    print("connections=%d" % COUNT[0], file=sys.stderr, flush=True)


asyncio.run(main())
