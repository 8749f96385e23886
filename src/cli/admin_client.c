// SPDX-License-Identifier: Apache-2.0
/*
 * The admin commands' HTTP client (see admin_client.h). The admin token is a credential to the
 * whole gateway, so it only ever goes into the Authorization header: it is read with a size cap,
 * checked for characters that could split a header, wiped when done, and named in messages by
 * where it came from, never by value. Answers are capped and time-limited because a wrong
 * --admin-url may point at anything.
 */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/admin_client.h"
#include "cli/cli.h"

#define ENV_URL      "GATEHOUSE_ADMIN_URL"
#define ENV_TOKEN    "GATEHOUSE_ADMIN_TOKEN"
#define ENV_DB       "GATEHOUSE_DB"
#define ENV_DATA_DIR "GATEHOUSE_DATA_DIR"

#ifndef GH_VERSION
#define GH_VERSION "0.0.0"
#endif

struct answer_buf {
    char *data;
    size_t len;
    int too_large;
};

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (out = malloc((size_t)n + 1)) == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

void gh_cli_admin_fputs_safe(const char *text, FILE *out)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
}

/* Loopback hosts are reached directly: an https_proxy set for the outside world must not see
 * the admin token of a local gateway. */
static int host_is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "[::1]") == 0;
}

static int check_url(struct gh_cli_admin *c, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *query = NULL, *fragment = NULL;
    int ok = 0;

    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
        curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_NO_QUERY &&
        curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_NO_FRAGMENT) {
        c->loopback = host_is_loopback(host);
        ok = 1;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(u);
    if (!ok) {
        fprintf(stderr, "gatehouse: the admin URL '%s' is not an http:// or https:// base URL\n",
                url);
        return GH_EXIT_USAGE;
    }
    c->base_url = strdup(url);
    if (c->base_url == NULL)
        return GH_EXIT_USAGE;
    for (size_t n = strlen(c->base_url); n > 0 && c->base_url[n - 1] == '/'; n--)
        c->base_url[n - 1] = '\0';
    return GH_EXIT_OK;
}

/* A token must fit in one header line: no spaces, no control characters. */
static int token_usable(const char *token)
{
    if (*token == '\0')
        return 0;
    for (const unsigned char *p = (const unsigned char *)token; *p != '\0'; p++)
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

static int read_token_file(struct gh_cli_admin *c, const char *path)
{
    char *data = NULL;
    size_t len = 0;
    int rc = gh_cli_read_file(path, GH_CLI_ADMIN_TOKEN_MAX, &data, &len);

    if (rc == -1 && errno == ENOENT)
        return 1; /* no file: the caller reports where it looked */
    if (rc == -2 || rc == -1) {
        fprintf(stderr, "gatehouse: cannot read the admin token file %s: %s\n", path,
                rc == -2 ? "larger than 4 KiB" : strerror(errno));
        return GH_EXIT_USAGE;
    }
    while (len > 0 && strchr(" \t\r\n", data[len - 1]) != NULL) /* the line end editors add */
        data[--len] = '\0';
    if (strlen(data) != len || !token_usable(data)) {
        OPENSSL_cleanse(data, len);
        free(data);
        fprintf(stderr, "gatehouse: the admin token file %s does not hold one token\n", path);
        return GH_EXIT_USAGE;
    }
    c->token = data;
    c->token_source = strdup(path);
    return GH_EXIT_OK;
}

static int find_token(struct gh_cli_admin *c, const char *data_dir, const char *db)
{
    const char *env = getenv(ENV_TOKEN);
    char dir[4096], *path;
    int rc;

    if (env != NULL && *env != '\0') {
        if (!token_usable(env)) {
            fputs("gatehouse: $" ENV_TOKEN " holds spaces or control characters\n", stderr);
            return GH_EXIT_USAGE;
        }
        c->token = strdup(env);
        c->token_source = strdup("$" ENV_TOKEN);
        return GH_EXIT_OK;
    }
    if (gh_cli_data_dir(data_dir != NULL ? data_dir : getenv(ENV_DATA_DIR),
                        db != NULL ? db : getenv(ENV_DB), dir, sizeof dir) != 0 ||
        (path = dup_printf("%s/admin-token", dir)) == NULL)
        return GH_EXIT_USAGE;
    rc = read_token_file(c, path);
    if (rc == 1)
        c->token_hint = dup_printf("$%s or %s", ENV_TOKEN, path);
    free(path);
    return rc;
}

int gh_cli_admin_init(struct gh_cli_admin *c, const char *admin_url, const char *data_dir,
                      const char *db, int dry_run)
{
    int rc;

    memset(c, 0, sizeof *c);
    c->dry_run = dry_run;
    if (admin_url == NULL)
        admin_url = getenv(ENV_URL) != NULL ? getenv(ENV_URL) : GH_CLI_ADMIN_DEFAULT_URL;
    if ((rc = check_url(c, admin_url)) != GH_EXIT_OK)
        return rc;
    rc = find_token(c, data_dir, db);
    if (rc == 1 && !dry_run) {
        fprintf(stderr,
                "gatehouse: no admin token: set %s, or point --data-dir at the server's data "
                "directory (looked in %s)\n",
                ENV_TOKEN, c->token_hint != NULL ? c->token_hint : "?");
        return GH_EXIT_USAGE;
    }
    return rc == 1 ? GH_EXIT_OK : rc;
}

void gh_cli_admin_clear(struct gh_cli_admin *c)
{
    if (c->token != NULL) {
        OPENSSL_cleanse(c->token, strlen(c->token));
        free(c->token);
    }
    if (c->curl != NULL) {
        curl_easy_cleanup(c->curl);
        curl_global_cleanup();
    }
    free(c->base_url);
    free(c->token_source);
    free(c->token_hint);
    memset(c, 0, sizeof *c);
}

char *gh_cli_admin_escape(const char *text)
{
    char *escaped = curl_easy_escape(NULL, text, 0);
    char *out = escaped != NULL ? strdup(escaped) : NULL;

    curl_free(escaped);
    return out;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    struct answer_buf *b = user;
    size_t add = size * n;
    char *grown;

    if (add > GH_CLI_ADMIN_ANSWER_MAX - b->len) {
        b->too_large = 1;
        return 0;
    }
    if ((grown = realloc(b->data, b->len + add + 1)) == NULL)
        return 0;
    memcpy(grown + b->len, data, add);
    b->data = grown;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

static void print_dry_run(const struct gh_cli_admin *c, const char *method, const char *url,
                          const json_t *body)
{
    printf("%s %s\n", method, url);
    if (c->token != NULL)
        printf("Authorization: Bearer <admin token from %s>\n", c->token_source);
    else
        printf("Authorization: <none: no admin token in %s>\n",
               c->token_hint != NULL ? c->token_hint : "?");
    if (body != NULL) {
        char *text = json_dumps(body, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("Content-Type: application/json\n\n%s\n", text != NULL ? text : "");
        free(text);
    }
}

/* Headers of every request; the Authorization line is a copy of the token, wiped by the caller. */
static struct curl_slist *request_headers(const struct gh_cli_admin *c, int has_body, char **auth)
{
    struct curl_slist *h = NULL, *next;
    const char *lines[] = {"Accept: application/json", "Expect:",
                           has_body ? "Content-Type: application/json"
                                    : "Content-Type:"}; /* no form type on an empty POST */

    *auth = dup_printf("Authorization: Bearer %s", c->token);
    if (*auth == NULL || (h = curl_slist_append(NULL, *auth)) == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (lines[i] == NULL)
            continue;
        if ((next = curl_slist_append(h, lines[i])) == NULL) {
            curl_slist_free_all(h);
            return NULL;
        }
        h = next;
    }
    return h;
}

static void set_options(struct gh_cli_admin *c, CURL *e, const char *method, const char *url,
                        const char *payload, struct answer_buf *buf, char *errbuf)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect must not carry the token away */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)GH_CLI_ADMIN_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)GH_CLI_ADMIN_ANSWER_MAX);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "gatehouse-cli/" GH_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, buf);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    if (c->loopback)
        curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (strcmp(method, "GET") == 0)
        return;
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (payload != NULL || strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload != NULL ? payload : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(payload != NULL ? strlen(payload) : 0));
    }
}

/* Turns the bytes received into an answer; a 2xx that is not JSON is not the admin API talking. */
static int parse_answer(const struct gh_cli_admin *c, const char *url, struct answer_buf *buf,
                        struct gh_cli_answer *answer)
{
    json_error_t error;

    if (buf->len == 0)
        return GH_EXIT_OK;
    answer->body =
        json_loadb(buf->data, buf->len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
    if (answer->body == NULL && gh_cli_answer_ok(answer)) {
        fprintf(stderr,
                "gatehouse: %s answered %ld with something that is not JSON (%s); is %s the "
                "gatehouse admin API?\n",
                url, answer->status, error.text, c->base_url);
        return GH_EXIT_USAGE;
    }
    return GH_EXIT_OK;
}

static int perform(struct gh_cli_admin *c, const char *method, const char *url, const char *payload,
                   struct gh_cli_answer *answer)
{
    struct answer_buf buf = {0};
    char errbuf[CURL_ERROR_SIZE] = "", *auth = NULL;
    struct curl_slist *headers = NULL;
    CURLcode res = CURLE_OUT_OF_MEMORY;
    int rc = GH_EXIT_USAGE;

    if (c->curl == NULL && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK &&
        (c->curl = curl_easy_init()) == NULL)
        curl_global_cleanup();
    if (c->curl != NULL && (headers = request_headers(c, payload != NULL, &auth)) != NULL) {
        curl_easy_reset(c->curl);
        set_options(c, c->curl, method, url, payload, &buf, errbuf);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
        res = curl_easy_perform(c->curl);
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &answer->status);
    }
    if (auth != NULL)
        OPENSSL_cleanse(auth, strlen(auth));
    free(auth);
    curl_slist_free_all(headers);
    if (res != CURLE_OK)
        fprintf(stderr, "gatehouse: cannot reach the admin API at %s: %s\n", c->base_url,
                buf.too_large || res == CURLE_FILESIZE_EXCEEDED ? "the answer is larger than 64 MiB"
                : errbuf[0] != '\0'                             ? errbuf
                                                                : curl_easy_strerror(res));
    else
        rc = parse_answer(c, url, &buf, answer);
    free(buf.data);
    return rc;
}

int gh_cli_admin_request(struct gh_cli_admin *c, const char *method, const char *path,
                         const json_t *body, struct gh_cli_answer *answer)
{
    char *url = dup_printf("%s%s", c->base_url, path), *payload = NULL;
    int rc = GH_EXIT_USAGE;

    memset(answer, 0, sizeof *answer);
    if (url == NULL)
        return rc;
    if (c->dry_run) {
        print_dry_run(c, method, url, body);
        free(url);
        return GH_EXIT_OK;
    }
    if (body == NULL || (payload = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER)) != NULL)
        rc = perform(c, method, url, payload, answer);
    if (payload != NULL) /* it may hold a jwt_key secret */
        OPENSSL_cleanse(payload, strlen(payload));
    free(payload);
    free(url);
    return rc;
}

void gh_cli_answer_clear(struct gh_cli_answer *a)
{
    json_decref(a->body);
    memset(a, 0, sizeof *a);
}

int gh_cli_answer_ok(const struct gh_cli_answer *a)
{
    return a->status >= 200 && a->status < 300;
}

void gh_cli_admin_print_error(const struct gh_cli_admin *c, const struct gh_cli_answer *a)
{
    const char *code = json_string_value(json_object_get(a->body, "error"));
    const char *message = json_string_value(json_object_get(a->body, "message"));
    const char *field = json_string_value(json_object_get(a->body, "field"));

    fprintf(stderr, "gatehouse: %ld", a->status);
    if (code != NULL) {
        fputc(' ', stderr);
        gh_cli_admin_fputs_safe(code, stderr);
    }
    if (message != NULL) {
        fputs(": ", stderr);
        gh_cli_admin_fputs_safe(message, stderr);
    }
    if (field != NULL) {
        fputs(" (field: ", stderr);
        gh_cli_admin_fputs_safe(field, stderr);
        fputc(')', stderr);
    }
    if (code == NULL && message == NULL)
        fputs(" (the answer carries no JSON error body)", stderr);
    fputc('\n', stderr);
    if (a->status == 401 && c->token_source != NULL)
        fprintf(stderr, "gatehouse: the admin token sent came from %s\n", c->token_source);
}
