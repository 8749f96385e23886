// SPDX-License-Identifier: Apache-2.0
/*
 * The SQLite backend. WAL journaling with synchronous=FULL, so a write that was answered survives a
 * crash of the process or the machine; foreign keys on; migrations numbered, append-only, each in
 * its own transaction. Each kind is a table of the columns the database must constrain (ids, unique
 * names and paths, references) plus the whole object as JSON text, so the API's documents come back
 * byte for byte.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "store/backend.h"
#include "store/model.h"

/* clang-format off */
static const char *const migrations[] = {
    /* 1: the objects of SPEC §1 */
    ("CREATE TABLE collections (id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL,"
    "  path TEXT NOT NULL UNIQUE, doc TEXT NOT NULL, UNIQUE (name, version));"
    "CREATE TABLE endpoints (id TEXT PRIMARY KEY,"
    "  collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE RESTRICT,"
    "  method TEXT NOT NULL, path TEXT NOT NULL, doc TEXT NOT NULL,"
    "  UNIQUE (collection_id, method, path));"
    "CREATE TABLE clients (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);"
    "CREATE TABLE policies (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);"
    "CREATE TABLE profiles (id TEXT PRIMARY KEY,"
    "  client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE RESTRICT,"
    "  policy_id TEXT REFERENCES policies(id) ON DELETE RESTRICT,"
    "  name TEXT NOT NULL, doc TEXT NOT NULL, UNIQUE (client_id, name));"
    "CREATE TABLE profile_collections ("
    "  profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,"
    "  collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE RESTRICT,"
    "  PRIMARY KEY (profile_id, collection_id));"
    "CREATE INDEX profile_collections_by_collection ON profile_collections(collection_id);"
    "CREATE TABLE keys (id TEXT PRIMARY KEY,"
    "  profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,"
    "  hash TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);"
    "CREATE INDEX keys_by_profile ON keys(profile_id);"
    "CREATE INDEX endpoints_by_collection ON endpoints(collection_id);"
    "CREATE INDEX profiles_by_client ON profiles(client_id);"),
    /* 2: the audit log, the IdP cache of SPEC §4, the generation of the configuration */
    ("CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
    "  remote_addr TEXT, action TEXT NOT NULL, kind TEXT NOT NULL, object_id TEXT, detail TEXT);"
    "CREATE TABLE provider_cache (url TEXT PRIMARY KEY, discovery TEXT, jwks TEXT NOT NULL,"
    "  fetched_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta (name, value) VALUES ('generation', 0);"),
    /* 3: quota counters of the gateway (SPEC §5: they survive a restart) */
    ("CREATE TABLE quota_counters (profile_id TEXT PRIMARY KEY, window INTEGER NOT NULL,"
    "  count INTEGER NOT NULL);"),
    /* 4: who made each change (the admin token's name), and reading the log by object */
    ("ALTER TABLE audit ADD COLUMN actor TEXT;"
    "CREATE INDEX audit_by_object ON audit(object_id, seq);"),
    /* 5: profiles' token_types (the JWS typ values taken; [] takes any), in every document */
    ("UPDATE profiles SET doc = json_set(doc, '$.token_types', json('[]'))"
    "  WHERE json_type(doc, '$.token_types') IS NULL;"),
    /* 6: collections' upstream_ca (a PEM bundle trusted for its https upstream; null: none) */
    ("UPDATE collections SET doc = json_set(doc, '$.upstream_ca', json('null'))"
    "  WHERE json_type(doc, '$.upstream_ca') IS NULL;"),
};
/* clang-format on */

struct sqlite_db {
    sqlite3 *db;
    char *location; /* sqlite:PATH */
};

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? GH_OK : GH_ERR_IO;
}

static void db_error(struct gh_store_error *err, sqlite3 *db)
{
    gh_model_error(err, 500, NULL, "the database failed: %s", sqlite3_errmsg(db));
}

static int migrate(sqlite3 *db, char *error, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int version = 0;

    if (exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                 " applied_at TEXT NOT NULL)") != GH_OK ||
        sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1, &st,
                           NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (version > (int)(sizeof migrations / sizeof migrations[0])) {
        snprintf(error, cap, "the database has schema version %d, newer than this gatehouse knows",
                 version);
        return GH_ERR_IO;
    }
    for (int v = version; v < (int)(sizeof migrations / sizeof migrations[0]); v++) {
        char record[128];
        snprintf(record, sizeof record,
                 "INSERT INTO schema_migrations (version, applied_at) VALUES (%d, "
                 "strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ','now'))",
                 v + 1);
        if (exec(db, "BEGIN IMMEDIATE") != GH_OK)
            goto fail;
        if (exec(db, migrations[v]) != GH_OK || exec(db, record) != GH_OK ||
            exec(db, "COMMIT") != GH_OK) {
            snprintf(error, cap, "migration %d failed: %s", v + 1, sqlite3_errmsg(db));
            exec(db, "ROLLBACK");
            return GH_ERR_IO;
        }
    }
    return GH_OK;
fail:
    snprintf(error, cap, "cannot read the schema version: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return GH_ERR_IO;
}

static int begin(void *h, struct gh_store_error *err)
{
    struct sqlite_db *s = h;
    if (exec(s->db, "BEGIN IMMEDIATE") == GH_OK)
        return GH_OK;
    db_error(err, s->db);
    return GH_ERR_IO;
}

static int commit(void *h, struct gh_store_error *err)
{
    struct sqlite_db *s = h;
    if (exec(s->db, "COMMIT") == GH_OK)
        return GH_OK;
    db_error(err, s->db);
    exec(s->db, "ROLLBACK");
    return GH_ERR_IO;
}

static void rollback(void *h)
{
    struct sqlite_db *s = h;
    exec(s->db, "ROLLBACK");
}

/* A deferred BEGIN takes no lock until its first read, and from then on SQLite (WAL) reads one
 * snapshot of the database until the end: another connection's commit never shows half-way. */
static int begin_read(void *h, struct gh_store_error *err)
{
    struct sqlite_db *s = h;
    if (exec(s->db, "BEGIN") == GH_OK)
        return GH_OK;
    db_error(err, s->db);
    return GH_ERR_IO;
}

static void end_read(void *h)
{
    struct sqlite_db *s = h;
    exec(s->db, "COMMIT");
}

/* The field a unique constraint names: "name" when it is one of the columns (composite uniques
 * such as (client_id, name)), else the last column ((collection_id, method, path) → path). */
static void unique_field(const char *msg, char *field, size_t cap)
{
    const char *p = strstr(msg, ": ");
    field[0] = '\0';
    for (p = p != NULL ? p + 2 : msg; *p != '\0';) {
        const char *dot = strchr(p, '.');
        if (dot == NULL)
            break;
        size_t n = strcspn(dot + 1, ", ");
        snprintf(field, cap, "%.*s", (int)n, dot + 1);
        if (strcmp(field, "name") == 0)
            return;
        p = dot + 1 + n;
        p += strspn(p, ", ");
    }
}

/* Turns a constraint failure into SPEC §6's 409 naming the field. */
static int constraint_error(sqlite3 *db, enum gh_kind kind, struct gh_store_error *err)
{
    char field[64];

    switch (sqlite3_extended_errcode(db)) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        unique_field(sqlite3_errmsg(db), field, sizeof field);
        gh_model_error(err, 409, field, "another %s already has this %s", gh_kind_singular(kind),
                       field[0] ? field : "value");
        return GH_ERR_INVALID_ARG;
    case SQLITE_CONSTRAINT_TRIGGER:
        /* ON DELETE RESTRICT runs as SQLite's own trigger: a reference, said the same way */
        if (strstr(sqlite3_errmsg(db), "FOREIGN KEY") == NULL) {
            db_error(err, db);
            return GH_ERR_IO;
        }
        /* fall through */
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        gh_model_error(err, 409, NULL, "this change would break a reference between objects");
        return GH_ERR_INVALID_ARG;
    default:
        db_error(err, db);
        return GH_ERR_IO;
    }
}

static void bind_column(sqlite3_stmt *st, int index, const json_t *doc, const char *column)
{
    const json_t *v = json_object_get(doc, column);
    if (json_is_string(v))
        sqlite3_bind_text(st, index, json_string_value(v), (int)json_string_length(v),
                          SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, index);
}

static int sync_profile_collections(sqlite3 *db, const json_t *doc)
{
    sqlite3_stmt *del = NULL, *ins = NULL;
    size_t i;
    json_t *item;
    int rc = GH_ERR_IO;
    const char *id = json_string_value(json_object_get(doc, "id"));

    if (sqlite3_prepare_v2(db, "DELETE FROM profile_collections WHERE profile_id = ?", -1, &del,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(
            db, "INSERT INTO profile_collections (profile_id, collection_id) VALUES (?, ?)", -1,
            &ins, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(del, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(del) != SQLITE_DONE)
        goto out;
    json_array_foreach (json_object_get(doc, "collection_ids"), i, item) {
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 2, json_string_value(item), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(ins) != SQLITE_DONE)
            goto out;
    }
    rc = GH_OK;
out:
    sqlite3_finalize(del);
    sqlite3_finalize(ins);
    return rc;
}

/* INSERT (replace = 0) or UPDATE (replace = 1) of one document. */
static int write_doc(void *h, enum gh_kind kind, const json_t *doc, int replace,
                     struct gh_store_error *err)
{
    struct sqlite_db *s = h;
    const struct gh_store_table *t = &gh_store_tables[kind];
    char sql[512], *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t n = 0, o;
    sqlite3_stmt *st = NULL;
    int rc;

    while (t->columns[n] != NULL)
        n++;
    if (!replace) {
        o = (size_t)snprintf(sql, sizeof sql, "INSERT INTO %s (", t->name);
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(sql + o, sizeof sql - o, "%s, ", t->columns[i]);
        o += (size_t)snprintf(sql + o, sizeof sql - o, "doc) VALUES (");
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(sql + o, sizeof sql - o, "?, ");
        snprintf(sql + o, sizeof sql - o, "?)");
    } else {
        o = (size_t)snprintf(sql, sizeof sql, "UPDATE %s SET ", t->name);
        for (size_t i = 1; i < n; i++)
            o += (size_t)snprintf(sql + o, sizeof sql - o, "%s = ?, ", t->columns[i]);
        snprintf(sql + o, sizeof sql - o, "doc = ? WHERE id = ?");
    }
    if (text == NULL || sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        free(text);
        db_error(err, s->db);
        return GH_ERR_IO;
    }
    int index = 1;
    for (size_t i = replace ? 1 : 0; i < n; i++)
        bind_column(st, index++, doc, t->columns[i]);
    sqlite3_bind_text(st, index++, text, -1, free);
    if (replace)
        bind_column(st, index, doc, "id");
    rc = sqlite3_step(st) == SQLITE_DONE ? GH_OK : constraint_error(s->db, kind, err);
    sqlite3_finalize(st);
    if (rc == GH_OK && kind == GH_KIND_PROFILE && sync_profile_collections(s->db, doc) != GH_OK)
        rc = constraint_error(s->db, kind, err);
    return rc;
}

static int insert(void *h, enum gh_kind kind, const json_t *doc, struct gh_store_error *err)
{
    return write_doc(h, kind, doc, 0, err);
}

static int replace(void *h, enum gh_kind kind, const json_t *doc, struct gh_store_error *err)
{
    return write_doc(h, kind, doc, 1, err);
}

static int remove_doc(void *h, enum gh_kind kind, const char *id, struct gh_store_error *err)
{
    struct sqlite_db *s = h;
    char sql[128];
    sqlite3_stmt *st = NULL;
    int rc;

    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id = ?", gh_store_tables[kind].name);
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_error(err, s->db);
        return GH_ERR_IO;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st) == SQLITE_DONE ? GH_OK : constraint_error(s->db, kind, err);
    sqlite3_finalize(st);
    return rc;
}

static int remove_all(void *h, struct gh_store_error *err)
{
    struct sqlite_db *s = h;
    /* children before parents, so no reference is ever left dangling mid-way */
    if (exec(s->db, "DELETE FROM keys; DELETE FROM profile_collections; DELETE FROM profiles;"
                    " DELETE FROM endpoints; DELETE FROM collections; DELETE FROM clients;"
                    " DELETE FROM policies;") == GH_OK)
        return GH_OK;
    db_error(err, s->db);
    return GH_ERR_IO;
}

static json_t *column_json(sqlite3_stmt *st, int column)
{
    const char *text = (const char *)sqlite3_column_text(st, column);
    return text != NULL ? json_loadb(text, (size_t)sqlite3_column_bytes(st, column), 0, NULL)
                        : NULL;
}

static int fetch(void *h, enum gh_kind kind, const char *id, json_t **doc)
{
    struct sqlite_db *s = h;
    char sql[128];
    sqlite3_stmt *st = NULL;

    *doc = NULL;
    snprintf(sql, sizeof sql, "SELECT doc FROM %s WHERE id = ?", gh_store_tables[kind].name);
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return GH_ERR_IO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *doc = column_json(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? GH_OK : GH_ERR_IO;
}

static int page(void *h, enum gh_kind kind, const char *parent_id, const char *after, int limit,
                json_t **docs)
{
    struct sqlite_db *s = h;
    const struct gh_store_table *t = &gh_store_tables[kind];
    char sql[256];
    sqlite3_stmt *st = NULL;
    int rc, index = 1;

    *docs = json_array();
    if (parent_id != NULL && t->parent == NULL)
        return GH_ERR_INVALID_ARG; /* this kind has no parent to filter by */
    snprintf(sql, sizeof sql, "SELECT doc FROM %s WHERE id > ?%s%s%s ORDER BY id LIMIT ?", t->name,
             parent_id != NULL ? " AND " : "", parent_id != NULL ? t->parent : "",
             parent_id != NULL ? " = ?" : "");
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return GH_ERR_IO;
    sqlite3_bind_text(st, index++, after != NULL ? after : "", -1, SQLITE_TRANSIENT);
    if (parent_id != NULL)
        sqlite3_bind_text(st, index++, parent_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, index, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *doc = column_json(st, 0);
        if (doc != NULL)
            json_array_append_new(*docs, doc);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? GH_OK : GH_ERR_IO;
}

static int count(sqlite3 *db, const char *sql, const char *id)
{
    sqlite3_stmt *st = NULL;
    int n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int references(void *h, enum gh_kind kind, const char *id, char *why, size_t cap)
{
    struct sqlite_db *s = h;
    int a = 0, b = 0;

    switch (kind) {
    case GH_KIND_COLLECTION:
        a = count(s->db, "SELECT COUNT(*) FROM endpoints WHERE collection_id = ?", id);
        b = count(s->db, "SELECT COUNT(*) FROM profile_collections WHERE collection_id = ?", id);
        snprintf(why, cap,
                 "the collection still has %d endpoint(s) and is granted by %d profile(s)", a, b);
        break;
    case GH_KIND_CLIENT:
        a = count(s->db, "SELECT COUNT(*) FROM profiles WHERE client_id = ?", id);
        snprintf(why, cap, "the client still has %d access profile(s)", a);
        break;
    case GH_KIND_POLICY:
        a = count(s->db, "SELECT COUNT(*) FROM profiles WHERE policy_id = ?", id);
        snprintf(why, cap, "the policy is still used by %d access profile(s)", a);
        break;
    default:
        why[0] = '\0';
    }
    return a + b;
}

static int audit(void *h, const char *action, const char *kind, const char *id,
                 const char *remote_addr, const char *actor, const char *detail)
{
    struct sqlite_db *s = h;
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_prepare_v2(
            s->db,
            "INSERT INTO audit (at, remote_addr, action, kind, object_id, detail, actor) VALUES"
            " (strftime('%Y-%m-%dT%H:%M:%fZ','now'), ?, ?, ?, ?, ?, ?)",
            -1, &st, NULL) != SQLITE_OK)
        return GH_ERR_IO;
    sqlite3_bind_text(st, 1, remote_addr, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, action, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, detail, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, actor, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st) == SQLITE_DONE ? GH_OK : GH_ERR_IO;
    sqlite3_finalize(st);
    return rc;
}

/* A text column as a JSON string, or null. */
static json_t *text_or_null(sqlite3_stmt *st, int column)
{
    const char *text = (const char *)sqlite3_column_text(st, column);
    return text != NULL ? json_string(text) : json_null();
}

static int audit_page(void *h, const char *kind, const char *id, int64_t before, int limit,
                      json_t **rows)
{
    static const char *const names[] = {"at",    "action",      "kind",  "id",
                                        "actor", "remote_addr", "detail"};
    struct sqlite_db *s = h;
    sqlite3_stmt *st = NULL;
    int rc;

    *rows = json_array();
    /* ?1 NULL or ?2 NULL leave that filter out; seq is the order of the changes */
    if (sqlite3_prepare_v2(s->db,
                           "SELECT seq, at, action, kind, object_id, actor, remote_addr, detail"
                           " FROM audit WHERE (?1 IS NULL OR kind = ?1) AND"
                           " (?2 IS NULL OR object_id = ?2) AND (?3 = 0 OR seq < ?3)"
                           " ORDER BY seq DESC LIMIT ?4",
                           -1, &st, NULL) != SQLITE_OK)
        return GH_ERR_IO;
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, before);
    sqlite3_bind_int(st, 4, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = json_pack("{s:I}", "seq", (json_int_t)sqlite3_column_int64(st, 0));
        for (int c = 0; c < 7; c++)
            json_object_set_new(row, names[c], text_or_null(st, c + 1));
        json_array_append_new(*rows, row);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? GH_OK : GH_ERR_IO;
}

static int read_generation(void *h, uint64_t *generation)
{
    struct sqlite_db *s = h;
    sqlite3_stmt *st = NULL;
    int rc = GH_ERR_IO;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE name = 'generation'", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *generation = (uint64_t)sqlite3_column_int64(st, 0);
        rc = GH_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int bump_generation(void *h, uint64_t *generation)
{
    struct sqlite_db *s = h;
    if (exec(s->db, "UPDATE meta SET value = value + 1 WHERE name = 'generation'") != GH_OK)
        return GH_ERR_IO;
    return read_generation(h, generation);
}

static char *column_strdup(sqlite3_stmt *st, int column)
{
    const char *text = (const char *)sqlite3_column_text(st, column);
    return text != NULL ? strdup(text) : NULL;
}

static int cache_load(void *h, const char *url, struct gh_persisted_keys *out)
{
    struct sqlite_db *s = h;
    sqlite3_stmt *st = NULL;
    int rc = GH_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT discovery, jwks, fetched_at, expires_at FROM provider_cache WHERE url = ?", -1,
            &st, NULL) != SQLITE_OK)
        return GH_ERR_IO;
    sqlite3_bind_text(st, 1, url, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        out->discovery = column_strdup(st, 0);
        out->jwks = column_strdup(st, 1);
        out->fetched_at = sqlite3_column_int64(st, 2);
        out->expires_at = sqlite3_column_int64(st, 3);
        rc = out->jwks != NULL ? GH_OK : GH_ERR_NOMEM;
    }
    sqlite3_finalize(st);
    return rc;
}

static int cache_save(void *h, const char *url, const struct gh_persisted_keys *keys)
{
    struct sqlite_db *s = h;
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_prepare_v2(
            s->db,
            "INSERT OR REPLACE INTO provider_cache (url, discovery, jwks, fetched_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            -1, &st, NULL) != SQLITE_OK)
        return GH_ERR_IO;
    sqlite3_bind_text(st, 1, url, -1, SQLITE_TRANSIENT);
    if (keys->discovery != NULL)
        sqlite3_bind_text(st, 2, keys->discovery, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_text(st, 3, keys->jwks, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, keys->fetched_at);
    sqlite3_bind_int64(st, 5, keys->expires_at);
    rc = sqlite3_step(st) == SQLITE_DONE ? GH_OK : GH_ERR_IO;
    sqlite3_finalize(st);
    return rc;
}

static int quota_load_all(void *h, void (*visit)(void *, const char *, int64_t, int64_t), void *arg)
{
    struct sqlite_db *s = h;
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_prepare_v2(s->db, "SELECT profile_id, window, count FROM quota_counters", -1, &st,
                           NULL) != SQLITE_OK)
        return GH_ERR_IO;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        visit(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
              sqlite3_column_int64(st, 2));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? GH_OK : GH_ERR_IO;
}

static int quota_save(void *h, const char *profile_id, int64_t window, int64_t count)
{
    struct sqlite_db *s = h;
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_prepare_v2(
            s->db,
            "INSERT OR REPLACE INTO quota_counters (profile_id, window, count) VALUES (?, ?, ?)",
            -1, &st, NULL) != SQLITE_OK)
        return GH_ERR_IO;
    sqlite3_bind_text(st, 1, profile_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, window);
    sqlite3_bind_int64(st, 3, count);
    rc = sqlite3_step(st) == SQLITE_DONE ? GH_OK : GH_ERR_IO;
    sqlite3_finalize(st);
    return rc;
}

static int ping(void *h)
{
    struct sqlite_db *s = h;
    return exec(s->db, "SELECT 1") == GH_OK;
}

static const char *location(void *h)
{
    struct sqlite_db *s = h;
    return s->location;
}

static void close_db(void *h)
{
    struct sqlite_db *s = h;
    if (s == NULL)
        return;
    sqlite3_close_v2(s->db);
    free(s->location);
    free(s);
}

int gh_sqlite_backend_open(const char *path, struct gh_store_backend *out, char *error, size_t cap)
{
    struct sqlite_db *s = calloc(1, sizeof *s);
    int rc;

    memset(out, 0, sizeof *out);
    if (s == NULL || (s->location = malloc(strlen(path) + 8)) == NULL) {
        free(s);
        return GH_ERR_NOMEM;
    }
    sprintf(s->location, "sqlite:%s", path);
    /* one connection shared by the admin and provider threads: serialized mode, and store.c holds
     * its own mutex across every multi-statement transaction */
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(error, cap, "cannot open the database %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        close_db(s);
        return GH_ERR_IO;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (exec(s->db, "PRAGMA journal_mode = WAL") != GH_OK ||
        exec(s->db, "PRAGMA synchronous = FULL") != GH_OK ||
        exec(s->db, "PRAGMA foreign_keys = ON") != GH_OK) {
        snprintf(error, cap, "cannot configure the database %s: %s", path, sqlite3_errmsg(s->db));
        close_db(s);
        return GH_ERR_IO;
    }
    if ((rc = migrate(s->db, error, cap)) != GH_OK) {
        close_db(s);
        return rc;
    }
    *out = (struct gh_store_backend){
        .db = s,
        .begin = begin,
        .begin_read = begin_read,
        .end_read = end_read,
        .commit = commit,
        .rollback = rollback,
        .insert = insert,
        .replace = replace,
        .remove = remove_doc,
        .remove_all = remove_all,
        .fetch = fetch,
        .page = page,
        .references = references,
        .audit = audit,
        .audit_page = audit_page,
        .bump_generation = bump_generation,
        .read_generation = read_generation,
        .cache_load = cache_load,
        .cache_save = cache_save,
        .quota_load_all = quota_load_all,
        .quota_save = quota_save,
        .ping = ping,
        .location = location,
        .close = close_db,
    };
    return GH_OK;
}
