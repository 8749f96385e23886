// SPDX-License-Identifier: Apache-2.0
/*
 * The admin commands as data: one table of routes (command, verb, HTTP method, path, what the
 * answer is) and one table of field flags per object kind (flag, JSON member, how its value is
 * read), so that adding a field is one line and every command parses, checks and reports the same
 * way. Values are checked strictly here (booleans are only "true"/"false", numbers only digits)
 * so that a typo is a usage error before anything is sent; what a value means is the server's to
 * judge, and its 422 names the field.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/admin_client.h"
#include "cli/cli.h"
#include "cli/cmd_admin.h"

#define PAGE_SIZE       100
#define AUDIT_DEFAULT   50 /* audit entries shown without --limit */
#define MAX_ARGS        4
#define KEY_FILE_MAX    (64 * 1024)
#define CONFIG_FILE_MAX (16 * 1024 * 1024)
#define JSON_INT_MAX    9007199254740991LL /* 2^53 - 1: exact in every JSON parser */

enum ftype {
    FT_STRING,    /* a JSON string */
    FT_INT,       /* a whole number >= 0 */
    FT_BOOL,      /* true or false */
    FT_LIST,      /* a comma list as an array of strings; "" is [] */
    FT_NULLABLE,  /* a string; "" is null */
    FT_KEY_FILE,  /* the text of a file (64 KiB at most) as a string */
    FT_RATE,      /* N/SECONDS as {"requests":N,"per_seconds":S}; "none" is null */
    FT_HEADER,    /* "Name: value" into the "headers" object */
    FT_QUERY,     /* no value: adds `member` to the query string */
    FT_QUERY_ARG, /* a value: adds `member`=VALUE (escaped) to the query string */
};

struct flag {
    const char *name;
    const char *member;
    enum ftype type;
};

enum shape {
    SHAPE_LIST,
    SHAPE_OBJECT,
    SHAPE_NEW_KEY,
    SHAPE_DELETED,
    SHAPE_EXPLAIN,
    SHAPE_EXPORT,
    SHAPE_APPLIED
};

enum body { BODY_NONE, BODY_CREATE, BODY_PATCH, BODY_FILE };

struct route {
    const char *command, *verb; /* verb NULL: the command takes none (explain) */
    const char *method, *path;  /* each "{}" of the path takes the next argument, escaped */
    const char *args;           /* the arguments (ids, then FILE), for usage messages */
    enum shape shape;
    enum body body;
    const struct flag *flags;
    int file_arg; /* 0 none, 1 an optional FILE after the arguments, 2 a required one */
};

static const struct flag collection_flags[] = {
    {"--name", "name", FT_STRING},
    {"--version", "version", FT_STRING},
    {"--path", "path", FT_STRING},
    {"--upstream", "upstream", FT_STRING},
    {"--timeout-ms", "timeout_ms", FT_INT},
    {"--active", "active", FT_BOOL},
    {"--forward-authorization", "forward_authorization", FT_BOOL},
    {NULL, NULL, FT_STRING},
};

static const struct flag endpoint_flags[] = {
    {"--method", "method", FT_STRING}, {"--path", "path", FT_STRING},
    {"--name", "name", FT_STRING},     {"--timeout-ms", "timeout_ms", FT_INT},
    {"--active", "active", FT_BOOL},   {NULL, NULL, FT_STRING},
};

static const struct flag client_flags[] = {
    {"--name", "name", FT_STRING},
    {"--description", "description", FT_STRING},
    {"--active", "active", FT_BOOL},
    {NULL, NULL, FT_STRING},
};

static const struct flag profile_flags[] = {
    {"--client", "client_id", FT_STRING},
    {"--name", "name", FT_STRING},
    {"--auth-type", "auth_type", FT_STRING},
    {"--collections", "collection_ids", FT_LIST},
    {"--discovery-url", "oidc_discovery_url", FT_STRING},
    {"--jwks-uri", "oidc_jwks_uri", FT_STRING},
    {"--jwt-key-file", "jwt_key", FT_KEY_FILE},
    {"--key-claim", "key_claim", FT_STRING},
    {"--policy", "policy_id", FT_NULLABLE},
    {"--required-claims", "required_claims", FT_LIST},
    {"--allowed-issuers", "allowed_issuers", FT_LIST},
    {"--audiences", "audiences", FT_LIST},
    {"--algorithms", "algorithms", FT_LIST},
    {"--leeway", "leeway_seconds", FT_INT},
    {"--ip-allow", "ip_allow", FT_LIST},
    {"--ip-deny", "ip_deny", FT_LIST},
    {"--token-types", "token_types", FT_LIST},
    {"--active", "active", FT_BOOL},
    {"--no-validate", "validate=false", FT_QUERY},
    {NULL, NULL, FT_STRING},
};

static const struct flag key_flags[] = {
    {"--grace-seconds", "grace_seconds", FT_INT},
    {NULL, NULL, FT_STRING},
};

static const struct flag policy_flags[] = {
    {"--name", "name", FT_STRING},
    {"--rate-limit", "rate_limit", FT_RATE},
    {"--quota", "quota", FT_RATE},
    {NULL, NULL, FT_STRING},
};

static const struct flag explain_flags[] = {
    {"--method", "method", FT_STRING},
    {"--path", "path", FT_STRING},
    {"--header", "headers", FT_HEADER},
    {"--client-ip", "client_ip", FT_STRING},
    {NULL, NULL, FT_STRING},
};

static const struct flag export_flags[] = {
    {"--secrets", "secrets=true", FT_QUERY},
    {NULL, NULL, FT_STRING},
};

/* --dry-run of apply asks the server for the plan (dry_run=true) instead of printing the request:
 * only the server can say what an apply would create, change and delete */
static const struct flag apply_flags[] = {
    {"--prune", "prune=true", FT_QUERY},
    {"--no-validate", "validate=false", FT_QUERY},
    {NULL, NULL, FT_STRING},
};

static const struct flag audit_flags[] = {
    {"--kind", "kind", FT_QUERY_ARG},
    {"--id", "id", FT_QUERY_ARG},
    {NULL, NULL, FT_STRING},
};

/* clang-format off */
static const struct route routes[] = {
    {"collections", "list",   "GET",    "/v1/collections",    "", SHAPE_LIST, BODY_NONE, NULL, 0},
    {"collections", "get",    "GET",    "/v1/collections/{}", "ID", SHAPE_OBJECT, BODY_NONE, NULL, 0},
    {"collections", "create", "POST",   "/v1/collections",    "", SHAPE_OBJECT, BODY_CREATE, collection_flags, 0},
    {"collections", "update", "PATCH",  "/v1/collections/{}", "ID", SHAPE_OBJECT, BODY_PATCH, collection_flags, 0},
    {"collections", "delete", "DELETE", "/v1/collections/{}", "ID", SHAPE_DELETED, BODY_NONE, NULL, 0},
    {"endpoints", "list",   "GET",    "/v1/collections/{}/endpoints", "COLLECTION_ID", SHAPE_LIST, BODY_NONE, NULL, 0},
    {"endpoints", "get",    "GET",    "/v1/endpoints/{}",             "ID", SHAPE_OBJECT, BODY_NONE, NULL, 0},
    {"endpoints", "create", "POST",   "/v1/collections/{}/endpoints", "COLLECTION_ID", SHAPE_OBJECT, BODY_CREATE, endpoint_flags, 0},
    {"endpoints", "update", "PATCH",  "/v1/endpoints/{}",             "ID", SHAPE_OBJECT, BODY_PATCH, endpoint_flags, 0},
    {"endpoints", "delete", "DELETE", "/v1/endpoints/{}",             "ID", SHAPE_DELETED, BODY_NONE, NULL, 0},
    {"clients", "list",   "GET",    "/v1/clients",    "", SHAPE_LIST, BODY_NONE, NULL, 0},
    {"clients", "get",    "GET",    "/v1/clients/{}", "ID", SHAPE_OBJECT, BODY_NONE, NULL, 0},
    {"clients", "create", "POST",   "/v1/clients",    "", SHAPE_OBJECT, BODY_CREATE, client_flags, 0},
    {"clients", "update", "PATCH",  "/v1/clients/{}", "ID", SHAPE_OBJECT, BODY_PATCH, client_flags, 0},
    {"clients", "delete", "DELETE", "/v1/clients/{}", "ID", SHAPE_DELETED, BODY_NONE, NULL, 0},
    {"profiles", "list",   "GET",    "/v1/profiles",    "", SHAPE_LIST, BODY_NONE, NULL, 0},
    {"profiles", "get",    "GET",    "/v1/profiles/{}", "ID", SHAPE_OBJECT, BODY_NONE, NULL, 0},
    {"profiles", "create", "POST",   "/v1/profiles",    "", SHAPE_NEW_KEY, BODY_CREATE, profile_flags, 0},
    {"profiles", "update", "PATCH",  "/v1/profiles/{}", "ID", SHAPE_OBJECT, BODY_PATCH, profile_flags, 0},
    {"profiles", "delete", "DELETE", "/v1/profiles/{}", "ID", SHAPE_DELETED, BODY_NONE, NULL, 0},
    {"keys", "list",   "GET",    "/v1/profiles/{}/keys",    "PROFILE_ID", SHAPE_LIST, BODY_NONE, NULL, 0},
    {"keys", "create", "POST",   "/v1/profiles/{}/keys",    "PROFILE_ID", SHAPE_NEW_KEY, BODY_CREATE, key_flags, 0},
    {"keys", "delete", "DELETE", "/v1/profiles/{}/keys/{}", "PROFILE_ID KEY_ID", SHAPE_DELETED, BODY_NONE, NULL, 0},
    {"policies", "list",   "GET",    "/v1/policies",    "", SHAPE_LIST, BODY_NONE, NULL, 0},
    {"policies", "get",    "GET",    "/v1/policies/{}", "ID", SHAPE_OBJECT, BODY_NONE, NULL, 0},
    {"policies", "create", "POST",   "/v1/policies",    "", SHAPE_OBJECT, BODY_CREATE, policy_flags, 0},
    {"policies", "update", "PATCH",  "/v1/policies/{}", "ID", SHAPE_OBJECT, BODY_PATCH, policy_flags, 0},
    {"policies", "delete", "DELETE", "/v1/policies/{}", "ID", SHAPE_DELETED, BODY_NONE, NULL, 0},
    {"providers", "list",    "GET",  "/v1/providers",            "", SHAPE_LIST, BODY_NONE, NULL, 0},
    {"providers", "get",     "GET",  "/v1/providers/{}",         "ID", SHAPE_OBJECT, BODY_NONE, NULL, 0},
    {"providers", "refresh", "POST", "/v1/providers/{}/refresh", "ID", SHAPE_OBJECT, BODY_NONE, NULL, 0},
    {"explain", NULL, "POST", "/v1/explain", "", SHAPE_EXPLAIN, BODY_CREATE, explain_flags, 0},
    {"config", "export", "GET", "/v1/config", "[FILE]", SHAPE_EXPORT, BODY_NONE, export_flags, 1},
    {"config", "apply",  "PUT", "/v1/config", "FILE", SHAPE_APPLIED, BODY_FILE, apply_flags, 2},
    {"audit", NULL, "GET", "/v1/audit", "", SHAPE_LIST, BODY_NONE, audit_flags, 0},
};
/* clang-format on */

#define N_ROUTES (sizeof routes / sizeof routes[0])

/* Options every admin command takes; `verbs` limits where they make sense. */
enum global { G_ADMIN_URL, G_DB, G_JSON, G_DRY_RUN, G_LIMIT, G_DATA, G_DATA_DIR };

static const struct {
    const char *name;
    int takes_value;
    enum global id;
} globals[] = {
    {"--admin-url", 1, G_ADMIN_URL}, {"--db", 1, G_DB},       {"--json", 0, G_JSON},
    {"--dry-run", 0, G_DRY_RUN},     {"--limit", 1, G_LIMIT}, {"--data", 1, G_DATA},
    {"--data-dir", 1, G_DATA_DIR},
};

/* One parsed command line. */
struct invocation {
    const struct route *route;
    const char *admin_url, *db, *data_dir, *file;
    const char *args[MAX_ARGS];
    size_t n_args;
    int json, dry_run;
    long long limit;  /* 0: every page */
    json_t *data;     /* --data */
    json_t *fields;   /* from the field flags; they win over --data */
    char query[1024]; /* from FT_QUERY flags, "a=b&c=d" */
};

__attribute__((format(printf, 2, 3))) static int usage_error(const char *command, const char *fmt,
                                                             ...)
{
    va_list ap;
    fputs("gatehouse: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nrun `gatehouse help %s` for usage\n", command);
    return GH_EXIT_USAGE;
}

int gh_cli_admin_is_command(const char *name)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        if (strcmp(routes[i].command, name) == 0)
            return 1;
    return 0;
}

static size_t count_placeholders(const char *path)
{
    size_t n = 0;
    for (const char *p = strstr(path, "{}"); p != NULL; p = strstr(p + 2, "{}"))
        n++;
    return n;
}

/* ---- values of flags ---- */

static int parse_count(const char *text, long long *out)
{
    char *end;
    long long v;

    if (*text < '0' || *text > '9') /* strtoll would take blanks and signs */
        return -1;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || v > JSON_INT_MAX)
        return -1;
    *out = v;
    return 0;
}

static json_t *list_value(const char *text)
{
    json_t *list = json_array();
    const char *p = text;

    while (list != NULL && *text != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 0 || json_array_append_new(list, json_stringn(p, len)) != 0) {
            json_decref(list);
            return NULL;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return list;
}

static json_t *rate_value(const char *text)
{
    long long requests, seconds;
    const char *slash = strchr(text, '/');
    char head[32];

    if (strcmp(text, "none") == 0)
        return json_null();
    if (slash == NULL || (size_t)(slash - text) >= sizeof head)
        return NULL;
    memcpy(head, text, (size_t)(slash - text));
    head[slash - text] = '\0';
    if (parse_count(head, &requests) != 0 || parse_count(slash + 1, &seconds) != 0 ||
        requests == 0 || seconds == 0)
        return NULL;
    return json_pack("{s:I, s:I}", "requests", (json_int_t)requests, "per_seconds",
                     (json_int_t)seconds);
}

/* The key file as one JSON string; its copy in memory is wiped, since it may be an HMAC secret. */
static int key_file_value(const char *command, const char *path, json_t **out)
{
    char *data;
    size_t len;
    int rc = gh_cli_read_file(path, KEY_FILE_MAX, &data, &len);

    if (rc == -2)
        return usage_error(command, "--jwt-key-file %s is larger than 64 KiB", path);
    if (rc != 0)
        return usage_error(command, "cannot read --jwt-key-file %s: %s", path, strerror(errno));
    *out = strlen(data) == len ? json_stringn(data, len) : NULL;
    OPENSSL_cleanse(data, len);
    free(data);
    if (*out == NULL)
        return usage_error(command, "--jwt-key-file %s is not UTF-8 text (PEM, JWK or a secret)",
                           path);
    return GH_EXIT_OK;
}

/* "Name: value" into fields.headers; a repeated name is joined with ", " as HTTP folds it. */
static int add_header(struct invocation *inv, const char *text)
{
    const char *colon = strchr(text, ':'), *value;
    json_t *headers = json_object_get(inv->fields, "headers");
    char *name;
    int rc = -1;

    if (colon == NULL || colon == text || strcspn(text, " \t") < (size_t)(colon - text))
        return -1;
    for (value = colon + 1; *value == ' ' || *value == '\t'; value++)
        continue;
    if (headers == NULL && json_object_set_new(inv->fields, "headers", json_object()) == 0)
        headers = json_object_get(inv->fields, "headers");
    if (headers == NULL || (name = strndup(text, (size_t)(colon - text))) == NULL)
        return -1;
    const char *before = json_string_value(json_object_get(headers, name));
    if (before == NULL) {
        rc = json_object_set_new(headers, name, json_string(value));
    } else {
        size_t n = strlen(before) + strlen(value) + 3;
        char *joined = malloc(n);
        if (joined != NULL) {
            snprintf(joined, n, "%s, %s", before, value);
            rc = json_object_set_new(headers, name, json_string(joined));
        }
        free(joined);
    }
    free(name);
    return rc;
}

static int add_query(struct invocation *inv, const char *pair)
{
    size_t have = strlen(inv->query);
    if (strstr(inv->query, pair) != NULL)
        return GH_EXIT_OK;
    if (have + strlen(pair) + 2 > sizeof inv->query)
        return GH_EXIT_USAGE;
    snprintf(inv->query + have, sizeof inv->query - have, "%s%s", have ? "&" : "", pair);
    return GH_EXIT_OK;
}

/* Reads the value of field flag `f` into inv->fields. */
static int set_field(struct invocation *inv, const struct flag *f, const char *text)
{
    const char *command = inv->route->command;
    json_t *v = NULL;
    long long n;

    switch (f->type) {
    case FT_STRING:
        v = json_string(text);
        break;
    case FT_INT:
        v = parse_count(text, &n) == 0 ? json_integer((json_int_t)n) : NULL;
        if (v == NULL)
            return usage_error(command, "%s takes a whole number, not '%s'", f->name, text);
        break;
    case FT_BOOL:
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
            return usage_error(command, "%s takes true or false, not '%s'", f->name, text);
        v = json_boolean(strcmp(text, "true") == 0);
        break;
    case FT_LIST:
        if ((v = list_value(text)) == NULL)
            return usage_error(command, "%s takes a comma list without empty items, not '%s'",
                               f->name, text);
        break;
    case FT_NULLABLE:
        v = *text == '\0' ? json_null() : json_string(text);
        break;
    case FT_KEY_FILE: {
        int rc = key_file_value(command, text, &v);
        if (rc != GH_EXIT_OK)
            return rc;
        break;
    }
    case FT_RATE:
        if ((v = rate_value(text)) == NULL)
            return usage_error(command, "%s takes REQUESTS/SECONDS (e.g. 100/60) or none, not '%s'",
                               f->name, text);
        break;
    case FT_HEADER:
        if (add_header(inv, text) != 0)
            return usage_error(command, "%s takes 'Name: value', not '%s'", f->name, text);
        return GH_EXIT_OK;
    case FT_QUERY:
        return add_query(inv, f->member);
    case FT_QUERY_ARG: {
        char *escaped = gh_cli_admin_escape(text), pair[512];
        int fits = escaped != NULL &&
                   (size_t)snprintf(pair, sizeof pair, "%s=%s", f->member, escaped) < sizeof pair;
        free(escaped);
        if (!fits || add_query(inv, pair) != GH_EXIT_OK)
            return usage_error(command, "%s: the value is too long", f->name);
        return GH_EXIT_OK;
    }
    }
    if (v == NULL)
        return usage_error(command, "%s: the value is not UTF-8 text", f->name);
    json_object_set_new(inv->fields, f->member, v);
    return GH_EXIT_OK;
}

/* ---- the command line ---- */

/* Matches option `name` at argv[*i] as "--name VALUE", "--name=VALUE" or, without a value,
 * "--name". 1 when it matched (*value set when it takes one), 0 when not, -1 when its value is
 * missing. */
static int match_option(int argc, char **argv, int *i, const char *name, int takes_value,
                        const char **value)
{
    size_t len = strlen(name);
    const char *arg = argv[*i];

    if (strncmp(arg, name, len) != 0)
        return 0;
    if (!takes_value)
        return arg[len] == '\0';
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
    if (arg[len] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

static int set_global(struct invocation *inv, enum global id, const char *value)
{
    const struct route *r = inv->route;
    json_error_t error;

    switch (id) {
    case G_ADMIN_URL:
        inv->admin_url = value;
        break;
    case G_DB:
        inv->db = value;
        break;
    case G_DATA_DIR:
        inv->data_dir = value;
        break;
    case G_JSON:
        inv->json = 1;
        break;
    case G_DRY_RUN:
        inv->dry_run = 1;
        break;
    case G_LIMIT:
        if (r->shape != SHAPE_LIST)
            return usage_error(r->command, "--limit applies to list only");
        if (parse_count(value, &inv->limit) != 0 || inv->limit == 0)
            return usage_error(r->command, "--limit takes a whole number above 0, not '%s'", value);
        break;
    case G_DATA:
        if (r->body != BODY_CREATE && r->body != BODY_PATCH)
            return usage_error(r->command, "--data applies to create and update only");
        json_decref(inv->data);
        inv->data = json_loads(value, JSON_REJECT_DUPLICATES, &error);
        if (!json_is_object(inv->data))
            return usage_error(r->command, "--data takes one JSON object: %s",
                               inv->data == NULL ? error.text : "not an object");
        break;
    }
    return GH_EXIT_OK;
}

/* One option at argv[*i]: a global one or a field flag of the route. */
static int parse_option(struct invocation *inv, int argc, char **argv, int *i)
{
    const char *command = inv->route->command, *value = NULL;
    int m;

    for (size_t g = 0; g < sizeof globals / sizeof globals[0]; g++) {
        if ((m = match_option(argc, argv, i, globals[g].name, globals[g].takes_value, &value)) < 0)
            return usage_error(command, "option %s needs a value", argv[*i]);
        if (m > 0)
            return set_global(inv, globals[g].id, value);
    }
    for (const struct flag *f = inv->route->flags; f != NULL && f->name != NULL; f++) {
        if ((m = match_option(argc, argv, i, f->name, f->type != FT_QUERY, &value)) < 0)
            return usage_error(command, "option %s needs a value", argv[*i]);
        if (m > 0)
            return set_field(inv, f, value);
    }
    return usage_error(command, "unknown option '%s' for %s%s%s", argv[*i], command,
                       inv->route->verb ? " " : "", inv->route->verb ? inv->route->verb : "");
}

static const struct route *find_route(const char *command, const char *verb)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        if (strcmp(routes[i].command, command) == 0 &&
            (routes[i].verb == NULL || (verb != NULL && strcmp(routes[i].verb, verb) == 0)))
            return &routes[i];
    return NULL;
}

static void list_verbs(const char *command, char *out, size_t cap)
{
    size_t have = 0;
    out[0] = '\0';
    for (size_t i = 0; i < N_ROUTES && have < cap; i++)
        if (strcmp(routes[i].command, command) == 0 && routes[i].verb != NULL)
            have +=
                (size_t)snprintf(out + have, cap - have, "%s%s", have ? ", " : "", routes[i].verb);
}

/* Takes the positional arguments in order: the path's ids, then the FILE if the route has one. */
static int check_positionals(struct invocation *inv, const char **pos, size_t n_pos)
{
    static const char *const explain_needs[] = {"method", "path"};
    const struct route *r = inv->route;
    size_t ids = count_placeholders(r->path), max = ids + (r->file_arg ? 1 : 0);
    size_t min = ids + (r->file_arg == 2 ? 1 : 0);

    if (n_pos < min || n_pos > max)
        return usage_error(r->command, "%s%s%s takes %s", r->command, r->verb ? " " : "",
                           r->verb ? r->verb : "", *r->args ? r->args : "no arguments");
    for (size_t i = 0; i < ids; i++)
        inv->args[inv->n_args++] = pos[i];
    inv->file = n_pos > ids ? pos[ids] : NULL;
    if (r->body == BODY_PATCH && json_object_size(inv->fields) == 0 && inv->data == NULL)
        return usage_error(r->command, "nothing to change: give a field flag or --data");
    for (size_t i = 0; r->shape == SHAPE_EXPLAIN && i < 2; i++)
        if (json_object_get(inv->fields, explain_needs[i]) == NULL &&
            json_object_get(inv->data, explain_needs[i]) == NULL)
            return usage_error(r->command, "explain needs --%s", explain_needs[i]);
    return GH_EXIT_OK;
}

static int parse_invocation(struct invocation *inv, int argc, char **argv)
{
    const char *pos[MAX_ARGS + 2];
    size_t n_pos = 0;
    int i = inv->route->verb != NULL ? 2 : 1, rc, options_end = 0;

    for (; i < argc; i++) {
        if (!options_end && strcmp(argv[i], "--") == 0) {
            options_end = 1;
        } else if (!options_end && strncmp(argv[i], "--", 2) == 0) {
            if ((rc = parse_option(inv, argc, argv, &i)) != GH_EXIT_OK)
                return rc;
        } else if (n_pos == sizeof pos / sizeof pos[0]) {
            return usage_error(inv->route->command, "too many arguments");
        } else {
            pos[n_pos++] = argv[i];
        }
    }
    return check_positionals(inv, pos, n_pos);
}

/* ---- requests ---- */

/* The route's path with its arguments escaped in, then the query; the caller frees it. */
static char *build_path(const struct invocation *inv, const char *extra_query)
{
    size_t cap = strlen(inv->route->path) + strlen(inv->query) + 2 +
                 (extra_query ? strlen(extra_query) + 1 : 0);
    char *escaped[MAX_ARGS] = {0}, *out = NULL;
    const char *p = inv->route->path;
    size_t k = 0, have = 0;

    for (size_t i = 0; i < inv->n_args; i++) {
        if ((escaped[i] = gh_cli_admin_escape(inv->args[i])) == NULL)
            goto out;
        cap += strlen(escaped[i]);
    }
    if ((out = malloc(cap)) == NULL)
        goto out;
    for (const char *hole; (hole = strstr(p, "{}")) != NULL; p = hole + 2)
        have +=
            (size_t)snprintf(out + have, cap - have, "%.*s%s", (int)(hole - p), p, escaped[k++]);
    have += (size_t)snprintf(out + have, cap - have, "%s", p);
    if (*inv->query || extra_query)
        snprintf(out + have, cap - have, "?%s%s%s", inv->query,
                 *inv->query && extra_query ? "&" : "", extra_query ? extra_query : "");
out:
    for (size_t i = 0; i < MAX_ARGS; i++)
        free(escaped[i]);
    return out;
}

/* The request body: --data with the field flags on top, or the configuration FILE. */
static int build_body(const struct invocation *inv, json_t **body)
{
    const char *command = inv->route->command;
    json_error_t error;
    char *text;
    size_t len;
    int rc;

    *body = NULL;
    if (inv->route->body == BODY_NONE)
        return GH_EXIT_OK;
    if (inv->route->body != BODY_FILE) {
        *body = inv->data != NULL ? json_deep_copy(inv->data) : json_object();
        if (*body == NULL || json_object_update(*body, inv->fields) != 0)
            return GH_EXIT_USAGE;
        if (inv->route->shape == SHAPE_EXPLAIN && json_object_get(*body, "headers") == NULL)
            json_object_set_new(*body, "headers", json_object());
        return GH_EXIT_OK;
    }
    rc = gh_cli_read_file(inv->file, CONFIG_FILE_MAX, &text, &len);
    if (rc != 0)
        return usage_error(command, "cannot read %s: %s", inv->file,
                           rc == -2 ? "larger than 16 MiB" : strerror(errno));
    *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    OPENSSL_cleanse(text, len); /* an export with --secrets holds key hashes */
    free(text);
    if (*body == NULL)
        return usage_error(command, "%s is not one JSON object: %s (line %d)", inv->file,
                           error.text, error.line);
    if (!json_is_object(*body))
        return usage_error(command, "%s is not one JSON object", inv->file);
    return GH_EXIT_OK;
}

/* ---- answers ---- */

/* `text` (malloc'd) with every `from` replaced by `to`; a new malloc'd string (NULL: no memory). */
static char *replace_all(char *text, const char *from, const char *to)
{
    size_t n = 0, from_len = strlen(from), to_len = strlen(to);
    for (const char *p = strstr(text, from); p != NULL; p = strstr(p + from_len, from))
        n++;
    char *out = n > 0 ? malloc(strlen(text) + n * to_len + 1) : NULL, *w = out;
    if (out == NULL) {
        if (n > 0)
            free(text);
        return n > 0 ? NULL : text;
    }
    for (const char *p = text, *hit; *p != '\0'; p = hit + from_len) {
        if ((hit = strstr(p, from)) == NULL) {
            strcpy(w, p);
            break;
        }
        memcpy(w, p, (size_t)(hit - p));
        w += hit - p;
        memcpy(w, to, to_len);
        w += to_len;
        *w = '\0';
    }
    free(text);
    return out;
}

/* The API's hints name its own query flags ("save with ?validate=false"); at the command line
 * they name the route's flag for it ("--no-validate"), so the hint works where it is read. */
static void print_api_error(const struct gh_cli_admin *c, const struct invocation *inv,
                            const struct gh_cli_answer *a)
{
    const char *message = json_string_value(json_object_get(a->body, "message"));
    struct gh_cli_answer shown = {a->status, json_is_object(a->body) ? json_copy(a->body) : NULL};
    char *text = message != NULL ? strdup(message) : NULL, api[96];

    for (const struct flag *f = inv->route->flags; text != NULL && f && f->name; f++) {
        if (f->type != FT_QUERY)
            continue;
        snprintf(api, sizeof api, "?%s", f->member);
        text = replace_all(text, api, f->name);
    }
    if (text != NULL && shown.body != NULL)
        json_object_set_new(shown.body, "message", json_string(text));
    gh_cli_admin_print_error(c, shown.body != NULL ? &shown : a);
    if (json_is_object(json_object_get(a->body, "plan"))) /* a refused apply: what it would do */
        gh_cli_view_plan(json_object_get(a->body, "plan"), stderr);
    free(text);
    json_decref(shown.body);
}

static int unexpected(const struct gh_cli_admin *c, const char *what)
{
    fprintf(stderr, "gatehouse: unexpected answer from %s: %s\n", c->base_url, what);
    return GH_EXIT_USAGE;
}

/* One page of a list, `want` objects at most, after cursor `after` (NULL: the first page). */
static int fetch_page(struct gh_cli_admin *c, const struct invocation *inv, const char *after,
                      long long want, struct gh_cli_answer *answer)
{
    char *escaped = after != NULL ? gh_cli_admin_escape(after) : NULL, *path = NULL;
    char query[64 + 2048];
    int rc = GH_EXIT_USAGE;

    if (after != NULL && (escaped == NULL || strlen(escaped) > 2048)) {
        free(escaped);
        return unexpected(c, "a cursor longer than 2 KiB");
    }
    snprintf(query, sizeof query, "limit=%lld%s%s", want, escaped ? "&after=" : "",
             escaped ? escaped : "");
    if ((path = build_path(inv, query)) != NULL)
        rc = gh_cli_admin_request(c, "GET", path, NULL, answer);
    free(path);
    free(escaped);
    if (rc != GH_EXIT_OK || c->dry_run)
        return rc;
    if (!gh_cli_answer_ok(answer)) {
        print_api_error(c, inv, answer);
        return GH_EXIT_FAIL;
    }
    if (!json_is_array(json_object_get(answer->body, "data")))
        return unexpected(c, "a list without a \"data\" array");
    json_t *next = json_object_get(answer->body, "next");
    if (next != NULL && !json_is_null(next) && !json_is_string(next))
        return unexpected(c, "a \"next\" cursor that is neither a string nor null");
    return GH_EXIT_OK;
}

/* Follows `next` until it is null or --limit objects are in, so the table shows everything. */
static int run_list(struct gh_cli_admin *c, const struct invocation *inv)
{
    json_t *all = json_array(), *next = NULL, *item;
    struct gh_cli_answer answer = {0};
    char *after = NULL;
    size_t i;
    int rc;

    for (;;) {
        long long have = (long long)json_array_size(all), want = PAGE_SIZE;
        if (inv->limit > 0 && inv->limit - have < want)
            want = inv->limit - have;
        gh_cli_answer_clear(&answer);
        if ((rc = fetch_page(c, inv, after, want, &answer)) != GH_EXIT_OK || c->dry_run)
            goto out;
        json_array_foreach (json_object_get(answer.body, "data"), i, item) {
            if (inv->limit == 0 || (long long)json_array_size(all) < inv->limit)
                json_array_append(all, item);
        }
        json_decref(next);
        next = json_incref(json_object_get(answer.body, "next"));
        if ((inv->limit > 0 && (long long)json_array_size(all) >= inv->limit) ||
            !json_is_string(next))
            break;
        if (after != NULL && strcmp(after, json_string_value(next)) == 0) {
            rc = unexpected(c, "the same \"next\" cursor twice; stopping");
            goto out;
        }
        free(after);
        if ((after = strdup(json_string_value(next))) == NULL) {
            rc = GH_EXIT_USAGE;
            goto out;
        }
    }
    if (inv->json) {
        json_t *merged = json_pack("{s:O, s:O}", "data", all, "next", next ? next : json_null());
        gh_cli_view_json(merged, stdout);
        json_decref(merged);
    } else {
        gh_cli_view_table(gh_cli_view_columns(inv->route->command), all, stdout);
    }
out:
    gh_cli_answer_clear(&answer);
    json_decref(all);
    json_decref(next);
    free(after);
    return rc;
}

/* The pretty configuration, to FILE (made 0600: it names every upstream) or standard output. */
static int write_export(const struct invocation *inv, const json_t *config)
{
    char *text = json_dumps(config, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    size_t len = text != NULL ? strlen(text) : 0;
    int fd = -1, rc = GH_EXIT_USAGE;

    if (text == NULL)
        return GH_EXIT_USAGE;
    if (inv->file == NULL || strcmp(inv->file, "-") == 0) {
        rc = printf("%s\n", text) < 0 ? GH_EXIT_USAGE : GH_EXIT_OK;
    } else if ((fd = open(inv->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                          0600)) >= 0 &&
               fchmod(fd, 0600) == 0) { /* an existing file too: exports name every object */
        size_t done = 0;
        ssize_t n = 0;
        while (done < len && (n = write(fd, text + done, len - done)) > 0)
            done += (size_t)n;
        if (done == len && write(fd, "\n", 1) == 1)
            rc = GH_EXIT_OK;
    }
    if (fd >= 0 && close(fd) != 0)
        rc = GH_EXIT_USAGE;
    if (rc != GH_EXIT_OK && inv->file != NULL)
        fprintf(stderr, "gatehouse: cannot write %s: %s\n", inv->file, strerror(errno));
    else if (inv->file != NULL && strcmp(inv->file, "-") != 0)
        printf("configuration written to %s\n", inv->file);
    OPENSSL_cleanse(text, len); /* with --secrets it holds key hashes and jwt keys */
    free(text);
    return rc;
}

static const char *singular(const char *command)
{
    static const char *const names[][2] = {
        {"collections", "collection"},  {"endpoints", "endpoint"}, {"clients", "client"},
        {"profiles", "access profile"}, {"keys", "key"},           {"policies", "policy"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i][0], command) == 0)
            return names[i][1];
    return command;
}

/* Shows a 2xx answer the way its route calls for. */
static int show_answer(const struct gh_cli_admin *c, const struct invocation *inv, json_t *body)
{
    const char *key = json_string_value(json_object_get(body, "key"));
    enum shape shape = inv->route->shape;

    if (shape == SHAPE_EXPORT)
        return body != NULL ? write_export(inv, body) : unexpected(c, "an empty configuration");
    if (inv->json) {
        if (body != NULL)
            gh_cli_view_json(body, stdout);
        if (shape == SHAPE_NEW_KEY && key != NULL)
            fputs("note: the plain-text key (\"key\") is shown only once; store it now\n", stderr);
        return GH_EXIT_OK;
    }
    if (shape == SHAPE_DELETED) {
        printf("deleted %s %s\n", singular(inv->route->command), inv->args[inv->n_args - 1]);
        return GH_EXIT_OK;
    }
    if (shape == SHAPE_EXPLAIN) {
        gh_cli_view_explain(body, stdout);
        return GH_EXIT_OK;
    }
    if (shape == SHAPE_APPLIED) {
        gh_cli_view_applied(body, inv->file, stdout);
        return GH_EXIT_OK;
    }
    if (json_is_object(body))
        gh_cli_view_object(body, 0, stdout);
    if (shape == SHAPE_NEW_KEY) {
        if (key == NULL)
            return unexpected(c, "no plain-text \"key\" in the answer");
        gh_cli_view_key_banner(key, stdout);
    }
    return GH_EXIT_OK;
}

static int run_single(struct gh_cli_admin *c, const struct invocation *inv)
{
    struct gh_cli_answer answer = {0};
    json_t *body = NULL;
    char *path = NULL;
    int rc = build_body(inv, &body);

    if (rc == GH_EXIT_OK)
        rc = (path = build_path(inv, NULL)) != NULL ? GH_EXIT_OK : GH_EXIT_USAGE;
    if (rc == GH_EXIT_OK)
        rc = gh_cli_admin_request(c, inv->route->method, path, body, &answer);
    if (rc == GH_EXIT_OK && !c->dry_run) {
        if (gh_cli_answer_ok(&answer)) {
            rc = show_answer(c, inv, answer.body);
        } else {
            print_api_error(c, inv, &answer);
            rc = GH_EXIT_FAIL;
        }
    }
    gh_cli_answer_clear(&answer);
    json_decref(body);
    free(path);
    return rc;
}

int gh_cli_admin_flags(const char *name,
                       void (*visit)(const char *flag, int takes_value, void *arg), void *arg)
{
    if (!gh_cli_admin_is_command(name))
        return -1;
    for (size_t g = 0; g < sizeof globals / sizeof globals[0]; g++)
        visit(globals[g].name, globals[g].takes_value, arg);
    for (size_t i = 0; i < N_ROUTES; i++)
        for (const struct flag *f = routes[i].flags;
             strcmp(routes[i].command, name) == 0 && f != NULL && f->name != NULL; f++)
            visit(f->name, f->type != FT_QUERY, arg);
    return 0;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
            (i == 1 && strcmp(argv[i], "help") == 0))
            return 1;
    return 0;
}

int gh_cli_admin_main(int argc, char **argv)
{
    const char *command = argv[0];
    struct invocation inv = {0};
    struct gh_cli_admin client = {0};
    char verbs[128];
    int rc;

    if (wants_help(argc, argv))
        return gh_cli_admin_help(command, stdout) == 0 ? GH_EXIT_OK : GH_EXIT_USAGE;
    if ((inv.route = find_route(command, argc >= 2 ? argv[1] : NULL)) == NULL) {
        list_verbs(command, verbs, sizeof verbs);
        if (argc < 2 || argv[1][0] == '-') /* options go after the verb */
            return usage_error(command, "%s needs one of: %s, before its options", command, verbs);
        return usage_error(command, "unknown %s command '%s' (%s)", command, argv[1], verbs);
    }
    if ((inv.fields = json_object()) == NULL)
        return GH_EXIT_USAGE;
    rc = parse_invocation(&inv, argc, argv);
    if (rc == GH_EXIT_OK && inv.route->shape == SHAPE_APPLIED && inv.dry_run) {
        inv.dry_run = 0; /* the plan comes from the server; see apply_flags */
        rc = add_query(&inv, "dry_run=true");
    }
    if (inv.route->flags == audit_flags && inv.limit == 0)
        inv.limit = AUDIT_DEFAULT; /* the newest changes, not a log of years */
    if (rc == GH_EXIT_OK)
        rc = gh_cli_admin_init(&client, inv.admin_url, inv.data_dir, inv.db, inv.dry_run);
    if (rc == GH_EXIT_OK)
        rc = inv.route->shape == SHAPE_LIST ? run_list(&client, &inv) : run_single(&client, &inv);
    gh_cli_admin_clear(&client);
    json_decref(inv.data);
    json_decref(inv.fields);
    return rc;
}
