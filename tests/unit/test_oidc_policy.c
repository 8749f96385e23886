// SPDX-License-Identifier: Apache-2.0
/* SPEC §4's rules without the network: URL schemes and loopback, discovery issuer, cache lifetime,
 * and which `iss` an oidc profile's tokens may carry (SPEC §3), on the shapes real IdPs publish.
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

#include "common/error.h"
#include "oidc/keyset.h"
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

/* Issue 11: a discovery document could point the key fetch at any loopback URL (SSRF into the
 * gateway's own host). What a provider leads to (jwks_uri, a redirect's Location) may reach this
 * host only when the provider's own URL is on a loopback host. */
static void test_led_to_urls_reach_loopback_only_from_loopback(void **state)
{
    static const char *const local[] = {"http://127.0.0.1:9000/",
                                        "http://127.0.0.1:9000/admin/v1/config",
                                        "https://127.0.0.1/",
                                        "http://127.1/",
                                        "http://2130706433/",
                                        "http://localhost/",
                                        "http://LOCALHOST./",
                                        "http://a.localhost:81/",
                                        "http://[::1]/",
                                        "http://[::ffff:127.0.0.1]/",
                                        "http://0.0.0.0/",
                                        "http://0/",
                                        "http://[::]/"};
    const char *idp = "https://idp.example/.well-known/openid-configuration";
    (void)state;
    for (size_t i = 0; i < sizeof local / sizeof *local; i++) {
        /* (plain http to 0.0.0.0 is refused as insecure first) */
        assert_int_not_equal(gh_oidc_url_check_from(idp, local[i], 0), GH_OK);
        assert_int_equal(gh_oidc_url_check_from(idp, local[i], 1), GH_ERR_URL_LOCAL);
        assert_int_equal(gh_oidc_url_check_from("https://idp.example/keys", local[i], 1),
                         GH_ERR_URL_LOCAL);
        /* from a loopback IdP (a test rig, a sidecar), loopback stays reachable */
        assert_int_equal(gh_oidc_url_check_from("http://127.0.0.1:8080/.well-known/"
                                                "openid-configuration",
                                                local[i], 1),
                         GH_OK);
        assert_int_equal(gh_oidc_url_check_from("http://localhost:8080/keys", local[i], 1), GH_OK);
    }
    assert_string_equal(gh_error_reason(GH_ERR_URL_LOCAL), "invalid_url");
    /* the other URL rules still apply, and other hosts are not this rule's business */
    assert_int_equal(gh_oidc_url_check_from(idp, "https://keys.idp.example/jwks", 0), GH_OK);
    assert_int_equal(gh_oidc_url_check_from(idp, "http://keys.idp.example/jwks", 0),
                     GH_ERR_URL_INSECURE);
    assert_int_equal(gh_oidc_url_check_from(idp, "ftp://keys.idp.example/jwks", 1),
                     GH_ERR_URL_INVALID);
    assert_int_equal(gh_oidc_url_check_from(idp, "https://127.0.0.1.idp.example/", 0), GH_OK);
}

/* What a failed fetch may report: everything for the provider's own origin, only "unreachable" or
 * "not a valid document" for another one. */
static void test_same_origin(void **state)
{
    (void)state;
    assert_true(gh_oidc_same_origin("https://idp.example/.well-known/openid-configuration",
                                    "https://idp.example/keys"));
    assert_true(gh_oidc_same_origin("https://IDP.example:443/a", "https://idp.example/b"));
    assert_false(gh_oidc_same_origin("https://idp.example/a", "http://idp.example/a"));
    assert_false(gh_oidc_same_origin("https://idp.example/a", "https://idp.example:8443/a"));
    assert_false(gh_oidc_same_origin("https://idp.example/a", "https://keys.idp.example/a"));
    assert_false(gh_oidc_same_origin("https://idp.example/a", "http://127.0.0.1:9000/a"));
    assert_false(gh_oidc_same_origin("https://idp.example/a", "not a url"));
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

/*
 * The issuer rules, on the shapes real IdPs publish.
 *
 * 1. Discovery (OpenID Connect Discovery 1.0 §4): the discovery URL is the issuer, less one
 *    terminating '/', followed by /.well-known/openid-configuration. So the document's issuer,
 *    less one terminating '/', must equal the URL without that suffix, by simple string
 *    comparison (no case folding, no other normalisation). Auth0's "https://TENANT.auth0.com/"
 *    is valid. Anything else is bad_discovery: the provider gets no keys.
 * 2. Tokens of an oidc profile: `iss` must equal the issuer exactly as the document spells it
 *    (Auth0's tokens carry the slash too) ...
 * 3. ... unless the profile's allowed_issuers is non-empty: then it replaces rule 2 and `iss`
 *    must be one of them (ADFS access tokens, Entra ID v1 tokens beside v2.0 discovery). The
 *    discovery rule 1 still applies: the keys still come from the checked discovery document.
 * 4. A token without a string `iss` is missing_claim.
 */
struct issuer_case {
    const char *name;
    const char *discovery_url;
    const char *doc_issuer; /* the discovery document's "issuer" */
    const char *token_iss;  /* NULL: the token has no iss */
    const char *allowed[3]; /* the profile's allowed_issuers, NULL-terminated */
    const char *reason;     /* "ok", "bad_discovery" or the token's refusal reason */
};

#define AUTH0   "https://acme.auth0.com"
#define OKTA    "https://acme.okta.com"
#define TENANT  "9188040d-6c67-4c5b-b112-36a304b66dad"
#define ENTRA   "https://login.microsoftonline.com/" TENANT
#define ENTRA1  "https://sts.windows.net/" TENANT "/"
#define ADFS    "https://adfs.example.com/adfs"
#define ADFS_AT "http://adfs.example.com/adfs/services/trust"
#define KC      "https://sso.example.com/realms/acme"
#define OL      "https://acme.onelogin.com/oidc/2"
#define WK      "/.well-known/openid-configuration"

static const struct issuer_case issuer_cases[] = {
    /* Auth0: the issuer ends in '/', and so does every token's iss */
    {"Auth0", AUTH0 WK, AUTH0 "/", AUTH0 "/", {NULL}, "ok"},
    {"Auth0, iss without the slash", AUTH0 WK, AUTH0 "/", AUTH0, {NULL}, "wrong_issuer"},
    {"Auth0 custom domain",
     "https://login.acme.com" WK,
     "https://login.acme.com/",
     "https://login.acme.com/",
     {NULL},
     "ok"},
    {"one slash only: two are not removed",
     AUTH0 WK,
     AUTH0 "//",
     AUTH0 "//",
     {NULL},
     "bad_discovery"},
    {"an issuer of another host",
     AUTH0 WK,
     "https://evil.example/",
     "https://evil.example/",
     {NULL},
     "bad_discovery"},
    {"simple string comparison: no case folding",
     AUTH0 WK,
     "https://ACME.auth0.com/",
     "https://ACME.auth0.com/",
     {NULL},
     "bad_discovery"},
    {"an issuer longer than the URL's", AUTH0 WK, AUTH0 "/x", AUTH0 "/x", {NULL}, "bad_discovery"},
    /* Okta custom authorization servers (the org server's access tokens are not for others) */
    {"Okta default authorization server",
     OKTA "/oauth2/default" WK,
     OKTA "/oauth2/default",
     OKTA "/oauth2/default",
     {NULL},
     "ok"},
    {"Okta authorization server by id",
     OKTA "/oauth2/aus1a2b3c4D5e6F7g8h9" WK,
     OKTA "/oauth2/aus1a2b3c4D5e6F7g8h9",
     OKTA "/oauth2/aus1a2b3c4D5e6F7g8h9",
     {NULL},
     "ok"},
    {"Okta: an org server token at a custom server's profile",
     OKTA "/oauth2/default" WK,
     OKTA "/oauth2/default",
     OKTA,
     {NULL},
     "wrong_issuer"},
    {"Okta: iss with a slash the document has not",
     OKTA "/oauth2/default" WK,
     OKTA "/oauth2/default",
     OKTA "/oauth2/default/",
     {NULL},
     "wrong_issuer"},
    /* Entra ID: v2.0 discovery; v1 tokens (accessTokenAcceptedVersion 1) say sts.windows.net */
    {"Entra ID v2.0 token", ENTRA "/v2.0" WK, ENTRA "/v2.0", ENTRA "/v2.0", {NULL}, "ok"},
    {"Entra ID v1 token at v2.0 discovery",
     ENTRA "/v2.0" WK,
     ENTRA "/v2.0",
     ENTRA1,
     {NULL},
     "wrong_issuer"},
    {"Entra ID v1 token, allowed_issuers names it",
     ENTRA "/v2.0" WK,
     ENTRA "/v2.0",
     ENTRA1,
     {ENTRA1, NULL},
     "ok"},
    {"Entra ID: allowed_issuers replaces the discovery issuer",
     ENTRA "/v2.0" WK,
     ENTRA "/v2.0",
     ENTRA "/v2.0",
     {ENTRA1, NULL},
     "wrong_issuer"},
    {"Entra ID: allowed_issuers naming both versions",
     ENTRA "/v2.0" WK,
     ENTRA "/v2.0",
     ENTRA "/v2.0",
     {ENTRA1, ENTRA "/v2.0", NULL},
     "ok"},
    {"Entra ID v1 discovery names sts.windows.net: refused",
     ENTRA WK,
     ENTRA1,
     ENTRA1,
     {NULL},
     "bad_discovery"},
    /* ADFS: access tokens carry the federation service identifier, ID tokens the issuer */
    {"ADFS ID token", ADFS WK, ADFS, ADFS, {NULL}, "ok"},
    {"ADFS access token", ADFS WK, ADFS, ADFS_AT, {NULL}, "wrong_issuer"},
    {"ADFS access token, allowed_issuers names it", ADFS WK, ADFS, ADFS_AT, {ADFS_AT, NULL}, "ok"},
    {"ADFS: https is not http",
     ADFS WK,
     ADFS,
     "https://adfs.example.com/adfs/services/trust",
     {ADFS_AT, NULL},
     "wrong_issuer"},
    /* Keycloak realms, also under the /auth prefix of versions before 17 */
    {"Keycloak realm", KC WK, KC, KC, {NULL}, "ok"},
    {"Keycloak: another realm's token",
     KC WK,
     KC,
     "https://sso.example.com/realms/other",
     {NULL},
     "wrong_issuer"},
    {"Keycloak before 17 (/auth)",
     "https://sso.example.com/auth/realms/acme" WK,
     "https://sso.example.com/auth/realms/acme",
     "https://sso.example.com/auth/realms/acme",
     {NULL},
     "ok"},
    /* OneLogin */
    {"OneLogin", OL WK, OL, OL, {NULL}, "ok"},
    {"OneLogin: iss of the v1 issuer",
     OL WK,
     OL,
     "https://acme.onelogin.com/oidc",
     {NULL},
     "wrong_issuer"},
    /* no iss at all */
    {"no iss", KC WK, KC, NULL, {NULL}, "missing_claim"},
    {"no iss, allowed_issuers set", ADFS WK, ADFS, NULL, {ADFS_AT, NULL}, "missing_claim"},
};

/* What a provider and the gateway decide for one case: "ok", "bad_discovery" or the reason. */
static const char *issuer_verdict(const struct issuer_case *c)
{
    char expected[512], error[512];
    char *issuer = NULL, *jwks_uri = NULL;
    const char *claim = NULL;
    size_t n_allowed = 0;
    int rc;

    assert_int_equal(gh_oidc_expected_issuer(c->discovery_url, expected, sizeof expected), GH_OK);
    json_t *doc =
        json_pack("{s:s, s:s}", "issuer", c->doc_issuer, "jwks_uri", "https://keys.example/jwks");
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    rc = gh_discovery_parse(text, strlen(text), expected, &issuer, &jwks_uri, error, sizeof error);
    free(text);
    if (rc != GH_OK) {
        assert_int_equal(rc, GH_ERR_DISCOVERY_ISSUER);
        assert_non_null(strstr(error, c->doc_issuer)); /* the operator sees what it said */
        return gh_error_reason(rc);
    }
    /* the key set's issuer is the document's, exactly as spelled */
    assert_string_equal(issuer, c->doc_issuer);
    while (c->allowed[n_allowed] != NULL)
        n_allowed++;
    struct gh_claim_rules rules = {.now = 1700000000, .leeway = 60};
    gh_oidc_issuer_rules(issuer, n_allowed > 0 ? c->allowed : NULL, n_allowed, &rules);
    json_t *claims = c->token_iss != NULL ? json_pack("{s:s}", "iss", c->token_iss) : json_object();
    rc = gh_claims_check(claims, &rules, &claim);
    json_decref(claims);
    free(issuer);
    free(jwks_uri);
    return rc == GH_OK ? "ok" : gh_error_reason(rc);
}

static void test_issuer_rules_of_real_idps(void **state)
{
    int failed = 0;
    (void)state;
    for (size_t i = 0; i < sizeof issuer_cases / sizeof issuer_cases[0]; i++) {
        const char *got = issuer_verdict(&issuer_cases[i]);
        if (strcmp(got, issuer_cases[i].reason) != 0) {
            print_error("%s: expected %s, got %s\n", issuer_cases[i].name, issuer_cases[i].reason,
                        got);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_issuer_fits(void **state)
{
    (void)state;
    assert_true(gh_oidc_issuer_fits(AUTH0, AUTH0, strlen(AUTH0)));
    assert_true(gh_oidc_issuer_fits(AUTH0, AUTH0 "/", strlen(AUTH0 "/")));
    assert_false(gh_oidc_issuer_fits(AUTH0, AUTH0 "//", strlen(AUTH0 "//")));
    assert_false(gh_oidc_issuer_fits(AUTH0, AUTH0 "x", strlen(AUTH0 "x")));
    assert_false(gh_oidc_issuer_fits(AUTH0, "https://acme.auth0.co", 21));
    assert_false(gh_oidc_issuer_fits(AUTH0, "", 0));
    assert_false(gh_oidc_issuer_fits(AUTH0, "/", 1));
    /* an escaped NUL in the document's issuer is part of it, not its end */
    assert_false(gh_oidc_issuer_fits(AUTH0, AUTH0 "\0/evil", strlen(AUTH0) + 6));
    assert_false(gh_oidc_issuer_fits(AUTH0, AUTH0 "\0", strlen(AUTH0) + 1));
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
        cmocka_unit_test(test_led_to_urls_reach_loopback_only_from_loopback),
        cmocka_unit_test(test_same_origin),
        cmocka_unit_test(test_expected_issuer),
        cmocka_unit_test(test_issuer_fits),
        cmocka_unit_test(test_issuer_rules_of_real_idps),
        cmocka_unit_test(test_ttl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
