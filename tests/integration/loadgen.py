#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Steady load for the reload and upgrade tests (pycurl, one process).

Run it with /usr/bin/python3 (Debian's python3-pycurl, whose libcurl from
bookworm-backports speaks HTTP/3).  One CurlMulti drives everything, so the
client costs one process however many transfers are in flight.  Until the
stop file appears (or --max-seconds pass) it keeps up:

  * --downloads N long downloads of --file, each on its own connection and
    read at --rate bytes/s, each checked byte for byte (SHA-256) against
    the file under --docroot; a finished one is replaced by a new one;
  * a new connection every --interval seconds (at most 8 in flight) for
    --small, checked the same way;
  * --events N open GET /events streams (server-sent events).  A stream
    the server ends cleanly (a complete 200 response: a draining worker
    ends its event streams) is reopened at once, as a browser's
    EventSource would, and is not a failure; an error is.

Transfers take the protocols of --protocols (h3, h2, h1) in turn; h3 is
HTTP/3 only (no TCP fallback), and the version used is checked.

When the stop file appears no new transfer starts; the new-connection
requests in flight may finish (within --timeout), then downloads and event
streams still running are aborted and counted apart (aborted_at_stop), with
whether their bytes so far were a correct prefix of the file.

Output: a line per failure as it happens, then
  loadgen: downloads_ok=A downloads_failed=B new_ok=C new_failed=D
  events_failed=E events_ended_clean=F events_received=G skipped=H
  aborted_at_stop=I bad_prefix=J started_download=K started_new=L
  started_events=M
and the same with the failures as JSON in --report.  Exit 0 if no
failure, 1 if any, 2 on a usage error.
"""

import argparse
import hashlib
import json
import os
import sys
import time

import pycurl

PROTOS = {"h3": 31, "h2": pycurl.CURL_HTTP_VERSION_2TLS, "h1": pycurl.CURL_HTTP_VERSION_1_1}
# CURLINFO_HTTP_VERSION values
USED = {"h3": 30, "h2": 3, "h1": 2}
MAX_NEW_IN_FLIGHT = 8


def file_digest(path, limit=None):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read() if limit is None else f.read(limit))
    return h.hexdigest()


class Transfer:
    def __init__(self, gen, kind, path, proto):
        self.gen, self.kind, self.path, self.proto = gen, kind, path, proto
        self.hash = hashlib.sha256()
        self.size = 0
        self.events = 0
        self.tail = b""
        self.started = time.monotonic()
        c = self.curl = pycurl.Curl()
        o = gen.opts
        c.setopt(pycurl.URL, "https://%s:%d%s" % (o.host, o.port, path))
        c.setopt(pycurl.RESOLVE, ["%s:%d:127.0.0.1" % (o.host, o.port)])
        c.setopt(pycurl.CAINFO, o.cacert)
        c.setopt(pycurl.HTTP_VERSION, PROTOS[proto])
        c.setopt(pycurl.FRESH_CONNECT, 1)
        c.setopt(pycurl.FORBID_REUSE, 1)
        c.setopt(pycurl.CONNECTTIMEOUT, 5)
        c.setopt(pycurl.WRITEFUNCTION, self.write)
        c.setopt(pycurl.NOSIGNAL, 1)
        if kind == "download":
            c.setopt(pycurl.MAX_RECV_SPEED_LARGE, o.rate)
        elif kind == "new":
            c.setopt(pycurl.TIMEOUT, o.timeout)
        c.loadgen = self

    def write(self, data):
        self.size += len(data)
        if self.kind == "events":
            buf = self.tail + data
            self.events += buf.count(b"\n\n")
            self.tail = buf[-1:]
            self.gen.counts["events_received"] += buf.count(b"\n\n")
        else:
            self.hash.update(data)
        return None


class Load:
    def __init__(self, opts):
        self.opts = opts
        self.multi = pycurl.CurlMulti()
        self.live = set()
        self.turn = 0
        self.protos = opts.protocols.split(",")
        self.counts = dict(downloads_ok=0, downloads_failed=0, new_ok=0, new_failed=0,
                           events_failed=0, events_ended_clean=0, events_received=0,
                           skipped=0, aborted_at_stop=0, bad_prefix=0, started_download=0,
                           started_new=0, started_events=0)
        self.failures = []
        self.big = os.path.join(opts.docroot, opts.file.lstrip("/"))
        self.big_digest = file_digest(self.big)
        self.big_size = os.path.getsize(self.big)
        self.small_digest = file_digest(os.path.join(opts.docroot, opts.small.lstrip("/")))
        self.first_bytes = set()

    def proto(self):
        p = self.protos[self.turn % len(self.protos)]
        self.turn += 1
        return p

    def start(self, kind):
        path = {"download": self.opts.file, "new": self.opts.small, "events": "/events"}[kind]
        t = Transfer(self, kind, path, self.proto())
        self.counts["started_" + kind] += 1
        self.multi.add_handle(t.curl)
        self.live.add(t)
        return t

    def fail(self, t, code, msg):
        c = t.curl
        rec = dict(time=time.time(), kind=t.kind, proto=t.proto, error=code, message=msg,
                   status=c.getinfo(pycurl.RESPONSE_CODE), bytes=t.size,
                   local_port=c.getinfo(pycurl.LOCAL_PORT),
                   seconds=round(time.monotonic() - t.started, 3))
        self.failures.append(rec)
        key = {"download": "downloads_failed", "new": "new_failed", "events": "events_failed"}
        self.counts[key[t.kind]] += 1
        print("loadgen: FAIL %s" % json.dumps(rec), flush=True)

    def done(self, t, code, msg, stopping):
        c = t.curl
        self.live.discard(t)
        self.multi.remove_handle(c)
        status = c.getinfo(pycurl.RESPONSE_CODE)
        used = c.getinfo(pycurl.INFO_HTTP_VERSION)
        if code == 0 and used != USED[t.proto]:
            code, msg = -1, "protocol %s used version %d" % (t.proto, used)
        if code == 0 and status != 200:
            code, msg = -2, "status %d" % status
        if code == 0 and t.kind == "download" and t.hash.hexdigest() != self.big_digest:
            code, msg = -3, "%d bytes that differ from the file" % t.size
        if code == 0 and t.kind == "new" and t.hash.hexdigest() != self.small_digest:
            code, msg = -3, "%d bytes that differ from the file" % t.size
        if code != 0:
            self.fail(t, code, msg)
        elif t.kind == "download":
            self.counts["downloads_ok"] += 1
        elif t.kind == "new":
            self.counts["new_ok"] += 1
        else:
            self.counts["events_ended_clean"] += 1
        c.close()
        if not stopping and t.kind != "new":
            self.start(t.kind)

    def pump(self, stopping):
        while True:
            rv, _ = self.multi.perform()
            if rv != pycurl.E_CALL_MULTI_PERFORM:
                break
        while True:
            queued, ok, bad = self.multi.info_read()
            for c in ok:
                self.done(c.loadgen, 0, "", stopping)
            for c, code, msg in bad:
                self.done(c.loadgen, code, msg, stopping)
            if queued == 0:
                break
        self.multi.select(0.02)

    def run(self):
        o = self.opts
        end = time.monotonic() + o.max_seconds
        for _ in range(o.downloads):
            self.start("download")
        for _ in range(o.events):
            self.start("events")
        next_new = time.monotonic()
        ready = False
        while time.monotonic() < end and not os.path.exists(o.stop_file):
            now = time.monotonic()
            if now >= next_new:
                next_new = now + o.interval
                if sum(1 for t in self.live if t.kind == "new") >= MAX_NEW_IN_FLIGHT:
                    self.counts["skipped"] += 1
                else:
                    self.start("new")
            self.pump(False)
            if not ready and o.ready_file and all(
                    t.size > 0 for t in self.live if t.kind != "new"):
                ready = True
                open(o.ready_file, "w").close()
        # stop: let the short requests finish, then abort the long ones
        grace = time.monotonic() + o.timeout + 2
        while any(t.kind == "new" for t in self.live) and time.monotonic() < grace:
            self.pump(True)
        for t in list(self.live):
            self.multi.remove_handle(t.curl)
            self.live.discard(t)
            if t.kind == "new":
                self.fail(t, -4, "no answer before the end")
                continue
            self.counts["aborted_at_stop"] += 1
            if t.kind == "download":
                # the bytes so far must be the start of the file
                if t.size > self.big_size or t.hash.hexdigest() != file_digest(self.big, t.size):
                    self.counts["bad_prefix"] += 1
                    self.fail(t, -3, "aborted at stop with %d bytes that are not the "
                                     "start of the file" % t.size)
            t.curl.close()
        self.multi.close()
        line = "loadgen: " + " ".join("%s=%d" % (k, v) for k, v in self.counts.items())
        print(line, flush=True)
        if o.report:
            with open(o.report, "w") as f:
                json.dump(dict(counts=self.counts, failures=self.failures), f, indent=1)
        return 1 if self.failures else 0


def main(argv):
    p = argparse.ArgumentParser(description="steady load for quicd's reload tests")
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cacert", required=True)
    p.add_argument("--docroot", required=True)
    p.add_argument("--file", default="/big.bin")
    p.add_argument("--rate", type=int, default=262144)
    p.add_argument("--downloads", type=int, default=20)
    p.add_argument("--small", default="/index.html")
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--events", type=int, default=3)
    p.add_argument("--protocols", default="h3")
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--ready-file")
    p.add_argument("--max-seconds", type=float, required=True)
    p.add_argument("--report")
    try:
        o = p.parse_args(argv)
    except SystemExit:
        return 2
    if not 0 < o.max_seconds <= 600 or o.rate < 1 or o.interval <= 0 or \
            any(x not in PROTOS for x in o.protocols.split(",")):
        print("loadgen: bad arguments", file=sys.stderr)
        return 2
    return Load(o).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
