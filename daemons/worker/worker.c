/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker - one QUIC/HTTP/3 engine per CPU
 * SYNOPSIS
 *	worker -i instance -g generation [-l dest] [-v level] (started by quicd)
 * DESCRIPTION
 *	Pins itself to its CPU, receives its configuration from the master,
 *	drops privileges into an empty chroot (it owns no files), and gets
 *	everything else over channels: its UDP sockets from the listener
 *	(QD_MSG_SOCKETS, which replace any earlier set) and a channel to the
 *	app. It reports its live connection count to the master every second.
 * DIAGNOSTICS
 *	Malformed messages are logged (rate-limited) and dropped.
 */
#include "config.h"

/* system */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"
#include "qd_uv.h"

/* local */
#include "worker.h"

static worker the_worker;
static qd_ipc_msg in_msg;

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

/* peer_down - close a peer channel */
static void peer_down(worker_peer *p)
{
    qd_uv_unwatch(&p->poll);
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
}

/* take_sockets - a new set of UDP sockets from the listener */
static void take_sockets(worker *w, qd_ipc_msg *m)
{
    size_t pos = 0, i = 0, len;
    uint16_t tag;
    const uint8_t *val;

    /* The first message of a set replaces the old set. */
    if (m->id == 0) {
        for (size_t k = 0; k < w->sock_count; k++)
            close(w->socks[k]);
        w->sock_count = 0;
    }
    while (qd_ipc_next(m, &pos, &tag, &val, &len)) {
        if (tag != QD_F_ADDR || i >= m->fd_count || w->sock_count >= WORKER_MAX_SOCKETS)
            continue;
        int fd = qd_ipc_msg_take_fd(m, i++);
        snprintf(w->sock_names[w->sock_count], sizeof(w->sock_names[0]), "%.*s",
                 (int)(len < 79 ? len : 79), (const char *)val);
        w->socks[w->sock_count++] = fd;
    }
    qd_info("have %zu UDP socket%s from the listener", w->sock_count,
            w->sock_count == 1 ? "" : "s");
}

/* on_listener - sockets from the listener */
static void on_listener(uv_poll_t *p, int status, int events)
{
    worker *w = p->data;
    int rv = qd_ipc_recv(w->listener.fd, &in_msg);

    if (rv == QD_ERR_AGAIN)
        return;
    if (rv == QD_ERR_EOF || rv == QD_ERR_IO) {
        qd_info("listener channel closed; keeping my sockets");
        peer_down(&w->listener);
        return;
    }
    if (rv < 0) {
        qd_child_bad_message(&w->child, "listener", rv);
        return;
    }
    if (in_msg.type == QD_MSG_SOCKETS)
        take_sockets(w, &in_msg);
    else
        qd_child_bad_message(&w->child, "listener", QD_ERR_UNKNOWN);
    qd_ipc_msg_close_fds(&in_msg);
}

/* on_app - the app channel */
static void on_app(uv_poll_t *p, int status, int events)
{
    worker *w = p->data;
    int rv = qd_ipc_recv(w->app.fd, &in_msg);

    if (rv == QD_ERR_AGAIN)
        return;
    if (rv == QD_ERR_EOF || rv == QD_ERR_IO) {
        qd_warn("app channel closed; waiting for the master to connect a new app");
        peer_down(&w->app);
        return;
    }
    if (rv < 0) {
        qd_child_bad_message(&w->child, "app", rv);
        return;
    }
    qd_child_bad_message(&w->child, "app", QD_ERR_UNKNOWN);
    qd_ipc_msg_close_fds(&in_msg);
}

static int configure(qd_child *c, const qd_conf *conf, bool first, qd_buf *err)
{
    if (first)
        pin_cpu(c->instance < 0 ? 0 : c->instance);
    return 0;
}

static const char *jail(qd_child *c, const qd_conf *conf)
{
    static char path[4096];

    if (!conf->chroot)
        return NULL;
    snprintf(path, sizeof(path), "%s/empty", conf->runtime_directory);
    return path;
}

static void channel(qd_child *c, qd_role role, uint32_t instance, int fd)
{
    worker *w = &the_worker;
    worker_peer *p;
    uv_poll_cb cb;

    if (role == QD_ROLE_LISTENER) {
        p = &w->listener;
        cb = on_listener;
    } else if (role == QD_ROLE_APP) {
        p = &w->app;
        cb = on_app;
        qd_info("connected to the app");
    } else {
        qd_warn("channel to %s is not for me; closing it", qd_role_name(role));
        close(fd);
        return;
    }
    peer_down(p);
    p->fd = fd;
    p->poll = qd_uv_watch(c->loop, fd, UV_READABLE | UV_DISCONNECT, cb, w);
}

static void status(qd_child *c, qd_ipc_msg *m)
{
    qd_ipc_put_u32(m, QD_F_CONNECTIONS, the_worker.connections);
    qd_ipc_put_u32(m, QD_F_SOCKETS, (uint32_t)the_worker.sock_count);
}

static const qd_child_ops ops = {
    .configure = configure,
    .jail = jail,
    .channel = channel,
    .status = status,
};

int main(int argc, char **argv)
{
    the_worker.listener.fd = -1;
    the_worker.app.fd = -1;
    qd_child_init(&the_worker.child, QD_ROLE_WORKER, argc, argv, &ops, &the_worker);
    return qd_child_run(&the_worker.child);
}
