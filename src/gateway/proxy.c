// SPDX-License-Identifier: Apache-2.0
/*
 * The upstream side of an allowed request: one HTTP/1.1 exchange with the collection's upstream
 * over a keep-alive connection of upstream.c. The request head is written here (SPEC §5's header
 * rules: hop-by-hop and incoming X-Gatehouse-* headers go, the caller's identity comes in), the
 * answer's head is read with h1parse.c and handed to h2o, and its body is relayed as it comes,
 * reading no further ahead of a slow client than BODY_AHEAD bytes.
 * An exchange lives in its request's memory pool; the pool's dispose hook (or h2o's stop, when
 * the client leaves mid-answer) ends whatever is still going. Failures before the answer's head
 * are our JSON 502/504; after it, the client's connection is cut, as the answer is already
 * partly sent. A pooled connection that fails before a single byte of answer is most likely one
 * the upstream closed while we reused it: an idempotent request is then tried once more on a
 * new connection (RFC 9110 9.2.2).
 */
#include "gateway/server_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1parse.h"

#define MAX_TIMEOUTS 64         /* distinct timeouts per worker; more share the first one */
#define DEFAULT_MS   30000      /* an endpoint without timeout_ms */
#define HEAD_MAX     (64 << 10) /* an upstream answer's head */
#define BODY_AHEAD   (1 << 20)  /* body bytes read from the upstream before the client takes them */
/* The request head we write upstream, repeated fields joined: what common servers accept (nginx,
 * Tomcat, Node: 8 to 64 KiB), and a ceiling on what a few bytes of HPACK repetition can make us
 * build. Over it the caller gets 431. */
#define UPSTREAM_HEAD_MAX (64 << 10)

/* ---- per-worker timeouts ---- */

static h2o_timeout_t *timeout_for(struct gw_worker *w, int timeout_ms)
{
    uint64_t ms = timeout_ms > 0 ? (uint64_t)timeout_ms : DEFAULT_MS;
    struct gw_timeout *t, **grown;

    for (size_t i = 0; i < w->n_timeouts; i++)
        if (w->timeouts[i]->ms == ms)
            return &w->timeouts[i]->timeout;
    if (w->n_timeouts == MAX_TIMEOUTS || (t = calloc(1, sizeof *t)) == NULL)
        return w->n_timeouts != 0 ? &w->timeouts[0]->timeout : NULL;
    if ((grown = realloc(w->timeouts, (w->n_timeouts + 1) * sizeof *grown)) == NULL) {
        free(t);
        return w->n_timeouts != 0 ? &w->timeouts[0]->timeout : NULL;
    }
    w->timeouts = grown;
    t->ms = ms;
    h2o_timeout_init(w->loop, &t->timeout, ms);
    w->timeouts[w->n_timeouts++] = t;
    return &t->timeout;
}

void gw_proxy_dispose(struct gw_worker *w)
{
    gw_upstream_dispose(w);
    for (size_t i = 0; i < w->n_timeouts; i++) {
        h2o_timeout_dispose(w->loop, &w->timeouts[i]->timeout);
        free(w->timeouts[i]);
    }
    free(w->timeouts);
    w->timeouts = NULL;
    w->n_timeouts = 0;
}

/* ---- the request head ---- */

/* 1 when `name` is one of the comma-separated tokens of `list` (a Connection header's value). */
static int listed(const char *list, size_t list_len, const char *name, size_t name_len)
{
    const char *p = list, *end = list + list_len;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *start = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if (p > start && h2o_lcstris(start, (size_t)(p - start), name, name_len))
            return 1;
    }
    return 0;
}

/* Headers named by the request's Connection headers are hop-by-hop too (RFC 9110 7.6.1). */
static int named_by_connection(const h2o_req_t *req, const h2o_iovec_t *name)
{
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (h->name == &H2O_TOKEN_CONNECTION->buf &&
            listed(h->value.base, h->value.len, name->base, name->len))
            return 1;
    }
    return 0;
}

static int is_dropped(const h2o_req_t *req, const h2o_header_t *h, int pass_authorization,
                      int has_connection)
{
    static const struct {
        const char *name;
        size_t len;
    } names[] = {
#define NAME(s) {s, sizeof s - 1}
        NAME("connection"),
        NAME("keep-alive"),
        NAME("proxy-connection"),
        NAME("te"),
        NAME("trailer"),
        NAME("transfer-encoding"),
        NAME("upgrade"),
        NAME("proxy-authorization"),
        NAME("http2-settings"),
        NAME("api-token"),
        NAME("x-request-id"),
        NAME("x-forwarded-host"),
        NAME("x-forwarded-proto"),
        /* written below, from the connection or merged with the received ones */
        NAME("host"),
        NAME("content-length"),
        NAME("expect"),
        NAME("x-forwarded-for"),
        NAME("via"),
        NAME("cookie"),
#undef NAME
    };
    const h2o_iovec_t *name = h->name;

    /* CGI, WSGI and Rack read X_Gatehouse_Claims as X-Gatehouse-Claims: a name with `_` could
     * forge our identity headers, so none goes on (as nginx does by default) */
    if (memchr(name->base, '_', name->len) != NULL)
        return 1;
    if (name->len >= 12 && h2o_lcstris(name->base, 12, H2O_STRLIT("x-gatehouse-")))
        return 1;
    if (!pass_authorization && name == &H2O_TOKEN_AUTHORIZATION->buf)
        return 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (h2o_lcstris(name->base, name->len, names[i].name, names[i].len))
            return 1;
    return has_connection && named_by_connection(req, name);
}

/* The i-th part of a joined field: the request's i-th header when it is called `name`, or `last`
 * (when not empty) after them all; NULL when the i-th is no part. */
static const h2o_iovec_t *part(const h2o_req_t *req, const h2o_token_t *name,
                               const h2o_iovec_t *last, size_t i)
{
    if (i < req->headers.size)
        return req->headers.entries[i].name == &name->buf ? &req->headers.entries[i].value : NULL;
    return last->len != 0 ? last : NULL;
}

/* The values of every header called `name`, joined by `sep`, then `last` when not empty; length 0
 * when there is none. Sized first, then copied once: linear in the fields, however many repeat. */
static h2o_iovec_t joined(h2o_req_t *req, const h2o_token_t *name, const char *sep,
                          h2o_iovec_t last)
{
    size_t sep_len = strlen(sep), len = 0, n = 0;
    const h2o_iovec_t *v;
    char *out;

    for (size_t i = 0; i <= req->headers.size; i++)
        if ((v = part(req, name, &last, i)) != NULL)
            len += (n++ != 0 ? sep_len : 0) + v->len;
    if (n == 0)
        return h2o_iovec_init(NULL, 0);
    out = h2o_mem_alloc_pool(&req->pool, len);
    len = n = 0;
    for (size_t i = 0; i <= req->headers.size; i++) {
        if ((v = part(req, name, &last, i)) == NULL)
            continue;
        if (n++ != 0) {
            memcpy(out + len, sep, sep_len);
            len += sep_len;
        }
        memcpy(out + len, v->base, v->len);
        len += v->len;
    }
    return h2o_iovec_init(out, len);
}

struct head_writer {
    h2o_req_t *req;
    char *buf;
    size_t len, cap;
};

static void put(struct head_writer *hw, const char *s, size_t n)
{
    if (hw->len + n > hw->cap) {
        size_t cap = hw->cap * 2 > hw->len + n ? hw->cap * 2 : hw->len + n + 1024;
        char *grown = h2o_mem_alloc_pool(&hw->req->pool, cap);
        memcpy(grown, hw->buf, hw->len);
        hw->buf = grown;
        hw->cap = cap;
    }
    memcpy(hw->buf + hw->len, s, n);
    hw->len += n;
}

static void put_header(struct head_writer *hw, const char *name, size_t name_len, const char *value,
                       size_t value_len)
{
    put(hw, name, name_len);
    put(hw, ": ", 2);
    put(hw, value, value_len);
    put(hw, "\r\n", 2);
}

static void put_header_str(struct head_writer *hw, const char *name, const char *value)
{
    put_header(hw, name, strlen(name), value, strlen(value));
}

/* The client's address as text, for X-Forwarded-For. */
static h2o_iovec_t client_address(h2o_req_t *req)
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    char *buf = h2o_mem_alloc_pool(&req->pool, NI_MAXHOST);
    size_t n = len != 0 ? h2o_socket_getnumerichost((struct sockaddr *)&ss, len, buf) : SIZE_MAX;

    return n != SIZE_MAX ? h2o_iovec_init(buf, n) : h2o_iovec_init(NULL, 0);
}

/* A body's length goes with every method that has one or is expected to (RFC 9110 8.6). */
static int needs_content_length(const h2o_req_t *req)
{
    return req->entity.base != NULL ||
           h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")) ||
           h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT")) ||
           h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PATCH"));
}

/* <upstream base path><rest of the request path><?query as received>, with no "//" where the
 * base ends and the rest begins. */
static h2o_iovec_t upstream_path(struct gw_req *g, const h2o_url_t *up)
{
    h2o_req_t *req = g->req;
    h2o_iovec_t base = up->path, rest = h2o_iovec_init(g->decision.rest, g->decision.rest_len);
    h2o_iovec_t query = h2o_iovec_init(NULL, 0);

    if (rest.len > 0 && base.len > 0 && base.base[base.len - 1] == '/')
        base.len--;
    if (base.len == 0 && rest.len == 0)
        base = h2o_iovec_init(H2O_STRLIT("/"));
    if (req->input.query_at != SIZE_MAX)
        query = h2o_iovec_init(req->input.path.base + req->input.query_at,
                               req->input.path.len - req->input.query_at);
    return h2o_concat(&req->pool, base, rest, query);
}

/* The bytes of the incoming headers: the joined ones cannot be much more, so a request over the
 * limit is refused before anything is built. */
static size_t incoming_size(const h2o_req_t *req)
{
    size_t n = 0;

    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

/* The request line and headers for the upstream (SPEC §5); base NULL when they would pass
 * UPSTREAM_HEAD_MAX (the caller answers 431). */
static h2o_iovec_t request_head(struct gw_req *g, const h2o_url_t *up)
{
    h2o_req_t *req = g->req;
    const struct gh_decision *d = &g->decision;
    int has_connection = h2o_find_header(&req->headers, H2O_TOKEN_CONNECTION, -1) != -1;
    int pass_authorization = d->collection->forward_authorization && d->authorization_verified;
    struct head_writer hw = {req, NULL, 0, 0};
    h2o_iovec_t path, value, none = h2o_iovec_init(NULL, 0);
    char number[24];

    if ((hw.cap = incoming_size(req)) > UPSTREAM_HEAD_MAX)
        return none;
    path = upstream_path(g, up);
    /* sized once for the usual head: what came in, our headers and the claims */
    hw.cap += 1024 + path.len + (d->claims_b64 != NULL ? strlen(d->claims_b64) : 0);
    hw.buf = h2o_mem_alloc_pool(&req->pool, hw.cap);

    put(&hw, req->method.base, req->method.len);
    put(&hw, " ", 1);
    put(&hw, path.base, path.len);
    put(&hw, " HTTP/1.1\r\n", 11);
    put_header(&hw, H2O_STRLIT("host"), up->authority.base, up->authority.len);
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (!is_dropped(req, h, pass_authorization, has_connection))
            put_header(&hw, h->orig_name != NULL ? h->orig_name : h->name->base, h->name->len,
                       h->value.base, h->value.len);
    }
    /* HTTP/2 may split cookies into several fields; HTTP/1.1 wants one (RFC 9113 8.2.3) */
    if ((value = joined(req, H2O_TOKEN_COOKIE, "; ", none)).len != 0)
        put_header(&hw, H2O_STRLIT("cookie"), value.base, value.len);
    if (needs_content_length(req)) {
        int n = snprintf(number, sizeof number, "%zu", req->entity.len);
        put_header(&hw, H2O_STRLIT("content-length"), number, (size_t)n);
    }
    put_header_str(&hw, "x-gatehouse-client-id", d->profile->client_id);
    put_header_str(&hw, "x-gatehouse-profile-id", d->profile->id);
    if (d->profile->auth_type != GH_AUTH_TOKEN && d->claims_b64 != NULL)
        put_header_str(&hw, "x-gatehouse-claims", d->claims_b64);
    put_header_str(&hw, "x-request-id", g->request_id);
    /* the client is appended to what the proxies before us said */
    if ((value = joined(req, H2O_TOKEN_X_FORWARDED_FOR, ", ", client_address(req))).len != 0)
        put_header(&hw, H2O_STRLIT("x-forwarded-for"), value.base, value.len);
    put_header(&hw, H2O_STRLIT("x-forwarded-proto"), req->scheme->name.base, req->scheme->name.len);
    put_header(&hw, H2O_STRLIT("x-forwarded-host"), req->input.authority.base,
               req->input.authority.len);
    /* a proxy says it was there (RFC 9110 7.6.3), after the ones before it */
    value = joined(req, H2O_TOKEN_VIA, ", ", h2o_iovec_init(H2O_STRLIT("1.1 gatehouse")));
    put_header(&hw, H2O_STRLIT("via"), value.base, value.len);
    put(&hw, "\r\n", 2);
    return hw.len <= UPSTREAM_HEAD_MAX ? h2o_iovec_init(hw.buf, hw.len) : none;
}

/* ---- the exchange ---- */

struct exchange {
    struct gw_req *g;
    h2o_req_t *req;
    struct gw_worker *w;
    struct gw_pool *pool;
    const h2o_url_t *up;
    h2o_timeout_t *io_timeout;
    h2o_timeout_entry_t timer;
    struct gw_connect connect;
    struct gw_upstream_conn *conn;
    h2o_iovec_t out[2]; /* the request head and body */
    size_t n_out;
    int connecting, writing, reused, retried, answered_bytes;
    /* the answer */
    int head_done, no_body, chunked, until_close, keep_alive, body_done, ended;
    uint64_t body_left;
    struct gh_h1_chunked dechunk;
    h2o_generator_t generator;
    h2o_buffer_t *ready;   /* body bytes h2o has not been given yet */
    h2o_buffer_t *sending; /* given to h2o, until it calls proceed */
    int in_send, paused;
    const char *broken; /* a failure after the head, to be sent once h2o is ready */
};

static void on_read(h2o_socket_t *sock, const char *err);

static void timer_restart(struct exchange *x)
{
    if (h2o_timeout_is_linked(&x->timer))
        h2o_timeout_unlink(&x->timer);
    if (x->io_timeout != NULL)
        h2o_timeout_link(x->w->loop, x->io_timeout, &x->timer);
}

/* Lets go of the connection: back to the pool when the answer was read whole and nothing is being
 * written, else closed. */
static void drop_conn(struct exchange *x, int reusable)
{
    if (x->conn == NULL)
        return;
    x->conn->sock->data = NULL;
    gw_conn_release(x->conn, reusable && !x->writing && x->keep_alive && x->body_done);
    x->conn = NULL;
    x->writing = 0;
}

/* Stops everything upstream-side; the answer to the client is the caller's business. */
static void stop_upstream(struct exchange *x)
{
    if (h2o_timeout_is_linked(&x->timer))
        h2o_timeout_unlink(&x->timer);
    if (x->connecting) {
        gw_connect_cancel(&x->connect);
        x->connecting = 0;
    }
    drop_conn(x, 0);
}

/* No answer came: ours goes instead, 504 for the timeout, 502 otherwise. */
static void fail_before_head(struct exchange *x, const char *why, int timed_out)
{
    struct gw_req *g = x->g;
    struct gh_gateway_metrics *m = &x->w->server->metrics;

    stop_upstream(x);
    x->ended = 1;
    g->upstream_error = why;
    if (timed_out) {
        gw_count(&m->upstream_timeouts);
        gw_respond(g, 504, GH_GW_UPSTREAM_TIMEOUT, "The upstream service did not answer in time.");
    } else {
        gw_count(&m->upstream_errors);
        gw_respond(g, 502, GH_GW_BAD_GATEWAY,
                   "The upstream service could not be reached or broke off its answer.");
    }
}

static void send_ready(struct exchange *x);

/* The answer broke after its head went out: the client's connection is cut, so it cannot take
 * a partial body for a whole one. */
static void fail_body(struct exchange *x, const char *why)
{
    stop_upstream(x);
    if (x->g->upstream_error == NULL) {
        x->g->upstream_error = why;
        gw_count(&x->w->server->metrics.upstream_broken);
    }
    x->broken = why;
    send_ready(x);
}

/* Hands what is ready to h2o, when it is not busy with the last batch. */
static void send_ready(struct exchange *x)
{
    h2o_send_state_t state;
    h2o_iovec_t vec;

    if (x->in_send || x->ended)
        return;
    if (x->broken != NULL) {
        state = H2O_SEND_STATE_ERROR;
    } else if (x->body_done) {
        state = H2O_SEND_STATE_FINAL;
    } else if (x->ready->size == 0) {
        return;
    } else {
        state = H2O_SEND_STATE_IN_PROGRESS;
    }
    h2o_buffer_t *swap = x->sending;
    x->sending = x->ready;
    x->ready = swap;
    vec = h2o_iovec_init(x->sending->bytes, x->sending->size);
    x->in_send = 1;
    x->ended = state != H2O_SEND_STATE_IN_PROGRESS;
    h2o_send(x->req, &vec, vec.len != 0 ? 1 : 0,
             state); /* may end the request: touch nothing after */
}

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    struct exchange *x = H2O_STRUCT_FROM_MEMBER(struct exchange, generator, generator);

    (void)req;
    x->in_send = 0;
    h2o_buffer_consume(&x->sending, x->sending->size);
    if (x->paused && x->conn != NULL) {
        x->paused = 0;
        h2o_socket_read_start(x->conn->sock, on_read);
        timer_restart(x);
    }
    send_ready(x);
}

/* The client left while the answer was on its way. */
static void on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    struct exchange *x = H2O_STRUCT_FROM_MEMBER(struct exchange, generator, generator);

    (void)req;
    x->ended = 1;
    stop_upstream(x);
}

/* Runs when the request's pool goes: whatever is still going stops. */
static void on_dispose(void *p)
{
    struct exchange *x = p;

    stop_upstream(x);
    h2o_buffer_dispose(&x->ready);
    h2o_buffer_dispose(&x->sending);
}

/* ---- the answer's head ---- */

static int is_method(const h2o_req_t *req, const char *name, size_t len)
{
    return h2o_memis(req->method.base, req->method.len, name, len);
}

/* A Location into the upstream's base is turned back into the public path: the same scheme,
 * host and port, and a path under the base. Anything else passes unchanged. */
static h2o_iovec_t public_location(struct exchange *x, const char *value, size_t len)
{
    h2o_req_t *req = x->req;
    const struct gh_config_collection *col = x->g->decision.collection;
    h2o_url_t loc;
    h2o_iovec_t base = x->up->path;

    if (base.len > 0 && base.base[base.len - 1] == '/')
        base.len--;
    if (h2o_url_parse(value, len, &loc) != 0 || loc.scheme != x->up->scheme ||
        !h2o_lcstris(loc.host.base, loc.host.len, x->up->host.base, x->up->host.len) ||
        h2o_url_get_port(&loc) != h2o_url_get_port(x->up) || loc.path.len < base.len + 1 ||
        memcmp(loc.path.base, base.base, base.len) != 0 || loc.path.base[base.len] != '/')
        return h2o_strdup(&req->pool, value, len);
    h2o_iovec_t rest = h2o_iovec_init(loc.path.base + base.len, loc.path.len - base.len);
    return h2o_concat(&req->pool, req->scheme->name, h2o_iovec_init(H2O_STRLIT("://")),
                      req->input.authority, h2o_iovec_init(col->path, col->path_len), rest);
}

/* Takes the upstream's status and headers, and how its body is framed (RFC 9112 6.3). 0, or -1
 * with `why` for an answer we will not pass on. */
static int take_head(struct exchange *x, struct gh_h1_response *res, const char **why)
{
    h2o_req_t *req = x->req;
    const char *connection = NULL, *te = NULL;
    size_t connection_len = 0, te_len = 0, length = SIZE_MAX;

    for (size_t i = 0; i < res->n_headers; i++) {
        struct gh_h1_header *h = &res->headers[i];
        h2o_strtolower((char *)h->name, h->name_len);
        if (h2o_memis(h->name, h->name_len, H2O_STRLIT("connection"))) {
            connection = h->value; /* several are rare; the last one counts */
            connection_len = h->value_len;
        } else if (h2o_memis(h->name, h->name_len, H2O_STRLIT("transfer-encoding"))) {
            if (te != NULL) {
                *why = "invalid response (Transfer-Encoding repeated)";
                return -1;
            }
            te = h->value;
            te_len = h->value_len;
        } else if (h2o_memis(h->name, h->name_len, H2O_STRLIT("content-length"))) {
            size_t n = h2o_strtosize(h->value, h->value_len);
            if (n == SIZE_MAX || (length != SIZE_MAX && n != length)) {
                *why = "invalid response (Content-Length)";
                return -1;
            }
            length = n;
        }
    }
    if (te != NULL && length != SIZE_MAX) {
        *why = "invalid response (both Transfer-Encoding and Content-Length)"; /* smuggling */
        return -1;
    }
    if (te != NULL && !h2o_lcstris(te, te_len, H2O_STRLIT("chunked"))) {
        *why = "invalid response (a transfer coding other than chunked)";
        return -1;
    }
    x->keep_alive =
        res->minor_version == 1 &&
        (connection == NULL || !listed(connection, connection_len, H2O_STRLIT("close")));
    x->no_body = is_method(req, H2O_STRLIT("HEAD")) || res->status == 204 || res->status == 304;
    x->chunked = !x->no_body && te != NULL;
    x->until_close = !x->no_body && te == NULL && length == SIZE_MAX;
    x->body_left = length != SIZE_MAX ? length : 0;
    if (x->until_close)
        x->keep_alive = 0;

    req->res.status = res->status;
    req->res.reason = h2o_strdup(&req->pool, res->reason, res->reason_len).base;
    if (length != SIZE_MAX && res->status != 204)
        req->res.content_length = length;
    for (size_t i = 0; i < res->n_headers; i++) {
        struct gh_h1_header *h = &res->headers[i];
        const h2o_token_t *token = h2o_lookup_token(h->name, h->name_len);
        if (token != NULL && (token->proxy_should_drop_for_res ||
                              token == H2O_TOKEN_CONTENT_LENGTH || token == H2O_TOKEN_SERVER))
            continue; /* hop-by-hop, or h2o writes its own */
        if (connection != NULL && listed(connection, connection_len, h->name, h->name_len))
            continue;
        h2o_iovec_t value = token == H2O_TOKEN_LOCATION
                                ? public_location(x, h->value, h->value_len)
                                : h2o_strdup(&req->pool, h->value, h->value_len);
        if (token != NULL)
            h2o_add_header(&req->pool, &req->res.headers, token, NULL, value.base, value.len);
        else
            h2o_add_header_by_str(&req->pool, &req->res.headers,
                                  h2o_strdup(&req->pool, h->name, h->name_len).base, h->name_len, 0,
                                  NULL, value.base, value.len);
    }
    x->g->upstream_status = res->status;
    return 0;
}

/* Reads the head when it is complete; 1 when it was taken, 0 for more bytes, -1 after failing. */
static int read_head(struct exchange *x)
{
    h2o_buffer_t *in = x->conn->sock->input;
    struct gh_h1_response res;
    const char *why = NULL;
    long n;

    for (;;) {
        /* h2o reads all there is at once: a complete head can be longer than HEAD_MAX */
        n = gh_h1_parse_response(in->bytes, in->size < HEAD_MAX ? in->size : HEAD_MAX, &res);
        if (n == 0 && in->size < HEAD_MAX)
            return 0;
        if (n <= 0) {
            fail_before_head(x, n == 0 ? "invalid response (head too large)" : "invalid response",
                             0);
            return -1;
        }
        if (res.status == 101) {
            fail_before_head(x, "invalid response (protocol upgrade)", 0);
            return -1;
        }
        if (res.status >= 200)
            break;
        h2o_buffer_consume(&x->conn->sock->input, (size_t)n); /* 1xx: the real one follows */
        in = x->conn->sock->input;
    }
    if (take_head(x, &res, &why) != 0) {
        x->keep_alive = 0;
        fail_before_head(x, why, 0);
        return -1;
    }
    h2o_buffer_consume(&x->conn->sock->input, (size_t)n);
    x->head_done = 1;
    x->generator.proceed = on_proceed;
    x->generator.stop = on_stop;
    h2o_start_response(x->req, &x->generator);
    return 1;
}

/* ---- the answer's body ---- */

static void append(struct exchange *x, const char *bytes, size_t len)
{
    if (len == 0)
        return;
    h2o_iovec_t room = h2o_buffer_reserve(&x->ready, len);
    memcpy(room.base, bytes, len);
    x->ready->size += len;
}

/* Moves the body bytes that have arrived to `ready`; -1 after failing. */
static int read_body(struct exchange *x, const char *err)
{
    h2o_buffer_t **in = &x->conn->sock->input;

    if (x->no_body) {
        x->body_done = 1;
    } else if (x->chunked) {
        size_t len = (*in)->size, used;
        int rc = gh_h1_chunked_decode(&x->dechunk, (*in)->bytes, &len, &used);
        if (rc < 0) {
            fail_body(x, "invalid response (chunked body)");
            return -1;
        }
        append(x, (*in)->bytes, len);
        h2o_buffer_consume(in, used);
        x->body_done = rc == 1;
    } else if (x->until_close) {
        append(x, (*in)->bytes, (*in)->size);
        h2o_buffer_consume(in, (*in)->size);
        x->body_done = err != NULL && err == h2o_socket_error_closed; /* its end is the close */
    } else {
        size_t take = (*in)->size < x->body_left ? (*in)->size : (size_t)x->body_left;
        append(x, (*in)->bytes, take);
        h2o_buffer_consume(in, take);
        x->body_left -= take;
        x->body_done = x->body_left == 0;
    }
    if (x->body_done && (*in)->size != 0) {
        /* more than the answer came (a body after HEAD, 204 or 304, a second answer): read as
         * the next request's answer it would reach another client, so the connection goes */
        x->keep_alive = 0;
        gw_count(&x->w->server->metrics.upstream_extra_bytes);
    }
    if (!x->body_done && err != NULL) {
        fail_body(x, err == h2o_socket_error_closed ? "I/O error (the answer was cut short)"
                                                    : "I/O error");
        return -1;
    }
    return 0;
}

static void start_exchange(struct exchange *x);

/* A reused connection failed before one byte of answer: the upstream most likely closed it as
 * we took it. An idempotent request goes again, once, on a new connection. */
static int retry(struct exchange *x)
{
    h2o_req_t *req = x->req;

    if (!x->reused || x->retried || x->answered_bytes ||
        !(is_method(req, H2O_STRLIT("GET")) || is_method(req, H2O_STRLIT("HEAD")) ||
          is_method(req, H2O_STRLIT("OPTIONS")) || is_method(req, H2O_STRLIT("PUT")) ||
          is_method(req, H2O_STRLIT("DELETE")) || is_method(req, H2O_STRLIT("TRACE"))))
        return 0;
    x->retried = 1;
    drop_conn(x, 0);
    start_exchange(x);
    return 1;
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    struct exchange *x = sock->data;

    if (sock->input->size != 0)
        x->answered_bytes = 1;
    if (!x->head_done) {
        int rc = read_head(x);
        if (rc < 0)
            return;
        if (rc == 0) {
            if (err != NULL && !retry(x))
                fail_before_head(x,
                                 err == h2o_socket_error_closed
                                     ? "connection closed before the answer"
                                     : "I/O error",
                                 0);
            else if (err == NULL)
                timer_restart(x);
            return;
        }
    }
    if (read_body(x, err) != 0)
        return;
    if (x->body_done) {
        if (h2o_timeout_is_linked(&x->timer))
            h2o_timeout_unlink(&x->timer);
        drop_conn(x, 1);
    } else if (x->ready->size >= BODY_AHEAD) {
        h2o_socket_read_stop(sock); /* the client is slower: wait for it (on_proceed) */
        x->paused = 1;
        if (h2o_timeout_is_linked(&x->timer))
            h2o_timeout_unlink(&x->timer);
    } else {
        timer_restart(x);
    }
    send_ready(x);
}

static void on_timeout(h2o_timeout_entry_t *entry)
{
    struct exchange *x = H2O_STRUCT_FROM_MEMBER(struct exchange, timer, entry);

    if (x->head_done)
        fail_body(x, "I/O timeout");
    else
        fail_before_head(x, "I/O timeout", 1);
}

static void on_written(h2o_socket_t *sock, const char *err)
{
    struct exchange *x = sock->data;

    x->writing = 0;
    if (err != NULL && !x->head_done && !retry(x))
        fail_before_head(x, "I/O error (sending the request)", 0);
}

static void send_request(struct exchange *x)
{
    h2o_socket_t *sock = x->conn->sock;

    sock->data = x;
    h2o_socket_read_start(sock, on_read);
    timer_restart(x);
    x->writing = 1;
    h2o_socket_write(sock, x->out, x->n_out, on_written);
}

/* The TLS handshake failed: the answer says why (h2o's reason is OpenSSL's verification result,
 * a name mismatch or a protocol failure), since an operator's first question is "which
 * certificate?" and the fix (--upstream-ca-file, upstream_ca) depends on it. */
static void fail_tls(struct exchange *x, const char *why)
{
    char message[200];

    if (strcmp(why, "ssl handshake failure") == 0)
        snprintf(message, sizeof message,
                 "The TLS handshake with the upstream service failed (no common protocol or "
                 "cipher, or the upstream closed it).");
    else
        snprintf(message, sizeof message,
                 "The upstream service's TLS certificate could not be verified: %s.", why);
    stop_upstream(x);
    x->ended = 1;
    x->g->upstream_error = why;
    gw_count(&x->w->server->metrics.upstream_tls); /* a certificate to fix, not a service down */
    gw_respond(x->g, 502, GH_GW_BAD_GATEWAY, message);
}

static void on_connected(struct gw_connect *c, struct gw_upstream_conn *conn, const char *err)
{
    struct exchange *x = c->data;

    x->connecting = 0;
    if (err != NULL && c->tls_failed) {
        fail_tls(x, err);
        return;
    }
    if (err != NULL) {
        fail_before_head(x, err, 0);
        return;
    }
    x->conn = conn;
    send_request(x);
}

static void start_exchange(struct exchange *x)
{
    x->answered_bytes = 0;
    x->reused = !x->retried && (x->conn = gw_pool_take(x->pool)) != NULL;
    if (x->reused) {
        send_request(x);
        return;
    }
    x->connecting = 1;
    timer_restart(x); /* the endpoint's timeout covers connecting too */
    gw_connect_start(&x->connect, x->w, x->pool, on_connected, x);
}

static int is_visible(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/*
 * 1 when the request can be written as HTTP/1.1 as it is. h2o checks what HTTP/1.1 clients send,
 * but h2o 2.2 does not check HTTP/2's :method, :path and :authority, and lets a header value with
 * a CR, LF or NUL through as a "soft" error: written into our request head, they would split it
 * into two requests (smuggling). So the request line's parts must be visible ASCII, the method a
 * token, and no value may hold a line break or NUL.
 */
static int carriable(const h2o_req_t *req)
{
    if (req->method.len == 0 || !is_visible(req->method.base, req->method.len) ||
        !is_visible(req->input.path.base, req->input.path.len) ||
        !is_visible(req->input.authority.base, req->input.authority.len))
        return 0;
    for (size_t i = 0; i < req->method.len; i++)
        if (strchr("()<>@,;:\\\"/[]?={}", req->method.base[i]) != NULL)
            return 0;
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_iovec_t *v = &req->headers.entries[i].value;
        if (memchr(v->base, '\r', v->len) != NULL || memchr(v->base, '\n', v->len) != NULL ||
            memchr(v->base, '\0', v->len) != NULL)
            return 0;
    }
    return 1;
}

void gw_proxy_start(struct gw_req *g)
{
    h2o_req_t *req = g->req;
    struct gw_worker *w = g->worker;
    const struct gh_config_collection *col = g->decision.collection;
    h2o_url_t *up = h2o_mem_alloc_pool(&req->pool, sizeof *up);
    h2o_iovec_t head;
    struct exchange *x;

    if (!carriable(req)) {
        gw_respond(g, 400, GH_GW_BAD_REQUEST,
                   "The request's method, path, host or a header holds characters HTTP/1.1 "
                   "cannot carry.");
        return;
    }
    if (h2o_url_parse(col->upstream, SIZE_MAX, up) != 0) {
        gw_respond(g, 502, GH_GW_BAD_GATEWAY, "The API's upstream URL is not valid.");
        return;
    }
    if ((head = request_head(g, up)).base == NULL) {
        gw_respond(g, 431, GH_GW_HEADERS_TOO_LARGE,
                   "The request's header fields are too large to forward (at most 64 KiB in all, "
                   "repeated fields joined).");
        return;
    }
    x = h2o_mem_alloc_shared(&req->pool, sizeof *x, on_dispose);
    memset(x, 0, sizeof *x);
    x->g = g;
    x->req = req;
    x->w = w;
    x->up = up;
    x->timer.cb = on_timeout;
    x->io_timeout = timeout_for(w, g->decision.endpoint->timeout_ms);
    h2o_buffer_init(&x->ready, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&x->sending, &h2o_socket_buffer_prototype);
    if ((x->pool = gw_pool_for(w, up, col->upstream_ca)) == NULL) {
        gw_respond(g, 502, GH_GW_BAD_GATEWAY,
                   "The gateway could not set up a connection pool for this upstream.");
        return;
    }
    x->out[0] = head;
    x->n_out = 1;
    if (req->entity.len != 0)
        x->out[x->n_out++] = req->entity;
    g->proxied = 1;
    start_exchange(x);
}
