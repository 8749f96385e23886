// SPDX-License-Identifier: Apache-2.0
/*
 * The front end both listeners share (the gateway's and the admin API's): listening sockets,
 * worker threads with one gh_loop each, TLS with ALPN, HTTP/1.1 through our strict parser
 * (h1parse.h) and HTTP/2 through libnghttp2, and every resource a client can make us spend
 * bounded: connections (per worker and in total, below the open-file limit), header bytes and
 * count, HTTP/2 header lists, streams and resets, request body size, and the head, idle and body
 * timeouts. Each limit refuses with its status and counts in gh_http_metrics.
 *
 * It knows nothing of tokens or profiles. A handler gets a request when its head is complete and
 * before any body byte is read, so a gateway decides the credential first; it reads the body only
 * if it wants it (which sends 100 Continue to a client that waits for it), in pieces, with
 * back-pressure, and answers with a whole body or a stream.
 *
 * Threads: gh_http_server_* from the owner's thread; gh_http_request_*, gh_http_respond*,
 * gh_http_body_* on the worker thread that called the handler, only.
 */
#ifndef GH_HTTP_SERVER_H
#define GH_HTTP_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/listen.h"
#include "http/loop.h"

/* ---- limits ---- */

struct gh_http_limits {
    size_t header_bytes;        /* request head (HTTP/1) or decoded header list (HTTP/2): 64 KiB */
    size_t header_count;        /* header fields of a request: 100 */
    size_t target_bytes;        /* request target: 8 KiB (414) */
    uint64_t max_body;          /* request body: 8 MiB (413) */
    uint32_t h2_streams;        /* concurrent HTTP/2 streams per connection: 100 */
    uint32_t h2_resets_per_10s; /* streams a client may reset per 10 s before GOAWAY: 200 */
    unsigned conns_per_worker;  /* open client connections per worker thread: 0 = the total */
    unsigned conns_total;      /* over every worker: 0 = from RLIMIT_NOFILE (see gh_http_fd_budget);
                                  never more than that allows */
    uint32_t head_ms;          /* from a connection's first byte (or a request's) to its
                                  complete head: 10 s (408, close) */
    uint32_t idle_ms;          /* a keep-alive or HTTP/2 connection with nothing to do: 60 s */
    uint32_t body_ms;          /* a request body making no progress (no byte) this long: 30 s
                                  (408); a steady slow upload is never cut */
    uint32_t tls_handshake_ms; /* 10 s */
};

/* The defaults above. */
void gh_http_limits_default(struct gh_http_limits *l);

/*
 * Raises RLIMIT_NOFILE's soft limit to its hard limit and returns how many client connections a
 * process may hold with `reserve` descriptors kept for everything else (files, upstream sockets
 * are counted by the caller in `reserve`...). Call once at start, before the servers.
 */
unsigned gh_http_fd_budget(unsigned reserve);

/* What a limit refused, for the metric's label (gh_http_limit_names). */
enum gh_http_limit {
    GH_HTTP_LIMIT_CONNECTIONS,  /* a connection closed at accept: too many open */
    GH_HTTP_LIMIT_HEADER_BYTES, /* 431 */
    GH_HTTP_LIMIT_HEADER_COUNT, /* 431 */
    GH_HTTP_LIMIT_TARGET,       /* 414 */
    GH_HTTP_LIMIT_BODY,         /* 413 */
    GH_HTTP_LIMIT_H2_STREAMS,   /* a stream refused (REFUSED_STREAM) over the concurrency */
    GH_HTTP_LIMIT_H2_RESETS,    /* a connection ended (GOAWAY) for resetting too many streams */
    GH_HTTP_LIMIT_H2_FLOOD,     /* a connection ended by nghttp2 for a flood (settings, pings,
                                   CONTINUATION, empty frames) */
    GH_HTTP_LIMIT_HEAD_TIMEOUT, /* 408 */
    GH_HTTP_LIMIT_BODY_TIMEOUT, /* 408 */
    GH_HTTP_LIMIT_TLS_TIMEOUT,  /* a handshake that did not finish */
    GH_HTTP_LIMIT_COUNT
};
extern const char *const gh_http_limit_names[GH_HTTP_LIMIT_COUNT];

/* Every field only ever moves by relaxed atomics; read for /metrics. */
struct gh_http_metrics {
    atomic_int_fast64_t connections_open; /* client connections now */
    atomic_uint_fast64_t connections_total;
    atomic_uint_fast64_t connections_http2;
    atomic_uint_fast64_t tls_handshake_failures;
    atomic_uint_fast64_t malformed; /* requests refused 400/501/505 for their framing */
    atomic_uint_fast64_t limits[GH_HTTP_LIMIT_COUNT];
    atomic_uint_fast64_t idle_closed; /* connections closed after idle_ms */
};

/* ---- requests ---- */

struct gh_http_header {
    const char *name; /* lower case */
    const char *value;
    size_t name_len, value_len;
};

struct gh_http_request;

/* A refusal the front end decided on its own, before or instead of the handler's decision. */
struct gh_http_refusal {
    int status;          /* 400, 408, 413, 414, 431, 501, 505 */
    const char *code;    /* "bad_request", "headers_too_large", ... (static) */
    const char *message; /* a sentence for the client (static) */
};

struct gh_http_handler {
    /*
     * A request's head is complete (or was refused: then req->refusal is set and the handler must
     * answer it with gh_http_respond, in its own style, without reading a body). The request is
     * the handler's until it has answered and `on_done` ran. The worker thread.
     */
    void (*on_request)(void *ctx, struct gh_http_request *req);
    /* Body bytes, after gh_http_body_start. `state`: 0 more may come, 1 this was the last (len may
     * be 0), or a negative GH_HTTP_BODY_* failure (the request cannot be answered any more unless
     * it has not started answering: then a refusal is still possible). */
    void (*on_body)(void *ctx, struct gh_http_request *req, const char *data, size_t len,
                    int state);
    /* The response's buffered bytes fell under the low mark after gh_http_respond_write said 0. */
    void (*on_writable)(void *ctx, struct gh_http_request *req);
    /* The request is over: its answer was sent whole, or the client went away or reset the stream
     * (`completed` 0). Release everything that points to `req`; it is freed after this returns. */
    void (*on_done)(void *ctx, struct gh_http_request *req, int completed);
};

#define GH_HTTP_BODY_TOO_LARGE (-1) /* past max_body, announced or sent: answer 413 if possible */
#define GH_HTTP_BODY_TIMEOUT   (-2) /* no progress for body_ms: 408 if it still can */
#define GH_HTTP_BODY_BROKEN    (-3) /* invalid chunked framing, the client closed or reset */

struct gh_http_request {
    /* the head, read-only; byte slices that live as long as the request */
    const char *method;
    size_t method_len;
    const char *path; /* the target as sent: origin-form "/a/b?q" (absolute-form is reduced to
                         its path and query; "*" for OPTIONS *) */
    size_t path_len;
    size_t query_at;       /* index of '?' in path, or SIZE_MAX */
    const char *authority; /* Host or :authority ("" when none, HTTP/1.0) */
    size_t authority_len;
    int version;                          /* 0x100, 0x101, 0x200 */
    int tls;                              /* it came over TLS */
    const struct gh_http_header *headers; /* in the order sent; names lower case */
    size_t n_headers;
    int64_t content_length; /* -1 unknown (chunked, or HTTP/2 without one), 0 no body */
    int expect_continue;
    const struct gh_http_refusal *refusal; /* non-NULL: answer this, do nothing else */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    uint64_t started_ns; /* when its first byte (HTTP/2: its HEADERS) arrived */
    uint64_t bytes_sent; /* response bytes written so far, head included */
    void *state;         /* the handler's: state_size bytes zeroed, freed with the request */
    struct gh_http_worker *worker;
};

/* Memory that lives as long as the request (freed after on_done); NULL when out of memory or past
 * the request's arena limit (64 KiB beyond its head). */
void *gh_http_request_alloc(struct gh_http_request *req, size_t size);

/* The first value of header `lc_name` (lower case) and the index after it to search on; NULL
 * when there is none from `*at`. */
const struct gh_http_header *gh_http_header_find(const struct gh_http_request *req,
                                                 const char *lc_name, size_t len, size_t *at);

/* ---- answering ---- */

/*
 * A whole answer: status, headers (names in any case; Content-Length, Transfer-Encoding,
 * Connection and Date are the front end's and are ignored here) and a body, all copied. For HEAD
 * the body is not sent but its length is. GH_OK, or GH_ERR_INVALID_ARG when an answer was started
 * already. After it, the request ends (on_done) once the bytes are handed to the kernel.
 */
int gh_http_respond(struct gh_http_request *req, int status, const struct gh_http_header *headers,
                    size_t n_headers, const void *body, size_t len);

/* Starts a streamed answer: `content_length` -1 when unknown (HTTP/1.1 chunked, HTTP/2 DATA to
 * the end). */
int gh_http_respond_start(struct gh_http_request *req, int status,
                          const struct gh_http_header *headers, size_t n_headers,
                          int64_t content_length);

/* Adds body bytes (copied) to a started answer; `last` ends it. 1 when more may be written now, 0
 * when the buffered bytes are over the high mark: wait for on_writable. -1 when the connection is
 * gone (on_done follows). Writing past an announced Content-Length is refused (-1, stream cut). */
int gh_http_respond_write(struct gh_http_request *req, const void *data, size_t len, int last);

/* Ends a started answer abnormally: HTTP/1 closes the connection, HTTP/2 resets the stream, so the
 * client sees an incomplete answer rather than a short one that looks whole. */
void gh_http_respond_abort(struct gh_http_request *req);

/* Asks that the connection close after this answer (HTTP/1: Connection: close). */
void gh_http_request_close_after(struct gh_http_request *req);

/* ---- reading the body ---- */

/* Starts delivering the body to on_body (a request without one gets on_body(.., 0 bytes, 1) from
 * the loop). Sends 100 Continue first when the client waits for it. Only once per request. */
void gh_http_body_start(struct gh_http_request *req);
/* Stops and resumes on_body calls (HTTP/1: reading stops; HTTP/2: the window is not reopened). */
void gh_http_body_pause(struct gh_http_request *req);
void gh_http_body_resume(struct gh_http_request *req);

/* ---- workers ---- */

struct gh_http_worker;

/* The worker's loop and index, and a pointer the owner keeps per worker (worker_init's). */
struct gh_loop *gh_http_worker_loop(struct gh_http_worker *w);
unsigned gh_http_worker_index(const struct gh_http_worker *w);
void *gh_http_worker_data(struct gh_http_worker *w);

/* ---- the server ---- */

struct gh_http_server_options {
    const char *listen;             /* as gh_listen_open */
    int listen_flags;               /* GH_LISTEN_NAMES or 0 */
    unsigned threads;               /* workers; at least 1 */
    const char *tls_cert, *tls_key; /* both or neither */
    int http2;                      /* offer h2 by ALPN over TLS */
    struct gh_http_limits limits;   /* zero fields take the defaults */
    const char *server_name;        /* "gatehouse": no Server header when NULL */
    const struct gh_http_handler *handler;
    void *handler_ctx;
    size_t state_size; /* bytes of req->state */
    /* called on each worker's thread before it accepts and after its last connection closed;
     * worker_init's return value is gh_http_worker_data's; NULL callbacks are fine */
    void *(*worker_init)(void *ctx, struct gh_http_worker *w);
    void (*worker_fini)(void *ctx, struct gh_http_worker *w, void *data);
    /* called on the worker thread each turn while draining, until it returns 1 (its own work,
     * such as upstream connections, is finished); NULL: nothing to wait for */
    int (*worker_idle)(void *ctx, struct gh_http_worker *w, void *data);
    struct gh_http_metrics *metrics; /* the caller's, zeroed; must outlive the server */
};

struct gh_http_server;

/* Binds, loads TLS, starts the workers. Errors as gh_listen_open, GH_ERR_INVALID_ARG for bad
 * options, GH_ERR_IO for TLS files or threads (message in `error`). */
int gh_http_server_start(const struct gh_http_server_options *o, struct gh_http_server **out,
                         char *error, size_t cap);

/* Bound addresses, as gh_listen_set holds them. */
size_t gh_http_server_address_count(const struct gh_http_server *s);
const char *gh_http_server_address_at(const struct gh_http_server *s, size_t i);

/*
 * Stops accepting (the port refuses connections from now on), lets requests in flight finish for
 * up to `drain_ms` (idle HTTP/1 connections close at once, busy ones after their answer with
 * Connection: close, HTTP/2 ones get GOAWAY), cuts what is left, joins the workers. Then frees.
 * NULL is fine.
 */
void gh_http_server_stop(struct gh_http_server *s, uint32_t drain_ms);

/* 1 once gh_http_server_stop began: for handlers that answer differently while draining. */
int gh_http_server_stopping(const struct gh_http_server *s);

#endif
