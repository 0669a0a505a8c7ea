#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An HTTP/1.1 backend for the proxy tests, over TCP or a Unix socket.

usage: httpbackend.py (--port PORT | --unix PATH) [--dual] [--fail-file F]
                      [--name NAME] [--record FILE] [--idle-close MS]
                      [--delay MS]

Stdlib only, one thread per connection. Prints "listening" on stdout once
it accepts connections; runs until killed. On SIGTERM or SIGINT it prints
"requests=N" on stderr and exits 0 (N counts every recorded request, see
--record, including rejected ones).

Options
  --port PORT      listen on 127.0.0.1:PORT (TCP_NODELAY on every connection)
  --dual           with --port: listen on [::]:PORT for IPv6 and IPv4 (so a
                   name that resolves to ::1 or to 127.0.0.1 reaches it)
  --unix PATH      listen on a Unix socket (an existing PATH is removed first)
  --name NAME      the backend's name (default "backend"); every answer
                   carries "X-Backend: NAME"
  --fail-file F    /healthz answers 503 while the file F exists
  --record FILE    append one JSON line per request to FILE, written and
                   flushed before the answer's last byte is sent (for
                   /echo: when the request body has been read, before the
                   last piece of the answer). Keys:
                     method, target, version  the request line ("HTTP/1.1");
                                      null if it could not be parsed
                     headers   [[name, value], ...] in received order, the
                               name in its original case, the value without
                               surrounding spaces/tabs
                     body_len, body_sha256  the decoded body as read (for a
                               chunked body: the chunk data only)
                     chunked   true if the body was chunked
                     trailers  [[name, value], ...] of a chunked body
                     conn      the connection's number (1, 2, ... in
                               accept order)
                     seq       the request's number on its connection (1, ...)
                     error     null, or why the request was rejected or cut
                               short (then it was answered 4xx/5xx, or the
                               connection was closed)
                   Strings are the received bytes decoded as ISO-8859-1
                   (JSON-escaped). A connection closed in the middle of a
                   request head is recorded with error "eof in head"; a
                   connection closed before a request's first byte is not.
  --idle-close MS  a connection that waits MS ms for a request's first byte
                   (after accept or after an answer: keep-alive) is closed by
                   the backend: shutdown(SHUT_RDWR) then close
  --delay MS       wait MS ms before the first byte of every answer (before
                   the 1xx of /hints and /status/1xx, the bytes of /garbage;
                   the 100 Continue answering an Expect is sent at once)

Request framing (RFC 9112)
  Keep-alive for HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
  "Connection: keep-alive" (answered with "Connection: keep-alive").
  Pipelined requests are answered in order. Empty lines before a request
  line are skipped. Lines must end with CRLF. Any method token is accepted
  (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, ...); CONNECT gets 405.
  HEAD gets the head GET would get (the same Content-Length or chunked
  Transfer-Encoding) without a body. Host is not checked. The body is read
  for every method:
    Content-Length: exactly one such field, 1-18 digits;
    Transfer-Encoding: exactly "chunked" (case-insensitive, the lines
      combined), chunk sizes in hex (leading zeros allowed), chunk
      extensions (; name[=token|"quoted"]) accepted and ignored, trailer
      fields recorded; a chunk's data must be followed by CRLF;
    neither: no body.
  Answered with an error and "Connection: close" (the connection is then
  closed after reading what the client still sends for up to 1 s):
    400  a malformed request line or field line (space before the colon,
         obs-fold, control characters, a target with spaces or non-ASCII),
         both Transfer-Encoding and Content-Length, several Content-Length
         fields or a bad value, a Transfer-Encoding other than "chunked",
         Transfer-Encoding in an HTTP/1.0 request, bad chunk syntax, a
         body cut short by the client closing
    414  a request line over 16 KiB
    431  a head over 64 KiB or over 200 fields (same for trailers)
    417  an Expect other than 100-continue
    505  an HTTP version other than 1.x
  "Expect: 100-continue" (HTTP/1.1, with a body to come) is answered with
  "HTTP/1.1 100 Continue" before the body is read. No 1xx is ever sent to an
  HTTP/1.0 client. Chunked answers to an HTTP/1.0 client are sent unframed
  (no trailers) and the connection is closed after them.

Paths: any method; a query string may follow the path (it is ignored except
by the default answer); a number parameter that is not decimal digits gets
400. Plain-text bodies end with "\\n". Unless said otherwise the body is
read completely (streamed, hashed) before answering.
  /healthz     200 "ok NAME", or 503 "unhealthy" while F exists
  /bytes/N     200, Content-Length N, application/octet-stream: byte i is
               (i * 7 + i // 251) & 0xff. The pattern repeats every 64256
               bytes (= 251 * 256), so pattern(n) is
               (P * (n // 64256 + 1))[:n] with P = pattern(64256).
               Sent in pieces of at most 64256 bytes.
  /chunked/N   the same N bytes, Transfer-Encoding: chunked, chunks of at
               most 16384 bytes, "Trailer: x-sha256" in the head and the
               trailer "x-sha256: HEX" (sha256 of the N bytes, lowercase)
  /echo        200 with the request body, streamed (read up to 64 KiB,
               write it): Content-Length as the request's when it had one
               (0 without a body), chunked when the request was chunked.
               Content-Type as received, application/octet-stream if none.
  /sha256      200 "LEN HEX" of the request body (LEN decimal, HEX the
               lowercase sha256)
  /headers     200 application/json {"method", "target", "version",
               "headers": [[name, value], ...]} as received (as in --record)
  /status/CODE that status (200-599), text/plain body "status CODE"; no body
               and no Content-Length for 204 and 304, Content-Length: 0 for
               205. CODE 100-199 except 101: that 1xx interim answer (with
               no fields) then 200 "status CODE"; 101 or outside 100-599:
               400.
  /slow/MS     waits MS ms before sending anything, then 200 "slow"
  /drip/N/MS   200 chunked, N chunks "chunk K\\n" (K = 1..N), one chunk per
               write, MS ms between chunks (none before the first)
  /sse/N/MS    200 text/event-stream, Cache-Control: no-cache, chunked: N
               events "data: event K\\n\\n" (K = 1..N), each its own chunk
               sent at once, MS ms apart, then the last chunk
  /garbage     writes "garbage\\r\\n\\r\\n" (not HTTP) and closes
  /close       200 "close" with "Connection: close", then closes
  /hints       "103 Early Hints" with "Link: </style.css>; rel=preload",
               then 200 "hints" with the same Link field
  /continue    sends "100 Continue" (HTTP/1.1 requests, with or without an
               Expect; once) before reading the body, then 200 "LEN" (the
               body's length)
  /die         the request is recorded, "requests=N" printed, then the
               process exits at once with status 3 (os._exit) without
               answering; the body is not read
  /name        200 "NAME"
  /early       425 "too early" to a request with "Early-Data: 1" (RFC 8470),
               else 200 "late"
  /trailers    200 chunked, "Trailer: x-trailer", body "body\\n", trailer
               "x-trailer: yes"
  anything else (and "*")  200 "NAME TARGET" (TARGET as received)
A client that goes away mid-answer only ends its connection's thread.
Memory per connection is bounded (a 64 KiB head, 64 KiB pieces of body).
"""
import argparse
import hashlib
import http
import json
import os
import re
import signal
import socket
import sys
import threading
import time

COUNT = [0]
LOCK = threading.Lock()
CONN_IDS = [0]
ARGS = None
RECORD = [None]

PIECE = 65536
MAX_LINE = 16384
MAX_HEAD = 65536
MAX_FIELDS = 200
MAX_CHUNK_LINE = 4096

TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
REQ_LINE = re.compile(rb"(" + TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
FIELD = re.compile(rb"(" + TOKEN + rb"):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")
CHUNK = re.compile(rb"([0-9A-Fa-f]{1,32})((?:[ \t]*;[ \t]*" + TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + TOKEN +
                   rb'|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*)')

# the /bytes pattern: period 251 * 256 (i // 251 gains 256 and i * 7 gains 0 mod 256)
PERIOD = 251 * 256
PATTERN = bytes(((i * 7 + i // 251) & 0xff) for i in range(PERIOD))
PATTERN2 = PATTERN + PATTERN


def pattern_piece(off, n):
    """n <= PERIOD bytes of the pattern from offset off"""
    o = off % PERIOD
    return PATTERN2[o:o + n]


class Bad(Exception):
    """A request the backend rejects: code, reason."""

    def __init__(self, code, why):
        super().__init__(why)
        self.code = code
        self.why = why


class Gone(Exception):
    """The client closed (or reset) the connection."""


class IdleClose(Exception):
    pass


def latin(b):
    return b.decode("iso-8859-1")


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self, n=PIECE):
        try:
            d = self.sock.recv(max(n, 4096))
        except (ConnectionError, OSError) as e:
            if isinstance(e, socket.timeout):
                raise
            raise Gone(str(e))
        if not d:
            raise Gone("eof")
        self.buf += d

    def wait_first(self, idle_ms):
        """wait for a request's first byte; False on EOF before it"""
        if self.buf:
            return True
        if idle_ms is not None:
            self.sock.settimeout(idle_ms / 1000.0)
        try:
            self.fill()
        except socket.timeout:
            raise IdleClose()
        except Gone:
            return False
        finally:
            if idle_ms is not None:
                self.sock.settimeout(None)
        return True

    def readline(self, limit, code=400, what="line"):
        """a line without its CRLF; Bad on a bare LF/CR or over limit"""
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                break
            if len(self.buf) > limit:
                raise Bad(code, what + " too long")
            start = len(self.buf)
            self.fill()
        if i > limit:
            raise Bad(code, what + " too long")
        line = bytes(self.buf[:i + 1])
        del self.buf[:i + 1]
        if not line.endswith(b"\r\n"):
            raise Bad(400, "bare LF")
        line = line[:-2]
        if b"\r" in line:
            raise Bad(400, "bare CR")
        return line

    def read(self, n):
        """1..n bytes"""
        if not self.buf:
            self.fill(min(n, 262144))
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d


class Body:
    """The request body, read in pieces; counts and hashes it."""

    def __init__(self, conn, req):
        self.conn = conn
        self.req = req
        self.rd = conn.rd
        self.length = 0
        self.sha = hashlib.sha256()
        self.done = not (req.chunked or req.clen)
        self.left = req.clen or 0     # bytes left in the current chunk / body
        self.started = False

    def continue_100(self):
        req = self.req
        if not req.sent_100 and req.version == "HTTP/1.1":
            req.sent_100 = True
            self.conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def piece(self):
        """the next piece of the body, b"" at its end"""
        if self.done:
            return b""
        if not self.started:
            self.started = True
            if self.req.expect:
                self.continue_100()
        try:
            if not self.req.chunked:
                d = self.rd.read(min(self.left, PIECE))
                self.left -= len(d)
                if self.left == 0:
                    self.done = True
            else:
                if self.left == 0:
                    line = self.rd.readline(MAX_CHUNK_LINE, 400, "chunk line")
                    m = CHUNK.fullmatch(line)
                    if not m:
                        raise Bad(400, "bad chunk line")
                    self.left = int(m.group(1), 16)
                    if self.left > 1 << 62:
                        raise Bad(400, "chunk too large")
                    if self.left == 0:
                        self.trailers()
                        self.done = True
                        return b""
                d = self.rd.read(min(self.left, PIECE))
                self.left -= len(d)
                if self.left == 0:
                    while len(self.rd.buf) < 2:
                        self.rd.fill(2)
                    if self.rd.buf[:2] != b"\r\n":
                        raise Bad(400, "no CRLF after chunk data")
                    del self.rd.buf[:2]
        except Gone:
            raise Bad(400, "eof in body")
        self.length += len(d)
        self.sha.update(d)
        return d

    def trailers(self):
        size = 0
        while True:
            line = self.rd.readline(MAX_HEAD, 431, "trailer section")
            if not line:
                return
            size += len(line) + 2
            if size > MAX_HEAD or len(self.req.trailers) >= MAX_FIELDS:
                raise Bad(431, "trailer section too large")
            m = FIELD.fullmatch(line)
            if not m:
                raise Bad(400, "bad trailer field")
            self.req.trailers.append([latin(m.group(1)), latin(m.group(2))])

    def drain(self):
        while self.piece():
            pass


class Request:
    def __init__(self, conn, seq):
        self.conn_id = conn
        self.seq = seq
        self.method = self.target = self.version = None
        self.headers = []
        self.trailers = []
        self.chunked = False
        self.clen = None
        self.expect = False
        self.keep = False
        self.sent_100 = False
        self.recorded = False
        self.body = None
        self.delayed = False

    def get(self, name):
        return [v for n, v in self.headers if n.lower() == name]

    def record(self, error=None):
        if self.recorded:
            return
        self.recorded = True
        with LOCK:
            COUNT[0] += 1
        if not RECORD[0]:
            return
        b = self.body
        rec = {"method": self.method, "target": self.target, "version": self.version,
               "headers": self.headers, "body_len": b.length if b else 0,
               "body_sha256": (b.sha if b else hashlib.sha256()).hexdigest(),
               "chunked": self.chunked, "trailers": self.trailers,
               "conn": self.conn_id, "seq": self.seq, "error": error}
        line = json.dumps(rec) + "\n"
        with LOCK:
            RECORD[0].write(line)
            RECORD[0].flush()


def reason(code):
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


class Conn:
    def __init__(self, sock, cid):
        self.sock = sock
        self.cid = cid
        self.rd = Reader(sock)

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Gone(str(e))

    # ---- the connection
    def run(self):
        try:
            seq = 0
            while True:
                if not self.rd.wait_first(ARGS.idle_close):
                    return
                seq += 1
                req = Request(self.cid, seq)
                try:
                    self.read_head(req)
                    req.body = Body(self, req)
                    keep = self.handle(req)
                except Bad as e:
                    req.record(e.why)
                    self.error(req, e.code, e.why)
                    return self.linger()
                if not keep:
                    return self.linger()
        except IdleClose:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except Gone:
            pass
        except Exception as e:  # never let one connection kill the server
            print("httpbackend: connection %d: %r" % (self.cid, e), file=sys.stderr)
        finally:
            self.sock.close()

    def linger(self):
        """close after reading what the client still sends (up to 1 s, 1 MiB)"""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(1.0)
            end = time.monotonic() + 1.0
            n = 0
            while n < 1 << 20 and time.monotonic() < end:
                d = self.sock.recv(65536)
                if not d:
                    break
                n += len(d)
        except OSError:
            pass

    def read_head(self, req):
        rd = self.rd
        try:
            for _ in range(100):
                line = rd.readline(MAX_LINE, 414, "request line")
                if line:
                    break
            else:
                raise Bad(400, "empty lines")
            m = REQ_LINE.fullmatch(line)
            if not m:
                raise Bad(400, "bad request line")
            req.method, req.target = latin(m.group(1)), latin(m.group(2))
            req.version = "HTTP/%s.%s" % (latin(m.group(3)), latin(m.group(4)))
            if m.group(3) != b"1":
                raise Bad(505, "HTTP version not supported")
            size = len(line) + 2
            while True:
                line = rd.readline(MAX_HEAD, 431, "head")
                if not line:
                    break
                size += len(line) + 2
                if size > MAX_HEAD or len(req.headers) >= MAX_FIELDS:
                    raise Bad(431, "head too large")
                m = FIELD.fullmatch(line)
                if not m:
                    raise Bad(400, "bad field line")
                req.headers.append([latin(m.group(1)), latin(m.group(2))])
        except Gone:
            raise Bad(400, "eof in head")
        minor11 = req.version != "HTTP/1.0"
        conn = {t.strip().lower() for v in req.get("connection") for t in v.split(",")}
        req.keep = ("close" not in conn) if minor11 else ("keep-alive" in conn)
        te = req.get("transfer-encoding")
        cl = req.get("content-length")
        if te and cl:
            raise Bad(400, "both Transfer-Encoding and Content-Length")
        if te:
            codings = [t.strip().lower() for t in ", ".join(te).split(",")]
            if codings != ["chunked"]:
                raise Bad(400, "unsupported Transfer-Encoding")
            if not minor11:
                raise Bad(400, "Transfer-Encoding in HTTP/1.0")
            req.chunked = True
        if cl:
            if len(cl) > 1 or not re.fullmatch(r"[0-9]{1,18}", cl[0]):
                raise Bad(400, "bad Content-Length")
            req.clen = int(cl[0])
        ex = req.get("expect")
        if ex:
            if [e.lower() for e in ex] != ["100-continue"]:
                raise Bad(417, "unsupported Expect")
            req.expect = True

    # ---- answers
    def delay(self, req):
        if not req.delayed:
            req.delayed = True
            if ARGS.delay:
                time.sleep(ARGS.delay / 1000.0)

    def interim(self, req, code, fields=()):
        if req.version != "HTTP/1.1":
            return
        self.delay(req)
        head = "HTTP/1.1 %d %s\r\n" % (code, reason(code))
        head += "".join("%s: %s\r\n" % f for f in fields)
        self.send((head + "\r\n").encode("latin-1"))

    def error(self, req, code, why):
        req.keep = False
        body = ("%s: %s\n" % (reason(code).lower(), why)).encode()
        try:
            r = Resp(self, req)
            r.start(code, [("Content-Type", "text/plain")], length=len(body))
            r.write(body)
        except Gone:
            pass

    def simple(self, req, code, body, ctype="text/plain", fields=(), close=False):
        if isinstance(body, str):
            body = body.encode()
        r = Resp(self, req)
        r.start(code, [("Content-Type", ctype)] + list(fields), length=len(body), close=close)
        r.write(body)
        r.finish()
        return r.keep

    def handle(self, req):
        t = req.target
        path = t
        if re.match(r"(?i)https?://", path):
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        path = path.split("?", 1)[0]
        parts = path.split("/")
        name = parts[1] if len(parts) > 1 and path.startswith("/") else ""
        nums = parts[2:]

        def args(n):
            if len(nums) != n:
                return None
            if not all(re.fullmatch(r"[0-9]{1,12}", x) for x in nums):
                raise Bad(400, "bad parameter")
            return [int(x) for x in nums]

        if req.method == "CONNECT":
            req.body.drain()
            req.record()
            return self.simple(req, 405, "CONNECT not allowed\n", fields=[("Allow", "GET, HEAD, POST")])
        route = None
        if len(parts) == 2 and name in ("healthz", "echo", "sha256", "headers", "garbage", "close",
                                         "hints", "continue", "die", "name", "trailers", "early"):
            route, p = name, []
        elif name in ("bytes", "chunked", "status", "slow") and args(1) is not None:
            route, p = name, args(1)
            if route == "status" and (p[0] == 101 or not 100 <= p[0] <= 599):
                raise Bad(400, "bad status")
        elif name in ("drip", "sse") and args(2) is not None:
            route, p = name, args(2)
        if route == "echo":
            return self.echo(req)
        if route == "die":
            req.record()
            print("requests=%d" % COUNT[0], file=sys.stderr, flush=True)
            os._exit(3)
        if route == "continue":
            req.body.continue_100()
        req.body.drain()
        req.record()
        a = ARGS
        if route == "healthz":
            if a.fail_file and os.path.exists(a.fail_file):
                return self.simple(req, 503, "unhealthy\n")
            return self.simple(req, 200, "ok %s\n" % a.name)
        if route == "bytes":
            n = p[0]
            r = Resp(self, req)
            r.start(200, [("Content-Type", "application/octet-stream")], length=n)
            off = 0
            while off < n and not r.head_only:
                k = min(PERIOD, n - off)
                r.write(pattern_piece(off, k))
                off += k
            r.finish()
            return r.keep
        if route == "chunked":
            n = p[0]
            r = Resp(self, req)
            r.start(200, [("Content-Type", "application/octet-stream"), ("Trailer", "x-sha256")],
                    chunked=True)
            sha = hashlib.sha256()
            off = 0
            while off < n and not r.head_only:
                k = min(16384, n - off)
                d = pattern_piece(off, k)
                sha.update(d)
                r.write(d)
                off += k
            r.finish([("x-sha256", sha.hexdigest())])
            return r.keep
        if route == "sha256":
            b = req.body
            return self.simple(req, 200, "%d %s\n" % (b.length, b.sha.hexdigest()))
        if route == "headers":
            body = json.dumps({"method": req.method, "target": req.target, "version": req.version,
                               "headers": req.headers}) + "\n"
            return self.simple(req, 200, body, "application/json")
        if route == "status":
            code = p[0]
            if code < 200:
                self.interim(req, code)
                return self.simple(req, 200, "status %d\n" % code)
            r = Resp(self, req)
            if code in (204, 304):
                r.start(code, [], length=None)
            elif code == 205:
                r.start(code, [], length=0)
            else:
                body = ("status %d\n" % code).encode()
                r.start(code, [("Content-Type", "text/plain")], length=len(body))
                r.write(body)
            r.finish()
            return r.keep
        if route == "slow":
            time.sleep(p[0] / 1000.0)
            return self.simple(req, 200, "slow\n")
        if route in ("drip", "sse"):
            n, ms = p
            r = Resp(self, req)
            if route == "sse":
                r.start(200, [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")],
                        chunked=True)
            else:
                r.start(200, [("Content-Type", "text/plain")], chunked=True)
            for k in range(1, n + 1):
                if r.head_only:
                    break
                if k > 1:
                    time.sleep(ms / 1000.0)
                r.write(("data: event %d\n\n" if route == "sse" else "chunk %d\n") % k)
            r.finish()
            return r.keep
        if route == "garbage":
            self.delay(req)
            self.send(b"garbage\r\n\r\n")
            return False
        if route == "close":
            return self.simple(req, 200, "close\n", close=True)
        if route == "hints":
            link = ("Link", "</style.css>; rel=preload")
            self.interim(req, 103, [link])
            return self.simple(req, 200, "hints\n", fields=[link])
        if route == "continue":
            return self.simple(req, 200, "%d\n" % req.body.length)
        if route == "name":
            return self.simple(req, 200, "%s\n" % a.name)
        if route == "early":
            if "1" in [v.strip() for v in req.get("early-data")]:
                return self.simple(req, 425, "too early\n")
            return self.simple(req, 200, "late\n")
        if route == "trailers":
            r = Resp(self, req)
            r.start(200, [("Content-Type", "text/plain"), ("Trailer", "x-trailer")], chunked=True)
            r.write(b"body\n")
            r.finish([("x-trailer", "yes")])
            return r.keep
        return self.simple(req, 200, "%s %s\n" % (a.name, req.target))

    def echo(self, req):
        b = req.body
        ctype = req.get("content-type")
        r = Resp(self, req)
        fields = [("Content-Type", ctype[0] if ctype else "application/octet-stream")]
        if req.expect and not b.done:
            b.continue_100()    # before the head of the answer
            b.started = True
        if req.chunked:
            r.start(200, fields, chunked=True)
        else:
            r.start(200, fields, length=req.clen or 0)
        try:
            while True:
                d = b.piece()
                if b.done:
                    req.record()
                if not d:
                    break
                r.write(d)
        except Bad as e:
            req.record(e.why)
            raise Gone(e.why)   # the head is out: just close
        except Gone as e:
            # the client went away mid-answer; still record what came
            try:
                b.drain()
                req.record("client gone while answering")
            except (Bad, Gone):
                req.record("client gone: %s" % e)
            raise
        r.finish()
        return r.keep


class Resp:
    """One final answer: its head, then its body (Content-Length or chunked)."""

    def __init__(self, conn, req):
        self.conn = conn
        self.req = req
        self.chunked = False
        self.head_only = req.method == "HEAD"
        self.keep = req.keep

    def start(self, code, fields, length=None, chunked=False, close=False):
        req = self.req
        self.conn.delay(req)
        fields = list(fields) + [("X-Backend", ARGS.name)]
        if code in (204, 304) or code < 200:
            self.head_only = True
        elif chunked:
            if req.version == "HTTP/1.1":
                self.chunked = True
                fields.append(("Transfer-Encoding", "chunked"))
            else:
                self.keep = False   # unframed: the close ends the body
                fields = [f for f in fields if f[0] != "Trailer"]
        elif length is not None:
            fields.append(("Content-Length", str(length)))
        if close:
            self.keep = False
        if not self.keep:
            fields.append(("Connection", "close"))
        elif req.version == "HTTP/1.0":
            fields.append(("Connection", "keep-alive"))
        head = "HTTP/1.1 %d %s\r\n" % (code, reason(code))
        head += "".join("%s: %s\r\n" % f for f in fields) + "\r\n"
        self.conn.send(head.encode("latin-1"))

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.head_only or not data:
            return
        if self.chunked:
            self.conn.send(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            self.conn.send(data)

    def finish(self, trailers=()):
        if self.chunked and not self.head_only:
            t = "".join("%s: %s\r\n" % f for f in trailers)
            self.conn.send(b"0\r\n" + t.encode("latin-1") + b"\r\n")


def serve(lsock):
    while True:
        try:
            s, _ = lsock.accept()
        except InterruptedError:
            continue
        except OSError as e:
            print("httpbackend: accept: %s" % e, file=sys.stderr)
            time.sleep(0.05)
            continue
        if s.family in (socket.AF_INET, socket.AF_INET6):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with LOCK:
            CONN_IDS[0] += 1
            cid = CONN_IDS[0]
        threading.Thread(target=Conn(s, cid).run, daemon=True).start()


def main():
    global ARGS
    p = argparse.ArgumentParser(description="HTTP/1.1 test backend (see the module docstring)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--port", type=int)
    g.add_argument("--unix")
    p.add_argument("--dual", action="store_true")
    p.add_argument("--fail-file")
    p.add_argument("--name", default="backend")
    p.add_argument("--record")
    p.add_argument("--idle-close", type=int, metavar="MS")
    p.add_argument("--delay", type=int, default=0, metavar="MS")
    ARGS = a = p.parse_args()
    if a.record:
        RECORD[0] = open(a.record, "a", encoding="utf-8")
    if a.unix:
        if os.path.exists(a.unix):
            os.unlink(a.unix)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(a.unix)
    elif a.dual:
        ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        ls.bind(("::", a.port))
    else:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", a.port))
    ls.listen(1024)

    def bye(signum, frame):
        print("requests=%d" % COUNT[0], file=sys.stderr, flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)
    print("listening", flush=True)
    serve(ls)


if __name__ == "__main__":
    main()
