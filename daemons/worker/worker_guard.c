/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_guard - per-connection budgets against abuse, for HTTP/2 and
 *	HTTP/3 alike
 * SYNOPSIS
 *	worker_guard_reset(), worker_guard_section(), worker_guard_refuse()
 * DESCRIPTION
 *	Work a client makes us do for nothing is bounded per connection, the
 *	same way whichever protocol carries it; the protocol code asks here
 *	and, when told no, closes the connection with its own code
 *	(HTTP/2 GOAWAY ENHANCE_YOUR_CALM, HTTP/3 H3_EXCESSIVE_LOAD).
 *
 *	Stream resets: WORKER_RESET_BUDGET in any one second, counting the
 *	client's (RST_STREAM, RESET_STREAM, STOP_SENDING: "rapid reset") and
 *	the ones the client makes us send for a malformed request, a body
 *	longer than its content-length or a window overflow ("MadeYouReset",
 *	CVE-2025-8671): each of those is a request set up and torn down.
 *
 *	Field sections: a request head decoding to more than WORKER_MAX_HEAD
 *	is answered 431 (worker_req.c); a field section (head or trailers)
 *	decoding to more than WORKER_MAX_SECTION, or a connection's
 *	WORKER_MAX_OVERSIZE+1st oversized head, closes the connection at
 *	once, so an HPACK or QPACK bomb (one table entry referenced thousands
 *	of times) costs at most WORKER_MAX_SECTION bytes of decoding.
 *
 *	Each refusal is counted by cause in the worker's guard counters
 *	(quicctl status: closed_header_bombs, closed_reset_floods,
 *	closed_frame_floods, closed_protocol_errors).
 * DIAGNOSTICS
 *	worker_guard_refuse() logs at info level, rate-limited.
 */
#include "config.h"

/* libshared */
#include "qd_log.h"

/* local */
#include "worker.h"

#define SECOND_NS 1000000000ULL

static const char *const cause_name[WK_GUARD_N] = {
    [WK_GUARD_HEADERS] = "request header fields over the limits",
    [WK_GUARD_RESETS] = "too many stream resets",
    [WK_GUARD_FLOOD] = "frame flood",
    [WK_GUARD_PROTOCOL] = "protocol error",
};

/* worker_guard_reset - one stream reset, by either side; false once over the budget */
bool worker_guard_reset(wk_conn *c)
{
    uint64_t now = worker_now();

    if (now >= c->resets_ns + SECOND_NS) {
        c->resets_ns = now;
        c->resets = 0;
    }
    return ++c->resets <= WORKER_RESET_BUDGET;
}

/*
 * worker_guard_section - |bytes| more of a request's field section
 * (|trailer|: of its trailers, which are not kept); false when the
 * connection must be closed. Each field counts its name, value and 32
 * bytes (RFC 9113 6.5.2, RFC 9114 4.2.2).
 */
bool worker_guard_section(wk_stream *s, size_t bytes, bool trailer)
{
    size_t *count = trailer ? &s->trailer_bytes : &s->head_bytes;
    size_t was = *count;

    *count += bytes;
    if (*count > WORKER_MAX_SECTION)
        return false;
    if (!trailer && was <= WORKER_MAX_HEAD && *count > WORKER_MAX_HEAD &&
        ++s->c->oversize > WORKER_MAX_OVERSIZE)
        return false;
    return true;
}

/* worker_guard_refuse - count and log a connection closed for |why| (|what|: the detail) */
void worker_guard_refuse(wk_conn *c, enum wk_guard_cause why, const char *what)
{
    static qd_log_limit lim;

    c->w->guard_closed[why]++;
    qd_log_limited(&lim, QD_LOG_INFO, "%s connection %s from %s closed: %s (%s)",
                   worker_conn_proto(c), c->cid_text, c->peer, cause_name[why], what);
}
