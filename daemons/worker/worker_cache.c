/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_cache - static answers the app granted (the fast path)
 * SYNOPSIS
 *	worker_cache_find(), worker_cache_put(), worker_cache_unref(),
 *	worker_cache_clear(), worker_cache_grant(), worker_cache_source
 * DESCRIPTION
 *	When the app answers a GET with a whole file and QD_RESP_F_GRANT, the
 *	worker keeps the descriptor and the answer's header fields (and the
 *	103 Early Hints it saw before it), keyed by the request's :path and
 *	Accept-Encoding value exactly as the client sent them. For
 *	file_cache_valid the worker then answers GET and HEAD for that key
 *	itself, the first response source (worker_cache_source: 200, 206 and
 *	304, with the app's fields and hints, over any protocol), without a
 *	message to the app.
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

/* --- the fast path: answers from granted files -------------------------------- */

/*
 * req_field - request header |name| (lowercase) copied as a C string into
 * |buf|: 1, or 0 when absent, or -1 when it is longer than |cap| or sent
 * twice (the app then decides).
 */
static int req_field(const wk_stream *s, const char *name, char *buf, size_t cap)
{
    size_t nlen = strlen(name);
    int found = 0;

    for (size_t off = 0; off + 2 <= s->fields.len;) {
        const uint8_t *p = (const uint8_t *)s->fields.data + off;
        size_t flen = (size_t)p[0] << 8 | p[1];
        if (flen > nlen && p[2 + nlen] == '\0' && memcmp(p + 2, name, nlen) == 0) {
            size_t vlen = flen - nlen - 1;
            if (found || vlen >= cap)
                return -1;
            memcpy(buf, p + 3 + nlen, vlen);
            buf[vlen] = '\0';
            found = 1;
        }
        off += 2 + flen;
    }
    return found;
}

/* is_validator - the fields a 304 repeats (as the app's does) */
static bool is_validator(const nghttp3_nv *nv)
{
    static const char *const names[] = {"last-modified", "etag", "cache-control",
                                        "accept-ranges", "vary"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (nv->namelen == strlen(names[i]) && memcmp(nv->name, names[i], nv->namelen) == 0)
            return true;
    return false;
}

/* send_hints - the 103 the app sent before this file's 200 */
static void send_hints(wk_stream *s, const wk_file *f)
{
    nghttp3_nv nv[WK_FILE_MAX_FIELDS + 1];

    if (f->nhints == 0)
        return;
    nv[0] = (nghttp3_nv){(uint8_t *)":status", (uint8_t *)"103", 7, 3, NGHTTP3_NV_FLAG_NONE};
    memcpy(nv + 1, f->hints, f->nhints * sizeof(nv[0]));
    if (worker_req_submit_info(s, nv, f->nhints + 1) != 0)
        worker_req_reset(s);
}

/*
 * start - answer a GET or HEAD from a granted file, as the app would
 * have: 304 by If-None-Match (else If-Modified-Since), 206 for one
 * satisfiable range (subject to If-Range), else 200; HEAD without a body.
 * Returns false to send the request to the app: not cacheable, not
 * cached, expired, an unsatisfiable range (the app makes the 416), or a
 * header the worker does not read alone (too long, or sent twice). A GET
 * that misses remembers its key, for the grant the app may send back.
 */
static bool start(wk_stream *s, bool fin)
{
    static char key[2 * WORKER_MAX_HEAD + 2];
    worker *w = s->c->w;
    char ae[1024], inm[1024], ims[64], rng[256], ir[256], clen[24], crange[80];
    nghttp3_nv nv[WK_FILE_MAX_FIELDS + 2];
    uint64_t off = 0, len;
    size_t n = 0, plen, alen, keylen;
    int has_ae, has_inm, has_ims, has_rng = 0, has_ir = 0, range = 0, status;
    bool head, not_modified;
    wk_file *f;
    time_t t;

    if (w->child.conf.file_cache_max <= 0)
        return false;
    head = strcmp(s->method, "HEAD") == 0;
    if ((!head && strcmp(s->method, "GET") != 0) || s->path[0] != '/' || strchr(s->path, '?'))
        return false;
    if ((has_ae = req_field(s, "accept-encoding", ae, sizeof(ae))) < 0)
        return false;
    plen = strlen(s->path);
    alen = has_ae ? strlen(ae) : 0;
    if (plen + 1 + alen > sizeof(key))
        return false;
    memcpy(key, s->path, plen + 1);
    memcpy(key + plen + 1, ae, alen);
    keylen = plen + 1 + alen;
    if ((f = worker_cache_find(w, key, keylen)) == NULL) {
        if (!head) {
            s->grant_key = qd_xmalloc(keylen);
            memcpy(s->grant_key, key, keylen);
            s->grant_keylen = keylen;
        }
        return false;
    }
    has_inm = req_field(s, "if-none-match", inm, sizeof(inm));
    has_ims = req_field(s, "if-modified-since", ims, sizeof(ims));
    if (!head) {
        has_rng = req_field(s, "range", rng, sizeof(rng));
        has_ir = req_field(s, "if-range", ir, sizeof(ir));
    }
    if (has_inm < 0 || has_ims < 0 || has_rng < 0 || has_ir < 0)
        return false;
    /* RFC 9110 13.2.2: If-None-Match, when present, decides alone. */
    if (has_inm)
        not_modified = qd_http_etag_match(inm, f->etag);
    else
        not_modified = has_ims && qd_http_date_parse(ims, &t) == 0 && f->mtime <= t;
    len = f->size;
    if (!not_modified && has_rng) {
        bool ir_ok = true;
        if (has_ir)
            ir_ok = ir[0] == '"' ? strcmp(ir, f->etag) == 0
                                 : qd_http_date_parse(ir, &t) == 0 && t == f->mtime;
        if (ir_ok && (range = qd_http_range_parse(rng, f->size, &off, &len)) < 0)
            return false;
    }
    s->by_worker = true;
    w->requests++;
    w->cache.hits++;
    if (not_modified) {
        for (size_t i = 0; i < f->nnv; i++)
            if (is_validator(&f->nv[i]))
                nv[n++] = f->nv[i];
        s->eof = true;
        worker_req_submit(s, 304, nv, n, false);
        return true;
    }
    send_hints(s, f);
    memcpy(nv, f->nv, f->nnv * sizeof(nv[0]));
    n = f->nnv;
    status = range > 0 ? 206 : 200;
    if (range > 0)
        nv[n++] = (nghttp3_nv){(uint8_t *)"content-range", (uint8_t *)crange, 13,
                               (size_t)snprintf(crange, sizeof(crange),
                                                "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, off,
                                                off + len - 1, f->size),
                               NGHTTP3_NV_FLAG_NONE};
    nv[n++] = (nghttp3_nv){(uint8_t *)"content-length", (uint8_t *)clen, 14,
                           (size_t)snprintf(clen, sizeof(clen), "%" PRIu64, len),
                           NGHTTP3_NV_FLAG_NONE};
    if (head || len == 0) {
        s->eof = true;
        worker_req_submit(s, status, nv, n, false);
        return true;
    }
    s->file = f;
    f->refs++;
    if (f->data != NULL) {
        worker_body_use_mem(s, off, len);
        worker_req_submit(s, status, nv, n, true);
        return true;
    }
    s->fd = f->fd;
    s->fd_off = off;
    s->fd_left = len;
    if (worker_body_fill(s) < 0) {
        worker_req_reset(s);
        return true;
    }
    worker_req_submit(s, status, nv, n, true);
    return true;
}

const wk_source worker_cache_source = {
    .name = "cache",
    .start = start,
};

/*
 * worker_cache_grant - the app granted this 200 (QD_RESP_F_GRANT): keep the file
 * and its fields, with the hints that came before, for later requests of
 * the same key. The stream then reads through the cache's descriptor.
 */
void worker_cache_grant(wk_stream *s, const nghttp3_nv *nv, size_t n, uint64_t length)
{
    nghttp3_nv hv[WK_FILE_MAX_FIELDS];
    size_t nh = 0;
    wk_file *f;

    for (size_t off = 0; off + 2 <= s->hints.len && nh < WK_FILE_MAX_FIELDS;) {
        const uint8_t *p = (const uint8_t *)s->hints.data + off;
        size_t flen = (size_t)p[0] << 8 | p[1];
        const uint8_t *nul = memchr(p + 2, '\0', flen);
        if (nul != NULL)
            hv[nh++] = (nghttp3_nv){(uint8_t *)p + 2, (uint8_t *)nul + 1, (size_t)(nul - p - 2),
                                    flen - (size_t)(nul - p - 2) - 1, NGHTTP3_NV_FLAG_NONE};
        off += 2 + flen;
    }
    f = worker_cache_put(s->c->w, s->grant_key, s->grant_keylen, s->fd, length, nv, n, hv, nh);
    if (f != NULL) {
        s->file = f;
        s->c->w->cache.grants++;
    }
}
