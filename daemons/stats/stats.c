/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	stats - the only writer of the stats database
 * SYNOPSIS
 *	stats -g generation [-l dest] [-v level] (started by quicd)
 * DESCRIPTION
 *	Receives records on the stats datagram channel (descriptor 4, the
 *	receive end; every other process holds the send end and never waits
 *	on it) and writes them to SQLite (stats_db.c) in batches committed at
 *	least every STATS_BATCH_MS. The channel (a qd_chan, so records that
 *	carry several messages are split there) is read in drains: after one
 *	that found records it rests STATS_READ_MS (the socket buffer,
 *	stats_buffer, holds what comes meanwhile), so a busy server wakes
 *	stats about 100 times a second, not once per datagram. The database
 *	is opened after the privilege drop so its files belong to the
 *	daemons' user. Retention runs at open and every hour. It also serves
 *	GET /metrics on the socket the master binds (stats_http.c).
 * DIAGNOSTICS
 *	A database that cannot be opened is logged once and retried every
 *	STATS_REOPEN_MS; records are counted and dropped meanwhile, and quicd
 *	keeps serving. Malformed records are logged (rate-limited) and dropped.
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"
#include "qd_time.h"

/* local */
#include "stats.h"

static stats the_stats;
/*
 * on_record - one message of the records channel. The channel reads up to
 * STATS_READ_BUDGET datagrams a time and, after a read that found records,
 * rests STATS_READ_MS before the next (a timer, not a wakeup per datagram:
 * waking up costs this process more than the records of a datagram do).
 */
static void on_record(qd_chan *ch, qd_ipc_msg *m)
{
    stats *s = ch->data;

    if (m->type == QD_MSG_REC_BATCH) {
        stats_db_batch(s, m);
    } else if (m->type == QD_MSG_METRICS) {
        if (stats_metrics_receive(s, m) < 0)
            qd_child_bad_message(&s->child, "stats channel (metrics)", QD_ERR_INVAL);
        else /* what /metrics shows is in the database (stats_metrics.c) */
            stats_db_commit(s);
    } else if (stats_db_record(s, m) == -1) {
        s->bad_records++;
        qd_child_bad_message(&s->child, "stats channel", QD_ERR_INVAL);
    } else if (m->type == QD_MSG_REC_PROCESS) {
        /* Rare and wanted right away (quicctl report, restarts): commit now. */
        stats_db_commit(s);
    }
}

/* on_batch - commit what arrived in the last second */
static void on_batch(uv_timer_t *t)
{
    stats_db_commit(t->data);
}

/* on_prune - retention */
static void on_prune(uv_timer_t *t)
{
    stats *s = t->data;

    stats_db_prune(s, s->child.conf.stats_retention_ms, s->child.conf.stats_history_retention_ms);
}

/*
 * jail - started as root with chroot on, stats runs chrooted in the
 * database's directory (which the master gives to user:group): the
 * database then needs no path the unprivileged user could be refused on
 * the way (a checkout under /root, mode 0700, say).
 */
static const char *jail(qd_child *c, const qd_conf *conf)
{
    static char dir[4096];
    stats *s = &the_stats;
    const char *slash = strrchr(conf->stats_database, '/');

    if (!conf->chroot || geteuid() != 0 || slash == NULL || slash[1] == '\0')
        return NULL;
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - conf->stats_database),
             conf->stats_database);
    if (dir[0] == '\0')
        strcpy(dir, "/");
    snprintf(s->db_path, sizeof(s->db_path), "/%s", slash + 1);
    return dir;
}

/* try_open - open the database; log a failure once and retry later */
static void try_open(uv_timer_t *t)
{
    stats *s = t->data;
    const char *path = s->db_path[0] ? s->db_path : s->child.conf.stats_database;

    if (stats_db_open(s, path) < 0) {
        if (!s->open_logged)
            qd_err("stats database %s unavailable; retrying every %ds, records are dropped "
                   "meanwhile (quicd keeps serving)",
                   path, STATS_REOPEN_MS / 1000);
        s->open_logged = true;
        uv_timer_start(&s->reopen_timer, try_open, STATS_REOPEN_MS, 0);
        return;
    }
    if (s->open_logged)
        qd_notice("stats database %s open (%llu records were dropped)", path,
                  (unsigned long long)s->lost_records);
    s->open_logged = false;
    stats_metrics_load(s);
    stats_db_own_losses(s);
    on_prune(&s->prune_timer);
}

static void started(qd_child *c)
{
    stats *s = &the_stats;

    s->started_ms = qd_time_real_ms();
    uv_timer_init(c->loop, &s->batch_timer);
    uv_timer_init(c->loop, &s->reopen_timer);
    uv_timer_init(c->loop, &s->prune_timer);
    s->batch_timer.data = s->reopen_timer.data = s->prune_timer.data = s;
    try_open(&s->reopen_timer);
    uv_timer_start(&s->batch_timer, on_batch, STATS_BATCH_MS, STATS_BATCH_MS);
    uv_timer_start(&s->prune_timer, on_prune, STATS_PRUNE_MS, STATS_PRUNE_MS);
    s->in = qd_chan_open_dgram(c->loop, QD_FD_STATS, "stats channel", on_record, s);
    s->in->read_budget = STATS_READ_BUDGET;
    s->in->rest_ms = STATS_READ_MS;
}

static void stop(qd_child *c, uint32_t deadline_ms)
{
    if (the_stats.db != NULL) {
        qd_chan_read_now(the_stats.in); /* what is queued, then close */
        stats_db_close(&the_stats);
    }
    qd_child_exit(c, 0);
}

/* on_reply_drained - the client took the whole answer */
static void on_reply_drained(qd_chan *ch)
{
    stats *s = ch->data;

    if (s->metrics_reply == ch)
        s->metrics_reply = NULL;
    qd_chan_close(ch);
}

/* send_part - one CTL_REPLY of a metrics answer, composed in the reply channel */
static int send_part(qd_chan *ch, uint32_t id, const char *text, size_t len, bool more)
{
    qd_ipc_msg *m = qd_chan_msg(ch, QD_MSG_CTL_REPLY, id);

    qd_ipc_put_u32(m, QD_F_STATUS, 0);
    if (more)
        qd_ipc_put_u32(m, QD_F_FLAGS, QD_CTL_F_MORE);
    qd_ipc_put_bytes(m, QD_F_TEXT, text, len);
    return qd_chan_queue(ch);
}

/* metrics_req - METRICS_REQ: the metrics, on the quicctl connection the master passed */
static void metrics_req(qd_child *c, qd_ipc_msg *m)
{
    stats *s = &the_stats;
    qd_buf text;
    int fd;

    if ((fd = qd_ipc_msg_take_fd(m, 0)) < 0) {
        qd_child_bad_message(c, "master", QD_ERR_UNKNOWN);
        return;
    }
    /*
     * The quicctl connection (shared with the master, which reads its
     * requests): a channel that only writes, one message per record for
     * quicctl of any release, kept until the client took the answer (an
     * answer still waiting when the next request comes is dropped).
     */
    if (s->metrics_reply != NULL)
        qd_chan_close(s->metrics_reply);
    qd_chan *ch = qd_chan_open(c->loop, fd, "quicctl metrics", NULL, NULL, s);
    ch->single = true;
    ch->on_drain = on_reply_drained;
    qd_buf_init(&text);
    stats_metrics_text(s, &text);
    /* in parts of whole lines that fit a message (a text field is at most 64 KiB) */
    size_t pos = 0;
    while (pos < text.len) {
        size_t n = text.len - pos;
        if (n > STATS_CTL_PART) {
            n = STATS_CTL_PART;
            while (n > 0 && text.data[pos + n - 1] != '\n')
                n--;
            if (n == 0)
                n = STATS_CTL_PART;
        }
        if (send_part(ch, m->id, text.data + pos, n, pos + n < text.len) < 0) {
            static qd_log_limit lim;
            qd_log_limited(&lim, QD_LOG_WARN, "quicctl metrics: the client does not read");
            break;
        }
        pos += n;
    }
    qd_buf_release(&text);
    if (qd_chan_queued(ch) == 0)
        qd_chan_close(ch); /* all sent */
    else
        s->metrics_reply = ch;
}

/* configure - the first configuration and each reload: the /metrics endpoint */
static int configure(qd_child *c, const qd_conf *conf, bool first, qd_buf *err)
{
    stats_http_configure(&the_stats, conf);
    return 0;
}

/*
 * message - QD_MSG_METRICS_HTTP: the /metrics socket and token, before a
 * CONFIG; QD_MSG_METRICS_REQ: quicctl metrics
 */
static void message(qd_child *c, qd_ipc_msg *m)
{
    if (m->type == QD_MSG_METRICS_HTTP)
        stats_http_message(&the_stats, m);
    else if (m->type == QD_MSG_METRICS_REQ)
        metrics_req(c, m);
    else
        qd_child_bad_message(c, "master", QD_ERR_UNKNOWN);
}

static const qd_child_ops ops = {
    .configure = configure,
    .message = message,
    .jail = jail,
    .started = started,
    .stop = stop,
};

int main(int argc, char **argv)
{
    qd_child_init(&the_stats.child, QD_ROLE_STATS, argc, argv, &ops, &the_stats);
    stats_http_init(&the_stats);
    return qd_child_run(&the_stats.child);
}
