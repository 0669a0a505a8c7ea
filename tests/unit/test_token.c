/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for libshared/qd_token: reading a token file (trimmed,
 * bounded, refused when empty, too long, not a file or not one word) and
 * checking an Authorization field value against it.
 */
#include "config.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qd_token.h"
#include "qd_test.h"

static char dir[] = "/tmp/qd-test-token.XXXXXX";

/* file_with - a file holding |len| bytes of |text|; returns its path (static) */
static const char *file_with(const char *text, size_t len)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/token", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
        QD_FAIL("cannot write %s", path);
    close(fd);
    return path;
}

static void test_token_read(void)
{
    static const struct {
        const char *text;
        const char *want; /* NULL: refused with |why| */
        const char *why;
    } cases[] = {
        {"s3cret\n", "s3cret", NULL},
        {"s3cret", "s3cret", NULL},
        {"s3cret\r\n", "s3cret", NULL},
        {"abc.DEF-_~+/==  \n\n", "abc.DEF-_~+/==", NULL},
        {"", NULL, "empty"},
        {"\n\n", NULL, "empty"},
        {"two words\n", NULL, "a token is one word of visible ASCII characters"},
        {"tab\there", NULL, "a token is one word of visible ASCII characters"},
        {"caf\xc3\xa9", NULL, "a token is one word of visible ASCII characters"},
        {"\x01x", NULL, "a token is one word of visible ASCII characters"},
    };
    char buf[QD_TOKEN_MAX + 1];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = NULL;
        int fd = open(file_with(cases[i].text, strlen(cases[i].text)), O_RDONLY | O_CLOEXEC);
        int rv = qd_token_read(fd, buf, sizeof(buf), &why);
        close(fd);
        if (cases[i].want != NULL) {
            QD_EXPECT_INT(rv, strlen(cases[i].want));
            QD_EXPECT_STR(buf, cases[i].want);
        } else {
            QD_EXPECT_INT(rv, -1);
            QD_EXPECT_STR(why, cases[i].why);
        }
    }
}

static void test_token_read_bounds(void)
{
    char big[QD_TOKEN_MAX + 2], buf[QD_TOKEN_MAX + 1], why[128];
    const char *reason = NULL;
    int fd;

    /* QD_TOKEN_MAX bytes with the newline: taken */
    memset(big, 'a', sizeof(big));
    big[QD_TOKEN_MAX - 1] = '\n';
    fd = open(file_with(big, QD_TOKEN_MAX), O_RDONLY | O_CLOEXEC);
    QD_EXPECT_INT(qd_token_read(fd, buf, sizeof(buf), &reason), QD_TOKEN_MAX - 1);
    close(fd);
    /* one more byte: refused, whatever it is */
    big[QD_TOKEN_MAX - 1] = 'a';
    big[QD_TOKEN_MAX] = '\n';
    fd = open(file_with(big, QD_TOKEN_MAX + 1), O_RDONLY | O_CLOEXEC);
    QD_EXPECT_INT(qd_token_read(fd, buf, sizeof(buf), &reason), -1);
    QD_EXPECT_STR(reason, "longer than 4096 bytes");
    close(fd);
    /* a buffer that could not hold the largest token */
    fd = open(file_with("x", 1), O_RDONLY | O_CLOEXEC);
    QD_EXPECT_INT(qd_token_read(fd, buf, QD_TOKEN_MAX, &reason), -1);
    close(fd);
    /* a directory, a FIFO (not opened blocking), a missing file */
    fd = open(dir, O_RDONLY | O_CLOEXEC);
    QD_EXPECT_INT(qd_token_read(fd, buf, sizeof(buf), &reason), -1);
    QD_EXPECT_STR(reason, "not a regular file");
    close(fd);
    char fifo[256];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    if (mkfifo(fifo, 0600) < 0)
        QD_FAIL("mkfifo %s", fifo);
    QD_EXPECT_INT(qd_token_file_check(fifo, why, sizeof(why)), -1);
    QD_EXPECT_STR(why, "not a regular file");
    unlink(fifo);
    snprintf(fifo, sizeof(fifo), "%s/missing", dir);
    QD_EXPECT_INT(qd_token_file_check(fifo, why, sizeof(why)), -1);
    QD_EXPECT_STR(why, "No such file or directory");
    QD_EXPECT_INT(qd_token_file_check(file_with("ok\n", 3), why, sizeof(why)), 0);
    QD_EXPECT_INT(qd_token_file_check(file_with("\n", 1), why, sizeof(why)), -1);
    QD_EXPECT_STR(why, "empty");
}

static void test_token_bearer(void)
{
    static const struct {
        const char *value;
        bool ok;
    } cases[] = {
        {"Bearer s3cret", true},
        {"bearer s3cret", true},
        {"BEARER \t s3cret \t", true},
        {"Bearer s3cre", false},
        {"Bearer s3cretx", false},
        {"Bearer S3cret", false},
        {"Bearer s3cret x", false},
        {"Bearers3cret", false},
        {"Bearer", false},
        {"Bearer ", false},
        {"Basic czNjcmV0", false},
        {"s3cret", false},
        {"", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (qd_token_bearer_ok(cases[i].value, strlen(cases[i].value), "s3cret", 6) != cases[i].ok)
            QD_FAIL("\"%s\": want %s", cases[i].value, cases[i].ok ? "accepted" : "refused");
    /* a NUL inside the value is a byte like any other, not an end */
    QD_EXPECT_INT(qd_token_bearer_ok("Bearer s3cret\0x", 15, "s3cret", 6), 0);
    /* no token configured: nothing passes */
    QD_EXPECT_INT(qd_token_bearer_ok("Bearer ", 7, "", 0), 0);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 99;
    }
    QD_RUN(test_token_read);
    QD_RUN(test_token_read_bounds);
    QD_RUN(test_token_bearer);
    char path[256];
    snprintf(path, sizeof(path), "%s/token", dir);
    unlink(path);
    rmdir(dir);
    QD_TEST_DONE();
}
