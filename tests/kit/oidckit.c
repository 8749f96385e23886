// SPDX-License-Identifier: Apache-2.0
/*
 * The provider manager tests' fixture (see oidckit.h): one mock IdP, its keys, the manager's
 * options with a clock the test moves, and the manager a test starts, made and torn down the same
 * way for every test file that drives the manager.
 */
#include "oidckit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* Process-wide, not per kit: test files move it from helpers that have no fixture at hand. */
static atomic_llong fake_now;

int64_t gh_oidckit_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&fake_now);
}

int64_t gh_oidckit_clock_now(void)
{
    return atomic_load(&fake_now);
}

void gh_oidckit_clock_set(int64_t ms)
{
    atomic_store(&fake_now, ms);
}

void gh_oidckit_advance(struct gh_oidckit *kit, int64_t ms)
{
    atomic_fetch_add(&fake_now, ms);
    if (kit->m != NULL)
        gh_oidc_manager_wake(kit->m);
}

int gh_oidckit_init(struct gh_oidckit *kit, int64_t start_ms, enum gh_alg k1_alg,
                    enum gh_alg k2_alg, const char *jwks_headers)
{
    memset(kit, 0, sizeof *kit);
    atomic_store(&fake_now, start_ms);
    kit->idp = gh_mockidp_start();
    if (kit->idp == NULL || gh_testkey_generate(k1_alg, "k1", 0, &kit->k1) ||
        (k2_alg != GH_ALG_UNKNOWN && gh_testkey_generate(k2_alg, "k2", 0, &kit->k2)))
        return -1;
    gh_mockidp_serve_discovery(kit->idp, NULL, "/jwks");
    gh_oidckit_serve_keys(kit, &kit->k1, NULL, jwks_headers);
    snprintf(kit->discovery_url, sizeof kit->discovery_url, "%s/.well-known/openid-configuration",
             gh_mockidp_base_url(kit->idp));
    gh_oidc_options_default(&kit->options);
    kit->options.now_ms = gh_oidckit_clock;
    return 0;
}

void gh_oidckit_clear(struct gh_oidckit *kit)
{
    gh_oidc_manager_free(kit->m);
    gh_mockidp_stop(kit->idp);
    gh_testkey_clear(&kit->k1);
    gh_testkey_clear(&kit->k2);
    memset(kit, 0, sizeof *kit);
}

char *gh_oidckit_jwks_text(const struct gh_testkey *a, const struct gh_testkey *b)
{
    char *ja = gh_testkey_public_jwk(a), *jb = b ? gh_testkey_public_jwk(b) : NULL;
    char *doc = malloc(strlen(ja) + (jb ? strlen(jb) : 0) + 32);
    sprintf(doc, "{\"keys\":[%s%s%s]}", ja, jb ? "," : "", jb ? jb : "");
    free(ja);
    free(jb);
    return doc;
}

void gh_oidckit_serve_keys(struct gh_oidckit *kit, const struct gh_testkey *a,
                           const struct gh_testkey *b, const char *headers)
{
    char *doc = gh_oidckit_jwks_text(a, b);
    gh_mockidp_set_json(kit->idp, "/jwks", 200, doc, headers);
    free(doc);
}

struct gh_provider *gh_oidckit_start(struct gh_oidckit *kit, int expect)
{
    if (kit->m == NULL)
        assert_int_equal(gh_oidc_manager_new(&kit->options, &kit->m), GH_OK);
    assert_int_equal(
        gh_oidc_provider_get(kit->m, GH_PROVIDER_DISCOVERY, kit->discovery_url, &kit->p), GH_OK);
    assert_int_equal(gh_provider_wait_ready(kit->p, 5000), expect);
    return kit->p;
}

void gh_oidckit_waiter_notify(struct gh_provider_wait *w, int result)
{
    struct gh_oidckit_waiter *tw = (struct gh_oidckit_waiter *)w;
    atomic_store(&tw->result, result);
    atomic_store(&tw->notified, 1);
}

int gh_oidckit_has_kid(struct gh_provider *p, const char *kid)
{
    struct gh_keyset *ks = gh_provider_keys(p);
    int found = 0;
    for (size_t i = 0; ks != NULL && i < ks->jwks->count; i++)
        found |= ks->jwks->keys[i].kid != NULL && strcmp(ks->jwks->keys[i].kid, kid) == 0;
    gh_keyset_unref(ks);
    return found;
}
