/* SPDX-License-Identifier: MIT */
/* Unit tests for libshared/qd_buf. */
#include "config.h"

#include <string.h>

#include "qd_buf.h"
#include "qd_test.h"

static void test_buf_printf_append(void)
{
    qd_buf b;

    qd_buf_init(&b);
    QD_EXPECT_STR(qd_buf_str(&b), "");
    qd_buf_printf(&b, "%d-%s", 12, "ab");
    qd_buf_append(&b, "xyz", 2);
    QD_EXPECT_STR(qd_buf_str(&b), "12-abxy");
    QD_EXPECT_INT(b.len, 7);
    for (int i = 0; i < 1000; i++)
        qd_buf_printf(&b, "%04d", i);
    QD_EXPECT_INT(b.len, 4007);
    qd_buf_reset(&b);
    QD_EXPECT_STR(qd_buf_str(&b), "");
    qd_buf_release(&b);
    qd_buf_release(NULL);
}

static void test_buf_json_string(void)
{
    qd_buf b;

    qd_buf_init(&b);
    qd_buf_json_string(&b, "a\"b\\c\n\t\x01z");
    QD_EXPECT_STR(qd_buf_str(&b), "\"a\\\"b\\\\c\\n\\t\\u0001z\"");
    qd_buf_release(&b);
}

int main(void)
{
    QD_RUN(test_buf_printf_append);
    QD_RUN(test_buf_json_string);
    QD_TEST_DONE();
}
