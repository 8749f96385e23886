// SPDX-License-Identifier: Apache-2.0
/*
 * The test kit's implementation: OpenSSL key generation and signing, the mirror image of what
 * src/jose verifies, written independently of it (it uses only base64url from src/common).
 */
#include "testkit.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64url.h"

#ifndef GH_TEST_VECTORS_DIR
#define GH_TEST_VECTORS_DIR "tests/vectors"
#endif

int gh_testkey_generate(enum gh_alg alg, const char *kid, int rsa_bits, struct gh_testkey *key)
{
    const struct gh_alg_info *info = gh_alg_info(alg);
    memset(key, 0, sizeof *key);
    if (info == NULL)
        return -1;
    key->alg = alg;
    snprintf(key->kid, sizeof key->kid, "%s", kid ? kid : "");
    switch (info->kty) {
    case GH_KTY_RSA:
        key->priv = EVP_RSA_gen((unsigned)(rsa_bits ? rsa_bits : 2048));
        break;
    case GH_KTY_EC:
        key->priv = EVP_EC_gen(info->crv == GH_CRV_P256   ? "P-256"
                               : info->crv == GH_CRV_P384 ? "P-384"
                                                          : "P-521");
        break;
    case GH_KTY_OKP:
        key->priv = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    case GH_KTY_OCT:
        key->secret_len = info->hash_len;
        return RAND_bytes(key->secret, (int)key->secret_len) == 1 ? 0 : -1;
    default:
        return -1;
    }
    return key->priv != NULL ? 0 : -1;
}

void gh_testkey_clear(struct gh_testkey *key)
{
    EVP_PKEY_free(key->priv);
    memset(key, 0, sizeof *key);
}

static char *b64_bn(EVP_PKEY *pkey, const char *param, size_t pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    char *out = NULL;
    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
        return NULL;
    size_t len = pad ? pad : (size_t)BN_num_bytes(bn);
    if (len <= sizeof buf && BN_bn2binpad(bn, buf, (int)len) == (int)len)
        out = gh_b64url_encode_alloc(buf, len);
    BN_free(bn);
    return out;
}

char *gh_testkey_public_jwk(const struct gh_testkey *key)
{
    const struct gh_alg_info *info = gh_alg_info(key->alg);
    char *a = NULL, *b = NULL, *out = malloc(8192);
    unsigned char raw[32];
    size_t raw_len = sizeof raw;

    if (out == NULL)
        return NULL;
    switch (info->kty) {
    case GH_KTY_RSA:
        a = b64_bn(key->priv, OSSL_PKEY_PARAM_RSA_N, 0);
        b = b64_bn(key->priv, OSSL_PKEY_PARAM_RSA_E, 0);
        snprintf(out, 8192,
                 "{\"kty\":\"RSA\",\"kid\":\"%s\",\"alg\":\"%s\",\"use\":\"sig\",\"n\":\"%s\","
                 "\"e\":\"%s\"}",
                 key->kid, info->name, a, b);
        break;
    case GH_KTY_EC:
        a = b64_bn(key->priv, OSSL_PKEY_PARAM_EC_PUB_X, gh_crv_coord_len(info->crv));
        b = b64_bn(key->priv, OSSL_PKEY_PARAM_EC_PUB_Y, gh_crv_coord_len(info->crv));
        snprintf(out, 8192,
                 "{\"kty\":\"EC\",\"kid\":\"%s\",\"alg\":\"%s\",\"use\":\"sig\",\"crv\":\"%s\","
                 "\"x\":\"%s\",\"y\":\"%s\"}",
                 key->kid, info->name, gh_crv_name(info->crv), a, b);
        break;
    case GH_KTY_OKP:
        EVP_PKEY_get_raw_public_key(key->priv, raw, &raw_len);
        a = gh_b64url_encode_alloc(raw, raw_len);
        snprintf(out, 8192,
                 "{\"kty\":\"OKP\",\"kid\":\"%s\",\"alg\":\"EdDSA\",\"use\":\"sig\",\"crv\":"
                 "\"Ed25519\",\"x\":\"%s\"}",
                 key->kid, a);
        break;
    case GH_KTY_OCT:
        a = gh_b64url_encode_alloc(key->secret, key->secret_len);
        snprintf(out, 8192,
                 "{\"kty\":\"oct\",\"kid\":\"%s\",\"alg\":\"%s\",\"use\":\"sig\",\"k\":\"%s\"}",
                 key->kid, info->name, a);
        break;
    default:
        break;
    }
    free(a);
    free(b);
    return out;
}

struct gh_jwks *gh_testkey_jwks(const struct gh_testkey *keys, size_t n, unsigned flags)
{
    size_t cap = 16 + n * 8192, used = 0;
    char *doc = malloc(cap);
    struct gh_jwks *set = NULL;

    used += (size_t)snprintf(doc, cap, "{\"keys\":[");
    for (size_t i = 0; i < n; i++) {
        char *jwk = gh_testkey_public_jwk(&keys[i]);
        used += (size_t)snprintf(doc + used, cap - used, "%s%s", i ? "," : "", jwk);
        free(jwk);
    }
    used += (size_t)snprintf(doc + used, cap - used, "]}");
    if (gh_jwks_parse(doc, used, flags, &set) != 0)
        set = NULL;
    free(doc);
    return set;
}

/* DER ECDSA signature → R||S, each padded to `coord` bytes. */
static unsigned char *der_to_raw(const unsigned char *der, size_t der_len, size_t coord)
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    unsigned char *raw = malloc(2 * coord);
    if (sig == NULL || raw == NULL) {
        ECDSA_SIG_free(sig);
        free(raw);
        return NULL;
    }
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, (int)coord);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + coord, (int)coord);
    ECDSA_SIG_free(sig);
    return raw;
}

unsigned char *gh_test_signature(const struct gh_testkey *key, enum gh_alg alg, const void *msg,
                                 size_t msg_len, size_t *sig_len)
{
    const struct gh_alg_info *info = gh_alg_info(alg);
    unsigned char *sig = NULL;
    EVP_MD_CTX *ctx;
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = 0;

    if (info->family == GH_FAMILY_HMAC) {
        unsigned int tag_len = 0;
        sig = malloc(EVP_MAX_MD_SIZE);
        HMAC(EVP_get_digestbyname(info->digest), key->secret, (int)key->secret_len, msg, msg_len,
             sig, &tag_len);
        *sig_len = tag_len;
        return sig;
    }
    ctx = EVP_MD_CTX_new();
    if (EVP_DigestSignInit(ctx, &pctx, info->digest ? EVP_get_digestbyname(info->digest) : NULL,
                           NULL, key->priv) != 1)
        goto out;
    if (info->family == GH_FAMILY_RSA_PSS) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    if (EVP_DigestSign(ctx, NULL, &len, msg, msg_len) != 1 || (sig = malloc(len)) == NULL ||
        EVP_DigestSign(ctx, sig, &len, msg, msg_len) != 1) {
        free(sig);
        sig = NULL;
        goto out;
    }
    if (info->family == GH_FAMILY_ECDSA) {
        unsigned char *raw = der_to_raw(sig, len, info->ec_coord_len);
        free(sig);
        sig = raw;
        len = 2 * info->ec_coord_len;
    }
    *sig_len = len;
out:
    EVP_MD_CTX_free(ctx);
    return sig;
}

char *gh_test_sign_as(const struct gh_testkey *key, enum gh_alg alg, const void *header,
                      size_t header_len, const void *payload, size_t payload_len)
{
    size_t h = gh_b64url_encoded_len(header_len), p = gh_b64url_encoded_len(payload_len);
    char *token = malloc(h + p + 2 + gh_b64url_encoded_len(1024) + 1);
    unsigned char *sig;
    size_t sig_len;

    if (alg == GH_ALG_UNKNOWN)
        alg = key->alg;
    gh_b64url_encode(header, header_len, token);
    token[h] = '.';
    gh_b64url_encode(payload, payload_len, token + h + 1);
    sig = gh_test_signature(key, alg, token, h + 1 + p, &sig_len);
    if (sig == NULL || sig_len > 1024) {
        free(sig);
        free(token);
        return NULL;
    }
    token[h + 1 + p] = '.';
    gh_b64url_encode(sig, sig_len, token + h + p + 2);
    free(sig);
    return token;
}

char *gh_test_sign(const struct gh_testkey *key, const char *header_json, const char *payload_json)
{
    return gh_test_sign_as(key, GH_ALG_UNKNOWN, header_json, strlen(header_json), payload_json,
                           strlen(payload_json));
}

char *gh_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size <= 64L * 1024 * 1024 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)size, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

const char *gh_test_vectors_dir(void)
{
    const char *env = getenv("GH_VECTORS_DIR");
    return env != NULL && *env != '\0' ? env : GH_TEST_VECTORS_DIR;
}
