// SPDX-License-Identifier: Apache-2.0
/* Claim checks of SPEC §3 at their boundaries: leeway edges, types, required, issuer, audience. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "jose/claims.h"

#define NOW 1700000000

static const char *const exp_only[] = {"exp"};
static const struct gh_claim_rules base = {
    .now = NOW, .leeway = 60, .required = exp_only, .n_required = 1};

/* Checks the claims given as JSON text; *claim_out gets the claim at fault. */
static int check(const char *json, const struct gh_claim_rules *rules, const char **claim_out)
{
    json_error_t err;
    json_t *claims = json_loads(json, 0, &err);
    const char *claim = NULL;
    assert_non_null(claims);
    int rc = gh_claims_check(claims, rules, &claim);
    if (claim_out != NULL)
        *claim_out = claim;
    if (rc == GH_OK)
        assert_null(claim);
    json_decref(claims);
    return rc;
}

static int check_exp(long long exp)
{
    char json[64];
    snprintf(json, sizeof json, "{\"exp\":%lld}", exp);
    return check(json, &base, NULL);
}

static void test_exp_with_leeway(void **state)
{
    (void)state;
    assert_int_equal(check_exp(NOW + 1), GH_OK);
    assert_int_equal(check_exp(NOW), GH_OK); /* within leeway */
    assert_int_equal(check_exp(NOW - 59), GH_OK);
    assert_int_equal(check_exp(NOW - 60), GH_ERR_EXPIRED); /* now >= exp + leeway */
    assert_int_equal(check_exp(NOW - 100000), GH_ERR_EXPIRED);
    assert_int_equal(check("{\"exp\":1699999940.5}", &base, NULL), GH_ERR_EXPIRED); /* floor */
    assert_int_equal(check("{\"exp\":1699999941.5}", &base, NULL), GH_OK);
    struct gh_claim_rules strict = base;
    strict.leeway = 0;
    assert_int_equal(check("{\"exp\":1700000000}", &strict, NULL), GH_ERR_EXPIRED);
    assert_int_equal(check("{\"exp\":1700000001}", &strict, NULL), GH_OK);
}

static void test_nbf_and_iat(void **state)
{
    const char *claim;
    (void)state;
    assert_int_equal(check("{\"exp\":1800000000,\"nbf\":1700000060}", &base, NULL), GH_OK);
    assert_int_equal(check("{\"exp\":1800000000,\"nbf\":1700000061}", &base, &claim),
                     GH_ERR_NOT_YET_VALID);
    assert_string_equal(claim, "nbf");
    assert_int_equal(check("{\"exp\":1800000000,\"iat\":1700000060}", &base, NULL), GH_OK);
    assert_int_equal(check("{\"exp\":1800000000,\"iat\":1700000061}", &base, &claim),
                     GH_ERR_ISSUED_IN_FUTURE);
    assert_string_equal(claim, "iat");
    assert_int_equal(check("{\"exp\":1800000000,\"iat\":1,\"nbf\":-5}", &base, NULL), GH_OK);
}

static void test_types(void **state)
{
    static const char *const bad[] = {
        "{\"exp\":\"1800000000\"}",
        "{\"exp\":true}",
        "{\"exp\":null}",
        "{\"exp\":[1800000000]}",
        "{\"exp\":{}}",
        "{\"exp\":1e300}",
        "{\"exp\":-1e300}",
        "{\"exp\":253402300800}",
        "{\"exp\":1800000000,\"nbf\":\"0\"}",
        "{\"exp\":1800000000,\"iat\":false}",
        "{\"exp\":1800000000,\"iss\":5}",
    };
    const char *claim;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(check(bad[i], &base, NULL), GH_ERR_CLAIM_TYPE);
    /* a type error wins over a missing required claim: both are wrong, the type is named first */
    assert_int_equal(check("{\"nbf\":\"x\"}", &base, &claim), GH_ERR_CLAIM_TYPE);
    assert_string_equal(claim, "nbf");
    assert_int_equal(check("{\"exp\":253402300799}", &base, NULL), GH_OK);
}

static void test_required(void **state)
{
    static const char *const req[] = {"exp", "sub", "scope"};
    struct gh_claim_rules rules = base;
    const char *claim;
    (void)state;
    rules.required = req;
    rules.n_required = 3;
    assert_int_equal(check("{\"exp\":1800000000,\"sub\":\"a\",\"scope\":null}", &rules, NULL),
                     GH_OK);
    assert_int_equal(check("{\"exp\":1800000000,\"scope\":\"x\"}", &rules, &claim),
                     GH_ERR_MISSING_CLAIM);
    assert_string_equal(claim, "sub");
    assert_int_equal(check("{\"sub\":\"a\"}", &base, &claim), GH_ERR_MISSING_CLAIM);
    assert_string_equal(claim, "exp");
    rules.n_required = 0; /* none required: a token without exp passes */
    assert_int_equal(check("{\"sub\":\"a\"}", &rules, NULL), GH_OK);
}

static void test_issuer(void **state)
{
    static const char *const allowed[] = {"https://a.example", "https://b.example"};
    struct gh_claim_rules rules = base;
    const char *claim;
    (void)state;
    rules.issuer = "https://idp.example";
    assert_int_equal(check("{\"exp\":1800000000,\"iss\":\"https://idp.example\"}", &rules, NULL),
                     GH_OK);
    assert_int_equal(check("{\"exp\":1800000000,\"iss\":\"https://idp.example/\"}", &rules, NULL),
                     GH_ERR_WRONG_ISSUER);
    assert_int_equal(check("{\"exp\":1800000000,\"iss\":\"HTTPS://IDP.EXAMPLE\"}", &rules, NULL),
                     GH_ERR_WRONG_ISSUER);
    assert_int_equal(check("{\"exp\":1800000000}", &rules, &claim), GH_ERR_MISSING_CLAIM);
    assert_string_equal(claim, "iss");
    rules.issuer = NULL;
    rules.allowed_issuers = allowed;
    rules.n_allowed_issuers = 2;
    assert_int_equal(check("{\"exp\":1800000000,\"iss\":\"https://b.example\"}", &rules, NULL),
                     GH_OK);
    assert_int_equal(check("{\"exp\":1800000000,\"iss\":\"https://c.example\"}", &rules, NULL),
                     GH_ERR_WRONG_ISSUER);
    /* both: the provider's issuer and the allow list must agree */
    rules.issuer = "https://a.example";
    assert_int_equal(check("{\"exp\":1800000000,\"iss\":\"https://b.example\"}", &rules, NULL),
                     GH_ERR_WRONG_ISSUER);
}

static void test_audience(void **state)
{
    static const char *const auds[] = {"orders", "billing"};
    struct gh_claim_rules rules = base;
    (void)state;
    rules.audiences = auds;
    rules.n_audiences = 2;
    assert_int_equal(check("{\"exp\":1800000000,\"aud\":\"billing\"}", &rules, NULL), GH_OK);
    assert_int_equal(check("{\"exp\":1800000000,\"aud\":[\"x\",\"orders\"]}", &rules, NULL), GH_OK);
    assert_int_equal(check("{\"exp\":1800000000,\"aud\":\"Orders\"}", &rules, NULL),
                     GH_ERR_WRONG_AUDIENCE);
    assert_int_equal(check("{\"exp\":1800000000,\"aud\":[]}", &rules, NULL), GH_ERR_WRONG_AUDIENCE);
    assert_int_equal(check("{\"exp\":1800000000,\"aud\":[\"x\",\"y\"]}", &rules, NULL),
                     GH_ERR_WRONG_AUDIENCE);
    assert_int_equal(check("{\"exp\":1800000000,\"aud\":[\"orders\",1]}", &rules, NULL),
                     GH_ERR_CLAIM_TYPE);
    assert_int_equal(check("{\"exp\":1800000000,\"aud\":{\"a\":\"orders\"}}", &rules, NULL),
                     GH_ERR_CLAIM_TYPE);
    assert_int_equal(check("{\"exp\":1800000000}", &rules, NULL), GH_ERR_MISSING_CLAIM);
    /* without configured audiences, aud is not looked at */
    assert_int_equal(check("{\"exp\":1800000000,\"aud\":5}", &base, NULL), GH_OK);
}

static void test_order_of_checks(void **state)
{
    static const char *const auds[] = {"orders"};
    struct gh_claim_rules rules = base;
    (void)state;
    rules.issuer = "https://idp.example";
    rules.audiences = auds;
    rules.n_audiences = 1;
    /* expired and wrong issuer and wrong audience: expiry is reported */
    assert_int_equal(check("{\"exp\":1,\"iss\":\"x\",\"aud\":\"y\"}", &rules, NULL),
                     GH_ERR_EXPIRED);
    assert_int_equal(check("{\"exp\":1800000000,\"iss\":\"x\",\"aud\":\"y\"}", &rules, NULL),
                     GH_ERR_WRONG_ISSUER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_with_leeway), cmocka_unit_test(test_nbf_and_iat),
        cmocka_unit_test(test_types),           cmocka_unit_test(test_required),
        cmocka_unit_test(test_issuer),          cmocka_unit_test(test_audience),
        cmocka_unit_test(test_order_of_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
