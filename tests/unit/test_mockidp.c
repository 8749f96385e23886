// SPDX-License-Identifier: Apache-2.0
/*
 * The mock identity provider is itself tested, with libcurl (the client gatehouse uses) and with
 * raw sockets where libcurl is too polite: the provider manager's tests will trust every behaviour
 * the mock claims (headers, sizes, delays, hangs, broken answers, redirects, TLS, hit counts, a
 * prompt stop), so each one is proven here before a gateway test depends on it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mockidp.h"

#define REPLY_MAX (32u << 20) /* a runaway answer fails the test instead of eating memory */

struct reply {
    long status;
    char *body;
    size_t body_len;
    char *head; /* every header line received, NUL-terminated */
    size_t head_len;
};

struct fetch_opts {
    const char *cainfo; /* NULL: the system's trust store */
    long timeout_ms;    /* 0: 10 s */
    int follow;
    long max_redirs;
    const char *post; /* request body, or NULL for GET */
    size_t post_len;
    int head; /* HEAD request */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int append(char **buf, size_t *len, const char *data, size_t n)
{
    char *grown;
    if (*len + n > REPLY_MAX || (grown = realloc(*buf, *len + n + 1)) == NULL)
        return -1;
    memcpy(grown + *len, data, n);
    *len += n;
    grown[*len] = '\0';
    *buf = grown;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    return append(&r->body, &r->body_len, data, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    return append(&r->head, &r->head_len, data, size * n) == 0 ? size * n : 0;
}

static void reply_clear(struct reply *r)
{
    free(r->body);
    free(r->head);
    memset(r, 0, sizeof *r);
}

/* One request the way the provider manager makes it; the caller clears `r`. */
static CURLcode fetch(const char *url, const struct fetch_opts *o, struct reply *r)
{
    static const struct fetch_opts none;
    CURL *h = curl_easy_init();
    CURLcode rc;
    o = o != NULL ? o : &none;
    memset(r, 0, sizeof *r);
    if (h == NULL)
        return CURLE_FAILED_INIT;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* we run it from many threads */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* a proxy in the environment must not interfere */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms ? o->timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, o->follow ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, o->max_redirs ? o->max_redirs : 10L);
    if (o->cainfo != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, o->cainfo);
    if (o->post != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, o->post);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->post_len);
    }
    if (o->head)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    return rc;
}

static const char *url(struct gh_mockidp *m, const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s", gh_mockidp_base_url(m), path);
    return buf;
}

#define URL(m, path) url((m), (path), (char[512]){0}, 512)

static int has_header(const struct reply *r, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "%s\r\n", line);
    return r->head != NULL && strstr(r->head, want) != NULL;
}

static int setup_mock(void **state)
{
    *state = gh_mockidp_start();
    return *state != NULL ? 0 : -1;
}

static int teardown_mock(void **state)
{
    gh_mockidp_stop(*state);
    return 0;
}

/* ---- plain routes ---- */

static void test_json_route_with_headers(void **state)
{
    struct gh_mockidp *m = *state;
    const char *json = "{\"keys\":[]}";
    struct reply r;
    assert_true(gh_mockidp_port(m) > 0);
    assert_true(strncmp(gh_mockidp_base_url(m), "http://127.0.0.1:", 17) == 0);
    /* The missing final CRLF of the extra headers must be added, not glued to the next header. */
    gh_mockidp_set_json(m, "/jwks", 200, json,
                        "Cache-Control: max-age=120\r\nExpires: Thu, 01 Jan 2099 00:00:00 GMT");
    assert_int_equal(fetch(URL(m, "/jwks"), NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, json);
    assert_true(has_header(&r, "Content-Type: application/json"));
    assert_true(has_header(&r, "Cache-Control: max-age=120"));
    assert_true(has_header(&r, "Expires: Thu, 01 Jan 2099 00:00:00 GMT"));
    assert_true(has_header(&r, "Content-Length: 11"));
    assert_true(has_header(&r, "Connection: close"));
    reply_clear(&r);

    /* HEAD gets the headers only; the query string is not part of the route or the hit key. */
    assert_int_equal(fetch(URL(m, "/jwks?x=1"), &(struct fetch_opts){.head = 1}, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_true(has_header(&r, "Content-Length: 11"));
    reply_clear(&r);
    assert_int_equal(gh_mockidp_hits(m, "/jwks"), 2);
    assert_int_equal(gh_mockidp_hits(m, "/jwks?y"), 2);
    gh_mockidp_reset_hits(m);
    assert_int_equal(gh_mockidp_hits(m, "/jwks"), 0);
}

static void test_post_body_is_read_and_ignored(void **state)
{
    struct gh_mockidp *m = *state;
    size_t len = 300000; /* more than a socket buffer, and large enough for Expect: 100-continue */
    char *body = malloc(len);
    struct reply r;
    assert_non_null(body);
    memset(body, 'p', len);
    gh_mockidp_set_json(m, "/token", 200, "{\"ok\":true}", NULL);
    assert_int_equal(
        fetch(URL(m, "/token"), &(struct fetch_opts){.post = body, .post_len = len}, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"ok\":true}");
    assert_int_equal(gh_mockidp_hits(m, "/token"), 1);
    reply_clear(&r);
    free(body);
}

static void test_discovery_document(void **state)
{
    struct gh_mockidp *m = *state;
    char want[512];
    struct reply r;
    gh_mockidp_serve_discovery(m, NULL, "/keys");
    assert_int_equal(fetch(URL(m, "/.well-known/openid-configuration"), NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: application/json"));
    snprintf(want, sizeof want, "\"issuer\":\"%s\"", gh_mockidp_base_url(m));
    assert_non_null(strstr(r.body, want));
    snprintf(want, sizeof want, "\"jwks_uri\":\"%s/keys\"", gh_mockidp_base_url(m));
    assert_non_null(strstr(r.body, want));
    assert_non_null(strstr(r.body, "\"id_token_signing_alg_values_supported\":["));
    reply_clear(&r);

    /* A chosen issuer (here a wrong one, as a test of issuer checks would use) is escaped. */
    gh_mockidp_serve_discovery(m, "https://evil.example/\"x\"", "/keys");
    assert_int_equal(fetch(URL(m, "/.well-known/openid-configuration"), NULL, &r), CURLE_OK);
    assert_non_null(strstr(r.body, "\"issuer\":\"https://evil.example/\\\"x\\\"\""));
    reply_clear(&r);
}

static void test_not_found_and_route_removal(void **state)
{
    struct gh_mockidp *m = *state;
    struct reply r;
    assert_int_equal(fetch(URL(m, "/nowhere"), NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 404);
    assert_true(has_header(&r, "Content-Type: application/json"));
    assert_string_equal(r.body, "{\"error\":\"not_found\"}");
    reply_clear(&r);
    assert_int_equal(gh_mockidp_hits(m, "/nowhere"), 1);

    gh_mockidp_set_json(m, "/gone", 200, "{}", NULL);
    gh_mockidp_set(m, "/gone", NULL);
    assert_int_equal(fetch(URL(m, "/gone"), NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 404);
    reply_clear(&r);
}

/* ---- concurrency ---- */

struct client {
    struct gh_mockidp *m;
    int requests;
    int ok;                /* requests answered as expected */
    const char *bodies[2]; /* acceptable bodies (the second may be NULL) */
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    for (int i = 0; i < c->requests; i++) {
        char path[64];
        struct reply r;
        snprintf(path, sizeof path, "/c?i=%d", i); /* the query must not split the count */
        if (fetch(URL(c->m, path), NULL, &r) == CURLE_OK && r.status == 200 && r.body != NULL &&
            (strcmp(r.body, c->bodies[0]) == 0 ||
             (c->bodies[1] != NULL && strcmp(r.body, c->bodies[1]) == 0)))
            c->ok++;
        reply_clear(&r);
    }
    return NULL;
}

static void run_clients(struct client *clients, pthread_t *threads, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, client_main, &clients[i]), 0);
}

static void test_hits_under_20_concurrent_clients(void **state)
{
    struct gh_mockidp *m = *state;
    struct client clients[20];
    pthread_t threads[20];
    long long t0 = now_ms();
    /* 100 answers of 100 ms each: served one at a time they would take 10 s. */
    gh_mockidp_set(m, "/c",
                   &(struct gh_mock_response){
                       .content_type = "application/json", .body = "{\"n\":1}", .delay_ms = 100});
    for (int i = 0; i < 20; i++)
        clients[i] = (struct client){.m = m, .requests = 5, .bodies = {"{\"n\":1}", NULL}};
    run_clients(clients, threads, 20);
    /* Waits on the condition variable while the clients are still running. */
    assert_int_equal(gh_mockidp_wait_hits(m, "/c", 100, 20000), 100);
    for (int i = 0; i < 20; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(clients[i].ok, 5);
    }
    assert_int_equal(gh_mockidp_hits(m, "/c"), 100);
    assert_true(now_ms() - t0 < 5000);
}

static void test_wait_hits_times_out(void **state)
{
    struct gh_mockidp *m = *state;
    long long t0 = now_ms();
    assert_int_equal(gh_mockidp_wait_hits(m, "/never", 1, 200), 0);
    assert_true(now_ms() - t0 >= 190);
}

/* Re-scripting a route while clients fetch it: each answer is one version, never a mix. */
static void test_route_replaced_while_serving(void **state)
{
    struct gh_mockidp *m = *state;
    static const char a[] = "{\"v\":\"a\"}", b[] = "{\"v\":\"bb\"}";
    struct client clients[8];
    pthread_t threads[8];
    gh_mockidp_set_json(m, "/c", 200, a, NULL);
    for (int i = 0; i < 8; i++)
        clients[i] = (struct client){.m = m, .requests = 15, .bodies = {a, b}};
    run_clients(clients, threads, 8);
    for (int i = 0; i < 200; i++) {
        gh_mockidp_set_json(m, "/c", 200, i % 2 ? a : b, i % 2 ? NULL : "X-Version: b\r\n");
        usleep(1000);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(clients[i].ok, 15);
    }
}

/* ---- misbehaviour on demand ---- */

static void test_delay(void **state)
{
    struct gh_mockidp *m = *state;
    struct reply r;
    long long t0;
    gh_mockidp_set(m, "/slow",
                   &(struct gh_mock_response){
                       .content_type = "application/json", .body = "{}", .delay_ms = 300});
    t0 = now_ms();
    assert_int_equal(fetch(URL(m, "/slow"), NULL, &r), CURLE_OK);
    assert_true(now_ms() - t0 >= 300);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(r.status, 200);
    reply_clear(&r);
    /* Shorter client patience than the delay: the client gives up first. */
    assert_int_equal(fetch(URL(m, "/slow"), &(struct fetch_opts){.timeout_ms = 100}, &r),
                     CURLE_OPERATION_TIMEDOUT);
    reply_clear(&r);
}

static void *hanging_client(void *arg)
{
    struct gh_mockidp *m = arg;
    struct reply r = {0};
    CURLcode *rc = malloc(sizeof *rc);
    if (rc != NULL)
        *rc = fetch(URL(m, "/hang"), &(struct fetch_opts){.timeout_ms = 20000}, &r);
    reply_clear(&r);
    return rc;
}

static void test_hang_then_stop(void **state)
{
    struct gh_mockidp *m = gh_mockidp_start();
    struct reply r;
    pthread_t patient;
    void *result = NULL;
    long long t0;
    (void)state;
    assert_non_null(m);
    gh_mockidp_set(m, "/hang", &(struct gh_mock_response){.hang = 1});
    t0 = now_ms();
    assert_int_equal(fetch(URL(m, "/hang"), &(struct fetch_opts){.timeout_ms = 300}, &r),
                     CURLE_OPERATION_TIMEDOUT);
    assert_true(now_ms() - t0 < 3000);
    reply_clear(&r);
    assert_int_equal(gh_mockidp_hits(m, "/hang"), 1); /* the request was read, then left hanging */

    /* A client with 20 s of patience is still hanging when stop() runs: stop must not wait for it,
     * and the client must see the connection closed instead of its own timeout. */
    assert_int_equal(pthread_create(&patient, NULL, hanging_client, m), 0);
    assert_int_equal(gh_mockidp_wait_hits(m, "/hang", 2, 5000), 2);
    t0 = now_ms();
    gh_mockidp_stop(m);
    assert_true(now_ms() - t0 < 1000);
    pthread_join(patient, &result);
    assert_non_null(result);
    assert_int_equal(*(CURLcode *)result, CURLE_GOT_NOTHING);
    assert_true(now_ms() - t0 < 5000);
    free(result);
}

static void test_garbage(void **state)
{
    struct gh_mockidp *m = *state;
    struct reply r;
    CURLcode rc;
    gh_mockidp_set(m, "/junk", &(struct gh_mock_response){.garbage = 1});
    /* libcurl refuses an answer with no status line (HTTP/0.9 is off by default): 7.88 calls it
     * an unsupported protocol, later versions a weird server reply. */
    rc = fetch(URL(m, "/junk"), NULL, &r);
    assert_true(rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_WEIRD_SERVER_REPLY);
    assert_int_equal(r.status, 0);
    assert_int_equal(gh_mockidp_hits(m, "/junk"), 1);
    reply_clear(&r);
}

static void test_truncated_body(void **state)
{
    struct gh_mockidp *m = *state;
    struct reply r;
    gh_mockidp_set(m, "/cut",
                   &(struct gh_mock_response){
                       .content_type = "application/json", .body = "{\"keys\":[", .truncate = 1});
    assert_int_equal(fetch(URL(m, "/cut"), NULL, &r), CURLE_PARTIAL_FILE);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 9);
    reply_clear(&r);
}

static void test_pad_to_2mib_delivered_in_full(void **state)
{
    struct gh_mockidp *m = *state;
    static const char unit[] = "0123456789abcdefghijklmnopqrstu"; /* 31: not a power of two */
    size_t size = 2u << 20;
    struct reply r;
    gh_mockidp_set(m, "/big",
                   &(struct gh_mock_response){
                       .content_type = "application/json", .body = unit, .pad_to = size});
    assert_int_equal(fetch(URL(m, "/big"), NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Length: 2097152"));
    assert_int_equal(r.body_len, size);
    for (size_t i = 0; i < size; i++)
        if (r.body[i] != unit[i % 31])
            fail_msg("byte %zu is %d", i, r.body[i]);
    reply_clear(&r);
}

static void test_redirects(void **state)
{
    struct gh_mockidp *m = *state;
    char abs[256];
    struct reply r;
    gh_mockidp_set(m, "/moved", &(struct gh_mock_response){.status = 302, .location = "/target"});
    gh_mockidp_set_json(m, "/target", 200, "{\"here\":1}", NULL);
    assert_int_equal(fetch(URL(m, "/moved"), NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 302);
    assert_true(has_header(&r, "Location: /target"));
    reply_clear(&r);
    assert_int_equal(fetch(URL(m, "/moved"), &(struct fetch_opts){.follow = 1}, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"here\":1}");
    reply_clear(&r);

    /* A loop made of an absolute and a relative Location; SPEC §4 allows 3 redirects. */
    snprintf(abs, sizeof abs, "%s/loop-b", gh_mockidp_base_url(m));
    gh_mockidp_set(m, "/loop-a", &(struct gh_mock_response){.status = 302, .location = abs});
    gh_mockidp_set(m, "/loop-b", &(struct gh_mock_response){.status = 302, .location = "/loop-a"});
    assert_int_equal(
        fetch(URL(m, "/loop-a"), &(struct fetch_opts){.follow = 1, .max_redirs = 3}, &r),
        CURLE_TOO_MANY_REDIRECTS);
    reply_clear(&r);
    assert_int_equal(gh_mockidp_hits(m, "/loop-a"), 2);
    assert_int_equal(gh_mockidp_hits(m, "/loop-b"), 2);
}

/* ---- raw sockets: what libcurl never sends ---- */

static int connect_to(struct gh_mockidp *m)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)gh_mockidp_port(m)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until end of stream (or a reset) within `timeout_ms`; returns the first bytes in `out`,
 * the total count in *total, and 0 when the server closed the connection in time. */
static int read_to_close(int fd, char *out, size_t out_size, size_t *total, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    char buf[65536];
    *total = 0;
    out[0] = '\0';
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = deadline - now_ms();
        ssize_t n;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 0;
        if (n < 0)
            return -1;
        if (*total < out_size - 1) {
            size_t k = (size_t)n < out_size - 1 - *total ? (size_t)n : out_size - 1 - *total;
            memcpy(out + *total, buf, k);
            out[*total + k] = '\0';
        }
        *total += (size_t)n;
    }
}

/* Sends `req` on a fresh connection and checks that the answer starts with `status`. */
static void raw_exchange(struct gh_mockidp *m, const char *req, const char *status)
{
    char got[256];
    size_t total;
    int fd = connect_to(m);
    assert_true(fd >= 0);
    send_all(fd, req, strlen(req));
    assert_int_equal(read_to_close(fd, got, sizeof got, &total, 5000), 0);
    assert_true(strncmp(got, status, strlen(status)) == 0);
    close(fd);
}

static void test_bad_requests(void **state)
{
    struct gh_mockidp *m = *state;
    size_t big = 20000;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    raw_exchange(m, "NOT HTTP\r\n\r\n", "HTTP/1.1 400 ");
    raw_exchange(m, "GET relative HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
    raw_exchange(m, "GET / HTTP/1.1\r\nno colon\r\n\r\n", "HTTP/1.1 400 ");
    raw_exchange(m, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 411 ");
    /* A head larger than the mock's bound is refused, not buffered without limit. */
    memset(huge, 'a', big);
    huge[big] = '\0';
    memcpy(huge, "GET /x HTTP/1.1\r\nX: ", 20);
    raw_exchange(m, huge, "HTTP/1.1 431 ");
    /* Absolute-form target, as a proxy would receive it. */
    raw_exchange(m, "GET http://h.example/abs?q HTTP/1.1\r\n\r\n", "HTTP/1.1 404 ");
    assert_int_equal(gh_mockidp_hits(m, "/abs"), 1);
    assert_int_equal(gh_mockidp_hits(m, "/x"), 0);
    free(huge);
}

static void test_stop_with_connections_open(void **state)
{
    struct gh_mockidp *m = gh_mockidp_start();
    static const char *const reqs[] = {NULL, "GET /half HT", "GET /hang HTTP/1.1\r\n\r\n",
                                       "GET /slow HTTP/1.1\r\n\r\n", "GET /big HTTP/1.1\r\n\r\n"};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fds[5];
    char got[64];
    size_t total;
    long long t0;
    (void)state;
    assert_non_null(m);
    sa.sin_port = htons((uint16_t)gh_mockidp_port(m));
    gh_mockidp_set(m, "/hang", &(struct gh_mock_response){.hang = 1});
    gh_mockidp_set(m, "/slow", &(struct gh_mock_response){.body = "late", .delay_ms = 60000});
    /* Far more than the socket buffers hold, to a client that never reads: the mock blocks in
     * write until stop. */
    gh_mockidp_set(m, "/big", &(struct gh_mock_response){.body = "x", .pad_to = 64u << 20});
    for (int i = 0; i < 5; i++) {
        fds[i] = connect_to(m);
        assert_true(fds[i] >= 0);
        if (reqs[i] != NULL)
            send_all(fds[i], reqs[i], strlen(reqs[i]));
    }
    assert_int_equal(gh_mockidp_wait_hits(m, "/hang", 1, 5000), 1);
    assert_int_equal(gh_mockidp_wait_hits(m, "/slow", 1, 5000), 1);
    assert_int_equal(gh_mockidp_wait_hits(m, "/big", 1, 5000), 1);
    usleep(100000); /* let /big fill the socket buffers */
    t0 = now_ms();
    gh_mockidp_stop(m);
    assert_true(now_ms() - t0 < 1000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(read_to_close(fds[i], got, sizeof got, &total, 10000), 0);
        close(fds[i]);
    }
    /* The listener is closed too. */
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fds[0] >= 0);
    assert_int_not_equal(connect(fds[0], (struct sockaddr *)&sa, sizeof sa), 0);
    close(fds[0]);
}

/* ---- TLS ---- */

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int write_pem(const char *path, X509 *x, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    int ok;
    if (f == NULL)
        return -1;
    ok = x != NULL ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

/* A self-signed P-256 certificate for 127.0.0.1, valid for an hour. */
static int make_cert(const char *cert_path, const char *key_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    int rc = -1;
    if (key == NULL || x == NULL || X509_set_version(x, 2) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(x), (long)now_ms() & 0x7fffffff) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL || X509_set_pubkey(x, key) != 1)
        goto out;
    name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(x, name) != 1 ||
        add_ext(x, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
        add_ext(x, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") != 0 ||
        X509_sign(x, key, EVP_sha256()) == 0)
        goto out;
    rc = write_pem(cert_path, x, NULL) == 0 && write_pem(key_path, NULL, key) == 0 ? 0 : -1;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

static void test_tls(void **state)
{
    const char *tmp = getenv("TMPDIR");
    char dir[512], cert[600], key[600];
    struct gh_mockidp *m;
    struct reply r;
    (void)state;
    snprintf(dir, sizeof dir, "%s/gh-mockidp-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    assert_int_equal(make_cert(cert, key), 0);
    m = gh_mockidp_start_tls(cert, key);
    assert_non_null(m);
    assert_true(strncmp(gh_mockidp_base_url(m), "https://127.0.0.1:", 18) == 0);
    gh_mockidp_serve_discovery(m, NULL, "/jwks");

    assert_int_equal(fetch(URL(m, "/.well-known/openid-configuration"),
                           &(struct fetch_opts){.cainfo = cert}, &r),
                     CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"issuer\":\"https://127.0.0.1:"));
    reply_clear(&r);
    /* The system trust store does not know our certificate. */
    assert_int_equal(fetch(URL(m, "/.well-known/openid-configuration"), NULL, &r),
                     CURLE_PEER_FAILED_VERIFICATION);
    reply_clear(&r);
    /* The refused handshake never became a request. */
    assert_int_equal(gh_mockidp_hits(m, "/.well-known/openid-configuration"), 1);
    gh_mockidp_stop(m);

    assert_null(gh_mockidp_start_tls(key, cert)); /* swapped files: refused, nothing leaked */
    assert_int_equal(unlink(cert), 0);
    assert_int_equal(unlink(key), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_route_with_headers, setup_mock, teardown_mock),
        cmocka_unit_test_setup_teardown(test_post_body_is_read_and_ignored, setup_mock,
                                        teardown_mock),
        cmocka_unit_test_setup_teardown(test_discovery_document, setup_mock, teardown_mock),
        cmocka_unit_test_setup_teardown(test_not_found_and_route_removal, setup_mock,
                                        teardown_mock),
        cmocka_unit_test_setup_teardown(test_hits_under_20_concurrent_clients, setup_mock,
                                        teardown_mock),
        cmocka_unit_test_setup_teardown(test_wait_hits_times_out, setup_mock, teardown_mock),
        cmocka_unit_test_setup_teardown(test_route_replaced_while_serving, setup_mock,
                                        teardown_mock),
        cmocka_unit_test_setup_teardown(test_delay, setup_mock, teardown_mock),
        cmocka_unit_test(test_hang_then_stop),
        cmocka_unit_test_setup_teardown(test_garbage, setup_mock, teardown_mock),
        cmocka_unit_test_setup_teardown(test_truncated_body, setup_mock, teardown_mock),
        cmocka_unit_test_setup_teardown(test_pad_to_2mib_delivered_in_full, setup_mock,
                                        teardown_mock),
        cmocka_unit_test_setup_teardown(test_redirects, setup_mock, teardown_mock),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup_mock, teardown_mock),
        cmocka_unit_test(test_stop_with_connections_open),
        cmocka_unit_test(test_tls),
    };
    int failed;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
