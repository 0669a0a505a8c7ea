#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Test helper: take the CID-steering BPF program off the listener's socket
groups, so that the kernel hashes every packet by its 4-tuple and a
migrated connection can land on a worker that does not own it.

usage: detach_steering.py LISTENER_PID

Copies each of the listener's sockets with pidfd_getfd(2) (root, Linux
5.6+) and sets SO_DETACH_REUSEPORT_BPF on it. Prints how many groups it
changed; exit 0 when at least one.
"""
import ctypes
import os
import socket
import sys

SYS_PIDFD_GETFD = 438
SO_DETACH_REUSEPORT_BPF = 68

libc = ctypes.CDLL(None, use_errno=True)
pid = int(sys.argv[1])
pfd = os.pidfd_open(pid)
done = 0
for name in os.listdir(f"/proc/{pid}/fd"):
    try:
        if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
            continue
    except OSError:
        continue
    nfd = libc.syscall(SYS_PIDFD_GETFD, pfd, int(name), 0)
    if nfd < 0:
        continue
    s = socket.socket(fileno=nfd)
    try:
        if s.type == socket.SOCK_DGRAM and s.family in (socket.AF_INET, socket.AF_INET6):
            s.setsockopt(socket.SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, 0)
            done += 1
    except OSError:
        pass  # a group's program is gone after the first member
    finally:
        s.close()
print(f"detached the steering program via {done} sockets")
sys.exit(0 if done else 1)
