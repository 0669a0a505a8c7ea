/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	app_api - the built-in routes and 103 Early Hints
 * SYNOPSIS
 *	app_api_match(), app_api_wants_body(), app_api_handle(),
 *	app_api_release(), app_hints_send()
 * DESCRIPTION
 *	With api = yes the app answers four paths itself (the query is
 *	ignored); every other method gets 405 with an allow header:
 *
 *	GET /api/time: {"time": RFC 3339 UTC, "protocol": "HTTP/3", "HTTP/2"
 *	or "HTTP/1.1" (the request's F_PROTO), "version": PACKAGE_VERSION}.
 *	POST /api/echo: {"body": the body as a JSON string, "echo": the same
 *	string again, "length": its bytes, "time": ..., "timestamp": epoch
 *	milliseconds}. The body is kept (max_request_body bounds it; 413
 *	beyond) and escaped by qd_json_escape: bytes that are not UTF-8 come
 *	back as \u00XX, one per byte.
 *	GET /events: text/event-stream, one "event: tick" with "id:" and a
 *	JSON "data:" line at once and then every events_interval.
 *	GET /stream: application/x-ndjson, one JSON line a second.
 *
 *	The two streams run on a libuv timer owned by the request; they end
 *	only when the client resets the stream (REQ_CANCEL) or the worker
 *	channel closes, and app_api_release (from req_free) closes the timer.
 *	A tick is skipped while more than half of QD_RESP_WINDOW is unsent or
 *	uncredited, so a client that stops reading costs bounded memory.
 *
 *	Early Hints: app_hints_send looks up the request path in early_hints
 *	(a path ending in '/' also matches its index.html) and sends each
 *	matching entry's Link value as one link header of a 103 (RESP_INFO).
 * DIAGNOSTICS
 *	None: every request gets an answer.
 * SEE ALSO
 *	app_req.c (the credit window), quicd.conf(5)
 */
#include "config.h"

/* system */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* libraries */
#include <uv.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_buf.h"
#include "qd_conf.h"
#include "qd_err.h"
#include "qd_log.h"

/* local */
#include "app.h"

#define STREAM_INTERVAL_MS 1000

typedef enum route { R_NONE, R_TIME, R_ECHO, R_EVENTS, R_STREAM } route;


/* route_of - which built-in route |r| is for */
static route route_of(const app_req *r)
{
    static const struct {
        const char *path;
        route rt;
    } routes[] = {
        {"/api/time", R_TIME}, {"/api/echo", R_ECHO}, {"/events", R_EVENTS}, {"/stream", R_STREAM}};

    if (!r->w->a->child.conf.api || r->path == NULL)
        return R_NONE;
    size_t n = strcspn(r->path, "?");
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strlen(routes[i].path) == n && strncmp(r->path, routes[i].path, n) == 0)
            return routes[i].rt;
    return R_NONE;
}

/* now_text - the current time, RFC 3339 UTC */
static void now_text(char *out, size_t cap)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    qd_http_rfc3339(&ts, out, cap);
}

/* send_json - a complete 200 response with the body |b| */
static void send_json(app_req *r, const qd_buf *b)
{
    char length[24];

    snprintf(length, sizeof(length), "%zu", b->len);
    app_resp_start(r, 200);
    app_resp_header(r, "content-type", "application/json");
    app_resp_header(r, "cache-control", "no-store");
    app_resp_header(r, "content-length", length);
    if (app_req_is_head(r)) {
        app_resp_send_head(r, QD_RESP_F_END, -1, 0, 0);
        return;
    }
    app_resp_send_head(r, 0, -1, 0, 0);
    app_resp_write(r, b->data, b->len, true);
}

/* handle_time - GET /api/time */
static void handle_time(app_req *r)
{
    char when[40];
    qd_buf b;

    now_text(when, sizeof(when));
    qd_buf_init(&b);
    qd_buf_printf(&b, "{\"time\": \"%s\", \"protocol\": \"%s\", \"version\": \"%s\"}\n", when,
                  qd_http_version(r->proto), PACKAGE_VERSION);
    send_json(r, &b);
    qd_buf_release(&b);
}

/*
 * handle_echo - POST /api/echo. The body is escaped once; the text goes
 * out twice, as "body" (quicd's key) and "echo" (the key clients of the
 * reference sample read).
 */
static void handle_echo(app_req *r)
{
    char when[40];
    struct timespec ts;
    qd_buf b, text;
    size_t len = r->has_body_buf ? r->body.len : 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    qd_http_rfc3339(&ts, when, sizeof(when));
    qd_buf_init(&text);
    if (len > 0)
        qd_json_escape(&text, (const uint8_t *)r->body.data, len);
    qd_buf_init(&b);
    qd_buf_append(&b, "{\"body\": \"", 10);
    qd_buf_append(&b, qd_buf_str(&text), text.len);
    qd_buf_append(&b, "\", \"echo\": \"", 12);
    qd_buf_append(&b, qd_buf_str(&text), text.len);
    qd_buf_printf(&b, "\", \"length\": %zu, \"time\": \"%s\", \"timestamp\": %lld}\n", len, when,
                  (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    send_json(r, &b);
    qd_buf_release(&text);
    qd_buf_release(&b);
}

/* tick - one event (SSE) or line (ndjson), unless the client is behind */
static void tick(app_req *r)
{
    char when[40], text[160];
    int n;

    if (r->is_resp_done || (size_t)r->unacked + (r->out_len - r->out_off) > QD_RESP_WINDOW / 2)
        return;
    now_text(when, sizeof(when));
    r->tick_count++;
    if (route_of(r) == R_EVENTS)
        n = snprintf(text, sizeof(text),
                     "event: tick\nid: %" PRIu64 "\ndata: {\"time\": \"%s\", \"n\": %" PRIu64
                     "}\n\n",
                     r->tick_count, when, r->tick_count);
    else
        n = snprintf(text, sizeof(text), "{\"time\": \"%s\", \"n\": %" PRIu64 "}\n", when,
                     r->tick_count);
    app_resp_write(r, text, (size_t)n, false);
}

static void on_tick(uv_timer_t *t)
{
    tick(t->data);
}

/* handle_stream - GET /events or /stream: head now, a tick now and on the timer */
static void handle_stream(app_req *r, route rt)
{
    app *a = r->w->a;
    uint64_t interval = rt == R_EVENTS ? (uint64_t)a->child.conf.events_interval_ms
                                       : STREAM_INTERVAL_MS;

    app_resp_start(r, 200);
    app_resp_header(r, "content-type",
                    rt == R_EVENTS ? "text/event-stream" : "application/x-ndjson");
    app_resp_header(r, "cache-control", "no-store");
    if (app_req_is_head(r)) {
        app_resp_send_head(r, QD_RESP_F_END, -1, 0, 0);
        return;
    }
    app_resp_send_head(r, 0, -1, 0, 0);
    if (r->is_resp_done)
        return;
    if (rt == R_EVENTS)
        app_resp_write(r, "retry: 2000\n\n", 13, false);
    tick(r);
    r->tick = qd_xmalloc(sizeof(*r->tick));
    uv_timer_init(a->child.loop, r->tick);
    r->tick->data = r;
    uv_timer_start(r->tick, on_tick, interval, interval);
}

bool app_api_match(const app_req *r)
{
    return route_of(r) != R_NONE;
}

bool app_api_wants_body(const app_req *r)
{
    return route_of(r) == R_ECHO && strcmp(r->method, "POST") == 0;
}

void app_api_handle(app_req *r)
{
    route rt = route_of(r);
    bool is_get = strcmp(r->method, "GET") == 0 || app_req_is_head(r);

    switch (rt) {
    case R_ECHO:
        if (strcmp(r->method, "POST") != 0)
            app_resp_error(r, 405, "allow", "POST");
        else
            handle_echo(r);
        break;
    case R_TIME:
    case R_EVENTS:
    case R_STREAM:
        if (!is_get)
            app_resp_error(r, 405, "allow", "GET, HEAD");
        else if (rt == R_TIME)
            handle_time(r);
        else
            handle_stream(r, rt);
        break;
    default:
        app_resp_error(r, 404, NULL, NULL);
    }
}

void app_api_finish(app_req *r)
{
    if (r->tick == NULL || r->is_resp_done)
        return;
    app_api_release(r);
    app_resp_write(r, "", 0, true); /* the end, after the last whole event */
}

static void on_tick_closed(uv_handle_t *h)
{
    free(h);
}

void app_api_release(app_req *r)
{
    if (r->tick == NULL)
        return;
    uv_timer_stop(r->tick);
    r->tick->data = NULL;
    uv_close((uv_handle_t *)r->tick, on_tick_closed);
    r->tick = NULL;
}

/* hint_state - what app_hints_send's callback looks for and found */
typedef struct hint_state {
    const char *path; /* the request path, without the query */
    size_t path_len;
    int count;
    qd_ipc_msg *m; /* the 103 being composed in the worker's channel */
} hint_state;

/* on_hint - one early_hints entry: add its links if the path matches */
static void on_hint(void *arg, const char *path, const char *links)
{
    hint_state *h = arg;
    size_t n = strlen(path);
    bool is_match = n == h->path_len && strncmp(path, h->path, n) == 0;

    /* "/dir/" also matches "/dir/index.html" */
    if (!is_match && h->path_len > 0 && h->path[h->path_len - 1] == '/' &&
        n == h->path_len + 10 && strncmp(path, h->path, h->path_len) == 0 &&
        strcmp(path + h->path_len, "index.html") == 0)
        is_match = true;
    if (!is_match)
        return;
    size_t nl = strlen(links);
    uint8_t field[4 + 1 + 2048];
    if (nl > 2048)
        return;
    memcpy(field, "link", 5);
    memcpy(field + 5, links, nl);
    if (qd_ipc_put_bytes(h->m, QD_F_HEADER, field, 5 + nl) == 0)
        h->count++;
}

void app_hints_send(app_req *r)
{
    const char *hints = r->w->a->child.conf.early_hints;
    const char *why;
    hint_state h;

    if (hints == NULL || *hints == '\0' || r->path == NULL)
        return;
    h.path = r->path;
    h.path_len = strcspn(r->path, "?");
    h.count = 0;
    h.m = qd_chan_msg(r->w->ch, QD_MSG_RESP_INFO, 0);
    qd_ipc_put_u64(h.m, QD_F_STREAM, r->stream);
    qd_ipc_put_u32(h.m, QD_F_STATUS, 103);
    if (qd_conf_hints_parse(hints, on_hint, &h, &why) < 0 || h.count == 0)
        return;
    int rv = qd_chan_queue(r->w->ch);
    if (rv == 0) {
        r->w->a->status_count[1]++;
    } else {
        /* Hints are advisory: the response goes on without them. */
        static qd_log_limit lim;
        r->w->a->send_failures++;
        qd_log_limited(&lim, QD_LOG_WARN, "cannot send 103 Early Hints for stream %" PRIu64 ": %s",
                       r->stream, qd_strerror(rv));
    }
}
