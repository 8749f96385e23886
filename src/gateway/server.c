// SPDX-License-Identifier: Apache-2.0
/*
 * The data plane's threads and sockets: listening sockets that every worker accepts from (see
 * open_listeners for why they are shared), one h2o event loop and context per worker, TLS with ALPN
 * when asked, and an orderly stop: close the listeners, let the connections finish what they are
 * doing (HTTP/2 ones get GOAWAY, idle HTTP/1 ones are shut for reading), cut what is still open
 * after the drain period, then free everything, including what h2o 2.2.5 keeps per thread and
 * forgets to free.
 */
#include "gateway/server_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/h2oloop.h"
#include "common/log.h"

#define DEFAULT_MAX_BODY (8 * 1024 * 1024)
#define DEFAULT_DRAIN_MS 30000
#define CUT_GRACE_MS     2000 /* after the drain: how long cut connections get to close */
#define DRAIN_POLL_MS    50
#define MAX_THREADS      1024
#define LOG_BUFFER_MAX   (16 * 1024 * 1024)

const char *const gh_gateway_code_names[GH_GW_CODE_COUNT] = {
    "not_found",         "method_not_allowed", "unauthorized", "invalid_token",    "forbidden",
    "rate_limited",      "payload_too_large",  "bad_gateway",  "upstream_timeout", "bad_request",
    "headers_too_large", "unavailable",        "error",
};

const char *const gh_gateway_reason_names[GH_GW_REASON_COUNT] = {
    "malformed",        "too_large",     "unsupported_header", "alg_not_allowed",
    "unknown_kid",      "key_mismatch",  "weak_key",           "bad_signature",
    "expired",          "not_yet_valid", "issued_in_future",   "bad_claim_type",
    "missing_claim",    "wrong_issuer",  "wrong_audience",     "unknown_profile_key",
    "keys_unavailable", "other",
};

const uint64_t gh_gateway_latency_bounds_us[GH_GW_LATENCY_BUCKETS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

uint64_t gw_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct gw_worker *gw_worker_of(h2o_context_t *ctx)
{
    return H2O_STRUCT_FROM_MEMBER(struct gw_worker, ctx, ctx);
}

int gw_worker_post(struct gw_worker *w, h2o_multithread_message_t *msg)
{
    int ok;

    /* held across the send: once teardown has taken the lock after closing, no sender is still
     * writing to the queue's pipe */
    pthread_mutex_lock(&w->post_lock);
    ok = w->post_ready && !w->post_closed;
    if (ok)
        h2o_multithread_send_message(&w->receiver, msg);
    pthread_mutex_unlock(&w->post_lock);
    return ok;
}

void gw_worker_saw_http2(struct gw_worker *w)
{
    w->saw_http2 = 1;
}

/* ---- listening sockets ---- */

/*
 * One plain socket per address, shared by every worker: each has its own descriptor of it in its
 * own loop, and whichever worker is free accepts. Per-worker SO_REUSEPORT sockets spread
 * connections in the kernel instead, but they also let any other process of the same user listen
 * on the port and take part of its connections in silence (a second gatehouse did, with an empty
 * configuration); a plain socket cannot be bound while anything listens on its address.
 */
static int open_listeners(struct gh_gateway_server *s, char *error, size_t cap)
{
    char reason[128];
    int rc = gh_listen_open(s->o.listen, GH_LISTEN_NAMES, &s->listen, error, cap);

    if (rc != GH_OK)
        return rc;
    for (unsigned i = 0; i < s->n_workers; i++) {
        for (size_t a = 0; a < s->listen.n; a++) {
            s->workers[i].listen_fds[a] = fcntl(s->listen.fds[a], F_DUPFD_CLOEXEC, 0);
            if (s->workers[i].listen_fds[a] < 0) {
                strerror_r(errno, reason, sizeof reason);
                gh_error_format(error, cap, "cannot share the listener of %s: %s",
                                s->listen.addresses[a], reason);
                return GH_ERR_IO;
            }
        }
    }
    /* The workers' descriptors are the only ones now, so the port stops listening (connections
     * refused, not reset from a backlog nobody accepts) as soon as each has closed its own when a
     * drain begins. */
    gh_listen_close(&s->listen);
    return GH_OK;
}

static void close_worker_fds(struct gw_worker *w)
{
    for (size_t a = 0; a < GH_LISTEN_MAX; a++) {
        if (w->listen_fds[a] >= 0)
            close(w->listen_fds[a]);
        w->listen_fds[a] = -1;
    }
}

/* ---- TLS ---- */

static int tls_failure(char *error, size_t cap, const char *what, const char *file)
{
    char reason[256] = "unknown error";
    unsigned long e = ERR_peek_last_error();

    if (e != 0)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    gh_error_format(error, cap, "%s %s: %s", what, file, reason);
    return GH_ERR_IO;
}

static int setup_server_tls(struct gh_gateway_server *s, char *error, size_t cap)
{
    if (s->o.tls_cert == NULL)
        return GH_OK;
    return gh_loop_tls_new(s->o.tls_cert, s->o.tls_key, 1, &s->server_tls, error, cap);
}

/* Upstreams over https are verified like any client would: chain and host name. */
static int setup_client_tls(struct gh_gateway_server *s, char *error, size_t cap)
{
    if ((s->client_tls = SSL_CTX_new(TLS_client_method())) == NULL)
        return tls_failure(error, cap, "cannot create a TLS context for", "upstreams");
    SSL_CTX_set_min_proto_version(s->client_tls, TLS1_2_VERSION);
    SSL_CTX_set_verify(s->client_tls, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(s->client_tls) != 1)
        ERR_clear_error(); /* no system store: only an explicit CA file can verify */
    if (s->o.upstream_ca_file != NULL &&
        SSL_CTX_load_verify_locations(s->client_tls, s->o.upstream_ca_file, NULL) != 1)
        return tls_failure(error, cap, "cannot load the upstream CA file", s->o.upstream_ca_file);
    /* the same certificates again, for the contexts of collections with their own upstream_ca */
    if ((s->trust_files = X509_STORE_new()) == NULL)
        return tls_failure(error, cap, "cannot create a certificate store for", "upstreams");
    if (X509_STORE_set_default_paths(s->trust_files) != 1)
        ERR_clear_error();
    if (s->o.upstream_ca_file != NULL &&
        X509_STORE_load_file(s->trust_files, s->o.upstream_ca_file) != 1)
        return tls_failure(error, cap, "cannot load the upstream CA file", s->o.upstream_ca_file);
    return GH_OK;
}

/* ---- h2o configuration ---- */

static void setup_config(struct gh_gateway_server *s)
{
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    h2o_handler_t *handler;

    h2o_config_init(&s->config);
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("gatehouse"));
    s->config.max_request_entity_size = s->o.max_body;
    s->config.http1.upgrade_to_http2 = 0; /* plain text is HTTP/1.1 only; h2 comes by ALPN */
    host = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    handler = h2o_create_handler(path, sizeof *handler);
    handler->on_req = gw_on_req;
    /* h2o answers some errors itself (413 over max_body, 400 for broken bodies) on the host's
     * fallback path: it gets the same response hooks, so those answers are JSON too */
    gw_register_response_hooks(path);
    gw_register_response_hooks(&host->fallback_path);
    path->error_log.emit_request_errors = 0; /* upstream errors go to the access log instead */
    host->fallback_path.error_log.emit_request_errors = 0;
}

/* ---- the worker thread ---- */

/* Every worker is woken for a new connection on the shared sockets: taking one at a time leaves
 * the next ones of a burst to the workers that are free, instead of the first awake taking all. */
static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct gw_worker *w = listener->data;

    if (err == NULL)
        gh_loop_accept(listener, &w->accept_ctx, &w->conns, w->server->n_workers > 1 ? 1 : 16);
}

static void run_once(struct gw_worker *w, int32_t max_wait_ms)
{
    gh_h2oloop_run_once(w->loop, max_wait_ms);
}

static int is_http2(h2o_socket_t *sock)
{
    h2o_iovec_t proto;

    if (sock->ssl == NULL)
        return 0; /* plain text never upgrades (upgrade_to_http2 is off) */
    proto = h2o_socket_ssl_get_selected_protocol(sock);
    return proto.len >= 2 && memcmp(proto.base, "h2", 2) == 0;
}

static void shutdown_conns(struct gw_worker *w, int how, int spare_http2)
{
    gh_loop_shutdown_conns(&w->conns, how, spare_http2 ? is_http2 : NULL);
}

/*
 * HTTP/1 in h2o 2.2 cannot end idle keep-alive connections on request: shutting down the read
 * side does it (an idle one reads end-of-file and closes; one with a request in progress is not
 * reading, answers with Connection: close as shutdown is requested, then reads end-of-file).
 * HTTP/2 connections get GOAWAY from h2o_context_request_shutdown and close when their streams
 * are done. Parked requests' waits are answered within the provider's wait limit (5 s).
 */
static void drain(struct gw_worker *w)
{
    uint64_t deadline = gh_h2oloop_now_ms() + (uint64_t)w->server->o.drain_ms, cut_at = 0;

    for (size_t a = 0; a < w->n_listeners; a++) {
        h2o_socket_read_stop(w->listeners[a]);
        h2o_socket_close(w->listeners[a]);
        w->listeners[a] = NULL;
    }
    w->n_listeners = 0;
    h2o_context_request_shutdown(&w->ctx);
    shutdown_conns(w, SHUT_RD, 1);
    while (!h2o_linklist_is_empty(&w->conns) || w->parks != 0) {
        run_once(w, DRAIN_POLL_MS);
        uint64_t now = gh_h2oloop_now_ms();
        if (cut_at == 0 && now >= deadline) {
            shutdown_conns(w, SHUT_RDWR, 0);
            cut_at = now;
            gh_log(GH_LOG_WARN, "gateway drain period over: cutting connections",
                   json_pack("{s:i}", "worker", (int)w->index));
        } else if (cut_at != 0 && now >= cut_at + CUT_GRACE_MS) {
            w->abandoned = 1;
            gh_log(GH_LOG_ERROR, "gateway worker could not close its connections; leaving them",
                   json_pack("{s:i}", "worker", (int)w->index));
            return;
        }
    }
}

static void teardown(struct gw_worker *w)
{
    pthread_mutex_lock(&w->post_lock);
    w->post_closed = 1;
    pthread_mutex_unlock(&w->post_lock);
    run_once(w, 0); /* wake-ups posted before the close */
    gw_upstream_close_idle(w);
    for (int turns = 0; w->upstream_sockets != 0 && turns < 100; turns++)
        run_once(w, 10); /* closing a TLS connection takes a turn */
    h2o_multithread_unregister_receiver(w->ctx.queue, &w->receiver);
    gw_proxy_dispose(w);
    /* the GOAWAY timer of h2o_context_request_shutdown may still be linked: unlink it, or
     * h2o_context_dispose trips over it */
    if (h2o_timeout_is_linked(&w->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&w->ctx.http2._graceful_shutdown_timeout);
    gh_loop_destroy(&w->ctx, w->loop);
    gh_loop_release_thread_caches(w->saw_http2);
}

static void *worker_main(void *arg)
{
    struct gw_worker *w = arg;
    struct gh_gateway_server *s = w->server;

    /* made here so its pages are first touched by the thread that uses them; without one the
     * worker still serves, verifying every token */
    if (gh_token_cache_new(GH_TOKEN_CACHE_ENTRIES, GH_TOKEN_CACHE_BYTES, &w->tokens) != GH_OK)
        gh_log(GH_LOG_WARN, "gateway worker runs without its verified-token cache",
               json_pack("{s:i}", "worker", (int)w->index));
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, &s->config);
    gw_upstream_init(w);
    h2o_linklist_init_anchor(&w->conns);
    h2o_multithread_register_receiver(w->ctx.queue, &w->receiver, gw_on_messages);
    pthread_mutex_lock(&w->post_lock);
    w->post_ready = 1;
    pthread_mutex_unlock(&w->post_lock);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = s->config.hosts;
    w->accept_ctx.ssl_ctx = s->server_tls;
    for (size_t a = 0; a < s->listen.n; a++) {
        h2o_socket_t *l =
            h2o_evloop_socket_create(w->loop, w->listen_fds[a], H2O_SOCKET_FLAG_DONT_READ);
        w->listen_fds[a] = -1; /* the socket owns it now */
        l->data = w;
        h2o_socket_read_start(l, on_accept);
        w->listeners[w->n_listeners++] = l;
    }

    while (!atomic_load(&s->stopping))
        run_once(w, INT32_MAX);
    drain(w);
    if (w->abandoned) {
        pthread_mutex_lock(&w->post_lock);
        w->post_closed = 1; /* late notifies free their own parks */
        pthread_mutex_unlock(&w->post_lock);
    } else {
        teardown(w); /* its last turns of the loop may still decide requests */
    }
    /* nothing runs this loop any more, abandoned or not: no request is decided after this */
    gh_token_cache_free(w->tokens);
    w->tokens = NULL;
    return NULL;
}

/* Workers start with every signal blocked: signals go to the process's own threads, and a write
 * to a client that went away fails with EPIPE instead of raising SIGPIPE. */
static int spawn_workers(struct gh_gateway_server *s, char *error, size_t cap)
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
        gh_error_format(error, cap, "cannot start the gateway's worker threads");
        return GH_ERR_IO;
    }
    return GH_OK;
}

/* ---- start and stop ---- */

static int check_options(const struct gh_gateway_options *o, char *error, size_t cap)
{
    if (o == NULL || o->listen == NULL || o->config == NULL || o->settings == NULL) {
        gh_error_format(error, cap,
                        "the gateway needs a listen address, a configuration and settings");
        return GH_ERR_INVALID_ARG;
    }
    if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
        gh_error_format(error, cap, "--tls-cert and --tls-key go together");
        return GH_ERR_INVALID_ARG;
    }
    if (o->threads > MAX_THREADS) {
        gh_error_format(error, cap, "at most %d gateway threads", MAX_THREADS);
        return GH_ERR_INVALID_ARG;
    }
    return GH_OK;
}

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

static struct gh_gateway_server *server_new(const struct gh_gateway_options *o)
{
    struct gh_gateway_server *s = calloc(1, sizeof *s);

    if (s == NULL)
        return NULL;
    s->o = *o;
    if (s->o.threads == 0)
        s->o.threads = default_threads();
    if (s->o.max_body == 0)
        s->o.max_body = DEFAULT_MAX_BODY;
    if (s->o.drain_ms <= 0)
        s->o.drain_ms = DEFAULT_DRAIN_MS;
    s->n_workers = s->o.threads;
    atomic_init(&s->stopping, 0);
    if ((s->workers = calloc(s->n_workers, sizeof *s->workers)) == NULL) {
        free(s);
        return NULL;
    }
    for (unsigned i = 0; i < s->n_workers; i++) {
        s->workers[i].server = s;
        s->workers[i].index = i;
        for (size_t a = 0; a < GH_LISTEN_MAX; a++)
            s->workers[i].listen_fds[a] = -1;
        pthread_mutex_init(&s->workers[i].post_lock, NULL);
    }
    return s;
}

/* Joins the workers that run and releases what exists but the server itself and its counters;
 * the half-built server of a failed start goes the same way. */
static void server_shutdown(struct gh_gateway_server *s, int configured)
{
    atomic_store(&s->stopping, 1);
    for (unsigned i = 0; i < s->n_workers; i++)
        if (s->workers[i].thread_started)
            gw_worker_post(&s->workers[i], NULL);
    for (unsigned i = 0; i < s->n_workers; i++) {
        struct gw_worker *w = &s->workers[i];
        if (w->thread_started)
            pthread_join(w->thread, NULL);
        s->abandoned |= w->abandoned;
        close_worker_fds(w);
    }
    gh_listen_close(&s->listen); /* when the workers could not all get their descriptors */
    gh_accesslog_stop(s->log);
    s->log = NULL;
    s->stopped = 1;
    if (s->abandoned)
        return; /* a loop still references all of it; the process is ending anyway */
    for (unsigned i = 0; i < s->n_workers; i++)
        pthread_mutex_destroy(&s->workers[i].post_lock);
    if (configured)
        h2o_config_dispose(&s->config);
    SSL_CTX_free(s->server_tls);
    SSL_CTX_free(s->client_tls);
    X509_STORE_free(s->trust_files);
    s->server_tls = s->client_tls = NULL;
    s->trust_files = NULL;
}

static void server_free(struct gh_gateway_server *s)
{
    if (s->abandoned)
        return;
    free(s->workers);
    free(s);
}

int gh_gateway_server_start(const struct gh_gateway_options *options,
                            struct gh_gateway_server **out, char *error, size_t cap)
{
    struct gh_gateway_server *s;
    int rc;

    gh_error_format(error, cap, "%s", "");
    if (out == NULL)
        return GH_ERR_INVALID_ARG;
    *out = NULL;
    if ((rc = check_options(options, error, cap)) != GH_OK)
        return rc;
    if ((s = server_new(options)) == NULL)
        return GH_ERR_NOMEM;
    if ((rc = open_listeners(s, error, cap)) != GH_OK ||
        (rc = setup_server_tls(s, error, cap)) != GH_OK ||
        (rc = setup_client_tls(s, error, cap)) != GH_OK) {
        server_shutdown(s, 0);
        server_free(s);
        return rc;
    }
    if (gh_accesslog_start(stdout, LOG_BUFFER_MAX, &s->metrics.log_lines_dropped, &s->log) !=
        GH_OK) {
        gh_error_format(error, cap, "cannot start the access log's writer");
        server_shutdown(s, 0);
        server_free(s);
        return GH_ERR_IO;
    }
    setup_config(s);
    if ((rc = spawn_workers(s, error, cap)) != GH_OK) {
        server_shutdown(s, 1);
        server_free(s);
        return rc;
    }
    *out = s;
    return GH_OK;
}

const char *gh_gateway_server_address(const struct gh_gateway_server *s)
{
    return s != NULL && s->listen.n > 0 ? s->listen.addresses[0] : "";
}

size_t gh_gateway_server_address_count(const struct gh_gateway_server *s)
{
    return s != NULL ? s->listen.n : 0;
}

const char *gh_gateway_server_address_at(const struct gh_gateway_server *s, size_t i)
{
    return s != NULL && i < s->listen.n ? s->listen.addresses[i] : "";
}

unsigned gh_gateway_server_threads(const struct gh_gateway_server *s)
{
    return s != NULL ? s->n_workers : 0;
}

const struct gh_gateway_metrics *gh_gateway_server_metrics(const struct gh_gateway_server *s)
{
    return s != NULL ? &s->metrics : NULL;
}

void gh_gateway_server_stop(struct gh_gateway_server *s)
{
    if (s != NULL && !s->stopped)
        server_shutdown(s, 1);
}

void gh_gateway_server_free(struct gh_gateway_server *s)
{
    if (s == NULL)
        return;
    gh_gateway_server_stop(s);
    server_free(s);
}
