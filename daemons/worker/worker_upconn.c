/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_upconn - connections to upstream servers: HTTP/1.1 out,
 *	answers in, the idle pool
 * SYNOPSIS
 *	worker_upconn_new(), worker_upconn_take_idle(), worker_upconn_start(),
 *	worker_upconn_write(), worker_upconn_resume(),
 *	worker_upconn_release(), worker_upconn_close(), worker_upconn_sweep()
 * DESCRIPTION
 *	A wk_upconn is a connected socket the upstream daemon handed over
 *	(TCP or a Unix socket; TLS for an https:// server, worker_uptls.c)
 *	carrying one request at a time. The request's
 *	bytes (worker_proxy.c composes them) go out as the socket takes them;
 *	the answer is parsed with http-parser in response mode, its head,
 *	body and trailers passed to the request (worker_proxy_answer_*). Interim
 *	answers (100, 103) pass on and the final one follows on the same
 *	connection. Parsing pauses while the client has WK_PROXY_WINDOW
 *	bytes to take (the socket is not read either, so the upstream's
 *	sending slows), and resumes as it takes them.
 *
 *	After a complete answer with keep-alive the connection goes to its
 *	server's idle pool (most recently used first) for the group's
 *	idle_timeout; an idle connection that becomes readable (the upstream
 *	closed it, or sent what it should not) is closed at once, and one
 *	taken from the pool is checked first (MSG_PEEK), so a request rarely
 *	meets a connection the upstream has closed; when it does, before any
 *	byte of the answer, worker_proxy.c may try again.
 *
 *	The sweep (worker_proxy.c's timer) applies the group's send_timeout
 *	and read_timeout to busy connections and idle_timeout to idle ones.
 * DIAGNOSTICS
 *	None of its own: failures go to the request (worker_proxy_failed).
 */
#include "config.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_log.h"
#include "qd_uv.h"

/* local */
#include "worker.h"

static void on_io(uv_poll_t *h, int status, int events);
static int feed(wk_upconn *uc);
static void do_read(wk_upconn *uc);

/* watch - poll for |events| */
static void watch(wk_upconn *uc, int events)
{
    if (uc->poll == NULL || uc->events == events)
        return;
    uc->events = events;
    uv_poll_start(uc->poll, events, on_io);
}

wk_upconn *worker_upconn_new(worker *w, wk_upserver *sv, int fd)
{
    wk_upconn *uc = qd_xcalloc(1, sizeof(*uc));

    uc->sv = sv;
    uc->fd = fd;
    qd_buf_init(&uc->out);
    qd_buf_init(&uc->in);
    qd_buf_init(&uc->head);
    uc->poll = qd_uv_watch(w->child.loop, fd, 0, on_io, uc);
    if (uc->poll == NULL) {
        close(fd);
        free(uc);
        return NULL;
    }
    uc->next = w->upconns;
    if (w->upconns != NULL)
        w->upconns->prev = uc;
    w->upconns = uc;
    w->nupconns++;
    sv->conns++;
    if (sv->conf.tls && worker_uptls_start(w, uc) < 0) {
        qd_warn("upstream %s: cannot set up TLS", sv->name);
        worker_upconn_close(uc);
        return NULL;
    }
    return uc;
}

/* io_send, io_recv - the socket's bytes, through TLS for an https:// server */
static ssize_t io_send(wk_upconn *uc, const void *data, size_t len)
{
    if (uc->ssl != NULL)
        return worker_uptls_send(uc, data, len);
    return send(uc->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static ssize_t io_recv(wk_upconn *uc, void *buf, size_t cap)
{
    if (uc->ssl != NULL)
        return worker_uptls_recv(uc, buf, cap);
    return recv(uc->fd, buf, cap, 0);
}

void worker_upconn_close(wk_upconn *uc)
{
    worker *w = &the_worker;
    wk_upserver *sv = uc->sv;

    if (uc->px == NULL) { /* in the pool */
        for (wk_upconn **pp = &sv->idle; *pp != NULL; pp = &(*pp)->idle_next)
            if (*pp == uc) {
                *pp = uc->idle_next;
                sv->nidle--;
                break;
            }
    } else {
        uc->px->uc = NULL;
    }
    qd_uv_unwatch(&uc->poll);
    worker_uptls_free(uc);
    close(uc->fd);
    if (uc->prev)
        uc->prev->next = uc->next;
    else
        w->upconns = uc->next;
    if (uc->next)
        uc->next->prev = uc->prev;
    w->nupconns--;
    sv->conns--;
    qd_buf_release(&uc->out);
    qd_buf_release(&uc->in);
    qd_buf_release(&uc->head);
    free(uc);
    worker_route_server_done(w, sv);
}

/* alive - may an idle connection carry a request? (nothing to read, no EOF) */
static bool alive(const wk_upconn *uc)
{
    char b;
    ssize_t n = recv(uc->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

wk_upconn *worker_upconn_take_idle(worker *w, wk_upserver *sv)
{
    (void)w;
    while (sv->idle != NULL) {
        wk_upconn *uc = sv->idle;
        sv->idle = uc->idle_next;
        sv->nidle--;
        uc->idle_next = NULL;
        if (alive(uc))
            return uc;
        worker_upconn_close(uc); /* no longer in the pool */
    }
    return NULL;
}

/* --- the answer ------------------------------------------------------------ */

static wk_upconn *uc_of(http_parser *p)
{
    return (wk_upconn *)((char *)p - offsetof(wk_upconn, p));
}

/* field_end - finish the field being collected: its length prefix */
static void field_end(wk_upconn *uc)
{
    if (uc->head_bytes == 0)
        return;
    size_t start = uc->head.len - uc->head_bytes;
    size_t flen = uc->head_bytes - 2;
    uc->head.data[start] = (char)(flen >> 8);
    uc->head.data[start + 1] = (char)flen;
    uc->head_bytes = 0;
    uc->in_value = false;
}

static int on_message_begin(http_parser *p)
{
    wk_upconn *uc = uc_of(p);

    qd_buf_reset(&uc->head);
    uc->head_bytes = 0;
    uc->in_value = false;
    uc->info = false;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    wk_upconn *uc = uc_of(p);

    if (uc->in_value || uc->head_bytes == 0) {
        field_end(uc);
        qd_buf_append(&uc->head, "\0\0", 2);
        uc->head_bytes = 2;
    }
    if (uc->head.len + len > WK_PROXY_HEAD_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = at[i] >= 'A' && at[i] <= 'Z' ? (char)(at[i] + 32) : at[i];
        qd_buf_append(&uc->head, &ch, 1);
    }
    uc->head_bytes += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    wk_upconn *uc = uc_of(p);

    if (!uc->in_value) {
        qd_buf_append(&uc->head, "", 1);
        uc->head_bytes++;
        uc->in_value = true;
    }
    if (uc->head.len + len > WK_PROXY_HEAD_MAX)
        return -1;
    qd_buf_append(&uc->head, at, len);
    uc->head_bytes += len;
    return 0;
}

/* hop - a field the proxy does not pass on (RFC 9110 7.6.1), or one it sets itself */
static bool hop(const char *name, size_t len, const char *conn_list, size_t clen)
{
    static const char *const fields[] = {"connection", "keep-alive", "proxy-connection",
                                         "transfer-encoding", "upgrade", "te", "trailer",
                                         "server", "date", "alt-svc", "http2-settings"};

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strlen(fields[i]) == len && memcmp(fields[i], name, len) == 0)
            return true;
    /* fields the Connection field names */
    for (size_t i = 0; i < clen;) {
        while (i < clen && (conn_list[i] == ' ' || conn_list[i] == '\t' || conn_list[i] == ','))
            i++;
        size_t n = 0;
        while (i + n < clen && conn_list[i + n] != ' ' && conn_list[i + n] != '\t' &&
               conn_list[i + n] != ',')
            n++;
        if (n > 0 && n == len && strncasecmp(conn_list + i, name, len) == 0)
            return true;
        i += n;
    }
    return false;
}

/* head_nv - the collected fields as name/value pairs, without hop-by-hop ones */
static size_t head_nv(wk_upconn *uc, nghttp3_nv *nv, size_t cap)
{
    const char *conn_list = NULL;
    size_t clen = 0, n = 0;

    for (size_t off = 0; off + 2 <= uc->head.len;) {
        const uint8_t *f = (const uint8_t *)uc->head.data + off;
        size_t flen = (size_t)f[0] << 8 | f[1];
        if (flen >= 11 && memcmp(f + 2, "connection", 11) == 0) {
            conn_list = (const char *)f + 13;
            clen = flen - 11;
        }
        off += 2 + flen;
    }
    for (size_t off = 0; off + 2 <= uc->head.len && n < cap;) {
        uint8_t *f = (uint8_t *)uc->head.data + off;
        size_t flen = (size_t)f[0] << 8 | f[1];
        uint8_t *name = f + 2;
        uint8_t *nul = memchr(name, '\0', flen);
        off += 2 + flen;
        if (nul == NULL || nul == name)
            continue;
        size_t nlen = (size_t)(nul - name);
        if (hop((const char *)name, nlen, conn_list, clen))
            continue;
        nv[n++] = (nghttp3_nv){name, nul + 1, nlen, flen - nlen - 1, NGHTTP3_NV_FLAG_NONE};
    }
    return n;
}

static int on_headers_complete(http_parser *p)
{
    wk_upconn *uc = uc_of(p);
    wk_proxy *px = uc->px;
    nghttp3_nv nv[100];

    field_end(uc);
    if (px == NULL)
        return -1;
    int status = (int)p->status_code;
    size_t n = head_nv(uc, nv, sizeof(nv) / sizeof(nv[0]));
    if (status == 101 && px->s->upgrade[0] != '\0') {
        /* the upgrade the client asked for: a tunnel from here */
        uc->tunnel = true;
        uc->close_after = true;
        worker_proxy_answer_head(px, status, nv, n);
        return 0;
    }
    if (status >= 100 && status < 200) {
        if (status == 101)
            return -1; /* no upgrade was asked for */
        uc->info = true;
        worker_proxy_answer_info(px, status, nv, n);
        return 0;
    }
    uc->close_after = !http_should_keep_alive(p);
    worker_proxy_answer_head(px, status, nv, n);
    qd_buf_reset(&uc->head); /* passed on (copied); a chunked body's trailers come here */
    return px->head_method ? 1 : 0; /* a HEAD answer has no body */
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    wk_upconn *uc = uc_of(p);

    if (uc->px == NULL)
        return -1;
    worker_proxy_answer_body(uc->px, (const uint8_t *)at, len);
    if (uc->px != NULL && uc->px->s->filled - uc->px->s->acked >= WK_PROXY_WINDOW) {
        uc->paused = true;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    wk_upconn *uc = uc_of(p);

    if (uc->info)
        return 0; /* the final answer follows */
    if (uc->tunnel)
        return 0; /* the bytes after the 101 are the new protocol's */
    field_end(uc);
    if (uc->head.len > 0 && uc->px != NULL) { /* trailers */
        nghttp3_nv nv[64];
        size_t n = head_nv(uc, nv, sizeof(nv) / sizeof(nv[0]));
        worker_proxy_answer_trailers(uc->px, nv, n);
    }
    uc->done = true;
    http_parser_pause(p, 1); /* nothing may follow an answer we did not ask for */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* tunnel_in - bytes of a tunnel from the upstream, for the client */
static void tunnel_in(wk_upconn *uc, const char *data, size_t len)
{
    if (len == 0 || uc->px == NULL)
        return;
    worker_proxy_answer_body(uc->px, (const uint8_t *)data, len);
    if (uc->px != NULL && uc->px->s->filled - uc->px->s->acked >= WK_PROXY_WINDOW)
        uc->paused = true; /* the socket is not read until the client takes it */
}

/* finished - the answer is complete: the request ends, the connection goes back */
static void finished(wk_upconn *uc)
{
    if (uc->in_off != uc->in.len || uc->out_off != uc->out.len)
        uc->close_after = true; /* bytes beyond the answer, or a request not all sent */
    worker_proxy_answer_end(uc->px); /* releases or closes |uc| */
}

/* broken - the answer cannot go on: tell the request, drop the connection */
static void broken(wk_upconn *uc, const char *why)
{
    wk_proxy *px = uc->px;

    if (px != NULL)
        worker_proxy_failed(px, 502, QD_UP_RESULT_BROKEN, why); /* detaches uc */
    else
        worker_upconn_close(uc);
}

/* parse - run the parser over |len| bytes; what a pause leaves is kept in uc->in */
static int parse(wk_upconn *uc, const char *data, size_t len)
{
    if (uc->tunnel) {
        tunnel_in(uc, data, len);
        return 0;
    }
    size_t used = http_parser_execute(&uc->p, &settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&uc->p);

    if (uc->tunnel) { /* the 101 came: what follows it is the tunnel's */
        tunnel_in(uc, data + used, len - used);
        return 0;
    }
    if (uc->done) {
        if (used < len)
            uc->close_after = true; /* bytes after the answer: not ours to read */
        finished(uc);
        return 1;
    }
    if (e == HPE_PAUSED) {
        qd_buf_append(&uc->in, data + used, len - used);
        return 0;
    }
    if (e != HPE_OK) {
        char why[96];
        snprintf(why, sizeof(why), "a bad answer (%s)", http_errno_name(e));
        broken(uc, why);
        return -1;
    }
    return 0;
}

/* feed - parse what a pause kept, after the client took enough */
/* feed - parse what a pause kept; -1 when the answer ended or broke (|uc| may be
 * gone: released to the pool and taken, or closed) */
static int feed(wk_upconn *uc)
{
    while (uc->in_off < uc->in.len && !uc->paused) {
        http_parser_pause(&uc->p, 0);
        qd_buf rest = uc->in;
        size_t off = uc->in_off;
        qd_buf_init(&uc->in);
        uc->in_off = 0;
        int rv = parse(uc, rest.data + off, rest.len - off);
        qd_buf_release(&rest);
        if (rv != 0)
            return -1;
    }
    if (uc->in_off == uc->in.len) {
        qd_buf_reset(&uc->in);
        uc->in_off = 0;
    }
    return 0;
}

void worker_upconn_resume(wk_upconn *uc)
{
    if (!uc->paused || uc->px == NULL)
        return;
    if (uc->px->s->filled - uc->px->s->acked >= WK_PROXY_WINDOW / 2)
        return;
    uc->paused = false;
    http_parser_pause(&uc->p, 0);
    if (feed(uc) < 0)
        return; /* |uc| may be gone */
    if (uc->px != NULL && !uc->paused) {
        watch(uc, UV_READABLE | (uc->out_off < uc->out.len ? UV_WRITABLE : 0));
        if (uc->ssl != NULL && wolfSSL_pending(uc->ssl) > 0)
            do_read(uc); /* bytes TLS holds: no poll announces them */
    }
}

/* do_read - what the upstream sent */
static void do_read(wk_upconn *uc)
{
    static char buf[64 * 1024];
    worker *w = &the_worker;

    /* (TLS may hold decrypted bytes no poll will announce: read them all) */
    for (int rounds = 0;
         (rounds < 8 || (uc->ssl != NULL && wolfSSL_pending(uc->ssl) > 0)) && uc->px != NULL &&
         !uc->paused;
         rounds++) {
        ssize_t n = io_recv(uc, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n == 0 && uc->tunnel) { /* the upstream ended the tunnel */
            worker_proxy_answer_end(uc->px); /* closes |uc| */
            return;
        }
        if (n <= 0) {
            wk_proxy *px = uc->px;
            if (uc->got > 0 && n == 0) {
                /* the end of an answer framed by the connection's end, or a cut */
                http_parser_execute(&uc->p, &settings, NULL, 0);
                if (uc->done) {
                    uc->close_after = true;
                    finished(uc);
                    return;
                }
            }
            char why[96];
            snprintf(why, sizeof(why), "%s %s", uc->got > 0 ? "connection lost in the answer:" :
                     "connection closed before an answer:", n == 0 ? "EOF" : strerror(errno));
            worker_proxy_failed(px, 502, QD_UP_RESULT_BROKEN, why);
            return;
        }
        uc->got += (uint64_t)n;
        uc->last_io_ns = worker_now();
        (void)w;
        if (parse(uc, buf, (size_t)n) != 0)
            return;
    }
}

/* write_out - the handshake, then the request's bytes; -1 when the request failed
 * (worker_proxy_failed: |uc| is closed and freed, not to be touched again) */
static int write_out(wk_upconn *uc)
{
    if (uc->ssl != NULL && !uc->tls_done) { /* the handshake first */
        char why[160];
        int events = 0;
        int rc = worker_uptls_handshake(uc, &events, why, sizeof(why));
        if (rc < 0) {
            worker_proxy_failed(uc->px, 502, QD_UP_RESULT_BROKEN, why);
            return -1;
        }
        if (rc == 0) {
            watch(uc, events);
            return 0;
        }
        uc->tls_done = true;
    }
    while (uc->out_off < uc->out.len) {
        ssize_t n = io_send(uc, uc->out.data + uc->out_off, uc->out.len - uc->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            char why[96];
            snprintf(why, sizeof(why), "sending the request: %s", strerror(errno));
            worker_proxy_failed(uc->px, 502, QD_UP_RESULT_BROKEN, why);
            return -1;
        }
        uc->out_off += (size_t)n;
        uc->sent += (uint64_t)n;
        uc->last_io_ns = worker_now();
        worker_proxy_wrote(uc->px, (size_t)n);
        if (uc->px == NULL)
            return 0;
    }
    if (uc->out_off == uc->out.len) {
        qd_buf_reset(&uc->out);
        uc->out_off = 0;
    }
    watch(uc, (uc->paused ? 0 : UV_READABLE) | (uc->out_off < uc->out.len ? UV_WRITABLE : 0));
    return 0;
}

void worker_upconn_write(wk_upconn *uc)
{
    write_out(uc);
}

static void on_io(uv_poll_t *h, int status, int events)
{
    wk_upconn *uc = h->data;

    if (uc->px == NULL) { /* idle: the upstream closed it, or talks out of turn */
        worker_upconn_close(uc);
        return;
    }
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE; /* let read or write find the error */
    if ((events & UV_WRITABLE) || (uc->ssl != NULL && !uc->tls_done)) {
        if (write_out(uc) < 0) /* or the TLS handshake's next step */
            return;            /* |uc| is gone */
        if (uc->px == NULL || (uc->ssl != NULL && !uc->tls_done))
            return;
    }
    if (events & UV_READABLE)
        do_read(uc);
}

void worker_upconn_start(wk_upconn *uc, wk_proxy *px)
{
    uc->px = px;
    px->uc = uc;
    uc->sent = uc->got = 0;
    uc->done = uc->close_after = uc->paused = uc->info = uc->tunnel = false;
    qd_buf_reset(&uc->in);
    uc->in_off = 0;
    qd_buf_reset(&uc->out);
    uc->out_off = 0;
    uc->last_io_ns = worker_now();
    http_parser_init(&uc->p, HTTP_RESPONSE);
    qd_buf_append(&uc->out, px->req.data, px->req.len);
    if (px->req.len > WK_PROXY_REPLAY_MAX) {
        px->replayable = false; /* too large to keep for another try */
        qd_buf_release(&px->req);
    }
    worker_upconn_write(uc);
}

void worker_upconn_release(wk_upconn *uc, bool reuse)
{
    wk_upserver *sv = uc->sv;

    if (uc->px != NULL) {
        uc->px->uc = NULL;
        uc->px = NULL;
    }
    if (!reuse || sv->g == NULL || sv->down || sv->g->conf.idle_timeout_ms == 0 ||
        the_worker.stopping) {
        worker_upconn_close(uc);
        return;
    }
    uc->reused = true;
    uc->idle_since_ns = worker_now();
    uc->idle_next = sv->idle;
    sv->idle = uc;
    sv->nidle++;
    watch(uc, UV_READABLE);
    worker_proxy_wake(&the_worker, sv->g);
}

void worker_upconn_sweep(worker *w, uint64_t now)
{
    for (wk_upconn *uc = w->upconns, *next; uc != NULL; uc = next) {
        next = uc->next;
        const qd_proxy_group *g = uc->sv->g != NULL ? &uc->sv->g->conf : NULL;
        if (uc->px == NULL) {
            if (g == NULL || now - uc->idle_since_ns >= (uint64_t)g->idle_timeout_ms * 1000000ULL)
                worker_upconn_close(uc);
            continue;
        }
        if (g == NULL || uc->paused || uc->tunnel)
            continue; /* a tunnel's idleness is the client connection's (tcp_idle_timeout) */
        bool sending = uc->out_off < uc->out.len;
        uint64_t limit = (uint64_t)(sending ? g->send_timeout_ms : g->read_timeout_ms) * 1000000ULL;
        if (now - uc->last_io_ns >= limit)
            worker_proxy_failed(uc->px, 504, QD_UP_RESULT_TIMEOUT,
                                sending ? "send_timeout" : "read_timeout");
    }
}
