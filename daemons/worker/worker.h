/* SPDX-License-Identifier: MIT */
#ifndef QD_WORKER_H
#define QD_WORKER_H

#include <stddef.h>

#include <uv.h>

#include "qd_child.h"

#define WORKER_MAX_SOCKETS 64

/* A peer channel (listener or app). */
typedef struct worker_peer {
    int fd; /* -1 when down */
    uv_poll_t *poll;
} worker_peer;

typedef struct worker {
    qd_child child;
    worker_peer listener;
    worker_peer app;
    int socks[WORKER_MAX_SOCKETS];
    char sock_names[WORKER_MAX_SOCKETS][80];
    size_t sock_count;
    uint32_t connections;
} worker;

#endif /* QD_WORKER_H */
