// SPDX-License-Identifier: Apache-2.0
/*
 * The upstream side of an allowed request: one HTTP/1.1 exchange with the collection's upstream
 * over a keep-alive connection of upstream.c. The request head is written here (SPEC §5's header
 * rules: hop-by-hop and incoming X-Gatehouse-* headers go, the caller's identity comes in), then
 * the request body streams through as the client sends it (never buffered whole: the client is
 * paused while the upstream has BODY_MARK bytes unread), framed by its length or chunked when the
 * length is unknown. The answer's head is read with h1parse.h and handed to the front end, and
 * its body is relayed as it comes, reading no further ahead of a slow client than the front end's
 * output mark and the connection's bounded input.
 * Failures before the answer's head are our JSON 502/504; after it, the client's answer is cut,
 * as it is already partly sent. A pooled connection that fails before a single byte of answer is
 * most likely one the upstream closed while we reused it: an idempotent request without a body
 * is then tried once more on a new connection (RFC 9110 9.2.2).
 */
#include "gateway/server_internal.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "http/h1parse.h"

#define DEFAULT_MS 30000 /* an endpoint without timeout_ms */
#define BODY_MARK                                                                                  \
    (256 << 10) /* request body bytes the upstream has not taken before the client                 \
                   is paused */
/* The request head we write upstream, repeated fields joined: what common servers accept (nginx,
 * Tomcat, Node: 8 to 64 KiB), and a ceiling on what a few bytes of HPACK repetition can make us
 * build. Over it the caller gets 431. */
#define UPSTREAM_HEAD_MAX (64 << 10)
#define ANSWER_HEADERS    (100 + GW_DECORATIONS)

struct gw_exchange {
    struct gw_req *g;
    struct gh_http_request *req;
    struct gw_worker *w;
    struct gw_pool *pool;
    struct gw_url up;
    uint64_t timeout_ms;
    struct gh_timer timer;
    struct gw_connect connect;
    struct gw_upstream_conn *conn;
    char *head; /* the request head, kept for a retry */
    size_t head_len;
    int connecting, reused, retried, answered_bytes, ended;
    /* the request body */
    int has_body, body_chunked, body_started, body_sent, body_paused;
    /* the answer */
    int head_done, no_body, chunked, until_close, keep_alive, read_paused;
    uint64_t body_left;
    struct gh_h1_chunked dechunk;
};

static int is_method(const struct gh_http_request *req, const char *name)
{
    size_t len = strlen(name);

    return req->method_len == len && memcmp(req->method, name, len) == 0;
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
        if (p > start && gw_lcequal(start, (size_t)(p - start), name, name_len))
            return 1;
    }
    return 0;
}

/* Headers named by the request's Connection headers are hop-by-hop too (RFC 9110 7.6.1). */
static int named_by_connection(const struct gh_http_request *req, const char *name, size_t len)
{
    size_t at = 0;
    const struct gh_http_header *h;

    while ((h = gh_http_header_find(req, "connection", 10, &at)) != NULL)
        if (listed(h->value, h->value_len, name, len))
            return 1;
    return 0;
}

static int is_dropped(const struct gw_req *g, const struct gh_http_header *h,
                      int pass_authorization, int has_connection)
{
    const struct gh_http_request *req = g->req;
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

    /* CGI, WSGI and Rack read X_Gatehouse_Claims as X-Gatehouse-Claims: a name with `_` could
     * forge our identity headers, so none goes on (as nginx does by default) */
    if (memchr(h->name, '_', h->name_len) != NULL)
        return 1;
    if (h->name_len >= 12 && gw_lcequal(h->name, 12, "x-gatehouse-", 12))
        return 1;
    if (!pass_authorization && gw_lcequal(h->name, h->name_len, "authorization", 13))
        return 1;
    /* who the client is, in the caller's own words: believed from a trusted proxy only */
    if (!g->peer_trusted && (gw_lcequal(h->name, h->name_len, "forwarded", 9) ||
                             gw_lcequal(h->name, h->name_len, "x-real-ip", 9)))
        return 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (gw_lcequal(h->name, h->name_len, names[i].name, names[i].len))
            return 1;
    return has_connection && named_by_connection(req, h->name, h->name_len);
}

/* A head under construction in malloc'd memory that never grows past UPSTREAM_HEAD_MAX: past it,
 * `full` is set and the head is refused. */
struct head_writer {
    char *buf;
    size_t len, cap;
    int full;
};

static void put(struct head_writer *hw, const char *s, size_t n)
{
    if (hw->full || hw->len + n > UPSTREAM_HEAD_MAX) {
        hw->full = 1;
        return;
    }
    if (hw->len + n > hw->cap) {
        size_t cap = hw->cap * 2 > hw->len + n ? hw->cap * 2 : hw->len + n + 1024;
        char *grown = realloc(hw->buf, cap);
        if (grown == NULL) {
            hw->full = 1;
            return;
        }
        hw->buf = grown;
        hw->cap = cap;
    }
    memcpy(hw->buf + hw->len, s, n);
    hw->len += n;
}

static void put_str(struct head_writer *hw, const char *s)
{
    put(hw, s, strlen(s));
}

static void put_header(struct head_writer *hw, const char *name, size_t name_len, const char *value,
                       size_t value_len)
{
    put(hw, name, name_len);
    put(hw, ": ", 2);
    put(hw, value, value_len);
    put(hw, "\r\n", 2);
}

/* One field of the values of every header called `lc_name`, joined by `sep`, then `last` when
 * not NULL; nothing when there is none. Written once, in order: linear in the fields, however
 * many repeat, and bounded by the head's limit. */
static void put_joined(struct head_writer *hw, const struct gh_http_request *req,
                       const char *lc_name, const char *sep, const char *last, size_t last_len)
{
    size_t name_len = strlen(lc_name), at = 0, n = 0;
    const struct gh_http_header *h;

    while ((h = gh_http_header_find(req, lc_name, name_len, &at)) != NULL) {
        if (n++ == 0) {
            put(hw, lc_name, name_len);
            put(hw, ": ", 2);
        } else {
            put_str(hw, sep);
        }
        put(hw, h->value, h->value_len);
    }
    if (last != NULL) {
        if (n++ == 0) {
            put(hw, lc_name, name_len);
            put(hw, ": ", 2);
        } else {
            put_str(hw, sep);
        }
        put(hw, last, last_len);
    }
    if (n != 0)
        put(hw, "\r\n", 2);
}

/* <upstream base path><rest of the request path><?query as received>, with no "//" where the
 * base ends and the rest begins. */
static void put_upstream_path(struct head_writer *hw, const struct gw_req *g,
                              const struct gw_url *up)
{
    const struct gh_http_request *req = g->req;
    size_t base_len = up->path_len, rest_len = g->decision.rest_len;

    if (rest_len > 0 && base_len > 0 && up->path[base_len - 1] == '/')
        base_len--;
    if (base_len == 0 && rest_len == 0)
        put(hw, "/", 1);
    put(hw, up->path, base_len);
    put(hw, g->decision.rest, rest_len);
    if (req->query_at != SIZE_MAX)
        put(hw, req->path + req->query_at, req->path_len - req->query_at);
}

/* How the body is framed upstream: its length when known (and always for the methods that are
 * expected to carry one, RFC 9110 8.6), chunked when it is not known (a chunked upload, an HTTP/2
 * stream without content-length). */
static void put_framing(struct head_writer *hw, struct gw_exchange *x)
{
    const struct gh_http_request *req = x->req;
    char number[24];

    if (req->content_length < 0) {
        x->body_chunked = 1;
        put_str(hw, "transfer-encoding: chunked\r\n");
    } else if (req->content_length > 0 || is_method(req, "POST") || is_method(req, "PUT") ||
               is_method(req, "PATCH")) {
        int n = snprintf(number, sizeof number, "%lld", (long long)req->content_length);
        put_header(hw, "content-length", 14, number, (size_t)n);
    }
}

/* The request line and headers for the upstream (SPEC §5) into x->head; -1 when they would pass
 * UPSTREAM_HEAD_MAX (the caller answers 431). */
static int request_head(struct gw_exchange *x)
{
    const struct gw_req *g = x->g;
    const struct gh_http_request *req = x->req;
    const struct gh_decision *d = &g->decision;
    size_t at = 0;
    int has_connection = gh_http_header_find(req, "connection", 10, &at) != NULL;
    int pass_authorization = d->collection->forward_authorization && d->authorization_verified;
    struct head_writer hw = {NULL, 0, 0, 0};
    char address[NI_MAXHOST];
    size_t address_len;

    put(&hw, req->method, req->method_len);
    put(&hw, " ", 1);
    put_upstream_path(&hw, g, &x->up);
    put(&hw, " HTTP/1.1\r\n", 11);
    put_header(&hw, "host", 4, x->up.authority, x->up.authority_len);
    for (size_t i = 0; i < req->n_headers && !hw.full; i++) {
        const struct gh_http_header *h = &req->headers[i];
        if (!is_dropped(g, h, pass_authorization, has_connection))
            put_header(&hw, h->name, h->name_len, h->value, h->value_len);
    }
    /* HTTP/2 may split cookies into several fields; HTTP/1.1 wants one (RFC 9113 8.2.3) */
    put_joined(&hw, req, "cookie", "; ", NULL, 0);
    put_framing(&hw, x);
    put_header(&hw, "x-gatehouse-client-id", 21, d->profile->client_id,
               strlen(d->profile->client_id));
    put_header(&hw, "x-gatehouse-profile-id", 22, d->profile->id, strlen(d->profile->id));
    if (d->profile->auth_type != GH_AUTH_TOKEN && d->claims_b64 != NULL)
        put_header(&hw, "x-gatehouse-claims", 18, d->claims_b64, strlen(d->claims_b64));
    put_header(&hw, "x-request-id", 12, g->request_id, strlen(g->request_id));
    /* the peer is appended to what the proxies before us said, when they are trusted ones; what
     * any other caller says is replaced */
    address_len = gw_address_text(&req->peer, req->peer_len, address, sizeof address);
    if (g->peer_trusted)
        put_joined(&hw, req, "x-forwarded-for", ", ", address_len != 0 ? address : NULL,
                   address_len);
    else if (address_len != 0)
        put_header(&hw, "x-forwarded-for", 15, address, address_len);
    put_str(&hw, req->tls ? "x-forwarded-proto: https\r\n" : "x-forwarded-proto: http\r\n");
    put_header(&hw, "x-forwarded-host", 16, req->authority, req->authority_len);
    /* a proxy says it was there (RFC 9110 7.6.3), after the ones before it */
    put_joined(&hw, req, "via", ", ", "1.1 gatehouse", 13);
    put(&hw, "\r\n", 2);
    if (hw.full) {
        free(hw.buf);
        return -1;
    }
    x->head = hw.buf;
    x->head_len = hw.len;
    return 0;
}

/* ---- the exchange's failures ---- */

static void on_up_read(struct gh_sock *s, int status);
static void start_exchange(struct gw_exchange *x);

static void timer_restart(struct gw_exchange *x)
{
    gh_timer_arm(x->w->loop, &x->timer, x->timeout_ms);
}

/* Lets go of the connection: back to the pool when the answer was read whole, the request went
 * whole and nothing is still being written, else closed. */
static void drop_conn(struct gw_exchange *x, int reusable)
{
    if (x->conn == NULL)
        return;
    gw_conn_release(x->conn, reusable && x->keep_alive && x->body_sent);
    x->conn = NULL;
}

/* Stops everything upstream-side; the answer to the client is the caller's business. */
static void stop_upstream(struct gw_exchange *x)
{
    gh_timer_disarm(x->w->loop, &x->timer);
    if (x->connecting) {
        gw_connect_cancel(&x->connect);
        x->connecting = 0;
    }
    drop_conn(x, 0);
}

/* No answer came: ours goes instead, 504 for the timeout, 502 otherwise. */
static void fail_before_head(struct gw_exchange *x, const char *why, int timed_out)
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

/* The answer broke after its head went out: the client's answer is cut, so it cannot take a
 * partial body for a whole one. */
static void fail_body(struct gw_exchange *x, const char *why)
{
    stop_upstream(x);
    x->ended = 1;
    if (x->g->upstream_error == NULL) {
        x->g->upstream_error = why;
        gw_count(&x->w->server->metrics.upstream_broken);
    }
    gh_http_respond_abort(x->req);
}

/* The TLS handshake failed: the answer says why (OpenSSL's verification result, or a protocol
 * failure), since an operator's first question is "which certificate?" and the fix
 * (--upstream-ca-file, upstream_ca) depends on it. */
static void fail_tls(struct gw_exchange *x, const char *why)
{
    char message[240];

    if (!x->connect.verify_failed)
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

static void on_timeout(struct gh_timer *t)
{
    struct gw_exchange *x = t->data;

    if (x->head_done)
        fail_body(x, "I/O timeout");
    else
        fail_before_head(x, "I/O timeout", 1);
}

/* A reused connection failed before one byte of answer: the upstream most likely closed it as
 * we took it. An idempotent request without a body goes again, once, on a new connection (a body
 * streamed once cannot be sent twice). */
static int retry(struct gw_exchange *x)
{
    const struct gh_http_request *req = x->req;

    if (!x->reused || x->retried || x->answered_bytes || x->has_body ||
        !(is_method(req, "GET") || is_method(req, "HEAD") || is_method(req, "OPTIONS") ||
          is_method(req, "PUT") || is_method(req, "DELETE") || is_method(req, "TRACE")))
        return 0;
    x->retried = 1;
    drop_conn(x, 0);
    start_exchange(x);
    return 1;
}

/* ---- the answer's head ---- */

/* A Location into the upstream's base is turned back into the public path: the same scheme,
 * host and port, and a path under the base. Anything else passes unchanged. */
static void public_location(struct gw_exchange *x, const char *value, size_t len,
                            struct gh_http_header *out)
{
    const struct gh_config_collection *col = x->g->decision.collection;
    const struct gw_url *up = &x->up;
    size_t base_len = up->path_len, col_len = strlen(col->path);
    struct gw_url loc;
    char *buf;

    if (base_len > 0 && up->path[base_len - 1] == '/')
        base_len--;
    if (gw_url_parse(value, len, &loc) != 0 || loc.https != up->https ||
        !gw_lcequal(loc.host, loc.host_len, up->host, up->host_len) || loc.port != up->port ||
        loc.path_len < base_len + 1 || memcmp(loc.path, up->path, base_len) != 0 ||
        loc.path[base_len] != '/')
        return;
    const char *rest = loc.path + base_len, *scheme = x->req->tls ? "https://" : "http://";
    size_t rest_len = loc.path_len - base_len, n;
    size_t cap = strlen(scheme) + x->req->authority_len + col_len + rest_len;
    if ((buf = gh_http_request_alloc(x->req, cap)) == NULL)
        return;
    n = strlen(scheme);
    memcpy(buf, scheme, n);
    memcpy(buf + n, x->req->authority, x->req->authority_len);
    n += x->req->authority_len;
    memcpy(buf + n, col->path, col_len);
    n += col_len;
    memcpy(buf + n, rest, rest_len);
    out->value = buf;
    out->value_len = n + rest_len;
}

/* A Content-Length value: its number, or -1 when it is not 1*DIGIT within 63 bits. */
static int64_t parse_length(const char *v, size_t len)
{
    int64_t n = 0;

    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/* How the answer's body is framed (RFC 9112 6.3). 0, or -1 with `why` for an answer we will not
 * pass on; *length the announced length or -1. */
static int take_framing(struct gw_exchange *x, struct gh_h1_response *res, int64_t *length,
                        const char **connection, size_t *connection_len, const char **why)
{
    const char *te = NULL;
    size_t te_len = 0;

    *length = -1;
    for (size_t i = 0; i < res->n_headers; i++) {
        struct gh_h1_header *h = &res->headers[i];
        gh_h1_lower((char *)h->name, h->name_len);
        if (h->name_len == 10 && memcmp(h->name, "connection", 10) == 0) {
            *connection = h->value; /* several are rare; the last one counts */
            *connection_len = h->value_len;
        } else if (h->name_len == 17 && memcmp(h->name, "transfer-encoding", 17) == 0) {
            if (te != NULL) {
                *why = "invalid response (Transfer-Encoding repeated)";
                return -1;
            }
            te = h->value;
            te_len = h->value_len;
        } else if (h->name_len == 14 && memcmp(h->name, "content-length", 14) == 0) {
            int64_t n = parse_length(h->value, h->value_len);
            if (n < 0 || (*length >= 0 && n != *length)) {
                *why = "invalid response (Content-Length)";
                return -1;
            }
            *length = n;
        }
    }
    if (te != NULL && *length >= 0) {
        *why = "invalid response (both Transfer-Encoding and Content-Length)"; /* smuggling */
        return -1;
    }
    if (te != NULL && !gw_lcequal(te, te_len, "chunked", 7)) {
        *why = "invalid response (a transfer coding other than chunked)";
        return -1;
    }
    x->keep_alive = res->minor_version == 1 &&
                    (*connection == NULL || !listed(*connection, *connection_len, "close", 5));
    x->no_body = is_method(x->req, "HEAD") || res->status == 204 || res->status == 304;
    x->chunked = !x->no_body && te != NULL;
    x->until_close = !x->no_body && te == NULL && *length < 0;
    x->body_left = *length >= 0 ? (uint64_t)*length : 0;
    if (x->until_close)
        x->keep_alive = 0;
    return 0;
}

/* Starts the client's answer with the upstream's status and headers (hop-by-hop ones dropped,
 * Location made public, ours added). 0, or -1 with `why`. */
static int take_head(struct gw_exchange *x, struct gh_h1_response *res, const char **why)
{
    struct gh_http_header headers[ANSWER_HEADERS];
    char decorations[GW_DECORATION_BYTES];
    const char *connection = NULL;
    size_t connection_len = 0, n = 0;
    int64_t length;

    if (take_framing(x, res, &length, &connection, &connection_len, why) != 0)
        return -1;
    for (size_t i = 0; i < res->n_headers; i++) {
        const struct gh_h1_header *h = &res->headers[i];
        if (gw_decorated_name(x->g, h->name, h->name_len) ||
            (h->name_len == 6 && memcmp(h->name, "server", 6) == 0) ||
            (connection != NULL && listed(connection, connection_len, h->name, h->name_len)))
            continue; /* ours, or hop-by-hop (the front end drops its own names itself) */
        headers[n] = (struct gh_http_header){h->name, h->value, h->name_len, h->value_len};
        if (h->name_len == 8 && memcmp(h->name, "location", 8) == 0)
            public_location(x, h->value, h->value_len, &headers[n]);
        n++;
    }
    n += gw_decorate(x->g, headers + n, decorations);
    x->g->upstream_status = res->status;
    x->g->status = res->status;
    /* a body that never comes is announced by its length only for HEAD; 204 and 304 have none */
    if (x->no_body && !is_method(x->req, "HEAD"))
        length = -1;
    if (gh_http_respond_start(x->req, res->status, headers, n, length) != GH_OK) {
        *why = "the answer could not be started";
        return -1;
    }
    return 0;
}

/* Reads the head when it is complete; 1 when it was taken, 0 for more bytes, -1 after failing. */
static int read_head(struct gw_exchange *x)
{
    struct gh_sock *s = &x->conn->sock;
    struct gh_h1_response res;
    const char *why = NULL;
    long n;

    for (;;) {
        n = gh_h1_parse_response(s->in, s->in_len, &res);
        if (n == 0 && s->in_len < s->in_max)
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
        gh_sock_consume(s, (size_t)n); /* 1xx: the real one follows */
    }
    if (take_head(x, &res, &why) != 0) {
        x->keep_alive = 0;
        x->g->status = 0;
        fail_before_head(x, why, 0);
        return -1;
    }
    gh_sock_consume(s, (size_t)n);
    x->head_done = 1;
    return 1;
}

/* ---- the answer's body ---- */

/* The body bytes at the start of the input: where they are, how many input bytes they use, and
 * whether the body ended. -1 after failing. */
static int next_body(struct gw_exchange *x, int status, size_t *len, size_t *used, int *done)
{
    struct gh_sock *s = &x->conn->sock;

    *len = *used = 0;
    *done = 0;
    if (x->no_body) {
        *done = 1;
    } else if (x->chunked) {
        size_t n = s->in_len;
        int rc = gh_h1_chunked_decode(&x->dechunk, s->in, &n, used);
        if (rc < 0) {
            fail_body(x, "invalid response (chunked body)");
            return -1;
        }
        *len = n;
        *done = rc == 1;
    } else if (x->until_close) {
        *len = *used = s->in_len;
        *done = status == GH_SOCK_EOF; /* its end is the close */
    } else {
        *len = *used = s->in_len < x->body_left ? s->in_len : (size_t)x->body_left;
        *done = x->body_left == *len;
    }
    if (*done && s->in_len > *used) {
        /* more than the answer came (a body after HEAD, 204 or 304, a second answer): read as
         * the next request's answer it would reach another client, so the connection goes */
        x->keep_alive = 0;
        gw_count(&x->w->server->metrics.upstream_extra_bytes);
    }
    if (!*done && status != GH_SOCK_OK && *len == 0) {
        fail_body(x, status == GH_SOCK_EOF ? "I/O error (the answer was cut short)" : "I/O error");
        return -1;
    }
    return 0;
}

/* Hands the body bytes that arrived to the client until the input is empty, the client is
 * behind (paused until on_writable) or the answer is whole. */
static void relay(struct gw_exchange *x, int status)
{
    size_t len, used;
    int done, rc;

    do {
        if (next_body(x, status, &len, &used, &done) != 0)
            return;
        if (len == 0 && !done)
            break;
        if (!x->chunked && !x->until_close)
            x->body_left -= len;
        rc = gh_http_respond_write(x->req, x->conn->sock.in, len, done);
        x->g->body_bytes += len;
        gh_sock_consume(&x->conn->sock, used);
        if (rc < 0) { /* the client left: on_done follows */
            stop_upstream(x);
            x->ended = 1;
            return;
        }
        if (done) {
            gh_timer_disarm(x->w->loop, &x->timer);
            x->ended = 1;
            drop_conn(x, gh_sock_pending(&x->conn->sock) == 0);
            return;
        }
        if (rc == 0) { /* the client is slower: wait for it */
            x->read_paused = 1;
            gh_sock_read_stop(&x->conn->sock);
            gh_timer_disarm(x->w->loop, &x->timer);
            return;
        }
    } while (x->conn->sock.in_len != 0 && x->chunked);
    if (status != GH_SOCK_OK) {
        fail_body(x, status == GH_SOCK_EOF ? "I/O error (the answer was cut short)" : "I/O error");
        return;
    }
    timer_restart(x);
}

static void on_up_read(struct gh_sock *s, int status)
{
    struct gw_upstream_conn *conn = (struct gw_upstream_conn *)s;
    struct gw_exchange *x = conn->x;

    if (x == NULL)
        return;
    if (s->in_len != 0)
        x->answered_bytes = 1;
    if (!x->head_done) {
        int rc = read_head(x);
        if (rc < 0)
            return;
        if (rc == 0) {
            if (status != GH_SOCK_OK && !retry(x))
                fail_before_head(
                    x, status == GH_SOCK_EOF ? "connection closed before the answer" : "I/O error",
                    0);
            else if (status == GH_SOCK_OK)
                timer_restart(x);
            return;
        }
    }
    relay(x, status);
}

/* ---- the request body ---- */

/* While the upstream has taken all of the request there is so far and waits for the rest of the
 * client's body, its silence is not its fault: the front end's body timeout watches the client
 * then. Any other time, the endpoint's timeout runs from now. */
static void upstream_clock(struct gw_exchange *x)
{
    if (!x->body_sent && !x->head_done && x->conn != NULL && gh_sock_pending(&x->conn->sock) == 0)
        gh_timer_disarm(x->w->loop, &x->timer);
    else
        timer_restart(x);
}

static void on_up_written(struct gh_sock *s, int status)
{
    struct gw_upstream_conn *conn = (struct gw_upstream_conn *)s;
    struct gw_exchange *x = conn->x;

    if (x == NULL)
        return;
    if (status != GH_SOCK_OK) {
        x->keep_alive = 0;
        if (!x->head_done && !retry(x))
            fail_before_head(x, "I/O error (sending the request)", 0);
        return; /* after the head, the reading side tells how the answer ends */
    }
    if (x->body_paused) {
        x->body_paused = 0;
        gh_http_body_resume(x->req);
    }
    upstream_clock(x);
}

/* Writes request bytes upstream; GH_OK or the sock's error (the reading side reports it). */
static int write_up(struct gw_exchange *x, const struct iovec *iov, int n)
{
    return gh_sock_write(&x->conn->sock, iov, n, on_up_written);
}

/* A body bytes' piece, in a chunk of its own when the length is unknown. */
static void send_body(struct gw_exchange *x, const char *data, size_t len, int last)
{
    char size[24];
    struct iovec iov[4];
    int n = 0;

    if (len != 0 && x->body_chunked) {
        int k = snprintf(size, sizeof size, "%zx\r\n", len);
        iov[n++] = (struct iovec){size, (size_t)k};
    }
    if (len != 0)
        iov[n++] = (struct iovec){(void *)data, len};
    if (len != 0 && x->body_chunked)
        iov[n++] = (struct iovec){"\r\n", 2};
    if (last && x->body_chunked)
        iov[n++] = (struct iovec){"0\r\n\r\n", 5};
    if (n != 0)
        write_up(x, iov, n);
}

/* The client's body failed: too large or too slow is still answered when no answer started,
 * anything else ends the request. */
static void body_failed(struct gw_exchange *x, int state)
{
    struct gw_req *g = x->g;
    char message[96];

    stop_upstream(x);
    x->ended = 1;
    if (g->status != 0 || state == GH_HTTP_BODY_BROKEN) {
        gh_http_respond_abort(x->req);
    } else if (state == GH_HTTP_BODY_TOO_LARGE) {
        snprintf(message, sizeof message, "The request body is larger than %zu bytes.",
                 x->w->server->o.max_body);
        gw_respond(g, 413, GH_GW_PAYLOAD_TOO_LARGE, message);
    } else {
        gw_respond(g, 408, GH_GW_REQUEST_TIMEOUT,
                   "The request body stopped arriving before it was complete.");
    }
}

void gw_proxy_body(struct gw_req *g, const char *data, size_t len, int state)
{
    struct gw_exchange *x = g->x;

    if (x == NULL || x->ended)
        return;
    if (state < 0) {
        body_failed(x, state);
        return;
    }
    if (x->conn == NULL || x->body_sent)
        return; /* the upstream is gone or done: its answer tells the client */
    send_body(x, data, len, state == 1);
    x->body_sent = state == 1;
    upstream_clock(x);
    if (!x->body_sent && !x->body_paused && gh_sock_pending(&x->conn->sock) > BODY_MARK) {
        x->body_paused = 1; /* the upstream reads slower than the client sends */
        gh_http_body_pause(x->req);
    }
}

void gw_proxy_writable(struct gw_req *g)
{
    struct gw_exchange *x = g->x;

    if (x == NULL || !x->read_paused || x->conn == NULL)
        return;
    x->read_paused = 0;
    gh_sock_read_start(&x->conn->sock, on_up_read); /* what is buffered is reported at once */
    timer_restart(x);
}

/* ---- the exchange ---- */

static void send_request(struct gw_exchange *x)
{
    struct iovec iov = {x->head, x->head_len};

    x->conn->x = x;
    gh_sock_read_start(&x->conn->sock, on_up_read);
    timer_restart(x);
    if (write_up(x, &iov, 1) != GH_OK) {
        x->keep_alive = 0;
        if (!retry(x))
            fail_before_head(x, "I/O error (sending the request)", 0);
        return;
    }
    if (x->has_body && !x->body_started) {
        x->body_started = 1;
        gh_http_body_start(x->req); /* 100 Continue goes now, if the client waits for it */
    }
}

static void on_connected(struct gw_connect *c, struct gw_upstream_conn *conn, const char *err)
{
    struct gw_exchange *x = c->data;

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

static void start_exchange(struct gw_exchange *x)
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
 * 1 when the request can be written as HTTP/1.1 as it is: the request line's parts visible
 * ASCII, the method a token, no value with a line break or NUL. The front end checks what HTTP/1
 * clients send; this holds for HTTP/2 too, whatever its decoder lets through, since one CR LF in
 * our request head would split it into two requests (smuggling).
 */
static int carriable(const struct gh_http_request *req)
{
    if (req->method_len == 0 || !is_visible(req->method, req->method_len) ||
        !is_visible(req->path, req->path_len) || !is_visible(req->authority, req->authority_len))
        return 0;
    for (size_t i = 0; i < req->method_len; i++)
        if (strchr("()<>@,;:\\\"/[]?={}", req->method[i]) != NULL)
            return 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct gh_http_header *h = &req->headers[i];
        if (memchr(h->value, '\r', h->value_len) != NULL ||
            memchr(h->value, '\n', h->value_len) != NULL ||
            memchr(h->value, '\0', h->value_len) != NULL ||
            memchr(h->name, ':', h->name_len) != NULL || !is_visible(h->name, h->name_len))
            return 0;
    }
    return 1;
}

static struct gw_exchange *exchange_new(struct gw_req *g)
{
    struct gw_exchange *x = calloc(1, sizeof *x);
    int timeout_ms = g->decision.endpoint->timeout_ms;

    if (x == NULL)
        return NULL;
    x->g = g;
    x->req = g->req;
    x->w = g->worker;
    x->timeout_ms = timeout_ms > 0 ? (uint64_t)timeout_ms : DEFAULT_MS;
    x->timer.cb = on_timeout;
    x->timer.data = x;
    x->has_body = g->req->content_length != 0;
    x->body_sent = !x->has_body;
    return x;
}

void gw_proxy_start(struct gw_req *g)
{
    const struct gh_config_collection *col = g->decision.collection;
    struct gw_exchange *x;

    if (!carriable(g->req)) {
        gw_respond(g, 400, GH_GW_BAD_REQUEST,
                   "The request's method, path, host or a header holds characters HTTP/1.1 "
                   "cannot carry.");
        return;
    }
    if ((x = exchange_new(g)) == NULL) {
        gw_respond(g, 502, GH_GW_BAD_GATEWAY, "The gateway is out of memory for this request.");
        return;
    }
    g->x = x;
    if (gw_url_parse(col->upstream, strlen(col->upstream), &x->up) != 0) {
        gw_respond(g, 502, GH_GW_BAD_GATEWAY, "The API's upstream URL is not valid.");
        return;
    }
    if (request_head(x) != 0) {
        gw_respond(g, 431, GH_GW_HEADERS_TOO_LARGE,
                   "The request's header fields are too large to forward (at most 64 KiB in all, "
                   "repeated fields joined).");
        return;
    }
    if ((x->pool = gw_pool_for(g->worker, &x->up, col->upstream_ca)) == NULL) {
        gw_respond(g, 502, GH_GW_BAD_GATEWAY,
                   "The gateway could not set up a connection pool for this upstream.");
        return;
    }
    g->proxied = 1;
    start_exchange(x);
}

void gw_proxy_end(struct gw_req *g)
{
    struct gw_exchange *x = g->x;

    if (x == NULL)
        return;
    stop_upstream(x);
    free(x->head);
    free(x);
    g->x = NULL;
}
