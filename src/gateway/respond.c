// SPDX-License-Identifier: Apache-2.0
/*
 * Every answer that does not come from an upstream, and the finishing touches on those that do.
 * Our refusals are SPEC §5's JSON errors; the front end's own refusals (413 over --max-body, 400
 * for malformed requests, 408, 431...) reach the handler as req->refusal and are answered here in
 * the same JSON. X-Request-Id goes on every answer and RateLimit-* on every answer of a limited
 * profile (gw_decorate, also used by proxy.c for upstream answers). The access log line and the
 * counters are written when the request ends.
 */
#include "gateway/server_internal.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/error.h"

#define REALM         "Bearer realm=\"gatehouse\""
#define LOG_LINE_MAX  8192
#define LOG_PATH_MAX  1024
#define LOG_FIELD_MAX 128
#define LOG_AGENT_MAX 256 /* bytes of the User-Agent kept: enough to tell clients apart */
#define MAX_HEADERS   (6 + GW_DECORATIONS)

#define HDR(n, v, vl) ((struct gh_http_header){(n), (v), sizeof(n) - 1, (vl)})

/* {"error":..., "message":..., "request_id":...} in the request's memory; NULL when out of it. */
static char *error_body(struct gw_req *g, const char *code, const char *message, size_t *len)
{
    size_t cap = 64 + strlen(code) + 6 * strlen(message) + strlen(g->request_id);
    char *buf = gh_http_request_alloc(g->req, cap);
    struct gh_line line;

    if (buf == NULL)
        return NULL;
    gh_line_init(&line, buf, cap);
    gh_line_str(&line, "error", code, strlen(code), SIZE_MAX);
    gh_line_str(&line, "message", message, strlen(message), SIZE_MAX);
    gh_line_str(&line, "request_id", g->request_id, strlen(g->request_id), SIZE_MAX);
    gh_line_end(&line);  /* cannot fail: cap covers the worst escaping */
    *len = line.len - 1; /* without the line's newline */
    return buf;
}

static size_t put_int(char *buf, size_t cap, int64_t value)
{
    int n = snprintf(buf, cap, "%lld", (long long)value);

    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t gw_decorate(const struct gw_req *g, struct gh_http_header *out, char *buf)
{
    size_t n = 0, used = 0;

    out[n++] = HDR("x-request-id", g->request_id, strlen(g->request_id));
    if (g->rate.limited) {
        static const char *const names[3] = {"ratelimit-limit", "ratelimit-remaining",
                                             "ratelimit-reset"};
        const int64_t values[3] = {g->rate.limit, g->rate.remaining, g->rate.reset_seconds};
        for (int i = 0; i < 3; i++) {
            size_t len = put_int(buf + used, GW_DECORATION_BYTES / 3, values[i]);
            out[n++] = (struct gh_http_header){names[i], buf + used, strlen(names[i]), len};
            used += GW_DECORATION_BYTES / 3;
        }
    }
    return n;
}

int gw_decorated_name(const struct gw_req *g, const char *name, size_t len)
{
    if (len == 12 && memcmp(name, "x-request-id", 12) == 0)
        return 1;
    return g->rate.limited && len >= 10 && memcmp(name, "ratelimit-", 10) == 0 &&
           ((len == 15 && memcmp(name + 10, "limit", 5) == 0) ||
            (len == 19 && memcmp(name + 10, "remaining", 9) == 0) ||
            (len == 15 && memcmp(name + 10, "reset", 5) == 0));
}

/* The answer: the status, our headers and decorations, the JSON body. */
static void send_error(struct gw_req *g, int status, const char *code,
                       const struct gh_http_header *extra, size_t n_extra, const char *message)
{
    struct gh_http_header headers[MAX_HEADERS];
    char decorations[GW_DECORATION_BYTES];
    size_t n = 0, len = 0;
    const char *body;

    g->error_code = code;
    headers[n++] = HDR("content-type", "application/json", 16);
    headers[n++] = HDR("cache-control", "no-store", 8);
    for (size_t i = 0; i < n_extra && n < 6; i++)
        headers[n++] = extra[i];
    n += gw_decorate(g, headers + n, decorations);
    body = error_body(g, code, message, &len);
    g->status = status;
    if (!(g->req->method_len == 4 && memcmp(g->req->method, "HEAD", 4) == 0) && body != NULL)
        g->body_bytes = len;
    if (gh_http_respond(g->req, status, headers, n, body, body != NULL ? len : 0) != GH_OK)
        gh_http_respond_abort(g->req); /* an answer had begun: it cannot be replaced */
}

void gw_respond(struct gw_req *g, int status, enum gh_gateway_code code, const char *message)
{
    const struct gh_decision *d = &g->decision;
    struct gh_http_header extra[2];
    size_t n = 0;
    char number[24];

    if (status == 401 && g->decided && d->token_sent) {
        const char *reason = gh_error_reason(d->reason);
        size_t cap = sizeof REALM + 64 + strlen(reason);
        char *value = gh_http_request_alloc(g->req, cap);
        int len = value != NULL ? snprintf(value, cap,
                                           REALM ", error=\"invalid_token\", "
                                                 "error_description=\"%s\"",
                                           reason)
                                : 0;
        if (value != NULL && len > 0)
            extra[n++] = HDR("www-authenticate", value, (size_t)len);
    } else if (status == 401) {
        extra[n++] = HDR("www-authenticate", REALM, sizeof REALM - 1);
    }
    if (status == 429)
        extra[n++] =
            HDR("retry-after", number, put_int(number, sizeof number, g->rate.retry_after));
    if (status == 405 && g->decided && d->allow[0] != '\0')
        extra[n++] = HDR("allow", d->allow, strlen(d->allow));
    gw_count(&g->worker->server->metrics.refusals[code]);
    send_error(g, status, gh_gateway_code_names[code], extra, n, message);
}

static enum gh_gateway_code code_of(const char *error)
{
    for (int i = 0; i < GH_GW_CODE_COUNT; i++)
        if (error != NULL && strcmp(error, gh_gateway_code_names[i]) == 0)
            return (enum gh_gateway_code)i;
    return GH_GW_OTHER_ERROR;
}

void gw_respond_refusal(struct gw_req *g, const struct gh_http_refusal *r)
{
    const char *code = r->code != NULL ? r->code : "error";
    const char *message = r->message != NULL ? r->message : "The request was refused.";
    char sized[128];

    if (r->status == 413) { /* the limit is the operator's --max-body: say it */
        snprintf(sized, sizeof sized, "The request body is larger than %zu bytes.",
                 g->worker->server->o.max_body);
        message = sized;
    } else if (r->status == 431) { /* and the head's limits */
        const struct gh_http_limits *l = &g->worker->server->o.limits;
        struct gh_http_limits d;
        gh_http_limits_default(&d);
        size_t bytes = l->header_bytes != 0 ? l->header_bytes : d.header_bytes;
        size_t count = l->header_count != 0 ? l->header_count : d.header_count;
        snprintf(sized, sizeof sized,
                 "The request's header fields are too large (at most %zu KiB in all and %zu "
                 "fields).",
                 bytes >> 10, count);
        message = sized;
    }
    gw_count(&g->worker->server->metrics.refusals[code_of(code)]);
    send_error(g, r->status, code, NULL, 0, message);
}

static void count_reason(struct gh_gateway_metrics *m, int reason)
{
    const char *word = gh_error_reason(reason);
    int i = 0;

    while (i < GH_GW_REASON_COUNT - 1 && strcmp(word, gh_gateway_reason_names[i]) != 0)
        i++;
    gw_count(&m->invalid_token[i]);
}

void gw_respond_decision(struct gw_req *g)
{
    const struct gh_decision *d = &g->decision;
    enum gh_gateway_code code = code_of(d->error);

    if (code == GH_GW_INVALID_TOKEN)
        count_reason(&g->worker->server->metrics, d->reason);
    gw_respond(g, d->status, code, d->message);
}

/* ---- the access log and the counters ---- */

static const char *auth_word(const struct gw_req *g)
{
    const struct gh_decision *d = &g->decision;

    if (!g->decided)
        return NULL;
    if (d->outcome == GH_OUTCOME_REFETCH)
        return "pending"; /* the client left while the keys were refetched */
    if (d->status == 401)
        return d->token_sent ? gh_error_reason(d->reason) : "missing";
    return d->profile != NULL ? "ok" : NULL;
}

static void put_id(struct gh_line *l, const char *key, const char *id)
{
    gh_line_str(l, key, id, id != NULL ? strlen(id) : 0, LOG_FIELD_MAX);
}

/* The date and time to the second are formatted once per second and thread, not per line. */
static void put_time(struct gh_line *l)
{
    static _Thread_local time_t second = -1;
    static _Thread_local char stamp[40];
    static _Thread_local size_t n;
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    if (tv.tv_sec != second) {
        gmtime_r(&tv.tv_sec, &tm);
        n = strftime(stamp, sizeof stamp - 6, "%Y-%m-%dT%H:%M:%S", &tm);
        second = tv.tv_sec;
    }
    long ms = (long)(tv.tv_usec / 1000);
    stamp[n] = '.';
    stamp[n + 1] = (char)('0' + ms / 100);
    stamp[n + 2] = (char)('0' + ms / 10 % 10);
    stamp[n + 3] = (char)('0' + ms % 10);
    stamp[n + 4] = 'Z';
    gh_line_str(l, "time", stamp, n + 5, sizeof stamp);
}

/* The client's address as text (an IPv4 client of a dual-stack socket as plain IPv4, the form
 * ip_allow lists use); null when the connection has none. X-Forwarded-For is believed only from
 * a trusted proxy (--trusted-proxies); otherwise this is the address gatehouse itself saw. */
static void put_client_ip(struct gh_line *l, const struct gw_req *g)
{
    char host[NI_MAXHOST];
    size_t n = 0;

    if (g->peer_trusted && g->view.family != 0) {
        if (inet_ntop(g->view.family == 4 ? AF_INET : AF_INET6, g->view.addr, host, sizeof host) !=
            NULL)
            n = strlen(host);
    } else {
        n = gw_address_text(&g->req->peer, g->req->peer_len, host, sizeof host);
    }
    if (n == 0)
        gh_line_null(l, "client_ip");
    else
        gh_line_str(l, "client_ip", host, n, sizeof host);
}

static void put_user_agent(struct gh_line *l, const struct gh_http_request *req)
{
    size_t at = 0;
    const struct gh_http_header *h = gh_http_header_find(req, "user-agent", 10, &at);

    gh_line_str(l, "user_agent", h != NULL ? h->value : NULL, h != NULL ? h->value_len : 0,
                LOG_AGENT_MAX);
}

/* No token, key, query string or secret header is ever written: only ids, the path, the client's
 * address and its User-Agent (escaped and cut at LOG_AGENT_MAX bytes). */
static void write_line(const struct gw_req *g, int status, uint64_t duration_us)
{
    const struct gh_http_request *req = g->req;
    const struct gh_decision *d = &g->decision;
    const char *auth = auth_word(g);
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path_len;
    char buf[LOG_LINE_MAX];
    struct gh_line l;

    gh_line_init(&l, buf, sizeof buf);
    put_time(&l);
    gh_line_str(&l, "level", "info", 4, 4);
    gh_line_str(&l, "msg", "access", 6, 6);
    put_id(&l, "request_id", g->request_id);
    gh_line_str(&l, "method", req->method, req->method_len, 32);
    gh_line_str(&l, "path", req->path, path_len, LOG_PATH_MAX);
    gh_line_int(&l, "status", status);
    gh_line_int(&l, "duration_us", (int64_t)duration_us);
    put_id(&l, "collection_id", d->collection != NULL ? d->collection->id : NULL);
    put_id(&l, "endpoint_id", d->endpoint != NULL ? d->endpoint->id : NULL);
    put_id(&l, "client_id", d->profile != NULL ? d->profile->client_id : NULL);
    put_id(&l, "profile_id", d->profile != NULL ? d->profile->id : NULL);
    put_id(&l, "auth", auth);
    if (g->upstream_status != 0)
        gh_line_int(&l, "upstream_status", g->upstream_status);
    else
        gh_line_null(&l, "upstream_status");
    gh_line_int(&l, "bytes", (int64_t)g->body_bytes);
    put_client_ip(&l, g);
    put_user_agent(&l, req);
    if (g->error_code != NULL)
        put_id(&l, "error", g->error_code);
    if (g->upstream_error != NULL)
        put_id(&l, "upstream_error", g->upstream_error);
    if (gh_line_end(&l))
        gh_accesslog_write(g->worker->server->log, l.buf, l.len);
}

/* The counters of collection `id`, claimed on first use (lock-free, like the rate limiter). */
static struct gh_gateway_collection_count *collection_count(struct gh_gateway_metrics *m,
                                                            const char *id)
{
    uint64_t key = 1469598103934665603ULL;
    for (const char *p = id; *p; p++)
        key = (key ^ (unsigned char)*p) * 1099511628211ULL;
    key = key ? key : 1;
    for (size_t n = 0, i = key % GH_GW_COLLECTION_SLOTS; n < GH_GW_COLLECTION_SLOTS;
         n++, i = (i + 1) % GH_GW_COLLECTION_SLOTS) {
        struct gh_gateway_collection_count *c = &m->collections[i];
        uint64_t seen = atomic_load(&c->key), empty = 0;
        if (seen == 0 && atomic_compare_exchange_strong(&c->key, &empty, key)) {
            snprintf(c->id, sizeof c->id, "%s", id);
            atomic_store(&c->ready, 1);
            return c;
        }
        if ((seen == key || empty == key) && atomic_load(&c->ready) && strcmp(c->id, id) == 0)
            return c;
    }
    return NULL;
}

static void count_request(const struct gw_req *g, int status, uint64_t duration_us)
{
    struct gh_gateway_metrics *m = &g->worker->server->metrics;
    int bucket = 0;

    gw_count(&m->requests);
    gw_count(&m->by_class[status >= 100 && status < 600 ? status / 100 : 0]);
    if (g->decision.collection != NULL) {
        struct gh_gateway_collection_count *c = collection_count(m, g->decision.collection->id);
        if (c != NULL)
            gw_count(&c->by_class[status >= 100 && status < 600 ? status / 100 : 0]);
    }
    while (bucket < GH_GW_LATENCY_BUCKETS && duration_us > gh_gateway_latency_bounds_us[bucket])
        bucket++;
    gw_count(&m->latency[bucket]);
    atomic_fetch_add_explicit(&m->latency_sum_us, duration_us, memory_order_relaxed);
}

void gw_log_request(struct gw_req *g, int completed)
{
    uint64_t duration_us = (gw_now_ns() - g->started_ns) / 1000;
    int status = g->status;

    (void)completed;
    count_request(g, status, duration_us);
    /* 499 (nginx's "client closed request"): nothing was answered */
    write_line(g, status != 0 ? status : 499, duration_us);
}
