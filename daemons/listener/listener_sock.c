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
#include <netinet/udp.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_cid.h"
#include "qd_err.h"
#include "qd_ipc.h"
#include "qd_log.h"
#include "qd_sock.h"

/* local */
#include "listener.h"

static qd_ipc_msg out_msg;

/* open_one - a bound, non-blocking UDP socket in the reuseport group */
/* set_buffer - SO_RCVBUF/SO_SNDBUF to |size| (qd_sock_buffer); warns once when capped */
static void set_buffer(int fd, int opt, const char *sysctl, int64_t size)
{
    static bool warned[2];
    int64_t got = qd_sock_buffer(fd, opt, size);

    if (got >= 0 && got < size && !warned[opt == SO_SNDBUF]) {
        warned[opt == SO_SNDBUF] = true;
        qd_warn("udp_buffer: the kernel capped %s at %lld bytes (asked for %lld); raise %s",
                opt == SO_RCVBUF ? "SO_RCVBUF" : "SO_SNDBUF", (long long)got, (long long)size,
                sysctl);
    }
}

/* set_options - the per-packet information and offloads the workers use */
static void set_options(int fd, int family, int64_t buffer)
{
    int one = 1;

    set_buffer(fd, SO_RCVBUF, "net.core.rmem_max", buffer);
    set_buffer(fd, SO_SNDBUF, "net.core.wmem_max", buffer);
    if (setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one)) < 0)
        qd_debug("UDP_GRO: %s", strerror(errno));
    if (family == AF_INET) {
        int pmtu = IP_PMTUDISC_DO;
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
        setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof(one));
        setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
    } else {
        int pmtu = IPV6_PMTUDISC_DO;
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof(one));
        setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof(pmtu));
    }
}

static int open_one(const qd_conf_addr *a, int64_t buffer, qd_buf *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;
    int fd = socket(a->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        qd_buf_printf(err, "socket for %s: %s", a->host, strerror(errno));
        return -1;
    }
    len = qd_conf_addr_sockaddr(a, &ss);
    if (a->family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        qd_buf_printf(err, "SO_REUSEPORT: %s", strerror(errno));
        close(fd);
        return -1;
    }
    set_options(fd, a->family, buffer);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        qd_buf_printf(err, "cannot bind %s%s%s:%u: %s", a->family == AF_INET6 ? "[" : "", a->host,
                      a->family == AF_INET6 ? "]" : "", a->port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* drop_escrow - close sockets from a predecessor that we do not use */
static void drop_escrow(listener *l)
{
    for (size_t i = 0; i < l->escrow_count; i++)
        close(l->escrow_fds[i]);
    l->escrow_count = 0;
}

/*
 * adopt - take the predecessor's sockets when they are exactly the set this
 * configuration needs (same addresses, same number of workers, same order).
 */
static bool adopt(listener *l, int64_t conf_udp_buffer)
{
    size_t need = l->addr_count * (size_t)l->worker_count;

    if (l->escrow_count != need || !l->escrow_secrets)
        return false;
    for (size_t i = 0; i < need; i++)
        if (strcmp(l->escrow_names[i], l->addr_names[i % l->addr_count]) != 0)
            return false;
    for (int w = 0; w < l->worker_count; w++) {
        l->workers[w].channel_fd = -1;
        l->workers[w].socks = qd_xcalloc(l->addr_count, sizeof(int));
        for (size_t a = 0; a < l->addr_count; a++) {
            int fd = l->escrow_fds[(size_t)w * l->addr_count + a];
            l->workers[w].socks[a] = fd;
            /* udp_buffer may have changed since they were made */
            set_buffer(fd, SO_RCVBUF, "net.core.rmem_max", conf_udp_buffer);
            set_buffer(fd, SO_SNDBUF, "net.core.wmem_max", conf_udp_buffer);
        }
    }
    l->open_sockets = need;
    l->escrow_count = 0; /* ours now */
    return true;
}

/* escrow - hand the master copies of our sockets and secrets */
static void escrow(listener *l)
{
    size_t total = l->addr_count * (size_t)l->worker_count, i = 0;

    while (i < total) {
        qd_ipc_msg_init(&out_msg, QD_MSG_SOCKETS, (uint32_t)i);
        if (i == 0) {
            qd_ipc_put_bytes(&out_msg, QD_F_SECRET, l->static_secret, sizeof(l->static_secret));
            qd_ipc_put_bytes(&out_msg, QD_F_TICKET_KEY, l->ticket_key, sizeof(l->ticket_key));
        }
        while (i < total && out_msg.fd_count < QD_IPC_MAX_FDS) {
            size_t w = i / l->addr_count, a = i % l->addr_count;
            qd_ipc_put_str(&out_msg, QD_F_ADDR, l->addr_names[a]);
            qd_ipc_put_fd(&out_msg, l->workers[w].socks[a]);
            i++;
        }
        if (qd_child_send(&l->child, &out_msg) < 0)
            return;
    }
}

void listener_sock_escrowed(listener *l, qd_ipc_msg *m)
{
    size_t pos = 0, len, fdi = 0;
    uint16_t tag;
    const uint8_t *val;

    if (m->id == 0)
        drop_escrow(l);
    if (l->escrow_fds == NULL) {
        l->escrow_fds = qd_xcalloc(LISTENER_MAX_WORKERS * 4, sizeof(int));
        l->escrow_names = qd_xcalloc(LISTENER_MAX_WORKERS * 4, sizeof(*l->escrow_names));
    }
    while (qd_ipc_next(m, &pos, &tag, &val, &len)) {
        if (tag == QD_F_SECRET && len == sizeof(l->static_secret)) {
            memcpy(l->static_secret, val, len);
            l->escrow_secrets = true;
        } else if (tag == QD_F_TICKET_KEY && len == sizeof(l->ticket_key)) {
            memcpy(l->ticket_key, val, len);
        } else if (tag == QD_F_ADDR && fdi < m->fd_count &&
                   l->escrow_count < LISTENER_MAX_WORKERS * 4) {
            snprintf(l->escrow_names[l->escrow_count], 80, "%.*s", (int)(len < 79 ? len : 79),
                     (const char *)val);
            l->escrow_fds[l->escrow_count++] = qd_ipc_msg_take_fd(m, fdi++);
        }
    }
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
    if (adopt(l, conf->udp_buffer)) {
        qd_info("took back %zu sockets from the previous listener", l->open_sockets);
        return 0;
    }
    drop_escrow(l);
    for (int w = 0; w < l->worker_count; w++) {
        l->workers[w].channel_fd = -1;
        l->workers[w].socks = qd_xcalloc(l->addr_count, sizeof(int));
        for (size_t a = 0; a < l->addr_count; a++) {
            int fd = open_one(&conf->listen.items[a], conf->udp_buffer, err);
            if (fd < 0)
                return -1;
            l->workers[w].socks[a] = fd;
            l->open_sockets++;
        }
    }
    /* Sockets joined each group in worker order: index = worker. */
    for (size_t a = 0; a < l->addr_count; a++)
        if (listener_bpf_attach(l->workers[0].socks[a], l->worker_count, err) < 0)
            return -1;
    if (qd_random(l->static_secret, sizeof(l->static_secret)) < 0 ||
        qd_random(l->ticket_key, sizeof(l->ticket_key)) < 0) {
        qd_buf_printf(err, "getrandom: %s", strerror(errno));
        return -1;
    }
    escrow(l);
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
        if (a == 0) {
            qd_ipc_put_bytes(&out_msg, QD_F_SECRET, l->static_secret, sizeof(l->static_secret));
            qd_ipc_put_bytes(&out_msg, QD_F_TICKET_KEY, l->ticket_key, sizeof(l->ticket_key));
        }
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
