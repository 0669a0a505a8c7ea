/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	stats_metrics - quicd's counters, kept monotonic, for /metrics
 * SYNOPSIS
 *	stats_metrics_receive(s, m), stats_metrics_load(s),
 *	stats_metrics_dirty(s), stats_metrics_write(s),
 *	stats_metrics_committed(s), stats_metrics_close(s),
 *	stats_metrics_text(s, out)
 * DESCRIPTION
 *	Every worker and the master send their running totals (a qd_metrics,
 *	QD_MSG_METRICS) every stats_interval and when they exit. A "source"
 *	is one process: role, instance, pid and start time, so two processes
 *	of the same role and instance (a reload's two generations, a worker
 *	and its successor after a crash) never mix. For a known source the
 *	difference to its last totals is added to s->totals; a new source
 *	adds all it has. A lost message costs nothing (the next one carries
 *	the totals), and a process that died loses at most what it counted
 *	since its last message.
 *
 *	Gauges are not added up: /metrics shows, per gauge, the sum (GAUGE)
 *	or the smallest (GAUGE_MIN) of the last values of the sources heard
 *	from within STATS_METRICS_LIVE intervals that did not say they exit.
 *
 *	The totals survive stats itself: what the database lacks is added to
 *	metric_totals (value = value + delta, so two stats daemons writing the
 *	same file during an upgrade add up rather than overwrite), and each
 *	source's last totals go to metric_sources, in the transaction of the
 *	records' batch (stats_db_commit), so that totals and sources are
 *	always consistent. A stats daemon that starts reads them back once
 *	(stats_metrics_load) and goes on where its predecessor committed.
 *	The stats daemon is a source itself (records written and lost).
 *	Each message is committed when it arrives, and /metrics shows what
 *	is committed, so a scrape never sees a count that a kill -9 of
 *	stats could take back.
 *
 *	The aggregates by route (a worker's F_ROUTE and F_ROUTE_SLOTS pairs)
 *	are folded the same way, per source and route name, into rows of
 *	route_intervals (time, role, instance, interval, route, requests by
 *	status class, body bytes both ways, the duration histogram). They are
 *	not in metric_sources: for a source read back from the database, its
 *	next report is taken as the base, so a restart of stats loses at most
 *	that interval's growth of its routes, never counts it twice.
 * DIAGNOSTICS
 *	A malformed message, or one from a process built with another
 *	metrics table (QD_F_SCHEMA differs: during an upgrade), is refused;
 *	so is one with a malformed route pair, or more than QD_ROUTE_MAX + 1.
 *	Rows of metric_totals this quicd does not know are left alone.
 */
#include "config.h"

/* system */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libraries */
#include <sqlite3.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_log.h"
#include "qd_proc.h"
#include "qd_time.h"

/* local */
#include "stats.h"

#define STATS_METRICS_LIVE 3           /* stats_intervals a gauge is believed */
#define STATS_METRICS_FORGET_MS 3600000 /* a source silent this long is dead: forgotten */
#define STATS_INTERVALS_MAX 20000       /* interval rows kept while the database is away */

/* an interval row waiting in s->intervals, followed by |len| bytes of slots */
typedef struct interval_row {
    uint64_t time_ms, interval_ms;
    uint32_t role, instance, len;
} interval_row;

/* a route's last totals (of a source), or a row of route_intervals waiting in s->route_rows */
typedef struct route_counts {
    char name[QD_ROUTE_NAME_MAX];
    uint64_t v[QD_ROUTE_NSLOTS];
} route_counts;
typedef struct route_row {
    uint64_t time_ms, interval_ms;
    uint32_t role, instance;
    route_counts c; /* the growth in the interval */
} route_row;

typedef struct stats_source {
    uint32_t role, instance, pid;
    uint64_t started_ms;
    uint64_t seen_ms; /* wall clock of its last message */
    bool exited;      /* its last message said so: its gauges are gone */
    bool dirty;       /* the database does not have |last| yet */
    qd_metrics last;
    route_counts *routes; /* its routes' last totals */
    size_t nroutes;
    bool routes_base;     /* read back from the database: its next routes are only the base */
    struct stats_source *next;
} stats_source;

/* is_gauge - a slot whose value is a level, not a running total */
static bool is_gauge(size_t slot)
{
    qd_metrics_slot w;

    qd_metrics_locate(slot, &w);
    int t = qd_metrics_families[w.family].type;
    return t == QD_MT_GAUGE || t == QD_MT_GAUGE_MIN;
}

/* source_free - |src| and its routes */
static void source_free(stats_source *src)
{
    free(src->routes);
    free(src);
}

/* find - the source of that process, or a new one */
static stats_source *find(stats *s, uint32_t role, uint32_t instance, uint32_t pid,
                          uint64_t started_ms, bool *fresh)
{
    for (stats_source *src = s->sources; src != NULL; src = src->next)
        if (src->role == role && src->instance == instance && src->pid == pid &&
            src->started_ms == started_ms) {
            *fresh = false;
            return src;
        }
    stats_source *src = qd_xcalloc(1, sizeof(*src));
    src->role = role;
    src->instance = instance;
    src->pid = pid;
    src->started_ms = started_ms;
    src->next = s->sources;
    s->sources = src;
    *fresh = true;
    return src;
}

/*
 * fold - |src| now reports |now|: its counters' growth goes into the
 * totals. A counter below its last value cannot come from the same
 * process; it is taken as counted from zero.
 */
static void fold(stats *s, stats_source *src, const qd_metrics *now)
{
    static qd_metrics delta;
    static uint8_t buf[QD_METRICS_NSLOTS * 20];
    uint64_t t = qd_time_real_ms();

    for (size_t i = 0; i < QD_METRICS_NSLOTS; i++) {
        uint64_t v = now->v[i], last = src->last.v[i];
        if (is_gauge(i)) { /* an interval row has the gauge's level, not a change */
            delta.v[i] = v;
            continue;
        }
        delta.v[i] = v >= last ? v - last : v;
        s->totals.v[i] += delta.v[i];
    }
    size_t len = qd_metrics_encode_sparse(&delta, buf, sizeof(buf));
    if (len != 0 && len != (size_t)-1) { /* an interval with nothing counted has no row */
        if (s->nintervals >= STATS_INTERVALS_MAX) {
            s->lost_intervals++;
        } else {
            interval_row r = {t, src->seen_ms != 0 && t > src->seen_ms ? t - src->seen_ms : 0,
                              src->role, src->instance, (uint32_t)len};
            if (r.interval_ms == 0)
                r.interval_ms = (uint64_t)s->child.conf.stats_interval_ms;
            qd_buf_append(&s->intervals, (const char *)&r, sizeof(r));
            qd_buf_append(&s->intervals, (const char *)buf, len);
            s->nintervals++;
        }
    }
    src->last = *now;
    src->seen_ms = t;
    src->dirty = true;
}

/*
 * read_routes - the route pairs of |m| into |in| (at most QD_ROUTE_MAX + 1);
 * their count, or -1 for a malformed pair
 */
static int read_routes(const qd_ipc_msg *m, route_counts *in)
{
    size_t pos = 0, len;
    uint16_t tag;
    const uint8_t *val;
    int n = 0;
    bool named = false;

    while (qd_ipc_next(m, &pos, &tag, &val, &len)) {
        if (tag == QD_F_ROUTE) {
            if (named || n > QD_ROUTE_MAX || len == 0 || len >= QD_ROUTE_NAME_MAX ||
                memchr(val, '\0', len) != NULL)
                return -1;
            memcpy(in[n].name, val, len);
            in[n].name[len] = '\0';
            named = true;
        } else if (tag == QD_F_ROUTE_SLOTS) {
            if (!named || qd_metrics_decode_n(in[n].v, QD_ROUTE_NSLOTS, val, len) < 0)
                return -1;
            named = false;
            n++;
        }
    }
    return named ? -1 : n;
}

/*
 * fold_routes - |src| now reports |in| (|n| routes) at |t|, |interval_ms|
 * after its last report: each route's growth is a row of route_intervals
 */
static void fold_routes(stats *s, stats_source *src, const route_counts *in, int n, uint64_t t,
                        uint64_t interval_ms)
{
    for (int k = 0; k < n; k++) {
        route_counts *last = NULL;
        for (size_t i = 0; i < src->nroutes && last == NULL; i++)
            if (strcmp(src->routes[i].name, in[k].name) == 0)
                last = &src->routes[i];
        if (last == NULL) {
            if (src->nroutes > QD_ROUTE_MAX)
                continue; /* cannot happen: read_routes took at most that many */
            src->routes = qd_xrealloc(src->routes, (src->nroutes + 1) * sizeof(*src->routes));
            last = &src->routes[src->nroutes++];
            memset(last, 0, sizeof(*last));
        }
        route_row r = {.time_ms = t, .interval_ms = interval_ms, .role = src->role,
                       .instance = src->instance};
        bool grew = false;
        memcpy(r.c.name, in[k].name, sizeof(r.c.name)); /* NUL-terminated by read_routes */
        for (unsigned i = 0; i < QD_ROUTE_NSLOTS; i++) {
            uint64_t v = in[k].v[i], l = last->v[i];
            r.c.v[i] = v >= l ? v - l : v; /* below its last: counted from zero */
            grew = grew || r.c.v[i] != 0;
        }
        *last = in[k];
        if (!grew || src->routes_base)
            continue;
        if (s->nroute_rows >= STATS_INTERVALS_MAX) {
            s->lost_intervals++;
            continue;
        }
        qd_buf_append(&s->route_rows, (const char *)&r, sizeof(r));
        s->nroute_rows++;
    }
    src->routes_base = false;
}

int stats_metrics_receive(stats *s, const qd_ipc_msg *m)
{
    static qd_metrics in;
    static route_counts routes[QD_ROUTE_MAX + 1];
    static qd_log_limit lim;
    uint32_t role, instance, pid, schema, flags = 0;
    int nroutes;
    uint64_t started_ms;
    const uint8_t *p;
    size_t len;
    bool fresh;

    if (qd_ipc_get_u32(m, QD_F_ROLE, &role) < 0 || role >= QD_ROLE_COUNT ||
        qd_ipc_get_u32(m, QD_F_INSTANCE, &instance) < 0 ||
        qd_ipc_get_u32(m, QD_F_PID, &pid) < 0 ||
        qd_ipc_get_u64(m, QD_F_TIME_MS, &started_ms) < 0 ||
        qd_ipc_get_u32(m, QD_F_SCHEMA, &schema) < 0 ||
        qd_ipc_get_bytes(m, QD_F_METRICS, &p, &len) < 0)
        goto bad;
    if (schema != qd_metrics_schema()) {
        qd_log_limited(&lim, QD_LOG_WARN,
                       "metrics of %s pid %u refused: another metrics table (a quicd of "
                       "another version; its counts show once both run the same)",
                       qd_role_name(role), pid);
        goto bad;
    }
    if (qd_metrics_decode(&in, p, len) < 0 || (nroutes = read_routes(m, routes)) < 0)
        goto bad;
    qd_ipc_get_u32(m, QD_F_FLAGS, &flags);
    stats_source *src = find(s, role, instance, pid, started_ms, &fresh);
    uint64_t t = qd_time_real_ms();
    fold_routes(s, src, routes, nroutes, t,
                src->seen_ms != 0 && t > src->seen_ms ? t - src->seen_ms
                                                      : (uint64_t)s->child.conf.stats_interval_ms);
    fold(s, src, &in);
    src->exited = (flags & QD_METRICS_F_EXIT) != 0;
    return 0;
bad:
    s->bad_metrics++;
    return -1;
}

/* own - the stats daemon's own counters, as a source like the others */
static void own(stats *s)
{
    static qd_metrics mine;
    bool fresh;

    mine.v[QD_M_RECORDS_WRITTEN] = s->records;
    mine.v[QD_M_RECORDS_DROPPED] = s->lost_records;
    const stats_http_counts *h = &s->http_counts;
    mine.v[QD_M1(SCRAPES, QD_MV_SCRAPE_OK)] = h->requests;
    mine.v[QD_M1(SCRAPES, QD_MV_SCRAPE_REFUSED_PEER)] = h->refused_peers;
    mine.v[QD_M1(SCRAPES, QD_MV_SCRAPE_REFUSED_BUSY)] = h->refused_busy;
    mine.v[QD_M1(SCRAPES, QD_MV_SCRAPE_UNAUTHORIZED)] = h->unauthorized;
    mine.v[QD_M1(SCRAPES, QD_MV_SCRAPE_UNAVAILABLE)] = h->unavailable;
    mine.v[QD_M1(SCRAPES, QD_MV_SCRAPE_BAD_REQUEST)] = h->bad_requests;
    mine.v[QD_M1(SCRAPES, QD_MV_SCRAPE_TIMEOUT)] = h->timeouts;
    stats_source *src = find(s, QD_ROLE_STATS, 0, (uint32_t)getpid(), s->started_ms, &fresh);
    if (fresh || memcmp(&src->last, &mine, sizeof(mine)) != 0)
        fold(s, src, &mine);
}

/* prepare - the statements, on first use after an open */
static int prepare(stats *s)
{
    static const char add[] = "INSERT INTO metric_totals (series, value) VALUES (?1, ?2) "
                              "ON CONFLICT (series) DO UPDATE SET value = value + excluded.value";
    static const char put[] = "INSERT OR REPLACE INTO metric_sources (role, instance, pid, "
                              "started_ms, seen_ms, schema, slots) VALUES (?1, ?2, ?3, ?4, ?5, "
                              "?6, ?7)";
    static const char del[] = "DELETE FROM metric_sources WHERE seen_ms < ?1";
    static const char ins[] = "INSERT INTO metric_intervals (time_ms, role, instance, "
                              "interval_ms, slots) VALUES (?1, ?2, ?3, ?4, ?5)";
    static const char route[] =
        "INSERT INTO route_intervals (time_ms, role, instance, interval_ms, route, requests, "
        "status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, status_none, bytes_in, "
        "bytes_out, durations) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
        "?14, ?15)";

    if (s->add_total != NULL)
        return 0;
    if (sqlite3_prepare_v2(s->db, add, -1, &s->add_total, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, put, -1, &s->put_source, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, del, -1, &s->del_source, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, ins, -1, &s->add_interval, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, route, -1, &s->add_route, NULL) != SQLITE_OK) {
        qd_err("stats database: metrics: %s", sqlite3_errmsg(s->db));
        stats_metrics_close(s);
        return -1;
    }
    return 0;
}

void stats_metrics_load(stats *s)
{
    static qd_metrics last;
    sqlite3_stmt *st = NULL;
    size_t nt = 0, ns = 0;

    if (s->metrics_loaded || s->db == NULL)
        return;
    s->metrics_loaded = true;
    if (sqlite3_prepare_v2(s->db, "SELECT series, value FROM metric_totals", -1, &st, NULL) ==
        SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const unsigned char *name = sqlite3_column_text(st, 0);
            long slot = name != NULL ? qd_metrics_find((const char *)name) : -1;
            if (slot < 0 || is_gauge((size_t)slot))
                continue; /* another version's series: left alone */
            uint64_t v = (uint64_t)sqlite3_column_int64(st, 1);
            s->totals.v[slot] += v;
            s->persisted.v[slot] += v;
            nt++;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT role, instance, pid, started_ms, seen_ms, slots FROM "
                           "metric_sources WHERE schema = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, qd_metrics_schema());
        while (sqlite3_step(st) == SQLITE_ROW) {
            const void *blob = sqlite3_column_blob(st, 5);
            int len = sqlite3_column_bytes(st, 5);
            bool fresh;
            if (blob == NULL || qd_metrics_decode(&last, blob, (size_t)len) < 0)
                continue;
            stats_source *src = find(s, (uint32_t)sqlite3_column_int64(st, 0),
                                     (uint32_t)sqlite3_column_int64(st, 1),
                                     (uint32_t)sqlite3_column_int64(st, 2),
                                     (uint64_t)sqlite3_column_int64(st, 3), &fresh);
            if (!fresh)
                continue; /* it reported before the database opened: counted from zero */
            src->last = last;
            src->seen_ms = (uint64_t)sqlite3_column_int64(st, 4);
            src->exited = true; /* its gauges wait for its next message */
            src->routes_base = true;
            ns++;
        }
    }
    sqlite3_finalize(st);
    qd_debug("metrics: %zu totals and %zu processes from the database", nt, ns);
}

bool stats_metrics_dirty(stats *s)
{
    own(s);
    if (s->nintervals > 0 || s->nroute_rows > 0 ||
        memcmp(&s->totals, &s->persisted, sizeof(s->totals)) != 0)
        return true;
    for (stats_source *src = s->sources; src != NULL; src = src->next)
        if (src->dirty)
            return true;
    return false;
}

/* write_routes - the rows of route_intervals waiting; 0, or -1 on an error */
static int write_routes(stats *s)
{
    uint8_t hist[QD_METRICS_HSLOTS * 10];

    for (size_t pos = 0; pos + sizeof(route_row) <= s->route_rows.len; pos += sizeof(route_row)) {
        route_row r;
        memcpy(&r, s->route_rows.data + pos, sizeof(r));
        sqlite3_stmt *st = s->add_route;
        uint64_t requests = 0;
        for (unsigned c = 0; c < QD_MDN_CLASS; c++) {
            requests += r.c.v[QD_ROUTE_REQUESTS + c];
            sqlite3_bind_int64(st, 7 + (int)c, (sqlite3_int64)r.c.v[QD_ROUTE_REQUESTS + c]);
        }
        size_t hlen = qd_metrics_encode_n(&r.c.v[QD_ROUTE_DURATION], QD_METRICS_HSLOTS, hist,
                                          sizeof(hist));
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r.time_ms);
        sqlite3_bind_int64(st, 2, r.role);
        sqlite3_bind_int64(st, 3, r.instance);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)r.interval_ms);
        sqlite3_bind_text(st, 5, r.c.name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)requests);
        sqlite3_bind_int64(st, 13, (sqlite3_int64)r.c.v[QD_ROUTE_BYTES_IN]);
        sqlite3_bind_int64(st, 14, (sqlite3_int64)r.c.v[QD_ROUTE_BYTES_OUT]);
        sqlite3_bind_blob(st, 15, hist, (int)hlen, SQLITE_TRANSIENT);
        int rv = sqlite3_step(st);
        sqlite3_reset(st);
        if (rv != SQLITE_DONE)
            return -1;
    }
    return 0;
}

int stats_metrics_write(stats *s)
{
    static uint8_t buf[QD_METRICS_NSLOTS * 10];
    char series[512];

    if (!stats_metrics_dirty(s))
        return 0;
    if (prepare(s) < 0)
        return -1;
    for (size_t i = 0; i < QD_METRICS_NSLOTS; i++) {
        if (s->totals.v[i] == s->persisted.v[i] || is_gauge(i))
            continue;
        qd_metrics_series(i, series, sizeof(series));
        sqlite3_bind_text(s->add_total, 1, series, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s->add_total, 2, (sqlite3_int64)(s->totals.v[i] - s->persisted.v[i]));
        int rv = sqlite3_step(s->add_total);
        sqlite3_reset(s->add_total);
        if (rv != SQLITE_DONE)
            return -1;
    }
    for (stats_source *src = s->sources; src != NULL; src = src->next) {
        if (!src->dirty)
            continue;
        size_t len = qd_metrics_encode(&src->last, buf, sizeof(buf));
        sqlite3_stmt *st = s->put_source;
        sqlite3_bind_int64(st, 1, src->role);
        sqlite3_bind_int64(st, 2, src->instance);
        sqlite3_bind_int64(st, 3, src->pid);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)src->started_ms);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)src->seen_ms);
        sqlite3_bind_int64(st, 6, qd_metrics_schema());
        sqlite3_bind_blob(st, 7, buf, (int)len, SQLITE_STATIC);
        int rv = sqlite3_step(st);
        sqlite3_reset(st);
        if (rv != SQLITE_DONE)
            return -1;
    }
    for (size_t pos = 0; pos + sizeof(interval_row) <= s->intervals.len;) {
        interval_row r;
        memcpy(&r, s->intervals.data + pos, sizeof(r));
        pos += sizeof(r);
        sqlite3_stmt *st = s->add_interval;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)r.time_ms);
        sqlite3_bind_int64(st, 2, r.role);
        sqlite3_bind_int64(st, 3, r.instance);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)r.interval_ms);
        sqlite3_bind_blob(st, 5, s->intervals.data + pos, (int)r.len, SQLITE_STATIC);
        pos += r.len;
        int rv = sqlite3_step(st);
        sqlite3_reset(st);
        if (rv != SQLITE_DONE)
            return -1;
    }
    if (write_routes(s) < 0)
        return -1;
    sqlite3_bind_int64(s->del_source, 1,
                       (sqlite3_int64)(qd_time_real_ms() - STATS_METRICS_FORGET_MS));
    int rv = sqlite3_step(s->del_source);
    sqlite3_reset(s->del_source);
    return rv == SQLITE_DONE ? 0 : -1;
}

void stats_metrics_committed(stats *s)
{
    uint64_t forget = qd_time_real_ms() - STATS_METRICS_FORGET_MS;

    s->persisted = s->totals;
    qd_buf_reset(&s->intervals);
    s->nintervals = 0;
    qd_buf_reset(&s->route_rows);
    s->nroute_rows = 0;
    for (stats_source **pp = &s->sources; *pp != NULL;) {
        stats_source *src = *pp;
        src->dirty = false;
        if (src->seen_ms < forget) {
            *pp = src->next;
            source_free(src);
        } else {
            pp = &src->next;
        }
    }
}

void stats_metrics_forget(stats *s)
{
    qd_buf_release(&s->intervals);
    s->nintervals = 0;
    qd_buf_release(&s->route_rows);
    s->nroute_rows = 0;
    while (s->sources != NULL) {
        stats_source *src = s->sources;
        s->sources = src->next;
        source_free(src);
    }
}

void stats_metrics_close(stats *s)
{
    sqlite3_finalize(s->add_total);
    sqlite3_finalize(s->put_source);
    sqlite3_finalize(s->del_source);
    sqlite3_finalize(s->add_interval);
    sqlite3_finalize(s->add_route);
    s->add_total = s->put_source = s->del_source = s->add_interval = s->add_route = NULL;
}

void stats_metrics_text(stats *s, qd_buf *out)
{
    static qd_metrics view;
    uint64_t now = qd_time_real_ms();
    uint64_t live = (uint64_t)s->child.conf.stats_interval_ms * STATS_METRICS_LIVE;
    bool seen[QD_METRICS_NSLOTS];

    /*
     * What the database has: a stats daemon killed now and started again
     * goes on from there, so no counter ever goes down (which Prometheus
     * would take for a reset). Only while the database cannot be written
     * are the counts in memory shown.
     */
    view = s->db != NULL && !s->failing ? s->persisted : s->totals;
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < QD_METRICS_NSLOTS; i++)
        if (is_gauge(i))
            view.v[i] = 0;
    for (stats_source *src = s->sources; src != NULL; src = src->next) {
        if (src->exited || now - src->seen_ms > live)
            continue;
        for (size_t i = 0; i < QD_METRICS_NSLOTS; i++) {
            if (!is_gauge(i))
                continue;
            qd_metrics_slot w;
            qd_metrics_locate(i, &w);
            if (qd_metrics_families[w.family].type == QD_MT_GAUGE_MIN) {
                if (src->last.v[i] != 0 && (!seen[i] || src->last.v[i] < view.v[i]))
                    view.v[i] = src->last.v[i], seen[i] = true;
            } else {
                view.v[i] += src->last.v[i];
            }
        }
    }
    qd_metrics_render(&view, (unsigned)qd_conf_workers(&s->child.conf), out);
}
