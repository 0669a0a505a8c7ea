/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	listener - owns the UDP and TCP sockets and hands them to the workers
 * SYNOPSIS
 *	listener -g generation [-l stderr|syslog] [-v level] (started by quicd)
 * DESCRIPTION
 *	Opens every UDP socket, and with tcp = yes every TCP listen socket,
 *	at start while privileged (listener_sock.c), drops privileges into
 *	an empty chroot, and then serves the workers:
 *	whenever the master connects a worker (QD_MSG_CHANNEL) the listener
 *	sends it its sockets. The listener never reads a packet nor accepts a
 *	connection itself.
 * DIAGNOSTICS
 *	Unexpected messages from a worker are logged and dropped.
 */
#include "config.h"

/* system */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"
#include "qd_uv.h"

/* local */
#include "listener.h"

static listener the_listener;
static qd_ipc_msg in_msg;

/* drop_worker - forget a worker's channel (its sockets stay open) */
static void drop_worker(listener_worker *w)
{
    qd_uv_unwatch(&w->poll);
    if (w->channel_fd >= 0) {
        close(w->channel_fd);
        w->channel_fd = -1;
    }
}

/*
 * relay - pass a datagram one worker received for another worker's CID to
 * that worker. Best effort: a full channel drops it (QUIC retransmits).
 */
static void relay(qd_ipc_msg *m)
{
    listener *l = &the_listener;
    uint32_t owner;

    if (qd_ipc_get_u32(m, QD_F_INSTANCE, &owner) < 0 || (int)owner >= l->worker_count ||
        l->workers[owner].channel_fd < 0) {
        l->relay_dropped++;
        return;
    }
    if (qd_ipc_send(l->workers[owner].channel_fd, m) < 0) {
        l->relay_dropped++;
        return;
    }
    /* Powers of two: say it, without a line per packet. */
    l->relayed++;
    if ((l->relayed & (l->relayed - 1)) == 0)
        qd_notice("relayed %llu packets to the worker that owns their connection "
                  "(steering and socket group disagree; %llu dropped)",
                  (unsigned long long)l->relayed, (unsigned long long)l->relay_dropped);
}

/* on_worker - a worker's channel is readable or closed */
static void on_worker(uv_poll_t *p, int status, int events)
{
    listener_worker *w = p->data;
    int rv = qd_ipc_recv(w->channel_fd, &in_msg);

    if (rv == QD_ERR_AGAIN)
        return;
    if (rv == QD_ERR_EOF || rv == QD_ERR_IO) {
        drop_worker(w);
        return;
    }
    if (rv < 0) {
        qd_child_bad_message(&the_listener.child, "worker", rv);
        return;
    }
    if (in_msg.type == QD_MSG_FWD_PACKET)
        relay(&in_msg);
    else
        qd_child_bad_message(&the_listener.child, "worker", QD_ERR_UNKNOWN);
    qd_ipc_msg_close_fds(&in_msg);
}

static int configure(qd_child *c, const qd_conf *conf, bool first, qd_buf *err)
{
    if (!first)
        return 0; /* listen and workers changes replace the listener */
    return listener_sock_open_all(&the_listener, conf, err);
}

static void channel(qd_child *c, qd_role role, uint32_t instance, int fd)
{
    listener *l = &the_listener;

    if (role != QD_ROLE_WORKER || (int)instance >= l->worker_count) {
        qd_warn("channel to %s[%u] is not for me; closing it", qd_role_name(role), instance);
        close(fd);
        return;
    }
    listener_worker *w = &l->workers[instance];
    drop_worker(w);
    /* Relayed datagrams must never block the listener. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    w->channel_fd = fd;
    w->poll = qd_uv_watch(c->loop, fd, UV_READABLE | UV_DISCONNECT, on_worker, w);
    listener_sock_send(l, (int)instance);
}

static void status(qd_child *c, qd_ipc_msg *m)
{
    qd_ipc_put_u32(m, QD_F_SOCKETS, (uint32_t)the_listener.open_sockets);
    qd_ipc_put_u64(m, QD_F_DROPS, the_listener.relay_dropped); /* relays a channel refused */
}

/* message - the master returns a predecessor's sockets before our first config */
static void message(qd_child *c, qd_ipc_msg *m)
{
    if (m->type == QD_MSG_SOCKETS && !c->configured)
        listener_sock_escrowed(&the_listener, m);
    else
        qd_child_bad_message(c, "master", QD_ERR_UNKNOWN);
}

static const qd_child_ops ops = {
    .configure = configure,
    .message = message,
    .jail = qd_child_jail_empty,
    .channel = channel,
    .status = status,
};

int main(int argc, char **argv)
{
    qd_child_init(&the_listener.child, QD_ROLE_LISTENER, argc, argv, &ops, &the_listener);
    return qd_child_run(&the_listener.child);
}
