/*
 * The upstream side of an allowed request. h2o 2.2's reverse proxy does the HTTP work (request
 * line and body, keep-alive, streaming the answer back, X-Forwarded-For/-Proto and Via); we give
 * it a destination per request with h2o_reprocess_request and an h2o_req_overrides_t, which makes
 * it proxy instead of routing. What the overrides point to is per worker thread: an HTTP client
 * context per distinct timeout (h2o's I/O timeout is fixed per context) and a keep-alive pool per
 * upstream scheme://host:port. Pools are per thread, not shared, because a pooled socket carries
 * buffers from its thread's free lists and the pool's expiry runs on one loop's clock.
 * Headers are rewritten here first: hop-by-hop ones and every incoming X-Gatehouse-* go, the
 * identity of the caller comes in.
 */
#include "gateway/server_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_IDLE_MS 2000 /* keep-alive connections unused this long are closed */
#define MAX_POOLS    256  /* per worker; more upstreams connect without keep-alive */
#define MAX_CLIENTS  64   /* distinct timeouts per worker; more share h2o's default (30 s) */

/* ---- per-worker resources ---- */

static h2o_http1client_ctx_t *client_for(struct gw_worker *w, int timeout_ms)
{
    uint64_t ms = timeout_ms > 0 ? (uint64_t)timeout_ms : 30000;
    struct gw_client *c, **grown;

    for (size_t i = 0; i < w->n_clients; i++)
        if (w->clients[i]->timeout_ms == ms)
            return &w->clients[i]->ctx;
    if (w->n_clients == MAX_CLIENTS || (c = calloc(1, sizeof *c)) == NULL)
        return &w->ctx.proxy.client_ctx;
    if ((grown = realloc(w->clients, (w->n_clients + 1) * sizeof *grown)) == NULL) {
        free(c);
        return &w->ctx.proxy.client_ctx;
    }
    w->clients = grown;
    c->timeout_ms = ms;
    h2o_timeout_init(w->loop, &c->io_timeout, ms);
    c->ctx.loop = w->loop;
    c->ctx.getaddr_receiver = &w->ctx.receivers.hostinfo_getaddr;
    c->ctx.io_timeout = &c->io_timeout;
    c->ctx.websocket_timeout = NULL; /* no upgrades through the gateway */
    c->ctx.ssl_ctx = w->server->client_tls;
    w->clients[w->n_clients++] = c;
    return &c->ctx;
}

/* The pool for the upstream's scheme, host and port; NULL when the worker has too many. */
static h2o_socketpool_t *pool_for(struct gw_worker *w, const h2o_url_t *up)
{
    char key[512];
    struct gw_pool *p, **grown;
    uint16_t port = h2o_url_get_port(up);
    int n = snprintf(key, sizeof key, "%.*s://%.*s:%u", (int)up->scheme->name.len,
                     up->scheme->name.base, (int)up->host.len, up->host.base, (unsigned)port);

    if (n < 0 || (size_t)n >= sizeof key)
        return NULL;
    h2o_strtolower(key, (size_t)n);
    for (size_t i = 0; i < w->n_pools; i++)
        if (strcmp(w->pools[i]->key, key) == 0)
            return &w->pools[i]->pool;
    if (w->n_pools == MAX_POOLS || (p = calloc(1, sizeof *p)) == NULL)
        return NULL;
    if ((p->key = strdup(key)) == NULL ||
        (grown = realloc(w->pools, (w->n_pools + 1) * sizeof *grown)) == NULL) {
        free(p->key);
        free(p);
        return NULL;
    }
    w->pools = grown;
    h2o_socketpool_init_by_hostport(&p->pool, up->host, port, up->scheme == &H2O_URL_SCHEME_HTTPS,
                                    SIZE_MAX);
    h2o_socketpool_set_timeout(&p->pool, w->loop, POOL_IDLE_MS);
    w->pools[w->n_pools++] = p;
    return &p->pool;
}

void gw_proxy_dispose(struct gw_worker *w)
{
    for (size_t i = 0; i < w->n_pools; i++) {
        h2o_socketpool_dispose(&w->pools[i]->pool);
        free(w->pools[i]->key);
        free(w->pools[i]);
    }
    free(w->pools);
    w->pools = NULL;
    w->n_pools = 0;
    for (size_t i = 0; i < w->n_clients; i++) {
        h2o_timeout_dispose(w->loop, &w->clients[i]->io_timeout);
        free(w->clients[i]);
    }
    free(w->clients);
    w->clients = NULL;
    w->n_clients = 0;
}

/* ---- the upstream request ---- */

/* 1 when `name` is one of the comma-separated tokens of the Connection headers: those headers
 * are hop-by-hop too (RFC 9110 7.6.1). */
static int named_by_connection(const h2o_req_t *req, const h2o_iovec_t *name)
{
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (h->name != &H2O_TOKEN_CONNECTION->buf)
            continue;
        const char *p = h->value.base, *end = p + h->value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *start = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if (p > start && h2o_lcstris(start, (size_t)(p - start), name->base, name->len))
                return 1;
        }
    }
    return 0;
}

static int is_dropped(const h2o_req_t *req, const h2o_header_t *h, int forward_authorization,
                      int has_connection)
{
    static const char *const names[] = {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
        "http2-settings",
        "api-token",
        "x-request-id",
        "x-forwarded-host",
        "x-forwarded-proto",
        /* h2o writes these itself; a second copy would let the upstream pick */
        "host",
        "content-length",
        "expect",
    };
    const h2o_iovec_t *name = h->name;

    if (name->len >= 12 && h2o_lcstris(name->base, 12, H2O_STRLIT("x-gatehouse-")))
        return 1;
    if (!forward_authorization && name == &H2O_TOKEN_AUTHORIZATION->buf)
        return 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (h2o_lcstris(name->base, name->len, names[i], strlen(names[i])))
            return 1;
    return has_connection && named_by_connection(req, name);
}

/* The values are not copied: the decision and the configuration they come from live until the
 * request ends, and h2o's proxy copies them into the upstream request before that. */
static void add(h2o_req_t *req, h2o_headers_t *headers, const char *name, size_t name_len,
                const char *value)
{
    h2o_add_header_by_str(&req->pool, headers, name, name_len, 1, NULL, value, strlen(value));
}

/* X-Forwarded-For and -Proto are h2o's: it appends the client to the first and sets the second
 * from the connection, dropping any sent one. */
static void rewrite_headers(struct gw_req *g)
{
    h2o_req_t *req = g->req;
    const struct gh_decision *d = &g->decision;
    int has_connection = h2o_find_header(&req->headers, H2O_TOKEN_CONNECTION, -1) != -1;
    h2o_headers_t out;

    memset(&out, 0, sizeof out);
    h2o_vector_reserve(&req->pool, &out, req->headers.size + 6);
    for (size_t i = 0; i < req->headers.size; i++)
        if (!is_dropped(req, &req->headers.entries[i], d->collection->forward_authorization,
                        has_connection))
            out.entries[out.size++] = req->headers.entries[i];
    add(req, &out, H2O_STRLIT("x-gatehouse-client-id"), d->profile->client_id);
    add(req, &out, H2O_STRLIT("x-gatehouse-profile-id"), d->profile->id);
    if (d->profile->auth_type != GH_AUTH_TOKEN && d->claims_b64 != NULL)
        add(req, &out, H2O_STRLIT("x-gatehouse-claims"), d->claims_b64);
    add(req, &out, H2O_STRLIT("x-request-id"), g->request_id);
    h2o_add_header_by_str(&req->pool, &out, H2O_STRLIT("x-forwarded-host"), 1, NULL,
                          req->input.authority.base, req->input.authority.len);
    req->headers = out;
}

/* <upstream base path><rest of the request path><?query as received>, with no "//" where the
 * base ends and the rest begins. */
static h2o_iovec_t upstream_path(struct gw_req *g, const h2o_url_t *up)
{
    h2o_req_t *req = g->req;
    h2o_iovec_t base = up->path, rest = h2o_iovec_init(g->decision.rest, g->decision.rest_len);
    h2o_iovec_t query = h2o_iovec_init(NULL, 0);

    if (rest.len > 0 && base.len > 0 && base.base[base.len - 1] == '/')
        base.len--;
    if (base.len == 0 && rest.len == 0)
        base = h2o_iovec_init(H2O_STRLIT("/"));
    if (req->input.query_at != SIZE_MAX)
        query = h2o_iovec_init(req->input.path.base + req->input.query_at,
                               req->input.path.len - req->input.query_at);
    return h2o_concat(&req->pool, base, rest, query);
}

/* Location headers that point into the upstream base are turned back into the public path.
 * h2o compares by prefix, so both sides get a trailing '/'. */
static void location_rewrite(struct gw_req *g, const h2o_url_t *up, h2o_req_overrides_t *ov)
{
    h2o_req_t *req = g->req;
    const struct gh_config_collection *col = g->decision.collection;
    h2o_url_t *match = h2o_mem_alloc_pool(&req->pool, sizeof *match);
    int slash = up->path.len > 0 && up->path.base[up->path.len - 1] == '/';

    *match = *up;
    if (!slash)
        match->path = h2o_concat(&req->pool, up->path, h2o_iovec_init(H2O_STRLIT("/")));
    ov->location_rewrite.match = match;
    ov->location_rewrite.path_prefix = h2o_concat(
        &req->pool, h2o_iovec_init(col->path, col->path_len), h2o_iovec_init(H2O_STRLIT("/")));
}

void gw_proxy_start(struct gw_req *g)
{
    h2o_req_t *req = g->req;
    struct gw_worker *w = g->worker;
    const struct gh_config_collection *col = g->decision.collection;
    h2o_url_t *up = h2o_mem_alloc_pool(&req->pool, sizeof *up);
    h2o_req_overrides_t *ov;

    if (h2o_url_parse(col->upstream, SIZE_MAX, up) != 0) {
        gw_respond(g, 502, GH_GW_BAD_GATEWAY, "The API's upstream URL is not valid.");
        return;
    }
    ov = h2o_mem_alloc_pool(&req->pool, sizeof *ov);
    memset(ov, 0, sizeof *ov);
    ov->client_ctx = client_for(w, g->decision.endpoint->timeout_ms);
    /* without a pool (too many upstreams), h2o connects to scheme://authority by itself */
    ov->socketpool = pool_for(w, up);
    location_rewrite(g, up, ov);
    rewrite_headers(g);
    g->proxied = 1;
    h2o_reprocess_request(req, req->method, up->scheme, up->authority, upstream_path(g, up), ov, 0);
}
