/* SPDX-License-Identifier: MIT */
/* Unit tests for libshared/qd_metrics: the slot layout, wire form, names and text. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qd_err.h"
#include "qd_metrics.h"
#include "qd_test.h"

/* every slot belongs to exactly one family, in order, and its name finds it again */
static void test_layout_and_names(void)
{
    size_t next = 0;
    char name[512];

    for (unsigned f = 0; f < QD_METRICS_NFAMILIES; f++) {
        QD_EXPECT_INT(qd_metrics_families[f].first, next);
        next += qd_metrics_families[f].nslots;
    }
    QD_EXPECT_INT(next, QD_METRICS_NSLOTS);
    for (size_t s = 0; s < QD_METRICS_NSLOTS; s++) {
        qd_metrics_series(s, name, sizeof(name));
        QD_EXPECT_INT(!!(strncmp(name, "quicd_", 6) == 0), 1);
        QD_EXPECT_INT(qd_metrics_find(name), (long)s);
    }
    qd_metrics_series(QD_M2(REQUESTS, QD_MV_PROTO_H2, 4), name, sizeof(name));
    QD_EXPECT_STR(name, "quicd_http_requests_total{protocol=\"h2\",class=\"5xx\"}");
    qd_metrics_series(QD_M_UDP_RX_DATAGRAMS, name, sizeof(name));
    QD_EXPECT_STR(name, "quicd_udp_datagrams_received_total");
    qd_metrics_series(QD_M1(TTFB_SECONDS, QD_MV_PROTO_H3) + 3, name, sizeof(name));
    QD_EXPECT_STR(name, "quicd_http_time_to_first_byte_seconds_bucket{protocol=\"h3\",le=\"0.01\"}");
    qd_metrics_series(QD_M1(TTFB_SECONDS, QD_MV_PROTO_H1) + QD_METRICS_NBUCKETS, name,
                      sizeof(name));
    QD_EXPECT_STR(name, "quicd_http_time_to_first_byte_seconds_sum{protocol=\"http/1.1\"}");
    qd_metrics_series(QD_M2(QUIC_CLOSES, QD_MV_REMOTE, QD_MV_CODE_IDLE), name, sizeof(name));
    QD_EXPECT_STR(name, "quicd_quic_connection_closes_total{side=\"remote\",code=\"idle_timeout\"}");
    QD_EXPECT_INT(qd_metrics_find("quicd_nothing_total"), -1);
    qd_metrics_series(QD_M1(WORKER_REQUESTS, 255), name, sizeof(name));
    QD_EXPECT_STR(name, "quicd_worker_requests_total{worker=\"255\"}");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_WORKER, 17), "17");
    QD_EXPECT_INT(qd_metrics_dim_is_instance(QD_MD_WORKER), 1);
    QD_EXPECT_INT(qd_metrics_dim_is_instance(QD_MD_PROTO), 0);
}

static void test_close_codes(void)
{
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, qd_metrics_close_code(false, 0)), "no_error");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, qd_metrics_close_code(false, 0x0a)),
                  "protocol_violation");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, qd_metrics_close_code(false, 0x10)),
                  "no_viable_path");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, qd_metrics_close_code(false, 0x128)),
                  "crypto_error");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, qd_metrics_close_code(false, 0x11)), "other");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, qd_metrics_close_code(true, 0x100)),
                  "h3_no_error");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, qd_metrics_close_code(true, 0x107)),
                  "h3_excessive_load");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, qd_metrics_close_code(true, 0x110)),
                  "h3_version_fallback");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, qd_metrics_close_code(true, 0x202)),
                  "qpack_decoder_stream_error");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, qd_metrics_close_code(true, 0)), "other");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, QD_MV_CODE_IDLE), "idle_timeout");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLOSE_CODE, QD_MV_CODE_SILENT), "silent");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_DROP, QD_MV_DROP_NO_OWNER), "no_owner");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_CLASS, QD_MV_CLASS_NONE), "none");
    QD_EXPECT_STR(qd_metrics_dim_value(QD_MD_HANDSHAKE, QD_MV_HS_ABANDONED), "abandoned");
}

/* encode and decode round-trip; truncated, overlong and trailing input is refused */
static void test_wire(void)
{
    static qd_metrics a, b;
    static uint8_t buf[QD_METRICS_NSLOTS * 10];

    for (size_t s = 0; s < QD_METRICS_NSLOTS; s++)
        a.v[s] = s % 7 == 0 ? UINT64_MAX - s : s % 3 == 0 ? 0 : s * 1000003u;
    size_t len = qd_metrics_encode(&a, buf, sizeof(buf));
    QD_EXPECT_INT(!!(len > 0), 1);
    QD_EXPECT_INT(qd_metrics_decode(&b, buf, len), 0);
    QD_EXPECT_INT(!!(memcmp(&a, &b, sizeof(a)) == 0), 1);
    QD_EXPECT_INT(qd_metrics_decode(&b, buf, len - 1), QD_ERR_INVAL);
    buf[len] = 0;
    QD_EXPECT_INT(qd_metrics_decode(&b, buf, len + 1), QD_ERR_INVAL);
    QD_EXPECT_INT(qd_metrics_encode(&a, buf, 10), 0);
    memset(buf, 0xff, 11); /* a varint of 11 bytes */
    buf[10] = 0;
    QD_EXPECT_INT(qd_metrics_decode(&b, buf, sizeof(buf)), QD_ERR_INVAL);
    memset(&a, 0, sizeof(a));
    QD_EXPECT_INT(qd_metrics_encode(&a, buf, sizeof(buf)), QD_METRICS_NSLOTS);
    QD_EXPECT_INT(!!(qd_metrics_schema() != 0), 1);
}

/* the text: histograms cumulative, sums in seconds, every series present */
static void test_render(void)
{
    static qd_metrics m;
    qd_buf out;

    qd_metrics_observe(&m, QD_M1(REQUEST_SECONDS, QD_MV_PROTO_H3), 800);     /* <= 1 ms */
    qd_metrics_observe(&m, QD_M1(REQUEST_SECONDS, QD_MV_PROTO_H3), 30000);   /* <= 50 ms */
    qd_metrics_observe(&m, QD_M1(REQUEST_SECONDS, QD_MV_PROTO_H3), 20000000); /* +Inf */
    m.v[QD_M2(REQUESTS, QD_MV_PROTO_H3, 1)] = 42;
    m.v[QD_M1(WORKER_REQUESTS, 1)] = 7;
    m.v[QD_M1(WORKER_REQUESTS, 2)] = 9; /* a place beyond the configured workers: not shown */
    m.v[QD_M1(WORKER_CPU, 0)] = 2500001;
    qd_buf_init(&out);
    qd_metrics_render(&m, 2, &out);
    const char *t = qd_buf_str(&out);
    QD_EXPECT_CONTAINS(t, "# TYPE quicd_http_requests_total counter\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_http_requests_total{protocol=\"h3\",class=\"2xx\"} 42\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_http_requests_total{protocol=\"http/1.1\",class=\"none\"} 0\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_http_request_duration_seconds_bucket{protocol=\"h3\",le=\"0.001\"} 1\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_http_request_duration_seconds_bucket{protocol=\"h3\",le=\"0.025\"} 1\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_http_request_duration_seconds_bucket{protocol=\"h3\",le=\"0.05\"} 2\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_http_request_duration_seconds_bucket{protocol=\"h3\",le=\"10\"} 2\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_http_request_duration_seconds_bucket{protocol=\"h3\",le=\"+Inf\"} 3\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_http_request_duration_seconds_sum{protocol=\"h3\"} 20.030800\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_http_request_duration_seconds_count{protocol=\"h3\"} 3\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_udp_receive_queue_drops_total 0\n");
    QD_EXPECT_CONTAINS(t, "# TYPE quicd_http_requests_in_flight gauge\n");
    /* an instance dimension: the configured workers, each from the start */
    QD_EXPECT_CONTAINS(t, "\nquicd_worker_requests_total{worker=\"0\"} 0\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_worker_requests_total{worker=\"1\"} 7\n");
    QD_EXPECT_INT(strstr(t, "quicd_worker_requests_total{worker=\"2\"}") == NULL, 1);
    QD_EXPECT_CONTAINS(t, "\nquicd_worker_resident_bytes{worker=\"1\"} 0\n");
    /* a COUNTER_US: seconds */
    QD_EXPECT_CONTAINS(t, "# TYPE quicd_worker_cpu_seconds_total counter\n");
    QD_EXPECT_CONTAINS(t, "\nquicd_worker_cpu_seconds_total{worker=\"0\"} 2.500001\n");
    qd_buf_release(&out);
}

/* the sparse form: round trip, sums, bounds */
static void test_sparse(void)
{
    static qd_metrics a, b;
    static uint8_t buf[QD_METRICS_NSLOTS * 20];

    QD_EXPECT_INT(qd_metrics_encode_sparse(&a, buf, sizeof(buf)), 0);
    a.v[0] = 5;
    a.v[7] = 300;
    a.v[QD_METRICS_NSLOTS - 1] = UINT64_MAX;
    size_t len = qd_metrics_encode_sparse(&a, buf, sizeof(buf));
    QD_EXPECT_INT(len > 0 && len < 30, 1);
    QD_EXPECT_INT(qd_metrics_add_sparse(&b, buf, len), 0);
    QD_EXPECT_INT(memcmp(&a, &b, sizeof(a)), 0);
    QD_EXPECT_INT(qd_metrics_add_sparse(&b, buf, len), 0);
    QD_EXPECT_INT(b.v[7], 600);
    QD_EXPECT_INT(qd_metrics_add_sparse(&b, buf, len - 1), QD_ERR_INVAL); /* cut short */
    uint8_t beyond[] = {0x80 | (QD_METRICS_NSLOTS & 0x7f), QD_METRICS_NSLOTS >> 7, 1};
    QD_EXPECT_INT(qd_metrics_add_sparse(&b, beyond, sizeof(beyond)), QD_ERR_INVAL);
    QD_EXPECT_INT(qd_metrics_encode_sparse(&a, buf, 3), (size_t)-1);
}

/* percentiles of a fixed set: 100 observations, 50 of 3 ms, 40 of 20 ms, 9 of 200 ms, 1 of 30 s */
static void test_quantiles(void)
{
    static qd_metrics m;
    size_t h = QD_M1(REQUEST_SECONDS, QD_MV_PROTO_H2);

    QD_EXPECT_INT(qd_metrics_quantile(&m, h, 0.5) == -1, 1);
    QD_EXPECT_INT(qd_metrics_max(&m, h) == -1, 1);
    for (int i = 0; i < 50; i++)
        qd_metrics_observe(&m, h, 3000);    /* bucket (2.5, 5] ms */
    for (int i = 0; i < 40; i++)
        qd_metrics_observe(&m, h, 20000);   /* (10, 25] ms */
    for (int i = 0; i < 9; i++)
        qd_metrics_observe(&m, h, 200000);  /* (100, 250] ms */
    qd_metrics_observe(&m, h, 30000000);    /* +Inf */
    QD_EXPECT_INT(qd_metrics_count(&m, h), 100);
    /* p50: rank 50, the last of (2.5, 5]: 5 ms */
    QD_EXPECT_INT((int)lround(qd_metrics_quantile(&m, h, 0.50) * 1e6), 5000);
    /* p90: rank 90, the last of (10, 25]: 25 ms; p75: 25 of 40 in it: 10 + 15 * 25 / 40 */
    QD_EXPECT_INT((int)lround(qd_metrics_quantile(&m, h, 0.90) * 1e6), 25000);
    QD_EXPECT_INT((int)lround(qd_metrics_quantile(&m, h, 0.75) * 1e6), 19375);
    /* p99: rank 99, the last of (100, 250]: 250 ms */
    QD_EXPECT_INT((int)lround(qd_metrics_quantile(&m, h, 0.99) * 1e6), 250000);
    /* p100 is in +Inf: the largest finite bound */
    QD_EXPECT_INT((int)lround(qd_metrics_quantile(&m, h, 1.0) * 1e6), 10000000);
    QD_EXPECT_INT(isinf(qd_metrics_max(&m, h)), 1);
    m.v[h + QD_METRICS_NBUCKETS - 1] = 0;
    QD_EXPECT_INT((int)lround(qd_metrics_max(&m, h) * 1e6), 250000);
}

int main(void)
{
    QD_RUN(test_layout_and_names);
    QD_RUN(test_close_codes);
    QD_RUN(test_wire);
    QD_RUN(test_render);
    QD_RUN(test_sparse);
    QD_RUN(test_quantiles);
    QD_TEST_DONE();
}
