/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	quicctl_top - `quicctl top`: what each worker does now
 * SYNOPSIS
 *	quicctl_top(q, argc, argv)
 * DESCRIPTION
 *	Asks the master for its status (as quicctl status does) every
 *	interval, one second by default, and shows per worker: its CPU use
 *	and resident memory (from /proc), its connections (QUIC and TCP) and
 *	open streams, and per second the requests, handshakes and UDP
 *	datagrams in and out, from the running totals of its metrics that the
 *	status report carries (the differences between two reports); then the
 *	sum. On a terminal each frame replaces the last; otherwise frames
 *	follow each other. -n COUNT stops after COUNT frames (the first one
 *	after one interval, since rates need two reports).
 * DIAGNOSTICS
 *	Exits 1 with one line on stderr when the master cannot be reached.
 */
#include "config.h"

/* system */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* libshared */
#include "qd_ipc.h"
#include "qd_time.h"

/* local */
#include "quicctl.h"

#define TOP_MAX 256 /* workers shown at most */

typedef struct top_worker {
    long pid;
    int instance;
    uint64_t cpu_ticks, rss_pages;
    uint64_t requests, handshakes, rx, tx;
    unsigned conns, tcp, streams;
} top_worker;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* proc_cpu - utime + stime of |pid| in clock ticks, 0 when unreadable */
static uint64_t proc_cpu(long pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command may hold spaces */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                            &st) != 2)
        return 0;
    return ut + st;
}

/* proc_rss - resident pages of |pid| */
static uint64_t proc_rss(long pid)
{
    char path[64];
    unsigned long long size = 0, rss = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/statm", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss;
}

static uint64_t num(const quicctl_kv *f, int n, const char *key)
{
    const char *v = quicctl_get(f, n, key);
    return v ? strtoull(v, NULL, 10) : 0;
}

/* sample - the running workers now; returns how many */
static int sample(quicctl *q, top_worker *w)
{
    static qd_ipc_msg reply;
    static char text[QD_IPC_MAX_BODY];
    uint32_t status = 1;
    int fd = quicctl_connect(q, false), count = 0;
    char *save = NULL;

    quicctl_request(fd, QD_MSG_CTL_STATUS, &reply, 5000);
    close(fd);
    qd_ipc_get_u32(&reply, QD_F_STATUS, &status);
    if (qd_ipc_get_str(&reply, QD_F_TEXT, text, sizeof(text)) < 0 || status != 0)
        quicctl_die("quicd answered with an error");
    for (char *line = strtok_r(text, "\n", &save); line && count < TOP_MAX;
         line = strtok_r(NULL, "\n", &save)) {
        quicctl_kv f[QUICCTL_MAX_FIELDS];
        int n = quicctl_split_line(line, f);
        const char *role = quicctl_get(f, n, "role"), *state = quicctl_get(f, n, "state");
        if (role == NULL || strcmp(role, "worker") != 0 || state == NULL ||
            strcmp(state, "running") != 0)
            continue;
        top_worker *t = &w[count++];
        t->pid = (long)num(f, n, "pid");
        t->instance = (int)num(f, n, "instance");
        t->conns = (unsigned)num(f, n, "connections");
        t->tcp = (unsigned)num(f, n, "tcp_connections");
        t->streams = (unsigned)num(f, n, "streams");
        t->requests = num(f, n, "http_requests");
        t->handshakes = num(f, n, "handshakes");
        t->rx = num(f, n, "udp_datagrams_received");
        t->tx = num(f, n, "udp_datagrams_sent");
        t->cpu_ticks = proc_cpu(t->pid);
        t->rss_pages = proc_rss(t->pid);
    }
    return count;
}

/* rate - per second between two readings; 0 when the counter restarted */
static double rate(uint64_t now, uint64_t then, double secs)
{
    return now >= then && secs > 0 ? (double)(now - then) / secs : 0;
}

/* frame - one screen: each worker found in both samples, then the sum */
static void frame(const top_worker *now, int n, const top_worker *then, int m, double secs,
                  bool tty)
{
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    double tot[7] = {0};
    char when[16];
    time_t t = time(NULL);
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%H:%M:%S", &tm);
    if (tty)
        printf("\033[H\033[2J");
    printf("quicd top - %s, every %.1f s (Ctrl-C quits)\n", when, secs);
    printf("%-6s %-8s %6s %8s %7s %6s %7s %9s %8s %10s %10s\n", "WORKER", "PID", "CPU%", "RSS-MB",
           "CONNS", "TCP", "STREAMS", "REQ/S", "HS/S", "PKTS-IN/S", "PKTS-OUT/S");
    for (int i = 0; i < n; i++) {
        const top_worker *a = &now[i], *b = NULL;
        for (int j = 0; j < m; j++)
            if (then[j].pid == a->pid)
                b = &then[j];
        if (b == NULL)
            continue; /* new since the last sample: next time */
        double cpu = a->cpu_ticks >= b->cpu_ticks && hz > 0
                         ? 100.0 * (double)(a->cpu_ticks - b->cpu_ticks) / (double)hz / secs
                         : 0;
        double rss = (double)a->rss_pages * (double)page / 1e6;
        double v[5] = {rate(a->requests, b->requests, secs), rate(a->handshakes, b->handshakes, secs),
                       rate(a->rx, b->rx, secs), rate(a->tx, b->tx, secs), 0};
        printf("%-6d %-8ld %6.1f %8.1f %7u %6u %7u %9.1f %8.1f %10.1f %10.1f\n", a->instance,
               a->pid, cpu, rss, a->conns, a->tcp, a->streams, v[0], v[1], v[2], v[3]);
        tot[0] += cpu, tot[1] += rss, tot[2] += a->conns + a->tcp, tot[3] += v[0], tot[4] += v[1];
        tot[5] += v[2], tot[6] += v[3];
    }
    printf("%-15s %6.1f %8.1f %7.0f %6s %7s %9.1f %8.1f %10.1f %10.1f\n", "all", tot[0], tot[1],
           tot[2], "", "", tot[3], tot[4], tot[5], tot[6]);
    fflush(stdout);
}

int quicctl_top(quicctl *q, int argc, char **argv)
{
    static top_worker a[TOP_MAX], b[TOP_MAX];
    long frames = -1;
    double every = 1.0;

    for (int i = 0; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            frames = strtol(argv[++i], &end, 10);
            if (*end != '\0' || frames < 1 || frames > 1000000)
                quicctl_die("top -n %s: want a count of frames from 1", argv[i]);
        } else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) {
            every = strtod(argv[++i], &end);
            if (*end != '\0' || !(every >= 0.2 && every <= 3600))
                quicctl_die("top -d %s: want seconds from 0.2 to 3600", argv[i]);
        } else {
            quicctl_die("top: unknown option \"%s\"; usage: quicctl top [-n COUNT] [-d SECONDS]",
                        argv[i]);
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    bool tty = isatty(STDOUT_FILENO);
    top_worker *now = a, *then = b;
    int m = sample(q, then);
    uint64_t t0 = qd_time_mono_ms();
    for (long k = 0; !stop && (frames < 0 || k < frames); k++) {
        struct timespec ts = {(time_t)every, (long)((every - (double)(time_t)every) * 1e9)};
        while (nanosleep(&ts, &ts) < 0 && !stop)
            ;
        if (stop)
            break;
        int n = sample(q, now);
        uint64_t t1 = qd_time_mono_ms();
        frame(now, n, then, m, (double)(t1 - t0) / 1000.0, tty);
        top_worker *x = then;
        then = now, now = x, m = n, t0 = t1;
    }
    return 0;
}
