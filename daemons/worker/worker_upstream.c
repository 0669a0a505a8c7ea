/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_upstream - the worker's channel to the upstream daemon
 * SYNOPSIS
 *	worker_upstream_channel(), worker_upstream_ask(),
 *	worker_upstream_forget(), worker_upstream_report()
 * DESCRIPTION
 *	The worker asks the upstream daemon only for a new connection
 *	(QD_MSG_UP_CONNECT; a kept-alive one costs no message): the daemon
 *	connects, with the group's connect timeout, and hands the socket
 *	over (QD_MSG_UP_CONNECTED). Its broadcasts (QD_MSG_UP_STATE) say
 *	which servers are down; a lower sequence number than one already
 *	seen is ignored. What requests see goes back as QD_MSG_UP_REPORT:
 *	timeouts and broken answers at once, a success only after a failure
 *	(so the daemon's passive counts start over, without a message per
 *	request).
 *
 *	Without the daemon (it restarts) asks wait, unsent, until the master
 *	connects the new one; asks in flight when it went away are sent
 *	again. Each ask has its request's connect deadline
 *	(worker_proxy.c), so none waits forever.
 * DIAGNOSTICS
 *	A malformed message is logged (rate-limited) and dropped; a reply to
 *	an ask that is gone closes its socket.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"

/* local */
#include "worker.h"


/* send_ask - UP_CONNECT for |px| (its server is px->sv) */
static void send_ask(worker *w, wk_proxy *px)
{
    px->ask_sent = false;
    if (w->upstream == NULL)
        return; /* asked again when the daemon's successor connects */
    qd_ipc_msg *m = qd_chan_msg(w->upstream, QD_MSG_UP_CONNECT, 0);
    qd_ipc_put_u64(m, QD_F_STREAM, px->ask);
    qd_ipc_put_str(m, QD_F_GROUP, px->g != NULL ? px->g->conf.name : "");
    qd_ipc_put_str(m, QD_F_SERVER, px->sv->name);
    px->ask_sent = qd_chan_queue_ctl(w->upstream) == 0;
}

int worker_upstream_ask(worker *w, wk_proxy *px)
{
    px->ask = ++w->next_ask;
    if (wk_map_put(&w->asks, (const uint8_t *)&px->ask, sizeof(px->ask), px) < 0) {
        px->ask = 0;
        return -1;
    }
    send_ask(w, px);
    return 0;
}

void worker_upstream_forget(worker *w, wk_proxy *px)
{
    if (px->ask != 0)
        wk_map_del(&w->asks, (const uint8_t *)&px->ask, sizeof(px->ask));
    px->ask = 0;
    px->ask_sent = false;
}

void worker_upstream_report(worker *w, wk_upserver *sv, int result)
{
    if (result == QD_UP_RESULT_OK && !sv->failed)
        return;
    sv->failed = result != QD_UP_RESULT_OK;
    if (result != QD_UP_RESULT_OK)
        sv->fails++;
    if (w->upstream == NULL || sv->g == NULL)
        return;
    qd_ipc_msg *m = qd_chan_msg(w->upstream, QD_MSG_UP_REPORT, 0);
    qd_ipc_put_str(m, QD_F_GROUP, sv->g->conf.name);
    qd_ipc_put_str(m, QD_F_SERVER, sv->name);
    qd_ipc_put_u32(m, QD_F_STATUS, (uint32_t)result);
    qd_chan_queue_ctl(w->upstream);
}

/* on_connected - the daemon's answer to an ask */
static void on_connected(worker *w, qd_ipc_msg *m)
{
    uint64_t id = 0;
    uint32_t status = 0;
    const char *why = NULL;
    size_t wlen = 0;

    if (qd_ipc_get_u64(m, QD_F_STREAM, &id) < 0 || qd_ipc_get_u32(m, QD_F_STATUS, &status) < 0 ||
        (status == 0) != (m->fd_count == 1)) {
        qd_child_bad_message(&w->child, "upstream", QD_ERR_INVAL);
        return;
    }
    qd_ipc_get_bytes(m, QD_F_TEXT, (const uint8_t **)&why, &wlen);
    char text[128];
    snprintf(text, sizeof(text), "%.*s", (int)wlen, why != NULL ? why : "");
    wk_proxy *px = wk_map_get(&w->asks, (const uint8_t *)&id, sizeof(id));
    int fd = status == 0 ? qd_ipc_msg_take_fd(m, 0) : -1;
    if (px == NULL) {
        if (fd >= 0)
            close(fd); /* the request went away meanwhile */
        return;
    }
    worker_upstream_forget(w, px);
    worker_proxy_connected(px, px->sv, fd, (int)status, text[0] ? text : strerror((int)status));
}

/* on_state - servers up and down */
static void on_state(worker *w, qd_ipc_msg *m)
{
    uint64_t seq = 0;
    size_t pos = 0, len;
    uint16_t tag;
    const uint8_t *val;
    char group[QD_PROXY_NAME_MAX], server[QD_PROXY_SERVER_NAME_MAX];

    if (qd_ipc_get_u64(m, QD_F_SEQ, &seq) < 0) {
        qd_child_bad_message(&w->child, "upstream", QD_ERR_INVAL);
        return;
    }
    if (seq < w->up_seq)
        return; /* older than what we know */
    w->up_seq = seq;
    group[0] = server[0] = '\0';
    while (qd_ipc_next(m, &pos, &tag, &val, &len)) {
        if (tag == QD_F_GROUP) {
            snprintf(group, sizeof(group), "%.*s", (int)len, (const char *)val);
        } else if (tag == QD_F_SERVER) {
            snprintf(server, sizeof(server), "%.*s", (int)len, (const char *)val);
        } else if (tag == QD_F_STATUS && len == 4) {
            uint32_t st = (uint32_t)val[0] << 24 | (uint32_t)val[1] << 16 | (uint32_t)val[2] << 8 | val[3];
            wk_upserver *sv = worker_route_find(w, group, server);
            if (sv == NULL)
                continue; /* not in our table (a reload on its way) */
            bool down = st == QD_UP_STATE_DOWN;
            if (down != sv->down)
                qd_debug("upstream %s server %s is %s", group, server, down ? "down" : "up");
            sv->down = down;
            sv->seq = seq;
            if (!down) {
                sv->failed = false; /* the daemon starts its count over */
                worker_proxy_wake(w, sv->g);
            } else {
                while (sv->idle != NULL) /* nothing new goes there */
                    worker_upconn_close(sv->idle);
            }
        }
    }
}

static void on_msg(qd_chan *ch, qd_ipc_msg *m)
{
    worker *w = ch->data;

    if (m->type == QD_MSG_UP_CONNECTED)
        on_connected(w, m);
    else if (m->type == QD_MSG_UP_STATE)
        on_state(w, m);
    else
        qd_child_bad_message(&w->child, "upstream", QD_ERR_UNKNOWN);
}

/* resend - every ask not answered goes (again) to a new daemon */
static void resend(worker *w)
{
    for (size_t i = 0; i < w->asks.nslots; i++)
        for (wk_map_entry *e = w->asks.slots[i]; e != NULL; e = e->next)
            send_ask(w, e->value);
}

static void on_close(qd_chan *ch)
{
    worker *w = ch->data;

    qd_warn("upstream daemon channel closed; new upstream connections wait for the next one");
    w->upstream = NULL;
    for (size_t i = 0; i < w->asks.nslots; i++)
        for (wk_map_entry *e = w->asks.slots[i]; e != NULL; e = e->next)
            ((wk_proxy *)e->value)->ask_sent = false;
}

/* counts_begin - a new UP_COUNTS message in the channel */
static qd_ipc_msg *counts_begin(worker *w)
{
    qd_ipc_msg *m = qd_chan_msg(w->upstream, QD_MSG_UP_COUNTS, 0);

    qd_ipc_put_u32(m, QD_F_INSTANCE, (uint32_t)(w->child.instance < 0 ? 0 : w->child.instance));
    return m;
}

/* counts_put - one server's entry; -1 when the message is full */
static int counts_put(qd_ipc_msg *m, const wk_upgroup *g, const wk_upserver *sv)
{
    uint32_t len = m->len;

    if (qd_ipc_put_str(m, QD_F_GROUP, g->conf.name) < 0 ||
        qd_ipc_put_str(m, QD_F_SERVER, sv->name) < 0 ||
        qd_ipc_put_u32(m, QD_F_UP_ACTIVE, sv->conns - sv->nidle) < 0 ||
        qd_ipc_put_u32(m, QD_F_UP_IDLE, sv->nidle) < 0 ||
        qd_ipc_put_u64(m, QD_F_REQUESTS, sv->requests) < 0 ||
        qd_ipc_put_u64(m, QD_F_UP_FAILS, sv->fails) < 0) {
        m->len = len; /* no half entry */
        return -1;
    }
    return 0;
}

/* worker_upstream_counts - this worker's connections and requests per server (every second) */
void worker_upstream_counts(worker *w)
{
    if (w->upstream == NULL || w->routes.ngroups == 0)
        return;
    qd_ipc_msg *m = counts_begin(w);
    for (size_t i = 0; i < w->routes.ngroups; i++) {
        const wk_upgroup *g = w->upgroups[i];
        for (size_t j = 0; j < g->nservers; j++)
            if (counts_put(m, g, g->servers[j]) < 0) {
                qd_chan_queue(w->upstream); /* full: send it, the entry starts the next */
                m = counts_begin(w);
                counts_put(m, g, g->servers[j]);
            }
    }
    qd_chan_queue(w->upstream);
}

void worker_upstream_channel(worker *w, int fd)
{
    qd_chan_close(w->upstream);
    w->upstream = qd_chan_open(w->child.loop, fd, "upstream", on_msg, on_close, w);
    w->up_seq = 0; /* a new daemon numbers from its own start */
    qd_info("connected to the upstream daemon");
    resend(w);
}
