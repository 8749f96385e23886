// SPDX-License-Identifier: Apache-2.0
/*
 * The store tests' fixture (test_store.c for what the store accepts, test_store_rules.c for what
 * it refuses): a fresh in-memory store plus named values ("CLI", "PEM", ...) that JSON templates
 * refer to as $CLI, because ids are random and the tables name them instead of spelling them.
 * Every helper fails the running cmocka test with the store's own error when a write it expects
 * to pass is refused.
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
};

/* Opens a fresh in-memory store; the caller then sets its own named values. */
void gh_fx_open(struct gh_fixture *fx);
/* Closes the store and forgets every value. */
void gh_fx_close(struct gh_fixture *fx);

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
