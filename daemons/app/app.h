/* SPDX-License-Identifier: MIT */
#ifndef QD_APP_H
#define QD_APP_H

#include <uv.h>

#include "qd_child.h"

#define APP_MAX_WORKERS 256

typedef struct app_worker {
    int fd; /* -1 when not connected */
    uv_poll_t *poll;
} app_worker;

typedef struct app {
    qd_child child;
    app_worker workers[APP_MAX_WORKERS];
    uint32_t connected;
} app;

#endif /* QD_APP_H */
