// SPDX-License-Identifier: Apache-2.0
/*
 * The data plane (SPEC §5): the front end's worker threads (src/http/server.h), each with its own
 * event loop, accepting from listening sockets they share (bound without SO_REUSEPORT, so nobody
 * else can listen there), that decide every request on its head with gh_gateway_decide, before
 * any body byte is read, answer refusals with SPEC §5's JSON errors, and
 * proxy allowed requests to the collection's upstream over pooled keep-alive connections. A
 * request whose token names an unknown kid is parked, never blocked on, until the provider
 * manager's refetch ends. Counters for /metrics are kept here with atomics only.
 */
#ifndef GH_GATEWAY_SERVER_H
#define GH_GATEWAY_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/snapshot.h"
#include "gateway/forwarded.h"
#include "gateway/pipeline.h"
#include "gateway/ratelimit.h"
#include "http/server.h"

/* The error codes of SPEC §5's answers (plus bad_request and unavailable), for counters. */
enum gh_gateway_code {
    GH_GW_NOT_FOUND,
    GH_GW_METHOD_NOT_ALLOWED,
    GH_GW_UNAUTHORIZED,
    GH_GW_INVALID_TOKEN,
    GH_GW_FORBIDDEN,
    GH_GW_RATE_LIMITED,
    GH_GW_PAYLOAD_TOO_LARGE,
    GH_GW_BAD_GATEWAY,
    GH_GW_UPSTREAM_TIMEOUT,
    GH_GW_BAD_REQUEST, /* malformed HTTP the front end refused, duplicate credential headers */
    GH_GW_HEADERS_TOO_LARGE,  /* 431: the request head, or the upstream request's head, too large */
    GH_GW_REQUEST_TIMEOUT,    /* 408: the request's head or body stalled */
    GH_GW_UNAVAILABLE,        /* no configuration published yet */
    GH_GW_URI_TOO_LONG,       /* 414: the request target over the front end's limit */
    GH_GW_EXPECTATION_FAILED, /* 417: an Expect other than 100-continue */
    GH_GW_NOT_IMPLEMENTED,    /* 501: a transfer coding the front end does not take */
    GH_GW_VERSION_NOT_SUPPORTED, /* 505: an HTTP version other than 1.0, 1.1 and 2 */
    GH_GW_OTHER_ERROR,           /* any other refusal of the front end */
    GH_GW_CODE_COUNT
};

/* "not_found", "method_not_allowed", ... indexed by enum gh_gateway_code. */
extern const char *const gh_gateway_code_names[GH_GW_CODE_COUNT];

/* The refusal reasons of SPEC §3 behind 401 invalid_token, then "other". */
#define GH_GW_REASON_COUNT 18
extern const char *const gh_gateway_reason_names[GH_GW_REASON_COUNT];

/* Upper bounds (microseconds) of the latency histogram's buckets; one more bucket counts the
 * requests above the last bound. */
#define GH_GW_LATENCY_BUCKETS 14
extern const uint64_t gh_gateway_latency_bounds_us[GH_GW_LATENCY_BUCKETS];

/* Every field is only ever added to, with relaxed atomics; readers see each one consistent. */
/* Requests per collection (SPEC §5 metrics): slots claimed by collection id on first use. A
 * collection beyond the table's room is counted under the empty id. */
#define GH_GW_COLLECTION_SLOTS 1024
struct gh_gateway_collection_count {
    _Atomic uint64_t key; /* hash of the id, 0 while the slot is free */
    atomic_int ready;     /* the id below is written */
    char id[48];
    atomic_uint_fast64_t by_class[6]; /* as gh_gateway_metrics.by_class */
};

struct gh_gateway_metrics {
    atomic_uint_fast64_t requests;
    /* [0] requests that ended without an answer (client gone), [1]..[5] 1xx..5xx */
    atomic_uint_fast64_t by_class[6];
    atomic_uint_fast64_t refusals[GH_GW_CODE_COUNT];        /* error answers by code */
    atomic_uint_fast64_t invalid_token[GH_GW_REASON_COUNT]; /* 401 invalid_token by reason */
    atomic_uint_fast64_t upstream_errors;   /* refused, reset or broke before answering (502) */
    atomic_uint_fast64_t upstream_tls;      /* TLS handshake or certificate verification (502) */
    atomic_uint_fast64_t upstream_timeouts; /* slower than the endpoint's timeout_ms (504) */
    atomic_uint_fast64_t upstream_broken;   /* failed after its answer had started */
    atomic_uint_fast64_t cache_hits;        /* requests whose token the verified-token cache knew */
    atomic_uint_fast64_t parked;            /* requests that waited for a key refetch */
    /* keep-alive connections closed because bytes came after a complete answer (a body after
     * HEAD, 204 or 304, a second unasked answer): never reused, so no client reads them */
    atomic_uint_fast64_t upstream_extra_bytes;
    /* NOT cumulative: latency[i] counts requests with bounds[i-1] < duration <= bounds[i];
     * Prometheus printers add them up. latency[GH_GW_LATENCY_BUCKETS] is the +Inf rest. */
    atomic_uint_fast64_t latency[GH_GW_LATENCY_BUCKETS + 1];
    atomic_uint_fast64_t latency_sum_us;
    atomic_uint_fast64_t log_lines_dropped; /* access-log lines lost because stdout was stuck */
    struct gh_http_metrics http;            /* the front end's: connections, limits */
    struct gh_gateway_collection_count collections[GH_GW_COLLECTION_SLOTS];
};

struct gh_gateway_options {
    const char *listen;   /* "0.0.0.0:8080", "[::]:8443", "localhost:8080" (every address of
                             the name); port 0 picks an ephemeral one */
    unsigned threads;     /* worker threads; 0: one per online CPU */
    const char *tls_cert; /* both or neither: HTTPS with ALPN h2 and http/1.1 */
    const char *tls_key;
    size_t max_body;                 /* largest request body accepted (bytes); 0: 8 MiB */
    int64_t drain_ms;                /* how long stopping lets requests in flight finish; 0: 30 s */
    struct gh_snapshot_slot *config; /* publishes struct gh_config */
    const struct gh_gateway_settings *settings; /* --key-claims */
    struct gh_ratelimiter *ratelimiter;         /* NULL: no rate limits */
    const char *upstream_ca_file; /* CA bundle trusted for https upstreams beside the system
                                   * store (--upstream-ca-file); NULL: none */
    /* --trusted-proxies: peers whose X-Forwarded-For, Forwarded and X-Real-IP are believed and
     * passed on; from any other peer they are replaced by its address. NULL: none */
    const struct gh_trusted_proxies *trusted_proxies;
    /* the front end's limits (connections, heads, timeouts); zero fields take its defaults, and
     * max_body above wins over limits.max_body */
    struct gh_http_limits limits;
};

struct gh_gateway_server;

/*
 * Binds the listeners and starts the workers. The options and everything they point to must
 * outlive the server; the provider manager behind the configuration's profiles too (stop the
 * server first). Errors: GH_ERR_INVALID_ARG (message in `error`) for bad options,
 * GH_ERR_ADDR_RESOLVE for a host name that does not resolve, GH_ERR_ADDR_IN_USE when something
 * else listens on the address, GH_ERR_IO when it cannot be bound or the TLS files cannot be
 * loaded.
 */
int gh_gateway_server_start(const struct gh_gateway_options *options,
                            struct gh_gateway_server **out, char *error, size_t cap);

/* The first bound address as "host:port" or "[v6]:port" (the real port when 0 was asked for). */
const char *gh_gateway_server_address(const struct gh_gateway_server *s);

/* Every bound address: a host name stands for each of its addresses; "" past the last one. */
size_t gh_gateway_server_address_count(const struct gh_gateway_server *s);
const char *gh_gateway_server_address_at(const struct gh_gateway_server *s, size_t i);

/* Worker threads running. */
unsigned gh_gateway_server_threads(const struct gh_gateway_server *s);

/* The live counters (owned by the server; valid until it is freed). NULL for NULL. */
const struct gh_gateway_metrics *gh_gateway_server_metrics(const struct gh_gateway_server *s);

/*
 * Stops accepting, lets requests in flight finish (up to drain_ms, then cuts the connections),
 * joins the workers and releases their loops. The counters and address stay readable until
 * gh_gateway_server_free, so /metrics may still be answered meanwhile. NULL is fine.
 */
void gh_gateway_server_stop(struct gh_gateway_server *s);

/* Stops the server if it runs, then frees it. NULL is fine. */
void gh_gateway_server_free(struct gh_gateway_server *s);

#endif
