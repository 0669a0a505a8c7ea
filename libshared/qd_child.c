/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_child - the common life of a daemon exec'd by the master
 * SYNOPSIS
 *	qd_child_init(), qd_child_run(), qd_child_msg(), qd_child_queue(),
 *	qd_child_send(), qd_child_exit(),
 *	qd_child_bad_message()
 * DESCRIPTION
 *	Protocol with the master on QD_FD_MASTER (SOCK_SEQPACKET):
 *	  master -> child  CONFIG (first one configures, later ones reload),
 *	                   CHANNEL (+fd), STOP, anything else to ops->message
 *	  child -> master  CONFIG_DONE (status, reason) after every CONFIG,
 *	                   READY after the first, STATUS every second
 *	  child -> stats   METRICS every stats_interval and at exit, for a
 *	                   daemon with ops->metrics (QD_FD_STATS, a datagram:
 *	                   running totals, so one lost costs nothing)
 *	The master's end closing means the master is gone: exit at once.
 *	SIGTERM is a stop with the configured drain_timeout; SIGINT and SIGHUP
 *	are the master's business and ignored here. A message that fails to
 *	decode or makes no sense is logged (rate-limited), counted, and
 *	dropped with its descriptors.
 * DIAGNOSTICS
 *	Startup problems are fatal (the master restarts us).
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

/* libraries */
#include <uv.h>

/* libshared */
#include "qd_child.h"
#include "qd_err.h"
#include "qd_log.h"
#include "qd_privsep.h"
#include "qd_time.h"

#define STATUS_INTERVAL_MS 1000

/* usage - report a bad command line and exit */
static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-i instance] [-s slot] [-g generation] [-l stderr|syslog] "
            "[-v level | -V level]\n"
            "This program is started by quicd(8); it is not meant to be run by hand.\n",
            prog);
    exit(1);
}

/* send_status - the periodic report to the master */
static void send_status(qd_child *c)
{
    qd_ipc_msg *m = qd_child_msg(c, QD_MSG_STATUS, 0);

    if (c->ops->status)
        c->ops->status(c, m);
    qd_child_queue(c);
}

/* on_status_timer - every second */
static void on_status_timer(uv_timer_t *t)
{
    send_status(t->data);
}

/* send_metrics - the daemon's running totals to stats; a full channel loses only this one */
static void send_metrics(qd_child *c, bool exiting)
{
    static qd_metrics m;
    static uint8_t buf[QD_METRICS_NSLOTS * 10];
    static qd_log_limit lim;

    if (c->stats == NULL)
        return;
    memset(&m, 0, sizeof(m));
    c->ops->metrics(c, &m);
    size_t len = qd_metrics_encode(&m, buf, sizeof(buf));
    if (len == 0 || len > UINT16_MAX)
        return; /* cannot happen: under two kilobytes */
    qd_metrics_put_msg(qd_chan_msg(c->stats, QD_MSG_METRICS, 0), (uint32_t)c->role,
                       c->instance < 0 ? 0 : (uint32_t)c->instance, (uint32_t)getpid(),
                       c->started_ms, buf, len, exiting);
    int rv = qd_chan_queue(c->stats); /* lost with its record if the channel is full */
    if (rv < 0)
        qd_log_limited(&lim, QD_LOG_WARN, "stats channel (metrics): %s", qd_strerror(rv));
}

/* on_metrics_timer - every stats_interval */
static void on_metrics_timer(uv_timer_t *t)
{
    send_metrics(t->data, false);
}

/*
 * sent - what queueing a message of |type| for the master came to. Queued
 * when the master cannot take it now: a message is never dropped for a
 * busy master, only refused past 16 MiB of backlog.
 */
static int sent(qd_child *c, int rv, uint16_t type)
{
    if (rv == QD_ERR_EOF) {
        qd_info("master went away; exiting");
        qd_child_exit(c, 0);
    }
    if (rv < 0) {
        static qd_log_limit lim;
        qd_log_limited(&lim, QD_LOG_WARN, "cannot send %s to master: %s",
                       qd_ipc_type_name(type), rv == QD_ERR_IO ? strerror(errno)
                                                                : qd_strerror(rv));
        return -1;
    }
    return 0;
}

int qd_child_send(qd_child *c, const qd_ipc_msg *m)
{
    return sent(c, qd_chan_send(c->ctl, m), m->type);
}

qd_ipc_msg *qd_child_msg(qd_child *c, uint16_t type, uint32_t id)
{
    return qd_chan_msg(c->ctl, type, id);
}

int qd_child_queue(qd_child *c)
{
    uint16_t type = c->ctl->compose->type;

    return sent(c, qd_chan_queue(c->ctl), type);
}

void qd_child_exit(qd_child *c, int status)
{
    if (c != NULL && c->configured && c->ops->metrics != NULL)
        send_metrics(c, true); /* the last totals: nothing counted since the last report is lost */
    fflush(stderr);
    exit(status);
}

const char *qd_child_jail_empty(qd_child *c, const qd_conf *conf)
{
    static char path[4096];

    if (!conf->chroot)
        return NULL;
    snprintf(path, sizeof(path), "%s/empty", conf->runtime_directory);
    return path;
}

void qd_child_bad_message(qd_child *c, const char *from, int err)
{
    static qd_log_limit lim;

    c->bad_messages++;
    qd_log_limited(&lim, QD_LOG_WARN, "dropped malformed message from %s: %s", from,
                   qd_strerror(err));
}

/* reply_config - CONFIG_DONE with a status and an optional reason */
static void reply_config(qd_child *c, uint32_t id, int status, const char *reason)
{
    qd_ipc_msg *m = qd_child_msg(c, QD_MSG_CONFIG_DONE, id);

    qd_ipc_put_u32(m, QD_F_STATUS, (uint32_t)status);
    if (reason && *reason)
        qd_ipc_put_str(m, QD_F_TEXT, reason);
    qd_child_queue(c);
}

/* handle_config - the first configuration, or a reload */
static void handle_config(qd_child *c, qd_ipc_msg *m)
{
    static char text[QD_IPC_MAX_BODY];
    qd_conf conf;
    qd_buf err;
    int rv;

    if (qd_ipc_get_str(m, QD_F_TEXT, text, sizeof(text)) < 0) {
        qd_child_bad_message(c, "master", QD_ERR_INVAL);
        return;
    }
    qd_buf_init(&err);
    qd_conf_init(&conf);
    if (qd_conf_parse(&conf, "(from master)", text, strlen(text), &err) < 0) {
        /* The master checked it; a failure here is a bug on the master's side. */
        qd_warn("configuration from master rejected: %s", qd_buf_str(&err));
        reply_config(c, m->id, 1, qd_buf_str(&err));
        goto out;
    }
    if (!c->level_fixed)
        qd_log_set_level((qd_log_level)qd_conf_log_level(&conf));
    rv = c->ops->configure ? c->ops->configure(c, &conf, !c->configured, &err) : 0;
    if (rv < 0) {
        if (!c->configured)
            qd_fatal("%s", qd_buf_str(&err));
        qd_warn("reload failed, keeping the previous configuration: %s", qd_buf_str(&err));
        reply_config(c, m->id, 1, qd_buf_str(&err));
        goto out;
    }
    if (!c->configured) {
        const char *jail = c->ops->jail ? c->ops->jail(c, &conf) : NULL;
        if (qd_privsep_drop(conf.user, conf.group, jail) < 0)
            qd_fatal("cannot drop privileges");
#ifdef HAVE_SYS_PRCTL_H
        /* A change of credentials clears the parent-death signal: arm it again. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    }
    qd_conf_release(&c->conf);
    c->conf = conf;
    memset(&conf, 0, sizeof(conf));
    reply_config(c, m->id, 0, NULL);
    if (!c->configured) {
        c->configured = true;
        if (c->ops->started)
            c->ops->started(c);
        qd_child_msg(c, QD_MSG_READY, 0);
        qd_child_queue(c);
        send_status(c);
        uv_timer_start(&c->status_timer, on_status_timer, STATUS_INTERVAL_MS, STATUS_INTERVAL_MS);
    }
    if (c->ops->metrics != NULL) /* the first configuration, or a new stats_interval */
        uv_timer_start(&c->metrics_timer, on_metrics_timer, (uint64_t)c->conf.stats_interval_ms,
                       (uint64_t)c->conf.stats_interval_ms);
out:
    qd_conf_release(&conf);
    qd_buf_release(&err);
}

/* begin_stop - graceful stop requested by the master or by SIGTERM */
static void begin_stop(qd_child *c, uint32_t deadline_ms)
{
    if (c->stopping)
        return;
    c->stopping = true;
    qd_info("stopping (drain deadline %ums)", deadline_ms);
    if (c->ops->stop)
        c->ops->stop(c, deadline_ms);
    else
        qd_child_exit(c, 0);
}

/* on_master_close - the master's end closed: the master is gone */
static void on_master_close(qd_chan *ch)
{
    qd_info("master went away; exiting");
    qd_child_exit(ch->data, 0);
}

/* on_master - a message on the control channel (qd_chan drops malformed ones) */
static void on_master(qd_chan *ch, qd_ipc_msg *m)
{
    qd_child *c = ch->data;

    switch (m->type) {
    case QD_MSG_CONFIG:
        handle_config(c, m);
        break;
    case QD_MSG_STOP: {
        uint32_t deadline = 0;
        if (qd_ipc_get_u32(m, QD_F_DEADLINE_MS, &deadline) < 0)
            deadline = 0;
        if (!c->stopping && qd_ipc_get_u32(m, QD_F_FLAGS, &c->stop_flags) < 0)
            c->stop_flags = 0;
        begin_stop(c, deadline);
        break;
    }
    case QD_MSG_CHANNEL: {
        uint32_t role, instance = 0;
        if (qd_ipc_get_u32(m, QD_F_ROLE, &role) < 0 || role >= QD_ROLE_COUNT ||
            qd_ipc_get_u32(m, QD_F_INSTANCE, &instance) < 0 || c->ops->channel == NULL) {
            qd_child_bad_message(c, "master", QD_ERR_INVAL);
            break;
        }
        int fd = qd_ipc_msg_take_fd(m, 0);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        c->ops->channel(c, (qd_role)role, instance, fd);
        break;
    }
    default:
        if (c->ops->message)
            c->ops->message(c, m);
        else
            qd_child_bad_message(c, "master", QD_ERR_UNKNOWN);
    }
}

/* on_sigterm - stop gracefully */
static void on_sigterm(uv_signal_t *s, int signum)
{
    qd_child *c = s->data;

    begin_stop(c, c->configured ? (uint32_t)c->conf.drain_timeout_ms : 0);
}

void qd_child_init(qd_child *c, qd_role role, int argc, char **argv, const qd_child_ops *ops,
                   void *data)
{
    qd_log_dest dest = QD_LOG_STDERR;
    qd_log_level level = QD_LOG_INFO;
    int ch;

    memset(c, 0, sizeof(*c));
    c->role = role;
    c->instance = -1;
    c->slot = -1;
    c->ops = ops;
    c->data = data;
    while ((ch = getopt(argc, argv, "i:s:g:l:v:V:")) != -1) {
        switch (ch) {
        case 'i':
            c->instance = atoi(optarg);
            if (c->instance < 0 || c->instance > 4096)
                usage(argv[0]);
            break;
        case 's':
            c->slot = atoi(optarg);
            if (c->slot < 0 || c->slot > 4096)
                usage(argv[0]);
            break;
        case 'g':
            c->generation = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'l':
            if (strcmp(optarg, "syslog") == 0)
                dest = QD_LOG_SYSLOG;
            else if (strcmp(optarg, "stderr") == 0)
                dest = QD_LOG_STDERR;
            else
                usage(argv[0]);
            break;
        case 'v':
        case 'V': /* -V: the level stays, whatever log_level says (quicd -v) */
            if (qd_log_level_parse(optarg, &level) < 0)
                usage(argv[0]);
            c->level_fixed = ch == 'V';
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc)
        usage(argv[0]);
    qd_log_init(qd_role_name(role), c->instance, dest, level);

    /* The master must have given us our channel; without it we are orphans. */
    if (fcntl(QD_FD_MASTER, F_GETFD) < 0)
        qd_fatal("no control channel on descriptor %d: start me through quicd(8)", QD_FD_MASTER);
    /*
     * SIGTERM when the master dies. A master that died before this line
     * shows as EOF on the control channel, which ends us too; getppid() is
     * no test (in a container the master may itself be process 1).
     */
#ifdef HAVE_SYS_PRCTL_H
    prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    fcntl(QD_FD_MASTER, F_SETFD, FD_CLOEXEC);
    fcntl(QD_FD_MASTER, F_SETFL, fcntl(QD_FD_MASTER, F_GETFL) | O_NONBLOCK);
    bool has_stats = fcntl(QD_FD_STATS, F_GETFD) >= 0;
    if (has_stats) {
        fcntl(QD_FD_STATS, F_SETFD, FD_CLOEXEC);
        fcntl(QD_FD_STATS, F_SETFL, fcntl(QD_FD_STATS, F_GETFL) | O_NONBLOCK);
    }

    qd_conf_init(&c->conf);
    c->loop = uv_default_loop();
    c->ctl = qd_chan_open(c->loop, QD_FD_MASTER, "master", on_master, on_master_close, c);
    /* the send end of the stats channel (stats itself has the receive end) */
    if (has_stats && role != QD_ROLE_STATS)
        c->stats = qd_chan_open_dgram(c->loop, QD_FD_STATS, "stats", NULL, c);
    uv_timer_init(c->loop, &c->status_timer);
    c->status_timer.data = c;
    uv_timer_init(c->loop, &c->metrics_timer);
    c->metrics_timer.data = c;
    c->started_ms = qd_time_real_ms();
    uv_signal_init(c->loop, &c->sigterm);
    c->sigterm.data = c;
    uv_signal_start(&c->sigterm, on_sigterm, SIGTERM);
}

int qd_child_run(qd_child *c)
{
    qd_debug("started (generation %u)", c->generation);
    uv_run(c->loop, UV_RUN_DEFAULT);
    return 0;
}
