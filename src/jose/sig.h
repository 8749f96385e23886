// SPDX-License-Identifier: Apache-2.0
/*
 * The signature primitives of JWS: one call per verification, for a key that gh_jwk_fits already
 * accepted for the algorithm. Signatures are taken in their JWS form only: RSA signatures exactly
 * the modulus size, ECDSA as raw R||S of exactly twice the coordinate size (never DER), Ed25519 64
 * bytes, HMAC tags of the full hash size.
 */
#ifndef GH_JOSE_SIG_H
#define GH_JOSE_SIG_H

#include <openssl/evp.h>
#include <stddef.h>

#include "jose/alg.h"
#include "jose/jwk.h"

/* GH_OK when `sig` is a valid signature of `msg` by `key` under `alg`; else GH_ERR_BAD_SIGNATURE,
 * GH_ERR_SIG_LENGTH, GH_ERR_KEY_MISMATCH or GH_ERR_NOMEM. Leaves OpenSSL's error queue empty. */
int gh_sig_verify(enum gh_alg alg, const struct gh_jwk *key, const unsigned char *msg,
                  size_t msg_len, const unsigned char *sig, size_t sig_len);

/* SHA-256, fetched from OpenSSL's providers once per process: an implicit fetch per call (what
 * SHA256() does) costs more than hashing a short input. NULL only when OpenSSL has none. It lives
 * as long as the process and is not to be freed. */
const EVP_MD *gh_sig_sha256(void);

#endif
