// SPDX-License-Identifier: Apache-2.0
#define _GNU_SOURCE /* open_memstream */
#include "storekit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"

/* The libpq key=value string of GH_TEST_STORE (after "postgres:"), or NULL on SQLite. */
static const char *postgres_base(void)
{
    const char *url = getenv("GH_TEST_STORE");
    if (url == NULL || url[0] == '\0' || strcmp(url, "sqlite::memory:") == 0)
        return NULL;
    if (strncmp(url, "postgres:", 9) != 0 || strncmp(url, "postgres://", 11) == 0)
        fail_msg("GH_TEST_STORE must be sqlite::memory: or postgres: followed by libpq key=value "
                 "pairs (or nothing: the PG* variables), not a URL: each test makes a database "
                 "of its own and names it with dbname=");
    return url + 9;
}

int gh_fx_postgres(void)
{
    return postgres_base() != NULL;
}

/* A connection to `dbname` (NULL: the one GH_TEST_STORE and the PG* variables name). */
static PGconn *connect_to(const char *dbname)
{
    const char *keywords[] = {"dbname", "dbname", NULL};
    const char *values[] = {postgres_base(), dbname, NULL};
    PGconn *conn = PQconnectdbParams(keywords, values, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", PQerrorMessage(conn));
        PQfinish(conn);
        fail_msg("cannot connect to the test cluster: %s", why);
    }
    return conn;
}

/* Runs `sql` and returns the first value of its first row, or NULL; fails the test on an error. */
static char *query(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    char *value = NULL;
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(conn);
        fail_msg("%s: %s", sql, why);
    }
    if (PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0))
        value = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return value;
}

void gh_fx_new_database(struct gh_fixture *fx)
{
    static unsigned count;
    const char *base = postgres_base();
    char sql[256];

    memset(fx, 0, sizeof *fx);
    if (base == NULL) {
        snprintf(fx->url, sizeof fx->url, "sqlite::memory:");
        return;
    }
    /* a name no other test program of the cluster takes: the process id and a counter */
    snprintf(fx->database, sizeof fx->database, "gh_test_%ld_%u", (long)getpid(), ++count);
    /* FILE_COPY: on the test cluster (fsync off) a third of the default's time, per fixture */
    snprintf(sql, sizeof sql,
             "CREATE DATABASE %s ENCODING 'UTF8' TEMPLATE template0 STRATEGY FILE_COPY",
             fx->database);
    PGconn *conn = connect_to(NULL);
    free(query(conn, sql));
    PQfinish(conn);
    snprintf(fx->url, sizeof fx->url, "postgres:%s dbname=%s", base, fx->database);
}

void gh_fx_open(struct gh_fixture *fx)
{
    char error[512] = "";

    gh_fx_new_database(fx);
    if (gh_store_open(fx->url, &fx->s, error, sizeof error) != GH_OK)
        fail_msg("cannot open the store: %s", error);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

void gh_fx_close(struct gh_fixture *fx)
{
    char database[sizeof fx->database];

    gh_store_close(fx->s);
    for (size_t i = 0; i < fx->n; i++) {
        free(fx->names[i]);
        free(fx->values[i]);
    }
    if (fx->dir[0] != '\0')
        remove_dir(fx->dir);
    memcpy(database, fx->database, sizeof database);
    memset(fx, 0, sizeof *fx); /* before anything that may fail the test */
    if (database[0] != '\0') {
        char sql[128];
        /* FORCE: a store of a test that failed may still hold a connection */
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", database);
        PGconn *conn = connect_to(NULL);
        free(query(conn, sql));
        PQfinish(conn);
    }
}

const char *gh_fx_durable_url(struct gh_fixture *fx)
{
    if (fx->database[0] != '\0')
        return fx->url;
    if (fx->dir[0] == '\0') {
        snprintf(fx->dir, sizeof fx->dir, "/tmp/gh_test_store_XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
    }
    snprintf(fx->url, sizeof fx->url, "sqlite:%s/gatehouse.db", fx->dir);
    return fx->url;
}

char *gh_fx_sql(const struct gh_fixture *fx, const char *sql)
{
    if (fx->database[0] == '\0')
        fail_msg("gh_fx_sql runs on PostgreSQL only (GH_TEST_STORE)");
    PGconn *conn = connect_to(fx->database);
    char *value = query(conn, sql);
    PQfinish(conn);
    return value;
}

json_t *gh_fx_parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);

    if (v == NULL)
        fail_msg("test JSON does not parse (%s): %s", e.text, text);
    return v;
}

const char *gh_fx_str(const json_t *obj, const char *member)
{
    return json_string_value(json_object_get(obj, member));
}

void gh_fx_set(struct gh_fixture *fx, const char *name, const char *value)
{
    assert_true(fx->n < GH_FX_MAX_VAR);
    fx->names[fx->n] = strdup(name);
    fx->values[fx->n++] = strdup(value);
}

const char *gh_fx_get(const struct gh_fixture *fx, const char *name, size_t len)
{
    for (size_t i = 0; i < fx->n; i++) {
        if (strlen(fx->names[i]) == len && memcmp(fx->names[i], name, len) == 0)
            return fx->values[i];
    }
    return NULL;
}

json_t *gh_fx_expand(const struct gh_fixture *fx, const char *tmpl)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    for (const char *p = tmpl; *p != '\0';) {
        size_t n = *p == '$' ? strspn(p + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") : 0;
        const char *value = n > 0 ? gh_fx_get(fx, p + 1, n) : NULL;
        if (value == NULL) {
            fputc(*p++, f);
            continue;
        }
        json_t *js = json_string(value);
        char *quoted = json_dumps(js, JSON_ENCODE_ANY);
        fputs(quoted, f);
        free(quoted);
        json_decref(js);
        p += n + 1;
    }
    fclose(f);
    json_t *v = gh_fx_parse(buf);
    free(buf);
    return v;
}

void gh_fx_fail_store(const char *what, const struct gh_store_error *err)
{
    fail_msg("%s refused: %d %s field \"%s\": %s", what, err->status, err->code ? err->code : "",
             err->field, err->message);
}

json_t *gh_fx_must_create(struct gh_store *s, enum gh_kind kind, const char *parent, json_t *input)
{
    struct gh_store_error err = {0};
    json_t *out = NULL;
    uint64_t generation = gh_store_generation(s);

    if (gh_store_create(s, kind, parent, input, NULL, &out, &err) != GH_OK)
        gh_fx_fail_store(gh_kind_plural(kind), &err);
    json_decref(input);
    assert_non_null(out);
    assert_int_equal(gh_store_generation(s), generation + 1);
    return out;
}

void gh_fx_must_delete(struct gh_store *s, enum gh_kind kind, const char *id)
{
    struct gh_store_error err = {0};
    uint64_t generation = gh_store_generation(s);

    if (gh_store_delete(s, kind, id, NULL, &err) != GH_OK)
        gh_fx_fail_store("delete", &err);
    assert_int_equal(gh_store_generation(s), generation + 1);
}

void gh_fx_create(struct gh_fixture *fx, const char *var, enum gh_kind kind, const char *parent,
                  const char *tmpl)
{
    json_t *out = gh_fx_must_create(fx->s, kind, parent, gh_fx_expand(fx, tmpl));

    if (var != NULL)
        gh_fx_set(fx, var, gh_fx_str(out, "id"));
    json_decref(out);
}
