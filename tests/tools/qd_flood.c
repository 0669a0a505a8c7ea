/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_flood - a generator of QUIC v1 Initial packets, for flood tests
 * SYNOPSIS
 *	qd_flood [-a addr] -p port [-d seconds] [-n count] [-r pps] [-s sockets]
 *	         [-b batch] [-H] [-S sni] [-i interval]
 * DESCRIPTION
 *	Sends QUIC v1 Initial packets to addr:port (default 127.0.0.1) from
 *	|sockets| UDP sockets bound to ephemeral ports (default 128, so the
 *	server sees that many source addresses), |batch| packets per
 *	sendmmsg, round robin over the sockets, as fast as it can or at
 *	|pps| packets per second, until |seconds| (default 10, at most 120)
 *	have passed or |count| packets are sent. Every packet has a new
 *	random DCID of 8..20 bytes and is padded to 1200 bytes, so a server
 *	has to take each for a new connection.
 *
 *	Without -H the packets carry a valid long header and a random
 *	payload: the header decode (ngtcp2_accept) takes them and the server
 *	reaches its Retry/accept decision, but a connection it makes fails to
 *	decrypt the first packet. With -H each packet is a real client
 *	Initial: a wolfSSL QUIC client's ClientHello (ALPN h3, SNI |sni|,
 *	transport parameters from ngtcp2_transport_params_encode), made once,
 *	in a CRYPTO frame encrypted under the Initial keys of that packet's
 *	DCID (RFC 9001 5.2) with header protection, so a server without
 *	Retry starts a real TLS handshake for each one.
 *
 *	Everything that comes back is read and counted: Retry,
 *	Version Negotiation, other long-header packets (a server's
 *	Initial/Handshake flight, or a CONNECTION_CLOSE) and short-header
 *	packets (stateless resets).
 * DIAGNOSTICS
 *	One line on stdout at the end:
 *	"sent=N elapsed=S rate=PPS retry=N vn=N long=N short=N send_errors=N";
 *	with -i, the same counters every |interval| ms on stderr. Exit 0 when
 *	it sent anything, 1 otherwise, 2 on a usage error.
 */
#include "config.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
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
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/quic.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/hmac.h>

#define PKT_LEN 1200
#define MAX_BATCH 64
#define MAX_SOCKETS 1024
#define MAX_HELLO 1024
#define SCID_LEN 8

static const uint8_t initial_salt_v1[20] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34,
                                            0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                                            0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};

typedef struct counters {
    uint64_t sent, retry, vn, lng, shrt, send_errors;
} counters;

static volatile sig_atomic_t stop_flag;
static uint8_t scid[SCID_LEN];
static uint8_t hello[MAX_HELLO];
static size_t hello_len;

/* now_ns - the monotonic clock */
static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* rnd - xorshift64*, seeded from getrandom: packet contents need no more */
static uint64_t rnd(void)
{
    static uint64_t s;

    if (s == 0 && (getrandom(&s, sizeof(s), 0) != sizeof(s) || s == 0))
        s = now_ns() | 1;
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ULL;
}

static void rnd_bytes(uint8_t *p, size_t len)
{
    while (len > 0) {
        uint64_t v = rnd();
        size_t n = len < 8 ? len : 8;
        memcpy(p, &v, n);
        p += n;
        len -= n;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: qd_flood [-a addr] -p port [-d seconds] [-n count] [-r pps] "
                    "[-s sockets] [-b batch] [-H] [-S sni] [-i interval_ms]\n");
    exit(2);
}

/* --- a real ClientHello (-H) ------------------------------------------------ */

static int set_secrets(WOLFSSL *ssl, WOLFSSL_ENCRYPTION_LEVEL level, const uint8_t *rd,
                       const uint8_t *wr, size_t len)
{
    (void)ssl, (void)level, (void)rd, (void)wr, (void)len;
    return 1;
}

static int add_data(WOLFSSL *ssl, WOLFSSL_ENCRYPTION_LEVEL level, const uint8_t *data, size_t len)
{
    (void)ssl;
    if (level != wolfssl_encryption_initial || hello_len + len > sizeof(hello))
        return 0;
    memcpy(hello + hello_len, data, len);
    hello_len += len;
    return 1;
}

static int flush_flight(WOLFSSL *ssl)
{
    (void)ssl;
    return 1;
}

static int send_alert(WOLFSSL *ssl, WOLFSSL_ENCRYPTION_LEVEL level, uint8_t alert)
{
    (void)ssl, (void)level, (void)alert;
    return 1;
}

static const WOLFSSL_QUIC_METHOD quic_method = {set_secrets, add_data, flush_flight, send_alert};

/* make_hello - a wolfSSL QUIC client's ClientHello, whose transport
 * parameters name |scid| as the initial source connection ID */
static int make_hello(const char *sni)
{
    ngtcp2_transport_params tp;
    uint8_t tpbuf[256];

    ngtcp2_transport_params_default(&tp);
    tp.initial_max_data = 1 << 20;
    tp.initial_max_stream_data_bidi_local = 1 << 18;
    tp.initial_max_stream_data_bidi_remote = 1 << 18;
    tp.initial_max_stream_data_uni = 1 << 18;
    tp.initial_max_streams_bidi = 100;
    tp.initial_max_streams_uni = 3;
    tp.max_idle_timeout = 30 * NGTCP2_SECONDS;
    tp.active_connection_id_limit = 2;
    memcpy(tp.initial_scid.data, scid, SCID_LEN);
    tp.initial_scid.datalen = SCID_LEN;
    tp.initial_scid_present = 1;
    ngtcp2_ssize tplen = ngtcp2_transport_params_encode(tpbuf, sizeof(tpbuf), &tp);
    if (tplen < 0)
        return -1;

    wolfSSL_Init();
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    if (ctx == NULL || wolfSSL_CTX_set_quic_method(ctx, &quic_method) != WOLFSSL_SUCCESS)
        return -1;
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    WOLFSSL *ssl = wolfSSL_new(ctx);
    if (ssl == NULL)
        return -1;
    wolfSSL_set_connect_state(ssl);
    wolfSSL_set_quic_transport_params(ssl, tpbuf, (size_t)tplen);
    wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, sni, (unsigned short)strlen(sni));
    wolfSSL_UseALPN(ssl, (char *)"h3", 2, WOLFSSL_ALPN_FAILED_ON_MISMATCH);
    wolfSSL_quic_do_handshake(ssl); /* stops after the ClientHello: no answer yet */
    wolfSSL_free(ssl);
    wolfSSL_CTX_free(ctx);
    return hello_len > 4 ? 0 : -1;
}

/* expand_label - HKDF-Expand-Label(secret, "tls13 " label, "", len) (RFC 8446 7.1) */
static int expand_label(uint8_t *out, size_t len, const uint8_t *secret, const char *label)
{
    uint8_t info[64];
    size_t ll = strlen(label), n = 0;

    info[n++] = (uint8_t)(len >> 8);
    info[n++] = (uint8_t)len;
    info[n++] = (uint8_t)(6 + ll);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, ll);
    n += ll;
    info[n++] = 0;
    return wc_HKDF_Expand(WC_SHA256, secret, 32, info, (word32)n, out, (word32)len);
}

/*
 * protect - encrypt the Initial in |pkt| (header of |hdrlen| bytes ending
 * with a 4-byte packet number 0, then |ptlen| bytes of plaintext) under
 * the client Initial keys of |dcid|, and apply header protection.
 */
static int protect(uint8_t *pkt, size_t hdrlen, size_t ptlen, const uint8_t *dcid,
                   size_t dcidlen)
{
    uint8_t initial[32], client[32], key[16], iv[12], hp[16], mask[16];
    static Aes gcm, ecb;
    static bool inited;

    if (!inited) {
        if (wc_AesInit(&gcm, NULL, INVALID_DEVID) != 0 || wc_AesInit(&ecb, NULL, INVALID_DEVID) != 0)
            return -1;
        inited = true;
    }
    if (wc_HKDF_Extract(WC_SHA256, initial_salt_v1, sizeof(initial_salt_v1), dcid,
                        (word32)dcidlen, initial) != 0 ||
        expand_label(client, 32, initial, "client in") != 0 ||
        expand_label(key, 16, client, "quic key") != 0 ||
        expand_label(iv, 12, client, "quic iv") != 0 ||
        expand_label(hp, 16, client, "quic hp") != 0)
        return -1;
    /* packet number 0: the nonce is the IV itself */
    if (wc_AesGcmSetKey(&gcm, key, 16) != 0 ||
        wc_AesGcmEncrypt(&gcm, pkt + hdrlen, pkt + hdrlen, (word32)ptlen, iv, 12,
                         pkt + hdrlen + ptlen, 16, pkt, (word32)hdrlen) != 0)
        return -1;
    /* the sample starts 4 bytes after the start of the packet number */
    size_t pn_off = hdrlen - 4;
    if (wc_AesSetKey(&ecb, hp, 16, NULL, AES_ENCRYPTION) != 0 ||
        wc_AesEncryptDirect(&ecb, mask, pkt + pn_off + 4) != 0)
        return -1;
    pkt[0] ^= mask[0] & 0x0f;
    for (int i = 0; i < 4; i++)
        pkt[pn_off + i] ^= mask[1 + i];
    return 0;
}

/* --- packets ---------------------------------------------------------------- */

/* make_initial - one 1200-byte Initial with a fresh random DCID in |pkt| */
static int make_initial(uint8_t *pkt, bool real)
{
    uint8_t dcid[20];
    size_t dcidlen = 8 + (size_t)(rnd() % 13), n = 0;

    rnd_bytes(dcid, dcidlen);
    pkt[n++] = 0xc3; /* long header, fixed bit, Initial, 4-byte packet number */
    pkt[n++] = 0, pkt[n++] = 0, pkt[n++] = 0, pkt[n++] = 1; /* QUIC v1 */
    pkt[n++] = (uint8_t)dcidlen;
    memcpy(pkt + n, dcid, dcidlen);
    n += dcidlen;
    pkt[n++] = SCID_LEN;
    memcpy(pkt + n, scid, SCID_LEN);
    n += SCID_LEN;
    pkt[n++] = 0; /* no token */
    size_t length = PKT_LEN - n - 2; /* packet number and payload, after a 2-byte varint */
    pkt[n++] = (uint8_t)(0x40 | (length >> 8));
    pkt[n++] = (uint8_t)length;
    memset(pkt + n, 0, 4); /* packet number 0 */
    n += 4;
    size_t ptlen = PKT_LEN - n - 16;
    if (!real) {
        rnd_bytes(pkt + n, PKT_LEN - n);
        return 0;
    }
    /* CRYPTO frame at offset 0 with the ClientHello, then PADDING */
    uint8_t *p = pkt + n;
    size_t k = 0;
    p[k++] = 0x06;
    p[k++] = 0;
    p[k++] = (uint8_t)(0x40 | (hello_len >> 8));
    p[k++] = (uint8_t)hello_len;
    memcpy(p + k, hello, hello_len);
    k += hello_len;
    memset(p + k, 0, ptlen - k);
    return protect(pkt, n, ptlen, dcid, dcidlen);
}

/* classify - count one packet that came back */
static void classify(counters *c, const uint8_t *p, size_t len)
{
    if (len < 5)
        return;
    if (!(p[0] & 0x80)) {
        c->shrt++;
        return;
    }
    uint32_t version = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (version == 0)
        c->vn++;
    else if (version == 1 && ((p[0] >> 4) & 3) == 3)
        c->retry++;
    else
        c->lng++;
}

/* drain - read whatever socket |fd| has */
static void drain(int fd, counters *c)
{
    static uint8_t buf[MAX_BATCH][1500];
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH];

    for (;;) {
        memset(msgs, 0, sizeof(msgs));
        for (int i = 0; i < MAX_BATCH; i++) {
            iov[i].iov_base = buf[i];
            iov[i].iov_len = sizeof(buf[i]);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, msgs, MAX_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++)
            classify(c, buf[i], msgs[i].msg_len);
        if (n < MAX_BATCH)
            return;
    }
}

static void report(FILE *f, const counters *c, uint64_t elapsed_ns)
{
    double s = (double)elapsed_ns / 1e9;

    fprintf(f, "sent=%llu elapsed=%.3f rate=%.0f retry=%llu vn=%llu long=%llu short=%llu "
               "send_errors=%llu\n",
            (unsigned long long)c->sent, s, s > 0 ? (double)c->sent / s : 0.0,
            (unsigned long long)c->retry, (unsigned long long)c->vn, (unsigned long long)c->lng,
            (unsigned long long)c->shrt, (unsigned long long)c->send_errors);
    fflush(f);
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1", *port = NULL, *sni = "localhost";
    double seconds = 10;
    uint64_t count = 0, pps = 0, interval_ms = 0;
    int nsock = 128, batch = 32, opt;
    bool real = false;
    static uint8_t pkts[MAX_BATCH][PKT_LEN];
    static int fds[MAX_SOCKETS];
    counters c = {0};

    while ((opt = getopt(argc, argv, "a:p:d:n:r:s:b:HS:i:")) != -1) {
        switch (opt) {
        case 'a': addr = optarg; break;
        case 'p': port = optarg; break;
        case 'd': seconds = atof(optarg); break;
        case 'n': count = strtoull(optarg, NULL, 10); break;
        case 'r': pps = strtoull(optarg, NULL, 10); break;
        case 's': nsock = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'H': real = true; break;
        case 'S': sni = optarg; break;
        case 'i': interval_ms = strtoull(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (port == NULL || optind != argc || !(seconds > 0 && seconds <= 120) || nsock < 1 ||
        nsock > MAX_SOCKETS || batch < 1 || batch > MAX_BATCH)
        usage();

    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST}, *ai;
    int rv = getaddrinfo(addr, port, &hints, &ai);
    if (rv != 0) {
        fprintf(stderr, "qd_flood: %s: %s\n", addr, gai_strerror(rv));
        return 2;
    }
    for (int i = 0; i < nsock; i++) {
        fds[i] = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || connect(fds[i], ai->ai_addr, ai->ai_addrlen) < 0) {
            fprintf(stderr, "qd_flood: socket %d: %s\n", i, strerror(errno));
            return 1;
        }
    }
    freeaddrinfo(ai);
    rnd_bytes(scid, sizeof(scid));
    if (real && make_hello(sni) < 0) {
        fprintf(stderr, "qd_flood: cannot make a ClientHello with wolfSSL\n");
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH];
    uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9), next_report = 0;
    if (interval_ms > 0)
        next_report = start + interval_ms * 1000000ULL;
    for (int si = 0; !stop_flag; si = (si + 1) % nsock) {
        uint64_t now = now_ns();
        if (now >= end || (count > 0 && c.sent >= count))
            break;
        if (next_report != 0 && now >= next_report) {
            report(stderr, &c, now - start);
            next_report += interval_ms * 1000000ULL;
        }
        int n = batch;
        if (count > 0 && count - c.sent < (uint64_t)n)
            n = (int)(count - c.sent);
        if (pps > 0) {
            /* the packets due by now at |pps|; sleep a little when none is */
            uint64_t due = (uint64_t)((double)(now - start) * (double)pps / 1e9) + 1;
            if (due <= c.sent) {
                drain(fds[si], &c);
                struct timespec ts = {0, 200000};
                nanosleep(&ts, NULL);
                continue;
            }
            if (due - c.sent < (uint64_t)n)
                n = (int)(due - c.sent);
        }
        for (int i = 0; i < n; i++) {
            if (make_initial(pkts[i], real) < 0) {
                fprintf(stderr, "qd_flood: cannot encrypt an Initial\n");
                return 1;
            }
            iov[i].iov_base = pkts[i];
            iov[i].iov_len = PKT_LEN;
            memset(&msgs[i], 0, sizeof(msgs[i]));
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int k = sendmmsg(fds[si], msgs, (unsigned)n, MSG_DONTWAIT);
        if (k > 0)
            c.sent += (uint64_t)k;
        if (k < n)
            c.send_errors++; /* EAGAIN or ECONNREFUSED (nobody listens): go on */
        drain(fds[si], &c);
    }
    uint64_t elapsed = now_ns() - start;
    /* What is still on its way back: a moment for the last answers. */
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < nsock; i++) {
        drain(fds[i], &c);
        close(fds[i]);
    }
    report(stdout, &c, elapsed);
    return c.sent > 0 ? 0 : 1;
}
