/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_pkt - what a datagram is, before any connection sees it
 * SYNOPSIS
 *	worker_pkt_route(), worker_pkt_token()
 * DESCRIPTION
 *	The decisions worker_accept_packet and accept_initial make on hostile
 *	bytes, kept free of I/O and state so they can be fuzzed: the version
 *	and CIDs (ngtcp2_pkt_decode_version_cid with our CID length), the CID
 *	table, the owner byte of a CID we minted (qd_cid_worker), the header
 *	of a first packet (ngtcp2_accept), and for that packet its token by
 *	magic byte: a Retry token (verified with ngtcp2_crypto_verify_retry_
 *	token2, which tells an unreadable token from a readable one that is
 *	wrong) or a NEW_TOKEN token. Nothing here owns anything: |pkt| and
 *	the header point into the caller's datagram.
 * DIAGNOSTICS
 *	None; the verdict says what to count or answer.
 * SEE ALSO
 *	worker_conn.c, tests/fuzz/fuzz_pkt.c
 */
#include "config.h"

/* system */
#include <string.h>

/* libraries */
#include <ngtcp2/ngtcp2_crypto.h>

/* libshared */
#include "qd_cid.h"

/* local */
#include "worker.h"
#include "worker_pkt.h"

wk_pkt_kind worker_pkt_route(wk_pkt *pkt, const uint8_t *data, size_t len, int instance,
                             const wk_map *cids)
{
    memset(pkt, 0, sizeof(*pkt));
    pkt->why = QD_MV_DROP_MALFORMED;
    if (len < 21)
        return WK_PKT_DROP;
    int rv = ngtcp2_pkt_decode_version_cid(&pkt->vc, data, len, QD_CID_LEN);
    if (rv == NGTCP2_ERR_VERSION_NEGOTIATION)
        return WK_PKT_VERSION;
    if (rv != 0)
        return WK_PKT_DROP;
    pkt->conn = wk_map_get(cids, pkt->vc.dcid, pkt->vc.dcidlen);
    if (pkt->conn != NULL)
        return WK_PKT_KNOWN;
    int owner = qd_cid_worker(pkt->vc.dcid, pkt->vc.dcidlen);
    if (!(data[0] & 0x80) && owner >= 0 && owner != instance) {
        pkt->owner = owner; /* another worker's connection, steered here by mistake */
        return WK_PKT_FORWARD;
    }
    if (ngtcp2_accept(&pkt->hd, data, len) != 0) {
        /* Only for a CID we minted, and never as long as the packet (no loops). */
        if (!(data[0] & 0x80) && len >= QD_CID_LEN + 21 && owner == instance)
            return WK_PKT_RESET;
        /* a long header that is no first Initial, or a short one nobody here knows */
        pkt->why = data[0] & 0x80 ? QD_MV_DROP_NOT_INITIAL : QD_MV_DROP_UNKNOWN;
        return WK_PKT_DROP;
    }
    return WK_PKT_INITIAL;
}

wk_token worker_pkt_token(const ngtcp2_pkt_hd *hd, const uint8_t *secret, size_t secretlen,
                          const ngtcp2_sockaddr *remote, ngtcp2_socklen remotelen,
                          ngtcp2_tstamp now_ns, ngtcp2_cid *odcid)
{
    if (hd->tokenlen == 0)
        return WK_TOKEN_NONE;
    if (hd->token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY2) {
        ngtcp2_cid cid;
        int rv = ngtcp2_crypto_verify_retry_token2(&cid, hd->token, hd->tokenlen, secret,
                                                   secretlen, hd->version, remote, remotelen,
                                                   &hd->dcid, RETRY_TOKEN_LIFETIME, now_ns);
        if (rv == 0) {
            *odcid = cid;
            return WK_TOKEN_RETRY;
        }
        /* else unreadable (another secret): no proof of address */
        return rv == NGTCP2_CRYPTO_ERR_VERIFY_TOKEN ? WK_TOKEN_INVALID : WK_TOKEN_UNUSABLE;
    }
    if (hd->token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_REGULAR &&
        ngtcp2_crypto_verify_regular_token(hd->token, hd->tokenlen, secret, secretlen, remote,
                                           remotelen, REGULAR_TOKEN_LIFETIME, now_ns) == 0)
        return WK_TOKEN_REGULAR;
    return WK_TOKEN_UNUSABLE;
}
