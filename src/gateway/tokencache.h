// SPDX-License-Identifier: Apache-2.0
/*
 * The verified-token cache (ARCHITECTURE.md): a token that verified once need not pay for its
 * parsing and signature again while nothing it was checked against changed. One cache per worker
 * thread, touched by that thread only, so it takes no lock. It is bounded twice: a fixed table of
 * entries (4-way set-associative, least recently used way replaced) allocated once, and a ceiling
 * on the bytes of the claim copies it keeps. Entries are keyed by the SHA-256 of the token: the
 * token itself is never stored. This module only stores and expires records; what makes a record
 * still stand for a verification (same configuration, same key set) is the pipeline's to judge.
 */
#ifndef GH_GATEWAY_TOKENCACHE_H
#define GH_GATEWAY_TOKENCACHE_H

#include <stddef.h>
#include <stdint.h>

#define GH_TOKEN_HASH_LEN 32

/* Defaults for a gateway worker: about 2 MiB of table plus at most 16 MiB of claims. */
#define GH_TOKEN_CACHE_ENTRIES 16384
#define GH_TOKEN_CACHE_BYTES   (16 * 1024 * 1024)
/* However long a token stays valid, a cached verification is redone after this many seconds. */
#define GH_TOKEN_CACHE_TTL 300

struct gh_config;
struct gh_provider;
struct gh_token_cache;

/*
 * What one verification established. The pointers are identities to compare, never dereferenced
 * by the cache (the snapshot they name may be gone): a record is only used while they equal the
 * caller's current ones.
 */
struct gh_token_record {
    const void *settings;               /* the gateway settings the key lookup used */
    const struct gh_config *config;     /* the snapshot the token was bound and checked in... */
    uint64_t config_generation;         /* ...and its generation: a reused address differs here */
    size_t profile_index;               /* into config->profiles */
    const struct gh_provider *provider; /* the profile's provider; NULL for static jwt keys */
    uint64_t key_generation;            /* the provider's key set generation; 0 for jwt keys */
    int64_t checked_at;                 /* epoch seconds; a clock that went back misses */
    int64_t until;                      /* epoch seconds, exclusive: the record is dead from then */
    const char *claims_b64;             /* base64url of the verified payload (NUL-terminated) */
    const char *subject;                /* the token's sub, or NULL */
};

struct gh_token_cache_stats {
    uint64_t lookups, found; /* gh_token_cache_find calls, and those that returned a record */
    uint64_t inserts;        /* records stored */
    uint64_t evictions;      /* live records replaced by another token's */
    uint64_t expired;        /* records dropped because their time was up */
    uint64_t forgotten;      /* records dropped by gh_token_cache_forget */
    uint64_t refused;        /* inserts skipped: claims too large or the byte ceiling reached */
    size_t entries;          /* records held now */
    size_t capacity;         /* most records it can hold */
    size_t bytes;            /* bytes held by claim copies now */
    size_t max_bytes;        /* their ceiling */
};

/*
 * Makes a cache of at least `entries` records (rounded up to a power of two, at least 4) whose
 * claim copies take at most `max_bytes`. The caller owns it: gh_token_cache_free. GH_ERR_NOMEM
 * when memory or OpenSSL's SHA-256 is missing, GH_ERR_INVALID_ARG for 0 or absurd sizes.
 */
int gh_token_cache_new(size_t entries, size_t max_bytes, struct gh_token_cache **out);

/* Frees the cache and every copy it holds. NULL is fine. */
void gh_token_cache_free(struct gh_token_cache *c);

/* SHA-256 of the token bytes into `out`, with the cache's reusable digest context. */
int gh_token_cache_hash(struct gh_token_cache *c, const char *token, size_t len,
                        unsigned char out[GH_TOKEN_HASH_LEN]);

/*
 * The record for `hash` that is alive at `now` (checked_at <= now < until), or NULL. A dead one
 * found on the way is dropped. The record and its strings are borrowed: they stay valid until the
 * next insert, forget or free on this cache.
 */
const struct gh_token_record *gh_token_cache_find(struct gh_token_cache *c,
                                                  const unsigned char hash[GH_TOKEN_HASH_LEN],
                                                  int64_t now);

/*
 * Stores a copy of `r` (its strings included) for `hash`, replacing the record of the same hash,
 * else an empty or dead way of its set, else the least recently used one. Claims larger than the
 * cache accepts, or beyond its byte ceiling, are not stored: caching is an optimisation, never a
 * duty. r->claims_b64 must not be NULL.
 */
void gh_token_cache_insert(struct gh_token_cache *c, const unsigned char hash[GH_TOKEN_HASH_LEN],
                           const struct gh_token_record *r);

/* Drops the record for `hash`, if any (it no longer stands for a valid verification). */
void gh_token_cache_forget(struct gh_token_cache *c, const unsigned char hash[GH_TOKEN_HASH_LEN]);

/* Counters and sizes, for tests and benchmarks. */
void gh_token_cache_stats(const struct gh_token_cache *c, struct gh_token_cache_stats *out);

#endif
