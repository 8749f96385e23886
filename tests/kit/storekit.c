// SPDX-License-Identifier: Apache-2.0
#define _GNU_SOURCE /* open_memstream */
#include "storekit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

void gh_fx_open(struct gh_fixture *fx)
{
    char error[256] = "";

    memset(fx, 0, sizeof *fx);
    if (gh_store_open("sqlite::memory:", &fx->s, error, sizeof error) != GH_OK)
        fail_msg("cannot open the store: %s", error);
}

void gh_fx_close(struct gh_fixture *fx)
{
    gh_store_close(fx->s);
    for (size_t i = 0; i < fx->n; i++) {
        free(fx->names[i]);
        free(fx->values[i]);
    }
    memset(fx, 0, sizeof *fx);
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
