// SPDX-License-Identifier: Apache-2.0
/*
 * What a database must provide to hold gatehouse's configuration: transactions, documents per kind
 * with the uniqueness and reference rules of SPEC §1 enforced by the database itself (a last line
 * of defence behind store.c's checks), the audit log, the provider cache and a generation counter.
 * SQLite implements it (sqlite.c) for one node, PostgreSQL (pg.c) for several sharing a database.
 * Internal to src/store.
 */
#ifndef GH_STORE_BACKEND_H
#define GH_STORE_BACKEND_H

#include <jansson.h>
#include <stdint.h>

#include "oidc/provider.h"
#include "store/store.h"

/* Per kind: its table, the columns the database constrains (first is id) and the parent column of
 * lists; the same schema in every backend (model.c). */
struct gh_store_table {
    const char *name;
    const char *columns[5];
    const char *parent;
};
extern const struct gh_store_table gh_store_tables[GH_KIND_COUNT];

struct gh_store_backend {
    void *db;
    int (*begin)(void *db, struct gh_store_error *err); /* a write transaction */
    int (*commit)(void *db, struct gh_store_error *err);
    void (*rollback)(void *db);
    /* a read-only transaction that sees one committed state from its first read to its end (the
     * whole configuration in one piece), ended by end_read */
    int (*begin_read)(void *db, struct gh_store_error *err);
    void (*end_read)(void *db);
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
    /* whether the connection to the database is up now, without a round trip; NULL when the
     * database is a local file (always there) */
    int (*connected)(void *db);
    /* where the database is, as logs may say it: sqlite:PATH, or postgres://HOST:PORT/DBNAME
     * (never a user or password); owned by the backend */
    const char *(*location)(void *db);
    void (*close)(void *db);
};

/* The libpq connection string of a PostgreSQL store (for the watcher's own connection: it holds
 * the password, so it goes nowhere else), or NULL for SQLite. Owned by the store. */
const char *gh_store_conninfo(const struct gh_store *s);

/* Opens an SQLite database at `path` (":memory:" for a private one) and migrates it. */
int gh_sqlite_backend_open(const char *path, struct gh_store_backend *out, char *error, size_t cap);

/* Whether libpq can parse `conninfo` (a postgres:// or postgresql:// URL, a key=value string, or
 * "" for the PG* environment variables alone), without connecting: GH_OK or GH_ERR_INVALID_ARG.
 * `error` never repeats the string, which may hold a password. */
int gh_pg_conninfo_check(const char *conninfo, char *error, size_t cap);

/* Connects to PostgreSQL with `conninfo` (as above; libpq's defaults and PG* variables fill what
 * it leaves out, connect_timeout 10 s and application_name gatehouse unless given) and migrates
 * the database. GH_ERR_STORE_UNAVAILABLE when it cannot connect, GH_ERR_IO when the database
 * cannot be used (a newer schema, a failed migration); `error` says why, never with a password. */
int gh_pg_backend_open(const char *conninfo, struct gh_store_backend *out, char *error, size_t cap);

/* The same, for a node that must start while the database is away: when it cannot connect, it
 * still fills `out` and returns GH_ERR_STORE_UNAVAILABLE with `error` saying why; each later call
 * tries to connect again (at most one attempt per half second, 2 s each), and the first that
 * succeeds migrates the database. */
int gh_pg_backend_open_waiting(const char *conninfo, struct gh_store_backend *out, char *error,
                               size_t cap);

#endif
