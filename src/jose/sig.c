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

/* Re-encodes a raw R||S signature as the DER ECDSA-Sig-Value OpenSSL verifies. */
static int ecdsa_raw_to_der(const unsigned char *sig, size_t coord, unsigned char *der,
                            size_t *der_len)
{
    ECDSA_SIG *ecdsa = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)coord, NULL), *s = BN_bin2bn(sig + coord, (int)coord, NULL);
    unsigned char *p = der;
    int len, rc = GH_ERR_NOMEM;

    if (ecdsa == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(ecdsa, r, s))
        goto out;
    r = s = NULL; /* owned by ecdsa now */
    len = i2d_ECDSA_SIG(ecdsa, NULL);
    if (len <= 0 || (size_t)len > *der_len)
        goto out;
    *der_len = (size_t)i2d_ECDSA_SIG(ecdsa, &p);
    rc = GH_OK;
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(ecdsa);
    return rc;
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

static int verify_pkey(const struct gh_alg_info *info, const struct gh_jwk *key,
                       const unsigned char *msg, size_t msg_len, const unsigned char *sig,
                       size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = info->family == GH_FAMILY_EDDSA ? NULL : digest_for(info);
    int rc = GH_ERR_BAD_SIGNATURE;

    if (ctx == NULL)
        return GH_ERR_NOMEM;
    if (EVP_DigestVerifyInit(ctx, &pctx, md, NULL, key->pkey) != 1)
        goto out;
    if (info->family == GH_FAMILY_RSA_PSS &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1))
        goto out;
    if (EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1)
        rc = GH_OK;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
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
        rc = verify_pkey(info, key, msg, msg_len, sig, sig_len);
        break;
    case GH_FAMILY_ECDSA:
        if (sig_len != 2 * info->ec_coord_len)
            return GH_ERR_SIG_LENGTH;
        rc = ecdsa_raw_to_der(sig, info->ec_coord_len, der, &der_len);
        if (rc == GH_OK)
            rc = verify_pkey(info, key, msg, msg_len, der, der_len);
        break;
    case GH_FAMILY_EDDSA:
        if (sig_len != 64)
            return GH_ERR_SIG_LENGTH;
        rc = verify_pkey(info, key, msg, msg_len, sig, sig_len);
        break;
    default:
        rc = GH_ERR_KEY_MISMATCH;
    }
    if (rc != GH_OK)
        ERR_clear_error();
    return rc;
}
