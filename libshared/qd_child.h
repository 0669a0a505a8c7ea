/* SPDX-License-Identifier: MIT */
#ifndef QD_CHILD_H
#define QD_CHILD_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "qd_buf.h"
#include "qd_chan.h"
#include "qd_conf.h"
#include "qd_ipc.h"
#include "qd_metrics.h"
#include "qd_proc.h"

/*
 * The skeleton every daemon the master execs is built on (Postfix's
 * libmaster): argv parsing (-i instance, -g generation, -l stderr|syslog,
 * -v level, or -V level: kept whatever log_level says), logging, the control channel on QD_FD_MASTER, the first
 * configuration from the master, privilege drop, reload, stop, the periodic
 * status report, and exit when the master goes away (no orphans).
 */

typedef struct qd_child qd_child;

typedef struct qd_child_ops {
    /*
     * configure applies |conf|. On the first call (|first|) it runs with
     * the privileges the daemon was started with, before the drop; it may
     * open what it needs. Returns 0, or -1 with a one-line reason in |err|
     * (the first configuration failing is fatal; a reload failing keeps the
     * old configuration).
     */
    int (*configure)(qd_child *c, const qd_conf *conf, bool first, qd_buf *err);
    /* started runs once, after the privilege drop (open files as the daemon's user). */
    void (*started)(qd_child *c);
    /* jail returns the chroot directory for this daemon, or NULL. */
    const char *(*jail)(qd_child *c, const qd_conf *conf);
    /* channel takes ownership of |fd|, a channel to |role|[|instance|]. */
    void (*channel)(qd_child *c, qd_role role, uint32_t instance, int fd);
    /* message handles other messages from the master; may take its fds. */
    void (*message)(qd_child *c, qd_ipc_msg *m);
    /*
     * stop begins a graceful stop: finish work within |deadline_ms| and
     * call qd_child_exit. NULL means exit at once.
     */
    void (*stop)(qd_child *c, uint32_t deadline_ms);
    /* status adds the daemon's counters to the periodic status report. */
    void (*status)(qd_child *c, qd_ipc_msg *m);
    /*
     * metrics fills |m| (zeroed) with the daemon's running totals and
     * gauges (qd_metrics.def); qd_child sends them to stats as
     * QD_MSG_METRICS every stats_interval and once more at exit. NULL: the
     * daemon sends none, or its own (the worker).
     */
    void (*metrics)(qd_child *c, qd_metrics *m);
} qd_child_ops;

struct qd_child {
    qd_role role;
    int instance; /* -1 for single-instance daemons */
    int slot;     /* a worker's place in its generation (-s; its metrics' worker label), or -1 */
    uint32_t generation;
    uv_loop_t *loop;
    qd_conf conf;
    bool configured;
    bool stopping;
    uint32_t stop_flags; /* the F_FLAGS of the master's QD_MSG_STOP (QD_STOP_F_*) */
    bool level_fixed; /* -V: log_level does not change the log level */
    const qd_child_ops *ops;
    void *data;
    qd_chan *ctl; /* the control channel on QD_FD_MASTER (queued sends) */
    qd_chan *stats; /* the send end of the stats channel on QD_FD_STATS (lossy); NULL in stats */
    uv_timer_t status_timer;
    uv_timer_t metrics_timer; /* every stats_interval, with ops->metrics */
    uint64_t started_ms;      /* wall clock at the start: the metrics' source */
    uv_signal_t sigterm;
    uint64_t bad_messages;
};

/*
 * qd_child_init parses |argv|, starts logging as |role|, and prepares the
 * loop and the control channel. Exits with status 1 on a usage error.
 */
void qd_child_init(qd_child *c, qd_role role, int argc, char **argv, const qd_child_ops *ops,
                   void *data);

/* qd_child_run runs the loop until qd_child_exit; returns the exit status. */
int qd_child_run(qd_child *c);

/*
 * qd_child_msg starts a message to the master in the control channel (see
 * qd_chan_msg); qd_child_queue queues it. qd_child_send queues |m|,
 * composed elsewhere. A failure is logged. Return 0 or -1 (the master
 * gone: the process exits).
 */
qd_ipc_msg *qd_child_msg(qd_child *c, uint16_t type, uint32_t id);
int qd_child_queue(qd_child *c);
int qd_child_send(qd_child *c, const qd_ipc_msg *m);

/* qd_child_exit ends the process with |status| after flushing logs. */
void qd_child_exit(qd_child *c, int status) __attribute__((noreturn));

/*
 * qd_child_jail_empty is the jail op of daemons that need no files after
 * their start: runtime_directory/empty when chroot is on, else NULL.
 */
const char *qd_child_jail_empty(qd_child *c, const qd_conf *conf);

/* qd_child_bad_message logs (rate-limited) and counts a dropped message. */
void qd_child_bad_message(qd_child *c, const char *from, int err);

#endif /* QD_CHILD_H */
