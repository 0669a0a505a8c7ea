/* SPDX-License-Identifier: MIT */
#ifndef UPSTREAM_H
#define UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <http_parser.h>
#include <uv.h>

#include "qd_buf.h"
#include "qd_child.h"
#include "qd_proxy.h"

#define UPSTREAM_RESOLVE_MS 60000 /* names are resolved again this often */
#define UPSTREAM_REPORT_MAX (48 * 1024) /* bytes of state text in one status report */

typedef enum us_state { US_UP, US_DOWN } us_state;

/* One server of a group and its health; owned by the daemon's list. */
typedef struct us_server {
    struct us_server *next;
    struct upstream *u;
    char group[QD_PROXY_NAME_MAX];
    qd_proxy_group gconf;  /* the group's options (its servers array not kept) */
    qd_proxy_server conf;
    char name[QD_PROXY_HOST_MAX + 16]; /* host:port, [v6]:port or unix:/path */
    /* address */
    struct sockaddr_storage addr;
    socklen_t addrlen; /* 0 while unresolved */
    char addr_text[64];
    bool resolving;
    uv_getaddrinfo_t gai;
    char resolve_error[96];
    /* health */
    us_state state;
    uint64_t since_ms;       /* wall clock of the last change (or the start) */
    uint32_t ok_run, fail_run; /* consecutive results */
    uint64_t checks, failures;
    char last[96];           /* the last check's outcome */
    /* the check in progress */
    int fd;                  /* -1 when none */
    uv_poll_t poll;
    uv_timer_t interval, timeout;
    int open_handles;        /* closed ones count down; freed at 0 */
    bool poll_closing;       /* the last check's poll handle is being closed */
    int closing_fd;          /* its socket, closed once the handle is */
    bool retired;            /* left the table: closing */
    bool sent;
    http_parser parser;
    unsigned status;
    bool got_status;
} us_server;

typedef struct upstream {
    qd_child child;
    qd_proxy table;
    us_server *servers;
    uv_timer_t resolve_timer;
    uint64_t changes; /* state changes since the start */
} upstream;

/* upstream_check.c */
void upstream_check_start(us_server *s);
void upstream_check_restart(us_server *s);
void upstream_check_stop(us_server *s);
void upstream_resolve(us_server *s);
const char *upstream_state_name(us_state st);

#endif /* UPSTREAM_H */
