#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""HTTP/3-only test client for quicd's integration tests (pycurl).

Run it with /usr/bin/python3: Debian's python3-pycurl, whose libcurl
(libcurl3-gnutls 8.14 from bookworm-backports) speaks HTTP/3 with ngtcp2 and
nghttp3.  Every transfer is HTTP/3 only (CURL_HTTP_VERSION_3ONLY: no TCP
fallback), has a timeout, and sends the path as given (PATH_AS_IS), so
"/../x" reaches the server unchanged.

usage: h3get.py [options] COMMAND ...

options (before the command):
  --cacert FILE          trust FILE (the test's self-signed certificate)
  --insecure REASON      do not verify the certificate (give the reason)
  --resolve HOST:PORT:ADDR  pin a name to an address (repeatable)
  --local ADDR           send from this local address (CURLOPT_INTERFACE)
  --timeout SECONDS      per transfer (default 20)
  --connect-timeout S    handshake (default 15; a loaded machine can be slow)

commands:
  check
      exit 0 if this pycurl's libcurl has HTTP/3, else print why and exit 2.
  fetch [-X METHOD] [--data STRING] [--head] URL OUTFILE [...]
      one transfer per URL, one after the other, on one connection if the
      server keeps it; the body goes to OUTFILE ("-" discards it).  -X,
      --data and --head apply to the URL that follows them.  Prints per URL:
      "URL status=S version=V size=N length=CONTENT-LENGTH type=T connects=C".
      Exit 0 if every transfer completed over HTTP/3 (any status), 1 if not.
  multi N URL [--expect FILE]
      N concurrent requests for URL as streams of ONE connection (PIPEWAIT,
      MAX_HOST_CONNECTIONS=1).  Exit 0 if all N got 200 over HTTP/3 with
      exactly one connection made (and, with --expect, every body equals
      FILE), else 1.
  hold N URL SECONDS
      open N separate connections (FRESH_CONNECT on each transfer, kept in
      the multi's connection cache), GET URL on each, print
      "holding N connections" and keep them open for SECONDS (or until
      SIGTERM/SIGINT), then close them and print "hold: closed".
      Exit 0 if all N were made over HTTP/3 and got 200, else 1.
  retry URL SECONDS [--start-file PATH]
      GET URL until it answers 200 over HTTP/3 on a fresh connection or
      SECONDS have passed; prints the attempts and the elapsed time.  With
      --start-file the clock (and the first attempt) starts when PATH
      exists, so a test can start the client before the event it times.
      Exit 0 on success, 1 on timeout.

  req [-X METHOD] [--data STRING] [--data-file FILE] [--stream-file FILE]
      [-H 'Name: value']... [--until sse:N|nl:N] URL OUTFILE
      one transfer (--stream-file: FILE as the body, read as the upload
      goes and sent without a Content-Length; the method is PUT unless -X
      says otherwise); prints every response line the header callback sees,
      in order ("line: HTTP/3 103", "line: link: ...", "line: HTTP/3
      200", ...), then "status=S version=V size=N".  With --until the
      body is read until it holds N events or N lines (Units, as for
      stream), OUTFILE keeps exactly those, and the transfer is then aborted (for /events and /stream).  Exit 0 if
      it completed (or stopped there) over HTTP/3, else 1.
  stream URL SEP N OUTFILE
      GET URL and read until the body holds N units ("sse": server-sent
      events, each a block with a data field ended by a blank line; "nl":
      lines), whatever the chunking, keep exactly those N in OUTFILE, then
      abort the transfer (the client resets the stream) and print
      "stream: N events|lines after T s ...".  Exit 0 when N arrived over
      HTTP/3, 1 otherwise.
  pair GOOD_URL BAD_URL 'Name: value'
      two concurrent requests on ONE connection (after a first request that
      opens it), the second a POST of "abc" with the extra header; prints "good: ..." and "bad: ..." results.  Exit 0 when the
      good one got 200 over HTTP/3 and the bad one failed at the stream
      level (no response) on the same connection, else 1.
  download [--limit BYTES_PER_S] URL OUTFILE PROGRESSFILE
      one GET, read at most BYTES_PER_S (a slow reader that sleeps in
      its write callback and never makes up for a stall, so the rate is
      set by the client while the server keeps up); appends "WALLTIME BYTES" to PROGRESSFILE every 100 ms or
      so (time.time(), the same clock as date +%s.%N) and prints
      "download: status=S version=V size=N time=T".  Exit 0 if it
      completed over HTTP/3 with 200, else 1.
  loop [--fresh] [-v] URL SECONDS INTERVAL
      GET URL again and again for SECONDS, INTERVAL seconds apart, on one
      connection (or a new connection for each with --fresh); every
      transfer must answer 200 over HTTP/3.  Prints one line per failure
      ("loop: WALLTIME failed after T: ..."; with -v per success too) and
      "loop: N ok, M failed, K connections".  Exit 0 if none failed.

Exit 2 on a usage error or missing HTTP/3.
"""

import hashlib
import os
import signal
import sys
import time

try:
    import pycurl
except ImportError as e:  # pragma: no cover
    print("h3get: pycurl not available: %s (use /usr/bin/python3)" % e, file=sys.stderr)
    sys.exit(2)

CURL_HTTP_VERSION_3ONLY = 31  # not exported by pycurl 7.45 (built against curl 7.88)
CURL_HTTP_VERSION_3 = 30      # what CURLINFO_HTTP_VERSION reports for HTTP/3
CURL_VERSION_HTTP3 = 1 << 25  # curl_version_info features bit

OPTS = {"cacert": None, "insecure": None, "resolve": [], "local": None, "timeout": 20.0,
        "connect_timeout": 15.0}


def die(msg, code=2):
    print("h3get: %s" % msg, file=sys.stderr)
    sys.exit(code)


def has_http3():
    info = pycurl.version_info()
    features = info[4]
    return bool(features & CURL_VERSION_HTTP3) or "nghttp3" in pycurl.version


class Sink:
    """Collects a response body into a file or memory, and the hash."""

    def __init__(self, path=None):
        self.path = path
        self.f = None
        self.size = 0
        self.sha = hashlib.sha256()
        self.head = b""  # first bytes, for messages
        if path and path != "-":
            self.f = open(path, "wb")

    def write(self, data):
        self.size += len(data)
        self.sha.update(data)
        if len(self.head) < 200:
            self.head += data[:200 - len(self.head)]
        if self.f:
            self.f.write(data)
        return None

    def close(self):
        if self.f:
            self.f.close()
            self.f = None


class Units:
    """Counts the protocol's units in a body, whatever its chunking:
    "sse" server-sent events (a block of lines ended by a blank line that
    has a data field, with CRLF, LF or CR line ends; "retry: 2000" or a
    comment alone dispatch nothing), "nl" lines.  With a limit N, feed()
    says how many bytes of a chunk reach the end of the Nth unit, so the
    reader keeps exactly N units and stops there."""

    def __init__(self, kind, limit=None):
        if kind not in ("sse", "nl"):
            raise ValueError("unit must be sse or nl, not %r" % kind)
        self.kind, self.limit = kind, limit
        self.count = 0
        self.line = bytearray()   # the current line, for "sse"
        self.has_data = False     # a data field in the current block
        self.cr = False           # the last byte was CR (CRLF is one end)

    def done(self):
        return self.limit is not None and self.count >= self.limit

    def feed(self, data):
        """Count the units |data| completes; returns how many bytes of it
        were used (fewer than len(data) once the limit is reached)."""
        for i, b in enumerate(data):
            if self.done():
                return i
            if b == 0x0A and self.cr:       # LF of a CRLF: the end was counted
                self.cr = False
                continue
            self.cr = b == 0x0D
            if b not in (0x0A, 0x0D):
                if self.kind == "sse" and len(self.line) < 8:
                    self.line.append(b)     # enough to see the field's name
                continue
            if self.kind == "nl":
                self.count += 1
                continue
            if self.line:                   # a field line ends
                name = bytes(self.line).split(b":", 1)[0]
                self.has_data = self.has_data or name == b"data"
                self.line.clear()
            elif self.has_data:             # a blank line dispatches the event
                self.count += 1
                self.has_data = False
        return len(data)


def new_handle(url, sink, method=None, data=None, head=False):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.HTTP_VERSION, CURL_HTTP_VERSION_3ONLY)
    c.setopt(pycurl.PATH_AS_IS, 1)
    c.setopt(pycurl.NOSIGNAL, 1)
    c.setopt(pycurl.TIMEOUT_MS, int(OPTS["timeout"] * 1000))
    c.setopt(pycurl.CONNECTTIMEOUT_MS, int(OPTS["connect_timeout"] * 1000))
    c.setopt(pycurl.WRITEFUNCTION, sink.write)
    if OPTS["resolve"]:
        c.setopt(pycurl.RESOLVE, OPTS["resolve"])
    if OPTS["local"]:
        c.setopt(pycurl.INTERFACE, "host!" + OPTS["local"])
    if OPTS["insecure"] is not None:
        c.setopt(pycurl.SSL_VERIFYPEER, 0)
        c.setopt(pycurl.SSL_VERIFYHOST, 0)
    elif OPTS["cacert"]:
        c.setopt(pycurl.CAINFO, OPTS["cacert"])
    if head:
        c.setopt(pycurl.NOBODY, 1)
    if data is not None:
        c.setopt(pycurl.POSTFIELDS, data)
    if method:
        c.setopt(pycurl.CUSTOMREQUEST, method)
    return c


def describe(c):
    status = c.getinfo(pycurl.RESPONSE_CODE)
    version = c.getinfo(pycurl.INFO_HTTP_VERSION)
    ctype = c.getinfo(pycurl.CONTENT_TYPE) or "-"
    connects = c.getinfo(pycurl.NUM_CONNECTS)
    return status, version, ctype, connects


def vname(v):
    return {CURL_HTTP_VERSION_3: "3", 3: "2", 2: "1.1", 1: "1.0"}.get(v, "?%s" % v)


def run_multi(m, easy, deadline):
    """Drive CurlMulti m with the easy handles until every one is done or
    the deadline passes.  Returns {handle: (errno, errmsg)} of the done."""
    done = {}
    for c in easy:
        m.add_handle(c)
    while len(done) < len(easy):
        if time.monotonic() > deadline:
            break
        while True:
            ret, _ = m.perform()
            if ret != pycurl.E_CALL_MULTI_PERFORM:
                break
        while True:
            nq, ok_list, err_list = m.info_read()
            for c in ok_list:
                done[c] = (0, "")
            for c, errno, errmsg in err_list:
                done[c] = (errno, errmsg)
            if nq == 0:
                break
        if len(done) < len(easy):
            m.select(0.1)
    return done


def cmd_check(args):
    if not has_http3():
        print("h3get: libcurl has no HTTP/3: %s" % pycurl.version)
        return 2
    print("h3get: %s" % pycurl.version)
    return 0


def cmd_fetch(args):
    # "-X M", "--data S" and "--head" apply to the next URL OUTFILE pair only
    jobs = []
    method = data = None
    head = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-X" and i + 1 < len(args):
            method = args[i + 1]; i += 2
        elif a == "--data" and i + 1 < len(args):
            data = args[i + 1]; i += 2
        elif a == "--head":
            head = True; i += 1
        elif i + 1 < len(args):
            jobs.append((a, args[i + 1], method, data, head))
            method = data = None
            head = False
            i += 2
        else:
            die("fetch needs URL OUTFILE pairs")
    if not jobs or len(jobs) > 1000:
        die("fetch needs 1..1000 URL OUTFILE pairs")
    rc = 0
    # One multi for all: its connection cache lets consecutive transfers
    # share a connection, like a browser would.
    m = pycurl.CurlMulti()
    for url, out, method, data, head in jobs:
        sink = Sink(out)
        hdrs = {}
        c = new_handle(url, sink, method, data, head)
        c.setopt(pycurl.HEADERFUNCTION, lambda l, h=hdrs: header_line(h, l))
        t0 = time.monotonic()
        res = run_multi(m, [c], t0 + OPTS["timeout"] + 2)
        m.remove_handle(c)
        sink.close()
        err = res.get(c, (-1, "no result before the deadline"))
        status, version, ctype, connects = describe(c)
        line = "%s status=%s version=%s size=%d length=%s type=%s connects=%d time=%.3fs" % (
            url, status, vname(version), sink.size, hdrs.get("content-length", "-"),
            ctype, connects, time.monotonic() - t0)
        if err[0] != 0:
            line += " error=%d(%s)" % err
            rc = 1
        elif version != CURL_HTTP_VERSION_3:
            line += " error=not-http3"
            rc = 1
        print(line, flush=True)
        c.close()
    m.close()
    return rc


def header_line(hdrs, raw):
    line = raw.decode("iso-8859-1").strip()
    if ":" in line and not line.startswith(":"):
        k, v = line.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    elif line.upper().startswith("HTTP/"):
        hdrs.clear()  # a new (final or interim) response starts


def cmd_multi(args):
    expect = None
    rest = []
    i = 0
    while i < len(args):
        if args[i] == "--expect" and i + 1 < len(args):
            expect = args[i + 1]; i += 2
        else:
            rest.append(args[i]); i += 1
    if len(rest) != 2:
        die("usage: multi N URL [--expect FILE]")
    n, url = int(rest[0]), rest[1]
    if not 1 <= n <= 1000:
        die("N must be 1..1000")
    want = None
    if expect:
        h = hashlib.sha256()
        with open(expect, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        want = h.hexdigest()
    m = pycurl.CurlMulti()
    m.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
    m.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 1)
    handles = []
    sinks = {}
    for _ in range(n):
        s = Sink()
        c = new_handle(url, s)
        c.setopt(pycurl.PIPEWAIT, 1)
        sinks[c] = s
        handles.append(c)
    t0 = time.monotonic()
    res = run_multi(m, handles, t0 + OPTS["timeout"] + 2)
    ok = 0
    connects = 0
    ports = set()
    bad = []
    for idx, c in enumerate(handles):
        err = res.get(c, (-1, "no result before the deadline"))
        status, version, _, nc = describe(c)
        connects += nc
        try:
            ports.add(c.getinfo(pycurl.LOCAL_PORT))
        except pycurl.error:
            pass
        s = sinks[c]
        problem = None
        if err[0] != 0:
            problem = "error %d (%s)" % err
        elif version != CURL_HTTP_VERSION_3:
            problem = "HTTP version %s" % vname(version)
        elif status != 200:
            problem = "status %s" % status
        elif want and s.sha.hexdigest() != want:
            problem = "body differs (%d bytes)" % s.size
        if problem:
            bad.append("#%d: %s" % (idx, problem))
        else:
            ok += 1
        m.remove_handle(c)
        c.close()
    m.close()
    print("multi: %d/%d ok, connections=%d, local ports=%d, %.3fs" % (
        ok, n, connects, len(ports), time.monotonic() - t0))
    for b in bad[:10]:
        print("multi: " + b)
    if ok != n:
        return 1
    if connects != 1 or len(ports) != 1:
        print("multi: expected exactly one connection")
        return 1
    return 0


def cmd_hold(args):
    if len(args) != 3:
        die("usage: hold N URL SECONDS")
    n, url, secs = int(args[0]), args[1], float(args[2])
    if not 1 <= n <= 500 or not 0 <= secs <= 600:
        die("N must be 1..500 and SECONDS 0..600")
    m = pycurl.CurlMulti()
    m.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 0)     # no limit
    m.setopt(pycurl.M_MAXCONNECTS, n + 8)          # the cache keeps all of them
    handles = []
    for _ in range(n):
        c = new_handle(url, Sink())
        c.setopt(pycurl.FRESH_CONNECT, 1)          # a new connection for each ...
        c.setopt(pycurl.FORBID_REUSE, 0)           # ... which stays in the cache
        handles.append(c)
    t0 = time.monotonic()
    res = run_multi(m, handles, t0 + OPTS["timeout"] + 2)
    ok = 0
    connects = 0
    ports = set()
    for c in handles:
        err = res.get(c, (-1, ""))
        status, version, _, nc = describe(c)
        connects += nc
        try:
            ports.add(c.getinfo(pycurl.LOCAL_PORT))
        except pycurl.error:
            pass
        if err[0] == 0 and version == CURL_HTTP_VERSION_3 and status == 200:
            ok += 1
        else:
            print("hold: transfer failed: err=%s status=%s version=%s" % (
                err, status, vname(version)))
        m.remove_handle(c)
    print("holding %d connections (%d/%d ok, connects=%d, local ports=%d) for %.1fs" % (
        connects, ok, n, connects, len(ports), secs), flush=True)
    # Keep the connections in the multi's cache (easy handles stay alive too)
    # and let libcurl look at its sockets now and then.
    # (select() returns at once when no transfer is attached: sleep instead)
    # SIGTERM or SIGINT end the hold early, closing the connections cleanly.
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    end = time.monotonic() + secs
    while time.monotonic() < end and not stop:
        m.perform()
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))
    for c in handles:
        c.close()
    m.close()  # closes the cached connections (CONNECTION_CLOSE)
    print("hold: closed", flush=True)
    return 0 if ok == n and connects == n else 1


def cmd_retry(args):
    start_file = None
    if len(args) == 4 and args[2] == "--start-file":
        start_file = args[3]
        args = args[:2]
    if len(args) != 2:
        die("usage: retry URL SECONDS [--start-file PATH]")
    url, secs = args[0], float(args[1])
    if not 0 < secs <= 60:
        die("SECONDS must be in (0, 60]")
    if start_file:
        # ready (pycurl loaded); the clock starts when PATH appears (<= 120 s)
        print("retry: waiting for %s" % start_file, flush=True)
        limit = time.monotonic() + 120
        while not os.path.exists(start_file):
            if time.monotonic() > limit:
                print("retry: %s never appeared" % start_file)
                return 1
            time.sleep(0.005)
    t0 = time.monotonic()
    end = t0 + secs
    attempt = 0
    while attempt < 100:
        left = end - time.monotonic()
        if left <= 0.05:
            break
        attempt += 1
        sink = Sink()
        c = new_handle(url, sink)
        c.setopt(pycurl.FRESH_CONNECT, 1)
        c.setopt(pycurl.FORBID_REUSE, 1)
        c.setopt(pycurl.TIMEOUT_MS, max(50, int(left * 1000)))
        c.setopt(pycurl.CONNECTTIMEOUT_MS, max(50, int(left * 1000)))
        err = ""
        try:
            c.perform()
        except pycurl.error as e:
            err = str(e)
        status, version, _, _ = describe(c)
        c.close()
        el = time.monotonic() - t0
        if not err and status == 200 and version == CURL_HTTP_VERSION_3:
            print("retry: attempt %d ok after %.3fs" % (attempt, el))
            return 0
        print("retry: attempt %d failed after %.3fs: %s status=%s" % (attempt, el, err, status))
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))
    print("retry: no success within %.1fs (%d attempts)" % (secs, attempt))
    return 1


def cmd_req(args):
    method = data = until = stream = None
    headers = []
    rest = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-X" and i + 1 < len(args):
            method = args[i + 1]; i += 2
        elif a == "--data" and i + 1 < len(args):
            data = args[i + 1].encode(); i += 2
        elif a == "--data-file" and i + 1 < len(args):
            with open(args[i + 1], "rb") as f:
                data = f.read()
            i += 2
        elif a == "--stream-file" and i + 1 < len(args):
            stream = args[i + 1]; i += 2
        elif a == "-H" and i + 1 < len(args):
            headers.append(args[i + 1]); i += 2
        elif a == "--until" and i + 1 < len(args):
            until = args[i + 1].split(":")
            if len(until) != 2 or until[0] not in ("sse", "nl") or not until[1].isdigit():
                die("--until takes sse:N or nl:N")
            until = (until[0], int(until[1]))
            i += 2
        else:
            rest.append(a); i += 1
    if len(rest) != 2:
        die("usage: req [-X M] [--data S] [--data-file F] [-H H]... [--until sse:N|nl:N] URL OUTFILE")
    url, out = rest
    sink = Sink(out)
    lines = []
    c = new_handle(url, sink, method, None, method == "HEAD")
    stopped = []
    if until:
        units = Units(until[0], until[1])

        def write(data):
            used = units.feed(data)
            sink.write(data[:used])
            if units.done():
                stopped.append(1)
                return 0  # abort: curl resets the stream
            return None
        c.setopt(pycurl.WRITEFUNCTION, write)
    if data is not None:
        c.setopt(pycurl.POST, 1)
        c.setopt(pycurl.POSTFIELDSIZE, len(data))
        c.setopt(pycurl.POSTFIELDS, data)
        if method:
            c.setopt(pycurl.CUSTOMREQUEST, method)
    upload = None
    if stream is not None:
        upload = open(stream, "rb")
        c.setopt(pycurl.UPLOAD, 1)
        c.setopt(pycurl.READFUNCTION, upload.read)  # no INFILESIZE: the length is unknown
        if method:
            c.setopt(pycurl.CUSTOMREQUEST, method)
    if headers:
        c.setopt(pycurl.HTTPHEADER, headers + ["Expect:"])
    c.setopt(pycurl.HEADERFUNCTION,
             lambda l: lines.append(l.decode("iso-8859-1").rstrip("\r\n")))
    err = ""
    try:
        c.perform()
    except pycurl.error as e:
        err = "" if stopped else str(e)
    sink.close()
    if upload is not None:
        upload.close()
    status, version, _, _ = describe(c)
    for l in lines:
        if l:
            print("line: %s" % l)
    line = "status=%s version=%s size=%d" % (status, vname(version), sink.size)
    if stopped:
        line += " stopped=%d" % until[1]
    if err:
        line += " error=%s" % err
    print(line, flush=True)
    c.close()
    return 0 if not err and version == CURL_HTTP_VERSION_3 else 1


def cmd_stream(args):
    if len(args) != 4:
        die("usage: stream URL sse|nl N OUTFILE")
    url, kind, n, out = args[0], args[1], int(args[2]), args[3]
    if kind not in ("sse", "nl") or not 1 <= n <= 1000:
        die("SEP must be sse or nl, N 1..1000")
    units = Units(kind, n)
    buf = bytearray()
    t0 = time.monotonic()

    def write(data):
        buf.extend(data[:units.feed(data)])
        if units.done():
            return 0  # abort: curl resets the stream
        return None
    c = new_handle(url, Sink())
    c.setopt(pycurl.WRITEFUNCTION, write)
    err = ""
    try:
        c.perform()
    except pycurl.error as e:
        err = "" if units.done() else str(e)
    status, version, ctype, _ = describe(c)
    with open(out, "wb") as f:
        f.write(bytes(buf))
    print("stream: %d %s after %.3fs status=%s version=%s type=%s (%s)" % (
        units.count, "events" if kind == "sse" else "lines", time.monotonic() - t0, status,
        vname(version), ctype, err or ("stopped" if units.done() else "ended")), flush=True)
    c.close()
    return 0 if units.done() and version == CURL_HTTP_VERSION_3 else 1


def cmd_pair(args):
    if len(args) != 3:
        die("usage: pair GOOD_URL BAD_URL 'Name: value'")
    good_url, bad_url, hdr = args
    m = pycurl.CurlMulti()
    m.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
    m.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 1)
    # first a request that opens the connection, so both share it
    warm = new_handle(good_url, Sink())
    run_multi(m, [warm], time.monotonic() + OPTS["timeout"])
    m.remove_handle(warm)
    gs, bs = Sink(), Sink()
    good = new_handle(good_url, gs)
    bad = new_handle(bad_url, bs)
    bad.setopt(pycurl.HTTPHEADER, [hdr])
    bad.setopt(pycurl.POSTFIELDS, "abc")
    for c in (good, bad):
        c.setopt(pycurl.PIPEWAIT, 1)
    res = run_multi(m, [bad, good], time.monotonic() + OPTS["timeout"] + 2)
    ge = res.get(good, (-1, "no result"))
    be = res.get(bad, (-1, "no result"))
    gst, gv, _, gc = describe(good)
    bst, bv, _, bc = describe(bad)
    print("good: err=%s status=%s version=%s connects=%s size=%d" % (ge, gst, vname(gv), gc, gs.size))
    print("bad: err=%s status=%s version=%s connects=%s size=%d" % (be, bst, vname(bv), bc, bs.size))
    wc = warm.getinfo(pycurl.NUM_CONNECTS)
    print("connections: %d" % (wc + gc + bc))
    for c in (good, bad, warm):
        try:
            m.remove_handle(c)
        except pycurl.error:
            pass
        c.close()
    m.close()
    ok = ge[0] == 0 and gst == 200 and gv == CURL_HTTP_VERSION_3 and be[0] != 0 and bst == 0
    return 0 if ok and wc + gc + bc == 1 else 1


def cmd_download(args):
    limit = 0
    if len(args) >= 2 and args[0] == "--limit":
        limit = int(args[1])
        args = args[2:]
    if len(args) != 3 or limit < 0:
        die("usage: download [--limit BYTES_PER_S] URL OUTFILE PROGRESSFILE")
    url, out, progress = args
    sink = Sink(out)
    c = new_handle(url, sink)
    # A slow reader that does not catch up: the body is taken at most at
    # LIMIT bytes/s with a burst of 0.1 s, and time lost while the server
    # sent nothing is not made up afterwards (libcurl's MAX_RECV_SPEED
    # keeps the average since the start, so a stall would be followed by
    # a burst and vanish from the rate of a window).
    paid = [0.0]

    def write(data):
        sink.write(data)
        if limit:
            now = time.monotonic()
            paid[0] = max(paid[0], now - 0.1) + len(data) / limit
            if paid[0] > now:
                time.sleep(paid[0] - now)
        return None
    c.setopt(pycurl.WRITEFUNCTION, write)
    pf = open(progress, "a")
    last = [0.0]

    def xfer(dltotal, dlnow, ultotal, ulnow):
        t = time.time()
        if t - last[0] >= 0.1:
            last[0] = t
            pf.write("%.3f %d\n" % (t, dlnow))
            pf.flush()
        return 0
    c.setopt(pycurl.NOPROGRESS, 0)
    c.setopt(pycurl.XFERINFOFUNCTION, xfer)
    err = ""
    t0 = time.monotonic()
    try:
        c.perform()
    except pycurl.error as e:
        err = str(e)
    sink.close()
    pf.write("%.3f %d\n" % (time.time(), sink.size))
    pf.close()
    status, version, _, _ = describe(c)
    c.close()
    line = "download: status=%s version=%s size=%d time=%.3f" % (
        status, vname(version), sink.size, time.monotonic() - t0)
    if err:
        line += " error=%s" % err
    print(line, flush=True)
    return 0 if not err and status == 200 and version == CURL_HTTP_VERSION_3 else 1


def cmd_loop(args):
    fresh = verbose = False
    while args and args[0] in ("--fresh", "-v"):
        fresh = fresh or args[0] == "--fresh"
        verbose = verbose or args[0] == "-v"
        args = args[1:]
    if len(args) != 3:
        die("usage: loop [--fresh] [-v] URL SECONDS INTERVAL")
    url, secs, interval = args[0], float(args[1]), float(args[2])
    if not 0 < secs <= 600 or not 0 <= interval <= 60:
        die("SECONDS must be in (0, 600], INTERVAL in [0, 60]")
    m = pycurl.CurlMulti()  # its connection cache keeps the connection
    end = time.monotonic() + secs
    ok = failed = connects = 0
    while time.monotonic() < end:
        t0 = time.monotonic()
        sink = Sink()
        c = new_handle(url, sink)
        if fresh:
            c.setopt(pycurl.FRESH_CONNECT, 1)
            c.setopt(pycurl.FORBID_REUSE, 1)
        res = run_multi(m, [c], t0 + OPTS["timeout"] + 2)
        m.remove_handle(c)
        err = res.get(c, (-1, "no result before the deadline"))
        status, version, _, nc = describe(c)
        connects += nc
        c.close()
        if err[0] == 0 and status == 200 and version == CURL_HTTP_VERSION_3:
            ok += 1
            if verbose:
                print("loop: %.3f ok after %.3fs" % (time.time(), time.monotonic() - t0),
                      flush=True)
        else:
            failed += 1
            print("loop: %.3f failed after %.3fs: err=%s status=%s version=%s" % (
                time.time(), time.monotonic() - t0, err, status, vname(version)), flush=True)
        time.sleep(max(0.0, min(interval, end - time.monotonic())))
    m.close()
    print("loop: %d ok, %d failed, %d connections" % (ok, failed, connects), flush=True)
    return 0 if failed == 0 and ok > 0 else 1


def main(argv):
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        a = argv[i]
        if a == "--cacert" and i + 1 < len(argv):
            OPTS["cacert"] = argv[i + 1]; i += 2
        elif a == "--insecure" and i + 1 < len(argv):
            OPTS["insecure"] = argv[i + 1]; i += 2
        elif a == "--resolve" and i + 1 < len(argv):
            OPTS["resolve"].append(argv[i + 1]); i += 2
        elif a == "--local" and i + 1 < len(argv):
            OPTS["local"] = argv[i + 1]; i += 2
        elif a == "--timeout" and i + 1 < len(argv):
            OPTS["timeout"] = float(argv[i + 1]); i += 2
        elif a == "--connect-timeout" and i + 1 < len(argv):
            OPTS["connect_timeout"] = float(argv[i + 1]); i += 2
        else:
            die("unknown option %s" % a)
    if i >= len(argv):
        print(__doc__, file=sys.stderr)
        return 2
    if not 0 < OPTS["timeout"] <= 600 or not 0 < OPTS["connect_timeout"] <= 600:
        die("timeouts must be in (0, 600]")
    cmd, args = argv[i], argv[i + 1:]
    if cmd != "check" and not has_http3():
        die("libcurl has no HTTP/3: %s" % pycurl.version)
    fn = {"check": cmd_check, "fetch": cmd_fetch, "multi": cmd_multi,
          "hold": cmd_hold, "retry": cmd_retry, "req": cmd_req, "stream": cmd_stream,
          "pair": cmd_pair, "download": cmd_download, "loop": cmd_loop}.get(cmd)
    if fn is None:
        die("unknown command %s" % cmd)
    return fn(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
