/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	stats_http - GET /metrics, the Prometheus endpoint
 * SYNOPSIS
 *	stats_http_init(s)
 *	stats_http_message(s, m)
 *	stats_http_configure(s, conf)
 * DESCRIPTION
 *	The master binds metrics_listen and hands stats the listening socket,
 *	and metrics_token_file open, in QD_MSG_METRICS_HTTP before each
 *	CONFIG (master_metrics.c); stats_http_message keeps them until that
 *	CONFIG, where stats_http_configure takes them: the new socket is
 *	watched instead of the old one, the token read from the file.
 *
 *	Each connection, accepted non-blocking with libuv watching the
 *	socket: a peer outside metrics_allow is closed at once, and so is one
 *	beyond STATS_HTTP_MAX_CONNS open connections (both counted, logged
 *	with a rate limit). A request head is read into a fixed buffer of
 *	STATS_HTTP_HEAD_MAX bytes and parsed with http-parser (HTTP/1.0 and
 *	1.1): GET or HEAD of /metrics (query ignored) is answered 200 with
 *	the text of stats_metrics_text; 400 for a malformed request, 401
 *	(WWW-Authenticate: Bearer) without the right bearer token when one is
 *	configured, 404 for another path, 405 (Allow: GET, HEAD) for another
 *	method, 431 for a head that does not fit, 503 when a token is
 *	configured but could not be read (every scrape is refused rather than
 *	served unauthenticated). Keep-alive is allowed; a request with a body
 *	or an error (400, 431) ends the connection after its answer, with a
 *	lingering close so the client reads it.
 *
 *	Deadlines (STATS_HTTP_TIMEOUT_MS each): a whole request head from the
 *	accept or from the end of the previous answer (an idle kept-alive
 *	connection ends then too), and the answer's last byte from the head.
 *	Answers are written with non-blocking sends; what the socket does not
 *	take waits for it to be writable, so a slow reader costs the loop
 *	nothing and is cut off at its deadline.
 *
 *	Ownership: stats_http owns the listening socket it was given (the
 *	master keeps its own), each connection's socket and buffers; a
 *	connection is freed when it closes. The token is wiped when replaced.
 * DIAGNOSTICS
 *	Refused peers and connections beyond the limit are warnings,
 *	malformed requests and deadlines info lines, all rate-limited; a
 *	token that cannot be read is an error (once per configuration).
 * SEE ALSO
 *	daemons/master/master_metrics.c, libshared/qd_token.c, quicd.conf(5)
 */
#include "config.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* libraries */
#include <http_parser.h>
#include <uv.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_http.h"
#include "qd_log.h"
#include "qd_time.h"
#include "qd_token.h"
#include "qd_uv.h"

/* local */
#include "stats.h"

#define STATS_HTTP_MAX_CONNS 16
#define STATS_HTTP_HEAD_MAX 8192
#define STATS_HTTP_TIMEOUT_MS 5000
#define STATS_HTTP_LINGER_MS 1000 /* a closing connection's input is drained this long at most */
#define STATS_HTTP_SWEEP_MS 100   /* deadlines are checked this often while connections exist */
#define STATS_HTTP_ACCEPTS 32     /* accepts per wakeup */

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef enum conn_state {
    CS_HEAD,   /* reading a request head */
    CS_WRITE,  /* writing an answer */
    CS_LINGER, /* answer written, output shut down: reading until EOF, then close */
} conn_state;

typedef struct http_conn {
    stats_http *h;
    int fd;
    uv_poll_t *poll;
    int events; /* what poll watches */
    char peer[64];
    conn_state state;
    uint64_t deadline_ms;
    http_parser p;
    char in[STATS_HTTP_HEAD_MAX];
    size_t in_len, parsed;
    bool eof;
    /* the request being read: offsets into |in| (a head is never moved while read) */
    bool in_msg, head_done, in_value;
    size_t url_off, url_len;
    size_t name_off, name_len, value_off, value_len;
    size_t auth_off, auth_len;
    unsigned auths, hosts;
    bool has_body;
    /* the answer */
    qd_buf out;
    size_t out_off;
    bool close_after;
} http_conn;

typedef struct http_listener {
    int fd;
    uv_poll_t *poll;
} http_listener;

typedef enum token_state { TOKEN_NONE, TOKEN_OK, TOKEN_BROKEN } token_state;

struct stats_http {
    stats *s;
    http_listener listener; /* fd -1: off */
    char addr[80];
    /* from QD_MSG_METRICS_HTTP, for the CONFIG that follows */
    bool pending;
    int pending_listen, pending_token;
    char pending_addr[80];
    token_state token_state;
    char token[QD_TOKEN_MAX + 1];
    size_t token_len;
    http_conn *conns[STATS_HTTP_MAX_CONNS];
    int nconns;
    uv_timer_t sweep;
    qd_buf body; /* the metrics text of the answer being made */
};

static stats_http the_http;

static void conn_io(uv_poll_t *p, int status, int events);
static void conn_parse(http_conn *c);

/* conn_watch - watch |events| on the connection's socket (0: nothing) */
static void conn_watch(http_conn *c, int events)
{
    if (c->events == events)
        return;
    c->events = events;
    if (events == 0)
        uv_poll_stop(c->poll);
    else
        uv_poll_start(c->poll, events, conn_io);
}

/* conn_close - close and free the connection */
static void conn_close(http_conn *c)
{
    stats_http *h = c->h;

    for (int i = 0; i < h->nconns; i++) {
        if (h->conns[i] == c) {
            h->conns[i] = h->conns[--h->nconns];
            break;
        }
    }
    qd_uv_unwatch(&c->poll);
    close(c->fd);
    qd_buf_release(&c->out);
    free(c);
    if (h->nconns == 0)
        uv_timer_stop(&h->sweep);
}

/*
 * The answer's progress, returned by the functions that write it: the
 * connection was closed (and freed), waits for the socket or its lingering
 * end, or may read its next request.
 */
enum { STEP_CLOSED = -1, STEP_WAIT = 0, STEP_NEXT = 1 };

/* conn_linger - the answer is out: shut our side, read what the client still sends, then close */
static int conn_linger(http_conn *c)
{
    c->state = CS_LINGER;
    c->deadline_ms = qd_time_mono_ms() + STATS_HTTP_LINGER_MS;
    if (shutdown(c->fd, SHUT_WR) < 0 || c->eof) {
        conn_close(c);
        return STEP_CLOSED;
    }
    conn_watch(c, UV_READABLE);
    return STEP_WAIT;
}

/* conn_done - the answer is written: the connection goes on (keep-alive) or ends */
static int conn_done(http_conn *c)
{
    if (c->close_after || c->eof)
        return conn_linger(c);
    /* Pipelined bytes move to the front; the next head has its own deadline. */
    memmove(c->in, c->in + c->parsed, c->in_len - c->parsed);
    c->in_len -= c->parsed;
    c->parsed = 0;
    c->head_done = c->in_msg = false;
    c->state = CS_HEAD;
    c->deadline_ms = qd_time_mono_ms() + STATS_HTTP_TIMEOUT_MS;
    qd_buf_reset(&c->out);
    c->out_off = 0;
    conn_watch(c, UV_READABLE);
    return STEP_NEXT;
}

/* conn_flush - write what the socket takes; wait for it to be writable for the rest */
static int conn_flush(http_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_watch(c, UV_WRITABLE);
            return STEP_WAIT;
        }
        if (n < 0) {
            qd_debug("/metrics: %s: send: %s", c->peer, strerror(errno));
            conn_close(c);
            return STEP_CLOSED;
        }
        c->out_off += (size_t)n;
    }
    return conn_done(c);
}

/*
 * answer - compose the answer and start writing it. |body| (|len| bytes)
 * is sent unless the request was HEAD; |fields| are extra header lines,
 * each ending in CRLF.
 */
static int answer(http_conn *c, int status, const char *fields, const char *type, const char *body,
                  size_t len)
{
    bool head_only = c->head_done && c->p.method == HTTP_HEAD;
    const char *conn = "";

    if (status == 400 || status == 431 || status == 503)
        c->close_after = true; /* the rest of the input is not trusted, or nothing will do */
    if (c->close_after)
        conn = "Connection: close\r\n";
    else if (c->head_done && c->p.http_minor == 0)
        conn = "Connection: keep-alive\r\n"; /* HTTP/1.0 asked for it */
    qd_buf_reset(&c->out);
    c->out_off = 0;
    qd_buf_printf(&c->out,
                  "HTTP/1.1 %d %s\r\n"
                  "Content-Type: %s\r\n"
                  "Content-Length: %zu\r\n"
                  "Cache-Control: no-store\r\n"
                  "%s"
                  "%s"
                  "\r\n",
                  status, qd_http_reason((unsigned)status), type, len, fields, conn);
    if (!head_only)
        qd_buf_append(&c->out, body, len);
    c->state = CS_WRITE;
    c->deadline_ms = qd_time_mono_ms() + STATS_HTTP_TIMEOUT_MS;
    conn_watch(c, 0);
    return conn_flush(c);
}

/* refuse - an answer with a short text body */
static int refuse(http_conn *c, int status, const char *fields, const char *text)
{
    return answer(c, status, fields, "text/plain; charset=utf-8", text, strlen(text));
}

/* log_bad - a malformed request (rate-limited) */
static void log_bad(http_conn *c, int status, const char *why)
{
    static qd_log_limit lim;

    c->h->s->http_counts.bad_requests++;
    qd_log_limited(&lim, QD_LOG_INFO, "/metrics: %s: %d: %s", c->peer, status, why);
}

/* handle - a complete request head */
static int handle(http_conn *c)
{
    stats_http *h = c->h;
    stats_http_counts *n = &h->s->http_counts;
    struct http_parser_url u;
    const char *url = c->in + c->url_off;

    c->has_body =
        (c->p.flags & F_CHUNKED) || (c->p.content_length > 0 && c->p.content_length != ULLONG_MAX);
    c->close_after = c->has_body || !http_should_keep_alive(&c->p);
    bool v11 = c->p.http_minor >= 1;
    http_parser_url_init(&u);
    if (c->p.http_major != 1 || c->url_len == 0 ||
        http_parser_parse_url(url, c->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)) ||
        (v11 && c->hosts != 1) || c->hosts > 1 || c->auths > 1) {
        log_bad(c, 400, "malformed request");
        return refuse(c, 400, "", "bad request\n");
    }
    if (h->token_state == TOKEN_BROKEN) {
        static qd_log_limit lim;
        n->unavailable++;
        qd_log_limited(&lim, QD_LOG_WARN,
                       "/metrics: %s: 503: metrics_token_file could not be read; every scrape "
                       "is refused until a reload supplies a token",
                       c->peer);
        return refuse(c, 503, "", "no bearer token: see the log of quicd\n");
    }
    if (h->token_state == TOKEN_OK &&
        !qd_token_bearer_ok(c->in + c->auth_off, c->auth_len, h->token, h->token_len)) {
        static qd_log_limit lim;
        n->unauthorized++;
        qd_log_limited(&lim, QD_LOG_INFO, "/metrics: %s: 401: %s", c->peer,
                       c->auths ? "wrong bearer token" : "no bearer token");
        return refuse(c, 401,
                      c->auths
                          ? "WWW-Authenticate: Bearer realm=\"quicd\", error=\"invalid_token\"\r\n"
                          : "WWW-Authenticate: Bearer realm=\"quicd\"\r\n",
                      "unauthorized\n");
    }
    const char *path = url + u.field_data[UF_PATH].off;
    if (u.field_data[UF_PATH].len != 8 || memcmp(path, "/metrics", 8) != 0)
        return refuse(c, 404, "", "not found: the metrics are at /metrics\n");
    if (c->p.method != HTTP_GET && c->p.method != HTTP_HEAD)
        return refuse(c, 405, "Allow: GET, HEAD\r\n", "method not allowed\n");
    n->requests++;
    qd_buf_reset(&h->body);
    stats_metrics_text(h->s, &h->body);
    return answer(c, 200, "", CONTENT_TYPE, h->body.data, h->body.len);
}

/* piece - extend the span |*off|, |*len| with the callback's |at|, |n| (one buffer) */
static int piece(http_conn *c, size_t *off, size_t *len, const char *at, size_t n)
{
    size_t pos = (size_t)(at - c->in);

    if (*len == 0)
        *off = pos;
    else if (pos != *off + *len)
        return -1; /* never: the head stays where it was read */
    *len += n;
    return 0;
}

static http_conn *conn_of(http_parser *p)
{
    return p->data;
}

/* end_field - a header field is complete: note the ones we check */
static void end_field(http_conn *c)
{
    const char *name = c->in + c->name_off;

    if (c->name_len == 13 && strncasecmp(name, "authorization", 13) == 0) {
        c->auths++;
        c->auth_off = c->value_off;
        c->auth_len = c->value_len;
    } else if (c->name_len == 4 && strncasecmp(name, "host", 4) == 0) {
        c->hosts++;
    }
    c->name_len = c->value_len = 0;
    c->in_value = false;
}

static int on_message_begin(http_parser *p)
{
    http_conn *c = conn_of(p);

    c->in_msg = true;
    c->head_done = c->in_value = false;
    c->url_len = c->name_len = c->value_len = c->auth_len = 0;
    c->auths = c->hosts = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn *c = conn_of(p);

    return piece(c, &c->url_off, &c->url_len, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn *c = conn_of(p);

    if (c->in_value)
        end_field(c);
    return piece(c, &c->name_off, &c->name_len, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn *c = conn_of(p);

    c->in_value = true;
    return piece(c, &c->value_off, &c->value_len, at, len);
}

static int on_headers_complete(http_parser *p)
{
    http_conn *c = conn_of(p);

    if (c->in_value)
        end_field(c);
    c->head_done = true;
    http_parser_pause(p, 1); /* answered from conn_parse; the rest waits for the answer */
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn_of(p)->in_msg = false;
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/*
 * conn_parse - parse what was read and answer each complete head; requests
 * pipelined behind one are taken in turn while their answers go out at once
 */
static void conn_parse(http_conn *c)
{
    while (c->state == CS_HEAD && c->parsed < c->in_len) {
        size_t used =
            http_parser_execute(&c->p, &settings, c->in + c->parsed, c->in_len - c->parsed);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->p);

        c->parsed += used;
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->p, 0);
            if (c->head_done && handle(c) != STEP_NEXT)
                return; /* closed, or the answer waits for the socket */
            continue;
        }
        if (e != HPE_OK) {
            log_bad(c, 400, http_errno_description(e));
            refuse(c, 400, "", "bad request\n");
            return;
        }
    }
    if (c->state != CS_HEAD)
        return;
    if (c->in_len == sizeof(c->in)) {
        log_bad(c, 431, "request head over 8 KiB");
        refuse(c, 431, "", "request header fields too large\n");
    } else if (c->eof) {
        conn_close(c); /* the client gave up (or ended between requests) */
    }
}

/* conn_read - read what the socket has (the head buffer's room, or drained when lingering) */
static void conn_read(http_conn *c)
{
    for (;;) {
        char drain[4096];
        char *at = c->state == CS_LINGER ? drain : c->in + c->in_len;
        size_t room = c->state == CS_LINGER ? sizeof(drain) : sizeof(c->in) - c->in_len;
        if (room == 0)
            break;
        ssize_t n = recv(c->fd, at, room, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            c->eof = true;
            break;
        }
        if (c->state == CS_HEAD)
            c->in_len += (size_t)n;
    }
    if (c->state == CS_LINGER) {
        if (c->eof)
            conn_close(c);
        return;
    }
    conn_parse(c);
}

static void conn_io(uv_poll_t *p, int status, int events)
{
    http_conn *c = p->data;

    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->state == CS_WRITE && (events & UV_WRITABLE)) {
        if (conn_flush(c) == STEP_NEXT)
            conn_parse(c);
    } else if (c->state != CS_WRITE && (events & UV_READABLE))
        conn_read(c);
}

/* on_sweep - connections past their deadline */
static void on_sweep(uv_timer_t *t)
{
    stats_http *h = t->data;
    uint64_t now = qd_time_mono_ms();

    for (int i = h->nconns - 1; i >= 0; i--) { /* a close moves the last one to |i| */
        http_conn *c = h->conns[i];
        if (now < c->deadline_ms)
            continue;
        if (c->state == CS_WRITE || (c->state == CS_HEAD && c->in_msg)) {
            static qd_log_limit lim;
            h->s->http_counts.timeouts++;
            qd_log_limited(&lim, QD_LOG_INFO, "/metrics: %s: %s within %ds; closed", c->peer,
                           c->state == CS_WRITE ? "the answer was not read"
                                                : "no complete request head",
                           STATS_HTTP_TIMEOUT_MS / 1000);
        }
        conn_close(c);
    }
}

/* peer_text - "addr:port" of |ss| */
static void peer_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        port = ntohs(s4->sin_port);
        snprintf(buf, len, "%s:%u", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        port = ntohs(s6->sin6_port);
        snprintf(buf, len, "[%s]:%u", host, port);
    } else {
        snprintf(buf, len, "(unknown)");
    }
}

/* accept_one - a new connection: refused, or read */
static void accept_one(stats_http *h, int fd, const struct sockaddr_storage *ss)
{
    stats *s = h->s;
    char peer[64];

    peer_text(ss, peer, sizeof(peer));
    if (!qd_conf_nets_match(&s->child.conf.metrics_allow, (const struct sockaddr *)ss)) {
        static qd_log_limit lim;
        s->http_counts.refused_peers++;
        qd_log_limited(&lim, QD_LOG_WARN, "/metrics: refused %s: not in metrics_allow", peer);
        close(fd);
        return;
    }
    if (h->nconns == STATS_HTTP_MAX_CONNS) {
        static qd_log_limit lim;
        s->http_counts.refused_busy++;
        qd_log_limited(&lim, QD_LOG_WARN, "/metrics: refused %s: %d connections open already", peer,
                       STATS_HTTP_MAX_CONNS);
        close(fd);
        return;
    }
    http_conn *c = qd_xcalloc(1, sizeof(*c));
    c->h = h;
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->poll = qd_uv_watch(s->child.loop, fd, UV_READABLE, conn_io, c);
    if (c->poll == NULL) {
        close(fd);
        free(c);
        return;
    }
    c->events = UV_READABLE;
    http_parser_init(&c->p, HTTP_REQUEST);
    c->p.data = c;
    qd_buf_init(&c->out);
    c->state = CS_HEAD;
    c->deadline_ms = qd_time_mono_ms() + STATS_HTTP_TIMEOUT_MS;
    h->conns[h->nconns++] = c;
    if (h->nconns == 1)
        uv_timer_start(&h->sweep, on_sweep, STATS_HTTP_SWEEP_MS, STATS_HTTP_SWEEP_MS);
}

static void on_accept(uv_poll_t *p, int status, int events)
{
    stats_http *h = p->data;

    for (int i = 0; i < STATS_HTTP_ACCEPTS; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(h->listener.fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                static qd_log_limit lim;
                qd_log_limited(&lim, QD_LOG_WARN, "/metrics: accept: %s", strerror(errno));
            }
            return;
        }
        accept_one(h, fd, &ss);
    }
}

/* listen_on - serve |fd| (taken; -1: none) instead of the socket we had */
static void listen_on(stats_http *h, int fd, const char *addr)
{
    http_listener *l = &h->listener;
    int type = 0, acc = 0;
    socklen_t len = sizeof(type);

    qd_uv_unwatch(&l->poll);
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (fd >= 0 &&
        (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM ||
         (len = sizeof(acc), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len)) < 0 || !acc)) {
        qd_warn("/metrics: the descriptor from the master is not a listening TCP socket; "
                "not serving");
        close(fd);
        fd = -1;
    }
    if (fd >= 0) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        l->poll = qd_uv_watch(h->s->child.loop, fd, UV_READABLE, on_accept, h);
        if (l->poll == NULL) {
            close(fd);
            fd = -1;
        }
    }
    l->fd = fd;
    if (strcmp(addr, h->addr) != 0 || fd < 0) {
        if (fd >= 0)
            qd_info("serving /metrics on %s", addr);
        else if (h->addr[0] != '\0')
            qd_info("/metrics on %s closed", h->addr);
    }
    snprintf(h->addr, sizeof(h->addr), "%s", fd >= 0 ? addr : "");
}

/* token_set - read the token from |fd| (taken; -1: the master could not open it) */
static void token_set(stats_http *h, const qd_conf *conf, int fd)
{
    const char *why = "the master could not open it";
    int n = -1;

    explicit_bzero(h->token, sizeof(h->token));
    h->token_len = 0;
    if (conf->metrics_token_file[0] == '\0') {
        h->token_state = TOKEN_NONE;
        if (fd >= 0)
            close(fd);
        return;
    }
    if (fd >= 0) {
        n = qd_token_read(fd, h->token, sizeof(h->token), &why);
        close(fd);
    }
    if (n < 0) {
        h->token_state = TOKEN_BROKEN;
        qd_err("metrics_token_file %s: %s; every /metrics scrape is refused (503) until a "
               "reload supplies a token",
               conf->metrics_token_file, why);
        return;
    }
    h->token_len = (size_t)n;
    h->token_state = TOKEN_OK;
}

/* drop_pending - forget descriptors that no CONFIG took */
static void drop_pending(stats_http *h)
{
    if (h->pending_listen >= 0)
        close(h->pending_listen);
    if (h->pending_token >= 0)
        close(h->pending_token);
    h->pending_listen = h->pending_token = -1;
    h->pending = false;
}

void stats_http_init(stats *s)
{
    stats_http *h = &the_http;

    h->s = s;
    h->listener.fd = -1;
    h->pending_listen = h->pending_token = -1;
    uv_timer_init(s->child.loop, &h->sweep);
    h->sweep.data = h;
    qd_buf_init(&h->body);
    s->http = h;
}

void stats_http_message(stats *s, qd_ipc_msg *m)
{
    stats_http *h = s->http;
    uint32_t flags = 0;
    size_t want;

    if (qd_ipc_get_u32(m, QD_F_FLAGS, &flags) < 0 ||
        (flags & ~(uint32_t)(QD_METRICS_HTTP_F_LISTEN | QD_METRICS_HTTP_F_TOKEN)) != 0) {
        qd_child_bad_message(&s->child, "master", QD_ERR_INVAL);
        return;
    }
    want = ((flags & QD_METRICS_HTTP_F_LISTEN) != 0) + ((flags & QD_METRICS_HTTP_F_TOKEN) != 0);
    if (m->fd_count != want) {
        qd_child_bad_message(&s->child, "master", QD_ERR_FDS);
        return; /* its descriptors are closed with it */
    }
    drop_pending(h);
    h->pending = true;
    h->pending_addr[0] = '\0';
    qd_ipc_get_str(m, QD_F_ADDR, h->pending_addr, sizeof(h->pending_addr));
    size_t i = 0;
    if (flags & QD_METRICS_HTTP_F_LISTEN)
        h->pending_listen = qd_ipc_msg_take_fd(m, i++);
    if (flags & QD_METRICS_HTTP_F_TOKEN)
        h->pending_token = qd_ipc_msg_take_fd(m, i++);
}

void stats_http_configure(stats *s, const qd_conf *conf)
{
    stats_http *h = s->http;

    if (!h->pending)
        return; /* no word from the master about /metrics: it stays as it is */
    listen_on(h, h->pending_listen, h->pending_addr[0] ? h->pending_addr : "(metrics_listen)");
    token_set(h, conf, h->pending_token);
    h->pending_listen = h->pending_token = -1;
    h->pending = false;
}
