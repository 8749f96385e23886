// SPDX-License-Identifier: Apache-2.0
/*
 * The JWS layer and the JWT pipeline: parsing results, key selection by kid (and without one),
 * static keys that ignore kid, the allowed-algorithm gate, and verification of every algorithm.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "jose/jwt.h"
#include "testkit.h"

#define NOW    1700000000
#define CLAIMS "{\"iss\":\"https://idp.example\",\"sub\":\"u1\",\"exp\":1800000000}"

static struct gh_testkey keys[GH_ALG_COUNT];

static int setup(void **state)
{
    (void)state;
    for (int a = GH_ALG_RS256; a < GH_ALG_COUNT; a++) {
        char kid[16];
        snprintf(kid, sizeof kid, "k-%s", gh_alg_name((enum gh_alg)a));
        if (gh_testkey_generate((enum gh_alg)a, kid, 0, &keys[a]) != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int a = 0; a < GH_ALG_COUNT; a++)
        gh_testkey_clear(&keys[a]);
    return 0;
}

/* A token signed by keys[alg] with header {"alg":..., "kid": kid (omitted when NULL)}. */
static char *token_for(enum gh_alg alg, const char *kid)
{
    char header[128];
    if (kid != NULL)
        snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"%s\"}", gh_alg_name(alg), kid);
    else
        snprintf(header, sizeof header, "{\"alg\":\"%s\"}", gh_alg_name(alg));
    return gh_test_sign(&keys[alg], header, CLAIMS);
}

static int verify(const char *token, unsigned algs, const struct gh_jwks *set)
{
    static const char *const req[] = {"exp"};
    struct gh_jwt_policy policy = {
        .algorithms = algs,
        .keys = set,
        .rules = {.now = NOW, .leeway = 60, .required = req, .n_required = 1}};
    return gh_jwt_check(token, strlen(token), &policy);
}

static void test_parse_fields(void **state)
{
    char *token = token_for(GH_ALG_ES256, "k-ES256");
    struct gh_jws jws;
    (void)state;
    assert_int_equal(gh_jws_parse(token, strlen(token), &jws), GH_OK);
    assert_int_equal(jws.alg, GH_ALG_ES256);
    assert_int_equal(jws.kid_len, 7);
    assert_memory_equal(jws.kid, "k-ES256", 7);
    assert_int_equal(jws.payload_len, strlen(CLAIMS));
    assert_memory_equal(jws.payload, CLAIMS, jws.payload_len);
    assert_int_equal(jws.sig_len, 64);
    assert_ptr_equal(jws.signing_input, token);
    assert_int_equal(jws.signing_input_len, (size_t)(strrchr(token, '.') - token));
    gh_jws_clear(&jws);
    gh_jws_clear(&jws); /* safe twice */
    free(token);
}

static void test_every_algorithm_verifies(void **state)
{
    (void)state;
    for (int a = GH_ALG_RS256; a < GH_ALG_COUNT; a++) {
        struct gh_jwks *set = gh_testkey_jwks(&keys[a], 1, GH_JWK_ALLOW_SECRET);
        char *with_kid = token_for((enum gh_alg)a, keys[a].kid),
             *no_kid = token_for((enum gh_alg)a, NULL);
        assert_non_null(set);
        assert_int_equal(verify(with_kid, GH_ALGS_ALL, set), GH_OK);
        assert_int_equal(verify(no_kid, GH_ALGS_ALL, set), GH_OK);
        assert_int_equal(verify(with_kid, GH_ALGS_ALL & ~GH_ALG_BIT(a), set),
                         GH_ERR_ALG_NOT_ALLOWED);
        /* HMAC is not among the asymmetric defaults */
        assert_int_equal(verify(with_kid, GH_ALGS_ASYMMETRIC, set),
                         a >= GH_ALG_HS256 ? GH_ERR_ALG_NOT_ALLOWED : GH_OK);
        gh_jwks_free(set);
        free(with_kid);
        free(no_kid);
    }
}

static void test_kid_selects_the_key(void **state)
{
    struct gh_testkey pair[2] = {keys[GH_ALG_RS256], keys[GH_ALG_ES256]};
    struct gh_jwks *set;
    struct gh_jwt jwt;
    const struct gh_jwk *used;
    char *token;
    (void)state;
    set = gh_testkey_jwks(pair, 2, 0);
    token = token_for(GH_ALG_ES256, "k-ES256");
    assert_int_equal(gh_jwt_parse(token, strlen(token), &jwt), GH_OK);
    struct gh_jwt_policy policy = {
        .algorithms = GH_ALGS_ASYMMETRIC, .keys = set, .rules = {.now = NOW}};
    assert_int_equal(gh_jwt_verify(&jwt, &policy, &used, NULL), GH_OK);
    assert_ptr_equal(used, &set->keys[1]);
    gh_jwt_clear(&jwt);
    free(token);
    /* a kid nobody has */
    token = token_for(GH_ALG_ES256, "k-other");
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_ERR_UNKNOWN_KID);
    assert_string_equal(gh_error_reason(GH_ERR_UNKNOWN_KID), "unknown_kid");
    free(token);
    /* the kid of the RSA key on an ES256 token: the named key does not fit */
    token = token_for(GH_ALG_ES256, "k-RS256");
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_ERR_KEY_MISMATCH);
    free(token);
    gh_jwks_free(set);
}

static void test_without_kid_every_fitting_key_is_tried(void **state)
{
    struct gh_testkey other;
    struct gh_testkey trio[3];
    struct gh_jwks *set;
    char *token;
    (void)state;
    assert_int_equal(gh_testkey_generate(GH_ALG_ES256, "k-other", 0, &other), 0);
    trio[0] = keys[GH_ALG_RS256];
    trio[1] = other;
    trio[2] = keys[GH_ALG_ES256];
    set = gh_testkey_jwks(trio, 3, 0);
    token = token_for(GH_ALG_ES256, NULL);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_OK); /* the second ES256 key */
    free(token);
    /* no key of the type at all */
    token = token_for(GH_ALG_EDDSA, NULL);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_ERR_NO_FITTING_KEY);
    free(token);
    /* fitting keys, none verifies */
    gh_jwks_free(set);
    set = gh_testkey_jwks(&other, 1, 0);
    token = token_for(GH_ALG_ES256, NULL);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_ERR_BAD_SIGNATURE);
    free(token);
    gh_jwks_free(set);
    gh_testkey_clear(&other);
}

/* Issue 11: without a kid, every key of the set was tried, so an IdP publishing 64 large keys
 * made each kid-less token cost 64 signature checks. Only the first GH_JWS_KIDLESS_TRIES keys that
 * fit the token's alg are tried; keys of other types do not count; a kid reaches any key. */
static void test_without_kid_only_a_few_keys_are_tried(void **state)
{
    struct gh_testkey ten[10], mixed[GH_JWS_KIDLESS_TRIES + 6];
    struct gh_jwks *set;
    char *token;
    size_t n = 0;
    (void)state;
    assert_int_equal(GH_JWS_KIDLESS_TRIES, 4);
    for (int i = 0; i < 10; i++) {
        char kid[16];
        snprintf(kid, sizeof kid, "k-%d", i + 1);
        assert_int_equal(gh_testkey_generate(GH_ALG_ES256, kid, 0, &ten[i]), 0);
    }
    set = gh_testkey_jwks(ten, 10, 0);
    assert_non_null(set);
    token = gh_test_sign(&ten[0], "{\"alg\":\"ES256\"}", CLAIMS);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_OK);
    free(token);
    token = gh_test_sign(&ten[3], "{\"alg\":\"ES256\"}", CLAIMS);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_OK); /* the 4th: last tried */
    free(token);
    token = gh_test_sign(&ten[4], "{\"alg\":\"ES256\"}", CLAIMS);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_ERR_KIDLESS_TOO_MANY_KEYS);
    assert_string_equal(gh_error_reason(GH_ERR_KIDLESS_TOO_MANY_KEYS), "key_mismatch");
    free(token);
    token = gh_test_sign(&ten[9], "{\"alg\":\"ES256\"}", CLAIMS);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_ERR_KIDLESS_TOO_MANY_KEYS);
    free(token);
    token = gh_test_sign(&ten[9], "{\"alg\":\"ES256\",\"kid\":\"k-10\"}", CLAIMS);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_OK);
    free(token);
    /* a signature no tried key verifies, with keys left: still "too many", not bad_signature */
    token = token_for(GH_ALG_ES256, NULL);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_ERR_KIDLESS_TOO_MANY_KEYS);
    free(token);
    gh_jwks_free(set);
    /* six RSA keys before four ES256 keys: only the ES256 keys count */
    for (int a = GH_ALG_RS256; a <= GH_ALG_PS512; a++)
        mixed[n++] = keys[a];
    for (int i = 0; i < GH_JWS_KIDLESS_TRIES; i++)
        mixed[n++] = ten[i];
    set = gh_testkey_jwks(mixed, n, 0);
    assert_non_null(set);
    token = gh_test_sign(&ten[GH_JWS_KIDLESS_TRIES - 1], "{\"alg\":\"ES256\"}", CLAIMS);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_OK);
    free(token);
    gh_jwks_free(set);
    for (int i = 0; i < 10; i++)
        gh_testkey_clear(&ten[i]);
}

/* SPEC §3: RSA keys of fewer than 2048 bits are refused. Without a kid, a set whose only key of
 * the token's type is such a key is refused as weak_key naming that key, not as "no key fits":
 * the operator must learn that the key is the problem. */
static void test_without_kid_a_weak_key_is_named(void **state)
{
    struct gh_testkey weak, pair[2];
    struct gh_jwks *set;
    struct gh_jwt jwt;
    const struct gh_jwk *used = NULL;
    char *token;
    (void)state;
    assert_int_equal(gh_testkey_generate(GH_ALG_RS256, "k-weak", 1024, &weak), 0);
    pair[0] = weak;
    pair[1] = keys[GH_ALG_ES256];
    set = gh_testkey_jwks(pair, 2, 0);
    assert_non_null(set);
    token = gh_test_sign(&weak, "{\"alg\":\"RS256\"}", CLAIMS);
    assert_int_equal(gh_jwt_parse(token, strlen(token), &jwt), GH_OK);
    struct gh_jwt_policy policy = {
        .algorithms = GH_ALGS_ASYMMETRIC, .keys = set, .rules = {.now = NOW}};
    assert_int_equal(gh_jwt_verify(&jwt, &policy, &used, NULL), GH_ERR_RSA_TOO_SMALL);
    assert_string_equal(gh_error_reason(GH_ERR_RSA_TOO_SMALL), "weak_key");
    assert_ptr_equal(used, &set->keys[0]); /* the key at fault, so a caller can say its size */
    assert_int_equal(used->bits, 1024);
    gh_jwt_clear(&jwt);
    free(token);
    /* a type that no key of the set has is still "no key fits", weak key or not */
    token = token_for(GH_ALG_EDDSA, NULL);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_ERR_NO_FITTING_KEY);
    free(token);
    gh_jwks_free(set);
    gh_testkey_clear(&weak);
}

static void test_static_key_ignores_kid(void **state)
{
    char *jwk = gh_testkey_public_jwk(&keys[GH_ALG_PS384]);
    struct gh_jwks *set = NULL;
    char *token = token_for(GH_ALG_PS384, "whatever-the-idp-says");
    (void)state;
    assert_int_equal(gh_jwks_from_key(jwk, strlen(jwk), 0, &set), GH_OK);
    assert_int_equal(verify(token, GH_ALGS_ASYMMETRIC, set), GH_OK);
    gh_jwks_free(set);
    free(token);
    free(jwk);
}

static void test_header_rules(void **state)
{
    static const struct {
        const char *header;
        int expected;
    } cases[] = {
        {"{\"alg\":\"none\"}", GH_ERR_ALG_NONE},
        {"{\"alg\":\"None\"}", GH_ERR_ALG_NONE},
        {"{\"alg\":\"NONE\"}", GH_ERR_ALG_NONE},
        {"{\"alg\":\"HS1\"}", GH_ERR_ALG_UNKNOWN},
        {"{\"alg\":\"rs256\"}", GH_ERR_ALG_UNKNOWN},
        {"{\"typ\":\"JWT\"}", GH_ERR_ALG_MISSING},
        {"{\"alg\":256}", GH_ERR_ALG_MISSING},
        {"{\"alg\":\"RS256\",\"crit\":[\"exp\"],\"exp\":1}", GH_ERR_CRIT},
        {"{\"alg\":\"RS256\",\"b64\":true}", GH_ERR_B64},
        {"{\"alg\":\"RS256\",\"zip\":\"DEF\"}", GH_ERR_ZIP},
        {"{\"alg\":\"RS256\",\"kid\":7}", GH_ERR_KID_TYPE},
        {"{\"alg\":\"RS256\",\"kid\":null}", GH_ERR_KID_TYPE},
    };
    struct gh_jwks *set = gh_testkey_jwks(&keys[GH_ALG_RS256], 1, 0);
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *token = gh_test_sign_as(&keys[GH_ALG_RS256], GH_ALG_RS256, cases[i].header,
                                      strlen(cases[i].header), CLAIMS, strlen(CLAIMS));
        assert_int_equal(verify(token, GH_ALGS_ALL, set), cases[i].expected);
        free(token);
    }
    /* typ, cty, x5t and other informational members are fine */
    const char *fine = "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"cty\":\"x\",\"x5t\":\"abc\"}";
    char *token = gh_test_sign_as(&keys[GH_ALG_RS256], GH_ALG_RS256, fine, strlen(fine), CLAIMS,
                                  strlen(CLAIMS));
    assert_int_equal(verify(token, GH_ALGS_ALL, set), GH_OK);
    free(token);
    gh_jwks_free(set);
}

/* An unsecured JWT (RFC 7519 §6: alg none, empty signature) in any spelling of none is refused
 * as alg_not_allowed, the reason attacks are counted by, not as a malformed token. An empty
 * signature under any other alg stays malformed. */
static void test_unsigned_tokens_are_refused_as_alg_none(void **state)
{
    static const char *const unsigned_tokens[] = {
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.",                 /* {"alg":"none"} */
        "eyJhbGciOiJOb25lIn0.eyJzdWIiOiJ1MSJ9.",                 /* {"alg":"None"} */
        "eyJhbGciOiJOT05FIn0.eyJzdWIiOiJ1MSJ9.",                 /* {"alg":"NONE"} */
        "eyJhbGciOiJuT25FIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1MSJ9.", /* nOnE, typ JWT */
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.", /* typ first */
    };
    struct gh_jwks *set = gh_testkey_jwks(&keys[GH_ALG_RS256], 1, 0);
    struct gh_jws jws;
    (void)state;
    for (size_t i = 0; i < sizeof unsigned_tokens / sizeof unsigned_tokens[0]; i++) {
        assert_int_equal(gh_jws_parse(unsigned_tokens[i], strlen(unsigned_tokens[i]), &jws),
                         GH_ERR_ALG_NONE);
        assert_int_equal(verify(unsigned_tokens[i], GH_ALGS_ALL, set), GH_ERR_ALG_NONE);
    }
    assert_string_equal(gh_error_reason(GH_ERR_ALG_NONE), "alg_not_allowed");
    /* {"alg":"RS256"} with its signature stripped, and a header that is no JSON */
    assert_int_equal(verify("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.", GH_ALGS_ALL, set),
                     GH_ERR_EMPTY_SIGNATURE);
    assert_int_equal(verify("bm9uZQ.eyJzdWIiOiJ1MSJ9.", GH_ALGS_ALL, set), GH_ERR_EMPTY_SIGNATURE);
    gh_jwks_free(set);
}

static void test_size_caps(void **state)
{
    struct gh_jwks *set = gh_testkey_jwks(&keys[GH_ALG_ES256], 1, 0);
    char *payload = malloc(GH_PAYLOAD_MAX + 64), *token;
    (void)state;
    /* a payload of exactly 10240 bytes is accepted, one more byte is too large */
    for (size_t size = GH_PAYLOAD_MAX; size <= GH_PAYLOAD_MAX + 1; size++) {
        int n = snprintf(payload, 64, "{\"exp\":1800000000,\"pad\":\"");
        memset(payload + n, 'a', size - (size_t)n - 2);
        memcpy(payload + size - 2, "\"}", 3);
        token = gh_test_sign_as(&keys[GH_ALG_ES256], GH_ALG_ES256, "{\"alg\":\"ES256\"}", 15,
                                payload, size);
        assert_int_equal(verify(token, GH_ALGS_ALL, set),
                         size == GH_PAYLOAD_MAX ? GH_OK : GH_ERR_PAYLOAD_TOO_LARGE);
        free(token);
    }
    free(payload);
    /* 16 KiB + 1 */
    token = malloc(GH_TOKEN_MAX + 2);
    memset(token, 'A', GH_TOKEN_MAX + 1);
    token[10] = token[20] = '.';
    token[GH_TOKEN_MAX + 1] = '\0';
    assert_int_equal(verify(token, GH_ALGS_ALL, set), GH_ERR_TOKEN_TOO_LARGE);
    free(token);
    gh_jwks_free(set);
}

static void test_payload_must_be_an_object_for_jwt(void **state)
{
    struct gh_jwks *set = gh_testkey_jwks(&keys[GH_ALG_ES256], 1, 0);
    struct gh_jws jws;
    char *token =
        gh_test_sign_as(&keys[GH_ALG_ES256], GH_ALG_ES256, "{\"alg\":\"ES256\"}", 15, "hello", 5);
    (void)state;
    /* fine for the JWS layer, refused as a JWT */
    assert_int_equal(gh_jws_parse(token, strlen(token), &jws), GH_OK);
    assert_int_equal(gh_jws_verify(&jws, GH_ALGS_ALL, set, NULL), GH_OK);
    gh_jws_clear(&jws);
    assert_int_equal(verify(token, GH_ALGS_ALL, set), GH_ERR_JSON_SYNTAX);
    free(token);
    gh_jwks_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_every_algorithm_verifies),
        cmocka_unit_test(test_kid_selects_the_key),
        cmocka_unit_test(test_without_kid_every_fitting_key_is_tried),
        cmocka_unit_test(test_without_kid_a_weak_key_is_named),
        cmocka_unit_test(test_without_kid_only_a_few_keys_are_tried),
        cmocka_unit_test(test_unsigned_tokens_are_refused_as_alg_none),
        cmocka_unit_test(test_static_key_ignores_kid),
        cmocka_unit_test(test_header_rules),
        cmocka_unit_test(test_size_caps),
        cmocka_unit_test(test_payload_must_be_an_object_for_jwt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
