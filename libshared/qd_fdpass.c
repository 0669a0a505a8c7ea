/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_fdpass - send and receive descriptors with SCM_RIGHTS
 * SYNOPSIS
 *	qd_fdpass_send(), qd_fdpass_recv()
 * DESCRIPTION
 *	The only place that builds control messages for descriptor passing.
 *	Received descriptors are always close-on-exec (MSG_CMSG_CLOEXEC), and
 *	a message cut short (MSG_TRUNC, MSG_CTRUNC) never leaks the
 *	descriptors that did arrive.
 * DIAGNOSTICS
 *	Returns QD_ERR_* codes; logs nothing.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_fdpass.h"

int qd_fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
    union {
        struct cmsghdr hdr;
        char space[CMSG_SPACE(sizeof(int) * QD_FDPASS_MAX)];
    } cm;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;

    if (nfds > QD_FDPASS_MAX)
        return QD_ERR_FDS;
    if (nfds > 0) {
        memset(&cm, 0, sizeof(cm));
        msg.msg_control = cm.space;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return QD_ERR_AGAIN;
        if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN ||
            errno == ECONNREFUSED)
            return QD_ERR_EOF;
        return QD_ERR_IO;
    }
    if ((size_t)n != len) {
        errno = EMSGSIZE;
        return QD_ERR_IO;
    }
    return 0;
}

int qd_fdpass_recv(int sock, void *buf, size_t cap, size_t *len, int *fds, size_t maxfds,
                   size_t *nfds)
{
    union {
        struct cmsghdr hdr;
        char space[CMSG_SPACE(sizeof(int) * QD_FDPASS_MAX)];
    } cm;
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;
    size_t got = 0;

    if (maxfds > QD_FDPASS_MAX)
        maxfds = QD_FDPASS_MAX;
    msg.msg_control = cm.space;
    msg.msg_controllen = sizeof(cm.space);
    *nfds = 0;
    *len = 0;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return QD_ERR_AGAIN;
        if (errno == ECONNRESET)
            return QD_ERR_EOF;
        return QD_ERR_IO;
    }
    /* Collect every descriptor that arrived, so none can leak. */
    int tmp[QD_FDPASS_MAX * 2];
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && got < sizeof(tmp) / sizeof(tmp[0]); i++)
            memcpy(&tmp[got++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    if (n == 0 && got == 0) /* we never send empty messages: this is end of file */
        return QD_ERR_EOF;
    if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || got > maxfds) {
        for (size_t i = 0; i < got; i++)
            close(tmp[i]);
        return (msg.msg_flags & MSG_TRUNC) ? QD_ERR_TOOBIG : QD_ERR_FDS;
    }
    memcpy(fds, tmp, got * sizeof(int));
    *nfds = got;
    *len = (size_t)n;
    return 0;
}
