// SPDX-License-Identifier: Apache-2.0
/*
 * TLS for sock.c (see tls.h). Why a BIO of our own: OpenSSL's socket BIO writes with write(2),
 * which raises SIGPIPE when the peer has gone; worker threads block signals, but a library must
 * not depend on every caller (tests, tools) doing so, and Linux has no SO_NOSIGPIPE. Our BIO is
 * the socket BIO's few lines with send(MSG_NOSIGNAL) and recv, on the descriptor itself: no
 * memory BIO, no extra copy. The server context (gh_tls_server_new, declared in sock.h) chooses
 * ALPN by our preference, not the client's order.
 */
#include "http/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/error.h"
#include "http/sock.h"

static BIO_METHOD *tls_bio_method;
static pthread_once_t tls_bio_once = PTHREAD_ONCE_INIT;

static int tls_bio_write(BIO *b, const char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    while ((n = send(fd, buf, (size_t)len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)n;
}

static int tls_bio_read(BIO *b, char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    while ((n = recv(fd, buf, (size_t)len, 0)) < 0 && errno == EINTR)
        ;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    return (int)n;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    int fd = (int)(intptr_t)BIO_get_data(b);

    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* nothing is buffered here */
    case BIO_C_GET_FD:
        if (ptr != NULL)
            *(int *)ptr = fd;
        return fd;
    default:
        return 0;
    }
}

static int tls_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int tls_bio_destroy(BIO *b)
{
    return 1; /* the descriptor is the sock's */
}

static void tls_bio_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "gatehouse socket");

    if (m == NULL)
        return;
    BIO_meth_set_write(m, tls_bio_write);
    BIO_meth_set_read(m, tls_bio_read);
    BIO_meth_set_ctrl(m, tls_bio_ctrl);
    BIO_meth_set_create(m, tls_bio_create);
    BIO_meth_set_destroy(m, tls_bio_destroy);
    tls_bio_method = m; /* lives as long as the process */
}

static int tls_client_setup(SSL *ssl, const char *host)
{
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    unsigned char addr[16];
    char literal[INET6_ADDRSTRLEN + 2];
    size_t len = strlen(host);

    if (len > 2 && len < sizeof literal && host[0] == '[' && host[len - 1] == ']') {
        memcpy(literal, host + 1, len - 2); /* an IPv6 literal as URLs write it */
        literal[len - 2] = '\0';
        host = literal;
    }
    SSL_set_connect_state(ssl);
    /* the context's trust decides the chain; the peer is always checked (no opt-out here) */
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1; /* RFC 6066: no SNI for these */
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return SSL_set_tlsext_host_name(ssl, host) == 1 &&
           X509_VERIFY_PARAM_set1_host(param, host, 0) == 1;
}

SSL *gh_tls_ssl_new(SSL_CTX *ctx, int fd, const char *host)
{
    SSL *ssl = NULL;
    BIO *bio;

    pthread_once(&tls_bio_once, tls_bio_make);
    if (tls_bio_method == NULL || (ssl = SSL_new(ctx)) == NULL)
        goto fail;
    if ((bio = BIO_new(tls_bio_method)) == NULL)
        goto fail;
    BIO_set_data(bio, (void *)(intptr_t)fd);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    /* HTTP frames its own messages; peers commonly close without close_notify */
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (host == NULL)
        SSL_set_accept_state(ssl);
    else if (!tls_client_setup(ssl, host))
        goto fail;
    return ssl;
fail:
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
}

char *gh_tls_error_text(SSL *ssl, int *verify_failed)
{
    long verify = SSL_get_verify_result(ssl);
    const char *reason = ERR_reason_error_string(ERR_peek_last_error());
    char *text = malloc(160);

    if (text != NULL && !SSL_is_server(ssl) && verify != X509_V_OK) {
        *verify_failed = 1;
        snprintf(text, 160, "certificate verify failed: %s", X509_verify_cert_error_string(verify));
    } else if (text != NULL) {
        snprintf(text, 160, "TLS failed: %s", reason != NULL ? reason : "unknown reason");
    }
    ERR_clear_error();
    return text;
}

const char *gh_tls_alpn(const SSL *ssl)
{
    const unsigned char *p = NULL;
    unsigned len = 0;

    SSL_get0_alpn_selected(ssl, &p, &len);
    if (len == 2 && memcmp(p, "h2", 2) == 0)
        return "h2";
    if (len == 8 && memcmp(p, "http/1.1", 8) == 0)
        return "http/1.1";
    return "";
}

/* ---- server contexts ---- */

static const int tls_with_h2 = 1, tls_without_h2 = 0;

/* Our preference, whatever the client's order: h2 when enabled, else http/1.1. A client that
 * offers ALPN but neither of them gets the fatal no_application_protocol alert (RFC 7301 §3.2)
 * rather than a connection without ALPN: it asked for a protocol we do not speak (h2 alone when
 * h2 is off, h3, a WebSocket-only or gRPC-only client) and would misread our HTTP/1.1 answer; an
 * alert names the problem at the handshake. Clients that send no ALPN get HTTP/1.1. */
static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg)
{
    int h2 = *(const int *)arg;
    const unsigned char *h1 = NULL;

    for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
        unsigned len = in[i];
        const unsigned char *p = in + i + 1;
        if (i + 1 + len > inlen)
            break;
        if (h2 && len == 2 && memcmp(p, "h2", 2) == 0) {
            *out = p;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        if (len == 8 && memcmp(p, "http/1.1", 8) == 0)
            h1 = p;
    }
    if (h1 == NULL)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = h1;
    *outlen = 8;
    return SSL_TLSEXT_ERR_OK;
}

static const char *tls_reason(void)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());
    return r != NULL ? r : "unknown reason";
}

int gh_tls_server_new(const char *cert, const char *key, int http2, SSL_CTX **out, char *error,
                      size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int rc = GH_ERR_IO;

    *out = NULL;
    if (ctx == NULL) {
        gh_error_format(error, cap, "cannot make a TLS context: %s", tls_reason());
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle connections hold no TLS buffers */
    /* TLS 1.2: forward secret AEAD only, which is also what HTTP/2 requires (RFC 9113 §9.2.2) */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        gh_error_format(error, cap, "cannot load the TLS certificate chain %s: %s", cert,
                        tls_reason());
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        gh_error_format(error, cap, "cannot load the TLS private key %s: %s", key, tls_reason());
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        gh_error_format(error, cap, "the TLS private key %s does not match the certificate %s", key,
                        cert);
        goto out;
    }
    SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select,
                               (void *)(http2 ? &tls_with_h2 : &tls_without_h2));
    *out = ctx;
    ctx = NULL;
    rc = GH_OK;
out:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}
