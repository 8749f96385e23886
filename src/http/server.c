// SPDX-License-Identifier: Apache-2.0
/*
 * The front end's server: listening sockets shared by the workers (bound without SO_REUSEPORT:
 * see common/listen.h), one thread and gh_loop per worker, accepting within the connection
 * limits, the TLS handshake with its own timeout, the hand-over to HTTP/1.1 or HTTP/2 by ALPN, and
 * an orderly stop: close the listeners (new connections are refused, not left in a backlog), let
 * the protocols finish what runs, cut what is left after the drain period, join the workers.
 *
 * Connection limits exist because every connection costs a descriptor and memory: past the
 * process's open-file limit nothing can be accepted any more, the admin listener included, so the
 * total is kept under that limit (gh_http_fd_budget) and a connection over it is closed at once,
 * counted, rather than left to exhaust the table.
 */
#define _GNU_SOURCE /* accept4 */
#include "http/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"

#define MAX_THREADS        1024
#define ACCEPT_BATCH       16 /* connections one worker takes per turn before others may */
#define DRAIN_POLL_MS      50
#define CUT_GRACE_MS       2000 /* after the drain: how long cut connections get to close */
#define DEFAULT_FD_RESERVE 256  /* descriptors kept for stores, logs, upstreams, the admin API */

const char *const gh_http_limit_names[GH_HTTP_LIMIT_COUNT] = {
    "connections", "header_bytes", "header_count", "target",       "body",        "h2_streams",
    "h2_resets",   "h2_flood",     "head_timeout", "body_timeout", "tls_timeout",
};

struct gh_http_server {
    struct gh_http_server_options o;
    SSL_CTX *tls;
    struct gh_listen_set listen;
    struct gh_http_worker *workers;
    unsigned n_workers;
    atomic_int stopping;
    uint32_t drain_ms;
    atomic_uint open_conns; /* over every worker, against o.limits.conns_total */
};

void gh_http_limits_default(struct gh_http_limits *l)
{
    memset(l, 0, sizeof *l);
    l->header_bytes = 64 * 1024;
    l->header_count = 100;
    l->target_bytes = 8 * 1024;
    l->max_body = 8 * 1024 * 1024;
    l->h2_streams = 100;
    l->h2_resets_per_10s = 200;
    l->head_ms = 10000;
    l->idle_ms = 60000;
    l->body_ms = 30000;
    l->tls_handshake_ms = 10000;
}

static void fill_defaults(struct gh_http_limits *l)
{
    struct gh_http_limits d;

    gh_http_limits_default(&d);
#define DEFAULT(field)                                                                             \
    if (l->field == 0)                                                                             \
    l->field = d.field
    DEFAULT(header_bytes);
    DEFAULT(header_count);
    DEFAULT(target_bytes);
    DEFAULT(max_body);
    DEFAULT(h2_streams);
    DEFAULT(h2_resets_per_10s);
    DEFAULT(head_ms);
    DEFAULT(idle_ms);
    DEFAULT(body_ms);
    DEFAULT(tls_handshake_ms);
#undef DEFAULT
}

unsigned gh_http_fd_budget(unsigned reserve)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024 > reserve ? 1024 - reserve : 1;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    rlim_t budget = rl.rlim_cur > reserve ? rl.rlim_cur - reserve : 1;
    return budget > 1000000 ? 1000000 : (unsigned)budget;
}

/* ---- what the protocols read ---- */

const struct gh_http_server_options *gh_http_options(const struct gh_http_worker *w)
{
    return &w->server->o;
}

struct gh_http_metrics *gh_http_metrics_of(const struct gh_http_worker *w)
{
    return w->server->o.metrics;
}

void gh_http_count(atomic_uint_fast64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

void gh_http_count_limit(const struct gh_http_worker *w, enum gh_http_limit which)
{
    gh_http_count(&w->server->o.metrics->limits[which]);
}

struct gh_loop *gh_http_worker_loop(struct gh_http_worker *w)
{
    return w->loop;
}

unsigned gh_http_worker_index(const struct gh_http_worker *w)
{
    return w->index;
}

void *gh_http_worker_data(struct gh_http_worker *w)
{
    return w->data;
}

int gh_http_server_stopping(const struct gh_http_server *s)
{
    return atomic_load((atomic_int *)&s->stopping);
}

/* ---- connections ---- */

static void conn_link(struct gh_http_worker *w, struct gh_http_conn *c)
{
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
}

void gh_http_conn_free(struct gh_http_conn *c)
{
    struct gh_http_worker *w = c->worker;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->n_conns--;
    atomic_fetch_sub(&w->server->open_conns, 1);
    atomic_fetch_sub_explicit(&w->server->o.metrics->connections_open, 1, memory_order_relaxed);
    gh_timer_disarm(w->loop, &c->timer);
    gh_sock_close(&c->sock);
    free(c);
}

static void start_protocol(struct gh_http_conn *c)
{
    if (strcmp(gh_sock_alpn(&c->sock), "h2") == 0) {
        gh_http_count(&gh_http_metrics_of(c->worker)->connections_http2);
        gh_h2_conn_start(c);
    } else {
        gh_h1_conn_start(c);
    }
}

static void on_handshake_timeout(struct gh_timer *t)
{
    struct gh_http_conn *c = t->data;

    gh_http_count_limit(c->worker, GH_HTTP_LIMIT_TLS_TIMEOUT);
    gh_http_conn_free(c);
}

static void on_handshake(struct gh_sock *sock, int status)
{
    struct gh_http_conn *c = sock->data;

    gh_timer_disarm(c->worker->loop, &c->timer);
    if (status != GH_SOCK_OK) {
        gh_http_count(&gh_http_metrics_of(c->worker)->tls_handshake_failures);
        gh_http_conn_free(c);
        return;
    }
    start_protocol(c);
}

/* The input bound of a client connection: a whole request head, plus room to see past it. */
static size_t input_bound(const struct gh_http_server *s)
{
    return s->o.limits.header_bytes + 16 * 1024;
}

static void take_conn(struct gh_http_worker *w, int fd)
{
    struct gh_http_server *s = w->server;
    struct gh_http_conn *c = calloc(1, sizeof *c);
    int one = 1;

    if (c == NULL) {
        close(fd);
        return;
    }
    c->worker = w;
    c->peer_len = sizeof c->peer;
    if (getpeername(fd, (struct sockaddr *)&c->peer, &c->peer_len) != 0)
        c->peer_len = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (gh_sock_init(&c->sock, w->loop, fd, input_bound(s)) != GH_OK) {
        free(c);
        return;
    }
    c->sock.data = c;
    c->timer.data = c;
    conn_link(w, c);
    atomic_fetch_add(&s->open_conns, 1);
    atomic_fetch_add_explicit(&s->o.metrics->connections_open, 1, memory_order_relaxed);
    gh_http_count(&s->o.metrics->connections_total);
    if (s->tls == NULL) {
        start_protocol(c);
        return;
    }
    c->tls = 1;
    c->timer.cb = on_handshake_timeout;
    gh_timer_arm(w->loop, &c->timer, s->o.limits.tls_handshake_ms);
    if (gh_sock_tls_accept(&c->sock, s->tls, on_handshake) != GH_OK) {
        gh_http_count(&s->o.metrics->tls_handshake_failures);
        gh_http_conn_free(c);
    }
}

/* 1 when one more connection stays within the worker's and the process's limits. */
static int within_limits(struct gh_http_worker *w)
{
    const struct gh_http_limits *l = &w->server->o.limits;

    return w->n_conns < l->conns_per_worker && atomic_load(&w->server->open_conns) < l->conns_total;
}

/* Takes one connection waiting on `fd_listening`; 0 when none waits (or accept failed in a way
 * the next edge retries). A connection over the limits is accepted and closed at once: the kernel
 * would otherwise keep it in the backlog, where it waits unanswered. */
static int accept_one(struct gh_http_worker *w, int fd_listening)
{
    for (;;) {
        int fd = accept4(fd_listening, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                gh_http_count_limit(w, GH_HTTP_LIMIT_CONNECTIONS); /* still in the backlog */
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return 0; /* EAGAIN: nothing more; anything else: the next edge retries */
        }
        if (!within_limits(w)) {
            gh_http_count_limit(w, GH_HTTP_LIMIT_CONNECTIONS);
            close(fd);
            return 1;
        }
        take_conn(w, fd);
        return 1;
    }
}

/* Edge-triggered: the listener's readiness is reported once, so this takes what is waiting, up
 * to a batch (kicking itself for the rest next turn, so one worker does not take a whole burst
 * while others idle). */
static void on_listener(struct gh_io *io, unsigned events)
{
    struct gh_http_worker *w = io->data;

    (void)events;
    for (int i = 0; i < ACCEPT_BATCH; i++)
        if (!accept_one(w, io->fd))
            return;
    gh_io_kick(io, GH_IO_READ);
}

/* ---- the worker ---- */

static void close_listeners(struct gh_http_worker *w)
{
    for (size_t a = 0; a < w->n_listeners; a++) {
        gh_io_stop(&w->listeners[a]);
        close(w->listeners[a].fd);
    }
    w->n_listeners = 0;
    for (size_t a = 0; a < GH_LISTEN_MAX; a++) {
        if (w->listen_fds[a] >= 0)
            close(w->listen_fds[a]);
        w->listen_fds[a] = -1;
    }
}

static int worker_busy(struct gh_http_worker *w)
{
    const struct gh_http_server_options *o = &w->server->o;

    return w->conns != NULL ||
           (o->worker_idle != NULL && !o->worker_idle(o->handler_ctx, w, w->data));
}

/* Connections the kernel completed before the drain are the clients' as much as those we took:
 * closing the listener would reset them, requests sent included. Take them (within the limits),
 * so they are drained like the others. */
static void take_backlog(struct gh_http_worker *w)
{
    for (size_t a = 0; a < w->n_listeners; a++)
        while (accept_one(w, w->listeners[a].fd))
            ;
}

static void drain(struct gh_http_worker *w)
{
    uint64_t deadline = gh_monotonic_ms() + w->server->drain_ms, cut_at = 0;

    w->draining = 1;
    gh_loop_update_time(w->loop); /* the drain's grace periods count from now */
    take_backlog(w);
    close_listeners(w);
    for (struct gh_http_conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->proto != NULL)
            c->proto->drain(c); /* may free c */
        else
            gh_http_conn_free(c); /* still in its TLS handshake */
    }
    while (worker_busy(w)) {
        gh_loop_run_once(w->loop, DRAIN_POLL_MS);
        uint64_t now = gh_monotonic_ms();
        if (cut_at == 0 && now >= deadline) {
            cut_at = now;
            for (struct gh_http_conn *c = w->conns, *next; c != NULL; c = next) {
                next = c->next;
                c->proto->cut(c);
            }
        } else if (cut_at != 0 && now >= cut_at + CUT_GRACE_MS) {
            gh_log(GH_LOG_WARN, "a worker's work did not finish after its connections were cut",
                   json_pack("{s:i}", "worker", (int)w->index));
            return;
        }
    }
}

static void *worker_main(void *arg)
{
    struct gh_http_worker *w = arg;
    struct gh_http_server *s = w->server;

    for (size_t a = 0; a < s->listen.n; a++) {
        if (gh_io_start(w->loop, &w->listeners[a], w->listen_fds[a], on_listener, w) != GH_OK)
            continue;
        w->listen_fds[a] = -1; /* the io's now */
        w->n_listeners++;
    }
    while (!atomic_load(&s->stopping))
        gh_loop_run_once(w->loop, -1);
    drain(w);
    for (struct gh_http_conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        c->proto->cut(c); /* what the grace period could not end */
    }
    if (s->o.worker_fini != NULL)
        s->o.worker_fini(s->o.handler_ctx, w, w->data);
    gh_loop_close_posts(w->loop);
    gh_loop_run_once(w->loop, 0); /* messages posted before the close */
    return NULL;
}

/* Each worker's loop and data are made on the starting thread, so a failure is an error of
 * gh_http_server_start; the loop is then only run by its worker. */
static int prepare_worker(struct gh_http_server *s, struct gh_http_worker *w, char *error,
                          size_t cap)
{
    for (size_t a = 0; a < s->listen.n; a++) {
        if ((w->listen_fds[a] = fcntl(s->listen.fds[a], F_DUPFD_CLOEXEC, 0)) < 0) {
            gh_error_format(error, cap, "cannot share the listener of %s: %s",
                            s->listen.addresses[a], strerror(errno));
            return GH_ERR_IO;
        }
    }
    if (gh_loop_new(&w->loop) != GH_OK) {
        gh_error_format(error, cap, "cannot make an event loop for a worker");
        return GH_ERR_IO;
    }
    if (s->o.worker_init != NULL)
        w->data = s->o.worker_init(s->o.handler_ctx, w);
    return GH_OK;
}

/* Workers start with every signal blocked: signals go to the process's own threads, and a write
 * to a client that went away fails with EPIPE instead of raising SIGPIPE. */
static int spawn_workers(struct gh_http_server *s, char *error, size_t cap)
{
    sigset_t all, old;
    int rc = 0;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < s->n_workers && rc == 0; i++) {
        rc = pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
        s->workers[i].thread_started = rc == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        gh_error_format(error, cap, "cannot start the worker threads");
        return GH_ERR_IO;
    }
    return GH_OK;
}

/* ---- start and stop ---- */

static int check_options(const struct gh_http_server_options *o, char *error, size_t cap)
{
    if (o == NULL || o->listen == NULL || o->handler == NULL || o->handler->on_request == NULL ||
        o->metrics == NULL) {
        gh_error_format(error, cap, "a server needs a listen address, a handler and metrics");
        return GH_ERR_INVALID_ARG;
    }
    if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
        gh_error_format(error, cap, "a TLS certificate and key go together");
        return GH_ERR_INVALID_ARG;
    }
    if (o->threads == 0 || o->threads > MAX_THREADS) {
        gh_error_format(error, cap, "between 1 and %d worker threads", MAX_THREADS);
        return GH_ERR_INVALID_ARG;
    }
    return GH_OK;
}

static struct gh_http_server *server_new(const struct gh_http_server_options *o)
{
    struct gh_http_server *s = calloc(1, sizeof *s);

    if (s == NULL || (s->workers = calloc(o->threads, sizeof *s->workers)) == NULL) {
        free(s);
        return NULL;
    }
    s->o = *o;
    fill_defaults(&s->o.limits);
    /* always: the soft open-file limit is raised to the hard one, and no limit asked for may
     * promise connections the descriptor table cannot hold */
    unsigned budget = gh_http_fd_budget(DEFAULT_FD_RESERVE);
    if (s->o.limits.conns_total == 0 || s->o.limits.conns_total > budget)
        s->o.limits.conns_total = budget;
    if (s->o.limits.conns_per_worker == 0)
        s->o.limits.conns_per_worker = s->o.limits.conns_total;
    s->n_workers = o->threads;
    for (unsigned i = 0; i < s->n_workers; i++) {
        s->workers[i].server = s;
        s->workers[i].index = i;
        for (size_t a = 0; a < GH_LISTEN_MAX; a++)
            s->workers[i].listen_fds[a] = -1;
    }
    return s;
}

static void server_free(struct gh_http_server *s)
{
    for (unsigned i = 0; i < s->n_workers; i++) {
        struct gh_http_worker *w = &s->workers[i];
        if (!w->thread_started && w->loop != NULL && s->o.worker_fini != NULL)
            s->o.worker_fini(s->o.handler_ctx, w, w->data);
        close_listeners(w);
        gh_loop_free(w->loop);
    }
    gh_listen_close(&s->listen);
    SSL_CTX_free(s->tls);
    free(s->workers);
    free(s);
}

int gh_http_server_start(const struct gh_http_server_options *o, struct gh_http_server **out,
                         char *error, size_t cap)
{
    struct gh_http_server *s;
    int rc;

    gh_error_format(error, cap, "%s", "");
    if (out == NULL)
        return GH_ERR_INVALID_ARG;
    *out = NULL;
    if ((rc = check_options(o, error, cap)) != GH_OK)
        return rc;
    if ((s = server_new(o)) == NULL)
        return GH_ERR_NOMEM;
    rc = gh_listen_open(o->listen, o->listen_flags, &s->listen, error, cap);
    if (rc == GH_OK && o->tls_cert != NULL)
        rc = gh_tls_server_new(o->tls_cert, o->tls_key, o->http2, &s->tls, error, cap);
    for (unsigned i = 0; rc == GH_OK && i < s->n_workers; i++)
        rc = prepare_worker(s, &s->workers[i], error, cap);
    if (rc == GH_OK) {
        /* the workers' descriptors are the only ones now: once each closed its own in a drain,
         * the port refuses connections instead of holding them in a backlog nobody accepts */
        gh_listen_close(&s->listen);
        rc = spawn_workers(s, error, cap);
    }
    if (rc != GH_OK) {
        gh_http_server_stop(s, 0);
        return rc;
    }
    *out = s;
    return GH_OK;
}

size_t gh_http_server_address_count(const struct gh_http_server *s)
{
    return s != NULL ? s->listen.n : 0;
}

const char *gh_http_server_address_at(const struct gh_http_server *s, size_t i)
{
    return s != NULL && i < s->listen.n ? s->listen.addresses[i] : "";
}

void gh_http_server_stop(struct gh_http_server *s, uint32_t drain_ms)
{
    if (s == NULL)
        return;
    s->drain_ms = drain_ms;
    atomic_store(&s->stopping, 1);
    for (unsigned i = 0; i < s->n_workers; i++)
        if (s->workers[i].thread_started)
            gh_loop_wake(s->workers[i].loop);
    for (unsigned i = 0; i < s->n_workers; i++)
        if (s->workers[i].thread_started)
            pthread_join(s->workers[i].thread, NULL);
    server_free(s);
}
