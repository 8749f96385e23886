// SPDX-License-Identifier: Apache-2.0
/*
 * Rate limits and quotas of access profiles (SPEC §1 policies, §5 429 answers), driven through the
 * configuration snapshot the gateway reads, with an explicit clock so every window boundary is
 * exact: the GCRA burst and its interval, the RateLimit-* values, the fixed-window quota, the two
 * together, profiles without a policy, independence of profiles, atomicity under four threads, and
 * quota counters that survive a restart through the persistence callbacks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "gateway/ratelimit.h"
#include "store/config.h"

/* 1700000040 s is a multiple of 60, so T0 opens a quota window of 60 s and of 1 s alike. */
#define T0 1700000040000LL

/* ---- configuration ---- */

/* A policy line of the test configuration; 0 requests leaves that limit out. */
struct policy_row {
    const char *id;
    int64_t rate_requests, rate_per;
    int64_t quota_requests, quota_per;
};

static const struct policy_row policies[] = {
    {"pol_rate5per1sec", 5, 1, 0, 0},
    {"pol_quota3per60s", 0, 0, 3, 60},
    {"pol_rate5quota3xx", 5, 1, 3, 60},
    {"pol_rate2quota100", 2, 1, 100, 60},
    {"pol_bigrate20kquo", 1000000, 1, 20000, 60},
    {"pol_billionper1sx", 1000000000, 1, 0, 0}, /* the most a policy may say (model.c) */
};

/* profile id → policy id (NULL: no policy) */
static const char *const profiles[][2] = {
    {"ap_rateonlyAAAA", "pol_rate5per1sec"},
    {"ap_rateonlyBBBB", "pol_rate5per1sec"},
    {"ap_quotaonlyAAA", "pol_quota3per60s"},
    {"ap_quotaonlyBBB", "pol_quota3per60s"},
    {"ap_bothlimitsAA", "pol_rate5quota3xx"},
    {"ap_ratetighterA", "pol_rate2quota100"},
    {"ap_threadedAAAA", "pol_bigrate20kquo"},
    {"ap_billionAAAAA", "pol_billionper1sx"},
    {"ap_nopolicyAAAA", NULL},
};

static json_t *limit_json(int64_t requests, int64_t per)
{
    return requests > 0 ? json_pack("{s:I, s:I}", "requests", (json_int_t)requests, "per_seconds",
                                    (json_int_t)per)
                        : json_null();
}

static json_t *config_doc(void)
{
    json_t *pols = json_array(), *profs = json_array();
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
        const struct policy_row *r = &policies[i];
        json_array_append_new(pols,
                              json_pack("{s:s, s:s, s:o, s:o}", "id", r->id, "name", r->id,
                                        "rate_limit", limit_json(r->rate_requests, r->rate_per),
                                        "quota", limit_json(r->quota_requests, r->quota_per)));
    }
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
        json_array_append_new(
            profs,
            json_pack("{s:s, s:s, s:s, s:s, s:b, s:s?, s:[], s:[s], s:[], s:[], s:[s], "
                      "s:i, s:[], s:[]}",
                      "id", profiles[i][0], "name", profiles[i][0], "client_id", "cli_limitsclient",
                      "auth_type", "token", "active", 1, "policy_id", profiles[i][1],
                      "collection_ids", "required_claims", "exp", "allowed_issuers", "audiences",
                      "algorithms", "RS256", "leeway_seconds", 60, "ip_allow", "ip_deny"));
    }
    return json_pack("{s:[], s:[], s:[{s:s, s:s, s:b}], s:o, s:o, s:[], s:i}", "collections",
                     "endpoints", "clients", "id", "cli_limitsclient", "name", "limits", "active",
                     1, "policies", pols, "profiles", profs, "keys", "generation", 1);
}

struct fixture {
    struct gh_config *config;
    struct gh_ratelimiter *rl;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    json_t *doc = config_doc();
    if (f == NULL || doc == NULL || gh_config_build(doc, &f->config) != GH_OK ||
        gh_ratelimiter_new(NULL, &f->rl) != GH_OK)
        return -1;
    json_decref(doc);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    gh_ratelimiter_free(f->rl);
    gh_config_unref(f->config);
    free(f);
    return 0;
}

static const struct gh_config_profile *profile(const struct fixture *f, const char *id)
{
    for (size_t i = 0; i < f->config->n_profiles; i++) {
        if (strcmp(f->config->profiles[i].id, id) == 0)
            return &f->config->profiles[i];
    }
    fail_msg("no profile %s in the test configuration", id);
    return NULL;
}

static struct gh_rate_verdict check(struct gh_ratelimiter *rl, const struct gh_config_profile *p,
                                    int64_t now_ms)
{
    struct gh_rate_verdict v;
    gh_ratelimit_check(rl, p, now_ms, &v);
    return v;
}

/* ---- the rate limit ---- */

static void test_rate_burst_then_one_per_interval(void **state)
{
    struct fixture *f = *state;
    const struct gh_config_profile *p = profile(f, "ap_rateonlyAAAA");
    struct gh_rate_verdict v;

    for (int i = 0; i < 5; i++)
        assert_true(check(f->rl, p, T0).allowed);
    v = check(f->rl, p, T0);
    assert_false(v.allowed);
    assert_true(v.limited);
    assert_true(v.retry_after >= 1);
    assert_int_equal(v.remaining, 0);
    /* 5 per second is one every 200 ms once the burst is spent */
    assert_false(check(f->rl, p, T0 + 199).allowed);
    assert_true(check(f->rl, p, T0 + 200).allowed);
    assert_false(check(f->rl, p, T0 + 200).allowed);
    assert_false(check(f->rl, p, T0 + 399).allowed);
    assert_true(check(f->rl, p, T0 + 400).allowed);
    /* a full period of silence gives the whole burst back */
    for (int i = 0; i < 5; i++)
        assert_true(check(f->rl, p, T0 + 1400).allowed);
    assert_false(check(f->rl, p, T0 + 1400).allowed);
}

static void test_rate_headers_count_down(void **state)
{
    struct fixture *f = *state;
    const struct gh_config_profile *p = profile(f, "ap_rateonlyAAAA");

    for (int64_t expect = 4; expect >= 0; expect--) {
        struct gh_rate_verdict v = check(f->rl, p, T0);
        assert_true(v.allowed);
        assert_true(v.limited);
        assert_int_equal(v.limit, 5);
        assert_int_equal(v.remaining, expect);
        /* the bucket is whole again within the period: 1 s, rounded up */
        assert_int_equal(v.reset_seconds, 1);
    }
    struct gh_rate_verdict refused = check(f->rl, p, T0);
    assert_false(refused.allowed);
    assert_int_equal(refused.limit, 5);
    assert_int_equal(refused.remaining, 0);
    assert_true(refused.reset_seconds >= 1);
    assert_int_equal(refused.retry_after, 1);
}

static void test_rate_keeps_its_meaning_at_the_largest_policy(void **state)
{
    /* A policy may allow up to 1,000,000,000 requests a second; the bucket's resolution must not
     * shrink that, so after one request the rest of the burst is left. */
    struct fixture *f = *state;
    struct gh_rate_verdict v = check(f->rl, profile(f, "ap_billionAAAAA"), T0);
    assert_true(v.allowed);
    assert_int_equal(v.limit, 1000000000);
    assert_int_equal(v.remaining, 1000000000 - 1);
}

/* ---- the quota ---- */

static void test_quota_refuses_until_next_window(void **state)
{
    struct fixture *f = *state;
    const struct gh_config_profile *p = profile(f, "ap_quotaonlyAAA");
    struct gh_rate_verdict v;

    for (int64_t expect = 2; expect >= 0; expect--) {
        v = check(f->rl, p, T0 + 1000);
        assert_true(v.allowed);
        assert_int_equal(v.limit, 3);
        assert_int_equal(v.remaining, expect);
        assert_int_equal(v.reset_seconds, 59);
    }
    v = check(f->rl, p, T0 + 1000);
    assert_false(v.allowed);
    assert_int_equal(v.remaining, 0);
    assert_int_equal(v.retry_after, 59);
    v = check(f->rl, p, T0 + 59999);
    assert_false(v.allowed);
    assert_int_equal(v.retry_after, 1);
    /* the next window starts from zero */
    v = check(f->rl, p, T0 + 60000);
    assert_true(v.allowed);
    assert_int_equal(v.remaining, 2);
    assert_int_equal(v.reset_seconds, 60);
}

static void test_rate_and_quota_report_the_tighter(void **state)
{
    struct fixture *f = *state;
    const struct gh_config_profile *both = profile(f, "ap_bothlimitsAA");
    const struct gh_config_profile *rate_tighter = profile(f, "ap_ratetighterA");
    struct gh_rate_verdict v;

    /* rate 5/s leaves 4, quota 3/min leaves 2: the quota is tighter */
    v = check(f->rl, both, T0);
    assert_true(v.allowed);
    assert_int_equal(v.limit, 3);
    assert_int_equal(v.remaining, 2);
    assert_int_equal(v.reset_seconds, 60);
    check(f->rl, both, T0);
    v = check(f->rl, both, T0);
    assert_true(v.allowed);
    assert_int_equal(v.remaining, 0);

    /* rate 2/s leaves 1, quota 100/min leaves 99: the rate is tighter */
    v = check(f->rl, rate_tighter, T0);
    assert_true(v.allowed);
    assert_int_equal(v.limit, 2);
    assert_int_equal(v.remaining, 1);
    assert_int_equal(v.reset_seconds, 1);
}

static void test_quota_refusal_describes_the_quota(void **state)
{
    /* RateLimit-Limit, -Remaining and -Reset of one 429 must describe one limit: the one that
     * refused, here the quota (3 a minute), not the rate limit's 5 next to the quota's reset. */
    struct fixture *f = *state;
    const struct gh_config_profile *both = profile(f, "ap_bothlimitsAA");
    struct gh_rate_verdict v;

    for (int i = 0; i < 3; i++)
        assert_true(check(f->rl, both, T0).allowed);
    v = check(f->rl, both, T0);
    assert_false(v.allowed);
    assert_int_equal(v.remaining, 0);
    assert_int_equal(v.retry_after, 60);
    assert_int_equal(v.reset_seconds, 60);
    assert_int_equal(v.limit, 3);
}

static void test_no_policy_is_never_limited(void **state)
{
    struct fixture *f = *state;
    const struct gh_config_profile *p = profile(f, "ap_nopolicyAAAA");

    for (int i = 0; i < 1000; i++) {
        struct gh_rate_verdict v = check(f->rl, p, T0);
        assert_true(v.allowed);
        assert_false(v.limited);
    }
}

static void test_profiles_are_independent(void **state)
{
    struct fixture *f = *state;
    const struct gh_config_profile *a = profile(f, "ap_rateonlyAAAA");
    const struct gh_config_profile *b = profile(f, "ap_rateonlyBBBB");
    const struct gh_config_profile *qa = profile(f, "ap_quotaonlyAAA");
    const struct gh_config_profile *qb = profile(f, "ap_quotaonlyBBB");

    for (int i = 0; i < 5; i++)
        assert_true(check(f->rl, a, T0).allowed);
    assert_false(check(f->rl, a, T0).allowed);
    for (int64_t expect = 4; expect >= 0; expect--)
        assert_int_equal(check(f->rl, b, T0).remaining, expect);
    assert_false(check(f->rl, b, T0).allowed);

    for (int i = 0; i < 3; i++)
        assert_true(check(f->rl, qa, T0).allowed);
    assert_false(check(f->rl, qa, T0).allowed);
    assert_int_equal(check(f->rl, qb, T0).remaining, 2);
}

/* ---- atomicity ---- */

#define THREADS           4
#define CHECKS_PER_THREAD 10000
#define THREADED_QUOTA    20000

struct worker {
    struct gh_ratelimiter *rl;
    const struct gh_config_profile *profile;
    pthread_barrier_t *start;
    long allowed;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(w->start);
    for (int i = 0; i < CHECKS_PER_THREAD; i++) {
        struct gh_rate_verdict v;
        gh_ratelimit_check(w->rl, w->profile, T0 + 5000, &v);
        w->allowed += v.allowed;
    }
    return NULL;
}

static void test_threads_never_overshoot_the_quota(void **state)
{
    /* A million a second never binds here, so only the quota decides: 40,000 attempts in one
     * instant of one window must let through exactly its 20,000, neither more (lost updates)
     * nor fewer (spurious refusals). */
    struct fixture *f = *state;
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    pthread_barrier_t start;
    long total = 0;

    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){f->rl, profile(f, "ap_threadedAAAA"), &start, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, hammer, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        total += workers[i].allowed;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(total, THREADED_QUOTA);
}

/* ---- persistence ---- */

#define MAX_SAVES 16

struct saved {
    char id[64];
    int64_t window, count;
};

/* A store stand-in: hands out `preload` at start and records every save. */
struct fake_store {
    const struct saved *preload;
    size_t n_preload;
    struct saved saves[MAX_SAVES];
    size_t n_saves;
};

static int fake_load_all(void *ctx, gh_quota_visit visit, void *arg)
{
    struct fake_store *s = ctx;
    for (size_t i = 0; i < s->n_preload; i++)
        visit(arg, s->preload[i].id, s->preload[i].window, s->preload[i].count);
    return GH_OK;
}

static int fake_save(void *ctx, const char *profile_id, int64_t window, int64_t count)
{
    struct fake_store *s = ctx;
    assert_true(s->n_saves < MAX_SAVES);
    struct saved *out = &s->saves[s->n_saves++];
    strncpy(out->id, profile_id, sizeof out->id - 1);
    out->window = window;
    out->count = count;
    return GH_OK;
}

static const struct saved *saved_for(const struct fake_store *s, const char *id)
{
    for (size_t i = 0; i < s->n_saves; i++) {
        if (strcmp(s->saves[i].id, id) == 0)
            return &s->saves[i];
    }
    return NULL;
}

static void test_flush_saves_only_changed_quotas(void **state)
{
    struct fixture *f = *state;
    struct fake_store store = {0};
    struct gh_quota_persistence persistence = {&store, fake_load_all, fake_save};
    struct gh_ratelimiter *rl;
    const int64_t window = T0 / 1000 / 60;

    assert_int_equal(gh_ratelimiter_new(&persistence, &rl), GH_OK);
    check(rl, profile(f, "ap_quotaonlyAAA"), T0);
    check(rl, profile(f, "ap_quotaonlyAAA"), T0);
    check(rl, profile(f, "ap_quotaonlyBBB"), T0);
    check(rl, profile(f, "ap_rateonlyAAAA"), T0); /* no quota: nothing to keep */
    check(rl, profile(f, "ap_nopolicyAAAA"), T0);
    gh_ratelimiter_flush(rl);
    assert_int_equal(store.n_saves, 2);
    const struct saved *a = saved_for(&store, "ap_quotaonlyAAA"),
                       *b = saved_for(&store, "ap_quotaonlyBBB");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->window, window);
    assert_int_equal(a->count, 2);
    assert_int_equal(b->window, window);
    assert_int_equal(b->count, 1);

    /* nothing changed: nothing written */
    store.n_saves = 0;
    gh_ratelimiter_flush(rl);
    assert_int_equal(store.n_saves, 0);

    check(rl, profile(f, "ap_quotaonlyAAA"), T0);
    gh_ratelimiter_flush(rl);
    assert_int_equal(store.n_saves, 1);
    assert_string_equal(store.saves[0].id, "ap_quotaonlyAAA");
    assert_int_equal(store.saves[0].count, 3);
    gh_ratelimiter_free(rl);
}

static void test_preloaded_count_carries_over(void **state)
{
    struct fixture *f = *state;
    const int64_t window = T0 / 1000 / 60;
    const struct saved kept[] = {
        {"ap_quotaonlyAAA", window, 2},     /* this window: one request left */
        {"ap_quotaonlyBBB", window - 1, 3}, /* an old window: counts for nothing now */
    };
    struct fake_store store = {.preload = kept, .n_preload = 2};
    struct gh_quota_persistence persistence = {&store, fake_load_all, fake_save};
    struct gh_ratelimiter *rl;
    struct gh_rate_verdict v;

    assert_int_equal(gh_ratelimiter_new(&persistence, &rl), GH_OK);
    v = check(rl, profile(f, "ap_quotaonlyAAA"), T0 + 10000);
    assert_true(v.allowed);
    assert_int_equal(v.remaining, 0);
    assert_false(check(rl, profile(f, "ap_quotaonlyAAA"), T0 + 10000).allowed);
    assert_true(check(rl, profile(f, "ap_quotaonlyAAA"), T0 + 60000).allowed);
    for (int i = 0; i < 3; i++)
        assert_true(check(rl, profile(f, "ap_quotaonlyBBB"), T0 + 10000).allowed);
    assert_false(check(rl, profile(f, "ap_quotaonlyBBB"), T0 + 10000).allowed);
    gh_ratelimiter_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rate_burst_then_one_per_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_headers_count_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_keeps_its_meaning_at_the_largest_policy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_quota_refuses_until_next_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_and_quota_report_the_tighter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_refusal_describes_the_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_policy_is_never_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profiles_are_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_never_overshoot_the_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_saves_only_changed_quotas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preloaded_count_carries_over, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
