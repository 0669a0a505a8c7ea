/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the worker's datagram intake (daemons/worker/
 * worker_pkt.c): routing by version, CID table and owner byte, and the
 * tokens of Initials. Byte 0 picks the worker instance (bits 6-7) and a
 * mode (bits 0-2); the rest is either the datagram itself (modes 0, 1) or
 * the parameters of one the target builds: a short-header packet for some
 * owner (2), an Initial carrying no token, one of our Retry or NEW_TOKEN
 * tokens, possibly mutated, for the client's or another address, expired,
 * from another secret or version, or raw token bytes (3-5), a short
 * header for a connection in the table (6), a long header of an unknown
 * version (7).
 *
 * Checked: every verdict agrees with the header (FORWARD only for a short
 * header whose CID names another worker, RESET only for our own CID and a
 * packet long enough, KNOWN only for a CID in the table, the decoded CIDs
 * and token lie inside the datagram); a packet the target built cleanly
 * gets exactly the verdict the routing rule gives it; a token we made
 * verifies, for its address and DCID, within its lifetime, to the type it
 * was made as (a Retry token to its original DCID; a NEW_TOKEN token also
 * from another port of the same host, as ngtcp2 binds only the address:
 * a client's next connection has a new port), while a token with any
 * byte changed, for another address (for a Retry token, another port),
 * expired, from another secret or for another version, and any token
 * made of input bytes, never proves anything; a Retry token from another secret is unusable rather than
 * invalid (no INVALID_TOKEN close for another server's token).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "qd_cid.h"
#include "qd_log.h"

#include "worker.h"
#include "worker_pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_NS (1795000000ULL * NGTCP2_SECONDS) /* a fixed "now" in 2026 */
#define KNOWN_COUNT 5

static const uint8_t secret[QD_STATIC_SECRET_LEN] = {
    0x71, 0x75, 0x69, 0x63, 0x64, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x73, 0x65, 0x63, 0x72, 0x65,
    0x74, 0x2d, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64};

static struct {
    bool ready;
    wk_map cids;
    uint8_t known[KNOWN_COUNT][NGTCP2_MAX_CIDLEN];
    size_t known_len[KNOWN_COUNT];
    int values[KNOWN_COUNT];
} st;

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

static uint32_t u32(cur *c)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++)
        v = v << 8 | u8(c);
    return v;
}

static void take(cur *c, uint8_t *dst, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = u8(c);
}

/* setup - the CID table: one 18-byte CID per instance 0..3, one client CID */
static void setup(void)
{
    wolfSSL_Init();
    wk_map_init(&st.cids);
    for (int i = 0; i < KNOWN_COUNT; i++) {
        if (i < 4) {
            st.known[i][0] = 0x80;
            st.known[i][1] = (uint8_t)i;
            memset(st.known[i] + 2, 0x5a, QD_CID_LEN - 2);
            st.known_len[i] = QD_CID_LEN;
        } else {
            memset(st.known[i], 0xcc, 8);
            st.known_len[i] = 8;
        }
        st.values[i] = i;
        wk_map_put(&st.cids, st.known[i], st.known_len[i], &st.values[i]);
    }
    st.ready = true;
}

/* known_index - the table entry for a CID, or -1 */
static int known_index(const uint8_t *cid, size_t len)
{
    for (int i = 0; i < KNOWN_COUNT; i++)
        if (st.known_len[i] == len && memcmp(st.known[i], cid, len) == 0)
            return i;
    return -1;
}

/* inside - [p, p + n) lies within the datagram */
static bool inside(const uint8_t *p, size_t n, const uint8_t *data, size_t len)
{
    return n == 0 || (p >= data && p + n <= data + len);
}

/* check_route - the verdict agrees with the datagram; returns it */
static wk_pkt_kind check_route(wk_pkt *pkt, const uint8_t *data, size_t len, int instance)
{
    wk_pkt_kind k = worker_pkt_route(pkt, data, len, instance, &st.cids);
    bool is_long = len > 0 && (data[0] & 0x80);

    if (k != WK_PKT_DROP && (!inside(pkt->vc.dcid, pkt->vc.dcidlen, data, len) ||
                             !inside(pkt->vc.scid, pkt->vc.scidlen, data, len)))
        qd_panic("pkt: verdict %d with CIDs outside the datagram", k);
    switch (k) {
    case WK_PKT_DROP:
    case WK_PKT_VERSION:
        if (k == WK_PKT_VERSION && !is_long)
            qd_panic("pkt: version negotiation for a short header");
        break;
    case WK_PKT_KNOWN: {
        int i = known_index(pkt->vc.dcid, pkt->vc.dcidlen);
        if (i < 0 || pkt->conn != &st.values[i])
            qd_panic("pkt: KNOWN for a CID not in the table");
        break;
    }
    case WK_PKT_FORWARD:
        if (is_long || pkt->vc.dcidlen != QD_CID_LEN || pkt->owner == instance ||
            pkt->owner != pkt->vc.dcid[QD_CID_WORKER_BYTE] ||
            known_index(pkt->vc.dcid, pkt->vc.dcidlen) >= 0)
            qd_panic("pkt: FORWARD to %d from instance %d is wrong", pkt->owner, instance);
        break;
    case WK_PKT_RESET:
        if (is_long || len < QD_CID_LEN + 21 || pkt->vc.dcidlen != QD_CID_LEN ||
            pkt->vc.dcid[QD_CID_WORKER_BYTE] != instance ||
            known_index(pkt->vc.dcid, pkt->vc.dcidlen) >= 0)
            qd_panic("pkt: RESET for a packet that is not ours or too short");
        break;
    case WK_PKT_INITIAL:
        if (!is_long || known_index(pkt->vc.dcid, pkt->vc.dcidlen) >= 0 ||
            pkt->hd.dcid.datalen != pkt->vc.dcidlen ||
            memcmp(pkt->hd.dcid.data, pkt->vc.dcid, pkt->vc.dcidlen) != 0 ||
            !inside(pkt->hd.token, pkt->hd.tokenlen, data, len))
            qd_panic("pkt: INITIAL whose header disagrees with the datagram");
        break;
    default:
        qd_panic("pkt: verdict %d", k);
    }
    return k;
}

/* make_addr - a client address from the input */
static ngtcp2_socklen make_addr(cur *c, struct sockaddr_storage *ss)
{
    uint8_t b = u8(c);
    uint16_t port = (uint16_t)(1024 + (b & 0x3f));

    memset(ss, 0, sizeof(*ss));
    if (b & 0x80) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        inet_pton(AF_INET6, "2001:db8::1", &s6->sin6_addr);
        s6->sin6_addr.s6_addr[15] = u8(c);
        return sizeof(*s6);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    s4->sin_addr.s_addr = htonl(0xc0000200u | u8(c));
    return sizeof(*s4);
}

/* put_varint2 - a two-byte QUIC varint */
static uint8_t *put_varint2(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(0x40 | (v >> 8));
    p[1] = (uint8_t)v;
    return p + 2;
}

enum { TOK_NONE, TOK_RETRY, TOK_REGULAR, TOK_RAW };
enum { MUT_NONE, MUT_BYTE, MUT_TRUNC, MUT_ADDR, MUT_EXPIRED, MUT_SECRET, MUT_VERSION, MUT_COUNT };

/* fuzz_initial - build an Initial with a token, route it, check the token's verdict */
static void fuzz_initial(cur *c, int instance)
{
    uint8_t pkt[1400], token[WK_RETRY_TOKEN_MAX + NGTCP2_CRYPTO_MAX_REGULAR_TOKENLEN + 64];
    uint8_t flags = u8(c), *p = pkt;
    uint32_t versions[] = {NGTCP2_PROTO_VER_V1, NGTCP2_PROTO_VER_V2};
    uint32_t version = versions[flags & 1];
    int tok_kind = (flags >> 1) & 3;
    int mut = u8(c) % MUT_COUNT;
    size_t dcidlen = 8 + u8(c) % 13, scidlen = u8(c) % 21, tokenlen = 0;
    ngtcp2_cid dcid, scid, odcid, got_odcid;
    struct sockaddr_storage remote, other;
    ngtcp2_socklen remotelen = make_addr(c, &remote), otherlen = 0;
    ngtcp2_tstamp age = (ngtcp2_tstamp)(u8(c) % 5) * NGTCP2_SECONDS;

    dcid.datalen = dcidlen;
    take(c, dcid.data, dcidlen);
    scid.datalen = scidlen;
    take(c, scid.data, scidlen);
    odcid.datalen = 8 + u8(c) % 13;
    take(c, odcid.data, odcid.datalen);
    if (mut == MUT_EXPIRED)
        age = (tok_kind == TOK_REGULAR ? REGULAR_TOKEN_LIFETIME : RETRY_TOKEN_LIFETIME) +
              NGTCP2_SECONDS + (ngtcp2_tstamp)u8(c) * NGTCP2_SECONDS;

    /* The token, made with our secret (or, for MUT_SECRET, another one). */
    uint8_t sec[sizeof(secret)];
    memcpy(sec, secret, sizeof(sec));
    if (mut == MUT_SECRET)
        sec[u8(c) % sizeof(sec)] ^= 1 + u8(c) % 255;
    ngtcp2_ssize n = 0;
    if (tok_kind == TOK_RETRY) {
        /* exactly the worker's buffer, on the heap, so ASan sees any overrun */
        uint8_t *buf = malloc(WK_RETRY_TOKEN_MAX);
        uint32_t tv = mut == MUT_VERSION ? versions[!(flags & 1)] : version;
        n = ngtcp2_crypto_generate_retry_token2(buf, sec, sizeof(sec), tv,
                                                (const ngtcp2_sockaddr *)&remote, remotelen,
                                                &dcid, &odcid, NOW_NS - age);
        if (n > 0)
            memcpy(token, buf, (size_t)n);
        free(buf);
    } else if (tok_kind == TOK_REGULAR) {
        uint8_t *buf = malloc(NGTCP2_CRYPTO_MAX_REGULAR_TOKENLEN);
        n = ngtcp2_crypto_generate_regular_token(
            buf, sec, sizeof(sec), (const ngtcp2_sockaddr *)&remote, remotelen, NOW_NS - age);
        if (n > 0)
            memcpy(token, buf, (size_t)n);
        free(buf);
    } else if (tok_kind == TOK_RAW) {
        n = u8(c) % 128;
        take(c, token, (size_t)n);
    }
    if (n < 0)
        qd_panic("pkt: generating a token failed");
    tokenlen = (size_t)n;
    bool is_mutated = false;
    if (mut == MUT_BYTE && tokenlen > 0) {
        uint8_t x = u8(c);
        size_t at = u8(c) % tokenlen;
        token[at] ^= x ? x : 1;
        is_mutated = true;
    } else if (mut == MUT_TRUNC && tokenlen > 0) {
        tokenlen = u8(c) % tokenlen;
        is_mutated = true;
    }
    bool is_port_only = false;
    if (mut == MUT_ADDR) {
        memcpy(&other, &remote, sizeof(other));
        otherlen = remotelen;
        /* another port, the same host; or another host */
        is_port_only = u8(c) & 1;
        if (is_port_only)
            ((struct sockaddr_in *)&other)->sin_port ^= htons(1 + (u8(c) & 0x3f));
        else if (other.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&other)->sin6_addr.s6_addr[14] ^= 1 + u8(c) % 255;
        else
            ((struct sockaddr_in *)&other)->sin_addr.s_addr ^= htonl(0x100u * (1 + u8(c) % 255));
    }

    /* The Initial: long header, type Initial for the version, padded to 1200. */
    size_t pnlen = 1 + (flags >> 3 & 3);
    uint8_t type = version == NGTCP2_PROTO_VER_V2 ? 1 : 0;
    *p++ = (uint8_t)(0xc0 | type << 4 | (pnlen - 1));
    *p++ = (uint8_t)(version >> 24);
    *p++ = (uint8_t)(version >> 16);
    *p++ = (uint8_t)(version >> 8);
    *p++ = (uint8_t)version;
    *p++ = (uint8_t)dcidlen;
    memcpy(p, dcid.data, dcidlen);
    p += dcidlen;
    *p++ = (uint8_t)scidlen;
    memcpy(p, scid.data, scidlen);
    p += scidlen;
    p = put_varint2(p, tokenlen);
    memcpy(p, token, tokenlen);
    p += tokenlen;
    size_t total = 1200 + (flags >> 5) * 20;
    size_t rest = total - (size_t)(p - pkt) - 2;
    p = put_varint2(p, rest);
    memset(p, 0, rest);
    p += rest;
    /* Sometimes cut it short: then it need not be accepted. */
    size_t len = (size_t)(p - pkt);
    bool is_clean = !(u8(c) & 0x80);
    if (!is_clean)
        len = u8(c) * 5 % len;

    uint8_t *dgram = malloc(len ? len : 1);
    memcpy(dgram, pkt, len);
    wk_pkt route;
    wk_pkt_kind k = check_route(&route, dgram, len, instance);
    bool is_known = known_index(dcid.data, dcidlen) >= 0;
    if (is_clean && k != (is_known ? WK_PKT_KNOWN : WK_PKT_INITIAL))
        qd_panic("pkt: a clean Initial got verdict %d", k);
    if (k != WK_PKT_INITIAL) {
        free(dgram);
        return;
    }
    if (route.hd.tokenlen != tokenlen ||
        (tokenlen > 0 && memcmp(route.hd.token, token, tokenlen) != 0))
        qd_panic("pkt: a token of %zu bytes decoded as %zu others", tokenlen, route.hd.tokenlen);

    const struct sockaddr_storage *ra = mut == MUT_ADDR ? &other : &remote;
    ngtcp2_socklen ral = mut == MUT_ADDR ? otherlen : remotelen;
    memset(&got_odcid, 0, sizeof(got_odcid));
    wk_token t = worker_pkt_token(&route.hd, secret, sizeof(secret),
                                  (const ngtcp2_sockaddr *)ra, ral, NOW_NS, &got_odcid);
    bool is_usable = t == WK_TOKEN_RETRY || t == WK_TOKEN_REGULAR;
    if (tokenlen == 0) {
        if (t != WK_TOKEN_NONE)
            qd_panic("pkt: no token, verdict %d", t);
    } else if (tok_kind == TOK_RAW || is_mutated ||
               (mut == MUT_ADDR && !(is_port_only && tok_kind == TOK_REGULAR)) ||
               mut == MUT_EXPIRED ||
               mut == MUT_SECRET || (mut == MUT_VERSION && tok_kind == TOK_RETRY)) {
        if (is_usable)
            qd_panic("pkt: a token (kind %d, mutation %d) that must not verify gives %d",
                     tok_kind, mut, t);
        if (mut == MUT_SECRET && t != WK_TOKEN_UNUSABLE)
            qd_panic("pkt: another server's token is %d, not unusable", t);
    } else {
        wk_token want = tok_kind == TOK_RETRY ? WK_TOKEN_RETRY : WK_TOKEN_REGULAR;
        if (t != want)
            qd_panic("pkt: our own token (kind %d) gives %d", tok_kind, t);
        if (t == WK_TOKEN_RETRY && !ngtcp2_cid_eq(&got_odcid, &odcid))
            qd_panic("pkt: a Retry token gives back another original DCID");
    }
    if (t != WK_TOKEN_RETRY && got_odcid.datalen != 0)
        qd_panic("pkt: odcid set for verdict %d", t);
    free(dgram);
}

/* fuzz_short - a short-header packet for a CID with some owner */
static void fuzz_short(cur *c, int instance, bool is_known)
{
    uint8_t pkt[1500];
    size_t len;
    uint8_t b = u8(c);

    pkt[0] = (uint8_t)(0x40 | (b & 0x3f));
    if (is_known) {
        int i = u8(c) % KNOWN_COUNT;
        memcpy(pkt + 1, st.known[i], st.known_len[i]);
    } else {
        pkt[1] = u8(c);
        pkt[2] = (uint8_t)(u8(c) % 6);
        take(c, pkt + 3, QD_CID_LEN - 2);
    }
    len = 1 + QD_CID_LEN + u8(c) * 4 % (sizeof(pkt) - 1 - QD_CID_LEN);
    take(c, pkt + 1 + QD_CID_LEN, len - 1 - QD_CID_LEN);

    uint8_t *dgram = malloc(len);
    memcpy(dgram, pkt, len);
    wk_pkt route;
    wk_pkt_kind k = check_route(&route, dgram, len, instance);
    /* The routing rule, restated. */
    wk_pkt_kind want;
    int owner = pkt[1 + QD_CID_WORKER_BYTE];
    if (len < 21)
        want = WK_PKT_DROP;
    else if (known_index(pkt + 1, QD_CID_LEN) >= 0)
        want = WK_PKT_KNOWN;
    else if (owner != instance)
        want = WK_PKT_FORWARD;
    else if (len >= QD_CID_LEN + 21)
        want = WK_PKT_RESET;
    else
        want = WK_PKT_DROP;
    if (k != want)
        qd_panic("pkt: short header (owner %d, instance %d, %zu bytes) got %d, want %d", owner,
                 instance, len, k, want);
    free(dgram);
}

/* fuzz_version - a long header of a version we do not speak */
static void fuzz_version(cur *c, int instance)
{
    uint8_t pkt[1300];
    uint32_t v = u32(c);
    size_t dcidlen = u8(c), len;

    memset(pkt, 0, sizeof(pkt));
    if (v == NGTCP2_PROTO_VER_V1 || v == NGTCP2_PROTO_VER_V2 || v == 0)
        v = 0x1a2a3a4a;
    pkt[0] = 0xc0 | u8(c);
    pkt[1] = (uint8_t)(v >> 24);
    pkt[2] = (uint8_t)(v >> 16);
    pkt[3] = (uint8_t)(v >> 8);
    pkt[4] = (uint8_t)v;
    pkt[5] = (uint8_t)dcidlen;
    take(c, pkt + 6, dcidlen);
    pkt[6 + dcidlen] = 0; /* scid length */
    len = 1200 + u8(c) % 100;
    wk_pkt route;
    if (check_route(&route, pkt, len, instance) != WK_PKT_VERSION)
        qd_panic("pkt: version 0x%08x not negotiated", v);
    /* Below 1200 bytes it is never answered (no amplification). */
    size_t shorter = 21 + u8(c) * 4;
    if (shorter < 1200 && check_route(&route, pkt, shorter, instance) == WK_PKT_VERSION)
        qd_panic("pkt: version negotiation for a %zu-byte datagram", shorter);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cur c = {data, size};
    wk_pkt route;

    if (!st.ready)
        setup();
    uint8_t op = u8(&c);
    int instance = op >> 6;
    switch (op & 7) {
    case 0:
    case 1: {
        /* raw bytes: whatever the verdict, it agrees with the header, and no
           token made of input bytes verifies */
        uint8_t *dgram = malloc(c.n ? c.n : 1);
        memcpy(dgram, c.p, c.n);
        if (check_route(&route, dgram, c.n, instance) == WK_PKT_INITIAL) {
            struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(4433)};
            ngtcp2_cid odcid;
            wk_token t = worker_pkt_token(&route.hd, secret, sizeof(secret),
                                          (const ngtcp2_sockaddr *)&sin, sizeof(sin), NOW_NS,
                                          &odcid);
            if (t == WK_TOKEN_RETRY || t == WK_TOKEN_REGULAR)
                qd_panic("pkt: a token from the input verified");
        }
        free(dgram);
        break;
    }
    case 2:
        fuzz_short(&c, instance, false);
        break;
    case 6:
        fuzz_short(&c, instance, true);
        break;
    case 7:
        fuzz_version(&c, instance);
        break;
    default:
        fuzz_initial(&c, instance);
    }
    return 0;
}
