/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	listener_sock - the sockets of every address, one slot per worker id
 * SYNOPSIS
 *	listener_sock_open_all(), listener_sock_escrowed(), listener_sock_send(),
 *	listener_layout(), listener_apply(), listener_group_find(),
 *	listener_current()
 * DESCRIPTION
 *	Every listen address is a group: UDP sockets bound to it with
 *	SO_REUSEPORT, and beside them (tcp = yes) TCP listen sockets
 *	(SO_REUSEADDR, SO_REUSEPORT, listen(tcp_backlog)). Slot i of a group
 *	is the socket pair of worker id i, bound i-th and never closed while
 *	the group lives, so its index in the kernel's reuseport group stays i
 *	(the steering programs of listener_bpf.c return worker ids). A group
 *	has as many slots as its highest live worker id needs; slots of
 *	workers that are gone stay open and unused until a later worker gets
 *	that id, and no program ever steers to them.
 *
 *	The master's QD_MSG_LAYOUT names the live generations of workers:
 *	their ids, their addresses, whether they take TCP and which one takes
 *	new connections. The listener opens what they need while it is still
 *	privileged (the master replaces it whenever a generation begins), and
 *	later layouts only switch the programs and close the groups no
 *	generation serves any more.
 *
 *	Everything is kept open for the listener's whole life and escrowed
 *	with the master: a restarted worker gets exactly the same sockets
 *	back, and so does a restarted listener, so no address ever stops being
 *	served and connections waiting in a TCP accept queue are accepted
 *	later. QD_MSG_SOCKETS carries, per address, F_ADDR + the UDP socket,
 *	then (tcp = yes) F_TCP_ADDR with the same name + the TCP socket;
 *	messages split between addresses, never inside one, and a message's id
 *	is the index of its first address (of its first slot in the escrow,
 *	group after group), the secrets and the CID tag riding in the one with
 *	id 0. The listener owns the sockets; sending lends copies to the
 *	worker and to the master.
 * DIAGNOSTICS
 *	A socket that cannot be opened, bound or put to listen fails the
 *	start with the protocol, the address and the reason.
 */
#include "config.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
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

/*
 * set_options - the per-packet information and offloads the workers use.
 * Datagrams go with DF set, but the kernel's path MTU, which it learns
 * from unauthenticated ICMP "fragmentation needed" / "packet too big",
 * is ignored (IP_PMTUDISC_PROBE): with IP_PMTUDISC_DO one spoofed ICMP
 * saying 68 bytes made every datagram above 552 bytes to that client fail
 * with EMSGSIZE for 10 minutes, handshakes included (the quic-go
 * CVE-2024-53259 class; t_icmp_pmtu). QUIC finds its path MTU itself
 * (ngtcp2's PMTUD probes, RFC 9000 14.3).
 */
static void set_options(int fd, int family, int64_t buffer)
{
    int one = 1;

    set_buffer(fd, SO_RCVBUF, "net.core.rmem_max", buffer);
    set_buffer(fd, SO_SNDBUF, "net.core.wmem_max", buffer);
    if (setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one)) < 0)
        qd_debug("UDP_GRO: %s", strerror(errno));
    if (family == AF_INET) {
        int pmtu = IP_PMTUDISC_PROBE; /* DF, but no path MTU from ICMP (below) */
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
        setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &one, sizeof(one));
        setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
    } else {
        int pmtu = IPV6_PMTUDISC_PROBE;
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


/* find_addr - the configured address named |name|, or NULL */
static const qd_conf_addr *find_addr(const qd_conf *conf, const char *name)
{
    char buf[80];

    for (size_t a = 0; a < conf->listen.count; a++) {
        const qd_conf_addr *ad = &conf->listen.items[a];
        snprintf(buf, sizeof(buf), "%s%s%s:%u", ad->family == AF_INET6 ? "[" : "", ad->host,
                 ad->family == AF_INET6 ? "]" : "", ad->port);
        if (strcmp(buf, name) == 0)
            return ad;
    }
    return NULL;
}

listener_group *listener_group_find(listener *l, const char *name)
{
    for (int i = 0; i < l->ngroups; i++)
        if (strcmp(l->groups[i]->name, name) == 0)
            return l->groups[i];
    return NULL;
}

static listener_group *group_add(listener *l, const char *name)
{
    if (l->ngroups == LISTENER_MAX_GROUPS)
        return NULL;
    listener_group *g = qd_xcalloc(1, sizeof(*g));
    snprintf(g->name, sizeof(g->name), "%s", name);
    for (int i = 0; i < LISTENER_MAX_SLOTS; i++)
        g->udp[i] = g->tcp[i] = -1;
    l->groups[l->ngroups++] = g;
    return g;
}

/* group_close - no generation serves the address any more */
static void group_close(listener *l, int idx)
{
    listener_group *g = l->groups[idx];

    for (int i = 0; i < g->nslots; i++) {
        close(g->udp[i]);
        l->open_sockets--;
        if (g->tcp[i] >= 0) {
            close(g->tcp[i]);
            l->open_sockets--;
            l->tcp_sockets--;
        }
    }
    qd_info("closed the %d socket slots of %s: no generation serves it any more", g->nslots,
            g->name);
    free(g);
    memmove(&l->groups[idx], &l->groups[idx + 1],
            (size_t)(l->ngroups - idx - 1) * sizeof(l->groups[0]));
    l->ngroups--;
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
 * adopt - the predecessor's groups, slot by slot in the order it had them
 * (the escrow lists each group's slots in slot order). A group whose TCP
 * sockets are not there for every slot keeps none of them.
 */
static void adopt(listener *l, const qd_conf *conf)
{
    if (l->escrow_bad) {
        qd_warn("the previous listener's sockets came in a wrong order; opening new ones");
        drop_escrow(l);
        return;
    }
    for (size_t i = 0; i < l->escrow_count; i++) {
        listener_escrowed *e = &l->escrow[i];
        listener_group *g = listener_group_find(l, e->name);
        if (g == NULL && (g = group_add(l, e->name)) == NULL) {
            close(e->fd);
            if (e->tcp_fd >= 0)
                close(e->tcp_fd);
            continue;
        }
        if (g->nslots == LISTENER_MAX_SLOTS) {
            close(e->fd);
            if (e->tcp_fd >= 0)
                close(e->tcp_fd);
            continue;
        }
        g->udp[g->nslots] = e->fd;
        g->tcp[g->nslots] = e->tcp_fd;
        if (g->nslots == 0)
            g->has_tcp = e->tcp_fd >= 0;
        else if (g->has_tcp != (e->tcp_fd >= 0))
            g->has_tcp = false; /* sorted out below */
        g->nslots++;
    }
    l->escrow_count = 0;
    for (int k = 0; k < l->ngroups; k++) {
        listener_group *g = l->groups[k];
        for (int i = 0; i < g->nslots; i++) {
            /* udp_buffer and tcp_backlog may have changed since they were made */
            set_buffer(g->udp[i], SO_RCVBUF, "net.core.rmem_max", conf->udp_buffer);
            set_buffer(g->udp[i], SO_SNDBUF, "net.core.wmem_max", conf->udp_buffer);
            l->open_sockets++;
            if (g->tcp[i] < 0)
                continue;
            if (!g->has_tcp) {
                close(g->tcp[i]);
                g->tcp[i] = -1;
                continue;
            }
            l->open_sockets++;
            l->tcp_sockets++;
            /* listen(2) again only sets the new length */
            if (listen(g->tcp[i], (int)conf->tcp_backlog) < 0)
                qd_warn("listen on TCP %s (tcp_backlog %lld): %s", g->name,
                        (long long)conf->tcp_backlog, strerror(errno));
        }
    }
    if (l->open_sockets > 0)
        qd_info("took back %zu sockets (%zu TCP) of %d address%s from the previous listener",
                l->open_sockets, l->tcp_sockets, l->ngroups, l->ngroups == 1 ? "" : "es");
}

/* gen_serves - does generation |gn| serve the address of |g|? */
static bool gen_serves(const listener_gen *gn, const listener_group *g)
{
    for (int a = 0; a < gn->naddrs; a++)
        if (strcmp(gn->addrs[a], g->name) == 0)
            return true;
    return false;
}

/* group_need - the slots and TCP the generations serving |g| need */
static void group_need(const listener *l, const listener_group *g, int *slots, bool *tcp)
{
    *slots = 0;
    *tcp = false;
    for (int k = 0; k < l->ngens; k++) {
        const listener_gen *gn = &l->gens[k];
        if (!gen_serves(gn, g))
            continue;
        for (int i = 0; i < gn->nids; i++)
            if (gn->ids[i] + 1 > *slots)
                *slots = gn->ids[i] + 1;
        if (gn->flags & QD_LAYOUT_F_TCP)
            *tcp = true;
    }
}

/*
 * grow - open the slots and TCP sockets |g| lacks, in slot order: UDP
 * slots join the UDP group at its end, and TCP sockets are all opened
 * here in slot order too, so index i stays slot i in both.
 */
static int grow(listener *l, listener_group *g, const qd_conf_addr *ad, const qd_conf *conf,
                int slots, bool tcp, qd_buf *err)
{
    int fd;

    if (tcp && !g->has_tcp) {
        for (int i = 0; i < g->nslots; i++) {
            if ((fd = open_tcp(ad, conf->tcp_backlog, err)) < 0)
                return -1;
            g->tcp[i] = fd;
            l->open_sockets++;
            l->tcp_sockets++;
        }
        g->has_tcp = true;
    }
    while (g->nslots < slots) {
        if ((fd = open_udp(ad, conf->udp_buffer, err)) < 0)
            return -1;
        g->udp[g->nslots] = fd;
        l->open_sockets++;
        if (g->has_tcp) {
            if ((fd = open_tcp(ad, conf->tcp_backlog, err)) < 0) {
                g->nslots++;
                return -1;
            }
            g->tcp[g->nslots] = fd;
            l->open_sockets++;
            l->tcp_sockets++;
        }
        g->nslots++;
    }
    return 0;
}

/* put_slot - one address's sockets of slot |i|: F_ADDR + UDP, F_TCP_ADDR + TCP */
static void put_slot(qd_ipc_msg *m, const listener_group *g, int i, bool tcp)
{
    qd_ipc_put_str(m, QD_F_ADDR, g->name);
    qd_ipc_put_fd(m, g->udp[i]);
    if (tcp && g->tcp[i] >= 0) {
        qd_ipc_put_str(m, QD_F_TCP_ADDR, g->name);
        qd_ipc_put_fd(m, g->tcp[i]);
    }
}

static void put_secrets(qd_ipc_msg *m, const listener *l)
{
    qd_ipc_put_bytes(m, QD_F_SECRET, l->static_secret, sizeof(l->static_secret));
    qd_ipc_put_bytes(m, QD_F_TICKET_KEY, l->ticket_key, sizeof(l->ticket_key));
    qd_ipc_put_u32(m, QD_F_CID_TAG, l->cid_tag);
}

/*
 * escrow - hand the master copies of our sockets and secrets: every
 * group's slots in slot order, laid out as for a worker. Sent again
 * whenever the set changes; id 0 starts a set.
 */
static void escrow(listener *l)
{
    uint32_t n = 0;
    qd_ipc_msg *m = qd_child_msg(&l->child, QD_MSG_SOCKETS, 0);

    put_secrets(m, l);
    for (int k = 0; k < l->ngroups; k++) {
        const listener_group *g = l->groups[k];
        for (int i = 0; i < g->nslots; i++, n++) {
            if (m->fd_count + 2 > QD_IPC_MAX_FDS) {
                if (qd_child_queue(&l->child) < 0)
                    return;
                m = qd_child_msg(&l->child, QD_MSG_SOCKETS, n);
            }
            put_slot(m, g, i, true);
        }
    }
    qd_child_queue(&l->child);
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
        } else if (tag == QD_F_CID_TAG && len == 4) {
            qd_ipc_get_u32(m, QD_F_CID_TAG, &l->cid_tag);
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

/* be32 - a u32 field's value (qd_ipc sends them big-endian) */
static uint32_t be32(const uint8_t *v)
{
    return (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
}

int listener_layout(listener *l, const qd_ipc_msg *m, qd_buf *err)
{
    size_t pos = 0, len;
    uint16_t tag;
    const uint8_t *val;
    listener_gen *gn = NULL;
    static listener_gen next[LISTENER_MAX_GENS];
    int n = 0;

    while (qd_ipc_next(m, &pos, &tag, &val, &len)) {
        if (tag == QD_F_GENERATION) {
            if (n == LISTENER_MAX_GENS) {
                qd_buf_printf(err, "more than %d generations", LISTENER_MAX_GENS);
                return -1;
            }
            gn = &next[n++];
            memset(gn, 0, sizeof(*gn));
            gn->gen = be32(val);
        } else if (gn == NULL) {
            qd_buf_printf(err, "a field before the first generation");
            return -1;
        } else if (tag == QD_F_FLAGS) {
            gn->flags = be32(val);
        } else if (tag == QD_F_BODY) {
            if (len > LISTENER_MAX_SLOTS) {
                qd_buf_printf(err, "too many workers in generation %u", gn->gen);
                return -1;
            }
            memcpy(gn->ids, val, len);
            gn->nids = (int)len;
        } else if (tag == QD_F_ADDR) {
            if (gn->naddrs == LISTENER_MAX_ADDRS || len >= sizeof(gn->addrs[0])) {
                qd_buf_printf(err, "too many or too long addresses in generation %u", gn->gen);
                return -1;
            }
            memcpy(gn->addrs[gn->naddrs], val, len);
            gn->addrs[gn->naddrs++][len] = '\0';
        }
    }
    /* A worker id belongs to one generation only. */
    uint8_t seen[LISTENER_MAX_SLOTS] = {0};
    for (int k = 0; k < n; k++)
        for (int i = 0; i < next[k].nids; i++)
            if (seen[next[k].ids[i]]++) {
                qd_buf_printf(err, "worker id %u is in two generations", next[k].ids[i]);
                return -1;
            }
    memcpy(l->gens, next, sizeof(next[0]) * (size_t)n);
    l->ngens = n;
    l->have_layout = true;
    return 0;
}

int listener_current(const listener *l, const listener_group *g, bool tcp, uint8_t *ids)
{
    const listener_gen *best = NULL;

    /* The newest generation taking new connections here; else the newest. */
    for (int k = 0; k < l->ngens; k++) {
        const listener_gen *gn = &l->gens[k];
        if (!gen_serves(gn, g) || gn->nids == 0 || (tcp && !(gn->flags & QD_LAYOUT_F_TCP)))
            continue;
        if (best == NULL || ((gn->flags & QD_LAYOUT_F_NEW) && !(best->flags & QD_LAYOUT_F_NEW)) ||
            ((gn->flags & QD_LAYOUT_F_NEW) == (best->flags & QD_LAYOUT_F_NEW) &&
             gn->gen > best->gen))
            best = gn;
    }
    if (best == NULL)
        return 0;
    memcpy(ids, best->ids, (size_t)best->nids);
    return best->nids;
}

/* steer - the programs of group |g| for the current layout */
static int steer(listener *l, listener_group *g, qd_buf *err)
{
    uint8_t live[LISTENER_MAX_SLOTS], cur[LISTENER_MAX_SLOTS];
    int nlive = 0, ncur;

    for (int k = 0; k < l->ngens; k++)
        if (gen_serves(&l->gens[k], g))
            for (int i = 0; i < l->gens[k].nids; i++)
                if (l->gens[k].ids[i] < g->nslots)
                    live[nlive++] = l->gens[k].ids[i];
    if ((ncur = listener_current(l, g, false, cur)) == 0 || nlive == 0)
        return 0;
    if (listener_bpf_udp(g->udp[0], live, nlive, cur, ncur, l->cid_tag, err) < 0)
        return -1;
    if (g->has_tcp && (ncur = listener_current(l, g, true, cur)) > 0 &&
        listener_bpf_tcp(g->tcp[0], cur, ncur, err) < 0)
        return -1;
    return 0;
}

int listener_apply(listener *l, qd_buf *err)
{
    bool changed = false;

    for (int k = 0; k < l->ngroups;) {
        listener_group *g = l->groups[k];
        int slots;
        bool tcp;
        group_need(l, g, &slots, &tcp);
        if (slots == 0) {
            group_close(l, k);
            changed = true;
            continue;
        }
        if (g->has_tcp && !tcp) {
            /* No generation serving it takes TCP any more (tcp = no). */
            for (int i = 0; i < g->nslots; i++) {
                close(g->tcp[i]);
                g->tcp[i] = -1;
                l->open_sockets--;
                l->tcp_sockets--;
            }
            g->has_tcp = false;
            changed = true;
        }
        if (steer(l, g, err) < 0)
            return -1;
        k++;
    }
    if (changed)
        escrow(l);
    return 0;
}

/* default_layout - one generation of this configuration (no layout came) */
static void default_layout(listener *l, const qd_conf *conf)
{
    listener_gen *gn = &l->gens[0];
    int n = qd_conf_workers(conf);

    memset(gn, 0, sizeof(*gn));
    gn->gen = l->child.generation;
    gn->flags = QD_LAYOUT_F_NEW | (conf->tcp ? QD_LAYOUT_F_TCP : 0);
    for (int i = 0; i < n && i < LISTENER_MAX_SLOTS; i++)
        gn->ids[gn->nids++] = (uint8_t)i;
    for (size_t a = 0; a < conf->listen.count && a < LISTENER_MAX_ADDRS; a++) {
        const qd_conf_addr *ad = &conf->listen.items[a];
        snprintf(gn->addrs[gn->naddrs++], sizeof(gn->addrs[0]), "%s%s%s:%u",
                 ad->family == AF_INET6 ? "[" : "", ad->host, ad->family == AF_INET6 ? "]" : "",
                 ad->port);
    }
    l->ngens = 1;
    l->have_layout = true;
}

int listener_sock_open_all(listener *l, const qd_conf *conf, qd_buf *err)
{
    if (!l->have_layout)
        default_layout(l, conf);
    adopt(l, conf);
    drop_escrow(l);
    /* Every address of every generation: the groups and slots they need. */
    for (int k = 0; k < l->ngens; k++) {
        for (int a = 0; a < l->gens[k].naddrs; a++) {
            const char *name = l->gens[k].addrs[a];
            listener_group *g = listener_group_find(l, name);
            const qd_conf_addr *ad = find_addr(conf, name);
            int slots;
            bool tcp;
            if (g == NULL) {
                if (ad == NULL) {
                    qd_warn("generation %u serves %s, which is neither configured nor escrowed",
                            l->gens[k].gen, name);
                    continue;
                }
                if ((g = group_add(l, name)) == NULL) {
                    qd_buf_printf(err, "more than %d addresses", LISTENER_MAX_GROUPS);
                    return -1;
                }
            }
            group_need(l, g, &slots, &tcp);
            if (slots <= g->nslots && (!tcp || g->has_tcp))
                continue;
            if (ad == NULL) {
                qd_warn("%s is no longer configured; cannot open the %d slots generation %u needs",
                        name, slots, l->gens[k].gen);
                continue;
            }
            if (grow(l, g, ad, conf, slots, tcp, err) < 0)
                return -1;
        }
    }
    /* New sockets, the same secrets: tokens, stateless resets and session
     * tickets (resumption, 0-RTT) keep working across reloads. Only a new
     * master makes new ones. */
    if (l->escrow_secrets) {
        qd_info("kept the previous listener's token, reset and ticket keys");
    } else if (qd_random(l->static_secret, sizeof(l->static_secret)) < 0 ||
               qd_random(l->ticket_key, sizeof(l->ticket_key)) < 0 ||
               qd_random(&l->cid_tag, sizeof(l->cid_tag)) < 0) {
        qd_buf_printf(err, "getrandom: %s", strerror(errno));
        return -1;
    }
    l->cid_tag &= QD_CID_TAG_MASK;
    if (listener_apply(l, err) < 0)
        return -1;
    escrow(l);
    qd_info("listening on %d address%s: %zu UDP and %zu TCP sockets, %d generation%s",
            l->ngroups, l->ngroups == 1 ? "" : "es", l->open_sockets - l->tcp_sockets,
            l->tcp_sockets, l->ngens, l->ngens == 1 ? "" : "s");
    return 0;
}

int listener_sock_send(listener *l, int worker)
{
    const listener_gen *gn = NULL;
    int sent = 0;

    for (int k = 0; k < l->ngens && gn == NULL; k++)
        for (int i = 0; i < l->gens[k].nids; i++)
            if (l->gens[k].ids[i] == worker)
                gn = &l->gens[k];
    if (gn == NULL) {
        qd_warn("worker[%d] is in no generation; it gets no sockets", worker);
        return -1;
    }
    bool tcp = (gn->flags & QD_LAYOUT_F_TCP) != 0;
    int a = 0;
    /*
     * In the generation's address order (the worker's endpoints), several
     * messages when there are more addresses than one message carries; an
     * address's UDP and TCP sockets always travel together (the worker
     * pairs an F_TCP_ADDR with the F_ADDR just before it).
     */
    qd_chan *ch = l->workers[worker].ch;
    while (a < gn->naddrs) {
        qd_ipc_msg *m = qd_chan_msg(ch, QD_MSG_SOCKETS, (uint32_t)a); /* id: the first address */
        if (a == 0)
            put_secrets(m, l);
        for (; a < gn->naddrs && m->fd_count + 2 <= QD_IPC_MAX_FDS; a++) {
            listener_group *g = listener_group_find(l, gn->addrs[a]);
            if (g == NULL || worker >= g->nslots) {
                qd_warn("no socket for worker[%d] on %s", worker, gn->addrs[a]);
                continue;
            }
            put_slot(m, g, worker, tcp);
            sent += 1 + (tcp && g->tcp[worker] >= 0);
        }
        int rv = qd_chan_queue(ch);
        if (rv < 0) {
            qd_warn("cannot pass sockets to worker[%d]: %s", worker,
                    rv == QD_ERR_IO ? strerror(errno) : qd_strerror(rv));
            return -1;
        }
    }
    qd_debug("passed %d sockets to worker[%d] of generation %u", sent, worker, gn->gen);
    return 0;
}
