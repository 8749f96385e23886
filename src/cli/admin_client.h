// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP side of the admin commands (SPEC §6, §7): where the admin API is, which token to
 * present, and one JSON request at a time over libcurl. It exists apart from the commands so that
 * every command talks to the API the same way: the same base URL rules, the same bearer token that
 * is never printed, the same time and size limits, and one way of telling "the server said no"
 * (exit 1) from "the server could not be reached or answered nonsense" (exit 2). The names carry
 * `gh_cli_` because the admin server's own `gh_admin_*` functions may one day share the binary.
 */
#ifndef GH_CLI_ADMIN_CLIENT_H
#define GH_CLI_ADMIN_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define GH_CLI_ADMIN_DEFAULT_URL "http://127.0.0.1:9901"
#define GH_CLI_ADMIN_TIMEOUT_MS  30000
#define GH_CLI_ADMIN_ANSWER_MAX                                                                    \
    (64u << 20) /* a whole configuration export fits; a runaway does not */
#define GH_CLI_ADMIN_TOKEN_MAX 4096

struct gh_cli_admin {
    char *base_url;     /* without a final '/' */
    char *token;        /* NULL when none was found (allowed only for a dry run); wiped on clear */
    char *token_source; /* "$GATEHOUSE_ADMIN_TOKEN" or the admin-token file's path, for messages */
    char *token_hint;   /* where a token was looked for when none was found */
    int dry_run;        /* print each request instead of sending it */
    int loopback;       /* the host is a loopback address: never through a proxy */
    void *curl;         /* CURL *, made on the first request */
};

/* One answer of the API. `status` is 0 after a dry run. `body` is the parsed JSON (a new
 * reference, NULL when the answer had no body). */
struct gh_cli_answer {
    long status;
    json_t *body;
};

/*
 * Resolves the base URL (`admin_url`, else $GATEHOUSE_ADMIN_URL, else the default) and the token
 * ($GATEHOUSE_ADMIN_TOKEN, else the file `admin-token` in the server's data directory, found as
 * `gatehouse serve` finds it: `data_dir`, else $GATEHOUSE_DATA_DIR, else the directory of the
 * SQLite store `db`, else of $GATEHOUSE_DB, else ./data). The strings are borrowed. A missing
 * token is an error unless `dry_run`. Returns 0, or the exit status 2 after printing why to
 * stderr; clear `c` either way.
 */
int gh_cli_admin_init(struct gh_cli_admin *c, const char *admin_url, const char *data_dir,
                      const char *db, int dry_run);
void gh_cli_admin_clear(struct gh_cli_admin *c);

/*
 * Sends `method` to base URL + `path` (which starts with '/' and may carry a query string already
 * escaped) with `body` (borrowed, NULL for none) as compact JSON. On 0 the server answered (with
 * any status) and `answer` holds it; the caller clears it. Returns 2 after printing to stderr,
 * naming the URL, when the server cannot be reached, times out, or answers something that is not
 * JSON. In a dry run prints the request to stdout instead and answers status 0.
 */
int gh_cli_admin_request(struct gh_cli_admin *c, const char *method, const char *path,
                         const json_t *body, struct gh_cli_answer *answer);
void gh_cli_answer_clear(struct gh_cli_answer *a);

/* 1 when the answer's status is 2xx. */
int gh_cli_answer_ok(const struct gh_cli_answer *a);

/* Prints "gatehouse: <status> <error>: <message> (field: <field>)" to stderr from the API's error
 * body (each part only when present), with a hint on where the token came from after a 401. */
void gh_cli_admin_print_error(const struct gh_cli_admin *c, const struct gh_cli_answer *a);

/* Prints text that came from the server with control characters shown as '?', so that a name
 * or message cannot drive the terminal. */
void gh_cli_admin_fputs_safe(const char *text, FILE *out);

/* `text` percent-escaped for a path segment or a query value; the caller frees it. NULL when out
 * of memory. */
char *gh_cli_admin_escape(const char *text);

#endif
