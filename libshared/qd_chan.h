/* SPDX-License-Identifier: MIT */
#ifndef QD_CHAN_H
#define QD_CHAN_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "qd_ipc.h"

/*
 * A peer channel (a SOCK_SEQPACKET socketpair end, or a SOCK_DGRAM one) on
 * a libuv loop: the one way every daemon reads and writes its channels.
 *
 * Writing: a message is composed in the channel (qd_chan_msg, the
 * qd_ipc_put_* composers, qd_chan_queue) or handed over whole
 * (qd_chan_send), and goes into the record the channel is filling. The
 * records of every channel are sent once per loop iteration (after the
 * iteration's I/O callbacks; timers' messages do not wait for the next
 * event), so the messages one iteration queued leave in one sendmsg and
 * wake the peer once. A message with descriptors ends its record and
 * leaves at once. Sending never blocks: what a SEQPACKET socket cannot
 * take now is kept (with duplicates of its descriptors) and sent when it
 * becomes writable; a DGRAM channel is lossy by design: a record its
 * socket cannot take is dropped and its messages counted in |dropped|.
 *
 * Reading: each record is split into its messages, each decoded and
 * handed to on_msg; a malformed one is logged (rate-limited), counted and
 * dropped (and with it the rest of its record when its length is wrong,
 * so no boundary after it can be trusted).
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
    uint64_t sent, received; /* messages */
    uint64_t records;        /* records sent (sendmsg calls that succeeded) */
    uint64_t refused; /* messages refused because the queue was full */
    uint64_t dropped; /* DGRAM: messages lost with a record the socket could not take */
    /* reading, set after qd_chan_open (0: the defaults) */
    unsigned read_budget; /* records read per readiness event (default 64) */
    unsigned rest_ms;     /* after an event that found records, rest this long before reading
                             again (a reader that prefers batches to wakeups) */
    /* private */
    uv_poll_t *poll;
    struct qd_chan_out *head, *tail; /* sealed records the socket could not take yet */
    size_t queued_bytes;
    struct qd_chan_rec *rec;  /* the record being filled (NULL: none yet) */
    qd_ipc_msg *compose;      /* qd_chan_msg's message (allocated on first use) */
    struct qd_chan_loop *cl;  /* the loop's once-per-iteration flusher */
    struct qd_chan *next_dirty;
    uv_timer_t *rest_timer;
    bool dirty;     /* on cl's list of channels with a record to send */
    bool dgram;
    bool single;    /* one message per record (a peer of another release) */
    int busy;       /* inside a callback */
    bool closed;    /* closed while busy: freed when the callback returns */
};

/*
 * qd_chan_open watches |fd| (taken over; made non-blocking) and returns the
 * channel. |name| is used in log lines. qd_chan_open_dgram does the same
 * for a SOCK_DGRAM socket (lossy writes; |on_msg| may be NULL for an end
 * that only writes).
 */
qd_chan *qd_chan_open(uv_loop_t *loop, int fd, const char *name, qd_chan_msg_cb on_msg,
                      qd_chan_event_cb on_close, void *data);
qd_chan *qd_chan_open_dgram(uv_loop_t *loop, int fd, const char *name, qd_chan_msg_cb on_msg,
                            void *data);

/*
 * qd_chan_msg starts the channel's next message (|type|, request |id|, no
 * fields, no descriptors) and returns it to be filled with the
 * qd_ipc_put_* composers; qd_chan_queue then queues it. One message is
 * composed at a time per channel: nothing in between may start another on
 * the same channel, and one not queued is abandoned by the next
 * qd_chan_msg. qd_chan_queue_ctl queues it as qd_chan_send_ctl does.
 * Both return as qd_chan_send.
 */
qd_ipc_msg *qd_chan_msg(qd_chan *ch, uint16_t type, uint32_t id);
int qd_chan_queue(qd_chan *ch);
int qd_chan_queue_ctl(qd_chan *ch);

/*
 * qd_chan_send queues |m|, composed elsewhere (a message sent to several
 * channels, or passed on). Descriptors are borrowed. Returns 0,
 * QD_ERR_EOF when the channel is closed, or QD_ERR_TOOBIG when the queue
 * already holds QD_CHAN_MAX_QUEUE bytes (the message is not sent).
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

/*
 * qd_chan_flush sends the record being filled now instead of at the end of
 * the loop iteration (before a blocking step or an exit of the caller's
 * own). qd_chan_flush_all does it for every channel of the process; it
 * also runs at exit().
 */
void qd_chan_flush(qd_chan *ch);
void qd_chan_flush_all(void);

/* qd_chan_read_now reads what is waiting now, resting or not (before an exit). */
void qd_chan_read_now(qd_chan *ch);

/* qd_chan_queued returns the bytes waiting to be sent. */
size_t qd_chan_queued(const qd_chan *ch);

/*
 * qd_chan_close sends the record being filled if the socket takes it,
 * stops watching, closes the descriptor, drops what is still queued and
 * frees the channel (later, if called from one of its callbacks).
 * NULL-safe. on_close is not called.
 */
void qd_chan_close(qd_chan *ch);

#endif /* QD_CHAN_H */
