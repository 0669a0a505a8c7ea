/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	quicctl_summary - what quicd counted in a time window, for a person
 * SYNOPSIS
 *	quicctl_summary_load(db, from, to, by, s)
 *	quicctl_summary_routes(db, from, to, s)
 *	quicctl_summary_text(s, conf, from, to, by)
 *	quicctl_summary_free(s)
 * DESCRIPTION
 *	Adds up the rows of metric_intervals (what each process counted per
 *	stats_interval, whatever request_history keeps) whose end lies in
 *	[from, to): counters are summed, a gauge keeps its highest level
 *	(GAUGE_MIN: its lowest that is not zero). With |by| the rows are also
 *	added up per worker or per minute; per route, the rows of
 *	route_intervals (version 8: each worker's requests by status class,
 *	bytes and duration histogram per route of the proxy table, or
 *	"local"). The percentiles come from the
 *	histograms (qd_metrics_quantile), so they are estimates within a
 *	bucket, like Prometheus' histogram_quantile.
 *
 *	The text: the window in local time and its length, rates per second,
 *	requests and latency (p50, p90, p99, max and sample counts) per
 *	protocol, status classes with shares, connection closes by side and
 *	code, QUIC health, processes, and warnings that say what to do.
 * DIAGNOSTICS
 *	A database without metric_intervals (older than version 7) gives an
 *	empty summary and a line that says so; one without route_intervals
 *	(older than version 8), a --by route table that says so.
 */
#include "config.h"

/* system */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* libraries */
#include <sqlite3.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_metrics.h"
#include "qd_proc.h"

/* local */
#include "quicctl.h"

static const char *const proto_name[] = {"HTTP/3", "HTTP/2", "HTTP/1.1"};

/* merge - add one interval's slots to |m|: counters summed, gauges kept at their extreme */
static void merge(qd_metrics *m, const qd_metrics *row, bool *first)
{
    for (unsigned f = 0; f < QD_METRICS_NFAMILIES; f++) {
        const qd_metrics_family *fam = &qd_metrics_families[f];
        for (size_t i = fam->first; i < fam->first + fam->nslots; i++) {
            uint64_t v = row->v[i];
            if (fam->type == QD_MT_GAUGE)
                m->v[i] = *first || v > m->v[i] ? v : m->v[i];
            else if (fam->type == QD_MT_GAUGE_MIN)
                m->v[i] = v != 0 && (m->v[i] == 0 || v < m->v[i]) ? v : m->v[i];
            else
                m->v[i] += v;
        }
    }
    *first = false;
}

/* part - the group of |key|, made when new */
static qs_part *part(quicctl_summary *s, const char *key)
{
    for (size_t i = 0; i < s->nparts; i++)
        if (strcmp(s->parts[i].key, key) == 0)
            return &s->parts[i];
    s->parts = qd_xrealloc(s->parts, (s->nparts + 1) * sizeof(*s->parts));
    qs_part *p = &s->parts[s->nparts++];
    memset(p, 0, sizeof(*p));
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->first = true;
    return p;
}

int quicctl_summary_load(sqlite3 *db, int64_t from, int64_t to, int by, quicctl_summary *s)
{
    static qd_metrics row;
    sqlite3_stmt *st;
    bool first = true;

    memset(s, 0, sizeof(*s));
    if (sqlite3_prepare_v2(db,
                           "SELECT time_ms, role, instance, interval_ms, slots FROM "
                           "metric_intervals WHERE time_ms >= ?1 AND time_ms < ?2 ORDER BY time_ms",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(st, 0), iv = sqlite3_column_int64(st, 3);
        int role = sqlite3_column_int(st, 1), inst = sqlite3_column_int(st, 2);
        const void *blob = sqlite3_column_blob(st, 4);
        memset(&row, 0, sizeof(row));
        if (blob == NULL ||
            qd_metrics_add_sparse(&row, blob, (size_t)sqlite3_column_bytes(st, 4)) < 0) {
            s->bad_rows++;
            continue;
        }
        merge(&s->m, &row, &first);
        s->rows++;
        int64_t start = t - (iv > 0 ? iv : 0);
        s->first_ms = s->rows == 1 || start < s->first_ms ? start : s->first_ms;
        s->last_ms = t > s->last_ms ? t : s->last_ms;
        char key[40] = "";
        if (by == QS_BY_WORKER && role == QD_ROLE_WORKER)
            snprintf(key, sizeof(key), "worker %d", inst);
        else if (by == QS_BY_MINUTE) {
            time_t sec = (time_t)(t / 60000 * 60);
            struct tm tm;
            localtime_r(&sec, &tm);
            strftime(key, sizeof(key), "%Y-%m-%d %H:%M", &tm);
        }
        if (key[0] != '\0') {
            qs_part *p = part(s, key);
            merge(&p->m, &row, &p->first);
            p->first_ms = p->rows == 0 || start < p->first_ms ? start : p->first_ms;
            p->last_ms = t > p->last_ms ? t : p->last_ms;
            p->rows++;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

/* by_requests - qsort: most requests first, then by name */
static int by_requests(const void *a, const void *b)
{
    const qs_route *x = a, *y = b;
    uint64_t nx = quicctl_route_requests(x, -1), ny = quicctl_route_requests(y, -1);

    if (nx != ny)
        return nx > ny ? -1 : 1;
    return strcmp(x->name, y->name);
}

uint64_t quicctl_route_requests(const qs_route *r, int cls)
{
    uint64_t n = 0;

    for (unsigned c = 0; c < QD_MDN_CLASS; c++)
        if (cls < 0 || (unsigned)cls == c)
            n += r->v[QD_ROUTE_REQUESTS + c];
    return n;
}

int quicctl_summary_routes(sqlite3 *db, int64_t from, int64_t to, quicctl_summary *s)
{
    sqlite3_stmt *st;
    uint64_t hist[QD_METRICS_HSLOTS];
    int rv = 0;

    s->has_routes = false;
    /* the table, not the version: version numbers may be renumbered, the table keeps its name */
    if (sqlite3_prepare_v2(db,
                           "SELECT time_ms, interval_ms, route, status_1xx, status_2xx, "
                           "status_3xx, status_4xx, status_5xx, status_none, bytes_in, bytes_out, "
                           "durations FROM route_intervals WHERE time_ms >= ?1 AND time_ms < ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    s->has_routes = true;
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(st, 0), iv = sqlite3_column_int64(st, 1);
        const char *name = (const char *)sqlite3_column_text(st, 2);
        const void *blob = sqlite3_column_blob(st, 11);
        if (name == NULL || blob == NULL ||
            qd_metrics_decode_n(hist, QD_METRICS_HSLOTS, blob,
                                (size_t)sqlite3_column_bytes(st, 11)) < 0) {
            s->bad_rows++;
            rv = -1;
            continue;
        }
        qs_route *r = NULL;
        for (size_t i = 0; i < s->nroutes && r == NULL; i++)
            if (strcmp(s->routes[i].name, name) == 0)
                r = &s->routes[i];
        if (r == NULL) {
            s->routes = qd_xrealloc(s->routes, (s->nroutes + 1) * sizeof(*s->routes));
            r = &s->routes[s->nroutes++];
            memset(r, 0, sizeof(*r));
            snprintf(r->name, sizeof(r->name), "%.*s", (int)sizeof(r->name) - 1, name);
        }
        for (unsigned c = 0; c < QD_MDN_CLASS; c++)
            r->v[QD_ROUTE_REQUESTS + c] += (uint64_t)sqlite3_column_int64(st, 3 + (int)c);
        r->v[QD_ROUTE_BYTES_IN] += (uint64_t)sqlite3_column_int64(st, 9);
        r->v[QD_ROUTE_BYTES_OUT] += (uint64_t)sqlite3_column_int64(st, 10);
        for (unsigned b = 0; b < QD_METRICS_HSLOTS; b++)
            r->v[QD_ROUTE_DURATION + b] += hist[b];
        int64_t start = t - (iv > 0 ? iv : 0);
        r->first_ms = r->rows == 0 || start < r->first_ms ? start : r->first_ms;
        r->last_ms = t > r->last_ms ? t : r->last_ms;
        r->rows++;
    }
    sqlite3_finalize(st);
    if (s->nroutes > 1)
        qsort(s->routes, s->nroutes, sizeof(*s->routes), by_requests);
    return rv;
}

void quicctl_summary_free(quicctl_summary *s)
{
    free(s->parts);
    s->parts = NULL;
    s->nparts = 0;
    free(s->routes);
    s->routes = NULL;
    s->nroutes = 0;
}

uint64_t quicctl_summary_requests(const qd_metrics *m, int proto, int cls)
{
    uint64_t n = 0;

    for (unsigned p = 0; p < QD_MDN_PROTO; p++)
        for (unsigned c = 0; c < QD_MDN_CLASS; c++)
            if ((proto < 0 || (unsigned)proto == p) && (cls < 0 || (unsigned)cls == c))
                n += m->v[QD_M2(REQUESTS, p, c)];
    return n;
}

/* sum1 - the sum of a one-dimensional counter family */
static uint64_t sum1(const qd_metrics *m, size_t first, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v += m->v[first + i];
    return v;
}

/* when - a wall-clock time in local time */
static const char *when(int64_t ms, char *buf, size_t len)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;

    localtime_r(&sec, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
    return buf;
}

/* span - a length of time as a person says it: "1 h", "15 min", "59 min 52 s", "3 s" */
static const char *span(int64_t ms, char *buf, size_t len)
{
    int64_t s = (ms + 500) / 1000;

    if (s >= 86400 && s % 86400 == 0)
        snprintf(buf, len, "%lld d", (long long)(s / 86400));
    else if (s >= 3600 && s % 3600 == 0)
        snprintf(buf, len, "%lld h", (long long)(s / 3600));
    else if (s >= 3600)
        snprintf(buf, len, "%lld h %lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else if (s >= 60 && s % 60 == 0)
        snprintf(buf, len, "%lld min", (long long)(s / 60));
    else if (s >= 60)
        snprintf(buf, len, "%lld min %lld s", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(buf, len, "%lld s", (long long)s);
    return buf;
}

/* bytes - a byte count with a unit */
static const char *bytes(double b, char *buf, size_t len)
{
    static const char *const unit[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;

    while (b >= 1000 && u < 4)
        b /= 1000, u++;
    snprintf(buf, len, u == 0 ? "%.0f %s" : "%.1f %s", b, unit[u]);
    return buf;
}

/* ms - a latency in ms for a column: "-" when there is none */
static const char *ms(double sec, char *buf, size_t len)
{
    if (sec < 0)
        snprintf(buf, len, "-");
    else if (isinf(sec))
        snprintf(buf, len, ">10000");
    else
        snprintf(buf, len, sec * 1000 < 10 ? "%.1f" : "%.0f", sec * 1000);
    return buf;
}

/* latency_line - p50, p90, p99, max and the sample count of one histogram series */
static void latency_line(const qd_metrics *m, const char *what, size_t slot)
{
    char a[16], b[16], c[16], d[16];
    uint64_t n = qd_metrics_count(m, slot);

    if (n == 0)
        return;
    double max = qd_metrics_max(m, slot);
    char mx[24];
    /* the histogram knows the bucket, not the value: "at most" its bound */
    snprintf(mx, sizeof(mx), "%s%s", isinf(max) ? "" : "<=", ms(max, d, 16));
    printf("  %-28s %8s %8s %8s %8s %9llu\n", what, ms(qd_metrics_quantile(m, slot, 0.5), a, 16),
           ms(qd_metrics_quantile(m, slot, 0.9), b, 16), ms(qd_metrics_quantile(m, slot, 0.99), c, 16),
           mx, (unsigned long long)n);
}

/* list - "name count, name count" of the non-zero slots of a family's row; 0 if none */
static int list(const qd_metrics *m, size_t first, unsigned dim, unsigned n, const char *sep)
{
    int shown = 0;

    for (unsigned i = 0; i < n; i++) {
        uint64_t v = m->v[first + i];
        if (v == 0)
            continue;
        printf("%s%s %llu", shown++ ? sep : " ", qd_metrics_dim_value(dim, i), (unsigned long long)v);
    }
    return shown;
}

/* warnings - what to look at, and what to do about it */
static void warnings(const quicctl_summary *s, const qd_conf *conf)
{
    const qd_metrics *m = &s->m;
    int n = 0;
    uint64_t rxq = m->v[QD_M_UDP_RXQ_DROPS], rcvbuf = m->v[QD_M_UDP_RCVBUF];
    uint64_t lost = m->v[QD_M_RECORDS_DROPPED], reqs = quicctl_summary_requests(m, -1, -1);
    uint64_t fivexx = quicctl_summary_requests(m, -1, 4);
    uint64_t restarts = sum1(m, QD_M_RESTARTS, QD_MDN_ROLE);

    printf("\nWarnings\n");
    if (rxq > 0 && ++n)
        printf("  - %llu datagram(s) were dropped by the kernel, a worker's receive queue being full: "
               "raise udp_buffer (now %lld bytes) and net.core.rmem_max.\n",
               (unsigned long long)rxq, (long long)conf->udp_buffer);
    if (rcvbuf > 0 && (int64_t)rcvbuf < conf->udp_buffer && ++n)
        printf("  - the UDP receive buffer is %llu bytes, below udp_buffer (%lld): the kernel capped "
               "it; raise net.core.rmem_max, or start quicd as root.\n",
               (unsigned long long)rcvbuf, (long long)conf->udp_buffer);
    if (lost > 0 && ++n)
        printf("  - %llu records never reached the stats database: raise stats_buffer, or lower "
               "request_history.\n",
               (unsigned long long)lost);
    if (m->v[QD_M_QUIC_RETRY_ACTIVE] > 0 && ++n)
        printf("  - Retry was switched on (%llu sent): new connections came faster than handshakes "
               "completed (retry = auto), a load peak or an attack.\n",
               (unsigned long long)m->v[QD_M_QUIC_RETRY_SENT]);
    if (m->v[QD_M_QUIC_RESETS_SUPPRESSED] > 0 && ++n)
        printf("  - %llu stateless resets were not sent (over the rate limit): packets for "
               "unknown connections in bulk, perhaps an attack.\n",
               (unsigned long long)m->v[QD_M_QUIC_RESETS_SUPPRESSED]);
    if (restarts > 0 && ++n)
        printf("  - %llu daemon restart%s: a daemon died; its log says why.\n",
               (unsigned long long)restarts, restarts == 1 ? "" : "s");
    if (reqs >= 100 && fivexx * 100 > reqs && ++n)
        printf("  - %.1f %% of the requests were answered 5xx: see the access log and, when "
               "proxying, quicctl upstreams.\n",
               100.0 * (double)fivexx / (double)reqs);
    if (s->bad_rows > 0 && ++n)
        printf("  - %llu interval rows could not be read (another quicd version?).\n",
               (unsigned long long)s->bad_rows);
    if (n == 0)
        printf("  none\n");
}

/* by_table - the --by worker or minute lines */
static void by_table(const quicctl_summary *s, int by)
{
    char a[16], b[16];

    printf("\n%-24s %9s %7s %6s %6s %6s %7s %7s %11s\n", by == QS_BY_WORKER ? "By worker" : "By minute",
           "requests", "/s", "2xx", "4xx", "5xx", "p50 ms", "p99 ms", "handshakes");
    for (size_t i = 0; i < s->nparts; i++) {
        const qs_part *p = &s->parts[i];
        const qd_metrics *m = &p->m;
        double secs = p->last_ms > p->first_ms ? (double)(p->last_ms - p->first_ms) / 1000 : 0;
        uint64_t r = quicctl_summary_requests(m, -1, -1);
        qd_metrics all;
        memset(&all, 0, sizeof(all));
        for (unsigned pr = 0; pr < QD_MDN_PROTO; pr++)
            for (unsigned b2 = 0; b2 < QD_METRICS_HSLOTS; b2++)
                all.v[QD_M1(REQUEST_SECONDS, 0) + b2] += m->v[QD_M1(REQUEST_SECONDS, pr) + b2];
        printf("  %-22s %9llu %7.2f %6llu %6llu %6llu %7s %7s %11llu\n", p->key,
               (unsigned long long)r, secs > 0 ? (double)r / secs : 0,
               (unsigned long long)quicctl_summary_requests(m, -1, 1),
               (unsigned long long)quicctl_summary_requests(m, -1, 3),
               (unsigned long long)quicctl_summary_requests(m, -1, 4),
               ms(qd_metrics_quantile(&all, QD_M1(REQUEST_SECONDS, 0), 0.5), a, 16),
               ms(qd_metrics_quantile(&all, QD_M1(REQUEST_SECONDS, 0), 0.99), b, 16),
               (unsigned long long)(m->v[QD_M2(HANDSHAKES, QD_MV_QUIC, QD_MV_HS_OK)] +
                                    m->v[QD_M2(HANDSHAKES, QD_MV_TCP, QD_MV_HS_OK)]));
    }
    if (s->nparts == 0)
        printf("  (no rows)\n");
}

/* route_table - the --by route lines */
static void route_table(const quicctl_summary *s)
{
    char a[16], b[16], in[32], out[32];

    printf("\n%-30s %9s %7s %6s %6s %6s %6s %9s %9s %7s %7s\n", "By route", "requests", "/s", "2xx",
           "3xx", "4xx", "5xx", "in", "out", "p50 ms", "p99 ms");
    for (size_t i = 0; i < s->nroutes; i++) {
        const qs_route *r = &s->routes[i];
        double secs = r->last_ms > r->first_ms ? (double)(r->last_ms - r->first_ms) / 1000 : 0;
        uint64_t n = quicctl_route_requests(r, -1);
        printf("  %-28s %9llu %7.2f %6llu %6llu %6llu %6llu %9s %9s %7s %7s\n", r->name,
               (unsigned long long)n, secs > 0 ? (double)n / secs : 0,
               (unsigned long long)quicctl_route_requests(r, 1),
               (unsigned long long)quicctl_route_requests(r, 2),
               (unsigned long long)quicctl_route_requests(r, 3),
               (unsigned long long)quicctl_route_requests(r, 4),
               bytes((double)r->v[QD_ROUTE_BYTES_IN], in, sizeof(in)),
               bytes((double)r->v[QD_ROUTE_BYTES_OUT], out, sizeof(out)),
               ms(qd_metrics_hist_quantile(&r->v[QD_ROUTE_DURATION], 0.5), a, 16),
               ms(qd_metrics_hist_quantile(&r->v[QD_ROUTE_DURATION], 0.99), b, 16));
    }
    if (!s->has_routes)
        printf("  (the database is older than version 8: no counts by route)\n");
    else if (s->nroutes == 0)
        printf("  (no rows)\n");
}

void quicctl_summary_text(const quicctl_summary *s, const qd_conf *conf, int64_t from, int64_t to,
                          int by)
{
    const qd_metrics *m = &s->m;
    char t0[64], t1[64], len[32], cov[32], b1[32], b2[32];
    double secs = s->last_ms > s->first_ms ? (double)(s->last_ms - s->first_ms) / 1000 : 0;
    uint64_t reqs = quicctl_summary_requests(m, -1, -1);

    printf("quicd report from %s to %s (%s)\n", when(from, t0, sizeof(t0)), when(to, t1, sizeof(t1)),
           span(to - from, len, sizeof(len)));
    if (s->rows == 0) {
        printf("No counts in this window (quicd did not run, or the database is older than "
               "version 7).\n");
        return;
    }
    printf("counted for %s of it, in %llu reports\n", span((int64_t)(secs * 1000), cov, sizeof(cov)),
           (unsigned long long)s->rows);

    printf("\n%-28s %10s %10s\n", "Traffic", "total", "per second");
#define RATE(label, v)                                                                             \
    printf("  %-26s %10llu %10.2f\n", label, (unsigned long long)(v),                              \
           secs > 0 ? (double)(v) / secs : 0)
    RATE("requests", reqs);
    RATE("QUIC connections", m->v[QD_M1(CONNECTIONS, QD_MV_QUIC)]);
    RATE("TCP connections", m->v[QD_M1(CONNECTIONS, QD_MV_TCP)]);
    RATE("UDP datagrams in", m->v[QD_M_UDP_RX_DATAGRAMS]);
    RATE("UDP datagrams out", m->v[QD_M_UDP_TX_DATAGRAMS]);
#undef RATE
    uint64_t bin = sum1(m, QD_M_REQUEST_BYTES, QD_MDN_PROTO);
    uint64_t bout = sum1(m, QD_M_RESPONSE_BYTES, QD_MDN_PROTO);
    printf("  %-26s %10s\n", "request bodies", bytes((double)bin, b1, sizeof(b1)));
    printf("  %-26s %10s\n", "response bodies", bytes((double)bout, b2, sizeof(b2)));

    printf("\n%-28s %10s %6s %7s %7s %7s %7s %7s %7s\n", "Requests", "requests", "share", "1xx",
           "2xx", "3xx", "4xx", "5xx", "none");
    for (int p = 0; p < (int)QD_MDN_PROTO; p++) {
        uint64_t n = quicctl_summary_requests(m, p, -1);
        printf("  %-26s %10llu %5.1f%%", proto_name[p], (unsigned long long)n,
               reqs ? 100.0 * (double)n / (double)reqs : 0);
        for (int c = 0; c < (int)QD_MDN_CLASS; c++)
            printf(" %7llu", (unsigned long long)quicctl_summary_requests(m, p, c));
        printf("\n");
    }
    printf("  %-26s ", "status classes");
    for (int c = 0; c < (int)QD_MDN_CLASS; c++) {
        uint64_t n = quicctl_summary_requests(m, -1, c);
        if (n > 0)
            printf(" %s %llu (%.1f %%)", qd_metrics_dim_value(QD_MD_CLASS, (unsigned)c),
                   (unsigned long long)n, 100.0 * (double)n / (double)reqs);
    }
    printf("%s\n", reqs == 0 ? " none" : "");

    printf("\n%-30s %8s %8s %8s %8s %9s\n", "Latency, ms", "p50", "p90", "p99", "max", "samples");
    for (unsigned p = 0; p < QD_MDN_PROTO; p++) {
        char what[64];
        snprintf(what, sizeof(what), "%s first byte", proto_name[p]);
        latency_line(m, what, QD_M1(TTFB_SECONDS, p));
        snprintf(what, sizeof(what), "%s duration", proto_name[p]);
        latency_line(m, what, QD_M1(REQUEST_SECONDS, p));
    }
    latency_line(m, "QUIC handshake", QD_M1(HANDSHAKE_SECONDS, QD_MV_QUIC));
    latency_line(m, "TLS/TCP handshake", QD_M1(HANDSHAKE_SECONDS, QD_MV_TCP));

    printf("\n%-28s ", "Handshakes");
    for (unsigned t = 0; t < QD_MDN_TRANSPORT; t++) {
        printf("%s%s:", t ? "; " : "", t == QD_MV_QUIC ? "QUIC" : "TCP");
        if (list(m, QD_M1(HANDSHAKES, t), QD_MD_HANDSHAKE, QD_MDN_HANDSHAKE, ", ") == 0)
            printf(" none");
    }
    printf("\nConnection closes\n");
    for (unsigned side = 0; side < QD_MDN_SIDE; side++) {
        printf("  %-26s ", side == QD_MV_LOCAL ? "by quicd" : "by the client");
        if (list(m, QD_M1(QUIC_CLOSES, side), QD_MD_CLOSE_CODE, QD_MDN_CLOSE_CODE, ", ") == 0)
            printf(" none");
        printf("\n");
    }

    printf("\nQUIC health\n");
    printf("  %-26s Retry sent %llu; tokens", "address validation",
           (unsigned long long)m->v[QD_M_QUIC_RETRY_SENT]);
    if (list(m, QD_M_QUIC_TOKENS, QD_MD_TOKEN, QD_MDN_TOKEN, ", ") == 0)
        printf(" none");
    printf("\n  %-26s %llu sent, %llu suppressed\n", "stateless resets",
           (unsigned long long)m->v[QD_M_QUIC_RESETS_SENT],
           (unsigned long long)m->v[QD_M_QUIC_RESETS_SUPPRESSED]);
    printf("  %-26s %llu accepted, %llu rejected\n", "0-RTT",
           (unsigned long long)m->v[QD_M1(EARLY_DATA, QD_MV_EARLY_ACCEPTED)],
           (unsigned long long)m->v[QD_M1(EARLY_DATA, QD_MV_EARLY_REJECTED)]);
    printf("  %-26s %llu; path validations %llu ok, %llu failed\n", "migrations",
           (unsigned long long)m->v[QD_M_MIGRATIONS],
           (unsigned long long)m->v[QD_M1(PATH_VALIDATIONS, QD_MV_PATH_OK)],
           (unsigned long long)m->v[QD_M1(PATH_VALIDATIONS, QD_MV_PATH_FAILED)]);
    printf("  %-26s", "packets dropped");
    if (list(m, QD_M_QUIC_DROPPED, QD_MD_DROP, QD_MDN_DROP, ", ") == 0)
        printf(" none");
    printf("\n  %-26s %llu Version Negotiation sent, %llu forwarded to their worker\n", "other packets",
           (unsigned long long)m->v[QD_M_QUIC_VN_SENT], (unsigned long long)m->v[QD_M_QUIC_FORWARDED]);
    printf("  %-26s receive-queue drops %llu, send errors %llu, receive buffer %llu bytes\n", "UDP",
           (unsigned long long)m->v[QD_M_UDP_RXQ_DROPS],
           (unsigned long long)sum1(m, QD_M_UDP_SEND_ERRORS, QD_MDN_SEND_ERROR),
           (unsigned long long)m->v[QD_M_UDP_RCVBUF]);

    printf("\n%-28s restarts", "Processes");
    if (list(m, QD_M_RESTARTS, QD_MD_ROLE, QD_MDN_ROLE, ", ") == 0)
        printf(" none");
    printf("; reloads %llu ok, %llu failed\n",
           (unsigned long long)m->v[QD_M1(RELOADS, QD_MV_RELOAD_OK)],
           (unsigned long long)m->v[QD_M1(RELOADS, QD_MV_RELOAD_FAILED)]);
    printf("%-28s sent %llu, dropped %llu, written %llu\n", "Records",
           (unsigned long long)m->v[QD_M_RECORDS_SENT], (unsigned long long)m->v[QD_M_RECORDS_DROPPED],
           (unsigned long long)m->v[QD_M_RECORDS_WRITTEN]);
    if (by == QS_BY_WORKER || by == QS_BY_MINUTE)
        by_table(s, by);
    if (by == QS_BY_ROUTE)
        route_table(s);
    warnings(s, conf);
}
