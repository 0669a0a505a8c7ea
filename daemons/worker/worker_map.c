/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_map - the CID and request-id tables of a worker
 * SYNOPSIS
 *	wk_map_init(), wk_map_get(), wk_map_put(), wk_map_del()
 * DESCRIPTION
 *	A chained hash table from short byte strings (up to 20 bytes: a CID,
 *	or an 8-byte request id) to a pointer the caller owns. The hash is
 *	seeded from getrandom at init, because clients choose their own
 *	initial DCIDs and could otherwise aim for one chain. It doubles when
 *	the load passes 1.
 * DIAGNOSTICS
 *	Allocation failure is fatal (qd_xcalloc).
 */
#include "config.h"

/* system */
#include <stdlib.h>
#include <string.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_cid.h"

/* local */
#include "worker.h"

/* hash - seeded FNV-1a with a final avalanche */
static uint64_t hash(const wk_map *m, const uint8_t *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ m->seed;

    for (size_t i = 0; i < len; i++) {
        h ^= key[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* grow - double the slot array */
static void grow(wk_map *m)
{
    size_t n = m->nslots * 2;
    wk_map_entry **slots = qd_xcalloc(n, sizeof(*slots));

    for (size_t i = 0; i < m->nslots; i++) {
        wk_map_entry *e = m->slots[i];
        while (e != NULL) {
            wk_map_entry *next = e->next;
            size_t s = hash(m, e->key, e->keylen) & (n - 1);
            e->next = slots[s];
            slots[s] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

void wk_map_init(wk_map *m)
{
    m->nslots = 1024;
    m->count = 0;
    m->slots = qd_xcalloc(m->nslots, sizeof(*m->slots));
    if (qd_random(&m->seed, sizeof(m->seed)) < 0)
        m->seed = (uint64_t)(uintptr_t)m ^ 0x9e3779b97f4a7c15ULL;
}

void *wk_map_get(const wk_map *m, const uint8_t *key, size_t len)
{
    if (len > NGTCP2_MAX_CIDLEN)
        return NULL;
    for (wk_map_entry *e = m->slots[hash(m, key, len) & (m->nslots - 1)]; e; e = e->next)
        if (e->keylen == len && memcmp(e->key, key, len) == 0)
            return e->value;
    return NULL;
}

int wk_map_put(wk_map *m, const uint8_t *key, size_t len, void *value)
{
    if (len > NGTCP2_MAX_CIDLEN || wk_map_get(m, key, len) != NULL)
        return -1;
    if (m->count >= m->nslots)
        grow(m);
    wk_map_entry *e = qd_xmalloc(sizeof(*e));
    size_t s = hash(m, key, len) & (m->nslots - 1);
    memcpy(e->key, key, len);
    e->keylen = (uint8_t)len;
    e->value = value;
    e->next = m->slots[s];
    m->slots[s] = e;
    m->count++;
    return 0;
}

void wk_map_del(wk_map *m, const uint8_t *key, size_t len)
{
    if (len > NGTCP2_MAX_CIDLEN)
        return;
    for (wk_map_entry **pp = &m->slots[hash(m, key, len) & (m->nslots - 1)]; *pp; pp = &(*pp)->next) {
        wk_map_entry *e = *pp;
        if (e->keylen == len && memcmp(e->key, key, len) == 0) {
            *pp = e->next;
            free(e);
            m->count--;
            return;
        }
    }
}
