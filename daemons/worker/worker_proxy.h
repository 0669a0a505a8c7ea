/* SPDX-License-Identifier: MIT */
#ifndef QD_WORKER_PROXY_H
#define QD_WORKER_PROXY_H

/*
 * The reverse proxy in the worker: routes and upstream groups
 * (worker_route.c), the channel to the upstream daemon
 * (worker_upstream.c), connections to upstream servers
 * (worker_upconn.c) and the proxy as a response source
 * (worker_proxy.c). Included by worker.h.
 */

#include <http_parser.h>

#include "qd_proxy.h"

#define WK_PROXY_WINDOW (256 * 1024)  /* response bytes held for a client before reading stops */
#define WK_PROXY_SEND_MAX (256 * 1024) /* request bytes queued for an upstream before the
                                          client's body is held */
#define WK_PROXY_REPLAY_MAX (64 * 1024) /* a request this small is kept to send again */
#define WK_PROXY_SWEEP_MS 50            /* how often proxy deadlines are checked */
#define WK_PROXY_HEAD_MAX (64 * 1024)   /* an upstream's response head */
#define WK_PROXY_RACES 4                /* kept-alive connections found closed, per request */

typedef struct wk_upgroup wk_upgroup;
typedef struct wk_upserver wk_upserver;
typedef struct wk_upconn wk_upconn;
typedef struct wk_proxy wk_proxy;

/* One server of a group as this worker sees it. */
struct wk_upserver {
    wk_upserver *next;    /* retired servers (w->up_retired) */
    wk_upgroup *g;        /* NULL once retired (left the table) */
    qd_proxy_server conf;
    char name[QD_PROXY_SERVER_NAME_MAX]; /* as the table and the upstream daemon write it */
    uint32_t index;       /* in its group (the tried mask of a request) */
    bool down;            /* the upstream daemon's word (QD_MSG_UP_STATE) */
    uint64_t seq;         /* of that word */
    bool failed;          /* we reported a failure since the last success */
    uint32_t conns;       /* open connections: busy, idle and connecting */
    uint32_t active;      /* requests on it now */
    int64_t cw;           /* smooth weighted round robin */
    wk_upconn *idle;      /* the pool, most recently used first */
    uint32_t nidle;
    uint64_t requests, fails, retries;
};

/* A group, its servers, and the requests waiting for a connection to one. */
struct wk_upgroup {
    qd_proxy_group conf; /* servers = NULL */
    wk_upserver **servers;
    size_t nservers;
    wk_proxy *wait_head, *wait_tail;
    uint32_t waiting;
};

/* A connection to an upstream server (HTTP/1.1 over TCP or a Unix socket). */
struct wk_upconn {
    wk_upconn *next, *prev; /* all of the worker's (w->upconns) */
    wk_upconn *idle_next;   /* in its server's pool */
    wk_upserver *sv;
    int fd;
    uv_poll_t *poll;
    int events;
    wk_proxy *px;           /* the request on it; NULL while idle */
    bool reused;            /* it carried a request before this one */
    uint64_t idle_since_ns;
    /* the request going out: [out_off, out.len) not written yet */
    qd_buf out;
    size_t out_off;
    uint64_t sent;          /* bytes of this request written */
    uint64_t last_io_ns;
    /* the answer */
    http_parser p;
    uint64_t got;           /* bytes of this answer read */
    qd_buf in;              /* read but not parsed (parsing paused) */
    size_t in_off;
    qd_buf head;            /* the answer's fields: u16 length, name NUL value */
    size_t head_bytes;
    bool in_value;
    bool info;              /* the message being parsed is a 1xx */
    bool done;              /* the answer is complete */
    bool close_after;       /* not reusable after this answer */
    bool paused;            /* parsing stopped: the client has WK_PROXY_WINDOW bytes to take */
    bool tunnel;            /* after a 101: bytes both ways, no HTTP */
    WOLFSSL *ssl;           /* https:// servers (worker_uptls.c), else NULL */
    bool tls_done;          /* its handshake is complete */
    size_t tls_write_len;   /* a wolfSSL_write to repeat with as many bytes */
};

/* A request on its way to an upstream (the stream's src_data). */
struct wk_proxy {
    wk_stream *s;
    wk_upgroup *g;          /* NULL when the group left the table while it waited */
    wk_upserver *sv;        /* the server being tried */
    wk_upconn *uc;
    wk_proxy *wait_next;
    bool waiting;           /* in its group's queue for a connection */
    uint64_t ask;           /* the UP_CONNECT in flight, or 0 */
    bool ask_sent;          /* sent (not waiting for the daemon's channel) */
    uint64_t tried;         /* servers tried (bits by index) */
    uint32_t attempts;      /* connections tried (the keep-alive race aside) */
    uint32_t races;         /* kept-alive connections that were closed under it */
    uint64_t deadline_ns;   /* the current wait: a connection, or an answer */
    uint64_t started_ns;
    qd_buf req;             /* the request as sent: kept for a retry while small */
    bool replayable;        /* req holds all of it (head and every body byte) */
    bool chunked;           /* the body goes out in chunked encoding */
    bool body_end;          /* the client's body is complete */
    bool end_sent;          /* ... and its end went out (the last chunk) */
    uint64_t held;          /* client body bytes taken but not yet consumed (flow control) */
    bool answered;          /* the answer's head went to the client */
    bool head_method;       /* HEAD: no body in the answer */
    bool idempotent;
    uint64_t hash;          /* policy=hash: of the client's address or the header's value */
    bool over;              /* the upstream side is done (answered or failed) */
    bool timed_out;         /* the last failure was a timeout (504 rather than 502) */
    bool second_round;      /* the servers tried once may be tried again (acquire) */
    bool deferred;          /* a small answer held until complete (it may still be retried) */
    size_t early_off;       /* where "early-data: 1" is in req (0: not there) */
    bool too_early;         /* the upstream answered 425: replay after the handshake */
    bool await_handshake;   /* ... waiting for it now */
    char upstream[QD_PROXY_SERVER_NAME_MAX]; /* the last server tried (the access log) */
    int ustatus;            /* its answer's status, 0 before one */
    uint64_t uhead_ns;      /* when that answer's head came */
    int dstatus;            /* its status */
    qd_buf dhead;           /* its fields: u16 length, name NUL value */
    char last_error[208];   /* the last failure, for the answer and the log */
};

#endif /* QD_WORKER_PROXY_H */
