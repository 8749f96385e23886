// SPDX-License-Identifier: Apache-2.0
/*
 * The plan of an apply, worked out from what the store holds before and after it inside the
 * apply's own transaction, so it is exactly what happened (or, in a dry run, what would have):
 * defaults filled in, keys that follow their profile out, keys made for new profiles.
 */
#include "store/plan.h"

#include <stdio.h>
#include <string.h>

static const char *const kinds[] = {"policies",  "clients",  "collections",
                                    "endpoints", "profiles", "keys"};

static const json_t *by_id(const json_t *list, const char *id)
{
    size_t i;
    json_t *item;
    json_array_foreach ((json_t *)list, i, item) {
        const char *other = json_string_value(json_object_get(item, "id"));
        if (id != NULL && other != NULL && strcmp(other, id) == 0)
            return item;
    }
    return NULL;
}

/* The object as a person recognises it: {"id", "name"}; never a hash or a key. */
static json_t *entry(const json_t *item)
{
    const char *id = json_string_value(json_object_get(item, "id"));
    const char *name = json_string_value(json_object_get(item, "name"));
    const char *method = json_string_value(json_object_get(item, "method"));
    const char *path = json_string_value(json_object_get(item, "path"));
    char label[600];

    if (method != NULL && path != NULL && strncmp(id != NULL ? id : "", "ep_", 3) == 0) {
        snprintf(label, sizeof label, "%s %s", method, path);
        name = label;
    } else if (name == NULL && json_is_string(json_object_get(item, "profile_id"))) {
        /* a key by its profile: its prefix would mislead in a dry run, whose keys are not kept */
        snprintf(label, sizeof label, "of profile %s",
                 json_string_value(json_object_get(item, "profile_id")));
        name = label;
    }
    return json_pack("{s:s?, s:s?}", "id", id, "name", name);
}

/* 1 when the two documents differ in more than their timestamps. */
static int differs(const json_t *a, const json_t *b)
{
    json_t *x = json_copy((json_t *)a), *y = json_copy((json_t *)b);
    static const char *const stamps[] = {"created_at", "updated_at"};
    for (size_t i = 0; i < 2; i++) {
        json_object_del(x, stamps[i]);
        json_object_del(y, stamps[i]);
    }
    int rc = !json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return rc;
}

static json_t *plan_kind(const json_t *before, const json_t *after)
{
    json_t *created = json_array(), *changed = json_array(), *deleted = json_array(), *item;
    json_int_t unchanged = 0;
    size_t i;

    json_array_foreach ((json_t *)after, i, item) {
        const json_t *was = by_id(before, json_string_value(json_object_get(item, "id")));
        if (was == NULL)
            json_array_append_new(created, entry(item));
        else if (differs(was, item))
            json_array_append_new(changed, entry(item));
        else
            unchanged++;
    }
    json_array_foreach ((json_t *)before, i, item) {
        if (by_id(after, json_string_value(json_object_get(item, "id"))) == NULL)
            json_array_append_new(deleted, entry(item));
    }
    return json_pack("{s:o, s:o, s:o, s:I}", "created", created, "changed", changed, "deleted",
                     deleted, "unchanged", unchanged);
}

json_t *gh_store_plan(const json_t *before, const json_t *after)
{
    json_t *plan = json_object();
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        json_object_set_new(
            plan, kinds[k],
            plan_kind(json_object_get(before, kinds[k]), json_object_get(after, kinds[k])));
    return plan;
}

size_t gh_store_plan_deletions(const json_t *plan, char *text, size_t cap)
{
    size_t total = 0, have = 0;
    if (cap > 0)
        text[0] = '\0';
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t n = json_array_size(json_object_get(json_object_get(plan, kinds[k]), "deleted"));
        if (n == 0)
            continue;
        total += n;
        if (have < cap)
            have += (size_t)snprintf(text + have, cap - have, "%s%s: %zu", have ? ", " : "",
                                     kinds[k], n);
    }
    return total;
}
