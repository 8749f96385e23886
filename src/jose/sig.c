// SPDX-License-Identifier: Apache-2.0
/*
 * JWS signature verification on OpenSSL 3's EVP interface. Digests are fetched once per process
 * (an implicit fetch on every call costs more than the JSON work of a whole token), and every
 * failure clears OpenSSL's thread-local error queue so it cannot leak into the next request.
 */
#include "jose/sig.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static EVP_MD *digests[3]; /* SHA-256, SHA-384, SHA-512 */
static pthread_once_t digests_once = PTHREAD_ONCE_INIT;

static void fetch_digests(void)
{
    digests[0] = EVP_MD_fetch(NULL, "SHA256", NULL);
    digests[1] = EVP_MD_fetch(NULL, "SHA384", NULL);
    digests[2] = EVP_MD_fetch(NULL, "SHA512", NULL);
}

static const EVP_MD *digest_for(const struct gh_alg_info *info)
{
    pthread_once(&digests_once, fetch_digests);
    switch (info->hash_len) {
    case 32:
        return digests[0];
    case 48:
        return digests[1];
    case 64:
        return digests[2];
    default:
        return NULL;
    }
}

const EVP_MD *gh_sig_sha256(void)
{
    pthread_once(&digests_once, fetch_digests);
    return digests[0];
}

/* Re-encodes a raw R||S signature as the DER ECDSA-Sig-Value OpenSSL verifies. */
/* One DER INTEGER of a big-endian unsigned value: leading zero bytes dropped (one kept for zero), a
 * zero byte put back in front when the top bit is set (DER integers are signed). */
static size_t der_integer(const unsigned char *v, size_t len, unsigned char *out)
{
    size_t skip = 0, n;

    while (skip + 1 < len && v[skip] == 0)
        skip++;
    n = len - skip;
    out[0] = 0x02;
    if (v[skip] & 0x80) {
        out[1] = (unsigned char)(n + 1);
        out[2] = 0x00;
        memcpy(out + 3, v + skip, n);
        return n + 3;
    }
    out[1] = (unsigned char)n;
    memcpy(out + 2, v + skip, n);
    return n + 2;
}

/*
 * JWS ECDSA signatures are r || s, fixed width (RFC 7518 3.4); OpenSSL verifies DER's
 * SEQUENCE { INTEGER r, INTEGER s }. Written here rather than through ECDSA_SIG and two BIGNUMs,
 * which cost a fresh token six allocations. Coordinates are at most 66 bytes (P-521), so each
 * INTEGER fits in 69 bytes and the SEQUENCE's length in one byte after 0x81.
 */
static int ecdsa_raw_to_der(const unsigned char *sig, size_t coord, unsigned char *der,
                            size_t *der_len)
{
    unsigned char body[2 * 69];
    size_t n, head;

    if (coord == 0 || coord > 66 || *der_len < sizeof body + 3)
        return GH_ERR_INVALID_ARG;
    n = der_integer(sig, coord, body);
    n += der_integer(sig + coord, coord, body + n);
    der[0] = 0x30;
    if (n < 0x80) {
        der[1] = (unsigned char)n;
        head = 2;
    } else {
        der[1] = 0x81;
        der[2] = (unsigned char)n;
        head = 3;
    }
    memcpy(der + head, body, n);
    *der_len = head + n;
    return GH_OK;
}

static int verify_hmac(const struct gh_alg_info *info, const struct gh_jwk *key,
                       const unsigned char *msg, size_t msg_len, const unsigned char *sig,
                       size_t sig_len)
{
    unsigned char tag[EVP_MAX_MD_SIZE];
    unsigned int tag_len = 0;

    if (sig_len != info->hash_len)
        return GH_ERR_SIG_LENGTH;
    if (HMAC(digest_for(info), key->secret, (int)key->secret_len, msg, msg_len, tag, &tag_len) ==
        NULL)
        return GH_ERR_INTERNAL;
    int equal = tag_len == sig_len && CRYPTO_memcmp(tag, sig, sig_len) == 0;
    OPENSSL_cleanse(tag, sizeof tag);
    return equal ? GH_OK : GH_ERR_BAD_SIGNATURE;
}

/*
 * Verification contexts are costly to set up (a provider lookup, parameter copies) and reusable, so
 * each thread keeps the last ones it made, per key and algorithm. The cache holds a reference to
 * each key, so a key freed elsewhere can never alias a new one at the same address.
 */
#define CTX_CACHE_SLOTS 64

struct ctx_entry {
    EVP_PKEY *pkey;
    enum gh_alg alg;
    EVP_PKEY_CTX *ctx;     /* RSA and ECDSA: verifies a digest */
    EVP_MD_CTX *eddsa_ctx; /* EdDSA: initialised for the key, copied for each message */
};

struct ctx_cache {
    struct ctx_entry slots[CTX_CACHE_SLOTS];
    EVP_MD_CTX *md;       /* hashes a message for RSA and ECDSA */
    EVP_MD_CTX *eddsa_md; /* the EdDSA verification under way (kept apart: it holds a key) */
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *arg)
{
    struct ctx_cache *cache = arg;
    for (size_t i = 0; i < CTX_CACHE_SLOTS; i++) {
        EVP_PKEY_CTX_free(cache->slots[i].ctx);
        EVP_MD_CTX_free(cache->slots[i].eddsa_ctx);
        EVP_PKEY_free(cache->slots[i].pkey);
    }
    EVP_MD_CTX_free(cache->md);
    EVP_MD_CTX_free(cache->eddsa_md);
    free(cache);
}

static void cache_init(void)
{
    pthread_key_create(&cache_key, cache_free);
}

static struct ctx_cache *thread_cache(void)
{
    pthread_once(&cache_once, cache_init);
    struct ctx_cache *cache = pthread_getspecific(cache_key);
    if (cache == NULL && (cache = calloc(1, sizeof *cache)) != NULL) {
        if ((cache->md = EVP_MD_CTX_new()) == NULL ||
            (cache->eddsa_md = EVP_MD_CTX_new()) == NULL ||
            pthread_setspecific(cache_key, cache) != 0) {
            cache_free(cache);
            return NULL;
        }
    }
    return cache;
}

static EVP_PKEY_CTX *new_verify_ctx(const struct gh_alg_info *info, EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    const EVP_MD *md = digest_for(info);
    if (ctx == NULL || EVP_PKEY_verify_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx, md) != 1 ||
        (info->family == GH_FAMILY_RSA_PSS &&
         (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
          EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
          EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1)) ||
        (info->family == GH_FAMILY_RSA_PKCS1 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* EdDSA signs the message itself (no prehash): a digest-verify context set up for the key, which
 * each verification copies (cheaper than setting one up: a provider lookup and a key export). */
static EVP_MD_CTX *new_eddsa_ctx(EVP_PKEY *pkey)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx == NULL || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* The thread's verification context for (key, alg), made on first use. */
static struct ctx_entry *cached_entry(struct ctx_cache *cache, const struct gh_alg_info *info,
                                      enum gh_alg alg, EVP_PKEY *pkey)
{
    size_t slot = (((uintptr_t)pkey >> 4) ^ (uintptr_t)alg) % CTX_CACHE_SLOTS;
    struct ctx_entry *e = &cache->slots[slot];
    EVP_PKEY_CTX *ctx = NULL;
    EVP_MD_CTX *eddsa_ctx = NULL;

    if (e->pkey == pkey && e->alg == alg)
        return e;
    if (info->family == GH_FAMILY_EDDSA)
        eddsa_ctx = new_eddsa_ctx(pkey);
    else
        ctx = new_verify_ctx(info, pkey);
    if ((ctx == NULL && eddsa_ctx == NULL) || EVP_PKEY_up_ref(pkey) != 1) {
        EVP_PKEY_CTX_free(ctx);
        EVP_MD_CTX_free(eddsa_ctx);
        return NULL;
    }
    EVP_PKEY_CTX_free(e->ctx);
    EVP_MD_CTX_free(e->eddsa_ctx);
    EVP_PKEY_free(e->pkey);
    *e = (struct ctx_entry){pkey, alg, ctx, eddsa_ctx};
    return e;
}

/* RSA and ECDSA: hash once, then verify the digest with the thread's cached context. */
static int verify_digest(const struct gh_alg_info *info, enum gh_alg alg, const struct gh_jwk *key,
                         const unsigned char *msg, size_t msg_len, const unsigned char *sig,
                         size_t sig_len)
{
    struct ctx_cache *cache = thread_cache();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    struct ctx_entry *e;
    EVP_PKEY_CTX *ctx;

    if (cache == NULL || (e = cached_entry(cache, info, alg, key->pkey)) == NULL)
        return GH_ERR_NOMEM;
    ctx = e->ctx;
    if (EVP_DigestInit_ex2(cache->md, digest_for(info), NULL) != 1 ||
        EVP_DigestUpdate(cache->md, msg, msg_len) != 1 ||
        EVP_DigestFinal_ex(cache->md, digest, &digest_len) != 1)
        return GH_ERR_INTERNAL;
    return EVP_PKEY_verify(ctx, sig, sig_len, digest, digest_len) == 1 ? GH_OK
                                                                       : GH_ERR_BAD_SIGNATURE;
}

/* EdDSA: a copy of the thread's context for the key verifies the message in one shot. */
static int verify_eddsa(const struct gh_alg_info *info, enum gh_alg alg, const struct gh_jwk *key,
                        const unsigned char *msg, size_t msg_len, const unsigned char *sig,
                        size_t sig_len)
{
    struct ctx_cache *cache = thread_cache();
    struct ctx_entry *e;

    if (cache == NULL || (e = cached_entry(cache, info, alg, key->pkey)) == NULL)
        return GH_ERR_NOMEM;
    if (EVP_MD_CTX_copy_ex(cache->eddsa_md, e->eddsa_ctx) != 1)
        return GH_ERR_INTERNAL;
    return EVP_DigestVerify(cache->eddsa_md, sig, sig_len, msg, msg_len) == 1
               ? GH_OK
               : GH_ERR_BAD_SIGNATURE;
}

int gh_sig_verify(enum gh_alg alg, const struct gh_jwk *key, const unsigned char *msg,
                  size_t msg_len, const unsigned char *sig, size_t sig_len)
{
    const struct gh_alg_info *info = gh_alg_info(alg);
    unsigned char der[2 * 66 + 16];
    size_t der_len = sizeof der;
    int rc;

    if (info == NULL || gh_jwk_fits(key, alg) != GH_OK)
        return GH_ERR_KEY_MISMATCH;
    switch (info->family) {
    case GH_FAMILY_HMAC:
        return verify_hmac(info, key, msg, msg_len, sig, sig_len);
    case GH_FAMILY_RSA_PKCS1:
    case GH_FAMILY_RSA_PSS:
        if (sig_len != (size_t)EVP_PKEY_get_size(key->pkey))
            return GH_ERR_SIG_LENGTH;
        rc = verify_digest(info, alg, key, msg, msg_len, sig, sig_len);
        break;
    case GH_FAMILY_ECDSA:
        if (sig_len != 2 * info->ec_coord_len)
            return GH_ERR_SIG_LENGTH;
        rc = ecdsa_raw_to_der(sig, info->ec_coord_len, der, &der_len);
        if (rc == GH_OK)
            rc = verify_digest(info, alg, key, msg, msg_len, der, der_len);
        break;
    case GH_FAMILY_EDDSA:
        if (sig_len != 64)
            return GH_ERR_SIG_LENGTH;
        rc = verify_eddsa(info, alg, key, msg, msg_len, sig, sig_len);
        break;
    default:
        rc = GH_ERR_KEY_MISMATCH;
    }
    if (rc != GH_OK)
        ERR_clear_error();
    return rc;
}
