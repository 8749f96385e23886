// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP/1.1 on a client connection: one request at a time (pipelined bytes wait in the bounded
 * input buffer), its head read by our strict parser and refused on any framing doubt, its body
 * read only when the handler asks (so a credential is decided before any body byte), and the
 * answer framed here (Content-Length, chunked or close-delimited), never by the handler.
 *
 * A connection whose request body was not read whole cannot carry another request: its next
 * bytes may be body, and reading them as a request is how requests are smuggled. It is closed
 * after the answer, lingering: the sending side shut first and what the client still sends read
 * and dropped for a while, so the kernel does not reset the connection (and lose the answer) for
 * unread data.
 */
#include "http/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "http/h1parse.h"

#define HIGH_MARK (64 * 1024) /* unsent answer bytes above which the handler waits */
/* Reading and dropping what a client still sends after an answer that ends its connection (a body
 * we refused): closing with unread bytes makes the kernel reset the connection, and a client still
 * sending may then lose the answer itself. Time bounds it; the bytes' bound is only far above
 * any body a refused client would finish sending in that time on a fast link (a body just over
 * 1 MiB refused with 413 was reset at a 1 MiB bound). */
#define LINGER_MS           2000
#define LINGER_BYTES        (64u << 20)
#define HEAD_OVERHEAD       256 /* status line, date, server, framing, connection */
#define DRAIN_HEAD_GRACE_MS 100 /* see h1_drain */

enum phase { WAIT_HEAD, SERVING, LINGER };

struct h1 {
    struct gh_http_conn *c;
    struct gh_http_req_impl *req;
    enum phase phase;
    int head_started;  /* bytes of the next head arrived: the head timeout runs */
    size_t parsed_len; /* input bytes the parser saw last time (it reads a head from its start) */
    int keep_alive;
    int draining;
    int aborted;
    struct gh_defer close_later;
    struct gh_http_refusal refusal; /* the parser's, for the request refused now */
    size_t lingered;

    /* the request body */
    int body_reading, body_paused, body_done, body_chunked;
    int body_complete; /* read to its end: only then may the connection carry another request
                          (body_done also marks a body given up on: too large, too slow, broken) */
    uint64_t body_left, body_seen;
    struct gh_h1_chunked dechunk;
    struct gh_defer body_end_later; /* a bodiless request's end, from the loop */

    /* the answer */
    int answer_chunked, answer_no_body, answer_closes, answer_ended, want_writable;
    int64_t answer_left; /* bytes of an announced length still to come; -1 none */
    /* The head waits for the first body bytes of the same turn of the loop, so that a small
     * answer leaves in one system call (and one TCP segment) instead of two; the loop sends it
     * alone when no body comes in that turn (an upstream that answers its head first). */
    char *held_head;
    size_t held_len;
    struct gh_defer head_later;
};

static const struct gh_http_proto h1_proto;

static struct h1 *h1_of(struct gh_http_request *req)
{
    return ((struct gh_http_req_impl *)req)->conn->proto_state;
}

static const struct gh_http_limits *limits_of(struct h1 *h)
{
    return &gh_http_options(h->c->worker)->limits;
}

static struct gh_loop *loop_of(struct h1 *h)
{
    return h->c->worker->loop;
}

static void on_read(struct gh_sock *s, int status);

/* ---- ending ---- */

static void close_conn(struct h1 *h)
{
    struct gh_http_conn *c = h->c;

    if (h->req != NULL) {
        struct gh_http_req_impl *r = h->req;
        h->req = NULL;
        gh_http_req_end(r, 0);
    }
    gh_defer_cancel(loop_of(h), &h->close_later);
    gh_defer_cancel(loop_of(h), &h->body_end_later);
    gh_defer_cancel(loop_of(h), &h->head_later);
    free(h->held_head);
    free(h);
    c->proto_state = NULL;
    gh_http_conn_free(c);
}

static void on_close_later(struct gh_defer *d)
{
    close_conn(d->data);
}

/* Closes from the loop: for calls made by the handler, which must not see its request end. */
static void close_soon(struct h1 *h)
{
    h->aborted = 1;
    gh_sock_read_stop(&h->c->sock);
    gh_defer_schedule(loop_of(h), &h->close_later);
}

static void on_timer(struct gh_timer *t);

static void arm(struct h1 *h, uint32_t ms)
{
    h->c->timer.cb = on_timer;
    h->c->timer.data = h;
    gh_timer_arm(loop_of(h), &h->c->timer, ms);
}

static void linger(struct h1 *h)
{
    h->phase = LINGER;
    gh_sock_shutdown_write(&h->c->sock);
    arm(h, LINGER_MS);
    gh_sock_read_start(&h->c->sock, on_read);
}

static void wait_next(struct h1 *h)
{
    h->phase = WAIT_HEAD;
    h->head_started = 0;
    h->parsed_len = 0;
    h->body_reading = h->body_paused = h->body_done = h->body_chunked = 0;
    h->body_complete = 0;
    h->body_left = h->body_seen = 0;
    memset(&h->dechunk, 0, sizeof h->dechunk);
    h->answer_chunked = h->answer_no_body = h->answer_closes = h->answer_ended = 0;
    h->want_writable = 0;
    arm(h, limits_of(h)->idle_ms);
    gh_sock_read_start(&h->c->sock, on_read); /* a pipelined head is reported at once */
}

/* The answer is in the kernel: the request ends, and the connection takes the next one, lingers
 * (its body was not read whole) or closes. */
static void finish(struct h1 *h)
{
    struct gh_http_req_impl *r = h->req;
    int body_unread = r->pub.content_length != 0 && !h->body_complete;
    int closes = h->answer_closes || r->close_after || h->draining || !h->keep_alive;

    h->req = NULL;
    gh_timer_disarm(loop_of(h), &h->c->timer);
    gh_http_req_end(r, 1);
    if (body_unread)
        linger(h);
    else if (closes)
        close_conn(h);
    else
        wait_next(h);
}

/* ---- the head ---- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 400 ? "OK" : "Error";
    }
}

static const char *code_of(int status)
{
    switch (status) {
    case 408:
        return "request_timeout";
    case 413:
        return "payload_too_large";
    case 414:
        return "uri_too_long";
    case 417:
        return "expectation_failed";
    case 431:
        return "headers_too_large";
    case 501:
        return "not_implemented";
    case 505:
        return "http_version_not_supported";
    default:
        return "bad_request";
    }
}

/* The request line's pieces, reduced: an absolute-form target gives its path and query to the
 * handler and its authority replaces Host (RFC 9112 3.2.2). */
static int set_target(struct gh_http_req_impl *r, const char *target, size_t len)
{
    struct gh_http_request *p = &r->pub;

    p->path = target;
    p->path_len = len;
    if (len > 0 && target[0] != '/' && target[0] != '*') {
        const char *colon = memchr(target, ':', len);
        if (colon != NULL && (size_t)(target + len - colon) > 3 && colon[1] == '/' &&
            colon[2] == '/') {
            const char *auth = colon + 3, *end = target + len;
            const char *slash = auth;
            while (slash < end && *slash != '/' && *slash != '?')
                slash++;
            p->authority = auth;
            p->authority_len = (size_t)(slash - auth);
            if (slash == end) { /* "http://h": the path is "/" */
                p->path = "/";
                p->path_len = 1;
            } else if (*slash == '/') {
                p->path = slash;
                p->path_len = (size_t)(end - slash);
            } else { /* "http://h?q": the path is "/", and the query stays with it */
                char *path = gh_http_req_arena(r, (size_t)(end - slash) + 1);
                if (path == NULL)
                    return GH_ERR_NOMEM;
                path[0] = '/';
                memcpy(path + 1, slash, (size_t)(end - slash));
                p->path = path;
                p->path_len = (size_t)(end - slash) + 1;
            }
        }
    }
    const char *q = memchr(p->path, '?', p->path_len);
    p->query_at = q != NULL ? (size_t)(q - p->path) : SIZE_MAX;
    return GH_OK;
}

/* Copies the parsed head into the request's arena (the input buffer moves on) with lower-case
 * field names, and fills the public request. */
static int take_head(struct h1 *h, struct gh_http_req_impl *r, const char *head, size_t head_len,
                     const struct gh_h1_request *in)
{
    struct gh_http_request *p = &r->pub;
    char *copy = gh_http_req_arena(r, head_len);
    struct gh_http_header *headers = gh_http_req_arena(r, (in->n_headers + 1) * sizeof *headers);

    if (copy == NULL || headers == NULL)
        return GH_ERR_NOMEM;
    memcpy(copy, head, head_len);
#define MOVE(ptr) (copy + ((ptr)-head))
    for (size_t i = 0; i < in->n_headers; i++) {
        headers[i].name = MOVE(in->headers[i].name);
        headers[i].name_len = in->headers[i].name_len;
        headers[i].value = MOVE(in->headers[i].value);
        headers[i].value_len = in->headers[i].value_len;
        gh_h1_lower((char *)headers[i].name, headers[i].name_len);
    }
    p->headers = headers;
    p->n_headers = in->n_headers;
    p->method = MOVE(in->method);
    p->method_len = in->method_len;
    if (in->host != NULL) {
        p->authority = MOVE(in->host);
        p->authority_len = in->host_len;
    }
    if (set_target(r, MOVE(in->target), in->target_len) != GH_OK)
        return GH_ERR_NOMEM;
#undef MOVE
    p->version = 0x100 | in->minor_version;
    p->content_length = in->chunked ? -1 : in->content_length < 0 ? 0 : in->content_length;
    p->expect_continue = in->expect_continue;
    h->body_chunked = in->chunked;
    h->body_left = in->chunked ? 0 : (uint64_t)p->content_length;
    h->keep_alive = in->keep_alive;
    return GH_OK;
}

/* A request the front end refuses by itself, handed to the handler to answer in its style. */
static void refuse(struct h1 *h, struct gh_http_req_impl *r, int status, const char *message)
{
    h->phase = SERVING;
    h->keep_alive = 0;
    h->refusal.status = status;
    h->refusal.code = code_of(status);
    h->refusal.message = message;
    gh_sock_read_stop(&h->c->sock);
    gh_timer_disarm(loop_of(h), &h->c->timer);
    h->req = r;
    gh_http_req_refuse(r, &h->refusal);
}

static void count_refusal(struct h1 *h, long rc)
{
    enum gh_h1_error e = (enum gh_h1_error) - rc;

    if (e == GH_H1_HEAD_TOO_LARGE)
        gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_HEADER_BYTES);
    else if (e == GH_H1_TOO_MANY_HEADERS)
        gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_HEADER_COUNT);
    else if (e == GH_H1_TARGET_TOO_LONG)
        gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_TARGET);
}

/*
 * The parser reads a head from its first byte each time, so a client sending one byte at a time
 * would make it read up to head_bytes squared bytes. It is called again only when something can
 * have changed its answer: a line ended in the new bytes, the input doubled, or it passed the
 * head limit. The answer is the same, at most a little later.
 */
static int worth_parsing(struct h1 *h, const struct gh_sock *s, size_t head_bytes)
{
    if (h->parsed_len == 0 || s->in_len >= 2 * h->parsed_len || s->in_len > head_bytes)
        return 1;
    return s->in_len > h->parsed_len &&
           memchr(s->in + h->parsed_len, '\n', s->in_len - h->parsed_len) != NULL;
}

static void read_head(struct h1 *h, int status)
{
    struct gh_sock *s = &h->c->sock;
    const struct gh_http_limits *l = limits_of(h);
    struct gh_h1_limits pl = {l->header_bytes, l->header_count, l->target_bytes};
    static _Thread_local struct gh_h1_request parsed; /* large: not on the stack */
    struct gh_http_req_impl *r;
    int answer = 0;
    long rc;

    if (s->in_len == 0) {
        if (status != GH_SOCK_OK || h->draining)
            close_conn(h); /* the client is done (or we are): nothing was asked */
        return;
    }
    if (!h->head_started) {
        h->head_started = 1;
        if (!h->draining) /* draining, the drain's grace bounds the head */
            arm(h, l->head_ms);
    }
    if (!worth_parsing(h, s, l->header_bytes)) {
        if (status != GH_SOCK_OK)
            close_conn(h);
        return;
    }
    h->parsed_len = s->in_len;
    rc = gh_h1_parse_request(s->in, s->in_len, &pl, &parsed, &answer);
    if (rc == 0) {
        if (status != GH_SOCK_OK)
            close_conn(h); /* gone in the middle of a head: nobody to answer */
        return;
    }
    if ((r = gh_http_req_new(h->c, rc > 0 ? (size_t)rc + 512 : 512)) == NULL) {
        close_conn(h);
        return;
    }
    if (rc < 0) {
        count_refusal(h, rc);
        refuse(h, r, answer, gh_h1_error_message((enum gh_h1_error) - rc));
        return;
    }
    if (take_head(h, r, s->in, (size_t)rc, &parsed) != GH_OK) {
        gh_http_req_end(r, 0);
        close_conn(h);
        return;
    }
    gh_sock_consume(s, (size_t)rc);
    if (parsed.expect_other) {
        refuse(h, r, 417, "Only Expect: 100-continue is supported.");
        return;
    }
    h->phase = SERVING;
    h->req = r;
    gh_sock_read_stop(s); /* the body waits in the kernel until the handler wants it */
    gh_timer_disarm(loop_of(h), &h->c->timer);
    gh_http_req_dispatch(r);
}

/* ---- the body ---- */

static void body_fail(struct h1 *h, int why)
{
    h->body_done = 1;
    h->keep_alive = 0;
    gh_sock_read_stop(&h->c->sock);
    gh_timer_disarm(loop_of(h), &h->c->timer);
    gh_http_req_body(h->req, NULL, 0, why);
}

/* Hands what the input holds of the body to the handler, as long as it is not paused. */
static void read_body(struct h1 *h, int status)
{
    struct gh_sock *s = &h->c->sock;
    const struct gh_http_limits *l = limits_of(h);

    while (h->req != NULL && !h->body_done && !h->body_paused && s->in_len != 0) {
        size_t len = s->in_len, used;
        int end;
        if (h->body_chunked) {
            int rc = gh_h1_chunked_decode(&h->dechunk, s->in, &len, &used);
            if (rc < 0) {
                body_fail(h, GH_HTTP_BODY_BROKEN);
                return;
            }
            end = rc == 1;
        } else {
            len = used = len < h->body_left ? len : (size_t)h->body_left;
            h->body_left -= len;
            end = h->body_left == 0;
        }
        h->body_seen += len;
        if (h->body_seen > l->max_body) {
            gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_BODY);
            body_fail(h, GH_HTTP_BODY_TOO_LARGE);
            return;
        }
        h->body_done = h->body_complete = end;
        arm(h, l->body_ms); /* progress */
        if (end) {
            gh_sock_read_stop(s);
            gh_timer_disarm(loop_of(h), &h->c->timer);
        }
        if (len != 0 || end)
            gh_http_req_body(h->req, s->in, len, end);
        if (h->req == NULL || h->aborted)
            return;
        gh_sock_consume(s, used);
    }
    if (h->req != NULL && !h->body_done && status != GH_SOCK_OK)
        body_fail(h, GH_HTTP_BODY_BROKEN);
}

static void on_body_end_later(struct gh_defer *d)
{
    struct h1 *h = d->data;

    if (h->req == NULL)
        return;
    if (h->req->pub.content_length > 0) {
        gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_BODY);
        body_fail(h, GH_HTTP_BODY_TOO_LARGE);
        return;
    }
    h->body_done = h->body_complete = 1;
    gh_http_req_body(h->req, NULL, 0, 1);
}

static void h1_body_start(struct gh_http_request *req)
{
    struct h1 *h = h1_of(req);
    struct gh_http_req_impl *r = (struct gh_http_req_impl *)req;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

    h->body_reading = 1;
    /* announced larger than allowed: refused as soon as the handler wants it, never read (the
     * handler decides the credential first, so a stranger learns nothing from a large body) */
    if (req->content_length == 0 ||
        (req->content_length > 0 && (uint64_t)req->content_length > limits_of(h)->max_body)) {
        gh_defer_schedule(loop_of(h), &h->body_end_later);
        return;
    }
    if (req->expect_continue && !r->answer_started) {
        struct iovec v = {(void *)cont, sizeof cont - 1};
        gh_sock_write(&h->c->sock, &v, 1, NULL);
    }
    arm(h, limits_of(h)->body_ms);
    gh_sock_read_start(&h->c->sock, on_read);
}

static void h1_body_pause(struct gh_http_request *req)
{
    struct h1 *h = h1_of(req);

    if (h->body_done || h->body_paused)
        return;
    h->body_paused = 1;
    gh_sock_read_stop(&h->c->sock);
    gh_timer_disarm(loop_of(h), &h->c->timer); /* our own choice, not the client's slowness */
}

static void h1_body_resume(struct gh_http_request *req)
{
    struct h1 *h = h1_of(req);

    if (!h->body_paused)
        return;
    h->body_paused = 0;
    if (h->body_done)
        return;
    arm(h, limits_of(h)->body_ms);
    gh_sock_read_start(&h->c->sock, on_read);
}

/* ---- reading and timers ---- */

static void drop_lingering(struct h1 *h, int status)
{
    struct gh_sock *s = &h->c->sock;

    h->lingered += s->in_len;
    gh_sock_consume(s, s->in_len);
    if (status != GH_SOCK_OK || h->lingered > LINGER_BYTES)
        close_conn(h);
}

static void on_read(struct gh_sock *s, int status)
{
    struct h1 *h = s->data;

    switch (h->phase) {
    case WAIT_HEAD:
        read_head(h, status);
        break;
    case SERVING:
        if (h->body_reading)
            read_body(h, status);
        break;
    case LINGER:
        drop_lingering(h, status);
        break;
    }
}

static void on_timer(struct gh_timer *t)
{
    struct h1 *h = t->data;
    struct gh_http_req_impl *r;

    if (h->phase == LINGER) {
        close_conn(h);
    } else if (h->phase == WAIT_HEAD && (!h->head_started || h->draining)) {
        gh_http_count(&gh_http_metrics_of(h->c->worker)->idle_closed);
        close_conn(h); /* idle, or a head still incomplete when the drain's grace ended */
    } else if (h->phase == WAIT_HEAD) {
        gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_HEAD_TIMEOUT);
        if ((r = gh_http_req_new(h->c, 0)) == NULL) {
            close_conn(h);
            return;
        }
        refuse(h, r, 408, gh_http_refusal_head_timeout.message);
    } else if (h->req != NULL && h->body_reading && !h->body_done) {
        gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_BODY_TIMEOUT);
        body_fail(h, GH_HTTP_BODY_TIMEOUT);
    } else if (h->want_writable) {
        close_conn(h); /* the client stopped reading our answer */
    }
}

/* ---- the answer ---- */

static void on_written(struct gh_sock *s, int status)
{
    struct h1 *h = s->data;

    if (status != GH_SOCK_OK) {
        close_conn(h);
        return;
    }
    if (h->req == NULL)
        return; /* 100 Continue, or lingering */
    if (h->want_writable) {
        h->want_writable = 0;
        gh_timer_disarm(loop_of(h), &h->c->timer);
        if (h->body_reading && !h->body_done && !h->body_paused)
            arm(h, limits_of(h)->body_ms);
        gh_http_req_writable(h->req);
    }
    if (h->req != NULL && h->answer_ended && gh_sock_pending(s) == 0)
        finish(h);
}

static int is_clean(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return 0;
    return 1;
}

static int h1_respond_start(struct gh_http_request *req, int status,
                            const struct gh_http_header *headers, size_t n, int64_t length)
{
    struct h1 *h = h1_of(req);
    struct gh_http_req_impl *r = (struct gh_http_req_impl *)req;
    const char *server = gh_http_options(h->c->worker)->server_name;
    size_t cap = HEAD_OVERHEAD + (server != NULL ? strlen(server) : 0), len;
    char *head;

    for (size_t i = 0; i < n; i++)
        cap += headers[i].name_len + headers[i].value_len + 4;
    if ((head = malloc(cap)) == NULL)
        return GH_ERR_NOMEM;
    len = (size_t)snprintf(head, cap, "HTTP/1.1 %d %s\r\n", status, reason_of(status));
    len += (size_t)snprintf(head + len, cap - len, "date: %s\r\n", gh_http_date());
    if (server != NULL)
        len += (size_t)snprintf(head + len, cap - len, "server: %s\r\n", server);
    for (size_t i = 0; i < n; i++) {
        const struct gh_http_header *f = &headers[i];
        if (gh_http_front_owned(f->name, f->name_len) || !is_clean(f->name, f->name_len) ||
            !is_clean(f->value, f->value_len))
            continue; /* ours to write, or bytes that would split the head */
        len += (size_t)snprintf(head + len, cap - len, "%.*s: %.*s\r\n", (int)f->name_len, f->name,
                                (int)f->value_len, f->value);
    }
    h->answer_no_body = r->is_head || status == 204 || status == 304;
    h->answer_left = length;
    h->answer_closes = r->close_after || h->draining || !h->keep_alive ||
                       (req->content_length != 0 && !h->body_reading);
    if (status == 204 || status == 304) {
        h->answer_left = 0;
    } else if (length >= 0) {
        len +=
            (size_t)snprintf(head + len, cap - len, "content-length: %lld\r\n", (long long)length);
        if (r->is_head)
            h->answer_left = 0;
    } else if (r->is_head) {
        h->answer_left = 0;
    } else if (req->version == 0x101) {
        len += (size_t)snprintf(head + len, cap - len, "transfer-encoding: chunked\r\n");
        h->answer_chunked = 1;
    } else {
        h->answer_closes = 1; /* HTTP/1.0: the end of the body is the close */
    }
    if (h->answer_closes)
        len += (size_t)snprintf(head + len, cap - len, "connection: close\r\n");
    else if (req->version == 0x100)
        len += (size_t)snprintf(head + len, cap - len, "connection: keep-alive\r\n");
    len += (size_t)snprintf(head + len, cap - len, "\r\n");
    if (h->aborted) {
        free(head);
        return GH_ERR_IO;
    }
    h->held_head = head;
    h->held_len = len;
    gh_defer_schedule(loop_of(h), &h->head_later);
    req->bytes_sent += len;
    return GH_OK;
}

/* No body bytes came in the head's turn of the loop: the head goes alone. */
static void on_head_later(struct gh_defer *d)
{
    struct h1 *h = d->data;
    struct iovec v = {h->held_head, h->held_len};
    int rc;

    if (h->held_head == NULL)
        return; /* it left with the body */
    rc = gh_sock_write(&h->c->sock, &v, 1, on_written);
    free(h->held_head);
    h->held_head = NULL;
    if (rc != GH_OK)
        close_soon(h);
}

static int h1_respond_write(struct gh_http_request *req, const void *data, size_t len, int last)
{
    struct h1 *h = h1_of(req);
    struct gh_sock *s = &h->c->sock;
    char size_line[24];
    struct iovec v[4];
    int n = 0, rc;

    if (h->aborted)
        return -1;
    if (h->answer_no_body)
        len = 0;
    if (h->held_head != NULL) { /* the head leaves with these bytes (not counted again); its
                                 * deferred send then finds nothing held (cheaper than a cancel) */
        v[n].iov_base = h->held_head;
        v[n++].iov_len = h->held_len;
    }
    if (h->answer_left >= 0 && (uint64_t)len > (uint64_t)h->answer_left) {
        gh_http_respond_abort(req); /* more than it announced: never send it */
        return -1;
    }
    if (h->answer_left >= 0)
        h->answer_left -= (int64_t)len;
    if (h->answer_chunked && len != 0) {
        v[n].iov_base = size_line;
        v[n++].iov_len = (size_t)snprintf(size_line, sizeof size_line, "%zx\r\n", len);
    }
    if (len != 0) {
        v[n].iov_base = (void *)data;
        v[n++].iov_len = len;
    }
    if (h->answer_chunked && (len != 0 || last)) {
        v[n].iov_base = (void *)(last ? (len != 0 ? "\r\n0\r\n\r\n" : "0\r\n\r\n") : "\r\n");
        v[n++].iov_len = last ? (len != 0 ? 7 : 5) : 2;
    }
    if (last && h->answer_left > 0)
        h->answer_closes = 1; /* shorter than announced: the client must not wait for more */
    h->answer_ended = last;
    for (int i = h->held_head != NULL ? 1 : 0; i < n; i++)
        req->bytes_sent += v[i].iov_len;
    if (n == 0) { /* nothing to send, but the end still comes from the loop (on_written) */
        v[0].iov_base = NULL;
        v[n++].iov_len = 0;
    }
    rc = gh_sock_write(s, v, n, on_written);
    free(h->held_head);
    h->held_head = NULL;
    if (rc != GH_OK) {
        close_soon(h);
        return -1;
    }
    if (last && h->answer_left > 0) {
        close_soon(h);
        return -1;
    }
    if (gh_sock_pending(s) < HIGH_MARK)
        return 1;
    h->want_writable = 1;
    if (!gh_timer_armed(&h->c->timer))
        arm(h, limits_of(h)->idle_ms);
    return 0;
}

static void h1_respond_abort(struct gh_http_request *req)
{
    close_soon(h1_of(req));
}

/* ---- draining ---- */

/* A request in progress is answered first, with Connection: close. A connection waiting for a head
 * gets DRAIN_HEAD_GRACE_MS for one its client sent before the drain began and whose bytes the loop
 * has not all read yet (a new connection taken from the backlog, a keep-alive one whose next
 * request is on its way): closing at once would reset it. A head not complete by then is closed
 * without an answer; nothing was promised to it. */
static void h1_drain(struct gh_http_conn *c)
{
    struct h1 *h = c->proto_state;

    if (h->draining)
        return;
    h->draining = 1;
    if (h->phase == WAIT_HEAD)
        arm(h, DRAIN_HEAD_GRACE_MS);
}

static void h1_cut(struct gh_http_conn *c)
{
    close_conn(c->proto_state);
}

static const struct gh_http_proto h1_proto = {
    .name = "http/1.1",
    .respond_start = h1_respond_start,
    .respond_write = h1_respond_write,
    .respond_abort = h1_respond_abort,
    .body_start = h1_body_start,
    .body_pause = h1_body_pause,
    .body_resume = h1_body_resume,
    .drain = h1_drain,
    .cut = h1_cut,
};

void gh_h1_conn_start(struct gh_http_conn *c)
{
    struct h1 *h = calloc(1, sizeof *h);

    if (h == NULL) {
        gh_http_conn_free(c);
        return;
    }
    h->c = c;
    h->close_later.cb = on_close_later;
    h->close_later.data = h;
    h->body_end_later.cb = on_body_end_later;
    h->body_end_later.data = h;
    h->head_later.cb = on_head_later;
    h->head_later.data = h;
    c->proto = &h1_proto;
    c->proto_state = h;
    c->sock.data = h;
    wait_next(h);
    if (gh_http_server_stopping(c->worker->server))
        h1_drain(c); /* taken from the backlog at the drain: its request may be on its way */
}
