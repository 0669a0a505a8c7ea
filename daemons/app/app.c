/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	app - the HTTP application process
 * SYNOPSIS
 *	app -g generation [-l dest] [-v level] (started by quicd)
 * DESCRIPTION
 *	Runs unprivileged, chrooted to document_root when chroot = yes, and
 *	keeps one SOCK_SEQPACKET channel per worker, handed over by the
 *	master whenever either side (re)starts. A worker channel that closes
 *	is forgotten until the master connects that worker again.
 * DIAGNOSTICS
 *	Malformed or unexpected messages are logged (rate-limited) and dropped.
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"
#include "qd_uv.h"

/* local */
#include "app.h"

static app the_app;
static qd_ipc_msg in_msg;

/* drop_worker - forget one worker's channel */
static void drop_worker(app_worker *w)
{
    qd_uv_unwatch(&w->poll);
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
        the_app.connected--;
    }
}

/* on_worker - a message from a worker, or its channel closing */
static void on_worker(uv_poll_t *p, int status, int events)
{
    app_worker *w = p->data;
    int rv = qd_ipc_recv(w->fd, &in_msg);

    if (rv == QD_ERR_AGAIN)
        return;
    if (rv == QD_ERR_EOF || rv == QD_ERR_IO) {
        drop_worker(w);
        return;
    }
    if (rv < 0) {
        qd_child_bad_message(&the_app.child, "worker", rv);
        return;
    }
    qd_child_bad_message(&the_app.child, "worker", QD_ERR_UNKNOWN);
    qd_ipc_msg_close_fds(&in_msg);
}

static const char *jail(qd_child *c, const qd_conf *conf)
{
    return conf->chroot ? conf->document_root : NULL;
}

static void channel(qd_child *c, qd_role role, uint32_t instance, int fd)
{
    if (role != QD_ROLE_WORKER || instance >= APP_MAX_WORKERS) {
        qd_warn("channel to %s[%u] is not for me; closing it", qd_role_name(role), instance);
        close(fd);
        return;
    }
    app_worker *w = &the_app.workers[instance];
    drop_worker(w);
    w->fd = fd;
    the_app.connected++;
    w->poll = qd_uv_watch(c->loop, fd, UV_READABLE | UV_DISCONNECT, on_worker, w);
}

static const qd_child_ops ops = {
    .jail = jail,
    .channel = channel,
};

int main(int argc, char **argv)
{
    for (int i = 0; i < APP_MAX_WORKERS; i++)
        the_app.workers[i].fd = -1;
    qd_child_init(&the_app.child, QD_ROLE_APP, argc, argv, &ops, &the_app);
    return qd_child_run(&the_app.child);
}
