/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	app_path - from a request's :path to a file beneath the document root
 * SYNOPSIS
 *	app_path_decode(), app_path_open(), app_path_open_walk(),
 *	app_path_encode()
 * DESCRIPTION
 *	Two independent defences keep every open inside the root. The decoder
 *	normalises the path textually: one round of %-decoding, then "."
 *	segments are dropped and ".." segments refused (after decoding, so
 *	%2e%2e counts), so the
 *	result names a file below the root by construction. The opener then
 *	lets the kernel enforce it: openat2(RESOLVE_BENEATH) on the root's
 *	directory descriptor refuses any resolution, symlinks included, that
 *	would leave the root (EXDEV). Symlinks that stay inside work, except
 *	absolute ones (RESOLVE_BENEATH refuses those too). Kernels without
 *	openat2 (before 5.6) get a component-by-component walk that follows
 *	no symlink at all.
 * DIAGNOSTICS
 *	Returns APP_PATH_E* or -errno; logs once when openat2 is missing.
 * SEE ALSO
 *	openat2(2), tests/unit/test_app_static.c
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

/* libshared */
#include "qd_log.h"

/* local */
#include "app.h"

#define INDEX_NAME "index.html"

/* hexval - the value of one hex digit, or -1 */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* is_dot_segment - "." or ".." of |len| bytes at |s| */
static bool is_dot_segment(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

int app_path_decode(const char *raw, char *out, size_t cap, bool *is_index)
{
    char dec[APP_PATH_MAX];
    size_t n = 0, o = 0;
    const char *p = raw;

    *is_index = false;
    if (cap == 0 || *p != '/')
        return APP_PATH_EBAD;
    for (; *p != '\0' && *p != '?'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '%') {
            int hi = hexval(p[1]);
            int lo = hi < 0 ? -1 : hexval(p[2]);
            if (lo < 0)
                return APP_PATH_EBAD;
            c = (unsigned char)(hi << 4 | lo);
            if (c == '\0')
                return APP_PATH_EBAD;
            p += 2;
        } else if (c < 0x20 || c == 0x7f) {
            return APP_PATH_EBAD;
        }
        if (n + 1 >= sizeof(dec))
            return APP_PATH_ETOOLONG;
        dec[n++] = (char)c;
    }
    dec[n] = '\0';

    /* Split on '/' (decoded ones too), merging empty segments. */
    for (const char *s = dec; *s != '\0';) {
        while (*s == '/')
            s++;
        if (*s == '\0')
            break;
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 1 && s[0] == '.') {
            s += len; /* "/a/./b" is "/a/b", as nginx and RFC 3986 have it */
            continue;
        }
        if (is_dot_segment(s, len))
            return APP_PATH_EDOT; /* ".." is never resolved: 404 */
        if (o + (o > 0) + len + 1 > cap)
            return APP_PATH_ETOOLONG;
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, s, len);
        o += len;
        s += len;
    }
    if (o == 0 || dec[n - 1] == '/') {
        if (o + (o > 0) + sizeof(INDEX_NAME) > cap)
            return APP_PATH_ETOOLONG;
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, INDEX_NAME, sizeof(INDEX_NAME));
        o += sizeof(INDEX_NAME) - 1;
        *is_index = true;
    }
    out[o] = '\0';
    return 0;
}

/* finish_open - fstat a fresh descriptor; regular files lose O_NONBLOCK */
static int finish_open(int fd, struct stat *st)
{
    if (fstat(fd, st) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    if (S_ISREG(st->st_mode)) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    return fd;
}

/*
 * O_NONBLOCK: opening a FIFO someone left in the root must not hang the
 * process (it is refused afterwards as not a regular file). O_NOCTTY for
 * terminals, likewise.
 */
#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

int app_path_open(int root_fd, const char *rel, struct stat *st)
{
    static bool has_no_openat2;
    struct open_how how;
    int fd = -1;

    if (!has_no_openat2) {
        memset(&how, 0, sizeof(how));
        how.flags = OPEN_FLAGS;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        /* EAGAIN: a concurrent rename or mount; the kernel asks us to retry. */
        for (int i = 0; i < 3; i++) {
            fd = (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
            if (fd >= 0 || errno != EAGAIN)
                break;
        }
        if (fd < 0 && errno != ENOSYS)
            return -errno;
        if (fd < 0) {
            has_no_openat2 = true;
            qd_notice("openat2 is not available (Linux < 5.6): symlinks in document_root "
                      "will not be followed");
        }
    }
    if (has_no_openat2)
        return app_path_open_walk(root_fd, rel, st);
    return finish_open(fd, st);
}

int app_path_open_walk(int root_fd, const char *rel, struct stat *st)
{
    char comp[NAME_MAX + 1];
    const char *s = rel;
    int dir = root_fd, fd, err;

    for (;;) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || len > NAME_MAX || is_dot_segment(s, len)) {
            err = len == 0 ? ENOENT : len > NAME_MAX ? ENAMETOOLONG : EXDEV;
            goto fail;
        }
        memcpy(comp, s, len);
        comp[len] = '\0';
        if (e == NULL)
            break;
        fd = openat(dir, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            err = errno;
            goto fail;
        }
        if (fstat(fd, st) < 0) {
            err = errno;
            close(fd);
            goto fail;
        }
        if (!S_ISDIR(st->st_mode)) {
            err = S_ISLNK(st->st_mode) ? ELOOP : ENOTDIR;
            close(fd);
            goto fail;
        }
        if (dir != root_fd)
            close(dir);
        dir = fd;
        s = e + 1;
    }
    fd = openat(dir, comp, OPEN_FLAGS | O_NOFOLLOW);
    err = errno;
    if (dir != root_fd)
        close(dir);
    if (fd < 0)
        return -err;
    return finish_open(fd, st);
fail:
    if (dir != root_fd)
        close(dir);
    return -err;
}

/* is_path_char - safe unencoded in a URL path (RFC 3986 pchar and '/') */
static bool is_path_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

int app_path_encode(const char *rel, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (cap < 2)
        goto fail;
    out[o++] = '/';
    for (const unsigned char *p = (const unsigned char *)rel; *p != '\0'; p++) {
        if (is_path_char(*p)) {
            if (o + 1 >= cap)
                goto fail;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= cap)
                goto fail;
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return 0;
fail:
    if (cap > 0)
        out[0] = '\0';
    return -1;
}
