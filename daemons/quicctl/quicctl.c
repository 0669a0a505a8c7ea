/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	quicctl - control quicd
 * SYNOPSIS
 *	quicctl [-c file] start|stop|reload|upgrade|status [--json]|conns [--json]|
 *	        upstreams [--json]|report [...]|check|config [-d|-n] [key ...]
 * DESCRIPTION
 *	Reads the same configuration as quicd to find the control socket
 *	(runtime_directory/control.sock) and talks to the master over it.
 *	check and config work on the file alone and need no running master.
 *	Exit 0 on success; 1 with one clear line on stderr on failure.
 * SEE ALSO
 *	quicctl(1), quicd(8)
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_log.h"
#include "qd_time.h"

/* local */
#include "quicctl.h"

#ifndef QD_SYSCONFDIR
#define QD_SYSCONFDIR "/etc"
#endif
#ifndef QD_SBINDIR
#define QD_SBINDIR "/usr/sbin"
#endif
#define DEFAULT_CONF QD_SYSCONFDIR "/quicd/quicd.conf"

static quicctl q_state;

static void usage(void)
{
    fprintf(stderr,
            "usage: quicctl [-c file] command\n"
            "commands:\n"
            "  start            start quicd in the background and wait until it serves\n"
            "  stop             stop quicd gracefully and wait until it is gone\n"
            "  reload           reload the configuration\n"
            "  upgrade          re-execute the installed quicd and daemons without closing a socket\n"
            "  status [--json]  list the processes\n"
            "  conns [--json]   list the live QUIC connections of every worker\n"
            "  metrics          the metrics in the Prometheus text format (as /metrics)\n"
            "  top [-n COUNT] [-d SECONDS]\n"
            "                   each worker's CPU, memory, connections and rates, live\n"
            "  upstreams [--json]\n"
            "                   the proxy's upstream servers and their health\n"
            "  report [--since DURATION | --from T [--to T]] [--by worker|protocol|minute|route]\n"
            "         [--json | --csv]\n"
            "                   summary of the stats database (default: the last hour)\n"
            "  check            check the configuration file\n"
            "  config [-d|-n] [key ...]\n"
            "                   print effective values (-d defaults, -n only those set)\n");
    exit(1);
}

void quicctl_die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "quicctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/*
 * load_conf - the configuration. |strict|: die listing its errors. Not
 * strict (commands that talk to a running master): only an unreadable
 * file is fatal; with errors elsewhere we still find the control socket,
 * and the master reports those errors itself (quicctl reload).
 */
static void load_conf(quicctl *q, bool strict)
{
    qd_buf errs;
    int rv;

    qd_buf_init(&errs);
    qd_conf_init(&q->conf);
    rv = qd_conf_load(&q->conf, q->conf_path, &errs);
    if (rv == QD_ERR_IO || (rv != 0 && strict)) {
        fputs(qd_buf_str(&errs), stderr);
        quicctl_die("configuration %s has errors", q->conf_path);
    }
    if (strict && rv == 0 && q->conf.proxy_table[0] != '\0') {
        qd_proxy_init(&q->proxy);
        rv = qd_proxy_load(&q->proxy, q->conf.proxy_table, &errs);
        if (rv != 0) {
            fputs(qd_buf_str(&errs), stderr);
            quicctl_die("proxy table %s has errors", q->conf.proxy_table);
        }
    }
    if (rv != 0 && q->conf.line[QD_K_RUNTIME_DIRECTORY] > 0 &&
        strstr(qd_buf_str(&errs), ": runtime_directory: ") != NULL) {
        fputs(qd_buf_str(&errs), stderr);
        quicctl_die("cannot find the control socket: runtime_directory is invalid");
    }
    qd_buf_release(&errs);
    snprintf(q->sock_path, sizeof(q->sock_path), "%s/control.sock", q->conf.runtime_directory);
    snprintf(q->pid_path, sizeof(q->pid_path), "%s/quicd.pid", q->conf.runtime_directory);
}

int quicctl_connect(quicctl *q, bool quiet)
{
    struct sockaddr_un sun;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    if (fd < 0)
        quicctl_die("socket: %s", strerror(errno));
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(q->sock_path) >= sizeof(sun.sun_path))
        quicctl_die("control socket path too long: %s", q->sock_path);
    strcpy(sun.sun_path, q->sock_path);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = errno;
        close(fd);
        if (quiet)
            return -1;
        if (e == ENOENT || e == ECONNREFUSED)
            quicctl_die("quicd is not running (no control socket at %s)", q->sock_path);
        if (e == EACCES || e == EPERM)
            quicctl_die("permission denied on %s (run quicctl as the user that runs quicd, "
                        "usually root)",
                        q->sock_path);
        quicctl_die("cannot connect to %s: %s", q->sock_path, strerror(e));
    }
    return fd;
}

/* wait_readable - poll |fd| for up to |timeout_ms|; 1 readable, 0 timeout */
static int wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rv;

    do {
        rv = poll(&p, 1, timeout_ms);
    } while (rv < 0 && errno == EINTR);
    return rv > 0;
}

int quicctl_request(int fd, uint16_t type, qd_ipc_msg *reply, int timeout_ms)
{
    static qd_ipc_msg req;
    int rv;

    qd_ipc_msg_init(&req, type, 1);
    rv = qd_ipc_send(fd, &req);
    if (rv < 0) {
        if (rv == QD_ERR_EOF)
            quicctl_die("quicd closed the connection (is quicctl allowed to talk to it?)");
        quicctl_die("cannot send request: %s", rv == QD_ERR_IO ? strerror(errno) : qd_strerror(rv));
    }
    if (!wait_readable(fd, timeout_ms))
        quicctl_die("no answer from quicd within %d seconds", timeout_ms / 1000);
    rv = qd_ipc_recv(fd, reply);
    if (rv == QD_ERR_EOF)
        quicctl_die("quicd closed the connection (permission denied?)");
    if (rv < 0)
        quicctl_die("bad answer from quicd: %s", qd_strerror(rv));
    if (reply->type != QD_MSG_CTL_REPLY)
        quicctl_die("unexpected answer from quicd");
    return 0;
}

/* simple_request - send, print the text, exit with the status */
static int simple_request(quicctl *q, uint16_t type, int timeout_ms)
{
    static qd_ipc_msg reply;
    static char text[QD_IPC_MAX_BODY];
    uint32_t status = 1;
    int fd = quicctl_connect(q, false);

    quicctl_request(fd, type, &reply, timeout_ms);
    qd_ipc_get_u32(&reply, QD_F_STATUS, &status);
    if (qd_ipc_get_str(&reply, QD_F_TEXT, text, sizeof(text)) < 0)
        text[0] = '\0';
    size_t n = strlen(text);
    if (n > 0 && text[n - 1] == '\n')
        text[n - 1] = '\0';
    if (status != 0) {
        fprintf(stderr, "quicctl: %s\n", text);
        return 1;
    }
    if (*text)
        printf("%s\n", text);
    close(fd);
    return 0;
}

/* master_pid - the pid written in the pid file, or 0 */
static long master_pid(const quicctl *q)
{
    FILE *f = fopen(q->pid_path, "r");
    long pid = 0;

    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

/* cmd_start - run quicd in the background and wait for its daemons */
static int cmd_start(quicctl *q)
{
    const char *prog = getenv("QUICD_PROGRAM") ? getenv("QUICD_PROGRAM") : QD_SBINDIR "/quicd";
    int fd = quicctl_connect(q, true);
    pid_t pid;
    int status;

    if (fd >= 0) {
        close(fd);
        quicctl_die("quicd is already running (pid %ld)", master_pid(q));
    }
    pid = fork();
    if (pid < 0)
        quicctl_die("fork: %s", strerror(errno));
    if (pid == 0) {
        execl(prog, "quicd", "-c", q->conf_path, (char *)NULL);
        fprintf(stderr, "quicctl: cannot run %s: %s\n", prog, strerror(errno));
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        quicctl_die("quicd did not start (see the messages above or the system log)");

    /* The master detached; wait until it answers and its daemons are ready. */
    uint64_t deadline = qd_time_mono_ms() + 15000;
    while (qd_time_mono_ms() < deadline) {
        static qd_ipc_msg reply;
        static char text[QD_IPC_MAX_BODY];
        fd = quicctl_connect(q, true);
        if (fd >= 0) {
            quicctl_request(fd, QD_MSG_CTL_STATUS, &reply, 5000);
            close(fd);
            if (qd_ipc_get_str(&reply, QD_F_TEXT, text, sizeof(text)) == 0 &&
                strstr(text, "state=starting") == NULL && strstr(text, "state=backoff") == NULL &&
                strstr(text, "state=throttled") == NULL) {
                printf("quicd started (pid %ld)\n", master_pid(q));
                return 0;
            }
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    quicctl_die("quicd started but its daemons are not all running after 15s; "
                "see `quicctl status` and the system log");
}

/* is_zombie - process |pid| has exited and waits for its parent to reap it */
static bool is_zombie(long pid)
{
    char path[64], buf[512];
    FILE *f;
    bool z = false;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    if (fgets(buf, sizeof(buf), f) != NULL) {
        const char *p = strrchr(buf, ')'); /* the name may contain anything */
        z = p != NULL && p[1] == ' ' && p[2] == 'Z';
    }
    fclose(f);
    return z;
}

/* cmd_stop - ask the master to stop and wait until it has exited */
static int cmd_stop(quicctl *q)
{
    static qd_ipc_msg reply;
    int fd = quicctl_connect(q, false);
    int wait_ms = (int)q->conf.drain_timeout_ms + 10000;
    long pid = master_pid(q);
    /* The master holds an flock on its pid file until it exits. */
    int lock_fd = open(q->pid_path, O_RDONLY | O_CLOEXEC);

    quicctl_request(fd, QD_MSG_CTL_STOP, &reply, 5000);
    /* The master keeps this connection open until it exits. */
    uint64_t deadline = qd_time_mono_ms() + (uint64_t)wait_ms;
    for (;;) {
        int left = (int)(deadline - qd_time_mono_ms());
        if (left <= 0 || (int64_t)(deadline - qd_time_mono_ms()) <= 0)
            quicctl_die("quicd did not stop within %d seconds", wait_ms / 1000);
        if (wait_readable(fd, left)) {
            char b[64];
            ssize_t n = recv(fd, b, sizeof(b), 0);
            if (n <= 0)
                break;
        }
    }
    close(fd);
    /*
     * The connection closes just before the master exits: wait for the
     * process too, until its lock on the pid file is free (the kernel
     * frees it when the process is gone). Not by its pid: a master in a
     * PID namespace (a container) writes its own view of it, which out
     * here may be another process, even init.
     */
    while (lock_fd >= 0 && flock(lock_fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK &&
           qd_time_mono_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    /*
     * Then until it is reaped. Once the lock is free, a process by that pid
     * that is not a zombie is not our master (see above): stop waiting.
     */
    while (pid > 0 && kill((pid_t)pid, 0) == 0 && qd_time_mono_ms() < deadline &&
           (lock_fd < 0 || is_zombie(pid))) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (lock_fd >= 0)
        close(lock_fd);
    printf("quicd stopped\n");
    return 0;
}

/* cmd_config - postconf: effective values, -d defaults, -n explicit ones */
static int cmd_config(quicctl *q, int argc, char **argv)
{
    int mode = QD_CONF_DUMP_EFFECTIVE;
    qd_buf out;
    int i = 0, rv = 0;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-d") == 0)
            mode = QD_CONF_DUMP_DEFAULTS;
        else if (strcmp(argv[i], "-n") == 0)
            mode = QD_CONF_DUMP_CHANGED;
        else
            usage();
    }
    if (mode != QD_CONF_DUMP_DEFAULTS)
        load_conf(q, true);
    else
        qd_conf_init(&q->conf);
    qd_buf_init(&out);
    qd_conf_dump(&q->conf, mode, &out);
    if (i == argc) {
        if (mode != QD_CONF_DUMP_DEFAULTS && q->conf.proxy_table[0] != '\0') {
            qd_buf_printf(&out, "# proxy_table %s: %zu groups, %zu routes\n", q->conf.proxy_table,
                          q->proxy.ngroups, q->proxy.nroutes);
            qd_proxy_dump(&q->proxy, "#   ", &out);
        }
        fputs(qd_buf_str(&out), stdout);
    } else {
        for (; i < argc; i++) {
            int id = qd_conf_key_find(argv[i]);
            if (id < 0) {
                fprintf(stderr, "quicctl: %s: unknown configuration key\n", argv[i]);
                rv = 1;
                continue;
            }
            size_t n;
            const qd_conf_key *keys = qd_conf_keys(&n);
            printf("%s = %s\n", argv[i],
                   mode == QD_CONF_DUMP_DEFAULTS ? keys[id].def
                                                 : qd_conf_value_text(&q->conf, (qd_conf_key_id)id));
        }
    }
    qd_buf_release(&out);
    return rv;
}

int main(int argc, char **argv)
{
    quicctl *q = &q_state;
    int i = 1;

    signal(SIGPIPE, SIG_IGN);
    qd_log_init("quicctl", -1, QD_LOG_STDERR, QD_LOG_WARN);
    q->conf_path = getenv("QUICD_CONFIG") ? getenv("QUICD_CONFIG") : DEFAULT_CONF;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            q->conf_path = argv[++i];
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            usage();
        else
            usage();
    }
    if (i >= argc)
        usage();
    const char *cmd = argv[i++];
    int rest = argc - i;
    char **rargv = argv + i;

    if (strcmp(cmd, "check") == 0) {
        if (rest != 0)
            usage();
        load_conf(q, true);
        printf("quicctl: configuration %s is valid\n", q->conf_path);
        return 0;
    }
    if (strcmp(cmd, "config") == 0)
        return cmd_config(q, rest, rargv);

    load_conf(q, strcmp(cmd, "start") == 0);
    if (strcmp(cmd, "status") == 0) {
        bool json = false;
        if (rest == 1 && strcmp(rargv[0], "--json") == 0)
            json = true;
        else if (rest != 0)
            usage();
        return quicctl_status(q, json);
    }
    if (strcmp(cmd, "conns") == 0) {
        bool json = false;
        if (rest == 1 && strcmp(rargv[0], "--json") == 0)
            json = true;
        else if (rest != 0)
            usage();
        return quicctl_conns(q, json);
    }
    if (strcmp(cmd, "upstreams") == 0) {
        bool json = false;
        if (rest == 1 && strcmp(rargv[0], "--json") == 0)
            json = true;
        else if (rest != 0)
            usage();
        return quicctl_upstreams(q, json);
    }
    if (strcmp(cmd, "report") == 0)
        return quicctl_report(q, rest, rargv);
    if (strcmp(cmd, "top") == 0)
        return quicctl_top(q, rest, rargv);
    if (strcmp(cmd, "metrics") == 0) {
        if (rest != 0)
            usage();
        return quicctl_metrics(q);
    }
    if (rest != 0)
        usage();
    if (strcmp(cmd, "start") == 0)
        return cmd_start(q);
    if (strcmp(cmd, "stop") == 0)
        return cmd_stop(q);
    if (strcmp(cmd, "reload") == 0)
        return simple_request(q, QD_MSG_CTL_RELOAD, 20000);
    if (strcmp(cmd, "upgrade") == 0)
        return simple_request(q, QD_MSG_CTL_UPGRADE, 40000);
    fprintf(stderr, "quicctl: unknown command \"%s\"\n", cmd);
    usage();
}
