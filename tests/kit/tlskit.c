// SPDX-License-Identifier: Apache-2.0
/*
 * The TLS test material of tlskit.h: made fresh per test run, so that no key or certificate is
 * committed and none expires under the tests.
 */
#include "tlskit.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tlskit_write(const char *path, const struct gh_tlskit *kit, int key)
{
    FILE *f = fopen(path, "w");
    int ok;

    if (f == NULL)
        return 0;
    ok = key ? PEM_write_PrivateKey(f, kit->key, NULL, NULL, 0, NULL, NULL)
             : PEM_write_X509(f, kit->cert);
    return (fclose(f) == 0) & (ok == 1);
}

static int tlskit_cert(struct gh_tlskit *kit)
{
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX v3;
    X509_EXTENSION *san;
    int ok = 0;

    if (x == NULL)
        return 0;
    kit->cert = x;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 7 * 24 * 3600);
    X509_set_pubkey(x, kit->key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    if (san != NULL) {
        ok = X509_add_ext(x, san, -1) == 1;
        X509_EXTENSION_free(san);
    }
    return ok && X509_sign(x, kit->key, EVP_sha256()) > 0;
}

int gh_tlskit_make(struct gh_tlskit *kit)
{
    memset(kit, 0, sizeof *kit);
    strcpy(kit->dir, "/tmp/gh-tlskit-XXXXXX");
    if (mkdtemp(kit->dir) == NULL) {
        kit->dir[0] = '\0';
        return -1;
    }
    snprintf(kit->cert_path, sizeof kit->cert_path, "%s/cert.pem", kit->dir);
    snprintf(kit->key_path, sizeof kit->key_path, "%s/key.pem", kit->dir);
    if ((kit->key = EVP_EC_gen("P-256")) == NULL || !tlskit_cert(kit) ||
        !tlskit_write(kit->cert_path, kit, 0) || !tlskit_write(kit->key_path, kit, 1)) {
        gh_tlskit_clear(kit);
        return -1;
    }
    return 0;
}

void gh_tlskit_clear(struct gh_tlskit *kit)
{
    if (kit->dir[0] != '\0') {
        unlink(kit->cert_path);
        unlink(kit->key_path);
        rmdir(kit->dir);
    }
    X509_free(kit->cert);
    EVP_PKEY_free(kit->key);
    memset(kit, 0, sizeof *kit);
}

SSL_CTX *gh_tlskit_client_ctx(const struct gh_tlskit *kit, const unsigned char *alpn,
                              size_t alpn_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), kit->cert) != 1 ||
        (alpn != NULL && SSL_CTX_set_alpn_protos(ctx, alpn, (unsigned)alpn_len) != 0)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}
