/* SPDX-License-Identifier: MIT */
#ifndef QD_HTTP_H
#define QD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "qd_buf.h"

/*
 * Small pieces of HTTP semantics (RFC 9110) that the app and the worker's
 * fast path share: dates, entity tags, ranges, Accept-Encoding, and the
 * access log line.
 */

#define QD_HTTP_DATE_LEN 64

/* qd_http_date writes |t| as an IMF-fixdate into |out| (QD_HTTP_DATE_LEN). */
void qd_http_date(time_t t, char *out);

/*
 * qd_http_date_parse parses an HTTP-date (IMF-fixdate, RFC 850 or asctime
 * form). Returns 0 and sets |*t|, or -1.
 */
int qd_http_date_parse(const char *s, time_t *t);

/* qd_http_etag writes the strong entity tag of |st| into |out| (|cap| bytes). */
void qd_http_etag(const struct stat *st, char *out, size_t cap);

/*
 * qd_http_etag_match tells whether the If-None-Match value |list| matches
 * |etag| by weak comparison ("*" matches anything).
 */
bool qd_http_etag_match(const char *list, const char *etag);

/* qd_http_reason returns the reason phrase of |status| ("" if unknown). */
const char *qd_http_reason(unsigned status);

/*
 * qd_http_range_parse reads a Range header |h| against a representation
 * of |size| bytes. Returns 1 and sets |*off|, |*len| for one satisfiable
 * byte range (bytes=a-b, a-, -n; clipped to the size); 0 when the header
 * is to be ignored (not "bytes", malformed, several ranges); -1 when it is
 * unsatisfiable (416).
 */
int qd_http_range_parse(const char *h, uint64_t size, uint64_t *off, uint64_t *len);

/*
 * qd_http_accepts tells whether the Accept-Encoding value |list| accepts
 * content-coding |coding| explicitly with a non-zero q ("*" is not honoured).
 */
bool qd_http_accepts(const char *list, const char *coding);

/* qd_http_rfc3339 writes |ts| as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into |out|. */
void qd_http_rfc3339(const struct timespec *ts, char *out, size_t cap);

/*
 * qd_json_escape appends |len| bytes |p| to |out| as the inside of a JSON
 * string: '"', '\\' and control bytes escaped, well-formed UTF-8 copied, any
 * other byte as \u00XX (the byte read as Latin-1).
 */
void qd_json_escape(qd_buf *out, const uint8_t *p, size_t len);

/*
 * qd_http_log_line makes |line| one access log line (format in
 * quicd.conf(5)), newline included: time, peer, "method path version"
 * (method and path escaped: '"', '\\', '%', controls and non-ASCII as %XX;
 * the version from the ALPN |proto|, qd_http_version), status, body bytes,
 * milliseconds, connection id, stream, |extra| (NULL for none: words that
 * begin with a space, such as the upstream of a proxied request), and
 * " cancelled" if so.
 */
void qd_http_log_line(qd_buf *line, const struct timespec *now, const char *peer,
                      const char *method, const char *path, const char *proto, unsigned status,
                      uint64_t bytes_out, double ms, const char *conn_id, uint64_t stream,
                      const char *extra, bool cancelled);

/*
 * qd_http_version returns the HTTP version name of ALPN |proto| (QD_PROTO_*
 * in qd_ipc.h): "HTTP/2" for "h2", "HTTP/1.1" for "http/1.1", else (also
 * for NULL) "HTTP/3".
 */
const char *qd_http_version(const char *proto);

/*
 * qd_http_token - |len| bytes are a token (RFC 9110 5.6.2: a field name,
 * a method); qd_http_authority - a valid Host or :authority: uri-host
 * (reg-name, IPv4, or [IPv6]) with an optional :port, no userinfo, no
 * path, not empty (RFC 9112 3.2, RFC 3986 3.2).
 */
bool qd_http_token(const char *s, size_t len);
bool qd_http_authority(const char *s, size_t len);

#endif /* QD_HTTP_H */
