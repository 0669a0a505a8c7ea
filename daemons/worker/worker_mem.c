/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_mem - the allocator ngtcp2 and nghttp3 use in the worker
 * SYNOPSIS
 *	worker_mem_ngtcp2, worker_mem_nghttp3, worker_mem_malloc(),
 *	worker_mem_calloc(), worker_mem_realloc(), worker_mem_free(),
 *	worker_mem_decay(), worker_mem_release(), worker_mem_get_stats(),
 *	worker_mem_start()
 * DESCRIPTION
 *	nghttp3 allocates and frees nine small blocks per request (QPACK
 *	buffers, field rcbufs, frames) and ngtcp2 and nghttp3 together about
 *	eighty per connection, of a few fixed sizes. Here those sizes are
 *	rounded up to one of WK_MEM_CLASSES classes (16..256 bytes by 16,
 *	..1024 by 32), and a freed block waits on its class's
 *	free list (LIFO, linked through the block's first word) for the next
 *	request of that class. Larger requests are plain malloc blocks.
 *
 *	Every block starts with a 16-byte header (class, a magic that tells a
 *	block in use from a free one, the size asked for) so that free and
 *	realloc know what they hold. realloc within the block's class stays
 *	in place.
 *
 *	Bounded: a class keeps at most WK_MEM_CLASS_KEEP bytes (at least
 *	WK_MEM_CLASS_KEEP_MIN blocks), all classes at most WK_MEM_HELD_MAX; a
 *	block freed beyond that goes back to malloc. worker_mem_decay, run by
 *	a timer, gives back the blocks a list did not need since the last run
 *	(its low-water mark), so a worker that goes idle keeps none; when the
 *	blocks in use have fallen to half their peak (a load went away), the
 *	timer also has malloc_trim(3) return malloc's free pages to the kernel.
 *
 *	Ownership: a block handed out is the caller's until it is freed; a
 *	block on a free list is this module's; blocks leave only through
 *	free(3). One process, one thread: no locks.
 *
 *	Under AddressSanitizer (the --enable-sanitizers build) the headers
 *	and the free blocks are poisoned and a block in use is addressable
 *	only up to the size asked for: an overflow past it, and a use after
 *	free while the block waits on its list, are reported as with malloc.
 * DIAGNOSTICS
 *	A pointer this allocator did not hand out, or a block freed twice, is
 *	a qd_panic(). The timer logs the counters at debug level when they
 *	moved.
 */
#include "config.h"

/* system */
#include <inttypes.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* libshared */
#include "qd_log.h"

/* local */
#include "worker_mem.h"

#if defined(__SANITIZE_ADDRESS__)
#define WK_MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WK_MEM_ASAN 1
#endif
#endif

#ifdef WK_MEM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define HDR_SIZE 16
#define MAGIC_USED 0x71646d75u /* "qdmu" */
#define MAGIC_FREE 0x71646d66u /* "qdmf" */
#define CLASS_LARGE UINT32_MAX

/* hdr - in front of every block; keeps the block 16-byte aligned */
typedef struct hdr {
    uint32_t cls; /* index in classes[], or CLASS_LARGE */
    uint32_t magic;
    uint64_t size; /* what the caller asked for */
} hdr;

_Static_assert(sizeof(hdr) == HDR_SIZE, "the header keeps malloc's alignment");

typedef struct free_blk {
    struct free_blk *next;
} free_blk;

typedef struct mem_class {
    free_blk *head;
    uint32_t count; /* blocks on the list */
    uint32_t low;   /* the fewest blocks on the list since the last decay */
} mem_class;

/* clang-format off */
#define KEEP(s) (WK_MEM_CLASS_KEEP / (s) > WK_MEM_CLASS_KEEP_MIN ? WK_MEM_CLASS_KEEP / (s) \
                                                                 : WK_MEM_CLASS_KEEP_MIN)
#define C(s) {(s), KEEP(s)}
/* clang-format on */

/* The classes' sizes (class_of's inverse) and how many free blocks each keeps. */
static const struct {
    uint32_t size, keep;
} classes[WK_MEM_CLASSES] = {
    C(16),  C(32),  C(48),  C(64),  C(80),  C(96),  C(112), C(128), C(144), C(160),
    C(176), C(192), C(208), C(224), C(240), C(256), C(288), C(320), C(352), C(384),
    C(416), C(448), C(480), C(512), C(544), C(576), C(608), C(640), C(672), C(704),
    C(736), C(768), C(800), C(832), C(864), C(896), C(928), C(960), C(992), C(1024),
};

static mem_class lists[WK_MEM_CLASSES];
static wk_mem_stats st;
static wk_mem_stats logged; /* st at the last log line */
static uv_timer_t decay_timer;
static size_t used_peak; /* the most st.used_bytes has been since the last trim */

/* class_of - the class of a request of |n| <= WK_MEM_MAX_POOLED bytes */
static inline unsigned class_of(size_t n)
{
    if (n <= 256)
        return n == 0 ? 0 : (unsigned)((n - 1) >> 4);
    return 16 + (unsigned)((n - 257) >> 5);
}

/* header_of - the header of the block handed out as |p|, checked */
static hdr *header_of(void *p)
{
    hdr *h = (hdr *)((char *)p - HDR_SIZE);

    UNPOISON(h, HDR_SIZE);
    if (h->magic != MAGIC_USED || (h->cls >= WK_MEM_CLASSES && h->cls != CLASS_LARGE))
        qd_panic("worker_mem: %p is %s", p,
                 h->magic == MAGIC_FREE ? "freed already" : "not a block of this allocator");
    return h;
}

/* hand_out - block |h| of class |cls| to the caller, who asked for |size| bytes */
static void *hand_out(hdr *h, uint32_t cls, size_t size)
{
    h->cls = cls;
    h->magic = MAGIC_USED;
    h->size = size;
    POISON(h, HDR_SIZE);
    UNPOISON(h + 1, size);
    return h + 1;
}

/* alloc_large - a plain malloc block with a header */
static void *alloc_large(size_t size)
{
    hdr *h;

    if (size > SIZE_MAX - HDR_SIZE || (h = malloc(HDR_SIZE + size)) == NULL)
        return NULL;
    st.large++;
    st.used_bytes += size;
    return hand_out(h, CLASS_LARGE, size);
}

/* alloc_class - a block of class |c| for |size| bytes: from its list, else from malloc */
static void *alloc_class(unsigned c, size_t size)
{
    mem_class *k = &lists[c];
    size_t bytes = HDR_SIZE + classes[c].size;
    hdr *h;

    if (k->head != NULL) {
        free_blk *b = k->head;
        UNPOISON(b, sizeof(*b));
        k->head = b->next;
        if (--k->count < k->low)
            k->low = k->count;
        st.held_bytes -= bytes;
        st.hits++;
        h = (hdr *)((char *)b - HDR_SIZE);
        POISON(b, sizeof(*b)); /* hand_out opens what was asked for */
        UNPOISON(h, HDR_SIZE);
    } else {
        if ((h = malloc(bytes)) == NULL)
            return NULL;
        POISON(h + 1, classes[c].size);
        st.misses++;
    }
    st.used_bytes += classes[c].size;
    if (st.used_bytes > used_peak)
        used_peak = st.used_bytes;
    return hand_out(h, c, size);
}

/* drop_one - the first block on class |c|'s list back to malloc; its bytes */
static size_t drop_one(unsigned c)
{
    mem_class *k = &lists[c];
    free_blk *b = k->head;
    size_t bytes = HDR_SIZE + classes[c].size;
    hdr *h = (hdr *)((char *)b - HDR_SIZE);

    UNPOISON(h, bytes);
    k->head = b->next;
    k->count--;
    st.held_bytes -= bytes;
    free(h);
    return bytes;
}

void *worker_mem_malloc(size_t size)
{
    if (size > WK_MEM_MAX_POOLED)
        return alloc_large(size);
    return alloc_class(class_of(size), size);
}

void *worker_mem_calloc(size_t nmemb, size_t size)
{
    size_t n;
    void *p;

    if (__builtin_mul_overflow(nmemb, size, &n))
        return NULL;
    if ((p = worker_mem_malloc(n)) != NULL)
        memset(p, 0, n);
    return p;
}

void *worker_mem_realloc(void *ptr, size_t size)
{
    hdr *h;
    void *q;

    if (ptr == NULL)
        return worker_mem_malloc(size);
    if (size == 0) {
        worker_mem_free(ptr);
        return NULL;
    }
    h = header_of(ptr);
    if (h->cls == CLASS_LARGE) {
        size_t old = h->size;
        hdr *n;
        if (size > SIZE_MAX - HDR_SIZE || (n = realloc(h, HDR_SIZE + size)) == NULL) {
            POISON(h, HDR_SIZE);
            return NULL;
        }
        st.used_bytes = st.used_bytes - old + size;
        return hand_out(n, CLASS_LARGE, size);
    }
    if (size <= classes[h->cls].size) { /* it fits: in place */
        POISON(ptr, classes[h->cls].size);
        return hand_out(h, h->cls, size);
    }
    size_t old = h->size;
    POISON(h, HDR_SIZE);
    if ((q = worker_mem_malloc(size)) == NULL)
        return NULL;
    memcpy(q, ptr, old);
    worker_mem_free(ptr);
    return q;
}

void worker_mem_free(void *ptr)
{
    hdr *h;

    if (ptr == NULL)
        return;
    h = header_of(ptr);
    if (h->cls == CLASS_LARGE) {
        st.used_bytes -= h->size;
        free(h);
        return;
    }
    unsigned c = h->cls;
    mem_class *k = &lists[c];
    size_t bytes = HDR_SIZE + classes[c].size;

    st.used_bytes -= classes[c].size;
    if (k->count >= classes[c].keep || st.held_bytes + bytes > WK_MEM_HELD_MAX) {
        st.released++;
        UNPOISON(h, bytes);
        free(h);
        return;
    }
    h->magic = MAGIC_FREE;
    free_blk *b = ptr;
    UNPOISON(b, sizeof(*b));
    b->next = k->head;
    k->head = b;
    k->count++;
    st.held_bytes += bytes;
    POISON(h, bytes);
}

size_t worker_mem_decay(void)
{
    size_t bytes = 0;

    for (unsigned c = 0; c < WK_MEM_CLASSES; c++) {
        mem_class *k = &lists[c];
        for (uint32_t n = k->low; n > 0 && k->head != NULL; n--) {
            bytes += drop_one(c);
            st.decayed++;
        }
        k->low = k->count;
    }
    return bytes;
}

void worker_mem_release(void)
{
    for (unsigned c = 0; c < WK_MEM_CLASSES; c++) {
        while (lists[c].head != NULL)
            drop_one(c);
        lists[c].low = 0;
    }
}

void worker_mem_get_stats(wk_mem_stats *out)
{
    *out = st;
    out->held_count = 0;
    for (unsigned c = 0; c < WK_MEM_CLASSES; c++)
        out->held_count += lists[c].count;
}

/* on_decay - the timer: give back what was not needed, say so at debug level */
static void on_decay(uv_timer_t *t)
{
    size_t bytes = worker_mem_decay();
    wk_mem_stats now;

    /* A load went away (the blocks in use are half their peak or less) and
     * the lists gave back what it left behind: have malloc return its free
     * pages to the kernel as well, which glibc does not do by itself for
     * memory below the top of its heap (see PERFORMANCE.md). */
    if (bytes > 0 && st.used_bytes <= used_peak / 2) {
        malloc_trim(0);
        used_peak = st.used_bytes;
    }
    worker_mem_get_stats(&now);
    if (st.hits == logged.hits && st.misses == logged.misses && st.large == logged.large &&
        bytes == 0)
        return;
    qd_debug("ngtcp2/nghttp3 memory: %zu KiB in use, %zu KiB in %zu free blocks; since the last "
             "line: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " large, %" PRIu64
             " blocks freed past the caps, %zu KiB unused freed",
             st.used_bytes / 1024, st.held_bytes / 1024, now.held_count, st.hits - logged.hits,
             st.misses - logged.misses, st.large - logged.large, st.released - logged.released,
             bytes / 1024);
    logged = st;
}

void worker_mem_start(uv_loop_t *loop)
{
    /* The free lists go back at exit too: LeakSanitizer does not follow
     * the links inside poisoned blocks, and would call them leaks. */
    atexit(worker_mem_release);
    uv_timer_init(loop, &decay_timer);
    uv_timer_start(&decay_timer, on_decay, WK_MEM_DECAY_MS, WK_MEM_DECAY_MS);
    uv_unref((uv_handle_t *)&decay_timer); /* it never keeps the loop alive */
}

/* The libraries' allocator interfaces; their user_data is unused. */

static void *t2_malloc(size_t size, void *user_data)
{
    return worker_mem_malloc(size);
}

static void t2_free(void *ptr, void *user_data)
{
    worker_mem_free(ptr);
}

static void *t2_calloc(size_t nmemb, size_t size, void *user_data)
{
    return worker_mem_calloc(nmemb, size);
}

static void *t2_realloc(void *ptr, size_t size, void *user_data)
{
    return worker_mem_realloc(ptr, size);
}

const ngtcp2_mem worker_mem_ngtcp2 = {
    .malloc = t2_malloc,
    .free = t2_free,
    .calloc = t2_calloc,
    .realloc = t2_realloc,
};

const nghttp3_mem worker_mem_nghttp3 = {
    .malloc = t2_malloc,
    .free = t2_free,
    .calloc = t2_calloc,
    .realloc = t2_realloc,
};
