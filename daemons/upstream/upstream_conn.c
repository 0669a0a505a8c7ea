/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	upstream_conn - the workers' channels: connects handed over, reports
 *	in, server states out
 * SYNOPSIS
 *	upstream_conn_channel(), upstream_conn_announce(), upstream_conn_count(),
 *	upstream_conn_forget()
 * DESCRIPTION
 *	The master gives the daemon one channel per worker (CHANNEL, role
 *	worker); a restarted worker's new channel replaces the old one of the
 *	same instance. On each (libshared/qd_ipc.h has the contract):
 *
 *	UP_CONNECT (F_STREAM, F_GROUP, F_SERVER): a non-blocking connect to
 *	the server's address (a Unix socket, or the address its name resolved
 *	to; TCP_NODELAY on TCP), watched until writable or the group's
 *	connect_timeout; the answer is UP_CONNECTED with F_STATUS 0 and the
 *	socket, or an errno value and F_TEXT: ECONNREFUSED and the like from
 *	connect, ETIMEDOUT, ENOENT (no such server), EHOSTUNREACH (not
 *	resolved), EAGAIN (UPSTREAM_MAX_CONNECTS in flight), EINVAL (an ask
 *	without group or server). A connect's outcome counts as a passive
 *	success or failure of the server (upstream_passive); ENOENT,
 *	EHOSTUNREACH, EAGAIN and a failing socket() do not: the server was
 *	not tried.
 *
 *	UP_REPORT (F_GROUP, F_SERVER, F_STATUS): a request's outcome, counted
 *	the same way. A report for a server not in the table (a reload raced
 *	it) is ignored.
 *
 *	UP_COUNTS (F_INSTANCE, then per server F_GROUP, F_SERVER,
 *	F_UP_ACTIVE, F_UP_IDLE, F_REQUESTS, F_UP_FAILS): the worker's running
 *	totals, kept per server and worker instance (us_server.tallies,
 *	sorted by instance) for the status report. A message is checked
 *	whole before anything is stored: F_INSTANCE once, first, and the
 *	channel's own; each entry begins with F_GROUP and has the other five
 *	once each. An entry for a server not in the table is ignored; a
 *	server the message does not name keeps what the worker said before
 *	(a large table may take several messages).
 *
 *	UP_STATE goes out when a channel opens (every server, in as many
 *	messages as it takes) and whenever servers change (those only), each
 *	message with the next F_SEQ: one counter for the daemon, started from
 *	the wall clock (ms * 1000) so a restarted daemon's numbers are higher.
 *	A message that a worker's full queue refuses is not lost silently:
 *	that worker gets every server again once its queue drains.
 *
 *	Ownership: a us_worker owns its qd_chan and its connects in flight; a
 *	us_connect owns its socket, poll handle and timer, and holds a
 *	reference to its server (us_server.connecting), so a server retired
 *	by a reload lives until its connects end. A closed channel cancels
 *	its connects (sockets closed, no answer, nothing counted) and drops
 *	its counts, as a channel replaced by a restarted worker's does; a
 *	server owns its tallies, freed when it leaves the table. The
 *	answer's socket is borrowed by qd_chan_send; ours is closed after.
 * DIAGNOSTICS
 *	Channels opening and closing at info level; a malformed message is
 *	logged (rate-limited), counted and dropped (qd_child_bad_message); a
 *	reply or state message a channel refuses is a rate-limited warning.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_log.h"
#include "qd_time.h"

/* local */
#include "upstream.h"

#define REPLY_TEXT_MAX 128 /* keeps UP_CONNECTED within QD_CHAN_CTL_MAX_BODY */

typedef struct us_connect us_connect;

/* One worker's channel; owned by the daemon's list. */
typedef struct us_worker {
    struct us_worker *next;
    upstream *u;
    uint32_t instance;
    qd_chan *ch;
    us_connect *connects; /* in flight for this worker */
    bool stale;           /* a state message was refused: all again once the queue drains */
    char name[32];        /* "worker[N]" */
} us_worker;

/* One connect in flight; owned by its worker until it ends, then by its closing handles. */
struct us_connect {
    us_connect *prev, *next;
    us_worker *w; /* NULL once finished or cancelled */
    us_server *s; /* a reference (s->connecting); NULL once dropped */
    uint64_t stream;
    int fd;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
};

/* worker_name - "worker[N]" */
static const char *worker_name(const us_worker *w)
{
    return w->name;
}

/* connect_result - the CONNECT value (qd_metrics.def) of a connect that ended with |err| */
static unsigned connect_result(int err)
{
    switch (err) {
    case 0:
        return QD_MV_CONNECT_OK;
    case ECONNREFUSED:
    case ENOENT: /* a Unix socket's file is not there */
        return QD_MV_CONNECT_REFUSED;
    case ETIMEDOUT:
        return QD_MV_CONNECT_TIMEOUT;
    case EHOSTUNREACH:
    case ENETUNREACH:
        return QD_MV_CONNECT_UNREACHABLE;
    default:
        return QD_MV_CONNECT_OTHER;
    }
}

/*
 * reply - UP_CONNECTED for |stream|: |fd| (borrowed) on success, else |err|
 * and |why|; counted by result (a connect whose worker left is not)
 */
static void reply(us_worker *w, uint64_t stream, int err, const char *why, int fd)
{
    static qd_log_limit lim;
    char text[REPLY_TEXT_MAX];
    qd_ipc_msg *m = qd_chan_msg(w->ch, QD_MSG_UP_CONNECTED, 0);

    w->u->connects[connect_result(err)]++;
    qd_ipc_put_u64(m, QD_F_STREAM, stream);
    qd_ipc_put_u32(m, QD_F_STATUS, (uint32_t)err);
    if (err != 0) {
        snprintf(text, sizeof(text), "%s", why);
        qd_ipc_put_str(m, QD_F_TEXT, text);
    } else {
        qd_ipc_put_fd(m, fd);
    }
    /* An answer releases a request waiting in the worker: it may use the control reserve. */
    int rv = qd_chan_queue_ctl(w->ch);
    if (rv < 0)
        qd_log_limited(&lim, QD_LOG_WARN, "cannot answer %s's connect: %s", worker_name(w),
                       rv == QD_ERR_IO ? strerror(errno) : qd_strerror(rv));
}

/* unlink_connect - take |k| off its worker's list */
static void unlink_connect(us_connect *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else if (k->w)
        k->w->connects = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    k->w = NULL;
}

static void on_connect_handle_closed(uv_handle_t *h)
{
    us_connect *k = h->data;

    if (--k->open_handles == 0)
        free(k);
}

/* on_connect_poll_closed - libuv is done with the socket: close it */
static void on_connect_poll_closed(uv_handle_t *h)
{
    us_connect *k = h->data;

    close(k->fd);
    k->fd = -1;
    on_connect_handle_closed(h);
}

/*
 * end_connect - |k| is over: off its worker's list, its server's reference
 * dropped, the daemon's count down, its handles (and then the socket and
 * itself) closed
 */
static void end_connect(us_connect *k)
{
    upstream *u = k->s->u;

    unlink_connect(k);
    upstream_server_put(k->s);
    k->s = NULL;
    u->connecting--;
    uv_poll_stop(&k->poll);
    uv_timer_stop(&k->timer);
    uv_close((uv_handle_t *)&k->poll, on_connect_poll_closed);
    uv_close((uv_handle_t *)&k->timer, on_connect_handle_closed);
}

/* finish - the connect ended with |err| (0: connected): answer, count, close ours */
static void finish(us_connect *k, int err, const char *why)
{
    us_server *s = k->s;

    if (k->w != NULL)
        reply(k->w, k->stream, err, why, k->fd);
    if (!s->retired) {
        if (err == 0)
            s->connects++;
        upstream_passive(s, err == 0, why);
    }
    end_connect(k);
}

/* on_connect_io - the socket became writable (connected, or failed) */
static void on_connect_io(uv_poll_t *p, int status, int events)
{
    us_connect *k = p->data;
    int err = 0;
    socklen_t len = sizeof(err);
    char why[96];

    (void)events;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    else if (status < 0 && err == 0)
        err = EIO; /* libuv says POLLERR and the socket has no error to tell */
    if (err != 0) {
        snprintf(why, sizeof(why), "connect: %s", strerror(err));
        finish(k, err, why);
        return;
    }
    finish(k, 0, NULL);
}

static void on_connect_timeout(uv_timer_t *t)
{
    us_connect *k = t->data;
    char why[96];

    snprintf(why, sizeof(why), "connect: timed out after %ums", k->s->gconf.connect_timeout_ms);
    finish(k, ETIMEDOUT, why);
}

/*
 * start_connect - a connect to |s| for |w|'s ask |stream|. Answers at once
 * when it completes or fails at once, else leaves it in flight.
 */
static void start_connect(us_worker *w, uint64_t stream, us_server *s)
{
    upstream *u = w->u;
    char why[160];
    int fd, one = 1;

    if (s->addrlen == 0) {
        snprintf(why, sizeof(why), "not resolved: %s",
                 s->resolve_error[0] ? s->resolve_error : "pending");
        reply(w, stream, EHOSTUNREACH, why, -1);
        return;
    }
    if (u->connecting >= UPSTREAM_MAX_CONNECTS) {
        snprintf(why, sizeof(why), "%u connects in flight", u->connecting);
        reply(w, stream, EAGAIN, why, -1);
        return;
    }
    fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int err = errno;
        snprintf(why, sizeof(why), "socket: %s", strerror(err));
        reply(w, stream, err, why, -1);
        return;
    }
    if (s->addr.ss_family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&s->addr, s->addrlen) == 0) {
        /* A Unix socket's connect usually completes here */
        reply(w, stream, 0, NULL, fd);
        close(fd);
        s->connects++;
        upstream_passive(s, true, NULL);
        return;
    }
    if (errno != EINPROGRESS) {
        int err = errno; /* a Unix socket whose backlog is full says EAGAIN */
        snprintf(why, sizeof(why), "connect: %s", strerror(err));
        close(fd);
        reply(w, stream, err, why, -1);
        upstream_passive(s, false, why);
        return;
    }
    us_connect *k = qd_xcalloc(1, sizeof(*k));
    k->w = w;
    k->s = s;
    s->connecting++;
    u->connecting++;
    k->stream = stream;
    k->fd = fd;
    k->next = w->connects;
    if (w->connects)
        w->connects->prev = k;
    w->connects = k;
    uv_poll_init(u->child.loop, &k->poll, fd);
    uv_timer_init(u->child.loop, &k->timer);
    k->poll.data = k->timer.data = k;
    k->open_handles = 2;
    uv_poll_start(&k->poll, UV_WRITABLE, on_connect_io);
    uv_timer_start(&k->timer, on_connect_timeout, s->gconf.connect_timeout_ms, 0);
}

/* cancel_connects - |w|'s channel is gone: its connects end unanswered and uncounted */
static size_t cancel_connects(us_worker *w)
{
    size_t n = 0;

    while (w->connects != NULL) {
        end_connect(w->connects);
        n++;
    }
    return n;
}

/* put_server - append |s| to a state message, whole or not at all; 0 or QD_ERR_TOOBIG */
static int put_server(qd_ipc_msg *m, const us_server *s)
{
    uint32_t len = m->len;

    if (qd_ipc_put_str(m, QD_F_GROUP, s->group) < 0 ||
        qd_ipc_put_str(m, QD_F_SERVER, s->name) < 0 ||
        qd_ipc_put_u32(m, QD_F_STATUS, s->state == US_UP ? QD_UP_STATE_UP : QD_UP_STATE_DOWN) < 0) {
        m->len = len;
        return QD_ERR_TOOBIG;
    }
    return 0;
}

/* deliver - send a state message to |only|, or to every worker when NULL */
static void deliver(upstream *u, us_worker *only, const qd_ipc_msg *m)
{
    static qd_log_limit lim;

    for (us_worker *w = only ? only : u->workers; w != NULL; w = only ? NULL : w->next) {
        int rv = qd_chan_send(w->ch, m);
        if (rv == QD_ERR_TOOBIG) {
            w->stale = true;
            qd_log_limited(&lim, QD_LOG_WARN,
                           "%s's queue is full: it gets every server's state once it drains",
                           worker_name(w));
        } else if (rv < 0 && rv != QD_ERR_EOF) {
            qd_log_limited(&lim, QD_LOG_WARN, "cannot send server states to %s: %s", worker_name(w),
                           rv == QD_ERR_IO ? strerror(errno) : qd_strerror(rv));
        }
    }
}

/* start_state - a new UP_STATE with the next sequence number */
static void start_state(upstream *u, qd_ipc_msg *m)
{
    qd_ipc_msg_init(m, QD_MSG_UP_STATE, 0);
    qd_ipc_put_u64(m, QD_F_SEQ, ++u->seq);
}

/*
 * send_states - UP_STATE messages to |only| (or every worker): every
 * server, or (|marked|) those marked for the broadcast, unmarking them
 */
static void send_states(upstream *u, us_worker *only, bool marked)
{
    size_t in_msg = 0, total = 0;

    if (only == NULL && u->workers == NULL) { /* nobody to tell: just unmark */
        for (us_server *s = u->servers; s != NULL; s = s->next)
            s->announce = false;
        return;
    }
    qd_ipc_msg *m = qd_xmalloc(sizeof(*m)); /* one message for every worker's channel */
    start_state(u, m);
    for (us_server *s = u->servers; s != NULL; s = s->next) {
        if (marked && !s->announce)
            continue;
        if (marked)
            s->announce = false;
        if (put_server(m, s) < 0) {
            deliver(u, only, m);
            start_state(u, m);
            in_msg = 0;
            if (put_server(m, s) < 0)
                qd_panic("server %s of %s does not fit an empty state message", s->name, s->group);
        }
        in_msg++;
        total++;
    }
    /* a channel that opens on an empty table still gets a message: the sequence so far */
    if (in_msg > 0 || (!marked && total == 0))
        deliver(u, only, m);
    free(m);
}

/* on_drain - a worker whose queue refused a state message gets every server again */
static void on_drain(qd_chan *ch)
{
    us_worker *w = ch->data;

    if (!w->stale)
        return;
    w->stale = false;
    send_states(w->u, w, false);
}

/* find_asked - the server a message names (F_GROUP, F_SERVER); NULL and *rv < 0 if malformed */
static us_server *find_asked(us_worker *w, const qd_ipc_msg *m, int *rv)
{
    char group[QD_PROXY_NAME_MAX], name[sizeof(((us_server *)0)->name)];

    if ((*rv = qd_ipc_get_str(m, QD_F_GROUP, group, sizeof(group))) < 0 ||
        (*rv = qd_ipc_get_str(m, QD_F_SERVER, name, sizeof(name))) < 0)
        return NULL;
    return upstream_find(w->u, group, name);
}

/* handle_connect - UP_CONNECT */
static void handle_connect(us_worker *w, const qd_ipc_msg *m)
{
    uint64_t stream;
    int rv;

    if ((rv = qd_ipc_get_u64(m, QD_F_STREAM, &stream)) < 0) {
        qd_child_bad_message(&w->u->child, worker_name(w), rv);
        return;
    }
    us_server *s = find_asked(w, m, &rv);
    if (rv < 0) {
        /* dropped, but the ask has an id: say so, or the worker's request would wait for nothing */
        qd_child_bad_message(&w->u->child, worker_name(w), rv);
        reply(w, stream, EINVAL, "no group or server in the ask", -1);
        return;
    }
    if (s == NULL) {
        reply(w, stream, ENOENT, "no such server", -1);
        return;
    }
    start_connect(w, stream, s);
}

/* handle_report - UP_REPORT: a request's outcome at a server */
static void handle_report(us_worker *w, const qd_ipc_msg *m)
{
    uint32_t result;
    char why[64];
    int rv;

    us_server *s = find_asked(w, m, &rv);
    if (rv == 0 && (rv = qd_ipc_get_u32(m, QD_F_STATUS, &result)) == 0 &&
        result > QD_UP_RESULT_BROKEN)
        rv = QD_ERR_INVAL;
    if (rv < 0) {
        qd_child_bad_message(&w->u->child, worker_name(w), rv);
        return;
    }
    if (s == NULL) {
        qd_debug("%s reported on a server not in the table; ignored", worker_name(w));
        return;
    }
    snprintf(why, sizeof(why), "%s (%s)", result == QD_UP_RESULT_TIMEOUT ? "timeout" : "broken",
             worker_name(w));
    upstream_passive(s, result == QD_UP_RESULT_OK, why);
}

/* be32, be64 - a field's big-endian value */
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* tally_set - store |t| as its worker's counts at |s| (kept sorted by instance) */
static void tally_set(us_server *s, const us_tally *t)
{
    size_t i = 0;

    while (i < s->tally_count && s->tallies[i].instance < t->instance)
        i++;
    if (i < s->tally_count && s->tallies[i].instance == t->instance) {
        s->tallies[i] = *t;
        return;
    }
    if (s->tally_count == s->tally_cap) {
        s->tally_cap = s->tally_cap ? 2 * s->tally_cap : 4;
        s->tallies = qd_xrealloc(s->tallies, s->tally_cap * sizeof(s->tallies[0]));
    }
    memmove(&s->tallies[i + 1], &s->tallies[i], (s->tally_count - i) * sizeof(s->tallies[0]));
    s->tallies[i] = *t;
    s->tally_count++;
}

/* tally_drop - forget worker |instance|'s counts at every server */
static void tally_drop(upstream *u, uint32_t instance)
{
    for (us_server *s = u->servers; s != NULL; s = s->next)
        for (size_t i = 0; i < s->tally_count; i++)
            if (s->tallies[i].instance == instance) {
                memmove(&s->tallies[i], &s->tallies[i + 1],
                        (s->tally_count - i - 1) * sizeof(s->tallies[0]));
                s->tally_count--;
                break;
            }
}

/* the fields of one UP_COUNTS entry */
enum {
    C_GROUP = 1 << 0,
    C_SERVER = 1 << 1,
    C_ACTIVE = 1 << 2,
    C_IDLE = 1 << 3,
    C_REQUESTS = 1 << 4,
    C_FAILS = 1 << 5,
    C_ALL = (1 << 6) - 1
};

/* One entry of an UP_COUNTS as it is read. */
typedef struct counts_entry {
    char group[QD_PROXY_NAME_MAX];
    char server[sizeof(((us_server *)0)->name)];
    us_tally t;
    unsigned have; /* C_* */
} counts_entry;

/* entry_done - a whole entry: stored (when |store|) or counted as not in the table */
static void entry_done(us_worker *w, const counts_entry *e, bool store, size_t *unknown)
{
    us_server *s = upstream_find(w->u, e->group, e->server);

    if (s == NULL)
        (*unknown)++;
    else if (store)
        tally_set(s, &e->t);
}

/* copy_str - a string field into |dst|; 0 or QD_ERR_TOOBIG */
static int copy_str(char *dst, size_t cap, const uint8_t *val, size_t len)
{
    if (len >= cap)
        return QD_ERR_TOOBIG;
    memcpy(dst, val, len);
    dst[len] = '\0';
    return 0;
}

/*
 * walk_counts - read an UP_COUNTS from |w|, storing its entries when
 * |store| and counting those for servers not in the table in |*unknown|.
 * Returns 0, QD_ERR_NOTFOUND (no F_INSTANCE), QD_ERR_TOOBIG (a name too
 * long for any server) or QD_ERR_INVAL (anything else out of shape); run
 * it once without |store| so that a malformed message changes nothing.
 */
static int walk_counts(us_worker *w, const qd_ipc_msg *m, bool store, size_t *unknown)
{
    counts_entry e = {.have = 0};
    bool has_instance = false;
    size_t pos = 0, len;
    uint16_t tag;
    const uint8_t *val;
    unsigned bit;
    int rv;

    e.t.instance = w->instance;
    while (qd_ipc_next(m, &pos, &tag, &val, &len)) {
        if (tag == QD_F_INSTANCE) {
            if (has_instance || e.have != 0 || len != 4 || be32(val) != w->instance)
                return QD_ERR_INVAL;
            has_instance = true;
            continue;
        }
        if (!has_instance)
            return QD_ERR_NOTFOUND;
        switch (tag) {
        case QD_F_GROUP:
            if (e.have != 0 && e.have != C_ALL)
                return QD_ERR_INVAL;
            if (e.have == C_ALL)
                entry_done(w, &e, store, unknown);
            e.have = 0;
            bit = C_GROUP;
            if ((rv = copy_str(e.group, sizeof(e.group), val, len)) < 0)
                return rv;
            break;
        case QD_F_SERVER:
            bit = C_SERVER;
            if ((rv = copy_str(e.server, sizeof(e.server), val, len)) < 0)
                return rv;
            break;
        /* the decoder has checked the sizes of these (u32, u64); checked again all the same */
        case QD_F_UP_ACTIVE:
            if (len != 4)
                return QD_ERR_INVAL;
            bit = C_ACTIVE;
            e.t.active = be32(val);
            break;
        case QD_F_UP_IDLE:
            if (len != 4)
                return QD_ERR_INVAL;
            bit = C_IDLE;
            e.t.idle = be32(val);
            break;
        case QD_F_REQUESTS:
            if (len != 8)
                return QD_ERR_INVAL;
            bit = C_REQUESTS;
            e.t.requests = be64(val);
            break;
        case QD_F_UP_FAILS:
            if (len != 8)
                return QD_ERR_INVAL;
            bit = C_FAILS;
            e.t.fails = be64(val);
            break;
        default:
            return QD_ERR_INVAL;
        }
        /* an entry starts with F_GROUP and has each field once */
        if ((e.have == 0) != (bit == C_GROUP) || (e.have & bit))
            return QD_ERR_INVAL;
        e.have |= bit;
    }
    if (!has_instance)
        return QD_ERR_NOTFOUND;
    if (e.have != 0 && e.have != C_ALL)
        return QD_ERR_INVAL;
    if (e.have == C_ALL)
        entry_done(w, &e, store, unknown);
    return 0;
}

/* handle_counts - UP_COUNTS: a worker's counts per server, checked whole, then stored */
static void handle_counts(us_worker *w, const qd_ipc_msg *m)
{
    size_t unknown = 0;
    int rv;

    if ((rv = walk_counts(w, m, false, &unknown)) < 0) {
        qd_child_bad_message(&w->u->child, worker_name(w), rv);
        return;
    }
    unknown = 0;
    walk_counts(w, m, true, &unknown);
    if (unknown > 0)
        qd_debug("%s counted %zu servers not in the table; ignored", worker_name(w), unknown);
}

/* on_worker_msg - one message from a worker */
static void on_worker_msg(qd_chan *ch, qd_ipc_msg *m)
{
    us_worker *w = ch->data;

    switch (m->type) {
    case QD_MSG_UP_CONNECT:
        handle_connect(w, m);
        break;
    case QD_MSG_UP_REPORT:
        handle_report(w, m);
        break;
    case QD_MSG_UP_COUNTS:
        handle_counts(w, m);
        break;
    default:
        qd_child_bad_message(&w->u->child, worker_name(w), QD_ERR_UNKNOWN);
    }
}

/* free_worker - unlink |w| from the daemon's list and free it (its channel is closed) */
static void free_worker(us_worker *w)
{
    for (us_worker **pp = &w->u->workers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    free(w);
}

/* on_worker_close - the worker went away (it exited, or the master replaced the channel) */
static void on_worker_close(qd_chan *ch)
{
    us_worker *w = ch->data;
    size_t n = cancel_connects(w);

    tally_drop(w->u, w->instance);
    qd_info("%s's channel closed (%zu connects cancelled)", worker_name(w), n);
    free_worker(w);
}

void upstream_conn_channel(upstream *u, qd_role role, uint32_t instance, int fd)
{
    us_worker *w;

    if (role != QD_ROLE_WORKER) {
        qd_warn("channel to %s is not for me; closing it", qd_role_name(role));
        close(fd);
        return;
    }
    for (w = u->workers; w != NULL && w->instance != instance; w = w->next)
        ;
    if (w != NULL) {
        /* a restarted worker: its predecessor's channel and asks are void */
        size_t n = cancel_connects(w);
        qd_chan_close(w->ch);
        tally_drop(u, instance); /* its successor counts from 0 */
        qd_info("%s has a new channel; the old one is closed (%zu connects cancelled)",
                worker_name(w), n);
    } else {
        w = qd_xcalloc(1, sizeof(*w));
        w->u = u;
        w->instance = instance;
        snprintf(w->name, sizeof(w->name), "worker[%u]", instance);
        w->next = u->workers;
        u->workers = w;
        qd_info("channel to %s open", worker_name(w));
    }
    w->stale = false;
    w->ch = qd_chan_open(u->child.loop, fd, w->name, on_worker_msg, on_worker_close, w);
    w->ch->on_drain = on_drain;
    send_states(u, w, false);
}

void upstream_conn_announce(upstream *u)
{
    send_states(u, NULL, true);
}

size_t upstream_conn_count(const upstream *u)
{
    size_t n = 0;

    for (const us_worker *w = u->workers; w != NULL; w = w->next)
        n++;
    return n;
}

void upstream_conn_forget(us_server *s)
{
    free(s->tallies);
    s->tallies = NULL;
    s->tally_count = s->tally_cap = 0;
}
