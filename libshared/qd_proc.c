/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_proc - process roles and event names
 * SYNOPSIS
 *	qd_role_name(), qd_role_parse(), qd_proc_event_name()
 */
#include "config.h"

/* system */
#include <string.h>

/* libshared */
#include "qd_proc.h"

static const char *const role_names[QD_ROLE_COUNT] = {
    [QD_ROLE_MASTER] = "master", [QD_ROLE_LISTENER] = "listener", [QD_ROLE_WORKER] = "worker",
    [QD_ROLE_APP] = "app",       [QD_ROLE_STATS] = "stats",   [QD_ROLE_UPSTREAM] = "upstream",
};

const char *qd_role_name(qd_role role)
{
    if ((int)role < 0 || role >= QD_ROLE_COUNT)
        return "unknown";
    return role_names[role];
}

int qd_role_parse(const char *s)
{
    for (int i = 0; i < QD_ROLE_COUNT; i++)
        if (strcmp(s, role_names[i]) == 0)
            return i;
    return -1;
}

const char *qd_proc_event_name(int ev)
{
    switch (ev) {
    case QD_EV_START:
        return "start";
    case QD_EV_EXIT:
        return "exit";
    case QD_EV_RESTART:
        return "restart";
    case QD_EV_RELOAD:
        return "reload";
    case QD_EV_THROTTLE:
        return "throttle";
    default:
        return "unknown";
    }
}
