// SPDX-License-Identifier: Apache-2.0
/*
 * A connection's bytes on a gh_loop (sock.h), plain or TLS. The descriptor is registered once,
 * edge-triggered: reading goes until EAGAIN or until the input buffer holds in_max bytes (then
 * F_MORE remembers that the kernel may hold more, and consuming kicks reading again); writing goes
 * to the kernel at once and only the rest is copied. Both buffers are freed whenever they empty,
 * so an idle connection holds none. Every callback is owed through one gh_defer and delivered one
 * per run (re-scheduling for the next), so an owner that closes or frees the sock inside a
 * callback is never touched again. The server TLS context and its ALPN choice live in tls.c.
 */
#include "http/sock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "http/tls.h"

#define F_OPEN        0x0001u
#define F_CONNECTING  0x0002u
#define F_HANDSHAKE   0x0004u
#define F_EOF         0x0008u
#define F_ERR         0x0010u
#define F_MORE        0x0020u /* input may wait in the kernel (or in OpenSSL) unread */
#define F_FORCE       0x0040u /* read_start: report what is buffered even without new bytes */
#define F_SHUT_WANT   0x0080u
#define F_SHUT_DONE   0x0100u
#define F_OWE_READ    0x0200u
#define F_OWE_WRITTEN 0x0400u
#define F_OWE_READY   0x0800u
#define F_ERR_OWNED   0x1000u /* s->error is the sock's malloc'd text */
#define F_HUP         0x2000u /* the peer's end was seen: read on to the end, never stop short */
#define F_OWE_ANY     (F_OWE_READ | F_OWE_WRITTEN | F_OWE_READY)

#define SOCK_IN_FIRST 4096u
#define SOCK_TLS_JOIN 16384u /* small writes of several pieces go out as one TLS record */
#define SOCK_IOV_MAX  1024   /* Linux UIO_MAXIOV: sendmsg refuses more; the rest is buffered */

/* recv/send results below 1 */
#define SOCK_EOF    0
#define SOCK_AGAIN  (-1)
#define SOCK_FAILED (-2) /* the sock failed; its error is set */

static const struct {
    int err;
    const char *text;
} sock_errno_texts[] = {
    {ECONNREFUSED, "connection refused"},
    {ECONNRESET, "connection reset"},
    {EPIPE, "connection closed by the peer"},
    {ETIMEDOUT, "connection timed out"},
    {EHOSTUNREACH, "host unreachable"},
    {ENETUNREACH, "network unreachable"},
    {ECONNABORTED, "connection aborted"},
    {EADDRNOTAVAIL, "address not available"},
    {ENOMEM, "out of memory"},
    {ENOBUFS, "out of memory"},
};

/* Our own words (static), not strerror's buffer. */
static const char *sock_errno_text(int err)
{
    for (size_t i = 0; i < sizeof sock_errno_texts / sizeof sock_errno_texts[0]; i++) {
        if (sock_errno_texts[i].err == err)
            return sock_errno_texts[i].text;
    }
    return "input or output failed";
}

static void sock_owe(struct gh_sock *s, unsigned what)
{
    s->flags |= what;
    gh_defer_schedule(s->loop, &s->later);
}

/* Fails the connection once: every callback waiting for something hears GH_SOCK_ERROR.
 * `owned` is malloc'd text the sock keeps (or NULL: `text` is static). */
static void sock_fail(struct gh_sock *s, const char *text, char *owned)
{
    unsigned owe = 0;

    if (s->flags & F_ERR) {
        free(owned);
        return;
    }
    s->flags |= F_ERR | (owned != NULL ? F_ERR_OWNED : 0);
    s->error = owned != NULL ? owned : text;
    if (s->on_ready != NULL)
        owe |= F_OWE_READY;
    if (s->on_written != NULL)
        owe |= F_OWE_WRITTEN;
    if (s->on_read != NULL)
        owe |= F_OWE_READ;
    if (owe != 0)
        sock_owe(s, owe);
}

static void sock_fail_errno(struct gh_sock *s, int err)
{
    sock_fail(s, sock_errno_text(err), NULL);
}

/* A TLS failure; a system call's failure without OpenSSL's words is told by errno. */
static void sock_fail_tls(struct gh_sock *s, int ssl_error)
{
    if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
        int err = errno;
        sock_fail(s, err != 0 ? sock_errno_text(err) : "connection closed by the peer", NULL);
        return;
    }
    sock_fail(s, "TLS failed", gh_tls_error_text(s->ssl, &s->tls_verify_failed));
}

/* ---- bytes in and out ---- */

/* A system call's result as bytes, SOCK_AGAIN or SOCK_FAILED. */
static ssize_t sock_sys(struct gh_sock *s, ssize_t n)
{
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return SOCK_AGAIN;
    sock_fail_errno(s, errno);
    return SOCK_FAILED;
}

/* An SSL_read's or SSL_write's result the same way (SOCK_EOF for close_notify). */
static ssize_t sock_ssl(struct gh_sock *s, int n)
{
    int err;

    if (n > 0)
        return n;
    err = SSL_get_error(s->ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return SOCK_AGAIN;
    if (err == SSL_ERROR_ZERO_RETURN)
        return SOCK_EOF;
    sock_fail_tls(s, err);
    return SOCK_FAILED;
}

static ssize_t sock_recv(struct gh_sock *s, char *buf, size_t len)
{
    ssize_t n;

    if (s->ssl == NULL) {
        while ((n = recv(s->io.fd, buf, len, 0)) < 0 && errno == EINTR)
            ;
        return sock_sys(s, n);
    }
    ERR_clear_error();
    return sock_ssl(s, SSL_read(s->ssl, buf, len > INT_MAX ? INT_MAX : (int)len));
}

static ssize_t sock_send(struct gh_sock *s, const char *buf, size_t len)
{
    ssize_t n;

    if (s->ssl == NULL) {
        while ((n = send(s->io.fd, buf, len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
            ;
        return sock_sys(s, n);
    }
    ERR_clear_error();
    /* after WANT_WRITE OpenSSL needs the same bytes again: the output buffer starts with them */
    n = sock_ssl(s, SSL_write(s->ssl, buf, len > (1u << 30) ? (1 << 30) : (int)len));
    if (n == SOCK_EOF)
        sock_fail(s, "connection closed by the peer", NULL);
    return n == SOCK_EOF ? SOCK_FAILED : n;
}

/* Sends what the kernel takes now of `iov`; *done is the number of bytes taken. 0 or
 * SOCK_FAILED. */
static int sock_send_now(struct gh_sock *s, const struct iovec *iov, int n, size_t total,
                         size_t *done)
{
    ssize_t r;

    *done = 0;
    if (s->ssl == NULL) {
        struct msghdr msg = {.msg_iov = (struct iovec *)iov,
                             .msg_iovlen = n > SOCK_IOV_MAX ? SOCK_IOV_MAX : n};
        while ((r = sendmsg(s->io.fd, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
            ;
        if ((r = sock_sys(s, r)) == SOCK_FAILED)
            return SOCK_FAILED;
        *done = r > 0 ? (size_t)r : 0;
        return 0;
    }
    if (n > 1 && total <= SOCK_TLS_JOIN) {
        char joined[SOCK_TLS_JOIN];
        for (int i = 0; i < n; i++) {
            memcpy(joined + *done, iov[i].iov_base, iov[i].iov_len);
            *done += iov[i].iov_len;
        }
        r = sock_send(s, joined, total);
        *done = r > 0 ? (size_t)r : 0;
        return r == SOCK_FAILED ? SOCK_FAILED : 0;
    }
    for (int i = 0; i < n; i++) {
        size_t off = 0;
        while (off < iov[i].iov_len) {
            r = sock_send(s, (const char *)iov[i].iov_base + off, iov[i].iov_len - off);
            if (r <= 0)
                return r == SOCK_FAILED ? SOCK_FAILED : 0;
            off += (size_t)r;
            *done += (size_t)r;
        }
    }
    return 0;
}

/* Copies the bytes of `iov` from offset `skip` on into the output buffer. */
static int sock_buffer(struct gh_sock *s, const struct iovec *iov, int n, size_t total, size_t skip)
{
    size_t need = total - skip;

    if (need == 0)
        return GH_OK;
    if (s->out_start > 0 && s->out_start + s->out_len + need > s->out_cap) {
        memmove(s->out, s->out + s->out_start, s->out_len);
        s->out_start = 0;
    }
    if (s->out_len + need > s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap : 4096;
        while (cap < s->out_len + need)
            cap *= 2;
        char *out = realloc(s->out, cap);
        if (out == NULL)
            return GH_ERR_NOMEM;
        s->out = out;
        s->out_cap = cap;
    }
    for (int i = 0; i < n; i++) {
        size_t len = iov[i].iov_len;
        const char *base = iov[i].iov_base;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(s->out + s->out_start + s->out_len, base + skip, len - skip);
        s->out_len += len - skip;
        skip = 0;
    }
    return GH_OK;
}

static void sock_do_shutdown(struct gh_sock *s)
{
    if (s->ssl != NULL) {
        ERR_clear_error();
        int r = SSL_shutdown(s->ssl); /* 0: our close_notify went out */
        if (r < 0) {
            int err = SSL_get_error(s->ssl, r);
            ERR_clear_error();
            if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
                return; /* the next writable edge retries */
        }
    }
    shutdown(s->io.fd, SHUT_WR);
    s->flags |= F_SHUT_DONE;
}

static void sock_flush(struct gh_sock *s)
{
    while (s->out_len > 0) {
        ssize_t r = sock_send(s, s->out + s->out_start, s->out_len);
        if (r == SOCK_FAILED)
            return;
        if (r <= 0)
            return; /* the next writable edge goes on */
        s->out_start += (size_t)r;
        s->out_len -= (size_t)r;
    }
    free(s->out); /* idle connections hold no buffer */
    s->out = NULL;
    s->out_start = s->out_cap = 0;
    if (s->on_written != NULL)
        sock_owe(s, F_OWE_WRITTEN);
    if ((s->flags & (F_SHUT_WANT | F_SHUT_DONE)) == F_SHUT_WANT)
        sock_do_shutdown(s);
}

static int sock_in_grow(struct gh_sock *s)
{
    size_t cap = s->in_cap ? s->in_cap * 2 : SOCK_IN_FIRST;
    char *in;

    if (cap > s->in_max)
        cap = s->in_max;
    if ((in = realloc(s->in, cap)) == NULL)
        return GH_ERR_NOMEM;
    s->in = in;
    s->in_cap = cap;
    return GH_OK;
}

static void sock_read(struct gh_sock *s)
{
    int forced = (s->flags & F_FORCE) != 0, got = 0;

    s->flags &= ~F_FORCE;
    if (s->on_read == NULL) {
        s->flags |= F_MORE; /* read_start will look */
        return;
    }
    if (s->flags & F_EOF) {
        if (forced)
            sock_owe(s, F_OWE_READ);
        return;
    }
    s->flags &= ~F_MORE;
    for (;;) {
        ssize_t r;
        if (s->in_len >= s->in_max) {
            s->flags |= F_MORE; /* consume kicks reading again */
            break;
        }
        if (s->in_len == s->in_cap && sock_in_grow(s) != GH_OK) {
            sock_fail(s, "out of memory", NULL);
            return;
        }
        size_t room = s->in_cap - s->in_len;
        r = sock_recv(s, s->in + s->in_len, room);
        if (r == SOCK_FAILED)
            return;
        if (r == SOCK_AGAIN)
            break;
        if (r == SOCK_EOF) {
            s->flags |= F_EOF;
            got = 1;
            break;
        }
        s->in_len += (size_t)r;
        got = 1;
        /* A short read of a TCP socket emptied its queue: bytes that come later bring a new edge,
         * so asking again would only return EAGAIN (one system call per event, a fifth of a
         * proxied request's). Not after the peer's end was seen (its edge has come already) nor
         * over TLS (OpenSSL may hold a record's rest). */
        if (s->ssl == NULL && (size_t)r < room && !(s->flags & F_HUP))
            break;
    }
    if (got || (forced && s->in_len > 0))
        sock_owe(s, F_OWE_READ);
}

/* ---- the loop's side ---- */

static void sock_connected(struct gh_sock *s)
{
    int err = 0;
    socklen_t len = sizeof err;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;

    if (getsockopt(s->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0 && getpeername(s->io.fd, (struct sockaddr *)&ss, &sslen) != 0) {
        if (errno == ENOTCONN)
            return; /* not finished yet: a later edge tells */
        err = errno;
    }
    if (err != 0) {
        sock_fail_errno(s, err);
        return;
    }
    s->flags &= ~F_CONNECTING;
    sock_owe(s, F_OWE_READY);
}

static void sock_handshake(struct gh_sock *s)
{
    int r, err;

    ERR_clear_error();
    if ((r = SSL_do_handshake(s->ssl)) == 1) {
        s->flags &= ~F_HANDSHAKE;
        sock_owe(s, F_OWE_READY);
        return;
    }
    err = SSL_get_error(s->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return;
    sock_fail_tls(s, err);
}

/* No callback from here (they are owed): the owner cannot free the sock under our feet. */
static void sock_on_io(struct gh_io *io, unsigned events)
{
    struct gh_sock *s = io->data;

    if (events & GH_IO_HUP)
        s->flags |= F_HUP;
    if (s->flags & F_ERR) {
        if ((s->flags & F_FORCE) && s->on_read != NULL)
            sock_owe(s, F_OWE_READ);
        s->flags &= ~F_FORCE;
        return;
    }
    if (s->flags & F_CONNECTING) {
        if (!(events & GH_IO_WRITE))
            return;
        sock_connected(s);
        if (s->flags & (F_CONNECTING | F_ERR))
            return;
        events |= GH_IO_READ; /* bytes may have come with the same edge */
    }
    if (s->flags & F_HANDSHAKE) {
        sock_handshake(s);
        if (s->flags & (F_HANDSHAKE | F_ERR))
            return;
    }
    /* TLS reads may need writes and the other way round: try both on any edge */
    if (s->ssl != NULL)
        events = GH_IO_READ | GH_IO_WRITE;
    if ((events & GH_IO_WRITE) &&
        (s->out_len > 0 || (s->flags & (F_SHUT_WANT | F_SHUT_DONE)) == F_SHUT_WANT))
        sock_flush(s);
    if ((events & GH_IO_READ) && !(s->flags & F_ERR))
        sock_read(s);
}

static void sock_later(struct gh_defer *d)
{
    struct gh_sock *s = d->data;
    int failed = (s->flags & F_ERR) != 0, status = failed ? GH_SOCK_ERROR : GH_SOCK_OK;
    gh_sock_cb cb = NULL;

    if (s->flags & F_OWE_READY) {
        s->flags &= ~F_OWE_READY;
        cb = s->on_ready;
        s->on_ready = NULL;
    } else if (s->flags & F_OWE_WRITTEN) {
        s->flags &= ~F_OWE_WRITTEN;
        cb = s->on_written;
        s->on_written = NULL;
    } else if (s->flags & F_OWE_READ) {
        s->flags &= ~F_OWE_READ;
        cb = s->on_read;
        if (!failed && (s->flags & F_EOF))
            status = GH_SOCK_EOF;
    }
    if (s->flags & F_OWE_ANY)
        gh_defer_schedule(s->loop, &s->later); /* one per run: cb may free s */
    if (cb != NULL)
        cb(s, status);
}

/* ---- the owner's side ---- */

/* A closed sock keeping only the owner's data and `error`. */
static void sock_reset(struct gh_sock *s, const char *error)
{
    void *data = s->data;

    memset(s, 0, sizeof *s);
    s->data = data;
    s->io.fd = -1;
    s->error = error;
}

static int sock_setup(struct gh_sock *s, struct gh_loop *loop, int fd, size_t in_max)
{
    int one = 1;

    sock_reset(s, NULL);
    s->loop = loop;
    s->in_max = in_max > 0 ? in_max : 1;
    s->later.cb = sock_later;
    s->later.data = s;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly off TCP */
    if (gh_io_start(loop, &s->io, fd, sock_on_io, s) != GH_OK)
        return GH_ERR_IO;
    s->flags = F_OPEN | F_MORE; /* bytes may have come before the first read */
    return GH_OK;
}

int gh_sock_init(struct gh_sock *s, struct gh_loop *loop, int fd, size_t in_max)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) ||
        sock_setup(s, loop, fd, in_max) != GH_OK) {
        close(fd);
        sock_reset(s, "cannot watch the connection");
        return GH_ERR_IO;
    }
    return GH_OK;
}

void gh_sock_read_start(struct gh_sock *s, gh_sock_cb cb)
{
    s->on_read = cb;
    /* A plain socket whose last read came short (or to EAGAIN) with no edge since holds nothing
     * in the kernel: new bytes bring an edge, so asking now would only return EAGAIN (a system
     * call per pooled upstream connection and per keep-alive request). */
    if (s->ssl == NULL && !(s->flags & (F_MORE | F_EOF | F_ERR | F_HUP | F_CONNECTING))) {
        if (s->in_len > 0)
            sock_owe(s, F_OWE_READ);
        return;
    }
    s->flags |= F_FORCE;
    gh_io_kick(&s->io, GH_IO_READ);
}

void gh_sock_read_stop(struct gh_sock *s)
{
    s->on_read = NULL;
    s->flags &= ~(F_OWE_READ | F_FORCE);
}

void gh_sock_consume(struct gh_sock *s, size_t n)
{
    if (n > s->in_len)
        n = s->in_len;
    if (n == 0)
        return;
    s->in_len -= n;
    if (s->in_len > 0) {
        memmove(s->in, s->in + n, s->in_len);
    } else {
        free(s->in); /* idle connections hold no buffer */
        s->in = NULL;
        s->in_cap = 0;
    }
    if ((s->flags & F_MORE) && s->on_read != NULL)
        gh_io_kick(&s->io, GH_IO_READ);
}

int gh_sock_write(struct gh_sock *s, const struct iovec *iov, int n, gh_sock_cb cb)
{
    size_t total = 0, done = 0;

    if (!(s->flags & F_OPEN) || (s->flags & (F_ERR | F_SHUT_WANT)))
        return GH_ERR_IO;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    s->on_written = cb;
    if (s->out_len == 0 && !(s->flags & (F_CONNECTING | F_HANDSHAKE)) &&
        sock_send_now(s, iov, n, total, &done) == SOCK_FAILED)
        return GH_OK; /* failed now: cb hears it from the loop */
    if (sock_buffer(s, iov, n, total, done) != GH_OK) {
        sock_fail(s, "out of memory", NULL); /* part of it went out: the stream is broken */
        return GH_ERR_NOMEM;
    }
    if (s->out_len > 0)
        s->flags &= ~F_OWE_WRITTEN; /* an earlier completion is not this one's */
    else if (cb != NULL)
        sock_owe(s, F_OWE_WRITTEN);
    return GH_OK;
}

size_t gh_sock_pending(const struct gh_sock *s)
{
    return s->out_len;
}

void gh_sock_shutdown_write(struct gh_sock *s)
{
    if (!(s->flags & F_OPEN) || (s->flags & (F_SHUT_WANT | F_ERR)))
        return;
    s->flags |= F_SHUT_WANT;
    if (s->out_len == 0 && !(s->flags & (F_CONNECTING | F_HANDSHAKE)))
        sock_do_shutdown(s);
}

void gh_sock_close(struct gh_sock *s)
{
    if (s == NULL || !(s->flags & F_OPEN))
        return;
    gh_io_stop(&s->io);
    gh_defer_cancel(s->loop, &s->later);
    if (s->ssl != NULL) {
        /* one attempt at close_notify, never waiting: the descriptor is non-blocking */
        if (SSL_is_init_finished(s->ssl) && !(s->flags & (F_ERR | F_SHUT_DONE)))
            SSL_shutdown(s->ssl);
        ERR_clear_error();
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    close(s->io.fd);
    s->io.fd = -1;
    free(s->in);
    free(s->out);
    s->in = s->out = NULL;
    s->in_len = s->in_cap = s->out_start = s->out_len = s->out_cap = 0;
    if (s->flags & F_ERR_OWNED) {
        free((char *)s->error);
        s->error = NULL;
    }
    s->on_read = s->on_written = s->on_ready = NULL;
    s->flags = 0;
}

const char *gh_sock_error(const struct gh_sock *s)
{
    return s->error != NULL ? s->error : "";
}

socklen_t gh_sock_peer(const struct gh_sock *s, struct sockaddr_storage *ss)
{
    socklen_t len = sizeof *ss;

    memset(ss, 0, sizeof *ss);
    if (!(s->flags & F_OPEN) || getpeername(s->io.fd, (struct sockaddr *)ss, &len) != 0) {
        memset(ss, 0, sizeof *ss);
        return 0;
    }
    return len;
}

/* ---- TLS ---- */

static int sock_tls_start(struct gh_sock *s, SSL_CTX *ctx, const char *host, gh_sock_cb cb)
{
    SSL *ssl;

    if (!(s->flags & F_OPEN) || s->ssl != NULL || (s->flags & F_ERR))
        return GH_ERR_IO;
    if ((ssl = gh_tls_ssl_new(ctx, s->io.fd, host)) == NULL)
        return GH_ERR_NOMEM;
    s->ssl = ssl;
    s->on_ready = cb;
    s->flags |= F_HANDSHAKE;
    gh_io_kick(&s->io, GH_IO_READ | GH_IO_WRITE);
    return GH_OK;
}

int gh_sock_tls_accept(struct gh_sock *s, SSL_CTX *ctx, gh_sock_cb cb)
{
    return sock_tls_start(s, ctx, NULL, cb);
}

int gh_sock_tls_connect(struct gh_sock *s, SSL_CTX *ctx, const char *host, gh_sock_cb cb)
{
    if (host == NULL || *host == '\0')
        return GH_ERR_INVALID_ARG;
    return sock_tls_start(s, ctx, host, cb);
}

const char *gh_sock_alpn(const struct gh_sock *s)
{
    return s->ssl != NULL ? gh_tls_alpn(s->ssl) : "";
}

/* ---- connecting ---- */

int gh_sock_connect(struct gh_sock *s, struct gh_loop *loop, const struct sockaddr *addr,
                    socklen_t len, size_t in_max, gh_sock_cb cb)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const char *error = NULL;

    if (fd < 0)
        error = sock_errno_text(errno);
    else if (connect(fd, addr, len) == 0)
        ; /* at once (loopback may) */
    else if (errno != EINPROGRESS)
        error = sock_errno_text(errno);
    /* registered after connect: an unconnected TCP socket reports a hang-up edge */
    if (error == NULL && sock_setup(s, loop, fd, in_max) != GH_OK)
        error = "cannot watch the connection";
    if (error != NULL) {
        if (fd >= 0)
            close(fd);
        sock_reset(s, error);
        return GH_ERR_IO;
    }
    s->on_ready = cb;
    s->flags |= F_CONNECTING; /* the first writable edge (or SO_ERROR) says how it went */
    return GH_OK;
}
