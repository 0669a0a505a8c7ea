/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_metrics - the worker's counters and histograms for /metrics
 * SYNOPSIS
 *	worker_metrics_handshake(c), worker_metrics_conn(c),
 *	worker_metrics_request(s), worker_metrics_reset(c, side),
 *	worker_metrics_open(), worker_metrics_send(w)
 * DESCRIPTION
 *	The worker counts into w->m (a qd_metrics, libshared/qd_metrics.def)
 *	where the events happen: the datagram paths bump their slots
 *	directly, and the ends of handshakes, connections and requests come
 *	here. Counters the worker kept before the table (packets, bytes,
 *	Retry, resets, guard closes, the proxy's, the records') are copied
 *	into their slots when the totals are sent, and the gauges (open
 *	connections, requests in flight, half-open connections, socket
 *	buffers) are taken then.
 *
 *	The per-worker families (worker label) are counted at the worker's
 *	place in its generation (qd_child's slot, 0 to workers - 1), which a
 *	worker started again after a crash, or its successor at a reload,
 *	takes over: stats adds each process's growth to the same series.
 *	Their CPU time comes from getrusage, their resident memory from
 *	/proc/self/statm, opened by worker_metrics_open before the chroot
 *	and read with pread each time.
 *
 *	The aggregates by route: each request's end is also counted under
 *	the name of the proxy table's route that matches it ("host/prefix"
 *	as configured, a local route's too), or QD_ROUTE_LOCAL when none
 *	does (no table, or no route for it): its status class, body bytes
 *	and duration. The first QD_ROUTE_MAX names get a place each, the
 *	rest share QD_ROUTE_OTHER; names outlive a reload that drops their
 *	route (totals only grow). They go with the totals in QD_MSG_METRICS.
 *
 *	worker_metrics_send sends the running totals to stats as one
 *	QD_MSG_METRICS datagram every stats_interval and once more at exit:
 *	totals, not deltas, so a lost datagram costs nothing; stats keeps
 *	them monotonic across restarts (daemons/stats/stats_metrics.c).
 * DIAGNOSTICS
 *	A send error other than a full channel is logged, rate-limited; a
 *	full channel loses that interval's message only.
 */
#include "config.h"

/* system */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"
#include "qd_time.h"

/* local */
#include "worker.h"

static uint8_t metrics_buf[QD_METRICS_NSLOTS * 10];
static int statm_fd = -1; /* /proc/self/statm, opened before the chroot */

/* place - the worker's value of the worker label: its place in its generation */
static unsigned place(const worker *w)
{
    int p = w->child.slot >= 0 ? w->child.slot : w->child.instance;

    return p < 0 ? 0 : (unsigned)p % QD_MDN_WORKER;
}

/* cpu_us - the CPU time this process used, user and system, in microseconds */
static uint64_t cpu_us(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec +
           (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
}

/* resident - this process's resident memory in bytes (statm's second field), 0 if unknown */
static uint64_t resident(void)
{
    char buf[128];
    ssize_t n = statm_fd >= 0 ? pread(statm_fd, buf, sizeof(buf) - 1, 0) : -1;
    unsigned long long size, rss;

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &size, &rss) != 2)
        return 0;
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

void worker_metrics_open(void)
{
    if (statm_fd < 0)
        statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
}

/* hs_failure - why a connection ended before its handshake did */
static unsigned hs_failure(const wk_conn *c, uint32_t by, uint32_t reason, uint64_t code,
                                  bool app)
{
    if (reason == QD_REC_REASON_HANDSHAKE_TIMEOUT)
        return QD_MV_HS_TIMEOUT;
    if (by == QD_REC_CLOSE_BY_CLIENT)
        return QD_MV_HS_CLOSED;
    if (by == QD_REC_CLOSE_BY_SERVER && reason == QD_REC_REASON_ERROR &&
        (c->tcp != NULL || (!app && code >= 0x100 && code <= 0x1ff)))
        return QD_MV_HS_TLS;
    return QD_MV_HS_ABANDONED;
}

/* close_code - the CLOSE_CODE value of a QUIC connection's end */
static unsigned close_code(uint32_t reason, uint64_t code, bool app)
{
    switch (reason) {
    case QD_REC_REASON_IDLE:
        return QD_MV_CODE_IDLE;
    case QD_REC_REASON_HANDSHAKE_TIMEOUT:
        return QD_MV_CODE_HANDSHAKE_TIMEOUT;
    case QD_REC_REASON_STATELESS_RESET:
        return QD_MV_CODE_STATELESS_RESET;
    case QD_REC_REASON_DROPPED:
        return QD_MV_CODE_SILENT;
    default:
        return qd_metrics_close_code(app, code);
    }
}

void worker_metrics_handshake(wk_conn *c)
{
    unsigned t = c->tcp != NULL ? QD_MV_TCP : QD_MV_QUIC;

    c->w->m.v[QD_M2(HANDSHAKES, t, QD_MV_HS_OK)]++;
    qd_metrics_observe(&c->w->m, QD_M1(HANDSHAKE_SECONDS, t), c->handshake_ns / 1000);
}

void worker_metrics_conn(wk_conn *c)
{
    qd_metrics *m = &c->w->m;
    unsigned t = c->tcp != NULL ? QD_MV_TCP : QD_MV_QUIC;
    uint32_t by, reason;
    uint64_t code;
    bool app;

    worker_rec_close_info(c, &by, &reason, &code, &app);
    if (!c->handshake_done)
        m->v[QD_M2(HANDSHAKES, t, hs_failure(c, by, reason, code, app))]++;
    if (c->tcp != NULL)
        return;
    /* a silent end that nobody chose (shutdown, a packet ngtcp2 refused) is local */
    unsigned side = by == QD_REC_CLOSE_BY_CLIENT ? QD_MV_REMOTE : QD_MV_LOCAL;
    m->v[QD_M2(QUIC_CLOSES, side, close_code(reason, code, app))]++;
    if (c->had_early && c->conn != NULL)
        m->v[QD_M1(EARLY_DATA, ngtcp2_conn_get_tls_early_data_rejected(c->conn)
                                    ? QD_MV_EARLY_REJECTED
                                    : QD_MV_EARLY_ACCEPTED)]++;
}

/* route_name - the name a request's route is counted under */
static const char *route_name(worker *w, const wk_stream *s, char *buf, size_t len)
{
    const qd_proxy_route *r = worker_route_match(w, s);

    if (r == NULL)
        return QD_ROUTE_LOCAL;
    if (snprintf(buf, len, "%s%s", r->host, r->prefix) >= (int)len)
        buf[len - 1] = '\0'; /* a longer name is counted cut (QD_ROUTE_NAME_MAX) */
    return buf;
}

/* route_count - the totals of route |name|: a new place, or QD_ROUTE_OTHER's when all are taken */
static uint64_t *route_count(worker *w, const char *name)
{
    struct wk_route_count *rc;

    for (size_t i = 0; i < w->nroute_counts; i++)
        if (strcmp(w->route_counts[i].name, name) == 0)
            return w->route_counts[i].v;
    if (w->nroute_counts == QD_ROUTE_MAX) {
        name = QD_ROUTE_OTHER;
        rc = &w->route_counts[QD_ROUTE_MAX];
        if (rc->name[0] != '\0')
            return rc->v;
    } else {
        rc = &w->route_counts[w->nroute_counts++];
    }
    snprintf(rc->name, sizeof(rc->name), "%s", name);
    return rc->v;
}

/* count_route - a request's end in the aggregates by route */
static void count_route(wk_stream *s, unsigned cls, uint64_t duration_us)
{
    worker *w = s->c->w;
    char buf[QD_ROUTE_NAME_MAX];
    uint64_t *v = route_count(w, route_name(w, s, buf, sizeof(buf)));

    v[QD_ROUTE_REQUESTS + cls]++;
    v[QD_ROUTE_BYTES_IN] += s->body_in;
    v[QD_ROUTE_BYTES_OUT] += worker_rec_bytes_out(s);
    qd_metrics_hist_observe(&v[QD_ROUTE_DURATION], duration_us);
}

void worker_metrics_request(wk_stream *s)
{
    qd_metrics *m = &s->c->w->m;
    unsigned p = worker_conn_proto_index(s->c);
    unsigned cls = s->status >= 100 && s->status <= 599 ? (unsigned)s->status / 100 - 1
                                                         : QD_MV_CLASS_NONE;
    uint64_t now = worker_now();

    if (s->method == NULL)
        return; /* not a request: no head came */
    m->v[QD_M2(REQUESTS, p, cls)]++;
    m->v[QD_M1(WORKER_REQUESTS, place(s->c->w))]++;
    m->v[QD_M1(REQUEST_BYTES, p)] += s->body_in;
    m->v[QD_M1(RESPONSE_BYTES, p)] += worker_rec_bytes_out(s);
    if (s->ttfb_ns)
        qd_metrics_observe(m, QD_M1(TTFB_SECONDS, p), (s->ttfb_ns - s->started_ns) / 1000);
    qd_metrics_observe(m, QD_M1(REQUEST_SECONDS, p), (now - s->started_ns) / 1000);
    count_route(s, cls, (now - s->started_ns) / 1000);
}

void worker_metrics_reset(wk_conn *c, unsigned side)
{
    c->w->m.v[QD_M2(STREAM_RESETS, worker_conn_proto_index(c), side)]++;
}

/* in_flight - requests with a head on the connections of |list|, by protocol */
static void in_flight(wk_conn *list, uint64_t flight[3])
{
    for (wk_conn *k = list; k != NULL; k = k->next)
        for (wk_stream *s = k->streams; s != NULL; s = s->next)
            if (s->method != NULL)
                flight[worker_conn_proto_index(k)]++;
}

/* gauges - what is open now: connections, requests, half-open, socket buffers */
static void gauges(worker *w)
{
    qd_metrics *m = &w->m;
    uint64_t flight[3] = {0, 0, 0};
    int rcv = 0, snd = 0;

    in_flight(w->conns, flight);
    in_flight(w->tconns, flight);
    for (unsigned p = 0; p < 3; p++)
        m->v[QD_M1(REQUESTS_IN_FLIGHT, p)] = flight[p];
    m->v[QD_M1(CONNECTIONS_OPEN, QD_MV_QUIC)] = w->connections - w->closing;
    m->v[QD_M1(CONNECTIONS_OPEN, QD_MV_TCP)] = w->tcp_count;
    m->v[QD_M_QUIC_HALF_OPEN] = w->half_open;
    m->v[QD_M_QUIC_RETRY_ACTIVE] = w->retry_active ? 1 : 0;
    worker_io_buffers(w, &rcv, &snd);
    m->v[QD_M_UDP_RCVBUF] = rcv > 0 ? (uint64_t)rcv : 0;
    m->v[QD_M_UDP_SNDBUF] = snd > 0 ? (uint64_t)snd : 0;
    m->v[QD_M1(WORKER_CONNECTIONS_OPEN, place(w))] =
        (uint64_t)(w->connections - w->closing) + (uint64_t)w->tcp_count;
    m->v[QD_M1(WORKER_RESIDENT, place(w))] = resident();
}

/* copy - the counters the worker keeps in fields of its own */
static void copy(worker *w)
{
    qd_metrics *m = &w->m;

    m->v[QD_M_UDP_RX_DATAGRAMS] = w->rx_packets;
    m->v[QD_M_UDP_TX_DATAGRAMS] = w->tx_packets;
    m->v[QD_M_UDP_RX_BYTES] = w->rx_bytes;
    m->v[QD_M_UDP_TX_BYTES] = w->tx_bytes;
    m->v[QD_M_UDP_RXQ_DROPS] = worker_io_rxq_drops(w);
    m->v[QD_M1(UDP_SEND_ERRORS, QD_MV_SEND_EMSGSIZE)] = w->udp_emsgsize;
    m->v[QD_M1(UDP_SEND_ERRORS, QD_MV_SEND_NOBUF)] = w->udp_nobufs;
    m->v[QD_M1(UDP_SEND_ERRORS, QD_MV_SEND_OTHER)] =
        w->udp_send_errors - w->udp_emsgsize - w->udp_nobufs;
    m->v[QD_M_QUIC_FORWARDED] = w->forwarded_wrong_worker;
    m->v[QD_M_QUIC_RETRY_SENT] = w->retries_sent;
    m->v[QD_M_QUIC_RESETS_SENT] = w->resets_sent;
    m->v[QD_M1(QUIC_DROPPED, QD_MV_DROP_RETRY_BUDGET)] = w->initials_dropped;
    m->v[QD_M1(CONNECTIONS, QD_MV_TCP)] = w->tcp_accepted;
    m->v[QD_M_TCP_REFUSED] = w->tcp_refused;
    for (unsigned g = 0; g < WK_GUARD_N && g < QD_MDN_GUARD; g++)
        m->v[QD_M1(GUARD_CLOSES, g)] = w->guard_closed[g];
    m->v[QD_M_PROXIED] = w->proxied;
    m->v[QD_M_PROXY_ERRORS] = w->proxy_errors;
    m->v[QD_M_PROXY_RETRIES] = w->proxy_retries;
    m->v[QD_M_RECORDS_SENT] = w->rec_sent;
    m->v[QD_M_RECORDS_DROPPED] = w->rec_drops;
    m->v[QD_M1(WORKER_UDP_RX, place(w))] = w->rx_packets;
    m->v[QD_M1(WORKER_CPU, place(w))] = cpu_us();
}

void worker_metrics_put(worker *w, qd_ipc_msg *m)
{
    copy(w);
    gauges(w);
    size_t len = qd_metrics_encode(&w->m, metrics_buf, sizeof(metrics_buf));
    if (len == 0 || len > UINT16_MAX)
        return;
    qd_ipc_put_u32(m, QD_F_SCHEMA, qd_metrics_schema());
    qd_ipc_put_bytes(m, QD_F_METRICS, metrics_buf, len);
}

void worker_metrics_send(worker *w, bool exiting)
{
    static qd_log_limit lim;

    if (w->child.stats == NULL)
        return;
    copy(w);
    gauges(w);
    size_t len = qd_metrics_encode(&w->m, metrics_buf, sizeof(metrics_buf));
    if (len == 0 || len > UINT16_MAX)
        return; /* cannot happen: under two kilobytes */
    qd_ipc_msg *msg = qd_chan_msg(w->child.stats, QD_MSG_METRICS, 0);
    qd_metrics_put_msg(msg, QD_ROLE_WORKER, w->child.instance < 0 ? 0 : (uint32_t)w->child.instance,
                       (uint32_t)getpid(), w->started_ms, metrics_buf, len, exiting);
    for (size_t i = 0; i <= QD_ROUTE_MAX; i++) { /* the last place: QD_ROUTE_OTHER, when used */
        const struct wk_route_count *rc = &w->route_counts[i];
        uint8_t enc[QD_ROUTE_NSLOTS * 10];
        if (rc->name[0] == '\0' || (len = qd_metrics_encode_n(rc->v, QD_ROUTE_NSLOTS, enc,
                                                                sizeof(enc))) == 0)
            continue;
        qd_ipc_put_str(msg, QD_F_ROUTE, rc->name);
        qd_ipc_put_bytes(msg, QD_F_ROUTE_SLOTS, enc, len);
    }
    int rv = qd_chan_queue(w->child.stats); /* lost with its record if the channel is full */
    if (rv < 0)
        qd_log_limited(&lim, QD_LOG_WARN, "stats channel (metrics): %s", qd_strerror(rv));
}
