// SPDX-License-Identifier: Apache-2.0
/*
 * sock.c's TLS plumbing, apart so that sock.c stays about bytes: a socket BIO of our own and the
 * SSL objects made on it, and the server context's ALPN choice (gh_tls_server_new, sock.h).
 * Internal to src/http/.
 */
#ifndef GH_HTTP_TLS_H
#define GH_HTTP_TLS_H

#include <openssl/ssl.h>

/* A new SSL of `ctx` on `fd`: a server one when `host` is NULL, else a client one sending SNI
 * `host` (not for IP literals, IPv6 ones also in brackets) and checking the certificate against it
 * (name or address) with peer verification on. Partial writes, moving write buffers and released
 * idle buffers are on; a peer closing without close_notify reads as end-of-file. NULL when out of
 * memory. */
SSL *gh_tls_ssl_new(SSL_CTX *ctx, int fd, const char *host);

/* Why a handshake or transfer failed, as malloc'd text from OpenSSL's own strings, never the
 * peer's bytes: "certificate verify failed: <verification result>" for a client whose check of
 * the peer failed (*verify_failed set to 1), else "TLS failed: <reason>". NULL when out of
 * memory. Clears the thread's OpenSSL error queue. */
char *gh_tls_error_text(SSL *ssl, int *verify_failed);

/* The protocol ALPN agreed on: "h2", "http/1.1", or "" (none, or another). */
const char *gh_tls_alpn(const SSL *ssl);

#endif
