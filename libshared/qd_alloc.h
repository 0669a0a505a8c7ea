/* SPDX-License-Identifier: MIT */
#ifndef QD_ALLOC_H
#define QD_ALLOC_H

#include <stddef.h>

/*
 * qd_xmalloc, qd_xcalloc, qd_xrealloc, qd_xstrdup, qd_xstrndup allocate or
 * die: on failure they log "out of memory" and exit(1) (Postfix mymalloc).
 * Use them on control paths only; the data path uses pools.
 */
void *qd_xmalloc(size_t size);
void *qd_xcalloc(size_t nmemb, size_t size);
void *qd_xrealloc(void *ptr, size_t size);
char *qd_xstrdup(const char *s);
char *qd_xstrndup(const char *s, size_t n);

/*
 * qd_wipe overwrites |len| bytes at |p| with zeros in a way the compiler
 * may not elide (explicit_bzero). Use it for secrets before free.
 */
void qd_wipe(void *p, size_t len);

#endif /* QD_ALLOC_H */
