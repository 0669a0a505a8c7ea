/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_tls - wolfSSL for QUIC: the context, ALPN h3, shared tickets
 * SYNOPSIS
 *	worker_tls_init(), worker_tls_session()
 * DESCRIPTION
 *	One WOLFSSL_CTX per worker, configured for QUIC by ngtcp2's wolfSSL
 *	helper (TLS 1.3 only, the QUIC method), with the configured
 *	certificate chain and key, ALPN "h3", and early data when early_data
 *	is on. Session tickets are sealed with ChaCha20-Poly1305 under the
 *	ticket key the listener hands every worker, so a ticket issued by one
 *	worker resumes on any other and after a worker restart (wolfSSL's own
 *	ticket key lives in each context, i.e. each process).
 *	The certificate and key are read at every configuration from the
 *	descriptors the master opened and passed just before it
 *	(QD_MSG_TLS_FILES), so a reload picks up renewed files although the
 *	worker is chrooted; without them (the master could not open a file)
 *	from the paths. A new context serves new connections; live ones keep
 *	the one they started with (wolfSSL counts its references).
 * DIAGNOSTICS
 *	Configuration problems return -1 with a one-line reason.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libraries */
#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>

/* libshared */
#include "qd_cid.h"
#include "qd_log.h"

/* local */
#include "worker.h"


/* alpn_select - insist on h3 */
static int alpn_select(WOLFSSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    for (const unsigned char *p = in, *end = in + inlen; p < end && p + 1 + *p <= end; p += 1 + *p) {
        if (*p == 2 && memcmp(p + 1, "h3", 2) == 0) {
            *out = p + 1;
            *outlen = *p;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/*
 * ticket_cb - seal or open a session ticket with the shared key. The key
 * name (first 16 bytes of the key material) identifies the key; the AEAD
 * tag goes in |mac|; the name and IV are authenticated too.
 */
static int ticket_cb(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                     unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
                     int enc, unsigned char *ticket, int in_len, int *out_len, void *ctx)
{
    worker *w = ctx;
    const uint8_t *name = w->ticket_key, *key = w->ticket_key + WOLFSSL_TICKET_NAME_SZ;
    uint8_t aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ];

    if (!w->have_secrets || in_len < 0)
        return WOLFSSL_TICKET_RET_REJECT;
    if (enc) {
        memcpy(key_name, name, WOLFSSL_TICKET_NAME_SZ);
        if (qd_random(iv, WOLFSSL_TICKET_IV_SZ) < 0)
            return WOLFSSL_TICKET_RET_FATAL;
        memcpy(aad, key_name, WOLFSSL_TICKET_NAME_SZ);
        memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
        memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
        if (wc_ChaCha20Poly1305_Encrypt(key, iv, aad, sizeof(aad), ticket, (word32)in_len, ticket,
                                        mac) != 0)
            return WOLFSSL_TICKET_RET_FATAL;
        *out_len = in_len;
        return WOLFSSL_TICKET_RET_OK;
    }
    if (memcmp(key_name, name, WOLFSSL_TICKET_NAME_SZ) != 0)
        return WOLFSSL_TICKET_RET_REJECT; /* another key: a full handshake */
    memcpy(aad, key_name, WOLFSSL_TICKET_NAME_SZ);
    memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
    if (wc_ChaCha20Poly1305_Decrypt(key, iv, aad, sizeof(aad), ticket, (word32)in_len, mac,
                                    ticket) != 0)
        return WOLFSSL_TICKET_RET_REJECT;
    *out_len = in_len;
    return WOLFSSL_TICKET_RET_OK;
}

#define PEM_MAX (1024 * 1024) /* a certificate chain or key file is far smaller */

/* read_pem - the whole file behind |fd| (from offset 0), or NULL with errno */
static unsigned char *read_pem(int fd, size_t *len)
{
    unsigned char *buf = malloc(PEM_MAX);
    size_t n = 0;

    if (buf == NULL)
        return NULL;
    while (n < PEM_MAX) {
        ssize_t r = pread(fd, buf + n, PEM_MAX - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n == PEM_MAX) {
        free(buf);
        errno = EFBIG;
        return NULL;
    }
    *len = n;
    return buf;
}

/* load_pair - the certificate chain and key into |ctx|, from the master's descriptors or the paths */
static int load_pair(worker *w, WOLFSSL_CTX *ctx, const qd_conf *conf, qd_buf *err)
{
    unsigned char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    int rv = -1;

    if (w->tls_fds[0] < 0 || w->tls_fds[1] < 0) {
        if (wolfSSL_CTX_use_certificate_chain_file(ctx, conf->tls_certificate) != 1) {
            qd_buf_printf(err, "tls_certificate %s: cannot load a PEM certificate chain from it",
                          conf->tls_certificate);
            return -1;
        }
        if (wolfSSL_CTX_use_PrivateKey_file(ctx, conf->tls_key, WOLFSSL_FILETYPE_PEM) != 1) {
            qd_buf_printf(err, "tls_key %s: cannot load a PEM private key from it", conf->tls_key);
            return -1;
        }
        return 0;
    }
    if ((cert = read_pem(w->tls_fds[0], &cert_len)) == NULL) {
        qd_buf_printf(err, "tls_certificate %s: %s", conf->tls_certificate, strerror(errno));
        goto out;
    }
    if ((key = read_pem(w->tls_fds[1], &key_len)) == NULL) {
        qd_buf_printf(err, "tls_key %s: %s", conf->tls_key, strerror(errno));
        goto out;
    }
    if (wolfSSL_CTX_use_certificate_chain_buffer(ctx, cert, (long)cert_len) != 1) {
        qd_buf_printf(err, "tls_certificate %s: cannot load a PEM certificate chain from it",
                      conf->tls_certificate);
        goto out;
    }
    if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, key, (long)key_len, WOLFSSL_FILETYPE_PEM) != 1) {
        qd_buf_printf(err, "tls_key %s: cannot load a PEM private key from it", conf->tls_key);
        goto out;
    }
    rv = 0;
out:
    free(cert);
    if (key != NULL) {
        memset(key, 0, key_len);
        free(key);
    }
    for (int i = 0; i < 2; i++) { /* used once: the next CONFIG brings new ones */
        close(w->tls_fds[i]);
        w->tls_fds[i] = -1;
    }
    return rv;
}

int worker_tls_init(worker *w, const qd_conf *conf, qd_buf *err)
{
    static const unsigned char sid_ctx[] = "quicd";
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());

    if (ctx == NULL) {
        qd_buf_printf(err, "wolfSSL_CTX_new failed");
        return -1;
    }
    if (ngtcp2_crypto_wolfssl_configure_server_context(ctx) != 0) {
        qd_buf_printf(err, "ngtcp2_crypto_wolfssl_configure_server_context failed");
        goto fail;
    }
    if (conf->early_data)
        wolfSSL_CTX_set_max_early_data(ctx, UINT32_MAX);
    wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
    if (wolfSSL_CTX_set_cipher_list(ctx, "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
                                         "TLS13-CHACHA20-POLY1305-SHA256") != 1) {
        qd_buf_printf(err, "cannot set the TLS 1.3 cipher suites");
        goto fail;
    }
    if (wolfSSL_CTX_set1_curves_list(ctx, "X25519:P-256:P-384:P-521") != 1) {
        qd_buf_printf(err, "cannot set the key exchange groups");
        goto fail;
    }
    wolfSSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (load_pair(w, ctx, conf, err) < 0)
        goto fail;
    if (wolfSSL_CTX_check_private_key(ctx) != 1) {
        qd_buf_printf(err, "tls_key %s does not match tls_certificate %s", conf->tls_key,
                      conf->tls_certificate);
        goto fail;
    }
    wolfSSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    wolfSSL_CTX_set_TicketEncCb(ctx, ticket_cb);
    wolfSSL_CTX_set_TicketEncCtx(ctx, w);
    wolfSSL_CTX_set_TicketHint(ctx, 86400);
    if (w->tls != NULL)
        wolfSSL_CTX_free(w->tls);
    w->tls = ctx;
    return 0;
fail:
    wolfSSL_CTX_free(ctx);
    return -1;
}

WOLFSSL *worker_tls_session(worker *w, wk_conn *c)
{
    WOLFSSL *ssl = wolfSSL_new(w->tls);

    if (ssl == NULL)
        return NULL;
    wolfSSL_set_app_data(ssl, &c->ref);
    wolfSSL_set_accept_state(ssl);
    /*
     * wolfSSL consults the ALPN select callback only when built with
     * OPENSSL_ALL; otherwise it matches against this list. Either way a
     * client without h3 fails the handshake (no_application_protocol).
     */
    if (wolfSSL_UseALPN(ssl, (char *)"h3", 2, WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS) {
        wolfSSL_free(ssl);
        return NULL;
    }
    wolfSSL_set_quic_early_data_enabled(ssl, w->child.conf.early_data ? 1 : 0);
    wolfSSL_set_quic_transport_version(ssl, 0x39);
    return ssl;
}
