/* SPDX-License-Identifier: MIT */
#ifndef QD_WORKER_PKT_H
#define QD_WORKER_PKT_H

#include <stddef.h>
#include <stdint.h>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "worker.h"

/*
 * The worker's first look at a datagram (worker_pkt.c): pure decisions on
 * hostile bytes, no I/O and no connection state beyond a read of the CID
 * table, so that tests/fuzz/fuzz_pkt.c can drive them without a worker.
 * worker_conn.c acts on the verdicts.
 */

#define RETRY_TOKEN_LIFETIME (10 * NGTCP2_SECONDS)
#define REGULAR_TOKEN_LIFETIME (3600 * NGTCP2_SECONDS)
/*
 * The buffer ngtcp2_crypto_generate_retry_token2 writes: its tokens carry
 * the whole client address, 28 bytes more than NGTCP2_CRYPTO_MAX_RETRY_
 * TOKENLEN (the size for the older ngtcp2_crypto_generate_retry_token).
 */
#define WK_RETRY_TOKEN_MAX NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN2

/* What to do with a datagram. */
typedef enum wk_pkt_kind {
    WK_PKT_DROP,     /* too short, a header that does not decode, or nothing to answer */
    WK_PKT_VERSION,  /* a long header of a version we do not speak: Version Negotiation */
    WK_PKT_KNOWN,    /* the DCID is in the CID table: to that connection */
    WK_PKT_FORWARD,  /* short header, a CID another worker minted: forward to its owner */
    WK_PKT_RESET,    /* short header, a CID this worker minted, no connection, long
                        enough: a stateless reset candidate (rate-limited by the caller) */
    WK_PKT_INITIAL,  /* unknown DCID, a first packet ngtcp2_accept takes */
} wk_pkt_kind;

typedef struct wk_pkt {
    ngtcp2_version_cid vc; /* set unless the verdict is DROP (then maybe partly) */
    ngtcp2_pkt_hd hd;      /* WK_PKT_INITIAL: its token points into the datagram */
    void *conn;            /* WK_PKT_KNOWN: the CID table's value */
    int owner;             /* WK_PKT_FORWARD: the instance in the CID (0..255; may be a
                              worker that no longer exists: the listener drops those) */
    unsigned why;          /* WK_PKT_DROP: the QUIC_DROPPED reason (QD_MV_DROP_*) */
} wk_pkt;

/*
 * worker_pkt_route classifies the |len| bytes of hostile input |data| for
 * the worker |instance| whose connections are in |cids| (read only). Fills
 * |*pkt| as described above and returns the verdict; never fails.
 */
wk_pkt_kind worker_pkt_route(wk_pkt *pkt, const uint8_t *data, size_t len, int instance,
                             const wk_map *cids);

/* What the token of an accepted Initial proves. */
typedef enum wk_token {
    WK_TOKEN_NONE,     /* no token */
    WK_TOKEN_RETRY,    /* our Retry token for this address and DCID: |*odcid| is set */
    WK_TOKEN_REGULAR,  /* our NEW_TOKEN token for this address, not expired */
    WK_TOKEN_INVALID,  /* our Retry token, readable, but wrong address, CID or expired:
                          answer with INVALID_TOKEN */
    WK_TOKEN_UNUSABLE, /* anything else (another secret, garbage): proves nothing */
} wk_token;

/*
 * worker_pkt_token verifies the token of |hd| (from WK_PKT_INITIAL) with
 * the static secret |secret| (|secretlen| bytes) for the client address
 * |remote| (|remotelen|) at wall-clock time |now_ns|. Sets |*odcid| only
 * for WK_TOKEN_RETRY.
 */
wk_token worker_pkt_token(const ngtcp2_pkt_hd *hd, const uint8_t *secret, size_t secretlen,
                          const ngtcp2_sockaddr *remote, ngtcp2_socklen remotelen,
                          ngtcp2_tstamp now_ns, ngtcp2_cid *odcid);

#endif /* QD_WORKER_PKT_H */
