/* SPDX-License-Identifier: MIT */
#ifndef QD_SOCK_H
#define QD_SOCK_H

#include <stdint.h>

/*
 * qd_sock_buffer sets a socket's SO_RCVBUF or SO_SNDBUF (|opt|) to |size|
 * bytes, past the kernel's limits (SO_RCVBUFFORCE, SO_SNDBUFFORCE) when
 * the caller may, else as far as net.core.rmem_max/wmem_max allow.
 * Returns the usable size the kernel reports (half of what it counts, its
 * bookkeeping being the other half), or -1 if it cannot be read. A caller
 * that gets less than |size| says so.
 */
int64_t qd_sock_buffer(int fd, int opt, int64_t size);

#endif /* QD_SOCK_H */
