// SPDX-License-Identifier: Apache-2.0
/*
 * Test kit shared by the unit tests, fuzzers and benchmarks: makes keys of every algorithm, exports
 * their public JWK, and signs tokens the way an IdP would, so tests build real tokens instead of
 * pasting opaque strings. Test code only; never linked into the gatehouse binary.
 */
#ifndef GH_TESTKIT_H
#define GH_TESTKIT_H

#include <openssl/evp.h>
#include <stddef.h>

#include "jose/alg.h"
#include "jose/jwk.h"

struct gh_testkey {
    enum gh_alg alg;
    char kid[64];
    EVP_PKEY *priv;           /* asymmetric algorithms */
    unsigned char secret[64]; /* HMAC algorithms: hash-size random secret */
    size_t secret_len;
};

/* Makes a fresh key for `alg` (RSA 2048 bits unless `rsa_bits` is non-zero). 0 on success. */
int gh_testkey_generate(enum gh_alg alg, const char *kid, int rsa_bits, struct gh_testkey *key);
void gh_testkey_clear(struct gh_testkey *key);

/* The public JWK of `key` as JSON text (with kid, alg, use "sig"); the caller frees it. For HMAC
 * keys it is the `oct` JWK with the secret. */
char *gh_testkey_public_jwk(const struct gh_testkey *key);

/* A JWK Set of the public JWKs of `n` keys, parsed with `flags`; NULL on failure. */
struct gh_jwks *gh_testkey_jwks(const struct gh_testkey *keys, size_t n, unsigned flags);

/* Signs `header` and `payload` bytes as given (base64url-encoding them) with `key` under the
 * key's alg (or `alg` when not GH_ALG_UNKNOWN). Returns the compact token; the caller frees it. */
char *gh_test_sign_as(const struct gh_testkey *key, enum gh_alg alg, const void *header,
                      size_t header_len, const void *payload, size_t payload_len);

/* Signs JSON texts with the key's own alg. */
char *gh_test_sign(const struct gh_testkey *key, const char *header_json, const char *payload_json);

/* Raw JWS signature bytes of `msg` (ECDSA in R||S form); *sig_len receives the size. */
unsigned char *gh_test_signature(const struct gh_testkey *key, enum gh_alg alg, const void *msg,
                                 size_t msg_len, size_t *sig_len);

/* Reads a whole file (at most 64 MiB) into a NUL-terminated buffer; NULL on failure. */
char *gh_test_read_file(const char *path, size_t *len);

/* Directory of the outside test vectors (env GH_VECTORS_DIR, else the build's default). */
const char *gh_test_vectors_dir(void);

#endif
