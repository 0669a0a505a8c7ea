/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	quicctl_report - summary of the stats database for a time window
 * SYNOPSIS
 *	quicctl_report(), quicctl_parse_duration(), quicctl_parse_time()
 * DESCRIPTION
 *	Opens stats_database read-only (WAL: the stats daemon keeps writing
 *	while we read) and prints, for connections started and requests made
 *	in [from, to): connection count, handshakes and their p50/p90/p99 in
 *	ms, resumption, 0-RTT and Retry counts, migrations, bytes, requests,
 *	status codes, top paths, close reasons, per-worker load, per-protocol
 *	load (h3, h2 and http/1.1 always listed, then any other value found),
 *	proxied requests per upstream server (status classes, requests with
 *	no upstream answer, upstream time p50/p99), restarts and records
 *	dropped on the way to the database; with --by route, the aggregates
 *	by route of the proxy table (quicctl_summary_routes). Text for
 *	people; --json (one object) and --csv (section,key,value lines) for
 *	machines. A version 3
 *	or 4 database, from before the protocol column, is read as all h3 (it
 *	only ever held HTTP/3); one older than version 6 lists no upstreams.
 *	The requests of the window are read through request_seconds from
 *	version 9 (requests has no time_ms index any more), through the
 *	index before: the temporary view window_requests is either.
 * DIAGNOSTICS
 *	A missing or unreadable database, or one with an older schema, is
 *	one line on stderr and exit status 1.
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
#include "qd_time.h"

/* local */
#include "quicctl.h"

#define TOP_PATHS 10

enum { OUT_TEXT, OUT_JSON, OUT_CSV };

typedef struct report {
    sqlite3 *db;
    int fmt;
    int64_t from_ms, to_ms;
    int nsect; /* JSON: sections printed so far */
    int nitem; /* JSON: items printed in this section */
} report;

int quicctl_parse_duration(const char *s, int64_t *ms)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    int64_t unit;

    if (end == s || v < 0 || v > 100000000LL)
        return -1;
    if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        unit = 1000;
    else if (strcmp(end, "m") == 0)
        unit = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        unit = 3600 * 1000;
    else if (strcmp(end, "d") == 0)
        unit = 86400 * 1000LL;
    else
        return -1;
    *ms = (int64_t)v * unit;
    return 0;
}

int quicctl_parse_time(const char *s, int64_t *ms)
{
    struct tm tm;
    char *end;

    if (*s == '@') { /* @unix-seconds */
        long long v = strtoll(s + 1, &end, 10);
        if (end == s + 1 || *end != '\0' || v < 0)
            return -1;
        *ms = (int64_t)v * 1000;
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%Y-%m-%d", &tm);
    }
    if (end == NULL || (*end != '\0' && strcmp(end, "Z") != 0))
        return -1;
    *ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

/* json_str - print |s| as a JSON string */
static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* csv_str - print |s| as a CSV field */
static void csv_str(const char *s)
{
    if (strpbrk(s, ",\"\n\r") == NULL) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

/* section - start a named group of values */
static void section(report *r, const char *name, bool is_list)
{
    if (r->fmt == OUT_JSON) {
        printf("%s\n  ", r->nsect++ ? "," : "{");
        json_str(name);
        printf(": %c", is_list ? '[' : '{');
    } else if (r->fmt == OUT_TEXT) {
        printf("%s:\n", name);
    }
    r->nitem = 0;
}

static void section_end(report *r, bool is_list)
{
    if (r->fmt == OUT_JSON)
        printf("%c", is_list ? ']' : '}');
}

/* value - one named number in the current section */
static void value(report *r, const char *sect, const char *key, double v, bool is_int)
{
    if (r->fmt == OUT_JSON) {
        printf("%s", r->nitem++ ? ", " : "");
        json_str(key);
        if (is_int)
            printf(": %.0f", v);
        else
            printf(": %.3f", v);
    } else if (r->fmt == OUT_CSV) {
        printf("%s,", sect);
        csv_str(key);
        printf(is_int ? ",%.0f\n" : ",%.3f\n", v);
    } else {
        printf(is_int ? "  %-22s %.0f\n" : "  %-22s %.3f\n", key, v);
    }
}

/* prepare - a statement with ?1 = from and ?2 = to bound */
static sqlite3_stmt *prepare(report *r, const char *sql)
{
    sqlite3_stmt *st;

    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
        quicctl_die("stats database: %s", sqlite3_errmsg(r->db));
    sqlite3_bind_int64(st, 1, r->from_ms);
    sqlite3_bind_int64(st, 2, r->to_ms);
    return st;
}

/* scalar - the first column of the first row, 0 when NULL */
static double scalar(report *r, const char *sql)
{
    sqlite3_stmt *st = prepare(r, sql);
    double v = 0;

    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* percentile - nearest-rank percentile |p| of handshake times, in ms */
static double percentile(report *r, double p, double n)
{
    sqlite3_stmt *st;
    double v = 0;

    if (n < 1)
        return 0;
    st = prepare(r, "SELECT handshake_us FROM connections WHERE start_ms >= ?1 AND start_ms < ?2 "
                    "AND handshake_us IS NOT NULL ORDER BY handshake_us LIMIT 1 OFFSET ?3");
    sqlite3_bind_int64(st, 3, (sqlite3_int64)(p * (n - 1) + 0.5));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_double(st, 0) / 1000.0;
    sqlite3_finalize(st);
    return v;
}

/* is_ms_col - a column named *_ms: a time in ms, printed with three decimals as value() does */
static bool is_ms_col(const char *col)
{
    size_t len = strlen(col);

    return len > 3 && strcmp(col + len - 3, "_ms") == 0;
}

/* number - column |i| of the current row of |st|, named |col| (is_ms_col) */
static void number(sqlite3_stmt *st, int i, const char *col)
{
    if (is_ms_col(col))
        printf("%.3f", sqlite3_column_double(st, i));
    else
        printf("%lld", (long long)sqlite3_column_int64(st, i));
}

/*
 * rows - a list section: each row of |sql| is (text key, numbers...) named
 * by |cols| (cols[0] names the key). Numbers are integers, but for a
 * column named *_ms (is_ms_col).
 */
static void rows(report *r, const char *name, const char *sql, const char *const *cols, int ncols)
{
    sqlite3_stmt *st = prepare(r, sql);
    int n = 0;

    section(r, name, true);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        if (key == NULL)
            key = "";
        if (r->fmt == OUT_JSON) {
            printf("%s{", n ? ", " : "");
            json_str(cols[0]);
            printf(": ");
            json_str(key);
            for (int i = 1; i < ncols; i++) {
                printf(", ");
                json_str(cols[i]);
                printf(": ");
                number(st, i, cols[i]);
            }
            printf("}");
        } else if (r->fmt == OUT_CSV) {
            for (int i = 1; i < ncols; i++) {
                printf("%s,", name);
                csv_str(key);
                printf(",%s,", cols[i]);
                number(st, i, cols[i]);
                printf("\n");
            }
        } else {
            printf("  %-30s", key);
            for (int i = 1; i < ncols; i++) {
                printf(" %s=", cols[i]);
                number(st, i, cols[i]);
            }
            printf("\n");
        }
        n++;
    }
    sqlite3_finalize(st);
    section_end(r, true);
}

/*
 * item - one row of a list section from values: |key| under |keycol|, then
 * |n| numbers named |cols| (integers unless the name ends in _ms, _s or
 * _share)
 */
static void item(report *r, const char *sect, const char *keycol, const char *key,
                 const char *const *cols, const double *vals, int n)
{
    if (r->fmt == OUT_JSON) {
        printf("%s{", r->nitem++ ? ", " : "");
        json_str(keycol);
        printf(": ");
        json_str(key);
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(cols[i]);
        bool real = is_ms_col(cols[i]) || (len > 2 && strcmp(cols[i] + len - 2, "_s") == 0) ||
                    (len > 6 && strcmp(cols[i] + len - 6, "_share") == 0);
        if (r->fmt == OUT_JSON) {
            printf(", ");
            json_str(cols[i]);
            printf(real ? ": %.3f" : ": %.0f", vals[i]);
        } else if (r->fmt == OUT_CSV) {
            printf("%s,", sect);
            csv_str(key);
            printf(real ? ",%s,%.3f\n" : ",%s,%.0f\n", cols[i], vals[i]);
        }
    }
    if (r->fmt == OUT_JSON)
        printf("}");
}

/* ms_or - a quantile in ms for JSON and CSV: -1 when there is none, 1e7 for +Inf */
static double ms_or(double sec)
{
    return sec < 0 ? -1 : isinf(sec) ? 1e7 : sec * 1000;
}

/*
 * machine_summary - the metrics of the window (metric_intervals) as
 * sections for --json and --csv: summary, latency, status_classes, closes,
 * quic, and with --by its lines
 */
static void machine_summary(report *r, const quicctl_summary *s, int by)
{
    const qd_metrics *m = &s->m;
    static const char *const pname[] = {"h3", "h2", "http/1.1"};
    double secs = s->last_ms > s->first_ms ? (double)(s->last_ms - s->first_ms) / 1000 : 0;
    double reqs = (double)quicctl_summary_requests(m, -1, -1);

    section(r, "summary", false);
    value(r, "summary", "reports", (double)s->rows, true);
    value(r, "summary", "covered_s", secs, false);
    value(r, "summary", "requests", reqs, true);
    value(r, "summary", "requests_per_s", secs > 0 ? reqs / secs : 0, false);
    value(r, "summary", "connections_quic", (double)m->v[QD_M1(CONNECTIONS, QD_MV_QUIC)], true);
    value(r, "summary", "connections_tcp", (double)m->v[QD_M1(CONNECTIONS, QD_MV_TCP)], true);
    double bin = 0, bout = 0;
    for (unsigned p = 0; p < QD_MDN_PROTO; p++)
        bin += (double)m->v[QD_M1(REQUEST_BYTES, p)], bout += (double)m->v[QD_M1(RESPONSE_BYTES, p)];
    value(r, "summary", "request_body_bytes", bin, true);
    value(r, "summary", "response_body_bytes", bout, true);
    section_end(r, false);

    static const char *const lat_cols[] = {"p50_ms", "p90_ms", "p99_ms", "max_ms", "samples"};
    section(r, "latency", true);
    for (unsigned p = 0; p < QD_MDN_PROTO + 1; p++) {
        for (int kind = 0; kind < 3; kind++) {
            size_t slot;
            char key[40];
            if (p == QD_MDN_PROTO) { /* the handshakes, by transport */
                if (kind == 2)
                    continue;
                slot = QD_M1(HANDSHAKE_SECONDS, (unsigned)kind);
                snprintf(key, sizeof(key), "%s_handshake", kind == 0 ? "quic" : "tcp");
            } else {
                slot = kind == 0 ? QD_M1(TTFB_SECONDS, p) : QD_M1(REQUEST_SECONDS, p);
                if (kind == 2)
                    continue;
                snprintf(key, sizeof(key), "%s_%s", pname[p], kind == 0 ? "ttfb" : "duration");
            }
            double v[5] = {ms_or(qd_metrics_quantile(m, slot, 0.5)),
                           ms_or(qd_metrics_quantile(m, slot, 0.9)),
                           ms_or(qd_metrics_quantile(m, slot, 0.99)), ms_or(qd_metrics_max(m, slot)),
                           (double)qd_metrics_count(m, slot)};
            item(r, "latency", "series", key, lat_cols, v, 5);
        }
    }
    section_end(r, true);

    static const char *const cls_cols[] = {"requests", "share"};
    section(r, "status_classes", true);
    for (unsigned c = 0; c < QD_MDN_CLASS; c++) {
        double n = (double)quicctl_summary_requests(m, -1, (int)c), v[2] = {n, reqs > 0 ? n / reqs : 0};
        item(r, "status_classes", "class", qd_metrics_dim_value(QD_MD_CLASS, c), cls_cols, v, 2);
    }
    section_end(r, true);

    static const char *const close_cols[] = {"count"};
    section(r, "closes", true);
    for (unsigned side = 0; side < QD_MDN_SIDE; side++)
        for (unsigned c = 0; c < QD_MDN_CLOSE_CODE; c++) {
            double n = (double)m->v[QD_M2(QUIC_CLOSES, side, c)];
            char key[64];
            if (n == 0)
                continue;
            snprintf(key, sizeof(key), "%s:%s", qd_metrics_dim_value(QD_MD_SIDE, side),
                     qd_metrics_dim_value(QD_MD_CLOSE_CODE, c));
            item(r, "closes", "close", key, close_cols, &n, 1);
        }
    section_end(r, true);

    section(r, "quic", false);
    value(r, "quic", "retry_sent", (double)m->v[QD_M_QUIC_RETRY_SENT], true);
    for (unsigned t = 0; t < QD_MDN_TOKEN; t++) {
        char key[40];
        snprintf(key, sizeof(key), "tokens_%s", qd_metrics_dim_value(QD_MD_TOKEN, t));
        value(r, "quic", key, (double)m->v[QD_M1(QUIC_TOKENS, t)], true);
    }
    value(r, "quic", "stateless_resets_sent", (double)m->v[QD_M_QUIC_RESETS_SENT], true);
    value(r, "quic", "stateless_resets_suppressed", (double)m->v[QD_M_QUIC_RESETS_SUPPRESSED], true);
    value(r, "quic", "early_data_accepted", (double)m->v[QD_M1(EARLY_DATA, QD_MV_EARLY_ACCEPTED)], true);
    value(r, "quic", "early_data_rejected", (double)m->v[QD_M1(EARLY_DATA, QD_MV_EARLY_REJECTED)], true);
    value(r, "quic", "migrations", (double)m->v[QD_M_MIGRATIONS], true);
    value(r, "quic", "path_validations_failed",
          (double)m->v[QD_M1(PATH_VALIDATIONS, QD_MV_PATH_FAILED)], true);
    value(r, "quic", "version_negotiation_sent", (double)m->v[QD_M_QUIC_VN_SENT], true);
    for (unsigned d = 0; d < QD_MDN_DROP; d++) {
        char key[48];
        snprintf(key, sizeof(key), "dropped_%s", qd_metrics_dim_value(QD_MD_DROP, d));
        value(r, "quic", key, (double)m->v[QD_M1(QUIC_DROPPED, d)], true);
    }
    value(r, "quic", "udp_receive_queue_drops", (double)m->v[QD_M_UDP_RXQ_DROPS], true);
    double se = 0;
    for (unsigned e = 0; e < QD_MDN_SEND_ERROR; e++)
        se += (double)m->v[QD_M1(UDP_SEND_ERRORS, e)];
    value(r, "quic", "udp_send_errors", se, true);
    value(r, "quic", "udp_receive_buffer_bytes", (double)m->v[QD_M_UDP_RCVBUF], true);
    value(r, "quic", "retry_active", (double)m->v[QD_M_QUIC_RETRY_ACTIVE], true);
    section_end(r, false);

    if (by == QS_BY_WORKER || by == QS_BY_MINUTE) {
        static const char *const by_cols[] = {"requests", "requests_per_s", "status_5xx", "p99_ms"};
        section(r, by == QS_BY_WORKER ? "by_worker" : "by_minute", true);
        for (size_t i = 0; i < s->nparts; i++) {
            const qs_part *pt = &s->parts[i];
            double ps = pt->last_ms > pt->first_ms ? (double)(pt->last_ms - pt->first_ms) / 1000 : 0;
            double n = (double)quicctl_summary_requests(&pt->m, -1, -1);
            double p99 = -1;
            for (unsigned p = 0; p < QD_MDN_PROTO; p++) {
                double q = ms_or(qd_metrics_quantile(&pt->m, QD_M1(REQUEST_SECONDS, p), 0.99));
                p99 = q > p99 ? q : p99;
            }
            double v[4] = {n, ps > 0 ? n / ps : 0, (double)quicctl_summary_requests(&pt->m, -1, 4), p99};
            item(r, by == QS_BY_WORKER ? "by_worker" : "by_minute", by == QS_BY_WORKER ? "worker" : "minute",
                 pt->key, by_cols, v, 4);
        }
        section_end(r, true);
    }
    if (by == QS_BY_ROUTE) {
        static const char *const route_cols[] = {
            "requests",   "requests_per_s", "status_1xx", "status_2xx", "status_3xx", "status_4xx",
            "status_5xx", "status_none",    "bytes_in",   "bytes_out",  "p50_ms",     "p99_ms"};
        section(r, "by_route", true);
        for (size_t i = 0; i < s->nroutes; i++) {
            const qs_route *rt = &s->routes[i];
            double rs =
                rt->last_ms > rt->first_ms ? (double)(rt->last_ms - rt->first_ms) / 1000 : 0;
            double n = (double)quicctl_route_requests(rt, -1);
            double v[12] = {n, rs > 0 ? n / rs : 0};
            for (unsigned c = 0; c < QD_MDN_CLASS; c++)
                v[2 + c] = (double)quicctl_route_requests(rt, (int)c);
            v[8] = (double)rt->v[QD_ROUTE_BYTES_IN];
            v[9] = (double)rt->v[QD_ROUTE_BYTES_OUT];
            v[10] = ms_or(qd_metrics_hist_quantile(&rt->v[QD_ROUTE_DURATION], 0.5));
            v[11] = ms_or(qd_metrics_hist_quantile(&rt->v[QD_ROUTE_DURATION], 0.99));
            item(r, "by_route", "route", rt->name, route_cols, v, 12);
        }
        section_end(r, true);
    }
}

#define CONN_WIN " FROM connections WHERE start_ms >= ?1 AND start_ms < ?2"
/* the requests rows of the window: the view window_requests (requests_view) */
#define REQ_WIN " FROM window_requests WHERE 1"

/*
 * requests_view - the temporary view window_requests: the requests rows
 * whose time_ms lies in the window. From schema version 9 requests has
 * no index on time_ms: request_seconds says which ids hold each second's
 * rows (stats_db.c), and a window reads those ranges of ids.
 */
static void requests_view(report *r, int version)
{
    char sql[800];
    long long from = r->from_ms > 0 ? r->from_ms : 0, to = r->to_ms;

    if (version >= 9)
        snprintf(sql, sizeof(sql),
                 "CREATE TEMP VIEW window_requests AS SELECT r.* FROM request_seconds s CROSS JOIN "
                 "requests r ON r.id BETWEEN s.first_id AND s.last_id AND r.time_ms / 1000 = "
                 "s.second WHERE s.second BETWEEN %lld AND %lld AND r.time_ms >= %lld AND "
                 "r.time_ms < %lld",
                 from / 1000, (to - 1) / 1000, (long long)r->from_ms, to);
    else
        snprintf(sql, sizeof(sql),
                 "CREATE TEMP VIEW window_requests AS SELECT * FROM requests WHERE time_ms >= "
                 "%lld AND time_ms < %lld",
                 (long long)r->from_ms, to);
    if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        quicctl_die("stats database: %s", sqlite3_errmsg(r->db));
}

/*
 * text_rows - for a person, after the summary: what only the rows of
 * requests and connections tell (exact status codes, the top paths, the
 * upstream servers), with what request_history keeps of them
 */
static void text_rows(report *r, int version, const qd_conf *conf)
{
    double nreq = scalar(r, "SELECT count(*)" REQ_WIN);

    printf("\nRequest rows (request_history = %s): %.0f in the window\n",
           conf->request_history ? conf->request_history : "all", nreq);
    if (nreq == 0)
        return;
    static const char *const status_cols[] = {"status", "count", "bytes_out"};
    rows(r, "status_codes",
         "SELECT CAST(status AS TEXT), count(*), total(bytes_out)" REQ_WIN
         " GROUP BY status ORDER BY status",
         status_cols, 3);
    static const char *const path_cols[] = {"path", "count", "bytes_out"};
    rows(r, "top_paths",
         "SELECT path, count(*) AS n, total(bytes_out)" REQ_WIN
         " GROUP BY path ORDER BY n DESC, path LIMIT 10",
         path_cols, 3);
    static const char *const up_cols[] = {"upstream", "requests", "no_answer"};
    if (version >= 6)
        rows(r, "upstreams",
             "SELECT upstream, count(*), total(upstream_status = 0)" REQ_WIN
             " AND upstream IS NOT NULL GROUP BY upstream ORDER BY upstream",
             up_cols, 3);
}

int quicctl_report(quicctl *q, int argc, char **argv)
{
    report r = {.fmt = OUT_TEXT};
    int64_t now = (int64_t)qd_time_real_ms(), since = 3600 * 1000;
    bool have_from = false, have_to = false;
    int by = QS_BY_NONE;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && r.fmt == OUT_TEXT)
            r.fmt = OUT_JSON;
        else if (strcmp(argv[i], "--csv") == 0 && r.fmt == OUT_TEXT)
            r.fmt = OUT_CSV;
        else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
            if (quicctl_parse_duration(argv[++i], &since) < 0)
                quicctl_die("--since %s: want a duration such as 90s, 15m, 1h or 7d", argv[i]);
        } else if (strcmp(argv[i], "--by") == 0 && i + 1 < argc && by == QS_BY_NONE) {
            i++;
            by = strcmp(argv[i], "worker") == 0     ? QS_BY_WORKER
                 : strcmp(argv[i], "protocol") == 0 ? QS_BY_PROTOCOL
                 : strcmp(argv[i], "minute") == 0   ? QS_BY_MINUTE
                 : strcmp(argv[i], "route") == 0    ? QS_BY_ROUTE
                                                    : -1;
            if (by < 0)
                quicctl_die("--by %s: want worker, protocol, minute or route", argv[i]);
        } else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
            if (quicctl_parse_time(argv[++i], &r.from_ms) < 0)
                quicctl_die("--from %s: want YYYY-MM-DD[THH:MM:SS] (UTC) or @unix-seconds",
                            argv[i]);
            have_from = true;
        } else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
            if (quicctl_parse_time(argv[++i], &r.to_ms) < 0)
                quicctl_die("--to %s: want YYYY-MM-DD[THH:MM:SS] (UTC) or @unix-seconds", argv[i]);
            have_to = true;
        } else {
            quicctl_die("report: unknown or repeated option \"%s\"; usage: quicctl report "
                        "[--since DURATION | --from T [--to T]] "
                        "[--by worker|protocol|minute|route] "
                        "[--json | --csv]",
                        argv[i]);
        }
    }
    if (!have_to)
        r.to_ms = now + 1;
    if (!have_from)
        r.from_ms = r.to_ms - since;
    if (r.from_ms >= r.to_ms)
        quicctl_die("report: the window is empty (--from is not before --to)");

    const char *path = q->conf.stats_database;
    if (sqlite3_open_v2(path, &r.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        quicctl_die("cannot open stats database %s: %s", path,
                    r.db ? sqlite3_errmsg(r.db) : "out of memory");
    sqlite3_busy_timeout(r.db, 5000);
    sqlite3_stmt *st;
    int version = -1;
    if (sqlite3_prepare_v2(r.db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        quicctl_die("stats database %s: %s", path, sqlite3_errmsg(r.db));
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    /* version 4 only dropped an index; 5 added protocol, 6 upstream (see below) */
    if (version < 3)
        quicctl_die("stats database %s has schema version %d; start this quicd once to migrate "
                    "it to version 6",
                    path, version);

    requests_view(&r, version);
    /* A read transaction: every number below comes from one snapshot. */
    sqlite3_exec(r.db, "BEGIN", NULL, NULL, NULL);

    /* What the metrics counted (version 7): every request, whatever request_history kept. */
    quicctl_summary sum;
    if (version < 7 || quicctl_summary_load(r.db, r.from_ms, r.to_ms, by, &sum) < 0)
        memset(&sum, 0, sizeof(sum));
    if (by == QS_BY_ROUTE)
        quicctl_summary_routes(r.db, r.from_ms, r.to_ms, &sum); /* a bad row: counted, skipped */
    if (r.fmt == OUT_TEXT) {
        quicctl_summary_text(&sum, &q->conf, r.from_ms, r.to_ms, by);
        text_rows(&r, version, &q->conf);
        quicctl_summary_free(&sum);
        sqlite3_exec(r.db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(r.db);
        return 0;
    }

    section(&r, "window", false);
    value(&r, "window", "from_ms", (double)r.from_ms, true);
    value(&r, "window", "to_ms", (double)r.to_ms, true);
    section_end(&r, false);

    double nconn = scalar(&r, "SELECT count(*)" CONN_WIN);
    double nhs = scalar(&r, "SELECT count(*)" CONN_WIN " AND handshake_us IS NOT NULL");
    section(&r, "connections", false);
    value(&r, "connections", "count", nconn, true);
    value(&r, "connections", "handshakes", nhs, true);
    value(&r, "connections", "handshake_p50_ms", percentile(&r, 0.50, nhs), false);
    value(&r, "connections", "handshake_p90_ms", percentile(&r, 0.90, nhs), false);
    value(&r, "connections", "handshake_p99_ms", percentile(&r, 0.99, nhs), false);
    double resumed = scalar(&r, "SELECT total(resumed)" CONN_WIN);
    double early = scalar(&r, "SELECT total(early_data)" CONN_WIN);
    value(&r, "connections", "resumed", resumed, true);
    value(&r, "connections", "resumed_share", nhs > 0 ? resumed / nhs : 0, false);
    value(&r, "connections", "early_data", early, true);
    value(&r, "connections", "early_data_share", nhs > 0 ? early / nhs : 0, false);
    value(&r, "connections", "retry", scalar(&r, "SELECT total(retry)" CONN_WIN), true);
    value(&r, "connections", "migrations", scalar(&r, "SELECT total(migrations)" CONN_WIN), true);
    value(&r, "connections", "migrated_connections",
          scalar(&r, "SELECT count(*)" CONN_WIN " AND migrations > 0"), true);
    value(&r, "connections", "bytes_in", scalar(&r, "SELECT total(bytes_in)" CONN_WIN), true);
    value(&r, "connections", "bytes_out", scalar(&r, "SELECT total(bytes_out)" CONN_WIN), true);
    value(&r, "connections", "pkts_in", scalar(&r, "SELECT total(pkts_in)" CONN_WIN), true);
    value(&r, "connections", "pkts_out", scalar(&r, "SELECT total(pkts_out)" CONN_WIN), true);
    section_end(&r, false);

    section(&r, "requests", false);
    value(&r, "requests", "count", scalar(&r, "SELECT count(*)" REQ_WIN), true);
    value(&r, "requests", "bytes_in", scalar(&r, "SELECT total(bytes_in)" REQ_WIN), true);
    value(&r, "requests", "bytes_out", scalar(&r, "SELECT total(bytes_out)" REQ_WIN), true);
    value(&r, "requests", "duration_avg_ms", scalar(&r, "SELECT avg(duration_us)" REQ_WIN) / 1000.0,
          false);
    value(&r, "requests", "ttfb_avg_ms", scalar(&r, "SELECT avg(ttfb_us)" REQ_WIN) / 1000.0, false);
    section_end(&r, false);

    static const char *const status_cols[] = {"status", "count", "bytes_out"};
    rows(&r, "status_codes",
         "SELECT CAST(status AS TEXT), count(*), total(bytes_out)" REQ_WIN
         " GROUP BY status ORDER BY status",
         status_cols, 3);
    static const char *const path_cols[] = {"path", "count", "bytes_out"};
    rows(&r, "top_paths",
         "SELECT path, count(*) AS n, total(bytes_out)" REQ_WIN
         " GROUP BY path ORDER BY n DESC, path LIMIT 10",
         path_cols, 3);
    static const char *const close_cols[] = {"reason", "count"};
    rows(&r, "close_reasons",
         "SELECT close_by || ':' || close_reason || CASE WHEN error_code > 0 THEN ':0x' || "
         "printf('%x', error_code) ELSE '' END AS k, count(*) AS n" CONN_WIN
         " GROUP BY k ORDER BY n DESC, k",
         close_cols, 2);
    static const char *const worker_cols[] = {"worker", "connections", "requests", "bytes_out"};
    rows(&r, "workers",
         "SELECT CAST(w AS TEXT), total(c), total(q), total(b) FROM ("
         " SELECT worker AS w, 1 AS c, 0 AS q, bytes_out AS b" CONN_WIN
         " UNION ALL SELECT worker, 0, 1, 0" REQ_WIN ") GROUP BY w ORDER BY w",
         worker_cols, 4);
    /*
     * Per protocol: the three always (zeros included, so a script finds
     * them), then anything else stored. bytes_out as in workers: what the
     * connections sent; errors are requests answered 4xx or 5xx.
     */
    static const char *const proto_cols[] = {"protocol",  "connections", "requests",
                                             "bytes_out", "errors_4xx",  "errors_5xx"};
    char proto_sql[1024];
    const char *pcol = version >= 5 ? "protocol" : "'h3'";
    snprintf(proto_sql, sizeof(proto_sql),
             "SELECT p, total(c), total(q), total(b), total(e4), total(e5) FROM ("
             " SELECT 'h3' AS p, 0 AS c, 0 AS q, 0 AS b, 0 AS e4, 0 AS e5"
             " UNION ALL SELECT 'h2', 0, 0, 0, 0, 0 UNION ALL SELECT 'http/1.1', 0, 0, 0, 0, 0"
             " UNION ALL SELECT %s, 1, 0, bytes_out, 0, 0" CONN_WIN
             " UNION ALL SELECT %s, 0, 1, 0, status BETWEEN 400 AND 499, status BETWEEN 500 AND "
             "599" REQ_WIN ") GROUP BY p ORDER BY CASE p WHEN 'h3' THEN 0 WHEN 'h2' THEN 1 "
             "WHEN 'http/1.1' THEN 2 ELSE 3 END, p",
             pcol, pcol);
    rows(&r, "protocols", proto_sql, proto_cols, 6);

    /*
     * Per upstream server (schema version 6): proxied requests, their
     * upstream answers by status class, those with no answer (a refused
     * connection, a timeout: upstream_status 0), and the upstream time's
     * nearest-rank p50 and p99 as percentile() takes them, over the rows
     * that have a time (NULLS LAST: ranks 0 to n - 1 are those). Empty for
     * an older database.
     */
    static const char *const up_cols[] = {"upstream",   "requests",   "status_2xx",
                                          "status_3xx", "status_4xx", "status_5xx",
                                          "no_answer",  "p50_ms",     "p99_ms"};
    if (version >= 6) {
        rows(&r, "upstreams",
             "SELECT upstream, count(*), total(s BETWEEN 200 AND 299), "
             "total(s BETWEEN 300 AND 399), total(s BETWEEN 400 AND 499), "
             "total(s BETWEEN 500 AND 599), total(s = 0), "
             "max(CASE WHEN i = CAST(0.50 * (n - 1) + 0.5 AS INTEGER) THEN t END), "
             "max(CASE WHEN i = CAST(0.99 * (n - 1) + 0.5 AS INTEGER) THEN t END) FROM ("
             " SELECT upstream, upstream_status AS s, upstream_ms AS t,"
             " row_number() OVER (PARTITION BY upstream ORDER BY upstream_ms NULLS LAST) - 1 AS i,"
             " count(upstream_ms) OVER (PARTITION BY upstream) AS n" REQ_WIN
             " AND upstream IS NOT NULL) GROUP BY upstream ORDER BY upstream",
             up_cols, 9);
    } else {
        section(&r, "upstreams", true);
        section_end(&r, true);
    }

    section(&r, "process", false);
    value(&r, "process", "restarts",
          scalar(&r, "SELECT count(*) FROM process_events WHERE event = 'restart' AND time_ms >= "
                     "?1 AND time_ms < ?2"),
          true);
    value(&r, "process", "reloads",
          scalar(&r, "SELECT count(*) FROM process_events WHERE event = 'reload' AND time_ms >= "
                     "?1 AND time_ms < ?2"),
          true);
    value(&r, "process", "dropped_records",
          scalar(&r, "SELECT (SELECT total(drops) FROM samples WHERE time_ms >= ?1 AND "
                     "time_ms < ?2) + (SELECT total(records) FROM losses WHERE time_ms >= ?1 "
                     "AND time_ms < ?2)"),
          true);
    section_end(&r, false);
    machine_summary(&r, &sum, by);
    quicctl_summary_free(&sum);
    if (r.fmt == OUT_JSON)
        printf("\n}\n");
    sqlite3_exec(r.db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(r.db);
    return 0;
}
