/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_loop - the loop's clock, randomness and write scheduler
 * SYNOPSIS
 *	worker_now(), worker_wall_ns(), worker_prng(), worker_conn_mark(),
 *	worker_conn_flush_dirty()
 * DESCRIPTION
 *	worker_now is libuv's monotonic clock in ns (ngtcp2's timestamps);
 *	worker_wall_ns the wall clock, for tokens that must verify in any
 *	worker. worker_prng is xorshift64*, seeded from the kernel, for
 *	ngtcp2's non-cryptographic randomness and greased versions.
 *
 *	Writes are batched per loop iteration: whatever gives a connection
 *	something to send (a packet read, an app message, a timer) marks it
 *	(worker_conn_mark); the loop's check handle (worker.c) then writes
 *	each marked connection once (worker_conn_flush_dirty), QUIC or TCP,
 *	so answers to several requests share packets and TLS records.
 * DIAGNOSTICS
 *	None.
 */
#include "config.h"

/* system */
#include <time.h>

/* libshared */
#include "qd_proc.h"

/* local */
#include "worker.h"

static uint64_t prng_state;

uint64_t worker_now(void)
{
    return uv_hrtime();
}

/* worker_wall_ns - the wall clock, for tokens that must verify in any worker */
uint64_t worker_wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* worker_prng - xorshift64*, for ngtcp2's non-cryptographic randomness */
uint64_t worker_prng(void)
{
    if (prng_state == 0 && qd_random(&prng_state, sizeof(prng_state)) < 0)
        prng_state = uv_hrtime() | 1;
    prng_state ^= prng_state >> 12;
    prng_state ^= prng_state << 25;
    prng_state ^= prng_state >> 27;
    return prng_state * 2685821657736338717ULL;
}

void worker_conn_mark(wk_conn *c)
{
    if (c->dirty || c->state != WK_ALIVE)
        return;
    c->dirty = true;
    c->dirty_next = c->w->dirty;
    c->w->dirty = c;
}

void worker_conn_flush_dirty(worker *w)
{
    while (w->dirty != NULL) {
        wk_conn *c = w->dirty;
        w->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        if (c->tcp != NULL)
            worker_tcp_write(c); /* may free it */
        else if (c->state == WK_ALIVE && !c->timer_closing)
            worker_conn_write(c);
    }
}
