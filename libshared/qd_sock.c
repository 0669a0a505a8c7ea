/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_sock - socket options more than one daemon sets
 * SYNOPSIS
 *	qd_sock_buffer()
 * DESCRIPTION
 *	Buffer sizes: the listener's UDP sockets (udp_buffer) and the
 *	master's stats channel (stats_buffer).
 * DIAGNOSTICS
 *	Logs nothing; the caller knows which key to name.
 */
#include "config.h"

/* system */
#include <sys/socket.h>

/* libshared */
#include "qd_sock.h"

int64_t qd_sock_buffer(int fd, int opt, int64_t size)
{
    int force = opt == SO_RCVBUF ? SO_RCVBUFFORCE : SO_SNDBUFFORCE;
    int v = size > INT32_MAX ? INT32_MAX : (int)size, got = 0;
    socklen_t len = sizeof(got);

    if (setsockopt(fd, SOL_SOCKET, force, &v, sizeof(v)) < 0)
        setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
    if (getsockopt(fd, SOL_SOCKET, opt, &got, &len) < 0)
        return -1;
    return got / 2;
}
