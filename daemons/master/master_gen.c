/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	master_gen - generations of workers: reloads that lose nothing
 * SYNOPSIS
 *	master_gen_init(), master_gen_begin(), master_gen_send_layout(),
 *	master_gen_check(), master_gen_layout_ack(), master_gen_prune(),
 *	master_gen_find(), master_gen_workers(), master_next_id()
 * DESCRIPTION
 *	A reload that changes what running workers cannot apply (listen,
 *	workers, tcp, user, group, chroot, daemon_directory) starts a new
 *	generation of workers beside the running one instead of replacing
 *	them:
 *
 *	1. The new workers get worker ids no live worker has (the id is the
 *	   CID's worker byte and the worker's socket slot in every reuseport
 *	   group), and the listener is replaced: the new one takes back every
 *	   socket from the escrow and, still privileged, opens the slots and
 *	   addresses the new generation needs (QD_MSG_LAYOUT before its
 *	   configuration says which). If the app's settings changed (user,
 *	   group, chroot, daemon_directory), an app of the new generation
 *	   starts beside the old one (master_app_for pairs each worker with
 *	   its app); the old app stops once no worker talks to it.
 *	2. Once every new worker, its app and the listener are ready, the master sends
 *	   the listener a layout in which the new generation takes new
 *	   connections: its steering programs send Initials and SYNs to the
 *	   new workers, and packets whose CID names an old worker to that
 *	   worker.
 *	3. When the listener confirms, the old workers are told to stop: they
 *	   drain (GOAWAY, requests finish, drain_timeout) and exit, and the
 *	   next layout forgets them; the listener closes addresses no
 *	   generation serves any more.
 *
 *	The reload is answered after step 3, or after MASTER_GEN_WAIT_MS
 *	with what is missing (the old generation keeps serving meanwhile).
 * DIAGNOSTICS
 *	A reload that would need more than MASTER_MAX_GENS generations or
 *	more than MASTER_MAX_WORKER_IDS workers at once fails and changes
 *	nothing.
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_log.h"

/* local */
#include "master.h"


uint32_t master_next_id(master *m)
{
    if (++m->next_id == 0)
        ++m->next_id;
    return m->next_id;
}

master_gen *master_gen_find(master *m, uint32_t gen)
{
    for (int i = 0; i < m->ngens; i++)
        if (m->gens[i].gen == gen)
            return &m->gens[i];
    return NULL;
}

/* gen_add - a generation of the current configuration */
static master_gen *gen_add(master *m, uint32_t gen)
{
    master_gen *g = &m->gens[m->ngens++];
    const qd_conf *conf = &m->conf;

    memset(g, 0, sizeof(*g));
    g->gen = gen;
    g->tcp = conf->tcp;
    g->workers = qd_conf_workers(conf);
    g->naddrs = conf->listen.count;
    g->addrs = qd_xcalloc(g->naddrs ? g->naddrs : 1, sizeof(*g->addrs));
    for (size_t a = 0; a < g->naddrs; a++) {
        const qd_conf_addr *ad = &conf->listen.items[a];
        snprintf(g->addrs[a], sizeof(g->addrs[a]), "%s%s%s:%u", ad->family == AF_INET6 ? "[" : "",
                 ad->host, ad->family == AF_INET6 ? "]" : "", ad->port);
    }
    return g;
}

static void gen_remove(master *m, int i)
{
    free(m->gens[i].addrs);
    memmove(&m->gens[i], &m->gens[i + 1], (size_t)(m->ngens - i - 1) * sizeof(m->gens[0]));
    m->ngens--;
}

int master_gen_workers(const master *m, uint32_t gen, int *ready)
{
    int n = 0;

    if (ready)
        *ready = 0;
    for (int k = 0; k < m->ngens; k++)
        if (m->gens[k].gen == gen && m->gens[k].foreign) {
            if (ready)
                *ready = m->gens[k].nids;
            return m->gens[k].nids;
        }
    for (int i = 0; i < m->child_count; i++) {
        const master_child *c = m->children[i];
        if (c->role != QD_ROLE_WORKER || c->generation != gen)
            continue;
        n++;
        if (ready && c->running && c->state == MS_RUNNING)
            (*ready)++;
    }
    return n;
}

void master_gen_init(master *m)
{
    /* After an upgrade the previous master's generations come first (they
     * serve until ours is ready); else ours serves from the start. */
    gen_add(m, m->generation)->serving = m->ngens == 0;
    uv_timer_init(m->loop, &m->gen_timer);
    m->gen_timer.data = m;
    qd_buf_init(&m->reload_text);
}

void master_gen_layout_put(master *m, qd_ipc_msg *msg)
{
    uint8_t ids[MASTER_MAX_WORKER_IDS];

    for (int k = 0; k < m->ngens; k++) {
        const master_gen *g = &m->gens[k];
        size_t n = 0;
        if (g->foreign) {
            memcpy(ids, g->ids, (size_t)g->nids);
            n = (size_t)g->nids;
        }
        for (int i = 0; i < m->child_count && !g->foreign; i++) {
            const master_child *c = m->children[i];
            if (c->role == QD_ROLE_WORKER && c->generation == g->gen && n < sizeof(ids))
                ids[n++] = (uint8_t)c->instance;
        }
        qd_ipc_put_u32(msg, QD_F_GENERATION, g->gen);
        qd_ipc_put_u32(msg, QD_F_FLAGS, (g->tcp ? QD_LAYOUT_F_TCP : 0) |
                                            (g->serving ? QD_LAYOUT_F_NEW : 0));
        qd_ipc_put_bytes(msg, QD_F_BODY, ids, n);
        for (size_t a = 0; a < g->naddrs; a++)
            qd_ipc_put_str(msg, QD_F_ADDR, g->addrs[a]);
    }
}

void master_gen_send_layout(master *m, master_child *l)
{
    /* Handed over, or handing over: the next master's listener steers. */
    if (l == NULL || l->ctl == NULL || m->handed_over ||
        (m->upgrading && m->upgrade_failure[0] == '\0'))
        return;
    m->layout_id = master_next_id(m);
    master_gen_layout_put(m, master_child_msg(l, QD_MSG_LAYOUT, m->layout_id));
    master_child_queue(l);
}

/* gens_remove_if - forget the generations |gone| names ("generation N
 * WHY" in the log) and tell the listener the layout without them */
static void gens_remove_if(master *m, bool (*gone)(master *, const master_gen *), const char *why)
{
    bool changed = false;

    for (int k = 0; k < m->ngens;) {
        if (gone(m, &m->gens[k])) {
            qd_info("generation %u %s", m->gens[k].gen, why);
            gen_remove(m, k);
            changed = true;
            continue;
        }
        k++;
    }
    if (changed)
        master_gen_send_layout(m, master_child_find(m, QD_ROLE_LISTENER));
}

static bool gen_is_foreign(master *m, const master_gen *g)
{
    (void)m;
    return g->foreign;
}

void master_gen_forget_foreign(master *m)
{
    gens_remove_if(m, gen_is_foreign, "of the previous master is gone");
}

/* reload_answer - the pending generation reload is over: answer it */
static void reload_answer(master *m, const char *failure)
{
    if (m->gen_reload_id == 0)
        return;
    uv_timer_stop(&m->gen_timer);
    qd_buf_reset(&m->reload_errors);
    if (failure)
        qd_buf_printf(&m->reload_errors, "%s", failure);
    m->reload_id = m->gen_reload_id;
    master_control_reload_done(m);
    m->reload_id = 0;
    m->gen_reload_id = 0;
}

/* on_gen_timer - the new generation did not take over in time: say why */
static void on_gen_timer(uv_timer_t *t)
{
    master *m = t->data;
    master_gen *g = m->ngens > 0 ? &m->gens[m->ngens - 1] : NULL;
    qd_buf why;

    if (g == NULL || g->serving) {
        reload_answer(m, NULL);
        return;
    }
    qd_buf_init(&why);
    qd_buf_printf(&why, "generation %u is not serving after %ds:", g->gen, MASTER_GEN_WAIT_MS / 1000);
    for (int i = 0; i < m->child_count; i++) {
        master_child *c = m->children[i];
        if (((c->role == QD_ROLE_WORKER || c->role == QD_ROLE_APP) && c->generation == g->gen) ||
            c->role == QD_ROLE_LISTENER)
            if (c->state != MS_RUNNING)
                qd_buf_printf(&why, " %s is %s;", master_child_name(c),
                              master_state_name(c->state));
    }
    qd_warn("%s", qd_buf_str(&why));
    if (m->handoff != NULL && !m->taken_over) {
        master_upgrade_failed(m, qd_buf_str(&why)); /* quicd -U: give up, the old master serves */
    } else {
        qd_buf_printf(&why, " the previous generation keeps serving until it is\n");
        char *text = qd_xstrdup(qd_buf_str(&why));
        qd_buf_reset(&why);
        qd_buf_printf(&why, "reloaded, but %s", text);
        free(text);
        reload_answer(m, qd_buf_str(&why));
    }
    qd_buf_release(&why);
}

void master_gen_arm_timer(master *m)
{
    uv_timer_start(&m->gen_timer, on_gen_timer, MASTER_GEN_WAIT_MS, 0);
}

int master_gen_alloc_ids(master *m, int n, uint8_t *ids)
{
    bool used[MASTER_MAX_WORKER_IDS] = {false};
    int k = 0;

    for (int i = 0; i < m->child_count; i++)
        if (m->children[i]->role == QD_ROLE_WORKER)
            used[m->children[i]->instance] = true;
    for (int g = 0; g < m->ngens; g++)
        for (int i = 0; i < m->gens[g].nids; i++)
            used[m->gens[g].ids[i]] = true; /* the previous master's workers */
    for (int id = 0; id < MASTER_MAX_WORKER_IDS && k < n; id++)
        if (!used[id])
            ids[k++] = (uint8_t)id;
    return k == n ? 0 : -1;
}

/* has_word - is |w| one of the space-separated words of |list|? */
static bool has_word(const char *list, const char *w)
{
    size_t n = strlen(w);

    for (const char *p = list; (p = strstr(p, w)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return true;
    return false;
}

int master_gen_begin(master *m, const char *names, uint32_t *reload_id, qd_buf *msg)
{
    static const char *const gen_keys[] = {"listen", "workers", "tcp", "user", "group",
                                           "chroot", "daemon_directory", NULL};
    bool new_gen = false;
    int n = qd_conf_workers(&m->conf);
    uint8_t ids[MASTER_MAX_WORKER_IDS];

    for (int i = 0; gen_keys[i]; i++)
        new_gen = new_gen || has_word(names, gen_keys[i]);
    if (!new_gen) {
        /* udp_buffer, tcp_backlog, stats_database: only their daemons */
        for (int i = 0; i < m->child_count; i++) {
            master_child *c = m->children[i];
            if ((c->role == QD_ROLE_LISTENER &&
                 (has_word(names, "udp_buffer") || has_word(names, "tcp_backlog"))) ||
                (c->role == QD_ROLE_STATS && has_word(names, "stats_database")))
                master_child_replace(c);
        }
        qd_buf_printf(msg, "reloaded; replacing the daemons that use %s\n", names);
        return 0;
    }
    /* A generation that never took over (its workers did not start) gives way. */
    while (m->ngens > 0 && !m->gens[m->ngens - 1].serving && !m->gens[m->ngens - 1].retiring) {
        master_gen *g = &m->gens[m->ngens - 1];
        qd_notice("generation %u never served; stopping it for the next one", g->gen);
        g->retiring = true;
        for (int i = m->child_count - 1; i >= 0; i--) { /* a stop may remove the child */
            master_child *c = m->children[i];
            if ((c->role == QD_ROLE_WORKER || c->role == QD_ROLE_APP) && c->generation == g->gen) {
                c->retire = true;
                master_child_stop(c, true);
            }
        }
        master_gen_prune(m);
        break;
    }
    if (m->ngens >= MASTER_MAX_GENS) {
        qd_buf_printf(msg, "reload failed: %d generations of workers are still draining; "
                           "try again when fewer are (quicctl status)\n", m->ngens);
        return -1;
    }
    if (master_gen_alloc_ids(m, n, ids) < 0) {
        qd_buf_printf(msg, "reload failed: %d new workers beside the %d still running exceed "
                           "%d worker ids; try again when the old ones have drained\n",
                      n, master_worker_count(m), MASTER_MAX_WORKER_IDS);
        return -1;
    }
    m->generation++;
    master_gen *g = gen_add(m, m->generation);
    qd_notice("reload: %s changed; starting generation %u (%d workers) beside the running one",
              names, g->gen, n);
    bool new_app = has_word(names, "user") || has_word(names, "group") ||
                   has_word(names, "chroot") || has_word(names, "daemon_directory");
    for (int i = 0; i < m->child_count; i++) {
        master_child *c = m->children[i];
        if (c->role == QD_ROLE_LISTENER)
            master_child_replace(c); /* the new one opens what generation g needs, privileged */
        else if (c->role == QD_ROLE_STATS &&
                 (has_word(names, "stats_database") || has_word(names, "user") ||
                  has_word(names, "group") || has_word(names, "daemon_directory")))
            master_child_replace(c);
    }
    /* The app's settings changed: an app of generation g beside the old
     * one, which keeps serving the older workers until they are gone. */
    if (new_app)
        master_child_add(m, QD_ROLE_APP, -1);
    for (int i = 0; i < n; i++)
        master_child_add_worker(m, ids[i], i)->generation = g->gen;
    qd_buf_reset(&m->reload_text);
    qd_buf_printf(&m->reload_text, "reloaded; generation %u (%d workers) serves new connections "
                                   "because %s changed; the older ones drain\n",
                  g->gen, n, names);
    m->gen_reload_id = master_next_id(m);
    *reload_id = m->gen_reload_id;
    uv_timer_start(&m->gen_timer, on_gen_timer, MASTER_GEN_WAIT_MS, 0);
    master_gen_check(m);
    return 0;
}

void master_gen_check(master *m)
{
    master_gen *g = m->ngens > 0 ? &m->gens[m->ngens - 1] : NULL;
    master_child *l = master_child_find(m, QD_ROLE_LISTENER);
    int ready;

    if (g == NULL || g->serving || g->retiring || m->stopping || l == NULL ||
        l->state != MS_RUNNING || m->switch_id != 0)
        return;
    if (master_gen_workers(m, g->gen, &ready) != g->workers || ready != g->workers)
        return;
    for (int i = 0; i < m->child_count; i++) {
        master_child *c = m->children[i];
        if (c->role == QD_ROLE_APP && c->generation == g->gen && !c->retire &&
            c->state != MS_RUNNING)
            return; /* its own app is not ready yet */
    }
    /* Every new worker is up: new connections go to them from now on. */
    for (int k = 0; k < m->ngens - 1; k++)
        if (m->gens[k].serving) {
            m->gens[k].serving = false;
            m->gens[k].retiring = true;
        }
    g->serving = true;
    master_gen_send_layout(m, l);
    m->switch_id = m->layout_id;
    qd_info("generation %u is ready; switching new connections to it", g->gen);
}

void master_gen_layout_ack(master *m, const qd_ipc_msg *msg)
{
    uint32_t status = 0;
    char why[512] = "";

    qd_ipc_get_u32(msg, QD_F_STATUS, &status);
    qd_ipc_get_str(msg, QD_F_TEXT, why, sizeof(why));
    if (status != 0)
        qd_err("the listener refused the layout of the generations: %s", why);
    if (msg->id != m->switch_id || m->switch_id == 0)
        return;
    m->switch_id = 0;
    /* The steering programs now send new connections to the newest
     * generation: the older ones stop and drain. */
    for (int k = 0; k < m->ngens; k++) {
        if (!m->gens[k].retiring)
            continue;
        int n = 0;
        for (int i = m->child_count - 1; i >= 0; i--) { /* a stop may remove the child */
            master_child *c = m->children[i];
            if (c->role == QD_ROLE_WORKER && c->generation == m->gens[k].gen && !c->retire) {
                c->retire = true;
                n++;
                master_child_stop(c, false);
            }
        }
        if (n > 0)
            qd_info("generation %u: %d workers drain", m->gens[k].gen, n);
    }
    reload_answer(m, status != 0 ? why : NULL);
    for (int k = 0; k < m->ngens; k++)
        if (m->gens[k].foreign && m->gens[k].retiring && m->handoff != NULL && !m->taken_over)
            master_upgrade_taken_over(m); /* the previous master drains and exits */
    master_gen_prune(m);
}

static bool gen_is_drained(master *m, const master_gen *g)
{
    return g->retiring && !g->foreign && master_gen_workers(m, g->gen, NULL) == 0;
}

/*
 * apps_prune - an app that is not the newest and that no worker talks to
 * any more (their generations have drained) stops for good
 */
static void apps_prune(master *m)
{
    if (m->stopping)
        return; /* master_children_stop_all stops every app after the workers */
    master_child *newest = master_app_for(m, UINT32_MAX);
    for (int i = m->child_count - 1; i >= 0; i--) { /* a stop may remove the child */
        master_child *a = m->children[i];
        if (a->role != QD_ROLE_APP || a->retire || a == newest)
            continue;
        bool used = false;
        for (int k = 0; k < m->child_count && !used; k++)
            used = m->children[k]->role == QD_ROLE_WORKER &&
                   master_app_for(m, m->children[k]->generation) == a;
        if (used)
            continue;
        qd_info("the app of generation %u (pid %ld) stops: its workers are gone", a->generation,
                (long)a->pid);
        a->retire = true;
        master_child_stop(a, false);
    }
}

void master_gen_prune(master *m)
{
    gens_remove_if(m, gen_is_drained, "has drained");
    apps_prune(m);
}
