// SPDX-License-Identifier: Apache-2.0
/*
 * Verification keys, ready to use: a JWK (RFC 7517/7518/8037), a JWK Set, a PEM public key or
 * certificate, or an HMAC secret becomes a set of parsed OpenSSL keys once, when it is loaded, so
 * that verifying a token never parses a key. A key that does not qualify (weak, wrong use, not on
 * its curve, ...) stays in the set with the reason it is skipped, which is the reason a token that
 * names it gets; it is never fatal to the other keys of the set.
 */
#ifndef GH_JOSE_JWK_H
#define GH_JOSE_JWK_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

#include "jose/alg.h"

/* A key set never holds more keys than this (a token without kid meets at most GH_JWS_KIDLESS_TRIES
 * of them). */
#define GH_JWKS_MAX_KEYS 64
#define GH_RSA_MIN_BITS  2048
/* Larger keys add no security anyone needs and cost a verifier quadratically more per token: an
 * IdP could make each token expensive (issue 11). */
#define GH_RSA_MAX_BITS 8192
/* SPEC §1: an HMAC secret has at least 32 bytes (and at least the hash size for HS384/HS512). */
#define GH_HMAC_MIN_SECRET 32

/* Flags for loading. */
#define GH_JWK_ALLOW_SECRET 0x1u /* accept `oct` keys: static HMAC keys, never a published set */

struct gh_jwk {
    char *kid; /* NUL-terminated copy, NULL when the key has no kid */
    size_t kid_len;
    enum gh_kty kty;
    enum gh_crv crv;       /* EC and OKP keys */
    enum gh_alg alg;       /* the key's own `alg`, GH_ALG_UNKNOWN when it has none */
    int status;            /* GH_OK when usable, else the GH_ERR_* why it is skipped */
    int bits;              /* RSA modulus size */
    EVP_PKEY *pkey;        /* RSA, EC, OKP */
    unsigned char *secret; /* oct; wiped on clear */
    size_t secret_len;
};

struct gh_jwks {
    size_t count;
    struct gh_jwk *keys;
    /* Set when the set is one key given by an operator (a profile's jwt_key, `--key`): that key is
     * the one to use whatever kid the token names. */
    int ignore_kid;
};

/*
 * Parses a JWK Set document (`{"keys":[...]}`) of `len` bytes. GH_OK with a new set in *out (keys
 * that do not qualify are kept with their status), or GH_ERR_JWKS_FORM when the document itself is
 * not a JSON object (by the rules of common/json.h) with a `keys` array of at most
 * GH_JWKS_MAX_KEYS members. The caller frees the set with gh_jwks_free.
 */
int gh_jwks_parse(const void *buf, size_t len, unsigned flags, struct gh_jwks **out);

/* The same from an already parsed JSON document (borrowed). */
int gh_jwks_from_json(const json_t *doc, unsigned flags, struct gh_jwks **out);

/*
 * One key given by an operator: a PEM public key, a PEM certificate, or one JWK. GH_OK with a set
 * of one key (look at its status), GH_ERR_JWK_PEM or GH_ERR_JWK_NOT_OBJECT when it is none of
 * those.
 */
int gh_jwks_from_key(const void *buf, size_t len, unsigned flags, struct gh_jwks **out);

/* An HMAC secret of `len` raw bytes as a set of one `oct` key (copied; the caller keeps its own).
 */
int gh_jwks_from_secret(const unsigned char *secret, size_t len, struct gh_jwks **out);

void gh_jwks_free(struct gh_jwks *set);

/* Number of usable keys. */
size_t gh_jwks_usable(const struct gh_jwks *set);

/*
 * Whether `key` may verify a signature made with `alg`: GH_OK, the key's own status when it is
 * skipped, GH_ERR_KEY_MISMATCH when its type, curve or alg do not fit, GH_ERR_HMAC_TOO_SHORT when
 * an HMAC secret is shorter than the hash of `alg`.
 */
int gh_jwk_fits(const struct gh_jwk *key, enum gh_alg alg);

/* Parses one JWK object into *key (always initialised; kid kept even when the key is skipped). */
void gh_jwk_from_json(const json_t *obj, unsigned flags, struct gh_jwk *key);
void gh_jwk_clear(struct gh_jwk *key);

#endif
