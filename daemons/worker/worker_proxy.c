/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_proxy - the reverse proxy as a response source
 * SYNOPSIS
 *	worker_proxy_source, worker_proxy_connected(),
 *	worker_proxy_answer_head(), worker_proxy_answer_info(),
 *	worker_proxy_answer_body(), worker_proxy_answer_end(),
 *	worker_proxy_failed(), worker_proxy_wrote(), worker_proxy_wake(),
 *	worker_proxy_sweep_start()
 * DESCRIPTION
 *	A request whose host and path match a route to a group (the proxy
 *	table, worker_route.c) is sent to one of the group's servers over
 *	HTTP/1.1, whatever protocol the client speaks: a kept-alive
 *	connection from the server's pool, or a new one the upstream daemon
 *	connects (worker_upstream.c). The request head is rewritten for
 *	HTTP/1.1: the route's prefix stripped if it says so, Host from the
 *	authority, connection-specific fields dropped, cookies joined,
 *	Forwarded, X-Forwarded-For/-Proto/-Host and Via set (any the client
 *	sent are dropped: a client cannot choose what the upstream believes
 *	about it, unless it is another proxy in a trust network of the
 *	table: then its Forwarded and X-Forwarded-For are kept and extended,
 *	its X-Forwarded-Proto and -Host kept), Early-Data: 1 for a request that came in 0-RTT
 *	(RFC 8470). A body without a length goes out in chunked encoding.
 *
 *	Bodies stream both ways under flow control: the client's body is
 *	consumed (its window reopened, worker_req_consumed) only while less
 *	than WK_PROXY_SEND_MAX bytes wait for the upstream socket; the
 *	answer is read only while the client has less than WK_PROXY_WINDOW
 *	to take (worker_upconn.c).
 *
 *	Failures: a connection that cannot be made moves the request to the
 *	next server (any method); one that breaks before any byte of the
 *	answer is tried again, on a new connection, for a method that may
 *	be repeated or a request not sent at all, while the request is
 *	small enough to have been kept (WK_PROXY_REPLAY_MAX) and the
 *	group's retries last. A kept-alive connection the upstream closed
 *	under us (the keep-alive race) does not count against its server.
 *	An answer that started is never tried again: the stream is reset.
 *	Otherwise: 502 (no connection, a bad answer), 503 (no server up,
 *	or the group's queue full), 504 (connect_timeout, send_timeout,
 *	read_timeout).
 * DIAGNOSTICS
 *	Each failure is logged at debug level with its cause.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_http.h"
#include "qd_log.h"

/* local */
#include "worker.h"

static void acquire(wk_proxy *px);
static void handshake_done(wk_stream *s);

static wk_proxy *px_of(wk_stream *s)
{
    return s->src == &worker_proxy_source ? s->src_data : NULL;
}

/* pending - request bytes waiting for the upstream socket */
static size_t pending(const wk_proxy *px)
{
    return px->uc != NULL ? px->uc->out.len - px->uc->out_off : px->req.len;
}

/* detach_server - the request no longer uses its server */
static void detach_server(wk_proxy *px)
{
    wk_upserver *sv = px->sv;

    if (sv == NULL)
        return;
    px->sv = NULL;
    sv->active--;
    worker_route_server_done(&the_worker, sv);
}

/* unqueue - out of its group's queue */
static void unqueue(wk_proxy *px)
{
    if (!px->waiting || px->g == NULL)
        return;
    for (wk_proxy **pp = &px->g->wait_head; *pp != NULL; pp = &(*pp)->wait_next)
        if (*pp == px) {
            *pp = px->wait_next;
            if (px->g->wait_tail == px) {
                px->g->wait_tail = NULL;
                for (wk_proxy *q = px->g->wait_head; q != NULL; q = q->wait_next)
                    px->g->wait_tail = q;
            }
            break;
        }
    px->g->waiting--;
    px->waiting = false;
    px->wait_next = NULL;
}

/* release_held - the client may send the body bytes we held */
static void release_held(wk_proxy *px)
{
    if (px->held > 0) {
        uint64_t n = px->held;
        px->held = 0;
        worker_req_consumed(px->s, (size_t)n);
    }
}

/* finish - the upstream side of the request is over (answered, failed) */
static void finish(wk_proxy *px)
{
    worker *w = &the_worker;

    unqueue(px);
    worker_upstream_forget(w, px);
    if (px->uc != NULL) {
        wk_upconn *uc = px->uc;
        if (uc->done)
            worker_upconn_release(uc, !uc->close_after);
        else
            worker_upconn_close(uc); /* mid-request: not reusable */
    }
    detach_server(px);
    qd_buf_release(&px->req);
    px->replayable = false;
    px->over = true;
    release_held(px);
}


/* --- the request ----------------------------------------------------------- */

static bool idempotent(const char *m)
{
    static const char *const ok[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

/* drop_field - fields of the client's connection, and those the proxy sets itself */
static bool drop_field(const char *name, size_t len)
{
    static const char *const fields[] = {
        "host", "content-length", "connection", "keep-alive", "proxy-connection",
        "transfer-encoding", "upgrade", "te", "http2-settings", "forwarded", "x-forwarded-for",
        "x-forwarded-proto", "x-forwarded-host", "early-data", "cookie"};

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strlen(fields[i]) == len && memcmp(fields[i], name, len) == 0)
            return true;
    return false;
}

/* client_ip - the client's address without its port ("[v6]" for Forwarded's form) */
static void client_ip(const wk_conn *c, char *out, size_t cap, bool brackets)
{
    const char *p = c->peer;
    const char *colon = strrchr(p, ':');
    size_t n = colon != NULL ? (size_t)(colon - p) : strlen(p);

    if (!brackets && n >= 2 && p[0] == '[') {
        p++;
        n -= 2;
    }
    snprintf(out, cap, "%.*s", (int)n, p);
}

/* field_value - the first field |name| of the request head, or NULL */
static const char *field_value(const wk_stream *s, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);

    for (size_t off = 0; off + 2 <= s->fields.len;) {
        const uint8_t *f = (const uint8_t *)s->fields.data + off;
        size_t flen = (size_t)f[0] << 8 | f[1];
        if (flen > nlen && memcmp(f + 2, name, nlen) == 0 && f[2 + nlen] == '\0') {
            *vlen = flen - nlen - 1;
            return (const char *)f + 3 + nlen;
        }
        off += 2 + flen;
    }
    return NULL;
}

/* compose - the HTTP/1.1 request head into px->req */
static void compose(wk_proxy *px, const qd_proxy_route *r, bool fin)
{
    wk_stream *s = px->s;
    qd_buf *b = &px->req;
    const char *path = s->path;
    char ip[64], fwd_ip[72];
    bool cookie = false;
    size_t clen_len = 0;
    const char *clen = field_value(s, "content-length", &clen_len);

    if (r->strip && r->prefix[0] != '\0') {
        size_t pl = strlen(r->prefix);
        if (r->prefix[pl - 1] == '/')
            pl--; /* "/api/" leaves "/users" of "/api/users" */
        path += pl;
    }
    qd_buf_printf(b, "%s %s%s HTTP/1.1\r\n", s->method, path[0] == '/' ? "" : "/", path);
    if (s->authority != NULL)
        qd_buf_printf(b, "host: %s\r\n", s->authority);
    for (size_t off = 0; off + 2 <= s->fields.len;) {
        const uint8_t *f = (const uint8_t *)s->fields.data + off;
        size_t flen = (size_t)f[0] << 8 | f[1];
        const uint8_t *nul = memchr(f + 2, '\0', flen);
        off += 2 + flen;
        if (nul == NULL)
            continue;
        size_t nlen = (size_t)(nul - (f + 2));
        if (nlen == 6 && memcmp(f + 2, "cookie", 6) == 0) {
            /* HTTP/2 and HTTP/3 may split cookies; HTTP/1.1 has one field (RFC 9113 8.2.3) */
            qd_buf_append(b, cookie ? "; " : "cookie: ", cookie ? 2 : 8);
            qd_buf_append(b, (const char *)nul + 1, flen - nlen - 1);
            cookie = true;
            continue;
        }
        if (drop_field((const char *)f + 2, nlen))
            continue;
        if (cookie) {
            qd_buf_append(b, "\r\n", 2);
            cookie = false;
        }
        qd_buf_append(b, (const char *)f + 2, nlen);
        qd_buf_append(b, ": ", 2);
        qd_buf_append(b, (const char *)nul + 1, flen - nlen - 1);
        qd_buf_append(b, "\r\n", 2);
    }
    if (cookie)
        qd_buf_append(b, "\r\n", 2);
    if (clen != NULL) {
        qd_buf_printf(b, "content-length: %.*s\r\n", (int)clen_len, clen);
    } else if (!fin) {
        /* codings the client applied under its chunked stay, under ours */
        qd_buf_printf(b, "transfer-encoding: %s%schunked\r\n", s->te_codings,
                      s->te_codings[0] ? ", " : "");
        px->chunked = true;
    } else if (strcmp(s->method, "POST") == 0 || strcmp(s->method, "PUT") == 0 ||
               strcmp(s->method, "PATCH") == 0) {
        qd_buf_printf(b, "content-length: 0\r\n");
    }
    client_ip(s->c, ip, sizeof(ip), false);
    client_ip(s->c, fwd_ip, sizeof(fwd_ip), true);
    const char *proto = s->scheme != NULL ? s->scheme : "https";
    /* another proxy in a trust network: what it says about its client is kept */
    bool trusted = qd_proxy_trusted(&s->c->w->routes, ip);
    size_t in_len[4] = {0};
    const char *in[4] = {NULL};
    static const char *const fwd_names[4] = {"forwarded", "x-forwarded-for", "x-forwarded-proto",
                                             "x-forwarded-host"};
    for (int i = 0; trusted && i < 4; i++)
        in[i] = field_value(s, fwd_names[i], &in_len[i]);
    qd_buf_append(b, "forwarded: ", 11);
    if (in[0] != NULL) {
        qd_buf_append(b, in[0], in_len[0]);
        qd_buf_append(b, ", ", 2);
    }
    qd_buf_printf(b, "for=%s%s%s", fwd_ip[0] == '[' ? "\"" : "", fwd_ip, fwd_ip[0] == '[' ? "\"" : "");
    if (s->authority != NULL)
        qd_buf_printf(b, ";host=\"%s\"", s->authority);
    qd_buf_printf(b, ";proto=%s\r\nx-forwarded-for: ", proto);
    if (in[1] != NULL) {
        qd_buf_append(b, in[1], in_len[1]);
        qd_buf_append(b, ", ", 2);
    }
    qd_buf_printf(b, "%s\r\n", ip);
    if (in[2] != NULL)
        qd_buf_printf(b, "x-forwarded-proto: %.*s\r\n", (int)in_len[2], in[2]);
    else
        qd_buf_printf(b, "x-forwarded-proto: %s\r\n", proto);
    if (in[3] != NULL)
        qd_buf_printf(b, "x-forwarded-host: %.*s\r\n", (int)in_len[3], in[3]);
    else if (s->authority != NULL)
        qd_buf_printf(b, "x-forwarded-host: %s\r\n", s->authority);
    qd_buf_printf(b, "via: %s quicd\r\n", qd_http_version(worker_conn_proto(s->c)));
    if (s->upgrade[0] != '\0') /* HTTP/1.1's Upgrade (a WebSocket): asked of the upstream too */
        qd_buf_printf(b, "connection: upgrade\r\nupgrade: %s\r\n", s->upgrade);
    if (s->early) {
        px->early_off = b->len;
        qd_buf_printf(b, "early-data: 1\r\n");
    }
    qd_buf_append(b, "\r\n", 2);
}

/* hash_of - the request's key for policy=hash */
static uint64_t hash_of(const wk_proxy *px)
{
    const wk_stream *s = px->s;
    const char *v;
    char ip[64];
    size_t len = 0;
    uint64_t h = 0xcbf29ce484222325ULL;

    if (px->g->conf.hash_header[0] != '\0') {
        v = field_value(s, px->g->conf.hash_header, &len);
        if (v == NULL)
            v = "";
    } else {
        client_ip(s->c, ip, sizeof(ip), false);
        v = ip;
        len = strlen(ip);
    }
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)v[i]) * 0x100000001b3ULL;
    return h;
}

/* answer - the worker's own answer to the request: 502, 503 or 504 */
static void answer(wk_proxy *px, int status, const char *why)
{
    char text[160];

    static qd_log_limit lim;

    px->s->c->w->proxy_errors++;
    snprintf(text, sizeof(text), "%d %s\n", status, qd_http_reason((unsigned)status));
    qd_log_limited(&lim, QD_LOG_WARN, "proxy %s %s: %d (%s)", px->s->method, px->s->path, status,
                   why);
    worker_req_respond(px->s, status, text);
}

/* acquire - a connection for the request: from a pool, the daemon, or the queue */
static void acquire(wk_proxy *px)
{
    worker *w = &the_worker;
    bool busy;
    wk_upserver *sv = worker_route_pick(w, px, &busy);

    /* Every usable server tried once, none timed out: a retry may go to one of
     * them again, on a new connection (a group of one server whose fresh
     * connection the server closed before the request went out). */
    if (sv == NULL && !busy && px->attempts > 0 && !px->timed_out && !px->second_round) {
        px->second_round = true;
        px->tried = 0;
        sv = worker_route_pick(w, px, &busy);
    }
    if (sv == NULL) {
        if (busy && px->g->waiting < px->g->conf.queue) {
            px->waiting = true;
            px->deadline_ns = worker_now() + (uint64_t)px->g->conf.connect_timeout_ms * 1000000ULL;
            if (px->g->wait_tail != NULL)
                px->g->wait_tail->wait_next = px;
            else
                px->g->wait_head = px;
            px->g->wait_tail = px;
            px->g->waiting++;
            worker_proxy_sweep_start(w);
            return;
        }
        finish(px);
        answer(px, busy ? 503 : px->attempts == 0 ? 503 : px->timed_out ? 504 : 502,
               busy ? "the group's queue is full" : px->attempts > 0 ? px->last_error
                                                                      : "no server is up");
        return;
    }
    px->sv = sv;
    snprintf(px->upstream, sizeof(px->upstream), "%s", sv->name);
    px->s->up_server = px->upstream; /* px lives until the record is made (worker_req_free) */
    sv->active++;
    sv->requests++;
    px->tried |= 1ULL << sv->index;
    px->attempts++;
    wk_upconn *uc = worker_upconn_take_idle(w, sv);
    if (uc != NULL) {
        worker_upconn_start(uc, px);
        return;
    }
    px->deadline_ns = worker_now() + ((uint64_t)px->g->conf.connect_timeout_ms + 1000) * 1000000ULL;
    if (worker_upstream_ask(w, px) < 0) {
        finish(px);
        answer(px, 502, "cannot ask for a connection");
        return;
    }
    worker_proxy_sweep_start(w);
}

/* start - a request for a proxy route: compose it, find it a connection */
static bool start(wk_stream *s, bool fin)
{
    worker *w = s->c->w;
    const qd_proxy_route *r = worker_route_match(w, s);

    if (r == NULL || r->group < 0)
        return false;
    wk_proxy *px = qd_xcalloc(1, sizeof(*px));
    px->s = s;
    px->g = w->upgroups[r->group];
    px->started_ns = worker_now();
    px->head_method = strcmp(s->method, "HEAD") == 0;
    px->idempotent = idempotent(s->method);
    px->replayable = true;
    px->body_end = fin;
    qd_buf_init(&px->req);
    s->src_data = px;
    s->hold_body = true;
    s->by_worker = true; /* the worker writes its access log line */
    if (px->g->conf.policy == QD_PROXY_HASH)
        px->hash = hash_of(px);
    compose(px, r, fin);
    px->end_sent = fin;
    w->requests++;
    w->proxied++;
    s->src = &worker_proxy_source; /* before acquire: a failure answers at once */
    acquire(px);
    return true;
}

/* put - request bytes for the upstream: on the connection, and kept while replayable */
static void put(wk_proxy *px, const char *data, size_t len)
{
    if (px->uc != NULL)
        qd_buf_append(&px->uc->out, data, len);
    if (px->uc == NULL || px->replayable)
        qd_buf_append(&px->req, data, len);
    if (px->uc != NULL && px->replayable && px->req.len > WK_PROXY_REPLAY_MAX) {
        px->replayable = false;
        qd_buf_release(&px->req);
    }
}

static void body(wk_stream *s, const uint8_t *data, size_t len)
{
    wk_proxy *px = px_of(s);

    if (px == NULL || px->over) {
        worker_req_consumed(s, len); /* answered already: dropped */
        return;
    }
    if (len == 0)
        return;
    if (px->chunked) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        put(px, size, (size_t)n);
    }
    put(px, (const char *)data, len);
    if (px->chunked)
        put(px, "\r\n", 2);
    if (pending(px) < WK_PROXY_SEND_MAX)
        worker_req_consumed(s, len);
    else
        px->held += len;
    if (px->uc != NULL)
        worker_upconn_write(px->uc);
}

static void end(wk_stream *s)
{
    wk_proxy *px = px_of(s);

    if (px == NULL || px->over || px->end_sent)
        return;
    px->body_end = px->end_sent = true;
    if (px->chunked)
        put(px, "0\r\n\r\n", 5);
    if (px->uc != NULL)
        worker_upconn_write(px->uc);
}

void worker_proxy_wrote(wk_proxy *px, size_t n)
{
    (void)n;
    if (px->held > 0 && pending(px) < WK_PROXY_SEND_MAX)
        release_held(px);
}

static bool delivered(wk_stream *s, uint64_t len)
{
    wk_proxy *px = px_of(s);

    (void)len;
    if (px != NULL && px->uc != NULL && px->uc->paused)
        worker_upconn_resume(px->uc);
    return true;
}

static void cancel(wk_stream *s)
{
    wk_proxy *px = px_of(s);

    if (px == NULL)
        return;
    px->held = 0; /* worker_req_free returns what the stream held */
    finish(px);
    qd_buf_release(&px->dhead);
    s->src_data = NULL;
    free(px);
}

/* describe - the access log's words: the server, its status (0: no answer) and its time */
static void describe(wk_stream *s, qd_buf *out)
{
    wk_proxy *px = px_of(s);

    if (px == NULL)
        return;
    uint64_t end = px->uhead_ns != 0 ? px->uhead_ns : worker_now();
    qd_buf_printf(out, " upstream=%s ustatus=%d utime=%.3f", px->upstream[0] ? px->upstream : "-",
                  px->ustatus, (double)(end - px->started_ns) / 1e6);
}

const wk_source worker_proxy_source = {
    .name = "proxy",
    .describe = describe,
    .handshake_done = handshake_done,
    .start = start,
    .body = body,
    .end = end,
    .delivered = delivered,
    .cancel = cancel,
};

/* --- connections and answers ------------------------------------------------ */

void worker_proxy_connected(wk_proxy *px, wk_upserver *sv, int fd, int err, const char *why)
{
    worker *w = &the_worker;

    if (err != 0) {
        px->s->up_time_us = (worker_now() - px->started_ns) / 1000; /* to this failure */
        px->timed_out = err == ETIMEDOUT;
        sv->fails++;
        snprintf(px->last_error, sizeof(px->last_error), "%.100s: %.100s", sv->name, why);
        detach_server(px);
        if (px->g != NULL && px->attempts <= px->g->conf.retries &&
            worker_now() - px->started_ns < (uint64_t)px->g->conf.read_timeout_ms * 1000000ULL) {
            w->proxy_retries++;
            acquire(px);
            return;
        }
        finish(px);
        answer(px, err == ETIMEDOUT ? 504 : 502, px->last_error);
        return;
    }
    wk_upconn *uc = worker_upconn_new(w, sv, fd);
    if (uc == NULL) {
        finish(px);
        answer(px, 502, "cannot watch the connection");
        return;
    }
    worker_upconn_start(uc, px);
}

void worker_proxy_answer_info(wk_proxy *px, int status, const nghttp3_nv *nv, size_t n)
{
    nghttp3_nv all[101];
    char text[8];

    if (px->answered)
        return;
    snprintf(text, sizeof(text), "%d", status);
    all[0] = (nghttp3_nv){(uint8_t *)":status", (uint8_t *)text, 7, strlen(text),
                          NGHTTP3_NV_FLAG_NONE};
    for (size_t i = 0; i < n && i < 100; i++)
        all[i + 1] = nv[i];
    if (worker_req_submit_info(px->s, all, n + 1) != 0)
        worker_req_reset(px->s);
    worker_conn_mark(px->s->c);
}

/* submit_deferred - the held answer goes to the client, complete */
static void submit_deferred(wk_proxy *px)
{
    nghttp3_nv nv[100];
    size_t n = 0;

    for (size_t off = 0; off + 2 <= px->dhead.len && n < 100;) {
        uint8_t *f = (uint8_t *)px->dhead.data + off;
        size_t flen = (size_t)f[0] << 8 | f[1];
        uint8_t *nul = memchr(f + 2, '\0', flen);
        off += 2 + flen;
        if (nul != NULL)
            nv[n++] = (nghttp3_nv){f + 2, nul + 1, (size_t)(nul - (f + 2)),
                                   flen - (size_t)(nul - (f + 2)) - 1, NGHTTP3_NV_FLAG_NONE};
    }
    px->deferred = false;
    px->answered = true;
    px->s->eof = true;
    worker_req_submit(px->s, px->dstatus, nv, n, px->s->filled > 0);
    qd_buf_release(&px->dhead);
}

/* small_length - the answer's content-length when it is at most WK_PROXY_REPLAY_MAX, else -1 */
static long small_length(const nghttp3_nv *nv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (nv[i].namelen == 14 && memcmp(nv[i].name, "content-length", 14) == 0) {
            long v = 0;
            for (size_t k = 0; k < nv[i].valuelen; k++) {
                if (nv[i].value[k] < '0' || nv[i].value[k] > '9' || v > WK_PROXY_REPLAY_MAX)
                    return -1;
                v = v * 10 + (nv[i].value[k] - '0');
            }
            return v <= WK_PROXY_REPLAY_MAX ? v : -1;
        }
    return -1;
}

void worker_proxy_answer_head(wk_proxy *px, int status, const nghttp3_nv *nv, size_t n)
{
    wk_stream *s = px->s;
    bool has_body = !px->head_method && status != 204 && status != 304;

    px->ustatus = status;
    px->uhead_ns = worker_now();
    px->s->up_status = (uint32_t)status;
    px->s->up_time_us = (px->uhead_ns - px->started_ns) / 1000;
    /* 425 Too Early to a request that came in 0-RTT (RFC 8470 5.2): sent
     * again, without Early-Data, once the handshake is complete */
    if (status == 425 && px->early_off > 0 && px->replayable && px->req.len > 0) {
        px->too_early = true;
        return;
    }
    /* A small answer to a request that may be repeated waits until it is
     * complete: a server that dies in the middle of it costs the client
     * nothing, the request goes to another (worker_proxy_failed). */
    if (has_body && px->idempotent && small_length(nv, n) >= 0) {
        px->deferred = true;
        px->dstatus = status;
        qd_buf_init(&px->dhead);
        for (size_t i = 0; i < n; i++) {
            size_t flen = nv[i].namelen + 1 + nv[i].valuelen;
            uint8_t len2[2] = {(uint8_t)(flen >> 8), (uint8_t)flen};
            qd_buf_append(&px->dhead, (const char *)len2, 2);
            qd_buf_append(&px->dhead, (const char *)nv[i].name, nv[i].namelen);
            qd_buf_append(&px->dhead, "", 1);
            qd_buf_append(&px->dhead, (const char *)nv[i].value, nv[i].valuelen);
        }
        return;
    }
    px->answered = true;
    if (px->sv != NULL) /* fail_5xx: a 5xx is the server's failure (passive checks) */
        worker_upstream_report(&the_worker, px->sv,
                               status >= 500 && px->g != NULL && px->g->conf.fail_5xx
                                   ? QD_UP_RESULT_BROKEN : QD_UP_RESULT_OK);
    if (status == 101) { /* the tunnel's answer: the fields of the switch come back */
        nghttp3_nv all[102];
        size_t k = 0;
        all[k++] = (nghttp3_nv){(uint8_t *)"connection", (uint8_t *)"upgrade", 10, 7,
                                NGHTTP3_NV_FLAG_NONE};
        all[k++] = (nghttp3_nv){(uint8_t *)"upgrade", (uint8_t *)s->upgrade, 7, strlen(s->upgrade),
                                NGHTTP3_NV_FLAG_NONE};
        for (size_t i = 0; i < n && k < 102; i++)
            all[k++] = nv[i];
        qd_buf_release(&px->req);
        px->replayable = false;
        worker_req_submit(s, status, all, k, true);
        return;
    }
    qd_buf_release(&px->req); /* never sent again now */
    px->replayable = false;
    if (!has_body)
        s->eof = true;
    worker_req_submit(s, status, nv, n, has_body);
}

void worker_proxy_answer_body(wk_proxy *px, const uint8_t *data, size_t len)
{
    if (px->too_early)
        return; /* the 425's body: not for the client */
    worker_body_append(px->s, data, len);
    if (!px->deferred)
        worker_req_resume(px->s);
}

/* replay_early - the request again, without Early-Data, after a 425 */
static void replay_early(wk_proxy *px)
{
    static const size_t line = sizeof("early-data: 1\r\n") - 1;

    px->await_handshake = false;
    memmove(px->req.data + px->early_off, px->req.data + px->early_off + line,
            px->req.len - px->early_off - line);
    px->req.len -= line;
    px->early_off = 0;
    px->tried = 0; /* the same server may take it */
    px->attempts--;
    px->ustatus = 0;
    px->uhead_ns = 0;
    acquire(px);
}

static void handshake_done(wk_stream *s)
{
    wk_proxy *px = px_of(s);

    if (px != NULL && px->await_handshake)
        replay_early(px);
}

void worker_proxy_answer_trailers(wk_proxy *px, const nghttp3_nv *nv, size_t n)
{
    if (px->too_early)
        return;
    for (size_t i = 0; i < n; i++) {
        size_t flen = nv[i].namelen + 1 + nv[i].valuelen;
        uint8_t len2[2] = {(uint8_t)(flen >> 8), (uint8_t)flen};
        qd_buf_append(&px->s->trailers, (const char *)len2, 2);
        qd_buf_append(&px->s->trailers, (const char *)nv[i].name, nv[i].namelen);
        qd_buf_append(&px->s->trailers, "", 1);
        qd_buf_append(&px->s->trailers, (const char *)nv[i].value, nv[i].valuelen);
    }
}

void worker_proxy_answer_end(wk_proxy *px)
{
    wk_stream *s = px->s;

    if (px->too_early) {
        wk_upconn *uc = px->uc;
        px->too_early = false;
        worker_upconn_release(uc, !uc->close_after && uc->in_off == uc->in.len); /* px->uc = NULL */
        detach_server(px);
        if (s->c->handshake_done)
            replay_early(px);
        else
            px->await_handshake = true; /* handshake_done() goes on */
        return;
    }
    if (px->sv != NULL)
        worker_upstream_report(&the_worker, px->sv,
                               px->ustatus >= 500 && px->g != NULL && px->g->conf.fail_5xx
                                   ? QD_UP_RESULT_BROKEN : QD_UP_RESULT_OK);
    if (px->deferred) {
        submit_deferred(px);
    } else {
        s->eof = true;
        worker_req_resume(s);
    }
    finish(px); /* the connection goes back to the pool */
}

void worker_proxy_failed(wk_proxy *px, int status, int result, const char *why)
{
    worker *w = &the_worker;
    wk_upconn *uc = px->uc;
    bool reused = uc != NULL && uc->reused;
    /* nothing of the answer reached the client (a held answer is dropped) */
    bool nothing_back = uc != NULL && (uc->got == 0 || px->deferred);
    bool not_sent = uc != NULL && uc->sent == 0;
    uint64_t uc_got = uc != NULL ? uc->got : 0;
    wk_upserver *sv = px->sv;

    if (sv != NULL)
        snprintf(px->last_error, sizeof(px->last_error), "%.100s: %.100s", sv->name, why);
    px->timed_out = result == QD_UP_RESULT_TIMEOUT;
    if (uc != NULL)
        worker_upconn_close(uc); /* px->uc = NULL */
    if (px->deferred) {
        px->deferred = false;
        qd_buf_release(&px->dhead);
        worker_body_discard(px->s);
        qd_buf_reset(&px->s->trailers);
    }
    /* the keep-alive race is not the server's failure */
    if (sv != NULL && result >= 0 &&
        !(reused && uc_got == 0 && result == QD_UP_RESULT_BROKEN))
        worker_upstream_report(w, sv, result);
    /* the keep-alive race: a kept-alive connection closed under the request
     * before any answer; it costs no attempt (up to WK_PROXY_RACES times) */
    bool race = reused && uc_got == 0 && px->races < WK_PROXY_RACES;
    /* retries are bounded in count (retries=, the races) and in time: none
     * once the request is older than read_timeout */
    bool in_time = px->g != NULL &&
                   worker_now() - px->started_ns < (uint64_t)px->g->conf.read_timeout_ms * 1000000ULL;
    if (!px->answered && result == QD_UP_RESULT_BROKEN && nothing_back && px->replayable &&
        in_time && (px->idempotent || not_sent) &&
        (race || px->attempts <= px->g->conf.retries)) {
        if (race) {
            px->races++;
            px->attempts--;
            if (sv != NULL)
                px->tried &= ~(1ULL << sv->index); /* the same server may take it again */
        }
        detach_server(px);
        w->proxy_retries++;
        if (sv != NULL)
            sv->retries++;
        acquire(px);
        return;
    }
    bool answered = px->answered;
    finish(px);
    if (px->s->up_status == 0)
        px->s->up_time_us = (worker_now() - px->started_ns) / 1000;
    if (!answered)
        answer(px, status, px->last_error[0] ? px->last_error : why);
    else
        worker_req_reset(px->s);
}

void worker_proxy_wake(worker *w, wk_upgroup *g)
{
    (void)w;
    while (g != NULL && g->wait_head != NULL) {
        wk_proxy *px = g->wait_head;
        /* only when a server can take it: otherwise it keeps its place */
        if (worker_route_busy(px))
            return;
        unqueue(px);
        acquire(px);
    }
}

/* --- deadlines ---------------------------------------------------------------- */

static void on_sweep(uv_timer_t *t)
{
    worker *w = t->data;
    uint64_t now = worker_now();
    bool work = false;

    worker_upconn_sweep(w, now);
    /* asks past their deadline (the daemon gone, or slower than connect_timeout) */
    for (;;) {
        wk_proxy *late = NULL;
        for (size_t i = 0; i < w->asks.nslots && late == NULL; i++)
            for (wk_map_entry *e = w->asks.slots[i]; e != NULL && late == NULL; e = e->next)
                if (now >= ((wk_proxy *)e->value)->deadline_ns)
                    late = e->value;
        if (late == NULL)
            break;
        worker_upstream_forget(w, late);
        worker_proxy_connected(late, late->sv, -1, ETIMEDOUT, "no connection within connect_timeout");
    }
    for (size_t i = 0; i < w->routes.ngroups; i++) {
        wk_upgroup *g = w->upgroups[i];
        while (g->wait_head != NULL && now >= g->wait_head->deadline_ns) {
            wk_proxy *px = g->wait_head;
            unqueue(px);
            finish(px);
            answer(px, 503, "no connection became free within connect_timeout");
        }
        work |= g->waiting > 0;
    }
    worker_conn_flush_dirty(w);
    if (!work && w->nupconns == 0 && w->asks.count == 0) {
        uv_timer_stop(&w->proxy_sweep);
        w->proxy_sweep_on = false;
    }
}

void worker_proxy_sweep_start(worker *w)
{
    if (w->proxy_sweep_on)
        return;
    if (w->proxy_sweep.loop == NULL) {
        uv_timer_init(w->child.loop, &w->proxy_sweep);
        w->proxy_sweep.data = w;
        uv_unref((uv_handle_t *)&w->proxy_sweep);
    }
    w->proxy_sweep_on = true;
    uv_timer_start(&w->proxy_sweep, on_sweep, WK_PROXY_SWEEP_MS, WK_PROXY_SWEEP_MS);
}
