/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_tcp - HTTPS over TCP: accepting, TLS, timeouts, the write loop
 * SYNOPSIS
 *	worker_tcp_listen(), worker_tcp_unlisten(), worker_tcp_write(),
 *	worker_tcp_close(), worker_tcp_shutdown_all(), worker_tcp_close_all(),
 *	worker_tcp_out(), worker_tcp_touch()
 * DESCRIPTION
 *	Each listen address comes with a TCP listen socket per worker (the
 *	listener owns it and keeps it across worker restarts; QD_MSG_SOCKETS).
 *	The worker accepts, runs TLS 1.3 or 1.2 over the connection with
 *	wolfSSL (w->tls_tcp: the certificate and session-ticket key of QUIC)
 *	and hands the plaintext to HTTP/2 (worker_h2.c, nghttp2) or HTTP/1.1
 *	(worker_h1.c, http-parser) by ALPN; no ALPN means HTTP/1.1. Requests
 *	then take the same path as HTTP/3 ones (worker_req.c).
 *
 *	A TLS/TCP connection is a wk_conn with conn == NULL and a wk_tcp, in
 *	w->tconns. It owns its socket, its wolfSSL session, its protocol state
 *	and its plaintext output buffer: the protocol appends to |out| (at most
 *	about 64 KiB ahead of what TLS took), the write loop hands it to
 *	wolfSSL_write and waits for POLLOUT when the socket is full.
 *
 *	Deadlines are checked every WORKER_TCP_SWEEP_MS: the TLS handshake and
 *	each request head must be complete within tcp_header_timeout (a
 *	slowloris client is cut off), a connection without a request in
 *	progress is closed after tcp_idle_timeout, and so is one whose
 *	client has read nothing for that long while we had bytes to write,
 *	or has sent nothing for that long in the middle of a request body.
 * DIAGNOSTICS
 *	TLS and protocol errors close the connection (debug log); they are
 *	counted in tcp_errors. A full worker (max_connections TCP
 *	connections) closes new ones at once (tcp_refused).
 */
#include "config.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_cid.h"
#include "qd_log.h"
#include "qd_time.h"
#include "qd_uv.h"

/* local */
#include "worker.h"

#define ACCEPT_BATCH 64      /* connections accepted per wakeup of a listen socket */
#define READ_BUF (16 * 1024) /* one TLS record */
#define OUT_HIGH (64 * 1024) /* the protocol stops adding output here */
#define LINGER_MS 2000       /* how long a closed connection reads what the client still sends */

_Static_assert(sizeof(nghttp2_nv) == sizeof(nghttp3_nv) &&
                   offsetof(nghttp2_nv, value) == offsetof(nghttp3_nv, value) &&
                   offsetof(nghttp2_nv, namelen) == offsetof(nghttp3_nv, namelen) &&
                   offsetof(nghttp2_nv, valuelen) == offsetof(nghttp3_nv, valuelen) &&
                   offsetof(nghttp2_nv, flags) == offsetof(nghttp3_nv, flags),
               "nghttp2_nv and nghttp3_nv share a layout");

static void on_io(uv_poll_t *p, int status, int events);

/* addr_text - "addr:port" ([v6]:port) of |ss| */
static void addr_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
    }
}

/* watch - poll for |events| (readable, writable) */
static void watch(wk_tcp *t, int events)
{
    if (t->dead || t->poll == NULL || events == t->events)
        return;
    t->events = events;
    if (events == 0)
        uv_poll_stop(t->poll);
    else
        uv_poll_start(t->poll, events, on_io);
}

void worker_tcp_touch(wk_tcp *t)
{
    t->last_in_ns = worker_now();
}

void worker_tcp_out(wk_tcp *t, const void *data, size_t len)
{
    qd_buf_append(&t->out, data, len);
}

/* undirty - take |c| off the worker's list of connections to write */
static void undirty(wk_conn *c)
{
    worker *w = c->w;

    if (!c->dirty)
        return;
    for (wk_conn **pp = &w->dirty; *pp != NULL; pp = &(*pp)->dirty_next) {
        if (*pp == c) {
            *pp = c->dirty_next;
            break;
        }
    }
    c->dirty = false;
    c->dirty_next = NULL;
}

/*
 * end_session - the requests (records, access log, cancels at the app),
 * the protocol state and the connection's record: once, when our side of
 * the connection ends (a lingering close keeps only the socket).
 */
static void end_session(wk_conn *c)
{
    wk_tcp *t = c->tcp;

    if (t->recorded)
        return;
    t->recorded = true;
    worker_req_free_all(c);
    if (t->h2 != NULL)
        worker_h2_free(c);
    if (t->h1 != NULL)
        worker_h1_free(c);
    c->close_reason = t->close_reason;
    worker_metrics_conn(c);
    worker_rec_conn(c);
}

/*
 * conn_free - the end of a TCP connection: its requests (records, cancels
 * at the app), its record, its TLS session and socket.
 */
static void conn_free(wk_conn *c)
{
    worker *w = c->w;
    wk_tcp *t = c->tcp;

    undirty(c);
    end_session(c);
    qd_debug("TCP connection %s from %s (%s) closed after %llums", c->cid_text, c->peer,
             worker_conn_proto(c),
             (unsigned long long)((worker_now() - c->started_ns) / 1000000));
    qd_uv_unwatch(&t->poll);
    if (t->ssl != NULL)
        wolfSSL_free(t->ssl);
    c->ssl = NULL;
    close(t->fd);
    qd_buf_release(&t->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->tconns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->tcp_count--;
    free(t);
    free(c);
}

void worker_tcp_close(wk_conn *c, uint32_t by, uint32_t reason)
{
    wk_tcp *t = c->tcp;

    if (t->dead)
        return;
    watch(t, 0);
    t->dead = true;
    t->close_by = by;
    t->close_reason = reason;
    worker_conn_mark(c); /* freed by the next worker_tcp_write, at a safe point */
}

/* fail - a TLS or protocol error: close */
static void fail(wk_conn *c, const char *what)
{
    c->w->tcp_errors++;
    qd_debug("TCP connection %s from %s: %s", c->cid_text, c->peer, what);
    worker_tcp_close(c, QD_REC_CLOSE_BY_SERVER, QD_REC_REASON_ERROR);
}

/*
 * linger - our side is done (all written): send close_notify, shut the
 * socket for writing, and read what the client still sends for up to
 * LINGER_MS, so that a request body we did not read cannot make the
 * kernel reset the connection (and lose our answer) before the client
 * read it. Counted as closed for the records and status from here.
 */
static void linger(wk_conn *c)
{
    wk_tcp *t = c->tcp;

    wolfSSL_shutdown(t->ssl); /* close_notify; no wait for the client's */
    shutdown(t->fd, SHUT_WR);
    t->lingering = true;
    t->linger_until_ns = worker_now() + LINGER_MS * 1000000ULL;
    if (t->close_by == QD_REC_CLOSE_BY_NONE)
        t->close_by = QD_REC_CLOSE_BY_SERVER;
    end_session(c);
    undirty(c);
    watch(t, UV_READABLE);
}

/* drain_linger - discard what a lingering client sends; true when it is gone */
static bool drain_linger(wk_tcp *t)
{
    static uint8_t scratch[16384];

    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(t->fd, scratch, sizeof(scratch), 0);
        if (n > 0)
            continue;
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return false;
}

/* produce - let the protocol add output; 0, or -1 when the connection must end */
static int produce(wk_conn *c)
{
    wk_tcp *t = c->tcp;

    if (t->kind == WK_TCP_H2)
        return worker_h2_produce(c);
    if (t->kind == WK_TCP_H1)
        return worker_h1_produce(c);
    return 0;
}

/* finished - the protocol has nothing more to do on this connection */
static bool finished(wk_conn *c)
{
    wk_tcp *t = c->tcp;

    if (t->kind == WK_TCP_H2)
        return worker_h2_done(c);
    return t->closing;
}

/*
 * write_out - hand output to TLS until the socket is full or the protocol
 * has nothing more; close a connection that is finished.
 */
static void do_read(wk_conn *c);

static void write_out(wk_conn *c)
{
    wk_tcp *t = c->tcp;
    int rounds = 0;

    if (t->dead || t->lingering || !wolfSSL_is_init_finished(t->ssl))
        return;
again:
    for (;;) {
        if (t->out_off == t->out.len) {
            qd_buf_reset(&t->out);
            t->out_off = 0;
            if (produce(c) < 0) {
                fail(c, "protocol error");
                break;
            }
            if (t->out.len == 0)
                break;
        }
        size_t len = t->write_len ? t->write_len : t->out.len - t->out_off;
        int n = wolfSSL_write(t->ssl, t->out.data + t->out_off, (int)len);
        if (n <= 0) {
            int e = wolfSSL_get_error(t->ssl, n);
            if (e == WOLFSSL_ERROR_WANT_WRITE) {
                t->write_len = len;
                watch(t, UV_READABLE | UV_WRITABLE);
                return;
            }
            fail(c, "TLS write failed");
            break;
        }
        t->write_len = 0;
        t->out_off += (size_t)n;
        t->last_out_ns = worker_now();
        c->bytes_out += (uint64_t)n;
        c->w->tx_bytes += (uint64_t)n;
    }
    if (!t->dead && finished(c)) {
        linger(c);
        return;
    }
    if (t->dead)
        return;
    bool read = t->kind != WK_TCP_H1 || !worker_h1_paused(c);
    /* An HTTP/1.1 connection that waited for its response may have the next
     * request in TLS's buffer already, where no poll will see it. */
    if (read && t->out_off == t->out.len && wolfSSL_pending(t->ssl) > 0 && rounds++ < 4) {
        do_read(c);
        if (!t->dead)
            goto again;
        return;
    }
    watch(t, read ? UV_READABLE : 0);
}

/* on_handshake_done - ALPN picks the protocol */
static int on_handshake_done(wk_conn *c)
{
    wk_tcp *t = c->tcp;
    worker *w = c->w;
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;

    c->handshake_done = true;
    c->handshake_ns = worker_now() - c->started_ns;
    w->handshakes++;
    worker_metrics_handshake(c);
    wolfSSL_get0_alpn_selected(t->ssl, &alpn, &alen);
    if (alen == 2 && memcmp(alpn, "h2", 2) == 0) {
        t->kind = WK_TCP_H2;
        c->proto = &worker_h2_proto;
        return worker_h2_start(c);
    }
    t->kind = WK_TCP_H1;
    c->proto = &worker_h1_proto;
    return worker_h1_start(c);
}

/* do_read - the TLS handshake, then plaintext into the protocol */
static void do_read(wk_conn *c)
{
    static uint8_t buf[READ_BUF];
    wk_tcp *t = c->tcp;

    if (!wolfSSL_is_init_finished(t->ssl)) {
        int rv = wolfSSL_accept(t->ssl);
        if (rv != WOLFSSL_SUCCESS) {
            int e = wolfSSL_get_error(t->ssl, rv);
            if (e == WOLFSSL_ERROR_WANT_READ)
                return;
            if (e == WOLFSSL_ERROR_WANT_WRITE) {
                watch(t, UV_READABLE | UV_WRITABLE);
                return;
            }
            char text[WOLFSSL_MAX_ERROR_SZ];
            fail(c, wolfSSL_ERR_error_string((unsigned long)e, text));
            return;
        }
        watch(t, UV_READABLE);
        if (on_handshake_done(c) < 0) {
            fail(c, "cannot start the HTTP session");
            return;
        }
    }
    while (!t->dead) {
        if (t->kind == WK_TCP_H1 && worker_h1_paused(c))
            break; /* the next request waits for this response */
        int n = wolfSSL_read(t->ssl, buf, sizeof(buf));
        if (n <= 0) {
            int e = wolfSSL_get_error(t->ssl, n);
            if (e == WOLFSSL_ERROR_WANT_READ)
                break;
            if (e == WOLFSSL_ERROR_WANT_WRITE) {
                watch(t, UV_READABLE | UV_WRITABLE);
                break;
            }
            /* close_notify, EOF or an error: the client is gone */
            worker_tcp_close(c, QD_REC_CLOSE_BY_CLIENT,
                             e == WOLFSSL_ERROR_ZERO_RETURN || n == 0 ? QD_REC_REASON_NONE
                                                                    : QD_REC_REASON_ERROR);
            break;
        }
        t->last_in_ns = worker_now();
        c->bytes_in += (uint64_t)n;
        c->w->rx_bytes += (uint64_t)n;
        int rv = t->kind == WK_TCP_H2 ? worker_h2_recv(c, buf, (size_t)n)
                                      : worker_h1_recv(c, buf, (size_t)n);
        if (rv < 0 && !t->dead) {
            /* the protocol queued its error answer (GOAWAY, 400): send it, then close */
            t->closing = true;
            break;
        }
    }
}

static void on_io(uv_poll_t *p, int status, int events)
{
    wk_conn *c = p->data;
    wk_tcp *t = c->tcp;

    if (t->lingering) {
        if (status < 0 || drain_linger(t))
            conn_free(c);
        return;
    }
    if (status < 0) {
        worker_tcp_close(c, QD_REC_CLOSE_BY_CLIENT, QD_REC_REASON_ERROR);
    } else {
        if ((events & UV_READABLE) || !wolfSSL_is_init_finished(t->ssl))
            do_read(c);
        if (!t->dead)
            write_out(c);
    }
    if (t->dead)
        conn_free(c);
}

/*
 * worker_tcp_write - write what is pending (the worker's check handle calls
 * it for connections marked dirty) and free a connection closed meanwhile.
 */
void worker_tcp_write(wk_conn *c)
{
    write_out(c);
    if (c->tcp->dead)
        conn_free(c);
}

/* new_conn - a connection just accepted on endpoint |ep| */
static void new_conn(worker *w, wk_ep *ep, int fd, const struct sockaddr_storage *peer)
{
    wk_conn *c = qd_xcalloc(1, sizeof(*c));
    wk_tcp *t = qd_xcalloc(1, sizeof(*t));
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    uint8_t id[QD_CID_LEN];
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->w = w;
    c->tcp = t;
    t->c = c;
    t->fd = fd;
    qd_buf_init(&t->out);
    c->started_ns = worker_now();
    c->started_ms = qd_time_real_ms();
    t->last_in_ns = t->last_out_ns = c->started_ns;
    t->head_deadline_ns = c->started_ns + (uint64_t)w->child.conf.tcp_header_timeout_ms * 1000000;
    t->port = ntohs(ep->port);
    addr_text(peer, c->peer, sizeof(c->peer));
    snprintf(c->paths[0], sizeof(c->paths[0]), "%s", c->peer);
    c->npaths = 1;
    if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
        addr_text(&local, c->local, sizeof(c->local));
    if (qd_random(id, sizeof(id)) < 0)
        memset(id, 0, sizeof(id));
    for (size_t i = 0; i < sizeof(id); i++)
        snprintf(c->cid_text + 2 * i, 3, "%02x", id[i]);
    c->next = w->tconns;
    if (w->tconns)
        w->tconns->prev = c;
    w->tconns = c;
    w->tcp_count++;
    w->tcp_accepted++;
    t->ssl = wolfSSL_new(w->tls_tcp);
    if (t->ssl == NULL || wolfSSL_set_fd(t->ssl, fd) != WOLFSSL_SUCCESS ||
        wolfSSL_UseALPN(t->ssl, (char *)"h2,http/1.1", 11, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) !=
            WOLFSSL_SUCCESS) {
        fail(c, "cannot make a TLS session");
        conn_free(c);
        return;
    }
    c->ssl = t->ssl; /* for the connection record: ALPN, cipher, resumption */
    wolfSSL_set_accept_state(t->ssl);
    t->poll = qd_uv_watch(w->child.loop, fd, UV_READABLE, on_io, c);
    t->events = UV_READABLE;
    if (t->poll == NULL) {
        fail(c, "cannot watch the socket");
        conn_free(c);
    }
}

static void on_accept(uv_poll_t *p, int status, int events)
{
    wk_ep *ep = p->data;
    worker *w = ep->w;

    for (int i = 0; i < ACCEPT_BATCH && (!w->stopping || worker_now() < w->accept_until_ns); i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(ep->tcp_fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED) {
                static qd_log_limit lim;
                qd_log_limited(&lim, QD_LOG_WARN, "accept on %s: %s", ep->name, strerror(errno));
            }
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        if (w->tcp_count >= (uint64_t)w->child.conf.max_connections) {
            w->tcp_refused++;
            close(fd);
            continue;
        }
        new_conn(w, ep, fd, &peer);
    }
}

/* expired - a deadline of |c| has passed: which one, or NULL */
static const char *expired(wk_conn *c, uint64_t now, uint32_t *reason)
{
    wk_tcp *t = c->tcp;
    const qd_conf *conf = &c->w->child.conf;
    uint64_t idle_ns = (uint64_t)conf->tcp_idle_timeout_ms * 1000000;
    uint64_t head_ns = (uint64_t)conf->tcp_header_timeout_ms * 1000000;

    *reason = QD_REC_REASON_IDLE;
    if (!c->handshake_done) {
        *reason = QD_REC_REASON_HANDSHAKE_TIMEOUT;
        return now >= c->started_ns + head_ns ? "TLS handshake timeout" : NULL;
    }
    /* A request head begun and not finished (HTTP/1.1; HTTP/2 streams below:
     * a complete head went to the app or was answered; :method may have come
     * in a HEADERS frame whose CONTINUATION never does). */
    if (t->head_deadline_ns != 0 && now >= t->head_deadline_ns)
        return "request head timeout";
    for (wk_stream *s = c->streams; s != NULL; s = s->next) {
        if (!s->head_done && now >= s->started_ns + head_ns)
            return "request head timeout";
        /* A request body the client stopped sending: the stream keeps the
         * connection from being idle, so without this it would stay forever. */
        if (!s->req_done && now >= t->last_in_ns + idle_ns)
            return "request body timeout";
        /* A tunnel (a WebSocket through the proxy) quiet both ways */
        if (s->tunnel && now >= (t->last_in_ns > t->last_out_ns ? t->last_in_ns : t->last_out_ns) + idle_ns)
            return "tunnel idle";
    }
    if (t->out_off < t->out.len && now >= t->last_out_ns + idle_ns)
        return "client not reading";
    bool idle = t->kind == WK_TCP_H1 ? worker_h1_idle(c) : c->nstreams == 0;
    uint64_t last = t->last_in_ns > t->last_out_ns ? t->last_in_ns : t->last_out_ns;
    if (idle && now >= last + idle_ns)
        return "idle";
    return NULL;
}

static void on_sweep(uv_timer_t *timer)
{
    worker *w = timer->data;
    uint64_t now = worker_now();
    wk_conn *next;
    uint32_t reason;

    for (wk_conn *c = w->tconns; c != NULL; c = next) {
        next = c->next;
        if (c->tcp->lingering) {
            if (now >= c->tcp->linger_until_ns)
                conn_free(c);
            continue;
        }
        const char *why = expired(c, now, &reason);
        if (why == NULL)
            continue;
        qd_debug("TCP connection %s from %s: %s", c->cid_text, c->peer, why);
        worker_tcp_close(c, QD_REC_CLOSE_BY_SERVER, reason);
        conn_free(c);
    }
}

/*
 * worker_tcp_listen - accept on |ep|'s TCP socket, once the app is
 * connected too: a worker that just (re)started would otherwise answer
 * the connections waiting in the queue with 503 while its app channel is
 * on its way; they wait in the kernel a moment longer instead.
 */
void worker_tcp_listen(worker *w, wk_ep *ep)
{
    if (ep->tcp_fd < 0 || w->stopping || w->app == NULL || ep->tcp_poll != NULL)
        return;
    ep->tcp_poll = qd_uv_watch(w->child.loop, ep->tcp_fd, UV_READABLE, on_accept, ep);
    if (!w->tcp_sweep_on) {
        uv_timer_init(w->child.loop, &w->tcp_sweep);
        w->tcp_sweep.data = w;
        uv_timer_start(&w->tcp_sweep, on_sweep, WORKER_TCP_SWEEP_MS, WORKER_TCP_SWEEP_MS);
        uv_unref((uv_handle_t *)&w->tcp_sweep);
        w->tcp_sweep_on = true;
    }
}

void worker_tcp_unlisten(wk_ep *ep)
{
    qd_uv_unwatch(&ep->tcp_poll);
}

/*
 * drain_step - one step of a draining connection, as for QUIC
 * (worker_conn.c): nothing while its handshake or its first request may
 * be on the way; then HTTP/2 gets a shutdown notice, a few round trips
 * later the final GOAWAY, and ends when its streams are done; HTTP/1.1
 * ends after its current response (Connection: close), once the rest of
 * a response already made is sent, or at once when idle. Returns true
 * when |c| was freed.
 */
static bool drain_step(wk_conn *c, uint64_t now)
{
    wk_tcp *t = c->tcp;

    if (t->lingering)
        return false; /* done already */
    t->draining = true;
    if (!c->handshake_done || (c->nrequests == 0 && now < c->started_ns + WORKER_FIRST_REQUEST_NS))
        return false;
    if (t->kind == WK_TCP_H2) {
        if (c->notice_ns == 0) {
            worker_h2_notice(c);
        } else if (!c->goaway_sent && now >= c->notice_ns + 2 * WORKER_NOTICE_GRACE_MIN_NS) {
            worker_h2_shutdown(c, false);
            c->goaway_sent = true;
        }
        worker_tcp_write(c);
        return false;
    }
    if (t->kind == WK_TCP_H1 && worker_h1_idle(c) && (t->out_off < t->out.len || t->write_len)) {
        /* the last response is read and answered but not all sent yet:
         * send the rest, then end as any finished connection (linger) */
        t->closing = true;
        worker_tcp_write(c);
        return false;
    }
    if (t->kind != WK_TCP_H1 || worker_h1_idle(c)) {
        worker_tcp_close(c, QD_REC_CLOSE_BY_SERVER, QD_REC_REASON_NONE);
        conn_free(c);
        return true;
    }
    worker_tcp_write(c);
    return false;
}

/*
 * worker_tcp_shutdown_all - a graceful stop: drain every connection, and
 * accept for WORKER_ACCEPT_GRACE_NS more (the connections whose handshake
 * began before the steering switched), each drained like the others; the
 * listen sockets stay the listener's.
 */
void worker_tcp_shutdown_all(worker *w)
{
    uint64_t now = worker_now();
    wk_conn *next;

    w->may_exit_ns = now + WORKER_ACCEPT_GRACE_NS;
    w->accept_until_ns = (w->child.stop_flags & QD_STOP_F_STEERED_AWAY) ? UINT64_MAX
                                                                         : w->may_exit_ns;
    for (wk_conn *c = w->tconns; c != NULL; c = next) {
        next = c->next;
        drain_step(c, now);
    }
}

/* worker_tcp_close_all - while stopping: the next drain step of every TCP
 * connection; at the deadline (|force|) close them all */
bool worker_tcp_close_all(worker *w, bool force)
{
    uint64_t now = worker_now();
    bool accepting = false;
    wk_conn *next;

    for (size_t i = 0; i < w->nep; i++) {
        if (force || now >= w->accept_until_ns)
            worker_tcp_unlisten(&w->eps[i]);
        accepting = accepting || (w->eps[i].tcp_poll != NULL && now < w->may_exit_ns);
    }

    for (wk_conn *c = w->tconns; c != NULL; c = next) {
        next = c->next;
        if (!force) {
            drain_step(c, now);
            continue;
        }
        worker_tcp_close(c, QD_REC_CLOSE_BY_SERVER, QD_REC_REASON_NONE);
        conn_free(c);
    }
    return accepting;
}
