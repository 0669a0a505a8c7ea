/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_drain - a graceful stop of the QUIC connections
 * SYNOPSIS
 *	worker_conn_notice(), worker_conn_shutdown_all(),
 *	worker_conn_close_all(), worker_conn_free_all()
 * DESCRIPTION
 *	A stop drains the QUIC connections as below; worker.c calls
 *	worker_conn_close_all every tick of the stop, and with |force| at the
 *	deadline. TLS/TCP connections drain in worker_tcp.c.
 * DIAGNOSTICS
 *	None.
 */
#include "config.h"

/* local */
#include "worker.h"

/*
 * Graceful stop, as RFC 9114 5.2 advises: first a GOAWAY that still allows
 * every request (a shutdown notice), so that the client opens no new ones
 * here; a few round trips later the final GOAWAY with the last request we
 * got, so that requests already on their way are still served; then the
 * connection closes once its requests are done. A connection whose
 * handshake is not complete yet, or whose client has not sent its first
 * request, gets no GOAWAY yet (for up to WORKER_FIRST_REQUEST_NS): a client that
 * has a GOAWAY sends no request at all on that connection (nghttp3 refuses
 * to), so the request it is about to send, or has sent, would fail.
 */

void worker_conn_notice(wk_conn *c)
{
    if (c->h3 == NULL || c->notice_ns != 0 || c->goaway_sent)
        return;
    if (nghttp3_conn_submit_shutdown_notice(c->h3) == 0)
        c->notice_ns = worker_now();
    worker_conn_mark(c);
}

/* waits_first_request - a new connection whose first request may be on its way */
static bool waits_first_request(const wk_conn *c, uint64_t now)
{
    return c->h3 == NULL || (c->nrequests == 0 && now < c->started_ns + WORKER_FIRST_REQUEST_NS);
}

/* worker_conn_shutdown_all - a stop: the shutdown notice on every connection */
void worker_conn_shutdown_all(worker *w)
{
    uint64_t now = worker_now();

    for (wk_conn *c = w->conns; c != NULL; c = c->next)
        if (c->state == WK_ALIVE && !waits_first_request(c, now))
            worker_conn_notice(c);
    worker_conn_flush_dirty(w);
}

/* final_goaway - the notice is a few round trips old: no new requests */
static void final_goaway(wk_conn *c, uint64_t now)
{
    ngtcp2_conn_info ci;
    uint64_t grace;

    ngtcp2_conn_get_conn_info(c->conn, &ci);
    grace = 3 * ci.smoothed_rtt;
    grace = grace < WORKER_NOTICE_GRACE_MIN_NS   ? WORKER_NOTICE_GRACE_MIN_NS
            : grace > WORKER_NOTICE_GRACE_MAX_NS ? WORKER_NOTICE_GRACE_MAX_NS
                                                 : grace;
    if (now < c->notice_ns + grace)
        return;
    nghttp3_conn_shutdown(c->h3);
    c->goaway_sent = true;
    c->goaway_ns = now;
    worker_conn_mark(c);
}

/* worker_conn_free_all - the drain deadline: the connections still in their
 * closing or draining period sent their CONNECTION_CLOSE; forget them */
void worker_conn_free_all(worker *w)
{
    for (wk_conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        worker_conn_free(c);
    }
}

/* worker_conn_close_all - while stopping: close every connection that is
 * done (every one when |force|) */
void worker_conn_close_all(worker *w, bool force)
{
    uint64_t now = worker_now();

    for (wk_conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state != WK_ALIVE)
            continue;
        if (!force) {
            if (waits_first_request(c, now))
                continue;
            if (!c->goaway_sent) {
                if (c->notice_ns == 0)
                    worker_conn_notice(c);
                else
                    final_goaway(c, now);
                continue;
            }
            if (c->nstreams > 0)
                continue;
        }
        ngtcp2_ccerr_set_application_error(&c->last_error, NGHTTP3_H3_NO_ERROR, NULL, 0);
        worker_conn_close(c);
    }
    worker_conn_flush_dirty(w);
}
