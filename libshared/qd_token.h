/* SPDX-License-Identifier: MIT */
#ifndef QD_TOKEN_H
#define QD_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Bearer tokens (RFC 6750) for the /metrics endpoint: read from a file
 * the master opened (metrics_token_file), checked against a request's
 * Authorization field in time that does not depend on the request.
 */

#define QD_TOKEN_MAX 4096 /* bytes of a token file, its final newline included */

/*
 * qd_token_read reads a token from |fd| (borrowed; read from its current
 * offset), which must be a regular file of at most QD_TOKEN_MAX bytes.
 * Trailing white space (the final newline, CR, spaces) is dropped; what
 * is left must be non-empty visible ASCII without spaces (0x21..0x7e).
 * The token is written to |buf| (|cap| > QD_TOKEN_MAX bytes) with a NUL.
 * Returns its length, or -1 with a static reason in |*why| (nothing
 * useful is left in |buf|: it is wiped).
 */
int qd_token_read(int fd, char *buf, size_t cap, const char **why);

/*
 * qd_token_file_check opens |path| (without following a FIFO into a
 * blocking open) and reads it as qd_token_read does, for the
 * configuration checks. Returns 0, or -1 with the reason (errno's text
 * or qd_token_read's) in |why| (|len| bytes).
 */
int qd_token_file_check(const char *path, char *why, size_t len);

/*
 * qd_token_bearer_ok returns whether |value| (|len| bytes: an
 * Authorization field value) is "Bearer", case-insensitive, white space,
 * then exactly |token| (|token_len| > 0 bytes), optionally followed by
 * white space. The token comparison reads |token_len| bytes whatever
 * |value| holds, so its time tells nothing about how much of the token
 * a guess got right.
 */
bool qd_token_bearer_ok(const char *value, size_t len, const char *token, size_t token_len);

#endif /* QD_TOKEN_H */
