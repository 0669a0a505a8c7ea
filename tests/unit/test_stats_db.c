/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the stats daemon's database (daemons/stats/stats_db.c) on
 * real files in a temporary directory: a version 4 or 5 database, built
 * with the code's own migration steps and holding rows, becomes the
 * current version when the stats daemon opens it, with protocol 'h3'
 * and no upstream on the old rows and the same schema as a database
 * created new; records get their protocol from F_PROTO (absent: h3; odd
 * values stored as sent or as 'unknown') and a proxied request its
 * upstream, upstream_status and upstream_ms from F_SERVER, F_UP_STATUS and
 * F_UP_TIME_US (NULL for a local one; a malformed one is refused); a
 * batch's requests and connections rows, each table's written by one
 * INSERT ... SELECT from the rows in memory, all land in order with their
 * own values; every requests row is in exactly one request_seconds range
 * of its second (version 8), time windows and retention read through them,
 * and a version 7 database gets them for its rows; a database of a newer
 * version is refused.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "qd_ipc.h"
#include "qd_log.h"
#include "qd_test.h"
#include "qd_time.h"

#include "stats.h"

/* the version a migrated or new database has, as PRAGMA user_version prints it */
#define VERSION_TEXT_(v) #v
#define VERSION_TEXT(v) VERSION_TEXT_(v)
#define CURRENT_VERSION VERSION_TEXT(STATS_SCHEMA_VERSION)

static char dir[256];
static qd_ipc_msg built, got;
static uint8_t wire[QD_IPC_MAX_MSG];

/* db_path - |name| inside the test's directory */
static const char *db_path(const char *name)
{
    static char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

/* query - the first column of the first row of |sql| as text ("NULL", or "" with no row) */
static const char *query(sqlite3 *db, const char *sql)
{
    static char out[4096];
    sqlite3_stmt *st;

    out[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(out, sizeof(out), "error: %s", sqlite3_errmsg(db));
        return out;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, sizeof(out), "%s", t ? (const char *)t : "NULL");
    }
    sqlite3_finalize(st);
    return out;
}

/* exec_ok - run |sql| on |db|, failing the test on an error */
static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        QD_FAIL("%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
}

/* make_old - a version |version| (4 or more) database at |path| with one connection and two
 * requests */
static void make_old(const char *path, int version)
{
    char sql[64];
    sqlite3 *db;

    unlink(path);
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        QD_FAIL("open %s", path);
        return;
    }
    for (int v = 1; v <= version; v++)
        exec_ok(db, stats_db_schema_step(v));
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
    exec_ok(db, sql);
    exec_ok(db, "INSERT INTO connections (conn_id, worker, start_ms, end_ms, alpn, resumed, "
                "early_data, retry, bytes_out) VALUES ('c0ffee', 0, 1000, 2000, 'h3', 0, 0, 0, 5)");
    exec_ok(db, "INSERT INTO requests (time_ms, conn_id, worker, stream_id, method, path, "
                "status) VALUES (1000, 'c0ffee', 0, 0, 'GET', '/', 200), "
                "(1001, 'c0ffee', 0, 4, 'GET', '/x', 404)");
    sqlite3_close(db);
}

/* make_v4 - a version 4 database at |path| with one connection and two requests */
static void make_v4(const char *path)
{
    make_old(path, 4);
}

/* open_stats - stats_db_open on |path| into a zeroed |s| */
static int open_stats(stats *s, const char *path)
{
    memset(s, 0, sizeof(*s));
    return stats_db_open(s, path);
}

/* record - encode |built| and hand the decoded copy to stats_db_record, as stats.c does */
static int record(stats *s)
{
    int n = qd_ipc_encode(&built, wire, sizeof(wire));

    if (n < 0 || qd_ipc_decode(&got, wire, (size_t)n, 0) != 0) {
        QD_FAIL("record type %u does not encode and decode", built.type);
        return -99;
    }
    return stats_db_record(s, &got);
}

/* conn_rec - a REC_CONN for |id| with F_PROTO |proto| (|len| bytes; none when NULL) */
static void conn_rec(const char *id, const char *proto, size_t len)
{
    qd_ipc_msg_init(&built, QD_MSG_REC_CONN, 0);
    qd_ipc_put_str(&built, QD_F_CONN_ID, id);
    qd_ipc_put_u32(&built, QD_F_INSTANCE, 1);
    qd_ipc_put_u64(&built, QD_F_TIME_MS, 5000);
    qd_ipc_put_u64(&built, QD_F_END_MS, 6000);
    qd_ipc_put_u32(&built, QD_F_FLAGS, 0);
    qd_ipc_put_str(&built, QD_F_ALPN, "h3");
    if (proto != NULL)
        qd_ipc_put_bytes(&built, QD_F_PROTO, proto, len);
}

/* req_rec - a REC_REQUEST on connection |id| for |path| with F_PROTO |proto| (none when NULL) */
static void req_rec(const char *id, const char *path, const char *proto)
{
    qd_ipc_msg_init(&built, QD_MSG_REC_REQUEST, 0);
    qd_ipc_put_str(&built, QD_F_CONN_ID, id);
    qd_ipc_put_u32(&built, QD_F_INSTANCE, 1);
    qd_ipc_put_u64(&built, QD_F_QUIC_STREAM, 1);
    qd_ipc_put_u64(&built, QD_F_TIME_MS, 5000);
    qd_ipc_put_str(&built, QD_F_METHOD, "GET");
    qd_ipc_put_str(&built, QD_F_PATH, path);
    qd_ipc_put_u32(&built, QD_F_STATUS, 200);
    if (proto != NULL)
        qd_ipc_put_str(&built, QD_F_PROTO, proto);
}

/* schema_text - every table's and index's SQL in |db|, in name order */
static const char *schema_text(sqlite3 *db)
{
    return query(db, "SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_master "
                     "WHERE sql IS NOT NULL ORDER BY name)");
}

static void test_stats_db_migrate_v4(void)
{
    stats s, fresh;
    char want[4096];

    make_v4(db_path("v4.db"));
    QD_EXPECT_INT(open_stats(&s, db_path("v4.db")), 0);
    if (s.db == NULL)
        return;
    QD_EXPECT_STR(query(s.db, "PRAGMA user_version"), CURRENT_VERSION);
    QD_EXPECT_STR(query(s.db, "SELECT protocol FROM connections WHERE conn_id = 'c0ffee'"), "h3");
    QD_EXPECT_STR(query(s.db, "SELECT group_concat(path || ':' || protocol, ' ') FROM "
                              "(SELECT path, protocol FROM requests ORDER BY path)"),
                  "/:h3 /x:h3");
    QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM requests WHERE protocol = 'h3'"), "2");
    QD_EXPECT_STR(query(s.db, "SELECT group_concat(\"notnull\" || type, ' ') FROM "
                              "(SELECT * FROM pragma_table_info('connections') WHERE name = "
                              "'protocol' UNION ALL SELECT * FROM pragma_table_info('requests') "
                              "WHERE name = 'protocol')"),
                  "1TEXT 1TEXT");
    /* the old data is all there */
    QD_EXPECT_STR(query(s.db, "SELECT bytes_out FROM connections WHERE conn_id = 'c0ffee'"), "5");

    /* A database made new has the very same schema. */
    unlink(db_path("new.db"));
    QD_EXPECT_INT(open_stats(&fresh, db_path("new.db")), 0);
    if (fresh.db != NULL) {
        snprintf(want, sizeof(want), "%s", schema_text(fresh.db));
        QD_EXPECT_STR(schema_text(s.db), want);
        QD_EXPECT_STR(query(fresh.db, "PRAGMA user_version"), CURRENT_VERSION);
    }
    stats_db_close(&fresh);
    stats_metrics_forget(&fresh);
    stats_db_close(&s);
    stats_metrics_forget(&s);

    /* Opened again, a current database stays as it is. */
    QD_EXPECT_INT(open_stats(&s, db_path("v4.db")), 0);
    if (s.db != NULL) {
        QD_EXPECT_STR(query(s.db, "PRAGMA user_version"), CURRENT_VERSION);
        QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM requests"), "2");
    }
    stats_db_close(&s);
    stats_metrics_forget(&s);
}

static void test_stats_db_migrate_v4_rows_written_after(void)
{
    stats s;

    make_v4(db_path("v4b.db"));
    QD_EXPECT_INT(open_stats(&s, db_path("v4b.db")), 0);
    if (s.db == NULL)
        return;
    conn_rec("beef01", QD_PROTO_H2, strlen(QD_PROTO_H2));
    QD_EXPECT_INT(record(&s), 0);
    req_rec("beef01", "/new", QD_PROTO_H2);
    QD_EXPECT_INT(record(&s), 0);
    QD_EXPECT_INT(stats_db_commit(&s), 0);
    QD_EXPECT_STR(query(s.db, "SELECT group_concat(conn_id || ':' || protocol, ' ') FROM "
                              "(SELECT conn_id, protocol FROM connections ORDER BY conn_id)"),
                  "beef01:h2 c0ffee:h3");
    QD_EXPECT_STR(query(s.db, "SELECT protocol FROM requests WHERE path = '/new'"), "h2");
    stats_db_close(&s);
    stats_metrics_forget(&s);
}

static void test_stats_db_record_protocol(void)
{
    static const struct {
        const char *id, *proto; /* proto NULL: no F_PROTO */
        size_t len;
        const char *want;
    } cases[] = {
        {"a1", NULL, 0, "h3"},
        {"a2", "h3", 2, "h3"},
        {"a3", "h2", 2, "h2"},
        {"a4", "http/1.1", 8, "http/1.1"},
        {"a5", "spdy/3.1", 8, "spdy/3.1"}, /* printable and short: as sent */
        {"a6", "", 0, "unknown"},          /* empty */
        {"a7", "h 2", 3, "unknown"},       /* a space */
        {"a8", "h2\x01", 3, "unknown"},    /* a control byte */
        {"a9", "h\xc3\xa9", 3, "unknown"}, /* not ASCII */
        {"b1", "0123456789abcdef0123456789abcde", 31, "0123456789abcdef0123456789abcde"},
        {"b2", "0123456789abcdef0123456789abcdef", 32, "unknown"}, /* too long */
    };
    char sql[256];
    stats s;

    unlink(db_path("proto.db"));
    QD_EXPECT_INT(open_stats(&s, db_path("proto.db")), 0);
    if (s.db == NULL)
        return;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conn_rec(cases[i].id, cases[i].proto, cases[i].len);
        QD_EXPECT_INT(record(&s), 0);
    }
    /* requests: absent and each of the three */
    req_rec("a1", "/none", NULL);
    QD_EXPECT_INT(record(&s), 0);
    req_rec("a2", "/h3", QD_PROTO_H3);
    QD_EXPECT_INT(record(&s), 0);
    req_rec("a3", "/h2", QD_PROTO_H2);
    QD_EXPECT_INT(record(&s), 0);
    req_rec("a4", "/h1", QD_PROTO_H1);
    QD_EXPECT_INT(record(&s), 0);
    req_rec("a7", "/odd", "h 2");
    QD_EXPECT_INT(record(&s), 0);
    QD_EXPECT_INT(stats_db_commit(&s), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(sql, sizeof(sql), "SELECT protocol FROM connections WHERE conn_id = '%s'",
                 cases[i].id);
        QD_EXPECT_STR(query(s.db, sql), cases[i].want);
    }
    QD_EXPECT_STR(query(s.db, "SELECT group_concat(path || ':' || protocol, ' ') FROM "
                              "(SELECT path, protocol FROM requests ORDER BY path)"),
                  "/h1:http/1.1 /h2:h2 /h3:h3 /none:h3 /odd:unknown");
    stats_db_close(&s);
    stats_metrics_forget(&s);
}

/* up_req - a REC_REQUEST for |path| proxied to |server| (none when NULL), |len| bytes of it */
static void up_req(const char *path, const char *server, size_t len, uint32_t status,
                   uint64_t time_us)
{
    req_rec("up01", path, QD_PROTO_H3);
    if (server == NULL)
        return;
    qd_ipc_put_bytes(&built, QD_F_SERVER, server, len);
    qd_ipc_put_u32(&built, QD_F_UP_STATUS, status);
    qd_ipc_put_u64(&built, QD_F_UP_TIME_US, time_us);
}

static void test_stats_db_migrate_v5(void)
{
    stats s, fresh;
    char want[4096];

    make_old(db_path("v5.db"), 5);
    QD_EXPECT_INT(open_stats(&s, db_path("v5.db")), 0);
    if (s.db == NULL)
        return;
    QD_EXPECT_STR(query(s.db, "PRAGMA user_version"), CURRENT_VERSION);
    /* the three columns, nullable, no default */
    QD_EXPECT_STR(query(s.db, "SELECT group_concat(name || ':' || type || ':' || \"notnull\" || "
                              "':' || ifnull(dflt_value, '-'), ' ') FROM pragma_table_info("
                              "'requests') WHERE name LIKE 'upstream%'"),
                  "upstream:TEXT:0:- upstream_status:INTEGER:0:- upstream_ms:REAL:0:-");
    /* the old rows are all there, not proxied */
    QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM requests WHERE upstream IS NULL AND "
                              "upstream_status IS NULL AND upstream_ms IS NULL AND protocol = "
                              "'h3'"),
                  "2");
    /* written after the migration */
    up_req("/after", "127.0.0.1:8080", 14, 200, 1500);
    QD_EXPECT_INT(record(&s), 0);
    QD_EXPECT_INT(stats_db_commit(&s), 0);
    QD_EXPECT_STR(query(s.db, "SELECT upstream || ' ' || upstream_status || ' ' || upstream_ms "
                              "FROM requests WHERE path = '/after'"),
                  "127.0.0.1:8080 200 1.5");

    /* the same schema as a database made new */
    unlink(db_path("new6.db"));
    QD_EXPECT_INT(open_stats(&fresh, db_path("new6.db")), 0);
    if (fresh.db != NULL) {
        snprintf(want, sizeof(want), "%s", schema_text(fresh.db));
        QD_EXPECT_STR(schema_text(s.db), want);
    }
    stats_db_close(&fresh);
    stats_metrics_forget(&fresh);
    stats_db_close(&s);
    stats_metrics_forget(&s);
}

static void test_stats_db_record_upstream(void)
{
    static char long_name[QD_REC_SERVER_MAX + 1];
    stats s;

    unlink(db_path("up.db"));
    QD_EXPECT_INT(open_stats(&s, db_path("up.db")), 0);
    if (s.db == NULL)
        return;
    up_req("/local", NULL, 0, 0, 0);
    QD_EXPECT_INT(record(&s), 0);
    up_req("/ok", "127.0.0.1:8080", 14, 200, 2345);
    QD_EXPECT_INT(record(&s), 0);
    up_req("/missing", "unix:/run/app.sock", 18, 404, 999);
    QD_EXPECT_INT(record(&s), 0);
    up_req("/refused", "127.0.0.1:9", 11, 0, 250); /* no answer: status 0 */
    QD_EXPECT_INT(record(&s), 0);
    memset(long_name, 'a', sizeof(long_name));
    up_req("/longest", long_name, QD_REC_SERVER_MAX - 1, 200, 1);
    QD_EXPECT_INT(record(&s), 0);
    /* malformed: refused, nothing written */
    up_req("/too-long", long_name, QD_REC_SERVER_MAX, 200, 1);
    QD_EXPECT_INT(record(&s), -1);
    up_req("/empty", "", 0, 200, 1);
    QD_EXPECT_INT(record(&s), -1);
    up_req("/status", "127.0.0.1:8080", 14, 1000, 1);
    QD_EXPECT_INT(record(&s), -1);
    QD_EXPECT_INT(stats_db_commit(&s), 0);
    QD_EXPECT_STR(query(s.db, "SELECT group_concat(x, ' ') FROM (SELECT path || '=' || "
                              "ifnull(upstream, 'NULL') || ',' || ifnull(upstream_status, 'NULL') "
                              "|| ',' || ifnull(upstream_ms, 'NULL') AS x FROM requests WHERE "
                              "path != '/longest' ORDER BY path)"),
                  "/local=NULL,NULL,NULL /missing=unix:/run/app.sock,404,0.999 "
                  "/ok=127.0.0.1:8080,200,2.345 /refused=127.0.0.1:9,0,0.25");
    QD_EXPECT_INT(atoi(query(s.db, "SELECT length(upstream) FROM requests WHERE path = "
                                   "'/longest'")),
                  QD_REC_SERVER_MAX - 1);
    QD_EXPECT_STR(query(s.db, "SELECT typeof(upstream_ms) || ' ' || typeof(upstream_status) FROM "
                              "requests WHERE path = '/ok'"),
                  "real integer");
    QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM requests"), "5");
    stats_db_close(&s);
    stats_metrics_forget(&s);
}

/*
 * A batch of requests rows among rows of other tables, each bulk table's
 * written by one INSERT ... SELECT from stats_rows: every row is written
 * once, in the order it came, with its own values; the next batch too.
 */
static void test_stats_db_batch_groups(void)
{
    int n = 69;
    char path[32], want[64];
    stats s;

    unlink(db_path("groups.db"));
    QD_EXPECT_INT(open_stats(&s, db_path("groups.db")), 0);
    if (s.db == NULL)
        return;
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "/%d", i);
        req_rec("c0ffee", path, i % 2 ? "h2" : NULL);
        QD_EXPECT_INT(record(&s), 0);
        if (i % 20 == 7) {
            conn_rec(path, "h3", 2);
            QD_EXPECT_INT(record(&s), 0);
        }
    }
    QD_EXPECT_INT(s.pending_rows[STATS_T_REQUEST], n);
    QD_EXPECT_INT(s.pending_rows[STATS_T_CONN], 4);
    QD_EXPECT_INT(stats_db_commit(&s), 0);
    QD_EXPECT_INT(s.pending_rows[STATS_T_REQUEST], 0);
    snprintf(want, sizeof(want), "%d %d", n, n / 2);
    QD_EXPECT_STR(query(s.db, "SELECT count(*) || ' ' || sum(protocol = 'h2') FROM requests"),
                  want);
    /* each row where it came, with its own values */
    QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM requests WHERE id != "
                              "CAST(substr(path, 2) AS INTEGER) + 1 OR protocol != "
                              "CASE CAST(substr(path, 2) AS INTEGER) % 2 WHEN 1 THEN 'h2' ELSE "
                              "'h3' END OR status != 200 OR method != 'GET'"),
                  "0");
    QD_EXPECT_STR(query(s.db, "SELECT group_concat(conn_id, ' ') FROM (SELECT conn_id FROM "
                              "connections ORDER BY id)"),
                  "/7 /27 /47 /67");
    /* the next batch */
    req_rec("c0ffee", "/last", NULL);
    QD_EXPECT_INT(record(&s), 0);
    QD_EXPECT_INT(stats_db_commit(&s), 0);
    snprintf(want, sizeof(want), "%d", n + 1);
    QD_EXPECT_STR(query(s.db, "SELECT id FROM requests WHERE path = '/last'"), want);
    stats_db_close(&s);
    stats_metrics_forget(&s);
}

/* req_at - a REC_REQUEST for |path| made at |time_ms| */
static void req_at(const char *path, uint64_t time_ms)
{
    qd_ipc_msg_init(&built, QD_MSG_REC_REQUEST, 0);
    qd_ipc_put_str(&built, QD_F_CONN_ID, "5ec0");
    qd_ipc_put_u32(&built, QD_F_INSTANCE, 0);
    qd_ipc_put_u64(&built, QD_F_QUIC_STREAM, 0);
    qd_ipc_put_u64(&built, QD_F_TIME_MS, time_ms);
    qd_ipc_put_str(&built, QD_F_METHOD, "GET");
    qd_ipc_put_str(&built, QD_F_PATH, path);
    qd_ipc_put_u32(&built, QD_F_STATUS, 200);
}

/* Every requests row is in exactly one request_seconds range of its second. */
#define SECONDS_OK                                                                                 \
    "SELECT count(*) FROM requests r WHERE (SELECT count(*) FROM request_seconds s WHERE "         \
    "s.second = r.time_ms / 1000 AND r.id BETWEEN s.first_id AND s.last_id) != 1"

/* window - the requests rows in [from, to) through request_seconds, as quicctl report reads */
static const char *window(sqlite3 *db, long long from, long long to)
{
    char sql[512];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) || ' ' || ifnull(group_concat(path, ' '), '') FROM (SELECT r.path "
             "FROM request_seconds s CROSS JOIN requests r ON r.id BETWEEN s.first_id AND "
             "s.last_id AND r.time_ms / 1000 = s.second WHERE s.second BETWEEN %lld AND %lld AND "
             "r.time_ms >= %lld AND r.time_ms < %lld ORDER BY r.id)",
             from / 1000, (to - 1) / 1000, from, to);
    return query(db, sql);
}

/*
 * request_seconds (schema version 8): a batch's rows of each second are
 * in one range of ids, whatever their order (a long request's row comes
 * late), also when a batch spans more seconds than C groups
 * (STATS_SECONDS_MAX: SQL groups them); a window reads exactly its rows;
 * retention deletes the old rows and their seconds.
 */
static void test_stats_db_request_seconds(void)
{
    static const uint64_t times[] = {5000, 6000, 5999, 6001, 1234, 5500, 6000, 7000};
    uint64_t now = qd_time_real_ms();
    char path[32];
    stats s;

    unlink(db_path("seconds.db"));
    QD_EXPECT_INT(open_stats(&s, db_path("seconds.db")), 0);
    if (s.db == NULL)
        return;
    QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM sqlite_master WHERE name = 'requests_time'"),
                  "0");
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        snprintf(path, sizeof(path), "/t%llu", (unsigned long long)times[i]);
        req_at(path, times[i]);
        QD_EXPECT_INT(record(&s), 0);
    }
    QD_EXPECT_INT(stats_db_commit(&s), 0);
    /* seconds 1, 5, 6 and 7: one range each */
    QD_EXPECT_STR(query(s.db,
                        "SELECT group_concat(second || ':' || first_id || '-' || last_id, ' ') "
                        "FROM (SELECT * FROM request_seconds ORDER BY second)"),
                  "1:5-5 5:1-6 6:2-7 7:8-8");
    QD_EXPECT_STR(query(s.db, SECONDS_OK), "0");
    QD_EXPECT_STR(window(s.db, 5500, 6001), "4 /t6000 /t5999 /t5500 /t6000");
    QD_EXPECT_STR(window(s.db, 6001, 6002), "1 /t6001");
    QD_EXPECT_STR(window(s.db, 0, 2000), "1 /t1234");

    /* a batch of more seconds than C groups, and rows made now */
    for (int i = 0; i < STATS_SECONDS_MAX + 10; i++) {
        snprintf(path, sizeof(path), "/s%d", i);
        req_at(path, 100000 + 1000 * (uint64_t)i);
        QD_EXPECT_INT(record(&s), 0);
    }
    req_at("/now", now);
    QD_EXPECT_INT(record(&s), 0);
    QD_EXPECT_INT(stats_db_commit(&s), 0);
    QD_EXPECT_STR(query(s.db, SECONDS_OK), "0");
    QD_EXPECT_INT(atoi(query(s.db, "SELECT count(*) FROM request_seconds")),
                  4 + STATS_SECONDS_MAX + 10 + 1);
    QD_EXPECT_STR(window(s.db, 100000, 102000), "2 /s0 /s1");

    /* retention: everything but the row made now, and the seconds of what went */
    stats_db_prune(&s, 3600 * 1000, 3600 * 1000);
    QD_EXPECT_STR(query(s.db, "SELECT group_concat(path, ' ') FROM requests"), "/now");
    QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM request_seconds"), "1");
    QD_EXPECT_STR(query(s.db, SECONDS_OK), "0");
    stats_db_close(&s);
    stats_metrics_forget(&s);
}

/* A version 7 database: its rows get their request_seconds, the time_ms index goes. */
static void test_stats_db_migrate_v7(void)
{
    stats s;

    make_old(db_path("v7m.db"), 7);
    QD_EXPECT_INT(open_stats(&s, db_path("v7m.db")), 0);
    if (s.db == NULL)
        return;
    QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM sqlite_master WHERE name = 'requests_time'"),
                  "0");
    QD_EXPECT_STR(query(s.db, "SELECT group_concat(second || ':' || first_id || '-' || last_id, ' ') "
                              "FROM request_seconds"),
                  "1:1-2");
    QD_EXPECT_STR(query(s.db, SECONDS_OK), "0");
    QD_EXPECT_STR(window(s.db, 1000, 1001), "1 /");
    req_at("/after", 1500);
    QD_EXPECT_INT(record(&s), 0);
    QD_EXPECT_INT(stats_db_commit(&s), 0);
    QD_EXPECT_STR(window(s.db, 1000, 2000), "3 / /x /after");
    stats_db_close(&s);
    stats_metrics_forget(&s);
}

/*
 * Two stats daemons on one file (a reload or an upgrade overlaps two
 * generations): a pending batch holds no lock, so the other writes at
 * once; a batch that finds the file busy (a third writer holding the
 * lock) waits in memory and is written, whole, by the next commit.
 */
static void test_stats_db_two_writers(void)
{
    char id[16];
    sqlite3 *db;
    stats a, b;

    unlink(db_path("two.db"));
    QD_EXPECT_INT(open_stats(&a, db_path("two.db")), 0);
    QD_EXPECT_INT(open_stats(&b, db_path("two.db")), 0);
    if (a.db == NULL || b.db == NULL)
        return;
    sqlite3_busy_timeout(a.db, 50);
    sqlite3_busy_timeout(b.db, 50);
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "a%02d", i);
        conn_rec(id, "h3", 2);
        QD_EXPECT_INT(record(&a), 0);
        snprintf(id, sizeof(id), "b%02d", i);
        conn_rec(id, "h2", 2);
        QD_EXPECT_INT(record(&b), 0);
    }
    QD_EXPECT_INT(stats_db_commit(&b), 0); /* a's pending batch does not block it */
    QD_EXPECT_STR(query(b.db, "SELECT count(*) FROM connections"), "10");

    if (sqlite3_open(db_path("two.db"), &db) != SQLITE_OK) {
        QD_FAIL("open two.db");
        return;
    }
    exec_ok(db, "BEGIN IMMEDIATE");
    QD_EXPECT_INT(stats_db_commit(&a), -1); /* busy: kept */
    QD_EXPECT_INT(a.pending_count, 10);
    exec_ok(db, "COMMIT");
    sqlite3_close(db);
    QD_EXPECT_INT(stats_db_commit(&a), 0);
    QD_EXPECT_INT(a.pending_count, 0);
    QD_EXPECT_STR(query(a.db, "SELECT count(*) || ' ' || sum(protocol = 'h3') FROM connections"),
                  "20 10");
    QD_EXPECT_INT((int)a.lost_records, 0);
    /* requests rows of both, in turns: each in one request_seconds range */
    for (int i = 0; i < 6; i++) {
        req_at(i % 2 ? "/b" : "/a", 5000 + 400 * (uint64_t)i);
        QD_EXPECT_INT(record(i % 2 ? &b : &a), 0);
        QD_EXPECT_INT(stats_db_commit(i % 3 ? &b : &a), 0);
    }
    QD_EXPECT_INT(stats_db_commit(&a), 0);
    QD_EXPECT_INT(stats_db_commit(&b), 0);
    QD_EXPECT_STR(query(a.db, "SELECT count(*) FROM requests"), "6");
    QD_EXPECT_STR(query(a.db, SECONDS_OK), "0");
    stats_db_close(&a);
    stats_metrics_forget(&a);
    stats_db_close(&b);
    stats_metrics_forget(&b);
}

static void test_stats_db_newer_version_refused(void)
{
    sqlite3 *db;
    stats s;

    unlink(db_path("v7.db"));
    if (sqlite3_open(db_path("v7.db"), &db) != SQLITE_OK) {
        QD_FAIL("open v7.db");
        return;
    }
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STATS_SCHEMA_VERSION + 1);
    exec_ok(db, sql);
    sqlite3_close(db);
    QD_EXPECT_INT(open_stats(&s, db_path("v7.db")), -1);
    QD_EXPECT_INT(s.db == NULL, 1);
    QD_EXPECT_INT(stats_db_schema_step(0) == NULL, 1);
    QD_EXPECT_INT(stats_db_schema_step(STATS_SCHEMA_VERSION + 1) == NULL, 1);
}

/* metrics_msg - a QD_MSG_METRICS of that process with |m|, through the wire, to stats */
static int metrics_msg(stats *s, uint32_t role, uint32_t inst, uint32_t pid, uint64_t start,
                       const qd_metrics *m, uint32_t schema, bool exiting)
{
    static uint8_t buf[QD_METRICS_NSLOTS * 10];
    size_t len = qd_metrics_encode(m, buf, sizeof(buf));

    qd_ipc_msg_init(&built, QD_MSG_METRICS, 0);
    qd_ipc_put_u32(&built, QD_F_ROLE, role);
    qd_ipc_put_u32(&built, QD_F_INSTANCE, inst);
    qd_ipc_put_u32(&built, QD_F_PID, pid);
    qd_ipc_put_u64(&built, QD_F_TIME_MS, start);
    qd_ipc_put_u32(&built, QD_F_SCHEMA, schema);
    qd_ipc_put_bytes(&built, QD_F_METRICS, buf, len);
    if (exiting)
        qd_ipc_put_u32(&built, QD_F_FLAGS, QD_METRICS_F_EXIT);
    int n = qd_ipc_encode(&built, wire, sizeof(wire));
    if (n < 0 || qd_ipc_decode(&got, wire, (size_t)n, 0) != 0)
        return -99;
    int rv = stats_metrics_receive(s, &got);
    stats_db_commit(s);
    return rv;
}

/* metric - one series' value in stats_metrics_text, or -1 */
static long long metric(stats *s, const char *series)
{
    qd_buf out;
    long long v = -1;
    char key[300];

    qd_buf_init(&out);
    stats_metrics_text(s, &out);
    snprintf(key, sizeof(key), "\n%s ", series);
    const char *at = strstr(qd_buf_str(&out), key);
    if (at != NULL)
        v = atoll(at + strlen(key));
    qd_buf_release(&out);
    return v;
}

/*
 * The totals: a process's growth is added, a new process (a restart, the
 * next generation) counts from zero, a counter that went down is a
 * restart; gauges are summed (or the smallest) over the live processes;
 * another table is refused; and a stats daemon started again on the same
 * database goes on from what was committed.
 */
static void test_stats_metrics(void)
{
    static qd_metrics m;
    stats s;
    const char *h3ok = "quicd_http_requests_total{protocol=\"h3\",class=\"2xx\"}";
    const size_t req = QD_M2(REQUESTS, QD_MV_PROTO_H3, 1);

    unlink(db_path("metrics.db"));
    QD_EXPECT_INT(open_stats(&s, db_path("metrics.db")), 0);
    s.child.conf.stats_interval_ms = 60000;
    stats_metrics_load(&s);
    QD_EXPECT_INT(metric(&s, h3ok), 0);
    m.v[req] = 10;
    m.v[QD_M_UDP_RCVBUF] = 1000;
    m.v[QD_M1(CONNECTIONS_OPEN, QD_MV_QUIC)] = 4;
    QD_EXPECT_INT(metrics_msg(&s, QD_ROLE_WORKER, 0, 100, 5, &m, qd_metrics_schema(), false), 0);
    QD_EXPECT_INT(metric(&s, h3ok), 10);
    m.v[req] = 15;
    QD_EXPECT_INT(metrics_msg(&s, QD_ROLE_WORKER, 0, 100, 5, &m, qd_metrics_schema(), false), 0);
    QD_EXPECT_INT(metric(&s, h3ok), 15);
    /* worker 0 again, another process: all of its 3 are new */
    m.v[req] = 3;
    QD_EXPECT_INT(metrics_msg(&s, QD_ROLE_WORKER, 0, 101, 9, &m, qd_metrics_schema(), false), 0);
    QD_EXPECT_INT(metric(&s, h3ok), 18);
    /* worker 1 with a smaller buffer; the gauges of both live processes */
    m.v[req] = 0;
    m.v[QD_M_UDP_RCVBUF] = 500;
    QD_EXPECT_INT(metrics_msg(&s, QD_ROLE_WORKER, 1, 102, 9, &m, qd_metrics_schema(), false), 0);
    QD_EXPECT_INT(metric(&s, "quicd_udp_receive_buffer_bytes"), 500);
    QD_EXPECT_INT(metric(&s, "quicd_connections_open{transport=\"quic\"}"), 12);
    /* pid 100 said it exits: its gauges are gone, its counts stay */
    m.v[req] = 15;
    m.v[QD_M_UDP_RCVBUF] = 1000;
    QD_EXPECT_INT(metrics_msg(&s, QD_ROLE_WORKER, 0, 100, 5, &m, qd_metrics_schema(), true), 0);
    QD_EXPECT_INT(metric(&s, "quicd_connections_open{transport=\"quic\"}"), 8);
    QD_EXPECT_INT(metric(&s, h3ok), 18);
    /* another table, or garbage: refused, nothing counted */
    m.v[req] = 1000;
    QD_EXPECT_INT(metrics_msg(&s, QD_ROLE_WORKER, 0, 101, 9, &m, qd_metrics_schema() ^ 1, false), -1);
    QD_EXPECT_INT(metric(&s, h3ok), 18);
    /* a count that went down is a process counting from zero again */
    m.v[req] = 1;
    QD_EXPECT_INT(metrics_msg(&s, QD_ROLE_WORKER, 0, 101, 9, &m, qd_metrics_schema(), false), 0);
    QD_EXPECT_INT(metric(&s, h3ok), 19);
    stats_db_close(&s);
    stats_metrics_forget(&s);

    /* stats starts again: the totals and each process's last report come back */
    QD_EXPECT_INT(open_stats(&s, db_path("metrics.db")), 0);
    s.child.conf.stats_interval_ms = 60000;
    stats_metrics_load(&s);
    QD_EXPECT_INT(metric(&s, h3ok), 19);
    m.v[req] = 4;
    QD_EXPECT_INT(metrics_msg(&s, QD_ROLE_WORKER, 0, 101, 9, &m, qd_metrics_schema(), false), 0);
    QD_EXPECT_INT(metric(&s, h3ok), 22);
    QD_EXPECT_STR(query(s.db, "SELECT value FROM metric_totals WHERE series = "
                              "'quicd_http_requests_total{protocol=\"h3\",class=\"2xx\"}'"),
                  "22");
    /* a row per report with a count or a gauge not zero: all but the refused one */
    QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM metric_intervals"), "7");
    stats_db_close(&s);
    stats_metrics_forget(&s);
}

/*
 * route_msg - worker 0 process |pid| reports |n| routes (|names|, each with
 * the requests of class 2xx |ok|, 100 bytes out each and as many
 * durations of 4 ms) through the wire; |bad| 1: the last F_ROUTE without
 * its slots, 2: slots of the wrong length
 */
static int route_msg(stats *s, uint32_t pid, const char *const *names, const uint64_t *ok, int n,
                     int bad)
{
    static qd_metrics m;
    static uint8_t buf[QD_METRICS_NSLOTS * 10];
    uint8_t enc[QD_ROUTE_NSLOTS * 10];
    size_t len = qd_metrics_encode(&m, buf, sizeof(buf));

    qd_ipc_msg_init(&built, QD_MSG_METRICS, 0);
    qd_ipc_put_u32(&built, QD_F_ROLE, QD_ROLE_WORKER);
    qd_ipc_put_u32(&built, QD_F_INSTANCE, 0);
    qd_ipc_put_u32(&built, QD_F_PID, pid);
    qd_ipc_put_u64(&built, QD_F_TIME_MS, pid);
    qd_ipc_put_u32(&built, QD_F_SCHEMA, qd_metrics_schema());
    qd_ipc_put_bytes(&built, QD_F_METRICS, buf, len);
    for (int i = 0; i < n; i++) {
        uint64_t v[QD_ROUTE_NSLOTS] = {0};
        v[QD_ROUTE_REQUESTS + 1] = ok[i];
        v[QD_ROUTE_BYTES_OUT] = 100 * ok[i];
        for (uint64_t k = 0; k < ok[i]; k++)
            qd_metrics_hist_observe(&v[QD_ROUTE_DURATION], 4000);
        size_t elen = qd_metrics_encode_n(v, QD_ROUTE_NSLOTS, enc, sizeof(enc));
        qd_ipc_put_str(&built, QD_F_ROUTE, names[i]);
        if (bad == 1 && i == n - 1)
            break;
        qd_ipc_put_bytes(&built, QD_F_ROUTE_SLOTS, enc, bad == 2 && i == n - 1 ? elen - 1 : elen);
    }
    int w = qd_ipc_encode(&built, wire, sizeof(wire));
    if (w < 0 || qd_ipc_decode(&got, wire, (size_t)w, 0) != 0)
        return -99;
    int rv = stats_metrics_receive(s, &got);
    stats_db_commit(s);
    return rv;
}

/*
 * The aggregates by route: a row per report and route that grew, with its
 * growth; a new process counts from zero; malformed pairs are refused; a
 * process read back from the database after a restart of stats gives the
 * base first (nothing counted twice); stats_retention prunes them.
 */
static void test_stats_metrics_routes(void)
{
    static const char *const two[] = {"*/api/", "local"};
    stats s;

    unlink(db_path("routes.db"));
    QD_EXPECT_INT(open_stats(&s, db_path("routes.db")), 0);
    if (s.db == NULL)
        return;
    s.child.conf.stats_interval_ms = 60000;
    stats_metrics_load(&s);
    QD_EXPECT_INT(route_msg(&s, 200, two, (uint64_t[]){3, 1}, 2, 0), 0);
    QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM route_intervals"), "2");
    QD_EXPECT_STR(query(s.db, "SELECT hex(durations) FROM route_intervals WHERE route = 'local'"),
                  "0000010000000000000000000000A01F"); /* 1 in (2.5, 5] ms, 4000 us */
    QD_EXPECT_INT(route_msg(&s, 200, two, (uint64_t[]){5, 1}, 2, 0), 0); /* local did not grow */
    QD_EXPECT_STR(query(s.db, "SELECT count(*) || ' ' || max(requests) FROM route_intervals WHERE "
                              "route = '*/api/' AND rowid > 2"),
                  "1 2");
    QD_EXPECT_INT(route_msg(&s, 201, two, (uint64_t[]){1}, 1, 0), 0); /* a new process */
    QD_EXPECT_INT(route_msg(&s, 200, two, (uint64_t[]){9, 9}, 2, 1), -1);
    QD_EXPECT_INT(route_msg(&s, 200, two, (uint64_t[]){9, 9}, 2, 2), -1);
    QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM route_intervals"), "4");
    stats_db_close(&s);
    stats_metrics_forget(&s);

    /* stats again: pid 200's next report is the base, the one after counts */
    QD_EXPECT_INT(open_stats(&s, db_path("routes.db")), 0);
    s.child.conf.stats_interval_ms = 60000;
    stats_metrics_load(&s);
    QD_EXPECT_INT(route_msg(&s, 200, two, (uint64_t[]){7, 1}, 2, 0), 0);
    QD_EXPECT_STR(query(s.db, "SELECT count(*) FROM route_intervals"), "4");
    QD_EXPECT_INT(route_msg(&s, 200, two, (uint64_t[]){8, 1}, 2, 0), 0);
    QD_EXPECT_STR(query(s.db, "SELECT group_concat(x, ' ') FROM (SELECT route || '=' || "
                              "sum(requests) || '/' || sum(status_2xx) || '/' || sum(bytes_out) "
                              "AS x FROM route_intervals GROUP BY route ORDER BY route)"),
                  "*/api/=7/7/700 local=1/1/100");
    /* stats_retention: an old row goes, the others stay */
    exec_ok(s.db, "INSERT INTO route_intervals VALUES (1000, 2, 0, 1000, 'old', 1, 0, 1, 0, 0, 0, "
                  "0, 0, 0, x'00')");
    stats_db_prune(&s, 86400000, 86400000);
    QD_EXPECT_STR(query(s.db, "SELECT count(*) || ' ' || sum(route = 'old') FROM route_intervals"),
                  "5 0");
    stats_db_close(&s);
    stats_metrics_forget(&s);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/test_stats_db.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 99;
    }
    qd_log_set_level(QD_LOG_ERR);
    QD_RUN(test_stats_db_migrate_v4);
    QD_RUN(test_stats_db_migrate_v4_rows_written_after);
    QD_RUN(test_stats_db_record_protocol);
    QD_RUN(test_stats_db_migrate_v5);
    QD_RUN(test_stats_db_record_upstream);
    QD_RUN(test_stats_db_batch_groups);
    QD_RUN(test_stats_db_request_seconds);
    QD_RUN(test_stats_db_migrate_v7);
    QD_RUN(test_stats_db_two_writers);
    QD_RUN(test_stats_db_newer_version_refused);
    QD_RUN(test_stats_metrics);
    QD_RUN(test_stats_metrics_routes);
    static const char *const files[] = {"v4.db",   "v4b.db",   "v5.db",     "new.db", "new6.db",
                                        "proto.db", "up.db",   "two.db",    "v7.db",  "metrics.db",
                                        "routes.db", "groups.db", "seconds.db", "v7m.db"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char side[600];
        unlink(db_path(files[i]));
        snprintf(side, sizeof(side), "%s-wal", db_path(files[i]));
        unlink(side);
        snprintf(side, sizeof(side), "%s-shm", db_path(files[i]));
        unlink(side);
    }
    rmdir(dir);
    QD_TEST_DONE();
}
