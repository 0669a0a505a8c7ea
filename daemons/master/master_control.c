/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	master_control - the control socket quicctl talks to
 * SYNOPSIS
 *	master_control_open(), master_control_close(), master_control_reload_done()
 * DESCRIPTION
 *	A SOCK_SEQPACKET Unix socket, runtime_directory/control.sock, mode
 *	0600 and owned by the user that started quicd; connections from other
 *	users (SO_PEERCRED) are refused even if the mode was loosened. Each
 *	request is one qd_ipc message (CTL_STATUS, CTL_RELOAD, CTL_STOP) and
 *	gets one CTL_REPLY: F_STATUS 0 on success, 1 on failure, and F_TEXT.
 *	The status text has one line per process of space-separated key=value
 *	pairs (role instance pid state uptime_s restarts connections ...),
 *	which quicctl formats as a table or JSON. A stop request's connection
 *	stays open until the master exits, so quicctl can wait for the end.
 * DIAGNOSTICS
 *	Malformed requests are logged (rate-limited) and dropped.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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

static void conns_end(master_client *cl, bool answer);

/* client_close - drop one client */
static void client_close(master_client *cl)
{
    if (!cl->in_use)
        return;
    conns_end(cl, false);
    qd_chan_close(cl->ch);
    cl->ch = NULL;
    cl->in_use = false;
}

/* reply - send F_STATUS and F_TEXT to a client */
static void reply(master_client *cl, uint32_t id, uint32_t status, const char *text)
{
    if (cl->ch == NULL)
        return;
    qd_ipc_msg *msg = qd_chan_msg(cl->ch, QD_MSG_CTL_REPLY, id);
    qd_ipc_put_u32(msg, QD_F_STATUS, status);
    if (qd_ipc_put_str(msg, QD_F_TEXT, text) < 0)
        qd_ipc_put_str(msg, QD_F_TEXT, "reply too large");
    int rv = qd_chan_queue(cl->ch);
    if (rv < 0)
        qd_debug("control client went away: %s", qd_strerror(rv));
}

/* status_line - one process as key=value pairs */
static void status_line(qd_buf *b, const char *role, int instance, long pid, const char *state,
                        uint64_t uptime_ms, uint32_t restarts, const master_child *c, long next_s,
                        uint64_t send_failures)
{
    qd_buf_printf(b, "role=%s instance=%d pid=%ld state=%s uptime_s=%llu restarts=%u", role,
                  instance, pid, state, (unsigned long long)(uptime_ms / 1000), restarts);
    if (strcmp(role, "worker") == 0 && c != NULL)
        qd_buf_printf(b,
                      " connections=%u tcp_connections=%u streams=%u retry=%s half_open=%u"
                      " new_conns_s=%u retries_sent=%llu initials_dropped=%llu"
                      " udp_send_errors=%llu udp_emsgsize=%llu udp_rxq_drops=%llu"
                      " udp_rcvbuf=%u udp_sndbuf=%u closed_header_bombs=%llu"
                      " closed_reset_floods=%llu closed_frame_floods=%llu"
                      " closed_protocol_errors=%llu proxied_requests=%llu proxy_errors=%llu"
                      " proxy_retries=%llu",
                      c->connections, c->tcp_conns, c->streams,
                      (c->status_flags & QD_STATUS_F_RETRY) ? "on" : "off", c->half_open,
                      c->new_conns, (unsigned long long)c->retries,
                      (unsigned long long)c->retry_drops, (unsigned long long)c->udp_send_errors,
                      (unsigned long long)c->udp_emsgsize, (unsigned long long)c->rxq_drops,
                      c->udp_rcvbuf, c->udp_sndbuf, (unsigned long long)c->closed[0],
                      (unsigned long long)c->closed[1], (unsigned long long)c->closed[2],
                      (unsigned long long)c->closed[3], (unsigned long long)c->proxied,
                      (unsigned long long)c->proxy_errors, (unsigned long long)c->proxy_retries);
    if (c != NULL && c->metrics != NULL) {
        /* a few running totals from the metrics table, for quicctl top */
        static const unsigned shown[] = {QD_MF_REQUESTS, QD_MF_HANDSHAKES, QD_MF_UDP_RX_DATAGRAMS,
                                         QD_MF_UDP_TX_DATAGRAMS, QD_MF_QUIC_DROPPED,
                                         QD_MF_RESPONSE_BYTES};
        char key[64];
        for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
            qd_buf_printf(b, " %s=%llu", qd_metrics_short_name(shown[i], key, sizeof(key)),
                          (unsigned long long)qd_metrics_family_sum(c->metrics, shown[i]));
    }
    if (strcmp(role, "app") == 0 && c != NULL)
        qd_buf_printf(b, " streams=%u", c->streams); /* requests that still owe a response */
    qd_buf_printf(b, " send_failures=%llu", (unsigned long long)send_failures);
    if (c != NULL)
        qd_buf_printf(b, " generation=%u", c->generation);
    if (next_s >= 0)
        qd_buf_printf(b, " next_start_s=%ld", next_s);
    qd_buf_printf(b, "\n");
}

/* do_status - build the status text */
static void do_status(master *m, qd_buf *b)
{
    uint64_t now = qd_time_mono_ms();

    status_line(b, "master", -1, (long)getpid(), m->stopping ? "stopping" : "running",
                now - m->started_ms, m->reloads, NULL, -1, m->ctl_send_failures);
    for (int pass = QD_ROLE_LISTENER; pass < QD_ROLE_COUNT; pass++) {
        for (int i = 0; i < m->child_count; i++) {
            master_child *c = m->children[i];
            if ((int)c->role != pass)
                continue;
            long next = -1;
            if (c->state == MS_BACKOFF || c->state == MS_THROTTLED)
                next = c->next_start_ms > now ? (long)((c->next_start_ms - now + 999) / 1000) : 0;
            status_line(b, qd_role_name(c->role), c->instance, c->running ? (long)c->pid : 0,
                        master_state_name(c->state), c->running ? now - c->started_ms : 0,
                        c->restarts, c, next, c->send_failures);
        }
    }
    /* The worker generations: what each still has. */
    for (int k = 0; k < m->ngens; k++) {
        const master_gen *g = &m->gens[k];
        uint32_t conns = 0, tcp = 0, streams = 0;
        int ready, n = master_gen_workers(m, g->gen, &ready);
        for (int i = 0; i < m->child_count; i++) {
            const master_child *c = m->children[i];
            if (c->role == QD_ROLE_WORKER && c->generation == g->gen) {
                conns += c->connections;
                tcp += c->tcp_conns;
                streams += c->streams;
            }
        }
        qd_buf_printf(b, "kind=generation generation=%u phase=%s workers=%d ready=%d "
                         "connections=%u tcp_connections=%u streams=%u\n",
                      g->gen, g->serving ? "serving" : g->retiring ? "draining" : "starting", n,
                      ready, conns, tcp, streams);
    }
}

/* on_timer_closed - free a heap timer */
static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

/*
 * conns_end - answer a pending `quicctl conns` with what arrived (when
 * |answer|) and release its channels and timer.
 */
static void conns_end(master_client *cl, bool answer)
{
    if (cl->conns_timer == NULL)
        return;
    for (int i = 0; i < MASTER_MAX_CHILDREN; i++) {
        qd_chan_close(cl->conns[i]);
        cl->conns[i] = NULL;
    }
    if (answer) {
        if (cl->conns_pending > 0)
            qd_buf_printf(&cl->conns_text, "unanswered=%d\n", cl->conns_pending);
        reply(cl, cl->conns_id, 0, qd_buf_str(&cl->conns_text));
    }
    cl->conns_pending = 0;
    qd_buf_release(&cl->conns_text);
    uv_timer_stop(cl->conns_timer);
    uv_close((uv_handle_t *)cl->conns_timer, on_timer_closed);
    cl->conns_timer = NULL;
}

static void on_conns_timeout(uv_timer_t *t)
{
    conns_end(t->data, true);
}

/* safe_copy - |val| with anything but [0-9A-Za-z.:[]%/-] replaced by '?', NUL-terminated */
static const char *safe_copy(char *dst, size_t cap, const uint8_t *val, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;

    for (size_t i = 0; i < n; i++) {
        char ch = (char)val[i];
        dst[i] = ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  strchr(".:[]%/-", ch) != NULL) && ch != '\0'
                     ? ch
                     : '?';
    }
    dst[n] = '\0';
    return dst;
}

/*
 * conns_line_end - end the line of one connection, if one is open; a
 * connection whose group had no F_PROTO (a worker from before TCP) is h3.
 */
static void conns_line_end(qd_buf *b, bool *open_line, bool *has_proto)
{
    if (!*open_line)
        return;
    qd_buf_printf(b, "%s\n", *has_proto ? "" : " protocol=" QD_PROTO_H3);
    *open_line = false;
    *has_proto = false;
}

/* conns_format - a worker's QD_MSG_CONNS as key=value lines, bounded */
static void conns_format(qd_buf *b, const qd_ipc_msg *msg)
{
    uint32_t inst = 0, total = 0, v32, listed = 0;
    size_t pos = 0, len;
    uint16_t tag;
    const uint8_t *val;
    bool open_line = false, has_proto = false;
    char tmp[72];

    qd_ipc_get_u32(msg, QD_F_INSTANCE, &inst);
    qd_ipc_get_u32(msg, QD_F_CONNECTIONS, &total);
    while (qd_ipc_next(msg, &pos, &tag, &val, &len)) {
        if (b->len > QD_IPC_MAX_CHUNK - 1024) {
            conns_line_end(b, &open_line, &has_proto);
            qd_buf_printf(b, "truncated=1\n");
            return;
        }
        uint64_t v64 = 0;
        if (len == 8)
            for (int i = 0; i < 8; i++)
                v64 = (v64 << 8) | val[i];
        v32 = len == 4 ? ((uint32_t)val[0] << 24) | ((uint32_t)val[1] << 16) |
                             ((uint32_t)val[2] << 8) | val[3]
                       : 0;
        switch (tag) {
        case QD_F_CONN_ID:
            conns_line_end(b, &open_line, &has_proto);
            if (listed++ >= QD_CONNS_MAX)
                return;
            qd_buf_printf(b, "worker=%u id=%s", inst, safe_copy(tmp, 41, val, len));
            open_line = true;
            break;
        case QD_F_PEER:
            if (open_line)
                qd_buf_printf(b, " peer=%s", safe_copy(tmp, 65, val, len));
            break;
        case QD_F_TIME_MS:
            if (open_line) {
                uint64_t now = qd_time_real_ms();
                qd_buf_printf(b, " age_s=%llu", (unsigned long long)(now > v64 ? (now - v64) / 1000 : 0));
            }
            break;
        case QD_F_STREAMS:
            if (open_line)
                qd_buf_printf(b, " streams=%u", v32);
            break;
        case QD_F_BYTES_IN:
            if (open_line)
                qd_buf_printf(b, " bytes_in=%llu", (unsigned long long)v64);
            break;
        case QD_F_BYTES_OUT:
            if (open_line)
                qd_buf_printf(b, " bytes_out=%llu", (unsigned long long)v64);
            break;
        case QD_F_SRTT_US:
            if (open_line)
                qd_buf_printf(b, " srtt_us=%llu", (unsigned long long)v64);
            break;
        case QD_F_MIGRATIONS:
            if (open_line)
                qd_buf_printf(b, " migrations=%u", v32);
            break;
        case QD_F_FLAGS:
            if (open_line)
                qd_buf_printf(b, " handshake=%d resumed=%d early_data=%d",
                              (v32 & QD_REC_F_HANDSHAKE) != 0, (v32 & QD_REC_F_RESUMED) != 0,
                              (v32 & QD_REC_F_EARLY) != 0);
            break;
        case QD_F_PROTO:
            if (open_line && !has_proto) {
                qd_buf_printf(b, " protocol=%s", safe_copy(tmp, 17, val, len));
                has_proto = true;
            }
            break;
        default:
            break;
        }
    }
    conns_line_end(b, &open_line, &has_proto);
    if (total > listed)
        qd_buf_printf(b, "worker=%u more=%u\n", inst, total - listed);
}

/* conns_index - which worker's reply channel |ch| is; -1 if none */
static int conns_index(master_client *cl, qd_chan *ch)
{
    for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
        if (cl->conns[i] == ch)
            return i;
    return -1;
}

/* conns_answered - one worker's channel is done with (replied or closed) */
static void conns_answered(master_client *cl, int i)
{
    qd_chan_close(cl->conns[i]);
    cl->conns[i] = NULL;
    if (--cl->conns_pending == 0)
        conns_end(cl, true);
}

/* on_conns_reply - one worker's list */
static void on_conns_reply(qd_chan *ch, qd_ipc_msg *msg)
{
    master_client *cl = ch->data;
    int i = conns_index(cl, ch);

    if (i < 0)
        return;
    if (msg->type == QD_MSG_CONNS) {
        conns_format(&cl->conns_text, msg);
    } else {
        static qd_log_limit lim;
        cl->m->bad_messages++;
        qd_log_limited(&lim, QD_LOG_WARN, "conns: dropped bad reply from a worker: %s",
                       qd_ipc_type_name(msg->type));
    }
    conns_answered(cl, i);
}

/* on_conns_gone - a worker closed its reply channel without a list */
static void on_conns_gone(qd_chan *ch)
{
    master_client *cl = ch->data;
    int i = conns_index(cl, ch);

    if (i < 0)
        return;
    cl->conns[i] = NULL; /* closed already */
    if (--cl->conns_pending == 0)
        conns_end(cl, true);
}

/* do_conns - ask every running worker for its live connections */
static void do_conns(master_client *cl, uint32_t id)
{
    master *m = cl->m;

    if (cl->conns_timer != NULL) {
        reply(cl, id, 1, "a conns request is already in progress");
        return;
    }
    qd_buf_init(&cl->conns_text);
    cl->conns_id = id;
    cl->conns_pending = 0;
    for (int i = 0; i < MASTER_MAX_CHILDREN; i++)
        cl->conns[i] = NULL;
    cl->conns_timer = qd_xcalloc(1, sizeof(*cl->conns_timer));
    uv_timer_init(m->loop, cl->conns_timer);
    cl->conns_timer->data = cl;
    for (int i = 0; i < m->child_count && i < MASTER_MAX_CHILDREN; i++) {
        master_child *c = m->children[i];
        int sv[2];
        if (c->role != QD_ROLE_WORKER || !c->running || c->state != MS_RUNNING || c->ctl == NULL)
            continue;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
            qd_warn_errno("conns: socketpair");
            continue;
        }
        qd_ipc_put_fd(master_child_msg(c, QD_MSG_CONNS_REQ, id), sv[1]);
        int rv = master_child_queue(c);
        close(sv[1]);
        if (rv < 0) {
            close(sv[0]);
            continue;
        }
        cl->conns[i] = qd_chan_open(m->loop, sv[0], "conns reply", on_conns_reply, on_conns_gone, cl);
        cl->conns_pending++;
    }
    if (cl->conns_pending == 0) {
        conns_end(cl, true);
        return;
    }
    uv_timer_start(cl->conns_timer, on_conns_timeout, 2000, 0);
}

/* handle_request - one request from quicctl */
static void handle_request(master_client *cl, qd_ipc_msg *req)
{
    master *m = cl->m;
    qd_buf text;

    qd_buf_init(&text);
    switch (req->type) {
    case QD_MSG_CTL_STATUS:
        do_status(m, &text);
        reply(cl, req->id, 0, qd_buf_str(&text));
        break;
    case QD_MSG_CTL_RELOAD: {
        uint32_t rid = 0;
        if (m->stopping) {
            reply(cl, req->id, 1, "quicd is stopping");
            break;
        }
        if (m->reload_id != 0) {
            reply(cl, req->id, 1, "a reload is already in progress");
            break;
        }
        if (master_reload(m, &rid, &text) < 0) {
            reply(cl, req->id, 1, qd_buf_str(&text));
        } else if (rid == 0) {
            reply(cl, req->id, 0, qd_buf_str(&text));
        } else {
            cl->reload_id = rid; /* answered by master_control_reload_done */
            cl->request_id = req->id;
        }
        break;
    }
    case QD_MSG_CTL_CONNS:
        do_conns(cl, req->id);
        break;
    case QD_MSG_CTL_UPSTREAMS: {
        master_child *u = master_child_find(m, QD_ROLE_UPSTREAM);
        if (m->conf.proxy_table[0] == '\0')
            reply(cl, req->id, 1, "no proxy_table: no upstream servers");
        else if (u == NULL || u->report == NULL)
            reply(cl, req->id, 1, "the upstream daemon has not reported yet");
        else
            reply(cl, req->id, 0, u->report);
        break;
    }
    case QD_MSG_CTL_METRICS: {
        /* stats answers on the client's socket itself (the text may take several messages) */
        master_child *st = master_child_find(m, QD_ROLE_STATS);
        if (st == NULL || !st->running || st->ctl == NULL)
            reply(cl, req->id, 1, "the stats daemon is not running; try again in a moment");
        else if (qd_ipc_put_fd(master_child_msg(st, QD_MSG_METRICS_REQ, req->id), cl->ch->fd),
                 master_child_queue(st) < 0)
            reply(cl, req->id, 1, "the stats daemon is not running; try again in a moment");
        break;
    }
    case QD_MSG_CTL_UPGRADE: {
        uint32_t wid = 0;
        qd_buf why;
        qd_buf_init(&why);
        if (master_upgrade_start(m, &wid, &why) < 0) {
            reply(cl, req->id, 1, qd_buf_str(&why));
        } else {
            cl->reload_id = wid; /* answered by master_control_answer */
            cl->request_id = req->id;
        }
        qd_buf_release(&why);
        break;
    }
    case QD_MSG_CTL_STOP:
        reply(cl, req->id, 0, "stopping");
        cl->wants_stop_eof = true;
        master_stop(m, "quicctl stop");
        break;
    default: {
        static qd_log_limit lim;
        qd_log_limited(&lim, QD_LOG_WARN, "control: unexpected %s request",
                       qd_ipc_type_name(req->type));
        reply(cl, req->id, 1, "unknown request");
    }
    }
    qd_buf_release(&text);
}

void master_control_reload_done(master *m)
{
    for (int i = 0; i < MASTER_MAX_CLIENTS; i++) {
        master_client *cl = &m->clients[i];
        if (!cl->in_use || cl->reload_id == 0 || cl->reload_id != m->reload_id)
            continue;
        bool failed = m->reload_errors.len > 0;
        reply(cl, cl->request_id, failed ? 1 : 0,
              failed ? qd_buf_str(&m->reload_errors)
                     : m->reload_text.len > 0 ? qd_buf_str(&m->reload_text) : "reloaded");
        cl->reload_id = 0;
    }
}

void master_control_answer(master *m, uint32_t id, uint32_t status, const char *text)
{
    for (int i = 0; i < MASTER_MAX_CLIENTS; i++) {
        master_client *cl = &m->clients[i];
        if (!cl->in_use || cl->reload_id == 0 || cl->reload_id != id)
            continue;
        reply(cl, cl->request_id, status, text);
        cl->reload_id = 0;
    }
}

static void on_accept(uv_poll_t *p, int status, int events);

void master_control_start(master *m)
{
    if (m->control_fd >= 0)
        uv_poll_start(&m->control_poll, UV_READABLE, on_accept);
}

void master_control_stop_accepting(master *m)
{
    if (m->control_fd < 0)
        return;
    uv_poll_stop(&m->control_poll);
    uv_close((uv_handle_t *)&m->control_poll, NULL);
    close(m->control_fd); /* the socket and its path stay the next master's */
    m->control_fd = -1;
}

/* on_client - a request */
static void on_client(qd_chan *ch, qd_ipc_msg *req)
{
    handle_request(ch->data, req);
}

/* on_client_gone - the client went away */
static void on_client_gone(qd_chan *ch)
{
    master_client *cl = ch->data;

    cl->ch = NULL; /* closed already */
    client_close(cl);
}

/* on_accept - a new quicctl connection */
static void on_accept(uv_poll_t *p, int status, int events)
{
    master *m = p->data;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int fd = accept4(m->control_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0)
        return;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        static qd_log_limit lim;
        qd_log_limited(&lim, QD_LOG_WARN, "control: refused connection from uid %ld",
                       (long)cred.uid);
        close(fd);
        return;
    }
    for (int i = 0; i < MASTER_MAX_CLIENTS; i++) {
        master_client *cl = &m->clients[i];
        if (cl->in_use)
            continue;
        memset(cl, 0, sizeof(*cl));
        cl->in_use = true;
        cl->m = m;
        cl->ch = qd_chan_open(m->loop, fd, "control client", on_client, on_client_gone, cl);
        cl->ch->single = true; /* quicctl reads one message per record */
        return;
    }
    qd_warn("control: too many clients; refusing one");
    close(fd);
}

int master_control_open(master *m)
{
    struct sockaddr_un sun;
    mode_t old;

    if (m->control_fd >= 0) {
        /* The previous master's, handed over (quicd -U): it answers quicctl
         * until we take over (master_control_start). */
        uv_poll_init(m->loop, &m->control_poll, m->control_fd);
        m->control_poll.data = m;
        return 0;
    }

    if (strlen(m->sock_path) >= sizeof(sun.sun_path)) {
        qd_err("control socket path too long: %s", m->sock_path);
        return -1;
    }
    m->control_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (m->control_fd < 0) {
        qd_err("control socket: %s", strerror(errno));
        return -1;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, m->sock_path);
    unlink(m->sock_path); /* stale: we hold the lock, so no master is using it */
    old = umask(0077);
    int rv = bind(m->control_fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rv == 0)
        rv = chmod(m->sock_path, 0600);
    if (rv < 0 || listen(m->control_fd, 16) < 0) {
        qd_err("control socket %s: %s", m->sock_path, strerror(errno));
        close(m->control_fd);
        m->control_fd = -1;
        return -1;
    }
    uv_poll_init(m->loop, &m->control_poll, m->control_fd);
    m->control_poll.data = m;
    uv_poll_start(&m->control_poll, UV_READABLE, on_accept);
    return 0;
}

void master_control_close(master *m)
{
    if (m->control_fd < 0)
        return;
    uv_poll_stop(&m->control_poll);
    uv_close((uv_handle_t *)&m->control_poll, NULL);
    close(m->control_fd);
    m->control_fd = -1;
    if (m->owns_paths)
        unlink(m->sock_path);
    for (int i = 0; i < MASTER_MAX_CLIENTS; i++)
        if (!m->clients[i].wants_stop_eof)
            client_close(&m->clients[i]);
}
