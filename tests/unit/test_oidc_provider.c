// SPDX-License-Identifier: Apache-2.0
/*
 * The provider manager against a scriptable IdP on loopback (tests/kit/mockidp), with an injected
 * clock so that hours of cache lifetime pass in milliseconds: discovery, caching and background
 * refresh, single-flight refetches for unknown kids (their rule: test_oidc_kids.c), rotation, stale
 * keys on errors and max-stale, every refused document, persistence across a restart while the IdP
 * is down, and TLS verification.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "jose/jwt.h"
#include "mockidp.h"
#include "oidc/provider.h"
#include "oidckit.h"
#include "testkit.h"

#define START_MS 1700000000000LL

static int setup(void **state)
{
    struct gh_oidckit *f = calloc(1, sizeof *f);
    if (gh_oidckit_init(f, START_MS, GH_ALG_RS256, GH_ALG_ES256, "Cache-Control: max-age=120\r\n"))
        return -1;
    f->options.fetch_timeout_ms = 1000; /* the real-time limit, short for the timeout tests */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    gh_oidckit_clear(*state);
    free(*state);
    return 0;
}

/*
 * Waits (real time, up to 10 s: sanitizers and a loaded machine are slow) until the IdP has served
 * `fetches` key sets AND the manager has published the result of a successful refresh: a key set
 * fetched at the current (fake) time and no last error. Conditions, never sleeps, so the tests
 * hold however slowly the manager thread runs.
 */
static void wait_jwks_fetches(struct gh_oidckit *f, struct gh_provider *p, uint64_t fetches)
{
    assert_true(gh_mockidp_wait_hits(f->idp, "/jwks", (unsigned)fetches, 10000) >= fetches);
    for (int i = 0; i < 1000; i++) {
        struct gh_keyset *ks = gh_provider_keys(p);
        json_t *status = gh_provider_status(p);
        int published = ks != NULL && ks->fetched_at == gh_oidckit_clock_now() &&
                        json_is_null(json_object_get(status, "last_error"));
        json_decref(status);
        gh_keyset_unref(ks);
        if (published)
            return;
        usleep(10000);
    }
    fail_msg("the provider did not publish a refreshed key set within 10 s");
}

static void test_discovery_then_keys(void **state)
{
    struct gh_oidckit *f = *state;
    struct gh_provider *p = gh_oidckit_start(f, GH_OK);
    struct gh_keyset *ks = gh_provider_keys(p);
    char jwks_uri[256];

    snprintf(jwks_uri, sizeof jwks_uri, "%s/jwks", gh_mockidp_base_url(f->idp));
    assert_non_null(ks);
    assert_string_equal(ks->issuer, gh_mockidp_base_url(f->idp));
    assert_string_equal(ks->jwks_uri, jwks_uri);
    assert_int_equal(gh_jwks_usable(ks->jwks), 1);
    assert_int_equal(ks->expires_at - ks->fetched_at, 120000);
    assert_int_equal(gh_provider_usable(p, ks, START_MS), GH_OK);
    gh_keyset_unref(ks);
    assert_int_equal(gh_mockidp_hits(f->idp, "/.well-known/openid-configuration"), 1);
    assert_int_equal(gh_mockidp_hits(f->idp, "/jwks"), 1);
    /* the same URL is the same provider */
    struct gh_provider *again;
    assert_int_equal(gh_oidc_provider_get(f->m, GH_PROVIDER_DISCOVERY, f->discovery_url, &again),
                     GH_OK);
    assert_ptr_equal(again, p);
    assert_int_equal(strncmp(gh_provider_id(p), "prv_", 4), 0);
    assert_int_equal(strlen(gh_provider_id(p)), 20);
    json_t *status = gh_provider_status(p);
    assert_string_equal(json_string_value(json_object_get(status, "issuer")),
                        gh_mockidp_base_url(f->idp));
    assert_true(json_is_false(json_object_get(status, "stale")));
    assert_true(json_is_null(json_object_get(status, "last_error")));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(status, "keys"), 0), "kid")),
                        "k1");
    assert_non_null(json_string_value(json_object_get(status, "fetched_at")));
    assert_non_null(json_string_value(json_object_get(status, "next_refresh_at")));
    json_decref(status);
}

static int64_t lifetime_for(struct gh_oidckit *f, const char *headers)
{
    struct gh_provider *p;
    gh_oidckit_serve_keys(f, &f->k1, NULL, headers);
    p = gh_oidckit_start(f, GH_OK);
    struct gh_keyset *ks = gh_provider_keys(p);
    int64_t ttl = ks->expires_at - ks->fetched_at;
    gh_keyset_unref(ks);
    gh_oidc_manager_free(f->m);
    f->m = NULL;
    return ttl / 1000;
}

static void test_cache_lifetime_is_clamped(void **state)
{
    struct gh_oidckit *f = *state;
    assert_int_equal(lifetime_for(f, "Cache-Control: max-age=5\r\n"), 60);
    assert_int_equal(lifetime_for(f, "Cache-Control: public, max-age=999999\r\n"), 86400);
    assert_int_equal(lifetime_for(f, NULL), 900);
    assert_int_equal(lifetime_for(f, "Cache-Control: no-store\r\n"), 60);
}

static void test_background_refresh_before_expiry(void **state)
{
    struct gh_oidckit *f = *state;
    struct gh_provider *p = gh_oidckit_start(f, GH_OK); /* max-age=120: refresh at 90 s */
    struct gh_keyset *before = gh_provider_keys(p), *after;

    gh_oidckit_advance(f, 80000);
    usleep(200000);
    assert_int_equal(gh_mockidp_hits(f->idp, "/jwks"), 1);
    gh_oidckit_serve_keys(f, &f->k1, &f->k2,
                          "Cache-Control: max-age=120\r\n"); /* the IdP publishes a new key */
    gh_oidckit_advance(f, 11000);
    wait_jwks_fetches(f, p, 2);
    assert_true(gh_oidckit_has_kid(p, "k2"));
    after = gh_provider_keys(p);
    assert_ptr_not_equal(after, before);
    assert_int_equal(after->generation, before->generation + 1);
    assert_int_equal(after->fetched_at, START_MS + 91000);
    gh_keyset_unref(after);
    gh_keyset_unref(before);
}

/* ---- waiters delivered through a pipe: the test thread's "event loop" ---- */

struct mailbox {
    int fds[2];
};

struct test_wait {
    struct gh_provider_wait w;
    struct mailbox *box;
    int result;
    atomic_int notified;
};

static void post(struct gh_provider_wait *w, int result)
{
    struct test_wait *tw = (struct test_wait *)w;
    tw->result = result;
    atomic_fetch_add(&tw->notified, 1);
    ssize_t n = write(tw->box->fds[1], &tw, sizeof tw);
    (void)n;
}

/* Receives one notification in the test thread, or NULL after `timeout_ms`. */
static struct test_wait *receive(struct mailbox *box, int timeout_ms)
{
    struct pollfd pfd = {.fd = box->fds[0], .events = POLLIN};
    struct test_wait *tw = NULL;
    if (poll(&pfd, 1, timeout_ms) == 1 && read(box->fds[0], &tw, sizeof tw) == sizeof tw)
        return tw;
    return NULL;
}

struct waiter_thread_args {
    struct gh_provider *p;
    struct gh_keyset *ks;
    struct test_wait *waits;
    int count;
    atomic_int *immediate;
};

static void *register_waiters(void *arg)
{
    struct waiter_thread_args *a = arg;
    for (int i = 0; i < a->count; i++) {
        int rc = gh_provider_request_refetch(a->p, a->ks, "k2", 2, &a->waits[i].w, NULL);
        if (rc != 1)
            atomic_fetch_add(a->immediate, 1);
    }
    return NULL;
}

static void test_hundred_concurrent_waits_one_fetch(void **state)
{
    struct gh_oidckit *f = *state;
    struct gh_provider *p = gh_oidckit_start(f, GH_OK);
    struct gh_keyset *ks = gh_provider_keys(p);
    struct mailbox box;
    struct test_wait waits[100];
    pthread_t threads[4];
    struct waiter_thread_args args[4];
    atomic_int immediate = 0;

    assert_int_equal(pipe(box.fds), 0);
    memset(waits, 0, sizeof waits);
    for (int i = 0; i < 100; i++) {
        waits[i].w.notify = post;
        waits[i].box = &box;
    }
    /* the IdP now signs with k2, and is slow to answer, so every wait overlaps the one fetch */
    char *doc = gh_oidckit_jwks_text(&f->k1, &f->k2);
    struct gh_mock_response slow = {
        .status = 200, .content_type = "application/json", .body = doc, .delay_ms = 300};
    gh_mockidp_set(f->idp, "/jwks", &slow);
    free(doc);
    for (int t = 0; t < 4; t++) {
        args[t] = (struct waiter_thread_args){p, ks, waits + t * 25, 25, &immediate};
        pthread_create(&threads[t], NULL, register_waiters, &args[t]);
    }
    for (int t = 0; t < 4; t++)
        pthread_join(threads[t], NULL);
    assert_int_equal(atomic_load(&immediate), 0);
    for (int i = 0; i < 100; i++) {
        struct test_wait *tw = receive(&box, 5000);
        assert_non_null(tw);
        assert_int_equal(tw->result, GH_OK);
    }
    for (int i = 0; i < 100; i++)
        assert_int_equal(atomic_load(&waits[i].notified), 1);
    assert_int_equal(gh_mockidp_hits(f->idp, "/jwks"), 2); /* the first load and ONE refetch */
    assert_int_equal(gh_mockidp_hits(f->idp, "/.well-known/openid-configuration"), 1);
    assert_true(gh_oidckit_has_kid(p, "k2"));
    struct gh_provider_counters c;
    gh_provider_counters(p, &c);
    assert_int_equal(c.refetches, 1);
    gh_keyset_unref(ks);
    close(box.fds[0]);
    close(box.fds[1]);
}

/* A rotation as an IdP does it: publish the new key, sign with it, drop the old one. */
static void test_rotation_refuses_no_valid_token(void **state)
{
    struct gh_oidckit *f = *state;
    struct gh_provider *p = gh_oidckit_start(f, GH_OK);
    struct mailbox box;
    static const char *const req[] = {"exp"};
    char claims[256];
    int refused = 0;

    assert_int_equal(pipe(box.fds), 0);
    snprintf(claims, sizeof claims, "{\"iss\":\"%s\",\"exp\":%lld}", gh_mockidp_base_url(f->idp),
             START_MS / 1000 + 3600);
    char *old_token = gh_test_sign(&f->k1, "{\"alg\":\"RS256\",\"kid\":\"k1\"}", claims);
    char *new_token = gh_test_sign(&f->k2, "{\"alg\":\"ES256\",\"kid\":\"k2\"}", claims);
    gh_oidckit_serve_keys(f, &f->k1, &f->k2, "Cache-Control: max-age=120\r\n");
    for (int round = 0; round < 2; round++) {
        const char *token = round == 0 ? old_token : new_token;
        for (int attempt = 0; attempt < 2;
             attempt++) { /* look up, refetch once if unknown, look again */
            struct gh_keyset *ks = gh_provider_keys(p);
            struct gh_jwt_policy policy = {.algorithms = GH_ALGS_ASYMMETRIC,
                                           .keys = ks->jwks,
                                           .rules = {.now = START_MS / 1000,
                                                     .leeway = 60,
                                                     .required = req,
                                                     .n_required = 1,
                                                     .issuer = ks->issuer}};
            int rc = gh_jwt_check(token, strlen(token), &policy);
            if (rc == GH_ERR_UNKNOWN_KID && attempt == 0) {
                struct test_wait w = {.w.notify = post, .box = &box};
                int r = gh_provider_request_refetch(p, ks, round == 0 ? "k1" : "k2", 2, &w.w, NULL);
                if (r == 1)
                    assert_int_equal(receive(&box, 5000)->result, GH_OK);
                gh_keyset_unref(ks);
                continue;
            }
            refused += rc != GH_OK;
            gh_keyset_unref(ks);
            break;
        }
    }
    assert_int_equal(refused, 0);
    /* the old key is dropped later, at a scheduled refresh: old tokens go, new ones stay */
    gh_oidckit_serve_keys(f, &f->k2, NULL, "Cache-Control: max-age=120\r\n");
    gh_oidckit_advance(f, 95000);
    wait_jwks_fetches(f, p, 3);
    assert_false(gh_oidckit_has_kid(p, "k1"));
    assert_true(gh_oidckit_has_kid(p, "k2"));
    free(old_token);
    free(new_token);
    close(box.fds[0]);
    close(box.fds[1]);
}

static void test_stale_on_error_then_max_stale(void **state)
{
    struct gh_oidckit *f = *state;
    f->options.max_stale_ms = 3600 * 1000;
    f->options.retry_base_ms = 1000;
    f->options.retry_max_ms = 8000;
    struct gh_provider *p = gh_oidckit_start(f, GH_OK);
    struct gh_keyset *ks;

    gh_mockidp_set_json(f->idp, "/.well-known/openid-configuration", 500, "{\"error\":\"down\"}",
                        NULL);
    gh_oidckit_advance(f, 91000); /* the scheduled refresh fails */
    assert_true(gh_mockidp_wait_hits(f->idp, "/.well-known/openid-configuration", 2, 10000) >= 2);
    json_t *status = NULL;
    for (int i = 0; i < 1000; i++) { /* until the manager has recorded the failure */
        json_decref(status);
        status = gh_provider_status(p);
        if (json_string_value(json_object_get(status, "last_error")) != NULL)
            break;
        usleep(10000);
    }
    assert_non_null(strstr(json_string_value(json_object_get(status, "last_error")), "HTTP 500"));
    assert_true(json_is_true(json_object_get(status, "available")));
    json_decref(status);
    /* retries back off: a few per minute at first, never a storm */
    for (int i = 0; i < 60; i++)
        gh_oidckit_advance(f, 1000), usleep(5000);
    /* a slow machine may merge deadlines: keep (fake) time moving until the retries show */
    for (int i = 0; i < 120 && gh_mockidp_hits(f->idp, "/.well-known/openid-configuration") < 4;
         i++)
        gh_oidckit_advance(f, 1000), usleep(50000);
    usleep(100000);
    unsigned hits = gh_mockidp_hits(f->idp, "/.well-known/openid-configuration");
    assert_in_range(hits, 4, 20);
    /* the last good keys keep serving past their expiry... */
    ks = gh_provider_keys(p);
    assert_non_null(ks);
    assert_int_equal(gh_provider_usable(p, ks, gh_oidc_now_ms(f->m)), GH_OK);
    status = gh_provider_status(p);
    assert_true(json_is_true(json_object_get(status, "stale")));
    json_decref(status);
    /* ...until max-stale past it */
    assert_int_equal(gh_provider_usable(p, ks, ks->expires_at + 3600 * 1000 + 1),
                     GH_ERR_KEYS_UNAVAILABLE);
    assert_string_equal(gh_error_reason(GH_ERR_KEYS_UNAVAILABLE), "keys_unavailable");
    gh_keyset_unref(ks);
    /* and when the IdP is back, refresh resumes */
    gh_mockidp_serve_discovery(f->idp, NULL, "/jwks");
    gh_oidckit_advance(f, 10 * 60 * 1000);
    wait_jwks_fetches(f, p, 2);
    status = gh_provider_status(p);
    assert_true(json_is_null(json_object_get(status, "last_error")));
    assert_true(json_is_false(json_object_get(status, "stale")));
    json_decref(status);
}

/* Starts a provider against a misbehaving IdP and returns the last error's text. */
static char *refused(struct gh_oidckit *f, int expect)
{
    static char text[600];
    struct gh_provider *p = gh_oidckit_start(f, expect);
    json_t *status = gh_provider_status(p);
    snprintf(text, sizeof text, "%s", json_string_value(json_object_get(status, "last_error")));
    assert_true(json_is_false(json_object_get(status, "available")));
    json_decref(status);
    assert_null(gh_provider_keys(p));
    gh_oidc_manager_free(f->m);
    f->m = NULL;
    return text;
}

static void test_refused_documents(void **state)
{
    struct gh_oidckit *f = *state;
    char body[256];

    gh_mockidp_serve_discovery(f->idp, "https://someone-else.example", "/jwks");
    assert_non_null(strstr(refused(f, GH_ERR_DISCOVERY_ISSUER), "someone-else"));
    snprintf(body, sizeof body, "{\"issuer\":\"%s\",\"jwks_uri\":\"http://keys.example/jwks\"}",
             gh_mockidp_base_url(f->idp));
    gh_mockidp_set_json(f->idp, "/.well-known/openid-configuration", 200, body, NULL);
    assert_non_null(strstr(refused(f, GH_ERR_URL_INSECURE), "http://keys.example/jwks"));
    gh_mockidp_set_json(f->idp, "/.well-known/openid-configuration", 200, "{\"issuer\":5}", NULL);
    refused(f, GH_ERR_DISCOVERY_FORM);
    gh_mockidp_serve_discovery(f->idp, NULL, "/jwks");

    struct gh_mock_response big = {.status = 200,
                                   .content_type = "application/json",
                                   .body = "{\"keys\":[]}",
                                   .pad_to = 2 * 1024 * 1024};
    gh_mockidp_set(f->idp, "/jwks", &big);
    assert_non_null(strstr(refused(f, GH_ERR_FETCH_TOO_LARGE), "1 MiB"));
    struct gh_mock_response hang = {.hang = 1};
    gh_mockidp_set(f->idp, "/jwks", &hang);
    refused(f, GH_ERR_FETCH_TIMEOUT);
    struct gh_mock_response loop_a = {.status = 302, .location = "/b"},
                            loop_b = {.status = 302, .location = "/jwks"};
    gh_mockidp_set(f->idp, "/jwks", &loop_a);
    gh_mockidp_set(f->idp, "/b", &loop_b);
    refused(f, GH_ERR_FETCH_REDIRECTS);
    struct gh_mock_response away = {.status = 301, .location = "http://keys.example/jwks"};
    gh_mockidp_set(f->idp, "/jwks", &away);
    refused(f, GH_ERR_URL_INSECURE);
    struct gh_mock_response garbage = {.garbage = 1};
    gh_mockidp_set(f->idp, "/jwks", &garbage);
    refused(f, GH_ERR_FETCH_FAILED);
    gh_mockidp_set_json(f->idp, "/jwks", 200,
                        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", NULL);
    assert_non_null(strstr(refused(f, GH_ERR_JWKS_NO_KEYS), "no usable signing key"));
    gh_mockidp_set_json(f->idp, "/jwks", 200, "<html>", NULL);
    refused(f, GH_ERR_JWKS_FORM);
    gh_mockidp_set_json(f->idp, "/jwks", 404, "{}", NULL);
    assert_non_null(strstr(refused(f, GH_ERR_FETCH_STATUS), "HTTP 404"));

    /* one redirect hop is fine */
    char *doc = gh_oidckit_jwks_text(&f->k1, NULL);
    struct gh_mock_response hop = {.status = 302, .location = "/jwks2"};
    gh_mockidp_set(f->idp, "/jwks", &hop);
    gh_mockidp_set_json(f->idp, "/jwks2", 200, doc, NULL);
    free(doc);
    gh_oidckit_start(f, GH_OK);
}

/* Issue 11: a discovery document could point the key fetch at any loopback URL (SSRF into the
 * gateway's own host), and the refusal reported what that URL answered. Here the IdP is
 * "idp.test" (curl --resolve to the mock on 127.0.0.1, no DNS): not loopback by name, so nothing it
 * leads to may reach this host, whether named as loopback or by a name that resolves there. */
static void test_non_loopback_idp_never_leads_to_loopback(void **state)
{
    struct gh_oidckit *f = *state;
    char resolve[64], base[64], body[512], *text;
    int port = gh_mockidp_port(f->idp);
    const char *doc = "/.well-known/openid-configuration";

    snprintf(resolve, sizeof resolve, "idp.test:%d:127.0.0.1", port);
    snprintf(base, sizeof base, "http://idp.test:%d", port);
    f->options.resolve = resolve;
    f->options.allow_insecure = 1; /* plain http to idp.test */
    snprintf(f->discovery_url, sizeof f->discovery_url, "%s%s", base, doc);
    gh_mockidp_set_json(f->idp, "/internal", 500, "{\"secret\":\"s3cr3t\"}", NULL);
    /* jwks_uri naming loopback: refused before any request */
    snprintf(body, sizeof body, "{\"issuer\":\"%s\",\"jwks_uri\":\"http://127.0.0.1:%d/internal\"}",
             base, port);
    gh_mockidp_set_json(f->idp, doc, 200, body, NULL);
    text = refused(f, GH_ERR_URL_LOCAL);
    assert_null(strstr(text, "500"));
    assert_null(strstr(text, "s3cr3t"));
    /* jwks_uri by a name that resolves to loopback: refused when connecting */
    snprintf(body, sizeof body, "{\"issuer\":\"%s\",\"jwks_uri\":\"%s/internal\"}", base, base);
    gh_mockidp_set_json(f->idp, doc, 200, body, NULL);
    text = refused(f, GH_ERR_URL_LOCAL);
    assert_null(strstr(text, "500"));
    /* the discovery URL redirected to loopback */
    char target[64];
    snprintf(target, sizeof target, "http://127.0.0.1:%d/internal", port);
    struct gh_mock_response away = {.status = 302, .location = target};
    gh_mockidp_set(f->idp, doc, &away);
    refused(f, GH_ERR_URL_LOCAL);
    assert_int_equal(gh_mockidp_hits(f->idp, "/internal"), 0);
    assert_true(gh_mockidp_hits(f->idp, doc) >= 3); /* the IdP's own URL is fetched */
}

/* What another origin answered is never reported: its status and body stay unknown, only "could
 * not be reached". (An IdP on loopback may lead to loopback, here localhost.) */
static void test_foreign_answers_are_not_reported(void **state)
{
    struct gh_oidckit *f = *state;
    char body[512], *text;
    int port = gh_mockidp_port(f->idp);

    gh_mockidp_set_json(f->idp, "/internal", 500, "{\"secret\":\"s3cr3t\"}", NULL);
    snprintf(body, sizeof body, "{\"issuer\":\"%s\",\"jwks_uri\":\"http://localhost:%d/internal\"}",
             gh_mockidp_base_url(f->idp), port);
    gh_mockidp_set_json(f->idp, "/.well-known/openid-configuration", 200, body, NULL);
    text = refused(f, GH_ERR_FETCH_FAILED);
    assert_non_null(strstr(text, "could not be reached"));
    assert_null(strstr(text, "500"));
    assert_null(strstr(text, "HTTP"));
    assert_true(gh_mockidp_hits(f->idp, "/internal") >= 1);
    /* a foreign redirect's target is not reported either */
    struct gh_mock_response away = {.status = 302, .location = "http://127.0.0.1:1/elsewhere"};
    gh_mockidp_set(f->idp, "/internal", &away);
    text = refused(f, GH_ERR_FETCH_FAILED);
    assert_null(strstr(text, "elsewhere"));
}

/* ---- persistence: an in-memory store standing in for SQLite ---- */

struct memory_store {
    pthread_mutex_t lock;
    char *url;
    struct gh_persisted_keys keys;
    int saves;
};

static int store_load(void *ctx, const char *url, struct gh_persisted_keys *out)
{
    struct memory_store *s = ctx;
    int rc = GH_ERR_INVALID_ARG;
    pthread_mutex_lock(&s->lock);
    if (s->url != NULL && strcmp(s->url, url) == 0) {
        out->discovery = s->keys.discovery ? strdup(s->keys.discovery) : NULL;
        out->jwks = strdup(s->keys.jwks);
        out->fetched_at = s->keys.fetched_at;
        out->expires_at = s->keys.expires_at;
        rc = GH_OK;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int store_save(void *ctx, const char *url, const struct gh_persisted_keys *keys)
{
    struct memory_store *s = ctx;
    pthread_mutex_lock(&s->lock);
    free(s->url);
    free(s->keys.discovery);
    free(s->keys.jwks);
    s->url = strdup(url);
    s->keys.discovery = keys->discovery ? strdup(keys->discovery) : NULL;
    s->keys.jwks = strdup(keys->jwks);
    s->keys.fetched_at = keys->fetched_at;
    s->keys.expires_at = keys->expires_at;
    s->saves++;
    pthread_mutex_unlock(&s->lock);
    return GH_OK;
}

static void test_restart_while_idp_is_down(void **state)
{
    struct gh_oidckit *f = *state;
    struct memory_store store = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct gh_oidc_persistence persistence = {&store, store_load, store_save};
    struct gh_provider *p;

    f->options.persistence = &persistence;
    gh_oidckit_start(f, GH_OK);
    assert_int_equal(store.saves, 1);
    gh_oidc_manager_free(f->m);
    f->m = NULL;
    gh_mockidp_stop(f->idp); /* the IdP goes down; its port now refuses connections */
    f->idp = NULL;
    gh_oidckit_advance(f, 10 * 60 * 1000);
    p = gh_oidckit_start(f, GH_OK); /* serves what the store kept */
    assert_true(gh_oidckit_has_kid(p, "k1"));
    struct gh_keyset *ks = gh_provider_keys(p);
    assert_int_equal(gh_provider_usable(p, ks, gh_oidc_now_ms(f->m)), GH_OK);
    assert_non_null(ks->issuer);
    gh_keyset_unref(ks);
    json_t *status = gh_provider_status(p);
    assert_non_null(
        strstr(json_string_value(json_object_get(status, "last_error")), "could not be reached"));
    json_decref(status);
    free(store.url);
    free(store.keys.discovery);
    free(store.keys.jwks);
}

/* ---- waits: time limit and withdrawal ---- */

static void test_wait_limit_and_cancel(void **state)
{
    struct gh_oidckit *f = *state;
    struct gh_provider *p = gh_oidckit_start(f, GH_OK);
    struct mailbox box;
    struct test_wait a = {.w.notify = post}, b = {.w.notify = post};
    struct gh_mock_response hang = {.hang = 1};

    assert_int_equal(pipe(box.fds), 0);
    a.box = b.box = &box;
    f->options.fetch_timeout_ms = 1000;
    gh_mockidp_set(f->idp, "/jwks", &hang);
    struct gh_keyset *ks = gh_provider_keys(p);
    assert_int_equal(gh_provider_request_refetch(p, ks, "a", 1, &a.w, NULL), 1);
    assert_int_equal(gh_provider_request_refetch(p, ks, "b", 1, &b.w, NULL), 1);
    assert_int_equal(gh_provider_cancel_wait(p, &b.w), 1);
    assert_int_equal(gh_provider_cancel_wait(p, &b.w), 0);
    gh_oidckit_advance(f, 5001); /* the 5 s wait limit passes before the fetch ends */
    struct test_wait *got = receive(&box, 3000);
    assert_ptr_equal(got, &a);
    assert_int_equal(a.result, GH_ERR_UNKNOWN_KID);
    assert_null(receive(&box, 1500)); /* b was withdrawn: never notified */
    assert_int_equal(atomic_load(&b.notified), 0);
    gh_keyset_unref(ks);
    close(box.fds[0]);
    close(box.fds[1]);
}

/* ---- TLS ---- */

static void make_cert(const char *dir, char *cert_path, char *key_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               (const unsigned char *)"127.0.0.1", -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(cert, key, EVP_sha256());
    sprintf(cert_path, "%s/cert.pem", dir);
    sprintf(key_path, "%s/key.pem", dir);
    FILE *fc = fopen(cert_path, "w"), *fk = fopen(key_path, "w");
    PEM_write_X509(fc, cert);
    PEM_write_PrivateKey(fk, key, NULL, NULL, 0, NULL, NULL);
    fclose(fc);
    fclose(fk);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void test_tls_is_verified(void **state)
{
    struct gh_oidckit *f = *state;
    char dir[] = "/tmp/gh-tls-XXXXXX", cert[256], key[256], cmd[300];
    assert_non_null(mkdtemp(dir));
    make_cert(dir, cert, key);
    gh_mockidp_stop(f->idp);
    f->idp = gh_mockidp_start_tls(cert, key);
    assert_non_null(f->idp);
    gh_mockidp_serve_discovery(f->idp, NULL, "/jwks");
    gh_oidckit_serve_keys(f, &f->k1, NULL, NULL);
    snprintf(f->discovery_url, sizeof f->discovery_url, "%s/.well-known/openid-configuration",
             gh_mockidp_base_url(f->idp));
    /* a certificate nobody vouches for is refused */
    assert_non_null(strstr(refused(f, GH_ERR_FETCH_TLS), "certificate"));
    /* the same server with its CA trusted works */
    f->options.ca_file = cert;
    gh_oidckit_start(f, GH_OK);
    gh_oidc_manager_free(f->m);
    f->m = NULL;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_discovery_then_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_lifetime_is_clamped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_refresh_before_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hundred_concurrent_waits_one_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_refuses_no_valid_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_on_error_then_max_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_loopback_idp_never_leads_to_loopback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_foreign_answers_are_not_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_while_idp_is_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_limit_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_is_verified, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
