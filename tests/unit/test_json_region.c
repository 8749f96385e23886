// SPDX-License-Identifier: Apache-2.0
/*
 * The per-thread region of short-lived jansson values (src/common/json_region.c): values made
 * between enter and leave come from it and are counted, freeing them counts down (from any
 * thread), the region is reused only once nothing in it is alive, and a value kept past its
 * decision is never overwritten. Built with AddressSanitizer the region is off by design.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <string.h>

#include "common/json.h"
#include "common/json_region.h"

#if defined(__SANITIZE_ADDRESS__)
#define REGION_EXPECTED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REGION_EXPECTED 0
#endif
#endif
#ifndef REGION_EXPECTED
#define REGION_EXPECTED 1
#endif

static const char claims[] = "{\"iss\":\"https://idp.example.com\",\"sub\":\"alice\","
                             "\"scp\":[\"openid\",\"orders:read\"],\"exp\":1796682849}";

static json_t *parse_claims(void)
{
    json_t *v = NULL;

    assert_int_equal(gh_json_parse_object((const unsigned char *)claims, sizeof claims - 1, &v), 0);
    assert_non_null(v);
    return v;
}

static void test_values_come_from_the_region_and_are_counted(void **state)
{
    (void)state;
    gh_json_region_enter();
    json_t *v = parse_claims();
    gh_json_region_leave();
    if (!REGION_EXPECTED) {
        assert_int_equal(gh_json_region_live(), -1); /* ASan: every value from malloc */
        json_decref(v);
        return;
    }
    long live = gh_json_region_live();
    assert_true(live >= 8); /* the object, its table, 4 values, the array's 2 strings... */
    json_decref(v);
    assert_int_equal(gh_json_region_live(), 0);
}

/* Once nothing is alive, the next enter rewinds: the same bytes serve the next token. */
static void test_the_region_rewinds_when_empty(void **state)
{
    (void)state;
    if (!REGION_EXPECTED)
        return; /* asserted off in the test above */
    gh_json_region_enter();
    json_t *a = parse_claims();
    gh_json_region_leave();
    void *first = a;
    json_decref(a);
    gh_json_region_enter();
    json_t *b = parse_claims();
    gh_json_region_leave();
    assert_ptr_equal(b, first);
    json_decref(b);
}

/* A value kept past its decision keeps the region from rewinding: later values never overlap it. */
static void test_a_kept_value_is_never_overwritten(void **state)
{
    (void)state;
    gh_json_region_enter();
    json_t *kept = parse_claims();
    gh_json_region_leave();
    char *before = json_dumps(kept, JSON_SORT_KEYS);
    for (int i = 0; i < 2000; i++) { /* far more than the region holds: it fills, then malloc */
        gh_json_region_enter();
        json_t *v = parse_claims();
        gh_json_region_leave();
        json_decref(v);
    }
    char *after = json_dumps(kept, JSON_SORT_KEYS);
    assert_string_equal(before, after);
    free(before);
    free(after);
    json_decref(kept);
    if (REGION_EXPECTED)
        assert_int_equal(gh_json_region_live(), 0);
}

static void *free_elsewhere(void *arg)
{
    json_decref(arg);
    return NULL;
}

/* A value freed by another thread counts down its maker's region. */
static void test_a_free_on_another_thread_counts(void **state)
{
    pthread_t t;

    (void)state;
    gh_json_region_enter();
    json_t *v = parse_claims();
    gh_json_region_leave();
    assert_int_equal(pthread_create(&t, NULL, free_elsewhere, v), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (REGION_EXPECTED)
        assert_int_equal(gh_json_region_live(), 0);
}

/* Nested enters need as many leaves; outside them values come from malloc. */
static void test_nesting_and_outside(void **state)
{
    (void)state;
    if (!REGION_EXPECTED)
        return;
    gh_json_region_enter();
    gh_json_region_enter();
    gh_json_region_leave();
    json_t *inside = json_string("inside"); /* still entered once: its struct and its text */
    gh_json_region_leave();
    assert_int_equal(gh_json_region_live(), 2);
    json_t *outside = json_string("outside");
    assert_int_equal(gh_json_region_live(), 2);
    json_decref(outside);
    json_decref(inside);
    assert_int_equal(gh_json_region_live(), 0);
}

/* A value larger than the region comes from malloc and frees as such. */
static void test_large_values_use_malloc(void **state)
{
    (void)state;
    size_t n = 200 * 1024;
    char *big = malloc(n + 1);

    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    gh_json_region_enter();
    json_t *v = json_string(big);
    gh_json_region_leave();
    assert_non_null(v);
    assert_int_equal(strlen(json_string_value(v)), n);
    json_decref(v);
    free(big);
    if (REGION_EXPECTED)
        assert_int_equal(gh_json_region_live(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_come_from_the_region_and_are_counted),
        cmocka_unit_test(test_the_region_rewinds_when_empty),
        cmocka_unit_test(test_a_kept_value_is_never_overwritten),
        cmocka_unit_test(test_a_free_on_another_thread_counts),
        cmocka_unit_test(test_nesting_and_outside),
        cmocka_unit_test(test_large_values_use_malloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
