/* SPDX-License-Identifier: MIT */
#ifndef QD_LISTENER_H
#define QD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "qd_child.h"
#include "qd_ipc.h"

#define LISTENER_MAX_WORKERS 256
/* (worker, address) pairs a predecessor's escrow may hold */
#define LISTENER_MAX_ESCROW (LISTENER_MAX_WORKERS * 4)

/* One worker's channel and the sockets reserved for it. */
typedef struct listener_worker {
    int channel_fd; /* -1 when the worker is not connected */
    uv_poll_t *poll;
    int *socks;     /* UDP: one per listen address, -1 until opened */
    int *tcp_socks; /* TCP listen sockets, one per address; NULL when tcp = no */
} listener_worker;

/* One (worker, address) pair of a predecessor's sockets, in escrow order. */
typedef struct listener_escrowed {
    char name[80]; /* "addr:port" */
    int fd;        /* the UDP socket */
    int tcp_fd;    /* the TCP listen socket, -1 if none came */
} listener_escrowed;

typedef struct listener {
    qd_child child;
    int worker_count;
    size_t addr_count;
    char (*addr_names)[80];
    listener_worker workers[LISTENER_MAX_WORKERS];
    bool has_tcp;                    /* tcp = yes: a TCP listen socket beside each UDP one */
    size_t open_sockets;             /* UDP and TCP */
    size_t tcp_sockets;              /* of which TCP */
    uint64_t relayed, relay_dropped; /* QD_MSG_FWD_PACKET */
    /* sockets and secrets a predecessor had, returned by the master */
    listener_escrowed *escrow;
    size_t escrow_count;
    bool escrow_bad; /* an F_TCP_ADDR that did not follow its F_ADDR: adopt none */
    bool escrow_secrets;
    uint8_t static_secret[QD_STATIC_SECRET_LEN]; /* tokens, stateless reset */
    uint8_t ticket_key[QD_TICKET_KEY_LEN];       /* TLS session tickets */
} listener;

/* listener_sock.c */
int listener_sock_open_all(listener *l, const qd_conf *conf, qd_buf *err);
void listener_sock_escrowed(listener *l, qd_ipc_msg *m);
void listener_sock_send(listener *l, int worker);

/* listener_bpf.c */
int listener_bpf_attach(int fd, int workers, qd_buf *err);

#endif /* QD_LISTENER_H */
