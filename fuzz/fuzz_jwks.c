// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for key loading (src/jose/jwk.c): the input is a JWK Set document, as fetched
 * from an IdP's jwks_uri, and also one operator key (a JWK or a PEM public key or certificate), as
 * given in a profile's jwt_key. Both are loaded with and without GH_JWK_ALLOW_SECRET. Every loaded
 * key must respect the set rules of SPEC §3 (no secret key unless allowed, never beside public
 * keys, no two usable keys with one kid), and every usable key is put through gh_jwk_fits for each
 * algorithm and gh_sig_verify with a fixed message and signature, which must be refused with a
 * documented code. A loaded key is attacker-shaped data that later meets OpenSSL on every request,
 * so this is where a key that loads but breaks verification would show. Violations abort.
 */
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "jose/jwk.h"
#include "jose/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Large enough for the signature of the largest RSA key accepted (GH_RSA_MAX_BITS). */
#define SIG_MAX (GH_RSA_MAX_BITS / 8)

static const unsigned char message[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmdXp6In0";

static void fail(const char *what, int rc)
{
    fprintf(stderr, "fuzz_jwks: %s (%s)\n", what, rc ? gh_error_name(rc) : "GH_OK");
    abort();
}

/* A fixed, non-trivial signature: neither all zeros nor all ones, below any RSA modulus. */
static const unsigned char *fixed_signature(void)
{
    static unsigned char sig[SIG_MAX];
    if (sig[1] == 0) {
        for (size_t i = 1; i < sizeof sig; i++)
            sig[i] = (unsigned char)(i * 151 + 7);
    }
    return sig;
}

/* The JWS signature size `key` would produce under `alg` (assuming it fits). */
static size_t signature_size(const struct gh_jwk *key, const struct gh_alg_info *info)
{
    switch (info->family) {
    case GH_FAMILY_RSA_PKCS1:
    case GH_FAMILY_RSA_PSS:
        return key->pkey != NULL ? (size_t)EVP_PKEY_get_size(key->pkey) : 256;
    case GH_FAMILY_ECDSA:
        return 2 * info->ec_coord_len;
    case GH_FAMILY_EDDSA:
        return 64;
    default:
        return info->hash_len;
    }
}

static int is_verify_refusal(int rc)
{
    return rc == GH_ERR_BAD_SIGNATURE || rc == GH_ERR_SIG_LENGTH || rc == GH_ERR_KEY_MISMATCH ||
           rc == GH_ERR_NOMEM;
}

/* Every alg (and the out-of-range ones) against one key of a set. */
static void check_algs(const struct gh_jwk *key)
{
    for (int a = GH_ALG_UNKNOWN; a <= GH_ALG_COUNT; a++) {
        const struct gh_alg_info *info = gh_alg_info((enum gh_alg)a);
        int fits = gh_jwk_fits(key, (enum gh_alg)a), rc;
        size_t size = info != NULL ? signature_size(key, info) : 64;

        if (key->status != GH_OK && fits != key->status)
            fail("a skipped key does not report its own status", fits);
        if (fits == GH_OK && (info == NULL || info->kty != key->kty ||
                              (info->kty == GH_KTY_OCT && key->secret_len < info->hash_len) ||
                              (info->kty != GH_KTY_OCT && key->pkey == NULL)))
            fail("gh_jwk_fits accepted a key that cannot serve the alg", fits);
        if (key->status != GH_OK)
            continue; /* skipped keys never reach gh_sig_verify in gh_jws_verify */
        if (size > SIG_MAX)
            fail("a usable key signs larger than GH_RSA_MAX_BITS allows", 0);
        rc = gh_sig_verify((enum gh_alg)a, key, message, sizeof message - 1, fixed_signature(),
                           size);
        if (!is_verify_refusal(rc) || (fits != GH_OK && rc != GH_ERR_KEY_MISMATCH))
            fail("gh_sig_verify accepted or mis-reported a fixed signature", rc);
        rc = gh_sig_verify((enum gh_alg)a, key, message, sizeof message - 1, fixed_signature(),
                           size - 1);
        if (!is_verify_refusal(rc))
            fail("gh_sig_verify accepted a signature of the wrong size", rc);
    }
}

/* What a loaded key promises about itself. */
static void check_key(const struct gh_jwk *key, unsigned flags)
{
    if (key->status > 0 || (key->kid != NULL && strlen(key->kid) != key->kid_len))
        fail("a key breaks its own invariants", key->status);
    if (key->status == GH_OK) {
        if (key->kty == GH_KTY_OCT ? key->secret == NULL || key->secret_len < GH_HMAC_MIN_SECRET ||
                                         !(flags & GH_JWK_ALLOW_SECRET)
                                   : key->pkey == NULL)
            fail("a usable key has no usable material", 0);
        if (key->kty == GH_KTY_RSA && (key->bits < GH_RSA_MIN_BITS || key->bits > GH_RSA_MAX_BITS))
            fail("a usable RSA key is outside the allowed sizes", 0);
        if (key->kty == GH_KTY_NONE ||
            (key->kty == GH_KTY_EC) !=
                (key->crv == GH_CRV_P256 || key->crv == GH_CRV_P384 || key->crv == GH_CRV_P521))
            fail("a usable key has no type or a curve that does not fit it", 0);
    }
    check_algs(key);
}

/* The rules that concern a whole set. */
static void check_set(const struct gh_jwks *set, unsigned flags)
{
    int has_public = 0, has_secret = 0;

    if (set->count > GH_JWKS_MAX_KEYS || gh_jwks_usable(set) > set->count)
        fail("a set holds more keys than allowed", 0);
    for (size_t i = 0; i < set->count; i++) {
        const struct gh_jwk *a = &set->keys[i];
        check_key(a, flags);
        if (a->status != GH_OK)
            continue;
        has_public |= a->kty != GH_KTY_OCT;
        has_secret |= a->kty == GH_KTY_OCT;
        for (size_t j = i + 1; a->kid != NULL && j < set->count; j++) {
            const struct gh_jwk *b = &set->keys[j];
            if (b->status == GH_OK && b->kid != NULL && strcmp(a->kid, b->kid) == 0)
                fail("two usable keys share a kid", 0);
        }
    }
    if (has_public && has_secret)
        fail("a set mixes usable secret and public keys", 0);
}

/* Allowing secrets changes what happens to oct keys only. */
static void compare_sets(const struct gh_jwks *plain, const struct gh_jwks *secret)
{
    if (plain->count != secret->count || plain->ignore_kid != secret->ignore_kid)
        fail("GH_JWK_ALLOW_SECRET changed the shape of the set", 0);
    for (size_t i = 0; i < plain->count; i++) {
        const struct gh_jwk *a = &plain->keys[i], *b = &secret->keys[i];
        if (a->kty != GH_KTY_OCT && a->status != b->status)
            fail("GH_JWK_ALLOW_SECRET changed the verdict on a public key", b->status);
    }
}

static void check_document(const uint8_t *data, size_t size)
{
    struct gh_jwks *sets[2] = {NULL, NULL};
    static const unsigned flags[2] = {0, GH_JWK_ALLOW_SECRET};
    int rcs[2];

    for (int f = 0; f < 2; f++) {
        rcs[f] = gh_jwks_parse(data, size, flags[f], &sets[f]);
        if (rcs[f] == GH_OK) {
            if (sets[f] == NULL || sets[f]->ignore_kid)
                fail("gh_jwks_parse gave no set, or an operator's one", 0);
            check_set(sets[f], flags[f]);
        } else if (sets[f] != NULL ||
                   (rcs[f] != GH_ERR_JSON_SYNTAX && rcs[f] != GH_ERR_JSON_DUPLICATE &&
                    rcs[f] != GH_ERR_JSON_DEPTH && rcs[f] != GH_ERR_JWKS_FORM &&
                    rcs[f] != GH_ERR_NOMEM)) {
            fail("gh_jwks_parse returned an undocumented code", rcs[f]);
        }
    }
    if (rcs[0] != rcs[1] && rcs[0] != GH_ERR_NOMEM && rcs[1] != GH_ERR_NOMEM)
        fail("GH_JWK_ALLOW_SECRET changed whether a document loads", rcs[1]);
    if (sets[0] != NULL && sets[1] != NULL)
        compare_sets(sets[0], sets[1]);
    gh_jwks_free(sets[0]);
    gh_jwks_free(sets[1]);
}

static void check_single_key(const uint8_t *data, size_t size)
{
    static const unsigned flags[2] = {0, GH_JWK_ALLOW_SECRET};
    struct gh_jwks *sets[2] = {NULL, NULL};

    for (int f = 0; f < 2; f++) {
        int rc = gh_jwks_from_key(data, size, flags[f], &sets[f]);
        if (rc == GH_OK) {
            if (sets[f] == NULL || sets[f]->count != 1 || !sets[f]->ignore_kid)
                fail("an operator's key is not a set of one key used whatever the kid", 0);
            check_set(sets[f], flags[f]);
        } else if (sets[f] != NULL || (rc != GH_ERR_JWK_PEM && rc != GH_ERR_JWK_NOT_OBJECT &&
                                       rc != GH_ERR_INVALID_ARG && rc != GH_ERR_NOMEM)) {
            fail("gh_jwks_from_key returned an undocumented code", rc);
        }
    }
    if (sets[0] != NULL && sets[1] != NULL)
        compare_sets(sets[0], sets[1]);
    gh_jwks_free(sets[0]);
    gh_jwks_free(sets[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_document(data, size);
    check_single_key(data, size);
    return 0;
}
