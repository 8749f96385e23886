// SPDX-License-Identifier: Apache-2.0
/*
 * The admin API's command-line clients (SPEC §7): `collections`, `endpoints`, `clients`,
 * `profiles`, `keys`, `policies`, `providers`, `explain` and `config`. cmd_admin.c turns the
 * arguments into requests; cmd_admin_view.c turns the answers into tables and key: value views
 * for people and holds the help texts. This header is what the two share and what main.c calls.
 */
#ifndef GH_CLI_CMD_ADMIN_H
#define GH_CLI_CMD_ADMIN_H

#include <jansson.h>
#include <stdio.h>

/* 1 when `name` is one of the admin commands. */
int gh_cli_admin_is_command(const char *name);

/* Runs an admin command; argv[0] is the command's name. Returns the exit status: 0 on a 2xx
 * answer, 1 on an error answer, 2 on bad usage or when the server cannot be reached. */
int gh_cli_admin_main(int argc, char **argv);

/* Prints the help of admin command `name` to `out`: 0, or -1 when it is not an admin command. */
int gh_cli_admin_help(const char *name, FILE *out);

/* Calls `visit` for each flag admin command `name` takes: the options every admin command takes,
 * then the field flags of each of its verbs (a flag two verbs share comes once per verb), with 1
 * when it takes a value. For tests that check the help against the parser. 0, or -1 when `name`
 * is not an admin command. */
int gh_cli_admin_flags(const char *name,
                       void (*visit)(const char *flag, int takes_value, void *arg), void *arg);

/* How a table cell shows its member: the value (a {requests, per_seconds} object as "N/S", an
 * array as a comma list, null or nothing as "-"), or the length of an array. */
enum gh_cli_cell { GH_CELL_VALUE, GH_CELL_COUNT };

struct gh_cli_column {
    const char *title;
    const char *member;
    enum gh_cli_cell cell;
};

/* The columns of command `name`'s list table, ended by a NULL title; NULL for none. */
const struct gh_cli_column *gh_cli_view_columns(const char *name);

/* One header line and aligned columns, one row per object of the array `rows` (borrowed). */
void gh_cli_view_table(const struct gh_cli_column *columns, const json_t *rows, FILE *out);

/* "member: value" lines with aligned values. Members holding plain-text keys are never shown
 * here. `summary` shows arrays of objects as their count (a whole configuration). */
void gh_cli_view_object(const json_t *obj, int summary, FILE *out);

/* The plain text of a new access profile key, set apart, with the note that it is shown once. */
void gh_cli_view_key_banner(const char *key, FILE *out);

/* The steps of an explain answer and its final status and reason. */
void gh_cli_view_explain(const json_t *answer, FILE *out);

/* The plan of a configuration apply (created, changed, deleted per kind), one line each. */
void gh_cli_view_plan(const json_t *plan, FILE *out);

/* The answer of `config apply FILE`: the counts, the plan and, once, the keys made for new
 * profiles with their profile's id and name. */
void gh_cli_view_applied(const json_t *answer, const char *file, FILE *out);

/* Compact JSON of `value` on one line. */
void gh_cli_view_json(const json_t *value, FILE *out);

#endif
