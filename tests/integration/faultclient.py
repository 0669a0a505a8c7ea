#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""HTTP/3 client for quicd's fault-injection tests (pycurl, via h3get.py).

Every transfer is HTTP/3 only, on a connection of its own (FRESH_CONNECT,
FORBID_REUSE), and every byte is checked.  Options before the command are
h3get.py's (--cacert, --resolve, --local, --timeout, --connect-timeout).

commands:
  get [--conns N] [--parallel K] [--max-speed BYTES/S] [--mark BYTES FILE]
      [--handshake-retries R] URL EXPECT
      N connections (default 1), at most K (default 1) at a time, each GET
      URL; each body must be 200 and equal to the file EXPECT (SHA-256).
      --max-speed makes libcurl read no faster than that (a long transfer
      on loopback); --mark creates FILE once one transfer has received
      BYTES (a test can act "mid-transfer").  Prints a line per transfer
      (status, size, handshake and total time) and
      "get: OK/N ok, F failed, B bad body, ... time=T".  Exit 0 iff all
      N are right.
  ranges N URL EXPECT [--pad BYTES] [--handshake-retries R] [--procs P]
      N concurrent connections, one request each: request i asks for
      "Range: bytes=i-i" (the first field after curl's own), then
      "x-client: i" and about BYTES (default 2048) of "x-pad-K" fields
      with values distinct per request, so every header block spans
      several packets.  Each answer must be 206, "content-range:
      bytes i-i/SIZE" and exactly byte i of EXPECT.  A complete answer
      that is not (another request's byte or range, the whole file) is
      "mixed"; a transfer error or another status "failed".  Prints
      "ranges: OK/N ok, M mixed, F failed, T s" and the first problems.
      --procs spreads the N connections over P processes (request i in
      process i % P), so that one client process's CPU does not delay
      every handshake.  Exit 0 iff all N are right.

--handshake-retries R: a connection whose QUIC handshake did not complete
(no request was sent: curl gives a handshake 10 s, which heavy loss can
exhaust) is tried again, up to R more times; the repeats are counted and
printed.  A request that was sent is never repeated.

Exit 2 on a usage error.
"""

import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h3get  # noqa: E402  (OPTS, new_handle, Sink, describe, the HTTP/3 constants)
import pycurl  # noqa: E402


def die(msg):
    print("faultclient: %s" % msg, file=sys.stderr)
    sys.exit(2)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fresh(c):
    c.setopt(pycurl.FRESH_CONNECT, 1)
    c.setopt(pycurl.FORBID_REUSE, 1)


class Job:
    """One request on a connection of its own; make() builds the attempt's
    handle, sink and header dictionary."""

    def __init__(self, k, make):
        self.k = k
        self.make = make
        self.attempts = 0
        self.c = self.sink = self.hdrs = None
        self.result = (-1, "not started")
        self.t0 = self.elapsed = 0.0

    def start(self):
        if self.c is not None:
            self.c.close()
        self.c, self.sink, self.hdrs = self.make(self.k)
        self.attempts += 1
        self.t0 = time.monotonic()

    def no_handshake(self):
        """The attempt failed before its QUIC handshake completed: no
        request was sent."""
        return self.result[0] != 0 and self.c.getinfo(pycurl.APPCONNECT_TIME) == 0


def drive(jobs, limit, retries, deadline):
    """Run |jobs|, at most |limit| at once, each on a connection of its
    own; a job whose handshake did not complete is tried again, up to
    |retries| more times.  Returns how many attempts were repeated."""
    m = pycurl.CurlMulti()
    m.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 0)
    by_handle = {}
    pending = list(jobs)
    repeated = 0
    while pending or by_handle:
        while pending and len(by_handle) < limit:
            j = pending.pop(0)
            j.start()
            m.add_handle(j.c)
            by_handle[j.c] = j
        if time.monotonic() > deadline:
            for c, j in list(by_handle.items()):
                m.remove_handle(c)
                j.result = (-1, "no result before the deadline")
            for j in pending:  # never started (or not again): a handle to report on
                if j.c is None:
                    j.c, j.sink, j.hdrs = j.make(j.k)
                j.result = (-1, "not started before the deadline")
            return repeated
        while True:
            ret, _ = m.perform()
            if ret != pycurl.E_CALL_MULTI_PERFORM:
                break
        while True:
            nq, ok_list, err_list = m.info_read()
            for c, errno, errmsg in [(c, 0, "") for c in ok_list] + list(err_list):
                m.remove_handle(c)
                j = by_handle.pop(c)
                j.result = (errno, errmsg)
                j.elapsed = time.monotonic() - j.t0
                if j.no_handshake() and j.attempts <= retries:
                    print("attempt %d of #%d: no handshake (%s), trying again" % (
                        j.attempts, j.k, errmsg), flush=True)
                    repeated += 1
                    pending.append(j)
            if nq == 0:
                break
        if by_handle:
            m.select(0.05)
    m.close()
    return repeated


def cmd_get(args):
    conns, parallel, speed, mark, retries = 1, 1, 0, None, 0
    rest = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--conns" and i + 1 < len(args):
            conns = int(args[i + 1]); i += 2
        elif a == "--parallel" and i + 1 < len(args):
            parallel = int(args[i + 1]); i += 2
        elif a == "--max-speed" and i + 1 < len(args):
            speed = int(args[i + 1]); i += 2
        elif a == "--mark" and i + 2 < len(args):
            mark = (int(args[i + 1]), args[i + 2]); i += 3
        elif a == "--handshake-retries" and i + 1 < len(args):
            retries = int(args[i + 1]); i += 2
        else:
            rest.append(a); i += 1
    if len(rest) != 2 or not 1 <= conns <= 1000 or not 1 <= parallel <= 200 \
            or not 0 <= retries <= 5:
        die("usage: get [--conns 1..1000] [--parallel 1..200] [--max-speed B] "
            "[--mark BYTES FILE] [--handshake-retries 0..5] URL EXPECT")
    url, expect = rest
    want = sha256_file(expect)
    want_size = os.path.getsize(expect)

    def make(k):
        s = h3get.Sink()
        c = h3get.new_handle(url, s)
        if mark:
            def write(data):
                s.write(data)
                if s.size >= mark[0] and not os.path.exists(mark[1]):
                    open(mark[1], "w").close()
            c.setopt(pycurl.WRITEFUNCTION, write)
        fresh(c)
        if speed:
            c.setopt(pycurl.MAX_RECV_SPEED_LARGE, speed)
        return c, s, None

    jobs = [Job(k, make) for k in range(conns)]
    t0 = time.monotonic()
    # every transfer has its own TIMEOUT; this is the backstop for the queue
    rounds = (conns + parallel - 1) // parallel * (retries + 1)
    repeated = drive(jobs, parallel, retries, t0 + (h3get.OPTS["timeout"] + 2) * rounds)
    ok = failed = bad = 0
    hs = []
    for j in jobs:
        errno, msg = j.result
        status, version, _, _ = h3get.describe(j.c)
        s = j.sink
        appconnect = j.c.getinfo(pycurl.APPCONNECT_TIME)
        problem = None
        if errno != 0:
            problem = "error %d (%s)" % (errno, msg)
            failed += 1
        elif version != h3get.CURL_HTTP_VERSION_3 or status != 200:
            problem = "status %s version %s" % (status, h3get.vname(version))
            failed += 1
        elif s.size != want_size or s.sha.hexdigest() != want:
            problem = "body differs: %d bytes, want %d" % (s.size, want_size)
            bad += 1
        else:
            ok += 1
            hs.append(appconnect)
        print("get #%d: status=%s size=%d handshake=%.3fs time=%.3fs%s" % (
            j.k, status, s.size, appconnect, j.elapsed, " " + problem if problem else ""))
        j.c.close()
    hs.sort()
    print("get: %d/%d ok, %d failed, %d bad body, %d handshakes repeated, handshake "
          "min=%.3fs median=%.3fs max=%.3fs, time=%.3fs" % (
              ok, conns, failed, bad, repeated, hs[0] if hs else 0,
              hs[len(hs) // 2] if hs else 0, hs[-1] if hs else 0, time.monotonic() - t0),
          flush=True)
    return 0 if ok == conns else 1


def in_processes(procs, n, work):
    """Run work(ks) for the indexes 0..n-1 split over |procs| processes
    (index k goes to process k % procs; one process: no fork) and return
    the concatenation of the lists of dicts they return."""
    if procs <= 1:
        return work(list(range(n)))
    children = []
    for p in range(procs):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 0
            try:
                out = json.dumps(work(list(range(p, n, procs)))).encode()
                with os.fdopen(w, "wb") as f:
                    f.write(out)
            except BaseException as e:  # noqa: B036 (report anything, then exit)
                print("faultclient: process %d: %r" % (p, e), file=sys.stderr)
                code = 1
            os._exit(code)
        os.close(w)
        children.append((pid, r))
    results = []
    for pid, r in children:
        with os.fdopen(r, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        if data:
            results.extend(json.loads(data))
    return results


def cmd_ranges(args):
    pad, retries, procs = 2048, 0, 1
    rest = []
    i = 0
    while i < len(args):
        if args[i] == "--pad" and i + 1 < len(args):
            pad = int(args[i + 1]); i += 2
        elif args[i] == "--handshake-retries" and i + 1 < len(args):
            retries = int(args[i + 1]); i += 2
        elif args[i] == "--procs" and i + 1 < len(args):
            procs = int(args[i + 1]); i += 2
        else:
            rest.append(args[i]); i += 1
    if len(rest) != 3:
        die("usage: ranges N URL EXPECT [--pad BYTES] [--handshake-retries 0..5] [--procs P]")
    n, url, expect = int(rest[0]), rest[1], rest[2]
    with open(expect, "rb") as f:
        body = f.read()
    if not 1 <= n <= min(200, len(body)) or not 0 <= pad <= 16384 or not 0 <= retries <= 5 \
            or not 1 <= procs <= 16:
        die("N must be 1..200 and at most the file's size, --pad 0..16384, --procs 1..16")
    salt = os.urandom(4).hex()

    def make(k):
        s = h3get.Sink()
        c = h3get.new_handle(url, s)
        fresh(c)
        fields = ["Range: bytes=%d-%d" % (k, k), "x-client: %d" % k]
        j = size = 0
        while size < pad:
            # distinct per request and per field, so QPACK cannot shrink them
            v = hashlib.sha256(("%s/%d/%d" % (salt, k, j)).encode()).hexdigest() * 2
            f = "x-pad-%d: %s" % (j, v)
            fields.append(f)
            size += len(f)
            j += 1
        c.setopt(pycurl.HTTPHEADER, fields)
        h = {}
        c.setopt(pycurl.HEADERFUNCTION, lambda line: h3get.header_line(h, line))
        return c, s, h

    def work(ks):
        jobs = [Job(k, make) for k in ks]
        t0 = time.monotonic()
        drive(jobs, len(jobs), retries, t0 + (h3get.OPTS["timeout"] + 2) * (retries + 1))
        out = []
        for j in jobs:
            status, version, _, _ = h3get.describe(j.c)
            out.append({"k": j.k, "errno": j.result[0], "msg": j.result[1], "status": status,
                        "http3": version == h3get.CURL_HTTP_VERSION_3,
                        "range": j.hdrs.get("content-range", "-"), "size": j.sink.size,
                        "head": j.sink.head[:8].hex(), "elapsed": j.elapsed,
                        "handshake": j.c.getinfo(pycurl.APPCONNECT_TIME),
                        "attempts": j.attempts})
            j.c.close()
        return out

    t0 = time.monotonic()
    results = sorted(in_processes(procs, n, work), key=lambda r: r["k"])
    ok = mixed = failed = 0
    problems = []
    for r in results:
        k = r["k"]
        want_cr = "bytes %d-%d/%d" % (k, k, len(body))
        if r["errno"] != 0 or not r["http3"]:
            failed += 1
            problems.append("#%d: failed: error %d (%s) status %s, handshake %.3fs" % (
                k, r["errno"], r["msg"], r["status"], r["handshake"]))
        elif r["status"] == 206 and r["range"] == want_cr and r["size"] == 1 and \
                r["head"] == body[k:k + 1].hex():
            ok += 1
        elif r["status"] in (200, 206):
            mixed += 1
            problems.append("#%d: mixed: status %s content-range %s, %d bytes %s, want %s %s" % (
                k, r["status"], r["range"], r["size"], r["head"], want_cr, body[k:k + 1].hex()))
        else:
            failed += 1
            problems.append("#%d: failed: status %s content-range %s, %d bytes" % (
                k, r["status"], r["range"], r["size"]))
    failed += n - len(results)
    repeated = sum(r["attempts"] - 1 for r in results)
    print("ranges: %d/%d ok, %d mixed, %d failed, %d handshakes repeated, %.3fs" % (
        ok, n, mixed, failed, repeated, time.monotonic() - t0), flush=True)
    slow = sorted(results, key=lambda r: -r["elapsed"])[:3]
    print("ranges: slowest: %s" % ", ".join("#%d %.3fs (handshake %.3fs, %d attempts)" % (
        r["k"], r["elapsed"], r["handshake"], r["attempts"]) for r in slow))
    for p in problems[:12]:
        print("ranges: " + p)
    return 0 if ok == n else 1


def main(argv):
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        a = argv[i]
        if a == "--cacert" and i + 1 < len(argv):
            h3get.OPTS["cacert"] = argv[i + 1]; i += 2
        elif a == "--resolve" and i + 1 < len(argv):
            h3get.OPTS["resolve"].append(argv[i + 1]); i += 2
        elif a == "--local" and i + 1 < len(argv):
            h3get.OPTS["local"] = argv[i + 1]; i += 2
        elif a == "--timeout" and i + 1 < len(argv):
            h3get.OPTS["timeout"] = float(argv[i + 1]); i += 2
        elif a == "--connect-timeout" and i + 1 < len(argv):
            h3get.OPTS["connect_timeout"] = float(argv[i + 1]); i += 2
        else:
            die("unknown option %s" % a)
    if i >= len(argv):
        print(__doc__, file=sys.stderr)
        return 2
    if not 0 < h3get.OPTS["timeout"] <= 600 or not 0 < h3get.OPTS["connect_timeout"] <= 600:
        die("timeouts must be in (0, 600]")
    if not h3get.has_http3():
        die("libcurl has no HTTP/3: %s" % pycurl.version)
    cmd, args = argv[i], argv[i + 1:]
    fn = {"get": cmd_get, "ranges": cmd_ranges}.get(cmd)
    if fn is None:
        die("unknown command %s" % cmd)
    return fn(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
