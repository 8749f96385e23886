// SPDX-License-Identifier: Apache-2.0
/*
 * The provider manager: one thread runs a libcurl multi handle for every provider's fetches, so a
 * slow IdP never delays another, and wakes on three things: a transfer's progress, the next
 * deadline (a scheduled refresh, a retry, a waiter's limit), or a request from another thread
 * (curl_multi_wakeup). Worker threads touch a provider only to read its published key set
 * (lock-free) or, for an unknown kid, under the provider's mutex to join or start a refetch.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "common/error.h"
#include "oidc/events.h"
#include "oidc/fetch.h"
#include "oidc/keyset.h"
#include "oidc/policy.h"
#include "oidc/provider.h"
#include "oidc/refetch.h"

enum phase { PHASE_IDLE, PHASE_DISCOVERY, PHASE_JWKS };

struct gh_provider {
    struct gh_oidc_manager *m;
    char id[24];
    char *url;
    enum gh_provider_source source;
    char expected_issuer[2048];
    struct gh_snapshot_slot slot;
    atomic_int retired; /* no profile uses it: not fetched, not listed (never freed: snapshots may
                           still point at it) */
    int refused; /* set once at creation: the URL may not be fetched (GH_ERR_*); never fetches */

    /* shared with other threads, under `lock` */
    pthread_mutex_t lock;
    pthread_cond_t ready_cond;
    struct gh_provider_wait *waiters;
    int busy;              /* a fetch is in flight */
    int refetch_requested; /* by an unknown kid */
    int refresh_requested; /* by an operator */
    int ready;             /* the first fetch (or load) has ended */
    uint64_t completions;  /* fetches ended, successful or not */
    uint64_t begun;        /* fetches begun */
    int last_code;
    char last_error[512];            /* empty after a success */
    struct gh_refetch_budget budget; /* for kid refetches */
    struct gh_unknown_kids unknown;  /* kids still unknown after a refetch */
    int64_t next_refresh_ms;
    struct gh_provider_counters counters;

    /* manager thread only */
    int loaded; /* persistence consulted */
    enum phase phase;
    int kid_refetch;
    int redirects;
    int failures_in_row;
    int64_t fetch_started;                /* monotonic ms, for the debug log */
    int stale_logged, unavailable_logged; /* the current keys' state changes, logged once each */
    struct gh_fetch fetch;
    char *new_issuer, *new_jwks_uri, *new_discovery;
    char *target_jwks_uri; /* the key set URL as configured or discovered, before any redirect */
};

struct gh_oidc_manager {
    struct gh_oidc_options o;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t lock; /* guards `providers`, `count`, `cap` */
    struct gh_provider **providers;
    size_t count, cap;
    atomic_int stopping;
    unsigned rand_state;
    atomic_uint_fast64_t wakeups; /* passes of the loop */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void gh_oidc_options_default(struct gh_oidc_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_stale_ms = 24 * 3600 * 1000LL;
    o->refetch_gap_ms = 5000;
    o->refetches_per_minute = 4;
    o->refetch_burst = 2;
    o->unknown_kid_ttl_ms = 30 * 1000;
    o->unknown_kid_slots = 256;
    o->wait_limit_ms = 5000;
    o->fetch_timeout_ms = 10000;
    o->max_document = 1024 * 1024;
    o->max_redirects = 3;
    o->retry_base_ms = 2000;
    o->retry_max_ms = 5 * 60 * 1000;
}

static int64_t now_of(const struct gh_oidc_options *o)
{
    struct timespec ts;
    if (o->now_ms != NULL)
        return o->now_ms(o->clock_ctx);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t gh_oidc_now_ms(const struct gh_oidc_manager *m)
{
    return now_of(&m->o);
}

int64_t gh_provider_now_ms(const struct gh_provider *p)
{
    return now_of(&p->m->o);
}

/* ---- waiters (called with p->lock held) ---- */

static void notify_all(struct gh_provider *p, int result)
{
    struct gh_provider_wait *w = p->waiters;
    p->waiters = NULL;
    while (w != NULL) {
        struct gh_provider_wait *next = w->next;
        w->next = NULL;
        w->notify(w, result);
        w = next;
    }
}

static void notify_expired(struct gh_provider *p, int64_t now)
{
    struct gh_provider_wait **link = &p->waiters;
    while (*link != NULL) {
        struct gh_provider_wait *w = *link;
        if (w->deadline_ms <= now) {
            *link = w->next;
            w->next = NULL;
            w->notify(w, GH_ERR_UNKNOWN_KID);
        } else {
            link = &w->next;
        }
    }
}

/* ---- fetch lifecycle (manager thread) ---- */

static int64_t backoff_ms(struct gh_oidc_manager *m, int failures)
{
    int64_t delay = m->o.retry_base_ms;
    for (int i = 1; i < failures && delay < m->o.retry_max_ms; i++)
        delay *= 2;
    if (delay > m->o.retry_max_ms)
        delay = m->o.retry_max_ms;
    /* jitter over the upper half, so that gateways restarted together do not retry together */
    return delay / 2 + (int64_t)(rand_r(&m->rand_state) % (unsigned)(delay / 2 + 1));
}

/*
 * After a successful fetch, the kids its waiters asked for that it did not bring are remembered as
 * unknown (SPEC §4), so asking again costs no fetch. Only the kids of waiters that were there
 * before the fetch began: one that joined a fetch already under way (a scheduled refresh sent just
 * before the IdP rotated) may name a key that fetch could not see. Called with p->lock held.
 */
static void remember_unknown(struct gh_provider *p, int64_t now)
{
    struct gh_keyset *ks = gh_provider_keys(p);
    for (struct gh_provider_wait *w = p->waiters; ks != NULL && w != NULL; w = w->next) {
        if (w->epoch < p->begun && !gh_kid_hash_in(ks->jwks, w->kid_hash))
            gh_unknown_kids_add(&p->unknown, p->m->o.unknown_kid_slots, w->kid_hash, now,
                                now + p->m->o.unknown_kid_ttl_ms);
    }
    gh_keyset_unref(ks);
}

static void finish(struct gh_provider *p, int code, const char *error, int64_t next_refresh)
{
    struct gh_oidc_manager *m = p->m;
    int64_t now = now_of(&m->o);

    gh_fetch_clear(&p->fetch);
    free(p->new_issuer);
    free(p->new_jwks_uri);
    free(p->new_discovery);
    free(p->target_jwks_uri);
    p->new_issuer = p->new_jwks_uri = p->new_discovery = p->target_jwks_uri = NULL;
    p->phase = PHASE_IDLE;
    pthread_mutex_lock(&p->lock);
    p->busy = 0;
    p->last_code = code;
    snprintf(p->last_error, sizeof p->last_error, "%s", code == GH_OK ? "" : error);
    if (code != GH_OK)
        p->counters.failures++;
    /* a kid refetch never moves the scheduled refresh later (SPEC §4); a failure may bring its
     * retry earlier */
    if (!p->kid_refetch || next_refresh < p->next_refresh_ms)
        p->next_refresh_ms = next_refresh;
    p->ready = 1;
    p->completions++;
    pthread_cond_broadcast(&p->ready_cond);
    if (code == GH_OK)
        remember_unknown(p, now);
    notify_all(p, code);
    pthread_mutex_unlock(&p->lock);
}

static struct gh_oidc_event_source source_of(const struct gh_provider *p)
{
    return (struct gh_oidc_event_source){p->id, p->url};
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fail(struct gh_provider *p, int code, const char *error)
{
    struct gh_oidc_event_source src = source_of(p);
    int64_t retry = backoff_ms(p->m, ++p->failures_in_row);

    gh_oidc_log_failure(&src, error, p->kid_refetch, p->failures_in_row, retry);
    finish(p, code, error, now_of(&p->m->o) + retry);
}

/* What a GET of `url` for `p` may reach and report (fetch.h): only the provider's own URL may be
 * on this machine unless the provider itself is, and only its own origin's answers are reported. */
static unsigned fetch_flags(const struct gh_provider *p, const char *url)
{
    unsigned flags = 0;
    if (!gh_oidc_same_origin(p->url, url))
        flags |= GH_FETCH_FOREIGN;
    if (strcmp(p->url, url) != 0 && !gh_oidc_url_is_loopback(p->url))
        flags |= GH_FETCH_NO_LOCAL;
    return flags;
}

/* The URL a failure names: the one fetched, unless it is of another origin (fetch.h): then the URL
 * the provider's own configuration or document gave, never a Location another host answered. */
static const char *reported_url(const struct gh_provider *p)
{
    if (!(p->fetch.flags & GH_FETCH_FOREIGN))
        return p->fetch.url;
    return p->phase == PHASE_JWKS && p->target_jwks_uri != NULL ? p->target_jwks_uri : p->url;
}

static void begin_get(struct gh_provider *p, const char *url)
{
    char *copy = strdup(url); /* `url` may be the old fetch's own string */
    int rc = copy != NULL ? GH_OK : GH_ERR_NOMEM;

    gh_fetch_clear(&p->fetch);
    if (rc == GH_OK)
        rc = gh_fetch_start(&p->fetch, copy, &p->m->o, fetch_flags(p, copy), p);
    free(copy);
    if (rc == GH_OK && curl_multi_add_handle(p->m->multi, p->fetch.easy) != CURLM_OK)
        rc = GH_ERR_INTERNAL;
    if (rc != GH_OK) {
        fail(p, rc, gh_error_message(rc));
        return;
    }
    p->fetch_started = monotonic_ms();
    pthread_mutex_lock(&p->lock);
    p->counters.fetches++;
    if (p->phase == PHASE_JWKS)
        p->counters.jwks_fetches++;
    pthread_mutex_unlock(&p->lock);
}

static void begin_refresh(struct gh_provider *p, int kid_refetch)
{
    struct gh_keyset *ks = gh_provider_keys(p);

    p->redirects = 0;
    p->kid_refetch = kid_refetch;
    /* an unknown kid needs only the key set; a scheduled refresh re-reads discovery too */
    if (p->source == GH_PROVIDER_DISCOVERY && (!kid_refetch || ks == NULL)) {
        p->phase = PHASE_DISCOVERY;
        begin_get(p, p->url);
    } else {
        p->phase = PHASE_JWKS;
        if (ks != NULL && ks->issuer != NULL) {
            p->new_issuer = strdup(ks->issuer);
            p->new_discovery = ks->discovery_json ? strdup(ks->discovery_json) : NULL;
        }
        p->target_jwks_uri = strdup(ks != NULL ? ks->jwks_uri : p->url);
        if (p->target_jwks_uri == NULL)
            fail(p, GH_ERR_NOMEM, gh_error_message(GH_ERR_NOMEM));
        else
            begin_get(p, p->target_jwks_uri);
    }
    gh_keyset_unref(ks);
}

/* A failure to persist does not stop serving: the keys are good, only a restart would miss them. */
static void save_persisted(struct gh_provider *p, const struct gh_keyset *ks)
{
    const struct gh_oidc_persistence *store = p->m->o.persistence;
    struct gh_persisted_keys docs = {ks->discovery_json, ks->jwks_json, ks->fetched_at,
                                     ks->expires_at};
    if (store != NULL && store->save != NULL)
        store->save(store->ctx, p->url, &docs);
}

/* New keys: which kids came and went, and the end of a stale spell. */
static void log_published(struct gh_provider *p, const struct gh_keyset *prev,
                          const struct gh_keyset *ks)
{
    struct gh_oidc_event_source src = source_of(p);

    gh_oidc_log_keys(&src, prev, ks);
    if (p->stale_logged)
        gh_oidc_log_freshness(&src, GH_OIDC_FRESH_AGAIN, prev != NULL ? prev->expires_at : 0, NULL);
    p->stale_logged = p->unavailable_logged = 0;
}

static void on_jwks(struct gh_provider *p)
{
    struct gh_oidc_manager *m = p->m;
    int64_t now = now_of(&m->o);
    int64_t ttl = gh_oidc_ttl(p->fetch.cache_control[0] ? p->fetch.cache_control : NULL,
                              p->fetch.expires[0] ? p->fetch.expires : NULL,
                              p->fetch.date[0] ? p->fetch.date : NULL, now / 1000) *
                  1000;
    struct gh_keyset *prev = gh_provider_keys(p), *ks;
    char error[512], name[512], *jwks = p->fetch.body;
    int rc;

    snprintf(name, sizeof name, "%s", reported_url(p)); /* target_jwks_uri is handed over below */
    p->fetch.body = NULL;
    rc = gh_keyset_build(p->new_issuer, p->target_jwks_uri, p->new_discovery, jwks, now, now + ttl,
                         prev, &ks, error, sizeof error);
    p->new_issuer = p->new_discovery = p->target_jwks_uri = NULL;
    if (rc != GH_OK) {
        char message[sizeof name + sizeof error + 2];
        gh_keyset_unref(prev);
        snprintf(message, sizeof message, "%s: %s", name, error);
        fail(p, rc, message);
        return;
    }
    save_persisted(p, ks);
    log_published(p, prev, ks);
    gh_snapshot_publish(&p->slot, &ks->snap);
    gh_keyset_unref(prev);
    p->failures_in_row = 0;
    /* refresh in the background before the keys run out */
    finish(p, GH_OK, "", now + ttl * 3 / 4);
}

static void on_discovery(struct gh_provider *p)
{
    char error[512];
    int rc = gh_discovery_parse(p->fetch.body, p->fetch.len, p->expected_issuer, &p->new_issuer,
                                &p->new_jwks_uri, error, sizeof error);
    if (rc == GH_OK &&
        (rc = gh_oidc_url_check_from(p->url, p->new_jwks_uri, p->m->o.allow_insecure)) != GH_OK)
        snprintf(error, sizeof error, "jwks_uri %s: %s", p->new_jwks_uri, gh_error_message(rc));
    if (rc != GH_OK && (p->fetch.flags & GH_FETCH_FOREIGN)) /* redirected elsewhere: not ours */
        snprintf(error, sizeof error, "%s", gh_error_message(rc));
    if (rc != GH_OK) {
        char message[700];
        snprintf(message, sizeof message, "%s: %s", p->url, error);
        fail(p, rc, message);
        return;
    }
    p->new_discovery = p->fetch.body;
    p->fetch.body = NULL;
    p->phase = PHASE_JWKS;
    p->redirects = 0;
    p->target_jwks_uri = p->new_jwks_uri;
    p->new_jwks_uri = NULL;
    begin_get(p, p->target_jwks_uri);
}

static void on_done(struct gh_provider *p, CURLcode code)
{
    int rc;

    curl_multi_remove_handle(p->m->multi, p->fetch.easy);
    rc = gh_fetch_result(&p->fetch, code);
    struct gh_oidc_event_source src = source_of(p);
    gh_oidc_log_fetch(&src, p->fetch.url, p->fetch.status, p->fetch.len,
                      monotonic_ms() - p->fetch_started, rc);
    if (rc == 1) { /* follow the redirect ourselves, so the URL rules apply to every hop */
        char message[700];
        if (++p->redirects > p->m->o.max_redirects) {
            snprintf(message, sizeof message, "GET %s: %s", reported_url(p),
                     gh_error_message(GH_ERR_FETCH_REDIRECTS));
            fail(p, GH_ERR_FETCH_REDIRECTS, message);
        } else if ((rc = gh_oidc_url_check_from(p->url, p->fetch.redirect,
                                                p->m->o.allow_insecure)) != GH_OK) {
            /* another host's Location is its answer, not reported (fetch.h) */
            snprintf(message, sizeof message, "GET %s: redirected to %s: %s", reported_url(p),
                     (p->fetch.flags & GH_FETCH_FOREIGN) ? "a URL not allowed" : p->fetch.redirect,
                     gh_error_message(rc));
            fail(p, rc, message);
        } else {
            begin_get(p, p->fetch.redirect);
        }
        return;
    }
    if (rc != GH_OK) {
        char message[sizeof p->fetch.error];
        if (p->fetch.flags & GH_FETCH_FOREIGN)
            snprintf(message, sizeof message, "GET %s: %s", reported_url(p), gh_error_message(rc));
        else
            memcpy(message, p->fetch.error, sizeof message);
        fail(p, rc, message);
        return;
    }
    if (p->phase == PHASE_DISCOVERY)
        on_discovery(p);
    else
        on_jwks(p);
}

/* At first sight of a provider: serve what the store kept, then fetch at once. */
static void load_persisted(struct gh_provider *p)
{
    const struct gh_oidc_persistence *store = p->m->o.persistence;
    struct gh_persisted_keys docs = {0};
    struct gh_keyset *ks;
    char error[512];

    p->loaded = 1;
    if (store == NULL || store->load == NULL || store->load(store->ctx, p->url, &docs) != GH_OK)
        return;
    char *issuer = NULL, *jwks_uri = NULL;
    if (p->source == GH_PROVIDER_DISCOVERY &&
        (docs.discovery == NULL ||
         gh_discovery_parse(docs.discovery, strlen(docs.discovery), p->expected_issuer, &issuer,
                            &jwks_uri, error, sizeof error) != GH_OK)) {
        free(docs.discovery);
        free(docs.jwks);
        return;
    }
    if (jwks_uri == NULL)
        jwks_uri = strdup(p->url);
    if (docs.jwks != NULL &&
        gh_keyset_build(issuer, jwks_uri, docs.discovery, docs.jwks, docs.fetched_at,
                        docs.expires_at, NULL, &ks, error, sizeof error) == GH_OK)
        gh_snapshot_publish(&p->slot, &ks->snap);
    else if (docs.jwks == NULL) {
        free(issuer);
        free(jwks_uri);
        free(docs.discovery);
    }
}

/* ---- the loop ---- */

/*
 * Logs the moments the current keys go stale and then unavailable (once each) and returns the
 * next such moment still to come, so the loop wakes for it: a due time that something acts on.
 */
static int64_t watch_freshness(struct gh_provider *p, int64_t now, const char *last_error)
{
    struct gh_keyset *ks = gh_provider_keys(p);
    struct gh_oidc_event_source src = source_of(p);
    int64_t next = INT64_MAX;

    if (ks == NULL)
        return next;
    int64_t stale_at = ks->expires_at, unavailable_at = ks->expires_at + p->m->o.max_stale_ms;
    if (!p->stale_logged && now > stale_at) {
        gh_oidc_log_freshness(&src, GH_OIDC_STALE, ks->expires_at, last_error);
        p->stale_logged = 1;
    }
    if (!p->unavailable_logged && now > unavailable_at) {
        gh_oidc_log_freshness(&src, GH_OIDC_UNAVAILABLE, ks->expires_at, last_error);
        p->unavailable_logged = 1;
    }
    if (!p->stale_logged)
        next = stale_at + 1;
    else if (!p->unavailable_logged)
        next = unavailable_at + 1;
    gh_keyset_unref(ks);
    return next;
}

/*
 * Starts what is due and returns when this provider next needs the thread. Only a time at which
 * something will happen may be returned: a past time that nothing acts on makes the loop poll with
 * a zero timeout forever (a retired provider's passed refresh time did exactly that).
 */
static int64_t service_provider(struct gh_provider *p, int64_t now)
{
    int start = 0, kid = 0;
    int64_t next;

    if (p->refused)
        return INT64_MAX; /* nothing will ever be due: its waiters were refused at once */
    if (!p->loaded)
        load_persisted(p);
    pthread_mutex_lock(&p->lock);
    /* a retired provider is fetched only when asked to; its schedule means nothing until then */
    int scheduled = !atomic_load(&p->retired);
    if (!p->busy && (p->refresh_requested || p->refetch_requested ||
                     (scheduled && now >= p->next_refresh_ms))) {
        kid = p->refetch_requested && !p->refresh_requested && now < p->next_refresh_ms;
        p->busy = start = 1;
        p->begun++;
        p->refresh_requested = p->refetch_requested = 0;
        if (kid)
            p->counters.refetches++;
    }
    notify_expired(p, now); /* so every waiter left has its deadline in the future */
    next = p->busy || !scheduled ? INT64_MAX : p->next_refresh_ms;
    for (struct gh_provider_wait *w = p->waiters; w != NULL; w = w->next)
        next = w->deadline_ms < next ? w->deadline_ms : next;
    char last_error[sizeof p->last_error];
    memcpy(last_error, p->last_error, sizeof last_error);
    int idle = !p->busy; /* a fetch under way may freshen the keys: its end wakes the loop anyway */
    pthread_mutex_unlock(&p->lock);
    if (scheduled && idle) {
        int64_t due = watch_freshness(p, now, last_error);
        next = due < next ? due : next;
    }
    if (start)
        begin_refresh(p, kid);
    return next;
}

static void *manager_main(void *arg)
{
    struct gh_oidc_manager *m = arg;

    while (!atomic_load(&m->stopping)) {
        int64_t now = now_of(&m->o), next = now + 1000;
        int running, queued;
        CURLMsg *msg;

        for (size_t i = 0;; i++) { /* providers are only ever appended; the array may move */
            pthread_mutex_lock(&m->lock);
            struct gh_provider *p = i < m->count ? m->providers[i] : NULL;
            pthread_mutex_unlock(&m->lock);
            if (p == NULL)
                break;
            int64_t due = service_provider(p, now);
            next = due < next ? due : next;
        }
        curl_multi_perform(m->multi, &running);
        while ((msg = curl_multi_info_read(m->multi, &queued)) != NULL) {
            struct gh_provider *p = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p);
            on_done(p, msg->data.result);
            next = now; /* a finished fetch may have started another: go round again */
        }
        atomic_fetch_add_explicit(&m->wakeups, 1, memory_order_relaxed);
        int64_t wait = next - now_of(&m->o);
        wait = wait < 0 ? 0 : wait > 1000 ? 1000 : wait;
        curl_multi_poll(m->multi, NULL, 0, (int)wait, NULL);
    }
    return NULL;
}

/* ---- public interface ---- */

int gh_oidc_manager_new(const struct gh_oidc_options *options, struct gh_oidc_manager **out)
{
    struct gh_oidc_manager *m = calloc(1, sizeof *m);

    *out = NULL;
    if (m == NULL)
        return GH_ERR_NOMEM;
    pthread_once(&curl_once, init_curl);
    m->o = *options;
    m->rand_state = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)m;
    pthread_mutex_init(&m->lock, NULL);
    atomic_init(&m->stopping, 0);
    m->multi = curl_multi_init();
    if (m->multi == NULL || pthread_create(&m->thread, NULL, manager_main, m) != 0) {
        if (m->multi != NULL)
            curl_multi_cleanup(m->multi);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return GH_ERR_INTERNAL;
    }
    *out = m;
    return GH_OK;
}

static void provider_free(struct gh_provider *p)
{
    if (p->fetch.easy != NULL)
        curl_multi_remove_handle(p->m->multi, p->fetch.easy);
    gh_fetch_clear(&p->fetch);
    free(p->new_issuer);
    free(p->new_jwks_uri);
    free(p->new_discovery);
    free(p->target_jwks_uri);
    pthread_mutex_lock(&p->lock);
    notify_all(p, GH_ERR_STOPPED);
    p->ready = 1;
    pthread_cond_broadcast(&p->ready_cond);
    pthread_mutex_unlock(&p->lock);
    gh_snapshot_slot_clear(&p->slot);
    gh_unknown_kids_clear(&p->unknown);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->ready_cond);
    free(p->url);
    free(p);
}

void gh_oidc_manager_free(struct gh_oidc_manager *m)
{
    if (m == NULL)
        return;
    atomic_store(&m->stopping, 1);
    curl_multi_wakeup(m->multi);
    pthread_join(m->thread, NULL);
    for (size_t i = 0; i < m->count; i++)
        provider_free(m->providers[i]);
    free(m->providers);
    curl_multi_cleanup(m->multi);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void gh_oidc_manager_wake(struct gh_oidc_manager *m)
{
    curl_multi_wakeup(m->multi);
}

void gh_oidc_manager_counters(struct gh_oidc_manager *m, struct gh_oidc_manager_counters *out)
{
    out->wakeups = atomic_load_explicit(&m->wakeups, memory_order_relaxed);
}

/* "prv_" + 16 base62 characters of the SHA-256 of the URL: stable across restarts. */
static void make_id(const char *url, char *id)
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char hash[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *)url, strlen(url), hash);
    memcpy(id, "prv_", 4);
    for (int i = 0; i < 16; i++)
        id[4 + i] = digits[hash[i] % 62];
    id[20] = '\0';
}

/* Why a refused provider never fetches, in its last_error: the rule and how to satisfy it. */
static void explain_refusal(struct gh_provider *p)
{
    const char *what = p->source == GH_PROVIDER_DISCOVERY ? "discovery URL" : "JWKS URI";
    if (p->refused == GH_ERR_URL_INSECURE)
        snprintf(p->last_error, sizeof p->last_error,
                 "%s refused: plain http to a non-loopback host; use https or "
                 "--allow-insecure-idp",
                 what);
    else
        snprintf(p->last_error, sizeof p->last_error, "%s refused: %s", what,
                 gh_error_message(p->refused));
    p->last_code = p->refused;
    p->ready = 1; /* its first (and only) outcome is known now */
}

static struct gh_provider *provider_new(struct gh_oidc_manager *m, enum gh_provider_source source,
                                        const char *url, const char *issuer, int refused)
{
    struct gh_provider *p = calloc(1, sizeof *p);
    if (p == NULL || (p->url = strdup(url)) == NULL) {
        free(p);
        return NULL;
    }
    p->m = m;
    p->source = source;
    snprintf(p->expected_issuer, sizeof p->expected_issuer, "%s", issuer);
    make_id(url, p->id);
    gh_snapshot_slot_init(&p->slot);
    atomic_init(&p->retired, 0);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->ready_cond, NULL);
    p->refused = refused;
    if (refused != GH_OK)
        explain_refusal(p);
    return p;
}

int gh_oidc_provider_get(struct gh_oidc_manager *m, enum gh_provider_source source, const char *url,
                         struct gh_provider **out)
{
    char issuer[2048] = "";
    struct gh_provider *p = NULL;
    int rc;

    *out = NULL;
    /* a URL that may not be fetched still gets its provider (SPEC §1: one per URL in use), so
     * that the operator sees it and why its tokens get keys_unavailable */
    rc = gh_oidc_url_check(url, m->o.allow_insecure);
    if (rc == GH_OK && source == GH_PROVIDER_DISCOVERY)
        rc = gh_oidc_expected_issuer(url, issuer, sizeof issuer);
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->count && p == NULL; i++) {
        if (m->providers[i]->source == source && strcmp(m->providers[i]->url, url) == 0)
            p = m->providers[i];
    }
    if (p == NULL) {
        if (m->count == m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 8;
            struct gh_provider **grown = realloc(m->providers, cap * sizeof *grown);
            if (grown != NULL) {
                m->providers = grown;
                m->cap = cap;
            }
        }
        if (m->count < m->cap && (p = provider_new(m, source, url, issuer, rc)) != NULL)
            m->providers[m->count++] = p;
    }
    pthread_mutex_unlock(&m->lock);
    if (p == NULL)
        return GH_ERR_NOMEM;
    if (atomic_exchange(&p->retired, 0)) { /* used again: its keys may be old, fetch at once */
        pthread_mutex_lock(&p->lock);
        p->refresh_requested = 1;
        pthread_mutex_unlock(&p->lock);
    }
    curl_multi_wakeup(m->multi);
    *out = p;
    return rc;
}

struct gh_provider **gh_oidc_providers(struct gh_oidc_manager *m, size_t *count)
{
    struct gh_provider **list;

    pthread_mutex_lock(&m->lock);
    list = malloc((m->count ? m->count : 1) * sizeof *list);
    *count = 0;
    for (size_t i = 0; list != NULL && i < m->count; i++) {
        if (!atomic_load(&m->providers[i]->retired))
            list[(*count)++] = m->providers[i];
    }
    pthread_mutex_unlock(&m->lock);
    return list;
}

void gh_oidc_retain(struct gh_oidc_manager *m, struct gh_provider *const *keep, size_t n)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->count; i++) {
        int used = 0;
        for (size_t k = 0; k < n && !used; k++)
            used = keep[k] == m->providers[i];
        if (!used)
            atomic_store(&m->providers[i]->retired, 1);
    }
    pthread_mutex_unlock(&m->lock);
}

const char *gh_provider_id(const struct gh_provider *p)
{
    return p->id;
}

const char *gh_provider_url(const struct gh_provider *p)
{
    return p->url;
}

struct gh_keyset *gh_provider_keys(struct gh_provider *p)
{
    return (struct gh_keyset *)gh_snapshot_acquire(&p->slot);
}

int gh_provider_usable(const struct gh_provider *p, const struct gh_keyset *ks, int64_t now_ms)
{
    if (ks == NULL || now_ms > ks->expires_at + p->m->o.max_stale_ms)
        return GH_ERR_KEYS_UNAVAILABLE;
    return GH_OK;
}

/* What an unknown kid gets now (SPEC §4). Called with p->lock held. */
static enum gh_kid_verdict kid_verdict(struct gh_provider *p, const struct gh_keyset *ks,
                                       const unsigned char *hash, int64_t now)
{
    const void *current = atomic_load(&p->slot.current);

    if (p->refused)
        return GH_KID_NO_FETCH;
    if (current != NULL && ks != NULL && current != (const void *)ks)
        return GH_KID_NEWER_KEYS; /* keys changed since the caller looked */
    if (gh_unknown_kids_has(&p->unknown, hash, now))
        return GH_KID_REMEMBERED;
    if (p->busy || p->refetch_requested || p->refresh_requested)
        return GH_KID_JOIN; /* single-flight: a fetch is coming anyway, and costs nothing more */
    return gh_refetch_budget_check(&p->budget, &p->m->o, now);
}

enum gh_kid_verdict gh_provider_kid_outlook(struct gh_provider *p, const struct gh_keyset *ks,
                                            const char *kid, size_t len)
{
    unsigned char hash[GH_KID_HASH_LEN];
    int64_t now = now_of(&p->m->o);
    enum gh_kid_verdict v;

    gh_kid_hash(kid, len, hash);
    pthread_mutex_lock(&p->lock);
    v = kid_verdict(p, ks, hash, now);
    pthread_mutex_unlock(&p->lock);
    return v;
}

int gh_provider_request_refetch(struct gh_provider *p, const struct gh_keyset *ks, const char *kid,
                                size_t len, struct gh_provider_wait *w, enum gh_kid_verdict *why)
{
    int64_t now = now_of(&p->m->o);
    enum gh_kid_verdict v;
    int rc = 1;

    gh_kid_hash(kid, len, w->kid_hash);
    pthread_mutex_lock(&p->lock);
    v = kid_verdict(p, ks, w->kid_hash, now);
    if (v == GH_KID_REFETCH) {
        gh_refetch_budget_spend(&p->budget, &p->m->o, now);
        p->refetch_requested = 1;
    }
    if (v == GH_KID_REFETCH || v == GH_KID_JOIN) {
        w->deadline_ms = now + p->m->o.wait_limit_ms;
        w->epoch = p->begun;
        w->next = p->waiters;
        p->waiters = w;
    } else if (v == GH_KID_NEWER_KEYS) {
        rc = GH_OK;
    } else {
        rc = v == GH_KID_NO_FETCH ? GH_ERR_KEYS_UNAVAILABLE : GH_ERR_UNKNOWN_KID;
        p->counters.kid_refusals++;
    }
    pthread_mutex_unlock(&p->lock);
    if (why != NULL)
        *why = v;
    if (rc == 1)
        curl_multi_wakeup(p->m->multi);
    return rc;
}

int gh_provider_cancel_wait(struct gh_provider *p, struct gh_provider_wait *w)
{
    int found = 0;

    pthread_mutex_lock(&p->lock);
    for (struct gh_provider_wait **link = &p->waiters; *link != NULL; link = &(*link)->next) {
        if (*link == w) {
            *link = w->next;
            w->next = NULL;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return found;
}

void gh_provider_refresh(struct gh_provider *p)
{
    pthread_mutex_lock(&p->lock);
    p->refresh_requested = 1;
    pthread_mutex_unlock(&p->lock);
    curl_multi_wakeup(p->m->multi);
}

static void deadline_in(struct timespec *until, int64_t timeout_ms)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_sec += timeout_ms / 1000;
    until->tv_nsec += (timeout_ms % 1000) * 1000000;
    if (until->tv_nsec >= 1000000000) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000;
    }
}

int gh_provider_wait_ready(struct gh_provider *p, int64_t timeout_ms)
{
    struct timespec until;
    int rc = 0;

    deadline_in(&until, timeout_ms);
    pthread_mutex_lock(&p->lock);
    while (!p->ready && rc == 0)
        rc = pthread_cond_timedwait(&p->ready_cond, &p->lock, &until);
    int ready = p->ready, code = p->last_code;
    pthread_mutex_unlock(&p->lock);
    if (!ready)
        return GH_ERR_FETCH_TIMEOUT;
    if (atomic_load(&p->slot.current) != NULL)
        return GH_OK;
    return code != GH_OK ? code : GH_ERR_KEYS_UNAVAILABLE;
}

int gh_provider_check_now(struct gh_provider *p, int64_t timeout_ms)
{
    struct timespec until;
    int rc = 0;

    if (p->refused)
        return p->refused; /* it never fetches: waiting would only time out */
    deadline_in(&until, timeout_ms);
    pthread_mutex_lock(&p->lock);
    /* a fetch already in flight may have started before the caller's change: wait for a new one */
    uint64_t target = p->completions + (p->busy ? 2 : 1);
    p->refresh_requested = 1;
    pthread_mutex_unlock(&p->lock);
    curl_multi_wakeup(p->m->multi);
    pthread_mutex_lock(&p->lock);
    while (p->completions < target && rc == 0)
        rc = pthread_cond_timedwait(&p->ready_cond, &p->lock, &until);
    int done = p->completions >= target, code = p->last_code;
    pthread_mutex_unlock(&p->lock);
    return !done ? GH_ERR_FETCH_TIMEOUT : code;
}

void gh_provider_counters(struct gh_provider *p, struct gh_provider_counters *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->counters;
    out->unknown_kid_evictions = p->unknown.evictions;
    pthread_mutex_unlock(&p->lock);
}

static json_t *time_json(int64_t ms)
{
    char buf[32];
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || ms == INT64_MAX || gmtime_r(&secs, &tm) == NULL)
        return json_null();
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *keys_json(const struct gh_keyset *ks)
{
    json_t *list = json_array();
    for (size_t i = 0; ks != NULL && i < ks->jwks->count; i++) {
        const struct gh_jwk *k = &ks->jwks->keys[i];
        json_t *key = json_pack(
            "{s:s?, s:s, s:s?, s:s?, s:b}", "kid", k->kid, "kty", gh_kty_name(k->kty), "alg",
            k->alg != GH_ALG_UNKNOWN ? gh_alg_name(k->alg) : NULL, "crv",
            k->crv != GH_CRV_NONE ? gh_crv_name(k->crv) : NULL, "usable", k->status == GH_OK);
        if (k->status != GH_OK)
            json_object_set_new(key, "reason", json_string(gh_error_message(k->status)));
        json_array_append_new(list, key);
    }
    return list;
}

json_t *gh_provider_status(struct gh_provider *p)
{
    struct gh_keyset *ks = gh_provider_keys(p);
    int64_t now = now_of(&p->m->o);
    json_t *status;

    pthread_mutex_lock(&p->lock);
    status = json_pack(
        "{s:s, s:s, s:s, s:s?, s:s?, s:o, s:o, s:o, s:s?, s:b, s:b, s:I, s:I}", "id", p->id,
        "source", p->source == GH_PROVIDER_DISCOVERY ? "discovery_url" : "jwks_uri", "url", p->url,
        "issuer", ks != NULL ? ks->issuer : NULL, "jwks_uri", ks != NULL ? ks->jwks_uri : NULL,
        "keys", keys_json(ks), "fetched_at", time_json(ks != NULL ? ks->fetched_at : 0),
        "next_refresh_at", time_json(p->busy ? now : p->next_refresh_ms), "last_error",
        p->last_error[0] ? p->last_error : NULL, "stale", ks == NULL || now > ks->expires_at,
        "available", gh_provider_usable(p, ks, now) == GH_OK, "fetches",
        (json_int_t)p->counters.fetches, "failures", (json_int_t)p->counters.failures);
    pthread_mutex_unlock(&p->lock);
    gh_keyset_unref(ks);
    return status;
}
