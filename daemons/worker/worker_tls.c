/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_tls - wolfSSL for QUIC and for TCP: contexts, ALPN, shared tickets
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
 *	With tcp = yes a second context serves TLS over TCP: TLS 1.3 and 1.2
 *	(ECDHE with AES-GCM or ChaCha20-Poly1305), ALPN h2 then http/1.1 (a
 *	client without ALPN gets HTTP/1.1), the same pair and ticket key, so a
 *	ticket from one worker resumes on another; no early data over TCP.
 * DIAGNOSTICS
 *	Configuration problems return -1 with a one-line reason.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <fcntl.h>
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

/* pem_pair - a certificate chain and its key, read once for both contexts */
typedef struct pem_pair {
    unsigned char *cert, *key;
    size_t cert_len, key_len;
} pem_pair;

static void pem_pair_release(pem_pair *pp)
{
    free(pp->cert);
    if (pp->key != NULL) {
        explicit_bzero(pp->key, pp->key_len);
        free(pp->key);
    }
}

/* read_path - read_pem of a file by name */
static unsigned char *read_path(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char *buf;

    if (fd < 0)
        return NULL;
    buf = read_pem(fd, len);
    int saved = errno;
    close(fd);
    errno = saved;
    return buf;
}

/* read_pair - the certificate chain and key, from the master's descriptors or the paths */
static int read_pair(worker *w, const qd_conf *conf, pem_pair *pp, qd_buf *err)
{
    bool fds = w->tls_fds[0] >= 0 && w->tls_fds[1] >= 0;
    int rv = -1;

    pp->cert = fds ? read_pem(w->tls_fds[0], &pp->cert_len)
                   : read_path(conf->tls_certificate, &pp->cert_len);
    if (pp->cert == NULL) {
        qd_buf_printf(err, "tls_certificate %s: %s", conf->tls_certificate, strerror(errno));
        goto out;
    }
    pp->key = fds ? read_pem(w->tls_fds[1], &pp->key_len) : read_path(conf->tls_key, &pp->key_len);
    if (pp->key == NULL) {
        qd_buf_printf(err, "tls_key %s: %s", conf->tls_key, strerror(errno));
        goto out;
    }
    rv = 0;
out:
    for (int i = 0; i < 2; i++) { /* used once: the next CONFIG brings new ones */
        if (w->tls_fds[i] >= 0)
            close(w->tls_fds[i]);
        w->tls_fds[i] = -1;
    }
    return rv;
}

/* use_pair - the pair into |ctx|, checked: the key must be the certificate's */
static int use_pair(WOLFSSL_CTX *ctx, const pem_pair *pp, const qd_conf *conf, qd_buf *err)
{
    if (wolfSSL_CTX_use_certificate_chain_buffer(ctx, pp->cert, (long)pp->cert_len) != 1) {
        qd_buf_printf(err, "tls_certificate %s: cannot load a PEM certificate chain from it",
                      conf->tls_certificate);
        return -1;
    }
    if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, pp->key, (long)pp->key_len, WOLFSSL_FILETYPE_PEM) !=
        1) {
        qd_buf_printf(err, "tls_key %s: cannot load a PEM private key from it", conf->tls_key);
        return -1;
    }
    if (wolfSSL_CTX_check_private_key(ctx) != 1) {
        qd_buf_printf(err, "tls_key %s does not match tls_certificate %s", conf->tls_key,
                      conf->tls_certificate);
        return -1;
    }
    return 0;
}

/* use_tickets - session tickets sealed with the listener's key, as in every worker */
static void use_tickets(worker *w, WOLFSSL_CTX *ctx)
{
    static const unsigned char sid_ctx[] = "quicd";

    wolfSSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    wolfSSL_CTX_set_TicketEncCb(ctx, ticket_cb);
    wolfSSL_CTX_set_TicketEncCtx(ctx, w);
    wolfSSL_CTX_set_TicketHint(ctx, 86400);
}

/* alpn_select_tcp - h2, else http/1.1, else no ALPN at all (HTTP/1.1) */
static int alpn_select_tcp(WOLFSSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg)
{
    static const char *const prefs[] = {"h2", "http/1.1"};

    for (size_t k = 0; k < 2; k++) {
        size_t plen = strlen(prefs[k]);
        for (const unsigned char *p = in, *end = in + inlen; p < end && p + 1 + *p <= end;
             p += 1 + *p) {
            if (*p == plen && memcmp(p + 1, prefs[k], plen) == 0) {
                *out = p + 1;
                *outlen = *p;
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* tcp_context - TLS 1.3 and 1.2 over TCP with the same pair and tickets */
static WOLFSSL_CTX *tcp_context(worker *w, const pem_pair *pp, const qd_conf *conf, qd_buf *err)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());

    if (ctx == NULL) {
        qd_buf_printf(err, "wolfSSL_CTX_new (TCP) failed");
        return NULL;
    }
    if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
        qd_buf_printf(err, "cannot require TLS 1.2 or later");
        goto fail;
    }
    wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
    if (wolfSSL_CTX_set_cipher_list(ctx, "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
                                         "TLS13-CHACHA20-POLY1305-SHA256:"
                                         "ECDHE-ECDSA-AES128-GCM-SHA256:"
                                         "ECDHE-RSA-AES128-GCM-SHA256:"
                                         "ECDHE-ECDSA-AES256-GCM-SHA384:"
                                         "ECDHE-RSA-AES256-GCM-SHA384:"
                                         "ECDHE-ECDSA-CHACHA20-POLY1305:"
                                         "ECDHE-RSA-CHACHA20-POLY1305") != 1) {
        qd_buf_printf(err, "cannot set the TLS cipher suites");
        goto fail;
    }
    if (wolfSSL_CTX_set1_curves_list(ctx, "X25519:P-256:P-384:P-521") != 1) {
        qd_buf_printf(err, "cannot set the key exchange groups");
        goto fail;
    }
    wolfSSL_CTX_set_alpn_select_cb(ctx, alpn_select_tcp, NULL);
    if (use_pair(ctx, pp, conf, err) < 0)
        goto fail;
    use_tickets(w, ctx);
    return ctx;
fail:
    wolfSSL_CTX_free(ctx);
    return NULL;
}

int worker_tls_init(worker *w, const qd_conf *conf, qd_buf *err)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method()), *tcp = NULL;
    pem_pair pp = {0};

    if (ctx == NULL) {
        qd_buf_printf(err, "wolfSSL_CTX_new failed");
        return -1;
    }
    if (read_pair(w, conf, &pp, err) < 0)
        goto fail;
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
    if (use_pair(ctx, &pp, conf, err) < 0)
        goto fail;
    use_tickets(w, ctx);
    if (conf->tcp && (tcp = tcp_context(w, &pp, conf, err)) == NULL)
        goto fail;
    pem_pair_release(&pp);
    if (w->tls != NULL)
        wolfSSL_CTX_free(w->tls);
    w->tls = ctx;
    if (w->tls_tcp != NULL)
        wolfSSL_CTX_free(w->tls_tcp);
    w->tls_tcp = tcp;
    return 0;
fail:
    pem_pair_release(&pp);
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
