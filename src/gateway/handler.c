// SPDX-License-Identifier: Apache-2.0
/*
 * One request's way through the gateway: its state is made, the configuration snapshot it will
 * use to the end is taken, the pipeline decides, and the request is refused, proxied, or parked.
 * Parking is how a worker waits for a key refetch without blocking: the wait is registered with
 * the provider, whose manager thread posts a message to this worker's queue when it ends, and the
 * request is decided again from that message. A client may leave meanwhile; the park then
 * outlives the request and whoever sees it last (the dispose hook or the message) frees it.
 */
#include "gateway/server_internal.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/requestid.h"

/* Refetch attempts of one request before an unknown kid counts as final. */
#define MAX_REFETCH_ROUNDS 2

/* ---- request state ---- */

/* Only a marker: it finds our state among req->prefilters; the response work is the filter's. */
static void marker_setup(h2o_req_prefilter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    h2o_setup_next_prefilter(self, req, slot);
}

struct gw_req *gw_req_of(h2o_req_t *req)
{
    for (h2o_req_prefilter_t *p = req->prefilters; p != NULL; p = p->next)
        if (p->on_setup_ostream == marker_setup)
            return H2O_STRUCT_FROM_MEMBER(struct gw_req, marker, p);
    return NULL;
}

/* The caller's X-Request-Id when it is sane, else a new random one (common/requestid.h). */
static void set_request_id(struct gw_req *g, h2o_req_t *req)
{
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);

    if (at == -1)
        gh_request_id_make(NULL, 0, g, g->request_id);
    else
        gh_request_id_make(req->headers.entries[at].value.base, req->headers.entries[at].value.len,
                           g, g->request_id);
}

static void attach(struct gw_req *g, struct gw_worker *w, h2o_req_t *req)
{
    memset(g, 0, sizeof *g);
    g->worker = w;
    g->req = req;
    g->started_ns = gw_now_ns();
    g->marker.on_setup_ostream = marker_setup;
    g->marker.next = req->prefilters;
    req->prefilters = &g->marker;
    set_request_id(g, req);
}

/*
 * Runs when the request's pool is cleared, after the access log. A registered wait is withdrawn;
 * when that is too late (notify ran or is running on the manager thread), the park is left to
 * the message that notify posts, with its request pointer cleared.
 */
static void on_dispose(void *p)
{
    struct gw_req *g = p;

    if (g->park != NULL) {
        if (gh_provider_cancel_wait(g->park_provider, &g->park->wait)) {
            free(g->park);
            g->worker->parks--;
        } else {
            g->park->g = NULL;
        }
        g->park = NULL;
    }
    gh_decision_clear(&g->decision);
    gh_config_unref(g->config);
}

static struct gw_req *gw_req_new(struct gw_worker *w, h2o_req_t *req)
{
    struct gw_req *g = h2o_mem_alloc_shared(&req->pool, sizeof *g, on_dispose);

    attach(g, w, req);
    return g;
}

struct gw_req *gw_req_adopt(h2o_req_t *req)
{
    struct gw_req *g = h2o_mem_alloc_pool(&req->pool, sizeof *g);

    attach(g, gw_worker_of(req->conn->ctx), req);
    g->adopted = 1;
    return g;
}

/* ---- what the pipeline reads ---- */

/* The value of a header that may appear at most once: 0 absent, 1 found, -1 repeated. */
static int single_header(h2o_req_t *req, ssize_t at, ssize_t again, const char **value, size_t *len)
{
    if (at == -1)
        return 0;
    if (again != -1)
        return -1;
    *value = req->headers.entries[at].value.base;
    *len = req->headers.entries[at].value.len;
    return 1;
}

static void fill_client_address(h2o_req_t *req, struct gh_request_view *v)
{
    struct sockaddr_storage ss;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    socklen_t len = sock != NULL ? h2o_socket_getpeername(sock, (struct sockaddr *)&ss) : 0;

    v->family = 0; /* unknown: no ip_allow list can match it */
    if (len != 0 && ss.ss_family == AF_INET) {
        v->family = 4;
        memcpy(v->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (len != 0 && ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) { /* an IPv4 client of a dual-stack socket */
            v->family = 4;
            memcpy(v->addr, sin6->sin6_addr.s6_addr + 12, 4);
        } else {
            v->family = 6;
            memcpy(v->addr, sin6->sin6_addr.s6_addr, 16);
        }
    }
}

/* -1 when a credential header is repeated: which one counts would be a guess, and the upstream
 * might read the other. */
static int fill_view(struct gw_req *g)
{
    h2o_req_t *req = g->req;
    struct gh_request_view *v = &g->view;
    ssize_t auth = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    ssize_t key = h2o_find_header_by_str(&req->headers, H2O_STRLIT("api-token"), -1);

    v->cache = g->worker->tokens;
    v->method = req->input.method.base;
    v->method_len = req->input.method.len;
    v->path = req->input.path.base;
    v->path_len = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
    if (req->input.query_at != SIZE_MAX) {
        v->query = req->input.path.base + req->input.query_at + 1;
        v->query_len = req->input.path.len - req->input.query_at - 1;
    }
    if (single_header(req, auth,
                      auth == -1 ? -1
                                 : h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, auth),
                      &v->authorization, &v->authorization_len) < 0 ||
        single_header(
            req, key,
            key == -1 ? -1 : h2o_find_header_by_str(&req->headers, H2O_STRLIT("api-token"), key),
            &v->api_token, &v->api_token_len) < 0)
        return -1;
    fill_client_address(req, v);
    return 0;
}

/* ---- deciding, parking, resuming ---- */

enum park_outcome { PARKED, RETRY_NOW, RETRY_FINAL };

/* Called on the manager thread: hand the park to the worker's loop and never touch it again. */
static void on_wait_notify(struct gh_provider_wait *wait, int result)
{
    struct gw_park *park = wait->ctx;

    park->result = result;
    if (!gw_worker_post(park->worker, &park->msg))
        free(park); /* the worker is gone (an abandoned drain): nobody else will */
}

static enum park_outcome park(struct gw_req *g)
{
    struct gw_park *p = calloc(1, sizeof *p);
    int rc;

    if (p == NULL)
        return RETRY_FINAL;
    p->worker = g->worker;
    p->g = g;
    p->wait.notify = on_wait_notify;
    p->wait.ctx = p;
    rc = gh_provider_request_refetch(g->decision.provider, g->decision.keyset, g->decision.kid,
                                     g->decision.kid_len, &p->wait, NULL);
    if (rc == 1) {
        /* notify may already be running, but its message is handled on this thread, later */
        g->park = p;
        g->park_provider = g->decision.provider;
        g->worker->parks++;
        atomic_fetch_add_explicit(&g->worker->server->metrics.parked, 1, memory_order_relaxed);
        return PARKED;
    }
    free(p);
    return rc == GH_OK ? RETRY_NOW : RETRY_FINAL;
}

static int64_t realtime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void allow(struct gw_req *g)
{
    struct gh_gateway_server *s = g->worker->server;
    char message[160];

    if (s->o.ratelimiter != NULL) {
        gh_ratelimit_check(s->o.ratelimiter, g->decision.profile, realtime_ms(), &g->rate);
        if (!g->rate.allowed) {
            snprintf(message, sizeof message,
                     "The rate limit or quota of this access profile is used up; retry in %lld "
                     "seconds.",
                     (long long)g->rate.retry_after);
            gw_respond(g, 429, GH_GW_RATE_LIMITED, message);
            return;
        }
    }
    /* h2o refuses larger bodies itself when they announce their length; this catches the rest */
    if (g->req->entity.len > s->o.max_body) {
        snprintf(message, sizeof message, "The request body is larger than %zu bytes.",
                 s->o.max_body);
        gw_respond(g, 413, GH_GW_PAYLOAD_TOO_LARGE, message);
        return;
    }
    gw_proxy_start(g);
}

static void decide(struct gw_req *g, int after_refetch)
{
    const struct gh_gateway_settings *settings = g->worker->server->o.settings;

    for (;;) {
        gh_decision_clear(&g->decision);
        gh_gateway_decide(settings, g->config, &g->view, gh_clock_wall_seconds(), after_refetch,
                          &g->decision);
        g->decided = 1;
        if (g->decision.cache_hit)
            atomic_fetch_add_explicit(&g->worker->server->metrics.cache_hits, 1,
                                      memory_order_relaxed);
        if (g->decision.outcome != GH_OUTCOME_REFETCH)
            break;
        enum park_outcome o = park(g);
        if (o == PARKED)
            return;
        /* newer keys are out already (look again), or no refetch is allowed now (final) */
        after_refetch = o == RETRY_FINAL || ++g->refetch_rounds >= MAX_REFETCH_ROUNDS;
    }
    if (g->decision.outcome == GH_OUTCOME_ALLOW)
        allow(g);
    else
        gw_respond_decision(g);
}

void gw_on_messages(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct gw_worker *w = H2O_STRUCT_FROM_MEMBER(struct gw_worker, receiver, receiver);

    while (!h2o_linklist_is_empty(messages)) {
        struct gw_park *p = H2O_STRUCT_FROM_MEMBER(struct gw_park, msg.link, messages->next);
        struct gw_req *g = p->g;
        h2o_linklist_unlink(&p->msg.link);
        w->parks--;
        free(p);
        if (g != NULL) {
            /* whatever the refetch did, the kid's fate is final now */
            g->park = NULL;
            decide(g, 1);
        }
    }
}

int gw_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct gw_worker *w = gw_worker_of(req->conn->ctx);
    struct gw_req *g = gw_req_new(w, req);
    struct gh_snapshot *snap = gh_snapshot_acquire(w->server->o.config);

    (void)self;
    g->config = snap != NULL ? H2O_STRUCT_FROM_MEMBER(struct gh_config, snap, snap) : NULL;
    if (g->config == NULL) {
        gw_respond(g, 503, GH_GW_UNAVAILABLE, "The gateway has no configuration yet.");
        return 0;
    }
    if (fill_view(g) != 0) {
        gw_respond(g, 400, GH_GW_BAD_REQUEST,
                   "The request has more than one Authorization or api-token header.");
        return 0;
    }
    decide(g, 0);
    return 0;
}
