// SPDX-License-Identifier: Apache-2.0
/*
 * The data plane's start and stop. The front end (src/http/server.h) owns the listening sockets,
 * the worker threads with their loops, TLS with ALPN and the client connections; this file gives
 * it the gateway's handler and keeps, beside each of its workers, the gateway's own state of that
 * thread (verified-token cache, upstream pools, parked requests). Stopping drains: the front end
 * stops accepting and lets requests in flight finish, asking each worker (worker_idle) whether
 * its upstream sockets and parked requests are finished too.
 */
#include "gateway/server_internal.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "http/resolve.h"

#define DEFAULT_MAX_BODY (8 * 1024 * 1024)
#define DEFAULT_DRAIN_MS 30000
#define MAX_THREADS      1024
#define LOG_BUFFER_MAX   (16 * 1024 * 1024)

const char *const gh_gateway_code_names[GH_GW_CODE_COUNT] = {
    "not_found",
    "method_not_allowed",
    "unauthorized",
    "invalid_token",
    "forbidden",
    "rate_limited",
    "payload_too_large",
    "bad_gateway",
    "upstream_timeout",
    "bad_request",
    "headers_too_large",
    "request_timeout",
    "unavailable",
    "uri_too_long",
    "expectation_failed",
    "not_implemented",
    "http_version_not_supported",
    "error",
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
    return gh_monotonic_ns();
}

int gw_worker_post(struct gw_worker *w, struct gh_loop_msg *msg)
{
    int ok;

    /* held across the post: once worker_fini has taken the lock after closing, no sender is
     * still handing a message to a loop about to be freed */
    pthread_mutex_lock(&w->post_lock);
    ok = w->post_ready && !w->post_closed && gh_loop_post(w->loop, msg);
    pthread_mutex_unlock(&w->post_lock);
    return ok;
}

/* ---- TLS for upstreams ---- */

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

/* ---- the workers' own state ---- */

/* Before the worker's thread starts (the front end prepares each worker on the starting thread).
 * Without a token cache the worker still serves, verifying every token. */
static void *worker_init(void *ctx, struct gh_http_worker *hw)
{
    struct gh_gateway_server *s = ctx;
    struct gw_worker *w = &s->workers[gh_http_worker_index(hw)];

    w->http = hw;
    w->loop = gh_http_worker_loop(hw);
    if (gh_token_cache_new(GH_TOKEN_CACHE_ENTRIES, GH_TOKEN_CACHE_BYTES, &w->tokens) != GH_OK)
        gh_log(GH_LOG_WARN, "gateway worker runs without its verified-token cache",
               json_pack("{s:i}", "worker", (int)w->index));
    pthread_mutex_lock(&w->post_lock);
    w->post_ready = 1;
    pthread_mutex_unlock(&w->post_lock);
    return w;
}

/* While draining: idle upstream connections go at once; the worker is done when no upstream
 * socket is open and no parked request waits (a provider answers a wait within 5 s). */
static int worker_idle(void *ctx, struct gh_http_worker *hw, void *data)
{
    struct gw_worker *w = data;

    (void)ctx;
    (void)hw;
    gw_upstream_close_idle(w);
    return w->upstream_sockets == 0 && w->parks == 0;
}

static void worker_fini(void *ctx, struct gh_http_worker *hw, void *data)
{
    struct gw_worker *w = data;

    (void)ctx;
    (void)hw;
    pthread_mutex_lock(&w->post_lock);
    w->post_closed = 1; /* late notifies free their own parks */
    pthread_mutex_unlock(&w->post_lock);
    gw_upstream_dispose(w);
    /* nothing runs this loop any more: no request is decided after this */
    gh_token_cache_free(w->tokens);
    w->tokens = NULL;
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
        pthread_mutex_init(&s->workers[i].post_lock, NULL);
    }
    return s;
}

static int start_http(struct gh_gateway_server *s, char *error, size_t cap)
{
    struct gh_http_server_options ho;
    int rc;

    memset(&ho, 0, sizeof ho);
    ho.listen = s->o.listen;
    ho.listen_flags = GH_LISTEN_NAMES;
    ho.threads = s->n_workers;
    ho.tls_cert = s->o.tls_cert;
    ho.tls_key = s->o.tls_key;
    ho.http2 = 1;
    ho.limits = s->o.limits;
    ho.limits.max_body = s->o.max_body;
    ho.server_name = "gatehouse";
    ho.handler = &gw_handler;
    ho.handler_ctx = s;
    ho.state_size = sizeof(struct gw_req);
    ho.worker_init = worker_init;
    ho.worker_fini = worker_fini;
    ho.worker_idle = worker_idle;
    ho.metrics = &s->metrics.http;
    if ((rc = gh_http_server_start(&ho, &s->http, error, cap)) != GH_OK)
        return rc;
    s->n_addresses = gh_http_server_address_count(s->http);
    if (s->n_addresses > GH_LISTEN_MAX)
        s->n_addresses = GH_LISTEN_MAX;
    for (size_t i = 0; i < s->n_addresses; i++)
        snprintf(s->addresses[i], sizeof s->addresses[i], "%s",
                 gh_http_server_address_at(s->http, i));
    return GH_OK;
}

/* Stops the front end (draining) and releases what exists but the server itself and its
 * counters; the half-built server of a failed start goes the same way. */
static void server_shutdown(struct gh_gateway_server *s)
{
    atomic_store(&s->stopping, 1);
    gh_http_server_stop(s->http, (uint32_t)s->o.drain_ms);
    s->http = NULL;
    gh_resolve_shutdown(); /* the upstream names' lookup threads: no loop asks any more */
    gh_accesslog_stop(s->log);
    s->log = NULL;
    s->stopped = 1;
    for (unsigned i = 0; i < s->n_workers; i++)
        pthread_mutex_destroy(&s->workers[i].post_lock);
    SSL_CTX_free(s->client_tls);
    X509_STORE_free(s->trust_files);
    s->client_tls = NULL;
    s->trust_files = NULL;
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
    if ((rc = setup_client_tls(s, error, cap)) != GH_OK)
        goto out;
    if (gh_accesslog_start(stdout, LOG_BUFFER_MAX, &s->metrics.log_lines_dropped, &s->log) !=
        GH_OK) {
        gh_error_format(error, cap, "cannot start the access log's writer");
        rc = GH_ERR_IO;
        goto out;
    }
    rc = start_http(s, error, cap);
out:
    if (rc != GH_OK) {
        server_shutdown(s);
        free(s->workers);
        free(s);
        return rc;
    }
    *out = s;
    return GH_OK;
}

const char *gh_gateway_server_address(const struct gh_gateway_server *s)
{
    return s != NULL && s->n_addresses > 0 ? s->addresses[0] : "";
}

size_t gh_gateway_server_address_count(const struct gh_gateway_server *s)
{
    return s != NULL ? s->n_addresses : 0;
}

const char *gh_gateway_server_address_at(const struct gh_gateway_server *s, size_t i)
{
    return s != NULL && i < s->n_addresses ? s->addresses[i] : "";
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
        server_shutdown(s);
}

void gh_gateway_server_free(struct gh_gateway_server *s)
{
    if (s == NULL)
        return;
    gh_gateway_server_stop(s);
    free(s->workers);
    free(s);
}
