/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_chan - the message channel every daemon uses, with an output queue
 *	and a record per loop iteration
 * SYNOPSIS
 *	qd_chan_open(), qd_chan_open_dgram(), qd_chan_msg(), qd_chan_queue(),
 *	qd_chan_queue_ctl(), qd_chan_send(), qd_chan_send_ctl(),
 *	qd_chan_flush(), qd_chan_flush_all(), qd_chan_queued(), qd_chan_close()
 * DESCRIPTION
 *	Messages queued on a channel are encoded into the record it is
 *	filling; a check handle of the loop sends every channel's record
 *	once per iteration, after its I/O callbacks, and an idle handle keeps
 *	the loop from sleeping while a record waits (a timer's messages are
 *	not held until the next event). A message with descriptors ends its
 *	record and is sent at once, so descriptors never wait in a record. A
 *	record the socket cannot take goes to the queue (SEQPACKET, with
 *	duplicates of its descriptors; written when the socket is writable)
 *	or is dropped and counted (DGRAM). The queue is bounded
 *	(QD_CHAN_MAX_QUEUE); small control messages that release state on the
 *	other side (credit, a cancel, the end of a body) have a reserve above
 *	that bound, so a queue full of data never makes them impossible.
 *	Reads take up to CHAN_READ_BUDGET records per readiness event
 *	(fairness with the other descriptors of the loop).
 * DIAGNOSTICS
 *	Malformed input is logged (rate-limited) and dropped; end of file or
 *	an I/O error closes a SEQPACKET channel and calls on_close.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_chan.h"
#include "qd_err.h"
#include "qd_fdpass.h"
#include "qd_log.h"
#include "qd_uv.h"

#define CHAN_READ_BUDGET 64

/* A sealed record waiting for the socket. */
typedef struct qd_chan_out {
    struct qd_chan_out *next;
    size_t len;
    size_t nmsgs;
    size_t nfds;
    int fds[QD_IPC_MAX_FDS];
    uint8_t bytes[];
} qd_chan_out;

/* The record being filled; its descriptors are borrowed (it is sent at once). */
typedef struct qd_chan_rec {
    size_t len;
    size_t nmsgs;
    size_t nfds;
    int fds[QD_IPC_MAX_FDS];
    uint8_t bytes[QD_IPC_MAX_MSG];
} qd_chan_rec;

/* One per loop: the channels with a record to send at the end of the iteration. */
typedef struct qd_chan_loop {
    uv_loop_t *loop;
    uv_check_t check;
    uv_idle_t idle;
    bool idle_on;
    qd_chan *dirty;
    struct qd_chan_loop *next;
} qd_chan_loop;

static qd_chan_loop *loops;

static void on_io(uv_poll_t *p, int status, int events);

/* ---- the once-per-iteration flush ---- */

static void flush_loop(qd_chan_loop *cl);

static void on_check(uv_check_t *h)
{
    flush_loop(h->data);
}

static void on_idle(uv_idle_t *h)
{
    (void)h; /* only keeps the loop's poll from sleeping; on_check sends */
}

/* loop_of - the flusher of |loop|, made on first use */
static qd_chan_loop *loop_of(uv_loop_t *loop)
{
    qd_chan_loop *cl;

    for (cl = loops; cl != NULL; cl = cl->next)
        if (cl->loop == loop)
            return cl;
    if (loops == NULL)
        atexit(qd_chan_flush_all);
    cl = qd_xcalloc(1, sizeof(*cl));
    cl->loop = loop;
    uv_check_init(loop, &cl->check);
    cl->check.data = cl;
    uv_check_start(&cl->check, on_check);
    uv_unref((uv_handle_t *)&cl->check); /* never keeps the loop alive */
    uv_idle_init(loop, &cl->idle);
    cl->idle.data = cl;
    uv_unref((uv_handle_t *)&cl->idle);
    cl->next = loops;
    loops = cl;
    return cl;
}

static void mark_dirty(qd_chan *ch)
{
    qd_chan_loop *cl = ch->cl;

    if (!ch->dirty) {
        ch->dirty = true;
        ch->next_dirty = cl->dirty;
        cl->dirty = ch;
    }
    if (!cl->idle_on) {
        uv_idle_start(&cl->idle, on_idle);
        cl->idle_on = true;
    }
}

static void unmark_dirty(qd_chan *ch)
{
    if (!ch->dirty)
        return;
    for (qd_chan **pp = &ch->cl->dirty; *pp != NULL; pp = &(*pp)->next_dirty)
        if (*pp == ch) {
            *pp = ch->next_dirty;
            break;
        }
    ch->dirty = false;
    ch->next_dirty = NULL;
}

/* ---- records and the queue ---- */

/* drop_queue - free every queued record and its descriptors, and the one being filled */
static void drop_queue(qd_chan *ch)
{
    qd_chan_out *o = ch->head;

    while (o != NULL) {
        qd_chan_out *next = o->next;
        for (size_t i = 0; i < o->nfds; i++)
            close(o->fds[i]);
        free(o);
        o = next;
    }
    ch->head = ch->tail = NULL;
    ch->queued_bytes = 0;
    if (ch->rec != NULL)
        ch->rec->len = ch->rec->nmsgs = ch->rec->nfds = 0;
    unmark_dirty(ch);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

/* stop_rest - no more resting: the timer goes */
static void stop_rest(qd_chan *ch)
{
    if (ch->rest_timer != NULL) {
        uv_close((uv_handle_t *)ch->rest_timer, on_timer_closed);
        ch->rest_timer = NULL;
    }
}

/* shut - stop watching, close the descriptor, drop what waits to be sent */
static void shut(qd_chan *ch)
{
    stop_rest(ch);
    qd_uv_unwatch(&ch->poll);
    if (ch->fd >= 0) {
        close(ch->fd);
        ch->fd = -1;
    }
    drop_queue(ch);
}

/* release - close the descriptor and free, or defer to the end of the callback */
static void release(qd_chan *ch)
{
    shut(ch);
    if (ch->busy > 0) {
        ch->closed = true;
        return;
    }
    free(ch->rec);
    free(ch->compose);
    free(ch);
}

/* set_events - watch for writability only while something is queued */
static void set_events(qd_chan *ch)
{
    bool resting = ch->rest_timer != NULL && uv_is_active((uv_handle_t *)ch->rest_timer);
    int ev = (ch->on_msg != NULL && !resting ? UV_READABLE | UV_DISCONNECT : 0) |
             (ch->head != NULL ? UV_WRITABLE : 0);

    if (ch->poll != NULL)
        uv_poll_start(ch->poll, ev, on_io);
}

static qd_chan *chan_open(uv_loop_t *loop, int fd, const char *name, qd_chan_msg_cb on_msg,
                          qd_chan_event_cb on_close, void *data, bool dgram)
{
    qd_chan *ch = qd_xcalloc(1, sizeof(*ch));
    int fl = fcntl(fd, F_GETFL);

    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    ch->fd = fd;
    ch->data = data;
    ch->on_msg = on_msg;
    ch->on_close = on_close;
    ch->dgram = dgram;
    ch->cl = loop_of(loop);
    snprintf(ch->name, sizeof(ch->name), "%s", name);
    if (on_msg != NULL || !dgram) /* a lossy end that only writes needs no watcher */
        ch->poll = qd_uv_watch(loop, fd, on_msg ? UV_READABLE | UV_DISCONNECT : 0, on_io, ch);
    return ch;
}

qd_chan *qd_chan_open(uv_loop_t *loop, int fd, const char *name, qd_chan_msg_cb on_msg,
                      qd_chan_event_cb on_close, void *data)
{
    return chan_open(loop, fd, name, on_msg, on_close, data, false);
}

qd_chan *qd_chan_open_dgram(uv_loop_t *loop, int fd, const char *name, qd_chan_msg_cb on_msg,
                            void *data)
{
    return chan_open(loop, fd, name, on_msg, NULL, data, true);
}

/* flush - send queued records until the socket is full; 0 or QD_ERR_EOF/IO */
static int flush(qd_chan *ch)
{
    while (ch->head != NULL) {
        qd_chan_out *o = ch->head;
        int rv = qd_fdpass_send(ch->fd, o->bytes, o->len, o->fds, o->nfds);
        if (rv == QD_ERR_AGAIN)
            return 0;
        if (rv < 0)
            return rv;
        ch->head = o->next;
        if (ch->head == NULL)
            ch->tail = NULL;
        ch->queued_bytes -= o->len;
        ch->sent += o->nmsgs;
        ch->records++;
        for (size_t i = 0; i < o->nfds; i++)
            close(o->fds[i]);
        free(o);
    }
    return 0;
}

/* enqueue - keep the record being filled (its descriptors duplicated) until the socket takes it */
static int enqueue(qd_chan *ch)
{
    qd_chan_rec *r = ch->rec;
    qd_chan_out *o = qd_xmalloc(sizeof(*o) + r->len);

    o->next = NULL;
    o->len = r->len;
    o->nmsgs = r->nmsgs;
    o->nfds = 0;
    memcpy(o->bytes, r->bytes, r->len);
    for (size_t i = 0; i < r->nfds; i++) {
        int d = fcntl(r->fds[i], F_DUPFD_CLOEXEC, 0);
        if (d < 0) {
            for (size_t k = 0; k < o->nfds; k++)
                close(o->fds[k]);
            free(o);
            return QD_ERR_IO;
        }
        o->fds[o->nfds++] = d;
    }
    if (ch->tail)
        ch->tail->next = o;
    else
        ch->head = o;
    ch->tail = o;
    ch->queued_bytes += o->len;
    set_events(ch);
    return 0;
}

/*
 * seal - send the record being filled, or queue it (SEQPACKET) or drop it
 * (DGRAM) when the socket cannot take it now; the record is empty after.
 * Returns 0 or the send error (the read side sees an EOF and closes).
 */
static int seal(qd_chan *ch)
{
    qd_chan_rec *r = ch->rec;
    int rv = 0;

    unmark_dirty(ch);
    if (r == NULL || r->nmsgs == 0 || ch->fd < 0)
        return 0;
    if (ch->head == NULL) {
        rv = qd_fdpass_send(ch->fd, r->bytes, r->len, r->fds, r->nfds);
        if (rv == 0) {
            ch->sent += r->nmsgs;
            ch->records++;
        }
    } else {
        rv = QD_ERR_AGAIN;
    }
    if (rv != 0 && ch->dgram) {
        ch->dropped += r->nmsgs; /* lossy by design: the sender never waits */
        rv = 0;
    } else if (rv == QD_ERR_AGAIN) {
        rv = enqueue(ch);
    }
    r->len = r->nmsgs = r->nfds = 0;
    return rv;
}

static void flush_loop(qd_chan_loop *cl)
{
    qd_chan *ch;

    while ((ch = cl->dirty) != NULL)
        seal(ch); /* takes ch off the list */
    if (cl->idle_on) {
        uv_idle_stop(&cl->idle);
        cl->idle_on = false;
    }
}

/* chan_queue - encode |m| into the record, within |limit| bytes of queue */
static int chan_queue(qd_chan *ch, const qd_ipc_msg *m, size_t limit)
{
    if (ch == NULL || ch->fd < 0 || ch->closed)
        return QD_ERR_EOF;
    size_t need = QD_IPC_HDR_LEN + m->len;
    if (m->len > QD_IPC_MAX_BODY)
        return QD_ERR_TOOBIG;
    if (!ch->dgram && qd_chan_queued(ch) + need > limit) {
        ch->refused++;
        return QD_ERR_TOOBIG;
    }
    if (ch->rec == NULL) {
        ch->rec = qd_xmalloc(sizeof(*ch->rec));
        ch->rec->len = ch->rec->nmsgs = ch->rec->nfds = 0;
    }
    qd_chan_rec *r = ch->rec;
    if (r->nmsgs > 0 && r->len + need > sizeof(r->bytes)) {
        int rv = seal(ch);
        if (rv < 0)
            return rv;
    }
    int n = qd_ipc_encode(m, r->bytes + r->len, sizeof(r->bytes) - r->len);
    if (n < 0)
        return n;
    r->len += (size_t)n;
    r->nmsgs++;
    if (m->fd_count > 0 || ch->single) {
        memcpy(r->fds, m->fds, m->fd_count * sizeof(int));
        r->nfds = m->fd_count;
        return seal(ch);
    }
    mark_dirty(ch);
    return 0;
}

qd_ipc_msg *qd_chan_msg(qd_chan *ch, uint16_t type, uint32_t id)
{
    if (ch->compose == NULL)
        ch->compose = qd_xmalloc(sizeof(*ch->compose));
    qd_ipc_msg_init(ch->compose, type, id);
    return ch->compose;
}

int qd_chan_queue(qd_chan *ch)
{
    return chan_queue(ch, ch->compose, QD_CHAN_MAX_QUEUE);
}

int qd_chan_queue_ctl(qd_chan *ch)
{
    return qd_chan_send_ctl(ch, ch->compose);
}

int qd_chan_send(qd_chan *ch, const qd_ipc_msg *m)
{
    return chan_queue(ch, m, QD_CHAN_MAX_QUEUE);
}

int qd_chan_send_ctl(qd_chan *ch, const qd_ipc_msg *m)
{
    if (m->len > QD_CHAN_CTL_MAX_BODY)
        return QD_ERR_TOOBIG;
    return chan_queue(ch, m, QD_CHAN_MAX_QUEUE + QD_CHAN_CTL_RESERVE);
}

void qd_chan_flush(qd_chan *ch)
{
    if (ch != NULL && !ch->closed)
        seal(ch);
}

void qd_chan_flush_all(void)
{
    for (qd_chan_loop *cl = loops; cl != NULL; cl = cl->next)
        flush_loop(cl);
}

size_t qd_chan_queued(const qd_chan *ch)
{
    if (ch == NULL)
        return 0;
    return ch->queued_bytes + (ch->rec ? ch->rec->len : 0);
}

void qd_chan_close(qd_chan *ch)
{
    if (ch == NULL || ch->closed)
        return;
    if (ch->head == NULL)
        seal(ch); /* what this iteration queued leaves if the socket takes it */
    release(ch);
}

/* ---- reading ---- */

/* fail - the peer is gone: close and tell the owner */
static void fail(qd_chan *ch)
{
    qd_chan_event_cb cb = ch->on_close;

    ch->busy++;
    shut(ch);
    if (cb != NULL)
        cb(ch);
    ch->busy--;
    release(ch);
}

static void bad(qd_chan *ch, int rv)
{
    static qd_log_limit lim;

    ch->bad_messages++;
    qd_log_limited(&lim, QD_LOG_WARN, "dropped malformed message from %s: %s", ch->name,
                   qd_strerror(rv));
}

/* deliver - split a record into its messages and hand each to on_msg */
static void deliver(qd_chan *ch, const uint8_t *buf, size_t len, int *fds, size_t nfds)
{
    static qd_ipc_msg in_msg; /* one message at a time, within this call */
    bool fds_given = false;
    size_t off = 0;

    if (len == 0)
        bad(ch, QD_ERR_TRUNC); /* an empty datagram */
    while (off < len && !ch->closed) {
        int fl = qd_ipc_frame(buf + off, len - off);
        if (fl < 0) {
            bad(ch, fl); /* no boundary after this one can be trusted */
            break;
        }
        bool last = off + (size_t)fl == len;
        int rv = qd_ipc_decode(&in_msg, buf + off, (size_t)fl, last ? nfds : 0);
        off += (size_t)fl;
        if (rv < 0) {
            bad(ch, rv);
            continue;
        }
        if (last) {
            memcpy(in_msg.fds, fds, nfds * sizeof(int));
            in_msg.fd_count = (uint32_t)nfds;
            fds_given = true;
        }
        ch->received++;
        ch->on_msg(ch, &in_msg);
        qd_ipc_msg_close_fds(&in_msg);
    }
    if (!fds_given)
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
}

static void on_rested(uv_timer_t *t)
{
    qd_chan *ch = t->data;

    set_events(ch);
    qd_chan_read_now(ch);
}

/* rest - stop reading for rest_ms: what arrives meanwhile is read in one go */
static void rest(qd_chan *ch)
{
    if (ch->rest_timer == NULL) {
        ch->rest_timer = qd_xmalloc(sizeof(*ch->rest_timer));
        uv_timer_init(ch->cl->loop, ch->rest_timer);
        ch->rest_timer->data = ch;
    }
    uv_timer_start(ch->rest_timer, on_rested, ch->rest_ms, 0);
    set_events(ch);
}

void qd_chan_read_now(qd_chan *ch)
{
    if (ch != NULL && ch->poll != NULL && !ch->closed)
        on_io(ch->poll, 0, UV_READABLE);
}

/* on_io - read a batch of records, write what is queued */
static void on_io(uv_poll_t *p, int status, int events)
{
    static uint8_t buf[QD_IPC_MAX_MSG]; /* one record at a time, within this call */
    qd_chan *ch = p->data;

    if (status < 0 && status != UV_EBADF) {
        fail(ch);
        return;
    }
    ch->busy++;
    if (events & UV_WRITABLE) {
        bool had = ch->head != NULL;
        if (flush(ch) < 0) {
            ch->busy--;
            fail(ch);
            return;
        }
        if (had && ch->head == NULL) {
            set_events(ch);
            if (ch->on_drain)
                ch->on_drain(ch);
        }
    }
    unsigned budget = ch->read_budget ? ch->read_budget : CHAN_READ_BUDGET, got = 0;
    for (unsigned i = 0; i < budget && !ch->closed && ch->on_msg != NULL &&
                         (events & (UV_READABLE | UV_DISCONNECT));
         i++) {
        int fds[QD_IPC_MAX_FDS];
        size_t len = 0, nfds = 0;
        int rv = qd_fdpass_recv(ch->fd, buf, sizeof(buf), &len, fds, QD_IPC_MAX_FDS, &nfds);
        if (rv == QD_ERR_AGAIN)
            break;
        if (rv == QD_ERR_EOF && ch->dgram) {
            deliver(ch, buf, 0, fds, 0); /* an empty datagram, not an end */
            continue;
        }
        if (rv == QD_ERR_EOF || rv == QD_ERR_IO) {
            ch->busy--;
            fail(ch);
            return;
        }
        if (rv < 0) {
            bad(ch, rv); /* too long, or too many descriptors: qd_fdpass_recv closed them */
            continue;
        }
        deliver(ch, buf, len, fds, nfds);
        got++;
    }
    if (ch->rest_ms > 0 && got > 0 && got < budget && !ch->closed)
        rest(ch);
    ch->busy--;
    if (ch->closed && ch->busy == 0) {
        free(ch->rec);
        free(ch->compose);
        free(ch);
    }
}
