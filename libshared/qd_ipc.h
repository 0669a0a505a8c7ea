/* SPDX-License-Identifier: MIT */
#ifndef QD_IPC_H
#define QD_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qd_fdpass.h"

/*
 * Messages between quicd processes (modelled on OpenBSD imsg).
 *
 * Wire format, all integers big-endian:
 *   header (12 bytes): type u16, flags u16, body length u32, request id u32
 *   body: fields, each tag u16, length u16, value[length]
 * Descriptors travel as SCM_RIGHTS with the message. Each message type has
 * an allowed range of descriptor counts and each field tag a value kind
 * (u32, u64, string, bytes); the decoder rejects anything else, so a
 * decoded message can be read with the bounded getters below without
 * further length checks. A record (one SOCK_SEQPACKET or SOCK_DGRAM
 * message) carries one or more messages back to back, at most
 * QD_IPC_MAX_MSG bytes in all; its descriptors belong to its last message
 * (qd_chan batches what one loop iteration queued into one record).
 */

#define QD_IPC_HDR_LEN 12
#define QD_IPC_MAX_BODY (64 * 1024 - QD_IPC_HDR_LEN)
#define QD_IPC_MAX_MSG (QD_IPC_HDR_LEN + QD_IPC_MAX_BODY)
#define QD_IPC_MAX_FDS QD_FDPASS_MAX

/* Message types. Keep in step with the type table in qd_ipc.c. */
enum {
    /* master -> child */
    QD_MSG_CONFIG = 1,  /* F_TEXT: the whole effective configuration */
    QD_MSG_STOP = 2,    /* F_DEADLINE_MS [F_FLAGS]: finish work and exit */
    QD_MSG_CHANNEL = 3, /* F_ROLE, F_INSTANCE + 1 fd: a channel to that peer */
    QD_MSG_LOG_FD = 4,  /* to the app and each worker after each CONFIG: 1 fd, the
                           access_log opened for appending, or no fd: logging off */
    QD_MSG_PROXY_TABLE = 6, /* to a worker before each CONFIG: F_FLAGS (QD_PROXY_F_*) and
                               the files it names open, in that order: proxy_table
                               (when set) and proxy_ca_file (when it can be opened) */
    QD_MSG_TLS_FILES = 5, /* to a worker before each CONFIG: 2 fds, tls_certificate and
                             tls_key opened for reading (by root: a chrooted worker
                             reloads renewed files from them), or none: unreadable */
    QD_MSG_METRICS_HTTP = 7, /* to stats before each CONFIG: F_FLAGS (QD_METRICS_HTTP_F_*),
                                F_ADDR (metrics_listen, or empty) and, in that order, the
                                listening TCP socket of metrics_listen (the master binds
                                it) and metrics_token_file opened for reading, each when
                                there is one */
    /* child -> master */
    QD_MSG_READY = 10,       /* configured and serving */
    QD_MSG_CONFIG_DONE = 11, /* F_STATUS, optional F_TEXT (reason) */
    QD_MSG_STATUS = 12,      /* F_CONNECTIONS, F_STREAMS ... periodic; a worker's also
                                F_FLAGS, F_HALF_OPEN, F_NEW_CONNS, F_RETRIES, F_RETRY_DROPS,
                                F_TCP_CONNS */
    /* master -> worker, with 1 fd: list your live connections on that channel */
    QD_MSG_CONNS_REQ = 13,
    /* worker -> master on the CONNS_REQ channel: F_INSTANCE, F_CONNECTIONS (all),
       then per connection (at most QD_CONNS_MAX) a group that starts with F_CONN_ID:
       F_PEER, F_TIME_MS (start), F_STREAMS (open), F_BYTES_IN, F_BYTES_OUT,
       F_SRTT_US, F_MIGRATIONS, F_FLAGS (QD_REC_F_*), F_PROTO */
    QD_MSG_CONNS = 14,
    /* master -> stats, with 1 fd (a quicctl connection): write the metrics there as
       CTL_REPLY messages with the id of this one, each but the last with F_FLAGS
       QD_CTL_F_MORE */
    QD_MSG_METRICS_REQ = 15,
    /* listener -> worker */
    QD_MSG_SOCKETS = 20, /* F_ADDR per UDP socket + its fd, each followed (tcp = yes) by
                            F_TCP_ADDR + the TCP listen socket of the same address;
                            F_SECRET, F_TICKET_KEY, F_CID_TAG */
    /* worker -> listener -> worker: a datagram for another worker's CID */
    QD_MSG_FWD_PACKET = 21, /* F_INSTANCE (owner), F_ENDPOINT, F_ADDR (the endpoint's
                               address), F_LOCAL, F_REMOTE, F_FLAGS (ECN bits,
                               QD_FWD_F_NEW), F_BODY (the datagram) */
    /* master -> listener: the worker generations (see "Generations" in
       doc/architecture.md); the listener answers with the same type and id,
       F_STATUS, once its steering programs follow it */
    QD_MSG_LAYOUT = 22, /* per generation, oldest first: F_GENERATION, F_FLAGS
                           (QD_LAYOUT_F_*), F_BODY (its worker ids, one byte each),
                           F_ADDR... (the addresses it serves, in its listen order) */
    /* worker <-> app (see doc/architecture.md, "Worker and app") */
    QD_MSG_REQ_HEAD = 30,    /* F_STREAM, F_METHOD, F_SCHEME, F_AUTHORITY, F_PATH,
                                F_HEADER..., F_PEER, F_FLAGS (QD_REQ_F_*),
                                F_CONN_ID, F_QUIC_STREAM (for logs; the h2 stream id, or
                                the request's number on an HTTP/1.1 connection),
                                F_PROTO */
    QD_MSG_REQ_BODY = 31,    /* F_STREAM, F_BODY, F_FLAGS (QD_REQ_F_END) */
    QD_MSG_REQ_CANCEL = 32,  /* F_STREAM: the client reset the stream; forget it;
                                F_FLAGS (QD_REQ_F_FINISH): see there */
    QD_MSG_RESP_HEAD = 33,   /* F_STREAM, F_STATUS, F_HEADER..., F_FLAGS (QD_RESP_F_*);
                                with 1 fd: the body is F_LENGTH bytes at F_OFFSET */
    QD_MSG_RESP_BODY = 34,   /* F_STREAM, F_BODY, F_FLAGS (QD_RESP_F_END) */
    QD_MSG_RESP_CREDIT = 35, /* F_STREAM, F_CREDIT: the worker sent that many body bytes */
    QD_MSG_RESP_INFO = 36,   /* F_STREAM, F_STATUS (100..199), F_HEADER...: an interim
                                response (103 Early Hints) before RESP_HEAD */
    /* quicctl <-> master */
    QD_MSG_CTL_STATUS = 40, /* request: status */
    QD_MSG_CTL_RELOAD = 41, /* request: reload */
    QD_MSG_CTL_STOP = 42,   /* request: stop */
    QD_MSG_CTL_REPLY = 43,  /* F_STATUS, F_TEXT */
    QD_MSG_CTL_CONNS = 44,  /* request: live connections (reply F_TEXT, one per line) */
    QD_MSG_CTL_UPGRADE = 45, /* request: re-execute the binaries (master_upgrade.c) */
    QD_MSG_CTL_METRICS = 48, /* request: the metrics in the Prometheus text format (the
                                replies come from stats, see QD_MSG_METRICS_REQ) */
    QD_MSG_CTL_UPSTREAMS = 47, /* request: the upstream servers' state (reply F_TEXT, a line
                                  each, from the upstream daemon's last status report) */
    /* old master -> new master (quicd -U): HANDOFF, LAYOUT, SOCKETS..., READY;
       new -> old: READY (it serves), or CONFIG_DONE with F_STATUS 1, F_TEXT */
    QD_MSG_HANDOFF = 46,    /* F_GENERATION, F_PID + 2 fds: the pid file (locked) and
                               the control socket; with a third, the /metrics
                               listening socket, F_ADDR its address */
    /* worker <-> upstream daemon (the reverse proxy, worker_upstream.c, upstream_conn.c) */
    QD_MSG_UP_CONNECT = 50,   /* worker -> upstream: F_STREAM (the ask's id), F_GROUP,
                                 F_SERVER: connect to that server, hand me the socket */
    QD_MSG_UP_CONNECTED = 51, /* upstream -> worker: F_STREAM, F_STATUS (0, or an errno
                                 value; ETIMEDOUT after the group's connect_timeout,
                                 ENOENT: no such server, EHOSTUNREACH: not resolved),
                                 F_TEXT (why, on failure) + the connected socket on 0 */
    QD_MSG_UP_STATE = 52,     /* upstream -> worker: F_SEQ, then per server F_GROUP,
                                 F_SERVER, F_STATUS (QD_UP_STATE_*); every server when the
                                 channel opens (in as many messages as it takes), then the
                                 servers that changed; a worker ignores a lower F_SEQ */
    QD_MSG_UP_REPORT = 53,    /* worker -> upstream: F_GROUP, F_SERVER, F_STATUS
                                 (QD_UP_RESULT_*): what a request saw (passive checks) */
    QD_MSG_UP_COUNTS = 54,    /* worker -> upstream, every second while it has a proxy
                                 table: F_INSTANCE (the worker), then per server F_GROUP,
                                 F_SERVER, F_UP_ACTIVE, F_UP_IDLE, F_REQUESTS, F_UP_FAILS
                                 (running totals of this worker; the daemon shows them in
                                 quicctl upstreams per worker and summed) */
    /* anyone -> stats (datagram) */
    QD_MSG_REC_PROCESS = 60, /* process event record */
    QD_MSG_REC_CONN = 61,    /* a connection ended: F_CONN_ID, F_INSTANCE, F_PEER (first
                                path, then up to QD_REC_MAX_PATHS - 1 migrations), F_ADDR
                                (local), F_TIME_MS (start), F_END_MS, F_HANDSHAKE_US,
                                F_ALPN, F_CIPHER, F_QUIC_VERSION, F_FLAGS (QD_REC_F_*),
                                F_BYTES_IN/OUT, F_PKTS_IN/OUT, F_PKTS_LOST, F_SRTT_US,
                                F_MIN_RTT_US, F_CWND, F_CC, F_MIGRATIONS, F_STREAMS,
                                F_CLOSE_BY, F_ERROR_CODE, F_CLOSE_REASON, F_PROTO */
    QD_MSG_REC_REQUEST = 62, /* a request ended: F_CONN_ID, F_INSTANCE, F_QUIC_STREAM,
                                F_TIME_MS (start), F_METHOD, F_PATH, F_STATUS, F_BYTES_IN,
                                F_BYTES_OUT, F_DURATION_US, F_TTFB_US, F_PROTO; a proxied
                                one also F_SERVER (the last server tried, at most
                                QD_REC_SERVER_MAX - 1 bytes), F_UP_STATUS, F_UP_TIME_US */
    QD_MSG_REC_BATCH = 64,   /* F_BODY...: each an encoded REC_CONN, REC_REQUEST or
                                REC_SAMPLE message (a record never spans datagrams) */
    QD_MSG_REC_SAMPLE = 63,  /* every stats_interval per worker: F_INSTANCE, F_TIME_MS,
                                F_INTERVAL_MS, F_CONNECTIONS, F_HANDSHAKES, F_REQUESTS,
                                F_PKTS_IN/OUT, F_BYTES_IN/OUT, F_GSO_BATCHES, F_DROPS
                                (stats records dropped), F_MEM_BYTES; counts are deltas */
    QD_MSG_REC_LOSS = 65,    /* F_TIME_MS, F_ROLE, F_INSTANCE, F_DROPS: records that process
                                lost since its last REC_LOSS (a full channel; for stats, a
                                database that could not be written) */
    QD_MSG_METRICS = 66,     /* every stats_interval and at exit, from each worker and the
                                master: F_ROLE, F_INSTANCE, F_PID, F_TIME_MS (the process's
                                start, wall clock), F_SCHEMA (qd_metrics_schema), F_METRICS
                                (its qd_metrics, encoded): running totals since it started;
                                F_FLAGS (QD_METRICS_F_EXIT); a worker's also, per route,
                                F_ROUTE then F_ROUTE_SLOTS (the aggregates by route) */
};

/* Field tags. Keep in step with the tag table in qd_ipc.c. */
enum {
    QD_F_TEXT = 1,           /* string */
    QD_F_STATUS = 2,         /* u32 */
    QD_F_ROLE = 3,           /* u32 qd_role */
    QD_F_INSTANCE = 4,       /* u32 */
    QD_F_DEADLINE_MS = 5,    /* u32 */
    QD_F_CONNECTIONS = 6,    /* u32 */
    QD_F_STREAMS = 7,        /* u32 */
    QD_F_ADDR = 8,           /* string "addr:port" */
    QD_F_PID = 9,            /* u32 */
    QD_F_EVENT = 10,         /* u32 qd_proc_event */
    QD_F_TIME_MS = 11,       /* u64 wall clock */
    QD_F_EXIT_STATUS = 12,   /* u32 */
    QD_F_SIGNAL = 13,        /* u32 */
    QD_F_GENERATION = 14,    /* u32 */
    QD_F_JSON = 15,          /* u32 boolean: reply in JSON */
    QD_F_RESTARTS = 16,      /* u32 */
    QD_F_SOCKETS = 17,       /* u32 */
    QD_F_SECRET = 18,        /* bytes */
    QD_F_STREAM = 19,        /* u64: request id, unique within one worker */
    QD_F_METHOD = 20,        /* string */
    QD_F_PATH = 21,          /* string */
    QD_F_AUTHORITY = 22,     /* string */
    QD_F_HEADER = 23,        /* bytes: name NUL value (name lowercase) */
    QD_F_FLAGS = 24,         /* u32 */
    QD_F_BODY = 25,          /* bytes */
    QD_F_OFFSET = 26,        /* u64 */
    QD_F_LENGTH = 27,        /* u64 */
    QD_F_CREDIT = 28,        /* u32 */
    QD_F_SCHEME = 29,        /* string */
    QD_F_PEER = 30,          /* string "addr:port" of the client */
    QD_F_TICKET_KEY = 31,    /* bytes: QD_TICKET_KEY_LEN */
    QD_F_LOCAL = 32,         /* bytes: struct sockaddr_in or sockaddr_in6 */
    QD_F_REMOTE = 33,        /* bytes: struct sockaddr_in or sockaddr_in6 */
    QD_F_ENDPOINT = 34,      /* u32: index of the socket set's address */
    QD_F_QUIC_STREAM = 35,   /* u64: the QUIC stream id of a request */
    QD_F_CONN_ID = 36,       /* string: the connection's first server CID, hex */
    QD_F_END_MS = 37,        /* u64 wall clock */
    QD_F_HANDSHAKE_US = 38,  /* u64 */
    QD_F_ALPN = 39,          /* string */
    QD_F_CIPHER = 40,        /* string */
    QD_F_QUIC_VERSION = 41,  /* u32 */
    QD_F_BYTES_IN = 42,      /* u64 */
    QD_F_BYTES_OUT = 43,     /* u64 */
    QD_F_PKTS_IN = 44,       /* u64 */
    QD_F_PKTS_OUT = 45,      /* u64 */
    QD_F_PKTS_LOST = 46,     /* u64 */
    QD_F_SRTT_US = 47,       /* u64 */
    QD_F_MIN_RTT_US = 48,    /* u64 */
    QD_F_CWND = 49,          /* u64 */
    QD_F_CC = 50,            /* string: congestion controller */
    QD_F_MIGRATIONS = 51,    /* u32 */
    QD_F_CLOSE_BY = 52,      /* u32 QD_REC_CLOSE_BY_* */
    QD_F_ERROR_CODE = 53,    /* u64 */
    QD_F_CLOSE_REASON = 54,  /* u32 QD_REC_REASON_* */
    QD_F_DURATION_US = 55,   /* u64 */
    QD_F_TTFB_US = 56,       /* u64 */
    QD_F_INTERVAL_MS = 57,   /* u32 */
    QD_F_HANDSHAKES = 58,    /* u64 */
    QD_F_REQUESTS = 59,      /* u64 */
    QD_F_GSO_BATCHES = 60,   /* u64 */
    QD_F_DROPS = 61,         /* u64 */
    QD_F_MEM_BYTES = 62,     /* u64 */
    QD_F_HALF_OPEN = 63,     /* u32: connections whose handshake is not complete */
    QD_F_NEW_CONNS = 64,     /* u32: new-connection attempts (Initials) in the last second */
    QD_F_RETRIES = 65,       /* u64: Retry packets sent */
    QD_F_RETRY_DROPS = 66,   /* u64: token-less Initials dropped over retry_limit */
    QD_F_PROTO = 67,         /* string: "h3", "h2" or "http/1.1" (QD_PROTO_*) */
    QD_F_TCP_CONNS = 68,     /* u32: live TLS/TCP connections of a worker */
    QD_F_TCP_ADDR = 69,      /* string "addr:port": the TCP listen socket of the address
                                named by the F_ADDR just before it (QD_MSG_SOCKETS) */
    QD_F_CID_TAG = 70,       /* u32: the 7-bit tag in byte 0 of every server CID */
    QD_F_UDP_SEND_ERRORS = 71, /* u64: UDP sends the kernel refused (EAGAIN aside) */
    QD_F_UDP_EMSGSIZE = 72,  /* u64: of those, EMSGSIZE (larger than the path MTU) */
    /* u64: connections a worker closed for abuse, by cause (worker_guard.c) */
    QD_F_CLOSED_HEADERS = 73,  /* field sections over the limits (HPACK/QPACK bombs) */
    QD_F_CLOSED_RESETS = 74,   /* stream resets by either side over the budget */
    QD_F_CLOSED_FLOODS = 75,   /* SETTINGS, PING, CONTINUATION and other frame floods */
    QD_F_CLOSED_PROTOCOL = 76, /* protocol errors we detect ourselves (a lower stream id) */
    QD_F_SEQ = 77,             /* u64: a sequence number (QD_MSG_UP_STATE) */
    QD_F_GROUP = 78,           /* string: an upstream group's name */
    QD_F_SERVER = 79,          /* string: an upstream server, as the table writes it
                                  (host:port, [v6]:port or unix:/path) */
    QD_F_UP_ACTIVE = 80,       /* u32: a worker's connections to a server carrying a request */
    QD_F_UP_IDLE = 81,         /* u32: ... kept alive in its pool */
    QD_F_UP_FAILS = 82,        /* u64: requests that saw the server fail (timeouts, broken
                                  answers, connects that failed) */
    QD_F_UP_STATUS = 83,       /* u32: the upstream answer's status, 0: none came */
    QD_F_UP_TIME_US = 84,      /* u64: from the request head to the upstream answer's head,
                                  or to the failure; absent when not taken */
    /* u64: a worker's proxied requests, those it answered 502/503/504 itself, retries */
    QD_F_PROXIED = 86,
    QD_F_PROXY_ERRORS = 87,
    QD_F_PROXY_RETRIES = 88,
    QD_F_UDP_RXQ_DROPS = 89,   /* u64: datagrams a worker's sockets dropped, receive queue full */
    QD_F_UDP_RCVBUF = 90,      /* u32: the smallest receive buffer of a worker's UDP sockets */
    QD_F_UDP_SNDBUF = 91,      /* u32: ... and send buffer, as the kernel granted them */
    QD_F_SCHEMA = 92,          /* u32: the sender's qd_metrics_schema() */
    QD_F_METRICS = 93,         /* bytes: a qd_metrics, qd_metrics_encode'd */
    QD_F_ROUTE = 94,           /* string: a route's name (QD_MSG_METRICS; qd_metrics.h) */
    QD_F_ROUTE_SLOTS = 95,     /* bytes: that route's QD_ROUTE_NSLOTS totals, encoded */
};

/* QD_MSG_CTL_REPLY F_FLAGS: more replies to the same request follow */
#define QD_CTL_F_MORE 0x1
/* QD_MSG_METRICS F_FLAGS: the sender exits (its gauges are gone) */
#define QD_METRICS_F_EXIT 0x1
/* QD_MSG_FWD_PACKET F_FLAGS beyond the ECN bits: a new connection's packet that a
 * draining worker got; the listener passes it to the newest generation */
#define QD_FWD_F_NEW 0x100
/* QD_MSG_LAYOUT F_FLAGS of a generation */
#define QD_LAYOUT_F_TCP 0x1 /* its workers take TCP listen sockets */
#define QD_LAYOUT_F_NEW 0x2 /* it takes new connections (else it is starting or draining) */

/* F_PROTO values: the ALPN of the connection that carried a request */
#define QD_PROTO_H3 "h3"
#define QD_PROTO_H2 "h2"
#define QD_PROTO_H1 "http/1.1"


/* QD_MSG_STOP F_FLAGS to a worker */
#define QD_STOP_F_STEERED_AWAY 0x1 /* no new connection is steered to it any more */

/* QD_MSG_STATUS F_FLAGS from a worker */
#define QD_STATUS_F_RETRY 0x1 /* retry = auto is demanding address validation now */

/* QD_MSG_REC_CONN F_FLAGS */
#define QD_REC_F_RESUMED 0x1   /* TLS session resumption */
#define QD_REC_F_EARLY 0x2     /* 0-RTT data was accepted */
#define QD_REC_F_RETRY 0x4     /* the address was validated with a Retry token */
#define QD_REC_F_HANDSHAKE 0x8 /* the handshake completed */
#define QD_REC_MAX_PATHS 8     /* F_PEER fields in one connection record */
#define QD_CONNS_MAX 100       /* connections one QD_MSG_CONNS lists */
#define QD_REC_BATCH_BYTES 8192 /* a REC_BATCH datagram stays below this */
#define QD_REC_SERVER_MAX 300   /* F_SERVER of a REC_REQUEST is shorter than this */
/* QD_MSG_REC_CONN F_CLOSE_BY */
enum { QD_REC_CLOSE_BY_NONE, QD_REC_CLOSE_BY_SERVER, QD_REC_CLOSE_BY_CLIENT };
/* QD_MSG_REC_CONN F_CLOSE_REASON; keep in step with qd_rec_reason_name */
enum {
    QD_REC_REASON_NONE,           /* clean close with NO_ERROR */
    QD_REC_REASON_ERROR,          /* CONNECTION_CLOSE with an error code */
    QD_REC_REASON_IDLE,           /* idle timeout */
    QD_REC_REASON_HANDSHAKE_TIMEOUT,
    QD_REC_REASON_STATELESS_RESET, /* the peer sent a stateless reset */
    QD_REC_REASON_DROPPED,        /* dropped without a close (bad packet, shutdown) */
    QD_REC_REASON_COUNT
};

/* qd_rec_reason_name returns "none", "error", "idle", ... or "unknown". */
const char *qd_rec_reason_name(uint32_t reason);
/* qd_rec_close_by_name returns "none", "server", "client" or "unknown". */
const char *qd_rec_close_by_name(uint32_t by);

/* QD_MSG_METRICS_HTTP F_FLAGS: which descriptors it carries */
#define QD_METRICS_HTTP_F_LISTEN 0x1 /* the listening socket of metrics_listen */
#define QD_METRICS_HTTP_F_TOKEN 0x2  /* metrics_token_file, open */
/* QD_MSG_PROXY_TABLE F_FLAGS: which descriptors it carries */
#define QD_PROXY_F_TABLE 0x1
#define QD_PROXY_F_CA 0x2
/* QD_MSG_UP_STATE F_STATUS */
enum { QD_UP_STATE_UP, QD_UP_STATE_DOWN };
/* QD_MSG_UP_REPORT F_STATUS: a request's outcome at a server */
enum {
    QD_UP_RESULT_OK,      /* an answer (passive failures of the server start over) */
    QD_UP_RESULT_TIMEOUT, /* no answer within read_timeout, or the request not taken */
    QD_UP_RESULT_BROKEN,  /* the connection broke, or the answer was not HTTP */
};

/* QD_MSG_REQ_* flags */
#define QD_REQ_F_END 0x1   /* no more request body follows */
#define QD_REQ_F_EARLY 0x2 /* the request arrived in 0-RTT data (replayable) */
/* REQ_CANCEL with this flag: the worker drains; end an open-ended response
 * (/events, /stream) cleanly after its last whole event instead of
 * forgetting the request; any other request goes on */
#define QD_REQ_F_FINISH 0x4
/* QD_MSG_RESP_* flags */
#define QD_RESP_F_END 0x1 /* no more response body follows */
/* With a whole file's descriptor on a 200 to GET: the worker may answer later
 * GET/HEAD requests for the same path and Accept-Encoding itself, for
 * file_cache_valid (the fast path, worker_cache.c). */
#define QD_RESP_F_GRANT 0x2

/* Shared secrets the listener hands the workers with their sockets. */
#define QD_STATIC_SECRET_LEN 32 /* tokens and stateless-reset keys */
#define QD_TICKET_KEY_LEN 48    /* 16-byte key name + 32-byte AEAD key */

/*
 * Response bodies sent as QD_MSG_RESP_BODY are flow-controlled: the app may
 * have at most QD_RESP_WINDOW body bytes per stream that the worker has not
 * yet acknowledged with QD_MSG_RESP_CREDIT.
 */
#define QD_RESP_WINDOW (256 * 1024)
/* Largest F_BODY chunk that fits one message with its other fields. */
#define QD_IPC_MAX_CHUNK (60 * 1024)

#define QD_IPC_INDEX_TAGS 128 /* tags below this are found without a scan */

typedef struct qd_ipc_msg {
    uint16_t type;
    uint16_t flags;
    uint32_t id;
    uint32_t len; /* body bytes */
    /* private: 1 + the offset of the first field of each tag, 0 for none (a hint: checked) */
    uint16_t first[QD_IPC_INDEX_TAGS];
    uint8_t body[QD_IPC_MAX_BODY];
    int fds[QD_IPC_MAX_FDS];
    uint32_t fd_count;
} qd_ipc_msg;

/*
 * qd_ipc_msg_init starts an empty message of |type| with request id |id|
 * and no descriptors.
 */
void qd_ipc_msg_init(qd_ipc_msg *m, uint16_t type, uint32_t id);

/*
 * Composers. Each appends one field. Return 0, or QD_ERR_TOOBIG when the
 * body would exceed QD_IPC_MAX_BODY (the message is then unchanged).
 */
int qd_ipc_put_u32(qd_ipc_msg *m, uint16_t tag, uint32_t v);
int qd_ipc_put_u64(qd_ipc_msg *m, uint16_t tag, uint64_t v);
int qd_ipc_put_str(qd_ipc_msg *m, uint16_t tag, const char *s);
int qd_ipc_put_bytes(qd_ipc_msg *m, uint16_t tag, const void *p, size_t len);

/*
 * qd_ipc_put_fd attaches descriptor |fd| (borrowed: sending does not close
 * it). Returns 0 or QD_ERR_FDS when the message already has QD_IPC_MAX_FDS.
 */
int qd_ipc_put_fd(qd_ipc_msg *m, int fd);

/*
 * Bounded getters: the first field with |tag|. Return 0, QD_ERR_NOTFOUND
 * when absent, QD_ERR_INVAL when the field has the wrong size, and for
 * qd_ipc_get_str QD_ERR_TOOBIG when it does not fit |cap| bytes with its NUL.
 */
int qd_ipc_get_u32(const qd_ipc_msg *m, uint16_t tag, uint32_t *out);
int qd_ipc_get_u64(const qd_ipc_msg *m, uint16_t tag, uint64_t *out);
int qd_ipc_get_str(const qd_ipc_msg *m, uint16_t tag, char *dst, size_t cap);
int qd_ipc_get_bytes(const qd_ipc_msg *m, uint16_t tag, const uint8_t **p, size_t *len);

/*
 * qd_ipc_next iterates over the fields: start with |*pos| = 0; returns 1 and
 * sets |*tag|, |*val|, |*len| for each field, 0 at the end.
 */
int qd_ipc_next(const qd_ipc_msg *m, size_t *pos, uint16_t *tag, const uint8_t **val,
                size_t *len);

/*
 * qd_ipc_encode writes |m| into |buf| (|cap| bytes). Returns the length, or
 * QD_ERR_NOSPACE.
 */
int qd_ipc_encode(const qd_ipc_msg *m, uint8_t *buf, size_t cap);

/*
 * qd_ipc_decode parses |len| bytes of hostile input |buf| that arrived with
 * |nfds| descriptors into |m| (the descriptors themselves are the caller's
 * to store in m->fds afterwards). Returns 0, or QD_ERR_TRUNC (shorter than
 * its header says or a field overruns), QD_ERR_TOOBIG (longer than its
 * header says, or over the maximum), QD_ERR_UNKNOWN (unknown type or field
 * tag), QD_ERR_INVAL (a field of the wrong size, a string with a NUL), or
 * QD_ERR_FDS (descriptor count not allowed for the type). Never crashes,
 * whatever the input.
 */
int qd_ipc_decode(qd_ipc_msg *m, const uint8_t *buf, size_t len, size_t nfds);

/*
 * qd_ipc_frame returns the length of the first message of the record
 * |buf| (|len| bytes, hostile): QD_ERR_TRUNC when |len| cannot hold its
 * header or the body its header announces, QD_ERR_TOOBIG when that body
 * is over the maximum. The message itself is checked by qd_ipc_decode.
 */
int qd_ipc_frame(const uint8_t *buf, size_t len);

/*
 * qd_ipc_send sends |m| (and its descriptors, borrowed) on |sock|.
 * Returns 0 or a code from qd_fdpass_send.
 */
int qd_ipc_send(int sock, const qd_ipc_msg *m);

/*
 * qd_ipc_recv receives and decodes one message from |sock| into |m|; the
 * caller owns the descriptors in m->fds and must close them (see
 * qd_ipc_msg_close_fds). A message that fails to decode has its
 * descriptors closed and the decode error is returned; the channel stays
 * usable. Returns 0, QD_ERR_EOF, QD_ERR_AGAIN, QD_ERR_IO or a decode error.
 */
int qd_ipc_recv(int sock, qd_ipc_msg *m);

/*
 * A reader of records for a blocking client or a test (a daemon reads
 * through qd_chan): qd_ipc_read returns the next message of the record in
 * |r|, receiving the next record from |sock| when it is used up, with
 * qd_ipc_recv's return values; the record's descriptors come with its last
 * message. Start |r| zeroed.
 */
typedef struct qd_ipc_reader {
    size_t len, off;
    size_t nfds;
    int fds[QD_IPC_MAX_FDS];
    uint8_t buf[QD_IPC_MAX_MSG];
} qd_ipc_reader;

int qd_ipc_read(int sock, qd_ipc_reader *r, qd_ipc_msg *m);

/* qd_ipc_msg_close_fds closes every descriptor still in |m| and clears them. */
void qd_ipc_msg_close_fds(qd_ipc_msg *m);

/* qd_ipc_msg_take_fd removes descriptor |i| from |m| and returns it (or -1). */
int qd_ipc_msg_take_fd(qd_ipc_msg *m, size_t i);

/* qd_ipc_type_name returns the name of a message type, or "unknown". */
const char *qd_ipc_type_name(uint16_t type);

#endif /* QD_IPC_H */
