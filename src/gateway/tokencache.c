// SPDX-License-Identifier: Apache-2.0
/*
 * The storage of the verified-token cache: a fixed table of sets of four ways, indexed by the
 * first bytes of the token's SHA-256 (uniform, so no set is favoured by the tokens' shape), with
 * the least recently used way replaced when a set is full. Claim copies live in one allocation per
 * record, counted against a byte ceiling, so neither the number of records nor their size can grow
 * past what the worker was given. A worker thread owns its cache alone: there is no lock, and a
 * tick counter stands in for a clock in the replacement order.
 */
#include "gateway/tokencache.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define WAYS 4
/* Past this many records the table alone would be a memory problem: a configuration mistake. */
#define MAX_ENTRIES ((size_t)1 << 24)
/* One record's claims and subject. A verified payload is at most 10240 bytes, 13654 in
 * base64url, and keep_identity caps the subject at 256: every valid token fits. */
#define RECORD_BYTES_MAX (16 * 1024)

struct slot {
    unsigned char hash[GH_TOKEN_HASH_LEN];
    uint64_t used; /* the tick of its last store or hit; 0: the way is empty */
    struct gh_token_record rec;
    char *blob; /* claims_b64, NUL, then subject and NUL when there is one */
    size_t blob_len;
};

struct gh_token_cache {
    struct slot *slots; /* n_sets * WAYS, allocated once */
    size_t n_sets;      /* a power of two */
    uint64_t tick;
    EVP_MD *sha256; /* fetched once: an implicit fetch per token would cost more than the hash */
    EVP_MD_CTX *md;
    struct gh_token_cache_stats stats;
};

int gh_token_cache_new(size_t entries, size_t max_bytes, struct gh_token_cache **out)
{
    struct gh_token_cache *c;
    size_t n = WAYS;

    *out = NULL;
    if (entries == 0 || entries > MAX_ENTRIES || max_bytes == 0)
        return GH_ERR_INVALID_ARG;
    while (n < entries)
        n <<= 1;
    if ((c = calloc(1, sizeof *c)) == NULL)
        return GH_ERR_NOMEM;
    c->n_sets = n / WAYS;
    c->slots = calloc(n, sizeof *c->slots);
    c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    c->md = EVP_MD_CTX_new();
    if (c->slots == NULL || c->sha256 == NULL || c->md == NULL) {
        ERR_clear_error();
        gh_token_cache_free(c);
        return GH_ERR_NOMEM;
    }
    c->stats.capacity = n;
    c->stats.max_bytes = max_bytes;
    *out = c;
    return GH_OK;
}

static void drop(struct gh_token_cache *c, struct slot *s)
{
    free(s->blob);
    c->stats.bytes -= s->blob_len;
    c->stats.entries--;
    memset(s, 0, sizeof *s);
}

void gh_token_cache_free(struct gh_token_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; c->slots != NULL && i < c->n_sets * WAYS; i++)
        free(c->slots[i].blob);
    free(c->slots);
    EVP_MD_CTX_free(c->md);
    EVP_MD_free(c->sha256);
    free(c);
}

int gh_token_cache_hash(struct gh_token_cache *c, const char *token, size_t len,
                        unsigned char out[GH_TOKEN_HASH_LEN])
{
    unsigned int n = 0;

    if (EVP_DigestInit_ex2(c->md, c->sha256, NULL) != 1 ||
        EVP_DigestUpdate(c->md, token, len) != 1 || EVP_DigestFinal_ex(c->md, out, &n) != 1 ||
        n != GH_TOKEN_HASH_LEN) {
        ERR_clear_error();
        return GH_ERR_INTERNAL;
    }
    return GH_OK;
}

static struct slot *set_of(const struct gh_token_cache *c, const unsigned char *hash)
{
    uint64_t v;

    memcpy(&v, hash, sizeof v);
    return &c->slots[(size_t)(v & (c->n_sets - 1)) * WAYS];
}

/* The hash is of a token, not a secret to guess byte by byte, but a constant-time compare costs
 * nothing here and leaves nothing to argue about. */
static struct slot *find_slot(const struct gh_token_cache *c, const unsigned char *hash)
{
    struct slot *set = set_of(c, hash);

    for (int i = 0; i < WAYS; i++) {
        if (set[i].used != 0 && CRYPTO_memcmp(set[i].hash, hash, GH_TOKEN_HASH_LEN) == 0)
            return &set[i];
    }
    return NULL;
}

static int alive(const struct gh_token_record *r, int64_t now)
{
    return r->checked_at <= now && now < r->until;
}

const struct gh_token_record *gh_token_cache_find(struct gh_token_cache *c,
                                                  const unsigned char hash[GH_TOKEN_HASH_LEN],
                                                  int64_t now)
{
    struct slot *s = find_slot(c, hash);

    c->stats.lookups++;
    if (s == NULL)
        return NULL;
    if (!alive(&s->rec, now)) {
        c->stats.expired++;
        drop(c, s);
        return NULL;
    }
    s->used = ++c->tick;
    c->stats.found++;
    return &s->rec;
}

/* The way a new record for `hash` goes to: its own old record, an empty way, a dead record (at
 * the new record's time), else the least recently used. Counts what the choice throws away. */
static struct slot *victim(struct gh_token_cache *c, const unsigned char *hash, int64_t now)
{
    struct slot *set = set_of(c, hash), *v = find_slot(c, hash);

    for (int i = 0; v == NULL && i < WAYS; i++) {
        if (set[i].used == 0)
            v = &set[i];
    }
    for (int i = 0; v == NULL && i < WAYS; i++) {
        if (!alive(&set[i].rec, now)) {
            v = &set[i];
            c->stats.expired++;
        }
    }
    if (v == NULL) {
        v = &set[0];
        for (int i = 1; i < WAYS; i++) {
            if (set[i].used < v->used)
                v = &set[i];
        }
        c->stats.evictions++;
    }
    if (v->used != 0)
        drop(c, v);
    return v;
}

void gh_token_cache_insert(struct gh_token_cache *c, const unsigned char hash[GH_TOKEN_HASH_LEN],
                           const struct gh_token_record *r)
{
    size_t claims_len = strlen(r->claims_b64);
    size_t subject_len = r->subject != NULL ? strlen(r->subject) + 1 : 0;
    size_t need = claims_len + 1 + subject_len;
    int64_t until = r->until;
    struct slot *s;

    /* whatever the caller computed, no verification is trusted for longer than the TTL */
    if (until > r->checked_at + GH_TOKEN_CACHE_TTL)
        until = r->checked_at + GH_TOKEN_CACHE_TTL;
    if (until <= r->checked_at)
        return;
    s = victim(c, hash, r->checked_at);
    if (need > RECORD_BYTES_MAX || need > c->stats.max_bytes - c->stats.bytes ||
        (s->blob = malloc(need)) == NULL) {
        c->stats.refused++;
        return;
    }
    memcpy(s->blob, r->claims_b64, claims_len + 1);
    if (r->subject != NULL)
        memcpy(s->blob + claims_len + 1, r->subject, subject_len);
    memcpy(s->hash, hash, GH_TOKEN_HASH_LEN);
    s->blob_len = need;
    s->rec = *r;
    s->rec.until = until;
    s->rec.claims_b64 = s->blob;
    s->rec.subject = r->subject != NULL ? s->blob + claims_len + 1 : NULL;
    s->used = ++c->tick;
    c->stats.entries++;
    c->stats.bytes += need;
    c->stats.inserts++;
}

void gh_token_cache_forget(struct gh_token_cache *c, const unsigned char hash[GH_TOKEN_HASH_LEN])
{
    struct slot *s = find_slot(c, hash);

    if (s != NULL) {
        drop(c, s);
        c->stats.forgotten++;
    }
}

void gh_token_cache_stats(const struct gh_token_cache *c, struct gh_token_cache_stats *out)
{
    *out = c->stats;
}
