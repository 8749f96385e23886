// SPDX-License-Identifier: Apache-2.0
/*
 * What applying a whole configuration changes (issue 10, item 13): the difference between the
 * store's documents before and after an apply, per kind, so that an operator sees what is
 * created, changed and deleted before anything is deleted without a word. Pure JSON work on the
 * two dumps; internal to src/store.
 */
#ifndef GH_STORE_PLAN_H
#define GH_STORE_PLAN_H

#include <jansson.h>
#include <stddef.h>

/*
 * {"<kind>": {"created":[{"id","name"}], "changed":[...], "deleted":[...], "unchanged": N}} for
 * every kind of `before` and `after` (dumps of the store, borrowed). Objects are the same one
 * when their ids are; changed when a field other than created_at and updated_at differs. "name"
 * says which object it is to a person (a name, "METHOD path" of an endpoint, "of profile ID" for
 * a key), never a secret. A new reference.
 */
json_t *gh_store_plan(const json_t *before, const json_t *after);

/* How many objects the plan deletes, over every kind, and per kind as "clients: 1, keys: 2" into
 * `text` (at most `cap` bytes). */
size_t gh_store_plan_deletions(const json_t *plan, char *text, size_t cap);

#endif
