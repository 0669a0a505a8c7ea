/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for qd_chan (queued channel on a libuv loop) and qd_cid (the
 * server CID layout). The channel tests use a real socketpair and loop:
 * enough messages to fill the socket so the queue is exercised, descriptors
 * that must arrive in order, a malformed record that is counted and
 * dropped, and the peer closing.
 */
#include "config.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qd_chan.h"
#include "qd_cid.h"
#include "qd_err.h"
#include "qd_test.h"

#define N_MSGS 2000

static int got;
static int out_of_order;
static int fds_ok;
static int closed;

static void on_msg(qd_chan *ch, qd_ipc_msg *m)
{
    uint32_t v = 0;

    qd_ipc_get_u32(m, QD_F_STATUS, &v);
    if ((int)v != got)
        out_of_order++;
    if (m->fd_count == 1) {
        struct stat st;
        int fd = qd_ipc_msg_take_fd(m, 0);
        if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
            fds_ok++;
        close(fd);
    }
    got++;
    if (got == N_MSGS)
        uv_stop(uv_default_loop());
}

static void on_close(qd_chan *ch)
{
    closed++;
    uv_stop(uv_default_loop());
}

static void on_timeout(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void test_chan_queue_order_fds(void)
{
    int sv[2], pipefd[2];
    uv_loop_t *loop = uv_default_loop();
    static qd_ipc_msg m;
    static uint8_t big[QD_IPC_MAX_CHUNK];
    uv_timer_t timer;

    QD_EXPECT_INT(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    QD_EXPECT_INT(pipe(pipefd), 0);
    qd_chan *a = qd_chan_open(loop, sv[0], "a", on_msg, on_close, NULL);
    qd_chan *b = qd_chan_open(loop, sv[1], "b", on_msg, on_close, NULL);
    /* Big messages: the socket fills up long before N_MSGS, so most queue. */
    for (int i = 0; i < N_MSGS; i++) {
        qd_ipc_msg_init(&m, QD_MSG_RESP_HEAD, 0); /* 0 or 1 fd */
        qd_ipc_put_u32(&m, QD_F_STATUS, (uint32_t)i);
        qd_ipc_put_bytes(&m, QD_F_BODY, big, i % 3 == 0 ? sizeof(big) / 8 : 16);
        if (i % 100 == 0)
            qd_ipc_put_fd(&m, pipefd[0]);
        int rv = qd_chan_send(a, &m);
        if (rv != 0)
            QD_FAIL("send %d: %d", i, rv);
    }
    QD_EXPECT_INT(qd_chan_queued(a) > 0, 1);
    uv_timer_init(loop, &timer);
    uv_timer_start(&timer, on_timeout, 5000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    QD_EXPECT_INT(got, N_MSGS);
    QD_EXPECT_INT(out_of_order, 0);
    QD_EXPECT_INT(fds_ok, N_MSGS / 100);
    QD_EXPECT_INT(qd_chan_queued(a), 0);
    QD_EXPECT_INT(a->sent, N_MSGS);

    /* A malformed record is counted and dropped; the channel lives on. */
    const uint8_t junk[5] = {0xff, 0xff, 0, 0, 1};
    QD_EXPECT_INT(send(sv[0], junk, sizeof(junk), 0), (long long)sizeof(junk));
    got = N_MSGS - 1;
    qd_ipc_msg_init(&m, QD_MSG_RESP_BODY, 0);
    qd_ipc_put_u32(&m, QD_F_STATUS, N_MSGS - 1);
    qd_chan_send(a, &m);
    uv_run(loop, UV_RUN_DEFAULT);
    QD_EXPECT_INT(b->bad_messages, 1);
    QD_EXPECT_INT(got, N_MSGS);

    /* The peer closing calls on_close once; sending then fails cleanly. */
    qd_chan_close(a);
    uv_run(loop, UV_RUN_DEFAULT);
    QD_EXPECT_INT(closed, 1);
    uv_timer_stop(&timer);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void on_msg_count(qd_chan *ch, qd_ipc_msg *m)
{
    got++;
}

/*
 * A full queue refuses data (QD_ERR_TOOBIG, counted in refused) but still
 * takes small control messages within QD_CHAN_CTL_RESERVE; past that they
 * are refused too, and a large body never uses the reserve. Nothing that
 * was accepted is lost: the reader gets every accepted message.
 */
static void test_chan_full_queue_ctl_reserve(void)
{
    int sv[2];
    uv_loop_t *loop = uv_default_loop();
    static qd_ipc_msg m;
    static uint8_t big[QD_IPC_MAX_CHUNK];
    int accepted = 0, rv;

    QD_EXPECT_INT(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    qd_chan *a = qd_chan_open(loop, sv[0], "a", on_msg_count, on_close, NULL);
    for (;;) {
        qd_ipc_msg_init(&m, QD_MSG_REQ_BODY, 0);
        qd_ipc_put_bytes(&m, QD_F_BODY, big, sizeof(big));
        if ((rv = qd_chan_send(a, &m)) != 0)
            break;
        accepted++;
    }
    QD_EXPECT_INT(rv, QD_ERR_TOOBIG);
    QD_EXPECT_INT(a->refused, 1);
    QD_EXPECT_INT(qd_chan_queued(a) <= QD_CHAN_MAX_QUEUE, 1);
    /* A large message is not a control message. */
    QD_EXPECT_INT(qd_chan_send_ctl(a, &m), QD_ERR_TOOBIG);
    int ctl = 0;
    for (;;) {
        qd_ipc_msg_init(&m, QD_MSG_RESP_CREDIT, 0);
        qd_ipc_put_u64(&m, QD_F_STREAM, (uint64_t)ctl);
        qd_ipc_put_u32(&m, QD_F_CREDIT, 65536);
        if ((rv = qd_chan_send_ctl(a, &m)) != 0)
            break;
        ctl++;
    }
    QD_EXPECT_INT(rv, QD_ERR_TOOBIG);
    QD_EXPECT_INT(ctl > 1000, 1); /* ~1 MiB of 30-byte messages */
    QD_EXPECT_INT(qd_chan_queued(a) <= QD_CHAN_MAX_QUEUE + QD_CHAN_CTL_RESERVE, 1);
    /* The reader drains it all, in order, nothing dropped. */
    got = 0;
    qd_chan *b = qd_chan_open(loop, sv[1], "b", on_msg_count, on_close, NULL);
    uv_timer_t timer;
    uv_timer_init(loop, &timer);
    for (int i = 0; i < 400 && got < accepted + ctl; i++) {
        uv_timer_start(&timer, on_timeout, 10, 0);
        uv_run(loop, UV_RUN_DEFAULT);
    }
    QD_EXPECT_INT(got, accepted + ctl);
    QD_EXPECT_INT(qd_chan_queued(a), 0);
    uv_close((uv_handle_t *)&timer, NULL);
    qd_chan_close(a);
    qd_chan_close(b);
    uv_run(loop, UV_RUN_NOWAIT);
}

static uint32_t seen[64];
static int nseen;

static void on_msg_record(qd_chan *ch, qd_ipc_msg *m)
{
    uint32_t v = 0;

    qd_ipc_get_u32(m, QD_F_STATUS, &v);
    if (nseen < 64)
        seen[nseen++] = v;
    for (uint32_t i = 0; i < m->fd_count; i++)
        close(qd_ipc_msg_take_fd(m, i));
}

/* run - one loop iteration at a time until |*n| reaches |want| (or 2 s) */
static void run_until(int *n, int want)
{
    for (int i = 0; i < 200 && *n < want; i++) {
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
        usleep(10000);
    }
}

/*
 * What one loop iteration queues leaves in one record, composed in the
 * channel (qd_chan_msg) or handed over (qd_chan_send); a message with a
 * descriptor ends its record and leaves at once; the reader splits records
 * into messages in order, the descriptor with its message; a malformed
 * message inside a record is dropped alone; qd_ipc_read splits the same.
 */
static void test_chan_records(void)
{
    int sv[2], pipefd[2];
    uv_loop_t *loop = uv_default_loop();
    static qd_ipc_msg m;

    QD_EXPECT_INT(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    QD_EXPECT_INT(pipe(pipefd), 0);
    qd_chan *a = qd_chan_open(loop, sv[0], "a", on_msg_record, on_close, NULL);
    qd_chan *b = qd_chan_open(loop, sv[1], "b", on_msg_record, on_close, NULL);
    nseen = 0;
    for (uint32_t i = 0; i < 10; i++) {
        qd_ipc_msg *c = qd_chan_msg(a, QD_MSG_RESP_BODY, 0);
        qd_ipc_put_u32(c, QD_F_STATUS, i);
        QD_EXPECT_INT(qd_chan_queue(a), 0);
    }
    QD_EXPECT_INT(a->records, 0); /* nothing leaves before the end of the iteration */
    qd_ipc_msg_init(&m, QD_MSG_RESP_BODY, 0);
    qd_ipc_put_u32(&m, QD_F_STATUS, 10);
    QD_EXPECT_INT(qd_chan_send(a, &m), 0);
    run_until(&nseen, 11);
    QD_EXPECT_INT(nseen, 11);
    QD_EXPECT_INT(a->records, 1);
    QD_EXPECT_INT(a->sent, 11);
    for (int i = 0; i < nseen; i++)
        QD_EXPECT_INT(seen[i], i);

    /* two messages, then one with a descriptor: one record, sent at once */
    nseen = 0;
    for (uint32_t i = 0; i < 3; i++) {
        qd_ipc_msg *c = qd_chan_msg(a, QD_MSG_RESP_HEAD, 0);
        qd_ipc_put_u32(c, QD_F_STATUS, i);
        if (i == 2)
            qd_ipc_put_fd(c, pipefd[0]);
        QD_EXPECT_INT(qd_chan_queue(a), 0);
    }
    QD_EXPECT_INT(a->records, 2);
    run_until(&nseen, 3);
    QD_EXPECT_INT(nseen, 3);
    QD_EXPECT_INT(b->received, 14);

    /* a record with a bad message between two good ones: only it is dropped */
    uint8_t rec[256];
    size_t len = 0;
    for (uint32_t i = 0; i < 3; i++) {
        qd_ipc_msg_init(&m, i == 1 ? 999 : QD_MSG_RESP_BODY, 0); /* 999: no such type */
        qd_ipc_put_u32(&m, QD_F_STATUS, 100 + i);
        len += (size_t)qd_ipc_encode(&m, rec + len, sizeof(rec) - len);
    }
    nseen = 0;
    QD_EXPECT_INT(send(sv[0], rec, len, 0), (long long)len);
    run_until(&nseen, 2);
    QD_EXPECT_INT(nseen, 2);
    QD_EXPECT_INT(seen[0], 100);
    QD_EXPECT_INT(seen[1], 102);
    QD_EXPECT_INT(b->bad_messages, 1);
    /* a length that overruns the record: the rest of the record is dropped */
    rec[len - 16] = 0x7f; /* the third message's body length (20 bytes from the end), high byte */
    nseen = 0;
    QD_EXPECT_INT(send(sv[0], rec, len, 0), (long long)len);
    run_until(&nseen, 1);
    for (int i = 0; i < 20; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    QD_EXPECT_INT(nseen, 1);
    QD_EXPECT_INT(b->bad_messages, 3);

    /* a blocking reader splits records the same way */
    qd_chan_close(a);
    qd_chan_close(b);
    uv_run(loop, UV_RUN_NOWAIT);
    QD_EXPECT_INT(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    a = qd_chan_open(loop, sv[0], "a", on_msg_record, on_close, NULL);
    static qd_ipc_reader rd;
    for (uint32_t i = 0; i < 4; i++) {
        qd_ipc_msg *c = qd_chan_msg(a, QD_MSG_RESP_HEAD, 0);
        qd_ipc_put_u32(c, QD_F_STATUS, i);
        if (i == 3)
            qd_ipc_put_fd(c, pipefd[0]);
        qd_chan_queue(a);
    }
    for (uint32_t i = 0; i < 4; i++) {
        uint32_t v = 99;
        QD_EXPECT_INT(qd_ipc_read(sv[1], &rd, &m), 0);
        qd_ipc_get_u32(&m, QD_F_STATUS, &v);
        QD_EXPECT_INT(v, i);
        QD_EXPECT_INT(m.fd_count, i == 3 ? 1 : 0);
        qd_ipc_msg_close_fds(&m);
    }
    qd_chan_close(a);
    close(sv[1]);
    uv_run(loop, UV_RUN_NOWAIT);
    close(pipefd[0]);
    close(pipefd[1]);
}

/*
 * A DGRAM channel never blocks and never queues: what its socket cannot
 * take is dropped and counted, and the reader gets every record that was
 * sent, split into its messages.
 */
static void test_chan_dgram_lossy(void)
{
    int sv[2];
    uv_loop_t *loop = uv_default_loop();
    static uint8_t big[QD_IPC_MAX_CHUNK];
    int sndbuf = 65536;

    QD_EXPECT_INT(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    qd_chan *w = qd_chan_open_dgram(loop, sv[0], "w", NULL, NULL);
    for (int i = 0; i < 200; i++) {
        qd_ipc_msg *c = qd_chan_msg(w, QD_MSG_REC_LOSS, 0);
        qd_ipc_put_u64(c, QD_F_DROPS, (uint64_t)i);
        qd_ipc_put_bytes(c, QD_F_BODY, big, 2000);
        QD_EXPECT_INT(qd_chan_queue(w), 0);
        if (i % 20 == 19)
            qd_chan_flush(w); /* a record of 20 */
    }
    QD_EXPECT_INT(qd_chan_queued(w), 0);
    QD_EXPECT_INT(w->dropped > 0, 1);
    QD_EXPECT_INT(w->sent + w->dropped, 200);
    QD_EXPECT_INT(w->dropped % 20, 0); /* whole records */
    got = 0;
    qd_chan *r = qd_chan_open_dgram(loop, sv[1], "r", on_msg_count, NULL);
    run_until(&got, (int)w->sent);
    QD_EXPECT_INT(got, (int)w->sent);
    qd_chan_close(w);
    qd_chan_close(r);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void test_cid_layout(void)
{
    uint8_t a[QD_CID_LEN], b[QD_CID_LEN];

    QD_EXPECT_INT(qd_cid_mint(a, 7, 0, 0x55), 0);
    QD_EXPECT_INT(qd_cid_mint(b, 7, 1, 0xd5), 0); /* only the low 7 bits of the tag */
    QD_EXPECT_INT(qd_cid_worker(a, QD_CID_LEN), 7);
    QD_EXPECT_INT(qd_cid_worker(b, QD_CID_LEN), 7);
    QD_EXPECT_INT(a[0] >> 7, 0);
    QD_EXPECT_INT(b[0] >> 7, 1);
    QD_EXPECT_INT(a[0] & QD_CID_TAG_MASK, 0x55);
    QD_EXPECT_INT(b[0] & QD_CID_TAG_MASK, 0x55);
    QD_EXPECT_INT(memcmp(a + 2, b + 2, QD_CID_LEN - 2) != 0, 1);
    QD_EXPECT_INT(qd_cid_worker(a, 8), -1); /* client-chosen length */
    QD_EXPECT_INT(qd_cid_mint(a, 255, 0, 0), 0);
    QD_EXPECT_INT(qd_cid_worker(a, QD_CID_LEN), 255);
    QD_EXPECT_INT(QD_CID_WORKER_PKT_OFFSET, 2);
}

int main(void)
{
    QD_RUN(test_chan_queue_order_fds);
    QD_RUN(test_chan_full_queue_ctl_reserve);
    QD_RUN(test_chan_records);
    QD_RUN(test_chan_dgram_lossy);
    QD_RUN(test_cid_layout);
    QD_TEST_DONE();
}
