// SPDX-License-Identifier: Apache-2.0
/*
 * A request's life in the front end, the same for HTTP/1.1 and HTTP/2: its memory (one arena,
 * freed with it, so a handler never frees pieces), the calls into the handler, and the public
 * answering and body functions, which check the order of things (one answer, a body read once)
 * before the protocol does the work. A protocol never ends a request from inside a call the
 * handler made: the end (on_done) always comes from the loop, so a handler may touch its request
 * until its own call returns.
 */
#include "http/conn.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/error.h"

#define ARENA_CHUNK      4096
#define ARENA_USER_LIMIT (64 * 1024) /* what a handler may allocate beyond the head's copy */

struct gh_http_arena_chunk {
    struct gh_http_arena_chunk *next;
    size_t size, used;
    _Alignas(16) char bytes[];
};

const struct gh_http_refusal gh_http_refusal_bad_request = {400, "bad_request",
                                                            "The request is not valid HTTP."};
const struct gh_http_refusal gh_http_refusal_header_bytes = {
    431, "headers_too_large", "The request's header fields are too large."};
const struct gh_http_refusal gh_http_refusal_header_count = {
    431, "headers_too_large", "The request has too many header fields."};
const struct gh_http_refusal gh_http_refusal_body_too_large = {413, "payload_too_large",
                                                               "The request body is too large."};
const struct gh_http_refusal gh_http_refusal_head_timeout = {
    408, "request_timeout", "The request's head did not arrive in time."};
const struct gh_http_refusal gh_http_refusal_body_timeout = {408, "request_timeout",
                                                             "The request body stopped arriving."};

/* ---- memory ---- */

static void *arena_take(struct gh_http_req_impl *r, size_t size)
{
    struct gh_http_arena_chunk *c = r->arena;

    size = (size + 15) & ~(size_t)15;
    if (c == NULL || c->size - c->used < size) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        if ((c = malloc(sizeof *c + cap)) == NULL)
            return NULL;
        c->size = cap;
        c->used = 0;
        c->next = r->arena;
        r->arena = c;
    }
    void *p = c->bytes + c->used;
    c->used += size;
    return p;
}

/* Makes the next chunk hold at least `size` bytes. */
static int arena_reserve(struct gh_http_req_impl *r, size_t size)
{
    struct gh_http_arena_chunk *c;
    size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;

    if ((c = malloc(sizeof *c + cap)) == NULL)
        return GH_ERR_NOMEM;
    c->size = cap;
    c->used = 0;
    c->next = r->arena;
    r->arena = c;
    return GH_OK;
}

void *gh_http_req_arena(struct gh_http_req_impl *r, size_t size)
{
    return arena_take(r, size);
}

void *gh_http_request_alloc(struct gh_http_request *req, size_t size)
{
    struct gh_http_req_impl *r = (struct gh_http_req_impl *)req;

    if (size > ARENA_USER_LIMIT - r->arena_used)
        return NULL;
    r->arena_used += size;
    return arena_take(r, size);
}

struct gh_http_req_impl *gh_http_req_new(struct gh_http_conn *c, size_t arena_hint)
{
    const struct gh_http_server_options *o = gh_http_options(c->worker);
    struct gh_http_req_impl *r = calloc(1, sizeof *r);

    if (r == NULL)
        return NULL;
    r->conn = c;
    r->pub.worker = c->worker;
    r->pub.tls = c->tls;
    r->pub.peer = c->peer;
    r->pub.peer_len = c->peer_len;
    r->pub.query_at = SIZE_MAX;
    r->pub.started_ns = gh_monotonic_ns();
    r->pub.method = r->pub.path = r->pub.authority = "";
    /* one chunk for the handler's state and the head's copy, most requests' only allocation */
    if (arena_reserve(r, arena_hint + o->state_size + 16) != GH_OK ||
        (o->state_size != 0 && (r->pub.state = arena_take(r, o->state_size)) == NULL)) {
        gh_http_req_end(r, 0);
        return NULL;
    }
    if (r->pub.state != NULL)
        memset(r->pub.state, 0, o->state_size);
    return r;
}

/* ---- calls into the handler ---- */

void gh_http_req_dispatch(struct gh_http_req_impl *r)
{
    const struct gh_http_server_options *o = gh_http_options(r->conn->worker);

    r->is_head = r->pub.method_len == 4 && memcmp(r->pub.method, "HEAD", 4) == 0;
    r->dispatched = 1;
    o->handler->on_request(o->handler_ctx, &r->pub);
}

void gh_http_req_refuse(struct gh_http_req_impl *r, const struct gh_http_refusal *refusal)
{
    r->pub.refusal = refusal;
    r->close_after = 1;
    if (refusal->status == 400 || refusal->status == 501 || refusal->status == 505)
        gh_http_count(&gh_http_metrics_of(r->conn->worker)->malformed);
    gh_http_req_dispatch(r);
}

void gh_http_req_body(struct gh_http_req_impl *r, const char *data, size_t len, int state)
{
    const struct gh_http_server_options *o = gh_http_options(r->conn->worker);

    if (o->handler->on_body != NULL)
        o->handler->on_body(o->handler_ctx, &r->pub, data, len, state);
}

void gh_http_req_writable(struct gh_http_req_impl *r)
{
    const struct gh_http_server_options *o = gh_http_options(r->conn->worker);

    if (o->handler->on_writable != NULL && !r->answer_ended)
        o->handler->on_writable(o->handler_ctx, &r->pub);
}

void gh_http_req_end(struct gh_http_req_impl *r, int completed)
{
    const struct gh_http_server_options *o = gh_http_options(r->conn->worker);

    if (r->dispatched && !r->done && o->handler->on_done != NULL) {
        r->done = 1;
        o->handler->on_done(o->handler_ctx, &r->pub, completed);
    }
    while (r->arena != NULL) {
        struct gh_http_arena_chunk *next = r->arena->next;
        free(r->arena);
        r->arena = next;
    }
    free(r);
}

/* ---- answers' Date ---- */

const char *gh_http_date(void)
{
    static _Thread_local time_t cached = -1;
    static _Thread_local char text[32];
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;

    if (now != cached && gmtime_r(&now, &tm)) {
        /* by hand, not strftime: the names must not follow a locale */
        snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
                 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        cached = now;
    }
    return text;
}

/* ---- the head ---- */

const struct gh_http_header *gh_http_header_find(const struct gh_http_request *req,
                                                 const char *lc_name, size_t len, size_t *at)
{
    for (size_t i = at != NULL ? *at : 0; i < req->n_headers; i++) {
        const struct gh_http_header *h = &req->headers[i];
        if (h->name_len == len && memcmp(h->name, lc_name, len) == 0) {
            if (at != NULL)
                *at = i + 1;
            return h;
        }
    }
    if (at != NULL)
        *at = req->n_headers;
    return NULL;
}

static int lc_equals(const char *s, size_t len, const char *lc)
{
    size_t n = strlen(lc);

    if (len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
        if (c != lc[i])
            return 0;
    }
    return 1;
}

int gh_http_front_owned(const char *name, size_t len)
{
    static const char *const owned[] = {
        "content-length", "transfer-encoding", "connection",       "keep-alive", "date",
        "server",         "upgrade",           "proxy-connection", "te",         "trailer",
    };

    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        if (lc_equals(name, len, owned[i]))
            return 1;
    return 0;
}

/* ---- answering ---- */

int gh_http_respond_start(struct gh_http_request *req, int status,
                          const struct gh_http_header *headers, size_t n_headers,
                          int64_t content_length)
{
    struct gh_http_req_impl *r = (struct gh_http_req_impl *)req;

    if (r->answer_started || status < 200 || status > 999)
        return GH_ERR_INVALID_ARG;
    r->answer_started = 1;
    return r->conn->proto->respond_start(req, status, headers, n_headers, content_length);
}

int gh_http_respond_write(struct gh_http_request *req, const void *data, size_t len, int last)
{
    struct gh_http_req_impl *r = (struct gh_http_req_impl *)req;

    if (!r->answer_started || r->answer_ended)
        return -1;
    r->answer_ended = last;
    return r->conn->proto->respond_write(req, data, len, last);
}

int gh_http_respond(struct gh_http_request *req, int status, const struct gh_http_header *headers,
                    size_t n_headers, const void *body, size_t len)
{
    int rc = gh_http_respond_start(req, status, headers, n_headers, (int64_t)len);

    if (rc != GH_OK)
        return rc;
    gh_http_respond_write(req, body, len, 1);
    return GH_OK;
}

void gh_http_respond_abort(struct gh_http_request *req)
{
    struct gh_http_req_impl *r = (struct gh_http_req_impl *)req;

    if (r->answer_ended && r->answer_started)
        return;
    r->answer_started = r->answer_ended = 1;
    r->conn->proto->respond_abort(req);
}

void gh_http_request_close_after(struct gh_http_request *req)
{
    ((struct gh_http_req_impl *)req)->close_after = 1;
}

/* ---- the body ---- */

void gh_http_body_start(struct gh_http_request *req)
{
    struct gh_http_req_impl *r = (struct gh_http_req_impl *)req;

    if (r->body_started || req->refusal != NULL)
        return;
    r->body_started = 1;
    r->conn->proto->body_start(req);
}

void gh_http_body_pause(struct gh_http_request *req)
{
    struct gh_http_req_impl *r = (struct gh_http_req_impl *)req;

    if (r->body_started)
        r->conn->proto->body_pause(req);
}

void gh_http_body_resume(struct gh_http_request *req)
{
    struct gh_http_req_impl *r = (struct gh_http_req_impl *)req;

    if (r->body_started)
        r->conn->proto->body_resume(req);
}
