// SPDX-License-Identifier: Apache-2.0
/*
 * The PostgreSQL backend: the store of sqlite.c in a database that several gateway nodes share.
 * The tables are sqlite.c's (constrained columns plus the whole object as JSON text, so documents
 * come back byte for byte; jsonb would reorder their members), with every constraint named
 * "<table>__<field>__<what>" so that a violation names its field the way SQLite's messages do.
 * Nodes agree through the database alone: migrations run in one transaction under an advisory
 * lock, and every write transaction takes another one, as SQLite's BEGIN IMMEDIATE takes its write
 * lock, so store.c's checks (paths, references) read what the other nodes committed, and each
 * one announces its generation (NOTIFY) for the other nodes' watchers (watch.c). A connection
 * lost while the database is away is made again by a later call, quickly or not at all, so no
 * call waits long on a database that is gone; how to connect is pgconn.c's. Values travel as
 * parameters of PQexecParams, never inside SQL text.
 */
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "store/backend.h"
#include "store/model.h"
#include "store/pgconn.h"

/* pg_advisory_xact_lock keys, fixed for every node and version: "gh-migra" and "gh-write" */
#define MIGRATION_LOCK "7451617734451196257"
#define WRITE_LOCK     "7451625238462063717"

/*
 * PostgreSQL's migrations, numbered as sqlite.c's: version N of one schema holds what version N
 * of the other holds, so the next change is migration 7 in both lists. SQLite's 5 and 6 fill
 * fields into documents written before those fields existed; no PostgreSQL store is that old, so
 * here they are recorded and do nothing (NULL).
 */
/* clang-format off */
static const char *const migrations[] = {
    /* 1: the objects of SPEC §1 */
    ("CREATE TABLE collections ("
    "  id TEXT COLLATE \"C\" CONSTRAINT collections__id__pkey PRIMARY KEY,"
    "  name TEXT COLLATE \"C\" NOT NULL, version TEXT COLLATE \"C\" NOT NULL,"
    "  path TEXT COLLATE \"C\" NOT NULL CONSTRAINT collections__path__unique UNIQUE,"
    "  doc TEXT NOT NULL, CONSTRAINT collections__name__unique UNIQUE (name, version));"
    "CREATE TABLE endpoints ("
    "  id TEXT COLLATE \"C\" CONSTRAINT endpoints__id__pkey PRIMARY KEY,"
    "  collection_id TEXT COLLATE \"C\" NOT NULL CONSTRAINT endpoints__collection_id__fkey"
    "    REFERENCES collections(id) ON DELETE RESTRICT,"
    "  method TEXT COLLATE \"C\" NOT NULL, path TEXT COLLATE \"C\" NOT NULL, doc TEXT NOT NULL,"
    "  CONSTRAINT endpoints__path__unique UNIQUE (collection_id, method, path));"
    "CREATE TABLE clients (id TEXT COLLATE \"C\" CONSTRAINT clients__id__pkey PRIMARY KEY,"
    "  name TEXT COLLATE \"C\" NOT NULL CONSTRAINT clients__name__unique UNIQUE,"
    "  doc TEXT NOT NULL);"
    "CREATE TABLE policies (id TEXT COLLATE \"C\" CONSTRAINT policies__id__pkey PRIMARY KEY,"
    "  name TEXT COLLATE \"C\" NOT NULL CONSTRAINT policies__name__unique UNIQUE,"
    "  doc TEXT NOT NULL);"
    "CREATE TABLE profiles ("
    "  id TEXT COLLATE \"C\" CONSTRAINT profiles__id__pkey PRIMARY KEY,"
    "  client_id TEXT COLLATE \"C\" NOT NULL CONSTRAINT profiles__client_id__fkey"
    "    REFERENCES clients(id) ON DELETE RESTRICT,"
    "  policy_id TEXT COLLATE \"C\" CONSTRAINT profiles__policy_id__fkey"
    "    REFERENCES policies(id) ON DELETE RESTRICT,"
    "  name TEXT COLLATE \"C\" NOT NULL, doc TEXT NOT NULL,"
    "  CONSTRAINT profiles__name__unique UNIQUE (client_id, name));"
    "CREATE TABLE profile_collections ("
    "  profile_id TEXT COLLATE \"C\" NOT NULL CONSTRAINT profile_collections__profile_id__fkey"
    "    REFERENCES profiles(id) ON DELETE CASCADE,"
    "  collection_id TEXT COLLATE \"C\" NOT NULL"
    "    CONSTRAINT profile_collections__collection_id__fkey"
    "    REFERENCES collections(id) ON DELETE RESTRICT,"
    "  CONSTRAINT profile_collections__collection_id__pkey PRIMARY KEY (profile_id, collection_id));"
    "CREATE INDEX profile_collections_by_collection ON profile_collections(collection_id);"
    "CREATE TABLE keys (id TEXT COLLATE \"C\" CONSTRAINT keys__id__pkey PRIMARY KEY,"
    "  profile_id TEXT COLLATE \"C\" NOT NULL CONSTRAINT keys__profile_id__fkey"
    "    REFERENCES profiles(id) ON DELETE CASCADE,"
    "  hash TEXT COLLATE \"C\" NOT NULL CONSTRAINT keys__hash__unique UNIQUE, doc TEXT NOT NULL);"
    "CREATE INDEX keys_by_profile ON keys(profile_id);"
    "CREATE INDEX endpoints_by_collection ON endpoints(collection_id);"
    "CREATE INDEX profiles_by_client ON profiles(client_id);"),
    /* 2: the audit log, the IdP cache of SPEC §4, the generation of the configuration */
    ("CREATE TABLE audit (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at TEXT NOT NULL,"
    "  remote_addr TEXT, action TEXT NOT NULL, kind TEXT NOT NULL, object_id TEXT, detail TEXT);"
    "CREATE TABLE provider_cache (url TEXT PRIMARY KEY, discovery TEXT, jwks TEXT NOT NULL,"
    "  fetched_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);"
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);"
    "INSERT INTO meta (name, value) VALUES ('generation', 0);"),
    /* 3: quota counters of the gateway (SPEC §5: they survive a restart) */
    ("CREATE TABLE quota_counters (profile_id TEXT PRIMARY KEY, \"window\" BIGINT NOT NULL,"
    "  count BIGINT NOT NULL);"),
    /* 4: who made each change (the admin token's name), and reading the log by object */
    ("ALTER TABLE audit ADD COLUMN actor TEXT;"
    "CREATE INDEX audit_by_object ON audit(object_id, seq);"),
    /* 5: SQLite's fill-in of profiles' token_types: every document here has it */
    NULL,
    /* 6: SQLite's fill-in of collections' upstream_ca: every document here has it */
    NULL,
};
/* clang-format on */

#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

/* How long a reconnect may wait for the server (libpq's minimum is 2 s), and how long after a
 * failed one the next call fails at once without trying: a call made while the database is away
 * holds the store's lock (and an admin request) at most that long, never the 10 s of a first
 * connect, and a burst of calls does not become a burst of connection attempts. */
#define RECONNECT_TIMEOUT  "2"
#define RECONNECT_PAUSE_MS 500

struct pg_db {
    PGconn *conn;   /* never NULL: a failed connection stays here, its status bad, until replaced */
    char *conninfo; /* to connect again; holds the password: wiped when the store closes */
    int in_transaction;
    int migrated, migrating; /* a node started while the database was away migrates on its first
                                connection */
    int64_t retry_at_ms;     /* no reconnect before this (monotonic) */
    char location[320];      /* postgres://host:port/dbname: what logs may say, never a password */
};

static int prepare(struct pg_db *p, char *error, size_t cap);

/* ---- the connection ---- */

/* The server's warnings go to the log (notices such as "already exists, skipping" do not). */
static void on_notice(void *arg, const PGresult *r)
{
    const char *severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *text = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (severity != NULL && strcmp(severity, "WARNING") == 0)
        gh_log(GH_LOG_WARN, "PostgreSQL warns",
               json_pack("{s:s}", "message", text != NULL ? text : ""));
}

/* A new connection in place of a broken one (at most one attempt per RECONNECT_PAUSE_MS), and the
 * migrations when the first connection never came. */
static int reconnect(struct pg_db *p)
{
    char error[512];
    int64_t now = gh_clock_monotonic_ms();

    if (now < p->retry_at_ms)
        return GH_ERR_STORE_UNAVAILABLE;
    PGconn *conn = gh_pg_connect(p->conninfo, RECONNECT_TIMEOUT);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        p->retry_at_ms = now + RECONNECT_PAUSE_MS;
        return GH_ERR_STORE_UNAVAILABLE;
    }
    PQfinish(p->conn);
    p->conn = conn;
    PQsetNoticeReceiver(p->conn, on_notice, NULL);
    if (!p->migrated && !p->migrating && prepare(p, error, sizeof error) != GH_OK) {
        gh_log(GH_LOG_ERROR, "the configuration store cannot be used",
               json_pack("{s:s, s:s}", "store", p->location, "error", error));
        p->retry_at_ms = now + RECONNECT_PAUSE_MS;
        return GH_ERR_IO;
    }
    return GH_OK;
}

/*
 * Whether the connection can take a statement. A broken one is replaced once per call, and never
 * in the middle of a transaction: the rest of it would run on a new session, outside any
 * transaction, and commit half a change. The transaction fails instead; store.c rolls it back.
 */
static int ready(struct pg_db *p)
{
    if (PQstatus(p->conn) == CONNECTION_OK)
        return 1;
    if (p->in_transaction)
        return 0;
    return reconnect(p) == GH_OK;
}

/* Runs one statement with text parameters (NULL: SQL NULL). NULL when the connection is down. */
static PGresult *run(struct pg_db *p, const char *sql, int n, const char *const *params)
{
    if (!ready(p))
        return NULL;
    return PQexecParams(p->conn, sql, n, NULL, params, NULL, NULL, 0);
}

static int succeeded(const PGresult *r)
{
    ExecStatusType status = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

/* Runs a statement whose result is only success or failure; PQclears it. */
static int command(struct pg_db *p, const char *sql, int n, const char *const *params)
{
    PGresult *r = run(p, sql, n, params);
    int ok = succeeded(r);
    PQclear(r);
    return ok ? GH_OK : PQstatus(p->conn) != CONNECTION_OK ? GH_ERR_STORE_UNAVAILABLE : GH_ERR_IO;
}

/* Runs statements that carry no value (constant SQL, several at once: the simple protocol, as
 * PQexecParams takes only one); GH_OK or an error as command(). */
static int script(struct pg_db *p, const char *sql)
{
    PGresult *r = ready(p) ? PQexec(p->conn, sql) : NULL;
    int ok = succeeded(r);
    PQclear(r);
    return ok ? GH_OK : PQstatus(p->conn) != CONNECTION_OK ? GH_ERR_STORE_UNAVAILABLE : GH_ERR_IO;
}

/* The field of a constraint named "<table>__<field>__<what>" ("" when it is not such a name). */
static void constraint_field(const char *constraint, char *field, size_t cap)
{
    const char *start = constraint != NULL ? strstr(constraint, "__") : NULL;
    const char *end = start != NULL ? strstr(start + 2, "__") : NULL;
    field[0] = '\0';
    if (end != NULL)
        snprintf(field, cap, "%.*s", (int)(end - start - 2), start + 2);
}

/* Turns a failed statement into SPEC §6's answer, in sqlite.c's words: 409 naming the field of a
 * unique violation, 409 for a broken reference, else 500 with the server's primary message. */
static int failure(struct pg_db *p, const PGresult *r, enum gh_kind kind,
                   struct gh_store_error *err)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char field[64];

    if (r == NULL || PQstatus(p->conn) != CONNECTION_OK) {
        /* store.c says it in SPEC's words (503 store_unavailable) when the call ends */
        gh_model_error(err, 500, NULL, "the store's database cannot be reached");
        return GH_ERR_STORE_UNAVAILABLE;
    }
    if (state != NULL && strcmp(state, "23505") == 0) {
        constraint_field(PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME), field, sizeof field);
        gh_model_error(err, 409, field, "another %s already has this %s", gh_kind_singular(kind),
                       field[0] ? field : "value");
        return GH_ERR_INVALID_ARG;
    }
    if (state != NULL && strcmp(state, "23503") == 0) {
        gh_model_error(err, 409, NULL, "this change would break a reference between objects");
        return GH_ERR_INVALID_ARG;
    }
    const char *text = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    gh_model_error(err, 500, NULL, "the database failed: %s", text != NULL ? text : "no reason");
    return GH_ERR_IO;
}

/* ---- migrations ---- */

static int schema_version(struct pg_db *p, int *version)
{
    PGresult *r = run(p, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", 0, NULL);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        *version = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return ok;
}

/* libpq's message of the last failure on one line, for the migration's errors (only SQL
 * constants ran: it quotes no value of ours). */
static const char *last_error(struct pg_db *p, char *buf, size_t cap)
{
    const char *text = PQerrorMessage(p->conn);
    snprintf(buf, cap, "%s", text != NULL && text[0] != '\0' ? text : "no reason given");
    gh_pg_one_line(buf);
    return buf;
}

/*
 * Every migration the database lacks, in one transaction under an advisory lock: ten nodes
 * starting at once wait for the first, which migrates; the others then find the schema complete.
 * None ever sees half of it. A schema newer than this build knows is refused, never written to.
 */
static int migrate(struct pg_db *p, char *error, size_t cap)
{
    static const char *const lock[] = {MIGRATION_LOCK};
    char why[256];
    int version = 0, rc = GH_ERR_IO;

    if (command(p, "BEGIN", 0, NULL) != GH_OK) {
        gh_error_format(error, cap, "cannot start the migration: %s",
                        last_error(p, why, sizeof why));
        return GH_ERR_IO;
    }
    p->in_transaction = 1;
    if (command(p, "SELECT pg_advisory_xact_lock($1::bigint)", 1, lock) != GH_OK ||
        command(p,
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " applied_at TEXT NOT NULL)",
                0, NULL) != GH_OK ||
        !schema_version(p, &version)) {
        gh_error_format(error, cap, "cannot read the schema version: %s",
                        last_error(p, why, sizeof why));
        goto out;
    }
    if (version > MIGRATION_COUNT) {
        gh_error_format(error, cap,
                        "the database has schema version %d, newer than this gatehouse knows "
                        "(%d): a newer gatehouse migrated it; run that version",
                        version, MIGRATION_COUNT);
        goto out;
    }
    for (int v = version; v < MIGRATION_COUNT; v++) {
        char number[16];
        const char *params[] = {number};
        snprintf(number, sizeof number, "%d", v + 1);
        if ((migrations[v] != NULL && script(p, migrations[v]) != GH_OK) ||
            command(p,
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1::integer,"
                    " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))",
                    1, params) != GH_OK) {
            gh_error_format(error, cap, "migration %d failed: %s", v + 1,
                            last_error(p, why, sizeof why));
            goto out;
        }
    }
    if (command(p, "COMMIT", 0, NULL) != GH_OK) {
        gh_error_format(error, cap, "the migration could not commit: %s",
                        last_error(p, why, sizeof why));
        goto out;
    }
    rc = GH_OK;
out:
    if (rc != GH_OK && PQstatus(p->conn) == CONNECTION_OK)
        PQclear(PQexec(p->conn, "ROLLBACK"));
    p->in_transaction = 0;
    return rc;
}

/* ---- transactions ---- */

static int begin(void *h, struct gh_store_error *err)
{
    static const char *const lock[] = {WRITE_LOCK};
    struct pg_db *p = h;
    PGresult *r = run(p, "BEGIN", 0, NULL);
    int rc;

    if (!succeeded(r)) {
        rc = failure(p, r, GH_KIND_COLLECTION, err);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    p->in_transaction = 1;
    /* one writer at a time across every node, as SQLite's BEGIN IMMEDIATE: store.c's checks then
     * read every change committed before this one */
    r = run(p, "SELECT pg_advisory_xact_lock($1::bigint)", 1, lock);
    if (succeeded(r)) {
        PQclear(r);
        return GH_OK;
    }
    rc = failure(p, r, GH_KIND_COLLECTION, err);
    PQclear(r);
    if (PQstatus(p->conn) == CONNECTION_OK)
        PQclear(PQexec(p->conn, "ROLLBACK"));
    p->in_transaction = 0;
    return rc;
}

static int commit(void *h, struct gh_store_error *err)
{
    struct pg_db *p = h;
    PGresult *r = run(p, "COMMIT", 0, NULL);
    int rc = GH_OK;

    /* a transaction that had failed "commits" as ROLLBACK: that is no success */
    if (!succeeded(r))
        rc = failure(p, r, GH_KIND_COLLECTION, err);
    else if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        gh_model_error(err, 500, NULL, "the database rolled the change back");
        rc = GH_ERR_IO;
    }
    PQclear(r);
    p->in_transaction = 0;
    return rc;
}

static void rollback(void *h)
{
    struct pg_db *p = h;
    if (p->in_transaction && PQstatus(p->conn) == CONNECTION_OK)
        PQclear(PQexec(p->conn, "ROLLBACK"));
    p->in_transaction = 0;
}

/*
 * The whole configuration in one piece: REPEATABLE READ takes its snapshot at the first statement
 * and keeps it to the end, so a write another node commits meanwhile is either wholly in what this
 * reads or wholly out of it; READ ONLY because a reload never writes. No advisory lock: readers
 * never wait for a writer.
 */
static int begin_read(void *h, struct gh_store_error *err)
{
    struct pg_db *p = h;
    PGresult *r = run(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    int rc = succeeded(r) ? GH_OK : failure(p, r, GH_KIND_COLLECTION, err);

    PQclear(r);
    if (rc == GH_OK)
        p->in_transaction = 1;
    return rc;
}

static void end_read(void *h)
{
    rollback(h); /* nothing was written: ending it either way releases the snapshot */
}

/* ---- documents ---- */

static const char *column_value(const json_t *doc, const char *column)
{
    return json_string_value(json_object_get(doc, column));
}

static int sync_profile_collections(struct pg_db *p, const json_t *doc, struct gh_store_error *err)
{
    const char *id = column_value(doc, "id");
    const char *del[] = {id};
    size_t i;
    json_t *item;
    PGresult *r = run(p, "DELETE FROM profile_collections WHERE profile_id = $1", 1, del);

    json_array_foreach (json_object_get(doc, "collection_ids"), i, item) {
        if (!succeeded(r))
            break;
        PQclear(r);
        const char *ins[] = {id, json_string_value(item)};
        r = run(p, "INSERT INTO profile_collections (profile_id, collection_id) VALUES ($1, $2)", 2,
                ins);
    }
    int rc = succeeded(r) ? GH_OK : failure(p, r, GH_KIND_PROFILE, err);
    PQclear(r);
    return rc;
}

/* INSERT (replace = 0) or UPDATE (replace = 1) of one document. Only the table's constant names
 * go into the SQL text; every value is a parameter. */
static int write_doc(void *h, enum gh_kind kind, const json_t *doc, int replace,
                     struct gh_store_error *err)
{
    struct pg_db *p = h;
    const struct gh_store_table *t = &gh_store_tables[kind];
    const char *params[6];
    char sql[512], *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t n = 0, o;
    int index = 0;

    if (text == NULL) {
        gh_model_error(err, 500, NULL, "out of memory");
        return GH_ERR_NOMEM;
    }
    while (t->columns[n] != NULL)
        n++;
    if (!replace) {
        o = (size_t)snprintf(sql, sizeof sql, "INSERT INTO %s (", t->name);
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(sql + o, sizeof sql - o, "%s, ", t->columns[i]);
        o += (size_t)snprintf(sql + o, sizeof sql - o, "doc) VALUES (");
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(sql + o, sizeof sql - o, "$%zu, ", i + 1);
        snprintf(sql + o, sizeof sql - o, "$%zu)", n + 1);
    } else {
        o = (size_t)snprintf(sql, sizeof sql, "UPDATE %s SET ", t->name);
        for (size_t i = 1; i < n; i++)
            o += (size_t)snprintf(sql + o, sizeof sql - o, "%s = $%zu, ", t->columns[i], i);
        snprintf(sql + o, sizeof sql - o, "doc = $%zu WHERE id = $%zu", n, n + 1);
    }
    for (size_t i = replace ? 1 : 0; i < n; i++)
        params[index++] = column_value(doc, t->columns[i]);
    params[index++] = text;
    if (replace)
        params[index++] = column_value(doc, "id");

    PGresult *r = run(p, sql, index, params);
    int rc = succeeded(r) ? GH_OK : failure(p, r, kind, err);
    PQclear(r);
    free(text);
    if (rc == GH_OK && kind == GH_KIND_PROFILE)
        rc = sync_profile_collections(p, doc, err);
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
    struct pg_db *p = h;
    const char *params[] = {id};
    char sql[128];

    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id = $1", gh_store_tables[kind].name);
    PGresult *r = run(p, sql, 1, params);
    int rc = succeeded(r) ? GH_OK : failure(p, r, kind, err);
    PQclear(r);
    return rc;
}

static int remove_all(void *h, struct gh_store_error *err)
{
    struct pg_db *p = h;
    /* children before parents, so no reference is ever left dangling mid-way; no values, so the
     * simple protocol may carry the statements together */
    PGresult *r = ready(p) ? PQexec(p->conn, "DELETE FROM keys; DELETE FROM profile_collections;"
                                             " DELETE FROM profiles; DELETE FROM endpoints;"
                                             " DELETE FROM collections; DELETE FROM clients;"
                                             " DELETE FROM policies;")
                           : NULL;
    int rc = succeeded(r) ? GH_OK : failure(p, r, GH_KIND_COLLECTION, err);
    PQclear(r);
    return rc;
}

/* The JSON document of a text column, or NULL. */
static json_t *column_json(const PGresult *r, int row, int column)
{
    if (PQgetisnull(r, row, column))
        return NULL;
    return json_loadb(PQgetvalue(r, row, column), (size_t)PQgetlength(r, row, column), 0, NULL);
}

static int fetch(void *h, enum gh_kind kind, const char *id, json_t **doc)
{
    struct pg_db *p = h;
    const char *params[] = {id};
    char sql[128];

    *doc = NULL;
    snprintf(sql, sizeof sql, "SELECT doc FROM %s WHERE id = $1", gh_store_tables[kind].name);
    PGresult *r = run(p, sql, 1, params);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? GH_OK : GH_ERR_IO;
    if (rc == GH_OK && PQntuples(r) > 0)
        *doc = column_json(r, 0, 0);
    PQclear(r);
    return rc;
}

static int page(void *h, enum gh_kind kind, const char *parent_id, const char *after, int limit,
                json_t **docs)
{
    struct pg_db *p = h;
    const struct gh_store_table *t = &gh_store_tables[kind];
    const char *params[3];
    char sql[256], count[16];
    int n = 0;

    *docs = json_array();
    if (parent_id != NULL && t->parent == NULL)
        return GH_ERR_INVALID_ARG; /* this kind has no parent to filter by */
    snprintf(count, sizeof count, "%d", limit);
    params[n++] = after != NULL ? after : "";
    if (parent_id != NULL)
        params[n++] = parent_id;
    params[n++] = limit > 0 ? count : NULL; /* LIMIT NULL: all */
    /* ids are COLLATE "C": byte order, as SQLite's */
    snprintf(sql, sizeof sql, "SELECT doc FROM %s WHERE id > $1%s%s%s ORDER BY id LIMIT $%d",
             t->name, parent_id != NULL ? " AND " : "", parent_id != NULL ? t->parent : "",
             parent_id != NULL ? " = $2" : "", n);
    PGresult *r = run(p, sql, n, params);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? GH_OK : GH_ERR_IO;
    for (int row = 0; rc == GH_OK && row < PQntuples(r); row++) {
        json_t *doc = column_json(r, row, 0);
        if (doc != NULL)
            json_array_append_new(*docs, doc);
    }
    PQclear(r);
    return rc;
}

static int count_rows(struct pg_db *p, const char *sql, const char *id)
{
    const char *params[] = {id};
    PGresult *r = run(p, sql, 1, params);
    int n =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return n;
}

static int references(void *h, enum gh_kind kind, const char *id, char *why, size_t cap)
{
    struct pg_db *p = h;
    int a = 0, b = 0;

    switch (kind) {
    case GH_KIND_COLLECTION:
        a = count_rows(p, "SELECT COUNT(*) FROM endpoints WHERE collection_id = $1", id);
        b = count_rows(p, "SELECT COUNT(*) FROM profile_collections WHERE collection_id = $1", id);
        snprintf(why, cap,
                 "the collection still has %d endpoint(s) and is granted by %d profile(s)", a, b);
        break;
    case GH_KIND_CLIENT:
        a = count_rows(p, "SELECT COUNT(*) FROM profiles WHERE client_id = $1", id);
        snprintf(why, cap, "the client still has %d access profile(s)", a);
        break;
    case GH_KIND_POLICY:
        a = count_rows(p, "SELECT COUNT(*) FROM profiles WHERE policy_id = $1", id);
        snprintf(why, cap, "the policy is still used by %d access profile(s)", a);
        break;
    default:
        why[0] = '\0';
    }
    return a + b;
}

/* ---- the audit log ---- */

static int audit(void *h, const char *action, const char *kind, const char *id,
                 const char *remote_addr, const char *actor, const char *detail)
{
    struct pg_db *p = h;
    const char *params[] = {remote_addr, action, kind, id, detail, actor};
    /* the time as sqlite.c writes it: UTC, milliseconds, "Z" */
    return command(p,
                   "INSERT INTO audit (at, remote_addr, action, kind, object_id, detail, actor)"
                   " VALUES (to_char(statement_timestamp() AT TIME ZONE 'UTC',"
                   " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), $1, $2, $3, $4, $5, $6)",
                   6, params);
}

/* A text column as a JSON string, or null. */
static json_t *text_or_null(const PGresult *r, int row, int column)
{
    return PQgetisnull(r, row, column) ? json_null() : json_string(PQgetvalue(r, row, column));
}

static int audit_page(void *h, const char *kind, const char *id, int64_t before, int limit,
                      json_t **rows)
{
    static const char *const names[] = {"at",    "action",      "kind",  "id",
                                        "actor", "remote_addr", "detail"};
    struct pg_db *p = h;
    char seq[24], count[16];
    const char *params[] = {kind, id, seq, limit > 0 ? count : NULL};

    *rows = json_array();
    snprintf(seq, sizeof seq, "%lld", (long long)before);
    snprintf(count, sizeof count, "%d", limit);
    /* $1 NULL or $2 NULL leave that filter out; seq is the order of the changes */
    PGresult *r = run(p,
                      "SELECT seq, at, action, kind, object_id, actor, remote_addr, detail"
                      " FROM audit WHERE ($1::text IS NULL OR kind = $1) AND"
                      " ($2::text IS NULL OR object_id = $2) AND ($3::bigint = 0 OR seq < $3)"
                      " ORDER BY seq DESC LIMIT $4",
                      4, params);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? GH_OK : GH_ERR_IO;
    for (int row = 0; rc == GH_OK && row < PQntuples(r); row++) {
        json_t *item =
            json_pack("{s:I}", "seq", (json_int_t)strtoll(PQgetvalue(r, row, 0), NULL, 10));
        for (int c = 0; c < 7; c++)
            json_object_set_new(item, names[c], text_or_null(r, row, c + 1));
        json_array_append_new(*rows, item);
    }
    PQclear(r);
    return rc;
}

/* ---- generation, provider cache, quota counters ---- */

static int generation_of(PGresult *r, uint64_t *generation)
{
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        *generation = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return ok ? GH_OK : GH_ERR_IO;
}

static int read_generation(void *h, uint64_t *generation)
{
    return generation_of(run(h, "SELECT value FROM meta WHERE name = 'generation'", 0, NULL),
                         generation);
}

/* Inside the write transaction: the row stays locked until it ends, so two nodes never take the
 * same number. The notification carries the new number to every node's watcher (watch.c);
 * PostgreSQL delivers it at commit and drops it on rollback, so no node reloads for a change that
 * never happened. */
static int bump_generation(void *h, uint64_t *generation)
{
    return generation_of(run(h,
                             "WITH bumped AS (UPDATE meta SET value = value + 1"
                             " WHERE name = 'generation' RETURNING value)"
                             " SELECT value, pg_notify('" GH_PG_CHANNEL "', value::text)"
                             " FROM bumped",
                             0, NULL),
                         generation);
}

static char *column_strdup(const PGresult *r, int row, int column)
{
    return PQgetisnull(r, row, column) ? NULL : strdup(PQgetvalue(r, row, column));
}

static int cache_load(void *h, const char *url, struct gh_persisted_keys *out)
{
    const char *params[] = {url};
    int rc = GH_ERR_INVALID_ARG;

    memset(out, 0, sizeof *out);
    PGresult *r = run(h,
                      "SELECT discovery, jwks, fetched_at, expires_at FROM provider_cache"
                      " WHERE url = $1",
                      1, params);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = GH_ERR_IO;
    else if (PQntuples(r) == 1) {
        out->discovery = column_strdup(r, 0, 0);
        out->jwks = column_strdup(r, 0, 1);
        out->fetched_at = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        out->expires_at = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
        rc = out->jwks != NULL ? GH_OK : GH_ERR_NOMEM;
    }
    PQclear(r);
    return rc;
}

static int cache_save(void *h, const char *url, const struct gh_persisted_keys *keys)
{
    char fetched[24], expires[24];
    const char *params[] = {url, keys->discovery, keys->jwks, fetched, expires};

    snprintf(fetched, sizeof fetched, "%lld", (long long)keys->fetched_at);
    snprintf(expires, sizeof expires, "%lld", (long long)keys->expires_at);
    return command(h,
                   "INSERT INTO provider_cache (url, discovery, jwks, fetched_at, expires_at)"
                   " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (url) DO UPDATE SET"
                   " discovery = EXCLUDED.discovery, jwks = EXCLUDED.jwks,"
                   " fetched_at = EXCLUDED.fetched_at, expires_at = EXCLUDED.expires_at",
                   5, params);
}

static int quota_load_all(void *h, void (*visit)(void *, const char *, int64_t, int64_t), void *arg)
{
    PGresult *r = run(h, "SELECT profile_id, \"window\", count FROM quota_counters", 0, NULL);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? GH_OK : GH_ERR_IO;
    for (int row = 0; rc == GH_OK && row < PQntuples(r); row++)
        visit(arg, PQgetvalue(r, row, 0), strtoll(PQgetvalue(r, row, 1), NULL, 10),
              strtoll(PQgetvalue(r, row, 2), NULL, 10));
    PQclear(r);
    return rc;
}

static int quota_save(void *h, const char *profile_id, int64_t window, int64_t count)
{
    char w[24], c[24];
    const char *params[] = {profile_id, w, c};

    snprintf(w, sizeof w, "%lld", (long long)window);
    snprintf(c, sizeof c, "%lld", (long long)count);
    return command(h,
                   "INSERT INTO quota_counters (profile_id, \"window\", count) VALUES ($1, $2, $3)"
                   " ON CONFLICT (profile_id) DO UPDATE SET \"window\" = EXCLUDED.\"window\","
                   " count = EXCLUDED.count",
                   3, params);
}

static int ping(void *h)
{
    return command(h, "SELECT 1", 0, NULL) == GH_OK;
}

static int connected(void *h)
{
    struct pg_db *p = h;
    return PQstatus(p->conn) == CONNECTION_OK;
}

static const char *location(void *h)
{
    struct pg_db *p = h;
    return p->location;
}

static void close_db(void *h)
{
    struct pg_db *p = h;
    if (p == NULL)
        return;
    PQfinish(p->conn);
    if (p->conninfo != NULL) {
        OPENSSL_cleanse(p->conninfo, strlen(p->conninfo));
        free(p->conninfo);
    }
    free(p);
}

/* ---- opening ---- */

/* The server's encoding, then the migrations: what a first connection does before any call. */
static int prepare(struct pg_db *p, char *error, size_t cap)
{
    const char *encoding = PQparameterStatus(p->conn, "server_encoding");
    int rc;

    if (encoding == NULL || (strcmp(encoding, "UTF8") != 0 && strcmp(encoding, "SQL_ASCII") != 0)) {
        gh_error_format(error, cap,
                        "the database %s has the encoding %s; gatehouse keeps UTF-8 text: make "
                        "it with CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0",
                        p->location, encoding != NULL ? encoding : "(unknown)");
        return GH_ERR_IO;
    }
    p->migrating = 1;
    rc = migrate(p, error, cap);
    p->migrating = 0;
    p->migrated = rc == GH_OK;
    return rc;
}

static int open_backend(const char *conninfo, int waiting, struct gh_store_backend *out,
                        char *error, size_t cap)
{
    struct pg_db *p;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = gh_pg_conninfo_check(conninfo, error, cap)) != GH_OK)
        return rc;
    if ((p = calloc(1, sizeof *p)) == NULL || (p->conninfo = strdup(conninfo)) == NULL) {
        free(p);
        return GH_ERR_NOMEM;
    }
    if ((p->conn = gh_pg_connect(conninfo, "10")) == NULL) {
        close_db(p);
        return GH_ERR_NOMEM;
    }
    gh_pg_describe(p->conn, p->location, sizeof p->location);
    if (PQstatus(p->conn) != CONNECTION_OK) {
        gh_pg_connection_error(p->conn, conninfo, p->location, error, cap);
        if (!waiting) {
            close_db(p);
            return GH_ERR_STORE_UNAVAILABLE;
        }
        /* the first call that connects migrates */
        p->retry_at_ms = gh_clock_monotonic_ms() + RECONNECT_PAUSE_MS;
        rc = GH_ERR_STORE_UNAVAILABLE;
    } else {
        PQsetNoticeReceiver(p->conn, on_notice, NULL);
        if ((rc = prepare(p, error, cap)) != GH_OK) {
            close_db(p);
            return rc;
        }
    }
    *out = (struct gh_store_backend){
        .db = p,
        .begin = begin,
        .commit = commit,
        .rollback = rollback,
        .begin_read = begin_read,
        .end_read = end_read,
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
        .connected = connected,
        .location = location,
        .close = close_db,
    };
    return rc;
}

int gh_pg_backend_open(const char *conninfo, struct gh_store_backend *out, char *error, size_t cap)
{
    return open_backend(conninfo, 0, out, error, cap);
}

int gh_pg_backend_open_waiting(const char *conninfo, struct gh_store_backend *out, char *error,
                               size_t cap)
{
    return open_backend(conninfo, 1, out, error, cap);
}
