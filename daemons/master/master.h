/* SPDX-License-Identifier: MIT */
#ifndef QD_MASTER_H
#define QD_MASTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "qd_buf.h"
#include "qd_chan.h"
#include "qd_conf.h"
#include "qd_ipc.h"
#include "qd_metrics.h"
#include "qd_proc.h"

#define MASTER_MAX_CHILDREN 300
#define MASTER_MAX_CLIENTS 16
#define MASTER_RECENT_EVENTS 64   /* process events kept for a restarted stats */
#define MASTER_RESEND_WINDOW_MS 2000 /* ... those this long before it died are sent again */
/*
 * Escrowed SOCKETS messages of up to QD_IPC_MAX_FDS (16) descriptors: 1024
 * worker/address pairs with tcp = no, 512 with tcp = yes (a pair's UDP and
 * TCP sockets share a message), e.g. 256 workers on two addresses.
 */
#define MASTER_MAX_ESCROW 256
#define MASTER_MAX_OVERRIDES 32
/* A child that dies sooner than this after starting counts as a rapid failure. */
#define MASTER_RAPID_MS 10000
/* First back-off step after the first rapid failure; doubles each time. */
#define MASTER_BACKOFF_MS 250
/* From this many rapid failures in a row the child is "throttled". */
#define MASTER_THROTTLE_AFTER 5
/* How long a reload waits for every daemon to confirm the new configuration. */
#define MASTER_RELOAD_WAIT_MS 5000
/* ... and for a new generation of workers to take over new connections. */
#define MASTER_GEN_WAIT_MS 15000
/* Generations of workers alive at once: one serving, the others draining. */
#define MASTER_MAX_GENS 8
#define MASTER_MAX_WORKER_IDS 256 /* one byte of the CID */
/* listen(2) backlog of the /metrics socket (scrapes waiting while stats restarts) */
#define MASTER_METRICS_BACKLOG 64
/* How long quicctl upgrade waits for the new master to take over. */
#define MASTER_UPGRADE_WAIT_MS 30000
/* How long a new master that failed may take to exit before it is killed. */
#define MASTER_UPGRADE_KILL_MS 10000

/* A set of the listener's QD_MSG_SOCKETS messages, as the listener sent them */
typedef struct master_escrow {
    qd_ipc_msg *msg[MASTER_MAX_ESCROW];
    size_t count;
    bool overflow; /* the current set did not fit: keep none of it */
} master_escrow;

typedef enum master_state {
    MS_STARTING, /* spawned, not yet READY */
    MS_RUNNING,  /* READY received */
    MS_BACKOFF,  /* dead, restart scheduled */
    MS_THROTTLED, /* dead, crash loop: restart scheduled far away */
    MS_STOPPING, /* asked to stop */
} master_state;

typedef struct master master;

/*
 * A generation of workers (master_gen.c): the workers started by one
 * configuration. The newest one that is ready serves new connections; the
 * older ones drain what they have and are then forgotten.
 */
typedef struct master_gen {
    uint32_t gen;
    bool tcp;        /* its workers take TCP listen sockets */
    bool serving;    /* the steering programs send new connections to it */
    bool retiring;   /* its workers were told to stop */
    int workers;     /* how many it was started with */
    size_t naddrs;
    char (*addrs)[80]; /* its listen addresses, in its order */
    /* a previous master's generation (binary upgrade): its workers are not
     * ours; their ids stay reserved and steered to them until it exits */
    bool foreign;
    uint8_t ids[256];
    int nids;
} master_gen;

typedef struct master_child {
    master *m;
    qd_role role;
    int instance; /* -1 for single-instance roles; a worker's id (qd_cid.h) */
    int slot;     /* a worker's place in its generation (0 to workers - 1), else -1 */
    uint32_t generation; /* the generation it was started for */
    master_state state;
    uv_process_t proc;
    bool has_proc;   /* proc handle open (until its close callback) */
    bool running;    /* process alive */
    pid_t pid;
    qd_chan *ctl; /* control channel (queued sends); NULL when closed */
    uv_timer_t timer; /* restart back-off, or kill deadline while stopping */
    uint64_t started_ms;
    uint64_t next_start_ms;
    uint32_t restarts;
    uint32_t rapid_failures;
    bool replace;  /* stop, then start again at once (reload) */
    bool retire;   /* stop, then remove (fewer workers) */
    uint32_t config_id; /* id of the CONFIG awaiting CONFIG_DONE, 0 if none */
    uint32_t connections;  /* a worker's live QUIC connections, last report */
    uint32_t tcp_conns;    /* a worker's live TLS/TCP connections, last report */
    uint32_t status_flags; /* QD_STATUS_F_* from the last status report */
    uint64_t send_failures; /* F_DROPS of its last status: channel messages it could not queue */
    uint32_t streams;
    uint32_t half_open, new_conns;   /* a worker's handshake load, last report */
    uint64_t retries, retry_drops;   /* a worker's Retry packets sent, Initials dropped */
    uint64_t udp_send_errors, udp_emsgsize; /* a worker's refused UDP sends, EMSGSIZE among them */
    uint64_t closed[4]; /* connections it closed for abuse: headers, resets, floods, protocol */
    uint64_t proxied, proxy_errors, proxy_retries; /* a worker's proxy counters */
    uint64_t rxq_drops;              /* a worker's UDP datagrams dropped for a full queue */
    uint32_t udp_rcvbuf, udp_sndbuf; /* ... and the smallest buffers the kernel granted */
    char *report; /* upstream: its servers' state from the last status report (F_TEXT) */
    qd_metrics *metrics; /* a worker's running totals from its last status report, or NULL */
    int exit_status;
    int exit_signal;
} master_child;

typedef struct master_client {
    qd_chan *ch; /* one message per record: quicctl of any release reads it */
    bool in_use;
    bool wants_stop_eof; /* keep open until the master exits */
    uint32_t reload_id;  /* request id of a pending reload reply, 0 if none */
    uint32_t request_id;
    master *m;
    /* a pending `quicctl conns` (master_control.c): one reply channel per worker */
    qd_chan *conns[MASTER_MAX_CHILDREN];
    int conns_pending;
    uint32_t conns_id;
    uv_timer_t *conns_timer;
    qd_buf conns_text;
} master_client;

struct master {
    uv_loop_t *loop;
    qd_conf conf;
    char *conf_path;
    char *overrides[MASTER_MAX_OVERRIDES];
    int override_count;
    bool foreground;
    qd_log_level cli_level;
    bool cli_level_set;

    master_child *children[MASTER_MAX_CHILDREN];
    int child_count;

    int stats_fds[2]; /* [0] send end (everyone), [1] receive end (stats) */
    qd_chan *stats;   /* the master's writes on stats_fds[0] */
    qd_ipc_msg *unsent; /* composed for a child without a control channel (not sent) */
    int devnull_fd;
    int lock_fd;
    int control_fd;
    uv_poll_t control_poll;
    master_client clients[MASTER_MAX_CLIENTS];
    char pid_path[4096];
    char sock_path[4096];

    uv_signal_t sighup, sigterm, sigint;
    uv_timer_t stop_timer;
    uv_timer_t reload_timer;
    uv_timer_t loss_timer; /* reports stats_drops every stats_interval */
    bool stopping;
    uint64_t started_ms;
    uint32_t generation;
    /*
     * The listener's sockets and secrets, escrowed so that a restarted
     * listener gets the same sockets back (their order in each reuseport
     * group is what CID steering relies on) and the same secrets (tokens
     * and session tickets stay valid), TCP listen sockets included (their
     * accept queues too). Kept and returned as the listener sent them,
     * across generations and upgrades (the next master gets them).
     */
    master_escrow escrow;
    /* worker generations, oldest first (master_gen.c) */
    master_gen gens[MASTER_MAX_GENS];
    int ngens;
    uint32_t layout_id;      /* the last QD_MSG_LAYOUT sent to the listener */
    uint32_t switch_id;      /* the LAYOUT that hands new connections to a new generation */
    uint32_t gen_reload_id;  /* the reload waiting for that switch, 0 if none */
    uv_timer_t gen_timer;    /* ... and its deadline */
    qd_buf reload_text;      /* what a pending reload says when it succeeds */
    /* binary upgrade (master_upgrade.c) */
    char exe_path[4096];   /* the binary this master was started from */
    int upgrade_fd;        /* quicd -U: the channel from the previous master, else -1 */
    qd_chan *handoff;      /* to the previous master, or to the next one */
    pid_t handoff_pid;     /* the other master */
    bool upgrading;        /* old side: the next master is starting */
    bool handed_over;      /* old side: the next master serves; we drain and exit */
    bool taken_over;       /* new side: we serve; the previous master drains */
    bool owns_paths;       /* remove the pid file and control socket at exit */
    uv_process_t next_proc;
    bool next_proc_open;   /* the handle (closed after the process exited) */
    bool next_running;     /* the next master's process has not exited */
    bool handoff_failed;   /* sending it the handoff failed: it was killed */
    /*
     * Old side: the next master's listener's sockets, forwarded while it
     * starts. Its new slots joined the reuseport groups after ours: if it
     * fails, they become our escrow, so that they stay open and no
     * socket a later listener opens lands at another index.
     */
    master_escrow next_escrow;
    char upgrade_failure[4400]; /* why the attempt failed; answered once it exited */
    uv_timer_t upgrade_timer;
    uint32_t upgrade_wait_id; /* the quicctl upgrade waiting for the outcome */
    uint32_t reloads;
    uint32_t next_id;
    uint32_t reload_id;      /* pending reload, 0 if none */
    int reload_waiting;      /* CONFIG_DONE still expected */
    qd_buf reload_errors;
    uint64_t stats_drops;          /* records the full stats channel refused */
    qd_metrics metrics;  /* its counters for /metrics: restarts, reloads */
    uint64_t metrics_since_ms; /* wall clock, for stats to tell this master from the next */
    /* The last process events, sent again to a restarted stats daemon
     * (master_record_event): stats may have read them and died before
     * committing; it ignores the copies of those it had written. */
    struct master_event {
        uint64_t time_ms;
        uint32_t ev, role, instance, pid, generation, restarts, exit_status, signal;
        bool has_child, has_exit;
    } recent_events[MASTER_RECENT_EVENTS];
    uint32_t recent_next;      /* ring position of the next event */
    uint64_t stats_exit_ms;    /* wall clock of the last stats exit; 0: none */
    uint64_t stats_drops_reported; /* ... of which a REC_LOSS reached the channel */
    uint64_t bad_messages;
    uint64_t ctl_send_failures; /* messages to a daemon its control channel refused */
    /* /metrics (master_metrics.c): the listening socket of metrics_listen, and
     * where it is bound ("" and -1: off); stats gets a duplicate */
    int metrics_fd;
    qd_conf_addr metrics_addr;
    char metrics_bound[80];
};

/* master_child.c */
void master_children_start(master *m);
master_child *master_child_add(master *m, qd_role role, int instance);
/* master_child_add_worker starts worker |id|, the |slot|-th of its generation (its metrics'
 * worker label). */
master_child *master_child_add_worker(master *m, int id, int slot);
master_child *master_child_find(master *m, qd_role role);
void master_upstream_sync(master *m);
void master_child_stop(master_child *c, bool kill_now);
void master_child_send_config(master_child *c, uint32_t id);
/* master_child_send queues |msg| on the control channel of |c|; 0, or -1 (logged, counted). */
int master_child_send(master_child *c, const qd_ipc_msg *msg);
/*
 * master_child_msg starts a message in the control channel of |c| (see
 * qd_chan_msg); master_child_queue queues it: 0, or -1 (logged, counted;
 * also when |c| has no channel).
 */
qd_ipc_msg *master_child_msg(master_child *c, uint16_t type, uint32_t id);
int master_child_queue(master_child *c);
void master_escrow_clear(master_escrow *e);
void master_escrow_add(master_escrow *e, qd_ipc_msg *msg);
void master_children_stop_all(master *m);
/*
 * master_app_for - the app the workers of |generation| talk to: the newest
 * app not newer than it (a reload that changes the app's settings starts
 * an app with the new generation), or NULL; UINT32_MAX: the newest app
 */
master_child *master_app_for(master *m, uint32_t generation);
/* master_child_replace - stop a daemon and start it again (the current configuration) */
void master_child_replace(master_child *c);
int master_children_alive(const master *m);
const char *master_state_name(master_state s);
/* master_child_name returns "worker[2]" or "app" (static buffer). */
const char *master_child_name(const master_child *c);
/* master_stdio fills stdio[0..2] for a child: /dev/null, or the master's
 * stdout and stderr in the foreground. */
void master_stdio(const master *m, uv_stdio_container_t *stdio);
void master_record_event(master *m, qd_proc_event ev, const master_child *c);
void master_record_losses_start(master *m);
int master_worker_count(const master *m);

/* master_control.c */
int master_control_open(master *m);
void master_control_close(master *m);
void master_control_reload_done(master *m);
/* master_control_answer - the reply a client waits for under |id| */
void master_control_answer(master *m, uint32_t id, uint32_t status, const char *text);
/* master_control_start - accept quicctl on a handed-over control socket */
void master_control_start(master *m);
/* master_control_stop_accepting - the next master has the control socket now */
void master_control_stop_accepting(master *m);

/* master_reload.c */
int master_load_config(master *m, qd_conf *out, qd_buf *errs);
int master_reload(master *m, uint32_t *reload_id, qd_buf *msg);
void master_reload_ack(master *m, master_child *c, uint32_t id, uint32_t status, const char *why);

/* master_gen.c */
void master_gen_init(master *m);
void master_gen_layout_put(master *m, qd_ipc_msg *msg);
void master_gen_forget_foreign(master *m);
/* master_gen_arm_timer - the first generation of an upgrade must serve in time */
void master_gen_arm_timer(master *m);
/* master_gen_alloc_ids - the |n| lowest worker ids nobody has; 0 or -1 */
int master_gen_alloc_ids(master *m, int n, uint8_t *ids);
int master_gen_begin(master *m, const char *names, uint32_t *reload_id, qd_buf *msg);
void master_gen_send_layout(master *m, master_child *listener);
void master_gen_check(master *m);
void master_gen_layout_ack(master *m, const qd_ipc_msg *msg);
void master_gen_prune(master *m);
master_gen *master_gen_find(master *m, uint32_t gen);
int master_gen_workers(const master *m, uint32_t gen, int *ready);
/* master_next_id - a fresh request id, never 0 */
uint32_t master_next_id(master *m);

/* master_upgrade.c */
int master_upgrade_start(master *m, uint32_t *wait_id, qd_buf *msg);
void master_upgrade_receive(master *m);
void master_upgrade_taken_over(master *m);
void master_upgrade_failed(master *m, const char *why);
void master_upgrade_init(master *m);
/* master_upgrade_forward - the new master passes its listener's sockets to the previous one */
void master_upgrade_forward(master *m, const qd_ipc_msg *msg);

/* master_metrics.c */
/*
 * master_metrics_check - the configuration's /metrics settings beyond their
 * syntax: a readable, non-empty metrics_token_file, a metrics_listen port
 * that is not a listen address's TCP port. Appends each error to |errs| as
 * "file:line: key: reason"; returns 0 or -1.
 */
int master_metrics_check(const qd_conf *conf, qd_buf *errs);
/* master_metrics_open - bind m->conf.metrics_listen at start; 0, or -1 with |why| */
int master_metrics_open(master *m, char *why, size_t len);
/*
 * master_metrics_reload - before a reload takes |next|: bind its
 * metrics_listen if it changed and close the old socket. Returns 0, or -1
 * with "reload failed: ..." in |msg| (and logged): the old socket stays.
 */
int master_metrics_reload(master *m, const qd_conf *next, qd_buf *msg);
/* master_metrics_send - QD_MSG_METRICS_HTTP to stats, before each CONFIG */
void master_metrics_send(master_child *c);

/* master.c */
void master_stop(master *m, const char *why);
void master_finish(master *m);
void master_stats_buffer(master *m);
void master_write_pid(master *m);

#endif /* QD_MASTER_H */
