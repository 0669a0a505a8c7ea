/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	listener_sock - the UDP and TCP sockets, one of each per worker per address
 * SYNOPSIS
 *	listener_sock_open_all(), listener_sock_escrowed(), listener_sock_send()
 * DESCRIPTION
 *	For every listen address the listener opens one UDP socket per
 *	worker, all bound to the address with SO_REUSEPORT so they form one
 *	reuseport group in worker order (the order CID steering relies on),
 *	and with tcp = yes one TCP listen socket per worker beside it
 *	(SO_REUSEADDR and SO_REUSEPORT, listen(tcp_backlog); no BPF: the
 *	kernel spreads connections over a TCP group by hash). It opens them
 *	while still privileged (port 443) and keeps every one of them open
 *	for its whole life: a worker that restarts gets exactly the same
 *	sockets back, so no address ever stops being served and connections
 *	waiting in a TCP accept queue are accepted after the restart.
 *	QD_MSG_SOCKETS carries, per address, F_ADDR + the UDP socket, then
 *	(tcp = yes) F_TCP_ADDR with the same name + the TCP socket; messages
 *	split between addresses, never inside one, and a message's id is the
 *	index of its first address (of its first worker/address pair in the
 *	escrow), the secrets riding in the one with id 0.
 *	The listener owns the sockets; sending lends copies to the worker
 *	and to the master (the escrow).
 * DIAGNOSTICS
 *	A socket that cannot be opened, bound or put to listen fails the
 *	start with the protocol, the address and the reason. An escrow that
 *	does not match the configuration is closed and a new set is opened.
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

/* open_udp - a bound, non-blocking UDP socket in the reuseport group */
static int open_udp(const qd_conf_addr *a, int64_t buffer, qd_buf *err)
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

/* open_tcp - a bound, listening, non-blocking TCP socket in the reuseport group */
static int open_tcp(const qd_conf_addr *a, int64_t backlog, qd_buf *err)
{
    struct sockaddr_storage ss;
    socklen_t len = qd_conf_addr_sockaddr(a, &ss);
    int one = 1;
    int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const char *lb = a->family == AF_INET6 ? "[" : "", *rb = a->family == AF_INET6 ? "]" : "";

    if (fd < 0) {
        qd_buf_printf(err, "TCP socket for %s: %s", a->host, strerror(errno));
        return -1;
    }
    if (a->family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        qd_buf_printf(err, "TCP SO_REUSEADDR/SO_REUSEPORT: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        qd_buf_printf(err, "cannot bind TCP %s%s%s:%u: %s", lb, a->host, rb, a->port,
                      strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, (int)backlog) < 0) {
        qd_buf_printf(err, "cannot listen on TCP %s%s%s:%u: %s", lb, a->host, rb, a->port,
                      strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* drop_escrow - close sockets from a predecessor that we do not use */
static void drop_escrow(listener *l)
{
    for (size_t i = 0; i < l->escrow_count; i++) {
        close(l->escrow[i].fd);
        if (l->escrow[i].tcp_fd >= 0)
            close(l->escrow[i].tcp_fd);
    }
    l->escrow_count = 0;
    l->escrow_bad = false;
}

/*
 * adopt - take the predecessor's sockets when they are exactly the set this
 * configuration needs: same addresses, same number of workers, same order,
 * and a TCP socket for every pair exactly when tcp = yes.
 */
static bool adopt(listener *l, const qd_conf *conf)
{
    size_t need = l->addr_count * (size_t)l->worker_count;

    if (l->escrow_count != need || !l->escrow_secrets || l->escrow_bad)
        return false;
    for (size_t i = 0; i < need; i++) {
        const listener_escrowed *e = &l->escrow[i];
        if (strcmp(e->name, l->addr_names[i % l->addr_count]) != 0 ||
            (e->tcp_fd >= 0) != l->has_tcp)
            return false;
    }
    for (int w = 0; w < l->worker_count; w++) {
        listener_worker *lw = &l->workers[w];
        lw->channel_fd = -1;
        lw->socks = qd_xcalloc(l->addr_count, sizeof(int));
        if (l->has_tcp)
            lw->tcp_socks = qd_xcalloc(l->addr_count, sizeof(int));
        for (size_t a = 0; a < l->addr_count; a++) {
            const listener_escrowed *e = &l->escrow[(size_t)w * l->addr_count + a];
            lw->socks[a] = e->fd;
            /* udp_buffer may have changed since they were made */
            set_buffer(e->fd, SO_RCVBUF, "net.core.rmem_max", conf->udp_buffer);
            set_buffer(e->fd, SO_SNDBUF, "net.core.wmem_max", conf->udp_buffer);
            if (!l->has_tcp)
                continue;
            lw->tcp_socks[a] = e->tcp_fd;
            /* and tcp_backlog: listen(2) again only sets the new length */
            if (listen(e->tcp_fd, (int)conf->tcp_backlog) < 0)
                qd_warn("listen on TCP %s (tcp_backlog %lld): %s", e->name,
                        (long long)conf->tcp_backlog, strerror(errno));
        }
    }
    l->tcp_sockets = l->has_tcp ? need : 0;
    l->open_sockets = need + l->tcp_sockets;
    l->escrow_count = 0; /* ours now */
    return true;
}

/* put_address - one address's sockets of worker |w|: F_ADDR + UDP, F_TCP_ADDR + TCP */
static void put_address(qd_ipc_msg *m, const listener *l, const listener_worker *w, size_t a)
{
    qd_ipc_put_str(m, QD_F_ADDR, l->addr_names[a]);
    qd_ipc_put_fd(m, w->socks[a]);
    if (l->has_tcp) {
        qd_ipc_put_str(m, QD_F_TCP_ADDR, l->addr_names[a]);
        qd_ipc_put_fd(m, w->tcp_socks[a]);
    }
}

/* fds_per_address - descriptors one address takes in QD_MSG_SOCKETS */
static uint32_t fds_per_address(const listener *l)
{
    return l->has_tcp ? 2 : 1;
}

/*
 * escrow - hand the master copies of our sockets and secrets: every
 * (worker, address) pair in worker-major order, laid out as for a worker.
 */
static void escrow(listener *l)
{
    size_t total = l->addr_count * (size_t)l->worker_count, i = 0;

    while (i < total) {
        qd_ipc_msg_init(&out_msg, QD_MSG_SOCKETS, (uint32_t)i); /* id 0 starts a set */
        if (i == 0) {
            qd_ipc_put_bytes(&out_msg, QD_F_SECRET, l->static_secret, sizeof(l->static_secret));
            qd_ipc_put_bytes(&out_msg, QD_F_TICKET_KEY, l->ticket_key, sizeof(l->ticket_key));
        }
        while (i < total && out_msg.fd_count + fds_per_address(l) <= QD_IPC_MAX_FDS) {
            put_address(&out_msg, l, &l->workers[i / l->addr_count], i % l->addr_count);
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
    listener_escrowed *prev = NULL; /* the pair an F_TCP_ADDR may complete */

    if (m->id == 0)
        drop_escrow(l);
    if (l->escrow == NULL)
        l->escrow = qd_xcalloc(LISTENER_MAX_ESCROW, sizeof(*l->escrow));
    while (qd_ipc_next(m, &pos, &tag, &val, &len)) {
        if (tag == QD_F_SECRET && len == sizeof(l->static_secret)) {
            memcpy(l->static_secret, val, len);
            l->escrow_secrets = true;
        } else if (tag == QD_F_TICKET_KEY && len == sizeof(l->ticket_key)) {
            memcpy(l->ticket_key, val, len);
        } else if (tag == QD_F_ADDR && fdi < m->fd_count) {
            int fd = qd_ipc_msg_take_fd(m, fdi++);
            prev = NULL;
            if (l->escrow_count == LISTENER_MAX_ESCROW) {
                close(fd);
                l->escrow_bad = true;
                continue;
            }
            prev = &l->escrow[l->escrow_count++];
            snprintf(prev->name, sizeof(prev->name), "%.*s", (int)(len < 79 ? len : 79),
                     (const char *)val);
            prev->fd = fd;
            prev->tcp_fd = -1;
        } else if (tag == QD_F_TCP_ADDR && fdi < m->fd_count) {
            int fd = qd_ipc_msg_take_fd(m, fdi++);
            if (prev == NULL || len != strlen(prev->name) || memcmp(val, prev->name, len) != 0) {
                close(fd); /* not the TCP socket of the address before it */
                l->escrow_bad = true;
            } else {
                prev->tcp_fd = fd;
            }
            prev = NULL;
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
    l->has_tcp = conf->tcp;
    l->addr_count = conf->listen.count;
    l->addr_names = qd_xcalloc(l->addr_count, sizeof(*l->addr_names));
    for (size_t a = 0; a < l->addr_count; a++) {
        const qd_conf_addr *ad = &conf->listen.items[a];
        snprintf(l->addr_names[a], sizeof(l->addr_names[a]), "%s%s%s:%u",
                 ad->family == AF_INET6 ? "[" : "", ad->host, ad->family == AF_INET6 ? "]" : "",
                 ad->port);
    }
    if (adopt(l, conf)) {
        qd_info("took back %zu sockets (%zu TCP) from the previous listener", l->open_sockets,
                l->tcp_sockets);
        return 0;
    }
    if (l->escrow_count > 0)
        qd_info("the previous listener's %zu socket pairs do not fit this configuration; "
                "opening new sockets",
                l->escrow_count);
    drop_escrow(l);
    for (int w = 0; w < l->worker_count; w++) {
        listener_worker *lw = &l->workers[w];
        lw->channel_fd = -1;
        lw->socks = qd_xcalloc(l->addr_count, sizeof(int));
        if (l->has_tcp)
            lw->tcp_socks = qd_xcalloc(l->addr_count, sizeof(int));
        for (size_t a = 0; a < l->addr_count; a++) {
            const qd_conf_addr *ad = &conf->listen.items[a];
            int fd = open_udp(ad, conf->udp_buffer, err);
            if (fd < 0)
                return -1;
            lw->socks[a] = fd;
            l->open_sockets++;
            if (!l->has_tcp)
                continue;
            if ((fd = open_tcp(ad, conf->tcp_backlog, err)) < 0)
                return -1;
            lw->tcp_socks[a] = fd;
            l->open_sockets++;
            l->tcp_sockets++;
        }
    }
    /* UDP sockets joined each group in worker order: index = worker. */
    for (size_t a = 0; a < l->addr_count; a++)
        if (listener_bpf_attach(l->workers[0].socks[a], l->worker_count, err) < 0)
            return -1;
    /* New sockets, the same secrets: tokens, stateless resets and session
     * tickets (resumption, 0-RTT) keep working across a reload that changes
     * listen or workers. Only a new master makes new ones. */
    if (l->escrow_secrets) {
        qd_info("kept the previous listener's token, reset and ticket keys");
    } else if (qd_random(l->static_secret, sizeof(l->static_secret)) < 0 ||
               qd_random(l->ticket_key, sizeof(l->ticket_key)) < 0) {
        qd_buf_printf(err, "getrandom: %s", strerror(errno));
        return -1;
    }
    escrow(l);
    if (l->has_tcp)
        qd_info("listening on %zu address%s with %d sockets each: %zu UDP, %zu TCP (backlog %lld)",
                l->addr_count, l->addr_count == 1 ? "" : "es", l->worker_count,
                l->open_sockets - l->tcp_sockets, l->tcp_sockets, (long long)conf->tcp_backlog);
    else
        qd_info("listening on %zu address%s with %d sockets each: %zu UDP, 0 TCP (tcp = no)",
                l->addr_count, l->addr_count == 1 ? "" : "es", l->worker_count, l->open_sockets);
    return 0;
}

void listener_sock_send(listener *l, int worker)
{
    listener_worker *w = &l->workers[worker];
    size_t a = 0;

    /*
     * Several messages when there are more addresses than one message
     * carries; an address's UDP and TCP sockets always travel together
     * (the worker pairs an F_TCP_ADDR with the F_ADDR just before it).
     */
    while (a < l->addr_count) {
        qd_ipc_msg_init(&out_msg, QD_MSG_SOCKETS, (uint32_t)a); /* id: index of the first address */
        if (a == 0) {
            qd_ipc_put_bytes(&out_msg, QD_F_SECRET, l->static_secret, sizeof(l->static_secret));
            qd_ipc_put_bytes(&out_msg, QD_F_TICKET_KEY, l->ticket_key, sizeof(l->ticket_key));
        }
        while (a < l->addr_count && out_msg.fd_count + fds_per_address(l) <= QD_IPC_MAX_FDS) {
            put_address(&out_msg, l, w, a);
            a++;
        }
        int rv = qd_ipc_send(w->channel_fd, &out_msg);
        if (rv < 0) {
            qd_warn("cannot pass sockets to worker[%d]: %s", worker,
                    rv == QD_ERR_IO ? strerror(errno) : qd_strerror(rv));
            return;
        }
    }
    qd_debug("passed %zu sockets to worker[%d]", l->addr_count * fds_per_address(l), worker);
}
