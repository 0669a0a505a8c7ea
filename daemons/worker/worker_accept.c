/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_accept - datagrams without a connection of their own: routing,
 *	stateless replies, address validation, new connections
 * SYNOPSIS
 *	worker_accept_packet(), worker_accept_forwarded(),
 *	worker_accept_retry_tick()
 * DESCRIPTION
 *	A datagram is routed by its DCID through the worker's CID table
 *	(worker_pkt.c decides): a known connection reads it
 *	(worker_conn_read); an unknown DCID is either a new connection (an
 *	Initial that ngtcp2_accept takes), a version to negotiate, a
 *	short-header packet for another worker's CID (forwarded to its owner
 *	through the listener), or one that gets a rate-limited stateless
 *	reset - but only when the CID says this worker minted it.
 *
 *	Address validation (Retry, NEW_TOKEN) uses the static secret every
 *	worker got from the listener, so tokens verify on any worker. retry =
 *	auto demands validation under handshake load and spends at most
 *	retry_limit Retry packets a second; token-less Initials beyond that
 *	are dropped, so a flood costs little more than reading it.
 * DIAGNOSTICS
 *	Malformed and unwanted packets are dropped silently (counted); a
 *	malformed forwarded packet from the listener is logged and dropped.
 */
#include "config.h"

/* system */
#include <string.h>

/* libraries */
#include <ngtcp2/ngtcp2_crypto.h>

/* libshared */
#include "qd_cid.h"
#include "qd_err.h"
#include "qd_log.h"

/* local */
#include "worker.h"
#include "worker_pkt.h"

#define RESET_BURST 100

/* drop - a datagram goes no further: counted, and by |reason| (QD_MV_DROP_*) */
static void drop(worker *w, unsigned reason)
{
    w->dropped++;
    worker_count(w, QD_M1(QUIC_DROPPED, reason));
}

/* --- stateless replies ----------------------------------------------------- */

static void send_raw(wk_ep *ep, const wk_addr *local, const wk_addr *remote, const uint8_t *data,
                     size_t len)
{
    ngtcp2_addr l = {.addr = (ngtcp2_sockaddr *)&local->ss, .addrlen = local->len};
    ngtcp2_addr r = {.addr = (ngtcp2_sockaddr *)&remote->ss, .addrlen = remote->len};

    worker_io_send(ep, &l, &r, 0, data, len, 0);
}

static void send_version_negotiation(worker *w, wk_ep *ep, const wk_addr *local,
                                     const wk_addr *remote, const ngtcp2_version_cid *vc)
{
    uint32_t sv[3] = {NGTCP2_PROTO_VER_V1, NGTCP2_PROTO_VER_V2, 0};
    uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];

    sv[2] = (uint32_t)(worker_prng() & 0xf0f0f0f0u) | 0x0a0a0a0au; /* a greased version */
    ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
        buf, sizeof(buf), (uint8_t)(worker_prng() & 0x7f), vc->scid, vc->scidlen, vc->dcid, vc->dcidlen,
        sv, 3);
    if (n > 0) {
        send_raw(ep, local, remote, buf, (size_t)n);
        worker_count(w, QD_M_QUIC_VN_SENT);
    }
}

static void send_retry(worker *w, wk_ep *ep, const wk_addr *local, const wk_addr *remote,
                       const ngtcp2_pkt_hd *hd, size_t max_len)
{
    uint8_t token[WK_RETRY_TOKEN_MAX];
    uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    ngtcp2_cid scid;

    if (qd_cid_mint(scid.data, (unsigned)w->child.instance, w->child.generation, w->cid_tag) < 0)
        return;
    scid.datalen = QD_CID_LEN;
    ngtcp2_ssize tlen = ngtcp2_crypto_generate_retry_token2(
        token, w->static_secret, sizeof(w->static_secret), hd->version,
        (const ngtcp2_sockaddr *)&remote->ss, remote->len, &scid, &hd->dcid, worker_wall_ns());
    if (tlen < 0)
        return;
    ngtcp2_ssize n = ngtcp2_crypto_write_retry(buf, max_len < sizeof(buf) ? max_len : sizeof(buf),
                                               hd->version, &hd->scid, &scid, &hd->dcid, token,
                                               (size_t)tlen);
    if (n > 0) {
        send_raw(ep, local, remote, buf, (size_t)n);
        w->retries_sent++;
    }
}

static void send_invalid_token_close(worker *w, wk_ep *ep, const wk_addr *local,
                                     const wk_addr *remote, const ngtcp2_pkt_hd *hd)
{
    uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(
        buf, sizeof(buf), hd->version, &hd->scid, &hd->dcid, NGTCP2_INVALID_TOKEN, NULL, 0);

    if (n > 0)
        send_raw(ep, local, remote, buf, (size_t)n);
}

/*
 * send_stateless_reset - only for a CID this worker minted, rate-limited,
 * and always smaller than the packet that triggered it (no reset loops).
 */
static void send_stateless_reset(worker *w, wk_ep *ep, const wk_addr *local,
                                 const wk_addr *remote, const uint8_t *dcid, size_t dcidlen,
                                 size_t pktlen)
{
    uint8_t buf[NGTCP2_MAX_CIDLEN + 22];
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
    uint8_t rnd[NGTCP2_MAX_CIDLEN + 22];
    ngtcp2_cid cid;
    uint64_t now = worker_now();

    if (w->reset_refill_ns == 0 || now - w->reset_refill_ns >= NGTCP2_SECONDS) {
        w->reset_tokens = RESET_BURST;
        w->reset_refill_ns = now;
    }
    if (w->reset_tokens == 0) {
        worker_count(w, QD_M_QUIC_RESETS_SUPPRESSED);
        return;
    }
    w->reset_tokens--;
    ngtcp2_cid_init(&cid, dcid, dcidlen);
    if (ngtcp2_crypto_generate_stateless_reset_token(token, w->static_secret,
                                                     sizeof(w->static_secret), &cid) != 0)
        return;
    size_t rndlen = pktlen <= 43 ? pktlen - NGTCP2_STATELESS_RESET_TOKENLEN - 1
                                 : NGTCP2_MAX_CIDLEN + 22 - NGTCP2_STATELESS_RESET_TOKENLEN;
    if (rndlen < NGTCP2_MIN_STATELESS_RESET_RANDLEN)
        return;
    for (size_t i = 0; i < rndlen; i++)
        rnd[i] = (uint8_t)(worker_prng() >> 56);
    ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(buf, sizeof(buf), token, rnd, rndlen);
    if (n > 0) {
        send_raw(ep, local, remote, buf, (size_t)n);
        w->resets_sent++;
    }
}

/* --- accepting ------------------------------------------------------------- */

/* unfinished - new connections this window whose handshake did not complete (yet) */
static uint64_t unfinished(const worker *w)
{
    return w->rate_count > w->rate_done ? w->rate_count - w->rate_done : 0;
}

/*
 * retry_window - close the second-long window of new-connection attempts
 * when it is over: retry = auto stays on while the last full second had
 * more than retry_threshold attempts that did not complete a handshake
 * (attempts minus completed handshakes). Real clients complete theirs
 * within round trips, however many there are; spoofed Initials never do,
 * so a healthy load, at any rate, is never made to pay a Retry's extra
 * round trip (HAProxy also counts unvalidated connections rather than a
 * rate). Also called every second from the status report
 * (worker_accept_retry_tick), so the state falls back when a flood stops
 * even if no Initial arrives to notice it; the timer closes a window from
 * 0.9 s on, so that its jitter does not make windows of nearly two
 * seconds.
 */
static void retry_window(worker *w, uint64_t now, uint64_t min_ns)
{
    if (now - w->rate_window_ns < min_ns)
        return;
    bool was = w->retry_active;
    /* The last window's rate, if that window was the last second. */
    bool recent = now - w->rate_window_ns < 2 * NGTCP2_SECONDS;
    w->retry_active = recent && unfinished(w) > (uint64_t)w->child.conf.retry_threshold;
    w->rate_last = recent ? w->rate_count : 0;
    if (w->retry_active != was)
        qd_notice("retry = auto: address validation %s (%llu new connections, %llu of them "
                  "unfinished, in the last second, threshold %lld; %llu Retry sent, "
                  "%llu Initials dropped so far)",
                  w->retry_active ? "on" : "off", (unsigned long long)w->rate_count,
                  (unsigned long long)unfinished(w), (long long)w->child.conf.retry_threshold,
                  (unsigned long long)w->retries_sent, (unsigned long long)w->initials_dropped);
    w->rate_window_ns = now;
    w->rate_count = 0;
    w->rate_done = 0;
}

/* retry_demanded - does the worker ask new connections to prove their address now? */
static bool retry_demanded(const worker *w)
{
    if (w->child.conf.retry != QD_RETRY_AUTO)
        return w->child.conf.retry == QD_RETRY_YES;
    /* Handshakes that have not finished count too: a flood of spoofed Initials. */
    /* Half-open connections bound memory under a flood slower than the
     * threshold: they last until the handshake timeout. At four times the
     * threshold, not once, so that the threshold's worth a fast flood opens
     * before validation starts does not keep it on after the flood. */
    return w->retry_active || unfinished(w) >= (uint64_t)w->child.conf.retry_threshold ||
           w->half_open >= 4 * (uint64_t)w->child.conf.retry_threshold;
}

/* want_retry - should this Initial be asked to prove its address? */
static bool want_retry(worker *w)
{
    if (w->child.conf.retry == QD_RETRY_AUTO)
        retry_window(w, worker_now(), NGTCP2_SECONDS);
    return retry_demanded(w);
}

/*
 * retry_allowed - may we spend a Retry now? A Retry costs a token (HKDF
 * and AES-GCM under ngtcp2's scheme, 23 us with wolfSSL) and a send, over
 * ten times the cost of reading and dropping the Initial: under a flood,
 * answering every Initial would take the whole CPU and the socket queue
 * would then drop the packets of established connections too. A token
 * bucket of retry_limit per second (refilled continuously, bursts of a
 * tenth of a second) bounds that; an Initial beyond it is dropped, and a
 * real client sends its Initial again.
 */
static bool retry_allowed(worker *w)
{
    uint64_t now = worker_now(), rate = (uint64_t)w->child.conf.retry_limit;
    uint64_t cap = rate / 10 + 1;

    if (w->retry_refill_ns == 0 || now - w->retry_refill_ns >= NGTCP2_SECONDS) {
        w->retry_tokens = cap;
        w->retry_refill_ns = now;
    } else {
        uint64_t add = (now - w->retry_refill_ns) * rate / NGTCP2_SECONDS;
        if (add > 0) { /* keep the fraction of a token for the next call */
            w->retry_refill_ns += add * NGTCP2_SECONDS / rate;
            w->retry_tokens = w->retry_tokens + add > cap ? cap : w->retry_tokens + add;
        }
    }
    if (w->retry_tokens == 0)
        return false;
    w->retry_tokens--;
    return true;
}

/* demand_retry - answer a token-less Initial with a Retry, or drop it over the budget */
static void demand_retry(worker *w, wk_ep *ep, const wk_addr *local, const wk_addr *remote,
                         const ngtcp2_pkt_hd *hd, size_t max_len)
{
    if (!retry_allowed(w)) {
        w->initials_dropped++;
        return;
    }
    send_retry(w, ep, local, remote, hd, max_len);
}

bool worker_accept_retry_tick(worker *w)
{
    uint64_t now = worker_now();

    if (w->child.conf.retry == QD_RETRY_AUTO) {
        retry_window(w, now, 900 * NGTCP2_MILLISECONDS);
    } else if (now - w->rate_window_ns >= 900 * NGTCP2_MILLISECONDS) {
        w->rate_last = now - w->rate_window_ns < 2 * NGTCP2_SECONDS ? w->rate_count : 0;
        w->rate_count = 0;
        w->rate_done = 0; /* or a reload to auto would find it all */
        w->rate_window_ns = now;
    }
    return retry_demanded(w);
}

/* accept_initial - an Initial ngtcp2_accept took: a new connection, a Retry, or nothing */
static void accept_initial(worker *w, wk_ep *ep, const wk_addr *local, const wk_addr *remote,
                           uint8_t ecn, const uint8_t *data, size_t len,
                           const ngtcp2_pkt_hd *accepted)
{
    ngtcp2_pkt_hd hd = *accepted;
    ngtcp2_cid odcid, *podcid = NULL;
    ngtcp2_token_type token_type = NGTCP2_TOKEN_TYPE_UNKNOWN;

    if (w->stopping || w->connections >= (uint64_t)w->child.conf.max_connections) {
        /* the client retries, another worker or later */
        drop(w, w->stopping ? QD_MV_DROP_BUSY : QD_MV_DROP_REFUSED);
        return;
    }
    w->rate_count++;
    bool demand = want_retry(w);
    wk_token tok = worker_pkt_token(&hd, w->static_secret, sizeof(w->static_secret),
                                    (const ngtcp2_sockaddr *)&remote->ss, remote->len, worker_wall_ns(),
                                    &odcid);
    if (hd.tokenlen > 0)
        worker_count(w, QD_M1(QUIC_TOKENS, tok == WK_TOKEN_RETRY || tok == WK_TOKEN_REGULAR
                                               ? QD_MV_TOKEN_VALID
                                           : tok == WK_TOKEN_INVALID ? QD_MV_TOKEN_INVALID
                                                                     : QD_MV_TOKEN_UNUSABLE));
    if (hd.tokenlen == 0) {
        if (demand) {
            demand_retry(w, ep, local, remote, &hd, len * 3);
            return;
        }
    } else if (tok == WK_TOKEN_RETRY) {
        podcid = &odcid;
        token_type = NGTCP2_TOKEN_TYPE_RETRY;
    } else if (tok == WK_TOKEN_INVALID) {
        send_invalid_token_close(w, ep, local, remote, &hd);
        worker_count(w, QD_M1(QUIC_DROPPED, QD_MV_DROP_BAD_TOKEN));
        return;
    } else if (tok == WK_TOKEN_REGULAR) {
        token_type = NGTCP2_TOKEN_TYPE_NEW_TOKEN;
    }
    /* else WK_TOKEN_UNUSABLE (another secret, garbage): no proof of address, below */
    if (hd.tokenlen > 0 && token_type == NGTCP2_TOKEN_TYPE_UNKNOWN) {
        /* A token we cannot use proves nothing. */
        if (demand) {
            demand_retry(w, ep, local, remote, &hd, len * 3);
            return;
        }
        hd.token = NULL;
        hd.tokenlen = 0;
    }

    wk_conn *c = worker_conn_new(w, ep, local, remote, &hd, podcid, token_type);
    if (c == NULL)
        return;
    if (worker_conn_read(c, ep, local, remote, ecn, data, len) == NGTCP2_ERR_RETRY) {
        send_retry(w, ep, local, remote, &hd, len * 3);
        worker_conn_free(c);
    }
}

/*
 * forward - a short-header packet for a CID another worker minted: send it
 * to the owner through the listener rather than resetting a live
 * connection (this happens when the steering program and the socket
 * group disagree, e.g. right after the number of workers changed). With
 * QD_FWD_F_NEW in |flags| it is a new connection's packet that reached a
 * draining worker: the listener passes it to the newest generation.
 */
static void forward(worker *w, wk_ep *ep, const wk_addr *local, const wk_addr *remote,
                    uint32_t flags, const uint8_t *data, size_t len, int owner)
{
    if (w->listener == NULL || len > QD_IPC_MAX_CHUNK) {
        drop(w, QD_MV_DROP_NO_OWNER);
        return;
    }
    qd_ipc_msg *m = qd_chan_msg(w->listener, QD_MSG_FWD_PACKET, 0);
    qd_ipc_put_u32(m, QD_F_INSTANCE, (uint32_t)owner);
    qd_ipc_put_u32(m, QD_F_ENDPOINT, (uint32_t)(ep - w->eps));
    qd_ipc_put_str(m, QD_F_ADDR, ep->name);
    qd_ipc_put_bytes(m, QD_F_LOCAL, &local->ss, local->len);
    qd_ipc_put_bytes(m, QD_F_REMOTE, &remote->ss, remote->len);
    qd_ipc_put_u32(m, QD_F_FLAGS, flags);
    qd_ipc_put_bytes(m, QD_F_BODY, data, len);
    if (qd_chan_queue(w->listener) == 0)
        w->forwarded_wrong_worker++;
    else
        drop(w, QD_MV_DROP_BUSY);
}

/* forwarded_ep - the endpoint a relayed packet arrived for: by address
 * name (the sender may be of another generation, with other addresses),
 * else by index */
static wk_ep *forwarded_ep(worker *w, const qd_ipc_msg *m)
{
    char name[80];
    uint32_t epi = 0;

    if (qd_ipc_get_str(m, QD_F_ADDR, name, sizeof(name)) == 0) {
        for (size_t i = 0; i < w->nep; i++)
            if (w->eps[i].fd >= 0 && strcmp(w->eps[i].name, name) == 0)
                return &w->eps[i];
        return NULL;
    }
    if (qd_ipc_get_u32(m, QD_F_ENDPOINT, &epi) < 0 || epi >= w->nep || w->eps[epi].fd < 0)
        return NULL;
    return &w->eps[epi];
}

void worker_accept_forwarded(worker *w, qd_ipc_msg *m)
{
    uint32_t flags = 0;
    const uint8_t *lp, *rp, *body;
    size_t ll, rl, bl;
    wk_addr local, remote;
    wk_ep *ep = forwarded_ep(w, m);

    if (ep == NULL || qd_ipc_get_bytes(m, QD_F_LOCAL, &lp, &ll) < 0 || ll > sizeof(local.ss) ||
        qd_ipc_get_bytes(m, QD_F_REMOTE, &rp, &rl) < 0 || rl > sizeof(remote.ss) ||
        qd_ipc_get_bytes(m, QD_F_BODY, &body, &bl) < 0) {
        qd_child_bad_message(&w->child, "listener (forwarded packet)", QD_ERR_INVAL);
        return;
    }
    memset(&local, 0, sizeof(local));
    memset(&remote, 0, sizeof(remote));
    memcpy(&local.ss, lp, ll);
    memcpy(&remote.ss, rp, rl);
    local.len = (socklen_t)ll;
    remote.len = (socklen_t)rl;
    if ((local.ss.ss_family != AF_INET && local.ss.ss_family != AF_INET6) ||
        remote.ss.ss_family != local.ss.ss_family) {
        qd_child_bad_message(&w->child, "listener (forwarded packet)", QD_ERR_INVAL);
        return;
    }
    qd_ipc_get_u32(m, QD_F_FLAGS, &flags);
    /* Only our own CIDs, or a new connection's first packets passed on by a
     * draining worker; a forwarded packet is never forwarded again. */
    ngtcp2_version_cid vc;
    if (bl < 21 || ngtcp2_pkt_decode_version_cid(&vc, body, bl, QD_CID_LEN) != 0 ||
        (!(flags & QD_FWD_F_NEW) && wk_map_get(&w->cids, vc.dcid, vc.dcidlen) == NULL)) {
        drop(w, QD_MV_DROP_UNKNOWN);
        return;
    }
    w->rx_packets++;
    w->in_relay = true;
    worker_accept_packet(w, ep, &local, &remote, (uint8_t)(flags & 3), body, bl);
    w->in_relay = false;
    worker_conn_flush_dirty(w);
}

void worker_accept_packet(worker *w, wk_ep *ep, const wk_addr *local, const wk_addr *remote,
                        uint8_t ecn, const uint8_t *data, size_t len)
{
    wk_pkt pkt;

    if (len < 21 || !w->have_secrets || w->tls == NULL) {
        drop(w, len < 21 ? QD_MV_DROP_MALFORMED : QD_MV_DROP_BUSY);
        return;
    }
    switch (worker_pkt_route(&pkt, data, len, w->child.instance, &w->cids)) {
    case WK_PKT_VERSION:
        send_version_negotiation(w, ep, local, remote, &pkt.vc);
        return;
    case WK_PKT_FORWARD:
        if (w->in_relay) {
            drop(w, QD_MV_DROP_NO_OWNER);
            return;
        }
        forward(w, ep, local, remote, ecn, data, len, pkt.owner);
        return;
    case WK_PKT_RESET:
        send_stateless_reset(w, ep, local, remote, pkt.vc.dcid, pkt.vc.dcidlen, len);
        return;
    case WK_PKT_INITIAL:
        if (w->stopping && !w->in_relay) {
            /* A new connection for a draining worker (its DCID looked like
             * one of our CIDs to the steering program): the newest
             * generation takes it, if there is one. */
            forward(w, ep, local, remote, ecn | QD_FWD_F_NEW, data, len, w->child.instance);
            return;
        }
        accept_initial(w, ep, local, remote, ecn, data, len, &pkt.hd);
        return;
    case WK_PKT_KNOWN:
        break;
    default:
        drop(w, pkt.why);
        return;
    }
    worker_conn_read(pkt.conn, ep, local, remote, ecn, data, len);
}
