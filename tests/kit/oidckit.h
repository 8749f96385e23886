// SPDX-License-Identifier: Apache-2.0
/*
 * The provider manager tests' fixture (test_oidc_provider.c, test_oidc_kids.c, test_oidc_events.c,
 * test_oidc_schedule.c): a mock IdP on loopback that serves discovery and a key set, the test keys
 * it publishes, the manager's options with an injected clock, and the manager and provider a test
 * starts. The four files used to carry a copy each; what still differs between them (k1's
 * algorithm, whether there is a k2, the key set's caching headers, the start time, the options a
 * file changes) is a parameter of gh_oidckit_init or a member the file sets afterwards, so a
 * reader sees it in the file that depends on it.
 *
 * The clock is one per test program, as it was in each file, so that a helper without the fixture
 * at hand (test_oidc_kids.c's set_time) can move it; it is atomic because the manager reads it
 * from its own thread while the test moves it to let hours of cache lifetime pass in a moment.
 */
#ifndef GH_TEST_OIDCKIT_H
#define GH_TEST_OIDCKIT_H

#include <stdatomic.h>
#include <stdint.h>

#include "jose/alg.h"
#include "mockidp.h"
#include "oidc/provider.h"
#include "testkit.h"

struct gh_oidckit {
    struct gh_mockidp *idp; /* a test may stop it (then NULL) or replace it */
    /* gh_oidc_options_default with the kit's clock; the file sets more before starting */
    struct gh_oidc_options options;
    struct gh_oidc_manager *m; /* made by the first gh_oidckit_start; freed by the kit */
    struct gh_provider *p;     /* what the last gh_oidckit_start got; owned by the manager */
    struct gh_testkey k1, k2;  /* kids "k1" and "k2"; k2 is all zero when init was not asked */
    char discovery_url[256];   /* the mock IdP's discovery document */
};

/* The injected clock (options.now_ms): ms since the epoch, moved only by the test. */
int64_t gh_oidckit_clock(void *ctx);
int64_t gh_oidckit_clock_now(void);
void gh_oidckit_clock_set(int64_t ms);
/* Moves the clock `ms` on and wakes the manager (when there is one) to read it. */
void gh_oidckit_advance(struct gh_oidckit *kit, int64_t ms);

/*
 * Sets the clock to `start_ms`, starts the mock IdP, makes k1 (`k1_alg`) and, unless `k2_alg` is
 * GH_ALG_UNKNOWN, k2; the IdP serves discovery at discovery_url and {"keys":[k1]} at /jwks with
 * `jwks_headers` (raw header lines, may be NULL). No manager yet. 0, or -1 when the IdP or a key
 * cannot be made.
 */
int gh_oidckit_init(struct gh_oidckit *kit, int64_t start_ms, enum gh_alg k1_alg,
                    enum gh_alg k2_alg, const char *jwks_headers);
/* Frees the manager, stops the IdP, clears the keys. */
void gh_oidckit_clear(struct gh_oidckit *kit);

/* {"keys":[...]} of the public JWKs of `a` and, when not NULL, `b`; the caller frees it. */
char *gh_oidckit_jwks_text(const struct gh_testkey *a, const struct gh_testkey *b);
/* The IdP's /jwks answers 200 with that key set and `headers` (may be NULL) from now on. */
void gh_oidckit_serve_keys(struct gh_oidckit *kit, const struct gh_testkey *a,
                           const struct gh_testkey *b, const char *headers);

/*
 * Makes the manager from kit->options unless there is one, gets the provider of discovery_url
 * into kit->p, and fails the test unless its first load ends with `expect` within 5 s. Returns
 * kit->p (owned by the manager).
 */
struct gh_provider *gh_oidckit_start(struct gh_oidckit *kit, int expect);

/*
 * A waiter for gh_provider_request_refetch that records its answer, for tests that look at it
 * from their own thread: {.w.notify = gh_oidckit_waiter_notify}.
 */
struct gh_oidckit_waiter {
    struct gh_provider_wait w;
    atomic_int result;
    atomic_int notified;
};

void gh_oidckit_waiter_notify(struct gh_provider_wait *w, int result);

/* Whether the key set `p` serves now has a key with this kid. */
int gh_oidckit_has_kid(struct gh_provider *p, const char *kid);

#endif
