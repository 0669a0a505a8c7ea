/* SPDX-License-Identifier: MIT */
#ifndef QD_LISTENER_H
#define QD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "qd_child.h"
#include "qd_ipc.h"

#define LISTENER_MAX_WORKERS 256

/* One worker's channel and the sockets reserved for it. */
typedef struct listener_worker {
    int channel_fd; /* -1 when the worker is not connected */
    uv_poll_t *poll;
    int *socks; /* one per listen address, -1 until opened */
} listener_worker;

typedef struct listener {
    qd_child child;
    int worker_count;
    size_t addr_count;
    char (*addr_names)[80];
    listener_worker workers[LISTENER_MAX_WORKERS];
    size_t open_sockets;
    uint64_t relayed, relay_dropped; /* QD_MSG_FWD_PACKET */
    /* sockets and secrets a predecessor had, returned by the master */
    int *escrow_fds;
    char (*escrow_names)[80];
    size_t escrow_count;
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
