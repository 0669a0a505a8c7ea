/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	stats_db - the SQLite database: schema, migrations, batched writes
 * SYNOPSIS
 *	stats_db_open(), stats_db_close(), stats_db_record(), stats_db_commit(),
 *	stats_db_batch(), stats_db_prune(), stats_db_schema_step()
 * DESCRIPTION
 *	The stats daemon is the database's only writer (two of them for the
 *	moment a reload or an upgrade overlaps two generations). The file is
 *	opened in WAL mode (readers such as quicctl report and the sqlite3
 *	shell never block it) with synchronous=NORMAL; the schema carries its version in
 *	PRAGMA user_version and is created or migrated at open, each step in
 *	its own transaction (v0 -> v1 -> ... -> v9). All writes use prepared
 *	statements.
 *
 *	Records are checked on arrival and kept in memory as rows of values
 *	(stats_row.c: each record is decoded and checked once). The batch is
 *	written in one transaction after STATS_BATCH_MAX records or by the
 *	once-a-second timer in stats.c, whichever comes first, so the write
 *	lock is held only while a batch is written: the rows of the busy
 *	tables (requests, connections) by one INSERT ... SELECT each from the
 *	virtual table stats_rows over them, then the request_seconds rows
 *	(v9) of the new requests rows; the other rows one by one. During a reload or an
 *	upgrade the stats daemons of two generations write the same file:
 *	each waits (busy_timeout) for the other's short transaction, and a
 *	batch that still finds the file busy waits in memory for the next
 *	try (up to STATS_PENDING_MAX bytes). A kill -9 loses at most the
 *	pending batch; WAL keeps the file consistent.
 *
 *	Schema version 9 (documented in quicd.conf(5), STATS DATABASE):
 *	  process_events (v1), connections, requests, samples (v2), losses (v3),
 *	  requests without its conn_id index (v4), connections.protocol and
 *	  requests.protocol (v5: "h3", "h2" or "http/1.1", from F_PROTO),
 *	  requests.upstream, upstream_status, upstream_ms (v6: a proxied
 *	  request's F_SERVER, F_UP_STATUS, F_UP_TIME_US; NULL otherwise),
 *	  metric_totals and metric_sources (v7: stats_metrics.c),
 *	  route_intervals (v8: the aggregates by route, stats_metrics.c)
 *	  request_seconds instead of the requests time_ms index (v9)
 *
 *	Records that never reached the database are counted where they were
 *	lost and the counts written as rows of losses: the master's (a full
 *	channel) arrive as QD_MSG_REC_LOSS, the stats daemon's own (a write
 *	that failed, a database that could not be opened) are written by
 *	stats_db_own_losses() once writing works again. Workers carry theirs
 *	in samples.drops.
 * DIAGNOSTICS
 *	Errors are logged with sqlite3_errmsg; a failed write (full disk,
 *	read-only file) rolls the batch back, is counted, and logs one line
 *	until writes succeed again; never fatal.
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <string.h>

/* libraries */
#include <sqlite3.h>

/* libshared */
#include "qd_err.h"
#include "qd_ipc.h"
#include "qd_log.h"
#include "qd_proc.h"
#include "qd_time.h"

/* local */
#include "stats.h"

static const char *const schema_v1 =
    "CREATE TABLE IF NOT EXISTS process_events ("
    "  id INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  instance INTEGER,"
    "  pid INTEGER,"
    "  generation INTEGER,"
    "  restarts INTEGER,"
    "  exit_status INTEGER,"
    "  signal INTEGER);"
    "CREATE INDEX IF NOT EXISTS process_events_time ON process_events(time_ms);";

static const char *const schema_v2 =
    "CREATE TABLE IF NOT EXISTS connections ("
    "  id INTEGER PRIMARY KEY,"
    "  conn_id TEXT NOT NULL,"
    "  worker INTEGER NOT NULL,"
    "  peer TEXT,"
    "  paths TEXT,"
    "  local TEXT,"
    "  start_ms INTEGER NOT NULL,"
    "  end_ms INTEGER NOT NULL,"
    "  handshake_us INTEGER,"
    "  alpn TEXT,"
    "  cipher TEXT,"
    "  quic_version INTEGER,"
    "  resumed INTEGER NOT NULL,"
    "  early_data INTEGER NOT NULL,"
    "  retry INTEGER NOT NULL,"
    "  bytes_in INTEGER, bytes_out INTEGER, pkts_in INTEGER, pkts_out INTEGER,"
    "  pkts_lost INTEGER,"
    "  srtt_us INTEGER, min_rtt_us INTEGER, cwnd INTEGER, cc TEXT,"
    "  migrations INTEGER, streams INTEGER,"
    "  close_by TEXT, close_reason TEXT, error_code INTEGER);"
    "CREATE INDEX IF NOT EXISTS connections_start ON connections(start_ms);"
    "CREATE INDEX IF NOT EXISTS connections_conn_id ON connections(conn_id);"
    "CREATE TABLE IF NOT EXISTS requests ("
    "  id INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  conn_id TEXT NOT NULL,"
    "  worker INTEGER NOT NULL,"
    "  stream_id INTEGER NOT NULL,"
    "  method TEXT NOT NULL,"
    "  path TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  bytes_in INTEGER, bytes_out INTEGER, duration_us INTEGER, ttfb_us INTEGER);"
    "CREATE INDEX IF NOT EXISTS requests_time ON requests(time_ms);"
    "CREATE INDEX IF NOT EXISTS requests_conn_id ON requests(conn_id);"
    "CREATE TABLE IF NOT EXISTS samples ("
    "  id INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  worker INTEGER NOT NULL,"
    "  interval_ms INTEGER, connections INTEGER, handshakes INTEGER, requests INTEGER,"
    "  pkts_in INTEGER, pkts_out INTEGER, bytes_in INTEGER, bytes_out INTEGER,"
    "  gso_batches INTEGER, drops INTEGER, mem_bytes INTEGER);"
    "CREATE INDEX IF NOT EXISTS samples_time ON samples(time_ms);";

static const char *const schema_v3 =
    "CREATE TABLE IF NOT EXISTS losses ("
    "  id INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  role TEXT NOT NULL,"
    "  instance INTEGER,"
    "  records INTEGER NOT NULL,"
    "  cause TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS losses_time ON losses(time_ms);";

/*
 * v4: requests loses its conn_id index. Keyed by a random hex string, it
 * was updated at a random place per row: 1.3 us of the stats daemon's 3.8
 * us per request record at 90,000 requests/s (PERFORMANCE.md), and no
 * query of quicd's uses it (quicctl report reads time windows). Look-ups
 * of one connection's requests scan, or an operator adds the index.
 */
static const char schema_v4[] = "DROP INDEX IF EXISTS requests_conn_id;";

/*
 * v5: the protocol of each connection and request (HTTP/3 over QUIC, or
 * HTTP/2 and HTTP/1.1 over TLS/TCP). Rows from before were all HTTP/3: the
 * default gives them 'h3' without rewriting the tables (SQLite stores a
 * constant default in the schema only), and every insert binds a value.
 */
static const char schema_v5[] =
    "ALTER TABLE connections ADD COLUMN protocol TEXT NOT NULL DEFAULT 'h3';"
    "ALTER TABLE requests ADD COLUMN protocol TEXT NOT NULL DEFAULT 'h3';";

/*
 * v6: a proxied request's upstream server, that server's status (0: no
 * answer came) and the upstream time in ms. NULL, without a default, for
 * every other request: old rows are not rewritten.
 */
static const char schema_v6[] = "ALTER TABLE requests ADD COLUMN upstream TEXT;"
                                "ALTER TABLE requests ADD COLUMN upstream_status INTEGER;"
                                "ALTER TABLE requests ADD COLUMN upstream_ms REAL;";

/*
 * v7: the metrics (stats_metrics.c): each series' running total since the
 * database was made, added to by each stats daemon that writes the file,
 * and each reporting process's last totals, so that a stats daemon that
 * starts again adds only what is new; and what each process counted in
 * each interval (the aggregates quicctl report reads, whatever
 * request_history keeps).
 */
static const char schema_v7[] =
    "CREATE TABLE IF NOT EXISTS metric_totals (series TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS metric_sources (role INTEGER NOT NULL, instance INTEGER NOT NULL,"
    "  pid INTEGER NOT NULL, started_ms INTEGER NOT NULL, seen_ms INTEGER NOT NULL,"
    "  schema INTEGER NOT NULL, slots BLOB NOT NULL,"
    "  PRIMARY KEY (role, instance, pid, started_ms)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS metric_intervals (time_ms INTEGER NOT NULL,"
    "  role INTEGER NOT NULL, instance INTEGER NOT NULL, interval_ms INTEGER NOT NULL,"
    "  slots BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS metric_intervals_time ON metric_intervals(time_ms);";

/*
 * v8: the aggregates by route (stats_metrics.c): what each worker counted
 * per route of the proxy table (or "local") in each interval: requests by
 * status class, body bytes both ways, and the duration histogram (its 14
 * buckets and sum in microseconds, one LEB128 varint each). A step of its
 * own, so that it can take another number.
 */
static const char schema_v8[] =
    "CREATE TABLE IF NOT EXISTS route_intervals (time_ms INTEGER NOT NULL,"
    "  role INTEGER NOT NULL, instance INTEGER NOT NULL, interval_ms INTEGER NOT NULL,"
    "  route TEXT NOT NULL, requests INTEGER NOT NULL, status_1xx INTEGER NOT NULL,"
    "  status_2xx INTEGER NOT NULL, status_3xx INTEGER NOT NULL, status_4xx INTEGER NOT NULL,"
    "  status_5xx INTEGER NOT NULL, status_none INTEGER NOT NULL, bytes_in INTEGER NOT NULL,"
    "  bytes_out INTEGER NOT NULL, durations BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS route_intervals_time ON route_intervals(time_ms);";

/*
 * v9: requests loses its time_ms index too (a B-tree entry per row: 18 %
 * of the stats daemon's instructions per request record and 16 of its
 * 106 bytes on disk) for request_seconds, one row per second of time_ms
 * per transaction: the smallest and the largest id of that
 * transaction's requests rows of that second. A transaction's rows have
 * ids of their own (it holds the write lock), so the rows of second S are
 * exactly those "r.id BETWEEN first_id AND last_id AND r.time_ms / 1000 =
 * S" over the entries of S, each found once: time windows (quicctl
 * report) and retention read a few ranges of ids, as they read a range
 * of the index before (request_seconds CROSS JOIN requests: that order). The rows from before get an entry per second
 * here, in the same transaction.
 */
static const char schema_v9[] =
    "CREATE TABLE IF NOT EXISTS request_seconds (second INTEGER NOT NULL,"
    "  first_id INTEGER NOT NULL, last_id INTEGER NOT NULL,"
    "  PRIMARY KEY (second, first_id)) WITHOUT ROWID;"
    "INSERT INTO request_seconds SELECT time_ms / 1000, min(id), max(id) FROM requests"
    "  GROUP BY time_ms / 1000;"
    "DROP INDEX IF EXISTS requests_time;";

static const char *const migrations[STATS_SCHEMA_VERSION] = {
    schema_v1, schema_v2, schema_v3, schema_v4, schema_v5, schema_v6, schema_v7, schema_v8,
    schema_v9};

const char *stats_db_schema_step(int version)
{
    if (version < 1 || version > STATS_SCHEMA_VERSION)
        return NULL;
    return migrations[version - 1];
}

/*
 * db_err - log an error while opening, unless stats.c already said the
 * database is unavailable and this is one of its retries (one line, not
 * one per retry).
 */
#define db_err(s, ...)                                                                             \
    do {                                                                                           \
        if (!(s)->open_logged)                                                                     \
            qd_err(__VA_ARGS__);                                                                   \
    } while (0)

/* exec - run SQL, logging failures */
static int exec(stats *s, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        db_err(s, "sqlite: %s", msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* user_version - the schema version stored in the file */
static int user_version(stats *s)
{
    sqlite3_stmt *st;
    int v = -1;

    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* migrate - bring the schema from version |v| to STATS_SCHEMA_VERSION, one step each */
static int migrate(stats *s, const char *path, int v)
{
    char sql[64];

    for (; v < STATS_SCHEMA_VERSION; v++) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if (exec(s, "BEGIN") < 0 || exec(s, migrations[v]) < 0 || exec(s, sql) < 0 ||
            exec(s, "COMMIT") < 0) {
            exec(s, "ROLLBACK");
            return -1;
        }
        qd_info("stats database %s: schema version %d", path, v + 1);
    }
    return 0;
}

/*
 * Each table's INSERT. The busy tables' (connections, requests) read all
 * their rows of the batch from the virtual table stats_rows (stats_row.c)
 * in one statement; the others take one row at a time, each column a
 * parameter.
 */
static const struct {
    int ncols;    /* of a row, and parameters of a per-row INSERT */
    bool is_bulk; /* one INSERT ... SELECT for every row of the batch */
    const char *sql;
} statements[STATS_T_COUNT] = {
    [STATS_T_EVENT] = {STATS_EVENT_COLS, false,
                       /* Once: the master sends the last events again to a restarted stats. */
                       "INSERT INTO process_events (time_ms, event, role, instance, pid, "
                       "generation, restarts, exit_status, signal) SELECT ?1, ?2, ?3, ?4, ?5, ?6, "
                       "?7, ?8, ?9 WHERE NOT EXISTS (SELECT 1 FROM process_events WHERE time_ms = "
                       "?1 AND event = ?2 AND role = ?3 AND instance IS ?4 AND pid IS ?5)"},
    [STATS_T_CONN] = {STATS_CONN_COLS, true,
                      "INSERT INTO connections (conn_id, worker, peer, paths, local, start_ms, "
                      "end_ms, handshake_us, alpn, cipher, quic_version, resumed, early_data, "
                      "retry, bytes_in, bytes_out, pkts_in, pkts_out, pkts_lost, srtt_us, "
                      "min_rtt_us, cwnd, cc, migrations, streams, close_by, close_reason, "
                      "error_code, protocol) SELECT c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, "
                      "c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23, c24, c25, c26, "
                      "c27, c28, c29 FROM stats_rows WHERE tbl = 1"},
    [STATS_T_REQUEST] = {STATS_REQ_COLS, true,
                         "INSERT INTO requests (time_ms, conn_id, worker, stream_id, method, "
                         "path, status, bytes_in, bytes_out, duration_us, ttfb_us, protocol, "
                         "upstream, upstream_status, upstream_ms) SELECT c1, c2, c3, c4, c5, c6, "
                         "c7, c8, c9, c10, c11, c12, c13, c14, c15 FROM stats_rows WHERE tbl = 2"},
    [STATS_T_SAMPLE] = {STATS_SAMPLE_COLS, false,
                        "INSERT INTO samples (time_ms, worker, interval_ms, connections, "
                        "handshakes, requests, pkts_in, pkts_out, bytes_in, bytes_out, "
                        "gso_batches, drops, mem_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                        "?8, ?9, ?10, ?11, ?12, ?13)"},
    [STATS_T_LOSS] = {STATS_LOSS_COLS, false,
                      "INSERT INTO losses (time_ms, role, instance, records, cause) VALUES "
                      "(?1, ?2, ?3, ?4, ?5)"},
};

int stats_db_open(stats *s, const char *path)
{
    /* One thread uses the connection: no mutexes (NOMUTEX). */
    int rv = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);

    if (rv != SQLITE_OK) {
        db_err(s, "cannot open stats database %s: %s", path,
               s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rv));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, STATS_BUSY_MS);
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;") < 0)
        goto fail;
    int v = user_version(s);
    if (v < 0)
        goto fail;
    if (v > STATS_SCHEMA_VERSION) {
        db_err(s, "stats database %s has schema version %d; this quicd knows %d", path, v,
               STATS_SCHEMA_VERSION);
        goto fail;
    }
    if (migrate(s, path, v) < 0)
        goto fail;
    if (stats_row_register(s->db, &s->pending) < 0) {
        db_err(s, "sqlite: cannot register stats_rows: %s", sqlite3_errmsg(s->db));
        goto fail;
    }
    for (int t = 0; t < STATS_T_COUNT; t++) {
        if (sqlite3_prepare_v2(s->db, statements[t].sql, -1, &s->ins[t], NULL) != SQLITE_OK) {
            db_err(s, "sqlite prepare: %s", sqlite3_errmsg(s->db));
            goto fail;
        }
        /* every column of a row binds a parameter: none is left from the row before */
        int want = statements[t].is_bulk ? 0 : statements[t].ncols;
        if (sqlite3_bind_parameter_count(s->ins[t]) != want)
            qd_panic("stats: the INSERT of table %d takes %d parameters, not %d", t,
                     sqlite3_bind_parameter_count(s->ins[t]), want);
    }
    if (sqlite3_prepare_v2(s->db, "SELECT max(id) FROM requests", -1, &s->max_req, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO request_seconds (second, first_id, last_id) VALUES (?1, "
                           "?2, ?3)",
                           -1, &s->ins_second, NULL) != SQLITE_OK) {
        db_err(s, "sqlite prepare: %s", sqlite3_errmsg(s->db));
        goto fail;
    }
    s->failing = false;
    return 0;
fail:
    stats_db_close(s);
    return -1;
}

/* pending_reset - no record waits (the caller empties s->pending) */
static void pending_reset(stats *s)
{
    s->pending_count = 0;
    memset(s->pending_rows, 0, sizeof(s->pending_rows));
}

/* write_failed - one clear line when writes start failing; count the loss */
static void write_failed(stats *s, const char *what, uint64_t lost)
{
    s->write_errors++;
    s->lost_records += lost;
    if (!s->failing)
        qd_err("stats database: cannot %s: %s; records are dropped until writes succeed "
               "again (quicd keeps serving)",
               what, sqlite3_errmsg(s->db));
    s->failing = true;
}

void stats_db_close(stats *s)
{
    if (s->db != NULL && s->pending_count > 0) {
        /* the last batch: wait longer for the other writer than in service */
        sqlite3_busy_timeout(s->db, STATS_CLOSE_BUSY_MS);
        if (stats_db_commit(s) < 0 && s->pending_count > 0)
            write_failed(s, "take the write lock before closing", s->pending_count);
    }
    qd_buf_release(&s->pending);
    pending_reset(s);
    for (int t = 0; t < STATS_T_COUNT; t++) {
        sqlite3_finalize(s->ins[t]);
        s->ins[t] = NULL;
    }
    sqlite3_finalize(s->max_req);
    sqlite3_finalize(s->ins_second);
    s->max_req = s->ins_second = NULL;
    stats_metrics_close(s);
    if (s->db)
        sqlite3_close(s->db);
    s->db = NULL;
}

void stats_db_own_losses(stats *s)
{
    uint64_t lost = s->lost_records - s->lost_reported;
    sqlite3_stmt *st = s->ins[STATS_T_LOSS];

    if (s->db == NULL || lost == 0)
        return;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)qd_time_real_ms());
    sqlite3_bind_text(st, 2, qd_role_name(QD_ROLE_STATS), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, 0);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)(lost > INT64_MAX ? INT64_MAX : lost));
    sqlite3_bind_text(st, 5, "database", -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_DONE) /* autocommit: its own transaction */
        s->lost_reported += lost;
    sqlite3_reset(st);
}

int stats_db_record(stats *s, const qd_ipc_msg *m)
{
    if (s->db == NULL) {
        s->lost_records++;
        return 0; /* unavailable: counted, not malformed */
    }
    if (s->pending.len + STATS_ROW_MAX > STATS_PENDING_MAX) {
        /* The database has refused writes for long: make room, counted. */
        write_failed(s, "keep waiting for the write lock", s->pending_count);
        qd_buf_reset(&s->pending);
        pending_reset(s);
    }
    int t = stats_row_add(&s->pending, m);
    if (t < 0)
        return -1;
    s->pending_count++;
    s->pending_rows[t]++;
    if (s->pending_count >= STATS_BATCH_MAX)
        stats_db_commit(s);
    return 0;
}

/* step - run |st| (its parameters bound) and reset it; 0, or -1 when the write failed */
static int step(sqlite3_stmt *st)
{
    int rv = sqlite3_step(st);

    sqlite3_reset(st);
    return rv == SQLITE_DONE ? 0 : -1;
}

/* seconds_from - request_seconds of the requests rows with ids over |before|, in SQL */
static int seconds_from(stats *s, int64_t before)
{
    sqlite3_stmt *st;

    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO request_seconds SELECT time_ms / 1000, min(id), max(id) "
                           "FROM requests WHERE id > ?1 GROUP BY 1",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, before);
    int rv = step(st);
    sqlite3_finalize(st);
    return rv;
}

/*
 * write_seconds - the request_seconds rows of the requests rows just
 * written after id |before|: for each second of time_ms among them, the
 * first and the last id. SQLite gave them before + 1, before + 2, ... in
 * the order of s->pending (each new rowid is the largest plus one, and
 * this transaction holds the write lock); when that does not hold (it
 * gave larger ids: the largest possible was reached), or the batch spans
 * more than STATS_SECONDS_MAX seconds, SQL groups the new rows instead.
 * 0, or -1 when a write failed.
 */
static int write_seconds(stats *s, int64_t before, int64_t n)
{
    static struct {
        int64_t second, first_id, last_id;
    } spans[STATS_SECONDS_MAX];
    int nspans = 0, hit = 0;
    int64_t id = before;
    const stats_row *r;
    size_t pos = 0;

    if (sqlite3_last_insert_rowid(s->db) != before + n)
        return seconds_from(s, before);
    while ((r = stats_row_next(&s->pending, &pos)) != NULL) {
        if (stats_row_table(r) != STATS_T_REQUEST)
            continue;
        int64_t second = stats_row_int(r, 1) / 1000;
        id++;
        if (nspans > 0 && spans[hit].second != second) {
            for (hit = 0; hit < nspans && spans[hit].second != second; hit++)
                ;
            if (hit == nspans && nspans == STATS_SECONDS_MAX)
                return seconds_from(s, before);
        }
        if (hit == nspans) {
            spans[nspans].second = second;
            spans[nspans++].first_id = id;
        }
        spans[hit].last_id = id;
    }
    for (int i = 0; i < nspans; i++) {
        sqlite3_bind_int64(s->ins_second, 1, spans[i].second);
        sqlite3_bind_int64(s->ins_second, 2, spans[i].first_id);
        sqlite3_bind_int64(s->ins_second, 3, spans[i].last_id);
        if (step(s->ins_second) < 0)
            return -1;
    }
    return 0;
}

/*
 * batch_write - insert every pending row, as checked on arrival: those of
 * a bulk table with one statement (requests rows with their
 * request_seconds), the others one by one. 0, or -1 when a write failed.
 */
static int batch_write(stats *s)
{
    uint32_t nbulk = 0;
    const stats_row *r;
    size_t pos = 0;

    for (int t = 0; t < STATS_T_COUNT; t++) {
        if (!statements[t].is_bulk || s->pending_rows[t] == 0)
            continue;
        int64_t before = 0;
        if (t == STATS_T_REQUEST) {
            if (sqlite3_step(s->max_req) == SQLITE_ROW)
                before = sqlite3_column_int64(s->max_req, 0);
            sqlite3_reset(s->max_req);
        }
        if (step(s->ins[t]) < 0)
            return -1;
        if (t == STATS_T_REQUEST && write_seconds(s, before, sqlite3_changes(s->db)) < 0)
            return -1;
        nbulk += s->pending_rows[t];
    }
    while (nbulk < s->pending_count && (r = stats_row_next(&s->pending, &pos)) != NULL) {
        stats_table t = stats_row_table(r);
        if (statements[t].is_bulk)
            continue;
        stats_row_bind(s->ins[t], 0, r);
        if (step(s->ins[t]) < 0)
            return -1;
    }
    return 0;
}

int stats_db_commit(stats *s)
{
    uint32_t n = s->pending_count;

    if (s->db == NULL || (n == 0 && !stats_metrics_dirty(s)))
        return 0;
    /*
     * IMMEDIATE: take the write lock now, waiting (busy_timeout) for the
     * other writer (the stats daemon of the other generation during a
     * reload or an upgrade), which holds it only while it writes a batch.
     * Busy beyond that: the records wait in memory for the next try.
     */
    int rv = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rv == SQLITE_BUSY) {
        if (!s->busy_logged)
            qd_warn("stats database: busy: %s; %u records wait for the next try",
                    sqlite3_errmsg(s->db), n);
        s->busy_logged = true;
        return -1;
    }
    rv = rv == SQLITE_OK ? batch_write(s) : -2;
    if (rv == 0 && stats_metrics_write(s) < 0)
        rv = -1;
    qd_buf_reset(&s->pending);
    pending_reset(s);
    if (rv == -2) {
        write_failed(s, "begin a transaction", n);
        return -1;
    }
    if (rv < 0 || sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        /* The whole batch is lost: SQLite may have rolled it back already. */
        write_failed(s, "write", n);
        if (sqlite3_get_autocommit(s->db) == 0)
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    stats_metrics_committed(s);
    s->records += n;
    s->batches++;
    if (s->busy_logged)
        qd_notice("stats database: no longer busy; the waiting records are written");
    s->busy_logged = false;
    if (s->failing)
        qd_notice("stats database: writes succeed again (%llu records lost)",
                  (unsigned long long)s->lost_records);
    s->failing = false;
    stats_db_own_losses(s);
    return 0;
}

/*
 * stats_db_batch - each record in a QD_MSG_REC_BATCH; a bad one is dropped
 * alone. |inner| is filled and used within this call only.
 */
void stats_db_batch(stats *s, const qd_ipc_msg *batch)
{
    static qd_ipc_msg inner;
    size_t pos = 0, len;
    uint16_t tag;
    const uint8_t *val;

    while (qd_ipc_next(batch, &pos, &tag, &val, &len)) {
        int rv = tag == QD_F_BODY ? qd_ipc_decode(&inner, val, len, 0) : QD_ERR_UNKNOWN;
        if (rv == 0 && inner.type != QD_MSG_REC_CONN && inner.type != QD_MSG_REC_REQUEST &&
            inner.type != QD_MSG_REC_SAMPLE)
            rv = QD_ERR_UNKNOWN;
        if (rv == 0 && stats_db_record(s, &inner) == -1)
            rv = QD_ERR_INVAL;
        if (rv < 0) {
            s->bad_records++;
            qd_child_bad_message(&s->child, "stats channel (batch)", rv);
        }
    }
}

void stats_db_prune(stats *s, int64_t retention_ms, int64_t history_ms)
{
    static const char *const sql[] = {
        "DELETE FROM samples WHERE time_ms < ?1",
        "DELETE FROM process_events WHERE time_ms < ?1",
        "DELETE FROM losses WHERE time_ms < ?1",
        "DELETE FROM metric_intervals WHERE time_ms < ?1",
        "DELETE FROM route_intervals WHERE time_ms < ?1",
        "DELETE FROM connections WHERE start_ms < ?1",
        /* through request_seconds (schema v9); the rows first, then the seconds left empty */
        "DELETE FROM requests WHERE id IN (SELECT r.id FROM request_seconds s CROSS JOIN requests "
        "r ON r.id BETWEEN s.first_id AND s.last_id AND r.time_ms / 1000 = s.second WHERE "
        "s.second <= ?1 / 1000 AND r.time_ms < ?1)",
        "DELETE FROM request_seconds WHERE second < ?1 / 1000",
    };
    int64_t now = (int64_t)qd_time_real_ms();

    if (s->db == NULL)
        return;
    stats_db_commit(s);
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) != SQLITE_OK)
            continue;
        sqlite3_bind_int64(st, 1, now - (i < 5 ? retention_ms : history_ms));
        if (sqlite3_step(st) != SQLITE_DONE)
            write_failed(s, "prune old rows", 0);
        else if (sqlite3_changes(s->db) > 0)
            qd_info("stats database: pruned %d old rows (%s)", sqlite3_changes(s->db), sql[i]);
        sqlite3_finalize(st);
    }
}
