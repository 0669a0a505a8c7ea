#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Raw HTTPS-over-TCP test client for quicd's integration tests.

Sends exactly the bytes a test asks for over TLS (Python's ssl module) and
prints what came back, so malformed HTTP/1.1 and HTTP/2 reach the server
unchanged: no client library would send them.  HTTP/2 frames are built
by hand (struct.pack); HPACK is the minimum: requests use literal fields
without Huffman coding, and of a response only the :status is decoded.
Every read has a deadline (--timeout, per command).

usage: tcpclient.py [options] COMMAND ...

options (before the command):
  --port PORT            (required) the server's port on --host
  --host ADDR            default 127.0.0.1
  --cacert FILE          trust FILE (else the certificate is not verified)
  --sni NAME             default localhost
  --alpn LIST            comma-separated ALPN ("" for none); default per command
  --timeout SECONDS      bound of the whole command (default 20); it also
                         bounds the TCP connect and the TLS handshake

commands:
  h1 DATA [--wait S] [--responses N] [--pause-file F --more DATA2]
      send DATA (Python escapes: \\r\\n; "{{UNIT*N}}" repeats UNIT N times)
      (then print "sent the first part", wait until F exists and send
      DATA2), read until the server closes or, once N complete responses
      (default 0) are in, S seconds (default 3) pass without a byte (so a
      slow server is waited for up to --timeout, and S is only the quiet
      time that shows the connection stays open); print for each response
      "line: <status line>", its "header: name: value" lines and
      "status=NNN" (and "incomplete: ..." for a response whose body did not
      all come); then "responses=N" (the complete ones: head and body, by
      Content-Length, chunked coding, none for 1xx/204/304, or the close)
      and "closed=yes after T s" (T from the last send) or "closed=no".
  h1get PATH OUTFILE [--then PATH OUTFILE]... [--pause-file F] [--rate BPS]
        [--close-wait S]
      GET each PATH on ONE keep-alive connection (Host: localhost), the
      next one only after the body of the last; before each request after
      the first, wait until F exists (bounded by --timeout).  The body is
      read at most BPS bytes/s.  Prints per response "resp N: status=S
      size=B" and its "header N: ..." lines, then whether the server closed
      the connection within S s (default 3) of the last body ("after:
      closed" or "after: open").  Each OUTFILE is written as the body
      arrives; each "resp" line ends with "at T s" (since the client
      started).  Exit 0 if every response was complete.
  slow DATA [--interval S]
      complete TLS, then send DATA one byte every S seconds (default 1)
      until the server closes; print "closed=yes after T s sent=N" (T from
      the first byte) or "closed=no sent=N" when --timeout ends it.
  idle [--tcp-only] [--half]
      complete TLS (or only TCP with --tcp-only; with --half, send the
      first 10 bytes of a ClientHello and stop), send nothing, and print
      "closed=yes after T s" (T from the end of the handshake, or from the
      TCP connect) or "closed=no".
  h2 MODE [ARGS]
      an HTTP/2 connection (ALPN h2).  MODE:
        badpreface      a wrong connection preface
        bigdata         open a POST stream, then a DATA frame of 20000 bytes
        bigheaders      a HEADERS frame of 20000 bytes
        settings N      N SETTINGS frames at once
        ping N          N PINGs at once
        rapidreset N    N pairs of HEADERS (GET) and RST_STREAM(CANCEL)
        hpackbomb N     an HPACK bomb: a GET whose block puts "x-bomb" with a
                        --size byte value (default 4000) into the server's
                        table, then N GETs each referencing it --refs times
                        (default 16000: 64 MB decoded from a 16 KB frame)
        trailerbomb N   the same entry, then N POSTs to /api/echo with a
                        5-byte body and trailers of --refs references
        madeyoureset N  N requests the server has to reset ("MadeYouReset",
                        CVE-2025-8671): --kind length (default): a POST to
                        /api/echo with content-length 1 and 2 bytes of
                        body; --kind window: a POST whose stream window a
                        WINDOW_UPDATE overflows
        continuations N a HEADERS frame without END_HEADERS, then N
                        CONTINUATION frames of 10 bytes (the last ends it)
        fields [--path P] [--authority A] [--no-authority] [--field NAME:VALUE]...
                        one GET with these extra fields (Python escapes,
                        literal HPACK, any bytes); prints "status=NNN"
                        or "rst=0xCODE" for the stream
        lowerid         a GET on stream 5, then one on stream 3 (RFC 9113
                        5.1.1: a PROTOCOL_ERROR)
      the requests of the last four go out one at a time, and sending stops
      once the server sent GOAWAY or closed the connection ("sent=N");
        streams N       N request streams (POST, the body never sent)
        slowheaders     HEADERS without END_HEADERS, then nothing
        get PATH OUTFILE [--then PATH OUTFILE]... [--pause-file F] [--rate BPS]
            [--stop-file F] [--repeat N]
                        GETs one after the other on one connection, as h1get;
                        no more once F exists; the first one N times
      then (with --until NAME=COUNT, repeatable: until COUNT frames of type
      NAME, e.g. PING=50, have come; with --sync: after a PING sent behind
      the mode's frames, until its acknowledgement, so the server has read
      them all; both bounded by --timeout and the close) read frames until
      the server closes or --wait S (default 3) pass without one; print
      "goaway=CODE last=ID" for each GOAWAY (CODE in hex), "frames:
      TYPE=COUNT ...", "rst=N refused=R" (R with REFUSED_STREAM) and
      "closed=yes after T s" or "closed=no".
"""

import argparse
import codecs
import os
import re
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
         "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
SYNC = b"tc-sync!"  # the payload of the --sync PING

T0 = time.monotonic()
DEADLINE = None


def out(line):
    print(line, flush=True)


def left():
    return max(0.0, DEADLINE - time.monotonic())


def expand(text):
    """Python escapes, then {{UNIT*N}} repetitions; bytes (Latin-1)."""
    raw = codecs.decode(text, "unicode_escape")
    raw = re.sub(r"\{\{(.*?)\*(\d+)\}\}", lambda m: m.group(1) * int(m.group(2)), raw, flags=re.S)
    return raw.encode("latin-1")


def connect(a, alpn, handshake=True):
    # a loaded machine may take seconds for the connect and the handshake:
    # --timeout bounds them, as everything else
    sock = socket.create_connection((a.host, a.port), timeout=max(0.001, left()))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not handshake:
        return sock
    sock.settimeout(max(0.001, left()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if a.cacert:
        ctx.load_verify_locations(a.cacert)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    alpn = a.alpn if a.alpn is not None else alpn
    if alpn:
        ctx.set_alpn_protocols(alpn.split(","))
    s = ctx.wrap_socket(sock, server_hostname=a.sni)
    return s


def recv_some(s, wait):
    """Bytes, b"" on EOF (close_notify, FIN or reset), None when nothing came in |wait| s."""
    if isinstance(s, ssl.SSLSocket) and s.pending():
        wait = 0
    s.settimeout(max(0.001, min(wait, left())))
    try:
        return s.recv(65536)
    except (socket.timeout, TimeoutError):
        return None
    except ssl.SSLWantReadError:
        return None
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
        return b""


def wait_close(s, wait):
    """Read (and drop) until EOF; the time of the close, or None."""
    end = time.monotonic() + wait
    data = b""
    while time.monotonic() < end and left() > 0:
        d = recv_some(s, end - time.monotonic())
        if d == b"":
            return time.monotonic(), data
        if d is not None:
            data += d
            end = max(end, time.monotonic() + 0.2)
    return None, data


# ---------------------------------------------------------------- HTTP/1.1


def chunked_end(data):
    """Where a chunked body at the start of |data| ends (after the last
    chunk and the trailer section), or None while it is incomplete."""
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(data[pos:eol].split(b";")[0], 16)
        except ValueError:
            return len(data)  # not chunked coding: the rest, as it is
        pos = eol + 2
        if size == 0:
            while True:  # trailer fields, then an empty line
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    return None
                empty = eol == pos
                pos = eol + 2
                if empty:
                    return pos
        if len(data) < pos + size + 2:
            return None
        pos += size + 2


def h1_responses(buf, closed):
    """The responses at the start of |buf|, whatever the reads that brought
    them: a list of (head lines, complete).  A response is complete once
    its body is in (Content-Length, chunked coding, none for 1xx, 204 and
    304, else up to the close); the list ends at the first incomplete one."""
    res = []
    rest = buf
    while b"\r\n\r\n" in rest:
        raw, rest = rest.split(b"\r\n\r\n", 1)
        head = raw.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", head[0])
        status = int(m.group(1)) if m else 0
        length, chunked = None, False
        for h in head[1:]:
            name, _, value = h.partition(":")
            name = name.strip().lower()
            if name == "content-length" and value.strip().isdigit():
                length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if 100 <= status < 200 or status in (204, 304):
            end = 0
        elif chunked:
            end = chunked_end(rest)
        elif length is not None:
            end = length if len(rest) >= length else None
        else:
            end = len(rest) if closed else None
        res.append((head, end is not None))
        if end is None:
            break
        rest = rest[end:]
    return res


def complete(buf, closed=False):
    return sum(1 for _, done in h1_responses(buf, closed) if done)


def cmd_h1(a):
    s = connect(a, "http/1.1")
    data = expand(a.data)
    t_sent = time.monotonic()
    try:
        s.sendall(data)
        if a.pause_file:
            out("sent the first part")
            wait_file(a.pause_file)
            t_sent = time.monotonic()
            s.sendall(expand(a.more or ""))
    except OSError as e:
        out("send: %s (after %d bytes at most)" % (e, len(data)))
    buf = b""
    closed = None
    enough = a.responses <= 0
    while left() > 0:
        # until --responses N are in, wait for the server up to --timeout;
        # then --wait S of quiet ends the read
        enough = enough or complete(buf) >= a.responses
        d = recv_some(s, a.wait if enough else left())
        if d is None:
            break
        if d == b"":
            closed = time.monotonic()
            break
        buf += d
    n = 0
    resps = h1_responses(buf, closed is not None)
    for head, done in resps:
        out("line: %s" % head[0])
        for h in head[1:]:
            out("header: %s" % h.lower())
        m = re.match(r"HTTP/1\.[01] (\d{3})", head[0])
        out("status=%s" % (m.group(1) if m else "?"))
        if done:
            n += 1
        else:
            out("incomplete: the body of this response did not all come")
    if not resps:
        out("status=none")
    out("responses=%d" % n)
    out("closed=yes after %.2f s" % (closed - t_sent) if closed else "closed=no")
    return 0


def read_response(s, rate, outfile, t_rate):
    """One HTTP/1.1 response (Content-Length or chunked) from |s|; (status, headers, size, buf)."""
    buf = b""
    while b"\r\n\r\n" not in buf:  # the head, in as many reads as it takes
        d = recv_some(s, left())
        if d is None:
            raise IOError("no complete response head within --timeout (%d bytes)" % len(buf))
        if not d:
            raise IOError("connection closed before a response head (%d bytes)" % len(buf))
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = [l.lower() for l in lines[1:]]
    length = None
    chunked = False
    for h in hdrs:
        n, _, v = h.partition(":")
        if n.strip() == "content-length":
            length = int(v.strip())
        if n.strip() == "transfer-encoding" and "chunked" in v:
            chunked = True
    body = bytearray()
    got = [0]
    sink = open(outfile, "wb") if outfile != "-" else None

    def keep(data):
        body.extend(data)
        if sink:
            sink.write(data)
            sink.flush()

    def more():
        d = recv_some(s, left())
        if d is None:
            raise IOError("the body did not all come within --timeout")
        if not d:
            raise IOError("connection closed in the body")
        got[0] += len(d)
        if rate:  # a slow reader: never more than |rate| bytes/s since t_rate
            ahead = got[0] / rate - (time.monotonic() - t_rate)
            if ahead > 0:
                time.sleep(min(ahead, left()))
        return d

    if chunked:
        while True:
            while b"\r\n" not in rest:
                rest += more()
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += more()
            keep(rest[:size])
            rest = rest[size + 2:]
            if size == 0:
                break
    elif length is not None:
        while len(body) + len(rest) < length:
            keep(rest)
            rest = more()
        need = length - len(body)
        keep(rest[:need])
        rest = rest[need:]
    else:  # until the close
        while True:
            try:
                keep(rest)
                rest = more()
            except IOError:
                break
        rest = b""
    if sink:
        sink.close()
    return status, hdrs, len(body), rest


def wait_file(path):
    while not os.path.exists(path):
        if left() <= 0:
            raise IOError("%s did not appear" % path)
        time.sleep(0.05)


def cmd_h1get(a):
    pairs = [(a.path, a.outfile)] + [tuple(p) for p in (a.then or [])]
    s = connect(a, "http/1.1")
    ok = True
    for i, (path, outfile) in enumerate(pairs, 1):
        if i > 1 and a.pause_file:
            wait_file(a.pause_file)
        try:
            s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tcpclient\r\n\r\n"
                       % path).encode())
            status, hdrs, size, rest = read_response(s, a.rate, outfile, time.monotonic())
        except (IOError, OSError, ValueError) as e:
            out("resp %d: error %s" % (i, e))
            ok = False
            break
        out("resp %d: status=%d size=%d at %.2f s" % (i, status, size, time.monotonic() - T0))
        for h in hdrs:
            out("header %d: %s" % (i, h))
    if ok:
        t, _ = wait_close(s, a.close_wait)
        out("after: closed" if t else "after: open")
    return 0 if ok else 1


def cmd_slow(a):
    s = connect(a, "http/1.1")
    data = expand(a.data)
    t_first = time.monotonic()
    sent = 0
    for i in range(len(data)):
        try:
            s.sendall(data[i:i + 1])
            sent += 1
        except OSError:
            out("closed=yes after %.2f s sent=%d" % (time.monotonic() - t_first, sent))
            return 0
        end = time.monotonic() + a.interval
        while time.monotonic() < end and left() > 0:
            d = recv_some(s, end - time.monotonic())
            if d == b"":
                out("closed=yes after %.2f s sent=%d" % (time.monotonic() - t_first, sent))
                return 0
            if d:
                out("got: %r" % d[:80])
        if left() <= 0:
            break
    t, _ = wait_close(s, left())
    if t:
        out("closed=yes after %.2f s sent=%d" % (t - t_first, sent))
    else:
        out("closed=no sent=%d" % sent)
    return 0


def cmd_idle(a):
    if a.tcp_only or a.half:
        s = connect(a, None, handshake=False)
        if a.half:  # a TLS record header and the start of a ClientHello
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03")
    else:
        s = connect(a, "http/1.1")
        out("alpn=%s" % s.selected_alpn_protocol())
    t0 = time.monotonic()
    t, data = wait_close(s, left())
    if data:
        out("got %d bytes" % len(data))
    out("closed=yes after %.2f s" % (t - t0) if t else "closed=no")
    return 0


# ---------------------------------------------------------------- HTTP/2


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hpack_int(value, prefix_bits, first):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    res = [first | limit]
    value -= limit
    while value >= 128:
        res.append((value & 127) | 128)
        value >>= 7
    res.append(value)
    return bytes(res)


def hpack_str(s):
    return hpack_int(len(s), 7, 0) + s


def request_block(method, path, extra=()):
    """A header block: literal fields without indexing, no Huffman."""
    block = b""
    for name, value in [(b":method", method), (b":scheme", b"https"), (b":path", path),
                        (b":authority", b"localhost")] + list(extra):
        block += b"\x00" + hpack_str(name) + hpack_str(value)
    return block


HUFF_DIGITS = {"00000": "0", "00001": "1", "00010": "2", "011001": "3", "011010": "4",
               "011011": "5", "011100": "6", "011101": "7", "011110": "8", "011111": "9"}
STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def status_of(block):
    """:status from the start of a response header block (static table or a literal)."""
    if not block:
        return None
    b = block[0]
    if b & 0x80:
        return STATIC_STATUS.get(b & 0x7F)
    idx = b & (0x3F if b & 0x40 else 0x0F)
    if idx != 8 or len(block) < 2:
        return None
    n = block[1] & 0x7F
    raw = block[2:2 + n]
    if not block[1] & 0x80:
        return int(raw.decode())
    bits = "".join("{:08b}".format(x) for x in raw)
    text, cur = "", ""
    for bit in bits:
        cur += bit
        if cur in HUFF_DIGITS:
            text += HUFF_DIGITS[cur]
            cur = ""
        if len(text) == 3:
            break
    return int(text) if len(text) == 3 else None


class H2:
    def __init__(self, a):
        self.s = connect(a, "h2")
        self.alpn = self.s.selected_alpn_protocol()
        self.buf = b""
        self.counts = {}
        self.goaways = []
        self.rsts = 0
        self.refused = 0  # RST_STREAM with REFUSED_STREAM
        self.closed = None
        self.ack = True  # acknowledge the server's SETTINGS
        self.synced = False  # the --sync PING was acknowledged

    def send(self, data):
        try:
            self.s.sendall(data)
            return True
        except OSError as e:
            out("send: %s" % e)
            return False

    def start(self):
        return self.send(PREFACE + frame(SETTINGS, 0, 0))

    def next_frame(self, wait):
        """One frame (type, flags, sid, payload), or None after |wait| s or at the close."""
        end = time.monotonic() + wait
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            if self.closed:
                return None
            rem = end - time.monotonic()
            if rem <= 0 or left() <= 0:
                return None
            d = recv_some(self.s, rem)
            if d is None:
                return None
            if d == b"":
                self.closed = time.monotonic()
                return None
            self.buf += d
        n = int.from_bytes(self.buf[:3], "big")
        ftype, flags = self.buf[3], self.buf[4]
        sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
        payload = self.buf[9:9 + n]
        self.buf = self.buf[9 + n:]
        name = NAMES[ftype] if ftype < len(NAMES) else str(ftype)
        self.counts[name] = self.counts.get(name, 0) + 1
        if ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaways.append((code, last & 0x7FFFFFFF))
            out("goaway=0x%x last=%d at %.2f s" % (code, last & 0x7FFFFFFF, time.monotonic() - T0))
        elif ftype == RST_STREAM:
            self.rsts += 1
            if struct.unpack(">I", payload[:4])[0] == 7:
                self.refused += 1
        elif ftype == SETTINGS and not flags & ACK and self.ack:
            self.send(frame(SETTINGS, ACK, 0))
        elif ftype == PING and flags & ACK and payload == SYNC:
            self.synced = True
            self.counts[name] -= 1  # not one of the mode's PINGs
            if not self.counts[name]:
                del self.counts[name]
        return ftype, flags, sid, payload

    def poll(self):
        """The frames that came, without waiting for more."""
        while self.next_frame(0.001) is not None:
            pass

    def send_each(self, frames):
        """Send |frames| (a list of byte strings) one at a time until the server stops us."""
        sent = 0
        for f in frames:
            self.poll()
            if self.goaways or self.closed or left() <= 0 or not self.send(f):
                break
            sent += 1
        out("sent=%d" % sent)

    def drain(self, wait):
        while self.next_frame(wait) is not None:
            pass

    def report(self, t_from):
        out("alpn=%s" % self.alpn)
        out("frames: " + " ".join("%s=%d" % kv for kv in sorted(self.counts.items())))
        out("rst=%d refused=%d" % (self.rsts, self.refused))
        out("closed=yes after %.2f s" % (self.closed - t_from) if self.closed else "closed=no")


def h2_get(a, h):
    """GETs on one connection, one after the other, a slow reader at --rate."""
    pairs = [(a.path, a.outfile)] * max(a.repeat, 1) + [tuple(p) for p in (a.then or [])]
    h.start()
    ok = True
    sid = 1
    for i, (path, outfile) in enumerate(pairs, 1):
        if i > 1 and a.pause_file:
            wait_file(a.pause_file)
        if i > 1 and a.stop_file and os.path.exists(a.stop_file):
            break
        if not h.send(frame(HEADERS, END_HEADERS | END_STREAM, sid,
                            request_block(b"GET", path.encode()))):
            ok = False
            break
        body = bytearray()
        sink = open(outfile, "wb") if outfile != "-" else None
        status, done, unacked, t_rate = None, False, 0, time.monotonic()
        while not done:
            f = h.next_frame(left())
            if f is None:
                break
            ftype, flags, fsid, payload = f
            if fsid != sid:
                continue
            if ftype == HEADERS:
                if status is None:
                    status = status_of(payload)
                done = bool(flags & END_STREAM)
            elif ftype == DATA:
                body += payload
                if sink:
                    sink.write(payload)
                    sink.flush()
                unacked += len(payload)
                done = bool(flags & END_STREAM)
                if a.rate:
                    ahead = len(body) / a.rate - (time.monotonic() - t_rate)
                    if ahead > 0:
                        time.sleep(min(ahead, left()))
                if unacked >= 16384 and not done:  # the default 64 KiB windows, reopened
                    inc = struct.pack(">I", unacked)
                    h.send(frame(WINDOW_UPDATE, 0, 0, inc) + frame(WINDOW_UPDATE, 0, sid, inc))
                    unacked = 0
            elif ftype == RST_STREAM:
                break
        if done and unacked:  # the connection's window, for the responses to come
            h.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", unacked)))
        out("resp %d: status=%s size=%d%s at %.4f s" % (i, status, len(body),
                                                        "" if done else " incomplete",
                                                        time.monotonic() - T0))
        if sink:
            sink.close()
        if not done:
            ok = False
            break
        sid += 2
    return ok


def cmd_h2(a):
    h = H2(a)
    mode = a.mode
    n = int(a.args[0]) if a.args and a.args[0].isdigit() else 0
    t_from = time.monotonic()
    rc = 0
    if mode == "badpreface":
        h.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(SETTINGS, 0, 0))
    elif mode == "bigdata":
        h.start()
        h.send(frame(HEADERS, END_HEADERS, 1, request_block(b"POST", b"/bigdata")))
        h.send(frame(DATA, END_STREAM, 1, b"x" * 20000))
    elif mode == "bigheaders":
        h.start()
        block = request_block(b"GET", b"/bigheaders", [(b"x-pad", b"p" * 19900)])
        h.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
    elif mode == "settings":
        h.start()
        h.send(b"".join(frame(SETTINGS, 0, 0) for _ in range(n)))
    elif mode == "ping":
        h.start()
        h.send(b"".join(frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(n)))
    elif mode == "rapidreset":
        h.start()
        pairs = []
        for i in range(n):
            sid = 1 + 2 * i
            pairs.append(frame(HEADERS, END_HEADERS | END_STREAM, sid,
                               request_block(b"GET", b"/rapid-reset")))
            pairs.append(frame(RST_STREAM, 0, sid, struct.pack(">I", 8)))  # CANCEL
        h.send(b"".join(pairs))
    elif mode in ("hpackbomb", "trailerbomb"):
        h.start()
        big = (b"x-bomb", b"a" * a.size)
        # literal with incremental indexing: the entry becomes dynamic index 62
        first = request_block(b"GET", b"/bomb-setup") + b"\x40" + hpack_str(big[0]) + hpack_str(big[1])
        h.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, first))
        refs = b"\xbe" * a.refs
        reqs = []
        for i in range(n):
            sid = 3 + 2 * i
            if mode == "hpackbomb":
                reqs.append(frame(HEADERS, END_HEADERS | END_STREAM, sid,
                                  request_block(b"GET", b"/index.html") + refs))
            else:
                reqs.append(frame(HEADERS, END_HEADERS, sid, request_block(b"POST", b"/api/echo")) +
                            frame(DATA, 0, sid, b"hello") +
                            frame(HEADERS, END_HEADERS | END_STREAM, sid, refs))
        h.send_each(reqs)
    elif mode == "madeyoureset":
        h.start()
        reqs = []
        for i in range(n):
            sid = 1 + 2 * i
            if a.kind == "length":
                reqs.append(frame(HEADERS, END_HEADERS, sid, request_block(
                    b"POST", b"/api/echo", [(b"content-length", b"1")])) +
                    frame(DATA, END_STREAM, sid, b"xx"))
            else:
                reqs.append(frame(HEADERS, END_HEADERS, sid, request_block(b"POST", b"/api/echo")) +
                            frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 0x7FFFFFFF)))
        h.send_each(reqs)
    elif mode == "continuations":
        h.ack = False  # no frame may come between HEADERS and its CONTINUATIONs
        h.start()
        frames = [frame(HEADERS, END_STREAM, 1, request_block(b"GET", b"/continuations"))]
        for i in range(n):
            frames.append(frame(CONTINUATION, END_HEADERS if i == n - 1 else 0, 1,
                                b"\x00" + hpack_str(b"x-c") + hpack_str(b"%04d" % i)))
        h.send_each(frames)
    elif mode == "fields":
        h.start()
        pseudo = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", expand(a.path))]
        if not a.no_authority:
            pseudo.append((b":authority", expand(a.authority)))
        extra = []
        for f in a.field:
            raw = expand(f)
            i = raw.index(b":", 1)  # the first ':' after the first character
            extra.append((raw[:i], raw[i + 1:]))
        block = b""
        for name, value in pseudo + extra:
            block += b"\x00" + hpack_str(name) + hpack_str(value)
        h.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
        status = None
        while h.closed is None and left() > 0:
            f = h.next_frame(left())
            if f is None:
                break
            ftype, flags, fsid, payload = f
            if fsid == 1 and ftype == HEADERS and status is None:
                status = status_of(payload)
                out("status=%s" % status)
            if fsid == 1 and ftype == RST_STREAM:
                out("rst=0x%x" % struct.unpack(">I", payload[:4])[0])
                break
            if fsid == 1 and flags & END_STREAM:
                break
            if ftype == GOAWAY:
                break
        h.report(t_from)
        return 0
    elif mode == "lowerid":
        h.start()
        h.send_each([frame(HEADERS, END_HEADERS | END_STREAM, 5, request_block(b"GET", b"/index.html")),
                     frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block(b"GET", b"/index.html"))])
    elif mode == "streams":
        h.start()
        h.send(b"".join(frame(HEADERS, END_HEADERS, 1 + 2 * i, request_block(b"POST", b"/streams"))
                        for i in range(n)))
    elif mode == "slowheaders":
        h.ack = False  # no frame may come between HEADERS and its CONTINUATION
        h.start()
        h.send(frame(HEADERS, END_STREAM, 1, request_block(b"GET", b"/slow-headers")))
        t_from = time.monotonic()
        h.drain(left())
        h.report(t_from)
        return 0
    elif mode == "get":
        rc = 0 if h2_get(a, h) else 1
        t_from = time.monotonic()
    else:
        out("unknown mode %s" % mode)
        return 2
    # what the test waits for comes however slow the server is (--timeout);
    # only then does --wait S of quiet end the read
    if a.sync:
        h.send(frame(PING, 0, 0, SYNC))
    while h.closed is None and left() > 0 and not (
            all(h.counts.get(name, 0) >= count for name, count in a.until) and
            (not a.sync or h.synced)):
        if h.next_frame(left()) is None:
            break
    h.drain(a.wait)
    h.report(t_from)
    return rc


def until_arg(text):
    name, _, count = text.partition("=")
    if name not in NAMES or not count.isdigit():
        raise argparse.ArgumentTypeError("want FRAME=COUNT (%s), got %r" % (", ".join(NAMES), text))
    return name, int(count)


def main(argv):
    global DEADLINE
    p = argparse.ArgumentParser(description="raw HTTPS/TCP test client")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--cacert")
    p.add_argument("--sni", default="localhost")
    p.add_argument("--alpn")
    p.add_argument("--timeout", type=float, default=20)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("h1")
    c.add_argument("data")
    c.add_argument("--wait", type=float, default=3)
    c.add_argument("--responses", type=int, default=0)
    c.add_argument("--pause-file")
    c.add_argument("--more")
    for name in ("h1get",):
        c = sub.add_parser(name)
        c.add_argument("path")
        c.add_argument("outfile")
        c.add_argument("--then", nargs=2, action="append", metavar=("PATH", "OUTFILE"))
        c.add_argument("--pause-file")
        c.add_argument("--rate", type=float, default=0)
        c.add_argument("--close-wait", type=float, default=3)
    c = sub.add_parser("slow")
    c.add_argument("data")
    c.add_argument("--interval", type=float, default=1)
    c = sub.add_parser("idle")
    c.add_argument("--tcp-only", action="store_true")
    c.add_argument("--half", action="store_true")
    c = sub.add_parser("h2")
    c.add_argument("mode")
    c.add_argument("args", nargs="*")
    c.add_argument("--wait", type=float, default=3)
    c.add_argument("--then", nargs=2, action="append", metavar=("PATH", "OUTFILE"))
    c.add_argument("--pause-file")
    c.add_argument("--rate", type=float, default=0)
    c.add_argument("--until", type=until_arg, action="append", default=[], metavar="NAME=COUNT")
    c.add_argument("--sync", action="store_true")
    c.add_argument("--stop-file")
    c.add_argument("--path", default="/")
    c.add_argument("--authority", default="localhost")
    c.add_argument("--no-authority", action="store_true")
    c.add_argument("--field", action="append", default=[])
    c.add_argument("--repeat", type=int, default=1)
    c.add_argument("--refs", type=int, default=16000)
    c.add_argument("--size", type=int, default=4000)
    c.add_argument("--kind", choices=("length", "window"), default="length")
    a = p.parse_args(argv)
    DEADLINE = time.monotonic() + a.timeout
    if a.cmd == "h2" and a.mode == "get":
        if len(a.args) != 2:
            p.error("h2 get PATH OUTFILE")
        a.path, a.outfile = a.args
    try:
        return {"h1": cmd_h1, "h1get": cmd_h1get, "slow": cmd_slow, "idle": cmd_idle,
                "h2": cmd_h2}[a.cmd](a)
    except (OSError, IOError) as e:
        out("error: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
