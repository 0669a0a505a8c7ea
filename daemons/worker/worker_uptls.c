/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker_uptls - TLS to https:// upstream servers
 * SYNOPSIS
 *	worker_uptls_configure(), worker_uptls_start(),
 *	worker_uptls_handshake(), worker_uptls_send(), worker_uptls_recv(),
 *	worker_uptls_free()
 * DESCRIPTION
 *	A server written https://host:port in the proxy table gets TLS (1.2
 *	or 1.3, wolfSSL) on the connection the upstream daemon hands over.
 *	Its certificate is verified against proxy_ca_file (the master passes
 *	the file open: the worker is chrooted) for the server's name: sni=
 *	when the table gives one, else the host; that name also goes out as
 *	SNI unless it is an address. verify=no turns the check off for the
 *	server (a test setup, a self-signed internal service).
 *
 *	The handshake runs on the non-blocking socket before the request is
 *	written; a failure is one more connection that could not be made (the
 *	next server is tried), with the cause in the log and the 502.
 * DIAGNOSTICS
 *	A CA file that cannot be read or loaded while the table has https://
 *	servers fails the configuration, naming the file.
 */
#include "config.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_log.h"

/* local */
#include "worker.h"

/* wants_tls - has the table an https:// server? */
static bool wants_tls(const worker *w)
{
    for (size_t i = 0; i < w->routes.ngroups; i++)
        for (size_t j = 0; j < w->routes.groups[i].nservers; j++)
            if (w->routes.groups[i].servers[j].tls)
                return true;
    return false;
}

int worker_uptls_configure(worker *w, const char *ca_name, qd_buf *err)
{
    int fd = w->proxy_ca_fd;
    int rv = 0;

    w->proxy_ca_fd = -1;
    if (!wants_tls(w)) {
        if (fd >= 0)
            close(fd);
        return 0; /* a context made before stays for connections still open */
    }
    qd_buf ca;
    qd_buf_init(&ca);
    if (fd < 0 || worker_read_fd(fd, &ca) < 0 || ca.len == 0) {
        qd_buf_printf(err, "proxy_ca_file %s: cannot be read (the table has https:// servers)",
                      ca_name);
        rv = -1;
    } else {
        WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
        if (ctx == NULL || wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_load_verify_buffer(ctx, (const unsigned char *)ca.data, (long)ca.len,
                                           WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
            qd_buf_printf(err, "proxy_ca_file %s: no certificate could be loaded", ca_name);
            if (ctx != NULL)
                wolfSSL_CTX_free(ctx);
            rv = -1;
        } else {
            /* connections made with the old context keep a reference to it */
            if (w->up_tls != NULL)
                wolfSSL_CTX_free(w->up_tls);
            w->up_tls = ctx;
        }
    }
    if (fd >= 0)
        close(fd);
    qd_buf_release(&ca);
    return rv;
}

/* is_address - is |name| an IPv4 or IPv6 address (no SNI for those) */
static bool is_address(const char *name)
{
    uint8_t a[16];

    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

int worker_uptls_start(worker *w, wk_upconn *uc)
{
    const qd_proxy_server *sv = &uc->sv->conf;
    const char *name = sv->sni[0] ? sv->sni : sv->host;

    if (w->up_tls == NULL || (uc->ssl = wolfSSL_new(w->up_tls)) == NULL)
        return -1;
    if (wolfSSL_set_fd(uc->ssl, uc->fd) != WOLFSSL_SUCCESS)
        return -1;
    if (!is_address(name) &&
        wolfSSL_UseSNI(uc->ssl, WOLFSSL_SNI_HOST_NAME, name, (unsigned short)strlen(name)) !=
            WOLFSSL_SUCCESS)
        return -1;
    if (sv->no_verify) {
        wolfSSL_set_verify(uc->ssl, WOLFSSL_VERIFY_NONE, NULL);
    } else {
        wolfSSL_set_verify(uc->ssl, WOLFSSL_VERIFY_PEER, NULL);
        if (wolfSSL_check_domain_name(uc->ssl, name) != WOLFSSL_SUCCESS)
            return -1;
    }
    return 0;
}

int worker_uptls_handshake(wk_upconn *uc, int *events, char *why, size_t cap)
{
    int rc = wolfSSL_connect(uc->ssl);

    if (rc == WOLFSSL_SUCCESS)
        return 1;
    int e = wolfSSL_get_error(uc->ssl, rc);
    if (e == WOLFSSL_ERROR_WANT_READ) {
        *events = UV_READABLE;
        return 0;
    }
    if (e == WOLFSSL_ERROR_WANT_WRITE) {
        *events = UV_WRITABLE;
        return 0;
    }
    char text[WOLFSSL_MAX_ERROR_SZ];
    long v = wolfSSL_get_verify_result(uc->ssl);
    if (v != 0)
        snprintf(why, cap, "TLS: certificate not verified (%s)",
                 wolfSSL_X509_verify_cert_error_string(v));
    else
        snprintf(why, cap, "TLS: %s", wolfSSL_ERR_error_string((unsigned long)e, text));
    return -1;
}

ssize_t worker_uptls_send(wk_upconn *uc, const void *data, size_t len)
{
    /* a write wolfSSL could not finish must be repeated with the same bytes */
    if (uc->tls_write_len > 0 && len > uc->tls_write_len)
        len = uc->tls_write_len;
    int n = wolfSSL_write(uc->ssl, data, (int)(len > 16384 ? 16384 : len));
    if (n > 0) {
        uc->tls_write_len = 0;
        return n;
    }
    int e = wolfSSL_get_error(uc->ssl, n);
    if (e == WOLFSSL_ERROR_WANT_WRITE || e == WOLFSSL_ERROR_WANT_READ) {
        uc->tls_write_len = len > 16384 ? 16384 : len;
        errno = EAGAIN;
        return -1;
    }
    errno = EPIPE;
    return -1;
}

ssize_t worker_uptls_recv(wk_upconn *uc, void *buf, size_t cap)
{
    int n = wolfSSL_read(uc->ssl, buf, (int)cap);

    if (n > 0)
        return n;
    int e = wolfSSL_get_error(uc->ssl, n);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == WOLFSSL_ERROR_ZERO_RETURN || n == 0)
        return 0; /* close_notify, or the end of the connection */
    errno = ECONNRESET;
    return -1;
}

void worker_uptls_free(wk_upconn *uc)
{
    if (uc->ssl != NULL)
        wolfSSL_free(uc->ssl);
    uc->ssl = NULL;
}
