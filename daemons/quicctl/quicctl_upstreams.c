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
 *	down_by= saying which marked a server down; those keys and connects=
 *	may be missing from an older daemon's lines (shown as 0 and "-").
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
       CONNECTS, CHECK, ADDRESS, WEIGHT, MAX_CONNS, BACKUP, LAST, NFIELDS };
static const char *const names[NFIELDS] = {"group", "server", "state", "since_ms", "checks",
                                           "failures", "passive_failures", "passive_run",
                                           "down_by", "connects", "check", "address", "weight",
                                           "max_conns", "backup", "last"};

/* is_number - the field's JSON value is a number */
static bool is_number(int k)
{
    return k == SINCE || k == CHECKS || k == FAILURES || k == PASSIVE_FAILURES ||
           k == PASSIVE_RUN || k == CONNECTS || k == WEIGHT || k == MAX_CONNS;
}

/* optional_default - the value of a key an older daemon does not send, or NULL: required */
static const char *optional_default(int k)
{
    if (k == PASSIVE_FAILURES || k == PASSIVE_RUN || k == CONNECTS)
        return "0";
    return k == DOWN_BY ? "-" : NULL;
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
        qd_buf_printf(&out, "%-16s %-30s %-5s %-7s %8s %8s %8s %8s %8s %s\n", "GROUP", "SERVER",
                      "STATE", "DOWN_BY", "FOR_S", "CHECKS", "FAILS", "PFAILS", "CONNECTS",
                      "LAST CHECK");
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[NFIELDS];
        if (!split(line, f))
            continue;
        unsigned long long since = strtoull(f[SINCE], NULL, 10);
        unsigned long long for_s = now > since ? (now - since) / 1000 : 0;
        if (!json) {
            qd_buf_printf(&out, "%-16s %-30s %-5s %-7s %8llu %8s %8s %8s %8s %s%s\n", f[GROUP],
                          f[SERVER], f[STATE], f[DOWN_BY], for_s, f[CHECKS], f[FAILURES],
                          f[PASSIVE_FAILURES], f[CONNECTS],
                          strcmp(f[CHECK], "-") == 0 ? "(no checks)" : f[LAST],
                          strcmp(f[BACKUP], "1") == 0 ? " [backup]" : "");
            continue;
        }
        qd_buf_printf(&out, "%s\n  {", n++ ? "," : "");
        for (int k = 0; k < NFIELDS; k++) {
            qd_buf_printf(&out, "%s\"%s\": ", k ? ", " : "", names[k]);
            if (is_number(k))
                qd_buf_printf(&out, "%llu", strtoull(f[k], NULL, 10));
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
