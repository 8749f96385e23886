// SPDX-License-Identifier: Apache-2.0
/*
 * What h2session.c (the session: heads, dispatch, bodies in, stream ends) and h2answer.c (answers
 * out, body reading controls) share about an HTTP/2 connection and its streams. Private to those
 * two files.
 */
#ifndef GH_HTTP_H2STREAM_H
#define GH_HTTP_H2STREAM_H

#include <nghttp2/nghttp2.h>

#include "http/h2session.h"

#define H2_STREAM_WINDOW (64u * 1024)  /* SETTINGS_INITIAL_WINDOW_SIZE: body held per stream */
#define H2_CONN_WINDOW   (256u * 1024) /* body held per connection, over all its streams */
#define H2_OUT_HIGH      (64u * 1024)  /* answer bytes buffered per stream before "wait" */
#define H2_OUT_LOW       (16u * 1024)  /* ... and under which on_writable is called */
/* Answer bytes buffered on one connection, all streams together: without it a client that reads
 * nothing could make one connection hold streams x H2_OUT_HIGH (6.4 MiB at 100 streams). Over the
 * high mark every stream waits; under the low one they are called back. */
/* A header block that decodes to more than this many times the header limit ends its
 * connection: HPACK lets a few bytes stand for a large field, so a 14 KB request can decode to
 * 40 MB (10,000 references to one 4 KB cookie), and answering 431 after decoding it all would let
 * one client keep a worker busy with a stream of them. Up to the factor (1 MiB at the default limit)
 * the request still gets its 431, which tells an honest client what to fix. */
#define H2_DECODED_FACTOR    16
#define H2_CONN_OUT_HIGH     (256u * 1024)
#define H2_CONN_OUT_LOW      (128u * 1024)
#define H2_MAX_SETTINGS      16           /* entries per SETTINGS frame (7 are defined) */
#define H2_MAX_ACKS          128          /* SETTINGS/PING acks queued before "flood" */
#define H2_MAX_HEAD_OUT      (64u * 1024) /* an answer's header block */
#define H2_MAX_CONTINUATIONS 8
#define H2_FIELD_OVERHEAD    32 /* RFC 9113 6.5.2: a field's size is name + value + 32 */

enum { PS_METHOD, PS_SCHEME, PS_AUTHORITY, PS_PATH, PS_COUNT };

struct h2_field {
    size_t name_off, name_len, value_off, value_len;
};

struct h2_stream {
    struct gh_h2 *h;
    int32_t id;
    struct gh_http_req_impl *r; /* from dispatch to close */
    struct h2_stream *prev, *next, *ready_next;
    int ready; /* waits in the dispatch list */

    /* the head as it arrives (freed at dispatch): names and values back to back */
    char *hbuf;
    size_t hlen, hcap;
    struct h2_field *hf;
    size_t nhf, hfcap;
    size_t ps_off[PS_COUNT], ps_len[PS_COUNT];
    unsigned ps_set;
    size_t head_bytes, head_count;
    size_t decoded; /* every field's size, kept or not: what decoding this head has cost */
    const struct gh_http_refusal *refusal;
    uint64_t started_ns, head_since_ms;
    int headers_done, end_stream_in, client_reset, aborted;

    /* the body: bytes held while not started or paused (at most one window) */
    char *in;
    size_t in_len, in_cap;
    size_t unconsumed; /* delivered while paused: the window reopens on resume */
    uint64_t body_in, body_progress_ms;
    int body_started, body_paused, body_done, body_fail, body_due, expect_continue;

    /* the answer */
    char *out;
    size_t out_start, out_len, out_cap;
    int64_t out_cl;
    uint64_t out_total;
    int answer_started, has_provider, out_last, deferred, answer_sent;
    int want_writable, writable_due;
};

struct gh_h2 {
    nghttp2_session *ng;
    struct gh_http_conn *c;
    const struct gh_http_limits *lim;
    gh_h2_kick_cb kick;
    void *kick_data;
    struct h2_stream *streams, *ready_head, *ready_tail;
    unsigned n_streams;
    uint64_t reset_tokens, reset_at_ms, idle_since_ms;
    int fatal, closing, draining, freeing, own_goaway, body_due, writable_due;
    size_t out_buffered; /* answer bytes of every stream, not yet taken by nghttp2 */
    int out_blocked;     /* over H2_CONN_OUT_HIGH: streams were told to wait */
};

static inline uint64_t h2_now(const struct gh_h2 *h)
{
    return gh_loop_now_ms(h->c->worker->loop);
}

static inline void h2_kick(struct gh_h2 *h)
{
    if (h->kick && !h->freeing)
        h->kick(h, h->kick_data);
}

static inline struct h2_stream *h2_stream_of(struct gh_h2 *h, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h->ng, id);
}

static inline void h2_consume(struct h2_stream *s, size_t n)
{
    if (n)
        nghttp2_session_consume(s->h->ng, s->id, n);
}

static inline void h2_body_due(struct h2_stream *s)
{
    s->body_due = 1;
    s->h->body_due = 1;
    h2_kick(s->h);
}

/* A failure: what is held is dropped (its connection window given back), later DATA too. */
static inline void h2_body_fail(struct h2_stream *s, int state)
{
    if (s->body_fail || s->body_done)
        return;
    s->body_fail = state;
    nghttp2_session_consume_connection(s->h->ng, s->in_len);
    s->in_len = 0;
    h2_body_due(s);
}

#endif
