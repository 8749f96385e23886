// SPDX-License-Identifier: Apache-2.0
/*
 * The regions of json_region.h. All of them are carved from one reservation made at start, so a
 * free can tell region memory from malloc's by its address alone, whichever thread frees it.
 * Threads take a region on their first enter and give it back when they end (a new owner rewinds
 * it only once nothing in it is alive, like the old one).
 */
#include "common/json_region.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define REGIONS_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REGIONS_OFF 1
#endif
#endif

#define REGION_BYTES (64u * 1024u) /* a large token's values take a few KiB */
#define REGION_COUNT 256u          /* threads with a region at once; others use malloc */
#define REGION_ALIGN 16u           /* what malloc promises on x86-64 and aarch64 */

struct region {
    atomic_long live; /* values handed out and not yet freed */
    size_t used;      /* bytes handed out since the last rewind; the owner's alone */
    int taken;        /* guarded by regions_lock */
};

static char *reservation; /* REGION_COUNT * REGION_BYTES, or NULL when the reservation failed */
static struct region regions[REGION_COUNT];
static pthread_mutex_t regions_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t region_key;

static _Thread_local struct region *mine; /* this thread's region, NULL before its first enter */
static _Thread_local int depth;           /* enters without their leave yet */

static size_t index_of(const struct region *r)
{
    return (size_t)(r - regions);
}

/* (unused when REGIONS_OFF: jansson then keeps malloc) */
__attribute__((unused)) static void *region_malloc(size_t size)
{
    struct region *r = mine;
    size_t need = (size + REGION_ALIGN - 1) & ~(size_t)(REGION_ALIGN - 1);

    if (depth > 0 && r != NULL && size != 0 && need <= REGION_BYTES - r->used) {
        void *p = reservation + index_of(r) * REGION_BYTES + r->used;
        r->used += need;
        atomic_fetch_add_explicit(&r->live, 1, memory_order_relaxed);
        return p;
    }
    return malloc(size);
}

__attribute__((unused)) static void region_free(void *p)
{
    uintptr_t at = (uintptr_t)p, base = (uintptr_t)reservation;

    if (reservation != NULL && at >= base && at < base + (uintptr_t)REGION_COUNT * REGION_BYTES) {
        /* release: the owner that sees 0 (acquire) may reuse the bytes */
        atomic_fetch_sub_explicit(&regions[(at - base) / REGION_BYTES].live, 1,
                                  memory_order_release);
        return;
    }
    free(p);
}

static void give_back(void *arg)
{
    struct region *r = arg;

    pthread_mutex_lock(&regions_lock);
    r->taken = 0;
    pthread_mutex_unlock(&regions_lock);
}

/* Before main, while there is one thread: jansson's allocator is set once and never changes. */
__attribute__((constructor)) static void regions_install(void)
{
#ifndef REGIONS_OFF
    void *p = mmap(NULL, (size_t)REGION_COUNT * REGION_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED || pthread_key_create(&region_key, give_back) != 0) {
        if (p != MAP_FAILED)
            munmap(p, (size_t)REGION_COUNT * REGION_BYTES);
        return; /* no regions: jansson keeps malloc */
    }
    reservation = p;
    json_set_alloc_funcs(region_malloc, region_free);
#endif
}

static struct region *take_region(void)
{
    struct region *r = NULL;

    pthread_mutex_lock(&regions_lock);
    for (size_t i = 0; i < REGION_COUNT && r == NULL; i++) {
        if (!regions[i].taken) {
            regions[i].taken = 1;
            r = &regions[i];
        }
    }
    pthread_mutex_unlock(&regions_lock);
    if (r != NULL && pthread_setspecific(region_key, r) != 0) {
        give_back(r);
        r = NULL;
    }
    if (r != NULL)
        r->used = REGION_BYTES; /* full until a rewind proves the last owner's values gone */
    return r;
}

void gh_json_region_enter(void)
{
    if (reservation == NULL)
        return;
    if (depth++ > 0)
        return;
    if (mine == NULL && (mine = take_region()) == NULL)
        return;
    if (atomic_load_explicit(&mine->live, memory_order_acquire) == 0)
        mine->used = 0;
}

void gh_json_region_leave(void)
{
    if (reservation != NULL && depth > 0)
        depth--;
}

long gh_json_region_live(void)
{
    return mine != NULL ? atomic_load(&mine->live) : -1;
}
