// SPDX-License-Identifier: Apache-2.0
/*
 * The verified-token cache, through the pipeline that uses it and on its own. Through
 * gh_gateway_decide: a token verified once is a hit the next time, and only that exact token; a
 * record dies at the token's exp plus leeway (the request then gets the full path's refusal), at
 * the cache's TTL, when the clock goes back, when the configuration snapshot or its generation
 * changes, when the provider publishes another key set (a key dropped by rotation is refused
 * again) or can no longer serve its keys; refusals and tokens whose profile key expires soon are
 * never cached; and a hit still goes through authorization. On its own: 100,000 records fit in
 * a fixed table and byte ceiling, and a full set gives up its least recently used way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base64url.h"
#include "common/error.h"
#include "gateway/pipeline.h"
#include "gateway/tokencache.h"
#include "mockidp.h"
#include "oidc/provider.h"
#include "testkit.h"

#define NOW        1700000000LL /* the request clock, in seconds */
#define ALLOWED_IP "203.0.113.9"
#define DENIED_IP  "10.1.2.3"
#define LEEWAY     60
#define KEY_MAXAGE 60   /* the mock IdP's Cache-Control: the key set expires at NOW + 60 s */
#define MAX_STALE  1000 /* ms past that expiry the provider still serves its keys */

enum signer { S_RSA, S_STRANGER, S_IDP, S_IDP_NEW, S_COUNT };
enum pkey { K_PEM, K_NOEXP, K_GRACE, K_OIDC, K_COUNT };

struct world {
    struct gh_testkey signers[S_COUNT];
    char plain[K_COUNT][48];
    struct gh_gateway_settings settings;
    struct gh_config *config; /* generation 7 */
    struct gh_mockidp *idp;
    struct gh_oidc_options options;
    struct gh_oidc_manager *manager;
    struct gh_provider *provider;
    char issuer[128], discovery_url[256];
};

static atomic_llong fake_now_ms;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&fake_now_ms);
}

/* ---- the configuration document ---- */

static void make_plain_key(int k, char out[48])
{
    char seed[40];
    unsigned char bytes[SHA256_DIGEST_LENGTH];

    snprintf(seed, sizeof seed, "token cache test key %d", k);
    SHA256((const unsigned char *)seed, strlen(seed), bytes);
    memcpy(out, "gk_", 3);
    gh_b64url_encode(bytes, sizeof bytes, out + 3);
    out[46] = '\0';
}

static json_t *key_json(const char *id, const char *profile_id, const char *plain,
                        int64_t expires_at)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1], when[32], prefix[9];
    time_t t = (time_t)expires_at;
    struct tm tm;

    SHA256((const unsigned char *)plain, strlen(plain), digest);
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(prefix, sizeof prefix, "%.8s", plain);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "id", id, "profile_id", profile_id, "prefix",
                     prefix, "hash", hex, "created_at", "2023-01-01T00:00:00Z", "expires_at",
                     expires_at ? json_string(when) : json_null());
}

static char *pem_of(const struct gh_testkey *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *pem = NULL;
    long len;

    if (bio != NULL && PEM_write_bio_PUBKEY(bio, key->priv) == 1 &&
        (len = BIO_get_mem_data(bio, &data)) > 0)
        pem = strndup(data, (size_t)len);
    BIO_free(bio);
    return pem;
}

/* A profile with the store's fields; `jwt_key` NULL makes it an oidc profile of the mock IdP. */
static json_t *profile_json(const struct world *w, const char *id, const char *jwt_key,
                            const char *required, const char *ip_deny)
{
    json_t *p =
        json_pack("{s:s, s:s, s:s, s:s, s:b, s:[s], s:n, s:n, s:[], s:[], s:[s], s:i, "
                  "s:[], s:[]}",
                  "id", id, "name", id, "client_id", "cli_active000001", "auth_type",
                  jwt_key ? "jwt" : "oidc", "active", 1, "collection_ids", "col_orders000001",
                  "policy_id", "key_claim", "allowed_issuers", "audiences", "algorithms", "RS256",
                  "leeway_seconds", LEEWAY, "ip_allow", "ip_deny");
    json_object_set_new(p, "required_claims", json_array());
    if (required != NULL)
        json_array_append_new(json_object_get(p, "required_claims"), json_string(required));
    if (ip_deny != NULL)
        json_array_append_new(json_object_get(p, "ip_deny"), json_string(ip_deny));
    json_object_set_new(p, "jwt_key", jwt_key ? json_string(jwt_key) : json_null());
    json_object_set_new(p, "oidc_discovery_url",
                        jwt_key ? json_null() : json_string(w->discovery_url));
    json_object_set_new(p, "oidc_jwks_uri", json_null());
    return p;
}

static json_t *config_doc(const struct world *w, int generation)
{
    char *pem = pem_of(&w->signers[S_RSA]);
    json_t *doc = json_pack(
        "{s:[{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:i}], s:[{s:s, s:s, s:s, s:s, s:n, s:b, s:n}],"
        " s:[{s:s, s:s, s:s, s:b}], s:[], s:[o, o, o, o], s:[o, o, o, o], s:i}",
        "collections", "id", "col_orders000001", "name", "orders", "version", "v1", "path",
        "/orders/v1", "upstream", "http://127.0.0.1:9/base", "active", 1, "forward_authorization",
        1, "timeout_ms", 30000, "endpoints", "id", "ep_itemslist0001", "collection_id",
        "col_orders000001", "method", "GET", "path", "/items", "name", "active", 1, "timeout_ms",
        "clients", "id", "cli_active000001", "name", "client", "description", "", "active", 1,
        "policies", "profiles", profile_json(w, "ap_pem0000000001", pem, "exp", "10.0.0.0/8"),
        profile_json(w, "ap_noexp00000001", pem, NULL, NULL),
        profile_json(w, "ap_grace00000001", pem, "exp", NULL),
        profile_json(w, "ap_oidc000000001", NULL, "exp", NULL), "keys",
        key_json("key_testkey00001", "ap_pem0000000001", w->plain[K_PEM], 0),
        key_json("key_testkey00002", "ap_noexp00000001", w->plain[K_NOEXP], 0),
        /* a key in a rotation's grace period, ending within the cache's TTL */
        key_json("key_testkey00003", "ap_grace00000001", w->plain[K_GRACE], NOW + 100),
        key_json("key_testkey00004", "ap_oidc000000001", w->plain[K_OIDC], 0), "generation",
        generation);
    free(pem);
    return doc;
}

/* A snapshot as the publisher makes it: built, then the oidc profile wired to its provider. */
static struct gh_config *build_config(const struct world *w, int generation)
{
    json_t *doc = config_doc(w, generation);
    struct gh_config *c = NULL;

    assert_int_equal(gh_config_build(doc, &c), GH_OK);
    json_decref(doc);
    for (size_t i = 0; i < c->n_profiles; i++) {
        if (strcmp(c->profiles[i].id, "ap_oidc000000001") == 0)
            c->profiles[i].provider = w->provider;
    }
    return c;
}

/* ---- fixture ---- */

static void publish_keys(struct world *w, const enum signer *which, size_t n)
{
    char doc[8192] = "{\"keys\":[";

    for (size_t i = 0; i < n; i++) {
        char *jwk = gh_testkey_public_jwk(&w->signers[which[i]]);
        strcat(doc, i ? "," : "");
        strcat(doc, jwk);
        free(jwk);
    }
    strcat(doc, "]}");
    gh_mockidp_set_json(w->idp, "/jwks", 200, doc, "Cache-Control: max-age=60\r\n");
}

static int start_idp(struct world *w)
{
    static const enum signer first[] = {S_IDP};

    if ((w->idp = gh_mockidp_start()) == NULL)
        return -1;
    snprintf(w->issuer, sizeof w->issuer, "%s", gh_mockidp_base_url(w->idp));
    snprintf(w->discovery_url, sizeof w->discovery_url, "%s/.well-known/openid-configuration",
             w->issuer);
    gh_mockidp_serve_discovery(w->idp, NULL, "/jwks");
    publish_keys(w, first, 1);
    atomic_store(&fake_now_ms, NOW * 1000);
    gh_oidc_options_default(&w->options);
    w->options.now_ms = fake_clock;
    w->options.max_stale_ms = MAX_STALE;
    if (gh_oidc_manager_new(&w->options, &w->manager) != GH_OK ||
        gh_oidc_provider_get(w->manager, GH_PROVIDER_DISCOVERY, w->discovery_url, &w->provider) !=
            GH_OK)
        return -1;
    return gh_provider_wait_ready(w->provider, 5000) == GH_OK ? 0 : -1;
}

static int group_setup(void **state)
{
    static const char *const kids[S_COUNT] = {"", "", "idp1", "idp-new"};
    struct world *w = calloc(1, sizeof *w);

    if (w == NULL)
        return -1;
    for (int s = 0; s < S_COUNT; s++) {
        if (gh_testkey_generate(GH_ALG_RS256, kids[s], 0, &w->signers[s]) != 0)
            return -1;
    }
    for (int k = 0; k < K_COUNT; k++)
        make_plain_key(k, w->plain[k]);
    if (start_idp(w) != 0 ||
        gh_key_claims_parse(GH_KEY_CLAIMS_DEFAULT, &w->settings.default_claims) != GH_OK)
        return -1;
    w->config = build_config(w, 7);
    *state = w;
    return 0;
}

static int group_teardown(void **state)
{
    struct world *w = *state;

    gh_config_unref(w->config);
    gh_oidc_manager_free(w->manager);
    gh_mockidp_stop(w->idp);
    gh_key_claims_clear(&w->settings.default_claims);
    for (int s = 0; s < S_COUNT; s++)
        gh_testkey_clear(&w->signers[s]);
    free(w);
    return 0;
}

/* ---- requests ---- */

/* "Bearer <JWT>" for profile key `k` signed by `s`: `extra` is more payload members (each with
 * a leading comma), e.g. ",\"exp\":1700000600". IdP tokens get the issuer and their kid. */
static char *bearer(const struct world *w, enum signer s, enum pkey k, const char *extra)
{
    char header[64], payload[1024], *token, *out;
    int idp = s == S_IDP || s == S_IDP_NEW;

    snprintf(header, sizeof header,
             idp ? "{\"alg\":\"RS256\",\"kid\":\"%s\"}" : "{\"alg\":\"RS256\"}", w->signers[s].kid);
    snprintf(payload, sizeof payload,
             "{\"https://gatehouse.dev/key\":\"%s\",\"sub\":\"user-1\"%s%s%s%s}", w->plain[k],
             idp ? ",\"iss\":\"" : "", idp ? w->issuer : "", idp ? "\"" : "", extra);
    token = gh_test_sign(&w->signers[s], header, payload);
    assert_non_null(token);
    out = malloc(strlen(token) + 8);
    sprintf(out, "Bearer %s", token);
    free(token);
    return out;
}

/* A token valid for ten minutes from NOW; `jti` tells tokens apart. */
static char *valid_token(const struct world *w, enum signer s, enum pkey k, int jti)
{
    char extra[96];

    snprintf(extra, sizeof extra, ",\"exp\":%lld,\"jti\":\"%d\"", NOW + 600, jti);
    return bearer(w, s, k, extra);
}

struct call {
    const struct gh_config *config; /* NULL: the world's */
    struct gh_token_cache *cache;
    const char *authorization;
    const char *ip; /* NULL: ALLOWED_IP */
    int64_t now;    /* 0: NOW */
    int explain, after_refetch;
};

static void decide(const struct world *w, const struct call *c, struct gh_decision *d)
{
    struct gh_request_view req = {0};
    const char *ip = c->ip != NULL ? c->ip : ALLOWED_IP;

    req.method = "GET";
    req.method_len = 3;
    req.path = "/orders/v1/items";
    req.path_len = strlen(req.path);
    req.authorization = c->authorization;
    req.authorization_len = strlen(c->authorization);
    req.family = 4;
    assert_int_equal(inet_pton(AF_INET, ip, req.addr), 1);
    req.explain = c->explain;
    req.cache = c->cache;
    gh_gateway_decide(&w->settings, c->config ? c->config : w->config, &req, c->now ? c->now : NOW,
                      c->after_refetch, d);
}

/* Decides `c` and checks the status, the reason word of a 401 (NULL: any) and whether the
 * verification came from the cache. */
static void expect(const struct world *w, const char *what, const struct call *c, int status,
                   const char *reason, int hit)
{
    struct gh_decision d;

    decide(w, c, &d);
    if (d.status != status)
        fail_msg("%s: status %d (%s), want %d", what, d.status, d.message, status);
    if (reason != NULL && strcmp(gh_error_reason(d.reason), reason) != 0)
        fail_msg("%s: reason %s, want %s", what, gh_error_reason(d.reason), reason);
    if (d.cache_hit != hit)
        fail_msg("%s: cache_hit %d, want %d", what, d.cache_hit, hit);
    if (status == 200 && d.claims_b64 == NULL)
        fail_msg("%s: allowed without claims", what);
    gh_decision_clear(&d);
}

static struct gh_token_cache *small_cache(void)
{
    struct gh_token_cache *c = NULL;

    assert_int_equal(gh_token_cache_new(64, 1 << 20, &c), GH_OK);
    return c;
}

static uint64_t inserts(const struct gh_token_cache *c)
{
    struct gh_token_cache_stats s;

    gh_token_cache_stats(c, &s);
    return s.inserts;
}

/* ---- through the pipeline ---- */

static void test_hit_after_miss(void **state)
{
    struct world *w = *state;
    struct gh_token_cache *cache = small_cache();
    char *auth = valid_token(w, S_RSA, K_PEM, 1);
    struct gh_decision first, again;

    decide(w, &(struct call){.cache = cache, .authorization = auth}, &first);
    assert_int_equal(first.status, 200);
    assert_false(first.cache_hit);
    assert_int_equal(inserts(cache), 1);
    decide(w, &(struct call){.cache = cache, .authorization = auth}, &again);
    assert_int_equal(again.status, 200);
    assert_true(again.cache_hit);
    /* a hit hands the request what verification gave it: the profile, claims and subject */
    assert_ptr_equal(again.profile, first.profile);
    assert_string_equal(again.claims_b64, first.claims_b64);
    assert_string_equal(again.subject, "user-1");
    gh_decision_clear(&first);
    gh_decision_clear(&again);

    /* with explain, a hit says so in the signature step */
    decide(w, &(struct call){.cache = cache, .authorization = auth, .explain = 1}, &again);
    assert_true(again.cache_hit);
    int found = 0;
    for (size_t i = 0; i < again.n_steps; i++)
        found |= strcmp(again.steps[i].name, "signature") == 0 &&
                 strcmp(again.steps[i].detail, "verified earlier (cache)") == 0;
    assert_true(found);
    gh_decision_clear(&again);
    /* no cache (explain's case): every request is verified */
    expect(w, "no cache", &(struct call){.authorization = auth}, 200, NULL, 0);
    free(auth);
    gh_token_cache_free(cache);
}

static void test_other_token_misses(void **state)
{
    struct world *w = *state;
    struct gh_token_cache *cache = small_cache();
    char *a = valid_token(w, S_RSA, K_PEM, 1), *b = valid_token(w, S_RSA, K_PEM, 2);

    expect(w, "a, first", &(struct call){.cache = cache, .authorization = a}, 200, NULL, 0);
    expect(w, "b, same profile", &(struct call){.cache = cache, .authorization = b}, 200, NULL, 0);
    expect(w, "a, again", &(struct call){.cache = cache, .authorization = a}, 200, NULL, 1);
    /* one byte of the signature changed: another token, refused by the full path */
    a[strlen(a) - 3] = a[strlen(a) - 3] == 'A' ? 'B' : 'A';
    expect(w, "a, altered", &(struct call){.cache = cache, .authorization = a}, 401,
           "bad_signature", 0);
    free(a);
    free(b);
    gh_token_cache_free(cache);
}

static void test_expiry_respected(void **state)
{
    struct world *w = *state;
    struct gh_token_cache *cache = small_cache();
    char extra[64];

    snprintf(extra, sizeof extra, ",\"exp\":%lld", NOW + 10);
    char *soon = bearer(w, S_RSA, K_PEM, extra), *forever = bearer(w, S_RSA, K_NOEXP, "");

    /* exp + leeway is the last second served, from the cache as without it */
    expect(w, "soon", &(struct call){.cache = cache, .authorization = soon}, 200, NULL, 0);
    expect(w, "soon, within the leeway",
           &(struct call){.cache = cache, .authorization = soon, .now = NOW + 10 + LEEWAY - 1}, 200,
           NULL, 1);
    expect(w, "soon, past the leeway",
           &(struct call){.cache = cache, .authorization = soon, .now = NOW + 10 + LEEWAY}, 401,
           "expired", 0);
    /* a fractional exp counts down to its second, as in the claim checks */
    snprintf(extra, sizeof extra, ",\"exp\":%lld.5", NOW + 10);
    char *fraction = bearer(w, S_RSA, K_PEM, extra);
    expect(w, "fraction", &(struct call){.cache = cache, .authorization = fraction}, 200, NULL, 0);
    expect(w, "fraction, within the leeway",
           &(struct call){.cache = cache, .authorization = fraction, .now = NOW + 10 + LEEWAY - 1},
           200, NULL, 1);
    expect(w, "fraction, past the leeway",
           &(struct call){.cache = cache, .authorization = fraction, .now = NOW + 10 + LEEWAY}, 401,
           "expired", 0);
    free(fraction);
    /* a token without exp is verified again once the TTL is up */
    expect(w, "no exp", &(struct call){.cache = cache, .authorization = forever}, 200, NULL, 0);
    expect(w, "no exp, within the TTL",
           &(struct call){
               .cache = cache, .authorization = forever, .now = NOW + GH_TOKEN_CACHE_TTL - 1},
           200, NULL, 1);
    expect(
        w, "no exp, TTL over",
        &(struct call){.cache = cache, .authorization = forever, .now = NOW + GH_TOKEN_CACHE_TTL},
        200, NULL, 0);
    /* the clock went back before the check: nbf and iat could say otherwise now */
    expect(w, "clock back",
           &(struct call){.cache = cache, .authorization = forever, .now = NOW - 1}, 200, NULL, 0);
    free(soon);
    free(forever);
    gh_token_cache_free(cache);
}

static void test_new_config_misses(void **state)
{
    struct world *w = *state;
    struct gh_token_cache *cache = small_cache();
    char *auth = valid_token(w, S_RSA, K_PEM, 1);
    struct gh_config *next = build_config(w, 8), *same_generation = build_config(w, 7);

    expect(w, "first", &(struct call){.cache = cache, .authorization = auth}, 200, NULL, 0);
    expect(w, "cached", &(struct call){.cache = cache, .authorization = auth}, 200, NULL, 1);
    expect(w, "next generation",
           &(struct call){.config = next, .cache = cache, .authorization = auth}, 200, NULL, 0);
    expect(w, "next generation, cached",
           &(struct call){.config = next, .cache = cache, .authorization = auth}, 200, NULL, 1);
    /* another snapshot of the same generation is still another snapshot */
    expect(w, "same generation, other snapshot",
           &(struct call){.config = same_generation, .cache = cache, .authorization = auth}, 200,
           NULL, 0);
    expect(w, "back to the first", &(struct call){.cache = cache, .authorization = auth}, 200, NULL,
           0);
    expect(w, "first, cached", &(struct call){.cache = cache, .authorization = auth}, 200, NULL, 1);
    /* the same address with another generation (a snapshot freed and its memory reused) */
    w->config->generation++;
    expect(w, "same address, other generation",
           &(struct call){.cache = cache, .authorization = auth}, 200, NULL, 0);
    w->config->generation--;
    gh_config_unref(next);
    gh_config_unref(same_generation);
    free(auth);
    gh_token_cache_free(cache);
}

static void test_key_rotation_misses(void **state)
{
    static const enum signer both[] = {S_IDP, S_IDP_NEW}, rotated[] = {S_IDP_NEW},
                             original[] = {S_IDP};
    struct world *w = *state;
    struct gh_token_cache *cache = small_cache();
    char *auth = valid_token(w, S_IDP, K_OIDC, 1);
    struct gh_decision d;

    expect(w, "first", &(struct call){.cache = cache, .authorization = auth}, 200, NULL, 0);
    expect(w, "cached", &(struct call){.cache = cache, .authorization = auth}, 200, NULL, 1);
    /* a new key set: verified again, even though its key is still there */
    publish_keys(w, both, 2);
    assert_int_equal(gh_provider_check_now(w->provider, 5000), GH_OK);
    expect(w, "new key set", &(struct call){.cache = cache, .authorization = auth}, 200, NULL, 0);
    expect(w, "new key set, cached", &(struct call){.cache = cache, .authorization = auth}, 200,
           NULL, 1);
    /* its key rotated out: the cache must not vouch for it */
    publish_keys(w, rotated, 1);
    assert_int_equal(gh_provider_check_now(w->provider, 5000), GH_OK);
    decide(w, &(struct call){.cache = cache, .authorization = auth}, &d);
    assert_int_equal(d.outcome, GH_OUTCOME_REFETCH);
    assert_false(d.cache_hit);
    gh_decision_clear(&d);
    expect(w, "key gone", &(struct call){.cache = cache, .authorization = auth, .after_refetch = 1},
           401, "unknown_kid", 0);
    publish_keys(w, original, 1);
    assert_int_equal(gh_provider_check_now(w->provider, 5000), GH_OK);
    free(auth);
    gh_token_cache_free(cache);
}

static void test_unusable_provider_refuses(void **state)
{
    struct world *w = *state;
    struct gh_token_cache *cache = small_cache();
    char *auth = valid_token(w, S_IDP, K_OIDC, 2);
    /* within the record's life, but past the key set's expiry plus max_stale */
    int64_t later = NOW + KEY_MAXAGE + MAX_STALE / 1000 + 1;

    expect(w, "first", &(struct call){.cache = cache, .authorization = auth}, 200, NULL, 0);
    expect(w, "cached", &(struct call){.cache = cache, .authorization = auth}, 200, NULL, 1);
    expect(w, "keys too stale", &(struct call){.cache = cache, .authorization = auth, .now = later},
           401, "keys_unavailable", 0);
    free(auth);
    gh_token_cache_free(cache);
}

static void test_refusals_never_cached(void **state)
{
    struct world *w = *state;
    struct gh_token_cache *cache = small_cache();
    char past[64];

    snprintf(past, sizeof past, ",\"exp\":%lld", NOW - 3600);
    char *forged = valid_token(w, S_STRANGER, K_PEM, 1), *expired = bearer(w, S_RSA, K_PEM, past);
    /* the oidc profile's key in a token the IdP did not sign */
    char *not_idps = valid_token(w, S_RSA, K_OIDC, 1);

    for (int round = 0; round < 2; round++) {
        expect(w, "forged", &(struct call){.cache = cache, .authorization = forged}, 401,
               "bad_signature", 0);
        expect(w, "expired", &(struct call){.cache = cache, .authorization = expired}, 401,
               "expired", 0);
        expect(w, "not the IdP's", &(struct call){.cache = cache, .authorization = not_idps}, 401,
               NULL, 0);
    }
    assert_int_equal(inserts(cache), 0);
    free(forged);
    free(expired);
    free(not_idps);
    gh_token_cache_free(cache);
}

static void test_expiring_profile_key_not_cached(void **state)
{
    struct world *w = *state;
    struct gh_token_cache *cache = small_cache();
    char *auth = valid_token(w, S_RSA, K_GRACE, 1);

    /* the key ends at NOW + 100, before a record would: the binding is redone every time */
    expect(w, "grace key", &(struct call){.cache = cache, .authorization = auth}, 200, NULL, 0);
    expect(w, "grace key again", &(struct call){.cache = cache, .authorization = auth}, 200, NULL,
           0);
    assert_int_equal(inserts(cache), 0);
    expect(w, "grace over", &(struct call){.cache = cache, .authorization = auth, .now = NOW + 100},
           401, "unknown_profile_key", 0);
    free(auth);
    gh_token_cache_free(cache);
}

static void test_hit_still_authorizes(void **state)
{
    struct world *w = *state;
    struct gh_token_cache *cache = small_cache();
    char *auth = valid_token(w, S_RSA, K_PEM, 1);
    struct gh_decision d;

    expect(w, "allowed address", &(struct call){.cache = cache, .authorization = auth}, 200, NULL,
           0);
    decide(w, &(struct call){.cache = cache, .authorization = auth, .ip = DENIED_IP}, &d);
    assert_true(d.cache_hit);
    assert_int_equal(d.status, 403);
    assert_string_equal(d.error, "forbidden");
    assert_string_equal(d.message, "Forbidden: the client address is denied.");
    gh_decision_clear(&d);
    /* a refusal after the verification does not undo the verification */
    expect(w, "allowed address again", &(struct call){.cache = cache, .authorization = auth}, 200,
           NULL, 1);
    free(auth);
    gh_token_cache_free(cache);
}

/* Many tokens through a small cache: it holds at most its capacity and the last ones hit. */
static void test_pipeline_bounded(void **state)
{
    enum { TOKENS = 300, ENTRIES = 16 };
    struct world *w = *state;
    struct gh_token_cache *cache = NULL;
    struct gh_token_cache_stats s;
    char *last = NULL;

    assert_int_equal(gh_token_cache_new(ENTRIES, 1 << 20, &cache), GH_OK);
    for (int i = 0; i < TOKENS; i++) {
        char *auth = valid_token(w, S_RSA, K_PEM, 1000 + i);
        expect(w, "one of many", &(struct call){.cache = cache, .authorization = auth}, 200, NULL,
               0);
        gh_token_cache_stats(cache, &s);
        assert_true(s.entries <= ENTRIES);
        free(last);
        last = auth;
    }
    expect(w, "the latest", &(struct call){.cache = cache, .authorization = last}, 200, NULL, 1);
    gh_token_cache_stats(cache, &s);
    assert_int_equal(s.capacity, ENTRIES);
    assert_int_equal(s.inserts, TOKENS);
    assert_true(s.evictions >= TOKENS - ENTRIES);
    free(last);
    gh_token_cache_free(cache);
}

/* ---- the cache on its own ---- */

/* A record as the pipeline makes one, with claims of `claims_len` characters. */
static struct gh_token_record record(char *claims, size_t claims_len, int64_t now)
{
    memset(claims, 'e', claims_len);
    claims[claims_len] = '\0';
    return (struct gh_token_record){.config = NULL,
                                    .config_generation = 7,
                                    .checked_at = now,
                                    .until = now + 600,
                                    .claims_b64 = claims,
                                    .subject = "user-1"};
}

static void hash_of(struct gh_token_cache *c, unsigned n, unsigned char hash[GH_TOKEN_HASH_LEN])
{
    char token[32];
    int len = snprintf(token, sizeof token, "token-%u", n);

    assert_int_equal(gh_token_cache_hash(c, token, (size_t)len, hash), GH_OK);
}

static void test_bounded_100000(void **state)
{
    enum { TOKENS = 100000 };
    struct gh_token_cache *c = NULL;
    struct gh_token_cache_stats s;
    unsigned char hash[GH_TOKEN_HASH_LEN];
    static char claims[1101];
    struct gh_token_record r = record(claims, 1100, NOW);

    (void)state;
    assert_int_equal(gh_token_cache_new(GH_TOKEN_CACHE_ENTRIES, GH_TOKEN_CACHE_BYTES, &c), GH_OK);
    for (unsigned i = 0; i < TOKENS; i++) {
        hash_of(c, i, hash);
        gh_token_cache_insert(c, hash, &r);
        gh_token_cache_stats(c, &s);
        if (s.entries > s.capacity || s.bytes > s.max_bytes)
            fail_msg("after %u tokens: %zu entries, %zu bytes", i + 1, s.entries, s.bytes);
    }
    gh_token_cache_stats(c, &s);
    assert_int_equal(s.capacity, GH_TOKEN_CACHE_ENTRIES);
    assert_int_equal(s.max_bytes, GH_TOKEN_CACHE_BYTES);
    /* the claims (1108 bytes each with the subject) fill the byte ceiling before the table */
    assert_true(s.bytes <= GH_TOKEN_CACHE_BYTES);
    assert_true(s.bytes > GH_TOKEN_CACHE_BYTES - 4 * 1108);
    assert_int_equal(s.bytes, s.entries * 1108);
    assert_true(s.refused > 0);
    assert_int_equal(s.inserts + s.refused, TOKENS);
    /* the newest token is there, the first one long gone */
    hash_of(c, TOKENS - 1, hash);
    const struct gh_token_record *found = gh_token_cache_find(c, hash, NOW);
    assert_non_null(found);
    assert_string_equal(found->claims_b64, claims);
    assert_string_equal(found->subject, "user-1");
    hash_of(c, 0, hash);
    assert_null(gh_token_cache_find(c, hash, NOW));
    gh_token_cache_free(c);

    /* small claims: the table is what bounds it, every set full */
    static char small[101];
    r = record(small, 100, NOW);
    assert_int_equal(gh_token_cache_new(GH_TOKEN_CACHE_ENTRIES, GH_TOKEN_CACHE_BYTES, &c), GH_OK);
    for (unsigned i = 0; i < TOKENS; i++) {
        hash_of(c, i, hash);
        gh_token_cache_insert(c, hash, &r);
    }
    gh_token_cache_stats(c, &s);
    assert_int_equal(s.entries, GH_TOKEN_CACHE_ENTRIES);
    assert_int_equal(s.inserts, TOKENS);
    assert_int_equal(s.evictions, TOKENS - GH_TOKEN_CACHE_ENTRIES);
    assert_int_equal(s.bytes, GH_TOKEN_CACHE_ENTRIES * 108);
    gh_token_cache_free(c);
}

/* Hashes that share their first eight bytes land in one set; the last byte tells them apart. */
static void same_set(unsigned char hash[GH_TOKEN_HASH_LEN], unsigned char n)
{
    memset(hash, 0x5a, GH_TOKEN_HASH_LEN);
    hash[GH_TOKEN_HASH_LEN - 1] = n;
}

static void test_least_recently_used_goes(void **state)
{
    struct gh_token_cache *c = NULL;
    unsigned char h[6][GH_TOKEN_HASH_LEN];
    char claims[16];
    struct gh_token_record r = record(claims, 8, NOW);

    (void)state;
    assert_int_equal(gh_token_cache_new(64, 4096, &c), GH_OK);
    for (unsigned char i = 0; i < 6; i++)
        same_set(h[i], i);
    for (int i = 0; i < 4; i++)
        gh_token_cache_insert(c, h[i], &r);
    assert_non_null(gh_token_cache_find(c, h[0], NOW)); /* 1 is now the least recently used */
    gh_token_cache_insert(c, h[4], &r);
    assert_null(gh_token_cache_find(c, h[1], NOW));
    for (int i = 0; i < 5; i++)
        assert_true(i == 1 || gh_token_cache_find(c, h[i], NOW) != NULL);
    /* a dead record goes before any live one, whatever its use */
    r.until = NOW + 10;
    gh_token_cache_insert(c, h[2], &r);
    assert_non_null(gh_token_cache_find(c, h[2], NOW + 9));
    r.checked_at = NOW + 10;
    r.until = NOW + 20;
    gh_token_cache_insert(c, h[5], &r);
    assert_non_null(gh_token_cache_find(c, h[5], NOW + 10));
    assert_null(gh_token_cache_find(c, h[2], NOW + 10));
    assert_non_null(gh_token_cache_find(c, h[0], NOW + 10));
    /* forget drops one record */
    gh_token_cache_forget(c, h[0]);
    assert_null(gh_token_cache_find(c, h[0], NOW + 10));
    gh_token_cache_free(c);
}

static void test_limits(void **state)
{
    struct gh_token_cache *c = NULL;
    struct gh_token_cache_stats s;
    unsigned char hash[GH_TOKEN_HASH_LEN];
    static char big[20001];
    struct gh_token_record r;

    (void)state;
    assert_int_equal(gh_token_cache_new(0, 4096, &c), GH_ERR_INVALID_ARG);
    assert_int_equal(gh_token_cache_new(16, 0, &c), GH_ERR_INVALID_ARG);
    assert_null(c);
    gh_token_cache_free(NULL);
    assert_int_equal(gh_token_cache_new(5, 1 << 20, &c), GH_OK);
    gh_token_cache_stats(c, &s);
    assert_int_equal(s.capacity, 8); /* rounded up to a power of two */
    /* claims larger than any valid token's are refused, not truncated */
    r = record(big, 20000, NOW);
    same_set(hash, 1);
    gh_token_cache_insert(c, hash, &r);
    assert_null(gh_token_cache_find(c, hash, NOW));
    /* however far exp is, the TTL bounds a record */
    r = record(big, 100, NOW);
    r.until = NOW + 86400;
    gh_token_cache_insert(c, hash, &r);
    assert_non_null(gh_token_cache_find(c, hash, NOW + GH_TOKEN_CACHE_TTL - 1));
    assert_null(gh_token_cache_find(c, hash, NOW + GH_TOKEN_CACHE_TTL));
    /* a record dead on arrival is not stored */
    r.until = NOW;
    gh_token_cache_insert(c, hash, &r);
    gh_token_cache_stats(c, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(s.refused, 1);
    gh_token_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_after_miss),
        cmocka_unit_test(test_other_token_misses),
        cmocka_unit_test(test_expiry_respected),
        cmocka_unit_test(test_new_config_misses),
        cmocka_unit_test(test_key_rotation_misses),
        cmocka_unit_test(test_unusable_provider_refuses),
        cmocka_unit_test(test_refusals_never_cached),
        cmocka_unit_test(test_expiring_profile_key_not_cached),
        cmocka_unit_test(test_hit_still_authorizes),
        cmocka_unit_test(test_pipeline_bounded),
        cmocka_unit_test(test_bounded_100000),
        cmocka_unit_test(test_least_recently_used_goes),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
