/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_req - requests of every protocol, and where their answers
 *	come from
 * SYNOPSIS
 *	worker_req_new(), worker_req_free(), worker_req_free_all(),
 *	worker_req_header(), worker_req_head(), worker_req_body(),
 *	worker_req_end(), worker_req_submit(), worker_req_submit_info(),
 *	worker_req_respond(), worker_req_resume(), worker_req_reset(),
 *	worker_req_alt_svc()
 * DESCRIPTION
 *	A request (wk_stream) is the same whatever carried it: an HTTP/3
 *	stream (worker_h3.c), an HTTP/2 stream (worker_h2.c) or one request
 *	of an HTTP/1.1 connection (worker_h1.c). The protocol code feeds the
 *	head with worker_req_header() and worker_req_head(), the body with
 *	worker_req_body() and worker_req_end(); the response goes back
 *	through the connection's protocol (c->proto: submit, info, resume,
 *	reset), its body through worker_body.c.
 *
 *	A complete head is offered to the response sources in turn until one
 *	takes it (wk_source): the reverse proxy (worker_proxy.c: a route of
 *	the proxy table to a group), the fast path (worker_cache.c: GET and
 *	HEAD for files the app granted, 200, 206 or 304), then the app
 *	(worker_app.c).
 *	The source that took it gets the request's body, its end, the
 *	client's progress and its departure. Answers the worker makes before
 *	any source: 400 for a head that could mean two things (check_head:
 *	Host against :authority, the authority's form, a fragment), a reset
 *	for one that declares a body it ends without, 425 Too Early for an
 *	unsafe method in 0-RTT data, 431 for an oversized head (and from the
 *	app source, 503 without an app). The
 *	worker writes the access log lines of its own answers, the app the
 *	others'. Over TCP every response carries Alt-Svc (h3 on the same
 *	port) while alt_svc_max_age is not 0, and "Alt-Svc: clear" once the
 *	worker drains.
 *
 *	A wk_stream lives from the protocol's first sight of the request to
 *	worker_req_free(); it is in its connection's list and in the worker's
 *	request-id table.
 * DIAGNOSTICS
 *	None of its own: a response the protocol refuses resets the stream.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_http.h"
#include "qd_log.h"
#include "qd_time.h"

/* local */
#include "worker.h"

/* The response sources, in the order they are offered a request. */
static const wk_source *const sources[] = {&worker_proxy_source, &worker_cache_source,
                                           &worker_app_source};

wk_stream *worker_req_new(wk_conn *c, int64_t id)
{
    worker *w = c->w;
    wk_stream *s = qd_xcalloc(1, sizeof(*s));

    s->c = c;
    s->id = id;
    s->fd = -1;
    qd_buf_init(&s->fields);
    qd_buf_init(&s->hints);
    qd_buf_init(&s->trailers);
    s->req_id = ++w->next_req_id;
    wk_map_put(&w->streams, (const uint8_t *)&s->req_id, sizeof(s->req_id), s);
    s->next = c->streams;
    if (c->streams)
        c->streams->prev = s;
    c->streams = s;
    c->nstreams++;
    c->nrequests++;
    c->streams_opened++;
    s->started_ns = worker_now();
    s->started_ms = qd_time_real_ms();
    return s;
}

/* in_inline - is |p| in the stream's own bytes? */
static bool in_inline(const wk_stream *s, const char *p)
{
    return p >= s->inl && p < s->inl + sizeof(s->inl);
}

static void free_str(wk_stream *s, char *p)
{
    if (!in_inline(s, p))
        free(p);
}

/*
 * set_str - a pseudo-header's value into |*slot|: in the stream's own bytes
 * while they last (no allocation for the usual method, scheme, authority
 * and path), else allocated.
 */
static void set_str(wk_stream *s, char **slot, const uint8_t *v, size_t len)
{
    if (*slot != NULL)
        free_str(s, *slot);
    if (len < sizeof(s->inl) - s->inl_used) {
        *slot = s->inl + s->inl_used;
        memcpy(*slot, v, len);
        (*slot)[len] = '\0';
        s->inl_used += len + 1;
    } else {
        *slot = qd_xstrndup((const char *)v, len);
    }
}

/* log_own - the access log line of an answer the worker made itself */
static void log_own(wk_stream *s)
{
    static qd_buf line, extra;
    worker *w = s->c->w;
    struct timespec now;

    if (w->access_fd < 0)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    qd_buf_reset(&extra);
    if (s->src != NULL && s->src->describe != NULL)
        s->src->describe(s, &extra);
    qd_http_log_line(&line, &now, s->c->peer, s->method, s->path, worker_conn_proto(s->c),
                     (unsigned)s->status,
                     s->filled, (double)(worker_now() - s->started_ns) / 1e6, s->c->cid_text,
                     (uint64_t)s->id, extra.len > 0 ? qd_buf_str(&extra) : NULL,
                     !s->eof || s->acked < s->filled);
    if (write(w->access_fd, line.data, line.len) < 0) {
        static qd_log_limit lim;
        qd_log_limited(&lim, QD_LOG_WARN, "access_log: %s", strerror(errno));
    }
}

void worker_req_free(wk_stream *s)
{
    wk_conn *c = s->c;
    worker *w = c->w;

    worker_metrics_request(s);
    worker_rec_request(s);
    if (s->by_worker)
        log_own(s);
    if (s->src != NULL && s->src->cancel != NULL)
        s->src->cancel(s);
    if (s->body_held > 0) /* the connection's window gets them back */
        c->proto->consumed(s, (size_t)s->body_held);
    wk_map_del(&w->streams, (const uint8_t *)&s->req_id, sizeof(s->req_id));
    if (s->prev)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    c->nstreams--;
    while (s->first != NULL) {
        wk_chunk *ch = s->first;
        s->first = ch->next;
        worker_chunk_put(w, ch);
    }
    worker_body_drop_fd(s);
    free_str(s, s->method);
    free_str(s, s->scheme);
    free_str(s, s->authority);
    free_str(s, s->path);
    free(s->grant_key);
    qd_buf_release(&s->fields);
    qd_buf_release(&s->hints);
    qd_buf_release(&s->trailers);
    free(s);
}

void worker_req_free_all(wk_conn *c)
{
    while (c->streams != NULL)
        worker_req_free(c->streams);
}

/* worker_req_resume - more body is ready: let the protocol ask again */
void worker_req_resume(wk_stream *s)
{
    s->c->proto->resume(s);
    worker_conn_mark(s->c);
}

/* worker_req_reset - abandon a response in the middle */
void worker_req_reset(wk_stream *s)
{
    s->c->proto->reset(s, false);
    worker_metrics_reset(s->c, QD_MV_LOCAL);
    worker_conn_mark(s->c);
}

/* http_date - the current time as an IMF-fixdate, formatted once a second */
static const char *http_date(void)
{
    static char text[40];
    static time_t last;
    time_t now = time(NULL);
    struct tm tm;

    if (now != last && gmtime_r(&now, &tm) != NULL) {
        strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return text;
}

/* worker_req_alt_svc - the Alt-Svc field value for a response over TCP, or NULL for none */
const char *worker_req_alt_svc(const wk_conn *c)
{
    static char text[64];
    static unsigned port;
    static long long ma;
    const worker *w = c->w;
    long long now_ma = (long long)(w->child.conf.alt_svc_max_age_ms / 1000);

    if (w->stopping)
        return "clear";
    if (w->child.conf.alt_svc_max_age_ms <= 0 || c->tcp == NULL || c->tcp->port == 0)
        return NULL;
    /* Formatted again only when the port or the max age differs from the last response's. */
    if (c->tcp->port != port || now_ma != ma) {
        port = c->tcp->port;
        ma = now_ma;
        snprintf(text, sizeof(text), "h3=\":%u\"; ma=%lld", port, ma);
    }
    return text;
}

/* worker_req_submit - the response head and its body reader */
void worker_req_submit(wk_stream *s, int status, const nghttp3_nv *extra, size_t nextra, bool body)
{
    nghttp3_nv nva[66];
    char status_text[8];
    size_t n = 0;

    snprintf(status_text, sizeof(status_text), "%d", status);
    nva[n++] = (nghttp3_nv){(uint8_t *)":status", (uint8_t *)status_text, 7, strlen(status_text),
                            NGHTTP3_NV_FLAG_NONE};
    nva[n++] = (nghttp3_nv){(uint8_t *)"server", (uint8_t *)"quicd", 6, 5, NGHTTP3_NV_FLAG_NONE};
    const char *date = http_date();
    nva[n++] = (nghttp3_nv){(uint8_t *)"date", (uint8_t *)date, 4, strlen(date),
                            NGHTTP3_NV_FLAG_NONE};
    for (size_t i = 0; i < nextra && n < 64; i++)
        nva[n++] = extra[i];
    const char *alt = s->c->proto->alt_svc ? worker_req_alt_svc(s->c) : NULL;
    if (alt != NULL)
        nva[n++] = (nghttp3_nv){(uint8_t *)"alt-svc", (uint8_t *)alt, 7, strlen(alt),
                                NGHTTP3_NV_FLAG_NONE};
    s->status = status;
    if (s->ttfb_ns == 0)
        s->ttfb_ns = worker_now();
    s->responded = true;
    if (s->c->proto->submit(s, nva, n, body) != 0)
        worker_req_reset(s);
    worker_conn_mark(s->c);
}

/* worker_req_respond - a small protocol answer made by the worker itself */
void worker_req_respond(wk_stream *s, int status, const char *text)
{
    char len[24];
    nghttp3_nv nv[2] = {
        {(uint8_t *)"content-type", (uint8_t *)"text/plain; charset=utf-8", 12, 25,
         NGHTTP3_NV_FLAG_NONE},
        {(uint8_t *)"content-length", (uint8_t *)len, 14, 0, NGHTTP3_NV_FLAG_NONE},
    };

    nv[1].valuelen = (size_t)snprintf(len, sizeof(len), "%zu", strlen(text));
    s->by_worker = true;
    bool head = s->method && strcmp(s->method, "HEAD") == 0;
    if (!head)
        worker_body_append(s, (const uint8_t *)text, strlen(text));
    s->eof = true;
    worker_req_submit(s, status, nv, 2, !head);
}

/* worker_req_submit_info - an interim response (|nv| starts with :status) */
int worker_req_submit_info(wk_stream *s, const nghttp3_nv *nv, size_t n)
{
    return s->c->proto->submit_info(s, nv, n);
}

enum head_check { HEAD_OK, HEAD_AMBIGUOUS, HEAD_MALFORMED };

/*
 * check_head - one pass over the fields, for what HTTP/2 and HTTP/3 heads
 * could get past their libraries (HTTP/1.1 heads are checked in
 * worker_h1.c already). HEAD_AMBIGUOUS (a 400) when the head could mean
 * two things to the parsers behind us (RFC 9113 8.3.1, RFC 9114 4.3.1):
 * two Host fields, a Host that differs from :authority (case aside;
 * without :authority the Host is the authority), an authority that is
 * not host[:port], a fragment in the path. HEAD_MALFORMED (a reset) when
 * a head that ends its stream (|fin|) declares a body, content-length
 * above 0 (RFC 9113 8.1.1, RFC 9114 4.1.2): nghttp3 finds that only
 * after the head went on.
 */
static enum head_check check_head(wk_stream *s, bool fin)
{
    const uint8_t *host = NULL;
    size_t hlen = 0;
    bool declares_body = false;

    for (size_t off = 0; off + 2 <= s->fields.len;) {
        const uint8_t *p = (const uint8_t *)s->fields.data + off;
        size_t flen = (size_t)p[0] << 8 | p[1];
        if (flen >= 5 && memcmp(p + 2, "host", 5) == 0) {
            if (host != NULL)
                return HEAD_AMBIGUOUS;
            host = p + 7;
            hlen = flen - 5;
        } else if (fin && flen >= 15 && memcmp(p + 2, "content-length", 15) == 0) {
            for (size_t k = 17; k < 2 + flen; k++)
                declares_body |= p[k] >= '1' && p[k] <= '9';
        }
        off += 2 + flen;
    }
    if (s->authority == NULL && host != NULL)
        set_str(s, &s->authority, host, hlen);
    size_t alen = s->authority ? strlen(s->authority) : 0;
    if ((s->authority != NULL && !qd_http_authority(s->authority, alen)) ||
        (host != NULL && (hlen != alen || strncasecmp((const char *)host, s->authority, alen) != 0)) ||
        strchr(s->path, '#') != NULL)
        return HEAD_AMBIGUOUS;
    return declares_body ? HEAD_MALFORMED : HEAD_OK;
}

static bool safe_method(const char *m)
{
    return m && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0);
}

/* send_head - the request head is complete */
static void send_head(wk_stream *s, bool fin)
{
    if (s->method == NULL || s->path == NULL) { /* a malformed request: reset it */
        s->c->proto->reset(s, true);
        worker_metrics_reset(s->c, QD_MV_LOCAL);
        return;
    }
    switch (check_head(s, fin)) {
    case HEAD_AMBIGUOUS:
        worker_req_respond(s, 400, "400 Bad Request\n");
        return;
    case HEAD_MALFORMED:
        s->c->proto->reset(s, true);
        worker_metrics_reset(s->c, QD_MV_LOCAL);
        return;
    case HEAD_OK:
        break;
    }
    if (s->early && !safe_method(s->method)) {
        worker_req_respond(s, 425, "425 Too Early\n");
        return;
    }
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
        if (sources[i]->start(s, fin)) {
            s->src = sources[i];
            return;
        }
}

/*
 * worker_req_header - one field of the request head: a pseudo-header
 * (:method, :path, :authority, :scheme; others are ignored) or a field
 * the stream collects for REQ_HEAD. Past WORKER_MAX_HEAD bytes nothing
 * more is kept and worker_req_head answers 431. False when the head is
 * past what a connection may send (worker_guard_section): the caller
 * stops decoding it and closes the connection.
 */
bool worker_req_header(wk_stream *s, const uint8_t *name, size_t nlen, const uint8_t *value,
                       size_t vlen)
{
    char **slot = NULL;

    if (!worker_guard_section(s, nlen + vlen + 32, false))
        return false;
    if (s->head_bytes > WORKER_MAX_HEAD)
        return true;
    if (nlen > 0 && name[0] == ':') {
        if (nlen == 7 && memcmp(name, ":method", 7) == 0)
            slot = &s->method;
        else if (nlen == 5 && memcmp(name, ":path", 5) == 0)
            slot = &s->path;
        else if (nlen == 10 && memcmp(name, ":authority", 10) == 0)
            slot = &s->authority;
        else if (nlen == 7 && memcmp(name, ":scheme", 7) == 0)
            slot = &s->scheme;
        if (slot != NULL)
            set_str(s, slot, value, vlen);
        return true;
    }
    uint8_t len2[2] = {(uint8_t)((nlen + 1 + vlen) >> 8), (uint8_t)(nlen + 1 + vlen)};
    qd_buf_append(&s->fields, (const char *)len2, 2);
    qd_buf_append(&s->fields, (const char *)name, nlen);
    qd_buf_append(&s->fields, "", 1);
    qd_buf_append(&s->fields, (const char *)value, vlen);
    return true;
}

/* worker_req_head - the request head is complete (|fin|: and there is no body) */
void worker_req_head(wk_stream *s, bool fin)
{
    s->head_done = true;
    if (s->head_bytes > WORKER_MAX_HEAD)
        worker_req_respond(s, 431, "431 Request Header Fields Too Large\n");
    else
        send_head(s, fin);
    qd_buf_release(&s->fields);
    if (fin)
        s->req_done = true;
}

/* worker_req_body - request body bytes, for the source that took the request */
void worker_req_body(wk_stream *s, const uint8_t *data, size_t len)
{
    if (s->hold_body)
        s->body_held += len;
    if (s->src != NULL && s->src->body != NULL)
        s->src->body(s, data, len);
}

/* worker_req_consumed - the source took |n| held body bytes: the client may send more */
void worker_req_consumed(wk_stream *s, size_t n)
{
    if (n > s->body_held)
        n = (size_t)s->body_held;
    if (n == 0)
        return;
    s->body_held -= n;
    s->c->proto->consumed(s, n);
    worker_conn_mark(s->c);
}

/* worker_req_end - the request body is complete */
void worker_req_end(wk_stream *s)
{
    if (s->req_done)
        return;
    s->req_done = true;
    if (s->src != NULL && s->src->end != NULL)
        s->src->end(s);
}

/* worker_req_handshake_done - the handshake completed: sources that waited for it go on */
void worker_req_handshake_done(wk_conn *c)
{
    for (wk_stream *s = c->streams, *next; s != NULL; s = next) {
        next = s->next;
        if (s->src != NULL && s->src->handshake_done != NULL)
            s->src->handshake_done(s);
    }
}

/* worker_req_trailers - the response trailers as name/value pairs (0: none) */
size_t worker_req_trailers(const wk_stream *s, nghttp3_nv *nv, size_t cap)
{
    size_t n = 0;

    for (size_t off = 0; off + 2 <= s->trailers.len && n < cap;) {
        uint8_t *f = (uint8_t *)s->trailers.data + off;
        size_t flen = (size_t)f[0] << 8 | f[1];
        uint8_t *nul = memchr(f + 2, '\0', flen);
        off += 2 + flen;
        if (nul != NULL && nul > f + 2)
            nv[n++] = (nghttp3_nv){f + 2, nul + 1, (size_t)(nul - (f + 2)),
                                   flen - (size_t)(nul - (f + 2)) - 1, NGHTTP3_NV_FLAG_NONE};
    }
    return n;
}
