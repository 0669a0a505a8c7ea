/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qload - HTTP/3 load client for handshake-rate, serial-latency and
 *	idle-connection benchmarks
 * SYNOPSIS
 *	qload handshake [-n TOTAL] [-c INFLIGHT] [-t SECONDS] [--resume] URL
 *	qload serial [-n REQUESTS] [-t SECONDS] URL
 *	qload hold [-n CONNECTIONS] [-c INFLIGHT] [-t SECONDS] URL
 * DESCRIPTION
 *	One thread, one epoll loop, ngtcp2 + nghttp3 over wolfSSL.
 *
 *	handshake: every request gets a new QUIC connection on its own
 *	connected UDP socket (fresh ephemeral port): full handshake, one GET,
 *	the whole response, one CONNECTION_CLOSE, socket closed. INFLIGHT
 *	connections are kept in flight until TOTAL finished or SECONDS passed.
 *	With --resume the first connection alone does a full handshake and
 *	keeps the TLS session of its NewSessionTicket (wolfSSL new-session
 *	callback); every later connection offers it (PSK, no 0-RTT) and
 *	wolfSSL_session_reused() says whether the server took it.
 *
 *	serial: one connection, REQUESTS GETs one after another; a request's
 *	latency runs from submitting its HEADERS to the end of its body.
 *
 *	hold: CONNECTIONS connections, each on its own connected UDP socket
 *	(so RLIMIT_NOFILE is raised to CONNECTIONS + 64, up to the hard
 *	limit), opened as in handshake mode with at most INFLIGHT not yet
 *	established; each makes one GET and, once its response is complete,
 *	is held: no request, no PING, no keep-alive, only what ngtcp2 answers
 *	to the server (ACKs). When every connection is held, "qload: holding
 *	N connections" goes to stderr; at SECONDS (counted from the start)
 *	all are closed with CONNECTION_CLOSE(H3_NO_ERROR) and counted done.
 *	A held connection the server closes (or lets time out) fails, so
 *	SECONDS must stay below the idle timeouts (ours is 30 s).
 *
 *	Ownership: the run owns the WOLFSSL_CTX, the resumption session, the
 *	connection pool (INFLIGHT slots, CONNECTIONS in hold mode, allocated
 *	once), the timer heap and
 *	the two packet buffers (used only inside one read or write call). A
 *	live slot owns its socket, ngtcp2_conn, nghttp3_conn and WOLFSSL and
 *	is always in the timer heap; conn_release() frees all four. Library
 *	callbacks only record state in the slot; the loop acts on it after
 *	ngtcp2_conn_read_pkt / handle_expiry return (never re-entrantly).
 * DIAGNOSTICS
 *	One key=value line on stdout at the end. Connection and request
 *	errors go to stderr (the first 10, then a count). Exit 0 only when
 *	done > 0 and failed == 0; 1 otherwise; 2 for usage errors.
 * SEE ALSO
 *	ngtcp2 examples/client.cc; doc/ngtcp2-server notes (quicd).
 */

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* libraries */
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#include <nghttp3/nghttp3.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/quic.h>

#define QL_SEC_NS 1000000000ull
#define QL_CONN_TIMEOUT_NS (5 * QL_SEC_NS) /* per connection / request */
#define QL_TICKET_WAIT_NS QL_SEC_NS        /* first --resume conn waits this long */
#define QL_IDLE_TIMEOUT_NS (30 * QL_SEC_NS)
#define QL_RX_BUF_SIZE 65536 /* one GRO batch */
#define QL_RX_BATCH 64       /* datagrams read per readiness event */
#define QL_EVENTS 64
#define QL_ERR_SHOW 10
#define QL_NO_TIMER SIZE_MAX
#define QL_HOST_LEN 256

enum ql_mode { QL_MODE_HANDSHAKE, QL_MODE_SERIAL, QL_MODE_HOLD };

struct ql_opts {
    enum ql_mode mode;
    uint64_t total_count; /* connections (handshake, hold) or requests (serial) */
    size_t inflight_max;  /* handshake: live connections; hold: not yet held ones */
    double limit_s;       /* hard stop */
    bool is_resume;
    char host[QL_HOST_LEN]; /* without brackets */
    char port[8];
    char authority[QL_HOST_LEN + 10];
    char path[4096];
    bool has_sni; /* host is a name, not an address literal */
};

/* Latencies in ns; grows by doubling on the control path, not per packet. */
struct ql_lat {
    uint64_t *v;
    size_t len;
    size_t cap;
};

struct ql_run;

struct ql_conn {
    struct ql_run *run;
    uint64_t id;
    int fd;
    ngtcp2_conn *qc;
    nghttp3_conn *h3;
    WOLFSSL *ssl;
    ngtcp2_crypto_conn_ref conn_ref;
    struct sockaddr_storage local;
    ngtcp2_path path; /* local = |local|, remote = the run's server address */
    ngtcp2_ccerr ccerr;
    size_t heap_idx;
    uint64_t expiry_ns;   /* heap key */
    uint64_t open_ns;     /* socket() */
    uint64_t deadline_ns; /* 5 s limit of the handshake / current request */
    uint64_t ticket_deadline_ns;
    uint64_t req_ns;      /* HEADERS submitted */
    uint64_t resp_end_ns; /* end of body */
    int64_t stream_id;    /* current request, -1 if none */
    int status;
    bool is_want_req;
    bool is_resp_done;
    bool is_stream_failed;
    bool is_resumed;
    bool is_ticket_wait;
    bool is_peer_closed;
    bool is_no_close; /* send no CONNECTION_CLOSE (idle close, draining, ...) */
    bool is_held;     /* hold mode: response complete, now idle */
    char err[192];
};

struct ql_run {
    struct ql_opts opt;
    struct sockaddr_storage remote;
    socklen_t remote_len;
    WOLFSSL_CTX *ssl_ctx;
    WOLFSSL_SESSION *session; /* --resume: taken from the first connection */
    bool is_ticket_given_up;
    int epfd;
    struct ql_conn *pool;
    struct ql_conn **free_list;
    size_t free_count;
    struct ql_conn **heap;
    size_t heap_len;
    size_t inflight_count; /* live connections */
    size_t held_count;     /* hold mode: live connections that are held */
    size_t held_max;
    uint64_t hold_ns; /* hold mode: when every connection was held, 0 before */
    uint64_t seq;
    uint64_t started_count; /* connections opened / requests submitted */
    uint64_t done_count;
    uint64_t failed_count;
    uint64_t resumed_count;
    uint64_t aborted_count;
    uint64_t tx_drop_count;
    uint64_t err_shown_count;
    uint64_t err_suppressed_count;
    struct ql_lat lat;
    uint64_t rng[4];
    uint8_t *rxbuf;
    uint8_t *txbuf;
    nghttp3_nv nva[5];
};

static volatile sig_atomic_t got_signal;

/* now_ns - monotonic clock in ns, the clock ngtcp2 is driven with */
static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * QL_SEC_NS + (uint64_t)ts.tv_nsec;
}

/* die - print a startup error and exit 1 */
static void die(const char *fmt, ...)
{
    va_list ap;

    fputs("qload: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* xcalloc - calloc that dies on OOM (startup and control path only) */
static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (p == NULL)
        die("out of memory");
    return p;
}

/*
 * rng_next - xoshiro256**. Connection IDs, stateless-reset tokens and
 * ngtcp2's rand callback need no cryptographic strength in a load client,
 * and a getrandom() per CID would be measurable at 1000+ connections/s.
 * The state is seeded from getrandom() once.
 */
static uint64_t rng_next(struct ql_run *r)
{
    uint64_t *s = r->rng;
    uint64_t v = s[1] * 5;
    uint64_t res = ((v << 7) | (v >> 57)) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* rng_fill - |len| pseudo-random bytes into |dest| */
static void rng_fill(struct ql_run *r, uint8_t *dest, size_t len)
{
    while (len > 0) {
        uint64_t v = rng_next(r);
        size_t n = len < sizeof(v) ? len : sizeof(v);

        memcpy(dest, &v, n);
        dest += n;
        len -= n;
    }
}

/* lat_push - record one latency */
static void lat_push(struct ql_lat *l, uint64_t ns)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        uint64_t *v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL)
            die("out of memory");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->len++] = ns;
}

/* cmp_u64 - qsort order for latencies */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* lat_ms - nearest-rank percentile |p| (0..1] of the sorted samples, in ms */
static double lat_ms(const struct ql_lat *l, double p)
{
    size_t k;

    if (l->len == 0)
        return 0;
    k = (size_t)(p * (double)l->len + 0.999999);
    if (k == 0)
        k = 1;
    if (k > l->len)
        k = l->len;
    return (double)l->v[k - 1] / 1e6;
}

/*
 * Timer heap: a binary min-heap of live connections keyed by expiry_ns
 * (the earlier of ngtcp2_conn_get_expiry and our own deadlines). Every
 * live connection is in it, which is also how the loop finds them at the
 * end of the run.
 */

/* heap_swap - exchange two heap slots and fix their indices */
static void heap_swap(struct ql_run *r, size_t a, size_t b)
{
    struct ql_conn *t = r->heap[a];

    r->heap[a] = r->heap[b];
    r->heap[b] = t;
    r->heap[a]->heap_idx = a;
    r->heap[b]->heap_idx = b;
}

/* heap_up - restore heap order upwards from |i| */
static void heap_up(struct ql_run *r, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;

        if (r->heap[p]->expiry_ns <= r->heap[i]->expiry_ns)
            break;
        heap_swap(r, i, p);
        i = p;
    }
}

/* heap_down - restore heap order downwards from |i| */
static void heap_down(struct ql_run *r, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;

        if (l < r->heap_len && r->heap[l]->expiry_ns < r->heap[m]->expiry_ns)
            m = l;
        if (l + 1 < r->heap_len && r->heap[l + 1]->expiry_ns < r->heap[m]->expiry_ns)
            m = l + 1;
        if (m == i)
            break;
        heap_swap(r, i, m);
        i = m;
    }
}

/* timer_set - (re)arm |c| to fire at |ts| */
static void timer_set(struct ql_conn *c, uint64_t ts)
{
    struct ql_run *r = c->run;

    c->expiry_ns = ts;
    if (c->heap_idx == QL_NO_TIMER) {
        c->heap_idx = r->heap_len;
        r->heap[r->heap_len++] = c;
    }
    heap_up(r, c->heap_idx);
    heap_down(r, c->heap_idx);
}

/* timer_del - disarm |c| */
static void timer_del(struct ql_conn *c)
{
    struct ql_run *r = c->run;
    size_t i = c->heap_idx;

    if (i == QL_NO_TIMER)
        return;
    c->heap_idx = QL_NO_TIMER;
    if (i != --r->heap_len) {
        r->heap[i] = r->heap[r->heap_len];
        r->heap[i]->heap_idx = i;
        heap_up(r, i);
        heap_down(r, r->heap[i]->heap_idx);
    }
}

/* conn_err - remember the first error message of |c| */
static void conn_err(struct ql_conn *c, const char *fmt, ...)
{
    va_list ap;

    if (c->err[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

/* run_warn - one rate-limited error line on stderr */
static void run_warn(struct ql_run *r, const char *fmt, ...)
{
    va_list ap;

    if (r->err_shown_count >= QL_ERR_SHOW) {
        r->err_suppressed_count++;
        return;
    }
    r->err_shown_count++;
    fputs("qload: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* conn_h3_error - record an nghttp3 failure as an H3 application close */
static int conn_h3_error(struct ql_conn *c, const char *what, int rv)
{
    ngtcp2_ccerr_set_application_error(&c->ccerr, nghttp3_err_infer_quic_app_error_code(rv), NULL,
                                       0);
    conn_err(c, "%s: %s", what, nghttp3_strerror(rv));
    return -1;
}

/* conn_send - send one datagram on the connected socket */
static int conn_send(struct ql_conn *c, const uint8_t *data, size_t len)
{
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

    for (;;) {
        if (sendmsg(c->fd, &mh, 0) >= 0)
            return 0;
        if (errno != EINTR)
            break;
    }
    switch (errno) {
    case EAGAIN:
#if EAGAIN != EWOULDBLOCK
    case EWOULDBLOCK:
#endif
    case ENOBUFS:
        /* Counted and left to QUIC loss recovery, as for a lost packet. */
        c->run->tx_drop_count++;
        return 0;
    case ECONNREFUSED:
        c->is_no_close = true;
        conn_err(c, "connection refused (ICMP port unreachable: no server on that port?)");
        return -1;
    default:
        c->is_no_close = true;
        conn_err(c, "sendmsg: %s", strerror(errno));
        return -1;
    }
}

/* conn_close_pkt - send one CONNECTION_CLOSE carrying c->ccerr, if allowed */
static void conn_close_pkt(struct ql_conn *c)
{
    struct ql_run *r = c->run;
    ngtcp2_ssize n;

    if (c->qc == NULL || c->is_no_close || ngtcp2_conn_in_closing_period(c->qc) ||
        ngtcp2_conn_in_draining_period(c->qc))
        return;
    n = ngtcp2_conn_write_connection_close(c->qc, NULL, NULL, r->txbuf, NGTCP2_MAX_UDP_PAYLOAD_SIZE,
                                           &c->ccerr, now_ns());
    if (n > 0)
        (void)conn_send(c, r->txbuf, (size_t)n);
}

/* conn_release - free everything |c| owns and return the slot */
static void conn_release(struct ql_conn *c)
{
    struct ql_run *r = c->run;

    timer_del(c);
    nghttp3_conn_del(c->h3);
    if (c->qc != NULL)
        ngtcp2_conn_del(c->qc);
    if (c->ssl != NULL)
        wolfSSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    c->h3 = NULL;
    c->qc = NULL;
    c->ssl = NULL;
    c->fd = -1;
    if (c->is_held)
        r->held_count--;
    c->is_held = false;
    r->free_list[r->free_count++] = c;
    r->inflight_count--;
}

/* conn_close - orderly end: CONNECTION_CLOSE(H3_NO_ERROR), then release */
static void conn_close(struct ql_conn *c)
{
    ngtcp2_ccerr_set_application_error(&c->ccerr, NGHTTP3_H3_NO_ERROR, NULL, 0);
    conn_close_pkt(c);
    conn_release(c);
}

/* conn_fail - count |c| as failed, log why, close it with its error code */
static void conn_fail(struct ql_conn *c, const char *fmt, ...)
{
    struct ql_run *r = c->run;
    va_list ap;

    if (fmt != NULL && c->err[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof(c->err), fmt, ap);
        va_end(ap);
    }
    r->failed_count++;
    if (r->opt.mode != QL_MODE_SERIAL)
        run_warn(r, "connection %" PRIu64 "%s: %s", c->id, c->is_held ? " (held)" : "",
                 c->err[0] ? c->err : "unknown error");
    else
        run_warn(r, "request %" PRIu64 ": %s", r->started_count,
                 c->err[0] ? c->err : "unknown error");
    conn_close_pkt(c);
    conn_release(c);
}

/*
 * nghttp3 callbacks. conn_user_data is the ql_conn. They only account
 * flow-control credit and record the response state.
 */

/* h3_consume - give back flow-control credit for |n| consumed bytes */
static void h3_consume(struct ql_conn *c, int64_t stream_id, size_t n)
{
    ngtcp2_conn_extend_max_stream_offset(c->qc, stream_id, n);
    ngtcp2_conn_extend_max_offset(c->qc, n);
}

/* h3_recv_data - response body bytes: discard, return their credit */
static int h3_recv_data(nghttp3_conn *h3, int64_t stream_id, const uint8_t *data, size_t len,
                        void *user_data, void *stream_user_data)
{
    (void)h3;
    (void)data;
    (void)stream_user_data;
    h3_consume(user_data, stream_id, len);
    return 0;
}

/* h3_deferred_consume - bytes nghttp3 consumed late */
static int h3_deferred_consume(nghttp3_conn *h3, int64_t stream_id, size_t n, void *user_data,
                               void *stream_user_data)
{
    (void)h3;
    (void)stream_user_data;
    h3_consume(user_data, stream_id, n);
    return 0;
}

/* h3_recv_header - keep :status of the current response */
static int h3_recv_header(nghttp3_conn *h3, int64_t stream_id, int32_t token, nghttp3_rcbuf *name,
                          nghttp3_rcbuf *value, uint8_t flags, void *user_data,
                          void *stream_user_data)
{
    struct ql_conn *c = user_data;
    nghttp3_vec v;
    int status = 0;

    (void)h3;
    (void)name;
    (void)flags;
    (void)stream_user_data;
    if (token != NGHTTP3_QPACK_TOKEN__STATUS || stream_id != c->stream_id)
        return 0;
    v = nghttp3_rcbuf_get_buf(value);
    for (size_t i = 0; i < v.len && i < 3; i++) {
        if (v.base[i] < '0' || v.base[i] > '9')
            return 0;
        status = status * 10 + (v.base[i] - '0');
    }
    c->status = status;
    return 0;
}

/* h3_end_stream - the response is complete: stamp it for the loop */
static int h3_end_stream(nghttp3_conn *h3, int64_t stream_id, void *user_data,
                         void *stream_user_data)
{
    struct ql_conn *c = user_data;

    (void)h3;
    (void)stream_user_data;
    if (stream_id == c->stream_id && !c->is_resp_done) {
        c->resp_end_ns = now_ns();
        c->is_resp_done = true;
    }
    return 0;
}

/* h3_stream_close - a server uni stream closed: allow another */
static int h3_stream_close(nghttp3_conn *h3, int64_t stream_id, uint64_t app_error_code,
                           void *user_data, void *stream_user_data)
{
    struct ql_conn *c = user_data;

    (void)h3;
    (void)app_error_code;
    (void)stream_user_data;
    if (!ngtcp2_is_bidi_stream(stream_id) && !ngtcp2_conn_is_local_stream(c->qc, stream_id))
        ngtcp2_conn_extend_max_streams_uni(c->qc, 1);
    return 0;
}

/* h3_stop_sending - nghttp3 asks to stop reading a stream */
static int h3_stop_sending(nghttp3_conn *h3, int64_t stream_id, uint64_t app_error_code,
                           void *user_data, void *stream_user_data)
{
    struct ql_conn *c = user_data;

    (void)h3;
    (void)stream_user_data;
    if (ngtcp2_conn_shutdown_stream_read(c->qc, 0, stream_id, app_error_code) != 0)
        return NGHTTP3_ERR_CALLBACK_FAILURE;
    return 0;
}

/* h3_reset_stream - nghttp3 asks to reset the sending side of a stream */
static int h3_reset_stream(nghttp3_conn *h3, int64_t stream_id, uint64_t app_error_code,
                           void *user_data, void *stream_user_data)
{
    struct ql_conn *c = user_data;

    (void)h3;
    (void)stream_user_data;
    if (ngtcp2_conn_shutdown_stream_write(c->qc, 0, stream_id, app_error_code) != 0)
        return NGHTTP3_ERR_CALLBACK_FAILURE;
    return 0;
}

static const nghttp3_callbacks h3_callbacks = {
    .stream_close = h3_stream_close,
    .recv_data = h3_recv_data,
    .deferred_consume = h3_deferred_consume,
    .recv_header = h3_recv_header,
    .stop_sending = h3_stop_sending,
    .end_stream = h3_end_stream,
    .reset_stream = h3_reset_stream,
};

/* h3_setup - create the HTTP/3 layer and its three uni streams (1-RTT keys are in) */
static int h3_setup(struct ql_conn *c)
{
    nghttp3_settings settings;
    int64_t ctrl, enc, dec;
    int rv;

    if (ngtcp2_conn_get_streams_uni_left(c->qc) < 3) {
        conn_err(c, "server allows fewer than 3 unidirectional streams");
        return -1;
    }
    /* Defaults: no QPACK dynamic table, so no blocked streams. */
    nghttp3_settings_default(&settings);
    rv = nghttp3_conn_client_new(&c->h3, &h3_callbacks, &settings, nghttp3_mem_default(), c);
    if (rv != 0)
        return conn_h3_error(c, "nghttp3_conn_client_new", rv);
    if ((rv = ngtcp2_conn_open_uni_stream(c->qc, &ctrl, NULL)) != 0 ||
        (rv = ngtcp2_conn_open_uni_stream(c->qc, &enc, NULL)) != 0 ||
        (rv = ngtcp2_conn_open_uni_stream(c->qc, &dec, NULL)) != 0) {
        conn_err(c, "ngtcp2_conn_open_uni_stream: %s", ngtcp2_strerror(rv));
        return -1;
    }
    if ((rv = nghttp3_conn_bind_control_stream(c->h3, ctrl)) != 0)
        return conn_h3_error(c, "nghttp3_conn_bind_control_stream", rv);
    if ((rv = nghttp3_conn_bind_qpack_streams(c->h3, enc, dec)) != 0)
        return conn_h3_error(c, "nghttp3_conn_bind_qpack_streams", rv);
    return 0;
}

/*
 * ngtcp2 callbacks. user_data is the ql_conn.
 */

/* cb_get_conn - ngtcp2_crypto_conn_ref hook: TLS object -> ngtcp2_conn */
static ngtcp2_conn *cb_get_conn(ngtcp2_crypto_conn_ref *ref)
{
    struct ql_conn *c = ref->user_data;

    return c->qc;
}

/* cb_rand - ngtcp2's non-cryptographic randomness */
static void cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    rng_fill(ctx->native_handle, dest, len);
}

/* cb_new_cid - a CID we offer the server, with a (random) reset token */
static int cb_new_cid(ngtcp2_conn *qc, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                      void *user_data)
{
    struct ql_conn *c = user_data;

    (void)qc;
    rng_fill(c->run, cid->data, cidlen);
    cid->datalen = cidlen;
    rng_fill(c->run, token, NGTCP2_STATELESS_RESET_TOKENLEN);
    return 0;
}

/* cb_handshake_completed - note whether the server accepted our PSK */
static int cb_handshake_completed(ngtcp2_conn *qc, void *user_data)
{
    struct ql_conn *c = user_data;

    (void)qc;
    c->is_resumed = wolfSSL_session_reused(c->ssl) == 1;
    return 0;
}

/* cb_recv_rx_key - 1-RTT read key installed: HTTP/3 can start */
static int cb_recv_rx_key(ngtcp2_conn *qc, ngtcp2_encryption_level level, void *user_data)
{
    struct ql_conn *c = user_data;

    (void)qc;
    if (level != NGTCP2_ENCRYPTION_LEVEL_1RTT || c->h3 != NULL)
        return 0;
    return h3_setup(c) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

/* cb_recv_stream_data - STREAM data to nghttp3; credit for non-DATA bytes */
static int cb_recv_stream_data(ngtcp2_conn *qc, uint32_t flags, int64_t stream_id, uint64_t offset,
                               const uint8_t *data, size_t len, void *user_data,
                               void *stream_user_data)
{
    struct ql_conn *c = user_data;
    nghttp3_ssize n;

    (void)qc;
    (void)offset;
    (void)stream_user_data;
    if (c->h3 == NULL)
        return 0;
    n = nghttp3_conn_read_stream(c->h3, stream_id, data, len, flags & NGTCP2_STREAM_DATA_FLAG_FIN);
    if (n < 0) {
        conn_h3_error(c, "nghttp3_conn_read_stream", (int)n);
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    h3_consume(c, stream_id, (size_t)n);
    return 0;
}

/* cb_acked_stream_data_offset - let nghttp3 free acknowledged bytes */
static int cb_acked_stream_data_offset(ngtcp2_conn *qc, int64_t stream_id, uint64_t offset,
                                       uint64_t len, void *user_data, void *stream_user_data)
{
    struct ql_conn *c = user_data;
    int rv;

    (void)qc;
    (void)offset;
    (void)stream_user_data;
    if (c->h3 == NULL)
        return 0;
    if ((rv = nghttp3_conn_add_ack_offset(c->h3, stream_id, len)) != 0) {
        conn_h3_error(c, "nghttp3_conn_add_ack_offset", rv);
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

/* cb_stream_close - a stream is gone; the current request without its end failed */
static int cb_stream_close(ngtcp2_conn *qc, uint32_t flags, int64_t stream_id,
                           uint64_t app_error_code, void *user_data, void *stream_user_data)
{
    struct ql_conn *c = user_data;
    int rv;

    (void)qc;
    (void)stream_user_data;
    if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET))
        app_error_code = NGHTTP3_H3_NO_ERROR;
    if (stream_id == c->stream_id && !c->is_resp_done) {
        c->is_stream_failed = true;
        snprintf(c->err, sizeof(c->err),
                 "stream closed before the response ended (code 0x%" PRIx64 ")", app_error_code);
    }
    if (c->h3 == NULL)
        return 0;
    rv = nghttp3_conn_close_stream(c->h3, stream_id, app_error_code);
    if (rv == NGHTTP3_ERR_STREAM_NOT_FOUND) {
        if (!ngtcp2_is_bidi_stream(stream_id) && !ngtcp2_conn_is_local_stream(c->qc, stream_id))
            ngtcp2_conn_extend_max_streams_uni(c->qc, 1);
    } else if (rv != 0) {
        conn_h3_error(c, "nghttp3_conn_close_stream", rv);
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

/* cb_stream_reset - the server reset (or stopped) one of our streams */
static int cb_stream_reset(ngtcp2_conn *qc, int64_t stream_id, uint64_t final_size,
                           uint64_t app_error_code, void *user_data, void *stream_user_data)
{
    struct ql_conn *c = user_data;

    (void)qc;
    (void)final_size;
    (void)app_error_code;
    (void)stream_user_data;
    if (c->h3 != NULL && nghttp3_conn_shutdown_stream_read(c->h3, stream_id) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

/* cb_stream_stop_sending - our read side of the stream ended before its
 * end (ngtcp2 calls it for our own STOP_SENDING, not the server's) */
static int cb_stream_stop_sending(ngtcp2_conn *qc, int64_t stream_id, uint64_t app_error_code,
                                  void *user_data, void *stream_user_data)
{
    return cb_stream_reset(qc, stream_id, 0, app_error_code, user_data, stream_user_data);
}

/* cb_extend_max_stream_data - the server raised a stream window */
static int cb_extend_max_stream_data(ngtcp2_conn *qc, int64_t stream_id, uint64_t max_data,
                                     void *user_data, void *stream_user_data)
{
    struct ql_conn *c = user_data;

    (void)qc;
    (void)max_data;
    (void)stream_user_data;
    if (c->h3 != NULL && nghttp3_conn_unblock_stream(c->h3, stream_id) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static const ngtcp2_callbacks qc_callbacks = {
    .client_initial = ngtcp2_crypto_client_initial_cb,
    .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
    .handshake_completed = cb_handshake_completed,
    .encrypt = ngtcp2_crypto_encrypt_cb,
    .decrypt = ngtcp2_crypto_decrypt_cb,
    .hp_mask = ngtcp2_crypto_hp_mask_cb,
    .recv_stream_data = cb_recv_stream_data,
    .acked_stream_data_offset = cb_acked_stream_data_offset,
    .stream_close = cb_stream_close,
    .recv_retry = ngtcp2_crypto_recv_retry_cb,
    .rand = cb_rand,
    .get_new_connection_id = cb_new_cid,
    .update_key = ngtcp2_crypto_update_key_cb,
    .stream_reset = cb_stream_reset,
    .extend_max_stream_data = cb_extend_max_stream_data,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .stream_stop_sending = cb_stream_stop_sending,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
    .recv_rx_key = cb_recv_rx_key,
};

/*
 * tls_new_session - wolfSSL parsed a NewSessionTicket. Keep the first
 * session for --resume; returning 1 keeps the reference wolfSSL took for
 * us (wolfSSL AddSession: up_ref before the call, free if we return 0).
 */
static int tls_new_session(WOLFSSL *ssl, WOLFSSL_SESSION *sess)
{
    ngtcp2_crypto_conn_ref *ref = wolfSSL_get_app_data(ssl);
    struct ql_conn *c = ref->user_data;

    if (c->run->session != NULL)
        return 0;
    c->run->session = sess;
    return 1;
}

/* tls_init - the one client context every connection shares */
static void tls_init(struct ql_run *r)
{
    static const char groups[] = "X25519:P-256:P-384:P-521";

    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        die("wolfSSL_Init failed");
    r->ssl_ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    if (r->ssl_ctx == NULL)
        die("wolfSSL_CTX_new: %s", wolfSSL_ERR_error_string(wolfSSL_ERR_get_error(), NULL));
    if (ngtcp2_crypto_wolfssl_configure_client_context(r->ssl_ctx) != 0)
        die("ngtcp2_crypto_wolfssl_configure_client_context failed");
    /* A load generator does not authenticate test servers. */
    wolfSSL_CTX_set_verify(r->ssl_ctx, WOLFSSL_VERIFY_NONE, NULL);
    if (wolfSSL_CTX_set1_curves_list(r->ssl_ctx, groups) != WOLFSSL_SUCCESS)
        die("wolfSSL_CTX_set1_curves_list(%s) failed", groups);
    if (r->opt.is_resume) {
        /* Tickets reach us through the callback only; no internal cache. */
        wolfSSL_CTX_set_session_cache_mode(r->ssl_ctx, WOLFSSL_SESS_CACHE_CLIENT |
                                                           WOLFSSL_SESS_CACHE_NO_INTERNAL);
        wolfSSL_CTX_sess_set_new_cb(r->ssl_ctx, tls_new_session);
    } else {
        wolfSSL_CTX_set_session_cache_mode(r->ssl_ctx, WOLFSSL_SESS_CACHE_OFF);
    }
}

/* tls_session_new - the WOLFSSL of one connection */
static int tls_session_new(struct ql_conn *c)
{
    static char alpn[] = "h3";
    struct ql_run *r = c->run;

    c->ssl = wolfSSL_new(r->ssl_ctx);
    if (c->ssl == NULL) {
        conn_err(c, "wolfSSL_new: %s", wolfSSL_ERR_error_string(wolfSSL_ERR_get_error(), NULL));
        return -1;
    }
    wolfSSL_set_app_data(c->ssl, &c->conn_ref);
    wolfSSL_set_connect_state(c->ssl);
    if (wolfSSL_UseALPN(c->ssl, alpn, sizeof(alpn) - 1, WOLFSSL_ALPN_FAILED_ON_MISMATCH) !=
        WOLFSSL_SUCCESS) {
        conn_err(c, "wolfSSL_UseALPN failed");
        return -1;
    }
    /* RFC 6066 3: no SNI for an address literal. */
    if (r->opt.has_sni && wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, r->opt.host,
                                         (unsigned short)strlen(r->opt.host)) != WOLFSSL_SUCCESS) {
        conn_err(c, "wolfSSL_UseSNI failed");
        return -1;
    }
    /* 0x39: the QUIC v1 transport-parameters extension (TLSX_KEY_QUIC_TP_PARAMS). */
    wolfSSL_set_quic_transport_version(c->ssl, 0x39);
    if (r->session != NULL && wolfSSL_set_session(c->ssl, r->session) != WOLFSSL_SUCCESS) {
        conn_err(c, "wolfSSL_set_session failed");
        return -1;
    }
    return 0;
}

/* conn_write - let ngtcp2/nghttp3 fill datagrams and send them, one sendmsg each */
static int conn_write(struct ql_conn *c, uint64_t now)
{
    struct ql_run *r = c->run;
    size_t maxlen = ngtcp2_conn_get_max_tx_udp_payload_size(c->qc);
    size_t pathmax = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->qc);
    size_t quantum = ngtcp2_conn_get_send_quantum(c->qc);
    size_t sent = 0;
    nghttp3_vec vec[16];
    int rv;

    if (quantum < pathmax)
        quantum = pathmax;
    for (;;) {
        int64_t sid = -1;
        int fin = 0;
        nghttp3_ssize nvec = 0;
        ngtcp2_ssize nw, ndatalen;
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;

        if (c->h3 != NULL && ngtcp2_conn_get_max_data_left(c->qc) > 0) {
            nvec = nghttp3_conn_writev_stream(c->h3, &sid, &fin, vec, 16);
            if (nvec < 0)
                return conn_h3_error(c, "nghttp3_conn_writev_stream", (int)nvec);
        }
        if (fin)
            flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        nw = ngtcp2_conn_writev_stream(c->qc, NULL, NULL, r->txbuf, maxlen, &ndatalen, flags, sid,
                                       (const ngtcp2_vec *)vec, (size_t)nvec, now);
        if (nw < 0) {
            switch (nw) {
            case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                nghttp3_conn_block_stream(c->h3, sid);
                continue;
            case NGTCP2_ERR_STREAM_SHUT_WR:
                nghttp3_conn_shutdown_stream_write(c->h3, sid);
                continue;
            case NGTCP2_ERR_WRITE_MORE:
                if ((rv = nghttp3_conn_add_write_offset(c->h3, sid, (size_t)ndatalen)) != 0)
                    return conn_h3_error(c, "nghttp3_conn_add_write_offset", rv);
                continue;
            }
            ngtcp2_ccerr_set_liberr(&c->ccerr, (int)nw, NULL, 0);
            conn_err(c, "ngtcp2_conn_writev_stream: %s", ngtcp2_strerror((int)nw));
            return -1;
        }
        if (ndatalen >= 0 && (rv = nghttp3_conn_add_write_offset(c->h3, sid, (size_t)ndatalen)))
            return conn_h3_error(c, "nghttp3_conn_add_write_offset", rv);
        if (nw == 0)
            break;
        if (conn_send(c, r->txbuf, (size_t)nw) != 0)
            return -1;
        sent += (size_t)nw;
        if (sent + pathmax > quantum)
            break;
    }
    ngtcp2_conn_update_pkt_tx_time(c->qc, now);
    return 0;
}

/* conn_arm - next wake-up: ngtcp2's timer, our deadline, the ticket wait */
static void conn_arm(struct ql_conn *c)
{
    uint64_t t = ngtcp2_conn_get_expiry(c->qc);

    if (c->deadline_ns < t)
        t = c->deadline_ns;
    if (c->is_ticket_wait && c->ticket_deadline_ns < t)
        t = c->ticket_deadline_ns;
    timer_set(c, t);
}

/* conn_submit - open a request stream and queue GET (HEADERS with FIN) */
static int conn_submit(struct ql_conn *c, uint64_t now)
{
    struct ql_run *r = c->run;
    int64_t sid;
    int rv;

    rv = ngtcp2_conn_open_bidi_stream(c->qc, &sid, NULL);
    if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
        return 0; /* retried after the server's MAX_STREAMS */
    if (rv != 0) {
        conn_err(c, "ngtcp2_conn_open_bidi_stream: %s", ngtcp2_strerror(rv));
        return -1;
    }
    if ((rv = nghttp3_conn_submit_request(c->h3, sid, r->nva, 5, NULL, NULL)) != 0)
        return conn_h3_error(c, "nghttp3_conn_submit_request", rv);
    c->stream_id = sid;
    c->status = 0;
    c->is_want_req = false;
    c->is_resp_done = false;
    c->is_stream_failed = false;
    c->req_ns = now;
    c->deadline_ns = now + QL_CONN_TIMEOUT_NS;
    if (r->opt.mode == QL_MODE_SERIAL)
        r->started_count++;
    return 0;
}

/*
 * conn_finish_handshake_mode - the response is in. With --resume the
 * first connection stays until its ticket arrived (or 1 s passed) so that
 * every later connection can offer it. Returns true if |c| is gone.
 */
static bool conn_finish_handshake_mode(struct ql_conn *c, uint64_t now)
{
    struct ql_run *r = c->run;

    if (c->status < 200 || c->status > 299) {
        conn_fail(c, "HTTP status %d", c->status);
        return true;
    }
    if (r->opt.is_resume && r->session == NULL && !r->is_ticket_given_up && !c->is_peer_closed) {
        if (!c->is_ticket_wait) {
            c->is_ticket_wait = true;
            c->ticket_deadline_ns = now + QL_TICKET_WAIT_NS;
        }
        if (now < c->ticket_deadline_ns)
            return false;
    }
    if (r->opt.is_resume && r->session == NULL && !r->is_ticket_given_up) {
        r->is_ticket_given_up = true;
        fprintf(stderr,
                "qload: no session ticket from the server; continuing without resumption\n");
    }
    r->done_count++;
    if (c->is_resumed)
        r->resumed_count++;
    lat_push(&r->lat, c->resp_end_ns - c->open_ns);
    if (c->is_peer_closed)
        conn_release(c);
    else
        conn_close(c);
    return true;
}

/* conn_finish_serial_mode - count one response, queue the next. True if |c| is gone. */
static bool conn_finish_serial_mode(struct ql_conn *c)
{
    struct ql_run *r = c->run;

    if (c->is_stream_failed) {
        r->failed_count++;
        run_warn(r, "request %" PRIu64 ": %s", r->started_count, c->err);
        c->err[0] = '\0';
    } else if (c->status < 200 || c->status > 299) {
        r->failed_count++;
        run_warn(r, "request %" PRIu64 ": HTTP status %d", r->started_count, c->status);
    } else {
        r->done_count++;
        lat_push(&r->lat, c->resp_end_ns - c->req_ns);
    }
    c->stream_id = -1;
    c->is_resp_done = false;
    c->is_stream_failed = false;
    if (r->started_count < r->opt.total_count) {
        c->is_want_req = true;
        return false;
    }
    if (c->is_peer_closed)
        conn_release(c);
    else
        conn_close(c);
    return true;
}

/*
 * conn_finish_hold_mode - the one response is in: from now on |c| only
 * idles (no deadline of ours; ngtcp2's idle timer still runs). True if
 * |c| is gone.
 */
static bool conn_finish_hold_mode(struct ql_conn *c)
{
    struct ql_run *r = c->run;

    if (c->status < 200 || c->status > 299) {
        conn_fail(c, "HTTP status %d", c->status);
        return true;
    }
    lat_push(&r->lat, c->resp_end_ns - c->open_ns);
    c->stream_id = -1;
    c->is_resp_done = false;
    c->is_held = true;
    c->deadline_ns = UINT64_MAX;
    r->held_count++;
    if (r->held_count > r->held_max)
        r->held_max = r->held_count;
    return false;
}

/* conn_service - act on what a read or timer changed, then write and re-arm */
static void conn_service(struct ql_conn *c, uint64_t now)
{
    struct ql_run *r = c->run;

    if (r->opt.mode == QL_MODE_HANDSHAKE) {
        if (c->is_stream_failed) {
            conn_fail(c, NULL);
            return;
        }
        if (c->is_resp_done && conn_finish_handshake_mode(c, now))
            return;
    } else if (r->opt.mode == QL_MODE_HOLD) {
        if (c->is_stream_failed) {
            conn_fail(c, NULL);
            return;
        }
        if (c->is_resp_done && conn_finish_hold_mode(c))
            return;
    } else if ((c->is_resp_done || c->is_stream_failed) && conn_finish_serial_mode(c)) {
        return;
    }
    if (c->is_peer_closed) {
        conn_fail(c, NULL);
        return;
    }
    if (c->h3 != NULL && c->is_want_req && c->stream_id < 0 && conn_submit(c, now) != 0) {
        conn_fail(c, NULL);
        return;
    }
    if (conn_write(c, now) != 0) {
        conn_fail(c, NULL);
        return;
    }
    conn_arm(c);
}

/* conn_read_error - translate an ngtcp2_conn_read_pkt failure */
static int conn_read_error(struct ql_conn *c, int rv)
{
    const ngtcp2_ccerr *pe;

    switch (rv) {
    case NGTCP2_ERR_DRAINING:
        /* The server closed; fine if our response is already complete. */
        c->is_peer_closed = true;
        c->is_no_close = true;
        pe = ngtcp2_conn_get_ccerr(c->qc);
        conn_err(c, "closed by the server: %s error 0x%" PRIx64 " %.*s",
                 pe->type == NGTCP2_CCERR_TYPE_APPLICATION ? "application" : "transport",
                 pe->error_code, (int)pe->reasonlen, (const char *)pe->reason);
        return 0;
    case NGTCP2_ERR_CRYPTO:
        ngtcp2_ccerr_set_tls_alert(&c->ccerr, ngtcp2_conn_get_tls_alert(c->qc), NULL, 0);
        conn_err(c, "TLS handshake failed: alert %u", ngtcp2_conn_get_tls_alert(c->qc));
        return -1;
    case NGTCP2_ERR_DROP_CONN:
        c->is_no_close = true;
        conn_err(c, "ngtcp2_conn_read_pkt: %s", ngtcp2_strerror(rv));
        return -1;
    default:
        if (c->ccerr.error_code == 0)
            ngtcp2_ccerr_set_liberr(&c->ccerr, rv, NULL, 0);
        conn_err(c, "ngtcp2_conn_read_pkt: %s", ngtcp2_strerror(rv));
        return -1;
    }
}

/* gro_size - UDP_GRO segment size of a received batch, 0 if none */
static size_t gro_size(struct msghdr *mh)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
            int v;

            memcpy(&v, CMSG_DATA(cm), sizeof(v));
            return v > 0 ? (size_t)v : 0;
        }
    }
    return 0;
}

/* conn_read - drain the socket into ngtcp2 (bounded per event for fairness) */
static int conn_read(struct ql_conn *c)
{
    struct ql_run *r = c->run;
    ngtcp2_pkt_info pi = {0};
    union {
        struct cmsghdr align;
        uint8_t buf[CMSG_SPACE(sizeof(int))];
    } cbuf;

    for (int i = 0; i < QL_RX_BATCH && !c->is_peer_closed; i++) {
        struct iovec iov = {.iov_base = r->rxbuf, .iov_len = QL_RX_BUF_SIZE};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf.buf,
                            .msg_controllen = sizeof(cbuf)};
        ssize_t n = recvmsg(c->fd, &mh, 0);
        size_t seg, off;
        uint64_t now;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            c->is_no_close = true;
            if (errno == ECONNREFUSED)
                conn_err(c, "connection refused (ICMP port unreachable: no server on that port?)");
            else
                conn_err(c, "recvmsg: %s", strerror(errno));
            return -1;
        }
        seg = gro_size(&mh);
        if (seg == 0)
            seg = (size_t)n;
        now = now_ns();
        for (off = 0; off < (size_t)n && !c->is_peer_closed; off += seg) {
            size_t len = (size_t)n - off < seg ? (size_t)n - off : seg;
            int rv = ngtcp2_conn_read_pkt(c->qc, &c->path, &pi, r->rxbuf + off, len, now);

            if (rv != 0 && conn_read_error(c, rv) != 0)
                return -1;
        }
    }
    return 0;
}

/* conn_on_timer - a deadline or ngtcp2's loss/ack/idle timer fired */
static void conn_on_timer(struct ql_conn *c, uint64_t now)
{
    int rv;

    if (now >= c->deadline_ns) {
        conn_fail(c, "timeout: no %s within %llu s", c->h3 == NULL ? "handshake" : "response",
                  (unsigned long long)(QL_CONN_TIMEOUT_NS / QL_SEC_NS));
        return;
    }
    if (ngtcp2_conn_get_expiry(c->qc) <= now) {
        rv = ngtcp2_conn_handle_expiry(c->qc, now);
        if (rv != 0) {
            if (rv == NGTCP2_ERR_IDLE_CLOSE)
                c->is_no_close = true;
            else
                ngtcp2_ccerr_set_liberr(&c->ccerr, rv, NULL, 0);
            conn_fail(c, "ngtcp2_conn_handle_expiry: %s", ngtcp2_strerror(rv));
            return;
        }
    }
    conn_service(c, now);
}

/* conn_open - new socket, new QUIC connection, first flight sent */
static void conn_open(struct ql_run *r)
{
    struct ql_conn *c = r->free_list[--r->free_count];
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    ngtcp2_cid dcid, scid;
    struct epoll_event ev = {.events = EPOLLIN};
    socklen_t len = sizeof(c->local);
    int one = 1, rv;

    memset(c, 0, sizeof(*c));
    c->run = r;
    c->id = ++r->seq;
    c->fd = -1;
    c->heap_idx = QL_NO_TIMER;
    c->stream_id = -1;
    c->is_want_req = true;
    c->conn_ref.get_conn = cb_get_conn;
    c->conn_ref.user_data = c;
    ngtcp2_ccerr_default(&c->ccerr);
    r->inflight_count++;
    c->open_ns = now_ns();
    c->deadline_ns = c->open_ns + QL_CONN_TIMEOUT_NS;

    c->fd = socket(r->remote.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (c->fd < 0) {
        conn_fail(c, "socket: %s", strerror(errno));
        return;
    }
    (void)setsockopt(c->fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&r->remote, r->remote_len) != 0 ||
        getsockname(c->fd, (struct sockaddr *)&c->local, &len) != 0) {
        conn_fail(c, "connect: %s", strerror(errno));
        return;
    }
    ev.data.ptr = c;
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_fail(c, "epoll_ctl: %s", strerror(errno));
        return;
    }
    c->path.local.addr = (ngtcp2_sockaddr *)&c->local;
    c->path.local.addrlen = len;
    c->path.remote.addr = (ngtcp2_sockaddr *)&r->remote;
    c->path.remote.addrlen = r->remote_len;

    dcid.datalen = 18;
    rng_fill(r, dcid.data, dcid.datalen);
    scid.datalen = 17;
    rng_fill(r, scid.data, scid.datalen);

    ngtcp2_settings_default(&settings);
    settings.initial_ts = c->open_ns;
    settings.rand_ctx.native_handle = r;
    settings.no_pmtud = 1; /* no probe packets: they cost both ends CPU */

    ngtcp2_transport_params_default(&params);
    params.initial_max_stream_data_bidi_local = 16 * 1024 * 1024;
    params.initial_max_stream_data_uni = 1024 * 1024;
    params.initial_max_data = 32 * 1024 * 1024;
    params.initial_max_streams_uni = 3;
    params.max_idle_timeout = QL_IDLE_TIMEOUT_NS;

    rv = ngtcp2_conn_client_new(&c->qc, &dcid, &scid, &c->path, NGTCP2_PROTO_VER_V1, &qc_callbacks,
                                &settings, &params, NULL, c);
    if (rv != 0) {
        c->qc = NULL;
        conn_fail(c, "ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
        return;
    }
    if (tls_session_new(c) != 0) {
        c->is_no_close = true;
        conn_fail(c, NULL);
        return;
    }
    ngtcp2_conn_set_tls_native_handle(c->qc, c->ssl);
    if (conn_write(c, now_ns()) != 0) {
        conn_fail(c, NULL);
        return;
    }
    conn_arm(c);
}

/*
 * launch - keep INFLIGHT connections going (hold mode: INFLIGHT not yet
 * held); --resume starts alone until a ticket
 */
static void launch(struct ql_run *r)
{
    while (r->inflight_count - r->held_count < r->opt.inflight_max &&
           r->started_count < r->opt.total_count) {
        if (r->opt.is_resume && r->session == NULL && !r->is_ticket_given_up &&
            r->inflight_count > 0)
            break;
        r->started_count++;
        conn_open(r);
    }
}

/* wait_events - epoll with ns precision until |deadline| */
static int wait_events(struct ql_run *r, struct epoll_event *ev, uint64_t deadline, uint64_t now)
{
    uint64_t d = deadline > now ? deadline - now : 0;
    struct timespec ts = {.tv_sec = (time_t)(d / QL_SEC_NS), .tv_nsec = (long)(d % QL_SEC_NS)};
    int n = epoll_pwait2(r->epfd, ev, QL_EVENTS, &ts, NULL);

    if (n < 0 && errno == ENOSYS) {
        uint64_t ms = (d + 999999) / 1000000;

        n = epoll_wait(r->epfd, ev, QL_EVENTS, ms > INT_MAX ? INT_MAX : (int)ms);
    }
    return n;
}

/* run_loop - the event loop; returns when the work is done or time is up */
static void run_loop(struct ql_run *r, uint64_t end_ns)
{
    struct epoll_event ev[QL_EVENTS];

    for (;;) {
        uint64_t now = now_ns(), wake = end_ns;
        int n;

        if (got_signal || now >= end_ns)
            break;
        if (r->opt.mode != QL_MODE_SERIAL)
            launch(r);
        if (r->inflight_count == 0)
            break;
        if (r->opt.mode == QL_MODE_HOLD && r->hold_ns == 0 &&
            r->started_count == r->opt.total_count && r->held_count == r->inflight_count) {
            r->hold_ns = now;
            fprintf(stderr, "qload: holding %zu connections\n", r->held_count);
            fflush(stderr);
        }
        if (r->heap_len > 0 && r->heap[0]->expiry_ns < wake)
            wake = r->heap[0]->expiry_ns;
        n = wait_events(r, ev, wake, now);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            struct ql_conn *c = ev[i].data.ptr;

            if (conn_read(c) != 0)
                conn_fail(c, NULL);
            else
                conn_service(c, now_ns());
        }
        /* Each connection at most once per pass, even if it re-arms in the past. */
        now = now_ns();
        for (size_t budget = r->heap_len; budget > 0 && r->heap_len > 0; budget--) {
            if (r->heap[0]->expiry_ns > now)
                break;
            conn_on_timer(r->heap[0], now);
        }
    }
    /*
     * Hard stop: whatever is still in flight is neither done nor failed;
     * a held connection lasted as long as it should and is done.
     */
    while (r->heap_len > 0) {
        if (r->heap[0]->is_held)
            r->done_count++;
        else
            r->aborted_count++;
        conn_close(r->heap[0]);
    }
}

/* parse_url - https://HOST[:PORT][/path]; HOST may be [v6] */
static int parse_url(struct ql_opts *o, const char *url)
{
    const char *p, *end, *hs, *he, *ps = NULL;
    struct in6_addr a6;
    struct in_addr a4;
    size_t n;

    if (strncasecmp(url, "https://", 8) != 0)
        return -1;
    p = url + 8;
    end = p + strcspn(p, "/?#");
    if (*p == '[') {
        hs = p + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (he == NULL)
            return -1;
        if (he + 1 < end) {
            if (he[1] != ':')
                return -1;
            ps = he + 2;
        }
    } else {
        hs = p;
        he = memchr(hs, ':', (size_t)(end - hs));
        if (he != NULL)
            ps = he + 1;
        else
            he = end;
    }
    n = (size_t)(he - hs);
    if (n == 0 || n >= sizeof(o->host))
        return -1;
    memcpy(o->host, hs, n);
    o->host[n] = '\0';
    if (ps != NULL) {
        n = (size_t)(end - ps);
        if (n == 0 || n >= sizeof(o->port) || strspn(ps, "0123456789") < n)
            return -1;
        memcpy(o->port, ps, n);
        o->port[n] = '\0';
    } else {
        strcpy(o->port, "443");
    }
    n = (size_t)(end - p);
    if (n >= sizeof(o->authority))
        return -1;
    memcpy(o->authority, p, n);
    o->authority[n] = '\0';
    n = strcspn(end, "#");
    if (n + 2 >= sizeof(o->path))
        return -1;
    snprintf(o->path, sizeof(o->path), "%s%.*s", *end == '/' ? "" : "/", (int)n, end);
    o->has_sni = inet_pton(AF_INET, o->host, &a4) != 1 && inet_pton(AF_INET6, o->host, &a6) != 1;
    return 0;
}

/* usage - the command line, to |f| */
static void usage(FILE *f)
{
    fputs("usage: qload handshake [-n TOTAL] [-c INFLIGHT] [-t SECONDS] [--resume] URL\n"
          "       qload serial [-n REQUESTS] [-t SECONDS] URL\n"
          "       qload hold [-n CONNECTIONS] [-c INFLIGHT] [-t SECONDS] URL\n"
          "  handshake  a new QUIC connection per GET; INFLIGHT at a time (default 8)\n"
          "  serial     one connection, one GET after another, per-request latency\n"
          "  hold       N connections (INFLIGHT being set up at a time), one GET each,\n"
          "             then held idle (only ACKs sent) until -t; \"qload: holding N\n"
          "             connections\" on stderr once all are; one socket each (RLIMIT_NOFILE\n"
          "             is raised to N + 64 if the hard limit allows)\n"
          "  -n N       connections / requests (default 1000)\n"
          "  -t S       hard time limit in seconds (default 30); hold: how long to hold\n"
          "             (from the start; keep it below the idle timeouts, 30 s here)\n"
          "  --resume   resume every connection after the first with its TLS ticket\n"
          "  URL        https://HOST[:PORT]/path (HOST: name, IPv4 or [IPv6])\n"
          "Prints one line: mode= done= failed= [resumed=] [held= setup_secs=] aborted= secs=\n"
          "rate= client_cpu= p50_ms= p99_ms= max_ms= (connection time in handshake and hold\n"
          "mode, request latency in serial mode). Exit 0 only if done > 0 and failed = 0\n"
          "(hold: done counts connections held until -t, held the most held at once,\n"
          "setup_secs the time until all were held, -1 if they never were).\n",
          f);
}

/* parse_args - argv to |o|; exits on -h or a usage error */
static void parse_args(struct ql_opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"resume", no_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    char *e;
    int ch;

    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        exit(0);
    }
    if (argc < 2) {
        usage(stderr);
        exit(2);
    }
    if (strcmp(argv[1], "handshake") == 0) {
        o->mode = QL_MODE_HANDSHAKE;
    } else if (strcmp(argv[1], "serial") == 0) {
        o->mode = QL_MODE_SERIAL;
    } else if (strcmp(argv[1], "hold") == 0) {
        o->mode = QL_MODE_HOLD;
    } else {
        fprintf(stderr, "qload: unknown mode '%s'\n", argv[1]);
        usage(stderr);
        exit(2);
    }
    o->total_count = 1000;
    o->inflight_max = 8;
    o->limit_s = 30;
    while ((ch = getopt_long(argc - 1, argv + 1, "n:c:t:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            errno = 0;
            o->total_count = strtoull(optarg, &e, 10);
            if (errno || *e || o->total_count == 0 || optarg[0] == '-') {
                fprintf(stderr, "qload: -n wants a positive integer\n");
                exit(2);
            }
            if (o->mode == QL_MODE_HOLD && o->total_count > 100000) {
                fprintf(stderr, "qload: hold -n wants an integer in 1..100000\n");
                exit(2);
            }
            break;
        case 'c':
            errno = 0;
            o->inflight_max = strtoul(optarg, &e, 10);
            if (errno || *e || o->inflight_max == 0 || o->inflight_max > 100000 ||
                optarg[0] == '-') {
                fprintf(stderr, "qload: -c wants an integer in 1..100000\n");
                exit(2);
            }
            break;
        case 't':
            o->limit_s = strtod(optarg, &e);
            if (*e || !(o->limit_s > 0) || o->limit_s > 86400) {
                fprintf(stderr, "qload: -t wants seconds in (0, 86400]\n");
                exit(2);
            }
            break;
        case 'r':
            o->is_resume = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind + 1 != argc - 1) {
        fprintf(stderr, "qload: exactly one URL expected\n");
        usage(stderr);
        exit(2);
    }
    if (parse_url(o, argv[optind + 1]) != 0) {
        fprintf(stderr, "qload: bad URL '%s' (want https://HOST[:PORT]/path)\n", argv[optind + 1]);
        exit(2);
    }
    if (o->mode == QL_MODE_SERIAL) {
        if (o->is_resume) {
            fprintf(stderr, "qload: --resume applies to handshake mode only\n");
            exit(2);
        }
        o->inflight_max = 1;
    }
    if (o->mode == QL_MODE_HOLD && o->is_resume) {
        fprintf(stderr, "qload: --resume applies to handshake mode only\n");
        exit(2);
    }
    if (o->inflight_max > o->total_count)
        o->inflight_max = (size_t)o->total_count;
}

/* resolve - the server address, once */
static void resolve(struct ql_run *r)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *res;
    int rv = getaddrinfo(r->opt.host, r->opt.port, &hints, &res);

    if (rv != 0)
        die("%s: %s", r->opt.host, gai_strerror(rv));
    memcpy(&r->remote, res->ai_addr, res->ai_addrlen);
    r->remote_len = res->ai_addrlen;
    freeaddrinfo(res);
}

/* make_nv - a header field whose strings outlive the run */
static nghttp3_nv make_nv(const char *name, const char *value)
{
    nghttp3_nv nv = {
        .name = (const uint8_t *)name,
        .value = (const uint8_t *)value,
        .namelen = strlen(name),
        .valuelen = strlen(value),
        .flags = NGHTTP3_NV_FLAG_NO_COPY_NAME | NGHTTP3_NV_FLAG_NO_COPY_VALUE,
    };

    return nv;
}

/* run_init - everything allocated once before the clock starts */
static void run_init(struct ql_run *r)
{
    size_t n = r->opt.mode == QL_MODE_HOLD ? (size_t)r->opt.total_count : r->opt.inflight_max;
    struct rlimit rl;

    if (getrandom(r->rng, sizeof(r->rng), 0) != (ssize_t)sizeof(r->rng))
        die("getrandom: %s", strerror(errno));
    r->rng[0] |= 1;
    /* One descriptor per live connection. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n + 64) {
        rl.rlim_cur = rl.rlim_max < n + 64 ? rl.rlim_max : n + 64;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < n + 16)
            die("%s %zu needs more file descriptors than RLIMIT_NOFILE allows (ulimit -Hn)",
                r->opt.mode == QL_MODE_HOLD ? "-n" : "-c", n);
    }
    resolve(r);
    tls_init(r);
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r->epfd < 0)
        die("epoll_create1: %s", strerror(errno));
    r->pool = xcalloc(n, sizeof(*r->pool));
    r->free_list = xcalloc(n, sizeof(*r->free_list));
    r->heap = xcalloc(n, sizeof(*r->heap));
    for (size_t i = 0; i < n; i++)
        r->free_list[r->free_count++] = &r->pool[n - 1 - i];
    r->rxbuf = xcalloc(1, QL_RX_BUF_SIZE);
    r->txbuf =
        xcalloc(1, NGTCP2_MAX_UDP_PAYLOAD_SIZE > 65536 ? NGTCP2_MAX_UDP_PAYLOAD_SIZE : 65536);
    r->lat.cap = r->opt.total_count < 1000000 ? (size_t)r->opt.total_count : 1000000;
    r->lat.v = xcalloc(r->lat.cap, sizeof(*r->lat.v));
    r->nva[0] = make_nv(":method", "GET");
    r->nva[1] = make_nv(":scheme", "https");
    r->nva[2] = make_nv(":authority", r->opt.authority);
    r->nva[3] = make_nv(":path", r->opt.path);
    r->nva[4] = make_nv("user-agent", "qload");
}

/* run_free - release what run_init took */
static void run_free(struct ql_run *r)
{
    if (r->session != NULL)
        wolfSSL_SESSION_free(r->session);
    wolfSSL_CTX_free(r->ssl_ctx);
    wolfSSL_Cleanup();
    close(r->epfd);
    free(r->pool);
    free(r->free_list);
    free(r->heap);
    free(r->rxbuf);
    free(r->txbuf);
    free(r->lat.v);
}

/* cpu_ns - user + system CPU time of this process */
static uint64_t cpu_ns(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * QL_SEC_NS +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000;
}

/* on_signal - SIGINT/SIGTERM: stop and report what was measured */
static void on_signal(int sig)
{
    (void)sig;
    got_signal = 1;
}

int main(int argc, char **argv)
{
    struct ql_run r = {0};
    struct sigaction sa = {.sa_handler = on_signal};
    uint64_t t0, c0, t1, c1;
    double secs;

    parse_args(&r.opt, argc, argv);
    run_init(&r);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    t0 = now_ns();
    c0 = cpu_ns();
    if (r.opt.mode == QL_MODE_SERIAL)
        conn_open(&r);
    run_loop(&r, t0 + (uint64_t)(r.opt.limit_s * 1e9));
    t1 = now_ns();
    c1 = cpu_ns();

    secs = (double)(t1 - t0) / 1e9;
    qsort(r.lat.v, r.lat.len, sizeof(*r.lat.v), cmp_u64);
    if (r.err_suppressed_count > 0)
        fprintf(stderr, "qload: %" PRIu64 " further errors not shown\n", r.err_suppressed_count);
    if (r.tx_drop_count > 0)
        fprintf(stderr, "qload: %" PRIu64 " datagrams dropped on send (socket buffer full)\n",
                r.tx_drop_count);
    if (got_signal)
        fprintf(stderr, "qload: interrupted\n");
    else if (r.aborted_count > 0)
        fprintf(stderr, "qload: time limit of %g s reached\n", r.opt.limit_s);
    printf("mode=%s done=%" PRIu64 " failed=%" PRIu64,
           r.opt.mode == QL_MODE_SERIAL ? "serial"
           : r.opt.mode == QL_MODE_HOLD ? "hold"
                                        : "handshake",
           r.done_count, r.failed_count);
    if (r.opt.mode == QL_MODE_HANDSHAKE)
        printf(" resumed=%" PRIu64, r.resumed_count);
    if (r.opt.mode == QL_MODE_HOLD)
        printf(" held=%zu setup_secs=%.2f", r.held_max,
               r.hold_ns ? (double)(r.hold_ns - t0) / 1e9 : -1.0);
    printf(" aborted=%" PRIu64 " secs=%.2f rate=%.1f client_cpu=%.2f p50_ms=%.3f p99_ms=%.3f"
           " max_ms=%.3f\n",
           r.aborted_count, secs, secs > 0 ? (double)r.done_count / secs : 0.0,
           secs > 0 ? (double)(c1 - c0) / 1e9 / secs : 0.0, lat_ms(&r.lat, 0.50),
           lat_ms(&r.lat, 0.99), lat_ms(&r.lat, 1.0));
    fflush(stdout);
    run_free(&r);
    return r.done_count > 0 && r.failed_count == 0 ? 0 : 1;
}
