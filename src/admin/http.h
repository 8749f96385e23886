// SPDX-License-Identifier: Apache-2.0
/*
 * The admin API's HTTP layer (SPEC §6): a listener on the front end (src/http/) with one loop, a
 * route table with `{param}` segments, bearer-token authentication compared in constant time,
 * request bodies capped, and JSON answers. Handlers run on a pool of work threads (or, marked
 * inline, on the loop) and answer synchronously, so they may use the store and wait for the
 * provider manager without stalling the listener; nothing here touches the data plane.
 */
#ifndef GH_ADMIN_HTTP_H
#define GH_ADMIN_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define GH_ADMIN_MAX_BODY   (1024 * 1024)
#define GH_ADMIN_MAX_PARAMS 4

struct gh_admin_request {
    const char *method;        /* NUL-terminated copies */
    const char *path;          /* without the query string, percent-decoding NOT applied */
    const char *query;         /* after '?', "" when none */
    const unsigned char *body; /* NULL when empty; not NUL-terminated */
    size_t body_len;
    const char *remote_addr;                 /* "127.0.0.1" or "::1", for the audit log */
    const char *params[GH_ADMIN_MAX_PARAMS]; /* values of the route's {params}, in order */
    size_t n_params;
};

struct gh_admin_response {
    int status;               /* 200 when left 0 */
    json_t *body;             /* owned by the response; sent as application/json */
    char *text;               /* or a malloc'd text body (metrics), sent as text/plain */
    const char *content_type; /* overrides the type of `text` (static string) */
};

typedef void (*gh_admin_handler)(void *app, const struct gh_admin_request *req,
                                 struct gh_admin_response *res);

struct gh_admin_route {
    const char *method;  /* "GET", "POST", "PATCH", "PUT", "DELETE" */
    const char *pattern; /* "/v1/collections/{id}/endpoints" */
    gh_admin_handler handler;
    int public_route; /* 1: no admin token needed (only /healthz); runs on the loop */
    int inline_route; /* 1: runs on the listener's loop, not a work thread: only for
                         handlers that never block (/readyz, /metrics) */
};

/* A refused admin authentication, for the audit log: never the presented token, nor any of it. */
struct gh_admin_denial {
    const char *remote_addr;
    const char *method, *path; /* valid UTF-8: other bytes are U+FFFD; the path without query */
    const char *reason;        /* why it was refused, as the 401 said */
    int token_presented;       /* 1: a bearer token was there but was not the admin token */
    uint64_t suppressed;       /* refusals not recorded (over the limit) since the last record */
};

struct gh_admin_server_options {
    const char *listen;      /* "127.0.0.1:9901", "[::1]:0"; port 0 picks an ephemeral one */
    const char *admin_token; /* the bearer token every non-public route requires */
    const struct gh_admin_route *routes;
    size_t n_routes;
    void *app;            /* passed to every handler */
    const char *tls_cert; /* both or neither: HTTPS (HTTP/1.1) with this PEM chain and key */
    const char *tls_key;
    /* called on the admin thread for each refused authentication that is recorded (bounded:
     * see DENIALS_PER_ADDRESS in http.c); NULL: only the log line */
    void (*on_denied)(void *app, const struct gh_admin_denial *denial);
};

struct gh_admin_server;

/*
 * Binds the listener and starts the admin thread. Errors: GH_ERR_INVALID_ARG for a bad `listen`
 * (message in `error`; numeric addresses only) or half a TLS pair, GH_ERR_ADDR_IN_USE when
 * something else listens there, GH_ERR_IO when the address cannot be bound or the TLS files cannot
 * be loaded. The options and what they point to must outlive the server.
 */
int gh_admin_server_start(const struct gh_admin_server_options *options,
                          struct gh_admin_server **out, char *error, size_t cap);

/* The bound address as "host:port" (with the real port when 0 was asked for). */
const char *gh_admin_server_address(const struct gh_admin_server *s);

/* Stops accepting, finishes the request in progress, joins the thread, frees everything. NULL ok.
 */
void gh_admin_server_stop(struct gh_admin_server *s);

/*
 * Helpers for handlers. gh_admin_error fills `res` with
 * {"error": code, "message": message, "field": field (omitted when NULL)} and `status`.
 */
void gh_admin_error(struct gh_admin_response *res, int status, const char *code, const char *field,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Frees what `res` owns and clears it. */
void gh_admin_response_clear(struct gh_admin_response *res);

/* The request body as a JSON object (new reference), or NULL after answering 400 bad_request
 * ("the body is not a JSON object: ...") into `res`. */
json_t *gh_admin_json_body(const struct gh_admin_request *req, struct gh_admin_response *res);

/* The value of query parameter `name` (percent-decoded, malloc'd; the caller frees it), or NULL. */
char *gh_admin_query_param(const struct gh_admin_request *req, const char *name);

#endif
