/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_app - the app as a response source
 * SYNOPSIS
 *	worker_app_source, worker_app_message(), worker_app_down(),
 *	worker_app_finish_all(), worker_app_send_failed()
 * DESCRIPTION
 *	A request no other source answered goes to the app over its channel:
 *	the complete head as QD_MSG_REQ_HEAD, the body as QD_MSG_REQ_BODY,
 *	and QD_MSG_REQ_CANCEL when the client goes away first. The app
 *	answers with QD_MSG_RESP_HEAD and either an open descriptor with an
 *	offset and a length (read by worker_body.c; a GET may come with a
 *	grant for the fast path, worker_cache.c), or QD_MSG_RESP_BODY chunks
 *	under a credit window that delivered() reopens as the client takes
 *	the bytes (qd_ipc.h); QD_MSG_RESP_INFO is an interim response such
 *	as 103 Early Hints. Without an app the answer is 503; when the app
 *	goes away its unanswered requests get 503 and its unfinished bodies
 *	are reset. A drain asks the app to end its open-ended responses
 *	(event streams) cleanly.
 * DIAGNOSTICS
 *	Messages the app channel refuses are counted (app_send_failures) and
 *	logged, rate-limited; the stream is reset. A malformed message from
 *	the app is logged and dropped (qd_child_bad_message).
 */
#include "config.h"

/* system */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"

/* local */
#include "worker.h"

#define CREDIT_BATCH (64 * 1024)

/*
 * The one outgoing message: filled and sent within a single function call,
 * never kept across a callback (a request's own state lives in its stream).
 */

/* worker_app_send_failed - count and log (rate-limited) a message the app channel refused */
void worker_app_send_failed(worker *w, const char *what, int rv)
{
    static qd_log_limit lim;

    w->app_send_failures++;
    qd_log_limited(&lim, QD_LOG_WARN, "app channel refused a %s (%s, %zu bytes queued); %" PRIu64
                   " refused so far", what, qd_strerror(rv), qd_chan_queued(w->app),
                   w->app_send_failures);
}

/* cancel_at_app - tell the app to forget the request of |s| */
static void cancel_at_app(wk_stream *s)
{
    worker *w = s->c->w;
    int rv;

    s->head_sent = false; /* nothing more goes to the app for it */
    if (w->app == NULL)
        return;
    qd_ipc_msg *m = qd_chan_msg(w->app, QD_MSG_REQ_CANCEL, 0);
    qd_ipc_put_u64(m, QD_F_STREAM, s->req_id);
    if ((rv = qd_chan_queue_ctl(w->app)) < 0)
        worker_app_send_failed(w, "cancel", rv); /* the app forgets it with the channel */
}

/*
 * abandon - a message for the app about |s| could not be queued: rather
 * than let the app see a truncated body or wait for credit that never
 * comes, reset the stream (the client sees an error, not a wrong answer)
 * and tell the app to forget the request. Counted in app_send_failures.
 */
static void abandon(wk_stream *s, const char *what, int rv)
{
    worker_app_send_failed(s->c->w, what, rv);
    cancel_at_app(s);
    s->req_done = true;
    worker_req_reset(s);
}

/*
 * worker_app_finish_all - the worker drains: the app ends its open-ended
 * responses (event streams) cleanly, so their clients see a complete
 * response and reconnect (to the next generation) instead of an error
 * at the drain deadline
 */
void worker_app_finish_all(worker *w)
{
    for (int list = 0; list < 2; list++)
        for (wk_conn *c = list ? w->tconns : w->conns; c != NULL; c = c->next)
            for (wk_stream *s = c->streams; s != NULL; s = s->next) {
                if (!s->head_sent || s->eof || w->app == NULL)
                    continue;
                qd_ipc_msg *m = qd_chan_msg(w->app, QD_MSG_REQ_CANCEL, 0);
                qd_ipc_put_u64(m, QD_F_STREAM, s->req_id);
                qd_ipc_put_u32(m, QD_F_FLAGS, QD_REQ_F_FINISH);
                int rv = qd_chan_queue_ctl(w->app);
                if (rv < 0)
                    worker_app_send_failed(w, "finish", rv);
            }
}

/* start - the request goes to the app (QD_MSG_REQ_HEAD), or 503 without one */
static bool start(wk_stream *s, bool fin)
{
    worker *w = s->c->w;

    if (w->app == NULL) {
        worker_req_respond(s, 503, "503 Service Unavailable\n");
        return true;
    }
    qd_ipc_msg *m = qd_chan_msg(w->app, QD_MSG_REQ_HEAD, 0);
    qd_ipc_put_u64(m, QD_F_STREAM, s->req_id);
    qd_ipc_put_str(m, QD_F_METHOD, s->method);
    qd_ipc_put_str(m, QD_F_SCHEME, s->scheme ? s->scheme : "https");
    qd_ipc_put_str(m, QD_F_AUTHORITY, s->authority ? s->authority : "");
    qd_ipc_put_str(m, QD_F_PATH, s->path);
    qd_ipc_put_str(m, QD_F_PEER, s->c->peer);
    qd_ipc_put_str(m, QD_F_CONN_ID, s->c->cid_text);
    qd_ipc_put_u64(m, QD_F_QUIC_STREAM, (uint64_t)s->id);
    qd_ipc_put_str(m, QD_F_PROTO, worker_conn_proto(s->c));
    qd_ipc_put_u32(m, QD_F_FLAGS, (fin ? QD_REQ_F_END : 0) | (s->early ? QD_REQ_F_EARLY : 0));
    for (size_t off = 0; off + 2 <= s->fields.len;) {
        const uint8_t *p = (const uint8_t *)s->fields.data + off;
        size_t flen = (size_t)p[0] << 8 | p[1];
        if (qd_ipc_put_bytes(m, QD_F_HEADER, p + 2, flen) < 0) {
            /* cannot happen below WORKER_MAX_HEAD; answer as for an oversized head */
            worker_req_respond(s, 431, "431 Request Header Fields Too Large\n");
            return true;
        }
        off += 2 + flen;
    }
    qd_buf_release(&s->fields); /* the head is complete: the fields are not needed again */
    int rv = qd_chan_queue(w->app);
    if (rv < 0) {
        worker_app_send_failed(w, "request head", rv);
        worker_req_respond(s, 503, "503 Service Unavailable\n");
        return true;
    }
    s->head_sent = true;
    w->requests++;
    return true;
}

/* body - request body bytes: on to the app, up to max_request_body and a chunk */
static void body(wk_stream *s, const uint8_t *data, size_t len)
{
    worker *w = s->c->w;

    if (!s->head_sent || w->app == NULL)
        return;
    s->body_in += len;
    if (s->body_in > (uint64_t)w->child.conf.max_request_body + QD_IPC_MAX_CHUNK)
        return; /* the app has answered 413 by now; drop the rest */
    while (len > 0) {
        size_t n = len < QD_IPC_MAX_CHUNK ? len : QD_IPC_MAX_CHUNK;
        qd_ipc_msg *m = qd_chan_msg(w->app, QD_MSG_REQ_BODY, 0);
        qd_ipc_put_u64(m, QD_F_STREAM, s->req_id);
        qd_ipc_put_bytes(m, QD_F_BODY, data, n);
        qd_ipc_put_u32(m, QD_F_FLAGS, 0);
        int rv = qd_chan_queue(w->app);
        if (rv < 0) {
            abandon(s, "request body", rv);
            return;
        }
        data += n;
        len -= n;
    }
}

/* end - the request body is complete */
static void end(wk_stream *s)
{
    if (s->head_sent && s->c->w->app != NULL) {
        qd_ipc_msg *m = qd_chan_msg(s->c->w->app, QD_MSG_REQ_BODY, 0);
        qd_ipc_put_u64(m, QD_F_STREAM, s->req_id);
        qd_ipc_put_u32(m, QD_F_FLAGS, QD_REQ_F_END);
        int rv = qd_chan_queue_ctl(s->c->w->app);
        if (rv < 0)
            abandon(s, "request end", rv);
    }
}

/* delivered - |len| more response body bytes reached the client: credit the app; false when abandoned */
static bool delivered(wk_stream *s, uint64_t len)
{
    worker *w = s->c->w;

    if (s->body_from_app) {
        s->credit_due += len;
        if ((s->credit_due >= CREDIT_BATCH || s->eof) && w->app != NULL && s->credit_due > 0) {
            qd_ipc_msg *m = qd_chan_msg(w->app, QD_MSG_RESP_CREDIT, 0);
            qd_ipc_put_u64(m, QD_F_STREAM, s->req_id);
            qd_ipc_put_u32(m, QD_F_CREDIT, (uint32_t)s->credit_due);
            int rv = qd_chan_queue_ctl(w->app);
            if (rv < 0) {
                /* without it the app would wait for credit forever */
                abandon(s, "credit", rv);
                return false;
            }
            s->credit_due = 0;
        }
    }
    return true;
}

/* cancel - the stream goes away: the app may still hold state for it */
static void cancel(wk_stream *s)
{
    if (s->head_sent && (!s->eof || !s->req_done))
        cancel_at_app(s);
}

const wk_source worker_app_source = {
    .name = "app",
    .start = start,
    .body = body,
    .end = end,
    .delivered = delivered,
    .cancel = cancel,
};

/* --- responses from the app -------------------------------------------------- */

/* collect_fields - F_HEADER "name\0value" fields as nghttp3 name/value pairs */
static size_t collect_fields(const qd_ipc_msg *m, nghttp3_nv *nv, size_t cap)
{
    size_t n = 0, pos = 0, flen;
    uint16_t tag;
    const uint8_t *val;

    while (qd_ipc_next(m, &pos, &tag, &val, &flen) && n < cap) {
        const uint8_t *nul = tag == QD_F_HEADER ? memchr(val, '\0', flen) : NULL;
        if (nul == NULL || nul == val)
            continue;
        size_t nlen = (size_t)(nul - val);
        nv[n++] = (nghttp3_nv){(uint8_t *)val, (uint8_t *)nul + 1, nlen, flen - nlen - 1,
                               NGHTTP3_NV_FLAG_NONE};
    }
    return n;
}

/* on_resp_head - status, fields, and an fd body or a promise of RESP_BODY */
static void on_resp_head(worker *w, qd_ipc_msg *m, wk_stream *s)
{
    nghttp3_nv nv[62];
    size_t n;
    uint32_t status = 0, flags = 0;
    uint64_t off = 0, length = 0;
    char len_text[24];

    qd_ipc_get_u32(m, QD_F_STATUS, &status);
    qd_ipc_get_u32(m, QD_F_FLAGS, &flags);
    if (status < 100 || status > 999 || s->responded) {
        qd_child_bad_message(&w->child, "app", QD_ERR_INVAL);
        return;
    }
    n = collect_fields(m, nv, 60);
    if (m->fd_count == 1) {
        qd_ipc_get_u64(m, QD_F_OFFSET, &off);
        qd_ipc_get_u64(m, QD_F_LENGTH, &length);
        nv[n++] = (nghttp3_nv){(uint8_t *)"content-length", (uint8_t *)len_text, 14,
                               (size_t)snprintf(len_text, sizeof(len_text), "%" PRIu64, length),
                               NGHTTP3_NV_FLAG_NONE};
        s->fd = qd_ipc_msg_take_fd(m, 0);
        if ((flags & QD_RESP_F_GRANT) && s->grant_key != NULL && status == 200 && off == 0)
            worker_cache_grant(s, nv, n - 1, length); /* the fields without content-length */
        if (s->file != NULL && s->file->data != NULL) {
            s->fd = -1; /* now the cache's memory */
            worker_body_use_mem(s, 0, length);
            worker_req_submit(s, (int)status, nv, n, true);
            return;
        }
        s->fd_off = off;
        s->fd_left = length;
        s->eof = length == 0;
        if (worker_body_fill(s) < 0) {
            worker_req_reset(s);
            return;
        }
        worker_req_submit(s, (int)status, nv, n, true);
        return;
    }
    if (flags & QD_RESP_F_END) {
        s->eof = true;
        worker_req_submit(s, (int)status, nv, n, false);
        return;
    }
    s->body_from_app = true;
    worker_req_submit(s, (int)status, nv, n, true);
}

/* on_resp_info - an interim response, e.g. 103 Early Hints */
static void on_resp_info(worker *w, qd_ipc_msg *m, wk_stream *s)
{
    nghttp3_nv nv[64];
    uint32_t status = 0;
    char status_text[8];

    qd_ipc_get_u32(m, QD_F_STATUS, &status);
    if (status < 100 || status > 199 || status == 101 || s->responded) {
        qd_child_bad_message(&w->child, "app", QD_ERR_INVAL);
        return;
    }
    snprintf(status_text, sizeof(status_text), "%u", status);
    nv[0] = (nghttp3_nv){(uint8_t *)":status", (uint8_t *)status_text, 7, strlen(status_text),
                         NGHTTP3_NV_FLAG_NONE};
    size_t n = 1 + collect_fields(m, nv + 1, 63);
    /* A grant may follow: keep the hints for the cache entry. */
    for (size_t i = 1; status == 103 && s->grant_key != NULL && i < n; i++) {
        size_t flen = nv[i].namelen + 1 + nv[i].valuelen;
        uint8_t len2[2] = {(uint8_t)(flen >> 8), (uint8_t)flen};
        qd_buf_append(&s->hints, (const char *)len2, 2);
        qd_buf_append(&s->hints, (const char *)nv[i].name, nv[i].namelen);
        qd_buf_append(&s->hints, "", 1);
        qd_buf_append(&s->hints, (const char *)nv[i].value, nv[i].valuelen);
    }
    if (worker_req_submit_info(s, nv, n) != 0)
        worker_req_reset(s);
    worker_conn_mark(s->c);
}

static void on_resp_body(worker *w, qd_ipc_msg *m, wk_stream *s)
{
    const uint8_t *body = NULL;
    size_t len = 0;
    uint32_t flags = 0;

    if (!s->body_from_app || s->eof) {
        qd_child_bad_message(&w->child, "app", QD_ERR_INVAL);
        return;
    }
    qd_ipc_get_bytes(m, QD_F_BODY, &body, &len);
    qd_ipc_get_u32(m, QD_F_FLAGS, &flags);
    if (s->filled - s->acked + len > QD_RESP_WINDOW + QD_IPC_MAX_CHUNK) {
        qd_child_bad_message(&w->child, "app (response body beyond its window)", QD_ERR_TOOBIG);
        worker_req_reset(s);
        return;
    }
    if (len > 0)
        worker_body_append(s, body, len);
    if (flags & QD_RESP_F_END)
        s->eof = true;
    worker_req_resume(s);
}

void worker_app_message(worker *w, qd_ipc_msg *m)
{
    uint64_t id = 0;

    if (qd_ipc_get_u64(m, QD_F_STREAM, &id) < 0) {
        qd_child_bad_message(&w->child, "app", QD_ERR_INVAL);
        return;
    }
    wk_stream *s = wk_map_get(&w->streams, (const uint8_t *)&id, sizeof(id));
    if (s == NULL)
        return; /* the client went away meanwhile */
    if (m->type == QD_MSG_RESP_HEAD)
        on_resp_head(w, m, s);
    else if (m->type == QD_MSG_RESP_BODY)
        on_resp_body(w, m, s);
    else if (m->type == QD_MSG_RESP_INFO)
        on_resp_info(w, m, s);
    else
        qd_child_bad_message(&w->child, "app", QD_ERR_UNKNOWN);
    /* No write here: the loop's check handle (worker.c) writes each dirty
     * connection once after all the messages this iteration read, so
     * answers to several requests share packets. */
}

/* app_down_conns - the app is gone: answer or reset the requests of the connections in |c| */
static void app_down_conns(wk_conn *c)
{
    for (; c != NULL; c = c->next) {
        for (wk_stream *s = c->streams; s != NULL; s = s->next) {
            if (!s->head_sent)
                continue;
            s->head_sent = false; /* no cancel to send */
            if (!s->responded)
                worker_req_respond(s, 503, "503 Service Unavailable\n");
            else if (s->body_from_app && !s->eof)
                worker_req_reset(s);
        }
    }
}

void worker_app_down(worker *w)
{
    app_down_conns(w->conns);
    app_down_conns(w->tconns);
    worker_conn_flush_dirty(w);
}
