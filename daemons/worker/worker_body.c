/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_body - response bodies: pooled chunks, file reads, handing out
 * SYNOPSIS
 *	worker_chunk_get(), worker_chunk_put(), worker_body_append(),
 *	worker_body_fill(), worker_body_drop_fd(), worker_body_use_mem(),
 *	worker_req_read_vec(), worker_req_pull(), worker_req_acked()
 * DESCRIPTION
 *	A response body is a queue of chunks in its stream, whatever its
 *	source filled it from: bytes the app sent (worker_body_append), a
 *	file read with pread into at most WORKER_STREAM_CHUNKS chunks at a
 *	time (worker_body_fill: the app's descriptor or the cache's), or a
 *	cached small file's memory, handed out as it is (worker_body_use_mem).
 *	HTTP/3 takes pointers into the chunks (worker_req_read_vec), which
 *	stay ours until the client acknowledges them; HTTP/2 and HTTP/1.1
 *	copy (worker_req_pull). worker_req_acked recycles what was
 *	delivered, tells the source (the app's credit) and reads more of the
 *	file, so a slow client holds a bounded amount of memory.
 *
 *	Chunks of WORKER_CHUNK bytes are pooled per worker (at most
 *	MAX_FREE_CHUNKS free); a small body gets a chunk of its own size.
 * DIAGNOSTICS
 *	A read error is logged; the caller resets the stream.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_log.h"

/* local */
#include "worker.h"

#define MAX_FREE_CHUNKS 256

/*
 * worker_chunk_get - a chunk for |want| more body bytes: one of exactly
 * that size when it is small (a small file's whole body: malloc serves
 * those from its bins, while a fresh 64 KiB block beyond the pool costs
 * page faults), else a pooled WORKER_CHUNK.
 */
wk_chunk *worker_chunk_get(worker *w, size_t want)
{
    wk_chunk *ch = w->free_chunks;

    if (want < WORKER_SMALL_CHUNK) {
        ch = qd_xmalloc(sizeof(*ch) + (want > 0 ? want : 1));
        ch->cap = want > 0 ? want : 1;
    } else if (ch != NULL) {
        w->free_chunks = ch->next;
        w->nfree_chunks--;
    } else {
        ch = qd_xmalloc(sizeof(*ch) + WORKER_CHUNK);
        ch->cap = WORKER_CHUNK;
    }
    ch->next = NULL;
    ch->len = 0;
    return ch;
}

void worker_chunk_put(worker *w, wk_chunk *ch)
{
    if (ch->cap != WORKER_CHUNK || w->nfree_chunks >= MAX_FREE_CHUNKS) {
        free(ch);
        return;
    }
    ch->next = w->free_chunks;
    w->free_chunks = ch;
    w->nfree_chunks++;
}

/* push_chunk - |ch| goes at the end of the stream's body queue */
static void push_chunk(wk_stream *s, wk_chunk *ch)
{
    if (s->last)
        s->last->next = ch;
    else
        s->first = ch;
    s->last = ch;
    s->nchunks++;
}

/* worker_body_append - add bytes to the stream's body queue */
void worker_body_append(wk_stream *s, const uint8_t *data, size_t len)
{
    while (len > 0) {
        wk_chunk *ch = s->last;
        if (ch == NULL || ch->len == ch->cap) {
            ch = worker_chunk_get(s->c->w, WORKER_CHUNK);
            push_chunk(s, ch);
        }
        size_t n = ch->cap - ch->len < len ? ch->cap - ch->len : len;
        memcpy(ch->data + ch->len, data, n);
        ch->len += n;
        s->filled += n;
        data += n;
        len -= n;
    }
}

/* worker_body_discard - forget the body appended so far (nothing of it was handed out) */
void worker_body_discard(wk_stream *s)
{
    while (s->first != NULL) {
        wk_chunk *ch = s->first;
        s->first = ch->next;
        worker_chunk_put(s->c->w, ch);
    }
    s->last = NULL;
    s->nchunks = 0;
    s->filled = s->handed = s->acked = s->ack_skip = 0;
}

/* worker_body_fill - read file body into free chunk slots; -1 on a read error */
int worker_body_fill(wk_stream *s)
{
    while (s->fd >= 0 && s->fd_left > 0 && s->nchunks < WORKER_STREAM_CHUNKS) {
        size_t want = s->fd_left < WORKER_CHUNK ? (size_t)s->fd_left : WORKER_CHUNK;
        wk_chunk *ch = worker_chunk_get(s->c->w, want);
        ssize_t n;
        do
            n = pread(s->fd, ch->data, want, (off_t)s->fd_off);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            worker_chunk_put(s->c->w, ch);
            qd_warn("reading a response body: %s", n < 0 ? strerror(errno) : "file shrank");
            return -1;
        }
        ch->len = (size_t)n;
        push_chunk(s, ch);
        s->filled += (uint64_t)n;
        s->fd_off += (uint64_t)n;
        s->fd_left -= (uint64_t)n;
    }
    if (s->fd >= 0 && s->fd_left == 0) {
        worker_body_drop_fd(s);
        s->eof = true;
    }
    return 0;
}

/* worker_body_drop_fd - done with the body's descriptor: close it, or release the cache entry's */
void worker_body_drop_fd(wk_stream *s)
{
    if (s->file != NULL)
        worker_cache_unref(s->file);
    else if (s->fd >= 0)
        close(s->fd);
    s->file = NULL;
    s->mem = NULL;
    s->fd = -1;
}

/* worker_body_use_mem - the body is [off, off + len) of the cache entry's memory */
void worker_body_use_mem(wk_stream *s, uint64_t off, uint64_t len)
{
    s->mem = s->file->data + off;
    s->filled = len;
    s->eof = true;
}

/*
 * worker_req_read_vec - point |vec| at body bytes not yet handed to the
 * protocol (they stay ours until worker_req_acked). Returns how many
 * vectors, with |*eof| set once the body is complete, or -1 when nothing
 * is ready yet (the stream is then blocked until resumed).
 */
int worker_req_read_vec(wk_stream *s, nghttp3_vec *vec, size_t veccnt, bool *eof)
{
    size_t n = 0;

    *eof = false;
    if (s->mem != NULL) { /* a cached small file: all of it, from the cache's memory */
        if (s->handed < s->filled && veccnt > 0) {
            vec[0].base = (uint8_t *)s->mem + s->handed;
            vec[0].len = (size_t)(s->filled - s->handed);
            s->handed = s->filled;
            n = 1;
        }
        *eof = true;
        return (int)n;
    }
    /* Chunks are freed whole: s->first begins ack_skip bytes before s->acked. */
    uint64_t off = s->acked - s->ack_skip;
    for (wk_chunk *ch = s->first; ch != NULL && n < veccnt; off += ch->len, ch = ch->next) {
        if (off + ch->len <= s->handed)
            continue;
        size_t skip = s->handed > off ? (size_t)(s->handed - off) : 0;
        vec[n].base = ch->data + skip;
        vec[n].len = ch->len - skip;
        s->handed += vec[n].len;
        n++;
    }
    if (s->eof && s->handed == s->filled) {
        *eof = true;
        return (int)n;
    }
    if (n == 0) {
        s->blocked = true;
        return -1;
    }
    return (int)n;
}

/*
 * worker_req_pull - copy up to |cap| body bytes into |buf| for a protocol
 * that copies (HTTP/2, HTTP/1.1 over TLS): they count as delivered at
 * once, so their chunks are recycled and more of the file is read.
 * Returns the bytes copied, with |*eof| once the body is complete, or -1
 * when nothing is ready yet (blocked until resumed).
 */
ssize_t worker_req_pull(wk_stream *s, uint8_t *buf, size_t cap, bool *eof)
{
    nghttp3_vec vec[WORKER_STREAM_CHUNKS + 1];
    size_t got = 0;
    uint64_t start = s->handed;

    *eof = false;
    if (s->mem != NULL) {
        size_t n = s->filled - s->handed < cap ? (size_t)(s->filled - s->handed) : cap;
        memcpy(buf, s->mem + s->handed, n);
        s->handed += n;
        s->acked += n;
        *eof = s->handed == s->filled;
        return (ssize_t)n;
    }
    while (got < cap) {
        int n = worker_req_read_vec(s, vec, 1, eof);
        if (n < 0) {
            if (got > 0)
                s->blocked = false; /* we did get something */
            break;
        }
        if (n == 0)
            break;
        size_t take = vec[0].len < cap - got ? vec[0].len : cap - got;
        memcpy(buf + got, vec[0].base, take);
        got += take;
        /* hand back what did not fit */
        s->handed -= vec[0].len - take;
        if (take < vec[0].len)
            *eof = false;
        if (*eof)
            break;
    }
    if (s->handed > start)
        worker_req_acked(s, s->handed - start);
    if (got == 0 && !*eof)
        return -1;
    return (ssize_t)got;
}

/*
 * worker_req_acked - |len| more response body bytes were delivered (QUIC:
 * acknowledged; TCP: handed to TLS): recycle their chunks, credit the app,
 * read more of the file.
 */
void worker_req_acked(wk_stream *s, uint64_t len)
{
    worker *w = s->c->w;

    s->acked += len;
    s->ack_skip += len;
    /* Free (recycle) the chunks the client has acknowledged completely. */
    while (s->first != NULL && s->first->len <= s->ack_skip) {
        wk_chunk *ch = s->first;
        s->ack_skip -= ch->len;
        s->first = ch->next;
        if (s->first == NULL)
            s->last = NULL;
        s->nchunks--;
        worker_chunk_put(w, ch);
    }
    if (s->src != NULL && s->src->delivered != NULL && !s->src->delivered(s, len))
        return; /* the stream was abandoned */
    if (s->fd >= 0) {
        uint64_t before = s->filled;
        if (worker_body_fill(s) < 0) {
            worker_req_reset(s);
            return;
        }
        if (s->filled > before || s->eof)
            worker_req_resume(s);
    }
}
