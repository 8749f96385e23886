// SPDX-License-Identifier: Apache-2.0
/*
 * What the data plane's files share and nobody else sees: the server, its workers' own state and
 * the state of one request. The front end (src/http/server.h) owns the threads, loops and client
 * connections; server.c starts it and keeps per-worker state beside it, handler.c takes a request
 * through the decision and parking, respond.c makes every answer the gateway writes itself (and
 * the access log), proxy.c the exchange with the upstream, upstream.c the upstream connections
 * and their pools. Calls go one way: handler → respond / proxy → upstream. All of it but the few
 * fields marked otherwise is touched by one worker thread only.
 */
#ifndef GH_GATEWAY_SERVER_INTERNAL_H
#define GH_GATEWAY_SERVER_INTERNAL_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/listen.h"
#include "common/requestid.h"
#include "gateway/accesslog.h"
#include "gateway/pipeline.h"
#include "gateway/ratelimit.h"
#include "gateway/server.h"
#include "gateway/tokencache.h"
#include "http/loop.h"
#include "http/server.h"
#include "http/sock.h"
#include "oidc/provider.h"
#include "store/config.h"

struct gw_worker;

struct gh_gateway_server {
    struct gh_gateway_options o;
    struct gh_http_server *http;
    SSL_CTX *client_tls; /* for https upstreams */
    /* The certificates client_tls trusts from files (the system bundle, --upstream-ca-file),
     * loaded once at start and never used to verify, so workers may read it without a lock
     * when they make the TLS context of a collection with its own upstream_ca. */
    X509_STORE *trust_files;
    struct gw_worker *workers; /* one per front-end worker, by index */
    unsigned n_workers;
    size_t n_addresses; /* copied from the front end: readable after it stopped */
    char addresses[GH_LISTEN_MAX][GH_LISTEN_ADDR_MAX];
    atomic_int stopping;
    int stopped;
    struct gh_gateway_metrics metrics;
    struct gh_accesslog *log;
};

/* An upstream base URL or an absolute Location, as slices of the text it was parsed from. */
struct gw_url {
    int https;
    const char *authority; /* host[:port] as written */
    size_t authority_len;
    const char *host; /* without IPv6 brackets */
    size_t host_len;
    uint16_t port;    /* the default port of the scheme when none is written */
    const char *path; /* from the first '/' to the end (query included); "/" when none */
    size_t path_len;
};

/* 0, or -1 when `s` is not an absolute http:// or https:// URL (any case) with a host. */
int gw_url_parse(const char *s, size_t len, struct gw_url *out);

/* 1 when the two byte strings are equal ignoring ASCII case. */
int gw_lcequal(const char *a, size_t a_len, const char *b, size_t b_len);

/* An address as text, an IPv4-mapped IPv6 one as plain IPv4 (the form ip_allow lists use); 0
 * when it has none. */
size_t gw_address_text(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t cap);

/* upstream.c: a keep-alive pool of one worker for one upstream scheme://host:port */
struct gw_pool;
struct gw_exchange;

/* A connection to an upstream, owned by one exchange at a time or idle in its pool. */
struct gw_upstream_conn {
    struct gh_sock sock; /* first: callbacks get the sock and find the connection */
    struct gw_pool *pool;
    struct gw_worker *worker;
    struct gw_exchange *x;                /* its user while taken */
    struct gw_upstream_conn *prev, *next; /* in the pool while idle */
    struct gh_timer idle_timer;
    int idle;
};

/* A connection being made; the caller's, so it can be cancelled. */
struct gw_connect;
typedef void (*gw_connect_cb)(struct gw_connect *c, struct gw_upstream_conn *conn, const char *err);
#define GW_CONNECT_ADDRS 4 /* addresses of a name tried in turn when connecting fails */
struct gw_connect {
    struct gw_worker *worker;
    struct gw_pool *pool;
    struct gh_resolve *resolve;
    struct gw_upstream_conn *conn; /* being connected or shaking hands */
    gw_connect_cb cb;
    void *data;
    int tls_failed; /* the error came from the TLS handshake (certificate or protocol) */
    int verify_failed;
    char error[160];
    struct sockaddr_storage addrs[GW_CONNECT_ADDRS];
    socklen_t addr_lens[GW_CONNECT_ADDRS];
    size_t n_addrs, next_addr;
};

struct gw_worker {
    struct gh_gateway_server *server;
    unsigned index;
    struct gh_loop *loop;
    struct gh_http_worker *http;

    /* shared with the provider manager's thread (notify) */
    pthread_mutex_t post_lock;
    int post_ready;  /* the loop runs: posting is possible */
    int post_closed; /* the loop is going away: nothing may be posted any more */

    /* worker thread only */
    struct gh_token_cache *tokens; /* verified tokens; NULL when it could not be made */
    size_t parks;                  /* registered waits whose park is not freed yet */
    struct gw_pool **pools;
    size_t n_pools;
    size_t upstream_sockets; /* open upstream sockets, idle or in use */
};

/* A wait for a key refetch. It outlives its request when the client leaves while notify runs:
 * then `g` is NULL and the message handler frees it. `g` is touched on the worker thread only. */
struct gw_park {
    struct gh_loop_msg msg;
    struct gh_provider_wait wait;
    struct gw_worker *worker;
    struct gw_req *g;
    int result;
};

/* One request: the front end's req->state. */
struct gw_req {
    struct gw_worker *worker;
    struct gh_http_request *req;
    uint64_t started_ns;
    char request_id[GH_REQUEST_ID_MAX + 1];

    struct gh_config *config; /* held until the request ends */
    int peer_trusted;         /* the peer is one of --trusted-proxies */
    struct gh_request_view view;
    struct gh_decision decision;
    int decided;
    int refetch_rounds;
    struct gw_park *park;
    struct gh_provider *park_provider;
    struct gh_rate_verdict rate;

    int status;                 /* the answer's status once one started; 0 before */
    uint64_t body_bytes;        /* of the answer, handed to the front end (none for HEAD) */
    const char *error_code;     /* our error answer's code, for the log; NULL when none */
    int proxied;                /* sent to the upstream */
    int upstream_status;        /* the upstream's answer, 0 when none came */
    const char *upstream_error; /* why the upstream exchange failed (static or in `x`) */
    struct gw_exchange *x;      /* the upstream exchange, while proxied */
};

/* One more on a counter that is only read for /metrics (no ordering needed). */
static inline void gw_count(atomic_uint_fast64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* server.c */
uint64_t gw_now_ns(void);
/* Posts `park` to its worker's loop; 0 when the loop takes no more messages. Any thread. */
int gw_worker_post(struct gw_worker *w, struct gh_loop_msg *msg);

/* handler.c: the front end's handler */
extern const struct gh_http_handler gw_handler;

/* respond.c */
void gw_respond(struct gw_req *g, int status, enum gh_gateway_code code, const char *message);
/* A refusal of the front end, answered in our JSON with its own code. */
void gw_respond_refusal(struct gw_req *g, const struct gh_http_refusal *r);
void gw_respond_decision(struct gw_req *g);
/* X-Request-Id and RateLimit-* for an answer: up to GW_DECORATIONS headers into `out`, their
 * values in `buf` (GW_DECORATION_BYTES); the number written. */
#define GW_DECORATIONS      4
#define GW_DECORATION_BYTES 96
size_t gw_decorate(const struct gw_req *g, struct gh_http_header *out, char *buf);
/* 1 for a header name (lower case) gw_decorate writes: the upstream's own are dropped. */
int gw_decorated_name(const struct gw_req *g, const char *name, size_t len);
/* The access log line and the counters of a request that ended. */
void gw_log_request(struct gw_req *g, int completed);

/* proxy.c */
void gw_proxy_start(struct gw_req *g);
void gw_proxy_body(struct gw_req *g, const char *data, size_t len, int state);
void gw_proxy_writable(struct gw_req *g);
/* The request ended: whatever still goes on upstream stops, and the exchange is freed. */
void gw_proxy_end(struct gw_req *g);

/* upstream.c */
/* Closes the idle connections (a stopping worker then waits for upstream_sockets to be 0). */
void gw_upstream_close_idle(struct gw_worker *w);
void gw_upstream_dispose(struct gw_worker *w);
/* The worker's pool for the upstream's scheme, host and port and the CA bundle its collection
 * trusts besides the server's (`ca`, PEM, NULL: none; ignored for http); NULL when out of memory
 * or when the bundle yields no TLS context. */
struct gw_pool *gw_pool_for(struct gw_worker *w, const struct gw_url *up, const char *ca);
/* An idle connection of the pool, or NULL. */
struct gw_upstream_conn *gw_pool_take(struct gw_pool *p);
/* Back to the pool when `reusable` (its answer was read whole, nothing more came, nothing is
 * being written), else closed. The caller's callbacks are not called any more. */
void gw_conn_release(struct gw_upstream_conn *conn, int reusable);
/* Makes a connection of `w` from an open descriptor (tests). NULL when out of memory. */
struct gw_upstream_conn *gw_conn_adopt(struct gw_worker *w, struct gw_pool *p, int fd);
/* Connects to the pool's upstream (resolving its name, TLS with a verified certificate for
 * https); `cb` gets the connection or a reason (valid until the connect struct is reused). */
void gw_connect_start(struct gw_connect *c, struct gw_worker *w, struct gw_pool *p,
                      gw_connect_cb cb, void *data);
/* Stops a connect in progress; its callback is not called. Harmless when none is. */
void gw_connect_cancel(struct gw_connect *c);

#define GW_UPSTREAM_IN_MAX (64 << 10) /* an upstream's input buffer: its answer head's limit */

#endif
