/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_h1 - HTTP/1.1 with http-parser on a TLS/TCP connection
 * SYNOPSIS
 *	worker_h1_start(), worker_h1_recv(), worker_h1_produce(),
 *	worker_h1_idle(), worker_h1_paused(), worker_h1_free(),
 *	worker_h1_proto (submit, submit_info, resume, reset)
 * DESCRIPTION
 *	http-parser (Debian's libhttp-parser) parses requests: the request
 *	line, fields, Content-Length and chunked bodies, keep-alive. It
 *	refuses the forms request smuggling relies on (Content-Length with
 *	Transfer-Encoding, two Content-Lengths, a Transfer-Encoding that does
 *	not end in chunked; the last only after on_headers_complete, so it is
 *	checked there too, before the request can reach the app); obsolete
 *	line folding, which it would accept, is refused here: the head is
 *	held back until it is complete (the parser pauses at
 *	on_headers_complete), its bytes are checked for a line that
 *	starts with white space, and only then does the request go on. Also
 *	refused, as RFC 9112 requires and http-parser does not: a field name
 *	that is not a token (white space before the colon among them), an
 *	HTTP/1.1 request without exactly one Host, a Host that is not
 *	host[:port] (userinfo, a path, spaces), chunked applied twice over
 *	two lines, a Transfer-Encoding in HTTP/1.0, a fragment in the target.
 *	Every refusal is a 400 with Connection: close, an oversized head 431,
 *	an over-long target 414. (Chunk extensions are not checked: http-parser
 *	does not show them, and quicd passes none on.)
 *
 *	One request at a time: the parser pauses after each message, and
 *	pipelined bytes wait in |in| until the response is written. The
 *	response goes straight into the connection's output as it is
 *	submitted: the status line and fields, then the body pulled from the
 *	stream (worker_req_pull), with chunked framing when there is no
 *	Content-Length. Expect: 100-continue is answered when the request
 *	goes to the app with a body it will read.
 * DIAGNOSTICS
 *	Refused requests are logged at debug level and counted (tcp_errors).
 */
#include "config.h"

/* system */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* libraries */
#include <http_parser.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_http.h"
#include "qd_log.h"

/* local */
#include "worker.h"

#define OUT_HIGH (64 * 1024)
#define BODY_PIECE (16 * 1024)
#define IN_MAX (WORKER_MAX_HEAD + 64 * 1024) /* pipelined bytes held while a response is out */
#define HOLD_MAX (64 * 1024) /* body bytes a source holds (the proxy) before reading stops */

struct wk_h1 {
    http_parser p;
    wk_conn *c;
    wk_stream *cur; /* the request being received or answered */
    uint64_t nreq;  /* requests on this connection (the stream number in logs) */
    qd_buf url, name, value;
    bool in_value;    /* the last field callback was a value */
    bool in_head;     /* between message begin and the end of the head */
    bool head_held;   /* the head is complete and waits for the folding check */
    bool fold;        /* obsolete line folding was seen */
    uint8_t prev;     /* the byte before the current input (folding check) */
    bool te;          /* the head has a Transfer-Encoding */
    uint8_t te_chunked; /* "chunked" codings in its Transfer-Encoding lines */
    uint8_t hosts;      /* Host field lines */
    int field_error;    /* 400 for a field the RFC forbids (a name not a token, a bad Host) */
    bool body_expected, msg_done, expect_continue, keep_alive;
    bool resp_started, resp_body, resp_chunked, resp_close;
    int error; /* a status to refuse the request with (400, 414, 431) */
    qd_buf in; /* input not parsed yet */
    size_t in_off;
    bool parsing; /* in parse() */
};

/* reason - the reason phrase of |status| (RFC 9112 allows any; "Status" for codes without a name) */
static const char *reason(int status)
{
    const char *r = qd_http_reason((unsigned)status);

    return r[0] != '\0' ? r : "Status";
}

static wk_h1 *h1_of(http_parser *p)
{
    return p->data;
}

/* is_hop_field - fields of this connection only, not passed to the app */
static bool is_hop_field(const char *name, size_t len)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "transfer-encoding", "upgrade", "te", "expect"};

    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strlen(hop[i]) == len && memcmp(hop[i], name, len) == 0)
            return true;
    return false;
}

/*
 * count_chunked - the "chunked" codings of a Transfer-Encoding value; the
 * others (gzip, ...) are appended to |others| (comma separated, as sent,
 * parameters included), which a proxy passes on with its own chunked
 */
static unsigned count_chunked(const char *v, size_t len, qd_buf *others)
{
    unsigned n = 0;

    for (size_t i = 0; i < len;) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t' && v[i] != ';')
            i++;
        bool chunked = i - start == 7 && strncasecmp(v + start, "chunked", 7) == 0;
        if (chunked)
            n++;
        while (i < len && v[i] != ',')
            i++; /* parameters */
        if (!chunked && i > start) {
            if (others->len > 0)
                qd_buf_append(others, ", ", 2);
            size_t end = i;
            while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
                end--;
            qd_buf_append(others, v + start, end - start);
        }
    }
    return n;
}

/*
 * flush_field - the field collected in name/value goes to the stream. A
 * field RFC 9112 forbids makes the request a 400 (checked at the end of
 * the head): a name that is not a token (white space before the colon
 * among them, 5.1), a Host that is not host[:port] (3.2).
 */
static void flush_field(wk_h1 *h)
{
    wk_stream *s = h->cur;

    if (s == NULL)
        goto out;
    if (!qd_http_token(h->name.data, h->name.len)) {
        h->field_error = 400;
        goto out;
    }
    for (size_t i = 0; i < h->name.len; i++)
        if (h->name.data[i] >= 'A' && h->name.data[i] <= 'Z')
            h->name.data[i] = (char)(h->name.data[i] - 'A' + 'a');
    /* trailing white space of the value (http-parser keeps it) */
    while (h->value.len > 0 &&
           (h->value.data[h->value.len - 1] == ' ' || h->value.data[h->value.len - 1] == '\t'))
        h->value.len--;
    if (h->name.len == 4 && memcmp(h->name.data, "host", 4) == 0) {
        h->hosts++;
        if (!qd_http_authority(h->value.data, h->value.len))
            h->field_error = 400;
        if (s->authority == NULL)
            worker_req_header(s, (const uint8_t *)":authority", 10, (const uint8_t *)h->value.data,
                              h->value.len);
    } else if (h->name.len == 17 && memcmp(h->name.data, "transfer-encoding", 17) == 0) {
        h->te = true;
        qd_buf codings;
        qd_buf_init(&codings);
        h->te_chunked += (uint8_t)count_chunked(h->value.data, h->value.len, &codings);
        if (codings.len > 0) { /* gzip, ...: the body stays encoded; a proxy says so */
            size_t used = strlen(s->te_codings);
            if (used + (used ? 2 : 0) + codings.len >= sizeof(s->te_codings))
                h->field_error = 400; /* more codings than anyone uses */
            else
                snprintf(s->te_codings + used, sizeof(s->te_codings) - used, "%s%.*s",
                         used ? ", " : "", (int)codings.len, codings.data);
        }
        qd_buf_release(&codings);
    } else if (h->name.len == 7 && memcmp(h->name.data, "upgrade", 7) == 0) {
        snprintf(s->upgrade, sizeof(s->upgrade), "%.*s", (int)h->value.len, h->value.data);
    } else if (h->name.len == 6 && memcmp(h->name.data, "expect", 6) == 0) {
        h->expect_continue = h->value.len == 12 && strncasecmp(h->value.data, "100-continue", 12) == 0;
    } else if (!is_hop_field(h->name.data, h->name.len)) {
        worker_req_header(s, (const uint8_t *)h->name.data, h->name.len,
                          (const uint8_t *)h->value.data, h->value.len);
    }
out:
    qd_buf_reset(&h->name);
    qd_buf_reset(&h->value);
}

static int on_message_begin(http_parser *p)
{
    wk_h1 *h = h1_of(p);
    wk_conn *c = h->c;

    h->cur = worker_req_new(c, (int64_t)++h->nreq);
    h->in_head = true;
    h->in_value = false;
    h->body_expected = h->msg_done = h->expect_continue = h->te = false;
    h->te_chunked = h->hosts = 0;
    h->field_error = 0;
    h->resp_started = h->resp_body = h->resp_chunked = h->resp_close = false;
    qd_buf_reset(&h->url);
    qd_buf_reset(&h->name);
    qd_buf_reset(&h->value);
    /* The first request's deadline runs from the handshake (worker_h1_start). */
    if (c->tcp->head_deadline_ns == 0)
        c->tcp->head_deadline_ns =
            worker_now() + (uint64_t)c->w->child.conf.tcp_header_timeout_ms * 1000000;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    wk_h1 *h = h1_of(p);

    if (h->url.len + len > WORKER_MAX_HEAD) {
        h->error = 414;
        return -1;
    }
    qd_buf_append(&h->url, at, len);
    return 0;
}

/* head_too_big - the fields so far are over the head limit (counted as worker_req_header does) */
static bool head_too_big(const wk_h1 *h)
{
    return h->cur != NULL && h->cur->head_bytes > WORKER_MAX_HEAD;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    wk_h1 *h = h1_of(p);

    if (h->in_value) {
        flush_field(h);
        h->in_value = false;
    }
    if (head_too_big(h) || h->name.len + len > WORKER_MAX_HEAD) {
        h->error = 431;
        return -1;
    }
    qd_buf_append(&h->name, at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    wk_h1 *h = h1_of(p);

    h->in_value = true;
    if (h->value.len + len > WORKER_MAX_HEAD) {
        h->error = 431;
        return -1;
    }
    qd_buf_append(&h->value, at, len);
    return 0;
}

/* set_target - :path (and :authority of an absolute-form target) from the request target */
static int set_target(wk_h1 *h)
{
    wk_stream *s = h->cur;
    struct http_parser_url u;
    const char *url = h->url.data;
    size_t len = h->url.len;

    if (len == 0)
        return -1;
    if (url[0] == '/' || (len == 1 && url[0] == '*')) {
        worker_req_header(s, (const uint8_t *)":path", 5, (const uint8_t *)url, len);
        return 0;
    }
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, 0, &u) != 0 || !(u.field_set & (1 << UF_HOST)))
        return -1;
    worker_req_header(s, (const uint8_t *)":authority", 10,
                      (const uint8_t *)url + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
    if (u.field_set & (1 << UF_PATH)) {
        size_t off = u.field_data[UF_PATH].off, end = off + u.field_data[UF_PATH].len;
        if (u.field_set & (1 << UF_QUERY))
            end = u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len;
        worker_req_header(s, (const uint8_t *)":path", 5, (const uint8_t *)url + off, end - off);
    } else {
        worker_req_header(s, (const uint8_t *)":path", 5, (const uint8_t *)"/", 1);
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    wk_h1 *h = h1_of(p);
    wk_stream *s = h->cur;

    if (h->in_value)
        flush_field(h);
    h->in_value = false;
    const char *method = http_method_str((enum http_method)p->method);
    worker_req_header(s, (const uint8_t *)":method", 7, (const uint8_t *)method, strlen(method));
    worker_req_header(s, (const uint8_t *)":scheme", 7, (const uint8_t *)"https", 5);
    if (set_target(h) < 0) {
        h->error = 400;
        return -1;
    }
    /* Many fields, each within the limit, can still make too big a head:
     * refuse it here (431, Connection: close) rather than let the request
     * code answer it and keep the connection. */
    if (head_too_big(h)) {
        h->error = 431;
        return -1;
    }
    /* http-parser refuses a Transfer-Encoding that does not end in chunked
     * only after this callback: the request would reach the app first. */
    if (h->te && !(p->flags & F_CHUNKED)) {
        h->error = 400;
        return -1;
    }
    /* What http-parser lets through and RFC 9112 forbids (no request that
     * two parsers could read differently goes anywhere): a field that is
     * not one (flush_field); an HTTP/1.1 request without exactly one Host
     * (3.2); chunked applied twice, split over two lines (6.1); any
     * Transfer-Encoding in HTTP/1.0 (6.1: its framing is faulty); a
     * fragment in the request target (3.2). */
    bool v11 = p->http_major == 1 && p->http_minor >= 1;
    if (h->field_error != 0 || (v11 && h->hosts != 1) || h->hosts > 1 || h->te_chunked > 1 ||
        (h->te && !v11) || memchr(h->url.data, '#', h->url.len) != NULL) {
        h->error = 400;
        return -1;
    }
    h->keep_alive = http_should_keep_alive(p) != 0;
    h->body_expected = (p->flags & F_CHUNKED) || (p->content_length > 0 &&
                                                  p->content_length != UINT64_MAX);
    if (!p->upgrade || h->body_expected || !qd_http_token(s->upgrade, strlen(s->upgrade)))
        s->upgrade[0] = '\0'; /* Upgrade without "Connection: upgrade" (or with a body): not asked */
    /* Hold the request until its head's bytes are checked for folding. */
    h->head_held = true;
    http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    wk_h1 *h = h1_of(p);

    if (h->cur != NULL)
        worker_req_body(h->cur, (const uint8_t *)at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    wk_h1 *h = h1_of(p);

    h->msg_done = true;
    if (h->cur != NULL && h->body_expected)
        worker_req_end(h->cur);
    http_parser_pause(p, 1); /* the next request waits for this response */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* refuse - answer a request we cannot take with |status| and close */
static void refuse(wk_conn *c, int status)
{
    wk_tcp *t = c->tcp;
    wk_h1 *h = t->h1;
    const char *alt = worker_req_alt_svc(c);
    char text[64], head[320];

    c->w->tcp_errors++;
    qd_debug("HTTP/1.1 connection %s from %s: %d (%s)", c->cid_text, c->peer, status,
             http_errno_description(HTTP_PARSER_ERRNO(&h->p)));
    t->closing = true;
    t->close_reason = QD_REC_REASON_ERROR;
    if (h->cur != NULL && (h->cur->head_sent || h->cur->src_data != NULL || h->cur->responded)) {
        /* a response is under way: it cannot be followed by another */
        worker_tcp_close(c, QD_REC_CLOSE_BY_SERVER, QD_REC_REASON_ERROR);
        return;
    }
    int tl = snprintf(text, sizeof(text), "%d %s\n", status, reason(status));
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nserver: quicd\r\ncontent-type: text/plain; "
                      "charset=utf-8\r\ncontent-length: %d\r\n%s%s%sconnection: close\r\n\r\n",
                      status, reason(status), tl, alt != NULL ? "alt-svc: " : "",
                      alt != NULL ? alt : "", alt != NULL ? "\r\n" : "");
    worker_tcp_out(t, head, (size_t)hl);
    worker_tcp_out(t, text, (size_t)tl);
}

/* has_fold - do the head bytes |p|, |len| hold a line that starts with white space? */
static bool has_fold(wk_h1 *h, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (h->prev == '\n' && (p[i] == ' ' || p[i] == '\t'))
            return true;
        h->prev = p[i];
    }
    return false;
}

/* release_head - the head passed the checks: the request goes on */
static void release_head(wk_conn *c)
{
    wk_h1 *h = c->tcp->h1;
    wk_stream *s = h->cur;
    const qd_conf *conf = &c->w->child.conf;

    h->head_held = false;
    h->in_head = false;
    c->tcp->head_deadline_ns = 0;
    worker_req_head(s, !h->body_expected);
    /* 100 Continue: the app takes the body (it is not over the limit) and
     * nothing has been answered yet. */
    if (h->expect_continue && h->body_expected && (s->head_sent || s->src_data != NULL) &&
        !s->responded &&
        h->p.http_minor >= 1 &&
        (h->p.content_length == UINT64_MAX ||
         h->p.content_length <= (uint64_t)conf->max_request_body)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        worker_tcp_out(c->tcp, cont, sizeof(cont) - 1);
    }
}

/* parse - run the parser over the input held, until it waits or fails */
static int parse_input(wk_conn *c);
static void put_fields(wk_tcp *t, const nghttp3_nv *nv, size_t n);

/* parse - parse_input, never from within itself (a source's callback may lead here) */
static int parse(wk_conn *c)
{
    wk_h1 *h = c->tcp->h1;

    if (h->parsing)
        return 0;
    h->parsing = true;
    int rv = parse_input(c);
    if (c->tcp->h1 == h)
        h->parsing = false;
    return rv;
}

static int parse_input(wk_conn *c)
{
    wk_tcp *t = c->tcp;
    wk_h1 *h = t->h1;

    if (h->cur != NULL && h->cur->tunnel) {
        /* a tunnel: the bytes go to the source as they are, HOLD_MAX at a time */
        while (h->in_off < h->in.len && h->cur != NULL && h->cur->body_held < HOLD_MAX) {
            size_t n = h->in.len - h->in_off;
            if (n > HOLD_MAX - h->cur->body_held)
                n = (size_t)(HOLD_MAX - h->cur->body_held);
            h->in_off += n;
            worker_req_body(h->cur, (const uint8_t *)h->in.data + h->in_off - n, n);
        }
        if (h->in_off == h->in.len) {
            qd_buf_reset(&h->in);
            h->in_off = 0;
        }
        return 0;
    }

    while (h->in_off < h->in.len && !t->dead && !t->closing) {
        if (h->msg_done)
            break; /* the next request waits for this response */
        if (h->cur != NULL && h->cur->body_held >= HOLD_MAX)
            break; /* the source takes its time: worker_h1_produce goes on */
        const uint8_t *p = (const uint8_t *)h->in.data + h->in_off;
        size_t n = h->in.len - h->in_off;
        bool head = h->in_head || h->cur == NULL;
        size_t used = http_parser_execute(&h->p, &settings, (const char *)p, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
        if ((head || h->in_head) && has_fold(h, p, used + (h->head_held && used < n ? 1 : 0)))
            h->fold = true;
        h->in_off += used;
        if (e == HPE_PAUSED) {
            http_parser_pause(&h->p, 0);
            if (h->head_held) {
                if (h->fold) {
                    refuse(c, 400);
                    return -1;
                }
                release_head(c);
            }
            continue;
        }
        if (e != HPE_OK) {
            refuse(c, h->error ? h->error : e == HPE_HEADER_OVERFLOW ? 431 : 400);
            return -1;
        }
    }
    if (h->in_off == h->in.len) {
        qd_buf_reset(&h->in);
        h->in_off = 0;
    }
    return 0;
}

int worker_h1_start(wk_conn *c)
{
    wk_tcp *t = c->tcp;
    wk_h1 *h = qd_xcalloc(1, sizeof(*h));

    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    h->c = c;
    h->prev = '\n';
    qd_buf_init(&h->url);
    qd_buf_init(&h->name);
    qd_buf_init(&h->value);
    qd_buf_init(&h->in);
    t->h1 = h;
    /* The first request head must be complete within tcp_header_timeout of
     * the handshake, as HTTP/2's preface must: a client that completes TLS
     * and sends nothing is cut off then, not after tcp_idle_timeout.
     * Between requests the idle timeout applies. */
    t->head_deadline_ns = worker_now() + (uint64_t)c->w->child.conf.tcp_header_timeout_ms * 1000000;
    return 0;
}

int worker_h1_recv(wk_conn *c, const uint8_t *data, size_t len)
{
    wk_h1 *h = c->tcp->h1;

    if (h->in.len - h->in_off + len > IN_MAX) {
        refuse(c, h->in_head ? 431 : 400);
        return -1;
    }
    qd_buf_append(&h->in, (const char *)data, len);
    return parse(c);
}

/* next_request - the response is written: go on with the connection, or close it */
static void next_request(wk_conn *c)
{
    wk_tcp *t = c->tcp;
    wk_h1 *h = t->h1;
    wk_stream *s = h->cur;

    if (h->resp_close || !h->msg_done || t->draining) {
        t->closing = true; /* after the output is written */
        return;
    }
    h->cur = NULL;
    h->msg_done = false;
    h->prev = '\n';
    worker_req_free(s);
    parse(c); /* a pipelined request may be waiting */
}

int worker_h1_produce(wk_conn *c)
{
    static uint8_t buf[BODY_PIECE];
    wk_tcp *t = c->tcp;
    wk_h1 *h = t->h1;

    /* a body the source held and has taken since: parse on */
    if (h->cur != NULL && (!h->msg_done || h->cur->tunnel) && h->cur->body_held < HOLD_MAX &&
        h->in_off < h->in.len && !h->parsing && parse(c) < 0)
        return 0;
    if (t->dead || t->h1 == NULL)
        return 0;
    while (!t->closing && h->cur != NULL && h->resp_started && t->out.len < OUT_HIGH) {
        wk_stream *s = h->cur;
        bool eof = true;
        ssize_t n = 0;
        if (h->resp_body) {
            n = worker_req_pull(s, buf, sizeof(buf), &eof);
            if (n < 0)
                return 0; /* resumed when the app or the file has more */
            if (n > 0 && h->resp_chunked) {
                char size[24];
                int sl = snprintf(size, sizeof(size), "%zx\r\n", (size_t)n);
                worker_tcp_out(t, size, (size_t)sl);
            }
            worker_tcp_out(t, buf, (size_t)n);
            if (n > 0 && h->resp_chunked)
                worker_tcp_out(t, "\r\n", 2);
            if (eof && h->resp_chunked) {
                nghttp3_nv nv[64];
                size_t nt = worker_req_trailers(s, nv, 64);
                worker_tcp_out(t, "0\r\n", 3);
                put_fields(t, nv, nt); /* the trailer section */
                worker_tcp_out(t, "\r\n", 2);
            }
        }
        if (!eof)
            continue;
        s->eof = true;
        h->resp_started = false;
        next_request(c);
    }
    return 0;
}

bool worker_h1_idle(const wk_conn *c)
{
    const wk_h1 *h = c->tcp->h1;

    return h == NULL || (h->cur == NULL && h->in_off == h->in.len);
}

bool worker_h1_paused(const wk_conn *c)
{
    const wk_h1 *h = c->tcp->h1;

    if (h != NULL && h->cur != NULL && h->cur->tunnel)
        return h->cur->body_held >= HOLD_MAX || h->in.len - h->in_off >= IN_MAX;
    return h != NULL && (h->msg_done || h->in.len - h->in_off >= IN_MAX ||
                         (h->cur != NULL && h->cur->body_held >= HOLD_MAX));
}

void worker_h1_free(wk_conn *c)
{
    wk_h1 *h = c->tcp->h1;

    qd_buf_release(&h->url);
    qd_buf_release(&h->name);
    qd_buf_release(&h->value);
    qd_buf_release(&h->in);
    free(h);
    c->tcp->h1 = NULL;
}

/* put_fields - "name: value" lines of |nv| (pseudo-headers left out) */
static void put_fields(wk_tcp *t, const nghttp3_nv *nv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (nv[i].namelen > 0 && nv[i].name[0] == ':')
            continue;
        worker_tcp_out(t, nv[i].name, nv[i].namelen);
        worker_tcp_out(t, ": ", 2);
        worker_tcp_out(t, nv[i].value, nv[i].valuelen);
        worker_tcp_out(t, "\r\n", 2);
    }
}

static int submit(wk_stream *s, const nghttp3_nv *nv, size_t n, bool body)
{
    wk_conn *c = s->c;
    wk_tcp *t = c->tcp;
    wk_h1 *h = t->h1;
    char line[64];
    bool has_length = false;

    if (h == NULL || s != h->cur)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (nv[i].namelen == 14 && memcmp(nv[i].name, "content-length", 14) == 0)
            has_length = true;
    bool head = s->method != NULL && strcmp(s->method, "HEAD") == 0;
    if (s->status == 101) {
        /* Switching Protocols to what the client asked (an upstream's
         * answer through the proxy): from here the connection is a tunnel,
         * the stream's body its bytes both ways; it ends with them. */
        if (s->upgrade[0] == '\0')
            return -1;
        s->tunnel = true;
        h->resp_body = true;
        h->resp_chunked = false;
        h->resp_close = true;
        int ll = snprintf(line, sizeof(line), "HTTP/1.1 101 %s\r\n", reason(101));
        worker_tcp_out(t, line, (size_t)ll);
        put_fields(t, nv, n);
        worker_tcp_out(t, "\r\n", 2);
        h->resp_started = true;
        return 0;
    }
    h->resp_body = body && !head && s->status != 204 && s->status != 304;
    h->resp_chunked = h->resp_body && !has_length && h->p.http_minor >= 1;
    /* Close after this response: the client asked, we drain, a body we will
     * not read is still coming, or the body's end is the connection's end. */
    h->resp_close = !h->keep_alive || t->draining || c->w->stopping ||
                    (h->body_expected && !h->msg_done) ||
                    (h->resp_body && !has_length && !h->resp_chunked);
    int ll = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", s->status, reason(s->status));
    worker_tcp_out(t, line, (size_t)ll);
    put_fields(t, nv, n);
    if (h->resp_chunked)
        worker_tcp_out(t, "transfer-encoding: chunked\r\n", 28);
    if (h->resp_close)
        worker_tcp_out(t, "connection: close\r\n", 19);
    worker_tcp_out(t, "\r\n", 2);
    h->resp_started = true;
    return 0;
}

static int submit_info(wk_stream *s, const nghttp3_nv *nv, size_t n)
{
    wk_tcp *t = s->c->tcp;
    wk_h1 *h = t->h1;
    char line[64];
    int status = 0;

    if (h == NULL || s != h->cur || h->p.http_minor < 1)
        return 0; /* an HTTP/1.0 client gets no interim responses */
    if (n > 0 && nv[0].namelen == 7 && memcmp(nv[0].name, ":status", 7) == 0)
        for (size_t i = 0; i < nv[0].valuelen && i < 3; i++)
            status = status * 10 + (nv[0].value[i] - '0');
    if (status < 100 || status > 199)
        return -1;
    int ll = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason(status));
    worker_tcp_out(t, line, (size_t)ll);
    put_fields(t, nv, n);
    worker_tcp_out(t, "\r\n", 2);
    return 0;
}

static void resume(wk_stream *s)
{
    s->blocked = false; /* the write loop pulls again */
}

/* reset - HTTP/1.1 has no stream to reset: a response cut short ends the connection */
/* consumed - nothing to tell the client: worker_h1_produce reads on (HOLD_MAX) */
static void consumed(wk_stream *s, size_t n)
{
    (void)s;
    (void)n;
}

static void reset(wk_stream *s, bool malformed)
{
    wk_tcp *t = s->c->tcp;

    t->closing = true;
    if (!s->responded || s->handed == 0)
        t->close_reason = QD_REC_REASON_ERROR;
    worker_tcp_close(s->c, QD_REC_CLOSE_BY_SERVER, QD_REC_REASON_ERROR);
}

const wk_proto worker_h1_proto = {
    .name = QD_PROTO_H1,
    .alt_svc = true,
    .submit = submit,
    .submit_info = submit_info,
    .resume = resume,
    .reset = reset,
    .consumed = consumed,
};
