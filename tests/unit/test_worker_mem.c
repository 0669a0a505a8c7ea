/* SPDX-License-Identifier: MIT */
/*
 * test_worker_mem - the worker's allocator for ngtcp2 and nghttp3
 * (daemons/worker/worker_mem.c): size classes, reuse, calloc and realloc
 * semantics, the caps, decay, a double free, ASan poisoning (in the
 * --enable-sanitizers build), and nghttp3 running on it.
 */
#include "config.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nghttp3/nghttp3.h>

#include "qd_test.h"
#include "worker_mem.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* want_class - the size of the class a request of |n| bytes should get */
static size_t want_class(size_t n)
{
    if (n <= 256)
        return n == 0 ? 16 : (n + 15) / 16 * 16;
    return (n + 31) / 32 * 32;
}

static wk_mem_stats stats(void)
{
    wk_mem_stats s;
    worker_mem_get_stats(&s);
    return s;
}

static void test_worker_mem_classes(void)
{
    worker_mem_release();
    for (size_t n = 0; n <= WK_MEM_MAX_POOLED; n++) {
        wk_mem_stats a = stats();
        unsigned char *p = worker_mem_malloc(n);
        wk_mem_stats b = stats();
        if (p == NULL || (uintptr_t)p % 16 != 0) {
            QD_FAIL("malloc(%zu): got %p, want a 16-byte aligned block", n, (void *)p);
            return;
        }
        if (b.used_bytes - a.used_bytes != want_class(n)) {
            QD_FAIL("malloc(%zu): class of %zu bytes, want %zu", n, b.used_bytes - a.used_bytes,
                    want_class(n));
            return;
        }
        memset(p, 0xa5, n); /* all of it is ours (ASan would say otherwise) */
        worker_mem_free(p);
        if (stats().used_bytes != a.used_bytes) {
            QD_FAIL("free after malloc(%zu): used %zu, want %zu", n, stats().used_bytes,
                    a.used_bytes);
            return;
        }
    }
    worker_mem_release();
    QD_EXPECT_INT(stats().held_bytes, 0);
    QD_EXPECT_INT(stats().held_count, 0);
}

static void test_worker_mem_reuse(void)
{
    worker_mem_release();
    wk_mem_stats s0 = stats();
    void *p = worker_mem_malloc(100);
    worker_mem_free(p);
    QD_EXPECT_INT(stats().held_count, 1);
    void *q = worker_mem_malloc(97); /* same class (112) */
    QD_EXPECT_INT(q == p, 1);
    void *r = worker_mem_malloc(200); /* another class: nothing on its list */
    wk_mem_stats s1 = stats();
    QD_EXPECT_INT(s1.hits - s0.hits, 1);
    QD_EXPECT_INT(s1.misses - s0.misses, 2);
    QD_EXPECT_INT(s1.held_count, 0);
    worker_mem_free(q);
    worker_mem_free(r);
    worker_mem_free(NULL);
    QD_EXPECT_INT(stats().used_bytes, s0.used_bytes);
    worker_mem_release();
}

static void test_worker_mem_calloc(void)
{
    unsigned char *p = worker_mem_malloc(64);
    memset(p, 0xff, 64);
    worker_mem_free(p);
    unsigned char *q = worker_mem_calloc(8, 8); /* the same block, cleared */
    QD_EXPECT_INT(q == p, 1);
    int dirty = 0;
    for (size_t i = 0; i < 64; i++)
        dirty |= q[i];
    QD_EXPECT_INT(dirty, 0);
    worker_mem_free(q);
    QD_EXPECT_INT(worker_mem_calloc(SIZE_MAX / 2 + 1, 2) == NULL, 1);
    QD_EXPECT_INT(worker_mem_malloc(SIZE_MAX - 8) == NULL, 1);
    void *z = worker_mem_calloc(0, 16);
    QD_EXPECT_INT(z != NULL, 1);
    worker_mem_free(z);
    unsigned char *big = worker_mem_calloc(3, 5000);
    dirty = 0;
    for (size_t i = 0; i < 15000; i++)
        dirty |= big[i];
    QD_EXPECT_INT(dirty, 0);
    worker_mem_free(big);
    worker_mem_release();
}

/* fill, check - a recognisable pattern */
static void fill(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 7 + 3);
}

static int check(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 7 + 3))
            return 0;
    return 1;
}

static void test_worker_mem_realloc(void)
{
    worker_mem_release();
    wk_mem_stats s0 = stats();
    unsigned char *p = worker_mem_realloc(NULL, 20); /* as malloc: class 32 */
    fill(p, 20);
    unsigned char *q = worker_mem_realloc(p, 32); /* still fits */
    QD_EXPECT_INT(q == p, 1);
    QD_EXPECT_INT(check(q, 20), 1);
    fill(q, 32);
    p = worker_mem_realloc(q, 8); /* shrinks in place */
    QD_EXPECT_INT(p == q, 1);
    QD_EXPECT_INT(check(p, 8), 1);
    q = worker_mem_realloc(p, 300); /* another class: moved, content kept */
    QD_EXPECT_INT(check(q, 8), 1);
    QD_EXPECT_INT(stats().held_count, 1); /* the old block of class 32 */
    fill(q, 300);
    p = worker_mem_realloc(q, 10000); /* to a large block */
    QD_EXPECT_INT(check(p, 300), 1);
    QD_EXPECT_INT(stats().large - s0.large, 1);
    fill(p, 10000);
    q = worker_mem_realloc(p, 100000); /* large to larger */
    QD_EXPECT_INT(check(q, 10000), 1);
    QD_EXPECT_INT(stats().used_bytes - s0.used_bytes, 100000);
    p = worker_mem_realloc(q, 50); /* a large block stays large */
    QD_EXPECT_INT(check(p, 50), 1);
    QD_EXPECT_INT(stats().used_bytes - s0.used_bytes, 50);
    QD_EXPECT_INT(worker_mem_realloc(p, 0) == NULL, 1); /* frees */
    QD_EXPECT_INT(stats().used_bytes, s0.used_bytes);
    p = worker_mem_malloc(40);
    QD_EXPECT_INT(worker_mem_realloc(p, SIZE_MAX - 4) == NULL, 1); /* p untouched */
    worker_mem_free(p);
    QD_EXPECT_INT(stats().used_bytes, s0.used_bytes);
    worker_mem_release();
}

static void test_worker_mem_large(void)
{
    worker_mem_release();
    wk_mem_stats s0 = stats();
    void *p = worker_mem_malloc(WK_MEM_MAX_POOLED + 1);
    QD_EXPECT_INT(stats().large - s0.large, 1);
    QD_EXPECT_INT(stats().misses - s0.misses, 0);
    worker_mem_free(p);
    QD_EXPECT_INT(stats().held_count, 0); /* straight back to malloc */
    QD_EXPECT_INT(stats().used_bytes, s0.used_bytes);
}

static void test_worker_mem_class_cap(void)
{
    enum { N = 200 };
    void *p[N];
    size_t keep = WK_MEM_CLASS_KEEP / 1024 > WK_MEM_CLASS_KEEP_MIN ? WK_MEM_CLASS_KEEP / 1024
                                                                   : WK_MEM_CLASS_KEEP_MIN;

    worker_mem_release();
    wk_mem_stats s0 = stats();
    for (int i = 0; i < N; i++)
        p[i] = worker_mem_malloc(1000); /* class 1024 */
    for (int i = 0; i < N; i++)
        worker_mem_free(p[i]);
    QD_EXPECT_INT(stats().held_count, keep);
    QD_EXPECT_INT(stats().released - s0.released, N - keep);
    worker_mem_release();
}

static void test_worker_mem_total_cap(void)
{
    enum { PER_CLASS = 600 };
    static void *p[WK_MEM_CLASSES][PER_CLASS];
    size_t sizes[WK_MEM_CLASSES], n = 0;

    for (size_t s = 1; s <= WK_MEM_MAX_POOLED && n < WK_MEM_CLASSES; s++)
        if (n == 0 || want_class(s) != sizes[n - 1])
            sizes[n++] = want_class(s);
    QD_EXPECT_INT(n, WK_MEM_CLASSES);
    worker_mem_release();
    wk_mem_stats s0 = stats();
    for (size_t c = 0; c < n; c++)
        for (int i = 0; i < PER_CLASS; i++)
            p[c][i] = worker_mem_malloc(sizes[c]);
    for (size_t c = 0; c < n; c++)
        for (int i = 0; i < PER_CLASS; i++)
            worker_mem_free(p[c][i]);
    wk_mem_stats s1 = stats();
    if (s1.held_bytes > WK_MEM_HELD_MAX)
        QD_FAIL("held %zu bytes, over the cap of %d", s1.held_bytes, WK_MEM_HELD_MAX);
    if (s1.held_bytes + 16 + WK_MEM_MAX_POOLED <= WK_MEM_HELD_MAX)
        QD_FAIL("held %zu bytes: the cap of %d should have been reached", s1.held_bytes,
                WK_MEM_HELD_MAX);
    QD_EXPECT_INT(s1.released - s0.released + s1.held_count, n * PER_CLASS);
    QD_EXPECT_INT(s1.used_bytes, s0.used_bytes);
    worker_mem_release();
    QD_EXPECT_INT(stats().held_bytes, 0);
}

static void test_worker_mem_decay(void)
{
    void *p[10];

    worker_mem_release();
    worker_mem_decay(); /* low-water marks start from here */
    for (int i = 0; i < 10; i++)
        p[i] = worker_mem_malloc(48);
    for (int i = 0; i < 10; i++)
        worker_mem_free(p[i]);
    /* They came on the lists during this interval: kept. */
    QD_EXPECT_INT(worker_mem_decay(), 0);
    QD_EXPECT_INT(stats().held_count, 10);
    /* 4 were used during the next one: 6 never were, and go. */
    for (int i = 0; i < 4; i++)
        p[i] = worker_mem_malloc(40);
    for (int i = 0; i < 4; i++)
        worker_mem_free(p[i]);
    QD_EXPECT_INT(worker_mem_decay(), 6 * (16 + 48));
    QD_EXPECT_INT(stats().held_count, 4);
    /* Idle: the rest goes. */
    QD_EXPECT_INT(worker_mem_decay(), 4 * (16 + 48));
    QD_EXPECT_INT(stats().held_count, 0);
    QD_EXPECT_INT(stats().held_bytes, 0);
}

/* dies_freeing_twice - in a child: free a block twice; 1 if that aborted */
static int dies_freeing_twice(size_t size)
{
    pid_t pid = fork();
    int status;

    if (pid == 0) {
        void *p = worker_mem_malloc(size);
        worker_mem_free(p);
        worker_mem_free(p);
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

static void test_worker_mem_double_free(void)
{
    QD_EXPECT_INT(dies_freeing_twice(24), 1);
}

static void test_worker_mem_poison(void)
{
#ifdef TEST_ASAN
    unsigned char *p = worker_mem_malloc(20);
    QD_EXPECT_INT(__asan_address_is_poisoned(p + 19), 0);
    QD_EXPECT_INT(__asan_address_is_poisoned(p + 20), 1); /* the class has 32: poisoned */
    QD_EXPECT_INT(__asan_address_is_poisoned(p - 1), 1);  /* the header */
    p = worker_mem_realloc(p, 30);
    QD_EXPECT_INT(__asan_address_is_poisoned(p + 29), 0);
    QD_EXPECT_INT(__asan_address_is_poisoned(p + 30), 1);
    worker_mem_free(p);
    QD_EXPECT_INT(stats().held_count >= 1, 1);
    QD_EXPECT_INT(__asan_address_is_poisoned(p), 1); /* waiting on its list */
    QD_EXPECT_INT(__asan_address_is_poisoned(p + 8), 1);
    worker_mem_release();
#else
    printf("     (not an ASan build: nothing poisoned to check)\n");
#endif
}

/* nghttp3 on this allocator: a server connection reads a client's control
 * stream and a request, and everything it allocated comes back. */
static int h3_ok;

static int on_end_headers(nghttp3_conn *conn, int64_t stream_id, int fin, void *conn_user_data,
                          void *stream_user_data)
{
    h3_ok++;
    return 0;
}

static void test_worker_mem_nghttp3(void)
{
    nghttp3_callbacks cb = {.end_headers = on_end_headers};
    nghttp3_settings settings;
    nghttp3_conn *conn = NULL;
    /* client control stream: type 0x00, SETTINGS (empty) */
    static const uint8_t ctrl[] = {0x00, 0x04, 0x00};
    /* HEADERS on stream 0: QPACK prefix 0 0, :method GET (static 17),
     * :scheme https (23), :path / (1), :authority "a" (literal, name 0) */
    static const uint8_t req[] = {0x01, 0x08, 0x00, 0x00, 0xd1, 0xd7, 0xc1, 0x50, 0x01, 'a'};
    uint64_t used0 = stats().used_bytes;

    nghttp3_settings_default(&settings);
    settings.qpack_max_dtable_capacity = 4096;
    settings.qpack_blocked_streams = 100;
    QD_EXPECT_INT(nghttp3_conn_server_new(&conn, &cb, &settings, &worker_mem_nghttp3, NULL), 0);
    if (conn == NULL)
        return;
    QD_EXPECT_INT(nghttp3_conn_bind_control_stream(conn, 3), 0);
    QD_EXPECT_INT(nghttp3_conn_bind_qpack_streams(conn, 7, 11), 0);
    nghttp3_conn_set_max_client_streams_bidi(conn, 100);
    QD_EXPECT_INT(nghttp3_conn_read_stream(conn, 2, ctrl, sizeof(ctrl), 0), (long)sizeof(ctrl));
    for (int64_t id = 0; id < 40; id += 4)
        QD_EXPECT_INT(nghttp3_conn_read_stream(conn, id, req, sizeof(req), 1), (long)sizeof(req));
    QD_EXPECT_INT(h3_ok, 10);
    if (stats().used_bytes <= used0)
        QD_FAIL("nghttp3 allocated nothing through worker_mem_nghttp3");
    nghttp3_conn_del(conn);
    QD_EXPECT_INT(stats().used_bytes, used0);
    worker_mem_release();
}

int main(void)
{
    QD_RUN(test_worker_mem_classes);
    QD_RUN(test_worker_mem_reuse);
    QD_RUN(test_worker_mem_calloc);
    QD_RUN(test_worker_mem_realloc);
    QD_RUN(test_worker_mem_large);
    QD_RUN(test_worker_mem_class_cap);
    QD_RUN(test_worker_mem_total_cap);
    QD_RUN(test_worker_mem_decay);
    QD_RUN(test_worker_mem_double_free);
    QD_RUN(test_worker_mem_poison);
    QD_RUN(test_worker_mem_nghttp3);
    QD_TEST_DONE();
}
