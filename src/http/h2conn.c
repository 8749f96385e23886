// SPDX-License-Identifier: Apache-2.0
/*
 * An HTTP/2 client connection: h2session.c's session tied to the connection's gh_sock, its timer
 * and a deferred call. Input goes to the session as it arrives and is consumed whole; output is
 * pulled from nghttp2 only while the socket's buffer is under a high mark, so a client that does
 * not read makes nghttp2 queue (and its own limits end a flood) instead of this buffer growing.
 * Work the handler causes (answers, window updates) is sent from the deferred call at the end of
 * the loop's turn, never from inside the handler's call.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "http/h2session.h"

#define H2_SOCK_HIGH    (64u * 1024) /* socket output buffered before we stop pulling from nghttp2 */
#define H2_FLUSH_ROUNDS 8            /* handler work run in one flush before yielding to the loop */
#define H2_LINGER_MS    5000         /* a GOAWAY the client does not read: closed anyway */

struct h2conn {
    struct gh_http_conn *c;
    struct gh_h2 *h;
    struct gh_defer flush;
    int in_flush, kicked, closed;
};

static struct gh_http_conn *h2conn_of_sock(struct gh_sock *s)
{
    return (struct gh_http_conn *)((char *)s - offsetof(struct gh_http_conn, sock));
}

static void h2conn_close(struct h2conn *g)
{
    struct gh_http_conn *c = g->c;

    if (g->closed)
        return;
    g->closed = 1;
    gh_defer_cancel(c->sock.loop, &g->flush);
    gh_timer_disarm(c->sock.loop, &c->timer);
    gh_sock_read_stop(&c->sock);
    gh_h2_session_free(g->h); /* ends the requests left: on_done with completed 0 */
    g->h = NULL;
    c->proto_state = NULL;
    free(g);
    gh_http_conn_free(c);
}

static void h2conn_arm(struct h2conn *g)
{
    const struct gh_http_limits *lim = &gh_http_options(g->c->worker)->limits;
    uint32_t ms;

    if (gh_timer_armed(&g->c->timer))
        return;
    if (gh_h2_session_streams(g->h))
        ms = lim->head_ms < lim->body_ms ? lim->head_ms : lim->body_ms;
    else
        ms = lim->idle_ms;
    gh_timer_arm(g->c->sock.loop, &g->c->timer, ms);
}

static void h2conn_on_written(struct gh_sock *s, int status);

/* Frames are small (a HEADERS of a few dozen bytes, a WINDOW_UPDATE of 13): gathered here and
 * handed to the socket together, they make one send and one TLS record instead of one each. The
 * buffer is the thread's: it is always empty when h2conn_pump returns. */
static _Thread_local uint8_t h2_stage[16384];

/* Takes what nghttp2 has to send while the socket's buffer is under its mark; -1 on failure. */
static int h2conn_pump(struct h2conn *g)
{
    struct gh_sock *sock = &g->c->sock;
    size_t staged = 0;
    ssize_t n = 0;

    while (gh_sock_pending(sock) + staged < H2_SOCK_HIGH) {
        const uint8_t *p;
        if ((n = gh_h2_session_pull(g->h, &p)) <= 0)
            break;
        if (staged + (size_t)n > sizeof h2_stage || (size_t)n > sizeof h2_stage / 2) {
            struct iovec iov[2] = {{h2_stage, staged}, {(void *)p, (size_t)n}};
            if (gh_sock_write(sock, iov, 2, h2conn_on_written) != 0)
                return -1;
            staged = 0;
            continue;
        }
        memcpy(h2_stage + staged, p, (size_t)n);
        staged += (size_t)n;
    }
    if (staged) {
        struct iovec iov = {h2_stage, staged};
        if (gh_sock_write(sock, &iov, 1, h2conn_on_written) != 0)
            return -1;
    }
    return n < 0 ? -1 : 0;
}

/* Runs the handler's work and sends what nghttp2 has, then closes when it is all over. */
static void h2conn_send(struct h2conn *g)
{
    struct gh_sock *sock = &g->c->sock;

    g->in_flush = 1;
    for (int round = 0; round < H2_FLUSH_ROUNDS; round++) {
        g->kicked = 0;
        gh_h2_session_run(g->h);
        if (h2conn_pump(g) < 0)
            goto close;
        if (!g->kicked)
            break;
    }
    g->in_flush = 0;
    if (g->kicked)
        gh_defer_schedule(sock->loop, &g->flush);
    if (gh_h2_session_finished(g->h)) {
        if (!gh_sock_pending(sock))
            goto close;
        gh_sock_read_stop(sock);
    }
    h2conn_arm(g);
    return;
close:
    g->in_flush = 0;
    h2conn_close(g);
}

static void h2conn_on_written(struct gh_sock *s, int status)
{
    struct h2conn *g = h2conn_of_sock(s)->proto_state;

    if (!g)
        return;
    if (status != GH_SOCK_OK)
        h2conn_close(g);
    else
        h2conn_send(g);
}

static void h2conn_on_defer(struct gh_defer *d)
{
    h2conn_send(d->data);
}

static void h2conn_kick(struct gh_h2 *h, void *data)
{
    struct h2conn *g = data;
    (void)h;

    g->kicked = 1;
    if (!g->in_flush && !g->closed)
        gh_defer_schedule(g->c->sock.loop, &g->flush);
}

static void h2conn_on_read(struct gh_sock *s, int status)
{
    struct h2conn *g = h2conn_of_sock(s)->proto_state;

    if (!g)
        return;
    if (s->in_len) {
        int rv = gh_h2_session_feed(g->h, (const uint8_t *)s->in, s->in_len);
        gh_sock_consume(s, s->in_len);
        if (rv < 0) {
            h2conn_close(g);
            return;
        }
    }
    if (status != GH_SOCK_OK) {
        /* the client went away: what it asked for cannot reach it */
        h2conn_close(g);
        return;
    }
    h2conn_send(g);
}

static void h2conn_on_timer(struct gh_timer *t)
{
    struct h2conn *g = t->data;
    uint64_t now = gh_loop_now_ms(g->c->sock.loop);
    uint64_t next;

    if (gh_h2_session_finished(g->h)) {
        h2conn_close(g); /* its GOAWAY was never read */
        return;
    }
    next = gh_h2_session_timeouts(g->h, now);
    if (next == UINT64_MAX) {
        gh_timer_arm(g->c->sock.loop, t, H2_LINGER_MS);
        h2conn_send(g);
        return;
    }
    if (next)
        gh_timer_arm(g->c->sock.loop, t, next - now);
    h2conn_send(g);
}

static void h2conn_drain(struct gh_http_conn *c)
{
    struct h2conn *g = c->proto_state;

    if (!g)
        return;
    gh_h2_session_drain(g->h);
    h2conn_send(g);
}

static void h2conn_cut(struct gh_http_conn *c)
{
    struct h2conn *g = c->proto_state;

    if (g)
        h2conn_close(g);
}

static const struct gh_http_proto gh_h2_proto = {
    .name = "h2",
    .respond_start = gh_h2_respond_start,
    .respond_write = gh_h2_respond_write,
    .respond_abort = gh_h2_respond_abort,
    .body_start = gh_h2_body_start,
    .body_pause = gh_h2_body_pause,
    .body_resume = gh_h2_body_resume,
    .drain = h2conn_drain,
    .cut = h2conn_cut,
};

void gh_h2_conn_start(struct gh_http_conn *c)
{
    struct h2conn *g = calloc(1, sizeof *g);

    if (g)
        g->h = gh_h2_session_new(c, h2conn_kick, g);
    if (!g || !g->h) {
        free(g);
        gh_http_conn_free(c);
        return;
    }
    g->c = c;
    g->flush.cb = h2conn_on_defer;
    g->flush.data = g;
    c->proto = &gh_h2_proto;
    c->proto_state = g;
    gh_timer_disarm(c->sock.loop, &c->timer);
    c->timer.cb = h2conn_on_timer;
    c->timer.data = g;
    gh_sock_read_start(&c->sock, h2conn_on_read);
    h2conn_send(g); /* our SETTINGS */
}
