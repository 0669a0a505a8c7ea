/* SPDX-License-Identifier: MIT */
#ifndef QD_WORKER_MEM_H
#define QD_WORKER_MEM_H

#include <stddef.h>
#include <stdint.h>

#include <ngtcp2/ngtcp2.h>
#include <nghttp3/nghttp3.h>
#include <uv.h>

/*
 * The worker's allocator for ngtcp2 and nghttp3 (worker_mem.c): size
 * classes with free lists, for one single-threaded process. Requests of at
 * most WK_MEM_MAX_POOLED bytes are rounded up to their class and served
 * from its free list; larger ones go straight to malloc.
 */

#define WK_MEM_MAX_POOLED 1024 /* larger requests are plain malloc blocks */
#define WK_MEM_CLASSES 40      /* 16..256 by 16, 288..1024 by 32 */
/* A class's free list keeps at most WK_MEM_CLASS_KEEP bytes or
 * WK_MEM_CLASS_KEEP_MIN blocks, whichever is more; all lists together at
 * most WK_MEM_HELD_MAX bytes. A block freed beyond that goes back to malloc. */
#define WK_MEM_CLASS_KEEP (128 * 1024)
#define WK_MEM_CLASS_KEEP_MIN 32
#define WK_MEM_HELD_MAX (2 * 1024 * 1024)
/* Every WK_MEM_DECAY_MS, the blocks that stayed on a free list through the
 * whole interval go back to malloc: an idle worker keeps nothing. */
#define WK_MEM_DECAY_MS 5000

typedef struct wk_mem_stats {
    size_t held_bytes; /* on the free lists, headers included */
    size_t held_count; /* blocks on the free lists */
    size_t used_bytes; /* handed out and not freed (class sizes; large: as asked) */
    uint64_t hits;     /* allocations a free list served */
    uint64_t misses;   /* allocations of a class that had to call malloc */
    uint64_t large;    /* allocations above WK_MEM_MAX_POOLED */
    uint64_t released; /* freed blocks sent back to malloc because a list was full */
    uint64_t decayed;  /* blocks sent back to malloc by worker_mem_decay */
} wk_mem_stats;

/* The allocators to pass to ngtcp2_conn_server_new and nghttp3_conn_server_new. */
extern const ngtcp2_mem worker_mem_ngtcp2;
extern const nghttp3_mem worker_mem_nghttp3;

/*
 * worker_mem_malloc, worker_mem_calloc, worker_mem_realloc and
 * worker_mem_free behave as malloc(3), calloc(3), realloc(3) and free(3)
 * (malloc of 0 bytes returns a unique pointer; realloc of 0 bytes frees
 * |ptr| and returns NULL; calloc checks |nmemb| x |size| for overflow),
 * for blocks of this allocator only. They return NULL when malloc does.
 * A pointer that did not come from here, or a block freed twice, is a
 * broken invariant: qd_panic() (under ASan the report comes first).
 */
void *worker_mem_malloc(size_t size);
void *worker_mem_calloc(size_t nmemb, size_t size);
void *worker_mem_realloc(void *ptr, size_t size);
void worker_mem_free(void *ptr);

/*
 * worker_mem_decay sends back to malloc the blocks that stayed on their
 * free list since the previous call (the list's low-water mark), and
 * returns how many bytes that was. worker_mem_start calls it every
 * WK_MEM_DECAY_MS.
 */
size_t worker_mem_decay(void);

/* worker_mem_release sends every block on the free lists back to malloc. */
void worker_mem_release(void);

/* worker_mem_get_stats copies the counters into |st|. */
void worker_mem_get_stats(wk_mem_stats *st);

/*
 * worker_mem_start runs worker_mem_decay on |loop| every WK_MEM_DECAY_MS
 * (a timer that does not keep the loop alive), then malloc_trim(0) if the
 * decay gave something back and the blocks in use are at most half their
 * peak since the last trim, and logs the counters at debug level when
 * they moved; and has worker_mem_release run at exit.
 */
void worker_mem_start(uv_loop_t *loop);

#endif /* QD_WORKER_MEM_H */
