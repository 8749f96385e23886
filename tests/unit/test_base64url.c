// SPDX-License-Identifier: Apache-2.0
/* Strict base64url: RFC 4648 test vectors, and every rule of SPEC §3 that makes an encoding unique. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/base64url.h"
#include "common/error.h"

static int decode(const char *in, unsigned char *out, size_t *out_len)
{
    return gh_b64url_decode(in, strlen(in), out, out_len);
}

static void test_rfc4648_vectors(void **state)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const encoded[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    (void)state;
    for (size_t i = 0; i < 7; i++) {
        unsigned char out[16];
        char enc[16];
        size_t len;
        assert_int_equal(decode(encoded[i], out, &len), GH_OK);
        assert_int_equal(len, strlen(plain[i]));
        assert_memory_equal(out, plain[i], len);
        assert_int_equal(gh_b64url_decoded_max(strlen(encoded[i])), len);
        gh_b64url_encode((const unsigned char *)plain[i], strlen(plain[i]), enc);
        assert_string_equal(enc, encoded[i]);
        assert_int_equal(gh_b64url_encoded_len(strlen(plain[i])), strlen(encoded[i]));
    }
}

static void test_url_alphabet(void **state)
{
    unsigned char out[8], bytes[] = {0xfb, 0xff, 0xbf};
    char enc[8];
    size_t len;
    (void)state;
    gh_b64url_encode(bytes, 3, enc);
    assert_string_equal(enc, "-_-_");
    assert_int_equal(decode("-_-_", out, &len), GH_OK);
    assert_memory_equal(out, bytes, 3);
    /* the standard alphabet's + and / are not base64url */
    assert_int_equal(decode("+/+/", out, &len), GH_ERR_BASE64URL);
}

static void test_rejects_padding_whitespace_and_junk(void **state)
{
    static const char *const bad[] = {"Zg==", "Zm8=", "Zm9v ", " Zm9v", "Zm\n9v", "Zm9v\t", "Z",
                                      "Zm9vY", "Zm9*", "Zm9.", "Zm9v=", "\x80\x80\x80\x80"};
    unsigned char out[16];
    size_t len;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(decode(bad[i], out, &len), GH_ERR_BASE64URL);
}

static void test_rejects_non_canonical_trailing_bits(void **state)
{
    unsigned char out[4];
    size_t len;
    (void)state;
    /* "Zg" is 'f'; "Zh".."Zv" carry the same byte with non-zero unused bits */
    assert_int_equal(decode("Zg", out, &len), GH_OK);
    assert_int_equal(decode("Zh", out, &len), GH_ERR_BASE64URL);
    assert_int_equal(decode("Zv", out, &len), GH_ERR_BASE64URL);
    assert_int_equal(decode("Zm8", out, &len), GH_OK);
    assert_int_equal(decode("Zm9", out, &len), GH_ERR_BASE64URL);
    assert_int_equal(decode("Zm-", out, &len), GH_ERR_BASE64URL);
}

static void test_embedded_nul_is_not_a_terminator(void **state)
{
    unsigned char out[8];
    size_t len;
    (void)state;
    assert_int_equal(gh_b64url_decode("Zm9v\0Zm9v", 9, out, &len), GH_ERR_BASE64URL);
}

static void test_round_trip_every_length(void **state)
{
    unsigned char in[300], out[300];
    char enc[401];
    size_t len;
    (void)state;
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof in; n++) {
        gh_b64url_encode(in, n, enc);
        assert_int_equal(strlen(enc), gh_b64url_encoded_len(n));
        assert_int_equal(gh_b64url_decode(enc, strlen(enc), out, &len), GH_OK);
        assert_int_equal(len, n);
        assert_memory_equal(in, out, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_url_alphabet),
        cmocka_unit_test(test_rejects_padding_whitespace_and_junk),
        cmocka_unit_test(test_rejects_non_canonical_trailing_bits),
        cmocka_unit_test(test_embedded_nul_is_not_a_terminator),
        cmocka_unit_test(test_round_trip_every_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
