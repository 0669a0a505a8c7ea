/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	app_http - small pieces of HTTP semantics (RFC 9110)
 * SYNOPSIS
 *	app_http_date(), app_http_date_parse(), app_http_etag(),
 *	app_http_etag_match(), app_http_reason()
 * DESCRIPTION
 *	Dates are formatted as IMF-fixdate with our own day and month names
 *	(strftime's depend on the locale); all three HTTP-date forms are
 *	accepted on input, exactly, as RFC 9110 section 5.6.7 asks. Entity
 *	tags are strong, made from the modification time in nanoseconds and
 *	the size, so a rewrite of a file within the same second still changes
 *	the tag. If-None-Match uses the weak comparison (RFC 9110 13.1.2).
 * DIAGNOSTICS
 *	None: hostile header values simply do not parse or do not match.
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <string.h>
#include <time.h>

/* local */
#include "app.h"

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void app_http_date(time_t t, char *out)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    /* The moduli only bound the output for the compiler; gmtime_r's fields are in range. */
    snprintf(out, APP_HTTP_DATE_LEN, "%.3s, %02u %.3s %04u %02u:%02u:%02u GMT",
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

int app_http_date_parse(const char *s, time_t *t)
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
    return *t == (time_t)-1 ? -1 : 0;
}

void app_http_etag(const struct stat *st, char *out, size_t cap)
{
    unsigned long long ns = (unsigned long long)st->st_mtim.tv_sec * 1000000000ULL +
                            (unsigned long long)st->st_mtim.tv_nsec;

    snprintf(out, cap, "\"%llx-%llx\"", ns, (unsigned long long)st->st_size);
}

bool app_http_etag_match(const char *list, const char *etag)
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

const char *app_http_reason(unsigned status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 425:
        return "Too Early";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "";
    }
}
