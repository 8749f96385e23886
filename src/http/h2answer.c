// SPDX-License-Identifier: Apache-2.0
/*
 * HTTP/2 answers and the handler's control of its request body, called by request.c through
 * gh_http_proto: each stream's answer is a bounded buffer its nghttp2 data provider reads from
 * (the handler is told to wait above a high mark and called back under a low one), names are
 * lower-cased and what HTTP/2 forbids or the front end writes itself is dropped. Apart from
 * h2session.c only to keep each file readable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "http/h2stream.h"

static struct h2_stream *h2_stream_of_req(struct gh_http_request *req)
{
    return ((struct gh_http_req_impl *)req)->proto_req;
}

static ssize_t h2_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2_stream *s = src->ptr;
    struct gh_h2 *h = ud;
    size_t n = len < s->out_len ? len : s->out_len;
    (void)ng;
    (void)id;

    if (!n && !s->out_last) {
        s->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n)
        memcpy(buf, s->out + s->out_start, n);
    s->out_start += n;
    s->out_len -= n;
    h->out_buffered -= n;
    if (!s->out_len) {
        s->out_start = 0;
        if (s->out_last)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    if (h->out_blocked && h->out_buffered < H2_CONN_OUT_LOW) {
        /* the connection has room again: every stream told to wait may go on */
        h->out_blocked = 0;
        for (struct h2_stream *o = h->streams; o != NULL; o = o->next)
            if (o->want_writable && o->out_len < H2_OUT_LOW && !o->writable_due) {
                o->writable_due = 1;
                h->writable_due = 1;
            }
        h2_kick(h);
    } else if (!h->out_blocked && s->want_writable && s->out_len < H2_OUT_LOW && !s->writable_due) {
        s->writable_due = 1;
        h->writable_due = 1;
        h2_kick(h);
    }
    return (ssize_t)n;
}

static int h2_keep_field(const struct gh_http_header *f, char *lc)
{
    for (size_t i = 0; i < f->name_len; i++) {
        char ch = f->name[i];
        lc[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    return f->name_len && lc[0] != ':' && !gh_http_front_owned(lc, f->name_len) &&
           nghttp2_check_header_name((const uint8_t *)lc, f->name_len) &&
           nghttp2_check_header_value((const uint8_t *)f->value, f->value_len);
}

#define H2_NV(n, v, nl, vl)                                                                        \
    ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), nl, vl, NGHTTP2_NV_FLAG_NONE})

int gh_h2_respond_start(struct gh_http_request *req, int status,
                        const struct gh_http_header *headers, size_t n, int64_t content_length)
{
    struct gh_http_req_impl *r = (struct gh_http_req_impl *)req;
    struct h2_stream *s = h2_stream_of_req(req);
    const char *server = gh_http_options(req->worker)->server_name, *date = gh_http_date();
    char code[8], cl[24], lc_here[1024];
    nghttp2_nv nva_here[32];
    size_t names = 0, k = 0;
    int rv = GH_ERR_NOMEM;

    if (!s || s->answer_started || status < 200 || status > 999)
        return GH_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++)
        names += headers[i].name_len;
    /* most answers' heads fit on the stack; nghttp2 copies them */
    nghttp2_nv *nva = n + 4 <= 32 ? nva_here : malloc((n + 4) * sizeof *nva);
    char *lc = names < sizeof lc_here ? lc_here : malloc(names + 1), *at = lc;
    if (!nva || !lc)
        goto out;
    snprintf(code, sizeof code, "%d", status);
    nva[k++] = H2_NV(":status", code, 7, strlen(code));
    for (size_t i = 0; i < n; i++) {
        if (h2_keep_field(&headers[i], at))
            nva[k++] = H2_NV(at, headers[i].value, headers[i].name_len, headers[i].value_len);
        at += headers[i].name_len;
    }
    nva[k++] = H2_NV("date", date, 4, strlen(date));
    if (server)
        nva[k++] = H2_NV("server", server, 6, strlen(server));
    if (content_length >= 0) {
        snprintf(cl, sizeof cl, "%lld", (long long)content_length);
        nva[k++] = H2_NV("content-length", cl, 14, strlen(cl));
    }
    s->has_provider = !r->is_head && content_length != 0;
    s->out_cl = content_length;
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = h2_read_body};
    if (nghttp2_submit_response(s->h->ng, s->id, nva, k, s->has_provider ? &dp : NULL) != 0) {
        rv = GH_ERR_IO;
        goto out;
    }
    s->answer_started = 1;
    h2_kick(s->h);
    rv = GH_OK;
out:
    if (nva != nva_here)
        free(nva);
    if (lc != lc_here)
        free(lc);
    return rv;
}

static int h2_out_append(struct h2_stream *s, const void *data, size_t len)
{
    if (s->out && s->out_start + s->out_len + len > s->out_cap) {
        memmove(s->out, s->out + s->out_start, s->out_len);
        s->out_start = 0;
    }
    if (s->out_len + len > s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap : 4096;
        while (cap < s->out_len + len)
            cap *= 2;
        char *n = realloc(s->out, cap);
        if (!n)
            return -1;
        s->out = n;
        s->out_cap = cap;
    }
    memcpy(s->out + s->out_start + s->out_len, data, len);
    s->out_len += len;
    return 0;
}

int gh_h2_respond_write(struct gh_http_request *req, const void *data, size_t len, int last)
{
    struct h2_stream *s = h2_stream_of_req(req);

    if (!s || !s->answer_started || s->out_last || s->aborted)
        return -1;
    if (!s->has_provider) {
        /* HEAD, or an empty answer that ended with its head */
        if (len && s->out_cl == 0 && !((struct gh_http_req_impl *)req)->is_head)
            goto cut;
        s->out_last = last;
        return 1;
    }
    if ((s->out_cl >= 0 && s->out_total + len > (uint64_t)s->out_cl) ||
        (last && s->out_cl >= 0 && s->out_total + len != (uint64_t)s->out_cl))
        goto cut; /* never a short or long answer that looks whole */
    if (len && h2_out_append(s, data, len))
        goto cut;
    s->out_total += len;
    s->h->out_buffered += len;
    s->out_last = last;
    if (s->deferred) {
        s->deferred = 0;
        nghttp2_session_resume_data(s->h->ng, s->id);
    }
    h2_kick(s->h);
    if (s->h->out_buffered >= H2_CONN_OUT_HIGH)
        s->h->out_blocked = 1;
    if (s->out_len < H2_OUT_HIGH && !s->h->out_blocked)
        return 1;
    s->want_writable = 1;
    return 0;
cut:
    gh_h2_respond_abort(req);
    return -1;
}

void gh_h2_respond_abort(struct gh_http_request *req)
{
    struct h2_stream *s = h2_stream_of_req(req);

    if (!s || s->aborted)
        return;
    s->aborted = 1;
    nghttp2_submit_rst_stream(s->h->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    h2_kick(s->h);
}

void gh_h2_body_start(struct gh_http_request *req)
{
    struct h2_stream *s = h2_stream_of_req(req);
    static const nghttp2_nv cont[] = {{(uint8_t *)":status", (uint8_t *)"100", 7, 3, 0}};

    if (!s || s->body_started)
        return;
    s->body_started = 1;
    s->body_progress_ms = h2_now(s->h);
    /* announced larger than allowed: refused once the handler wants it (after its credential
     * check, as HTTP/1 does), and not read */
    if (req->content_length > 0 && (uint64_t)req->content_length > s->h->lim->max_body) {
        gh_http_count_limit(req->worker, GH_HTTP_LIMIT_BODY);
        h2_body_fail(s, GH_HTTP_BODY_TOO_LARGE);
        return;
    }
    if (s->expect_continue && !s->answer_started)
        nghttp2_submit_headers(s->h->ng, NGHTTP2_FLAG_NONE, s->id, NULL, cont, 1, NULL);
    h2_body_due(s);
}

void gh_h2_body_pause(struct gh_http_request *req)
{
    struct h2_stream *s = h2_stream_of_req(req);

    if (s)
        s->body_paused = 1;
}

void gh_h2_body_resume(struct gh_http_request *req)
{
    struct h2_stream *s = h2_stream_of_req(req);

    if (!s || !s->body_paused)
        return;
    s->body_paused = 0;
    s->body_progress_ms = h2_now(s->h);
    h2_consume(s, s->unconsumed);
    s->unconsumed = 0;
    h2_body_due(s);
}
