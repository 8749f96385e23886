// SPDX-License-Identifier: Apache-2.0
/*
 * Unknown kids and the refetch budget (see refetch.h). The table is scanned linearly: it is small
 * (a few hundred slots), only requests naming an unknown kid look at it, and a scan of contiguous
 * 24-byte entries costs less than the lock around it.
 */
#include "oidc/refetch.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

void gh_kid_hash(const char *kid, size_t len, unsigned char out[GH_KID_HASH_LEN])
{
    unsigned char full[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)(kid != NULL ? kid : ""), kid != NULL ? len : 0, full);
    memcpy(out, full, GH_KID_HASH_LEN);
}

int gh_kid_hash_in(const struct gh_jwks *jwks, const unsigned char hash[GH_KID_HASH_LEN])
{
    unsigned char h[GH_KID_HASH_LEN];
    for (size_t i = 0; jwks != NULL && i < jwks->count; i++) {
        const char *kid = jwks->keys[i].kid;
        if (kid == NULL)
            continue;
        gh_kid_hash(kid, strlen(kid), h);
        if (memcmp(h, hash, GH_KID_HASH_LEN) == 0)
            return 1;
    }
    return 0;
}

void gh_unknown_kids_clear(struct gh_unknown_kids *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = 0;
}

int gh_unknown_kids_has(const struct gh_unknown_kids *t, const unsigned char *hash, int64_t now)
{
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].until_ms > now && memcmp(t->slots[i].hash, hash, GH_KID_HASH_LEN) == 0)
            return 1;
    }
    return 0;
}

void gh_unknown_kids_add(struct gh_unknown_kids *t, size_t cap, const unsigned char *hash,
                         int64_t now, int64_t until)
{
    struct gh_unknown_kid *slot = NULL;

    if (cap == 0)
        return;
    if (t->slots == NULL) {
        if ((t->slots = calloc(cap, sizeof *t->slots)) == NULL)
            return; /* without memory nothing is remembered: kids fall back on the budget */
        t->cap = cap;
    }
    /* the same kid again, else a free or expired slot, else the live entry nearest its end */
    for (size_t i = 0; i < t->cap; i++) {
        struct gh_unknown_kid *s = &t->slots[i];
        if (s->until_ms > now && memcmp(s->hash, hash, GH_KID_HASH_LEN) == 0) {
            slot = s;
            break;
        }
        if (slot == NULL || (slot->until_ms > now && s->until_ms < slot->until_ms))
            slot = s;
    }
    if (slot->until_ms > now && memcmp(slot->hash, hash, GH_KID_HASH_LEN) != 0)
        t->evictions++;
    memcpy(slot->hash, hash, GH_KID_HASH_LEN);
    slot->until_ms = until;
}

size_t gh_unknown_kids_count(const struct gh_unknown_kids *t, int64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++)
        n += t->slots[i].until_ms > now;
    return n;
}

static int64_t cost_ms(const struct gh_oidc_options *o)
{
    return 60000 / (o->refetches_per_minute > 0 ? o->refetches_per_minute : 1);
}

/* Credit at `now`: what was left, plus the time since, up to a full bucket. */
static int64_t credit_at(const struct gh_refetch_budget *b, const struct gh_oidc_options *o,
                         int64_t now)
{
    int64_t full = cost_ms(o) * (o->refetch_burst > 0 ? o->refetch_burst : 1);
    if (b->credit_at == 0)
        return full;
    int64_t credit = b->credit_ms + (now > b->credit_at ? now - b->credit_at : 0);
    return credit < full ? credit : full;
}

enum gh_kid_verdict gh_refetch_budget_check(const struct gh_refetch_budget *b,
                                            const struct gh_oidc_options *o, int64_t now)
{
    if (b->last_ms != 0 && now - b->last_ms < o->refetch_gap_ms)
        return GH_KID_TOO_SOON;
    if (credit_at(b, o, now) < cost_ms(o))
        return GH_KID_BUDGET_SPENT;
    return GH_KID_REFETCH;
}

void gh_refetch_budget_spend(struct gh_refetch_budget *b, const struct gh_oidc_options *o,
                             int64_t now)
{
    b->credit_ms = credit_at(b, o, now) - cost_ms(o);
    b->credit_at = now;
    b->last_ms = now;
}
