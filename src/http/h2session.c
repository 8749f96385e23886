// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP/2 through libnghttp2, without the socket (h2conn.c adds it). Everything a client sends is
 * bounded here: the decoded header list (count and bytes, per RFC 9113's size rule, refused with
 * 431), concurrent streams (nghttp2 refuses past our SETTINGS), resets (a token bucket per
 * connection: past limits.h2_resets_per_10s, GOAWAY ENHANCE_YOUR_CALM), request bodies (one flow
 * control window per stream is all we hold: the window reopens only as the handler takes bytes)
 * and nghttp2's own flood limits. A request reaches the handler only after nghttp2 has read the
 * whole chunk its HEADERS came in, so a stream the client reset in the same write never does
 * (rapid reset opened upstream connections for reset streams behind h2o).
 */
#include "http/h2stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/error.h"

/* ---- resets ---- */

/* One client-caused reset against the bucket; 1 when it is one too many (GOAWAY queued). */
static int h2_reset_charge(struct gh_h2 *h)
{
    uint64_t per10 = h->lim->h2_resets_per_10s, now = h2_now(h), cap = per10 * 10000;

    /* tokens in 1/10000 of a reset: `per10` of them come back per millisecond */
    h->reset_tokens += (now - h->reset_at_ms) * per10;
    if (h->reset_tokens > cap)
        h->reset_tokens = cap;
    h->reset_at_ms = now;
    if (h->reset_tokens >= 10000) {
        h->reset_tokens -= 10000;
        return 0;
    }
    if (!h->closing) {
        gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_H2_RESETS);
        gh_h2_session_terminate(h, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    return 1;
}

/* ---- the head ---- */

static int h2_head_store(struct h2_stream *s, const uint8_t *p, size_t len, size_t *off)
{
    *off = s->hlen;
    if (!len)
        return 0;
    if (s->hlen + len > s->hcap) {
        size_t cap = s->hcap ? s->hcap : 256;
        while (cap < s->hlen + len)
            cap *= 2;
        char *n = realloc(s->hbuf, cap);
        if (!n)
            return -1;
        s->hbuf = n;
        s->hcap = cap;
    }
    memcpy(s->hbuf + s->hlen, p, len);
    *off = s->hlen;
    s->hlen += len;
    return 0;
}

static int h2_pseudo_index(const uint8_t *name, size_t len)
{
    static const char *const names[PS_COUNT] = {":method", ":scheme", ":authority", ":path"};
    for (int i = 0; i < PS_COUNT; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return i;
    return -1;
}

/* Counts one field against the limits; 0 to store it, 1 to drop it (the request is refused), -1
 * to end the connection (see H2_DECODED_FACTOR). */
static int h2_head_count(struct gh_h2 *h, struct h2_stream *s, size_t size, int pseudo)
{
    const struct gh_http_refusal *refusal = NULL;
    enum gh_http_limit which = GH_HTTP_LIMIT_HEADER_BYTES;

    s->decoded += size;
    if (s->decoded > H2_DECODED_FACTOR * h->lim->header_bytes) {
        if (!s->refusal)
            gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_HEADER_BYTES);
        gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_H2_FLOOD);
        return -1; /* the connection ends: decoding no further */
    }
    if (s->refusal)
        return 1;
    if (!pseudo && ++s->head_count > h->lim->header_count) {
        refusal = &gh_http_refusal_header_count;
        which = GH_HTTP_LIMIT_HEADER_COUNT;
    } else if (size > h->lim->header_bytes || s->head_bytes + size > h->lim->header_bytes) {
        refusal = &gh_http_refusal_header_bytes;
    }
    if (!refusal) {
        s->head_bytes += size;
        return 0;
    }
    /* Answered with 431 rather than a bare reset: the client learns why. What follows in this
     * header block is still decoded by nghttp2 (HPACK state) but not kept; the fields kept so far
     * are dropped too, the pseudo-headers (first, by RFC 9113 8.3) stay for the handler's log. */
    s->refusal = refusal;
    gh_http_count_limit(h->c->worker, which);
    s->nhf = 0;
    return 1;
}

static int h2_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                        size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct gh_h2 *h = ud;
    struct h2_stream *s;
    size_t noff, voff;
    (void)ng;
    (void)flags;

    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: decoded by nghttp2, not kept */
    s = h2_stream_of(h, f->hd.stream_id);
    if (!s)
        return 0;
    int counted = h2_head_count(h, s, nlen + vlen + H2_FIELD_OVERHEAD, nlen && name[0] == ':');
    if (counted < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (counted > 0)
        return 0;
    if (nlen && name[0] == ':') {
        int i = h2_pseudo_index(name, nlen);
        if (i < 0 || (s->ps_set & (1u << i)))
            return 0; /* nghttp2 refuses unknown and repeated pseudo-headers itself */
        if (h2_head_store(s, value, vlen, &voff))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        s->ps_off[i] = voff;
        s->ps_len[i] = vlen;
        s->ps_set |= 1u << i;
        return 0;
    }
    if (s->nhf == s->hfcap) {
        size_t cap = s->hfcap ? s->hfcap * 2 : 16;
        struct h2_field *n = realloc(s->hf, cap * sizeof *n);
        if (!n)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        s->hf = n;
        s->hfcap = cap;
    }
    if (h2_head_store(s, name, nlen, &noff) || h2_head_store(s, value, vlen, &voff))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->hf[s->nhf++] = (struct h2_field){noff, nlen, voff, vlen};
    return 0;
}

static int h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct gh_h2 *h = ud;
    struct h2_stream *s;

    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    s = calloc(1, sizeof *s);
    if (!s)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->h = h;
    s->id = f->hd.stream_id;
    s->out_cl = -1;
    s->started_ns = gh_monotonic_ns();
    s->head_since_ms = h2_now(h);
    if (nghttp2_session_set_stream_user_data(ng, s->id, s) != 0) {
        free(s);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    s->next = h->streams;
    if (h->streams)
        h->streams->prev = s;
    h->streams = s;
    h->n_streams++;
    return 0;
}

/* ---- dispatch ---- */

static int h2_field_is(const struct h2_stream *s, const struct h2_field *f, const char *lc)
{
    return f->name_len == strlen(lc) && memcmp(s->hbuf + f->name_off, lc, f->name_len) == 0;
}

/* The stored fields into the request's arena, repeated cookie crumbs joined with "; " (RFC 9113
 * 8.2.3) in one pass: the joined field is smaller than the crumbs as counted (each paid 32). */
static int h2_head_copy(struct h2_stream *s, struct gh_http_req_impl *r, const char *text)
{
    size_t cookies = 0, cookie_len = 0, n = 0, first = SIZE_MAX;
    struct gh_http_header *arr = NULL;
    char *joined = NULL;

    for (size_t i = 0; i < s->nhf; i++)
        if (h2_field_is(s, &s->hf[i], "cookie")) {
            cookies++;
            cookie_len += s->hf[i].value_len + (cookies > 1 ? 2 : 0);
        }
    if (s->nhf && !(arr = gh_http_req_arena(r, s->nhf * sizeof *arr)))
        return -1;
    if (cookies > 1 && !(joined = gh_http_req_arena(r, cookie_len + 1)))
        return -1;
    size_t at = 0;
    for (size_t i = 0; i < s->nhf; i++) {
        const struct h2_field *f = &s->hf[i];
        int cookie = cookies > 1 && h2_field_is(s, f, "cookie");
        if (cookie) {
            if (at)
                memcpy(joined + at - 2, "; ", 2);
            memcpy(joined + at, text + f->value_off, f->value_len);
            at += f->value_len + 2;
            if (first != SIZE_MAX)
                continue;
            first = n;
        }
        arr[n++] =
            (struct gh_http_header){text + f->name_off, cookie ? joined : text + f->value_off,
                                    f->name_len, cookie ? cookie_len : f->value_len};
    }
    r->pub.headers = arr;
    r->pub.n_headers = n;
    return 0;
}

static int64_t h2_content_length(const struct gh_http_request *req)
{
    const struct gh_http_header *f = gh_http_header_find(req, "content-length", 14, NULL);
    int64_t v = 0;

    if (!f)
        return -1;
    for (size_t i = 0; i < f->value_len; i++) {
        if (f->value[i] < '0' || f->value[i] > '9' || v > (INT64_MAX - 9) / 10)
            return -1; /* nghttp2 refused malformed lengths already */
        v = v * 10 + (f->value[i] - '0');
    }
    return v;
}

static void h2_head_fill(struct h2_stream *s, struct gh_http_req_impl *r, const char *text)
{
    struct gh_http_request *q = &r->pub;
    const char *ps[PS_COUNT];
    const struct gh_http_header *f;

    for (int i = 0; i < PS_COUNT; i++)
        ps[i] = (s->ps_set & (1u << i)) ? text + s->ps_off[i] : "";
    q->method = ps[PS_METHOD];
    q->method_len = s->ps_set & (1u << PS_METHOD) ? s->ps_len[PS_METHOD] : 0;
    q->path = ps[PS_PATH];
    q->path_len = s->ps_set & (1u << PS_PATH) ? s->ps_len[PS_PATH] : 0;
    const char *qm = q->path_len ? memchr(q->path, '?', q->path_len) : NULL;
    q->query_at = qm ? (size_t)(qm - q->path) : SIZE_MAX;
    q->authority = ps[PS_AUTHORITY];
    q->authority_len = s->ps_set & (1u << PS_AUTHORITY) ? s->ps_len[PS_AUTHORITY] : 0;
    if (!q->authority_len && (f = gh_http_header_find(q, "host", 4, NULL))) {
        q->authority = f->value;
        q->authority_len = f->value_len;
    }
    q->version = 0x200;
    q->tls = s->h->c->tls;
    q->content_length = s->end_stream_in ? 0 : h2_content_length(q);
    f = gh_http_header_find(q, "expect", 6, NULL);
    q->expect_continue = !s->end_stream_in && f && f->value_len == 12 &&
                         strncasecmp(f->value, "100-continue", 12) == 0;
    s->expect_continue = q->expect_continue;
    q->peer = s->h->c->peer;
    q->peer_len = s->h->c->peer_len;
    q->started_ns = s->started_ns;
    q->worker = s->h->c->worker;
    r->is_head = q->method_len == 4 && memcmp(q->method, "HEAD", 4) == 0;
}

static void h2_head_free(struct h2_stream *s)
{
    free(s->hbuf);
    free(s->hf);
    s->hbuf = NULL;
    s->hf = NULL;
    s->hlen = s->hcap = s->nhf = s->hfcap = 0;
}

static void h2_dispatch(struct gh_h2 *h, struct h2_stream *s)
{
    size_t hint = s->nhf * sizeof(struct gh_http_header) + 2 * s->hlen + 64;
    struct gh_http_req_impl *r = gh_http_req_new(h->c, hint);
    char *text = r ? gh_http_req_arena(r, s->hlen + 1) : NULL;

    if (!text || (memcpy(text, s->hbuf ? s->hbuf : "", s->hlen), h2_head_copy(s, r, text))) {
        if (r)
            gh_http_req_end(r, 0);
        h2_head_free(s);
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        s->aborted = 1;
        return;
    }
    text[s->hlen] = '\0';
    s->r = r;
    r->proto_req = s;
    h2_head_fill(s, r, text);
    h2_head_free(s);
    if (s->refusal)
        gh_http_req_refuse(r, s->refusal);
    else
        gh_http_req_dispatch(r);
}

static void h2_dispatch_ready(struct gh_h2 *h)
{
    struct h2_stream *s;

    while ((s = h->ready_head)) {
        h->ready_head = s->ready_next;
        if (!h->ready_head)
            h->ready_tail = NULL;
        s->ready = 0;
        s->ready_next = NULL;
        if (!h->closing && !h->fatal)
            h2_dispatch(h, s);
    }
}

static void h2_ready_remove(struct gh_h2 *h, struct h2_stream *s)
{
    struct h2_stream **p = &h->ready_head, *last = NULL;

    for (; *p; last = *p, p = &(*p)->ready_next)
        if (*p == s) {
            *p = s->ready_next;
            if (h->ready_tail == s)
                h->ready_tail = last;
            s->ready = 0;
            return;
        }
}

/* ---- the body ---- */

/* Delivers what is held (bytes, then the end or a failure) while the handler reads. */
static void h2_body_flush(struct h2_stream *s)
{
    if (!s->r || !s->body_started || s->body_paused || s->body_done)
        return;
    if (s->in_len) {
        size_t n = s->in_len;
        int last = s->end_stream_in && !s->body_fail;
        s->in_len = 0;
        s->body_done = last;
        gh_http_req_body(s->r, s->in, n, last);
        if (s->body_paused)
            s->unconsumed += n;
        else
            h2_consume(s, n);
        if (last || s->body_paused)
            return;
    }
    if (s->body_fail || s->end_stream_in) {
        s->body_done = 1;
        gh_http_req_body(s->r, NULL, 0, s->body_fail ? s->body_fail : 1);
    }
}

static int h2_body_hold(struct h2_stream *s, const uint8_t *data, size_t len)
{
    if (!len)
        return 0;
    if (s->in_len + len > s->in_cap) {
        size_t cap = s->in_cap ? s->in_cap : 4096;
        while (cap < s->in_len + len)
            cap *= 2;
        /* the stream's window bounds what can be held: more is a flow-control violation that
         * nghttp2 refuses before we see it */
        if (cap > H2_STREAM_WINDOW)
            cap = H2_STREAM_WINDOW;
        if (cap < s->in_len + len)
            return -1;
        char *n = realloc(s->in, cap);
        if (!n)
            return -1;
        s->in = n;
        s->in_cap = cap;
    }
    memcpy(s->in + s->in_len, data, len);
    s->in_len += len;
    return 0;
}

static int h2_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                      size_t len, void *ud)
{
    struct gh_h2 *h = ud;
    struct h2_stream *s = h2_stream_of(h, id);
    (void)flags;

    if (!s || s->body_fail || s->body_done) {
        nghttp2_session_consume_connection(ng, len);
        return 0;
    }
    s->body_in += len;
    s->body_progress_ms = h2_now(h);
    if (s->body_in > h->lim->max_body) {
        nghttp2_session_consume_connection(ng, len);
        gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_BODY);
        h2_body_fail(s, GH_HTTP_BODY_TOO_LARGE);
        return 0;
    }
    if (s->r && s->body_started && !s->body_paused && !s->in_len) {
        gh_http_req_body(s->r, (const char *)data, len, 0);
        if (s->body_paused)
            s->unconsumed += len;
        else
            h2_consume(s, len);
        return 0;
    }
    if (h2_body_hold(s, data, len)) {
        nghttp2_session_consume_connection(ng, len);
        h2_body_fail(s, GH_HTTP_BODY_BROKEN);
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
        s->aborted = 1;
    }
    return 0;
}

/* ---- frames and stream ends ---- */

static void h2_client_end(struct gh_h2 *h, struct h2_stream *s, const nghttp2_frame *f)
{
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) || s->end_stream_in)
        return;
    s->end_stream_in = 1;
    if (s->r)
        h2_body_due(s);
    (void)h;
}

static int h2_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct gh_h2 *h = ud;
    struct h2_stream *s = f->hd.stream_id ? h2_stream_of(h, f->hd.stream_id) : NULL;
    (void)ng;

    if (f->hd.type == NGHTTP2_RST_STREAM) {
        if (s)
            s->client_reset = 1;
        h2_reset_charge(h);
        return 0;
    }
    if (!s || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        s->headers_done = 1;
        s->end_stream_in = !!(f->hd.flags & NGHTTP2_FLAG_END_STREAM);
        s->ready = 1;
        if (h->ready_tail)
            h->ready_tail->ready_next = s;
        else
            h->ready_head = s;
        h->ready_tail = s;
        return 0;
    }
    h2_client_end(h, s, f);
    return 0;
}

static void h2_stream_free(struct gh_h2 *h, struct h2_stream *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->ready)
        h2_ready_remove(h, s);
    h2_head_free(s);
    free(s->in);
    h->out_buffered -= s->out_len; /* what it never sent */
    free(s->out);
    free(s);
    if (--h->n_streams == 0)
        h->idle_since_ms = h2_now(h);
}

/* Ends the stream's request (if dispatched) and frees it. */
static void h2_stream_end(struct gh_h2 *h, struct h2_stream *s, int completed)
{
    struct gh_http_req_impl *r = s->r;

    if (r) {
        s->r = NULL;
        r->proto_req = NULL;
        /* the handler asked that the connection end after this answer: HTTP/2's way is GOAWAY
         * (a refusal's close_after is HTTP/1's: a stream error never taints the connection) */
        if (r->close_after && !r->pub.refusal)
            gh_h2_session_drain(h);
        if (s->body_started && !s->body_done) {
            s->body_done = 1;
            gh_http_req_body(r, NULL, 0, GH_HTTP_BODY_BROKEN);
        }
        gh_http_req_end(r, completed);
    }
    h2_stream_free(h, s);
}

static int h2_on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    struct gh_h2 *h = ud;
    struct h2_stream *s = h2_stream_of(h, id);

    if (!s || h->freeing)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    /* the connection window of what was held and never handed over comes back */
    nghttp2_session_consume_connection(ng, s->in_len + s->unconsumed);
    if (error_code != NGHTTP2_NO_ERROR && !s->client_reset && !s->aborted &&
        error_code != NGHTTP2_REFUSED_STREAM) {
        /* a reset the client caused (a malformed request, a length that lied): it costs as much
         * as one it sent, or it would be a way around the budget */
        if (error_code == NGHTTP2_PROTOCOL_ERROR && !s->r)
            gh_http_count(&gh_http_metrics_of(h->c->worker)->malformed);
        h2_reset_charge(h);
    }
    h2_stream_end(h, s, s->answer_sent);
    return 0;
}

static int h2_on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct gh_h2 *h = ud;
    struct h2_stream *s;

    if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM) {
        /* nghttp2 refused a stream past our SETTINGS_MAX_CONCURRENT_STREAMS (before the client
         * acknowledged them: after, it is a connection error, counted below) */
        gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_H2_STREAMS);
        return 0;
    }
    if (f->hd.type == NGHTTP2_GOAWAY) {
        uint32_t code = f->goaway.error_code;
        if (!h->own_goaway && code == NGHTTP2_ENHANCE_YOUR_CALM)
            gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_H2_FLOOD);
        else if (!h->own_goaway && code != NGHTTP2_NO_ERROR)
            gh_http_count(&gh_http_metrics_of(h->c->worker)->malformed);
        /* a drain's GOAWAY lets the streams it names finish (timeouts included); any other
         * ends the connection once sent */
        if (!(h->draining && code == NGHTTP2_NO_ERROR))
            h->closing = 1;
        return 0;
    }
    if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) || !(s = h2_stream_of(h, f->hd.stream_id)))
        return 0;
    s->answer_sent = 1;
    /* RFC 9113 8.1: the answer is whole, the rest of the request is not wanted */
    if (!s->end_stream_in)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int h2_on_frame_not_send(nghttp2_session *ng, const nghttp2_frame *f, int error, void *ud)
{
    struct h2_stream *s = f->hd.stream_id ? h2_stream_of(ud, f->hd.stream_id) : NULL;
    (void)error;

    /* an answer's head nghttp2 could not send (too large): the stream cannot be answered */
    if (s && f->hd.type == NGHTTP2_HEADERS) {
        s->aborted = 1;
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    }
    return 0;
}

static int h2_on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int error, void *ud)
{
    struct gh_h2 *h = ud;
    (void)ng;

    /* a client that opens more streams than our acknowledged SETTINGS allow: nghttp2 ends the
     * connection (PROTOCOL_ERROR); it is the stream limit that refused it */
    if (f->hd.type == NGHTTP2_HEADERS && error == NGHTTP2_ERR_PROTO &&
        h->n_streams >= h->lim->h2_streams) {
        gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_H2_STREAMS);
        h->own_goaway = 1;
    }
    return 0;
}

/* ---- the session ---- */

static nghttp2_option *h2_options(const struct gh_http_limits *lim)
{
    nghttp2_option *opt;
    uint64_t burst = (uint64_t)lim->h2_resets_per_10s * 2 + 10;

    if (nghttp2_option_new(&opt) != 0)
        return NULL;
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_settings(opt, H2_MAX_SETTINGS);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_ACKS);
    nghttp2_option_set_max_send_header_block_length(opt, H2_MAX_HEAD_OUT);
    nghttp2_option_set_peer_max_concurrent_streams(opt, lim->h2_streams);
    nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
    nghttp2_option_set_no_closed_streams(opt, 1);
    /* nghttp2's own bucket is the backstop, twice as lenient as ours (which answers first and
     * counts): burst and rate per second */
    nghttp2_option_set_stream_reset_rate_limit(opt, burst, burst / 10 + 1);
    return opt;
}

static nghttp2_session_callbacks *h2_callbacks(void)
{
    nghttp2_session_callbacks *cb;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, h2_on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, h2_on_frame_not_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, h2_on_invalid_frame);
    return cb;
}

struct gh_h2 *gh_h2_session_new(struct gh_http_conn *c, gh_h2_kick_cb kick, void *kick_data)
{
    struct gh_h2 *h = calloc(1, sizeof *h);
    nghttp2_option *opt = NULL;
    nghttp2_session_callbacks *cb = NULL;
    int rv = -1;

    if (!h)
        return NULL;
    h->c = c;
    h->lim = &gh_http_options(c->worker)->limits;
    h->kick = kick;
    h->kick_data = kick_data;
    h->reset_tokens = (uint64_t)h->lim->h2_resets_per_10s * 10000;
    h->reset_at_ms = h->idle_since_ms = h2_now(h);
    if (!(opt = h2_options(h->lim)) || !(cb = h2_callbacks()) ||
        nghttp2_session_server_new2(&h->ng, cb, h, opt) != 0)
        goto out;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h->lim->h2_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)h->lim->header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
        goto out;
    rv = 0;
out:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv) {
        nghttp2_session_del(h->ng);
        free(h);
        return NULL;
    }
    return h;
}

void gh_h2_session_free(struct gh_h2 *h)
{
    if (!h)
        return;
    /* the handler may still answer other requests from on_done: nghttp2 stays until the end */
    while (h->streams)
        h2_stream_end(h, h->streams, 0);
    h->freeing = 1;
    nghttp2_session_del(h->ng);
    free(h);
}

int gh_h2_session_feed(struct gh_h2 *h, const uint8_t *in, size_t len)
{
    ssize_t rv;

    if (h->fatal)
        return -1;
    rv = nghttp2_session_mem_recv(h->ng, in, len);
    if (rv < 0) {
        struct gh_http_worker *w = h->c->worker;
        if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
            gh_http_count_limit(w, GH_HTTP_LIMIT_H2_FLOOD);
        else if (rv != NGHTTP2_ERR_NOMEM && rv != NGHTTP2_ERR_CALLBACK_FAILURE)
            gh_http_count(&gh_http_metrics_of(w)->malformed);
        h->fatal = 1;
        return -1;
    }
    /* only now: a stream reset anywhere in this chunk is closed already and never dispatched */
    h2_dispatch_ready(h);
    return 0;
}

void gh_h2_session_run(struct gh_h2 *h)
{
    struct h2_stream *s, *next;

    if (h->body_due) {
        h->body_due = 0;
        for (s = h->streams; s; s = next) {
            next = s->next;
            if (s->body_due) {
                s->body_due = 0;
                h2_body_flush(s);
            }
        }
    }
    if (h->writable_due) {
        h->writable_due = 0;
        for (s = h->streams; s; s = next) {
            next = s->next;
            if (s->writable_due && s->r) {
                s->writable_due = 0;
                s->want_writable = 0;
                gh_http_req_writable(s->r);
            }
        }
    }
}

ssize_t gh_h2_session_pull(struct gh_h2 *h, const uint8_t **out)
{
    ssize_t n;

    if (h->fatal)
        return -1;
    n = nghttp2_session_mem_send(h->ng, out);
    if (n < 0) {
        h->fatal = 1;
        return -1;
    }
    return n;
}

int gh_h2_session_finished(const struct gh_h2 *h)
{
    if (h->fatal)
        return 1;
    if (nghttp2_session_want_write(h->ng))
        return 0;
    return !nghttp2_session_want_read(h->ng) || (h->closing && !h->n_streams) ||
           (h->draining && !h->n_streams);
}

unsigned gh_h2_session_streams(const struct gh_h2 *h)
{
    return h->n_streams;
}

uint64_t gh_h2_session_timeouts(struct gh_h2 *h, uint64_t now)
{
    const struct gh_http_limits *lim = h->lim;
    uint64_t next = 0, due;

    if (h->closing || h->fatal)
        return UINT64_MAX;
    if (!h->n_streams) {
        due = h->idle_since_ms + lim->idle_ms;
        if (due > now)
            return due;
        gh_http_count(&gh_http_metrics_of(h->c->worker)->idle_closed);
        gh_h2_session_terminate(h, NGHTTP2_NO_ERROR);
        return UINT64_MAX;
    }
    for (struct h2_stream *s = h->streams; s; s = s->next) {
        if (!s->headers_done) {
            /* a header block arrives whole (CONTINUATION is contiguous): the connection waits */
            if ((due = s->head_since_ms + lim->head_ms) <= now) {
                gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_HEAD_TIMEOUT);
                gh_h2_session_terminate(h, NGHTTP2_NO_ERROR);
                return UINT64_MAX;
            }
        } else if (s->r && s->body_started && !s->body_paused && !s->body_done && !s->body_fail &&
                   !s->end_stream_in && !s->in_len) {
            if (s->body_progress_ms < s->head_since_ms)
                s->body_progress_ms = s->head_since_ms;
            if ((due = s->body_progress_ms + lim->body_ms) <= now) {
                gh_http_count_limit(h->c->worker, GH_HTTP_LIMIT_BODY_TIMEOUT);
                h2_body_fail(s, GH_HTTP_BODY_TIMEOUT);
                continue;
            }
        } else {
            continue;
        }
        if (!next || due < next)
            next = due;
    }
    return next;
}

void gh_h2_session_drain(struct gh_h2 *h)
{
    if (h->draining || h->closing || h->fatal)
        return;
    h->draining = 1;
    h->own_goaway = 1;
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    h2_kick(h);
}

void gh_h2_session_terminate(struct gh_h2 *h, uint32_t error_code)
{
    if (h->closing || h->fatal)
        return;
    h->closing = 1;
    h->own_goaway = 1;
    if (nghttp2_session_terminate_session(h->ng, error_code) != 0)
        h->fatal = 1;
    h2_kick(h);
}
