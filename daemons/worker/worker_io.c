/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_io - UDP in and out: recvmmsg with GRO, sendmsg with GSO
 * SYNOPSIS
 *	worker_io_start(), worker_io_stop(), worker_io_send(),
 *	worker_io_want_write()
 * DESCRIPTION
 *	Each socket the listener passed is watched with a uv_poll_t. A
 *	readiness event reads up to IO_BATCH datagrams with one recvmmsg into
 *	static 64 KiB buffers (a GRO buffer holds several datagrams of one
 *	4-tuple: split by the UDP_GRO size), learns the destination address
 *	from IP_PKTINFO / IPV6_PKTINFO and the ECN bits from IP_TOS /
 *	IPV6_TCLASS, and hands each datagram to worker_accept_packet. Sending
 *	sets the source address (pktinfo), ECN (TOS/TCLASS) and UDP_SEGMENT
 *	for a GSO batch. Nothing here allocates per packet.
 * DIAGNOSTICS
 *	Send errors other than EAGAIN are logged at debug level and the
 *	packets are treated as lost (QUIC recovers); EIO on a GSO send
 *	returns QD_ERR_IO so the caller can resend without GSO.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/sock_diag.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"
#include "qd_uv.h"

/* local */
#include "worker.h"

#define IO_BATCH 16
#define IO_BUF (64 * 1024)
#define IO_CMSG 256

static uint8_t rx_buf[IO_BATCH][IO_BUF];
static uint8_t rx_cmsg[IO_BATCH][IO_CMSG];
static struct sockaddr_storage rx_addr[IO_BATCH];

/* set_port - put |port| (network order) into |a| */
static void set_port(wk_addr *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = port;
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = port;
}

/* parse_cmsgs - local address, ECN and GRO segment size of one datagram */
static void parse_cmsgs(wk_ep *ep, struct msghdr *mh, wk_addr *local, uint8_t *ecn, size_t *gso)
{
    *ecn = 0;
    *gso = 0;
    /* Without pktinfo (should not happen) the bound address stands in. */
    memcpy(&local->ss, &ep->bound, sizeof(ep->bound));
    local->len = ep->family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            struct sockaddr_in *sin = (struct sockaddr_in *)&local->ss;
            memset(sin, 0, sizeof(*sin));
            sin->sin_family = AF_INET;
            sin->sin_addr = pi.ipi_addr;
            local->len = sizeof(*sin);
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&local->ss;
            memset(sin6, 0, sizeof(*sin6));
            sin6->sin6_family = AF_INET6;
            sin6->sin6_addr = pi.ipi6_addr;
            local->len = sizeof(*sin6);
        } else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TOS) {
            *ecn = *(uint8_t *)CMSG_DATA(cm) & IPTOS_ECN_MASK;
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_TCLASS) {
            int tc;
            memcpy(&tc, CMSG_DATA(cm), sizeof(tc));
            *ecn = (uint8_t)(tc & IPTOS_ECN_MASK);
        } else if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
            int g;
            memcpy(&g, CMSG_DATA(cm), sizeof(g));
            *gso = g > 0 ? (size_t)g : 0;
        }
    }
    set_port(local, ep->port);
}

/* on_readable - read a batch of datagrams, then write what they caused */
static void on_io(uv_poll_t *p, int status, int events)
{
    wk_ep *ep = p->data;
    worker *w = ep->w;
    struct mmsghdr msgs[IO_BATCH];
    struct iovec iov[IO_BATCH];

    if (events & UV_WRITABLE) {
        ep->want_write = false;
        uv_poll_start(ep->poll, UV_READABLE, on_io);
        worker_conn_retry_blocked(w, ep);
    }
    if (!(events & UV_READABLE))
        return;
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < IO_BATCH; i++) {
        iov[i].iov_base = rx_buf[i];
        iov[i].iov_len = IO_BUF;
        msgs[i].msg_hdr.msg_name = &rx_addr[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(rx_addr[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = rx_cmsg[i];
        msgs[i].msg_hdr.msg_controllen = IO_CMSG;
    }
    int n = recvmmsg(ep->fd, msgs, IO_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            qd_debug("recvmmsg on %s: %s", ep->name, strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        wk_addr local, remote;
        uint8_t ecn;
        size_t gso, len = msgs[i].msg_len;

        if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
            continue;
        parse_cmsgs(ep, &msgs[i].msg_hdr, &local, &ecn, &gso);
        memcpy(&remote.ss, &rx_addr[i], sizeof(remote.ss));
        remote.len = msgs[i].msg_hdr.msg_namelen;
        if (gso == 0)
            gso = len;
        for (size_t off = 0; off < len; off += gso) {
            size_t seg = len - off < gso ? len - off : gso;
            w->rx_packets++;
            w->rx_bytes += seg;
            worker_accept_packet(w, ep, &local, &remote, ecn, rx_buf[i] + off, seg);
        }
    }
    worker_conn_flush_dirty(w);
}

void worker_io_start(worker *w, wk_ep *ep)
{
    socklen_t len = sizeof(int);

    ep->w = w;
    /* the buffers the kernel granted: quicctl status shows them */
    if (getsockopt(ep->fd, SOL_SOCKET, SO_RCVBUF, &ep->rcvbuf, &len) < 0)
        ep->rcvbuf = 0;
    len = sizeof(int);
    if (getsockopt(ep->fd, SOL_SOCKET, SO_SNDBUF, &ep->sndbuf, &len) < 0)
        ep->sndbuf = 0;
    ep->poll = qd_uv_watch(w->child.loop, ep->fd, UV_READABLE, on_io, ep);
}

/*
 * worker_io_drops - datagrams the kernel dropped on |fd| since it was made
 * (SK_MEMINFO_DROPS: the counter SO_RXQ_OVFL reports, mostly a full
 * receive queue), or 0 when it cannot say
 */
uint32_t worker_io_drops(int fd)
{
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof(mem);

    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 ||
        len <= SK_MEMINFO_DROPS * sizeof(uint32_t))
        return 0;
    return mem[SK_MEMINFO_DROPS];
}

uint64_t worker_io_rxq_drops(const worker *w)
{
    uint64_t drops = w->rxq_drops;

    for (size_t i = 0; i < w->nep; i++)
        if (w->eps[i].fd >= 0)
            drops += worker_io_drops(w->eps[i].fd) - w->eps[i].drops_base;
    return drops;
}

void worker_io_buffers(const worker *w, int *rcv, int *snd)
{
    *rcv = *snd = 0;
    for (size_t i = 0; i < w->nep; i++)
        if (w->eps[i].fd >= 0) {
            *rcv = *rcv == 0 || w->eps[i].rcvbuf < *rcv ? w->eps[i].rcvbuf : *rcv;
            *snd = *snd == 0 || w->eps[i].sndbuf < *snd ? w->eps[i].sndbuf : *snd;
        }
}

void worker_io_stop(wk_ep *ep)
{
    qd_uv_unwatch(&ep->poll);
    if (ep->fd >= 0) {
        close(ep->fd);
        ep->fd = -1;
    }
}

void worker_io_want_write(wk_ep *ep)
{
    if (ep->poll != NULL && !ep->want_write) {
        ep->want_write = true;
        uv_poll_start(ep->poll, UV_READABLE | UV_WRITABLE, on_io);
    }
}

int worker_io_send(wk_ep *ep, const ngtcp2_addr *local, const ngtcp2_addr *remote, uint8_t ecn,
                   const uint8_t *data, size_t len, size_t gso)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(int)) +
                 CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr mh = {
        .msg_name = remote->addr,
        .msg_namelen = remote->addrlen,
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = cm.buf,
        .msg_controllen = sizeof(cm.buf),
    };
    size_t clen = 0;
    struct cmsghdr *c;

    memset(cm.buf, 0, sizeof(cm.buf));
    c = CMSG_FIRSTHDR(&mh);
    if (local->addr->sa_family == AF_INET) {
        struct in_pktinfo pi = {0};
        pi.ipi_spec_dst = ((const struct sockaddr_in *)local->addr)->sin_addr;
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        clen += CMSG_SPACE(sizeof(pi));
        c = CMSG_NXTHDR(&mh, c);
        int tos = ecn;
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_TOS;
        c->cmsg_len = CMSG_LEN(sizeof(tos));
        memcpy(CMSG_DATA(c), &tos, sizeof(tos));
        clen += CMSG_SPACE(sizeof(tos));
    } else {
        struct in6_pktinfo pi = {0};
        pi.ipi6_addr = ((const struct sockaddr_in6 *)local->addr)->sin6_addr;
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        clen += CMSG_SPACE(sizeof(pi));
        c = CMSG_NXTHDR(&mh, c);
        int tc = ecn;
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_TCLASS;
        c->cmsg_len = CMSG_LEN(sizeof(tc));
        memcpy(CMSG_DATA(c), &tc, sizeof(tc));
        clen += CMSG_SPACE(sizeof(tc));
    }
    if (gso > 0 && gso < len) {
        uint16_t seg = (uint16_t)gso;
        c = CMSG_NXTHDR(&mh, c);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(seg));
        memcpy(CMSG_DATA(c), &seg, sizeof(seg));
        clen += CMSG_SPACE(sizeof(seg));
    }
    mh.msg_controllen = clen;
    for (;;) {
        ssize_t n = sendmsg(ep->fd, &mh, MSG_DONTWAIT);
        if (n >= 0) {
            ep->w->tx_packets += gso > 0 ? (len + gso - 1) / gso : 1;
            ep->w->tx_bytes += len;
            ep->w->tx_batches++;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return QD_ERR_AGAIN;
        if (errno == EIO && gso > 0 && gso < len)
            return QD_ERR_IO;
        /* Counted and told: a send the kernel keeps refusing cuts clients
         * off (the sockets ignore ICMP's path MTU, IP_PMTUDISC_PROBE, so
         * EMSGSIZE means a datagram above the interface's MTU). */
        static qd_log_limit lim;
        ep->w->udp_send_errors++;
        if (errno == EMSGSIZE)
            ep->w->udp_emsgsize++;
        else if (errno == ENOBUFS)
            ep->w->udp_nobufs++;
        qd_log_limited(&lim, QD_LOG_WARN, "sendmsg of %zu bytes on %s: %s", len, ep->name,
                       strerror(errno));
        return 0; /* lost; QUIC retransmits */
    }
}
