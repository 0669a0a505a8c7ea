/* SPDX-License-Identifier: MIT */
#ifndef QD_PROXY_H
#define QD_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qd_buf.h"

/*
 * The proxy table (quicd.conf's proxy_table): upstream groups, their
 * servers, and the routes that send requests to them. One record per line
 * (a line that begins with white space continues the previous one, '#'
 * starts a comment line):
 *
 *   group NAME [policy=round_robin|least_conn|hash] [hash=client|header:FIELD]
 *         [check=/PATH] [check_interval=DURATION] [check_timeout=DURATION]
 *         [rise=N] [fall=N] [expect=STATUS|Nxx] [connect_timeout=D] [read_timeout=D]
 *         [send_timeout=D] [idle_timeout=D] [fail_timeout=D] [queue=N] [retries=N]
 *         [fail_5xx=yes|no]
 *   server GROUP ADDRESS [weight=N] [max_conns=N] [backup] [sni=NAME] [verify=yes|no]
 *   route HOST/PREFIX GROUP|local [strip]
 *   trust ADDRESS[/BITS]...
 *
 * ADDRESS is host:port, [v6]:port or unix:/path, or https://host:port or
 * https://[v6]:port for TLS. HOST is a name or '*'.
 * Every error is "file:line: word: reason"; all of them are reported.
 */

#define QD_PROXY_NAME_MAX 64
#define QD_PROXY_HOST_MAX 256
#define QD_PROXY_PATH_MAX 108 /* sun_path */
#define QD_PROXY_PREFIX_MAX 1024
#define QD_PROXY_SERVER_NAME_MAX (QD_PROXY_HOST_MAX + 24) /* qd_proxy_server_name, NUL included */
#define QD_PROXY_MAX_GROUPS 256
#define QD_PROXY_MAX_SERVERS 64 /* per group */
#define QD_PROXY_MAX_ROUTES 1024
#define QD_PROXY_MAX_WEIGHT 256

typedef enum qd_proxy_policy {
    QD_PROXY_ROUND_ROBIN, /* weighted */
    QD_PROXY_LEAST_CONN,
    QD_PROXY_HASH, /* consistent hash of the client address or a header */
} qd_proxy_policy;

typedef struct qd_proxy_server {
    char host[QD_PROXY_HOST_MAX]; /* name or numeric address, no brackets; "" for unix */
    uint16_t port;
    char unix_path[QD_PROXY_PATH_MAX]; /* "" for TCP */
    uint32_t weight;                   /* 1..QD_PROXY_MAX_WEIGHT, default 1 */
    uint32_t max_conns;                /* per worker; 0: no limit */
    bool backup;                       /* used only when no other server is up */
    bool tls;                          /* https://: TLS to the server */
    bool no_verify;                    /* verify=no: its certificate is not checked */
    char sni[QD_PROXY_HOST_MAX];       /* the name sent and verified; "" = host */
    int line;                          /* where it was defined */
} qd_proxy_server;

typedef struct qd_proxy_group {
    char name[QD_PROXY_NAME_MAX];
    qd_proxy_policy policy;
    char hash_header[QD_PROXY_NAME_MAX]; /* policy hash: the field, lowercase; "" = client address */
    /* active health checks (the upstream daemon): a GET of check_path per server */
    char check_path[QD_PROXY_PREFIX_MAX]; /* "" = no active checks */
    uint32_t check_interval_ms, check_timeout_ms; /* default 2000, 1000 */
    uint32_t rise, fall;                          /* checks to come up / go down; default 2, 3 */
    uint32_t expect;     /* a status (200..599), or 2..5 for a class (2xx..5xx); default 2 */
    /* the workers' side (worker_proxy.c) */
    uint32_t connect_timeout_ms; /* a new connection (the upstream daemon's connect); 5s */
    uint32_t read_timeout_ms;    /* the answer's first byte, and between reads; 60s */
    uint32_t send_timeout_ms;    /* between writes of the request; 60s */
    uint32_t idle_timeout_ms;    /* a kept-alive connection waits in the pool; 30s, 0: no pool */
    uint32_t fail_timeout_ms;    /* a server marked down by failures (not checks) is tried
                                    again after this; 10s */
    uint32_t queue;              /* requests a worker holds waiting for a connection; 64 */
    uint32_t retries;            /* further servers or connections a request may try; 2 */
    bool fail_5xx;               /* a 5xx answer counts as a passive failure; no */
    qd_proxy_server *servers;
    size_t nservers;
    int line;
} qd_proxy_group;

typedef struct qd_proxy_route {
    char host[QD_PROXY_HOST_MAX]; /* lowercase; "*" matches any */
    char prefix[QD_PROXY_PREFIX_MAX];
    int group; /* index into groups, or -1: local (the app and the fast path) */
    bool strip; /* remove the prefix before passing the request on */
    int line;
} qd_proxy_route;

/* A network whose clients' Forwarded and X-Forwarded-* fields are kept (another proxy). */
typedef struct qd_proxy_net {
    int family;      /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network byte order; 4 bytes for AF_INET */
    unsigned bits;
} qd_proxy_net;

#define QD_PROXY_MAX_TRUST 256

typedef struct qd_proxy {
    qd_proxy_net *trust;
    size_t ntrust;
    qd_proxy_group *groups;
    size_t ngroups;
    qd_proxy_route *routes; /* most specific first: host before '*', longer prefix first */
    size_t nroutes;
} qd_proxy;

void qd_proxy_init(qd_proxy *p);
void qd_proxy_release(qd_proxy *p);

/*
 * qd_proxy_parse parses |len| bytes of |text| as the table file |name|
 * into |p| (initialised). Errors are appended to |errs|, one line each.
 * Returns 0, or QD_ERR_CONF (then |p| must only be released).
 * qd_proxy_load reads file |path| first (QD_ERR_IO when it cannot).
 */
int qd_proxy_parse(qd_proxy *p, const char *name, const char *text, size_t len, qd_buf *errs);
int qd_proxy_load(qd_proxy *p, const char *path, qd_buf *errs);

/*
 * qd_proxy_match returns the route for a request to |host| (its
 * :authority or Host, any port ignored, case-insensitive) and |path|, or
 * NULL when no route matches: the longest matching prefix of the most
 * specific host (a named host before '*').
 */
const qd_proxy_route *qd_proxy_match(const qd_proxy *p, const char *host, const char *path);

/*
 * qd_proxy_server_name writes |s| as the table writes it (host:port,
 * [v6]:port, unix:/path, https://host:port): how logs, the upstream
 * daemon and the workers name a server.
 */
void qd_proxy_server_name(const qd_proxy_server *s, char *out, size_t cap);

/*
 * qd_proxy_trusted tells whether the client at numeric address |ip| (IPv4
 * or IPv6 text, no brackets or port) is in a trust network; an IPv4
 * address mapped into IPv6 counts as IPv4.
 */
bool qd_proxy_trusted(const qd_proxy *p, const char *ip);

/*
 * qd_proxy_dump appends the table to |out| as lines that parse back into
 * the same table, each prefixed with |prefix|.
 */
void qd_proxy_dump(const qd_proxy *p, const char *prefix, qd_buf *out);

#endif /* QD_PROXY_H */
