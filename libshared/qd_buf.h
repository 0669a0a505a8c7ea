/* SPDX-License-Identifier: MIT */
#ifndef QD_BUF_H
#define QD_BUF_H

#include <stddef.h>

/*
 * qd_buf is a growable, always NUL-terminated text buffer for control
 * paths (error lists, status replies, config dumps). It owns |data|.
 */
typedef struct qd_buf {
    char *data;
    size_t len;
    size_t cap;
} qd_buf;

/* qd_buf_init makes an empty buffer; qd_buf_release frees it (NULL-safe). */
void qd_buf_init(qd_buf *b);
void qd_buf_release(qd_buf *b);

/* qd_buf_reset empties the buffer and keeps its memory. */
void qd_buf_reset(qd_buf *b);

/* qd_buf_printf appends formatted text; qd_buf_append appends |len| bytes. */
void qd_buf_printf(qd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qd_buf_append(qd_buf *b, const char *s, size_t len);

/* qd_buf_str returns the text ("" when empty, never NULL). */
const char *qd_buf_str(const qd_buf *b);

/*
 * qd_buf_json_string appends |s| as a JSON string literal (with quotes),
 * escaping quotes, backslashes and control characters.
 */
void qd_buf_json_string(qd_buf *b, const char *s);

#endif /* QD_BUF_H */
