/* SPDX-License-Identifier: MIT */
/* Unit tests for the proxy table (libshared/qd_proxy.c): parsing, errors, matching, dump. */
#include "config.h"

#include "qd_buf.h"
#include "qd_err.h"
#include "qd_proxy.h"
#include "qd_test.h"

static const char good[] =
    "# groups first or last: either works\n"
    "route example.com/api/ api strip\n"
    "route */ app\n"
    "route */static/ local\n"
    "route Example.COM/ app\n"
    "route */a local\n"
    "route */abc app\n"
    "group app policy=least_conn check=/healthz check_interval=500ms check_timeout=2s rise=1\n"
    "    fall=5 expect=204 connect_timeout=250ms read_timeout=3s send_timeout=4s\n"
    "    idle_timeout=0 fail_timeout=2s queue=5 retries=0 fail_5xx=yes\n"
    "server app 127.0.0.1:8080 weight=2 max_conns=10\n"
    "server app unix:/run/app.sock backup\n"
    "  # a comment inside does not end the record\n"
    "server app [::1]:9000\n"
    "group api policy=hash\n"
    "    hash=header:x-user\n"
    "server api Backend.Example:81\n";

static void parse_good(qd_proxy *p)
{
    qd_buf errs;

    qd_buf_init(&errs);
    qd_proxy_init(p);
    QD_EXPECT_INT(qd_proxy_parse(p, "t", good, sizeof(good) - 1, &errs), 0);
    QD_EXPECT_STR(qd_buf_str(&errs), "");
    qd_buf_release(&errs);
}

static void test_parse(void)
{
    qd_proxy p;

    parse_good(&p);
    QD_EXPECT_INT(p.ngroups, 2);
    QD_EXPECT_STR(p.groups[0].name, "app");
    QD_EXPECT_INT(p.groups[0].policy, QD_PROXY_LEAST_CONN);
    QD_EXPECT_INT(p.groups[0].nservers, 3);
    QD_EXPECT_STR(p.groups[0].check_path, "/healthz");
    QD_EXPECT_INT(p.groups[0].check_interval_ms, 500);
    QD_EXPECT_INT(p.groups[0].check_timeout_ms, 2000);
    QD_EXPECT_INT(p.groups[0].rise, 1);
    QD_EXPECT_INT(p.groups[0].fall, 5);
    QD_EXPECT_INT(p.groups[0].expect, 204);
    /* defaults: no checks, 2s, 1s, rise 2, fall 3, any 2xx */
    QD_EXPECT_STR(p.groups[1].check_path, "");
    QD_EXPECT_INT(p.groups[1].check_interval_ms, 2000);
    QD_EXPECT_INT(p.groups[1].check_timeout_ms, 1000);
    QD_EXPECT_INT(p.groups[1].rise, 2);
    QD_EXPECT_INT(p.groups[1].fall, 3);
    QD_EXPECT_INT(p.groups[1].expect, 2);
    QD_EXPECT_STR(p.groups[0].servers[0].host, "127.0.0.1");
    QD_EXPECT_INT(p.groups[0].servers[0].port, 8080);
    QD_EXPECT_INT(p.groups[0].servers[0].weight, 2);
    QD_EXPECT_INT(p.groups[0].servers[0].max_conns, 10);
    QD_EXPECT_STR(p.groups[0].servers[1].unix_path, "/run/app.sock");
    QD_EXPECT_INT(p.groups[0].servers[1].backup, 1);
    QD_EXPECT_STR(p.groups[0].servers[2].host, "::1");
    QD_EXPECT_INT(p.groups[0].servers[2].weight, 1);
    QD_EXPECT_INT(p.groups[1].policy, QD_PROXY_HASH);
    QD_EXPECT_STR(p.groups[1].hash_header, "x-user");
    QD_EXPECT_STR(p.groups[1].servers[0].host, "backend.example");
    QD_EXPECT_INT(p.nroutes, 6);
    /* a named host first, then longer prefixes */
    QD_EXPECT_STR(p.routes[0].host, "example.com");
    QD_EXPECT_STR(p.routes[0].prefix, "/api/");
    QD_EXPECT_STR(p.routes[1].prefix, "/");
    QD_EXPECT_STR(p.routes[2].prefix, "/static/");
    QD_EXPECT_STR(p.routes[5].prefix, "/");
    qd_proxy_release(&p);
}

static void test_match(void)
{
    qd_proxy p;
    const qd_proxy_route *r;

    parse_good(&p);
    r = qd_proxy_match(&p, "example.com:443", "/api/users");
    QD_EXPECT_INT(r != NULL && r->strip && r->group == 1, 1);
    r = qd_proxy_match(&p, "EXAMPLE.com", "/static/x.css"); /* its own host: only /api/ and / */
    QD_EXPECT_INT(r != NULL && r->group == 0 && r->prefix[1] == '\0', 1);
    r = qd_proxy_match(&p, "other", "/static/x.css");
    QD_EXPECT_INT(r != NULL && r->group == -1, 1);
    r = qd_proxy_match(&p, "other", "/abcd"); /* the longest prefix: /abc, not /a */
    QD_EXPECT_STR(r ? r->prefix : "", "/abc");
    r = qd_proxy_match(&p, "other", "/ab");
    QD_EXPECT_STR(r ? r->prefix : "", "/a");
    r = qd_proxy_match(&p, "[::1]:8443", "/x");
    QD_EXPECT_STR(r ? r->prefix : "", "/");
    QD_EXPECT_INT(qd_proxy_match(&p, "other", NULL) == NULL, 1);
    qd_proxy_release(&p);

    qd_proxy_init(&p); /* no routes: nothing matches */
    QD_EXPECT_INT(qd_proxy_match(&p, "a", "/") == NULL, 1);
    qd_proxy_release(&p);
}

/* expect_error TEXT WANT - TEXT does not parse, and one error line contains WANT */
static void expect_error(const char *text, const char *want)
{
    qd_proxy p;
    qd_buf errs;

    qd_proxy_init(&p);
    qd_buf_init(&errs);
    QD_EXPECT_INT(qd_proxy_parse(&p, "tbl", text, strlen(text), &errs), QD_ERR_CONF);
    QD_EXPECT_CONTAINS(qd_buf_str(&errs), want);
    qd_proxy_release(&p);
    qd_buf_release(&errs);
}

static void test_errors(void)
{
    const char *g = "group g\nserver g 10.0.0.1:80\n";
    char t[512];

    expect_error("frob x\n", "tbl:1: frob: unknown record (group, server, route, trust)");
    expect_error("group\n", "tbl:1: group: a name is missing");
    expect_error("group local\nserver local 1.2.3.4:5\n", "tbl:1: local: not a group name");
    expect_error("group a/b\n", "tbl:1: a/b: not a group name");
    expect_error("group g\n", "tbl:1: g: group has no server");
    expect_error("group g\ngroup g\nserver g 1.2.3.4:5\n", "tbl:2: g: group defined twice");
    expect_error("group g policy=random\nserver g 1.2.3.4:5\n", "tbl:1: policy=random: policy is");
    expect_error("group g hash=client\nserver g 1.2.3.4:5\n", "tbl:1: g: hash= needs policy=hash");
    expect_error("group g policy=hash hash=header:X\nserver g 1.2.3.4:5\n", "hash=header:X: hash is");
    expect_error("group g color=red\nserver g 1.2.3.4:5\n", "tbl:1: color=red: unknown group option");
    expect_error("group g check=health\nserver g 1.2.3.4:5\n", "check=health: check is a path");
    expect_error("group g check_interval=10ms\nserver g 1.2.3.4:5\n", "check_interval is 100ms to 1h");
    expect_error("group g check_interval=2x\nserver g 1.2.3.4:5\n", "check_interval is 100ms to 1h");
    expect_error("group g check_timeout=2m\nserver g 1.2.3.4:5\n", "check_timeout is 50ms to 60s");
    expect_error("group g rise=0\nserver g 1.2.3.4:5\n", "rise=0: rise is 1-100");
    expect_error("group g fall=101\nserver g 1.2.3.4:5\n", "fall=101: fall is 1-100");
    expect_error("group g expect=6xx\nserver g 1.2.3.4:5\n", "expect=6xx: expect is");
    expect_error("group g expect=199\nserver g 1.2.3.4:5\n", "expect=199: expect is");
    expect_error("group g connect_timeout=5ms\nserver g 1.2.3.4:5\n", "connect_timeout is 10ms");
    expect_error("group g read_timeout=2d\nserver g 1.2.3.4:5\n", "read_timeout is 10ms to 1d");
    expect_error("group g send_timeout=x\nserver g 1.2.3.4:5\n", "send_timeout is 10ms to 1d");
    expect_error("group g idle_timeout=2h\nserver g 1.2.3.4:5\n", "idle_timeout is 0 (no pool)");
    expect_error("group g fail_timeout=1ms\nserver g 1.2.3.4:5\n", "fail_timeout is 100ms");
    expect_error("group g queue=-1\nserver g 1.2.3.4:5\n", "queue=-1: queue is 0-100000");
    expect_error("group g retries=11\nserver g 1.2.3.4:5\n", "retries=11: retries is 0-10");
    expect_error("group g fail_5xx=1\nserver g 1.2.3.4:5\n", "fail_5xx=1: fail_5xx is yes or no");
    expect_error("server nope 1.2.3.4:80\n", "tbl:1: nope: no such group");
    snprintf(t, sizeof(t), "%sserver g 10.0.0.1\n", g);
    expect_error(t, "tbl:3: 10.0.0.1: want host:port");
    snprintf(t, sizeof(t), "%sserver g 10.0.0.1:0\n", g);
    expect_error(t, "tbl:3: 10.0.0.1:0: the port is 1-65535");
    snprintf(t, sizeof(t), "%sserver g [::1:80\n", g);
    expect_error(t, "want [v6]:port");
    snprintf(t, sizeof(t), "%sserver g [zz]:80\n", g);
    expect_error(t, "not an IPv6 address");
    snprintf(t, sizeof(t), "%sserver g unix:run.sock\n", g);
    expect_error(t, "an absolute path");
    snprintf(t, sizeof(t), "%sserver g b_d.host:80\n", g);
    expect_error(t, "not a host name");
    snprintf(t, sizeof(t), "%sserver g 10.0.0.1:80\n", g);
    expect_error(t, "tbl:3: 10.0.0.1:80: already a server of group g (line 2)");
    snprintf(t, sizeof(t), "%sserver g 10.0.0.2:80 weight=0\n", g);
    expect_error(t, "weight=0: weight is 1-256");
    snprintf(t, sizeof(t), "%sserver g 10.0.0.2:80 max_conns=-1\n", g);
    expect_error(t, "max_conns=-1: max_conns is");
    snprintf(t, sizeof(t), "%sserver g 10.0.0.2:80 fast\n", g);
    expect_error(t, "fast: unknown server option");
    snprintf(t, sizeof(t), "%sroute example.com g\n", g);
    expect_error(t, "tbl:3: example.com: want HOST/PREFIX");
    snprintf(t, sizeof(t), "%sroute /x g\n", g);
    expect_error(t, "want HOST/PREFIX");
    snprintf(t, sizeof(t), "%sroute a:80/x g\n", g);
    expect_error(t, "not a host name");
    snprintf(t, sizeof(t), "%sroute */x?y g\n", g);
    expect_error(t, "'?' or '#'");
    snprintf(t, sizeof(t), "%sroute */x h\n", g);
    expect_error(t, "tbl:3: h: no such group");
    snprintf(t, sizeof(t), "%sroute */x local strip\n", g);
    expect_error(t, "strip: a local route has nothing to strip");
    snprintf(t, sizeof(t), "%sroute */x g keep\n", g);
    expect_error(t, "keep: unknown route option");
    snprintf(t, sizeof(t), "%sroute */x g\nroute */x local\n", g);
    expect_error(t, "tbl:4: */x: route defined twice (line 3)");
    /* every error is reported, not only the first */
    expect_error("frob\nserver nope 1.2.3.4:5\n", "tbl:2: nope: no such group");
}

static void test_dump(void)
{
    qd_proxy p, again;
    qd_buf out, out2, errs;

    parse_good(&p);
    qd_buf_init(&out);
    qd_buf_init(&out2);
    qd_buf_init(&errs);
    qd_proxy_dump(&p, "", &out);
    qd_proxy_init(&again);
    QD_EXPECT_INT(qd_proxy_parse(&again, "dump", out.data, out.len, &errs), 0);
    qd_proxy_dump(&again, "", &out2);
    QD_EXPECT_STR(qd_buf_str(&out2), qd_buf_str(&out));
    QD_EXPECT_CONTAINS(qd_buf_str(&out), "server app [::1]:9000 weight=1 max_conns=0\n");
    QD_EXPECT_CONTAINS(qd_buf_str(&out), "group api policy=hash hash=header:x-user check_interval=2000ms "
                                         "check_timeout=1000ms rise=2 fall=3 expect=2xx "
                                         "connect_timeout=5000ms read_timeout=60000ms "
                                         "send_timeout=60000ms idle_timeout=30000ms "
                                         "fail_timeout=10000ms queue=64 retries=2\n");
    QD_EXPECT_CONTAINS(qd_buf_str(&out), "group app policy=least_conn check=/healthz "
                                         "check_interval=500ms check_timeout=2000ms rise=1 fall=5 "
                                         "expect=204 connect_timeout=250ms read_timeout=3000ms "
                                         "send_timeout=4000ms idle_timeout=0ms fail_timeout=2000ms "
                                         "queue=5 retries=0 fail_5xx=yes\n");
    QD_EXPECT_CONTAINS(qd_buf_str(&out), "route example.com/api/ api strip\n");
    qd_proxy_release(&p);
    qd_proxy_release(&again);
    qd_buf_release(&out);
    qd_buf_release(&out2);
    qd_buf_release(&errs);
}

static void test_trust(void)
{
    qd_proxy p;
    qd_buf errs, out;

    qd_proxy_init(&p);
    qd_buf_init(&errs);
    qd_buf_init(&out);
    QD_EXPECT_INT(qd_proxy_parse(&p, "tbl",
                                 "trust 10.0.0.0/8 192.0.2.7\n  2001:db8::/32 ::1\n"
                                 "group g\nserver g 1.2.3.4:5\n",
                                 strlen("trust 10.0.0.0/8 192.0.2.7\n  2001:db8::/32 ::1\n"
                                        "group g\nserver g 1.2.3.4:5\n"), &errs), 0);
    QD_EXPECT_INT((int)p.ntrust, 4);
    QD_EXPECT_INT(qd_proxy_trusted(&p, "10.200.3.4"), 1);
    QD_EXPECT_INT(qd_proxy_trusted(&p, "11.0.0.1"), 0);
    QD_EXPECT_INT(qd_proxy_trusted(&p, "192.0.2.7"), 1);
    QD_EXPECT_INT(qd_proxy_trusted(&p, "192.0.2.8"), 0);
    QD_EXPECT_INT(qd_proxy_trusted(&p, "::ffff:10.1.1.1"), 1);
    QD_EXPECT_INT(qd_proxy_trusted(&p, "2001:db8:ffff::1"), 1);
    QD_EXPECT_INT(qd_proxy_trusted(&p, "2001:db9::1"), 0);
    QD_EXPECT_INT(qd_proxy_trusted(&p, "::1"), 1);
    QD_EXPECT_INT(qd_proxy_trusted(&p, "not an address"), 0);
    qd_proxy_dump(&p, "", &out);
    QD_EXPECT_CONTAINS(qd_buf_str(&out), "trust 10.0.0.0/8 192.0.2.7/32 2001:db8::/32 ::1/128\n");
    qd_proxy_release(&p);
    qd_buf_release(&errs);
    qd_buf_release(&out);
    expect_error("trust\n", "tbl:1: trust: want: trust ADDRESS");
    expect_error("trust 10.0.0.1/8\n", "tbl:1: 10.0.0.1/8: not an address or network");
    expect_error("trust 10.0.0.0/33\n", "tbl:1: 10.0.0.0/33: not an address or network");
    expect_error("trust example.com\n", "tbl:1: example.com: not an address or network");
}

static void test_https(void)
{
    qd_proxy p;
    qd_buf errs, out;
    const char *t = "group g\nserver g https://127.0.0.1:8443 sni=app.internal verify=no\n"
                    "server g https://[::1]:443\nserver g 127.0.0.1:8443\n";

    qd_proxy_init(&p);
    qd_buf_init(&errs);
    qd_buf_init(&out);
    QD_EXPECT_INT(qd_proxy_parse(&p, "tbl", t, strlen(t), &errs), 0);
    QD_EXPECT_INT(p.groups[0].servers[0].tls, 1);
    QD_EXPECT_INT(p.groups[0].servers[0].no_verify, 1);
    QD_EXPECT_STR(p.groups[0].servers[0].sni, "app.internal");
    QD_EXPECT_INT(p.groups[0].servers[2].tls, 0); /* the same address without TLS: another server */
    char name[QD_PROXY_SERVER_NAME_MAX];
    qd_proxy_server_name(&p.groups[0].servers[1], name, sizeof(name));
    QD_EXPECT_STR(name, "https://[::1]:443");
    qd_proxy_dump(&p, "", &out);
    QD_EXPECT_CONTAINS(qd_buf_str(&out), "server g https://127.0.0.1:8443 weight=1 max_conns=0 "
                                         "sni=app.internal verify=no\n");
    qd_proxy_release(&p);
    qd_buf_release(&errs);
    qd_buf_release(&out);
    expect_error("group g\nserver g https://unix:/run/a.sock\n", "TLS to a Unix socket is not supported");
    expect_error("group g\nserver g 1.2.3.4:80 sni=x\n", "sni= and verify= for https:// servers");
    expect_error("group g\nserver g https://1.2.3.4:443 verify=maybe\n", "verify is yes or no");
    expect_error("group g\nserver g https://1.2.3.4:443 sni=a/b\n", "sni is a host name");
}

static void test_load(void)
{
    qd_proxy p;
    qd_buf errs;

    qd_proxy_init(&p);
    qd_buf_init(&errs);
    QD_EXPECT_INT(qd_proxy_load(&p, "/nonexistent/proxy.table", &errs), QD_ERR_IO);
    QD_EXPECT_CONTAINS(qd_buf_str(&errs), "/nonexistent/proxy.table: cannot read");
    qd_proxy_release(&p);
    qd_buf_release(&errs);
}

int main(void)
{
    QD_RUN(test_parse);
    QD_RUN(test_match);
    QD_RUN(test_errors);
    QD_RUN(test_dump);
    QD_RUN(test_trust);
    QD_RUN(test_https);
    QD_RUN(test_load);
    QD_TEST_DONE();
}
