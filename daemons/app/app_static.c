/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	app_static - serve files from the document root
 * SYNOPSIS
 *	app_static_handle()
 * DESCRIPTION
 *	GET and HEAD only (405 with "allow: GET, HEAD" otherwise). The path
 *	is decoded and confined by app_path.c; "/" and paths ending in '/'
 *	serve the directory's index.html; a directory without its trailing
 *	slash is redirected (301) to the slash form, as nginx does, so that
 *	relative links in its index resolve; a directory without index.html
 *	is 403 (no listings). Only regular files are served: the response
 *	head carries the open descriptor, offset 0 and the size, and the
 *	worker reads the body itself; the app closes its copy at once.
 *
 *	Headers: content-type by extension, last-modified, a strong etag,
 *	cache-control (when configured, on 200 and 304). If-None-Match
 *	(weak comparison), else If-Modified-Since, give 304 (before any
 *	Range is looked at, RFC 9110 13.2.2). accept-ranges: bytes and vary:
 *	accept-encoding on 200, 206 and 304. One byte range (Range on GET,
 *	subject to If-Range) gives 206 with content-range and the descriptor
 *	at that offset and length; an unsatisfiable one 416 with
 *	content-range naming "*" and the size; several ranges are ignored (200).
 *	When Accept-Encoding allows br or gzip and a regular file named
 *	FILE.br or FILE.gz exists beneath the root, that file is sent with
 *	content-encoding (and its own etag); content-type stays FILE's.
 *	Configured 103 Early Hints go out just before a 200 or 206. HEAD
 *	gets the same headers plus content-length and no body.
 *
 *	Fast path: a whole file to GET for a path without a query goes out
 *	with QD_RESP_F_GRANT (when file_cache_max > 0): the worker may then
 *	answer GET and HEAD for the same path and Accept-Encoding itself
 *	(200, 206, 304, with the hints it saw), for file_cache_valid, from
 *	the descriptor and the headers of this answer (worker_cache.c).
 *
 *	Errors: a "." or ".." segment, ENOENT, ENOTDIR: 404; a symlink
 *	leaving the root (EXDEV), ELOOP, EACCES, a non-regular file: 403; a
 *	bad escape or %00: 400; an over-long path: 414; anything else: 500.
 * DIAGNOSTICS
 *	Symlinks refused for leaving the root are logged at info level, and
 *	unexpected open errors as warnings (both rate-limited).
 */
#include "config.h"

/* system */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* libshared */
#include "qd_buf.h"
#include "qd_log.h"

/* local */
#include "app.h"

/* status_of - the response status for an open error */
static unsigned status_of(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return 404;
    case EXDEV:
    case ELOOP:
    case EACCES:
    case EPERM:
        return 403;
    default:
        return 500;
    }
}

/*
 * index_missing - |rel| ends in index.html and does not exist: 403 when
 * its directory does (nginx's "directory index forbidden"), else 404.
 */
static int index_missing(int root_fd, const char *rel)
{
    char dir[APP_PATH_MAX];
    const char *slash = strrchr(rel, '/');
    struct stat st;
    int fd;

    if (slash == NULL)
        return -EACCES; /* the root itself */
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - rel), rel);
    fd = app_path_open(root_fd, dir, &st);
    if (fd < 0)
        return fd == -EACCES ? -EACCES : -ENOENT;
    close(fd);
    return S_ISDIR(st.st_mode) ? -EACCES : -ENOENT;
}

/* redirect_dir - 301 from a directory to its slash form, query kept */
static void redirect_dir(app_req *r, const char *rel)
{
    static char enc[3 * APP_PATH_MAX + 2];
    const char *query = strchr(r->path, '?');
    qd_buf loc;

    if (app_path_encode(rel, enc, sizeof(enc)) < 0) {
        app_resp_error(r, 414, NULL, NULL);
        return;
    }
    qd_buf_init(&loc);
    qd_buf_printf(&loc, "%s/", enc);
    /* The query goes back as it came, if it is plain printable ASCII. */
    if (query != NULL && strspn(query, "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~") == strlen(query))
        qd_buf_append(&loc, query, strlen(query));
    app_resp_error(r, 301, "location", qd_buf_str(&loc));
    qd_buf_release(&loc);
}

/* is_not_modified - the conditional headers say the client's copy is current */
static bool is_not_modified(const app_req *r, const char *etag, time_t mtime)
{
    const char *inm = app_req_header(r, "if-none-match");
    const char *ims;
    time_t t;

    /* RFC 9110 13.2.2: If-None-Match, when present, decides alone. */
    if (inm != NULL)
        return qd_http_etag_match(inm, etag);
    ims = app_req_header(r, "if-modified-since");
    return ims != NULL && qd_http_date_parse(ims, &t) == 0 && mtime <= t;
}

/* validators - the headers 200 and 304 share */
static void validators(app_req *r, const char *etag, const char *last_modified)
{
    const char *cc = r->w->a->child.conf.cache_control;

    app_resp_header(r, "last-modified", last_modified);
    app_resp_header(r, "etag", etag);
    if (cc != NULL && *cc != '\0')
        app_resp_header(r, "cache-control", cc);
    app_resp_header(r, "accept-ranges", "bytes");
    app_resp_header(r, "vary", "accept-encoding");
}

/*
 * range_of - the byte range to send: 1 with |*off|, |*len|; 0 for the whole
 * representation (no Range, one to ignore, or an If-Range that does not
 * match); -1 for 416. If-Range matches a strong etag exactly, or a date
 * equal to the modification time (RFC 9110 13.1.5).
 */
static int range_of(const app_req *r, const char *etag, time_t mtime, uint64_t size, uint64_t *off,
                    uint64_t *len)
{
    const char *h = app_req_header(r, "range");
    const char *ir = app_req_header(r, "if-range");
    time_t t;

    if (h == NULL)
        return 0;
    if (ir != NULL) {
        if (ir[0] == '"') {
            if (strcmp(ir, etag) != 0)
                return 0;
        } else if (qd_http_date_parse(ir, &t) < 0 || t != mtime) {
            return 0;
        }
    }
    return qd_http_range_parse(h, size, off, len);
}

/*
 * precompressed - swap |*fd|, |*st| for a regular file "rel.br" or
 * "rel.gz" beneath the root when the client accepts that coding. Returns
 * the content-coding, or NULL (the original stays).
 */
static const char *precompressed(const app_req *r, const char *rel, int *fd, struct stat *st)
{
    static const struct {
        const char *coding, *suffix;
    } codings[] = {{"br", ".br"}, {"gzip", ".gz"}};
    const char *ae = app_req_header(r, "accept-encoding");
    char sib[APP_PATH_MAX + 4];
    struct stat sst;

    if (ae == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
        if (!qd_http_accepts(ae, codings[i].coding))
            continue;
        snprintf(sib, sizeof(sib), "%s%s", rel, codings[i].suffix);
        int sfd = app_path_open(r->w->a->root_fd, sib, &sst);
        if (sfd < 0)
            continue;
        if (!S_ISREG(sst.st_mode)) {
            close(sfd);
            continue;
        }
        close(*fd);
        *fd = sfd;
        *st = sst;
        return codings[i].coding;
    }
    return NULL;
}

/*
 * grantable - may the worker answer this path itself from now on (the fast
 * path)? Only a whole file to GET, for a path without a query: what the
 * worker matches on (path and Accept-Encoding) is then all that chose it.
 */
static bool grantable(const app_req *r)
{
    return r->w->a->child.conf.file_cache_max > 0 && strchr(r->path, '?') == NULL;
}

void app_static_handle(app_req *r)
{
    app *a = r->w->a;
    char rel[APP_PATH_MAX], etag[64], last_modified[QD_HTTP_DATE_LEN], length[24];
    char content_range[80];
    bool is_index, is_head = app_req_is_head(r);
    const char *coding;
    uint64_t size, off = 0, len = 0;
    struct stat st;
    int fd, range;

    if (!is_head && strcmp(r->method, "GET") != 0) {
        app_resp_error(r, 405, "allow", "GET, HEAD");
        return;
    }
    switch (app_path_decode(r->path, rel, sizeof(rel), &is_index)) {
    case 0:
        break;
    case APP_PATH_EDOT:
        app_resp_error(r, 404, NULL, NULL);
        return;
    case APP_PATH_ETOOLONG:
        app_resp_error(r, 414, NULL, NULL);
        return;
    default:
        app_resp_error(r, 400, NULL, NULL);
        return;
    }

    fd = app_path_open(a->root_fd, rel, &st);
    if (fd == -ENOENT && is_index)
        fd = index_missing(a->root_fd, rel);
    if (fd < 0) {
        unsigned status = status_of(-fd);
        if (fd == -EXDEV || fd == -ELOOP) {
            static qd_log_limit lim;
            qd_log_limited(&lim, QD_LOG_INFO, "refused /%s: a symlink leaves the document root",
                           rel);
        } else if (status == 500) {
            static qd_log_limit lim;
            qd_log_limited(&lim, QD_LOG_WARN, "open /%s: %s", rel, strerror(-fd));
        }
        app_resp_error(r, status, NULL, NULL);
        return;
    }
    if (S_ISDIR(st.st_mode) && !is_index) {
        close(fd);
        redirect_dir(r, rel);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        app_resp_error(r, 403, NULL, NULL);
        return;
    }

    coding = precompressed(r, rel, &fd, &st);
    qd_http_etag(&st, etag, sizeof(etag));
    qd_http_date(st.st_mtim.tv_sec, last_modified);
    if (is_not_modified(r, etag, st.st_mtim.tv_sec)) {
        app_resp_start(r, 304);
        validators(r, etag, last_modified);
        app_resp_send_head(r, QD_RESP_F_END, -1, 0, 0);
        close(fd);
        return;
    }
    size = (uint64_t)st.st_size;
    range = is_head ? 0 : range_of(r, etag, st.st_mtim.tv_sec, size, &off, &len);
    if (range < 0) {
        snprintf(content_range, sizeof(content_range), "bytes */%" PRIu64, size);
        close(fd);
        app_resp_error(r, 416, "content-range", content_range);
        return;
    }
    app_hints_send(r);
    app_resp_start(r, range > 0 ? 206 : 200);
    app_resp_header(r, "content-type", app_mime_type(rel));
    if (coding != NULL)
        app_resp_header(r, "content-encoding", coding);
    validators(r, etag, last_modified);
    if (range > 0) {
        snprintf(content_range, sizeof(content_range), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                 off, off + len - 1, size);
        app_resp_header(r, "content-range", content_range);
        app_resp_send_head(r, 0, fd, off, len);
    } else if (is_head || size == 0) {
        snprintf(length, sizeof(length), "%" PRIu64, size);
        app_resp_header(r, "content-length", length);
        app_resp_send_head(r, QD_RESP_F_END, -1, 0, 0);
    } else {
        app_resp_send_head(r, grantable(r) ? QD_RESP_F_GRANT : 0, fd, 0, size);
    }
    close(fd);
}
