// SPDX-License-Identifier: Apache-2.0
/*
 * The front end's HTTP/2 side (src/http/h2conn.c, h2session.c) against a real server on
 * 127.0.0.1 over TLS with ALPN h2, driven by an nghttp2 client session in the test over a real
 * socket: answers, streamed bodies with flow control, the header-list limits (431), cookie crumbs
 * joined, the stream limit (REFUSED_STREAM), rapid reset (a stream reset in the same write as its
 * HEADERS never reaches the handler), a reset flood (GOAWAY ENHANCE_YOUR_CALM), a CONTINUATION
 * flood, max_body, the body and idle timeouts, a paused body, and the drain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/server.h"
#include "tlskit.h"

#define MAX_BODY     (128 * 1024)
#define HEADER_BYTES (16 * 1024)
#define RESETS       50
#define NSTREAMS     256

/* ---- the server ---- */

struct srv {
    struct gh_http_server *s;
    struct gh_http_metrics m;
    struct gh_tlskit kit;
    atomic_int requests, done, held;
};

#define BIG (1024 * 1024)

struct st {
    size_t got, sent;
    int pauses;
    struct gh_timer resume; /* /pause: the body resumes a little later, from the loop */
    struct gh_http_request *req;
};

static void on_resume(struct gh_timer *t)
{
    struct st *st = t->data;
    gh_http_body_resume(st->req);
}

/* Writes /big's body until the front end says wait; on_writable comes back here. */
/* bytes the /big handlers handed to the front end, over every stream */
static atomic_size_t big_written;

static void big_write(struct gh_http_request *req)
{
    static const char chunk[16384];
    struct st *st = req->state;
    int rc = 1;

    while (rc == 1 && st->sent < BIG) {
        st->sent += sizeof chunk;
        atomic_fetch_add(&big_written, sizeof chunk);
        rc = gh_http_respond_write(req, chunk, sizeof chunk, st->sent == BIG);
    }
}

static void answer(struct gh_http_request *req, int status, const char *body)
{
    struct gh_http_header h = {"Content-Type", "text/plain", 12, 10};
    gh_http_respond(req, status, &h, 1, body, strlen(body));
}

static int path_is(const struct gh_http_request *req, const char *p)
{
    return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

static void on_request(void *ctx, struct gh_http_request *req)
{
    struct srv *S = ctx;
    char text[HEADER_BYTES];

    atomic_fetch_add(&S->requests, 1);
    if (req->refusal) {
        /* the pseudo-headers survive a refusal, for the handler's log */
        char what[HEADER_BYTES];
        snprintf(what, sizeof what, "%s %.*s %.*s", req->refusal->code, (int)req->method_len,
                 req->method, (int)req->path_len, req->path);
        answer(req, req->refusal->status, what);
    } else if (path_is(req, "/hello")) {
        answer(req, 200, "hello");
    } else if (path_is(req, "/echo") || path_is(req, "/pause")) {
        gh_http_body_start(req);
    } else if (path_is(req, "/hold")) {
        atomic_fetch_add(&S->held, 1);
    } else if (path_is(req, "/cookie")) {
        size_t at = 0, n = 0;
        const struct gh_http_header *h, *first = NULL;
        while ((h = gh_http_header_find(req, "cookie", 6, &at)))
            first = first ? first : h, n++;
        snprintf(text, sizeof text, "%zu|%.*s", n, first ? (int)first->value_len : 0,
                 first ? first->value : "");
        answer(req, 200, text);
    } else if (path_is(req, "/big")) {
        gh_http_respond_start(req, 200, NULL, 0, BIG);
        big_write(req);
    } else if (path_is(req, "/stream")) {
        gh_http_respond_start(req, 200, NULL, 0, -1);
        memset(text, 'x', 100000 < sizeof text ? 100000 : sizeof text);
        gh_http_respond_write(req, text, 10000, 0);
        gh_http_respond_write(req, "end", 3, 1);
    } else {
        answer(req, 404, "no");
    }
}

static void on_body(void *ctx, struct gh_http_request *req, const char *data, size_t len, int state)
{
    struct st *st = req->state;
    char text[64];
    (void)ctx;
    (void)data;

    st->got += len;
    if (state == 0 && path_is(req, "/pause") && st->pauses < 3) {
        /* held: the client's window stays shut until the resume consumes these bytes */
        st->pauses++;
        st->req = req;
        st->resume.cb = on_resume;
        st->resume.data = st;
        gh_http_body_pause(req);
        gh_timer_arm(gh_http_worker_loop(req->worker), &st->resume, 20);
    }
    if (state == 1) {
        snprintf(text, sizeof text, "got %zu", st->got);
        answer(req, 200, text);
    } else if (state == GH_HTTP_BODY_TOO_LARGE) {
        answer(req, 413, "too_large");
    } else if (state == GH_HTTP_BODY_TIMEOUT) {
        answer(req, 408, "timeout");
    }
}

static void on_done(void *ctx, struct gh_http_request *req, int completed)
{
    struct srv *S = ctx;
    struct st *st = req->state;
    (void)completed;
    gh_timer_disarm(gh_http_worker_loop(req->worker), &st->resume);
    atomic_fetch_add(&S->done, 1);
}

static void on_writable(void *ctx, struct gh_http_request *req)
{
    (void)ctx;
    big_write(req);
}

static const struct gh_http_handler handler = {on_request, on_body, on_writable, on_done};

/* Timeouts short enough to wait for (setup_short); 0 takes the defaults. */
static uint32_t short_ms;

static int setup(void **state)
{
    struct srv *S = calloc(1, sizeof *S);
    char error[256] = "";

    assert_non_null(S);
    assert_int_equal(gh_tlskit_make(&S->kit), 0);
    struct gh_http_server_options o = {
        .listen = "127.0.0.1:0",
        .threads = 1,
        .tls_cert = S->kit.cert_path,
        .tls_key = S->kit.key_path,
        .http2 = 1,
        .limits = {.header_bytes = HEADER_BYTES,
                   .max_body = MAX_BODY,
                   .h2_resets_per_10s = RESETS,
                   .idle_ms = short_ms,
                   .body_ms = short_ms},
        .server_name = "gatehouse",
        .handler = &handler,
        .handler_ctx = S,
        .state_size = sizeof(struct st),
        .metrics = &S->m,
    };
    assert_int_equal(gh_http_server_start(&o, &S->s, error, sizeof error), 0);
    *state = S;
    return 0;
}

static int setup_short(void **state)
{
    short_ms = 300;
    int rc = setup(state);
    short_ms = 0;
    return rc;
}

static int teardown(void **state)
{
    struct srv *S = *state;

    gh_http_server_stop(S->s, 200);
    gh_tlskit_clear(&S->kit);
    free(S);
    return 0;
}

/* ---- the client ---- */

struct stream_seen {
    int status, closed;
    uint32_t error;
    char body[256];
    size_t body_len, body_total;
};

struct cli {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    nghttp2_session *ng;
    struct stream_seen st[NSTREAMS];
    int goaway, eof, settings;
    uint32_t goaway_code;
    int32_t goaway_last; /* the last stream the server says it took */
    /* the request body a data provider sends */
    size_t body_left;
};

static struct stream_seen *seen(struct cli *c, int32_t id)
{
    size_t i = (size_t)(id - 1) / 2;
    return id > 0 && i < NSTREAMS ? &c->st[i] : NULL;
}

static int c_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                       size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct stream_seen *s = seen(ud, f->hd.stream_id);
    (void)ng;
    (void)flags;
    if (s && nlen == 7 && memcmp(name, ":status", 7) == 0)
        s->status = atoi((const char *)value) + 0 * (int)vlen;
    return 0;
}

static int c_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                     size_t len, void *ud)
{
    struct stream_seen *s = seen(ud, id);
    (void)ng;
    (void)flags;
    if (!s)
        return 0;
    size_t n = len < sizeof s->body - 1 - s->body_len ? len : sizeof s->body - 1 - s->body_len;
    memcpy(s->body + s->body_len, data, n);
    s->body_len += n;
    s->body_total += len;
    return 0;
}

static int c_on_close(nghttp2_session *ng, int32_t id, uint32_t error, void *ud)
{
    struct stream_seen *s = seen(ud, id);
    (void)ng;
    if (s) {
        s->closed = 1;
        s->error = error;
    }
    return 0;
}

static int c_on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct cli *c = ud;
    (void)ng;
    if (f->hd.type == NGHTTP2_SETTINGS)
        c->settings = 1;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = 1;
        c->goaway_code = f->goaway.error_code;
        c->goaway_last = f->goaway.last_stream_id;
    }
    return 0;
}

static void cli_open(struct cli *c, struct srv *S, size_t peer_max_streams)
{
    const char *addr = gh_http_server_address_at(S->s, 0);
    const char *colon = strrchr(addr, ':');
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(colon + 1))};
    static const unsigned char alpn[] = "\x02h2";
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    struct timeval tv = {10, 0};

    memset(c, 0, sizeof *c);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    c->ctx = gh_tlskit_client_ctx(&S->kit, alpn, sizeof alpn - 1);
    assert_non_null(c->ctx);
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    assert_int_equal(SSL_connect(c->ssl), 1);
    const unsigned char *proto;
    unsigned proto_len;
    SSL_get0_alpn_selected(c->ssl, &proto, &proto_len);
    assert_int_equal(proto_len, 2);
    assert_memory_equal(proto, "h2", 2);

    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame);
    nghttp2_option_new(&opt);
    nghttp2_option_set_peer_max_concurrent_streams(opt, (uint32_t)peer_max_streams);
    /* nghttp2 refuses to send a head it estimates (uncompressed) over 64 KiB: the tests send
     * larger ones on purpose, since HPACK makes them small on the wire */
    nghttp2_option_set_max_send_header_block_length(opt, 16u << 20);
    assert_int_equal(nghttp2_session_client_new2(&c->ng, cb, c, opt), 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, NULL, 0);
}

static void cli_close(struct cli *c)
{
    nghttp2_session_del(c->ng);
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
}

/* Everything nghttp2 has to send, gathered, then one SSL_write: one TLS record per 16 KiB. */
static void cli_send(struct cli *c)
{
    static uint8_t buf[1 << 20];
    size_t len = 0;
    const uint8_t *p;
    ssize_t n;

    while ((n = nghttp2_session_mem_send(c->ng, &p)) > 0) {
        assert_true(len + (size_t)n <= sizeof buf);
        memcpy(buf + len, p, (size_t)n);
        len += (size_t)n;
    }
    assert_true(n == 0);
    if (len && !c->eof)
        c->eof = SSL_write(c->ssl, buf, (int)len) != (int)len;
}

/* Sends and reads until `done(c, arg)` or 10 s (then fails). */
static void cli_until(struct cli *c, int (*done)(struct cli *, int32_t), int32_t arg)
{
    time_t deadline = time(NULL) + 10;
    uint8_t buf[16384];

    while (!done(c, arg)) {
        assert_true(time(NULL) < deadline);
        cli_send(c);
        if (c->eof)
            return;
        struct pollfd pfd = {c->fd, POLLIN, 0};
        if (!SSL_pending(c->ssl) && poll(&pfd, 1, 100) <= 0)
            continue;
        int n = SSL_read(c->ssl, buf, sizeof buf);
        if (n <= 0) {
            c->eof = 1;
            return;
        }
        assert_int_equal(nghttp2_session_mem_recv(c->ng, buf, (size_t)n), n);
    }
}

static int closed(struct cli *c, int32_t id)
{
    return seen(c, id)->closed;
}

static int got_settings(struct cli *c, int32_t id)
{
    (void)id;
    return c->settings || c->eof;
}

static int got_goaway(struct cli *c, int32_t id)
{
    (void)id;
    return c->goaway || c->eof;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE             \
    }

static int32_t get(struct cli *c, const char *method, const char *path, const nghttp2_nv *extra,
                   size_t n_extra, nghttp2_data_provider *body)
{
    nghttp2_nv nva[128] = {NV(":method", method), NV(":scheme", "https"),
                           NV(":authority", "127.0.0.1"), NV(":path", path)};
    assert_true(n_extra + 4 <= 128);
    if (n_extra)
        memcpy(nva + 4, extra, n_extra * sizeof *extra);
    int32_t id = nghttp2_submit_request(c->ng, NULL, nva, n_extra + 4, body, c);
    assert_true(id > 0);
    return id;
}

static ssize_t body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    struct cli *c = ud;
    size_t n = len < c->body_left ? len : c->body_left;
    (void)ng;
    (void)id;
    (void)src;
    memset(buf, 'b', n);
    c->body_left -= n;
    if (!c->body_left)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static struct srv *held_srv;

static uint64_t limit(struct srv *S, enum gh_http_limit which)
{
    return atomic_load(&S->m.limits[which]);
}

/* ---- the tests ---- */

static void test_get(void **state)
{
    struct srv *S = *state;
    struct cli c;

    cli_open(&c, S, 100);
    int32_t id = get(&c, "GET", "/hello", NULL, 0, NULL);
    int32_t head = get(&c, "HEAD", "/hello", NULL, 0, NULL);
    int32_t stream = get(&c, "GET", "/stream", NULL, 0, NULL);
    cli_until(&c, closed, id);
    cli_until(&c, closed, head);
    cli_until(&c, closed, stream);
    assert_int_equal(seen(&c, id)->status, 200);
    assert_int_equal(seen(&c, id)->error, NGHTTP2_NO_ERROR);
    assert_string_equal(seen(&c, id)->body, "hello");
    assert_int_equal(seen(&c, head)->status, 200);
    assert_int_equal(seen(&c, head)->body_total, 0);
    assert_int_equal(seen(&c, stream)->body_total, 10003);
    assert_int_equal(seen(&c, stream)->error, NGHTTP2_NO_ERROR);
    assert_true(atomic_load(&S->m.connections_http2) >= 1);
    cli_close(&c);
}

static void test_post_body(void **state)
{
    struct srv *S = *state;
    struct cli c;

    cli_open(&c, S, 100);
    c.body_left = 100000; /* more than a stream's window: it reopens as the handler reads */
    nghttp2_data_provider dp = {.read_callback = body_read};
    int32_t id = get(&c, "POST", "/echo", NULL, 0, &dp);
    cli_until(&c, closed, id);
    assert_int_equal(seen(&c, id)->status, 200);
    assert_string_equal(seen(&c, id)->body, "got 100000");
    cli_close(&c);
}

static void test_header_count(void **state)
{
    struct srv *S = *state;
    struct cli c;
    nghttp2_nv extra[101];
    char names[101][16];
    uint64_t before = limit(S, GH_HTTP_LIMIT_HEADER_COUNT);

    for (int i = 0; i < 101; i++) {
        snprintf(names[i], sizeof names[i], "x-f%d", i);
        extra[i] = (nghttp2_nv){(uint8_t *)names[i], (uint8_t *)"v", strlen(names[i]), 1, 0};
    }
    cli_open(&c, S, 100);
    int32_t bad = get(&c, "GET", "/hello", extra, 101, NULL);
    int32_t ok = get(&c, "GET", "/hello", extra, 96, NULL);
    cli_until(&c, closed, bad);
    cli_until(&c, closed, ok);
    assert_int_equal(seen(&c, bad)->status, 431);
    assert_string_equal(seen(&c, bad)->body, "headers_too_large GET /hello");
    assert_int_equal(seen(&c, ok)->status, 200);
    assert_int_equal(limit(S, GH_HTTP_LIMIT_HEADER_COUNT), before + 1);
    cli_close(&c);
}

static void test_header_bytes(void **state)
{
    struct srv *S = *state;
    struct cli c;
    static char value[1000];
    nghttp2_nv extra[20];
    char names[20][16];
    uint64_t before = limit(S, GH_HTTP_LIMIT_HEADER_BYTES);

    memset(value, 'v', sizeof value - 1);
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof names[i], "x-b%d", i);
        extra[i] = (nghttp2_nv){(uint8_t *)names[i], (uint8_t *)value, strlen(names[i]),
                                sizeof value - 1, 0};
    }
    cli_open(&c, S, 100);
    int32_t bad = get(&c, "GET", "/hello", extra, 20, NULL); /* 20 KB > 16 KiB */
    int32_t ok = get(&c, "GET", "/hello", extra, 10, NULL);
    cli_until(&c, closed, bad);
    cli_until(&c, closed, ok);
    assert_int_equal(seen(&c, bad)->status, 431);
    assert_int_equal(seen(&c, ok)->status, 200);
    assert_int_equal(limit(S, GH_HTTP_LIMIT_HEADER_BYTES), before + 1);
    cli_close(&c);
}

static void test_hpack_bomb_ends_connection(void **state)
{
    struct srv *S = *state;
    struct cli c;
    static char value[3000];
    nghttp2_nv crumbs[100];
    uint64_t before = limit(S, GH_HTTP_LIMIT_H2_FLOOD);

    /* one 3 KB cookie, then 99 references to it: a few hundred bytes on the wire that decode
     * to 300 KB, over sixteen times the 16 KiB limit. The connection ends instead of decoding on
     * (a stream of such requests would keep a worker busy), and the request never reaches the
     * handler. */
    memset(value, 'c', sizeof value - 1);
    value[0] = 'k';
    value[1] = '=';
    for (int i = 0; i < 100; i++)
        crumbs[i] = (nghttp2_nv){(uint8_t *)"cookie", (uint8_t *)value, 6, sizeof value - 1, 0};
    cli_open(&c, S, 100);
    int requests = atomic_load(&S->requests);
    get(&c, "GET", "/hello", crumbs, 100, NULL);
    cli_until(&c, got_goaway, 0);
    assert_true(c.eof || c.goaway);
    assert_int_equal(limit(S, GH_HTTP_LIMIT_H2_FLOOD), before + 1);
    assert_int_equal(atomic_load(&S->requests), requests);
    cli_close(&c);
    /* the server goes on for everyone else */
    cli_open(&c, S, 100);
    int32_t ok = get(&c, "GET", "/hello", NULL, 0, NULL);
    cli_until(&c, closed, ok);
    assert_int_equal(seen(&c, ok)->status, 200);
    cli_close(&c);
}

static void test_cookie_join(void **state)
{
    struct srv *S = *state;
    struct cli c;
    nghttp2_nv crumbs[] = {NV("cookie", "a=1"), NV("x-other", "o"), NV("cookie", "b=2"),
                           NV("cookie", "c=3")};

    cli_open(&c, S, 100);
    int32_t id = get(&c, "GET", "/cookie", crumbs, 4, NULL);
    int32_t one = get(&c, "GET", "/cookie", crumbs, 1, NULL);
    cli_until(&c, closed, id);
    cli_until(&c, closed, one);
    assert_string_equal(seen(&c, id)->body, "1|a=1; b=2; c=3");
    assert_string_equal(seen(&c, one)->body, "1|a=1");
    cli_close(&c);
}

static void test_streams_refused(void **state)
{
    struct srv *S = *state;
    struct cli c;
    int32_t ids[101];
    uint64_t before = limit(S, GH_HTTP_LIMIT_H2_STREAMS);

    /* all 101 HEADERS go out before the server's SETTINGS are read */
    cli_open(&c, S, 1000);
    for (int i = 0; i < 101; i++)
        ids[i] = get(&c, "GET", "/hold", NULL, 0, NULL);
    cli_until(&c, closed, ids[100]);
    assert_int_equal(seen(&c, ids[100])->error, NGHTTP2_REFUSED_STREAM);
    for (int i = 0; i < 100; i++)
        assert_false(seen(&c, ids[i])->closed);
    assert_int_equal(limit(S, GH_HTTP_LIMIT_H2_STREAMS), before + 1);
    cli_close(&c);
}

static void test_rapid_reset(void **state)
{
    struct srv *S = *state;
    struct cli c;
    int before = atomic_load(&S->requests);

    cli_open(&c, S, 100);
    cli_send(&c); /* preface and SETTINGS */
    /* ten HEADERS, each followed by its RST_STREAM, all in one write: nghttp2 would cancel a
     * request reset before it went out, so the frames are taken out first */
    static uint8_t buf[65536];
    size_t len = 0;
    for (int i = 0; i < 10; i++) {
        const uint8_t *p;
        ssize_t n;
        int32_t id = get(&c, "GET", "/hello", NULL, 0, NULL);
        while ((n = nghttp2_session_mem_send(c.ng, &p)) > 0)
            memcpy(buf + len, p, (size_t)n), len += (size_t)n;
        nghttp2_submit_rst_stream(c.ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        while ((n = nghttp2_session_mem_send(c.ng, &p)) > 0)
            memcpy(buf + len, p, (size_t)n), len += (size_t)n;
    }
    assert_int_equal(SSL_write(c.ssl, buf, (int)len), (int)len);
    int32_t last = get(&c, "GET", "/hello", NULL, 0, NULL);
    cli_until(&c, closed, last);
    assert_int_equal(seen(&c, last)->status, 200);
    /* the handler saw the last request only */
    assert_int_equal(atomic_load(&S->requests) - before, 1);
    cli_close(&c);
}

static void test_reset_flood(void **state)
{
    struct srv *S = *state;
    struct cli c;
    uint64_t before = limit(S, GH_HTTP_LIMIT_H2_RESETS);

    cli_open(&c, S, 1000);
    cli_send(&c);
    /* the budget's worth of resets is fine (each counted once), the connection still answers */
    for (int i = 0; i < RESETS; i++) {
        int32_t id = get(&c, "GET", "/hold", NULL, 0, NULL);
        cli_send(&c);
        nghttp2_submit_rst_stream(c.ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    }
    int32_t ok = get(&c, "GET", "/hello", NULL, 0, NULL);
    cli_until(&c, closed, ok);
    assert_int_equal(seen(&c, ok)->status, 200);
    assert_false(c.goaway);
    /* more within the same 10 s: GOAWAY (the bucket refills 5 a second: a slow run needs a few
     * more than one) */
    for (int i = 0; i < RESETS; i++) {
        int32_t id = get(&c, "GET", "/hold", NULL, 0, NULL);
        cli_send(&c);
        nghttp2_submit_rst_stream(c.ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    }
    cli_until(&c, got_goaway, 0);
    assert_true(c.goaway);
    assert_int_equal(c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    assert_int_equal(limit(S, GH_HTTP_LIMIT_H2_RESETS), before + 1);
    cli_close(&c);
}

static void test_body_too_large(void **state)
{
    struct srv *S = *state;
    struct cli c;
    uint64_t before = limit(S, GH_HTTP_LIMIT_BODY);
    nghttp2_data_provider dp = {.read_callback = body_read};
    nghttp2_nv cl[] = {NV("content-length", "200000")};

    cli_open(&c, S, 100);
    c.body_left = 200000; /* no content-length: found out while reading */
    int32_t id = get(&c, "POST", "/echo", NULL, 0, &dp);
    cli_until(&c, closed, id);
    assert_int_equal(seen(&c, id)->status, 413);
    assert_string_equal(seen(&c, id)->body, "too_large");
    assert_int_equal(limit(S, GH_HTTP_LIMIT_BODY), before + 1);

    c.body_left = 200000; /* announced: refused when the handler asks for it, nothing read */
    int before_requests = atomic_load(&S->requests);
    id = get(&c, "POST", "/echo", cl, 1, &dp);
    cli_until(&c, closed, id);
    assert_int_equal(seen(&c, id)->status, 413);
    assert_string_equal(seen(&c, id)->body, "too_large");
    assert_int_equal(atomic_load(&S->requests), before_requests + 1);
    assert_int_equal(limit(S, GH_HTTP_LIMIT_BODY), before + 2);
    cli_close(&c);
}

static void test_stream_backpressure(void **state)
{
    struct srv *S = *state;
    struct cli c;

    /* 1 MiB answer written whenever the front end says it may: its buffer stays bounded and
     * on_writable brings the handler back until the end */
    cli_open(&c, S, 100);
    int32_t id = get(&c, "GET", "/big", NULL, 0, NULL);
    cli_until(&c, closed, id);
    assert_int_equal(seen(&c, id)->status, 200);
    assert_int_equal(seen(&c, id)->error, NGHTTP2_NO_ERROR);
    assert_int_equal(seen(&c, id)->body_total, BIG);
    cli_close(&c);
}

static void test_connection_answer_budget(void **state)
{
    struct srv *S = *state;
    struct cli c;
    int32_t ids[20];
    struct timespec t = {0, 300 * 1000 * 1000};

    /* twenty large answers to a client that reads nothing: the connection holds a bounded total
     * (about H2_CONN_OUT_HIGH), not twenty streams' worth; then they all arrive whole */
    cli_open(&c, S, 100);
    cli_until(&c, got_settings, 0);
    atomic_store(&big_written, 0);
    for (int i = 0; i < 20; i++)
        ids[i] = get(&c, "GET", "/big", NULL, 0, NULL);
    cli_send(&c);
    nanosleep(&t, NULL);
    size_t held = atomic_load(&big_written);
    assert_true(held >= 64 * 1024);
    if (held > 600 * 1024)
        fail_msg("the connection took %zu bytes of answers while its client read nothing", held);
    for (int i = 0; i < 20; i++) {
        cli_until(&c, closed, ids[i]);
        assert_int_equal(seen(&c, ids[i])->body_total, BIG);
    }
    cli_close(&c);
}

static void test_body_timeout(void **state)
{
    struct srv *S = *state;
    struct cli c;
    nghttp2_nv nva[] = {NV(":method", "POST"), NV(":scheme", "https"),
                        NV(":authority", "127.0.0.1"), NV(":path", "/echo")};

    /* a body that never comes: the handler hears of it after body_ms and answers 408 */
    cli_open(&c, S, 100);
    int32_t id = nghttp2_submit_headers(c.ng, NGHTTP2_FLAG_NONE, -1, NULL, nva, 4, NULL);
    assert_true(id > 0);
    cli_until(&c, closed, id);
    assert_int_equal(seen(&c, id)->status, 408);
    assert_int_equal(limit(S, GH_HTTP_LIMIT_BODY_TIMEOUT), 1);
    cli_close(&c);
}

static void test_idle_close(void **state)
{
    struct srv *S = *state;
    struct cli c;

    cli_open(&c, S, 100);
    int32_t id = get(&c, "GET", "/hello", NULL, 0, NULL);
    cli_until(&c, closed, id);
    cli_until(&c, got_goaway, 0);
    assert_true(c.goaway);
    assert_int_equal(c.goaway_code, NGHTTP2_NO_ERROR);
    assert_int_equal(atomic_load(&S->m.idle_closed), 1);
    cli_close(&c);
}

static int held(struct cli *c, int32_t n)
{
    (void)c;
    return atomic_load(&held_srv->held) >= n;
}

static void test_body_pause(void **state)
{
    struct srv *S = *state;
    struct cli c;

    cli_open(&c, S, 100);
    c.body_left = 300000 > MAX_BODY ? MAX_BODY - 1 : 300000;
    nghttp2_data_provider dp = {.read_callback = body_read};
    int32_t id = get(&c, "POST", "/pause", NULL, 0, &dp);
    cli_until(&c, closed, id);
    assert_int_equal(seen(&c, id)->status, 200);
    char want[64];
    snprintf(want, sizeof want, "got %d", MAX_BODY - 1);
    assert_string_equal(seen(&c, id)->body, want);
    cli_close(&c);
}

/* A HEADERS frame whose header block never ends: CONTINUATION after CONTINUATION. */
static void test_continuation_flood(void **state)
{
    struct srv *S = *state;
    struct cli c;
    uint8_t buf[512];
    size_t len = 0;
    static const uint8_t field[] = {0x00, 0x01, 'x', 0x01, 'y'}; /* literal x: y */

    cli_open(&c, S, 100);
    cli_send(&c); /* preface and SETTINGS */
    for (int i = 0; i < 20; i++) {
        const uint8_t *payload = i ? field : (const uint8_t *)"\x82";
        size_t n = i ? sizeof field : 1;
        uint8_t head[9] = {0, 0, (uint8_t)n, i ? 9 : 1, 0, 0, 0, 0, 1};
        memcpy(buf + len, head, 9);
        memcpy(buf + len + 9, payload, n);
        len += 9 + n;
    }
    assert_int_equal(SSL_write(c.ssl, buf, (int)len), (int)len);
    while (!c.eof) {
        uint8_t in[4096];
        int n = SSL_read(c.ssl, in, sizeof in);
        c.eof = n <= 0;
    }
    assert_int_equal(limit(S, GH_HTTP_LIMIT_H2_FLOOD), 1);
    assert_int_equal(atomic_load(&S->requests), 0);
    cli_close(&c);
}

static void test_drain(void **state)
{
    struct srv *S = *state;
    struct cli c;

    /* a request in flight when the server stops: GOAWAY NO_ERROR naming it, then the cut */
    cli_open(&c, S, 100);
    int32_t id = get(&c, "GET", "/hold", NULL, 0, NULL);
    held_srv = S;
    cli_until(&c, held, 1);
    gh_http_server_stop(S->s, 100);
    S->s = NULL;
    cli_until(&c, got_goaway, 0);
    assert_true(c.goaway);
    assert_int_equal(c.goaway_code, NGHTTP2_NO_ERROR);
    assert_int_equal(c.goaway_last, id);
    assert_int_equal(atomic_load(&S->done), atomic_load(&S->requests));
    cli_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hpack_bomb_ends_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cookie_join, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rapid_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_answer_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_timeout, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_idle_close, setup_short, teardown),
        cmocka_unit_test_setup_teardown(test_body_pause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_continuation_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
