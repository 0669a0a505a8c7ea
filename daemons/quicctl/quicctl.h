/* SPDX-License-Identifier: MIT */
#ifndef QD_QUICCTL_H
#define QD_QUICCTL_H

#include <stdbool.h>
#include <stdint.h>

#include "qd_buf.h"
#include "qd_conf.h"
#include "qd_proxy.h"
#include "qd_ipc.h"
#include "qd_metrics.h"

#include <sqlite3.h>

typedef struct quicctl {
    const char *conf_path;
    qd_conf conf;
    qd_proxy proxy; /* the proxy table, once load_conf checked it (strict) */
    char sock_path[4096];
    char pid_path[4096];
} quicctl;

/* quicctl.c */
void quicctl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int quicctl_connect(quicctl *q, bool quiet);
int quicctl_request(int fd, uint16_t type, qd_ipc_msg *reply, int timeout_ms);

/* quicctl_status.c */
int quicctl_status(quicctl *q, bool json);
/* a status line's key=value pairs (quicctl_split_line), looked up with quicctl_get */
#define QUICCTL_MAX_FIELDS 64 /* a worker's line has about 40 */
typedef struct quicctl_kv {
    char key[32];
    char val[64];
} quicctl_kv;
int quicctl_split_line(char *line, quicctl_kv *out);
const char *quicctl_get(const quicctl_kv *f, int n, const char *key);

/* quicctl_top.c: a live view of the workers, refreshed every second */
int quicctl_top(quicctl *q, int argc, char **argv);
/* quicctl_conns lists the workers' live connections (a table, or JSON). */
int quicctl_conns(quicctl *q, bool json);

/* quicctl_upstreams.c: the upstream servers' state (a table, or JSON) */
int quicctl_upstreams(quicctl *q, bool json);

/* quicctl_metrics.c: the metrics in the Prometheus text format */
int quicctl_metrics(quicctl *q);

/* quicctl_summary.c: metric_intervals added up over a window, and the report for a person */
enum { QS_BY_NONE, QS_BY_WORKER, QS_BY_PROTOCOL, QS_BY_MINUTE, QS_BY_ROUTE };
/* one route's rows of route_intervals added up (--by route) */
typedef struct qs_route {
    char name[QD_ROUTE_NAME_MAX];
    uint64_t v[QD_ROUTE_NSLOTS]; /* qd_metrics.h: requests by class, bytes, durations */
    int64_t first_ms, last_ms;
    uint64_t rows;
} qs_route;
typedef struct qs_part {
    char key[40]; /* "worker 1", "2026-12-07 14:05" */
    qd_metrics m;
    int64_t first_ms, last_ms;
    uint64_t rows;
    bool first;
} qs_part;
typedef struct quicctl_summary {
    qd_metrics m;              /* counters summed; gauges at their highest (GAUGE_MIN: lowest) */
    int64_t first_ms, last_ms; /* the time the rows cover */
    uint64_t rows, bad_rows;
    qs_part *parts; /* --by worker or minute */
    size_t nparts;
    qs_route *routes; /* --by route: most requests first */
    size_t nroutes;
    bool has_routes; /* the database has route_intervals (version 8) */
} quicctl_summary;
/* quicctl_summary_load reads the window's rows; 0, or -1 when the table is missing. */
int quicctl_summary_load(sqlite3 *db, int64_t from, int64_t to, int by, quicctl_summary *s);
void quicctl_summary_text(const quicctl_summary *s, const qd_conf *conf, int64_t from, int64_t to,
                          int by);
void quicctl_summary_free(quicctl_summary *s);
/*
 * quicctl_summary_routes adds up the window's rows of route_intervals per
 * route into s->routes (none, and has_routes false, without the table).
 * Returns 0, or -1 when a row cannot be read.
 */
int quicctl_summary_routes(sqlite3 *db, int64_t from, int64_t to, quicctl_summary *s);
/* quicctl_route_requests: a route's requests (cls: a CLASS index, -1: all of them) */
uint64_t quicctl_route_requests(const qs_route *r, int cls);
/* quicctl_summary_requests: requests of a protocol and class (-1: all of them) */
uint64_t quicctl_summary_requests(const qd_metrics *m, int proto, int cls);

/* quicctl_report.c */
/* quicctl_report prints the stats summary; |argv| are the options after "report". */
int quicctl_report(quicctl *q, int argc, char **argv);
/* quicctl_parse_duration parses "90s", "15m", "1h", "7d", "500ms". Returns 0 or -1. */
int quicctl_parse_duration(const char *s, int64_t *ms);
/* quicctl_parse_time parses YYYY-MM-DD[THH:MM:SS[Z]] (UTC) or @unix-seconds. Returns 0 or -1. */
int quicctl_parse_time(const char *s, int64_t *ms);
#endif /* QD_QUICCTL_H */
