/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	app_resp - response heads and bodies towards a worker
 * SYNOPSIS
 *	app_resp_start(), app_resp_header(), app_resp_send_head(),
 *	app_resp_write(), app_resp_error(), app_resp_pump()
 * DESCRIPTION
 *	A handler builds its response head in the request (fields as u16
 *	length + name NUL value in r->resp) and sends it once; the head goes
 *	out as QD_MSG_RESP_HEAD, with the file's descriptor when the body is
 *	a file. A head the channel cannot take waits in the request, with a
 *	duplicate of the descriptor, on the blocked list until the channel
 *	drains (app_req_drained). Bodies that are not files go out as
 *	QD_MSG_RESP_BODY chunks within QD_RESP_WINDOW per request and while
 *	the channel holds less than APP_CHAN_SOFT_LIMIT.
 *
 *	Ownership: the request owns its head and its output buffer; a
 *	descriptor given to app_resp_send_head stays the caller's.
 * DIAGNOSTICS
 *	A message the channel refuses for good (it is failing) is logged and
 *	counted in send_failures, and the request is done.
 */
#include "config.h"

/* system */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_log.h"

/* local */
#include "app.h"

#define HEAD_RESERVE 64 /* room kept in a head for flags, offset, length */

/* Outgoing messages: each is filled and sent within one function call. */

static int send_head(app_req *r);

/* app_resp_pump - send body chunks while the window, the channel and the data allow */
void app_resp_pump(app_req *r)
{
    app_worker *w = r->w;

    if (r->is_head_sent && !r->is_head_queued && !r->is_resp_done && send_head(r) < 0)
        return; /* still waiting for room, or the channel is gone */
    while (r->is_head_queued && !r->is_resp_done) {
        size_t avail = r->out_len - r->out_off;
        size_t n = QD_RESP_WINDOW - r->unacked;
        if (n > QD_IPC_MAX_CHUNK)
            n = QD_IPC_MAX_CHUNK;
        if (n > avail)
            n = avail;
        bool is_end = r->is_out_end && n == avail;
        if (n == 0 && !is_end)
            break; /* nothing to send yet, or the window is shut until credit */
        if (qd_chan_queued(w->ch) > APP_CHAN_SOFT_LIMIT) {
            app_req_queue(r, APP_Q_BLOCKED);
            break;
        }
        qd_ipc_msg *m = qd_chan_msg(w->ch, QD_MSG_RESP_BODY, 0);
        qd_ipc_put_u64(m, QD_F_STREAM, r->stream);
        qd_ipc_put_bytes(m, QD_F_BODY, r->out + r->out_off, n);
        qd_ipc_put_u32(m, QD_F_FLAGS, is_end ? QD_RESP_F_END : 0);
        int rv = qd_chan_queue(w->ch);
        if (rv == QD_ERR_TOOBIG) {
            app_req_queue(r, APP_Q_BLOCKED); /* waits: app_req_drained resumes it */
            break;
        }
        if (rv < 0) {
            /* The channel is failing; its close callback forgets everything. */
            app_req_send_failed(w, "response body", r->stream, rv);
            app_req_resp_done(r);
            break;
        }
        r->out_off += n;
        r->unacked += (uint32_t)n;
        r->bytes_out += n;
        if (is_end)
            app_req_resp_done(r);
    }
    if (r->out_off == r->out_len)
        r->out_off = r->out_len = 0;
}

void app_resp_start(app_req *r, unsigned status)
{
    assert(!r->is_head_sent);
    r->status = status;
    r->resp_len = 0;
    r->resp_fields = 0;
}

void app_resp_header(app_req *r, const char *name, const char *value)
{
    size_t name_len = strlen(name), value_len = strlen(value);
    size_t len = name_len + 1 + value_len;

    assert(!r->is_head_sent);
    /* In the message each field takes 4 bytes of TLV header, here 2 of length. */
    if (r->resp_len + 2 * r->resp_fields + 4 + len + HEAD_RESERVE > QD_IPC_MAX_BODY) {
        static qd_log_limit lim;
        qd_log_limited(&lim, QD_LOG_WARN, "response header %s too large (%zu bytes); left out",
                       name, value_len);
        return;
    }
    if (r->resp_len + 2 + len > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 512;
        while (cap < r->resp_len + 2 + len)
            cap *= 2;
        r->resp = qd_xrealloc(r->resp, cap);
        r->resp_cap = cap;
    }
    uint8_t *p = r->resp + r->resp_len;
    p[0] = (uint8_t)(len >> 8);
    p[1] = (uint8_t)len;
    memcpy(p + 2, name, name_len);
    p[2 + name_len] = '\0';
    memcpy(p + 3 + name_len, value, value_len);
    r->resp_len += 2 + len;
    r->resp_fields++;
}

/*
 * send_head - put the response head of |r| on its channel. Returns 0 once
 * the channel took it; -1 when it must wait for room (|r| is then on the
 * blocked list, holding a duplicate of the descriptor) or will never go
 * (the channel is failing: |r| is done).
 */
static int send_head(app_req *r)
{
    app_worker *w = r->w;
    int fd = r->resp_fd;
    int rv = QD_ERR_EOF;

    if (w->ch != NULL) {
        qd_ipc_msg *m = qd_chan_msg(w->ch, QD_MSG_RESP_HEAD, 0);
        qd_ipc_put_u64(m, QD_F_STREAM, r->stream);
        qd_ipc_put_u32(m, QD_F_STATUS, r->status);
        for (size_t off = 0; off + 2 <= r->resp_len;) {
            size_t len = (size_t)r->resp[off] << 8 | r->resp[off + 1];
            qd_ipc_put_bytes(m, QD_F_HEADER, r->resp + off + 2, len); /* sized in app_resp_header */
            off += 2 + len;
        }
        qd_ipc_put_u32(m, QD_F_FLAGS, r->resp_flags);
        if (fd >= 0) {
            qd_ipc_put_u64(m, QD_F_OFFSET, r->resp_off);
            qd_ipc_put_u64(m, QD_F_LENGTH, r->resp_flen);
            qd_ipc_put_fd(m, fd);
        }
        rv = qd_chan_queue(w->ch);
    }
    if (rv == QD_ERR_TOOBIG) {
        app_req_queue(r, APP_Q_BLOCKED); /* app_req_drained sends it when there is room */
        return -1;
    }
    if (r->resp_fd >= 0) {
        close(r->resp_fd);
        r->resp_fd = -1;
    }
    if (rv < 0) {
        app_req_send_failed(w, "response head", r->stream, rv);
        app_req_resp_done(r);
        return -1;
    }
    r->is_head_queued = true;
    if (fd >= 0 || (r->resp_flags & QD_RESP_F_END))
        app_req_resp_done(r);
    return 0;
}

void app_resp_send_head(app_req *r, uint32_t flags, int fd, uint64_t off, uint64_t len)
{
    app_worker *w = r->w;
    app *a = w->a;

    assert(!r->is_head_sent && (fd < 0 || (flags & QD_RESP_F_END) == 0));
    r->resp_flags = flags;
    if (fd >= 0) {
        /* The caller keeps |fd|: a head that has to wait needs its own. */
        r->resp_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (r->resp_fd < 0) {
            qd_warn_errno("%s: stream %" PRIu64 ": cannot keep the file", w->ch->name, r->stream);
            app_resp_start(r, 500);
            app_resp_header(r, "content-length", "0");
            r->resp_flags = QD_RESP_F_END;
        } else {
            r->resp_off = off;
            r->resp_flen = len;
            r->bytes_out = len;
        }
    }
    r->is_head_sent = true;
    a->status_count[r->status >= 100 && r->status < 600 ? r->status / 100 : 0]++;
    qd_debug("%s: stream %" PRIu64 " %s %s %s: %u", w->ch->name, r->stream, r->peer ? r->peer : "-",
             r->method ? r->method : "-", r->path ? r->path : "-", r->status);
    send_head(r);
}

void app_resp_write(app_req *r, const void *p, size_t len, bool is_end)
{
    assert(r->is_head_sent && !r->is_out_end);
    if (r->is_resp_done)
        return;
    if (len > 0) {
        if (r->out_len + len > r->out_cap && r->out_off > 0) {
            memmove(r->out, r->out + r->out_off, r->out_len - r->out_off);
            r->out_len -= r->out_off;
            r->out_off = 0;
        }
        if (r->out_len + len > r->out_cap) {
            size_t cap = r->out_cap ? r->out_cap : 1024;
            while (cap < r->out_len + len)
                cap *= 2;
            r->out = qd_xrealloc(r->out, cap);
            r->out_cap = cap;
        }
        memcpy(r->out + r->out_len, p, len);
        r->out_len += len;
    }
    r->is_out_end = is_end;
    app_resp_pump(r);
}

void app_resp_error(app_req *r, unsigned status, const char *name, const char *value)
{
    char body[64], length[24];
    int n = snprintf(body, sizeof(body), "%u %s\n", status, qd_http_reason(status));

    snprintf(length, sizeof(length), "%d", n);
    app_resp_start(r, status);
    app_resp_header(r, "content-type", "text/plain; charset=utf-8");
    app_resp_header(r, "content-length", length);
    if (name != NULL)
        app_resp_header(r, name, value);
    if (app_req_is_head(r)) {
        app_resp_send_head(r, QD_RESP_F_END, -1, 0, 0);
        return;
    }
    app_resp_send_head(r, 0, -1, 0, 0);
    app_resp_write(r, body, (size_t)n, true);
}
