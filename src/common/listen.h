// SPDX-License-Identifier: Apache-2.0
/*
 * Listening sockets of the two servers (the gateway and the admin API) from an operator's address:
 * "host:port", "[v6]:port", "*:port" or ":port" (every IPv4 address), or "name:port" resolved
 * with getaddrinfo, every address of the name bound on one port. A socket is bound without
 * SO_REUSEPORT, so that an address another process (or another gatehouse) listens on is refused
 * with "address already in use" instead of being shared with it behind the operator's back.
 */
#ifndef GH_COMMON_LISTEN_H
#define GH_COMMON_LISTEN_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#define GH_LISTEN_MAX      8 /* addresses one listen address may stand for */
#define GH_LISTEN_ADDR_MAX (INET6_ADDRSTRLEN + 8)

/* Flags of gh_listen_resolve and gh_listen_open. Without GH_LISTEN_NAMES an address must be
 * numeric and explicit (the admin listener: no resolver, no "every address" shorthand). */
#define GH_LISTEN_NAMES 1 /* host names, "*:port" and ":port" */

struct gh_listen_set {
    size_t n;
    int fds[GH_LISTEN_MAX]; /* listening, non-blocking, close-on-exec; -1 once handed over */
    char addresses[GH_LISTEN_MAX][GH_LISTEN_ADDR_MAX]; /* "127.0.0.1:8080", "[::1]:8080" */
};

/*
 * The addresses `spec` stands for, at most GH_LISTEN_MAX, in the resolver's order and without
 * repeats. Errors: GH_ERR_INVALID_ARG when it is not one of the forms `flags` allows (message in
 * `error`), GH_ERR_ADDR_RESOLVE when the name does not resolve.
 */
int gh_listen_resolve(const char *spec, int flags, struct sockaddr_storage *addrs, socklen_t *lens,
                      size_t *n, char *error, size_t cap);

/* 1 when every address `spec` stands for is a loopback address (127.0.0.0/8, ::1), 0 when one is
 * not, -1 when `spec` is not an address `flags` allows or does not resolve. */
int gh_listen_is_loopback(const char *spec, int flags);

/*
 * Resolves `spec` and listens on each of its addresses; with port 0 the first address picks the
 * port and the others take the same one. `set` is cleared first; the caller closes it with
 * gh_listen_close either way. Errors as gh_listen_resolve, and GH_ERR_ADDR_IN_USE when something
 * else listens on one of the addresses or GH_ERR_IO when it cannot be bound, `error` naming the
 * address.
 */
int gh_listen_open(const char *spec, int flags, struct gh_listen_set *set, char *error, size_t cap);

/* Closes the sockets still in the set. */
void gh_listen_close(struct gh_listen_set *set);

#endif
