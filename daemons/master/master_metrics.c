/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	master_metrics - the listening socket and the token of /metrics
 * SYNOPSIS
 *	master_metrics_check(conf, errs)
 *	master_metrics_open(m, why, len)
 *	master_metrics_reload(m, next, msg)
 *	master_metrics_send(c)
 * DESCRIPTION
 *	The stats daemon serves GET /metrics (daemons/stats/stats_http.c)
 *	but may be chrooted and unprivileged, so the master does what needs
 *	root or the file system: it binds metrics_listen (TCP, SO_REUSEADDR,
 *	SO_REUSEPORT after a probe without it, IPV6_V6ONLY for an IPv6
 *	address, listen(MASTER_METRICS_BACKLOG)) at start, and again at a
 *	reload that changes the key (then closing the old socket), and opens
 *	metrics_token_file. Before each CONFIG to stats (a start, a restart
 *	after a crash, a reload) it sends QD_MSG_METRICS_HTTP with the
 *	listening socket and the token file, so a restarted stats serves the
 *	same socket: connections that arrive meanwhile wait in its backlog.
 *
 *	Ownership: the master owns the listening socket (m->metrics_fd) from
 *	the bind until a reload moves or clears the endpoint, or the master
 *	exits; stats holds a duplicate (SCM_RIGHTS). The token file is opened
 *	for each message and closed once it is sent (or queued, duplicated).
 *	At quicctl upgrade the socket travels in HANDOFF to the new master
 *	(master_upgrade.c), which keeps it when its configuration names the
 *	same address.
 * DIAGNOSTICS
 *	A socket that cannot be bound is a startup error, and at a reload
 *	fails the reload (the old socket stays). A token file that cannot be
 *	read or holds no token is a configuration error (quicd -t, start,
 *	reload), as file:line: metrics_token_file: reason.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"
#include "qd_token.h"

/* local */
#include "master.h"


/* overlaps - whether a TCP socket on |a| and one on |b| would take the same port */
static bool overlaps(const qd_conf_addr *a, const qd_conf_addr *b)
{
    static const char *const any[] = {"0.0.0.0", "::"};

    if (a->port != b->port || a->family != b->family)
        return false;
    if (strcmp(a->host, b->host) == 0)
        return true;
    for (int i = 0; i < 2; i++)
        if (strcmp(a->host, any[i]) == 0 || strcmp(b->host, any[i]) == 0)
            return true;
    return false;
}

/* where - "file:line" of key |id| in |conf|, or "-o" for an override */
static const char *where(const qd_conf *conf, qd_conf_key_id id, char *buf, size_t len)
{
    if (conf->line[id] > 0)
        snprintf(buf, len, "%s:%d", conf->source ? conf->source : "(configuration)",
                 conf->line[id]);
    else
        snprintf(buf, len, "-o");
    return buf;
}

int master_metrics_check(const qd_conf *conf, qd_buf *errs)
{
    char why[256], text[80], at[300];
    int bad = 0;

    if (conf->metrics_token_file[0] != '\0' &&
        qd_token_file_check(conf->metrics_token_file, why, sizeof(why)) < 0) {
        qd_buf_printf(errs, "%s: metrics_token_file: %s: %s\n",
                      where(conf, QD_K_METRICS_TOKEN_FILE, at, sizeof(at)),
                      conf->metrics_token_file, why);
        bad++;
    }
    /* The listener's TCP sockets (tcp = yes) would fail to bind beside ours. */
    for (size_t i = 0; conf->tcp && conf->metrics_listen.family != 0 && i < conf->listen.count;
         i++) {
        if (!overlaps(&conf->metrics_listen, &conf->listen.items[i]))
            continue;
        qd_buf_printf(
            errs,
            "%s: metrics_listen: %s takes the port of listen %s%s%s:%u, "
            "served over TCP too (tcp = yes)\n",
            where(conf, QD_K_METRICS_LISTEN, at, sizeof(at)),
            qd_conf_addr_text(&conf->metrics_listen, text, sizeof(text)),
            conf->listen.items[i].family == AF_INET6 ? "[" : "", conf->listen.items[i].host,
            conf->listen.items[i].family == AF_INET6 ? "]" : "", conf->listen.items[i].port);
        bad++;
        break;
    }
    return bad ? -1 : 0;
}

/*
 * metrics_bind - a listening TCP socket on |a|; -1 with the reason in |why|.
 * SO_REUSEPORT lets the socket of a new address share the port with ours
 * while stats still holds it (127.0.0.1:9100 -> 0.0.0.0:9100 at a reload):
 * so first a probe without it must bind, unless |ours| (our own socket
 * there) explains why it cannot, so that a port another program listens on
 * is refused as at any start (SO_REUSEADDR in the probe too: connections of
 * the last scrapes in TIME_WAIT do not count).
 */
static int metrics_bind(const qd_conf_addr *a, bool ours, char *why, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = qd_conf_addr_sockaddr(a, &ss);
    char text[80];
    int one = 1, fd, e;

    qd_conf_addr_text(a, text, sizeof(text));
    for (int probe = ours ? 0 : 1; probe >= 0; probe--) {
        fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(why, len, "metrics_listen %s: socket: %s", text, strerror(errno));
            return -1;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (!probe)
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (a->family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
            e = errno;
            snprintf(why, len, "metrics_listen %s: cannot bind: %s%s", text, strerror(e),
                     e == EADDRINUSE ? " (another server?)" : "");
            goto fail;
        }
        if (probe) {
            close(fd);
            continue;
        }
        if (listen(fd, MASTER_METRICS_BACKLOG) < 0) {
            e = errno;
            snprintf(why, len, "metrics_listen %s: listen: %s", text, strerror(e));
            goto fail;
        }
    }
    return fd;
fail:
    close(fd);
    errno = e;
    return -1;
}

/* metrics_set - the master's socket is now |fd| on |text| (the old one is closed) */
static void metrics_set(master *m, int fd, const char *text)
{
    if (m->metrics_fd >= 0)
        close(m->metrics_fd);
    m->metrics_fd = fd;
    snprintf(m->metrics_bound, sizeof(m->metrics_bound), "%s", fd >= 0 ? text : "");
}

/*
 * metrics_move - make |to| (family 0: none) the endpoint: keep the socket
 * when it is there already, else bind a new one and close the old.
 * Returns 0, or -1 with the reason in |why| (the old socket stays).
 */
static int metrics_move(master *m, const qd_conf_addr *to, char *why, size_t len)
{
    char text[80];
    int fd;

    qd_conf_addr_text(to, text, sizeof(text));
    if (m->metrics_fd >= 0 && strcmp(text, m->metrics_bound) == 0)
        return 0;
    if (to->family == 0) {
        if (m->metrics_fd >= 0)
            qd_info("metrics_listen cleared: /metrics on %s is closed", m->metrics_bound);
        metrics_set(m, -1, "");
        return 0;
    }
    fd = metrics_bind(to, m->metrics_fd >= 0 && overlaps(to, &m->metrics_addr), why, len);
    if (fd < 0)
        return -1;
    if (m->metrics_fd >= 0)
        qd_info("/metrics moves from %s to %s", m->metrics_bound, text);
    metrics_set(m, fd, text);
    m->metrics_addr = *to;
    return 0;
}

int master_metrics_open(master *m, char *why, size_t len)
{
    /* quicd -U: the previous master's socket is kept if it is on the same address */
    return metrics_move(m, &m->conf.metrics_listen, why, len);
}

int master_metrics_reload(master *m, const qd_conf *next, qd_buf *msg)
{
    char why[512];

    if (metrics_move(m, &next->metrics_listen, why, sizeof(why)) == 0)
        return 0;
    if (m->metrics_fd >= 0)
        qd_buf_printf(msg,
                      "reload failed: %s; keeping the current configuration (/metrics "
                      "stays on %s)\n",
                      why, m->metrics_bound);
    else
        qd_buf_printf(msg, "reload failed: %s; keeping the current configuration\n", why);
    qd_err("%s", qd_buf_str(msg));
    return -1;
}

void master_metrics_send(master_child *c)
{
    master *m = c->m;
    const char *path = m->conf.metrics_token_file;
    uint32_t flags = 0;
    int tok = -1;

    qd_ipc_msg *msg = master_child_msg(c, QD_MSG_METRICS_HTTP, 0);
    qd_ipc_put_str(msg, QD_F_ADDR, m->metrics_bound);
    if (m->metrics_fd >= 0) {
        qd_ipc_put_fd(msg, m->metrics_fd);
        flags |= QD_METRICS_HTTP_F_LISTEN;
    }
    if (path[0] != '\0') {
        /* Checked with the configuration; a file gone since is stats' to report. */
        tok = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (tok < 0) {
            qd_warn_errno("metrics_token_file %s", path);
        } else {
            qd_ipc_put_fd(msg, tok);
            flags |= QD_METRICS_HTTP_F_TOKEN;
        }
    }
    qd_ipc_put_u32(msg, QD_F_FLAGS, flags);
    master_child_queue(c);
    if (tok >= 0)
        close(tok);
}
