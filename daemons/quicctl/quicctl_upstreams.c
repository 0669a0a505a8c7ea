/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	quicctl_upstreams - the upstream servers of the reverse proxy
 * SYNOPSIS
 *	quicctl_upstreams()
 * DESCRIPTION
 *	Asks the master for the upstream daemon's last report (one line per
 *	server, key=value pairs with last= taking the rest of the line) and
 *	prints it as a table or as JSON. Active checks (checks=, failures=)
 *	and passive failures (passive_failures=, passive_run=: what the
 *	workers and the daemon's connects for them saw) are shown apart, with
 *	down_by= saying which marked a server down. active=, idle=,
 *	requests= and fails= are what the workers count at the server
 *	(connections carrying a request and kept idle, requests, failed
 *	ones), summed; workers= has them per worker
 *	(instance:active/idle/requests/fails,...), an array in JSON. Those
 *	keys and connects= may be missing from an older daemon's lines (shown
 *	as 0, "-" and []).
 * DIAGNOSTICS
 *	No master, no proxy_table or no report yet: one line on stderr, exit 1.
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* libshared */
#include "qd_buf.h"
#include "qd_time.h"

/* local */
#include "quicctl.h"

enum { GROUP, SERVER, STATE, SINCE, CHECKS, FAILURES, PASSIVE_FAILURES, PASSIVE_RUN, DOWN_BY,
       CONNECTS, CHECK, ADDRESS, WEIGHT, MAX_CONNS, BACKUP, ACTIVE, IDLE, REQUESTS, FAILS, WORKERS,
       LAST, NFIELDS };
static const char *const names[NFIELDS] = {"group", "server", "state", "since_ms", "checks",
                                           "failures", "passive_failures", "passive_run",
                                           "down_by", "connects", "check", "address", "weight",
                                           "max_conns", "backup", "active", "idle", "requests",
                                           "fails", "workers", "last"};

/* is_number - the field's JSON value is a number */
static bool is_number(int k)
{
    return k == SINCE || k == CHECKS || k == FAILURES || k == PASSIVE_FAILURES ||
           k == PASSIVE_RUN || k == CONNECTS || k == WEIGHT || k == MAX_CONNS || k == ACTIVE ||
           k == IDLE || k == REQUESTS || k == FAILS;
}

/* optional_default - the value of a key an older daemon does not send, or NULL: required */
static const char *optional_default(int k)
{
    if (k == PASSIVE_FAILURES || k == PASSIVE_RUN || k == CONNECTS || k == ACTIVE || k == IDLE ||
        k == REQUESTS || k == FAILS)
        return "0";
    return k == DOWN_BY || k == WORKERS ? "-" : NULL;
}

/* split - the line's fields by name (pointers into |line|, which is cut up); false if malformed */
static bool split(char *line, char *f[NFIELDS])
{
    memset(f, 0, NFIELDS * sizeof(f[0]));
    for (char *p = line; p != NULL && *p;) {
        char *eq = strchr(p, '=');
        if (eq == NULL)
            return false;
        *eq = '\0';
        int k = 0;
        while (k < NFIELDS && strcmp(p, names[k]) != 0)
            k++;
        char *v = eq + 1, *sp = k == LAST ? NULL : strchr(v, ' ');
        if (sp != NULL)
            *sp = '\0';
        if (k < NFIELDS)
            f[k] = v;
        p = sp ? sp + 1 : NULL;
    }
    for (int k = 0; k < NFIELDS; k++)
        if (f[k] == NULL && (f[k] = (char *)optional_default(k)) == NULL)
            return false;
    return true;
}

/*
 * put_workers - workers= (instance:active/idle/requests/fails, comma-separated, or "-") as a
 * JSON array of objects; |v| is cut up, and an item out of shape is left out
 */
static void put_workers(qd_buf *out, char *v)
{
    int n = 0;

    qd_buf_printf(out, "[");
    for (char *save = NULL, *it = strtok_r(v, ",", &save); it != NULL;
         it = strtok_r(NULL, ",", &save)) {
        unsigned instance, active, idle;
        unsigned long long requests, fails;
        int end = 0;
        if (sscanf(it, "%u:%u/%u/%llu/%llu%n", &instance, &active, &idle, &requests, &fails,
                   &end) != 5 ||
            it[end] != '\0')
            continue;
        qd_buf_printf(out,
                      "%s{\"instance\": %u, \"active\": %u, \"idle\": %u, \"requests\": %llu, "
                      "\"fails\": %llu}",
                      n++ ? ", " : "", instance, active, idle, requests, fails);
    }
    qd_buf_printf(out, "]");
}

int quicctl_upstreams(quicctl *q, bool json)
{
    static qd_ipc_msg reply;
    static char text[QD_IPC_MAX_BODY];
    uint32_t status = 1;
    int fd = quicctl_connect(q, false), n = 0;
    uint64_t now = qd_time_real_ms();
    qd_buf out;

    if (quicctl_request(fd, QD_MSG_CTL_UPSTREAMS, &reply, 5000) < 0)
        quicctl_die("no answer from quicd");
    qd_ipc_get_u32(&reply, QD_F_STATUS, &status);
    if (qd_ipc_get_str(&reply, QD_F_TEXT, text, sizeof(text)) < 0 || status != 0)
        quicctl_die("%s", text);
    qd_buf_init(&out);
    if (json)
        qd_buf_printf(&out, "{\"servers\": [");
    else
        qd_buf_printf(&out, "%-16s %-30s %-5s %-7s %8s %8s %8s %8s %8s %6s %6s %9s %9s %s\n",
                      "GROUP", "SERVER", "STATE", "DOWN_BY", "FOR_S", "CHECKS", "FAILS", "PFAILS",
                      "CONNECTS", "ACTIVE", "IDLE", "REQUESTS", "REQ_FAILS", "LAST CHECK");
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[NFIELDS];
        if (!split(line, f))
            continue;
        unsigned long long since = strtoull(f[SINCE], NULL, 10);
        unsigned long long for_s = now > since ? (now - since) / 1000 : 0;
        if (!json) {
            qd_buf_printf(&out,
                          "%-16s %-30s %-5s %-7s %8llu %8s %8s %8s %8s %6s %6s %9s %9s %s%s\n",
                          f[GROUP], f[SERVER], f[STATE], f[DOWN_BY], for_s, f[CHECKS], f[FAILURES],
                          f[PASSIVE_FAILURES], f[CONNECTS], f[ACTIVE], f[IDLE], f[REQUESTS],
                          f[FAILS], strcmp(f[CHECK], "-") == 0 ? "(no checks)" : f[LAST],
                          strcmp(f[BACKUP], "1") == 0 ? " [backup]" : "");
            continue;
        }
        qd_buf_printf(&out, "%s\n  {", n++ ? "," : "");
        for (int k = 0; k < NFIELDS; k++) {
            qd_buf_printf(&out, "%s\"%s\": ", k ? ", " : "", names[k]);
            if (is_number(k))
                qd_buf_printf(&out, "%llu", strtoull(f[k], NULL, 10));
            else if (k == WORKERS)
                put_workers(&out, f[k]);
            else if (k == BACKUP)
                qd_buf_printf(&out, "%s", strcmp(f[k], "1") == 0 ? "true" : "false");
            else if ((k == CHECK || k == ADDRESS || k == LAST || k == DOWN_BY) &&
                     strcmp(f[k], "-") == 0)
                qd_buf_printf(&out, "null");
            else
                qd_buf_json_string(&out, f[k]);
        }
        qd_buf_printf(&out, "}");
    }
    if (json)
        qd_buf_printf(&out, "%s]}\n", n ? "\n" : "");
    fputs(qd_buf_str(&out), stdout);
    qd_buf_release(&out);
    return 0;
}
