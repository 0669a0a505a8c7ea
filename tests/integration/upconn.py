#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Drive the upstream daemon directly, as the master and a worker would.

usage: upconn.py --daemon PATH --dir T --backend PORT --unix PATH
                 --full PORT --closed PORT [--quicctl PATH]

Starts PATH (the upstream binary) with its control channel on descriptor 3
and a stats socket on 4, sends it CONFIG (proxy_table = T/up.tbl, written
here), waits for CONFIG_DONE and READY, then gives it worker channels
(CHANNEL + one end of a SOCK_SEQPACKET socketpair) and speaks the qd_ipc
wire format of libshared/qd_ipc.h on them: UP_CONNECT, UP_CONNECTED (with
the socket as SCM_RIGHTS), UP_STATE, UP_REPORT, UP_COUNTS. Every check
prints "ok: ..." or "FAIL: ..."; the exit status is 1 if any failed, 99 on
a harness error.

--backend is an HTTP backend (httpbackend.py) on 127.0.0.1, --unix one on a
Unix socket; --full is a port this script listens on with backlog 0 and one
connection queued, never accepted (a connect to it times out); --closed a
port nobody listens on (refused). With --quicctl, that binary's
"upstreams" output is checked against the daemon's status text, served by
a control socket here that plays the master. Every wait is bounded; the
daemons it started are ended by their pid.
"""
import argparse
import errno
import os
import resource
import select
import socket
import struct
import subprocess
import sys
import time

HDR = struct.Struct(">HHII")
CONFIG, CHANNEL, READY, CONFIG_DONE, STATUS = 1, 3, 10, 11, 12
CTL_REPLY, CTL_UPSTREAMS = 43, 47
REQ_HEAD = 30
UP_CONNECT, UP_CONNECTED, UP_STATE, UP_REPORT, UP_COUNTS = 50, 51, 52, 53, 54
F_TEXT, F_STATUS, F_ROLE, F_INSTANCE, F_STREAM = 1, 2, 3, 4, 19
F_REQUESTS = 59
F_SEQ, F_GROUP, F_SERVER = 77, 78, 79
F_UP_ACTIVE, F_UP_IDLE, F_UP_FAILS = 80, 81, 82
ROLE_WORKER = 2
STATE_UP, STATE_DOWN = 0, 1
RESULT_OK, RESULT_TIMEOUT, RESULT_BROKEN = 0, 1, 2
U64 = {F_STREAM, F_SEQ, F_REQUESTS, F_UP_FAILS}
FAILED = [0]


def ok(cond, what, detail=""):
    if cond:
        print("ok: %s" % what, flush=True)
    else:
        FAILED[0] += 1
        print("FAIL: %s%s" % (what, (": %s" % (detail,)) if detail else ""), flush=True)
    return cond


def encode(mtype, fields, mid=0):
    body = b""
    for tag, val in fields:
        if isinstance(val, str):
            v = val.encode()
        elif isinstance(val, bytes):
            v = val
        elif tag in U64:
            v = struct.pack(">Q", val)
        else:
            v = struct.pack(">I", val)
        body += struct.pack(">HH", tag, len(v)) + v
    return HDR.pack(mtype, 0, len(body), mid) + body


class Msg:
    def __init__(self, data, fds):
        self.type, _, blen, self.id = HDR.unpack_from(data)
        self.fields = []
        pos = HDR.size
        while pos < HDR.size + blen:
            tag, ln = struct.unpack_from(">HH", data, pos)
            self.fields.append((tag, data[pos + 4:pos + 4 + ln]))
            pos += 4 + ln
        self.fds = fds

    def all(self, tag):
        return [v for t, v in self.fields if t == tag]

    def get(self, tag, default=None):
        v = self.all(tag)
        if not v:
            return default
        v = v[0]
        if tag in (F_TEXT, F_GROUP, F_SERVER):
            return v.decode()
        return struct.unpack(">Q" if len(v) == 8 else ">I", v)[0]

    def servers(self):
        """(group, server, state) of an UP_STATE, in order"""
        out, cur = [], {}
        for tag, v in self.fields:
            if tag == F_GROUP:
                cur = {"group": v.decode()}
            elif tag == F_SERVER:
                cur["server"] = v.decode()
            elif tag == F_STATUS:
                out.append((cur.get("group"), cur.get("server"), struct.unpack(">I", v)[0]))
        return out


class Chan:
    """one SOCK_SEQPACKET end speaking qd_ipc"""

    def __init__(self, sock, name):
        self.sock, self.name, self.queue, self.pending = sock, name, [], []

    def send(self, mtype, fields, fds=(), mid=0):
        data = encode(mtype, fields, mid)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("%di" % len(fds), *fds))] if fds else []
        self.sock.sendmsg([data], anc)

    def send_raw(self, data):
        self.sock.sendmsg([data])

    def _read(self, timeout):
        """the next message: a record (one recvmsg) may carry several back to
        back, the record's descriptors going with its last (qd_chan)"""
        if self.pending:
            return self.pending.pop(0)
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not r:
            return None
        data, anc, _, _ = self.sock.recvmsg(70000, socket.CMSG_SPACE(16 * 4))
        if not data:
            raise EOFError(self.name)
        fds = []
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds += list(struct.unpack("%di" % (len(cdata) // 4), cdata[:len(cdata) - len(cdata) % 4]))
        off = 0
        while off < len(data):
            blen = HDR.unpack_from(data, off)[2]
            end = off + HDR.size + blen
            self.pending.append(Msg(data[off:end], fds if end >= len(data) else []))
            off = end
        return self.pending.pop(0)

    def wait(self, pred, timeout):
        """the first message (queued or new) for which pred holds; others stay queued"""
        for i, m in enumerate(self.queue):
            if pred(m):
                return self.queue.pop(i)
        end = time.monotonic() + timeout
        while True:
            m = self._read(end - time.monotonic())
            if m is None:
                return None
            if pred(m):
                return m
            self.queue.append(m)

    def drop(self, mtype):
        for m in [m for m in self.queue if m.type == mtype]:
            for fd in m.fds:
                os.close(fd)
            self.queue.remove(m)


class Daemon:
    def __init__(self, path, log, table):
        self.table = table
        ctl_p, ctl_c = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        st_p, st_c = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        a, b = fcntl_dup(ctl_c.fileno()), fcntl_dup(st_c.fileno())

        def child():
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.close(a)
            os.close(b)
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

        self.proc = subprocess.Popen([path, "-g", "1", "-l", "stderr", "-V", "debug"],
                                     stdin=subprocess.DEVNULL, stderr=log, stdout=log,
                                     pass_fds=(3, 4, a, b), preexec_fn=child)
        os.close(a)
        os.close(b)
        ctl_c.close()
        st_c.close()
        self.stats = st_p
        self.ctl = Chan(ctl_p, "master")
        self.workers = []

    def configure(self, mid):
        text = "proxy_table = %s\nlog_level = debug\n" % self.table
        self.ctl.send(CONFIG, [(F_TEXT, text)], mid=mid)
        return self.ctl.wait(lambda m: m.type == CONFIG_DONE and m.id == mid, 10)

    def worker(self, instance):
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.ctl.send(CHANNEL, [(F_ROLE, ROLE_WORKER), (F_INSTANCE, instance)], fds=[theirs.fileno()])
        theirs.close()
        return Chan(mine, "worker[%d]" % instance)

    def status_text(self, timeout=3):
        """the next periodic STATUS report's F_TEXT (a line per server)"""
        self.ctl.drop(STATUS)
        m = self.ctl.wait(lambda m: m.type == STATUS, timeout)
        return m.get(F_TEXT, "") if m else ""

    def line(self, group, server, pred, timeout=3):
        """the server's fields in the status reports once |pred| holds for them (the last seen
        if it does not within |timeout|): a report may have left before the change"""
        end, fields = time.monotonic() + timeout, {}
        while time.monotonic() < end:
            for ln in self.status_text(end - time.monotonic()).splitlines():
                if ln.startswith("group=%s server=%s " % (group, server)):
                    fields = dict(kv.split("=", 1) for kv in ln.split(" last=")[0].split(" "))
            if pred(fields):
                break
        return fields

    def stop(self):
        if self.proc.returncode is not None:
            return
        self.ctl.sock.close()  # the master went away: the daemon exits
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.stats.close()


def fcntl_dup(fd):
    import fcntl
    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)


class Asker:
    """a worker's side of UP_CONNECT: ids and answers"""

    def __init__(self, chan):
        self.chan, self.next = chan, 1

    def ask(self, group, server, fields=None):
        sid = self.next
        self.next += 1
        self.chan.send(UP_CONNECT, fields if fields is not None else
                       [(F_STREAM, sid), (F_GROUP, group), (F_SERVER, server)])
        return sid

    def answer(self, sid, timeout=5):
        return self.chan.wait(lambda m: m.type == UP_CONNECTED and m.get(F_STREAM) == sid, timeout)

    def connect(self, group, server, timeout=5):
        t0 = time.monotonic()
        m = self.answer(self.ask(group, server), timeout)
        return m, time.monotonic() - t0


def http_get(fd, path):
    s = socket.socket(fileno=fd)
    try:
        s.settimeout(5)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        return data.decode(errors="replace")
    finally:
        s.close()


def counts(instance, entries):
    """UP_COUNTS fields: F_INSTANCE, then (group, server, active, idle, requests, fails) each"""
    fields = [(F_INSTANCE, instance)]
    for g, sv, act, idle, req, fails in entries:
        fields += [(F_GROUP, g), (F_SERVER, sv), (F_UP_ACTIVE, act), (F_UP_IDLE, idle),
                   (F_REQUESTS, req), (F_UP_FAILS, fails)]
    return fields


def tallies(fields):
    """the worker counts of a status line: (active, idle, requests, fails, workers)"""
    return tuple(fields.get(k) for k in ("active", "idle", "requests", "fails", "workers"))


def is_state(group, server, state):
    def pred(m):
        return m.type == UP_STATE and (group, server, state) in m.servers()
    return pred


def main():
    ap = argparse.ArgumentParser()
    for k in ("daemon", "dir", "unix"):
        ap.add_argument("--" + k, required=True)
    for k in ("backend", "full", "closed", "wide"):
        ap.add_argument("--" + k, required=True, type=int)
    ap.add_argument("--quicctl")
    a = ap.parse_args()

    A = "127.0.0.1:%d" % a.backend
    U = "unix:%s" % a.unix
    FULL = "127.0.0.1:%d" % a.full
    REFUSED = "127.0.0.1:%d" % a.closed
    WIDE = "127.0.0.1:%d" % a.wide
    table = os.path.join(a.dir, "up.tbl")
    with open(table, "w") as f:
        f.write("group a connect_timeout=300ms fall=100\n"
                "server a %s\nserver a %s\nserver a %s\nserver a %s\n"
                "server a no-such-host.invalid:80\n"
                "group p fall=2 fail_timeout=1s\nserver p %s\n"
                "group c check=/healthz check_interval=200ms rise=2 fall=2\nserver c %s\n"
                % (A, U, FULL, WIDE, REFUSED, A))
    os.chmod(table, 0o644)  # read again on the reload, by the daemons' user

    # the full listener: backlog 0 and one connection queued, never accepted
    full = socket.socket()
    full.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    full.bind(("127.0.0.1", a.full))
    full.listen(0)
    queued = socket.create_connection(("127.0.0.1", a.full), timeout=2)
    # a listener with room: connects complete in the kernel, never accepted
    wide = socket.socket()
    wide.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    wide.bind(("127.0.0.1", a.wide))
    wide.listen(256)

    log = open(os.path.join(a.dir, "upstream.log"), "ab")
    t_start_ms = int(time.time() * 1000)
    d = Daemon(a.daemon, log, table)
    try:
        m = d.configure(1)
        if not ok(m is not None and m.get(F_STATUS) == 0, "CONFIG_DONE 0 for the first CONFIG",
                  m and m.get(F_TEXT)):
            return
        ok(d.ctl.wait(lambda m: m.type == READY, 5) is not None, "READY")
        run(d, a, A, U, FULL, WIDE, REFUSED, t_start_ms, table)
    finally:
        d.stop()
        queued.close()
        full.close()
        wide.close()
        log.close()


def run(d, a, A, U, FULL, WIDE, REFUSED, t_start_ms, table):
    w = d.worker(0)
    first = w.wait(lambda m: m.type == UP_STATE, 5)
    ok(first is not None, "a new worker channel gets UP_STATE")
    if first is None:
        return
    seq0 = first.get(F_SEQ)
    ok(seq0 > t_start_ms * 1000, "F_SEQ starts above the wall clock in ms * 1000 (%d)" % seq0)
    got = first.servers()
    want = {("a", A), ("a", U), ("a", FULL), ("a", WIDE), ("a", "no-such-host.invalid:80"),
            ("p", REFUSED), ("c", A)}
    ok({(g, s) for g, s, _ in got} == want and all(st == STATE_UP for _, _, st in got),
       "it lists every server, up", got)

    k = Asker(w)
    # ---- the handoff
    m, dt = k.connect("a", A)
    ok(m is not None and m.get(F_STATUS) == 0 and len(m.fds) == 1,
       "UP_CONNECTED 0 with a socket for a TCP server", m and (m.get(F_STATUS), m.get(F_TEXT)))
    if m is not None and m.fds:
        s = socket.socket(fileno=os.dup(m.fds[0]))
        nodelay = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        peer = s.getpeername()
        s.close()
        ok(nodelay != 0 and peer == ("127.0.0.1", a.backend),
           "the socket is connected to it, TCP_NODELAY set", (peer, nodelay))
        answer = http_get(m.fds[0], "/handoff")
        ok(answer.startswith("HTTP/1.1 200") and "a /handoff" in answer,
           "a request on the handed socket reaches the backend", answer[:80])
    m, _ = k.connect("a", U)
    ok(m is not None and m.get(F_STATUS) == 0 and len(m.fds) == 1,
       "UP_CONNECTED 0 with a socket for a Unix-socket server", m and m.get(F_TEXT))
    if m is not None and m.fds:
        answer = http_get(m.fds[0], "/unix")
        ok(" /unix" in answer, "a request over it reaches the Unix backend", answer[:80])

    # ---- many at once (to a listener with room for them all: the backend's backlog is 5)
    ids = [k.ask("a", WIDE) for _ in range(50)]
    answers = [k.answer(i, 5) for i in ids]
    good = [m for m in answers if m is not None and m.get(F_STATUS) == 0 and len(m.fds) == 1]
    ok(len(good) == 50, "50 connects asked at once: 50 sockets", len(good))
    for m in answers:
        for fd in (m.fds if m else []):
            os.close(fd)

    # ---- failures
    m, dt = k.connect("a", FULL)
    ok(m is not None and m.get(F_STATUS) == errno.ETIMEDOUT and 0.25 <= dt < 2.5,
       "a listener whose accept queue is full: ETIMEDOUT after connect_timeout (%.2f s, \"%s\")"
       % (dt, m and m.get(F_TEXT)), m and m.get(F_STATUS))
    m, _ = k.connect("a", "127.0.0.1:9")
    ok(m is not None and m.get(F_STATUS) == errno.ENOENT, "a server not in the table: ENOENT",
       m and m.get(F_STATUS))
    m, _ = k.connect("nosuchgroup", A)
    ok(m is not None and m.get(F_STATUS) == errno.ENOENT, "a group not in the table: ENOENT",
       m and m.get(F_STATUS))
    m, _ = k.connect("a", "no-such-host.invalid:80")
    ok(m is not None and m.get(F_STATUS) == errno.EHOSTUNREACH and "not resolved" in m.get(F_TEXT, ""),
       "a name that does not resolve: EHOSTUNREACH (\"%s\")" % (m and m.get(F_TEXT)),
       m and m.get(F_STATUS))

    # ---- malformed messages: logged and dropped, the channel goes on
    w.send_raw(b"\x00\x32garbage")
    w.send(REQ_HEAD, [(F_STREAM, 7)])
    w.send(UP_CONNECT, [(F_GROUP, "a"), (F_SERVER, A)])  # no id: dropped, nothing to answer
    k.ask("a", A, [(F_STREAM, 4242), (F_GROUP, "a")])
    m = k.answer(4242, 5)
    ok(m is not None and m.get(F_STATUS) == errno.EINVAL, "an ask without a server: EINVAL",
       m and m.get(F_STATUS))
    w.send(UP_REPORT, [(F_GROUP, "p"), (F_SERVER, REFUSED), (F_STATUS, 9)])
    m, _ = k.connect("a", A)
    ok(m is not None and m.get(F_STATUS) == 0 and d.proc.poll() is None,
       "after malformed messages the daemon still answers", m and m.get(F_STATUS))
    for fd in (m.fds if m else []):
        os.close(fd)
    ok(wait_log(a.dir, "dropped malformed message from worker[0]", 3),
       "the malformed messages are logged")

    # ---- passive: fall refused connects in a row: down; up after fail_timeout (no checks)
    last_seq = [seq0]

    def state_msg(pred, timeout):
        m = w.wait(lambda m: pred(m), timeout)
        if m is not None:
            seq = m.get(F_SEQ)
            ok(seq > last_seq[0], "UP_STATE sequence numbers grow (%d > %d)" % (seq, last_seq[0]))
            last_seq[0] = seq
        return m

    m, dt = k.connect("p", REFUSED)
    ok(m is not None and m.get(F_STATUS) == errno.ECONNREFUSED and not m.fds and
       m.get(F_TEXT) == "connect: Connection refused",
       "a refused connect: ECONNREFUSED, \"connect: Connection refused\"",
       m and (m.get(F_STATUS), m.get(F_TEXT)))
    line = d.line("p", REFUSED, lambda f: f.get("passive_run") == "1")
    ok(line.get("state") == "up" and line.get("passive_run") == "1",
       "one refused connect: still up, passive_run=1", line)
    t0 = time.monotonic()
    k.connect("p", REFUSED)
    m = state_msg(is_state("p", REFUSED, STATE_DOWN), 3)
    ok(m is not None and m.servers() == [("p", REFUSED, STATE_DOWN)],
       "fall (2) refused connects: UP_STATE down, with only that server", m and m.servers())
    line = d.line("p", REFUSED, lambda f: f.get("state") == "down")
    ok(line.get("state") == "down" and line.get("down_by") == "passive" and
       line.get("passive_failures") == "2", "the status line says down_by=passive, passive_failures=2", line)
    ok(wait_log(a.dir, "upstream p server %s is down: passive: 2 failures (last: connect: Connection refused)"
                % REFUSED, 3), "the change is logged with its cause")
    m = state_msg(is_state("p", REFUSED, STATE_UP), 4)
    dt = time.monotonic() - t0
    ok(m is not None and 0.8 <= dt < 3.5, "up again after fail_timeout (1 s): %.2f s" % dt)

    # ---- reports: OK starts the run over; fall BROKEN/TIMEOUT: down; with checks, up through them
    def report(result):
        w.send(UP_REPORT, [(F_GROUP, "c"), (F_SERVER, A), (F_STATUS, result)])

    report(RESULT_BROKEN)
    report(RESULT_OK)
    report(RESULT_TIMEOUT)
    line = d.line("c", A, lambda f: f.get("passive_failures") == "2")
    ok(line.get("passive_run") == "1" and line.get("state") == "up" and
       line.get("passive_failures") == "2", "BROKEN, OK, TIMEOUT: still up, the run is 1", line)
    report(RESULT_BROKEN)
    t0 = time.monotonic()
    m = state_msg(is_state("c", A, STATE_DOWN), 3)
    ok(m is not None, "a second failure in a row (fall=2): down")
    m = state_msg(is_state("c", A, STATE_UP), 4)
    dt = time.monotonic() - t0
    ok(m is not None and dt >= 0.15, "a group with checks: up again through them (%.2f s)" % dt)
    # rise (2) good checks counted from the passive down, not the run the checks had before it
    ok(wait_log(a.dir, "upstream c server %s is up: status 200 (2 good checks in a row)" % A, 3),
       "... after rise good checks counted from the down (logged)")

    # ---- UP_COUNTS from two workers: sums and per-worker values in the status line
    w5 = d.worker(5)
    ok(w5.wait(lambda m: m.type == UP_STATE, 5) is not None, "a worker channel for instance 5")
    w.send(UP_COUNTS, counts(0, [("a", A, 2, 3, 100, 1), ("a", U, 0, 1, 7, 0),
                                 ("a", "127.0.0.1:9", 9, 9, 9, 9), ("nosuchgroup", A, 9, 9, 9, 9)]))
    w5.send(UP_COUNTS, counts(5, [("a", A, 1, 0, 50, 2)]))
    want_a = ("3", "3", "150", "3", "0:2/3/100/1,5:1/0/50/2")
    line = d.line("a", A, lambda f: tallies(f) == want_a)
    ok(tallies(line) == want_a, "two workers' UP_COUNTS: active=3 idle=3 requests=150 fails=3 "
       "workers=0:2/3/100/1,5:1/0/50/2", tallies(line))
    line = d.line("a", U, lambda f: tallies(f) == ("0", "1", "7", "0", "0:0/1/7/0"))
    ok(tallies(line) == ("0", "1", "7", "0", "0:0/1/7/0"), "... one worker's at another server",
       tallies(line))
    line = d.line("p", REFUSED, lambda f: "workers" in f)
    ok(tallies(line) == ("0", "0", "0", "0", "-"), "a server no worker counted: zeros, workers=-",
       tallies(line))
    ok(wait_log(a.dir, "worker[0] counted 2 servers not in the table; ignored", 3),
       "entries for a server or a group not in the table are ignored (logged at debug level)")
    w.send(UP_COUNTS, counts(0, [("a", A, 0, 4, 120, 1)]))
    want_a = ("1", "4", "170", "3", "0:0/4/120/1,5:1/0/50/2")
    line = d.line("a", A, lambda f: tallies(f) == want_a)
    ok(tallies(line) == want_a, "the latest counts replace a worker's earlier ones", tallies(line))
    ok(tallies(d.line("a", U, lambda f: True)) == ("0", "1", "7", "0", "0:0/1/7/0"),
       "a server the new message does not name keeps what the worker said before")

    # malformed: each dropped whole (a good entry before a bad one is not stored either)
    before = log_count(a.dir, "dropped malformed message from worker[5]")
    good = [(F_GROUP, "a"), (F_SERVER, A), (F_UP_ACTIVE, 7), (F_UP_IDLE, 7), (F_REQUESTS, 777),
            (F_UP_FAILS, 7)]
    bad = [
        good,                                          # no F_INSTANCE
        [(F_INSTANCE, 0)] + good,                      # another worker's instance
        [(F_INSTANCE, 5)] + good[:5],                  # an entry without F_UP_FAILS
        [(F_INSTANCE, 5)] + good + good[:3],           # a good entry, then a cut one
        [(F_INSTANCE, 5), (F_SERVER, A)] + good,       # a field before F_GROUP
        [(F_INSTANCE, 5)] + good + [(F_REQUESTS, 1)],  # a field twice
        [(F_INSTANCE, 5)] + good + [(F_STREAM, 1)],    # a field that has no place here
    ]
    for fields in bad:
        w5.send(UP_COUNTS, fields)
    w5.send_raw(encode(UP_COUNTS, [(F_INSTANCE, 5), (F_GROUP, "a"), (F_SERVER, A)])[:-3])
    ok(wait_log_count(a.dir, "dropped malformed message from worker[5]", before + len(bad) + 1, 3),
       "%d malformed UP_COUNTS: each logged as dropped" % (len(bad) + 1),
       log_count(a.dir, "dropped malformed message from worker[5]") - before)
    line = d.line("a", A, lambda f: False, 1.2)
    ok(tallies(line) == want_a and d.proc.poll() is None,
       "... and nothing of them stored, the daemon unharmed", tallies(line))
    w5.send(UP_COUNTS, counts(5, [("a", A, 1, 1, 60, 2)]))
    want_a = ("1", "5", "180", "3", "0:0/4/120/1,5:1/1/60/2")
    line = d.line("a", A, lambda f: tallies(f) == want_a)
    ok(tallies(line) == want_a, "the channel goes on: a good UP_COUNTS after them counts",
       tallies(line))

    if a.quicctl:
        check_quicctl(a, d.status_text(), A, U, REFUSED)

    # a closed worker channel drops that worker's entries
    w5.sock.close()
    ok(wait_log(a.dir, "worker[5]'s channel closed", 3), "worker[5]'s channel closes")
    want_a = ("0", "4", "120", "1", "0:0/4/120/1")
    line = d.line("a", A, lambda f: tallies(f) == want_a)
    ok(tallies(line) == want_a, "its entries are gone: only worker 0's remain", tallies(line))

    # ---- a second worker, then the first one's channel replaced (a restarted worker)
    w1 = d.worker(1)
    m = w1.wait(lambda m: m.type == UP_STATE, 5)
    ok(m is not None and len(m.servers()) == 7 and m.get(F_SEQ) > last_seq[0],
       "a second worker gets every server, with a higher sequence number")
    k.ask("a", FULL)  # in flight while the channel is replaced
    time.sleep(0.05)
    w0b = d.worker(0)
    m = w0b.wait(lambda m: m.type == UP_STATE, 5)
    ok(m is not None and len(m.servers()) == 7, "a restarted worker's new channel gets every server")
    ok(closed(w, 3), "the old channel of the same instance is closed")
    ok(wait_log(a.dir, "worker[0] has a new channel; the old one is closed (1 connects cancelled)", 3),
       "its connect in flight is cancelled")
    line = d.line("a", A, lambda f: f.get("workers") == "-")
    ok(tallies(line) == ("0", "0", "0", "0", "-"),
       "the replaced channel's counts are dropped (a restarted worker counts from 0)", tallies(line))
    w = w0b
    k = Asker(w)
    k.next = 100
    k1 = Asker(w1)
    k1.ask("a", FULL)
    time.sleep(0.05)
    w1.sock.close()
    ok(wait_log(a.dir, "worker[1]'s channel closed (1 connects cancelled)", 3),
       "a worker channel that closes cancels its connects")

    # ---- the bound on connects in flight
    ids = [k.ask("a", FULL) for _ in range(1100)]
    answers = [k.answer(i, 10) for i in ids]
    codes = [m.get(F_STATUS) if m else None for m in answers]
    n_again = codes.count(errno.EAGAIN)
    n_timeout = codes.count(errno.ETIMEDOUT)
    ok(n_again == 1100 - 1024 and n_timeout == 1024,
       "1100 connects at once: 1024 in flight (ETIMEDOUT), %d refused at once (EAGAIN)" % n_again,
       {c: codes.count(c) for c in set(codes)})

    # ---- a reload that adds a server broadcasts it
    with open(table, "a") as f:
        f.write("server p %s\n" % U)
    m = d.configure(2)
    ok(m is not None and m.get(F_STATUS) == 0, "a reload: CONFIG_DONE 0", m and m.get(F_TEXT))
    m = state_msg(lambda m: m.type == UP_STATE and ("p", U, STATE_UP) in m.servers(), 3)
    ok(m is not None and m.servers() == [("p", U, STATE_UP)], "the server it adds is broadcast",
       m and m.servers())
    m, _ = k.connect("p", U)
    ok(m is not None and m.get(F_STATUS) == 0, "and a connect to it works")
    for fd in (m.fds if m else []):
        os.close(fd)

    # ---- counts across reloads: kept for a server that stays, dropped for one that leaves
    w.send(UP_COUNTS, counts(0, [("p", U, 1, 2, 3, 4), ("c", A, 5, 6, 7, 8)]))
    line = d.line("p", U, lambda f: f.get("workers") == "0:1/2/3/4")
    ok(tallies(line) == ("1", "2", "3", "4", "0:1/2/3/4"), "counts for the added server",
       tallies(line))
    with open(table) as f:
        lines = f.readlines()
    with open(table, "w") as f:
        f.writelines(ln for ln in lines if ln != "server p %s\n" % U)
    m = d.configure(3)
    ok(m is not None and m.get(F_STATUS) == 0, "a reload that removes it", m and m.get(F_TEXT))
    gone = d.line("p", U, lambda f: False, 1.2)
    ok(gone == {}, "the server is out of the status report", gone)
    with open(table, "a") as f:
        f.write("server p %s\n" % U)
    m = d.configure(4)
    ok(m is not None and m.get(F_STATUS) == 0, "a reload that adds it back", m and m.get(F_TEXT))
    line = d.line("p", U, lambda f: "workers" in f)
    ok(tallies(line) == ("0", "0", "0", "0", "-"),
       "a server that left the table lost its counts: back with none", tallies(line))
    line = d.line("c", A, lambda f: "workers" in f)
    ok(tallies(line) == ("5", "6", "7", "8", "0:5/6/7/8"),
       "a server that stays through reloads keeps them", tallies(line))
    last = [last_seq[0]]

    # ---- a restarted daemon's numbers are higher than its predecessor's; a table too large
    # for one message reaches a new channel in several
    d.stop()
    big = {}
    with open(table, "a") as f:
        for g in range(60):
            for i in range(64):
                name = "unix:/nonexistent/%s%04d" % ("p" * 80, g * 64 + i)
                big[("g%02d" % g, name)] = True
            f.write("group g%02d\n" % g)
            f.write("".join("server g%02d %s\n" % (g, n) for (gg, n) in big if gg == "g%02d" % g))
    log = open(os.path.join(a.dir, "upstream2.log"), "ab")
    d2 = Daemon(a.daemon, log, table)
    try:
        m = d2.configure(1)
        ok(m is not None and m.get(F_STATUS) == 0, "a table of %d more servers loads" % len(big),
           m and m.get(F_TEXT))
        w2 = d2.worker(0)
        m = w2.wait(lambda m: m.type == UP_STATE, 10)
        ok(m is not None and m.get(F_SEQ) > last[0],
           "a restarted daemon's first F_SEQ is above its predecessor's last (%s > %d)"
           % (m and m.get(F_SEQ), last[0]))
        parts, seen, seqs = 0, set(), []
        while m is not None:
            parts += 1
            seqs.append(m.get(F_SEQ))
            seen |= {(g, s) for g, s, _ in m.servers()}
            m = w2.wait(lambda m: m.type == UP_STATE, 1)
        ok(parts > 1 and all(x + 1 == y for x, y in zip(seqs, seqs[1:])) and
           all(k in seen for k in big) and len(seen) == len(big) + 8,
           "%d servers reach a new channel in %d UP_STATE messages, one sequence number each"
           % (len(seen), parts), (parts, len(seen)))
    finally:
        d2.stop()
        log.close()


def quicctl_upstreams(a, text, *args):
    """quicctl upstreams |args| against a control socket that answers |text| (as the master)"""
    import threading
    rundir = os.path.join(a.dir, "ctl")
    os.makedirs(rundir, exist_ok=True)
    conf = os.path.join(rundir, "quicd.conf")
    with open(conf, "w") as f:
        f.write("runtime_directory = %s\n" % rundir)
    path = os.path.join(rundir, "control.sock")
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(5)

    def serve():
        try:
            c, _ = srv.accept()
        except OSError:
            return
        with c:
            c.settimeout(5)
            req = Msg(c.recv(70000), [])
            if req.type == CTL_UPSTREAMS:
                c.sendall(encode(CTL_REPLY, [(F_STATUS, 0), (F_TEXT, text)], req.id))

    t = threading.Thread(target=serve)
    t.start()
    try:
        p = subprocess.run([a.quicctl, "-c", conf, "upstreams"] + list(args), capture_output=True,
                           text=True, timeout=10)
    finally:
        t.join(10)
        srv.close()
    return p.returncode, p.stdout + p.stderr


def check_quicctl(a, text, A, U, REFUSED):
    """quicctl upstreams shows the workers' counts of the daemon's own report, and an older
    daemon's lines without them"""
    import json
    rc, out = quicctl_upstreams(a, text, "--json")
    try:
        servers = {(s["group"], s["server"]): s for s in json.loads(out)["servers"]}
    except (ValueError, KeyError) as e:
        ok(False, "quicctl upstreams --json on the daemon's report", (rc, e, out[:300]))
        return
    sa, su, sr = servers.get(("a", A), {}), servers.get(("a", U), {}), servers.get(("p", REFUSED), {})
    ok(rc == 0 and [sa.get(k) for k in ("active", "idle", "requests", "fails")] == [1, 5, 180, 3] and
       sa.get("workers") == [{"instance": 0, "active": 0, "idle": 4, "requests": 120, "fails": 1},
                             {"instance": 5, "active": 1, "idle": 1, "requests": 60, "fails": 2}],
       "quicctl upstreams --json: active, idle, requests, fails and a workers array", sa)
    ok(su.get("workers") == [{"instance": 0, "active": 0, "idle": 1, "requests": 7, "fails": 0}] and
       sr.get("workers") == [] and sr.get("requests") == 0 and sr.get("last") is None,
       "... one worker, and none: []", (su, sr))
    rc, out = quicctl_upstreams(a, text)
    head = out.splitlines()[0].split() if out else []
    row = [ln.split() for ln in out.splitlines() if ln.startswith("a ") and " %s " % A in ln]
    ok(rc == 0 and head[:13] == ["GROUP", "SERVER", "STATE", "DOWN_BY", "FOR_S", "CHECKS", "FAILS",
                                 "PFAILS", "CONNECTS", "ACTIVE", "IDLE", "REQUESTS", "REQ_FAILS"] and
       row and row[0][9:13] == ["1", "5", "180", "3"],
       "quicctl upstreams: ACTIVE, IDLE, REQUESTS, REQ_FAILS", out)
    old = ("group=a server=%s state=up since_ms=1 checks=0 failures=0 check=- address=- "
           "weight=1 max_conns=0 backup=0 last=-\n" % A)
    rc, out = quicctl_upstreams(a, old, "--json")
    try:
        s = json.loads(out)["servers"][0]
    except (ValueError, KeyError, IndexError) as e:
        s = {"error": repr(e), "out": out}
    ok(rc == 0 and [s.get(k) for k in ("active", "idle", "requests", "fails", "workers")] ==
       [0, 0, 0, 0, []], "an older daemon's line: 0 and []", s)


def closed(chan, timeout):
    """the peer closed |chan| within |timeout| (messages before the end are dropped)"""
    try:
        chan.wait(lambda m: False, timeout)
    except EOFError:
        return True
    return False


def log_count(d, text):
    try:
        with open(os.path.join(d, "upstream.log"), errors="replace") as f:
            return f.read().count(text)
    except OSError:
        return 0


def wait_log_count(d, text, n, timeout):
    """the log has |text| |n| times within |timeout| (and not more)"""
    end = time.monotonic() + timeout
    while time.monotonic() < end and log_count(d, text) < n:
        time.sleep(0.05)
    time.sleep(0.1)
    return log_count(d, text) == n


def wait_log(d, text, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(os.path.join(d, "upstream.log"), errors="replace") as f:
                if text in f.read():
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a harness error, not a failed check
        import traceback
        traceback.print_exc()
        print("ERROR: %r" % e, flush=True)
        sys.exit(99)
    sys.exit(1 if FAILED[0] else 0)
