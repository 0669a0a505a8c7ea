/* SPDX-License-Identifier: MIT */
/* Unit tests for the app's path decoding, confined open, content types and HTTP helpers. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../daemons/app/app.h"
#include "qd_test.h"

static const struct {
    const char *raw;
    int rv;
    const char *out;
    bool is_index;
} decode_cases[] = {
    {"/", 0, "index.html", true},
    {"/?x=1", 0, "index.html", true},
    {"/a/b.txt", 0, "a/b.txt", false},
    {"/a/b.txt?q=/../x", 0, "a/b.txt", false},
    {"/a//b///c", 0, "a/b/c", false},
    {"/dir/", 0, "dir/index.html", true},
    {"/dir", 0, "dir", false},
    {"/%61%2Fb", 0, "a/b", false},
    {"/%2fdir%2f", 0, "dir/index.html", true},
    {"/sp%20ace", 0, "sp ace", false},
    {"/.well-known/x", 0, ".well-known/x", false},
    {"/a..b/...", 0, "a..b/...", false},
    {"/%252e%252e/x", 0, "%2e%2e/x", false},
    {"/../etc/passwd", APP_PATH_EDOT, NULL, false},
    {"/%2e%2e/etc/passwd", APP_PATH_EDOT, NULL, false},
    {"/a/%2E%2E/%2e%2e/etc/passwd", APP_PATH_EDOT, NULL, false},
    {"/a/.", 0, "a", false},
    {"/a/./b/./c", 0, "a/b/c", false},
    {"/./a", 0, "a", false},
    {"/a/..", APP_PATH_EDOT, NULL, false},
    {"/a%2f..%2fb", APP_PATH_EDOT, NULL, false},
    {"/%2e", 0, "index.html", true},
    {"/a%00b", APP_PATH_EBAD, NULL, false},
    {"/a%0", APP_PATH_EBAD, NULL, false},
    {"/a%", APP_PATH_EBAD, NULL, false},
    {"/a%zz", APP_PATH_EBAD, NULL, false},
    {"/a%g0", APP_PATH_EBAD, NULL, false},
    {"/a\tb", APP_PATH_EBAD, NULL, false},
    {"a/b", APP_PATH_EBAD, NULL, false},
    {"", APP_PATH_EBAD, NULL, false},
    {"*", APP_PATH_EBAD, NULL, false},
    {"http://x/", APP_PATH_EBAD, NULL, false},
};

static void test_app_path_decode(void)
{
    char out[APP_PATH_MAX];

    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        bool is_index = !decode_cases[i].is_index;
        int rv = app_path_decode(decode_cases[i].raw, out, sizeof(out), &is_index);
        if (rv != decode_cases[i].rv) {
            QD_FAIL("\"%s\": got %d, want %d", decode_cases[i].raw, rv, decode_cases[i].rv);
            continue;
        }
        if (rv == 0 && strcmp(out, decode_cases[i].out) != 0)
            QD_FAIL("\"%s\": got \"%s\", want \"%s\"", decode_cases[i].raw, out,
                    decode_cases[i].out);
        if (rv == 0 && is_index != decode_cases[i].is_index)
            QD_FAIL("\"%s\": is_index got %d", decode_cases[i].raw, is_index);
    }
}

static void test_app_path_decode_long(void)
{
    static char raw[3 * APP_PATH_MAX], out[APP_PATH_MAX];
    bool is_index;

    raw[0] = '/';
    memset(raw + 1, 'a', APP_PATH_MAX + 10);
    raw[APP_PATH_MAX + 11] = '\0';
    QD_EXPECT_INT(app_path_decode(raw, out, sizeof(out), &is_index), APP_PATH_ETOOLONG);
    /* Fits the decoder but not a small output buffer. */
    QD_EXPECT_INT(app_path_decode("/abcdef", out, 4, &is_index), APP_PATH_ETOOLONG);
    QD_EXPECT_INT(app_path_decode("/", out, 10, &is_index), APP_PATH_ETOOLONG);
    QD_EXPECT_INT(app_path_decode("/", out, 11, &is_index), 0);
}

static void test_app_path_encode(void)
{
    char out[64];

    QD_EXPECT_INT(app_path_encode("a b/c%d/\xc3\xa9?#", out, sizeof(out)), 0);
    QD_EXPECT_STR(out, "/a%20b/c%25d/%C3%A9%3F%23");
    QD_EXPECT_INT(app_path_encode("dir", out, sizeof(out)), 0);
    QD_EXPECT_STR(out, "/dir");
    QD_EXPECT_INT(app_path_encode("abcdef", out, 4), -1);
    QD_EXPECT_STR(out, "");
}

static char tree[PATH_MAX];

/* make_tree - a document root with files, a subdirectory and symlinks; returns its fd */
static int make_tree(void)
{
    char p[PATH_MAX + 64];
    int fd;

    snprintf(tree, sizeof(tree), "/tmp/test_app_static.XXXXXX");
    if (mkdtemp(tree) == NULL)
        return -1;
#define MK(fmt, ...) (snprintf(p, sizeof(p), "%s/" fmt, tree, __VA_ARGS__), p)
    mkdir(MK("%s", "root"), 0755);
    mkdir(MK("%s", "root/sub"), 0755);
    fd = open(MK("%s", "root/sub/f.txt"), O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) {
        if (write(fd, "hello\n", 6) != 6)
            QD_FAIL("write");
        close(fd);
    }
    fd = open(MK("%s", "secret"), O_WRONLY | O_CREAT, 0644);
    if (fd >= 0)
        close(fd);
    if (symlink("sub/f.txt", MK("%s", "root/inside")) < 0 ||
        symlink("sub", MK("%s", "root/subdir")) < 0 ||
        symlink("../secret", MK("%s", "root/outside")) < 0 ||
        symlink("/etc", MK("%s", "root/etc")) < 0 || symlink("loop", MK("%s", "root/loop")) < 0)
        return -1;
    mkfifo(MK("%s", "root/fifo"), 0644);
#undef MK
    snprintf(p, sizeof(p), "%s/root", tree);
    return open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

typedef int (*open_fn)(int, const char *, struct stat *);

/* check_open - |fn| on |rel| gives |want| (>= 0: a descriptor of that file type) */
static void check_open(open_fn fn, const char *name, int root, const char *rel, int want,
                       mode_t type)
{
    struct stat st;
    int fd = fn(root, rel, &st);

    if (want >= 0 && fd < 0)
        QD_FAIL("%s(%s): got %s, want success", name, rel, strerror(-fd));
    else if (want < 0 && fd != want)
        QD_FAIL("%s(%s): got %d (%s), want %d (%s)", name, rel, fd, fd < 0 ? strerror(-fd) : "",
                want, strerror(-want));
    else if (fd >= 0 && (st.st_mode & S_IFMT) != type)
        QD_FAIL("%s(%s): wrong file type %o", name, rel, (unsigned)(st.st_mode & S_IFMT));
    if (fd >= 0)
        close(fd);
}

static void test_app_path_open(void)
{
    int root = make_tree();

    if (root < 0) {
        QD_FAIL("cannot make the test tree: %s", strerror(errno));
        return;
    }
    check_open(app_path_open, "openat2", root, "sub/f.txt", 0, S_IFREG);
    check_open(app_path_open, "openat2", root, "sub", 0, S_IFDIR);
    check_open(app_path_open, "openat2", root, "inside", 0, S_IFREG);
    check_open(app_path_open, "openat2", root, "subdir/f.txt", 0, S_IFREG);
    check_open(app_path_open, "openat2", root, "fifo", 0, S_IFIFO);
    check_open(app_path_open, "openat2", root, "nope", -ENOENT, 0);
    check_open(app_path_open, "openat2", root, "sub/f.txt/x", -ENOTDIR, 0);
    check_open(app_path_open, "openat2", root, "outside", -EXDEV, 0);
    check_open(app_path_open, "openat2", root, "etc/passwd", -EXDEV, 0);
    check_open(app_path_open, "openat2", root, "loop", -ELOOP, 0);

    /* The fallback follows no symlink at all. */
    check_open(app_path_open_walk, "walk", root, "sub/f.txt", 0, S_IFREG);
    check_open(app_path_open_walk, "walk", root, "sub", 0, S_IFDIR);
    check_open(app_path_open_walk, "walk", root, "fifo", 0, S_IFIFO);
    check_open(app_path_open_walk, "walk", root, "inside", -ELOOP, 0);
    check_open(app_path_open_walk, "walk", root, "subdir/f.txt", -ELOOP, 0);
    check_open(app_path_open_walk, "walk", root, "outside", -ELOOP, 0);
    check_open(app_path_open_walk, "walk", root, "etc/passwd", -ELOOP, 0);
    check_open(app_path_open_walk, "walk", root, "nope", -ENOENT, 0);
    check_open(app_path_open_walk, "walk", root, "nope/x", -ENOENT, 0);
    check_open(app_path_open_walk, "walk", root, "sub/f.txt/x", -ENOTDIR, 0);
    check_open(app_path_open_walk, "walk", root, "../secret", -EXDEV, 0);
    check_open(app_path_open_walk, "walk", root, "sub//f.txt", -ENOENT, 0);
    close(root);

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tree);
    if (system(cmd) != 0)
        QD_FAIL("cannot remove %s", tree);
}

static void test_app_mime_type(void)
{
    QD_EXPECT_STR(app_mime_type("index.html"), "text/html; charset=utf-8");
    QD_EXPECT_STR(app_mime_type("a/b/INDEX.HTM"), "text/html; charset=utf-8");
    QD_EXPECT_STR(app_mime_type("app.js"), "text/javascript; charset=utf-8");
    QD_EXPECT_STR(app_mime_type("m.mjs"), "text/javascript; charset=utf-8");
    QD_EXPECT_STR(app_mime_type("s.css"), "text/css; charset=utf-8");
    QD_EXPECT_STR(app_mime_type("d.json"), "application/json");
    QD_EXPECT_STR(app_mime_type("x.wasm"), "application/wasm");
    QD_EXPECT_STR(app_mime_type("f.woff2"), "font/woff2");
    QD_EXPECT_STR(app_mime_type("i.svg"), "image/svg+xml");
    QD_EXPECT_STR(app_mime_type("p.JPG"), "image/jpeg");
    QD_EXPECT_STR(app_mime_type("t.txt"), "text/plain; charset=utf-8");
    QD_EXPECT_STR(app_mime_type("a.js.map"), "application/json");
    QD_EXPECT_STR(app_mime_type(".profile"), "application/octet-stream");
    QD_EXPECT_STR(app_mime_type("d.v2/README"), "application/octet-stream");
    QD_EXPECT_STR(app_mime_type("archive.tar.xz"), "application/octet-stream");
    QD_EXPECT_STR(app_mime_type("noext."), "application/octet-stream");
}

static void test_qd_http_date(void)
{
    char s[QD_HTTP_DATE_LEN];
    time_t t;

    qd_http_date(784111777, s);
    QD_EXPECT_STR(s, "Sun, 06 Nov 1994 08:49:37 GMT");
    qd_http_date(0, s);
    QD_EXPECT_STR(s, "Thu, 01 Jan 1970 00:00:00 GMT");

    QD_EXPECT_INT(qd_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    QD_EXPECT_INT(t, 784111777);
    QD_EXPECT_INT(qd_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    QD_EXPECT_INT(t, 784111777);
    QD_EXPECT_INT(qd_http_date_parse("Sun Nov  6 08:49:37 1994", &t), 0);
    QD_EXPECT_INT(t, 784111777);
    QD_EXPECT_INT(qd_http_date_parse("Sun Nov 16 08:49:37 1994", &t), 0);
    QD_EXPECT_INT(t, 784111777 + 10 * 86400);

    static const char *bad[] = {
        "",
        "garbage",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49",
        "Sun Nov 6 08:49:37 1994",
        "Sunday, 06-Nov-94 08:49:37",
        "Fri, 31 Dec 9999 23:59:60 GMT", /* year 10000 (tests/fuzz/fuzz_http) */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (qd_http_date_parse(bad[i], &t) == 0)
            QD_FAIL("\"%s\" parsed", bad[i]);
}

static void test_qd_http_etag(void)
{
    struct stat st;
    char etag[64];

    memset(&st, 0, sizeof(st));
    st.st_size = 0x1234;
    st.st_mtim.tv_sec = 1;
    st.st_mtim.tv_nsec = 5;
    qd_http_etag(&st, etag, sizeof(etag));
    QD_EXPECT_STR(etag, "\"3b9aca05-1234\"");

    QD_EXPECT_INT(qd_http_etag_match("\"3b9aca05-1234\"", etag), 1);
    QD_EXPECT_INT(qd_http_etag_match("W/\"3b9aca05-1234\"", etag), 1);
    QD_EXPECT_INT(qd_http_etag_match("\"a\", W/\"3b9aca05-1234\"", etag), 1);
    QD_EXPECT_INT(qd_http_etag_match("\"a\",\"3b9aca05-1234\"", etag), 1);
    QD_EXPECT_INT(qd_http_etag_match("*", etag), 1);
    QD_EXPECT_INT(qd_http_etag_match("\"3b9aca05-1235\"", etag), 0);
    QD_EXPECT_INT(qd_http_etag_match("3b9aca05-1234", etag), 0);
    QD_EXPECT_INT(qd_http_etag_match("\"3b9aca05-1234", etag), 0);
    QD_EXPECT_INT(qd_http_etag_match("", etag), 0);
}

static const struct {
    const char *h;
    uint64_t size;
    int rv;
    uint64_t off, len;
} range_cases[] = {
    {"bytes=0-99", 1000, 1, 0, 100},
    {"bytes=100-", 1000, 1, 100, 900},
    {"bytes=-100", 1000, 1, 900, 100},
    {"bytes=-5000", 1000, 1, 0, 1000},
    {"bytes=990-5000", 1000, 1, 990, 10},
    {"bytes=999-999", 1000, 1, 999, 1},
    {" bytes=5-9 ", 1000, 1, 5, 5},
    {"bytes=1000-", 1000, -1, 0, 0},
    {"bytes=1000-2000", 1000, -1, 0, 0},
    {"bytes=-0", 1000, -1, 0, 0},
    {"bytes=0-", 0, -1, 0, 0},
    {"bytes=-1", 0, -1, 0, 0},
    {"bytes=9-5", 1000, 0, 0, 0},
    {"bytes=0-1,5-9", 1000, 0, 0, 0},
    {"bytes=", 1000, 0, 0, 0},
    {"bytes=-", 1000, 0, 0, 0},
    {"bytes=a-b", 1000, 0, 0, 0},
    {"items=0-5", 1000, 0, 0, 0},
    {"bytes=99999999999999999999999-", 1000, 0, 0, 0},
    {"bytes=0-99999999999999999999999", 1000, 0, 0, 0},
    {"bytes=18446744073709551615-", 1000, -1, 0, 0},
    {"", 1000, 0, 0, 0},
};

static void test_qd_http_range_parse(void)
{
    for (size_t i = 0; i < sizeof(range_cases) / sizeof(range_cases[0]); i++) {
        uint64_t off = 0, len = 0;
        int rv = qd_http_range_parse(range_cases[i].h, range_cases[i].size, &off, &len);
        if (rv != range_cases[i].rv)
            QD_FAIL("\"%s\" (size %llu): got %d, want %d", range_cases[i].h,
                    (unsigned long long)range_cases[i].size, rv, range_cases[i].rv);
        else if (rv == 1 && (off != range_cases[i].off || len != range_cases[i].len))
            QD_FAIL("\"%s\": got %llu+%llu, want %llu+%llu", range_cases[i].h,
                    (unsigned long long)off, (unsigned long long)len,
                    (unsigned long long)range_cases[i].off, (unsigned long long)range_cases[i].len);
    }
}

static void test_qd_http_accepts(void)
{
    QD_EXPECT_INT(qd_http_accepts("gzip, deflate, br", "br"), 1);
    QD_EXPECT_INT(qd_http_accepts("gzip, deflate, br", "gzip"), 1);
    QD_EXPECT_INT(qd_http_accepts("gzip;q=0, br;q=0.5", "gzip"), 0);
    QD_EXPECT_INT(qd_http_accepts("gzip;q=0, br;q=0.5", "br"), 1);
    QD_EXPECT_INT(qd_http_accepts("br;q=0.000", "br"), 0);
    QD_EXPECT_INT(qd_http_accepts("br;q=0.001", "br"), 1);
    QD_EXPECT_INT(qd_http_accepts("GZIP", "gzip"), 1);
    QD_EXPECT_INT(qd_http_accepts("identity", "gzip"), 0);
    QD_EXPECT_INT(qd_http_accepts("*", "gzip"), 0);
    QD_EXPECT_INT(qd_http_accepts("", "br"), 0);
    QD_EXPECT_INT(qd_http_accepts("brotli", "br"), 0);
    QD_EXPECT_INT(qd_http_accepts(";;;,,, ;q=", "br"), 0);
}

static void test_qd_json_escape(void)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"hello", 5, "hello"},
        {"a\"b\\c", 5, "a\\\"b\\\\c"},
        {"\n\r\t\x01\x1f\x7f", 6, "\\n\\r\\t\\u0001\\u001f\\u007f"},
        {"nul\0x", 5, "nul\\u0000x"},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
        {"\xe2\x82\xac\xf0\x9f\x98\x80", 7, "\xe2\x82\xac\xf0\x9f\x98\x80"},
        {"\xff\xfe", 2, "\\u00ff\\u00fe"},
        {"\xc3", 1, "\\u00c3"},
        {"\xc0\xaf", 2, "\\u00c0\\u00af"},         /* overlong '/' */
        {"\xed\xa0\x80", 3, "\\u00ed\\u00a0\\u0080"}, /* a surrogate */
        {"\xf4\x90\x80\x80", 4, "\\u00f4\\u0090\\u0080\\u0080"}, /* beyond U+10FFFF */
        {"\xe2\x82", 2, "\\u00e2\\u0082"},         /* truncated */
        {"</script>", 9, "</script>"},
    };
    qd_buf b;

    qd_buf_init(&b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        qd_buf_reset(&b);
        qd_json_escape(&b, (const uint8_t *)cases[i].in, cases[i].len);
        QD_EXPECT_STR(qd_buf_str(&b), cases[i].out);
    }
    /* every byte value: the output is printable ASCII or UTF-8, never a raw control byte */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    qd_buf_reset(&b);
    qd_json_escape(&b, all, sizeof(all));
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.data[i] < 0x20 || (unsigned char)b.data[i] >= 0x7f)
            QD_FAIL("byte %zu of the escaped 0..255 is 0x%02x", i, (unsigned char)b.data[i]);
    qd_buf_release(&b);
}

static void test_qd_http_rfc3339(void)
{
    struct timespec ts = {784111777, 123456789};
    char out[40];

    qd_http_rfc3339(&ts, out, sizeof(out));
    QD_EXPECT_STR(out, "1994-11-06T08:49:37.123Z");
}

static void test_qd_http_token_authority(void)
{
    static const char *const tokens[] = {"host", "X-Forwarded-For", "a!#$%&'*+-.^_`|~9"};
    static const char *const not_tokens[] = {"", "x y", "host ", "a:b", "a\x01", "a\"b", "a(b)",
                                             "\xe9"};
    static const char *const good[] = {"localhost", "localhost:443", "a.b-c_d~e", "127.0.0.1:80",
                                       "[::1]", "[::1]:8443", "[2001:db8::5]", "x:", "%41b",
                                       "a!$&'()*+,;=b"};
    static const char *const bad[] = {"", "a b", "a/b", "user@host", "host:44x", "[::1", "[]",
                                      "[zz::1]", "[::1]x", ":80", "%4", "%zz", "a\x00b", "a\tb",
                                      "a?b", "a#b", "\xe9"};

    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
        if (!qd_http_token(tokens[i], strlen(tokens[i])))
            QD_FAIL("not a token: \"%s\"", tokens[i]);
    for (size_t i = 0; i < sizeof(not_tokens) / sizeof(not_tokens[0]); i++)
        if (qd_http_token(not_tokens[i], strlen(not_tokens[i])))
            QD_FAIL("a token: \"%s\"", not_tokens[i]);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!qd_http_authority(good[i], strlen(good[i])))
            QD_FAIL("refused authority: \"%s\"", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (qd_http_authority(bad[i], strlen(bad[i])))
            QD_FAIL("accepted authority: \"%s\"", bad[i]);
    QD_EXPECT_INT(qd_http_authority("a\0b", 3), 0); /* a NUL inside the length */
    QD_EXPECT_INT(qd_http_token("a\0b", 3), 0);
}

int main(void)
{
    QD_RUN(test_app_path_decode);
    QD_RUN(test_app_path_decode_long);
    QD_RUN(test_app_path_encode);
    QD_RUN(test_app_path_open);
    QD_RUN(test_app_mime_type);
    QD_RUN(test_qd_http_date);
    QD_RUN(test_qd_http_etag);
    QD_RUN(test_qd_http_range_parse);
    QD_RUN(test_qd_http_accepts);
    QD_RUN(test_qd_json_escape);
    QD_RUN(test_qd_http_rfc3339);
    QD_RUN(test_qd_http_token_authority);
    QD_TEST_DONE();
}
