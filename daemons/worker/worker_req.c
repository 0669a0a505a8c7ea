/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_req - requests of every protocol: the app protocol, bodies,
 *	the fast path
 * SYNOPSIS
 *	worker_req_new(), worker_req_free(), worker_req_free_all(),
 *	worker_req_header(), worker_req_head(), worker_req_body(),
 *	worker_req_end(), worker_req_acked(), worker_req_read_vec(),
 *	worker_req_pull(), worker_req_app_message(), worker_req_app_down(),
 *	worker_chunk_get(), worker_chunk_put(), worker_app_send_failed()
 * DESCRIPTION
 *	A request (wk_stream) is the same whatever carried it: an HTTP/3
 *	stream (worker_h3.c), an HTTP/2 stream (worker_h2.c) or one request
 *	of an HTTP/1.1 connection (worker_h1.c). The protocol code feeds the
 *	head with worker_req_header() and worker_req_head(), the body with
 *	worker_req_body() and worker_req_end(); the response goes back
 *	through the protocol's submit, info, resume and reset (c->tcp says
 *	which: NULL for QUIC). A complete request head goes to the app as
 *	QD_MSG_REQ_HEAD, its body as QD_MSG_REQ_BODY; the app answers with
 *	QD_MSG_RESP_HEAD and either an open descriptor with an offset and a
 *	length, or QD_MSG_RESP_BODY chunks under a credit window (qd_ipc.h).
 *	A file body is read with pread into at most WORKER_STREAM_CHUNKS
 *	pooled chunks per stream; a chunk is reused once the client has
 *	acknowledged it (QUIC) or it was handed to TLS (TCP), so a slow client
 *	holds a bounded amount of memory and the app never copies a body.
 *
 *	Responses the worker makes itself: the fast path, GET and HEAD for
 *	files the app granted (worker_cache.c), as 200, 206 or 304 with the
 *	app's headers and hints; and protocol answers: 503 when no app is
 *	connected (it comes back when the master hands over a new channel),
 *	425 Too Early for an unsafe method in 0-RTT data, 431 for an oversized
 *	head. The worker writes their access log lines, the app the others'.
 *	Over TCP every response carries Alt-Svc (h3 on the same port) while
 *	alt_svc_max_age is not 0, and "Alt-Svc: clear" once the worker drains.
 *
 *	A wk_stream lives from the protocol's first sight of the request to
 *	worker_req_free(); it is in its connection's list and in the worker's
 *	request-id table.
 * DIAGNOSTICS
 *	Messages the app channel refuses are counted and logged; the stream
 *	is reset.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_http.h"
#include "qd_log.h"
#include "qd_time.h"

/* local */
#include "worker.h"

#define MAX_FREE_CHUNKS 256
#define CREDIT_BATCH (64 * 1024)

/*
 * The one outgoing message: filled and sent within a single function call,
 * never kept across a callback (a request's own state lives in its stream).
 */
static qd_ipc_msg out_msg;

/* worker_app_send_failed - count and log (rate-limited) a message the app channel refused */
void worker_app_send_failed(worker *w, const char *what, int rv)
{
    static qd_log_limit lim;

    w->app_send_failures++;
    qd_log_limited(&lim, QD_LOG_WARN, "app channel refused a %s (%s, %zu bytes queued); %" PRIu64
                   " refused so far", what, qd_strerror(rv), qd_chan_queued(w->app),
                   w->app_send_failures);
}

/*
 * worker_chunk_get - a chunk for |want| more body bytes: one of exactly
 * that size when it is small (a small file's whole body: malloc serves
 * those from its bins, while a fresh 64 KiB block beyond the pool costs
 * page faults), else a pooled WORKER_CHUNK.
 */
wk_chunk *worker_chunk_get(worker *w, size_t want)
{
    wk_chunk *ch = w->free_chunks;

    if (want < WORKER_SMALL_CHUNK) {
        ch = qd_xmalloc(sizeof(*ch) + (want > 0 ? want : 1));
        ch->cap = want > 0 ? want : 1;
    } else if (ch != NULL) {
        w->free_chunks = ch->next;
        w->nfree_chunks--;
    } else {
        ch = qd_xmalloc(sizeof(*ch) + WORKER_CHUNK);
        ch->cap = WORKER_CHUNK;
    }
    ch->next = NULL;
    ch->len = 0;
    return ch;
}

void worker_chunk_put(worker *w, wk_chunk *ch)
{
    if (ch->cap != WORKER_CHUNK || w->nfree_chunks >= MAX_FREE_CHUNKS) {
        free(ch);
        return;
    }
    ch->next = w->free_chunks;
    w->free_chunks = ch;
    w->nfree_chunks++;
}

/* --- streams ---------------------------------------------------------------- */

/* cancel_at_app - tell the app to forget the request of |s| */
static void cancel_at_app(wk_stream *s)
{
    worker *w = s->c->w;
    int rv;

    s->head_sent = false; /* nothing more goes to the app for it */
    if (w->app == NULL)
        return;
    qd_ipc_msg_init(&out_msg, QD_MSG_REQ_CANCEL, 0);
    qd_ipc_put_u64(&out_msg, QD_F_STREAM, s->req_id);
    if ((rv = qd_chan_send_ctl(w->app, &out_msg)) < 0)
        worker_app_send_failed(w, "cancel", rv); /* the app forgets it with the channel */
}

/*
 * worker_req_finish_all - the worker drains: the app ends its open-ended
 * responses (event streams) cleanly, so their clients see a complete
 * response and reconnect (to the next generation) instead of an error
 * at the drain deadline
 */
void worker_req_finish_all(worker *w)
{
    for (int list = 0; list < 2; list++)
        for (wk_conn *c = list ? w->tconns : w->conns; c != NULL; c = c->next)
            for (wk_stream *s = c->streams; s != NULL; s = s->next) {
                if (!s->head_sent || s->eof || w->app == NULL)
                    continue;
                qd_ipc_msg_init(&out_msg, QD_MSG_REQ_CANCEL, 0);
                qd_ipc_put_u64(&out_msg, QD_F_STREAM, s->req_id);
                qd_ipc_put_u32(&out_msg, QD_F_FLAGS, QD_REQ_F_FINISH);
                int rv = qd_chan_send_ctl(w->app, &out_msg);
                if (rv < 0)
                    worker_app_send_failed(w, "finish", rv);
            }
}

wk_stream *worker_req_new(wk_conn *c, int64_t id)
{
    worker *w = c->w;
    wk_stream *s = qd_xcalloc(1, sizeof(*s));

    s->c = c;
    s->id = id;
    s->fd = -1;
    qd_buf_init(&s->fields);
    qd_buf_init(&s->hints);
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

/* drop_fd - done with the body's descriptor: close it, or release the cache entry's */
static void drop_fd(wk_stream *s)
{
    if (s->file != NULL)
        worker_cache_unref(s->file);
    else if (s->fd >= 0)
        close(s->fd);
    s->file = NULL;
    s->mem = NULL;
    s->fd = -1;
}

/* log_own - the access log line of an answer the worker made itself */
static void log_own(wk_stream *s)
{
    static qd_buf line;
    worker *w = s->c->w;
    struct timespec now;

    if (w->access_fd < 0)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    qd_http_log_line(&line, &now, s->c->peer, s->method, s->path, worker_conn_proto(s->c),
                     (unsigned)s->status,
                     s->filled, (double)(worker_now() - s->started_ns) / 1e6, s->c->cid_text,
                     (uint64_t)s->id, !s->eof || s->acked < s->filled);
    if (write(w->access_fd, line.data, line.len) < 0) {
        static qd_log_limit lim;
        qd_log_limited(&lim, QD_LOG_WARN, "access_log: %s", strerror(errno));
    }
}

void worker_req_free(wk_stream *s)
{
    wk_conn *c = s->c;
    worker *w = c->w;

    worker_rec_request(s);
    if (s->by_worker)
        log_own(s);
    if (s->head_sent && (!s->eof || !s->req_done))
        cancel_at_app(s); /* the app may still hold state for it */
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
    drop_fd(s);
    free_str(s, s->method);
    free_str(s, s->scheme);
    free_str(s, s->authority);
    free_str(s, s->path);
    free(s->grant_key);
    qd_buf_release(&s->fields);
    qd_buf_release(&s->hints);
    free(s);
}

void worker_req_free_all(wk_conn *c)
{
    while (c->streams != NULL)
        worker_req_free(c->streams);
}

/* push_chunk - |ch| goes at the end of the stream's body queue */
static void push_chunk(wk_stream *s, wk_chunk *ch)
{
    if (s->last)
        s->last->next = ch;
    else
        s->first = ch;
    s->last = ch;
    s->nchunks++;
}

/* append - add bytes to the stream's body queue */
static void append(wk_stream *s, const uint8_t *data, size_t len)
{
    while (len > 0) {
        wk_chunk *ch = s->last;
        if (ch == NULL || ch->len == ch->cap) {
            ch = worker_chunk_get(s->c->w, WORKER_CHUNK);
            push_chunk(s, ch);
        }
        size_t n = ch->cap - ch->len < len ? ch->cap - ch->len : len;
        memcpy(ch->data + ch->len, data, n);
        ch->len += n;
        s->filled += n;
        data += n;
        len -= n;
    }
}

/* fill_from_fd - read file body into free chunk slots; -1 on a read error */
static int fill_from_fd(wk_stream *s)
{
    while (s->fd >= 0 && s->fd_left > 0 && s->nchunks < WORKER_STREAM_CHUNKS) {
        size_t want = s->fd_left < WORKER_CHUNK ? (size_t)s->fd_left : WORKER_CHUNK;
        wk_chunk *ch = worker_chunk_get(s->c->w, want);
        ssize_t n;
        do
            n = pread(s->fd, ch->data, want, (off_t)s->fd_off);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            worker_chunk_put(s->c->w, ch);
            qd_warn("reading a response body: %s", n < 0 ? strerror(errno) : "file shrank");
            return -1;
        }
        ch->len = (size_t)n;
        push_chunk(s, ch);
        s->filled += (uint64_t)n;
        s->fd_off += (uint64_t)n;
        s->fd_left -= (uint64_t)n;
    }
    if (s->fd >= 0 && s->fd_left == 0) {
        drop_fd(s);
        s->eof = true;
    }
    return 0;
}

/* resume - more body is ready: let nghttp3 ask again */
static void resume(wk_stream *s)
{
    if (s->c->tcp != NULL)
        worker_tcp_resume(s);
    else
        worker_h3_resume(s);
    worker_conn_mark(s->c);
}

/* reset - abandon a response in the middle */
static void reset(wk_stream *s)
{
    if (s->c->tcp != NULL)
        worker_tcp_reset(s);
    else
        worker_h3_reset(s, NGHTTP3_H3_INTERNAL_ERROR);
    worker_conn_mark(s->c);
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
    reset(s);
}

/*
 * worker_req_read_vec - point |vec| at body bytes not yet handed to the
 * protocol (they stay ours until worker_req_acked). Returns how many
 * vectors, with |*eof| set once the body is complete, or -1 when nothing
 * is ready yet (the stream is then blocked until resumed).
 */
int worker_req_read_vec(wk_stream *s, nghttp3_vec *vec, size_t veccnt, bool *eof)
{
    size_t n = 0;

    *eof = false;
    if (s->mem != NULL) { /* a cached small file: all of it, from the cache's memory */
        if (s->handed < s->filled && veccnt > 0) {
            vec[0].base = (uint8_t *)s->mem + s->handed;
            vec[0].len = (size_t)(s->filled - s->handed);
            s->handed = s->filled;
            n = 1;
        }
        *eof = true;
        return (int)n;
    }
    /* Chunks are freed whole: s->first begins ack_skip bytes before s->acked. */
    uint64_t off = s->acked - s->ack_skip;
    for (wk_chunk *ch = s->first; ch != NULL && n < veccnt; off += ch->len, ch = ch->next) {
        if (off + ch->len <= s->handed)
            continue;
        size_t skip = s->handed > off ? (size_t)(s->handed - off) : 0;
        vec[n].base = ch->data + skip;
        vec[n].len = ch->len - skip;
        s->handed += vec[n].len;
        n++;
    }
    if (s->eof && s->handed == s->filled) {
        *eof = true;
        return (int)n;
    }
    if (n == 0) {
        s->blocked = true;
        return -1;
    }
    return (int)n;
}

/*
 * worker_req_pull - copy up to |cap| body bytes into |buf| for a protocol
 * that copies (HTTP/2, HTTP/1.1 over TLS): they count as delivered at
 * once, so their chunks are recycled and more of the file is read.
 * Returns the bytes copied, with |*eof| once the body is complete, or -1
 * when nothing is ready yet (blocked until resumed).
 */
ssize_t worker_req_pull(wk_stream *s, uint8_t *buf, size_t cap, bool *eof)
{
    nghttp3_vec vec[WORKER_STREAM_CHUNKS + 1];
    size_t got = 0;
    uint64_t start = s->handed;

    *eof = false;
    if (s->mem != NULL) {
        size_t n = s->filled - s->handed < cap ? (size_t)(s->filled - s->handed) : cap;
        memcpy(buf, s->mem + s->handed, n);
        s->handed += n;
        s->acked += n;
        *eof = s->handed == s->filled;
        return (ssize_t)n;
    }
    while (got < cap) {
        int n = worker_req_read_vec(s, vec, 1, eof);
        if (n < 0) {
            if (got > 0)
                s->blocked = false; /* we did get something */
            break;
        }
        if (n == 0)
            break;
        size_t take = vec[0].len < cap - got ? vec[0].len : cap - got;
        memcpy(buf + got, vec[0].base, take);
        got += take;
        /* hand back what did not fit */
        s->handed -= vec[0].len - take;
        if (take < vec[0].len)
            *eof = false;
        if (*eof)
            break;
    }
    if (s->handed > start)
        worker_req_acked(s, s->handed - start);
    if (got == 0 && !*eof)
        return -1;
    return (ssize_t)got;
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

/* submit - the response head and its body reader */
static void submit(wk_stream *s, int status, const nghttp3_nv *extra, size_t nextra, bool body)
{
    nghttp3_nv nva[66];
    char status_text[8];
    size_t n = 0;
    int rv;

    snprintf(status_text, sizeof(status_text), "%d", status);
    nva[n++] = (nghttp3_nv){(uint8_t *)":status", (uint8_t *)status_text, 7, strlen(status_text),
                            NGHTTP3_NV_FLAG_NONE};
    nva[n++] = (nghttp3_nv){(uint8_t *)"server", (uint8_t *)"quicd", 6, 5, NGHTTP3_NV_FLAG_NONE};
    const char *date = http_date();
    nva[n++] = (nghttp3_nv){(uint8_t *)"date", (uint8_t *)date, 4, strlen(date),
                            NGHTTP3_NV_FLAG_NONE};
    for (size_t i = 0; i < nextra && n < 64; i++)
        nva[n++] = extra[i];
    const char *alt = s->c->tcp != NULL ? worker_req_alt_svc(s->c) : NULL;
    if (alt != NULL)
        nva[n++] = (nghttp3_nv){(uint8_t *)"alt-svc", (uint8_t *)alt, 7, strlen(alt),
                                NGHTTP3_NV_FLAG_NONE};
    s->status = status;
    if (s->ttfb_ns == 0)
        s->ttfb_ns = worker_now();
    s->responded = true;
    if (s->c->tcp != NULL)
        rv = worker_tcp_submit(s, nva, n, body);
    else
        rv = worker_h3_submit(s, nva, n, body);
    if (rv != 0)
        reset(s);
    worker_conn_mark(s->c);
}

/* respond_local - a small protocol answer made by the worker itself */
static void respond_local(wk_stream *s, int status, const char *text)
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
        append(s, (const uint8_t *)text, strlen(text));
    s->eof = true;
    submit(s, status, nv, 2, !head);
}

/* --- the fast path: answers from granted files (worker_cache.c) ------------- */

/*
 * req_field - request header |name| (lowercase) copied as a C string into
 * |buf|: 1, or 0 when absent, or -1 when it is longer than |cap| or sent
 * twice (the app then decides).
 */
static int req_field(const wk_stream *s, const char *name, char *buf, size_t cap)
{
    size_t nlen = strlen(name);
    int found = 0;

    for (size_t off = 0; off + 2 <= s->fields.len;) {
        const uint8_t *p = (const uint8_t *)s->fields.data + off;
        size_t flen = (size_t)p[0] << 8 | p[1];
        if (flen > nlen && p[2 + nlen] == '\0' && memcmp(p + 2, name, nlen) == 0) {
            size_t vlen = flen - nlen - 1;
            if (found || vlen >= cap)
                return -1;
            memcpy(buf, p + 3 + nlen, vlen);
            buf[vlen] = '\0';
            found = 1;
        }
        off += 2 + flen;
    }
    return found;
}

/* is_validator - the fields a 304 repeats (as the app's does) */
static bool is_validator(const nghttp3_nv *nv)
{
    static const char *const names[] = {"last-modified", "etag", "cache-control",
                                        "accept-ranges", "vary"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (nv->namelen == strlen(names[i]) && memcmp(nv->name, names[i], nv->namelen) == 0)
            return true;
    return false;
}

/* submit_info - an interim response (|nv| starts with :status) through the stream's protocol */
static int submit_info(wk_stream *s, const nghttp3_nv *nv, size_t n)
{
    return s->c->tcp != NULL ? worker_tcp_submit_info(s, nv, n) : worker_h3_submit_info(s, nv, n);
}

/* send_hints - the 103 the app sent before this file's 200 */
static void send_hints(wk_stream *s, const wk_file *f)
{
    nghttp3_nv nv[WK_FILE_MAX_FIELDS + 1];

    if (f->nhints == 0)
        return;
    nv[0] = (nghttp3_nv){(uint8_t *)":status", (uint8_t *)"103", 7, 3, NGHTTP3_NV_FLAG_NONE};
    memcpy(nv + 1, f->hints, f->nhints * sizeof(nv[0]));
    if (submit_info(s, nv, f->nhints + 1) != 0)
        reset(s);
}

/* use_mem - the body is [off, off + len) of the cache entry's memory */
static void use_mem(wk_stream *s, uint64_t off, uint64_t len)
{
    s->mem = s->file->data + off;
    s->filled = len;
    s->eof = true;
}

/*
 * fast_answer - answer a GET or HEAD from a granted file, as the app would
 * have: 304 by If-None-Match (else If-Modified-Since), 206 for one
 * satisfiable range (subject to If-Range), else 200; HEAD without a body.
 * Returns false to send the request to the app: not cacheable, not
 * cached, expired, an unsatisfiable range (the app makes the 416), or a
 * header the worker does not read alone (too long, or sent twice). A GET
 * that misses remembers its key, for the grant the app may send back.
 */
static bool fast_answer(wk_stream *s)
{
    static char key[2 * WORKER_MAX_HEAD + 2];
    worker *w = s->c->w;
    char ae[1024], inm[1024], ims[64], rng[256], ir[256], clen[24], crange[80];
    nghttp3_nv nv[WK_FILE_MAX_FIELDS + 2];
    uint64_t off = 0, len;
    size_t n = 0, plen, alen, keylen;
    int has_ae, has_inm, has_ims, has_rng = 0, has_ir = 0, range = 0, status;
    bool head, not_modified;
    wk_file *f;
    time_t t;

    if (w->child.conf.file_cache_max <= 0)
        return false;
    head = strcmp(s->method, "HEAD") == 0;
    if ((!head && strcmp(s->method, "GET") != 0) || s->path[0] != '/' || strchr(s->path, '?'))
        return false;
    if ((has_ae = req_field(s, "accept-encoding", ae, sizeof(ae))) < 0)
        return false;
    plen = strlen(s->path);
    alen = has_ae ? strlen(ae) : 0;
    if (plen + 1 + alen > sizeof(key))
        return false;
    memcpy(key, s->path, plen + 1);
    memcpy(key + plen + 1, ae, alen);
    keylen = plen + 1 + alen;
    if ((f = worker_cache_find(w, key, keylen)) == NULL) {
        if (!head) {
            s->grant_key = qd_xmalloc(keylen);
            memcpy(s->grant_key, key, keylen);
            s->grant_keylen = keylen;
        }
        return false;
    }
    has_inm = req_field(s, "if-none-match", inm, sizeof(inm));
    has_ims = req_field(s, "if-modified-since", ims, sizeof(ims));
    if (!head) {
        has_rng = req_field(s, "range", rng, sizeof(rng));
        has_ir = req_field(s, "if-range", ir, sizeof(ir));
    }
    if (has_inm < 0 || has_ims < 0 || has_rng < 0 || has_ir < 0)
        return false;
    /* RFC 9110 13.2.2: If-None-Match, when present, decides alone. */
    if (has_inm)
        not_modified = qd_http_etag_match(inm, f->etag);
    else
        not_modified = has_ims && qd_http_date_parse(ims, &t) == 0 && f->mtime <= t;
    len = f->size;
    if (!not_modified && has_rng) {
        bool ir_ok = true;
        if (has_ir)
            ir_ok = ir[0] == '"' ? strcmp(ir, f->etag) == 0
                                 : qd_http_date_parse(ir, &t) == 0 && t == f->mtime;
        if (ir_ok && (range = qd_http_range_parse(rng, f->size, &off, &len)) < 0)
            return false;
    }
    s->by_worker = true;
    w->requests++;
    w->cache.hits++;
    if (not_modified) {
        for (size_t i = 0; i < f->nnv; i++)
            if (is_validator(&f->nv[i]))
                nv[n++] = f->nv[i];
        s->eof = true;
        submit(s, 304, nv, n, false);
        return true;
    }
    send_hints(s, f);
    memcpy(nv, f->nv, f->nnv * sizeof(nv[0]));
    n = f->nnv;
    status = range > 0 ? 206 : 200;
    if (range > 0)
        nv[n++] = (nghttp3_nv){(uint8_t *)"content-range", (uint8_t *)crange, 13,
                               (size_t)snprintf(crange, sizeof(crange),
                                                "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, off,
                                                off + len - 1, f->size),
                               NGHTTP3_NV_FLAG_NONE};
    nv[n++] = (nghttp3_nv){(uint8_t *)"content-length", (uint8_t *)clen, 14,
                           (size_t)snprintf(clen, sizeof(clen), "%" PRIu64, len),
                           NGHTTP3_NV_FLAG_NONE};
    if (head || len == 0) {
        s->eof = true;
        submit(s, status, nv, n, false);
        return true;
    }
    s->file = f;
    f->refs++;
    if (f->data != NULL) {
        use_mem(s, off, len);
        submit(s, status, nv, n, true);
        return true;
    }
    s->fd = f->fd;
    s->fd_off = off;
    s->fd_left = len;
    if (fill_from_fd(s) < 0) {
        reset(s);
        return true;
    }
    submit(s, status, nv, n, true);
    return true;
}

/*
 * take_grant - the app granted this 200 (QD_RESP_F_GRANT): keep the file
 * and its fields, with the hints that came before, for later requests of
 * the same key. The stream then reads through the cache's descriptor.
 */
static void take_grant(wk_stream *s, const nghttp3_nv *nv, size_t n, uint64_t length)
{
    nghttp3_nv hv[WK_FILE_MAX_FIELDS];
    size_t nh = 0;
    wk_file *f;

    for (size_t off = 0; off + 2 <= s->hints.len && nh < WK_FILE_MAX_FIELDS;) {
        const uint8_t *p = (const uint8_t *)s->hints.data + off;
        size_t flen = (size_t)p[0] << 8 | p[1];
        const uint8_t *nul = memchr(p + 2, '\0', flen);
        if (nul != NULL)
            hv[nh++] = (nghttp3_nv){(uint8_t *)p + 2, (uint8_t *)nul + 1, (size_t)(nul - p - 2),
                                    flen - (size_t)(nul - p - 2) - 1, NGHTTP3_NV_FLAG_NONE};
        off += 2 + flen;
    }
    f = worker_cache_put(s->c->w, s->grant_key, s->grant_keylen, s->fd, length, nv, n, hv, nh);
    if (f != NULL) {
        s->file = f;
        s->c->w->cache.grants++;
    }
}

/* --- requests towards the app ------------------------------------------------ */

static bool safe_method(const char *m)
{
    return m && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0);
}

/* send_head - the request head is complete */
static void send_head(wk_stream *s, bool fin)
{
    worker *w = s->c->w;

    if (s->method == NULL || s->path == NULL) { /* a malformed request: reset it */
        if (s->c->tcp != NULL)
            worker_tcp_reset(s);
        else
            worker_h3_reset(s, NGHTTP3_H3_MESSAGE_ERROR);
        return;
    }
    if (s->early && !safe_method(s->method)) {
        respond_local(s, 425, "425 Too Early\n");
        return;
    }
    if (fast_answer(s))
        return;
    if (w->app == NULL) {
        respond_local(s, 503, "503 Service Unavailable\n");
        return;
    }
    qd_ipc_msg *m = &out_msg;
    qd_ipc_msg_init(m, QD_MSG_REQ_HEAD, 0);
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
            respond_local(s, 431, "431 Request Header Fields Too Large\n");
            return;
        }
        off += 2 + flen;
    }
    qd_buf_release(&s->fields); /* the head is complete: the fields are not needed again */
    int rv = qd_chan_send(w->app, m);
    if (rv < 0) {
        worker_app_send_failed(w, "request head", rv);
        respond_local(s, 503, "503 Service Unavailable\n");
        return;
    }
    s->head_sent = true;
    w->requests++;
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
        respond_local(s, 431, "431 Request Header Fields Too Large\n");
    else
        send_head(s, fin);
    qd_buf_release(&s->fields);
    if (fin)
        s->req_done = true;
}

/* worker_req_body - request body bytes: on to the app, up to max_request_body and a chunk */
void worker_req_body(wk_stream *s, const uint8_t *data, size_t len)
{
    worker *w = s->c->w;

    if (!s->head_sent || w->app == NULL)
        return;
    s->body_in += len;
    if (s->body_in > (uint64_t)w->child.conf.max_request_body + QD_IPC_MAX_CHUNK)
        return; /* the app has answered 413 by now; drop the rest */
    while (len > 0) {
        size_t n = len < QD_IPC_MAX_CHUNK ? len : QD_IPC_MAX_CHUNK;
        qd_ipc_msg_init(&out_msg, QD_MSG_REQ_BODY, 0);
        qd_ipc_put_u64(&out_msg, QD_F_STREAM, s->req_id);
        qd_ipc_put_bytes(&out_msg, QD_F_BODY, data, n);
        qd_ipc_put_u32(&out_msg, QD_F_FLAGS, 0);
        int rv = qd_chan_send(w->app, &out_msg);
        if (rv < 0) {
            abandon(s, "request body", rv);
            return;
        }
        data += n;
        len -= n;
    }
}

/* worker_req_end - the request body is complete */
void worker_req_end(wk_stream *s)
{
    if (s->req_done)
        return;
    s->req_done = true;
    if (s->head_sent && s->c->w->app != NULL) {
        qd_ipc_msg_init(&out_msg, QD_MSG_REQ_BODY, 0);
        qd_ipc_put_u64(&out_msg, QD_F_STREAM, s->req_id);
        qd_ipc_put_u32(&out_msg, QD_F_FLAGS, QD_REQ_F_END);
        int rv = qd_chan_send_ctl(s->c->w->app, &out_msg);
        if (rv < 0)
            abandon(s, "request end", rv);
    }
}

/*
 * worker_req_acked - |len| more response body bytes were delivered (QUIC:
 * acknowledged; TCP: handed to TLS): recycle their chunks, credit the app,
 * read more of the file.
 */
void worker_req_acked(wk_stream *s, uint64_t len)
{
    worker *w = s->c->w;

    s->acked += len;
    s->ack_skip += len;
    /* Free (recycle) the chunks the client has acknowledged completely. */
    while (s->first != NULL && s->first->len <= s->ack_skip) {
        wk_chunk *ch = s->first;
        s->ack_skip -= ch->len;
        s->first = ch->next;
        if (s->first == NULL)
            s->last = NULL;
        s->nchunks--;
        worker_chunk_put(w, ch);
    }
    if (s->body_from_app) {
        s->credit_due += len;
        if ((s->credit_due >= CREDIT_BATCH || s->eof) && w->app != NULL && s->credit_due > 0) {
            qd_ipc_msg_init(&out_msg, QD_MSG_RESP_CREDIT, 0);
            qd_ipc_put_u64(&out_msg, QD_F_STREAM, s->req_id);
            qd_ipc_put_u32(&out_msg, QD_F_CREDIT, (uint32_t)s->credit_due);
            int rv = qd_chan_send_ctl(w->app, &out_msg);
            if (rv < 0) {
                /* without it the app would wait for credit forever */
                abandon(s, "credit", rv);
                return;
            }
            s->credit_due = 0;
        }
    }
    if (s->fd >= 0) {
        uint64_t before = s->filled;
        if (fill_from_fd(s) < 0) {
            reset(s);
            return;
        }
        if (s->filled > before || s->eof)
            resume(s);
    }
}

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
            take_grant(s, nv, n - 1, length); /* the fields without content-length */
        if (s->file != NULL && s->file->data != NULL) {
            s->fd = -1; /* now the cache's memory */
            use_mem(s, 0, length);
            submit(s, (int)status, nv, n, true);
            return;
        }
        s->fd_off = off;
        s->fd_left = length;
        s->eof = length == 0;
        if (fill_from_fd(s) < 0) {
            reset(s);
            return;
        }
        submit(s, (int)status, nv, n, true);
        return;
    }
    if (flags & QD_RESP_F_END) {
        s->eof = true;
        submit(s, (int)status, nv, n, false);
        return;
    }
    s->body_from_app = true;
    submit(s, (int)status, nv, n, true);
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
    if (submit_info(s, nv, n) != 0)
        reset(s);
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
        reset(s);
        return;
    }
    if (len > 0)
        append(s, body, len);
    if (flags & QD_RESP_F_END)
        s->eof = true;
    resume(s);
}

void worker_req_app_message(worker *w, qd_ipc_msg *m)
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
                respond_local(s, 503, "503 Service Unavailable\n");
            else if (s->body_from_app && !s->eof)
                reset(s);
        }
    }
}

void worker_req_app_down(worker *w)
{
    app_down_conns(w->conns);
    app_down_conns(w->tconns);
    worker_conn_flush_dirty(w);
}
