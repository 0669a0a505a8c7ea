/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_chan - a non-blocking message channel with an output queue
 * SYNOPSIS
 *	qd_chan_open(), qd_chan_send(), qd_chan_queued(), qd_chan_close()
 * DESCRIPTION
 *	Reads up to CHAN_READ_BUDGET messages per readiness event (fairness
 *	with the other descriptors of the loop), writes what it can at once
 *	and queues the rest in order, watching for writability only while
 *	something is queued. The queue is bounded (QD_CHAN_MAX_QUEUE); small
 *	control messages that release state on the other side (credit, a
 *	cancel, the end of a body) have a reserve above that bound, so a
 *	queue full of data never makes them impossible.
 * DIAGNOSTICS
 *	Malformed input is logged (rate-limited) and dropped; end of file or
 *	an I/O error closes the channel and calls on_close.
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

typedef struct qd_chan_out {
    struct qd_chan_out *next;
    size_t len;
    size_t nfds;
    int fds[QD_IPC_MAX_FDS];
    uint8_t bytes[];
} qd_chan_out;

static qd_ipc_msg in_msg;
static uint8_t enc_buf[QD_IPC_MAX_MSG];

static void on_io(uv_poll_t *p, int status, int events);

/* drop_queue - free every queued message and its descriptors */
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
}

/* release - close the descriptor and free, or defer to the end of the callback */
static void release(qd_chan *ch)
{
    qd_uv_unwatch(&ch->poll);
    if (ch->fd >= 0) {
        close(ch->fd);
        ch->fd = -1;
    }
    drop_queue(ch);
    if (ch->busy > 0) {
        ch->closed = true;
        return;
    }
    free(ch);
}

/* set_events - watch for writability only while something is queued */
static void set_events(qd_chan *ch)
{
    if (ch->poll != NULL)
        uv_poll_start(ch->poll, UV_READABLE | UV_DISCONNECT | (ch->head ? UV_WRITABLE : 0), on_io);
}

qd_chan *qd_chan_open(uv_loop_t *loop, int fd, const char *name, qd_chan_msg_cb on_msg,
                      qd_chan_event_cb on_close, void *data)
{
    qd_chan *ch = qd_xcalloc(1, sizeof(*ch));
    int fl = fcntl(fd, F_GETFL);

    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    ch->fd = fd;
    ch->data = data;
    ch->on_msg = on_msg;
    ch->on_close = on_close;
    snprintf(ch->name, sizeof(ch->name), "%s", name);
    ch->poll = qd_uv_watch(loop, fd, UV_READABLE | UV_DISCONNECT, on_io, ch);
    return ch;
}

/* flush - send queued messages until the socket is full; 0 or QD_ERR_EOF/IO */
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
        ch->sent++;
        for (size_t i = 0; i < o->nfds; i++)
            close(o->fds[i]);
        free(o);
    }
    return 0;
}

/* fail - the peer is gone: close and tell the owner */
static void fail(qd_chan *ch)
{
    qd_chan_event_cb cb = ch->on_close;

    ch->busy++;
    qd_uv_unwatch(&ch->poll);
    if (ch->fd >= 0) {
        close(ch->fd);
        ch->fd = -1;
    }
    drop_queue(ch);
    if (cb != NULL)
        cb(ch);
    ch->busy--;
    release(ch);
}

/* chan_send - send |m| now or queue it while the queue stays within |limit| bytes */
static int chan_send(qd_chan *ch, const qd_ipc_msg *m, size_t limit)
{
    if (ch == NULL || ch->fd < 0 || ch->closed)
        return QD_ERR_EOF;
    int n = qd_ipc_encode(m, enc_buf, sizeof(enc_buf));
    if (n < 0)
        return n;
    if (ch->head == NULL) {
        int rv = qd_fdpass_send(ch->fd, enc_buf, (size_t)n, m->fds, m->fd_count);
        if (rv == 0) {
            ch->sent++;
            return 0;
        }
        if (rv != QD_ERR_AGAIN)
            return rv; /* the read side sees the EOF and closes the channel */
    }
    if (ch->queued_bytes + (size_t)n > limit) {
        ch->refused++;
        return QD_ERR_TOOBIG;
    }
    qd_chan_out *o = qd_xmalloc(sizeof(*o) + (size_t)n);
    o->next = NULL;
    o->len = (size_t)n;
    o->nfds = 0;
    memcpy(o->bytes, enc_buf, (size_t)n);
    for (size_t i = 0; i < m->fd_count; i++) {
        int d = fcntl(m->fds[i], F_DUPFD_CLOEXEC, 0);
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

int qd_chan_send(qd_chan *ch, const qd_ipc_msg *m)
{
    return chan_send(ch, m, QD_CHAN_MAX_QUEUE);
}

int qd_chan_send_ctl(qd_chan *ch, const qd_ipc_msg *m)
{
    if (m->len > QD_CHAN_CTL_MAX_BODY)
        return QD_ERR_TOOBIG;
    return chan_send(ch, m, QD_CHAN_MAX_QUEUE + QD_CHAN_CTL_RESERVE);
}

size_t qd_chan_queued(const qd_chan *ch)
{
    return ch ? ch->queued_bytes : 0;
}

void qd_chan_close(qd_chan *ch)
{
    if (ch == NULL || ch->closed)
        return;
    release(ch);
}

/* on_io - read a batch of messages, write what is queued */
static void on_io(uv_poll_t *p, int status, int events)
{
    static qd_log_limit lim;
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
    for (int i = 0; i < CHAN_READ_BUDGET && !ch->closed && (events & (UV_READABLE | UV_DISCONNECT));
         i++) {
        int rv = qd_ipc_recv(ch->fd, &in_msg);
        if (rv == QD_ERR_AGAIN)
            break;
        if (rv == QD_ERR_EOF || rv == QD_ERR_IO) {
            ch->busy--;
            fail(ch);
            return;
        }
        if (rv < 0) {
            ch->bad_messages++;
            qd_log_limited(&lim, QD_LOG_WARN, "dropped malformed message from %s: %s", ch->name,
                           qd_strerror(rv));
            continue;
        }
        ch->received++;
        ch->on_msg(ch, &in_msg);
        qd_ipc_msg_close_fds(&in_msg);
    }
    ch->busy--;
    if (ch->closed && ch->busy == 0)
        free(ch);
}
