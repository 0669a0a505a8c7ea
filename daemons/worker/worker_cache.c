/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_cache - static answers the app granted (the fast path)
 * SYNOPSIS
 *	worker_cache_find(), worker_cache_put(), worker_cache_unref(),
 *	worker_cache_clear()
 * DESCRIPTION
 *	When the app answers a GET with a whole file and QD_RESP_F_GRANT, the
 *	worker keeps the descriptor and the answer's header fields (and the
 *	103 Early Hints it saw before it), keyed by the request's :path and
 *	Accept-Encoding value exactly as the client sent them. For
 *	file_cache_valid the worker then answers GET and HEAD for that key
 *	itself (worker_h3.c: 200, 206 and 304), without a message to the app.
 *	At most file_cache_max entries are kept; the least recently used one
 *	goes first. A file of at most WK_FILE_MEM_MAX bytes is read once into
 *	the entry (while the cache holds less than WK_CACHE_MEM_MAX of them)
 *	and its descriptor closed: nghttp3 then sends from that memory, with
 *	no read and no copy per request. An entry leaves the table when it
 *	expires, is evicted or
 *	the configuration is reloaded; its descriptor is closed once the last
 *	stream reading from it is done (a reference count).
 *
 *	The app stays the only process that decides what may be served and
 *	opens files: the worker only repeats an answer the app gave for the
 *	same key, so a file replaced on disk is seen at most file_cache_valid
 *	late (as with nginx's open_file_cache_valid).
 * DIAGNOSTICS
 *	None: a grant that cannot be kept is simply not cached.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_http.h"

/* local */
#include "worker.h"

#define MIN_SLOTS 64

static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ the_worker.cache.seed; /* FNV-1a, seeded */

    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)key[i]) * 1099511628211ULL;
    return h;
}

static void lru_unlink(wk_cache *t, wk_file *f)
{
    if (f->newer)
        f->newer->older = f->older;
    else
        t->newest = f->older;
    if (f->older)
        f->older->newer = f->newer;
    else
        t->oldest = f->newer;
    f->newer = f->older = NULL;
}

static void lru_push(wk_cache *t, wk_file *f)
{
    f->older = t->newest;
    f->newer = NULL;
    if (t->newest)
        t->newest->newer = f;
    else
        t->oldest = f;
    t->newest = f;
}

static void file_free(wk_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->data != NULL) {
        the_worker.cache.mem -= f->size;
        free(f->data);
    }
    free(f);
}

/* load - a small file's bytes into memory (then its descriptor is closed) */
static void load(wk_cache *t, wk_file *f)
{
    ssize_t n;

    if (f->size == 0 || f->size > WK_FILE_MEM_MAX || t->mem + f->size > WK_CACHE_MEM_MAX)
        return;
    f->data = qd_xmalloc(f->size);
    do
        n = pread(f->fd, f->data, f->size, 0);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)f->size) { /* changed meanwhile: keep reading the file */
        free(f->data);
        f->data = NULL;
        return;
    }
    t->mem += f->size;
    close(f->fd);
    f->fd = -1;
}

/* drop - take |f| out of the table; freed now or when its last reader is done */
static void drop(wk_cache *t, wk_file *f)
{
    wk_file **pp = &t->slots[f->hash & (t->nslots - 1)];

    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
    lru_unlink(t, f);
    t->count--;
    f->cached = false;
    if (f->refs == 0)
        file_free(f);
}

void worker_cache_unref(wk_file *f)
{
    if (--f->refs == 0 && !f->cached)
        file_free(f);
}

void worker_cache_clear(worker *w)
{
    wk_cache *t = &w->cache;

    while (t->oldest != NULL)
        drop(t, t->oldest);
}

wk_file *worker_cache_find(worker *w, const char *key, size_t keylen)
{
    wk_cache *t = &w->cache;
    uint64_t h;

    if (t->count == 0)
        return NULL;
    h = key_hash(key, keylen);
    for (wk_file *f = t->slots[h & (t->nslots - 1)]; f != NULL; f = f->hnext) {
        if (f->hash != h || f->keylen != keylen || memcmp(f->key, key, keylen) != 0)
            continue;
        if (worker_now() >= f->expires_ns) {
            drop(t, f); /* the app decides again */
            return NULL;
        }
        lru_unlink(t, f);
        lru_push(t, f);
        return f;
    }
    return NULL;
}

/* grow - a table of at least twice |want| slots (a power of two) */
static void grow(wk_cache *t, size_t want)
{
    size_t n = MIN_SLOTS;
    wk_file **slots;

    while (n < 2 * want)
        n *= 2;
    if (n <= t->nslots)
        return;
    slots = qd_xcalloc(n, sizeof(*slots));
    for (size_t i = 0; i < t->nslots; i++) {
        while (t->slots[i] != NULL) {
            wk_file *f = t->slots[i];
            t->slots[i] = f->hnext;
            f->hnext = slots[f->hash & (n - 1)];
            slots[f->hash & (n - 1)] = f;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
}

/* size_of - bytes of |n| fields' names and values, each NUL-terminated */
static size_t size_of(const nghttp3_nv *nv, size_t n)
{
    size_t len = 0;

    for (size_t i = 0; i < n; i++)
        len += nv[i].namelen + nv[i].valuelen + 2;
    return len;
}

/* copy_fields - |n| fields into |dst|, their strings at |*pool| (NUL-terminated) */
static void copy_fields(nghttp3_nv *dst, const nghttp3_nv *src, size_t n, char **pool)
{
    for (size_t i = 0; i < n; i++) {
        char *name = *pool, *value = name + src[i].namelen + 1;
        memcpy(name, src[i].name, src[i].namelen);
        name[src[i].namelen] = '\0';
        memcpy(value, src[i].value, src[i].valuelen);
        value[src[i].valuelen] = '\0';
        dst[i] = (nghttp3_nv){(uint8_t *)name, (uint8_t *)value, src[i].namelen, src[i].valuelen,
                              NGHTTP3_NV_FLAG_NONE};
        *pool = value + src[i].valuelen + 1;
    }
}

wk_file *worker_cache_put(worker *w, const char *key, size_t keylen, int fd, uint64_t size,
                          const nghttp3_nv *nv, size_t nnv, const nghttp3_nv *hints,
                          size_t nhints)
{
    wk_cache *t = &w->cache;
    size_t max = (size_t)w->child.conf.file_cache_max;
    const char *etag = NULL, *lm = NULL;
    time_t mtime;
    wk_file *f, *old;
    char *pool;

    if (max == 0 || nnv > WK_FILE_MAX_FIELDS || nhints > WK_FILE_MAX_FIELDS)
        return NULL;
    f = qd_xmalloc(sizeof(*f) + (nnv + nhints) * sizeof(nghttp3_nv) + keylen + 1 +
                   size_of(nv, nnv) + size_of(hints, nhints));
    memset(f, 0, sizeof(*f));
    f->nv = (nghttp3_nv *)(f + 1);
    f->hints = f->nv + nnv;
    f->key = (char *)(f->hints + nhints);
    memcpy(f->key, key, keylen);
    f->key[keylen] = '\0';
    pool = f->key + keylen + 1;
    copy_fields(f->nv, nv, nnv, &pool);
    copy_fields(f->hints, hints, nhints, &pool);
    f->nnv = nnv;
    f->nhints = nhints;
    /* The validators the conditionals are checked against: no grant without them. */
    for (size_t i = 0; i < nnv; i++) {
        if (f->nv[i].namelen == 4 && memcmp(f->nv[i].name, "etag", 4) == 0)
            etag = (const char *)f->nv[i].value;
        else if (f->nv[i].namelen == 13 && memcmp(f->nv[i].name, "last-modified", 13) == 0)
            lm = (const char *)f->nv[i].value;
    }
    if (etag == NULL || lm == NULL) {
        free(f);
        return NULL;
    }
    f->etag = etag;
    f->mtime = qd_http_date_parse(lm, &mtime) == 0 ? mtime : 0;
    f->keylen = keylen;
    f->hash = key_hash(key, keylen);
    f->fd = fd;
    f->size = size;
    f->expires_ns = worker_now() + (uint64_t)w->child.conf.file_cache_valid_ms * 1000000ULL;
    f->refs = 1; /* the caller's stream */
    load(t, f);

    /* A newer grant for the same key replaces the old one. */
    for (old = t->nslots ? t->slots[f->hash & (t->nslots - 1)] : NULL; old; old = old->hnext)
        if (old->hash == f->hash && old->keylen == keylen && memcmp(old->key, key, keylen) == 0)
            break;
    if (old != NULL)
        drop(t, old);
    while (t->count >= max && t->oldest != NULL)
        drop(t, t->oldest);
    grow(t, t->count + 1);
    f->hnext = t->slots[f->hash & (t->nslots - 1)];
    t->slots[f->hash & (t->nslots - 1)] = f;
    lru_push(t, f);
    f->cached = true;
    t->count++;
    return f;
}
