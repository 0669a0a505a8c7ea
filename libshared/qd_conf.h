/* SPDX-License-Identifier: MIT */
#ifndef QD_CONF_H
#define QD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "qd_buf.h"

/*
 * quicd.conf is "key = value" lines (Postfix main.cf): '#' starts a comment
 * line, a line that begins with white space continues the previous one.
 * Every key is one row of the table in qd_conf.c: name, type, default,
 * range, whether reload applies it, and a one-line description. The parser,
 * `quicd -t`, `quicctl config` and the documentation checks read that table.
 */

typedef enum qd_conf_type {
    QD_CONF_BOOL,     /* yes/no, true/false, on/off, 1/0 */
    QD_CONF_INT,      /* decimal integer, optionally "auto" */
    QD_CONF_SIZE,     /* bytes with optional K/KB/KiB, M/MB/MiB, G/GB/GiB (x1024) */
    QD_CONF_DURATION, /* stored in ms; units ms s m h d w; bare number = seconds */
    QD_CONF_STRING,
    QD_CONF_PATH,  /* absolute path */
    QD_CONF_ENUM,  /* one of a fixed list of words; stored as its index */
    QD_CONF_ADDRS, /* list of addr:port / [v6]:port, comma or space separated */
    QD_CONF_ADDR,  /* one addr:port / [v6]:port; with QD_CONF_F_EMPTY empty means none */
    QD_CONF_NETS,  /* list of networks, ADDR[/PREFIX] (IPv4 or IPv6), comma or space separated */
} qd_conf_type;

/* A parsed listen address. */
typedef struct qd_conf_addr {
    char host[64]; /* numeric, without brackets */
    uint16_t port;
    int family; /* AF_INET or AF_INET6 */
} qd_conf_addr;

typedef struct qd_conf_addrs {
    qd_conf_addr *items;
    size_t count;
} qd_conf_addrs;

/* A network of an allow-list: |prefix| leading bits of |addr|, the rest zero. */
typedef struct qd_conf_net {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network byte order; 4 bytes used for AF_INET */
    uint8_t prefix;   /* 0..32 or 0..128; a bare address is /32 or /128 */
} qd_conf_net;

typedef struct qd_conf_nets {
    qd_conf_net *items;
    size_t count;
} qd_conf_nets;

typedef enum qd_conf_cc { QD_CC_CUBIC, QD_CC_RENO, QD_CC_BBR } qd_conf_cc;
typedef enum qd_conf_retry { QD_RETRY_NO, QD_RETRY_YES, QD_RETRY_AUTO } qd_conf_retry;

/* Key indices; the order of the table in qd_conf.c. */
typedef enum qd_conf_key_id {
    QD_K_LISTEN,
    QD_K_WORKERS,
    QD_K_USER,
    QD_K_GROUP,
    QD_K_CHROOT,
    QD_K_RUNTIME_DIRECTORY,
    QD_K_DAEMON_DIRECTORY,
    QD_K_STATS_DATABASE,
    QD_K_TLS_CERTIFICATE,
    QD_K_TLS_KEY,
    QD_K_DOCUMENT_ROOT,
    QD_K_LOG_LEVEL,
    QD_K_ACCESS_LOG,
    QD_K_CONGESTION_CONTROL,
    QD_K_RETRY,
    QD_K_EARLY_DATA,
    QD_K_MAX_CONNECTIONS,
    QD_K_IDLE_TIMEOUT,
    QD_K_MAX_CONCURRENT_STREAMS,
    QD_K_STREAM_WINDOW,
    QD_K_CONNECTION_WINDOW,
    QD_K_STATS_INTERVAL,
    QD_K_STATS_RETENTION,
    QD_K_STATS_HISTORY_RETENTION,
    QD_K_STATS_BUFFER,
    QD_K_STATS,
    QD_K_EVENTS_INTERVAL,
    QD_K_MAX_REQUEST_BODY,
    QD_K_DRAIN_TIMEOUT,
    QD_K_THROTTLE_TIME,
    QD_K_CACHE_CONTROL,
    QD_K_UDP_BUFFER,
    QD_K_RETRY_THRESHOLD,
    QD_K_RETRY_LIMIT,
    QD_K_API,
    QD_K_EARLY_HINTS,
    QD_K_FILE_CACHE_MAX,
    QD_K_FILE_CACHE_VALID,
    QD_K_TCP,
    QD_K_TCP_BACKLOG,
    QD_K_ALT_SVC_MAX_AGE,
    QD_K_TCP_HEADER_TIMEOUT,
    QD_K_TCP_IDLE_TIMEOUT,
    QD_K_PROXY_TABLE,
    QD_K_PROXY_CA_FILE,
    QD_K_REQUEST_HISTORY,
    QD_K_METRICS_LISTEN,
    QD_K_METRICS_ALLOW,
    QD_K_METRICS_TOKEN_FILE,
    QD_K_COUNT
} qd_conf_key_id;

/* The effective configuration. Strings are owned by the struct. */
typedef struct qd_conf {
    qd_conf_addrs listen;
    int64_t workers; /* 0 means auto: one per CPU */
    char *user;
    char *group;
    bool chroot;
    char *runtime_directory;
    char *daemon_directory;
    char *stats_database;
    char *tls_certificate;
    char *tls_key;
    char *document_root;
    int64_t log_level; /* qd_log_level */
    char *access_log;
    int64_t congestion_control; /* qd_conf_cc */
    int64_t retry;              /* qd_conf_retry */
    bool early_data;
    int64_t max_connections;
    int64_t idle_timeout_ms;
    int64_t max_concurrent_streams;
    int64_t stream_window;
    int64_t connection_window;
    int64_t stats_interval_ms;
    int64_t stats_buffer;    /* bytes, SO_SNDBUF of the stats channel's send end */
    int64_t stats_retention_ms;
    int64_t stats_history_retention_ms;
    bool stats;
    int64_t events_interval_ms;
    int64_t max_request_body;
    int64_t drain_timeout_ms;
    int64_t throttle_time_ms;
    char *cache_control;     /* empty: none */
    int64_t udp_buffer;      /* bytes, SO_RCVBUF/SO_SNDBUF of each UDP socket */
    int64_t retry_threshold; /* unfinished handshakes per worker before retry = auto sends Retry */
    int64_t retry_limit;     /* most Retry packets per second per worker; Initials beyond wait */
    bool api;                /* the built-in routes /api/time, /api/echo, /events, /stream */
    char *early_hints;       /* "PATH LINK, LINK | PATH LINK"; empty: none */
    int64_t file_cache_max;  /* static answers a worker keeps (the fast path); 0: off */
    int64_t file_cache_valid_ms; /* how long a worker serves a granted file before asking again */
    bool tcp;                      /* HTTPS over TLS/TCP (h2, http/1.1) on every listen address */
    int64_t tcp_backlog;           /* listen(2) backlog of each TCP listen socket */
    int64_t alt_svc_max_age_ms;    /* Alt-Svc ma= on TCP responses; 0: no Alt-Svc */
    int64_t tcp_header_timeout_ms; /* longest a TCP client may take to send a request head */
    int64_t tcp_idle_timeout_ms;   /* an idle TCP connection (keep-alive) is closed after this */
    char *proxy_table;             /* routes and upstream groups (qd_proxy.h); empty: none */
    char *proxy_ca_file;           /* CA certificates for https:// upstream servers */
    char *request_history;         /* which requests get a row: all, errors, sample:N, none */
    qd_conf_addr metrics_listen;   /* where stats serves /metrics; family 0: off */
    qd_conf_nets metrics_allow;    /* peers that may scrape it */
    char *metrics_token_file;      /* bearer token a scrape must send; empty: none */

    /* Bookkeeping: the value text as written and where it came from. */
    char *text[QD_K_COUNT]; /* NULL means the compiled-in default */
    int line[QD_K_COUNT];   /* line of the file that set it, 0 = default */
    char *source;           /* file name, or NULL */
} qd_conf;

/* Key flags. */
#define QD_CONF_F_RELOAD 0x1 /* a reload applies the new value to running daemons */
#define QD_CONF_F_AUTO 0x2   /* INT accepts "auto" (stored as 0) */
#define QD_CONF_F_EMPTY 0x4  /* STRING/PATH may be empty (feature off) */
#define QD_CONF_F_HINTS 0x8  /* STRING checked by qd_conf_hints_parse */
#define QD_CONF_F_HISTORY 0x10 /* STRING checked by qd_conf_history_parse */

typedef struct qd_conf_key {
    const char *name;
    qd_conf_type type;
    const char *def; /* default, as text */
    int64_t min, max;
    size_t offset;
    unsigned flags;
    const char *const *words; /* ENUM: NULL-terminated list */
    const char *doc;          /* one line */
} qd_conf_key;

/* qd_conf_keys returns the table and sets |*count| to its length. */
const qd_conf_key *qd_conf_keys(size_t *count);

/* qd_conf_key_find returns the index of key |name|, or -1. */
int qd_conf_key_find(const char *name);

/*
 * qd_conf_init fills |c| with the compiled-in defaults. It cannot fail (the
 * defaults are checked by the unit tests). qd_conf_release frees |c|'s
 * strings; NULL-safe.
 */
void qd_conf_init(qd_conf *c);
void qd_conf_release(qd_conf *c);

/*
 * qd_conf_load reads and parses |path| into |c| (which must have been
 * initialised with qd_conf_init). Every error is appended to |errs| as one
 * line "path:line: key: reason"; parsing goes on after an error so that all
 * of them are reported. Returns 0, QD_ERR_CONF when the file has errors, or
 * QD_ERR_IO when it cannot be read (the reason is in |errs|). On error, |c|
 * holds a mix of values and must not be used except to release it.
 */
int qd_conf_load(qd_conf *c, const char *path, qd_buf *errs);

/*
 * qd_conf_parse parses |len| bytes of |text| as if read from a file named
 * |name|. Same returns as qd_conf_load (never QD_ERR_IO). |text| need not be
 * NUL-terminated and may contain any bytes.
 */
int qd_conf_parse(qd_conf *c, const char *name, const char *text, size_t len, qd_buf *errs);

/*
 * qd_conf_set sets one key from text (the `quicd -o key=value` override),
 * replacing any earlier value. Returns 0, QD_ERR_NOTFOUND (unknown key) or
 * QD_ERR_INVAL (bad value); the reason is appended to |errs| prefixed with
 * |origin|.
 */
int qd_conf_set(qd_conf *c, const char *key, const char *value, const char *origin,
                qd_buf *errs);

/* Modes for qd_conf_dump. */
#define QD_CONF_DUMP_EFFECTIVE 0 /* every key, current value (postconf) */
#define QD_CONF_DUMP_CHANGED 1   /* only keys set explicitly (postconf -n) */
#define QD_CONF_DUMP_DEFAULTS 2  /* every key's default (postconf -d) */

/*
 * qd_conf_dump appends "key = value" lines to |out|. The output parses back
 * into an identical configuration.
 */
void qd_conf_dump(const qd_conf *c, int mode, qd_buf *out);

/* qd_conf_value_text returns key |id|'s value as text (never NULL). */
const char *qd_conf_value_text(const qd_conf *c, qd_conf_key_id id);

/*
 * qd_conf_diff appends to |names| (space separated) the keys whose values
 * differ between |a| and |b|; with |only_restart| just the keys a reload
 * cannot apply to running daemons. Returns how many keys were appended.
 */
int qd_conf_diff(const qd_conf *a, const qd_conf *b, bool only_restart, qd_buf *names);

/*
 * qd_conf_hints_parse parses an early_hints value: entries separated by
 * '|', each "PATH LINK[, LINK...]" with PATH starting with '/' and the
 * Link field value starting with '<'. For each entry it calls |cb| (unless
 * NULL) with |arg|, the path and the Link value (NUL-terminated, valid
 * during the call). Returns 0, or -1 with a static reason in |*why|.
 */
int qd_conf_hints_parse(const char *value, void (*cb)(void *, const char *, const char *),
                        void *arg, const char **why);

/* request_history: which requests the workers record (qd_conf_history_parse) */
typedef enum qd_history {
    QD_HISTORY_ALL,
    QD_HISTORY_ERRORS, /* no response, or a status of 400 or more */
    QD_HISTORY_SAMPLE, /* one in N, at random */
    QD_HISTORY_NONE
} qd_history;
/*
 * qd_conf_history_parse parses a request_history value: "all", "errors",
 * "none" or "sample:N" (N from 1 to 1000000). Sets |*mode| and, for a
 * sample, |*n| (either may be NULL). Returns 0, or -1 with a static
 * reason in |*why|.
 */
int qd_conf_history_parse(const char *value, qd_history *mode, uint32_t *n, const char **why);

/* qd_conf_log_level returns log_level as a qd_log_level (syslog) value. */
int qd_conf_log_level(const qd_conf *c);

/*
 * qd_conf_addr_sockaddr fills |ss| with listen address |a| and returns its
 * length (sizeof struct sockaddr_in or sockaddr_in6).
 */
socklen_t qd_conf_addr_sockaddr(const qd_conf_addr *a, struct sockaddr_storage *ss);

/*
 * qd_conf_addr_text writes |a| as "host:port" or "[v6]:port" into |buf|
 * (|len| bytes; 80 always suffice) and returns |buf|; "" for none (family 0).
 */
const char *qd_conf_addr_text(const qd_conf_addr *a, char *buf, size_t len);

/*
 * qd_conf_nets_match returns whether the address of |sa| (AF_INET or
 * AF_INET6; an IPv4-mapped IPv6 address counts as its IPv4 address) lies in
 * one of the networks of |nets|. Any other family never matches.
 */
bool qd_conf_nets_match(const qd_conf_nets *nets, const struct sockaddr *sa);

/* qd_conf_workers returns the worker count, resolving "auto" to the CPUs we may run on. */
int qd_conf_workers(const qd_conf *c);

#endif /* QD_CONF_H */
