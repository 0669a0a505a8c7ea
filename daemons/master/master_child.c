/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	master_child - spawn, supervise and connect the daemons
 * SYNOPSIS
 *	master_children_start(), master_child_add(), master_child_stop(),
 *	master_child_send_config(), master_children_stop_all(),
 *	master_children_alive(), master_state_name(), master_record_event(),
 *	master_record_losses_start(), master_worker_count()
 * DESCRIPTION
 *	Each daemon is a separate program in daemon_directory, started with
 *	fork+exec (uv_spawn) with its control channel on descriptor 3 and
 *	the stats channel on descriptor 4; role, instance and generation go
 *	on its command line. The master sends it the configuration at once.
 *
 *	Supervision (Postfix master_spawn.c): a daemon that exits when it was
 *	not asked to is restarted. One that dies within MASTER_RAPID_MS of
 *	starting counts a rapid failure; each one doubles the delay before
 *	the next start (MASTER_BACKOFF_MS, 2x, ... up to throttle_time), and
 *	from MASTER_THROTTLE_AFTER in a row the daemon is reported as
 *	throttled. A daemon that ran long enough starts again at once.
 *
 *	Switchboard (OpenBSD proc.c): when a daemon reports READY the master
 *	makes a SOCK_SEQPACKET socketpair for each peer it talks to (listener
 *	<-> worker, app <-> worker, upstream <-> worker) and hands one end to each side with
 *	CHANNEL messages. A restarted daemon gets fresh pairs; its peers see
 *	the old ends close and drop them.
 *
 *	Ownership: the master_child owns its control channel (a qd_chan:
 *	what the daemon cannot take at once is queued, never dropped; closed
 *	when the channel fails or the process is reaped) and its libuv
 *	handles.
 * DIAGNOSTICS
 *	Exits and restarts are logged; a malformed message from a daemon is
 *	logged (rate-limited), counted and dropped.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libraries */
#include <uv.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_log.h"
#include "qd_time.h"
#include "qd_uv.h"

/* local */
#include "master.h"

/* Outgoing messages: filled and sent (or queued, copied) within one call. */

static void spawn(master_child *c);
static void on_ctl_msg(qd_chan *ch, qd_ipc_msg *m);
static void on_ctl_close(qd_chan *ch);

const char *master_state_name(master_state s)
{
    switch (s) {
    case MS_STARTING:
        return "starting";
    case MS_RUNNING:
        return "running";
    case MS_BACKOFF:
        return "backoff";
    case MS_THROTTLED:
        return "throttled";
    case MS_STOPPING:
        return "stopping";
    }
    return "unknown";
}

const char *master_child_name(const master_child *c)
{
    static char buf[64];

    if (c->instance >= 0)
        snprintf(buf, sizeof(buf), "%s[%d]", qd_role_name(c->role), c->instance);
    else
        snprintf(buf, sizeof(buf), "%s", qd_role_name(c->role));
    return buf;
}

/* master_stdio - a child's stdin is /dev/null; its stdout and stderr are
 * the master's in the foreground, /dev/null otherwise */
void master_stdio(const master *m, uv_stdio_container_t *stdio)
{
    stdio[0].flags = UV_INHERIT_FD;
    stdio[0].data.fd = m->devnull_fd;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = m->foreground ? 1 : m->devnull_fd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = m->foreground ? 2 : m->devnull_fd;
}

int master_worker_count(const master *m)
{
    int n = 0;

    for (int i = 0; i < m->child_count; i++)
        if (m->children[i]->role == QD_ROLE_WORKER && !m->children[i]->retire)
            n++;
    return n;
}

/*
 * stats_send - the message composed in the master's stats channel leaves
 * now (the master's records are few: each is sent on its own, so a full
 * channel is known at once). Returns 0, QD_ERR_AGAIN when the channel was
 * full and dropped it, or the channel's error.
 */
static int stats_send(master *m)
{
    uint64_t dropped = m->stats->dropped;
    int rv = qd_chan_queue(m->stats);

    if (rv < 0)
        return rv;
    qd_chan_flush(m->stats);
    return m->stats->dropped == dropped ? 0 : QD_ERR_AGAIN;
}

/* send_event - one process event record on the stats channel */
static void send_event(master *m, const struct master_event *e)
{
    static qd_log_limit lim;

    qd_ipc_msg *msg = qd_chan_msg(m->stats, QD_MSG_REC_PROCESS, 0);

    qd_ipc_put_u32(msg, QD_F_EVENT, e->ev);
    qd_ipc_put_u64(msg, QD_F_TIME_MS, e->time_ms);
    qd_ipc_put_u32(msg, QD_F_ROLE, e->role);
    qd_ipc_put_u32(msg, QD_F_INSTANCE, e->instance);
    qd_ipc_put_u32(msg, QD_F_PID, e->pid);
    qd_ipc_put_u32(msg, QD_F_GENERATION, e->generation);
    if (e->has_child)
        qd_ipc_put_u32(msg, QD_F_RESTARTS, e->restarts);
    if (e->has_exit) {
        qd_ipc_put_u32(msg, QD_F_EXIT_STATUS, e->exit_status);
        qd_ipc_put_u32(msg, QD_F_SIGNAL, e->signal);
    }
    /* Never block on stats: a full channel drops the record and counts it. */
    int rv = stats_send(m);
    if (rv < 0) {
        m->stats_drops++;
        if (rv != QD_ERR_AGAIN)
            qd_log_limited(&lim, QD_LOG_WARN, "stats channel: %s", qd_strerror(rv));
    }
}

/*
 * resend_recent - a new stats daemon starts: the events of the last
 * MASTER_RESEND_WINDOW_MS before its predecessor died go again. Those it
 * had read but not committed would be lost otherwise; stats writes a
 * process event only once (stats_db.c), so the copies of the others are
 * ignored.
 */
static void resend_recent(master *m)
{
    uint32_t sent = 0;

    for (uint32_t i = 0; i < MASTER_RECENT_EVENTS; i++) {
        const struct master_event *e =
            &m->recent_events[(m->recent_next + i) % MASTER_RECENT_EVENTS];
        if (e->time_ms == 0 || e->time_ms + MASTER_RESEND_WINDOW_MS < m->stats_exit_ms)
            continue;
        send_event(m, e);
        sent++;
    }
    qd_debug("sent %u recent process events again to the new stats daemon", sent);
}

void master_record_event(master *m, qd_proc_event ev, const master_child *c)
{
    struct master_event *e = &m->recent_events[m->recent_next];

    m->recent_next = (m->recent_next + 1) % MASTER_RECENT_EVENTS;
    memset(e, 0, sizeof(*e));
    e->ev = (uint32_t)ev;
    e->time_ms = qd_time_real_ms();
    e->role = c ? (uint32_t)c->role : QD_ROLE_MASTER;
    e->instance = c && c->instance >= 0 ? (uint32_t)c->instance : 0;
    e->pid = c ? (uint32_t)c->pid : (uint32_t)getpid();
    e->generation = m->generation;
    e->has_child = c != NULL;
    if (c) {
        e->restarts = c->restarts;
        e->has_exit = ev == QD_EV_EXIT;
        e->exit_status = (uint32_t)c->exit_status;
        e->signal = (uint32_t)c->exit_signal;
    }
    if (c && c->role == QD_ROLE_STATS && ev == QD_EV_EXIT)
        m->stats_exit_ms = e->time_ms;
    send_event(m, e);
    if (c && c->role == QD_ROLE_STATS && ev == QD_EV_START && m->stats_exit_ms != 0)
        resend_recent(m);
}

/* send_metrics - the master's running totals to stats (a lost one costs nothing) */
static void send_metrics(master *m)
{
    static uint8_t buf[QD_METRICS_NSLOTS * 10];
    size_t len = qd_metrics_encode(&m->metrics, buf, sizeof(buf));

    if (m->metrics_since_ms == 0)
        m->metrics_since_ms = qd_time_real_ms();
    qd_metrics_put_msg(qd_chan_msg(m->stats, QD_MSG_METRICS, 0), QD_ROLE_MASTER, 0,
                       (uint32_t)getpid(), m->metrics_since_ms, buf, len, false);
    stats_send(m); /* a full channel: the next tick carries them */
}

/*
 * on_loss_timer - every stats_interval, the records the full channel
 * refused since the last report reach the database as one REC_LOSS (itself
 * retried at the next tick if the channel is still full).
 */
static void on_loss_timer(uv_timer_t *t)
{
    master *m = t->data;
    uint64_t lost = m->stats_drops - m->stats_drops_reported;

    if (lost > 0) {
        qd_ipc_msg *msg = qd_chan_msg(m->stats, QD_MSG_REC_LOSS, 0);
        qd_ipc_put_u64(msg, QD_F_TIME_MS, qd_time_real_ms());
        qd_ipc_put_u32(msg, QD_F_ROLE, QD_ROLE_MASTER);
        qd_ipc_put_u32(msg, QD_F_INSTANCE, 0);
        qd_ipc_put_u64(msg, QD_F_DROPS, lost);
        if (stats_send(m) == 0) {
            m->stats_drops_reported += lost;
            qd_notice("stats channel was full: %llu master records dropped",
                      (unsigned long long)lost);
        }
    }
    send_metrics(m);
    uv_timer_start(t, on_loss_timer, (uint64_t)m->conf.stats_interval_ms, 0);
}

void master_record_losses_start(master *m)
{
    uv_timer_init(m->loop, &m->loss_timer);
    m->loss_timer.data = m;
    uv_timer_start(&m->loss_timer, on_loss_timer, (uint64_t)m->conf.stats_interval_ms, 0);
}

/*
 * send_ctl - a message to one daemon, queued if its channel is full. A
 * failure means the daemon is gone or has not read 16 MiB of messages: it
 * is logged and counted; the exit path (or the reload timeout) cleans up.
 */
/* sent - what queueing |msg| for |c| came to: 0, or -1 logged and counted */
static int sent(master_child *c, const qd_ipc_msg *msg, int rv)
{
    if (rv < 0) {
        c->m->ctl_send_failures++;
        qd_warn("cannot send %s to %s: %s", qd_ipc_type_name(msg->type), master_child_name(c),
                rv == QD_ERR_IO ? strerror(errno) : qd_strerror(rv));
        return -1;
    }
    return 0;
}

static int send_ctl(master_child *c, const qd_ipc_msg *msg)
{
    return sent(c, msg, c->ctl != NULL ? qd_chan_send(c->ctl, msg) : QD_ERR_EOF);
}

int master_child_send(master_child *c, const qd_ipc_msg *msg)
{
    return send_ctl(c, msg);
}

qd_ipc_msg *master_child_msg(master_child *c, uint16_t type, uint32_t id)
{
    if (c->ctl != NULL)
        return qd_chan_msg(c->ctl, type, id);
    qd_ipc_msg_init(c->m->unsent, type, id); /* filled, then refused by master_child_queue */
    return c->m->unsent;
}

int master_child_queue(master_child *c)
{
    if (c->ctl == NULL)
        return sent(c, c->m->unsent, QD_ERR_EOF);
    return sent(c, c->ctl->compose, qd_chan_queue(c->ctl));
}

/*
 * send_access_log - open access_log (the app and the workers may be chrooted
 * away from it) and hand the child the descriptor; none turns its log off. Sent
 * after every CONFIG, so a reload reopens the file (log rotation).
 */
static void send_access_log(master_child *c)
{
    const char *path = c->m->conf.access_log;
    int fd = -1;

    if (path != NULL && *path != '\0') {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0)
            qd_warn("access_log %s: %s; requests are not logged", path, strerror(errno));
    }
    qd_ipc_msg *msg = master_child_msg(c, QD_MSG_LOG_FD, 0);
    if (fd >= 0)
        qd_ipc_put_fd(msg, fd);
    master_child_queue(c);
    if (fd >= 0)
        close(fd);
}

/*
 * send_tls_files - open tls_certificate and tls_key (as root; the worker
 * may be chrooted away from them) and hand a worker the descriptors before
 * its CONFIG, so that a reload picks up renewed files. None if either
 * cannot be opened: the worker then tries the paths and says why not.
 */
static void send_tls_files(master_child *c)
{
    int fds[2];

    fds[0] = open(c->m->conf.tls_certificate, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    fds[1] = open(c->m->conf.tls_key, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    qd_ipc_msg *msg = master_child_msg(c, QD_MSG_TLS_FILES, 0);
    if (fds[0] >= 0 && fds[1] >= 0) {
        qd_ipc_put_fd(msg, fds[0]);
        qd_ipc_put_fd(msg, fds[1]);
    }
    master_child_queue(c);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/*
 * send_proxy_table - a worker reads the proxy table and the CA file for
 * https:// upstreams from the descriptors it gets before each CONFIG (it
 * is chrooted away from the files); F_FLAGS says which came. The table
 * was checked (master_load_config); one that vanished since leaves the
 * worker without routes, and it says so. The CA file is sent only while
 * there is a table.
 */
static void send_proxy_table(master_child *c)
{
    const char *path = c->m->conf.proxy_table;
    int fds[2] = {-1, -1};
    uint32_t flags = 0;

    if (path[0] != '\0') {
        if ((fds[0] = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
            qd_warn_errno("proxy_table %s", path);
        fds[1] = open(c->m->conf.proxy_ca_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    }
    qd_ipc_msg *msg = master_child_msg(c, QD_MSG_PROXY_TABLE, 0);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) {
            qd_ipc_put_fd(msg, fds[i]);
            flags |= i == 0 ? QD_PROXY_F_TABLE : QD_PROXY_F_CA;
        }
    qd_ipc_put_u32(msg, QD_F_FLAGS, flags);
    master_child_queue(c);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

void master_child_send_config(master_child *c, uint32_t id)
{
    master *m = c->m;
    qd_buf text;

    if (c->role == QD_ROLE_WORKER) {
        send_tls_files(c);
        send_proxy_table(c);
    }
    if (c->role == QD_ROLE_STATS)
        master_metrics_send(c); /* the /metrics socket and token (master_metrics.c) */
    qd_buf_init(&text);
    qd_conf_dump(&m->conf, QD_CONF_DUMP_EFFECTIVE, &text);
    qd_ipc_msg *msg = master_child_msg(c, QD_MSG_CONFIG, id);
    if (qd_ipc_put_str(msg, QD_F_TEXT, qd_buf_str(&text)) < 0)
        qd_panic("configuration does not fit one message (%zu bytes)", text.len);
    qd_buf_release(&text);
    c->config_id = id;
    master_child_queue(c);
    if (c->role == QD_ROLE_APP || c->role == QD_ROLE_WORKER)
        send_access_log(c); /* a worker logs the answers of its fast path */
}

/* close_ctl - forget the control channel */
static void close_ctl(master_child *c)
{
    qd_chan_close(c->ctl);
    c->ctl = NULL;
}

/* connect_pair - a fresh channel between |srv| (listener or app) and worker |w| */
static void connect_pair(master_child *srv, master_child *w)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        qd_warn_errno("socketpair for %s", master_child_name(w));
        return;
    }
    qd_ipc_msg *msg = master_child_msg(srv, QD_MSG_CHANNEL, 0);
    qd_ipc_put_u32(msg, QD_F_ROLE, (uint32_t)w->role);
    qd_ipc_put_u32(msg, QD_F_INSTANCE, (uint32_t)w->instance);
    qd_ipc_put_fd(msg, sv[0]);
    master_child_queue(srv);
    msg = master_child_msg(w, QD_MSG_CHANNEL, 0);
    qd_ipc_put_u32(msg, QD_F_ROLE, (uint32_t)srv->role);
    qd_ipc_put_u32(msg, QD_F_INSTANCE, 0);
    qd_ipc_put_fd(msg, sv[1]);
    master_child_queue(w);
    close(sv[0]);
    close(sv[1]);
}

master_child *master_app_for(master *m, uint32_t generation)
{
    master_child *found = NULL;

    for (int i = 0; i < m->child_count; i++) {
        master_child *a = m->children[i];
        if (a->role == QD_ROLE_APP && !a->retire && a->generation <= generation &&
            (found == NULL || a->generation >= found->generation))
            found = a;
    }
    return found;
}

/*
 * connect_peers - on READY: channels to every ready peer. A worker talks
 * to the listener, the upstream daemon (while there is a proxy table) and
 * to its generation's app (master_app_for): a worker
 * of an older generation keeps the app it had while a newer app serves
 * the new generation, so its requests in flight are never cut.
 */
static void connect_peers(master_child *c)
{
    master *m = c->m;

    for (int i = 0; i < m->child_count; i++) {
        master_child *p = m->children[i];
        if (p == c || p->state != MS_RUNNING)
            continue;
        if (c->role == QD_ROLE_WORKER &&
            (p->role == QD_ROLE_LISTENER || (p->role == QD_ROLE_UPSTREAM && !p->retire) ||
             (p->role == QD_ROLE_APP && p == master_app_for(m, c->generation))))
            connect_pair(p, c);
        else if (p->role == QD_ROLE_WORKER &&
                 (c->role == QD_ROLE_LISTENER || c->role == QD_ROLE_UPSTREAM ||
                  (c->role == QD_ROLE_APP && c == master_app_for(m, p->generation))))
            connect_pair(c, p);
    }
}

void master_escrow_clear(master_escrow *e)
{
    for (size_t i = 0; i < e->count; i++) {
        qd_ipc_msg_close_fds(e->msg[i]);
        free(e->msg[i]);
    }
    e->count = 0;
}

/* master_escrow_add - keep a copy of one of the listener's SOCKETS messages */
void master_escrow_add(master_escrow *e, qd_ipc_msg *msg)
{
    if (msg->id == 0) {
        master_escrow_clear(e); /* a new set begins */
        e->overflow = false;
    }
    if (e->overflow)
        return; /* the rest of a set too large to keep; its fds are closed */
    if (e->count == MASTER_MAX_ESCROW) {
        qd_warn("too many listener sockets to keep; a restarted listener opens new ones");
        master_escrow_clear(e);
        e->overflow = true;
        return;
    }
    qd_ipc_msg *copy = qd_xmalloc(sizeof(*copy));
    memcpy(copy, msg, sizeof(*copy));
    msg->fd_count = 0; /* the copy owns the descriptors now */
    e->msg[e->count++] = copy;
}

/* escrow_return - give a starting listener the sockets its predecessor had */
static void escrow_return(master_child *c)
{
    for (size_t i = 0; i < c->m->escrow.count; i++)
        send_ctl(c, c->m->escrow.msg[i]);
}

/* handle_msg - one message from a daemon */
static void handle_msg(master_child *c, qd_ipc_msg *msg)
{
    uint32_t v;

    switch (msg->type) {
    case QD_MSG_READY:
        if (c->state == MS_STARTING) {
            c->state = MS_RUNNING;
            qd_info("%s ready (pid %ld)", master_child_name(c), (long)c->pid);
            connect_peers(c);
            master_gen_check(c->m);
        }
        break;
    case QD_MSG_LAYOUT:
        if (c->role != QD_ROLE_LISTENER)
            goto bad;
        master_gen_layout_ack(c->m, msg);
        break;
    case QD_MSG_CONFIG_DONE: {
        char why[1024] = "";
        if (qd_ipc_get_u32(msg, QD_F_STATUS, &v) < 0)
            goto bad;
        qd_ipc_get_str(msg, QD_F_TEXT, why, sizeof(why));
        master_reload_ack(c->m, c, msg->id, v, why);
        break;
    }
    case QD_MSG_SOCKETS:
        if (c->role != QD_ROLE_LISTENER)
            goto bad;
        master_upgrade_forward(c->m, msg);
        master_escrow_add(&c->m->escrow, msg);
        break;
    case QD_MSG_STATUS:
        if (qd_ipc_get_u32(msg, QD_F_CONNECTIONS, &v) == 0)
            c->connections = v;
        if (qd_ipc_get_u32(msg, QD_F_TCP_CONNS, &v) == 0)
            c->tcp_conns = v;
        if (qd_ipc_get_u32(msg, QD_F_STREAMS, &v) == 0)
            c->streams = v;
        if (qd_ipc_get_u32(msg, QD_F_FLAGS, &v) == 0)
            c->status_flags = v;
        qd_ipc_get_u64(msg, QD_F_DROPS, &c->send_failures);
        if (qd_ipc_get_u32(msg, QD_F_HALF_OPEN, &v) == 0)
            c->half_open = v;
        if (qd_ipc_get_u32(msg, QD_F_NEW_CONNS, &v) == 0)
            c->new_conns = v;
        qd_ipc_get_u64(msg, QD_F_RETRIES, &c->retries);
        qd_ipc_get_u64(msg, QD_F_RETRY_DROPS, &c->retry_drops);
        qd_ipc_get_u64(msg, QD_F_UDP_SEND_ERRORS, &c->udp_send_errors);
        qd_ipc_get_u64(msg, QD_F_UDP_EMSGSIZE, &c->udp_emsgsize);
        qd_ipc_get_u64(msg, QD_F_CLOSED_HEADERS, &c->closed[0]);
        qd_ipc_get_u64(msg, QD_F_CLOSED_RESETS, &c->closed[1]);
        qd_ipc_get_u64(msg, QD_F_CLOSED_FLOODS, &c->closed[2]);
        qd_ipc_get_u64(msg, QD_F_CLOSED_PROTOCOL, &c->closed[3]);
        qd_ipc_get_u64(msg, QD_F_UDP_RXQ_DROPS, &c->rxq_drops);
        qd_ipc_get_u32(msg, QD_F_UDP_RCVBUF, &c->udp_rcvbuf);
        qd_ipc_get_u32(msg, QD_F_UDP_SNDBUF, &c->udp_sndbuf);
        qd_ipc_get_u64(msg, QD_F_PROXIED, &c->proxied);
        qd_ipc_get_u64(msg, QD_F_PROXY_ERRORS, &c->proxy_errors);
        qd_ipc_get_u64(msg, QD_F_PROXY_RETRIES, &c->proxy_retries);
        const uint8_t *mp;
        size_t mlen;
        uint32_t schema;
        if (qd_ipc_get_bytes(msg, QD_F_METRICS, &mp, &mlen) == 0 &&
            qd_ipc_get_u32(msg, QD_F_SCHEMA, &schema) == 0 && schema == qd_metrics_schema()) {
            if (c->metrics == NULL)
                c->metrics = qd_xcalloc(1, sizeof(*c->metrics));
            if (qd_metrics_decode(c->metrics, mp, mlen) < 0)
                memset(c->metrics, 0, sizeof(*c->metrics)); /* shown as zeros; logged nowhere */
        }
        if (c->role == QD_ROLE_UPSTREAM) {
            static char text[QD_IPC_MAX_BODY]; /* read here, kept only when it changed */
            if (qd_ipc_get_str(msg, QD_F_TEXT, text, sizeof(text)) == 0 &&
                (c->report == NULL || strcmp(c->report, text) != 0)) {
                free(c->report);
                c->report = qd_xstrdup(text);
            }
        }
        break;
    default:
        goto bad;
    }
    return;
bad : {
    static qd_log_limit lim;
    c->m->bad_messages++;
    qd_log_limited(&lim, QD_LOG_WARN, "dropped unexpected %s message from %s",
                   qd_ipc_type_name(msg->type), master_child_name(c));
}
}

/* on_ctl_msg - a message from a daemon (malformed ones qd_chan logged, counted, dropped) */
static void on_ctl_msg(qd_chan *ch, qd_ipc_msg *m)
{
    handle_msg(ch->data, m);
}

/* on_ctl_close - the process is gone or going; the exit callback does the rest */
static void on_ctl_close(qd_chan *ch)
{
    master_child *c = ch->data;

    c->m->bad_messages += ch->bad_messages;
    c->ctl = NULL;
}

/* remove_child - take a retired child out of the table and free it */
static void on_child_timer_closed(uv_handle_t *h)
{
    master_child *c = h->data;

    free(c->report);
    free(c->metrics);
    free(c);
}

static void remove_child(master_child *c)
{
    master *m = c->m;

    for (int i = 0; i < m->child_count; i++) {
        if (m->children[i] == c) {
            memmove(&m->children[i], &m->children[i + 1],
                    (size_t)(m->child_count - i - 1) * sizeof(m->children[0]));
            m->child_count--;
            break;
        }
    }
    close_ctl(c);
    uv_timer_stop(&c->timer);
    c->timer.data = c;
    uv_close((uv_handle_t *)&c->timer, on_child_timer_closed);
}

/* on_restart_timer - back-off expired: start again */
static void on_restart_timer(uv_timer_t *t)
{
    master_child *c = t->data;

    if (c->m->stopping || c->running)
        return;
    c->restarts++;
    c->m->metrics.v[QD_M1(RESTARTS, c->role < QD_ROLE_COUNT ? (unsigned)c->role : QD_MDN_ROLE - 1)]++;
    spawn(c);
    if (c->running)
        master_record_event(c->m, QD_EV_RESTART, c);
}

/* on_replace_timer - start the replacement of a daemon stopped by reload */
static void on_replace_timer(uv_timer_t *t)
{
    master_child *c = t->data;

    if (!c->m->stopping && !c->running)
        spawn(c);
}

/* on_proc_closed - the process handle is free to be reused */
static void on_proc_closed(uv_handle_t *h)
{
    master_child *c = h->data;

    c->has_proc = false;
    if (c->retire || (c->m->stopping && !c->running)) {
        if (c->retire) {
            master *m = c->m;
            remove_child(c);
            master_gen_prune(m);
            if (m->stopping && master_children_alive(m) == 0)
                master_finish(m);
            else if (m->stopping)
                master_children_stop_all(m);
            return;
        }
        if (c->m->stopping && master_children_alive(c->m) == 0)
            master_finish(c->m);
        else if (c->m->stopping)
            master_children_stop_all(c->m);
        return;
    }
    if (c->state == MS_BACKOFF || c->state == MS_THROTTLED) {
        uint64_t now = qd_time_mono_ms();
        uint64_t delay = c->next_start_ms > now ? c->next_start_ms - now : 0;
        uv_timer_start(&c->timer, on_restart_timer, delay, 0);
    } else if (c->replace) {
        /* Start again from the timer: handles closed with the old process may still be closing. */
        c->replace = false;
        uv_timer_start(&c->timer, on_replace_timer, 0, 0);
    }
}

/* on_child_exit - a daemon process ended */
static void on_child_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    master_child *c = proc->data;
    master *m = c->m;
    uint64_t now = qd_time_mono_ms();
    bool expected = c->state == MS_STOPPING || m->stopping;

    c->running = false;
    c->exit_status = (int)exit_status;
    c->exit_signal = term_signal;
    uv_timer_stop(&c->timer);
    close_ctl(c);
    if (c->config_id != 0)
        master_reload_ack(m, c, c->config_id, 1, "exited before confirming");
    c->connections = 0;
    c->tcp_conns = 0;
    c->streams = 0;
    c->status_flags = 0;
    c->streams = 0;
    master_record_event(m, QD_EV_EXIT, c);

    if (expected) {
        if (term_signal)
            qd_info("%s (pid %ld) stopped by signal %d", master_child_name(c), (long)c->pid, term_signal);
        else
            qd_info("%s (pid %ld) stopped", master_child_name(c), (long)c->pid);
        if (c->replace && !m->stopping)
            c->state = MS_STARTING;
    } else {
        if (now - c->started_ms < MASTER_RAPID_MS)
            c->rapid_failures++;
        else
            c->rapid_failures = 1;
        uint64_t delay = 0;
        if (c->rapid_failures > 1) {
            delay = MASTER_BACKOFF_MS;
            for (uint32_t i = 2; i < c->rapid_failures && delay < (uint64_t)m->conf.throttle_time_ms;
                 i++)
                delay *= 2;
            if (delay > (uint64_t)m->conf.throttle_time_ms)
                delay = (uint64_t)m->conf.throttle_time_ms;
        }
        c->next_start_ms = now + delay;
        if (c->rapid_failures >= MASTER_THROTTLE_AFTER) {
            c->state = MS_THROTTLED;
            qd_warn("%s (pid %ld) %s %d; %u failures in a row within %ds of starting: "
                    "throttling, next start in %.1fs",
                    master_child_name(c), (long)c->pid, term_signal ? "killed by signal" : "exit status",
                    term_signal ? term_signal : (int)exit_status, c->rapid_failures,
                    MASTER_RAPID_MS / 1000, (double)delay / 1000.0);
            master_record_event(m, QD_EV_THROTTLE, c);
        } else {
            c->state = MS_BACKOFF;
            qd_warn("%s (pid %ld) %s %d; restarting in %.1fs", master_child_name(c), (long)c->pid,
                    term_signal ? "killed by signal" : "exited with status",
                    term_signal ? term_signal : (int)exit_status, (double)delay / 1000.0);
        }
    }
    uv_close((uv_handle_t *)proc, on_proc_closed);
}

/* spawn - fork+exec the daemon's program with its channels on 3 and 4 */
static void spawn(master_child *c)
{
    master *m = c->m;
    char path[4096], inst[16], gen[16], slot[16];
    const char *level = qd_log_level_name(qd_log_get_level());
    const char *dest = m->foreground ? "stderr" : "syslog";
    int sv[2];

    snprintf(path, sizeof(path), "%s/%s", m->conf.daemon_directory, qd_role_name(c->role));
    snprintf(inst, sizeof(inst), "%d", c->instance);
    if (c->role != QD_ROLE_WORKER && c->role != QD_ROLE_APP)
        c->generation = m->generation; /* the others serve every generation */
    snprintf(gen, sizeof(gen), "%u", c->generation);
    char *args[14];
    int n = 0;
    args[n++] = path;
    if (c->instance >= 0) {
        args[n++] = "-i";
        args[n++] = inst;
    }
    if (c->slot >= 0) {
        snprintf(slot, sizeof(slot), "%d", c->slot);
        args[n++] = "-s";
        args[n++] = slot;
    }
    args[n++] = "-g";
    args[n++] = gen;
    args[n++] = "-l";
    args[n++] = (char *)dest;
    args[n++] = m->cli_level_set ? "-V" : "-v"; /* quicd -v: debug everywhere */
    args[n++] = (char *)level;
    args[n] = NULL;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        qd_warn_errno("cannot start %s: socketpair", master_child_name(c));
        goto retry;
    }
    uv_stdio_container_t stdio[5];
    master_stdio(m, stdio);
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = sv[1];
    stdio[4].flags = UV_INHERIT_FD;
    stdio[4].data.fd = c->role == QD_ROLE_STATS ? m->stats_fds[1] : m->stats_fds[0];

    uv_process_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.file = path;
    opt.args = args;
    opt.exit_cb = on_child_exit;
    opt.stdio_count = 5;
    opt.stdio = stdio;
    c->proc.data = c;
    int rv = uv_spawn(m->loop, &c->proc, &opt);
    close(sv[1]);
    if (rv < 0) {
        close(sv[0]);
        qd_warn("cannot start %s from %s: %s", master_child_name(c), path, uv_strerror(rv));
        /* uv_spawn failures still need the handle closed. */
        c->has_proc = true;
        c->running = false;
        c->started_ms = qd_time_mono_ms();
        c->rapid_failures++;
        c->state = c->rapid_failures >= MASTER_THROTTLE_AFTER ? MS_THROTTLED : MS_BACKOFF;
        uint64_t delay = MASTER_BACKOFF_MS << (c->rapid_failures < 12 ? c->rapid_failures : 12);
        if (delay > (uint64_t)m->conf.throttle_time_ms)
            delay = (uint64_t)m->conf.throttle_time_ms;
        c->next_start_ms = c->started_ms + delay;
        uv_close((uv_handle_t *)&c->proc, on_proc_closed);
        return;
    }
    c->has_proc = true;
    c->running = true;
    c->pid = c->proc.pid;
    c->started_ms = qd_time_mono_ms();
    c->state = MS_STARTING;
    c->ctl = qd_chan_open(m->loop, sv[0], master_child_name(c), on_ctl_msg, on_ctl_close, c);
    qd_debug("started %s (pid %ld)", master_child_name(c), (long)c->pid);
    master_record_event(m, QD_EV_START, c);
    if (c->role == QD_ROLE_LISTENER) {
        escrow_return(c);
        master_gen_send_layout(m, c); /* what to open, before its configuration */
    }
    master_child_send_config(c, 0);
    return;
retry:
    c->state = MS_BACKOFF;
    uv_timer_start(&c->timer, on_restart_timer, MASTER_BACKOFF_MS, 0);
}

/* add - a new daemon, started; |slot|: a worker's place in its generation, else -1 */
static master_child *add(master *m, qd_role role, int instance, int slot)
{
    if (m->child_count >= MASTER_MAX_CHILDREN)
        qd_fatal("too many daemons (%d)", m->child_count);
    master_child *c = qd_xcalloc(1, sizeof(*c));
    c->m = m;
    c->role = role;
    c->instance = instance;
    c->slot = slot;
    c->generation = m->generation;
    uv_timer_init(m->loop, &c->timer);
    c->timer.data = c;
    m->children[m->child_count++] = c;
    spawn(c);
    return c;
}

master_child *master_child_add(master *m, qd_role role, int instance)
{
    return add(m, role, instance, -1);
}

master_child *master_child_add_worker(master *m, int id, int slot)
{
    return add(m, QD_ROLE_WORKER, id, slot);
}

master_child *master_child_find(master *m, qd_role role)
{
    master_child *found = NULL;

    /* The newest of that role: a replaced one is stopping, its successor is not. */
    for (int i = 0; i < m->child_count; i++)
        if (m->children[i]->role == role && m->children[i]->state != MS_STOPPING)
            found = m->children[i];
    return found;
}

/*
 * master_upstream_sync - the upstream daemon runs while proxy_table is
 * set: started when a start or reload sets it, retired when a reload
 * clears it.
 */
void master_upstream_sync(master *m)
{
    master_child *c = master_child_find(m, QD_ROLE_UPSTREAM);
    bool want = m->conf.proxy_table[0] != '\0';

    if (want && (c == NULL || c->retire)) {
        master_child_add(m, QD_ROLE_UPSTREAM, -1);
    } else if (!want && c != NULL && !c->retire) {
        c->retire = true;
        master_child_stop(c, false);
    }
}

void master_children_start(master *m)
{
    int n = qd_conf_workers(&m->conf);

    /* stats first so it records the others starting; the listener after
     * the workers, whose ids its first layout lists */
    uint8_t ids[MASTER_MAX_WORKER_IDS];
    if (master_gen_alloc_ids(m, n, ids) < 0)
        qd_fatal("%d workers beside the previous master's exceed %d worker ids", n,
                 MASTER_MAX_WORKER_IDS);
    master_child_add(m, QD_ROLE_STATS, -1);
    master_upstream_sync(m);
    master_child_add(m, QD_ROLE_APP, -1);
    for (int i = 0; i < n; i++)
        master_child_add_worker(m, ids[i], i);
    master_child_add(m, QD_ROLE_LISTENER, -1);
    qd_info("started %d workers", n);
}

/* on_kill_timer - the drain deadline passed */
static void on_kill_timer(uv_timer_t *t)
{
    master_child *c = t->data;

    if (c->running) {
        qd_warn("%s (pid %ld) did not stop within the drain deadline; killing it",
                master_child_name(c), (long)c->pid);
        uv_process_kill(&c->proc, SIGKILL);
    }
}

void master_child_stop(master_child *c, bool kill_now)
{
    master *m = c->m;

    if (!c->running) {
        uv_timer_stop(&c->timer);
        if (c->retire && !c->has_proc)
            remove_child(c);
        return;
    }
    if (c->state == MS_STOPPING && !kill_now)
        return;
    c->state = MS_STOPPING;
    if (kill_now) {
        uv_process_kill(&c->proc, SIGKILL);
        return;
    }
    qd_ipc_msg *msg = master_child_msg(c, QD_MSG_STOP, 0);
    qd_ipc_put_u32(msg, QD_F_DEADLINE_MS, (uint32_t)m->conf.drain_timeout_ms);
    /* A worker of a generation that ended, or of a master that handed
     * over: the listener steers nothing new to it any more. */
    if (c->role == QD_ROLE_WORKER && (c->retire || m->handed_over))
        qd_ipc_put_u32(msg, QD_F_FLAGS, QD_STOP_F_STEERED_AWAY);
    if (master_child_queue(c) < 0)
        uv_process_kill(&c->proc, SIGTERM);
    uv_timer_start(&c->timer, on_kill_timer, (uint64_t)m->conf.drain_timeout_ms + 1000, 0);
}

void master_child_replace(master_child *c)
{
    if (c == NULL)
        return;
    c->replace = true;
    master_child_stop(c, false);
    if (!c->running && c->replace)
        c->replace = false; /* not running (back-off): its restart uses the new config */
}

int master_children_alive(const master *m)
{
    int n = 0;

    for (int i = 0; i < m->child_count; i++)
        if (m->children[i]->running || m->children[i]->has_proc)
            n++;
    return n;
}

void master_children_stop_all(master *m)
{
    bool others = false, workers = false;

    /* The workers and the listener first; the app once no worker is left
     * (requests the workers drain still need it); stats last, so that it
     * records everyone's exit. */
    for (int i = 0; i < m->child_count; i++) {
        master_child *c = m->children[i];
        if (c->role == QD_ROLE_WORKER && (c->running || c->has_proc))
            workers = true;
    }
    for (int i = 0; i < m->child_count; i++) {
        master_child *c = m->children[i];
        if (c->role == QD_ROLE_STATS)
            continue;
        if (c->running || c->has_proc)
            others = true;
        if (c->role == QD_ROLE_APP && workers)
            uv_timer_stop(&c->timer); /* no restart meanwhile */
        else
            master_child_stop(c, false);
    }
    for (int i = 0; i < m->child_count; i++) {
        master_child *c = m->children[i];
        if (c->role != QD_ROLE_STATS)
            continue;
        if (!others)
            master_child_stop(c, false);
        else
            uv_timer_stop(&c->timer);
    }
}
