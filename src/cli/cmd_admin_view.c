// SPDX-License-Identifier: Apache-2.0
/*
 * What people see of the admin API's answers: aligned tables for lists, "member: value" views for
 * single objects, the steps of an explain, and the one-time banner of a new access profile key;
 * plus the help texts of the admin commands. Everything shown comes from the network, so text is
 * printed with control characters replaced (a name must not be able to drive the terminal), and
 * members that hold plain-text keys are left out of every view but the banner of a create.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/admin_client.h"
#include "cli/cmd_admin.h"

#define GAP 2 /* spaces between table columns */

/* clang-format off */
static const struct gh_cli_column collection_columns[] = {
    {"ID", "id", GH_CELL_VALUE}, {"NAME", "name", GH_CELL_VALUE},
    {"VERSION", "version", GH_CELL_VALUE}, {"PATH", "path", GH_CELL_VALUE},
    {"UPSTREAM", "upstream", GH_CELL_VALUE}, {"ACTIVE", "active", GH_CELL_VALUE}, {NULL, NULL, 0}};
static const struct gh_cli_column endpoint_columns[] = {
    {"ID", "id", GH_CELL_VALUE}, {"METHOD", "method", GH_CELL_VALUE},
    {"PATH", "path", GH_CELL_VALUE}, {"NAME", "name", GH_CELL_VALUE},
    {"ACTIVE", "active", GH_CELL_VALUE}, {NULL, NULL, 0}};
static const struct gh_cli_column client_columns[] = {
    {"ID", "id", GH_CELL_VALUE}, {"NAME", "name", GH_CELL_VALUE},
    {"ACTIVE", "active", GH_CELL_VALUE}, {"DESCRIPTION", "description", GH_CELL_VALUE},
    {NULL, NULL, 0}};
static const struct gh_cli_column profile_columns[] = {
    {"ID", "id", GH_CELL_VALUE}, {"NAME", "name", GH_CELL_VALUE},
    {"CLIENT", "client_id", GH_CELL_VALUE}, {"AUTH", "auth_type", GH_CELL_VALUE},
    {"COLLECTIONS", "collection_ids", GH_CELL_VALUE}, {"ACTIVE", "active", GH_CELL_VALUE},
    {NULL, NULL, 0}};
static const struct gh_cli_column key_columns[] = {
    {"ID", "id", GH_CELL_VALUE}, {"PREFIX", "prefix", GH_CELL_VALUE},
    {"CREATED", "created_at", GH_CELL_VALUE}, {"EXPIRES", "expires_at", GH_CELL_VALUE},
    {NULL, NULL, 0}};
static const struct gh_cli_column policy_columns[] = {
    {"ID", "id", GH_CELL_VALUE}, {"NAME", "name", GH_CELL_VALUE},
    {"RATE_LIMIT", "rate_limit", GH_CELL_VALUE}, {"QUOTA", "quota", GH_CELL_VALUE},
    {NULL, NULL, 0}};
static const struct gh_cli_column provider_columns[] = {
    {"ID", "id", GH_CELL_VALUE}, {"ISSUER", "issuer", GH_CELL_VALUE},
    {"KEYS", "keys", GH_CELL_COUNT}, {"FETCHED_AT", "fetched_at", GH_CELL_VALUE},
    {"STALE", "stale", GH_CELL_VALUE}, {"LAST_ERROR", "last_error", GH_CELL_VALUE},
    {"URL", "url", GH_CELL_VALUE}, {NULL, NULL, 0}};
static const struct gh_cli_column audit_columns[] = {
    {"AT", "at", GH_CELL_VALUE}, {"ACTION", "action", GH_CELL_VALUE},
    {"KIND", "kind", GH_CELL_VALUE}, {"ID", "id", GH_CELL_VALUE},
    {"ACTOR", "actor", GH_CELL_VALUE}, {"REMOTE_ADDR", "remote_addr", GH_CELL_VALUE},
    {NULL, NULL, 0}};
/* clang-format on */

static const struct {
    const char *command;
    const struct gh_cli_column *columns;
} tables[] = {
    {"collections", collection_columns},
    {"endpoints", endpoint_columns},
    {"clients", client_columns},
    {"profiles", profile_columns},
    {"keys", key_columns},
    {"policies", policy_columns},
    {"providers", provider_columns},
    {"audit", audit_columns},
};

/* Members never shown in a view: a plain-text key belongs only in the banner of a create, and
 * jwt_key is write-only (SPEC §1). */
static int hidden_member(const char *name)
{
    return strcmp(name, "key") == 0 || strcmp(name, "jwt_key") == 0;
}

const struct gh_cli_column *gh_cli_view_columns(const char *name)
{
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (strcmp(tables[i].command, name) == 0)
            return tables[i].columns;
    return NULL;
}

void gh_cli_view_json(const json_t *value, FILE *out)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (text != NULL) {
        fprintf(out, "%s\n", text);
        free(text);
    }
}

static void write_compact(const json_t *v, FILE *f)
{
    /* json_dumps escapes control characters, so this is safe on a terminal as it is */
    char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    fputs(text != NULL ? text : "?", f);
    free(text);
}

static void write_scalar(const json_t *v, FILE *f)
{
    if (json_is_string(v))
        gh_cli_admin_fputs_safe(json_string_value(v), f);
    else if (json_is_integer(v))
        fprintf(f, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v))
        fputs(json_is_true(v) ? "true" : "false", f);
    else
        write_compact(v, f);
}

/* A value as text: "-" for nothing, N/S for a rate, a comma list for an array of scalars. */
static void write_value(const json_t *v, enum gh_cli_cell cell, FILE *f)
{
    json_t *requests = json_object_get(v, "requests"), *per = json_object_get(v, "per_seconds");
    const json_t *item;
    size_t i;

    if (cell == GH_CELL_COUNT && json_is_array(v)) {
        fprintf(f, "%zu", json_array_size(v));
    } else if (v == NULL || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0)) {
        fputc('-', f);
    } else if (json_is_integer(requests) && json_is_integer(per) && json_object_size(v) == 2) {
        fprintf(f, "%lld/%lld", (long long)json_integer_value(requests),
                (long long)json_integer_value(per));
    } else if (json_is_array(v)) {
        json_array_foreach (v, i, item) {
            if (i > 0)
                fputc(',', f);
            if (json_is_object(item) || json_is_array(item))
                write_compact(item, f);
            else
                write_scalar(item, f);
        }
    } else {
        write_scalar(v, f);
    }
}

static char *value_text(const json_t *v, enum gh_cli_cell cell)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL)
        return NULL;
    write_value(v, cell, f);
    fclose(f);
    return buf;
}

/* Columns on a terminal: UTF-8 continuation bytes take none. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s != '\0'; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void print_row(char *const *cells, const size_t *widths, size_t n, FILE *out)
{
    for (size_t c = 0; c < n; c++) {
        const char *text = cells[c] != NULL ? cells[c] : "?";
        fputs(text, out);
        if (c + 1 < n)
            fprintf(out, "%*s", (int)(widths[c] - text_width(text) + GAP), "");
    }
    fputc('\n', out);
}

void gh_cli_view_table(const struct gh_cli_column *columns, const json_t *rows, FILE *out)
{
    size_t n_cols = 0, n_rows = json_array_size(rows), widths[16];
    char **cells;

    while (columns != NULL && columns[n_cols].title != NULL && n_cols < 16)
        n_cols++;
    if (n_cols == 0 || (cells = calloc((n_rows + 1) * n_cols, sizeof *cells)) == NULL)
        return;
    for (size_t c = 0; c < n_cols; c++) {
        cells[c] = strdup(columns[c].title);
        widths[c] = strlen(columns[c].title);
    }
    for (size_t r = 0; r < n_rows; r++) {
        const json_t *row = json_array_get(rows, r);
        for (size_t c = 0; c < n_cols; c++) {
            char *text = value_text(json_object_get(row, columns[c].member), columns[c].cell);
            cells[(r + 1) * n_cols + c] = text;
            if (text != NULL && text_width(text) > widths[c])
                widths[c] = text_width(text);
        }
    }
    for (size_t r = 0; r <= n_rows; r++)
        print_row(cells + r * n_cols, widths, n_cols, out);
    for (size_t i = 0; i < (n_rows + 1) * n_cols; i++)
        free(cells[i]);
    free(cells);
}

void gh_cli_view_object(const json_t *obj, int summary, FILE *out)
{
    const char *name;
    const json_t *value;
    size_t width = 0;

    json_object_foreach ((json_t *)obj, name, value) {
        if (!hidden_member(name) && text_width(name) > width)
            width = text_width(name);
    }
    json_object_foreach ((json_t *)obj, name, value) {
        if (hidden_member(name))
            continue;
        gh_cli_admin_fputs_safe(name, out);
        fprintf(out, ":%*s", (int)(width - text_width(name) + 1), "");
        if (summary && json_is_array(value) && json_array_size(value) > 0)
            fprintf(out, "%zu", json_array_size(value));
        else
            write_value(value, GH_CELL_VALUE, out);
        fputc('\n', out);
    }
}

void gh_cli_view_key_banner(const char *key, FILE *out)
{
    fputs("\nAccess profile key (shown only once; store it now, it cannot be shown again):\n\n"
          "    ",
          out);
    gh_cli_admin_fputs_safe(key, out);
    fputs("\n\n", out);
}

/* The first of `names` that `step` has, as text; NULL when it has none. */
static const json_t *first_member(const json_t *step, const char *const *names)
{
    for (; *names != NULL; names++)
        if (json_object_get(step, *names) != NULL)
            return json_object_get(step, *names);
    return NULL;
}

static void print_step(size_t n, const json_t *step, FILE *out)
{
    static const char *const labels[] = {"step", "name", "check", NULL};
    static const char *const results[] = {"result", "outcome", "status", "ok", NULL};
    static const char *const details[] = {"detail", "message", "reason", NULL};
    const json_t *label = first_member(step, labels), *result = first_member(step, results);
    const json_t *detail = first_member(step, details);

    fprintf(out, "  %zu. ", n);
    if (!json_is_object(step) || (label == NULL && result == NULL && detail == NULL)) {
        write_value(step, GH_CELL_VALUE, out);
    } else {
        write_value(label, GH_CELL_VALUE, out);
        if (result != NULL) {
            fputs(": ", out);
            write_value(result, GH_CELL_VALUE, out);
        }
        if (detail != NULL) {
            fputs(" (", out);
            write_value(detail, GH_CELL_VALUE, out);
            fputc(')', out);
        }
    }
    fputc('\n', out);
}

void gh_cli_view_explain(const json_t *answer, FILE *out)
{
    const json_t *steps = json_object_get(answer, "steps"), *step;
    json_t *rest = json_is_object(answer) ? json_copy((json_t *)answer) : NULL;
    size_t i;

    fputs("steps:\n", out);
    json_array_foreach (steps, i, step) {
        print_step(i + 1, step, out);
    }
    if (json_array_size(steps) == 0)
        fputs("  (none)\n", out);
    if (rest != NULL) { /* the final status and reason, and whatever else the answer says */
        json_object_del(rest, "steps");
        gh_cli_view_object(rest, 0, out);
        json_decref(rest);
    }
}

/* The plan of an apply: one line per object created, changed or deleted, "create  profile  ID
 * NAME", then how many stay as they are. */
void gh_cli_view_plan(const json_t *plan, FILE *out)
{
    static const char *const kinds[][2] = {{"policies", "policy"},        {"clients", "client"},
                                           {"collections", "collection"}, {"endpoints", "endpoint"},
                                           {"profiles", "profile"},       {"keys", "key"}};
    static const char *const actions[][2] = {
        {"created", "create"}, {"changed", "change"}, {"deleted", "delete"}};
    long long unchanged = 0, listed = 0;

    fputs("plan:\n", out);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const json_t *of = json_object_get(plan, kinds[k][0]), *item;
        size_t i;
        unchanged += (long long)json_integer_value(json_object_get(of, "unchanged"));
        for (size_t a = 0; a < sizeof actions / sizeof actions[0]; a++) {
            json_array_foreach (json_object_get(of, actions[a][0]), i, item) {
                fprintf(out, "  %-7s %-11s ", actions[a][1], kinds[k][1]);
                write_value(json_object_get(item, "id"), GH_CELL_VALUE, out);
                fputs("  ", out);
                write_value(json_object_get(item, "name"), GH_CELL_VALUE, out);
                fputc('\n', out);
                listed++;
            }
        }
    }
    fprintf(out, "  %s%lld object(s) unchanged\n", listed == 0 ? "no change; " : "", unchanged);
}

void gh_cli_view_applied(const json_t *answer, const char *file, FILE *out)
{
    json_t *counts = json_is_object(answer) ? json_copy((json_t *)answer) : json_object();
    const json_t *keys = json_object_get(answer, "new_keys"), *key;
    int dry = json_is_true(json_object_get(answer, "dry_run"));
    size_t i;

    if (dry)
        fprintf(out, "plan of %s (dry run: nothing was changed)\n", file);
    else
        fprintf(out, "configuration applied from %s\n", file);
    json_object_del(counts, "plan");
    json_object_del(counts, "new_keys");
    json_object_del(counts, "dry_run");
    gh_cli_view_object(counts, 1, out);
    json_decref(counts);
    if (json_is_object(json_object_get(answer, "plan"))) {
        fputc('\n', out);
        gh_cli_view_plan(json_object_get(answer, "plan"), out);
    }
    if (dry || json_array_size(keys) == 0)
        return;
    fputs("\nNew access profile keys (shown only once; store them now, they cannot be shown "
          "again):\n\n",
          out);
    json_array_foreach (keys, i, key) {
        fputs("    ", out);
        write_value(json_object_get(key, "profile_id"), GH_CELL_VALUE, out);
        fputs(" (", out);
        write_value(json_object_get(key, "profile_name"), GH_CELL_VALUE, out);
        fputs("): ", out);
        write_value(json_object_get(key, "key"), GH_CELL_VALUE, out);
        fputc('\n', out);
    }
    fputc('\n', out);
}
