// SPDX-License-Identifier: Apache-2.0
/*
 * The admin commands of the real `gatehouse` binary against stand-ins for the admin API, which is
 * written separately: the test kit's mock HTTP server scripts the answers SPEC §6 describes (list
 * pages, created objects with a plain-text key, 4xx error bodies) and counts the requests; a
 * small recorder in this file answers in sequence and keeps every request it received, so that
 * what goes on the wire (method, path, query, Authorization, JSON body) is proven too, which the
 * mock cannot show. `--dry-run` covers the bodies of every command. Everything runs on 127.0.0.1
 * with ephemeral ports, in a temporary directory that the test removes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mockidp.h"

#ifndef GH_BINARY
#error "GH_BINARY must name the gatehouse binary"
#endif

#define TOKEN      "tok-Zq81xPa0"
#define ENV_TOKEN  "GATEHOUSE_ADMIN_TOKEN=" TOKEN
#define NEW_KEY    "gk_AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHHIIIIJJJJKKK"
#define MAX_SCRIPT 4

static char dir[] = "/tmp/gh-cli-admin-XXXXXX";
static struct gh_mockidp *mock;
static char out[262144], err[16384];

/* ---- running the binary ---- */

static void write_file(const char *name, const char *data)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(data, f);
    fclose(f);
}

static char *slurp(const char *name, char *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    return buf;
}

/* Runs `env ENV gatehouse ARGS` in the test directory with none of the admin variables of the
 * test's own environment; returns the exit status and fills `out` and `err`. */
static int run_env(const char *env, const char *args)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "cd %s && env -u GATEHOUSE_ADMIN_TOKEN -u GATEHOUSE_ADMIN_URL -u GATEHOUSE_DB "
             "-u GATEHOUSE_DATA_DIR %s %s "
             "%s >stdout.txt 2>stderr.txt",
             dir, env, GH_BINARY, args);
    int status = system(cmd);
    slurp("stdout.txt", out, sizeof out);
    slurp("stderr.txt", err, sizeof err);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Runs a command against the mock with the token in the environment. */
__attribute__((format(printf, 1, 2))) static int run_mock(const char *fmt, ...)
{
    char args[8192], full[8448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s --admin-url %s", args, gh_mockidp_base_url(mock));
    return run_env(ENV_TOKEN, full);
}

static json_t *out_json(void)
{
    json_error_t e;
    json_t *obj = json_loads(out, 0, &e);
    if (obj == NULL)
        fail_msg("stdout is not one JSON document: %s", out);
    return obj;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text != '\0'; text++)
        n += *text == '\n';
    return n;
}

/* The first line of stdout that contains `needle`, copied into `line`. */
static const char *line_with(const char *needle, char *line, size_t cap)
{
    const char *hit = strstr(out, needle), *start, *end;
    if (hit == NULL)
        fail_msg("no line with '%s' in:\n%s", needle, out);
    for (start = hit; start > out && start[-1] != '\n'; start--)
        continue;
    end = strchr(hit, '\n');
    snprintf(line, cap, "%.*s", (int)(end ? end - start : (long)strlen(start)), start);
    return line;
}

/* ---- a recorder: answers scripted statuses and bodies in order, keeps each request ---- */

struct recorder {
    int fd, port, n_script, n_requests;
    int status[MAX_SCRIPT];
    const char *body[MAX_SCRIPT];
    char *request[MAX_SCRIPT]; /* head and body as received */
    pthread_t thread;
};

static size_t content_length(const char *head, size_t head_len)
{
    char lower[8192];
    size_t n = head_len < sizeof lower - 1 ? head_len : sizeof lower - 1;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)tolower((unsigned char)head[i]);
    lower[n] = '\0';
    const char *cl = strstr(lower, "\r\ncontent-length:");
    return cl != NULL ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
}

static char *read_request(int c)
{
    size_t cap = 1u << 20, have = 0, need = 0;
    char *buf = malloc(cap + 1);
    struct timeval tv = {10, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (buf != NULL && have < cap) {
        ssize_t n = recv(c, buf + have, cap - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL && need == 0)
            need = (size_t)(end - buf) + 4 + content_length(buf, (size_t)(end - buf));
        if (need != 0 && have >= need)
            break;
    }
    if (buf != NULL)
        buf[have] = '\0';
    return buf;
}

static void *recorder_main(void *arg)
{
    struct recorder *r = arg;
    for (int i = 0; i < r->n_script; i++) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        char head[256];
        if (poll(&p, 1, 10000) != 1)
            break;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            break;
        r->request[i] = read_request(c);
        r->n_requests = i + 1;
        size_t len = r->body[i] != NULL ? strlen(r->body[i]) : 0;
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 %d Scripted\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                         r->status[i], len);
        if (send(c, head, (size_t)n, MSG_NOSIGNAL) == n && len > 0)
            (void)send(c, r->body[i], len, MSG_NOSIGNAL);
        close(c);
    }
    return NULL;
}

/* Starts a recorder that answers `n` requests: status[i] with body[i] (NULL for none). */
static void recorder_start(struct recorder *r, int n, const int *status, const char *const *body)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    memset(r, 0, sizeof *r);
    r->n_script = n;
    for (int i = 0; i < n; i++) {
        r->status[i] = status[i];
        r->body[i] = body[i];
    }
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    assert_int_equal(bind(r->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(r->fd, 8), 0);
    assert_int_equal(getsockname(r->fd, (struct sockaddr *)&a, &len), 0);
    r->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&r->thread, NULL, recorder_main, r), 0);
}

static void recorder_finish(struct recorder *r)
{
    pthread_join(r->thread, NULL);
    close(r->fd);
}

static void recorder_free(struct recorder *r)
{
    for (int i = 0; i < MAX_SCRIPT; i++)
        free(r->request[i]);
}

/* Runs `args` against a recorder that answers one request, and returns it (owned by `r`). */
static const char *record_one(struct recorder *r, const char *env, int status, const char *body,
                              const char *args, int expect_exit)
{
    char full[8192];
    recorder_start(r, 1, &status, &body);
    snprintf(full, sizeof full, "%s --admin-url http://127.0.0.1:%d", args, r->port);
    assert_int_equal(run_env(env, full), expect_exit);
    recorder_finish(r);
    assert_int_equal(r->n_requests, 1);
    return r->request[0];
}

static json_t *request_body(const char *request)
{
    const char *body = strstr(request, "\r\n\r\n");
    assert_non_null(body);
    json_t *obj = json_loads(body + 4, 0, NULL);
    assert_non_null(obj);
    return obj;
}

/* ---- fixtures ---- */

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL || (mock = gh_mockidp_start()) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gh_mockidp_stop(mock);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define COL1                                                                                       \
    "{\"id\":\"col_AAAAAAAAAAAA\",\"name\":\"orders\",\"version\":\"v1\",\"path\":\"/orders/v1\"," \
    "\"upstream\":\"http://10.0.0.5:8080\",\"active\":true,\"forward_authorization\":true,"        \
    "\"timeout_ms\":30000}"
#define COL2                                                                                       \
    "{\"id\":\"col_BBBBBBBBBBBB\",\"name\":\"billing-service\",\"version\":\"v22\","               \
    "\"path\":\"/billing\",\"upstream\":\"https://billing.internal\",\"active\":false}"

/* ---- lists ---- */

static void test_list_table_and_json(void **state)
{
    char header[256], row[256];
    (void)state;
    gh_mockidp_set_json(mock, "/v1/collections", 200,
                        "{\"data\":[" COL1 "," COL2 "],\"next\":null}", NULL);
    assert_int_equal(run_mock("collections list"), 0);
    assert_string_equal(err, "");
    assert_int_equal(count_lines(out), 3);
    line_with("UPSTREAM", header, sizeof header);
    assert_int_equal(strncmp(header, "ID ", 3), 0);
    /* columns line up: each value starts under its title */
    line_with("billing-service", row, sizeof row);
    assert_int_equal(strstr(row, "billing-service") - row, strstr(header, "NAME") - header);
    assert_int_equal(strstr(row, "v22") - row, strstr(header, "VERSION") - header);
    assert_int_equal(strstr(row, "https://billing") - row, strstr(header, "UPSTREAM") - header);
    assert_int_equal(strstr(row, "false") - row, strstr(header, "ACTIVE") - header);
    line_with("orders", row, sizeof row);
    assert_non_null(strstr(row, "/orders/v1"));

    assert_int_equal(run_mock("collections list --json"), 0);
    json_t *obj = out_json();
    assert_int_equal(json_array_size(json_object_get(obj, "data")), 2);
    assert_true(json_is_null(json_object_get(obj, "next")));
    json_decref(obj);

    /* an empty list is the header alone */
    gh_mockidp_set_json(mock, "/v1/clients", 200, "{\"data\":[],\"next\":null}", NULL);
    assert_int_equal(run_mock("clients list"), 0);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "DESCRIPTION"));
}

/* The mock answers every page of a path alike (it ignores the query), so a page whose `next`
 * points on proves that the client follows it: the second request is the second hit. */
static void test_list_follows_next_and_honours_limit(void **state)
{
    (void)state;
    gh_mockidp_set_json(
        mock, "/v1/clients", 200,
        "{\"data\":[{\"id\":\"cli_AAAAAAAAAAAA\",\"name\":\"acme\",\"active\":true},"
        "{\"id\":\"cli_BBBBBBBBBBBB\",\"name\":\"globex\",\"active\":true}],"
        "\"next\":\"cur1\"}",
        NULL);
    gh_mockidp_reset_hits(mock);
    assert_int_equal(run_mock("clients list --limit 3"), 0);
    assert_int_equal(gh_mockidp_hits(mock, "/v1/clients"), 2);
    assert_int_equal(count_lines(out), 1 + 3);

    gh_mockidp_reset_hits(mock);
    assert_int_equal(run_mock("clients list --limit=2 --json"), 0);
    assert_int_equal(gh_mockidp_hits(mock, "/v1/clients"), 1);
    json_t *obj = out_json();
    assert_int_equal(json_array_size(json_object_get(obj, "data")), 2);
    assert_string_equal(json_string_value(json_object_get(obj, "next")), "cur1");
    json_decref(obj);

    /* a server that hands out the same cursor again would loop forever: stop, exit 2 */
    gh_mockidp_reset_hits(mock);
    assert_int_equal(run_mock("clients list"), 2);
    assert_int_equal(gh_mockidp_hits(mock, "/v1/clients"), 2);
    assert_non_null(strstr(err, "same \"next\" cursor"));
}

static void test_paging_on_the_wire(void **state)
{
    static const int status[] = {200, 200};
    static const char *const body[] = {
        "{\"data\":[{\"id\":\"pol_AAAAAAAAAAAA\",\"name\":\"gold\",\"rate_limit\":{\"requests\":"
        "100,\"per_seconds\":60},\"quota\":null}],\"next\":\"c 1/x\"}",
        "{\"data\":[{\"id\":\"pol_BBBBBBBBBBBB\",\"name\":\"bronze\",\"rate_limit\":null,"
        "\"quota\":{\"requests\":5,\"per_seconds\":86400}}],\"next\":null}",
    };
    struct recorder r;
    char args[256], row[256];
    (void)state;
    recorder_start(&r, 2, status, body);
    snprintf(args, sizeof args, "policies list --admin-url http://127.0.0.1:%d/", r.port);
    assert_int_equal(run_env(ENV_TOKEN, args), 0);
    recorder_finish(&r);
    assert_int_equal(r.n_requests, 2);
    assert_non_null(strstr(r.request[0], "GET /v1/policies?limit=100 HTTP/1.1\r\n"));
    assert_non_null(strstr(r.request[1], "GET /v1/policies?limit=100&after=c%201%2Fx HTTP/1.1"));
    assert_non_null(strstr(r.request[1], "\r\nAuthorization: Bearer " TOKEN "\r\n"));
    assert_non_null(strstr(r.request[1], "\r\nAccept: application/json\r\n"));
    line_with("gold", row, sizeof row);
    assert_non_null(strstr(row, "100/60"));
    line_with("bronze", row, sizeof row);
    assert_non_null(strstr(row, "5/86400"));
    assert_non_null(strstr(out, "RATE_LIMIT"));
    assert_null(strstr(out, TOKEN));
    recorder_free(&r);
}

/* ---- the admin token ---- */

static void test_token_from_env_and_from_admin_token_file(void **state)
{
    struct recorder r;
    const char *req;
    char args[512];
    (void)state;
    assert_int_equal(mkdir(strcat(strcpy(args, dir), "/data"), 0700), 0);
    write_file("data/admin-token", "file-tok-77\n");

    /* the file in the directory of --db, its line end trimmed */
    snprintf(args, sizeof args, "clients get cli_AAAAAAAAAAAA --db sqlite:%s/data/gh.db", dir);
    req = record_one(&r, "", 200, "{\"id\":\"cli_AAAAAAAAAAAA\"}", args, 0);
    assert_non_null(strstr(req, "GET /v1/clients/cli_AAAAAAAAAAAA HTTP/1.1\r\n"));
    assert_non_null(strstr(req, "\r\nAuthorization: Bearer file-tok-77\r\n"));
    recorder_free(&r);

    /* GATEHOUSE_DB, relative to the working directory */
    req = record_one(&r, "GATEHOUSE_DB=sqlite:data/gh.db", 200, "{}", "clients get cli_1", 0);
    assert_non_null(strstr(req, "\r\nAuthorization: Bearer file-tok-77\r\n"));
    recorder_free(&r);

    /* a PostgreSQL --db has no directory: ./data of the working directory, as without --db;
     * nothing printed repeats its password */
    req = record_one(&r, "", 200, "{}",
                     "clients get cli_1 --db postgres://gh:Secret42@127.0.0.1:1/gatehouse", 0);
    assert_non_null(strstr(req, "\r\nAuthorization: Bearer file-tok-77\r\n"));
    assert_null(strstr(out, "Secret42"));
    assert_null(strstr(err, "Secret42"));
    recorder_free(&r);

    /* the environment wins over the file */
    snprintf(args, sizeof args, "clients get cli_1 --db=sqlite:%s/data/gh.db", dir);
    req = record_one(&r, ENV_TOKEN, 200, "{}", args, 0);
    assert_non_null(strstr(req, "\r\nAuthorization: Bearer " TOKEN "\r\n"));
    recorder_free(&r);

    /* a 401 names where the token came from, never the token */
    snprintf(args, sizeof args, "clients list --db sqlite:%s/data/gh.db", dir);
    record_one(&r, "", 401, "{\"error\":\"unauthorized\",\"message\":\"bad admin token\"}", args,
               1);
    assert_non_null(strstr(err, "gatehouse: 401 unauthorized: bad admin token\n"));
    assert_non_null(strstr(err, "/data/admin-token"));
    assert_null(strstr(err, "file-tok-77"));
    assert_null(strstr(out, "file-tok-77"));
    recorder_free(&r);

    /* GATEHOUSE_ADMIN_URL instead of --admin-url */
    int status = 200;
    const char *body = "{\"data\":[],\"next\":null}";
    recorder_start(&r, 1, &status, &body);
    snprintf(args, sizeof args, ENV_TOKEN " GATEHOUSE_ADMIN_URL=http://127.0.0.1:%d", r.port);
    assert_int_equal(run_env(args, "providers list"), 0);
    recorder_finish(&r);
    assert_int_equal(r.n_requests, 1);
    assert_non_null(strstr(r.request[0], "GET /v1/providers?limit=100 "));
    recorder_free(&r);

    /* no token anywhere: exit 2 before sending, naming where it looked */
    gh_mockidp_reset_hits(mock);
    snprintf(args, sizeof args, "clients list --db sqlite:%s/nowhere/gh.db --admin-url %s", dir,
             gh_mockidp_base_url(mock));
    assert_int_equal(run_env("", args), 2);
    assert_non_null(strstr(err, "/nowhere/admin-token"));
    assert_int_equal(gh_mockidp_hits(mock, "/v1/clients"), 0);
    /* a token file with two lines is not a token */
    write_file("data/admin-token", "one\ntwo\n");
    snprintf(args, sizeof args, "clients list --db sqlite:%s/data/gh.db --admin-url %s", dir,
             gh_mockidp_base_url(mock));
    assert_int_equal(run_env("", args), 2);
    assert_non_null(strstr(err, "does not hold one token"));
}

/* ---- creates and keys ---- */

static void test_create_shows_the_key_once(void **state)
{
    (void)state;
    gh_mockidp_set_json(mock, "/v1/profiles", 201,
                        "{\"id\":\"ap_AAAAAAAAAAAA\",\"name\":\"acme-orders\",\"client_id\":"
                        "\"cli_AAAAAAAAAAAA\",\"auth_type\":\"token\",\"collection_ids\":["
                        "\"col_AAAAAAAAAAAA\"],\"active\":true,\"key\":\"" NEW_KEY "\"}",
                        NULL);
    assert_int_equal(run_mock("profiles create --client cli_AAAAAAAAAAAA --name acme-orders "
                              "--auth-type token --collections col_AAAAAAAAAAAA"),
                     0);
    assert_non_null(strstr(out, "auth_type:"));
    assert_non_null(strstr(out, "shown only once"));
    const char *first = strstr(out, NEW_KEY);
    assert_non_null(first);
    assert_null(strstr(first + 1, NEW_KEY)); /* once, in the banner only */

    assert_int_equal(run_mock("profiles create --client c --name n --auth-type token --json"), 0);
    json_t *obj = out_json();
    assert_string_equal(json_string_value(json_object_get(obj, "key")), NEW_KEY);
    json_decref(obj);
    assert_non_null(strstr(err, "shown only once"));

    /* anything but a create never shows a key, nor the write-only jwt_key */
    gh_mockidp_set_json(mock, "/v1/profiles/ap_AAAAAAAAAAAA", 200,
                        "{\"id\":\"ap_AAAAAAAAAAAA\",\"name\":\"p\",\"key\":\"" NEW_KEY "\","
                        "\"jwt_key\":\"hmac-secret-0123456789abcdef0123456789\"}",
                        NULL);
    assert_int_equal(run_mock("profiles get ap_AAAAAAAAAAAA"), 0);
    assert_null(strstr(out, NEW_KEY));
    assert_null(strstr(out, "hmac-secret"));
    assert_non_null(strstr(out, "name:"));

    gh_mockidp_set_json(mock, "/v1/profiles/ap_AAAAAAAAAAAA/keys", 201,
                        "{\"id\":\"key_AAAAAAAAAAAA\",\"prefix\":\"gk_AAAAB\",\"created_at\":"
                        "\"2025-01-02T03:04:05Z\",\"expires_at\":null,\"key\":\"" NEW_KEY "\"}",
                        NULL);
    assert_int_equal(run_mock("keys create ap_AAAAAAAAAAAA --grace-seconds 3600"), 0);
    assert_non_null(strstr(out, NEW_KEY));
    assert_non_null(strstr(out, "shown only once"));
    gh_mockidp_set_json(mock, "/v1/profiles/ap_AAAAAAAAAAAA/keys", 200,
                        "{\"data\":[{\"id\":\"key_AAAAAAAAAAAA\",\"prefix\":\"gk_AAAAB\","
                        "\"created_at\":\"2025-01-02T03:04:05Z\",\"expires_at\":"
                        "\"2025-01-02T04:04:05Z\"}],\"next\":null}",
                        NULL);
    assert_int_equal(run_mock("keys list ap_AAAAAAAAAAAA"), 0);
    assert_non_null(strstr(out, "PREFIX"));
    assert_non_null(strstr(out, "2025-01-02T04:04:05Z"));
}

static void test_writes_on_the_wire(void **state)
{
    struct recorder r;
    const char *req;
    char args[512];
    json_t *body;
    static const char pem[] = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
                              "\"quoted\" \\ and tab\t\n-----END PUBLIC KEY-----\n";
    (void)state;
    write_file("key.pem", pem);
    snprintf(args, sizeof args,
             "profiles create --client cli_1 --name p --auth-type jwt --jwt-key-file %s/key.pem "
             "--algorithms ES256",
             dir);
    req = record_one(&r, ENV_TOKEN, 201, "{\"id\":\"ap_1\",\"key\":\"" NEW_KEY "\"}", args, 0);
    assert_non_null(strstr(req, "POST /v1/profiles HTTP/1.1\r\n"));
    assert_non_null(strstr(req, "\r\nContent-Type: application/json\r\n"));
    body = request_body(req);
    assert_string_equal(json_string_value(json_object_get(body, "jwt_key")), pem);
    assert_string_equal(json_string_value(json_array_get(json_object_get(body, "algorithms"), 0)),
                        "ES256");
    json_decref(body);
    assert_non_null(strstr(out, NEW_KEY));
    assert_null(strstr(out, "BEGIN PUBLIC KEY"));
    recorder_free(&r);

    req = record_one(&r, ENV_TOKEN, 200, "{\"id\":\"col_1\",\"active\":false}",
                     "collections update col_1 --active false", 0);
    assert_non_null(strstr(req, "PATCH /v1/collections/col_1 HTTP/1.1\r\n"));
    body = request_body(req);
    assert_int_equal(json_object_size(body), 1);
    assert_true(json_is_false(json_object_get(body, "active")));
    json_decref(body);
    recorder_free(&r);

    req = record_one(&r, ENV_TOKEN, 204, NULL, "clients delete cli_1", 0);
    assert_non_null(strstr(req, "DELETE /v1/clients/cli_1 HTTP/1.1\r\n"));
    assert_string_equal(out, "deleted client cli_1\n");
    recorder_free(&r);
}

/* ---- error answers and an absent server ---- */

static void test_error_answers_exit_1(void **state)
{
    (void)state;
    gh_mockidp_set_json(mock, "/v1/collections", 422,
                        "{\"error\":\"validation_failed\",\"message\":\"upstream must be an "
                        "absolute http:// or https:// URL\",\"field\":\"upstream\"}",
                        NULL);
    assert_int_equal(run_mock("collections create --name a --path /a --upstream ftp://x"), 1);
    assert_string_equal(err, "gatehouse: 422 validation_failed: upstream must be an absolute "
                             "http:// or https:// URL (field: upstream)\n");
    assert_string_equal(out, "");

    gh_mockidp_set_json(mock, "/v1/collections", 401,
                        "{\"error\":\"unauthorized\",\"message\":\"a valid admin token is "
                        "required\"}",
                        NULL);
    assert_int_equal(run_mock("collections list"), 1);
    assert_non_null(strstr(err, "gatehouse: 401 unauthorized: a valid admin token is required\n"));
    assert_non_null(strstr(err, "$GATEHOUSE_ADMIN_TOKEN"));
    assert_null(strstr(err, TOKEN));

    /* the mock's 404 for an unknown route: {"error":"not_found"} */
    assert_int_equal(run_mock("endpoints get ep_MISSINGMISSING"), 1);
    assert_string_equal(err, "gatehouse: 404 not_found\n");

    gh_mockidp_set_json(mock, "/v1/policies/pol_1", 409,
                        "{\"error\":\"conflict\",\"message\":\"the policy is in use by 2 access "
                        "profiles\"}",
                        NULL);
    assert_int_equal(run_mock("policies delete pol_1"), 1);
    assert_string_equal(err,
                        "gatehouse: 409 conflict: the policy is in use by 2 access profiles\n");

    /* a message cannot drive the terminal */
    gh_mockidp_set_json(mock, "/v1/clients/cli_1", 400,
                        "{\"error\":\"bad_request\",\"message\":\"evil\\u001b[2J\"}", NULL);
    assert_int_equal(run_mock("clients get cli_1"), 1);
    assert_null(strchr(err, '\x1b'));

    struct gh_mock_response html = {
        .status = 502, .content_type = "text/html", .body = "<html>bad gateway</html>"};
    gh_mockidp_set(mock, "/v1/providers", &html);
    assert_int_equal(run_mock("providers list"), 1);
    assert_non_null(strstr(err, "gatehouse: 502 (the answer carries no JSON error body)"));
}

static void test_unreachable_or_nonsense_exit_2(void **state)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    char args[256], url[64];
    (void)state;
    /* a port that was free a moment ago: nothing listens there */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    snprintf(args, sizeof args, "collections list --admin-url %s", url);
    assert_int_equal(run_env(ENV_TOKEN, args), 2);
    assert_non_null(strstr(err, "cannot reach the admin API at"));
    assert_non_null(strstr(err, url));
    assert_string_equal(out, "");

    struct gh_mock_response text = {.status = 200, .content_type = "text/plain", .body = "hello"};
    gh_mockidp_set(mock, "/v1/clients/cli_2", &text);
    assert_int_equal(run_mock("clients get cli_2"), 2);
    assert_non_null(strstr(err, "not JSON"));
    assert_non_null(strstr(err, gh_mockidp_base_url(mock)));

    gh_mockidp_set_json(mock, "/v1/endpoints/ep_1", 200, "{}", NULL);
    gh_mockidp_set_json(mock, "/v1/collections/col_1/endpoints", 200, "{\"items\":[]}", NULL);
    assert_int_equal(run_mock("endpoints list col_1"), 2);
    assert_non_null(strstr(err, "unexpected answer"));
}

/* ---- request bodies, through --dry-run ---- */

/* Runs `args` with --dry-run; checks the request line and returns the body (NULL when none). */
static json_t *dry(const char *request_line, const char *args)
{
    char full[4096];
    snprintf(full, sizeof full, "%s --dry-run --admin-url http://127.0.0.1:9", args);
    assert_int_equal(run_env(ENV_TOKEN, full), 0);
    if (strncmp(out, request_line, strlen(request_line)) != 0 || out[strlen(request_line)] != '\n')
        fail_msg("expected '%s', got:\n%s", request_line, out);
    assert_null(strstr(out, TOKEN));
    assert_non_null(strstr(out, "Authorization: Bearer <admin token from $GATEHOUSE_ADMIN_TOKEN>"));
    const char *body = strstr(out, "\n\n");
    return body != NULL ? json_loads(body + 2, 0, NULL) : NULL;
}

static void expect_body(const char *request_line, const char *args, const char *expected)
{
    json_t *got = dry(request_line, args), *want = json_loads(expected, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want))
        fail_msg("%s: sent\n%s\nexpected %s", args, out, expected);
    json_decref(got);
    json_decref(want);
}

#define URL "http://127.0.0.1:9"

static void test_request_bodies_of_objects(void **state)
{
    char args[1024];
    (void)state;
    expect_body("POST " URL "/v1/collections",
                "collections create --name orders --path /orders/v1 --upstream http://u:8080 "
                "--version=v2 --timeout-ms 500 --active false --forward-authorization=true",
                "{\"name\":\"orders\",\"path\":\"/orders/v1\",\"upstream\":\"http://u:8080\","
                "\"version\":\"v2\",\"timeout_ms\":500,\"active\":false,"
                "\"forward_authorization\":true}");
    /* --data is merged under the flags */
    expect_body("PATCH " URL "/v1/collections/col_1",
                "collections update col_1 --data '{\"version\":\"v3\",\"name\":\"x\"}' --name y",
                "{\"version\":\"v3\",\"name\":\"y\"}");
    expect_body("POST " URL "/v1/collections/col_1/endpoints",
                "endpoints create col_1 --method GET --path /items/:id --name item --timeout-ms 50",
                "{\"method\":\"GET\",\"path\":\"/items/:id\",\"name\":\"item\",\"timeout_ms\":50}");
    expect_body("PATCH " URL "/v1/endpoints/ep_1", "endpoints update ep_1 --active true",
                "{\"active\":true}");
    expect_body("POST " URL "/v1/clients", "clients create --name acme --description 'A, B'",
                "{\"name\":\"acme\",\"description\":\"A, B\"}");
    write_file("hs.key", "0123456789abcdef0123456789abcdef-secret");
    snprintf(args, sizeof args,
             "profiles create --client cli_1 --name p --auth-type jwt --collections 'col_1, col_2' "
             "--jwt-key-file %s/hs.key --key-claim tenant_key --policy pol_1 --required-claims "
             "exp,sub --allowed-issuers https://idp --audiences a,b --algorithms HS256 --leeway 30 "
             "--ip-allow 10.0.0.0/8,::1 --ip-deny 10.9.0.0/16 --active true --no-validate",
             dir);
    expect_body("POST " URL "/v1/profiles?validate=false", args,
                "{\"client_id\":\"cli_1\",\"name\":\"p\",\"auth_type\":\"jwt\",\"collection_ids\":"
                "[\"col_1\",\"col_2\"],\"jwt_key\":\"0123456789abcdef0123456789abcdef-secret\","
                "\"key_claim\":\"tenant_key\",\"policy_id\":\"pol_1\",\"required_claims\":[\"exp\","
                "\"sub\"],\"allowed_issuers\":[\"https://idp\"],\"audiences\":[\"a\",\"b\"],"
                "\"algorithms\":[\"HS256\"],\"leeway_seconds\":30,\"ip_allow\":[\"10.0.0.0/8\","
                "\"::1\"],\"ip_deny\":[\"10.9.0.0/16\"],\"active\":true}");
    expect_body("PATCH " URL "/v1/profiles/ap_1",
                "profiles update ap_1 --policy '' --required-claims '' --discovery-url "
                "https://idp/.well-known/openid-configuration",
                "{\"policy_id\":null,\"required_claims\":[],\"oidc_discovery_url\":"
                "\"https://idp/.well-known/openid-configuration\"}");
    expect_body("PATCH " URL "/v1/profiles/ap_1", "profiles update ap_1 --jwks-uri https://idp/k",
                "{\"oidc_jwks_uri\":\"https://idp/k\"}");
    expect_body("PATCH " URL "/v1/profiles/ap_1",
                "profiles update ap_1 --token-types at+jwt,application/at+jwt",
                "{\"token_types\":[\"at+jwt\",\"application/at+jwt\"]}");
    expect_body("PATCH " URL "/v1/profiles/ap_1", "profiles update ap_1 --token-types ''",
                "{\"token_types\":[]}");
    expect_body("POST " URL "/v1/policies",
                "policies create --name gold --rate-limit 100/60 --quota none",
                "{\"name\":\"gold\",\"rate_limit\":{\"requests\":100,\"per_seconds\":60},"
                "\"quota\":null}");
}

static void test_request_bodies_of_keys_explain_config(void **state)
{
    (void)state;
    expect_body("POST " URL "/v1/profiles/ap_1/keys", "keys create ap_1 --grace-seconds 3600",
                "{\"grace_seconds\":3600}");
    expect_body("POST " URL "/v1/profiles/ap_1/keys", "keys create ap_1", "{}");
    expect_body("POST " URL "/v1/explain",
                "explain --method GET --path /orders/v1/items/7 --header 'Authorization: Bearer "
                "x.y.z' --header 'X-Trace: 1' --header 'x-trace:2'",
                "{\"method\":\"GET\",\"path\":\"/orders/v1/items/7\",\"headers\":{"
                "\"Authorization\":\"Bearer x.y.z\",\"X-Trace\":\"1\",\"x-trace\":\"2\"}}");
    expect_body("POST " URL "/v1/explain",
                "explain --method POST --path /a --header 'A: 1' --header 'A: 2'",
                "{\"method\":\"POST\",\"path\":\"/a\",\"headers\":{\"A\":\"1, 2\"}}");
    expect_body("POST " URL "/v1/explain", "explain --method GET --path /a --client-ip 10.1.2.3",
                "{\"method\":\"GET\",\"path\":\"/a\",\"client_ip\":\"10.1.2.3\","
                "\"headers\":{}}");
    /* apply is sent even with --dry-run (see test_config_apply_plan_and_new_keys) */
    struct recorder r;
    write_file("cfg.json", "{\"collections\":[{\"name\":\"c\"}],\"clients\":[]}");
    const char *req =
        record_one(&r, ENV_TOKEN, 200, "{}", "config apply cfg.json --prune --no-validate", 0);
    assert_non_null(strstr(req, "PUT /v1/config?prune=true&validate=false HTTP/1.1\r\n"));
    json_t *body = request_body(req),
           *want = json_loads("{\"collections\":[{\"name\":\"c\"}],\"clients\":[]}", 0, NULL);
    assert_true(json_equal(body, want));
    json_decref(body);
    json_decref(want);
    recorder_free(&r);
}

/* `config apply --dry-run` asks the server for the plan (only it can say what would change) and
 * prints it; the answer's keys for new profiles are printed once, with their profile. */
static void test_config_apply_plan_and_new_keys(void **state)
{
    struct recorder r;
    const char *req;
    json_t *body;
    (void)state;
    write_file("cfg.json", "{\"clients\":[]}");
    req = record_one(&r, ENV_TOKEN, 200,
                     "{\"clients\":0,\"generation\":4,\"dry_run\":true,\"new_keys\":[],"
                     "\"plan\":{\"clients\":{\"created\":[],\"changed\":[],\"deleted\":[{\"id\":"
                     "\"cli_A\",\"name\":\"acme\"}],\"unchanged\":2}}}",
                     "config apply cfg.json --dry-run --prune", 0);
    assert_non_null(strstr(req, "PUT /v1/config?prune=true&dry_run=true HTTP/1.1\r\n"));
    body = request_body(req);
    assert_true(json_is_array(json_object_get(body, "clients")));
    json_decref(body);
    assert_non_null(strstr(out, "dry run: nothing was changed"));
    assert_non_null(strstr(out, "  delete  client      cli_A  acme\n"));
    assert_non_null(strstr(out, "2 object(s) unchanged"));
    recorder_free(&r);

    req = record_one(&r, ENV_TOKEN, 200,
                     "{\"profiles\":1,\"keys\":1,\"generation\":5,\"plan\":{\"profiles\":{"
                     "\"created\":[{\"id\":\"ap_N\",\"name\":\"new\"}],\"changed\":[],"
                     "\"deleted\":[],\"unchanged\":0}},\"new_keys\":[{\"profile_id\":\"ap_N\","
                     "\"profile_name\":\"new\",\"id\":\"key_N\",\"key\":\"" NEW_KEY "\"}]}",
                     "config apply cfg.json", 0);
    assert_non_null(strstr(out, "configuration applied from cfg.json\n"));
    assert_non_null(strstr(out, "keys:       1\n"));
    assert_non_null(strstr(out, "  create  profile     ap_N  new\n"));
    assert_non_null(strstr(out, "    ap_N (new): " NEW_KEY "\n"));
    assert_non_null(strstr(out, "shown only once"));
    recorder_free(&r);

    /* a refused apply: the error line names the CLI's flag, then the plan, all on stderr */
    req = record_one(&r, ENV_TOKEN, 409,
                     "{\"error\":\"conflict\",\"message\":\"apply with ?prune=true to delete "
                     "them\",\"plan\":{\"clients\":{\"created\":[],\"changed\":[],\"deleted\":"
                     "[{\"id\":\"cli_A\",\"name\":\"acme\"}],\"unchanged\":0}}}",
                     "config apply cfg.json", 1);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "gatehouse: 409 conflict: apply with --prune to delete them\n"));
    assert_non_null(strstr(err, "  delete  client      cli_A  acme\n"));
    recorder_free(&r);
}

/* An API hint names the API's query flag; the CLI names its own flag for it (issue 10, item 12). */
static void test_error_hint_names_the_cli_flag(void **state)
{
    struct recorder r;
    (void)state;
    record_one(&r, ENV_TOKEN, 422,
               "{\"error\":\"validation_failed\",\"message\":\"oidc_jwks_uri: cannot connect "
               "(save with ?validate=false to skip this check)\",\"field\":\"oidc_jwks_uri\"}",
               "profiles update ap_1 --active true", 1);
    assert_string_equal(err, "gatehouse: 422 validation_failed: oidc_jwks_uri: cannot connect "
                             "(save with --no-validate to skip this check) (field: "
                             "oidc_jwks_uri)\n");
    recorder_free(&r);
}

/* `gatehouse audit`: the filters as query parameters, newest first as the API answers. */
static void test_audit(void **state)
{
    char line[512];
    (void)state;
    assert_null(dry("GET " URL "/v1/audit?kind=profiles&id=ap%2F1&limit=7",
                    "audit --kind profiles --id ap/1 --limit 7"));
    assert_null(dry("GET " URL "/v1/audit?limit=50", "audit"));
    gh_mockidp_set_json(mock, "/v1/audit", 200,
                        "{\"data\":[{\"seq\":2,\"at\":\"2025-01-02T03:04:06.000Z\",\"action\":"
                        "\"delete\",\"kind\":\"clients\",\"id\":\"cli_A\",\"actor\":"
                        "\"bootstrap\",\"remote_addr\":\"127.0.0.1\",\"detail\":null}],"
                        "\"next\":null}",
                        NULL);
    assert_int_equal(run_mock("audit"), 0);
    assert_non_null(strstr(line_with("AT", line, sizeof line), "ACTION"));
    assert_non_null(strstr(line_with("cli_A", line, sizeof line), "delete"));
    assert_non_null(strstr(line, "bootstrap"));
}

static void test_requests_without_a_body(void **state)
{
    (void)state;
    /* requests without a body; ids are escaped into the path */
    assert_null(dry("GET " URL "/v1/config?secrets=true", "config export --secrets out.json"));
    assert_null(dry("DELETE " URL "/v1/profiles/ap_1/keys/key_1", "keys delete ap_1 key_1"));
    assert_null(dry("GET " URL "/v1/collections/a%2Fb%20c", "collections get 'a/b c'"));
    assert_null(dry("POST " URL "/v1/providers/prv_1/refresh", "providers refresh prv_1"));
    assert_null(dry("GET " URL "/v1/clients?limit=5", "clients list --limit 5"));
    assert_null(
        dry("GET " URL "/v1/collections/col_1/endpoints?limit=100", "endpoints list col_1"));
    assert_null(dry("GET " URL "/v1/profiles/ap_1/keys?limit=100", "keys list ap_1"));
    /* after --, an argument that looks like an option is an id */
    assert_int_equal(run_env(ENV_TOKEN, "collections get --dry-run -- --odd"), 0);
    assert_non_null(strstr(out, "GET http://127.0.0.1:9901/v1/collections/--odd\n"));
    /* a dry run needs no token, and says so (./data holds a broken token file by now) */
    assert_int_equal(run_env("GATEHOUSE_DATA_DIR=empty", "clients list --dry-run"), 0);
    assert_non_null(strstr(out, "GET http://127.0.0.1:9901/v1/clients?limit=100\n"));
    assert_non_null(strstr(out, "no admin token"));
}

/* ---- views ---- */

static void test_object_and_table_views(void **state)
{
    char line[512];
    (void)state;
    gh_mockidp_set_json(mock, "/v1/collections/col_AAAAAAAAAAAA", 200, COL1, NULL);
    assert_int_equal(run_mock("collections get col_AAAAAAAAAAAA"), 0);
    /* key: value lines, values aligned after the longest name */
    size_t column = strlen("forward_authorization: ");
    assert_string_equal(line_with("name:", line, sizeof line) + column, "orders");
    assert_string_equal(line_with("timeout_ms:", line, sizeof line) + column, "30000");
    assert_string_equal(line_with("forward_authorization:", line, sizeof line) + column, "true");

    gh_mockidp_set_json(mock, "/v1/providers", 200,
                        "{\"data\":[{\"id\":\"prv_AAAAAAAAAAAA\",\"issuer\":\"https://idp\","
                        "\"keys\":[{\"kid\":\"a\",\"kty\":\"RSA\"},{\"kid\":\"b\",\"kty\":\"EC\"}],"
                        "\"fetched_at\":\"2025-01-02T03:04:05Z\",\"stale\":false,\"last_error\":"
                        "null,\"url\":\"https://idp/jwks\",\"name\":\"evil\\u001b[2J\"}],"
                        "\"next\":null}",
                        NULL);
    assert_int_equal(run_mock("providers list"), 0);
    assert_non_null(strstr(line_with("ID", line, sizeof line), "LAST_ERROR  URL"));
    line_with("prv_", line, sizeof line);
    assert_non_null(strstr(line, "  2  "));
    assert_non_null(strstr(line, "2025-01-02T03:04:05Z  false  -           https://idp/jwks"));

    gh_mockidp_set_json(mock, "/v1/clients/cli_ESC", 200,
                        "{\"id\":\"cli_ESC\",\"name\":\"evil\\u001b[2J\\u0007\"}", NULL);
    assert_int_equal(run_mock("clients get cli_ESC"), 0);
    assert_null(strchr(out, '\x1b'));
    assert_null(strchr(out, '\a'));
}

static void test_explain_config_and_delete_views(void **state)
{
    char path[512];
    struct stat st;
    (void)state;
    gh_mockidp_set_json(mock, "/v1/explain", 200,
                        "{\"status\":403,\"reason\":\"forbidden\",\"steps\":[{\"step\":\"route\","
                        "\"result\":\"ok\",\"detail\":\"col_1 ep_1\"},{\"step\":\"profile\","
                        "\"result\":\"fail\",\"detail\":\"collection not granted\"}]}",
                        NULL);
    assert_int_equal(run_mock("explain --method GET --path /orders/v1/x"), 0);
    assert_non_null(strstr(out, "1. route: ok (col_1 ep_1)\n"));
    assert_non_null(strstr(out, "2. profile: fail (collection not granted)\n"));
    assert_non_null(strstr(out, "status: 403\n"));
    assert_non_null(strstr(out, "reason: forbidden\n"));

    gh_mockidp_set_json(mock, "/v1/config", 200,
                        "{\"collections\":[" COL1 "],\"clients\":[],\"secrets\":false}", NULL);
    assert_int_equal(run_mock("config export out.json"), 0);
    snprintf(path, sizeof path, "%s/out.json", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char text[8192];
    json_t *written = json_loads(slurp("out.json", text, sizeof text), 0, NULL);
    assert_non_null(written);
    assert_non_null(strstr(text, "\n  \"collections\": ["));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(written, "collections"), 0), "name")),
                        "orders");
    json_decref(written);
    assert_int_equal(run_mock("config export"), 0);
    json_t *printed = out_json();
    assert_true(json_is_array(json_object_get(printed, "clients")));
    json_decref(printed);

    write_file("cfg.json", "{\"collections\":[]}");
    gh_mockidp_set_json(mock, "/v1/config", 200,
                        "{\"collections\":[" COL1 "," COL2 "],\"clients\":[]}", NULL);
    assert_int_equal(run_mock("config apply cfg.json"), 0);
    assert_non_null(strstr(out, "configuration applied from cfg.json\n"));
    assert_non_null(strstr(out, "collections: 2\n"));

    struct gh_mock_response none = {.status = 204};
    gh_mockidp_set(mock, "/v1/collections/col_9", &none);
    assert_int_equal(run_mock("collections delete col_9"), 0);
    assert_string_equal(out, "deleted collection col_9\n");
}

/* ---- usage ---- */

static void test_usage_errors_exit_2(void **state)
{
    static const char *const cases[][2] = {
        {"collections create --active yes", "true or false"},
        {"collections create --active True", "true or false"},
        {"collections create --timeout-ms 12x", "whole number"},
        {"collections create --timeout-ms -5", "whole number"},
        {"collections create --timeout-ms ' 5'", "whole number"},
        {"collections create --timeout-ms 99999999999999999999", "whole number"},
        {"policies create --rate-limit 10", "REQUESTS/SECONDS"},
        {"policies create --quota 0/60", "REQUESTS/SECONDS"},
        {"policies create --quota 5/", "REQUESTS/SECONDS"},
        {"profiles create --collections 'a,,b'", "comma list"},
        {"collections get", "takes ID"},
        {"collections get a b", "takes ID"},
        {"keys delete ap_1", "takes PROFILE_ID KEY_ID"},
        {"collections list extra", "takes no arguments"},
        {"collections frobnicate", "unknown collections command 'frobnicate'"},
        {"collections", "needs one of: list, get, create, update, delete"},
        {"collections list --bogus", "unknown option '--bogus'"},
        {"collections list --name x", "unknown option '--name'"},
        {"collections create --data '[1]'", "one JSON object"},
        {"collections create --data '{'", "one JSON object"},
        {"collections create --data '{\"a\":1,\"a\":2}'", "one JSON object"},
        {"collections get x --data '{}'", "create and update only"},
        {"collections update col_1", "nothing to change"},
        {"profiles create --jwt-key-file missing.pem", "missing.pem"},
        {"profiles create --jwt-key-file big.pem", "64 KiB"},
        {"explain --path /a", "explain needs --method"},
        {"explain --method GET", "explain needs --path"},
        {"explain --method GET --path /a --header nocolon", "'Name: value'"},
        {"explain --method GET --path /a --header 'Bad Name: v'", "'Name: value'"},
        {"collections get x --limit 3", "--limit applies to list only"},
        {"collections list --limit 0", "--limit takes"},
        {"config apply", "takes FILE"},
        {"config apply missing.json", "missing.json"},
        {"config apply notjson.txt", "not one JSON object"},
        {"config export a b", "takes [FILE]"},
        {"providers create", "unknown providers command"},
    };
    char *big = malloc(70000);
    (void)state;
    memset(big, 'k', 69999);
    big[69999] = '\0';
    write_file("big.pem", big);
    free(big);
    write_file("notjson.txt", "[1,2]");
    gh_mockidp_reset_hits(mock);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (run_mock("%s", cases[i][0]) != 2 || strstr(err, cases[i][1]) == NULL ||
            strstr(err, "gatehouse help") == NULL || out[0] != '\0')
            fail_msg("`%s`: expected exit 2 and '%s', got stdout '%s' stderr '%s'", cases[i][0],
                     cases[i][1], out, err);
    }
    /* options whose error the appended --admin-url would hide */
    assert_int_equal(run_env(ENV_TOKEN, "collections list --admin-url ftp://example"), 2);
    assert_non_null(strstr(err, "not an http:// or https://"));
    assert_int_equal(run_env(ENV_TOKEN, "collections list --admin-url 'http://h/?q=1'"), 2);
    assert_non_null(strstr(err, "not an http:// or https://"));
    assert_int_equal(run_env(ENV_TOKEN, "collections get x --db"), 2);
    assert_non_null(strstr(err, "option --db needs a value"));
    /* nothing was sent */
    assert_int_equal(gh_mockidp_hits(mock, "/v1/collections"), 0);
    assert_int_equal(gh_mockidp_hits(mock, "/v1/profiles"), 0);
    assert_int_equal(gh_mockidp_hits(mock, "/v1/explain"), 0);
    assert_int_equal(gh_mockidp_hits(mock, "/v1/config"), 0);
}

static void test_help(void **state)
{
    static const char *const topics[][2] = {
        {"collections", "--forward-authorization"},
        {"endpoints", "--method"},
        {"clients", "--description"},
        {"profiles", "--jwt-key-file"},
        {"keys", "--grace-seconds"},
        {"policies", "--rate-limit"},
        {"providers", "refresh"},
        {"explain", "--header"},
        {"config", "--secrets"},
        {"config", "--prune"},
        {"explain", "--client-ip"},
        {"audit", "--kind"},
    };
    char args[64];
    (void)state;
    assert_int_equal(run_env("", "help"), 0);
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        assert_non_null(strstr(out, topics[i][0]));
    }
    assert_non_null(strstr(out, "token verify")); /* the rest is unchanged */
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        snprintf(args, sizeof args, "help %s", topics[i][0]);
        assert_int_equal(run_env("", args), 0);
        assert_non_null(strstr(out, topics[i][1]));
        assert_non_null(strstr(out, "--dry-run"));
        assert_non_null(strstr(out, "--admin-url"));
    }
    assert_int_equal(run_env("", "profiles create --help"), 0);
    assert_non_null(strstr(out, "--no-validate"));
    assert_int_equal(run_env("", "help token"), 0);
    assert_non_null(strstr(out, "--discovery-url"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_table_and_json),
        cmocka_unit_test(test_list_follows_next_and_honours_limit),
        cmocka_unit_test(test_paging_on_the_wire),
        cmocka_unit_test(test_token_from_env_and_from_admin_token_file),
        cmocka_unit_test(test_create_shows_the_key_once),
        cmocka_unit_test(test_writes_on_the_wire),
        cmocka_unit_test(test_error_answers_exit_1),
        cmocka_unit_test(test_unreachable_or_nonsense_exit_2),
        cmocka_unit_test(test_request_bodies_of_objects),
        cmocka_unit_test(test_request_bodies_of_keys_explain_config),
        cmocka_unit_test(test_config_apply_plan_and_new_keys),
        cmocka_unit_test(test_error_hint_names_the_cli_flag),
        cmocka_unit_test(test_audit),
        cmocka_unit_test(test_requests_without_a_body),
        cmocka_unit_test(test_object_and_table_views),
        cmocka_unit_test(test_explain_config_and_delete_views),
        cmocka_unit_test(test_usage_errors_exit_2),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
