/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the app's side of the worker protocol (app_req.c) on a
 * real channel: a socketpair whose far end plays the worker. With the
 * channel's queue full, a response head waits in its request (with its own
 * descriptor) and a second request's head does not overwrite it; when the
 * worker reads again both heads arrive, each with its own status, fields
 * and file. A request cancelled while its head waits is forgotten and its
 * descriptor closed. Nothing here counts as a send failure. The protocol
 * the worker names (F_PROTO; none means h3) is the HTTP version of the
 * access log line and of /api/time's answer.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app_harness.h"
#include "qd_err.h"
#include "qd_test.h"

/* the app's records, read as a worker would (qd_chan batches messages) */
static qd_ipc_reader rd;

static app the_app;
static char root[64];

/* setup - a document root with two files, and the app with one worker channel */
static app_worker *setup(int *peer)
{
    char path[128];
    FILE *f;

    snprintf(root, sizeof(root), "/tmp/test_app_req.XXXXXX");
    if (mkdtemp(root) == NULL)
        QD_FAIL("mkdtemp");
    snprintf(path, sizeof(path), "%s/a.txt", root);
    f = fopen(path, "w");
    fputs("the first file\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/b.txt", root);
    f = fopen(path, "w");
    fputs("second, and longer than the first\n", f);
    fclose(f);

    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    app_worker *w = app_harness_open(&the_app, fd, -1, peer);
    return w;
}

/* teardown - remove the document root */
static void teardown(void)
{
    char path[128];

    app_harness_close(&the_app);
    close(the_app.root_fd);
    snprintf(path, sizeof(path), "%s/a.txt", root);
    unlink(path);
    snprintf(path, sizeof(path), "%s/b.txt", root);
    unlink(path);
    rmdir(root);
}

/* request_proto - a GET for |path| on stream |stream| over |proto| (NULL: no F_PROTO) */
static void request_proto(app_worker *w, uint64_t stream, const char *path, const char *proto)
{
    static qd_ipc_msg m;

    qd_ipc_msg_init(&m, QD_MSG_REQ_HEAD, 0);
    qd_ipc_put_u64(&m, QD_F_STREAM, stream);
    qd_ipc_put_str(&m, QD_F_METHOD, "GET");
    qd_ipc_put_str(&m, QD_F_SCHEME, "https");
    qd_ipc_put_str(&m, QD_F_AUTHORITY, "localhost");
    qd_ipc_put_str(&m, QD_F_PATH, path);
    qd_ipc_put_str(&m, QD_F_PEER, "127.0.0.1:1");
    qd_ipc_put_u32(&m, QD_F_FLAGS, QD_REQ_F_END);
    qd_ipc_put_str(&m, QD_F_CONN_ID, "c0ffee");
    qd_ipc_put_u64(&m, QD_F_QUIC_STREAM, stream);
    if (proto != NULL)
        qd_ipc_put_str(&m, QD_F_PROTO, proto);
    app_req_message(w, &m);
}

/* request - a GET for |path| on stream |stream|, as the worker sends it */
static void request(app_worker *w, uint64_t stream, const char *path)
{
    static qd_ipc_msg m;

    qd_ipc_msg_init(&m, QD_MSG_REQ_HEAD, 0);
    qd_ipc_put_u64(&m, QD_F_STREAM, stream);
    qd_ipc_put_str(&m, QD_F_METHOD, "GET");
    qd_ipc_put_str(&m, QD_F_SCHEME, "https");
    qd_ipc_put_str(&m, QD_F_AUTHORITY, "localhost");
    qd_ipc_put_str(&m, QD_F_PATH, path);
    qd_ipc_put_str(&m, QD_F_PEER, "127.0.0.1:1");
    qd_ipc_put_u32(&m, QD_F_FLAGS, QD_REQ_F_END);
    app_req_message(w, &m);
}

/* field_of - the value of header |name| in |m| (static buffer), or "" */
static const char *field_of(const qd_ipc_msg *m, const char *name)
{
    static char out[256];
    size_t pos = 0, len;
    uint16_t tag;
    const uint8_t *val;

    while (qd_ipc_next(m, &pos, &tag, &val, &len)) {
        size_t nl = strlen(name);
        if (tag == QD_F_HEADER && len > nl && memcmp(val, name, nl) == 0 && val[nl] == '\0') {
            snprintf(out, sizeof(out), "%.*s", (int)(len - nl - 1), (const char *)val + nl + 1);
            return out;
        }
    }
    return "";
}

typedef struct got_head {
    uint32_t status;
    char ctype[256];
    char body[128];
} got_head;

/*
 * drain - read everything the app sends until |want| heads (not fillers)
 * arrived or 5 s passed; each head's file is read from its descriptor.
 */
static int drain(int peer, uint64_t *streams, got_head *heads, int want)
{
    static qd_ipc_msg m;
    int n = 0;

    for (int spin = 0; spin < 5000 && n < want; spin++) {
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
        int rv;
        while ((rv = qd_ipc_read(peer, &rd, &m)) == 0) {
            if (m.type == QD_MSG_RESP_HEAD && n < want) {
                uint64_t off = 0, len = 0;
                qd_ipc_get_u64(&m, QD_F_STREAM, &streams[n]);
                qd_ipc_get_u32(&m, QD_F_STATUS, &heads[n].status);
                snprintf(heads[n].ctype, sizeof(heads[n].ctype), "%s",
                         field_of(&m, "content-type"));
                qd_ipc_get_u64(&m, QD_F_OFFSET, &off);
                qd_ipc_get_u64(&m, QD_F_LENGTH, &len);
                heads[n].body[0] = '\0';
                if (m.fd_count == 1 && len < sizeof(heads[n].body)) {
                    ssize_t r = pread(m.fds[0], heads[n].body, (size_t)len, (off_t)off);
                    heads[n].body[r > 0 ? r : 0] = '\0';
                }
                n++;
            }
            qd_ipc_msg_close_fds(&m);
        }
        if (n < want)
            usleep(1000);
    }
    return n;
}

/* open_fds - descriptors this process has open */
static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

static void test_app_req_head_waits_for_room(void)
{
    int peer;
    app_worker *w = setup(&peer);
    uint64_t streams[2] = {0, 0};
    got_head heads[2];

    int fillers = app_harness_fill(w);
    QD_EXPECT_INT(fillers > 100, 1);
    int fds_before = open_fds();
    request(w, 1, "/a.txt");
    request(w, 2, "/b.txt");
    /* Both heads wait in their requests, each holding its own descriptor. */
    QD_EXPECT_INT(open_fds(), fds_before + 2);
    QD_EXPECT_INT(the_app.in_flight, 2);
    QD_EXPECT_INT(the_app.send_failures, 0);
    QD_EXPECT_INT(drain(peer, streams, heads, 2), 2);
    QD_EXPECT_INT(streams[0], 1);
    QD_EXPECT_INT(streams[1], 2);
    QD_EXPECT_INT(heads[0].status, 200);
    QD_EXPECT_INT(heads[1].status, 200);
    QD_EXPECT_STR(heads[0].ctype, "text/plain; charset=utf-8");
    QD_EXPECT_STR(heads[0].body, "the first file\n");
    QD_EXPECT_STR(heads[1].body, "second, and longer than the first\n");
    QD_EXPECT_INT(the_app.in_flight, 0);
    QD_EXPECT_INT(open_fds(), fds_before);
    QD_EXPECT_INT(the_app.send_failures, 0);
    qd_chan_close(w->ch);
    close(peer);
    teardown();
}

static void test_app_req_cancel_while_waiting(void)
{
    int peer;
    app_worker *w = setup(&peer);
    static qd_ipc_msg m;
    uint64_t streams[1] = {0};
    got_head heads[1];

    app_harness_fill(w);
    int fds_before = open_fds();
    request(w, 7, "/a.txt");
    QD_EXPECT_INT(open_fds(), fds_before + 1);
    qd_ipc_msg_init(&m, QD_MSG_REQ_CANCEL, 0);
    qd_ipc_put_u64(&m, QD_F_STREAM, 7);
    app_req_message(w, &m);
    QD_EXPECT_INT(open_fds(), fds_before); /* its descriptor is closed */
    QD_EXPECT_INT(the_app.in_flight, 0);
    request(w, 8, "/b.txt");
    QD_EXPECT_INT(drain(peer, streams, heads, 1), 1);
    QD_EXPECT_INT(streams[0], 8); /* the cancelled head never went out */
    QD_EXPECT_STR(heads[0].body, "second, and longer than the first\n");
    qd_chan_close(w->ch);
    close(peer);
    teardown();
}

/* bodies - RESP_BODY data per stream 1..|n| into |out| until each has ended (or 5 s) */
static void bodies(int peer, char (*out)[256], int n)
{
    static qd_ipc_msg m;
    int ended = 0;

    for (int spin = 0; spin < 5000 && ended < n; spin++) {
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
        while (qd_ipc_read(peer, &rd, &m) == 0) {
            uint64_t stream = 0;
            uint32_t flags = 0;
            const uint8_t *p;
            size_t len;
            qd_ipc_get_u64(&m, QD_F_STREAM, &stream);
            qd_ipc_get_u32(&m, QD_F_FLAGS, &flags);
            if (m.type == QD_MSG_RESP_BODY && stream >= 1 && stream <= (uint64_t)n &&
                qd_ipc_get_bytes(&m, QD_F_BODY, &p, &len) == 0) {
                size_t have = strlen(out[stream - 1]);
                snprintf(out[stream - 1] + have, 256 - have, "%.*s", (int)len, (const char *)p);
                if (flags & QD_RESP_F_END)
                    ended++;
            }
            qd_ipc_msg_close_fds(&m);
        }
        if (ended < n)
            usleep(1000);
    }
}

static void test_app_req_proto(void)
{
    static const char *const protos[] = {NULL, QD_PROTO_H3, QD_PROTO_H2, QD_PROTO_H1,
                                         "0123456789abcdefXYZ" /* too long: h3 */};
    static const char *const want[] = {"HTTP/3", "HTTP/3", "HTTP/2", "HTTP/1.1", "HTTP/3"};
    char out[5][256] = {{0}}, log_path[96], line[512], expect[64];
    int peer;
    app_worker *w = setup(&peer);

    snprintf(log_path, sizeof(log_path), "%s/access.log", root);
    the_app.access_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    QD_EXPECT_INT(the_app.access_fd >= 0, 1);
    for (int i = 0; i < 5; i++)
        request_proto(w, (uint64_t)i + 1, "/api/time", protos[i]);
    bodies(peer, out, 5);
    for (int i = 0; i < 5; i++) {
        snprintf(expect, sizeof(expect), "\"protocol\": \"%s\"", want[i]);
        QD_EXPECT_CONTAINS(out[i], expect);
    }
    /* one line per request, in order, naming the version */
    FILE *f = fopen(log_path, "r");
    for (int i = 0; i < 5; i++) {
        if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
            QD_FAIL("access log line %d missing", i + 1);
            break;
        }
        snprintf(expect, sizeof(expect), " \"GET /api/time %s\" 200 ", want[i]);
        QD_EXPECT_CONTAINS(line, expect);
        snprintf(expect, sizeof(expect), " c0ffee %d\n", i + 1);
        QD_EXPECT_CONTAINS(line, expect);
    }
    if (f != NULL)
        fclose(f);
    close(the_app.access_fd);
    the_app.access_fd = -1;
    unlink(log_path);
    qd_chan_close(w->ch);
    close(peer);
    teardown();
}

int main(void)
{
    QD_RUN(test_app_req_head_waits_for_room);
    QD_RUN(test_app_req_cancel_while_waiting);
    QD_RUN(test_app_req_proto);
    QD_TEST_DONE();
}
