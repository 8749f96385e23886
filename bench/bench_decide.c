// SPDX-License-Identifier: Apache-2.0
/*
 * What does the verified-token cache save? This measures gh_gateway_decide, the gateway's whole
 * decision for one request (route, credential, profile binding, verification, authorization), for
 * one RS256 token sent again and again, as a client with a valid access token does, without a
 * cache and with one. Two profiles: `jwt` (a static PEM key in the configuration) and `oidc` (the
 * key set of a mock IdP on loopback, fetched once by the provider manager, three keys with the
 * token naming the last). As in bench_verify, both sides run in the same process in alternating
 * rounds of thread CPU time, and the ratio of their medians is the number to compare.
 *
 * usage: bench_decide [--rounds N] [--round-ms MS]
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
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

#define MAX_ROUNDS   100
#define KEYS_PER_SET 3
#define ISSUER       "https://idp.example.com/oauth2/aus4x8d2k1QwErTy5357"
#define AUDIENCE     "api://orders"
#define PROFILE_KEY  "gk_Zr8vXq3LmN0pT6wY9aB2cD5eF7gH1jK4sU8iO0lQ2"
#define OIDC_KEY     "gk_Pq7wE2rT9yU4iO1pA6sD3fG8hJ5kL0zX7cV2bN9mQ"

struct world {
    struct gh_testkey keys[KEYS_PER_SET]; /* the last one signs; the static key is keys[2] too */
    struct gh_gateway_settings settings;
    struct gh_config *config;
    struct gh_mockidp *idp;
    struct gh_oidc_options options;
    struct gh_oidc_manager *manager;
    struct gh_provider *provider;
    char issuer[128], discovery_url[256];
};

/* One measured case: a request view and whether it carries the cache. */
struct bench_case {
    const struct world *w;
    struct gh_request_view req;
    char *authorization;
    int64_t now;
};

static void die(const char *what)
{
    fprintf(stderr, "bench_decide: %s\n", what);
    exit(1);
}

/* Thread CPU time: descheduled gaps on a shared machine count for neither side. */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the configuration: one collection, one endpoint, a jwt and an oidc profile ---- */

static json_t *key_json(const char *id, const char *profile_id, const char *plain)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1], prefix[9];

    SHA256((const unsigned char *)plain, strlen(plain), digest);
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    snprintf(prefix, sizeof prefix, "%.8s", plain);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:n}", "id", id, "profile_id", profile_id, "prefix",
                     prefix, "hash", hex, "created_at", "2023-01-01T00:00:00Z", "expires_at");
}

static json_t *profile_json(const struct world *w, const char *id, const char *pem)
{
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:b, s:[s], s:n, s:n, s:[s, s], s:[], s:[s], "
                          "s:[s], s:i, s:[], s:[]}",
                          "id", id, "name", id, "client_id", "cli_benchclient01", "auth_type",
                          pem ? "jwt" : "oidc", "active", 1, "collection_ids", "col_orders000001",
                          "policy_id", "key_claim", "required_claims", "exp", "sub",
                          "allowed_issuers", "audiences", AUDIENCE, "algorithms", "RS256",
                          "leeway_seconds", 60, "ip_allow", "ip_deny");
    if (pem != NULL)
        json_array_append_new(json_object_get(p, "allowed_issuers"), json_string(ISSUER));
    json_object_set_new(p, "jwt_key", pem ? json_string(pem) : json_null());
    json_object_set_new(p, "oidc_discovery_url", pem ? json_null() : json_string(w->discovery_url));
    json_object_set_new(p, "oidc_jwks_uri", json_null());
    return p;
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

static void build_config(struct world *w)
{
    char *pem = pem_of(&w->keys[KEYS_PER_SET - 1]);
    json_t *doc;

    if (pem == NULL)
        die("cannot export the static key");
    doc = json_pack(
        "{s:[{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:i}], s:[{s:s, s:s, s:s, s:s, s:n, s:b, s:n}],"
        " s:[{s:s, s:s, s:s, s:b}], s:[], s:[o, o], s:[o, o], s:i}",
        "collections", "id", "col_orders000001", "name", "orders", "version", "v1", "path",
        "/orders/v1", "upstream", "http://127.0.0.1:9/base", "active", 1, "forward_authorization",
        1, "timeout_ms", 30000, "endpoints", "id", "ep_itemget000001", "collection_id",
        "col_orders000001", "method", "GET", "path", "/items/:id", "name", "active", 1,
        "timeout_ms", "clients", "id", "cli_benchclient01", "name", "client", "description", "",
        "active", 1, "policies", "profiles", profile_json(w, "ap_benchjwt00001", pem),
        profile_json(w, "ap_benchoidc0001", NULL), "keys",
        key_json("key_benchjwt0001", "ap_benchjwt00001", PROFILE_KEY),
        key_json("key_benchoidc001", "ap_benchoidc0001", OIDC_KEY), "generation", 1);
    free(pem);
    if (doc == NULL || gh_config_build(doc, &w->config) != GH_OK)
        die("cannot build the configuration");
    json_decref(doc);
    for (size_t i = 0; i < w->config->n_profiles; i++) {
        if (strcmp(w->config->profiles[i].id, "ap_benchoidc0001") == 0)
            w->config->profiles[i].provider = w->provider; /* as the publisher wires it */
    }
}

/* A kid as IdPs publish them: a base64url SHA-256 thumbprint (43 characters). */
static void make_kid(int index, char kid[64])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char seed[32];

    snprintf(seed, sizeof seed, "bench-decide-%d", index);
    SHA256((const unsigned char *)seed, strlen(seed), digest);
    gh_b64url_encode(digest, sizeof digest, kid);
}

static void start_idp(struct world *w)
{
    char jwks[16384] = "{\"keys\":[";

    for (int i = 0; i < KEYS_PER_SET; i++) {
        char *jwk = gh_testkey_public_jwk(&w->keys[i]);
        if (jwk == NULL || strlen(jwks) + strlen(jwk) + 4 > sizeof jwks)
            die("cannot write the key set");
        strcat(jwks, i ? "," : "");
        strcat(jwks, jwk);
        free(jwk);
    }
    strcat(jwks, "]}");
    if ((w->idp = gh_mockidp_start()) == NULL)
        die("cannot start the mock IdP");
    snprintf(w->issuer, sizeof w->issuer, "%s", gh_mockidp_base_url(w->idp));
    snprintf(w->discovery_url, sizeof w->discovery_url, "%s/.well-known/openid-configuration",
             w->issuer);
    gh_mockidp_serve_discovery(w->idp, NULL, "/jwks");
    gh_mockidp_set_json(w->idp, "/jwks", 200, jwks, "Cache-Control: max-age=3600\r\n");
    gh_oidc_options_default(&w->options);
    if (gh_oidc_manager_new(&w->options, &w->manager) != GH_OK ||
        gh_oidc_provider_get(w->manager, GH_PROVIDER_DISCOVERY, w->discovery_url, &w->provider) !=
            GH_OK ||
        gh_provider_wait_ready(w->provider, 5000) != GH_OK)
        die("the mock IdP's keys could not be fetched");
}

/* ---- tokens and requests ---- */

/* Header {"alg","kid","typ":"at+jwt"} (no kid for the static key) and the 600-byte payload of a
 * typical IdP access token, carrying the profile's key. */
static char *make_token(const struct world *w, int oidc, int64_t now)
{
    const struct gh_testkey *signer = &w->keys[KEYS_PER_SET - 1];
    char header[160], payload[1200], *token, *out;

    if (oidc)
        snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"kid\":\"%s\",\"typ\":\"at+jwt\"}",
                 signer->kid);
    else
        snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}");
    snprintf(payload, sizeof payload,
             "{\"ver\":1,\"jti\":\"AT.kF3c9Qz0bW7yL2nXp5RtVuH8sJ4mD6aE1gK\","
             "\"iss\":\"%s\",\"aud\":\"" AUDIENCE "\","
             "\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"auth_time\":%lld,"
             "\"cid\":\"0oa9x7c5v3b1n2m4q6w8\",\"client_id\":\"0oa9x7c5v3b1n2m4q6w8\","
             "\"uid\":\"00u2k4m6o8q0s2u4w6y8\",\"sub\":\"alice.martin@example.com\","
             "\"scope\":\"openid profile email offline_access orders:read orders:write\","
             "\"scp\":[\"openid\",\"profile\",\"email\",\"orders:read\",\"orders:write\"],"
             "\"groups\":[\"Everyone\",\"orders-admins\"],"
             "\"https://gatehouse.dev/key\":\"%s\"}",
             oidc ? w->issuer : ISSUER, (long long)now - 30, (long long)now - 30,
             (long long)now + 3600, (long long)now - 45, oidc ? OIDC_KEY : PROFILE_KEY);
    if ((token = gh_test_sign(signer, header, payload)) == NULL)
        die("cannot sign the token");
    if ((out = malloc(strlen(token) + 8)) == NULL)
        die("out of memory");
    sprintf(out, "Bearer %s", token);
    free(token);
    return out;
}

static void setup_case(struct bench_case *c, const struct world *w, int oidc,
                       struct gh_token_cache *cache, int64_t now)
{
    memset(c, 0, sizeof *c);
    c->w = w;
    c->now = now;
    c->authorization = make_token(w, oidc, now);
    c->req.method = "GET";
    c->req.method_len = 3;
    c->req.path = "/orders/v1/items/8f14e45f";
    c->req.path_len = strlen(c->req.path);
    c->req.authorization = c->authorization;
    c->req.authorization_len = strlen(c->authorization);
    c->req.family = 4;
    inet_pton(AF_INET, "203.0.113.9", c->req.addr);
    c->req.cache = cache;
}

/* One request, as a worker decides it (the decision is cleared as the request's end does). */
static int decide_once(const struct bench_case *c)
{
    struct gh_decision d;
    int ok;

    gh_gateway_decide(&c->w->settings, c->w->config, &c->req, c->now, 0, &d);
    ok = d.outcome == GH_OUTCOME_ALLOW && d.claims_b64 != NULL &&
         d.cache_hit == (c->req.cache != NULL);
    gh_decision_clear(&d);
    return ok;
}

/* Runs batches of `batch` decisions for at least `seconds`; decisions per second. */
static double run_round(const struct bench_case *c, size_t batch, double seconds)
{
    double start = now_seconds(), elapsed;
    size_t ops = 0, ok = 0;

    do {
        for (size_t i = 0; i < batch; i++)
            ok += (size_t)decide_once(c);
        ops += batch;
        elapsed = now_seconds() - start;
    } while (elapsed < seconds);
    if (ok != ops)
        die("a decision was not an allowed (cached) one while measuring");
    return (double)ops / elapsed;
}

/* A batch of about a millisecond, so reading the clock costs nothing. */
static size_t calibrate(const struct bench_case *c)
{
    size_t batch = (size_t)(run_round(c, 1, 0.05) / 1000.0);
    return batch > 0 ? batch : 1;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int n)
{
    qsort(values, (size_t)n, sizeof *values, compare_doubles);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

struct result {
    double plain, cached, ratio_min, ratio_max;
};

/* Alternating rounds, order swapped each round, so drift and neighbours hit both sides alike. */
static struct result measure(const struct bench_case *plain, const struct bench_case *cached,
                             int rounds, double seconds)
{
    double p[MAX_ROUNDS], k[MAX_ROUNDS];
    struct result r = {0, 0, 1e9, 0};
    size_t p_batch, k_batch;

    if (!decide_once(plain))
        die("the token is not allowed before measuring");
    decide_once(cached); /* the miss that fills the cache */
    p_batch = calibrate(plain);
    k_batch = calibrate(cached);
    for (int i = 0; i < rounds; i++) {
        if (i % 2 == 0) {
            p[i] = run_round(plain, p_batch, seconds);
            k[i] = run_round(cached, k_batch, seconds);
        } else {
            k[i] = run_round(cached, k_batch, seconds);
            p[i] = run_round(plain, p_batch, seconds);
        }
        double ratio = k[i] / p[i];
        r.ratio_min = ratio < r.ratio_min ? ratio : r.ratio_min;
        r.ratio_max = ratio > r.ratio_max ? ratio : r.ratio_max;
    }
    r.plain = median(p, rounds);
    r.cached = median(k, rounds);
    return r;
}

static void setup_world(struct world *w)
{
    memset(w, 0, sizeof *w);
    for (int i = 0; i < KEYS_PER_SET; i++) {
        char kid[64];
        make_kid(i, kid);
        if (gh_testkey_generate(GH_ALG_RS256, kid, 0, &w->keys[i]) != 0)
            die("cannot generate a key");
    }
    if (gh_key_claims_parse(GH_KEY_CLAIMS_DEFAULT, &w->settings.default_claims) != GH_OK)
        die("cannot parse the default key claims");
    start_idp(w);
    build_config(w);
}

static void clear_world(struct world *w)
{
    gh_config_unref(w->config);
    gh_oidc_manager_free(w->manager);
    gh_mockidp_stop(w->idp);
    gh_key_claims_clear(&w->settings.default_claims);
    for (int i = 0; i < KEYS_PER_SET; i++)
        gh_testkey_clear(&w->keys[i]);
}

int main(int argc, char **argv)
{
    int rounds = 10, round_ms = 200;
    int64_t now = (int64_t)time(NULL);
    struct world w;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--round-ms") == 0 && i + 1 < argc)
            round_ms = atoi(argv[++i]);
        else
            rounds = 0;
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || round_ms < 1) {
        fputs("usage: bench_decide [--rounds N] [--round-ms MS]  (defaults 10, 200)\n", stderr);
        return 2;
    }
    setup_world(&w);
    printf("# bench_decide: gh_gateway_decide for one repeated RS256 token, without and with the\n"
           "# verified-token cache; %d alternating rounds of %d ms, medians of thread CPU time;\n"
           "# single thread; %s\n",
           rounds, round_ms, OpenSSL_version(OPENSSL_VERSION));
    printf("%-8s %16s %16s %8s %15s %14s %14s %8s\n", "profile", "no cache dec/s", "cache dec/s",
           "ratio", "round ratios", "no cache us", "cache us", "token B");
    fflush(stdout);
    for (int oidc = 0; oidc < 2; oidc++) {
        struct gh_token_cache *cache = NULL;
        struct bench_case plain, cached;
        char range[32];

        if (gh_token_cache_new(GH_TOKEN_CACHE_ENTRIES, GH_TOKEN_CACHE_BYTES, &cache) != GH_OK)
            die("cannot make a cache");
        setup_case(&plain, &w, oidc, NULL, now);
        setup_case(&cached, &w, oidc, cache, now);
        struct result r = measure(&plain, &cached, rounds, round_ms / 1000.0);
        snprintf(range, sizeof range, "%.1f..%.1f", r.ratio_min, r.ratio_max);
        printf("%-8s %16.0f %16.0f %8.1f %15s %14.2f %14.2f %8zu\n", oidc ? "oidc" : "jwt", r.plain,
               r.cached, r.cached / r.plain, range, 1e6 / r.plain, 1e6 / r.cached,
               strlen(plain.authorization) - strlen("Bearer "));
        fflush(stdout);
        free(plain.authorization);
        free(cached.authorization);
        gh_token_cache_free(cache);
    }
    printf("# request: GET /orders/v1/items/8f14e45f; ratio = cache/no cache medians;\n"
           "# us = microseconds per decision (each one allowed)\n");
    clear_world(&w);
    return 0;
}
