/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	master_reload - load the configuration, and reload it live
 * SYNOPSIS
 *	master_load_config(), master_reload(), master_reload_ack()
 * DESCRIPTION
 *	A reload (SIGHUP or quicctl reload) parses the file again with the
 *	command-line overrides. An invalid file changes nothing: the suite
 *	keeps running on the old configuration and the errors are logged and
 *	returned to quicctl. Otherwise, in two phases (OpenBSD httpd): the new
 *	configuration is pushed to every running daemon, and the reload is
 *	answered once each has confirmed it (CONFIG_DONE) or after
 *	MASTER_RELOAD_WAIT_MS. Keys that running daemons cannot apply (those
 *	without QD_CONF_F_RELOAD: listen, workers, user, ...) start a new
 *	generation of workers beside the running one (master_gen.c).
 *	runtime_directory cannot change while running.
 * DIAGNOSTICS
 *	"reload failed: ..." with every configuration error; a daemon that
 *	rejects the configuration is named in the reply.
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"
#include "qd_proxy.h"

/* local */
#include "master.h"

int master_load_config(master *m, qd_conf *out, qd_buf *errs)
{
    int rv;

    qd_conf_init(out);
    rv = qd_conf_load(out, m->conf_path, errs);
    for (int i = 0; i < m->override_count; i++) {
        char key[128];
        const char *eq = strchr(m->overrides[i], '=');
        size_t klen = (size_t)(eq - m->overrides[i]);
        if (klen >= sizeof(key))
            klen = sizeof(key) - 1;
        memcpy(key, m->overrides[i], klen);
        key[klen] = '\0';
        /* trim spaces around the key and value */
        while (klen > 0 && key[klen - 1] == ' ')
            key[--klen] = '\0';
        const char *val = eq + 1;
        while (*val == ' ')
            val++;
        if (qd_conf_set(out, key, val, "-o", errs) < 0 && rv == 0)
            rv = -1;
    }
    if (out->proxy_table != NULL && out->proxy_table[0] != '\0') {
        qd_proxy p; /* checked here, so that start, reload and -t refuse a bad table */
        qd_proxy_init(&p);
        if (qd_proxy_load(&p, out->proxy_table, errs) != 0 && rv == 0)
            rv = QD_ERR_CONF;
        bool tls = false;
        for (size_t i = 0; i < p.ngroups; i++)
            for (size_t j = 0; j < p.groups[i].nservers; j++)
                tls |= p.groups[i].servers[j].tls;
        if (tls && access(out->proxy_ca_file, R_OK) != 0) {
            qd_buf_printf(errs, "proxy_ca_file %s: %s (the proxy table has https:// servers)\n",
                          out->proxy_ca_file, strerror(errno));
            if (rv == 0)
                rv = QD_ERR_CONF;
        }
        qd_proxy_release(&p);
    }
    if (master_metrics_check(out, errs) < 0 && rv == 0)
        rv = QD_ERR_CONF; /* a token file the stats daemon could not use, a port taken */
    return rv;
}

/* on_reload_timer - some daemon did not answer in time */
static void on_reload_timer(uv_timer_t *t)
{
    master *m = t->data;

    if (m->reload_id == 0)
        return;
    for (int i = 0; i < m->child_count; i++) {
        master_child *c = m->children[i];
        if (c->config_id == m->reload_id) {
            qd_buf_printf(&m->reload_errors, "%s: did not confirm the new configuration\n",
                          master_child_name(c));
            c->config_id = 0;
        }
    }
    m->reload_waiting = 0;
    master_control_reload_done(m);
    m->reload_id = 0;
}

void master_reload_ack(master *m, master_child *c, uint32_t id, uint32_t status, const char *why)
{
    if (id == 0 || id != c->config_id) {
        if (status != 0)
            qd_warn("%s rejected its configuration: %s", master_child_name(c), why);
        return;
    }
    c->config_id = 0;
    if (status != 0)
        qd_buf_printf(&m->reload_errors, "%s: %s\n", master_child_name(c), why);
    if (id == m->reload_id && --m->reload_waiting <= 0) {
        uv_timer_stop(&m->reload_timer);
        master_control_reload_done(m);
        if (m->reload_errors.len == 0)
            qd_info("reload complete");
        m->reload_id = 0;
    }
}

int master_reload(master *m, uint32_t *reload_id, qd_buf *msg)
{
    qd_conf next;
    qd_buf errs, names;
    int rv = -1;

    *reload_id = 0;
    qd_buf_init(&errs);
    qd_buf_init(&names);
    if (master_load_config(m, &next, &errs) != 0) {
        m->metrics.v[QD_M1(RELOADS, QD_MV_RELOAD_FAILED)]++;
        qd_err("reload failed; keeping the current configuration:\n%s", qd_buf_str(&errs));
        qd_buf_printf(msg, "reload failed; keeping the current configuration:\n%s",
                      qd_buf_str(&errs));
        goto out;
    }
    if (strcmp(next.runtime_directory, m->conf.runtime_directory) != 0) {
        m->metrics.v[QD_M1(RELOADS, QD_MV_RELOAD_FAILED)]++;
        qd_buf_printf(msg, "reload failed: runtime_directory cannot change while quicd runs; "
                           "stop and start it instead\n");
        qd_err("%s", qd_buf_str(msg));
        goto out;
    }
    if (master_metrics_reload(m, &next, msg) < 0)
        goto out; /* the endpoint cannot move: nothing changes */
    int restart_keys = qd_conf_diff(&m->conf, &next, true, &names);

    qd_conf_release(&m->conf);
    m->conf = next;
    master_stats_buffer(m);
    memset(&next, 0, sizeof(next));
    m->reloads++;
    m->metrics.v[QD_M1(RELOADS, QD_MV_RELOAD_OK)]++;
    if (!m->cli_level_set)
        qd_log_set_level((qd_log_level)qd_conf_log_level(&m->conf));
    master_record_event(m, QD_EV_RELOAD, NULL);
    master_upstream_sync(m);

    if (restart_keys > 0) {
        /* Keys running daemons cannot apply: a new generation of workers
         * beside the running one, or new daemons of the kinds that use them
         * (master_gen.c). The configuration is already the new one. */
        rv = master_gen_begin(m, qd_buf_str(&names), reload_id, msg);
        /* Stats, unless it restarts, still needs the reloadable keys now: the
         * /metrics socket and token above all. */
        master_child *st = master_child_find(m, QD_ROLE_STATS);
        if (st != NULL && st->running && st->ctl != NULL && st->state != MS_STOPPING)
            master_child_send_config(st, 0);
        goto out;
    }

    /* Phase one: push; phase two happens as CONFIG_DONE messages arrive. */
    qd_buf_reset(&m->reload_errors);
    m->reload_id = master_next_id(m);
    m->reload_waiting = 0;
    for (int i = 0; i < m->child_count; i++) {
        master_child *c = m->children[i];
        if (!c->running || c->ctl == NULL || c->state == MS_STOPPING)
            continue;
        master_child_send_config(c, m->reload_id);
        m->reload_waiting++;
    }
    qd_info("reloading configuration from %s", m->conf_path);
    if (m->reload_waiting == 0) {
        m->reload_id = 0;
        qd_buf_printf(msg, "reloaded\n");
    } else {
        *reload_id = m->reload_id;
        m->reload_timer.data = m;
        uv_timer_start(&m->reload_timer, on_reload_timer, MASTER_RELOAD_WAIT_MS, 0);
    }
    rv = 0;
out:
    qd_conf_release(&next);
    qd_buf_release(&errs);
    qd_buf_release(&names);
    return rv;
}
