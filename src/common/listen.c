// SPDX-License-Identifier: Apache-2.0
/*
 * Listening sockets from an operator's address (see listen.h). Both servers used to parse their
 * addresses each in its own way, numeric only, and the gateway bound one SO_REUSEPORT socket per
 * worker, which let a second gatehouse on the same port take part of the traffic in silence.
 * Here each address gets one plain socket, which the kernel refuses to bind while anything else
 * listens there; the gateway's workers share it.
 */
#include "common/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"

static int parse_port(const char *s, in_port_t *port)
{
    unsigned long v = 0;
    size_t n = strlen(s);

    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return -1;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned long)(s[i] - '0');
    if (v > 65535)
        return -1;
    *port = htons((uint16_t)v);
    return 0;
}

/* Splits "host:port" or "[v6]:port" into the host (brackets removed) and the port. An IPv6
 * address without brackets is refused: its last colon could be the port's or the address's. */
static int split_spec(const char *spec, char *host, size_t cap, int *bracketed, in_port_t *port)
{
    const char *begin = spec, *end, *colon;

    *bracketed = spec[0] == '[';
    if (*bracketed) {
        begin = spec + 1;
        if ((end = strchr(begin, ']')) == NULL || end[1] != ':' || end == begin)
            return -1;
        colon = end + 1;
    } else {
        if ((colon = strrchr(spec, ':')) == NULL || memchr(spec, ':', (size_t)(colon - spec)))
            return -1;
        end = colon;
    }
    if ((size_t)(end - begin) >= cap)
        return -1;
    memcpy(host, begin, (size_t)(end - begin));
    host[end - begin] = '\0';
    return parse_port(colon + 1, port);
}

static void set_port(struct sockaddr_storage *ss, in_port_t port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = port;
    else
        ((struct sockaddr_in *)ss)->sin_port = port;
}

/* The name's addresses without repeats (a resolver may list one address once per protocol). */
static int resolve_name(const char *host, const char *spec, int flags,
                        struct sockaddr_storage *addrs, socklen_t *lens, size_t *n, char *error,
                        size_t cap)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list, *ai;
    int rc;

    if (!(flags & GH_LISTEN_NAMES))
        hints.ai_flags = AI_NUMERICHOST;
    if ((rc = getaddrinfo(host, NULL, &hints, &list)) != 0 && !(flags & GH_LISTEN_NAMES)) {
        gh_error_format(error, cap, "'%s' in %.64s is not a numeric address ([v6]:port for IPv6)",
                        host, spec);
        return GH_ERR_INVALID_ARG;
    }
    if (rc != 0) {
        gh_error_format(error, cap, "cannot resolve the host name '%s' of %s: %s", host, spec,
                        gai_strerror(rc));
        return GH_ERR_ADDR_RESOLVE;
    }
    for (ai = list; ai != NULL && *n < GH_LISTEN_MAX; ai = ai->ai_next) {
        size_t i = 0;
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof addrs[0])
            continue;
        while (i < *n &&
               !(lens[i] == ai->ai_addrlen && memcmp(&addrs[i], ai->ai_addr, lens[i]) == 0))
            i++;
        if (i < *n)
            continue;
        memset(&addrs[*n], 0, sizeof addrs[0]);
        memcpy(&addrs[*n], ai->ai_addr, ai->ai_addrlen);
        lens[(*n)++] = ai->ai_addrlen;
    }
    freeaddrinfo(list);
    if (*n == 0) {
        gh_error_format(error, cap, "the host name '%s' of %s has no IPv4 or IPv6 address", host,
                        spec);
        return GH_ERR_ADDR_RESOLVE;
    }
    return GH_OK;
}

int gh_listen_resolve(const char *spec, int flags, struct sockaddr_storage *addrs, socklen_t *lens,
                      size_t *n, char *error, size_t cap)
{
    char host[256];
    int bracketed, rc;
    in_port_t port;

    *n = 0;
    if (spec == NULL || split_spec(spec, host, sizeof host, &bracketed, &port) != 0) {
        gh_error_format(error, cap, "'%.64s' is not host:port, [v6]:port or *:port",
                        spec ? spec : "");
        return GH_ERR_INVALID_ARG;
    }
    memset(&addrs[0], 0, sizeof addrs[0]);
    if (bracketed) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addrs[0];
        sin6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            gh_error_format(error, cap, "'%s' in %.64s is not an IPv6 address", host, spec);
            return GH_ERR_INVALID_ARG;
        }
        lens[0] = sizeof *sin6;
        *n = 1;
    } else if ((flags & GH_LISTEN_NAMES) && (strcmp(host, "") == 0 || strcmp(host, "*") == 0)) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&addrs[0];
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        lens[0] = sizeof *sin;
        *n = 1;
    } else if (strcmp(host, "") == 0) {
        gh_error_format(error, cap, "%.64s has no host: give 0.0.0.0 to listen on every address",
                        spec);
        return GH_ERR_INVALID_ARG;
    } else if ((rc = resolve_name(host, spec, flags, addrs, lens, n, error, cap)) != GH_OK) {
        return rc;
    }
    for (size_t i = 0; i < *n; i++)
        set_port(&addrs[i], port);
    return GH_OK;
}

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return ss->ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

int gh_listen_is_loopback(const char *spec, int flags)
{
    struct sockaddr_storage addrs[GH_LISTEN_MAX];
    socklen_t lens[GH_LISTEN_MAX];
    size_t n;

    if (gh_listen_resolve(spec, flags, addrs, lens, &n, NULL, 0) != GH_OK)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!is_loopback(&addrs[i]))
            return 0;
    return 1;
}

static void format_address(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        snprintf(out, cap, "[%s]:%u", host, ntohs(sin6->sin6_port));
    } else {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        snprintf(out, cap, "%s:%u", host, ntohs(sin->sin_port));
    }
}

/*
 * One plain listening socket. SO_REUSEADDR lets a restart bind while its old connections are in
 * TIME_WAIT; Linux still refuses it where a socket listens. No SO_REUSEPORT: with it, any process
 * of the same user could listen on the address too and take part of its connections. With
 * several addresses an IPv6 socket is IPv6 only, so that it leaves the IPv4 ones to their own.
 */
static int open_one(const struct sockaddr_storage *ss, socklen_t len, int v6only, int *fd_out)
{
    int on = 1, fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        (v6only && ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0) ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        errno = saved;
        return -1;
    }
    *fd_out = fd;
    return 0;
}

static int open_failure(const struct sockaddr_storage *ss, char *error, size_t cap)
{
    char address[GH_LISTEN_ADDR_MAX], reason[128];

    format_address(ss, address, sizeof address);
    if (errno == EADDRINUSE) {
        gh_error_format(error, cap,
                        "address already in use: %s (another process or socket listens there)",
                        address);
        return GH_ERR_ADDR_IN_USE;
    }
    strerror_r(errno, reason, sizeof reason);
    gh_error_format(error, cap, "cannot listen on %s: %s", address, reason);
    return GH_ERR_IO;
}

int gh_listen_open(const char *spec, int flags, struct gh_listen_set *set, char *error, size_t cap)
{
    struct sockaddr_storage addrs[GH_LISTEN_MAX], bound;
    socklen_t lens[GH_LISTEN_MAX], bound_len;
    size_t n;
    int rc;

    memset(set, 0, sizeof *set);
    for (size_t i = 0; i < GH_LISTEN_MAX; i++)
        set->fds[i] = -1;
    if ((rc = gh_listen_resolve(spec, flags, addrs, lens, &n, error, cap)) != GH_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (open_one(&addrs[i], lens[i], n > 1, &set->fds[set->n]) != 0) {
            /* a name's address that this host cannot use (::1 without IPv6) is left out */
            if (n > 1 && (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT))
                continue;
            return open_failure(&addrs[i], error, cap);
        }
        bound_len = sizeof bound;
        if (getsockname(set->fds[set->n], (struct sockaddr *)&bound, &bound_len) != 0)
            return open_failure(&addrs[i], error, cap);
        format_address(&bound, set->addresses[set->n], sizeof set->addresses[0]);
        for (size_t j = i + 1; set->n == 0 && j < n; j++) /* port 0: the first one's port */
            set_port(&addrs[j], bound.ss_family == AF_INET6
                                    ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                    : ((struct sockaddr_in *)&bound)->sin_port);
        set->n++;
    }
    if (set->n == 0) {
        gh_error_format(error, cap, "cannot listen on any address of %s", spec);
        return GH_ERR_IO;
    }
    return GH_OK;
}

void gh_listen_close(struct gh_listen_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        if (set->fds[i] >= 0)
            close(set->fds[i]);
        set->fds[i] = -1;
    }
}
