// SPDX-License-Identifier: Apache-2.0
/*
 * The rule of SPEC §4 for refetches that unknown kids ask for, kept apart from the manager's
 * threads and sockets so it can be reasoned about (and tested) as plain arithmetic on a clock:
 *   - a kid still unknown after a refetch is remembered as unknown for a while and refused at once;
 *   - a never-seen kid may start a refetch some seconds after the previous one (the gap), so one
 *     made-up kid does not shut out a genuine rotation;
 *   - refetches are paid from a token bucket (a few a minute, a small burst), so a storm of random
 *     kids costs the IdP a bounded number of fetches and still leaves one every few seconds.
 * The memory of unknown kids is a fixed-size table of kid hashes: a storm of distinct kids can
 * only evict entries (counted), never grow it. Internal to src/oidc; callers hold the provider's
 * lock.
 */
#ifndef GH_OIDC_REFETCH_H
#define GH_OIDC_REFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "oidc/provider.h"

#define GH_KID_HASH_LEN 16

/* The first GH_KID_HASH_LEN bytes of SHA-256 of the kid: a fixed size whatever the token says. */
void gh_kid_hash(const char *kid, size_t len, unsigned char out[GH_KID_HASH_LEN]);

/* 1 when a kid of `jwks` (usable or not) has this hash. */
int gh_kid_hash_in(const struct gh_jwks *jwks, const unsigned char hash[GH_KID_HASH_LEN]);

struct gh_unknown_kid {
    unsigned char hash[GH_KID_HASH_LEN];
    int64_t until_ms; /* 0: a free slot */
};

/* Kids still unknown after a refetch. Zero-initialised it is empty; its slots come on first use. */
struct gh_unknown_kids {
    struct gh_unknown_kid *slots;
    size_t cap;
    uint64_t evictions; /* live entries dropped to make room */
};

void gh_unknown_kids_clear(struct gh_unknown_kids *t);

/* 1 when `hash` is remembered as unknown at `now`. */
int gh_unknown_kids_has(const struct gh_unknown_kids *t, const unsigned char *hash, int64_t now);

/* Remembers `hash` until `until`; a full table (`cap` slots) first reuses an expired slot, else
 * evicts the entry closest to its end (counted). */
void gh_unknown_kids_add(struct gh_unknown_kids *t, size_t cap, const unsigned char *hash,
                         int64_t now, int64_t until);

/* How many entries are remembered at `now` (tests, status). */
size_t gh_unknown_kids_count(const struct gh_unknown_kids *t, int64_t now);

/* The refetch budget of one provider: a token bucket kept in milliseconds of credit. */
struct gh_refetch_budget {
    int64_t credit_ms; /* at credit_at; a full bucket is refetch_burst refetches */
    int64_t credit_at; /* 0: never spent, the bucket is full */
    int64_t last_ms;   /* start of the previous kid refetch; 0: none yet */
};

/* GH_KID_REFETCH when a refetch may start at `now`, else GH_KID_TOO_SOON or GH_KID_BUDGET_SPENT.
 */
enum gh_kid_verdict gh_refetch_budget_check(const struct gh_refetch_budget *b,
                                            const struct gh_oidc_options *o, int64_t now);

/* Pays for a refetch starting at `now` (after gh_refetch_budget_check allowed it). */
void gh_refetch_budget_spend(struct gh_refetch_budget *b, const struct gh_oidc_options *o,
                             int64_t now);

#endif
