// SPDX-License-Identifier: Apache-2.0
/*
 * A JWT (RFC 7519) as gatehouse admits it: a JWS whose payload is a JSON object of claims, verified
 * with one profile's keys and rules. This is the whole of SPEC §3 in two steps, so that the gateway
 * can look up the access profile key (SPEC §2) between parsing and verifying.
 */
#ifndef GH_JOSE_JWT_H
#define GH_JOSE_JWT_H

#include <jansson.h>
#include <stddef.h>

#include "jose/claims.h"
#include "jose/jwk.h"
#include "jose/jws.h"

struct gh_jwt {
    struct gh_jws jws;
    json_t *claims; /* owned: the payload object, not trusted before gh_jwt_verify succeeds */
};

struct gh_jwt_policy {
    unsigned algorithms; /* GH_ALG_BIT mask; GH_ALGS_ASYMMETRIC by default */
    const struct gh_jwks *keys;
    struct gh_claim_rules rules;
    /* The JWS typ values taken (RFC 9068 §4: "at+jwt" tells an access token from an ID token
     * signed by the same key); none: any typ, or none at all. */
    const char *const *types;
    size_t n_types;
};

/* Parses a token; on error *jwt holds nothing (gh_jwt_clear is still safe). `token` must outlive
 * it. */
int gh_jwt_parse(const char *token, size_t len, struct gh_jwt *jwt);
void gh_jwt_clear(struct gh_jwt *jwt);

/*
 * Signature first, then the token's type, then claims. On refusal returns the GH_ERR_*; *claim
 * (may be NULL) names the claim at fault for claim errors. *used (may be NULL) is the key that
 * verified, or the key at fault when a key's own status is the refusal (gh_jws_verify).
 */
int gh_jwt_verify(const struct gh_jwt *jwt, const struct gh_jwt_policy *policy,
                  const struct gh_jwk **used, const char **claim);

/*
 * GH_OK when the JWS header's typ is one of `types` (n of them; none: always GH_OK), else
 * GH_ERR_TYP_NOT_ACCEPTED. Media types compare case-insensitively, and "application/" may be
 * left out on either side (RFC 7515 §4.1.9): "at+jwt" matches "application/AT+JWT".
 */
int gh_jwt_typ_check(const struct gh_jws *jws, const char *const *types, size_t n);

/* One sentence for people on why gh_jwt_typ_check refused: "token type 'JWT' is not accepted by
 * this profile (accepted: at+jwt)", where `by` is "this profile" (NULL: no "by ..."). A typ that
 * is not short printable text is not repeated. */
void gh_jwt_typ_explain(const struct gh_jws *jws, const char *const *types, size_t n,
                        const char *by, char *out, size_t cap);

/* Parse and verify in one call, for callers with no key lookup in between. */
int gh_jwt_check(const char *token, size_t len, const struct gh_jwt_policy *policy);

#endif
