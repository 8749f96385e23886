// SPDX-License-Identifier: Apache-2.0
/*
 * The admin API's HTTP layer (src/admin/http.c) driven by real HTTP clients over loopback: libcurl
 * for ordinary calls, raw sockets where the bytes on the wire matter (an oversized Content-Length,
 * idle or half-sent connections). It proves routing with {param} segments, the 404/405/401/400/413
 * answers and their headers, the 1 MiB body limit at the byte, keep-alive across every kind of
 * answer, concurrency, clients that vanish or stop reading (no SIGPIPE), and that stopping is
 * prompt with idle connections open, finishes the request in progress and leaks no descriptor. The
 * helpers for handlers are tested directly as well.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin/http.h"
#include "common/error.h"

#define TOKEN "adm_test_token_0123456789abcdefghijklmnop"
#define MIB   (1024 * 1024)

/* ---- the application under the layer ---- */

static atomic_int slow_entered;
static atomic_int counted_calls;

static void h_health(void *app, const struct gh_admin_request *r, struct gh_admin_response *res)
{
    res->body = json_pack("{s:s}", "status", "ok");
}

static void h_list(void *app, const struct gh_admin_request *r, struct gh_admin_response *res)
{
    char *name = gh_admin_query_param(r, "name");

    atomic_fetch_add(&counted_calls, 1);
    res->body = json_pack("{s:[],s:s,s:o,s:s,s:s,s:b}", "data", "remote_addr", r->remote_addr,
                          "name", name != NULL ? json_string(name) : json_null(), "path", r->path,
                          "query", r->query, "has_body", r->body != NULL);
    free(name);
}

static void h_create(void *app, const struct gh_admin_request *r, struct gh_admin_response *res)
{
    json_t *body = gh_admin_json_body(r, res);

    if (body == NULL)
        return;
    res->status = 201;
    res->body = json_pack("{s:I,s:I}", "body_len", (json_int_t)r->body_len, "members",
                          (json_int_t)json_object_size(body));
    json_decref(body);
}

static void h_get(void *app, const struct gh_admin_request *r, struct gh_admin_response *res)
{
    atomic_fetch_add(&counted_calls, 1);
    res->body = json_pack("{s:s,s:s,s:I}", "id", r->params[0], "method", r->method, "n",
                          (json_int_t)r->n_params);
}

static void h_patch(void *app, const struct gh_admin_request *r, struct gh_admin_response *res)
{
    json_t *body = gh_admin_json_body(r, res);

    if (body != NULL)
        res->body = json_pack("{s:s,s:o}", "id", r->params[0], "patch", body);
}

static void h_delete(void *app, const struct gh_admin_request *r, struct gh_admin_response *res)
{
    res->status = 204;
    res->body = json_pack("{s:s}", "never", "sent"); /* a 204 has no body, whatever is set */
}

static void h_sub(void *app, const struct gh_admin_request *r, struct gh_admin_response *res)
{
    res->body = json_pack("{s:s,s:s,s:I}", "id", r->params[0], "sub", r->params[1], "n",
                          (json_int_t)r->n_params);
}

static void h_metrics(void *app, const struct gh_admin_request *r, struct gh_admin_response *res)
{
    res->text = strdup("gatehouse_up 1\n");
    res->content_type = "text/plain; version=0.0.4";
}

static void h_invalid(void *app, const struct gh_admin_request *r, struct gh_admin_response *res)
{
    gh_admin_error(res, 422, "validation_failed", "name", "name must be at most %d bytes", 64);
}

static void h_slow(void *app, const struct gh_admin_request *r, struct gh_admin_response *res)
{
    struct timespec t = {0, 300 * 1000 * 1000};

    atomic_store(&slow_entered, 1);
    nanosleep(&t, NULL);
    res->body = json_pack("{s:b}", "slow", 1);
}

static void h_big(void *app, const struct gh_admin_request *r, struct gh_admin_response *res)
{
    if ((res->text = malloc(32 * MIB + 1)) != NULL) {
        memset(res->text, 'x', 32 * MIB);
        res->text[32 * MIB] = '\0';
    }
}

static const struct gh_admin_route routes[] = {
    {"GET", "/healthz", h_health, 1, 0},
    {"GET", "/v1/things", h_list, 0, 0},
    {"POST", "/v1/things", h_create, 0, 0},
    {"GET", "/v1/things/{id}", h_get, 0, 0},
    {"PATCH", "/v1/things/{id}", h_patch, 0, 0},
    {"DELETE", "/v1/things/{id}", h_delete, 0, 0},
    {"POST", "/v1/things/{id}/sub/{sub}", h_sub, 0, 0},
    {"GET", "/metrics", h_metrics, 0, 0},
    {"POST", "/v1/invalid", h_invalid, 0, 0},
    {"GET", "/v1/slow", h_slow, 0, 0},
    {"GET", "/v1/big", h_big, 0, 0},
};

static struct gh_admin_server_options make_options(const char *listen)
{
    struct gh_admin_server_options o = {listen, TOKEN, routes, sizeof routes / sizeof routes[0],
                                        NULL,   NULL,  NULL,   NULL};
    return o;
}

/* ---- an HTTP client ---- */

struct answer {
    long status;
    char *body;
    size_t len;
    long content_length; /* -1 when the header is absent */
    long connects;       /* new connections curl made for this request */
    char content_type[128], allow[128], www_authenticate[256], cache_control[64];
    char request_id[160];
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct answer *a = ud;
    char *grown = realloc(a->body, a->len + size * n + 1);

    if (grown == NULL)
        return 0;
    memcpy(grown + a->len, p, size * n);
    a->body = grown;
    a->len += size * n;
    a->body[a->len] = '\0';
    return size * n;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);

    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return;
    line += n + 1;
    len -= n + 1;
    while (len > 0 && line[0] == ' ')
        line++, len--;
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    snprintf(out, cap, "%.*s", (int)len, line);
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct answer *a = ud;
    char length[32] = "";

    header_value(p, size * n, "Content-Type", a->content_type, sizeof a->content_type);
    header_value(p, size * n, "Allow", a->allow, sizeof a->allow);
    header_value(p, size * n, "WWW-Authenticate", a->www_authenticate, sizeof a->www_authenticate);
    header_value(p, size * n, "Cache-Control", a->cache_control, sizeof a->cache_control);
    header_value(p, size * n, "X-Request-Id", a->request_id, sizeof a->request_id);
    header_value(p, size * n, "Content-Length", length, sizeof length);
    if (length[0] != '\0')
        a->content_length = atol(length);
    return size * n;
}

static void answer_clear(struct answer *a)
{
    free(a->body);
    memset(a, 0, sizeof *a);
}

/* One more request header for the next call()s ("Name: value"), or NULL. */
static const char *extra_header;

/* One request on handle `h` (reused between calls, so connections are kept alive). `auth` is the
 * whole Authorization value or NULL. Returns the curl code; the answer goes to `a`. */
static CURLcode call(CURL *h, const char *method, const char *base, const char *path,
                     const char *auth, const void *body, size_t len, struct answer *a)
{
    char url[512], header[512];
    struct curl_slist *headers = curl_slist_append(NULL, "Expect:");
    CURLcode rc;

    memset(a, 0, sizeof *a);
    a->content_length = -1;
    snprintf(url, sizeof url, "%s%s", base, path);
    if (auth != NULL) {
        snprintf(header, sizeof header, "Authorization: %s", auth);
        headers = curl_slist_append(headers, header);
    }
    if (extra_header != NULL)
        headers = curl_slist_append(headers, extra_header);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &a->connects);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    return rc;
}

/* The answer's JSON member `name` as a string, or "" */
static const char *member(json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    return s != NULL ? s : "";
}

static json_t *parse(const struct answer *a)
{
    json_t *v = json_loads(a->body != NULL ? a->body : "", 0, NULL);
    assert_non_null(v);
    return v;
}

/* 1 when `id` is 32 lower-case hex digits: a generated request id, as the gateway's. */
static int is_generated_id(const char *id)
{
    return strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32;
}

/* Checks a JSON error answer: status, code, a message, a request id in the body and in
 * X-Request-Id, and the framing headers. */
static void assert_error(const struct answer *a, long status, const char *code)
{
    json_t *v = parse(a);

    assert_int_equal(a->status, status);
    assert_string_equal(member(v, "error"), code);
    assert_true(strlen(member(v, "message")) > 0);
    assert_true(strlen(member(v, "request_id")) > 0);
    assert_string_equal(member(v, "request_id"), a->request_id);
    assert_string_equal(a->content_type, "application/json");
    assert_string_equal(a->cache_control, "no-store");
    assert_int_equal(a->content_length, (long)a->len);
    json_decref(v);
}

static int port_of(const struct gh_admin_server *s)
{
    const char *colon = strrchr(gh_admin_server_address(s), ':');
    return colon != NULL ? atoi(colon + 1) : -1;
}

static int connect_raw(int port)
{
    struct sockaddr_in sin = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* ---- the shared server ---- */

static struct gh_admin_server *server;
static char base[128];

static int group_setup(void **state)
{
    struct gh_admin_server_options o = make_options("127.0.0.1:0");
    static struct gh_admin_server_options keep;
    char error[256];

    keep = o; /* the options must outlive the server */
    if (gh_admin_server_start(&keep, &server, error, sizeof error) != GH_OK) {
        fprintf(stderr, "start: %s\n", error);
        return -1;
    }
    snprintf(base, sizeof base, "http://%s", gh_admin_server_address(server));
    return 0;
}

static int group_teardown(void **state)
{
    gh_admin_server_stop(server);
    server = NULL;
    return 0;
}

static void test_address_has_real_port(void **state)
{
    const char *address = gh_admin_server_address(server);

    assert_true(strncmp(address, "127.0.0.1:", 10) == 0);
    assert_true(port_of(server) > 0);
}

/* One call with the admin token on a fresh handle; checks the status and the exact body. */
static void expect(const char *method, const char *path, const char *body, long status,
                   const char *want)
{
    CURL *h = curl_easy_init();
    struct answer a;

    assert_int_equal(
        call(h, method, base, path, "Bearer " TOKEN, body, body ? strlen(body) : 0, &a), CURLE_OK);
    if (a.status != status || strcmp(a.body != NULL ? a.body : "", want) != 0)
        fail_msg("%s %s: %ld %s, want %ld %s", method, path, a.status, a.body, status, want);
    answer_clear(&a);
    curl_easy_cleanup(h);
}

static void test_routing_and_params(void **state)
{
    expect("GET", "/v1/things/abc", NULL, 200, "{\"id\":\"abc\",\"method\":\"GET\",\"n\":1}");
    expect("POST", "/v1/things/t1/sub/s-2", NULL, 200, "{\"id\":\"t1\",\"sub\":\"s-2\",\"n\":2}");
    /* paths are not percent-decoded: a parameter is the raw segment */
    expect("GET", "/v1/things/a%2Fb", NULL, 200, "{\"id\":\"a%2Fb\",\"method\":\"GET\",\"n\":1}");
    /* the query string is split off before routing and handed over raw */
    expect("GET", "/v1/things?name=x&y=%41", NULL, 200,
           "{\"data\":[],\"remote_addr\":\"127.0.0.1\",\"name\":\"x\",\"path\":\"/v1/things\","
           "\"query\":\"name=x&y=%41\",\"has_body\":false}");
}

static void test_not_found(void **state)
{
    static const char *paths[] = {
        "/nope",
        "/v1/things/",
        "/v1/things/abc/",
        "/v1/things/abc/sub/",
        "//v1/things",
        "/v1/things/a/sub/b/c",
        "/V1/things",
        "/v1",
        "/",
        "/healthz/",
    };
    CURL *h = curl_easy_init();
    struct answer a;

    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        call(h, "GET", base, paths[i], "Bearer " TOKEN, NULL, 0, &a);
        if (a.status != 404)
            fail_msg("%s answered %ld", paths[i], a.status);
        assert_error(&a, 404, "not_found");
        answer_clear(&a);
        /* without the token the API is not mapped for anyone: 401 before 404 */
        call(h, "GET", base, paths[i], NULL, NULL, 0, &a);
        assert_error(&a, 401, "unauthorized");
        answer_clear(&a);
    }
    curl_easy_cleanup(h);
}

static void test_method_not_allowed(void **state)
{
    CURL *h = curl_easy_init();
    struct answer a;

    call(h, "PUT", base, "/v1/things", "Bearer " TOKEN, "{}", 2, &a);
    assert_error(&a, 405, "method_not_allowed");
    assert_string_equal(a.allow, "GET, POST");
    answer_clear(&a);

    call(h, "POST", base, "/v1/things/x", "Bearer " TOKEN, "{}", 2, &a);
    assert_error(&a, 405, "method_not_allowed");
    assert_string_equal(a.allow, "GET, PATCH, DELETE");
    answer_clear(&a);

    /* a public path takes only GET; another method is an API call like any other: token first */
    call(h, "DELETE", base, "/healthz", "Bearer " TOKEN, NULL, 0, &a);
    assert_error(&a, 405, "method_not_allowed");
    assert_string_equal(a.allow, "GET");
    answer_clear(&a);
    call(h, "DELETE", base, "/healthz", NULL, NULL, 0, &a);
    assert_error(&a, 401, "unauthorized");
    answer_clear(&a);
    call(h, "PUT", base, "/v1/things", NULL, "{}", 2, &a);
    assert_error(&a, 401, "unauthorized");
    assert_string_equal(a.allow, ""); /* no Allow: nothing is said of the API before the token */
    answer_clear(&a);
    curl_easy_cleanup(h);
}

/* Every error answer names its request like the gateway's (SPEC §5): a sane X-Request-Id from
 * the caller is kept so traces join up, any other is replaced by 128 random bits in hex, and
 * each answer gets its own. Successful answers are left as they are. */
static void test_error_request_id(void **state)
{
    CURL *h = curl_easy_init();
    struct answer a;
    char first[160];

    call(h, "GET", base, "/nope", "Bearer " TOKEN, NULL, 0, &a);
    assert_error(&a, 404, "not_found");
    assert_true(is_generated_id(a.request_id));
    snprintf(first, sizeof first, "%s", a.request_id);
    answer_clear(&a);
    call(h, "GET", base, "/v1/things", "Bearer wrong", NULL, 0, &a);
    assert_error(&a, 401, "unauthorized");
    assert_true(is_generated_id(a.request_id));
    assert_string_not_equal(a.request_id, first);
    answer_clear(&a);
    call(h, "POST", base, "/v1/things", "Bearer " TOKEN, "[1", 2, &a);
    assert_error(&a, 400, "bad_request");
    answer_clear(&a);
    call(h, "POST", base, "/v1/invalid", "Bearer " TOKEN, NULL, 0, &a);
    assert_error(&a, 422, "validation_failed");
    answer_clear(&a);

    extra_header = "X-Request-Id: trace-42.abc_DEF";
    call(h, "PUT", base, "/v1/things", "Bearer " TOKEN, "{}", 2, &a);
    assert_error(&a, 405, "method_not_allowed");
    assert_string_equal(a.request_id, "trace-42.abc_DEF");
    answer_clear(&a);
    extra_header = "X-Request-Id: no spaces; or=quotes\"";
    call(h, "GET", base, "/nope", "Bearer " TOKEN, NULL, 0, &a);
    assert_error(&a, 404, "not_found");
    assert_true(is_generated_id(a.request_id));
    answer_clear(&a);
    extra_header = NULL;

    call(h, "GET", base, "/v1/things/abc", "Bearer " TOKEN, NULL, 0, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "{\"id\":\"abc\",\"method\":\"GET\",\"n\":1}");
    answer_clear(&a);
    curl_easy_cleanup(h);
}

static void test_unauthorized(void **state)
{
    static const char *bad[] = {
        NULL,
        "Bearer wrong-token",
        "Bearer " TOKEN "x",
        "Bearer adm_test_token",
        "Basic YWRtaW46" TOKEN,
        "Bearer",
        "Bearer    ",
        TOKEN,
        "BearerX " TOKEN,
    };
    CURL *h = curl_easy_init();
    struct answer a;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        call(h, "GET", base, "/v1/things", bad[i], NULL, 0, &a);
        if (a.status != 401)
            fail_msg("Authorization '%s' answered %ld", bad[i] ? bad[i] : "(none)", a.status);
        assert_error(&a, 401, "unauthorized");
        assert_true(strncmp(a.www_authenticate, "Bearer realm=\"gatehouse-admin\"", 30) == 0);
        assert_null(strstr(a.body, TOKEN)); /* never echoed */
        answer_clear(&a);
    }
    /* a wrong bearer token is named as such (RFC 6750) */
    call(h, "GET", base, "/v1/things", "Bearer nope", NULL, 0, &a);
    assert_string_equal(a.www_authenticate,
                        "Bearer realm=\"gatehouse-admin\", error=\"invalid_token\"");
    answer_clear(&a);
    call(h, "GET", base, "/v1/things", NULL, NULL, 0, &a);
    assert_string_equal(a.www_authenticate, "Bearer realm=\"gatehouse-admin\"");
    answer_clear(&a);

    /* the right token, with the scheme in any case; the public route needs none */
    call(h, "GET", base, "/v1/things", "Bearer " TOKEN, NULL, 0, &a);
    assert_int_equal(a.status, 200);
    answer_clear(&a);
    call(h, "GET", base, "/v1/things", "bearer " TOKEN, NULL, 0, &a);
    assert_int_equal(a.status, 200);
    answer_clear(&a);
    call(h, "GET", base, "/healthz", NULL, NULL, 0, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "{\"status\":\"ok\"}");
    answer_clear(&a);
    curl_easy_cleanup(h);
}

static void test_bad_json(void **state)
{
    static const struct {
        const char *body;
        const char *words;
    } cases[] = {
        {"not json", "not valid JSON"},
        {"{\"a\":1", "not valid JSON"},
        {"[1,2]", "another type"},
        {"\"text\"", "another type"},
        {"{\"a\":1,\"a\":2}", "repeats a member name"},
        {"{\"a\":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}", "deeper than 16"},
        {"{} {}", "not valid JSON"},
    };
    CURL *h = curl_easy_init();
    struct answer a;
    json_t *v;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        call(h, "POST", base, "/v1/things", "Bearer " TOKEN, cases[i].body, strlen(cases[i].body),
             &a);
        assert_error(&a, 400, "bad_request");
        v = parse(&a);
        if (strstr(member(v, "message"), cases[i].words) == NULL)
            fail_msg("%s: message '%s'", cases[i].body, member(v, "message"));
        json_decref(v);
        answer_clear(&a);
    }
    call(h, "POST", base, "/v1/things", "Bearer " TOKEN, "", 0, &a);
    assert_error(&a, 400, "bad_request");
    answer_clear(&a);

    call(h, "PATCH", base, "/v1/things/z", "Bearer " TOKEN, "{\"b\":[1,{\"c\":null}]}", 20, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "{\"id\":\"z\",\"patch\":{\"b\":[1,{\"c\":null}]}}");
    answer_clear(&a);
    curl_easy_cleanup(h);
}

/* {"a":"xxx..."} of exactly `size` bytes */
static char *object_of_size(size_t size)
{
    char *body = malloc(size + 1);

    memcpy(body, "{\"a\":\"", 6);
    memset(body + 6, 'x', size - 8);
    memcpy(body + size - 2, "\"}", 3);
    return body;
}

static void test_body_limit(void **state)
{
    CURL *h = curl_easy_init();
    char *exact = object_of_size(MIB), *over = object_of_size(MIB + 1);
    struct answer a;
    json_t *v;

    call(h, "POST", base, "/v1/things", "Bearer " TOKEN, exact, MIB, &a);
    assert_int_equal(a.status, 201);
    v = parse(&a);
    assert_int_equal(json_integer_value(json_object_get(v, "body_len")), MIB);
    json_decref(v);
    answer_clear(&a);

    call(h, "POST", base, "/v1/things", "Bearer " TOKEN, over, MIB + 1, &a);
    assert_error(&a, 413, "payload_too_large");
    assert_int_equal(a.connects, 0); /* answered on the same connection, which stays usable */
    answer_clear(&a);

    /* the size is checked after the token: a stranger learns nothing from a large body */
    call(h, "POST", base, "/v1/things", NULL, over, MIB + 1, &a);
    assert_error(&a, 401, "unauthorized");
    answer_clear(&a);
    free(exact);
    free(over);
    curl_easy_cleanup(h);
}

/* A Content-Length above h2o's own cap is refused from the headers alone (h2o's 413). */
static void test_huge_body_refused_early(void **state)
{
    char request[256], reply[512] = "";
    int fd = connect_raw(port_of(server));
    ssize_t n;

    assert_true(fd >= 0);
    snprintf(request, sizeof request,
             "POST /v1/things HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
             "\r\nContent-Length: %d\r\n\r\n",
             64 * MIB);
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    n = read(fd, reply, sizeof reply - 1);
    assert_true(n > 12);
    assert_true(strncmp(reply, "HTTP/1.1 413 ", 13) == 0);
    close(fd);
}

/* A client that resets the connection in the middle of a large answer costs the server nothing
 * but that connection: no SIGPIPE for the process, and the next client is served. */
static void test_client_gone_mid_answer(void **state)
{
    static const char request[] = "GET /v1/big HTTP/1.1\r\nHost: x\r\n"
                                  "Authorization: Bearer " TOKEN "\r\n\r\n";
    struct linger reset = {1, 0};
    char buf[4096];
    CURL *h = curl_easy_init();
    struct answer a;
    int fd = connect_raw(port_of(server));

    assert_true(fd >= 0);
    assert_int_equal(write(fd, request, sizeof request - 1), (ssize_t)(sizeof request - 1));
    assert_true(read(fd, buf, sizeof buf) > 0); /* the answer is on its way */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
    usleep(100 * 1000);
    call(h, "GET", base, "/healthz", NULL, NULL, 0, &a);
    assert_int_equal(a.status, 200);
    answer_clear(&a);
    curl_easy_cleanup(h);
}

static void test_query_params(void **state)
{
    expect(
        "GET", "/v1/things?x=1&name=a%20b%2Bc+d%C3%A9&name=second", NULL, 200,
        "{\"data\":[],\"remote_addr\":\"127.0.0.1\",\"name\":\"a b+c d\xc3\xa9\",\"path\":"
        "\"/v1/things\",\"query\":\"x=1&name=a%20b%2Bc+d%C3%A9&name=second\",\"has_body\":false}");
    expect("GET", "/v1/things?name=a%00b", NULL, 200,
           "{\"data\":[],\"remote_addr\":\"127.0.0.1\",\"name\":null,\"path\":\"/v1/things\","
           "\"query\":\"name=a%00b\",\"has_body\":false}");
}

static void test_remote_addr_and_headers(void **state)
{
    CURL *h = curl_easy_init();
    struct answer a;
    json_t *v;

    call(h, "GET", base, "/v1/things", "Bearer " TOKEN, NULL, 0, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.content_type, "application/json");
    assert_string_equal(a.cache_control, "no-store");
    assert_int_equal(a.content_length, (long)a.len);
    v = parse(&a);
    assert_string_equal(member(v, "remote_addr"), "127.0.0.1");
    json_decref(v);
    answer_clear(&a);

    call(h, "GET", base, "/metrics", "Bearer " TOKEN, NULL, 0, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.content_type, "text/plain; version=0.0.4");
    assert_string_equal(a.body, "gatehouse_up 1\n");
    assert_int_equal(a.content_length, 15);
    answer_clear(&a);

    call(h, "POST", base, "/v1/invalid", "Bearer " TOKEN, NULL, 0, &a);
    assert_error(&a, 422, "validation_failed");
    v = parse(&a);
    assert_string_equal(member(v, "field"), "name");
    assert_string_equal(member(v, "message"), "name must be at most 64 bytes");
    json_decref(v);
    answer_clear(&a);
    curl_easy_cleanup(h);
}

static void test_no_content(void **state)
{
    CURL *h = curl_easy_init();
    struct answer a;

    call(h, "DELETE", base, "/v1/things/abc", "Bearer " TOKEN, NULL, 0, &a);
    assert_int_equal(a.status, 204);
    assert_int_equal(a.len, 0);
    assert_int_equal(a.content_length, -1);
    assert_string_equal(a.content_type, "");
    answer_clear(&a);
    call(h, "GET", base, "/healthz", NULL, NULL, 0, &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.connects, 0);
    answer_clear(&a);
    curl_easy_cleanup(h);
}

/* Every kind of answer leaves the connection open for the next request. */
static void test_keep_alive(void **state)
{
    static const struct {
        const char *method, *path, *auth, *body;
        long status;
    } seq[] = {
        {"GET", "/healthz", NULL, NULL, 200},
        {"GET", "/v1/things", "Bearer " TOKEN, NULL, 200},
        {"GET", "/nope", NULL, NULL, 401},
        {"GET", "/nope", "Bearer " TOKEN, NULL, 404},
        {"PUT", "/v1/things", "Bearer " TOKEN, NULL, 405},
        {"GET", "/v1/things", NULL, NULL, 401},
        {"POST", "/v1/things", "Bearer " TOKEN, "[]", 400},
        {"POST", "/v1/things", "Bearer " TOKEN, "{}", 201},
        {"DELETE", "/v1/things/1", "Bearer " TOKEN, NULL, 204},
        {"POST", "/v1/invalid", "Bearer " TOKEN, NULL, 422},
        {"GET", "/metrics", "Bearer " TOKEN, NULL, 200},
    };
    CURL *h = curl_easy_init();
    struct answer a;

    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        const char *body = seq[i].body;
        assert_int_equal(call(h, seq[i].method, base, seq[i].path, seq[i].auth, body,
                              body ? strlen(body) : 0, &a),
                         CURLE_OK);
        assert_int_equal(a.status, seq[i].status);
        if (a.connects != (i == 0 ? 1 : 0))
            fail_msg("request %zu (%s %s) made %ld connections", i, seq[i].method, seq[i].path,
                     a.connects);
        answer_clear(&a);
    }
    curl_easy_cleanup(h);
}

#define CLIENTS  20
#define REQUESTS 50

static atomic_int client_failures;

static void *client(void *arg)
{
    CURL *h = curl_easy_init();
    long n = (long)(intptr_t)arg;
    struct answer a;
    char path[64], want[80];

    for (int i = 0; i < REQUESTS; i++) {
        snprintf(path, sizeof path, "/v1/things/c%ld-%d", n, i);
        snprintf(want, sizeof want, "{\"id\":\"c%ld-%d\",\"method\":\"GET\",\"n\":1}", n, i);
        if (call(h, "GET", base, path, "Bearer " TOKEN, NULL, 0, &a) != CURLE_OK ||
            a.status != 200 || a.body == NULL || strcmp(a.body, want) != 0)
            atomic_fetch_add(&client_failures, 1);
        answer_clear(&a);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    pthread_t threads[CLIENTS];
    int before = atomic_load(&counted_calls);

    for (long i = 0; i < CLIENTS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, client, (void *)(intptr_t)i), 0);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(atomic_load(&client_failures), 0);
    assert_int_equal(atomic_load(&counted_calls) - before, CLIENTS * REQUESTS);
}

/* ---- starting and stopping ---- */

static void test_bad_options(void **state)
{
    static const char *listens[] = {
        "",
        "nonsense",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:99999",
        ":9901",
        "[::1:80",
        "[::1]80",
        "::1:80",
        "1.2.3.4.5:80",
        "[1.2.3.4]:80",
        "127.0.0.1:+80",
        "localhost:80",
        "127.0.0.1:0x50",
    };
    struct gh_admin_route bad_routes[] = {{"GET", "/v1/{a", h_get, 0, 0}};
    struct gh_admin_route five[] = {{"GET", "/{a}/{b}/{c}/{d}/{e}", h_get, 0, 0}};
    struct gh_admin_server_options o;
    struct gh_admin_server *s = (void *)1;
    char error[256];

    for (size_t i = 0; i < sizeof listens / sizeof listens[0]; i++) {
        o = make_options(listens[i]);
        if (gh_admin_server_start(&o, &s, error, sizeof error) != GH_ERR_INVALID_ARG)
            fail_msg("listen '%s' was accepted", listens[i]);
        assert_null(s);
        assert_true(strlen(error) > 0);
    }
    o = make_options("127.0.0.1:0");
    o.admin_token = "";
    assert_int_equal(gh_admin_server_start(&o, &s, error, sizeof error), GH_ERR_INVALID_ARG);
    o = make_options("127.0.0.1:0");
    o.routes = bad_routes;
    o.n_routes = 1;
    assert_int_equal(gh_admin_server_start(&o, &s, error, sizeof error), GH_ERR_INVALID_ARG);
    o.routes = five;
    assert_int_equal(gh_admin_server_start(&o, &s, error, sizeof error), GH_ERR_INVALID_ARG);

    /* a port in use is refused as in use, with the address in the message (issue 10, item 3) */
    char taken[64];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", port_of(server));
    o = make_options(taken);
    assert_int_equal(gh_admin_server_start(&o, &s, error, sizeof error), GH_ERR_ADDR_IN_USE);
    assert_non_null(strstr(error, taken));
    assert_non_null(strstr(error, "address already in use"));
    gh_admin_server_stop(NULL);
}

static void test_stop_with_idle_connections(void **state)
{
    struct gh_admin_server_options o = make_options("127.0.0.1:0");
    struct gh_admin_server *s;
    CURL *h = curl_easy_init();
    struct answer a;
    struct timespec t0;
    char url[128], buf[64];
    int idle, partial;

    assert_int_equal(gh_admin_server_start(&o, &s, NULL, 0), GH_OK);
    snprintf(url, sizeof url, "http://%s", gh_admin_server_address(s));
    assert_int_equal(call(h, "GET", url, "/healthz", NULL, NULL, 0, &a), CURLE_OK);
    assert_int_equal(a.status, 200);
    answer_clear(&a);
    idle = connect_raw(port_of(s));
    partial = connect_raw(port_of(s));
    assert_true(idle >= 0 && partial >= 0);
    assert_true(write(partial, "GET /healthz HTTP/1.1\r\nHost: x\r\n", 32) == 32);
    usleep(50 * 1000); /* let the loop accept both */

    clock_gettime(CLOCK_MONOTONIC, &t0);
    gh_admin_server_stop(s);
    long took = elapsed_ms(&t0);
    if (took > 1000)
        fail_msg("stop took %ld ms with idle connections open", took);

    /* every connection was closed by the server */
    assert_int_equal(read(idle, buf, sizeof buf), 0);
    assert_true(read(partial, buf, sizeof buf) <= 0);
    close(idle);
    close(partial);
    assert_int_not_equal(call(h, "GET", url, "/healthz", NULL, NULL, 0, &a), CURLE_OK);
    answer_clear(&a);
    curl_easy_cleanup(h);
}

/* A client that stops reading its answer holds stop() for the grace period only; its connection is
 * then cut, and the failed write (EPIPE) must not raise SIGPIPE in the process. */
static void test_stop_with_client_not_reading(void **state)
{
    static const char request[] = "GET /v1/big HTTP/1.1\r\nHost: x\r\n"
                                  "Authorization: Bearer " TOKEN "\r\n\r\n";
    struct gh_admin_server_options o = make_options("127.0.0.1:0");
    struct gh_admin_server *s;
    struct timespec t0;
    int fd;

    assert_int_equal(gh_admin_server_start(&o, &s, NULL, 0), GH_OK);
    fd = connect_raw(port_of(s));
    assert_true(fd >= 0);
    assert_int_equal(write(fd, request, sizeof request - 1), (ssize_t)(sizeof request - 1));
    usleep(200 * 1000); /* the answer fills the socket buffers and waits */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gh_admin_server_stop(s);
    long took = elapsed_ms(&t0);
    if (took < 1500 || took > 5000)
        fail_msg("stop took %ld ms with a client that does not read", took);
    close(fd);
}

struct slow_call {
    const char *base;
    struct answer a;
    CURLcode rc;
};

static void *slow_client(void *arg)
{
    struct slow_call *c = arg;
    CURL *h = curl_easy_init();

    c->rc = call(h, "GET", c->base, "/v1/slow", "Bearer " TOKEN, NULL, 0, &c->a);
    curl_easy_cleanup(h);
    return NULL;
}

static void test_stop_finishes_request_in_progress(void **state)
{
    struct gh_admin_server_options o = make_options("127.0.0.1:0");
    struct gh_admin_server *s;
    struct slow_call c;
    char url[128];
    pthread_t t;

    assert_int_equal(gh_admin_server_start(&o, &s, NULL, 0), GH_OK);
    snprintf(url, sizeof url, "http://%s", gh_admin_server_address(s));
    c.base = url;
    atomic_store(&slow_entered, 0);
    assert_int_equal(pthread_create(&t, NULL, slow_client, &c), 0);
    while (!atomic_load(&slow_entered))
        usleep(1000);
    gh_admin_server_stop(s);
    pthread_join(t, NULL);
    assert_int_equal(c.rc, CURLE_OK);
    assert_int_equal(c.a.status, 200);
    assert_string_equal(c.a.body, "{\"slow\":true}");
    answer_clear(&c.a);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static void test_start_stop_leaks_no_descriptor(void **state)
{
    struct gh_admin_server_options o = make_options("127.0.0.1:0");
    int before = count_fds();

    for (int i = 0; i < 5; i++) {
        struct gh_admin_server *s;
        int fd;
        assert_int_equal(gh_admin_server_start(&o, &s, NULL, 0), GH_OK);
        fd = connect_raw(port_of(s));
        assert_true(fd >= 0);
        assert_true(write(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 34) == 34);
        char buf[512];
        assert_true(read(fd, buf, sizeof buf) > 0);
        close(fd);
        gh_admin_server_stop(s);
    }
    assert_int_equal(count_fds(), before);
}

static int ipv6_loopback_usable(void)
{
    struct sockaddr_in6 sin6 = {0};
    int fd = socket(AF_INET6, SOCK_STREAM, 0), ok;

    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = in6addr_loopback;
    ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin6, sizeof sin6) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void test_ipv6(void **state)
{
    struct gh_admin_server_options o = make_options("[::1]:0");
    struct gh_admin_server *s;
    CURL *h;
    struct answer a;
    char url[128];
    json_t *v;

    if (!ipv6_loopback_usable()) {
        print_message("skipped: this machine cannot bind [::1]\n");
        skip();
    }
    assert_int_equal(gh_admin_server_start(&o, &s, NULL, 0), GH_OK);
    assert_true(strncmp(gh_admin_server_address(s), "[::1]:", 6) == 0);
    assert_true(port_of(s) > 0);
    snprintf(url, sizeof url, "http://%s", gh_admin_server_address(s));
    h = curl_easy_init();
    call(h, "GET", url, "/v1/things", "Bearer " TOKEN, NULL, 0, &a);
    assert_int_equal(a.status, 200);
    v = parse(&a);
    assert_string_equal(member(v, "remote_addr"), "::1");
    json_decref(v);
    answer_clear(&a);
    curl_easy_cleanup(h);
    gh_admin_server_stop(s);
}

/* ---- the helpers, directly ---- */

static char *param(const char *query, const char *name)
{
    struct gh_admin_request r = {0};
    r.query = query;
    return gh_admin_query_param(&r, name);
}

static void assert_param(const char *query, const char *name, const char *want)
{
    char *got = param(query, name);

    if (want == NULL && got != NULL)
        fail_msg("%s in '%s': got '%s', want none", name, query, got);
    if (want != NULL && (got == NULL || strcmp(got, want) != 0))
        fail_msg("%s in '%s': got '%s', want '%s'", name, query, got ? got : "(none)", want);
    free(got);
}

static void test_query_param_helper(void **state)
{
    assert_param("", "a", NULL);
    assert_param("a=1", "a", "1");
    assert_param("a=1&b=2", "b", "2");
    assert_param("a=1&a=2", "a", "1");
    assert_param("ab=1&a=2", "a", "2");
    assert_param("a", "a", "");
    assert_param("a=", "a", "");
    assert_param("a=&b", "b", "");
    assert_param("&&a=x&", "a", "x");
    assert_param("a=%7e%7E+%2b", "a", "~~ +");
    assert_param("%61=1", "a", "1");
    assert_param("a=b=c", "a", "b=c");
    assert_param("a=%00", "a", NULL);
    assert_param("a=x%0", "a", NULL);
    assert_param("a=%zz", "a", NULL);
    assert_param("a=%", "a", NULL);
    assert_param("a=%00&a=1", "a", NULL); /* the first occurrence decides */
    assert_param("secrets=true", "secrets", "true");
}

static void test_json_body_helper(void **state)
{
    struct gh_admin_request r = {0};
    struct gh_admin_response res = {0};
    json_t *obj;

    assert_null(gh_admin_json_body(&r, &res));
    assert_int_equal(res.status, 400);
    assert_string_equal(member(res.body, "error"), "bad_request");
    assert_non_null(strstr(member(res.body, "message"), "empty"));
    assert_null(json_object_get(res.body, "field"));

    r.body = (const unsigned char *)"{\"k\":\"v\"}";
    r.body_len = 9;
    obj = gh_admin_json_body(&r, &res);
    assert_non_null(obj);
    assert_string_equal(member(obj, "k"), "v");
    json_decref(obj);

    /* the body is a slice: bytes after body_len are not read */
    r.body = (const unsigned char *)"{}garbage";
    r.body_len = 2;
    obj = gh_admin_json_body(&r, &res);
    assert_non_null(obj);
    json_decref(obj);

    r.body = (const unsigned char *)"{\n\"a\": tru}";
    r.body_len = 11;
    assert_null(gh_admin_json_body(&r, &res));
    assert_non_null(strstr(member(res.body, "message"), "line 2"));
    json_decref(res.body);
}

static void test_error_helper(void **state)
{
    struct gh_admin_response res = {0};

    res.text = strdup("replaced");
    gh_admin_error(&res, 409, "conflict", NULL, "name '%s' is taken", "a\xff\xfe");
    assert_int_equal(res.status, 409);
    assert_null(res.text);
    assert_string_equal(member(res.body, "error"), "conflict");
    assert_string_equal(member(res.body, "message"), "name 'a?"
                                                     "?' is taken");
    assert_null(json_object_get(res.body, "field"));
    gh_admin_error(&res, 422, "validation_failed", "path", "bad");
    assert_string_equal(member(res.body, "field"), "path");
    /* the order of members is kept */
    char *text = json_dumps(res.body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(text,
                        "{\"error\":\"validation_failed\",\"message\":\"bad\",\"field\":\"path\"}");
    free(text);
    json_decref(res.body);
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_address_has_real_port),
        cmocka_unit_test(test_routing_and_params),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_unauthorized),
        cmocka_unit_test(test_error_request_id),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_huge_body_refused_early),
        cmocka_unit_test(test_client_gone_mid_answer),
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_remote_addr_and_headers),
        cmocka_unit_test(test_no_content),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_bad_options),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_stop_with_idle_connections),
        cmocka_unit_test(test_stop_finishes_request_in_progress),
        cmocka_unit_test(test_stop_with_client_not_reading),
        cmocka_unit_test(test_start_stop_leaks_no_descriptor),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_query_param_helper),
        cmocka_unit_test(test_json_body_helper),
        cmocka_unit_test(test_error_helper),
    };
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests_name("admin http (shared server)", shared, group_setup,
                                         group_teardown);
    failed += cmocka_run_group_tests_name("admin http (own servers, helpers)", own, NULL, NULL);
    curl_global_cleanup();
    return failed != 0;
}
