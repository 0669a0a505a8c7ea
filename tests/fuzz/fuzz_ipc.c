/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the IPC decoder over every message type and field
 * tag, and for the stats daemon's record handlers (stats_db_record,
 * stats_db_batch) on an in-memory database.
 *
 * Byte 0 bit 7 clear: raw mode. Bits 0-3 choose how many descriptors
 * "arrived"; the rest is the message. Bit 7 set: structured mode. The
 * target composes a message of one of the known types (and now and then
 * an unknown one) from fields whose tags cover 0..85 and whose values are
 * of the right size for the tag's kind or deliberately not, strings with
 * or without a NUL; a REC_BATCH gets whole records as its F_BODY fields.
 *
 * Checked: a message decodes exactly when this file's own reading of the
 * catalogue in qd_ipc.h (tag kinds, descriptor counts per type) says it
 * must; a decoded message re-encodes to the very bytes it came from and
 * decodes again to the same; qd_ipc_next visits every field inside the
 * body and the bounded getters agree with it for every tag 0..85 (the
 * first field of a tag, the exact size for u32/u64, the NUL and |cap|
 * rules for strings); every REC_* message goes to stats_db_record and a
 * REC_BATCH to stats_db_batch, which never fail to write on a healthy
 * database (stats_db_commit writes what they kept), add one row per
 * record they accept (none for a process
 * event already stored), and count each record they refuse; a connection
 * or request row's protocol is F_PROTO when it is 1 to 31 printable ASCII
 * characters without spaces, "h3" without F_PROTO, else "unknown"; a
 * request row's upstream, upstream_status and upstream_ms are F_SERVER,
 * F_UP_STATUS and F_UP_TIME_US / 1000, NULL each when absent.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "qd_err.h"
#include "qd_ipc.h"
#include "qd_log.h"

#include "stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { K_NONE, K_U32, K_U64, K_STR, K_BYTES };

/* Tag kinds as the comments in qd_ipc.h declare them (a second reading). */
static const uint8_t kinds[] = {
    [QD_F_TEXT] = K_STR,          [QD_F_STATUS] = K_U32,       [QD_F_ROLE] = K_U32,
    [QD_F_INSTANCE] = K_U32,      [QD_F_DEADLINE_MS] = K_U32,  [QD_F_CONNECTIONS] = K_U32,
    [QD_F_STREAMS] = K_U32,       [QD_F_ADDR] = K_STR,         [QD_F_PID] = K_U32,
    [QD_F_EVENT] = K_U32,         [QD_F_TIME_MS] = K_U64,      [QD_F_EXIT_STATUS] = K_U32,
    [QD_F_SIGNAL] = K_U32,        [QD_F_GENERATION] = K_U32,   [QD_F_JSON] = K_U32,
    [QD_F_RESTARTS] = K_U32,      [QD_F_SOCKETS] = K_U32,      [QD_F_SECRET] = K_BYTES,
    [QD_F_STREAM] = K_U64,        [QD_F_METHOD] = K_STR,       [QD_F_PATH] = K_STR,
    [QD_F_AUTHORITY] = K_STR,     [QD_F_HEADER] = K_BYTES,     [QD_F_FLAGS] = K_U32,
    [QD_F_BODY] = K_BYTES,        [QD_F_OFFSET] = K_U64,       [QD_F_LENGTH] = K_U64,
    [QD_F_CREDIT] = K_U32,        [QD_F_SCHEME] = K_STR,       [QD_F_PEER] = K_STR,
    [QD_F_TICKET_KEY] = K_BYTES,  [QD_F_LOCAL] = K_BYTES,      [QD_F_REMOTE] = K_BYTES,
    [QD_F_ENDPOINT] = K_U32,      [QD_F_QUIC_STREAM] = K_U64,  [QD_F_CONN_ID] = K_STR,
    [QD_F_END_MS] = K_U64,        [QD_F_HANDSHAKE_US] = K_U64, [QD_F_ALPN] = K_STR,
    [QD_F_CIPHER] = K_STR,        [QD_F_QUIC_VERSION] = K_U32, [QD_F_BYTES_IN] = K_U64,
    [QD_F_BYTES_OUT] = K_U64,     [QD_F_PKTS_IN] = K_U64,      [QD_F_PKTS_OUT] = K_U64,
    [QD_F_PKTS_LOST] = K_U64,     [QD_F_SRTT_US] = K_U64,      [QD_F_MIN_RTT_US] = K_U64,
    [QD_F_CWND] = K_U64,          [QD_F_CC] = K_STR,           [QD_F_MIGRATIONS] = K_U32,
    [QD_F_CLOSE_BY] = K_U32,      [QD_F_ERROR_CODE] = K_U64,   [QD_F_CLOSE_REASON] = K_U32,
    [QD_F_DURATION_US] = K_U64,   [QD_F_TTFB_US] = K_U64,      [QD_F_INTERVAL_MS] = K_U32,
    [QD_F_HANDSHAKES] = K_U64,    [QD_F_REQUESTS] = K_U64,     [QD_F_GSO_BATCHES] = K_U64,
    [QD_F_DROPS] = K_U64,         [QD_F_MEM_BYTES] = K_U64,     [QD_F_HALF_OPEN] = K_U32,
    [QD_F_NEW_CONNS] = K_U32,     [QD_F_RETRIES] = K_U64,      [QD_F_RETRY_DROPS] = K_U64,
    [QD_F_PROTO] = K_STR, [QD_F_TCP_CONNS] = K_U32, [QD_F_TCP_ADDR] = K_STR,
    [QD_F_CID_TAG] = K_U32, [QD_F_UDP_SEND_ERRORS] = K_U64, [QD_F_UDP_EMSGSIZE] = K_U64,
    [QD_F_CLOSED_HEADERS] = K_U64, [QD_F_CLOSED_RESETS] = K_U64, [QD_F_CLOSED_FLOODS] = K_U64,
    [QD_F_CLOSED_PROTOCOL] = K_U64, [QD_F_SEQ] = K_U64, [QD_F_GROUP] = K_STR,
    [QD_F_SERVER] = K_STR, [QD_F_UP_ACTIVE] = K_U32, [QD_F_UP_IDLE] = K_U32,
    [QD_F_UP_FAILS] = K_U64, [QD_F_UP_STATUS] = K_U32, [QD_F_UP_TIME_US] = K_U64,
    [QD_F_PROXIED] = K_U64, [QD_F_PROXY_ERRORS] = K_U64, [QD_F_PROXY_RETRIES] = K_U64,
    [QD_F_UDP_RXQ_DROPS] = K_U64, [QD_F_UDP_RCVBUF] = K_U32, [QD_F_UDP_SNDBUF] = K_U32,
    [QD_F_SCHEMA] = K_U32,        [QD_F_METRICS] = K_BYTES,    [QD_F_ROUTE] = K_STR,
    [QD_F_ROUTE_SLOTS] = K_BYTES,
};
#define TAG_LIMIT 97 /* structured tags are 0..96: every tag and both neighbours */

/* Every message type and the descriptors it may carry, per qd_ipc.h. */
static const struct {
    uint16_t type;
    uint8_t min_fds, max_fds;
} types[] = {
    {QD_MSG_CONFIG, 0, 0},       {QD_MSG_STOP, 0, 0},         {QD_MSG_CHANNEL, 1, 1},
    {QD_MSG_LOG_FD, 0, 1},       {QD_MSG_TLS_FILES, 0, 2},    {QD_MSG_READY, 0, 0},
    {QD_MSG_CONFIG_DONE, 0, 0},  {QD_MSG_STATUS, 0, 0},       {QD_MSG_CONNS_REQ, 1, 1},
    {QD_MSG_CONNS, 0, 0},        {QD_MSG_SOCKETS, 0, QD_IPC_MAX_FDS},
    {QD_MSG_FWD_PACKET, 0, 0},   {QD_MSG_LAYOUT, 0, 0},       {QD_MSG_REQ_HEAD, 0, 0},     {QD_MSG_REQ_BODY, 0, 0},
    {QD_MSG_REQ_CANCEL, 0, 0},   {QD_MSG_RESP_HEAD, 0, 1},    {QD_MSG_RESP_BODY, 0, 0},
    {QD_MSG_RESP_CREDIT, 0, 0},  {QD_MSG_RESP_INFO, 0, 0},    {QD_MSG_CTL_STATUS, 0, 0},
    {QD_MSG_CTL_RELOAD, 0, 0},   {QD_MSG_CTL_STOP, 0, 0},     {QD_MSG_CTL_REPLY, 0, 0},
    {QD_MSG_CTL_CONNS, 0, 0},    {QD_MSG_CTL_UPGRADE, 0, 0},  {QD_MSG_HANDOFF, 2, 3},
    {QD_MSG_REC_PROCESS, 0, 0},  {QD_MSG_REC_CONN, 0, 0},
    {QD_MSG_REC_REQUEST, 0, 0},  {QD_MSG_REC_SAMPLE, 0, 0},   {QD_MSG_REC_BATCH, 0, 0},
    {QD_MSG_REC_LOSS, 0, 0},     {QD_MSG_PROXY_TABLE, 0, 2},  {QD_MSG_CTL_UPSTREAMS, 0, 0},
    {QD_MSG_UP_CONNECT, 0, 0},   {QD_MSG_UP_CONNECTED, 0, 1}, {QD_MSG_UP_STATE, 0, 0},
    {QD_MSG_UP_REPORT, 0, 0},    {QD_MSG_UP_COUNTS, 0, 0},    {QD_MSG_METRICS, 0, 0},
    {QD_MSG_METRICS_REQ, 1, 1},  {QD_MSG_CTL_METRICS, 0, 0},  {QD_MSG_METRICS_HTTP, 0, 2},
};
#define TYPE_COUNT (sizeof(types) / sizeof(types[0]))

static qd_ipc_msg m, again, built, inner;
static uint8_t wire[QD_IPC_MAX_MSG], wire2[QD_IPC_MAX_MSG];
static stats db;
static unsigned inputs;

/* A cursor over the input; reads past the end give zeros. */
typedef struct cur {
    const uint8_t *p;
    size_t n;
} cur;

static uint8_t u8(cur *c)
{
    if (c->n == 0)
        return 0;
    c->n--;
    return *c->p++;
}

/* kind_of - what qd_ipc.h says tag |tag| holds */
static int kind_of(uint16_t tag)
{
    return tag < sizeof(kinds) ? kinds[tag] : K_NONE;
}

/* type_index - |type| in the catalogue, or -1 */
static int type_index(uint16_t type)
{
    for (size_t i = 0; i < TYPE_COUNT; i++)
        if (types[i].type == type)
            return (int)i;
    return -1;
}

/* db_open - a fresh in-memory stats database */
static void db_open(void)
{
    if (db.db != NULL)
        stats_db_close(&db);
    qd_log_set_level(QD_LOG_ERR); /* the dropped records' warnings are expected */
    stats_metrics_forget(&db);
    memset(&db, 0, sizeof(db));
    if (stats_db_open(&db, ":memory:") != 0)
        qd_panic("ipc: cannot open an in-memory stats database");
}

/* check_fields - qd_ipc_next and the getters agree on every tag */
static void check_fields(const qd_ipc_msg *msg)
{
    const uint8_t *first_val[TAG_LIMIT] = {NULL}, *v;
    size_t first_len[TAG_LIMIT] = {0}, pos = 0, len, prev = 0, count = 0;
    bool seen[TAG_LIMIT] = {false};
    uint16_t tag;

    while (qd_ipc_next(msg, &pos, &tag, &v, &len)) {
        if (pos <= prev || v < msg->body || v + len > msg->body + msg->len || pos > msg->len)
            qd_panic("ipc: qd_ipc_next left the body");
        if (kind_of(tag) == K_NONE)
            qd_panic("ipc: decoded a field with unknown tag %u", tag);
        prev = pos;
        count++;
        if (tag < TAG_LIMIT && !seen[tag]) {
            seen[tag] = true;
            first_val[tag] = v;
            first_len[tag] = len;
        }
    }
    if (pos != msg->len)
        qd_panic("ipc: qd_ipc_next stopped at %zu of %u", pos, msg->len);
    for (uint16_t t = 0; t < TAG_LIMIT; t++) {
        uint32_t v32;
        uint64_t v64;
        char text[300];
        const uint8_t *p;
        size_t n;
        int r32 = qd_ipc_get_u32(msg, t, &v32), r64 = qd_ipc_get_u64(msg, t, &v64);
        int rs = qd_ipc_get_str(msg, t, text, sizeof(text));
        int rb = qd_ipc_get_bytes(msg, t, &p, &n);
        if (!seen[t]) {
            if (r32 != QD_ERR_NOTFOUND || r64 != QD_ERR_NOTFOUND || rs != QD_ERR_NOTFOUND ||
                rb != QD_ERR_NOTFOUND)
                qd_panic("ipc: tag %u absent but found", t);
            continue;
        }
        v = first_val[t];
        len = first_len[t];
        if (rb != 0 || p != v || n != len)
            qd_panic("ipc: get_bytes(%u) is not the first field", t);
        if ((r32 == 0) != (len == 4) || (r32 != 0 && r32 != QD_ERR_INVAL))
            qd_panic("ipc: get_u32(%u) of %zu bytes gives %d", t, len, r32);
        if (r32 == 0 && v32 != ((uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 |
                                (uint32_t)v[2] << 8 | v[3]))
            qd_panic("ipc: get_u32(%u) value", t);
        if ((r64 == 0) != (len == 8) || (r64 != 0 && r64 != QD_ERR_INVAL))
            qd_panic("ipc: get_u64(%u) of %zu bytes gives %d", t, len, r64);
        bool has_nul = memchr(v, '\0', len) != NULL;
        int want = has_nul ? QD_ERR_INVAL : len + 1 > sizeof(text) ? QD_ERR_TOOBIG : 0;
        if (rs != want || (rs == 0 && (strlen(text) != len || memcmp(text, v, len) != 0)))
            qd_panic("ipc: get_str(%u) of %zu bytes gives %d, want %d", t, len, rs, want);
        if (kind_of(t) == K_STR && has_nul)
            qd_panic("ipc: a string field (tag %u) with a NUL decoded", t);
    }
    (void)count;
}

/* check_proto - the protocol column of the row |msg| (REC_CONN or REC_REQUEST) just added */
static void check_proto(const qd_ipc_msg *msg)
{
    const char *sql = msg->type == QD_MSG_REC_CONN
                          ? "SELECT protocol FROM connections WHERE rowid = ?1"
                          : "SELECT protocol FROM requests WHERE rowid = ?1";
    char want[STATS_PROTO_MAX] = "h3";
    const uint8_t *v;
    size_t len;
    sqlite3_stmt *st;

    if (qd_ipc_get_bytes(msg, QD_F_PROTO, &v, &len) == 0) {
        bool is_ok = len > 0 && len < sizeof(want);
        for (size_t i = 0; is_ok && i < len; i++)
            is_ok = v[i] > 0x20 && v[i] < 0x7f;
        if (is_ok) {
            memcpy(want, v, len);
            want[len] = '\0';
        } else {
            strcpy(want, "unknown");
        }
    }
    if (sqlite3_prepare_v2(db.db, sql, -1, &st, NULL) != SQLITE_OK)
        qd_panic("stats: %s", sqlite3_errmsg(db.db));
    sqlite3_bind_int64(st, 1, sqlite3_last_insert_rowid(db.db));
    const unsigned char *got = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    if (got == NULL || strcmp((const char *)got, want) != 0)
        qd_panic("stats: protocol %s stored, want %s", got ? (const char *)got : "(none)", want);
    sqlite3_finalize(st);
}

/* check_upstream - the upstream columns of the request row |msg| just added */
static void check_upstream(const qd_ipc_msg *msg)
{
    const uint8_t *v;
    size_t len;
    uint32_t status;
    uint64_t us;
    sqlite3_stmt *st;

    if (sqlite3_prepare_v2(db.db,
                           "SELECT upstream, upstream_status, upstream_ms FROM requests "
                           "WHERE rowid = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        qd_panic("stats: %s", sqlite3_errmsg(db.db));
    sqlite3_bind_int64(st, 1, sqlite3_last_insert_rowid(db.db));
    if (sqlite3_step(st) != SQLITE_ROW)
        qd_panic("stats: no request row");
    bool has_server = qd_ipc_get_bytes(msg, QD_F_SERVER, &v, &len) == 0;
    const unsigned char *got = sqlite3_column_text(st, 0);
    if (has_server != (got != NULL) ||
        (got != NULL && ((size_t)sqlite3_column_bytes(st, 0) != len || memcmp(got, v, len) != 0)))
        qd_panic("stats: upstream %s stored, F_SERVER %s", got ? "a value" : "NULL",
                 has_server ? "present" : "absent");
    bool has_status = qd_ipc_get_u32(msg, QD_F_UP_STATUS, &status) == 0;
    if (has_status != (sqlite3_column_type(st, 1) != SQLITE_NULL) ||
        (has_status && sqlite3_column_int64(st, 1) != status))
        qd_panic("stats: upstream_status does not match F_UP_STATUS");
    bool has_time = qd_ipc_get_u64(msg, QD_F_UP_TIME_US, &us) == 0;
    if (has_time != (sqlite3_column_type(st, 2) != SQLITE_NULL) ||
        (has_time && sqlite3_column_double(st, 2) != (double)us / 1000.0))
        qd_panic("stats: upstream_ms does not match F_UP_TIME_US");
    sqlite3_finalize(st);
}

/*
 * record_rows - the rows of the record tables (the metrics' own tables
 * change with every commit: stats counts what it wrote)
 */
static int record_rows(void)
{
    sqlite3_stmt *st;
    int n = 0;

    if (sqlite3_prepare_v2(db.db,
                           "SELECT (SELECT count(*) FROM process_events) + (SELECT count(*) FROM "
                           "connections) + (SELECT count(*) FROM requests) + (SELECT count(*) "
                           "FROM samples) + (SELECT count(*) FROM losses)",
                           -1, &st, NULL) != SQLITE_OK)
        qd_panic("stats: %s", sqlite3_errmsg(db.db));
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/*
 * check_metrics - a METRICS message: refused (malformed, another table)
 * or folded in; either way no counter of the totals goes down
 */
static void check_metrics(const qd_ipc_msg *msg)
{
    static qd_metrics before;

    /* the decoders themselves, on whatever bytes came (the schema check comes first in stats) */
    static qd_metrics scratch;
    static uint8_t again_buf[QD_METRICS_NSLOTS * 10];
    const uint8_t *p;
    size_t n;
    if (qd_ipc_get_bytes(msg, QD_F_METRICS, &p, &n) == 0) {
        if (qd_metrics_decode(&scratch, p, n) == 0) {
            static qd_metrics back;
            size_t len = qd_metrics_encode(&scratch, again_buf, sizeof(again_buf));
            if (len == 0 || qd_metrics_decode(&back, again_buf, len) != 0 ||
                memcmp(&back, &scratch, sizeof(back)) != 0)
                qd_panic("metrics: a decoded array does not encode and decode again");
        }
        memset(&scratch, 0, sizeof(scratch));
        qd_metrics_add_sparse(&scratch, p, n);
    }
    before = db.totals;
    int rv = stats_metrics_receive(&db, msg);
    if (rv != 0 && rv != -1)
        qd_panic("stats: metrics gives %d", rv);
    for (unsigned f = 0; f < QD_METRICS_NFAMILIES; f++) {
        const qd_metrics_family *fam = &qd_metrics_families[f];
        if (fam->type == QD_MT_GAUGE || fam->type == QD_MT_GAUGE_MIN)
            continue;
        for (size_t i = fam->first; i < fam->first + fam->nslots; i++)
            if (db.totals.v[i] < before.v[i] && before.v[i] - db.totals.v[i] < (1ULL << 62))
                qd_panic("stats: metrics: %s went down", fam->name);
    }
    if (stats_db_commit(&db) != 0)
        qd_panic("stats: metrics did not commit: %s", sqlite3_errmsg(db.db));
}

/* check_stats - hand a decoded REC_* message to the stats daemon's handlers */
static void check_stats(const qd_ipc_msg *msg)
{
    uint64_t bad = db.bad_records;
    int before = record_rows();

    if (msg->type == QD_MSG_METRICS) {
        check_metrics(msg);
        return;
    }

    if (msg->type == QD_MSG_REC_BATCH) {
        size_t pos = 0, len, records = 0;
        uint16_t tag;
        const uint8_t *v;
        while (qd_ipc_next(msg, &pos, &tag, &v, &len))
            records++;
        stats_db_batch(&db, msg);
        if (stats_db_commit(&db) != 0)
            qd_panic("stats: a batch did not commit: %s", sqlite3_errmsg(db.db));
        size_t rows = (size_t)(record_rows() - before);
        if (rows + (db.bad_records - bad) != records)
            qd_panic("stats: a batch of %zu fields gave %zu rows and %llu bad records", records,
                     rows, (unsigned long long)(db.bad_records - bad));
        return;
    }
    if (msg->type < QD_MSG_REC_PROCESS || msg->type > QD_MSG_REC_LOSS)
        return;
    int rv = stats_db_record(&db, msg);
    if (stats_db_commit(&db) != 0)
        qd_panic("stats: a record did not commit: %s", sqlite3_errmsg(db.db));
    int rows = record_rows() - before;
    /* a process event already in the table is not written again (by design) */
    int want_rows = msg->type == QD_MSG_REC_PROCESS && rows == 0 ? 0 : 1;
    if (rv == -2 || (rv == 0 && rows != want_rows) || (rv == -1 && rows != 0) || rv < -2 ||
        rv > 0)
        qd_panic("stats: record type %u gives %d and %d rows", msg->type, rv, rows);
    if (rv == 0 && (msg->type == QD_MSG_REC_CONN || msg->type == QD_MSG_REC_REQUEST))
        check_proto(msg);
    if (rv == 0 && msg->type == QD_MSG_REC_REQUEST)
        check_upstream(msg);
}

/* check_decoded - everything a decoded message must satisfy */
static void check_decoded(const qd_ipc_msg *msg, const uint8_t *buf, size_t len, size_t nfds)
{
    int ti = type_index(msg->type);

    if (ti < 0 || strcmp(qd_ipc_type_name(msg->type), "unknown") == 0)
        qd_panic("ipc: decoded unknown type %u", msg->type);
    if (nfds < types[ti].min_fds || nfds > types[ti].max_fds)
        qd_panic("ipc: type %u decoded with %zu descriptors", msg->type, nfds);
    if (msg->fd_count != 0)
        qd_panic("ipc: the decoder claims descriptors");
    check_fields(msg);
    int n = qd_ipc_encode(msg, wire2, sizeof(wire2));
    if (n < 0 || (size_t)n != len || memcmp(wire2, buf, len) != 0)
        qd_panic("ipc: type %u does not re-encode to its bytes (%d of %zu)", msg->type, n, len);
    if (qd_ipc_decode(&again, wire2, (size_t)n, nfds) != 0 || again.type != msg->type ||
        again.flags != msg->flags || again.id != msg->id || again.len != msg->len ||
        memcmp(again.body, msg->body, msg->len) != 0)
        qd_panic("ipc: type %u does not decode again to the same", msg->type);
    check_stats(msg);
}

/* fds_ok - may a message of |type| carry |nfds| descriptors? */
static bool fds_ok(uint16_t type, size_t nfds)
{
    int ti = type_index(type);

    return ti >= 0 && nfds >= types[ti].min_fds && nfds <= types[ti].max_fds;
}

/*
 * put_field - one field from the input: its tag (any of 0..85, mostly
 * known ones) and a value right or wrong for its kind. Returns whether the
 * field is one the decoder must accept; false also when it did not fit.
 */
static bool put_field(cur *c, qd_ipc_msg *msg, bool *fit)
{
    uint8_t sel = u8(c), b = u8(c);
    uint16_t tag = (uint16_t)(sel % TAG_LIMIT);
    int kind = kind_of(tag);
    uint8_t val[600];
    size_t len;
    bool is_ok = kind != K_NONE, is_wrong = (b & 0xe0) == 0xe0;

    switch (kind) {
    case K_U32:
        len = is_wrong ? b % 9 : 4;
        break;
    case K_U64:
        len = is_wrong ? b % 17 : 8;
        break;
    default:
        len = (size_t)(b & 0x1f) * (u8(c) % 19 + 1);
    }
    if (len > sizeof(val))
        len = sizeof(val);
    for (size_t i = 0; i < len; i++)
        val[i] = u8(c);
    if ((kind == K_U32 && len != 4) || (kind == K_U64 && len != 8))
        is_ok = false;
    if (kind == K_STR) {
        for (size_t i = 0; i < len; i++)
            if (val[i] == '\0')
                val[i] = is_wrong ? 0 : 'x'; /* a NUL only when asked for */
        if (memchr(val, '\0', len) != NULL)
            is_ok = false;
    }
    if (qd_ipc_put_bytes(msg, tag, val, len) != 0)
        *fit = false;
    return is_ok;
}

/* build - a message of |type| from the input; returns whether it must decode */
static bool build(cur *c, qd_ipc_msg *msg, uint16_t type, int depth)
{
    size_t nfields = u8(c) % 24;
    bool is_ok = true, fit = true;

    qd_ipc_msg_init(msg, type, (uint32_t)u8(c) << 8 | u8(c));
    msg->flags = u8(c);
    for (size_t i = 0; i < nfields && fit; i++) {
        if (type == QD_MSG_REC_BATCH && depth == 0 && (u8(c) & 3) != 0) {
            /* a whole record as F_BODY */
            static const uint16_t recs[] = {QD_MSG_REC_CONN, QD_MSG_REC_REQUEST,
                                            QD_MSG_REC_SAMPLE, QD_MSG_REC_PROCESS};
            uint8_t rec_wire[4096];
            build(c, &inner, recs[u8(c) % 4], 1);
            int n = qd_ipc_encode(&inner, rec_wire, sizeof(rec_wire));
            if (n > 0 && (u8(c) & 7) == 0)
                n = u8(c) % n; /* truncated */
            if (n < 0 || qd_ipc_put_bytes(msg, QD_F_BODY, rec_wire, (size_t)n) != 0)
                fit = false;
            continue;
        }
        is_ok &= put_field(c, msg, &fit);
    }
    return is_ok && fit;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cur c = {data, size};

    if (db.db == NULL || ++inputs % 2048 == 0)
        db_open(); /* keep the in-memory tables small */
    if (size < 1)
        return 0;
    uint8_t op = u8(&c);
    size_t nfds = op & 0x0f;
    if (nfds > QD_IPC_MAX_FDS + 1)
        nfds = QD_IPC_MAX_FDS + 1;

    if (!(op & 0x80)) {
        /* raw bytes: one message, and a record of several as qd_chan splits it */
        if (qd_ipc_decode(&m, c.p, c.n, nfds) == 0)
            check_decoded(&m, c.p, c.n, nfds);
        for (size_t off = 0; off < c.n;) {
            int fl = qd_ipc_frame(c.p + off, c.n - off);
            if (fl < 0)
                break;
            if ((size_t)fl < QD_IPC_HDR_LEN || (size_t)fl > c.n - off)
                qd_panic("ipc: a frame of %d bytes at %zu of %zu", fl, off, c.n);
            if ((size_t)fl == c.n)
                break; /* one message: decoded above */
            size_t k = off + (size_t)fl == c.n ? nfds : 0; /* the last message has the fds */
            if (qd_ipc_decode(&m, c.p + off, (size_t)fl, k) == 0)
                check_decoded(&m, c.p + off, (size_t)fl, k);
            off += (size_t)fl;
        }
        return 0;
    }

    /* structured: a known type, or now and then a neighbour of one */
    uint8_t t = u8(&c);
    uint16_t type = types[t % TYPE_COUNT].type;
    if ((t & 0xc0) == 0xc0)
        type = (uint16_t)(type + 1 + (t & 1) * 65534); /* type+1 or type-1 */
    nfds = (op & 0x40) ? nfds : types[t % TYPE_COUNT].min_fds;
    bool must = build(&c, &built, type, 0);
    int n = qd_ipc_encode(&built, wire, sizeof(wire));
    if (n < 0)
        qd_panic("ipc: a composed message does not encode");
    int rv = qd_ipc_decode(&m, wire, (size_t)n, nfds);
    bool want = must && fds_ok(type, nfds);
    if ((rv == 0) != want)
        qd_panic("ipc: type %u with %zu fds: decode gives %d, the catalogue says %s", type, nfds,
                 rv, want ? "accept" : "refuse");
    if (rv == 0)
        check_decoded(&m, wire, (size_t)n, nfds);
    return 0;
}
