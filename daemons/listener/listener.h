/* SPDX-License-Identifier: MIT */
#ifndef QD_LISTENER_H
#define QD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "qd_chan.h"
#include "qd_child.h"
#include "qd_ipc.h"

/* Worker ids are one byte of the CID: slot i of every group is worker id i. */
#define LISTENER_MAX_SLOTS 256
#define LISTENER_MAX_GROUPS 128
/* Generations the master may keep alive at once (one serving, others draining). */
#define LISTENER_MAX_GENS 8
#define LISTENER_MAX_ADDRS 64 /* QD_CONF_MAX_ADDRS */
/* (slot, address) pairs a predecessor's escrow may hold */
#define LISTENER_MAX_ESCROW 4096

/* One worker's channel, by worker id. */
typedef struct listener_worker {
    qd_chan *ch; /* NULL when the worker is not connected */
} listener_worker;

/*
 * One address: a reuseport group of UDP sockets and, beside it, one of TCP
 * listen sockets. Slot i is bound i-th and never closed while the group
 * lives, so it stays index i in the kernel's group: the socket of worker
 * id i, whatever the generation.
 */
typedef struct listener_group {
    char name[80];       /* "addr:port" */
    int udp[LISTENER_MAX_SLOTS];
    int tcp[LISTENER_MAX_SLOTS]; /* -1 where none */
    int nslots;
    bool has_tcp;        /* tcp[0..nslots-1] are open */
} listener_group;

/* One generation of workers, as the master's QD_MSG_LAYOUT says. */
typedef struct listener_gen {
    uint32_t gen;
    uint32_t flags; /* QD_LAYOUT_F_* */
    uint8_t ids[LISTENER_MAX_SLOTS];
    int nids;
    char addrs[LISTENER_MAX_ADDRS][80];
    int naddrs;
} listener_gen;

/* One (slot, address) pair of a predecessor's sockets, in escrow order. */
typedef struct listener_escrowed {
    char name[80]; /* "addr:port" */
    int fd;        /* the UDP socket */
    int tcp_fd;    /* the TCP listen socket, -1 if none came */
} listener_escrowed;

typedef struct listener {
    qd_child child;
    listener_worker workers[LISTENER_MAX_SLOTS];
    listener_group *groups[LISTENER_MAX_GROUPS];
    int ngroups;
    listener_gen gens[LISTENER_MAX_GENS];
    int ngens;
    bool have_layout;
    size_t open_sockets;             /* UDP and TCP */
    size_t tcp_sockets;              /* of which TCP */
    uint64_t relayed, relay_dropped; /* QD_MSG_FWD_PACKET */
    uint64_t handoffs[2];            /* socket sets passed to workers: ok, failed */
    uint64_t steering[2];            /* layouts applied to the steering programs: ok, failed */
    /* sockets and secrets a predecessor had, returned by the master */
    listener_escrowed *escrow;
    size_t escrow_count;
    bool escrow_bad; /* an F_TCP_ADDR that did not follow its F_ADDR: adopt none */
    bool escrow_secrets;
    uint8_t static_secret[QD_STATIC_SECRET_LEN]; /* tokens, stateless reset */
    uint8_t ticket_key[QD_TICKET_KEY_LEN];       /* TLS session tickets */
    uint32_t cid_tag;                            /* qd_cid.h */
} listener;

/* listener_sock.c */
int listener_sock_open_all(listener *l, const qd_conf *conf, qd_buf *err);
void listener_sock_escrowed(listener *l, qd_ipc_msg *m);
/* listener_sock_send passes |worker| its sockets; 0, or -1 when it could not (logged). */
int listener_sock_send(listener *l, int worker);
int listener_layout(listener *l, const qd_ipc_msg *m, qd_buf *err);
int listener_apply(listener *l, qd_buf *err);
listener_group *listener_group_find(listener *l, const char *name);
/* listener_current - the ids taking new connections on |g| (|tcp|: of those with TCP) */
int listener_current(const listener *l, const listener_group *g, bool tcp, uint8_t *ids);

/* listener_bpf.c */
int listener_bpf_udp(int fd, const uint8_t *live, int nlive, const uint8_t *cur, int ncur,
                     uint32_t tag, qd_buf *err);
int listener_bpf_tcp(int fd, const uint8_t *cur, int ncur, qd_buf *err);
/* listener_hash - the program's choice among |ncur| for a datagram it cannot steer by CID */
uint32_t listener_hash(const uint8_t *pkt, size_t len);

#endif /* QD_LISTENER_H */
