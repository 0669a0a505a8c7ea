#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Drive Chromium through its DevTools pipe (--remote-debugging-pipe).

usage: cdp.py SECONDS CHROMIUM [ARGS...] -- STEP...

Starts CHROMIUM with ARGS and --remote-debugging-pipe (the DevTools
protocol as NUL-terminated JSON on file descriptors 3 and 4), opens one
tab and runs the steps in it, in order, all within SECONDS:

  nav URL      navigate the tab and wait for the load event of the
               document that navigation made (matched by its loader id,
               so a late load event of an earlier document, such as the
               tab's about:blank, does not count; a navigation within
               the document has none and is done at once); prints "nav:
               URL loaded" (or "nav: URL: ERROR" and stops)
  eval EXPR    evaluate a JavaScript expression in the page (a promise
               is awaited); prints "eval: " and the value as JSON
  sleep S      wait S seconds (real time: the connections age)

Then closes the browser (given up to 10 s to answer and 20 s to exit,
apart from SECONDS, so that it writes its files, such as a net log, on a
busy machine too).  One browser, so one session: its HTTP cache,
connections and Alt-Svc cache carry over from one step to the next.
Exit 0 when every step ran, 1 otherwise (timeout, a failed navigation,
the browser gone), 2 on a usage error.  No third-party module is needed.
"""

import fcntl
import json
import os
import select
import subprocess
import sys
import time


class Pipe:
    """The browser end of the DevTools pipe: calls, answers and events."""

    def __init__(self, rfd, wfd, deadline):
        self.rfd, self.wfd, self.deadline = rfd, wfd, deadline
        self.buf = b""
        self.last_id = 0
        self.events = []

    def send(self, method, params=None, session=None):
        self.last_id += 1
        msg = {"id": self.last_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.wfd, data):]
        return self.last_id

    def recv(self):
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("nothing from the browser in time")
            ready, _, _ = select.select([self.rfd], [], [], left)
            if ready:
                data = os.read(self.rfd, 1 << 16)
                if not data:
                    raise EOFError("the browser closed its pipe")
                self.buf += data
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None):
        mid = self.send(method, params, session)
        while True:
            msg = self.recv()
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method, session, match=None):
        """the first event METHOD of SESSION (whose params satisfy match)"""
        while True:
            for i, msg in enumerate(self.events):
                if msg.get("method") == method and msg.get("sessionId") == session and (
                        match is None or match(msg.get("params", {}))):
                    del self.events[i]
                    return msg
            msg = self.recv()
            if "method" in msg:
                self.events.append(msg)


def start(cmd):
    """the browser with the pipe on its descriptors 3 (ours to write) and 4"""
    low = os.pipe() + os.pipe()
    # move the ends above 10 first: making them 3 and 4 must not close another
    to_r, to_w, from_r, from_w = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in low]
    for fd in low:
        os.close(fd)
    os.dup2(to_r, 3)
    os.dup2(from_w, 4)
    proc = subprocess.Popen(cmd + ["--remote-debugging-pipe"], pass_fds=(3, 4),
                            stdin=subprocess.DEVNULL)
    for fd in (3, 4, to_r, from_w):
        os.close(fd)
    return proc, from_r, to_w


def run(pipe, steps):
    target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    sess = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    pipe.call("Page.enable", session=sess)
    # lifecycle events name their document (loaderId): Page.loadEventFired
    # does not, and the tab's about:blank may fire its own late
    pipe.call("Page.setLifecycleEventsEnabled", {"enabled": True}, sess)
    for op, arg in steps:
        if op == "nav":
            pipe.events = [e for e in pipe.events
                           if e.get("method") not in ("Page.loadEventFired", "Page.lifecycleEvent")]
            res = pipe.call("Page.navigate", {"url": arg}, sess)
            if res.get("errorText"):
                print("nav: %s: %s" % (arg, res["errorText"]), flush=True)
                return 1
            # no loaderId: a navigation within the document, done (no load event)
            loader, frame = res.get("loaderId"), res.get("frameId")
            if loader:
                pipe.wait_event("Page.lifecycleEvent", sess,
                                lambda p: p.get("name") == "load" and p.get("loaderId") == loader
                                and p.get("frameId") == frame)
            print("nav: %s loaded" % arg, flush=True)
        elif op == "eval":
            res = pipe.call("Runtime.evaluate", {"expression": arg, "returnByValue": True,
                                                 "awaitPromise": True}, sess)
            if "exceptionDetails" in res:
                print("eval: exception %s" % json.dumps(res["exceptionDetails"].get("text")),
                      flush=True)
                return 1
            print("eval: %s" % json.dumps(res.get("result", {}).get("value")), flush=True)
        elif op == "sleep":
            time.sleep(max(0.0, min(float(arg), pipe.deadline - time.monotonic())))
    return 0


def main(argv):
    if "--" not in argv or len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    sep = argv.index("--")
    secs, cmd, rest = float(argv[0]), argv[1:sep], argv[sep + 1:]
    if not 0 < secs <= 600 or len(rest) % 2 or not cmd:
        print("cdp: SECONDS in (0, 600], a browser and STEP ARG pairs", file=sys.stderr)
        return 2
    steps = list(zip(rest[0::2], rest[1::2]))
    for op, _ in steps:
        if op not in ("nav", "eval", "sleep"):
            print("cdp: unknown step %s" % op, file=sys.stderr)
            return 2
    deadline = time.monotonic() + secs
    proc, rfd, wfd = start(cmd)
    pipe = Pipe(rfd, wfd, deadline)
    try:
        rc = run(pipe, steps)
    except (TimeoutError, EOFError, RuntimeError, OSError, ValueError) as e:
        print("cdp: %s" % e, flush=True)
        rc = 1
    try:
        pipe.deadline = time.monotonic() + 10
        pipe.call("Browser.close")
    except (TimeoutError, EOFError, RuntimeError, OSError, ValueError):
        pass
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
