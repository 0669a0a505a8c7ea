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
 *	connection itself. Its metrics (qd_metrics.def: socket sets handed
 *	over, datagrams relayed, steering updates, sockets open) go to stats
 *	through qd_child every stats_interval.
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

/* Relayed datagrams wait in a worker's channel up to this; more are dropped. */
#define LISTENER_RELAY_QUEUE (256 * 1024)

static listener the_listener;

/* drop_worker - forget a worker's channel (its sockets stay open) */
static void drop_worker(listener_worker *w)
{
    qd_chan_close(w->ch);
    w->ch = NULL;
}

/*
 * relay_new - a new connection's packet that a draining worker got: to a
 * worker of the generation taking new connections on that address, the
 * one the steering program would have chosen (so that every packet of
 * the client's first flight reaches the same worker). Returns the worker
 * id, or -1 (none, or the sender's own generation: dropped).
 */
static int relay_new(listener *l, qd_ipc_msg *m, uint32_t sender)
{
    char name[80];
    const uint8_t *body;
    size_t len;
    uint8_t cur[LISTENER_MAX_SLOTS];
    listener_group *g;
    int n;

    if (qd_ipc_get_str(m, QD_F_ADDR, name, sizeof(name)) < 0 ||
        qd_ipc_get_bytes(m, QD_F_BODY, &body, &len) < 0 || (g = listener_group_find(l, name)) == NULL ||
        (n = listener_current(l, g, false, cur)) == 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (cur[i] == sender)
            return -1;
    return cur[listener_hash(body, len) % (uint32_t)n];
}

/*
 * relay - pass a datagram one worker received for another worker's CID to
 * that worker. Best effort: a full channel drops it (QUIC retransmits).
 */
static void relay(qd_ipc_msg *m)
{
    listener *l = &the_listener;
    uint32_t owner, flags = 0;

    qd_ipc_get_u32(m, QD_F_FLAGS, &flags);
    if (qd_ipc_get_u32(m, QD_F_INSTANCE, &owner) < 0 || owner >= LISTENER_MAX_SLOTS) {
        l->relay_dropped++;
        return;
    }
    if (flags & QD_FWD_F_NEW) {
        int to = relay_new(l, m, owner);
        if (to < 0) {
            l->relay_dropped++;
            return;
        }
        owner = (uint32_t)to;
    }
    qd_chan *ch = l->workers[owner].ch;
    if (ch == NULL || qd_chan_queued(ch) > LISTENER_RELAY_QUEUE || qd_chan_send(ch, m) < 0) {
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

/* on_worker_msg - a message from a worker */
static void on_worker_msg(qd_chan *ch, qd_ipc_msg *m)
{
    if (m->type == QD_MSG_FWD_PACKET)
        relay(m);
    else
        qd_child_bad_message(&the_listener.child, ch->name, QD_ERR_UNKNOWN);
}

/* on_worker_close - the worker is gone (its successor gets a new channel) */
static void on_worker_close(qd_chan *ch)
{
    listener_worker *w = ch->data;

    w->ch = NULL;
}

static int configure(qd_child *c, const qd_conf *conf, bool first, qd_buf *err)
{
    if (!first)
        return 0; /* keys the listener uses are not reloadable: a new listener applies them */
    return listener_sock_open_all(&the_listener, conf, err);
}

static void channel(qd_child *c, qd_role role, uint32_t instance, int fd)
{
    listener *l = &the_listener;

    if (role != QD_ROLE_WORKER || instance >= LISTENER_MAX_SLOTS) {
        qd_warn("channel to %s[%u] is not for me; closing it", qd_role_name(role), instance);
        close(fd);
        return;
    }
    listener_worker *w = &l->workers[instance];
    char name[32];
    drop_worker(w);
    snprintf(name, sizeof(name), "worker[%u]", instance);
    w->ch = qd_chan_open(c->loop, fd, name, on_worker_msg, on_worker_close, w);
    l->handoffs[listener_sock_send(l, (int)instance) < 0 ? QD_MV_FAILED : QD_MV_OK]++;
}

static void status(qd_child *c, qd_ipc_msg *m)
{
    qd_ipc_put_u32(m, QD_F_SOCKETS, (uint32_t)the_listener.open_sockets);
    qd_ipc_put_u64(m, QD_F_DROPS, the_listener.relay_dropped); /* relays a channel refused */
}

/* metrics - the listener's running totals and its sockets, for stats */
static void metrics(qd_child *c, qd_metrics *m)
{
    const listener *l = &the_listener;

    (void)c;
    for (unsigned r = 0; r < 2; r++) {
        m->v[QD_M1(LISTENER_HANDOFFS, r)] = l->handoffs[r];
        m->v[QD_M1(LISTENER_STEERING, r)] = l->steering[r];
    }
    m->v[QD_M1(LISTENER_RELAYED, QD_MV_RELAY_OK)] = l->relayed;
    m->v[QD_M1(LISTENER_RELAYED, QD_MV_RELAY_DROPPED)] = l->relay_dropped;
    m->v[QD_M1(LISTENER_SOCKETS, QD_MV_QUIC)] = l->open_sockets - l->tcp_sockets;
    m->v[QD_M1(LISTENER_SOCKETS, QD_MV_TCP)] = l->tcp_sockets;
}

/*
 * layout - the master's QD_MSG_LAYOUT: before our first configuration it
 * says what to open; later ones switch the steering programs (a new
 * generation takes the new connections) and close what no generation
 * serves any more. Answered with the same type and id.
 */
static void layout(qd_child *c, qd_ipc_msg *m)
{
    qd_buf err;
    int rv;

    qd_buf_init(&err);
    rv = listener_layout(&the_listener, m, &err);
    if (rv == 0 && c->configured)
        rv = listener_apply(&the_listener, &err);
    if (c->configured)
        the_listener.steering[rv < 0 ? QD_MV_FAILED : QD_MV_OK]++;
    if (rv < 0)
        qd_err("layout of the worker generations: %s", qd_buf_str(&err));
    else if (c->configured)
        qd_info("steering follows the layout of %d generation%s", the_listener.ngens,
                the_listener.ngens == 1 ? "" : "s");
    qd_ipc_msg *ack = qd_child_msg(c, QD_MSG_LAYOUT, m->id);
    qd_ipc_put_u32(ack, QD_F_STATUS, rv < 0 ? 1 : 0);
    if (rv < 0)
        qd_ipc_put_str(ack, QD_F_TEXT, qd_buf_str(&err));
    qd_child_queue(c);
    qd_buf_release(&err);
}

/* message - the master returns a predecessor's sockets before our first
 * config, and sends the layout of the worker generations */
static void message(qd_child *c, qd_ipc_msg *m)
{
    if (m->type == QD_MSG_SOCKETS && !c->configured)
        listener_sock_escrowed(&the_listener, m);
    else if (m->type == QD_MSG_LAYOUT)
        layout(c, m);
    else
        qd_child_bad_message(c, "master", QD_ERR_UNKNOWN);
}

static const qd_child_ops ops = {
    .configure = configure,
    .message = message,
    .jail = qd_child_jail_empty,
    .channel = channel,
    .status = status,
    .metrics = metrics,
};

int main(int argc, char **argv)
{
    qd_child_init(&the_listener.child, QD_ROLE_LISTENER, argc, argv, &ops, &the_listener);
    return qd_child_run(&the_listener.child);
}
