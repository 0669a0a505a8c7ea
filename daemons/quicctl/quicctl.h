/* SPDX-License-Identifier: MIT */
#ifndef QD_QUICCTL_H
#define QD_QUICCTL_H

#include <stdbool.h>

#include "qd_buf.h"
#include "qd_conf.h"
#include "qd_ipc.h"

typedef struct quicctl {
    const char *conf_path;
    qd_conf conf;
    char sock_path[4096];
    char pid_path[4096];
} quicctl;

/* quicctl.c */
void quicctl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int quicctl_connect(quicctl *q, bool quiet);
int quicctl_request(int fd, uint16_t type, qd_ipc_msg *reply, int timeout_ms);

/* quicctl_status.c */
int quicctl_status(quicctl *q, bool json);
#endif /* QD_QUICCTL_H */
