/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the app's HTTP header parsers (daemons/app/
 * libshared/qd_http.c): Range, the conditionals (If-None-Match through
 * qd_http_etag_match, If-Modified-Since and If-Range through
 * qd_http_date_parse), Accept-Encoding (qd_http_accepts) and the JSON
 * escaper of the API responses. Input: byte 0 picks how bytes 1..8 make
 * the representation size and the entity tag's stat, the rest is the
 * header value. Each parser's contract is checked, not just survival:
 *   - a satisfiable range lies within the size and is not empty, and
 *     "unsatisfiable" only happens when the first byte is past the end;
 *   - a parsed date formats and parses back to the same time;
 *   - an If-None-Match that matches holds the tag (or "*"), and the tag
 *     alone or weak always matches;
 *   - an Accept-Encoding that accepts a coding names it;
 *   - JSON escaping yields printable UTF-8 without a bare quote or
 *     backslash that decodes back to the input bytes;
 *   - a Host/:authority (qd_http_authority) that is accepted has no
 *     white space, control byte, '@', '/', '?' or '#', and a port of
 *     digits; a token (qd_http_token) only token characters.
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "qd_buf.h"
#include "qd_log.h"

#include "app.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* get64 - up to 8 little-endian bytes */
static uint64_t get64(const uint8_t *p, size_t avail)
{
    uint64_t v = 0;

    for (size_t i = 0; i < 8 && i < avail; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* check_range - qd_http_range_parse against the size */
static void check_range(const char *h, uint64_t size)
{
    uint64_t off = 0xdead, len = 0xbeef;
    int rv = qd_http_range_parse(h, size, &off, &len);

    if (rv == 1) {
        if (len == 0 || off >= size || len > size - off)
            qd_panic("range \"%s\" size %llu: off %llu len %llu", h, (unsigned long long)size,
                     (unsigned long long)off, (unsigned long long)len);
    } else if (rv == 0 || rv == -1) {
        if (off != 0xdead || len != 0xbeef)
            qd_panic("range \"%s\": outputs set without a range", h);
        if (rv == -1 && strstr(h, "bytes=") == NULL)
            qd_panic("range \"%s\": unsatisfiable without bytes=", h);
    } else {
        qd_panic("range \"%s\": returned %d", h, rv);
    }
    /* Any range satisfiable for |size| stays satisfiable for a larger one. */
    if (rv == 1 && size < UINT64_MAX && qd_http_range_parse(h, size + 1, &off, &len) != 1)
        qd_panic("range \"%s\": satisfiable for %llu, not for one byte more", h,
                 (unsigned long long)size);
}

/* check_date - a parsed HTTP-date round-trips through the formatter */
static void check_date(const char *s)
{
    char out[QD_HTTP_DATE_LEN];
    time_t t, again;

    if (qd_http_date_parse(s, &t) != 0)
        return;
    if (t < 0)
        qd_panic("date \"%s\": before 1970", s);
    qd_http_date(t, out);
    if (qd_http_date_parse(out, &again) != 0 || again != t)
        qd_panic("date \"%s\": formats as \"%s\", which does not parse back", s, out);
}

/* check_etag - If-None-Match against a tag made from the input */
static void check_etag(const char *list, uint64_t bits)
{
    struct stat st;
    char etag[64], weak[70];

    memset(&st, 0, sizeof(st));
    st.st_mtim.tv_sec = (time_t)(bits & 0xffffffffu);
    st.st_mtim.tv_nsec = (long)((bits >> 32) % 1000000000u);
    st.st_size = (off_t)(bits >> 40);
    qd_http_etag(&st, etag, sizeof(etag));
    if (etag[0] != '"' || etag[strlen(etag) - 1] != '"')
        qd_panic("etag %s is not quoted", etag);
    snprintf(weak, sizeof(weak), "W/%s", etag);
    if (!qd_http_etag_match(etag, etag) || !qd_http_etag_match(weak, etag) ||
        !qd_http_etag_match("*", etag))
        qd_panic("etag %s does not match itself", etag);
    if (qd_http_etag_match(list, etag) && strstr(list, etag) == NULL && strchr(list, '*') == NULL)
        qd_panic("if-none-match \"%s\" matches %s without naming it", list, etag);
}

/* check_accepts - Accept-Encoding for the codings the app serves */
static void check_accepts(const char *list)
{
    static const char *const codings[] = {"br", "zstd", "gzip", "identity"};
    char one[64];

    for (size_t i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
        if (qd_http_accepts(list, codings[i]) && strcasestr(list, codings[i]) == NULL)
            qd_panic("accept-encoding \"%s\" accepts %s without naming it", list, codings[i]);
        snprintf(one, sizeof(one), "%s;q=0.5", codings[i]);
        if (!qd_http_accepts(codings[i], codings[i]) || !qd_http_accepts(one, codings[i]))
            qd_panic("accept-encoding %s refuses itself", codings[i]);
        snprintf(one, sizeof(one), "%s;q=0", codings[i]);
        if (qd_http_accepts(one, codings[i]))
            qd_panic("accept-encoding %s;q=0 accepts", codings[i]);
    }
    /* The input as a coding name: never accepted by a list without it. */
    if (strlen(list) < 32 && list[0] != '\0' && qd_http_accepts("gzip, br", list) &&
        strcasecmp(list, "gzip") != 0 && strcasecmp(list, "br") != 0)
        qd_panic("accept-encoding \"gzip, br\" accepts \"%s\"", list);
}

/* hexval - one hex digit, or -1 */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* check_json - the escaped form is clean and decodes back to the bytes */
static void check_json(const uint8_t *p, size_t len)
{
    qd_buf out;
    uint8_t *back = malloc(len + 1);
    size_t n = 0;

    qd_buf_init(&out);
    qd_json_escape(&out, p, len);
    const char *s = qd_buf_str(&out);
    for (size_t i = 0; i < out.len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '"')
            qd_panic("json: raw byte 0x%02x at %zu", c, i);
        if (n >= len + 1)
            qd_panic("json: decodes to more bytes than it had");
        if (c != '\\') {
            back[n++] = c;
            continue;
        }
        if (i + 1 >= out.len)
            qd_panic("json: trailing backslash");
        switch (s[++i]) {
        case '"':
        case '\\':
            back[n++] = (uint8_t)s[i];
            break;
        case 'n':
            back[n++] = '\n';
            break;
        case 'r':
            back[n++] = '\r';
            break;
        case 't':
            back[n++] = '\t';
            break;
        case 'u':
            if (i + 4 >= out.len || s[i + 1] != '0' || s[i + 2] != '0' || hexval(s[i + 3]) < 0 ||
                hexval(s[i + 4]) < 0)
                qd_panic("json: bad \\u escape at %zu", i);
            back[n++] = (uint8_t)(hexval(s[i + 3]) << 4 | hexval(s[i + 4]));
            i += 4;
            break;
        default:
            qd_panic("json: unknown escape \\%c", s[i]);
        }
    }
    if (n != len || (len > 0 && memcmp(back, p, len) != 0))
        qd_panic("json: %zu bytes escape to something that decodes to %zu others", len, n);
    free(back);
    qd_buf_release(&out);
}

/* check_authority - the Host and token checks of worker_h1.c (qd_http.c) */
static void check_authority(const uint8_t *p, size_t len)
{
    if (qd_http_authority((const char *)p, len)) {
        for (size_t i = 0; i < len; i++)
            if (p[i] <= 0x20 || p[i] >= 0x7f || strchr("@/?#\\\"<>", p[i]) != NULL)
                qd_panic("authority accepted with byte 0x%02x at %zu", p[i], i);
    }
    if (qd_http_token((const char *)p, len)) {
        if (len == 0)
            qd_panic("empty token accepted");
        for (size_t i = 0; i < len; i++)
            if (p[i] <= 0x20 || p[i] >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", p[i]) != NULL)
                qd_panic("token accepted with byte 0x%02x", p[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t bits, fsize;
    size_t skip = size < 9 ? size : 9;
    char *h;

    if (size < 1)
        return 0;
    bits = get64(data + 1, size - 1);
    switch (data[0] & 3) {
    case 0:
        fsize = bits & 0xff; /* small files, where the edges are */
        break;
    case 1:
        fsize = bits & 0xffffffffu;
        break;
    case 2:
        fsize = UINT64_MAX - (bits & 0xff); /* overflow edges */
        break;
    default:
        fsize = bits;
    }
    h = malloc(size - skip + 1);
    memcpy(h, data + skip, size - skip);
    h[size - skip] = '\0';

    check_range(h, fsize);
    check_date(h);
    check_etag(h, bits);
    check_accepts(h);
    check_json(data + skip, size - skip);
    check_authority(data + skip, size - skip);
    free(h);
    return 0;
}
