/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_alloc - memory allocation that never returns NULL
 * SYNOPSIS
 *	qd_xmalloc(), qd_xcalloc(), qd_xrealloc(), qd_xstrdup(), qd_xstrndup(), qd_wipe()
 * DESCRIPTION
 *	Wrappers around the C allocator for control paths: allocation failure
 *	is fatal (the master restarts us), so callers need no error path.
 * DIAGNOSTICS
 *	"fatal: out of memory (N bytes)" and exit(1).
 */
#include "config.h"

/* system */
#include <stdlib.h>
#include <string.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_log.h"

/* oom - report and exit */
static void oom(size_t size)
{
    qd_fatal("out of memory (%zu bytes)", size);
}

void *qd_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

void *qd_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        oom(nmemb * size);
    return p;
}

void *qd_xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

char *qd_xstrdup(const char *s)
{
    return qd_xstrndup(s, strlen(s));
}

char *qd_xstrndup(const char *s, size_t n)
{
    char *p = qd_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void qd_wipe(void *p, size_t len)
{
    if (p == NULL || len == 0)
        return;
#ifdef HAVE_EXPLICIT_BZERO
    explicit_bzero(p, len);
#else
    volatile unsigned char *v = p;
    while (len--)
        *v++ = 0;
#endif
}
