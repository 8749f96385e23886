// SPDX-License-Identifier: Apache-2.0
/*
 * The JWS signature algorithms gatehouse verifies, and what each one demands of a key: its type,
 * curve, digest and signature size. Sets of algorithms (a profile's `algorithms`) are bit masks.
 */
#ifndef GH_JOSE_ALG_H
#define GH_JOSE_ALG_H

#include <stddef.h>

enum gh_kty { GH_KTY_NONE = 0, GH_KTY_RSA, GH_KTY_EC, GH_KTY_OKP, GH_KTY_OCT };

enum gh_crv { GH_CRV_NONE = 0, GH_CRV_P256, GH_CRV_P384, GH_CRV_P521, GH_CRV_ED25519 };

enum gh_alg {
    GH_ALG_UNKNOWN = 0,
    GH_ALG_RS256,
    GH_ALG_RS384,
    GH_ALG_RS512,
    GH_ALG_PS256,
    GH_ALG_PS384,
    GH_ALG_PS512,
    GH_ALG_ES256,
    GH_ALG_ES384,
    GH_ALG_ES512,
    GH_ALG_EDDSA,
    GH_ALG_HS256,
    GH_ALG_HS384,
    GH_ALG_HS512,
    GH_ALG_COUNT
};

#define GH_ALG_BIT(alg) (1u << (alg))
#define GH_ALGS_HMAC                                                                               \
    (GH_ALG_BIT(GH_ALG_HS256) | GH_ALG_BIT(GH_ALG_HS384) | GH_ALG_BIT(GH_ALG_HS512))
#define GH_ALGS_ALL (((1u << GH_ALG_COUNT) - 1) & ~1u)
/* The default of a profile and of `token verify`: HMAC only when named, never by default. */
#define GH_ALGS_ASYMMETRIC (GH_ALGS_ALL & ~GH_ALGS_HMAC)

enum gh_alg_family {
    GH_FAMILY_RSA_PKCS1,
    GH_FAMILY_RSA_PSS,
    GH_FAMILY_ECDSA,
    GH_FAMILY_EDDSA,
    GH_FAMILY_HMAC
};

struct gh_alg_info {
    const char *name; /* "RS256" */
    enum gh_alg_family family;
    enum gh_kty kty;     /* the key type it needs */
    enum gh_crv crv;     /* the curve it needs (ECDSA, EdDSA), else GH_CRV_NONE */
    const char *digest;  /* OpenSSL digest name, NULL for EdDSA */
    size_t hash_len;     /* digest size in bytes (HMAC tag size, PSS salt size) */
    size_t ec_coord_len; /* ECDSA: bytes of R and of S; EdDSA: signature is 64 bytes */
};

/* Facts about `alg`, or NULL for GH_ALG_UNKNOWN or out of range. */
const struct gh_alg_info *gh_alg_info(enum gh_alg alg);

/* The algorithm named by `len` bytes of `name` (exact, case-sensitive), or GH_ALG_UNKNOWN. */
enum gh_alg gh_alg_from_name(const char *name, size_t len);

/* The name of an algorithm ("RS256"), or "unknown". */
const char *gh_alg_name(enum gh_alg alg);

/* Curve from its JWK name ("P-256", "Ed25519"), or GH_CRV_NONE. */
enum gh_crv gh_crv_from_name(const char *name);
const char *gh_crv_name(enum gh_crv crv);
const char *gh_kty_name(enum gh_kty kty);

/* Byte size of one coordinate (EC) or of the public key (Ed25519). */
size_t gh_crv_coord_len(enum gh_crv crv);

/*
 * Parses a comma-separated list of algorithm names ("RS256,ES256") into a mask. GH_ERR_ALG_UNKNOWN
 * for a name that is not supported (or "none"), GH_ERR_INVALID_ARG for an empty list.
 */
int gh_algs_parse(const char *list, unsigned *mask);

#endif
