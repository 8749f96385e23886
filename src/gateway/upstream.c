// SPDX-License-Identifier: Apache-2.0
/*
 * Connections to upstreams: made (name lookup, TCP, TLS with the certificate checked) and kept
 * alive per worker thread in one pool per scheme://host:port and trusted CA bundle. An idle
 * connection stays registered with the loop and is watched for reading: the upstream closing it
 * (or sending anything unasked) drops it from the pool at once, and taking it costs one system
 * call, a peek for bytes the loop has not read yet (see conn_quiet).
 * Pools are per thread, not shared: a socket belongs to one loop.
 */
#include "gateway/server_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/error.h"
#include "http/resolve.h"

#define POOL_IDLE_MS 2000 /* keep-alive connections unused this long are closed */
#define MAX_IDLE     256  /* idle connections kept per pool and worker */
#define HOST_MAX     255

struct gw_pool {
    int https;
    char *host; /* for the name lookup, SNI and the certificate check; no IPv6 brackets */
    uint16_t port;
    char port_text[6];
    /* A collection's own upstream_ca (a copy) and the TLS context trusting it; NULL: the
     * server's. A connection verified against one set of CAs never serves a collection that
     * trusts other ones, so the CA is part of the pool's key. */
    char *ca;
    SSL_CTX *tls;
    struct gw_upstream_conn *idle; /* most recently used first */
    size_t n_idle;
};

/* Adds every certificate of the PEM text to `store`; the number added. */
static int add_pem_certs(X509_STORE *store, const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert;
    int n = 0;

    while (bio != NULL && (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        n += X509_STORE_add_cert(store, cert) == 1;
        X509_free(cert);
    }
    BIO_free(bio);
    ERR_clear_error(); /* the end of the text reads as an error */
    return n;
}

/*
 * A client TLS context like the server's (TLS 1.2+, chain and name verified) that trusts `ca`
 * beside what the server trusts. No file is read here, on a worker: the certificates from files
 * are copied from the server's trust_files, and the system's hashed directory is only looked up
 * when a chain needs it, as it is for the server's own context.
 */
static SSL_CTX *tls_for_ca(const struct gh_gateway_server *s, const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_STORE *store = ctx != NULL ? SSL_CTX_get_cert_store(ctx) : NULL;
    STACK_OF(X509_OBJECT) *objects = X509_STORE_get0_objects(s->trust_files);
    X509_LOOKUP *dir = store != NULL ? X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir()) : NULL;

    if (dir == NULL || add_pem_certs(store, ca) == 0) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    X509_LOOKUP_add_dir(dir, NULL, X509_FILETYPE_DEFAULT);
    for (int i = 0; i < sk_X509_OBJECT_num(objects); i++) {
        X509 *cert = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i));
        if (cert != NULL)
            X509_STORE_add_cert(store, cert);
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    ERR_clear_error(); /* a certificate both sets have is refused as a duplicate: harmless */
    return ctx;
}

static void pool_free(struct gw_pool *p)
{
    SSL_CTX_free(p->tls);
    free(p->ca);
    free(p->host);
    free(p);
}

static struct gw_pool *pool_new(const struct gw_worker *w, const struct gw_url *up, const char *ca)
{
    struct gw_pool *p = calloc(1, sizeof *p);

    if (p == NULL || up->host_len > HOST_MAX ||
        (p->host = strndup(up->host, up->host_len)) == NULL) {
        free(p);
        return NULL;
    }
    if (ca != NULL &&
        ((p->ca = strdup(ca)) == NULL || (p->tls = tls_for_ca(w->server, ca)) == NULL)) {
        pool_free(p);
        return NULL;
    }
    p->https = up->https;
    p->port = up->port;
    snprintf(p->port_text, sizeof p->port_text, "%u", (unsigned)p->port);
    return p;
}

/* Pools are never dropped while the worker runs: upstreams come from configuration only, so
 * there are as many as distinct upstream addresses (with their upstream_ca) ever configured, and
 * an unused one holds no connection after POOL_IDLE_MS. */
struct gw_pool *gw_pool_for(struct gw_worker *w, const struct gw_url *up, const char *ca)
{
    struct gw_pool *p, **grown;

    if (!up->https)
        ca = NULL;
    for (size_t i = 0; i < w->n_pools; i++) {
        p = w->pools[i];
        if (p->https == up->https && p->port == up->port &&
            gw_lcequal(p->host, strlen(p->host), up->host, up->host_len) &&
            (p->ca == NULL ? ca == NULL : ca != NULL && strcmp(p->ca, ca) == 0))
            return p;
    }
    if ((p = pool_new(w, up, ca)) == NULL)
        return NULL;
    if ((grown = realloc(w->pools, (w->n_pools + 1) * sizeof *grown)) == NULL) {
        pool_free(p);
        return NULL;
    }
    w->pools = grown;
    w->pools[w->n_pools++] = p;
    return p;
}

/* ---- connections ---- */

static void unlink_idle(struct gw_upstream_conn *conn)
{
    struct gw_pool *p = conn->pool;

    if (!conn->idle)
        return;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        p->idle = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    conn->prev = conn->next = NULL;
    conn->idle = 0;
    p->n_idle--;
    gh_timer_disarm(conn->worker->loop, &conn->idle_timer);
}

static void conn_close(struct gw_upstream_conn *conn)
{
    unlink_idle(conn);
    gh_timer_disarm(conn->worker->loop, &conn->idle_timer);
    gh_sock_close(&conn->sock);
    conn->worker->upstream_sockets--;
    free(conn);
}

/* Anything from an idle connection, data or its end, means it cannot carry a request. Data is
 * what the upstream sent after a complete answer (a body after HEAD, a second answer): read as
 * the next request's answer, it would reach another client, so it is counted. */
static void on_idle_read(struct gh_sock *s, int status)
{
    struct gw_upstream_conn *conn = (struct gw_upstream_conn *)s;

    (void)status;
    if (s->in_len != 0)
        gw_count(&conn->worker->server->metrics.upstream_extra_bytes);
    conn_close(conn);
}

static void on_idle_timeout(struct gh_timer *t)
{
    conn_close(t->data);
}

/*
 * 1 when the kernel holds nothing for an idle connection. The loop reads an idle connection only
 * when its poll says so: bytes that came after the answer (a body after HEAD, 204 or 304, a
 * second unasked answer) while the loop was busy with other sockets sit unread, and after our
 * request they would be read as its answer and reach another client. Its end (0) is the upstream
 * closing it, which is no fault. An error (EINTR included) closes it too: a new connection is
 * always safe. For TLS the peek sees records, not data; anything there is as unasked.
 */
static int conn_quiet(struct gw_upstream_conn *conn)
{
    char byte;
    ssize_t n;

    if (conn->sock.in_len != 0) {
        gw_count(&conn->worker->server->metrics.upstream_extra_bytes);
        return 0;
    }
    n = recv(conn->sock.io.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        gw_count(&conn->worker->server->metrics.upstream_extra_bytes);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

struct gw_upstream_conn *gw_pool_take(struct gw_pool *p)
{
    struct gw_upstream_conn *conn;

    while ((conn = p->idle) != NULL) {
        if (!conn_quiet(conn)) {
            conn_close(conn); /* the next one, or a new connection */
            continue;
        }
        unlink_idle(conn);
        gh_sock_read_stop(&conn->sock); /* the taker reads with its own callback */
        return conn;
    }
    return NULL;
}

void gw_conn_release(struct gw_upstream_conn *conn, int reusable)
{
    struct gw_pool *p = conn->pool;
    struct gw_worker *w = conn->worker;

    conn->x = NULL;
    if (!reusable || p->n_idle >= MAX_IDLE || conn->sock.in_len != 0 ||
        gh_sock_pending(&conn->sock) != 0 || atomic_load(&w->server->stopping) ||
        gh_timer_arm(w->loop, &conn->idle_timer, POOL_IDLE_MS) != GH_OK) {
        conn_close(conn);
        return;
    }
    gh_sock_read_start(&conn->sock, on_idle_read);
    conn->next = p->idle; /* first: the warmest is taken next */
    conn->prev = NULL;
    if (p->idle != NULL)
        p->idle->prev = conn;
    p->idle = conn;
    conn->idle = 1;
    p->n_idle++;
}

static struct gw_upstream_conn *conn_new(struct gw_worker *w, struct gw_pool *p)
{
    struct gw_upstream_conn *conn = calloc(1, sizeof *conn);

    if (conn == NULL)
        return NULL;
    conn->pool = p;
    conn->worker = w;
    conn->idle_timer.cb = on_idle_timeout;
    conn->idle_timer.data = conn;
    return conn;
}

struct gw_upstream_conn *gw_conn_adopt(struct gw_worker *w, struct gw_pool *p, int fd)
{
    struct gw_upstream_conn *conn = conn_new(w, p);

    if (conn == NULL) {
        close(fd);
        return NULL;
    }
    if (gh_sock_init(&conn->sock, w->loop, fd, GW_UPSTREAM_IN_MAX) != GH_OK) {
        free(conn);
        return NULL;
    }
    conn->sock.data = conn;
    w->upstream_sockets++;
    return conn;
}

/* ---- new connections ---- */

static void finish(struct gw_connect *c, struct gw_upstream_conn *conn, const char *err)
{
    c->conn = NULL;
    c->cb(c, conn, err);
}

static void give_up(struct gw_connect *c, const char *err)
{
    struct gw_upstream_conn *conn = c->conn;

    c->conn = NULL;
    if (conn != NULL)
        conn_close(conn);
    finish(c, NULL, err);
}

/* OpenSSL's verification result is what an operator needs ("unable to get local issuer
 * certificate"): the sock's own prefix is left out. */
static void keep_tls_error(struct gw_connect *c, const struct gh_sock *s)
{
    const char *e = gh_sock_error(s), *prefix = "certificate verify failed: ";

    if (strncmp(e, prefix, strlen(prefix)) == 0)
        e += strlen(prefix);
    snprintf(c->error, sizeof c->error, "%s", e[0] != '\0' ? e : "ssl handshake failure");
}

static void on_handshake(struct gh_sock *s, int status)
{
    struct gw_upstream_conn *conn = (struct gw_upstream_conn *)s;
    struct gw_connect *c = s->data;

    s->data = conn;
    if (status == GH_SOCK_OK) {
        finish(c, conn, NULL);
        return;
    }
    c->tls_failed = 1;
    c->verify_failed = s->tls_verify_failed;
    if (!c->verify_failed)
        snprintf(c->error, sizeof c->error, "ssl handshake failure");
    else
        keep_tls_error(c, s);
    give_up(c, c->error);
}

static int connect_next(struct gw_connect *c);

static void on_connect(struct gh_sock *s, int status)
{
    struct gw_connect *c = s->data;
    struct gw_upstream_conn *conn = c->conn;

    if (status != GH_SOCK_OK) {
        c->conn = NULL;
        conn_close(conn);
        /* a name with several addresses (localhost: ::1 and 127.0.0.1): the next one may listen */
        if (!connect_next(c))
            finish(c, NULL, "connection failed");
        return;
    }
    if (!c->pool->https) {
        s->data = conn;
        finish(c, conn, NULL);
        return;
    }
    if (gh_sock_tls_connect(s, c->pool->tls != NULL ? c->pool->tls : c->worker->server->client_tls,
                            c->pool->host, on_handshake) != GH_OK) {
        c->tls_failed = 1;
        snprintf(c->error, sizeof c->error, "ssl handshake failure");
        give_up(c, c->error);
    }
}

/* Connects to the next address of the name; 0 when there is none left. */
static int connect_next(struct gw_connect *c)
{
    while (c->next_addr < c->n_addrs) {
        size_t i = c->next_addr++;
        struct gw_upstream_conn *conn = conn_new(c->worker, c->pool);
        if (conn == NULL)
            return 0;
        if (gh_sock_connect(&conn->sock, c->worker->loop, (struct sockaddr *)&c->addrs[i],
                            c->addr_lens[i], GW_UPSTREAM_IN_MAX, on_connect) != GH_OK) {
            free(conn); /* the sock is closed already */
            continue;
        }
        /* the kernel's receive buffer is how far an upstream can get ahead of a slow client
         * beside our own bounded buffers: 256 KiB still covers 10 Gbit/s at 0.2 ms */
        int rcvbuf = 256 << 10;
        setsockopt(conn->sock.io.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        conn->sock.data = c;
        c->worker->upstream_sockets++;
        c->conn = conn;
        return 1;
    }
    return 0;
}

/* The name's addresses in the resolver's order (RFC 6724's preference), tried one after the other
 * as long as connecting fails. */
static void on_resolved(void *data, const struct addrinfo *res, const char *error)
{
    struct gw_connect *c = data;

    c->resolve = NULL;
    if (res == NULL || error != NULL) {
        finish(c, NULL, "name resolution failed");
        return;
    }
    for (const struct addrinfo *a = res; a != NULL && c->n_addrs < GW_CONNECT_ADDRS;
         a = a->ai_next) {
        if (a->ai_addrlen > sizeof c->addrs[0] || a->ai_socktype != SOCK_STREAM)
            continue;
        memcpy(&c->addrs[c->n_addrs], a->ai_addr, a->ai_addrlen);
        c->addr_lens[c->n_addrs++] = (socklen_t)a->ai_addrlen;
    }
    if (!connect_next(c))
        finish(c, NULL, c->n_addrs == 0 ? "name resolution failed" : "connection failed");
}

/* A literal address needs no lookup. */
static int numeric_host(struct gw_connect *c)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&c->addrs[0];
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->addrs[0];

    if (inet_pton(AF_INET, c->pool->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(c->pool->port);
        c->addr_lens[0] = sizeof *sin;
    } else if (inet_pton(AF_INET6, c->pool->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(c->pool->port);
        c->addr_lens[0] = sizeof *sin6;
    } else {
        return 0;
    }
    c->n_addrs = 1;
    return 1;
}

void gw_connect_start(struct gw_connect *c, struct gw_worker *w, struct gw_pool *p,
                      gw_connect_cb cb, void *data)
{
    memset(c, 0, sizeof *c);
    c->worker = w;
    c->pool = p;
    c->cb = cb;
    c->data = data;
    if (numeric_host(c)) {
        if (!connect_next(c))
            finish(c, NULL, "connection failed");
        return;
    }
    if (gh_resolve_start(w->loop, p->host, p->port_text, on_resolved, c, &c->resolve) != GH_OK) {
        c->resolve = NULL;
        finish(c, NULL, "name resolution failed");
    }
}

void gw_connect_cancel(struct gw_connect *c)
{
    if (c->resolve != NULL) {
        gh_resolve_cancel(c->resolve);
        c->resolve = NULL;
    }
    if (c->conn != NULL) {
        conn_close(c->conn); /* its connect or handshake callback is not called */
        c->conn = NULL;
    }
}

/* ---- the worker's pools ---- */

void gw_upstream_close_idle(struct gw_worker *w)
{
    for (size_t i = 0; i < w->n_pools; i++)
        while (w->pools[i]->idle != NULL)
            conn_close(w->pools[i]->idle);
}

void gw_upstream_dispose(struct gw_worker *w)
{
    gw_upstream_close_idle(w);
    for (size_t i = 0; i < w->n_pools; i++)
        pool_free(w->pools[i]);
    free(w->pools);
    w->pools = NULL;
    w->n_pools = 0;
}
