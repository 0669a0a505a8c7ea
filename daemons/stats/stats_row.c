/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	stats_row - a record's columns, checked once on arrival and kept
 *	until the commit binds them
 * SYNOPSIS
 *	stats_row_add(), stats_row_next(), stats_row_table(), stats_row_columns(),
 *	stats_row_int(), stats_row_bind(), stats_row_register()
 * DESCRIPTION
 *	A decoded record (QD_MSG_REC_*) becomes one row of values for its
 *	table's INSERT (stats_db.c): integers clamped to SQLite's signed 64
 *	bits, strings copied out of the message (whose buffer the next
 *	datagram reuses), string constants of this program by reference, NULL
 *	for an optional field that is absent. stats_row_add is where records
 *	are checked: one that fails is refused whole and nothing is kept, so
 *	a row that is kept always binds; the commit only binds each value to
 *	its parameter. The rows of a batch lie one after the other in a
 *	qd_buf the caller owns: a stats_row header, its values, the bytes of
 *	its strings, padding to 8 bytes. The same rows can be read as the
 *	virtual table stats_rows, so that one INSERT ... SELECT writes all
 *	the rows of a table (the busy ones: requests, connections).
 *
 *	What each column holds is documented in quicd.conf(5), STATS
 *	DATABASE, and follows the statements in stats_db.c: column c of a
 *	row is parameter c of its table's INSERT.
 * DIAGNOSTICS
 *	None: a malformed record is the caller's to log and count.
 * SEE ALSO
 *	stats_db.c, libshared/qd_ipc.h (the records' fields)
 */
#include "config.h"

/* system */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* libraries */
#include <sqlite3.h>

/* libshared */
#include "qd_ipc.h"
#include "qd_proc.h"

/* local */
#include "stats.h"

enum { VAL_NULL, VAL_INT, VAL_REAL, VAL_TEXT, VAL_CONST };

/* stats_val - one column's value */
typedef struct stats_val {
    uint32_t kind; /* VAL_* */
    uint32_t len;  /* VAL_TEXT, VAL_CONST: bytes */
    union {
        int64_t i;     /* VAL_INT */
        double d;      /* VAL_REAL */
        uint32_t off;  /* VAL_TEXT: where it starts among the row's string bytes */
        const char *s; /* VAL_CONST: a constant of this program */
    } u;
} stats_val;

/* A row in the buffer: this header, |ncols| stats_val, the string bytes, padding. */
struct stats_row {
    uint16_t table; /* stats_table */
    uint16_t ncols;
    uint32_t size; /* bytes from this header to the next row's */
};

#define ROW_COLS_MAX STATS_CONN_COLS /* the most */
#define ROW_TEXT_MAX (STATS_ROW_MAX - sizeof(stats_row) - ROW_COLS_MAX * sizeof(stats_val))

/* The row being built: records are added one at a time (one thread). */
static stats_row head;
static stats_val vals[ROW_COLS_MAX];
static char text[ROW_TEXT_MAX];
static size_t text_len;
static bool is_full; /* a string did not fit: the record is refused */

/* start - an empty row of |ncols| NULL columns for |table| */
static void start(stats_table table, int ncols)
{
    head.table = (uint16_t)table;
    head.ncols = (uint16_t)ncols;
    memset(vals, 0, sizeof(vals[0]) * (size_t)ncols);
    text_len = 0;
    is_full = false;
}

/* put_int - column |col| (1-based, as the statement's parameters) is |v| */
static void put_int(int col, int64_t v)
{
    vals[col - 1].kind = VAL_INT;
    vals[col - 1].u.i = v;
}

/* put_u64 - an unsigned value, clamped to INT64_MAX */
static void put_u64(int col, uint64_t v)
{
    put_int(col, (int64_t)(v > INT64_MAX ? INT64_MAX : v));
}

/* put_real - column |col| is |v| */
static void put_real(int col, double v)
{
    vals[col - 1].kind = VAL_REAL;
    vals[col - 1].u.d = v;
}

/* put_text - |len| bytes at |p|, copied */
static void put_text(int col, const void *p, size_t len)
{
    if (len > sizeof(text) - text_len) {
        is_full = true; /* cannot happen: each field's length is bounded below */
        return;
    }
    memcpy(text + text_len, p, len);
    vals[col - 1].kind = VAL_TEXT;
    vals[col - 1].len = (uint32_t)len;
    vals[col - 1].u.off = (uint32_t)text_len;
    text_len += len;
}

/* put_const - the string constant |s|, not copied */
static void put_const(int col, const char *s)
{
    vals[col - 1].kind = VAL_CONST;
    vals[col - 1].len = (uint32_t)strlen(s);
    vals[col - 1].u.s = s;
}

/* opt_u32 - an optional u32 field, NULL when absent */
static void opt_u32(int col, const qd_ipc_msg *m, uint16_t tag)
{
    uint32_t v;

    if (qd_ipc_get_u32(m, tag, &v) == 0)
        put_int(col, v);
}

/* opt_u64 - an optional u64 field, NULL when absent */
static void opt_u64(int col, const qd_ipc_msg *m, uint16_t tag)
{
    uint64_t v;

    if (qd_ipc_get_u64(m, tag, &v) == 0)
        put_u64(col, v);
}

/*
 * req_text - string field |tag|, shorter than |cap| bytes (the decoder
 * refused any with a NUL). 0, or -1 when absent or too long.
 */
static int req_text(int col, const qd_ipc_msg *m, uint16_t tag, size_t cap)
{
    const uint8_t *v;
    size_t len;

    if (qd_ipc_get_bytes(m, tag, &v, &len) < 0 || len >= cap)
        return -1;
    put_text(col, v, len);
    return 0;
}

/* opt_str - an optional string field shorter than 1100 bytes, NULL when absent or longer */
static void opt_str(int col, const qd_ipc_msg *m, uint16_t tag)
{
    req_text(col, m, tag, 1100);
}

/*
 * put_proto - the protocol column from F_PROTO: absent is "h3" (workers
 * from before TCP); a value other than the three QD_PROTO_* is stored as
 * sent when it is 1 to STATS_PROTO_MAX - 1 printable ASCII characters
 * without spaces, else as "unknown". Never makes the record invalid.
 */
static void put_proto(int col, const qd_ipc_msg *m)
{
    const uint8_t *v;
    size_t len;

    if (qd_ipc_get_bytes(m, QD_F_PROTO, &v, &len) < 0) {
        put_const(col, QD_PROTO_H3);
        return;
    }
    bool is_ok = len > 0 && len < STATS_PROTO_MAX;
    for (size_t i = 0; is_ok && i < len; i++)
        is_ok = v[i] > 0x20 && v[i] < 0x7f;
    if (is_ok)
        put_text(col, v, len);
    else
        put_const(col, "unknown");
}

/* row_event - QD_MSG_REC_PROCESS */
static int row_event(const qd_ipc_msg *m)
{
    uint32_t ev, role;
    uint64_t t;

    if (qd_ipc_get_u32(m, QD_F_EVENT, &ev) < 0 || qd_ipc_get_u32(m, QD_F_ROLE, &role) < 0 ||
        qd_ipc_get_u64(m, QD_F_TIME_MS, &t) < 0 || role >= QD_ROLE_COUNT)
        return -1;
    start(STATS_T_EVENT, STATS_EVENT_COLS);
    put_u64(1, t);
    put_const(2, qd_proc_event_name((int)ev));
    put_const(3, qd_role_name((qd_role)role));
    opt_u32(4, m, QD_F_INSTANCE);
    opt_u32(5, m, QD_F_PID);
    opt_u32(6, m, QD_F_GENERATION);
    opt_u32(7, m, QD_F_RESTARTS);
    opt_u32(8, m, QD_F_EXIT_STATUS);
    opt_u32(9, m, QD_F_SIGNAL);
    return 0;
}

/* row_conn - QD_MSG_REC_CONN */
static int row_conn(const qd_ipc_msg *m)
{
    char paths[QD_REC_MAX_PATHS * 70];
    uint32_t flags, by, reason, worker;
    uint64_t start_ms, end_ms;
    size_t pos = 0, plen = 0, len;
    uint16_t tag;
    const uint8_t *val;
    int npaths = 0;

    if (qd_ipc_get_u32(m, QD_F_INSTANCE, &worker) < 0 ||
        qd_ipc_get_u64(m, QD_F_TIME_MS, &start_ms) < 0 ||
        qd_ipc_get_u64(m, QD_F_END_MS, &end_ms) < 0 || qd_ipc_get_u32(m, QD_F_FLAGS, &flags) < 0)
        return -1;
    start(STATS_T_CONN, STATS_CONN_COLS);
    if (req_text(1, m, QD_F_CONN_ID, 64) < 0)
        return -1;
    if (qd_ipc_get_u32(m, QD_F_CLOSE_BY, &by) < 0)
        by = QD_REC_CLOSE_BY_NONE;
    if (qd_ipc_get_u32(m, QD_F_CLOSE_REASON, &reason) < 0)
        reason = QD_REC_REASON_DROPPED;
    /* Every path, space-separated. */
    while (qd_ipc_next(m, &pos, &tag, &val, &len)) {
        if (tag != QD_F_PEER || npaths >= QD_REC_MAX_PATHS || len > 64)
            continue;
        if (npaths++ > 0)
            paths[plen++] = ' ';
        memcpy(paths + plen, val, len);
        plen += len;
    }
    put_int(2, worker);
    opt_str(3, m, QD_F_PEER);
    put_text(4, paths, plen);
    opt_str(5, m, QD_F_ADDR);
    put_u64(6, start_ms);
    put_u64(7, end_ms);
    opt_u64(8, m, QD_F_HANDSHAKE_US);
    opt_str(9, m, QD_F_ALPN);
    opt_str(10, m, QD_F_CIPHER);
    opt_u32(11, m, QD_F_QUIC_VERSION);
    put_int(12, (flags & QD_REC_F_RESUMED) != 0);
    put_int(13, (flags & QD_REC_F_EARLY) != 0);
    put_int(14, (flags & QD_REC_F_RETRY) != 0);
    opt_u64(15, m, QD_F_BYTES_IN);
    opt_u64(16, m, QD_F_BYTES_OUT);
    opt_u64(17, m, QD_F_PKTS_IN);
    opt_u64(18, m, QD_F_PKTS_OUT);
    opt_u64(19, m, QD_F_PKTS_LOST);
    opt_u64(20, m, QD_F_SRTT_US);
    opt_u64(21, m, QD_F_MIN_RTT_US);
    opt_u64(22, m, QD_F_CWND);
    opt_str(23, m, QD_F_CC);
    opt_u32(24, m, QD_F_MIGRATIONS);
    opt_u32(25, m, QD_F_STREAMS);
    put_const(26, qd_rec_close_by_name(by));
    put_const(27, qd_rec_reason_name(reason));
    opt_u64(28, m, QD_F_ERROR_CODE);
    put_proto(29, m);
    return 0;
}

/*
 * put_upstream - a proxied request's upstream, upstream_status and
 * upstream_ms (columns |col| to |col| + 2) from F_SERVER, F_UP_STATUS and
 * F_UP_TIME_US; NULL for each that is absent (a request served locally
 * has none). 0, or -1 when the server is empty or QD_REC_SERVER_MAX bytes
 * or longer, or the status is over 999: the record is malformed.
 */
static int put_upstream(int col, const qd_ipc_msg *m)
{
    const uint8_t *v;
    size_t len;
    uint32_t status;
    uint64_t us;

    if (qd_ipc_get_bytes(m, QD_F_SERVER, &v, &len) == 0) {
        if (len == 0 || len >= QD_REC_SERVER_MAX)
            return -1;
        put_text(col, v, len);
    }
    if (qd_ipc_get_u32(m, QD_F_UP_STATUS, &status) == 0) {
        if (status > 999)
            return -1;
        put_int(col + 1, status);
    }
    if (qd_ipc_get_u64(m, QD_F_UP_TIME_US, &us) == 0)
        put_real(col + 2, (double)us / 1000.0);
    return 0;
}

/* row_req - QD_MSG_REC_REQUEST */
static int row_req(const qd_ipc_msg *m)
{
    uint32_t worker, status;
    uint64_t t, sid;

    if (qd_ipc_get_u32(m, QD_F_INSTANCE, &worker) < 0 || qd_ipc_get_u64(m, QD_F_TIME_MS, &t) < 0 ||
        qd_ipc_get_u64(m, QD_F_QUIC_STREAM, &sid) < 0 ||
        qd_ipc_get_u32(m, QD_F_STATUS, &status) < 0 || status > 999)
        return -1;
    start(STATS_T_REQUEST, STATS_REQ_COLS);
    if (req_text(2, m, QD_F_CONN_ID, 64) < 0 || req_text(5, m, QD_F_METHOD, 32) < 0 ||
        req_text(6, m, QD_F_PATH, 1100) < 0)
        return -1;
    put_u64(1, t);
    put_int(3, worker);
    put_u64(4, sid);
    put_int(7, status);
    opt_u64(8, m, QD_F_BYTES_IN);
    opt_u64(9, m, QD_F_BYTES_OUT);
    opt_u64(10, m, QD_F_DURATION_US);
    opt_u64(11, m, QD_F_TTFB_US);
    put_proto(12, m);
    return put_upstream(13, m);
}

/* row_loss - QD_MSG_REC_LOSS: records another process could not send */
static int row_loss(const qd_ipc_msg *m)
{
    uint32_t role;
    uint64_t t, n;

    if (qd_ipc_get_u32(m, QD_F_ROLE, &role) < 0 || qd_ipc_get_u64(m, QD_F_TIME_MS, &t) < 0 ||
        qd_ipc_get_u64(m, QD_F_DROPS, &n) < 0 || role >= QD_ROLE_COUNT)
        return -1;
    start(STATS_T_LOSS, STATS_LOSS_COLS);
    put_u64(1, t);
    put_const(2, qd_role_name((qd_role)role));
    opt_u32(3, m, QD_F_INSTANCE);
    put_u64(4, n);
    put_const(5, "channel");
    return 0;
}

/* row_sample - QD_MSG_REC_SAMPLE */
static int row_sample(const qd_ipc_msg *m)
{
    uint32_t worker;
    uint64_t t;

    if (qd_ipc_get_u32(m, QD_F_INSTANCE, &worker) < 0 || qd_ipc_get_u64(m, QD_F_TIME_MS, &t) < 0)
        return -1;
    start(STATS_T_SAMPLE, STATS_SAMPLE_COLS);
    put_u64(1, t);
    put_int(2, worker);
    opt_u32(3, m, QD_F_INTERVAL_MS);
    opt_u32(4, m, QD_F_CONNECTIONS);
    opt_u64(5, m, QD_F_HANDSHAKES);
    opt_u64(6, m, QD_F_REQUESTS);
    opt_u64(7, m, QD_F_PKTS_IN);
    opt_u64(8, m, QD_F_PKTS_OUT);
    opt_u64(9, m, QD_F_BYTES_IN);
    opt_u64(10, m, QD_F_BYTES_OUT);
    opt_u64(11, m, QD_F_GSO_BATCHES);
    opt_u64(12, m, QD_F_DROPS);
    opt_u64(13, m, QD_F_MEM_BYTES);
    return 0;
}

int stats_row_add(qd_buf *rows, const qd_ipc_msg *m)
{
    static const char pad[8];
    int rv;

    switch (m->type) {
    case QD_MSG_REC_PROCESS:
        rv = row_event(m);
        break;
    case QD_MSG_REC_CONN:
        rv = row_conn(m);
        break;
    case QD_MSG_REC_REQUEST:
        rv = row_req(m);
        break;
    case QD_MSG_REC_SAMPLE:
        rv = row_sample(m);
        break;
    case QD_MSG_REC_LOSS:
        rv = row_loss(m);
        break;
    default:
        return -1;
    }
    if (rv < 0 || is_full)
        return -1;
    size_t nvals = sizeof(vals[0]) * head.ncols, npad = (8 - text_len % 8) % 8;
    head.size = (uint32_t)(sizeof(head) + nvals + text_len + npad);
    qd_buf_append(rows, (const char *)&head, sizeof(head));
    qd_buf_append(rows, (const char *)vals, nvals);
    qd_buf_append(rows, text, text_len);
    qd_buf_append(rows, pad, npad);
    return head.table;
}

const stats_row *stats_row_next(const qd_buf *rows, size_t *pos)
{
    if (*pos + sizeof(stats_row) > rows->len)
        return NULL;
    const stats_row *r = (const stats_row *)(rows->data + *pos);
    *pos += r->size;
    return r;
}

stats_table stats_row_table(const stats_row *r)
{
    return (stats_table)r->table;
}

int stats_row_columns(const stats_row *r)
{
    return r->ncols;
}

int64_t stats_row_int(const stats_row *r, int col)
{
    if (col < 1 || col > r->ncols)
        return 0;
    const stats_val *v = (const stats_val *)(r + 1) + (col - 1);
    return v->kind == VAL_INT ? v->u.i : 0;
}

void stats_row_bind(sqlite3_stmt *st, int base, const stats_row *r)
{
    const stats_val *v = (const stats_val *)(r + 1);
    const char *str = (const char *)(v + r->ncols);

    for (int i = 0; i < r->ncols; i++, v++) {
        int col = base + i + 1;
        switch (v->kind) {
        case VAL_INT:
            sqlite3_bind_int64(st, col, v->u.i);
            break;
        case VAL_REAL:
            sqlite3_bind_double(st, col, v->u.d);
            break;
        case VAL_TEXT:
            sqlite3_bind_text(st, col, str + v->u.off, (int)v->len, SQLITE_STATIC);
            break;
        case VAL_CONST:
            sqlite3_bind_text(st, col, v->u.s, (int)v->len, SQLITE_STATIC);
            break;
        default:
            sqlite3_bind_null(st, col);
        }
    }
}

/*
 * The rows of a buffer as the eponymous virtual table stats_rows: columns
 * c1 to c29 (a row's columns, NULL past its last) and the hidden column
 * tbl (its stats_table). "INSERT INTO t SELECT c1, ... FROM stats_rows
 * WHERE tbl = N" writes every row of table N in one statement: SQLite
 * reads each value with one call (xColumn) instead of a bind, and opens,
 * halts and resets the statement once per batch.
 */
#define VT_TBL ROW_COLS_MAX /* the column number of tbl */

typedef struct rows_vtab {
    sqlite3_vtab base;
    const qd_buf *rows;
} rows_vtab;

typedef struct rows_cursor {
    sqlite3_vtab_cursor base;
    const qd_buf *rows;
    int table; /* the rows of this table only, or -1: every row */
    size_t pos;
    const stats_row *r; /* the current row, NULL at the end */
    sqlite3_int64 n;    /* its number (the rowid) */
} rows_cursor;

/* vt_connect - declare the columns */
static int vt_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **vt,
                      char **err)
{
    char sql[400];
    size_t n = (size_t)snprintf(sql, sizeof(sql), "CREATE TABLE x(");
    rows_vtab *v;
    int rv;

    for (int c = 1; c <= ROW_COLS_MAX; c++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "c%d, ", c);
    snprintf(sql + n, sizeof(sql) - n, "tbl HIDDEN)");
    if ((rv = sqlite3_declare_vtab(db, sql)) != SQLITE_OK)
        return rv;
    if ((v = sqlite3_malloc(sizeof(*v))) == NULL)
        return SQLITE_NOMEM;
    memset(v, 0, sizeof(*v));
    v->rows = aux;
    *vt = &v->base;
    return SQLITE_OK;
}

/* vt_disconnect - free the table */
static int vt_disconnect(sqlite3_vtab *vt)
{
    sqlite3_free(vt);
    return SQLITE_OK;
}

/* vt_best_index - take "tbl = N" (idxNum 1, N as the filter's argument) */
static int vt_best_index(sqlite3_vtab *vt, sqlite3_index_info *info)
{
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (c->usable && c->iColumn == VT_TBL && c->op == SQLITE_INDEX_CONSTRAINT_EQ) {
            info->aConstraintUsage[i].argvIndex = 1;
            info->aConstraintUsage[i].omit = 1;
            info->idxNum = 1;
            break;
        }
    }
    info->estimatedCost = info->idxNum ? 1000 : 5000;
    return SQLITE_OK;
}

/* vt_open - a cursor on the buffer */
static int vt_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **cur)
{
    rows_cursor *c = sqlite3_malloc(sizeof(*c));

    if (c == NULL)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof(*c));
    c->rows = ((rows_vtab *)vt)->rows;
    *cur = &c->base;
    return SQLITE_OK;
}

/* vt_close - free the cursor */
static int vt_close(sqlite3_vtab_cursor *cur)
{
    sqlite3_free(cur);
    return SQLITE_OK;
}

/* vt_next - to the next row (of the table asked for) */
static int vt_next(sqlite3_vtab_cursor *cur)
{
    rows_cursor *c = (rows_cursor *)cur;

    do
        c->r = stats_row_next(c->rows, &c->pos);
    while (c->r != NULL && c->table >= 0 && c->r->table != c->table);
    c->n++;
    return SQLITE_OK;
}

/* vt_filter - from the first row (of table argv[0] with idxNum 1) */
static int vt_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc,
                     sqlite3_value **argv)
{
    rows_cursor *c = (rows_cursor *)cur;

    c->table = idx == 1 && argc == 1 ? sqlite3_value_int(argv[0]) : -1;
    c->pos = 0;
    c->n = 0;
    return vt_next(cur);
}

/* vt_eof - past the last row */
static int vt_eof(sqlite3_vtab_cursor *cur)
{
    return ((rows_cursor *)cur)->r == NULL;
}

/* vt_column - column |i| of the current row, as stats_row_bind binds it */
static int vt_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i)
{
    const stats_row *r = ((rows_cursor *)cur)->r;
    const stats_val *v = (const stats_val *)(r + 1);
    const char *str = (const char *)(v + r->ncols);

    if (i == VT_TBL) {
        sqlite3_result_int(ctx, r->table);
        return SQLITE_OK;
    }
    if (i >= r->ncols)
        return SQLITE_OK; /* NULL */
    v += i;
    switch (v->kind) {
    case VAL_INT:
        sqlite3_result_int64(ctx, v->u.i);
        break;
    case VAL_REAL:
        sqlite3_result_double(ctx, v->u.d);
        break;
    case VAL_TEXT:
        sqlite3_result_text(ctx, str + v->u.off, (int)v->len, SQLITE_STATIC);
        break;
    case VAL_CONST:
        sqlite3_result_text(ctx, v->u.s, (int)v->len, SQLITE_STATIC);
        break;
    default:
        break; /* NULL */
    }
    return SQLITE_OK;
}

/* vt_rowid - the row's number */
static int vt_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *id)
{
    *id = ((rows_cursor *)cur)->n;
    return SQLITE_OK;
}

/* Eponymous only (no xCreate), read only. */
static const sqlite3_module rows_module = {
    .iVersion = 0,
    .xConnect = vt_connect,
    .xBestIndex = vt_best_index,
    .xDisconnect = vt_disconnect,
    .xOpen = vt_open,
    .xClose = vt_close,
    .xFilter = vt_filter,
    .xNext = vt_next,
    .xEof = vt_eof,
    .xColumn = vt_column,
    .xRowid = vt_rowid,
};

int stats_row_register(sqlite3 *db, const qd_buf *rows)
{
    return sqlite3_create_module(db, "stats_rows", &rows_module, (void *)rows) == SQLITE_OK ? 0
                                                                                            : -1;
}
