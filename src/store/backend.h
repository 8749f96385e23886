// SPDX-License-Identifier: Apache-2.0
/*
 * What a database must provide to hold gatehouse's configuration: transactions, documents per kind
 * with the uniqueness and reference rules of SPEC §1 enforced by the database itself (a last line
 * of defence behind store.c's checks), the audit log, the provider cache and a generation counter.
 * SQLite implements it (sqlite.c); a PostgreSQL backend would implement the same table of calls.
 * Internal to src/store.
 */
#ifndef GH_STORE_BACKEND_H
#define GH_STORE_BACKEND_H

#include <jansson.h>
#include <stdint.h>

#include "oidc/provider.h"
#include "store/store.h"

struct gh_store_backend {
    void *db;
    int (*begin)(void *db, struct gh_store_error *err); /* a write transaction */
    int (*commit)(void *db, struct gh_store_error *err);
    void (*rollback)(void *db);
    /* `doc` holds every field (id, timestamps, secrets). Constraint failures → 409 naming the
     * field (unique) or 409 "still in use" (reference). */
    int (*insert)(void *db, enum gh_kind kind, const json_t *doc, struct gh_store_error *err);
    int (*replace)(void *db, enum gh_kind kind, const json_t *doc, struct gh_store_error *err);
    int (*remove)(void *db, enum gh_kind kind, const char *id, struct gh_store_error *err);
    int (*remove_all)(void *db, struct gh_store_error *err); /* every object, for import */
    /* *doc NULL when absent */
    int (*fetch)(void *db, enum gh_kind kind, const char *id, json_t **doc);
    /* documents ordered by id after `after` (NULL: from the start), at most `limit` (0: all), of
     * one parent when `parent_id` is set (endpoints: collection, keys: profile, profiles: client)
     */
    int (*page)(void *db, enum gh_kind kind, const char *parent_id, const char *after, int limit,
                json_t **docs);
    /* how many objects refer to `id` of `kind`, with a sentence saying which in `why` */
    int (*references)(void *db, enum gh_kind kind, const char *id, char *why, size_t cap);
    /* `kind` is a plural kind name or "config"; `actor` the admin token's name (NULL: unknown) */
    int (*audit)(void *db, const char *action, const char *kind, const char *id,
                 const char *remote_addr, const char *actor, const char *detail);
    /* audit rows newest first, seq below `before` (0: from the newest), at most `limit`, of one
     * kind and one object id when set: [{"seq","at","action","kind","id","actor","remote_addr",
     * "detail" (text)}] */
    int (*audit_page)(void *db, const char *kind, const char *id, int64_t before, int limit,
                      json_t **rows);
    int (*bump_generation)(void *db, uint64_t *generation);
    int (*read_generation)(void *db, uint64_t *generation);
    int (*cache_load)(void *db, const char *url, struct gh_persisted_keys *out);
    int (*cache_save)(void *db, const char *url, const struct gh_persisted_keys *keys);
    int (*quota_load_all)(void *db,
                          void (*visit)(void *arg, const char *profile_id, int64_t window,
                                        int64_t count),
                          void *arg);
    int (*quota_save)(void *db, const char *profile_id, int64_t window, int64_t count);
    int (*ping)(void *db);
    void (*close)(void *db);
};

/* Opens an SQLite database at `path` (":memory:" for a private one) and migrates it. */
int gh_sqlite_backend_open(const char *path, struct gh_store_backend *out, char *error, size_t cap);

#endif
