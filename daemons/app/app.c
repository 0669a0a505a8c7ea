/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	app - the HTTP application process
 * SYNOPSIS
 *	app -g generation [-l dest] [-v level] (started by quicd)
 * DESCRIPTION
 *	Opens document_root while it still has its starting privileges, then
 *	runs unprivileged (chrooted to document_root when chroot = yes and
 *	started as root) and answers the requests the workers pass it over
 *	one channel per worker (app_req.c), serving static files
 *	(app_static.c) and the built-in routes (app_api.c), and writes the
 *	access log to the descriptor the master opened (QD_MSG_LOG_FD, after
 *	every CONFIG, so a reload reopens the file). The master hands over a channel whenever either side
 *	(re)starts; the requests of a channel that closes or is replaced are
 *	forgotten. On reload a changed document_root is opened anew, unless
 *	the app is chrooted (then it takes a restart). A graceful stop waits
 *	until no request is owed a response and every channel has flushed,
 *	or until the drain deadline; /events and /stream responses are ended
 *	at once (their last chunk), since they would never end by themselves.
 *
 *	Owns: the root directory descriptor, the worker channels (qd_chan).
 *	Status report: QD_F_STREAMS = requests in flight.
 * DIAGNOSTICS
 *	A document_root that cannot be opened is fatal at start and fails a
 *	reload. Responses by status class are logged when the app stops.
 * SEE ALSO
 *	app_req.c (the worker<->app protocol), app_static.c
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_log.h"
#include "qd_privsep.h"

/* local */
#include "app.h"

static app the_app;

/* log_counts - one line with what the app answered */
static void log_counts(const app *a)
{
    qd_info("answered 1xx=%" PRIu64 " 2xx=%" PRIu64 " 3xx=%" PRIu64 " 4xx=%" PRIu64 " 5xx=%" PRIu64
            "; %" PRIu64 " worker messages dropped",
            a->status_count[1], a->status_count[2], a->status_count[3], a->status_count[4],
            a->status_count[5], a->protocol_errors);
}

void app_exit_if_idle(app *a)
{
    if (!a->child.stopping || a->in_flight > 0)
        return;
    for (int i = 0; i < APP_MAX_WORKERS; i++)
        if (a->workers[i].ch != NULL && qd_chan_queued(a->workers[i].ch) > 0)
            return;
    log_counts(a);
    qd_child_exit(&a->child, 0);
}

/* on_worker_msg, on_worker_close, on_worker_drain - channel callbacks */
static void on_worker_msg(qd_chan *ch, qd_ipc_msg *m)
{
    app_req_message(ch->data, m);
}

static void on_worker_close(qd_chan *ch)
{
    app_worker *w = ch->data;

    qd_info("%s: channel closed", ch->name);
    w->ch = NULL;
    w->a->connected--;
    app_req_drop_all(w);
}

static void on_worker_drain(qd_chan *ch)
{
    app_req_drained(ch->data);
}

/* open_root - make |path| the directory files are served from */
static int open_root(app *a, const char *path, qd_buf *err)
{
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0) {
        qd_buf_printf(err, "document_root %s: %s", path, strerror(errno));
        return -1;
    }
    if (a->root_fd >= 0)
        close(a->root_fd);
    a->root_fd = fd;
    free(a->root_path);
    a->root_path = qd_xstrdup(path);
    return 0;
}

static int configure(qd_child *c, const qd_conf *conf, bool first, qd_buf *err)
{
    app *a = c->data;

    if (first) {
        /*
         * qd_child chroots (to jail()) only after this first call, so the
         * path still names the directory; its descriptor stays valid in the
         * jail, where the same directory is "/".
         */
        a->is_chrooted = conf->chroot && qd_privsep_is_root();
        return open_root(a, conf->document_root, err);
    }
    if (strcmp(conf->document_root, a->root_path) == 0)
        return 0;
    if (a->is_chrooted) {
        qd_warn("document_root changed to %s, but the app is chrooted to %s: "
                "restart quicd to serve the new root",
                conf->document_root, a->root_path);
        return 0;
    }
    if (open_root(a, conf->document_root, err) < 0)
        return -1;
    qd_info("serving %s", a->root_path);
    return 0;
}

static const char *jail(qd_child *c, const qd_conf *conf)
{
    return conf->chroot ? conf->document_root : NULL;
}

static void channel(qd_child *c, qd_role role, uint32_t instance, int fd)
{
    app *a = c->data;
    char name[32];

    if (role != QD_ROLE_WORKER || instance >= APP_MAX_WORKERS) {
        qd_warn("channel to %s[%u] is not for me; closing it", qd_role_name(role), instance);
        close(fd);
        return;
    }
    app_worker *w = &a->workers[instance];
    if (w->ch != NULL) {
        /* A new channel means that worker restarted: the old requests are lost. */
        qd_chan *old = w->ch;
        w->ch = NULL;
        a->connected--;
        app_req_drop_all(w);
        qd_chan_close(old);
    }
    snprintf(name, sizeof(name), "worker[%u]", instance);
    w->ch = qd_chan_open(c->loop, fd, name, on_worker_msg, on_worker_close, w);
    w->ch->on_drain = on_worker_drain;
    a->connected++;
}

static void status(qd_child *c, qd_ipc_msg *m)
{
    app *a = c->data;

    qd_ipc_put_u32(m, QD_F_STREAMS, a->in_flight);
    qd_ipc_put_u64(m, QD_F_DROPS, a->send_failures);
}

/* on_stop_timer - the drain deadline passed */
static void on_stop_timer(uv_timer_t *t)
{
    app *a = t->data;

    qd_warn("drain deadline reached with %u requests unanswered", a->in_flight);
    log_counts(a);
    qd_child_exit(&a->child, 0);
}

static void stop(qd_child *c, uint32_t deadline_ms)
{
    app *a = c->data;

    uv_timer_start(&a->stop_timer, on_stop_timer, deadline_ms, 0);
    for (uint32_t i = 0; i < APP_MAX_WORKERS; i++)
        if (a->workers[i].ch != NULL)
            app_req_end_streams(&a->workers[i]);
    app_exit_if_idle(a);
}

/* message - QD_MSG_LOG_FD: the access log, opened by the master (or none) */
static void message(qd_child *c, qd_ipc_msg *m)
{
    app *a = c->data;

    if (m->type != QD_MSG_LOG_FD) {
        qd_child_bad_message(c, "master", QD_ERR_UNKNOWN);
        return;
    }
    if (a->access_fd >= 0)
        close(a->access_fd);
    a->access_fd = m->fd_count == 1 ? qd_ipc_msg_take_fd(m, 0) : -1;
    qd_debug("access log %s", a->access_fd >= 0 ? "on" : "off");
}

static const qd_child_ops ops = {
    .message = message,
    .configure = configure,
    .jail = jail,
    .channel = channel,
    .stop = stop,
    .status = status,
};

int main(int argc, char **argv)
{
    app *a = &the_app;

    a->root_fd = -1;
    a->access_fd = -1;
    for (uint32_t i = 0; i < APP_MAX_WORKERS; i++)
        app_req_worker_init(a, &a->workers[i], i);
    qd_child_init(&a->child, QD_ROLE_APP, argc, argv, &ops, a);
    uv_timer_init(a->child.loop, &a->stop_timer);
    a->stop_timer.data = a;
    return qd_child_run(&a->child);
}
