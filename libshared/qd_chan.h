/* SPDX-License-Identifier: MIT */
#ifndef QD_CHAN_H
#define QD_CHAN_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "qd_ipc.h"

/*
 * A peer channel (SOCK_SEQPACKET socketpair end) on a libuv loop, with an
 * output queue: qd_chan_send never blocks; what the socket cannot take now
 * is kept (with duplicates of its descriptors) and sent when it becomes
 * writable. Incoming messages are decoded and handed to a callback; a
 * malformed one is logged (rate-limited), counted and dropped.
 */

typedef struct qd_chan qd_chan;

/*
 * on_msg gets each decoded message; it may take descriptors with
 * qd_ipc_msg_take_fd, the rest are closed after it returns. |m| is valid
 * only during the call. It may call qd_chan_close(ch).
 */
typedef void (*qd_chan_msg_cb)(qd_chan *ch, qd_ipc_msg *m);
/* on_event: the peer closed the channel (on_close) or the queue drained. */
typedef void (*qd_chan_event_cb)(qd_chan *ch);

struct qd_chan {
    int fd;
    void *data;     /* the owner's */
    char name[32];  /* for log lines: "app", "worker[1]" */
    qd_chan_msg_cb on_msg;
    qd_chan_event_cb on_close; /* the channel is already closed when this runs */
    qd_chan_event_cb on_drain; /* optional: the output queue became empty */
    uint64_t bad_messages;
    uint64_t sent, received;
    uint64_t refused; /* messages refused because the queue was full */
    /* private */
    uv_poll_t *poll;
    struct qd_chan_out *head, *tail;
    size_t queued_bytes;
    int busy;     /* inside a callback */
    bool closed;  /* closed while busy: freed when the callback returns */
};

/*
 * qd_chan_open watches |fd| (taken over; made non-blocking) and returns the
 * channel. |name| is used in log lines.
 */
qd_chan *qd_chan_open(uv_loop_t *loop, int fd, const char *name, qd_chan_msg_cb on_msg,
                      qd_chan_event_cb on_close, void *data);

/*
 * qd_chan_send sends |m| or queues it. Descriptors are borrowed (queued
 * messages hold duplicates). Returns 0, QD_ERR_EOF when the channel is
 * closed, or QD_ERR_TOOBIG when the queue already holds QD_CHAN_MAX_QUEUE
 * bytes (the message is not sent).
 */
#define QD_CHAN_MAX_QUEUE (16 * 1024 * 1024)
int qd_chan_send(qd_chan *ch, const qd_ipc_msg *m);

/*
 * qd_chan_send_ctl sends a small control message (a body of at most
 * QD_CHAN_CTL_MAX_BODY bytes: credit, a cancel, the end of a body) that
 * frees or unblocks state at the peer. It may use QD_CHAN_CTL_RESERVE bytes
 * beyond QD_CHAN_MAX_QUEUE, so data filling the queue cannot crowd it out.
 * Returns as qd_chan_send, and QD_ERR_TOOBIG for a larger body.
 */
#define QD_CHAN_CTL_MAX_BODY 256
#define QD_CHAN_CTL_RESERVE (1024 * 1024)
int qd_chan_send_ctl(qd_chan *ch, const qd_ipc_msg *m);

/* qd_chan_queued returns the bytes waiting in the output queue. */
size_t qd_chan_queued(const qd_chan *ch);

/*
 * qd_chan_close stops watching, closes the descriptor, drops the queue and
 * frees the channel (later, if called from one of its callbacks). NULL-safe.
 * on_close is not called.
 */
void qd_chan_close(qd_chan *ch);

#endif /* QD_CHAN_H */
