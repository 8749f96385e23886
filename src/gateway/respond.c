// SPDX-License-Identifier: Apache-2.0
/*
 * Every answer that does not come from an upstream, and the finishing touches on those that do.
 * Our refusals are SPEC §5's JSON errors with a Content-Length (h2o 2.2 would send them chunked
 * otherwise); proxy.c answers upstream failures with them too. Answers h2o makes by itself (413
 * and 400 for bodies it refused) are rewritten into the same JSON by a response filter, which
 * sees every answer before its first byte. The same filter adds
 * X-Request-Id and RateLimit-* to every answer. The access log and the counters are written when
 * h2o disposes of the request, by a logger.
 */
#include "gateway/server_internal.h"

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

const char *gw_reason_phrase(int status)
{
    static const struct {
        int status;
        const char *reason;
    } table[] = {
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {413, "Payload Too Large"},
        {417, "Expectation Failed"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };

    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].status == status)
            return table[i].reason;
    return status < 400 ? "OK" : "Error";
}

/* {"error":..., "message":..., "request_id":...} in the request's pool. */
static h2o_iovec_t error_body(h2o_req_t *req, const char *code, const char *message,
                              const char *request_id)
{
    size_t cap = 64 + strlen(code) + 6 * strlen(message) + strlen(request_id);
    char *buf = h2o_mem_alloc_pool(&req->pool, cap);
    struct gh_line line;

    gh_line_init(&line, buf, cap);
    gh_line_str(&line, "error", code, strlen(code), SIZE_MAX);
    gh_line_str(&line, "message", message, strlen(message), SIZE_MAX);
    gh_line_str(&line, "request_id", request_id, strlen(request_id), SIZE_MAX);
    gh_line_end(&line);                       /* cannot fail: cap covers the worst escaping */
    return h2o_iovec_init(buf, line.len - 1); /* without the line's newline */
}

static void add_header(h2o_req_t *req, const char *name, size_t name_len, const char *value,
                       size_t value_len)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, name_len, 1, NULL, value, value_len);
}

static void add_header_int(h2o_req_t *req, const char *name, size_t name_len, int64_t value)
{
    char *buf = h2o_mem_alloc_pool(&req->pool, 24);
    int n = snprintf(buf, 24, "%lld", (long long)value);

    add_header(req, name, name_len, buf, (size_t)n);
}

/* Removes every header called `lc_name` (lower case), whatever case it was sent in. */
static void delete_headers(h2o_headers_t *headers, const char *lc_name, size_t len)
{
    for (size_t i = 0; i < headers->size;) {
        const h2o_iovec_t *name = headers->entries[i].name;
        if (h2o_lcstris(name->base, name->len, lc_name, len))
            h2o_delete_header(headers, (ssize_t)i);
        else
            i++;
    }
}

/* The status line, type and caching headers of one of our errors (the body is the caller's). */
static h2o_iovec_t error_head(struct gw_req *g, int status, enum gh_gateway_code code,
                              const char *message)
{
    h2o_req_t *req = g->req;

    g->error_code = gh_gateway_code_names[code];
    gw_count(&g->worker->server->metrics.refusals[code]);
    req->res.status = status;
    req->res.reason = gw_reason_phrase(status);
    add_header(req, H2O_STRLIT("content-type"), H2O_STRLIT("application/json"));
    add_header(req, H2O_STRLIT("cache-control"), H2O_STRLIT("no-store"));
    h2o_iovec_t body = error_body(req, g->error_code, message, g->request_id);
    req->res.content_length = body.len;
    return body;
}

void gw_respond(struct gw_req *g, int status, enum gh_gateway_code code, const char *message)
{
    h2o_req_t *req = g->req;
    const struct gh_decision *d = &g->decision;

    if (status == 401 && g->decided && d->token_sent) {
        const char *reason = gh_error_reason(d->reason);
        size_t cap = sizeof REALM + 64 + strlen(reason);
        char *value = h2o_mem_alloc_pool(&req->pool, cap);
        int n = snprintf(value, cap, REALM ", error=\"invalid_token\", error_description=\"%s\"",
                         reason);
        add_header(req, H2O_STRLIT("www-authenticate"), value, (size_t)n);
    } else if (status == 401) {
        add_header(req, H2O_STRLIT("www-authenticate"), H2O_STRLIT(REALM));
    }
    if (status == 429)
        add_header_int(req, H2O_STRLIT("retry-after"), g->rate.retry_after);
    if (status == 405 && g->decided && d->allow[0] != '\0')
        add_header(req, H2O_STRLIT("allow"), d->allow, strlen(d->allow));
    h2o_iovec_t body = error_head(g, status, code, message);
    h2o_send_inline(req, body.base, body.len);
}

static enum gh_gateway_code code_of(const char *error)
{
    for (int i = 0; i < GH_GW_CODE_COUNT; i++)
        if (error != NULL && strcmp(error, gh_gateway_code_names[i]) == 0)
            return (enum gh_gateway_code)i;
    return GH_GW_OTHER_ERROR;
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

/* ---- the response filter ---- */

/* h2o's plain-text error is thrown away and ours replaces it, headers and all. */
static void replace_error(struct gw_req *g, int status, enum gh_gateway_code code,
                          const char *message)
{
    memset(&g->req->res.headers, 0, sizeof g->req->res.headers);
    g->replacement = error_head(g, status, code, message);
}

/* An error h2o answered before our handler ran. */
static void h2o_answer(struct gw_req *g)
{
    h2o_req_t *req = g->req;
    char message[128];

    switch (req->res.status) {
    case 413:
        snprintf(message, sizeof message, "The request body is larger than %zu bytes.",
                 g->worker->server->o.max_body);
        replace_error(g, 413, GH_GW_PAYLOAD_TOO_LARGE, message);
        break;
    case 400:
        replace_error(g, 400, GH_GW_BAD_REQUEST, "The request is not valid HTTP.");
        break;
    case 417:
        replace_error(g, 417, GH_GW_BAD_REQUEST, "Only Expect: 100-continue is supported.");
        break;
    default:
        snprintf(message, sizeof message, "The request failed: %s.",
                 gw_reason_phrase(req->res.status));
        replace_error(g, req->res.status, GH_GW_OTHER_ERROR, message);
        break;
    }
}

/* X-Request-Id on every answer, RateLimit-* on every answer of a limited profile. */
static void decorate(struct gw_req *g)
{
    h2o_req_t *req = g->req;

    delete_headers(&req->res.headers, H2O_STRLIT("x-request-id"));
    add_header(req, H2O_STRLIT("x-request-id"), g->request_id, strlen(g->request_id));
    if (g->rate.limited) {
        delete_headers(&req->res.headers, H2O_STRLIT("ratelimit-limit"));
        delete_headers(&req->res.headers, H2O_STRLIT("ratelimit-remaining"));
        delete_headers(&req->res.headers, H2O_STRLIT("ratelimit-reset"));
        add_header_int(req, H2O_STRLIT("ratelimit-limit"), g->rate.limit);
        add_header_int(req, H2O_STRLIT("ratelimit-remaining"), g->rate.remaining);
        add_header_int(req, H2O_STRLIT("ratelimit-reset"), g->rate.reset_seconds);
    }
}

struct replacing_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
};

/* The inline generator behind h2o's errors sends its body once, final; ours goes instead (no
 * body for HEAD, where h2o sends none either). */
static void replacing_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                           h2o_send_state_t state)
{
    struct replacing_ostream *o = (struct replacing_ostream *)self;

    (void)bufs;
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    h2o_ostream_send_next(self, req, &o->body, bufcnt != 0 ? 1 : 0, state);
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    struct gw_req *g = gw_req_of(req);

    (void)self;
    if (g == NULL)
        g = gw_req_adopt(req);
    if (req->version >= 0x200)
        gw_worker_saw_http2(g->worker);
    if (g->adopted && req->res.status >= 400)
        h2o_answer(g);
    decorate(g);
    /* an answer during the drain closes its HTTP/1.1 connection cleanly (Connection: close), so
     * a keep-alive client does not send its next request into a socket about to be cut */
    if (atomic_load(&g->worker->server->stopping))
        req->http1_is_persistent = 0;
    if (g->replacement.base != NULL) {
        struct replacing_ostream *o =
            (struct replacing_ostream *)h2o_add_ostream(req, sizeof *o, slot);
        o->super.do_send = replacing_send;
        o->body = g->replacement;
        slot = &o->super.next;
    }
    h2o_setup_next_ostream(req, slot);
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

/* The TCP peer's address as text (an IPv4 client of a dual-stack socket as plain IPv4, the
 * form ip_allow lists use); null when the connection has none. X-Forwarded-For from the client
 * is never believed here: only the address gatehouse itself saw. */
static void put_client_ip(struct gh_line *l, h2o_req_t *req)
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    char host[NI_MAXHOST];
    size_t n = len != 0 ? h2o_socket_getnumerichost((struct sockaddr *)&ss, len, host) : SIZE_MAX;
    const char *text = host;

    if (n == SIZE_MAX) {
        gh_line_null(l, "client_ip");
        return;
    }
    if (n > 7 && strncmp(host, "::ffff:", 7) == 0 && memchr(host + 7, '.', n - 7) != NULL) {
        text += 7;
        n -= 7;
    }
    gh_line_str(l, "client_ip", text, n, sizeof host);
}

static void put_user_agent(struct gh_line *l, const h2o_req_t *req)
{
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1);
    const h2o_iovec_t *v = at != -1 ? &req->headers.entries[at].value : NULL;

    gh_line_str(l, "user_agent", v != NULL ? v->base : NULL, v != NULL ? v->len : 0, LOG_AGENT_MAX);
}

/* No token, key, query string or secret header is ever written: only ids, the path, the client's
 * address and its User-Agent (escaped and cut at LOG_AGENT_MAX bytes). */
static void write_line(const struct gw_req *g, int status, uint64_t duration_us)
{
    const h2o_req_t *req = g->req;
    const struct gh_decision *d = &g->decision;
    const char *auth = auth_word(g);
    size_t path_len = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
    char buf[LOG_LINE_MAX];
    struct gh_line l;

    gh_line_init(&l, buf, sizeof buf);
    put_time(&l);
    gh_line_str(&l, "level", "info", 4, 4);
    gh_line_str(&l, "msg", "access", 6, 6);
    put_id(&l, "request_id", g->request_id);
    gh_line_str(&l, "method", req->input.method.base, req->input.method.len, 32);
    gh_line_str(&l, "path", req->input.path.base, path_len, LOG_PATH_MAX);
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
    gh_line_int(&l, "bytes", (int64_t)req->bytes_sent);
    put_client_ip(&l, g->req);
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

static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    struct gw_req *g = gw_req_of(req);
    uint64_t duration_us;
    int status;

    (void)self;
    if (g == NULL)
        g = gw_req_adopt(req); /* ended before any answer or handler: still one line */
    duration_us = (gw_now_ns() - g->started_ns) / 1000;
    status = req->res.status;
    count_request(g, status, duration_us);
    /* 499 (nginx's "client closed request"): nothing was answered */
    write_line(g, status != 0 ? status : 499, duration_us);
}

void gw_register_response_hooks(h2o_pathconf_t *pathconf)
{
    h2o_filter_t *filter = h2o_create_filter(pathconf, sizeof *filter);
    h2o_logger_t *logger = h2o_create_logger(pathconf, sizeof *logger);

    filter->on_setup_ostream = on_setup_ostream;
    logger->log_access = on_log_access;
}
