// SPDX-License-Identifier: Apache-2.0
/*
 * The front end's server and its HTTP/1.1 connections (src/http/server.c, request.c, h1conn.c)
 * driven over loopback with raw sockets, because the bytes on the wire are the point: framing
 * refusals handed to the handler and the connection closed after them, the body read only when
 * the handler asks (100 Continue then, never before), back-pressure on streamed answers, the
 * limits (head bytes, header count, target, body, connections) and the timeouts (head, idle, body
 * without progress, while a steady slow body completes), lingering close, keep-alive and
 * pipelining, and the drain.
 */
#define _GNU_SOURCE /* strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "http/server.h"

/* ---- the handler under test ---- */

struct seen {
    atomic_int requests, refusals, done_completed, done_cut, writable;
    char method[16], path[256], authority[128], header_x[64];
    int version, n_headers;
    int64_t content_length;
    int refusal_status;
};
static struct seen seen;

struct state {
    char body[1 << 16];
    size_t body_len;
    int streamed;          /* chunks written by /stream */
    struct gh_timer later; /* /later answers from a timer */
    struct gh_http_request *req;
};

static void answer_text(struct gh_http_request *req, int status, const char *text)
{
    struct gh_http_header h = {"content-type", "text/plain", 12, 10};
    gh_http_respond(req, status, &h, 1, text, strlen(text));
}

static int path_is(const struct gh_http_request *req, const char *p)
{
    size_t len = req->query_at != SIZE_MAX ? req->query_at : req->path_len;
    return len == strlen(p) && memcmp(req->path, p, len) == 0;
}

#define STREAM_CHUNKS 64
#define STREAM_CHUNK  (64 * 1024)

static void stream_more(struct gh_http_request *req)
{
    struct state *st = req->state;
    static char chunk[STREAM_CHUNK];

    memset(chunk, 'z', sizeof chunk);
    while (st->streamed < STREAM_CHUNKS) {
        int last = ++st->streamed == STREAM_CHUNKS;
        if (gh_http_respond_write(req, chunk, sizeof chunk, last) != 1)
            return;
    }
}

static void on_later(struct gh_timer *t)
{
    struct state *st = t->data;
    answer_text(st->req, 200, "later");
}

static void on_request(void *ctx, struct gh_http_request *req)
{
    const struct gh_http_header *x;

    (void)ctx;
    if (req->refusal != NULL) {
        atomic_fetch_add(&seen.refusals, 1);
        seen.refusal_status = req->refusal->status;
        answer_text(req, req->refusal->status, req->refusal->code);
        return;
    }
    atomic_fetch_add(&seen.requests, 1);
    snprintf(seen.method, sizeof seen.method, "%.*s", (int)req->method_len, req->method);
    snprintf(seen.path, sizeof seen.path, "%.*s", (int)req->path_len, req->path);
    snprintf(seen.authority, sizeof seen.authority, "%.*s", (int)req->authority_len,
             req->authority);
    x = gh_http_header_find(req, "x-test", 6, NULL);
    snprintf(seen.header_x, sizeof seen.header_x, "%.*s", x != NULL ? (int)x->value_len : 0,
             x != NULL ? x->value : "");
    seen.version = req->version;
    seen.n_headers = (int)req->n_headers;
    seen.content_length = req->content_length;
    if (path_is(req, "/echo")) {
        gh_http_body_start(req);
    } else if (path_is(req, "/stream")) {
        gh_http_respond_start(req, 200, NULL, 0, -1);
        stream_more(req);
    } else if (path_is(req, "/later")) {
        struct state *st = req->state;
        st->req = req;
        st->later.cb = on_later;
        st->later.data = st;
        gh_timer_arm(gh_http_worker_loop(req->worker), &st->later, 300);
    } else if (path_is(req, "/block")) {
        usleep(400 * 1000); /* the worker's loop stands still: what arrives meanwhile waits */
        answer_text(req, 200, "blocked");
    } else if (path_is(req, "/refuse")) {
        answer_text(req, 401, "no");
    } else {
        answer_text(req, 200, "hello");
    }
}

static void on_body(void *ctx, struct gh_http_request *req, const char *data, size_t len, int state)
{
    struct state *st = req->state;
    char text[64];

    (void)ctx;
    if (state < 0) {
        snprintf(text, sizeof text, "body failed %d", state);
        if (gh_http_respond(req, state == GH_HTTP_BODY_TOO_LARGE ? 413 : 408, NULL, 0, text,
                            strlen(text)) != GH_OK)
            gh_http_respond_abort(req);
        return;
    }
    if (st->body_len + len <= sizeof st->body)
        memcpy(st->body + st->body_len, data, len);
    st->body_len += len;
    if (state == 1) {
        snprintf(text, sizeof text, "got %zu", st->body_len);
        answer_text(req, 200, text);
    }
}

static void on_writable(void *ctx, struct gh_http_request *req)
{
    (void)ctx;
    atomic_fetch_add(&seen.writable, 1);
    stream_more(req);
}

static void on_done(void *ctx, struct gh_http_request *req, int completed)
{
    struct state *st = req->state;

    (void)ctx;
    gh_timer_disarm(gh_http_worker_loop(req->worker), &st->later);
    atomic_fetch_add(completed ? &seen.done_completed : &seen.done_cut, 1);
}

static const struct gh_http_handler handler = {on_request, on_body, on_writable, on_done};

static struct gh_http_metrics metrics;

static struct gh_http_server *start(const struct gh_http_limits *limits)
{
    struct gh_http_server_options o = {0};
    struct gh_http_server *s = NULL;
    char error[256];

    memset(&seen, 0, sizeof seen);
    memset(&metrics, 0, sizeof metrics);
    o.listen = "127.0.0.1:0";
    o.threads = 1;
    o.server_name = "test";
    if (limits != NULL)
        o.limits = *limits;
    o.handler = &handler;
    o.state_size = sizeof(struct state);
    o.metrics = &metrics;
    assert_int_equal(gh_http_server_start(&o, &s, error, sizeof error), GH_OK);
    return s;
}

/* ---- a raw client ---- */

/* A client socket's receive buffer; 0 leaves the kernel's (which grows to megabytes). */
static int client_rcvbuf;

static int dial(struct gh_http_server *s)
{
    const char *addr = gh_http_server_address_at(s, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    if (client_rcvbuf != 0) /* before connecting: it sets the window the server sees */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &client_rcvbuf, sizeof client_rcvbuf);
    sin.sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

static void send_all(int fd, const char *bytes, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, bytes, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        bytes += n;
        len -= (size_t)n;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* Reads until the peer closes or `timeout_ms` passes; what came, NUL-terminated (caller frees).
 * *closed says whether it closed. */
static char *read_until_close(int fd, int timeout_ms, size_t *len, int *closed)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);

    *closed = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0)
            break;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
        ssize_t got = recv(fd, buf + n, cap - n, 0);
        if (got <= 0) {
            *closed = 1;
            break;
        }
        n += (size_t)got;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

/* Reads one answer with a Content-Length (its head and body); the answer's text. */
static char *read_answer(int fd)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);

    for (;;) {
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            char *cl = strcasestr(buf, "content-length:");
            size_t need = (size_t)(end + 4 - buf) + (cl != NULL && cl < end ? atol(cl + 15) : 0);
            if (n >= need)
                return buf;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            return buf;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
        ssize_t got = recv(fd, buf + n, cap - n, 0);
        if (got <= 0)
            return buf;
        n += (size_t)got;
    }
}

static int status_of(const char *answer)
{
    return strncmp(answer, "HTTP/1.1 ", 9) == 0 ? atoi(answer + 9) : 0;
}

/* Sends `request` on a new connection and expects `status` then a close. */
static void expect_refused(struct gh_http_server *s, const char *request, int status)
{
    int fd = dial(s), closed;
    char *a;

    send_str(fd, request);
    a = read_until_close(fd, 5000, NULL, &closed);
    assert_int_equal(status_of(a), status);
    assert_non_null(strcasestr(a, "connection: close"));
    assert_true(closed);
    free(a);
    close(fd);
}

static void expect_ok(struct gh_http_server *s, const char *request)
{
    int fd = dial(s);
    char *a;

    send_str(fd, request);
    a = read_answer(fd);
    assert_int_equal(status_of(a), 200);
    free(a);
    close(fd);
}

static void wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 500 && atomic_load(v) < want; i++) {
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    assert_true(atomic_load(v) >= want);
}

/* ---- tests ---- */

static void test_get_and_keep_alive(void **unused)
{
    struct gh_http_server *s = start(NULL);
    int fd = dial(s), closed;
    char *a;

    (void)unused;
    send_str(fd, "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-Test: one\r\n\r\n");
    a = read_answer(fd);
    assert_int_equal(status_of(a), 200);
    assert_non_null(strstr(a, "\r\n\r\nhello"));
    assert_non_null(strcasestr(a, "content-length: 5\r\n"));
    assert_non_null(strcasestr(a, "server: test\r\n"));
    assert_non_null(strcasestr(a, "\r\ndate: "));
    assert_null(strcasestr(a, "connection: close"));
    free(a);
    assert_string_equal(seen.method, "GET");
    assert_string_equal(seen.path, "/a?b=1");
    assert_string_equal(seen.authority, "example.com");
    assert_string_equal(seen.header_x, "one");
    assert_int_equal(seen.version, 0x101);
    /* the same connection takes the next one, and two pipelined ones in order */
    send_str(fd, "GET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n"
                 "Connection: close\r\n\r\n");
    a = read_until_close(fd, 5000, NULL, &closed);
    assert_true(closed);
    assert_int_equal(status_of(a), 200);
    char *second = strstr(a + 1, "HTTP/1.1 200 OK\r\n");
    assert_non_null(second);
    assert_null(strstr(second + 1, "HTTP/1.1 "));
    assert_non_null(strcasestr(second, "connection: close"));
    free(a);
    assert_string_equal(seen.path, "/c");
    assert_int_equal(atomic_load(&seen.requests), 3);
    close(fd);
    gh_http_server_stop(s, 1000);
    assert_int_equal(atomic_load(&seen.done_completed), 3);
}

static void test_absolute_form_and_head(void **unused)
{
    struct gh_http_server *s = start(NULL);
    int fd = dial(s), closed;
    char *a;

    (void)unused;
    send_str(fd, "GET http://other.example:8080/x/y?z HTTP/1.1\r\nHost: ignored\r\n\r\n");
    a = read_answer(fd);
    assert_int_equal(status_of(a), 200);
    free(a);
    assert_string_equal(seen.path, "/x/y?z");
    assert_string_equal(seen.authority, "other.example:8080");
    /* a query right after the authority keeps it: the path is "/" with the query */
    send_str(fd, "GET http://other.example?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n");
    a = read_answer(fd);
    assert_int_equal(status_of(a), 200);
    free(a);
    assert_string_equal(seen.path, "/?q=1");
    assert_string_equal(seen.authority, "other.example");
    /* HEAD: the length of the body, not the body */
    send_str(fd, "HEAD /h HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    a = read_until_close(fd, 5000, NULL, &closed);
    assert_true(closed);
    assert_non_null(strcasestr(a, "content-length: 5\r\n"));
    assert_null(strstr(a, "hello"));
    free(a);
    close(fd);
    gh_http_server_stop(s, 1000);
}

static void test_framing_refused(void **unused)
{
    struct gh_http_server *s = start(NULL);

    (void)unused;
    expect_refused(s,
                   "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: "
                   "chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
                   400);
    expect_refused(
        s, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400);
    expect_refused(s, "GET / HTTP/1.1\nHost: h\r\n\r\n", 400);
    expect_refused(s, "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n", 400);
    expect_refused(s, "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400);
    expect_refused(s, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    expect_refused(s, "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505);
    expect_refused(s, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                   501);
    expect_refused(s, "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_refused(s, "GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417);
    /* none of them reached the handler as a request, smuggled ones included */
    assert_int_equal(atomic_load(&seen.requests), 0);
    assert_int_equal(atomic_load(&seen.refusals), 10);
    assert_true(atomic_load(&metrics.malformed) >= 8);
    /* the valid twins */
    expect_ok(s, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde");
    expect_ok(s, "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
                 "chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n");
    expect_ok(s, "GET / HTTP/1.0\r\n\r\n");
    gh_http_server_stop(s, 1000);
}

static void test_bare_lf_in_chunked_body(void **unused)
{
    struct gh_http_server *s = start(NULL);
    int fd = dial(s), closed;
    char *a;

    (void)unused;
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\nabcde\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n");
    a = read_until_close(fd, 5000, NULL, &closed);
    assert_true(closed);
    assert_null(strstr(a, "got ")); /* the body never completed */
    assert_string_not_equal(seen.path, "/smuggled");
    assert_int_equal(atomic_load(&seen.requests), 1);
    free(a);
    close(fd);
    gh_http_server_stop(s, 1000);
}

static void test_limits(void **unused)
{
    struct gh_http_limits l = {
        .header_bytes = 1024, .header_count = 5, .target_bytes = 64, .max_body = 100};
    struct gh_http_server *s = start(&l);
    char big[2048];

    (void)unused;
    snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: %01100d\r\n\r\n", 0);
    expect_refused(s, big, 431);
    expect_refused(s, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n",
                   431);
    expect_ok(s, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n");
    snprintf(big, sizeof big, "GET /%065d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    expect_refused(s, big, 414);
    expect_refused(s, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", 413);
    assert_int_equal(atomic_load(&metrics.limits[GH_HTTP_LIMIT_HEADER_BYTES]), 1);
    assert_int_equal(atomic_load(&metrics.limits[GH_HTTP_LIMIT_HEADER_COUNT]), 1);
    assert_int_equal(atomic_load(&metrics.limits[GH_HTTP_LIMIT_TARGET]), 1);
    assert_int_equal(atomic_load(&metrics.limits[GH_HTTP_LIMIT_BODY]), 1);
    /* a chunked body that passes the limit is stopped as it does */
    int fd = dial(s), closed;
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n"
                 "40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n");
    char *a = read_until_close(fd, 5000, NULL, &closed);
    assert_int_equal(status_of(a), 413);
    assert_true(closed);
    free(a);
    close(fd);
    gh_http_server_stop(s, 1000);
}

static void test_body_only_when_asked(void **unused)
{
    struct gh_http_server *s = start(NULL);
    int fd = dial(s), closed;
    char *a;

    (void)unused;
    /* refused on its head: no 100 Continue, an answer, then the connection closes */
    send_str(fd, "POST /refuse HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n"
                 "Expect: 100-continue\r\n\r\n");
    a = read_until_close(fd, 5000, NULL, &closed);
    assert_int_equal(status_of(a), 401);
    assert_null(strstr(a, "100 Continue"));
    assert_true(closed);
    free(a);
    close(fd);
    /* accepted: 100 Continue first, then the body is read */
    fd = dial(s);
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                 "Expect: 100-continue\r\n\r\n");
    a = read_until_close(fd, 300, NULL, &closed);
    assert_string_equal(a, "HTTP/1.1 100 Continue\r\n\r\n");
    free(a);
    send_str(fd, "abc");
    a = read_answer(fd);
    assert_int_equal(status_of(a), 200);
    assert_non_null(strstr(a, "got 3"));
    free(a);
    close(fd);
    gh_http_server_stop(s, 1000);
}

static void test_unread_body_lingers(void **unused)
{
    struct gh_http_server *s = start(NULL);
    int fd = dial(s), closed;
    char chunk[16384];
    char *a;

    (void)unused;
    memset(chunk, 'b', sizeof chunk);
    /* 16 MiB (more than the sockets' buffers hold) refused on its head: the client goes on sending
     * it all before it reads, and must still get the answer whole (no reset for unread data, also
     * past 1 MiB) */
    send_str(fd, "POST /refuse HTTP/1.1\r\nHost: h\r\nContent-Length: 16777216\r\n\r\n");
    for (int i = 0; i < 1024; i++)
        send_all(fd, chunk, sizeof chunk); /* a reset fails it, as HTTP clients fail then */
    a = read_until_close(fd, 5000, NULL, &closed);
    assert_int_equal(status_of(a), 401);
    assert_non_null(strstr(a, "\r\n\r\nno"));
    free(a);
    close(fd);
    gh_http_server_stop(s, 1000);
}

static void test_body_over_limit_lingers(void **unused)
{
    struct gh_http_limits l = {.max_body = 1 << 20};
    struct gh_http_server *s = start(&l);
    int fd = dial(s), closed;
    char chunk[16384];
    char *a;

    (void)unused;
    memset(chunk, 'b', sizeof chunk);
    /* announced over the limit: the handler asked for it and was told it is too large (413);
     * the client, still sending, must read that answer rather than a reset (the admin API's
     * 1 MiB + 1 byte case, seen as "fetch failed") */
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 16777216\r\n\r\n");
    for (int i = 0; i < 1024; i++)
        send_all(fd, chunk, sizeof chunk);
    a = read_until_close(fd, 5000, NULL, &closed);
    assert_int_equal(status_of(a), 413);
    assert_true(closed);
    free(a);
    close(fd);
    gh_http_server_stop(s, 1000);
}

static void test_streamed_answer_with_backpressure(void **unused)
{
    struct gh_http_server *s = start(NULL);
    int fd, closed;
    size_t len;
    char *a;
    struct timespec t = {0, 200 * 1000 * 1000};

    (void)unused;
    /* a small window, so that the kernel cannot take the whole answer and the server must wait */
    client_rcvbuf = 16 * 1024;
    fd = dial(s);
    client_rcvbuf = 0;
    send_str(fd, "GET /stream HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    nanosleep(&t, NULL); /* not reading: the server's buffer fills and it must wait */
    a = read_until_close(fd, 5000, &len, &closed);
    assert_true(closed);
    assert_non_null(strcasestr(a, "transfer-encoding: chunked"));
    assert_true(len > (size_t)STREAM_CHUNKS * STREAM_CHUNK);
    assert_non_null(strstr(a + len - 7, "\r\n0\r\n\r\n"));
    assert_true(atomic_load(&seen.writable) > 0);
    free(a);
    close(fd);
    gh_http_server_stop(s, 1000);
}

static void test_timeouts(void **unused)
{
    struct gh_http_limits l = {.head_ms = 300, .idle_ms = 300, .body_ms = 300};
    struct gh_http_server *s = start(&l);
    int fd, closed;
    char *a;

    (void)unused;
    /* a head that stops halfway: 408 */
    fd = dial(s);
    send_str(fd, "GET / HTTP/1.1\r\nHo");
    a = read_until_close(fd, 5000, NULL, &closed);
    assert_int_equal(status_of(a), 408);
    assert_true(closed);
    free(a);
    close(fd);
    /* an idle connection: closed, no answer */
    fd = dial(s);
    a = read_until_close(fd, 5000, NULL, &closed);
    assert_true(closed);
    assert_string_equal(a, "");
    free(a);
    close(fd);
    assert_true(atomic_load(&metrics.idle_closed) >= 1);
    /* a body that stops: 408 */
    fd = dial(s);
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    a = read_until_close(fd, 5000, NULL, &closed);
    assert_int_equal(status_of(a), 408);
    free(a);
    close(fd);
    /* a body that comes slowly but steadily, for longer than body_ms in all: it completes */
    fd = dial(s);
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n");
    for (int i = 0; i < 8; i++) {
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
        send_str(fd, "x");
    }
    a = read_answer(fd);
    assert_int_equal(status_of(a), 200);
    assert_non_null(strstr(a, "got 8"));
    free(a);
    close(fd);
    gh_http_server_stop(s, 1000);
}

static void test_connection_limit(void **unused)
{
    struct gh_http_limits l = {.conns_total = 2};
    struct gh_http_server *s = start(&l);
    int a = dial(s), b = dial(s), c, closed;
    char *text;

    (void)unused;
    send_str(a, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    free(read_answer(a));
    send_str(b, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    free(read_answer(b));
    c = dial(s); /* the kernel accepts it; the server closes it at once */
    text = read_until_close(c, 5000, NULL, &closed);
    assert_true(closed);
    free(text);
    close(c);
    assert_true(atomic_load(&metrics.limits[GH_HTTP_LIMIT_CONNECTIONS]) >= 1);
    close(a);
    /* room again once one has gone */
    wait_for((atomic_int *)&seen.done_completed, 2);
    for (int i = 0; i < 100 && atomic_load(&metrics.connections_open) > 1; i++) {
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    expect_ok(s, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    close(b);
    gh_http_server_stop(s, 1000);
}

static void test_drain(void **unused)
{
    struct gh_http_server *s = start(NULL);
    int idle = dial(s), busy = dial(s), closed;
    char *a;

    (void)unused;
    send_str(idle, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    free(read_answer(idle));
    /* a request in progress when the stop begins: it is answered, with Connection: close */
    send_str(busy, "GET /later HTTP/1.1\r\nHost: h\r\n\r\n");
    wait_for(&seen.requests, 2);
    gh_http_server_stop(s, 2000);
    a = read_until_close(busy, 2000, NULL, &closed);
    assert_int_equal(status_of(a), 200);
    assert_non_null(strstr(a, "later"));
    assert_non_null(strcasestr(a, "connection: close"));
    assert_true(closed);
    free(a);
    a = read_until_close(idle, 2000, NULL, &closed);
    assert_true(closed); /* the idle one was closed, without an answer */
    assert_string_equal(a, "");
    free(a);
    close(idle);
    close(busy);
}

/* Requests sent before the stop but not yet read (the worker was busy): the next one of a
 * kept-alive connection, and a new connection still in the listener's backlog, are answered, not
 * reset. */
static void test_drain_answers_what_was_sent(void **unused)
{
    struct gh_http_server *s = start(NULL);
    int keep = dial(s), busy = dial(s), fresh, closed;
    char *a;

    (void)unused;
    send_str(keep, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    free(read_answer(keep));
    send_str(busy, "GET /block HTTP/1.1\r\nHost: h\r\n\r\n");
    wait_for(&seen.requests, 2); /* the worker now sleeps in the handler */
    send_str(keep, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    fresh = dial(s); /* completed by the kernel, not accepted: the worker is busy */
    send_str(fresh, "GET /fresh HTTP/1.1\r\nHost: h\r\n\r\n");
    gh_http_server_stop(s, 2000);
    a = read_until_close(busy, 2000, NULL, &closed);
    assert_int_equal(status_of(a), 200);
    free(a);
    a = read_until_close(keep, 2000, NULL, &closed);
    assert_int_equal(status_of(a), 200); /* before: closed with its request unread */
    assert_non_null(strcasestr(a, "connection: close"));
    assert_true(closed);
    free(a);
    a = read_until_close(fresh, 2000, NULL, &closed);
    assert_int_equal(status_of(a), 200); /* before: reset with the listener */
    assert_true(closed);
    free(a);
    assert_int_equal(atomic_load(&seen.requests), 4);
    close(keep);
    close(busy);
    close(fresh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_keep_alive),
        cmocka_unit_test(test_absolute_form_and_head),
        cmocka_unit_test(test_framing_refused),
        cmocka_unit_test(test_bare_lf_in_chunked_body),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_body_only_when_asked),
        cmocka_unit_test(test_unread_body_lingers),
        cmocka_unit_test(test_body_over_limit_lingers),
        cmocka_unit_test(test_streamed_answer_with_backpressure),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_drain_answers_what_was_sent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
