/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	upstream_check - resolving and the health (active checks, passive failures) of one server
 * SYNOPSIS
 *	upstream_resolve(), upstream_check_start(), upstream_check_restart(),
 *	upstream_check_stop(), upstream_passive(), upstream_server_put(),
 *	upstream_state_name(), upstream_cause_name()
 * DESCRIPTION
 *	A server's name is resolved with getaddrinfo in libuv's thread pool
 *	(numeric addresses and Unix sockets need none), at the start and
 *	every UPSTREAM_RESOLVE_MS; the first address is used, and a failed
 *	resolution keeps the address found before.
 *
 *	A group with check=PATH gets one check per server every
 *	check_interval: a non-blocking connect, "GET PATH HTTP/1.1" with
 *	Connection: close, and the status line of the answer, read with
 *	http-parser in response mode. A status that matches expect (a code,
 *	or a class such as 2xx) within check_timeout is a success; anything
 *	else (refused, timed out, closed, another status, not resolved) a
 *	failure. fall failures in a row mark an up server down, rise
 *	successes in a row a down one up; servers start up.
 *
 *	Passive failures are counted apart (upstream_passive): a connect the
 *	daemon made for a worker that failed, or a request a worker reports
 *	as timed out or broken. A success (a connect, a report of an answer)
 *	starts the run over; fall failures in a row mark an up server down.
 *	It comes back through its checks (rise good ones counted from then)
 *	or, in a group without checks, after the group's fail_timeout.
 *	Every change of state goes through set_state, which marks the server
 *	for the workers' broadcast (upstream_conn_announce).
 *
 *	Each server owns its socket (fd, at most one check at a time), a poll
 *	handle while a check runs and three timers; a retired server (reload)
 *	is freed once every handle is closed, no resolution is pending and no
 *	connect for a worker points to it; its workers' counts are freed
 *	when it is retired.
 * DIAGNOSTICS
 *	Every change of state is logged at notice level with its cause.
 */
#include "config.h"

/* system */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* libshared */
#include "qd_log.h"
#include "qd_time.h"

/* local */
#include "upstream.h"

const char *upstream_state_name(us_state st)
{
    return st == US_UP ? "up" : "down";
}

const char *upstream_cause_name(us_cause by)
{
    return by == US_BY_CHECK ? "check" : by == US_BY_PASSIVE ? "passive" : "-";
}

/* maybe_free - a retired server goes once nothing refers to it any more */
static void maybe_free(us_server *s)
{
    if (s->retired && s->open_handles == 0 && !s->resolving && s->connecting == 0) {
        upstream_conn_forget(s);
        free(s);
    }
}

void upstream_server_put(us_server *s)
{
    assert(s->connecting > 0);
    s->connecting--;
    maybe_free(s);
}

/*
 * set_state - the one place a server changes state: log the cause, stamp
 * the time, and mark it for the broadcast to the workers
 */
static void set_state(us_server *s, us_state st, us_cause by, const char *fmt, ...)
{
    char cause[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cause, sizeof(cause), fmt, ap);
    va_end(ap);
    s->state = st;
    s->down_by = st == US_DOWN ? by : US_BY_NONE;
    s->since_ms = qd_time_real_ms();
    s->u->changes++;
    if (st == US_UP) {
        s->passive_run = 0;
        uv_timer_stop(&s->revive);
    }
    qd_notice("upstream %s server %s is %s: %s", s->group, s->name, upstream_state_name(st), cause);
    s->announce = true;
    upstream_conn_announce(s->u);
}

static void on_handle_closed(uv_handle_t *h)
{
    us_server *s = h->data;

    s->open_handles--;
    maybe_free(s);
}

/* on_poll_closed - libuv is done with the socket: close it; a new check may start */
static void on_poll_closed(uv_handle_t *h)
{
    us_server *s = h->data;

    close(s->closing_fd);
    s->closing_fd = -1;
    s->poll_closing = false;
    on_handle_closed(h);
}

/* close_check - end the check's socket: its poll handle first, the descriptor when it is closed */
static void close_check(us_server *s)
{
    uv_poll_stop(&s->poll);
    s->closing_fd = s->fd;
    s->fd = -1;
    s->poll_closing = true;
    uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

/* addr_text - the address in use, for reports */
static void addr_text(us_server *s)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (s->addr.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&s->addr;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(s->addr_text, sizeof(s->addr_text), "%s:%u", host, ntohs(a->sin_port));
    } else if (s->addr.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&s->addr;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(s->addr_text, sizeof(s->addr_text), "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        snprintf(s->addr_text, sizeof(s->addr_text), "unix");
    }
}

static void set_addr(us_server *s, const struct sockaddr *sa, socklen_t len)
{
    memcpy(&s->addr, sa, len);
    s->addrlen = len;
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)&s->addr)->sin_port = htons(s->conf.port);
    else if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)&s->addr)->sin6_port = htons(s->conf.port);
    addr_text(s);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    us_server *s = req->data;

    s->resolving = false;
    if (s->retired) {
        uv_freeaddrinfo(res);
        maybe_free(s);
        return;
    }
    if (status < 0 || res == NULL) {
        snprintf(s->resolve_error, sizeof(s->resolve_error), "%s", uv_strerror(status));
        qd_warn("upstream %s server %s: cannot resolve %s: %s%s", s->group, s->name, s->conf.host,
                uv_strerror(status), s->addrlen ? " (keeping the last address)" : "");
    } else {
        s->resolve_error[0] = '\0';
        set_addr(s, res->ai_addr, res->ai_addrlen);
    }
    uv_freeaddrinfo(res);
}

/* upstream_resolve - find the server's address (again) */
void upstream_resolve(us_server *s)
{
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    struct sockaddr_un un = {.sun_family = AF_UNIX};

    if (s->conf.unix_path[0]) {
        snprintf(un.sun_path, sizeof(un.sun_path), "%s", s->conf.unix_path);
        set_addr(s, (struct sockaddr *)&un, sizeof(un));
        return;
    }
    if (inet_pton(AF_INET, s->conf.host, &a4.sin_addr) == 1) {
        set_addr(s, (struct sockaddr *)&a4, sizeof(a4));
        return;
    }
    if (inet_pton(AF_INET6, s->conf.host, &a6.sin6_addr) == 1) {
        set_addr(s, (struct sockaddr *)&a6, sizeof(a6));
        return;
    }
    if (s->resolving)
        return;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    s->gai.data = s;
    if (uv_getaddrinfo(s->u->child.loop, &s->gai, on_resolved, s->conf.host, NULL, &hints) == 0)
        s->resolving = true;
}

/* result - one check's outcome, and the state it leads to */
static void result(us_server *s, bool ok, const char *why)
{
    const qd_proxy_group *g = &s->gconf;

    snprintf(s->last, sizeof(s->last), "%s", why);
    s->checks++;
    s->u->checks[ok ? QD_MV_OK : QD_MV_FAILED]++;
    if (ok) {
        s->ok_run++;
        s->fail_run = 0;
    } else {
        s->failures++;
        s->fail_run++;
        s->ok_run = 0;
    }
    if (s->state == US_UP && s->fail_run >= g->fall)
        set_state(s, US_DOWN, US_BY_CHECK, "%s (%u failed checks in a row)", why, s->fail_run);
    else if (s->state == US_DOWN && s->ok_run >= g->rise)
        set_state(s, US_UP, US_BY_NONE, "%s (%u good checks in a row)", why, s->ok_run);
}

/* on_revive - a server down without checks to bring it back: try it again */
static void on_revive(uv_timer_t *t)
{
    us_server *s = t->data;

    if (s->state == US_DOWN && !s->gconf.check_path[0] && !s->retired)
        set_state(s, US_UP, US_BY_NONE, "fail_timeout (%ums) passed, no checks",
                  s->gconf.fail_timeout_ms);
}

void upstream_passive(us_server *s, bool ok, const char *why)
{
    if (ok) {
        s->passive_run = 0;
        return;
    }
    s->passive_failures++;
    s->u->passive_failures++;
    s->passive_run++;
    if (s->state != US_UP || s->passive_run < s->gconf.fall)
        return;
    s->ok_run = 0; /* with checks: rise good ones from now on */
    set_state(s, US_DOWN, US_BY_PASSIVE, "passive: %u failures (last: %s)", s->passive_run, why);
    if (!s->gconf.check_path[0])
        uv_timer_start(&s->revive, on_revive, s->gconf.fail_timeout_ms, 0);
}

/* finish - end the check in progress with its outcome */
static void finish(us_server *s, bool ok, const char *why)
{
    uv_timer_stop(&s->timeout);
    if (s->fd >= 0)
        close_check(s);
    result(s, ok, why);
}

static int on_headers_complete(http_parser *p)
{
    us_server *s = p->data;

    s->status = p->status_code;
    s->got_status = true;
    return 1; /* no body wanted */
}

static const http_parser_settings parser_settings = {.on_headers_complete = on_headers_complete};

static bool expected(const us_server *s)
{
    unsigned e = s->gconf.expect;

    return e < 10 ? s->status / 100 == e : s->status == e;
}

/* on_io - the connect completed, or the answer is readable */
static void on_io(uv_poll_t *p, int status, int events)
{
    us_server *s = p->data;
    char buf[4096], why[96];

    /* libuv reports POLLERR as UV_EBADF: the socket's own error says what happened */
    int err = 0;
    socklen_t len = sizeof(err);
    if (status < 0 && (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0))
        err = EIO;
    if (!s->sent && status == 0 && getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        snprintf(why, sizeof(why), "%s: %s", s->sent ? "recv" : "connect", strerror(err));
        finish(s, false, why);
        return;
    }
    if (!s->sent && s->conf.tls) {
        /* an https:// server: the daemon speaks no TLS; the check is the connect
         * (the workers verify the certificate, and their failures count) */
        finish(s, true, "connected (TLS server: connect check)");
        return;
    }
    if (!s->sent) {
        int n = snprintf(buf, sizeof(buf),
                         "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: quicd-check\r\n"
                         "Connection: close\r\n\r\n",
                         s->gconf.check_path, s->conf.unix_path[0] ? "localhost" : s->conf.host);
        ssize_t w = send(s->fd, buf, (size_t)n, MSG_NOSIGNAL);
        if (w != n) {
            snprintf(why, sizeof(why), "send: %s", w < 0 ? strerror(errno) : "short write");
            finish(s, false, why);
            return;
        }
        s->sent = true;
        uv_poll_start(&s->poll, UV_READABLE, on_io);
        return;
    }
    ssize_t n = recv(s->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        snprintf(why, sizeof(why), "recv: %s", strerror(errno));
        finish(s, false, why);
        return;
    }
    if (n > 0)
        http_parser_execute(&s->parser, &parser_settings, buf, (size_t)n);
    if (s->got_status) {
        snprintf(why, sizeof(why), "status %u", s->status);
        finish(s, expected(s), why);
    } else if (n == 0 || HTTP_PARSER_ERRNO(&s->parser) != HPE_OK) {
        finish(s, false, n == 0 ? "closed before a status line" : "not an HTTP response");
    }
}

static void on_timeout(uv_timer_t *t)
{
    us_server *s = t->data;
    char why[64];

    snprintf(why, sizeof(why), "no answer within %ums", s->gconf.check_timeout_ms);
    finish(s, false, why);
}

/* on_interval - time for the next check */
static void on_interval(uv_timer_t *t)
{
    us_server *s = t->data;
    char why[128];

    if (s->fd >= 0 || s->poll_closing || s->retired)
        return; /* the last one is still running (its timeout ends it), or closing */
    if (s->addrlen == 0) {
        snprintf(why, sizeof(why), "not resolved: %s",
                 s->resolve_error[0] ? s->resolve_error : "pending");
        result(s, false, why);
        return;
    }
    s->fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        snprintf(why, sizeof(why), "socket: %s", strerror(errno));
        result(s, false, why);
        return;
    }
    if (connect(s->fd, (struct sockaddr *)&s->addr, s->addrlen) < 0 && errno != EINPROGRESS) {
        snprintf(why, sizeof(why), "connect: %s", strerror(errno));
        close(s->fd);
        s->fd = -1;
        result(s, false, why);
        return;
    }
    s->sent = false;
    s->got_status = false;
    s->status = 0;
    http_parser_init(&s->parser, HTTP_RESPONSE);
    s->parser.data = s;
    uv_poll_init(s->u->child.loop, &s->poll, s->fd);
    s->poll.data = s;
    s->open_handles++;
    uv_poll_start(&s->poll, UV_WRITABLE, on_io);
    uv_timer_start(&s->timeout, on_timeout, s->gconf.check_timeout_ms, 0);
}

/* upstream_check_start - the server's timers; checks begin if its group has check= */
void upstream_check_start(us_server *s)
{
    uv_loop_t *loop = s->u->child.loop;

    s->fd = -1;
    uv_timer_init(loop, &s->interval);
    uv_timer_init(loop, &s->timeout);
    uv_timer_init(loop, &s->revive);
    s->interval.data = s->timeout.data = s->revive.data = s;
    s->open_handles = 3;
    upstream_resolve(s);
    if (s->gconf.check_path[0])
        uv_timer_start(&s->interval, on_interval, s->gconf.check_interval_ms,
                       s->gconf.check_interval_ms);
}

/*
 * upstream_check_restart - the group's options changed (reload): checks on
 * its new interval. A down server whose group has no checks any more comes
 * back after fail_timeout; one whose group has checks now waits for them.
 */
void upstream_check_restart(us_server *s)
{
    uv_timer_stop(&s->interval);
    uv_timer_stop(&s->revive);
    if (s->gconf.check_path[0])
        uv_timer_start(&s->interval, on_interval, s->gconf.check_interval_ms,
                       s->gconf.check_interval_ms);
    else if (s->state == US_DOWN)
        uv_timer_start(&s->revive, on_revive, s->gconf.fail_timeout_ms, 0);
}

/* upstream_check_stop - the server left the table: close everything, free it when closed */
void upstream_check_stop(us_server *s)
{
    s->retired = true;
    upstream_conn_forget(s); /* the workers' counts go with it */
    uv_timer_stop(&s->interval);
    uv_timer_stop(&s->timeout);
    uv_timer_stop(&s->revive);
    if (s->fd >= 0)
        close_check(s);
    uv_close((uv_handle_t *)&s->interval, on_handle_closed);
    uv_close((uv_handle_t *)&s->timeout, on_handle_closed);
    uv_close((uv_handle_t *)&s->revive, on_handle_closed);
}
