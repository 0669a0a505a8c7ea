#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A small HTTP/1.1 backend for the proxy tests, over TCP or a Unix socket.

usage: httpbackend.py (--port PORT | --unix PATH) [--dual] [--fail-file F] [--name NAME]

TCP listens on 127.0.0.1, or with --dual on [::] for IPv6 and IPv4 (so a
name that resolves to ::1 or to 127.0.0.1 reaches it).

GET /healthz answers 200 "ok NAME", or 503 while the file F exists (a
backend that is up but unhealthy); any other path 200 with "NAME PATH".
Every request is counted on stderr at exit ("requests=N"). Runs until
killed; prints "listening" on stdout once it accepts connections.
"""
import argparse
import http.server
import os
import socket
import socketserver
import sys

COUNT = [0]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        COUNT[0] += 1
        a = self.server.args
        if self.path == "/healthz":
            bad = a.fail_file and os.path.exists(a.fail_file)
            status, body = (503, b"unhealthy\n") if bad else (200, b"ok %s\n" % a.name.encode())
        else:
            status, body = 200, ("%s %s\n" % (a.name, self.path)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class TCP(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TCP6(TCP):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class Unix(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        req, _ = super().get_request()
        return req, ("unix", 0)


def main():
    p = argparse.ArgumentParser()
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--port", type=int)
    g.add_argument("--unix")
    p.add_argument("--dual", action="store_true")
    p.add_argument("--fail-file")
    p.add_argument("--name", default="backend")
    a = p.parse_args()
    if a.unix:
        if os.path.exists(a.unix):
            os.unlink(a.unix)
        srv = Unix(a.unix, Handler)
    elif a.dual:
        srv = TCP6(("::", a.port), Handler)
    else:
        srv = TCP(("127.0.0.1", a.port), Handler)
    srv.args = a
    print("listening", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print("requests=%d" % COUNT[0], file=sys.stderr)


if __name__ == "__main__":
    main()
