// SPDX-License-Identifier: Apache-2.0
/*
 * One project-wide set of error codes. Every refusal of a token, every key that is skipped and
 * every internal failure has a code here, defined once in the table below with its stable reason
 * (the words of SPEC §3 that logs, metrics, HTTP answers and `gatehouse token verify` all use) and
 * a one-sentence message for people. Codes are negative; 0 is success. Only the gateway turns codes
 * into HTTP answers.
 */
#ifndef GH_COMMON_ERROR_H
#define GH_COMMON_ERROR_H

#include <stddef.h>

/* X(NAME, reason, message) */
#define GH_ERROR_TABLE(X)                                                                          \
    X(NOMEM, "internal", "out of memory")                                                          \
    X(INTERNAL, "internal", "internal error")                                                      \
    X(INVALID_ARG, "invalid_argument", "invalid argument")                                         \
    X(IO, "io_error", "input or output failed")                                                    \
    X(STORE_UNAVAILABLE, "store_unavailable", "the store's database cannot be reached")            \
    X(ADDR_IN_USE, "address_in_use", "address already in use")                                     \
    X(ADDR_RESOLVE, "invalid_address", "the host name of the address cannot be resolved")          \
    /* the token's form */                                                                         \
    X(TOKEN_TOO_LARGE, "too_large", "the token is larger than 16 KiB")                             \
    X(PAYLOAD_TOO_LARGE, "too_large", "the token's payload is larger than 10240 bytes")            \
    X(SEGMENTS, "malformed", "the token is not three dot-separated base64url segments")            \
    X(BASE64URL, "malformed", "a token segment is not strict base64url")                           \
    X(EMPTY_SIGNATURE, "malformed", "the token has an empty signature")                            \
    X(JSON_SYNTAX, "malformed", "the token's header or payload is not valid JSON")                 \
    X(JSON_DUPLICATE, "malformed", "a JSON object in the token repeats a member name")             \
    X(JSON_DEPTH, "malformed", "the token's JSON nests deeper than 16 levels")                     \
    X(JSON_NOT_OBJECT, "malformed", "the token's header or payload is not a JSON object")          \
    X(ALG_MISSING, "malformed", "the token header has no alg string")                              \
    X(KID_TYPE, "malformed", "the token header's kid is not a string")                             \
    /* the token's header */                                                                       \
    X(ALG_NONE, "alg_not_allowed", "unsigned tokens (alg none) are never accepted")                \
    X(ALG_UNKNOWN, "alg_not_allowed", "the token's alg is not a supported signature algorithm")    \
    X(ALG_NOT_ALLOWED, "alg_not_allowed", "the token's alg is not one of the allowed algorithms")  \
    X(CRIT, "unsupported_header", "the token header has crit, and no extension is understood")     \
    X(B64, "unsupported_header", "the token header has b64; unencoded payloads are not accepted")  \
    X(ZIP, "unsupported_header", "the token header has zip; compressed payloads are not accepted") \
    X(TYP_NOT_ACCEPTED, "unsupported_header",                                                      \
      "the token's type (typ) is not one this profile accepts")                                    \
    /* key selection and signature */                                                              \
    X(UNKNOWN_KID, "unknown_kid", "no signing key has the token's kid")                            \
    X(NO_FITTING_KEY, "key_mismatch", "no signing key fits the token's alg")                       \
    X(KEY_MISMATCH, "key_mismatch", "the key named by the token's kid does not fit its alg")       \
    X(KID_AMBIGUOUS, "key_mismatch", "the token's kid names more than one signing key")            \
    X(KIDLESS_TOO_MANY_KEYS, "key_mismatch",                                                       \
      "the token has no kid, none of the first 4 keys that fit its alg verifies it, and the set "  \
      "has more: a token must name its key by kid")                                                \
    X(BAD_SIGNATURE, "bad_signature", "the token's signature does not verify")                     \
    X(SIG_LENGTH, "bad_signature", "the signature's length is wrong for the token's alg")          \
    /* claims */                                                                                   \
    X(EXPIRED, "expired", "the token has expired (exp)")                                           \
    X(NOT_YET_VALID, "not_yet_valid", "the token is not valid yet (nbf)")                          \
    X(ISSUED_IN_FUTURE, "issued_in_future", "the token was issued in the future (iat)")            \
    X(CLAIM_TYPE, "bad_claim_type", "a claim of the token has the wrong type or range")            \
    X(MISSING_CLAIM, "missing_claim", "a required claim is missing from the token")                \
    X(WRONG_ISSUER, "wrong_issuer", "the token's issuer (iss) is not accepted")                    \
    X(WRONG_AUDIENCE, "wrong_audience", "the token's audience (aud) is not accepted")              \
    X(NO_PROFILE_KEY, "unknown_profile_key", "the token carries no access profile key")            \
    X(UNKNOWN_PROFILE_KEY, "unknown_profile_key", "the token's access profile key is not known")   \
    X(KEYS_UNAVAILABLE, "keys_unavailable",                                                        \
      "the identity provider's signing keys are unavailable")                                      \
    /* keys: why a key is not used; the reason is what a token naming it is refused with */        \
    X(JWK_NOT_OBJECT, "key_mismatch", "the key is not a JSON object")                              \
    X(JWKS_FORM, "key_mismatch", "the key set is not a JSON object with a keys array")             \
    X(JWK_KTY, "key_mismatch", "the key's kty is missing or not supported")                        \
    X(JWK_CRV, "key_mismatch", "the key's crv is missing or not supported")                        \
    X(JWK_MEMBER, "key_mismatch",                                                                  \
      "a member of the key is missing, of the wrong type or not base64url")                        \
    X(JWK_USE, "key_mismatch", "the key's use is not sig")                                         \
    X(JWK_KEY_OPS, "key_mismatch", "the key's key_ops do not allow verify")                        \
    X(JWK_ALG, "key_mismatch", "the key's alg is unknown or does not fit its type")                \
    X(JWK_PRIVATE, "key_mismatch", "the key carries private key material")                         \
    X(JWK_SECRET, "key_mismatch", "secret (oct) keys are not accepted in this key set")            \
    X(JWK_MIXED, "key_mismatch", "the key set mixes secret (oct) keys with public keys")           \
    X(JWK_DUPLICATE_KID, "key_mismatch",                                                           \
      "the key's kid is used by another signing key of the set")                                   \
    X(JWK_EC_POINT, "key_mismatch", "the key's EC point is not on its curve")                      \
    X(JWK_PEM, "key_mismatch", "the key is not a PEM public key")                                  \
    X(RSA_TOO_SMALL, "weak_key", "the RSA key is shorter than 2048 bits")                          \
    X(RSA_TOO_LARGE, "weak_key", "the RSA key is longer than 8192 bits")                           \
    X(RSA_EXPONENT, "weak_key", "the RSA public exponent is not an odd number from 3 to 2^32")     \
    X(RSA_ROCA, "weak_key", "the RSA key has the ROCA weakness (CVE-2017-15361)")                  \
    X(HMAC_TOO_SHORT, "weak_key", "the HMAC secret is shorter than the hash output")               \
    /* identity providers (SPEC §4) */                                                            \
    X(URL_INVALID, "invalid_url", "the URL is not an absolute http or https URL")                  \
    X(URL_INSECURE, "invalid_url",                                                                 \
      "only https URLs are allowed, except for loopback hosts or with --allow-insecure-idp")       \
    X(URL_LOCAL, "invalid_url",                                                                    \
      "only an identity provider on a loopback host may lead gatehouse to a loopback address")     \
    X(DISCOVERY_URL, "invalid_url",                                                                \
      "a discovery URL must end with /.well-known/openid-configuration")                           \
    X(FETCH_FAILED, "fetch_failed", "the identity provider could not be reached")                  \
    X(FETCH_TIMEOUT, "fetch_failed", "the identity provider did not answer in time")               \
    X(FETCH_TOO_LARGE, "fetch_failed", "the identity provider's answer is larger than 1 MiB")      \
    X(FETCH_STATUS, "fetch_failed", "the identity provider answered with an HTTP error status")    \
    X(FETCH_REDIRECTS, "fetch_failed", "the identity provider redirected more than 3 times")       \
    X(FETCH_TLS, "fetch_failed", "the identity provider's TLS certificate could not be verified")  \
    X(DISCOVERY_FORM, "bad_discovery",                                                             \
      "the discovery document is not a JSON object with issuer and jwks_uri strings")              \
    X(DISCOVERY_ISSUER, "bad_discovery",                                                           \
      "the discovery document's issuer does not match the discovery URL")                          \
    X(JWKS_NO_KEYS, "bad_jwks", "the identity provider's key set has no usable signing key")       \
    X(STOPPED, "internal", "the provider manager is stopped")                                      \
    /* command line */                                                                             \
    X(USAGE, "usage", "the command line is not valid")                                             \
    X(NOT_IMPLEMENTED, "not_implemented", "this feature is not built yet")

enum gh_error {
    GH_OK = 0,
#define GH_X_ENUM(name, reason, message) GH_ERR_##name,
    GH_ERR_FIRST_ = -1000,
    GH_ERROR_TABLE(GH_X_ENUM)
#undef GH_X_ENUM
        GH_ERR_LAST_
};

/* The stable reason word of SPEC §3 (or "internal", "usage", ...) for a code; never NULL. */
const char *gh_error_reason(int code);

/* A one-sentence, human-readable message for a code; never NULL, never echoes input. */
const char *gh_error_message(int code);

/* printf into a caller's error buffer of `cap` bytes (nothing when `error` is NULL or `cap` 0): the
 * explanation that functions taking (char *error, size_t cap) hand back beside their code. */
void gh_error_format(char *error, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The code's C name without the GH_ERR_ prefix ("BAD_SIGNATURE"), for logs and tests. */
const char *gh_error_name(int code);

#endif
