// SPDX-License-Identifier: Apache-2.0
/*
 * Building the gateway's configuration snapshot. Every string points into the JSON document the
 * snapshot keeps, so building is one pass of pointer wiring plus two open-addressing hash tables
 * (collection paths, key hashes) sized to twice their entries; lookups never allocate.
 */
#define _GNU_SOURCE /* timegm */
#include "store/config.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "jose/alg.h"
#include "jose/sig.h"

struct key_entry {
    unsigned char hash[SHA256_DIGEST_LENGTH];
    const struct gh_config_profile *profile;
    int64_t expires_at; /* 0: never */
    int used;
};

struct index {
    const struct gh_config_collection **paths; /* open addressing on the path */
    size_t path_slots;
    struct key_entry *keys;
    size_t key_slots;
};

static uint64_t hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static size_t slots_for(size_t n)
{
    size_t slots = 8;
    while (slots < n * 2 + 1)
        slots *= 2;
    return slots;
}

static const char *str(const json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}

static const char **string_list(const json_t *array, size_t *n)
{
    size_t i;
    json_t *item;
    const char **list = calloc(json_array_size(array) + 1, sizeof *list);
    *n = 0;
    json_array_foreach ((json_t *)array, i, item)
        list[(*n)++] = json_string_value(item);
    return list;
}

/* RFC 3339 date-time ("2026-11-29T21:00:00Z", "...T21:00:00.5+01:00") → epoch seconds; -1 when it
 * is not one, so that a key whose expiry cannot be read is refused rather than kept forever. */
static int64_t parse_time(const char *text)
{
    struct tm tm = {0};
    const char *p = text != NULL ? strptime(text, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    int64_t offset = 0;

    if (p == NULL)
        return -1;
    if (*p == '.') { /* fractions of a second do not change the second the key expires in */
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '2' && p[2] >= '0' &&
               p[2] <= '9' && p[3] == ':' && p[4] >= '0' && p[4] <= '5' && p[5] >= '0' &&
               p[5] <= '9') {
        offset =
            ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
        offset = *p == '+' ? offset : -offset;
        p += 6;
    } else {
        return -1;
    }
    return *p == '\0' ? (int64_t)timegm(&tm) - offset : -1;
}

static void config_destroy(struct gh_snapshot *snap)
{
    struct gh_config *c = (struct gh_config *)snap;
    struct index *ix = c->index;
    for (size_t i = 0; i < c->n_collections; i++)
        free(c->collections[i].endpoints);
    for (size_t i = 0; i < c->n_profiles; i++) {
        struct gh_config_profile *p = &c->profiles[i];
        free(p->collections);
        free(p->required_claims);
        free(p->allowed_issuers);
        free(p->audiences);
        free(p->token_types);
        free(p->ip_allow);
        free(p->ip_deny);
        gh_jwks_free(p->static_keys);
    }
    if (ix != NULL) {
        free(ix->paths);
        free(ix->keys);
        free(ix);
    }
    free(c->collections);
    free(c->profiles);
    free(c->key_claims);
    json_decref(c->doc);
    free(c);
}

static void add_path(struct index *ix, const struct gh_config_collection *col)
{
    size_t i = hash_bytes(col->path, col->path_len) & (ix->path_slots - 1);
    while (ix->paths[i] != NULL)
        i = (i + 1) & (ix->path_slots - 1);
    ix->paths[i] = col;
}

static int build_collections(struct gh_config *c, struct index *ix)
{
    const json_t *cols = json_object_get(c->doc, "collections"),
                 *eps = json_object_get(c->doc, "endpoints"), *item;
    size_t i, j;

    c->collections = calloc(json_array_size(cols) + 1, sizeof *c->collections);
    ix->path_slots = slots_for(json_array_size(cols));
    ix->paths = calloc(ix->path_slots, sizeof *ix->paths);
    if (c->collections == NULL || ix->paths == NULL)
        return GH_ERR_NOMEM;
    json_array_foreach ((json_t *)cols, i, item) {
        struct gh_config_collection *col = &c->collections[c->n_collections++];
        col->id = str(item, "id");
        col->name = str(item, "name");
        col->path = str(item, "path");
        col->path_len = strlen(col->path);
        col->upstream = str(item, "upstream");
        col->upstream_ca = str(item, "upstream_ca");
        col->active = json_is_true(json_object_get(item, "active"));
        col->forward_authorization = json_is_true(json_object_get(item, "forward_authorization"));
        col->timeout_ms = (int)json_integer_value(json_object_get(item, "timeout_ms"));
        col->endpoints = calloc(json_array_size(eps) + 1, sizeof *col->endpoints);
        if (col->endpoints == NULL)
            return GH_ERR_NOMEM;
        json_t *ep;
        json_array_foreach ((json_t *)eps, j, ep) {
            if (strcmp(str(ep, "collection_id"), col->id) != 0)
                continue;
            struct gh_config_endpoint *e = &col->endpoints[col->n_endpoints++];
            e->id = str(ep, "id");
            e->method = str(ep, "method");
            e->path = str(ep, "path");
            e->active = json_is_true(json_object_get(ep, "active"));
            e->timeout_ms = json_is_integer(json_object_get(ep, "timeout_ms"))
                                ? (int)json_integer_value(json_object_get(ep, "timeout_ms"))
                                : col->timeout_ms;
        }
        add_path(ix, col);
    }
    return GH_OK;
}

static const struct gh_config_collection *collection_by_id(const struct gh_config *c,
                                                           const char *id)
{
    for (size_t i = 0; i < c->n_collections; i++) {
        if (strcmp(c->collections[i].id, id) == 0)
            return &c->collections[i];
    }
    return NULL;
}

static const json_t *object_by_id(const json_t *list, const char *id)
{
    size_t i;
    json_t *item;
    json_array_foreach ((json_t *)list, i, item) {
        if (id != NULL && strcmp(str(item, "id"), id) == 0)
            return item;
    }
    return NULL;
}

static struct gh_config_rate rate_of(const json_t *rate)
{
    struct gh_config_rate r = {0, 0};
    if (json_is_object(rate)) {
        r.requests = json_integer_value(json_object_get(rate, "requests"));
        r.per_seconds = json_integer_value(json_object_get(rate, "per_seconds"));
    }
    return r;
}

static struct gh_cidr *cidr_list(const json_t *array, size_t *n)
{
    size_t i;
    json_t *item;
    char why[128];
    struct gh_cidr *list = calloc(json_array_size(array) + 1, sizeof *list);
    *n = 0;
    json_array_foreach ((json_t *)array, i, item) {
        if (gh_cidr_parse(json_string_value(item), &list[*n], why, sizeof why) == GH_OK)
            (*n)++;
    }
    return list;
}

static int load_static_key(struct gh_config_profile *p, const json_t *item)
{
    const json_t *key = json_object_get(item, "jwt_key");
    if (!json_is_string(key))
        return GH_OK;
    if (p->algorithms & GH_ALGS_HMAC) /* a raw secret, used as its bytes */
        return gh_jwks_from_secret((const unsigned char *)json_string_value(key),
                                   json_string_length(key), &p->static_keys);
    return gh_jwks_from_key(json_string_value(key), json_string_length(key), 0, &p->static_keys);
}

static int build_profile(struct gh_config *c, struct gh_config_profile *p, const json_t *item)
{
    const json_t *client = object_by_id(json_object_get(c->doc, "clients"), str(item, "client_id"));
    const json_t *policy =
        object_by_id(json_object_get(c->doc, "policies"), str(item, "policy_id"));
    const char *auth = str(item, "auth_type");
    size_t i, n;
    json_t *id;

    p->id = str(item, "id");
    p->name = str(item, "name");
    p->client_id = str(item, "client_id");
    p->active = json_is_true(json_object_get(item, "active"));
    p->client_active = client != NULL && json_is_true(json_object_get(client, "active"));
    p->auth_type = strcmp(auth, "oidc") == 0  ? GH_AUTH_OIDC
                   : strcmp(auth, "jwt") == 0 ? GH_AUTH_JWT
                                              : GH_AUTH_TOKEN;
    p->policy_id = str(item, "policy_id");
    if (policy != NULL) {
        p->rate_limit = rate_of(json_object_get(policy, "rate_limit"));
        p->quota = rate_of(json_object_get(policy, "quota"));
    }
    p->key_claim = str(item, "key_claim");
    p->required_claims =
        string_list(json_object_get(item, "required_claims"), &p->n_required_claims);
    p->allowed_issuers =
        string_list(json_object_get(item, "allowed_issuers"), &p->n_allowed_issuers);
    p->audiences = string_list(json_object_get(item, "audiences"), &p->n_audiences);
    /* absent from documents written before the field existed: none, any typ */
    p->token_types = string_list(json_object_get(item, "token_types"), &p->n_token_types);
    json_array_foreach (json_object_get(item, "algorithms"), i, id) {
        enum gh_alg alg = gh_alg_from_name(json_string_value(id), json_string_length(id));
        if (alg != GH_ALG_UNKNOWN)
            p->algorithms |= GH_ALG_BIT(alg);
    }
    p->leeway_seconds = (int)json_integer_value(json_object_get(item, "leeway_seconds"));
    p->ip_allow = cidr_list(json_object_get(item, "ip_allow"), &p->n_ip_allow);
    p->ip_deny = cidr_list(json_object_get(item, "ip_deny"), &p->n_ip_deny);
    p->oidc_discovery_url = str(item, "oidc_discovery_url");
    p->oidc_jwks_uri = str(item, "oidc_jwks_uri");
    n = json_array_size(json_object_get(item, "collection_ids"));
    p->collections = calloc(n + 1, sizeof *p->collections);
    if (p->collections == NULL || p->required_claims == NULL || p->allowed_issuers == NULL ||
        p->audiences == NULL || p->token_types == NULL || p->ip_allow == NULL || p->ip_deny == NULL)
        return GH_ERR_NOMEM;
    json_array_foreach (json_object_get(item, "collection_ids"), i, id) {
        const struct gh_config_collection *col = collection_by_id(c, json_string_value(id));
        if (col != NULL)
            p->collections[p->n_collections++] = col;
    }
    return load_static_key(p, item);
}

static int hex_to_bytes(const char *hex, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = hex[2 * i + (size_t)k];
            v = v * 16 + (unsigned)(ch >= '0' && ch <= '9'   ? ch - '0'
                                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                                             : 99);
        }
        if (v > 255)
            return -1;
        out[i] = (unsigned char)v;
    }
    return hex[2 * n] == '\0' ? 0 : -1;
}

static int build_keys(struct gh_config *c, struct index *ix)
{
    const json_t *keys = json_object_get(c->doc, "keys"), *item;
    size_t i;

    ix->key_slots = slots_for(json_array_size(keys));
    ix->keys = calloc(ix->key_slots, sizeof *ix->keys);
    if (ix->keys == NULL)
        return GH_ERR_NOMEM;
    json_array_foreach ((json_t *)keys, i, item) {
        struct key_entry e = {0};
        const char *hash = str(item, "hash"), *profile = str(item, "profile_id");
        for (size_t k = 0; k < c->n_profiles && e.profile == NULL; k++) {
            if (strcmp(c->profiles[k].id, profile) == 0)
                e.profile = &c->profiles[k];
        }
        if (hash == NULL || e.profile == NULL || hex_to_bytes(hash, e.hash, sizeof e.hash) != 0)
            continue;
        if (str(item, "expires_at") != NULL) {
            e.expires_at = parse_time(str(item, "expires_at"));
            if (e.expires_at <= 0)
                continue; /* an unreadable expiry: the key does not work (fail closed) */
        }
        e.used = 1;
        size_t slot = hash_bytes(e.hash, sizeof e.hash) & (ix->key_slots - 1);
        while (ix->keys[slot].used)
            slot = (slot + 1) & (ix->key_slots - 1);
        ix->keys[slot] = e;
    }
    return GH_OK;
}

static int build_key_claims(struct gh_config *c)
{
    c->key_claims = calloc(c->n_profiles + 1, sizeof *c->key_claims);
    if (c->key_claims == NULL)
        return GH_ERR_NOMEM;
    for (size_t i = 0; i < c->n_profiles; i++) {
        const char *claim = c->profiles[i].key_claim;
        int seen = claim == NULL || !c->profiles[i].active;
        for (size_t j = 0; j < c->n_key_claims && !seen; j++)
            seen = strcmp(c->key_claims[j], claim) == 0;
        if (!seen)
            c->key_claims[c->n_key_claims++] = claim;
    }
    return GH_OK;
}

int gh_config_build(const json_t *doc, struct gh_config **out)
{
    struct gh_config *c = calloc(1, sizeof *c);
    struct index *ix = calloc(1, sizeof *ix);
    const json_t *profiles = json_object_get(doc, "profiles"), *item;
    size_t i;
    int rc = GH_ERR_NOMEM;

    *out = NULL;
    if (c == NULL || ix == NULL) {
        free(c);
        free(ix);
        return GH_ERR_NOMEM;
    }
    gh_snapshot_init(&c->snap, config_destroy);
    c->index = ix;
    c->doc = json_deep_copy(doc); /* the snapshot owns what it points into */
    c->generation = (uint64_t)json_integer_value(json_object_get(doc, "generation"));
    c->profiles = calloc(json_array_size(profiles) + 1, sizeof *c->profiles);
    if (c->doc == NULL || c->profiles == NULL || (rc = build_collections(c, ix)) != GH_OK)
        goto fail;
    profiles = json_object_get(c->doc, "profiles");
    json_array_foreach ((json_t *)profiles, i, item) {
        if ((rc = build_profile(c, &c->profiles[c->n_profiles++], item)) != GH_OK)
            goto fail;
    }
    if ((rc = build_keys(c, ix)) != GH_OK || (rc = build_key_claims(c)) != GH_OK)
        goto fail;
    *out = c;
    return GH_OK;
fail:
    config_destroy(&c->snap);
    return rc;
}

const struct gh_config_collection *gh_config_find_collection(const struct gh_config *c,
                                                             const char *path, size_t len,
                                                             const char **rest)
{
    const struct index *ix = c->index;
    /* try every prefix that ends at a segment boundary; paths never overlap, so at most one hits */
    for (size_t end = 1; end <= len; end++) {
        if (end < len && path[end] != '/')
            continue;
        size_t slot = hash_bytes(path, end) & (ix->path_slots - 1);
        for (const struct gh_config_collection *col; (col = ix->paths[slot]) != NULL;
             slot = (slot + 1) & (ix->path_slots - 1)) {
            if (col->path_len == end && memcmp(col->path, path, end) == 0) {
                *rest = path + end;
                return col;
            }
        }
    }
    *rest = NULL;
    return NULL;
}

/* Runs once per request: hashed with the SHA-256 fetched once (jose/sig.c), not SHA256()'s fetch
 * per call. */
static void key_hash(const char *key, size_t len, unsigned char hash[SHA256_DIGEST_LENGTH])
{
    const EVP_MD *md = gh_sig_sha256();

    if (md == NULL || EVP_Digest(key, len, hash, NULL, md, NULL) != 1)
        SHA256((const unsigned char *)key, len, hash);
}

const struct gh_config_profile *gh_config_find_key(const struct gh_config *c, const char *key,
                                                   size_t len, int64_t now)
{
    const struct index *ix = c->index;
    unsigned char hash[SHA256_DIGEST_LENGTH];

    key_hash(key, len, hash);
    size_t slot = hash_bytes(hash, sizeof hash) & (ix->key_slots - 1);
    for (; ix->keys[slot].used; slot = (slot + 1) & (ix->key_slots - 1)) {
        const struct key_entry *e = &ix->keys[slot];
        /* the hash is of a 256-bit random secret: comparing it in plain time reveals nothing */
        if (memcmp(e->hash, hash, sizeof hash) == 0)
            return e->expires_at == 0 || now < e->expires_at ? e->profile : NULL;
    }
    return NULL;
}

int gh_config_grants(const struct gh_config_profile *profile,
                     const struct gh_config_collection *collection)
{
    for (size_t i = 0; i < profile->n_collections; i++) {
        if (profile->collections[i] == collection)
            return 1;
    }
    return 0;
}
