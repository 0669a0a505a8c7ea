/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	quicd - the master: configuration, supervision, control
 * SYNOPSIS
 *	quicd [-f] [-t] [-v] [-c file] [-o key=value ...]
 *	quicd -U fd ... (started by a master for quicctl upgrade)
 * DESCRIPTION
 *	The only long-lived privileged process. It checks the configuration,
 *	takes the lock (runtime_directory/quicd.pid, flock) so a second
 *	instance refuses to start, detaches unless -f, opens the control
 *	socket, creates the stats channel, starts stats, listener, app and the
 *	workers (master_child.c), and supervises them until SIGTERM/SIGINT or
 *	quicctl stop. SIGHUP or quicctl reload reloads (master_reload.c).
 *	A stop asks every daemon to finish within drain_timeout, kills what
 *	is left, then removes the control socket and pid file.
 * DIAGNOSTICS
 *	Configuration errors go to stderr as "file:line: key: reason", exit 1.
 * SEE ALSO
 *	quicd(8), quicctl(1), quicd.conf(5)
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* libraries */
#include <uv.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_log.h"
#include "qd_privsep.h"
#include "qd_sock.h"
#include "qd_time.h"

/* local */
#include "master.h"

#ifndef QD_SYSCONFDIR
#define QD_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONF QD_SYSCONFDIR "/quicd/quicd.conf"

static master the_master;

/* usage - print the synopsis and exit */
static void usage(void)
{
    fprintf(stderr, "usage: quicd [-f] [-t] [-v] [-c file] [-o key=value ...]\n"
                    "  -c file   configuration file (default " DEFAULT_CONF ")\n"
                    "  -f        stay in the foreground and log to stderr\n"
                    "  -t        check the configuration and exit\n"
                    "  -v        log at debug level\n"
                    "  -o k=v    override a configuration key\n");
    exit(1);
}

/* mkdir_p - create |path| and its parents with |mode| */
static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];

    if (strlen(path) >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* take_lock - open and lock the pid file; refuse if another master has it */
static void take_lock(master *m)
{
    m->lock_fd = open(m->pid_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (m->lock_fd < 0) {
        fprintf(stderr, "quicd: cannot open %s: %s\n", m->pid_path, strerror(errno));
        exit(1);
    }
    if (flock(m->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        char buf[32] = "";
        ssize_t n = pread(m->lock_fd, buf, sizeof(buf) - 1, 0);
        if (n > 0)
            buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        fprintf(stderr, "quicd: already running (pid %s); lock %s is held\n",
                *buf ? buf : "unknown", m->pid_path);
        exit(1);
    }
}

/* master_write_pid - record our pid in the locked pid file */
void master_write_pid(master *m)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

    if (ftruncate(m->lock_fd, 0) < 0 || pwrite(m->lock_fd, buf, (size_t)n, 0) != n)
        qd_warn_errno("cannot write %s", m->pid_path);
}

/* daemonize - detach from the terminal; the parent exits 0 */
static void daemonize(void)
{
    pid_t pid = fork();

    if (pid < 0) {
        fprintf(stderr, "quicd: fork: %s\n", strerror(errno));
        exit(1);
    }
    if (pid > 0)
        _exit(0);
    setsid();
    pid = fork();
    if (pid < 0)
        exit(1);
    if (pid > 0)
        _exit(0);
    if (chdir("/") < 0)
        exit(1);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

/* check_daemons - every program must be there before we start */
static int check_daemons(const qd_conf *conf)
{
    int bad = 0;

    for (int r = QD_ROLE_LISTENER; r < QD_ROLE_COUNT; r++) {
        char path[PATH_MAX];
        if (r == QD_ROLE_UPSTREAM && conf->proxy_table[0] == '\0')
            continue; /* started only for a proxy table */
        snprintf(path, sizeof(path), "%s/%s", conf->daemon_directory, qd_role_name((qd_role)r));
        if (access(path, X_OK) < 0) {
            fprintf(stderr, "quicd: %s: %s (check daemon_directory)\n", path, strerror(errno));
            bad++;
        }
    }
    /* The workers load these before they drop privileges: say so now, not in a crash loop. */
    const char *tls[2][2] = {{"tls_certificate", conf->tls_certificate}, {"tls_key", conf->tls_key}};
    for (int i = 0; i < 2; i++) {
        if (access(tls[i][1], R_OK) < 0) {
            fprintf(stderr, "quicd: %s %s: %s\n", tls[i][0], tls[i][1], strerror(errno));
            bad++;
        }
    }
    return bad ? -1 : 0;
}

/*
 * port_taken - whether another socket holds |a| for |type| (SOCK_DGRAM or
 * SOCK_STREAM). TCP probes with SO_REUSEADDR, as every TCP server binds,
 * so only a socket that listens there counts: connections of a previous
 * run in TIME_WAIT do not.
 */
static bool port_taken(const qd_conf_addr *a, int type)
{
    struct sockaddr_storage ss;
    socklen_t len = qd_conf_addr_sockaddr(a, &ss);
    int one = 1, fd = socket(a->family, type | SOCK_CLOEXEC, 0);
    bool taken;

    if (fd < 0)
        return false; /* the listener reports it */
    if (a->family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    taken = bind(fd, (struct sockaddr *)&ss, len) < 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

/*
 * check_ports - nothing else may be bound to a listen address, over UDP,
 * nor (tcp = yes) over TCP. The listener's sockets use SO_REUSEPORT, which
 * would otherwise quietly share the port with another server of the same
 * user (say a second quicd with another runtime_directory) and split its
 * clients between the two.
 */
static int check_ports(const qd_conf *conf)
{
    int bad = 0;

    for (size_t i = 0; i < conf->listen.count; i++) {
        const qd_conf_addr *a = &conf->listen.items[i];
        const char *lb = a->family == AF_INET6 ? "[" : "", *rb = a->family == AF_INET6 ? "]" : "";

        if (port_taken(a, SOCK_DGRAM)) {
            fprintf(stderr,
                    "quicd: listen %s%s%s:%u: address already in use over UDP"
                    " (another server?)\n",
                    lb, a->host, rb, a->port);
            bad++;
        }
        if (conf->tcp && port_taken(a, SOCK_STREAM)) {
            fprintf(stderr,
                    "quicd: listen %s%s%s:%u: address already in use over TCP"
                    " (another server? or set tcp = no)\n",
                    lb, a->host, rb, a->port);
            bad++;
        }
    }
    return bad ? -1 : 0;
}

/* prepare_dirs - runtime directory, chroot jail, stats database directory */
static void prepare_dirs(master *m)
{
    char dir[PATH_MAX], jail[PATH_MAX];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    char err[256];

    if (mkdir_p(m->conf.runtime_directory, 0755) < 0) {
        fprintf(stderr, "quicd: cannot create %s: %s\n", m->conf.runtime_directory,
                strerror(errno));
        exit(1);
    }
    snprintf(jail, sizeof(jail), "%s/empty", m->conf.runtime_directory);
    if (mkdir(jail, 0555) < 0 && errno != EEXIST) {
        fprintf(stderr, "quicd: cannot create %s: %s\n", jail, strerror(errno));
        exit(1);
    }
    snprintf(dir, sizeof(dir), "%s", m->conf.stats_database);
    char *d = dirname(dir);
    if (mkdir_p(d, 0750) < 0) {
        fprintf(stderr, "quicd: cannot create %s: %s\n", d, strerror(errno));
        exit(1);
    }
    if (qd_privsep_is_root()) {
        if (qd_privsep_lookup(m->conf.user, m->conf.group, &uid, &gid, err, sizeof(err)) < 0) {
            fprintf(stderr, "quicd: %s (set user and group in %s)\n", err, m->conf_path);
            exit(1);
        }
        if (chown(d, uid, gid) < 0)
            fprintf(stderr, "quicd: warning: cannot chown %s: %s\n", d, strerror(errno));
    }
}

/* on_stop_signal - SIGTERM, SIGINT */
static void on_stop_signal(uv_signal_t *s, int signum)
{
    master *m = s->data;

    if (m->stopping && signum == SIGINT) {
        qd_warn("second interrupt: killing the daemons now");
        for (int i = 0; i < m->child_count; i++)
            master_child_stop(m->children[i], true);
        return;
    }
    master_stop(m, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* on_hup - SIGHUP reloads */
static void on_hup(uv_signal_t *s, int signum)
{
    master *m = s->data;
    uint32_t id;
    qd_buf msg;

    if (m->stopping || m->reload_id != 0)
        return;
    qd_buf_init(&msg);
    qd_info("SIGHUP: reloading");
    master_reload(m, &id, &msg);
    qd_buf_release(&msg);
}

/* on_stop_timer - the whole stop took too long: kill everything */
static void on_stop_timer(uv_timer_t *t)
{
    master *m = t->data;

    for (int i = 0; i < m->child_count; i++)
        master_child_stop(m->children[i], true);
}

void master_stop(master *m, const char *why)
{
    if (m->stopping)
        return;
    m->stopping = true;
    qd_info("stopping (%s); drain deadline %llds", why, (long long)m->conf.drain_timeout_ms / 1000);
    uv_signal_stop(&m->sighup);
    master_children_stop_all(m);
    m->stop_timer.data = m;
    uv_timer_start(&m->stop_timer, on_stop_timer, (uint64_t)m->conf.drain_timeout_ms + 3000, 0);
    if (master_children_alive(m) == 0)
        master_finish(m);
}

void master_finish(master *m)
{
    static bool done;

    if (done)
        return;
    done = true;
    master_control_close(m);
    if (m->owns_paths)
        unlink(m->pid_path);
    qd_info("stopped");
    uv_stop(m->loop);
}

/*
 * master_stats_buffer - how many bytes of records may wait in the stats
 * channel (stats_buffer): the send end's SO_SNDBUF, which every sender
 * shares and which a Unix datagram socketpair charges for what the stats
 * daemon has not read yet. Forced past net.core.wmem_max when root.
 */
void master_stats_buffer(master *m)
{
    int64_t got = qd_sock_buffer(m->stats_fds[0], SO_SNDBUF, m->conf.stats_buffer);

    if (got >= 0 && got < m->conf.stats_buffer)
        qd_warn("stats_buffer: the kernel capped it at %lld bytes (asked for %lld); raise "
                "net.core.wmem_max",
                (long long)got, (long long)m->conf.stats_buffer);
}

/* close_walk - close whatever handles are left at exit */
static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int main(int argc, char **argv)
{
    master *m = &the_master;
    bool check_only = false;
    qd_buf errs;
    int ch;

    m->conf_path = DEFAULT_CONF;
    m->control_fd = -1;
    m->lock_fd = -1;
    m->upgrade_fd = -1;
    m->metrics_fd = -1;
    m->owns_paths = true;
    qd_log_init("master", -1, QD_LOG_STDERR, QD_LOG_INFO);
    ssize_t n = readlink("/proc/self/exe", m->exe_path, sizeof(m->exe_path) - 1);
    m->exe_path[n > 0 ? n : 0] = '\0';
    while ((ch = getopt(argc, argv, "c:fto:vhU:")) != -1) {
        switch (ch) {
        case 'c':
            m->conf_path = optarg;
            break;
        case 'f':
            m->foreground = true;
            break;
        case 't':
            check_only = true;
            break;
        case 'o':
            if (strchr(optarg, '=') == NULL || m->override_count == MASTER_MAX_OVERRIDES) {
                fprintf(stderr, "quicd: -o needs key=value\n");
                exit(1);
            }
            m->overrides[m->override_count++] = optarg;
            break;
        case 'v':
            m->cli_level = QD_LOG_DEBUG;
            m->cli_level_set = true;
            break;
        case 'U':
            m->upgrade_fd = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();

    qd_buf_init(&errs);
    if (master_load_config(m, &m->conf, &errs) != 0) {
        fputs(qd_buf_str(&errs), stderr);
        fprintf(stderr, "quicd: configuration %s has errors; not starting\n", m->conf_path);
        exit(1);
    }
    qd_buf_release(&errs);
    if (check_only) {
        if (check_daemons(&m->conf) < 0)
            exit(1);
        printf("quicd: configuration %s is valid\n", m->conf_path);
        exit(0);
    }
    if (check_daemons(&m->conf) < 0)
        exit(1);

    prepare_dirs(m);
    snprintf(m->pid_path, sizeof(m->pid_path), "%s/quicd.pid", m->conf.runtime_directory);
    snprintf(m->sock_path, sizeof(m->sock_path), "%s/control.sock", m->conf.runtime_directory);
    if (m->upgrade_fd >= 0) {
        /* quicctl upgrade: the previous master hands over its lock, control
         * socket, sockets and secrets, and keeps serving until we do. */
        master_upgrade_receive(m);
    } else {
        take_lock(m);
        if (check_ports(&m->conf) < 0)
            exit(1);
    }
    char why[512];
    if (master_metrics_open(m, why, sizeof(why)) < 0) {
        fprintf(stderr, "quicd: %s\n", why);
        exit(1);
    }
    if (m->upgrade_fd < 0 && !m->foreground)
        daemonize();
    if (m->upgrade_fd < 0)
        master_write_pid(m); /* an upgrade writes it when it takes over */
    qd_log_init("master", -1, m->foreground ? QD_LOG_STDERR : QD_LOG_SYSLOG,
                m->cli_level_set ? m->cli_level : (qd_log_level)qd_conf_log_level(&m->conf));
    signal(SIGPIPE, SIG_IGN);

    m->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, m->stats_fds) < 0)
        qd_fatal("stats channel: %s", strerror(errno));
    master_stats_buffer(m);
    fcntl(m->stats_fds[0], F_SETFL, fcntl(m->stats_fds[0], F_GETFL) | O_NONBLOCK);

    m->loop = uv_default_loop();
    /* the master's own end: process events and its metrics, lossy, never blocking */
    m->stats = qd_chan_open_dgram(m->loop, m->stats_fds[0], "stats", NULL, m);
    m->unsent = qd_xmalloc(sizeof(*m->unsent));
    m->started_ms = qd_time_mono_ms();
    if (m->generation == 0)
        m->generation = 1; /* else the one after the previous master's (quicd -U) */
    qd_buf_init(&m->reload_errors);
    master_gen_init(m);
    master_upgrade_init(m);
    uv_timer_init(m->loop, &m->stop_timer);
    uv_timer_init(m->loop, &m->reload_timer);
    if (master_control_open(m) < 0)
        qd_fatal("cannot open the control socket");
    uv_signal_init(m->loop, &m->sighup);
    m->sighup.data = m;
    uv_signal_start(&m->sighup, on_hup, SIGHUP);
    uv_signal_init(m->loop, &m->sigterm);
    m->sigterm.data = m;
    uv_signal_start(&m->sigterm, on_stop_signal, SIGTERM);
    uv_signal_init(m->loop, &m->sigint);
    m->sigint.data = m;
    uv_signal_start(&m->sigint, on_stop_signal, SIGINT);

    qd_info("starting quicd %s (config %s, pid %ld)", PACKAGE_VERSION, m->conf_path,
            (long)getpid());
    master_children_start(m);
    master_record_losses_start(m);
    uv_run(m->loop, UV_RUN_DEFAULT);

    uv_walk(m->loop, close_walk, NULL);
    uv_run(m->loop, UV_RUN_NOWAIT);
    return 0;
}
