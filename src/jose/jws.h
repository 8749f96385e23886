// SPDX-License-Identifier: Apache-2.0
/*
 * JWS compact serialization (RFC 7515 §7.1) with the rules of SPEC §3: size caps, exactly three
 * strict base64url segments, a header that is a JSON object without duplicates or deep nesting,
 * a supported `alg` (never `none`), no `crit`, `b64` or `zip`. Header members that could supply a
 * key (`jwk`, `jku`, `x5u`, `x5c`) are never read: keys come only from the caller's key set.
 */
#ifndef GH_JOSE_JWS_H
#define GH_JOSE_JWS_H

#include <jansson.h>
#include <stddef.h>

#include "jose/alg.h"
#include "jose/jwk.h"

#define GH_TOKEN_MAX   16384
#define GH_PAYLOAD_MAX 10240
/* A token without kid is checked against at most this many keys that fit its alg (issue 11): the
 * set is the IdP's to write, and 64 keys tried per token let it (or whoever controls it) spend
 * ~0.4 s of CPU per token. Rotation needs two keys (current and next), a few more cover an IdP
 * with one key per algorithm; an IdP with more keys must name them by kid. */
#define GH_JWS_KIDLESS_TRIES 4

struct gh_jws {
    const char *signing_input; /* borrowed: the caller's token, up to the second dot */
    size_t signing_input_len;
    json_t *header; /* owned */
    enum gh_alg alg;
    const char *kid; /* borrowed from header, NULL when absent */
    size_t kid_len;
    unsigned char *payload; /* owned; one allocation holds payload then signature */
    size_t payload_len;
    unsigned char *sig;
    size_t sig_len;
};

/*
 * Parses `len` bytes of `token` (not NUL-terminated; it must outlive *jws, which borrows it).
 * *jws is always initialised; on error it holds nothing to free, but gh_jws_clear is safe.
 */
int gh_jws_parse(const char *token, size_t len, struct gh_jws *jws);

void gh_jws_clear(struct gh_jws *jws);

/*
 * Verifies the signature with `keys`: `alg` must be in `allowed` (a GH_ALG_BIT mask); `kid`
 * selects the key, or without one the first GH_JWS_KIDLESS_TRIES keys that fit the alg are tried
 * (GH_ERR_KIDLESS_TOO_MANY_KEYS when none verifies and more fit); without one, a key of
 * the alg's type that is too weak is named (its weak_key status) rather than GH_ERR_NO_FITTING_KEY.
 * On GH_OK, *used (may be NULL) points at the key of the set that verified; on a refusal that
 * is one key's fault (the key the kid names does not fit, or a weak key), at that key, so a
 * caller can say, for one, its size; else NULL. Errors:
 * GH_ERR_ALG_NOT_ALLOWED, GH_ERR_UNKNOWN_KID, GH_ERR_NO_FITTING_KEY, a skipped key's status,
 * GH_ERR_KEY_MISMATCH, GH_ERR_KIDLESS_TOO_MANY_KEYS, GH_ERR_SIG_LENGTH, GH_ERR_BAD_SIGNATURE.
 */
int gh_jws_verify(const struct gh_jws *jws, unsigned allowed, const struct gh_jwks *keys,
                  const struct gh_jwk **used);

#endif
