/* SPDX-License-Identifier: MIT */
#ifndef QD_WORKER_H
#define QD_WORKER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <nghttp3/nghttp3.h>
#include <nghttp2/nghttp2.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <uv.h>

#include "qd_buf.h"
#include "qd_chan.h"
#include "qd_child.h"
#include "qd_cid.h"
#include "qd_ipc.h"
#include "qd_metrics.h"

#define WORKER_MAX_SOCKETS 64
#define WORKER_H2_GAPS 16 /* ranges of skipped HTTP/2 stream ids remembered */
#define WORKER_MAX_UDP_PAYLOAD 1452 /* what we send before PMTUD raises it */
#define WORKER_TX_BUF (64 * 1024)   /* one GSO batch */
#define WORKER_CHUNK (64 * 1024)    /* response body chunk (pooled) */
#define WORKER_SMALL_CHUNK (16 * 1024) /* a body smaller than this gets a chunk of its size */
#define WORKER_STREAM_CHUNKS 8      /* body chunks in flight per stream */
#define WORKER_REC_FLUSH_MS 100     /* longest a stats record waits in its batch */
#define WORKER_TCP_SWEEP_MS 250    /* how often TCP deadlines are checked */
#define WORKER_MAX_HEAD (32 * 1024) /* request field section limit (431), every protocol */
#define WORKER_MAX_SECTION (2 * WORKER_MAX_HEAD) /* a field section past this closes the connection */
#define WORKER_MAX_OVERSIZE 3    /* oversized heads (431) a connection may send; one more closes it */
#define WORKER_RESET_BUDGET 200  /* stream resets per connection and second, by either side */

typedef struct worker worker;
typedef struct wk_conn wk_conn;
typedef struct wk_stream wk_stream;
typedef struct wk_tcp wk_tcp;
typedef struct wk_h1 wk_h1;

#include "worker_proxy.h"

/*
 * wk_proto - how a connection's protocol answers its requests: the request
 * code (worker_req.c, worker_app.c, worker_cache.c) calls only these,
 * through c->proto, whatever carried the request. |nv| is in nghttp3's
 * layout (nghttp2_nv is the same) and starts with :status.
 */
typedef struct wk_proto {
    const char *name; /* QD_PROTO_* */
    bool alt_svc;     /* its responses advertise HTTP/3 (Alt-Svc) */
    int (*submit)(wk_stream *s, const nghttp3_nv *nv, size_t n, bool body);
    int (*submit_info)(wk_stream *s, const nghttp3_nv *nv, size_t n);
    void (*resume)(wk_stream *s); /* more body is ready */
    /* abandon the response (|malformed|: the request was): a stream
     * error, or for HTTP/1.1 the end of the connection */
    void (*reset)(wk_stream *s, bool malformed);
    /* |n| request body bytes the source held (s->hold_body) were taken:
     * the client may send as many more (its flow-control window) */
    void (*consumed)(wk_stream *s, size_t n);
} wk_proto;

/*
 * wk_source - where a response comes from: worker_req.c offers a complete
 * request head to each in turn (the fast path, then the app) until one
 * takes it, and passes that one the request's body, its end, the
 * client's progress and its departure. Only start is required.
 */
typedef struct wk_source {
    const char *name;
    bool (*start)(wk_stream *s, bool fin); /* answer it, or false: not this source's */
    void (*body)(wk_stream *s, const uint8_t *data, size_t len);
    void (*end)(wk_stream *s);                     /* the request is complete */
    bool (*delivered)(wk_stream *s, uint64_t len); /* body bytes the client took; false: abandoned */
    void (*cancel)(wk_stream *s);                  /* the stream goes away (worker_req_free) */
    void (*describe)(wk_stream *s, qd_buf *out);   /* words for the access log line */
    void (*handshake_done)(wk_stream *s);          /* the connection's handshake completed */
} wk_source;

/* Why worker_guard_refuse closed a connection (a counter each). */
enum wk_guard_cause { WK_GUARD_HEADERS, WK_GUARD_RESETS, WK_GUARD_FLOOD, WK_GUARD_PROTOCOL, WK_GUARD_N };

/* One UDP socket: a member of the reuseport group of one listen address. */
typedef struct wk_ep {
    worker *w;
    int fd;
    uv_poll_t *poll;
    int family;
    uint16_t port;                 /* bound port, network order */
    struct sockaddr_storage bound; /* the listen address */
    char name[80];
    bool want_write; /* some connection waits for this socket to drain */
    int tcp_fd;           /* the TCP listen socket of the same address (tcp = yes), or -1 */
    int rcvbuf, sndbuf;   /* the buffers the kernel granted (getsockopt: twice what was set) */
    uint32_t drops_base;  /* the socket's drops when this worker took it (worker_io_drops) */
    uv_poll_t *tcp_poll;  /* accepting on it */
} wk_ep;

/* An address in the form ngtcp2 compares byte for byte. */
typedef struct wk_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} wk_addr;

/* A CID (or request id) -> connection (or stream) hash table entry. */
typedef struct wk_map_entry {
    struct wk_map_entry *next;
    uint8_t key[NGTCP2_MAX_CIDLEN];
    uint8_t keylen;
    void *value;
} wk_map_entry;

typedef struct wk_map {
    wk_map_entry **slots;
    size_t nslots, count;
    uint64_t seed;
} wk_map;

/* A piece of response body in flight. */
typedef struct wk_chunk {
    struct wk_chunk *next;
    size_t len; /* filled bytes */
    size_t cap; /* WORKER_CHUNK (pooled), or less for a small body */
    uint8_t data[];
} wk_chunk;

#define WK_FILE_MAX_FIELDS 56 /* header fields (and hint fields) a granted answer may have */
#define WK_FILE_MEM_MAX (16 * 1024)     /* a granted file this small is kept in memory */
#define WK_CACHE_MEM_MAX (4 * 1024 * 1024) /* ... while the cache holds less than this */

/* A static answer the app granted (worker_cache.c): one allocation. */
typedef struct wk_file {
    struct wk_file *hnext;          /* hash chain */
    struct wk_file *older, *newer;  /* LRU list */
    uint64_t hash;
    char *key; /* :path NUL accept-encoding, as the client sent them */
    size_t keylen;
    int fd;        /* the file, read with pread; -1 when it is in |data| */
    uint8_t *data; /* a small file's bytes (read once), or NULL */
    uint32_t refs; /* streams reading it */
    bool cached;   /* in the table (else freed with its last reference) */
    uint64_t size;
    time_t mtime;     /* last-modified, for If-Modified-Since and If-Range */
    const char *etag; /* in nv */
    uint64_t expires_ns;
    nghttp3_nv *nv; /* the 200's header fields (NUL-terminated strings) */
    size_t nnv;
    nghttp3_nv *hints; /* the 103 Early Hints fields sent before it */
    size_t nhints;
} wk_file;

typedef struct wk_cache {
    wk_file **slots;
    size_t nslots, count;
    wk_file *newest, *oldest;
    uint64_t seed;
    size_t mem; /* bytes of file data held */
    uint64_t hits, grants;
} wk_cache;

/*
 * Draining (a stop, or the end of a generation): a connection whose first
 * request may still be on its way gets no GOAWAY for this long (a client
 * that has one sends no request there at all); after the shutdown notice,
 * the final GOAWAY waits a few round trips, within these bounds.
 */
#define WORKER_FIRST_REQUEST_NS (2000 * 1000000ULL)
#define WORKER_NOTICE_GRACE_MIN_NS (100 * 1000000ULL)
#define WORKER_NOTICE_GRACE_MAX_NS (1000 * 1000000ULL)
/*
 * ... and a stopping worker accepts on its TCP sockets for at least this
 * long: a handshake begun before the steering switched (a SYN-ACK a round
 * trip away, or retransmitted) completes into its accept queue, where no
 * other worker would ever take it. A worker the steering no longer sends
 * connections to (QD_STOP_F_STEERED_AWAY: its generation ended) accepts
 * as long as it lives; at a stop of quicd, only this long.
 */
#define WORKER_ACCEPT_GRACE_NS (1000 * 1000000ULL)

/* A request stream. */
struct wk_stream {
    wk_stream *next, *prev; /* in the connection's list */
    wk_conn *c;
    int64_t id;
    uint64_t req_id; /* F_STREAM towards the app */
    bool early;      /* request data arrived in 0-RTT */
    bool head_sent;  /* REQ_HEAD went to the app */
    bool responded;  /* a response was submitted to nghttp3 */
    bool req_done;   /* the request is complete */
    bool head_done;  /* the request head is complete (worker_req_head) */
    const wk_source *src; /* the source that took the request, or NULL */
    void *src_data;       /* that source's own state for it (the proxy's wk_proxy) */
    bool hold_body;       /* the source consumes the body itself (worker_req_consumed) */
    uint64_t body_held;   /* body bytes received and not yet consumed */
    /* request head, collected until end_headers */
    char *method, *scheme, *authority, *path; /* in inl, or allocated */
    char inl[160]; /* the pseudo-headers' bytes, while they fit */
    size_t inl_used;
    qd_buf fields;    /* the stream's own header fields until REQ_HEAD: u16 length, name NUL value */
    size_t head_bytes;    /* the head's field bytes as decoded (worker_guard_section) */
    size_t trailer_bytes; /* the trailers' */
    uint64_t body_in; /* request body bytes received */
    /* response body: a queue of chunks; [0, acked) freed, [acked, handed) with nghttp3 */
    wk_chunk *first, *last;
    size_t nchunks;
    uint64_t filled, handed, acked;
    uint64_t ack_skip; /* acked bytes of the first chunk */
    int fd;            /* body source, or -1 */
    wk_file *file;     /* fd or mem belongs to this cache entry (a reference), or NULL */
    const uint8_t *mem; /* the body in memory ([0, filled)), handed to nghttp3 as it is */
    char *grant_key;   /* cacheable request: its cache key (keylen bytes) for a grant */
    size_t grant_keylen;
    qd_buf hints;      /* the 103 fields the app sent, while a grant may follow */
    qd_buf trailers;   /* response trailers sent after the body: u16 length, name NUL value */
    char upgrade[32];  /* HTTP/1.1 Upgrade the client asks for ("websocket"), or "" */
    char te_codings[64]; /* HTTP/1.1 transfer codings besides chunked ("gzip"): the body
                            the source gets is still in them */
    bool tunnel;       /* after a 101: body both ways is the new protocol's bytes */
    bool by_worker;    /* answered by the worker (its cache, 503, 425, 431): it logs it */
    uint64_t fd_off;   /* next file offset to read */
    uint64_t fd_left;  /* file bytes not yet read */
    bool body_from_app; /* RESP_BODY messages carry the body */
    bool eof;          /* no more body will be added */
    bool blocked;      /* nghttp3 was told WOULDBLOCK */
    uint64_t credit_due; /* acked app-body bytes not yet credited */
    int status;
    /* for the request record (worker_rec.c) */
    uint64_t started_ns, started_ms, ttfb_ns;
    const char *up_server; /* a proxied request: the last server tried (the proxy's), else NULL */
    uint32_t up_status;    /* its answer's status, 0 before one */
    uint64_t up_time_us;   /* from the request head to that answer's head (or the failure) */
};

enum wk_conn_state { WK_ALIVE, WK_CLOSING, WK_DRAINING };

struct wk_conn {
    worker *w;
    wk_tcp *tcp;       /* TLS over TCP (worker_tcp.c); NULL for QUIC */
    const wk_proto *proto; /* HTTP/3 for QUIC, HTTP/2 or HTTP/1.1 after ALPN over TCP */
    wk_conn *next, *prev;           /* all connections */
    wk_conn *dirty_next;            /* needs a write after this batch */
    bool dirty;
    ngtcp2_conn *conn;
    nghttp3_conn *h3;
    WOLFSSL *ssl;
    ngtcp2_crypto_conn_ref ref;
    ngtcp2_ccerr last_error;
    enum wk_conn_state state;
    uv_timer_t timer;
    bool timer_closing;
    uint8_t *close_pkt; /* CONNECTION_CLOSE to repeat in the closing period */
    size_t close_len;
    ngtcp2_path_storage close_path;
    uint32_t close_count;
    ngtcp2_cid odcid; /* the client's first DCID (a map key) */
    wk_stream *streams;
    uint32_t nstreams;
    uint32_t nrequests; /* streams it has had in all */
    /* a batch the socket would not take (EAGAIN) */
    uint8_t *blocked_buf;
    size_t blocked_len, blocked_gso;
    ngtcp2_path_storage blocked_path;
    uint8_t blocked_ecn;
    bool blocked;
    bool gso_off;
    bool goaway_sent;     /* the final GOAWAY (no new requests) */
    uint64_t notice_ns;   /* when the first GOAWAY (a shutdown notice) went, 0 if not */
    uint64_t goaway_ns;   /* when the final one went */
    bool handshake_done;
    bool rx_early; /* reading 0-RTT stream data right now */
    uint64_t started_ns;
    char peer[64];
    char cid_text[2 * QD_CID_LEN + 1]; /* first server CID, for logs */
    /* for the connection record (worker_rec.c); counted without allocation */
    uint64_t bytes_in, bytes_out, pkts_in, pkts_out;
    uint64_t pkts_lost;   /* stream losses of the streams already closed */
    int64_t h3_uni[3];    /* our control and QPACK streams, once h3 is set */
    uint64_t started_ms, handshake_ns;
    uint32_t migrations, streams_opened, close_reason;
    bool retry_used, had_early, got_reset;
    /* abuse budgets (worker_guard.c) */
    uint64_t resets_ns;  /* start of the second the resets are counted in */
    uint32_t resets;     /* stream resets, by either side, in that second */
    uint32_t oversize;   /* oversized request heads (431) */
    uint64_t h3_error;   /* an HTTP/3 error a callback failed with on purpose, or 0 */
    uint32_t npaths;
    char paths[QD_REC_MAX_PATHS][64]; /* the first path, then migrations */
    char local[64];
};

enum wk_tcp_kind { WK_TCP_TLS, WK_TCP_H2, WK_TCP_H1 };

/* The TCP side of a TLS/TCP connection (worker_tcp.c); its wk_conn has conn == NULL. */
struct wk_tcp {
    wk_conn *c;
    int fd;
    uv_poll_t *poll;
    int events; /* UV_READABLE | UV_WRITABLE being watched */
    WOLFSSL *ssl;
    uint16_t port; /* the local port (host order): Alt-Svc's h3 port */
    enum wk_tcp_kind kind;
    qd_buf out;       /* plaintext for TLS; [out_off, out.len) not yet written */
    size_t out_off;
    size_t write_len; /* a wolfSSL_write that must be repeated as it was (WANT_WRITE) */
    bool closing;     /* close once |out| is written */
    bool dead;        /* closed; freed at the end of the current callback */
    bool draining;    /* told to finish (GOAWAY or Connection: close) */
    bool lingering;   /* our side is closed; reading what the client still sends */
    bool recorded;    /* its requests and its record are done (at linger) */
    uint64_t linger_until_ns;
    uint64_t last_in_ns, last_out_ns; /* last byte read / written (timeouts) */
    uint64_t head_deadline_ns; /* 0, or when the handshake or a request head must be complete */
    nghttp2_session *h2;
    wk_h1 *h1;
    /* HTTP/2 flood limits: frames of a kind in the current second */
    uint64_t flood_ns;
    uint32_t flood_settings, flood_ping, flood_empty;
    int32_t h2_last_id;  /* the highest request stream id seen */
    int32_t h2_gaps[WORKER_H2_GAPS][2]; /* request stream ids the client skipped, newest last */
    uint32_t h2_ngaps;
    bool refused; /* closed for abuse (worker_guard_refuse): counted once */
    uint32_t close_by, close_reason; /* QD_REC_CLOSE_BY_*, QD_REC_REASON_* */
};

struct worker {
    qd_child child;
    qd_chan *listener;
    qd_chan *app;
    wk_ep eps[WORKER_MAX_SOCKETS];
    size_t nep;
    bool have_secrets;
    uint32_t cid_tag; /* byte 0 of our CIDs (qd_cid.h), from the listener */
    bool in_relay;    /* handling a packet the listener relayed: never forward it again */
    uint8_t static_secret[QD_STATIC_SECRET_LEN];
    uint8_t ticket_key[QD_TICKET_KEY_LEN];
    WOLFSSL_CTX *tls;
    int tls_fds[2]; /* tls_certificate, tls_key from the master (QD_MSG_TLS_FILES); -1: none */
    wk_map cids;    /* CID -> wk_conn */
    wk_map streams; /* request id -> wk_stream */
    wk_conn *conns;
    wk_conn *tconns;      /* TLS/TCP connections (worker_tcp.c) */
    uint32_t tcp_count;   /* in tconns */
    uint64_t tcp_accepted, tcp_refused, tcp_errors;
    WOLFSSL_CTX *tls_tcp; /* TLS 1.3 and 1.2 over TCP, ALPN h2 and http/1.1 */
    uint32_t connections; /* all, including those closing or draining */
    uint32_t closing;     /* in their closing or draining period */
    uint64_t half_open; /* connections whose handshake has not completed */
    uint64_t next_req_id;
    wk_conn *dirty;
    wk_chunk *free_chunks;
    size_t nfree_chunks;
    wk_cache cache; /* granted static answers (the fast path) */
    int access_fd;  /* access_log from the master (QD_MSG_LOG_FD); -1: off */
    int proxy_fd;   /* proxy_table from the master (QD_MSG_PROXY_TABLE), until CONFIG; -1: none */
    int proxy_ca_fd; /* proxy_ca_file, likewise */
    WOLFSSL_CTX *up_tls; /* TLS to https:// upstream servers (worker_uptls.c), or NULL */
    /* Retry decision for retry = auto: new connections this second */
    uint64_t rate_window_ns;
    uint64_t rate_count;
    uint64_t rate_last; /* new-connection attempts in the last full window (status) */
    uint64_t rate_done;  /* handshakes completed this second */
    bool retry_active;
    /* Retry budget: retry_limit per second (token bucket) */
    uint64_t retry_tokens, retry_refill_ns;
    uint64_t initials_dropped; /* token-less Initials dropped over the budget */
    /* stateless reset budget */
    uint64_t reset_tokens, reset_refill_ns;
    /* counters for status and logs */
    uint64_t rx_packets, tx_packets, dropped, forwarded_wrong_worker, resets_sent, retries_sent;
    uint64_t handshakes, requests;
    uint64_t app_send_failures; /* messages the app channel refused (their streams reset) */
    uint64_t udp_send_errors;   /* UDP sends the kernel refused (EAGAIN aside; QUIC retransmits) */
    uint64_t udp_emsgsize;      /* of those, EMSGSIZE: larger than the route's MTU */
    uint64_t udp_nobufs;        /* ... ENOBUFS: the kernel had no memory for it */
    uint64_t rxq_drops;         /* drops of the sockets it no longer has (worker_io_drops) */
    uint64_t guard_closed[WK_GUARD_N]; /* connections closed for abuse, by cause (worker_guard.c) */
    uint64_t rx_bytes, tx_bytes, tx_batches;
    /* records (worker_rec.c) */
    uint64_t rec_sent, rec_drops;
    qd_metrics m;       /* the counters /metrics shows (worker_metrics.c) */
    /* the aggregates by route: QD_ROUTE_NSLOTS running totals per route name, in the order
     * first seen; the last one, once QD_ROUTE_MAX are taken, is QD_ROUTE_OTHER */
    struct wk_route_count {
        char name[QD_ROUTE_NAME_MAX];
        uint64_t v[QD_ROUTE_NSLOTS];
    } route_counts[QD_ROUTE_MAX + 1];
    size_t nroute_counts;
    uint64_t started_ms; /* wall clock, for stats to tell this process from its successor */
    uint64_t sample_ns;
    uv_timer_t sample_timer;
    struct wk_recs *recs; /* records being composed and batched (worker_rec.c) */
    uv_check_t flush_check; /* writes dirty connections once per loop iteration */
    struct {
        uint64_t handshakes, requests, rx_packets, tx_packets, rx_bytes, tx_bytes, tx_batches,
            rec_drops;
    } last; /* counters at the last sample */
    uv_timer_t tcp_sweep; /* TCP timeouts, every WORKER_TCP_SWEEP_MS */
    bool tcp_sweep_on;
    /* the reverse proxy (worker_route.c, worker_upstream.c, worker_upconn.c) */
    qd_proxy routes;          /* the proxy table */
    wk_upgroup **upgroups;    /* one per routes.groups[i] */
    wk_upserver *up_retired;  /* servers that left the table, until their connections close */
    qd_chan *upstream;        /* the upstream daemon */
    wk_map asks;              /* ask id -> wk_proxy (UP_CONNECT in flight) */
    uint64_t next_ask;
    uint64_t up_seq;          /* the highest UP_STATE seen */
    wk_upconn *upconns;       /* every upstream connection */
    uint32_t nupconns;
    uv_timer_t proxy_sweep;   /* deadlines, every WK_PROXY_SWEEP_MS while there is work */
    bool proxy_sweep_on;
    uint64_t proxied, proxy_errors, proxy_retries;
    /* graceful stop */
    bool stopping;
    uint64_t stop_deadline_ns;
    uint64_t accept_until_ns; /* stopping: TCP accepts end then */
    uint64_t may_exit_ns;     /* stopping: not before then (TCP stragglers) */
    uv_timer_t stop_timer;
};

/* worker.c */
extern worker the_worker;

/* worker_map.c */
void wk_map_init(wk_map *m);
void *wk_map_get(const wk_map *m, const uint8_t *key, size_t len);
int wk_map_put(wk_map *m, const uint8_t *key, size_t len, void *value);
void wk_map_del(wk_map *m, const uint8_t *key, size_t len);

/* worker_tls.c */
int worker_tls_init(worker *w, const qd_conf *conf, qd_buf *err);
WOLFSSL *worker_tls_session(worker *w, wk_conn *c);

/* worker_io.c */
void worker_io_start(worker *w, wk_ep *ep);
void worker_io_stop(wk_ep *ep);
int worker_io_send(wk_ep *ep, const ngtcp2_addr *local, const ngtcp2_addr *remote, uint8_t ecn,
                   const uint8_t *data, size_t len, size_t gso);
void worker_io_want_write(wk_ep *ep);
uint32_t worker_io_drops(int fd);
/* worker_io_rxq_drops - receive-queue drops of all the sockets it had, since it took them */
uint64_t worker_io_rxq_drops(const worker *w);
/* worker_io_buffers - the smallest receive and send buffers of its UDP sockets (0: none) */
void worker_io_buffers(const worker *w, int *rcv, int *snd);

/* worker_loop.c: the clock, randomness and the write scheduler */
uint64_t worker_now(void);
uint64_t worker_wall_ns(void);
uint64_t worker_prng(void);
void worker_conn_mark(wk_conn *c);
void worker_conn_flush_dirty(worker *w);

/* worker_accept.c: datagrams without a connection, new connections */
void worker_accept_packet(worker *w, wk_ep *ep, const wk_addr *local, const wk_addr *remote,
                          uint8_t ecn, const uint8_t *data, size_t len);
void worker_accept_forwarded(worker *w, qd_ipc_msg *m);
bool worker_accept_retry_tick(worker *w);

/* worker_conn.c: QUIC connections */
wk_conn *worker_conn_new(worker *w, wk_ep *ep, const wk_addr *local, const wk_addr *remote,
                         const ngtcp2_pkt_hd *hd, const ngtcp2_cid *odcid,
                         ngtcp2_token_type token_type);
int worker_conn_read(wk_conn *c, wk_ep *ep, const wk_addr *local, const wk_addr *remote,
                     uint8_t ecn, const uint8_t *data, size_t len);
void worker_conn_write(wk_conn *c);
void worker_conn_retry_blocked(worker *w, wk_ep *ep);
void worker_conn_close(wk_conn *c);
void worker_conn_free(wk_conn *c);

/* worker_drain.c: a graceful stop of the QUIC connections */
void worker_conn_notice(wk_conn *c);
void worker_conn_shutdown_all(worker *w);
void worker_conn_close_all(worker *w, bool force);
void worker_conn_free_all(worker *w);

/* worker_rec.c */
void worker_rec_conn(wk_conn *c);
void worker_rec_request(wk_stream *s);
typedef struct wk_recs wk_recs;
void worker_rec_start(worker *w);
void worker_rec_conns(worker *w, int fd); /* takes fd */
void worker_rec_flush(worker *w);
/* worker_rec_close_info - who closed |c|, why (QD_REC_*), the code and whether it is HTTP/3's */
void worker_rec_close_info(const wk_conn *c, uint32_t *by, uint32_t *reason, uint64_t *code,
                           bool *app);
/* worker_rec_bytes_out - response body bytes the client had of |s| */
uint64_t worker_rec_bytes_out(const wk_stream *s);

/* worker_metrics.c: counters and histograms for /metrics (the slots of w->m) */
void worker_metrics_handshake(wk_conn *c);
void worker_metrics_conn(wk_conn *c);
void worker_metrics_request(wk_stream *s);
void worker_metrics_reset(wk_conn *c, unsigned side); /* QD_MV_LOCAL or QD_MV_REMOTE */
void worker_metrics_send(worker *w, bool exiting);
/* worker_metrics_open opens what the per-worker gauges read (before the chroot). */
void worker_metrics_open(void);
/* worker_metrics_put adds its totals (F_SCHEMA, F_METRICS) to a message, its status report */
void worker_metrics_put(worker *w, qd_ipc_msg *m);
/* worker_count - one more in the slot |slot| of the worker's metrics */
#define worker_count(w, slot) ((w)->m.v[(slot)]++)

/* worker_cache.c */
wk_file *worker_cache_find(worker *w, const char *key, size_t keylen);
wk_file *worker_cache_put(worker *w, const char *key, size_t keylen, int fd, uint64_t size,
                          const nghttp3_nv *nv, size_t nnv, const nghttp3_nv *hints,
                          size_t nhints);
void worker_cache_unref(wk_file *f);
void worker_cache_clear(worker *w);
void worker_cache_grant(wk_stream *s, const nghttp3_nv *nv, size_t n, uint64_t length);
extern const wk_source worker_cache_source;

/* worker_app.c: the app as a response source */
extern const wk_source worker_app_source;
void worker_app_message(worker *w, qd_ipc_msg *m);
void worker_app_down(worker *w);
void worker_app_finish_all(worker *w);
void worker_app_send_failed(worker *w, const char *what, int rv);

/* worker_body.c: response bodies */
wk_chunk *worker_chunk_get(worker *w, size_t want);
void worker_chunk_put(worker *w, wk_chunk *ch);
void worker_body_append(wk_stream *s, const uint8_t *data, size_t len);
void worker_body_discard(wk_stream *s);
int worker_body_fill(wk_stream *s);
void worker_body_drop_fd(wk_stream *s);
void worker_body_use_mem(wk_stream *s, uint64_t off, uint64_t len);
int worker_req_read_vec(wk_stream *s, nghttp3_vec *vec, size_t veccnt, bool *eof);
ssize_t worker_req_pull(wk_stream *s, uint8_t *buf, size_t cap, bool *eof);
void worker_req_acked(wk_stream *s, uint64_t len);

/* worker_req.c: requests of every protocol */
wk_stream *worker_req_new(wk_conn *c, int64_t id);
void worker_req_free(wk_stream *s);
void worker_req_free_all(wk_conn *c);
bool worker_req_header(wk_stream *s, const uint8_t *name, size_t nlen, const uint8_t *value,
                       size_t vlen);
void worker_req_head(wk_stream *s, bool fin);
void worker_req_body(wk_stream *s, const uint8_t *data, size_t len);
void worker_req_end(wk_stream *s);
void worker_req_submit(wk_stream *s, int status, const nghttp3_nv *extra, size_t nextra, bool body);
int worker_req_submit_info(wk_stream *s, const nghttp3_nv *nv, size_t n);
void worker_req_respond(wk_stream *s, int status, const char *text);
void worker_req_resume(wk_stream *s);
void worker_req_reset(wk_stream *s);
const char *worker_req_alt_svc(const wk_conn *c);

void worker_req_consumed(wk_stream *s, size_t n);
void worker_req_handshake_done(wk_conn *c);
size_t worker_req_trailers(const wk_stream *s, nghttp3_nv *nv, size_t cap);

/* worker_route.c: the proxy table in the worker, servers and their choice */
int worker_route_configure(worker *w, const qd_conf *conf, qd_buf *err);
int worker_read_fd(int fd, qd_buf *out);
const qd_proxy_route *worker_route_match(worker *w, const wk_stream *s);
wk_upserver *worker_route_pick(worker *w, wk_proxy *px, bool *busy);
bool worker_route_busy(const wk_proxy *px);
wk_upserver *worker_route_find(worker *w, const char *group, const char *server);
void worker_route_server_done(worker *w, wk_upserver *sv);

/* worker_upstream.c: the channel to the upstream daemon */
void worker_upstream_channel(worker *w, int fd);
int worker_upstream_ask(worker *w, wk_proxy *px);
void worker_upstream_forget(worker *w, wk_proxy *px);
void worker_upstream_report(worker *w, wk_upserver *sv, int result);
void worker_upstream_counts(worker *w);

/* worker_upconn.c: connections to upstream servers */
wk_upconn *worker_upconn_new(worker *w, wk_upserver *sv, int fd);
wk_upconn *worker_upconn_take_idle(worker *w, wk_upserver *sv);
void worker_upconn_start(wk_upconn *uc, wk_proxy *px);
void worker_upconn_write(wk_upconn *uc);
void worker_upconn_resume(wk_upconn *uc);
void worker_upconn_release(wk_upconn *uc, bool reuse);
void worker_upconn_close(wk_upconn *uc);
void worker_upconn_sweep(worker *w, uint64_t now);

/* worker_uptls.c: TLS to https:// upstream servers */
int worker_uptls_configure(worker *w, const char *ca_name, qd_buf *err);
int worker_uptls_start(worker *w, wk_upconn *uc);
int worker_uptls_handshake(wk_upconn *uc, int *events, char *why, size_t cap);
ssize_t worker_uptls_send(wk_upconn *uc, const void *data, size_t len);
ssize_t worker_uptls_recv(wk_upconn *uc, void *buf, size_t cap);
void worker_uptls_free(wk_upconn *uc);

/* worker_proxy.c: the proxy as a response source */
extern const wk_source worker_proxy_source;
void worker_proxy_connected(wk_proxy *px, wk_upserver *sv, int fd, int err, const char *why);
void worker_proxy_answer_head(wk_proxy *px, int status, const nghttp3_nv *nv, size_t n);
void worker_proxy_answer_info(wk_proxy *px, int status, const nghttp3_nv *nv, size_t n);
void worker_proxy_answer_body(wk_proxy *px, const uint8_t *data, size_t len);
void worker_proxy_answer_trailers(wk_proxy *px, const nghttp3_nv *nv, size_t n);
void worker_proxy_answer_end(wk_proxy *px);
void worker_proxy_failed(wk_proxy *px, int status, int result, const char *why);
void worker_proxy_wrote(wk_proxy *px, size_t n);
void worker_proxy_wake(worker *w, wk_upgroup *g);
void worker_proxy_sweep(worker *w, uint64_t now);
void worker_proxy_sweep_start(worker *w);

/* worker_guard.c: per-connection budgets against abuse */
bool worker_guard_reset(wk_conn *c);
bool worker_guard_section(wk_stream *s, size_t bytes, bool trailer);
void worker_guard_refuse(wk_conn *c, enum wk_guard_cause why, const char *what);

extern const wk_proto worker_h2_proto;
/* worker_conn_proto_index - the connection's PROTO value in the metrics (qd_metrics.def) */
static inline unsigned worker_conn_proto_index(const wk_conn *c)
{
    return c->tcp == NULL ? QD_MV_PROTO_H3 : c->proto == &worker_h2_proto ? QD_MV_PROTO_H2 : QD_MV_PROTO_H1;
}

/* worker_conn_proto - the connection's QD_PROTO_* name */
static inline const char *worker_conn_proto(const wk_conn *c)
{
    return c->proto != NULL ? c->proto->name : QD_PROTO_H3;
}

/* worker_h3.c: HTTP/3 (nghttp3) */
int worker_h3_setup(wk_conn *c);
int worker_h3_recv(wk_conn *c, int64_t id, const uint8_t *data, size_t len, int fin, bool early);
int worker_h3_stream_close(wk_conn *c, int64_t id, uint64_t app_error_code);
extern const wk_proto worker_h3_proto;

/* worker_tcp.c: TLS over TCP */
void worker_tcp_listen(worker *w, wk_ep *ep);
void worker_tcp_unlisten(wk_ep *ep);
void worker_tcp_write(wk_conn *c);
void worker_tcp_close(wk_conn *c, uint32_t by, uint32_t reason);
void worker_tcp_shutdown_all(worker *w);
/* worker_tcp_close_all returns true while the worker must wait for TCP
 * stragglers (the first WORKER_ACCEPT_GRACE_NS of a stop) */
bool worker_tcp_close_all(worker *w, bool force);
void worker_tcp_out(wk_tcp *t, const void *data, size_t len);
void worker_tcp_touch(wk_tcp *t);

/* worker_h2.c: HTTP/2 (nghttp2) on a TLS connection */
int worker_h2_start(wk_conn *c);
int worker_h2_recv(wk_conn *c, const uint8_t *data, size_t len);
int worker_h2_produce(wk_conn *c);
bool worker_h2_done(wk_conn *c);
void worker_h2_shutdown(wk_conn *c, bool now);
void worker_h2_notice(wk_conn *c);
void worker_h2_free(wk_conn *c);
extern const wk_proto worker_h2_proto;

/* worker_h1.c: HTTP/1.1 (http-parser) on a TLS connection */
int worker_h1_start(wk_conn *c);
int worker_h1_recv(wk_conn *c, const uint8_t *data, size_t len);
int worker_h1_produce(wk_conn *c);
bool worker_h1_idle(const wk_conn *c);
bool worker_h1_paused(const wk_conn *c);
void worker_h1_free(wk_conn *c);
extern const wk_proto worker_h1_proto;

#endif /* QD_WORKER_H */
