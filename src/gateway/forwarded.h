// SPDX-License-Identifier: Apache-2.0
/*
 * Who the client is when proxies stand in front of the gateway (--trusted-proxies). A caller can
 * write any X-Forwarded-For, Forwarded or X-Real-IP it likes: believed, it would pick its own
 * address for ip_allow rules, the access log and the upstream. So these fields are believed only
 * from a peer the operator named as a proxy, and then only up to the first address that is not
 * one of its proxies, read from the right (the hops the trusted proxies appended themselves).
 * Everything else replaces them with the address gatehouse saw. Pure functions, no I/O.
 */
#ifndef GH_GATEWAY_FORWARDED_H
#define GH_GATEWAY_FORWARDED_H

#include <stddef.h>
#include <stdint.h>

#include "store/validate.h"

#define GH_TRUSTED_PROXIES_MAX 64 /* CIDR blocks in --trusted-proxies */

struct gh_trusted_proxies {
    struct gh_cidr cidrs[GH_TRUSTED_PROXIES_MAX];
    size_t n;
};

/* Parses a comma-separated list of CIDR blocks (spaces around the commas allowed; NULL or "" is
 * the empty list). GH_OK, or GH_ERR_INVALID_ARG with the reason in `why`. */
int gh_trusted_proxies_parse(const char *list, struct gh_trusted_proxies *out, char *why,
                             size_t cap);

/* 1 when the address (family 4 or 6; an IPv4-mapped IPv6 address counts as IPv4) is a trusted
 * proxy. */
int gh_trusted_proxies_contains(const struct gh_trusted_proxies *t, int family,
                                const uint8_t *addr);

/*
 * The client's address, given the TCP peer and the X-Forwarded-For values the request carries
 * (`xff`: the fields joined with ", ", NULL when none). When the peer is not trusted, or nothing
 * in `xff` can be used, the client is the peer. Otherwise the entries are read from the right,
 * skipping trusted proxies: the first one that is not trusted is the client; an entry that is not
 * an IP address stops the walk at the entry before it. Writes family (4 or 6) and address
 * (IPv4 in the first 4 bytes) to *family and addr.
 */
void gh_forwarded_client(const struct gh_trusted_proxies *t, int peer_family,
                         const uint8_t *peer_addr, const char *xff, size_t xff_len, int *family,
                         uint8_t addr[16]);

#endif
