/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_ipc - typed, length-checked messages with descriptors
 * SYNOPSIS
 *	qd_ipc_msg_init(), qd_ipc_put_*(), qd_ipc_put_fd(), qd_ipc_get_*(),
 *	qd_ipc_next(), qd_ipc_encode(), qd_ipc_frame(), qd_ipc_decode(), qd_ipc_send(),
 *	qd_ipc_recv(), qd_ipc_read(), qd_ipc_msg_close_fds(), qd_ipc_msg_take_fd(),
 *	qd_ipc_type_name()
 * DESCRIPTION
 *	The one encoder/decoder every daemon uses. The decoder treats input as
 *	hostile: it checks the header against the byte count, walks every
 *	field within bounds, knows every type and tag, checks each value's
 *	size for its kind, and checks the descriptor count for the type. The
 *	getters then only have to find a field. A message owns the
 *	descriptors in its fds[] array until they are taken or closed.
 * DIAGNOSTICS
 *	Returns QD_ERR_* codes; logs nothing (callers log and drop).
 * SEE ALSO
 *	tests/unit/test_ipc.c, tests/fuzz/fuzz_ipc.c
 */
#include "config.h"

/* system */
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_ipc.h"

enum { KIND_U32 = 1, KIND_U64, KIND_STR, KIND_BYTES };

static const struct {
    uint16_t type;
    const char *name;
    uint8_t min_fds, max_fds;
} type_table[] = {
    {QD_MSG_CONFIG, "config", 0, 0},
    {QD_MSG_STOP, "stop", 0, 0},
    {QD_MSG_CHANNEL, "channel", 1, 1},
    {QD_MSG_LOG_FD, "log-fd", 0, 1},
    {QD_MSG_TLS_FILES, "tls-files", 0, 2},
    {QD_MSG_PROXY_TABLE, "proxy-table", 0, 2},
    {QD_MSG_METRICS_HTTP, "metrics-http", 0, 2},
    {QD_MSG_READY, "ready", 0, 0},
    {QD_MSG_CONFIG_DONE, "config-done", 0, 0},
    {QD_MSG_STATUS, "status", 0, 0},
    {QD_MSG_CONNS_REQ, "conns-req", 1, 1},
    {QD_MSG_CONNS, "conns", 0, 0},
    {QD_MSG_SOCKETS, "sockets", 0, QD_IPC_MAX_FDS},
    {QD_MSG_FWD_PACKET, "fwd-packet", 0, 0},
    {QD_MSG_LAYOUT, "layout", 0, 0},
    {QD_MSG_REQ_HEAD, "req-head", 0, 0},
    {QD_MSG_REQ_BODY, "req-body", 0, 0},
    {QD_MSG_REQ_CANCEL, "req-cancel", 0, 0},
    {QD_MSG_RESP_HEAD, "resp-head", 0, 1},
    {QD_MSG_RESP_BODY, "resp-body", 0, 0},
    {QD_MSG_RESP_CREDIT, "resp-credit", 0, 0},
    {QD_MSG_RESP_INFO, "resp-info", 0, 0},
    {QD_MSG_CTL_STATUS, "ctl-status", 0, 0},
    {QD_MSG_CTL_RELOAD, "ctl-reload", 0, 0},
    {QD_MSG_CTL_STOP, "ctl-stop", 0, 0},
    {QD_MSG_CTL_REPLY, "ctl-reply", 0, 0},
    {QD_MSG_CTL_CONNS, "ctl-conns", 0, 0},
    {QD_MSG_CTL_UPGRADE, "ctl-upgrade", 0, 0},
    {QD_MSG_CTL_UPSTREAMS, "ctl-upstreams", 0, 0},
    {QD_MSG_CTL_METRICS, "ctl-metrics", 0, 0},
    {QD_MSG_METRICS_REQ, "metrics-req", 1, 1},
    {QD_MSG_UP_CONNECT, "up-connect", 0, 0},
    {QD_MSG_UP_CONNECTED, "up-connected", 0, 1},
    {QD_MSG_UP_STATE, "up-state", 0, 0},
    {QD_MSG_UP_REPORT, "up-report", 0, 0},
    {QD_MSG_UP_COUNTS, "up-counts", 0, 0},
    {QD_MSG_HANDOFF, "handoff", 2, 3},
    {QD_MSG_REC_PROCESS, "rec-process", 0, 0},
    {QD_MSG_REC_CONN, "rec-conn", 0, 0},
    {QD_MSG_REC_REQUEST, "rec-request", 0, 0},
    {QD_MSG_REC_SAMPLE, "rec-sample", 0, 0},
    {QD_MSG_REC_BATCH, "rec-batch", 0, 0},
    {QD_MSG_REC_LOSS, "rec-loss", 0, 0},
    {QD_MSG_METRICS, "metrics", 0, 0},
};

static const uint8_t tag_kind[] = {
    [QD_F_TEXT] = KIND_STR,         [QD_F_STATUS] = KIND_U32,     [QD_F_ROLE] = KIND_U32,
    [QD_F_INSTANCE] = KIND_U32,     [QD_F_DEADLINE_MS] = KIND_U32, [QD_F_CONNECTIONS] = KIND_U32,
    [QD_F_STREAMS] = KIND_U32,      [QD_F_ADDR] = KIND_STR,       [QD_F_PID] = KIND_U32,
    [QD_F_EVENT] = KIND_U32,        [QD_F_TIME_MS] = KIND_U64,    [QD_F_EXIT_STATUS] = KIND_U32,
    [QD_F_SIGNAL] = KIND_U32,       [QD_F_GENERATION] = KIND_U32, [QD_F_JSON] = KIND_U32,
    [QD_F_RESTARTS] = KIND_U32,     [QD_F_SOCKETS] = KIND_U32,    [QD_F_SECRET] = KIND_BYTES,
    [QD_F_STREAM] = KIND_U64,       [QD_F_METHOD] = KIND_STR,     [QD_F_PATH] = KIND_STR,
    [QD_F_AUTHORITY] = KIND_STR,    [QD_F_HEADER] = KIND_BYTES,   [QD_F_FLAGS] = KIND_U32,
    [QD_F_BODY] = KIND_BYTES,       [QD_F_OFFSET] = KIND_U64,     [QD_F_LENGTH] = KIND_U64,
    [QD_F_CREDIT] = KIND_U32,       [QD_F_SCHEME] = KIND_STR,     [QD_F_PEER] = KIND_STR,
    [QD_F_TICKET_KEY] = KIND_BYTES, [QD_F_LOCAL] = KIND_BYTES,    [QD_F_REMOTE] = KIND_BYTES,
    [QD_F_ENDPOINT] = KIND_U32,     [QD_F_QUIC_STREAM] = KIND_U64, [QD_F_CONN_ID] = KIND_STR,
    [QD_F_END_MS] = KIND_U64,       [QD_F_HANDSHAKE_US] = KIND_U64, [QD_F_ALPN] = KIND_STR,
    [QD_F_CIPHER] = KIND_STR,       [QD_F_QUIC_VERSION] = KIND_U32, [QD_F_BYTES_IN] = KIND_U64,
    [QD_F_BYTES_OUT] = KIND_U64,    [QD_F_PKTS_IN] = KIND_U64,    [QD_F_PKTS_OUT] = KIND_U64,
    [QD_F_PKTS_LOST] = KIND_U64,    [QD_F_SRTT_US] = KIND_U64,    [QD_F_MIN_RTT_US] = KIND_U64,
    [QD_F_CWND] = KIND_U64,         [QD_F_CC] = KIND_STR,         [QD_F_MIGRATIONS] = KIND_U32,
    [QD_F_CLOSE_BY] = KIND_U32,     [QD_F_ERROR_CODE] = KIND_U64, [QD_F_CLOSE_REASON] = KIND_U32,
    [QD_F_DURATION_US] = KIND_U64,  [QD_F_TTFB_US] = KIND_U64,    [QD_F_INTERVAL_MS] = KIND_U32,
    [QD_F_HANDSHAKES] = KIND_U64,   [QD_F_REQUESTS] = KIND_U64,   [QD_F_GSO_BATCHES] = KIND_U64,
    [QD_F_DROPS] = KIND_U64,        [QD_F_MEM_BYTES] = KIND_U64,  [QD_F_HALF_OPEN] = KIND_U32,
    [QD_F_NEW_CONNS] = KIND_U32,    [QD_F_RETRIES] = KIND_U64,    [QD_F_RETRY_DROPS] = KIND_U64,
    [QD_F_PROTO] = KIND_STR, [QD_F_TCP_CONNS] = KIND_U32, [QD_F_TCP_ADDR] = KIND_STR,
    [QD_F_CID_TAG] = KIND_U32,      [QD_F_UDP_SEND_ERRORS] = KIND_U64,
    [QD_F_UDP_EMSGSIZE] = KIND_U64, [QD_F_CLOSED_HEADERS] = KIND_U64,
    [QD_F_CLOSED_RESETS] = KIND_U64, [QD_F_CLOSED_FLOODS] = KIND_U64,
    [QD_F_CLOSED_PROTOCOL] = KIND_U64,
    [QD_F_SEQ] = KIND_U64,
    [QD_F_GROUP] = KIND_STR,
    [QD_F_SERVER] = KIND_STR,
    [QD_F_UP_ACTIVE] = KIND_U32,
    [QD_F_UP_IDLE] = KIND_U32,
    [QD_F_UP_FAILS] = KIND_U64,
    [QD_F_UP_STATUS] = KIND_U32,
    [QD_F_UP_TIME_US] = KIND_U64,
    [QD_F_PROXIED] = KIND_U64,
    [QD_F_PROXY_ERRORS] = KIND_U64,
    [QD_F_PROXY_RETRIES] = KIND_U64,
    [QD_F_UDP_RXQ_DROPS] = KIND_U64,
    [QD_F_UDP_RCVBUF] = KIND_U32,
    [QD_F_UDP_SNDBUF] = KIND_U32,
    [QD_F_SCHEMA] = KIND_U32,
    [QD_F_METRICS] = KIND_BYTES,
    [QD_F_ROUTE] = KIND_STR,
    [QD_F_ROUTE_SLOTS] = KIND_BYTES,
};

/* find_type - index into type_table, or -1 */
static int find_type(uint16_t type)
{
    for (size_t i = 0; i < sizeof(type_table) / sizeof(type_table[0]); i++)
        if (type_table[i].type == type)
            return (int)i;
    return -1;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void qd_ipc_msg_init(qd_ipc_msg *m, uint16_t type, uint32_t id)
{
    m->type = type;
    m->flags = 0;
    m->id = id;
    m->len = 0;
    m->fd_count = 0;
    memset(m->first, 0, sizeof(m->first));
}

/* note_first - remember where the first field of |tag| starts (a hint for find) */
static void note_first(qd_ipc_msg *m, uint16_t tag, uint32_t off)
{
    if (tag < QD_IPC_INDEX_TAGS && (m->first[tag] == 0 || m->first[tag] - 1u >= off))
        m->first[tag] = (uint16_t)(off + 1);
}

/* put_field - append a tag/length/value triple */
static int put_field(qd_ipc_msg *m, uint16_t tag, const void *p, size_t len)
{
    if (len > 0xffff || m->len + 4 + len > QD_IPC_MAX_BODY)
        return QD_ERR_TOOBIG;
    note_first(m, tag, m->len);
    put16(m->body + m->len, tag);
    put16(m->body + m->len + 2, (uint16_t)len);
    if (len)
        memcpy(m->body + m->len + 4, p, len);
    m->len += (uint32_t)(4 + len);
    return 0;
}

int qd_ipc_put_u32(qd_ipc_msg *m, uint16_t tag, uint32_t v)
{
    uint8_t b[4];

    put32(b, v);
    return put_field(m, tag, b, 4);
}

int qd_ipc_put_u64(qd_ipc_msg *m, uint16_t tag, uint64_t v)
{
    uint8_t b[8];

    put32(b, (uint32_t)(v >> 32));
    put32(b + 4, (uint32_t)v);
    return put_field(m, tag, b, 8);
}

int qd_ipc_put_str(qd_ipc_msg *m, uint16_t tag, const char *s)
{
    return put_field(m, tag, s, strlen(s));
}

int qd_ipc_put_bytes(qd_ipc_msg *m, uint16_t tag, const void *p, size_t len)
{
    return put_field(m, tag, p, len);
}

int qd_ipc_put_fd(qd_ipc_msg *m, int fd)
{
    if (m->fd_count >= QD_IPC_MAX_FDS)
        return QD_ERR_FDS;
    m->fds[m->fd_count++] = fd;
    return 0;
}

int qd_ipc_next(const qd_ipc_msg *m, size_t *pos, uint16_t *tag, const uint8_t **val,
                size_t *len)
{
    if (*pos + 4 > m->len)
        return 0;
    size_t flen = get16(m->body + *pos + 2);
    if (*pos + 4 + flen > m->len)
        return 0; /* cannot happen after decode; stay in bounds anyway */
    *tag = get16(m->body + *pos);
    *val = m->body + *pos + 4;
    *len = flen;
    *pos += 4 + flen;
    return 1;
}

/*
 * find - first field with |tag|: where the index says, when a field of that
 * tag really starts there (a caller may have cut the body short: m->len),
 * else by a scan
 */
static int find(const qd_ipc_msg *m, uint16_t tag, const uint8_t **val, size_t *len)
{
    size_t pos = 0;
    uint16_t t;

    if (tag < QD_IPC_INDEX_TAGS) {
        size_t off = m->first[tag];
        if (off == 0)
            return QD_ERR_NOTFOUND;
        pos = off - 1;
        if (qd_ipc_next(m, &pos, &t, val, len) && t == tag)
            return 0;
        pos = 0;
    }
    while (qd_ipc_next(m, &pos, &t, val, len))
        if (t == tag)
            return 0;
    return QD_ERR_NOTFOUND;
}

int qd_ipc_get_u32(const qd_ipc_msg *m, uint16_t tag, uint32_t *out)
{
    const uint8_t *v;
    size_t len;
    int rv = find(m, tag, &v, &len);

    if (rv < 0)
        return rv;
    if (len != 4)
        return QD_ERR_INVAL;
    *out = get32(v);
    return 0;
}

int qd_ipc_get_u64(const qd_ipc_msg *m, uint16_t tag, uint64_t *out)
{
    const uint8_t *v;
    size_t len;
    int rv = find(m, tag, &v, &len);

    if (rv < 0)
        return rv;
    if (len != 8)
        return QD_ERR_INVAL;
    *out = ((uint64_t)get32(v) << 32) | get32(v + 4);
    return 0;
}

int qd_ipc_get_str(const qd_ipc_msg *m, uint16_t tag, char *dst, size_t cap)
{
    const uint8_t *v;
    size_t len;
    int rv = find(m, tag, &v, &len);

    if (rv < 0)
        return rv;
    if (memchr(v, '\0', len) != NULL)
        return QD_ERR_INVAL;
    if (len + 1 > cap)
        return QD_ERR_TOOBIG;
    memcpy(dst, v, len);
    dst[len] = '\0';
    return 0;
}

int qd_ipc_get_bytes(const qd_ipc_msg *m, uint16_t tag, const uint8_t **p, size_t *len)
{
    return find(m, tag, p, len);
}

int qd_ipc_encode(const qd_ipc_msg *m, uint8_t *buf, size_t cap)
{
    if (m->len > QD_IPC_MAX_BODY || cap < QD_IPC_HDR_LEN + m->len)
        return QD_ERR_NOSPACE;
    put16(buf, m->type);
    put16(buf + 2, m->flags);
    put32(buf + 4, m->len);
    put32(buf + 8, m->id);
    memcpy(buf + QD_IPC_HDR_LEN, m->body, m->len);
    return (int)(QD_IPC_HDR_LEN + m->len);
}

int qd_ipc_frame(const uint8_t *buf, size_t len)
{
    if (len < QD_IPC_HDR_LEN)
        return QD_ERR_TRUNC;
    uint32_t blen = get32(buf + 4);
    if (blen > QD_IPC_MAX_BODY)
        return QD_ERR_TOOBIG;
    if (blen > len - QD_IPC_HDR_LEN)
        return QD_ERR_TRUNC;
    return (int)(QD_IPC_HDR_LEN + blen);
}

int qd_ipc_decode(qd_ipc_msg *m, const uint8_t *buf, size_t len, size_t nfds)
{
    if (len < QD_IPC_HDR_LEN)
        return QD_ERR_TRUNC;
    if (len > QD_IPC_MAX_MSG)
        return QD_ERR_TOOBIG;
    uint16_t type = get16(buf);
    uint32_t blen = get32(buf + 4);
    if (blen > QD_IPC_MAX_BODY)
        return QD_ERR_TOOBIG;
    if (blen > len - QD_IPC_HDR_LEN)
        return QD_ERR_TRUNC;
    if (blen < len - QD_IPC_HDR_LEN)
        return QD_ERR_TOOBIG;
    int ti = find_type(type);
    if (ti < 0)
        return QD_ERR_UNKNOWN;
    if (nfds < type_table[ti].min_fds || nfds > type_table[ti].max_fds)
        return QD_ERR_FDS;

    const uint8_t *body = buf + QD_IPC_HDR_LEN;
    uint16_t first[QD_IPC_INDEX_TAGS];
    size_t pos = 0;
    memset(first, 0, sizeof(first));
    while (pos < blen) {
        if (blen - pos < 4)
            return QD_ERR_TRUNC;
        uint16_t tag = get16(body + pos);
        size_t flen = get16(body + pos + 2);
        if (flen > blen - pos - 4)
            return QD_ERR_TRUNC;
        if (tag == 0 || tag >= sizeof(tag_kind) || tag_kind[tag] == 0)
            return QD_ERR_UNKNOWN;
        const uint8_t *v = body + pos + 4;
        switch (tag_kind[tag]) {
        case KIND_U32:
            if (flen != 4)
                return QD_ERR_INVAL;
            break;
        case KIND_U64:
            if (flen != 8)
                return QD_ERR_INVAL;
            break;
        case KIND_STR:
            if (memchr(v, '\0', flen) != NULL)
                return QD_ERR_INVAL;
            break;
        default:
            break;
        }
        if (tag < QD_IPC_INDEX_TAGS && first[tag] == 0)
            first[tag] = (uint16_t)(pos + 1);
        pos += 4 + flen;
    }
    memcpy(m->first, first, sizeof(first));
    m->type = type;
    m->flags = get16(buf + 2);
    m->id = get32(buf + 8);
    m->len = blen;
    memcpy(m->body, body, blen);
    m->fd_count = 0;
    return 0;
}

int qd_ipc_send(int sock, const qd_ipc_msg *m)
{
    static uint8_t buf[QD_IPC_MAX_MSG];
    int n = qd_ipc_encode(m, buf, sizeof(buf));

    if (n < 0)
        return n;
    return qd_fdpass_send(sock, buf, (size_t)n, m->fds, m->fd_count);
}

int qd_ipc_recv(int sock, qd_ipc_msg *m)
{
    static uint8_t buf[QD_IPC_MAX_MSG];
    int fds[QD_IPC_MAX_FDS];
    size_t len, nfds;
    int rv = qd_fdpass_recv(sock, buf, sizeof(buf), &len, fds, QD_IPC_MAX_FDS, &nfds);

    if (rv < 0)
        return rv;
    rv = qd_ipc_decode(m, buf, len, nfds);
    if (rv < 0) {
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        return rv;
    }
    memcpy(m->fds, fds, nfds * sizeof(int));
    m->fd_count = (uint32_t)nfds;
    return 0;
}

/* reader_drop - the rest of a record is not read: close its descriptors */
static void reader_drop(qd_ipc_reader *r)
{
    for (size_t i = 0; i < r->nfds; i++)
        close(r->fds[i]);
    r->nfds = 0;
    r->len = r->off = 0;
}

int qd_ipc_read(int sock, qd_ipc_reader *r, qd_ipc_msg *m)
{
    if (r->off >= r->len) {
        int rv = qd_fdpass_recv(sock, r->buf, sizeof(r->buf), &r->len, r->fds, QD_IPC_MAX_FDS,
                                &r->nfds);
        r->off = 0;
        if (rv < 0) {
            r->len = 0;
            r->nfds = 0;
            return rv;
        }
        if (r->len == 0)
            return QD_ERR_TRUNC;
    }
    int fl = qd_ipc_frame(r->buf + r->off, r->len - r->off);
    if (fl < 0) {
        reader_drop(r);
        return fl;
    }
    bool last = r->off + (size_t)fl == r->len;
    int rv = qd_ipc_decode(m, r->buf + r->off, (size_t)fl, last ? r->nfds : 0);
    r->off += (size_t)fl;
    if (last) {
        if (rv < 0) {
            reader_drop(r);
            return rv;
        }
        memcpy(m->fds, r->fds, r->nfds * sizeof(int));
        m->fd_count = (uint32_t)r->nfds;
        r->nfds = 0;
    }
    return rv;
}

void qd_ipc_msg_close_fds(qd_ipc_msg *m)
{
    for (uint32_t i = 0; i < m->fd_count; i++)
        if (m->fds[i] >= 0)
            close(m->fds[i]);
    m->fd_count = 0;
}

int qd_ipc_msg_take_fd(qd_ipc_msg *m, size_t i)
{
    if (i >= m->fd_count)
        return -1;
    int fd = m->fds[i];
    m->fds[i] = -1;
    return fd;
}

const char *qd_rec_reason_name(uint32_t reason)
{
    static const char *const names[QD_REC_REASON_COUNT] = {
        "none", "error", "idle", "handshake_timeout", "stateless_reset", "dropped"};

    return reason < QD_REC_REASON_COUNT ? names[reason] : "unknown";
}

const char *qd_rec_close_by_name(uint32_t by)
{
    switch (by) {
    case QD_REC_CLOSE_BY_NONE:
        return "none";
    case QD_REC_CLOSE_BY_SERVER:
        return "server";
    case QD_REC_CLOSE_BY_CLIENT:
        return "client";
    }
    return "unknown";
}

const char *qd_ipc_type_name(uint16_t type)
{
    int i = find_type(type);
    return i < 0 ? "unknown" : type_table[i].name;
}
