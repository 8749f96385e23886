// SPDX-License-Identifier: Apache-2.0
/*
 * Host names to addresses without blocking a loop: getaddrinfo(3) may wait seconds for DNS, so it
 * runs on a small process-wide pool of threads (at most 4, started on first use, with a bounded
 * queue) and the answer comes back to the asking loop's thread through gh_loop_post. Used by the
 * gateway's upstream client to connect by name.
 */
#ifndef GH_HTTP_RESOLVE_H
#define GH_HTTP_RESOLVE_H

#include <netdb.h>

#include "http/loop.h"

struct gh_resolve;

/* On the loop's thread: `res` (AF_INET and AF_INET6 stream addresses, in getaddrinfo's order) or
 * NULL with `error` (static text: "unknown host name", ...). `res` is freed after the callback
 * returns: copy what you keep. The gh_resolve handle is spent once the callback runs. */
typedef void (*gh_resolve_cb)(void *data, const struct addrinfo *res, const char *error);

/* Resolves `host` (a name or an address literal) and the numeric `port` (both copied) with
 * AF_UNSPEC, SOCK_STREAM, AI_ADDRCONFIG | AI_NUMERICSERV; `cb` comes later on `loop`'s thread,
 * never from inside this call. *out is the handle for gh_resolve_cancel. GH_OK,
 * GH_ERR_INVALID_ARG (empty or overlong host or port), GH_ERR_NOMEM, or GH_ERR_IO when the queue
 * is full (1024 waiting) or no thread could be started. The loop must outlive the request, or
 * close its posts first: a result the loop refuses is dropped (no callback). Loop thread. */
int gh_resolve_start(struct gh_loop *loop, const char *host, const char *port, gh_resolve_cb cb,
                     void *data, struct gh_resolve **out);

/* Gives up on a request whose callback has not run: it never will; the memory goes when the
 * answer arrives. NULL is fine. The loop's thread. */
void gh_resolve_cancel(struct gh_resolve *r);

/* Stops the pool's threads (at exit, or in tests for leak-clean runs): requests still queued are
 * answered with "resolver stopped". Waits for lookups in progress. The pool starts again on the
 * next gh_resolve_start. Not from a loop thread whose answers are still due. */
void gh_resolve_shutdown(void);

#endif
