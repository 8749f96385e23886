// SPDX-License-Identifier: Apache-2.0
/*
 * The gateway's decision for one request (SPEC §2, §3, §5) against a configuration built from a
 * document shaped like the store's export with secrets, so the test goes through the same snapshot
 * building as the server: routing (404/405, templates, ANY, refused path spellings), credentials,
 * token profiles and their keys, where a JWT carries its access profile key, verification with
 * static keys and with a mock IdP through the provider manager, authorization (403), the explain
 * steps, and the ownership of what a decision holds. Every token is signed here with the test kit,
 * every key is "gk_" + 43 base64url characters chosen here, stored as its SHA-256.
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
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base64url.h"
#include "common/error.h"
#include "gateway/pipeline.h"
#include "mockidp.h"
#include "oidc/provider.h"
#include "testkit.h"

#define NOW         1700000000LL /* the request clock, in seconds */
#define CLIENT_IP   "203.0.113.9"
#define HMAC_SECRET "forty-byte-shared-secret-for-hs256-tests"
#define ALL_ASYM    "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA"

#define COL_ORDERS  "col_orders000001"
#define COL_OFFLINE "col_offline00001"
#define COL_OTHER   "col_other0000001"
#define CLI_ON      "cli_active000001"
#define CLI_OFF     "cli_inactive0001"

/* ---- the world: signing keys, profile keys, the configuration, a mock IdP ---- */

enum signer { S_RSA, S_EC, S_HMAC, S_STRANGER, S_IDP, S_IDP_NEW, S_COUNT };

static const struct {
    enum gh_alg alg;
    const char *kid;
} signer_specs[S_COUNT] = {
    [S_RSA] = {GH_ALG_RS256, "rsa1"}, [S_EC] = {GH_ALG_ES256, "ec1"},
    [S_HMAC] = {GH_ALG_HS256, "hs1"}, [S_STRANGER] = {GH_ALG_RS256, "rsa1"},
    [S_IDP] = {GH_ALG_RS256, "idp1"}, [S_IDP_NEW] = {GH_ALG_RS256, "idp-new"},
};

/* Access profile keys; K_UNKNOWN is never stored. */
enum pkey {
    K_TOKEN,
    K_TOKEN_EXPIRED,
    K_TOKEN_GRACE,
    K_TOKEN_FRACTION,
    K_TOKEN_OFFSET,
    K_PEM,
    K_JWK,
    K_HMAC,
    K_RULES,
    K_CUSTOM,
    K_CUSTOM2,
    K_OIDC,
    K_OIDC_NOKEYS,
    K_INACTIVE,
    K_CLIENT_OFF,
    K_NOT_GRANTED,
    K_IP_DENY,
    K_IP_ALLOW4,
    K_IP_ALLOW6,
    K_TYPED,
    K_UNKNOWN,
    K_COUNT
};

/* Names for token templates: "<pem>" stands for the plain key K_PEM. */
static const struct {
    const char *name;
    enum pkey key;
} key_names[] = {
    {"token", K_TOKEN},        {"pem", K_PEM},         {"jwk", K_JWK},         {"hmac", K_HMAC},
    {"rules", K_RULES},        {"custom", K_CUSTOM},   {"custom2", K_CUSTOM2}, {"oidc", K_OIDC},
    {"nokeys", K_OIDC_NOKEYS}, {"unknown", K_UNKNOWN}, {"typed", K_TYPED},
};

static const struct {
    const char *id, *path;
    int active;
} collection_rows[] = {
    {COL_ORDERS, "/orders/v1", 1},
    {COL_OFFLINE, "/offline/v1", 0},
    {COL_OTHER, "/other/v1", 1},
};

static const struct {
    const char *id, *collection_id, *method, *path;
    int active;
} endpoint_rows[] = {
    {"ep_root000000001", COL_ORDERS, "GET", "/", 1},
    {"ep_itemslist0001", COL_ORDERS, "GET", "/items", 1},
    {"ep_itemsadd00001", COL_ORDERS, "POST", "/items", 1},
    {"ep_itemget000001", COL_ORDERS, "GET", "/items/:id", 1},
    {"ep_itempart00001", COL_ORDERS, "GET", "/items/:id/parts/:part", 1},
    {"ep_files00000001", COL_ORDERS, "GET", "/files/*", 1},
    {"ep_anything00001", COL_ORDERS, "ANY", "/any", 1},
    {"ep_bothany000001", COL_ORDERS, "ANY", "/both", 1}, /* listed first: order is no reason */
    {"ep_bothget000001", COL_ORDERS, "GET", "/both", 1},
    {"ep_retired000001", COL_ORDERS, "GET", "/retired", 0},
    {"ep_offroot000001", COL_OFFLINE, "GET", "/", 1},
    {"ep_otherx0000001", COL_OTHER, "GET", "/x", 1},
};

enum static_key { KEY_NONE, KEY_PEM_RSA, KEY_JWK_EC, KEY_SECRET };
enum idp_use { IDP_NONE, IDP_DISCOVERY, IDP_NO_KEYS };

/* One access profile; NULL lists take the store's defaults (all asymmetric algorithms,
 * required_claims ["exp"], everything else empty, the orders collection). */
struct profile_row {
    const char *id, *auth_type, *client_id, *collection_ids, *key_claim;
    int inactive;
    enum static_key jwt_key;
    enum idp_use idp;
    const char *algorithms, *required_claims, *allowed_issuers, *audiences, *ip_allow, *ip_deny;
    const char *token_types;
};

static const struct profile_row profile_rows[] = {
    {.id = "ap_token00000001", .auth_type = "token"},
    {.id = "ap_pem0000000001", .auth_type = "jwt", .jwt_key = KEY_PEM_RSA},
    {.id = "ap_jwk0000000001", .auth_type = "jwt", .jwt_key = KEY_JWK_EC},
    {.id = "ap_hmac000000001", .auth_type = "jwt", .jwt_key = KEY_SECRET, .algorithms = "HS256"},
    {.id = "ap_rules00000001",
     .auth_type = "jwt",
     .jwt_key = KEY_PEM_RSA,
     .algorithms = "RS256",
     .required_claims = "exp,scope",
     .allowed_issuers = "https://issuer.example",
     .audiences = "orders-api"},
    {.id = "ap_custom0000001",
     .auth_type = "jwt",
     .jwt_key = KEY_JWK_EC,
     .key_claim = "tenant_key"},
    {.id = "ap_custom0000002", .auth_type = "jwt", .jwt_key = KEY_JWK_EC, .key_claim = "org_key"},
    {.id = "ap_oidc000000001", .auth_type = "oidc", .idp = IDP_DISCOVERY},
    {.id = "ap_oidcnokeys001", .auth_type = "oidc", .idp = IDP_NO_KEYS},
    {.id = "ap_inactive00001", .auth_type = "token", .inactive = 1},
    {.id = "ap_clientoff0001", .auth_type = "token", .client_id = CLI_OFF},
    {.id = "ap_notgranted001", .auth_type = "token", .collection_ids = COL_OTHER},
    {.id = "ap_ipdeny0000001", .auth_type = "token", .ip_deny = "10.0.0.0/8,2001:db8:bad::/48"},
    {.id = "ap_ipallow400001", .auth_type = "token", .ip_allow = "192.0.2.0/24"},
    {.id = "ap_ipallow600001", .auth_type = "token", .ip_allow = "2001:db8::/32"},
    {.id = "ap_typed00000001",
     .auth_type = "jwt",
     .jwt_key = KEY_PEM_RSA,
     .token_types = "at+jwt,application/example+jwt"},
};

/* When a key stops being valid. */
enum expiry { NEVER, PAST, FUTURE, PAST_FRACTION, PAST_OFFSET };

static const struct {
    enum pkey key;
    const char *profile_id;
    enum expiry expiry;
} key_rows[] = {
    {K_TOKEN, "ap_token00000001", NEVER},
    {K_TOKEN_EXPIRED, "ap_token00000001", PAST},
    {K_TOKEN_GRACE, "ap_token00000001", FUTURE},
    {K_TOKEN_FRACTION, "ap_token00000001", PAST_FRACTION},
    {K_TOKEN_OFFSET, "ap_token00000001", PAST_OFFSET},
    {K_PEM, "ap_pem0000000001", NEVER},
    {K_JWK, "ap_jwk0000000001", NEVER},
    {K_HMAC, "ap_hmac000000001", NEVER},
    {K_RULES, "ap_rules00000001", NEVER},
    {K_CUSTOM, "ap_custom0000001", NEVER},
    {K_CUSTOM2, "ap_custom0000002", NEVER},
    {K_OIDC, "ap_oidc000000001", NEVER},
    {K_OIDC_NOKEYS, "ap_oidcnokeys001", NEVER},
    {K_INACTIVE, "ap_inactive00001", NEVER},
    {K_CLIENT_OFF, "ap_clientoff0001", NEVER},
    {K_NOT_GRANTED, "ap_notgranted001", NEVER},
    {K_IP_DENY, "ap_ipdeny0000001", NEVER},
    {K_IP_ALLOW4, "ap_ipallow400001", NEVER},
    {K_IP_ALLOW6, "ap_ipallow600001", NEVER},
    {K_TYPED, "ap_typed00000001", NEVER},
};

struct world {
    struct gh_testkey signers[S_COUNT];
    char plain[K_COUNT][48];
    struct gh_gateway_settings settings;
    struct gh_config *config;
    struct gh_mockidp *idp;
    struct gh_oidc_options options;
    struct gh_oidc_manager *manager;
    struct gh_provider *provider, *nokeys;
    char issuer[128], discovery_url[256], nokeys_url[256];
};

static atomic_llong fake_now_ms;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&fake_now_ms);
}

/* ---- building the configuration document ---- */

static const char *or_default(const char *value, const char *fallback)
{
    return value != NULL ? value : fallback;
}

/* "a,b" → ["a","b"]; "" → []. */
static json_t *csv(const char *text)
{
    json_t *list = json_array();
    for (const char *p = text; *p != '\0';) {
        size_t len = strcspn(p, ",");
        json_array_append_new(list, json_stringn(p, len));
        p += len + (p[len] == ',');
    }
    return list;
}

/* The plain key of `k`: "gk_" + base64url of 32 bytes derived from its index. */
static void make_plain_key(int k, char out[48])
{
    char seed[32];
    unsigned char bytes[SHA256_DIGEST_LENGTH];
    snprintf(seed, sizeof seed, "gatehouse test key %d", k);
    SHA256((const unsigned char *)seed, strlen(seed), bytes);
    memcpy(out, "gk_", 3);
    gh_b64url_encode(bytes, sizeof bytes, out + 3);
    out[46] = '\0';
}

static json_t *key_hash(const char *plain)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256((const unsigned char *)plain, strlen(plain), digest);
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return json_string(hex);
}

static json_t *expiry_json(enum expiry e)
{
    char text[40];
    struct tm tm;
    time_t t = (time_t)(e == FUTURE ? NOW + 3600 : NOW - 3600);
    if (e == NEVER)
        return json_null();
    gmtime_r(&t, &tm);
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    /* the store writes "...Z"; RFC 3339 also allows fractions and a numeric UTC offset */
    strcat(text, e == PAST_FRACTION ? ".500Z" : e == PAST_OFFSET ? "+00:00" : "Z");
    return json_string(text);
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

static json_t *static_key_json(const struct world *w, enum static_key kind)
{
    char *text = kind == KEY_PEM_RSA  ? pem_of(&w->signers[S_RSA])
                 : kind == KEY_JWK_EC ? gh_testkey_public_jwk(&w->signers[S_EC])
                                      : strdup(HMAC_SECRET);
    json_t *value = json_string(text);
    free(text);
    return value;
}

static json_t *profile_json(const struct world *w, const struct profile_row *r)
{
    json_t *p = json_pack(
        "{s:s, s:s, s:s, s:s, s:b, s:o, s:n, s:s?, s:o, s:o, s:o, s:o, s:i, s:o, s:o}", "id", r->id,
        "name", r->id, "client_id", or_default(r->client_id, CLI_ON), "auth_type", r->auth_type,
        "active", !r->inactive, "collection_ids", csv(or_default(r->collection_ids, COL_ORDERS)),
        "policy_id", "key_claim", r->key_claim, "required_claims",
        csv(or_default(r->required_claims, "exp")), "allowed_issuers",
        csv(or_default(r->allowed_issuers, "")), "audiences", csv(or_default(r->audiences, "")),
        "algorithms", csv(or_default(r->algorithms, ALL_ASYM)), "leeway_seconds", 60, "ip_allow",
        csv(or_default(r->ip_allow, "")), "ip_deny", csv(or_default(r->ip_deny, "")));
    json_object_set_new(p, "jwt_key",
                        r->jwt_key != KEY_NONE ? static_key_json(w, r->jwt_key) : json_null());
    json_object_set_new(p, "oidc_discovery_url",
                        r->idp == IDP_DISCOVERY ? json_string(w->discovery_url) : json_null());
    json_object_set_new(p, "oidc_jwks_uri",
                        r->idp == IDP_NO_KEYS ? json_string(w->nokeys_url) : json_null());
    json_object_set_new(p, "token_types", csv(or_default(r->token_types, "")));
    return p;
}

static json_t *routes_json(json_t *doc)
{
    json_t *cols = json_object_get(doc, "collections"), *eps = json_object_get(doc, "endpoints");
    for (size_t i = 0; i < sizeof collection_rows / sizeof collection_rows[0]; i++)
        json_array_append_new(cols, json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:i}", "id",
                                              collection_rows[i].id, "name", collection_rows[i].id,
                                              "version", "v1", "path", collection_rows[i].path,
                                              "upstream", "http://127.0.0.1:9/base", "active",
                                              collection_rows[i].active, "forward_authorization", 1,
                                              "timeout_ms", 30000));
    for (size_t i = 0; i < sizeof endpoint_rows / sizeof endpoint_rows[0]; i++)
        json_array_append_new(
            eps, json_pack("{s:s, s:s, s:s, s:s, s:n, s:b, s:n}", "id", endpoint_rows[i].id,
                           "collection_id", endpoint_rows[i].collection_id, "method",
                           endpoint_rows[i].method, "path", endpoint_rows[i].path, "name", "active",
                           endpoint_rows[i].active, "timeout_ms"));
    return doc;
}

static json_t *config_doc(const struct world *w)
{
    json_t *doc = json_pack(
        "{s:[], s:[], s:[{s:s, s:s, s:s, s:b}, {s:s, s:s, s:s, s:b}], s:[], s:[], s:[], s:i}",
        "collections", "endpoints", "clients", "id", CLI_ON, "name", "active client", "description",
        "", "active", 1, "id", CLI_OFF, "name", "inactive client", "description", "", "active", 0,
        "policies", "profiles", "keys", "generation", 7);
    json_t *profiles = json_object_get(doc, "profiles"), *keys = json_object_get(doc, "keys");
    for (size_t i = 0; i < sizeof profile_rows / sizeof profile_rows[0]; i++)
        json_array_append_new(profiles, profile_json(w, &profile_rows[i]));
    for (size_t i = 0; i < sizeof key_rows / sizeof key_rows[0]; i++) {
        const char *plain = w->plain[key_rows[i].key];
        char id[32], prefix[9];
        snprintf(id, sizeof id, "key_testkey%05zu", i);
        snprintf(prefix, sizeof prefix, "%.8s", plain);
        json_array_append_new(keys,
                              json_pack("{s:s, s:s, s:s, s:o, s:s, s:o}", "id", id, "profile_id",
                                        key_rows[i].profile_id, "prefix", prefix, "hash",
                                        key_hash(plain), "created_at", "2023-01-01T00:00:00Z",
                                        "expires_at", expiry_json(key_rows[i].expiry)));
    }
    return routes_json(doc);
}

static struct gh_config_profile *config_profile(const struct world *w, const char *id)
{
    for (size_t i = 0; i < w->config->n_profiles; i++) {
        if (strcmp(w->config->profiles[i].id, id) == 0)
            return &w->config->profiles[i];
    }
    return NULL;
}

/* ---- fixture ---- */

static char *jwks_of(const struct gh_testkey *key)
{
    char *jwk = gh_testkey_public_jwk(key), *doc = malloc(strlen(jwk) + 16);
    sprintf(doc, "{\"keys\":[%s]}", jwk);
    free(jwk);
    return doc;
}

/* The mock IdP publishes S_IDP only; S_IDP_NEW is the key it "rotates to" unannounced. The second
 * provider names a key set that answers 404, so it never has keys. */
static int start_idp(struct world *w)
{
    char *jwks;
    if ((w->idp = gh_mockidp_start()) == NULL)
        return -1;
    snprintf(w->issuer, sizeof w->issuer, "%s", gh_mockidp_base_url(w->idp));
    snprintf(w->discovery_url, sizeof w->discovery_url, "%s/.well-known/openid-configuration",
             w->issuer);
    snprintf(w->nokeys_url, sizeof w->nokeys_url, "%s/nokeys", w->issuer);
    gh_mockidp_serve_discovery(w->idp, NULL, "/jwks");
    jwks = jwks_of(&w->signers[S_IDP]);
    gh_mockidp_set_json(w->idp, "/jwks", 200, jwks, "Cache-Control: max-age=3600\r\n");
    free(jwks);
    atomic_store(&fake_now_ms, NOW * 1000);
    gh_oidc_options_default(&w->options);
    w->options.now_ms = fake_clock;
    if (gh_oidc_manager_new(&w->options, &w->manager) != GH_OK ||
        gh_oidc_provider_get(w->manager, GH_PROVIDER_DISCOVERY, w->discovery_url, &w->provider) !=
            GH_OK ||
        gh_provider_wait_ready(w->provider, 5000) != GH_OK ||
        gh_oidc_provider_get(w->manager, GH_PROVIDER_JWKS_URI, w->nokeys_url, &w->nokeys) != GH_OK)
        return -1;
    return gh_provider_wait_ready(w->nokeys, 5000) != GH_OK ? 0 : -1;
}

static int make_signers(struct world *w)
{
    for (int s = 0; s < S_COUNT; s++) {
        if (gh_testkey_generate(signer_specs[s].alg, signer_specs[s].kid, 0, &w->signers[s]) != 0)
            return -1;
    }
    /* the HS256 profile's jwt_key is a text secret, used as its bytes */
    memcpy(w->signers[S_HMAC].secret, HMAC_SECRET, strlen(HMAC_SECRET));
    w->signers[S_HMAC].secret_len = strlen(HMAC_SECRET);
    return 0;
}

static int group_setup(void **state)
{
    struct world *w = calloc(1, sizeof *w);
    json_t *doc;
    int rc;

    if (w == NULL || make_signers(w) != 0 || start_idp(w) != 0 ||
        gh_key_claims_parse(GH_KEY_CLAIMS_DEFAULT, &w->settings.default_claims) != GH_OK)
        return -1;
    for (int k = 0; k < K_COUNT; k++)
        make_plain_key(k, w->plain[k]);
    doc = config_doc(w);
    rc = gh_config_build(doc, &w->config);
    json_decref(doc);
    if (rc != GH_OK)
        return -1;
    /* what the publisher does before publishing a snapshot */
    config_profile(w, "ap_oidc000000001")->provider = w->provider;
    config_profile(w, "ap_oidcnokeys001")->provider = w->nokeys;
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

struct call {
    const char *method;        /* NULL: GET */
    const char *path;          /* NULL: /orders/v1/items */
    const char *authorization; /* header values, NULL when absent */
    const char *api_token;
    const char *ip; /* NULL: CLIENT_IP */
    int explain, after_refetch;
    int64_t now; /* 0: NOW */
};

static void decide(const struct world *w, const struct call *c, struct gh_decision *d)
{
    struct gh_request_view req = {0};
    const char *ip = or_default(c->ip, CLIENT_IP);

    req.method = or_default(c->method, "GET");
    req.method_len = strlen(req.method);
    req.path = or_default(c->path, "/orders/v1/items");
    req.path_len = strcspn(req.path, "?"); /* as the server hands it over: the query apart */
    if (req.path[req.path_len] == '?') {
        req.query = req.path + req.path_len + 1;
        req.query_len = strlen(req.query);
    }
    req.authorization = c->authorization;
    req.authorization_len = c->authorization ? strlen(c->authorization) : 0;
    req.api_token = c->api_token;
    req.api_token_len = c->api_token ? strlen(c->api_token) : 0;
    req.family = strchr(ip, ':') != NULL ? 6 : 4;
    assert_int_equal(inet_pton(req.family == 6 ? AF_INET6 : AF_INET, ip, req.addr), 1);
    req.explain = c->explain;
    gh_gateway_decide(&w->settings, w->config, &req, c->now ? c->now : NOW, c->after_refetch, d);
}

/* Fails naming `what` unless the decision has `status`, `error`, the reason word (NULL: any) and
 * the profile (NULL: any). */
static void expect(const char *what, const struct gh_decision *d, int status, const char *error,
                   const char *reason, const char *profile)
{
    if (d->status != status)
        fail_msg("%s: status %d (%s: %s), want %d", what, d->status, d->error ? d->error : "-",
                 d->message, status);
    if (status == 200 && d->outcome != GH_OUTCOME_ALLOW)
        fail_msg("%s: status 200 without ALLOW", what);
    if (status != 200 &&
        (d->outcome != GH_OUTCOME_DENY || d->error == NULL || strcmp(d->error, error) != 0))
        fail_msg("%s: error %s, want %s", what, d->error ? d->error : "(none)", error);
    if (reason != NULL && strcmp(gh_error_reason(d->reason), reason) != 0)
        fail_msg("%s: reason %s, want %s", what, gh_error_reason(d->reason), reason);
    if (profile != NULL && (d->profile == NULL || strcmp(d->profile->id, profile) != 0))
        fail_msg("%s: profile %s, want %s", what, d->profile ? d->profile->id : "(none)", profile);
}

/* Replaces "<name>" in a JSON template: a plain key by its name in key_names, <exp> (valid),
 * <past>, <future>, <far> (five days on) and <iss> (the mock IdP's issuer). */
static char *expand(const struct world *w, const char *tpl)
{
    size_t cap = strlen(tpl) + 1024, used = 0;
    char *out = malloc(cap);
    for (const char *p = tpl; *p != '\0';) {
        const char *end = *p == '<' ? strchr(p, '>') : NULL;
        char name[32];
        if (end == NULL) {
            out[used++] = *p++;
            continue;
        }
        snprintf(name, sizeof name, "%.*s", (int)(end - p - 1), p + 1);
        p = end + 1;
        const char *text = strcmp(name, "iss") == 0 ? w->issuer : NULL;
        long long number = strcmp(name, "exp") == 0      ? NOW + 600
                           : strcmp(name, "past") == 0   ? NOW - 3600
                           : strcmp(name, "future") == 0 ? NOW + 3600
                           : strcmp(name, "far") == 0    ? NOW + 5 * 86400
                                                         : 0;
        for (size_t i = 0; i < sizeof key_names / sizeof key_names[0]; i++) {
            if (strcmp(name, key_names[i].name) == 0)
                text = w->plain[key_names[i].key];
        }
        assert_true(text != NULL || number != 0);
        assert_true(used + 200 < cap);
        used += text != NULL ? (size_t)sprintf(out + used, "%s", text)
                             : (size_t)sprintf(out + used, "%lld", number);
    }
    out[used] = '\0';
    return out;
}

/* "Bearer <JWT>" signed by `s` (under `alg`, GH_ALG_UNKNOWN: its own); `header` NULL is
 * {"alg":...,"typ":"JWT"}. Templates go through expand(). The caller frees it. */
static char *bearer(const struct world *w, enum signer s, enum gh_alg alg, const char *header,
                    const char *payload)
{
    char default_header[64], *h, *p, *token, *out;
    snprintf(default_header, sizeof default_header, "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
             gh_alg_name(alg != GH_ALG_UNKNOWN ? alg : signer_specs[s].alg));
    h = expand(w, or_default(header, default_header));
    p = expand(w, payload);
    token = gh_test_sign_as(&w->signers[s], alg, h, strlen(h), p, strlen(p));
    assert_non_null(token);
    out = malloc(strlen(token) + 8);
    sprintf(out, "Bearer %s", token);
    free(h);
    free(p);
    free(token);
    return out;
}

/* A JWT case: who signs what, and the answer. */
struct jwt_case {
    const char *name;
    enum signer signer;
    enum gh_alg alg;
    const char *header, *payload;
    int status;
    const char *reason;  /* the reason word of a 401 invalid_token */
    const char *profile; /* the profile the token is bound to, NULL: none to check */
};

static void run_jwt_cases(const struct world *w, const struct jwt_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct jwt_case *c = &cases[i];
        struct gh_decision d;
        char *auth = bearer(w, c->signer, c->alg, c->header, c->payload);
        decide(w, &(struct call){.authorization = auth}, &d);
        expect(c->name, &d, c->status, c->status == 200 ? NULL : "invalid_token", c->reason,
               c->profile);
        if (c->status == 200 && d.claims_b64 == NULL)
            fail_msg("%s: allowed without claims", c->name);
        if (c->status != 200 && (!d.token_sent || d.claims_b64 != NULL || d.subject != NULL))
            fail_msg("%s: a refused token must say it was sent and keep nothing", c->name);
        gh_decision_clear(&d);
        free(auth);
    }
}

#define RUN_JWT_CASES(w, cases) run_jwt_cases(w, cases, sizeof cases / sizeof cases[0])

/* ---- routing ---- */

struct route_case {
    const char *method, *path;
    int status;
    const char *endpoint; /* the endpoint chosen when allowed */
};

/* Sends each with a valid api-token so a routed request ends in ALLOW, and a refused one shows
 * that routing came before the credential. */
static void run_route_cases(const struct world *w, const struct route_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct route_case *c = &cases[i];
        struct gh_decision d;
        char what[160];
        snprintf(what, sizeof what, "%s %s", c->method, c->path);
        decide(w,
               &(struct call){.method = c->method, .path = c->path, .api_token = w->plain[K_TOKEN]},
               &d);
        expect(what, &d, c->status,
               c->status == 404   ? "not_found"
               : c->status == 405 ? "method_not_allowed"
               : c->status == 400 ? "bad_request"
                                  : NULL,
               NULL, NULL);
        if (c->endpoint != NULL && (d.endpoint == NULL || strcmp(d.endpoint->id, c->endpoint) != 0))
            fail_msg("%s: endpoint %s, want %s", what, d.endpoint ? d.endpoint->id : "(none)",
                     c->endpoint);
        if (c->status >= 400 && d.profile != NULL)
            fail_msg("%s: a routing refusal must come before the credential", what);
        gh_decision_clear(&d);
    }
}

#define RUN_ROUTE_CASES(w, cases) run_route_cases(w, cases, sizeof cases / sizeof cases[0])

static void test_route_not_found(void **state)
{
    static const struct route_case cases[] = {
        {"GET", "/nothing/v1/items", 404, NULL},  /* no collection */
        {"GET", "/", 404, NULL},                  /* no collection */
        {"GET", "orders/v1/items", 404, NULL},    /* not an absolute path */
        {"GET", "/offline/v1", 404, NULL},        /* inactive collection */
        {"GET", "/offline/v1/", 404, NULL},       /* inactive collection */
        {"GET", "/orders/v1/nothing", 404, NULL}, /* no endpoint */
        {"GET", "/orders/v1/items/1/other", 404, NULL},
        {"GET", "/orders/v1/retired", 404, NULL},    /* inactive endpoint */
        {"DELETE", "/orders/v1/retired", 404, NULL}, /* inactive: not even 405 */
    };
    RUN_ROUTE_CASES(*state, cases);
}

static void test_route_method_not_allowed(void **state)
{
    static const struct route_case cases[] = {
        {"PUT", "/orders/v1/items", 405, NULL},      {"DELETE", "/orders/v1/items/42", 405, NULL},
        {"POST", "/orders/v1/files/a/b", 405, NULL}, {"POST", "/orders/v1", 405, NULL},
        {"get", "/orders/v1/items", 405, NULL}, /* methods are case-sensitive */
    };
    struct world *w = *state;
    struct gh_decision d;
    RUN_ROUTE_CASES(w, cases);
    /* 405 comes before the missing credential */
    decide(w, &(struct call){.method = "PUT"}, &d);
    expect("PUT without credential", &d, 405, "method_not_allowed", NULL, NULL);
    gh_decision_clear(&d);
}

/* RFC 9110 §15.5.6: a 405 lists what the path does take (d->allow becomes the Allow header):
 * the methods of the active endpoints whose template matches, in one fixed order. HEAD only
 * where an endpoint says HEAD or ANY: the router does not send HEAD to GET endpoints. */
static void test_route_405_allow(void **state)
{
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"PUT", "/orders/v1/items", "GET, POST"},
        {"DELETE", "/orders/v1/items/42", "GET"},
        {"HEAD", "/orders/v1/items/42", "GET"},
        {"POST", "/orders/v1/files/a/b", "GET"},
        {"POST", "/orders/v1", "GET"},
    };
    struct world *w = *state;
    struct gh_decision d;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        decide(w, &(struct call){.method = cases[i].method, .path = cases[i].path}, &d);
        expect(cases[i].path, &d, 405, "method_not_allowed", NULL, NULL);
        assert_string_equal(d.allow, cases[i].allow);
        gh_decision_clear(&d);
    }
    /* no 405, no Allow */
    decide(w, &(struct call){.method = "GET", .path = "/orders/v1/nothing"}, &d);
    assert_int_equal(d.status, 404);
    assert_string_equal(d.allow, "");
    gh_decision_clear(&d);
}

static void test_route_any_method(void **state)
{
    static const struct route_case cases[] = {
        {"GET", "/orders/v1/any", 200, "ep_anything00001"},
        {"POST", "/orders/v1/any", 200, "ep_anything00001"},
        {"DELETE", "/orders/v1/any", 200, "ep_anything00001"},
        {"PATCH", "/orders/v1/any", 200, "ep_anything00001"},
        {"OPTIONS", "/orders/v1/any", 200, "ep_anything00001"},
    };
    RUN_ROUTE_CASES(*state, cases);
}

/* Issue 11: ANY means the methods an endpoint can name (SPEC §1), never CONNECT, TRACE or an
 * extension method, which the upstream might act on (TRACE echoes the forwarded credential
 * headers; PROPFIND lists a WebDAV tree). They get 405 with an Allow naming the seven. */
static void test_route_any_takes_spec_methods_only(void **state)
{
    static const char *const refused[] = {"CONNECT", "TRACE", "PROPFIND", "FOO",   "MKCOL",
                                          "any",     "ANY",   "get",      "PURGE", "OPTIONSX"};
    static const struct route_case taken[] = {
        {"HEAD", "/orders/v1/any", 200, "ep_anything00001"},
        {"PUT", "/orders/v1/any", 200, "ep_anything00001"},
        {"GET", "/orders/v1/files/x", 200, "ep_files00000001"},
    };
    struct world *w = *state;
    struct gh_decision d;

    RUN_ROUTE_CASES(w, taken);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        decide(w,
               &(struct call){
                   .method = refused[i], .path = "/orders/v1/any", .api_token = w->plain[K_TOKEN]},
               &d);
        expect(refused[i], &d, 405, "method_not_allowed", NULL, NULL);
        assert_null(d.endpoint);
        assert_string_equal(d.allow, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
        gh_decision_clear(&d);
    }
    /* beside an exact endpoint, the ANY one still takes only the seven */
    decide(w, &(struct call){.method = "TRACE", .path = "/orders/v1/both"}, &d);
    expect("TRACE /both", &d, 405, "method_not_allowed", NULL, NULL);
    assert_string_equal(d.allow, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    gh_decision_clear(&d);
}

static void test_route_exact_method_beats_any(void **state)
{
    static const struct route_case cases[] = {
        {"GET", "/orders/v1/both", 200, "ep_bothget000001"},
        {"POST", "/orders/v1/both", 200, "ep_bothany000001"},
        {"HEAD", "/orders/v1/both", 200, "ep_bothany000001"},
    };
    RUN_ROUTE_CASES(*state, cases);
}

static void test_route_templates(void **state)
{
    static const struct route_case cases[] = {
        {"GET", "/orders/v1/items", 200, "ep_itemslist0001"},
        {"POST", "/orders/v1/items", 200, "ep_itemsadd00001"},
        {"GET", "/orders/v1/items/42", 200, "ep_itemget000001"},
        {"GET", "/orders/v1/items/42/parts/7", 200, "ep_itempart00001"},
        {"GET", "/orders/v1/items/", 404, NULL}, /* :id needs a non-empty segment */
        {"GET", "/orders/v1/items//parts/7", 404, NULL},
        {"GET", "/orders/v1/files", 200, "ep_files00000001"},
        {"GET", "/orders/v1/files/", 200, "ep_files00000001"},
        {"GET", "/orders/v1/files/a/b/c.txt", 200, "ep_files00000001"},
        {"GET", "/orders/v1/filesX", 404, NULL},
        {"GET", "/orders/v1/Items", 404, NULL}, /* literals are case-sensitive */
    };
    struct world *w = *state;
    struct gh_decision d;
    RUN_ROUTE_CASES(w, cases);
    /* what follows the collection path is what the upstream gets */
    decide(w, &(struct call){.path = "/orders/v1/items/42/parts/7", .api_token = w->plain[K_TOKEN]},
           &d);
    assert_int_equal(d.rest_len, strlen("/items/42/parts/7"));
    assert_memory_equal(d.rest, "/items/42/parts/7", d.rest_len);
    assert_string_equal(d.collection->id, COL_ORDERS);
    gh_decision_clear(&d);
}

static void test_route_collection_path_boundary(void **state)
{
    static const struct route_case cases[] = {
        {"GET", "/orders/v10", 404, NULL},
        {"GET", "/orders/v10/items", 404, NULL},
        {"GET", "/orders/v1x/items", 404, NULL},
        {"GET", "/orders", 404, NULL},
        {"GET", "/orders/v1", 200, "ep_root000000001"},
        {"GET", "/orders/v1/", 200, "ep_root000000001"},
    };
    RUN_ROUTE_CASES(*state, cases);
}

static void test_route_refuses_ambiguous_paths(void **state)
{
    /* the "/files/" wildcard would take every one of these: only the spelling refuses them */
    static const struct route_case cases[] = {
        {"GET", "/orders/v1/files/a%2Fb", 400, NULL},
        {"GET", "/orders/v1/files/a%2fb", 400, NULL},
        {"GET", "/orders/v1/files/%2e%2e/x", 400, NULL},
        {"GET", "/orders/v1/files/%2E", 400, NULL},
        {"GET", "/orders/v1/files/a%5Cb", 400, NULL},
        {"GET", "/orders/v1/files/a%5cb", 400, NULL},
        {"GET", "/orders/v1/files/../items", 400, NULL},
        {"GET", "/orders/v1/files/./a", 400, NULL},
        {"GET", "/orders/v1/files/..", 400, NULL},
        {"GET", "/orders/v1/files/.", 400, NULL},
        {"GET", "/orders/v1/files\\a", 400, NULL},
        {"GET", "/orders/v1/files/a\\..\\b", 400, NULL},
        {"GET", "/orders/v1/../v1/items", 400, NULL},
        /* dots inside a segment and other escapes are plain names */
        {"GET", "/orders/v1/files/a.b/..c/d..", 200, "ep_files00000001"},
        {"GET", "/orders/v1/files/a%20b", 200, "ep_files00000001"},
    };
    RUN_ROUTE_CASES(*state, cases);
}

/* Issue 11: servlet containers (Tomcat, Spring) drop a segment's ";parameters" before they resolve
 * dot segments, so "..;" climbs out of the collection: the security review read another
 * collection through /t-orders/v1/items/..;/..;/..;/api/billing/items/secret. */
static void test_route_refuses_dot_segments_with_parameters(void **state)
{
    static const struct route_case cases[] = {
        {"GET", "/orders/v1/files/..;/..;/..;/api/billing/items/secret", 400, NULL},
        {"GET", "/orders/v1/files/..;", 400, NULL},
        {"GET", "/orders/v1/files/.;x", 400, NULL},
        {"GET", "/orders/v1/files/..;jsessionid=1/x", 400, NULL},
        {"GET", "/orders/v1/files/.;/a", 400, NULL},
        {"GET", "/orders/v1/files/..;a;b/x", 400, NULL},
        {"GET", "/orders/v1/files/..%3B/x", 400, NULL}, /* an encoded ';' decoded first */
        {"GET", "/orders/v1/files/.%3bx", 400, NULL},
        {"GET", "/orders/v1/..;/v1/items", 400, NULL},
        {"GET", "/orders/v1/any/..;/x", 400, NULL},
        /* parameters of plain names, and dots that are names, stay names */
        {"GET", "/orders/v1/files/a;b", 200, "ep_files00000001"},
        {"GET", "/orders/v1/files/...;x", 200, "ep_files00000001"},
        {"GET", "/orders/v1/files/;x/y", 200, "ep_files00000001"},
        {"GET", "/orders/v1/files/x..;/y", 200, "ep_files00000001"},
        {"GET", "/orders/v1/files/a;..", 200, "ep_files00000001"}, /* "a" with a parameter */
    };
    struct world *w = *state;
    struct gh_decision d;

    RUN_ROUTE_CASES(w, cases);
    /* refused before routing, with a message and an explain step that name the problem */
    decide(w,
           &(struct call){
               .path = "/orders/v1/files/..;/items", .api_token = w->plain[K_TOKEN], .explain = 1},
           &d);
    expect("..; explained", &d, 400, "bad_request", NULL, NULL);
    assert_non_null(strstr(d.message, "'..'"));
    assert_null(d.collection);
    assert_int_equal(d.n_steps, 1);
    assert_string_equal(d.steps[0].name, "route");
    assert_int_equal(d.steps[0].ok, 0);
    assert_non_null(strstr(d.steps[0].detail, ";parameters"));
    gh_decision_clear(&d);
}

/* Issue 11: a fragment is never sent by a client that means it; Node/Express upstreams cut the
 * path at '#', so "/orders/v1/files/x#/../admin" would reach another route than the one decided. */
static void test_route_refuses_fragment(void **state)
{
    static const struct route_case cases[] = {
        {"GET", "/orders/v1/files/x#y", 400, NULL},
        {"GET", "/orders/v1/any#/../../billing", 400, NULL},
        {"GET", "/orders/v1/files/#", 400, NULL},
        {"GET", "/orders/v1/items?a=1#frag", 400, NULL}, /* in the query too */
        {"GET", "/orders/v1/items?#", 400, NULL},
        {"GET", "/orders/v1/items?a=%23", 200, "ep_itemslist0001"}, /* encoded, it is data */
        {"GET", "/orders/v1/files/a%23b", 200, "ep_files00000001"},
    };
    struct world *w = *state;
    struct gh_decision d;

    RUN_ROUTE_CASES(w, cases);
    decide(w, &(struct call){.path = "/orders/v1/items?x#y", .explain = 1}, &d);
    expect("# explained", &d, 400, "bad_request", NULL, NULL);
    assert_non_null(strstr(d.message, "'#'"));
    assert_non_null(strstr(d.steps[0].detail, "'#'"));
    gh_decision_clear(&d);
}

/* ---- credentials ---- */

static char *basic(const char *user, const char *password)
{
    char plain[256];
    size_t len = (size_t)snprintf(plain, sizeof plain, "%s:%s", user, password);
    char *out = malloc(6 + 4 * ((len + 2) / 3) + 1);
    memcpy(out, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, (int)len);
    return out;
}

static void test_credential_none(void **state)
{
    static const char *const no_credential[] = {
        NULL, "", "Bearer", "Bearer ", "Bearer    ", "Digest username=x", "Token abc",
    };
    struct world *w = *state;
    for (size_t i = 0; i < sizeof no_credential / sizeof no_credential[0]; i++) {
        struct gh_decision d;
        decide(w, &(struct call){.authorization = no_credential[i], .api_token = ""}, &d);
        expect(or_default(no_credential[i], "(no header)"), &d, 401, "unauthorized", NULL, NULL);
        assert_int_equal(d.token_sent, 0);
        assert_null(d.profile);
        gh_decision_clear(&d);
    }
}

static void test_credential_api_token_header(void **state)
{
    struct world *w = *state;
    struct gh_decision d;
    decide(w, &(struct call){.api_token = w->plain[K_TOKEN]}, &d);
    expect("api-token", &d, 200, NULL, NULL, "ap_token00000001");
    assert_string_equal(d.endpoint->id, "ep_itemslist0001");
    assert_null(d.claims_b64); /* claims only for JWT auth */
    assert_null(d.subject);
    gh_decision_clear(&d);
}

static void test_credential_basic_api_token(void **state)
{
    struct world *w = *state;
    struct gh_decision d;
    char *good = basic("api-token", w->plain[K_TOKEN]),
         *wrong_user = basic("admin", w->plain[K_TOKEN]);
    char *lower = basic("API-TOKEN", w->plain[K_TOKEN]);

    decide(w, &(struct call){.authorization = good}, &d);
    expect("Basic api-token", &d, 200, NULL, NULL, "ap_token00000001");
    assert_int_equal(d.authorization_verified, 0); /* the key never goes upstream */
    gh_decision_clear(&d);
    decide(w, &(struct call){.authorization = wrong_user}, &d);
    expect("Basic admin", &d, 401, "unauthorized", NULL, NULL);
    assert_int_equal(d.token_sent, 0);
    gh_decision_clear(&d);
    decide(w, &(struct call){.authorization = lower}, &d);
    expect("Basic API-TOKEN", &d, 401, "unauthorized", NULL, NULL);
    gh_decision_clear(&d);
    free(good);
    free(wrong_user);
    free(lower);
}

static void test_credential_api_token_wins(void **state)
{
    struct world *w = *state;
    struct gh_decision d;
    char *jwt =
        bearer(w, S_RSA, GH_ALG_UNKNOWN, NULL, "{\"gatehouse_key\":\"<pem>\",\"exp\":<exp>}");

    /* Authorization may be the upstream's own credential: the api-token decides */
    decide(w, &(struct call){.api_token = w->plain[K_TOKEN], .authorization = "Bearer garbage"},
           &d);
    expect("api-token and a garbage Bearer", &d, 200, NULL, NULL, "ap_token00000001");
    assert_int_equal(d.authorization_verified, 0); /* never checked: not forwarded */
    gh_decision_clear(&d);
    decide(w, &(struct call){.api_token = w->plain[K_UNKNOWN], .authorization = jwt}, &d);
    expect("unknown api-token and a valid JWT", &d, 401, "invalid_token", "unknown_profile_key",
           NULL);
    gh_decision_clear(&d);
    free(jwt);
}

static void test_credential_bearer_jwt(void **state)
{
    struct world *w = *state;
    struct gh_decision d;
    char *jwt =
        bearer(w, S_RSA, GH_ALG_UNKNOWN, NULL, "{\"gatehouse_key\":\"<pem>\",\"exp\":<exp>}");
    char *lower = strdup(jwt);

    memcpy(lower, "bearer", 6); /* the scheme is case-insensitive (RFC 7235) */
    decide(w, &(struct call){.authorization = jwt}, &d);
    expect("Bearer JWT", &d, 200, NULL, NULL, "ap_pem0000000001");
    assert_int_equal(d.authorization_verified, 1);
    gh_decision_clear(&d);
    decide(w, &(struct call){.authorization = lower}, &d);
    expect("bearer JWT", &d, 200, NULL, NULL, "ap_pem0000000001");
    gh_decision_clear(&d);
    decide(w, &(struct call){.authorization = "Bearer not.a.jwt"}, &d);
    expect("Bearer garbage", &d, 401, "invalid_token", "malformed", NULL);
    assert_int_equal(d.token_sent, 1);
    gh_decision_clear(&d);
    free(jwt);
    free(lower);
}

/* ---- token profiles ---- */

static void expect_api_token(const struct world *w, const char *what, enum pkey key, int64_t now,
                             int status, const char *profile)
{
    struct gh_decision d;
    decide(w, &(struct call){.api_token = w->plain[key], .now = now}, &d);
    expect(what, &d, status, status == 200 ? NULL : "invalid_token",
           status == 200 ? NULL : "unknown_profile_key", profile);
    if (status == 401)
        assert_int_equal(d.token_sent, 1);
    gh_decision_clear(&d);
}

static void test_token_unknown_key(void **state)
{
    struct world *w = *state;
    char almost[48];
    expect_api_token(w, "unknown key", K_UNKNOWN, 0, 401, NULL);
    /* one character off, or a prefix, is another key */
    snprintf(almost, sizeof almost, "%s", w->plain[K_TOKEN]);
    almost[10] = almost[10] == 'A' ? 'B' : 'A';
    struct gh_decision d;
    decide(w, &(struct call){.api_token = almost}, &d);
    expect("altered key", &d, 401, "invalid_token", "unknown_profile_key", NULL);
    gh_decision_clear(&d);
    snprintf(almost, sizeof almost, "%.19s", w->plain[K_TOKEN]);
    decide(w, &(struct call){.api_token = almost}, &d);
    expect("key prefix", &d, 401, "invalid_token", "unknown_profile_key", NULL);
    gh_decision_clear(&d);
}

static void test_token_key_of_jwt_profile_is_no_credential(void **state)
{
    struct world *w = *state;
    struct gh_decision d;
    char *as_basic = basic("api-token", w->plain[K_OIDC]);
    expect_api_token(w, "jwt profile key", K_PEM, 0, 401, NULL);
    expect_api_token(w, "hmac profile key", K_HMAC, 0, 401, NULL);
    expect_api_token(w, "oidc profile key", K_OIDC, 0, 401, NULL);
    decide(w, &(struct call){.authorization = as_basic}, &d);
    expect("oidc profile key as Basic", &d, 401, "invalid_token", "unknown_profile_key", NULL);
    gh_decision_clear(&d);
    free(as_basic);
}

static void test_token_expired_key_refused(void **state)
{
    expect_api_token(*state, "key expired an hour ago", K_TOKEN_EXPIRED, 0, 401, NULL);
}

static void test_token_expiry_in_other_rfc3339_spellings(void **state)
{
    /* SPEC §1: timestamps are RFC 3339 UTC strings. An expiry the snapshot cannot read must not
     * turn into "never expires". */
    expect_api_token(*state, "expired key, fractional seconds", K_TOKEN_FRACTION, 0, 401, NULL);
    expect_api_token(*state, "expired key, +00:00 offset", K_TOKEN_OFFSET, 0, 401, NULL);
}

static void test_token_grace_key_allowed(void **state)
{
    struct world *w = *state;
    expect_api_token(w, "key in its grace period", K_TOKEN_GRACE, 0, 200, "ap_token00000001");
    expect_api_token(w, "grace, one second left", K_TOKEN_GRACE, NOW + 3599, 200,
                     "ap_token00000001");
    expect_api_token(w, "grace over", K_TOKEN_GRACE, NOW + 3600, 401, NULL);
    expect_api_token(w, "current key", K_TOKEN, NOW + 3600, 200, "ap_token00000001");
}

/* ---- where a JWT carries its key (SPEC §2) ---- */

static void test_key_lookup_custom_claim_first(void **state)
{
    static const struct jwt_case cases[] = {
        {"custom claim over gatehouse_key", S_EC, 0, NULL,
         "{\"gatehouse_key\":\"<jwk>\",\"tenant_key\":\"<custom>\",\"exp\":<exp>}", 200, NULL,
         "ap_custom0000001"},
        {"custom claim over the header kid", S_EC, 0, "{\"alg\":\"ES256\",\"kid\":\"<jwk>\"}",
         "{\"org_key\":\"<custom2>\",\"sub\":\"<jwk>\",\"exp\":<exp>}", 200, NULL,
         "ap_custom0000002"},
        {"unknown custom value: the default list decides", S_EC, 0, NULL,
         "{\"tenant_key\":\"gk_nothing\",\"gatehouse_key\":\"<jwk>\",\"exp\":<exp>}", 200, NULL,
         "ap_jwk0000000001"},
    };
    RUN_JWT_CASES(*state, cases);
}

static void test_key_lookup_default_order(void **state)
{
    /* Each token names another profile in every later claim; only the first may decide, and the
     * HMAC signature verifies for ap_hmac alone. */
    static const struct jwt_case cases[] = {
        {"https://gatehouse.dev/key first", S_HMAC, 0, "{\"alg\":\"HS256\",\"kid\":\"<pem>\"}",
         "{\"https://gatehouse.dev/key\":\"<hmac>\",\"gatehouse_key\":\"<pem>\",\"sub\":\"<pem>\","
         "\"exp\":<exp>}",
         200, NULL, "ap_hmac000000001"},
        {"then gatehouse_key", S_HMAC, 0, "{\"alg\":\"HS256\",\"kid\":\"<pem>\"}",
         "{\"gatehouse_key\":\"<hmac>\",\"sub\":\"<pem>\",\"exp\":<exp>}", 200, NULL,
         "ap_hmac000000001"},
        {"then sub", S_HMAC, 0, "{\"alg\":\"HS256\",\"kid\":\"<pem>\"}",
         "{\"sub\":\"<hmac>\",\"exp\":<exp>}", 200, NULL, "ap_hmac000000001"},
        {"then header kid", S_HMAC, 0, "{\"alg\":\"HS256\",\"kid\":\"<hmac>\"}",
         "{\"exp\":<exp>,\"kid\":\"<pem>\"}", 200, NULL, "ap_hmac000000001"},
        {"empty claims are skipped", S_HMAC, 0, NULL,
         "{\"https://gatehouse.dev/key\":\"\",\"gatehouse_key\":\"<hmac>\",\"exp\":<exp>}", 200,
         NULL, "ap_hmac000000001"},
        {"the same order for another profile", S_RSA, 0, NULL,
         "{\"https://gatehouse.dev/key\":\"<pem>\",\"gatehouse_key\":\"<hmac>\",\"exp\":<exp>}",
         200, NULL, "ap_pem0000000001"},
    };
    RUN_JWT_CASES(*state, cases);
}

static void test_key_lookup_no_fall_through(void **state)
{
    static const struct jwt_case cases[] = {
        {"unknown gatehouse_key, known sub", S_HMAC, 0, NULL,
         "{\"gatehouse_key\":\"gk_not_a_key\",\"sub\":\"<hmac>\",\"exp\":<exp>}", 401,
         "unknown_profile_key", NULL},
        {"unknown dev/key, known gatehouse_key", S_HMAC, 0, NULL,
         "{\"https://gatehouse.dev/key\":\"<unknown>\",\"gatehouse_key\":\"<hmac>\",\"exp\":<exp>}",
         401, "unknown_profile_key", NULL},
        {"plain sub, known header kid", S_HMAC, 0, "{\"alg\":\"HS256\",\"kid\":\"<hmac>\"}",
         "{\"sub\":\"user-1\",\"exp\":<exp>}", 401, "unknown_profile_key", NULL},
        {"token profile key first, known sub", S_HMAC, 0, NULL,
         "{\"gatehouse_key\":\"<token>\",\"sub\":\"<hmac>\",\"exp\":<exp>}", 401,
         "unknown_profile_key", NULL},
        {"no key claim at all", S_HMAC, 0, NULL, "{\"exp\":<exp>}", 401, "unknown_profile_key",
         NULL},
    };
    RUN_JWT_CASES(*state, cases);
}

static void test_key_lookup_custom_claim_binds_only_its_profile(void **state)
{
    static const struct jwt_case cases[] = {
        {"tenant_key profile's key in org_key", S_EC, 0, NULL,
         "{\"org_key\":\"<custom>\",\"sub\":\"user-1\",\"exp\":<exp>}", 401, "unknown_profile_key",
         NULL},
        {"org_key profile's key in tenant_key", S_EC, 0, NULL,
         "{\"tenant_key\":\"<custom2>\",\"sub\":\"user-1\",\"exp\":<exp>}", 401,
         "unknown_profile_key", NULL},
        {"default profile's key in tenant_key", S_EC, 0, NULL,
         "{\"tenant_key\":\"<jwk>\",\"sub\":\"user-1\",\"exp\":<exp>}", 401, "unknown_profile_key",
         NULL},
    };
    RUN_JWT_CASES(*state, cases);
}

static void test_key_lookup_default_claim_never_binds_custom_profile(void **state)
{
    static const struct jwt_case cases[] = {
        {"custom profile key in dev/key", S_EC, 0, NULL,
         "{\"https://gatehouse.dev/key\":\"<custom>\",\"exp\":<exp>}", 401, "unknown_profile_key",
         NULL},
        {"custom profile key in gatehouse_key", S_EC, 0, NULL,
         "{\"gatehouse_key\":\"<custom>\",\"exp\":<exp>}", 401, "unknown_profile_key", NULL},
        {"custom profile key in sub", S_EC, 0, NULL, "{\"sub\":\"<custom2>\",\"exp\":<exp>}", 401,
         "unknown_profile_key", NULL},
        {"custom profile key in header kid", S_EC, 0, "{\"alg\":\"ES256\",\"kid\":\"<custom>\"}",
         "{\"exp\":<exp>}", 401, "unknown_profile_key", NULL},
    };
    RUN_JWT_CASES(*state, cases);
}

/* ---- verification with static keys (jwt profiles) ---- */

/* The exact payload bytes (with their odd spacing) go upstream base64url-encoded, and sub is kept
 * for the access log. */
static void expect_identity(const struct world *w, enum signer s, const char *payload_tpl,
                            const char *profile, const char *subject)
{
    char *payload = expand(w, payload_tpl), *auth = bearer(w, s, GH_ALG_UNKNOWN, NULL, payload_tpl);
    char *want = gh_b64url_encode_alloc((const unsigned char *)payload, strlen(payload));
    struct gh_decision d;

    decide(w, &(struct call){.authorization = auth}, &d);
    expect(profile, &d, 200, NULL, NULL, profile);
    assert_non_null(d.claims_b64);
    assert_string_equal(d.claims_b64, want);
    if (subject != NULL)
        assert_string_equal(d.subject, subject);
    else
        assert_null(d.subject);
    gh_decision_clear(&d);
    free(payload);
    free(auth);
    free(want);
}

static void test_jwt_pem_key(void **state)
{
    expect_identity(*state, S_RSA,
                    "{ \"sub\" : \"user-42\",\n \"gatehouse_key\":\"<pem>\", \"exp\": <exp> }",
                    "ap_pem0000000001", "user-42");
}

static void test_jwt_jwk_key(void **state)
{
    expect_identity(*state, S_EC,
                    "{\"gatehouse_key\":\"<jwk>\",\"exp\":<exp>,\"sub\":\"svc-a\",\"n\":[1,2]}",
                    "ap_jwk0000000001", "svc-a");
    /* a sub that is not a string is no subject */
    expect_identity(*state, S_EC, "{\"gatehouse_key\":\"<jwk>\",\"exp\":<exp>,\"sub\":7}",
                    "ap_jwk0000000001", NULL);
}

static void test_jwt_hmac_secret(void **state)
{
    expect_identity(*state, S_HMAC, "{\"sub\":\"<hmac>\",\"exp\":<exp>}", "ap_hmac000000001",
                    ((struct world *)*state)->plain[K_HMAC]);
}

static void test_jwt_refusals(void **state)
{
    static const struct jwt_case cases[] = {
        {"bad signature", S_STRANGER, 0, NULL, "{\"gatehouse_key\":\"<pem>\",\"exp\":<exp>}", 401,
         "bad_signature", "ap_pem0000000001"},
        {"expired", S_RSA, 0, NULL, "{\"gatehouse_key\":\"<pem>\",\"exp\":<past>}", 401, "expired",
         NULL},
        {"not yet valid", S_RSA, 0, NULL,
         "{\"gatehouse_key\":\"<pem>\",\"exp\":<far>,\"nbf\":<future>}", 401, "not_yet_valid",
         NULL},
        {"missing exp", S_RSA, 0, NULL, "{\"gatehouse_key\":\"<pem>\"}", 401, "missing_claim",
         NULL},
        {"rules: all met", S_RSA, 0, NULL,
         "{\"gatehouse_key\":\"<rules>\",\"exp\":<exp>,\"iss\":\"https://issuer.example\","
         "\"aud\":[\"x\",\"orders-api\"],\"scope\":\"read\"}",
         200, NULL, "ap_rules00000001"},
        {"wrong issuer", S_RSA, 0, NULL,
         "{\"gatehouse_key\":\"<rules>\",\"exp\":<exp>,\"iss\":\"https://evil.example\","
         "\"aud\":\"orders-api\",\"scope\":\"read\"}",
         401, "wrong_issuer", NULL},
        {"wrong audience", S_RSA, 0, NULL,
         "{\"gatehouse_key\":\"<rules>\",\"exp\":<exp>,\"iss\":\"https://issuer.example\","
         "\"aud\":[\"billing-api\"],\"scope\":\"read\"}",
         401, "wrong_audience", NULL},
        {"missing required claim", S_RSA, 0, NULL,
         "{\"gatehouse_key\":\"<rules>\",\"exp\":<exp>,\"iss\":\"https://issuer.example\","
         "\"aud\":\"orders-api\"}",
         401, "missing_claim", NULL},
        {"alg allowed by key, not by profile", S_RSA, GH_ALG_PS256, NULL,
         "{\"gatehouse_key\":\"<rules>\",\"exp\":<exp>,\"iss\":\"https://issuer.example\","
         "\"aud\":\"orders-api\",\"scope\":\"read\"}",
         401, "alg_not_allowed", NULL},
        {"HMAC token for an asymmetric profile", S_HMAC, 0, NULL,
         "{\"gatehouse_key\":\"<pem>\",\"exp\":<exp>}", 401, "alg_not_allowed", NULL},
    };
    RUN_JWT_CASES(*state, cases);
}

/* RFC 9068 §4: a profile with token_types takes only tokens whose JWS typ is one of them, so an
 * ID token signed with the same key and issuer as the access tokens is no bearer token. Media
 * types compare case-insensitively and "application/" may be left out (RFC 7515 §4.1.9). The
 * signature still comes first, and the claims are still checked. */
static void test_jwt_token_types(void **state)
{
#define TYPED "{\"gatehouse_key\":\"<typed>\",\"exp\":<exp>}"
    static const struct jwt_case cases[] = {
        {"typ at+jwt", S_RSA, 0, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", TYPED, 200, NULL,
         "ap_typed00000001"},
        {"typ in another case", S_RSA, 0, "{\"alg\":\"RS256\",\"typ\":\"AT+JWT\"}", TYPED, 200,
         NULL, "ap_typed00000001"},
        {"typ with application/", S_RSA, 0, "{\"alg\":\"RS256\",\"typ\":\"Application/at+jwt\"}",
         TYPED, 200, NULL, "ap_typed00000001"},
        {"configured with application/, sent without", S_RSA, 0,
         "{\"alg\":\"RS256\",\"typ\":\"example+JWT\"}", TYPED, 200, NULL, "ap_typed00000001"},
        {"typ JWT (an ID token)", S_RSA, 0, NULL, TYPED, 401, "unsupported_header",
         "ap_typed00000001"},
        {"no typ", S_RSA, 0, "{\"alg\":\"RS256\"}", TYPED, 401, "unsupported_header", NULL},
        {"typ not a string", S_RSA, 0, "{\"alg\":\"RS256\",\"typ\":1}", TYPED, 401,
         "unsupported_header", NULL},
        {"another media type", S_RSA, 0, "{\"alg\":\"RS256\",\"typ\":\"text/at+jwt\"}", TYPED, 401,
         "unsupported_header", NULL},
        {"a prefix is not the type", S_RSA, 0, "{\"alg\":\"RS256\",\"typ\":\"at+jwt2\"}", TYPED,
         401, "unsupported_header", NULL},
        {"signature first", S_STRANGER, 0, NULL, TYPED, 401, "bad_signature", NULL},
        {"claims still checked", S_RSA, 0, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}",
         "{\"gatehouse_key\":\"<typed>\",\"exp\":<past>}", 401, "expired", NULL},
        {"no list: any typ", S_RSA, 0, NULL, "{\"gatehouse_key\":\"<pem>\",\"exp\":<exp>}", 200,
         NULL, "ap_pem0000000001"},
        {"no list: no typ", S_RSA, 0, "{\"alg\":\"RS256\"}",
         "{\"gatehouse_key\":\"<pem>\",\"exp\":<exp>}", 200, NULL, "ap_pem0000000001"},
    };
    struct world *w = *state;
    struct gh_decision d;
    char *auth;

    RUN_JWT_CASES(w, cases);
    /* the answer says which type came and which are taken, and explain says it too */
    auth = bearer(w, S_RSA, 0, NULL, TYPED);
    decide(w, &(struct call){.authorization = auth, .explain = 1}, &d);
    assert_non_null(strstr(d.message, "token type 'JWT' is not accepted by this profile "
                                      "(accepted: at+jwt, application/example+jwt)"));
    assert_non_null(strstr(d.steps[d.n_steps - 1].detail, "token type 'JWT' is not accepted"));
    gh_decision_clear(&d);
    free(auth);
    auth = bearer(w, S_RSA, 0, "{\"alg\":\"RS256\"}", TYPED);
    decide(w, &(struct call){.authorization = auth}, &d);
    assert_non_null(strstr(d.message, "the token has no type (typ)"));
    gh_decision_clear(&d);
    free(auth);
#undef TYPED
}

/* ---- oidc profiles with the mock IdP ---- */

static void test_oidc_valid_token(void **state)
{
    static const struct jwt_case cases[] = {
        {"IdP token", S_IDP, 0, "{\"alg\":\"RS256\",\"kid\":\"idp1\",\"typ\":\"at+jwt\"}",
         "{\"gatehouse_key\":\"<oidc>\",\"iss\":\"<iss>\",\"exp\":<exp>,\"sub\":\"client-7\"}", 200,
         NULL, "ap_oidc000000001"},
        {"IdP token without kid", S_IDP, 0, NULL,
         "{\"https://gatehouse.dev/key\":\"<oidc>\",\"iss\":\"<iss>\",\"exp\":<exp>}", 200, NULL,
         "ap_oidc000000001"},
    };
    RUN_JWT_CASES(*state, cases);
}

static void test_oidc_unknown_kid_asks_for_refetch(void **state)
{
    struct world *w = *state;
    struct gh_decision d;
    char *auth = bearer(w, S_IDP_NEW, 0, "{\"alg\":\"RS256\",\"kid\":\"idp-new\"}",
                        "{\"gatehouse_key\":\"<oidc>\",\"iss\":\"<iss>\",\"exp\":<exp>}");

    decide(w, &(struct call){.authorization = auth}, &d);
    assert_int_equal(d.outcome, GH_OUTCOME_REFETCH);
    assert_ptr_equal(d.provider, w->provider);
    assert_non_null(d.keyset);
    assert_string_equal(d.profile->id, "ap_oidc000000001");
    assert_null(d.claims_b64);
    gh_decision_clear(&d);
    assert_null(d.keyset);

    decide(w, &(struct call){.authorization = auth, .after_refetch = 1}, &d);
    expect("unknown kid after the refetch", &d, 401, "invalid_token", "unknown_kid", NULL);
    assert_null(d.keyset);
    gh_decision_clear(&d);
    free(auth);
}

static void test_oidc_issuer_must_be_the_providers(void **state)
{
    static const struct jwt_case cases[] = {
        {"another issuer", S_IDP, 0, NULL,
         "{\"gatehouse_key\":\"<oidc>\",\"iss\":\"https://other.example\",\"exp\":<exp>}", 401,
         "wrong_issuer", NULL},
        {"issuer with a trailing slash", S_IDP, 0, NULL,
         "{\"gatehouse_key\":\"<oidc>\",\"iss\":\"<iss>/\",\"exp\":<exp>}", 401, "wrong_issuer",
         NULL},
        {"no issuer", S_IDP, 0, NULL, "{\"gatehouse_key\":\"<oidc>\",\"exp\":<exp>}", 401, NULL,
         NULL},
    };
    RUN_JWT_CASES(*state, cases);
}

static void test_oidc_keys_unavailable(void **state)
{
    static const struct jwt_case cases[] = {
        {"provider that never had keys", S_IDP, 0, NULL,
         "{\"gatehouse_key\":\"<nokeys>\",\"iss\":\"<iss>\",\"exp\":<exp>}", 401,
         "keys_unavailable", "ap_oidcnokeys001"},
    };
    struct world *w = *state;
    struct gh_decision d;
    char *auth =
        bearer(w, S_IDP, 0, NULL, "{\"gatehouse_key\":\"<oidc>\",\"iss\":\"<iss>\",\"exp\":<far>}");

    RUN_JWT_CASES(w, cases);
    /* keys an hour old by a clock four days on: past their expiry plus 24 h of max-stale */
    decide(w, &(struct call){.authorization = auth, .now = NOW + 4 * 86400}, &d);
    expect("stale keys", &d, 401, "invalid_token", "keys_unavailable", NULL);
    gh_decision_clear(&d);
    free(auth);
}

/* ---- authorization ---- */

struct auth_case {
    const char *name;
    enum pkey key;
    const char *ip;
    int status;
};

static void run_auth_cases(const struct world *w, const struct auth_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct gh_decision d;
        decide(w, &(struct call){.api_token = w->plain[cases[i].key], .ip = cases[i].ip}, &d);
        expect(cases[i].name, &d, cases[i].status, cases[i].status == 403 ? "forbidden" : NULL,
               NULL, NULL);
        gh_decision_clear(&d);
    }
}

static void test_authorize_forbidden(void **state)
{
    static const struct auth_case cases[] = {
        {"inactive profile", K_INACTIVE, NULL, 403},
        {"inactive client", K_CLIENT_OFF, NULL, 403},
        {"collection not granted", K_NOT_GRANTED, NULL, 403},
        {"ip_deny IPv4", K_IP_DENY, "10.1.2.3", 403},
        {"ip_deny IPv6", K_IP_DENY, "2001:db8:bad::1", 403},
        {"ip_deny IPv4-mapped", K_IP_DENY, "::ffff:10.1.2.3", 403},
        {"ip_allow IPv4 miss", K_IP_ALLOW4, "198.51.100.1", 403},
        {"ip_allow IPv4 miss from IPv6", K_IP_ALLOW4, "2001:db8::1", 403},
        {"ip_allow IPv4 miss, mapped", K_IP_ALLOW4, "::ffff:198.51.100.1", 403},
        {"ip_allow IPv6 miss", K_IP_ALLOW6, "2001:db9::1", 403},
        {"ip_allow IPv6 miss from IPv4", K_IP_ALLOW6, "192.0.2.1", 403},
    };
    struct world *w = *state;
    struct gh_decision d;
    char *jwt = bearer(w, S_HMAC, 0, NULL, "{\"gatehouse_key\":\"<hmac>\",\"exp\":<exp>}");
    run_auth_cases(w, cases, sizeof cases / sizeof cases[0]);
    /* a verified token is forbidden too where its profile does not grant the collection */
    decide(w, &(struct call){.authorization = jwt, .path = "/other/v1/x"}, &d);
    expect("jwt profile, other collection", &d, 403, "forbidden", NULL, "ap_hmac000000001");
    gh_decision_clear(&d);
    free(jwt);
}

static void test_authorize_ip_allow_match(void **state)
{
    static const struct auth_case cases[] = {
        {"ip_allow IPv4 hit", K_IP_ALLOW4, "192.0.2.55", 200},
        {"ip_allow IPv4 hit, mapped", K_IP_ALLOW4, "::ffff:192.0.2.55", 200},
        {"ip_allow IPv6 hit", K_IP_ALLOW6, "2001:db8:1::5", 200},
        {"ip_deny miss", K_IP_DENY, "11.0.0.1", 200},
        {"ip_deny miss IPv6", K_IP_DENY, "2001:db8:bae::1", 200},
        {"no lists", K_TOKEN, "::1", 200},
    };
    run_auth_cases(*state, cases, sizeof cases / sizeof cases[0]);
}

/* ---- explain ---- */

struct step_want {
    const char *name;
    int ok;
};

static void expect_steps(const char *what, const struct gh_decision *d,
                         const struct step_want *want, size_t n)
{
    if (d->n_steps != n)
        fail_msg("%s: %zu steps, want %zu", what, d->n_steps, n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(d->steps[i].name, want[i].name) != 0 || d->steps[i].ok != want[i].ok)
            fail_msg("%s: step %zu is %s/%d, want %s/%d", what, i, d->steps[i].name, d->steps[i].ok,
                     want[i].name, want[i].ok);
        if (d->steps[i].detail[0] == '\0')
            fail_msg("%s: step %zu says nothing", what, i);
    }
}

/* explain never claims a refetch that would not happen (issue 10, item 7): it says whether the
 * gateway would refetch, or that the kid is remembered unknown, or that a refetch just happened. */
static struct gh_decision explain_kid(struct world *w, const char *kid)
{
    char header[96];
    struct gh_decision d;
    snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
    char *auth = bearer(w, S_IDP_NEW, 0, header,
                        "{\"gatehouse_key\":\"<oidc>\",\"iss\":\"<iss>\",\"exp\":<exp>}");
    decide(w, &(struct call){.authorization = auth, .explain = 1}, &d);
    free(auth);
    return d;
}

static void on_refetched(struct gh_provider_wait *wait, int result)
{
    atomic_store((atomic_int *)wait->ctx, result == GH_OK ? 1 : -1);
}

static void test_explain_unknown_kid_says_whether_keys_are_refetched(void **state)
{
    struct world *w = *state;
    struct gh_decision d = explain_kid(w, "made-up-1");
    atomic_int done = 0;
    struct gh_provider_wait wait = {.notify = on_refetched, .ctx = &done};

    assert_int_equal(d.outcome, GH_OUTCOME_REFETCH);
    assert_non_null(strstr(d.steps[d.n_steps - 1].detail, "would refetch"));
    assert_int_equal(
        gh_provider_request_refetch(d.provider, d.keyset, d.kid, d.kid_len, &wait, NULL), 1);
    for (int i = 0; i < 10000 && atomic_load(&done) == 0; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&done), 1);
    gh_decision_clear(&d);
    /* the same kid, still unknown after that refetch */
    d = explain_kid(w, "made-up-1");
    expect("remembered unknown kid", &d, 401, "invalid_token", "unknown_kid", NULL);
    assert_non_null(strstr(d.steps[d.n_steps - 1].detail, "remembered as unknown"));
    assert_null(strstr(d.steps[d.n_steps - 1].detail, "would refetch"));
    gh_decision_clear(&d);
    /* another kid right after: no refetch yet either, and explain says so */
    d = explain_kid(w, "made-up-2");
    expect("kid right after a refetch", &d, 401, "invalid_token", "unknown_kid", NULL);
    assert_non_null(strstr(d.steps[d.n_steps - 1].detail, "refused without fetching"));
    gh_decision_clear(&d);
}

static void test_explain_records_steps(void **state)
{
    static const struct step_want allowed[] = {
        {"route", 1}, {"credential", 1}, {"profile", 1}, {"signature", 1}, {"authorize", 1}};
    static const struct step_want expired[] = {
        {"route", 1}, {"credential", 1}, {"profile", 1}, {"claims", 0}};
    struct world *w = *state;
    struct gh_decision d;
    char *ok = bearer(w, S_RSA, 0, NULL, "{\"gatehouse_key\":\"<pem>\",\"exp\":<exp>}");
    char *old = bearer(w, S_RSA, 0, NULL, "{\"gatehouse_key\":\"<pem>\",\"exp\":<past>}");

    decide(w, &(struct call){.authorization = ok, .explain = 1}, &d);
    expect("explain allowed", &d, 200, NULL, NULL, NULL);
    expect_steps("explain allowed", &d, allowed, 5);
    gh_decision_clear(&d);
    decide(w, &(struct call){.authorization = old, .explain = 1}, &d);
    expect_steps("explain expired", &d, expired, 4);
    gh_decision_clear(&d);
    decide(w, &(struct call){.authorization = ok}, &d);
    assert_int_equal(d.n_steps, 0);
    gh_decision_clear(&d);
    decide(w, &(struct call){.authorization = old}, &d);
    assert_int_equal(d.n_steps, 0);
    gh_decision_clear(&d);
    free(ok);
    free(old);
}

/* The credential step names the token's alg with the article it is read with: "an ES256 JWT"
 * ("ee-es"), "an RS256 JWT" ("ar-es"), "a PS256 JWT" ("pee-es"). */
static void test_explain_credential_article(void **state)
{
    static const struct {
        enum signer signer;
        enum gh_alg alg;
        const char *detail;
    } cases[] = {{S_EC, GH_ALG_UNKNOWN, "an ES256 JWT"},
                 {S_RSA, GH_ALG_UNKNOWN, "an RS256 JWT"},
                 {S_RSA, GH_ALG_PS256, "a PS256 JWT"}};
    struct world *w = *state;
    struct gh_decision d;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *token = bearer(w, cases[i].signer, cases[i].alg, NULL,
                             "{\"gatehouse_key\":\"<pem>\",\"exp\":<exp>}");
        decide(w, &(struct call){.authorization = token, .explain = 1}, &d);
        assert_true(d.n_steps >= 2);
        assert_string_equal(d.steps[1].name, "credential");
        assert_string_equal(d.steps[1].detail, cases[i].detail);
        gh_decision_clear(&d);
        free(token);
    }
}

static void test_explain_failing_step_is_last(void **state)
{
    static const struct step_want not_found[] = {{"route", 0}};
    static const struct step_want no_credential[] = {{"route", 1}, {"credential", 0}};
    static const struct step_want unknown_key[] = {{"route", 1}, {"credential", 1}, {"profile", 0}};
    static const struct step_want forbidden[] = {
        {"route", 1}, {"credential", 1}, {"profile", 1}, {"authorize", 0}};
    static const struct step_want bad_sig[] = {
        {"route", 1}, {"credential", 1}, {"profile", 1}, {"signature", 0}};
    struct world *w = *state;
    struct gh_decision d;
    char *forged = bearer(w, S_STRANGER, 0, NULL, "{\"gatehouse_key\":\"<pem>\",\"exp\":<exp>}");
    const struct {
        const char *what;
        struct call call;
        const struct step_want *want;
        size_t n;
    } cases[] = {
        {"404", {.path = "/nothing", .explain = 1}, not_found, 1},
        {"401 no credential", {.explain = 1}, no_credential, 2},
        {"401 unknown key", {.api_token = w->plain[K_UNKNOWN], .explain = 1}, unknown_key, 3},
        {"403 inactive", {.api_token = w->plain[K_INACTIVE], .explain = 1}, forbidden, 4},
        {"401 bad signature", {.authorization = forged, .explain = 1}, bad_sig, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        decide(w, &cases[i].call, &d);
        expect_steps(cases[i].what, &d, cases[i].want, cases[i].n);
        gh_decision_clear(&d);
    }
    free(forged);
}

/* ---- ownership ---- */

static void test_decision_clear_frees_everything(void **state)
{
    /* LeakSanitizer (the ASan build) proves the frees; here: every owned pointer is let go and a
     * second clear is harmless. */
    struct world *w = *state;
    struct gh_decision d;
    char *ok =
        bearer(w, S_RSA, 0, NULL, "{\"gatehouse_key\":\"<pem>\",\"exp\":<exp>,\"sub\":\"s\"}");
    char *rotated = bearer(w, S_IDP_NEW, 0, "{\"alg\":\"RS256\",\"kid\":\"idp-new\"}",
                           "{\"gatehouse_key\":\"<oidc>\",\"iss\":\"<iss>\",\"exp\":<exp>}");

    decide(w, &(struct call){.authorization = ok}, &d);
    assert_non_null(d.claims_b64);
    assert_non_null(d.subject);
    gh_decision_clear(&d);
    assert_null(d.claims_b64);
    assert_null(d.subject);
    gh_decision_clear(&d);
    decide(w, &(struct call){.authorization = rotated}, &d);
    assert_non_null(d.keyset);
    gh_decision_clear(&d);
    assert_null(d.keyset);
    gh_decision_clear(&d);
    decide(w, &(struct call){.path = "/nothing"}, &d); /* nothing owned: still fine to clear */
    gh_decision_clear(&d);
    free(ok);
    free(rotated);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_not_found),
        cmocka_unit_test(test_route_method_not_allowed),
        cmocka_unit_test(test_route_405_allow),
        cmocka_unit_test(test_route_any_method),
        cmocka_unit_test(test_route_exact_method_beats_any),
        cmocka_unit_test(test_route_templates),
        cmocka_unit_test(test_route_collection_path_boundary),
        cmocka_unit_test(test_route_refuses_ambiguous_paths),
        cmocka_unit_test(test_route_refuses_dot_segments_with_parameters),
        cmocka_unit_test(test_route_refuses_fragment),
        cmocka_unit_test(test_route_any_takes_spec_methods_only),
        cmocka_unit_test(test_credential_none),
        cmocka_unit_test(test_credential_api_token_header),
        cmocka_unit_test(test_credential_basic_api_token),
        cmocka_unit_test(test_credential_api_token_wins),
        cmocka_unit_test(test_credential_bearer_jwt),
        cmocka_unit_test(test_token_unknown_key),
        cmocka_unit_test(test_token_key_of_jwt_profile_is_no_credential),
        cmocka_unit_test(test_token_expired_key_refused),
        cmocka_unit_test(test_token_expiry_in_other_rfc3339_spellings),
        cmocka_unit_test(test_token_grace_key_allowed),
        cmocka_unit_test(test_key_lookup_custom_claim_first),
        cmocka_unit_test(test_key_lookup_default_order),
        cmocka_unit_test(test_key_lookup_no_fall_through),
        cmocka_unit_test(test_key_lookup_custom_claim_binds_only_its_profile),
        cmocka_unit_test(test_key_lookup_default_claim_never_binds_custom_profile),
        cmocka_unit_test(test_jwt_pem_key),
        cmocka_unit_test(test_jwt_jwk_key),
        cmocka_unit_test(test_jwt_hmac_secret),
        cmocka_unit_test(test_jwt_token_types),
        cmocka_unit_test(test_jwt_refusals),
        cmocka_unit_test(test_oidc_valid_token),
        cmocka_unit_test(test_oidc_unknown_kid_asks_for_refetch),
        cmocka_unit_test(test_oidc_issuer_must_be_the_providers),
        cmocka_unit_test(test_oidc_keys_unavailable),
        cmocka_unit_test(test_authorize_forbidden),
        cmocka_unit_test(test_authorize_ip_allow_match),
        cmocka_unit_test(test_explain_records_steps),
        cmocka_unit_test(test_explain_credential_article),
        cmocka_unit_test(test_explain_failing_step_is_last),
        cmocka_unit_test(test_decision_clear_frees_everything),
        /* last: it spends the provider's refetch budget */
        cmocka_unit_test(test_explain_unknown_kid_says_whether_keys_are_refetched),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
