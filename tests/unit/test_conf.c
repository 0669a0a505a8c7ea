/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libshared/qd_conf: every value type, every error path,
 * the file:line format, dump round trips and diff.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "qd_buf.h"
#include "qd_conf.h"
#include "qd_err.h"
#include "qd_test.h"

/* parse - parse |text| as "t.conf"; errors land in |errs| */
static int parse(qd_conf *c, const char *text, qd_buf *errs)
{
    qd_conf_init(c);
    qd_buf_init(errs);
    return qd_conf_parse(c, "t.conf", text, strlen(text), errs);
}

static void test_conf_defaults(void)
{
    qd_conf c;
    size_t n;
    const qd_conf_key *keys = qd_conf_keys(&n);

    qd_conf_init(&c);
    QD_EXPECT_INT(n, QD_K_COUNT);
    QD_EXPECT_INT(c.listen.count, 2);
    QD_EXPECT_INT(c.listen.items[0].port, 443);
    QD_EXPECT_INT(c.workers, 0);
    QD_EXPECT_INT(c.idle_timeout_ms, 30000);
    QD_EXPECT_INT(c.max_concurrent_streams, 100);
    QD_EXPECT_INT(c.stream_window, 1024 * 1024);
    QD_EXPECT_INT(c.connection_window, 10 * 1024 * 1024);
    QD_EXPECT_INT(c.stats_interval_ms, 10000);
    QD_EXPECT_INT(c.stats_retention_ms, 30LL * 86400 * 1000);
    QD_EXPECT_INT(c.events_interval_ms, 5000);
    QD_EXPECT_INT(c.early_data, 1);
    QD_EXPECT_INT(c.retry, QD_RETRY_AUTO);
    QD_EXPECT_INT(c.congestion_control, QD_CC_CUBIC);
    QD_EXPECT_STR(c.access_log, "");
    /* Every key has a name, a doc line, and its index matches its id. */
    for (size_t i = 0; i < n; i++) {
        if (keys[i].doc == NULL || strlen(keys[i].doc) < 10)
            QD_FAIL("key %s has no documentation", keys[i].name);
        QD_EXPECT_INT(qd_conf_key_find(keys[i].name), (long long)i);
    }
    qd_conf_release(&c);
}

static void test_conf_contract_keys(void)
{
    /* Names fixed by the interface contract in DESIGN.md. */
    static const char *const contract[] = {
        "listen", "workers", "user", "group", "chroot", "runtime_directory", "stats_database",
        "tls_certificate", "tls_key", "document_root", "log_level", "access_log",
        "congestion_control", "retry", "early_data", "max_connections", "idle_timeout",
        "max_concurrent_streams", "stream_window", "connection_window", "stats_interval",
        "stats_retention", "events_interval", "max_request_body", "tcp", "alt_svc_max_age",
        NULL};
    for (int i = 0; contract[i]; i++)
        if (qd_conf_key_find(contract[i]) < 0)
            QD_FAIL("contract key %s missing", contract[i]);
}

static void test_conf_values(void)
{
    qd_conf c;
    qd_buf e;
    const char *text = "# a comment\n"
                       "listen = 127.0.0.1:4433, [::1]:4433\n"
                       "\n"
                       "workers = 3\n"
                       "chroot = no\n"
                       "  # comments inside are skipped\n"
                       "idle_timeout = 1m\n"
                       "stream_window = 512KB\n"
                       "connection_window = 2MiB\n"
                       "max_request_body = 1g\n"
                       "stats_retention = 2w\n"
                       "events_interval = 250ms\n"
                       "stats_interval = 15\n"
                       "congestion_control = bbr\n"
                       "retry = yes\n"
                       "early_data = off\n"
                       "log_level = debug\n"
                       "access_log = /var/log/quicd/access.log\n"
                       "user = www-data\n";
    int rv = parse(&c, text, &e);

    QD_EXPECT_INT(rv, 0);
    QD_EXPECT_STR(qd_buf_str(&e), "");
    QD_EXPECT_INT(c.listen.count, 2);
    QD_EXPECT_STR(c.listen.items[0].host, "127.0.0.1");
    QD_EXPECT_INT(c.listen.items[0].family, 2 /* AF_INET */);
    QD_EXPECT_STR(c.listen.items[1].host, "::1");
    QD_EXPECT_INT(c.listen.items[1].port, 4433);
    QD_EXPECT_INT(c.workers, 3);
    QD_EXPECT_INT(c.chroot, 0);
    QD_EXPECT_INT(c.idle_timeout_ms, 60000);
    QD_EXPECT_INT(c.stream_window, 512 * 1024);
    QD_EXPECT_INT(c.connection_window, 2 * 1024 * 1024);
    QD_EXPECT_INT(c.max_request_body, 1024LL * 1024 * 1024);
    QD_EXPECT_INT(c.stats_retention_ms, 14LL * 86400 * 1000);
    QD_EXPECT_INT(c.events_interval_ms, 250);
    QD_EXPECT_INT(c.stats_interval_ms, 15000);
    QD_EXPECT_INT(c.congestion_control, QD_CC_BBR);
    QD_EXPECT_INT(c.retry, QD_RETRY_YES);
    QD_EXPECT_INT(c.early_data, 0);
    QD_EXPECT_INT(c.log_level, 4);
    QD_EXPECT_INT(qd_conf_log_level(&c), 7 /* LOG_DEBUG */);
    QD_EXPECT_STR(c.access_log, "/var/log/quicd/access.log");
    QD_EXPECT_STR(c.user, "www-data");
    QD_EXPECT_INT(c.line[QD_K_WORKERS], 4);
    qd_conf_release(&c);
    qd_buf_release(&e);
}

static void test_conf_continuation(void)
{
    qd_conf c;
    qd_buf e;
    int rv = parse(&c, "listen = 127.0.0.1:1000,\n    127.0.0.1:1001,\n\t[::1]:1002\nworkers=2\n",
                   &e);

    QD_EXPECT_INT(rv, 0);
    QD_EXPECT_INT(c.listen.count, 3);
    QD_EXPECT_INT(c.listen.items[2].port, 1002);
    QD_EXPECT_INT(c.workers, 2);
    QD_EXPECT_INT(c.line[QD_K_WORKERS], 4);
    qd_conf_release(&c);
    qd_buf_release(&e);
}

/* One error case: the text and the exact error line expected. */
static const struct {
    const char *text;
    const char *want;
} error_cases[] = {
    {"bogus = 1\n", "t.conf:1: bogus: unknown configuration key\n"},
    {"workers = 2\nworkers = 3\n", "t.conf:2: workers: duplicate key (first set at line 1)\n"},
    {"workers = many\n", "t.conf:1: workers: invalid value \"many\": expected a number or auto\n"},
    {"workers = 0\n", "t.conf:1: workers: invalid value \"0\": out of range (1 to 256)\n"},
    {"workers = 99999999999999999999999\n",
     "t.conf:1: workers: invalid value \"99999999999999999999999\": expected a number or auto\n"},
    {"max_connections = 5x\n",
     "t.conf:1: max_connections: invalid value \"5x\": expected a number\n"},
    {"idle_timeout = 30 parsecs\n",
     "t.conf:1: idle_timeout: invalid value \"30 parsecs\": expected a duration such as 500ms, "
     "30s, 5m, 1h or 30d\n"},
    {"idle_timeout = 10ms\n",
     "t.conf:1: idle_timeout: invalid value \"10ms\": out of range (1000ms to 86400000ms)\n"},
    {"idle_timeout = -5s\n",
     "t.conf:1: idle_timeout: invalid value \"-5s\": expected a duration such as 500ms, 30s, 5m, "
     "1h or 30d\n"},
    {"stream_window = 10 furlongs\n",
     "t.conf:1: stream_window: invalid value \"10 furlongs\": expected a size such as 65536, "
     "512KB or 10MB\n"},
    {"stream_window = 99999999999999999999MB\n",
     "t.conf:1: stream_window: invalid value \"99999999999999999999MB\": expected a size such as "
     "65536, 512KB or 10MB\n"},
    {"stream_window = 9223372036854775807GB\n",
     "t.conf:1: stream_window: invalid value \"9223372036854775807GB\": expected a size such as "
     "65536, 512KB or 10MB\n"},
    {"early_data = maybe\n", "t.conf:1: early_data: invalid value \"maybe\": expected yes or no\n"},
    {"retry = sometimes\n",
     "t.conf:1: retry: invalid value \"sometimes\": expected one of no, yes, auto\n"},
    {"congestion_control = vegas\n",
     "t.conf:1: congestion_control: invalid value \"vegas\": expected one of cubic, reno, bbr\n"},
    {"document_root = htdocs\n",
     "t.conf:1: document_root: invalid value \"htdocs\": must be an absolute path\n"},
    {"document_root =\n", "t.conf:1: document_root: invalid value \"\": value is empty\n"},
    {"user = \x01x\n", "t.conf:1: user: invalid value \"\x01x\": control character in value\n"},
    {"listen = 1.2.3.4\n",
     "t.conf:1: listen: invalid value \"1.2.3.4\": '1.2.3.4': expected address:port\n"},
    {"listen = 1.2.3.4:0\n",
     "t.conf:1: listen: invalid value \"1.2.3.4:0\": '1.2.3.4:0': port must be a number from 1 "
     "to 65535\n"},
    {"listen = 1.2.3.4:70000\n",
     "t.conf:1: listen: invalid value \"1.2.3.4:70000\": '1.2.3.4:70000': port must be a number "
     "from 1 to 65535\n"},
    {"listen = 300.1.1.1:443\n",
     "t.conf:1: listen: invalid value \"300.1.1.1:443\": '300.1.1.1:443': bad IPv4 address\n"},
    {"listen = ::1:443\n",
     "t.conf:1: listen: invalid value \"::1:443\": '::1:443': IPv6 addresses must be written in "
     "brackets, [::1]:443\n"},
    {"listen = [::1:443\n",
     "t.conf:1: listen: invalid value \"[::1:443\": '[::1:443': expected [v6-address]:port\n"},
    {"listen = [fe80::zz]:443\n",
     "t.conf:1: listen: invalid value \"[fe80::zz]:443\": '[fe80::zz]:443': bad IPv6 address\n"},
    {"listen = 127.0.0.1:1, 127.0.0.1:1\n",
     "t.conf:1: listen: invalid value \"127.0.0.1:1, 127.0.0.1:1\": '127.0.0.1:1' listed twice\n"},
    {"listen = ,\n", "t.conf:1: listen: invalid value \",\": no address given\n"},
    {"just some words\n", "t.conf:1: missing '=' in \"just some words\"\n"},
    {" = 5\n", "t.conf:1: continuation line (starts with white space) without a key before it\n"},
    {"= 5\n", "t.conf:1: missing key before '='\n"},
    {"Workers = 5\n", "t.conf:1: invalid key name \"Workers\"\n"},
    {"  workers = 2\n",
     "t.conf:1: continuation line (starts with white space) without a key before it\n"},
    {"log_level = loud\n",
     "t.conf:1: log_level: invalid value \"loud\": expected one of err, warn, notice, info, "
     "debug\n"},
};

static void test_conf_errors(void)
{
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        qd_conf c;
        qd_buf e;
        int rv = parse(&c, error_cases[i].text, &e);
        if (rv != QD_ERR_CONF)
            QD_FAIL("case %zu: rv %d, want QD_ERR_CONF", i, rv);
        QD_EXPECT_STR(qd_buf_str(&e), error_cases[i].want);
        qd_conf_release(&c);
        qd_buf_release(&e);
    }
}

static void test_conf_errors_all_reported(void)
{
    qd_conf c;
    qd_buf e;
    int rv = parse(&c, "workers = x\nfoo = 1\n# ok\nidle_timeout = 5s\nworkers = 2\nbar\n", &e);

    QD_EXPECT_INT(rv, QD_ERR_CONF);
    QD_EXPECT_STR(qd_buf_str(&e), "t.conf:1: workers: invalid value \"x\": expected a number or "
                                  "auto\n"
                                  "t.conf:2: foo: unknown configuration key\n"
                                  "t.conf:5: workers: duplicate key (first set at line 1)\n"
                                  "t.conf:6: missing '=' in \"bar\"\n");
    qd_conf_release(&c);
    qd_buf_release(&e);
}

static void test_conf_nul_and_binary(void)
{
    qd_conf c;
    qd_buf e;
    const char text[] = "workers = 2\nuser = a\0b\n";

    qd_conf_init(&c);
    qd_buf_init(&e);
    int rv = qd_conf_parse(&c, "t.conf", text, sizeof(text) - 1, &e);
    QD_EXPECT_INT(rv, QD_ERR_CONF);
    QD_EXPECT_STR(qd_buf_str(&e), "t.conf:2: NUL byte in line\n");
    qd_conf_release(&c);
    qd_buf_release(&e);
}

static void test_conf_crlf_and_no_newline(void)
{
    qd_conf c;
    qd_buf e;
    int rv = parse(&c, "workers = 4\r\nchroot = no", &e);

    QD_EXPECT_INT(rv, 0);
    QD_EXPECT_INT(c.workers, 4);
    QD_EXPECT_INT(c.chroot, 0);
    qd_conf_release(&c);
    qd_buf_release(&e);
}

static void test_conf_load_file(void)
{
    char path[] = "/tmp/qd_test_conf_XXXXXX";
    int fd = mkstemp(path);
    qd_conf c;
    qd_buf e;

    if (write(fd, "workers = 2\nnope = 1\n", 21) != 21)
        QD_FAIL("write");
    close(fd);
    qd_conf_init(&c);
    qd_buf_init(&e);
    QD_EXPECT_INT(qd_conf_load(&c, path, &e), QD_ERR_CONF);
    char want[256];
    snprintf(want, sizeof(want), "%s:2: nope: unknown configuration key\n", path);
    QD_EXPECT_STR(qd_buf_str(&e), want);
    qd_conf_release(&c);
    qd_buf_release(&e);
    unlink(path);

    qd_conf_init(&c);
    qd_buf_init(&e);
    QD_EXPECT_INT(qd_conf_load(&c, "/nonexistent/quicd.conf", &e), QD_ERR_IO);
    QD_EXPECT_STR(qd_buf_str(&e), "/nonexistent/quicd.conf: cannot open: No such file or directory\n");
    qd_buf_reset(&e);
    QD_EXPECT_INT(qd_conf_load(&c, "/tmp", &e), QD_ERR_IO);
    QD_EXPECT_STR(qd_buf_str(&e), "/tmp: is a directory\n");
    qd_conf_release(&c);
    qd_buf_release(&e);
}

static void test_conf_set_override(void)
{
    qd_conf c;
    qd_buf e;

    qd_conf_init(&c);
    qd_buf_init(&e);
    QD_EXPECT_INT(qd_conf_set(&c, "workers", "7", "-o", &e), 0);
    QD_EXPECT_INT(c.workers, 7);
    QD_EXPECT_INT(qd_conf_set(&c, "workers", "8", "-o", &e), 0); /* replaces, no duplicate */
    QD_EXPECT_INT(c.workers, 8);
    QD_EXPECT_INT(qd_conf_set(&c, "nosuch", "1", "-o", &e), QD_ERR_NOTFOUND);
    QD_EXPECT_INT(qd_conf_set(&c, "workers", "x", "-o", &e), QD_ERR_INVAL);
    QD_EXPECT_STR(qd_buf_str(&e), "-o: nosuch: unknown configuration key\n"
                                  "-o: workers: invalid value \"x\": expected a number or auto\n");
    QD_EXPECT_INT(c.workers, 8); /* a bad value leaves the old one */
    qd_conf_release(&c);
    qd_buf_release(&e);
}

static void test_conf_dump_roundtrip(void)
{
    qd_conf a, b;
    qd_buf e, out, diff;

    int rv = parse(&a, "listen = [::1]:8443\nworkers = 2\nidle_timeout = 45s\n", &e);
    QD_EXPECT_INT(rv, 0);
    qd_buf_init(&out);
    qd_conf_dump(&a, QD_CONF_DUMP_EFFECTIVE, &out);
    QD_EXPECT_CONTAINS(qd_buf_str(&out), "idle_timeout = 45s\n");
    QD_EXPECT_CONTAINS(qd_buf_str(&out), "connection_window = 10MB\n");
    qd_conf_init(&b);
    QD_EXPECT_INT(qd_conf_parse(&b, "dump", out.data, out.len, &e), 0);
    qd_buf_init(&diff);
    QD_EXPECT_INT(qd_conf_diff(&a, &b, false, &diff), 0);
    qd_buf_reset(&out);
    qd_conf_dump(&a, QD_CONF_DUMP_CHANGED, &out);
    QD_EXPECT_STR(qd_buf_str(&out), "listen = [::1]:8443\nworkers = 2\nidle_timeout = 45s\n");
    qd_buf_reset(&out);
    qd_conf_dump(&a, QD_CONF_DUMP_DEFAULTS, &out);
    QD_EXPECT_CONTAINS(qd_buf_str(&out), "workers = auto\n");
    qd_conf_release(&a);
    qd_conf_release(&b);
    qd_buf_release(&e);
    qd_buf_release(&out);
    qd_buf_release(&diff);
}

static void test_conf_diff_restart_keys(void)
{
    qd_conf a, b;
    qd_buf e, names;

    parse(&a, "workers = 2\nidle_timeout = 30s\n", &e);
    qd_buf_release(&e);
    parse(&b, "workers = 3\nidle_timeout = 40s\n", &e);
    qd_buf_init(&names);
    QD_EXPECT_INT(qd_conf_diff(&a, &b, false, &names), 2);
    QD_EXPECT_STR(qd_buf_str(&names), "workers idle_timeout");
    qd_buf_reset(&names);
    QD_EXPECT_INT(qd_conf_diff(&a, &b, true, &names), 1);
    QD_EXPECT_STR(qd_buf_str(&names), "workers");
    qd_conf_release(&a);
    qd_conf_release(&b);
    qd_buf_release(&e);
    qd_buf_release(&names);
}

static void test_conf_workers_auto(void)
{
    qd_conf c;

    qd_conf_init(&c);
    if (qd_conf_workers(&c) < 1)
        QD_FAIL("auto workers: got %d", qd_conf_workers(&c));
    c.workers = 5;
    QD_EXPECT_INT(qd_conf_workers(&c), 5);
    qd_conf_release(&c);
}

/*
 * The TCP keys: defaults, values, ranges and which of them a reload
 * applies in place (tcp and tcp_backlog change the sockets, so a change
 * replaces the daemons).
 */
static void test_conf_tcp_keys(void)
{
    static const struct {
        const char *name;
        bool reloadable;
    } rows[] = {{"tcp", false},
                {"tcp_backlog", false},
                {"alt_svc_max_age", true},
                {"tcp_header_timeout", true},
                {"tcp_idle_timeout", true}};
    static const struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"tcp = maybe\n", "t.conf:1: tcp: invalid value \"maybe\": expected yes or no\n"},
        {"tcp_backlog = 0\n",
         "t.conf:1: tcp_backlog: invalid value \"0\": out of range (1 to 65535)\n"},
        {"tcp_backlog = 65536\n",
         "t.conf:1: tcp_backlog: invalid value \"65536\": out of range (1 to 65535)\n"},
        {"alt_svc_max_age = 3651d\n",
         "t.conf:1: alt_svc_max_age: invalid value \"3651d\": out of range (0ms to "
         "315360000000ms)\n"},
        {"tcp_header_timeout = 50ms\n",
         "t.conf:1: tcp_header_timeout: invalid value \"50ms\": out of range (100ms to "
         "3600000ms)\n"},
        {"tcp_idle_timeout = 2d\n",
         "t.conf:1: tcp_idle_timeout: invalid value \"2d\": out of range (100ms to 86400000ms)\n"},
    };
    size_t n;
    const qd_conf_key *keys = qd_conf_keys(&n);
    qd_conf c;
    qd_buf e;

    qd_conf_init(&c);
    QD_EXPECT_INT(c.tcp, 1);
    QD_EXPECT_INT(c.tcp_backlog, 511);
    QD_EXPECT_INT(c.alt_svc_max_age_ms, 86400LL * 1000);
    QD_EXPECT_INT(c.tcp_header_timeout_ms, 10000);
    QD_EXPECT_INT(c.tcp_idle_timeout_ms, 60000);
    qd_conf_release(&c);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int k = qd_conf_key_find(rows[i].name);
        if (k < 0) {
            QD_FAIL("key %s missing", rows[i].name);
            continue;
        }
        QD_EXPECT_INT((keys[k].flags & QD_CONF_F_RELOAD) != 0, rows[i].reloadable);
    }
    QD_EXPECT_INT(parse(&c,
                        "tcp = no\ntcp_backlog = 4096\nalt_svc_max_age = 0\n"
                        "tcp_header_timeout = 500ms\ntcp_idle_timeout = 5m\n",
                        &e),
                  0);
    QD_EXPECT_STR(qd_buf_str(&e), "");
    QD_EXPECT_INT(c.tcp, 0);
    QD_EXPECT_INT(c.tcp_backlog, 4096);
    QD_EXPECT_INT(c.alt_svc_max_age_ms, 0);
    QD_EXPECT_INT(c.tcp_header_timeout_ms, 500);
    QD_EXPECT_INT(c.tcp_idle_timeout_ms, 300000);
    qd_conf_release(&c);
    qd_buf_release(&e);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        QD_EXPECT_INT(parse(&c, bad[i].text, &e), QD_ERR_CONF);
        QD_EXPECT_STR(qd_buf_str(&e), bad[i].want);
        qd_conf_release(&c);
        qd_buf_release(&e);
    }
}

/* collect - qd_conf_hints_parse callback: "path=>links;" */
static void collect(void *arg, const char *path, const char *links)
{
    qd_buf_printf(arg, "%s=>%s;", path, links);
}

static void test_conf_early_hints(void)
{
    static const char text[] = "early_hints = /index.html </style.css>; rel=preload; as=style,\n"
                               "    </app.js>; rel=preload; as=script\n"
                               "  | /a/ </a.css>; rel=preload\n";
    static const char *const bad[] = {"index.html </x>", "/index.html", "/x <y>; rel=preload |",
                                      "| /x </y>", "/x y", "/x </a> || /y </b>"};
    qd_conf c;
    qd_buf errs, got;
    const char *why = NULL;

    qd_buf_init(&errs);
    qd_buf_init(&got);
    qd_conf_init(&c);
    QD_EXPECT_STR(c.early_hints, "");
    QD_EXPECT_INT(c.api, 1);
    QD_EXPECT_INT(qd_conf_parse(&c, "t.conf", text, sizeof(text) - 1, &errs), 0);
    QD_EXPECT_INT(qd_conf_hints_parse(c.early_hints, collect, &got, &why), 0);
    QD_EXPECT_STR(qd_buf_str(&got), "/index.html=></style.css>; rel=preload; as=style, </app.js>; "
                                    "rel=preload; as=script;/a/=></a.css>; rel=preload;");
    qd_conf_release(&c);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char line[256];
        int n = snprintf(line, sizeof(line), "\nearly_hints = %s\n", bad[i]);
        qd_buf_reset(&errs);
        qd_conf_init(&c);
        QD_EXPECT_INT(qd_conf_parse(&c, "t.conf", line, (size_t)n, &errs), QD_ERR_CONF);
        QD_EXPECT_CONTAINS(qd_buf_str(&errs), "t.conf:2: early_hints: invalid value");
        qd_conf_release(&c);
    }
    qd_buf_release(&errs);
    qd_buf_release(&got);
}

/*
 * The metrics keys: metrics_listen (one address, empty: off),
 * metrics_allow (networks, matched against peers, v4-mapped v6 included)
 * and metrics_token_file; every bad entry names file:line and the key.
 */
static void test_conf_metrics_keys(void)
{
    static const struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"metrics_allow = 10.0.0.0/33\n",
         "t.conf:1: metrics_allow: invalid value \"10.0.0.0/33\": '10.0.0.0/33': prefix length "
         "must be a number from 0 to 32\n"},
        {"metrics_allow = ::1, 2001:db8::/129\n",
         "t.conf:1: metrics_allow: invalid value \"::1, 2001:db8::/129\": '2001:db8::/129': "
         "prefix length must be a number from 0 to 128\n"},
        {"metrics_allow = 10.0.0.1/8\n",
         "t.conf:1: metrics_allow: invalid value \"10.0.0.1/8\": '10.0.0.1/8': address bits set "
         "beyond the /8 prefix (the network is 10.0.0.0/8)\n"},
        {"metrics_allow = 10.0.0.300\n",
         "t.conf:1: metrics_allow: invalid value \"10.0.0.300\": '10.0.0.300': bad IPv4 "
         "address\n"},
        {"metrics_allow = fe80::g\n",
         "t.conf:1: metrics_allow: invalid value \"fe80::g\": 'fe80::g': bad IPv6 address\n"},
        {"metrics_allow = 10.0.0.0/-1\n",
         "t.conf:1: metrics_allow: invalid value \"10.0.0.0/-1\": '10.0.0.0/-1': prefix length "
         "must be a number from 0 to 32\n"},
        {"metrics_allow = 10.0.0.0/\n",
         "t.conf:1: metrics_allow: invalid value \"10.0.0.0/\": '10.0.0.0/': prefix length must "
         "be a number from 0 to 32\n"},
        {"metrics_allow = /8\n",
         "t.conf:1: metrics_allow: invalid value \"/8\": '/8': expected an address or "
         "ADDRESS/PREFIX\n"},
        {"metrics_allow =\n", "t.conf:1: metrics_allow: invalid value \"\": value is empty\n"},
        {"metrics_allow = ,\n", "t.conf:1: metrics_allow: invalid value \",\": no network given\n"},
        {"metrics_listen = 127.0.0.1\n",
         "t.conf:1: metrics_listen: invalid value \"127.0.0.1\": expected address:port\n"},
        {"metrics_listen = 127.0.0.1:1, 127.0.0.1:2\n",
         "t.conf:1: metrics_listen: invalid value \"127.0.0.1:1, 127.0.0.1:2\": one address only "
         "(addr:port or [v6]:port)\n"},
        {"metrics_listen = [::1]:0\n",
         "t.conf:1: metrics_listen: invalid value \"[::1]:0\": port must be a number from 1 to "
         "65535\n"},
        {"metrics_token_file = token\n",
         "t.conf:1: metrics_token_file: invalid value \"token\": must be an absolute path\n"},
    };
    qd_conf c;
    qd_buf e;
    char text[80];

    /* defaults: off, loopback only, no token */
    qd_conf_init(&c);
    QD_EXPECT_INT(c.metrics_listen.family, 0);
    QD_EXPECT_STR(qd_conf_addr_text(&c.metrics_listen, text, sizeof(text)), "");
    QD_EXPECT_INT(c.metrics_allow.count, 2);
    QD_EXPECT_STR(c.metrics_token_file, "");
    qd_conf_release(&c);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        QD_EXPECT_INT(parse(&c, bad[i].text, &e), QD_ERR_CONF);
        QD_EXPECT_STR(qd_buf_str(&e), bad[i].want);
        qd_conf_release(&c);
        qd_buf_release(&e);
    }

    QD_EXPECT_INT(parse(&c,
                        "metrics_listen = [::1]:9100\n"
                        "metrics_allow = 10.0.0.0/8 192.168.1.7,\n"
                        "  2001:db8::/32, 172.16.0.0/12, ::ffff:0:0/96\n"
                        "metrics_token_file = /etc/quicd/metrics.token\n",
                        &e),
                  0);
    QD_EXPECT_STR(qd_buf_str(&e), "");
    QD_EXPECT_STR(qd_conf_addr_text(&c.metrics_listen, text, sizeof(text)), "[::1]:9100");
    QD_EXPECT_INT(c.metrics_allow.count, 5);
    QD_EXPECT_INT(c.metrics_allow.items[1].prefix, 32);
    QD_EXPECT_STR(c.metrics_token_file, "/etc/quicd/metrics.token");
    QD_EXPECT_INT(c.line[QD_K_METRICS_ALLOW], 2);

    static const struct {
        const char *addr;
        bool in;
    } peers[] = {
        {"10.1.2.3", true},        {"11.0.0.1", false},     {"192.168.1.7", true},
        {"192.168.1.8", false},    {"172.31.255.255", true}, {"172.32.0.0", false},
        {"2001:db8:ffff::1", true}, {"2001:db9::1", false},  {"::ffff:10.9.9.9", true},
        {"::1", false},            {"127.0.0.1", false},
    };
    for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        if (strchr(peers[i].addr, ':')) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_family = AF_INET6;
            inet_pton(AF_INET6, peers[i].addr, &s6->sin6_addr);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            inet_pton(AF_INET, peers[i].addr, &s4->sin_addr);
        }
        if (qd_conf_nets_match(&c.metrics_allow, (struct sockaddr *)&ss) != peers[i].in)
            QD_FAIL("%s: match %d, want %d", peers[i].addr, !peers[i].in, peers[i].in);
    }
    /* the default: 127.0.0.0/8 and ::1, the v4 loopback also as a mapped address */
    qd_conf default_conf;
    qd_conf_init(&default_conf);
    struct sockaddr_in6 m6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:127.0.0.9", &m6.sin6_addr);
    QD_EXPECT_INT(qd_conf_nets_match(&default_conf.metrics_allow, (struct sockaddr *)&m6), 1);
    inet_pton(AF_INET6, "::1", &m6.sin6_addr);
    QD_EXPECT_INT(qd_conf_nets_match(&default_conf.metrics_allow, (struct sockaddr *)&m6), 1);
    inet_pton(AF_INET6, "::2", &m6.sin6_addr);
    QD_EXPECT_INT(qd_conf_nets_match(&default_conf.metrics_allow, (struct sockaddr *)&m6), 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    QD_EXPECT_INT(qd_conf_nets_match(&default_conf.metrics_allow, (struct sockaddr *)&un), 0);
    /* 0.0.0.0/0 and ::/0 allow everyone */
    qd_buf none;
    qd_buf_init(&none);
    QD_EXPECT_INT(qd_conf_set(&default_conf, "metrics_allow", "0.0.0.0/0, ::/0", "-o", &none), 0);
    QD_EXPECT_INT(qd_conf_nets_match(&default_conf.metrics_allow, (struct sockaddr *)&m6), 1);

    /* all three apply on reload; the dump parses back to the same values */
    qd_buf names, out;
    qd_conf back;
    qd_buf_init(&names);
    QD_EXPECT_INT(qd_conf_diff(&default_conf, &c, false, &names), 3);
    QD_EXPECT_STR(qd_buf_str(&names), "metrics_listen metrics_allow metrics_token_file");
    qd_buf_reset(&names);
    QD_EXPECT_INT(qd_conf_diff(&default_conf, &c, true, &names), 0);
    qd_buf_init(&out);
    qd_conf_dump(&c, QD_CONF_DUMP_EFFECTIVE, &out);
    qd_conf_init(&back);
    QD_EXPECT_INT(qd_conf_parse(&back, "dump", out.data, out.len, &e), 0);
    qd_buf_reset(&names);
    QD_EXPECT_INT(qd_conf_diff(&c, &back, false, &names), 0);

    qd_conf_release(&back);
    qd_conf_release(&default_conf);
    qd_conf_release(&c);
    qd_buf_release(&e);
    qd_buf_release(&none);
    qd_buf_release(&names);
    qd_buf_release(&out);
}

int main(void)
{
    QD_RUN(test_conf_early_hints);
    QD_RUN(test_conf_defaults);
    QD_RUN(test_conf_contract_keys);
    QD_RUN(test_conf_values);
    QD_RUN(test_conf_continuation);
    QD_RUN(test_conf_errors);
    QD_RUN(test_conf_errors_all_reported);
    QD_RUN(test_conf_nul_and_binary);
    QD_RUN(test_conf_crlf_and_no_newline);
    QD_RUN(test_conf_load_file);
    QD_RUN(test_conf_set_override);
    QD_RUN(test_conf_dump_roundtrip);
    QD_RUN(test_conf_diff_restart_keys);
    QD_RUN(test_conf_workers_auto);
    QD_RUN(test_conf_tcp_keys);
    QD_RUN(test_conf_metrics_keys);
    QD_TEST_DONE();
}
