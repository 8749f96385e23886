// SPDX-License-Identifier: Apache-2.0
/*
 * The store's rules around the backend: every write is one transaction that validates the input,
 * checks references and the collection path rule, writes, audits and bumps the generation, or
 * changes nothing. The profile hook (an IdP fetch, seconds long) runs before the lock is taken, so
 * the provider thread can keep saving its cache through the same store meanwhile.
 */
#define _GNU_SOURCE /* strptime */
#include "store/store.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "common/log.h"
#include "store/backend.h"
#include "store/model.h"
#include "store/plan.h"
#include "store/validate.h"

struct gh_store {
    struct gh_store_backend b;
    pthread_mutex_t lock;
    uint64_t generation;
    struct gh_oidc_persistence persistence;
    /* PostgreSQL's connection string, for the watcher (watch.c); holds the password: wiped at
     * close. NULL for SQLite. */
    char *conninfo;
};

static const char *const plurals[GH_KIND_COUNT] = {"collections", "endpoints", "clients",
                                                   "profiles",    "policies",  "keys"};

const char *gh_kind_singular(enum gh_kind kind)
{
    static const char *const singulars[GH_KIND_COUNT] = {"collection", "endpoint", "client",
                                                         "profile",    "policy",   "key"};
    return kind >= 0 && kind < GH_KIND_COUNT ? singulars[kind] : "object";
}

const char *gh_kind_plural(enum gh_kind kind)
{
    return kind >= 0 && kind < GH_KIND_COUNT ? plurals[kind] : "objects";
}

static void now_rfc3339(char *buf, size_t cap)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cache_load(void *ctx, const char *url, struct gh_persisted_keys *out)
{
    struct gh_store *s = ctx;
    pthread_mutex_lock(&s->lock);
    int rc = s->b.cache_load(s->b.db, url, out);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int cache_save(void *ctx, const char *url, const struct gh_persisted_keys *keys)
{
    struct gh_store *s = ctx;
    pthread_mutex_lock(&s->lock);
    int rc = s->b.cache_save(s->b.db, url, keys);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* The libpq connection string of a PostgreSQL store URL, or NULL when `url` names none: a
 * postgres:// or postgresql:// URL goes to libpq as it is, "postgres:" followed by a key=value
 * string as that string ("postgres:" alone: libpq takes everything from the PG* variables). */
static const char *postgres_conninfo(const char *url)
{
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return url;
    if (strncmp(url, "postgres:", 9) == 0)
        return url + 9;
    return NULL;
}

/* How many bytes of a refused URL a message may repeat: a mistyped URL with a user@ part or a
 * key=value string may carry a password, so only its scheme then. */
static int shown_length(const char *url)
{
    size_t len = strlen(url);
    const char *colon = strchr(url, ':');
    if (strcspn(url, "@=") < len)
        len = colon != NULL ? (size_t)(colon - url) + 1 : 0;
    return len < 100 ? (int)len : 100;
}

int gh_store_check_url(const char *url, char *error, size_t cap)
{
    const char *conninfo = postgres_conninfo(url);

    if (conninfo != NULL)
        return gh_pg_conninfo_check(conninfo, error, cap);
    if (strncmp(url, "sqlite:", 7) != 0 || url[7] == '\0') {
        snprintf(error, cap,
                 "the store URL must be sqlite:PATH (or sqlite::memory:), "
                 "postgres://USER:PASSWORD@HOST:PORT/DBNAME, or postgres:KEY=VALUE... (libpq's "
                 "form; postgres: alone takes the PG* environment variables), not \"%.*s%s\"",
                 shown_length(url), url, (size_t)shown_length(url) < strlen(url) ? "..." : "");
        return GH_ERR_INVALID_ARG;
    }
    return GH_OK;
}

static int open_store(const char *url, int waiting, struct gh_store **out, char *error, size_t cap)
{
    struct gh_store *s;
    const char *conninfo;
    int rc;

    *out = NULL;
    if ((rc = gh_store_check_url(url, error, cap)) != GH_OK)
        return rc;
    if ((s = calloc(1, sizeof *s)) == NULL)
        return GH_ERR_NOMEM;
    conninfo = postgres_conninfo(url);
    rc = conninfo == NULL ? gh_sqlite_backend_open(url + 7, &s->b, error, cap)
         : waiting        ? gh_pg_backend_open_waiting(conninfo, &s->b, error, cap)
                          : gh_pg_backend_open(conninfo, &s->b, error, cap);
    if (rc == GH_OK && s->b.read_generation(s->b.db, &s->generation) != GH_OK) {
        snprintf(error, cap, "cannot read the configuration generation");
        rc = GH_ERR_IO;
    }
    /* waiting for the database: a store all the same, which connects on a later call */
    if (rc != GH_OK && !(waiting && rc == GH_ERR_STORE_UNAVAILABLE && s->b.close != NULL)) {
        if (s->b.close != NULL)
            s->b.close(s->b.db);
        free(s);
        return rc;
    }
    if (conninfo != NULL && (s->conninfo = strdup(conninfo)) == NULL) {
        s->b.close(s->b.db);
        free(s);
        return GH_ERR_NOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->persistence = (struct gh_oidc_persistence){s, cache_load, cache_save};
    *out = s;
    return rc;
}

int gh_store_open(const char *url, struct gh_store **out, char *error, size_t cap)
{
    return open_store(url, 0, out, error, cap);
}

int gh_store_open_waiting(const char *url, struct gh_store **out, char *error, size_t cap)
{
    return open_store(url, 1, out, error, cap);
}

void gh_store_close(struct gh_store *s)
{
    if (s == NULL)
        return;
    s->b.close(s->b.db);
    if (s->conninfo != NULL) {
        OPENSSL_cleanse(s->conninfo, strlen(s->conninfo));
        free(s->conninfo);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const char *gh_store_conninfo(const struct gh_store *s)
{
    return s->conninfo;
}

const char *gh_store_location(const struct gh_store *s)
{
    return s->b.location(s->b.db);
}

uint64_t gh_store_generation(const struct gh_store *s)
{
    return __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE);
}

const struct gh_oidc_persistence *gh_store_persistence(struct gh_store *s)
{
    return &s->persistence;
}

int gh_store_quota_load_all(struct gh_store *s,
                            void (*visit)(void *arg, const char *profile_id, int64_t window,
                                          int64_t count),
                            void *arg)
{
    pthread_mutex_lock(&s->lock);
    int rc = s->b.quota_load_all(s->b.db, visit, arg);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int gh_store_quota_save(struct gh_store *s, const char *profile_id, int64_t window, int64_t count)
{
    pthread_mutex_lock(&s->lock);
    int rc = s->b.quota_save(s->b.db, profile_id, window, count);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int gh_store_ping(struct gh_store *s)
{
    pthread_mutex_lock(&s->lock);
    int ok = s->b.ping(s->b.db);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/*
 * Ends a public call's hold on the store. A call that failed because the database went away (a
 * PostgreSQL server down or restarting) answers 503 store_unavailable whatever step it failed at,
 * saying that nothing was changed: a write's transaction never committed, so that is true, and the
 * caller may simply try again once the store is back.
 */
static void release(struct gh_store *s, int *rc, struct gh_store_error *err)
{
    if (*rc != GH_OK && s->b.connected != NULL && !s->b.connected(s->b.db)) {
        *rc = GH_ERR_STORE_UNAVAILABLE;
        err->status = 503;
        err->code = "store_unavailable";
        err->field[0] = '\0';
        snprintf(err->message, sizeof err->message,
                 "the configuration store (%s) cannot be reached; nothing was changed: try again "
                 "when it is back",
                 s->b.location(s->b.db));
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- checks that need the database (called inside the transaction) ---- */

static int exists(struct gh_store *s, enum gh_kind kind, const char *id)
{
    json_t *doc = NULL;
    if (id == NULL || s->b.fetch(s->b.db, kind, id, &doc) != GH_OK || doc == NULL)
        return 0;
    json_decref(doc);
    return 1;
}

static int check_references(struct gh_store *s, enum gh_kind kind, const json_t *doc,
                            struct gh_store_error *err)
{
    size_t i;
    json_t *item;
    if (kind != GH_KIND_PROFILE)
        return GH_OK;
    const char *client = json_string_value(json_object_get(doc, "client_id"));
    const char *policy = json_string_value(json_object_get(doc, "policy_id"));
    if (!exists(s, GH_KIND_CLIENT, client)) {
        gh_model_error(err, 422, "client_id", "client_id names no client");
        return GH_ERR_INVALID_ARG;
    }
    if (policy != NULL && !exists(s, GH_KIND_POLICY, policy)) {
        gh_model_error(err, 422, "policy_id", "policy_id names no policy");
        return GH_ERR_INVALID_ARG;
    }
    json_array_foreach (json_object_get(doc, "collection_ids"), i, item) {
        if (!exists(s, GH_KIND_COLLECTION, json_string_value(item))) {
            gh_model_error(err, 422, "collection_ids",
                           "collection_ids item %zu names no collection", i);
            return GH_ERR_INVALID_ARG;
        }
    }
    return GH_OK;
}

/* SPEC §1: no collection path may be a prefix by segments of another. */
static int check_path_overlap(struct gh_store *s, const json_t *doc, struct gh_store_error *err)
{
    json_t *all = NULL, *other;
    size_t i;
    const char *path = json_string_value(json_object_get(doc, "path"));
    const char *id = json_string_value(json_object_get(doc, "id"));
    int rc = GH_OK;

    if (s->b.page(s->b.db, GH_KIND_COLLECTION, NULL, NULL, 0, &all) != GH_OK) {
        json_decref(all);
        gh_model_error(err, 500, NULL, "the database failed while reading collections");
        return GH_ERR_IO;
    }
    json_array_foreach (all, i, other) {
        const char *other_path = json_string_value(json_object_get(other, "path"));
        if (strcmp(json_string_value(json_object_get(other, "id")), id) != 0 &&
            gh_paths_overlap(path, other_path)) {
            gh_model_error(err, 409, "path",
                           "path %.255s overlaps the path %.255s of collection %s", path,
                           other_path, json_string_value(json_object_get(other, "id")));
            rc = GH_ERR_INVALID_ARG;
            break;
        }
    }
    json_decref(all);
    return rc;
}

static int check_with_db(struct gh_store *s, enum gh_kind kind, const json_t *doc,
                         struct gh_store_error *err)
{
    if (kind == GH_KIND_COLLECTION)
        return check_path_overlap(s, doc, err);
    return check_references(s, kind, doc, err);
}

/* One JSON line per committed change (issue 10, item 6): what, which and who; never the detail,
 * which may hold what an operator should not find in a log pipeline. */
static void log_change(const char *action, const char *kind, const char *id,
                       const struct gh_write_options *w)
{
    const struct gh_actor *actor = w != NULL ? w->actor : NULL;
    gh_log(GH_LOG_INFO, "admin change",
           json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "action", action, "kind", kind, "id", id,
                     "actor", actor != NULL ? actor->name : NULL, "remote_addr",
                     actor != NULL ? actor->remote_addr : NULL));
}

/* Ends a write transaction: audit, generation, commit, log line; or rollback when `rc` is an
 * error. `kind` is a plural kind name or "config". */
static int finish_write(struct gh_store *s, int rc, const char *action, const char *kind,
                        const char *id, const json_t *detail, const struct gh_write_options *w,
                        struct gh_store_error *err)
{
    const struct gh_actor *actor = w != NULL ? w->actor : NULL;
    uint64_t generation;
    if (rc == GH_OK) {
        char *text = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (s->b.audit(s->b.db, action, kind, id, actor ? actor->remote_addr : NULL,
                       actor ? actor->name : NULL, text) != GH_OK ||
            s->b.bump_generation(s->b.db, &generation) != GH_OK) {
            gh_model_error(err, 500, NULL, "the database failed while recording the change");
            rc = GH_ERR_IO;
        }
        free(text);
    }
    if (rc == GH_OK && (rc = s->b.commit(s->b.db, err)) == GH_OK) {
        __atomic_store_n(&s->generation, generation, __ATOMIC_RELEASE);
        log_change(action, kind, id, w);
    }
    if (rc != GH_OK)
        s->b.rollback(s->b.db);
    return rc;
}

/* A document ordered as the API shows it: id first, then the fields, then the timestamps. */
static json_t *with_identity(const char *id, json_t *fields, const char *created,
                             const char *updated)
{
    json_t *doc = json_pack("{s:s}", "id", id);
    json_object_update(doc, fields);
    json_object_set_new(doc, "created_at", json_string(created));
    json_object_set_new(doc, "updated_at", json_string(updated));
    return doc;
}

/* Inserts a new key for a profile and returns its public document plus "key" (plain text). */
static int insert_key(struct gh_store *s, const char *profile_id, json_t **out,
                      struct gh_store_error *err)
{
    char id[40], plain[64], hash[65], prefix[9], now[32];
    json_t *doc;
    int rc;

    if (gh_model_new_id(GH_KIND_KEY, id) != GH_OK ||
        gh_model_new_key(plain, hash, prefix) != GH_OK) {
        gh_model_error(err, 500, NULL, "the random number generator failed");
        return GH_ERR_INTERNAL;
    }
    now_rfc3339(now, sizeof now);
    doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:n}", "id", id, "profile_id", profile_id, "prefix",
                    prefix, "hash", hash, "created_at", now, "expires_at");
    rc = s->b.insert(s->b.db, GH_KIND_KEY, doc, err);
    if (rc == GH_OK) {
        *out = gh_model_public(GH_KIND_KEY, doc, 0);
        json_object_set_new(*out, "key", json_string(plain));
    }
    OPENSSL_cleanse(plain, sizeof plain);
    json_decref(doc);
    return rc;
}

static int run_hook(enum gh_kind kind, const json_t *before, const json_t *doc,
                    const struct gh_write_options *w, struct gh_store_error *err)
{
    if (kind != GH_KIND_PROFILE || w == NULL || w->check_profile == NULL)
        return GH_OK;
    return w->check_profile(w->check_ctx, before, doc, err);
}

int gh_store_create(struct gh_store *s, enum gh_kind kind, const char *parent_id,
                    const json_t *input, const struct gh_write_options *w, json_t **out,
                    struct gh_store_error *err)
{
    json_t *fields = NULL, *doc = NULL, *key = NULL;
    char id[40], now[32];
    int rc;

    *out = NULL;
    if (kind == GH_KIND_KEY)
        return gh_store_key_rotate(s, parent_id, 0, w, out, err);
    if ((rc = gh_model_merge(kind, NULL, input, &fields, err)) != GH_OK)
        return rc;
    if (kind == GH_KIND_ENDPOINT)
        json_object_set_new(fields, "collection_id",
                            json_string(parent_id != NULL ? parent_id : ""));
    if ((rc = run_hook(kind, NULL, fields, w, err)) != GH_OK) {
        json_decref(fields);
        return rc;
    }
    if (gh_model_new_id(kind, id) != GH_OK) {
        json_decref(fields);
        gh_model_error(err, 500, NULL, "the random number generator failed");
        return GH_ERR_INTERNAL;
    }
    now_rfc3339(now, sizeof now);
    doc = with_identity(id, fields, now, now);
    json_decref(fields);
    pthread_mutex_lock(&s->lock);
    if ((rc = s->b.begin(s->b.db, err)) == GH_OK) {
        if (kind == GH_KIND_ENDPOINT && !exists(s, GH_KIND_COLLECTION, parent_id)) {
            gh_model_error(err, 404, NULL, "no collection has the id %.64s",
                           parent_id ? parent_id : "");
            rc = GH_ERR_INVALID_ARG;
        }
        if (rc == GH_OK && (rc = check_with_db(s, kind, doc, err)) == GH_OK)
            rc = s->b.insert(s->b.db, kind, doc, err);
        if (rc == GH_OK && kind == GH_KIND_PROFILE)
            rc = insert_key(s, id, &key, err);
        json_t *shown = gh_model_public(kind, doc, 0);
        rc = finish_write(s, rc, "create", gh_kind_plural(kind), id, shown, w, err);
        if (rc == GH_OK) {
            *out = shown;
            if (key != NULL)
                json_object_set(*out, "key", json_object_get(key, "key"));
        } else {
            json_decref(shown);
        }
    }
    release(s, &rc, err);
    json_decref(key);
    json_decref(doc);
    return rc;
}

/* The stored document of `id`, or 404 into `err`. Call with the lock held. */
static int load(struct gh_store *s, enum gh_kind kind, const char *id, json_t **doc,
                struct gh_store_error *err)
{
    if (id == NULL) {
        *doc = NULL;
        gh_model_error(err, 404, NULL, "no %.20s was named", gh_kind_plural(kind));
        return GH_ERR_INVALID_ARG;
    }
    if (s->b.fetch(s->b.db, kind, id, doc) != GH_OK) {
        gh_model_error(err, 500, NULL, "the database failed while reading");
        return GH_ERR_IO;
    }
    if (*doc == NULL) {
        gh_model_error(err, 404, NULL, "no %s has the id %.64s", gh_kind_singular(kind), id);
        return GH_ERR_INVALID_ARG;
    }
    return GH_OK;
}

int gh_store_update(struct gh_store *s, enum gh_kind kind, const char *id, const json_t *patch,
                    const struct gh_write_options *w, json_t **out, struct gh_store_error *err)
{
    json_t *base = NULL, *doc = NULL;
    char now[32];
    int rc;

    *out = NULL;
    if (kind == GH_KIND_KEY) {
        gh_model_error(err, 422, NULL, "keys cannot be changed; make a new one instead");
        return GH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&s->lock);
    rc = load(s, kind, id, &base, err);
    release(s, &rc, err);
    if (rc != GH_OK || (rc = gh_model_merge(kind, base, patch, &doc, err)) != GH_OK ||
        (rc = run_hook(kind, base, doc, w, err)) != GH_OK)
        goto out;
    now_rfc3339(now, sizeof now);
    json_object_set_new(doc, "updated_at", json_string(now));
    pthread_mutex_lock(&s->lock);
    if ((rc = s->b.begin(s->b.db, err)) == GH_OK) {
        json_t *current = NULL;
        /* the object may have gone while the hook ran */
        if ((rc = load(s, kind, id, &current, err)) == GH_OK &&
            (rc = check_with_db(s, kind, doc, err)) == GH_OK)
            rc = s->b.replace(s->b.db, kind, doc, err);
        json_decref(current);
        json_t *shown = gh_model_public(kind, doc, 0);
        rc = finish_write(s, rc, "update", gh_kind_plural(kind), id, patch != NULL ? shown : NULL,
                          w, err);
        if (rc == GH_OK)
            *out = shown;
        else
            json_decref(shown);
    }
    release(s, &rc, err);
out:
    json_decref(base);
    json_decref(doc);
    return rc;
}

int gh_store_delete(struct gh_store *s, enum gh_kind kind, const char *id,
                    const struct gh_write_options *w, struct gh_store_error *err)
{
    json_t *doc = NULL;
    char why[256];
    int rc;

    pthread_mutex_lock(&s->lock);
    if ((rc = s->b.begin(s->b.db, err)) == GH_OK) {
        if ((rc = load(s, kind, id, &doc, err)) == GH_OK &&
            s->b.references(s->b.db, kind, id, why, sizeof why) > 0) {
            gh_model_error(err, 409, NULL, "%s cannot be deleted: %s", id, why);
            rc = GH_ERR_INVALID_ARG;
        }
        if (rc == GH_OK)
            rc = s->b.remove(s->b.db, kind, id, err);
        rc = finish_write(s, rc, "delete", gh_kind_plural(kind), id, NULL, w, err);
    }
    release(s, &rc, err);
    json_decref(doc);
    return rc;
}

int gh_store_get(struct gh_store *s, enum gh_kind kind, const char *id, json_t **out,
                 struct gh_store_error *err)
{
    json_t *doc = NULL;
    pthread_mutex_lock(&s->lock);
    int rc = load(s, kind, id, &doc, err);
    release(s, &rc, err);
    *out = rc == GH_OK ? gh_model_public(kind, doc, 0) : NULL;
    json_decref(doc);
    return rc;
}

int gh_store_list(struct gh_store *s, enum gh_kind kind, const char *parent_id, const char *after,
                  int limit, json_t **out, struct gh_store_error *err)
{
    json_t *docs = NULL, *data = json_array(), *doc;
    size_t i;
    int rc;

    *out = NULL;
    if (limit == 0)
        limit = 100;
    if (limit < 1 || limit > 1000) {
        json_decref(data);
        gh_model_error(err, 422, "limit", "limit must be from 1 to 1000");
        return GH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&s->lock);
    rc = s->b.page(s->b.db, kind, parent_id, after, limit + 1, &docs);
    if (rc != GH_OK)
        gh_model_error(err, 500, NULL, "the database failed while listing");
    release(s, &rc, err);
    if (rc != GH_OK) {
        json_decref(docs);
        json_decref(data);
        return rc;
    }
    json_array_foreach (docs, i, doc) {
        if (i < (size_t)limit)
            json_array_append_new(data, gh_model_public(kind, doc, 0));
    }
    json_t *next = json_array_size(docs) > (size_t)limit
                       ? json_incref(json_object_get(json_array_get(data, (size_t)limit - 1), "id"))
                       : json_null();
    *out = json_pack("{s:o, s:o}", "data", data, "next", next);
    json_decref(docs);
    return GH_OK;
}

/* Revokes the profile's other keys at once, or at now + grace. Call inside the transaction. */
static int retire_keys(struct gh_store *s, const char *profile_id, int64_t grace,
                       struct gh_store_error *err)
{
    json_t *keys = NULL, *key;
    size_t i;
    char until[32];
    time_t t = time(NULL) + (time_t)grace;
    struct tm tm;
    int rc = s->b.page(s->b.db, GH_KIND_KEY, profile_id, NULL, 0, &keys);

    char now[32];
    now_rfc3339(now, sizeof now);
    gmtime_r(&t, &tm);
    strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_array_foreach (keys, i, key) {
        if (rc != GH_OK)
            break;
        const char *expires = json_string_value(json_object_get(key, "expires_at"));
        /* keys whose grace is over are gone too: rotations must not pile them up */
        if (grace <= 0 || (expires != NULL && strcmp(expires, now) <= 0)) {
            rc = s->b.remove(s->b.db, GH_KIND_KEY, json_string_value(json_object_get(key, "id")),
                             err);
        } else if (expires == NULL ||
                   strcmp(expires, until) > 0) { /* never extend a shorter grace */
            json_object_set_new(key, "expires_at", json_string(until));
            rc = s->b.replace(s->b.db, GH_KIND_KEY, key, err);
        }
    }
    json_decref(keys);
    return rc;
}

int gh_store_key_rotate(struct gh_store *s, const char *profile_id, int64_t grace_seconds,
                        const struct gh_write_options *w, json_t **out, struct gh_store_error *err)
{
    json_t *profile = NULL, *key = NULL;
    int rc;

    *out = NULL;
    if (grace_seconds < 0 || grace_seconds > 366LL * 86400) {
        gh_model_error(err, 422, "grace_seconds", "grace_seconds must be from 0 to 31622400");
        return GH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&s->lock);
    if ((rc = s->b.begin(s->b.db, err)) == GH_OK) {
        if ((rc = load(s, GH_KIND_PROFILE, profile_id, &profile, err)) == GH_OK &&
            (rc = retire_keys(s, profile_id, grace_seconds, err)) == GH_OK)
            rc = insert_key(s, profile_id, &key, err);
        json_t *detail = json_pack("{s:s?, s:I}", "prefix",
                                   key ? json_string_value(json_object_get(key, "prefix")) : NULL,
                                   "grace_seconds", (json_int_t)grace_seconds);
        rc = finish_write(s, rc, "rotate", "keys",
                          key ? json_string_value(json_object_get(key, "id")) : NULL, detail, w,
                          err);
        json_decref(detail);
    }
    release(s, &rc, err);
    json_decref(profile);
    if (rc == GH_OK)
        *out = key;
    else
        json_decref(key);
    return rc;
}

/* ---- the whole configuration ---- */

static const enum gh_kind document_order[] = {GH_KIND_POLICY,   GH_KIND_CLIENT,  GH_KIND_COLLECTION,
                                              GH_KIND_ENDPOINT, GH_KIND_PROFILE, GH_KIND_KEY};

/* Call with the lock held. */
static int dump(struct gh_store *s, int secrets, json_t **out, struct gh_store_error *err)
{
    json_t *doc = json_object();
    for (size_t k = 0; k < sizeof document_order / sizeof document_order[0]; k++) {
        enum gh_kind kind = document_order[k];
        json_t *all = NULL, *list = json_array(), *item;
        size_t i;
        if (s->b.page(s->b.db, kind, NULL, NULL, 0, &all) != GH_OK) {
            json_decref(all);
            json_decref(list);
            json_decref(doc);
            gh_model_error(err, 500, NULL, "the database failed while exporting");
            return GH_ERR_IO;
        }
        json_array_foreach (all, i, item)
            json_array_append_new(list, gh_model_public(kind, item, secrets));
        json_object_set_new(doc, gh_kind_plural(kind), list);
        json_decref(all);
    }
    *out = doc;
    return GH_OK;
}

/* The whole configuration and the generation it belongs to, read in one read transaction, so that
 * a change committed meanwhile (by this node or another sharing the database) is wholly in it or
 * wholly out of it. Call with the lock held. */
static int dump_consistent(struct gh_store *s, int secrets, json_t **out,
                           struct gh_store_error *err)
{
    uint64_t generation = 0;
    int rc;

    *out = NULL;
    if ((rc = s->b.begin_read(s->b.db, err)) != GH_OK)
        return rc;
    if (s->b.read_generation(s->b.db, &generation) != GH_OK) {
        gh_model_error(err, 500, NULL, "cannot read the configuration generation");
        rc = GH_ERR_IO;
    } else
        rc = dump(s, secrets, out, err);
    s->b.end_read(s->b.db);
    if (rc != GH_OK)
        return rc;
    json_object_set_new(*out, "generation", json_integer((json_int_t)generation));
    /* another node's writes move the generation too: never let this node's count fall behind */
    if (generation > gh_store_generation(s))
        __atomic_store_n(&s->generation, generation, __ATOMIC_RELEASE);
    return GH_OK;
}

int gh_store_export(struct gh_store *s, int secrets, json_t **out, struct gh_store_error *err)
{
    pthread_mutex_lock(&s->lock);
    int rc = dump_consistent(s, secrets, out, err);
    release(s, &rc, err);
    return rc;
}

int gh_store_load_all(struct gh_store *s, json_t **out, struct gh_store_error *err)
{
    pthread_mutex_lock(&s->lock);
    int rc = dump_consistent(s, 1, out, err);
    release(s, &rc, err);
    return rc;
}

/* 1 when `text` is an RFC 3339 UTC time as gatehouse writes them. */
static int is_time(const char *text)
{
    struct tm tm;
    const char *end = text != NULL ? strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
    return end != NULL && *end == '\0';
}

static int created_is_valid(const json_t *item, struct gh_store_error *err)
{
    const json_t *created = json_object_get(item, "created_at");
    if (created == NULL || is_time(json_string_value(created)))
        return 1;
    gh_model_error(err, 422, "created_at", "%.64s: created_at must be an RFC 3339 UTC time",
                   json_string_value(json_object_get(item, "id"))
                       ? json_string_value(json_object_get(item, "id"))
                       : "object");
    return 0;
}

/* One imported object: same id, validated like a create; secrets missing from an export without
 * them are carried over from the object being replaced. */
static int import_object(struct gh_store *s, enum gh_kind kind, const json_t *item,
                         const json_t *previous, struct gh_store_error *err)
{
    const char *id = json_string_value(json_object_get(item, "id"));
    json_t *input, *fields = NULL, *doc;
    int rc;

    if (!json_is_object(item) || id == NULL || !gh_model_id_valid(kind, id)) {
        gh_model_error(err, 422, gh_kind_plural(kind),
                       "every item of %s needs an id of the form %s_...", gh_kind_plural(kind),
                       gh_model_id_prefix(kind));
        return GH_ERR_INVALID_ARG;
    }
    if (!created_is_valid(item, err))
        return GH_ERR_INVALID_ARG;
    input = json_deep_copy(item);
    const char *created = json_string_value(json_object_get(item, "created_at"));
    char now[32];
    now_rfc3339(now, sizeof now);
    json_object_del(input, "id");
    json_object_del(input, "created_at");
    json_object_del(input, "updated_at");
    json_t *collection = json_incref(json_object_get(input, "collection_id"));
    json_object_del(input, "collection_id");
    if (kind == GH_KIND_PROFILE && json_object_get(input, "jwt_key") == NULL && previous != NULL &&
        json_is_string(json_object_get(previous, "jwt_key")))
        json_object_set(input, "jwt_key", json_object_get(previous, "jwt_key"));
    rc = gh_model_merge(kind, NULL, input, &fields, err);
    json_decref(input);
    if (rc == GH_OK) {
        if (kind == GH_KIND_ENDPOINT)
            json_object_set(fields, "collection_id", collection);
        /* an apply that leaves an object as it was leaves its updated_at too */
        json_t *unchanged = previous != NULL ? json_deep_copy(previous) : NULL;
        if (unchanged != NULL) {
            json_object_del(unchanged, "id");
            json_object_del(unchanged, "created_at");
            json_object_del(unchanged, "updated_at");
        }
        const char *updated = unchanged != NULL && json_equal(unchanged, fields)
                                  ? json_string_value(json_object_get(previous, "updated_at"))
                                  : NULL;
        doc = with_identity(id, fields, created != NULL ? created : now,
                            updated != NULL ? updated : now);
        json_decref(unchanged);
        if (kind == GH_KIND_ENDPOINT &&
            !exists(s, GH_KIND_COLLECTION, json_string_value(collection))) {
            gh_model_error(err, 422, "endpoints", "endpoint %s names no collection of the document",
                           id);
            rc = GH_ERR_INVALID_ARG;
        }
        if (rc == GH_OK && (rc = check_with_db(s, kind, doc, err)) == GH_OK)
            rc = s->b.insert(s->b.db, kind, doc, err);
        json_decref(doc);
    }
    json_decref(fields);
    json_decref(collection);
    return rc;
}

/* A key of the document. An export without secrets has no hash: the key keeps the hash stored
 * under its id, so a configuration kept in git applies without ever holding a key. */
static int import_key(struct gh_store *s, const json_t *item, const json_t *previous,
                      struct gh_store_error *err)
{
    const char *id = json_string_value(json_object_get(item, "id"));
    const char *hash = json_string_value(json_object_get(item, "hash"));
    const char *profile = json_string_value(json_object_get(item, "profile_id"));
    if (hash == NULL && previous != NULL)
        hash = json_string_value(json_object_get(previous, "hash"));
    const json_t *expires = json_object_get(item, "expires_at");
    if (expires != NULL && !json_is_null(expires) && !is_time(json_string_value(expires))) {
        gh_model_error(err, 422, "expires_at",
                       "key %.64s: expires_at must be null or an RFC 3339 UTC time",
                       id != NULL ? id : "");
        return GH_ERR_INVALID_ARG;
    }
    if (!created_is_valid(item, err))
        return GH_ERR_INVALID_ARG;
    if (id == NULL || !gh_model_id_valid(GH_KIND_KEY, id) || hash == NULL || strlen(hash) != 64 ||
        strspn(hash, "0123456789abcdef") != 64 || profile == NULL ||
        !exists(s, GH_KIND_PROFILE, profile)) {
        gh_model_error(err, 422, "keys",
                       "every key needs an id, the profile_id of a profile of the document, and "
                       "its 64-hex hash "
                       "(or the id of a key the store already has)");
        return GH_ERR_INVALID_ARG;
    }
    json_t *doc = json_pack("{s:s, s:s, s:O?, s:s, s:O?, s:O?}", "id", id, "profile_id", profile,
                            "prefix", json_object_get(item, "prefix"), "hash", hash, "created_at",
                            json_object_get(item, "created_at"), "expires_at",
                            json_object_get(item, "expires_at"));
    int rc = s->b.insert(s->b.db, GH_KIND_KEY, doc, err);
    json_decref(doc);
    return rc;
}

static json_t *find_by_id(const json_t *list, const char *id)
{
    size_t i;
    json_t *item;
    json_array_foreach ((json_t *)list, i, item) {
        if (id != NULL && json_is_string(json_object_get(item, "id")) &&
            strcmp(json_string_value(json_object_get(item, "id")), id) == 0)
            return item;
    }
    return NULL;
}

static int import_all(struct gh_store *s, const json_t *doc, const json_t *before,
                      struct gh_store_error *err)
{
    int rc = s->b.remove_all(s->b.db, err);
    for (size_t k = 0; rc == GH_OK && k < sizeof document_order / sizeof document_order[0]; k++) {
        enum gh_kind kind = document_order[k];
        const json_t *list = json_object_get(doc, gh_kind_plural(kind)), *item;
        size_t i;
        if (kind == GH_KIND_KEY &&
            list == NULL) /* no keys in the document: keep the existing ones */
            list = json_object_get(before, "keys");
        json_array_foreach ((json_t *)list, i, item) {
            const json_t *previous = find_by_id(json_object_get(before, gh_kind_plural(kind)),
                                                json_string_value(json_object_get(item, "id")));
            if (kind == GH_KIND_KEY) {
                const char *profile = json_string_value(json_object_get(item, "profile_id"));
                if (json_object_get(doc, "keys") == NULL && !exists(s, GH_KIND_PROFILE, profile))
                    continue; /* kept keys follow their profile out */
                rc = import_key(s, item, previous, err);
            } else {
                rc = import_object(s, kind, item, previous, err);
            }
            if (rc != GH_OK)
                break;
        }
    }
    return rc;
}

/* A profile the apply creates cannot be used without a key (issue 10, item 14): each new one
 * that ends up with none gets one, listed in `made` with its plain text (left out in a dry run,
 * whose keys are rolled back). Call inside the transaction. */
static int key_new_profiles(struct gh_store *s, const json_t *doc, const json_t *before,
                            int dry_run, json_t *made, struct gh_store_error *err)
{
    const json_t *item;
    size_t i;
    int rc = GH_OK;
    json_array_foreach (json_object_get(doc, "profiles"), i, item) {
        const char *id = json_string_value(json_object_get(item, "id"));
        json_t *keys = NULL, *key = NULL;
        if (find_by_id(json_object_get(before, "profiles"), id) != NULL)
            continue;
        if ((rc = s->b.page(s->b.db, GH_KIND_KEY, id, NULL, 1, &keys)) == GH_OK &&
            json_array_size(keys) == 0 && (rc = insert_key(s, id, &key, err)) == GH_OK) {
            json_array_append_new(made, json_pack("{s:s, s:O?, s:O, s:O, s:O?}", "profile_id", id,
                                                  "profile_name", json_object_get(item, "name"),
                                                  "id", json_object_get(key, "id"), "prefix",
                                                  json_object_get(key, "prefix"), "key",
                                                  dry_run ? NULL : json_object_get(key, "key")));
        }
        json_decref(keys);
        json_decref(key);
        if (rc != GH_OK)
            break;
    }
    return rc;
}

/* The answer of an apply: true counts of what the store holds after it, the plan, the new keys.
 * Refuses (409) an apply that deletes without `prune`. Call inside the transaction. */
static int summarize(struct gh_store *s, const json_t *before, const struct gh_import_options *o,
                     json_t *result, struct gh_store_error *err)
{
    json_t *after = NULL;
    char deleted[256];
    int rc = dump(s, 1, &after, err);
    if (rc != GH_OK)
        return rc;
    for (size_t k = 0; k < sizeof document_order / sizeof document_order[0]; k++) {
        const char *kind = gh_kind_plural(document_order[k]);
        json_object_set_new(
            result, kind, json_integer((json_int_t)json_array_size(json_object_get(after, kind))));
    }
    json_t *plan = gh_store_plan(before, after);
    size_t n = gh_store_plan_deletions(plan, deleted, sizeof deleted);
    json_object_set_new(result, "plan", plan);
    json_decref(after);
    if (n > 0 && !o->prune) {
        gh_model_error(err, 409, NULL,
                       "the document leaves out %zu object(s) that the store has (%s); nothing "
                       "was changed: apply with ?prune=true to delete them, or add them to the "
                       "document",
                       n, deleted);
        return GH_ERR_INVALID_ARG;
    }
    return GH_OK;
}

/* Every member of the document is a kind (an array) or the generation of an export. */
static int check_document(const json_t *doc, struct gh_store_error *err)
{
    const char *key;
    json_t *value;
    if (!json_is_object(doc)) {
        gh_model_error(err, 400, NULL, "the configuration must be a JSON object");
        return GH_ERR_INVALID_ARG;
    }
    json_object_foreach ((json_t *)doc, key, value) {
        int known = strcmp(key, "generation") == 0;
        for (int k = 0; k < GH_KIND_COUNT; k++)
            known |= strcmp(key, gh_kind_plural((enum gh_kind)k)) == 0;
        if (!known || (strcmp(key, "generation") != 0 && !json_is_array(value))) {
            gh_model_error(err, known ? 400 : 422, key,
                           known ? "%s must be an array" : "unknown member \"%.64s\"", key);
            return GH_ERR_INVALID_ARG;
        }
    }
    return GH_OK;
}

int gh_store_import(struct gh_store *s, const json_t *doc, const struct gh_import_options *o,
                    const struct gh_write_options *w, json_t **summary, struct gh_store_error *err)
{
    static const struct gh_import_options prune = {1, 0};
    json_t *before = NULL, *result = NULL, *made = json_array();
    int rc;

    *summary = NULL;
    o = o != NULL ? o : &prune;
    if ((rc = check_document(doc, err)) != GH_OK)
        goto out;
    result = json_object();
    pthread_mutex_lock(&s->lock);
    if ((rc = dump(s, 1, &before, err)) == GH_OK && (rc = s->b.begin(s->b.db, err)) == GH_OK) {
        if ((rc = import_all(s, doc, before, err)) == GH_OK &&
            (rc = key_new_profiles(s, doc, before, o->dry_run, made, err)) == GH_OK)
            rc = summarize(s, before, o, result, err);
        if (o->dry_run && rc == GH_OK)
            s->b.rollback(s->b.db);
        else
            rc = finish_write(s, rc, "apply", "config", NULL, json_object_get(result, "plan"), w,
                              err);
    }
    release(s, &rc, err);
    json_object_set_new(result, "generation", json_integer((json_int_t)gh_store_generation(s)));
    json_object_set(result, "new_keys", made);
    if (o->dry_run)
        json_object_set_new(result, "dry_run", json_true());
    /* a refused prune still shows its plan, but not the keys it rolled back */
    if (rc != GH_OK)
        json_object_del(result, "new_keys");
    if (rc == GH_OK || (err->status == 409 && json_object_get(result, "plan") != NULL)) {
        *summary = result;
        result = NULL;
    }
out:
    json_decref(result);
    json_decref(made);
    json_decref(before);
    return rc;
}

/* ---- the audit log ---- */

/* The audit log's name of a kind ("profile" reads as "profiles"), or NULL when it is none: a
 * misspelt filter is an error, not an empty page that reads as "nothing happened". */
static const char *audit_kind(const char *kind)
{
    if (strcmp(kind, "config") == 0 || strcmp(kind, "auth") == 0)
        return kind;
    for (int k = 0; k < GH_KIND_COUNT; k++)
        if (strcmp(kind, gh_kind_singular((enum gh_kind)k)) == 0 ||
            strcmp(kind, gh_kind_plural((enum gh_kind)k)) == 0)
            return gh_kind_plural((enum gh_kind)k);
    return NULL;
}

int gh_store_audit_event(struct gh_store *s, const char *action, const char *kind,
                         const struct gh_actor *actor, const json_t *detail)
{
    char *text = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    pthread_mutex_lock(&s->lock);
    /* outside a transaction: one row, committed by itself; the generation stays, nothing changed */
    int rc = s->b.audit(s->b.db, action, kind, NULL, actor != NULL ? actor->remote_addr : NULL,
                        actor != NULL ? actor->name : NULL, text);
    pthread_mutex_unlock(&s->lock);
    free(text);
    return rc;
}

int gh_store_audit_list(struct gh_store *s, const char *kind, const char *id, const char *after,
                        int limit, json_t **out, struct gh_store_error *err)
{
    json_t *rows = NULL, *row;
    char *end = NULL;
    long long before = 0;
    size_t i;

    *out = NULL;
    limit = limit == 0 ? 100 : limit;
    if (after != NULL &&
        ((before = strtoll(after, &end, 10)) <= 0 || end == after || *end != '\0')) {
        gh_model_error(err, 422, "after", "after must be a cursor from \"next\"");
        return GH_ERR_INVALID_ARG;
    }
    if (kind != NULL && (kind = audit_kind(kind)) == NULL) {
        gh_model_error(err, 422, "kind",
                       "kind must be collections, endpoints, clients, profiles, keys, policies, "
                       "config or auth");
        return GH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&s->lock);
    int rc = s->b.audit_page(s->b.db, kind, id, before, limit + 1, &rows);
    if (rc != GH_OK)
        gh_model_error(err, 500, NULL, "the database failed while reading the audit log");
    release(s, &rc, err);
    if (rc != GH_OK) {
        json_decref(rows);
        return rc;
    }
    json_t *data = json_array(), *next = json_null();
    json_array_foreach (rows, i, row) {
        const char *detail = json_string_value(json_object_get(row, "detail"));
        if (i == (size_t)limit) { /* one more than asked: the cursor is the last one shown */
            char cursor[32];
            snprintf(
                cursor, sizeof cursor, "%lld",
                (long long)json_integer_value(json_object_get(json_array_get(data, i - 1), "seq")));
            next = json_string(cursor);
            break;
        }
        /* the detail was written as JSON by finish_write: shown as JSON again */
        json_t *parsed = detail != NULL ? json_loads(detail, 0, NULL) : NULL;
        json_object_set_new(row, "detail", parsed != NULL ? parsed : json_null());
        json_array_append(data, row);
    }
    json_decref(rows);
    *out = json_pack("{s:o, s:o}", "data", data, "next", next);
    return GH_OK;
}
