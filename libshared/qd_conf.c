/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_conf - quicd.conf: the key table, parser and dumper
 * SYNOPSIS
 *	qd_conf_keys(), qd_conf_key_find(), qd_conf_init(), qd_conf_release(),
 *	qd_conf_load(), qd_conf_parse(), qd_conf_set(), qd_conf_dump(),
 *	qd_conf_value_text(), qd_conf_diff(), qd_conf_workers(),
 *	qd_conf_addr_sockaddr(), qd_conf_addr_text(), qd_conf_nets_match()
 * DESCRIPTION
 *	One table row per key (Postfix's VAR_/DEF_/var_ triplet in one place).
 *	Syntax is Postfix main.cf: "key = value"; lines whose first non-blank
 *	character is '#' are comments; a line starting with white space
 *	continues the previous logical line. Values are typed (see qd_conf.h).
 *	The parser keeps going after an error and reports every one of them,
 *	as "file:line: key: reason" (OpenBSD parse.y, h2o configurator).
 *	The qd_conf owns all its strings; qd_conf_release frees them.
 * DIAGNOSTICS
 *	Errors go to the caller's qd_buf, one per line; nothing is logged.
 * SEE ALSO
 *	quicd.conf(5), tests/unit/test_conf.c
 */
#include "config.h"

/* system */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_conf.h"
#include "qd_err.h"
#include "qd_log.h"

#ifndef QD_RUNSTATEDIR
#define QD_RUNSTATEDIR "/run"
#endif
#ifndef QD_LOCALSTATEDIR
#define QD_LOCALSTATEDIR "/var"
#endif
#ifndef QD_SYSCONFDIR
#define QD_SYSCONFDIR "/etc"
#endif
#ifndef QD_PKGLIBEXECDIR
#define QD_PKGLIBEXECDIR "/usr/libexec/quicd"
#endif
#ifndef QD_PKGDATADIR
#define QD_PKGDATADIR "/usr/share/quicd"
#endif

#define QD_CONF_MAX_FILE (1024 * 1024)
#define QD_CONF_MAX_ADDRS 64
#define QD_CONF_MAX_NETS 64
#define DAY_MS (86400LL * 1000)

static const char *const log_levels[] = {"err", "warn", "notice", "info", "debug", NULL};
static const char *const cc_names[] = {"cubic", "reno", "bbr", NULL};
static const char *const retry_names[] = {"no", "yes", "auto", NULL};

#define OFF(field) offsetof(qd_conf, field)
#define R QD_CONF_F_RELOAD

/*
 * The table. Order matches qd_conf_key_id. Rows with QD_CONF_F_RELOAD are
 * pushed to running daemons on reload; others make the master replace the
 * daemons that use them.
 */
static const qd_conf_key keys[QD_K_COUNT] = {
    {"listen", QD_CONF_ADDRS, "0.0.0.0:443, [::]:443", 1, QD_CONF_MAX_ADDRS, OFF(listen), 0, NULL,
     "UDP addresses to serve HTTP/3 on, addr:port or [v6]:port, comma separated"},
    {"workers", QD_CONF_INT, "auto", 1, 256, OFF(workers), QD_CONF_F_AUTO, NULL,
     "number of QUIC worker processes; auto means one per online CPU, each pinned"},
    {"user", QD_CONF_STRING, "nobody", 0, 0, OFF(user), 0, NULL,
     "unprivileged user the daemons run as (when started as root)"},
    {"group", QD_CONF_STRING, "nogroup", 0, 0, OFF(group), 0, NULL,
     "group the daemons run as (when started as root)"},
    {"chroot", QD_CONF_BOOL, "yes", 0, 1, OFF(chroot), 0, NULL,
     "chroot workers to an empty directory and the app to document_root (root only)"},
    {"runtime_directory", QD_CONF_PATH, QD_RUNSTATEDIR "/quicd", 0, 0, OFF(runtime_directory), 0,
     NULL, "directory for the control socket, pid file and lock"},
    {"daemon_directory", QD_CONF_PATH, QD_PKGLIBEXECDIR, 0, 0, OFF(daemon_directory), 0, NULL,
     "directory holding the listener, worker, app and stats programs"},
    {"stats_database", QD_CONF_PATH, QD_LOCALSTATEDIR "/lib/quicd/stats.db", 0, 0,
     OFF(stats_database), 0, NULL, "SQLite database of connections, requests and samples"},
    {"tls_certificate", QD_CONF_PATH, QD_SYSCONFDIR "/quicd/cert.pem", 0, 0, OFF(tls_certificate),
     R, NULL, "PEM certificate chain (leaf first)"},
    {"tls_key", QD_CONF_PATH, QD_SYSCONFDIR "/quicd/key.pem", 0, 0, OFF(tls_key), R, NULL,
     "PEM private key matching tls_certificate (ECDSA or RSA)"},
    {"document_root", QD_CONF_PATH, QD_PKGDATADIR "/htdocs", 0, 0, OFF(document_root), R, NULL,
     "directory static files are served from"},
    {"log_level", QD_CONF_ENUM, "info", 0, 0, OFF(log_level), R, log_levels,
     "least severe level logged: err, warn, notice, info or debug"},
    {"access_log", QD_CONF_PATH, "", 0, 0, OFF(access_log), R | QD_CONF_F_EMPTY, NULL,
     "file the app and the workers append one line per request to; empty disables it"},
    {"congestion_control", QD_CONF_ENUM, "cubic", 0, 0, OFF(congestion_control), R, cc_names,
     "QUIC congestion controller: cubic, reno or bbr"},
    {"retry", QD_CONF_ENUM, "auto", 0, 0, OFF(retry), R, retry_names,
     "QUIC Retry address validation: no, yes, or auto (only under handshake load)"},
    {"early_data", QD_CONF_BOOL, "yes", 0, 1, OFF(early_data), R, NULL,
     "accept TLS 1.3 0-RTT early data (safe methods only)"},
    {"max_connections", QD_CONF_INT, "10000", 1, 10000000, OFF(max_connections), R, NULL,
     "most concurrent QUIC connections, and as many TLS/TCP ones, per worker"},
    {"idle_timeout", QD_CONF_DURATION, "30s", 1000, DAY_MS, OFF(idle_timeout_ms), R, NULL,
     "QUIC idle timeout"},
    {"max_concurrent_streams", QD_CONF_INT, "100", 1, 100000, OFF(max_concurrent_streams), R, NULL,
     "most concurrent request streams a client may open per connection"},
    {"stream_window", QD_CONF_SIZE, "1MB", 16384, 1LL << 30, OFF(stream_window), R, NULL,
     "flow-control window per stream"},
    {"connection_window", QD_CONF_SIZE, "10MB", 16384, 1LL << 32, OFF(connection_window), R,
     NULL, "flow-control window per connection"},
    {"stats_interval", QD_CONF_DURATION, "10s", 1000, DAY_MS, OFF(stats_interval_ms), R, NULL,
     "how often each worker reports a sample to the stats database"},
    {"stats_retention", QD_CONF_DURATION, "30d", 3600 * 1000LL, 3650 * DAY_MS,
     OFF(stats_retention_ms), R, NULL, "how long samples and process events are kept"},
    {"stats_history_retention", QD_CONF_DURATION, "30d", 3600 * 1000LL, 3650 * DAY_MS,
     OFF(stats_history_retention_ms), R, NULL,
     "how long connection and request records are kept"},
    {"stats_buffer", QD_CONF_SIZE, "4MB", 16384, 1LL << 30, OFF(stats_buffer), R, NULL,
     "bytes of records that may wait for the stats daemon before senders drop them"},
    {"stats", QD_CONF_BOOL, "yes", 0, 1, OFF(stats), R, NULL,
     "workers record every connection, request and sample in the stats database"},
    {"events_interval", QD_CONF_DURATION, "5s", 100, DAY_MS, OFF(events_interval_ms), R, NULL,
     "interval between server-sent events on /events"},
    {"max_request_body", QD_CONF_SIZE, "1MB", 0, 1LL << 32, OFF(max_request_body), R, NULL,
     "largest request body accepted (413 beyond it)"},
    {"drain_timeout", QD_CONF_DURATION, "10s", 0, 3600 * 1000LL, OFF(drain_timeout_ms), R, NULL,
     "how long a stop or reload lets daemons finish their work before they are killed"},
    {"throttle_time", QD_CONF_DURATION, "60s", 1000, 3600 * 1000LL, OFF(throttle_time_ms), R,
     NULL, "longest delay before restarting a daemon that keeps crashing"},
    {"cache_control", QD_CONF_STRING, "max-age=60", 0, 0, OFF(cache_control), R | QD_CONF_F_EMPTY,
     NULL, "Cache-Control header sent with static files; empty sends none"},
    {"udp_buffer", QD_CONF_SIZE, "4MB", 65536, 1LL << 30, OFF(udp_buffer), 0, NULL,
     "receive and send buffer size of each UDP socket"},
    {"retry_threshold", QD_CONF_INT, "200", 1, 10000000, OFF(retry_threshold), R, NULL,
     "unfinished handshakes per worker (of the last second, or still open) above which "
     "retry = auto demands address validation"},
    {"retry_limit", QD_CONF_INT, "5000", 1, 10000000, OFF(retry_limit), R, NULL,
     "most Retry packets per second per worker; token-less Initials beyond it are dropped"},
    {"api", QD_CONF_BOOL, "yes", 0, 1, OFF(api), R, NULL,
     "serve the built-in routes /api/time, /api/echo, /events and /stream"},
    {"early_hints", QD_CONF_STRING, "", 0, 0, OFF(early_hints), R | QD_CONF_F_EMPTY | QD_CONF_F_HINTS,
     NULL, "103 Early Hints Link headers per path: PATH LINK[, LINK] [| PATH LINK ...]"},
    {"file_cache_max", QD_CONF_INT, "1000", 0, 100000, OFF(file_cache_max), R, NULL,
     "static files each worker answers itself, without the app (open descriptors); 0 disables"},
    {"file_cache_valid", QD_CONF_DURATION, "1s", 0, 3600 * 1000LL, OFF(file_cache_valid_ms), R,
     NULL, "how long a worker answers for a file before it asks the app again"},
    {"tcp", QD_CONF_BOOL, "yes", 0, 1, OFF(tcp), 0, NULL,
     "also serve HTTPS over TLS/TCP (HTTP/2 and HTTP/1.1) on every listen address"},
    {"tcp_backlog", QD_CONF_INT, "511", 1, 65535, OFF(tcp_backlog), 0, NULL,
     "accept queue length of each TCP listen socket (capped by net.core.somaxconn)"},
    {"alt_svc_max_age", QD_CONF_DURATION, "86400s", 0, 3650 * DAY_MS, OFF(alt_svc_max_age_ms), R,
     NULL, "Alt-Svc h3 max age advertised on TCP responses; 0 sends no Alt-Svc"},
    {"tcp_header_timeout", QD_CONF_DURATION, "10s", 100, 3600 * 1000LL,
     OFF(tcp_header_timeout_ms), R, NULL,
     "longest a TCP client may take for the TLS handshake or a request head (slowloris)"},
    {"tcp_idle_timeout", QD_CONF_DURATION, "60s", 100, DAY_MS, OFF(tcp_idle_timeout_ms), R, NULL,
     "an idle TCP connection (no request in progress) is closed after this"},
    {"proxy_table", QD_CONF_PATH, "", 0, 0, OFF(proxy_table), R | QD_CONF_F_EMPTY, NULL,
     "routes and upstream groups (group, server and route lines, quicd.conf(5)); empty: none"},
    {"proxy_ca_file", QD_CONF_PATH, "/etc/ssl/certs/ca-certificates.crt", 0, 0, OFF(proxy_ca_file),
     R, NULL, "PEM CA certificates that https:// upstream servers are verified against"},
    {"request_history", QD_CONF_STRING, "all", 0, 0, OFF(request_history), R | QD_CONF_F_HISTORY,
     NULL, "which requests get a row of their own in the stats database: all, errors, "
     "sample:N (one in N) or none; the metrics and quicctl report count every request"},
    {"metrics_listen", QD_CONF_ADDR, "", 0, 0, OFF(metrics_listen), R | QD_CONF_F_EMPTY, NULL,
     "TCP address addr:port or [v6]:port of the Prometheus endpoint GET /metrics; empty: off"},
    {"metrics_allow", QD_CONF_NETS, "127.0.0.0/8, ::1", 1, QD_CONF_MAX_NETS, OFF(metrics_allow),
     R, NULL, "networks (ADDR/PREFIX or an address, IPv4 or IPv6) that may scrape /metrics"},
    {"metrics_token_file", QD_CONF_PATH, "", 0, 0, OFF(metrics_token_file), R | QD_CONF_F_EMPTY,
     NULL, "file holding a token each scrape must send as Authorization: Bearer; empty: none"},
};

#undef R

const qd_conf_key *qd_conf_keys(size_t *count)
{
    *count = QD_K_COUNT;
    return keys;
}

int qd_conf_key_find(const char *name)
{
    for (int i = 0; i < QD_K_COUNT; i++)
        if (strcmp(keys[i].name, name) == 0)
            return i;
    return -1;
}

/* field - address of key |k|'s storage in |c| */
static void *field(qd_conf *c, const qd_conf_key *k)
{
    return (char *)c + k->offset;
}

static const void *cfield(const qd_conf *c, const qd_conf_key *k)
{
    return (const char *)c + k->offset;
}

/* parse_int - strict decimal int64; returns the end pointer or NULL */
static const char *parse_int(const char *s, int64_t *out)
{
    char *end;

    if (!isdigit((unsigned char)*s) && *s != '-')
        return NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s)
        return NULL;
    *out = v;
    return end;
}

/* parse_scaled - number followed by a unit from |units|; returns 0 or -1 */
static int parse_scaled(const char *s, const char *const *names, const int64_t *mult,
                        int64_t bare_mult, int64_t *out)
{
    int64_t v;
    const char *end = parse_int(s, &v);

    if (end == NULL || v < 0)
        return -1;
    if (*end == '\0') {
        if (v > INT64_MAX / bare_mult)
            return -1;
        *out = v * bare_mult;
        return 0;
    }
    for (size_t i = 0; names[i]; i++) {
        if (strcasecmp(end, names[i]) == 0) {
            if (v > INT64_MAX / mult[i])
                return -1;
            *out = v * mult[i];
            return 0;
        }
    }
    return -1;
}

static const char *const size_units[] = {"b", "k", "kb", "kib", "m", "mb", "mib",
                                         "g", "gb", "gib", NULL};
static const int64_t size_mult[] = {1,       1024,    1024,    1024,    1 << 20,
                                    1 << 20, 1 << 20, 1 << 30, 1 << 30, 1 << 30};
static const char *const dur_units[] = {"ms", "s", "m", "h", "d", "w", NULL};
static const int64_t dur_mult[] = {1, 1000, 60000, 3600000, DAY_MS, 7 * DAY_MS};

/* parse_bool - yes/no words; returns 0 or -1 */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1", NULL};
    static const char *const no[] = {"no", "false", "off", "0", NULL};

    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* parse_addr - "a.b.c.d:port", "[v6]:port" or "*:port" (all IPv4) */
static int parse_addr(const char *s, qd_conf_addr *a, const char **why)
{
    const char *colon;
    size_t hlen;
    int64_t port;
    unsigned char tmp[16];

    memset(a, 0, sizeof(*a));
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            *why = "expected [v6-address]:port";
            return -1;
        }
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= sizeof(a->host)) {
            *why = "bad IPv6 address";
            return -1;
        }
        memcpy(a->host, s + 1, hlen);
        a->family = AF_INET6;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "expected address:port";
            return -1;
        }
        hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen >= sizeof(a->host)) {
            *why = "bad IPv4 address";
            return -1;
        }
        memcpy(a->host, s, hlen);
        if (strcmp(a->host, "*") == 0)
            strcpy(a->host, "0.0.0.0");
        a->family = AF_INET;
        if (strchr(a->host, ':') != NULL) {
            *why = "IPv6 addresses must be written in brackets, [::1]:443";
            return -1;
        }
    }
    if (inet_pton(a->family, a->host, tmp) != 1) {
        *why = a->family == AF_INET ? "bad IPv4 address" : "bad IPv6 address";
        return -1;
    }
    const char *end = parse_int(colon + 1, &port);
    if (end == NULL || *end != '\0' || port < 1 || port > 65535) {
        *why = "port must be a number from 1 to 65535";
        return -1;
    }
    a->port = (uint16_t)port;
    return 0;
}

/*
 * parse_net - "a.b.c.d/len", "v6/len" or a bare address (/32, /128); the
 * bits beyond the prefix must be zero, so that what is written is what is
 * matched (Postfix refuses "10.0.0.1/8" in mynetworks for the same reason)
 */
static int parse_net(const char *s, qd_conf_net *n, char *whybuf, size_t whylen,
                     const char **why)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    int64_t prefix;

    memset(n, 0, sizeof(*n));
    if (hlen == 0 || hlen >= sizeof(host)) {
        *why = "expected an address or ADDRESS/PREFIX";
        return -1;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    n->family = strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
    if (inet_pton(n->family, host, n->addr) != 1) {
        *why = n->family == AF_INET ? "bad IPv4 address" : "bad IPv6 address";
        return -1;
    }
    int max = n->family == AF_INET ? 32 : 128;
    if (slash == NULL) {
        prefix = max;
    } else {
        const char *end = parse_int(slash + 1, &prefix);
        if (end == NULL || *end != '\0' || slash[1] == '-' || prefix < 0 || prefix > max) {
            snprintf(whybuf, whylen, "prefix length must be a number from 0 to %d", max);
            *why = whybuf;
            return -1;
        }
    }
    n->prefix = (uint8_t)prefix;
    for (int bit = (int)prefix; bit < max; bit++) {
        if (n->addr[bit / 8] & (0x80 >> (bit % 8))) {
            uint8_t net[16];
            char text[INET6_ADDRSTRLEN];
            memcpy(net, n->addr, sizeof(net));
            for (int b = (int)prefix; b < max; b++)
                net[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
            inet_ntop(n->family, net, text, sizeof(text));
            snprintf(whybuf, whylen, "address bits set beyond the /%d prefix (the network is %s/%d)",
                     (int)prefix, text, (int)prefix);
            *why = whybuf;
            return -1;
        }
    }
    return 0;
}

/* free_value - release key |k|'s heap storage in |c| */
static void free_value(qd_conf *c, const qd_conf_key *k)
{
    switch (k->type) {
    case QD_CONF_STRING:
    case QD_CONF_PATH: {
        char **p = field(c, k);
        free(*p);
        *p = NULL;
        break;
    }
    case QD_CONF_ADDRS: {
        qd_conf_addrs *l = field(c, k);
        free(l->items);
        l->items = NULL;
        l->count = 0;
        break;
    }
    case QD_CONF_NETS: {
        qd_conf_nets *l = field(c, k);
        free(l->items);
        l->items = NULL;
        l->count = 0;
        break;
    }
    default:
        break;
    }
}

/*
 * set_value - parse |value| for key |id| and store it. On failure returns -1
 * with a reason in |why| (static or in |whybuf|) and leaves |c| unchanged.
 */
static int set_value(qd_conf *c, int id, const char *value, char *whybuf, size_t whylen,
                     const char **why)
{
    const qd_conf_key *k = &keys[id];
    int64_t v = 0;
    bool b;

    if (*value == '\0' && !(k->flags & QD_CONF_F_EMPTY)) {
        *why = "value is empty";
        return -1;
    }
    switch (k->type) {
    case QD_CONF_BOOL:
        if (parse_bool(value, &b) < 0) {
            *why = "expected yes or no";
            return -1;
        }
        *(bool *)field(c, k) = b;
        break;
    case QD_CONF_INT:
    case QD_CONF_SIZE:
    case QD_CONF_DURATION:
        if ((k->flags & QD_CONF_F_AUTO) && strcmp(value, "auto") == 0) {
            *(int64_t *)field(c, k) = 0;
            break;
        }
        if (k->type == QD_CONF_INT) {
            const char *end = parse_int(value, &v);
            if (end == NULL || *end != '\0') {
                *why = (k->flags & QD_CONF_F_AUTO) ? "expected a number or auto"
                                                   : "expected a number";
                return -1;
            }
        } else if (k->type == QD_CONF_SIZE) {
            if (parse_scaled(value, size_units, size_mult, 1, &v) < 0) {
                *why = "expected a size such as 65536, 512KB or 10MB";
                return -1;
            }
        } else if (parse_scaled(value, dur_units, dur_mult, 1000, &v) < 0) {
            *why = "expected a duration such as 500ms, 30s, 5m, 1h or 30d";
            return -1;
        }
        if (v < k->min || v > k->max) {
            if (k->type == QD_CONF_DURATION)
                snprintf(whybuf, whylen, "out of range (%lldms to %lldms)", (long long)k->min,
                         (long long)k->max);
            else
                snprintf(whybuf, whylen, "out of range (%lld to %lld)", (long long)k->min,
                         (long long)k->max);
            *why = whybuf;
            return -1;
        }
        *(int64_t *)field(c, k) = v;
        break;
    case QD_CONF_PATH:
        if (*value != '\0' && *value != '/') {
            *why = "must be an absolute path";
            return -1;
        }
        if (strlen(value) >= PATH_MAX) {
            *why = "path too long";
            return -1;
        }
        /* fall through */
    case QD_CONF_STRING:
        for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
            if (*p < 0x20 || *p == 0x7f) {
                *why = "control character in value";
                return -1;
            }
        }
        if ((k->flags & QD_CONF_F_HINTS) && qd_conf_hints_parse(value, NULL, NULL, why) < 0)
            return -1;
        if ((k->flags & QD_CONF_F_HISTORY) && qd_conf_history_parse(value, NULL, NULL, why) < 0)
            return -1;
        free_value(c, k);
        *(char **)field(c, k) = qd_xstrdup(value);
        break;
    case QD_CONF_ENUM:
        for (int i = 0; k->words[i]; i++) {
            if (strcmp(value, k->words[i]) == 0) {
                *(int64_t *)field(c, k) = i;
                return 0;
            }
        }
        {
            size_t n = (size_t)snprintf(whybuf, whylen, "expected one of");
            for (int i = 0; k->words[i] && n < whylen; i++)
                n += (size_t)snprintf(whybuf + n, whylen - n, "%s %s", i ? "," : "",
                                      k->words[i]);
            *why = whybuf;
        }
        return -1;
    case QD_CONF_ADDRS: {
        qd_conf_addrs l = {qd_xcalloc(QD_CONF_MAX_ADDRS, sizeof(qd_conf_addr)), 0};
        char *copy = qd_xstrdup(value), *save = NULL;
        int rv = 0;

        for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
            const char *reason = NULL;
            if (l.count == QD_CONF_MAX_ADDRS) {
                snprintf(whybuf, whylen, "more than %d addresses", QD_CONF_MAX_ADDRS);
                *why = whybuf;
                rv = -1;
                break;
            }
            if (parse_addr(tok, &l.items[l.count], &reason) < 0) {
                snprintf(whybuf, whylen, "'%.80s': %s", tok, reason);
                *why = whybuf;
                rv = -1;
                break;
            }
            for (size_t i = 0; i < l.count; i++) {
                if (l.items[i].family == l.items[l.count].family &&
                    l.items[i].port == l.items[l.count].port &&
                    strcmp(l.items[i].host, l.items[l.count].host) == 0) {
                    snprintf(whybuf, whylen, "'%.80s' listed twice", tok);
                    *why = whybuf;
                    rv = -1;
                    break;
                }
            }
            if (rv < 0)
                break;
            l.count++;
        }
        free(copy);
        if (rv == 0 && l.count == 0) {
            *why = "no address given";
            rv = -1;
        }
        if (rv < 0) {
            free(l.items);
            return -1;
        }
        free_value(c, k);
        *(qd_conf_addrs *)field(c, k) = l;
        break;
    }
    case QD_CONF_ADDR: {
        qd_conf_addr a;
        const char *reason = NULL;

        memset(&a, 0, sizeof(a)); /* empty (QD_CONF_F_EMPTY): none */
        if (value[strcspn(value, ", \t")] != '\0') {
            *why = "one address only (addr:port or [v6]:port)";
            return -1;
        }
        if (*value != '\0' && parse_addr(value, &a, &reason) < 0) {
            *why = reason;
            return -1;
        }
        *(qd_conf_addr *)field(c, k) = a;
        break;
    }
    case QD_CONF_NETS: {
        qd_conf_nets l = {qd_xcalloc(QD_CONF_MAX_NETS, sizeof(qd_conf_net)), 0};
        char *copy = qd_xstrdup(value), *save = NULL;
        int rv = 0;

        for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
            char reason[160];
            const char *r = NULL;
            if (l.count == QD_CONF_MAX_NETS) {
                snprintf(whybuf, whylen, "more than %d networks", QD_CONF_MAX_NETS);
                *why = whybuf;
                rv = -1;
                break;
            }
            if (parse_net(tok, &l.items[l.count], reason, sizeof(reason), &r) < 0) {
                snprintf(whybuf, whylen, "'%.80s': %s", tok, r);
                *why = whybuf;
                rv = -1;
                break;
            }
            l.count++;
        }
        free(copy);
        if (rv == 0 && l.count == 0) {
            *why = "no network given";
            rv = -1;
        }
        if (rv < 0) {
            free(l.items);
            return -1;
        }
        free_value(c, k);
        *(qd_conf_nets *)field(c, k) = l;
        break;
    }
    }
    return 0;
}

/* set_text - remember the text |value| for key |id| (NULL = default) */
static void set_text(qd_conf *c, int id, const char *value)
{
    free(c->text[id]);
    c->text[id] = value ? qd_xstrdup(value) : NULL;
}

void qd_conf_init(qd_conf *c)
{
    char whybuf[128];
    const char *why = NULL;

    memset(c, 0, sizeof(*c));
    for (int i = 0; i < QD_K_COUNT; i++)
        if (set_value(c, i, keys[i].def, whybuf, sizeof(whybuf), &why) < 0)
            qd_panic("default of %s is invalid: %s", keys[i].name, why);
}

void qd_conf_release(qd_conf *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < QD_K_COUNT; i++) {
        free_value(c, &keys[i]);
        free(c->text[i]);
        c->text[i] = NULL;
    }
    free(c->source);
    c->source = NULL;
}

/* conf_error - append one "name:line: key: reason" line */
static void conf_error(qd_buf *errs, const char *name, int line, const char *key,
                       const char *reason)
{
    if (key)
        qd_buf_printf(errs, "%s:%d: %s: %s\n", name, line, key, reason);
    else
        qd_buf_printf(errs, "%s:%d: %s\n", name, line, reason);
}

/* trim - strip leading and trailing white space in place */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* handle_logical - one complete "key = value" line */
static int handle_logical(qd_conf *c, const char *name, int line, char *text, qd_buf *errs)
{
    char whybuf[256];
    const char *why = NULL;
    char *eq = strchr(text, '=');

    if (eq == NULL) {
        char shown[64];
        snprintf(shown, sizeof(shown), "%.40s", trim(text));
        snprintf(whybuf, sizeof(whybuf), "missing '=' in \"%s\"", shown);
        conf_error(errs, name, line, NULL, whybuf);
        return -1;
    }
    *eq = '\0';
    char *key = trim(text);
    char *value = trim(eq + 1);

    if (*key == '\0') {
        conf_error(errs, name, line, NULL, "missing key before '='");
        return -1;
    }
    for (const char *p = key; *p; p++) {
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_')) {
            char shown[64];
            snprintf(shown, sizeof(shown), "invalid key name \"%.40s\"", key);
            conf_error(errs, name, line, NULL, shown);
            return -1;
        }
    }
    int id = qd_conf_key_find(key);
    if (id < 0) {
        conf_error(errs, name, line, key, "unknown configuration key");
        return -1;
    }
    if (c->line[id] > 0) {
        snprintf(whybuf, sizeof(whybuf), "duplicate key (first set at line %d)", c->line[id]);
        conf_error(errs, name, line, key, whybuf);
        return -1;
    }
    if (set_value(c, id, value, whybuf, sizeof(whybuf), &why) < 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "invalid value \"%.100s\": %s", value, why);
        conf_error(errs, name, line, key, msg);
        c->line[id] = line; /* so a later duplicate is still reported */
        return -1;
    }
    c->line[id] = line;
    set_text(c, id, value);
    return 0;
}

int qd_conf_parse(qd_conf *c, const char *name, const char *text, size_t len, qd_buf *errs)
{
    qd_buf logical;
    int logical_line = 0, errors = 0, lineno = 0;
    size_t pos = 0;

    if (len > QD_CONF_MAX_FILE) {
        conf_error(errs, name, 0, NULL, "file too large");
        return QD_ERR_CONF;
    }
    qd_buf_init(&logical);
    while (pos < len) {
        size_t start = pos;
        while (pos < len && text[pos] != '\n')
            pos++;
        size_t n = pos - start;
        if (pos < len)
            pos++; /* skip '\n' */
        lineno++;
        if (memchr(text + start, '\0', n) != NULL) {
            conf_error(errs, name, lineno, NULL, "NUL byte in line");
            errors++;
            continue;
        }
        char *raw = qd_xstrndup(text + start, n);
        char *t = trim(raw);
        bool is_cont = (n > 0 && (raw[0] == ' ' || raw[0] == '\t'));

        if (*t == '\0' || *t == '#') {
            /* blank or comment: ends nothing, Postfix skips them */
        } else if (is_cont) {
            if (logical_line == 0) {
                conf_error(errs, name, lineno, NULL,
                           "continuation line (starts with white space) without a key before it");
                errors++;
            } else {
                qd_buf_append(&logical, " ", 1);
                qd_buf_append(&logical, t, strlen(t));
            }
        } else {
            if (logical_line > 0 && handle_logical(c, name, logical_line, logical.data, errs) < 0)
                errors++;
            qd_buf_reset(&logical);
            qd_buf_append(&logical, t, strlen(t));
            logical_line = lineno;
        }
        free(raw);
    }
    if (logical_line > 0 && handle_logical(c, name, logical_line, logical.data, errs) < 0)
        errors++;
    qd_buf_release(&logical);
    free(c->source);
    c->source = qd_xstrdup(name);
    return errors ? QD_ERR_CONF : 0;
}

int qd_conf_load(qd_conf *c, const char *path, qd_buf *errs)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    qd_buf text;
    char chunk[8192];
    ssize_t n;
    int rv;

    if (fd < 0) {
        qd_buf_printf(errs, "%s: cannot open: %s\n", path, strerror(errno));
        return QD_ERR_IO;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        qd_buf_printf(errs, "%s: is a directory\n", path);
        close(fd);
        return QD_ERR_IO;
    }
    qd_buf_init(&text);
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            qd_buf_printf(errs, "%s: read error: %s\n", path, strerror(errno));
            close(fd);
            qd_buf_release(&text);
            return QD_ERR_IO;
        }
        qd_buf_append(&text, chunk, (size_t)n);
        if (text.len > QD_CONF_MAX_FILE)
            break;
    }
    close(fd);
    rv = qd_conf_parse(c, path, qd_buf_str(&text), text.len, errs);
    qd_buf_release(&text);
    return rv;
}

int qd_conf_set(qd_conf *c, const char *key, const char *value, const char *origin,
                qd_buf *errs)
{
    char whybuf[256];
    const char *why = NULL;
    int id = qd_conf_key_find(key);

    if (id < 0) {
        qd_buf_printf(errs, "%s: %s: unknown configuration key\n", origin, key);
        return QD_ERR_NOTFOUND;
    }
    if (set_value(c, id, value, whybuf, sizeof(whybuf), &why) < 0) {
        qd_buf_printf(errs, "%s: %s: invalid value \"%.100s\": %s\n", origin, key, value, why);
        return QD_ERR_INVAL;
    }
    set_text(c, id, value);
    if (c->line[id] == 0)
        c->line[id] = -1; /* set, but not from a file line */
    return 0;
}

const char *qd_conf_value_text(const qd_conf *c, qd_conf_key_id id)
{
    return c->text[id] ? c->text[id] : keys[id].def;
}

void qd_conf_dump(const qd_conf *c, int mode, qd_buf *out)
{
    for (int i = 0; i < QD_K_COUNT; i++) {
        const char *v;
        if (mode == QD_CONF_DUMP_DEFAULTS)
            v = keys[i].def;
        else if (mode == QD_CONF_DUMP_CHANGED && c->text[i] == NULL)
            continue;
        else
            v = qd_conf_value_text(c, (qd_conf_key_id)i);
        qd_buf_printf(out, "%s = %s\n", keys[i].name, v);
    }
}

/* same_value - compare key |k| in |a| and |b| */
static bool same_value(const qd_conf *a, const qd_conf *b, const qd_conf_key *k)
{
    switch (k->type) {
    case QD_CONF_BOOL:
        return *(const bool *)cfield(a, k) == *(const bool *)cfield(b, k);
    case QD_CONF_STRING:
    case QD_CONF_PATH:
        return strcmp(*(char *const *)cfield(a, k), *(char *const *)cfield(b, k)) == 0;
    case QD_CONF_ADDRS: {
        const qd_conf_addrs *x = cfield(a, k), *y = cfield(b, k);
        if (x->count != y->count)
            return false;
        for (size_t i = 0; i < x->count; i++)
            if (x->items[i].port != y->items[i].port ||
                strcmp(x->items[i].host, y->items[i].host) != 0)
                return false;
        return true;
    }
    case QD_CONF_ADDR: {
        const qd_conf_addr *x = cfield(a, k), *y = cfield(b, k);
        return x->family == y->family && x->port == y->port && strcmp(x->host, y->host) == 0;
    }
    case QD_CONF_NETS: {
        const qd_conf_nets *x = cfield(a, k), *y = cfield(b, k);
        if (x->count != y->count)
            return false;
        for (size_t i = 0; i < x->count; i++)
            if (x->items[i].family != y->items[i].family ||
                x->items[i].prefix != y->items[i].prefix ||
                memcmp(x->items[i].addr, y->items[i].addr, sizeof(x->items[i].addr)) != 0)
                return false;
        return true;
    }
    default:
        return *(const int64_t *)cfield(a, k) == *(const int64_t *)cfield(b, k);
    }
}

int qd_conf_diff(const qd_conf *a, const qd_conf *b, bool only_restart, qd_buf *names)
{
    int n = 0;

    for (int i = 0; i < QD_K_COUNT; i++) {
        if (only_restart && (keys[i].flags & QD_CONF_F_RELOAD))
            continue;
        if (!same_value(a, b, &keys[i])) {
            qd_buf_printf(names, "%s%s", n ? " " : "", keys[i].name);
            n++;
        }
    }
    return n;
}

const char *qd_conf_addr_text(const qd_conf_addr *a, char *buf, size_t len)
{
    if (a->family == 0)
        snprintf(buf, len, "%s", "");
    else if (a->family == AF_INET6)
        snprintf(buf, len, "[%s]:%u", a->host, a->port);
    else
        snprintf(buf, len, "%s:%u", a->host, a->port);
    return buf;
}

bool qd_conf_nets_match(const qd_conf_nets *nets, const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *addr;
    int family;

    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        addr = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        family = AF_INET6;
        if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
            family = AF_INET;
            addr += sizeof(mapped);
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < nets->count; i++) {
        const qd_conf_net *n = &nets->items[i];
        unsigned full = n->prefix / 8, rest = n->prefix % 8;

        if (n->family != family || memcmp(n->addr, addr, full) != 0)
            continue;
        if (rest == 0 || ((n->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0)
            return true;
    }
    return false;
}

int qd_conf_workers(const qd_conf *c)
{
    if (c->workers > 0)
        return (int)c->workers;
#ifdef HAVE_SCHED_GETAFFINITY
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int qd_conf_history_parse(const char *value, qd_history *mode, uint32_t *n, const char **why)
{
    static const char *const words[] = {"all", "errors", "sample:", "none"};
    qd_history m = QD_HISTORY_ALL;
    unsigned long v = 0;

    for (m = QD_HISTORY_ALL; m <= QD_HISTORY_NONE; m++)
        if (m == QD_HISTORY_SAMPLE ? strncmp(value, words[m], 7) == 0 : strcmp(value, words[m]) == 0)
            break;
    if (m > QD_HISTORY_NONE) {
        *why = "expected all, errors, sample:N or none";
        return -1;
    }
    if (m == QD_HISTORY_SAMPLE) {
        char *end;
        errno = 0;
        v = strtoul(value + 7, &end, 10);
        if (!isdigit((unsigned char)value[7]) || *end != '\0' || errno != 0 || v < 1 ||
            v > 1000000) {
            *why = "sample:N needs N from 1 to 1000000 (one request in N gets a row)";
            return -1;
        }
    }
    if (mode != NULL)
        *mode = m;
    if (n != NULL)
        *n = (uint32_t)v;
    return 0;
}

int qd_conf_hints_parse(const char *value, void (*cb)(void *, const char *, const char *),
                        void *arg, const char **why)
{
    char *copy = qd_xstrdup(value), *next = copy;
    int rv = 0;

    if (*trim(copy) == '\0')
        next = NULL; /* empty: no hints */
    while (next != NULL) {
        char *e = next, *bar = strchr(e, '|'), *path, *link;

        if (bar != NULL)
            *bar = '\0';
        next = bar != NULL ? bar + 1 : NULL;
        path = trim(e);

        if (*path == '\0') {
            *why = "empty entry between '|'";
            rv = -1;
            break;
        }
        if (*path != '/') {
            *why = "each entry must start with a path beginning with '/'";
            rv = -1;
            break;
        }
        link = path + strcspn(path, " \t");
        if (*link == '\0') {
            *why = "a path without Link headers";
            rv = -1;
            break;
        }
        *link++ = '\0';
        link = trim(link);
        if (*link != '<' || strchr(link, '>') == NULL) {
            *why = "Link values look like </style.css>; rel=preload; as=style";
            rv = -1;
            break;
        }
        if (cb != NULL)
            cb(arg, path, link);
    }
    free(copy);
    return rv;
}

int qd_conf_log_level(const qd_conf *c)
{
    return QD_LOG_ERR + (int)c->log_level; /* the ENUM words are in syslog order */
}

socklen_t qd_conf_addr_sockaddr(const qd_conf_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        inet_pton(AF_INET, a->host, &sin->sin_addr);
        return sizeof(*sin);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(a->port);
    inet_pton(AF_INET6, a->host, &sin6->sin6_addr);
    return sizeof(*sin6);
}
