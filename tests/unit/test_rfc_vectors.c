// SPDX-License-Identifier: Apache-2.0
/*
 * The published JOSE examples verify with their published keys: RFC 7520 §4.1-4.4 (RS256, PS384,
 * ES512, HS256) and the RFC 8037 Ed25519 example from the JOSE cookbook in tests/vectors, and
 * RFC 7515 Appendix A.1-A.4 (HS256, RS256, ES256, ES512), embedded below because they are not in
 * the vectors directory. These are tokens that other implementations made, so they catch what a
 * test signing its own tokens cannot: a wrong encoding, digest, PSS salt or curve that our signer
 * and verifier would share. Each example is also refused after a one-byte change of its signature
 * and when the policy does not allow its alg; the RFC 7515 JWTs also go through the claim checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64url.h"
#include "common/error.h"
#include "jose/alg.h"
#include "jose/jwk.h"
#include "jose/jws.h"
#include "jose/jwt.h"
#include "testkit.h"

#define RFC_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

/* Parses jose-cookbook/<name>; a missing file fails the test, it never skips it. */
static json_t *rfc_load_cookbook(const char *name)
{
    char path[4096];
    size_t len = 0;
    char *text;
    json_t *doc;
    json_error_t err;

    snprintf(path, sizeof path, "%s/jose-cookbook/%s", gh_test_vectors_dir(), name);
    text = gh_test_read_file(path, &len);
    if (text == NULL)
        fail_msg(
            "cannot read %s: the RFC 7520 vectors are missing (they live in tests/vectors, "
            "or set GH_VECTORS_DIR)",
            path);
    doc = json_loadb(text, len, 0, &err);
    free(text);
    if (doc == NULL)
        fail_msg("%s is not JSON: %s (line %d)", path, err.text, err.line);
    return doc;
}

/*
 * A key set of the public form of `jwk`: the private members of an asymmetric key are deleted
 * (gatehouse refuses a JWK that carries them; an `oct` key is all secret and stays whole). The
 * caller frees the set.
 */
static struct gh_jwks *rfc_public_jwks(const json_t *jwk, unsigned flags)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
    json_t *copy = json_deep_copy(jwk), *set;
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    struct gh_jwks *keys = NULL;
    char *text;

    assert_non_null(copy);
    for (size_t i = 0; kty != NULL && strcmp(kty, "oct") != 0 && i < RFC_COUNT(private_members);
         i++)
        json_object_del(copy, private_members[i]);
    set = json_pack("{s:[o]}", "keys", copy);
    assert_non_null(set);
    text = json_dumps(set, JSON_COMPACT);
    json_decref(set);
    assert_non_null(text);
    assert_int_equal(gh_jwks_parse(text, strlen(text), flags, &keys), GH_OK);
    free(text);
    return keys;
}

/* gh_jws_parse + gh_jws_verify of `token` under the `allowed` algorithms. */
static int rfc_verify(const char *token, unsigned allowed, const struct gh_jwks *keys)
{
    struct gh_jws jws;
    const struct gh_jwk *used = NULL;
    int rc = gh_jws_parse(token, strlen(token), &jws);

    if (rc == GH_OK) {
        rc = gh_jws_verify(&jws, allowed, keys, &used);
        if (rc == GH_OK && used == NULL)
            rc = GH_ERR_INTERNAL; /* an acceptance must name the key that verified */
    }
    gh_jws_clear(&jws);
    return rc;
}

/* A copy of `token` whose signature has byte `at` (from the end when negative) XORed with 0x01,
 * re-encoded, so that the base64url stays canonical and only the signature's value changes. */
static char *rfc_flip_signature_byte(const char *token, long at)
{
    const char *dot = strrchr(token, '.');
    size_t head = (size_t)(dot + 1 - token), b64_len = strlen(dot + 1), sig_len;
    unsigned char *sig = malloc(gh_b64url_decoded_max(b64_len) + 1);
    char *out;

    assert_non_null(sig);
    assert_int_equal(gh_b64url_decode(dot + 1, b64_len, sig, &sig_len), GH_OK);
    assert_true(sig_len > 0);
    sig[at >= 0 ? (size_t)at : sig_len - (size_t)-at] ^= 0x01;
    out = malloc(head + gh_b64url_encoded_len(sig_len) + 1);
    assert_non_null(out);
    memcpy(out, token, head);
    gh_b64url_encode(sig, sig_len, out + head);
    free(sig);
    return out;
}

/*
 * The checks every example gets: it verifies when its alg is allowed (and names that alg), it is
 * refused with BAD_SIGNATURE after a one-byte change of the first or the last byte of its
 * signature, and with ALG_NOT_ALLOWED when the policy allows every alg but its own.
 */
static void rfc_check_example(const char *token, enum gh_alg alg, const struct gh_jwks *keys)
{
    struct gh_jws jws;
    const long positions[] = {0, -1};

    assert_int_equal(gh_jws_parse(token, strlen(token), &jws), GH_OK);
    assert_int_equal(jws.alg, alg);
    gh_jws_clear(&jws);
    assert_int_equal(rfc_verify(token, GH_ALG_BIT(alg), keys), GH_OK);
    for (size_t i = 0; i < RFC_COUNT(positions); i++) {
        char *changed = rfc_flip_signature_byte(token, positions[i]);
        assert_int_equal(rfc_verify(changed, GH_ALG_BIT(alg), keys), GH_ERR_BAD_SIGNATURE);
        free(changed);
    }
    assert_int_equal(rfc_verify(token, GH_ALGS_ALL & ~GH_ALG_BIT(alg), keys),
                     GH_ERR_ALG_NOT_ALLOWED);
}

/* ---- RFC 7520 §4 and RFC 8037 §A.4, from the JOSE cookbook ---- */

struct rfc_cookbook {
    const char *example; /* jose-cookbook/<example> */
    enum gh_alg alg;
    const char *jwk_file; /* the same key as published in RFC 7520 §3, or NULL */
    unsigned flags;
};

static const struct rfc_cookbook rfc_cookbook_examples[] = {
    {"jws/4_1.rsa_v15_signature.json", GH_ALG_RS256, "jwk/3_3.rsa_public_key.json", 0},
    {"jws/4_2.rsa-pss_signature.json", GH_ALG_PS384, "jwk/3_4.rsa_private_key.json", 0},
    {"jws/4_3.ecdsa_signature.json", GH_ALG_ES512, "jwk/3_2.ec_private_key.json", 0},
    {"jws/4_4.hmac-sha2_integrity_protection.json", GH_ALG_HS256,
     "jwk/3_5.symmetric_key_mac_computation.json", GH_JWK_ALLOW_SECRET},
    {"curve25519/jws.json", GH_ALG_EDDSA, NULL, 0},
};

/* The example's payload is the cookbook's input.payload, so the token is the one we mean. */
static void rfc_check_payload(const char *token, const json_t *doc)
{
    const char *payload =
        json_string_value(json_object_get(json_object_get(doc, "input"), "payload"));
    struct gh_jws jws;

    assert_non_null(payload);
    assert_int_equal(gh_jws_parse(token, strlen(token), &jws), GH_OK);
    assert_int_equal(jws.payload_len, strlen(payload));
    assert_memory_equal(jws.payload, payload, jws.payload_len);
    gh_jws_clear(&jws);
}

static void test_cookbook_example(void **state)
{
    const struct rfc_cookbook *ex = *state;
    json_t *doc = rfc_load_cookbook(ex->example), *jwk_doc;
    const char *token =
        json_string_value(json_object_get(json_object_get(doc, "output"), "compact"));
    struct gh_jwks *keys;

    assert_non_null(token);
    rfc_check_payload(token, doc);
    keys = rfc_public_jwks(json_object_get(json_object_get(doc, "input"), "key"), ex->flags);
    rfc_check_example(token, ex->alg, keys);
    gh_jwks_free(keys);
    if (ex->jwk_file != NULL) { /* the key as RFC 7520 §3 publishes it verifies the same */
        jwk_doc = rfc_load_cookbook(ex->jwk_file);
        keys = rfc_public_jwks(jwk_doc, ex->flags);
        assert_int_equal(rfc_verify(token, GH_ALG_BIT(ex->alg), keys), GH_OK);
        gh_jwks_free(keys);
        json_decref(jwk_doc);
    }
    json_decref(doc);
}

/* An HMAC secret is refused in a key set loaded without GH_JWK_ALLOW_SECRET (a published set). */
static void test_cookbook_hs256_needs_allow_secret(void **state)
{
    json_t *doc = rfc_load_cookbook("jws/4_4.hmac-sha2_integrity_protection.json");
    const char *token =
        json_string_value(json_object_get(json_object_get(doc, "output"), "compact"));
    struct gh_jwks *keys =
        rfc_public_jwks(json_object_get(json_object_get(doc, "input"), "key"), 0);
    (void)state;

    assert_int_equal(keys->keys[0].status, GH_ERR_JWK_SECRET);
    assert_int_equal(rfc_verify(token, GH_ALG_BIT(GH_ALG_HS256), keys), GH_ERR_JWK_SECRET);
    gh_jwks_free(keys);
    json_decref(doc);
}

/* ---- RFC 7515 Appendix A ---- */

/*
 * RFC 7515 (JSON Web Signature), Appendix A.1-A.4: the members of the example keys (the public ones
 * only; the RFC also lists the private ones) and the example JWSs in compact serialization, copied
 * from the RFC with its display line breaks removed. A.1-A.3 sign the JWT claims
 * {"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}; A.4 signs the bytes
 * "Payload".
 */
#define RFC7515_EXP INT64_C(1300819380)
#define RFC7515_CLAIMS                                                                             \
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl" \
    "fQ"

/* RFC 7515 A.1.1: HMAC SHA-256 */
static const char rfc7515_a1_k[] =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
static const char rfc7515_a1_jws[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." RFC7515_CLAIMS
                                     ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/* RFC 7515 A.2.1: RSASSA-PKCS1-v1_5 SHA-256 (e is AQAB) */
static const char rfc7515_a2_n[] =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-"
    "4qPCJrcS2mJPMEzP1Pt0Bm4d4Q"
    "lL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-"
    "bSf63kpaSHSXndS5z5rexMdbBY"
    "UsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-"
    "DWNm"
    "oudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
static const char rfc7515_a2_jws[] =
    "eyJhbGciOiJSUzI1NiJ9." RFC7515_CLAIMS
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5j"
    "ujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L0"
    "7Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUip"
    "UTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

/* RFC 7515 A.3.1: ECDSA P-256 SHA-256 */
static const char rfc7515_a3_x[] = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
static const char rfc7515_a3_y[] = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
static const char rfc7515_a3_jws[] =
    "eyJhbGciOiJFUzI1NiJ9." RFC7515_CLAIMS
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

/* RFC 7515 A.4.1: ECDSA P-521 SHA-512 */
static const char rfc7515_a4_x[] =
    "AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk";
static const char rfc7515_a4_y[] =
    "ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2";
static const char rfc7515_a4_jws[] =
    "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA"
    ".AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8G"
    "aSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn";

struct rfc7515_example {
    enum gh_alg alg;
    const char *kty, *crv; /* crv NULL for oct and RSA */
    const char *a, *b;     /* oct: k; RSA: n (e is AQAB); EC: x, y */
    const char *jws;
    unsigned flags;
    int is_jwt;
};

static const struct rfc7515_example rfc7515_examples[] = {
    {GH_ALG_HS256, "oct", NULL, rfc7515_a1_k, NULL, rfc7515_a1_jws, GH_JWK_ALLOW_SECRET, 1},
    {GH_ALG_RS256, "RSA", NULL, rfc7515_a2_n, "AQAB", rfc7515_a2_jws, 0, 1},
    {GH_ALG_ES256, "EC", "P-256", rfc7515_a3_x, rfc7515_a3_y, rfc7515_a3_jws, 0, 1},
    {GH_ALG_ES512, "EC", "P-521", rfc7515_a4_x, rfc7515_a4_y, rfc7515_a4_jws, 0, 0},
};

/* The example's JWK, {"kty":..,"k"} / {"kty":..,"n","e"} / {"kty":..,"crv","x","y"}, as a set. */
static struct gh_jwks *rfc7515_keys(const struct rfc7515_example *ex)
{
    json_t *jwk;
    struct gh_jwks *keys;

    if (strcmp(ex->kty, "oct") == 0)
        jwk = json_pack("{s:s,s:s}", "kty", ex->kty, "k", ex->a);
    else if (strcmp(ex->kty, "RSA") == 0)
        jwk = json_pack("{s:s,s:s,s:s}", "kty", ex->kty, "n", ex->a, "e", ex->b);
    else
        jwk =
            json_pack("{s:s,s:s,s:s,s:s}", "kty", ex->kty, "crv", ex->crv, "x", ex->a, "y", ex->b);
    assert_non_null(jwk);
    keys = rfc_public_jwks(jwk, ex->flags);
    json_decref(jwk);
    return keys;
}

/*
 * The JWT path: the claims parse, the token verifies one second before its exp, and is EXPIRED
 * from exp on (RFC 7519 §4.1.4: "on or after"), with exp named as the claim at fault.
 */
static void rfc7515_check_jwt(const struct rfc7515_example *ex, const struct gh_jwks *keys)
{
    const int64_t after[] = {RFC7515_EXP, RFC7515_EXP + 1, RFC7515_EXP + 86400};
    struct gh_jwt_policy policy = {.algorithms = GH_ALG_BIT(ex->alg), .keys = keys};
    struct gh_jwt jwt;
    const struct gh_jwk *used = NULL;
    const char *claim = NULL;

    assert_int_equal(gh_jwt_parse(ex->jws, strlen(ex->jws), &jwt), GH_OK);
    assert_string_equal(json_string_value(json_object_get(jwt.claims, "iss")), "joe");
    assert_int_equal(json_integer_value(json_object_get(jwt.claims, "exp")), RFC7515_EXP);
    policy.rules.now = RFC7515_EXP - 1;
    assert_int_equal(gh_jwt_verify(&jwt, &policy, &used, &claim), GH_OK);
    assert_ptr_equal(used, &keys->keys[0]);
    assert_null(claim);
    for (size_t i = 0; i < RFC_COUNT(after); i++) {
        policy.rules.now = after[i];
        assert_int_equal(gh_jwt_verify(&jwt, &policy, NULL, &claim), GH_ERR_EXPIRED);
        assert_string_equal(claim, "exp");
    }
    policy.rules.now = RFC7515_EXP - 1; /* signature first: a wrong alg is refused before claims */
    policy.algorithms = GH_ALGS_ALL & ~GH_ALG_BIT(ex->alg);
    assert_int_equal(gh_jwt_verify(&jwt, &policy, NULL, &claim), GH_ERR_ALG_NOT_ALLOWED);
    gh_jwt_clear(&jwt);
    assert_int_equal(gh_jwt_check(ex->jws, strlen(ex->jws),
                                  &(struct gh_jwt_policy){.algorithms = GH_ALG_BIT(ex->alg),
                                                          .keys = keys,
                                                          .rules = {.now = RFC7515_EXP + 1}}),
                     GH_ERR_EXPIRED);
}

static void test_rfc7515_example(void **state)
{
    const struct rfc7515_example *ex = *state;
    struct gh_jwks *keys = rfc7515_keys(ex);
    struct gh_jwt jwt;

    assert_int_equal(keys->keys[0].status, GH_OK);
    rfc_check_example(ex->jws, ex->alg, keys);
    if (ex->is_jwt) {
        rfc7515_check_jwt(ex, keys);
    } else { /* A.4's payload is the bytes "Payload", not a claims set: a JWS, never a JWT */
        assert_int_equal(gh_jwt_parse(ex->jws, strlen(ex->jws), &jwt), GH_ERR_JSON_SYNTAX);
        gh_jwt_clear(&jwt);
    }
    gh_jwks_free(keys);
}

int main(void)
{
#define RFC_TEST(name_, func, table, i)                                                            \
    {                                                                                              \
        .name = name_, .test_func = func, .initial_state = (void *)&table[i]                       \
    }
    const struct CMUnitTest tests[] = {
        RFC_TEST("rfc7520_4_1_rs256", test_cookbook_example, rfc_cookbook_examples, 0),
        RFC_TEST("rfc7520_4_2_ps384", test_cookbook_example, rfc_cookbook_examples, 1),
        RFC_TEST("rfc7520_4_3_es512", test_cookbook_example, rfc_cookbook_examples, 2),
        RFC_TEST("rfc7520_4_4_hs256", test_cookbook_example, rfc_cookbook_examples, 3),
        RFC_TEST("rfc8037_a4_ed25519", test_cookbook_example, rfc_cookbook_examples, 4),
        cmocka_unit_test(test_cookbook_hs256_needs_allow_secret),
        RFC_TEST("rfc7515_a1_hs256", test_rfc7515_example, rfc7515_examples, 0),
        RFC_TEST("rfc7515_a2_rs256", test_rfc7515_example, rfc7515_examples, 1),
        RFC_TEST("rfc7515_a3_es256", test_rfc7515_example, rfc7515_examples, 2),
        RFC_TEST("rfc7515_a4_es512", test_rfc7515_example, rfc7515_examples, 3),
    };
#undef RFC_TEST
    return cmocka_run_group_tests(tests, NULL, NULL);
}
