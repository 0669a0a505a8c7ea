/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	upstream - the upstream servers of the reverse proxy: names and health
 * SYNOPSIS
 *	upstream -g generation [-l dest] [-v level] (started by quicd when
 *	proxy_table is set)
 * DESCRIPTION
 *	After Postfix's scache(8) and proxymap(8): one unprivileged process
 *	(the daemons' user, no capabilities, no chroot: Unix-socket backends
 *	live anywhere) reads the proxy table, resolves its servers' names
 *	and runs each server's active health check once for the whole
 *	suite, not once per worker (upstream_check.c). Its state goes to the
 *	master in every status report (F_TEXT, one line per server), where
 *	quicctl upstreams reads it, with what the workers count at each
 *	server (UP_COUNTS: connections active and idle, requests, failures),
 *	per worker and summed.
 *
 *	The workers talk to it over a channel each (upstream_conn.c): it
 *	connects sockets for them and hands them over connected (a chrooted
 *	worker needs no resolver and reaches Unix sockets anywhere), counts
 *	failed connects and the failures workers report as passive failures,
 *	and broadcasts every change of a server's state to every worker.
 *	Its metrics (checks and connects by result, passive failures, state
 *	changes, servers up and down) go to stats through qd_child every
 *	stats_interval.
 *
 *	A reload reads the table again: a server still in the same group at
 *	the same address keeps its state and counters, the others start
 *	fresh (up, and announced to the workers), and those that left are
 *	closed. A table that does not parse keeps the old one (the master
 *	has refused it already).
 * DIAGNOSTICS
 *	State changes at notice level; resolution failures as warnings.
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_log.h"
#include "qd_time.h"

/* local */
#include "upstream.h"

static upstream the_upstream;

us_server *upstream_find(upstream *u, const char *group, const char *name)
{
    for (us_server *s = u->servers; s != NULL; s = s->next)
        if (strcmp(s->name, name) == 0 && strcmp(s->group, group) == 0)
            return s;
    return NULL;
}

/* take_old - the server of the old list with |group| and |name|, unlinked from it */
static us_server *take_old(us_server **old, const char *group, const char *name)
{
    for (us_server **pp = old; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->group, group) == 0 && strcmp((*pp)->name, name) == 0) {
            us_server *s = *pp;
            *pp = s->next;
            s->next = NULL;
            return s;
        }
    return NULL;
}

/*
 * apply - make the server list the table's: servers that stay keep their
 * state (and get the group's new options), new ones start up (and are
 * announced to the workers on a reload), the others are retired.
 */
static void apply(upstream *u, bool first)
{
    us_server *old = u->servers, *list = NULL, **tail = &list;

    for (size_t i = 0; i < u->table.ngroups; i++) {
        const qd_proxy_group *g = &u->table.groups[i];
        for (size_t j = 0; j < g->nservers; j++) {
            char name[sizeof(((us_server *)0)->name)];
            qd_proxy_server_name(&g->servers[j], name, sizeof(name));
            us_server *s = take_old(&old, g->name, name);
            bool fresh = s == NULL;
            if (fresh) {
                s = qd_xcalloc(1, sizeof(*s));
                s->u = u;
                snprintf(s->group, sizeof(s->group), "%s", g->name);
                snprintf(s->name, sizeof(s->name), "%s", name);
                s->state = US_UP;
                s->since_ms = qd_time_real_ms();
                s->announce = !first;
            }
            s->gconf = *g;
            s->gconf.servers = NULL;
            s->gconf.nservers = 0;
            s->conf = g->servers[j];
            if (fresh) {
                upstream_check_start(s);
            } else {
                upstream_check_restart(s);
            }
            *tail = s;
            tail = &s->next;
        }
    }
    for (us_server *s = old, *next; s != NULL; s = next) {
        next = s->next;
        qd_info("upstream %s server %s left the table", s->group, s->name);
        upstream_check_stop(s);
    }
    u->servers = list;
    if (!first) {
        upstream_conn_announce(u);
        qd_info("proxy table: %zu groups", u->table.ngroups);
    }
}

static int configure(qd_child *c, const qd_conf *conf, bool first, qd_buf *err)
{
    upstream *u = c->data;
    qd_proxy table;
    qd_buf errs;

    qd_proxy_init(&table);
    qd_buf_init(&errs);
    if (conf->proxy_table[0] != '\0' && qd_proxy_load(&table, conf->proxy_table, &errs) != 0) {
        const char *e = qd_buf_str(&errs);
        qd_buf_printf(err, "%.*s", (int)strcspn(e, "\n"), e);
        qd_proxy_release(&table);
        qd_buf_release(&errs);
        return -1;
    }
    qd_buf_release(&errs);
    qd_proxy_release(&u->table);
    u->table = table;
    if (!first)
        apply(u, false); /* the first waits for started(): the loop is ready then */
    return 0;
}

static void on_resolve_timer(uv_timer_t *t)
{
    upstream *u = t->data;

    for (us_server *s = u->servers; s != NULL; s = s->next)
        upstream_resolve(s);
}

static void started(qd_child *c)
{
    upstream *u = c->data;

    /* above any number a predecessor can have used, short of 1000 messages a millisecond */
    u->seq = qd_time_real_ms() * 1000;
    apply(u, true);
    uv_timer_init(c->loop, &u->resolve_timer);
    u->resolve_timer.data = u;
    uv_timer_start(&u->resolve_timer, on_resolve_timer, UPSTREAM_RESOLVE_MS, UPSTREAM_RESOLVE_MS);
    qd_info("%zu groups, watching their servers", u->table.ngroups);
}

/* channel - a worker's channel from the master (upstream_conn.c) */
static void channel(qd_child *c, qd_role role, uint32_t instance, int fd)
{
    upstream_conn_channel(c->data, role, instance, fd);
}

/*
 * put_tallies - the workers' counts at |s| (UP_COUNTS): active=, idle=,
 * requests=, fails= summed over the workers, and workers= each worker's
 * instance:active/idle/requests/fails, comma-separated ("-" if none)
 */
static void put_tallies(qd_buf *b, const us_server *s)
{
    unsigned long long active = 0, idle = 0, requests = 0, fails = 0;

    for (size_t i = 0; i < s->tally_count; i++) {
        active += s->tallies[i].active;
        idle += s->tallies[i].idle;
        requests += s->tallies[i].requests;
        fails += s->tallies[i].fails;
    }
    qd_buf_printf(b, " active=%llu idle=%llu requests=%llu fails=%llu workers=", active, idle,
                  requests, fails);
    if (s->tally_count == 0)
        qd_buf_printf(b, "-");
    for (size_t i = 0; i < s->tally_count; i++) {
        const us_tally *t = &s->tallies[i];
        qd_buf_printf(b, "%s%u:%u/%u/%llu/%llu", i ? "," : "", t->instance, t->active, t->idle,
                      (unsigned long long)t->requests, (unsigned long long)t->fails);
    }
}

/*
 * status - one line per server, for quicctl upstreams: checks= and
 * failures= count the active checks, passive_failures= and passive_run=
 * what the workers and the connects made for them saw, down_by= which of
 * the two marked the server down; active= to workers= what the workers
 * count there (put_tallies); last= (the last check) takes the rest. Only
 * whole lines go in, UPSTREAM_REPORT_MAX bytes at most.
 */
static void status(qd_child *c, qd_ipc_msg *m)
{
    upstream *u = c->data;
    qd_buf b, line;

    qd_buf_init(&b);
    qd_buf_init(&line);
    for (us_server *s = u->servers; s != NULL; s = s->next) {
        qd_buf_reset(&line);
        qd_buf_printf(
            &line,
            "group=%s server=%s state=%s since_ms=%llu checks=%llu failures=%llu "
            "passive_failures=%llu passive_run=%u down_by=%s connects=%llu "
            "check=%s address=%s weight=%u max_conns=%u backup=%d",
            s->group, s->name, upstream_state_name(s->state), (unsigned long long)s->since_ms,
            (unsigned long long)s->checks, (unsigned long long)s->failures,
            (unsigned long long)s->passive_failures, s->passive_run,
            upstream_cause_name(s->down_by), (unsigned long long)s->connects,
            s->gconf.check_path[0] ? s->gconf.check_path : "-", s->addrlen ? s->addr_text : "-",
            s->conf.weight, s->conf.max_conns, s->conf.backup);
        put_tallies(&line, s);
        qd_buf_printf(&line, " last=%s\n", s->last[0] ? s->last : "-");
        if (b.len + line.len > UPSTREAM_REPORT_MAX)
            break;
        qd_buf_append(&b, qd_buf_str(&line), line.len);
    }
    qd_ipc_put_str(m, QD_F_TEXT, qd_buf_str(&b));
    qd_buf_release(&line);
    qd_buf_release(&b);
}

/* metrics - the daemon's running totals and its servers' states, for stats */
static void metrics(qd_child *c, qd_metrics *m)
{
    upstream *u = c->data;

    for (unsigned r = 0; r < 2; r++)
        m->v[QD_M1(UPSTREAM_CHECKS, r)] = u->checks[r];
    for (unsigned r = 0; r < QD_MDN_CONNECT; r++)
        m->v[QD_M1(UPSTREAM_CONNECTS, r)] = u->connects[r];
    m->v[QD_M_UPSTREAM_PASSIVE] = u->passive_failures;
    m->v[QD_M_UPSTREAM_CHANGES] = u->changes;
    for (const us_server *s = u->servers; s != NULL; s = s->next)
        if (!s->retired)
            m->v[QD_M1(UPSTREAM_SERVERS, s->state == US_UP ? QD_MV_UP : QD_MV_DOWN)]++;
}

static const qd_child_ops ops = {
    .configure = configure,
    .started = started,
    .channel = channel,
    .status = status,
    .metrics = metrics,
};

int main(int argc, char **argv)
{
    qd_child_init(&the_upstream.child, QD_ROLE_UPSTREAM, argc, argv, &ops, &the_upstream);
    return qd_child_run(&the_upstream.child);
}
