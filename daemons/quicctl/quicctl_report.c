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
 *	dropped on the way to the database. Text for people; --json (one
 *	object) and --csv (section,key,value lines) for machines. A version 3
 *	or 4 database, from before the protocol column, is read as all h3 (it
 *	only ever held HTTP/3); one older than version 6 lists no upstreams.
 * DIAGNOSTICS
 *	A missing or unreadable database, or one with an older schema, is
 *	one line on stderr and exit status 1.
 */
#include "config.h"

/* system */
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

#define CONN_WIN " FROM connections WHERE start_ms >= ?1 AND start_ms < ?2"
#define REQ_WIN " FROM requests WHERE time_ms >= ?1 AND time_ms < ?2"

int quicctl_report(quicctl *q, int argc, char **argv)
{
    report r = {.fmt = OUT_TEXT};
    int64_t now = (int64_t)qd_time_real_ms(), since = 3600 * 1000;
    bool have_from = false, have_to = false;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && r.fmt == OUT_TEXT)
            r.fmt = OUT_JSON;
        else if (strcmp(argv[i], "--csv") == 0 && r.fmt == OUT_TEXT)
            r.fmt = OUT_CSV;
        else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
            if (quicctl_parse_duration(argv[++i], &since) < 0)
                quicctl_die("--since %s: want a duration such as 90s, 15m, 1h or 7d", argv[i]);
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
                        "[--since DURATION | --from T [--to T]] [--json | --csv]",
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

    /* A read transaction: every number below comes from one snapshot. */
    sqlite3_exec(r.db, "BEGIN", NULL, NULL, NULL);

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
    if (r.fmt == OUT_JSON)
        printf("\n}\n");
    sqlite3_exec(r.db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(r.db);
    return 0;
}
