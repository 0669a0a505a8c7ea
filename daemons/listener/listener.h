/* SPDX-License-Identifier: MIT */
#ifndef QD_LISTENER_H
#define QD_LISTENER_H

#include <stddef.h>

#include <uv.h>

#include "qd_child.h"

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
} listener;

/* listener_sock.c */
int listener_sock_open_all(listener *l, const qd_conf *conf, qd_buf *err);
void listener_sock_send(listener *l, int worker);

#endif /* QD_LISTENER_H */
