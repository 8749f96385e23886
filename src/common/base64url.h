// SPDX-License-Identifier: Apache-2.0
/*
 * Strict base64url (RFC 4648 §5) as JWS requires it: no padding, no whitespace, nothing outside the
 * URL-safe alphabet, and canonical trailing bits, so each byte string has exactly one encoding and
 * a token cannot be altered without changing what it decodes to.
 */
#ifndef GH_COMMON_BASE64URL_H
#define GH_COMMON_BASE64URL_H

#include <stddef.h>

/* Upper bound of the decoded size of `len` encoded characters. */
static inline size_t gh_b64url_decoded_max(size_t len)
{
    return len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
}

/* Exact size of the encoding of `len` bytes, without a terminating NUL. */
static inline size_t gh_b64url_encoded_len(size_t len)
{
    return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

/*
 * Decodes `len` characters of `in` (not NUL-terminated) into `out`, which the caller sizes with
 * gh_b64url_decoded_max(len). Returns GH_OK and the decoded size in *out_len, or
 * GH_ERR_BASE64URL for any character, length or trailing bits that strict base64url forbids.
 */
int gh_b64url_decode(const char *in, size_t len, unsigned char *out, size_t *out_len);

/* Encodes `len` bytes into `out` (gh_b64url_encoded_len(len) + 1 bytes, NUL-terminated). */
void gh_b64url_encode(const unsigned char *in, size_t len, char *out);

/* Encodes into a new NUL-terminated string that the caller frees; NULL when out of memory. */
char *gh_b64url_encode_alloc(const unsigned char *in, size_t len);

#endif
