// SPDX-License-Identifier: Apache-2.0
/*
 * The mock identity provider behind mockidp.h. Every socket is non-blocking and every wait is a
 * poll() that also watches one "stop" pipe: a single write to that pipe wakes the acceptor and each
 * connection thread wherever it waits (handshake, request, delay, hang, a client that does not
 * read), so gh_mockidp_stop() can join every thread promptly without racing on file descriptors
 * owned by other threads. Routes are immutable, reference-counted answers swapped under one mutex,
 * so a test may re-script the IdP while the provider manager is fetching from it.
 */
#include "mockidp.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define GH_MOCK_HEAD_MAX  16384       /* request line and headers */
#define GH_MOCK_PATH_MAX  2048        /* longest path kept for routing and hits */
#define GH_MOCK_BODY_MAX  (16u << 20) /* longest request body read (and dropped) */
#define GH_MOCK_IO_MS     10000       /* idle limit of one read or write */
#define GH_MOCK_LINGER_MS 1000        /* wait for the client's FIN after answering */
#define GH_MOCK_DISCOVERY "/.well-known/openid-configuration"

/* An immutable copy of a gh_mock_response, shared by the route table and requests in flight. */
struct answer {
    unsigned refs; /* under gh_mockidp.lock */
    int status, delay_ms, hang, garbage, truncate;
    char *content_type, *extra_headers, *body, *location;
    size_t body_len, pad_to;
};

struct route {
    struct route *next;
    char *path;
    struct answer *answer;
};

struct hit {
    struct hit *next;
    char *path;
    unsigned n;
};

struct conn {
    struct conn *next;
    struct gh_mockidp *m;
    int fd; /* owned by the connection's thread, which closes it */
    SSL *ssl;
    pthread_t thread;
    int done; /* under gh_mockidp.lock: the thread is about to return */
};

struct gh_mockidp {
    int lfd;
    int stop_rd, stop_wr; /* the stop pipe; readable once stop has begun */
    SSL_CTX *tls;         /* NULL for plain HTTP */
    int port;
    char base_url[64];
    pthread_t acceptor;
    pthread_mutex_t lock; /* guards routes, hits, conns and answer reference counts */
    pthread_cond_t hit_cond;
    struct route *routes;
    struct hit *hits;
    struct conn *conns;
    struct answer *not_found;
};

struct request {
    char path[GH_MOCK_PATH_MAX + 1];
    int head_only;
    size_t content_length;
    int expect_continue;
};

/* The mock is test scaffolding: running out of memory must fail the test loudly, not turn into a
 * silently missing route that a test would then misread as a gateway bug. */
static void *must(void *p)
{
    if (p == NULL) {
        fputs("mockidp: out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? must(strdup(s)) : NULL;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Routes and hits are keyed by the path without its query string. */
static size_t path_key_len(const char *path)
{
    return strcspn(path, "?#");
}

static int path_equal(const char *key, const char *path)
{
    size_t n = path_key_len(path);
    return strlen(key) == n && memcmp(key, path, n) == 0;
}

/* A write to a socket whose peer has gone raises SIGPIPE, which would kill the whole test program;
 * TLS writes go through OpenSSL's socket BIO, which cannot pass MSG_NOSIGNAL. Blocked in our own
 * threads, the signal stays pending there and the write fails with EPIPE instead. */
static void block_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 ? 0 : -1;
}

/* Waits until `fd` (ignored when negative) has `events`: 1 when ready, 0 after `timeout_ms` (-1:
 * forever), -1 once stop has begun. Stop wins over readiness so that teardown never lingers. */
static int wait_fd(struct gh_mockidp *m, int fd, short events, int timeout_ms)
{
    long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = m->stop_rd, .events = POLLIN}, {.fd = fd, .events = events}};
        int left = -1;
        if (timeout_ms >= 0) {
            long long d = deadline - now_ms();
            left = d > 0 ? (int)d : 0;
        }
        int n = poll(p, 2, left);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0 && p[0].revents != 0)
            return -1;
        if (n > 0 && p[1].revents != 0)
            return 1;
        if (n == 0 && left == 0)
            return 0;
    }
}

/* For loops that may never wait (a client reading or sending as fast as we go): stop must still
 * interrupt them. */
static int stopping(struct gh_mockidp *m)
{
    return wait_fd(m, -1, 0, 0) < 0;
}

/* ---- connection I/O: one function for plain and TLS, always non-blocking ---- */

/* One attempt to move bytes: >0 moved, 0 end of stream, -1 failed for good, -2 retry once *wait
 * (POLLIN or POLLOUT) is ready. */
static ssize_t io_step(struct conn *c, int writing, void *buf, size_t len, short *wait)
{
    if (c->ssl != NULL) {
        size_t done = 0;
        int ok;
        ERR_clear_error();
        ok = writing ? SSL_write_ex(c->ssl, buf, len, &done) : SSL_read_ex(c->ssl, buf, len, &done);
        if (ok == 1)
            return (ssize_t)done;
        switch (SSL_get_error(c->ssl, 0)) {
        case SSL_ERROR_WANT_READ:
            *wait = POLLIN;
            return -2;
        case SSL_ERROR_WANT_WRITE:
            *wait = POLLOUT;
            return -2;
        case SSL_ERROR_ZERO_RETURN:
            return 0;
        default:
            return -1;
        }
    }
    ssize_t n = writing ? send(c->fd, buf, len, MSG_NOSIGNAL) : recv(c->fd, buf, len, 0);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        *wait = writing ? POLLOUT : POLLIN;
        return -2;
    }
    return -1;
}

/* Reads what is available (waiting at most `timeout_ms` per wait, -1: until stop): bytes read,
 * 0 at end of stream, -1 on failure, timeout or stop. */
static ssize_t conn_read(struct conn *c, void *buf, size_t len, int timeout_ms)
{
    for (;;) {
        short wait = 0;
        ssize_t n = io_step(c, 0, buf, len, &wait);
        if (n != -2)
            return n;
        if (wait_fd(c->m, c->fd, wait, timeout_ms) != 1)
            return -1;
    }
}

static int conn_write(struct conn *c, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        short wait = 0;
        ssize_t n = io_step(c, 1, (void *)p, len, &wait);
        if (n == -2) {
            if (wait_fd(c->m, c->fd, wait, GH_MOCK_IO_MS) != 1)
                return -1;
            continue;
        }
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int conn_handshake(struct conn *c)
{
    for (;;) {
        int rc;
        ERR_clear_error();
        rc = SSL_accept(c->ssl);
        if (rc == 1)
            return 0;
        switch (SSL_get_error(c->ssl, rc)) {
        case SSL_ERROR_WANT_READ:
            rc = wait_fd(c->m, c->fd, POLLIN, GH_MOCK_IO_MS);
            break;
        case SSL_ERROR_WANT_WRITE:
            rc = wait_fd(c->m, c->fd, POLLOUT, GH_MOCK_IO_MS);
            break;
        default:
            return -1; /* e.g. the client refused our certificate */
        }
        if (rc != 1)
            return -1;
    }
}

/* Sends close_notify and our FIN, then waits briefly for the client's FIN: closing a socket with
 * unread input makes the kernel send a reset, which can destroy an answer still in flight. */
static void conn_close(struct conn *c)
{
    char sink[4096];
    long long deadline = now_ms() + GH_MOCK_LINGER_MS;
    if (c->ssl != NULL) {
        if (SSL_is_init_finished(c->ssl))
            SSL_shutdown(c->ssl);
        ERR_clear_error();
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    shutdown(c->fd, SHUT_WR);
    while (now_ms() < deadline && !stopping(c->m)) {
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            break;
        if (n < 0 && wait_fd(c->m, c->fd, POLLIN, (int)(deadline - now_ms())) != 1)
            break;
    }
    close(c->fd);
    c->fd = -1;
}

/* ---- answers ---- */

static struct answer *answer_new(const struct gh_mock_response *r)
{
    struct answer *a = must(calloc(1, sizeof *a));
    size_t eh = r->extra_headers != NULL ? strlen(r->extra_headers) : 0;
    a->refs = 1;
    a->status = r->status != 0 ? r->status : 200;
    a->delay_ms = r->delay_ms;
    a->hang = r->hang;
    a->garbage = r->garbage;
    a->truncate = r->truncate;
    a->pad_to = r->pad_to;
    a->content_type = dup_or_null(r->content_type);
    a->location = dup_or_null(r->location);
    if (eh > 0) {
        /* Header lines are sent verbatim; only a missing final CRLF is repaired, since forgetting
         * it would silently glue the next header onto the test's last line. */
        int fix = eh < 2 || memcmp(r->extra_headers + eh - 2, "\r\n", 2) != 0;
        a->extra_headers = must(malloc(eh + 3));
        memcpy(a->extra_headers, r->extra_headers, eh);
        memcpy(a->extra_headers + eh, fix ? "\r\n" : "", fix ? 3 : 1);
    }
    if (r->body != NULL) {
        a->body_len = r->body_len != 0 ? r->body_len : strlen(r->body);
        a->body = must(malloc(a->body_len + 1));
        memcpy(a->body, r->body, a->body_len);
        a->body[a->body_len] = '\0';
    }
    return a;
}

static void answer_free(struct answer *a)
{
    if (a == NULL)
        return;
    free(a->content_type);
    free(a->extra_headers);
    free(a->body);
    free(a->location);
    free(a);
}

/* Drops one reference; the caller holds m->lock. Returns the answer to free (outside the lock),
 * or NULL while others still use it. */
static struct answer *answer_unref_locked(struct answer *a)
{
    return a != NULL && --a->refs == 0 ? a : NULL;
}

static void answer_release(struct gh_mockidp *m, struct answer *a)
{
    pthread_mutex_lock(&m->lock);
    a = answer_unref_locked(a);
    pthread_mutex_unlock(&m->lock);
    answer_free(a);
}

/* The answer for `path` with a reference for the caller (the 404 answer when none is scripted). */
static struct answer *answer_get(struct gh_mockidp *m, const char *path)
{
    struct answer *a = m->not_found;
    pthread_mutex_lock(&m->lock);
    for (struct route *r = m->routes; r != NULL; r = r->next) {
        if (strcmp(r->path, path) == 0) {
            a = r->answer;
            break;
        }
    }
    a->refs++;
    pthread_mutex_unlock(&m->lock);
    return a;
}

static const char *reason(int status)
{
    static const struct {
        int status;
        const char *text;
    } table[] = {
        /* clang-format off */
        {100, "Continue"}, {200, "OK"}, {201, "Created"}, {204, "No Content"},
        {301, "Moved Permanently"}, {302, "Found"}, {303, "See Other"}, {304, "Not Modified"},
        {307, "Temporary Redirect"}, {308, "Permanent Redirect"}, {400, "Bad Request"},
        {401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"},
        {405, "Method Not Allowed"}, {411, "Length Required"}, {413, "Content Too Large"},
        {414, "URI Too Long"}, {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"}, {500, "Internal Server Error"},
        {502, "Bad Gateway"}, {503, "Service Unavailable"}, {504, "Gateway Timeout"},
        /* clang-format on */
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].status == status)
            return table[i].text;
    return "Status";
}

/* The status line and headers; the caller frees the result. */
static char *format_head(const struct answer *a, size_t announced, size_t *len)
{
    char *out = NULL;
    FILE *f = open_memstream(&out, len);
    if (f == NULL)
        return NULL;
    fprintf(f, "HTTP/1.1 %d %s\r\n", a->status, reason(a->status));
    fprintf(f, "Content-Length: %zu\r\nConnection: close\r\n", announced);
    if (a->content_type != NULL)
        fprintf(f, "Content-Type: %s\r\n", a->content_type);
    if (a->location != NULL)
        fprintf(f, "Location: %s\r\n", a->location);
    if (a->extra_headers != NULL)
        fputs(a->extra_headers, f);
    fputs("\r\n", f);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* Streams `total` bytes of the body repeated, so a 2 MiB answer needs no 2 MiB buffer. */
static int send_body(struct conn *c, const struct answer *a, size_t total)
{
    char chunk[16384];
    for (size_t off = 0; off < total;) {
        size_t n = total - off < sizeof chunk ? total - off : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = a->body_len > 0 ? a->body[(off + i) % a->body_len] : ' ';
        if (stopping(c->m) || conn_write(c, chunk, n) != 0)
            return -1;
        off += n;
    }
    return 0;
}

/* Keeps the connection open, reading and dropping whatever arrives, until the client closes it or
 * stop begins: the client under test must give up on its own time limit. */
static void hang(struct conn *c)
{
    char sink[4096];
    while (!stopping(c->m) && conn_read(c, sink, sizeof sink, -1) > 0)
        continue;
}

static void answer_send(struct conn *c, const struct answer *a, int head_only)
{
    static const char junk[] = "\x01\x02 this is not HTTP \xff\xfe\r\n\r\n\x16\x03 garbage\n";
    size_t total = a->pad_to > a->body_len ? a->pad_to : a->body_len;
    size_t head_len = 0;
    char *head;

    if (a->delay_ms > 0 && wait_fd(c->m, -1, 0, a->delay_ms) < 0)
        return;
    if (a->hang) {
        hang(c);
        return;
    }
    if (a->garbage) {
        conn_write(c, junk, sizeof junk - 1);
        return;
    }
    /* Truncation announces more than is sent; the close that follows ends the body early. */
    head = format_head(a, a->truncate ? total + 4096 : total, &head_len);
    if (head != NULL && conn_write(c, head, head_len) == 0 && !head_only)
        send_body(c, a, total);
    free(head);
}

static void send_error(struct conn *c, int status)
{
    char body[64];
    struct answer *a;
    snprintf(body, sizeof body, "{\"error\":\"%s\"}", reason(status));
    a = answer_new(&(struct gh_mock_response){
        .status = status, .content_type = "application/json", .body = body});
    answer_send(c, a, 0);
    answer_free(a);
}

/* ---- requests ---- */

static const char *find_blank_line(const char *buf, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
            return buf + i;
    return NULL;
}

/* Reads until the blank line ending the head. Returns the head's length (blank line included),
 * with *have the bytes read in all; 0 when the head exceeds GH_MOCK_HEAD_MAX, -1 on failure. */
static long read_head(struct conn *c, char *buf, size_t *have)
{
    *have = 0;
    for (;;) {
        size_t from = *have > 3 ? *have - 3 : 0;
        ssize_t n;
        if (*have >= GH_MOCK_HEAD_MAX)
            return 0;
        n = conn_read(c, buf + *have, GH_MOCK_HEAD_MAX - *have, GH_MOCK_IO_MS);
        if (n <= 0)
            return -1;
        *have += (size_t)n;
        const char *end = find_blank_line(buf + from, *have - from);
        if (end != NULL)
            return (long)(end - buf) + 4;
    }
}

/* "METHOD SP target SP HTTP/1.x": 0, or the status to refuse it with. */
static int parse_request_line(const char *line, size_t len, struct request *req)
{
    const char *sp1 = memchr(line, ' ', len), *sp2, *path;
    size_t plen;
    if (sp1 == NULL || sp1 == line || sp1 - line > 16)
        return 400;
    for (const char *p = line; p < sp1; p++)
        if (*p < 'A' || *p > 'Z')
            return 400;
    req->head_only = sp1 - line == 4 && memcmp(line, "HEAD", 4) == 0;
    sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line));
    if (sp2 == NULL || sp2 == sp1 + 1 || line + len - (sp2 + 1) != 8 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return 400;
    path = sp1 + 1;
    /* Absolute form (as sent to a proxy): keep only the path. */
    if (sp2 - path > 8 && (memcmp(path, "http://", 7) == 0 || memcmp(path, "https://", 8) == 0)) {
        const char *slash = memchr(path + 8, '/', (size_t)(sp2 - path - 8));
        path = slash != NULL ? slash : sp2;
    }
    /* The buffer is not NUL-terminated: scan for the query within the target only. */
    plen = 0;
    while (path + plen < sp2 && path[plen] != '?' && path[plen] != '#')
        plen++;
    if (path < sp2 && *path != '/')
        return 400;
    if (plen > GH_MOCK_PATH_MAX)
        return 414;
    for (size_t i = 0; i < plen; i++)
        if ((unsigned char)path[i] <= ' ' || path[i] == 0x7f)
            return 400;
    memcpy(req->path, plen > 0 ? path : "/", plen > 0 ? plen : 1);
    req->path[plen > 0 ? plen : 1] = '\0';
    return 0;
}

/* Matches header `name` (lower case) at the start of a line; returns its value, blanks skipped. */
static const char *header_value(const char *line, size_t len, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    const char *v;
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    v = line + n + 1;
    while (v < line + len && (*v == ' ' || *v == '\t'))
        v++;
    *vlen = (size_t)(line + len - v);
    while (*vlen > 0 && (v[*vlen - 1] == ' ' || v[*vlen - 1] == '\t'))
        (*vlen)--;
    return v;
}

static int parse_header(const char *line, size_t len, struct request *req)
{
    size_t vlen = 0, value = 0;
    const char *v;
    if (memchr(line, ':', len) == NULL)
        return 400;
    if (header_value(line, len, "transfer-encoding", &vlen) != NULL)
        return 411; /* bodies are read by Content-Length only */
    if ((v = header_value(line, len, "expect", &vlen)) != NULL)
        req->expect_continue = vlen == 12 && strncasecmp(v, "100-continue", 12) == 0;
    if ((v = header_value(line, len, "content-length", &vlen)) == NULL)
        return 0;
    if (vlen == 0)
        return 400;
    for (size_t i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 400;
        if (value > GH_MOCK_BODY_MAX)
            return 413;
        value = value * 10 + (size_t)(v[i] - '0');
    }
    if (value > GH_MOCK_BODY_MAX)
        return 413;
    req->content_length = value;
    return 0;
}

/* Splits the head into lines: 0, or the status to refuse the request with. */
static int parse_head(const char *buf, size_t head_len, struct request *req)
{
    /* The head ends with CRLF CRLF, so every line up to `end` has its own CRLF. */
    const char *p = buf, *end = buf + head_len - 2;
    int first = 1;
    memset(req, 0, sizeof *req);
    while (p < end) {
        const char *eol = p;
        int rc;
        while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n'))
            eol++;
        rc = first ? parse_request_line(p, (size_t)(eol - p), req)
                   : parse_header(p, (size_t)(eol - p), req);
        if (rc != 0)
            return rc;
        first = 0;
        p = eol + 2;
    }
    return first ? 400 : 0;
}

/* Reads and drops the request body so that our close is not a reset that loses the answer. */
static int drain_body(struct conn *c, size_t left)
{
    char sink[16384];
    while (left > 0) {
        ssize_t n = conn_read(c, sink, left < sizeof sink ? left : sizeof sink, GH_MOCK_IO_MS);
        if (n <= 0)
            return -1;
        left -= (size_t)n;
    }
    return 0;
}

/* Reads one whole request: 0 when `req` is ready, an HTTP status to refuse it, -1 to just close. */
static int read_request(struct conn *c, struct request *req)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    char *buf = must(malloc(GH_MOCK_HEAD_MAX));
    size_t have = 0, extra;
    long head_len = read_head(c, buf, &have);
    int rc = head_len < 0 ? -1 : head_len == 0 ? 431 : parse_head(buf, (size_t)head_len, req);
    free(buf);
    if (rc != 0)
        return rc;
    extra = have - (size_t)head_len;
    if (extra >= req->content_length)
        return 0;
    if (req->expect_continue && conn_write(c, cont, sizeof cont - 1) != 0)
        return -1;
    return drain_body(c, req->content_length - extra);
}

static void count_hit(struct gh_mockidp *m, const char *path)
{
    struct hit *h;
    pthread_mutex_lock(&m->lock);
    for (h = m->hits; h != NULL && strcmp(h->path, path) != 0; h = h->next)
        continue;
    if (h == NULL) {
        h = must(calloc(1, sizeof *h));
        h->path = must(strdup(path));
        h->next = m->hits;
        m->hits = h;
    }
    h->n++;
    pthread_cond_broadcast(&m->hit_cond);
    pthread_mutex_unlock(&m->lock);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct gh_mockidp *m = c->m;
    struct request *req = must(malloc(sizeof *req));
    block_sigpipe();
    if (c->ssl == NULL || conn_handshake(c) == 0) {
        int rc = read_request(c, req);
        if (rc > 0) {
            send_error(c, rc);
        } else if (rc == 0) {
            struct answer *a;
            count_hit(m, req->path);
            a = answer_get(m, req->path);
            answer_send(c, a, req->head_only);
            answer_release(m, a);
        }
    }
    free(req);
    conn_close(c);
    pthread_mutex_lock(&m->lock);
    c->done = 1;
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* ---- acceptor ---- */

/* Joins the threads of finished connections so a long test does not pile them up. */
static void reap_done(struct gh_mockidp *m)
{
    struct conn *done = NULL, **pp = &m->conns;
    pthread_mutex_lock(&m->lock);
    while (*pp != NULL) {
        struct conn *c = *pp;
        if (c->done) {
            *pp = c->next;
            c->next = done;
            done = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&m->lock);
    while (done != NULL) {
        struct conn *next = done->next;
        pthread_join(done->thread, NULL);
        free(done);
        done = next;
    }
}

static void conn_start(struct gh_mockidp *m, int fd)
{
    struct conn *c = must(calloc(1, sizeof *c));
    int one = 1;
    c->m = m;
    c->fd = fd;
    /* Head and body go out in separate writes; Nagle would hold the body back for an ACK. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (set_nonblocking(fd) != 0 || (m->tls != NULL && (c->ssl = SSL_new(m->tls)) == NULL) ||
        (c->ssl != NULL && SSL_set_fd(c->ssl, fd) != 1))
        goto fail;
    pthread_mutex_lock(&m->lock);
    c->next = m->conns;
    m->conns = c;
    pthread_mutex_unlock(&m->lock);
    if (pthread_create(&c->thread, NULL, conn_main, c) == 0)
        return;
    pthread_mutex_lock(&m->lock);
    m->conns = c->next; /* only this thread adds or removes, so c is still first */
    pthread_mutex_unlock(&m->lock);
fail:
    SSL_free(c->ssl);
    close(fd);
    free(c);
}

static void *accept_main(void *arg)
{
    struct gh_mockidp *m = arg;
    block_sigpipe();
    while (wait_fd(m, m->lfd, POLLIN, -1) == 1) {
        int fd = accept(m->lfd, NULL, NULL);
        if (fd >= 0) {
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            conn_start(m, fd);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                   errno != ECONNABORTED && wait_fd(m, -1, 0, 10) < 0) {
            break; /* e.g. out of descriptors: retry slowly instead of spinning */
        }
        reap_done(m);
    }
    return NULL;
}

/* ---- life cycle ---- */

static int listen_loopback(struct gh_mockidp *m)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m->lfd < 0 || bind(m->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(m->lfd, 128) != 0 || getsockname(m->lfd, (struct sockaddr *)&sa, &sl) != 0 ||
        set_nonblocking(m->lfd) != 0)
        return -1;
    m->port = ntohs(sa.sin_port);
    return 0;
}

static int make_stop_pipe(struct gh_mockidp *m)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    m->stop_rd = fds[0];
    m->stop_wr = fds[1];
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

static int init_sync(struct gh_mockidp *m)
{
    pthread_condattr_t attr;
    int ok;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    /* wait_hits deadlines must not jump with the wall clock. */
    ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
         pthread_cond_init(&m->hit_cond, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!ok)
        return -1;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        pthread_cond_destroy(&m->hit_cond);
        return -1;
    }
    return 0;
}

/* Takes ownership of `tls` (may be NULL). */
static struct gh_mockidp *mock_start(SSL_CTX *tls)
{
    struct gh_mockidp *m = must(calloc(1, sizeof *m));
    m->lfd = m->stop_rd = m->stop_wr = -1;
    m->tls = tls;
    if (listen_loopback(m) != 0 || make_stop_pipe(m) != 0 || init_sync(m) != 0)
        goto fail;
    snprintf(m->base_url, sizeof m->base_url, "%s://127.0.0.1:%d", tls ? "https" : "http", m->port);
    m->not_found = answer_new(&(struct gh_mock_response){
        .status = 404, .content_type = "application/json", .body = "{\"error\":\"not_found\"}"});
    if (pthread_create(&m->acceptor, NULL, accept_main, m) == 0)
        return m;
    answer_free(m->not_found);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->hit_cond);
fail:
    if (m->lfd >= 0)
        close(m->lfd);
    if (m->stop_rd >= 0)
        close(m->stop_rd);
    if (m->stop_wr >= 0)
        close(m->stop_wr);
    SSL_CTX_free(tls);
    free(m);
    return NULL;
}

struct gh_mockidp *gh_mockidp_start(void)
{
    return mock_start(NULL);
}

struct gh_mockidp *gh_mockidp_start_tls(const char *cert_pem_file, const char *key_pem_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert_pem_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_pem_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    /* A client that gives up mid-hang closes without close_notify; that is not an error here. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    return mock_start(ctx);
}

const char *gh_mockidp_base_url(const struct gh_mockidp *m)
{
    return m->base_url;
}

int gh_mockidp_port(const struct gh_mockidp *m)
{
    return m->port;
}

void gh_mockidp_set(struct gh_mockidp *m, const char *path, const struct gh_mock_response *r)
{
    struct answer *fresh = r != NULL ? answer_new(r) : NULL, *old = NULL;
    struct route **pp;
    pthread_mutex_lock(&m->lock);
    for (pp = &m->routes; *pp != NULL && !path_equal((*pp)->path, path); pp = &(*pp)->next)
        continue;
    if (*pp != NULL) {
        struct route *rt = *pp;
        old = answer_unref_locked(rt->answer);
        if (fresh != NULL) {
            rt->answer = fresh;
        } else {
            *pp = rt->next;
            free(rt->path);
            free(rt);
        }
    } else if (fresh != NULL) {
        struct route *rt = must(calloc(1, sizeof *rt));
        rt->path = must(strndup(path, path_key_len(path)));
        rt->answer = fresh;
        rt->next = m->routes;
        m->routes = rt;
    }
    pthread_mutex_unlock(&m->lock);
    answer_free(old);
}

void gh_mockidp_set_json(struct gh_mockidp *m, const char *path, int status, const char *json,
                         const char *extra_headers)
{
    struct gh_mock_response r = {.status = status,
                                 .content_type = "application/json",
                                 .extra_headers = extra_headers,
                                 .body = json != NULL ? json : ""};
    gh_mockidp_set(m, path, &r);
}

/* Writes the characters of `s` escaped for the inside of a JSON string. */
static void json_chars(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
}

/* Writes `,"name":"<base><path>"`. */
static void json_url(FILE *f, const char *name, const char *base, const char *path)
{
    fprintf(f, ",\"%s\":\"", name);
    json_chars(f, base);
    json_chars(f, path);
    fputc('"', f);
}

void gh_mockidp_serve_discovery(struct gh_mockidp *m, const char *issuer, const char *jwks_path)
{
    char *doc = NULL;
    size_t len = 0;
    FILE *f = must(open_memstream(&doc, &len));
    fputs("{\"issuer\":\"", f);
    json_chars(f, issuer != NULL ? issuer : m->base_url);
    fputc('"', f);
    json_url(f, "jwks_uri", m->base_url, jwks_path != NULL ? jwks_path : "/jwks");
    json_url(f, "authorization_endpoint", m->base_url, "/authorize");
    json_url(f, "token_endpoint", m->base_url, "/token");
    fputs(",\"response_types_supported\":[\"code\"],\"subject_types_supported\":[\"public\"],"
          "\"id_token_signing_alg_values_supported\":[\"RS256\",\"ES256\",\"EdDSA\"]}",
          f);
    if (fclose(f) != 0)
        must(NULL);
    gh_mockidp_set_json(m, GH_MOCK_DISCOVERY, 200, doc, NULL);
    free(doc);
}

static unsigned hits_locked(struct gh_mockidp *m, const char *path)
{
    for (struct hit *h = m->hits; h != NULL; h = h->next)
        if (path_equal(h->path, path))
            return h->n;
    return 0;
}

unsigned gh_mockidp_hits(struct gh_mockidp *m, const char *path)
{
    unsigned n;
    pthread_mutex_lock(&m->lock);
    n = hits_locked(m, path);
    pthread_mutex_unlock(&m->lock);
    return n;
}

void gh_mockidp_reset_hits(struct gh_mockidp *m)
{
    pthread_mutex_lock(&m->lock);
    for (struct hit *h = m->hits; h != NULL; h = h->next)
        h->n = 0;
    pthread_mutex_unlock(&m->lock);
}

unsigned gh_mockidp_wait_hits(struct gh_mockidp *m, const char *path, unsigned at_least,
                              int timeout_ms)
{
    struct timespec deadline;
    unsigned n;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&m->lock);
    while ((n = hits_locked(m, path)) < at_least)
        if (pthread_cond_timedwait(&m->hit_cond, &m->lock, &deadline) == ETIMEDOUT) {
            n = hits_locked(m, path);
            break;
        }
    pthread_mutex_unlock(&m->lock);
    return n;
}

static void free_tables(struct gh_mockidp *m)
{
    while (m->routes != NULL) {
        struct route *r = m->routes;
        m->routes = r->next;
        answer_free(r->answer); /* every request holding a reference has been joined */
        free(r->path);
        free(r);
    }
    while (m->hits != NULL) {
        struct hit *h = m->hits;
        m->hits = h->next;
        free(h->path);
        free(h);
    }
    answer_free(m->not_found);
}

void gh_mockidp_stop(struct gh_mockidp *m)
{
    ssize_t w;
    if (m == NULL)
        return;
    /* One byte makes the pipe readable for good: every wait_fd() in every thread returns. */
    do
        w = write(m->stop_wr, "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(m->acceptor, NULL);
    /* The acceptor is gone, so nothing adds to m->conns any more. */
    while (m->conns != NULL) {
        struct conn *c = m->conns;
        m->conns = c->next;
        pthread_join(c->thread, NULL);
        free(c);
    }
    close(m->lfd);
    close(m->stop_rd);
    close(m->stop_wr);
    free_tables(m);
    SSL_CTX_free(m->tls);
    pthread_cond_destroy(&m->hit_cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
