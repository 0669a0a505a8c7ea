/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	stats - the only writer of the stats database
 * SYNOPSIS
 *	stats -g generation [-l dest] [-v level] (started by quicd)
 * DESCRIPTION
 *	Receives records on the stats datagram channel (descriptor 4, the
 *	receive end; every other process holds the send end and never waits
 *	on it) and writes them to SQLite (stats_db.c). The database is opened
 *	after the privilege drop so its files belong to the daemons' user.
 * DIAGNOSTICS
 *	A database that cannot be opened is fatal (the master restarts us
 *	with back-off); malformed records are logged and dropped.
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <string.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"

/* local */
#include "stats.h"

static stats the_stats;
static qd_ipc_msg in_msg;

/* on_record - drain the datagram channel */
static void on_record(uv_poll_t *p, int status, int events)
{
    stats *s = p->data;

    for (int i = 0; i < 256; i++) {
        int rv = qd_ipc_recv(QD_FD_STATS, &in_msg);
        if (rv == QD_ERR_AGAIN || rv == QD_ERR_EOF)
            return;
        if (rv < 0) {
            qd_child_bad_message(&s->child, "stats channel", rv);
            continue;
        }
        if (in_msg.type != QD_MSG_REC_PROCESS || stats_db_process_event(s, &in_msg) == -1)
            qd_child_bad_message(&s->child, "stats channel", QD_ERR_INVAL);
        qd_ipc_msg_close_fds(&in_msg);
    }
}

static void started(qd_child *c)
{
    stats *s = &the_stats;

    if (stats_db_open(s, c->conf.stats_database) < 0)
        qd_fatal("stats database unavailable");
    uv_poll_init(c->loop, &s->in_poll, QD_FD_STATS);
    s->in_poll.data = s;
    uv_poll_start(&s->in_poll, UV_READABLE, on_record);
}

static void stop(qd_child *c, uint32_t deadline_ms)
{
    if (the_stats.db != NULL) {
        on_record(&the_stats.in_poll, 0, UV_READABLE); /* what is queued, then close */
        stats_db_close(&the_stats);
    }
    qd_child_exit(c, 0);
}

static const qd_child_ops ops = {
    .started = started,
    .stop = stop,
};

int main(int argc, char **argv)
{
    qd_child_init(&the_stats.child, QD_ROLE_STATS, argc, argv, &ops, &the_stats);
    return qd_child_run(&the_stats.child);
}
