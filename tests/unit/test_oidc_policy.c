// SPDX-License-Identifier: Apache-2.0
/* SPEC §4's rules without the network: URL schemes and loopback, discovery issuer, cache lifetime.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/error.h"
#include "oidc/policy.h"

static void test_url_rules(void **state)
{
    (void)state;
    assert_int_equal(
        gh_oidc_url_check("https://idp.example.com/.well-known/openid-configuration", 0), GH_OK);
    assert_int_equal(gh_oidc_url_check("https://idp.example.com:8443/keys", 0), GH_OK);
    assert_int_equal(gh_oidc_url_check("http://idp.example.com/keys", 0), GH_ERR_URL_INSECURE);
    assert_int_equal(gh_oidc_url_check("http://idp.example.com/keys", 1), GH_OK);
    assert_int_equal(gh_oidc_url_check("http://127.0.0.1:8080/keys", 0), GH_OK);
    assert_int_equal(gh_oidc_url_check("http://127.9.8.7/keys", 0), GH_OK);
    assert_int_equal(gh_oidc_url_check("http://localhost/keys", 0), GH_OK);
    assert_int_equal(gh_oidc_url_check("http://[::1]:9000/keys", 0), GH_OK);
    assert_int_equal(gh_oidc_url_check("http://128.0.0.1/keys", 0), GH_ERR_URL_INSECURE);
    assert_int_equal(gh_oidc_url_check("http://127.0.0.1.nip.io/keys", 0), GH_ERR_URL_INSECURE);
    assert_int_equal(gh_oidc_url_check("http://[::2]/keys", 0), GH_ERR_URL_INSECURE);
    assert_int_equal(gh_oidc_url_check("ftp://idp.example.com/keys", 1), GH_ERR_URL_INVALID);
    assert_int_equal(gh_oidc_url_check("file:///etc/passwd", 1), GH_ERR_URL_INVALID);
    assert_int_equal(gh_oidc_url_check("idp.example.com/keys", 1), GH_ERR_URL_INVALID);
    assert_int_equal(gh_oidc_url_check("https://", 1), GH_ERR_URL_INVALID);
    assert_int_equal(gh_oidc_url_check("", 1), GH_ERR_URL_INVALID);
    assert_int_equal(gh_oidc_url_check("https://exa mple.com/", 1), GH_ERR_URL_INVALID);
}

static void test_loopback_hosts(void **state)
{
    (void)state;
    assert_true(gh_oidc_host_is_loopback("127.0.0.1"));
    assert_true(gh_oidc_host_is_loopback("LOCALHOST"));
    assert_true(gh_oidc_host_is_loopback("::1"));
    assert_true(gh_oidc_host_is_loopback("[::1]"));
    assert_false(gh_oidc_host_is_loopback("localhost.example.com"));
    assert_false(gh_oidc_host_is_loopback("10.0.0.1"));
    assert_false(gh_oidc_host_is_loopback("[::ffff:10.0.0.1]"));
    assert_false(gh_oidc_host_is_loopback(""));
}

static void test_expected_issuer(void **state)
{
    char out[256];
    (void)state;
    assert_int_equal(
        gh_oidc_expected_issuer("https://idp.example.com/.well-known/openid-configuration", out,
                                sizeof out),
        GH_OK);
    assert_string_equal(out, "https://idp.example.com");
    assert_int_equal(gh_oidc_expected_issuer(
                         "https://idp.example.com/realms/acme/.well-known/openid-configuration",
                         out, sizeof out),
                     GH_OK);
    assert_string_equal(out, "https://idp.example.com/realms/acme");
    assert_int_equal(gh_oidc_expected_issuer("https://idp.example.com/keys", out, sizeof out),
                     GH_ERR_DISCOVERY_URL);
    assert_int_equal(gh_oidc_expected_issuer("/.well-known/openid-configuration", out, sizeof out),
                     GH_ERR_DISCOVERY_URL);
    assert_int_equal(
        gh_oidc_expected_issuer("https://a.example/.well-known/openid-configuration", out, 5),
        GH_ERR_DISCOVERY_URL);
}

static void test_ttl(void **state)
{
    const int64_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    (void)state;
    assert_int_equal(gh_oidc_ttl(NULL, NULL, NULL, now), GH_OIDC_TTL_DEFAULT);
    assert_int_equal(gh_oidc_ttl("max-age=3600", NULL, NULL, now), 3600);
    assert_int_equal(gh_oidc_ttl("public, max-age=120, must-revalidate", NULL, NULL, now), 120);
    assert_int_equal(gh_oidc_ttl("MAX-AGE=120", NULL, NULL, now), 120);
    assert_int_equal(gh_oidc_ttl("max-age=5", NULL, NULL, now), GH_OIDC_TTL_MIN);
    assert_int_equal(gh_oidc_ttl("max-age=0", NULL, NULL, now), GH_OIDC_TTL_MIN);
    assert_int_equal(gh_oidc_ttl("max-age=999999999999999999999999", NULL, NULL, now),
                     GH_OIDC_TTL_MAX);
    assert_int_equal(gh_oidc_ttl("no-store", NULL, NULL, now), GH_OIDC_TTL_MIN);
    assert_int_equal(gh_oidc_ttl("no-cache, max-age=600", NULL, NULL, now), GH_OIDC_TTL_MIN);
    assert_int_equal(gh_oidc_ttl("max-age=abc", NULL, NULL, now), GH_OIDC_TTL_DEFAULT);
    assert_int_equal(gh_oidc_ttl("private", NULL, NULL, now), GH_OIDC_TTL_DEFAULT);
    /* Expires relative to Date, or to now */
    assert_int_equal(
        gh_oidc_ttl(NULL, "Tue, 14 Nov 2023 23:13:20 GMT", "Tue, 14 Nov 2023 22:13:20 GMT", 0),
        3600);
    assert_int_equal(gh_oidc_ttl(NULL, "Tue, 14 Nov 2023 22:43:20 GMT", NULL, now), 1800);
    assert_int_equal(gh_oidc_ttl(NULL, "Tue, 14 Nov 2023 22:13:30 GMT", NULL, now),
                     GH_OIDC_TTL_MIN);
    assert_int_equal(gh_oidc_ttl(NULL, "0", NULL, now), GH_OIDC_TTL_MIN); /* invalid: expired */
    assert_int_equal(gh_oidc_ttl(NULL, "Wed, 14 Nov 2029 22:13:20 GMT", NULL, now),
                     GH_OIDC_TTL_MAX);
    /* max-age wins over Expires */
    assert_int_equal(gh_oidc_ttl("max-age=300", "Tue, 14 Nov 2023 23:13:20 GMT", NULL, now), 300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_rules),
        cmocka_unit_test(test_loopback_hosts),
        cmocka_unit_test(test_expected_issuer),
        cmocka_unit_test(test_ttl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
