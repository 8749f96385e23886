// SPDX-License-Identifier: Apache-2.0
/*
 * The lock-free snapshot slot under contention: reader threads acquire and release while a writer
 * publishes thousands of versions. Every snapshot must be destroyed exactly once, never while a
 * reader holds it (each reader checks a canary that destroy poisons), and readers must see versions
 * in publication order. Run under ASan and TSan as well.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/snapshot.h"

#define READERS  4
#define VERSIONS 20000
#define CANARY   0x5a5a5a5au

struct version {
    struct gh_snapshot snap;
    atomic_uint canary;
    long number;
};

static atomic_long destroyed;
static atomic_int done;
static atomic_int readers_seen; /* readers that have read at least one version */

static void destroy_version(struct gh_snapshot *snap)
{
    struct version *v = (struct version *)snap;
    atomic_store(&v->canary, 0xdeadu);
    atomic_fetch_add(&destroyed, 1);
    free(v);
}

static struct version *version_new(long number)
{
    struct version *v = malloc(sizeof *v);
    gh_snapshot_init(&v->snap, destroy_version);
    atomic_init(&v->canary, CANARY);
    v->number = number;
    return v;
}

struct reader_result {
    struct gh_snapshot_slot *slot;
    long reads, bad_canary, went_back;
};

static void *reader(void *arg)
{
    struct reader_result *r = arg;
    long last = -1;
    while (!atomic_load(&done)) {
        struct version *v = (struct version *)gh_snapshot_acquire(r->slot);
        if (v == NULL)
            continue;
        if (atomic_load(&v->canary) != CANARY)
            r->bad_canary++;
        if (v->number < last)
            r->went_back++;
        last = v->number;
        if (r->reads++ == 0)
            atomic_fetch_add(&readers_seen, 1);
        gh_snapshot_unref(&v->snap);
    }
    return NULL;
}

static void test_publish_under_readers(void **state)
{
    struct gh_snapshot_slot slot;
    pthread_t threads[READERS];
    struct reader_result results[READERS] = {0};
    (void)state;

    gh_snapshot_slot_init(&slot);
    atomic_store(&destroyed, 0);
    atomic_store(&done, 0);
    assert_null(gh_snapshot_acquire(&slot));
    for (int i = 0; i < READERS; i++) {
        results[i].slot = &slot;
        pthread_create(&threads[i], NULL, reader, &results[i]);
    }
    /* version 0 first, and every reader reading it, so that the rest is published under readers */
    atomic_store(&readers_seen, 0);
    gh_snapshot_publish(&slot, &version_new(0)->snap);
    while (atomic_load(&readers_seen) < READERS)
        sched_yield();
    for (long n = 1; n < VERSIONS; n++)
        gh_snapshot_publish(&slot, &version_new(n)->snap);
    /* a reader holding the last version keeps it alive past its replacement */
    struct version *held = (struct version *)gh_snapshot_acquire(&slot);
    assert_int_equal(held->number, VERSIONS - 1);
    gh_snapshot_publish(&slot, &version_new(VERSIONS)->snap);
    assert_int_equal(atomic_load(&held->canary), CANARY);
    atomic_store(&done, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(threads[i], NULL);
    /* every version but the held one (and the current one) is gone */
    assert_int_equal(atomic_load(&destroyed), VERSIONS - 1);
    gh_snapshot_unref(&held->snap);
    assert_int_equal(atomic_load(&destroyed), VERSIONS);
    gh_snapshot_slot_clear(&slot);
    assert_int_equal(atomic_load(&destroyed), VERSIONS + 1);
    long reads = 0;
    for (int i = 0; i < READERS; i++) {
        assert_int_equal(results[i].bad_canary, 0);
        assert_int_equal(results[i].went_back, 0);
        assert_true(results[i].reads > 0);
        reads += results[i].reads;
    }
    print_message("%ld reads while %d versions were published\n", reads, VERSIONS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_under_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
