/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	master_upgrade - quicctl upgrade: new binaries without closing a socket
 * SYNOPSIS
 *	master_upgrade_start(), master_upgrade_receive(), master_upgrade_init(),
 *	master_upgrade_taken_over(), master_upgrade_failed()
 * DESCRIPTION
 *	The running master (the old one) starts the binary it was started
 *	from (its path as it was then, so a newly installed file at that path
 *	is what runs) as `quicd -U 3 ...` with the same options, in a session
 *	of its own, and hands it over a channel on descriptor 3:
 *
 *	  HANDOFF  its generation, its pid, the locked pid file and the
 *	           listening control socket (descriptors), and the /metrics
 *	           socket with its address (F_ADDR) when there is one;
 *	  LAYOUT   its live worker generations (QD_MSG_LAYOUT's format);
 *	  SOCKETS  the escrow: every socket slot of every address and the
 *	           token, reset and ticket keys and the CID tag;
 *	  READY    the end.
 *
 *	The new master starts its own stats, app, workers and listener as at
 *	any start, but its workers take ids the old ones do not have and its
 *	listener takes back the escrowed sockets and steers the old master's
 *	worker ids to their slots. Once its generation is ready (master_gen.c)
 *	it switches new connections to it, writes its pid and answers READY;
 *	the old master then answers quicctl, closes its copy of the control
 *	socket, and stops like at quicctl stop, except that the pid file and
 *	the control socket stay (they are the new master's now): its workers
 *	drain and exit, then it does. The new master forgets the old
 *	generations when the channel closes.
 *
 *	While it starts, the new master forwards its listener's escrow
 *	(SOCKETS) to the old one. If it exits before taking over, says it
 *	cannot (CONFIG_DONE with the reason: its workers did not start in
 *	time, say), or does not take over within MASTER_UPGRADE_WAIT_MS, the
 *	old master keeps serving: the forwarded escrow becomes its own and a
 *	new listener of its own takes those sockets back (the slots the new
 *	listener added joined the reuseport groups after ours and must stay
 *	open, or the kernel would move another socket into their index), or
 *	without one it restores its steering. It answers with the reason once
 *	the new master has exited (killed after MASTER_UPGRADE_KILL_MS), so
 *	that no two attempts overlap.
 * DIAGNOSTICS
 *	quicctl gets "upgrade failed: ..." and exit status 1.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_err.h"
#include "qd_log.h"

/* local */
#include "master.h"


/* --- the old master --------------------------------------------------------- */

/* upgrade_answer - answer quicctl upgrade: the attempt is over */
static void upgrade_answer(master *m, int status, const char *text)
{
    master_control_answer(m, m->upgrade_wait_id, status, text);
    m->upgrade_wait_id = 0;
    m->upgrading = false;
    m->upgrade_failure[0] = '\0';
    uv_timer_stop(&m->upgrade_timer);
}

static void on_kill_timer(uv_timer_t *t)
{
    master *m = t->data;

    if (m->next_running) {
        qd_warn("the new master (pid %ld) did not exit within %ds of failing; killing it",
                (long)m->handoff_pid, MASTER_UPGRADE_KILL_MS / 1000);
        uv_process_kill(&m->next_proc, SIGKILL);
    }
}

/*
 * upgrade_fail - the attempt failed (|why|): we keep serving. The answer
 * waits until the new master has exited, so that the next attempt never
 * overlaps it; its listener's sockets become our escrow (the slots it
 * added stay open at their index) and a new listener of ours takes them
 * back, closing the addresses we do not serve.
 */
static void upgrade_fail(master *m, const char *why)
{
    if (m->upgrade_failure[0] != '\0')
        return;
    snprintf(m->upgrade_failure, sizeof(m->upgrade_failure),
             "upgrade failed: %s; quicd (pid %ld) keeps serving\n", why, (long)getpid());
    qd_err("%s", m->upgrade_failure);
    if (m->handoff != NULL)
        qd_chan_close(m->handoff);
    m->handoff = NULL;
    if (m->next_escrow.count > 0 && !m->next_escrow.overflow) {
        master_escrow_clear(&m->escrow);
        m->escrow = m->next_escrow;
        m->next_escrow.count = 0;
        qd_info("keeping the sockets the new master's listener opened; our listener takes "
                "them back");
        master_child_replace(master_child_find(m, QD_ROLE_LISTENER));
    } else {
        /* Its listener may have steered already: ours steers again. */
        master_gen_send_layout(m, master_child_find(m, QD_ROLE_LISTENER));
    }
    master_escrow_clear(&m->next_escrow);
    if (!m->next_running) {
        upgrade_answer(m, 1, m->upgrade_failure);
        return;
    }
    uv_timer_start(&m->upgrade_timer, on_kill_timer, MASTER_UPGRADE_KILL_MS, 0);
}

/* handed_over - the new master serves: drain and exit, leaving it the paths */
static void handed_over(master *m)
{
    char text[4400];
    int conns = 0;

    for (int i = 0; i < m->child_count; i++)
        conns += (int)(m->children[i]->connections + m->children[i]->tcp_conns);
    snprintf(text, sizeof(text),
             "upgraded: quicd (pid %ld, %s) serves new connections; the previous master "
             "(pid %ld) drains %d connection%s and exits\n",
             (long)m->handoff_pid, m->exe_path, (long)getpid(), conns, conns == 1 ? "" : "s");
    qd_notice("%s", text);
    upgrade_answer(m, 0, text);
    master_escrow_clear(&m->next_escrow); /* the new master's now */
    m->handed_over = true;
    m->owns_paths = false;
    master_control_stop_accepting(m);
    master_stop(m, "upgraded");
}

static void on_next_msg(qd_chan *ch, qd_ipc_msg *msg)
{
    master *m = ch->data;
    char why[1024] = "the new master gave up";
    uint32_t status = 1;

    if (!m->upgrading || m->upgrade_failure[0] != '\0')
        return;
    if (msg->type == QD_MSG_READY) {
        handed_over(m);
        return;
    }
    if (msg->type == QD_MSG_SOCKETS) {
        master_escrow_add(&m->next_escrow, msg);
        return;
    }
    if (msg->type == QD_MSG_CONFIG_DONE) {
        qd_ipc_get_u32(msg, QD_F_STATUS, &status);
        qd_ipc_get_str(msg, QD_F_TEXT, why, sizeof(why));
        why[strcspn(why, "\n")] = '\0';
        if (status != 0)
            upgrade_fail(m, why);
        return;
    }
    qd_warn("dropped unexpected %s message from the new master", qd_ipc_type_name(msg->type));
}

static void on_next_close(qd_chan *ch)
{
    master *m = ch->data;

    m->handoff = NULL; /* its exit (on_next_exit) says why, or it has taken over */
}

static void on_next_closed(uv_handle_t *h)
{
    master *m = h->data;

    m->next_proc_open = false;
}

static void on_next_exit(uv_process_t *p, int64_t status, int sig)
{
    master *m = p->data;
    char why[4400];

    m->next_running = false;
    if (sig == SIGKILL && m->handoff_failed)
        snprintf(why, sizeof(why), "cannot hand over to %s (pid %ld); it was killed",
                 m->exe_path, (long)p->pid);
    else if (sig)
        snprintf(why, sizeof(why), "%s (pid %ld) was killed by signal %d before it took over",
                 m->exe_path, (long)p->pid, sig);
    else
        snprintf(why, sizeof(why), "%s (pid %ld) exited with status %lld before it took over",
                 m->exe_path, (long)p->pid, (long long)status);
    if (m->upgrading) {
        upgrade_fail(m, why); /* unless it had failed already */
        upgrade_answer(m, 1, m->upgrade_failure);
    }
    uv_close((uv_handle_t *)p, on_next_closed);
}

static void on_upgrade_timer(uv_timer_t *t)
{
    master *m = t->data;
    char why[256];

    snprintf(why, sizeof(why), "the new master (pid %ld) did not take over within %ds; stopped it",
             (long)m->handoff_pid, MASTER_UPGRADE_WAIT_MS / 1000);
    if (m->next_running)
        uv_process_kill(&m->next_proc, SIGTERM);
    upgrade_fail(m, why);
}

/* send_handoff - everything the new master needs, in order */
static int send_handoff(master *m)
{
    qd_ipc_msg *msg = qd_chan_msg(m->handoff, QD_MSG_HANDOFF, 0);
    qd_ipc_put_u32(msg, QD_F_GENERATION, m->generation);
    qd_ipc_put_u32(msg, QD_F_PID, (uint32_t)getpid());
    qd_ipc_put_fd(msg, m->lock_fd);
    qd_ipc_put_fd(msg, m->control_fd);
    if (m->metrics_fd >= 0) { /* kept by the new master if it names the same address */
        qd_ipc_put_fd(msg, m->metrics_fd);
        qd_ipc_put_str(msg, QD_F_ADDR, m->metrics_bound);
    }
    if (qd_chan_queue(m->handoff) < 0)
        return -1;
    master_gen_layout_put(m, qd_chan_msg(m->handoff, QD_MSG_LAYOUT, 0));
    if (qd_chan_queue(m->handoff) < 0)
        return -1;
    for (size_t i = 0; i < m->escrow.count; i++)
        if (qd_chan_send(m->handoff, m->escrow.msg[i]) < 0)
            return -1;
    qd_chan_msg(m->handoff, QD_MSG_READY, 0);
    return qd_chan_queue(m->handoff);
}

int master_upgrade_start(master *m, uint32_t *wait_id, qd_buf *msg)
{
    int sv[2];

    *wait_id = 0;
    if (m->stopping || m->handed_over) {
        qd_buf_printf(msg, "upgrade failed: quicd is stopping\n");
        return -1;
    }
    if (m->upgrading || m->next_proc_open) {
        qd_buf_printf(msg, "upgrade failed: an upgrade is already under way\n");
        return -1;
    }
    if (m->handoff != NULL) {
        qd_buf_printf(msg, "upgrade failed: the previous master (pid %ld) is still draining; "
                           "try again when it has exited\n", (long)m->handoff_pid);
        return -1;
    }
    if (m->gen_reload_id != 0 || m->switch_id != 0 ||
        (m->ngens > 0 && !m->gens[m->ngens - 1].serving)) {
        qd_buf_printf(msg, "upgrade failed: a new generation of workers is starting; try again "
                           "when it serves (quicctl status)\n");
        return -1;
    }
    if (m->escrow.count == 0 || m->escrow.overflow) {
        qd_buf_printf(msg, "upgrade failed: the listener's sockets are not in escrow\n");
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        qd_buf_printf(msg, "upgrade failed: socketpair: %s\n", strerror(errno));
        return -1;
    }
    char *args[8 + 2 * MASTER_MAX_OVERRIDES];
    int n = 0;
    args[n++] = m->exe_path;
    args[n++] = "-c";
    args[n++] = m->conf_path;
    if (m->foreground)
        args[n++] = "-f";
    if (m->cli_level_set)
        args[n++] = "-v";
    for (int i = 0; i < m->override_count; i++) {
        args[n++] = "-o";
        args[n++] = m->overrides[i];
    }
    args[n++] = "-U";
    args[n++] = "3";
    args[n] = NULL;
    uv_stdio_container_t stdio[4];
    master_stdio(m, stdio);
    stdio[3].flags = UV_INHERIT_FD;
    stdio[3].data.fd = sv[1];
    uv_process_options_t opt;
    memset(&opt, 0, sizeof(opt));
    opt.file = m->exe_path;
    opt.args = args;
    opt.exit_cb = on_next_exit;
    opt.stdio_count = 4;
    opt.stdio = stdio;
    opt.flags = UV_PROCESS_DETACHED; /* its own session: it outlives us */
    m->next_proc.data = m;
    int rv = uv_spawn(m->loop, &m->next_proc, &opt);
    close(sv[1]);
    if (rv < 0) {
        close(sv[0]);
        qd_buf_printf(msg, "upgrade failed: cannot start %s: %s; quicd (pid %ld) keeps serving\n",
                      m->exe_path, uv_strerror(rv), (long)getpid());
        uv_close((uv_handle_t *)&m->next_proc, NULL);
        return -1;
    }
    m->next_proc_open = true;
    m->next_running = true;
    m->handoff_failed = false;
    m->handoff_pid = m->next_proc.pid;
    m->upgrading = true;
    m->upgrade_failure[0] = '\0';
    m->upgrade_wait_id = master_next_id(m);
    *wait_id = m->upgrade_wait_id;
    m->handoff = qd_chan_open(m->loop, sv[0], "next master", on_next_msg, on_next_close, m);
    if (m->handoff != NULL)
        m->handoff->single = true; /* its release may read one message per record */
    qd_notice("upgrade: started %s (pid %ld); it takes over once its daemons are ready",
              m->exe_path, (long)m->handoff_pid);
    if (m->handoff == NULL || send_handoff(m) < 0) {
        /* It exited already (its exit status says why), or it never gets
         * what it needs: either way its exit answers. */
        m->handoff_failed = true;
        uv_process_kill(&m->next_proc, SIGKILL);
        return 0;
    }
    uv_timer_start(&m->upgrade_timer, on_upgrade_timer, MASTER_UPGRADE_WAIT_MS, 0);
    return 0;
}

/* --- the new master ----------------------------------------------------------- */

static void on_prev_msg(qd_chan *ch, qd_ipc_msg *msg)
{
    master *m = ch->data;

    qd_warn("dropped unexpected %s message from the previous master", qd_ipc_type_name(msg->type));
    m->bad_messages++;
}

/* on_prev_close - the previous master has exited (or died): its workers are gone */
static void on_prev_close(qd_chan *ch)
{
    master *m = ch->data;

    m->handoff = NULL;
    if (!m->taken_over) {
        if (!m->stopping) /* not after our own failure, which it answers */
            qd_err("the previous master went away before we took over; stopping");
        master_stop(m, "upgrade abandoned");
        return;
    }
    qd_info("the previous master (pid %ld) has exited", (long)m->handoff_pid);
    master_gen_forget_foreign(m);
}

/* add_foreign - the previous master's generations, from its LAYOUT */
static void add_foreign(master *m, const qd_ipc_msg *msg)
{
    size_t pos = 0, len;
    uint16_t tag;
    const uint8_t *val;
    master_gen *g = NULL;

    while (qd_ipc_next(msg, &pos, &tag, &val, &len)) {
        if (tag == QD_F_GENERATION && m->ngens < MASTER_MAX_GENS - 1) {
            g = &m->gens[m->ngens++];
            memset(g, 0, sizeof(*g));
            g->foreign = true;
            g->gen = (uint32_t)val[0] << 24 | (uint32_t)val[1] << 16 | (uint32_t)val[2] << 8 | val[3];
            g->addrs = qd_xcalloc(QD_IPC_MAX_FDS * 8, sizeof(*g->addrs));
        } else if (g == NULL) {
            continue;
        } else if (tag == QD_F_FLAGS) {
            g->tcp = (val[3] & QD_LAYOUT_F_TCP) != 0;
            g->serving = (val[3] & QD_LAYOUT_F_NEW) != 0;
            g->retiring = !g->serving;
        } else if (tag == QD_F_BODY && len <= sizeof(g->ids)) {
            memcpy(g->ids, val, len);
            g->nids = (int)len;
            g->workers = (int)len;
        } else if (tag == QD_F_ADDR && g->naddrs < QD_IPC_MAX_FDS * 8 && len < 80) {
            memcpy(g->addrs[g->naddrs], val, len);
            g->addrs[g->naddrs++][len] = '\0';
        }
    }
}

/*
 * adopt_metrics - the previous master's /metrics socket (the third
 * descriptor of HANDOFF, F_ADDR its address): master_metrics_open keeps it
 * if our configuration names the same address
 */
static void adopt_metrics(master *m, qd_ipc_msg *in)
{
    char addr[80];
    qd_conf tmp;
    qd_buf errs;

    qd_conf_init(&tmp);
    qd_buf_init(&errs);
    if (qd_ipc_get_str(in, QD_F_ADDR, addr, sizeof(addr)) == 0 &&
        qd_conf_set(&tmp, "metrics_listen", addr, "handoff", &errs) == 0 &&
        tmp.metrics_listen.family != 0) {
        m->metrics_fd = qd_ipc_msg_take_fd(in, 2);
        m->metrics_addr = tmp.metrics_listen;
        snprintf(m->metrics_bound, sizeof(m->metrics_bound), "%s", addr);
    }
    qd_conf_release(&tmp);
    qd_buf_release(&errs);
}

void master_upgrade_receive(master *m)
{
    static qd_ipc_msg in;
    uint32_t v;

    for (;;) {
        int rv = qd_ipc_recv(m->upgrade_fd, &in);
        if (rv < 0) {
            fprintf(stderr, "quicd: -U: the previous master's channel: %s\n", qd_strerror(rv));
            exit(1);
        }
        if (in.type == QD_MSG_HANDOFF && in.fd_count >= 2) {
            m->lock_fd = qd_ipc_msg_take_fd(&in, 0);
            m->control_fd = qd_ipc_msg_take_fd(&in, 1);
            if (in.fd_count == 3)
                adopt_metrics(m, &in);
            if (qd_ipc_get_u32(&in, QD_F_GENERATION, &v) == 0)
                m->generation = v + 1;
            if (qd_ipc_get_u32(&in, QD_F_PID, &v) == 0)
                m->handoff_pid = (pid_t)v;
        } else if (in.type == QD_MSG_LAYOUT) {
            add_foreign(m, &in);
        } else if (in.type == QD_MSG_SOCKETS) {
            master_escrow_add(&m->escrow, &in);
        } else if (in.type == QD_MSG_READY) {
            break;
        }
        qd_ipc_msg_close_fds(&in);
    }
    if (m->lock_fd < 0 || m->control_fd < 0) {
        fprintf(stderr, "quicd: -U: no lock or control socket from the previous master\n");
        exit(1);
    }
    m->owns_paths = false; /* until we take over */
}

void master_upgrade_init(master *m)
{
    uv_timer_init(m->loop, &m->upgrade_timer);
    m->upgrade_timer.data = m;
    if (m->upgrade_fd < 0)
        return;
    m->handoff = qd_chan_open(m->loop, m->upgrade_fd, "previous master", on_prev_msg,
                              on_prev_close, m);
    m->handoff->single = true; /* its release may read one message per record */
    qd_notice("upgrade: taking over from the previous master (pid %ld) as generation %u",
              (long)m->handoff_pid, m->generation);
    master_gen_arm_timer(m);
}

void master_upgrade_taken_over(master *m)
{
    m->taken_over = true;
    m->owns_paths = true;
    master_write_pid(m);
    master_control_start(m);
    if (m->handoff != NULL) {
        qd_chan_msg(m->handoff, QD_MSG_READY, 0);
        qd_chan_queue(m->handoff);
    }
    qd_notice("upgrade: serving new connections; the previous master (pid %ld) drains",
              (long)m->handoff_pid);
}

void master_upgrade_failed(master *m, const char *why)
{
    if (m->handoff != NULL) {
        qd_ipc_msg *msg = qd_chan_msg(m->handoff, QD_MSG_CONFIG_DONE, 0);
        qd_ipc_put_u32(msg, QD_F_STATUS, 1);
        qd_ipc_put_str(msg, QD_F_TEXT, why);
        qd_chan_queue(m->handoff);
    }
    master_stop(m, "upgrade failed");
}

void master_upgrade_forward(master *m, const qd_ipc_msg *msg)
{
    if (m->upgrade_fd >= 0 && !m->taken_over && m->handoff != NULL)
        qd_chan_send(m->handoff, msg);
}
