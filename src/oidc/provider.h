// SPDX-License-Identifier: Apache-2.0
/*
 * Identity providers (SPEC §4): for every discovery URL or JWKS URI that an OIDC profile names, one
 * provider that fetches the IdP's discovery document and key set, keeps it fresh, and follows key
 * rotation by itself. All fetching happens on the manager's own thread with libcurl; worker threads
 * only read published key sets (lock-free snapshots) and, for a token whose kid is unknown, ask for
 * one refetch and are told the outcome through a callback they provide, which must hand the result
 * to their own event loop.
 */
#ifndef GH_OIDC_PROVIDER_H
#define GH_OIDC_PROVIDER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/snapshot.h"
#include "jose/jwk.h"

/* One immutable published state of a provider's keys. Read-only once published. */
struct gh_keyset {
    struct gh_snapshot snap; /* reference count: gh_keyset_unref */
    struct gh_jwks *jwks;    /* the keys (usable ones and skipped ones with their reasons) */
    char *issuer;            /* from discovery; NULL for a provider configured by JWKS URI */
    char *jwks_uri;
    char *discovery_json; /* raw documents as fetched, for persistence; discovery may be NULL */
    char *jwks_json;
    int64_t fetched_at;  /* ms since the epoch, by the manager's clock */
    int64_t expires_at;  /* ms: fetched_at + the clamped cache lifetime */
    uint64_t generation; /* changes whenever the key material changes */
};

static inline void gh_keyset_unref(struct gh_keyset *ks)
{
    if (ks != NULL)
        gh_snapshot_unref(&ks->snap);
}

/* The last good documents of a provider, as kept by a store (SPEC §4: restart while the IdP is
 * down). Strings are NUL-terminated; `discovery` is NULL for a JWKS-URI provider. */
struct gh_persisted_keys {
    char *discovery;
    char *jwks;
    int64_t fetched_at; /* ms */
    int64_t expires_at; /* ms */
};

/* Called on the manager thread only, so a store may do blocking I/O there. */
struct gh_oidc_persistence {
    void *ctx;
    /* fills *out (strings malloc'd, the caller frees them) and returns GH_OK, or an error when
     * nothing is kept for `source_url` */
    int (*load)(void *ctx, const char *source_url, struct gh_persisted_keys *out);
    int (*save)(void *ctx, const char *source_url, const struct gh_persisted_keys *keys);
};

struct gh_oidc_options {
    int64_t max_stale_ms; /* keys serve at most this long past their expiry (24 h) */
    int allow_insecure;   /* --allow-insecure-idp: http to any host */
    /* unknown kids (SPEC §4): see gh_provider_request_refetch */
    int64_t refetch_gap_ms;     /* a never-seen kid may refetch this long after the last (5 s) */
    int refetches_per_minute;   /* sustained kid refetches per provider (4) */
    int refetch_burst;          /* refetches a full budget holds (2: one more 5 s after a first) */
    int64_t unknown_kid_ttl_ms; /* a kid still unknown after a refetch is refused at once (30 s) */
    size_t unknown_kid_slots;   /* such kids remembered per provider (256); more evict the oldest */
    int64_t wait_limit_ms;      /* a waiter is answered after at most this long (5 s) */
    long fetch_timeout_ms;      /* one HTTP request (10 s) */
    size_t max_document;        /* bytes (1 MiB) */
    int max_redirects;          /* 3 */
    int64_t retry_base_ms;      /* first retry after a failure (2 s), doubling, with jitter */
    int64_t retry_max_ms;       /* longest pause between retries (5 min) */
    const char *ca_file;        /* extra CA bundle (tests); NULL: the system's */
    const char *resolve; /* one curl --resolve entry "HOST:PORT:ADDR" (tests); NULL: DNS only */
    int64_t (*now_ms)(void *ctx); /* injectable clock (tests); NULL: CLOCK_REALTIME */
    void *clock_ctx;
    const struct gh_oidc_persistence *persistence; /* NULL: nothing persisted */
};

/* Fills `o` with the defaults of SPEC §4. */
void gh_oidc_options_default(struct gh_oidc_options *o);

struct gh_oidc_manager;
struct gh_provider;

/* Creates the manager and starts its thread. The options (and what they point to) must outlive it.
 */
int gh_oidc_manager_new(const struct gh_oidc_options *options, struct gh_oidc_manager **out);

/* Stops the thread (in-flight fetches are abandoned, waiters are answered GH_ERR_STOPPED), frees
 * every provider. No other call may be in progress or follow. NULL is fine. */
void gh_oidc_manager_free(struct gh_oidc_manager *m);

/* Wakes the manager to re-read its clock now (tests that move an injected clock). */
void gh_oidc_manager_wake(struct gh_oidc_manager *m);

/* The manager thread's own counters, for /metrics and tests. A wake-up is one pass of its loop:
 * an idle manager wakes about once a second, so a fast-growing count means it spins. */
struct gh_oidc_manager_counters {
    uint64_t wakeups;
};
void gh_oidc_manager_counters(struct gh_oidc_manager *m, struct gh_oidc_manager_counters *out);

enum gh_provider_source { GH_PROVIDER_DISCOVERY, GH_PROVIDER_JWKS_URI };

/*
 * The provider for `url` (a discovery URL or a JWKS URI), created on first use, when its first
 * fetch is started. The returned pointer stays valid until the manager is freed. A URL that breaks
 * the rules of gh_oidc_url_check or gh_oidc_expected_issuer still gets its provider in *out, which
 * never fetches and says why in its last_error, and that rule's error is returned; GH_OK
 * otherwise.
 */
int gh_oidc_provider_get(struct gh_oidc_manager *m, enum gh_provider_source source, const char *url,
                         struct gh_provider **out);

/* Retires every provider not in `keep` (no profile uses it any more): it is no longer fetched,
 * listed or counted for readiness, until gh_oidc_provider_get asks for its URL again. */
void gh_oidc_retain(struct gh_oidc_manager *m, struct gh_provider *const *keep, size_t n);

/* Every provider in use (not retired), in creation order; *count receives their number. The array
 * is the caller's to free (the providers are not). */
struct gh_provider **gh_oidc_providers(struct gh_oidc_manager *m, size_t *count);

/* Stable id of the provider ("prv_" + 16 base62 characters derived from its URL). */
const char *gh_provider_id(const struct gh_provider *p);
const char *gh_provider_url(const struct gh_provider *p);

/*
 * The current key set with a new reference (the caller unrefs it), or NULL when none was ever
 * fetched. Lock-free and non-blocking: this is what worker threads call on every request.
 */
struct gh_keyset *gh_provider_keys(struct gh_provider *p);

/* GH_OK while the provider may serve `ks` at time `now_ms`; GH_ERR_KEYS_UNAVAILABLE when there are
 * no keys or they are more than max_stale past their expiry. */
int gh_provider_usable(const struct gh_provider *p, const struct gh_keyset *ks, int64_t now_ms);

/* The manager's clock, in ms since the epoch. */
int64_t gh_oidc_now_ms(const struct gh_oidc_manager *m);

/* The same clock through one of its providers: what gh_provider_usable must be asked with, so the
 * data plane and /readyz agree to the millisecond. */
int64_t gh_provider_now_ms(const struct gh_provider *p);

/* What an unknown kid gets (see gh_provider_request_refetch and gh_provider_kid_outlook). */
enum gh_kid_verdict {
    GH_KID_REFETCH,      /* a refetch starts for it */
    GH_KID_JOIN,         /* it waits for the fetch already running or asked for */
    GH_KID_NEWER_KEYS,   /* newer keys than the caller's are out: look again */
    GH_KID_REMEMBERED,   /* still unknown after a refetch a moment ago: refused, no fetch */
    GH_KID_TOO_SOON,     /* the previous refetch was less than refetch_gap_ms ago: refused */
    GH_KID_BUDGET_SPENT, /* the provider's refetch budget is spent: refused */
    GH_KID_NO_FETCH,     /* the provider never fetches (its URL is refused) */
};

/*
 * A wait for a refetch, owned by the caller. `notify` is called exactly once, ON THE MANAGER
 * THREAD, with GH_OK when a fetch completed and published keys (the caller looks its kid up again),
 * GH_ERR_UNKNOWN_KID when the wait limit passed first, or another error when the fetch failed or
 * the manager stopped. It must not block: it should post to the caller's own event loop and return.
 */
struct gh_provider_wait {
    void (*notify)(struct gh_provider_wait *w, int result);
    void *ctx;
    /* manager's bookkeeping */
    struct gh_provider_wait *next;
    int64_t deadline_ms;
    unsigned char kid_hash[16]; /* the kid it waits for, remembered if still unknown after */
    uint64_t epoch;             /* fetches begun before it waited */
};

/*
 * Asks for a refetch because a token named `kid` (`len` bytes, not necessarily NUL-terminated),
 * which `ks` (the set the caller looked in) does not hold. SPEC §4's rule: a kid still unknown
 * after a refetch is remembered and refused at once for unknown_kid_ttl_ms; another kid joins a
 * fetch in flight, or starts one if the previous kid refetch is refetch_gap_ms old and the
 * provider's budget (refetches_per_minute, refetch_burst) allows. A kid refetch never moves the
 * scheduled refresh. Returns:
 *   GH_OK            a newer key set than `ks` is already published: look again, no wait needed;
 *   GH_ERR_UNKNOWN_KID  no refetch for this kid now (remembered, too soon, or budget spent):
 *                    refuse the token; *why (may be NULL) says which;
 *   GH_ERR_KEYS_UNAVAILABLE  the provider never fetches;
 *   1                `w` is registered; `notify` will be called later (single-flight: every waiter
 *                    of the provider shares one fetch).
 */
int gh_provider_request_refetch(struct gh_provider *p, const struct gh_keyset *ks, const char *kid,
                                size_t len, struct gh_provider_wait *w, enum gh_kid_verdict *why);

/* What gh_provider_request_refetch would do for `kid` now, without doing it (POST /v1/explain). */
enum gh_kid_verdict gh_provider_kid_outlook(struct gh_provider *p, const struct gh_keyset *ks,
                                            const char *kid, size_t len);

/* Withdraws a registered wait (e.g. the client went away). Returns 1 when it was withdrawn, 0 when
 * `notify` has already been called or is running; after it returns, `notify` will not be called. */
int gh_provider_cancel_wait(struct gh_provider *p, struct gh_provider_wait *w);

/* Starts a fetch now, whatever the schedule (admin `POST /v1/providers/{id}/refresh`). */
void gh_provider_refresh(struct gh_provider *p);

/*
 * Blocks the calling thread (never a worker) until the provider has finished its first fetch or
 * `timeout_ms` passed: GH_OK when keys are published, else the last error. For the CLI and startup.
 */
int gh_provider_wait_ready(struct gh_provider *p, int64_t timeout_ms);

/*
 * Fetches now and blocks (never on a worker) until that fetch ended or `timeout_ms` passed: GH_OK
 * when it published keys, else its error (the message is the status's last_error). For checking an
 * IdP when an operator saves a profile (SPEC §4).
 */
int gh_provider_check_now(struct gh_provider *p, int64_t timeout_ms);

/* Status for the admin API (SPEC §6): id, source, url, issuer, jwks_uri, keys (kid, kty, alg, crv,
 * usable, and the reason when not), fetched_at, next_refresh_at, last_error, stale, available,
 * fetches, failures. A new reference. */
json_t *gh_provider_status(struct gh_provider *p);

/* Counters, for /metrics and tests. */
struct gh_provider_counters {
    uint64_t fetches;      /* HTTP requests started */
    uint64_t jwks_fetches; /* of which for the key set */
    uint64_t failures;     /* refreshes that ended in an error */
    uint64_t refetches;    /* refetches triggered by unknown kids */
    uint64_t kid_refusals; /* unknown kids refused at once (remembered, too soon, budget spent) */
    uint64_t unknown_kid_evictions; /* remembered unknown kids dropped for room */
};
void gh_provider_counters(struct gh_provider *p, struct gh_provider_counters *out);

#endif
