// SPDX-License-Identifier: Apache-2.0
/*
 * Per-profile limits without locks. The rate limit is GCRA (the token bucket written as one
 * "theoretical arrival time" per profile): a request passes when the time it would take the bucket
 * to drain is within the burst, and one compare-and-swap moves it on. The quota is a fixed window
 * whose index and count share one 64-bit word, so a new window and the first count of it are one
 * atomic step. Profiles live in an open-addressing table that only grows by claiming empty slots.
 */
#include "gateway/ratelimit.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define SLOTS 65536 /* profiles with a policy; a full table refuses (fails closed) */

struct slot {
    _Atomic uint64_t key;   /* hash of the profile id, 0 when empty */
    _Atomic(char *) id;     /* the id, set once by the thread that claimed the slot */
    atomic_llong tat_ns;    /* GCRA: theoretical arrival time, in nanoseconds */
    _Atomic uint64_t quota; /* window index << 32 | count */
    atomic_int dirty;       /* quota changed since the last flush */
};

struct preload {
    char *id;
    int64_t window, count;
};

struct gh_ratelimiter {
    struct slot *slots;
    const struct gh_quota_persistence *persistence;
    struct preload *preloaded; /* quota counters read at start, adopted when a slot is claimed */
    size_t n_preloaded, cap_preloaded;
};

static uint64_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return h != 0 ? h : 1;
}

static void remember(void *arg, const char *profile_id, int64_t window, int64_t count)
{
    struct gh_ratelimiter *rl = arg;
    if (rl->n_preloaded == rl->cap_preloaded) {
        size_t cap = rl->cap_preloaded ? rl->cap_preloaded * 2 : 64;
        struct preload *grown = realloc(rl->preloaded, cap * sizeof *grown);
        if (grown == NULL)
            return;
        rl->preloaded = grown;
        rl->cap_preloaded = cap;
    }
    char *id = strdup(profile_id);
    if (id != NULL)
        rl->preloaded[rl->n_preloaded++] = (struct preload){id, window, count};
}

int gh_ratelimiter_new(const struct gh_quota_persistence *persistence, struct gh_ratelimiter **out)
{
    struct gh_ratelimiter *rl = calloc(1, sizeof *rl);
    *out = NULL;
    if (rl == NULL || (rl->slots = calloc(SLOTS, sizeof *rl->slots)) == NULL) {
        free(rl);
        return GH_ERR_NOMEM;
    }
    rl->persistence = persistence;
    if (persistence != NULL && persistence->load_all != NULL)
        persistence->load_all(persistence->ctx, remember, rl);
    *out = rl;
    return GH_OK;
}

void gh_ratelimiter_free(struct gh_ratelimiter *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i < SLOTS; i++)
        free(atomic_load(&rl->slots[i].id));
    for (size_t i = 0; i < rl->n_preloaded; i++)
        free(rl->preloaded[i].id);
    free(rl->preloaded);
    free(rl->slots);
    free(rl);
}

/* The slot of `id`, claimed on first use; NULL when the table is full. */
static struct slot *slot_for(struct gh_ratelimiter *rl, const char *id)
{
    uint64_t key = hash_id(id);
    for (size_t n = 0, i = key & (SLOTS - 1); n < SLOTS; n++, i = (i + 1) & (SLOTS - 1)) {
        struct slot *s = &rl->slots[i];
        uint64_t seen = atomic_load(&s->key);
        if (seen == 0) {
            uint64_t empty = 0;
            if (atomic_compare_exchange_strong(&s->key, &empty, key)) {
                for (size_t p = 0; p < rl->n_preloaded; p++) { /* read-only after start */
                    if (strcmp(rl->preloaded[p].id, id) == 0)
                        atomic_store(&s->quota, (uint64_t)rl->preloaded[p].window << 32 |
                                                    (uint64_t)rl->preloaded[p].count);
                }
                atomic_store(&s->id, strdup(id));
                return s;
            }
            seen = empty;
        }
        if (seen == key) {
            char *owner;
            /* a slot just claimed shows its id only once its preloaded quota is in place */
            while ((owner = atomic_load(&s->id)) == NULL)
                sched_yield();
            if (strcmp(owner, id) == 0)
                return s;
        }
    }
    return NULL;
}

/* GCRA in nanoseconds (so even the largest policy, a billion a second, keeps its meaning; int64
 * nanoseconds last until 2262): 1 when the request fits, with the bucket's state in *v. */
static int check_rate(struct slot *s, const struct gh_config_rate *r, int64_t now_ms,
                      struct gh_rate_verdict *v)
{
    int64_t now = now_ms * 1000000, period = r->per_seconds * 1000000000;
    int64_t interval = period / r->requests > 0 ? period / r->requests : 1;
    int64_t burst = period - interval; /* `requests` back to back, then one per interval */
    long long tat = atomic_load(&s->tat_ns), next;

    for (;;) {
        int64_t base = tat > now ? tat : now;
        if (base - now > burst) {
            v->retry_after = (base - burst - now + 999999999) / 1000000000;
            if (v->retry_after < 1)
                v->retry_after = 1;
            v->remaining = 0;
            v->reset_seconds = (base - now + 999999999) / 1000000000;
            return 0;
        }
        next = base + interval;
        if (atomic_compare_exchange_weak(&s->tat_ns, &tat, next))
            break;
    }
    /* whole requests left in the burst; next - now may pass burst by less than one interval, so
     * add the interval first: C division truncates toward zero, not down */
    v->remaining = (burst - (next - now) + interval) / interval;
    v->reset_seconds = (next - now + 999999999) / 1000000000;
    return 1;
}

static int check_quota(struct slot *s, const struct gh_config_rate *q, int64_t now,
                       struct gh_rate_verdict *v)
{
    uint64_t window = (uint64_t)(now / 1000 / q->per_seconds), word = atomic_load(&s->quota), next;
    for (;;) {
        uint64_t count = (word >> 32) == window ? (word & 0xffffffffu) : 0;
        int64_t reset = (int64_t)(window + 1) * q->per_seconds - now / 1000;
        if ((int64_t)count >= q->requests) { /* the answer describes the limit that refused */
            v->retry_after = v->reset_seconds = reset > 0 ? reset : 1;
            v->remaining = 0;
            v->limit = q->requests;
            return 0;
        }
        next = window << 32 | (count + 1);
        if (atomic_compare_exchange_weak(&s->quota, &word, next)) {
            atomic_store(&s->dirty, 1);
            int64_t left = q->requests - (int64_t)count - 1;
            if (left < v->remaining || v->limit == 0) {
                v->remaining = left;
                v->reset_seconds = reset;
                v->limit = q->requests;
            }
            return 1;
        }
    }
}

void gh_ratelimit_check(struct gh_ratelimiter *rl, const struct gh_config_profile *profile,
                        int64_t now_ms, struct gh_rate_verdict *v)
{
    const struct gh_config_rate *rate = &profile->rate_limit, *quota = &profile->quota;
    struct slot *s;

    memset(v, 0, sizeof *v);
    v->allowed = 1;
    if (rate->requests <= 0 && quota->requests <= 0)
        return;
    v->limited = 1;
    if ((s = slot_for(rl, profile->id)) == NULL) {
        v->allowed = 0; /* no room to count: refuse rather than let an unlimited stream through */
        v->retry_after = 1;
        return;
    }
    if (rate->requests > 0) {
        v->limit = rate->requests;
        if (!check_rate(s, rate, now_ms, v)) {
            v->allowed = 0;
            return;
        }
    }
    /* the quota is counted only for requests the rate limit let through */
    if (quota->requests > 0 && !check_quota(s, quota, now_ms, v))
        v->allowed = 0;
}

void gh_ratelimiter_flush(struct gh_ratelimiter *rl)
{
    if (rl->persistence == NULL || rl->persistence->save == NULL)
        return;
    for (size_t i = 0; i < SLOTS; i++) {
        struct slot *s = &rl->slots[i];
        char *id = atomic_load(&s->id);
        if (id == NULL || !atomic_exchange(&s->dirty, 0))
            continue;
        uint64_t word = atomic_load(&s->quota);
        rl->persistence->save(rl->persistence->ctx, id, (int64_t)(word >> 32),
                              (int64_t)(word & 0xffffffffu));
    }
}
