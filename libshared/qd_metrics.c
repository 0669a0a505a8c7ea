/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_metrics - the table of quicd's metrics, and their wire and text forms
 * SYNOPSIS
 *	qd_metrics_observe(m, slot, us) / qd_metrics_hist_observe(h, us)
 *	qd_metrics_close_code(app, code)
 *	qd_metrics_schema()
 *	qd_metrics_encode(m, out, cap) / qd_metrics_decode(m, in, len)
 *	qd_metrics_encode_n(v, n, out, cap) / qd_metrics_decode_n(v, n, in, len)
 *	qd_metrics_quantile(m, slot, q) / qd_metrics_hist_quantile(h, q)
 *	qd_metrics_locate(slot, where) / qd_metrics_series(slot, buf, len)
 *	qd_metrics_find(series)
 *	qd_metrics_render(m, instances, out)
 * DESCRIPTION
 *	The families are those of qd_metrics.def, in its order; the slot
 *	layout follows from it (qd_metrics.h). Everything that names a metric
 *	(the Prometheus text, the rows stats keeps, quicctl) goes through
 *	this table, so a metric is defined once.
 *
 *	The wire form is one LEB128 varint per slot: most slots are small or
 *	zero, so a worker's whole array is under two kilobytes.
 * DIAGNOSTICS
 *	qd_metrics_decode rejects anything but exactly one well-formed
 *	varint per slot (QD_ERR_INVAL).
 */
#include "config.h"

/* system */
#include <math.h>
#include <stdio.h>
#include <string.h>

/* local */
#include "qd_err.h"
#include "qd_ipc.h"
#include "qd_metrics.h"

/* the histogram bucket bounds, in microseconds (the last is +Inf) */
static const uint64_t bucket_us[QD_METRICS_NBUCKETS - 1] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
    10000000,
};
static const char *const bucket_le[QD_METRICS_NBUCKETS] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10", "+Inf",
};

typedef struct dim {
    const char *label;
    unsigned n;
    const char *const *values; /* NULL: an instance dimension ("0", "1", ...) */
} dim;

#undef QD_MDIM_INSTANCE
#define QD_MDIM_INSTANCE(id, n, label)
#define QD_METRIC(id, type, d1, d2, name, help)
#define QD_MDIM(id, n, label, ...) static const char *const values_##id[] = {__VA_ARGS__};
#include "qd_metrics.def"
#undef QD_MDIM
#undef QD_MDIM_INSTANCE
#define QD_MDIM(id, n, label, ...) {label, n, values_##id},
#define QD_MDIM_INSTANCE(id, n, label) {label, n, NULL},
static const dim dims[QD_MD_COUNT_] = {
#include "qd_metrics.def"
};
#undef QD_MDIM
#undef QD_MDIM_INSTANCE
#undef QD_METRIC
#define QD_MDIM_INSTANCE(id, n, label) QD_MDIM(id, n, label, "")

/* the names of an instance dimension's values, made once */
#define INSTANCES_MAX 256
static char instance_name[INSTANCES_MAX][8];

/* value_name - the name of value |i| of dimension |d| */
static const char *value_name(const dim *d, unsigned i)
{
    if (d->values != NULL)
        return d->values[i];
    if (instance_name[i][0] == '\0')
        snprintf(instance_name[i], sizeof(instance_name[i]), "%u", i % INSTANCES_MAX);
    return instance_name[i];
}

#define QD_MDIM(id, n, label, ...)
#define QD_METRIC(id, type, d1, d2, name, help)                                                   \
    {name, help, QD_MT_##type, QD_MD_##d1, QD_MD_##d2, QD_M_##id, QD_MLAST_##id - QD_M_##id + 1},
const qd_metrics_family qd_metrics_families[QD_METRICS_NFAMILIES] = {
#include "qd_metrics.def"
};
#undef QD_METRIC
#undef QD_MDIM

/* each dimension's value count agrees with its list (checked once, at compile time) */
#undef QD_MDIM_INSTANCE
#define QD_MDIM_INSTANCE(id, n, label)                                                            \
    _Static_assert((n) <= INSTANCES_MAX, "instances of " #id);
#define QD_METRIC(id, type, d1, d2, name, help)
#define QD_MDIM(id, n, label, ...)                                                                \
    _Static_assert(sizeof(values_##id) / sizeof(values_##id[0]) == (n), "value count of " #id);
#include "qd_metrics.def"
#undef QD_MDIM
#undef QD_METRIC
#undef QD_MDIM_INSTANCE
#define QD_MDIM_INSTANCE(id, n, label) QD_MDIM(id, n, label, "")

/* family_of - the family a slot belongs to (binary search over first slots) */
static unsigned family_of(size_t slot)
{
    unsigned lo = 0, hi = QD_METRICS_NFAMILIES;

    while (hi - lo > 1) {
        unsigned mid = (lo + hi) / 2;
        if (qd_metrics_families[mid].first <= slot)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static size_t slots_per_series(const qd_metrics_family *f)
{
    return f->type == QD_MT_HISTOGRAM ? QD_METRICS_HSLOTS : 1;
}

void qd_metrics_hist_observe(uint64_t *h, uint64_t us)
{
    size_t b = 0;

    while (b < QD_METRICS_NBUCKETS - 1 && us > bucket_us[b])
        b++;
    h[b]++;
    h[QD_METRICS_NBUCKETS] += us;
}

void qd_metrics_observe(qd_metrics *m, size_t slot, uint64_t us)
{
    qd_metrics_hist_observe(&m->v[slot], us);
}

unsigned qd_metrics_close_code(bool app, uint64_t code)
{
    if (!app) {
        if (code <= 0x10)
            return (unsigned)code;
        if (code >= 0x100 && code <= 0x1ff)
            return 17; /* crypto_error: a TLS alert */
        return QD_MV_CODE_OTHER;
    }
    if (code >= 0x100 && code <= 0x110)
        return QD_MV_CODE_H3_NO_ERROR + (unsigned)(code - 0x100);
    if (code >= 0x200 && code <= 0x202)
        return QD_MV_CODE_QPACK_DECOMPRESSION_FAILED + (unsigned)(code - 0x200);
    return QD_MV_CODE_OTHER;
}

/* fnv - FNV-1a over |len| bytes, continuing |h| */
static uint32_t fnv(uint32_t h, const void *p, size_t len)
{
    const unsigned char *s = p;

    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

uint32_t qd_metrics_schema(void)
{
    static uint32_t hash;

    if (hash != 0)
        return hash;
    uint32_t h = 2166136261u;
    for (unsigned f = 0; f < QD_METRICS_NFAMILIES; f++) {
        const qd_metrics_family *fam = &qd_metrics_families[f];
        uint32_t n[3] = {(uint32_t)fam->type, dims[fam->d1].n, dims[fam->d2].n};
        h = fnv(h, fam->name, strlen(fam->name) + 1);
        h = fnv(h, n, sizeof(n));
    }
    hash = h == 0 ? 1 : h;
    return hash;
}

size_t qd_metrics_encode_n(const uint64_t *v, size_t n, uint8_t *out, size_t cap)
{
    size_t len = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t x = v[i];
        do {
            if (len == cap)
                return 0;
            out[len++] = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
            x >>= 7;
        } while (x != 0);
    }
    return len;
}

int qd_metrics_decode_n(uint64_t *v, size_t n, const uint8_t *in, size_t len)
{
    size_t pos = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t x = 0;
        for (unsigned shift = 0;; shift += 7) {
            if (pos == len || shift > 63)
                return QD_ERR_INVAL;
            uint8_t b = in[pos++];
            if (shift == 63 && (b & 0x7e) != 0)
                return QD_ERR_INVAL; /* more than 64 bits */
            x |= (uint64_t)(b & 0x7f) << shift;
            if (!(b & 0x80))
                break;
        }
        v[i] = x;
    }
    return pos == len ? 0 : QD_ERR_INVAL;
}

void qd_metrics_put_msg(qd_ipc_msg *msg, uint32_t role, uint32_t instance, uint32_t pid,
                        uint64_t since_ms, const uint8_t *slots, size_t len, bool exiting)
{
    qd_ipc_put_u32(msg, QD_F_ROLE, role);
    qd_ipc_put_u32(msg, QD_F_INSTANCE, instance);
    qd_ipc_put_u32(msg, QD_F_PID, pid);
    qd_ipc_put_u64(msg, QD_F_TIME_MS, since_ms);
    qd_ipc_put_u32(msg, QD_F_SCHEMA, qd_metrics_schema());
    qd_ipc_put_bytes(msg, QD_F_METRICS, slots, len);
    if (exiting)
        qd_ipc_put_u32(msg, QD_F_FLAGS, QD_METRICS_F_EXIT);
}

size_t qd_metrics_encode(const qd_metrics *m, uint8_t *out, size_t cap)
{
    return qd_metrics_encode_n(m->v, QD_METRICS_NSLOTS, out, cap);
}

int qd_metrics_decode(qd_metrics *m, const uint8_t *in, size_t len)
{
    return qd_metrics_decode_n(m->v, QD_METRICS_NSLOTS, in, len);
}

/* put_varint - |v| as LEB128 at |out| + |*len|; false when |cap| is reached */
static bool put_varint(uint8_t *out, size_t cap, size_t *len, uint64_t v)
{
    do {
        if (*len == cap)
            return false;
        out[(*len)++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    return true;
}

/* get_varint - a LEB128 value from |in| at |*pos|; -1 when malformed */
static int get_varint(const uint8_t *in, size_t len, size_t *pos, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0;; shift += 7) {
        if (*pos == len || shift > 63)
            return -1;
        uint8_t b = in[(*pos)++];
        if (shift == 63 && (b & 0x7e) != 0)
            return -1;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
}

size_t qd_metrics_encode_sparse(const qd_metrics *m, uint8_t *out, size_t cap)
{
    size_t len = 0, skipped = 0;

    for (size_t i = 0; i < QD_METRICS_NSLOTS; i++) {
        if (m->v[i] == 0) {
            skipped++;
            continue;
        }
        if (!put_varint(out, cap, &len, skipped) || !put_varint(out, cap, &len, m->v[i]))
            return (size_t)-1;
        skipped = 0;
    }
    return len;
}

int qd_metrics_add_sparse(qd_metrics *m, const uint8_t *in, size_t len)
{
    size_t pos = 0, slot = 0;

    while (pos < len) {
        uint64_t skip, v;
        if (get_varint(in, len, &pos, &skip) < 0 || get_varint(in, len, &pos, &v) < 0 ||
            skip >= QD_METRICS_NSLOTS - slot)
            return QD_ERR_INVAL;
        slot += skip;
        m->v[slot++] += v;
    }
    return 0;
}

/* hist_count - the observations of the histogram at |h| */
static uint64_t hist_count(const uint64_t *h)
{
    uint64_t n = 0;

    for (unsigned b = 0; b < QD_METRICS_NBUCKETS; b++)
        n += h[b];
    return n;
}

uint64_t qd_metrics_count(const qd_metrics *m, size_t slot)
{
    return hist_count(&m->v[slot]);
}

double qd_metrics_hist_quantile(const uint64_t *h, double q)
{
    uint64_t n = hist_count(h), cum = 0;

    if (n == 0)
        return -1;
    double rank = q * (double)n;
    for (unsigned b = 0; b < QD_METRICS_NBUCKETS; b++) {
        uint64_t in = h[b];
        if (in == 0 || (double)(cum + in) < rank) {
            cum += in;
            continue;
        }
        if (b == QD_METRICS_NBUCKETS - 1)
            return (double)bucket_us[b - 1] / 1e6;
        double lo = b == 0 ? 0 : (double)bucket_us[b - 1], hi = (double)bucket_us[b];
        return (lo + (hi - lo) * (rank - (double)cum) / (double)in) / 1e6;
    }
    return (double)bucket_us[QD_METRICS_NBUCKETS - 2] / 1e6;
}

double qd_metrics_quantile(const qd_metrics *m, size_t slot, double q)
{
    return qd_metrics_hist_quantile(&m->v[slot], q);
}

double qd_metrics_max(const qd_metrics *m, size_t slot)
{
    for (int b = QD_METRICS_NBUCKETS - 1; b >= 0; b--)
        if (m->v[slot + (unsigned)b] != 0)
            return b == QD_METRICS_NBUCKETS - 1 ? INFINITY : (double)bucket_us[b] / 1e6;
    return -1;
}

void qd_metrics_locate(size_t slot, qd_metrics_slot *where)
{
    unsigned f = family_of(slot);
    const qd_metrics_family *fam = &qd_metrics_families[f];
    size_t per = slots_per_series(fam), k = (slot - fam->first) / per;

    where->family = f;
    where->i = (unsigned)(k / dims[fam->d2].n);
    where->j = (unsigned)(k % dims[fam->d2].n);
    where->bucket = fam->type == QD_MT_HISTOGRAM ? (int)((slot - fam->first) % per) : -1;
}

uint64_t qd_metrics_family_sum(const qd_metrics *m, unsigned family)
{
    const qd_metrics_family *f = &qd_metrics_families[family];
    uint64_t n = 0;

    if (f->type == QD_MT_HISTOGRAM) {
        for (size_t at = f->first; at < f->first + f->nslots; at += QD_METRICS_HSLOTS)
            n += qd_metrics_count(m, at);
        return n;
    }
    for (size_t i = f->first; i < f->first + f->nslots; i++)
        n += m->v[i];
    return n;
}

const char *qd_metrics_short_name(unsigned family, char *buf, size_t len)
{
    const char *name = qd_metrics_families[family].name;
    size_t n;

    if (strncmp(name, "quicd_", 6) == 0)
        name += 6;
    n = strlen(name);
    if (n > 6 && strcmp(name + n - 6, "_total") == 0)
        n -= 6;
    snprintf(buf, len, "%.*s", (int)n, name);
    return buf;
}

const char *qd_metrics_dim_label(unsigned d)
{
    return d < QD_MD_COUNT_ ? dims[d].label : "";
}

const char *qd_metrics_dim_value(unsigned d, unsigned i)
{
    return d < QD_MD_COUNT_ && i < dims[d].n ? value_name(&dims[d], i) : "";
}

unsigned qd_metrics_dim_size(unsigned d)
{
    return d < QD_MD_COUNT_ ? dims[d].n : 0;
}

bool qd_metrics_dim_is_instance(unsigned d)
{
    return d < QD_MD_COUNT_ && dims[d].values == NULL;
}

/* labels - 'a="x",b="y"' for a series, plus |le| when set; the length written */
static int labels(char *buf, size_t len, const qd_metrics_family *fam, unsigned i, unsigned j,
                  const char *le)
{
    return snprintf(buf, len, "%s%s%s%s%s%s%s%s%s%s%s%s",
                    fam->d1 ? dims[fam->d1].label : "", fam->d1 ? "=\"" : "",
                    fam->d1 ? value_name(&dims[fam->d1], i) : "", fam->d1 ? "\"" : "",
                    fam->d2 ? "," : "", fam->d2 ? dims[fam->d2].label : "",
                    fam->d2 ? "=\"" : "", fam->d2 ? value_name(&dims[fam->d2], j) : "",
                    fam->d2 ? "\"" : "", le && (fam->d1 || fam->d2) ? "," : "",
                    le ? "le=\"" : "", le ? le : "");
}

size_t qd_metrics_series(size_t slot, char *buf, size_t len)
{
    qd_metrics_slot w;
    char lab[256];

    if (len == 0)
        return 0;
    buf[0] = '\0';
    if (slot >= QD_METRICS_NSLOTS)
        return 0;
    qd_metrics_locate(slot, &w);
    const qd_metrics_family *fam = &qd_metrics_families[w.family];
    bool bucket = w.bucket >= 0 && w.bucket < QD_METRICS_NBUCKETS;
    labels(lab, sizeof(lab), fam, w.i, w.j, bucket ? bucket_le[w.bucket] : NULL);
    if (bucket)
        strcat(lab, "\"");
    int n = snprintf(buf, len, "%s%s%s%s%s", fam->name,
                     w.bucket < 0 ? "" : bucket ? "_bucket" : "_sum", lab[0] ? "{" : "", lab,
                     lab[0] ? "}" : "");
    return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

long qd_metrics_find(const char *series)
{
    char buf[512];

    /* only the families whose name begins |series| (stats reads every row at start) */
    for (unsigned f = 0; f < QD_METRICS_NFAMILIES; f++) {
        const qd_metrics_family *fam = &qd_metrics_families[f];
        if (strncmp(series, fam->name, strlen(fam->name)) != 0)
            continue;
        for (size_t s = fam->first; s < fam->first + fam->nslots; s++) {
            qd_metrics_series(s, buf, sizeof(buf));
            if (strcmp(buf, series) == 0)
                return (long)s;
        }
    }
    return -1;
}

/* series_line - "name{labels} value" */
static void series_line(qd_buf *out, const char *name, const char *suffix, const char *lab,
                        const char *value)
{
    qd_buf_printf(out, "%s%s%s%s%s %s\n", name, suffix, lab[0] ? "{" : "", lab, lab[0] ? "}" : "",
                  value);
}

/* render_histogram - one series: cumulative buckets, _sum (seconds), _count */
static void render_histogram(const qd_metrics *m, qd_buf *out, const qd_metrics_family *fam,
                             size_t at, unsigned i, unsigned j)
{
    char lab[256], val[32];
    uint64_t cum = 0;

    for (unsigned b = 0; b < QD_METRICS_NBUCKETS; b++) {
        cum += m->v[at + b];
        labels(lab, sizeof(lab), fam, i, j, bucket_le[b]);
        strcat(lab, "\"");
        snprintf(val, sizeof(val), "%llu", (unsigned long long)cum);
        series_line(out, fam->name, "_bucket", lab, val);
    }
    labels(lab, sizeof(lab), fam, i, j, NULL);
    uint64_t us = m->v[at + QD_METRICS_NBUCKETS];
    snprintf(val, sizeof(val), "%llu.%06llu", (unsigned long long)(us / 1000000),
             (unsigned long long)(us % 1000000));
    series_line(out, fam->name, "_sum", lab, val);
    snprintf(val, sizeof(val), "%llu", (unsigned long long)cum);
    series_line(out, fam->name, "_count", lab, val);
}

/* shown - the values of dimension |d| that render shows */
static unsigned shown(unsigned d, unsigned instances)
{
    if (dims[d].values != NULL || instances > dims[d].n)
        return dims[d].n;
    return instances;
}

void qd_metrics_render(const qd_metrics *m, unsigned instances, qd_buf *out)
{
    static const char *const type_name[] = {"counter", "gauge", "gauge", "histogram", "counter"};

    for (unsigned f = 0; f < QD_METRICS_NFAMILIES; f++) {
        const qd_metrics_family *fam = &qd_metrics_families[f];
        size_t per = slots_per_series(fam);
        unsigned n1 = shown(fam->d1, instances), n2 = shown(fam->d2, instances);
        qd_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name,
                      type_name[fam->type]);
        for (unsigned i = 0; i < n1; i++)
            for (unsigned j = 0; j < n2; j++) {
                size_t at = fam->first + ((size_t)i * dims[fam->d2].n + j) * per;
                if (fam->type == QD_MT_HISTOGRAM) {
                    render_histogram(m, out, fam, at, i, j);
                    continue;
                }
                char lab[256], val[32];
                uint64_t v = m->v[at];
                labels(lab, sizeof(lab), fam, i, j, NULL);
                if (fam->type == QD_MT_COUNTER_US)
                    snprintf(val, sizeof(val), "%llu.%06llu", (unsigned long long)(v / 1000000),
                             (unsigned long long)(v % 1000000));
                else
                    snprintf(val, sizeof(val), "%llu", (unsigned long long)v);
                series_line(out, fam->name, "", lab, val);
            }
    }
}
