/* SPDX-License-Identifier: MIT */
/*
 * test_wolfssl - what quicd needs of the wolfSSL it is built with, beyond
 * what configure checks.
 *
 * 1. It takes CRYPTO data in pieces of any size.
 *
 * ngtcp2 hands the worker's wolfSSL each CRYPTO frame's data as it
 * arrives, and Chromium splits its ClientHello into frames of random
 * sizes. wolfSSL 5.7.2 refused a piece that ended exactly at the end of a
 * handshake message's 4-byte header when an earlier piece had started that
 * header (wolfSSL issue #8156): the connection failed with CRYPTO_ERROR
 * 0x100, about one Chromium connection in 30. contrib/install-deps patches
 * it (contrib/patches/wolfssl-quic-split-header.patch). This test makes a
 * real ClientHello with a wolfSSL QUIC client, feeds it to a wolfSSL QUIC
 * server split in every way that starts with pieces inside the header, and
 * checks that each piece is taken and the server answers with a
 * ServerHello, as it does for the whole ClientHello in one piece.
 *
 * 2. wolfSSL_CTX_check_private_key() refuses an ECC key that does not
 * belong to the certificate (the worker's check of tls_key at start and
 * on reload). Without WOLFSSL_VALIDATE_ECC_IMPORT, which install-deps
 * sets, wolfSSL 5.7.2 accepts any P-256 key, and every handshake then
 * fails.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/quic.h>

#include "qd_test.h"

/* A test-only self-signed certificate for localhost (EC P-256). */
static const char TEST_CERT[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBlDCCATugAwIBAgIUeziFMYGGYoF/rLPFT6ElfKQUzN0wCgYIKoZIzj0EAwIw\n"
    "FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyODE4MDQxM1oYDzIxMjYxMTA0\n"
    "MTgwNDEzWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\n"
    "PQMBBwNCAATdEOTNP1DLaekvn2tKO62VXTrMOs4vlTgUslx7r5tmlJDE4+lr6TFz\n"
    "aYp6ZfH6HmRcT6m4siqRnFlJQd5Fl07fo2kwZzAdBgNVHQ4EFgQUw50DBw5NjUwx\n"
    "8fQ1Ttnyxf57HXMwHwYDVR0jBBgwFoAUw50DBw5NjUwx8fQ1Ttnyxf57HXMwDwYD\n"
    "VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID\n"
    "RwAwRAIgBOAeiyEsmOBwD6Pn5HBUz/VBFgo4e9w9MpudQw6sieMCIByvdGyztmri\n"
    "tHn7ak/Vgv8aQGfBFtJ6gtqUhtTg2Kvu\n"
    "-----END CERTIFICATE-----\n";
static const char TEST_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXToEwX8efVuOBdux\n"
    "mswZfMiqH91YQcSBXEqKkQewhoyhRANCAATdEOTNP1DLaekvn2tKO62VXTrMOs4v\n"
    "lTgUslx7r5tmlJDE4+lr6TFzaYp6ZfH6HmRcT6m4siqRnFlJQd5Fl07f\n"
    "-----END PRIVATE KEY-----\n";

/* A P-256 key that does not belong to TEST_CERT. */
static const char OTHER_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjmd+mORmDcm+yR7R\n"
    "xxGJtJl7PZ8cNggRHvh1vxFdK3KhRANCAATEIiyGNHBXF4bOqnfRTBMfirDXUN5z\n"
    "th5eVa4oG4uPEjvzBOwRWabtpay12IZbdU1Bgx3m/BYZtxuAWxZuBtP1\n"
    "-----END PRIVATE KEY-----\n";

#define MAX_FLIGHT 8192

/* What one side's wolfSSL asked us to send, per encryption level. */
typedef struct side {
    uint8_t out[4][MAX_FLIGHT];
    size_t out_len[4];
    int alert; /* -1: none */
} side;

static int set_secrets(WOLFSSL *ssl, WOLFSSL_ENCRYPTION_LEVEL level, const uint8_t *rd,
                       const uint8_t *wr, size_t len)
{
    (void)ssl, (void)level, (void)rd, (void)wr, (void)len;
    return 1;
}

static int add_data(WOLFSSL *ssl, WOLFSSL_ENCRYPTION_LEVEL level, const uint8_t *data, size_t len)
{
    side *s = wolfSSL_get_app_data(ssl);

    if (s->out_len[level] + len > MAX_FLIGHT)
        return 0;
    memcpy(s->out[level] + s->out_len[level], data, len);
    s->out_len[level] += len;
    return 1;
}

static int flush_flight(WOLFSSL *ssl)
{
    (void)ssl;
    return 1;
}

static int send_alert(WOLFSSL *ssl, WOLFSSL_ENCRYPTION_LEVEL level, uint8_t alert)
{
    side *s = wolfSSL_get_app_data(ssl);

    (void)level;
    s->alert = alert;
    return 1;
}

static const WOLFSSL_QUIC_METHOD method = {set_secrets, add_data, flush_flight, send_alert};

/* A QUIC transport parameter: max_idle_timeout = 30000 (wolfSSL needs some). */
static const uint8_t tp[] = {0x01, 0x04, 0x80, 0x00, 0x75, 0x30};

static WOLFSSL_CTX *client_ctx, *server_ctx;
static uint8_t client_hello[MAX_FLIGHT];
static size_t client_hello_len;

/* make_client_hello - a wolfSSL QUIC client's first flight (Initial level) */
static void make_client_hello(void)
{
    static side c;
    WOLFSSL *ssl = wolfSSL_new(client_ctx);

    memset(&c, 0, sizeof(c));
    c.alert = -1;
    wolfSSL_set_app_data(ssl, &c);
    wolfSSL_set_connect_state(ssl);
    wolfSSL_set_quic_transport_params(ssl, tp, sizeof(tp));
    wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, "localhost", 9);
    wolfSSL_UseALPN(ssl, (char *)"h3", 2, WOLFSSL_ALPN_FAILED_ON_MISMATCH);
    QD_EXPECT_INT(wolfSSL_quic_do_handshake(ssl) <= 0, 1);
    QD_EXPECT_INT(c.out_len[wolfssl_encryption_initial] > 4, 1);
    memcpy(client_hello, c.out[wolfssl_encryption_initial], c.out_len[wolfssl_encryption_initial]);
    client_hello_len = c.out_len[wolfssl_encryption_initial];
    wolfSSL_free(ssl);
}

/*
 * serve - feed the ClientHello to a new server in pieces of the sizes in
 * |cuts| (0-terminated; the rest in one last piece). Returns how many
 * pieces wolfSSL refused; *server_hello is set when the server answered
 * with a ServerHello and no alert.
 */
static int serve(const size_t *cuts, int *server_hello)
{
    static side s;
    WOLFSSL *ssl = wolfSSL_new(server_ctx);
    size_t off = 0;
    int refused = 0;

    memset(&s, 0, sizeof(s));
    s.alert = -1;
    wolfSSL_set_app_data(ssl, &s);
    wolfSSL_set_accept_state(ssl);
    wolfSSL_set_quic_transport_params(ssl, tp, sizeof(tp));
    for (int i = 0; off < client_hello_len; i++) {
        size_t n = cuts[i] ? cuts[i] : client_hello_len - off;
        if (n > client_hello_len - off)
            n = client_hello_len - off;
        if (wolfSSL_provide_quic_data(ssl, wolfssl_encryption_initial, client_hello + off, n) != 1)
            refused++;
        off += n;
        if (cuts[i] == 0)
            break;
    }
    int rv = wolfSSL_quic_do_handshake(ssl);
    int err = wolfSSL_get_error(ssl, rv);
    *server_hello = (err == WOLFSSL_ERROR_WANT_READ || rv == 1) && s.alert < 0 &&
                    s.out_len[wolfssl_encryption_initial] > 0 &&
                    s.out[wolfssl_encryption_initial][0] == 0x02 /* server_hello */;
    wolfSSL_free(ssl);
    return refused;
}

static void test_whole(void)
{
    static const size_t cuts[] = {0};
    int hello = 0;

    QD_EXPECT_INT(serve(cuts, &hello), 0);
    QD_EXPECT_INT(hello, 1);
}

/* The failure seen with Chromium: pieces of 1, 2 and 1 bytes, then the rest. */
static void test_split_1_2_1(void)
{
    static const size_t cuts[] = {1, 2, 1, 0};
    int hello = 0;

    QD_EXPECT_INT(serve(cuts, &hello), 0);
    QD_EXPECT_INT(hello, 1);
}

/* Every way to cut the header into pieces, each followed by the rest. */
static void test_every_header_split(void)
{
    static const size_t splits[][5] = {
        {1, 3, 0}, {2, 2, 0}, {3, 1, 0}, {1, 1, 2, 0}, {1, 2, 1, 0}, {2, 1, 1, 0},
        {1, 1, 1, 1, 0}, {4, 0}, {1, 4, 0}, {3, 2, 0}, {5, 0},
    };

    for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
        int hello = 0;
        int refused = serve(splits[i], &hello);
        if (refused != 0 || !hello)
            QD_FAIL("split %zu (%zu,%zu,%zu,%zu): %d pieces refused, server hello %d", i,
                    splits[i][0], splits[i][1], splits[i][2], splits[i][3], refused, hello);
    }
}

/* One byte at a time, the whole ClientHello. */
static void test_byte_by_byte(void)
{
    static size_t cuts[MAX_FLIGHT + 1];
    int hello = 0;

    for (size_t i = 0; i < client_hello_len; i++)
        cuts[i] = 1;
    cuts[client_hello_len] = 0;
    QD_EXPECT_INT(serve(cuts, &hello), 0);
    QD_EXPECT_INT(hello, 1);
}

/* check_pair - wolfSSL_CTX_check_private_key for TEST_CERT and |key| */
static int check_pair(const char *key)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
    int rv = -1;

    if (ctx != NULL &&
        wolfSSL_CTX_use_certificate_buffer(ctx, (const unsigned char *)TEST_CERT,
                                           sizeof(TEST_CERT) - 1, WOLFSSL_FILETYPE_PEM) == 1 &&
        wolfSSL_CTX_use_PrivateKey_buffer(ctx, (const unsigned char *)key, (long)strlen(key),
                                          WOLFSSL_FILETYPE_PEM) == 1)
        rv = wolfSSL_CTX_check_private_key(ctx);
    wolfSSL_CTX_free(ctx);
    return rv;
}

static void test_key_matches(void)
{
    QD_EXPECT_INT(check_pair(TEST_KEY), 1);
}

static void test_key_mismatch_refused(void)
{
    QD_EXPECT_INT(check_pair(OTHER_KEY) == 1, 0);
}

int main(void)
{
    wolfSSL_Init();
    client_ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    server_ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
    if (client_ctx == NULL || server_ctx == NULL ||
        wolfSSL_CTX_set_quic_method(client_ctx, &method) != 1 ||
        wolfSSL_CTX_set_quic_method(server_ctx, &method) != 1 ||
        wolfSSL_CTX_use_certificate_buffer(server_ctx, (const unsigned char *)TEST_CERT,
                                           sizeof(TEST_CERT) - 1, WOLFSSL_FILETYPE_PEM) != 1 ||
        wolfSSL_CTX_use_PrivateKey_buffer(server_ctx, (const unsigned char *)TEST_KEY,
                                          sizeof(TEST_KEY) - 1, WOLFSSL_FILETYPE_PEM) != 1) {
        printf("FAIL: cannot set up wolfSSL QUIC contexts\n");
        return 1;
    }
    wolfSSL_CTX_set_verify(client_ctx, WOLFSSL_VERIFY_NONE, NULL);
    make_client_hello();
    printf("ClientHello: %zu bytes\n", client_hello_len);
    QD_RUN(test_whole);
    QD_RUN(test_split_1_2_1);
    QD_RUN(test_every_header_split);
    QD_RUN(test_byte_by_byte);
    QD_RUN(test_key_matches);
    QD_RUN(test_key_mismatch_refused);
    wolfSSL_CTX_free(client_ctx);
    wolfSSL_CTX_free(server_ctx);
    wolfSSL_Cleanup();
    QD_TEST_DONE();
}
