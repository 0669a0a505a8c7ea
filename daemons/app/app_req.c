/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	app_req - requests from the workers: table, lifecycle, protocol
 * SYNOPSIS
 *	app_req_worker_init(), app_req_message(), app_req_drained(),
 *	app_req_drop_all(), app_req_header(), app_req_is_head(),
 *	app_req_end_streams(), app_req_queue(), app_req_resp_done(),
 *	app_req_send_failed()
 * DESCRIPTION
 *	A request is keyed by (worker channel, F_STREAM) in a per-worker hash
 *	table. It lives from its REQ_HEAD until both directions are over: the
 *	app has sent its final response message (RESP_HEAD with END or with a
 *	descriptor, RESP_BODY with END) and the worker has ended the request
 *	body (QD_REQ_F_END); or until REQ_CANCEL or the channel closing. The
 *	handler runs once the request body has ended; bodies are counted
 *	against max_request_body (and, for static files, discarded). A body
 *	or content-length over the limit is answered 413 at once and the rest
 *	of the body is discarded as it arrives ("draining": at most
 *	APP_MAX_DRAINING per channel, the oldest forgotten first).
 *
 *	Responses are sent by app_resp.c. Bodies sent in messages are
 *	flow-controlled per request: at most QD_RESP_WINDOW bytes sent and not
 *	yet credited (RESP_CREDIT). Chunks (and heads the channel cannot take)
 *	wait while the channel is full; its drain callback resumes them.
 *	Credit for a forgotten request is normal (the worker credits the last
 *	chunks after we are done) and is ignored.
 *
 *	POST /api/echo keeps its body (app_api_wants_body) in the request,
 *	bounded by the same limit. Every request whose head was answered is
 *	written to the access log once, when its final response message goes
 *	out or when it is forgotten (then marked "cancelled" if the client
 *	reset it); a 503 for a request we could not even store is not logged.
 *
 *	Ownership: the app owns every request; they are recycled through a
 *	free list with their buffers. Descriptors given to app_resp_send_head
 *	are borrowed. Only the message handlers and the drain callback free a
 *	request, after a handler and the response functions have returned
 *	(settle), so a handler never sees its request vanish.
 * DIAGNOSTICS
 *	Worker messages that break the protocol (no stream, a head for a
 *	stream in progress, a body for an unknown stream, too much credit)
 *	are logged (rate-limited), counted and dropped. A cancel for an
 *	unknown stream is an expected race and logged at debug level only.
 */
#include "config.h"

/* system */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_log.h"

/* local */
#include "app.h"

#define INITIAL_BUCKETS 64
#define FREE_LIST_MAX 1024          /* recycled requests kept */
#define KEEP_BUFFER_MAX (16 * 1024) /* larger buffers are freed, not recycled */

/* The header-only answer for a request we do not keep: filled and sent in one call. */

#define REQ_OF(l) ((app_req *)(void *)((char *)(l)-offsetof(app_req, qlink)))

/* gossip - log (rate-limited) and count a worker message we drop */
static void gossip(app_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gossip(app_worker *w, const char *fmt, ...)
{
    static qd_log_limit lim;
    char text[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    w->a->protocol_errors++;
    qd_log_limited(&lim, QD_LOG_WARN, "%s: %s", w->ch ? w->ch->name : "worker", text);
}

/* app_req_send_failed - count and log (rate-limited) a message the channel refused */
void app_req_send_failed(app_worker *w, const char *what, uint64_t stream, int rv)
{
    static qd_log_limit lim;

    w->a->send_failures++;
    qd_log_limited(&lim, QD_LOG_WARN, "%s: cannot send the %s for stream %" PRIu64 ": %s",
                   w->ch ? w->ch->name : "worker", what, stream, qd_strerror(rv));
}

/* list_init, list_append, list_remove - the intrusive list */
static void list_init(app_link *l)
{
    l->prev = l->next = l;
}

static void list_append(app_link *l, app_link *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static void list_remove(app_link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* app_req_queue - move |r| to the blocked or draining list, or to neither */
void app_req_queue(app_req *r, app_queue q)
{
    app_worker *w = r->w;

    if (r->queue == q)
        return;
    if (r->queue != APP_Q_NONE)
        list_remove(&r->qlink);
    if (r->queue == APP_Q_DRAINING)
        w->draining_count--;
    r->queue = q;
    if (q == APP_Q_BLOCKED)
        list_append(&w->blocked, &r->qlink);
    if (q == APP_Q_DRAINING) {
        list_append(&w->draining, &r->qlink);
        w->draining_count++;
    }
}

/* bucket_of - Fibonacci hashing of a stream id */
static uint32_t bucket_of(const app_worker *w, uint64_t stream)
{
    return (uint32_t)((stream * 0x9E3779B97F4A7C15ULL) >> 32) & (w->bucket_count - 1);
}

/* find - the request for |stream| on |w|, or NULL */
static app_req *find(app_worker *w, uint64_t stream)
{
    if (w->buckets == NULL)
        return NULL;
    for (app_req *r = w->buckets[bucket_of(w, stream)]; r != NULL; r = r->hnext)
        if (r->stream == stream)
            return r;
    return NULL;
}

/* table_resize - rehash into |count| buckets */
static void table_resize(app_worker *w, uint32_t count)
{
    app_req **old = w->buckets;
    uint32_t old_count = w->bucket_count;

    w->buckets = qd_xcalloc(count, sizeof(*w->buckets));
    w->bucket_count = count;
    for (uint32_t i = 0; i < old_count; i++) {
        while (old[i] != NULL) {
            app_req *r = old[i];
            old[i] = r->hnext;
            uint32_t b = bucket_of(w, r->stream);
            r->hnext = w->buckets[b];
            w->buckets[b] = r;
        }
    }
    free(old);
}

/* table_insert - add |r| to its worker's table, growing it at load 1 */
static void table_insert(app_worker *w, app_req *r)
{
    if (w->buckets == NULL)
        table_resize(w, INITIAL_BUCKETS);
    else if (w->req_count >= w->bucket_count)
        table_resize(w, w->bucket_count * 2);
    uint32_t b = bucket_of(w, r->stream);
    r->hnext = w->buckets[b];
    w->buckets[b] = r;
    w->req_count++;
}

/* table_remove - take |r| out of its worker's table */
static void table_remove(app_worker *w, app_req *r)
{
    app_req **pp = &w->buckets[bucket_of(w, r->stream)];

    while (*pp != r) {
        assert(*pp != NULL);
        pp = &(*pp)->hnext;
    }
    *pp = r->hnext;
    r->hnext = NULL;
    w->req_count--;
}

/* req_new - a fresh request for |stream| on |w|, in the table */
static app_req *req_new(app_worker *w, uint64_t stream)
{
    app *a = w->a;
    app_req *r = a->free_reqs;
    char *head = NULL;
    uint8_t *out = NULL, *resp = NULL;
    size_t head_cap = 0, out_cap = 0, resp_cap = 0;

    if (r != NULL) {
        a->free_reqs = r->hnext;
        a->free_count--;
        head = r->head;
        head_cap = r->head_cap;
        out = r->out;
        out_cap = r->out_cap;
        resp = r->resp;
        resp_cap = r->resp_cap;
    } else {
        r = qd_xmalloc(sizeof(*r));
    }
    memset(r, 0, sizeof(*r));
    r->head = head;
    r->head_cap = head_cap;
    r->out = out;
    r->out_cap = out_cap;
    r->resp = resp;
    r->resp_cap = resp_cap;
    r->resp_fd = -1;
    list_init(&r->qlink);
    r->w = w;
    r->stream = stream;
    table_insert(w, r);
    w->active_count++;
    a->in_flight++;
    return r;
}

/* app_req_resp_done - the final response message went out (or never will) */
void app_req_resp_done(app_req *r)
{
    if (r->is_resp_done)
        return;
    r->is_resp_done = true;
    r->w->active_count--;
    r->w->a->in_flight--;
    app_req_log(r);
}

/* req_free - forget |r| and recycle it */
static void req_free(app_req *r)
{
    app_worker *w = r->w;
    app *a = w->a;

    app_req_resp_done(r);
    app_api_release(r);
    if (r->resp_fd >= 0) {
        close(r->resp_fd);
        r->resp_fd = -1;
    }
    if (r->has_body_buf) {
        qd_buf_release(&r->body);
        r->has_body_buf = false;
    }
    app_req_queue(r, APP_Q_NONE);
    table_remove(w, r);
    if (a->free_count >= FREE_LIST_MAX) {
        free(r->head);
        free(r->out);
        free(r->resp);
        free(r);
        return;
    }
    if (r->resp_cap > KEEP_BUFFER_MAX) {
        free(r->resp);
        r->resp = NULL;
        r->resp_cap = 0;
    }
    if (r->head_cap > KEEP_BUFFER_MAX) {
        free(r->head);
        r->head = NULL;
        r->head_cap = 0;
    }
    if (r->out_cap > KEEP_BUFFER_MAX) {
        free(r->out);
        r->out = NULL;
        r->out_cap = 0;
    }
    r->hnext = a->free_reqs;
    a->free_reqs = r;
    a->free_count++;
}

/*
 * settle - after a message or a drain: free |r| when both directions are
 * over, or keep it as draining until its body ends.
 */
static void settle(app_req *r)
{
    app_worker *w = r->w;

    if (!r->is_resp_done)
        return;
    if (r->is_req_done) {
        req_free(r);
    } else if (r->queue != APP_Q_DRAINING) {
        app_req_queue(r, APP_Q_DRAINING);
        if (w->draining_count > APP_MAX_DRAINING)
            req_free(REQ_OF(w->draining.next));
    }
    app_exit_if_idle(w->a);
}

/* store_head - copy method, path, ... and the headers of a REQ_HEAD into |r| */
static int store_head(app_req *r, const qd_ipc_msg *m)
{
    static const uint16_t tags[] = {QD_F_METHOD, QD_F_PATH, QD_F_AUTHORITY, QD_F_SCHEME, QD_F_PEER};
    size_t off[5] = {SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};
    const char **ptr[5] = {&r->method, &r->path, &r->authority, &r->scheme, &r->peer};
    const uint8_t *val;
    size_t pos, len;
    uint16_t tag;
    int rv = 0;

    /* Every field copies at most its length + 1 bytes, less than its 4-byte TLV overhead. */
    if (r->head_cap < (size_t)m->len + 1) {
        free(r->head);
        r->head_cap = (size_t)m->len + 1;
        r->head = qd_xmalloc(r->head_cap);
    }
    r->head_len = 0;
    for (pos = 0; qd_ipc_next(m, &pos, &tag, &val, &len);) {
        for (size_t i = 0; i < 5; i++) {
            if (tag == tags[i] && off[i] == SIZE_MAX) {
                off[i] = r->head_len;
                memcpy(r->head + r->head_len, val, len);
                r->head_len += len;
                r->head[r->head_len++] = '\0';
            }
        }
    }
    r->header_off = r->head_len;
    for (pos = 0; qd_ipc_next(m, &pos, &tag, &val, &len);) {
        if (tag != QD_F_HEADER)
            continue;
        /* name NUL value: a non-empty name and exactly one NUL */
        const uint8_t *nul = memchr(val, '\0', len);
        if (nul == NULL || nul == val || memchr(nul + 1, '\0', len - (size_t)(nul + 1 - val))) {
            rv = -1;
            continue;
        }
        memcpy(r->head + r->head_len, val, len);
        r->head_len += len;
        r->head[r->head_len++] = '\0';
    }
    for (size_t i = 0; i < 5; i++)
        *ptr[i] = off[i] == SIZE_MAX ? NULL : r->head + off[i];
    if (r->method == NULL || r->path == NULL)
        rv = -1;
    return rv;
}

/* is_safe_method - no side effects expected (RFC 9110 9.2.1): fine in 0-RTT */
static bool is_safe_method(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
           strcmp(method, "OPTIONS") == 0 || strcmp(method, "TRACE") == 0;
}

/* dispatch - the request is complete: answer it */
static void dispatch(app_req *r)
{
    r->is_handled = true;
    if ((r->req_flags & QD_REQ_F_EARLY) && !is_safe_method(r->method)) {
        /* Replayable 0-RTT data must not reach anything with side effects. */
        app_resp_error(r, 425, NULL, NULL);
        return;
    }
    if (app_api_match(r)) {
        app_api_handle(r);
    } else {
        app_static_handle(r);
    }
    if (!r->is_head_sent) {
        qd_warn("%s: no response for stream %" PRIu64 "; answering 500", r->w->ch->name, r->stream);
        app_resp_error(r, 500, NULL, NULL);
    }
}

/* answer_unstored - a header-only answer for a request we do not keep */
static void answer_unstored(app_worker *w, uint64_t stream, unsigned status)
{
    static const char no_body[] = "content-length\0" /* value: */ "0";

    qd_ipc_msg *m = qd_chan_msg(w->ch, QD_MSG_RESP_HEAD, 0);
    qd_ipc_put_u64(m, QD_F_STREAM, stream);
    qd_ipc_put_u32(m, QD_F_STATUS, status);
    qd_ipc_put_bytes(m, QD_F_HEADER, no_body, sizeof(no_body) - 1);
    qd_ipc_put_u32(m, QD_F_FLAGS, QD_RESP_F_END);
    w->a->status_count[status / 100 <= 5 ? status / 100 : 0]++;
    int rv = qd_chan_queue_ctl(w->ch);
    if (rv < 0)
        app_req_send_failed(w, "answer", stream, rv);
}

/* parse_length - a decimal content-length; -1 if it is not one */
static int64_t parse_length(const char *s)
{
    int64_t v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* on_head - QD_MSG_REQ_HEAD */
static void on_head(app_worker *w, const qd_ipc_msg *m)
{
    uint64_t stream;
    uint32_t flags;
    const char *cl;

    if (qd_ipc_get_u64(m, QD_F_STREAM, &stream) < 0) {
        gossip(w, "request head without a stream; dropped");
        return;
    }
    if (find(w, stream) != NULL) {
        gossip(w, "request head for stream %" PRIu64 ", already in progress; dropped", stream);
        return;
    }
    if (w->active_count >= APP_MAX_REQUESTS) {
        static qd_log_limit lim;
        qd_log_limited(&lim, QD_LOG_WARN, "%s: %u requests in progress; answering 503", w->ch->name,
                       w->active_count);
        answer_unstored(w, stream, 503);
        return;
    }
    app_req *r = req_new(w, stream);
    if (qd_ipc_get_u32(m, QD_F_FLAGS, &flags) < 0) {
        gossip(w, "request head for stream %" PRIu64 " without flags; answering 400", stream);
        r->is_req_done = true; /* assume no body: we cannot wait for one */
        r->is_handled = true;
        app_resp_error(r, 400, NULL, NULL);
        settle(r);
        return;
    }
    r->req_flags = flags;
    r->is_req_done = (flags & QD_REQ_F_END) != 0;
    r->start_ns = uv_hrtime();
    qd_ipc_get_u64(m, QD_F_QUIC_STREAM, &r->conn_stream);
    if (qd_ipc_get_str(m, QD_F_CONN_ID, r->conn_id, sizeof(r->conn_id)) < 0)
        strcpy(r->conn_id, "-");
    /* Older workers send no F_PROTO: everything they carry is HTTP/3. */
    if (qd_ipc_get_str(m, QD_F_PROTO, r->proto, sizeof(r->proto)) < 0)
        strcpy(r->proto, QD_PROTO_H3);
    if (store_head(r, m) < 0) {
        gossip(w, "malformed request head for stream %" PRIu64 "; answering 400", stream);
        r->is_handled = true;
        app_resp_error(r, 400, NULL, NULL);
    } else if (!r->is_req_done && (cl = app_req_header(r, "content-length")) != NULL &&
               parse_length(cl) > w->a->child.conf.max_request_body) {
        r->is_handled = true;
        app_resp_error(r, 413, NULL, NULL);
    } else if (r->is_req_done) {
        dispatch(r);
    } else if (app_api_wants_body(r)) {
        r->is_keep_body = true;
        qd_buf_init(&r->body);
        r->has_body_buf = true;
    }
    settle(r);
}

/* on_body - QD_MSG_REQ_BODY */
static void on_body(app_worker *w, const qd_ipc_msg *m)
{
    const uint8_t *body;
    uint64_t stream;
    uint32_t flags = 0;
    size_t len = 0;
    app_req *r;

    if (qd_ipc_get_u64(m, QD_F_STREAM, &stream) < 0) {
        gossip(w, "request body without a stream; dropped");
        return;
    }
    if ((r = find(w, stream)) == NULL) {
        gossip(w, "request body for unknown stream %" PRIu64 "; dropped", stream);
        return;
    }
    if (r->is_req_done) {
        gossip(w, "request body for stream %" PRIu64 " after its end; dropped", stream);
        return;
    }
    if (qd_ipc_get_bytes(m, QD_F_BODY, &body, &len) < 0)
        len = 0; /* an END without data may leave the body out */
    qd_ipc_get_u32(m, QD_F_FLAGS, &flags);
    r->body_len += len;
    r->is_req_done = (flags & QD_REQ_F_END) != 0;
    if (!r->is_handled && r->body_len > (uint64_t)w->a->child.conf.max_request_body) {
        r->is_handled = true;
        app_resp_error(r, 413, NULL, NULL);
    } else if (!r->is_handled && r->is_keep_body && len > 0) {
        qd_buf_append(&r->body, (const char *)body, len); /* bounded by max_request_body */
    }
    if (r->is_handled) {
        /* answered already: the rest of the body is discarded */
    } else if (!r->is_handled && r->is_req_done) {
        dispatch(r);
    }
    settle(r);
}

/* on_cancel - QD_MSG_REQ_CANCEL: the client reset the stream */
static void on_cancel(app_worker *w, const qd_ipc_msg *m)
{
    static qd_log_limit lim;
    uint64_t stream;
    app_req *r;

    if (qd_ipc_get_u64(m, QD_F_STREAM, &stream) < 0) {
        gossip(w, "cancel without a stream; dropped");
        return;
    }
    if ((r = find(w, stream)) == NULL) {
        /* Crossed with our final response: expected now and then. */
        qd_log_limited(&lim, QD_LOG_DEBUG, "%s: cancel for unknown stream %" PRIu64, w->ch->name,
                       stream);
        return;
    }
    uint32_t flags = 0;
    qd_ipc_get_u32(m, QD_F_FLAGS, &flags);
    if (flags & QD_REQ_F_FINISH) {
        app_api_finish(r); /* an event stream ends; anything else goes on */
        return;
    }
    r->is_cancelled = true;
    req_free(r);
    app_exit_if_idle(w->a);
}

/* on_credit - QD_MSG_RESP_CREDIT: the worker sent some of our body */
static void on_credit(app_worker *w, const qd_ipc_msg *m)
{
    uint64_t stream;
    uint32_t credit;
    app_req *r;

    if (qd_ipc_get_u64(m, QD_F_STREAM, &stream) < 0 ||
        qd_ipc_get_u32(m, QD_F_CREDIT, &credit) < 0) {
        gossip(w, "credit without a stream or an amount; dropped");
        return;
    }
    if ((r = find(w, stream)) == NULL)
        return;
    if (credit > r->unacked) {
        gossip(w, "credit of %u for stream %" PRIu64 " with %u bytes outstanding; clamped", credit,
               stream, r->unacked);
        credit = r->unacked;
    }
    r->unacked -= credit;
    app_resp_pump(r);
    settle(r);
}

void app_req_worker_init(app *a, app_worker *w, uint32_t index)
{
    memset(w, 0, sizeof(*w));
    w->a = a;
    w->index = index;
    list_init(&w->blocked);
    list_init(&w->draining);
}

void app_req_message(app_worker *w, qd_ipc_msg *m)
{
    switch (m->type) {
    case QD_MSG_REQ_HEAD:
        on_head(w, m);
        break;
    case QD_MSG_REQ_BODY:
        on_body(w, m);
        break;
    case QD_MSG_REQ_CANCEL:
        on_cancel(w, m);
        break;
    case QD_MSG_RESP_CREDIT:
        on_credit(w, m);
        break;
    default:
        gossip(w, "unexpected %s message; dropped", qd_ipc_type_name(m->type));
    }
}

void app_req_drained(app_worker *w)
{
    while (w->ch != NULL && w->blocked.next != &w->blocked &&
           qd_chan_queued(w->ch) <= APP_CHAN_SOFT_LIMIT) {
        app_req *r = REQ_OF(w->blocked.next);
        app_req_queue(r, APP_Q_NONE);
        app_resp_pump(r);
        settle(r);
    }
    app_exit_if_idle(w->a);
}

void app_req_drop_all(app_worker *w)
{
    uint32_t dropped = w->active_count;

    for (uint32_t i = 0; i < w->bucket_count; i++)
        while (w->buckets[i] != NULL)
            req_free(w->buckets[i]);
    if (dropped > 0)
        qd_notice("worker[%u]: channel closed with %u requests unanswered", w->index, dropped);
    app_exit_if_idle(w->a);
}

void app_req_end_streams(app_worker *w)
{
    for (uint32_t i = 0; i < w->bucket_count; i++) {
        for (app_req *r = w->buckets[i]; r != NULL; r = r->hnext) {
            if (r->tick == NULL || r->is_resp_done)
                continue;
            app_api_release(r);
            app_resp_write(r, NULL, 0, true);
            /* not settled here: freeing a request now would break the walk */
        }
    }
}

const char *app_req_header(const app_req *r, const char *name)
{
    for (size_t o = r->header_off; o < r->head_len;) {
        const char *n = r->head + o;
        size_t name_len = strlen(n);
        const char *v = n + name_len + 1;
        if (strcmp(n, name) == 0)
            return v;
        o += name_len + 1 + strlen(v) + 1;
    }
    return NULL;
}

bool app_req_is_head(const app_req *r)
{
    return r->method != NULL && strcmp(r->method, "HEAD") == 0;
}

