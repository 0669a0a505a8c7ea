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
#define UPSTREAM_MAX_CONNECTS 1024 /* connects in flight for the workers, all together */

typedef enum us_state { US_UP, US_DOWN } us_state;
/* what marked a server down: its active checks, or the passive failures workers and connects saw */
typedef enum us_cause { US_BY_NONE, US_BY_CHECK, US_BY_PASSIVE } us_cause;

struct us_worker;

/* What one worker said it has at a server (UP_COUNTS): its running totals. */
typedef struct us_tally {
    uint32_t instance; /* the worker's */
    uint32_t active, idle;
    uint64_t requests, fails;
} us_tally;

/* One server of a group and its health; owned by the daemon's list. */
typedef struct us_server {
    struct us_server *next;
    struct upstream *u;
    char group[QD_PROXY_NAME_MAX];
    qd_proxy_group gconf;  /* the group's options (its servers array not kept) */
    qd_proxy_server conf;
    char name[QD_PROXY_SERVER_NAME_MAX]; /* host:port, [v6]:port or unix:/path */
    /* address */
    struct sockaddr_storage addr;
    socklen_t addrlen; /* 0 while unresolved */
    char addr_text[64];
    bool resolving;
    uv_getaddrinfo_t gai;
    char resolve_error[96];
    /* health */
    us_state state;
    us_cause down_by;        /* US_BY_NONE while up */
    uint64_t since_ms;       /* wall clock of the last change (or the start) */
    bool announce;           /* the state is to be broadcast to the workers */
    /* active: the checks (upstream_check.c) */
    uint32_t ok_run, fail_run; /* consecutive results */
    uint64_t checks, failures;
    char last[96];           /* the last check's outcome */
    /* passive: connects for the workers and the workers' reports (upstream_conn.c) */
    uint32_t passive_run;    /* consecutive failures; a success starts over */
    uint64_t passive_failures, connects; /* connects: sockets handed to workers */
    uv_timer_t revive;       /* passively down, group without checks: up after fail_timeout */
    unsigned connecting;     /* connects in flight that point here; freed only at 0 */
    /* the workers' counts (UP_COUNTS, upstream_conn.c), by instance; owned here */
    us_tally *tallies;
    size_t tally_count, tally_cap;
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
    struct us_worker *workers; /* a channel each (upstream_conn.c) */
    uint64_t seq;              /* of the last UP_STATE; starts from the wall clock */
    unsigned connecting;       /* connects in flight, at most UPSTREAM_MAX_CONNECTS */
    /* the daemon's running totals for its metrics (servers come and go; these stay) */
    uint64_t checks[2];        /* active checks: ok, failed (QD_MV_OK, QD_MV_FAILED) */
    uint64_t connects[5];      /* connects answered to workers, by QD_MV_CONNECT_* */
    uint64_t passive_failures; /* connects that failed and failures workers reported */
} upstream;

/* upstream.c */
/* upstream_find returns the server |name| of |group| in the table, or NULL. */
us_server *upstream_find(upstream *u, const char *group, const char *name);

/* upstream_check.c */
void upstream_check_start(us_server *s);
void upstream_check_restart(us_server *s);
void upstream_check_stop(us_server *s);
void upstream_resolve(us_server *s);
const char *upstream_state_name(us_state st);
const char *upstream_cause_name(us_cause by);
/*
 * upstream_passive counts what a worker saw at |s| or how a connect for one
 * ended: |ok| starts the run of failures over, else |why| is the failure's
 * cause; fall failures in a row mark an up server down.
 */
void upstream_passive(us_server *s, bool ok, const char *why);
/* upstream_server_put drops a connect's reference to |s| (freed if retired and unused). */
void upstream_server_put(us_server *s);

/* upstream_conn.c */
/* upstream_conn_channel takes |fd|, a channel to |role|[|instance|] from the master. */
void upstream_conn_channel(upstream *u, qd_role role, uint32_t instance, int fd);
/* upstream_conn_announce sends the servers marked |announce| to every worker, unmarks them. */
void upstream_conn_announce(upstream *u);
/* upstream_conn_count returns the worker channels open. */
size_t upstream_conn_count(const upstream *u);
/* upstream_conn_forget frees |s|'s workers' counts (it left the table, or is freed). */
void upstream_conn_forget(us_server *s);

#endif /* UPSTREAM_H */
