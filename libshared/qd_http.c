/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_http - small pieces of HTTP semantics (RFC 9110)
 * SYNOPSIS
 *	qd_http_date(), qd_http_date_parse(), qd_http_etag(),
 *	qd_http_etag_match(), qd_http_reason(), qd_http_range_parse(),
 *	qd_http_accepts(), qd_http_rfc3339(), qd_json_escape(),
 *	qd_http_log_line(), qd_http_version()
 * DESCRIPTION
 *	Dates are formatted as IMF-fixdate with our own day and month names
 *	(strftime's depend on the locale); all three HTTP-date forms are
 *	accepted on input, exactly, as RFC 9110 section 5.6.7 asks. Entity
 *	tags are strong, made from the modification time in nanoseconds and
 *	the size, so a rewrite of a file within the same second still changes
 *	the tag. If-None-Match uses the weak comparison (RFC 9110 13.1.2).
 *	Range handles one byte range (RFC 9110 14.1.2); several ranges or a
 *	syntax error make the header be ignored (a full 200), as the RFC
 *	allows. JSON strings escape every control byte as \u00XX; bytes that
 *	are not part of well-formed UTF-8 are escaped one by one as \u00XX,
 *	that is, read as Latin-1, so any byte string round-trips visibly.
 * DIAGNOSTICS
 *	None: hostile header values simply do not parse or do not match.
 */
#include "config.h"

/* system */
#include <inttypes.h>
#include <stdio.h>
#include <ctype.h>
#include <string.h>
#include <time.h>

/* libshared */
#include "qd_buf.h"
#include "qd_http.h"

#define MAX_HTTP_DATE ((time_t)253402300799) /* 9999-12-31T23:59:59Z */

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void qd_http_date(time_t t, char *out)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    /* The moduli only bound the output for the compiler; gmtime_r's fields are in range. */
    snprintf(out, QD_HTTP_DATE_LEN, "%.3s, %02u %.3s %04u %02u:%02u:%02u GMT",
             wdays[(unsigned)tm.tm_wday % 7], (unsigned)tm.tm_mday % 32,
             months[(unsigned)tm.tm_mon % 12], (unsigned)(tm.tm_year + 1900) % 10000,
             (unsigned)tm.tm_hour % 24, (unsigned)tm.tm_min % 60, (unsigned)tm.tm_sec % 61);
}

/*
 * The parsing helpers take and return a cursor; NULL means "no match" and
 * passes through, so a parse is a straight chain checked once at the end.
 */

/* lit - the literal |s| */
static const char *lit(const char *p, const char *s)
{
    size_t n = strlen(s);

    return p != NULL && strncmp(p, s, n) == 0 ? p + n : NULL;
}

/* digits - exactly |n| decimal digits */
static const char *digits(const char *p, int n, int *v)
{
    *v = 0;
    for (int i = 0; p != NULL && i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return NULL;
        *v = *v * 10 + (p[i] - '0');
    }
    return p != NULL ? p + n : NULL;
}

/* month - a three-letter month name */
static const char *month(const char *p, int *m)
{
    for (int i = 0; p != NULL && i < 12; i++) {
        if (strncmp(p, months[i], 3) == 0) {
            *m = i;
            return p + 3;
        }
    }
    return NULL;
}

/* hms - "HH:MM:SS" */
static const char *hms(const char *p, struct tm *tm)
{
    p = digits(p, 2, &tm->tm_hour);
    p = digits(lit(p, ":"), 2, &tm->tm_min);
    return digits(lit(p, ":"), 2, &tm->tm_sec);
}

int qd_http_date_parse(const char *s, time_t *t)
{
    struct tm tm;
    const char *p = s;
    int year = 0;

    memset(&tm, 0, sizeof(tm));
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    if (p - s == 3 && *p == ',') {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        p = digits(lit(p, ", "), 2, &tm.tm_mday);
        p = month(lit(p, " "), &tm.tm_mon);
        p = digits(lit(p, " "), 4, &year);
        p = lit(hms(lit(p, " "), &tm), " GMT");
    } else if (p - s > 3 && *p == ',') {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        p = digits(lit(p, ", "), 2, &tm.tm_mday);
        p = month(lit(p, "-"), &tm.tm_mon);
        p = digits(lit(p, "-"), 2, &year);
        p = lit(hms(lit(p, " "), &tm), " GMT");
        year += year < 70 ? 2000 : 1900;
    } else if (p - s == 3 && *p == ' ') {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        p = month(lit(p, " "), &tm.tm_mon);
        p = lit(p, " ");
        if (p != NULL && *p == ' ')
            p = digits(p + 1, 1, &tm.tm_mday);
        else
            p = digits(p, 2, &tm.tm_mday);
        p = digits(lit(hms(lit(p, " "), &tm), " "), 4, &year);
    } else {
        return -1;
    }
    if (p == NULL || *p != '\0' || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60 || year < 1970)
        return -1;
    tm.tm_year = year - 1900;
    *t = timegm(&tm);
    /* 9999-12-31T23:59:60 normalises into year 10000, which no HTTP-date can say */
    return *t == (time_t)-1 || *t > MAX_HTTP_DATE ? -1 : 0;
}

void qd_http_etag(const struct stat *st, char *out, size_t cap)
{
    unsigned long long ns = (unsigned long long)st->st_mtim.tv_sec * 1000000000ULL +
                            (unsigned long long)st->st_mtim.tv_nsec;

    snprintf(out, cap, "\"%llx-%llx\"", ns, (unsigned long long)st->st_size);
}

bool qd_http_etag_match(const char *list, const char *etag)
{
    size_t etag_len = strlen(etag);
    const char *p = list;

    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            return false;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"')
            return false; /* malformed: nothing further can be trusted */
        const char *q = strchr(p + 1, '"');
        if (q == NULL)
            return false;
        if ((size_t)(q + 1 - p) == etag_len && memcmp(p, etag, etag_len) == 0)
            return true;
        p = q + 1;
    }
}

const char *qd_http_reason(unsigned status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

/* parse_u64 - decimal digits at |*p| (at least one); advances |*p| */
static int parse_u64(const char **p, uint64_t *v)
{
    const char *s = *p;

    *v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (*v > (UINT64_MAX - d) / 10)
            return -1;
        *v = *v * 10 + d;
    }
    *p = s;
    return 0;
}

int qd_http_range_parse(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
    const char *p = h;
    uint64_t first, last;

    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "bytes=", 6) != 0)
        return 0;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '-') {
        /* suffix: the last n bytes */
        p++;
        if (parse_u64(&p, &last) < 0)
            return 0;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '\0')
            return 0; /* several ranges or junk: ignored */
        if (last == 0 || size == 0)
            return -1;
        if (last > size)
            last = size;
        *off = size - last;
        *len = last;
        return 1;
    }
    if (parse_u64(&p, &first) < 0 || *p != '-')
        return 0;
    p++;
    if (*p >= '0' && *p <= '9') {
        if (parse_u64(&p, &last) < 0 || last < first)
            return 0;
    } else {
        last = UINT64_MAX;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0')
        return 0;
    if (first >= size)
        return -1;
    if (last >= size)
        last = size - 1;
    *off = first;
    *len = last - first + 1;
    return 1;
}

bool qd_http_accepts(const char *list, const char *coding)
{
    size_t clen = strlen(coding);
    const char *p = list;

    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *tok = p;
        while (*p != '\0' && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t tlen = (size_t)(p - tok);
        bool is_match = (tlen == clen && strncasecmp(tok, coding, clen) == 0);
        bool is_zero = false;
        /* parameters: only q matters; q=0 (0, 0.0, 0.00, 0.000) refuses */
        while (*p != '\0' && *p != ',') {
            while (*p == ' ' || *p == '\t' || *p == ';')
                p++;
            if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                const char *q = p + 2;
                is_zero = q[0] == '0';
                if (is_zero && q[1] == '.')
                    for (q += 2; *q >= '0' && *q <= '9'; q++)
                        if (*q != '0')
                            is_zero = false;
            }
            while (*p != '\0' && *p != ',' && *p != ';')
                p++;
        }
        if (is_match)
            return !is_zero;
    }
    return false;
}

void qd_http_rfc3339(const struct timespec *ts, char *out, size_t cap)
{
    struct tm tm;
    time_t t = ts->tv_sec;

    if (gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    snprintf(out, cap, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
             (unsigned)(tm.tm_year + 1900) % 10000, (unsigned)(tm.tm_mon + 1) % 13,
             (unsigned)tm.tm_mday % 32, (unsigned)tm.tm_hour % 24, (unsigned)tm.tm_min % 60,
             (unsigned)tm.tm_sec % 61, (unsigned)(ts->tv_nsec / 1000000) % 1000);
}

/* utf8_len - the length of the well-formed UTF-8 sequence at |p|, or 0 */
static size_t utf8_len(const uint8_t *p, size_t avail)
{
    uint8_t c = p[0];
    size_t n;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void qd_json_escape(qd_buf *out, const uint8_t *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < len;) {
        uint8_t c = p[i];
        size_t n = utf8_len(p + i, len - i);
        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};

        if (n == 0) {
            qd_buf_append(out, esc, 6); /* not UTF-8: the byte as U+00XX */
            i++;
            continue;
        }
        if (n > 1) {
            qd_buf_append(out, (const char *)p + i, n);
            i += n;
            continue;
        }
        switch (c) {
        case '"':
            qd_buf_append(out, "\\\"", 2);
            break;
        case '\\':
            qd_buf_append(out, "\\\\", 2);
            break;
        case '\n':
            qd_buf_append(out, "\\n", 2);
            break;
        case '\r':
            qd_buf_append(out, "\\r", 2);
            break;
        case '\t':
            qd_buf_append(out, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                qd_buf_append(out, esc, 6);
            else
                qd_buf_append(out, (const char *)&c, 1);
        }
        i++;
    }
}

/* log_escape - |s| for a quoted log field: '"', '\\', '%', controls, non-ASCII as %XX */
static void log_escape(qd_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '%') {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            qd_buf_append(b, e, 3);
        } else {
            qd_buf_append(b, (const char *)p, 1);
        }
    }
}

const char *qd_http_version(const char *proto)
{
    if (proto != NULL && strcmp(proto, "h2") == 0)
        return "HTTP/2";
    if (proto != NULL && strcmp(proto, "http/1.1") == 0)
        return "HTTP/1.1";
    return "HTTP/3";
}

void qd_http_log_line(qd_buf *line, const struct timespec *now, const char *peer,
                      const char *method, const char *path, const char *proto, unsigned status,
                      uint64_t bytes_out, double ms, const char *conn_id, uint64_t stream,
                      const char *extra, bool cancelled)
{
    char when[40];

    qd_http_rfc3339(now, when, sizeof(when));
    qd_buf_reset(line);
    qd_buf_printf(line, "%s %s \"", when, peer != NULL ? peer : "-");
    log_escape(line, method != NULL ? method : "-");
    qd_buf_append(line, " ", 1);
    log_escape(line, path != NULL ? path : "-");
    qd_buf_printf(line, " %s\" %u %" PRIu64 " %.3f %s %" PRIu64 "%s%s\n", qd_http_version(proto),
                  status, bytes_out, ms, conn_id, stream, extra != NULL ? extra : "",
                  cancelled ? " cancelled" : "");
}

bool qd_http_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL)))
            return false;
    }
    return true;
}

bool qd_http_authority(const char *s, size_t len)
{
    size_t i = 0;

    if (len == 0)
        return false;
    if (s[0] == '[') { /* IP-literal: hex digits, ':', '.' (and a zone is not allowed) */
        for (i = 1; i < len && s[i] != ']'; i++)
            if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                  (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':' || s[i] == '.'))
                return false;
        if (i == len || i == 1)
            return false;
        i++;
    } else { /* reg-name or IPv4: unreserved, pct-encoded, sub-delims */
        for (; i < len && s[i] != ':'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '%') {
                if (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) ||
                    !isxdigit((unsigned char)s[i + 2]))
                    return false;
                i += 2;
            } else if (!(isalnum(c) || (c != '\0' && strchr("-._~!$&'()*+,;=", c) != NULL))) {
                return false;
            }
        }
        if (i == 0)
            return false;
    }
    if (i == len)
        return true;
    if (s[i] != ':')
        return false;
    for (i++; i < len; i++) /* port: digits, possibly none (RFC 3986) */
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}
