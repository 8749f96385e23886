// SPDX-License-Identifier: Apache-2.0
/*
 * Field rules of SPEC §1, as pure functions: the store calls them before any write, the gateway
 * reuses the CIDR and path matchers. Each returns GH_OK or GH_ERR_INVALID_ARG and, on error, writes
 * a one-sentence reason (never echoing secrets) into `why` (`cap` bytes).
 */
#ifndef GH_STORE_VALIDATE_H
#define GH_STORE_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

/* A collection path: starts with '/', no trailing '/', segments of [A-Za-z0-9._~-]+, at most
 * 255 bytes. "/" alone is not a collection path. */
int gh_validate_collection_path(const char *path, char *why, size_t cap);

/* 1 when one path equals the other or is a prefix of it by whole segments ("/a" and "/a/b"). */
int gh_paths_overlap(const char *a, const char *b);

/* An upstream base URL: absolute http:// or https:// with a host, optional port and base path, no
 * query, no fragment, no user info, at most 2048 bytes. */
int gh_validate_upstream(const char *url, char *why, size_t cap);

/* A collection's upstream_ca: a PEM bundle of one or more certificates (text between the blocks
 * is allowed, as in bundles with comments), and nothing else: no private key, no other block. */
int gh_validate_ca_bundle(const char *pem, char *why, size_t cap);

/* An endpoint method: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY (exact, upper case). */
int gh_validate_method(const char *method, char *why, size_t cap);

/* An endpoint path template relative to its collection: "/" or segments starting with '/', each a
 * literal of [A-Za-z0-9._~-]+ or ":name" (name [A-Za-z_][A-Za-z0-9_]*, unique in the template), and
 * optionally a final wildcard segment "*". At most 1024 bytes. */
int gh_validate_endpoint_path(const char *path, char *why, size_t cap);

/* A name: 1..1000 bytes of valid UTF-8 without control characters. */
int gh_validate_name(const char *name, size_t len, char *why, size_t cap);

/* A CIDR block, IPv4 ("10.0.0.0/8", "192.0.2.7" = /32) or IPv6 ("2001:db8::/32", "::1" = /128),
 * with no bits set past the prefix. */
struct gh_cidr {
    int family;       /* 4 or 6 */
    uint8_t addr[16]; /* network address, IPv4 in the first 4 bytes */
    int prefix;       /* 0..32 or 0..128 */
};
int gh_cidr_parse(const char *text, struct gh_cidr *out, char *why, size_t cap);

/* 1 when `addr` (4 or 16 bytes per `family`; an IPv4-mapped IPv6 address counts as IPv4) is inside
 * `cidr`. */
int gh_cidr_contains(const struct gh_cidr *cidr, int family, const uint8_t *addr);

/* An endpoint path template matched against a request path (both without the collection prefix).
 * Returns 1 on a match; `params` receives up to `max` (name, value) slices into the two strings. */
struct gh_path_param {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int gh_path_match(const char *template_path, const char *path, size_t path_len,
                  struct gh_path_param *params, size_t max, size_t *n_params);

#endif
