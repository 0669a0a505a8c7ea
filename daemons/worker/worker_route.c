/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_route - the proxy table in the worker: routes, groups, and
 *	the choice of a server
 * SYNOPSIS
 *	worker_route_configure(), worker_route_match(), worker_route_pick(),
 *	worker_route_find(), worker_route_server_done()
 * DESCRIPTION
 *	The worker reads the proxy table from the descriptor the master
 *	passes before each CONFIG (it is chrooted away from the file) and
 *	keeps a wk_upgroup per group with a wk_upserver per server: the
 *	upstream daemon's word on its health, its connections (busy and the
 *	idle pool) and counters. A reload keeps the group and server structs
 *	whose names stay, with their pools and state; a server that left is
 *	retired (its idle connections closed, its busy ones finish) and freed
 *	with its last connection; a group that left answers its waiting
 *	requests 503.
 *
 *	A request's server: among those up, not tried yet by this request
 *	and below max_conns (or with an idle connection), the non-backup
 *	ones, else the backups; by smooth weighted round robin, least
 *	connections per weight (ties by round robin), or rendezvous hashing
 *	of the request's key (the client's address or a header), which moves
 *	only the keys of a server that comes or goes. No server up: none
 *	(503 at once); servers up but all at max_conns: busy (the request
 *	waits in the group's queue).
 * DIAGNOSTICS
 *	A table that does not parse fails the configuration with its first
 *	error (the master checked it before, so this means it changed in
 *	between).
 */
#include "config.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_log.h"

/* local */
#include "worker.h"

/* worker_read_fd - the whole file behind |fd| (from offset 0) */
int worker_read_fd(int fd, qd_buf *out)
{
    char buf[8192];
    off_t off = 0;

    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        qd_buf_append(out, buf, (size_t)n);
        off += n;
    }
}

/* retire - |sv| left the table: its idle connections close, the rest finish */
static void retire(worker *w, wk_upserver *sv)
{
    sv->g = NULL;
    while (sv->idle != NULL)
        worker_upconn_close(sv->idle);
    sv->next = w->up_retired;
    w->up_retired = sv;
    worker_route_server_done(w, sv);
}

/* drop_group - |g| left the table: its waiting requests get 503, the servers not kept retire */
static void drop_group(worker *w, wk_upgroup *g)
{
    while (g->wait_head != NULL) {
        wk_proxy *px = g->wait_head;
        g->wait_head = px->wait_next;
        px->waiting = false;
        px->g = NULL;
        worker_proxy_failed(px, 503, -1, "its group left the proxy table");
    }
    for (size_t i = 0; i < g->nservers; i++)
        if (g->servers[i] != NULL)
            retire(w, g->servers[i]);
    free(g->servers);
    free(g);
}

/* take_server - the server |name| of the old group |g|, removed from it, or NULL */
static wk_upserver *take_server(wk_upgroup *g, const char *name)
{
    for (size_t i = 0; g != NULL && i < g->nservers; i++)
        if (g->servers[i] != NULL && strcmp(g->servers[i]->name, name) == 0) {
            wk_upserver *sv = g->servers[i];
            g->servers[i] = NULL;
            return sv;
        }
    return NULL;
}

int worker_route_configure(worker *w, const qd_conf *conf, qd_buf *err)
{
    const char *name = conf->proxy_table;
    qd_proxy table;
    qd_buf text, errs;
    int rv = 0;

    qd_proxy_init(&table);
    qd_buf_init(&text);
    qd_buf_init(&errs);
    if (w->proxy_fd >= 0) {
        if (worker_read_fd(w->proxy_fd, &text) < 0) {
            qd_buf_printf(err, "proxy_table %s: %s", name, strerror(errno));
            rv = -1;
        } else if (qd_proxy_parse(&table, name, text.data, text.len, &errs) != 0) {
            const char *e = qd_buf_str(&errs);
            qd_buf_printf(err, "%.*s", (int)strcspn(e, "\n"), e);
            rv = -1;
        }
        close(w->proxy_fd);
        w->proxy_fd = -1;
    } else if (name[0] != '\0') {
        qd_warn("proxy_table %s did not reach the worker: no request is proxied", name);
    }
    qd_buf_release(&text);
    qd_buf_release(&errs);
    if (rv < 0) {
        qd_proxy_release(&table);
        if (w->proxy_ca_fd >= 0)
            close(w->proxy_ca_fd);
        w->proxy_ca_fd = -1;
        return -1;
    }

    /* The new groups, with the structs of the groups and servers that stay. */
    wk_upgroup **old = w->upgroups;
    size_t nold = w->routes.ngroups;
    wk_upgroup **groups = qd_xcalloc(table.ngroups + 1, sizeof(*groups));
    for (size_t i = 0; i < table.ngroups; i++) {
        const qd_proxy_group *gc = &table.groups[i];
        wk_upgroup *prev = NULL;
        for (size_t k = 0; k < nold; k++)
            if (old[k] != NULL && strcmp(old[k]->conf.name, gc->name) == 0) {
                prev = old[k];
                old[k] = NULL;
                break;
            }
        wk_upgroup *g = prev != NULL ? prev : qd_xcalloc(1, sizeof(*g));
        wk_upserver **oldsv = g->servers;
        size_t noldsv = g->nservers;
        wk_upgroup holder = {.servers = oldsv, .nservers = noldsv};
        g->conf = *gc;
        g->conf.servers = NULL;
        g->conf.nservers = 0;
        g->servers = qd_xcalloc(gc->nservers, sizeof(*g->servers));
        g->nservers = gc->nservers;
        for (size_t j = 0; j < gc->nservers; j++) {
            char sname[sizeof(((wk_upserver *)0)->name)];
            qd_proxy_server_name(&gc->servers[j], sname, sizeof(sname));
            wk_upserver *sv = take_server(&holder, sname);
            if (sv == NULL) {
                sv = qd_xcalloc(1, sizeof(*sv));
                snprintf(sv->name, sizeof(sv->name), "%s", sname);
            }
            sv->g = g;
            sv->conf = gc->servers[j];
            sv->index = (uint32_t)j;
            sv->cw = 0;
            g->servers[j] = sv;
        }
        for (size_t j = 0; j < noldsv; j++)
            if (oldsv[j] != NULL)
                retire(w, oldsv[j]);
        free(oldsv);
        groups[i] = g;
    }
    for (size_t k = 0; k < nold; k++)
        if (old[k] != NULL)
            drop_group(w, old[k]);
    free(old);
    qd_proxy_release(&w->routes);
    w->routes = table;
    w->upgroups = groups;
    if (w->routes.ngroups > 0)
        qd_info("proxy table: %zu groups, %zu routes", w->routes.ngroups, w->routes.nroutes);
    /* requests that waited may find servers now */
    for (size_t i = 0; i < w->routes.ngroups; i++)
        worker_proxy_wake(w, groups[i]);
    return worker_uptls_configure(w, conf->proxy_ca_file, err);
}

const qd_proxy_route *worker_route_match(worker *w, const wk_stream *s)
{
    if (w->routes.nroutes == 0 || s->path == NULL)
        return NULL;
    return qd_proxy_match(&w->routes, s->authority ? s->authority : "", s->path);
}

wk_upserver *worker_route_find(worker *w, const char *group, const char *server)
{
    for (size_t i = 0; i < w->routes.ngroups; i++) {
        wk_upgroup *g = w->upgroups[i];
        if (strcmp(g->conf.name, group) != 0)
            continue;
        for (size_t j = 0; j < g->nservers; j++)
            if (strcmp(g->servers[j]->name, server) == 0)
                return g->servers[j];
    }
    return NULL;
}

/* mix - a 64-bit hash step (splitmix64's finaliser) */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

/* usable - may |px| try |sv| now? *full: it is up but at max_conns */
static bool usable(const wk_proxy *px, const wk_upserver *sv, bool backup, bool *full)
{
    if (sv->down || sv->conf.backup != backup || (px->tried >> sv->index & 1))
        return false;
    if (sv->conf.max_conns > 0 && sv->conns >= sv->conf.max_conns && sv->idle == NULL) {
        *full = true;
        return false;
    }
    return true;
}

wk_upserver *worker_route_pick(worker *w, wk_proxy *px, bool *busy)
{
    wk_upgroup *g = px->g;
    bool full = false;

    (void)w;
    *busy = false;
    if (g == NULL)
        return NULL;
    for (int backup = 0; backup < 2; backup++) {
        wk_upserver *best = NULL;
        int64_t total = 0;
        double best_load = 0;
        uint64_t best_score = 0;
        for (size_t i = 0; i < g->nservers; i++) {
            wk_upserver *sv = g->servers[i];
            if (!usable(px, sv, backup != 0, &full))
                continue;
            switch (g->conf.policy) {
            case QD_PROXY_ROUND_ROBIN:
                sv->cw += sv->conf.weight;
                total += sv->conf.weight;
                if (best == NULL || sv->cw > best->cw)
                    best = sv;
                break;
            case QD_PROXY_LEAST_CONN: {
                double load = (double)sv->active / sv->conf.weight;
                sv->cw += sv->conf.weight;
                total += sv->conf.weight;
                if (best == NULL || load < best_load || (load == best_load && sv->cw > best->cw)) {
                    best = sv;
                    best_load = load;
                }
                break;
            }
            case QD_PROXY_HASH: {
                /* rendezvous: the highest score of (key, server), weighted by repetition */
                uint64_t score = 0;
                for (uint32_t k = 0; k < sv->conf.weight && k < 16; k++) {
                    uint64_t v = mix(px->hash ^ mix(hash_str(sv->name) + k));
                    if (v > score)
                        score = v;
                }
                if (best == NULL || score > best_score) {
                    best = sv;
                    best_score = score;
                }
                break;
            }
            }
        }
        if (best != NULL) {
            best->cw -= total;
            return best;
        }
    }
    *busy = full;
    return NULL;
}

/* worker_route_busy - are the servers |px| could use all at max_conns (none free, some up)? */
bool worker_route_busy(const wk_proxy *px)
{
    bool full = false, any = false;

    for (int backup = 0; px->g != NULL && backup < 2 && !any; backup++)
        for (size_t i = 0; i < px->g->nservers && !any; i++)
            any = usable(px, px->g->servers[i], backup != 0, &full);
    return !any && full;
}

/* worker_route_server_done - free a retired server once nothing uses it */
void worker_route_server_done(worker *w, wk_upserver *sv)
{
    if (sv->g != NULL || sv->conns > 0 || sv->active > 0)
        return;
    for (wk_upserver **pp = &w->up_retired; *pp != NULL; pp = &(*pp)->next)
        if (*pp == sv) {
            *pp = sv->next;
            free(sv);
            return;
        }
}
