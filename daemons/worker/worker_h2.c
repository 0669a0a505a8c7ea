/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_h2 - HTTP/2 with nghttp2 on a TLS/TCP connection
 * SYNOPSIS
 *	worker_h2_start(), worker_h2_recv(), worker_h2_produce(),
 *	worker_h2_done(), worker_h2_shutdown(), worker_h2_free(),
 *	worker_h2_proto (submit, submit_info, resume, reset)
 * DESCRIPTION
 *	nghttp2 owns HTTP/2: the preface, framing, HPACK, flow control, stream
 *	states and message checks (a malformed request is reset by nghttp2,
 *	a protocol error ends the session with GOAWAY). Its callbacks feed the
 *	protocol-neutral request code (worker_req.c); a wk_stream lives from
 *	on_begin_headers to on_stream_close. Response bodies are copied by
 *	nghttp2's data provider from the stream's chunks (worker_req_pull).
 *
 *	Limits mirror HTTP/3's: max_concurrent_streams, stream_window and
 *	connection_window, a 32 KiB request head (431). Floods that cost us
 *	work for nothing end the session with ENHANCE_YOUR_CALM: more than
 *	FLOOD_SETTINGS SETTINGS or FLOOD_PING PINGs from the client in one
 *	second; stream resets either side makes and field sections past the
 *	limits, HPACK bombs among them (worker_guard.c). A field section over
 *	the limits is not decoded further: on_header fails it, nghttp2 skips
 *	the rest of the block without checking or passing on its fields.
 *
 *	nghttp2 ignores a HEADERS frame on a stream id below the last one, as
 *	it may be a trailer racing our RST_STREAM; RFC 9113 5.1.1 makes a new
 *	stream on a lower id a PROTOCOL_ERROR. The ids a client skipped (the
 *	last WORKER_H2_GAPS ranges) were never used: HEADERS on one of those
 *	ends the session with PROTOCOL_ERROR (on_begin_frame).
 * DIAGNOSTICS
 *	Session errors are logged at debug level and end the connection with
 *	GOAWAY naming the cause: PROTOCOL_ERROR, COMPRESSION_ERROR,
 *	FLOW_CONTROL_ERROR, ENHANCE_YOUR_CALM (floods, CONTINUATION floods),
 *	INTERNAL_ERROR for our own failures. Closes for abuse are counted
 *	and logged by worker_guard_refuse().
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libshared */
#include "qd_log.h"

/* local */
#include "worker.h"

#define FLOOD_SETTINGS 100 /* per second */
#define FLOOD_PING 100
#define OUT_HIGH (64 * 1024)
#define MAX_WINDOW ((1U << 31) - 1)

static nghttp2_session_callbacks *callbacks;

/* stream_of - the request of |id|, or NULL */
static wk_stream *stream_of(nghttp2_session *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2, id);
}

/* flooded - count a frame of the client's; true once a kind is over its limit */
static bool flooded(wk_tcp *t, uint8_t type, uint8_t flags)
{
    uint64_t now = worker_now();

    if (now >= t->flood_ns + 1000000000ULL) {
        t->flood_ns = now;
        t->flood_settings = t->flood_ping = 0;
    }
    switch (type) {
    case NGHTTP2_SETTINGS:
        return !(flags & NGHTTP2_FLAG_ACK) && ++t->flood_settings > FLOOD_SETTINGS;
    case NGHTTP2_PING:
        return !(flags & NGHTTP2_FLAG_ACK) && ++t->flood_ping > FLOOD_PING;
    default:
        return false;
    }
}

/* refuse - end the session with GOAWAY |code| for abuse |why| (counted, logged) */
static void refuse(wk_conn *c, uint32_t code, enum wk_guard_cause why, const char *what)
{
    wk_tcp *t = c->tcp;

    if (t->refused)
        return; /* once per connection */
    t->refused = true;
    c->w->tcp_errors++;
    t->close_reason = QD_REC_REASON_ERROR;
    worker_guard_refuse(c, why, what);
    nghttp2_session_terminate_session(t->h2, code);
}

/* skipped - whether the client passed over request stream |id| (a gap below the last) */
static bool skipped(const wk_tcp *t, int32_t id)
{
    for (uint32_t i = 0; i < t->h2_ngaps; i++)
        if (id >= t->h2_gaps[i][0] && id <= t->h2_gaps[i][1])
            return true;
    return false;
}

/* note_id - a new request stream |id|: remember the ids it skipped */
static void note_id(wk_tcp *t, int32_t id)
{
    if (t->h2_last_id + 2 < id) {
        if (t->h2_ngaps == WORKER_H2_GAPS) {
            memmove(t->h2_gaps[0], t->h2_gaps[1], sizeof(t->h2_gaps) - sizeof(t->h2_gaps[0]));
            t->h2_ngaps--;
        }
        t->h2_gaps[t->h2_ngaps][0] = t->h2_last_id + 2;
        t->h2_gaps[t->h2_ngaps][1] = id - 2;
        t->h2_ngaps++;
    }
    t->h2_last_id = id;
}

/* on_begin_frame - a frame header: HEADERS on a stream id the client skipped is a new stream below the last */
static int on_begin_frame(nghttp2_session *h2, const nghttp2_frame_hd *hd, void *ud)
{
    wk_conn *c = ud;
    wk_tcp *t = c->tcp;
    int32_t id = hd->stream_id;

    if (hd->type != NGHTTP2_HEADERS || id <= 0 || (id & 1) == 0)
        return 0;
    if (id > t->h2_last_id)
        note_id(t, id);
    else if (skipped(t, id))
        refuse(c, NGHTTP2_PROTOCOL_ERROR, WK_GUARD_PROTOCOL, "HEADERS on a lower stream id");
    return 0;
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
    wk_conn *c = ud;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    wk_stream *s = worker_req_new(c, frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(h2, frame->hd.stream_id, s);
    return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud)
{
    wk_stream *s;
    bool ok;

    if (frame->hd.type != NGHTTP2_HEADERS || (s = stream_of(h2, frame->hd.stream_id)) == NULL)
        return 0;
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        ok = worker_req_header(s, name, namelen, value, valuelen);
    else /* trailers: counted, not passed on */
        ok = worker_guard_section(s, namelen + valuelen + 32, true);
    if (ok)
        return 0;
    refuse(ud, NGHTTP2_ENHANCE_YOUR_CALM, WK_GUARD_HEADERS, "HTTP/2 field section");
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the rest of the block is skipped */
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
    wk_conn *c = ud;
    wk_tcp *t = c->tcp;
    wk_stream *s;

    t->head_deadline_ns = 0; /* the preface and a first frame came */
    if (flooded(t, frame->hd.type, frame->hd.flags)) {
        refuse(c, NGHTTP2_ENHANCE_YOUR_CALM, WK_GUARD_FLOOD,
               frame->hd.type == NGHTTP2_PING ? "PING" : "SETTINGS");
        return 0;
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM)
        worker_metrics_reset(c, QD_MV_REMOTE);
    if (frame->hd.type == NGHTTP2_RST_STREAM && !worker_guard_reset(c)) {
        refuse(c, NGHTTP2_ENHANCE_YOUR_CALM, WK_GUARD_RESETS, "RST_STREAM from the client");
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    if ((s = stream_of(h2, frame->hd.stream_id)) == NULL)
        return 0;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        worker_req_head(s, end);
    else if (end)
        worker_req_end(s);
    return 0;
}

/* on_frame_send - a reset we send for the client's error counts as one of its own */
static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *ud)
{
    if (frame->hd.type == NGHTTP2_RST_STREAM && frame->rst_stream.error_code != NGHTTP2_NO_ERROR &&
        !worker_guard_reset(ud))
        refuse(ud, NGHTTP2_ENHANCE_YOUR_CALM, WK_GUARD_RESETS, "RST_STREAM for the client's errors");
    return 0;
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    wk_stream *s = stream_of(h2, id);

    /* Windows reopen at once, unless the source holds the body (the proxy:
     * worker_req_consumed); nghttp2 sends WINDOW_UPDATE itself (it counts
     * padding and DATA it ignores). */
    if (s == NULL || !s->hold_body)
        nghttp2_session_consume(h2, id, len);
    if (s != NULL)
        worker_req_body(s, data, len);
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t error_code, void *ud)
{
    wk_stream *s = stream_of(h2, id);

    if (s != NULL) {
        nghttp2_session_set_stream_user_data(h2, id, NULL);
        worker_req_free(s);
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *h2, int32_t id, uint8_t *buf,
                                        size_t length, uint32_t *flags,
                                        nghttp2_data_source *src, void *ud)
{
    wk_stream *s = src->ptr;
    bool eof;
    ssize_t n = worker_req_pull(s, buf, length, &eof);

    if (n < 0)
        return NGHTTP2_ERR_DEFERRED;
    if (eof)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (eof && s->trailers.len > 0) { /* the stream ends with them */
        nghttp3_nv nv[64];
        size_t nt = worker_req_trailers(s, nv, 64);
        if (nghttp2_submit_trailer(h2, id, (const nghttp2_nv *)nv, nt) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        qd_buf_release(&s->trailers);
    }
    return n;
}

/* make_callbacks - nghttp2's callback table, made once */
static int make_callbacks(void)
{
    if (callbacks != NULL)
        return 0;
    if (nghttp2_session_callbacks_new(&callbacks) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, on_begin_frame);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    return 0;
}

int worker_h2_start(wk_conn *c)
{
    wk_tcp *t = c->tcp;
    const qd_conf *conf = &c->w->child.conf;
    uint32_t window = conf->stream_window > MAX_WINDOW ? MAX_WINDOW : (uint32_t)conf->stream_window;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)conf->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, WORKER_MAX_HEAD},
    };
    int32_t conn_window = conf->connection_window > MAX_WINDOW ? (int32_t)MAX_WINDOW
                                                               : (int32_t)conf->connection_window;

    static nghttp2_option *opt;
    if (opt == NULL) {
        if (nghttp2_option_new(&opt) != 0)
            return -1;
        nghttp2_option_set_no_auto_window_update(opt, 1); /* on_data_chunk consumes */
    }
    if (make_callbacks() < 0 || nghttp2_session_server_new2(&t->h2, callbacks, c, opt) != 0)
        return -1;
    if (nghttp2_submit_settings(t->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(t->h2, NGHTTP2_FLAG_NONE, 0, conn_window) != 0)
        return -1;
    t->head_deadline_ns = worker_now() + (uint64_t)conf->tcp_header_timeout_ms * 1000000;
    return 0; /* a draining worker's GOAWAY waits for the first request (worker_tcp_close_all) */
}

/* error_code - the GOAWAY code for a fatal error of nghttp2_session_mem_recv */
static uint32_t error_code(int err)
{
    switch (err) {
    case NGHTTP2_ERR_FLOODED: /* the client does not read what its frames make us send */
    case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
        return NGHTTP2_ENHANCE_YOUR_CALM;
    case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
    case NGHTTP2_ERR_PROTO:
        return NGHTTP2_PROTOCOL_ERROR;
    case NGHTTP2_ERR_HEADER_COMP:
        return NGHTTP2_COMPRESSION_ERROR;
    case NGHTTP2_ERR_FLOW_CONTROL:
        return NGHTTP2_FLOW_CONTROL_ERROR;
    case NGHTTP2_ERR_FRAME_SIZE_ERROR:
        return NGHTTP2_FRAME_SIZE_ERROR;
    default:
        return NGHTTP2_INTERNAL_ERROR;
    }
}

int worker_h2_recv(wk_conn *c, const uint8_t *data, size_t len)
{
    wk_tcp *t = c->tcp;
    ssize_t n = nghttp2_session_mem_recv(t->h2, data, len);

    if (n < 0) {
        qd_debug("HTTP/2 connection %s from %s: %s", c->cid_text, c->peer,
                 nghttp2_strerror((int)n));
        c->w->tcp_errors++;
        t->close_reason = QD_REC_REASON_ERROR;
        /* a bad preface or worse: say why (GOAWAY) before closing */
        uint32_t code = error_code((int)n);
        if (code == NGHTTP2_ENHANCE_YOUR_CALM)
            worker_guard_refuse(c, WK_GUARD_FLOOD, nghttp2_strerror((int)n));
        nghttp2_session_terminate_session(t->h2, code);
        return -1;
    }
    return 0;
}

int worker_h2_produce(wk_conn *c)
{
    wk_tcp *t = c->tcp;

    while (t->out.len < OUT_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(t->h2, &data);
        if (n < 0) {
            qd_debug("HTTP/2 connection %s: %s", c->cid_text, nghttp2_strerror((int)n));
            return -1;
        }
        if (n == 0)
            break;
        worker_tcp_out(t, data, (size_t)n);
    }
    return 0;
}

bool worker_h2_done(wk_conn *c)
{
    wk_tcp *t = c->tcp;

    return t->closing || (!nghttp2_session_want_read(t->h2) && !nghttp2_session_want_write(t->h2));
}

/*
 * worker_h2_shutdown - GOAWAY: no new streams; the session ends when the
 * open ones are done (|now|: at once, with those open reset).
 */
void worker_h2_shutdown(wk_conn *c, bool now)
{
    wk_tcp *t = c->tcp;

    if (now)
        nghttp2_session_terminate_session(t->h2, NGHTTP2_NO_ERROR);
    else
        nghttp2_submit_goaway(t->h2, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(t->h2), NGHTTP2_NO_ERROR,
                              NULL, 0);
    worker_conn_mark(c);
}

/* worker_h2_notice - the first GOAWAY of a graceful stop: every stream still allowed */
void worker_h2_notice(wk_conn *c)
{
    if (nghttp2_submit_shutdown_notice(c->tcp->h2) == 0)
        c->notice_ns = worker_now();
    worker_conn_mark(c);
}

void worker_h2_free(wk_conn *c)
{
    wk_tcp *t = c->tcp;

    /* The streams are freed already (worker_req_free_all); forget them. */
    nghttp2_session_del(t->h2);
    t->h2 = NULL;
}

static int submit(wk_stream *s, const nghttp3_nv *nv, size_t n, bool body)
{
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_body};

    return nghttp2_submit_response(s->c->tcp->h2, (int32_t)s->id, (const nghttp2_nv *)nv, n,
                                   body ? &prd : NULL);
}

static int submit_info(wk_stream *s, const nghttp3_nv *nv, size_t n)
{
    int32_t rv = nghttp2_submit_headers(s->c->tcp->h2, NGHTTP2_FLAG_NONE, (int32_t)s->id, NULL,
                                        (const nghttp2_nv *)nv, n, NULL);

    return rv < 0 ? -1 : 0;
}

static void resume(wk_stream *s)
{
    if (s->blocked) {
        s->blocked = false;
        nghttp2_session_resume_data(s->c->tcp->h2, (int32_t)s->id);
    }
}

static void reset(wk_stream *s, bool malformed)
{
    nghttp2_submit_rst_stream(s->c->tcp->h2, NGHTTP2_FLAG_NONE, (int32_t)s->id,
                              malformed ? NGHTTP2_PROTOCOL_ERROR : NGHTTP2_INTERNAL_ERROR);
}

/* consumed - body bytes a source held: WINDOW_UPDATE as nghttp2 sees fit */
static void consumed(wk_stream *s, size_t n)
{
    if (s->c->tcp->h2 != NULL)
        nghttp2_session_consume(s->c->tcp->h2, (int32_t)s->id, n); /* a closed stream: the connection's */
}

const wk_proto worker_h2_proto = {
    .name = QD_PROTO_H2,
    .alt_svc = true,
    .submit = submit,
    .submit_info = submit_info,
    .resume = resume,
    .reset = reset,
    .consumed = consumed,
};
