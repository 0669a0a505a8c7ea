/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemons/stats/stats_row.c, the rows a record becomes
 * before the commit binds them: each record is encoded and decoded as
 * the stats channel carries it, added to a buffer, and its row bound to
 * "SELECT ?1, ?2, ..." on an in-memory SQLite database, so the test reads
 * back exactly what the INSERT would store (value and type). Malformed
 * records are refused and leave the buffer as it was; rows come back in
 * order, whatever the length of their strings; the virtual table
 * stats_rows reads the same values, every row's or one table's.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "qd_buf.h"
#include "qd_ipc.h"
#include "qd_log.h"
#include "qd_test.h"

#include "stats.h"

static qd_ipc_msg built, got;
static uint8_t wire[QD_IPC_MAX_MSG];
static sqlite3 *db;

/* add - |built| as stats receives it (encoded, decoded), added to |rows| */
static int add(qd_buf *rows)
{
    int n = qd_ipc_encode(&built, wire, sizeof(wire));

    if (n < 0 || qd_ipc_decode(&got, wire, (size_t)n, 0) != 0) {
        QD_FAIL("record type %u does not encode and decode", built.type);
        return -99;
    }
    return stats_row_add(rows, &got);
}

/*
 * values - |r| bound to SELECT ?1 ... ?N and read back: "type:value" per
 * column, separated by '|' (i: integer, r: real, t: text, n: NULL)
 */
static const char *values(const stats_row *r)
{
    static char out[4096];
    char sql[512];
    size_t n = 0, len = 0;
    sqlite3_stmt *st;

    n = (size_t)snprintf(sql, sizeof(sql), "SELECT ?1");
    for (int c = 2; c <= stats_row_columns(r); c++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, ", ?%d", c);
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(out, sizeof(out), "error: %s", sqlite3_errmsg(db));
        return out;
    }
    stats_row_bind(st, 0, r);
    if (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            int type = sqlite3_column_type(st, c);
            const char *t = (const char *)sqlite3_column_text(st, c);
            len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%c:%s", c ? "|" : "",
                                    type == SQLITE_INTEGER ? 'i'
                                    : type == SQLITE_FLOAT ? 'r'
                                    : type == SQLITE_TEXT  ? 't'
                                                           : 'n',
                                    t ? t : "");
        }
    }
    sqlite3_finalize(st);
    return out;
}

/* req - a REC_REQUEST as worker_rec_request() composes it */
static void req(const char *path, uint32_t status)
{
    qd_ipc_msg_init(&built, QD_MSG_REC_REQUEST, 0);
    qd_ipc_put_str(&built, QD_F_CONN_ID, "c0ffee");
    qd_ipc_put_u32(&built, QD_F_INSTANCE, 1);
    qd_ipc_put_u64(&built, QD_F_QUIC_STREAM, 4);
    qd_ipc_put_u64(&built, QD_F_TIME_MS, 5000);
    qd_ipc_put_str(&built, QD_F_METHOD, "GET");
    qd_ipc_put_str(&built, QD_F_PATH, path);
    qd_ipc_put_u32(&built, QD_F_STATUS, status);
    qd_ipc_put_u64(&built, QD_F_BYTES_IN, 0);
    qd_ipc_put_u64(&built, QD_F_BYTES_OUT, 1024);
    qd_ipc_put_u64(&built, QD_F_DURATION_US, 250);
}

/* first - the first row of |rows| (NULL: none) */
static const stats_row *first(const qd_buf *rows)
{
    size_t pos = 0;

    return stats_row_next(rows, &pos);
}

static void test_stats_row_request(void)
{
    qd_buf rows;

    qd_buf_init(&rows);
    req("/index.html", 200);
    qd_ipc_put_str(&built, QD_F_PROTO, QD_PROTO_H2);
    QD_EXPECT_INT(add(&rows), STATS_T_REQUEST);
    const stats_row *r = first(&rows);
    if (r == NULL) {
        QD_FAIL("no row");
        goto out;
    }
    QD_EXPECT_INT(stats_row_table(r), STATS_T_REQUEST);
    QD_EXPECT_INT(stats_row_columns(r), STATS_REQ_COLS);
    /* time_ms conn_id worker stream_id method path status bytes_in bytes_out duration_us
     * ttfb_us protocol upstream upstream_status upstream_ms: absent ttfb and upstream NULL */
    QD_EXPECT_STR(values(r), "i:5000|t:c0ffee|i:1|i:4|t:GET|t:/index.html|i:200|i:0|i:1024|"
                             "i:250|n:|t:h2|n:|n:|n:");
out:
    qd_buf_release(&rows);
}

static void test_stats_row_request_upstream(void)
{
    qd_buf rows;

    qd_buf_init(&rows);
    req("/api", 502);
    qd_ipc_put_str(&built, QD_F_SERVER, "10.0.0.1:8080");
    qd_ipc_put_u32(&built, QD_F_UP_STATUS, 0);
    qd_ipc_put_u64(&built, QD_F_UP_TIME_US, 1500);
    QD_EXPECT_INT(add(&rows), STATS_T_REQUEST);
    if (first(&rows) != NULL)
        QD_EXPECT_STR(values(first(&rows)), "i:5000|t:c0ffee|i:1|i:4|t:GET|t:/api|i:502|i:0|"
                                            "i:1024|i:250|n:|t:h3|t:10.0.0.1:8080|i:0|r:1.5");
    qd_buf_release(&rows);
}

static void test_stats_row_protocol(void)
{
    static const struct {
        const char *proto; /* NULL: no F_PROTO */
        const char *want;
    } cases[] = {
        {NULL, "t:h3"}, /* workers from before TCP */
        {"http/1.1", "t:http/1.1"},
        {"h3-29", "t:h3-29"},                                /* odd but printable: as sent */
        {"a b", "t:unknown"},                                /* a space */
        {"", "t:unknown"},                                   /* empty */
        {"0123456789012345678901234567890123", "t:unknown"}, /* STATS_PROTO_MAX or longer */
    };
    qd_buf rows;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        qd_buf_init(&rows);
        req("/", 200);
        if (cases[i].proto != NULL)
            qd_ipc_put_str(&built, QD_F_PROTO, cases[i].proto);
        QD_EXPECT_INT(add(&rows), STATS_T_REQUEST);
        if (first(&rows) != NULL)
            QD_EXPECT_CONTAINS(values(first(&rows)), cases[i].want);
        qd_buf_release(&rows);
    }
}

static void test_stats_row_u64_clamped(void)
{
    qd_buf rows;

    qd_buf_init(&rows);
    req("/", 200);
    qd_ipc_put_u64(&built, QD_F_TTFB_US, UINT64_MAX);
    QD_EXPECT_INT(add(&rows), STATS_T_REQUEST);
    if (first(&rows) != NULL)
        QD_EXPECT_CONTAINS(values(first(&rows)), "|i:9223372036854775807|");
    qd_buf_release(&rows);
}

/* a malformed record is refused whole: the buffer keeps what it had */
static void test_stats_row_refused(void)
{
    static char long_path[1200], long_server[QD_REC_SERVER_MAX + 1];
    static const struct {
        const char *name;
        int what;
    } cases[] = {
        {"status over 999", 0},
        {"conn_id of 64 bytes", 1},
        {"method of 32 bytes", 2},
        {"path of 1100 bytes", 3},
        {"no path", 4},
        {"empty server", 5},
        {"server too long", 6},
        {"upstream status over 999", 7},
        {"not a record", 8},
        {"sample without time", 9},
    };
    qd_buf rows;

    memset(long_path, 'a', 1100);
    memset(long_server, 's', QD_REC_SERVER_MAX);
    qd_buf_init(&rows);
    req("/kept", 200);
    QD_EXPECT_INT(add(&rows), STATS_T_REQUEST);
    size_t len = rows.len;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        switch (cases[i].what) {
        case 0:
            req("/", 1000);
            break;
        case 1:
            qd_ipc_msg_init(&built, QD_MSG_REC_REQUEST, 0);
            qd_ipc_put_str(&built, QD_F_CONN_ID,
                           "0123456789012345678901234567890123456789012345678901234567890123");
            qd_ipc_put_u32(&built, QD_F_INSTANCE, 1);
            qd_ipc_put_u64(&built, QD_F_QUIC_STREAM, 4);
            qd_ipc_put_u64(&built, QD_F_TIME_MS, 5000);
            qd_ipc_put_str(&built, QD_F_METHOD, "GET");
            qd_ipc_put_str(&built, QD_F_PATH, "/");
            qd_ipc_put_u32(&built, QD_F_STATUS, 200);
            break;
        case 2:
            qd_ipc_msg_init(&built, QD_MSG_REC_REQUEST, 0);
            qd_ipc_put_str(&built, QD_F_CONN_ID, "c0ffee");
            qd_ipc_put_u32(&built, QD_F_INSTANCE, 1);
            qd_ipc_put_u64(&built, QD_F_QUIC_STREAM, 4);
            qd_ipc_put_u64(&built, QD_F_TIME_MS, 5000);
            qd_ipc_put_str(&built, QD_F_METHOD, "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF");
            qd_ipc_put_str(&built, QD_F_PATH, "/");
            qd_ipc_put_u32(&built, QD_F_STATUS, 200);
            break;
        case 3:
            req(long_path, 200);
            break;
        case 4:
            qd_ipc_msg_init(&built, QD_MSG_REC_REQUEST, 0);
            qd_ipc_put_str(&built, QD_F_CONN_ID, "c0ffee");
            qd_ipc_put_u32(&built, QD_F_INSTANCE, 1);
            qd_ipc_put_u64(&built, QD_F_QUIC_STREAM, 4);
            qd_ipc_put_u64(&built, QD_F_TIME_MS, 5000);
            qd_ipc_put_str(&built, QD_F_METHOD, "GET");
            qd_ipc_put_u32(&built, QD_F_STATUS, 200);
            break;
        case 5:
            req("/", 502);
            qd_ipc_put_str(&built, QD_F_SERVER, "");
            break;
        case 6:
            req("/", 502);
            qd_ipc_put_str(&built, QD_F_SERVER, long_server);
            break;
        case 7:
            req("/", 502);
            qd_ipc_put_str(&built, QD_F_SERVER, "a:1");
            qd_ipc_put_u32(&built, QD_F_UP_STATUS, 1000);
            break;
        case 8:
            qd_ipc_msg_init(&built, QD_MSG_READY, 0);
            break;
        default:
            qd_ipc_msg_init(&built, QD_MSG_REC_SAMPLE, 0);
            qd_ipc_put_u32(&built, QD_F_INSTANCE, 0);
            break;
        }
        int rv = add(&rows);
        if (rv != -1)
            QD_FAIL("%s: got %d, want -1", cases[i].name, rv);
        if (rows.len != len)
            QD_FAIL("%s: the buffer grew from %zu to %zu bytes", cases[i].name, len, rows.len);
    }
    qd_buf_release(&rows);
}

static void test_stats_row_conn(void)
{
    qd_buf rows;

    qd_buf_init(&rows);
    qd_ipc_msg_init(&built, QD_MSG_REC_CONN, 0);
    qd_ipc_put_str(&built, QD_F_CONN_ID, "beef");
    qd_ipc_put_u32(&built, QD_F_INSTANCE, 2);
    qd_ipc_put_str(&built, QD_F_PEER, "192.0.2.1:4433");
    qd_ipc_put_str(&built, QD_F_PEER, "192.0.2.1:5555"); /* a migration */
    qd_ipc_put_str(&built, QD_F_ADDR, "127.0.0.1:443");
    qd_ipc_put_u64(&built, QD_F_TIME_MS, 1000);
    qd_ipc_put_u64(&built, QD_F_END_MS, 2000);
    qd_ipc_put_u32(&built, QD_F_FLAGS, QD_REC_F_RESUMED | QD_REC_F_RETRY);
    qd_ipc_put_u32(&built, QD_F_CLOSE_BY, QD_REC_CLOSE_BY_CLIENT);
    QD_EXPECT_INT(add(&rows), STATS_T_CONN);
    const stats_row *r = first(&rows);
    if (r == NULL) {
        QD_FAIL("no row");
        goto out;
    }
    QD_EXPECT_INT(stats_row_columns(r), STATS_CONN_COLS);
    /* the first path as peer, every path in paths, no close reason: dropped */
    QD_EXPECT_STR(values(r), "t:beef|i:2|t:192.0.2.1:4433|t:192.0.2.1:4433 192.0.2.1:5555|"
                             "t:127.0.0.1:443|i:1000|i:2000|n:|n:|n:|n:|i:1|i:0|i:1|n:|n:|n:|"
                             "n:|n:|n:|n:|n:|n:|n:|n:|t:client|t:dropped|n:|t:h3");
out:
    qd_buf_release(&rows);
}

/* rows of every kind and of odd lengths come back in order, each whole */
static void test_stats_row_order(void)
{
    static const char *const paths[] = {"/", "/ab", "/abcdefg", "/abcdefgh", "/x"};
    char want[64];
    qd_buf rows;
    size_t pos = 0;
    int n = 0;

    qd_buf_init(&rows);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        req(paths[i], 200);
        QD_EXPECT_INT(add(&rows), STATS_T_REQUEST);
        qd_ipc_msg_init(&built, QD_MSG_REC_SAMPLE, 0);
        qd_ipc_put_u32(&built, QD_F_INSTANCE, (uint32_t)i);
        qd_ipc_put_u64(&built, QD_F_TIME_MS, 7000);
        QD_EXPECT_INT(add(&rows), STATS_T_SAMPLE);
    }
    qd_ipc_msg_init(&built, QD_MSG_REC_LOSS, 0);
    qd_ipc_put_u32(&built, QD_F_ROLE, QD_ROLE_MASTER);
    qd_ipc_put_u64(&built, QD_F_TIME_MS, 8000);
    qd_ipc_put_u64(&built, QD_F_DROPS, 3);
    QD_EXPECT_INT(add(&rows), STATS_T_LOSS);
    qd_ipc_msg_init(&built, QD_MSG_REC_PROCESS, 0);
    qd_ipc_put_u32(&built, QD_F_EVENT, QD_EV_START);
    qd_ipc_put_u32(&built, QD_F_ROLE, QD_ROLE_WORKER);
    qd_ipc_put_u64(&built, QD_F_TIME_MS, 9000);
    qd_ipc_put_u32(&built, QD_F_PID, 42);
    QD_EXPECT_INT(add(&rows), STATS_T_EVENT);
    for (const stats_row *r; (r = stats_row_next(&rows, &pos)) != NULL; n++) {
        if (n < 10 && n % 2 == 0) {
            snprintf(want, sizeof(want), "|t:%s|", paths[n / 2]);
            QD_EXPECT_CONTAINS(values(r), want);
        } else if (n < 10) {
            QD_EXPECT_INT(stats_row_table(r), STATS_T_SAMPLE);
            snprintf(want, sizeof(want), "i:7000|i:%d|n:", n / 2);
            QD_EXPECT_CONTAINS(values(r), want);
        } else if (n == 10) {
            QD_EXPECT_STR(values(r), "i:8000|t:master|n:|i:3|t:channel");
        } else {
            QD_EXPECT_STR(values(r), "i:9000|t:start|t:worker|n:|i:42|n:|n:|n:|n:");
        }
    }
    QD_EXPECT_INT(n, 12);
    QD_EXPECT_INT(pos, rows.len);
    qd_buf_release(&rows);
}

/* query - the rows of |sql| on db, a line per row, columns as values() writes them */
static const char *query(const char *sql)
{
    static char out[4096];
    size_t len = 0;
    sqlite3_stmt *st;

    out[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(out, sizeof(out), "error: %s", sqlite3_errmsg(db));
        return out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            int type = sqlite3_column_type(st, c);
            const char *t = (const char *)sqlite3_column_text(st, c);
            len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%c:%s", c ? "|" : "",
                                    type == SQLITE_INTEGER ? 'i'
                                    : type == SQLITE_FLOAT ? 'r'
                                    : type == SQLITE_TEXT  ? 't'
                                                           : 'n',
                                    t ? t : "");
        }
        len += (size_t)snprintf(out + len, sizeof(out) - len, "\n");
    }
    sqlite3_finalize(st);
    return out;
}

static void test_stats_row_virtual_table(void)
{
    static qd_buf rows; /* registered once, for the connection's life */
    static bool is_registered;

    qd_buf_reset(&rows);
    if (!is_registered)
        QD_EXPECT_INT(stats_row_register(db, &rows), 0);
    is_registered = true;
    QD_EXPECT_STR(query("SELECT count(*) FROM stats_rows"), "i:0\n");
    req("/a", 200);
    QD_EXPECT_INT(add(&rows), STATS_T_REQUEST);
    qd_ipc_msg_init(&built, QD_MSG_REC_SAMPLE, 0);
    qd_ipc_put_u32(&built, QD_F_INSTANCE, 3);
    qd_ipc_put_u64(&built, QD_F_TIME_MS, 7000);
    QD_EXPECT_INT(add(&rows), STATS_T_SAMPLE);
    req("/b", 404);
    qd_ipc_put_str(&built, QD_F_SERVER, "b:80");
    qd_ipc_put_u64(&built, QD_F_UP_TIME_US, 2500);
    QD_EXPECT_INT(add(&rows), STATS_T_REQUEST);
    /* one table's rows, in order; columns past a row's last are NULL */
    QD_EXPECT_STR(query("SELECT c1, c6, c7, c12, c13, c15, c16, c29 FROM stats_rows WHERE tbl = 2"),
                  "i:5000|t:/a|i:200|t:h3|n:|n:|n:|n:\n"
                  "i:5000|t:/b|i:404|t:h3|t:b:80|r:2.5|n:|n:\n");
    /* every row, with its table */
    QD_EXPECT_STR(query("SELECT tbl, c2 FROM stats_rows"), "i:2|t:c0ffee\ni:3|i:3\ni:2|t:c0ffee\n");
    QD_EXPECT_STR(query("SELECT count(*) FROM stats_rows WHERE tbl = 1"), "i:0\n");
    /* what an INSERT ... SELECT from it stores */
    QD_EXPECT_STR(query("CREATE TEMP TABLE r (a INTEGER, b TEXT, c REAL)"), "");
    QD_EXPECT_STR(query("INSERT INTO r SELECT c1, c6, c15 FROM stats_rows WHERE tbl = 2"), "");
    QD_EXPECT_STR(query("SELECT a, b, c FROM r"), "i:5000|t:/a|n:\ni:5000|t:/b|r:2.5\n");
    qd_buf_release(&rows);
}

int main(void)
{
    qd_log_set_level(QD_LOG_ERR);
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
        fprintf(stderr, "sqlite3_open failed\n");
        return 99;
    }
    QD_RUN(test_stats_row_request);
    QD_RUN(test_stats_row_request_upstream);
    QD_RUN(test_stats_row_protocol);
    QD_RUN(test_stats_row_u64_clamped);
    QD_RUN(test_stats_row_refused);
    QD_RUN(test_stats_row_conn);
    QD_RUN(test_stats_row_order);
    QD_RUN(test_stats_row_virtual_table);
    sqlite3_close(db);
    QD_TEST_DONE();
}
