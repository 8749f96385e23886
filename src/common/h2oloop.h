// SPDX-License-Identifier: Apache-2.0
/*
 * What the two h2o servers, the admin API's thread and the gateway's workers, do alike with their
 * event loops: set up TLS, track accepted connections so that stopping can end them, turn the loop
 * without letting a signal end it, and take a loop and its thread's caches down without leaking
 * what h2o 2.2.5 leaves behind.
 */
#ifndef GH_COMMON_H2OLOOP_H
#define GH_COMMON_H2OLOOP_H

#define H2O_USE_LIBUV 0

#include <stdint.h>

#include <h2o.h>
#include <openssl/ssl.h>

/* Accepts what is waiting on `listener`, at most `batch` connections, and hands it to h2o; each
 * connection stays on `conns` until it closes. Use as the listener's read callback's body. */
void gh_loop_accept(h2o_socket_t *listener, h2o_accept_ctx_t *ctx, h2o_linklist_t *conns,
                    int batch);

/* shutdown(2) with `how` of every connection on `conns` that `spare` (NULL: none) does not spare.
 * h2o 2.2's HTTP/1 cannot end an idle keep-alive connection on request; shutting down its read
 * side does: it reads end-of-file and closes, and one with a request in progress answers it
 * first. */
void gh_loop_shutdown_conns(h2o_linklist_t *conns, int how, int (*spare)(h2o_socket_t *sock));

/* One turn of the loop. h2o_evloop_run fails with EINTR when a signal lands (and with errors we
 * cannot fix); neither may end the loop, but a persistent one must not spin it. */
void gh_h2oloop_run_once(h2o_evloop_t *loop, int32_t max_wait_ms);

/* A server TLS context for h2o: TLS 1.2 at least, no compression or renegotiation, the
 * certificate chain and key of the PEM files `cert` and `key` (checked to match), and ALPN h2
 * then http/1.1 when `http2` (else no ALPN: HTTP/1.1). GH_OK with *out the caller's to free, or
 * GH_ERR_IO with a message naming the file in `error`. */
int gh_loop_tls_new(const char *cert, const char *key, int http2, SSL_CTX **out, char *error,
                    size_t cap);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t gh_h2oloop_now_ms(void);

/* Disposes of `ctx` and destroys `loop`, with the two things h2o 2.2.5 forgets: its message
 * queue's memory and the loop's epoll descriptor. The sockets must be closed already. */
void gh_loop_destroy(h2o_context_t *ctx, h2o_evloop_t *loop);

/* Empties the calling thread's h2o free lists (socket buffers, memory-pool chunks, and HTTP/2
 * write buffers when the thread spoke HTTP/2), which nothing frees when a thread ends. */
void gh_loop_release_thread_caches(int spoke_http2);

#endif
