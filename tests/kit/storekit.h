// SPDX-License-Identifier: Apache-2.0
/*
 * The store tests' fixture (test_store.c for what the store accepts, test_store_rules.c for what
 * it refuses, test_store_pg.c for what only PostgreSQL has): a fresh store plus named values
 * ("CLI", "PEM", ...) that JSON templates refer to as $CLI, because ids are random and the tables
 * name them instead of spelling them. Every helper fails the running cmocka test with the store's
 * own error when a write it expects to pass is refused.
 *
 * The same tests run on both backends: SQLite in memory by default, PostgreSQL when GH_TEST_STORE
 * is "postgres:" followed by libpq key=value pairs or nothing (the PG* variables), as
 * tests/meta/with-postgres.sh sets it around a throwaway cluster. Each fixture then has a database
 * of its own, made when it opens and dropped when it closes, so tests stay independent.
 */
#ifndef GH_TEST_STOREKIT_H
#define GH_TEST_STOREKIT_H

#include <jansson.h>
#include <stdint.h>

#include "store/store.h"

#define GH_FX_MAX_VAR 32

struct gh_fixture {
    struct gh_store *s;
    size_t n;
    char *names[GH_FX_MAX_VAR];
    char *values[GH_FX_MAX_VAR];
    char url[512];     /* the store's URL: sqlite::memory:, or the fixture's PostgreSQL database */
    char database[64]; /* that database's name; "" on SQLite */
    char dir[64];      /* the temporary directory of gh_fx_durable_url; "" when none */
};

/* 1 when the store tests run on PostgreSQL (GH_TEST_STORE), 0 on SQLite; a GH_TEST_STORE of
 * another form fails the test. */
int gh_fx_postgres(void);
/* Makes the fixture's empty database and sets fx->url, opening no store (fx->s stays NULL). */
void gh_fx_new_database(struct gh_fixture *fx);
/* Opens a fresh store (gh_fx_new_database, then the store); the caller then sets its own named
 * values. */
void gh_fx_open(struct gh_fixture *fx);
/* Closes the store, drops the fixture's database, removes its directory and forgets every
 * value. */
void gh_fx_close(struct gh_fixture *fx);
/* A store URL that outlives closing the store: a file in a new temporary directory on SQLite, the
 * fixture's own database on PostgreSQL. Both go when the fixture closes. */
const char *gh_fx_durable_url(struct gh_fixture *fx);
/* PostgreSQL only: runs `sql` (no parameters) on the fixture's database and returns the first
 * column of its first row (malloc'd; NULL when there is none). Fails the test on an error. */
char *gh_fx_sql(const struct gh_fixture *fx, const char *sql);

/* Test JSON (any value, NUL allowed); fails the test when it does not parse. */
json_t *gh_fx_parse(const char *text);
/* A string member, or NULL. */
const char *gh_fx_str(const json_t *obj, const char *member);

void gh_fx_set(struct gh_fixture *fx, const char *name, const char *value);
/* The value named by `len` bytes of `name`, or NULL. */
const char *gh_fx_get(const struct gh_fixture *fx, const char *name, size_t len);
/* A JSON template whose $NAME placeholders become the JSON strings of the fixture's values. */
json_t *gh_fx_expand(const struct gh_fixture *fx, const char *tmpl);

/* Fails the test with the store's error. */
void gh_fx_fail_store(const char *what, const struct gh_store_error *err);
/* An accepted create (takes `input`): the object as shown; the generation moved by exactly one. */
json_t *gh_fx_must_create(struct gh_store *s, enum gh_kind kind, const char *parent, json_t *input);
/* An accepted delete; the generation moved by exactly one. */
void gh_fx_must_delete(struct gh_store *s, enum gh_kind kind, const char *id);
/* Creates an object from a template under the parent id `parent` (may be NULL) and, when `var`
 * is not NULL, names its id `var`. */
void gh_fx_create(struct gh_fixture *fx, const char *var, enum gh_kind kind, const char *parent,
                  const char *tmpl);

#endif
