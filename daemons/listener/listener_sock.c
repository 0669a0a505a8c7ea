/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	listener_sock - the UDP sockets, one per worker per address
 * SYNOPSIS
 *	listener_sock_open_all(), listener_sock_send()
 * DESCRIPTION
 *	For every listen address the listener opens one UDP socket per
 *	worker, all bound to the address with SO_REUSEPORT so they form one
 *	reuseport group in worker order. It opens them while still
 *	privileged (port 443) and keeps every one of them open for its whole
 *	life: a worker that restarts gets exactly the same sockets back
 *	(SOCK_SEQPACKET + SCM_RIGHTS, QD_MSG_SOCKETS with one F_ADDR per
 *	descriptor), so no address ever stops being served.
 *	The listener owns the sockets; sending lends copies to the worker.
 * DIAGNOSTICS
 *	A socket that cannot be opened or bound fails the start with the
 *	address and the reason.
 */
#include "config.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_ipc.h"
#include "qd_log.h"

/* local */
#include "listener.h"

static qd_ipc_msg out_msg;

/* open_one - a bound, non-blocking UDP socket in the reuseport group */
static int open_one(const qd_conf_addr *a, qd_buf *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;
    int fd = socket(a->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        qd_buf_printf(err, "socket for %s: %s", a->host, strerror(errno));
        return -1;
    }
    memset(&ss, 0, sizeof(ss));
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        inet_pton(AF_INET, a->host, &sin->sin_addr);
        len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a->port);
        inet_pton(AF_INET6, a->host, &sin6->sin6_addr);
        len = sizeof(*sin6);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        qd_buf_printf(err, "SO_REUSEPORT: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        qd_buf_printf(err, "cannot bind %s%s%s:%u: %s", a->family == AF_INET6 ? "[" : "", a->host,
                      a->family == AF_INET6 ? "]" : "", a->port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int listener_sock_open_all(listener *l, const qd_conf *conf, qd_buf *err)
{
    l->worker_count = qd_conf_workers(conf);
    if (l->worker_count > LISTENER_MAX_WORKERS) {
        qd_buf_printf(err, "at most %d workers are supported", LISTENER_MAX_WORKERS);
        return -1;
    }
    l->addr_count = conf->listen.count;
    l->addr_names = qd_xcalloc(l->addr_count, sizeof(*l->addr_names));
    for (size_t a = 0; a < l->addr_count; a++) {
        const qd_conf_addr *ad = &conf->listen.items[a];
        snprintf(l->addr_names[a], sizeof(l->addr_names[a]), "%s%s%s:%u",
                 ad->family == AF_INET6 ? "[" : "", ad->host, ad->family == AF_INET6 ? "]" : "",
                 ad->port);
    }
    for (int w = 0; w < l->worker_count; w++) {
        l->workers[w].channel_fd = -1;
        l->workers[w].socks = qd_xcalloc(l->addr_count, sizeof(int));
        for (size_t a = 0; a < l->addr_count; a++) {
            int fd = open_one(&conf->listen.items[a], err);
            if (fd < 0)
                return -1;
            l->workers[w].socks[a] = fd;
            l->open_sockets++;
        }
    }
    qd_info("listening on %zu address%s with %d sockets each", l->addr_count,
            l->addr_count == 1 ? "" : "es", l->worker_count);
    return 0;
}

void listener_sock_send(listener *l, int worker)
{
    listener_worker *w = &l->workers[worker];
    size_t a = 0;

    /* Several messages when there are more addresses than one message carries. */
    while (a < l->addr_count) {
        qd_ipc_msg_init(&out_msg, QD_MSG_SOCKETS, (uint32_t)a); /* id: index of the first address */
        while (a < l->addr_count && out_msg.fd_count < QD_IPC_MAX_FDS) {
            qd_ipc_put_str(&out_msg, QD_F_ADDR, l->addr_names[a]);
            qd_ipc_put_fd(&out_msg, w->socks[a]);
            a++;
        }
        int rv = qd_ipc_send(w->channel_fd, &out_msg);
        if (rv < 0) {
            qd_warn("cannot pass sockets to worker[%d]: %s", worker,
                    rv == QD_ERR_IO ? strerror(errno) : qd_strerror(rv));
            return;
        }
    }
    qd_debug("passed %zu sockets to worker[%d]", l->addr_count, worker);
}
