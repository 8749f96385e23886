// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for strict base64url (src/common/base64url.c). Every token segment and every
 * JWK member goes through the decoder, so it must never read or write past the sizes it promises,
 * and its strictness is what makes a token's bytes unique: an encoded string that decodes at all
 * must be the one and only encoding of what it decodes to. The input is used both ways: as text to
 * decode and as bytes to encode. Any broken property aborts, which libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64url.h"
#include "common/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_base64url: %s\n", what);
    abort();
}

/* Exact-size heap blocks (even of 0 bytes): AddressSanitizer then sees a single byte too many. */
static void *exact_alloc(size_t size)
{
    void *block = malloc(size);
    if (block == NULL && size != 0)
        fail("out of memory");
    return block;
}

static void *exact_copy(const void *data, size_t size)
{
    void *copy = exact_alloc(size);
    if (size)
        memcpy(copy, data, size);
    return copy;
}

/* The input as encoded text: decode into a buffer of exactly the promised maximum. */
static void check_decode(const uint8_t *data, size_t size)
{
    char *in = exact_copy(data, size);
    size_t max = gh_b64url_decoded_max(size), out_len = (size_t)-1;
    unsigned char *out = exact_alloc(max);
    int rc;

    rc = gh_b64url_decode(in, size, out, &out_len);
    if (rc != GH_OK && rc != GH_ERR_BASE64URL)
        fail("decode returned an undocumented code");
    if (rc == GH_OK) {
        /* strictness = uniqueness: what decodes must re-encode to exactly the input */
        char *again;
        if (out_len > max)
            fail("decoded more than gh_b64url_decoded_max");
        if (gh_b64url_encoded_len(out_len) != size)
            fail("accepted text whose length is not the encoding of its bytes");
        again = exact_alloc(size + 1);
        gh_b64url_encode(out, out_len, again);
        if (memcmp(again, in, size) != 0 || again[size] != '\0')
            fail("accepted a non-canonical encoding");
        free(again);
    }
    free(out);
    free(in);
}

/* The input as bytes: encode into an exact buffer, then decode it back. */
static void check_round_trip(const uint8_t *data, size_t size)
{
    unsigned char *in = exact_copy(data, size);
    size_t enc_len = gh_b64url_encoded_len(size), back_len = (size_t)-1;
    char *enc = exact_alloc(enc_len + 1), *enc2;
    unsigned char *back = exact_alloc(gh_b64url_decoded_max(enc_len));

    gh_b64url_encode(in, size, enc);
    if (strlen(enc) != enc_len)
        fail("encoding length differs from gh_b64url_encoded_len");
    if (strspn(enc, alphabet) != enc_len)
        fail("encoding has a character outside the base64url alphabet");
    if (gh_b64url_decoded_max(enc_len) < size)
        fail("gh_b64url_decoded_max is below the real size");
    if (gh_b64url_decode(enc, enc_len, back, &back_len) != GH_OK)
        fail("decode refused an encoding made by encode");
    if (back_len != size || (size && memcmp(back, in, size) != 0))
        fail("decode(encode(x)) != x");
    enc2 = gh_b64url_encode_alloc(in, size);
    if (enc2 == NULL || strcmp(enc2, enc) != 0)
        fail("gh_b64url_encode_alloc differs from gh_b64url_encode");
    free(enc2);
    free(back);
    free(enc);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_decode(data, size);
    check_round_trip(data, size);
    return 0;
}
