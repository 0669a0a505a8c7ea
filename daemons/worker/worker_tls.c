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
 *	The certificate and key are read at the first configuration, before
 *	the privilege drop; the worker cannot read them later from its chroot.
 * DIAGNOSTICS
 *	Configuration problems return -1 with a one-line reason.
 */
#include "config.h"

/* system */
#include <string.h>

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
    if (wolfSSL_CTX_use_certificate_chain_file(ctx, conf->tls_certificate) != 1) {
        qd_buf_printf(err, "tls_certificate %s: cannot load a PEM certificate chain from it",
                      conf->tls_certificate);
        goto fail;
    }
    if (wolfSSL_CTX_use_PrivateKey_file(ctx, conf->tls_key, WOLFSSL_FILETYPE_PEM) != 1) {
        qd_buf_printf(err, "tls_key %s: cannot load a PEM private key from it", conf->tls_key);
        goto fail;
    }
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
