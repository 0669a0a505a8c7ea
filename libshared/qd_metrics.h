/* SPDX-License-Identifier: MIT */
#ifndef QD_METRICS_H
#define QD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qd_buf.h"

/*
 * quicd's counters, gauges and histograms (qd_metrics.def), as one flat
 * array of uint64_t "slots" per process: a family of counters takes a
 * slot per series, a histogram QD_METRICS_HSLOTS per series (its buckets,
 * not cumulative, the last one +Inf, then the sum in microseconds). A
 * process keeps plain running totals there (single-threaded, no atomics)
 * and sends the whole array, encoded, to stats every stats_interval.
 *
 * A series' slot: QD_M_<ID> for a family without dimensions,
 * QD_M1(ID, i) and QD_M2(ID, i, j) with the index of each dimension's
 * value (the order of qd_metrics.def; e.g. QD_MV_PROTO_H2).
 */

#define QD_METRICS_NBUCKETS 14 /* with +Inf */
#define QD_METRICS_HSLOTS (QD_METRICS_NBUCKETS + 1)

enum qd_mtype_ { QD_MT_COUNTER, QD_MT_GAUGE, QD_MT_GAUGE_MIN, QD_MT_HISTOGRAM, QD_MT_COUNTER_US };
#define QD_MSLOTS_COUNTER 1
#define QD_MSLOTS_COUNTER_US 1
#define QD_MSLOTS_GAUGE 1
#define QD_MSLOTS_GAUGE_MIN 1
#define QD_MSLOTS_HISTOGRAM QD_METRICS_HSLOTS

/* An instance dimension is a dimension here: only its values' names differ (qd_metrics.c). */
#define QD_MDIM_INSTANCE(id, n, label) QD_MDIM(id, n, label, "")

/* dimensions: QD_MD_<ID>, and their sizes QD_MDN_<ID> */
#define QD_METRIC(id, type, d1, d2, name, help)
#define QD_MDIM(id, n, label, ...) QD_MD_##id,
enum {
#include "qd_metrics.def"
    QD_MD_COUNT_ };
#undef QD_MDIM
#define QD_MDIM(id, n, label, ...) QD_MDN_##id = (n),
enum {
#include "qd_metrics.def"
    QD_MDN_COUNT_ };
#undef QD_MDIM
#undef QD_METRIC

/* families: QD_MF_<ID> */
#define QD_MDIM(id, n, label, ...)
#define QD_METRIC(id, type, d1, d2, name, help) QD_MF_##id,
enum {
#include "qd_metrics.def"
    QD_METRICS_NFAMILIES };
#undef QD_METRIC

/* slots: QD_M_<ID> is a family's first; QD_METRICS_NSLOTS in all */
#define QD_METRIC(id, type, d1, d2, name, help)                                                   \
    QD_M_##id, QD_MLAST_##id = QD_M_##id + QD_MDN_##d1 * QD_MDN_##d2 * QD_MSLOTS_##type - 1,
enum {
#include "qd_metrics.def"
    QD_METRICS_NSLOTS };
#undef QD_METRIC
/* the stride of a family's first dimension, in slots */
#define QD_METRIC(id, type, d1, d2, name, help) QD_MSTRIDE_##id = QD_MDN_##d2 * QD_MSLOTS_##type,
enum {
#include "qd_metrics.def"
    QD_MSTRIDE_COUNT_ };
#undef QD_METRIC
#define QD_METRIC(id, type, d1, d2, name, help) QD_MSTEP_##id = QD_MSLOTS_##type,
enum {
#include "qd_metrics.def"
    QD_MSTEP_COUNT_ };
#undef QD_METRIC
#undef QD_MDIM

#define QD_M1(id, i) (QD_M_##id + (size_t)(i) * QD_MSTRIDE_##id)
#define QD_M2(id, i, j) (QD_M_##id + (size_t)(i) * QD_MSTRIDE_##id + (size_t)(j) * QD_MSTEP_##id)

/* value indexes of the dimensions the code names (in qd_metrics.def order) */
enum { QD_MV_PROTO_H3, QD_MV_PROTO_H2, QD_MV_PROTO_H1 };
enum { QD_MV_QUIC, QD_MV_TCP };
enum { QD_MV_CLASS_NONE = 5 };
enum { QD_MV_LOCAL, QD_MV_REMOTE };
enum { QD_MV_SEND_EMSGSIZE, QD_MV_SEND_NOBUF, QD_MV_SEND_OTHER };
enum {
    QD_MV_DROP_MALFORMED, QD_MV_DROP_UNKNOWN, QD_MV_DROP_NOT_INITIAL, QD_MV_DROP_BAD_TOKEN,
    QD_MV_DROP_RETRY_BUDGET, QD_MV_DROP_UNDECRYPTABLE, QD_MV_DROP_BUSY, QD_MV_DROP_REFUSED,
    QD_MV_DROP_NO_OWNER
};
enum { QD_MV_TOKEN_VALID, QD_MV_TOKEN_INVALID, QD_MV_TOKEN_UNUSABLE };
enum { QD_MV_HS_OK, QD_MV_HS_TIMEOUT, QD_MV_HS_TLS, QD_MV_HS_CLOSED, QD_MV_HS_ABANDONED };
enum { QD_MV_EARLY_ACCEPTED, QD_MV_EARLY_REJECTED };
enum { QD_MV_PATH_OK, QD_MV_PATH_FAILED };
enum {
    QD_MV_CODE_H3_NO_ERROR = 18,
    QD_MV_CODE_QPACK_DECOMPRESSION_FAILED = 35,
    QD_MV_CODE_IDLE = 38,
    QD_MV_CODE_HANDSHAKE_TIMEOUT,
    QD_MV_CODE_STATELESS_RESET,
    QD_MV_CODE_SILENT,
    QD_MV_CODE_OTHER
};
enum { QD_MV_RELOAD_OK, QD_MV_RELOAD_FAILED };
enum { QD_MV_OK, QD_MV_FAILED };
enum { QD_MV_RELAY_OK, QD_MV_RELAY_DROPPED };
enum {
    QD_MV_CONNECT_OK, QD_MV_CONNECT_REFUSED, QD_MV_CONNECT_TIMEOUT, QD_MV_CONNECT_UNREACHABLE,
    QD_MV_CONNECT_OTHER
};
enum { QD_MV_UP, QD_MV_DOWN };
enum {
    QD_MV_SCRAPE_OK, QD_MV_SCRAPE_REFUSED_PEER, QD_MV_SCRAPE_REFUSED_BUSY, QD_MV_SCRAPE_UNAUTHORIZED,
    QD_MV_SCRAPE_UNAVAILABLE, QD_MV_SCRAPE_BAD_REQUEST, QD_MV_SCRAPE_TIMEOUT
};

/* One process's values: what it counts, and what it sends to stats. */
typedef struct qd_metrics {
    uint64_t v[QD_METRICS_NSLOTS];
} qd_metrics;

/* qd_metrics_observe adds |us| microseconds to the histogram series at |slot|. */
void qd_metrics_observe(qd_metrics *m, size_t slot, uint64_t us);

/*
 * qd_metrics_close_code maps a QUIC CONNECTION_CLOSE error code to its
 * CLOSE_CODE value index: |app| for an application (HTTP/3, QPACK) code.
 */
unsigned qd_metrics_close_code(bool app, uint64_t code);

/*
 * qd_metrics_schema is a hash of the table's layout: the names, types and
 * dimensions in slot order. Two processes exchange slot arrays only when
 * theirs are equal.
 */
uint32_t qd_metrics_schema(void);

/*
 * qd_metrics_encode writes |m| into |out| (|cap| bytes) as one varint per
 * slot. Returns the length, or 0 when |cap| is too small
 * (QD_METRICS_NSLOTS * 10 always suffices).
 */
size_t qd_metrics_encode(const qd_metrics *m, uint8_t *out, size_t cap);

/*
 * qd_metrics_put_msg fills a QD_MSG_METRICS just started: the process
 * (role, instance, pid, the start its totals count from), the schema and
 * the encoded slots, and F_FLAGS QD_METRICS_F_EXIT for the last one.
 */
struct qd_ipc_msg;
void qd_metrics_put_msg(struct qd_ipc_msg *msg, uint32_t role, uint32_t instance, uint32_t pid,
                        uint64_t since_ms, const uint8_t *slots, size_t len, bool exiting);
/*
 * qd_metrics_decode reads |len| bytes written by qd_metrics_encode into
 * |*m|. Returns 0, or QD_ERR_INVAL for anything but exactly
 * QD_METRICS_NSLOTS well-formed varints (|*m| is then undefined).
 */
int qd_metrics_decode(qd_metrics *m, const uint8_t *in, size_t len);

/*
 * qd_metrics_encode_sparse writes only the slots of |m| that are not zero,
 * each as two varints: the number of zero slots skipped since the last
 * one written, and the value (an interval's deltas are mostly zero).
 * Returns the length (0 for all zero), or (size_t)-1 when |cap| is too
 * small (QD_METRICS_NSLOTS * 20 always suffices).
 */
size_t qd_metrics_encode_sparse(const qd_metrics *m, uint8_t *out, size_t cap);
/*
 * qd_metrics_add_sparse adds the slots encoded in |len| bytes of |in| to
 * |*m|. Returns 0, or QD_ERR_INVAL for malformed input or a slot beyond
 * the table (|*m| may then have been added to in part).
 */
int qd_metrics_add_sparse(qd_metrics *m, const uint8_t *in, size_t len);

/*
 * qd_metrics_count is the number of observations of the histogram series
 * at |slot|. qd_metrics_quantile estimates its |q| quantile (0 < q <= 1)
 * in seconds as Prometheus' histogram_quantile does: linearly within the
 * bucket that holds it; in the +Inf bucket, the largest finite bound.
 * Returns -1 when the series is empty. qd_metrics_max is the upper bound
 * of the highest bucket with an observation (INFINITY for +Inf), or -1.
 */
uint64_t qd_metrics_count(const qd_metrics *m, size_t slot);
double qd_metrics_quantile(const qd_metrics *m, size_t slot, double q);
double qd_metrics_max(const qd_metrics *m, size_t slot);

/*
 * The aggregates by route (quicctl report --by route): per route a worker
 * keeps QD_ROUTE_NSLOTS running totals, its requests by status class
 * (CLASS order), the body bytes both ways and a duration histogram (the
 * buckets and sum of a HISTOGRAM series), and sends them with its
 * QD_MSG_METRICS: an F_ROUTE (the route's name: host and prefix as the
 * proxy table writes them, "*" /api, or QD_ROUTE_LOCAL) followed by an
 * F_ROUTE_SLOTS (qd_metrics_encode_n of the totals).
 */
enum {
    QD_ROUTE_REQUESTS = 0, /* QD_MDN_CLASS slots */
    QD_ROUTE_BYTES_IN = QD_ROUTE_REQUESTS + QD_MDN_CLASS,
    QD_ROUTE_BYTES_OUT,
    QD_ROUTE_DURATION, /* QD_METRICS_HSLOTS slots */
    QD_ROUTE_NSLOTS = QD_ROUTE_DURATION + QD_METRICS_HSLOTS
};
#define QD_ROUTE_LOCAL "local"  /* requests quicd served without a route of the table */
#define QD_ROUTE_OTHER "other"  /* routes beyond QD_ROUTE_MAX, together */
#define QD_ROUTE_MAX 64         /* route names a worker counts apart */
#define QD_ROUTE_NAME_MAX 200   /* bytes of a route's name kept, NUL included */

/*
 * qd_metrics_encode_n and _decode_n are qd_metrics_encode and _decode for
 * any |n| values (one varint each): the length, 0 when |cap| is too small;
 * 0, or QD_ERR_INVAL unless |len| bytes are exactly |n| varints.
 */
size_t qd_metrics_encode_n(const uint64_t *v, size_t n, uint8_t *out, size_t cap);
int qd_metrics_decode_n(uint64_t *v, size_t n, const uint8_t *in, size_t len);
/*
 * qd_metrics_hist_observe and _quantile are qd_metrics_observe and
 * qd_metrics_quantile on a histogram's QD_METRICS_HSLOTS values at |h|.
 */
void qd_metrics_hist_observe(uint64_t *h, uint64_t us);
double qd_metrics_hist_quantile(const uint64_t *h, double q);

/* Where a slot belongs, for rendering and storing. */
typedef struct qd_metrics_slot {
    unsigned family; /* QD_MF_* */
    unsigned i, j;   /* the value index of each dimension */
    int bucket;      /* a histogram's bucket (QD_METRICS_NBUCKETS: the sum), else -1 */
} qd_metrics_slot;
void qd_metrics_locate(size_t slot, qd_metrics_slot *where);

/* A family's definition. */
typedef struct qd_metrics_family {
    const char *name, *help;
    int type; /* QD_MT_* */
    unsigned d1, d2; /* QD_MD_* */
    size_t first, nslots;
} qd_metrics_family;
extern const qd_metrics_family qd_metrics_families[QD_METRICS_NFAMILIES];

/*
 * qd_metrics_family_sum is the sum of every series of a counter or gauge
 * family (a histogram's: its observations); qd_metrics_short_name writes
 * the family's name without "quicd_" and "_total" ("http_requests"), the
 * key quicctl status shows it under.
 */
uint64_t qd_metrics_family_sum(const qd_metrics *m, unsigned family);
const char *qd_metrics_short_name(unsigned family, char *buf, size_t len);

/*
 * qd_metrics_dim_label and _value name a dimension and one of its values
 * (an instance dimension's values are "0", "1", ...); qd_metrics_dim_size
 * is the number of its values (an instance dimension's: slots kept), and
 * qd_metrics_dim_is_instance tells an instance dimension.
 */
const char *qd_metrics_dim_label(unsigned dim);
const char *qd_metrics_dim_value(unsigned dim, unsigned i);
unsigned qd_metrics_dim_size(unsigned dim);
bool qd_metrics_dim_is_instance(unsigned dim);

/*
 * qd_metrics_series writes the name of the series at |slot| as stored in
 * the stats database and rendered by /metrics: "name{label=\"value\",...}"
 * (a histogram's bucket as name_bucket{...,le="..."}, its sum as
 * name_sum{...}). Returns the length, truncated to |len| - 1.
 */
size_t qd_metrics_series(size_t slot, char *buf, size_t len);
/* qd_metrics_find returns the slot named |series|, or -1. */
long qd_metrics_find(const char *series);

/*
 * qd_metrics_render appends |m| to |out| in the Prometheus text format
 * 0.0.4: HELP and TYPE lines and every series of every family, histograms
 * with cumulative buckets, _sum in seconds and _count, a COUNTER_US in
 * seconds. An instance dimension shows its first |instances| values (the
 * configured count, at most the slots it keeps), so that every
 * configured instance has its series from the start and no other does.
 */
void qd_metrics_render(const qd_metrics *m, unsigned instances, qd_buf *out);

#endif /* QD_METRICS_H */
