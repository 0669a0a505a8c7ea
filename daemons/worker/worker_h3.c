/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_h3 - HTTP/3 with nghttp3: framing and QPACK for the requests
 * SYNOPSIS
 *	worker_h3_setup(), worker_h3_recv(), worker_h3_stream_close(),
 *	worker_h3_proto (submit, submit_info, resume, reset)
 * DESCRIPTION
 *	nghttp3 owns HTTP/3 framing and QPACK; ngtcp2 (worker_conn.c) owns the
 *	streams. nghttp3's callbacks feed the protocol-neutral request code
 *	(worker_req.c): a wk_stream is made at begin_headers and freed at
 *	nghttp3's stream_close. Response bodies are handed to nghttp3 as
 *	pointers into the stream's chunks, which stay ours until the client
 *	acknowledges them (acked_stream_data -> worker_req_acked).
 *
 *	Abuse is bounded as for HTTP/2 (worker_guard.c) and closes the
 *	connection with H3_EXCESSIVE_LOAD: request streams reset by either
 *	side over the budget (counted as they close with an error code: the
 *	client's RESET_STREAM, the reset ngtcp2 answers its STOP_SENDING
 *	with, ours for its malformed requests), a field section (head or
 *	trailers) over the limits. Such a section is not decoded further: the
 *	header callback fails, and nghttp3 stops at once.
 * DIAGNOSTICS
 *	nghttp3 errors close the connection with the matching HTTP/3 error
 *	(RFC 9114 8, RFC 9204 6: frame, settings, QPACK and critical-stream
 *	errors are connection errors); a malformed request (RFC 9114 4.1.2)
 *	resets its stream only.
 */
#include "config.h"

/* libshared */
#include "qd_log.h"

/* local */
#include "worker.h"
#include "worker_mem.h"

static nghttp3_ssize read_data(nghttp3_conn *h3, int64_t id, nghttp3_vec *vec, size_t veccnt,
                               uint32_t *pflags, void *conn_ud, void *stream_ud)
{
    wk_stream *s = stream_ud;
    bool eof;
    int n;

    if (s == NULL)
        return NGHTTP3_ERR_CALLBACK_FAILURE;
    n = worker_req_read_vec(s, vec, veccnt, &eof);
    if (n < 0)
        return NGHTTP3_ERR_WOULDBLOCK;
    if (eof)
        *pflags |= NGHTTP3_DATA_FLAG_EOF;
    if (eof && s->trailers.len > 0) { /* the stream ends with them */
        nghttp3_nv nv[64];
        size_t nt = worker_req_trailers(s, nv, 64);
        if (nghttp3_conn_submit_trailers(h3, id, nv, nt) == 0)
            *pflags |= NGHTTP3_DATA_FLAG_NO_END_STREAM;
        qd_buf_release(&s->trailers);
    }
    return (nghttp3_ssize)n;
}

static int submit(wk_stream *s, const nghttp3_nv *nv, size_t n, bool body)
{
    nghttp3_data_reader reader = {.read_data = read_data};

    return nghttp3_conn_submit_response(s->c->h3, s->id, nv, n, body ? &reader : NULL);
}

static int submit_info(wk_stream *s, const nghttp3_nv *nv, size_t n)
{
    return nghttp3_conn_submit_info(s->c->h3, s->id, nv, n);
}

static void resume(wk_stream *s)
{
    if (s->blocked && s->c->h3) {
        s->blocked = false;
        nghttp3_conn_resume_stream(s->c->h3, s->id);
    }
}

static void reset(wk_stream *s, bool malformed)
{
    ngtcp2_conn_shutdown_stream(s->c->conn, 0, s->id,
                                malformed ? NGHTTP3_H3_MESSAGE_ERROR : NGHTTP3_H3_INTERNAL_ERROR);
}

/* consumed - body bytes a source held: the stream's and the connection's windows reopen */
static void consumed(wk_stream *s, size_t n)
{
    if (s->c->conn == NULL)
        return;
    ngtcp2_conn_extend_max_stream_offset(s->c->conn, s->id, n); /* a closed stream: ignored */
    ngtcp2_conn_extend_max_offset(s->c->conn, n);
}

const wk_proto worker_h3_proto = {
    .name = QD_PROTO_H3,
    .submit = submit,
    .submit_info = submit_info,
    .resume = resume,
    .reset = reset,
    .consumed = consumed,
};

/* refuse - close the connection with H3_EXCESSIVE_LOAD for abuse |why| (counted, logged) */
static int refuse(wk_conn *c, enum wk_guard_cause why, const char *what)
{
    if (c->h3_error == 0) {
        c->h3_error = NGHTTP3_H3_EXCESSIVE_LOAD;
        worker_guard_refuse(c, why, what);
    }
    ngtcp2_ccerr_set_application_error(&c->last_error, c->h3_error, NULL, 0);
    c->close_reason = QD_REC_REASON_ERROR;
    return -1;
}

static int begin_headers(nghttp3_conn *h3, int64_t id, void *conn_ud, void *stream_ud)
{
    wk_conn *c = conn_ud;
    wk_stream *s = worker_req_new(c, id);

    s->early = c->rx_early;
    nghttp3_conn_set_stream_user_data(h3, id, s);
    return 0;
}

static int recv_header(nghttp3_conn *h3, int64_t id, int32_t token, nghttp3_rcbuf *name,
                       nghttp3_rcbuf *value, uint8_t flags, void *conn_ud, void *stream_ud)
{
    wk_stream *s = stream_ud;
    nghttp3_vec n = nghttp3_rcbuf_get_buf(name), v = nghttp3_rcbuf_get_buf(value);

    if (s == NULL || worker_req_header(s, n.base, n.len, v.base, v.len))
        return 0;
    refuse(conn_ud, WK_GUARD_HEADERS, "HTTP/3 field section");
    return NGHTTP3_ERR_CALLBACK_FAILURE; /* nghttp3 decodes no more of it */
}

static int recv_trailer(nghttp3_conn *h3, int64_t id, int32_t token, nghttp3_rcbuf *name,
                        nghttp3_rcbuf *value, uint8_t flags, void *conn_ud, void *stream_ud)
{
    wk_stream *s = stream_ud;
    size_t bytes = nghttp3_rcbuf_get_buf(name).len + nghttp3_rcbuf_get_buf(value).len + 32;

    if (s == NULL || worker_guard_section(s, bytes, true))
        return 0; /* counted, not passed on */
    refuse(conn_ud, WK_GUARD_HEADERS, "HTTP/3 trailer section");
    return NGHTTP3_ERR_CALLBACK_FAILURE;
}

static int end_headers(nghttp3_conn *h3, int64_t id, int fin, void *conn_ud, void *stream_ud)
{
    wk_conn *c = conn_ud;
    wk_stream *s = stream_ud;

    if (s == NULL)
        return 0;
    if (c->rx_early)
        s->early = true;
    worker_req_head(s, fin != 0);
    return 0;
}

static int recv_data(nghttp3_conn *h3, int64_t id, const uint8_t *data, size_t len,
                     void *conn_ud, void *stream_ud)
{
    wk_conn *c = conn_ud;
    wk_stream *s = stream_ud;

    /* Credit goes back at once (the app's queue is bounded by max_request_body),
     * unless the source holds the body (the proxy: worker_req_consumed). */
    if (s == NULL || !s->hold_body) {
        ngtcp2_conn_extend_max_stream_offset(c->conn, id, len);
        ngtcp2_conn_extend_max_offset(c->conn, len);
    }
    if (s != NULL)
        worker_req_body(s, data, len);
    return 0;
}

static int deferred_consume(nghttp3_conn *h3, int64_t id, size_t consumed, void *conn_ud,
                            void *stream_ud)
{
    wk_conn *c = conn_ud;

    ngtcp2_conn_extend_max_stream_offset(c->conn, id, consumed);
    ngtcp2_conn_extend_max_offset(c->conn, consumed);
    return 0;
}

static int end_stream(nghttp3_conn *h3, int64_t id, void *conn_ud, void *stream_ud)
{
    wk_stream *s = stream_ud;

    if (s != NULL)
        worker_req_end(s);
    return 0;
}

static int acked_stream_data(nghttp3_conn *h3, int64_t id, uint64_t len, void *conn_ud,
                             void *stream_ud)
{
    wk_stream *s = stream_ud;

    if (s != NULL)
        worker_req_acked(s, len);
    return 0;
}

static int h3_stream_close(nghttp3_conn *h3, int64_t id, uint64_t app_error_code, void *conn_ud,
                           void *stream_ud)
{
    wk_conn *c = conn_ud;
    wk_stream *s = stream_ud;

    if (ngtcp2_is_bidi_stream(id) && !ngtcp2_conn_is_local_stream(c->conn, id))
        ngtcp2_conn_extend_max_streams_bidi(c->conn, 1);
    if (s != NULL)
        worker_req_free(s);
    return 0;
}

static int stop_sending(nghttp3_conn *h3, int64_t id, uint64_t app_error_code, void *conn_ud,
                        void *stream_ud)
{
    wk_conn *c = conn_ud;

    return ngtcp2_conn_shutdown_stream_read(c->conn, 0, id, app_error_code) == 0
               ? 0
               : NGHTTP3_ERR_CALLBACK_FAILURE;
}

static int reset_stream(nghttp3_conn *h3, int64_t id, uint64_t app_error_code, void *conn_ud,
                        void *stream_ud)
{
    wk_conn *c = conn_ud;

    return ngtcp2_conn_shutdown_stream_write(c->conn, 0, id, app_error_code) == 0
               ? 0
               : NGHTTP3_ERR_CALLBACK_FAILURE;
}

static const nghttp3_callbacks h3_callbacks = {
    .acked_stream_data = acked_stream_data,
    .stream_close = h3_stream_close,
    .recv_data = recv_data,
    .deferred_consume = deferred_consume,
    .begin_headers = begin_headers,
    .recv_header = recv_header,
    .recv_trailer = recv_trailer,
    .end_headers = end_headers,
    .stop_sending = stop_sending,
    .end_stream = end_stream,
    .reset_stream = reset_stream,
};

int worker_h3_setup(wk_conn *c)
{
    nghttp3_settings settings;
    int64_t ctrl, enc, dec;

    if (c->h3 != NULL)
        return 0;
    if (ngtcp2_conn_get_streams_uni_left(c->conn) < 3)
        return -1;
    nghttp3_settings_default(&settings);
    settings.qpack_max_dtable_capacity = 4096;
    settings.qpack_blocked_streams = 100;
    settings.max_field_section_size = WORKER_MAX_HEAD;
    if (nghttp3_conn_server_new(&c->h3, &h3_callbacks, &settings, &worker_mem_nghttp3, c) != 0)
        return -1;
    const ngtcp2_transport_params *p = ngtcp2_conn_get_local_transport_params(c->conn);
    nghttp3_conn_set_max_client_streams_bidi(c->h3, p->initial_max_streams_bidi);
    if (ngtcp2_conn_open_uni_stream(c->conn, &ctrl, NULL) != 0 ||
        nghttp3_conn_bind_control_stream(c->h3, ctrl) != 0 ||
        ngtcp2_conn_open_uni_stream(c->conn, &enc, NULL) != 0 ||
        ngtcp2_conn_open_uni_stream(c->conn, &dec, NULL) != 0 ||
        nghttp3_conn_bind_qpack_streams(c->h3, enc, dec) != 0)
        return -1;
    c->h3_uni[0] = ctrl;
    c->h3_uni[1] = enc;
    c->h3_uni[2] = dec;
    return 0; /* a draining worker's GOAWAY waits for the first request (worker_conn_close_all) */
}

int worker_h3_recv(wk_conn *c, int64_t id, const uint8_t *data, size_t len, int fin, bool early)
{
    c->rx_early = early; /* the callbacks below mark new requests */
    if (early)
        c->had_early = true;
    nghttp3_ssize n = nghttp3_conn_read_stream(c->h3, id, data, len, fin);
    c->rx_early = false;

    if (n == NGHTTP3_ERR_MALFORMED_HTTP_MESSAGING || n == NGHTTP3_ERR_MALFORMED_HTTP_HEADER) {
        /* A malformed request (say a body longer than its content-length):
         * reset that stream only; the connection and its other requests go
         * on, while such resets stay within the budget (stream_close). */
        ngtcp2_conn_shutdown_stream(c->conn, 0, id, nghttp3_err_infer_quic_app_error_code((int)n));
        worker_metrics_reset(c, QD_MV_LOCAL);
        ngtcp2_conn_extend_max_offset(c->conn, len);
        return 0;
    }
    if (n < 0) {
        if (c->h3_error == 0) /* else a callback refused (refuse) and set the code */
            ngtcp2_ccerr_set_application_error(
                &c->last_error, nghttp3_err_infer_quic_app_error_code((int)n), NULL, 0);
        return -1;
    }
    ngtcp2_conn_extend_max_stream_offset(c->conn, id, (uint64_t)n);
    ngtcp2_conn_extend_max_offset(c->conn, (uint64_t)n);
    return 0;
}

/*
 * worker_h3_stream_close - ngtcp2 closed stream |id|; -1 when the
 * connection must close: a request stream reset by either side (its
 * |app_error_code| not H3_NO_ERROR) over the budget.
 */
int worker_h3_stream_close(wk_conn *c, int64_t id, uint64_t app_error_code)
{
    if (c->h3 == NULL)
        return 0;
    int rv = nghttp3_conn_close_stream(c->h3, id, app_error_code);
    if (rv == NGHTTP3_ERR_STREAM_NOT_FOUND) {
        if (ngtcp2_is_bidi_stream(id) && !ngtcp2_conn_is_local_stream(c->conn, id))
            ngtcp2_conn_extend_max_streams_bidi(c->conn, 1);
    } else if (rv != 0) {
        ngtcp2_ccerr_set_application_error(&c->last_error,
                                           nghttp3_err_infer_quic_app_error_code(rv), NULL, 0);
    }
    if (ngtcp2_is_bidi_stream(id) && !ngtcp2_conn_is_local_stream(c->conn, id) &&
        app_error_code != NGHTTP3_H3_NO_ERROR && !worker_guard_reset(c))
        return refuse(c, WK_GUARD_RESETS, "request streams reset");
    return 0;
}
