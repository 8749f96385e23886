// SPDX-License-Identifier: Apache-2.0
/*
 * A connection's bytes, plain or TLS, on a gh_loop: what the HTTP/1.1 and HTTP/2 server
 * connections and the gateway's upstream client read from and write to. Reading is bounded (the
 * input buffer never grows past the owner's `in_max`; a full buffer stops reading until the owner
 * consumes), writing copies what the kernel does not take at once into an output buffer the owner
 * watches (gh_sock_pending) to apply back-pressure. Callbacks never run from inside the call that
 * caused them: they come from the loop.
 *
 * TLS goes through OpenSSL on the descriptor itself (tls.c's socket BIO, which sends with
 * MSG_NOSIGNAL; no memory BIO): server handshakes select ALPN from the context's list, client
 * handshakes send SNI and verify the chain and the host name.
 */
#ifndef GH_HTTP_SOCK_H
#define GH_HTTP_SOCK_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "http/loop.h"

/* What on_read, on_written and the handshake and connect callbacks are told. */
#define GH_SOCK_OK    0
#define GH_SOCK_EOF   1  /* the peer closed its side cleanly (input may still hold bytes) */
#define GH_SOCK_ERROR -1 /* reset, TLS failure, connect failure: gh_sock_error says which */

struct gh_sock;
typedef void (*gh_sock_cb)(struct gh_sock *s, int status);

struct gh_sock {
    struct gh_io io;
    struct gh_loop *loop;
    SSL *ssl;   /* NULL for plain text */
    void *data; /* the owner's (gh_sock_init and gh_sock_connect keep it) */

    /* bytes read and not consumed yet: in[0 .. in_len) */
    char *in;
    size_t in_len;
    size_t in_max; /* reading pauses while in_len == in_max */

    /* private */
    size_t in_cap;
    char *out;
    size_t out_start, out_len, out_cap;
    gh_sock_cb on_read;    /* set while reading */
    gh_sock_cb on_written; /* set while output waits for the kernel */
    gh_sock_cb on_ready;   /* connect or handshake in progress */
    struct gh_defer later; /* callbacks owed from the loop */
    unsigned flags;
    const char *error; /* static text, for the log and for answers; never peer data */
    int tls_verify_failed;
};

/* Takes `fd` (connected, any blocking mode: it is made non-blocking) onto `loop`, plain text,
 * with an input bound of `in_max` bytes. GH_OK, or GH_ERR_IO (the descriptor is closed then). */
int gh_sock_init(struct gh_sock *s, struct gh_loop *loop, int fd, size_t in_max);

/* Calls `cb` from the loop whenever new input arrived (status GH_SOCK_OK), the peer closed
 * (GH_SOCK_EOF) or the connection failed (GH_SOCK_ERROR), until gh_sock_read_stop. Input already
 * buffered is reported at once (from the loop). */
void gh_sock_read_start(struct gh_sock *s, gh_sock_cb cb);
void gh_sock_read_stop(struct gh_sock *s);

/* Drops the first `n` input bytes; frees room, so reading resumes when it had paused. */
void gh_sock_consume(struct gh_sock *s, size_t n);

/* Writes the bytes of `iov` (copied: the caller's memory is free on return). What the kernel
 * does not take now waits in the output buffer; `cb` (may be NULL) is called from the loop once
 * it is all written (GH_SOCK_OK) or writing failed (GH_SOCK_ERROR). A later write replaces an
 * earlier callback. GH_OK, GH_ERR_NOMEM, or GH_ERR_IO when the connection has failed already. */
int gh_sock_write(struct gh_sock *s, const struct iovec *iov, int n, gh_sock_cb cb);

/* Bytes waiting in the output buffer. */
size_t gh_sock_pending(const struct gh_sock *s);

/* Closes the sending side once the output buffer is written (TLS: close_notify first); reading
 * goes on. Harmless twice. */
void gh_sock_shutdown_write(struct gh_sock *s);

/* Stops watching, closes the descriptor, frees the buffers and the TLS state. Unsent output is
 * dropped. The struct itself is the caller's. NULL and twice are fine. */
void gh_sock_close(struct gh_sock *s);

/* The reason of the last GH_SOCK_ERROR ("connection reset", "certificate verify failed: ...",
 * "connection refused"...), static or owned by the sock; "" when none. */
const char *gh_sock_error(const struct gh_sock *s);

/* The peer's address; 0 when the descriptor has none (then *ss is zeroed). */
socklen_t gh_sock_peer(const struct gh_sock *s, struct sockaddr_storage *ss);

/* ---- TLS ---- */

/* Starts a server handshake on an accepted, plain sock with `ctx`; `cb` is called once from the
 * loop with GH_SOCK_OK (then gh_sock_alpn says what was agreed) or GH_SOCK_ERROR. */
int gh_sock_tls_accept(struct gh_sock *s, SSL_CTX *ctx, gh_sock_cb cb);

/* Starts a client handshake with `ctx`, SNI `host` (not for IP literals) and the certificate
 * checked against `host` (names and IP addresses); `cb` as above. A verification failure sets
 * s->tls_verify_failed and an error naming OpenSSL's verification result. */
int gh_sock_tls_connect(struct gh_sock *s, SSL_CTX *ctx, const char *host, gh_sock_cb cb);

/* The protocol agreed by ALPN ("h2", "http/1.1"), "" without ALPN or TLS. */
const char *gh_sock_alpn(const struct gh_sock *s);

/* ---- connecting ---- */

/* Connects a new non-blocking socket to `addr` on `loop`; `cb` from the loop with GH_SOCK_OK or
 * GH_SOCK_ERROR ("connection refused", ...). GH_OK while connecting, GH_ERR_IO when no socket
 * could be made or the connect failed at once (s is closed then, its error set). */
int gh_sock_connect(struct gh_sock *s, struct gh_loop *loop, const struct sockaddr *addr,
                    socklen_t len, size_t in_max, gh_sock_cb cb);

/* ---- server TLS contexts ---- */

/* A server TLS context: TLS 1.2 at least, no compression or renegotiation, the chain and key of
 * the PEM files `cert` and `key` (checked to match), and ALPN offering "h2" then "http/1.1" when
 * `http2` (else "http/1.1" only). GH_OK with *out the caller's (SSL_CTX_free), or GH_ERR_IO with a
 * message naming the file in `error`. */
int gh_tls_server_new(const char *cert, const char *key, int http2, SSL_CTX **out, char *error,
                      size_t cap);

#endif
