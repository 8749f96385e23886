// SPDX-License-Identifier: Apache-2.0
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

#include "common/listen.h"
#include "common/requestid.h"
#include "gateway/accesslog.h"
#include "gateway/pipeline.h"
#include "gateway/ratelimit.h"
#include "gateway/server.h"
#include "gateway/tokencache.h"
#include "oidc/provider.h"
#include "store/config.h"

struct gw_worker;

struct gh_gateway_server {
    struct gh_gateway_options o;
    h2o_globalconf_t config; /* read-only once the workers run */
    SSL_CTX *server_tls;     /* NULL without --tls-cert */
    SSL_CTX *client_tls;     /* for https upstreams */
    /* The certificates client_tls trusts from files (the system bundle, --upstream-ca-file),
     * loaded once at start and never used to verify, so workers may read it without a lock
     * when they make the TLS context of a collection with its own upstream_ca. */
    X509_STORE *trust_files;
    struct gw_worker *workers;
    unsigned n_workers;
    struct gh_listen_set listen; /* the sockets every worker accepts from */
    atomic_int stopping;
    int stopped;   /* the workers are joined */
    int abandoned; /* a worker could not close its connections: its memory stays */
    struct gh_gateway_metrics metrics;
    struct gh_accesslog *log;
};

/* An I/O timeout of the worker's loop for one endpoint timeout_ms: h2o's timeouts are lists of
 * one duration each. Allocated one by one: the loop links them by address. */
struct gw_timeout {
    uint64_t ms;
    h2o_timeout_t timeout;
};

/* upstream.c: a keep-alive pool of one worker for one upstream scheme://host:port */
struct gw_pool;

/* A connection to an upstream, owned by one exchange at a time or idle in its pool. */
struct gw_upstream_conn {
    h2o_socket_t *sock;
    struct gw_pool *pool;
    struct gw_worker *worker;
    h2o_linklist_t link; /* in the pool while idle */
    h2o_timeout_entry_t idle_timer;
};

/* A connection being made; the caller's, so it can be cancelled. */
struct gw_connect;
typedef void (*gw_connect_cb)(struct gw_connect *c, struct gw_upstream_conn *conn, const char *err);
#define GW_CONNECT_ADDRS 4 /* addresses of a name tried in turn when connecting fails */
struct gw_connect {
    struct gw_worker *worker;
    struct gw_pool *pool;
    h2o_hostinfo_getaddr_req_t *getaddr;
    h2o_socket_t *sock;
    gw_connect_cb cb;
    void *data;
    int tls_failed; /* the error came from the TLS handshake (certificate or protocol) */
    struct sockaddr_storage addrs[GW_CONNECT_ADDRS];
    socklen_t addr_lens[GW_CONNECT_ADDRS];
    size_t n_addrs, next_addr;
};

struct gw_worker {
    struct gh_gateway_server *server;
    unsigned index;
    pthread_t thread;
    int thread_started;
    int listen_fds[GH_LISTEN_MAX]; /* its own descriptors of the shared sockets, until its loop
                                      owns them */

    /* shared with the provider manager's thread (notify) and gh_gateway_server_stop */
    pthread_mutex_t post_lock;
    int post_ready;  /* the receiver is registered: posting is possible */
    int post_closed; /* the queue is going away: nothing may be posted any more */

    /* worker thread only */
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listeners[GH_LISTEN_MAX];
    size_t n_listeners;
    h2o_linklist_t conns;
    h2o_multithread_receiver_t receiver; /* parked requests' wake-ups */
    struct gh_token_cache *tokens;       /* verified tokens; NULL when it could not be made */
    size_t parks;                        /* registered waits whose park is not freed yet */
    struct gw_timeout **timeouts;
    size_t n_timeouts;
    struct gw_pool **pools;
    size_t n_pools;
    h2o_timeout_t pool_idle; /* idle keep-alive connections */
    size_t upstream_sockets; /* open upstream sockets, idle or in use */
    int abandoned;           /* the drain gave up: leave this loop's memory alone */
    int saw_http2;           /* HTTP/2 was spoken: h2o's HTTP/2 buffers need freeing at the end */
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
    char request_id[GH_REQUEST_ID_MAX + 1];
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
    int proxied;                /* sent to the upstream */
    int upstream_status;        /* the upstream's answer, 0 when none came */
    const char *upstream_error; /* why the upstream exchange failed (a static string) */
    h2o_iovec_t replacement;    /* a JSON body replacing h2o's plain-text error */
};

/* One more on a counter that is only read for /metrics (no ordering needed). */
static inline void gw_count(atomic_uint_fast64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

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

/* upstream.c */
void gw_upstream_init(struct gw_worker *w);
/* Closes the idle connections (a stopping worker then waits for upstream_sockets to be 0). */
void gw_upstream_close_idle(struct gw_worker *w);
void gw_upstream_dispose(struct gw_worker *w);
/* The worker's pool for the upstream's scheme, host and port and the CA bundle its collection
 * trusts besides the server's (`ca`, PEM, NULL: none; ignored for http); NULL when out of memory
 * or when the bundle yields no TLS context. */
struct gw_pool *gw_pool_for(struct gw_worker *w, const h2o_url_t *up, const char *ca);
/* An idle connection of the pool, or NULL. */
struct gw_upstream_conn *gw_pool_take(struct gw_pool *p);
/* Back to the pool when `reusable` (its answer was read whole, nothing more came), else closed. */
void gw_conn_release(struct gw_upstream_conn *conn, int reusable);
/* Connects to the pool's upstream (resolving its name, TLS with a verified certificate for
 * https); `cb` gets the connection or a reason. */
void gw_connect_start(struct gw_connect *c, struct gw_worker *w, struct gw_pool *p,
                      gw_connect_cb cb, void *data);
/* Stops a connect in progress; its callback is not called. Harmless when none is. */
void gw_connect_cancel(struct gw_connect *c);

#endif
