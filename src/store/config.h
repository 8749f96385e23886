// SPDX-License-Identifier: Apache-2.0
/*
 * The configuration as the gateway reads it: an immutable snapshot built from the store after each
 * committed change and published through a snapshot slot, with the indexes the request path needs —
 * collection by path prefix (a hash lookup per path segment, whatever the number of collections),
 * endpoints per collection, access profile key hash → profile, the distinct custom key claims. A
 * request holds one reference for its whole life, so it sees one consistent configuration.
 */
#ifndef GH_STORE_CONFIG_H
#define GH_STORE_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/snapshot.h"
#include "jose/jwk.h"
#include "store/validate.h"

struct gh_provider;

enum gh_auth_type { GH_AUTH_OIDC, GH_AUTH_JWT, GH_AUTH_TOKEN };

struct gh_config_endpoint {
    const char *id;
    const char *method; /* "GET" ... or "ANY" */
    const char *path;   /* template, e.g. "/items/:id" */
    int active;
    int timeout_ms; /* the collection's when the endpoint has none */
};

struct gh_config_collection {
    const char *id, *name, *path, *upstream;
    const char *upstream_ca; /* PEM bundle trusted beside the system store; NULL: none */
    size_t path_len;
    int active, forward_authorization, timeout_ms;
    struct gh_config_endpoint *endpoints;
    size_t n_endpoints;
};

struct gh_config_rate {
    int64_t requests, per_seconds; /* requests 0: no limit */
};

struct gh_config_profile {
    const char *id, *name, *client_id;
    int active, client_active;
    enum gh_auth_type auth_type;
    const struct gh_config_collection **collections; /* granted */
    size_t n_collections;
    const char *policy_id;
    struct gh_config_rate rate_limit, quota;
    const char *key_claim; /* NULL: the default claim list */
    const char **required_claims, **allowed_issuers, **audiences;
    size_t n_required_claims, n_allowed_issuers, n_audiences;
    const char **token_types; /* JWS typ values taken; none: any */
    size_t n_token_types;
    unsigned algorithms; /* GH_ALG_BIT mask */
    int leeway_seconds;
    struct gh_cidr *ip_allow, *ip_deny;
    size_t n_ip_allow, n_ip_deny;
    const char *oidc_discovery_url, *oidc_jwks_uri; /* oidc */
    struct gh_jwks *static_keys;                    /* jwt: the parsed jwt_key */
    struct gh_provider *provider; /* oidc: wired by the publisher before publishing */
};

struct gh_config {
    struct gh_snapshot snap;
    uint64_t generation;
    struct gh_config_collection *collections;
    size_t n_collections;
    struct gh_config_profile *profiles;
    size_t n_profiles;
    const char **key_claims; /* distinct key_claim values of active profiles */
    size_t n_key_claims;
    /* private: indexes and the document everything points into */
    void *index;
    json_t *doc;
};

/* Builds a snapshot (one reference) from gh_store_load_all's document (borrowed). */
int gh_config_build(const json_t *doc, struct gh_config **out);

static inline void gh_config_unref(struct gh_config *c)
{
    if (c != NULL)
        gh_snapshot_unref(&c->snap);
}

/* The collection whose path is a segment-prefix of `path` (SPEC §5), or NULL; *rest is what follows
 * the collection path ("" or starting with '/'). */
const struct gh_config_collection *gh_config_find_collection(const struct gh_config *c,
                                                             const char *path, size_t len,
                                                             const char **rest);

/* The profile whose key (plain text) is `key` and still valid at `now` (epoch seconds), or NULL. */
const struct gh_config_profile *gh_config_find_key(const struct gh_config *c, const char *key,
                                                   size_t len, int64_t now);

/* 1 when `profile` grants `collection`. */
int gh_config_grants(const struct gh_config_profile *profile,
                     const struct gh_config_collection *collection);

#endif
