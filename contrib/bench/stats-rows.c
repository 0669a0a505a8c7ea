/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	stats-rows - what a request row costs the stats daemon: CPU time and
 *	instructions per request record
 * SYNOPSIS
 *	stats-rows [-s STATS]... [-n RECORDS] [-r RATE] [-R RUNS] [-p PROTO] [-c] [-k]
 * DESCRIPTION
 *	Starts the real stats binary (-s; default: the one of this build
 *	tree) as the master does: control channel (SOCK_SEQPACKET) on
 *	descriptor 3, the receive end of a SOCK_DGRAM stats channel on 4 (send
 *	buffer 4 MB, stats_buffer's default), a CONFIG with stats_database in
 *	a fresh temporary directory (as root: chrooted there as nobody, the
 *	directory given to nobody:nogroup). Once it is READY, it is sent
 *	RECORDS (200,000) QD_MSG_REC_REQUEST records, composed beforehand with
 *	libshared's qd_ipc with the fields worker_rec_request() puts, in its
 *	order (36-hex connection ids, 10 streams each, GET, one of three
 *	paths, 200, 1024 bytes out, protocol -p, h3 by default), packed into
 *	QD_MSG_REC_BATCH datagrams as the worker's send_rec() packs them (46 a
 *	datagram), at RATE records/s (100,000; 0: as fast as the channel takes
 *	them; sends block, nothing is dropped). When every row is committed
 *	(seen by a read-only connection) it prints, for the stats process over
 *	that time: CPU time per record (/proc/PID/schedstat) and its system
 *	share (utime/stime ticks), context switches, write calls and bytes
 *	written (/proc/PID/io) per 1000 records, database bytes per row; the
 *	instructions per record from a perf counter when the machine has one.
 *	Each run has a fresh daemon and database; RUNS (3) runs, medians.
 *
 *	CPU time is the process's own cost, not throughput, but this VM's
 *	neighbours move it by a third from one minute to the next: compare
 *	binaries within one invocation (-s A -s B runs them in turn) and read
 *	instructions as the exact measure. -c runs stats under callgrind
 *	(unchrooted, as nobody) and counts its instructions between the first
 *	datagram and the last commit (callgrind_control -z, -d), where no
 *	hardware counter exists (this VM); use -n 20000, it is 50 times
 *	slower. -k keeps the directories (database, stats.log).
 *
 *	Measured (2-vCPU Firecracker VM, AMD EPYC; PERFORMANCE.md, "Cost of
 *	a request row on the stats side"), medians, before -> after this
 *	series, both binaries in the same invocations:
 *	  instructions per record (-c, 20,000 records): 19,150 -> 7,800
 *	  CPU us per record: at 100,000/s 3.22 -> 1.34 (9 runs each),
 *	  at 50,000/s 2.62 -> 1.00 (5), unpaced 1.93 -> 0.83 (3)
 *	  write calls per 1000 records 100 -> 68; bytes per row 106.5 -> 89.5
 * DIAGNOSTICS
 *	Exit 0, or 1 when the daemon does not come up or does not commit
 *	every record in time (its log is shown), 2 on a usage error.
 * SEE ALSO
 *	daemons/stats/stats_db.c, daemons/worker/worker_rec.c, PERFORMANCE.md
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* libraries */
#include <sqlite3.h>

/* libshared */
#include "qd_buf.h"
#include "qd_err.h"
#include "qd_ipc.h"
#include "qd_proc.h"
#include "qd_sock.h"
#include "qd_time.h"

#define RUNS_MAX 50
#define BINS_MAX 8
#define STATS_BUFFER (4 << 20) /* stats_buffer's default */
#define READY_MS 60000         /* valgrind starts slowly */

typedef struct opts {
    const char *stats;
    const char *proto;
    long records;
    long rate;
    int runs;
    bool callgrind;
    bool keep;
} opts;

typedef struct result {
    double cpu_ns;  /* per record */
    double sys;     /* of the CPU time, the share in the kernel (clock ticks: coarse) */
    double wakeups; /* context switches per 1,000 records */
    double writes;  /* write calls per 1,000 records */
    double wbytes;  /* bytes written per record (WAL, then the database at checkpoints) */
    double instr;   /* per record, < 0: not measured */
    double bytes;   /* database bytes per row */
} result;

static qd_ipc_msg rec_msg, batch_msg, in_msg;
static uint8_t enc_buf[QD_REC_BATCH_BYTES];
static uint8_t in_buf[QD_IPC_MAX_MSG];
static pid_t child; /* the daemon of the run, while it runs */

/* die - a harness error: end the daemon we started, exit */
static void die(const char *what)
{
    fprintf(stderr, "stats-rows: %s\n", what);
    if (child > 0)
        kill(child, SIGKILL);
    exit(1);
}

/* now_ns - CLOCK_MONOTONIC in nanoseconds */
static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* cpu_ns - the time process |pid| has spent on a CPU, from /proc/PID/schedstat */
static uint64_t cpu_ns(pid_t pid)
{
    char path[64];
    unsigned long long ns = 0;

    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu", &ns) != 1)
        ns = 0;
    fclose(f);
    return ns;
}

/* ticks - the user and system time of |pid| in clock ticks, from /proc/PID/stat */
static void ticks(pid_t pid, unsigned long long *user, unsigned long long *sys)
{
    char path[64], buf[1024];
    size_t n = 0;

    *user = *sys = 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command may hold spaces */
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", user, sys) != 2)
        *user = *sys = 0;
}

/* switches - the context switches of |pid| so far (voluntary: it slept; and not) */
static unsigned long long switches(pid_t pid)
{
    char path[64], line[128];
    unsigned long long n = 0, v;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
            n += v;
    fclose(f);
    return n;
}

/* io - the write calls and bytes written of |pid| so far (/proc/PID/io) */
static void io(pid_t pid, unsigned long long *calls, unsigned long long *bytes)
{
    char path[64], line[128];
    unsigned long long v;

    *calls = *bytes = 0;
    snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "syscw: %llu", &v) == 1)
            *calls = v;
        else if (sscanf(line, "wchar: %llu", &v) == 1)
            *bytes = v;
    }
    fclose(f);
}

/* perf_open - a user-space instruction counter on |pid|, disabled; -1 without one */
static int perf_open(pid_t pid)
{
    struct perf_event_attr a;

    memset(&a, 0, sizeof(a));
    a.type = PERF_TYPE_HARDWARE;
    a.size = sizeof(a);
    a.config = PERF_COUNT_HW_INSTRUCTIONS;
    a.disabled = 1;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    return (int)syscall(SYS_perf_event_open, &a, pid, -1, -1, 0);
}

/*
 * as_nobody - as root, become nobody:nogroup (the daemons' user) for good:
 * valgrind's gdbserver and callgrind_control must run as the same user,
 * and vgdb cannot interrupt a process that changed its uid (no ptrace).
 * Returns 0, or -1.
 */
static int as_nobody(void)
{
    if (geteuid() != 0)
        return 0;
    struct passwd *pw = getpwnam("nobody");
    struct group *gr = getgrnam("nogroup");
    if (pw == NULL || gr == NULL || setgroups(1, &gr->gr_gid) < 0 ||
        setresgid(gr->gr_gid, gr->gr_gid, gr->gr_gid) < 0 ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
        return -1;
    return 0;
}

/* callgrind - run callgrind_control |cmd| (-z, -d) on |pid|, as the daemon's user */
static void callgrind(const char *cmd, pid_t pid)
{
    char arg[32];
    int status;
    pid_t p;

    snprintf(arg, sizeof(arg), "%d", (int)pid);
    if ((p = fork()) < 0)
        die("fork");
    if (p == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || as_nobody() < 0)
            _exit(127);
        alarm(120);
        execlp("callgrind_control", "callgrind_control", cmd, arg, (char *)NULL);
        _exit(127);
    }
    if (waitpid(p, &status, 0) != p || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("callgrind_control failed");
}

/* callgrind_ir - the instructions of the dump |path| (its "summary:" line), or -1 */
static double callgrind_ir(const char *path)
{
    char line[256];
    double ir = -1;

    for (int tries = 0; tries < 100 && access(path, R_OK) != 0; tries++)
        usleep(100 * 1000);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "summary:", 8) == 0)
            ir = strtod(line + 8, NULL);
    fclose(f);
    return ir;
}

/* high_fd - |fd| moved to a descriptor above 10 (so that 3 and 4 are free to take) */
static int high_fd(int fd)
{
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 10);

    close(fd);
    return n;
}

/* start - fork and exec stats with |ctl| on 3 and |in| on 4; returns its pid */
static pid_t start(const opts *o, const char *dir, int ctl, int in)
{
    char log[PATH_MAX], out[PATH_MAX + 64];
    pid_t pid;

    snprintf(log, sizeof(log), "%s/stats.log", dir);
    snprintf(out, sizeof(out), "--callgrind-out-file=%s/db/callgrind.out", dir);
    if ((pid = fork()) < 0)
        die("fork");
    if (pid > 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || dup2(ctl, QD_FD_MASTER) < 0 ||
        dup2(in, QD_FD_STATS) < 0)
        _exit(127);
    if (o->callgrind) {
        if (as_nobody() == 0) /* stats then keeps that user, unchrooted */
            execlp("valgrind", "valgrind", "--tool=callgrind", out, o->stats, "-g", "1", "-l",
                   "stderr", "-v", "warn", (char *)NULL);
        _exit(127);
    }
    execl(o->stats, o->stats, "-g", "1", "-l", "stderr", "-v", "warn", (char *)NULL);
    _exit(127);
}

/* recv_ctl - the next message from stats on |ctl| within |ms|; 0, or -1 */
static int recv_ctl(int ctl, int ms)
{
    struct pollfd p = {.fd = ctl, .events = POLLIN};

    if (poll(&p, 1, ms) <= 0)
        return -1;
    ssize_t n = recv(ctl, in_buf, sizeof(in_buf), 0);
    if (n <= 0 || qd_ipc_decode(&in_msg, in_buf, (size_t)n, 0) < 0)
        return -1;
    return 0;
}

/* configure - CONFIG to stats; waits for its READY. 0, or -1 */
static int configure(const opts *o, int ctl, const char *dir)
{
    char text[2 * PATH_MAX];
    uint64_t end = qd_time_mono_ms() + READY_MS;
    uint32_t status;

    snprintf(text, sizeof(text), "stats_database = %s/db/stats.db\nlog_level = warn\nchroot = %s\n",
             dir, o->callgrind ? "no" : "yes");
    qd_ipc_msg_init(&rec_msg, QD_MSG_CONFIG, 1);
    qd_ipc_put_str(&rec_msg, QD_F_TEXT, text);
    if (qd_ipc_send(ctl, &rec_msg) < 0)
        return -1;
    while (qd_time_mono_ms() < end) {
        if (recv_ctl(ctl, (int)(end - qd_time_mono_ms())) < 0)
            return -1;
        if (in_msg.type == QD_MSG_CONFIG_DONE &&
            (qd_ipc_get_u32(&in_msg, QD_F_STATUS, &status) < 0 || status != 0))
            return -1;
        if (in_msg.type == QD_MSG_READY)
            return 0;
    }
    return -1;
}

/*
 * compose - request record |i| of a run that starts at |t0_ms| in rec_msg:
 * the fields worker_rec_request() puts, in its order; a connection per 10
 * streams, one after the other
 */
static void compose(const opts *o, long i, uint64_t t0_ms)
{
    static const char *const paths[] = {"/1k.bin", "/index.html", "/style.css"};
    char cid[2 * 18 + 1];
    long conn = i / 10;

    snprintf(cid, sizeof(cid), "%08lx%08lx%020lx", 0x5eedf00dUL, (unsigned long)conn * 2654435761UL,
             (unsigned long)conn);
    qd_ipc_msg_init(&rec_msg, QD_MSG_REC_REQUEST, 0);
    qd_ipc_put_str(&rec_msg, QD_F_CONN_ID, cid);
    qd_ipc_put_u32(&rec_msg, QD_F_INSTANCE, 0);
    qd_ipc_put_u64(&rec_msg, QD_F_QUIC_STREAM, (uint64_t)(i % 10) * 4);
    /* when the worker would make it: now, plus the run's pace */
    qd_ipc_put_u64(&rec_msg, QD_F_TIME_MS,
                   t0_ms + (uint64_t)i * 1000 / (o->rate ? o->rate : 100000));
    qd_ipc_put_str(&rec_msg, QD_F_METHOD, "GET");
    qd_ipc_put_str(&rec_msg, QD_F_PATH, paths[i % 3]);
    qd_ipc_put_u32(&rec_msg, QD_F_STATUS, 200);
    qd_ipc_put_u64(&rec_msg, QD_F_BYTES_IN, 0);
    qd_ipc_put_u64(&rec_msg, QD_F_BYTES_OUT, 1024);
    qd_ipc_put_u64(&rec_msg, QD_F_DURATION_US, 180 + (uint64_t)(i % 97));
    qd_ipc_put_u64(&rec_msg, QD_F_TTFB_US, 90 + (uint64_t)(i % 53));
    qd_ipc_put_str(&rec_msg, QD_F_PROTO, o->proto);
}

/*
 * The datagrams of a run, composed before it (so that composing them does
 * not run beside the daemon while it is measured): each is its uint32
 * length, its uint32 record count, then its bytes.
 */
static qd_buf wire;

/* add_batch - the batch in batch_msg (|count| records) to the wire */
static void add_batch(uint32_t count)
{
    static uint8_t buf[QD_REC_BATCH_BYTES];
    int n = qd_ipc_encode(&batch_msg, buf, sizeof(buf));
    uint32_t len = (uint32_t)n;

    if (n < 0)
        die("a batch does not encode");
    qd_buf_append(&wire, (const char *)&len, sizeof(len));
    qd_buf_append(&wire, (const char *)&count, sizeof(count));
    qd_buf_append(&wire, (const char *)buf, len);
}

/* compose_all - every record, in batches as send_rec() in worker_rec.c makes them */
static void compose_all(const opts *o)
{
    uint32_t count = 0;

    uint64_t t0_ms = qd_time_real_ms();

    qd_buf_reset(&wire);
    for (long i = 0; i < o->records; i++) {
        compose(o, i, t0_ms);
        int n = qd_ipc_encode(&rec_msg, enc_buf, sizeof(enc_buf));
        if (n < 0)
            die("a record does not encode");
        if (count > 0 && batch_msg.len + 4 + (size_t)n > QD_REC_BATCH_BYTES - QD_IPC_HDR_LEN) {
            add_batch(count);
            count = 0;
        }
        if (count == 0)
            qd_ipc_msg_init(&batch_msg, QD_MSG_REC_BATCH, 0);
        qd_ipc_put_bytes(&batch_msg, QD_F_BODY, enc_buf, (size_t)n);
        count++;
    }
    if (count > 0)
        add_batch(count);
}

/* feed - send the datagrams (blocking: nothing is dropped), paced to |o->rate| records/s */
static void feed(const opts *o, int out)
{
    uint64_t t0 = now_ns();
    size_t pos = 0;
    long sent = 0;
    uint32_t len, count;

    while (pos + 2 * sizeof(uint32_t) <= wire.len) {
        memcpy(&len, wire.data + pos, sizeof(len));
        memcpy(&count, wire.data + pos + sizeof(len), sizeof(count));
        pos += 2 * sizeof(uint32_t);
        if (o->rate > 0) {
            uint64_t due = t0 + (uint64_t)((double)sent * 1e9 / (double)o->rate);
            uint64_t t = now_ns();
            if (due > t) {
                struct timespec ts = {(time_t)((due - t) / 1000000000u),
                                      (long)((due - t) % 1000000000u)};
                nanosleep(&ts, NULL);
            }
        }
        ssize_t n;
        while ((n = send(out, wire.data + pos, len, 0)) < 0 && errno == EINTR)
            ;
        if (n != (ssize_t)len)
            die("send on the stats channel failed");
        pos += len;
        sent += count;
    }
}

/* rows - the requests rows a reader sees in |db| (-1: none yet, or an error) */
static long rows(const char *db)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    long n = -1;

    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_prepare_v2(h, "SELECT max(rowid) FROM requests", -1, &st, NULL) != SQLITE_OK &&
        sqlite3_prepare_v2(h, "SELECT count(*) FROM requests", -1, &st, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
out:
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* stop - SIGTERM to |pid|, then SIGKILL after 20 s */
static void stop(pid_t pid)
{
    int status;

    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return;
        usleep(100 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

/* show_log - the daemon's log, after a failure */
static void show_log(const char *dir)
{
    char cmd[PATH_MAX + 32];

    snprintf(cmd, sizeof(cmd), "tail -n 20 '%s/stats.log' >&2", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "stats-rows: no log\n");
}

/* rm_tree - remove the run's directory */
static void rm_tree(const char *dir)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "stats-rows: cannot remove %s\n", dir);
}

/* run - one daemon, one database, every record; the costs in |r| */
static int run(const opts *o, result *r)
{
    char dir[] = "/tmp/stats-rows.XXXXXX", db[PATH_MAX], sub[PATH_MAX], cg[PATH_MAX];
    int ctl[2], st[2], rv = -1;
    struct stat sb;

    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    snprintf(sub, sizeof(sub), "%s/db", dir);
    snprintf(db, sizeof(db), "%s/db/stats.db", dir);
    snprintf(cg, sizeof(cg), "%s/db/callgrind.out.1", dir);
    if (mkdir(sub, 0755) < 0 || chmod(dir, 0755) < 0)
        die("mkdir");
    if (geteuid() == 0) { /* the master gives the database's directory to user:group */
        struct passwd *pw = getpwnam("nobody");
        struct group *gr = getgrnam("nogroup");
        if (pw == NULL || gr == NULL || chown(sub, pw->pw_uid, gr->gr_gid) < 0)
            die("no user nobody:nogroup to give the database to");
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0 ||
        socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, st) < 0)
        die("socketpair");
    for (int i = 0; i < 2; i++)
        ctl[i] = high_fd(ctl[i]), st[i] = high_fd(st[i]);
    qd_sock_buffer(st[0], SO_SNDBUF, STATS_BUFFER);
    pid_t pid = child = start(o, dir, ctl[1], st[1]);
    close(ctl[1]);
    close(st[1]);
    if (configure(o, ctl[0], dir) < 0) {
        fprintf(stderr, "stats-rows: stats did not come up\n");
        show_log(dir);
        stop(pid);
        child = 0;
        goto out;
    }
    compose_all(o);
    usleep(300 * 1000); /* let it settle after the open (prune, metrics load) */
    int pfd = o->callgrind ? -1 : perf_open(pid);
    if (o->callgrind)
        callgrind("-z", pid);
    uint64_t c0 = cpu_ns(pid);
    unsigned long long u0, s0, u1, s1;
    ticks(pid, &u0, &s0);
    unsigned long long w0 = switches(pid), wc0, wb0, wc1, wb1;
    io(pid, &wc0, &wb0);
    if (pfd >= 0)
        ioctl(pfd, PERF_EVENT_IOC_RESET, 0), ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0);
    feed(o, st[0]);
    uint64_t end = qd_time_mono_ms() + 60000 + (uint64_t)o->records / (o->callgrind ? 10 : 1000);
    long n = -1;
    while ((n = rows(db)) < o->records && qd_time_mono_ms() < end)
        usleep(50 * 1000);
    uint64_t c1 = cpu_ns(pid);
    ticks(pid, &u1, &s1);
    unsigned long long w1 = switches(pid);
    io(pid, &wc1, &wb1);
    long long instr = -1;
    if (pfd >= 0) {
        ioctl(pfd, PERF_EVENT_IOC_DISABLE, 0);
        if (read(pfd, &instr, sizeof(instr)) != sizeof(instr))
            instr = -1;
        close(pfd);
    }
    if (o->callgrind) {
        callgrind("-d", pid);
        instr = (long long)callgrind_ir(cg);
    }
    stop(pid);
    child = 0;
    if (n != o->records) {
        fprintf(stderr, "stats-rows: %ld of %ld rows committed\n", n, o->records);
        show_log(dir);
        goto out;
    }
    r->cpu_ns = (double)(c1 - c0) / (double)o->records;
    r->wakeups = 1000.0 * (double)(w1 - w0) / (double)o->records;
    r->writes = 1000.0 * (double)(wc1 - wc0) / (double)o->records;
    r->wbytes = (double)(wb1 - wb0) / (double)o->records;
    r->sys = u1 + s1 > u0 + s0 ? (double)(s1 - s0) / (double)(u1 + s1 - u0 - s0) : 0;
    r->instr = instr >= 0 ? (double)instr / (double)o->records : -1;
    r->bytes = stat(db, &sb) == 0 ? (double)sb.st_size / (double)o->records : -1;
    rv = 0;
out:
    close(ctl[0]);
    close(st[0]);
    if (o->keep)
        fprintf(stderr, "stats-rows: kept %s\n", dir);
    else
        rm_tree(dir);
    return rv;
}

/* cmp - for qsort of doubles */
static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* median - of |n| values (sorted in place) */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* default_stats - the stats binary of the build directory this program is in */
static const char *default_stats(void)
{
    static char path[PATH_MAX];
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n <= 0)
        return "daemons/stats/stats";
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(path, sizeof(path), "%.3000s/../../daemons/stats/stats", self);
    return path;
}

static void usage(void)
{
    fprintf(stderr, "usage: stats-rows [-s STATS]... [-n RECORDS] [-r RATE] [-R RUNS] [-p PROTO] "
                    "[-c] [-k]\n");
    exit(2);
}

/* summary - the medians of |n| runs of one binary */
static void summary(const opts *o, const char *bin, result *r, int n)
{
    double cpu[RUNS_MAX], instr[RUNS_MAX], bytes[RUNS_MAX], sys[RUNS_MAX], sw[RUNS_MAX];
    int ninstr = 0;

    for (int i = 0; i < n; i++) {
        cpu[i] = r[i].cpu_ns, bytes[i] = r[i].bytes, sys[i] = r[i].sys, sw[i] = r[i].wakeups;
        if (r[i].instr >= 0)
            instr[ninstr++] = r[i].instr;
    }
    printf("median of %d (%s):", n, bin);
    if (!o->callgrind) {
        double m = median(cpu, n); /* sorts: cpu[0] is the least */
        printf(" %.0f ns CPU/record (least %.0f, %.0f %% system), %.1f switches/1000 records,", m,
               cpu[0], 100 * median(sys, n), median(sw, n));
    }
    if (ninstr > 0)
        printf(" %.0f instructions/record,", median(instr, ninstr));
    printf(" %.1f bytes/row\n", median(bytes, n));
}

int main(int argc, char **argv)
{
    opts o = {.proto = QD_PROTO_H3, .records = 200000, .rate = 100000, .runs = 3};
    const char *bins[BINS_MAX];
    static result res[BINS_MAX][RUNS_MAX];
    int ch, nbins = 0;

    while ((ch = getopt(argc, argv, "s:n:r:R:p:ck")) != -1) {
        switch (ch) {
        case 's':
            if (nbins == BINS_MAX)
                usage();
            bins[nbins++] = optarg;
            break;
        case 'n':
            o.records = atol(optarg);
            break;
        case 'r':
            o.rate = atol(optarg);
            break;
        case 'R':
            o.runs = atoi(optarg);
            break;
        case 'p':
            o.proto = optarg;
            break;
        case 'c':
            o.callgrind = true;
            break;
        case 'k':
            o.keep = true;
            break;
        default:
            usage();
        }
    }
    if (o.records < 1 || o.rate < 0 || o.runs < 1 || o.runs > RUNS_MAX)
        usage();
    if (nbins == 0)
        bins[nbins++] = default_stats();
    for (int b = 0; b < nbins; b++) {
        if (access(bins[b], X_OK) != 0) {
            fprintf(stderr, "stats-rows: no stats binary at %s (use -s)\n", bins[b]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    printf("stats-rows: %ld request records (%s) per run, %s, %d runs%s%s\n", o.records, o.proto,
           o.rate ? "paced" : "unpaced", o.runs, nbins > 1 ? " of each binary, in turn" : "",
           o.callgrind ? ", under callgrind" : "");
    if (o.rate)
        printf("rate: %ld records/s\n", o.rate);
    for (int i = 0; i < o.runs; i++) {
        for (int b = 0; b < nbins; b++) {
            result *r = &res[b][i];
            o.stats = bins[b];
            if (run(&o, r) < 0)
                return 1;
            printf("run %d (%s):", i + 1, bins[b]);
            if (!o.callgrind)
                printf(" %.0f ns CPU/record (%.0f %% system), %.1f switches and %.0f writes "
                       "(%.0f bytes/record) per 1000 records,",
                       r->cpu_ns, 100 * r->sys, r->wakeups, r->writes, r->wbytes);
            if (r->instr >= 0)
                printf(" %.0f instructions/record,", r->instr);
            printf(" %.1f bytes/row\n", r->bytes);
            fflush(stdout);
        }
    }
    for (int b = 0; b < nbins; b++)
        summary(&o, bins[b], res[b], o.runs);
    return 0;
}
