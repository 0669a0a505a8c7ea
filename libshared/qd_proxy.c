/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_proxy - the proxy table: upstream groups, servers and routes
 * SYNOPSIS
 *	qd_proxy_init(), qd_proxy_release(), qd_proxy_parse(), qd_proxy_load(),
 *	qd_proxy_match(), qd_proxy_dump()
 * DESCRIPTION
 *	Parses the file named by quicd.conf's proxy_table (format in
 *	qd_proxy.h and quicd.conf(5)) into groups of servers and routes. The
 *	text is cut into records first (continuation lines joined, comments
 *	dropped); groups are read before servers and routes, so a record may
 *	name a group defined further down. Routes are kept most specific
 *	first, so qd_proxy_match takes the first that matches.
 *
 *	The table owns its arrays; nothing points into the text.
 * DIAGNOSTICS
 *	Every error is one line "file:line: word: reason" in |errs|; parsing
 *	goes on so that all are reported.
 */
#include "config.h"

/* system */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* local */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_proxy.h"

#define MAX_WORDS 64
#define MAX_TABLE (4 * 1024 * 1024) /* bytes of table file read */

/* One record: its words (pointers into a copy of the line) and where it began. */
typedef struct record {
    char *text;
    char *word[MAX_WORDS];
    int nwords;
    int line;
    bool nul; /* the text had a NUL byte */
} record;

typedef struct parser {
    qd_proxy *p;
    const char *name;
    struct {
        int line;
        char *text;
    } *err; /* reported in line order at the end */
    int nerrs;
} parser;

static const char *const policy_name[] = {"round_robin", "least_conn", "hash"};

static void err(parser *ps, int line, const char *word, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void err(parser *ps, int line, const char *word, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    qd_buf b;
    qd_buf_init(&b);
    qd_buf_printf(&b, "%s:%d: %.80s: %s\n", ps->name, line, word, why);
    ps->err = qd_xrealloc(ps->err, (size_t)(ps->nerrs + 1) * sizeof(*ps->err));
    ps->err[ps->nerrs].line = line;
    ps->err[ps->nerrs].text = qd_xstrdup(qd_buf_str(&b));
    ps->nerrs++;
    qd_buf_release(&b);
}

/* flush_errors - the errors into |errs| in line order (stable), and free them */
static void flush_errors(parser *ps, qd_buf *errs)
{
    for (int i = 1; i < ps->nerrs; i++)
        for (int j = i; j > 0 && ps->err[j].line < ps->err[j - 1].line; j--) {
            int l = ps->err[j].line;
            char *t = ps->err[j].text;
            ps->err[j] = ps->err[j - 1];
            ps->err[j - 1].line = l;
            ps->err[j - 1].text = t;
        }
    for (int i = 0; i < ps->nerrs; i++) {
        qd_buf_append(errs, ps->err[i].text, strlen(ps->err[i].text));
        free(ps->err[i].text);
    }
    free(ps->err);
}

void qd_proxy_init(qd_proxy *p)
{
    memset(p, 0, sizeof(*p));
}

void qd_proxy_release(qd_proxy *p)
{
    free(p->trust);
    for (size_t i = 0; i < p->ngroups; i++)
        free(p->groups[i].servers);
    free(p->groups);
    free(p->routes);
    qd_proxy_init(p);
}

/* records - cut |text| into records: comments and blank lines dropped, continuations joined */
static record *records(const char *text, size_t len, size_t *count)
{
    record *r = NULL;
    size_t n = 0, cap = 0;
    int line = 0;

    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *l = text + pos;
        size_t ll = end - pos;
        line++;
        pos = end + 1;
        size_t k = 0;
        while (k < ll && (l[k] == ' ' || l[k] == '\t' || l[k] == '\r'))
            k++;
        if (k == ll || l[k] == '#')
            continue; /* blank or comment: ends no record, continues none */
        bool cont = k > 0 && n > 0;
        bool nul = memchr(l + k, '\0', ll - k) != NULL;
        if (!cont) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                r = qd_xrealloc(r, cap * sizeof(*r));
            }
            r[n].text = qd_xstrndup(l + k, ll - k);
            r[n].line = line;
            r[n].nwords = 0;
            r[n].nul = false;
            n++;
        } else {
            record *last = &r[n - 1];
            size_t old = strlen(last->text);
            last->text = qd_xrealloc(last->text, old + 1 + (ll - k) + 1);
            last->text[old] = ' ';
            memcpy(last->text + old + 1, l + k, ll - k);
            last->text[old + 1 + ll - k] = '\0';
        }
        r[n - 1].nul |= nul;
    }
    for (size_t i = 0; i < n; i++) {
        char *s = r[i].text, *save = NULL;
        for (char *w = strtok_r(s, " \t\r", &save); w != NULL; w = strtok_r(NULL, " \t\r", &save))
            if (r[i].nwords < MAX_WORDS)
                r[i].word[r[i].nwords++] = w;
            else
                r[i].nwords = MAX_WORDS + 1; /* too many: reported by the caller */
    }
    *count = n;
    return r;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= QD_PROXY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

/* token_ok - an HTTP field name (RFC 9110 tchar), lowercase */
static bool token_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= QD_PROXY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
              strchr("!#$%&'*+-.^_`|~", s[i]) != NULL))
            return false;
    return true;
}

/* host_ok - a DNS name or a numeric IPv4 address (letters, digits, '-', '.') */
static bool host_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= QD_PROXY_HOST_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

static int find_group(const qd_proxy *p, const char *name)
{
    for (size_t i = 0; i < p->ngroups; i++)
        if (strcmp(p->groups[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* duration_ms - "500ms", "2s", "1m" or bare seconds, in [min, max] ms; or -1 */
static long long duration_ms(const char *s, long long min, long long max)
{
    char *end;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || v > 86400000)
        return -1;
    if (strcmp(end, "ms") == 0)
        ;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        v *= 1000;
    else if (strcmp(end, "m") == 0)
        v *= 60000;
    else
        return -1;
    return v < min || v > max ? -1 : v;
}

/* number - |s| as an integer in [min, max], or -1 */
static long long number(const char *s, long long min, long long max)
{
    char *end;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    return v;
}

static void parse_group(parser *ps, const record *r)
{
    qd_proxy *p = ps->p;
    qd_proxy_group g;
    bool hash_given = false;
    long long v;

    memset(&g, 0, sizeof(g));
    g.line = r->line;
    g.check_interval_ms = 2000;
    g.check_timeout_ms = 1000;
    g.rise = 2;
    g.fall = 3;
    g.expect = 2;
    g.connect_timeout_ms = 5000;
    g.read_timeout_ms = 60000;
    g.send_timeout_ms = 60000;
    g.idle_timeout_ms = 30000;
    g.queue = 64;
    g.retries = 2;
    g.fail_timeout_ms = 10000;
    if (r->nwords < 2) {
        err(ps, r->line, "group", "a name is missing");
        return;
    }
    const char *name = r->word[1];
    if (!name_ok(name) || strcmp(name, "local") == 0) {
        err(ps, r->line, name, "not a group name (letters, digits, '_', '-', '.'; not \"local\")");
        return;
    }
    if (find_group(p, name) >= 0) {
        err(ps, r->line, name, "group defined twice");
        return;
    }
    snprintf(g.name, sizeof(g.name), "%s", name);
    for (int i = 2; i < r->nwords; i++) {
        const char *w = r->word[i];
        if (strncmp(w, "policy=", 7) == 0) {
            int k = 0;
            while (k < 3 && strcmp(w + 7, policy_name[k]) != 0)
                k++;
            if (k == 3)
                err(ps, r->line, w, "policy is round_robin, least_conn or hash");
            else
                g.policy = (qd_proxy_policy)k;
        } else if (strncmp(w, "hash=", 5) == 0) {
            hash_given = true;
            if (strcmp(w + 5, "client") == 0)
                g.hash_header[0] = '\0';
            else if (strncmp(w + 5, "header:", 7) == 0 && token_ok(w + 12))
                snprintf(g.hash_header, sizeof(g.hash_header), "%s", w + 12);
            else
                err(ps, r->line, w, "hash is client or header:FIELD (a lowercase field name)");
        } else if (strncmp(w, "check=", 6) == 0) {
            const char *c = w + 6;
            bool ok = c[0] == '/' && strlen(c) < sizeof(g.check_path);
            for (; ok && *c; c++)
                ok = (unsigned char)*c > 0x20 && *c != 0x7f && *c != '#';
            if (!ok)
                err(ps, r->line, w, "check is a path starting with '/', without spaces");
            else
                snprintf(g.check_path, sizeof(g.check_path), "%s", w + 6);
        } else if (strncmp(w, "check_interval=", 15) == 0) {
            if ((v = duration_ms(w + 15, 100, 3600000)) < 0)
                err(ps, r->line, w, "check_interval is 100ms to 1h");
            else
                g.check_interval_ms = (uint32_t)v;
        } else if (strncmp(w, "check_timeout=", 14) == 0) {
            if ((v = duration_ms(w + 14, 50, 60000)) < 0)
                err(ps, r->line, w, "check_timeout is 50ms to 60s");
            else
                g.check_timeout_ms = (uint32_t)v;
        } else if (strncmp(w, "rise=", 5) == 0) {
            if ((v = number(w + 5, 1, 100)) < 0)
                err(ps, r->line, w, "rise is 1-100");
            else
                g.rise = (uint32_t)v;
        } else if (strncmp(w, "fall=", 5) == 0) {
            if ((v = number(w + 5, 1, 100)) < 0)
                err(ps, r->line, w, "fall is 1-100");
            else
                g.fall = (uint32_t)v;
        } else if (strncmp(w, "expect=", 7) == 0) {
            const char *e = w + 7;
            if (e[0] >= '2' && e[0] <= '5' && strcmp(e + 1, "xx") == 0)
                g.expect = (uint32_t)(e[0] - '0');
            else if ((v = number(e, 200, 599)) >= 0)
                g.expect = (uint32_t)v;
            else
                err(ps, r->line, w, "expect is a status 200-599 or a class 2xx-5xx");
        } else if (strncmp(w, "connect_timeout=", 16) == 0) {
            if ((v = duration_ms(w + 16, 10, 600000)) < 0)
                err(ps, r->line, w, "connect_timeout is 10ms to 10m");
            else
                g.connect_timeout_ms = (uint32_t)v;
        } else if (strncmp(w, "read_timeout=", 13) == 0) {
            if ((v = duration_ms(w + 13, 10, 86400000)) < 0)
                err(ps, r->line, w, "read_timeout is 10ms to 1d");
            else
                g.read_timeout_ms = (uint32_t)v;
        } else if (strncmp(w, "send_timeout=", 13) == 0) {
            if ((v = duration_ms(w + 13, 10, 86400000)) < 0)
                err(ps, r->line, w, "send_timeout is 10ms to 1d");
            else
                g.send_timeout_ms = (uint32_t)v;
        } else if (strncmp(w, "idle_timeout=", 13) == 0) {
            if ((v = duration_ms(w + 13, 0, 3600000)) < 0)
                err(ps, r->line, w, "idle_timeout is 0 (no pool) to 1h");
            else
                g.idle_timeout_ms = (uint32_t)v;
        } else if (strncmp(w, "fail_timeout=", 13) == 0) {
            if ((v = duration_ms(w + 13, 100, 3600000)) < 0)
                err(ps, r->line, w, "fail_timeout is 100ms to 1h");
            else
                g.fail_timeout_ms = (uint32_t)v;
        } else if (strncmp(w, "queue=", 6) == 0) {
            if ((v = number(w + 6, 0, 100000)) < 0)
                err(ps, r->line, w, "queue is 0-100000");
            else
                g.queue = (uint32_t)v;
        } else if (strncmp(w, "retries=", 8) == 0) {
            if ((v = number(w + 8, 0, 10)) < 0)
                err(ps, r->line, w, "retries is 0-10");
            else
                g.retries = (uint32_t)v;
        } else if (strncmp(w, "fail_5xx=", 9) == 0) {
            if (strcmp(w + 9, "yes") == 0 || strcmp(w + 9, "no") == 0)
                g.fail_5xx = w[9] == 'y';
            else
                err(ps, r->line, w, "fail_5xx is yes or no");
        } else {
            err(ps, r->line, w,
                "unknown group option (policy=, hash=, check=, check_interval=, check_timeout=, "
                "rise=, fall=, expect=, connect_timeout=, read_timeout=, send_timeout=, "
                "idle_timeout=, fail_timeout=, queue=, retries=, fail_5xx=)");
        }
    }
    if (hash_given && g.policy != QD_PROXY_HASH)
        err(ps, r->line, name, "hash= needs policy=hash");
    if (p->ngroups == QD_PROXY_MAX_GROUPS) {
        err(ps, r->line, name, "more than %d groups", QD_PROXY_MAX_GROUPS);
        return;
    }
    p->groups = qd_xrealloc(p->groups, (p->ngroups + 1) * sizeof(*p->groups));
    p->groups[p->ngroups++] = g;
}

/* parse_address - host:port, [v6]:port or unix:/path into |s|; the reason, or NULL */
static const char *parse_address(const char *a, qd_proxy_server *s)
{
    if (strncmp(a, "unix:", 5) == 0) {
        if (a[5] != '/')
            return "a unix: address is an absolute path";
        if (strlen(a + 5) >= sizeof(s->unix_path))
            return "the socket path is too long";
        snprintf(s->unix_path, sizeof(s->unix_path), "%s", a + 5);
        return NULL;
    }
    const char *colon;
    char host[QD_PROXY_HOST_MAX];
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        struct in6_addr in6;
        if (close == NULL || close[1] != ':')
            return "want [v6]:port";
        size_t hl = (size_t)(close - a - 1);
        if (hl == 0 || hl >= sizeof(host))
            return "not an IPv6 address";
        memcpy(host, a + 1, hl);
        host[hl] = '\0';
        if (inet_pton(AF_INET6, host, &in6) != 1)
            return "not an IPv6 address";
        colon = close + 1;
    } else {
        colon = strrchr(a, ':');
        if (colon == NULL || colon == a)
            return "want host:port, [v6]:port or unix:/path";
        size_t hl = (size_t)(colon - a);
        if (hl >= sizeof(host))
            return "the host name is too long";
        memcpy(host, a, hl);
        host[hl] = '\0';
        if (!host_ok(host))
            return "not a host name or IPv4 address";
        for (size_t i = 0; i < hl; i++)
            host[i] = (char)tolower((unsigned char)host[i]);
    }
    long long port = number(colon + 1, 1, 65535);
    if (port < 0)
        return "the port is 1-65535";
    snprintf(s->host, sizeof(s->host), "%s", host);
    s->port = (uint16_t)port;
    return NULL;
}

static bool same_server(const qd_proxy_server *a, const qd_proxy_server *b)
{
    return strcmp(a->host, b->host) == 0 && a->port == b->port &&
           strcmp(a->unix_path, b->unix_path) == 0 && a->tls == b->tls;
}

void qd_proxy_server_name(const qd_proxy_server *s, char *out, size_t cap)
{
    const char *scheme = s->tls ? "https://" : "";

    if (s->unix_path[0])
        snprintf(out, cap, "unix:%s", s->unix_path);
    else if (strchr(s->host, ':') != NULL)
        snprintf(out, cap, "%s[%s]:%u", scheme, s->host, s->port);
    else
        snprintf(out, cap, "%s%s:%u", scheme, s->host, s->port);
}

static void parse_server(parser *ps, const record *r)
{
    qd_proxy *p = ps->p;
    qd_proxy_server s;
    const char *why;

    memset(&s, 0, sizeof(s));
    s.weight = 1;
    s.line = r->line;
    if (r->nwords < 3) {
        err(ps, r->line, "server", "want: server GROUP ADDRESS [options]");
        return;
    }
    int gi = find_group(p, r->word[1]);
    if (gi < 0) {
        err(ps, r->line, r->word[1], "no such group");
        return;
    }
    const char *addr = r->word[2];
    if (strncmp(addr, "https://", 8) == 0) {
        s.tls = true;
        addr += 8;
    }
    if ((why = parse_address(addr, &s)) != NULL) {
        err(ps, r->line, r->word[2], "%s", why);
        return;
    }
    if (s.tls && s.unix_path[0]) {
        err(ps, r->line, r->word[2], "TLS to a Unix socket is not supported");
        return;
    }
    for (int i = 3; i < r->nwords; i++) {
        const char *w = r->word[i];
        long long v;
        if (strncmp(w, "weight=", 7) == 0) {
            if ((v = number(w + 7, 1, QD_PROXY_MAX_WEIGHT)) < 0)
                err(ps, r->line, w, "weight is 1-%d", QD_PROXY_MAX_WEIGHT);
            else
                s.weight = (uint32_t)v;
        } else if (strncmp(w, "max_conns=", 10) == 0) {
            if ((v = number(w + 10, 0, 1000000)) < 0)
                err(ps, r->line, w, "max_conns is 0 (no limit) to 1000000");
            else
                s.max_conns = (uint32_t)v;
        } else if (strcmp(w, "backup") == 0) {
            s.backup = true;
        } else if (strncmp(w, "sni=", 4) == 0 && s.tls) {
            if (!host_ok(w + 4) || strlen(w + 4) >= sizeof(s.sni))
                err(ps, r->line, w, "sni is a host name");
            else
                snprintf(s.sni, sizeof(s.sni), "%s", w + 4);
        } else if (strncmp(w, "verify=", 7) == 0 && s.tls) {
            if (strcmp(w + 7, "yes") == 0 || strcmp(w + 7, "no") == 0)
                s.no_verify = w[7] == 'n';
            else
                err(ps, r->line, w, "verify is yes or no");
        } else {
            err(ps, r->line, w,
                s.tls ? "unknown server option (weight=, max_conns=, backup, sni=, verify=)"
                      : "unknown server option (weight=, max_conns=, backup; sni= and verify= "
                        "for https:// servers)");
        }
    }
    qd_proxy_group *g = &p->groups[gi];
    for (size_t i = 0; i < g->nservers; i++)
        if (same_server(&g->servers[i], &s)) {
            err(ps, r->line, r->word[2], "already a server of group %s (line %d)", g->name,
                g->servers[i].line);
            return;
        }
    if (g->nservers == QD_PROXY_MAX_SERVERS) {
        err(ps, r->line, r->word[2], "more than %d servers in group %s", QD_PROXY_MAX_SERVERS,
            g->name);
        return;
    }
    g->servers = qd_xrealloc(g->servers, (g->nservers + 1) * sizeof(*g->servers));
    g->servers[g->nservers++] = s;
}

static void parse_route(parser *ps, const record *r)
{
    qd_proxy *p = ps->p;
    qd_proxy_route rt;

    memset(&rt, 0, sizeof(rt));
    rt.line = r->line;
    if (r->nwords < 3 || r->nwords > 4) {
        err(ps, r->line, "route", "want: route HOST/PREFIX GROUP|local [strip]");
        return;
    }
    const char *hp = r->word[1], *slash = strchr(hp, '/');
    size_t hl = slash ? (size_t)(slash - hp) : 0;
    if (slash == NULL || hl == 0 || hl >= sizeof(rt.host)) {
        err(ps, r->line, hp, "want HOST/PREFIX: a host name or '*', then a path prefix");
        return;
    }
    memcpy(rt.host, hp, hl);
    rt.host[hl] = '\0';
    for (size_t i = 0; i < hl; i++)
        rt.host[i] = (char)tolower((unsigned char)rt.host[i]);
    if (strcmp(rt.host, "*") != 0 && !host_ok(rt.host)) {
        err(ps, r->line, hp, "not a host name, IPv4 address or '*'");
        return;
    }
    if (strlen(slash) >= sizeof(rt.prefix)) {
        err(ps, r->line, hp, "the prefix is too long");
        return;
    }
    for (const char *c = slash; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '?' || *c == '#') {
            err(ps, r->line, hp, "the prefix has a space, control character, '?' or '#'");
            return;
        }
    snprintf(rt.prefix, sizeof(rt.prefix), "%s", slash);
    if (strcmp(r->word[2], "local") == 0) {
        rt.group = -1;
    } else if ((rt.group = find_group(p, r->word[2])) < 0) {
        err(ps, r->line, r->word[2], "no such group (or \"local\")");
        return;
    }
    if (r->nwords == 4) {
        if (strcmp(r->word[3], "strip") != 0) {
            err(ps, r->line, r->word[3], "unknown route option (strip)");
            return;
        }
        if (rt.group < 0) {
            err(ps, r->line, r->word[3], "a local route has nothing to strip for");
            return;
        }
        rt.strip = true;
    }
    for (size_t i = 0; i < p->nroutes; i++)
        if (strcmp(p->routes[i].host, rt.host) == 0 && strcmp(p->routes[i].prefix, rt.prefix) == 0) {
            err(ps, r->line, hp, "route defined twice (line %d)", p->routes[i].line);
            return;
        }
    if (p->nroutes == QD_PROXY_MAX_ROUTES) {
        err(ps, r->line, hp, "more than %d routes", QD_PROXY_MAX_ROUTES);
        return;
    }
    p->routes = qd_xrealloc(p->routes, (p->nroutes + 1) * sizeof(*p->routes));
    p->routes[p->nroutes++] = rt;
}

/* before - route |a| is tried before |b|: a named host, then the longer prefix */
static bool before(const qd_proxy_route *a, const qd_proxy_route *b)
{
    bool aw = strcmp(a->host, "*") == 0, bw = strcmp(b->host, "*") == 0;

    if (aw != bw)
        return !aw;
    return strlen(a->prefix) > strlen(b->prefix);
}

/* parse_net - "ADDRESS[/BITS]" into |n|; false if it is not one */
static bool parse_net(const char *w, qd_proxy_net *n)
{
    char addr[64];
    const char *slash = strchr(w, '/');
    size_t alen = slash != NULL ? (size_t)(slash - w) : strlen(w);
    long long bits;

    if (alen == 0 || alen >= sizeof(addr))
        return false;
    memcpy(addr, w, alen);
    addr[alen] = '\0';
    memset(n, 0, sizeof(*n));
    if (inet_pton(AF_INET, addr, n->addr) == 1)
        n->family = AF_INET;
    else if (inet_pton(AF_INET6, addr, n->addr) == 1)
        n->family = AF_INET6;
    else
        return false;
    unsigned max = n->family == AF_INET ? 32 : 128;
    if (slash == NULL)
        bits = max;
    else if ((bits = number(slash + 1, 0, max)) < 0)
        return false;
    n->bits = (unsigned)bits;
    /* host bits must be zero: 10.1.2.3/8 is a mistake, not a network */
    for (unsigned b = n->bits; b < max; b++)
        if (n->addr[b / 8] & (0x80 >> (b % 8)))
            return false;
    return true;
}

static void parse_trust(parser *ps, const record *r)
{
    qd_proxy *p = ps->p;

    if (r->nwords < 2) {
        err(ps, r->line, "trust", "want: trust ADDRESS[/BITS]...");
        return;
    }
    for (int i = 1; i < r->nwords; i++) {
        qd_proxy_net n;
        if (!parse_net(r->word[i], &n)) {
            err(ps, r->line, r->word[i], "not an address or network (192.0.2.0/24, 2001:db8::/32)");
            continue;
        }
        if (p->ntrust == QD_PROXY_MAX_TRUST) {
            err(ps, r->line, r->word[i], "more than %d trusted networks", QD_PROXY_MAX_TRUST);
            return;
        }
        p->trust = qd_xrealloc(p->trust, (p->ntrust + 1) * sizeof(*p->trust));
        p->trust[p->ntrust++] = n;
    }
}

bool qd_proxy_trusted(const qd_proxy *p, const char *ip)
{
    uint8_t a[16];
    int family;

    if (inet_pton(AF_INET, ip, a) == 1) {
        family = AF_INET;
    } else if (inet_pton(AF_INET6, ip, a) == 1) {
        family = AF_INET6;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) {
            memmove(a, a + 12, 4);
            family = AF_INET;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < p->ntrust; i++) {
        const qd_proxy_net *n = &p->trust[i];
        if (n->family != family)
            continue;
        unsigned full = n->bits / 8, rest = n->bits % 8;
        if (memcmp(a, n->addr, full) == 0 &&
            (rest == 0 || ((a[full] ^ n->addr[full]) & (0xff00 >> rest)) == 0))
            return true;
    }
    return false;
}

int qd_proxy_parse(qd_proxy *p, const char *name, const char *text, size_t len, qd_buf *errs)
{
    parser ps = {.p = p, .name = name};
    size_t n;
    record *r = records(text, len, &n);

    for (size_t i = 0; i < n; i++) {
        if (r[i].nul || r[i].nwords == 0) {
            err(&ps, r[i].line, "record", "has a NUL byte");
            r[i].nwords = MAX_WORDS + 1; /* skipped below */
        } else if (r[i].nwords > MAX_WORDS)
            err(&ps, r[i].line, r[i].word[0], "more than %d words", MAX_WORDS);
        else if (strcmp(r[i].word[0], "group") == 0)
            parse_group(&ps, &r[i]);
        else if (strcmp(r[i].word[0], "trust") == 0)
            parse_trust(&ps, &r[i]);
        else if (strcmp(r[i].word[0], "server") != 0 && strcmp(r[i].word[0], "route") != 0)
            err(&ps, r[i].line, r[i].word[0], "unknown record (group, server, route, trust)");
    }
    for (size_t i = 0; i < n; i++)
        if (r[i].nwords <= MAX_WORDS && strcmp(r[i].word[0], "server") == 0)
            parse_server(&ps, &r[i]);
    for (size_t i = 0; i < n; i++)
        if (r[i].nwords <= MAX_WORDS && strcmp(r[i].word[0], "route") == 0)
            parse_route(&ps, &r[i]);
    for (size_t i = 0; i < p->ngroups; i++)
        if (p->groups[i].nservers == 0)
            err(&ps, p->groups[i].line, p->groups[i].name, "group has no server");
    /* most specific first; stable (insertion sort), so equal ones keep the file's order */
    for (size_t i = 1; i < p->nroutes; i++) {
        qd_proxy_route t = p->routes[i];
        size_t j = i;
        while (j > 0 && before(&t, &p->routes[j - 1])) {
            p->routes[j] = p->routes[j - 1];
            j--;
        }
        p->routes[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        free(r[i].text);
    free(r);
    int nerrs = ps.nerrs;
    flush_errors(&ps, errs);
    return nerrs == 0 ? 0 : QD_ERR_CONF;
}

int qd_proxy_load(qd_proxy *p, const char *path, qd_buf *errs)
{
    FILE *f = fopen(path, "r");
    qd_buf text;
    char buf[8192];
    size_t n;
    int rv;

    if (f == NULL) {
        qd_buf_printf(errs, "%s: cannot read: %s\n", path, strerror(errno));
        return QD_ERR_IO;
    }
    qd_buf_init(&text);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0 && text.len <= MAX_TABLE)
        qd_buf_append(&text, buf, n);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || text.len > MAX_TABLE) {
        qd_buf_printf(errs, "%s: %s\n", path, bad ? "read error" : "larger than 4 MiB");
        qd_buf_release(&text);
        return QD_ERR_IO;
    }
    rv = qd_proxy_parse(p, path, text.data ? text.data : "", text.len, errs);
    qd_buf_release(&text);
    return rv;
}

/* host_of - |authority| without its port, lowercase, into |out| */
static void host_of(const char *authority, char *out, size_t cap)
{
    size_t n = 0;
    const char *a = authority ? authority : "";
    const char *end = a[0] == '[' ? strchr(a, ']') : strrchr(a, ':');

    if (a[0] == '[' && end != NULL)
        end++; /* keep the brackets of an IPv6 literal */
    if (end == NULL)
        end = a + strlen(a);
    for (const char *c = a; c < end && n + 1 < cap; c++)
        out[n++] = (char)tolower((unsigned char)*c);
    out[n] = '\0';
}

const qd_proxy_route *qd_proxy_match(const qd_proxy *p, const char *host, const char *path)
{
    char h[QD_PROXY_HOST_MAX];

    if (path == NULL)
        return NULL;
    host_of(host, h, sizeof(h));
    for (size_t i = 0; i < p->nroutes; i++) {
        const qd_proxy_route *r = &p->routes[i];
        if ((strcmp(r->host, "*") == 0 || strcmp(r->host, h) == 0) &&
            strncmp(path, r->prefix, strlen(r->prefix)) == 0)
            return r;
    }
    return NULL;
}

void qd_proxy_dump(const qd_proxy *p, const char *prefix, qd_buf *out)
{
    if (p->ntrust > 0) {
        qd_buf_printf(out, "%strust", prefix);
        for (size_t i = 0; i < p->ntrust; i++) {
            char text[64];
            inet_ntop(p->trust[i].family, p->trust[i].addr, text, sizeof(text));
            qd_buf_printf(out, " %s/%u", text, p->trust[i].bits);
        }
        qd_buf_printf(out, "\n");
    }
    for (size_t i = 0; i < p->ngroups; i++) {
        const qd_proxy_group *g = &p->groups[i];
        qd_buf_printf(out, "%sgroup %s policy=%s", prefix, g->name, policy_name[g->policy]);
        if (g->policy == QD_PROXY_HASH && g->hash_header[0])
            qd_buf_printf(out, " hash=header:%s", g->hash_header);
        else if (g->policy == QD_PROXY_HASH)
            qd_buf_printf(out, " hash=client");
        if (g->check_path[0])
            qd_buf_printf(out, " check=%s", g->check_path);
        qd_buf_printf(out, " check_interval=%ums check_timeout=%ums rise=%u fall=%u",
                      g->check_interval_ms, g->check_timeout_ms, g->rise, g->fall);
        if (g->expect < 10)
            qd_buf_printf(out, " expect=%uxx", g->expect);
        else
            qd_buf_printf(out, " expect=%u", g->expect);
        qd_buf_printf(out,
                      " connect_timeout=%ums read_timeout=%ums send_timeout=%ums idle_timeout=%ums "
                      "fail_timeout=%ums queue=%u retries=%u%s\n",
                      g->connect_timeout_ms, g->read_timeout_ms, g->send_timeout_ms,
                      g->idle_timeout_ms, g->fail_timeout_ms, g->queue, g->retries,
                      g->fail_5xx ? " fail_5xx=yes" : "");
        for (size_t j = 0; j < g->nservers; j++) {
            const qd_proxy_server *s = &g->servers[j];
            char name[QD_PROXY_HOST_MAX + 32];
            qd_proxy_server_name(s, name, sizeof(name));
            qd_buf_printf(out, "%sserver %s %s weight=%u max_conns=%u%s", prefix, g->name, name,
                          s->weight, s->max_conns, s->backup ? " backup" : "");
            if (s->tls && s->sni[0])
                qd_buf_printf(out, " sni=%s", s->sni);
            if (s->tls && s->no_verify)
                qd_buf_printf(out, " verify=no");
            qd_buf_printf(out, "\n");
        }
    }
    for (size_t i = 0; i < p->nroutes; i++) {
        const qd_proxy_route *r = &p->routes[i];
        qd_buf_printf(out, "%sroute %s%s %s%s\n", prefix, r->host, r->prefix,
                      r->group < 0 ? "local" : p->groups[r->group].name, r->strip ? " strip" : "");
    }
}
