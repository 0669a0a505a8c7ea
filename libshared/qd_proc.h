/* SPDX-License-Identifier: MIT */
#ifndef QD_PROC_H
#define QD_PROC_H

/*
 * Process roles, the fixed descriptor numbers channels land on in exec'd
 * children (Postfix MASTER_STATUS_FD), and process-event codes.
 */

typedef enum qd_role {
    QD_ROLE_MASTER,
    QD_ROLE_LISTENER,
    QD_ROLE_WORKER,
    QD_ROLE_APP,
    QD_ROLE_STATS,
    QD_ROLE_UPSTREAM, /* only while proxy_table is set */
    QD_ROLE_COUNT
} qd_role;

/* The control channel to the master (SOCK_SEQPACKET). */
#define QD_FD_MASTER 3
/* The stats channel (SOCK_DGRAM): send end in every child, receive end in stats. */
#define QD_FD_STATS 4

typedef enum qd_proc_event {
    QD_EV_START = 1,   /* a child was started */
    QD_EV_EXIT = 2,    /* a child exited (status or signal) */
    QD_EV_RESTART = 3, /* a child was restarted after an unexpected exit */
    QD_EV_RELOAD = 4,  /* the configuration was reloaded */
    QD_EV_THROTTLE = 5 /* restarts of a crash-looping child are throttled */
} qd_proc_event;

/* qd_role_name returns "master", "listener", "worker", "app", "stats" or "upstream". */
const char *qd_role_name(qd_role role);

/* qd_role_parse returns the role named |s|, or -1. */
int qd_role_parse(const char *s);

/* qd_proc_event_name returns "start", "exit", "restart", "reload" or "throttle". */
const char *qd_proc_event_name(int ev);

#endif /* QD_PROC_H */
