/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libshared/qd_ipc and qd_fdpass: round trips over a real
 * SOCK_SEQPACKET socketpair with 0, 1 and several descriptors, and
 * hostile input (garbage, truncated, oversized, unknown, wrong descriptor
 * counts) that must be rejected without leaking a descriptor.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qd_err.h"
#include "qd_fdpass.h"
#include "qd_ipc.h"
#include "qd_test.h"

static qd_ipc_msg m, r;
static uint8_t raw[QD_IPC_MAX_MSG + 64];

/* open_fds - how many descriptors this process has open */
static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own descriptor */
}

static void pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        exit(99);
    }
    int big = 256 * 1024;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
}

static void test_ipc_roundtrip_no_fds(void)
{
    int sv[2];
    char s[64];
    uint32_t v32;
    uint64_t v64;

    pair(sv);
    qd_ipc_msg_init(&m, QD_MSG_STATUS, 42);
    QD_EXPECT_INT(qd_ipc_put_u32(&m, QD_F_CONNECTIONS, 7), 0);
    QD_EXPECT_INT(qd_ipc_put_u64(&m, QD_F_TIME_MS, 0x0102030405060708ULL), 0);
    QD_EXPECT_INT(qd_ipc_put_str(&m, QD_F_TEXT, "hello"), 0);
    QD_EXPECT_INT(qd_ipc_send(sv[0], &m), 0);
    QD_EXPECT_INT(qd_ipc_recv(sv[1], &r), 0);
    QD_EXPECT_INT(r.type, QD_MSG_STATUS);
    QD_EXPECT_INT(r.id, 42);
    QD_EXPECT_INT(r.fd_count, 0);
    QD_EXPECT_INT(qd_ipc_get_u32(&r, QD_F_CONNECTIONS, &v32), 0);
    QD_EXPECT_INT(v32, 7);
    QD_EXPECT_INT(qd_ipc_get_u64(&r, QD_F_TIME_MS, &v64), 0);
    if (v64 != 0x0102030405060708ULL)
        QD_FAIL("u64: got %llx", (unsigned long long)v64);
    QD_EXPECT_INT(qd_ipc_get_str(&r, QD_F_TEXT, s, sizeof(s)), 0);
    QD_EXPECT_STR(s, "hello");
    /* Bounded getters: absent, wrong size, too small a buffer. */
    QD_EXPECT_INT(qd_ipc_get_u32(&r, QD_F_STREAMS, &v32), QD_ERR_NOTFOUND);
    QD_EXPECT_INT(qd_ipc_get_u32(&r, QD_F_TIME_MS, &v32), QD_ERR_INVAL);
    QD_EXPECT_INT(qd_ipc_get_u64(&r, QD_F_CONNECTIONS, &v64), QD_ERR_INVAL);
    QD_EXPECT_INT(qd_ipc_get_str(&r, QD_F_TEXT, s, 5), QD_ERR_TOOBIG);
    close(sv[0]);
    close(sv[1]);
}

/* check_fd_is_file - |fd| reads back |want| */
static void check_fd_is_file(int fd, const char *want)
{
    char buf[64] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

    if (n < 0)
        QD_FAIL("pread fd %d failed", fd);
    else
        buf[n] = '\0';
    QD_EXPECT_STR(buf, want);
    if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
        QD_FAIL("received fd %d is not close-on-exec", fd);
}

static int temp_file(const char *content)
{
    char path[] = "/tmp/qd_test_ipc_XXXXXX";
    int fd = mkstemp(path);

    unlink(path);
    if (write(fd, content, strlen(content)) != (ssize_t)strlen(content))
        exit(99);
    return fd;
}

static void test_ipc_roundtrip_one_fd(void)
{
    int sv[2], fd = temp_file("one");
    uint32_t role;

    pair(sv);
    qd_ipc_msg_init(&m, QD_MSG_CHANNEL, 1);
    qd_ipc_put_u32(&m, QD_F_ROLE, 2);
    qd_ipc_put_u32(&m, QD_F_INSTANCE, 0);
    QD_EXPECT_INT(qd_ipc_put_fd(&m, fd), 0);
    QD_EXPECT_INT(qd_ipc_send(sv[0], &m), 0);
    close(fd); /* sending lends the descriptor; ours can go */
    QD_EXPECT_INT(qd_ipc_recv(sv[1], &r), 0);
    QD_EXPECT_INT(r.fd_count, 1);
    QD_EXPECT_INT(qd_ipc_get_u32(&r, QD_F_ROLE, &role), 0);
    QD_EXPECT_INT(role, 2);
    check_fd_is_file(r.fds[0], "one");
    int taken = qd_ipc_msg_take_fd(&r, 0);
    QD_EXPECT_INT(r.fds[0], -1);
    QD_EXPECT_INT(qd_ipc_msg_take_fd(&r, 1), -1);
    close(taken);
    close(sv[0]);
    close(sv[1]);
}

static void test_ipc_roundtrip_many_fds(void)
{
    int sv[2], fds[QD_IPC_MAX_FDS];
    char want[16];
    int before = open_fds();

    pair(sv);
    qd_ipc_msg_init(&m, QD_MSG_SOCKETS, 0);
    for (int i = 0; i < QD_IPC_MAX_FDS; i++) {
        snprintf(want, sizeof(want), "file%d", i);
        fds[i] = temp_file(want);
        qd_ipc_put_str(&m, QD_F_ADDR, want);
        QD_EXPECT_INT(qd_ipc_put_fd(&m, fds[i]), 0);
    }
    QD_EXPECT_INT(qd_ipc_put_fd(&m, 0), QD_ERR_FDS); /* one too many */
    QD_EXPECT_INT(qd_ipc_send(sv[0], &m), 0);
    for (int i = 0; i < QD_IPC_MAX_FDS; i++)
        close(fds[i]);
    QD_EXPECT_INT(qd_ipc_recv(sv[1], &r), 0);
    QD_EXPECT_INT(r.fd_count, QD_IPC_MAX_FDS);
    for (uint32_t i = 0; i < r.fd_count; i++) {
        snprintf(want, sizeof(want), "file%u", i);
        check_fd_is_file(r.fds[i], want);
    }
    /* Iterate the repeated fields in order. */
    size_t pos = 0, len;
    uint16_t tag;
    const uint8_t *val;
    int n = 0;
    while (qd_ipc_next(&r, &pos, &tag, &val, &len)) {
        snprintf(want, sizeof(want), "file%d", n++);
        if (tag != QD_F_ADDR || len != strlen(want) || memcmp(val, want, len) != 0)
            QD_FAIL("field %d wrong", n - 1);
    }
    QD_EXPECT_INT(n, QD_IPC_MAX_FDS);
    qd_ipc_msg_close_fds(&r);
    close(sv[0]);
    close(sv[1]);
    QD_EXPECT_INT(open_fds(), before);
}

static void test_ipc_body_limit(void)
{
    static char big[QD_IPC_MAX_BODY];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    qd_ipc_msg_init(&m, QD_MSG_CONFIG, 0);
    QD_EXPECT_INT(qd_ipc_put_str(&m, QD_F_TEXT, big), QD_ERR_TOOBIG); /* > 65535 field */
    big[60000] = '\0';
    QD_EXPECT_INT(qd_ipc_put_str(&m, QD_F_TEXT, big), 0);
    QD_EXPECT_INT(qd_ipc_put_str(&m, QD_F_TEXT, big), QD_ERR_TOOBIG); /* body full */
    QD_EXPECT_INT(m.len, 60004);
}

/* encode_ok - a valid STATUS message in raw; returns its length */
static size_t encode_ok(void)
{
    qd_ipc_msg_init(&m, QD_MSG_STATUS, 9);
    qd_ipc_put_u32(&m, QD_F_CONNECTIONS, 3);
    qd_ipc_put_str(&m, QD_F_TEXT, "abc");
    return (size_t)qd_ipc_encode(&m, raw, sizeof(raw));
}

static void test_ipc_decode_hostile(void)
{
    size_t n = encode_ok();

    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 0), 0);
    /* Every truncation of a valid message is rejected. */
    for (size_t cut = 0; cut < n; cut++) {
        int rv = qd_ipc_decode(&r, raw, cut, 0);
        if (rv != QD_ERR_TRUNC)
            QD_FAIL("cut at %zu: got %d, want QD_ERR_TRUNC", cut, rv);
    }
    /* Trailing junk beyond the declared length. */
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n + 1, 0), QD_ERR_TOOBIG);
    /* Declared length over the maximum. */
    raw[4] = 0x7f;
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 0), QD_ERR_TOOBIG);
    /* Total size over the maximum. */
    n = encode_ok();
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, QD_IPC_MAX_MSG + 1, 0), QD_ERR_TOOBIG);
    /* Unknown type. */
    raw[0] = 0xff;
    raw[1] = 0xee;
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 0), QD_ERR_UNKNOWN);
    /* Unknown field tag. */
    n = encode_ok();
    raw[QD_IPC_HDR_LEN] = 0x7f;
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 0), QD_ERR_UNKNOWN);
    /* A u32 field with the wrong length: shrink it to 3 bytes. */
    n = encode_ok();
    raw[QD_IPC_HDR_LEN + 3] = 3;
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 0) < 0, 1);
    /* A field whose length overruns the body. */
    n = encode_ok();
    raw[QD_IPC_HDR_LEN + 8 + 3] = 200;
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 0), QD_ERR_TRUNC);
    /* A string with a NUL inside. */
    n = encode_ok();
    raw[QD_IPC_HDR_LEN + 8 + 4 + 1] = '\0';
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 0), QD_ERR_INVAL);
    /* Descriptors where none are allowed, and none where one is required. */
    n = encode_ok();
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 1), QD_ERR_FDS);
    qd_ipc_msg_init(&m, QD_MSG_CHANNEL, 0);
    n = (size_t)qd_ipc_encode(&m, raw, sizeof(raw));
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 0), QD_ERR_FDS);
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 2), QD_ERR_FDS);
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 1), 0);
    /* LOG_FD: the access log's descriptor, or none (logging off), never two. */
    qd_ipc_msg_init(&m, QD_MSG_LOG_FD, 0);
    n = (size_t)qd_ipc_encode(&m, raw, sizeof(raw));
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 0), 0);
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 1), 0);
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 2), QD_ERR_FDS);
    /* TLS_FILES: certificate and key, or none (the master could not open them). */
    qd_ipc_msg_init(&m, QD_MSG_TLS_FILES, 0);
    n = (size_t)qd_ipc_encode(&m, raw, sizeof(raw));
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 0), 0);
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 2), 0);
    QD_EXPECT_INT(qd_ipc_decode(&r, raw, n, 3), QD_ERR_FDS);
    QD_EXPECT_STR(qd_ipc_type_name(QD_MSG_TLS_FILES), "tls-files");
    /* Encode into too small a buffer. */
    QD_EXPECT_INT(qd_ipc_encode(&m, raw, 4), QD_ERR_NOSPACE);
}

static void test_ipc_garbage(void)
{
    /* Deterministic pseudo-random garbage: never a crash, never success by accident. */
    uint32_t x = 12345;
    int ok = 0;

    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(round % 200);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            raw[i] = (uint8_t)(x >> 16);
        }
        if (qd_ipc_decode(&r, raw, n, round % 3) == 0)
            ok++;
    }
    if (ok > 0)
        printf("note: %d random inputs happened to be valid messages\n", ok);
}

static void test_ipc_recv_rejects_and_closes_fds(void)
{
    int sv[2];
    int before;
    uint8_t junk[40];

    pair(sv);
    before = open_fds();
    /* Garbage bytes with two descriptors: rejected, both closed. */
    int a = temp_file("a"), b = temp_file("b");
    int two[2] = {a, b};
    memset(junk, 0xab, sizeof(junk));
    QD_EXPECT_INT(qd_fdpass_send(sv[0], junk, sizeof(junk), two, 2), 0);
    close(a);
    close(b);
    int rv = qd_ipc_recv(sv[1], &r);
    if (rv >= 0)
        QD_FAIL("garbage accepted");
    QD_EXPECT_INT(open_fds(), before);
    /* A valid STATUS that carries a descriptor it must not: rejected, closed. */
    size_t n = encode_ok();
    a = temp_file("c");
    QD_EXPECT_INT(qd_fdpass_send(sv[0], raw, n, &a, 1), 0);
    close(a);
    QD_EXPECT_INT(qd_ipc_recv(sv[1], &r), QD_ERR_FDS);
    QD_EXPECT_INT(open_fds(), before);
    /* The channel is still usable afterwards. */
    QD_EXPECT_INT(qd_fdpass_send(sv[0], raw, n, NULL, 0), 0);
    QD_EXPECT_INT(qd_ipc_recv(sv[1], &r), 0);
    /* Oversized: more bytes than a message may have. */
    static uint8_t huge[QD_IPC_MAX_MSG + 100];
    memset(huge, 0, sizeof(huge));
    a = temp_file("d");
    int rv2 = qd_fdpass_send(sv[0], huge, sizeof(huge), &a, 1);
    close(a);
    if (rv2 == 0) {
        QD_EXPECT_INT(qd_ipc_recv(sv[1], &r), QD_ERR_TOOBIG);
        QD_EXPECT_INT(open_fds(), before);
    }
    /* More descriptors than a message may carry: rejected, all closed. */
    int many[QD_FDPASS_MAX + 1];
    for (int i = 0; i < QD_FDPASS_MAX + 1; i++)
        many[i] = temp_file("e");
    QD_EXPECT_INT(qd_fdpass_send(sv[0], raw, n, many, QD_FDPASS_MAX + 1), QD_ERR_FDS);
    for (int i = 0; i < QD_FDPASS_MAX + 1; i++)
        close(many[i]);
    QD_EXPECT_INT(open_fds(), before);
    /* End of file. */
    close(sv[0]);
    QD_EXPECT_INT(qd_ipc_recv(sv[1], &r), QD_ERR_EOF);
    close(sv[1]);
}

static void test_ipc_nonblocking(void)
{
    int sv[2];

    pair(sv);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    QD_EXPECT_INT(qd_ipc_recv(sv[1], &r), QD_ERR_AGAIN);
    size_t n = encode_ok();
    int rv = 0, sent = 0;
    while ((rv = qd_fdpass_send(sv[0], raw, n, NULL, 0)) == 0 && sent < 100000)
        sent++;
    QD_EXPECT_INT(rv, QD_ERR_AGAIN);
    close(sv[1]);
    QD_EXPECT_INT(qd_fdpass_send(sv[0], raw, n, NULL, 0), QD_ERR_EOF);
    close(sv[0]);
}

static void test_ipc_type_names(void)
{
    QD_EXPECT_STR(qd_ipc_type_name(QD_MSG_CONFIG), "config");
    QD_EXPECT_STR(qd_ipc_type_name(QD_MSG_LOG_FD), "log-fd");
    QD_EXPECT_STR(qd_ipc_type_name(999), "unknown");
}

/* A connection record with the most paths fits one small datagram and decodes back. */
static void test_ipc_rec_conn(void)
{
    static qd_ipc_msg d;
    static uint8_t ebuf[QD_IPC_MAX_MSG];
    char peer[64];
    uint64_t v;

    qd_ipc_msg_init(&m, QD_MSG_REC_CONN, 0);
    QD_EXPECT_INT(qd_ipc_put_str(&m, QD_F_CONN_ID, "0011223344556677"), 0);
    for (int i = 0; i < QD_REC_MAX_PATHS; i++)
        QD_EXPECT_INT(qd_ipc_put_str(&m, QD_F_PEER, "[2001:db8::1234:5678:9abc:def0]:65535"), 0);
    QD_EXPECT_INT(qd_ipc_put_u64(&m, QD_F_BYTES_OUT, 1ULL << 40), 0);
    QD_EXPECT_INT(qd_ipc_put_u64(&m, QD_F_SRTT_US, 1234), 0);
    QD_EXPECT_INT(qd_ipc_put_u32(&m, QD_F_CLOSE_REASON, QD_REC_REASON_IDLE), 0);
    QD_EXPECT_INT(qd_ipc_put_str(&m, QD_F_CIPHER, "TLS13-AES128-GCM-SHA256"), 0);
    int n = qd_ipc_encode(&m, ebuf, sizeof(ebuf));
    if (n <= 0 || n > 1024)
        QD_FAIL("encoded %d bytes, want 1..1024", n);
    QD_EXPECT_INT(qd_ipc_decode(&d, ebuf, (size_t)n, 0), 0);
    QD_EXPECT_INT(qd_ipc_get_u64(&d, QD_F_BYTES_OUT, &v), 0);
    QD_EXPECT_INT(v == 1ULL << 40, 1);
    QD_EXPECT_INT(qd_ipc_get_str(&d, QD_F_PEER, peer, sizeof(peer)), 0);
    QD_EXPECT_STR(peer, "[2001:db8::1234:5678:9abc:def0]:65535");
    QD_EXPECT_STR(qd_ipc_type_name(QD_MSG_REC_CONN), "rec-conn");
    QD_EXPECT_STR(qd_ipc_type_name(QD_MSG_REC_REQUEST), "rec-request");
    QD_EXPECT_STR(qd_ipc_type_name(QD_MSG_REC_SAMPLE), "rec-sample");
    QD_EXPECT_STR(qd_ipc_type_name(QD_MSG_REC_LOSS), "rec-loss");
    /* A u64 field with 4 bytes is rejected, as for every other kind. */
    qd_ipc_msg_init(&m, QD_MSG_REC_REQUEST, 0);
    qd_ipc_put_u32(&m, QD_F_DURATION_US, 7);
    n = qd_ipc_encode(&m, ebuf, sizeof(ebuf));
    QD_EXPECT_INT(qd_ipc_decode(&d, ebuf, (size_t)n, 0), QD_ERR_INVAL);
    /* Records carry no descriptors. */
    qd_ipc_msg_init(&m, QD_MSG_REC_SAMPLE, 0);
    n = qd_ipc_encode(&m, ebuf, sizeof(ebuf));
    QD_EXPECT_INT(qd_ipc_decode(&d, ebuf, (size_t)n, 1), QD_ERR_FDS);
}

/*
 * A proxied request's record at its largest (the path cut at 1024 bytes, the
 * server at QD_REC_SERVER_MAX - 1) still fits a REC_BATCH with room to
 * spare, and its upstream fields decode back.
 */
static void test_ipc_rec_request_upstream(void)
{
    static qd_ipc_msg d;
    static uint8_t ebuf[QD_IPC_MAX_MSG];
    char path[1025], server[QD_REC_SERVER_MAX], got[QD_REC_SERVER_MAX];
    uint32_t status;
    uint64_t us;

    memset(path, 'p', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    memset(server, 's', sizeof(server) - 1);
    server[sizeof(server) - 1] = '\0';
    qd_ipc_msg_init(&m, QD_MSG_REC_REQUEST, 0);
    qd_ipc_put_str(&m, QD_F_CONN_ID, "00112233445566778899aabbccddeeff00112233");
    qd_ipc_put_u32(&m, QD_F_INSTANCE, 7);
    qd_ipc_put_u64(&m, QD_F_QUIC_STREAM, 1ULL << 60);
    qd_ipc_put_u64(&m, QD_F_TIME_MS, 1ULL << 42);
    qd_ipc_put_str(&m, QD_F_METHOD, "PROPPATCH");
    qd_ipc_put_str(&m, QD_F_PATH, path);
    qd_ipc_put_u32(&m, QD_F_STATUS, 502);
    qd_ipc_put_u64(&m, QD_F_BYTES_IN, 1);
    qd_ipc_put_u64(&m, QD_F_BYTES_OUT, 2);
    qd_ipc_put_u64(&m, QD_F_DURATION_US, 3);
    qd_ipc_put_u64(&m, QD_F_TTFB_US, 4);
    qd_ipc_put_str(&m, QD_F_PROTO, QD_PROTO_H1);
    QD_EXPECT_INT(qd_ipc_put_str(&m, QD_F_SERVER, server), 0);
    QD_EXPECT_INT(qd_ipc_put_u32(&m, QD_F_UP_STATUS, 0), 0);
    QD_EXPECT_INT(qd_ipc_put_u64(&m, QD_F_UP_TIME_US, 123456), 0);
    int n = qd_ipc_encode(&m, ebuf, sizeof(ebuf));
    /* five such records in one batch, each F_BODY with its 4-byte field head */
    if (n <= 0 || 5 * ((size_t)n + 4) > QD_REC_BATCH_BYTES - QD_IPC_HDR_LEN)
        QD_FAIL("encoded %d bytes, want five to fit a batch of %d", n, QD_REC_BATCH_BYTES);
    QD_EXPECT_INT(qd_ipc_decode(&d, ebuf, (size_t)n, 0), 0);
    QD_EXPECT_INT(qd_ipc_get_str(&d, QD_F_SERVER, got, sizeof(got)), 0);
    QD_EXPECT_STR(got, server);
    QD_EXPECT_INT(qd_ipc_get_u32(&d, QD_F_UP_STATUS, &status), 0);
    QD_EXPECT_INT((int)status, 0);
    QD_EXPECT_INT(qd_ipc_get_u64(&d, QD_F_UP_TIME_US, &us), 0);
    QD_EXPECT_INT(us == 123456, 1);
    /* the kinds: F_UP_STATUS is a u32, F_UP_TIME_US a u64 */
    qd_ipc_msg_init(&m, QD_MSG_REC_REQUEST, 0);
    qd_ipc_put_u64(&m, QD_F_UP_STATUS, 200);
    n = qd_ipc_encode(&m, ebuf, sizeof(ebuf));
    QD_EXPECT_INT(qd_ipc_decode(&d, ebuf, (size_t)n, 0), QD_ERR_INVAL);
    qd_ipc_msg_init(&m, QD_MSG_REC_REQUEST, 0);
    qd_ipc_put_u32(&m, QD_F_UP_TIME_US, 200);
    n = qd_ipc_encode(&m, ebuf, sizeof(ebuf));
    QD_EXPECT_INT(qd_ipc_decode(&d, ebuf, (size_t)n, 0), QD_ERR_INVAL);
    /* the next tag is not one yet */
    qd_ipc_msg_init(&m, QD_MSG_REC_REQUEST, 0);
    qd_ipc_put_u32(&m, QD_F_UP_TIME_US + 1, 200);
    n = qd_ipc_encode(&m, ebuf, sizeof(ebuf));
    QD_EXPECT_INT(qd_ipc_decode(&d, ebuf, (size_t)n, 0), QD_ERR_UNKNOWN);
}

/* Close reasons and closers have names; out-of-range values say so. */
static void test_ipc_rec_names(void)
{
    QD_EXPECT_STR(qd_rec_reason_name(QD_REC_REASON_NONE), "none");
    QD_EXPECT_STR(qd_rec_reason_name(QD_REC_REASON_IDLE), "idle");
    QD_EXPECT_STR(qd_rec_reason_name(QD_REC_REASON_HANDSHAKE_TIMEOUT), "handshake_timeout");
    QD_EXPECT_STR(qd_rec_reason_name(QD_REC_REASON_STATELESS_RESET), "stateless_reset");
    QD_EXPECT_STR(qd_rec_reason_name(QD_REC_REASON_COUNT), "unknown");
    QD_EXPECT_STR(qd_rec_reason_name(0xffffffffu), "unknown");
    QD_EXPECT_STR(qd_rec_close_by_name(QD_REC_CLOSE_BY_CLIENT), "client");
    QD_EXPECT_STR(qd_rec_close_by_name(QD_REC_CLOSE_BY_SERVER), "server");
    QD_EXPECT_STR(qd_rec_close_by_name(99), "unknown");
}

int main(void)
{
    QD_RUN(test_ipc_roundtrip_no_fds);
    QD_RUN(test_ipc_roundtrip_one_fd);
    QD_RUN(test_ipc_roundtrip_many_fds);
    QD_RUN(test_ipc_body_limit);
    QD_RUN(test_ipc_decode_hostile);
    QD_RUN(test_ipc_garbage);
    QD_RUN(test_ipc_recv_rejects_and_closes_fds);
    QD_RUN(test_ipc_nonblocking);
    QD_RUN(test_ipc_type_names);
    QD_RUN(test_ipc_rec_conn);
    QD_RUN(test_ipc_rec_request_upstream);
    QD_RUN(test_ipc_rec_names);
    QD_TEST_DONE();
}
