/*
 * What the data plane's files share and nobody else sees: the server, its worker threads and the
 * state of one request. server.c owns the threads and their loops, handler.c the request's way
 * through the decision and parking, respond.c every answer the gateway makes itself (and the
 * access log), proxy.c the upstream side. All of it but the few fields marked otherwise is
 * touched by one worker thread only.
 */
#ifndef GH_GATEWAY_SERVER_INTERNAL_H
#define GH_GATEWAY_SERVER_INTERNAL_H

#define H2O_USE_LIBUV 0

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <h2o.h>
#include <h2o/socketpool.h>

#include "gateway/accesslog.h"
#include "gateway/pipeline.h"
#include "gateway/ratelimit.h"
#include "gateway/server.h"
#include "gateway/tokencache.h"
#include "oidc/provider.h"
#include "store/config.h"

#define GW_REQUEST_ID_MAX 128

struct gw_worker;

struct gh_gateway_server {
    struct gh_gateway_options o;
    h2o_globalconf_t config; /* read-only once the workers run */
    SSL_CTX *server_tls;     /* NULL without --tls-cert */
    SSL_CTX *client_tls;     /* for https upstreams */
    struct gw_worker *workers;
    unsigned n_workers;
    char address[INET6_ADDRSTRLEN + 8];
    atomic_int stopping;
    int stopped;   /* the workers are joined */
    int abandoned; /* a worker could not close its connections: its memory stays */
    struct gh_gateway_metrics metrics;
    struct gh_accesslog *log;
};

/* A per-thread HTTP client context: h2o's I/O timeout is fixed per context, so one per distinct
 * endpoint timeout_ms. Allocated one by one: the loop links their timeouts by address. */
struct gw_client {
    uint64_t timeout_ms;
    h2o_timeout_t io_timeout;
    h2o_http1client_ctx_t ctx;
};

/* A per-thread keep-alive pool for one upstream scheme://host:port. */
struct gw_pool {
    char *key;
    h2o_socketpool_t pool;
};

struct gw_worker {
    struct gh_gateway_server *server;
    unsigned index;
    pthread_t thread;
    int thread_started;
    int listen_fd;

    /* shared with the provider manager's thread (notify) and gh_gateway_server_stop */
    pthread_mutex_t post_lock;
    int post_ready;  /* the receiver is registered: posting is possible */
    int post_closed; /* the queue is going away: nothing may be posted any more */

    /* worker thread only */
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_linklist_t conns;
    h2o_multithread_receiver_t receiver; /* parked requests' wake-ups */
    struct gh_token_cache *tokens;       /* verified tokens; NULL when it could not be made */
    size_t parks;                        /* registered waits whose park is not freed yet */
    struct gw_client **clients;
    size_t n_clients;
    struct gw_pool **pools;
    size_t n_pools;
    int abandoned; /* the drain gave up: leave this loop's memory alone */
    int saw_http2; /* HTTP/2 was spoken: h2o's HTTP/2 buffers need freeing at the end */
};

/* A wait for a key refetch. It outlives its request when the client leaves while notify runs:
 * then `g` is NULL and the message handler frees it. `g` is touched on the worker thread only. */
struct gw_park {
    h2o_multithread_message_t msg; /* first: the queue hands back this */
    struct gh_provider_wait wait;
    struct gw_worker *worker;
    struct gw_req *g;
    int result;
};

/* One request. Allocated in the request's pool with a dispose hook; found again by walking
 * req->prefilters for `marker`. */
struct gw_req {
    h2o_req_prefilter_t marker;
    struct gw_worker *worker;
    h2o_req_t *req;
    uint64_t started_ns;
    char request_id[GW_REQUEST_ID_MAX + 1];
    int adopted; /* h2o answered by itself (413, 400): no decision was taken */

    struct gh_config *config; /* held until the request ends */
    struct gh_request_view view;
    struct gh_decision decision;
    int decided;
    int refetch_rounds;
    struct gw_park *park;
    struct gh_provider *park_provider;
    struct gh_rate_verdict rate;

    const char *error_code;     /* our error answer's code, for the log; NULL when none */
    int proxied;                /* handed to h2o's proxy */
    int upstream_status;        /* the upstream's answer, 0 when none came */
    const char *upstream_error; /* h2o's reason when the upstream failed (in the request pool) */
    h2o_iovec_t replacement;    /* a JSON body replacing h2o's plain-text error */
};

/* server.c */
struct gw_worker *gw_worker_of(h2o_context_t *ctx);
uint64_t gw_now_ns(void);
/* Posts `msg` (NULL: only wakes the loop) to the worker's queue; 0 when the queue is closed. */
int gw_worker_post(struct gw_worker *w, h2o_multithread_message_t *msg);
/* Notes that this thread spoke HTTP/2 (its write buffers are freed at the end). */
void gw_worker_saw_http2(struct gw_worker *w);

/* handler.c */
int gw_on_req(h2o_handler_t *self, h2o_req_t *req);
void gw_on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
struct gw_req *gw_req_of(h2o_req_t *req);
struct gw_req *gw_req_adopt(h2o_req_t *req);

/* respond.c */
void gw_respond(struct gw_req *g, int status, enum gh_gateway_code code, const char *message);
void gw_respond_decision(struct gw_req *g);
void gw_register_response_hooks(h2o_pathconf_t *pathconf);
const char *gw_reason_phrase(int status);

/* proxy.c */
void gw_proxy_start(struct gw_req *g);
void gw_proxy_dispose(struct gw_worker *w);

#endif
