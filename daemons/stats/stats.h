/* SPDX-License-Identifier: MIT */
#ifndef QD_STATS_H
#define QD_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>
#include <uv.h>

#include "qd_buf.h"
#include "qd_child.h"
#include "qd_metrics.h"

#define STATS_SCHEMA_VERSION 9
/*
 * Records per transaction at most: a commit costs stats some 250,000
 * instructions and a few dozen system calls whatever its size (1000: 1.94
 * us per request record, 4096: 1.60, 8192: 1.59, stats-rows), and a kill
 * -9 loses the batch in memory. 4096 request rows (about 130 pages) also
 * stay well within SQLite's default page cache (2 MB), which a larger
 * transaction spills (its pages written twice).
 */
#define STATS_BATCH_MAX 4096
#define STATS_ROW_MAX 8192         /* bytes of a pending row at most (stats_row.c) */
/* columns of a row (parameters of its INSERT) by table */
#define STATS_EVENT_COLS 9
#define STATS_CONN_COLS 29
#define STATS_REQ_COLS 15
#define STATS_SECONDS_MAX 256 /* request_seconds rows one batch writes from C at most */
#define STATS_SAMPLE_COLS 13
#define STATS_LOSS_COLS 5
#define STATS_PENDING_MAX (64u << 20) /* bytes of records waiting for a busy database */
#define STATS_BUSY_MS 2000         /* wait this long for the other writer's batch */
#define STATS_CLOSE_BUSY_MS 10000  /* and this long for the last batch at stop */
#define STATS_CTL_PART 60000     /* bytes of text per quicctl metrics reply at most */
#define STATS_PROTO_MAX 32         /* a protocol column value is shorter than this */
#define STATS_BATCH_MS 1000        /* a batch is committed at least this often */
#define STATS_READ_MS 10           /* the records channel rests this long after a drain */
#define STATS_READ_BUDGET 4096     /* datagrams of the records channel read in one go at most */
#define STATS_REOPEN_MS 10000      /* retry an unavailable database this often */
#define STATS_PRUNE_MS (3600 * 1000) /* retention runs this often (and at open) */

/* What the /metrics endpoint did (stats_http.c), counted since stats started. */
typedef struct stats_http_counts {
    uint64_t requests;      /* scrapes answered 200 */
    uint64_t refused_peers; /* connections closed at once: the peer is not in metrics_allow */
    uint64_t refused_busy;  /* ... STATS_HTTP_MAX_CONNS connections were open */
    uint64_t unauthorized;  /* 401: no or a wrong bearer token */
    uint64_t unavailable;   /* 503: a token is configured but could not be read */
    uint64_t bad_requests;  /* 400, 431 */
    uint64_t timeouts;      /* cut off at a deadline: a head or an answer too slow */
} stats_http_counts;

typedef struct stats_http stats_http;

typedef struct stats {
    qd_child child;
    sqlite3 *db;
    char db_path[4096]; /* the path inside the chroot, or empty: stats_database */
    sqlite3_stmt *ins[5]; /* the INSERT of a table's rows, by stats_table (stats_db.c) */
    qd_chan *in;             /* the records channel (QD_FD_STATS, DGRAM) */
    qd_chan *metrics_reply;  /* a quicctl metrics answer the client is still taking */
    sqlite3_stmt *max_req, *ins_second; /* request_seconds (stats_db.c) */
    uv_timer_t batch_timer, reopen_timer, prune_timer;
    qd_buf pending; /* the rows of the next batch (stats_row.c) */
    uint32_t pending_count;
    uint32_t pending_rows[5]; /* of them, by stats_table */
    bool failing;     /* writes fail now; logged once */
    bool busy_logged; /* the other writer held the lock too long; logged once */
    bool open_logged;
    uint64_t records, batches;
    uint64_t write_errors, lost_records, bad_records;
    uint64_t lost_reported; /* of lost_records, already a row of losses */
    /* metrics (stats_metrics.c) */
    qd_metrics totals;    /* every counter's running total (gauges: see stats_metrics.c) */
    qd_metrics persisted; /* of totals, what the database has */
    struct stats_source *sources;
    bool metrics_loaded;  /* the database's totals were read (once per process) */
    uint64_t started_ms;
    uint64_t bad_metrics;
    sqlite3_stmt *add_total, *put_source, *del_source, *add_interval;
    qd_buf intervals;        /* rows of metric_intervals not yet written (stats_metrics.c) */
    uint32_t nintervals;
    uint64_t lost_intervals; /* dropped: the database was unavailable too long */
    qd_buf route_rows;       /* rows of route_intervals not yet written (stats_metrics.c) */
    uint32_t nroute_rows;
    sqlite3_stmt *add_route;
    stats_http *http;       /* the /metrics endpoint (stats_http.c) */
    stats_http_counts http_counts;
} stats;

/* stats_db.c */

/*
 * stats_db_open opens (creating or migrating) the database at |path|.
 * Returns 0, or -1 after logging why (the database is then closed).
 */
int stats_db_open(stats *s, const char *path);
/*
 * stats_db_close writes the pending batch (waiting up to
 * STATS_CLOSE_BUSY_MS for the write lock) and closes the database.
 */
void stats_db_close(stats *s);
/*
 * stats_db_record checks one decoded record (QD_MSG_REC_*) and adds it to
 * the pending batch, kept in memory; a full batch is written at once.
 * Returns 0, or -1 when the record is malformed (the caller logs and drops
 * it). With no database open the record is counted as lost.
 */
int stats_db_record(stats *s, const qd_ipc_msg *m);
/*
 * stats_db_batch adds each record of the QD_MSG_REC_BATCH |batch| with
 * stats_db_record; one that does not decode, is not a REC_CONN, REC_REQUEST
 * or REC_SAMPLE, or is malformed is logged, counted in bad_records and
 * dropped alone.
 */
void stats_db_batch(stats *s, const qd_ipc_msg *batch);
/*
 * stats_db_commit writes the pending batch in one transaction, holding the
 * write lock only meanwhile. Returns 0, or -1 when the database is busy
 * (the batch waits for the next call) or the write failed (the batch is
 * lost, counted and logged).
 */
int stats_db_commit(stats *s);
/*
 * stats_db_own_losses writes the records this daemon lost and has not yet
 * reported as a row of losses, outside any batch; a failure leaves them
 * for the next call (after the next successful commit or open).
 */
void stats_db_own_losses(stats *s);
/* stats_db_prune deletes rows older than the retention periods. */
void stats_db_prune(stats *s, int64_t retention_ms, int64_t history_ms);
/*
 * stats_db_schema_step returns the SQL that takes the schema from
 * |version| - 1 to |version| (1 to STATS_SCHEMA_VERSION; stats_db_open
 * runs them in turn), or NULL for any other |version|. For tests that
 * build a database of an older version.
 */
const char *stats_db_schema_step(int version);

/* stats_row.c: a record's columns, checked on arrival, kept until the commit binds them */

/* The table a row goes to: the index of its INSERT in stats.ins. */
typedef enum stats_table {
    STATS_T_EVENT,
    STATS_T_CONN,
    STATS_T_REQUEST,
    STATS_T_SAMPLE,
    STATS_T_LOSS,
    STATS_T_COUNT
} stats_table;

typedef struct stats_row stats_row;

/*
 * stats_row_add checks the decoded record |m| (QD_MSG_REC_*) and appends
 * its columns to |rows| as one row of at most STATS_ROW_MAX bytes.
 * Returns the stats_table it goes to, or -1 when |m| is malformed or not
 * a record (|rows| is then unchanged).
 */
int stats_row_add(qd_buf *rows, const qd_ipc_msg *m);
/*
 * stats_row_next returns the row at |*pos| in |rows| (start with 0) and
 * moves |*pos| to the next, or returns NULL after the last.
 */
const stats_row *stats_row_next(const qd_buf *rows, size_t *pos);
/* stats_row_table returns the table of |r|; stats_row_columns its column count. */
stats_table stats_row_table(const stats_row *r);
int stats_row_columns(const stats_row *r);
/* stats_row_int returns column |col| (from 1) of |r| when it is an integer, else 0. */
int64_t stats_row_int(const stats_row *r, int col);
/*
 * stats_row_bind binds column c of |r| to parameter |base| + c of |st|
 * (c from 1), every one of them (NULL included). The strings are bound
 * in place (SQLITE_STATIC): the buffer that holds |r| must not change
 * until |st| is reset.
 */
void stats_row_bind(sqlite3_stmt *st, int base, const stats_row *r);
/*
 * stats_row_register makes the rows in |rows| (borrowed: it must outlive
 * |db|'s statements that read it) readable on |db| as the eponymous
 * virtual table stats_rows: columns c1 to c29 (a row's columns, NULL past
 * its last) and the hidden column tbl (its stats_table), so that "SELECT
 * c1, c2 FROM stats_rows WHERE tbl = 1" reads the first two columns of
 * every row of table 1, in order. Read only. Returns 0, or -1.
 */
int stats_row_register(sqlite3 *db, const qd_buf *rows);

/* stats_http.c: GET /metrics on the socket the master binds (metrics_listen) */

/* stats_http_init prepares the endpoint (off until a configuration says otherwise). */
void stats_http_init(stats *s);
/*
 * stats_http_message takes QD_MSG_METRICS_HTTP |m| (its descriptors: the
 * listening socket, the token file) for the CONFIG that follows; a
 * malformed one is logged, counted and dropped with its descriptors.
 */
void stats_http_message(stats *s, qd_ipc_msg *m);
/*
 * stats_http_configure applies what the last QD_MSG_METRICS_HTTP brought
 * under |conf|: serves the new socket instead of the old one (or none),
 * reads the token. It cannot fail: a token that cannot be read is logged
 * and every scrape is refused with 503 until the next configuration.
 */
void stats_http_configure(stats *s, const qd_conf *conf);

/* stats_metrics.c */

/*
 * stats_metrics_receive folds a QD_MSG_METRICS (a process's running
 * totals) into s->totals. Returns 0, or -1 when it is malformed or of
 * another table (the caller logs and drops it).
 */
int stats_metrics_receive(stats *s, const qd_ipc_msg *m);
/*
 * stats_metrics_load adds the database's totals and reporting processes
 * to memory, once per process (after the first successful open).
 */
void stats_metrics_load(stats *s);
/* stats_metrics_dirty: there are totals or sources the database does not have */
bool stats_metrics_dirty(stats *s);
/*
 * stats_metrics_write writes them inside the caller's transaction;
 * stats_metrics_committed notes that it committed. 0, or -1 on an error.
 */
int stats_metrics_write(stats *s);
void stats_metrics_committed(stats *s);
/* stats_metrics_close finalizes its statements (the database closes). */
void stats_metrics_close(stats *s);
/* stats_metrics_forget frees what it knows of the reporting processes (for tests). */
void stats_metrics_forget(stats *s);
/*
 * stats_metrics_text appends the metrics in the Prometheus text format
 * (for /metrics and quicctl metrics).
 */
void stats_metrics_text(stats *s, qd_buf *out);

#endif /* QD_STATS_H */
