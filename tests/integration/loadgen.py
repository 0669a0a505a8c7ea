#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Steady load for the reload and upgrade tests (pycurl, one process).

usage: loadgen.py --port P --cacert FILE --docroot DIR --stop-file PATH
                  --max-seconds S [options]

Run it with /usr/bin/python3 (Debian's python3-pycurl, whose libcurl from
bookworm-backports speaks HTTP/3); it imports h3get.py from its directory.
One CurlMulti drives everything, so the client costs one process however
many transfers are in flight.  Until the stop file appears (or
--max-seconds pass) it keeps up:

  * --downloads N long downloads of --file, each on its own connection and
    read at --rate bytes/s, each checked byte for byte (SHA-256, hashed as
    it arrives) against the file under --docroot; a finished one is
    replaced by a new one;
  * a new connection every --interval seconds for --small, checked the
    same way; while 8 are in flight a tick is skipped (counted, not failed);
  * --events N open GET /events streams (server-sent events).  A stream
    the server ends cleanly (a complete 200 response: a draining worker
    ends its event streams) is reopened at once, as a browser's
    EventSource would, and is not a failure; an error is.  Events (blocks
    with a data: field, ended by a blank line) are counted per stream.

The rate is the client's: an HTTP/3 or HTTP/2 download lasts as long for
the server (flow control), but over HTTP/1.1 the server's TCP send buffer
(autotuned up to net.ipv4.tcp_wmem's maximum, 4 MB) takes a 3 MB file at
once and the request is over for the server in milliseconds, so h1
downloads only stay in flight on the server with a --file well beyond that.

Every transfer is on a fresh connection that is not reused.  Each kind
takes the protocols of --protocols (h3, h2, h1) in turn; h3 is HTTP/3 only
(no TCP fallback), h2 and h1 are TLS over TCP, and the version used is
checked.

options:
  --host NAME        name in the URLs and the TLS SNI (localhost); it is
                     pinned to 127.0.0.1 (like h3get --resolve)
  --port P           the server's port (UDP for h3, TCP for h2 and h1)
  --cacert FILE      trust only this certificate (the test's)
  --docroot DIR      the server's document root, for the byte checks
  --file PATH        URL path of the long downloads (/big.bin)
  --rate B           bytes/s each download reads (262144)
  --downloads N      long downloads kept in flight (20)
  --small PATH       URL path of the new-connection requests (/index.html)
  --interval S       seconds between new connections (0.05)
  --events N         /events streams kept open (3)
  --protocols LIST   comma list of h3, h2, h1 (h3)
  --timeout S        bound of each small request (20)
  --connect-timeout S  bound of each connection's handshake (15: a loaded
                     machine may be slow; curl gives a QUIC handshake at
                     most 10 s anyway)
  --stall S          a download or event stream that receives nothing for
                     S seconds fails (curl error 28); 0: never (30)
  --stop-file PATH   stop when this file exists
  --ready-file PATH  touched once every download and event stream has
                     received its first bytes
  --max-seconds S    hard bound of the whole run, the stop grace included
                     (at most 600)
  --report FILE      the counts, the transfers that ended ok or failed per
                     protocol, the failures and the event streams as JSON
  --progress FILE    the counts so far as JSON, rewritten (atomically) every
                     0.5 s while they change, so a test can wait for them

When the stop file appears no new transfer starts; the small requests in
flight may finish (within --timeout), then the downloads and event streams
still running are aborted and counted apart (aborted_at_stop), not as
failures, with whether each download's bytes so far are the start of the
file (bad_prefix, a failure if not).  A transfer that ends with a curl
error, a status other than 200, another protocol or other bytes is a
failure: a line "loadgen: FAIL {json}" (time, utc, kind, proto, error,
message, status, bytes, local_port, seconds, ...) is printed as it happens.

Output at the end:
  loadgen: downloads_ok=A downloads_failed=B new_ok=C new_failed=D
  events_failed=E events_ended_clean=F events_received=G skipped=H
  aborted_at_stop=I bad_prefix=J started_download=K started_new=L
  started_events=M
  loadgen: aborted_downloads=N aborted_events=O aborted_new=P
  stopped_by=stop-file|max-seconds cpu_user=U cpu_system=S wall=W
(one line each) and the same in --report.  Exit 0 if no failure, 1 if
any, 2 on a usage error.
"""

import argparse
import hashlib
import json
import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h3get  # noqa: E402  (exits 2 when pycurl is missing)

pycurl = h3get.pycurl

# CURLOPT_HTTP_VERSION asked for, and the CURLINFO_HTTP_VERSION it must give
PROTOS = {"h3": h3get.CURL_HTTP_VERSION_3ONLY, "h2": pycurl.CURL_HTTP_VERSION_2TLS,
          "h1": pycurl.CURL_HTTP_VERSION_1_1}
USED = {"h3": h3get.CURL_HTTP_VERSION_3, "h2": pycurl.CURL_HTTP_VERSION_2_0,
        "h1": pycurl.CURL_HTTP_VERSION_1_1}
MAX_NEW_IN_FLIGHT = 8
POLL = 0.1  # the longest sleep: how soon the stop file is seen
SUMMARY = ("downloads_ok", "downloads_failed", "new_ok", "new_failed", "events_failed",
           "events_ended_clean", "events_received", "skipped", "aborted_at_stop",
           "bad_prefix", "started_download", "started_new", "started_events")
FAILED = {"download": "downloads_failed", "new": "new_failed", "events": "events_failed"}


def file_digest(path, limit=None):
    """SHA-256 of the file, or of its first LIMIT bytes."""
    h = hashlib.sha256()
    left = os.path.getsize(path) if limit is None else limit
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def info(c, what):
    try:
        return c.getinfo(what)
    except pycurl.error:
        return 0


class EventSink:
    """Counts server-sent events (h3get.Units) without keeping the stream."""

    def __init__(self):
        self.size = 0
        self.units = h3get.Units("sse")
        self.head = b""

    @property
    def events(self):
        return self.units.count

    def write(self, data):
        self.size += len(data)
        if len(self.head) < 200:
            self.head += data[:200 - len(self.head)]
        self.units.feed(data)
        return None


class Transfer:
    def __init__(self, load, kind, slot, proto):
        o = load.opts
        self.kind, self.slot, self.proto = kind, slot, proto
        self.path = {"download": o.file, "new": o.small, "events": "/events"}[kind]
        self.sink = EventSink() if kind == "events" else h3get.Sink()
        self.started = time.monotonic()
        # h3get.OPTS (set in main) gives the CA file, the pinned address and
        # the timeouts; h3get.new_handle asks for HTTP/3 only
        c = self.curl = h3get.new_handle("https://%s:%d%s" % (o.host, o.port, self.path),
                                         self.sink)
        # trust --cacert alone: loading the system's CA directory as well
        # costs libcurl-gnutls some 30 ms of CPU for every connection
        c.setopt(pycurl.CAPATH, None)
        c.setopt(pycurl.HTTP_VERSION, PROTOS[proto])
        c.setopt(pycurl.FRESH_CONNECT, 1)
        c.setopt(pycurl.FORBID_REUSE, 1)
        if kind != "new":
            c.setopt(pycurl.TIMEOUT_MS, 0)  # they run until the stop file
            if o.stall > 0:
                c.setopt(pycurl.LOW_SPEED_LIMIT, 1)
                c.setopt(pycurl.LOW_SPEED_TIME, int(o.stall))
        if kind == "download":
            c.setopt(pycurl.MAX_RECV_SPEED_LARGE, o.rate)
        c.transfer = self

    def age(self):
        return time.monotonic() - self.started


class Load:
    def __init__(self, opts):
        self.opts = opts
        self.multi = pycurl.CurlMulti()
        self.live = set()
        self.new_in_flight = 0
        self.protos = opts.protocols.split(",")
        self.turn = {"download": 0, "new": 0, "events": 0}
        self.counts = dict.fromkeys(SUMMARY, 0)
        self.by_proto = {p: {"ok": 0, "failed": 0} for p in self.protos}
        self.aborted = {"download": 0, "new": 0, "events": 0}
        self.failures = []
        self.streams = []  # one entry per ended event stream
        self.seen = set()  # (kind, slot) of the long transfers that had bytes
        self.progress_at = 0.0  # when --progress was last written
        self.progress_counts = None
        self.big = os.path.join(opts.docroot, opts.file.lstrip("/"))
        self.big_size = os.path.getsize(self.big) if opts.downloads else 0
        self.want = {"download": file_digest(self.big) if opts.downloads else None,
                     "new": file_digest(os.path.join(opts.docroot, opts.small.lstrip("/")))}

    def start(self, kind, slot=0):
        # each kind takes the protocols in turn, so 3 event streams over
        # h3,h2,h1 are one of each
        proto = self.protos[self.turn[kind] % len(self.protos)]
        self.turn[kind] += 1
        t = Transfer(self, kind, slot, proto)
        self.counts["started_" + kind] += 1
        if kind == "new":
            self.new_in_flight += 1
        self.multi.add_handle(t.curl)
        self.live.add(t)

    def fail(self, t, code, msg):
        c = t.curl
        now = time.time()
        status = info(c, pycurl.RESPONSE_CODE)
        rec = dict(time=round(now, 3),
                   utc=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) +
                   ".%03dZ" % int(now % 1 * 1000),
                   kind=t.kind, proto=t.proto, error=code, message=msg, status=status,
                   bytes=t.sink.size, local_port=info(c, pycurl.LOCAL_PORT),
                   seconds=round(t.age(), 3))
        if t.kind == "events":
            rec["events"] = t.sink.events
        if status not in (0, 200):
            rec["body"] = t.sink.head[:120].decode("utf-8", "replace")
        self.failures.append(rec)
        self.counts[FAILED[t.kind]] += 1
        print("loadgen: FAIL %s" % json.dumps(rec), flush=True)

    def stream_ended(self, t, how):
        self.counts["events_received"] += t.sink.events
        self.streams.append(dict(slot=t.slot, proto=t.proto, events=t.sink.events,
                                 seconds=round(t.age(), 3), end=how))

    def done(self, t, code, msg, stopping):
        """A transfer ended by itself (curl error CODE, or 0)."""
        c = t.curl
        self.multi.remove_handle(c)
        self.live.discard(t)
        if t.kind == "new":
            self.new_in_flight -= 1
        elif t.sink.size:
            self.seen.add((t.kind, t.slot))
        status = info(c, pycurl.RESPONSE_CODE)
        used = info(c, pycurl.INFO_HTTP_VERSION)
        if code == 0 and status != 200:
            code, msg = -2, "status %d" % status
        if code == 0 and used != USED[t.proto]:
            code, msg = -1, "%s asked, HTTP/%s used" % (t.proto, h3get.vname(used))
        if code == 0 and t.kind != "events" and t.sink.sha.hexdigest() != self.want[t.kind]:
            size = self.big_size if t.kind == "download" else None
            code, msg = -3, "%d bytes that differ from the file%s" % (
                t.sink.size, " (%d bytes)" % size if size is not None else "")
        self.by_proto[t.proto]["failed" if code else "ok"] += 1
        if code != 0:
            self.fail(t, code, msg)
        elif t.kind == "download":
            self.counts["downloads_ok"] += 1
        elif t.kind == "new":
            self.counts["new_ok"] += 1
        else:
            self.counts["events_ended_clean"] += 1
        if t.kind == "events":
            self.stream_ended(t, "failed" if code else "clean")
        c.close()
        if not stopping and t.kind != "new":
            self.start(t.kind, t.slot)

    def pump(self, stopping, limit):
        """Let curl work, handle the transfers that ended, then wait up to
        LIMIT seconds."""
        while True:
            rv, _ = self.multi.perform()
            if rv != pycurl.E_CALL_MULTI_PERFORM:
                break
        while True:
            queued, ok, bad = self.multi.info_read()
            for c in ok:
                self.done(c.transfer, 0, "", stopping)
            for c, code, msg in bad:
                self.done(c.transfer, code, msg, stopping)
            if not queued:
                break
        self.wait(limit)

    def wait(self, limit):
        """Sleep until one of curl's sockets is ready, curl's own timer is
        due or LIMIT seconds pass.  multi.select() returns at once when curl
        watches no socket (every transfer rate-limited, or none in flight),
        which would make the loop spin on a whole CPU."""
        ms = self.multi.timeout()
        delay = min(limit, POLL) if ms < 0 else min(limit, POLL, ms / 1000.0)
        if delay <= 0:
            return
        r, w, x = self.multi.fdset()
        if r or w or x:
            select.select(r, w, x, delay)
        else:
            time.sleep(delay)

    def write_progress(self, force=False):
        """The counts so far into --progress (every 0.5 s at most)."""
        o = self.opts
        now = time.monotonic()
        if not o.progress or (not force and now - self.progress_at < 0.5):
            return
        self.progress_at = now
        if self.progress_counts == self.counts and not force:
            return
        self.progress_counts = dict(self.counts)
        tmp = o.progress + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.counts, f)
        os.rename(tmp, o.progress)

    def check_ready(self):
        for t in self.live:
            if t.kind != "new" and t.sink.size:
                self.seen.add((t.kind, t.slot))
        return len(self.seen) >= self.opts.downloads + self.opts.events

    def run(self):
        o = self.opts
        t0 = time.monotonic()
        hard = t0 + o.max_seconds  # every loop below ends by then
        cpu0 = os.times()
        for i in range(o.downloads):
            self.start("download", i)
        for i in range(o.events):
            self.start("events", i)
        next_new = t0
        ready = not o.ready_file
        stopped_by = "max-seconds"
        while True:
            now = time.monotonic()
            if now >= hard:
                break
            if os.path.exists(o.stop_file):
                stopped_by = "stop-file"
                break
            if now >= next_new:
                # a steady clock; after a stall, carry on without a burst
                next_new = max(next_new + o.interval, now)
                if self.new_in_flight >= MAX_NEW_IN_FLIGHT:
                    self.counts["skipped"] += 1
                else:
                    self.start("new")
            if not ready and self.check_ready():
                ready = True
                open(o.ready_file, "w").close()
            self.write_progress()
            self.pump(False, min(next_new, hard) - time.monotonic())
        if stopped_by == "max-seconds":
            print("loadgen: no stop file after --max-seconds %g" % o.max_seconds, flush=True)

        # the small requests may finish (curl ends them after --timeout)
        grace = min(time.monotonic() + o.timeout + 2, hard)
        while self.new_in_flight and time.monotonic() < grace:
            self.pump(True, grace - time.monotonic())
        # then the long ones are aborted: not failures, but a download's
        # bytes so far must be the start of the file
        for t in sorted(self.live, key=lambda t: (t.kind, t.slot)):
            self.multi.remove_handle(t.curl)
            self.live.discard(t)
            if t.kind == "new" and t.age() > o.timeout + 1:
                self.fail(t, -4, "no end %gs after its --timeout" % (t.age() - o.timeout))
            else:
                # a small request is cut only by --max-seconds
                self.counts["aborted_at_stop"] += 1
                self.aborted[t.kind] += 1
            if t.kind == "download":
                if t.sink.size > self.big_size or \
                        t.sink.sha.hexdigest() != file_digest(self.big, t.sink.size):
                    self.counts["bad_prefix"] += 1
                    self.fail(t, -3, "aborted at stop with %d bytes that are not the start "
                                     "of the file" % t.sink.size)
            elif t.kind == "events":
                self.stream_ended(t, "aborted")
            t.curl.close()
        self.multi.close()
        self.write_progress(force=True)

        cpu = os.times()
        extra = dict(aborted_downloads=self.aborted["download"],
                     aborted_events=self.aborted["events"], aborted_new=self.aborted["new"],
                     stopped_by=stopped_by,
                     cpu_user=round(cpu.user - cpu0.user, 2),
                     cpu_system=round(cpu.system - cpu0.system, 2),
                     wall=round(time.monotonic() - t0, 1))
        print("loadgen: " + " ".join("%s=%d" % kv for kv in self.counts.items()), flush=True)
        print("loadgen: " + " ".join("%s=%s" % kv for kv in extra.items()), flush=True)
        if o.report:
            with open(o.report, "w") as f:
                json.dump(dict(counts=self.counts, **extra, by_protocol=self.by_proto,
                               failures=self.failures, event_streams=self.streams), f, indent=1)
        return 1 if self.failures else 0


def main(argv):
    p = argparse.ArgumentParser(prog="loadgen.py",
                                description="steady load for quicd's reload tests")
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
    p.add_argument("--connect-timeout", type=float, default=15)
    p.add_argument("--stall", type=float, default=30)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--ready-file")
    p.add_argument("--max-seconds", type=float, required=True)
    p.add_argument("--report")
    p.add_argument("--progress")
    try:
        o = p.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code == 0 else 2
    protos = o.protocols.split(",")
    bad = [why for ok, why in (
        (0 < o.max_seconds <= 600, "--max-seconds must be in (0, 600]"),
        (0 < o.port < 65536, "--port must be 1..65535"),
        (o.rate >= 1, "--rate must be at least 1"),
        (0 < o.interval <= 60, "--interval must be in (0, 60]"),
        (0 <= o.downloads <= 1000 and 0 <= o.events <= 1000,
         "--downloads and --events must be 0..1000"),
        (0 < o.timeout <= 600 and 0 <= o.stall <= 600 and 0 < o.connect_timeout <= 600,
         "--timeout, --connect-timeout and --stall must be <= 600"),
        (all(x in PROTOS for x in protos), "--protocols takes h3, h2 and h1"),
        (os.path.isfile(o.cacert), "no --cacert %s" % o.cacert),
        (os.path.isfile(os.path.join(o.docroot, o.small.lstrip("/"))),
         "no --small %s under %s" % (o.small, o.docroot)),
        (o.downloads == 0 or os.path.isfile(os.path.join(o.docroot, o.file.lstrip("/"))),
         "no --file %s under %s" % (o.file, o.docroot)),
        ("h3" not in protos or h3get.has_http3(), "this libcurl has no HTTP/3: " + pycurl.version),
    ) if not ok]
    if bad:
        print("loadgen: %s" % "; ".join(bad), file=sys.stderr)
        return 2
    h3get.OPTS.update(cacert=o.cacert, resolve=["%s:%d:127.0.0.1" % (o.host, o.port)],
                      timeout=o.timeout, connect_timeout=o.connect_timeout)
    return Load(o).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
