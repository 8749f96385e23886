// SPDX-License-Identifier: Apache-2.0
/*
 * The admin API's HTTP layer on the front end (src/http/): one worker loop owns the connections,
 * and routing, the admin token check, the body cap and the JSON error answers are all decided
 * here, in one place. The token and the route are checked on the head, before any body byte is
 * read.
 *
 * Handlers may take long: saving an oidc profile fetches its IdP, for seconds when the IdP is slow
 * or gone. So they run on a small pool of work threads, never on the loop: while ten validations
 * wait for IdPs, /healthz (and the few routes marked inline, which never block) still answer at
 * once. A handler's request is copied for its thread, and its answer comes back to the loop as a
 * message; a client that leaves meanwhile only makes the answer go nowhere.
 */
#include "admin/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "common/error.h"
#include "common/json.h"
#include "common/listen.h"
#include "common/log.h"
#include "common/requestid.h"
#include "common/utf8.h"
#include "http/server.h"

/* How long stopping lets requests in progress finish before it cuts the connections. */
#define DRAIN_GRACE_MS 2000
#define REALM          "Bearer realm=\"gatehouse-admin\""
#define INTERNAL_ERROR_JSON                                                                        \
    "{\"error\":\"internal\",\"message\":\"the answer could not be "                               \
    "encoded\",\"request_id\":\"%s\"}"
/* Work threads: handlers that wait for an IdP hold one each, so there are enough for several
 * validations at once while ordinary calls still get a thread; the queue bounds what waits (503
 * beyond it) so that a flood of calls cannot grow memory. */
#define WORK_THREADS 16
#define WORK_QUEUE   256
/* Admin connections: the admin API is for operators and their tools, not for traffic; a bound
 * keeps a flood of connections to it from taking the descriptors the gateway needs. */
#define ADMIN_CONNECTIONS 256

/* Refused authentications recorded (a log line and an audit row) per minute: at most
 * DENIALS_PER_ADDRESS from one address and DENIALS_PER_MINUTE from all, so a flood of bad tokens
 * adds at most 60 rows a minute (86,400 a day) to the audit table however many addresses it comes
 * from, while one noisy client cannot use up what a second one's refusals need; the others are
 * counted and the next record says how many ("suppressed"). */
#define DENIALS_PER_ADDRESS 10
#define DENIALS_PER_MINUTE  60
#define DENIAL_SLOTS        64  /* addresses tracked; the one of the oldest minute makes room */
#define DENIAL_PATH_MAX     256 /* bytes of the path recorded: enough to tell the route */

struct denial_slot {
    char addr[INET6_ADDRSTRLEN]; /* "" when free */
    int64_t minute;
    unsigned count; /* recorded this minute */
};

/* One call of a handler: everything it reads is copied here, since the request may go away
 * (the client leaves) while a work thread runs it. */
struct admin_job {
    struct gh_loop_msg msg; /* the answer's way back to the loop */
    struct gh_admin_server *server;
    struct gh_http_request *req; /* loop thread only; NULL once the client is gone */
    const struct gh_admin_route *route;
    struct gh_admin_request ar;
    struct gh_admin_response res;
    char *strings; /* method, path, query, params, remote address */
    unsigned char *body;
    size_t body_len, body_cap;
    int queued; /* handed to the work threads: the message frees it */
    struct admin_job *next;
};

struct admin_state { /* req->state */
    struct admin_job *job;
};

struct gh_admin_server {
    struct gh_admin_server_options o;
    unsigned char token_digest[SHA256_DIGEST_LENGTH];
    struct gh_http_server *http;
    struct gh_http_metrics metrics;
    struct gh_http_worker *worker; /* the one loop */
    unsigned jobs_out;             /* loop thread: handed to work threads, answer not back yet */

    /* the work threads */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct admin_job *queue_head, *queue_tail;
    size_t queued;
    int closing;
    pthread_t threads[WORK_THREADS];
    size_t n_threads;

    /* loop thread only */
    struct denial_slot denials[DENIAL_SLOTS];
    int64_t denial_minute;
    unsigned denial_count;    /* recorded in denial_minute, from all addresses */
    uint64_t denials_skipped; /* not recorded since the last record */
};

struct span {
    size_t off, len;
};

/* ---- options and the listening socket ---- */

/* A pattern is `/`-separated segments, each a literal or a whole `{name}`. */
static int pattern_is_valid(const char *pattern)
{
    size_t params = 0;

    if (pattern == NULL || pattern[0] != '/')
        return 0;
    for (const char *p = pattern; *p != '\0';) {
        const char *seg = ++p;
        size_t len = strcspn(seg, "/");
        int braced = len >= 3 && seg[0] == '{' && seg[len - 1] == '}';
        if (braced && ++params > GH_ADMIN_MAX_PARAMS)
            return 0;
        if (!braced && (memchr(seg, '{', len) != NULL || memchr(seg, '}', len) != NULL))
            return 0;
        p = seg + len;
    }
    return 1;
}

static int check_options(const struct gh_admin_server_options *o, char *error, size_t cap)
{
    if (o == NULL || o->listen == NULL) {
        gh_error_format(error, cap, "the admin listener needs an address");
        return GH_ERR_INVALID_ARG;
    }
    if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
        gh_error_format(error, cap, "the admin listener's TLS needs both a certificate and a key");
        return GH_ERR_INVALID_ARG;
    }
    if (o->admin_token == NULL || o->admin_token[0] == '\0') {
        gh_error_format(error, cap, "the admin API needs a non-empty admin token");
        return GH_ERR_INVALID_ARG;
    }
    if (o->n_routes != 0 && o->routes == NULL) {
        gh_error_format(error, cap, "the admin API's route table is missing");
        return GH_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < o->n_routes; i++) {
        const struct gh_admin_route *r = &o->routes[i];
        if (r->method == NULL || r->method[0] == '\0' || r->handler == NULL ||
            !pattern_is_valid(r->pattern)) {
            gh_error_format(error, cap, "admin route %zu is not valid (method, pattern or handler)",
                            i);
            return GH_ERR_INVALID_ARG;
        }
    }
    return GH_OK;
}

/* ---- routing, authentication, answers ---- */

/* 1 when `path` fits `pattern`; the places of its {param} segments go to `spans`. */
static int match_pattern(const char *pattern, const char *path, size_t len, struct span *spans,
                         size_t *n)
{
    size_t pi = 0, i = 0;

    *n = 0;
    while (pattern[pi] == '/') {
        if (i >= len || path[i] != '/')
            return 0;
        pi++;
        i++;
        size_t plen = strcspn(pattern + pi, "/"), start = i;
        while (i < len && path[i] != '/')
            i++;
        if (pattern[pi] == '{') {
            if (i == start || *n == GH_ADMIN_MAX_PARAMS)
                return 0; /* a parameter is one non-empty segment */
            spans[*n].off = start;
            spans[(*n)++].len = i - start;
        } else if (i - start != plen || memcmp(path + start, pattern + pi, plen) != 0) {
            return 0;
        }
        pi += plen;
    }
    return pattern[pi] == '\0' && i == len;
}

/* The route for method and path, or NULL; *path_known says whether any method has the path. */
static const struct gh_admin_route *find_route(const struct gh_admin_server *s, const char *method,
                                               size_t method_len, const char *path, size_t len,
                                               struct span *spans, size_t *n, int *path_known)
{
    struct span scratch[GH_ADMIN_MAX_PARAMS];
    size_t scratch_n;

    *path_known = 0;
    for (size_t i = 0; i < s->o.n_routes; i++) {
        const struct gh_admin_route *r = &s->o.routes[i];
        if (!match_pattern(r->pattern, path, len, scratch, &scratch_n))
            continue;
        *path_known = 1;
        if (method_len == strlen(r->method) && memcmp(method, r->method, method_len) == 0) {
            memcpy(spans, scratch, sizeof scratch);
            *n = scratch_n;
            return r;
        }
    }
    return NULL;
}

static int list_has(const char *list, const char *method)
{
    size_t n = strlen(method);

    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len == n && memcmp(p, method, n) == 0)
            return 1;
        p += len;
        p += strspn(p, ", ");
    }
    return 0;
}

/* "GET, POST": the methods of every route whose pattern fits the path, for the 405's Allow. */
static char *allowed_methods(const struct gh_admin_server *s, struct gh_http_request *req,
                             const char *path, size_t len)
{
    struct span spans[GH_ADMIN_MAX_PARAMS];
    size_t cap = 1, used = 0, n;
    char *list;

    for (size_t i = 0; i < s->o.n_routes; i++)
        cap += strlen(s->o.routes[i].method) + 2;
    if ((list = gh_http_request_alloc(req, cap)) == NULL)
        return "GET";
    list[0] = '\0';
    for (size_t i = 0; i < s->o.n_routes; i++) {
        const char *m = s->o.routes[i].method;
        if (!match_pattern(s->o.routes[i].pattern, path, len, spans, &n) || list_has(list, m))
            continue;
        used += (size_t)snprintf(list + used, cap - used, "%s%s", used ? ", " : "", m);
    }
    return list;
}

/* NULL when the request carries the admin token, else why not. Tokens are compared as SHA-256
 * digests with CRYPTO_memcmp, so neither their content nor their length shows in the timing. */
static const char *check_token(const struct gh_admin_server *s, const struct gh_http_request *req,
                               int *presented)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    size_t at = 0, i = 6, end;
    const struct gh_http_header *h = gh_http_header_find(req, "authorization", 13, &at);

    *presented = 0;
    if (h == NULL)
        return "this call needs the admin token (Authorization: Bearer <token>)";
    if (gh_http_header_find(req, "authorization", 13, &at) != NULL)
        return "the request has more than one Authorization header";
    if (h->value_len < 7 || strncasecmp(h->value, "bearer", 6) != 0 || h->value[6] != ' ')
        return "the Authorization header must use the Bearer scheme";
    while (i < h->value_len && h->value[i] == ' ')
        i++;
    end = h->value_len;
    while (end > i && (h->value[end - 1] == ' ' || h->value[end - 1] == '\t'))
        end--;
    if (end == i)
        return "the bearer token is empty";
    *presented = 1;
    SHA256((const unsigned char *)h->value + i, end - i, digest);
    int ok = CRYPTO_memcmp(digest, s->token_digest, sizeof digest) == 0;
    OPENSSL_cleanse(digest, sizeof digest);
    return ok ? NULL : "the admin token is not valid";
}

/* The peer's address for the audit log; an IPv4 client of a dual-stack listener shows as IPv4. */
static void peer_address(const struct gh_http_request *req, char out[INET6_ADDRSTRLEN])
{
    const struct sockaddr_storage *ss = &req->peer;

    snprintf(out, INET6_ADDRSTRLEN, "unknown");
    if (req->peer_len != 0 && ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, out, INET6_ADDRSTRLEN);
    } else if (req->peer_len != 0 && ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
            inet_ntop(AF_INET, sin6->sin6_addr.s6_addr + 12, out, INET6_ADDRSTRLEN);
        else
            inet_ntop(AF_INET6, &sin6->sin6_addr, out, INET6_ADDRSTRLEN);
    }
}

/* The slot of `addr`, or the one of the oldest minute, made over to it. */
static struct denial_slot *denial_slot(struct gh_admin_server *s, const char *addr, int64_t minute)
{
    struct denial_slot *oldest = &s->denials[0];

    for (size_t i = 0; i < DENIAL_SLOTS; i++) {
        if (strcmp(s->denials[i].addr, addr) == 0)
            return &s->denials[i];
        if (s->denials[i].minute < oldest->minute)
            oldest = &s->denials[i];
    }
    snprintf(oldest->addr, sizeof oldest->addr, "%s", addr);
    oldest->minute = minute;
    oldest->count = 0;
    return oldest;
}

/* Whether this refusal is recorded (see DENIALS_PER_ADDRESS); `skipped` is then how many were not
 * since the last one that was. */
static int denial_admit(struct gh_admin_server *s, const char *addr, uint64_t *skipped)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t minute = (int64_t)now.tv_sec / 60 + 1; /* from 1: 0 marks a slot never used */
    struct denial_slot *slot = denial_slot(s, addr, minute);

    if (s->denial_minute != minute) {
        s->denial_minute = minute;
        s->denial_count = 0;
    }
    if (slot->minute != minute) {
        slot->minute = minute;
        slot->count = 0;
    }
    if (slot->count >= DENIALS_PER_ADDRESS || s->denial_count >= DENIALS_PER_MINUTE) {
        s->denials_skipped++;
        return 0;
    }
    slot->count++;
    s->denial_count++;
    *skipped = s->denials_skipped;
    s->denials_skipped = 0;
    return 1;
}

/* A refused authentication: one log line and an audit row, within the limits; never the token. */
static void record_denial(struct gh_admin_server *s, struct gh_http_request *req, size_t path_len,
                          const char *why, int presented)
{
    struct gh_admin_denial d = {.reason = why, .token_presented = presented};
    char addr[INET6_ADDRSTRLEN];

    peer_address(req, addr);
    d.remote_addr = addr;
    if (!denial_admit(s, d.remote_addr, &d.suppressed))
        return;
    /* client bytes: made valid UTF-8, or jansson would refuse them and drop the line's fields */
    char *method = gh_utf8_scrub(req->method, req->method_len, 32);
    char *path = gh_utf8_scrub(req->path, path_len, DENIAL_PATH_MAX);
    if (method == NULL || path == NULL)
        goto out;
    d.method = method;
    d.path = path;
    gh_log(GH_LOG_WARN, "admin authentication refused",
           json_pack("{s:s, s:s, s:s, s:b, s:s, s:I}", "remote_addr", d.remote_addr, "method",
                     method, "path", path, "token_presented", presented, "reason", why,
                     "suppressed", (json_int_t)d.suppressed));
    if (s->o.on_denied != NULL)
        s->o.on_denied(s->o.app, &d);
out:
    free(method);
    free(path);
}

/* ---- answers ---- */

/* An error answer's request id, as the gateway makes them: the caller's sane X-Request-Id, else
 * a new random one (common/requestid.h). */
static void request_id_of(const struct gh_http_request *req, char out[GH_REQUEST_ID_MAX + 1])
{
    const struct gh_http_header *h = gh_http_header_find(req, "x-request-id", 12, NULL);

    if (h == NULL)
        gh_request_id_make(NULL, 0, req, out);
    else
        gh_request_id_make(h->value, h->value_len, req, out);
}

/* The body of an error answer: `res`'s JSON object with request_id added, or the internal error
 * (and status 500) when there is none or it cannot be encoded. A malloc'd text, NULL when out of
 * memory. */
static char *error_text(const char *id, struct gh_admin_response *res)
{
    char *text = NULL;

    if (json_is_object(res->body) &&
        json_object_set_new(res->body, "request_id", json_string(id)) == 0)
        text = json_dumps(res->body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        size_t cap = sizeof INTERNAL_ERROR_JSON + strlen(id);
        if ((text = malloc(cap)) != NULL)
            snprintf(text, cap, INTERNAL_ERROR_JSON, id);
        res->status = 500;
    }
    return text;
}

#define MAX_ANSWER_HEADERS 5

/* Serializes and sends `res` with `extra` (WWW-Authenticate or Allow, NULL: none), then frees
 * what it owns. Every error answer carries its request id, in the body and in X-Request-Id. */
static void send_response(struct gh_http_request *req, struct gh_admin_response *res,
                          const struct gh_http_header *extra)
{
    int status = res->status == 0 ? 200 : res->status;
    char *owned = NULL, id[GH_REQUEST_ID_MAX + 1];
    const char *bytes = "", *type = NULL;
    struct gh_http_header h[MAX_ANSWER_HEADERS];
    size_t n = 0, len = 0;

    if (status < 200 || status > 599) {
        gh_admin_response_clear(res);
        res->status = status = 500;
    }
    if (status >= 400 && res->text == NULL) {
        request_id_of(req, id);
        h[n++] = (struct gh_http_header){"x-request-id", id, 12, strlen(id)};
        owned = error_text(id, res);
        status = res->status;
        bytes = owned != NULL ? owned : "";
        type = "application/json";
    } else if (status != 204 && status != 304 && res->body != NULL) {
        owned = json_dumps(res->body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (owned == NULL) { /* the answer is lost: an error with a request id instead */
            gh_admin_response_clear(res);
            request_id_of(req, id);
            h[n++] = (struct gh_http_header){"x-request-id", id, 12, strlen(id)};
            owned = error_text(id, res);
            status = res->status;
        }
        bytes = owned != NULL ? owned : "";
        type = "application/json";
    } else if (status != 204 && status != 304 && res->text != NULL) {
        bytes = res->text;
        type = res->content_type != NULL ? res->content_type : "text/plain; charset=utf-8";
    }
    if (status != 204 && status != 304)
        len = strlen(bytes);
    if (type != NULL)
        h[n++] = (struct gh_http_header){"content-type", type, 12, strlen(type)};
    h[n++] = (struct gh_http_header){"cache-control", "no-store", 13, 8};
    if (extra != NULL)
        h[n++] = *extra;
    gh_http_respond(req, status, h, n, bytes, len); /* copies what it sends */
    free(owned);
    gh_admin_response_clear(res);
}

/* A request the front end refused by itself (malformed, too large, too slow). */
static void send_refusal(struct gh_http_request *req)
{
    struct gh_admin_response res = {0};

    if (req->refusal->status == 413)
        gh_admin_error(&res, 413, "payload_too_large", NULL,
                       "the request body is larger than %d bytes", GH_ADMIN_MAX_BODY);
    else
        gh_admin_error(&res, req->refusal->status, req->refusal->code, NULL, "%s",
                       req->refusal->message);
    send_response(req, &res, NULL);
}

/* ---- jobs: a handler's call, copied for a work thread ---- */

static void job_free(struct admin_job *job)
{
    gh_admin_response_clear(&job->res);
    free(job->strings);
    free(job->body);
    free(job);
}

/* Copies what the handler reads: method, path, query, the route's parameters, the peer. */
static struct admin_job *job_new(struct gh_admin_server *s, struct gh_http_request *req,
                                 const struct gh_admin_route *route, const struct span *spans,
                                 size_t n, size_t path_len)
{
    struct admin_job *job = calloc(1, sizeof *job);
    size_t query_len = path_len < req->path_len ? req->path_len - path_len - 1 : 0;
    size_t cap = req->method_len + req->path_len + INET6_ADDRSTRLEN + 4 + GH_ADMIN_MAX_PARAMS;
    char *p;

    if (job == NULL || (job->strings = p = malloc(cap)) == NULL) {
        free(job);
        return NULL;
    }
    job->server = s;
    job->req = req;
    job->route = route;
#define COPY(field, src, len)                                                                      \
    do {                                                                                           \
        memcpy(p, (src), (len));                                                                   \
        p[len] = '\0';                                                                             \
        job->ar.field = p;                                                                         \
        p += (len) + 1;                                                                            \
    } while (0)
    COPY(method, req->method, req->method_len);
    COPY(path, req->path, path_len);
    COPY(query, req->path + path_len + (query_len != 0), query_len);
    for (size_t i = 0; i < n; i++)
        COPY(params[i], req->path + spans[i].off, spans[i].len);
#undef COPY
    job->ar.n_params = n;
    peer_address(req, p);
    job->ar.remote_addr = p;
    return job;
}

/* On the loop: the answer of a work thread. */
static void on_job_done(struct gh_loop_msg *msg)
{
    struct admin_job *job = (struct admin_job *)msg;

    job->server->jobs_out--;
    if (job->req != NULL) {
        ((struct admin_state *)job->req->state)->job = NULL;
        send_response(job->req, &job->res, NULL);
    }
    job_free(job);
}

static void *work_thread(void *arg)
{
    struct gh_admin_server *s = arg;

    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (s->queue_head == NULL && !s->closing)
            pthread_cond_wait(&s->wake, &s->lock);
        struct admin_job *job = s->queue_head;
        if (job != NULL && (s->queue_head = job->next) == NULL)
            s->queue_tail = NULL;
        s->queued -= job != NULL;
        pthread_mutex_unlock(&s->lock);
        if (job == NULL)
            return NULL; /* closing, and nothing left */
        job->ar.body = job->body_len != 0 ? job->body : NULL;
        job->ar.body_len = job->body_len;
        job->route->handler(s->o.app, &job->ar, &job->res);
        job->msg.cb = on_job_done;
        if (!gh_loop_post(gh_http_worker_loop(s->worker), &job->msg))
            job_free(job); /* the loop is gone (a stop that gave up waiting) */
    }
}

/* Hands the job to the work threads, or answers 503 when too many wait already. */
static void job_submit(struct admin_job *job)
{
    struct gh_admin_server *s = job->server;
    int full;

    pthread_mutex_lock(&s->lock);
    full = s->queued >= WORK_QUEUE;
    if (!full) {
        if (s->queue_tail != NULL)
            s->queue_tail->next = job;
        else
            s->queue_head = job;
        s->queue_tail = job;
        s->queued++;
        job->queued = 1;
        s->jobs_out++;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->lock);
    if (full) {
        struct gh_http_request *req = job->req;
        ((struct admin_state *)req->state)->job = NULL;
        job_free(job);
        struct gh_admin_response res = {0};
        gh_admin_error(&res, 503, "busy", NULL,
                       "the admin API has too many calls in progress; retry in a moment");
        send_response(req, &res, NULL);
    }
}

/* ---- the front end's handler ---- */

static void on_body(void *ctx, struct gh_http_request *req, const char *data, size_t len, int state)
{
    struct admin_job *job = ((struct admin_state *)req->state)->job;
    struct gh_admin_response res = {0};

    if (job == NULL || job->queued)
        return;
    if (state < 0 || job->body_len + len > GH_ADMIN_MAX_BODY) {
        ((struct admin_state *)req->state)->job = NULL;
        job_free(job);
        if (state == GH_HTTP_BODY_BROKEN) {
            gh_http_respond_abort(req);
            return;
        }
        if (state == GH_HTTP_BODY_TIMEOUT)
            gh_admin_error(&res, 408, "request_timeout", NULL, "the request body stopped arriving");
        else
            gh_admin_error(&res, 413, "payload_too_large", NULL,
                           "the request body is larger than %d bytes", GH_ADMIN_MAX_BODY);
        send_response(req, &res, NULL);
        return;
    }
    if (job->body_len + len > job->body_cap) {
        size_t cap = job->body_cap != 0 ? job->body_cap : 4096;
        while (cap < job->body_len + len)
            cap *= 2;
        unsigned char *grown = realloc(job->body, cap);
        if (grown == NULL) {
            gh_http_respond_abort(req);
            return;
        }
        job->body = grown;
        job->body_cap = cap;
    }
    memcpy(job->body + job->body_len, data, len);
    job->body_len += len;
    if (state == 1)
        job_submit(job);
}

/* Runs the handler on the loop (inline routes, which never block) and answers. */
static void run_inline(struct admin_job *job)
{
    struct gh_http_request *req = job->req;

    ((struct admin_state *)req->state)->job = NULL;
    job->route->handler(job->server->o.app, &job->ar, &job->res);
    send_response(req, &job->res, NULL);
    job_free(job);
}

static void on_request(void *ctx, struct gh_http_request *req)
{
    struct gh_admin_server *s = ctx;
    struct gh_admin_response res = {0};
    struct gh_http_header extra;
    struct span spans[GH_ADMIN_MAX_PARAMS];
    size_t n = 0, path_len = req->query_at != SIZE_MAX ? req->query_at : req->path_len;
    int path_known = 0, presented;
    const char *why;
    const struct gh_admin_route *route;
    struct admin_job *job;

    if (req->refusal != NULL) {
        send_refusal(req);
        return;
    }
    route =
        find_route(s, req->method, req->method_len, req->path, path_len, spans, &n, &path_known);
    /* the token before anything else: without it, 404 and 405 would map the API for anyone */
    if ((route == NULL || !route->public_route) &&
        (why = check_token(s, req, &presented)) != NULL) {
        record_denial(s, req, path_len, why, presented);
        const char *value = presented ? REALM ", error=\"invalid_token\"" : REALM;
        extra = (struct gh_http_header){"www-authenticate", value, 16, strlen(value)};
        gh_admin_error(&res, 401, "unauthorized", NULL, "%s", why);
    } else if (route == NULL && !path_known) {
        gh_admin_error(&res, 404, "not_found", NULL, "no admin API resource has this path");
    } else if (route == NULL) {
        const char *allow = allowed_methods(s, req, req->path, path_len);
        extra = (struct gh_http_header){"allow", allow, 5, strlen(allow)};
        gh_admin_error(&res, 405, "method_not_allowed", NULL,
                       "this resource does not take this method; it takes %s", allow);
    } else if ((job = job_new(s, req, route, spans, n, path_len)) == NULL) {
        gh_admin_error(&res, 500, "internal", NULL, "out of memory");
    } else {
        ((struct admin_state *)req->state)->job = job;
        if (req->content_length != 0)
            gh_http_body_start(req); /* the job goes when its body is whole (on_body) */
        else if (route->inline_route || route->public_route)
            run_inline(job);
        else
            job_submit(job);
        return;
    }
    send_response(req, &res, res.status == 401 || res.status == 405 ? &extra : NULL);
}

static void on_done(void *ctx, struct gh_http_request *req, int completed)
{
    struct admin_job *job = ((struct admin_state *)req->state)->job;

    (void)ctx;
    (void)completed;
    if (job == NULL)
        return;
    if (job->queued)
        job->req = NULL; /* its answer, when it comes, goes nowhere */
    else
        job_free(job);
}

static const struct gh_http_handler admin_handler = {
    .on_request = on_request,
    .on_body = on_body,
    .on_done = on_done,
};

static void *worker_init(void *ctx, struct gh_http_worker *w)
{
    ((struct gh_admin_server *)ctx)->worker = w;
    return NULL;
}

/* A stop waits for the work threads' answers, so no handler runs on a stopped server's app. */
static int worker_idle(void *ctx, struct gh_http_worker *w, void *data)
{
    (void)w;
    (void)data;
    return ((struct gh_admin_server *)ctx)->jobs_out == 0;
}

/* ---- start and stop ---- */

static void stop_work_threads(struct gh_admin_server *s)
{
    pthread_mutex_lock(&s->lock);
    s->closing = 1;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    s->n_threads = 0;
}

/* The work threads start with every signal blocked, like the loop's: signals are the process's
 * main thread's business. */
static int start_work_threads(struct gh_admin_server *s, char *error, size_t cap)
{
    sigset_t all, old;
    int rc = 0;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (s->n_threads < WORK_THREADS &&
           (rc = pthread_create(&s->threads[s->n_threads], NULL, work_thread, s)) == 0)
        s->n_threads++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        gh_error_format(error, cap, "cannot start the admin API's work threads");
        return GH_ERR_IO;
    }
    return GH_OK;
}

static void server_free(struct gh_admin_server *s)
{
    stop_work_threads(s);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    OPENSSL_cleanse(s->token_digest, sizeof s->token_digest);
    free(s);
}

int gh_admin_server_start(const struct gh_admin_server_options *options,
                          struct gh_admin_server **out, char *error, size_t cap)
{
    struct gh_admin_server *s;
    struct gh_http_server_options ho = {0};
    int rc;

    gh_error_format(error, cap, "%s", "");
    if (out == NULL)
        return GH_ERR_INVALID_ARG;
    *out = NULL;
    if ((rc = check_options(options, error, cap)) != GH_OK)
        return rc;
    if ((s = calloc(1, sizeof *s)) == NULL)
        return GH_ERR_NOMEM;
    s->o = *options;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    SHA256((const unsigned char *)options->admin_token, strlen(options->admin_token),
           s->token_digest);
    ho.listen = options->listen;
    ho.listen_flags = 0; /* numeric and explicit: where the admin API listens is never up to a
                            resolver */
    ho.threads = 1;
    ho.tls_cert = options->tls_cert;
    ho.tls_key = options->tls_key;
    ho.server_name = "gatehouse";
    ho.limits.max_body = GH_ADMIN_MAX_BODY;
    ho.limits.conns_total = ADMIN_CONNECTIONS;
    ho.handler = &admin_handler;
    ho.handler_ctx = s;
    ho.state_size = sizeof(struct admin_state);
    ho.worker_init = worker_init;
    ho.worker_idle = worker_idle;
    ho.metrics = &s->metrics;
    if ((rc = start_work_threads(s, error, cap)) != GH_OK ||
        (rc = gh_http_server_start(&ho, &s->http, error, cap)) != GH_OK) {
        server_free(s);
        return rc;
    }
    *out = s;
    return GH_OK;
}

const char *gh_admin_server_address(const struct gh_admin_server *s)
{
    return s != NULL ? gh_http_server_address_at(s->http, 0) : "";
}

void gh_admin_server_stop(struct gh_admin_server *s)
{
    if (s == NULL)
        return;
    gh_http_server_stop(s->http, DRAIN_GRACE_MS);
    server_free(s);
}
