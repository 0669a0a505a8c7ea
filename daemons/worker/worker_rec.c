/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_rec - connection, request and sample records for stats
 * SYNOPSIS
 *	worker_rec_conn(), worker_rec_request(), worker_rec_start(),
 *	worker_rec_conns(), worker_rec_flush()
 * DESCRIPTION
 *	The worker knows connections and requests best, so it reports them:
 *	a QD_MSG_REC_CONN when a connection is freed, a QD_MSG_REC_REQUEST
 *	when a request stream is freed, as request_history says (all, errors,
 *	one in N, none; the metrics count every request whatever it says),
 *	(a proxied one's also names the
 *	upstream server, its answer's status and the upstream time), and a
 *	QD_MSG_REC_SAMPLE every stats_interval. Records are packed into
 *	QD_MSG_REC_BATCH datagrams (below QD_REC_BATCH_BYTES; a record never
 *	spans two) sent when full or WORKER_REC_FLUSH_MS after the batch's
 *	first record, whichever comes first, on the stats channel (a lossy
 *	SOCK_DGRAM qd_chan): a full channel drops the batch and counts
 *	its records in w->rec_drops, and that count travels in the next
 *	sample (F_DROPS), so the loss itself reaches the database. A record
 *	is composed in the worker's own wk_recs (made once) and the batch
 *	sent through the worker's stats channel (qd_child's qd_chan), so
 *	nothing is allocated per record. With stats = no nothing is sent.
 * DIAGNOSTICS
 *	A send error other than a full channel is logged, rate-limited.
 * SEE ALSO
 *	daemons/stats/stats_db.c, quicd-stats(5)
 */
#include "config.h"

/* system */
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

/* libshared */
#include "qd_err.h"
#include "qd_alloc.h"
#include "qd_log.h"
#include "qd_time.h"

/* local */
#include "worker.h"

/* What the worker's records are composed in (worker_rec_start makes it) */
struct wk_recs {
    qd_ipc_msg rec;   /* the record being composed */
    qd_ipc_msg batch; /* QD_MSG_REC_BATCH being filled */
    uint32_t count;   /* records in it */
    uint8_t enc[QD_REC_BATCH_BYTES];
    uv_timer_t timer; /* the batch's first record waited WORKER_REC_FLUSH_MS */
};

/* on_batch_timer - the batch's first record has waited WORKER_REC_FLUSH_MS */
static void on_batch_timer(uv_timer_t *t)
{
    worker_rec_flush(t->data);
}

void worker_rec_flush(worker *w)
{
    static qd_log_limit lim;
    wk_recs *r = w->recs;
    qd_chan *ch = w->child.stats;

    if (r == NULL || r->count == 0)
        return;
    uv_timer_stop(&r->timer);
    /* The batch leaves now, on its own record, so that a full channel is known at once. */
    uint64_t dropped = ch != NULL ? ch->dropped : 0;
    int rv = ch != NULL ? qd_chan_send(ch, &r->batch) : QD_ERR_EOF;
    if (rv == 0) {
        qd_chan_flush(ch);
        rv = ch->dropped == dropped ? 0 : QD_ERR_AGAIN;
    }
    if (rv < 0) {
        w->rec_drops += r->count;
        if (rv != QD_ERR_AGAIN)
            qd_log_limited(&lim, QD_LOG_WARN, "stats channel: %s", qd_strerror(rv));
    } else {
        w->rec_sent += r->count;
    }
    r->count = 0;
    qd_ipc_msg_init(&r->batch, QD_MSG_REC_BATCH, 0);
}

/*
 * send_rec - add the record in w->recs->rec to the batch; the batch goes out as
 * one datagram when it is full or when its timer fires, so a busy worker
 * makes one send per some fifty records, not one per request or per loop
 * iteration (a sendmsg that wakes the stats daemon costs more than
 * composing a record). Never waits.
 */
static void send_rec(worker *w)
{
    wk_recs *r = w->recs;
    int n = qd_ipc_encode(&r->rec, r->enc, sizeof(r->enc));

    if (n < 0 || (size_t)n + 4 > QD_REC_BATCH_BYTES - QD_IPC_HDR_LEN) {
        w->rec_drops++; /* cannot happen: records are small */
        return;
    }
    if (r->count > 0 && r->batch.len + 4 + (size_t)n > QD_REC_BATCH_BYTES - QD_IPC_HDR_LEN)
        worker_rec_flush(w);
    if (r->count == 0) {
        qd_ipc_msg_init(&r->batch, QD_MSG_REC_BATCH, 0);
        uv_timer_start(&r->timer, on_batch_timer, WORKER_REC_FLUSH_MS, 0);
    }
    qd_ipc_put_bytes(&r->batch, QD_F_BODY, r->enc, (size_t)n);
    r->count++;
}


/* cc_name - the congestion controller's name */
static const char *cc_name(const qd_conf *conf)
{
    return conf->congestion_control == QD_CC_BBR    ? "bbr"
           : conf->congestion_control == QD_CC_RENO ? "reno"
                                                    : "cubic";
}

/* is_clean_peer_close - the client closed the connection with NO_ERROR or H3_NO_ERROR */
static bool is_clean_peer_close(const wk_conn *c)
{
    if (c->state != WK_DRAINING || c->conn == NULL || c->got_reset)
        return false;
    const ngtcp2_ccerr *e = ngtcp2_conn_get_ccerr(c->conn);
    return e->error_code == 0 ||
           (e->type == NGTCP2_CCERR_TYPE_APPLICATION && e->error_code == NGHTTP3_H3_NO_ERROR);
}

void worker_rec_close_info(const wk_conn *c, uint32_t *by, uint32_t *reason, uint64_t *code,
                           bool *app)
{
    *by = QD_REC_CLOSE_BY_NONE;
    *reason = c->close_reason;
    *code = 0;
    *app = false;
    if (c->tcp != NULL) {
        *by = c->tcp->close_by;
        *reason = c->tcp->close_reason;
    } else if (c->got_reset) {
        *by = QD_REC_CLOSE_BY_CLIENT;
        *reason = QD_REC_REASON_STATELESS_RESET;
    } else if (c->state == WK_DRAINING && c->conn != NULL) {
        const ngtcp2_ccerr *e = ngtcp2_conn_get_ccerr(c->conn);
        *by = QD_REC_CLOSE_BY_CLIENT;
        *code = e->error_code;
        *app = e->type == NGTCP2_CCERR_TYPE_APPLICATION;
        *reason = is_clean_peer_close(c) ? QD_REC_REASON_NONE : QD_REC_REASON_ERROR;
    } else if (c->state == WK_CLOSING) {
        *by = QD_REC_CLOSE_BY_SERVER;
        *code = c->last_error.error_code;
        *app = c->last_error.type == NGTCP2_CCERR_TYPE_APPLICATION;
        /* a handshake that timed out is closed with an error, but is its own reason */
        *reason =
            c->close_reason == QD_REC_REASON_HANDSHAKE_TIMEOUT ? QD_REC_REASON_HANDSHAKE_TIMEOUT
            : c->last_error.error_code == 0 || (c->last_error.type == NGTCP2_CCERR_TYPE_APPLICATION &&
                                              c->last_error.error_code == NGHTTP3_H3_NO_ERROR)
                ? QD_REC_REASON_NONE
                : QD_REC_REASON_ERROR;
    } else if (c->close_reason == QD_REC_REASON_IDLE ||
               c->close_reason == QD_REC_REASON_HANDSHAKE_TIMEOUT) {
        *by = QD_REC_CLOSE_BY_SERVER;
    }
}

/*
 * pkts_lost - packets declared lost, as ngtcp2 1.11 can tell: it counts,
 * per stream, the lost packets that carried that stream's data
 * (ngtcp2_conn_get_stream_loss_count; a packet with two streams' data
 * counts for each, one with only ACK, CRYPTO or other control frames not
 * at all). Closed streams were added up in c->pkts_lost as they closed;
 * here come the ones still open: requests and our three unidirectional
 * streams.
 */
static uint64_t pkts_lost(const wk_conn *c)
{
    uint64_t n = c->pkts_lost;

    for (const wk_stream *s = c->streams; s != NULL; s = s->next)
        n += ngtcp2_conn_get_stream_loss_count(c->conn, s->id);
    if (c->h3 != NULL)
        for (size_t i = 0; i < 3; i++)
            n += ngtcp2_conn_get_stream_loss_count(c->conn, c->h3_uni[i]);
    return n;
}

/* tcp_rtt_us - the kernel's smoothed RTT of a TCP connection, or 0 */
static uint64_t tcp_rtt_us(const wk_conn *c)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    if (getsockopt(c->tcp->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return 0;
    return ti.tcpi_rtt;
}

/*
 * put_tcp_info - what the kernel knows of a TCP connection: smoothed RTT,
 * congestion window (segments x MSS), segments retransmitted (as the
 * packets lost) and its congestion controller
 */
static void put_tcp_info(qd_ipc_msg *m, const wk_conn *c)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    char cc[16];
    socklen_t cclen = sizeof(cc) - 1;

    if (getsockopt(c->tcp->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
        qd_ipc_put_u64(m, QD_F_SRTT_US, ti.tcpi_rtt);
        qd_ipc_put_u64(m, QD_F_CWND, (uint64_t)ti.tcpi_snd_cwnd * ti.tcpi_snd_mss);
        qd_ipc_put_u64(m, QD_F_PKTS_LOST, ti.tcpi_total_retrans);
    }
    memset(cc, 0, sizeof(cc));
    if (getsockopt(c->tcp->fd, IPPROTO_TCP, TCP_CONGESTION, cc, &cclen) == 0 && cc[0] != '\0')
        qd_ipc_put_str(m, QD_F_CC, cc);
}

void worker_rec_conn(wk_conn *c)
{
    worker *w = c->w;
    uint32_t flags = 0, by, reason;
    uint64_t code;
    bool app;

    if (!w->child.conf.stats || w->recs == NULL)
        return;
    qd_ipc_msg *m = &w->recs->rec;
    qd_ipc_msg_init(m, QD_MSG_REC_CONN, 0);
    qd_ipc_put_str(m, QD_F_CONN_ID, c->cid_text);
    qd_ipc_put_u32(m, QD_F_INSTANCE,
                   w->child.instance < 0 ? 0 : (uint32_t)w->child.instance);
    for (uint32_t i = 0; i < c->npaths; i++)
        qd_ipc_put_str(m, QD_F_PEER, c->paths[i]);
    qd_ipc_put_str(m, QD_F_ADDR, c->local);
    qd_ipc_put_u64(m, QD_F_TIME_MS, c->started_ms);
    qd_ipc_put_u64(m, QD_F_END_MS, qd_time_real_ms());
    if (c->handshake_done) {
        flags |= QD_REC_F_HANDSHAKE;
        qd_ipc_put_u64(m, QD_F_HANDSHAKE_US, c->handshake_ns / 1000);
    }
    if (c->ssl != NULL) {
        const unsigned char *alpn = NULL;
        unsigned int alen = 0;
        char buf[32];
        wolfSSL_get0_alpn_selected(c->ssl, &alpn, &alen);
        if (alpn != NULL && alen > 0 && alen < sizeof(buf)) {
            memcpy(buf, alpn, alen);
            buf[alen] = '\0';
            if (memchr(buf, '\0', alen) == NULL)
                qd_ipc_put_str(m, QD_F_ALPN, buf);
        }
        const char *cipher = c->handshake_done ? wolfSSL_get_cipher_name(c->ssl) : NULL;
        if (cipher != NULL)
            qd_ipc_put_str(m, QD_F_CIPHER, cipher);
        if (c->handshake_done && wolfSSL_session_reused(c->ssl))
            flags |= QD_REC_F_RESUMED;
    }
    if (c->conn != NULL) {
        ngtcp2_conn_info ci;
        ngtcp2_conn_get_conn_info(c->conn, &ci);
        qd_ipc_put_u32(m, QD_F_QUIC_VERSION, ngtcp2_conn_get_negotiated_version(c->conn));
        qd_ipc_put_u64(m, QD_F_SRTT_US, ci.smoothed_rtt / 1000);
        qd_ipc_put_u64(m, QD_F_MIN_RTT_US, ci.min_rtt == UINT64_MAX ? 0 : ci.min_rtt / 1000);
        qd_ipc_put_u64(m, QD_F_CWND, ci.cwnd);
        qd_ipc_put_u64(m, QD_F_PKTS_LOST, pkts_lost(c));
        if (c->had_early && !ngtcp2_conn_get_tls_early_data_rejected(c->conn))
            flags |= QD_REC_F_EARLY;
    }
    if (c->tcp != NULL)
        put_tcp_info(m, c);
    if (c->retry_used)
        flags |= QD_REC_F_RETRY;
    qd_ipc_put_str(m, QD_F_PROTO, worker_conn_proto(c));
    qd_ipc_put_u32(m, QD_F_FLAGS, flags);
    qd_ipc_put_u64(m, QD_F_BYTES_IN, c->bytes_in);
    qd_ipc_put_u64(m, QD_F_BYTES_OUT, c->bytes_out);
    qd_ipc_put_u64(m, QD_F_PKTS_IN, c->pkts_in);
    qd_ipc_put_u64(m, QD_F_PKTS_OUT, c->pkts_out);
    if (c->tcp == NULL)
        qd_ipc_put_str(m, QD_F_CC, cc_name(&w->child.conf));
    qd_ipc_put_u32(m, QD_F_MIGRATIONS, c->migrations);
    qd_ipc_put_u32(m, QD_F_STREAMS, c->streams_opened);
    worker_rec_close_info(c, &by, &reason, &code, &app);
    qd_ipc_put_u32(m, QD_F_CLOSE_BY, by);
    qd_ipc_put_u32(m, QD_F_CLOSE_REASON, reason);
    qd_ipc_put_u64(m, QD_F_ERROR_CODE, code);
    send_rec(w);
}

/*
 * put_upstream - a proxied request's server, its answer's status (0: none
 * came) and the upstream time. The proxy table bounds a server's name
 * (QD_PROXY_HOST_MAX); cut at QD_REC_SERVER_MAX - 1 bytes all the same, so
 * that a record stays far below QD_REC_BATCH_BYTES whatever the name. No
 * answer and a time of 0 means nobody took the time (the client left
 * first, or a failure the proxy does not time): F_UP_TIME_US is left out
 * rather than sent as 0 ms.
 */
static void put_upstream(qd_ipc_msg *m, const wk_stream *s)
{
    size_t len = strnlen(s->up_server, QD_REC_SERVER_MAX - 1);

    qd_ipc_put_bytes(m, QD_F_SERVER, s->up_server, len);
    qd_ipc_put_u32(m, QD_F_UP_STATUS, s->up_status);
    if (s->up_status != 0 || s->up_time_us != 0)
        qd_ipc_put_u64(m, QD_F_UP_TIME_US, s->up_time_us);
}

/*
 * Body bytes the client acknowledged. A client that closes the connection
 * cleanly right after its last response may leave our last ACKs unread; it
 * had everything we handed to the stream, so count that.
 */
uint64_t worker_rec_bytes_out(const wk_stream *s)
{
    return s->handed > s->acked && is_clean_peer_close(s->c) ? s->handed : s->acked;
}

/* kept - whether request_history gives |s| a row of its own */
static bool kept(worker *w, const wk_stream *s)
{
    qd_history mode = QD_HISTORY_ALL;
    uint32_t n = 1;
    const char *why;

    /* checked when the configuration was read: cannot fail here */
    if (w->child.conf.request_history != NULL)
        qd_conf_history_parse(w->child.conf.request_history, &mode, &n, &why);
    switch (mode) {
    case QD_HISTORY_ALL:
        return true;
    case QD_HISTORY_ERRORS:
        return s->status == 0 || s->status >= 400;
    case QD_HISTORY_SAMPLE:
        return n <= 1 || worker_prng() % n == 0;
    default:
        return false;
    }
}

void worker_rec_request(wk_stream *s)
{
    worker *w = s->c->w;
    uint64_t now = worker_now();

    if (!w->child.conf.stats || w->recs == NULL || s->method == NULL || s->path == NULL ||
        !kept(w, s))
        return;
    qd_ipc_msg *m = &w->recs->rec;
    qd_ipc_msg_init(m, QD_MSG_REC_REQUEST, 0);
    qd_ipc_put_str(m, QD_F_CONN_ID, s->c->cid_text);
    qd_ipc_put_u32(m, QD_F_INSTANCE,
                   w->child.instance < 0 ? 0 : (uint32_t)w->child.instance);
    qd_ipc_put_u64(m, QD_F_QUIC_STREAM, (uint64_t)s->id);
    qd_ipc_put_u64(m, QD_F_TIME_MS, s->started_ms);
    qd_ipc_put_str(m, QD_F_METHOD, s->method);
    /* A path is at most a few KB; keep the record one small datagram. */
    if (strlen(s->path) > 1024) {
        char p[1025];
        memcpy(p, s->path, 1024);
        p[1024] = '\0';
        qd_ipc_put_str(m, QD_F_PATH, p);
    } else {
        qd_ipc_put_str(m, QD_F_PATH, s->path);
    }
    qd_ipc_put_u32(m, QD_F_STATUS, s->status > 0 ? (uint32_t)s->status : 0);
    qd_ipc_put_u64(m, QD_F_BYTES_IN, s->body_in);
    qd_ipc_put_u64(m, QD_F_BYTES_OUT, worker_rec_bytes_out(s));
    qd_ipc_put_u64(m, QD_F_DURATION_US, (now - s->started_ns) / 1000);
    if (s->ttfb_ns)
        qd_ipc_put_u64(m, QD_F_TTFB_US, (s->ttfb_ns - s->started_ns) / 1000);
    qd_ipc_put_str(m, QD_F_PROTO, worker_conn_proto(s->c));
    if (s->up_server != NULL)
        put_upstream(m, s);
    send_rec(w);
}

/* on_sample - counters since the last sample */
static void on_sample(uv_timer_t *t)
{
    worker *w = t->data;
    uint64_t now = worker_now();
    struct mallinfo2 mi = mallinfo2();

    worker_metrics_send(w, false); /* with stats = no too: /metrics does not depend on records */
    if (!w->child.conf.stats)
        return;
    qd_ipc_msg *m = &w->recs->rec;
    qd_ipc_msg_init(m, QD_MSG_REC_SAMPLE, 0);
    qd_ipc_put_u32(m, QD_F_INSTANCE,
                   w->child.instance < 0 ? 0 : (uint32_t)w->child.instance);
    qd_ipc_put_u64(m, QD_F_TIME_MS, qd_time_real_ms());
    qd_ipc_put_u32(m, QD_F_INTERVAL_MS, (uint32_t)((now - w->sample_ns) / 1000000));
    qd_ipc_put_u32(m, QD_F_CONNECTIONS, w->connections - w->closing);
    qd_ipc_put_u64(m, QD_F_HANDSHAKES, w->handshakes - w->last.handshakes);
    qd_ipc_put_u64(m, QD_F_REQUESTS, w->requests - w->last.requests);
    qd_ipc_put_u64(m, QD_F_PKTS_IN, w->rx_packets - w->last.rx_packets);
    qd_ipc_put_u64(m, QD_F_PKTS_OUT, w->tx_packets - w->last.tx_packets);
    qd_ipc_put_u64(m, QD_F_BYTES_IN, w->rx_bytes - w->last.rx_bytes);
    qd_ipc_put_u64(m, QD_F_BYTES_OUT, w->tx_bytes - w->last.tx_bytes);
    qd_ipc_put_u64(m, QD_F_GSO_BATCHES, w->tx_batches - w->last.tx_batches);
    qd_ipc_put_u64(m, QD_F_DROPS, w->rec_drops - w->last.rec_drops);
    qd_ipc_put_u64(m, QD_F_MEM_BYTES, (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd);
    w->last.handshakes = w->handshakes;
    w->last.requests = w->requests;
    w->last.rx_packets = w->rx_packets;
    w->last.tx_packets = w->tx_packets;
    w->last.rx_bytes = w->rx_bytes;
    w->last.tx_bytes = w->tx_bytes;
    w->last.tx_batches = w->tx_batches;
    /* Drops of the batch that carries this sample show in the next one. */
    w->last.rec_drops = w->rec_drops;
    send_rec(w);
    w->sample_ns = now;
}

void worker_rec_start(worker *w)
{
    uint64_t ms = (uint64_t)w->child.conf.stats_interval_ms;

    w->sample_ns = worker_now();
    w->recs = qd_xcalloc(1, sizeof(*w->recs));
    qd_ipc_msg_init(&w->recs->batch, QD_MSG_REC_BATCH, 0);
    uv_timer_init(w->child.loop, &w->recs->timer);
    w->recs->timer.data = w;
    uv_timer_init(w->child.loop, &w->sample_timer);
    w->sample_timer.data = w;
    uv_timer_start(&w->sample_timer, on_sample, ms, ms);
}

/* put_conn - one connection's group in a QD_MSG_CONNS reply */
static void put_conn(qd_ipc_msg *m, wk_conn *c)
{
    uint32_t flags = c->handshake_done ? QD_REC_F_HANDSHAKE : 0;
    uint64_t srtt_us = 0;

    if (c->conn != NULL) {
        ngtcp2_conn_info ci;
        ngtcp2_conn_get_conn_info(c->conn, &ci);
        srtt_us = ci.smoothed_rtt / 1000;
    } else if (c->tcp != NULL) {
        srtt_us = tcp_rtt_us(c);
    }
    if (c->handshake_done && c->ssl != NULL && wolfSSL_session_reused(c->ssl))
        flags |= QD_REC_F_RESUMED;
    if (c->had_early)
        flags |= QD_REC_F_EARLY;
    qd_ipc_put_str(m, QD_F_CONN_ID, c->cid_text);
    qd_ipc_put_str(m, QD_F_PEER, c->peer);
    qd_ipc_put_u64(m, QD_F_TIME_MS, c->started_ms);
    qd_ipc_put_u32(m, QD_F_STREAMS, c->nstreams);
    qd_ipc_put_u64(m, QD_F_BYTES_IN, c->bytes_in);
    qd_ipc_put_u64(m, QD_F_BYTES_OUT, c->bytes_out);
    qd_ipc_put_u64(m, QD_F_SRTT_US, srtt_us);
    qd_ipc_put_u32(m, QD_F_MIGRATIONS, c->migrations);
    qd_ipc_put_u32(m, QD_F_FLAGS, flags);
    qd_ipc_put_str(m, QD_F_PROTO, worker_conn_proto(c));
}

void worker_rec_conns(worker *w, int fd)
{
    static qd_log_limit lim;
    uint32_t n = 0;
    /* a one-shot channel: the list, then the end */
    qd_chan *ch = qd_chan_open(w->child.loop, fd, "conns reply", NULL, NULL, NULL);
    qd_ipc_msg *m = qd_chan_msg(ch, QD_MSG_CONNS, 0);

    qd_ipc_put_u32(m, QD_F_INSTANCE,
                   w->child.instance < 0 ? 0 : (uint32_t)w->child.instance);
    qd_ipc_put_u32(m, QD_F_CONNECTIONS, w->connections - w->closing + w->tcp_count);
    for (wk_conn *c = w->conns; c != NULL && n < QD_CONNS_MAX; c = c->next)
        if (c->state == WK_ALIVE)
            put_conn(m, c), n++;
    for (wk_conn *c = w->tconns; c != NULL && n < QD_CONNS_MAX; c = c->next)
        if (!c->tcp->dead && !c->tcp->lingering)
            put_conn(m, c), n++;
    int rv = qd_chan_queue(ch);
    if (rv < 0)
        qd_log_limited(&lim, QD_LOG_WARN, "conns reply: %s", qd_strerror(rv));
    qd_chan_close(ch); /* sends it: the socket is empty */
}
