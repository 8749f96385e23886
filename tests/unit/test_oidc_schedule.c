// SPDX-License-Identifier: Apache-2.0
/*
 * When the provider manager's thread wakes up (issue 10, item 1). A provider whose next refresh
 * time had passed but that was never going to be refreshed (retired: its profile was deleted) kept
 * the loop's "next due" time in the past, so the thread polled with a zero timeout forever and
 * burnt a core. These tests put a provider in each state it can be in (idle, retired with its
 * refresh time passed, failing with backoff, retired during a fetch, with a waiter, after an
 * unknown-kid refetch) and count the thread's wake-ups over real time: an idle manager wakes about
 * once a second, so a few wake-ups over two seconds is fine and thousands is a spin. Counting an
 * upper bound over a fixed time holds on a loaded machine too: load only makes the count smaller.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "mockidp.h"
#include "oidc/provider.h"
#include "oidckit.h"
#include "testkit.h"

#define START_MS 1700000000000LL
/* the manager caps its sleep at 1 s: over 2 s, 3 passes plus a few for the test's own wake calls */
#define WINDOW_MS   2000
#define MAX_WAKEUPS 8

static int setup(void **state)
{
    struct gh_oidckit *f = calloc(1, sizeof *f);
    /* the shortest lifetime gatehouse keeps: a refresh is due 45 s after each fetch */
    if (gh_oidckit_init(f, START_MS, GH_ALG_ES256, GH_ALG_UNKNOWN, "Cache-Control: max-age=60\r\n"))
        return -1;
    f->options.fetch_timeout_ms = 1000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    gh_oidckit_clear(*state);
    free(*state);
    return 0;
}

/* The manager's wake-ups during WINDOW_MS of real time, reported for the record. */
static uint64_t wakeups_over_window(struct gh_oidckit *f, const char *state_name)
{
    struct gh_oidc_manager_counters before, after;
    gh_oidc_manager_counters(f->m, &before);
    usleep(WINDOW_MS * 1000);
    gh_oidc_manager_counters(f->m, &after);
    uint64_t n = after.wakeups - before.wakeups;
    print_message("    %s: %llu wake-ups in %d ms\n", state_name, (unsigned long long)n, WINDOW_MS);
    return n;
}

/* Polls (real time, up to 10 s) until `failures` fetches of the provider have failed. */
static void wait_for_failures(struct gh_provider *p, uint64_t failures)
{
    struct gh_provider_counters c;
    for (int i = 0; i < 1000; i++) {
        gh_provider_counters(p, &c);
        if (c.failures >= failures)
            return;
        usleep(10000);
    }
    fail_msg("the fetch did not end within 10 s");
}

static void test_idle_provider_sleeps(void **state)
{
    struct gh_oidckit *f = *state;
    gh_oidckit_start(f, GH_OK);
    assert_in_range(wakeups_over_window(f, "idle, refresh in 45 s"), 0, MAX_WAKEUPS);
}

/* The reported spin: the profile is deleted, then its provider's refresh time passes. */
static void test_retired_provider_past_its_refresh_sleeps(void **state)
{
    struct gh_oidckit *f = *state;
    gh_oidckit_start(f, GH_OK);
    gh_oidc_retain(f->m, NULL, 0);
    gh_oidckit_advance(f, 50000); /* past the refresh due at 45 s */
    assert_in_range(wakeups_over_window(f, "retired, refresh time passed"), 0, MAX_WAKEUPS);
    gh_oidckit_advance(f, 24 * 3600 * 1000LL);
    assert_in_range(wakeups_over_window(f, "retired, a day later"), 0, MAX_WAKEUPS);
    assert_int_equal(gh_mockidp_hits(f->idp, "/jwks"), 1); /* and a retired one is not fetched */
}

static void test_failing_provider_backs_off(void **state)
{
    struct gh_oidckit *f = *state;
    gh_mockidp_set_json(f->idp, "/.well-known/openid-configuration", 500, "{}", NULL);
    struct gh_provider *p = gh_oidckit_start(f, GH_ERR_FETCH_STATUS);
    assert_in_range(wakeups_over_window(f, "failing, waiting for its retry"), 0, MAX_WAKEUPS);
    unsigned hits = gh_mockidp_hits(f->idp, "/.well-known/openid-configuration");
    assert_int_equal(hits, 1); /* the fake clock stands still: no retry is due yet */
    /* the retry comes when its time comes; then the provider is retired with a retry pending */
    gh_oidckit_advance(f, 60000);
    wait_for_failures(p, 2);
    gh_oidc_retain(f->m, NULL, 0);
    gh_oidckit_advance(f, 10 * 60 * 1000);
    assert_in_range(wakeups_over_window(f, "failing, retired, retry time passed"), 0, MAX_WAKEUPS);
    (void)p;
}

static void test_retired_while_a_fetch_runs(void **state)
{
    struct gh_oidckit *f = *state;
    struct gh_provider *p = gh_oidckit_start(f, GH_OK);
    struct gh_mock_response hang = {.hang = 1};

    gh_mockidp_set(f->idp, "/jwks", &hang);
    gh_mockidp_reset_hits(f->idp);
    gh_provider_refresh(p);
    assert_true(gh_mockidp_wait_hits(f->idp, "/jwks", 1, 10000) >= 1);
    gh_oidc_retain(f->m, NULL, 0);         /* retired while its fetch hangs */
    wait_for_failures(p, 1);               /* the fetch times out (1 s of real time) and fails */
    gh_oidckit_advance(f, 10 * 60 * 1000); /* its retry time passes */
    assert_in_range(wakeups_over_window(f, "retired during a fetch that then failed"), 0,
                    MAX_WAKEUPS);
}

static void test_waiters_and_refetches(void **state)
{
    struct gh_oidckit *f = *state;
    struct gh_provider *p = gh_oidckit_start(f, GH_OK);
    struct gh_keyset *ks = gh_provider_keys(p);
    struct gh_oidckit_waiter a = {.w.notify = gh_oidckit_waiter_notify};
    struct gh_mock_response hang = {.hang = 1};

    /* a request waits on a refetch that hangs: its 5 s limit is in the future */
    gh_mockidp_set(f->idp, "/jwks", &hang);
    assert_int_equal(gh_provider_request_refetch(p, ks, "nope", 4, &a.w, NULL), 1);
    assert_in_range(wakeups_over_window(f, "a waiter on a hanging refetch"), 0, MAX_WAKEUPS);
    wait_for_failures(p, 1);
    assert_true(atomic_load(&a.notified));
    /* the failed refetch's retry time passes while nothing else is due */
    gh_oidckit_advance(f, 10 * 60 * 1000);
    wait_for_failures(p, 2);
    assert_in_range(wakeups_over_window(f, "after a failed refetch and its retry"), 0, MAX_WAKEUPS);
    gh_keyset_unref(ks);
}

/* Issue 10, item 8: a URL gatehouse may not fetch still has a provider, which says why and idles.
 */
static void test_refused_url_has_a_provider_that_never_fetches(void **state)
{
    struct gh_oidckit *f = *state;
    const char *url = "http://idp.example.test/.well-known/openid-configuration";
    struct gh_provider *p = NULL, **all;
    size_t n;

    assert_int_equal(gh_oidc_manager_new(&f->options, &f->m), GH_OK);
    assert_int_equal(gh_oidc_provider_get(f->m, GH_PROVIDER_DISCOVERY, url, &p),
                     GH_ERR_URL_INSECURE);
    assert_non_null(p);
    assert_string_equal(gh_provider_url(p), url);
    all = gh_oidc_providers(f->m, &n);
    assert_int_equal(n, 1);
    assert_ptr_equal(all[0], p);
    free(all);
    assert_int_equal(gh_provider_wait_ready(p, 1000), GH_ERR_URL_INSECURE);
    assert_int_equal(gh_provider_check_now(p, 5000), GH_ERR_URL_INSECURE); /* at once */
    gh_provider_refresh(p);
    json_t *status = gh_provider_status(p);
    assert_string_equal(json_string_value(json_object_get(status, "last_error")),
                        "discovery URL refused: plain http to a non-loopback host; use https or "
                        "--allow-insecure-idp");
    assert_true(json_is_false(json_object_get(status, "available")));
    assert_true(json_is_null(json_object_get(status, "next_refresh_at")));
    json_decref(status);
    assert_in_range(wakeups_over_window(f, "refused URL"), 0, MAX_WAKEUPS);
    struct gh_provider_counters c;
    gh_provider_counters(p, &c);
    assert_int_equal(c.fetches, 0);
    /* a JWKS URI without a host is refused the same way, under its own name */
    assert_int_equal(gh_oidc_provider_get(f->m, GH_PROVIDER_JWKS_URI, "jwks.json", &p),
                     GH_ERR_URL_INVALID);
    status = gh_provider_status(p);
    assert_non_null(
        strstr(json_string_value(json_object_get(status, "last_error")), "JWKS URI refused: "));
    json_decref(status);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_provider_sleeps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retired_provider_past_its_refresh_sleeps, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failing_provider_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retired_while_a_fetch_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiters_and_refetches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_url_has_a_provider_that_never_fetches, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
