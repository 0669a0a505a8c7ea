/* SPDX-License-Identifier: MIT */
#ifndef QD_QUICCTL_H
#define QD_QUICCTL_H

#include <stdbool.h>
#include <stdint.h>

#include "qd_buf.h"
#include "qd_conf.h"
#include "qd_proxy.h"
#include "qd_ipc.h"

typedef struct quicctl {
    const char *conf_path;
    qd_conf conf;
    qd_proxy proxy; /* the proxy table, once load_conf checked it (strict) */
    char sock_path[4096];
    char pid_path[4096];
} quicctl;

/* quicctl.c */
void quicctl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int quicctl_connect(quicctl *q, bool quiet);
int quicctl_request(int fd, uint16_t type, qd_ipc_msg *reply, int timeout_ms);

/* quicctl_status.c */
int quicctl_status(quicctl *q, bool json);
/* quicctl_conns lists the workers' live connections (a table, or JSON). */
int quicctl_conns(quicctl *q, bool json);

/* quicctl_upstreams.c: the upstream servers' state (a table, or JSON) */
int quicctl_upstreams(quicctl *q, bool json);

/* quicctl_metrics.c: the metrics in the Prometheus text format */
int quicctl_metrics(quicctl *q);

/* quicctl_report.c */
/* quicctl_report prints the stats summary; |argv| are the options after "report". */
int quicctl_report(quicctl *q, int argc, char **argv);
/* quicctl_parse_duration parses "90s", "15m", "1h", "7d", "500ms". Returns 0 or -1. */
int quicctl_parse_duration(const char *s, int64_t *ms);
/* quicctl_parse_time parses YYYY-MM-DD[THH:MM:SS[Z]] (UTC) or @unix-seconds. Returns 0 or -1. */
int quicctl_parse_time(const char *s, int64_t *ms);
#endif /* QD_QUICCTL_H */
