/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker - one QUIC/HTTP/3 engine per CPU
 * SYNOPSIS
 *	worker -i instance -g generation [-l dest] [-v level] (started by quicd)
 * DESCRIPTION
 *	Pins itself to its CPU, receives its configuration from the master,
 *	loads the TLS certificate and key, drops privileges into an empty
 *	chroot, and gets everything else over channels: its UDP sockets and
 *	the shared secrets from the listener (QD_MSG_SOCKETS; a new set
 *	replaces the old one in place, address by address) and a channel to
 *	the app (and, with a proxy table, one to the upstream daemon). The
 *	QUIC engine is in worker_accept.c, worker_conn.c, worker_drain.c and
 *	worker_io.c, HTTP/3 in worker_h3.c, TLS in worker_tls.c, requests in
 *	worker_req.c with their sources (worker_proxy.c, worker_cache.c,
 *	worker_app.c; the proxy's routes, upstream channel, connections and
 *	TLS in worker_route.c, worker_upstream.c, worker_upconn.c and
 *	worker_uptls.c); the loop's clock and write scheduler in
 *	worker_loop.c; ngtcp2's and nghttp3's allocator in worker_mem.c. It reports its live connection
 *	count to the master every second. A stop sends GOAWAY, lets requests
 *	finish until the deadline, closes every connection and exits.
 * DIAGNOSTICS
 *	Malformed messages are logged (rate-limited) and dropped.
 */
#include "config.h"

/* system */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"
#include "qd_time.h"
#include "qd_uv.h"

/* local */
#include "worker.h"
#include "worker_mem.h"

worker the_worker;

/* pin_cpu - run on the instance-th CPU we are allowed to use */
static void pin_cpu(int instance)
{
    cpu_set_t allowed, one;
    int n = 0, target;

    if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0 || CPU_COUNT(&allowed) == 0)
        return;
    target = instance % CPU_COUNT(&allowed);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed))
            continue;
        if (n++ == target) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (sched_setaffinity(0, sizeof(one), &one) < 0)
                qd_warn_errno("cannot pin to CPU %d", cpu);
            else
                qd_debug("pinned to CPU %d", cpu);
            return;
        }
    }
}

/* install_socket - endpoint |i| gets socket |fd| for address |name| */
static void install_socket(worker *w, size_t i, int fd, const uint8_t *name, size_t len)
{
    wk_ep *ep = &w->eps[i];
    socklen_t sl = sizeof(ep->bound);

    if (ep->fd >= 0) /* what the old socket dropped while it was ours */
        w->rxq_drops += worker_io_drops(ep->fd) - ep->drops_base;
    worker_io_stop(ep);
    worker_tcp_unlisten(ep);
    if (ep->tcp_fd >= 0)
        close(ep->tcp_fd);
    ep->tcp_fd = -1;
    memset(&ep->bound, 0, sizeof(ep->bound));
    if (getsockname(fd, (struct sockaddr *)&ep->bound, &sl) < 0) {
        qd_warn_errno("getsockname");
        close(fd);
        return;
    }
    ep->fd = fd;
    /* a socket a previous worker read may have dropped before: not ours */
    ep->drops_base = worker_io_drops(fd);
    ep->family = ep->bound.ss_family;
    ep->port = ep->family == AF_INET ? ((struct sockaddr_in *)&ep->bound)->sin_port
                                     : ((struct sockaddr_in6 *)&ep->bound)->sin6_port;
    snprintf(ep->name, sizeof(ep->name), "%.*s", (int)(len < 79 ? len : 79), (const char *)name);
    worker_io_start(w, ep);
    if (i >= w->nep)
        w->nep = i + 1;
}

/* install_tcp - endpoint |i| gets its TCP listen socket |fd|, named |name| like its UDP one */
static void install_tcp(worker *w, size_t i, int fd, const uint8_t *name, size_t len)
{
    wk_ep *ep = &w->eps[i];

    if (ep->fd < 0 || strlen(ep->name) != (len < 79 ? len : 79) || memcmp(ep->name, name, strlen(ep->name)) != 0) {
        qd_warn("a TCP socket for %.*s came without its address; closing it", (int)(len < 79 ? len : 79),
                (const char *)name);
        close(fd);
        return;
    }
    worker_tcp_unlisten(ep);
    if (ep->tcp_fd >= 0)
        close(ep->tcp_fd);
    ep->tcp_fd = fd;
    worker_tcp_listen(w, ep);
}

/* take_sockets - sockets (and, in the first message of a set, the secrets) */
static void take_sockets(worker *w, qd_ipc_msg *m)
{
    size_t pos = 0, fdi = 0, len, i = m->id, tcp = 0;
    uint16_t tag;
    const uint8_t *val;

    while (qd_ipc_next(m, &pos, &tag, &val, &len)) {
        if (tag == QD_F_SECRET && len == sizeof(w->static_secret)) {
            memcpy(w->static_secret, val, len);
            w->have_secrets = true;
        } else if (tag == QD_F_TICKET_KEY && len == sizeof(w->ticket_key)) {
            memcpy(w->ticket_key, val, len);
        } else if (tag == QD_F_CID_TAG && len == 4) {
            qd_ipc_get_u32(m, QD_F_CID_TAG, &w->cid_tag);
        } else if (tag == QD_F_ADDR && fdi < m->fd_count && i < WORKER_MAX_SOCKETS) {
            install_socket(w, i++, qd_ipc_msg_take_fd(m, fdi++), val, len);
        } else if (tag == QD_F_TCP_ADDR && fdi < m->fd_count && i > 0) {
            install_tcp(w, i - 1, qd_ipc_msg_take_fd(m, fdi++), val, len);
            tcp++;
        }
    }
    qd_info("have %zu UDP socket%s from the listener (%zu TCP in this message)", w->nep,
            w->nep == 1 ? "" : "s", tcp);
}

/* on_listener_msg - sockets from the listener */
static void on_listener_msg(qd_chan *ch, qd_ipc_msg *m)
{
    worker *w = ch->data;

    if (m->type == QD_MSG_SOCKETS)
        take_sockets(w, m);
    else if (m->type == QD_MSG_FWD_PACKET)
        worker_accept_forwarded(w, m);
    else
        qd_child_bad_message(&w->child, "listener", QD_ERR_UNKNOWN);
}

static void on_listener_close(qd_chan *ch)
{
    worker *w = ch->data;

    qd_info("listener channel closed; keeping my sockets");
    w->listener = NULL;
}

/* on_app_msg - responses from the app */
static void on_app_msg(qd_chan *ch, qd_ipc_msg *m)
{
    worker_app_message(ch->data, m);
}

static void on_app_close(qd_chan *ch)
{
    worker *w = ch->data;

    qd_warn("app channel closed; answering 503 until the master connects a new app");
    w->app = NULL;
    worker_app_down(w);
}

static int configure(qd_child *c, const qd_conf *conf, bool first, qd_buf *err)
{
    worker *w = &the_worker;

    if (first) {
        pin_cpu(c->instance < 0 ? 0 : c->instance);
        worker_metrics_open();
        if (worker_tls_init(w, conf, err) < 0)
            return -1;
        return worker_route_configure(w, conf, err);
    }
    /* Renewed files take effect here (the master passed them open); if they
     * cannot be used the reload fails and everything stays as it was. */
    if (worker_tls_init(w, conf, err) < 0 || worker_route_configure(w, conf, err) < 0)
        return -1;
    /* What the app granted under the old configuration is asked for again. */
    worker_cache_clear(w);
    if (w->sample_ns != 0) /* a new stats_interval applies from now */
        uv_timer_start(&w->sample_timer, w->sample_timer.timer_cb,
                       (uint64_t)conf->stats_interval_ms, (uint64_t)conf->stats_interval_ms);
    return 0;
}

static void channel(qd_child *c, qd_role role, uint32_t instance, int fd)
{
    worker *w = &the_worker;

    if (role == QD_ROLE_LISTENER) {
        qd_chan_close(w->listener);
        w->listener = qd_chan_open(c->loop, fd, "listener", on_listener_msg, on_listener_close, w);
    } else if (role == QD_ROLE_APP) {
        qd_chan_close(w->app);
        w->app = qd_chan_open(c->loop, fd, "app", on_app_msg, on_app_close, w);
        qd_info("connected to the app");
        for (size_t i = 0; i < w->nep; i++)
            worker_tcp_listen(w, &w->eps[i]); /* if it waited for the app */
    } else if (role == QD_ROLE_UPSTREAM) {
        worker_upstream_channel(w, fd);
    } else {
        qd_warn("channel to %s is not for me; closing it", qd_role_name(role));
        close(fd);
    }
}

/* on_stop_tick - close drained connections; exit when none is left */
static void on_stop_tick(uv_timer_t *t)
{
    worker *w = t->data;
    bool force = worker_now() >= w->stop_deadline_ns;

    worker_conn_close_all(w, force);
    bool accepting = worker_tcp_close_all(w, force);
    if (force)
        worker_conn_free_all(w); /* their closing periods would outlast the deadline */
    worker_rec_flush(w); /* the records of the connections just closed */
    if (w->conns == NULL && w->tconns == NULL && !accepting) {
        worker_metrics_send(w, true); /* the last totals: nothing this worker counted is lost */
        qd_child_exit(&w->child, 0);
    }
}

static void stop(qd_child *c, uint32_t deadline_ms)
{
    worker *w = &the_worker;

    if (w->stopping)
        return;
    w->stopping = true;
    w->stop_deadline_ns = worker_now() + (uint64_t)deadline_ms * 1000000ULL;
    qd_info("stopping: %u connection%s to drain within %ums (%u QUIC, %u TCP)",
            w->connections + w->tcp_count, w->connections + w->tcp_count == 1 ? "" : "s",
            deadline_ms, w->connections, w->tcp_count);
    for (size_t i = 0; i < w->nep; i++)
        qd_uv_unwatch(&w->eps[i].poll), w->eps[i].poll = NULL;
    /* Keep reading: closing connections need their peers' packets. */
    for (size_t i = 0; i < w->nep; i++)
        if (w->eps[i].fd >= 0)
            worker_io_start(w, &w->eps[i]);
    worker_conn_shutdown_all(w);
    worker_tcp_shutdown_all(w);
    worker_app_finish_all(w);
    uv_timer_init(c->loop, &w->stop_timer);
    w->stop_timer.data = w;
    uv_timer_start(&w->stop_timer, on_stop_tick, 50, 50);
}

static void status(qd_child *c, qd_ipc_msg *m)
{
    worker *w = &the_worker;
    uint32_t streams = 0;

    for (wk_conn *k = w->conns; k != NULL; k = k->next)
        streams += k->nstreams;
    for (wk_conn *k = w->tconns; k != NULL; k = k->next)
        streams += k->nstreams;
    worker_upstream_counts(w); /* quicctl upstreams shows them (the upstream daemon) */
    /* retry = auto notices a quiet second here even when no Initial arrives */
    bool retry = worker_accept_retry_tick(w);
    /* Live connections: those in their closing or draining period are gone for clients. */
    qd_ipc_put_u32(m, QD_F_CONNECTIONS, w->connections - w->closing);
    qd_ipc_put_u32(m, QD_F_STREAMS, streams);
    qd_ipc_put_u32(m, QD_F_FLAGS, retry ? QD_STATUS_F_RETRY : 0);
    qd_ipc_put_u32(m, QD_F_SOCKETS, (uint32_t)w->nep);
    qd_ipc_put_u64(m, QD_F_DROPS, w->app_send_failures);
    qd_ipc_put_u32(m, QD_F_HALF_OPEN, (uint32_t)w->half_open);
    qd_ipc_put_u32(m, QD_F_NEW_CONNS, w->rate_last > UINT32_MAX ? UINT32_MAX : (uint32_t)w->rate_last);
    qd_ipc_put_u64(m, QD_F_RETRIES, w->retries_sent);
    qd_ipc_put_u64(m, QD_F_RETRY_DROPS, w->initials_dropped);
    qd_ipc_put_u32(m, QD_F_TCP_CONNS, w->tcp_count);
    qd_ipc_put_u64(m, QD_F_UDP_SEND_ERRORS, w->udp_send_errors);
    qd_ipc_put_u64(m, QD_F_UDP_EMSGSIZE, w->udp_emsgsize);
    qd_ipc_put_u64(m, QD_F_CLOSED_HEADERS, w->guard_closed[WK_GUARD_HEADERS]);
    qd_ipc_put_u64(m, QD_F_CLOSED_RESETS, w->guard_closed[WK_GUARD_RESETS]);
    qd_ipc_put_u64(m, QD_F_CLOSED_FLOODS, w->guard_closed[WK_GUARD_FLOOD]);
    qd_ipc_put_u64(m, QD_F_CLOSED_PROTOCOL, w->guard_closed[WK_GUARD_PROTOCOL]);
    int rcv = 0, snd = 0;
    worker_io_buffers(w, &rcv, &snd);
    qd_ipc_put_u64(m, QD_F_UDP_RXQ_DROPS, worker_io_rxq_drops(w));
    qd_ipc_put_u32(m, QD_F_UDP_RCVBUF, (uint32_t)(rcv > 0 ? rcv : 0));
    qd_ipc_put_u32(m, QD_F_UDP_SNDBUF, (uint32_t)(snd > 0 ? snd : 0));
    qd_ipc_put_u64(m, QD_F_PROXIED, w->proxied);
    qd_ipc_put_u64(m, QD_F_PROXY_ERRORS, w->proxy_errors);
    qd_ipc_put_u64(m, QD_F_PROXY_RETRIES, w->proxy_retries);
    worker_metrics_put(w, m); /* its running totals, for quicctl status and top */
}

/* message - TLS_FILES, LOG_FD, and CONNS_REQ: list live connections on its channel */
static void message(qd_child *c, qd_ipc_msg *m)
{
    worker *w = &the_worker;
    int fd;

    if (m->type == QD_MSG_TLS_FILES) { /* for the CONFIG that follows */
        for (int i = 0; i < 2; i++) {
            if (w->tls_fds[i] >= 0)
                close(w->tls_fds[i]);
            w->tls_fds[i] = m->fd_count == 2 ? qd_ipc_msg_take_fd(m, i) : -1;
        }
        return;
    }
    if (m->type == QD_MSG_PROXY_TABLE) { /* for the CONFIG that follows (worker_route.c) */
        uint32_t flags = 0;
        qd_ipc_get_u32(m, QD_F_FLAGS, &flags);
        if (w->proxy_fd >= 0)
            close(w->proxy_fd);
        if (w->proxy_ca_fd >= 0)
            close(w->proxy_ca_fd);
        uint32_t i = 0;
        w->proxy_fd = (flags & QD_PROXY_F_TABLE) && i < m->fd_count ? qd_ipc_msg_take_fd(m, i++) : -1;
        w->proxy_ca_fd = (flags & QD_PROXY_F_CA) && i < m->fd_count ? qd_ipc_msg_take_fd(m, i++) : -1;
        return;
    }
    if (m->type == QD_MSG_LOG_FD) { /* after each CONFIG: the fast path's access log */
        if (w->access_fd >= 0)
            close(w->access_fd);
        w->access_fd = m->fd_count == 1 ? qd_ipc_msg_take_fd(m, 0) : -1;
        return;
    }
    if (m->type != QD_MSG_CONNS_REQ || (fd = qd_ipc_msg_take_fd(m, 0)) < 0) {
        qd_child_bad_message(c, "master", QD_ERR_UNKNOWN);
        return;
    }
    worker_rec_conns(&the_worker, fd); /* takes fd */
}

/* on_check - after each loop iteration's I/O: write what the app's messages caused */
static void on_check(uv_check_t *h)
{
    worker_conn_flush_dirty(h->data);
}

static void started(qd_child *c)
{
    worker *w = &the_worker;

    w->started_ms = qd_time_real_ms();
    worker_rec_start(w);
    worker_mem_start(c->loop); /* gives back what ngtcp2 and nghttp3 no longer need */
    uv_check_init(c->loop, &w->flush_check);
    w->flush_check.data = w;
    uv_check_start(&w->flush_check, on_check);
    uv_unref((uv_handle_t *)&w->flush_check); /* it never keeps the loop alive */
}

static const qd_child_ops ops = {
    .configure = configure,
    .started = started,
    .message = message,
    .jail = qd_child_jail_empty,
    .channel = channel,
    .stop = stop,
    .status = status,
};

int main(int argc, char **argv)
{
    worker *w = &the_worker;

    for (size_t i = 0; i < WORKER_MAX_SOCKETS; i++)
        w->eps[i].fd = w->eps[i].tcp_fd = -1;
    w->tls_fds[0] = w->tls_fds[1] = -1;
    w->access_fd = -1;
    w->proxy_fd = w->proxy_ca_fd = -1;
    if (qd_random(&w->cache.seed, sizeof(w->cache.seed)) < 0)
        w->cache.seed = (uint64_t)(uintptr_t)w ^ 0x9e3779b97f4a7c15ULL;
    wk_map_init(&w->cids);
    wk_map_init(&w->streams);
    wk_map_init(&w->asks);
    qd_proxy_init(&w->routes);
    qd_child_init(&w->child, QD_ROLE_WORKER, argc, argv, &ops, w);
    return qd_child_run(&w->child);
}
