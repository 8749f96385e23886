// SPDX-License-Identifier: Apache-2.0
/*
 * Connections to upstreams: made (name lookup, TCP, TLS with the certificate checked) and kept
 * alive per worker thread in one pool per scheme://host:port and trusted CA bundle. An idle
 * connection stays registered with the loop and is watched for reading: the upstream closing it
 * (or sending anything unasked) drops it from the pool at once, and taking it costs one system
 * call, a peek for bytes the loop has not read yet (see conn_quiet). h2o 2.2's own pool detaches
 * idle sockets from the loop instead, and re-attaching, re-flagging and probing them cost five
 * system calls per proxied request, a sixth of its CPU.
 * Pools are per thread, not shared: a socket belongs to one loop and its buffers to that
 * thread's free lists.
 */
#include "gateway/server_internal.h"

#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#define POOL_IDLE_MS 2000 /* keep-alive connections unused this long are closed */
#define MAX_IDLE     256  /* idle connections kept per pool and worker */

struct gw_pool {
    const h2o_url_scheme_t *scheme;
    char *host; /* for the name lookup, SNI and the certificate check; no IPv6 brackets */
    uint16_t port;
    char port_text[6];
    /* A collection's own upstream_ca (a copy) and the TLS context trusting it; NULL: the
     * server's. A connection verified against one set of CAs never serves a collection that
     * trusts other ones, so the CA is part of the pool's key. */
    char *ca;
    SSL_CTX *tls;
    h2o_linklist_t idle; /* gw_upstream_conn.link, most recently used first */
    size_t n_idle;
};

static h2o_iovec_t bare_host(const h2o_url_t *up)
{
    h2o_iovec_t host = up->host;

    if (host.len >= 2 && host.base[0] == '[' && host.base[host.len - 1] == ']')
        host = h2o_iovec_init(host.base + 1, host.len - 2);
    return host;
}

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

static struct gw_pool *pool_new(const struct gw_worker *w, const h2o_url_t *up, const char *ca)
{
    struct gw_pool *p = calloc(1, sizeof *p);
    h2o_iovec_t host = bare_host(up);

    if (p == NULL || (p->host = strndup(host.base, host.len)) == NULL) {
        free(p);
        return NULL;
    }
    if (ca != NULL &&
        ((p->ca = strdup(ca)) == NULL || (p->tls = tls_for_ca(w->server, ca)) == NULL)) {
        pool_free(p);
        return NULL;
    }
    p->scheme = up->scheme;
    p->port = h2o_url_get_port(up);
    snprintf(p->port_text, sizeof p->port_text, "%u", (unsigned)p->port);
    h2o_linklist_init_anchor(&p->idle);
    return p;
}

/* Pools are never dropped while the worker runs: upstreams come from configuration only, so
 * there are as many as distinct upstream addresses (with their upstream_ca) ever configured, and
 * an unused one holds no connection after POOL_IDLE_MS. */
struct gw_pool *gw_pool_for(struct gw_worker *w, const h2o_url_t *up, const char *ca)
{
    h2o_iovec_t host = bare_host(up);
    uint16_t port = h2o_url_get_port(up);
    struct gw_pool *p, **grown;

    if (up->scheme != &H2O_URL_SCHEME_HTTPS)
        ca = NULL;
    for (size_t i = 0; i < w->n_pools; i++) {
        p = w->pools[i];
        if (p->scheme == up->scheme && p->port == port &&
            h2o_lcstris(p->host, strlen(p->host), host.base, host.len) &&
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

/* ---- idle connections ---- */

static void conn_close(struct gw_upstream_conn *conn)
{
    if (h2o_timeout_is_linked(&conn->idle_timer))
        h2o_timeout_unlink(&conn->idle_timer);
    if (h2o_linklist_is_linked(&conn->link)) {
        h2o_linklist_unlink(&conn->link);
        conn->pool->n_idle--;
    }
    h2o_socket_close(conn->sock);
    free(conn);
}

/* Anything from an idle connection, data or its end, means it cannot carry a request. Data is
 * what the upstream sent after a complete answer (a body after HEAD, a second answer): read as
 * the next request's answer, it would reach another client, so it is counted. */
static void on_idle_read(h2o_socket_t *sock, const char *err)
{
    struct gw_upstream_conn *conn = sock->data;

    (void)err;
    if (sock->input->size != 0)
        gw_count(&conn->worker->server->metrics.upstream_extra_bytes);
    conn_close(conn);
}

static void on_idle_timeout(h2o_timeout_entry_t *entry)
{
    conn_close(H2O_STRUCT_FROM_MEMBER(struct gw_upstream_conn, idle_timer, entry));
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
    ssize_t n = recv(h2o_socket_get_fd(conn->sock), &byte, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n > 0)
        gw_count(&conn->worker->server->metrics.upstream_extra_bytes);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

struct gw_upstream_conn *gw_pool_take(struct gw_pool *p)
{
    struct gw_upstream_conn *conn;

    while (!h2o_linklist_is_empty(&p->idle)) {
        conn = H2O_STRUCT_FROM_MEMBER(struct gw_upstream_conn, link, p->idle.next);
        if (!conn_quiet(conn)) {
            conn_close(conn); /* the next one, or a new connection */
            continue;
        }
        h2o_linklist_unlink(&conn->link);
        p->n_idle--;
        h2o_timeout_unlink(&conn->idle_timer);
        h2o_socket_read_stop(conn->sock); /* the taker reads with its own callback */
        conn->sock->data = NULL;
        return conn;
    }
    return NULL;
}

void gw_conn_release(struct gw_upstream_conn *conn, int reusable)
{
    struct gw_pool *p = conn->pool;
    struct gw_worker *w = conn->worker;

    if (!reusable || p->n_idle >= MAX_IDLE || conn->sock->input->size != 0 ||
        atomic_load(&w->server->stopping)) {
        conn_close(conn);
        return;
    }
    conn->sock->data = conn;
    h2o_socket_read_start(conn->sock, on_idle_read);
    h2o_timeout_link(w->loop, &w->pool_idle, &conn->idle_timer);
    h2o_linklist_insert(p->idle.next, &conn->link); /* first: the warmest is taken next */
    p->n_idle++;
}

/* ---- new connections ---- */

static void connected(struct gw_connect *c, h2o_socket_t *sock, const char *err)
{
    struct gw_upstream_conn *conn = NULL;

    c->sock = NULL;
    if (err == NULL && (conn = calloc(1, sizeof *conn)) == NULL)
        err = h2o_socket_error_out_of_memory;
    if (err != NULL) {
        if (sock != NULL)
            h2o_socket_close(sock);
        c->cb(c, NULL, err);
        return;
    }
    conn->sock = sock;
    conn->pool = c->pool;
    conn->worker = c->worker;
    conn->idle_timer.cb = on_idle_timeout;
    sock->data = NULL;
    c->cb(c, conn, NULL);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    struct gw_connect *c = sock->data;

    c->tls_failed = err != NULL;
    connected(c, sock, err);
}

static int connect_next(struct gw_connect *c);

static void on_connect(h2o_socket_t *sock, const char *err)
{
    struct gw_connect *c = sock->data;

    if (err != NULL && c->next_addr < c->n_addrs) {
        /* a name with several addresses (localhost: ::1 and 127.0.0.1): the next one may listen */
        c->sock = NULL;
        h2o_socket_close(sock);
        connect_next(c);
        return;
    }
    if (err != NULL || c->pool->scheme != &H2O_URL_SCHEME_HTTPS) {
        connected(c, sock, err != NULL ? "connection failed" : NULL);
        return;
    }
    /* h2o checks the certificate against the context's trust and the name against the host */
    h2o_socket_ssl_handshake(sock,
                             c->pool->tls != NULL ? c->pool->tls : c->worker->server->client_tls,
                             c->pool->host, on_handshake);
}

/* Counts the worker's open upstream sockets until h2o has really closed them (a TLS close
 * takes a turn of the loop), so a stopping worker can wait for them. */
static void on_socket_closed(void *data)
{
    struct gw_worker *w = data;
    w->upstream_sockets--;
}

static void connect_to(struct gw_connect *c, struct sockaddr *addr, socklen_t len)
{
    h2o_socket_t *sock = h2o_socket_connect(c->worker->loop, addr, len, on_connect);

    if (sock == NULL) { /* refused at once, or no socket of that family */
        if (!connect_next(c))
            c->cb(c, NULL, "connection failed");
        return;
    }
    /* h2o reads a socket until the kernel has nothing left, so the kernel's receive buffer (auto
     * tuned up to tcp_rmem's maximum, 32 MiB here) is how far an upstream can get ahead of a slow
     * client in one read: capped, BODY_AHEAD in proxy.c bounds the memory. 256 KiB still covers
     * a 10 Gbit/s link at 0.2 ms round trip. */
    int rcvbuf = 256 << 10;
    setsockopt(h2o_socket_get_fd(sock), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sock->data = c;
    sock->on_close.cb = on_socket_closed;
    sock->on_close.data = c->worker;
    c->worker->upstream_sockets++;
    c->sock = sock;
}

/* Connects to the next address of the name; 0 when there is none left. */
static int connect_next(struct gw_connect *c)
{
    if (c->next_addr == c->n_addrs)
        return 0;
    size_t i = c->next_addr++;
    connect_to(c, (struct sockaddr *)&c->addrs[i], c->addr_lens[i]);
    return 1;
}

/* The name's addresses in the resolver's order (RFC 6724's preference), tried one after the other
 * as long as connecting fails; h2o picks one at random and gives up with it. */
static void on_getaddr(h2o_hostinfo_getaddr_req_t *req, const char *err, struct addrinfo *res,
                       void *data)
{
    struct gw_connect *c = data;

    (void)req;
    c->getaddr = NULL;
    if (err != NULL) {
        c->cb(c, NULL, "name resolution failed");
        return;
    }
    for (struct addrinfo *a = res; a != NULL && c->n_addrs < GW_CONNECT_ADDRS; a = a->ai_next) {
        if (a->ai_addrlen > sizeof c->addrs[0])
            continue;
        memcpy(&c->addrs[c->n_addrs], a->ai_addr, a->ai_addrlen);
        c->addr_lens[c->n_addrs++] = (socklen_t)a->ai_addrlen;
    }
    if (!connect_next(c))
        c->cb(c, NULL, "name resolution failed");
}

void gw_connect_start(struct gw_connect *c, struct gw_worker *w, struct gw_pool *p,
                      gw_connect_cb cb, void *data)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&c->addrs[0];

    memset(c, 0, sizeof *c);
    c->worker = w;
    c->pool = p;
    c->cb = cb;
    c->data = data;
    if (h2o_hostinfo_aton(h2o_iovec_init(p->host, strlen(p->host)), &sin->sin_addr) == 0) {
        sin->sin_family = AF_INET; /* an IPv4 address needs no lookup */
        sin->sin_port = htons(p->port);
        c->addr_lens[0] = sizeof *sin;
        c->n_addrs = 1;
        connect_next(c);
        return;
    }
    c->getaddr = h2o_hostinfo_getaddr(
        &w->ctx.receivers.hostinfo_getaddr, h2o_iovec_init(p->host, strlen(p->host)),
        h2o_iovec_init(p->port_text, strlen(p->port_text)), AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP,
        AI_ADDRCONFIG | AI_NUMERICSERV, on_getaddr, c);
}

void gw_connect_cancel(struct gw_connect *c)
{
    if (c->getaddr != NULL) {
        h2o_hostinfo_getaddr_cancel(c->getaddr);
        c->getaddr = NULL;
    }
    if (c->sock != NULL) {
        h2o_socket_close(c->sock); /* its connect or handshake callback is not called */
        c->sock = NULL;
    }
}

/* ---- the worker's pools ---- */

void gw_upstream_init(struct gw_worker *w)
{
    h2o_timeout_init(w->loop, &w->pool_idle, POOL_IDLE_MS);
}

void gw_upstream_close_idle(struct gw_worker *w)
{
    for (size_t i = 0; i < w->n_pools; i++)
        while (!h2o_linklist_is_empty(&w->pools[i]->idle))
            conn_close(
                H2O_STRUCT_FROM_MEMBER(struct gw_upstream_conn, link, w->pools[i]->idle.next));
}

void gw_upstream_dispose(struct gw_worker *w)
{
    gw_upstream_close_idle(w);
    for (size_t i = 0; i < w->n_pools; i++)
        pool_free(w->pools[i]);
    free(w->pools);
    w->pools = NULL;
    w->n_pools = 0;
    h2o_timeout_dispose(w->loop, &w->pool_idle);
}
