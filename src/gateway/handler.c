// SPDX-License-Identifier: Apache-2.0
/*
 * One request's way through the gateway: its state is made, the configuration snapshot it will
 * use to the end is taken, the pipeline decides, and the request is refused, proxied, or parked.
 * Parking is how a worker waits for a key refetch without blocking: the wait is registered with
 * the provider, whose manager thread posts a message to this worker's queue when it ends, and the
 * request is decided again from that message. A client may leave meanwhile; the park then
 * outlives the request and whoever sees it last (on_done or the message) frees it. A refusal
 * the front end made (req->refusal) is answered here too, in the same JSON.
 */
#include "gateway/server_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stddef.h>
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

/* The caller's X-Request-Id when it is sane, else a new random one (common/requestid.h). */
static void set_request_id(struct gw_req *g)
{
    size_t at = 0;
    const struct gh_http_header *h = gh_http_header_find(g->req, "x-request-id", 12, &at);

    if (h == NULL)
        gh_request_id_make(NULL, 0, g, g->request_id);
    else
        gh_request_id_make(h->value, h->value_len, g, g->request_id);
}

static void attach(struct gw_req *g, struct gw_worker *w, struct gh_http_request *req)
{
    g->worker = w;
    g->req = req;
    g->started_ns = req->started_ns != 0 ? req->started_ns : gw_now_ns();
    set_request_id(g);
}

/*
 * The request ended (answered, or the client left). A registered wait is withdrawn; when that is
 * too late (notify ran or is running on the manager thread), the park is left to the message
 * that notify posts, with its request pointer cleared.
 */
static void release(struct gw_req *g)
{
    if (g->park != NULL) {
        if (gh_provider_cancel_wait(g->park_provider, &g->park->wait)) {
            free(g->park);
            g->worker->parks--;
        } else {
            g->park->g = NULL;
        }
        g->park = NULL;
    }
    gw_proxy_end(g);
    gh_decision_clear(&g->decision);
    gh_config_unref(g->config);
    g->config = NULL;
}

/* ---- what the pipeline reads ---- */

/* The value of a header that may appear at most once: 0 absent, 1 found, -1 repeated. */
static int single_header(const struct gh_http_request *req, const char *name, size_t name_len,
                         const char **value, size_t *len)
{
    size_t at = 0;
    const struct gh_http_header *h = gh_http_header_find(req, name, name_len, &at);

    if (h == NULL)
        return 0;
    if (gh_http_header_find(req, name, name_len, &at) != NULL)
        return -1;
    *value = h->value;
    *len = h->value_len;
    return 1;
}

/* The TCP peer as family 4 or 6 (an IPv4 client of a dual-stack socket as IPv4); 0 unknown. */
static int peer_address(const struct gh_http_request *req, uint8_t addr[16])
{
    const struct sockaddr_storage *ss = &req->peer;

    if (req->peer_len != 0 && ss->ss_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        return 4;
    }
    if (req->peer_len != 0 && ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            memcpy(addr, sin6->sin6_addr.s6_addr + 12, 4);
            return 4;
        }
        memcpy(addr, sin6->sin6_addr.s6_addr, 16);
        return 6;
    }
    return 0;
}

/* X-Forwarded-For's fields joined with ", " in the request's memory; NULL when none. */
static const char *joined_xff(const struct gh_http_request *req, size_t *len)
{
    size_t at = 0, n = 0, total = 0;
    const struct gh_http_header *h;
    char *out;

    while ((h = gh_http_header_find(req, "x-forwarded-for", 15, &at)) != NULL)
        total += h->value_len + (n++ != 0 ? 2 : 0);
    if (n == 0 || (out = gh_http_request_alloc((struct gh_http_request *)req, total)) == NULL)
        return NULL;
    at = n = 0;
    *len = 0;
    while ((h = gh_http_header_find(req, "x-forwarded-for", 15, &at)) != NULL) {
        if (n++ != 0) {
            memcpy(out + *len, ", ", 2);
            *len += 2;
        }
        memcpy(out + *len, h->value, h->value_len);
        *len += h->value_len;
    }
    return out;
}

/* The client: the peer, or, from a trusted proxy, the first untrusted hop of X-Forwarded-For. */
static void fill_client_address(struct gw_req *g)
{
    const struct gh_trusted_proxies *t = g->worker->server->o.trusted_proxies;
    struct gh_request_view *v = &g->view;
    uint8_t peer[16] = {0};
    int family = peer_address(g->req, peer);
    const char *xff;
    size_t xff_len = 0;

    v->family = family; /* 0: unknown, no ip_allow list can match it */
    memcpy(v->addr, peer, sizeof v->addr);
    g->peer_trusted = family != 0 && t != NULL && gh_trusted_proxies_contains(t, family, peer);
    if (g->peer_trusted && (xff = joined_xff(g->req, &xff_len)) != NULL)
        gh_forwarded_client(t, family, peer, xff, xff_len, &v->family, v->addr);
}

/* -1 when a credential header is repeated: which one counts would be a guess, and the upstream
 * might read the other. */
static int fill_view(struct gw_req *g)
{
    const struct gh_http_request *req = g->req;
    struct gh_request_view *v = &g->view;

    v->cache = g->worker->tokens;
    v->method = req->method;
    v->method_len = req->method_len;
    v->path = req->path;
    v->path_len = req->query_at != SIZE_MAX ? req->query_at : req->path_len;
    if (req->query_at != SIZE_MAX) {
        v->query = req->path + req->query_at + 1;
        v->query_len = req->path_len - req->query_at - 1;
    }
    if (single_header(req, "authorization", 13, &v->authorization, &v->authorization_len) < 0 ||
        single_header(req, "api-token", 9, &v->api_token, &v->api_token_len) < 0)
        return -1;
    fill_client_address(g);
    return 0;
}

/* ---- deciding, parking, resuming ---- */

enum park_outcome { PARKED, RETRY_NOW, RETRY_FINAL };

static void decide(struct gw_req *g, int after_refetch);

/* On the worker's loop: the refetch ended, whatever it did; the kid's fate is final now. */
static void on_park_message(struct gh_loop_msg *msg)
{
    struct gw_park *p = msg->data;
    struct gw_req *g = p->g;

    p->worker->parks--;
    free(p);
    if (g != NULL) {
        g->park = NULL;
        decide(g, 1);
    }
}

/* Called on the manager thread: hand the park to the worker's loop and never touch it again. */
static void on_wait_notify(struct gh_provider_wait *wait, int result)
{
    struct gw_park *park = wait->ctx;

    park->result = result;
    if (!gw_worker_post(park->worker, &park->msg))
        free(park); /* the worker is gone: nobody else will */
}

static enum park_outcome park(struct gw_req *g)
{
    struct gw_park *p = calloc(1, sizeof *p);
    int rc;

    if (p == NULL)
        return RETRY_FINAL;
    p->worker = g->worker;
    p->g = g;
    p->msg.cb = on_park_message;
    p->msg.data = p;
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
    /* the front end refuses announced bodies over max_body itself; this is the same rule */
    if (g->req->content_length > 0 && (uint64_t)g->req->content_length > s->o.max_body) {
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

static void on_request(void *ctx, struct gh_http_request *req)
{
    struct gh_gateway_server *s = ctx;
    struct gw_worker *w = gh_http_worker_data(req->worker);
    struct gw_req *g = req->state;
    struct gh_snapshot *snap;

    attach(g, w, req);
    if (req->refusal != NULL) {
        gw_respond_refusal(g, req->refusal);
        return;
    }
    snap = gh_snapshot_acquire(s->o.config);
    g->config =
        snap != NULL ? (struct gh_config *)((char *)snap - offsetof(struct gh_config, snap)) : NULL;
    if (g->config == NULL) {
        gw_respond(g, 503, GH_GW_UNAVAILABLE, "The gateway has no configuration yet.");
        return;
    }
    if (fill_view(g) != 0) {
        gw_respond(g, 400, GH_GW_BAD_REQUEST,
                   "The request has more than one Authorization or api-token header.");
        return;
    }
    decide(g, 0);
}

static void on_body(void *ctx, struct gh_http_request *req, const char *data, size_t len, int state)
{
    (void)ctx;
    gw_proxy_body(req->state, data, len, state);
}

static void on_writable(void *ctx, struct gh_http_request *req)
{
    (void)ctx;
    gw_proxy_writable(req->state);
}

static void on_done(void *ctx, struct gh_http_request *req, int completed)
{
    struct gw_req *g = req->state;

    (void)ctx;
    if (g->worker == NULL) /* never handed to on_request */
        return;
    gw_log_request(g, completed); /* first: it reads the decision and the exchange */
    release(g);
}

const struct gh_http_handler gw_handler = {on_request, on_body, on_writable, on_done};
