/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the app's handlers of worker messages (app_req_message) on a
 * real channel, the way a hostile or broken worker could drive them. The
 * input is a sequence of operations: a REQ_HEAD, REQ_BODY, REQ_CANCEL or
 * RESP_CREDIT composed from the input's bytes (streams 0..7, paths from a
 * list that hits files, 404s, the API routes and bad escapes, arbitrary
 * flags, bodies and credit), or raw bytes decoded as any message. After
 * each operation the channel is drained as a worker would (its messages
 * decoded, their descriptors closed) and the loop run once; the channel is
 * made full now and then, so heads wait. After the input the worker is
 * dropped (app_req_drop_all, as when its channel closes).
 *
 * Invariants (abort on violation): every message the app sends decodes;
 * once the worker is dropped no request is in flight and no descriptor of a
 * served file is left open (in a request or in the channel's queue).
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app_harness.h"
#include "qd_err.h"
#include "qd_log.h"

/* the app's records, read as a worker would (qd_chan batches messages) */
static qd_ipc_reader rd;

static app the_app;
static int peer = -1;
static char root[64] = "/tmp/fuzz_app.XXXXXX";

/*
 * root_fds - descriptors open on files of the document root (counted by
 * their /proc/self/fd links: libFuzzer's own leak check opens descriptors
 * of its own, which are none of our business)
 */
static int root_fds(void)
{
    char link[64], target[256];
    int n = 0;
    size_t rl = strlen(root);

    for (int fd = 0; fd < 1024; fd++) {
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strncmp(target, root, rl) == 0 && target[rl] == '/')
            n++;
    }
    return n;
}

/* remove_root - at exit: the document root goes */
static void remove_root(void)
{
    static const char *const files[] = {"a.txt", "index.html", "a.txt.gz"};
    char path[128];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", root, files[i]);
        unlink(path);
    }
    rmdir(root);
}

/* setup - once: a document root, the app, one worker channel */
static void setup(void)
{
    char path[128];

    if (mkdtemp(root) == NULL)
        abort();
    atexit(remove_root);
    snprintf(path, sizeof(path), "%s/a.txt", root);
    FILE *f = fopen(path, "w");
    fputs("a small file\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/index.html", root);
    f = fopen(path, "w");
    fputs("<!doctype html><title>x</title>\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/a.txt.gz", root);
    f = fopen(path, "w");
    fputs("not really gzip", f);
    fclose(f);
    qd_log_init("fuzz_app", -1, QD_LOG_STDERR, QD_LOG_ERR);
    app_harness_open(&the_app, open(root, O_PATH | O_DIRECTORY | O_CLOEXEC),
                     open("/dev/null", O_WRONLY | O_CLOEXEC), &peer);
}

/* drain - read what the app sent, as a worker; every message must decode */
static void drain(void)
{
    static qd_ipc_msg m;
    int rv;

    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    while ((rv = qd_ipc_read(peer, &rd, &m)) == 0)
        qd_ipc_msg_close_fds(&m);
    if (rv != QD_ERR_AGAIN)
        abort(); /* the app sent something that does not decode */
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
}

static const char *const paths[] = {
    "/a.txt", "/", "/missing", "/api/time", "/api/echo", "/events", "/stream",
    "/%zz", "/../etc/passwd", "/a.txt?x=1", "/.hidden", "/a.txt/",
};
static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "OPTIONS", ""};
static const char *const names[] = {"range", "if-none-match", "if-modified-since", "if-range",
                                    "accept-encoding", "content-length", "x-any"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static qd_ipc_msg m;
    size_t i = 0;

    if (peer < 0)
        setup();
    app_worker *w = &the_app.workers[0];
    while (i + 4 <= size) {
        uint8_t op = data[i], a = data[i + 1], b = data[i + 2], n = data[i + 3];
        i += 4;
        size_t take = n < size - i ? n : size - i;
        const uint8_t *p = data + i;
        i += take;
        switch (op % 6) {
        case 0: /* REQ_HEAD */
            qd_ipc_msg_init(&m, QD_MSG_REQ_HEAD, 0);
            if (!(b & 0x80))
                qd_ipc_put_u64(&m, QD_F_STREAM, a % 8);
            qd_ipc_put_str(&m, QD_F_METHOD, methods[b % 6]);
            if (!(b & 0x40))
                qd_ipc_put_str(&m, QD_F_PATH, paths[a / 8 % 12]);
            qd_ipc_put_str(&m, QD_F_PEER, "127.0.0.1:1");
            if (!(b & 0x20))
                qd_ipc_put_u32(&m, QD_F_FLAGS, b & 0x3);
            /* header fields: name from the list, value from the input (may hold NULs) */
            for (size_t k = 0; k + 1 < take; k += 16) {
                uint8_t field[64];
                const char *nm = names[p[k] % 7];
                size_t nl = strlen(nm), vl = take - k - 1 < 15 ? take - k - 1 : 15;
                memcpy(field, nm, nl);
                field[nl] = '\0';
                memcpy(field + nl + 1, p + k + 1, vl);
                qd_ipc_put_bytes(&m, QD_F_HEADER, field, nl + 1 + vl);
            }
            app_req_message(w, &m);
            break;
        case 1: /* REQ_BODY */
            qd_ipc_msg_init(&m, QD_MSG_REQ_BODY, 0);
            qd_ipc_put_u64(&m, QD_F_STREAM, a % 8);
            if (!(b & 0x80))
                qd_ipc_put_bytes(&m, QD_F_BODY, p, take);
            qd_ipc_put_u32(&m, QD_F_FLAGS, b & 0x3);
            app_req_message(w, &m);
            break;
        case 2: /* REQ_CANCEL */
            qd_ipc_msg_init(&m, QD_MSG_REQ_CANCEL, 0);
            qd_ipc_put_u64(&m, QD_F_STREAM, a % 8);
            app_req_message(w, &m);
            break;
        case 3: /* RESP_CREDIT */
            qd_ipc_msg_init(&m, QD_MSG_RESP_CREDIT, 0);
            qd_ipc_put_u64(&m, QD_F_STREAM, a % 8);
            qd_ipc_put_u32(&m, QD_F_CREDIT, (uint32_t)b << (n % 24));
            app_req_message(w, &m);
            break;
        case 4: /* any message, as raw bytes */
            if (qd_ipc_decode(&m, p, take, 0) == 0)
                app_req_message(w, &m);
            break;
        default: /* the worker stops reading for a while */
            if (a % 4 == 0)
                app_harness_fill(w);
            break;
        }
        if (op & 0x80)
            continue; /* let messages pile up */
        drain();
    }
    for (int k = 0; k < 2000 && qd_chan_queued(w->ch) > 0; k++)
        drain();
    drain();
    app_req_drop_all(w);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    drain();
    int left = root_fds();
    if (the_app.in_flight != 0 || left != 0) {
        fprintf(stderr, "fuzz_app: in_flight %u, %d descriptors of served files still open\n",
                the_app.in_flight, left);
        abort();
    }
    return 0;
}
