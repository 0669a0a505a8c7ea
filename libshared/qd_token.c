/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_token - bearer tokens of the /metrics endpoint
 * SYNOPSIS
 *	qd_token_read(fd, buf, cap, &why)
 *	qd_token_file_check(path, why, len)
 *	qd_token_bearer_ok(value, len, token, token_len)
 * DESCRIPTION
 *	metrics_token_file holds one token, as written by an operator or a
 *	secrets manager: a final newline is usual and dropped. The master
 *	checks the file with the configuration (quicd -t, start, reload) and
 *	hands the stats daemon an open descriptor, which it reads with
 *	qd_token_read. The check of a request's credentials compares every
 *	byte of the token whatever the request sent (no early exit), so the
 *	time it takes tells nothing about a guess.
 * DIAGNOSTICS
 *	Nothing is logged; failures return a reason for the caller.
 * SEE ALSO
 *	daemons/stats/stats_http.c, RFC 6750 section 2.1
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* libshared */
#include "qd_token.h"

int qd_token_read(int fd, char *buf, size_t cap, const char **why)
{
    struct stat st;
    size_t len = 0;

    if (cap <= QD_TOKEN_MAX) {
        *why = "buffer too small";
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        return -1;
    }
    for (;;) {
        char probe;
        /* Up to QD_TOKEN_MAX bytes into |buf|, then one byte more tells a longer file. */
        bool full = len == QD_TOKEN_MAX;
        ssize_t n = full ? read(fd, &probe, 1) : read(fd, buf + len, QD_TOKEN_MAX - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *why = "cannot be read";
            goto fail;
        }
        if (n == 0)
            break;
        if (full) {
            *why = "longer than 4096 bytes";
            goto fail;
        }
        len += (size_t)n;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        len--;
    if (len == 0) {
        *why = "empty";
        goto fail;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)buf[i] < 0x21 || (unsigned char)buf[i] > 0x7e) {
            *why = "a token is one word of visible ASCII characters";
            goto fail;
        }
    }
    buf[len] = '\0';
    return (int)len;
fail:
    explicit_bzero(buf, cap);
    return -1;
}

int qd_token_file_check(const char *path, char *why, size_t len)
{
    char buf[QD_TOKEN_MAX + 1];
    const char *reason = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    int rv;

    if (fd < 0) {
        snprintf(why, len, "%s", strerror(errno));
        return -1;
    }
    rv = qd_token_read(fd, buf, sizeof(buf), &reason);
    close(fd);
    explicit_bzero(buf, sizeof(buf));
    if (rv < 0) {
        snprintf(why, len, "%s", reason);
        return -1;
    }
    return 0;
}

bool qd_token_bearer_ok(const char *value, size_t len, const char *token, size_t token_len)
{
    static const char scheme[] = "bearer";
    size_t i = 0, n;
    unsigned diff = 0;

    if (token_len == 0 || len < sizeof(scheme))
        return false;
    for (; i < sizeof(scheme) - 1; i++) {
        char ch = value[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != scheme[i])
            return false;
    }
    if (value[i] != ' ' && value[i] != '\t')
        return false;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    value += i;
    len -= i;
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    /* Every byte of the token is compared, also when the lengths differ. */
    diff = len != token_len;
    n = len;
    for (size_t k = 0; k < token_len; k++)
        diff |= (unsigned char)token[k] ^ (unsigned char)(k < n ? value[k] : 0);
    return diff == 0;
}
