// SPDX-License-Identifier: Apache-2.0
/*
 * TLS material for tests, made on the spot with OpenSSL's API: a self-signed P-256 certificate
 * for localhost, 127.0.0.1 and ::1 with its key, written as PEM files in a fresh temporary
 * directory (server contexts load files), and client contexts that trust it. Test code only.
 */
#ifndef GH_TLSKIT_H
#define GH_TLSKIT_H

#include <openssl/ssl.h>
#include <stddef.h>

struct gh_tlskit {
    char dir[64];
    char cert_path[96], key_path[96];
    X509 *cert;
    EVP_PKEY *key;
};

/* Makes the key, the certificate and their files. 0 on success. */
int gh_tlskit_make(struct gh_tlskit *kit);

/* Removes the files and frees everything; harmless on a zeroed kit. */
void gh_tlskit_clear(struct gh_tlskit *kit);

/* A client context trusting only the kit's certificate, TLS 1.2 at least, offering the ALPN
 * protocols of `alpn` in wire format (length-prefixed; NULL: no ALPN). The caller frees it. */
SSL_CTX *gh_tlskit_client_ctx(const struct gh_tlskit *kit, const unsigned char *alpn,
                              size_t alpn_len);

#endif
