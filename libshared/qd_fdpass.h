/* SPDX-License-Identifier: MIT */
#ifndef QD_FDPASS_H
#define QD_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

/* Most descriptors one message may carry. */
#define QD_FDPASS_MAX 16

/*
 * qd_fdpass_send sends |len| bytes of |buf| as one message on |sock| with
 * |nfds| descriptors from |fds| as SCM_RIGHTS. The descriptors are borrowed:
 * the caller still owns (and usually closes) them afterwards. Never raises
 * SIGPIPE. Returns 0, QD_ERR_AGAIN when a non-blocking socket is full,
 * QD_ERR_EOF when the peer is gone, QD_ERR_FDS when |nfds| > QD_FDPASS_MAX,
 * or QD_ERR_IO (errno set).
 */
int qd_fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds);

/*
 * qd_fdpass_recv receives one message of at most |cap| bytes into |buf| and
 * up to |maxfds| descriptors into |fds| (opened close-on-exec); |*nfds| is
 * set to their count and |*len| to the byte count. The caller owns the
 * descriptors. A message that did not fit (bytes or descriptors) is dropped:
 * any descriptors that did arrive are closed and QD_ERR_TOOBIG or
 * QD_ERR_FDS is returned. Returns 0, QD_ERR_EOF on end of file,
 * QD_ERR_AGAIN, or QD_ERR_IO.
 */
int qd_fdpass_recv(int sock, void *buf, size_t cap, size_t *len, int *fds, size_t maxfds,
                   size_t *nfds);

#endif /* QD_FDPASS_H */
