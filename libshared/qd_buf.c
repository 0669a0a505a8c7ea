/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_buf - growable text buffer
 * SYNOPSIS
 *	qd_buf_init(), qd_buf_release(), qd_buf_reset(), qd_buf_printf(),
 *	qd_buf_append(), qd_buf_str(), qd_buf_json_string()
 * DESCRIPTION
 *	For control paths only (it allocates with qd_xrealloc).
 */
#include "config.h"

/* system */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_buf.h"

/* reserve - make room for |extra| more bytes plus the NUL */
static void reserve(qd_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;

    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = qd_xrealloc(b->data, cap);
    b->cap = cap;
}

void qd_buf_init(qd_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void qd_buf_release(qd_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    qd_buf_init(b);
}

void qd_buf_reset(qd_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void qd_buf_append(qd_buf *b, const char *s, size_t len)
{
    reserve(b, len);
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void qd_buf_printf(qd_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *qd_buf_str(const qd_buf *b)
{
    return b->data ? b->data : "";
}

void qd_buf_json_string(qd_buf *b, const char *s)
{
    qd_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            qd_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            qd_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            qd_buf_append(b, "\\n", 2);
            break;
        case '\t':
            qd_buf_append(b, "\\t", 2);
            break;
        case '\r':
            qd_buf_append(b, "\\r", 2);
            break;
        default:
            if (*p < 0x20)
                qd_buf_printf(b, "\\u%04x", *p);
            else
                qd_buf_append(b, (const char *)p, 1);
        }
    }
    qd_buf_append(b, "\"", 1);
}
