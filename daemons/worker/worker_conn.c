/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_conn - QUIC connections: create, read, write, timers, close
 * SYNOPSIS
 *	worker_conn_new(), worker_conn_read(), worker_conn_write(),
 *	worker_conn_retry_blocked(), worker_conn_close(), worker_conn_free()
 * DESCRIPTION
 *	The ngtcp2 side of the worker, modelled on ngtcp2's examples/server.cc
 *	(see ../shared/notes/ngtcp2-server.md): the connection's settings and
 *	transport parameters, ngtcp2's callbacks (CIDs, handshake, migration,
 *	streams handed to worker_h3.c), reading, writing, the timer and the
 *	close. worker_accept.c decides which datagrams make a connection and
 *	which reach one; worker_drain.c stops them gracefully.
 *
 *	Each connection owns its ngtcp2_conn, nghttp3_conn (worker_h3.c),
 *	WOLFSSL session and one timer. Packets are written in batches of
 *	same-size packets sent with one GSO sendmsg; a batch the socket will
 *	not take waits in the connection until the socket is writable.
 *	Connections are freed from the timer's close callback, so no libuv
 *	handle outlives its memory.
 * DIAGNOSTICS
 *	Connection errors are logged at debug level and close the connection
 *	with the error's code.
 */
#include "config.h"

/* system */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* libraries */
#include <ngtcp2/ngtcp2_crypto.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_log.h"
#include "qd_time.h"

/* local */
#include "worker.h"
#include "worker_mem.h"
#include "worker_pkt.h"

#define HANDSHAKE_TIMEOUT_NS (30 * NGTCP2_SECONDS)

static uint8_t tx_buf[WORKER_TX_BUF];

static void rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    for (size_t i = 0; i < len; i++)
        dest[i] = (uint8_t)(worker_prng() >> 56);
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    wk_conn *c = ref->user_data;
    return c->conn;
}

/* addr_text - "addr:port" of |sa| */
static void addr_text(const struct sockaddr *sa, char *out, size_t len)
{
    char host[64] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
        port = ntohs(s->sin_port);
        snprintf(out, len, "%s:%u", host, port);
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
        port = ntohs(s->sin6_port);
        snprintf(out, len, "[%s]:%u", host, port);
    }
}

/* make_path - the path of a datagram, in the form ngtcp2 compares */
static ngtcp2_path make_path(wk_ep *ep, const wk_addr *local, const wk_addr *remote)
{
    ngtcp2_path path = {
        .local = {.addr = (ngtcp2_sockaddr *)&local->ss, .addrlen = local->len},
        .remote = {.addr = (ngtcp2_sockaddr *)&remote->ss, .addrlen = remote->len},
        .user_data = ep,
    };
    return path;
}

/* --- the CID table --------------------------------------------------------- */

static void map_cid(wk_conn *c, const ngtcp2_cid *cid)
{
    wk_map_put(&c->w->cids, cid->data, cid->datalen, c);
}

static void unmap_cid(wk_conn *c, const ngtcp2_cid *cid)
{
    if (wk_map_get(&c->w->cids, cid->data, cid->datalen) == c)
        wk_map_del(&c->w->cids, cid->data, cid->datalen);
}

/* --- ngtcp2 callbacks ------------------------------------------------------ */

static int get_new_connection_id(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token,
                                 size_t cidlen, void *user_data)
{
    wk_conn *c = user_data;
    worker *w = c->w;

    for (int tries = 0; tries < 8; tries++) {
        if (qd_cid_mint(cid->data, (unsigned)w->child.instance, w->child.generation, w->cid_tag) < 0)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        cid->datalen = QD_CID_LEN;
        if (wk_map_get(&w->cids, cid->data, cid->datalen) == NULL)
            break;
    }
    if (ngtcp2_crypto_generate_stateless_reset_token(token, w->static_secret,
                                                     sizeof(w->static_secret), cid) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    map_cid(c, cid);
    return 0;
}

static int remove_connection_id(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *user_data)
{
    unmap_cid(user_data, cid);
    return 0;
}

static int handshake_completed(ngtcp2_conn *conn, void *user_data)
{
    wk_conn *c = user_data;
    uint8_t token[NGTCP2_CRYPTO_MAX_REGULAR_TOKENLEN];
    const ngtcp2_path *path = ngtcp2_conn_get_path(conn);

    c->handshake_done = true;
    c->handshake_ns = worker_now() - c->started_ns;
    worker_metrics_handshake(c);
    worker_req_handshake_done(c); /* requests that waited for it (a 425 to replay) */
    c->w->handshakes++;
    c->w->rate_done++;
    c->w->half_open--;
    ngtcp2_ssize n = ngtcp2_crypto_generate_regular_token(
        token, c->w->static_secret, sizeof(c->w->static_secret), path->remote.addr,
        path->remote.addrlen, worker_wall_ns());
    if (n > 0)
        ngtcp2_conn_submit_new_token(conn, token, (size_t)n);
    return 0;
}

static int path_validation(ngtcp2_conn *conn, uint32_t flags, const ngtcp2_path *path,
                           const ngtcp2_path *old_path, ngtcp2_path_validation_result res,
                           void *user_data)
{
    wk_conn *c = user_data;

    if (res != NGTCP2_PATH_VALIDATION_RESULT_SUCCESS) {
        worker_count(c->w, QD_M1(PATH_VALIDATIONS, QD_MV_PATH_FAILED));
        return 0;
    }
    worker_count(c->w, QD_M1(PATH_VALIDATIONS, QD_MV_PATH_OK));
    worker_count(c->w, QD_M_MIGRATIONS);
    addr_text(path->remote.addr, c->peer, sizeof(c->peer));
    qd_debug("connection migrated to %s", c->peer);
    c->migrations++;
    if (c->npaths < QD_REC_MAX_PATHS)
        memcpy(c->paths[c->npaths++], c->peer, sizeof(c->peer));
    if (flags & NGTCP2_PATH_VALIDATION_FLAG_NEW_TOKEN) {
        uint8_t token[NGTCP2_CRYPTO_MAX_REGULAR_TOKENLEN];
        ngtcp2_ssize n = ngtcp2_crypto_generate_regular_token(
            token, c->w->static_secret, sizeof(c->w->static_secret), path->remote.addr,
            path->remote.addrlen, worker_wall_ns());
        if (n > 0)
            ngtcp2_conn_submit_new_token(conn, token, (size_t)n);
    }
    return 0;
}

static int recv_stateless_reset(ngtcp2_conn *conn, const ngtcp2_pkt_stateless_reset *sr,
                                void *user_data)
{
    wk_conn *c = user_data;

    c->got_reset = true;
    return 0;
}

static int recv_tx_key(ngtcp2_conn *conn, ngtcp2_encryption_level level, void *user_data)
{
    if (level != NGTCP2_ENCRYPTION_LEVEL_1RTT)
        return 0;
    return worker_h3_setup(user_data) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t offset,
                            const uint8_t *data, size_t len, void *user_data, void *stream_data)
{
    wk_conn *c = user_data;

    if (c->h3 == NULL)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return worker_h3_recv(c, id, data, len, flags & NGTCP2_STREAM_DATA_FLAG_FIN,
                          flags & NGTCP2_STREAM_DATA_FLAG_0RTT) == 0
               ? 0
               : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int acked_stream_data_offset(ngtcp2_conn *conn, int64_t id, uint64_t offset,
                                    uint64_t datalen, void *user_data, void *stream_data)
{
    wk_conn *c = user_data;

    if (c->h3 && nghttp3_conn_add_ack_offset(c->h3, id, datalen) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t id, uint64_t app_error_code,
                        void *user_data, void *stream_data)
{
    wk_conn *c = user_data;

    if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET))
        app_error_code = NGHTTP3_H3_NO_ERROR;
    c->pkts_lost += ngtcp2_conn_get_stream_loss_count(conn, id); /* still there until we return */
    /* over the reset budget: H3_EXCESSIVE_LOAD (worker_guard.c) */
    return worker_h3_stream_close(c, id, app_error_code) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

/*
 * shutdown_read - the read side of stream |id| is over before its end:
 * the client reset it (stream_reset), or it was shut down here
 * (stream_stop_sending: ngtcp2 calls it for our own STOP_SENDING, not
 * the client's, which ngtcp2 answers with a reset by itself); tell nghttp3
 */
static int shutdown_read(wk_conn *c, int64_t id)
{
    if (c->h3 && nghttp3_conn_shutdown_stream_read(c->h3, id) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int stream_reset(ngtcp2_conn *conn, int64_t id, uint64_t final_size,
                        uint64_t app_error_code, void *user_data, void *stream_data)
{
    if ((id & 0x3) == 0) /* a request stream the client reset */
        worker_metrics_reset(user_data, QD_MV_REMOTE);
    return shutdown_read(user_data, id);
}

static int stream_stop_sending(ngtcp2_conn *conn, int64_t id, uint64_t app_error_code,
                               void *user_data, void *stream_data)
{
    return shutdown_read(user_data, id);
}

static int extend_max_remote_streams_bidi(ngtcp2_conn *conn, uint64_t max_streams,
                                          void *user_data)
{
    wk_conn *c = user_data;

    if (c->h3)
        nghttp3_conn_set_max_client_streams_bidi(c->h3, max_streams);
    return 0;
}

static int extend_max_stream_data(ngtcp2_conn *conn, int64_t id, uint64_t max_data,
                                  void *user_data, void *stream_data)
{
    wk_conn *c = user_data;

    if (c->h3 && nghttp3_conn_unblock_stream(c->h3, id) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

/*
 * recv_crypto_data - ngtcp2's wolfSSL glue, plus a debug line saying which
 * piece of CRYPTO data TLS refused: the only trace of a handshake that
 * fails inside wolfSSL_provide_quic_data (no alert, no error code).
 */
static int recv_crypto_data(ngtcp2_conn *conn, ngtcp2_encryption_level level, uint64_t offset,
                            const uint8_t *data, size_t datalen, void *user_data)
{
    int rv = ngtcp2_crypto_recv_crypto_data_cb(conn, level, offset, data, datalen, user_data);

    if (rv != 0)
        qd_debug("connection from %s: TLS refused CRYPTO data at level %d, offset %llu, "
                 "%zu bytes",
                 ((wk_conn *)user_data)->peer, (int)level, (unsigned long long)offset, datalen);
    return rv;
}

/* the worker whose packet ngtcp2 is reading (ngtcp2's decrypt callback has no user data) */
static worker *the_decrypting;

/* decrypt - ngtcp2_crypto's, counting the packets whose protection does not verify */
static int decrypt(uint8_t *dest, const ngtcp2_crypto_aead *aead,
                   const ngtcp2_crypto_aead_ctx *aead_ctx, const uint8_t *ciphertext,
                   size_t ciphertextlen, const uint8_t *nonce, size_t noncelen,
                   const uint8_t *aad, size_t aadlen)
{
    int rv = ngtcp2_crypto_decrypt_cb(dest, aead, aead_ctx, ciphertext, ciphertextlen, nonce,
                                      noncelen, aad, aadlen);

    if (rv == NGTCP2_ERR_DECRYPT && the_decrypting != NULL)
        worker_count(the_decrypting, QD_M1(QUIC_DROPPED, QD_MV_DROP_UNDECRYPTABLE));
    return rv;
}

static const ngtcp2_callbacks callbacks = {
    .recv_client_initial = ngtcp2_crypto_recv_client_initial_cb,
    .recv_crypto_data = recv_crypto_data,
    .handshake_completed = handshake_completed,
    .encrypt = ngtcp2_crypto_encrypt_cb,
    .decrypt = decrypt,
    .hp_mask = ngtcp2_crypto_hp_mask_cb,
    .recv_stream_data = recv_stream_data,
    .acked_stream_data_offset = acked_stream_data_offset,
    .stream_close = stream_close,
    .rand = rand_cb,
    .get_new_connection_id = get_new_connection_id,
    .remove_connection_id = remove_connection_id,
    .update_key = ngtcp2_crypto_update_key_cb,
    .path_validation = path_validation,
    .recv_stateless_reset = recv_stateless_reset,
    .stream_reset = stream_reset,
    .extend_max_remote_streams_bidi = extend_max_remote_streams_bidi,
    .extend_max_stream_data = extend_max_stream_data,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .stream_stop_sending = stream_stop_sending,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
    .recv_tx_key = recv_tx_key,
};

/* --- lifetime -------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

/* on_timer_closed - the last handle of the connection is closed: free it */
static void on_timer_closed(uv_handle_t *h)
{
    wk_conn *c = h->data;

    free(c->close_pkt);
    free(c->blocked_buf);
    free(c);
}

/* worker_conn_free - forget the connection and free it */
void worker_conn_free(wk_conn *c)
{
    worker *w = c->w;

    if (c->timer_closing)
        return;
    worker_metrics_conn(c);
    worker_rec_conn(c);
    qd_debug("connection %s from %s closed after %llums (%s)", c->cid_text, c->peer,
             (unsigned long long)((worker_now() - c->started_ns) / 1000000),
             c->state == WK_DRAINING  ? "peer closed"
             : c->state == WK_CLOSING ? "we closed"
                                      : "idle or dropped");
    if (c->conn != NULL) {
        size_t n = ngtcp2_conn_get_scid(c->conn, NULL);
        ngtcp2_cid *scids = qd_xcalloc(n ? n : 1, sizeof(*scids));
        ngtcp2_conn_get_scid(c->conn, scids);
        for (size_t i = 0; i < n; i++)
            unmap_cid(c, &scids[i]);
        free(scids);
    }
    unmap_cid(c, &c->odcid);
    worker_req_free_all(c);
    if (c->h3)
        nghttp3_conn_del(c->h3);
    if (c->conn)
        ngtcp2_conn_del(c->conn);
    if (c->ssl)
        wolfSSL_free(c->ssl);
    c->h3 = NULL;
    c->conn = NULL;
    c->ssl = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->connections--;
    if (c->state != WK_ALIVE)
        w->closing--;
    if (!c->handshake_done)
        w->half_open--;
    c->timer_closing = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/* leave_alive - the connection enters its closing or draining period */
static void leave_alive(wk_conn *c, enum wk_conn_state state)
{
    if (c->state == WK_ALIVE)
        c->w->closing++;
    c->state = state;
}

/* update_timer - arm the timer for ngtcp2's next expiry */
static void update_timer(wk_conn *c)
{
    ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(c->conn);
    uint64_t now = worker_now();

    if (c->timer_closing)
        return;
    if (expiry == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    /* libuv counts milliseconds: round up so we never wake early and spin. */
    uint64_t ms = expiry <= now ? 0 : (expiry - now + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* send_batch - one batch on its path's socket; keeps it if the socket is full */
static void send_batch(wk_conn *c, const ngtcp2_path *path, uint8_t ecn, const uint8_t *data,
                       size_t len, size_t gso)
{
    wk_ep *ep = path->user_data;
    int rv;

    if (ep == NULL || ep->fd < 0 || len == 0)
        return;
    c->bytes_out += len;
    c->pkts_out += gso > 0 ? (len + gso - 1) / gso : 1;
    if (c->gso_off && gso < len) {
        for (size_t off = 0; off < len; off += gso) {
            size_t n = len - off < gso ? len - off : gso;
            if (worker_io_send(ep, &path->local, &path->remote, ecn, data + off, n, 0) ==
                QD_ERR_AGAIN)
                break; /* lost: recovery resends */
        }
        return;
    }
    rv = worker_io_send(ep, &path->local, &path->remote, ecn, data, len, gso);
    if (rv == QD_ERR_IO) {
        c->gso_off = true; /* the route cannot segment: send one by one */
        send_batch(c, path, ecn, data, len, gso);
        return;
    }
    if (rv == QD_ERR_AGAIN && !c->blocked) {
        if (c->blocked_buf == NULL)
            c->blocked_buf = qd_xmalloc(WORKER_TX_BUF);
        memcpy(c->blocked_buf, data, len);
        c->blocked_len = len;
        c->blocked_gso = gso;
        c->blocked_ecn = ecn;
        ngtcp2_path_storage_zero(&c->blocked_path);
        ngtcp2_path_copy(&c->blocked_path.path, path);
        c->blocked = true;
        worker_io_want_write(ep);
    }
}

/* worker_conn_close - send CONNECTION_CLOSE once and enter the closing period */
void worker_conn_close(wk_conn *c)
{
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi;

    if (c->last_error.type == NGTCP2_CCERR_TYPE_IDLE_CLOSE ||
        c->last_error.type == NGTCP2_CCERR_TYPE_DROP_CONN ||
        c->last_error.type == NGTCP2_CCERR_TYPE_RETRY || c->conn == NULL ||
        ngtcp2_conn_in_draining_period(c->conn)) {
        worker_conn_free(c);
        return;
    }
    if (ngtcp2_conn_in_closing_period(c->conn) && c->close_pkt != NULL)
        return;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, tx_buf,
                                                        sizeof(tx_buf), &c->last_error,
                                                        worker_now());
    if (n <= 0) {
        worker_conn_free(c);
        return;
    }
    c->close_pkt = qd_xmalloc((size_t)n);
    memcpy(c->close_pkt, tx_buf, (size_t)n);
    c->close_len = (size_t)n;
    ngtcp2_path_storage_zero(&c->close_path);
        ngtcp2_path_copy(&c->close_path.path, &ps.path);
    leave_alive(c, WK_CLOSING);
    send_batch(c, &ps.path, pi.ecn, c->close_pkt, c->close_len, c->close_len);
    /* Free after three PTOs. */
    uv_timer_start(&c->timer, on_timer,
                   (3 * ngtcp2_conn_get_pto(c->conn)) / NGTCP2_MILLISECONDS + 1, 0);
}

/* handle_read_error - the outcome of ngtcp2_conn_read_pkt */
static void handle_read_error(wk_conn *c, int rv)
{
    switch (rv) {
    case NGTCP2_ERR_DRAINING:
        leave_alive(c, WK_DRAINING);
        qd_debug("connection %s: peer closed; draining for %llums", c->cid_text,
                 (unsigned long long)(3 * ngtcp2_conn_get_pto(c->conn) / NGTCP2_MILLISECONDS));
        uv_timer_start(&c->timer, on_timer,
                       (3 * ngtcp2_conn_get_pto(c->conn)) / NGTCP2_MILLISECONDS + 1, 0);
        return;
    case NGTCP2_ERR_DROP_CONN:
        worker_conn_free(c);
        return;
    case NGTCP2_ERR_CRYPTO:
        qd_debug("connection from %s: TLS handshake failed: alert %u, wolfSSL error %d (%s)",
                 c->peer, ngtcp2_conn_get_tls_alert(c->conn), wolfSSL_get_error(c->ssl, 0),
                 wolfSSL_ERR_reason_error_string((unsigned long)wolfSSL_get_error(c->ssl, 0)));
        if (c->last_error.error_code == 0)
            ngtcp2_ccerr_set_tls_alert(&c->last_error, ngtcp2_conn_get_tls_alert(c->conn), NULL,
                                       0);
        break;
    default:
        if (c->last_error.error_code == 0 && c->last_error.type == NGTCP2_CCERR_TYPE_TRANSPORT)
            ngtcp2_ccerr_set_liberr(&c->last_error, rv, NULL, 0);
        break;
    }
    qd_debug("connection from %s: %s", c->peer, ngtcp2_strerror(rv));
    worker_conn_close(c);
}

static void on_timer(uv_timer_t *t)
{
    wk_conn *c = t->data;

    if (c->state != WK_ALIVE) {
        worker_conn_free(c); /* the closing or draining period is over */
        return;
    }
    int rv = ngtcp2_conn_handle_expiry(c->conn, worker_now());
    if (rv != 0) {
        ngtcp2_ccerr_set_liberr(&c->last_error, rv, NULL, 0);
        c->close_reason = rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT ? QD_REC_REASON_HANDSHAKE_TIMEOUT
                          : rv == NGTCP2_ERR_IDLE_CLOSE      ? QD_REC_REASON_IDLE
                                                             : QD_REC_REASON_ERROR;
        if (rv == NGTCP2_ERR_IDLE_CLOSE) {
            worker_conn_free(c);
            return;
        }
        worker_conn_close(c);
        return;
    }
    worker_conn_write(c);
}

/*
 * worker_conn_write - write packets until ngtcp2 has nothing more it may
 * send now, one GSO batch of same-size packets per sendmsg.
 */
void worker_conn_write(wk_conn *c)
{
    nghttp3_vec vec[16];
    ngtcp2_path_storage ps, prev_ps;
    ngtcp2_pkt_info pi;
    uint8_t prev_ecn = 0;
    size_t gso = 0, used = 0;
    uint64_t ts = worker_now();

    if (c->state != WK_ALIVE || c->timer_closing || c->blocked)
        return;
    size_t max_payload = ngtcp2_conn_get_max_tx_udp_payload_size(c->conn);
    size_t path_max = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->conn);
    size_t cap = ngtcp2_conn_get_send_quantum(c->conn);
    if (cap < path_max)
        cap = path_max;
    if (cap > sizeof(tx_buf))
        cap = sizeof(tx_buf);
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_path_storage_zero(&prev_ps);

    for (;;) {
        int64_t stream_id = -1;
        int fin = 0;
        nghttp3_ssize nvec = 0;
        ngtcp2_ssize ndatalen;

        if (c->h3 && ngtcp2_conn_get_max_data_left(c->conn)) {
            nvec = nghttp3_conn_writev_stream(c->h3, &stream_id, &fin, vec, 16);
            if (nvec < 0) {
                ngtcp2_ccerr_set_application_error(
                    &c->last_error, nghttp3_err_infer_quic_app_error_code((int)nvec), NULL, 0);
                worker_conn_close(c);
                return;
            }
        }
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE | (fin ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0);
        size_t buflen = cap - used >= max_payload ? max_payload : path_max;
        ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, tx_buf + used, buflen,
                                                   &ndatalen, flags, stream_id,
                                                   (const ngtcp2_vec *)vec, (size_t)nvec, ts);
        if (n < 0) {
            switch (n) {
            case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                nghttp3_conn_block_stream(c->h3, stream_id);
                continue;
            case NGTCP2_ERR_STREAM_SHUT_WR:
                nghttp3_conn_shutdown_stream_write(c->h3, stream_id);
                continue;
            case NGTCP2_ERR_WRITE_MORE:
                if (nghttp3_conn_add_write_offset(c->h3, stream_id, (size_t)ndatalen) != 0)
                    goto h3_error;
                continue;
            default:
                ngtcp2_ccerr_set_liberr(&c->last_error, (int)n, NULL, 0);
                worker_conn_close(c);
                return;
            }
        }
        if (ndatalen >= 0 && nghttp3_conn_add_write_offset(c->h3, stream_id, (size_t)ndatalen) != 0)
            goto h3_error;
        if (n == 0) {
            if (used > 0)
                send_batch(c, &prev_ps.path, prev_ecn, tx_buf, used, gso);
            break;
        }
        size_t last = used;
        used += (size_t)n;
        if (last == 0) {
            ngtcp2_path_copy(&prev_ps.path, &ps.path);
            prev_ecn = pi.ecn;
            gso = (size_t)n;
        } else if (!ngtcp2_path_eq(&prev_ps.path, &ps.path) || prev_ecn != pi.ecn ||
                   (size_t)n > gso || (gso > path_max && (size_t)n != gso)) {
            /* The new packet cannot join the batch: send both separately. */
            send_batch(c, &prev_ps.path, prev_ecn, tx_buf, last, gso);
            send_batch(c, &ps.path, pi.ecn, tx_buf + last, (size_t)n, (size_t)n);
            break;
        }
        if (cap - used < path_max || (size_t)n < gso) {
            send_batch(c, &ps.path, pi.ecn, tx_buf, used, gso);
            break;
        }
    }
    ngtcp2_conn_update_pkt_tx_time(c->conn, ts);
    update_timer(c);
    return;
h3_error:
    ngtcp2_ccerr_set_application_error(&c->last_error, NGHTTP3_H3_INTERNAL_ERROR, NULL, 0);
    worker_conn_close(c);
}

void worker_conn_retry_blocked(worker *w, wk_ep *ep)
{
    for (wk_conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (!c->blocked || c->blocked_path.path.user_data != ep)
            continue;
        c->blocked = false;
        send_batch(c, &c->blocked_path.path, c->blocked_ecn, c->blocked_buf, c->blocked_len,
                   c->blocked_gso);
        if (!c->blocked)
            worker_conn_write(c);
    }
}

/* --- stateless replies ----------------------------------------------------- */

/* --- accepting ------------------------------------------------------------- */

/* worker_conn_new - create the server connection for an accepted Initial */
wk_conn *worker_conn_new(worker *w, wk_ep *ep, const wk_addr *local, const wk_addr *remote,
                         const ngtcp2_pkt_hd *hd, const ngtcp2_cid *odcid,
                         ngtcp2_token_type token_type)
{
    const qd_conf *conf = &w->child.conf;
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    ngtcp2_cid scid;
    ngtcp2_path path = make_path(ep, local, remote);
    static const uint32_t versions[] = {NGTCP2_PROTO_VER_V2, NGTCP2_PROTO_VER_V1};
    wk_conn *c = qd_xcalloc(1, sizeof(*c));

    c->w = w;
    c->proto = &worker_h3_proto;
    c->ref.get_conn = get_conn;
    c->ref.user_data = c;
    c->started_ns = worker_now();
    c->started_ms = qd_time_real_ms();
    c->close_reason = QD_REC_REASON_DROPPED;
    c->retry_used = token_type == NGTCP2_TOKEN_TYPE_RETRY;
    ngtcp2_ccerr_default(&c->last_error);
    addr_text((const struct sockaddr *)&remote->ss, c->peer, sizeof(c->peer));
    memcpy(c->paths[0], c->peer, sizeof(c->peer));
    c->npaths = 1;
    addr_text((const struct sockaddr *)&local->ss, c->local, sizeof(c->local));
    if (qd_cid_mint(scid.data, (unsigned)w->child.instance, w->child.generation, w->cid_tag) < 0)
        goto fail;
    scid.datalen = QD_CID_LEN;
    for (size_t i = 0; i < QD_CID_LEN; i++)
        snprintf(c->cid_text + 2 * i, 3, "%02x", scid.data[i]);

    ngtcp2_settings_default(&settings);
    settings.initial_ts = worker_now();
    settings.cc_algo = conf->congestion_control == QD_CC_BBR    ? NGTCP2_CC_ALGO_BBR
                       : conf->congestion_control == QD_CC_RENO ? NGTCP2_CC_ALGO_RENO
                                                                     : NGTCP2_CC_ALGO_CUBIC;
    settings.max_window = (uint64_t)conf->connection_window * 2;
    settings.max_stream_window = (uint64_t)conf->stream_window * 2;
    settings.handshake_timeout = HANDSHAKE_TIMEOUT_NS;
    settings.token = hd->token;
    settings.tokenlen = hd->tokenlen;
    settings.token_type = token_type;
    settings.preferred_versions = versions;
    settings.preferred_versionslen = 2;
    settings.available_versions = versions;
    settings.available_versionslen = 2;
    settings.max_tx_udp_payload_size = WORKER_MAX_UDP_PAYLOAD;

    ngtcp2_transport_params_default(&params);
    params.initial_max_stream_data_bidi_local = (uint64_t)conf->stream_window;
    params.initial_max_stream_data_bidi_remote = (uint64_t)conf->stream_window;
    params.initial_max_stream_data_uni = (uint64_t)conf->stream_window;
    params.initial_max_data = (uint64_t)conf->connection_window;
    params.initial_max_streams_bidi = (uint64_t)conf->max_concurrent_streams;
    params.initial_max_streams_uni = 3;
    params.max_idle_timeout = (uint64_t)conf->idle_timeout_ms * NGTCP2_MILLISECONDS;
    params.active_connection_id_limit = 7;
    params.grease_quic_bit = 1;
    params.stateless_reset_token_present = 1;
    if (odcid != NULL) {
        params.original_dcid = *odcid;
        params.retry_scid = hd->dcid;
        params.retry_scid_present = 1;
    } else {
        params.original_dcid = hd->dcid;
    }
    params.original_dcid_present = 1;
    if (ngtcp2_crypto_generate_stateless_reset_token(params.stateless_reset_token,
                                                     w->static_secret, sizeof(w->static_secret),
                                                     &scid) != 0)
        goto fail;
    if (ngtcp2_conn_server_new(&c->conn, &hd->scid, &scid, &path, hd->version, &callbacks,
                               &settings, &params, &worker_mem_ngtcp2, c) != 0)
        goto fail;
    c->ssl = worker_tls_session(w, c);
    if (c->ssl == NULL)
        goto fail;
    ngtcp2_conn_set_tls_native_handle(c->conn, c->ssl);
    uv_timer_init(w->child.loop, &c->timer);
    c->timer.data = c;
    c->odcid = hd->dcid;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->connections++;
    w->half_open++;
    worker_count(w, QD_M1(CONNECTIONS, QD_MV_QUIC));
    map_cid(c, &scid);
    map_cid(c, &hd->dcid);
    return c;
fail:
    if (c->conn)
        ngtcp2_conn_del(c->conn);
    free(c);
    return NULL;
}

/*
 * worker_conn_read - a datagram for connection |c|: a closing connection
 * repeats its close (less and less often), a draining one ignores it,
 * else ngtcp2 reads it. Returns NGTCP2_ERR_RETRY for the caller to
 * answer (a first Initial), else 0: errors close the connection here.
 */
int worker_conn_read(wk_conn *c, wk_ep *ep, const wk_addr *local, const wk_addr *remote,
                     uint8_t ecn, const uint8_t *data, size_t len)
{
    if (c->state == WK_CLOSING) {
        /* Repeat the close, less and less often. */
        c->close_count++;
        if (c->close_pkt && (c->close_count & (c->close_count - 1)) == 0)
            send_batch(c, &c->close_path.path, 0, c->close_pkt, c->close_len, c->close_len);
        return 0;
    }
    if (c->state == WK_DRAINING)
        return 0;
    ngtcp2_path path = make_path(ep, local, remote);
    ngtcp2_pkt_info pi = {.ecn = ecn};
    c->bytes_in += len;
    c->pkts_in++;
    the_decrypting = c->w;
    int rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, data, len, worker_now());
    if (rv == NGTCP2_ERR_RETRY)
        return rv;
    if (rv != 0) {
        handle_read_error(c, rv);
        return 0;
    }
    worker_conn_mark(c);
    return 0;
}
