// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP/2 server session (src/http/h2session.c) fed by the fuzzer as a client's bytes, without
 * a socket: nghttp2 with our options and callbacks, the header-list limits, the dispatch after a
 * whole read, the reset budget, bodies held and delivered, answers pulled out. A handler answers
 * every request (whole, streamed, after reading the body, or the front end's refusal). The
 * session needs a worker (limits, metrics, handler), so one real server with one worker runs on
 * 127.0.0.1 and each input is run on that worker's thread through a posted message, as the
 * session's rules want (everything on the worker's thread).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h2session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static struct gh_http_metrics metrics;
static struct gh_http_worker *worker;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

struct job {
    struct gh_loop_msg msg;
    const uint8_t *data;
    size_t len;
    int done;
};

struct fz_state {
    size_t got;
};

static void fz_answer(struct gh_http_request *req, int status, const char *body)
{
    struct gh_http_header h[] = {{"Content-Type", "text/plain", 12, 10},
                                 {"Connection", "close", 10, 5},
                                 {"X-Bad", "a\r\nb", 5, 4}};
    gh_http_respond(req, status, h, 3, body, strlen(body));
}

static void fz_on_request(void *ctx, struct gh_http_request *req)
{
    static char big[70000];
    (void)ctx;

    if (req->refusal) {
        fz_answer(req, req->refusal->status, req->refusal->code);
        return;
    }
    switch (req->path_len > 1 ? req->path[1] : 0) {
    case 'b': /* the body first */
        gh_http_body_start(req);
        break;
    case 'p': /* the body, paused at once and resumed from on_body's end */
        gh_http_body_start(req);
        gh_http_body_pause(req);
        gh_http_body_resume(req);
        break;
    case 's': /* streamed, past the high mark */
        gh_http_respond_start(req, 200, NULL, 0, -1);
        if (gh_http_respond_write(req, big, sizeof big, 0) == 1)
            gh_http_respond_write(req, "x", 1, 0);
        gh_http_respond_write(req, "end", 3, 1);
        break;
    case 'l': /* an announced length that is not kept */
        gh_http_respond_start(req, 200, NULL, 0, 10);
        gh_http_respond_write(req, "short", 5, 1);
        break;
    case 'a':
        gh_http_respond_start(req, 200, NULL, 0, -1);
        gh_http_respond_abort(req);
        break;
    case 'n': /* never answered: ended when the session ends */
        break;
    default:
        fz_answer(req, 200, "ok");
    }
}

static void fz_on_body(void *ctx, struct gh_http_request *req, const char *data, size_t len,
                       int state)
{
    struct fz_state *st = req->state;
    (void)ctx;
    (void)data;

    st->got += len;
    if (st->got > 1000 && state == 0)
        gh_http_body_pause(req);
    if (state != 0)
        fz_answer(req, state == 1 ? 200 : 413, "done");
}

static void fz_on_writable(void *ctx, struct gh_http_request *req)
{
    (void)ctx;
    gh_http_respond_write(req, "more", 4, 1);
}

static void fz_on_done(void *ctx, struct gh_http_request *req, int completed)
{
    (void)ctx;
    (void)req;
    (void)completed;
}

static const struct gh_http_handler fz_handler = {fz_on_request, fz_on_body, fz_on_writable,
                                                  fz_on_done};

static void *fz_worker_init(void *ctx, struct gh_http_worker *w)
{
    (void)ctx;
    pthread_mutex_lock(&lock);
    worker = w;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void fz_kick(struct gh_h2 *h, void *data)
{
    (void)h;
    (void)data;
}

/* Runs owed work and takes the output until there is none (bounded: a session can always send). */
static int fz_drain(struct gh_h2 *h)
{
    const uint8_t *p;

    for (int i = 0; i < 1000; i++) {
        gh_h2_session_run(h);
        ssize_t n = gh_h2_session_pull(h, &p);
        if (n <= 0)
            return n < 0 ? -1 : 0;
    }
    return 0;
}

/* h2conn.c's vtable without its socket side: drain and cut are the fuzzer's own calls */
static void fz_conn_noop(struct gh_http_conn *c)
{
    (void)c;
}

static const struct gh_http_proto fz_proto = {
    .name = "h2",
    .respond_start = gh_h2_respond_start,
    .respond_write = gh_h2_respond_write,
    .respond_abort = gh_h2_respond_abort,
    .body_start = gh_h2_body_start,
    .body_pause = gh_h2_body_pause,
    .body_resume = gh_h2_body_resume,
    .drain = fz_conn_noop,
    .cut = fz_conn_noop,
};

static void fz_run(struct gh_loop_msg *msg)
{
    struct job *j = msg->data;
    struct gh_http_conn *c = calloc(1, sizeof *c);
    struct gh_h2 *h = NULL;

    if (!c)
        abort();
    c->worker = worker;
    c->tls = 1;
    c->proto = &fz_proto;
    if (!(h = gh_h2_session_new(c, fz_kick, NULL)))
        abort();
    /* the input in reads of 1 to 256 bytes, sized by the bytes themselves */
    for (size_t at = 0; at < j->len;) {
        size_t n = 1 + j->data[at] % 256;
        if (n > j->len - at)
            n = j->len - at;
        if (gh_h2_session_feed(h, j->data + at, n) < 0 || fz_drain(h) < 0)
            break;
        at += n;
    }
    uint64_t now = gh_loop_now_ms(worker->loop);
    gh_h2_session_timeouts(h, now + 40000); /* body timeouts */
    fz_drain(h);
    gh_h2_session_drain(h);
    fz_drain(h);
    gh_h2_session_timeouts(h, now + 4000000); /* idle */
    fz_drain(h);
    gh_h2_session_free(h);
    free(c);
    pthread_mutex_lock(&lock);
    j->done = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void fz_start(void)
{
    static struct gh_http_server *server;
    char error[256];
    struct gh_http_server_options o = {
        .listen = "127.0.0.1:0",
        .threads = 1,
        .limits = {.max_body = 4096,
                   .header_bytes = 8192,
                   .header_count = 20,
                   .h2_streams = 8,
                   .h2_resets_per_10s = 10},
        .server_name = "gatehouse",
        .handler = &fz_handler,
        .state_size = sizeof(struct fz_state),
        .worker_init = fz_worker_init,
        .metrics = &metrics,
    };

    if (gh_http_server_start(&o, &server, error, sizeof error) != 0) {
        fprintf(stderr, "fuzz_h2session: %s\n", error);
        abort();
    }
    pthread_mutex_lock(&lock);
    while (!worker)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct job j = {.data = data, .len = len};

    pthread_once(&once, fz_start);
    j.msg.cb = fz_run;
    j.msg.data = &j;
    if (!gh_loop_post(worker->loop, &j.msg))
        abort();
    pthread_mutex_lock(&lock);
    while (!j.done)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return 0;
}
