/* SPDX-License-Identifier: MIT */
#ifndef QD_TEST_H
#define QD_TEST_H

/*
 * A tiny table-driven test harness (Postfix ptest in spirit): each case
 * prints RUN/PASS/FAIL with got/want; main returns 0 or 1 for automake.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int qd_test_failures;
static int qd_test_count;
static int qd_test_failed_cases;
static const char *qd_test_current;

#define QD_RUN(fn)                                                                                 \
    do {                                                                                           \
        int before_ = qd_test_failures;                                                            \
        qd_test_current = #fn;                                                                     \
        qd_test_count++;                                                                           \
        printf("RUN  %s\n", #fn);                                                                  \
        fn();                                                                                      \
        if (qd_test_failures != before_)                                                           \
            qd_test_failed_cases++;                                                                \
        printf("%s %s\n", qd_test_failures == before_ ? "PASS" : "FAIL", #fn);                     \
    } while (0)

#define QD_FAIL(...)                                                                               \
    do {                                                                                           \
        printf("FAIL %s (%s:%d): ", qd_test_current, __FILE__, __LINE__);                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        qd_test_failures++;                                                                        \
    } while (0)

#define QD_EXPECT_INT(got, want)                                                                   \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (g_ != w_)                                                                              \
            QD_FAIL("%s: got %lld, want %lld", #got, g_, w_);                                      \
    } while (0)

#define QD_EXPECT_STR(got, want)                                                                   \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (g_ == NULL || strcmp(g_, w_) != 0)                                                     \
            QD_FAIL("%s: got \"%s\", want \"%s\"", #got, g_ ? g_ : "(null)", w_);                  \
    } while (0)

#define QD_EXPECT_CONTAINS(got, want)                                                              \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (g_ == NULL || strstr(g_, w_) == NULL)                                                  \
            QD_FAIL("%s: got \"%s\", want it to contain \"%s\"", #got, g_ ? g_ : "(null)", w_);    \
    } while (0)

#define QD_TEST_DONE()                                                                             \
    do {                                                                                           \
        printf("%d passed, %d failed\n", qd_test_count - qd_test_failed_cases,                     \
               qd_test_failed_cases);                                                              \
        return qd_test_failures ? 1 : 0;                                                           \
    } while (0)

#endif /* QD_TEST_H */
