/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	app_harness - the app's request handling on a real channel, for tests
 * SYNOPSIS
 *	app_harness_open(), app_harness_fill(), app_harness_close()
 * DESCRIPTION
 *	See app_harness.h. Also defines app_exit_if_idle, the one function
 *	of daemons/app/app.c (the daemon's main) that app_req.c calls.
 */
#include "config.h"

/* system */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* libshared */
#include "qd_err.h"

/* local */
#include "app_harness.h"

void app_exit_if_idle(app *a)
{
    (void)a;
}

/* on_msg, on_drain, on_close - the channel callbacks, as app.c sets them */
static void on_msg(qd_chan *ch, qd_ipc_msg *m)
{
    app_req_message(ch->data, m);
}

static void on_drain(qd_chan *ch)
{
    app_req_drained(ch->data);
}

static void on_close(qd_chan *ch)
{
    app_worker *w = ch->data;

    w->ch = NULL;
}

app_worker *app_harness_open(app *a, int root_fd, int access_fd, int *peer)
{
    int sv[2];

    memset(a, 0, sizeof(*a));
    a->child.loop = uv_default_loop(); /* the API routes' timers run on it */
    qd_conf_init(&a->child.conf);
    a->root_fd = root_fd;
    a->access_fd = access_fd;
    app_worker *w = &a->workers[0];
    app_req_worker_init(a, w, 0);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    w->ch = qd_chan_open(uv_default_loop(), sv[0], "worker[0]", on_msg, on_close, w);
    w->ch->on_drain = on_drain;
    *peer = sv[1];
    return w;
}

int app_harness_fill(app_worker *w)
{
    static qd_ipc_msg m;
    static uint8_t big[QD_IPC_MAX_CHUNK];
    int n = 0;

    for (size_t size = sizeof(big); size > 0; size = size > 8 ? size / 8 : 0) {
        for (;;) {
            qd_ipc_msg_init(&m, QD_MSG_RESP_BODY, 0);
            qd_ipc_put_u64(&m, QD_F_STREAM, 1u << 30);
            qd_ipc_put_bytes(&m, QD_F_BODY, big, size);
            if (qd_chan_send(w->ch, &m) != 0)
                break;
            n++;
        }
    }
    return n;
}

void app_harness_close(app *a)
{
    app_worker *w = &a->workers[0];

    app_req_drop_all(w);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT); /* the channel's close callbacks */
    while (a->free_reqs != NULL) {
        app_req *r = a->free_reqs;
        a->free_reqs = r->hnext;
        free(r->head);
        free(r->out);
        free(r->resp);
        free(r);
    }
    a->free_count = 0;
    free(w->buckets);
    w->buckets = NULL;
    w->bucket_count = 0;
    qd_conf_release(&a->child.conf);
}
