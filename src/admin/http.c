// SPDX-License-Identifier: Apache-2.0
/*
 * The admin API's HTTP layer on h2o 2.2 (libh2o-evloop): one thread runs one event loop with one
 * catch-all handler, so routing, the admin token check, the body cap and the JSON error answers
 * are all decided here, in one place, instead of being spread over h2o path configurations. The
 * loop is stopped through a pipe it watches; before it exits, it closes its listener, lets the
 * open connections finish and close, and frees what h2o 2.2.5 itself forgets to free.
 */
#define H2O_USE_LIBUV 0

#include "admin/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/sha.h>

#include "common/error.h"
#include "common/requestid.h"
#include "common/h2oloop.h"
#include "common/json.h"
#include "common/listen.h"
#include "common/log.h"
#include "common/utf8.h"

/* h2o's own cap on a request body: above ours, so that a body between the two gets our JSON 413,
 * and low enough that a client cannot make the admin thread buffer a gigabyte. */
#define H2O_ENTITY_LIMIT (4 * 1024 * 1024)
/* How long stopping waits for connections to finish by themselves before it cuts them. */
#define DRAIN_GRACE_MS 2000
#define DRAIN_POLL_MS  50
#define REALM          "Bearer realm=\"gatehouse-admin\""
#define INTERNAL_ERROR_JSON                                                                        \
    "{\"error\":\"internal\",\"message\":\"the answer could not be "                               \
    "encoded\",\"request_id\":\"%s\"}"

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

struct admin_handler {
    h2o_handler_t super;
    struct gh_admin_server *server;
};

struct gh_admin_server {
    struct gh_admin_server_options o;
    unsigned char token_digest[SHA256_DIGEST_LENGTH];
    struct gh_listen_set listen; /* handed to the admin thread's loop once it runs */
    SSL_CTX *tls;                /* NULL without a certificate */
    int wake_fds[2]; /* [0] is watched by the loop, [1] is written by gh_admin_server_stop */
    atomic_int stopping;
    pthread_t thread;
    h2o_globalconf_t config; /* built and disposed of by the caller's thread */

    /* admin thread only */
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listeners[GH_LISTEN_MAX], *waker;
    h2o_linklist_t conns;
    int stop_seen;
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

/* Numeric and explicit: where the admin API listens is never up to a resolver. */
static int open_listener(struct gh_admin_server *s, char *error, size_t cap)
{
    return gh_listen_open(s->o.listen, 0, &s->listen, error, cap);
}

static int open_wake_pipe(struct gh_admin_server *s, char *error, size_t cap)
{
    if (pipe(s->wake_fds) != 0) {
        s->wake_fds[0] = s->wake_fds[1] = -1;
        gh_error_format(error, cap, "cannot create the admin thread's wake-up pipe");
        return GH_ERR_IO;
    }
    for (int i = 0; i < 2; i++)
        if (fcntl(s->wake_fds[i], F_SETFD, FD_CLOEXEC) != 0 ||
            fcntl(s->wake_fds[i], F_SETFL, O_NONBLOCK) != 0) {
            gh_error_format(error, cap, "cannot set up the admin thread's wake-up pipe");
            return GH_ERR_IO;
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
static const struct gh_admin_route *find_route(const struct gh_admin_server *s, h2o_iovec_t method,
                                               const char *path, size_t len, struct span *spans,
                                               size_t *n, int *path_known)
{
    struct span scratch[GH_ADMIN_MAX_PARAMS];
    size_t scratch_n;

    *path_known = 0;
    for (size_t i = 0; i < s->o.n_routes; i++) {
        const struct gh_admin_route *r = &s->o.routes[i];
        if (!match_pattern(r->pattern, path, len, scratch, &scratch_n))
            continue;
        *path_known = 1;
        if (h2o_memis(method.base, method.len, r->method, strlen(r->method))) {
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
static char *allowed_methods(const struct gh_admin_server *s, h2o_req_t *req, const char *path,
                             size_t len)
{
    struct span spans[GH_ADMIN_MAX_PARAMS];
    size_t cap = 1, used = 0, n;
    char *list;

    for (size_t i = 0; i < s->o.n_routes; i++)
        cap += strlen(s->o.routes[i].method) + 2;
    list = h2o_mem_alloc_pool(&req->pool, cap);
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
static const char *check_token(const struct gh_admin_server *s, h2o_req_t *req, int *presented)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    h2o_iovec_t v;
    size_t i = 6, end;

    *presented = 0;
    if (at == -1)
        return "this call needs the admin token (Authorization: Bearer <token>)";
    if (h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, at) != -1)
        return "the request has more than one Authorization header";
    v = req->headers.entries[at].value;
    if (v.len < 7 || !h2o_lcstris(v.base, 6, H2O_STRLIT("bearer")) || v.base[6] != ' ')
        return "the Authorization header must use the Bearer scheme";
    while (i < v.len && v.base[i] == ' ')
        i++;
    end = v.len;
    while (end > i && (v.base[end - 1] == ' ' || v.base[end - 1] == '\t'))
        end--;
    if (end == i)
        return "the bearer token is empty";
    *presented = 1;
    SHA256((const unsigned char *)v.base + i, end - i, digest);
    int ok = CRYPTO_memcmp(digest, s->token_digest, sizeof digest) == 0;
    OPENSSL_cleanse(digest, sizeof digest);
    return ok ? NULL : "the admin token is not valid";
}

/* The peer's address for the audit log; an IPv4 client of a dual-stack listener shows as IPv4. */
static const char *peer_address(h2o_req_t *req)
{
    struct sockaddr_storage ss;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    char *buf = h2o_mem_alloc_pool(&req->pool, INET6_ADDRSTRLEN);
    socklen_t len = sock != NULL ? h2o_socket_getpeername(sock, (struct sockaddr *)&ss) : 0;

    if (len != 0 && ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        if (inet_ntop(AF_INET, &sin->sin_addr, buf, INET6_ADDRSTRLEN) != NULL)
            return buf;
    } else if (len != 0 && ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
            inet_ntop(AF_INET, sin6->sin6_addr.s6_addr + 12, buf, INET6_ADDRSTRLEN) != NULL)
            return buf;
        if (inet_ntop(AF_INET6, &sin6->sin6_addr, buf, INET6_ADDRSTRLEN) != NULL)
            return buf;
    }
    return "unknown";
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
static void record_denial(struct gh_admin_server *s, h2o_req_t *req, size_t path_len,
                          const char *why, int presented)
{
    struct gh_admin_denial d = {.reason = why, .token_presented = presented};

    d.remote_addr = peer_address(req);
    if (!denial_admit(s, d.remote_addr, &d.suppressed))
        return;
    /* client bytes: made valid UTF-8, or jansson would refuse them and drop the line's fields */
    char *method = gh_utf8_scrub(req->method.base, req->method.len, 32);
    char *path = gh_utf8_scrub(req->path.base, path_len, DENIAL_PATH_MAX);
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

static const char *pool_strdup(h2o_req_t *req, const char *s, size_t len)
{
    return h2o_strdup(&req->pool, s, len).base;
}

static void call_handler(const struct gh_admin_server *s, h2o_req_t *req,
                         const struct gh_admin_route *route, const struct span *spans, size_t n,
                         size_t path_len, struct gh_admin_response *res)
{
    struct gh_admin_request ar;

    memset(&ar, 0, sizeof ar);
    ar.method = pool_strdup(req, req->method.base, req->method.len);
    ar.path = pool_strdup(req, req->path.base, path_len);
    ar.query = path_len < req->path.len
                   ? pool_strdup(req, req->path.base + path_len + 1, req->path.len - path_len - 1)
                   : "";
    ar.body = req->entity.len != 0 ? (const unsigned char *)req->entity.base : NULL;
    ar.body_len = req->entity.len;
    ar.remote_addr = peer_address(req);
    for (size_t i = 0; i < n; i++)
        ar.params[i] = pool_strdup(req, req->path.base + spans[i].off, spans[i].len);
    ar.n_params = n;
    route->handler(s->o.app, &ar, res);
}

static void response_clear(struct gh_admin_response *res)
{
    json_decref(res->body);
    free(res->text);
    res->body = NULL;
    res->text = NULL;
    res->content_type = NULL;
}

static const char *reason_phrase(int status)
{
    static const struct {
        int status;
        const char *reason;
    } table[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {409, "Conflict"},
        {413, "Payload Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Entity"},
        {429, "Too Many Requests"},
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

static void add_header(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, v.base, v.len);
}

/* An error answer's request id, as the gateway makes them: the caller's sane X-Request-Id, else
 * a new random one (common/requestid.h). */
static void request_id_of(h2o_req_t *req, char out[GH_REQUEST_ID_MAX + 1])
{
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);

    if (at == -1)
        gh_request_id_make(NULL, 0, req, out);
    else
        gh_request_id_make(req->headers.entries[at].value.base, req->headers.entries[at].value.len,
                           req, out);
}

/* The body of an error answer: `res`'s JSON object with request_id added, or the internal error
 * (and status 500) when there is none or it cannot be encoded. A malloc'd text, NULL when out of
 * memory. X-Request-Id says the same id. */
static char *error_text(h2o_req_t *req, struct gh_admin_response *res)
{
    char id[GH_REQUEST_ID_MAX + 1], *text = NULL;

    request_id_of(req, id);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          h2o_strdup(&req->pool, id, SIZE_MAX).base, strlen(id));
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

/* Serializes and sends `res`, then frees what it owns. Every answer but 204/304 carries a
 * Content-Length: without one, h2o 2.2 sends non-200 answers unframed and drops keep-alive.
 * Every error answer carries its request id, in the body and in X-Request-Id. */
static void send_response(h2o_req_t *req, struct gh_admin_response *res)
{
    int status = res->status == 0 ? 200 : res->status;
    char *owned = NULL;
    const char *bytes = "", *type = NULL;
    size_t len = 0;

    if (status < 200 || status > 599) {
        response_clear(res);
        res->status = status = 500;
    }
    if (status >= 400 && res->text == NULL) {
        owned = error_text(req, res);
        status = res->status;
        bytes = owned != NULL ? owned : "";
        type = "application/json";
    } else if (status != 204 && status != 304 && res->body != NULL) {
        owned = json_dumps(res->body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (owned == NULL) { /* the answer is lost: an error with a request id instead */
            response_clear(res);
            owned = error_text(req, res);
            status = res->status;
        }
        bytes = owned != NULL ? owned : "";
        type = "application/json";
    } else if (status != 204 && status != 304 && res->text != NULL) {
        bytes = res->text;
        type = res->content_type != NULL ? res->content_type : "text/plain; charset=utf-8";
    }
    if (status != 204 && status != 304) {
        len = strlen(bytes);
        req->res.content_length = len;
    }
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    if (type != NULL)
        add_header(req, H2O_TOKEN_CONTENT_TYPE, type);
    add_header(req, H2O_TOKEN_CACHE_CONTROL, "no-store");
    h2o_send_inline(req, bytes, len); /* copies the bytes into the request's pool */
    free(owned);
    response_clear(res);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct gh_admin_server *s = ((struct admin_handler *)self)->server;
    struct gh_admin_response res = {0};
    struct span spans[GH_ADMIN_MAX_PARAMS];
    size_t n = 0, path_len = req->query_at < req->path.len ? req->query_at : req->path.len;
    int path_known, presented;
    const char *why;
    const struct gh_admin_route *route =
        find_route(s, req->method, req->path.base, path_len, spans, &n, &path_known);

    /* the token before anything else: without it, 404 and 405 would map the API for anyone */
    if ((route == NULL || !route->public_route) &&
        (why = check_token(s, req, &presented)) != NULL) {
        record_denial(s, req, path_len, why, presented);
        add_header(req, H2O_TOKEN_WWW_AUTHENTICATE,
                   presented ? REALM ", error=\"invalid_token\"" : REALM);
        gh_admin_error(&res, 401, "unauthorized", NULL, "%s", why);
    } else if (route == NULL && !path_known) {
        gh_admin_error(&res, 404, "not_found", NULL, "no admin API resource has this path");
    } else if (route == NULL) {
        const char *allow = allowed_methods(s, req, req->path.base, path_len);
        add_header(req, H2O_TOKEN_ALLOW, allow);
        gh_admin_error(&res, 405, "method_not_allowed", NULL,
                       "this resource does not take this method; it takes %s", allow);
    } else if (req->entity.len > GH_ADMIN_MAX_BODY) {
        gh_admin_error(&res, 413, "payload_too_large", NULL,
                       "the request body is larger than %d bytes", GH_ADMIN_MAX_BODY);
    } else {
        call_handler(s, req, route, spans, n, path_len, &res);
    }
    send_response(req, &res);
    return 0;
}

/* ---- the admin thread ---- */

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct gh_admin_server *s = listener->data;

    if (err == NULL)
        gh_loop_accept(listener, &s->accept_ctx, &s->conns, 16);
}

static void on_wake(h2o_socket_t *sock, const char *err)
{
    struct gh_admin_server *s = sock->data;

    if (sock->input->size != 0)
        h2o_buffer_consume(&sock->input, sock->input->size);
    if (err != NULL || atomic_load(&s->stopping))
        s->stop_seen = 1;
}

static void shutdown_conns(struct gh_admin_server *s, int how)
{
    gh_loop_shutdown_conns(&s->conns, how, NULL);
}

/*
 * h2o 2.2's HTTP/1 has no way to end its idle keep-alive connections on request. Shutting down
 * the read side of each socket does it: an idle connection reads end-of-file and closes, a request
 * in progress is answered first (with Connection: close, as shutdown is requested) and then reads
 * end-of-file. Connections still open after the grace period (a client that does not read its
 * answer) are shut down both ways, which fails their writes.
 */
static void drain_connections(struct gh_admin_server *s)
{
    uint64_t deadline = gh_h2oloop_now_ms() + DRAIN_GRACE_MS;
    int forced = 0;

    for (size_t a = 0; a < s->listen.n; a++) {
        h2o_socket_read_stop(s->listeners[a]);
        h2o_socket_close(s->listeners[a]);
        s->listeners[a] = NULL;
    }
    /* what h2o_context_request_shutdown does for HTTP/1; the function itself would also arm
     * HTTP/2's graceful-shutdown timer, which outlives the connections and trips an assertion in
     * h2o_context_dispose */
    s->ctx.shutdown_requested = 1;
    shutdown_conns(s, SHUT_RD);
    while (!h2o_linklist_is_empty(&s->conns)) {
        gh_h2oloop_run_once(s->loop, DRAIN_POLL_MS);
        if (!forced && gh_h2oloop_now_ms() >= deadline) {
            shutdown_conns(s, SHUT_RDWR);
            forced = 1;
        }
    }
}

static void teardown_loop(struct gh_admin_server *s)
{
    h2o_socket_read_stop(s->waker);
    h2o_socket_close(s->waker);
    gh_loop_destroy(&s->ctx, s->loop); /* frees the sockets closed above */
}

static void *admin_thread(void *arg)
{
    struct gh_admin_server *s = arg;

    s->loop = h2o_evloop_create();
    h2o_context_init(&s->ctx, s->loop, &s->config);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;
    s->accept_ctx.ssl_ctx = s->tls;
    h2o_linklist_init_anchor(&s->conns);
    for (size_t a = 0; a < s->listen.n; a++) {
        s->listeners[a] =
            h2o_evloop_socket_create(s->loop, s->listen.fds[a], H2O_SOCKET_FLAG_DONT_READ);
        s->listen.fds[a] = -1; /* the socket owns it now */
        s->listeners[a]->data = s;
        h2o_socket_read_start(s->listeners[a], on_accept);
    }
    s->waker = h2o_evloop_socket_create(s->loop, s->wake_fds[0], 0);
    s->waker->data = s;
    h2o_socket_read_start(s->waker, on_wake);

    while (!s->stop_seen)
        gh_h2oloop_run_once(s->loop, INT32_MAX);
    drain_connections(s);
    teardown_loop(s);
    gh_loop_release_thread_caches(0); /* the admin API speaks HTTP/1.1 only */
    return NULL;
}

static void setup_config(struct gh_admin_server *s)
{
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    struct admin_handler *handler;

    h2o_config_init(&s->config);
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("gatehouse"));
    s->config.max_request_entity_size = H2O_ENTITY_LIMIT;
    s->config.http1.upgrade_to_http2 = 0; /* HTTP/1.1 only: no h2c, no prior-knowledge HTTP/2 */
    host = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    handler = (struct admin_handler *)h2o_create_handler(path, sizeof *handler);
    handler->server = s;
    handler->super.on_req = on_req;
}

/* The admin thread starts with every signal blocked: signals go to the process's own threads,
 * and a write to a client that went away fails with EPIPE instead of raising SIGPIPE. */
static int spawn_thread(struct gh_admin_server *s, char *error, size_t cap)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&s->thread, NULL, admin_thread, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        gh_error_format(error, cap, "cannot start the admin thread");
        return GH_ERR_IO;
    }
    return GH_OK;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int gh_admin_server_start(const struct gh_admin_server_options *options,
                          struct gh_admin_server **out, char *error, size_t cap)
{
    struct gh_admin_server *s = NULL;
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
    s->wake_fds[0] = s->wake_fds[1] = -1;
    atomic_init(&s->stopping, 0);
    SHA256((const unsigned char *)options->admin_token, strlen(options->admin_token),
           s->token_digest);
    if ((options->tls_cert != NULL && (rc = gh_loop_tls_new(options->tls_cert, options->tls_key, 0,
                                                            &s->tls, error, cap)) != GH_OK) ||
        (rc = open_listener(s, error, cap)) != GH_OK ||
        (rc = open_wake_pipe(s, error, cap)) != GH_OK)
        goto out;
    setup_config(s);
    if ((rc = spawn_thread(s, error, cap)) != GH_OK) {
        h2o_config_dispose(&s->config);
        goto out;
    }
    *out = s;
    s = NULL;
out:
    if (s != NULL) {
        gh_listen_close(&s->listen);
        SSL_CTX_free(s->tls);
        close_fd(&s->wake_fds[0]);
        close_fd(&s->wake_fds[1]);
        OPENSSL_cleanse(s->token_digest, sizeof s->token_digest);
        free(s);
    }
    return rc;
}

const char *gh_admin_server_address(const struct gh_admin_server *s)
{
    return s != NULL && s->listen.n > 0 ? s->listen.addresses[0] : "";
}

void gh_admin_server_stop(struct gh_admin_server *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stopping, 1);
    /* the loop owns the read end until it has read this byte, so the write cannot hit a closed
     * pipe; a full pipe (EAGAIN) already holds a wake-up */
    while (write(s->wake_fds[1], "x", 1) < 0 && errno == EINTR)
        ;
    pthread_join(s->thread, NULL);
    h2o_config_dispose(&s->config);
    SSL_CTX_free(s->tls);
    close_fd(&s->wake_fds[1]);
    OPENSSL_cleanse(s->token_digest, sizeof s->token_digest);
    free(s);
}

/* ---- helpers for handlers ---- */

/* A JSON string of `s`; bytes that are not valid UTF-8 (a cut message, a client's bytes) become
 * '?' rather than making the whole answer fail. */
static json_t *utf8_string(const char *s)
{
    json_t *v = json_string(s);
    char *copy;

    if (v != NULL || (copy = strdup(s)) == NULL)
        return v;
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

void gh_admin_error(struct gh_admin_response *res, int status, const char *code, const char *field,
                    const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    response_clear(res);
    res->status = status;
    if ((res->body = json_object()) == NULL)
        return;
    json_object_set_new(res->body, "error", utf8_string(code));
    json_object_set_new(res->body, "message", utf8_string(message));
    if (field != NULL)
        json_object_set_new(res->body, "field", utf8_string(field));
}

json_t *gh_admin_json_body(const struct gh_admin_request *req, struct gh_admin_response *res)
{
    json_error_t err;
    json_t *obj = NULL, *any;
    int rc;

    if (req->body == NULL || req->body_len == 0) {
        gh_admin_error(res, 400, "bad_request", NULL, "the body is not a JSON object: it is empty");
        return NULL;
    }
    rc = gh_json_parse_object(req->body, req->body_len, &obj);
    if (rc == GH_OK)
        return obj;
    if (rc == GH_ERR_JSON_DEPTH) {
        gh_admin_error(res, 400, "bad_request", NULL,
                       "the body is not a JSON object: it nests deeper than %d levels",
                       GH_JSON_MAX_DEPTH);
    } else if (rc == GH_ERR_JSON_DUPLICATE) {
        gh_admin_error(res, 400, "bad_request", NULL,
                       "the body is not a JSON object: an object in it repeats a member name");
    } else if (rc == GH_ERR_JSON_NOT_OBJECT) {
        gh_admin_error(res, 400, "bad_request", NULL,
                       "the body is not a JSON object: it is JSON of another type");
    } else {
        /* parsed again only to say where; Jansson's own text is not used since it quotes input */
        any = json_loadb((const char *)req->body, req->body_len, JSON_DECODE_ANY, &err);
        json_decref(any);
        gh_admin_error(res, 400, "bad_request", NULL,
                       "the body is not a JSON object: it is not valid JSON (line %d, column %d)",
                       err.line, err.column);
    }
    return NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes `len` bytes of a query component into `dst` (room for len + 1): %XX escapes and '+'
 * for a space, as in HTML forms. -1 for a broken escape or %00, which no caller can use. */
static int percent_decode(const char *src, size_t len, char *dst)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (src[i] == '%') {
            int hi = i + 2 < len ? hex_value(src[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(src[i + 2]) : -1;
            if (lo < 0 || (hi | lo) == 0)
                return -1;
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[o++] = src[i] == '+' ? ' ' : src[i];
        }
    }
    dst[o] = '\0';
    return 0;
}

char *gh_admin_query_param(const struct gh_admin_request *req, const char *name)
{
    const char *p = req != NULL && req->query != NULL ? req->query : "";

    while (name != NULL && *p != '\0') {
        size_t len = strcspn(p, "&"), key_len = strcspn(p, "=&");
        char *key = malloc(key_len + 1), *value;
        int match = key != NULL && percent_decode(p, key_len, key) == 0 && strcmp(key, name) == 0;
        free(key);
        if (match) {
            size_t value_len = key_len < len ? len - key_len - 1 : 0;
            if ((value = malloc(value_len + 1)) == NULL)
                return NULL;
            if (percent_decode(p + len - value_len, value_len, value) == 0)
                return value;
            free(value);
            return NULL; /* the first occurrence decides, even when it is broken */
        }
        p += len;
        p += *p == '&';
    }
    return NULL;
}
